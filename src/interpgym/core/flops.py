"""FLOP counting by interception of the operations actually executed.

`FlopCounter` is a `TorchDispatchMode`: every aten op that runs inside the `with`
block is charged by a rule chosen from its name and real shapes, so the count can
never drift from the code being costed. Rules (the compact-proofs convention):

* matrix products (`mm`, `bmm`, `addmm`, `baddbmm`, `dot`, `mv`): output elements x
  (2 x inner - 1), plus one per output element for an added bias;
* reductions (`sum`, `amax`, `max.dim`, `mean`, `cumsum`, `logsumexp`, ...): one per
  *input* element;
* `sort` / `topk` / `argsort`: n x ceil(log2 n) comparisons per sorted row;
* pure data movement (views, copies, indexing, concatenation, allocation): zero;
* fused multiply-add style ops (`addcmul`, `addcdiv`, `lerp`): two per output element;
* every other op (elementwise arithmetic, comparisons, `where`, ...): one per output
  element. Unknown ops therefore cost something rather than nothing, and their
  names are kept in `by_op` for inspection.

Use `counter.total` after the block. Nesting is not supported; counting adds Python
overhead per op, so cost a proof's *verification* path only, never its search.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_MATMULS = {"mm", "bmm", "addmm", "baddbmm", "dot", "mv", "addmv", "vdot"}
_REDUCTIONS = {
    "sum", "amax", "amin", "max", "min", "mean", "prod", "cumsum", "cumprod", "cummax",
    "cummin", "logsumexp", "argmax", "argmin", "any", "all", "norm", "linalg_vector_norm",
    "var", "std", "count_nonzero", "aminmax", "nansum",
}
_SORTS = {"sort", "topk", "argsort", "kthvalue", "msort"}
# Fused elementwise ops doing two arithmetic operations per element (a + b * c, ...).
_FUSED_TWO = {"addcmul", "addcdiv", "lerp"}
_FREE = {
    # views and layout
    "view", "_unsafe_view", "reshape", "expand", "expand_as", "permute", "transpose", "t",
    "unsqueeze", "squeeze", "select", "slice", "as_strided", "alias", "diagonal", "unfold",
    "unbind", "split", "split_with_sizes", "chunk", "narrow", "movedim", "flatten",
    "view_as", "_reshape_alias", "lift_fresh", "lift_fresh_copy", "detach", "contiguous",
    "_to_copy", "to", "clone", "copy", "copy_", "_copy_from", "_copy_from_and_resize",
    # allocation
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like",
    "full", "full_like", "new_empty", "new_zeros", "new_ones", "new_full",
    "new_empty_strided", "arange", "scalar_tensor", "fill", "fill_", "zero_", "resize_",
    "_local_scalar_dense", "eye", "tril_indices", "triu_indices",
    # data movement
    "cat", "stack", "index", "index_select", "gather", "take", "take_along_dim", "flip",
    "roll", "repeat", "repeat_interleave", "_unsafe_index", "index_put", "index_put_",
    "scatter", "scatter_", "masked_select", "nonzero", "tril", "triu", "constant_pad_nd",
    "squeeze_", "unsqueeze_", "set_", "_unsafe_view_", "select_scatter", "slice_scatter",
}


def _numel(x: object) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else 0


def _tensors(values: Iterable[object]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(_tensors(v))
    return out


def op_flops(name: str, args: tuple, outputs: list[torch.Tensor]) -> int:
    """FLOPs charged for one aten op `name` with inputs `args` and tensor `outputs`."""
    out_elems = _numel(outputs[0]) if outputs else 0
    if name in _MATMULS:
        if name in {"mm", "addmm"}:
            a = args[1] if name == "addmm" else args[0]
            inner = a.shape[-1]
        elif name in {"bmm", "baddbmm"}:
            a = args[1] if name == "baddbmm" else args[0]
            inner = a.shape[-1]
        elif name in {"mv", "addmv"}:
            a = args[1] if name == "addmv" else args[0]
            inner = a.shape[-1]
        else:  # dot / vdot
            inner = args[0].shape[-1]
            out_elems = 1
        bias = out_elems if name.startswith("add") or name.startswith("badd") else 0
        return out_elems * (2 * inner - 1) + bias
    if name in _REDUCTIONS:
        return sum(_numel(t) for t in _tensors(args[:1]))
    if name in _SORTS:
        x = args[0]
        dim = args[1] if len(args) > 1 and isinstance(args[1], int) and name != "topk" else -1
        if name == "topk" and len(args) > 2 and isinstance(args[2], int):
            dim = args[2]
        n = x.shape[dim] if x.dim() else 1
        return x.numel() * max(1, math.ceil(math.log2(max(n, 2))))
    if name in _FREE:
        return 0
    if name in _FUSED_TWO:
        return 2 * out_elems
    return out_elems


class FlopCounter(TorchDispatchMode):
    """Context manager counting FLOPs of every aten op run inside it (see module docs)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.by_op: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        name = func._overloadpacket.__name__
        if name not in _FREE:
            name = name.rstrip("_")  # in-place variants cost what their out-of-place op costs
        outputs = _tensors(result if isinstance(result, (list, tuple)) else [result])
        flops = op_flops(name, args, outputs)
        self.total += flops
        self.by_op[name] += flops
        return result
