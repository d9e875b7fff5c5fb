"""Tests of course_utils.toy_data (chapter 6)."""
import numpy as np
import pytest

from course_utils import toy_data


def test_shapes_dtypes_and_balanced_labels():
    X, y = toy_data.spirals(50, 4, noise=0.1, seed=3)
    assert X.shape == (200, 2) and X.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(np.bincount(y), [50, 50, 50, 50])
    assert np.isfinite(X).all()


def test_same_seed_same_points_other_seed_other_points():
    a = toy_data.spirals(30, 3, noise=0.05, seed=7)
    b = toy_data.spirals(30, 3, noise=0.05, seed=7)
    c = toy_data.spirals(30, 3, noise=0.05, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])


def test_noiseless_points_lie_on_their_arm():
    n, k, turns = 40, 5, 1.5
    X, y = toy_data.spirals(n, k, noise=0.0, seed=1, turns=turns, shuffle=False)
    np.testing.assert_array_equal(y, np.repeat(np.arange(k), n))
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.min() >= 0.05 - 1e-6 and r.max() <= 1.0 + 1e-6
    # angle predicted by the arm's equation, compared on the unit circle (mod 2*pi)
    theta = 2 * np.pi * y / k + 2 * np.pi * turns * r
    np.testing.assert_allclose(X[:, 0], r * np.cos(theta), atol=1e-5)
    np.testing.assert_allclose(X[:, 1], r * np.sin(theta), atol=1e-5)


def test_shuffle_is_a_permutation_of_the_unshuffled_rows():
    Xs, ys = toy_data.spirals(25, 3, noise=0.0, seed=2, shuffle=True)
    Xu, yu = toy_data.spirals(25, 3, noise=0.0, seed=2, shuffle=False)
    assert not np.array_equal(ys, yu)  # shuffled
    np.testing.assert_array_equal(np.bincount(ys), np.bincount(yu))
    # same multiset of (point, label) rows
    key = lambda X, y: sorted(map(tuple, np.column_stack([X, y]).round(5).tolist()))
    assert key(Xs, ys) == key(Xu, yu)


def test_noise_spreads_points_around_the_arm():
    X0, _ = toy_data.spirals(500, 2, noise=0.0, seed=0, shuffle=False)
    X1, _ = toy_data.spirals(500, 2, noise=0.1, seed=0, shuffle=False)
    # the noise is added after the arm point is drawn from the same stream, so the
    # difference is exactly the Gaussian noise: mean ~0, std ~0.1
    d = (X1 - X0).ravel()
    assert abs(d.mean()) < 0.01
    assert 0.09 < d.std() < 0.11


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(n_per_class=0, num_classes=3), ValueError, "n_per_class"),
        (dict(n_per_class=2.5, num_classes=3), TypeError, "n_per_class"),
        (dict(n_per_class=10, num_classes=1), ValueError, "num_classes"),
        (dict(n_per_class=10, num_classes=True), TypeError, "num_classes"),
        (dict(n_per_class=10, num_classes=3, noise=-0.1), ValueError, "noise"),
        (dict(n_per_class=10, num_classes=3, noise=float("nan")), ValueError, "noise"),
        (dict(n_per_class=10, num_classes=3, seed=-1), ValueError, "seed"),
        (dict(n_per_class=10, num_classes=3, turns=0), ValueError, "turns"),
    ],
)
def test_bad_input_raises_a_clear_error(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        toy_data.spirals(**kwargs)


def test_split_cuts_consecutive_parts_and_loses_no_row():
    X, y = toy_data.spirals(201, 5, seed=4)  # 1,005 rows: the last part takes the remainder
    parts = toy_data.split(X, y)
    assert list(parts) == ["train", "validation", "test"]
    assert [len(p[1]) for p in parts.values()] == [603, 201, 201]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts.values()]), X)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts.values()]), y)


def test_split_works_on_torch_tensors():
    torch = pytest.importorskip("torch")
    X, y = toy_data.spirals(10, 2, seed=0)
    parts = toy_data.split(torch.from_numpy(X), torch.from_numpy(y), (0.5, 0.5), ("a", "b"))
    assert isinstance(parts["a"][0], torch.Tensor) and len(parts["b"][1]) == 10


@pytest.mark.parametrize(
    "args, words",
    [
        (dict(fractions=(0.5, 0.6), names=("a", "b")), "sum to 1"),
        (dict(fractions=(1.2, -0.2), names=("a", "b")), "positive"),
        (dict(fractions=(0.5, 0.5), names=("a",)), "one fraction per part"),
        (dict(fractions=(0.98, 0.01, 0.01)), "at least one row"),
    ],
)
def test_split_bad_input_raises_a_clear_error(args, words):
    X, y = toy_data.spirals(10, 2, seed=0)
    with pytest.raises(ValueError, match=words):
        toy_data.split(X, y, **args)


def test_split_refuses_x_and_y_of_different_lengths():
    X, y = toy_data.spirals(10, 2, seed=0)
    with pytest.raises(ValueError, match="one label per row"):
        toy_data.split(X, y[:-1])
