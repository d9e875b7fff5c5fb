"""Results over several seeds and the book's one rule for comparing trained runs.

Introduced in chapter 4; used by every chapter that compares trained configurations.

One training run is one draw: another seed (or another CPU's rounding, which training amplifies like
another seed) gives another number. So the book never ranks single runs. Every configuration is
trained with several seeds (``N_SEEDS``, 3 by default), and two configurations are compared by one
rule (the book states it on its notation page and in the glossary, under *resolved difference*):

- **paired** runs (the same seeds, hence the same initial weights where the architectures match and
  the same data order: one change from a default, fine-tuning against training from scratch) are
  compared seed by seed; the difference is *resolved* when the per-seed differences all have the
  same sign;
- **unpaired** runs are compared by their ranges over the seeds (lowest to highest); the difference
  is *resolved* when the ranges do not overlap;
- anything else is *not resolved with N seeds*: neither a tie nor "no difference", only a question
  that more seeds could settle.

``margin`` (default 0) asks for more: a per-seed difference, or the gap between two ranges, must
exceed it. Chapters use it where a verdict would otherwise rest on a last-digit difference.

Tables show what the rule uses: the mean and the range (:func:`mean_range`, :func:`summarize`), and,
for paired runs, the per-seed differences (:func:`signed`). A standard deviation over three seeds is
as volatile as it is uninformative, so no table of the book shows one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["summarize", "compare", "Verdict", "top_group", "ranks", "mean_range", "signed", "NOT_RESOLVED"]

NOT_RESOLVED = "not resolved with {n} seeds"


def _values(x, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=float).ravel()
    if v.size == 0:
        raise ValueError(f"{name} holds no results: train at least one seed per configuration")
    if np.isnan(v).any():
        raise ValueError(f"{name} holds NaN results: a diverged run has no rank; report it separately")
    return v


def summarize(results: pd.DataFrame, by: str | Sequence[str], value: str) -> pd.DataFrame:
    """Mean, min, max and count of ``value`` per configuration ``by`` (columns ``mean min max n``).

    ``results`` holds one row per run (configuration columns, a seed column, the value). The
    configurations keep the order in which they first appear in ``results``.
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
    return grouped.agg(mean="mean", min="min", max="max", n="count")


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`compare`: ``sign`` is +1 (a better), -1 (b better) or 0 (not resolved)."""

    sign: int
    paired: bool
    n: int
    differences: tuple[float, ...] | None = None  # a - b per seed, for paired runs

    @property
    def resolved(self) -> bool:
        return self.sign != 0

    def word(self, better: str = "ahead", worse: str = "behind") -> str:
        """``better``, ``worse`` or ``"not resolved with N seeds"``, as seen from ``a``."""
        return better if self.sign > 0 else worse if self.sign < 0 else NOT_RESOLVED.format(n=self.n)


def compare(a, b, *, paired: bool, higher_is_better: bool = True, margin: float = 0.0) -> Verdict:
    """Compare configuration ``a`` with ``b`` (one result per seed each) by the book's rule.

    ``paired=True``: ``a[k]`` and ``b[k]`` come from the same seed (same length required); resolved
    when every difference ``a[k] - b[k]`` has the same sign and exceeds ``margin`` in size.
    ``paired=False``: resolved when the ranges are disjoint with a gap larger than ``margin``.
    """
    a, b = _values(a, "a"), _values(b, "b")
    if margin < 0 or not np.isfinite(margin):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    flip = 1 if higher_is_better else -1
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired comparison needs one result per seed on each side, got {a.size} and {b.size}")
        d = a - b
        if np.all(d * flip > margin):
            sign = 1
        elif np.all(d * flip < -margin):
            sign = -1
        else:
            sign = 0
        return Verdict(sign, True, int(a.size), tuple(float(x) for x in d))
    ga, gb = a * flip, b * flip  # larger is better on this scale
    if ga.min() - gb.max() > margin:
        sign = 1
    elif gb.min() - ga.max() > margin:
        sign = -1
    else:
        sign = 0
    return Verdict(sign, False, int(min(a.size, b.size)))


def _check_summary(summary: pd.DataFrame) -> None:
    for col in ("mean", "min", "max"):
        if col not in summary.columns:
            raise KeyError(f"summary needs a {col!r} column (use stats.summarize)")
    if summary.empty:
        raise ValueError("summary is empty")


def _overlap(r1, r2) -> bool:
    return r1["min"] <= r2["max"] and r2["min"] <= r1["max"]


def top_group(summary: pd.DataFrame, higher_is_better: bool = True) -> list:
    """The best configuration (by mean) and those whose difference from it is not resolved, best first.

    Unpaired rule: a configuration stays in the group while its range overlaps the best one's.
    ``summary`` is the output of :func:`summarize`.
    """
    _check_summary(summary)
    ordered = summary.sort_values("mean", ascending=not higher_is_better, kind="stable")
    best = ordered.iloc[0]
    return [ordered.index[0]] + [idx for idx, row in ordered.iloc[1:].iterrows() if _overlap(row, best)]


def ranks(summary: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """A rank per configuration, sorted by mean; configurations not resolved from one above share its rank.

    Each configuration gets the rank of the first configuration above it whose range overlaps its own
    (unpaired rule), or the next new rank. A Series of integers starting at 1, in the sorted order.
    """
    _check_summary(summary)
    ordered = summary.sort_values("mean", ascending=not higher_is_better, kind="stable")
    out: list[int] = []
    for i in range(len(ordered)):
        row = ordered.iloc[i]
        above = next((out[j] for j in range(i) if _overlap(row, ordered.iloc[j])), None)
        out.append(above if above is not None else (max(out) + 1 if out else 1))
    return pd.Series(out, index=ordered.index, name="rank")


def mean_range(values, fmt: str = ".1f", unit: str = "") -> str:
    """``"86.3 (85.9 to 86.8)"``: the mean and the range over the seeds; ``"86.3"`` for a single run."""
    v = _values(values, "values")
    if v.size == 1:
        return f"{v[0]:{fmt}}{unit}"
    return f"{v.mean():{fmt}}{unit} ({v.min():{fmt}} to {v.max():{fmt}}{unit})"


def signed(values, fmt: str = ".1f", unit: str = "") -> str:
    """Per-seed differences with their signs, ``"+1.2, +0.8, -0.3"``."""
    v = _values(values, "values")
    return ", ".join(f"{x:+{fmt}}{unit}" for x in v)

