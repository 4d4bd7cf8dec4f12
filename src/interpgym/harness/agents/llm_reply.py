"""Parsing an LLM's reply into new versions of the editable files.

The reply format (also stated to the model in the system prompt, see `llm_prompt`):
each changed file is one fenced code block whose opening line names the file,

    ```python path=solution.py
    <the whole new file>
    ```

Parsing follows CommonMark (via markdown-it-py, which rich already depends on), so a
file that itself contains a ``` run is sent with a longer fence (````), exactly as
Markdown renders it. A block is labelled with a file path when

1. its info string holds a token `path=P` / `file=P` / `filename=P`, or a bare token
   containing `.` or `/` (```` ```solution.py ````, ```` ```python solution.py ````); or
2. it has no such token, and the last non-blank line before it mentions exactly one
   editable path (`### solution.py`, `**solution.py**:`).

Unlabelled blocks (snippets in the explanation) are ignored, except that a reply with
no labelled block, a single editable file and a single block uses that block (unless
the block is tagged as a diff or a shell session, which is never a whole file).

A reply is *malformed* -- `ReplyError` -- when it names a path outside the editable set
(absolute, `..`, or simply not editable), names one file twice, holds no file block,
was cut off at the token limit, or is empty. The agent turns that into a proposal the
harness records as `invalid`; the error text is shown to the model next round.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

_LABEL_PREFIXES = ("path=", "file=", "filename=", "title=")
_NOTE_MAX_CHARS = 4000
# Unlabelled blocks in these languages are never whole source files.
_NOT_A_FILE = {"diff", "patch", "udiff", "sh", "bash", "shell", "console", "zsh"}


class ReplyError(ValueError):
    """The reply does not follow the response format; the message says how."""


@dataclass(frozen=True)
class ParsedReply:
    """Files the reply rewrote (path -> full text) and its prose outside the file blocks."""

    files: dict[str, str]
    note: str


def normalize_path(label: str) -> str:
    """Canonical workspace-relative form of a label (`./a//b.py` -> `a/b.py`).

    Absolute paths, backslashes and anything that climbs out with `..` are returned in
    a form that can never equal an editable path, so they are rejected by the caller.
    """
    label = label.strip().strip("`'\"*:")
    if not label or label.startswith(("/", "~")) or "\\" in label:
        return "/" + label
    normalized = posixpath.normpath(label)
    if normalized == ".." or normalized.startswith("../"):
        return "/" + label
    return normalized


def _label_from_info(info: str) -> str | None:
    """The path named in a fence's info string, or None when it names none."""
    tokens = info.split()
    for token in tokens:
        for prefix in _LABEL_PREFIXES:
            if token.lower().startswith(prefix):
                return token[len(prefix) :].strip("'\"")
    for token in tokens:
        # A language tag never contains '.' or '/'; a file name nearly always does.
        if "." in token or "/" in token:
            return token
    return None


def _label_from_previous_line(lines: list[str], start: int, editable: set[str]) -> str | None:
    """The one editable path that the last non-blank line before line `start` mentions."""
    for line in reversed(lines[:start]):
        if not line.strip():
            continue
        mentioned = {
            path for path in editable if re.search(rf"(?<![\w./-]){re.escape(path)}(?![\w/-])", line)
        }
        return mentioned.pop() if len(mentioned) == 1 else None
    return None


def parse_reply(text: str | None, editable: set[str], *, truncated: bool = False) -> ParsedReply:
    """Extract the rewritten files from `text` (see the module docstring for the format).

    Guarantees: every returned path is in `editable`; every text ends with a newline;
    raises `ReplyError` (never anything else) for a malformed reply.
    """
    if truncated:
        raise ReplyError(
            "your reply was cut off at the token limit; send shorter files or only the files you change"
        )
    if text is None or not text.strip():
        raise ReplyError("your reply was empty; send each changed file in a fenced block labelled with its path")
    lines = text.splitlines()
    fences = [token for token in MarkdownIt("commonmark").parse(text) if token.type == "fence"]
    labelled: dict[str, str] = {}
    unlabelled: list[tuple[str, str]] = []  # (language, content)
    block_lines: set[int] = set()
    for fence in fences:
        start, end = fence.map if fence.map else (0, 0)
        block_lines.update(range(start, end))
        label = _label_from_info(fence.info)
        if label is None:
            label = _label_from_previous_line(lines, start, editable)
        if label is None:
            language = fence.info.split()[0].lower() if fence.info.split() else ""
            unlabelled.append((language, fence.content))
            continue
        path = normalize_path(label)
        if path not in editable:
            allowed = ", ".join(sorted(editable))
            raise ReplyError(f"'{label}' is not an editable file; you may only rewrite: {allowed}")
        if path in labelled:
            raise ReplyError(f"'{path}' appears in two blocks; send each file once, in full")
        labelled[path] = fence.content
    if not labelled:
        if len(editable) == 1 and len(fences) == 1 and unlabelled[0][0] not in _NOT_A_FILE:
            labelled[next(iter(editable))] = unlabelled[0][1]
        else:
            raise ReplyError(
                "no file block found; put each changed file in a fenced block whose opening line names it, "
                "e.g. ```python path=solution.py"
            )
    files = {path: content if content.endswith("\n") else content + "\n" for path, content in labelled.items()}
    prose = "\n".join(line for i, line in enumerate(lines) if i not in block_lines).strip()
    if len(prose) > _NOTE_MAX_CHARS:
        prose = prose[:_NOTE_MAX_CHARS] + " [...]"
    return ParsedReply(files=files, note=prose)
