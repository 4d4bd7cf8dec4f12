"""The static HTML report: valid, self-contained, offline, complete, escaped, atomic."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from interpgym.core.errors import UserError
from interpgym.harness.leaderboard import leaderboard_rows
from interpgym.harness.records import Budgets, CampaignRecord, TrialRecord
from interpgym.report import write_report
from interpgym.report.page import MARKER

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "col", "area", "base", "embed", "track"}


class StrictParser(HTMLParser):
    """Checks tag balance and collects every resource reference."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.references: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self.anchors: list[str] = []  # in-page links (#id)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name == "id" and value is not None:
                self.ids.add(value)
            if name in ("src", "href") and value is not None:
                (self.anchors if value.startswith("#") else self.references).append(value)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def make_campaign(cid: str, agent: str, kind: str, task: str, statuses: list[str], test: float | None) -> CampaignRecord:
    trials = []
    for n, status in enumerate(statuses):
        normalized = 0.1 * n if status == "ok" else None
        trials.append(
            TrialRecord(
                n=n,
                status=status,  # type: ignore[arg-type]
                val_score=None if normalized is None else 0.5 + normalized,
                normalized=normalized,
                wall_s=2.0,
                error="Traceback\n<script>alert('x')</script>" if status == "crash" else None,
            )
        )
    return CampaignRecord(
        campaign_id=cid,
        task=task,
        task_version="1",
        agent=agent,
        agent_kind=kind,  # type: ignore[arg-type]
        seed=0,
        budgets=Budgets(trials=len(statuses)),
        harness_version="test",
        status="finished",
        trials=trials,
        best_val=0.8,
        best_trial=3,
        test_score=None if test is None else 0.5 + test,
        normalized_test=test,
        started_at=100.0,
        finished_at=160.0,
    )


CAMPAIGNS = [
    make_campaign("c-optuna-0", "optuna", "builtin", "sae/toy", ["ok", "crash", "ok", "ok", "timeout", "invalid"], 0.28),
    make_campaign("c-llm-0", "llm:<b>evil</b>", "ai", "sae/toy", ["ok", "oom", "ok"], 0.09),
    make_campaign("c-human-1", "alice", "human", "proofs/maxk", ["ok", "ok"], None),
]


def task_plot(path: Path) -> Path:
    figure = Figure(figsize=(2, 2))
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([0, 1], [1, 0])
    figure.savefig(path)
    return path


def test_report_is_valid_self_contained_and_complete(tmp_path: Path) -> None:
    features = task_plot(tmp_path / "feature recovery.png")
    rows = leaderboard_rows(CAMPAIGNS, {"sae/toy": 0.05})
    out = tmp_path / "report"
    index = write_report(out, CAMPAIGNS, rows, {"sae/toy": [features]}, generated_at="fixed")
    assert index == out / "index.html"
    parser = StrictParser()
    parser.feed(index.read_text(encoding="utf-8"))
    parser.close()
    assert parser.problems == [] and parser.stack == []
    assert {"html", "head", "body", "table", "img"} <= parser.tags
    assert "script" not in parser.tags and "link" not in parser.tags  # no JS, no external CSS
    # Every reference is a relative path to a file inside the report: it opens offline.
    assert parser.references
    for reference in parser.references:
        assert "://" not in reference and not reference.startswith(("/", "data:", "//"))
        target = (out / reference).resolve()
        assert target.is_file() and out.resolve() in target.parents
        assert target.read_bytes().startswith(PNG_MAGIC)
    versions = {(c.task, c.task_version) for c in CAMPAIGNS if c.status == "finished"}
    # one plot per campaign, the task plot, and one budget-curves plot per task version
    assert len(set(parser.references)) == len(CAMPAIGNS) + 1 + len(versions)
    assert sum(reference.startswith("curves/") for reference in set(parser.references)) == len(versions) >= 1
    # The leaderboard links each row's campaign ids to their sections on the page.
    assert len(parser.anchors) == len(CAMPAIGNS) and {a[1:] for a in parser.anchors} <= parser.ids
    text = " ".join(parser.text)
    for campaign in CAMPAIGNS:
        assert campaign.campaign_id in text and campaign.agent in text
    assert "feature recovery" in text and "tied with leader" not in text
    # Agent-written text is escaped, never markup.
    html = index.read_text(encoding="utf-8")
    assert "<b>evil</b>" not in html and "&lt;b&gt;evil&lt;/b&gt;" in html
    assert "<script>" not in html
    assert (out / MARKER).exists()


def test_report_replaces_only_previous_reports(tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(out, CAMPAIGNS[:1], leaderboard_rows(CAMPAIGNS[:1]))
    write_report(out, CAMPAIGNS, leaderboard_rows(CAMPAIGNS))  # a previous report is replaced
    assert "c-human-1" in (out / "index.html").read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no staging left behind
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an interpgym report"):
        write_report(precious, CAMPAIGNS, [])
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    with pytest.raises(UserError, match="does not exist"):
        write_report(tmp_path / "other", CAMPAIGNS, [], {"sae/toy": [tmp_path / "missing.png"]})
    assert not (tmp_path / "other").exists()


def test_report_directory_is_readable_by_others(tmp_path: Path) -> None:
    import os
    import stat

    umask = os.umask(0o022)
    try:
        out = write_report(tmp_path / "r", [], []).parent
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # not mkdtemp's 0700


def test_empty_report(tmp_path: Path) -> None:
    index = write_report(tmp_path / "r", [], [])
    parser = StrictParser()
    parser.feed(index.read_text(encoding="utf-8"))
    assert parser.problems == [] and "No campaigns yet." in " ".join(parser.text)
