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
* Batches are rows (as in PyTorch): :func:`linear` computes ``Y = X W^T + b``
  for ``X`` of shape ``(B, D)`` and a layer's weight matrix ``W`` of shape ``(M, D)``.
  The layer functions (``tanh_layer*``, ``linear*``) call a layer's weights ``W`` and
  its bias ``b``, as the rest of the book does; ``b=None`` means a layer without bias.

Every function whose name ends in ``_jacobian`` (or ``_jacobians``, ``_vjp``,
``_chain``) returns NumPy float64 arrays; it accepts any real array-like, including
a ``torch.Tensor`` (its values are used, on the CPU). The forward functions
(``sin_cos``, ``dot``, ``outer``, ``gaussian_exp``, ``trace_outer``, ``tanh_layer``,
``linear``) accept NumPy arrays *or* ``torch.Tensor`` inputs, in any argument: when
one argument is a tensor the others become tensors of its float dtype and device, so
that the same code is differentiated by finite differences and by ``torch.autograd``
in the chapter and in the tests (integer tensors compute in float64). NumPy inputs
may be integers; they are computed in float64. NaN or infinity in a NumPy input
raises a ``ValueError``.
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
    """If any input is a torch.Tensor, turn the others into tensors too (so autograd sees them).

    All get the tensors' promoted dtype (float64 when that is not a float type) and the
    first tensor's device; ``None`` (an absent bias) stays ``None``.
    """
    if not _is_torch(*xs):
        return xs
    import torch

    tensors = [x for x in xs if isinstance(x, torch.Tensor)]
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    device = tensors[0].device
    return tuple(None if x is None else torch.as_tensor(x, dtype=dtype, device=device) for x in xs)


def _shape(x) -> tuple:
    return tuple(getattr(x, "shape", np.shape(x)))


_KINDS = {0: "a scalar", 1: "a 1-D vector", 2: "a 2-D matrix"}


def _array(x, name: str, ndim: int, *, allow_torch: bool = False):
    """Check ``x`` has ``ndim`` dimensions and finite real values; return float64 numpy (or the tensor).

    With ``allow_torch`` a tensor is returned as it is (autograd must see it); without, a
    tensor's values are used (detached, on the CPU).
    """
    kind = _KINDS.get(ndim, f"{ndim}-D")
    if _is_torch(x):
        if x.ndim != ndim:
            raise ValueError(f"{name} must be {kind}, got a tensor of shape {tuple(x.shape)}")
        if allow_torch:
            return x
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array of real numbers, got {type(x).__name__} of dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != ndim:
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


# --------------------------------------------------------------------------- f = exp(-q/2), q = d^T Sigma^-1 d, d = x - mu
def _gaussian_args(x, mu, Sigma, allow_torch: bool = False):
    x = _array(x, "x", 1, allow_torch=allow_torch)
    mu = _array(mu, "mu", 1, allow_torch=allow_torch)
    Sigma = _array(Sigma, "Sigma", 2, allow_torch=allow_torch)
    _same_length(x, mu, "x", "mu")
    d = _shape(x)[0]
    if d == 0:
        raise ValueError("x and mu are empty (length 0); the Gaussian needs x in R^D with D >= 1")
    if _shape(Sigma) != (d, d):
        raise ValueError(f"Sigma must be a square {d} x {d} matrix to match x in R^{d}, got shape {_shape(Sigma)}")
    if not _is_torch(Sigma):
        cond = np.linalg.cond(Sigma)
        if not np.isfinite(cond) or cond > 1e12:
            raise ValueError(f"Sigma is singular or nearly singular (condition number {cond:.3g}); it must be invertible")
    return x, mu, Sigma


def gaussian_exp(x, mu, Sigma):
    """f(x) = exp(-q/2) with q = d^T Sigma^{-1} d and d = x - mu (an unnormalised Gaussian density
    when Sigma is a covariance matrix)."""
    x, mu, Sigma = _common(*_gaussian_args(x, mu, Sigma, allow_torch=True))
    d = x - mu
    if _is_torch(x, mu, Sigma):
        import torch

        return torch.exp(-0.5 * (d @ torch.linalg.solve(Sigma, d)))
    return np.exp(-0.5 * (d @ np.linalg.solve(Sigma, d)))


def gaussian_exp_chain(x, mu, Sigma) -> dict[str, np.ndarray]:
    """The three factors of the chain rule for :func:`gaussian_exp`, and their product.

    Returns a dict with
    ``dd_dx`` (D x D, the identity), ``dq_dd`` (1 x D, ``d^T (Sigma^{-1} + Sigma^{-T})``),
    ``df_dq`` (1 x 1, ``-f/2``) and ``df_dx = df_dq @ dq_dd @ dd_dx`` (1 x D).
    """
    x, mu, Sigma = _gaussian_args(x, mu, Sigma)
    d = x - mu
    f = gaussian_exp(x, mu, Sigma)
    dd_dx = np.eye(x.size)
    # d^T Sigma^{-1} = (Sigma^{-T} d)^T and d^T Sigma^{-T} = (Sigma^{-1} d)^T
    dq_dd = (np.linalg.solve(Sigma.T, d) + np.linalg.solve(Sigma, d))[None, :]
    df_dq = np.array([[-0.5 * f]])
    return {"dd_dx": dd_dx, "dq_dd": dq_dd, "df_dq": df_dq, "df_dx": df_dq @ dq_dd @ dd_dx}


def gaussian_exp_jacobian(x, mu, Sigma) -> np.ndarray:
    """d f/dx = -1/2 f (x - mu)^T (Sigma^{-1} + Sigma^{-T}), a 1 x D row, valid for any invertible Sigma."""
    return gaussian_exp_chain(x, mu, Sigma)["df_dx"]


def gaussian_exp_jacobian_symmetric(x, mu, Sigma) -> np.ndarray:
    """The shortcut -f (x - mu)^T Sigma^{-1}, a 1 x D row.

    Equal to :func:`gaussian_exp_jacobian` only when Sigma is symmetric (Sigma^{-1} = Sigma^{-T});
    wrong otherwise. Kept to show that in chapter 2.
    """
    x, mu, Sigma = _gaussian_args(x, mu, Sigma)
    d = x - mu
    return -gaussian_exp(x, mu, Sigma) * np.linalg.solve(Sigma.T, d)[None, :]


# --------------------------------------------------------------------------- f(x) = tr(x x^T + c^2 I)
def trace_outer(x, c):
    """f(x) = tr(x x^T + c^2 I) = x^T x + n c^2 for x in R^n and a scalar constant c.

    Either argument may be a tensor (then so is the result, differentiable in both).
    """
    x = _array(x, "x", 1, allow_torch=True)
    c = _array(c, "c", 0, allow_torch=True)
    n = _shape(x)[0]
    if _is_torch(x, c):
        import torch

        x, c = _common(x, c)
        return torch.trace(torch.outer(x, x) + c**2 * torch.eye(n, dtype=x.dtype, device=x.device))
    return np.trace(np.outer(x, x) + float(c) ** 2 * np.eye(n))


def trace_outer_jacobian(x) -> np.ndarray:
    """d tr(x x^T + c^2 I)/dx = 2 x^T, a 1 x n row (c does not depend on x)."""
    x = _array(x, "x", 1)
    return 2.0 * x[None, :]


# --------------------------------------------------------------------------- f(x) = tanh(W x + b)
def _tanh_args(x, W, b, allow_torch: bool = False):
    x = _array(x, "x", 1, allow_torch=allow_torch)
    W = _array(W, "W", 2, allow_torch=allow_torch)
    M, D = _shape(W)
    if _shape(x) != (D,):
        raise ValueError(f"x must have length D = {D} (the number of columns of W, shape {(M, D)}), got shape {_shape(x)}")
    if b is not None:
        b = _array(b, "b", 1, allow_torch=allow_torch)
        if _shape(b) != (M,):
            raise ValueError(f"b must have length M = {M} (the number of rows of W, shape {(M, D)}), got shape {_shape(b)}")
    return x, W, b


def _preactivation(x, W, b):
    z = W @ x
    return z if b is None else z + b


def tanh_layer(x, W, b=None):
    """f(x) = tanh(W x + b) for W in R^{M x D}, x in R^D, b in R^M (a vector in R^M); ``b=None``: no bias."""
    x, W, b = _common(*_tanh_args(x, W, b, allow_torch=True))
    if _is_torch(x, W, b):
        import torch

        return torch.tanh(_preactivation(x, W, b))
    return np.tanh(_preactivation(x, W, b))


def tanh_layer_jacobian(x, W, b=None) -> np.ndarray:
    """d tanh(W x + b)/dx = diag(1 - tanh^2(W x + b)) W, an M x D matrix; ``b=None``: no bias."""
    x, W, b = _tanh_args(x, W, b)
    t = np.tanh(_preactivation(x, W, b))
    return (1.0 - t**2)[:, None] * W  # row i of W scaled by 1 - t_i^2: diag(...) @ W without the diag


def tanh_layer_vjp(x, W, b, v) -> np.ndarray:
    """The vector-Jacobian product v^T (d f/dx) = (v * (1 - tanh^2(W x + b)))^T W, length D.

    O(M D) work and O(M + D) extra memory: the M x D Jacobian is never formed.
    ``b=None``: a layer without bias.
    """
    x, W, b = _tanh_args(x, W, b)
    v = _array(v, "v", 1)
    if v.shape != (W.shape[0],):
        raise ValueError(f"v must have length M = {W.shape[0]} (one entry per output of the layer), got shape {v.shape}")
    t = np.tanh(_preactivation(x, W, b))
    return (v * (1.0 - t**2)) @ W


# --------------------------------------------------------------------------- Linear (rows layout), chapter 1's node
def _linear_args(X, W, b, allow_torch: bool = False):
    X = _array(X, "X", 2, allow_torch=allow_torch)
    W = _array(W, "W", 2, allow_torch=allow_torch)
    M, D = _shape(W)
    if _shape(X)[1] != D:
        raise ValueError(
            f"X must have D = {D} columns (samples are rows; W has shape {(M, D)} = (outputs, inputs)), got shape {_shape(X)}"
        )
    if b is not None:
        b = _array(b, "b", 1, allow_torch=allow_torch)
        if _shape(b) != (M,):
            raise ValueError(f"b must have length M = {M} (the number of rows of W), got shape {_shape(b)}")
    return X, W, b


def linear(X, W, b=None):
    """Y = X W^T + b: a batch X of shape (B, D) (samples are rows), W of shape (M, D), b of shape (M,).

    ``b=None``: a layer without bias, Y = X W^T.
    """
    X, W, b = _common(*_linear_args(X, W, b, allow_torch=True))
    Y = X @ W.T
    return Y if b is None else Y + b


def linear_jacobians(X, W) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full Jacobians of Y = X W^T + b (they do not depend on b).

    Returns ``(dY_dX, dY_dW, dY_db)`` of shapes ``(B, M, B, D)``, ``(B, M, M, D)`` and
    ``(B, M, M)``:
    ``dY_dX[p, i, q, j] = delta_pq W[i, j]``, ``dY_dW[p, i, k, j] = delta_ik X[p, j]``,
    ``dY_db[p, i, k] = delta_ik``. Mostly zeros: chapter 2 forms them only to show
    that the backward pass never needs to.
    """
    X, W, _ = _linear_args(X, W, None)
    B, _ = X.shape
    M, _ = W.shape
    dY_dX = np.einsum("pq,ij->piqj", np.eye(B), W)
    dY_dW = np.einsum("ik,pj->pikj", np.eye(M), X)
    dY_db = np.broadcast_to(np.eye(M), (B, M, M)).copy()
    return dY_dX, dY_dW, dY_db


def linear_vjp(X, W, Y_bar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chapter 1's backward rules of Linear, which are vector-Jacobian products.

    Given the upstream gradient ``Y_bar = dL/dY`` of shape (B, M): ``dL/dX = Y_bar W`` (B, D),
    ``dL/dW = Y_bar^T X`` (M, D), ``dL/db = Y_bar`` summed over the rows (M,).
    """
    X, W, _ = _linear_args(X, W, None)
    Y_bar = _array(Y_bar, "Y_bar", 2)
    if Y_bar.shape != (X.shape[0], W.shape[0]):
        raise ValueError(f"Y_bar must have shape (B, M) = {(X.shape[0], W.shape[0])}, like Y, got {Y_bar.shape}")
    return Y_bar @ W, Y_bar.T @ X, Y_bar.sum(axis=0)
