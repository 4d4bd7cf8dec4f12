"""The optional LLM judge against a scripted OpenAI-compatible server: parsing, harmonic mean, agreement with the offline judge."""

from __future__ import annotations

import pytest

from harness.fake_openai import FakeOpenAI, reply  # tests/harness (tests/ is on sys.path: rootdir package layout)
from interpgym.probing.llm_judge import LLMJudge, add_llm_scores


def test_llm_scores_and_spearman_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    script = [reply("ok"), reply("2 2 2"), reply("1 2 1"), reply("the answer is unclear"), reply("0 2 2")]
    with FakeOpenAI(script) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        judge = LLMJudge("fake-model")
        result = {"seed": 0, "instructions_report": ["Describe a walk."],
                  "results": [{"concept": "weather", "harmonic": h, "responses": ["It rained."]} for h in (1.9, 1.2, 0.5, 0.1)]}
        out = add_llm_scores(result, judge)
        assert len(server.requests) == 5 and "weather" in server.requests[1].prompt_text
    llm = [r["llm_harmonic"] for r in out["results"]]
    assert llm[0] == pytest.approx(2.0) and llm[1] == pytest.approx(3 / (1 + 0.5 + 1))
    assert llm[2] == 0.0  # an unparseable verdict is a failure, never a pass
    assert llm[3] == 0.0  # any zero criterion zeroes the harmonic mean
    assert out["judge"] == "offline+llm" and out["judge_agreement_spearman"] == pytest.approx(0.9486832980505138)
