"""Results over several seeds: mean, spread, and rankings that call overlapping results a tie.

Introduced in chapter 4; used by every chapter that compares trained configurations (4-7).

One training run is one draw: another seed (or another CPU's rounding, which training amplifies like
another seed) gives another number. So the book never ranks single runs. It trains each configuration
with several seeds and calls two configurations **tied** when the ranges of their results over the
seeds overlap (the better one's worst seed is not better than the other's best seed); only
configurations whose ranges are disjoint are ranked. With three seeds this is a deliberately cautious
rule: it keeps the text from claiming an order that another seed or machine would reverse.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["summarize", "tied", "top_group", "order_with_ties", "mean_sd"]


def summarize(results: pd.DataFrame, by: str | Sequence[str], value: str) -> pd.DataFrame:
    """Mean, standard deviation, min, max and count of ``value`` per configuration ``by``.

    ``results`` holds one row per run (configuration columns, a seed column, the value). The standard
    deviation is the sample one (``ddof=1``; NaN for a single run). The configurations keep the order in
    which they first appear in ``results``.
    """
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame, got {type(results).__name__}")
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*keys, value] if c not in results.columns]
    if missing:
        raise KeyError(f"columns {missing} not in results (columns: {list(results.columns)})")
    if results.empty:
        raise ValueError("results is empty: train at least one run per configuration")
    values = pd.to_numeric(results[value], errors="raise")
    grouped = results.assign(**{value: values}).groupby(keys, sort=False)[value]
    out = grouped.agg(mean="mean", sd="std", min="min", max="max", n="count")
    return out


def tied(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when the ranges of two sets of results overlap (neither is better on every seed)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("tied() needs at least one result on each side")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("tied() got NaN results: a diverged run has no rank; report it separately")
    return bool(a.min() <= b.max() and b.min() <= a.max())


def top_group(summary: pd.DataFrame, higher_is_better: bool = True) -> list:
    """The configurations tied with the best one (by mean), best first.

    ``summary`` is the output of :func:`summarize` (columns ``mean``, ``min``, ``max``).
    """
    for col in ("mean", "min", "max"):
        if col not in summary.columns:
            raise KeyError(f"summary needs a {col!r} column (use stats.summarize)")
    if summary.empty:
        raise ValueError("summary is empty")
    ordered = summary.sort_values("mean", ascending=not higher_is_better, kind="stable")
    best = ordered.iloc[0]
    group = [ordered.index[0]]
    for idx, row in ordered.iloc[1:].iterrows():
        if row["min"] <= best["max"] and best["min"] <= row["max"]:
            group.append(idx)
    return group


def order_with_ties(summary: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """A rank per configuration where tied configurations share a rank.

    Configurations are sorted by mean; each one gets the rank of the first configuration it is tied
    with (ranges overlap) among those ranked before it, or a new rank when it is tied with none. The
    result is a Series of integers starting at 1, in the sorted order.
    """
    ordered = summary.sort_values("mean", ascending=not higher_is_better, kind="stable")
    ranks: list[int] = []
    for i, (_, row) in enumerate(ordered.iterrows()):
        rank = None
        for j in range(i):
            prev = ordered.iloc[j]
            if row["min"] <= prev["max"] and prev["min"] <= row["max"]:
                rank = ranks[j]
                break
        ranks.append(rank if rank is not None else (max(ranks) + 1 if ranks else 1))
    return pd.Series(ranks, index=ordered.index, name="rank")


def mean_sd(mean: float, sd: float, fmt: str = ".1f", unit: str = "") -> str:
    """``"86.3 ± 0.4"`` (with ``unit`` after each number); ``"86.3"`` when sd is NaN (a single run)."""
    if sd is None or (isinstance(sd, float) and np.isnan(sd)):
        return f"{mean:{fmt}}{unit}"
    return f"{mean:{fmt}}{unit} ± {sd:{fmt}}{unit}"
