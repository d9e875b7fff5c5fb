"""Closed-form Jacobians of chapter 2 (Jacobians and the chain rule).

Conventions (numerator layout, used throughout the book)
--------------------------------------------------------
* The derivative of ``f: R^D -> R^M`` at ``x`` is the **M x D** Jacobian
  ``J[i, j] = d f_i / d x_j``: one row per output, one column per input.
* In particular the derivative of a *scalar* ``f`` with respect to ``x in R^D`` is
  a **1 x D row**; the *gradient* is its transpose, a column (stored here as a
  1-D array of length D when a gradient, not a Jacobian, is meant).
* For tensor-valued ``f`` or ``x`` the Jacobian's shape is ``f(x).shape + x.shape``,
  the same as :func:`course_utils.checks.numerical_jacobian` and
  ``torch.autograd.functional.jacobian`` return. Example: ``d(x x^T)/dx`` has
  shape ``(n, n, n)``.
* Batches are rows (as in PyTorch): :func:`linear` computes ``Y = X A^T + b``
  for ``X`` of shape ``(B, N)`` and ``A`` of shape ``(M, N)``.

Every function whose name ends in ``_jacobian`` returns the Jacobian in that
layout as a float64 NumPy array. The forward functions (``sin_cos``, ``dot``,
``outer``, ``gaussian_exp``, ``trace_outer``, ``tanh_layer``, ``linear``) accept
NumPy arrays *or* ``torch.Tensor`` inputs, so the same code is differentiated by
finite differences and by ``torch.autograd`` in the chapter and in the tests.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "sin_cos",
    "sin_cos_jacobian",
    "dot",
    "dot_jacobian",
    "outer",
    "outer_jacobian",
    "gaussian_exp",
    "gaussian_exp_chain",
    "gaussian_exp_jacobian",
    "gaussian_exp_jacobian_symmetric",
    "trace_outer",
    "trace_outer_jacobian",
    "tanh_layer",
    "tanh_layer_jacobian",
    "tanh_layer_vjp",
    "linear",
    "linear_jacobians",
    "linear_vjp",
]


# --------------------------------------------------------------------------- helpers
def _is_torch(*xs) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return any(isinstance(x, torch.Tensor) for x in xs)


def _common(*xs):
    """If any input is a torch.Tensor, turn the others into tensors of its dtype (so autograd sees them)."""
    if not _is_torch(*xs):
        return xs
    import torch

    ref = next(x for x in xs if isinstance(x, torch.Tensor))
    return tuple(torch.as_tensor(x, dtype=ref.dtype, device=ref.device) for x in xs)


def _shape(x) -> tuple:
    return tuple(getattr(x, "shape", np.shape(x)))


def _array(x, name: str, ndim: int, *, allow_torch: bool = False):
    """Check ``x`` has ``ndim`` dimensions and finite values; return float64 numpy (or the tensor)."""
    if allow_torch and _is_torch(x):
        if x.ndim != ndim:
            raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(x.shape)}")
        return x
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from exc
    if arr.ndim != ndim:
        kind = {0: "a scalar", 1: "a 1-D vector", 2: "a 2-D matrix"}.get(ndim, f"{ndim}-D")
        raise ValueError(f"{name} must be {kind}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return arr


def _same_length(a, b, name_a: str, name_b: str) -> None:
    if _shape(a)[-1] != _shape(b)[-1]:
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {_shape(a)} and {_shape(b)}")


# --------------------------------------------------------------------------- f1(x) = sin(x1) cos(x2)
def sin_cos(x):
    """f1(x) = sin(x_1) cos(x_2) for x in R^2 (a scalar)."""
    x = _array(x, "x", 1, allow_torch=True)
    if _shape(x) != (2,):
        raise ValueError(f"sin_cos needs x in R^2, got shape {_shape(x)}")
    if _is_torch(x):
        import torch

        return torch.sin(x[0]) * torch.cos(x[1])
    return np.sin(x[0]) * np.cos(x[1])


def sin_cos_jacobian(x) -> np.ndarray:
    """d f1 / dx = [cos(x_1) cos(x_2), -sin(x_1) sin(x_2)], a 1 x 2 row."""
    x = _array(x, "x", 1)
    if x.shape != (2,):
        raise ValueError(f"sin_cos_jacobian needs x in R^2, got shape {x.shape}")
    return np.array([[np.cos(x[0]) * np.cos(x[1]), -np.sin(x[0]) * np.sin(x[1])]])


# --------------------------------------------------------------------------- f2(x, y) = x^T y
def dot(x, y):
    """f2(x, y) = x^T y for x, y in R^n (a scalar)."""
    x = _array(x, "x", 1, allow_torch=True)
    y = _array(y, "y", 1, allow_torch=True)
    _same_length(x, y, "x", "y")
    x, y = _common(x, y)
    return x @ y


def dot_jacobian(x, y) -> tuple[np.ndarray, np.ndarray]:
    """(d f2/dx, d f2/dy) = (y^T, x^T): two 1 x n rows."""
    x = _array(x, "x", 1)
    y = _array(y, "y", 1)
    _same_length(x, y, "x", "y")
    return y[None, :].copy(), x[None, :].copy()


# --------------------------------------------------------------------------- f3(x) = x x^T
def outer(x):
    """f3(x) = x x^T for x in R^n (an n x n matrix)."""
    x = _array(x, "x", 1, allow_torch=True)
    if _is_torch(x):
        import torch

        return torch.outer(x, x)
    return np.outer(x, x)


def outer_jacobian(x) -> np.ndarray:
    """d(x x^T)/dx: an n x n x n tensor, J[i, j, k] = delta_ik x_j + x_i delta_jk."""
    x = _array(x, "x", 1)
    eye = np.eye(x.size)
    # first term: delta_ik x_j -> J1[i, j, k] = eye[i, k] * x[j]
    return np.einsum("ik,j->ijk", eye, x) + np.einsum("i,jk->ijk", x, eye)


# --------------------------------------------------------------------------- f(x) = exp(-z/2), z = y^T S^-1 y, y = x - mu
def _gaussian_args(x, mu, S, allow_torch: bool = False):
    x = _array(x, "x", 1, allow_torch=allow_torch)
    mu = _array(mu, "mu", 1, allow_torch=allow_torch)
    S = _array(S, "S", 2, allow_torch=allow_torch)
    _same_length(x, mu, "x", "mu")
    d = _shape(x)[0]
    if _shape(S) != (d, d):
        raise ValueError(f"S must be a square {d} x {d} matrix to match x in R^{d}, got shape {_shape(S)}")
    if not _is_torch(S):
        cond = np.linalg.cond(S)
        if not np.isfinite(cond) or cond > 1e12:
            raise ValueError(f"S is singular or nearly singular (condition number {cond:.3g}); it must be invertible")
    return x, mu, S


def gaussian_exp(x, mu, S):
    """f(x) = exp(-z/2) with z = y^T S^{-1} y and y = x - mu (an unnormalised Gaussian when S is a covariance)."""
    x, mu, S = _common(*_gaussian_args(x, mu, S, allow_torch=True))
    y = x - mu
    if _is_torch(x, mu, S):
        import torch

        return torch.exp(-0.5 * (y @ torch.linalg.solve(S, y)))
    return np.exp(-0.5 * (y @ np.linalg.solve(S, y)))


def gaussian_exp_chain(x, mu, S) -> dict[str, np.ndarray]:
    """The three factors of the chain rule for :func:`gaussian_exp`, and their product.

    Returns a dict with
    ``dy_dx`` (D x D, the identity), ``dz_dy`` (1 x D, ``y^T (S^{-1} + S^{-T})``),
    ``df_dz`` (1 x 1, ``-f/2``) and ``df_dx = df_dz @ dz_dy @ dy_dx`` (1 x D).
    """
    x, mu, S = _gaussian_args(x, mu, S)
    y = x - mu
    f = gaussian_exp(x, mu, S)
    dy_dx = np.eye(x.size)
    # y^T S^{-1} = (S^{-T} y)^T and y^T S^{-T} = (S^{-1} y)^T
    dz_dy = (np.linalg.solve(S.T, y) + np.linalg.solve(S, y))[None, :]
    df_dz = np.array([[-0.5 * f]])
    return {"dy_dx": dy_dx, "dz_dy": dz_dy, "df_dz": df_dz, "df_dx": df_dz @ dz_dy @ dy_dx}


def gaussian_exp_jacobian(x, mu, S) -> np.ndarray:
    """d f/dx = -1/2 f (x - mu)^T (S^{-1} + S^{-T}), a 1 x D row, valid for any invertible S."""
    return gaussian_exp_chain(x, mu, S)["df_dx"]


def gaussian_exp_jacobian_symmetric(x, mu, S) -> np.ndarray:
    """The shortcut -f (x - mu)^T S^{-1}, a 1 x D row.

    Equal to :func:`gaussian_exp_jacobian` only when S is symmetric (S^{-1} = S^{-T});
    wrong otherwise. Kept to show that in chapter 2.
    """
    x, mu, S = _gaussian_args(x, mu, S)
    y = x - mu
    return -gaussian_exp(x, mu, S) * np.linalg.solve(S.T, y)[None, :]


# --------------------------------------------------------------------------- f(x) = tr(x x^T + sigma^2 I)
def trace_outer(x, sigma):
    """f(x) = tr(x x^T + sigma^2 I) = x^T x + n sigma^2 for x in R^n."""
    x = _array(x, "x", 1, allow_torch=True)
    sigma = float(_array(sigma, "sigma", 0))
    n = _shape(x)[0]
    if _is_torch(x):
        import torch

        return torch.trace(torch.outer(x, x) + sigma**2 * torch.eye(n, dtype=x.dtype))
    return np.trace(np.outer(x, x) + sigma**2 * np.eye(n))


def trace_outer_jacobian(x) -> np.ndarray:
    """d tr(x x^T + sigma^2 I)/dx = 2 x^T, a 1 x n row (sigma does not depend on x)."""
    x = _array(x, "x", 1)
    return 2.0 * x[None, :]


# --------------------------------------------------------------------------- f(x) = tanh(A x + b)
def _tanh_args(x, A, b, allow_torch: bool = False):
    x = _array(x, "x", 1, allow_torch=allow_torch)
    A = _array(A, "A", 2, allow_torch=allow_torch)
    b = _array(b, "b", 1, allow_torch=allow_torch)
    M, N = _shape(A)
    if _shape(x) != (N,):
        raise ValueError(f"x must have length N = {N} (the number of columns of A, shape {(M, N)}), got shape {_shape(x)}")
    if _shape(b) != (M,):
        raise ValueError(f"b must have length M = {M} (the number of rows of A, shape {(M, N)}), got shape {_shape(b)}")
    return x, A, b


def tanh_layer(x, A, b):
    """f(x) = tanh(A x + b) for A in R^{M x N}, x in R^N, b in R^M (a vector in R^M)."""
    x, A, b = _common(*_tanh_args(x, A, b, allow_torch=True))
    if _is_torch(x, A, b):
        import torch

        return torch.tanh(A @ x + b)
    return np.tanh(A @ x + b)


def tanh_layer_jacobian(x, A, b) -> np.ndarray:
    """d tanh(A x + b)/dx = diag(1 - tanh^2(A x + b)) A, an M x N matrix."""
    x, A, b = _tanh_args(x, A, b)
    t = np.tanh(A @ x + b)
    return (1.0 - t**2)[:, None] * A  # row i of A scaled by 1 - t_i^2: diag(...) @ A without the diag


def tanh_layer_vjp(x, A, b, v) -> np.ndarray:
    """The vector-Jacobian product v^T (d f/dx) = (v * (1 - tanh^2(A x + b)))^T A, length N.

    O(M N) work and O(M + N) extra memory: the M x N Jacobian is never formed.
    """
    x, A, b = _tanh_args(x, A, b)
    v = _array(v, "v", 1)
    if v.shape != (A.shape[0],):
        raise ValueError(f"v must have length M = {A.shape[0]} (one entry per output of the layer), got shape {v.shape}")
    t = np.tanh(A @ x + b)
    return (v * (1.0 - t**2)) @ A


# --------------------------------------------------------------------------- Linear (rows layout), chapter 1's node
def _linear_args(X, A, b, allow_torch: bool = False):
    X = _array(X, "X", 2, allow_torch=allow_torch)
    A = _array(A, "A", 2, allow_torch=allow_torch)
    M, N = _shape(A)
    if _shape(X)[1] != N:
        raise ValueError(
            f"X must have N = {N} columns (samples are rows; A has shape {(M, N)} = (outputs, inputs)), got shape {_shape(X)}"
        )
    if b is not None:
        b = _array(b, "b", 1, allow_torch=allow_torch)
        if _shape(b) != (M,):
            raise ValueError(f"b must have length M = {M} (the number of rows of A), got shape {_shape(b)}")
    return X, A, b


def linear(X, A, b):
    """Y = X A^T + b: a batch X of shape (B, N) (samples are rows), A of shape (M, N), b of shape (M,)."""
    X, A, b = _common(*_linear_args(X, A, b, allow_torch=True))
    return X @ A.T + b


def linear_jacobians(X, A) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full Jacobians of Y = X A^T + b (they do not depend on b).

    Returns ``(dY_dX, dY_dA, dY_db)`` of shapes ``(B, M, B, N)``, ``(B, M, M, N)`` and
    ``(B, M, M)``:
    ``dY_dX[p, i, q, j] = delta_pq A[i, j]``, ``dY_dA[p, i, k, j] = delta_ik X[p, j]``,
    ``dY_db[p, i, k] = delta_ik``. Mostly zeros: chapter 2 forms them only to show
    that the backward pass never needs to.
    """
    X, A, _ = _linear_args(X, A, None)
    B, _ = X.shape
    M, _ = A.shape
    dY_dX = np.einsum("pq,ij->piqj", np.eye(B), A)
    dY_dA = np.einsum("ik,pj->pikj", np.eye(M), X)
    dY_db = np.broadcast_to(np.eye(M), (B, M, M)).copy()
    return dY_dX, dY_dA, dY_db


def linear_vjp(X, A, dY) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chapter 1's backward rules of Linear, which are vector-Jacobian products.

    Given ``dY = dL/dY`` of shape (B, M): ``dL/dX = dY A`` (B, N), ``dL/dA = dY^T X`` (M, N),
    ``dL/db = dY`` summed over the rows (M,).
    """
    X, A, _ = _linear_args(X, A, None)
    dY = _array(dY, "dY", 2)
    if dY.shape != (X.shape[0], A.shape[0]):
        raise ValueError(f"dY must have shape (B, M) = {(X.shape[0], A.shape[0])}, like Y, got {dY.shape}")
    return dY @ A, dY.T @ X, dY.sum(axis=0)
