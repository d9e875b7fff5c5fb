"""Numerical checks: central finite differences and relative errors.

Chapters 1, 2 and 5 check every hand-derived derivative against these (and
against ``torch.autograd``). Work in float64: with step ``eps`` the central
difference has truncation error O(eps^2) and rounding error O(machine_eps / eps),
so ``eps = 1e-6`` gives roughly 1e-10 absolute accuracy for well-scaled functions.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["numerical_jacobian", "numerical_gradient", "relative_error"]


def numerical_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of ``f`` at ``x``.

    Returns an array of shape ``f(x).shape + x.shape`` (numerator layout):
    ``J[i..., j...] = d f(x)[i...] / d x[j...]``. ``x`` is not modified.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    if not np.isfinite(x).all():
        raise ValueError("numerical_jacobian: x contains non-finite values")
    y0 = np.asarray(f(x.copy()), dtype=np.float64)
    jac = np.empty(y0.shape + x.shape, dtype=np.float64)
    flat = x.reshape(-1)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        y_plus = np.asarray(f(x.copy()), dtype=np.float64)
        flat[j] = old - eps
        y_minus = np.asarray(f(x.copy()), dtype=np.float64)
        flat[j] = old
        jac[(...,) + np.unravel_index(j, x.shape)] = (y_plus - y_minus) / (2 * eps)
    return jac


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function; same shape as ``x``."""
    y = np.asarray(f(np.array(x, dtype=np.float64, copy=True)))
    if y.size != 1:
        raise ValueError(f"numerical_gradient needs a scalar function, f(x) has shape {y.shape}")
    return numerical_jacobian(lambda z: np.asarray(f(z), dtype=np.float64).reshape(()), x, eps)


def relative_error(a, b, floor: float = 1e-12) -> float:
    """max |a - b| / max(max|a|, max|b|, floor): one number for 'how far apart are these arrays'."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), floor)
    return float(np.abs(a - b).max(initial=0.0) / scale)
