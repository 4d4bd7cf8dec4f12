"""Optional LLM judge over any OpenAI-compatible endpoint, with AxBench's three criteria (0, 1 or 2 each).

Configured by `OPENAI_BASE_URL` / `OPENAI_API_KEY` (the `openai` client's own variables)
and a model name. An endpoint that does not answer is a `UserError` before any
generation is judged. `agreement` is the Spearman correlation of the LLM's and the
offline judge's harmonic means on the same generations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from scipy.stats import spearmanr

from interpgym.core.errors import UserError
from interpgym.probing.judge import harmonic

PROMPT = """Rate a language model's response on three criteria, each 0, 1 or 2.
concept: is the concept "{concept}" present? (0 absent, 1 somewhat, 2 clearly)
instruction: does the response address the instruction? (0 no, 1 partly, 2 fully)
fluency: is it fluent, grammatical text? (0 broken, 1 somewhat, 2 fluent)
Instruction: {instruction}
Response: {response}
Answer with exactly three integers separated by spaces: concept instruction fluency."""


class LLMJudge:
    def __init__(self, model: str, timeout_s: float = 30.0) -> None:
        from openai import OpenAI

        self.model = model
        try:
            self.client = OpenAI(timeout=timeout_s, max_retries=0)
        except Exception as exc:  # the client refuses to start without a key
            raise UserError(f"the LLM judge cannot start: {exc}; set OPENAI_API_KEY / OPENAI_BASE_URL or use --judge offline") from None
        self._ask("ping", "say ok", "ok")  # fail early if the endpoint does not answer

    def _ask(self, concept: str, instruction: str, response: str) -> str:
        try:
            reply = self.client.chat.completions.create(
                model=self.model, temperature=0, max_tokens=12,
                messages=[{"role": "user", "content": PROMPT.format(concept=concept, instruction=instruction, response=response)}])
        except Exception as exc:
            raise UserError(
                f"the LLM judge endpoint did not answer ({type(exc).__name__}): "
                "check OPENAI_BASE_URL / OPENAI_API_KEY or use --judge offline"
            ) from None
        return reply.choices[0].message.content or ""

    def score(self, concept: str, instructions: Sequence[str], responses: Sequence[str]) -> list[dict[str, float]]:
        out = []
        for instruction, response in zip(instructions, responses, strict=True):
            numbers = [int(n) for n in re.findall(r"\b[0-2]\b", self._ask(concept, instruction, response))[:3]]
            if len(numbers) < 3:
                numbers = [0, 0, 0]  # an unparseable verdict counts as a failure, never as a pass
            s = dict(zip(("concept", "instruction", "fluency"), map(float, numbers), strict=True))
            s["harmonic"] = harmonic(list(s.values()))
            out.append(s)
        return out


def add_llm_scores(result: dict, judge: LLMJudge) -> dict:
    """Add `llm_*` scores to every row of a steering result and the Spearman agreement of the two judges."""
    from interpgym.probing.concepts import load_concept
    from interpgym.probing.judge import OfflineJudge  # noqa: F401  (documented counterpart)

    report = result["instructions_report"]
    ours, theirs = [], []
    for row in result["results"]:
        phrase = load_concept(row["concept"], result["seed"]).description
        scores = judge.score(phrase, report[: len(row["responses"])], row["responses"])
        row["llm_harmonic"] = sum(s["harmonic"] for s in scores) / len(scores)
        ours.append(row["harmonic"])
        theirs.append(row["llm_harmonic"])
    result["judge"] = "offline+llm"
    result["judge_agreement_spearman"] = float(spearmanr(ours, theirs).statistic) if len(ours) > 2 else None
    return result
