from __future__ import annotations

import torch

from interpgym.core.flops import FlopCounter


def test_matmul_convention() -> None:
    a, b = torch.randn(5, 7), torch.randn(7, 3)
    with FlopCounter() as counter:
        a @ b
    assert counter.total == 5 * 3 * (2 * 7 - 1)


def test_batched_matmul_and_elementwise() -> None:
    a, b = torch.randn(4, 5, 6), torch.randn(4, 6, 2)
    with FlopCounter() as counter:
        c = torch.bmm(a, b)
        d = c + 1.0
        torch.maximum(d, c)
    assert counter.total == 4 * 5 * 2 * 11 + 40 + 40


def test_reductions_count_inputs_and_views_are_free() -> None:
    x = torch.randn(10, 20)
    with FlopCounter() as counter:
        y = x.T.reshape(20, 10)[:, 2:5]
        y.sum(dim=0)
        x.max(dim=1)
    assert counter.total == 20 * 3 + 200


def test_sort_costs_n_log_n() -> None:
    x = torch.randn(3, 16)
    with FlopCounter() as counter:
        x.sort(dim=-1)
    assert counter.total == 3 * 16 * 4


def test_float64_and_inplace() -> None:
    x = torch.randn(8, dtype=torch.float64)
    with FlopCounter() as counter:
        x.mul_(2.0)
    assert counter.total == 8


def test_fused_multiply_add_costs_two_per_element() -> None:
    x, y, z = torch.randn(6, 5), torch.randn(6, 5), torch.randn(6, 5)
    with FlopCounter() as counter:
        torch.addcmul(x, y, z)
        x.addcmul_(y, z)
    assert counter.total == 2 * 30 + 2 * 30
