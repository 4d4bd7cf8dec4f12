"""Building the (bounded) chat prompt the `llm` agent sends for one proposal.

One stateless request per proposal: a system message with the rules and the response
format, and a user message with the task instructions, the files to start from (the
best trial so far, else the starting files) and the history of the agent's own trials.
The request is a pure function of (task, history), so a resumed campaign asks the same
question again.

Size is bounded by `max_chars`: instructions are capped, the files are sent whole (an
edit needs the full text; a task whose files alone exceed the bound is a `UserError`),
every trial gets one summary line (the most recent `_MAX_SUMMARY_LINES`), and the most
recent trials (at most `_MAX_DETAILED`) get a detailed entry (diff, error tail, metrics, note), newest first,
while room is left.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from interpgym.core.errors import UserError
from interpgym.harness.agents.base import TaskView
from interpgym.harness.records import TrialRecord

_MAX_INSTRUCTION_CHARS = 16_000
_MAX_SUMMARY_LINES = 60
_MAX_DETAILED = 10
_MAX_DIFF_CHARS = 3_000
_MAX_ERROR_CHARS = 1_500
_MAX_NOTE_CHARS = 600
_MAX_METRICS_CHARS = 600

SYSTEM_PROMPT = """\
You are a research engineer improving a solution to an interpretability task. A trusted \
harness runs your solution in a sandbox, scores it on a validation split, and shows you \
the result. Aim for the best validation score; broken or over-budget solutions score nothing.

Response format (followed exactly, or the attempt is recorded as invalid):
- First, a few sentences: what you change and why (this is recorded and shown to you later).
- Then the COMPLETE new contents of every file you change, each in its own fenced code \
block whose opening line names the file, for example:

```python path=solution.py
<the entire file>
```

- Only these files may be edited: {editable}. Any other path is rejected.
- Send whole files, never diffs or excerpts. Files you leave out stay as they are.
- If a file contains a run of three backticks, open and close its block with four.
"""


@dataclass(frozen=True)
class Prompt:
    """Chat messages for one request, and which trial's files they start from (None = starting files)."""

    messages: list[dict[str, str]]
    base_trial: int | None

    @property
    def chars(self) -> int:
        return sum(len(message["content"]) for message in self.messages)


def fenced(text: str, info: str = "") -> str:
    """`text` in a Markdown code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}{info}\n{body}{fence}"


def clip_middle(text: str, limit: int) -> str:
    """`text` if short enough, else its head and tail around a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 0)
    head, tail = text[: keep // 2], text[len(text) - (keep - keep // 2) :]
    return f"{head}\n[... {len(text) - keep} characters omitted ...]\n{tail}"


def clip_tail(text: str, limit: int) -> str:
    """The last `limit` characters of `text` (an error's end is where its cause is)."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters omitted ...]\n{text[-limit:]}"


def _better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "min" else a > b


def best_trial(history: list[TrialRecord], direction: str) -> TrialRecord | None:
    """The `ok` trial with the best finite validation score (earliest on ties), or None."""
    best: TrialRecord | None = None
    for trial in history:
        if trial.status != "ok" or trial.val_score is None or not math.isfinite(trial.val_score):
            continue
        if best is None or _better(trial.val_score, best.val_score, direction):  # type: ignore[arg-type]
            best = trial
    return best


def base_files(task: TaskView, history: list[TrialRecord]) -> tuple[dict[str, str], int | None]:
    """Files to start the next edit from: the best trial's snapshot over the starting files."""
    files = dict(task.editable_files)
    best = best_trial(history, task.direction)
    if best is None:
        return files, None
    for path, text in (best.files or {}).items():
        if path in files:
            files[path] = text
    return files, best.n


def _language(path: str) -> str:
    """The Markdown language tag for a file, from its extension ('' when unknown)."""
    suffix = path.rsplit(".", 1)[-1] if "." in path else ""
    return {"py": "python", "json": "json", "md": "markdown", "yaml": "yaml", "yml": "yaml", "toml": "toml"}.get(suffix, "")


def _score(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.6g}"


def _summary_line(trial: TrialRecord) -> str:
    return (
        f"- trial {trial.n}: {trial.status}, val score {_score(trial.val_score)}, "
        f"normalised {_score(trial.normalized)}, {trial.wall_s:.1f} s"
    )


def _detail(trial: TrialRecord) -> str:
    parts = [f"### Trial {trial.n}: {trial.status}, val score {_score(trial.val_score)}"]
    if trial.note and trial.note != trial.error:
        parts.append("Your explanation then:\n" + clip_middle(trial.note.strip(), _MAX_NOTE_CHARS))
    if trial.params:
        parts.append("Parameters: " + clip_middle(json.dumps(trial.params, sort_keys=True), _MAX_METRICS_CHARS))
    if trial.diff.strip():
        parts.append("Diff against the starting files:\n" + fenced(clip_middle(trial.diff, _MAX_DIFF_CHARS), "diff"))
    elif trial.files is not None:
        parts.append("Diff against the starting files: (none)")
    if trial.metrics:
        metrics = json.dumps(trial.metrics, sort_keys=True, default=str)
        parts.append("Metrics: " + clip_middle(metrics, _MAX_METRICS_CHARS))
    if trial.error:
        parts.append("Error (end):\n" + fenced(clip_tail(trial.error, _MAX_ERROR_CHARS)))
    return "\n".join(parts)


def build_prompt(task: TaskView, history: list[TrialRecord], max_chars: int) -> Prompt:
    """The messages for the next proposal; their total length is at most `max_chars`.

    Raises `UserError` when the instructions (capped) and the editable files alone do
    not fit, since the model cannot rewrite a file it has not seen whole.
    """
    editable = ", ".join(sorted(task.editable_files))
    system = SYSTEM_PROMPT.format(editable=editable)
    files, base_n = base_files(task, history)
    origin = "the starting files" if base_n is None else f"your best trial so far (trial {base_n})"
    file_blocks = "\n\n".join(
        f"{path}:\n{fenced(text, f'{_language(path)} path={path}')}" for path, text in sorted(files.items())
    )
    head = (
        f"# Task {task.id} (version {task.version}); "
        f"{'lower' if task.direction == 'min' else 'higher'} validation score is better.\n\n"
        f"{clip_middle(task.instructions.strip(), _MAX_INSTRUCTION_CHARS)}\n\n"
        f"# Current files ({origin})\n\n{file_blocks}\n"
    )
    tail = "\nPropose your next attempt: explanation first, then the complete changed files."
    room = max_chars - len(system) - len(head) - len(tail)
    if room < 0:
        raise UserError(
            f"task {task.id}: instructions and editable files need {len(system) + len(head) + len(tail)} "
            f"characters, above the llm agent's prompt limit of {max_chars}; raise max_prompt_chars"
        )
    history_text = _history_section(history, room)
    user = head + history_text + tail
    return Prompt(messages=[{"role": "system", "content": system}, {"role": "user", "content": user}], base_trial=base_n)


def _history_section(history: list[TrialRecord], room: int) -> str:
    """Summary lines then detailed entries for the latest trials, within `room` characters."""
    if not history:
        text = "\n# History\n\nNo trials yet: this is your first attempt.\n"
        return text if len(text) <= room else ""
    shown = history[-_MAX_SUMMARY_LINES:]
    lines = [_summary_line(trial) for trial in shown]
    if len(shown) < len(history):
        lines.insert(0, f"- ({len(history) - len(shown)} earlier trials not listed)")
    summary = "\n# History of your trials (oldest first)\n\n" + "\n".join(lines) + "\n"
    while len(summary) > room and len(lines) > 1:
        lines.pop(0)
        summary = "\n# History of your trials (most recent)\n\n" + "\n".join(lines) + "\n"
    if len(summary) > room:
        return ""
    details: list[str] = []
    used = len(summary) + len("\n# Latest trials in detail\n\n")
    for trial in reversed(history[-_MAX_DETAILED:]):
        entry = _detail(trial) + "\n\n"
        if used + len(entry) > room:
            break
        details.insert(0, entry)
        used += len(entry)
    if not details:
        return summary
    return summary + "\n# Latest trials in detail\n\n" + "".join(details)
