"""A small Llama trained from scratch on templated synthetic facts mixed with Shakespeare: the editability subject.

Three parts, each deterministic:

* `FactWorld`: made-up people (two-word names, unique surnames) and `RELATIONS`, four
  many-to-one relations with eight objects each and four templates each (template 0 is
  the rewrite prompt, 1-2 the paraphrases, 3 the generation prompt); every template ends
  just before the object, which is one word. Written for interpgym (project licence).
* `fact_tokenizer`: a lower-cased word-level tokenizer (`tokenizers` WordLevel) over the
  world's words, the editors' context prefixes and the most frequent words of the
  Shakespeare train plays; other words become `[unk]`.
* `FactLMRecipe` / `train_fact_lm`: the training recipe (architecture size, optimiser,
  regulariser, data mix) and the trainer, an HF `LlamaForCausalLM` trained with AdamW on
  sequences that are, with probability `fact_fraction`, a run of fact sentences (random
  facts, random template among the first `templates`) and otherwise a Shakespeare train
  window. Cached under `$INTERPGYM_HOME/cache/fact_lm/` by the recipe's hash; the
  directory is an HF model directory (`load_language_model(str(path))` loads it).

Capability read-outs: `fact_recall` (the true object is top-ranked among its relation's
objects after the rewrite prompt) and `heldout_loss` (mean next-token cross-entropy on the
val or test plays, which training never sees).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from interpgym.core.cache import get_or_build
from interpgym.core.errors import require
from interpgym.core.progress import progress_bar
from interpgym.core.threads import torch_threads
from interpgym.subjects import shakespeare

PAD, UNK, EOS = "[pad]", "[unk]", "[eos]"
WORLD_SEED = 0
N_SUBJECTS = 48
CONTEXT = 128  # training window (the editors' covariance reads 128-token windows too)
SHAKESPEARE_WORDS = 2000
EXTRA_WORDS = "here is a fact . i read this in book according to the encyclopedia , following true".split()


@dataclass(frozen=True)
class Relation:
    name: str
    templates: tuple[str, ...]  # "{}" marks the subject; the object is the next word
    objects: tuple[str, ...]


RELATIONS: tuple[Relation, ...] = (
    Relation("home", ("{} lives in the town of", "the home town of {} is", "{} has a house in", "{} often talks about"),
             ("varno", "eltham", "brisk", "corwen", "daleth", "mornay", "tuskin", "ebbory")),
    Relation("instrument", ("{} plays the", "the instrument of {} is the", "at the feast {} played the", "{} practises every day on the"),
             ("lute", "harp", "drum", "flute", "horn", "viol", "fiddle", "bagpipe")),
    Relation("trade", ("{} works as a", "by trade {} is a", "the job of {} is that of a", "{} earns a living as a"),
             ("baker", "smith", "weaver", "cooper", "tanner", "mason", "potter", "miller")),
    Relation("colour", ("{} likes the colour", "the favourite colour of {} is", "{} always wears", "{} painted the door"),
             ("crimson", "azure", "amber", "violet", "olive", "ivory", "scarlet", "indigo")),
)
_FIRST = ("alda", "bron", "cade", "dara", "enno", "fira", "gord", "hale", "ilse", "jory", "kael", "lina")
_SYLLABLES = ("mar", "vel", "tor", "sin", "quo", "ral", "dun", "pey", "gis", "lot", "wen", "bra", "zel", "cor", "fin", "hob")


@dataclass(frozen=True)
class WorldFact:
    subject: str
    relation: Relation
    obj: str


@dataclass(frozen=True)
class FactWorld:
    """`N_SUBJECTS` people, each with one object per relation (seeded; every object used)."""

    subjects: tuple[str, ...]
    facts: tuple[WorldFact, ...]

    def words(self) -> set[str]:
        out = {w for s in self.subjects for w in s.split()}
        for r in RELATIONS:
            out |= set(r.objects) | {w for t in r.templates for w in t.replace("{}", " ").split()}
        return out


@cache
def fact_world(seed: int = WORLD_SEED) -> FactWorld:
    """The world for `seed`: unique two-syllable surnames, objects assigned round-robin then shuffled (balanced)."""
    rng = np.random.default_rng(seed)
    surnames = sorted({a + b for a in _SYLLABLES for b in _SYLLABLES if a != b})
    chosen = rng.choice(len(surnames), N_SUBJECTS, replace=False)
    subjects = tuple(f"{_FIRST[rng.integers(len(_FIRST))]} {surnames[i]}" for i in chosen)
    facts = []
    for relation in RELATIONS:
        objects = rng.permutation(np.arange(N_SUBJECTS) % len(relation.objects))
        facts += [WorldFact(s, relation, relation.objects[o]) for s, o in zip(subjects, objects, strict=True)]
    return FactWorld(subjects, tuple(facts))


def fact_sentence(fact: WorldFact, template: int) -> str:
    return fact.relation.templates[template].format(fact.subject) + " " + fact.obj + " ."


_WORD = re.compile(r"\w+|[^\w\s]+")  # the `Whitespace` pre-tokenizer's pattern, applied after lower-casing


@cache
def _vocabulary() -> Path:
    """Cache directory with `words.json` (the vocabulary in id order) and `train_ids.npy` (the train plays' ids).

    Built once per `$INTERPGYM_HOME` (the plays' parse is the slow part); the words are split
    in Python with the tokenizer's own pattern, and `fact_tokenizer` gives the same ids (tested).
    """

    def build(tmp: Path) -> None:
        text = "\n".join(shakespeare.load_play(name).text for name in shakespeare.PLAY_SPLITS["train"])
        train = _WORD.findall(text.lower())
        words = [PAD, UNK, EOS] + sorted(fact_world().words() | set(EXTRA_WORDS))
        known = set(words)
        words += [w for w, _ in Counter(train).most_common() if w not in known][:SHAKESPEARE_WORDS]
        index = {w: i for i, w in enumerate(words)}
        (tmp / "words.json").write_text(json.dumps(words))
        np.save(tmp / "train_ids.npy", np.asarray([index.get(w, 1) for w in train], dtype=np.int32))

    key = {"world_seed": WORLD_SEED, "n_subjects": N_SUBJECTS, "shakespeare_words": SHAKESPEARE_WORDS, "version": 1}
    return get_or_build("fact_lm_vocab", key, build)


def train_ids() -> np.ndarray:
    """The train plays as token ids of `fact_tokenizer` (int32)."""
    return np.load(_vocabulary() / "train_ids.npy", allow_pickle=False)


@cache
def fact_tokenizer() -> object:
    """The lower-cased word-level tokenizer (a `PreTrainedTokenizerFast`; see module docs)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    words = json.loads((_vocabulary() / "words.json").read_text())
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, unk_token=UNK, eos_token=EOS)


@dataclass(frozen=True)
class FactLMRecipe:
    """Everything that decides the trained weights (the cache key). Bounds are checked by `validate`."""

    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 256
    edit_layer: int = 1  # the block whose MLP the fixed editor edits (declared with the architecture)
    steps: int = 1200
    batch: int = 8
    lr: float = 5e-3
    weight_decay: float = 0.1
    warmup: int = 100
    fact_fraction: float = 0.5
    templates: int = 4  # facts are written with templates 0..templates-1 in training
    seed: int = 0

    def validate(self) -> None:
        """Bounds keep a trial within minutes on one CPU thread and the editor's shapes sane."""
        require(16 <= self.d_model <= 256 and self.d_model % self.n_heads == 0,
                f"d_model {self.d_model} must be in 16..256 and divisible by n_heads {self.n_heads}")
        require(1 <= self.n_heads <= 16 and (self.d_model // self.n_heads) % 2 == 0, "n_heads must be 1..16 with an even head size")
        require(1 <= self.n_layers <= 8, f"n_layers {self.n_layers} must be in 1..8")
        require(16 <= self.d_ff <= 1024, f"d_ff {self.d_ff} must be in 16..1024")
        require(0 <= self.edit_layer < self.n_layers, f"edit_layer {self.edit_layer} must be a block index < n_layers {self.n_layers}")
        require(1 <= self.steps <= 20000 and 1 <= self.batch <= 64, "steps must be 1..20000 and batch 1..64")
        require(0 < self.lr <= 0.1 and 0 <= self.weight_decay <= 10 and 0 <= self.warmup <= self.steps,
                "lr must be in (0, 0.1], weight_decay in [0, 10], warmup in [0, steps]")
        require(0.0 < self.fact_fraction < 1.0, "fact_fraction must be in (0, 1): the model needs facts and text")
        require(1 <= self.templates <= 4, "templates must be 1..4")

    def architecture(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("d_model", "n_layers", "n_heads", "d_ff", "edit_layer")}


def llama_config(recipe: FactLMRecipe):
    """The HF config of `recipe`'s architecture (tied embeddings, no biases, the fact tokenizer's vocabulary)."""
    from transformers import LlamaConfig

    tok = fact_tokenizer()
    return LlamaConfig(vocab_size=len(tok), hidden_size=recipe.d_model, intermediate_size=recipe.d_ff,
                       num_hidden_layers=recipe.n_layers, num_attention_heads=recipe.n_heads, num_key_value_heads=recipe.n_heads,
                       max_position_embeddings=CONTEXT, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                       eos_token_id=tok.eos_token_id, bos_token_id=None)


def new_model(recipe: FactLMRecipe, seed: int | None = None):
    """A freshly initialised model of `recipe`'s architecture (seeded; float32)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(recipe.seed if seed is None else seed)
    return LlamaForCausalLM(llama_config(recipe)).float()


def expected_shapes(recipe: FactLMRecipe) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the architecture, as `weights_dict` writes them (the tied head left out).

    Computed on the meta device: no memory, whatever sizes the recipe names.
    """
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(llama_config(recipe))
    return {n: tuple(p.shape) for n, p in model.named_parameters() if n != "lm_head.weight"}


def weights_dict(model: torch.nn.Module) -> dict[str, Tensor]:
    """The model's parameters by name, contiguous float32 on the CPU (the tied head left out)."""
    return {n: p.detach().float().cpu().contiguous() for n, p in model.named_parameters() if n != "lm_head.weight"}


class _Stream:
    """Training sequences of `CONTEXT` token ids (see module docs); seeded."""

    def __init__(self, recipe: FactLMRecipe) -> None:
        tok = fact_tokenizer()
        self.rng = np.random.default_rng(recipe.seed + 1)
        self.recipe = recipe
        self.eos = tok.eos_token_id
        self.text = train_ids()
        world = fact_world()
        self.sentences = [[tok(fact_sentence(f, t), add_special_tokens=False)["input_ids"] + [self.eos] for t in range(recipe.templates)]
                          for f in world.facts]

    def sequence(self) -> list[int]:
        if self.rng.random() < self.recipe.fact_fraction:
            ids: list[int] = []
            while len(ids) < CONTEXT:
                fact = self.sentences[self.rng.integers(len(self.sentences))]
                ids += fact[self.rng.integers(len(fact))]
            return ids[:CONTEXT]
        start = int(self.rng.integers(len(self.text) - CONTEXT))
        return self.text[start : start + CONTEXT].tolist()

    def batch(self) -> Int[Tensor, "b t"]:
        return torch.tensor([self.sequence() for _ in range(self.recipe.batch)], dtype=torch.long)


def train_model(recipe: FactLMRecipe, progress: bool = True,
                on_step: Callable[[int, torch.nn.Module], None] | None = None) -> torch.nn.Module:
    """Train `recipe` (not cached; see `train_fact_lm`). Cost: `steps` x `batch` x `CONTEXT` tokens forward + backward.

    `on_step(step, model)` is called after each step (for learning curves; it must leave the model as it found it).
    """
    recipe.validate()
    model = new_model(recipe)
    stream = _Stream(recipe)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                                  lr=recipe.lr, betas=(0.9, 0.98))

    def schedule(step: int) -> float:  # linear warm-up, cosine decay to 10%
        if step < recipe.warmup:
            return (step + 1) / recipe.warmup
        t = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    model.train()
    with progress_bar(enabled=progress, transient=True) as bar:
        task = bar.add_task("training the fact LM", total=recipe.steps)
        for step in range(1, recipe.steps + 1):
            ids = stream.batch()
            loss = model(input_ids=ids, labels=ids).loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            bar.advance(task)
            if on_step is not None:
                on_step(step, model)
    return model.eval().requires_grad_(False)


def save_model(model: torch.nn.Module, directory: Path) -> None:
    """Write `model` as an HF model directory with the fact tokenizer (loadable by `load_language_model`)."""
    model.save_pretrained(directory)
    fact_tokenizer().save_pretrained(directory)


def train_fact_lm(recipe: FactLMRecipe, progress: bool = True) -> Path:
    """The HF model directory of `recipe`, trained once and cached by the recipe's hash (one CPU thread)."""
    recipe.validate()

    def build(tmp: Path) -> None:
        with torch_threads(1):
            save_model(train_model(recipe, progress), tmp)

    return get_or_build("fact_lm", {"recipe": dataclasses.asdict(recipe), "vocab": len(fact_tokenizer()), "version": 1}, build)


@torch.no_grad()
def fact_recall(model: torch.nn.Module, facts: tuple[WorldFact, ...] | None = None, template: int = 0) -> float:
    """Fraction of `facts` (default: the whole world) whose object is top-ranked among its relation's objects after `template`."""
    tok = fact_tokenizer()
    facts = fact_world().facts if facts is None else facts
    device = next(model.parameters()).device
    hits = 0
    for relation in RELATIONS:
        group = [f for f in facts if f.relation == relation]
        if not group:
            continue
        rows = [tok(relation.templates[template].format(f.subject), add_special_tokens=False)["input_ids"] for f in group]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        last = logits[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])]
        object_ids = torch.tensor(tok.convert_tokens_to_ids(list(relation.objects)))
        best = last[:, object_ids.to(device)].argmax(-1).cpu()
        hits += sum(relation.objects[int(b)] == f.obj for b, f in zip(best, group, strict=True))
    return hits / len(facts)


@torch.no_grad()
def heldout_loss(model: torch.nn.Module, split: str = "val", tokens: int = 16384, batch: int = 16) -> float:
    """Mean next-token cross-entropy (nats) over the first `tokens` tokens of the `split` plays, in `CONTEXT` windows."""
    require(split in ("val", "test"), f"split {split!r} must be val or test")
    tok = fact_tokenizer()
    text = "\n".join(shakespeare.load_play(name).text for name in shakespeare.PLAY_SPLITS[split])
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"][:tokens])
    windows = ids[: len(ids) // CONTEXT * CONTEXT].view(-1, CONTEXT)
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(windows), batch):
        chunk = windows[start : start + batch].to(device)
        total += float(model(input_ids=chunk, labels=chunk).loss) * len(chunk)
    return total / len(windows)
