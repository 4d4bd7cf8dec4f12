"""The fact set: CounterFact-style edit requests built from `seeds`, kept only where the model knows them.

A candidate (subject, relation, object) is *known* when the true object is the model's
top-ranked answer among all of the relation's objects, ranked by the log-probability
of the whole object string after the rewrite prompt. Each known fact becomes a
`Fact` with

* the rewrite prompt and its true object, and a counterfactual `new_object` drawn
  (seeded) from the relation's other objects;
* held-out paraphrase prompts (the relation's other templates);
* five neighbourhood prompts: other *known* subjects with the same relation and the
  same true object, in the rewrite template (a fact with fewer than five is dropped);
* generation prompts (open-ended, for fluency and generation-based efficacy).

`build_fact_set` caches the result per (model, seed lists, seed) under
`$INTERPGYM_HOME/cache/edit_facts/`, with a per-relation datasheet and the counts of
dropped candidates. Fact files (JSON lists of `Fact` dicts) are validated by
`load_fact_file`: a missing field or unknown relation is a `UserError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interpgym.core.cache import get_or_build
from interpgym.core.errors import UserError, require
from interpgym.core.hashing import config_hash
from interpgym.core.progress import progress_bar
from interpgym.editing.model_ops import encode, fill, object_logprobs
from interpgym.editing.seeds import RELATIONS, RelationSeed
from interpgym.subjects.lm_loader import LanguageModel

N_NEIGHBOURS = 5
FACTSET_VERSION = 1
RELATION_BY_NAME: dict[str, RelationSeed] = {r.name: r for r in RELATIONS}


@dataclass(frozen=True)
class Fact:
    """One edit request with its evaluation prompts (templates hold `{}` for the subject)."""

    relation: str
    subject: str
    prompt: str
    true_object: str
    new_object: str
    paraphrases: tuple[str, ...]
    neighbourhood: tuple[str, ...]  # full prompts of other subjects whose true object is `true_object`
    generation: tuple[str, ...]

    @property
    def case_id(self) -> str:
        return f"{self.relation}:{self.subject}"

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


FIELDS = tuple(f.name for f in dataclasses.fields(Fact))


def fact_from_dict(row: Any, where: str = "fact") -> Fact:
    """A `Fact` from a JSON object, checked (`UserError` naming the missing field or unknown relation)."""
    require(isinstance(row, dict), f"{where} is not a JSON object")
    missing = [f for f in FIELDS if f not in row]
    require(not missing, f"{where} lacks field(s) {', '.join(missing)}: every fact needs {', '.join(FIELDS)}")
    require(
        row["relation"] in RELATION_BY_NAME, f"{where} has unknown relation {row['relation']!r}: use one of {', '.join(RELATION_BY_NAME)}"
    )
    for name in ("subject", "prompt", "true_object", "new_object"):
        require(isinstance(row[name], str) and row[name].strip(), f"{where}: {name} must be a non-empty string")
    for name in ("paraphrases", "neighbourhood", "generation"):
        require(isinstance(row[name], list) and row[name] and all(isinstance(x, str) for x in row[name]),
                f"{where}: {name} must be a non-empty list of strings")
    require("{}" in row["prompt"], f"{where}: prompt must contain {{}} for the subject")
    require(row["new_object"] != row["true_object"], f"{where}: new_object equals true_object")
    return Fact(row["relation"], row["subject"], row["prompt"], row["true_object"], row["new_object"],
                tuple(row["paraphrases"]), tuple(row["neighbourhood"]), tuple(row["generation"]))


def load_fact_file(path: str | Path) -> list[Fact]:
    """Facts from a JSON file (a list of fact objects, or `{"facts": [...]}`), every field checked."""
    path = Path(path)
    require(path.is_file(), f"fact file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"fact file {path} is not valid JSON ({exc})") from exc
    rows = data.get("facts") if isinstance(data, dict) else data
    require(isinstance(rows, list) and rows, f"fact file {path} holds no list of facts")
    return [fact_from_dict(row, f"fact {i} of {path.name}") for i, row in enumerate(rows)]


def seeds_hash() -> str:
    """Hash of the seed lists and templates (keys the fact-set cache)."""
    return config_hash([dataclasses.asdict(r) for r in RELATIONS])


def _stable_rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def rank_objects(lm: LanguageModel, relation: RelationSeed, subjects: list[str], objects: list[str]) -> torch.Tensor:
    """log p(object | rewrite prompt) for every (subject, object): a subjects x objects float64 table.

    Cost: per subject one prompt pass plus one pass over the objects' tokens (`object_logprobs`).
    """
    conts = [encode(lm, " " + o) for o in objects]
    return torch.stack([object_logprobs(lm, encode(lm, fill(relation.prompt, s)), conts) for s in subjects])


def _relation_facts(lm: LanguageModel, relation: RelationSeed, seed: int) -> tuple[list[Fact], dict[str, Any]]:
    subjects = [s for s, _ in relation.pairs]
    truth = [o for _, o in relation.pairs]
    objects = sorted(set(truth))
    table = rank_objects(lm, relation, subjects, objects)
    known = [objects[int(table[i].argmax())] == truth[i] for i in range(len(subjects))]
    known_by_object: dict[str, list[str]] = defaultdict(list)
    for s, o, k in zip(subjects, truth, known, strict=True):
        if k:
            known_by_object[o].append(s)
    facts, few_neighbours = [], 0
    for s, o, k in zip(subjects, truth, known, strict=True):
        if not k:
            continue
        others = [x for x in known_by_object[o] if x != s]
        if len(others) < N_NEIGHBOURS:
            few_neighbours += 1
            continue
        rng = _stable_rng(seed, relation.name, s)
        neighbours = [others[i] for i in sorted(rng.choice(len(others), N_NEIGHBOURS, replace=False))]
        new_object = str(rng.choice([x for x in objects if x != o]))
        facts.append(Fact(relation.name, s, relation.prompt, o, new_object, relation.paraphrases,
                          tuple(fill(relation.prompt, n) for n in neighbours), relation.generation))
    sheet = {
        "relation": relation.name, "description": relation.description, "prompt": relation.prompt,
        "paraphrases": list(relation.paraphrases), "generation": list(relation.generation),
        "objects": objects, "candidates": len(subjects), "known": int(sum(known)),
        "dropped_unknown": len(subjects) - int(sum(known)), "dropped_few_neighbours": few_neighbours,
        "facts": len(facts),
        "known_by_object": {o: len(known_by_object[o]) for o in objects},
        "candidates_by_object": {o: truth.count(o) for o in objects},
        "known_criterion": "true object is the top-ranked of the relation's objects by log p(object | prompt)",
        "source": "interpgym.editing.seeds (hand-written, interpgym licence)",
    }  # fmt: skip
    return facts, sheet


@dataclass(frozen=True)
class FactSet:
    """The known facts and a datasheet per relation."""

    facts: list[Fact]
    datasheets: dict[str, dict[str, Any]]
    model: str

    def summary(self) -> dict[str, Any]:
        """Counts for `edit facts --json`."""
        return {
            "model": self.model, "relations": list(self.datasheets), "n_relations": len(self.datasheets),
            "candidates": sum(d["candidates"] for d in self.datasheets.values()),
            "known": sum(d["known"] for d in self.datasheets.values()),
            "dropped_unknown": sum(d["dropped_unknown"] for d in self.datasheets.values()),
            "dropped_few_neighbours": sum(d["dropped_few_neighbours"] for d in self.datasheets.values()),
            "n_facts": len(self.facts), "datasheets": self.datasheets,
        }  # fmt: skip


def build_fact_set(lm: LanguageModel, seed: int = 0, relations: list[str] | None = None, progress: bool = True) -> FactSet:
    """The facts `lm` knows among the seed lists (cached per model, seed lists and seed).

    Cost: one forward pass per (candidate subject, relation object): about 8,000 short
    sequences for the shipped lists (minutes on 2 CPU cores for SmolLM2; once).
    """
    chosen = relations or [r.name for r in RELATIONS]
    for name in chosen:
        require(name in RELATION_BY_NAME, f"unknown relation {name!r}: use one of {', '.join(RELATION_BY_NAME)}")
    key = {"model": lm.identity, "seeds": seeds_hash(), "seed": seed, "relations": chosen, "version": FACTSET_VERSION}

    def build(tmp: Path) -> None:
        facts, sheets = [], {}
        with progress_bar(enabled=progress, transient=True) as bar:
            task = bar.add_task("checking which facts the model knows", total=len(chosen))
            for name in chosen:
                rel_facts, sheets[name] = _relation_facts(lm, RELATION_BY_NAME[name], seed)
                facts.extend(rel_facts)
                bar.advance(task)
        (tmp / "facts.json").write_text(json.dumps([f.as_dict() for f in facts], indent=1, ensure_ascii=False))
        (tmp / "datasheets.json").write_text(json.dumps(sheets, indent=1, ensure_ascii=False))

    directory = get_or_build("edit_facts", key, build)
    facts = [fact_from_dict(r) for r in json.loads((directory / "facts.json").read_text())]
    return FactSet(facts, json.loads((directory / "datasheets.json").read_text()), lm.identity)


def select_facts(facts: list[Fact], n: int, seed: int, offset: int = 0) -> list[Fact]:
    """`n` facts in a seeded order that interleaves relations (the first n of a fixed permutation after `offset`)."""
    require(n >= 1, f"--facts must be >= 1 (got {n})")
    require(offset + n <= len(facts), f"{n} facts requested after {offset}, but the set has {len(facts)}")
    order = _stable_rng(seed, "order").permutation(len(facts))
    return [facts[i] for i in order[offset : offset + n]]
