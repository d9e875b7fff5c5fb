"""Chapter 2's closed-form Jacobians against finite differences and torch.autograd."""
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from course_utils import calculus as C
from course_utils.checks import numerical_jacobian

RTOL, ATOL = 1e-7, 1e-9


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def autograd_jacobian(f, *inputs):
    """torch.autograd.functional.jacobian of f at the given numpy inputs, as numpy (float64)."""
    ts = tuple(torch.tensor(a, dtype=torch.float64) for a in inputs)
    jac = torch.autograd.functional.jacobian(f, ts if len(ts) > 1 else ts[0])
    if isinstance(jac, tuple):
        return tuple(j.numpy() for j in jac)
    return jac.numpy()


def covariance(rng, d):
    L = rng.normal(size=(d, d))
    return L @ L.T / d + 0.5 * np.eye(d)


# --------------------------------------------------------------------------- f1, f2, f3
def test_sin_cos_jacobian(rng):
    x = rng.normal(size=2)
    J = C.sin_cos_jacobian(x)
    assert J.shape == (1, 2)
    assert_allclose(J, numerical_jacobian(C.sin_cos, x)[None, :], rtol=RTOL, atol=ATOL)
    assert_allclose(J, autograd_jacobian(C.sin_cos, x)[None, :], rtol=1e-12, atol=1e-14)
    assert_allclose(C.sin_cos_jacobian([0.0, 0.0]), [[1.0, -0.0]])


def test_dot_jacobian(rng):
    x, y = rng.normal(size=(2, 5))
    Jx, Jy = C.dot_jacobian(x, y)
    assert Jx.shape == Jy.shape == (1, 5)
    assert_allclose(Jx, y[None, :])
    assert_allclose(Jy, x[None, :])
    assert_allclose(Jx, numerical_jacobian(lambda v: C.dot(v, y), x)[None, :], rtol=RTOL, atol=ATOL)
    tx, ty = autograd_jacobian(C.dot, x, y)
    assert_allclose(Jx[0], tx)
    assert_allclose(Jy[0], ty)


def test_outer_jacobian_is_third_order_tensor(rng):
    x = rng.normal(size=4)
    J = C.outer_jacobian(x)
    assert J.shape == (4, 4, 4)
    assert_allclose(J, numerical_jacobian(C.outer, x), rtol=RTOL, atol=ATOL)
    assert_allclose(J, autograd_jacobian(C.outer, x), rtol=1e-12, atol=1e-14)
    # the index formula entry by entry
    d = np.eye(4)
    for i, j, k in [(0, 1, 0), (2, 2, 2), (1, 3, 3), (0, 1, 2)]:
        assert J[i, j, k] == pytest.approx(d[i, k] * x[j] + x[i] * d[j, k])


# --------------------------------------------------------------------------- chain rule, Gaussian
def test_gaussian_chain_dimensions_and_product(rng):
    D = 3
    x, mu = rng.normal(size=(2, D)) * 0.5
    Sigma = covariance(rng, D)
    parts = C.gaussian_exp_chain(x, mu, Sigma)
    assert parts["dd_dx"].shape == (D, D)
    assert parts["dq_dd"].shape == (1, D)
    assert parts["df_dq"].shape == (1, 1)
    assert parts["df_dx"].shape == (1, D)
    assert_allclose(parts["df_dx"], parts["df_dq"] @ parts["dq_dd"] @ parts["dd_dx"])


@pytest.mark.parametrize("symmetric", [True, False])
def test_gaussian_jacobian_matches_numerics(rng, symmetric):
    D = 4
    x, mu = rng.normal(size=(2, D)) * 0.5
    Sigma = covariance(rng, D)
    if not symmetric:
        K = rng.normal(size=(D, D))
        Sigma = Sigma + (K - K.T)  # add an antisymmetric part: Sigma is no longer symmetric
        assert not np.allclose(Sigma, Sigma.T)
    f = lambda v: C.gaussian_exp(v, mu, Sigma)  # noqa: E731
    J = C.gaussian_exp_jacobian(x, mu, Sigma)
    assert_allclose(J, numerical_jacobian(f, x)[None, :], rtol=1e-6, atol=1e-10)
    assert_allclose(J, autograd_jacobian(f, x)[None, :], rtol=1e-10, atol=1e-14)
    shortcut = C.gaussian_exp_jacobian_symmetric(x, mu, Sigma)
    if symmetric:
        assert_allclose(shortcut, J, rtol=1e-10, atol=1e-14)
    else:
        assert np.abs(shortcut - J).max() > 1e-2 * np.abs(J).max()


def test_gaussian_value():
    # identity covariance: f = exp(-|x - mu|^2 / 2)
    assert C.gaussian_exp([1.0, 2.0], [0.0, 0.0], np.eye(2)) == pytest.approx(np.exp(-2.5))


def test_gaussian_bad_input():
    with pytest.raises(ValueError, match="Sigma must be a square 2 x 2"):
        C.gaussian_exp([0.0, 0.0], [0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="singular"):
        C.gaussian_exp_jacobian([0.0, 1.0], [0.0, 0.0], np.ones((2, 2)))
    with pytest.raises(ValueError, match="same length"):
        C.gaussian_exp([0.0, 0.0], [0.0, 0.0, 0.0], np.eye(2))


# --------------------------------------------------------------------------- trace, tanh layer
def test_trace_outer(rng):
    x = rng.normal(size=5)
    c = 0.7
    assert C.trace_outer(x, c) == pytest.approx(x @ x + 5 * c**2)
    J = C.trace_outer_jacobian(x)
    assert J.shape == (1, 5)
    assert_allclose(J, 2 * x[None, :])
    f = lambda v: C.trace_outer(v, c)  # noqa: E731
    assert_allclose(J, numerical_jacobian(f, x)[None, :], rtol=RTOL, atol=1e-8)
    assert_allclose(J, autograd_jacobian(f, x)[None, :])


def test_tanh_layer_jacobian_and_vjp(rng):
    M, N = 3, 5
    A = rng.normal(size=(M, N))
    b, x, v = rng.normal(size=M), rng.normal(size=N), rng.normal(size=M)
    J = C.tanh_layer_jacobian(x, A, b)
    assert J.shape == (M, N)
    t = np.tanh(A @ x + b)
    assert_allclose(J, np.diag(1 - t**2) @ A)
    f = lambda z: C.tanh_layer(z, A, b)  # noqa: E731
    assert_allclose(J, numerical_jacobian(f, x), rtol=RTOL, atol=ATOL)
    assert_allclose(J, autograd_jacobian(f, x), rtol=1e-12, atol=1e-14)
    assert_allclose(C.tanh_layer_vjp(x, A, b, v), v @ J)
    xt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(C.tanh_layer(xt, torch.tensor(A), torch.tensor(b)), xt, grad_outputs=torch.tensor(v))
    assert_allclose(C.tanh_layer_vjp(x, A, b, v), g.numpy())


def test_tanh_layer_bad_shapes(rng):
    A = rng.normal(size=(3, 5))
    with pytest.raises(ValueError, match="x must have length D = 5"):
        C.tanh_layer_jacobian(np.zeros(3), A, np.zeros(3))
    with pytest.raises(ValueError, match="b must have length M = 3"):
        C.tanh_layer(np.zeros(5), A, np.zeros(5))
    with pytest.raises(ValueError, match="v must have length M = 3"):
        C.tanh_layer_vjp(np.zeros(5), A, np.zeros(3), np.zeros(5))


# --------------------------------------------------------------------------- Linear: backward rules are VJPs
def test_linear_jacobians_and_vjps(rng):
    B, M, N = 4, 3, 5
    X, A = rng.normal(size=(B, N)), rng.normal(size=(M, N))
    b, dY = rng.normal(size=M), rng.normal(size=(B, M))
    dY_dX, dY_dA, dY_db = C.linear_jacobians(X, A)
    assert dY_dX.shape == (B, M, B, N)
    assert dY_dA.shape == (B, M, M, N)
    assert dY_db.shape == (B, M, M)
    assert_allclose(dY_dX, numerical_jacobian(lambda Z: C.linear(Z, A, b), X), rtol=RTOL, atol=ATOL)
    assert_allclose(dY_dA, numerical_jacobian(lambda Z: C.linear(X, Z, b), A), rtol=RTOL, atol=ATOL)
    assert_allclose(dY_db, numerical_jacobian(lambda z: C.linear(X, A, z), b), rtol=RTOL, atol=ATOL)
    tX, tA, tb = autograd_jacobian(C.linear, X, A, b)
    assert_allclose(dY_dX, tX)
    assert_allclose(dY_dA, tA)
    assert_allclose(dY_db, tb)
    dX, dA, db = C.linear_vjp(X, A, dY)
    # contracting dL/dY with the full Jacobians gives chapter 1's three backward formulas
    assert_allclose(dX, np.tensordot(dY, dY_dX, axes=2))
    assert_allclose(dA, np.tensordot(dY, dY_dA, axes=2))
    assert_allclose(db, np.tensordot(dY, dY_db, axes=2))
    assert_allclose(dX, dY @ A)
    assert_allclose(dA, dY.T @ X)
    assert_allclose(db, dY.sum(axis=0))


def test_linear_bad_shapes(rng):
    with pytest.raises(ValueError, match="X must have D = 5 columns"):
        C.linear(np.zeros((4, 3)), np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(ValueError, match=r"Y_bar must have shape \(B, M\) = \(4, 3\)"):
        C.linear_vjp(np.zeros((4, 5)), np.zeros((3, 5)), np.zeros((3, 4)))


# --------------------------------------------------------------------------- input validation
def test_clear_errors_for_bad_vectors():
    with pytest.raises(ValueError, match="x in R\\^2"):
        C.sin_cos_jacobian([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="x must be a 1-D vector"):
        C.outer_jacobian(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        C.trace_outer_jacobian([1.0, np.nan])
    with pytest.raises(ValueError, match="same length"):
        C.dot_jacobian([1.0, 2.0], [1.0])
    with pytest.raises(TypeError, match="numeric array"):
        C.outer_jacobian(["a", "b"])
