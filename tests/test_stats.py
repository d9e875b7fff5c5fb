"""course_utils.stats: summaries over seeds and rankings with ties."""
import numpy as np
import pandas as pd
import pytest

from course_utils import stats


def runs():
    return pd.DataFrame({
        "config": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
        "seed": [0, 1, 2] * 3,
        "acc": [86.0, 86.4, 86.2, 85.9, 86.5, 86.1, 80.0, 80.5, 81.0],
    })


def test_summarize_matches_numpy():
    s = stats.summarize(runs(), "config", "acc")
    assert list(s.index) == ["a", "b", "c"] and list(s.columns) == ["mean", "min", "max", "n"]
    np.testing.assert_allclose(s.loc["a", "mean"], np.mean([86.0, 86.4, 86.2]))
    assert s.loc["c", "min"] == 80.0 and s.loc["c", "max"] == 81.0 and (s["n"] == 3).all()


def test_groups_and_ranks_use_the_unpaired_rule():
    s = stats.summarize(runs(), "config", "acc")
    assert stats.top_group(s) == ["a", "b"]  # a and b overlap: not resolved
    assert stats.top_group(s, higher_is_better=False) == ["c"]
    assert stats.ranks(s).to_dict() == {"a": 1, "b": 1, "c": 2}


def test_edges_are_refused_clearly():
    with pytest.raises(ValueError, match="empty"):
        stats.summarize(runs().iloc[:0], "config", "acc")
    with pytest.raises(KeyError, match="not in results"):
        stats.summarize(runs(), "missing", "acc")
    with pytest.raises(TypeError, match="DataFrame"):
        stats.summarize([1, 2], "config", "acc")
    with pytest.raises(ValueError, match="NaN"):
        stats.compare([1.0, float("nan")], [1.0], paired=False)
    with pytest.raises(ValueError, match="no results"):
        stats.compare([], [1.0], paired=False)
    with pytest.raises(KeyError, match="summarize"):
        stats.top_group(pd.DataFrame({"mean": [1.0]}))


def test_the_rule_paired_by_sign_of_every_seed():
    v = stats.compare([86.0, 86.4, 97.5], [84.8, 85.6, 86.2], paired=True)
    assert v.resolved and v.sign == 1 and v.word() == "ahead"
    np.testing.assert_allclose(v.differences, [1.2, 0.8, 11.3], atol=1e-12)
    # overlapping ranges, but every seed of a is ahead of the same seed of b: resolved when paired
    assert stats.compare([1.0, 3.0, 5.0], [0.5, 2.5, 4.5], paired=True).sign == 1
    assert stats.compare([1.0, 3.0, 5.0], [0.5, 2.5, 4.5], paired=False).sign == 0
    mixed = stats.compare([1.0, 2.0, 3.0], [1.5, 1.5, 1.5], paired=True)
    assert not mixed.resolved and mixed.word() == "not resolved with 3 seeds"
    # lower is better (a loss): a is behind
    assert stats.compare([0.5, 0.6], [0.3, 0.4], paired=True, higher_is_better=False).word() == "behind"
    # a margin asks for more than the sign
    assert stats.compare([1.1, 1.2], [1.0, 1.0], paired=True, margin=0.15).sign == 0
    with pytest.raises(ValueError, match="one result per seed"):
        stats.compare([1.0, 2.0], [1.0], paired=True)


def test_the_rule_unpaired_by_disjoint_ranges():
    assert stats.compare([3.0, 4.0], [1.0, 2.0], paired=False).word() == "ahead"
    assert stats.compare([1.0, 2.0], [2.0, 3.0], paired=False).sign == 0  # touching ranges overlap
    assert stats.compare([1.0, 2.0], [2.5, 3.0], paired=False, higher_is_better=False).word() == "ahead"
    assert stats.compare([3.0, 4.0], [1.0, 2.5], paired=False, margin=0.6).sign == 0
    with pytest.raises(ValueError, match="margin"):
        stats.compare([1.0], [2.0], paired=False, margin=-1)


def test_tables_show_mean_and_range():
    assert stats.mean_range([86.0, 86.4, 86.2]) == "86.2 (86.0 to 86.4)"
    assert stats.mean_range([0.5], fmt=".2f") == "0.50"
    assert stats.mean_range([10.0, 20.0], unit="%") == "15.0% (10.0 to 20.0%)"
    assert stats.signed([1.25, -0.3, 0.0]) == "+1.2, -0.3, +0.0"
    s = stats.summarize(runs(), "config", "acc")
    assert stats.ranks(s).to_dict() == {"a": 1, "b": 1, "c": 2}
