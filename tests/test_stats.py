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
    assert list(s.index) == ["a", "b", "c"]
    np.testing.assert_allclose(s.loc["a", "mean"], np.mean([86.0, 86.4, 86.2]))
    np.testing.assert_allclose(s.loc["a", "sd"], np.std([86.0, 86.4, 86.2], ddof=1))
    assert s.loc["c", "min"] == 80.0 and s.loc["c", "max"] == 81.0 and (s["n"] == 3).all()


def test_ties_are_overlapping_ranges():
    assert stats.tied([1, 2], [2, 3]) and stats.tied([1, 5], [2, 3])
    assert not stats.tied([1, 2], [2.1, 3])
    s = stats.summarize(runs(), "config", "acc")
    assert stats.top_group(s) == ["a", "b"]
    assert stats.top_group(s, higher_is_better=False) == ["c"]
    assert stats.order_with_ties(s).to_dict() == {"a": 1, "b": 1, "c": 2}


def test_edges_are_refused_clearly():
    with pytest.raises(ValueError, match="empty"):
        stats.summarize(runs().iloc[:0], "config", "acc")
    with pytest.raises(KeyError, match="not in results"):
        stats.summarize(runs(), "missing", "acc")
    with pytest.raises(TypeError, match="DataFrame"):
        stats.summarize([1, 2], "config", "acc")
    with pytest.raises(ValueError, match="NaN"):
        stats.tied([1.0, float("nan")], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        stats.tied([], [1.0])
    single = stats.summarize(runs().iloc[:1], "config", "acc")
    assert np.isnan(single.loc["a", "sd"]) and stats.mean_sd(86.0, single.loc["a", "sd"]) == "86.0"
    assert stats.mean_sd(86.25, 0.4, unit="%") == "86.2% ± 0.4%"
