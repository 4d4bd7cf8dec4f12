"""The `llm` agent inside a real campaign: proposals run in the sandbox, every outcome is recorded."""

from __future__ import annotations

from interpgym.harness.campaign import run_campaign
from interpgym.harness.store import RunStore

from .fake_openai import FakeOpenAI, reply

MEDIAN_SOLUTION = """\
Use the coordinate-wise median: robust to the heavy noise.

```python path=solution.py
import os
import numpy as np
from safetensors.numpy import load_file, save_file

x = load_file("data/train.safetensors")["x"]
save_file({"w": np.median(x, axis=0)}, os.path.join(os.environ["INTERPGYM_ARTIFACT_DIR"], "answer.safetensors"))
```
"""
CRASHING_SOLUTION = """\
```python path=solution.py
raise RuntimeError("the model wrote a bug")
```
"""


def test_llm_campaign_records_ok_malformed_and_crash(demo):
    with FakeOpenAI([reply(MEDIAN_SOLUTION), reply("I forgot the code block."), reply(CRASHING_SOLUTION)]) as server:
        record = run_campaign("demo/mean", "llm", trials=3, seed=0,
                              agent_options={"model": "fake-model", "base_url": server.base_url, "max_retries": 0})
        assert len(server.requests) == 3
        # the model saw its earlier attempts: the third prompt mentions the first trial's outcome
        assert "answer.safetensors" in server.requests[2].prompt_text
    assert [t.status for t in record.trials] == ["ok", "invalid", "crash"]
    ok, malformed, crash = record.trials
    assert ok.normalized > 0.5 and "np.median" in ok.files["solution.py"] and "np.median" in ok.diff
    assert malformed.error.startswith("malformed reply")
    assert "the model wrote a bug" in crash.error
    assert record.agent == "llm:fake-model" and record.agent_kind == "ai"
    assert record.best_trial == 1 and record.normalized_test > 0.5
    usage = RunStore().trial_usage(record.campaign_id)
    assert all(u.get("prompt_tokens", 0) > 0 for u in usage)


def test_cost_budget_flags_reach_the_agent_and_stop_it(tmp_path):
    import json

    from typer.testing import CliRunner

    from interpgym.cli import app

    with FakeOpenAI([reply(MEDIAN_SOLUTION)] * 3) as server:
        # 1000 prompt tokens cost $1: a $0.001 budget cannot pay for even the first prompt
        result = CliRunner().invoke(app, [
            "campaign", "run", "demo/mean", "--agent", "llm", "--model", "fake-model", "--base-url", server.base_url,
            "--trials", "3", "--max-cost-usd", "0.001", "--usd-per-1k-prompt-tokens", "1",
            "--usd-per-1k-completion-tokens", "1", "--json", str(tmp_path / "c.json")])
        assert result.exit_code == 0, result.output
        assert server.requests == []
    summary = json.loads((tmp_path / "c.json").read_text())
    assert summary["trials"] == [] and summary["best"]["test"] is None
    options = RunStore().campaign_options(summary["campaign_id"])
    assert options["max_cost_usd"] == 0.001 and options["usd_per_1k_prompt_tokens"] == 1.0
