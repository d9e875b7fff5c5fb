"""Generated, seeded toy datasets in two dimensions.

Introduced in chapter 6 (MLP training dynamics), where a 2-D problem lets us look
at decision boundaries and count the linear regions of a ReLU network directly.

:func:`spirals` draws ``num_classes`` interleaved spiral arms: a many-class problem
with curved boundaries, so that depth and width matter and the learned
boundaries are worth plotting. The same ``seed`` always gives the same points.
:func:`split` cuts the (shuffled) rows into consecutive training, validation and test sets.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["spirals", "split"]


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value, positive: bool) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite {'positive' if positive else 'non-negative'} number, got {value!r}")
    return value


def spirals(
    n_per_class: int,
    num_classes: int,
    noise: float = 0.05,
    seed: int = 0,
    turns: float = 1.0,
    shuffle: bool = True,
):
    """Points on ``num_classes`` interleaved spiral arms in the plane, one arm per class.

    Class ``k`` has ``n_per_class`` points. For a point of class ``k`` the radius
    ``r`` is drawn uniformly from ``[0.05, 1]`` and the angle is

    .. math:: \\theta = 2\\pi k / K + 2\\pi\\,\\text{turns}\\cdot r,

    so every arm winds ``turns`` times around the origin; the point is
    ``r (cos θ, sin θ)`` plus isotropic Gaussian noise of standard deviation
    ``noise`` (in the same units as the radius, which is at most 1). Arms are
    ``2π r / K`` apart at radius ``r``, so they overlap near the centre: the
    problem is not perfectly separable there, whatever the model.

    Bad arguments raise before anything is drawn: ``TypeError`` for a wrong type (a float
    count, a string noise, a non-bool ``shuffle``), ``ValueError`` for a value out of range.

    Parameters
    ----------
    n_per_class : int, at least 1
    num_classes : int, at least 2
    noise : float, non-negative, the standard deviation of the added Gaussian noise
    seed : int, non-negative; the same seed gives the same points
    turns : float, positive, how many times each arm winds around the origin
    shuffle : bool, shuffle the rows (otherwise they are grouped by class)

    Returns
    -------
    X : float32 array of shape ``(n_per_class * num_classes, 2)``
    y : int64 array of shape ``(n_per_class * num_classes,)`` with values ``0 .. num_classes - 1``
    """
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    num_classes = _check_int("num_classes", num_classes, 2)
    seed = _check_int("seed", seed, 0)
    noise = _check_real("noise", noise, positive=False)
    turns = _check_real("turns", turns, positive=True)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes, dtype=np.int64), n_per_class)
    r = rng.uniform(0.05, 1.0, size=y.size)
    theta = 2 * np.pi * y / num_classes + 2 * np.pi * float(turns) * r
    X = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    X = X + float(noise) * rng.standard_normal(X.shape)
    if shuffle:
        order = rng.permutation(y.size)
        X, y = X[order], y[order]
    return X.astype(np.float32), y


def split(X, y, fractions=(0.6, 0.2, 0.2), names=("train", "validation", "test")):
    """Cut the rows of ``(X, y)`` into consecutive parts: ``{name: (X_part, y_part)}``.

    Part ``k`` holds the next ``int(fractions[k] * len(y))`` rows; the last part takes all
    the rows that are left, so no row is lost to rounding. The rows are not shuffled here:
    :func:`spirals` returns them shuffled. Works for NumPy arrays and torch tensors alike.

    Raises ``ValueError`` when ``X`` and ``y`` differ in length, when ``fractions`` and
    ``names`` differ in length, when a fraction is not positive or they do not sum to 1,
    or when a part would be empty.
    """
    n = len(y)
    if len(X) != n:
        raise ValueError(f"split: X has {len(X)} rows but y has {n}; pass one label per row")
    fractions, names = list(fractions), list(names)
    if len(fractions) != len(names) or not names:
        raise ValueError(
            f"split: {len(fractions)} fractions for {len(names)} names; give one fraction per part"
        )
    if any(not isinstance(f, numbers.Real) or not f > 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"split: fractions must be positive and sum to 1, got {fractions}")
    sizes = [int(f * n) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    if min(sizes) < 1:
        raise ValueError(f"split: {n} rows give parts of sizes {sizes}; every part needs at least one row")
    parts, start = {}, 0
    for name, size in zip(names, sizes):
        parts[name] = (X[start : start + size], y[start : start + size])
        start += size
    return parts
