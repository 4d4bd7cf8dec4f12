"""The leaderboard: campaigns -> one row per (task, task version, agent), ranked, noise marked.

Harness-facing API (pure functions, no I/O):

    rows = leaderboard_rows(campaigns, noise_floors={"sae/toy": 0.04})   # list[LeaderboardRow]
    table = render_leaderboard(rows)                                   # rich.table.Table
    noise_marks(row)                                                   # e.g. "tied with leader, ≈ ref"
    [row.to_json() for row in rows]                                    # JSON-able dicts, stable keys
    noise_floor(reference_scores, start_score, reference_score)        # -> float (normalised units)

Definitions.
* Scores are *normalised*: (s - s_start) / (s_ref - s_start), so 0 is the starting
  solution, 1 the reference, and higher is better whatever the task's direction. They
  are read from `TrialRecord.normalized` and `CampaignRecord.normalized_test`.
* A row pools every campaign of one agent (name and kind) on one task version, e.g.
  three seeds: best normalised val (over all its trials), best and mean normalised
  test (over its campaigns that have a test score), trials, failures by status, wall
  time. Campaigns on different task versions are never pooled: their scores differ.
* Rank (per task version): rows with a test score first, by best normalised test; then
  rows without one, by best normalised val. Human, AI and built-in agents share a board.
* Noise floor (per task, normalised units, passed in): how far apart two scores of the
  *same* solution can land over seeds -- use `noise_floor` on the reference solution's
  scores over >= 3 seeds. A row whose best test is within it of the leader's is marked
  `tied_with_leader`; `vs_reference` / `vs_starting` say whether it is clearly above,
  within noise of, or clearly below the reference (1) / starting (0) solution. All
  these comparisons allow `NUMERICAL_TOLERANCE` (1e-6) on top of the floor for float
  rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rich import box
from rich.markup import escape
from rich.table import Table

from interpgym.core.errors import UserError
from interpgym.harness.records import STATUSES, AgentKind, CampaignRecord

Comparison = Literal["above", "within noise", "below"]
# Normalised scores closer than this are equal: it absorbs float rounding (artifacts are
# often float32), so a deterministic task (noise floor 0) does not call a re-derivation
# of the reference "above" it by 4e-8.
NUMERICAL_TOLERANCE = 1e-6
# Rows are ranked on their mean normalised test score only with at least this many
# tested campaigns (as MLE-bench requires); rows with fewer rank after them, by best test.
MIN_CAMPAIGNS_TO_RANK = 3


@dataclass(frozen=True)
class LeaderboardRow:
    """One agent on one task version (see the module docstring for each definition)."""

    task: str
    task_version: str
    agent: str
    agent_kind: AgentKind
    rank: int
    campaigns: int
    trials: int
    failures: dict[str, int]  # every non-ok status -> count (zeros included)
    best_normalized_val: float | None
    best_normalized_test: float | None
    mean_normalized_test: float | None
    sem_normalized_test: float | None  # standard error of that mean (None with < 2 tested campaigns)
    test_scores: int  # campaigns that have a test score
    ranked: bool  # test_scores >= MIN_CAMPAIGNS_TO_RANK: ranked on the mean, else after those on the best
    best_val: float | None  # raw val score of the trial with the best normalised val
    best_test: float | None  # raw test score of the campaign with the best normalised test
    wall_s: float  # sum of trial wall times
    campaign_ids: tuple[str, ...]  # the pooled campaigns, oldest first (for `campaign show` / `--resume`)
    noise_floor: float | None
    tied_with_leader: bool | None  # None without a test score or a noise floor
    vs_reference: Comparison | None
    vs_starting: Comparison | None

    @property
    def ok(self) -> int:
        return self.trials - sum(self.failures.values())

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with stable keys (non-finite floats become None)."""
        data = asdict(self)
        data["ok"] = self.ok
        data["campaign_ids"] = list(self.campaign_ids)
        return {key: _finite_or_none(value) for key, value in data.items()}


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def noise_floor(reference_scores: Sequence[float], start_score: float, reference_score: float) -> float:
    """Spread (max - min) of the reference solution's raw scores over seeds, in normalised units.

    Needs >= 3 finite scores and distinct starting and reference scores (else `UserError`).
    """
    scores = [float(score) for score in reference_scores]
    if len(scores) < 3 or not all(math.isfinite(score) for score in scores):
        raise UserError(f"a noise floor needs >= 3 finite reference scores (one per seed), got {scores}")
    if not math.isfinite(reference_score - start_score) or reference_score == start_score:
        raise UserError("the starting and reference scores must differ to normalise a noise floor")
    return (max(scores) - min(scores)) / abs(reference_score - start_score)


def _compare(score: float | None, target: float, floor: float | None) -> Comparison | None:
    if not _finite(score) or floor is None:
        return None
    margin = floor + NUMERICAL_TOLERANCE
    if score > target + margin:  # type: ignore[operator]
        return "above"
    if score < target - margin:  # type: ignore[operator]
        return "below"
    return "within noise"


def _pool(task: str, version: str, agent: str, kind: AgentKind, campaigns: list[CampaignRecord]) -> dict[str, Any]:
    """Aggregate one agent's campaigns on one task version (everything but rank and noise marks)."""
    trials = [trial for campaign in campaigns for trial in campaign.trials]
    failures = {status: 0 for status in STATUSES if status != "ok"}
    for trial in trials:
        if trial.status != "ok":
            failures[trial.status] = failures.get(trial.status, 0) + 1
    scored = [trial for trial in trials if trial.status == "ok" and _finite(trial.normalized)]
    best_trial = max(scored, key=lambda trial: trial.normalized, default=None)  # type: ignore[arg-type, return-value]
    tested = [campaign for campaign in campaigns if _finite(campaign.normalized_test)]
    best_campaign = max(tested, key=lambda c: c.normalized_test, default=None)  # type: ignore[arg-type, return-value]
    return {
        "task": task,
        "task_version": version,
        "agent": agent,
        "agent_kind": kind,
        "campaigns": len(campaigns),
        "trials": len(trials),
        "failures": failures,
        "best_normalized_val": None if best_trial is None else best_trial.normalized,
        "best_normalized_test": None if best_campaign is None else best_campaign.normalized_test,
        "mean_normalized_test": (
            sum(c.normalized_test for c in tested) / len(tested) if tested else None  # type: ignore[misc]
        ),
        "sem_normalized_test": _sem([c.normalized_test for c in tested]),  # type: ignore[misc]
        "test_scores": len(tested),
        "ranked": len(tested) >= MIN_CAMPAIGNS_TO_RANK,
        "best_val": None if best_trial is None else best_trial.val_score,
        "best_test": None if best_campaign is None else best_campaign.test_score,
        "wall_s": float(sum(trial.wall_s for trial in trials)),
        "campaign_ids": tuple(c.campaign_id for c in sorted(campaigns, key=lambda c: (c.started_at, c.campaign_id))),
    }


def _sem(values: list[float]) -> float | None:
    """Standard error of the mean (sample standard deviation / sqrt(n)); None for fewer than 2 values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def _rank_score(pooled: dict[str, Any]) -> float | None:
    """What a row is ranked (and compared with the leader) on: its mean normalised test when
    ranked (>= MIN_CAMPAIGNS_TO_RANK tested campaigns), else its best."""
    return pooled["mean_normalized_test"] if pooled["ranked"] else pooled["best_normalized_test"]


def _rank_key(pooled: dict[str, Any]) -> tuple[int, float, float, str, str]:
    test, val = _rank_score(pooled), pooled["best_normalized_val"]
    return (
        0 if pooled["ranked"] else 1 if test is not None else 2,
        -(test if test is not None else 0.0),
        -(val if val is not None else -math.inf),
        pooled["agent"],
        pooled["agent_kind"],
    )


def leaderboard_rows(
    campaigns: Sequence[CampaignRecord], noise_floors: Mapping[str, float] | None = None
) -> list[LeaderboardRow]:
    """Rows for every (task, task version, agent) in `campaigns`, ordered by task, version, rank.

    `noise_floors` maps a task id to its noise floor in normalised units (see
    `noise_floor`); tasks without one get no noise marks. Deterministic: the same
    campaigns in any order give the same rows.
    """
    floors = dict(noise_floors or {})
    for task, floor in floors.items():
        if not (math.isfinite(floor) and floor >= 0):
            raise UserError(f"noise floor for task {task} must be a finite number >= 0, got {floor}")
    groups: dict[tuple[str, str, str, AgentKind], list[CampaignRecord]] = {}
    for campaign in campaigns:
        key = (campaign.task, campaign.task_version, campaign.agent, campaign.agent_kind)
        groups.setdefault(key, []).append(campaign)
    boards: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (task, version, agent, kind), members in groups.items():
        boards.setdefault((task, version), []).append(_pool(task, version, agent, kind, members))
    rows: list[LeaderboardRow] = []
    for (task, version) in sorted(boards):
        pooled_rows = sorted(boards[(task, version)], key=_rank_key)
        floor = floors.get(task)
        leader = _rank_score(pooled_rows[0])
        for rank, pooled in enumerate(pooled_rows, start=1):
            test = _rank_score(pooled)
            tied = None
            if floor is not None and test is not None and leader is not None:
                tied = leader - test <= floor + NUMERICAL_TOLERANCE
            rows.append(
                LeaderboardRow(
                    rank=rank,
                    noise_floor=floor,
                    tied_with_leader=tied,
                    vs_reference=_compare(test, 1.0, floor),
                    vs_starting=_compare(test, 0.0, floor),
                    **pooled,
                )
            )
    return rows


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _mean_sem(row: LeaderboardRow) -> str:
    """"mean±SEM" of the normalised test scores (just the mean with one campaign)."""
    if row.sem_normalized_test is None:
        return _fmt(row.mean_normalized_test)
    sem = f"{row.sem_normalized_test:.3f}"
    return f"{_fmt(row.mean_normalized_test)}\n±{sem[1:] if sem.startswith('0.') else sem}"  # ±.050: narrow


def noise_marks(row: LeaderboardRow) -> str:
    """Plain-text noise marks for a row, e.g. "tied with leader, ≈ ref" ("no floor" without one)."""
    if row.noise_floor is None:
        return "no floor"
    marks = []
    if row.rank == 1 and row.best_normalized_test is not None:
        marks.append("leader")
    elif row.tied_with_leader:
        marks.append("tied with leader")
    if row.vs_reference is not None:
        marks.append({"above": "> ref", "within noise": "≈ ref", "below": "< ref"}[row.vs_reference])
    if row.vs_starting == "within noise":
        marks.append("≈ start")
    if row.test_scores and not row.ranked:
        marks.append("unranked")
    return ", ".join(marks) if marks else "-"


def render_leaderboard(rows: Sequence[LeaderboardRow], title: str = "Leaderboard") -> Table:
    """A rich table of `rows` (in their order), one section per task version."""
    # Borderless, two-line headers, the agent's kind under its name, minimum widths for
    # the text columns: the table stays readable in an 80-column terminal (rich would
    # otherwise squeeze every cell to "1.…").
    table = Table(title=title, caption="normalised scores: 0 = starting solution, 1 = reference; mean test ± SEM "
                  f"over campaigns; unranked: < {MIN_CAMPAIGNS_TO_RANK} tested campaigns",
                  box=box.SIMPLE_HEAD, padding=(0, 0), collapse_padding=True, show_edge=False)
    for column, justify, min_width in (
        ("task", "left", 11),
        ("#", "right", None),
        ("agent\n(kind)", "left", 9),
        ("camp-\naigns", "right", None),
        ("trials", "right", None),
        ("failures", "left", 9),
        ("best\nval", "right", None),
        ("best\ntest", "right", None),
        ("mean\ntest", "right", None),
        ("wall", "right", None),
        ("noise", "left", 9),
    ):
        table.add_column(column, justify=justify, min_width=min_width,  # type: ignore[arg-type]
                         no_wrap=min_width is None)
    previous: tuple[str, str] | None = None
    for row in rows:
        board = (row.task, row.task_version)
        if previous is not None and board != previous:
            table.add_section()
        failures = ", ".join(f"{status} {count}" for status, count in row.failures.items() if count) or "none"
        floor = "" if row.noise_floor is None else f"\nnoise ±{row.noise_floor:.3f}"
        table.add_row(
            f"{row.task} v{row.task_version}{floor}" if board != previous else "",
            str(row.rank),
            f"{escape(row.agent)}\n({row.agent_kind})",  # agent names are free text: never markup
            str(row.campaigns),
            str(row.trials),
            failures,
            _fmt(row.best_normalized_val),
            _fmt(row.best_normalized_test),
            _mean_sem(row),
            f"{row.wall_s:.0f} s",
            noise_marks(row).replace(", ", "\n"),  # one mark per line: narrow terminals
            style="bold" if row.rank == 1 else None,
        )
        previous = board
    return table


def render_campaign_ids(rows: Sequence[LeaderboardRow]) -> Table:
    """A rich table: which campaigns each leaderboard row pools (ids for `campaign show ID` and `--resume ID`)."""
    table = Table(title="Campaigns per row", box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    for column in ("task", "#", "agent", "campaign ids"):
        table.add_column(column, no_wrap=column != "agent")
    for row in rows:
        table.add_row(f"{row.task} v{row.task_version}", str(row.rank), escape(row.agent), "\n".join(row.campaign_ids))
    return table
