"""Editors on a tiny random Llama: the edit lands where the algebra says, nothing leaks, scoring is batch-invariant."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from interpgym.core.errors import UserError
from interpgym.editing.covariance import corpus_windows, key_covariance
from interpgym.editing.methods import EditConfig, Editor, Snapshot, param_name
from interpgym.editing.model_ops import continuation_logprobs, down_proj, encode, keys_at, run_until
from interpgym.editing.targets import DeltaConfig, average_key, context_prompts, optimise_delta
from interpgym.subjects.lm_loader import LanguageModel

from .conftest import make_facts

FAST = DeltaConfig(steps=4)
COV_TOKENS = 512


def test_covariance_is_the_float64_second_moment_and_is_cached(tiny_lm: LanguageModel) -> None:
    cov = key_covariance(tiny_lm, 1, COV_TOKENS, context=64, progress=False)
    windows = torch.from_numpy(corpus_windows(tiny_lm, COV_TOKENS, 64)).long()
    with torch.no_grad():
        keys = run_until(tiny_lm, down_proj(tiny_lm, 1), windows, None, "input").reshape(-1, 128).double()
    assert cov.dtype == torch.float64 and cov.shape == (128, 128)
    torch.testing.assert_close(cov, keys.T @ keys / len(keys), rtol=1e-5, atol=1e-9)
    again = key_covariance(tiny_lm, 1, COV_TOKENS, context=64, progress=False)
    assert torch.equal(cov, again)


def test_rome_writes_v_star_at_the_averaged_key(tiny_lm: LanguageModel) -> None:
    fact = make_facts(1)[0]
    layer = 1
    module = down_proj(tiny_lm, layer)
    key = average_key(tiny_lm, layer, fact)
    delta, _ = optimise_delta(tiny_lm, layer, fact, FAST)
    snapshot = Snapshot(tiny_lm, (layer,))
    with torch.no_grad():
        value_before = module.weight.double() @ key
    editor = Editor(tiny_lm, EditConfig(method="rome", layers=(layer,), delta=FAST, cov_tokens=COV_TOKENS), progress=False)
    deltas = editor.edit([fact])
    try:
        assert set(deltas) == {param_name(layer)}
        assert torch.linalg.matrix_rank(deltas[param_name(layer)].double(), rtol=1e-5) == 1
        with torch.no_grad():
            value_after = module.weight.double() @ key
        # W' k* = v* = W k* + delta, to float32 rounding of the stored weight
        torch.testing.assert_close(value_after, value_before + delta.double(), rtol=1e-4, atol=1e-5 * float(value_before.norm()))
    finally:
        snapshot.restore()
    assert torch.equal(module.weight, snapshot.saved[param_name(layer)])


def test_memit_and_alphaedit_touch_only_their_layers_and_alphaedit_stays_in_the_null_space(tiny_lm: LanguageModel) -> None:
    facts = make_facts(2)
    layers = (1, 2)
    before = {name: p.detach().clone() for name, p in tiny_lm.model.named_parameters()}
    snapshot = Snapshot(tiny_lm, layers)
    try:
        for method in ("memit", "alphaedit"):
            editor = Editor(
                tiny_lm, EditConfig(method=method, layers=layers, delta=FAST, cov_tokens=COV_TOKENS, alpha_threshold=0.05), progress=False
            )
            deltas = editor.edit(facts)
            assert set(deltas) == {param_name(layer) for layer in layers}
            for name, p in tiny_lm.model.named_parameters():
                if name not in deltas:
                    assert torch.equal(p, before[name]), name
            if method == "alphaedit":
                for layer in layers:
                    projector = editor.projector(layer)
                    assert editor.null_dims[layer] > 0
                    d = deltas[param_name(layer)].double()
                    torch.testing.assert_close(d @ projector, d, rtol=1e-4, atol=1e-6 * float(d.abs().max()))
            snapshot.restore()
    finally:
        snapshot.restore()


def test_finetune_respects_its_linf_budget(tiny_lm: LanguageModel) -> None:
    snapshot = Snapshot(tiny_lm, (2,))
    try:
        deltas = Editor(tiny_lm, EditConfig(method="ft", layers=(2,), ft_steps=3, ft_linf=1e-4), progress=False).edit(make_facts(1))
        d = deltas[param_name(2)]
        assert 0 < float(d.abs().max()) <= 1e-4 + 1e-7
    finally:
        snapshot.restore()


def test_batched_scores_equal_unbatched_scores(tiny_lm: LanguageModel) -> None:
    texts = ["The capital of France is", "Rome", "Here is a much longer prompt about the Eiffel Tower and"]
    objects = [" Paris", " Italy and more words", " the city"]
    prompts = [encode(tiny_lm, t) for t in texts]
    conts = [encode(tiny_lm, o) for o in objects]
    together, lengths = continuation_logprobs(tiny_lm, prompts, conts, batch_size=8)
    alone = torch.cat([continuation_logprobs(tiny_lm, [p], [c], batch_size=1)[0] for p, c in zip(prompts, conts, strict=True)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert lengths.tolist() == [len(c) for c in conts]


def test_keys_are_read_at_the_subject_last_token(tiny_lm: LanguageModel) -> None:
    fact = make_facts(1)[0]
    prompts = context_prompts(tiny_lm, fact)
    batched = keys_at(tiny_lm, 1, prompts)
    for i, p in enumerate(prompts):
        alone = keys_at(tiny_lm, 1, [p])
        torch.testing.assert_close(batched[i], alone[0], rtol=1e-5, atol=1e-6)
        assert tiny_lm.tokenizer.decode(list(p.ids[: p.subject_last + 1])).endswith(fact.subject)


def test_config_errors_are_user_errors(tiny_lm: LanguageModel) -> None:
    for bad in (
        EditConfig(method="magic"),
        EditConfig(layers=(99,)),
        EditConfig(method="rome", layers=(1, 2)),
        EditConfig(method="memit", layers=(2, 1)),
    ):
        with pytest.raises(UserError):
            bad.validate(tiny_lm.n_layers)


def test_editing_never_touches_the_model_files(tiny_dir: Path, tiny_lm: LanguageModel) -> None:
    def digest() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tiny_dir.iterdir()) if p.is_file()}

    before = digest()
    from interpgym.editing.metrics import EvalConfig
    from interpgym.editing.runner import run_edits

    out = run_edits(tiny_lm, make_facts(2), make_facts(3)[2:], EditConfig(method="rome", layers=(1,), delta=FAST, cov_tokens=COV_TOKENS),
                    EvalConfig(gen_tokens=2, fluency_tokens=4, fluency_facts=1), progress=False)
    assert digest() == before
    assert out["n_edits"] == 2 and out["metrics"]["dw_ratio"] > 0
    assert set(out["metrics"]) >= {"es", "ps", "ns", "s", "em", "pm", "nm", "gen_efficacy", "retention", "ppl_change", "entropy"}


def test_shared_prompt_object_scores_equal_independent_scores(tiny_lm: LanguageModel) -> None:
    from interpgym.editing.model_ops import object_logprobs

    prompt = encode(tiny_lm, "Lionel Messi is famous for playing the sport of")
    objects = [encode(tiny_lm, o) for o in (" football", " the United States", " basketball", " South America")]
    shared = object_logprobs(tiny_lm, prompt, objects)
    independent, _ = continuation_logprobs(tiny_lm, [prompt] * len(objects), objects)
    torch.testing.assert_close(shared, independent, rtol=1e-5, atol=1e-5)
