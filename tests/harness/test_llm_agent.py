"""The `llm` agent against a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interpgym.core.errors import UserError
from interpgym.harness.agents.base import BudgetExhausted
from interpgym.harness.agents.llm import LLMAgent, resolve_endpoint
from interpgym.harness.agents.llm_reply import ReplyError, parse_reply
from interpgym.harness.records import TrialRecord

from .fake_openai import FakeOpenAI, error, reply

STARTING = "def train():\n    return 'start'\n"
HELPER = "SCALE = 1\n"
GOOD_REPLY = """\
I raise the learning rate because the loss plateaued.

```python path=solution.py
def train():
    return 'better'
```
"""


@dataclass
class FakeTask:
    id: str = "toy/task"
    version: str = "1"
    instructions: str = "Recover the features. UNIQUE-INSTRUCTION-MARKER."
    direction: str = "max"
    editable_files: dict[str, str] = field(default_factory=lambda: {"solution.py": STARTING, "lib/helper.py": HELPER})
    search_space: dict[str, Any] | None = None


def make_agent(server: FakeOpenAI, **kwargs: Any) -> LLMAgent:
    options: dict[str, Any] = {"model": "fake-model", "base_url": server.base_url, "max_retries": 0, "timeout_s": 5.0}
    options.update(kwargs)
    return LLMAgent(**options)


def test_proposal_parses_files_and_sends_seeded_request() -> None:
    with FakeOpenAI([reply(GOOD_REPLY)]) as server:
        proposal = make_agent(server, seed=7, temperature=0.3).propose(FakeTask(), [])
    assert proposal.files == {"solution.py": "def train():\n    return 'better'\n", "lib/helper.py": HELPER}
    assert "learning rate" in proposal.note
    assert proposal.malformed is None
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "fake-model"
    assert request.body["seed"] == 7 and request.body["temperature"] == 0.3
    assert request.body["max_tokens"] >= 512
    assert "UNIQUE-INSTRUCTION-MARKER" in request.prompt_text
    assert STARTING in request.prompt_text and "path=lib/helper.py" in request.prompt_text
    assert proposal.usage["requests"] == 1
    assert proposal.usage["prompt_tokens"] > 0 and proposal.usage["completion_tokens"] > 0


def test_history_is_sent_and_best_trial_is_the_base() -> None:
    best_files = {"solution.py": "def train():\n    return 'best-so-far'\n"}
    history = [
        TrialRecord(n=0, status="ok", val_score=0.4, normalized=0.2, files=best_files, diff="-start\n+best-so-far"),
        TrialRecord(
            n=1,
            status="crash",
            val_score=None,
            normalized=None,
            diff="+raise",
            error="Traceback ...\n" + "x" * 5000 + "\nValueError: UNIQUE-ERROR-TAIL",
            note="tried something bold",
        ),
        TrialRecord(n=2, status="ok", val_score=0.1, normalized=0.05, files={"solution.py": "worse\n"}),
    ]
    with FakeOpenAI([reply(GOOD_REPLY)]) as server:
        proposal = make_agent(server, seed=3).propose(FakeTask(), history)
    sent = server.requests[0].prompt_text
    assert "trial 1: crash" in sent and "UNIQUE-ERROR-TAIL" in sent and "tried something bold" in sent
    assert "best-so-far" in sent and "best trial so far (trial 0)" in sent
    assert "x" * 5000 not in sent  # error tails are clipped
    assert server.requests[0].body["seed"] == 3 + len(history)
    assert proposal.files is not None and proposal.files["lib/helper.py"] == HELPER


def test_prompt_stays_bounded_with_long_history() -> None:
    history = [
        TrialRecord(n=i, status="invalid", val_score=None, normalized=None, diff="+" + "d" * 4000, error="e" * 4000)
        for i in range(200)
    ]
    with FakeOpenAI([reply(GOOD_REPLY)]) as server:
        make_agent(server, max_prompt_chars=20_000).propose(FakeTask(), history)
    messages = server.requests[0].body["messages"]
    assert sum(len(m["content"]) for m in messages) <= 20_000
    assert "trial 199: invalid" in server.requests[0].prompt_text  # the newest trial is kept


@pytest.mark.parametrize(
    ("content", "finish_reason", "expected"),
    [
        ("I think we should just tune it.", "stop", "no file block"),
        ("```python path=../scorer.py\nprint('hi')\n```\n", "stop", "not an editable file"),
        ("```python path=/etc/passwd\nx\n```\n", "stop", "not an editable file"),
        ("```python path=solution.py\nx = 1\n", "length", "cut off"),
        (None, "stop", "empty"),
    ],
)
def test_malformed_reply_becomes_recordable_proposal(content: str | None, finish_reason: str, expected: str) -> None:
    with FakeOpenAI([reply(content, finish_reason=finish_reason)]) as server:
        proposal = make_agent(server).propose(FakeTask(), [])
    assert proposal.malformed is not None and proposal.files is None and proposal.params is None
    assert proposal.malformed.startswith("malformed reply: ") and expected in proposal.malformed
    assert proposal.usage["requests"] == 1  # a bad reply still costs its tokens


def test_malformed_error_is_shown_to_the_model_next_round() -> None:
    with FakeOpenAI([reply("no code here"), reply(GOOD_REPLY)]) as server:
        agent = make_agent(server)
        task = FakeTask()
        bad = agent.propose(task, [])
        # As the harness records it: the malformed text is the trial's error; the note is the agent's own (empty).
        history = [TrialRecord(n=0, status="invalid", val_score=None, normalized=None, error=bad.malformed, note=bad.note)]
        good = agent.propose(task, history)
    assert server.requests[1].prompt_text.count("no file block found") == 1  # shown once, as the error
    assert good.files is not None


def test_reply_parser_accepts_common_labellings() -> None:
    editable = {"solution.py", "lib/helper.py"}
    text = (
        "Changes below.\n\n### lib/helper.py\n```python\nSCALE = 2\n```\n\n"
        "````solution.py\ns = '''\n```\nnot a fence end\n```\n'''\n````\n\n"
        "A snippet that is not a file:\n```\nignored()\n```\n"
    )
    parsed = parse_reply(text, editable)
    assert parsed.files == {"lib/helper.py": "SCALE = 2\n", "solution.py": "s = '''\n```\nnot a fence end\n```\n'''\n"}
    assert "Changes below." in parsed.note and "ignored()" not in parsed.note
    # A single unlabelled block is accepted only when there is a single editable file.
    assert parse_reply("```python\nx = 1\n```", {"solution.py"}).files == {"solution.py": "x = 1\n"}
    with pytest.raises(ReplyError, match="no file block"):
        parse_reply("```python\nx = 1\n```", editable)
    with pytest.raises(ReplyError, match="two blocks"):
        parse_reply("```path=solution.py\na\n```\n```path=./solution.py\nb\n```", editable)


def test_token_budget_stops_before_the_request_that_could_exceed_it() -> None:
    # Worst case: every reply uses its whole completion cap.
    script = [reply(GOOD_REPLY, completion_tokens="cap") for _ in range(10)]
    with FakeOpenAI(script) as server:
        agent = make_agent(server, max_total_tokens=3000, max_completion_tokens=600, min_completion_tokens=100)
        proposals = 0
        with pytest.raises(BudgetExhausted):
            for _ in range(10):
                agent.propose(FakeTask(), [])
                proposals += 1
    assert proposals == len(server.requests) >= 2
    assert 3000 - 100 - 400 < agent.spent["total_tokens"] <= 3000  # stops only when less than a request is left
    for request in server.requests:
        assert request.body["max_tokens"] <= 600


def test_cost_budget_uses_configured_prices() -> None:
    with FakeOpenAI([reply(GOOD_REPLY, prompt_tokens=1000, completion_tokens=500) for _ in range(5)]) as server:
        agent = make_agent(
            server,
            max_total_tokens=None,
            max_cost_usd=0.05,
            usd_per_1k_prompt_tokens=0.01,
            usd_per_1k_completion_tokens=0.02,
            min_completion_tokens=100,
            max_completion_tokens=1000,
        )
        first = agent.propose(FakeTask(), [])
        assert first.usage["cost_usd"] == pytest.approx(1000 * 0.01 / 1000 + 500 * 0.02 / 1000)
        with pytest.raises(BudgetExhausted):
            for _ in range(4):
                agent.propose(FakeTask(), [])
    assert agent.spent["cost_usd"] <= 0.05
    assert len(server.requests) < 5


def test_restored_spending_counts_against_the_budget() -> None:
    with FakeOpenAI([reply(GOOD_REPLY)]) as server:
        agent = make_agent(server, max_total_tokens=10_000, already_spent={"prompt_tokens": 9000, "completion_tokens": 900})
        with pytest.raises(BudgetExhausted):
            agent.propose(FakeTask(), [])
    assert server.requests == []


def test_usage_is_estimated_when_the_server_reports_none() -> None:
    with FakeOpenAI([reply(GOOD_REPLY, report_usage=False)]) as server:
        proposal = make_agent(server).propose(FakeTask(), [])
    assert proposal.usage["estimated"] == 1 and proposal.usage["prompt_tokens"] > 0


def test_retries_a_500_then_succeeds() -> None:
    script = [error(500, headers={"retry-after-ms": "10"}), reply(GOOD_REPLY)]
    with FakeOpenAI(script) as server:
        proposal = make_agent(server, max_retries=2).propose(FakeTask(), [])
    assert proposal.files is not None and len(server.requests) == 2


def test_persistent_failure_is_a_user_error_after_bounded_requests() -> None:
    script = [error(503, headers={"retry-after-ms": "10"}) for _ in range(5)]
    with FakeOpenAI(script) as server:
        with pytest.raises(UserError, match="HTTP 503 after 3 tries"):
            make_agent(server, max_retries=2).propose(FakeTask(), [])
    assert len(server.requests) == 3


def test_bad_key_is_a_clear_user_error_without_retries() -> None:
    with FakeOpenAI([reply(GOOD_REPLY)], require_key="sk-right") as server:
        with pytest.raises(UserError, match="rejected the API key"):
            make_agent(server, api_key="sk-wrong", max_retries=3).propose(FakeTask(), [])
    assert len(server.requests) == 1


def test_timeout_is_bounded() -> None:
    with FakeOpenAI([reply(GOOD_REPLY, delay_s=1.5)]) as server:
        start = time.monotonic()
        with pytest.raises(UserError, match="did not answer within"):
            make_agent(server, timeout_s=0.3, max_retries=0).propose(FakeTask(), [])
        assert time.monotonic() - start < 1.4
    assert len(server.requests) == 1


def test_unreachable_server_is_a_user_error() -> None:
    with FakeOpenAI([]) as server:
        url = server.base_url
    with pytest.raises(UserError, match="cannot connect"):
        LLMAgent("m", base_url=url, max_retries=0, timeout_s=2).propose(FakeTask(), [])


def test_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERPGYM_LLM_MODEL", "env-model")
    monkeypatch.setenv("INTERPGYM_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    endpoint = resolve_endpoint()
    assert (endpoint.model, endpoint.base_url, endpoint.api_key) == ("env-model", "http://127.0.0.1:9/v1", "sk-fallback")
    monkeypatch.setenv("INTERPGYM_LLM_API_KEY", "sk-primary")
    assert resolve_endpoint().api_key == "sk-primary"
    monkeypatch.delenv("INTERPGYM_LLM_MODEL")
    with pytest.raises(UserError, match="needs a model"):
        resolve_endpoint()
    monkeypatch.delenv("INTERPGYM_LLM_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("INTERPGYM_LLM_BASE_URL")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match="needs a key"):
        resolve_endpoint("gpt-x")
    assert resolve_endpoint("llama3", "http://localhost:11434/v1").api_key == "not-needed"


def test_cost_budget_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERPGYM_LLM_MAX_COST_USD", "0.001")
    monkeypatch.setenv("INTERPGYM_LLM_USD_PER_1K_PROMPT_TOKENS", "1.0")
    monkeypatch.setenv("INTERPGYM_LLM_USD_PER_1K_COMPLETION_TOKENS", "2.0")
    with FakeOpenAI([reply(GOOD_REPLY)]) as server:
        agent = make_agent(server)
        assert (agent.max_cost_usd, agent.usd_per_1k_prompt_tokens, agent.usd_per_1k_completion_tokens) == (0.001, 1.0, 2.0)
        with pytest.raises(BudgetExhausted):  # $0.001 buys one prompt token: no request is affordable
            agent.propose(FakeTask(), [])
    assert server.requests == []
    monkeypatch.setenv("INTERPGYM_LLM_MAX_COST_USD", "lots")
    with pytest.raises(UserError, match="not a number"):
        LLMAgent("m", base_url="http://127.0.0.1:9/v1")


def test_unlabelled_diff_is_not_taken_for_a_file() -> None:
    with pytest.raises(ReplyError, match="no file block"):
        parse_reply("```diff\n-a\n+b\n```", {"solution.py"})


_PIECES = [*"`~ \n=./abc_-", "path=", "solution.py", "lib/helper.py", "../x.py", "```", "```python ", "\n```\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=60).map("".join))
def test_reply_parser_never_escapes_the_editable_set(text: str) -> None:
    editable = {"solution.py", "lib/helper.py"}
    try:
        parsed = parse_reply(text, editable)
    except ReplyError:
        return
    assert set(parsed.files) <= editable and parsed.files
    assert all(content.endswith("\n") for content in parsed.files.values())


def test_silently_truncated_prompt_is_a_user_error() -> None:
    # Ollama with its default context counts (and reads) only the first 2048 tokens.
    traceback = "".join(f'  File "solution.py", line {i}, in step_{i}\n    loss_{i} = model(batch_{i})\n' for i in range(25))
    history = [TrialRecord(n=i, status="crash", val_score=None, normalized=None, error=traceback) for i in range(30)]
    with FakeOpenAI([reply(GOOD_REPLY, prompt_tokens=2048)]) as server:
        with pytest.raises(UserError, match="context"):
            make_agent(server).propose(FakeTask(), history)
    assert len(server.requests[0].prompt_text) > 2048 / 0.12
