"""The `llm` agent: an OpenAI-compatible chat model rewrites the task's editable files.

Harness-facing API (what the campaign loop calls):

    agent = LLMAgent(model=None, base_url=None, api_key=None, max_total_tokens=200_000, ...)
    proposal = agent.propose(task_view, history)   # -> Proposal(files=..., note=..., usage=...)
    proposal.malformed                             # set: record it as status "invalid" with this error
    agent.spent                                    # cumulative usage (same keys as Proposal.usage)

* Endpoint: any server speaking the OpenAI chat-completions API (OpenAI, vLLM, Ollama,
  llama.cpp server, ...) through the official `openai` client. Model, base URL and key
  come from the constructor, else `INTERPGYM_LLM_MODEL`, `INTERPGYM_LLM_BASE_URL`
  (then `OPENAI_BASE_URL`, then OpenAI's URL) and `INTERPGYM_LLM_API_KEY` (then
  `OPENAI_API_KEY`; local servers without auth get a placeholder key).
* One request per proposal (plus the client's own retries, with exponential backoff,
  on 408/409/429/5xx and connection errors: at most `1 + max_retries` HTTP requests).
  The prompt is a pure, size-bounded function of (task, history): see `llm_prompt`.
* Reply format: fenced blocks labelled with file paths; see `llm_reply`. A reply that
  breaks it -- or names a path outside the editable set -- becomes a proposal whose
  `malformed` field says why; the harness records it as `invalid` with that error, so
  the model sees its mistake next round. It never
  raises out of `propose`.
* Budgets: `max_total_tokens` and `max_cost_usd` (priced per 1k prompt/completion
  tokens). Before each request the agent bounds its worst case (estimated prompt
  tokens + the completion cap it sends as `max_tokens`); if that could exceed what is
  left it raises `BudgetExhausted` instead of sending. Spending is then charged from
  the usage the server reports (estimated from characters when it reports none).
* Failures the user must fix (bad key, unknown model, unreachable server, errors that
  persist through the retries, a server that silently cut the prompt to a small context
  window) raise `UserError` with one line naming the fix.
* Seeded: each request sends `seed + len(history)` (servers that honour `seed` are then
  reproducible up to their own nondeterminism) and a fixed temperature.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

import openai

from interpgym.core.errors import UserError
from interpgym.harness.agents.base import BudgetExhausted, TaskView
from interpgym.harness.agents.llm_prompt import Prompt, base_files, build_prompt, clip_middle
from interpgym.harness.agents.llm_reply import ReplyError, parse_reply
from interpgym.harness.records import AgentKind, Proposal, TrialRecord

OPENAI_BASE_URL = "https://api.openai.com/v1"
__all__ = ["LLMAgent", "Usage", "resolve_endpoint"]
# Placeholder key for servers without authentication (vLLM's and Ollama's convention);
# the openai client refuses to start without some key.
_NO_KEY = "not-needed"
# Tokens per character assumed before the server has reported any usage: above the
# ~0.25-0.3 of English text and code under common BPE vocabularies, so the first budget
# check errs on the safe side. Replaced by the observed ratio (plus a margin) after.
_INITIAL_TOKENS_PER_CHAR = 0.4
_CALIBRATION_MARGIN = 1.1
_TOKENS_PER_MESSAGE = 8
# Below this many reported prompt tokens per character (for a prompt of at least
# `_TRUNCATION_CHECK_CHARS`), the server must have cut the prompt: BPE tokenizers give
# ~0.25-0.3 on code and prose. Ollama does this silently when its context is too small;
# a cut of less than about half the prompt goes unnoticed.
_MIN_TOKENS_PER_CHAR = 0.12
_TRUNCATION_CHECK_CHARS = 4000


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: resolved from options, then environment."""

    base_url: str
    model: str
    api_key: str
    key_source: str


def resolve_endpoint(model: str | None = None, base_url: str | None = None, api_key: str | None = None) -> Endpoint:
    """Model, base URL and key from the arguments, else the environment (see the module docstring).

    Raises `UserError` when no model is named, or when OpenAI's own endpoint is used without a key.
    """
    env = os.environ
    model = model or env.get("INTERPGYM_LLM_MODEL")
    if not model:
        raise UserError("the llm agent needs a model: pass --model NAME or set INTERPGYM_LLM_MODEL")
    base_url = base_url or env.get("INTERPGYM_LLM_BASE_URL") or env.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
    if urlparse(base_url).scheme not in ("http", "https"):
        raise UserError(f"LLM base URL '{base_url}' is not an http(s) URL; e.g. http://localhost:11434/v1 for Ollama")
    for source, value in (
        ("argument", api_key),
        ("INTERPGYM_LLM_API_KEY", env.get("INTERPGYM_LLM_API_KEY")),
        ("OPENAI_API_KEY", env.get("OPENAI_API_KEY")),
    ):
        if value:
            return Endpoint(base_url.rstrip("/"), model, value, source)
    if urlparse(base_url).hostname == urlparse(OPENAI_BASE_URL).hostname:
        raise UserError("OpenAI's API needs a key: set INTERPGYM_LLM_API_KEY (or OPENAI_API_KEY)")
    return Endpoint(base_url.rstrip("/"), model, _NO_KEY, "none")


def _env_float(variable: str, given: float | None, default: float | None) -> float | None:
    """`given` if set, else the environment variable as a float, else `default`."""
    if given is not None:
        return float(given)
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{variable}={raw!r} is not a number; set it to e.g. 0.5 or unset it") from None
    if not math.isfinite(value):
        raise UserError(f"{variable}={raw!r} must be finite")
    return value


@dataclass
class Usage:
    """Tokens, money and requests spent (cumulative on the agent, per call on a Proposal)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0
    estimated: int = 0  # how many of the requests had no usage reported and were estimated

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total_tokens": self.total_tokens}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Usage:
        """The inverse of `as_dict` (missing keys are 0; `total_tokens` is derived, so ignored)."""
        return cls(
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            cost_usd=float(data.get("cost_usd", 0.0)),
            requests=int(data.get("requests", 0)),
            estimated=int(data.get("estimated", 0)),
        )

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.requests += other.requests
        self.estimated += other.estimated


class LLMAgent:
    """Proposes new editable files by asking a chat model; see the module docstring for guarantees."""

    kind: AgentKind = "ai"

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_total_tokens: int | None = 200_000,
        max_cost_usd: float | None = None,
        usd_per_1k_prompt_tokens: float | None = None,
        usd_per_1k_completion_tokens: float | None = None,
        max_completion_tokens: int = 4096,
        min_completion_tokens: int = 512,
        temperature: float | None = 0.2,
        seed: int | None = 0,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        max_prompt_chars: int = 48_000,
        token_limit_param: str | None = None,
        already_spent: Mapping[str, float] | None = None,
        name: str | None = None,
    ) -> None:
        """Configure the agent; nothing is sent until `propose`.

        `token_limit_param` is the request field carrying the completion cap: OpenAI's
        own endpoint wants `max_completion_tokens` (its reasoning models reject
        `max_tokens`); other servers get `max_tokens`, which they all understand.
        `already_spent` restores spending on a resumed campaign (the sum of the
        recorded `Proposal.usage` dicts). The cost budget and prices default to
        `INTERPGYM_LLM_MAX_COST_USD`, `INTERPGYM_LLM_USD_PER_1K_PROMPT_TOKENS` and
        `INTERPGYM_LLM_USD_PER_1K_COMPLETION_TOKENS` (no cost budget, price 0 if unset).
        """
        max_cost_usd = _env_float("INTERPGYM_LLM_MAX_COST_USD", max_cost_usd, None)
        usd_per_1k_prompt_tokens = _env_float("INTERPGYM_LLM_USD_PER_1K_PROMPT_TOKENS", usd_per_1k_prompt_tokens, 0.0) or 0.0
        usd_per_1k_completion_tokens = (
            _env_float("INTERPGYM_LLM_USD_PER_1K_COMPLETION_TOKENS", usd_per_1k_completion_tokens, 0.0) or 0.0
        )
        for label, value in (
            ("max_total_tokens", max_total_tokens),
            ("max_cost_usd", max_cost_usd),
        ):
            if value is not None and not value > 0:
                raise UserError(f"llm agent: {label} must be positive, got {value}")
        if usd_per_1k_prompt_tokens < 0 or usd_per_1k_completion_tokens < 0:
            raise UserError("llm agent: token prices must be >= 0")
        if max_cost_usd is not None and usd_per_1k_prompt_tokens == usd_per_1k_completion_tokens == 0:
            raise UserError("llm agent: a cost budget needs token prices (usd_per_1k_prompt_tokens / _completion_tokens)")
        if not 1 <= min_completion_tokens <= max_completion_tokens:
            raise UserError("llm agent: need 1 <= min_completion_tokens <= max_completion_tokens")
        if max_retries < 0 or timeout_s <= 0 or max_prompt_chars <= 0:
            raise UserError("llm agent: need max_retries >= 0, timeout_s > 0 and max_prompt_chars > 0")
        if token_limit_param not in (None, "max_tokens", "max_completion_tokens"):
            raise UserError("llm agent: token_limit_param must be max_tokens or max_completion_tokens")
        self.endpoint = resolve_endpoint(model, base_url, api_key)
        self.name = name or f"llm:{self.endpoint.model}"
        self.max_total_tokens = max_total_tokens
        self.max_cost_usd = max_cost_usd
        self.usd_per_1k_prompt_tokens = usd_per_1k_prompt_tokens
        self.usd_per_1k_completion_tokens = usd_per_1k_completion_tokens
        self.max_completion_tokens = max_completion_tokens
        self.min_completion_tokens = min_completion_tokens
        self.temperature = temperature
        self.seed = seed
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_prompt_chars = max_prompt_chars
        is_openai = urlparse(self.endpoint.base_url).hostname == urlparse(OPENAI_BASE_URL).hostname
        self.token_limit_param = token_limit_param or ("max_completion_tokens" if is_openai else "max_tokens")
        self._usage = Usage.from_dict(already_spent or {})
        self._tokens_per_char = _INITIAL_TOKENS_PER_CHAR
        self._observed_tokens_per_char = 0.0
        self._client = openai.OpenAI(
            base_url=self.endpoint.base_url,
            api_key=self.endpoint.api_key,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    @property
    def spent(self) -> dict[str, float]:
        """Cumulative usage over this agent's life (plus `already_spent`)."""
        return self._usage.as_dict()

    def propose(self, task: TaskView, history: list[TrialRecord]) -> Proposal:
        """Ask the model for the next version of the editable files.

        Returns the full editable set (unchanged files carried over from the best trial
        so far) or a malformed proposal (its `malformed` field set). Raises `BudgetExhausted` when
        the next request could overrun a budget, `UserError` when the endpoint fails
        in a way retries cannot fix. Sends at most `1 + max_retries` HTTP requests.
        """
        prompt = build_prompt(task, history, self.max_prompt_chars)
        completion_cap = self._completion_cap(prompt)
        seed = None if self.seed is None else self.seed + len(history)
        response = self._request(prompt, completion_cap, seed)
        usage = self._charge(response, prompt)
        self._check_prompt_not_truncated(usage, prompt)
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice is not None else None
        refusal = getattr(choice.message, "refusal", None) if choice is not None else None
        try:
            if refusal and not text:
                raise ReplyError(f"the model refused: {clip_middle(str(refusal), 300)}")
            parsed = parse_reply(text, set(task.editable_files), truncated=choice is not None and choice.finish_reason == "length")
        except ReplyError as error:
            excerpt = clip_middle(text or "", 1500)
            return Proposal(files=None, params=None, usage=usage.as_dict(),
                            malformed=f"malformed reply: {error}\n--- your reply was ---\n{excerpt}")
        files, _ = base_files(task, history)
        files.update(parsed.files)
        return Proposal(files=files, note=parsed.note, usage=usage.as_dict())

    def _estimate_tokens(self, chars: int) -> int:
        return math.ceil(chars * self._tokens_per_char)

    def _completion_cap(self, prompt: Prompt) -> int:
        """The largest completion cap that keeps the worst case within every budget.

        Raises `BudgetExhausted` when that cap is below `min_completion_tokens`.
        """
        prompt_estimate = self._estimate_tokens(prompt.chars) + _TOKENS_PER_MESSAGE * len(prompt.messages)
        cap = self.max_completion_tokens
        if self.max_total_tokens is not None:
            cap = min(cap, self.max_total_tokens - self._usage.total_tokens - prompt_estimate)
        if self.max_cost_usd is not None:
            left_usd = self.max_cost_usd - self._usage.cost_usd - prompt_estimate * self.usd_per_1k_prompt_tokens / 1000
            if self.usd_per_1k_completion_tokens > 0:
                cap = min(cap, math.floor(left_usd / self.usd_per_1k_completion_tokens * 1000))
            elif left_usd < 0:
                cap = 0
        if cap < self.min_completion_tokens:
            raise BudgetExhausted(
                f"llm budget: spent {self._usage.total_tokens} tokens / ${self._usage.cost_usd:.4f}; "
                f"the next request (~{prompt_estimate} prompt tokens + >= {self.min_completion_tokens} "
                f"completion tokens) could exceed max_total_tokens={self.max_total_tokens} "
                f"or max_cost_usd={self.max_cost_usd}"
            )
        return cap

    def _request(self, prompt: Prompt, completion_cap: int, seed: int | None) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": prompt.messages,
            self.token_limit_param: completion_cap,
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if seed is not None:
            kwargs["seed"] = seed
        where = f"LLM endpoint {self.endpoint.base_url}"
        try:
            return self._client.chat.completions.create(**kwargs)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise UserError(
                f"{where} rejected the API key (HTTP {error.status_code}, key from {self.endpoint.key_source}); "
                "set INTERPGYM_LLM_API_KEY to a valid key"
            ) from None
        except openai.NotFoundError:
            raise UserError(
                f"{where} answered 404 for model '{self.endpoint.model}'; check the model name and that the "
                "base URL ends in /v1"
            ) from None
        except openai.APITimeoutError:
            raise UserError(
                f"{where} did not answer within {self.timeout_s:g} s ({1 + self.max_retries} tries); "
                "raise the timeout or check the server"
            ) from None
        except openai.APIConnectionError:
            raise UserError(
                f"cannot connect to {where} ({1 + self.max_retries} tries); is the server running? "
                "set INTERPGYM_LLM_BASE_URL"
            ) from None
        except openai.APIStatusError as error:
            detail = clip_middle(" ".join(str(error.message).split()), 200)
            raise UserError(
                f"{where} failed with HTTP {error.status_code} after {1 + self.max_retries} tries: {detail}"
            ) from None
        except openai.APIError as error:  # e.g. a response body that is not a chat completion
            detail = clip_middle(" ".join(str(error).split()), 200)
            raise UserError(f"{where} sent an unusable response: {detail}") from None

    def _check_prompt_not_truncated(self, usage: Usage, prompt: Prompt) -> None:
        """Raise `UserError` when the reported prompt size shows the server dropped part of it."""
        if usage.estimated or prompt.chars < _TRUNCATION_CHECK_CHARS:
            return
        if usage.prompt_tokens < _MIN_TOKENS_PER_CHAR * prompt.chars:
            raise UserError(
                f"LLM endpoint {self.endpoint.base_url} counted only {usage.prompt_tokens} prompt tokens for a "
                f"{prompt.chars}-character prompt, so it cut the prompt to its context window; raise the server's "
                "context length (Ollama: OLLAMA_CONTEXT_LENGTH=32768) or lower max_prompt_chars"
            )

    def _charge(self, response: Any, prompt: Prompt) -> Usage:
        """Charge this response to the budgets (reported usage, else a character estimate)."""
        reported = getattr(response, "usage", None)
        choices = getattr(response, "choices", None) or []
        text = (choices[0].message.content or "") if choices else ""
        if reported is not None and reported.prompt_tokens is not None and reported.completion_tokens is not None:
            usage = Usage(prompt_tokens=int(reported.prompt_tokens), completion_tokens=int(reported.completion_tokens))
            if prompt.chars > 0 and usage.prompt_tokens > 0:
                self._observed_tokens_per_char = max(self._observed_tokens_per_char, usage.prompt_tokens / prompt.chars)
                self._tokens_per_char = self._observed_tokens_per_char * _CALIBRATION_MARGIN
        else:
            usage = Usage(
                prompt_tokens=self._estimate_tokens(prompt.chars) + _TOKENS_PER_MESSAGE * len(prompt.messages),
                completion_tokens=self._estimate_tokens(len(text)),
                estimated=1,
            )
        usage.requests = 1
        usage.cost_usd = (
            usage.prompt_tokens * self.usd_per_1k_prompt_tokens + usage.completion_tokens * self.usd_per_1k_completion_tokens
        ) / 1000
        self._usage.add(usage)
        return usage
