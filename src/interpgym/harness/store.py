"""The run store: every campaign and trial, in SQLite at `$INTERPGYM_HOME/runs.db`.

WAL journal, and one transaction per trial: a trial row is committed whole or not at
all, so a campaign killed at any moment (even SIGKILL) loses at most the trial that
was running, and never records one twice (`(campaign_id, n)` is the primary key and
`n` is always the next number after the last committed trial). Readers (leaderboard,
report) may read while a campaign writes.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from interpgym.core.cache import home
from interpgym.core.errors import UserError
from interpgym.harness.records import Budgets, CampaignRecord, TrialRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    task_version TEXT NOT NULL,
    agent TEXT NOT NULL,
    agent_kind TEXT NOT NULL,
    seed INTEGER NOT NULL,
    budgets TEXT NOT NULL,
    harness_version TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    best_trial INTEGER,
    best_val REAL,
    test_score REAL,
    normalized_test REAL,
    test_metrics TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    options TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS trials (
    campaign_id TEXT NOT NULL REFERENCES campaigns(campaign_id),
    n INTEGER NOT NULL,
    status TEXT NOT NULL,
    val_score REAL,
    normalized REAL,
    params TEXT,
    files TEXT,
    diff TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}',
    wall_s REAL NOT NULL,
    peak_mem_mb REAL,
    error TEXT,
    note TEXT NOT NULL DEFAULT '',
    usage TEXT NOT NULL DEFAULT '{}',
    isolation TEXT NOT NULL DEFAULT '',
    finished_at REAL NOT NULL,
    PRIMARY KEY (campaign_id, n)
);
"""


# What one trial row may hold: a proposal's text is the agent's, so its size is capped here,
# at the boundary, whatever the agent sent (the full text of an oversized proposal is dropped).
MAX_FILES_CHARS = 1 << 20
MAX_DIFF_CHARS = 256 << 10
MAX_TEXT_CHARS = 16 << 10  # error and note


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (SQLite and strict JSON hold no inf/NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(_finite(value), sort_keys=True, allow_nan=False, default=str)


def _clip(text: str | None, limit: int) -> str | None:
    """`text` cut to `limit` characters and made encodable (a lone surrogate, e.g. from a file name
    that is not UTF-8, becomes a backslash escape instead of failing the transaction)."""
    if text is None:
        return None
    if len(text) > limit:
        text = text[:limit] + f"\n[... {len(text) - limit} more characters not recorded]"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _bounded_trial_fields(trial: TrialRecord) -> tuple[str | None, str]:
    """The `files` JSON and diff as stored: an oversized proposal keeps a clipped diff and no full files."""
    files = _dumps(trial.files)
    if files is not None and len(files) > MAX_FILES_CHARS:
        files = None
    return files, _clip(trial.diff, MAX_DIFF_CHARS) or ""


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class RunStore:
    """Campaigns and trials in one SQLite file (default `$INTERPGYM_HOME/runs.db`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else home() / "runs.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; a store that is not a usable SQLite file becomes a one-line `UserError` naming it."""
        try:
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise UserError(f"cannot open the run store {self.path}: {exc}; check INTERPGYM_HOME") from exc
        try:
            with closing(connection) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA foreign_keys=ON")
                db.row_factory = sqlite3.Row
                yield db
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise  # our own bug, not the file's: let it surface
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise UserError(f"the run store {self.path} is corrupt ({exc}); move it aside (mv {self.path} "
                                f"{self.path}.corrupt) to start a new one, or restore it from a backup") from None
            raise UserError(f"cannot use the run store {self.path}: {exc}") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def create_campaign(self, *, task: str, task_version: str, agent: str, agent_kind: str, seed: int,
                        budgets: Budgets, harness_version: str, options: dict[str, Any] | None = None) -> str:
        """Insert a new running campaign; return its id."""
        campaign_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._transaction() as db:
            db.execute(
                "INSERT INTO campaigns (campaign_id, task, task_version, agent, agent_kind, seed, budgets,"
                " harness_version, started_at, options) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (campaign_id, task, task_version, _clip(agent, 200), agent_kind, seed, _dumps(budgets.as_dict()), harness_version,
                 time.time(), _dumps(options or {})),
            )
        return campaign_id

    def add_trial(self, campaign_id: str, trial: TrialRecord, *, usage: dict[str, float] | None = None,
                  isolation: str = "") -> None:
        """Record one finished trial in one transaction. Its `n` must be the next number."""
        with self._transaction() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM trials WHERE campaign_id=?", (campaign_id,)).fetchone()
            if trial.n != count + 1:
                raise RuntimeError(f"trial n={trial.n} out of order: campaign {campaign_id} has {count} trials")
            files, diff = _bounded_trial_fields(trial)
            db.execute(
                "INSERT INTO trials (campaign_id, n, status, val_score, normalized, params, files, diff, metrics,"
                " wall_s, peak_mem_mb, error, note, usage, isolation, finished_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (campaign_id, trial.n, trial.status, _finite(trial.val_score), _finite(trial.normalized),
                 _dumps(trial.params), files, diff, _dumps(trial.metrics), _finite(trial.wall_s) or 0.0,
                 _finite(trial.peak_mem_mb), _clip(trial.error, MAX_TEXT_CHARS), _clip(trial.note, MAX_TEXT_CHARS) or "",
                 _dumps(usage or {}), isolation, time.time()),
            )

    def finish_campaign(self, campaign_id: str, *, best_trial: int | None, best_val: float | None,
                        test_score: float | None, normalized_test: float | None,
                        test_metrics: dict[str, Any] | None) -> None:
        """Mark a campaign finished with its final (test) result; idempotent."""
        with self._transaction() as db:
            db.execute(
                "UPDATE campaigns SET status='finished', best_trial=?, best_val=?, test_score=?, normalized_test=?,"
                " test_metrics=?, finished_at=? WHERE campaign_id=?",
                (best_trial, _finite(best_val), _finite(test_score), _finite(normalized_test), _dumps(test_metrics),
                 time.time(), campaign_id),
            )

    def _trial(self, row: sqlite3.Row) -> TrialRecord:
        return TrialRecord(
            n=row["n"], status=row["status"], val_score=row["val_score"], normalized=row["normalized"],
            params=_loads(row["params"]), files=_loads(row["files"]), diff=row["diff"],
            metrics=_loads(row["metrics"]) or {}, wall_s=row["wall_s"], peak_mem_mb=row["peak_mem_mb"],
            error=row["error"], note=row["note"],
        )

    def trials(self, campaign_id: str) -> list[TrialRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM trials WHERE campaign_id=? ORDER BY n", (campaign_id,)).fetchall()
        return [self._trial(r) for r in rows]

    def trial_usage(self, campaign_id: str) -> list[dict[str, float]]:
        with self._connect() as db:
            rows = db.execute("SELECT usage FROM trials WHERE campaign_id=? ORDER BY n", (campaign_id,)).fetchall()
        return [_loads(r["usage"]) or {} for r in rows]

    def _campaign(self, row: sqlite3.Row, db: sqlite3.Connection) -> CampaignRecord:
        trials = [self._trial(r) for r in
                  db.execute("SELECT * FROM trials WHERE campaign_id=? ORDER BY n", (row["campaign_id"],))]
        return CampaignRecord(
            campaign_id=row["campaign_id"], task=row["task"], task_version=row["task_version"], agent=row["agent"],
            agent_kind=row["agent_kind"], seed=row["seed"], budgets=Budgets.from_dict(_loads(row["budgets"])),
            harness_version=row["harness_version"], status=row["status"], trials=trials,
            best_val=row["best_val"], best_trial=row["best_trial"], test_score=row["test_score"],
            normalized_test=row["normalized_test"], started_at=row["started_at"], finished_at=row["finished_at"],
        )

    def campaign(self, campaign_id: str) -> CampaignRecord:
        """One campaign with its trials (`UserError` if unknown)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM campaigns WHERE campaign_id=?", (campaign_id,)).fetchone()
            if row is None:
                raise UserError(f"no campaign {campaign_id!r} in {self.path}; list them with `interpgym leaderboard`")
            return self._campaign(row, db)

    def campaign_options(self, campaign_id: str) -> dict[str, Any]:
        with self._connect() as db:
            row = db.execute("SELECT options FROM campaigns WHERE campaign_id=?", (campaign_id,)).fetchone()
        return _loads(row["options"]) if row else {}

    def test_metrics(self, campaign_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT test_metrics FROM campaigns WHERE campaign_id=?", (campaign_id,)).fetchone()
        return _loads(row["test_metrics"]) if row else None

    def campaigns(self, task: str | None = None) -> list[CampaignRecord]:
        """All campaigns (optionally of one task), oldest first, with their trials."""
        with self._connect() as db:
            query = "SELECT * FROM campaigns" + (" WHERE task=?" if task else "") + " ORDER BY started_at"
            rows = db.execute(query, (task,) if task else ()).fetchall()
            return [self._campaign(r, db) for r in rows]
