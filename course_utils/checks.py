"""Numerical checks: central finite differences and relative errors.

Chapters 1, 2 and 5 check every hand-derived derivative against these (and
against ``torch.autograd``). Work in float64: with step ``h`` the central
difference (f(x + h) - f(x - h)) / (2h) has truncation error O(h^2) and rounding
error O(machine epsilon / h), so ``h = 1e-6`` gives roughly 1e-10 absolute accuracy
for well-scaled functions. (The step is ``h`` as on the book's notation page;
epsilon is the adaptive optimizers' constant.)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import validation

__all__ = ["numerical_jacobian", "numerical_gradient", "relative_error"]


def _float_array(x, name: str, where: str) -> np.ndarray:
    """A float64 copy of ``x`` (real numbers only), or a TypeError naming the argument."""
    try:
        arr = np.array(x, copy=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: {name} must be a numeric array, got {type(x).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _check_step(h, where: str) -> float:
    try:
        return validation.nonnegative_real("h (the finite-difference step)", h, positive=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def _values(f, x: np.ndarray, where: str, at: str) -> np.ndarray:
    """f at a copy of x, as a finite float64 array, or an error that says where f failed."""
    out = f(x.copy())
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # a torch tensor: its values
        out = out.detach().cpu().numpy()
    try:
        y = np.asarray(out)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: f must return numbers, got {type(out).__name__} at {at}") from exc
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{where}: f must return real numbers, got dtype {y.dtype} at {at}")
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise ValueError(f"{where}: f is not finite (NaN or infinity) at {at}; finite differences need a "
                         f"function that is finite around x (try a smaller h or another point)")
    return y


def numerical_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of ``f`` at ``x``.

    Returns an array of shape ``f(x).shape + x.shape`` (numerator layout):
    ``J[i..., j...] = d f(x)[i...] / d x[j...]``. ``x`` is not modified; ``f`` receives
    float64 copies. ``x`` may be a scalar or an array of any shape, but not empty, and
    ``f(x)`` must be non-empty, keep its shape and be finite at every point evaluated
    (otherwise a ``ValueError`` says where). ``h`` is a positive finite step.
    """
    where = "numerical_jacobian"
    h = _check_step(h, where)
    x = _float_array(x, "x", where)
    if x.size == 0:
        raise ValueError(f"{where}: x is empty (shape {x.shape}); there is nothing to differentiate")
    if not np.isfinite(x).all():
        raise ValueError(f"{where}: x contains non-finite values")
    y0 = _values(f, x, where, "x")
    if y0.size == 0:
        raise ValueError(f"{where}: f(x) is empty (shape {y0.shape}); a check against it would compare nothing")
    jac = np.empty(y0.shape + x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: x is a contiguous copy
    for j in range(flat.size):
        old = flat[j]
        index = tuple(int(i) for i in np.unravel_index(j, x.shape))
        flat[j] = old + h
        y_plus = _values(f, x, where, f"x + h at index {index}")
        flat[j] = old - h
        y_minus = _values(f, x, where, f"x - h at index {index}")
        flat[j] = old
        for y in (y_plus, y_minus):
            if y.shape != y0.shape:
                raise ValueError(f"{where}: f(x) has shape {y0.shape} but f returned shape {y.shape} at a "
                                 f"perturbed point (index {index}); f must keep its output shape")
        jac[(...,) + index] = (y_plus - y_minus) / (2 * h)
    return jac


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function; same shape as ``x`` (same rules as
    :func:`numerical_jacobian`)."""
    where = "numerical_gradient"
    h = _check_step(h, where)
    x = _float_array(x, "x", where)
    y = _values(f, x, where, "x")
    if y.size != 1:
        raise ValueError(f"numerical_gradient needs a scalar function, f(x) has shape {y.shape}")
    return numerical_jacobian(lambda z: _values(f, z, where, "a perturbed x").reshape(()), x, h)


def relative_error(a, b, floor: float = 1e-12) -> float:
    """max |a - b| / max(max|a|, max|b|, floor): one number for 'how far apart are these arrays'.

    ``a`` and ``b`` must have the same, non-empty shape (comparing nothing would always pass).
    Returns NaN when either holds NaN or infinity, so that a check ``relative_error(...) < tol``
    fails. ``floor >= 0`` guards against dividing by zero when both are tiny; with
    ``floor=0`` two all-zero arrays are 0.0 apart.
    """
    where = "relative_error"
    try:
        floor = validation.nonnegative_real("floor", floor)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    a = _float_array(a, "a", where)
    b = _float_array(b, "b", where)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError(f"{where}: the arrays are empty (shape {a.shape}); there is nothing to compare")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    diff = float(np.abs(a - b).max())
    if diff == 0.0:
        return 0.0
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), float(floor))
    return diff / scale
