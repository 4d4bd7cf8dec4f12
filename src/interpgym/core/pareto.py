"""Pareto fronts of two objectives, both to be minimised (negate one to maximise it)."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (a, b) that no other point dominates, in increasing a.

    j dominates i when a_j <= a_i and b_j <= b_i with one strictly smaller; identical
    points do not dominate each other (all are kept). Ties in a are ordered by index.
    Cost O(n log n).
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1], i))
    front: list[int] = []
    best_b = float("inf")  # smallest b among points with a strictly smaller a
    start = 0
    while start < len(order):
        end = start
        a = points[order[start]][0]
        while end < len(order) and points[order[end]][0] == a:
            end += 1
        group_min = points[order[start]][1]
        if group_min < best_b:
            front.extend(i for i in order[start:end] if points[i][1] == group_min)
        best_b = min(best_b, group_min)
        start = end
    return front
