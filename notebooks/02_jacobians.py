# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 2: Jacobians and the chain rule
#
# Backpropagation is the chain rule applied to functions whose inputs and outputs are
# vectors, matrices and tensors. This chapter fixes one convention for writing such
# derivatives (numerator layout), computes the Jacobians of a handful of functions that
# appear inside every network (products, quadratic forms, a Gaussian, a `tanh` layer), and
# checks **every closed form against `torch.autograd` and against finite differences**.
# It ends by asking what the chain rule costs: multiplying Jacobians together is far more
# expensive than pushing one row vector through them, and that row vector, the
# *vector-Jacobian product*, is all a backward pass ever computes. We measure the
# difference, and connect it to the three backward formulas of
# [chapter 1.1's `Linear` node](01_1_computational_graph.ipynb).
#
# **Learning objectives.** After this chapter you can
#
# - write the derivative of a function of vectors or matrices in numerator layout and predict
#   its shape before computing it;
# - derive the Jacobians of products, a quadratic form, a Gaussian and a `tanh` layer with the
#   chain rule, and check a closed form against `torch.autograd` and finite differences;
# - tell when a familiar shortcut (such as $-f\,(\mathbf{x}-\boldsymbol{\mu})^\top\Sigma^{-1}$)
#   needs a symmetric matrix;
# - compute a vector-Jacobian product without forming the Jacobian, and recognise
#   [chapter 1.1](01_1_computational_graph.ipynb)'s `Linear` backward formulas as such
#   products;
# - measure what forming a full Jacobian costs against one vector-Jacobian product.
#
# **Prerequisites:** [chapter 1.1](01_1_computational_graph.ipynb) (computational graphs,
# the `Linear` node and its backward pass); matrix products, transposes and inverses;
# partial derivatives.
#
# Symbols follow the book's {ref}`notation`; terms are defined in the {ref}`glossary`.

# %% tags=["remove-cell"]
# Colab setup: install course_utils and what this chapter needs (a no-op elsewhere).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    source = os.environ.get(
        "COURSE_BOOK_SOURCE",
        "git+https://github.com/nn-training-course/nn-training-book@main",
    )
    package = f"course-utils[ch02] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
SEED = 0
N_DIM = 3  # n of the examples in R^n (small, so that the tensors can be printed)
# Jacobian-vs-VJP measurement: widths n of a chain of tanh layers, its depth, and
# best-of repeats.
# A faster machine or a GPU reader may add 1024 and 2048 to TIMING_WIDTHS.
TIMING_WIDTHS = [16, 32, 64, 128, 256, 512]
TIMING_DEPTH = 4
TIMING_REPEATS = 3

# %%
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np
import torch
from numpy.testing import assert_allclose

import course_utils.runtime
from course_utils import calculus
from course_utils.checks import numerical_jacobian, relative_error
from course_utils.plots import COLUMN_WIDTH

torch.set_default_dtype(
    torch.float64
)  # compare with finite differences in double precision
np.set_printoptions(precision=4, suppress=True)
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# ## Conventions: numerator layout
#
# For a function $\mathbf{f}:\mathbb{R}^D\to\mathbb{R}^M$ (with $M$ outputs) the
# derivative at $\mathbf{x}$ is the {term}`Jacobian`, an $M\times D$ matrix with one
# **row per output** and one **column per input**:
#
# $$
# \begin{aligned}
# \frac{\partial \mathbf{f}}{\partial \mathbf{x}} &= J \in \mathbb{R}^{M\times D},\\
# J_{ij} &= \frac{\partial f_i}{\partial x_j}.
# \end{aligned}
# $$ (eq-jac-def)
#
# This is the *numerator layout* (the shape of the numerator $\mathbf{f}$ comes first), the
# convention of {cite}`ch02-deisenroth2020mml`. Two consequences we use all the time:
#
# * The derivative of a **scalar** $f$ with respect to $\mathbf{x}\in\mathbb{R}^D$ is a
#   $1\times D$ **row**. The **gradient** is its transpose, the column
#   $\nabla f = (\partial f/\partial \mathbf{x})^\top\in\mathbb{R}^{D}$, which has the
#   shape of $\mathbf{x}$ and is what an optimizer subtracts from $\mathbf{x}$.
# * The chain rule reads left to right in the order of the composition, and the inner
#   dimensions match: for $\mathbf{f}(\mathbf{x}) = \mathbf{f}_2(\mathbf{f}_1(\mathbf{x}))$
#   with $\mathbf{f}_1:\mathbb{R}^D\to\mathbb{R}^Q$ and
#   $\mathbf{f}_2:\mathbb{R}^Q\to\mathbb{R}^M$,
#
# $$
# \underbrace{\frac{\partial \mathbf{f}}{\partial \mathbf{x}}}_{M\times D}
# = \underbrace{\frac{\partial \mathbf{f}_2}{\partial \mathbf{f}_1}}_{M\times Q}\;
#   \underbrace{\frac{\partial \mathbf{f}_1}{\partial \mathbf{x}}}_{Q\times D}.
# $$ (eq-jac-chain)
#
# When $\mathbf{f}$ or $\mathbf{x}$ is a matrix or a tensor, the Jacobian's shape is the
# shape of $\mathbf{f}$ followed by the shape of $\mathbf{x}$. That is what `course_utils.checks.numerical_jacobian`
# (central differences) and `torch.autograd.functional.jacobian` return, and what every
# `*_jacobian` function of `course_utils.calculus` returns. One difference in code: for a
# scalar-valued function those two return an array of shape `(D,)`, so we reshape it to
# the $1\times D$ row. (Some texts use the transposed *denominator layout*, in which these
# derivatives are columns: check a source's convention before copying a formula from it,
# for example from the Matrix Cookbook {cite}`ch02-petersen2012matrix`.)
#
# The defining example: $\mathbf{f}(\mathbf{x}) = W\mathbf{x}$ has Jacobian $W$ itself,
# $M\times D$, not $W^\top$.

# %%
rng = np.random.default_rng(SEED)


def autograd_jacobian(f, x):
    """torch.autograd.functional.jacobian of f at a numpy point x, returned as numpy."""
    return torch.autograd.functional.jacobian(f, torch.as_tensor(x)).numpy()


W = rng.normal(size=(2, 3))  # M = 2 outputs, D = 3 inputs
x = rng.normal(size=3)
J_fd = numerical_jacobian(lambda v: W @ v, x)
J_ag = autograd_jacobian(lambda v: torch.as_tensor(W) @ v, x)
print(
    "W has shape",
    W.shape,
    "| finite-difference Jacobian",
    J_fd.shape,
    "| autograd Jacobian",
    J_ag.shape,
)
assert_allclose(J_fd, W, rtol=1e-8, atol=1e-10)
assert_allclose(J_ag, W, rtol=1e-12)
print("both equal W: rows are outputs, columns are inputs")

# %% [markdown]
# Every closed form below goes through the same three-way comparison: the formula
# (from `course_utils.calculus`), `torch.autograd`, and central finite differences with
# step $h = 10^{-6}$. The helper checks that the three agree, to a relative error of
# $10^{-10}$ against autograd (rounding alone) and $10^{-7}$ against finite differences
# (the central difference's $O(h^2)$ truncation and $O(10^{-16}/h)$ rounding), and prints
# one line per comparison.

# %%
AUTOGRAD_RTOL, FD_RTOL = 1e-10, 1e-7


def compare(name, closed, autograd, finite_diff):
    """Assert closed form == autograd == finite differences (same shape), and say so."""
    closed, autograd, finite_diff = (
        np.asarray(a, dtype=np.float64) for a in (closed, autograd, finite_diff)
    )
    assert closed.shape == autograd.shape == finite_diff.shape, (
        closed.shape,
        autograd.shape,
        finite_diff.shape,
    )
    assert relative_error(closed, autograd) < AUTOGRAD_RTOL, (
        f"{name}: closed form disagrees with autograd"
    )
    assert relative_error(closed, finite_diff) < FD_RTOL, (
        f"{name}: closed form disagrees with finite differences"
    )
    print(f"{name:<22} shape {str(closed.shape):<12} = autograd = finite differences")


print(
    f"every check: relative error < {AUTOGRAD_RTOL:.0e} against autograd,"
    f" < {FD_RTOL:.0e} against finite differences"
)


# %% [markdown]
# ## Three Jacobians: a scalar, a product, a matrix
#
# The three functions below are exercises of chapter 5 of {cite}`ch02-deisenroth2020mml`.
#
# **A scalar function of two variables.** $f_1(\mathbf{x}) = \sin(x_1)\cos(x_2)$ with
# $\mathbf{x}\in\mathbb{R}^2$ maps $\mathbb{R}^2\to\mathbb{R}$, so
# $\partial f_1/\partial \mathbf{x}$ is $1\times 2$:
#
# $$
# \frac{\partial f_1}{\partial \mathbf{x}} =
# \begin{bmatrix} \cos x_1\cos x_2 & -\sin x_1\sin x_2 \end{bmatrix}.
# $$ (eq-jac-f1)
#
# **A dot product.** $f_2(\mathbf{x}, \mathbf{y}) = \mathbf{x}^\top \mathbf{y}
# = \sum_i x_i y_i$ with $\mathbf{x}, \mathbf{y}\in\mathbb{R}^n$. Since
# $\partial f_2/\partial x_j = y_j$,
#
# $$
# \frac{\partial f_2}{\partial \mathbf{x}} = \mathbf{y}^\top, \qquad
# \frac{\partial f_2}{\partial \mathbf{y}} = \mathbf{x}^\top,
# $$ (eq-jac-f2)
#
# both $1\times n$, and with respect to the stacked input
# $(\mathbf{x}, \mathbf{y})\in\mathbb{R}^{2n}$ the Jacobian is the $1\times 2n$ row
# $[\,\mathbf{y}^\top\; \mathbf{x}^\top\,]$.
#
# **An outer product.** $f_3(\mathbf{x}) = \mathbf{x}\mathbf{x}^\top$ maps
# $\mathbb{R}^n\to\mathbb{R}^{n\times n}$. Its Jacobian has one entry per (output entry,
# input entry) pair, so it is an $n\times n\times n$ **third-order tensor**. From
# $(\mathbf{x}\mathbf{x}^\top)_{ij} = x_i x_j$ and the product rule,
#
# $$
# \frac{\partial (\mathbf{x}\mathbf{x}^\top)_{ij}}{\partial x_k}
# = \delta_{ik}\,x_j + x_i\,\delta_{jk},
# $$ (eq-jac-f3)
#
# where $\delta_{ik}$ is 1 when $i = k$ and 0 otherwise. Fixing $k$ gives one $n\times n$
# slice, $\mathbf{e}_k \mathbf{x}^\top + \mathbf{x} \mathbf{e}_k^\top$ (with $\mathbf{e}_k$
# the $k$-th unit vector): row $k$ and column $k$ filled with $\mathbf{x}$, and $2x_k$ where
# they cross.

# %%
x = rng.normal(size=2)
compare(
    "f1 = sin(x1)cos(x2)",
    calculus.sin_cos_jacobian(x),
    autograd_jacobian(calculus.sin_cos, x)[None, :],
    numerical_jacobian(calculus.sin_cos, x)[None, :],
)

x, y = rng.normal(size=(2, N_DIM))
J_x, J_y = calculus.dot_jacobian(x, y)
assert_allclose(J_x, y[None, :])
assert_allclose(J_y, x[None, :])
compare(
    "f2 = x^T y, d/dx",
    J_x,
    autograd_jacobian(lambda v: calculus.dot(v, y), x)[None, :],
    numerical_jacobian(lambda v: calculus.dot(v, y), x)[None, :],
)
compare(
    "f2 = x^T y, d/dy",
    J_y,
    autograd_jacobian(lambda v: calculus.dot(x, v), y)[None, :],
    numerical_jacobian(lambda v: calculus.dot(x, v), y)[None, :],
)
xy = np.concatenate([x, y])
f2_stacked = lambda v: calculus.dot(v[:N_DIM], v[N_DIM:])  # noqa: E731
compare(
    "f2, d/d(x, y)",
    np.hstack([J_x, J_y]),
    autograd_jacobian(f2_stacked, xy)[None, :],
    numerical_jacobian(f2_stacked, xy)[None, :],
)

x = rng.normal(size=N_DIM)
compare(
    "f3 = x x^T",
    calculus.outer_jacobian(x),
    autograd_jacobian(calculus.outer, x),
    numerical_jacobian(calculus.outer, x),
)

# %% [markdown]
# All three closed forms agree with both references, and the shapes are the ones the
# conventions predict: $1\times 2$, $1\times n$ (twice), $1\times 2n$, and
# $n\times n\times n$ for $\mathbf{x}\mathbf{x}^\top$ (here $n = 3$). To see the tensor,
# take $\mathbf{x} = (1, 2, 3)$ and print its three slices
# $\partial(\mathbf{x}\mathbf{x}^\top)/\partial x_k$:

# %%
x = np.array([1.0, 2.0, 3.0])
J3 = calculus.outer_jacobian(x)
for k in range(3):
    print(f"d(x x^T)/dx_{k + 1} =\n{J3[:, :, k]}")
    e_k = np.eye(3)[k]
    assert_allclose(J3[:, :, k], np.outer(e_k, x) + np.outer(x, e_k))

# %% [markdown]
# Slice $k$ has $\mathbf{x}^\top = (1, 2, 3)$ in row $k$, $\mathbf{x}$ in column $k$, $2x_k$
# on the diagonal where they cross, and zeros elsewhere: most of the $n^3$ entries are
# zero. We meet
# that sparsity again in {ref}`sec-ch02-backprop`, where we ask why backpropagation never
# builds such tensors.
#
# ## The chain rule, one dimension at a time
#
# Consider
#
# $$
# \begin{aligned}
# f(q) &= \exp\!\left(-\tfrac{1}{2} q\right),\\
# q &= \mathbf{d}^\top \Sigma^{-1} \mathbf{d},\\
# \mathbf{d} &= \mathbf{x} - \boldsymbol{\mu},
# \end{aligned}
# $$ (eq-jac-gauss)
#
# with $\mathbf{x}, \boldsymbol{\mu}\in\mathbb{R}^D$ and an invertible
# $\Sigma\in\mathbb{R}^{D\times D}$. When $\Sigma$ is a covariance matrix, $f$ is an
# unnormalised Gaussian density. The chain rule {eq}`eq-jac-chain` multiplies three
# Jacobians, one per step:
#
# | step | Jacobian | shape |
# |---|---|---|
# | $\mathbf{d} = \mathbf{x} - \boldsymbol{\mu}$ | $I$ | $D\times D$ |
# | $q = \mathbf{d}^\top \Sigma^{-1} \mathbf{d}$ | $\mathbf{d}^\top (\Sigma^{-1} + \Sigma^{-\top})$ | $1\times D$ |
# | $f = \exp(-q/2)$ | $-\tfrac12 \exp(-q/2) = -\tfrac12 f$ | $1\times 1$ |
#
# The middle row is the only one that needs care. Writing $P = \Sigma^{-1}$,
# $q = \sum_{i,j} d_i P_{ij} d_j$, and $d_k$ appears once as the left factor and once as
# the right one: $\partial q/\partial d_k = \sum_j P_{kj}d_j + \sum_i d_i P_{ik}$, that is
# $(P\mathbf{d})_k + (P^\top \mathbf{d})_k$. As a row,
# $\mathbf{d}^\top P^\top + \mathbf{d}^\top P$. Multiplying the three factors,
# $(1\times 1)(1\times D)(D\times D) = 1\times D$:
#
# $$
# \begin{aligned}
# \frac{\partial f}{\partial \mathbf{x}}
# &= -\tfrac12\, f\,\mathbf{d}^\top \left(\Sigma^{-1} + \Sigma^{-\top}\right),\\
# \mathbf{d} &= \mathbf{x}-\boldsymbol{\mu}.
# \end{aligned}
# $$ (eq-jac-gauss-grad)
#
# Only when $\Sigma$ is symmetric (every covariance matrix is) does
# $\Sigma^{-\top} = \Sigma^{-1}$, and the formula shortens to
# $-f\,(\mathbf{x}-\boldsymbol{\mu})^\top \Sigma^{-1}$. First the factors and their
# shapes:

# %%
D = 4
mu = rng.normal(size=D)
x = mu + 0.3 * rng.normal(size=D)  # near the mean, so f is not vanishingly small
L_factor = rng.normal(size=(D, D))
# a covariance matrix: symmetric positive definite
Sigma_cov = L_factor @ L_factor.T / D + 0.5 * np.eye(D)
# the same plus an antisymmetric part: invertible, not symmetric
K = rng.normal(size=(D, D))
Sigma_nonsym = Sigma_cov + 0.5 * (K - K.T)
assert_allclose(Sigma_cov, Sigma_cov.T)
assert not np.allclose(Sigma_nonsym, Sigma_nonsym.T)

parts = calculus.gaussian_exp_chain(x, mu, Sigma_cov)
for key in ["dd_dx", "dq_dd", "df_dq", "df_dx"]:
    print(f"{key}: shape {parts[key].shape}")
assert_allclose(parts["df_dx"], parts["df_dq"] @ parts["dq_dd"] @ parts["dd_dx"])
print(f"f(x) = {calculus.gaussian_exp(x, mu, Sigma_cov):.4f} for the covariance matrix")

# %% [markdown]
# The shapes are those of the table. Now the full formula {eq}`eq-jac-gauss-grad` and the
# symmetric shortcut, each against `torch.autograd` and finite differences, for the
# covariance matrix and for a non-symmetric $\Sigma$:

# %%
for label, Sigma in [("covariance", Sigma_cov), ("non-symmetric", Sigma_nonsym)]:
    f = lambda v, Sigma=Sigma: calculus.gaussian_exp(v, mu, Sigma)  # noqa: E731
    J_ag = autograd_jacobian(f, x)[None, :]
    J_fd = numerical_jacobian(f, x)[None, :]
    J = calculus.gaussian_exp_jacobian(x, mu, Sigma)
    compare(f"f, {label} Sigma", J, J_ag, J_fd)
    shortcut = calculus.gaussian_exp_jacobian_symmetric(x, mu, Sigma)
    err = relative_error(shortcut, J_fd)
    assert err < 1e-7 if label == "covariance" else err > 0.1
    shown = f"{err:.2f}" if err > 1e-3 else "< 1e-7"
    print(f"    shortcut -f (x - mu)^T Sigma^-1: relative error {shown}")

# %% [markdown]
# The full formula matches both references for both matrices. The shortcut matches for the
# covariance matrix and is off by a relative error of order one for the non-symmetric
# $\Sigma$: it keeps only one of the two terms of $\partial q/\partial \mathbf{d}$. Note
# that $q$ only "sees" the symmetric part of $\Sigma^{-1}$ (the antisymmetric part cancels
# in $\mathbf{d}^\top P \mathbf{d}$), and $\tfrac12(\Sigma^{-1}+\Sigma^{-\top})$ in
# {eq}`eq-jac-gauss-grad` is exactly that symmetric part.
#
# ## A trace
#
# $f(\mathbf{x}) = \operatorname{tr}(\mathbf{x}\mathbf{x}^\top + c^2 I)$ for
# $\mathbf{x}\in\mathbb{R}^n$ and a constant $c$. The trace of $\mathbf{x}\mathbf{x}^\top$
# is $\sum_i x_i^2$ and the trace of $c^2 I$ is $nc^2$, so
#
# $$
# f(\mathbf{x}) = \mathbf{x}^\top \mathbf{x} + nc^2, \qquad
# \frac{\partial f}{\partial \mathbf{x}} = 2\mathbf{x}^\top \in\mathbb{R}^{1\times n}.
# $$ (eq-jac-trace)
#
# The same result follows from the chain rule through the tensor {eq}`eq-jac-f3`: the trace
# sums the diagonal entries, so
#
# $$
# \begin{aligned}
# \frac{\partial f}{\partial x_k}
# &= \sum_i \frac{\partial(\mathbf{x}\mathbf{x}^\top)_{ii}}{\partial x_k}\\
# &= \sum_i (\delta_{ik}x_i + x_i\delta_{ik}) = 2x_k .
# \end{aligned}
# $$
#
# With $\mathbf{x} = (1, 2, 3)$ and $c = 0.5$ (`calculus.trace_outer(x, c)` takes the
# constant as its second argument):

# %%
x, c = np.array([1.0, 2.0, 3.0]), 0.5
value = calculus.trace_outer(x, c)
print(f"f(x) = {value:.4f}  (x^T x + n c^2 = {x @ x:.0f} + {x.size * c**2:.2f})")
assert value == x @ x + x.size * c**2
J = calculus.trace_outer_jacobian(x)
print("df/dx =", J, "= 2 x^T")
f = lambda v: calculus.trace_outer(v, c)  # noqa: E731
J_ag, J_fd = autograd_jacobian(f, x)[None, :], numerical_jacobian(f, x)[None, :]
compare("tr(x x^T + c^2 I)", J, J_ag, J_fd)
# the trace of the tensor's slices gives the same row
assert_allclose(np.einsum("iik->k", calculus.outer_jacobian(x))[None, :], J)

# %% [markdown]
# ## A `tanh` layer
#
# $\mathbf{f} = \tanh(\mathbf{z})$ with $\mathbf{z} = W\mathbf{x} + \mathbf{b}$,
# $W\in\mathbb{R}^{M\times D}$, $\mathbf{x}\in\mathbb{R}^D$, $\mathbf{b}\in\mathbb{R}^M$.
# The chain rule has two factors. $\tanh$ acts elementwise, so output $i$ depends only on
# $z_i$ and its $M\times M$ Jacobian is **diagonal**, with
# $\tanh'(z_i) = 1 - \tanh^2(z_i)$; the affine map has Jacobian $W$ ($M\times D$):
#
# $$
# \frac{\partial \mathbf{f}}{\partial \mathbf{x}}
# = \underbrace{\operatorname{diag}\!\left(1 - \tanh^2(\mathbf{z})\right)}_{M\times M}\;
#   \underbrace{W}_{M\times D}.
# $$ (eq-jac-tanh)
#
# Multiplying by a diagonal matrix scales the rows of $W$; the code never builds the
# $M\times M$ matrix.

# %%
M, D = 3, 5
W, b, x = rng.normal(size=(M, D)), rng.normal(size=M), rng.normal(size=D)
J = calculus.tanh_layer_jacobian(x, W, b)
t = np.tanh(W @ x + b)
assert_allclose(J, np.diag(1 - t**2) @ W)  # the row scaling is diag(...) @ W
f = lambda v: calculus.tanh_layer(v, W, b)  # noqa: E731
compare("tanh(Wx + b)", J, autograd_jacobian(f, x), numerical_jacobian(f, x))
print(f"the Jacobian has shape {J.shape}: M x D with M = {M}, D = {D}")

# %% [markdown]
# The Jacobian is $3\times 5$, $M\times D$, as {eq}`eq-jac-tanh` says.
#
# (sec-ch02-backprop)=
# ## From Jacobians to backpropagation
#
# A network is a composition
# $\mathbf{h}_d = \mathbf{f}_d(\cdots \mathbf{f}_2(\mathbf{f}_1(\mathbf{x})))$ of $d$
# layers followed by a scalar loss $\mathcal{L}(\mathbf{h}_d)$. With every layer $n$ wide,
# the chain rule reads
#
# $$
# \frac{\partial \mathcal{L}}{\partial \mathbf{x}}
# = \frac{\partial \mathcal{L}}{\partial \mathbf{h}_d}\;
#   J_d\, J_{d-1}\cdots J_1,
# $$ (eq-jac-backprop)
#
# where $J_k = \partial \mathbf{h}_k/\partial \mathbf{h}_{k-1}$ is layer $k$'s $n\times n$
# Jacobian, $\mathbf{h}_0 = \mathbf{x}$, and the two gradients are $1\times n$ rows. Matrix multiplication is associative, so we may choose the
# brackets. From the right, $J_d(\cdots(J_2 J_1))$ multiplies $n\times n$ matrices:
# $O(n^3)$ work and an $n\times n$ intermediate per layer. From the left, every step
# multiplies a **row vector** by a Jacobian:
#
# $$
# \begin{aligned}
# \bar{\mathbf{g}}_d &= \frac{\partial \mathcal{L}}{\partial \mathbf{h}_d}, \qquad
# \bar{\mathbf{g}}_{k-1} = \bar{\mathbf{g}}_k\, J_k \quad (k = d, \dots, 1),\\
# \frac{\partial \mathcal{L}}{\partial \mathbf{x}} &= \bar{\mathbf{g}}_0.
# \end{aligned}
# $$ (eq-jac-vjp)
#
# Each step is a **vector-Jacobian product** ({term}`VJP`): $O(n^2)$ work, and a result the
# size of the layer's input. This is reverse-mode automatic differentiation
# {cite}`ch02-griewank2008evaluating,ch02-baydin2018autodiff`, the backward pass of
# backpropagation {cite}`ch02-rumelhart1986backprop`. Better still, a VJP rarely needs the
# Jacobian at all. For the `tanh` layer, with $\mathbf{t} = \tanh(W\mathbf{x} + \mathbf{b})$
# and an upstream row $\bar{\mathbf{g}}$,
#
# $$
# \begin{aligned}
# &\bar{\mathbf{g}}\,\operatorname{diag}(1 - \mathbf{t}^2)\,W\\
# &\quad= \left(\bar{\mathbf{g}} \odot (1 - \mathbf{t}^2)\right) W ,
# \end{aligned}
# $$ (eq-jac-tanh-vjp)
#
# an elementwise product and one vector-matrix product: the $M\times D$ Jacobian is never
# formed. `torch.autograd.grad(outputs, inputs, grad_outputs=g_bar)` computes exactly
# $\bar{\mathbf{g}} J$, and `torch.autograd.functional.vjp` exposes the same operation as
# a function:

# %%
g_bar = rng.normal(size=M)  # an upstream gradient dL/df, one entry per output
vjp_closed = calculus.tanh_layer_vjp(x, W, b, g_bar)
x_t, g_bar_t = torch.tensor(x, requires_grad=True), torch.tensor(g_bar)
(vjp_grad,) = torch.autograd.grad(
    calculus.tanh_layer(x_t, W, b), x_t, grad_outputs=g_bar_t
)
f = lambda v: calculus.tanh_layer(v, W, b)  # noqa: E731
_, vjp_func = torch.autograd.functional.vjp(f, torch.tensor(x), g_bar_t)
# (g_bar * (1 - t^2)) W = g_bar diag(1 - t^2) W
assert_allclose(vjp_closed, g_bar @ calculus.tanh_layer_jacobian(x, W, b))
assert_allclose(vjp_closed, vjp_grad.numpy(), rtol=1e-12)
assert_allclose(vjp_closed, vjp_func.numpy(), rtol=1e-12)
print(f"g_bar has shape {g_bar.shape} (like f), the VJP {vjp_closed.shape} (like x)")
print("(g_bar * (1 - t^2)) @ W  ==  g_bar @ J")
print("                         ==  torch.autograd.grad(..., grad_outputs=g_bar)")
print("                         ==  torch.autograd.functional.vjp")

# %% [markdown]
# Conversely, a full Jacobian costs one VJP **per output**: row $i$ of $J$ is
# $\mathbf{e}_i^\top J$. That is what `torch.autograd.functional.jacobian` does by default,
# one backward pass per row. For a scalar loss there is a single row, and one backward pass
# gives the whole gradient, however many inputs there are.
#
# (sec-ch02-linear-vjp)=
# ### Chapter 1.1's `Linear` backward formulas are VJPs
#
# [Chapter 1.1](01_1_computational_graph.ipynb)'s `Linear` node computes
# $Y = XW^\top + \mathbf{1}\mathbf{b}^\top$ for a batch $X\in\mathbb{R}^{B\times D}$ (samples
# are rows) and $W\in\mathbb{R}^{M\times D}$, and its backward pass turns the upstream
# $\bar Y = \partial \mathcal{L}/\partial Y\in\mathbb{R}^{B\times M}$ into
#
# $$
# \begin{aligned}
# \frac{\partial \mathcal{L}}{\partial X} &= \bar Y W, \\
# \frac{\partial \mathcal{L}}{\partial W} &= \bar Y^\top X,\\
# \frac{\partial \mathcal{L}}{\partial \mathbf{b}} &= \sum_{p=1}^{B} \bar Y_{p,:}.
# \end{aligned}
# $$ (eq-jac-linear-vjp)
#
# The full Jacobians are tensors: $\partial Y/\partial X$ is $B\times M\times B\times D$ with
# entries $\delta_{pq}W_{ij}$, $\partial Y/\partial W$ is $B\times M\times M\times D$ with
# entries $\delta_{ik}X_{pj}$, and $\partial Y/\partial \mathbf{b}$ is $B\times M\times M$ with
# entries $\delta_{ik}$. Contracting $\bar Y$ with each of them over the two indices of $Y$
# (the VJP, written out) gives the three formulas {eq}`eq-jac-linear-vjp`:

# %%
B, M, D = 4, 3, 5
X, W, b = rng.normal(size=(B, D)), rng.normal(size=(M, D)), rng.normal(size=M)
Y_bar = rng.normal(size=(B, M))  # upstream dL/dY
jacobians = calculus.linear_jacobians(X, W)
references = [
    autograd_jacobian(lambda Z: calculus.linear(Z, W, b), X),
    autograd_jacobian(lambda Z: calculus.linear(X, Z, b), W),
    autograd_jacobian(lambda z: calculus.linear(X, W, z), b),
]
finite_diffs = [
    numerical_jacobian(lambda Z: calculus.linear(Z, W, b), X),
    numerical_jacobian(lambda Z: calculus.linear(X, Z, b), W),
    numerical_jacobian(lambda z: calculus.linear(X, W, z), b),
]
vjps = calculus.linear_vjp(X, W, Y_bar)  # Y_bar @ W, Y_bar.T @ X, Y_bar.sum(axis=0)

# torch's own backward pass of the same layer, seeded with Y_bar
X_t, W_t, b_t = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
calculus.linear(X_t, W_t, b_t).backward(torch.tensor(Y_bar))
torch_grads = [X_t.grad.numpy(), W_t.grad.numpy(), b_t.grad.numpy()]

print(f"{'':8}{'Jacobian shape':>16}{'entries':>9}{'nonzero':>9}", end="")
print(f"   {'VJP shape':>10}{'entries':>8}")
for name, J, J_ag, J_fd, g, g_torch in zip(
    ["dY/dX", "dY/dW", "dY/db"], jacobians, references, finite_diffs, vjps, torch_grads
):
    agrees = (relative_error(J, J_ag) < AUTOGRAD_RTOL) and (
        relative_error(J, J_fd) < FD_RTOL
    )
    assert agrees, (
        f"{name}: closed-form Jacobian disagrees with autograd or finite differences"
    )
    assert_allclose(
        np.tensordot(Y_bar, J, axes=2), g
    )  # contracting dL/dY with the Jacobian = the VJP formula
    assert_allclose(g, g_torch, rtol=1e-12)  # = torch's backward pass
    nonzero = np.count_nonzero(J) / J.size
    print(f"{name:8}{str(J.shape):>16}{J.size:>9}{nonzero:>9.1%}", end="")
    print(f"   {str(g.shape):>10}{g.size:>8}")

# %% [markdown]
# Each full Jacobian agrees with `torch.autograd` and finite differences; contracting
# $\bar Y$ with it gives exactly [chapter 1.1](01_1_computational_graph.ipynb)'s formula,
# which equals PyTorch's backward pass.
# The Jacobians are mostly zeros (25 % of $\partial Y/\partial X$ is nonzero here, $1/B$
# in general; $1/M$ of the other two), and they are much larger than the gradients they
# produce. At a realistic size the difference is not a matter of taste. For a first layer
# on $28\times 28$ images, $D = 784$ inputs, $M = 256$ outputs and a batch of $B = 64$:


# %%
def fmt_bytes(nbytes):
    """A byte count with a binary unit and 3 significant digits."""
    for unit in ["B", "KiB", "MiB", "GiB", "TiB"]:
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024


B, M, D = 64, 256, 784
entries = {"dY/dX": B * M * B * D, "dY/dW": B * M * M * D, "dY/db": B * M * M}
gradient_entries = {"dY/dX": B * D, "dY/dW": M * D, "dY/db": M}
print("float32 (4 bytes per entry)")
for name, n_jac in entries.items():
    n_vjp = gradient_entries[name]
    print(
        f"{name}: full Jacobian {n_jac:.3g} entries = {fmt_bytes(4 * n_jac):>9};"
        f"  VJP {n_vjp:>6} entries = {fmt_bytes(4 * n_vjp):>9}"
    )

# %% [markdown]
# Storing $\partial Y/\partial W$ for this one layer would take 12.2 GiB, and
# $\partial Y/\partial X$ another 3 GiB; the VJPs are a 784 KiB and a 196 KiB matrix, each
# computed by one matrix product.
#
# (sec-ch02-measuring)=
# ### Measuring it: full Jacobian against one VJP
#
# We differentiate a chain of `TIMING_DEPTH` $= d$ `tanh` layers of width $n$,
# $\mathbf{h}_k = \tanh(W_k \mathbf{h}_{k-1} + \mathbf{b}_k)$, followed by the loss
# $\mathcal{L} = \mathbf{u}^\top \mathbf{h}_d$ for a fixed vector $\mathbf{u}$, in four
# ways. All four return the same gradient $\partial \mathcal{L}/\partial \mathbf{x}$, at
# very different cost:
#
# 1. **full Jacobian, autograd**: `torch.autograd.functional.jacobian` ($n$ backward passes,
#    one per row), then $\mathbf{u}^\top J$;
# 2. **full Jacobian, closed form**: the product $J_d\cdots J_1$ of the layer Jacobians
#    {eq}`eq-jac-tanh` in NumPy, right to left (matrix-matrix products), then
#    $\mathbf{u}^\top J$;
# 3. **one VJP, autograd**: `torch.autograd.grad(h_d, x, grad_outputs=u)`, a single backward
#    pass;
# 4. **one VJP, closed form**: {eq}`eq-jac-vjp` with {eq}`eq-jac-tanh-vjp` in NumPy, left to
#    right.


# %%
def make_chain(n, depth, rng):
    Ws = [rng.normal(scale=1 / np.sqrt(n), size=(n, n)) for _ in range(depth)]
    bs = [rng.normal(scale=0.1, size=n) for _ in range(depth)]
    return Ws, bs


def chain_torch(x, Ws, bs):
    h = x
    for W, b in zip(Ws, bs):
        h = torch.tanh(W @ h + b)
    return h


def full_jacobian_autograd(x, u, Ws, bs):
    # n x n: n backward passes, one per row
    J = torch.autograd.functional.jacobian(lambda z: chain_torch(z, Ws, bs), x)
    return u @ J, J


def one_vjp_autograd(x, u, Ws, bs):
    x = x.detach().requires_grad_(True)
    # a single backward pass
    (g,) = torch.autograd.grad(chain_torch(x, Ws, bs), x, grad_outputs=u)
    return g


# %%
def full_jacobian_numpy(x, u, Ws, bs):
    h, J = x, None
    for W, b in zip(Ws, bs):
        h = np.tanh(W @ h + b)
        J_k = (1 - h**2)[:, None] * W  # diag(1 - h^2) W, n x n
        J = J_k if J is None else J_k @ J  # n x n times n x n: O(n^3)
    return u @ J


def one_vjp_numpy(x, u, Ws, bs):
    hs = [x]
    for W, b in zip(Ws, bs):  # forward pass, keeping the activations
        hs.append(np.tanh(W @ hs[-1] + b))
    g = u
    for W, h in zip(reversed(Ws), reversed(hs[1:])):  # backward: one O(n^2) VJP a layer
        g = (g * (1 - h**2)) @ W
    return g


# %% [markdown]
# On a single layer the two closed forms are `calculus.tanh_layer_vjp` and
# `calculus.tanh_layer_jacobian`, and on a whole chain all four routes return the same
# gradient:

# %%
Ws, bs = make_chain(8, 1, rng)
x8, u8 = rng.normal(size=(2, 8))
assert_allclose(
    one_vjp_numpy(x8, u8, Ws, bs), calculus.tanh_layer_vjp(x8, Ws[0], bs[0], u8)
)
assert_allclose(
    full_jacobian_numpy(x8, u8, Ws, bs),
    u8 @ calculus.tanh_layer_jacobian(x8, Ws[0], bs[0]),
)
Ws, bs = make_chain(16, TIMING_DEPTH, rng)
x16, u16 = rng.normal(size=(2, 16))
Ws_t, bs_t = [torch.tensor(W) for W in Ws], [torch.tensor(b) for b in bs]
x16_t, u16_t = torch.tensor(x16), torch.tensor(u16)
reference = one_vjp_autograd(x16_t, u16_t, Ws_t, bs_t).numpy()
for route, g in [
    ("full Jacobian, autograd", full_jacobian_autograd(x16_t, u16_t, Ws_t, bs_t)[0]),
    ("full Jacobian, closed form", full_jacobian_numpy(x16, u16, Ws, bs)),
    ("one VJP, closed form", one_vjp_numpy(x16, u16, Ws, bs)),
]:
    assert_allclose(np.asarray(g), reference, rtol=1e-9, atol=1e-12)
    print(f"{route:<27} = one VJP, autograd (n = 16, {TIMING_DEPTH} layers)")

# %% [markdown]
# Time is the best of `TIMING_REPEATS` runs, in CPU time of the process (which other
# programs on the machine disturb less than the wall-clock time). Memory is measured for the NumPy versions as
# the peak of the memory they allocate (`tracemalloc`, which tracks NumPy's arrays); for the
# PyTorch versions we report the size of the result (an $n\times n$ Jacobian against an
# $n$-vector), which is deterministic. The helpers that time and measure a call:


# %%
def best_time(fn, repeats=TIMING_REPEATS):
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure_routes(n):
    """Times and memory of the four routes on a chain of width n."""
    Ws, bs = make_chain(n, TIMING_DEPTH, rng)
    x, u = rng.normal(size=(2, n))
    Ws_t, bs_t = [torch.tensor(W) for W in Ws], [torch.tensor(b) for b in bs]
    x_t, u_t = torch.tensor(x), torch.tensor(u)
    J_t = full_jacobian_autograd(x_t, u_t, Ws_t, bs_t)[1]
    g_t = one_vjp_autograd(x_t, u_t, Ws_t, bs_t)
    return {
        "n": n,
        "time_jac_autograd": best_time(
            lambda: full_jacobian_autograd(x_t, u_t, Ws_t, bs_t)
        ),
        "time_jac_numpy": best_time(lambda: full_jacobian_numpy(x, u, Ws, bs)),
        "time_vjp_autograd": best_time(lambda: one_vjp_autograd(x_t, u_t, Ws_t, bs_t)),
        "time_vjp_numpy": best_time(lambda: one_vjp_numpy(x, u, Ws, bs)),
        "mem_jac_numpy": peak_bytes(lambda: full_jacobian_numpy(x, u, Ws, bs)),
        "mem_vjp_numpy": peak_bytes(lambda: one_vjp_numpy(x, u, Ws, bs)),
        "size_jac_autograd": J_t.element_size() * J_t.nelement(),
        "size_vjp_autograd": g_t.element_size() * g_t.nelement(),
    }


# %% [markdown]
# The measurement, one row per width:

# %% tags=["nbval-ignore-output"] ignore_reason="wall-clock times and tracemalloc peaks vary by machine and by run"
rows = [measure_routes(n) for n in TIMING_WIDTHS]
print(
    f"{'n':>5} | {'time (ms): full Jacobian':>26} | {'time (ms): one VJP':>26} |"
    f" {'peak memory, NumPy':>22}"
)
print(
    f"{'':>5} | {'autograd':>12}{'closed form':>14} |"
    f" {'autograd':>12}{'closed form':>14} | {'Jacobian':>11}{'VJP':>11}"
)
for r in rows:
    print(
        f"{r['n']:>5} | {1e3 * r['time_jac_autograd']:>12.3f}"
        f"{1e3 * r['time_jac_numpy']:>14.3f} | "
        f"{1e3 * r['time_vjp_autograd']:>12.3f}{1e3 * r['time_vjp_numpy']:>14.3f} | "
        f"{fmt_bytes(r['mem_jac_numpy']):>11}{fmt_bytes(r['mem_vjp_numpy']):>11}"
    )

# %% [markdown]
# The same numbers as a figure, on log-log axes (both quantities span several decades); the
# code only lays out the two panels:

# %% tags=["hide-input"]
ns = np.array([r["n"] for r in rows])
col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
fig, (ax_t, ax_m) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 7.5), sharex=True)
for key, style, colour, label in [
    ("time_jac_autograd", "o-", "C3", "full Jacobian, autograd"),
    ("time_jac_numpy", "s--", "C1", "full Jacobian, closed form"),
    ("time_vjp_autograd", "o-", "C0", "one VJP, autograd"),
    ("time_vjp_numpy", "s--", "C2", "one VJP, closed form"),
]:
    ax_t.loglog(ns, col[key], style, color=colour, label=label)
ax_t.set(
    ylabel="time per gradient (s)",
    title=f"Gradient of a {TIMING_DEPTH}-layer tanh chain: time",
)
for key, style, colour, label in [
    ("mem_jac_numpy", "s--", "C1", "full Jacobian, closed form (peak, measured)"),
    ("mem_vjp_numpy", "s--", "C2", "one VJP, closed form (peak, measured)"),
    ("size_jac_autograd", "o-", "C3", "autograd Jacobian result (n x n)"),
    ("size_vjp_autograd", "o-", "C0", "autograd VJP result (n)"),
]:
    ax_m.loglog(ns, col[key], style, color=colour, label=label)
ax_m.set(
    xlabel="layer width n", ylabel="memory (bytes)", title="Memory beyond the weights"
)
for ax in (ax_t, ax_m):
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Read from the table and the figure; the times themselves differ from machine to machine
# and from run to run, the pattern below does not:
#
# * **Time.** At the largest width the full Jacobian costs many times one VJP, in both
#   implementations, and the gap widens as $n$ grows: the Jacobian curves are steeper, as the
#   $O(n^3)$ against $O(n^2)$ count predicts (the measured slopes wander, because memory
#   traffic and other work on the machine add to the arithmetic). The autograd Jacobian is
#   the slowest route, because each of its $n$ rows is a complete backward pass. At the
#   smallest widths the VJP curves are nearly flat: fixed per-call overheads, not
#   arithmetic, dominate them.
# * **Memory.** The Jacobian route holds $n\times n$ matrices, a few times $8n^2$ bytes,
#   while the VJP route holds a few vectors of $8n$ bytes (plus the activations, which any
#   backward pass keeps); the measured peaks grow with slopes close to 2 and 1 on the
#   log-log plot.

# %% tags=["remove-input"]
ratio_ag = col["time_jac_autograd"] / col["time_vjp_autograd"]
ratio_np = col["time_jac_numpy"] / col["time_vjp_numpy"]
assert ratio_ag[-1] > 5 and ratio_np[-1] > 5, (ratio_ag, ratio_np)
assert ratio_ag[-1] > ratio_ag[0] and ratio_np[-1] > ratio_np[0], (ratio_ag, ratio_np)
assert col["time_jac_autograd"][-1] == max(
    col[k][-1] for k in col if k.startswith("time_")
)
assert col["mem_jac_numpy"][-1] > 50 * col["mem_vjp_numpy"][-1]
slopes = {
    k: np.polyfit(np.log(ns[-3:]), np.log(col[k][-3:]), 1)[0]
    for k in ("mem_jac_numpy", "mem_vjp_numpy")
}
assert 1.8 < slopes["mem_jac_numpy"] < 2.2 and 0.8 < slopes["mem_vjp_numpy"] < 1.2, (
    slopes
)
print(
    f"Checked: at n = {ns[-1]} a full Jacobian takes more than 5 times as long as one"
    " VJP in both implementations, the ratio grows with n, the autograd Jacobian is the"
    " slowest route, and the peak memory of the Jacobian route grows like n^2 (slope"
    " within 0.2 of 2) and is over 50 times the VJP route's, which grows like n."
)

# %% [markdown]
# This is why a backward pass never forms a full Jacobian: the loss is a scalar, so the
# chain {eq}`eq-jac-backprop` starts with a single row, and carrying that row from the loss
# back to the inputs, one VJP per node, is the cheapest way through it. Each node of a
# reverse-mode engine, [chapter 1.1](01_1_computational_graph.ipynb)'s `Linear` included,
# needs only a rule that maps the gradient of its output to the gradients of its inputs,
# using the structure of its Jacobian (diagonal for elementwise functions, a matrix product
# for `Linear`) instead of storing it. PyTorch's autograd is built the same way {cite}`ch02-paszke2019pytorch`.
#
# ## Summary
#
# * **Numerator layout**: $\partial \mathbf{f}/\partial \mathbf{x}$ has the shape of
#   $\mathbf{f}$ followed by the shape of $\mathbf{x}$. For a scalar $f$ and
#   $\mathbf{x}\in\mathbb{R}^D$ it is a $1\times D$ row; the gradient is its transpose. In
#   this layout the chain rule multiplies Jacobians in the order of the composition, and the
#   inner dimensions match.
# * $\partial(\sin x_1\cos x_2)/\partial \mathbf{x}$ is $1\times 2$;
#   $\partial(\mathbf{x}^\top \mathbf{y})/\partial \mathbf{x} = \mathbf{y}^\top$ is
#   $1\times n$; $\partial(\mathbf{x}\mathbf{x}^\top)/\partial \mathbf{x}$ is an
#   $n\times n\times n$ tensor with entries $\delta_{ik}x_j + x_i\delta_{jk}$.
# * For $f = \exp(-\tfrac12 \mathbf{d}^\top \Sigma^{-1}\mathbf{d})$ with
#   $\mathbf{d} = \mathbf{x}-\boldsymbol{\mu}$, the derivative is
#   $\partial f/\partial \mathbf{x} = -\tfrac12 f\, \mathbf{d}^\top(\Sigma^{-1}+\Sigma^{-\top})$.
#   The familiar $-f\,\mathbf{d}^\top \Sigma^{-1}$ holds only for symmetric $\Sigma$; for a
#   non-symmetric $\Sigma$ it was off by a relative error of order one.
# * $\partial \operatorname{tr}(\mathbf{x}\mathbf{x}^\top+c^2 I)/\partial \mathbf{x}
#   = 2\mathbf{x}^\top$, and the Jacobian of $\tanh(W\mathbf{x}+\mathbf{b})$ is
#   $\operatorname{diag}(1-\tanh^2(W\mathbf{x}+\mathbf{b}))\,W$, $M\times D$.
# * Every closed form agreed with `torch.autograd` and with central finite differences.
# * Backpropagation computes **vector-Jacobian products**, left to right, starting from the
#   loss's single row. Forming the full Jacobian instead was many times slower at width 512
#   and needed memory quadratic instead of linear in the width; for a realistic `Linear`
#   layer, $\partial Y/\partial W$ alone would take gigabytes.
#   [Chapter 1.1](01_1_computational_graph.ipynb)'s three `Linear` backward formulas are
#   exactly the VJPs of its three Jacobians ({ref}`sec-ch02-linear-vjp`).
#
# ## Exercises
#
# ```{exercise} The derivative of a quadratic form
# :label: ex-jac-quadratic
#
# Let $f(\mathbf{x}) = \mathbf{x}^\top A \mathbf{x}$ with $\mathbf{x}\in\mathbb{R}^n$ and
# any $A\in\mathbb{R}^{n\times n}$. What is the shape of $\partial f/\partial \mathbf{x}$?
# Compute it, and say when it equals $2\mathbf{x}^\top A$.
# ```
#
# ```{solution} ex-jac-quadratic
# :class: dropdown
#
# $f$ is a scalar, so $\partial f/\partial \mathbf{x}$ is a $1\times n$ row. As for
# $q = \mathbf{d}^\top \Sigma^{-1}\mathbf{d}$ in the Gaussian example, $x_k$ appears in both
# factors: $\partial f/\partial x_k = (A\mathbf{x})_k + (A^\top \mathbf{x})_k$, so
# $\partial f/\partial \mathbf{x} = \mathbf{x}^\top(A + A^\top)$. It equals
# $2\mathbf{x}^\top A$ exactly when $\mathbf{x}^\top(A^\top - A) = 0$ for every
# $\mathbf{x}$, that is when $A$ is symmetric. The code cell after the exercises runs this on
# numbers.
# ```
#
# ```{exercise} The softmax Jacobian and its VJP
# :label: ex-jac-softmax
#
# The softmax $\mathbf{s} = \operatorname{softmax}(\mathbf{z})$,
# $s_i = e^{z_i}/\sum_k e^{z_k}$, maps $\mathbb{R}^K\to\mathbb{R}^K$. Compute its
# $K\times K$ Jacobian. Then write the VJP
# $\bar{\mathbf{g}}\,\partial \mathbf{s}/\partial \mathbf{z}$ for a row
# $\bar{\mathbf{g}}\in\mathbb{R}^{1\times K}$ without forming the Jacobian.
# ```
#
# ```{solution} ex-jac-softmax
# :class: dropdown
#
# $\partial s_i/\partial z_j = s_i(\delta_{ij} - s_j)$, so
# $\partial \mathbf{s}/\partial \mathbf{z} = \operatorname{diag}(\mathbf{s})
# - \mathbf{s}\mathbf{s}^\top$ (symmetric). The VJP is
# $\bar{\mathbf{g}}\operatorname{diag}(\mathbf{s})
# - (\bar{\mathbf{g}} \mathbf{s})\,\mathbf{s}^\top$, that is, entrywise,
# $s_j\,(\bar g_j - \sum_i \bar g_i s_i)$: $O(K)$ work instead of the $O(K^2)$ of building
# the Jacobian. The code cell after the exercises compares both with `torch.autograd`.
# ```
#
# ```{exercise} The Jacobian with respect to the weights
# :label: ex-jac-weights
#
# For one sample, $\mathbf{z} = W\mathbf{x}$ with $W\in\mathbb{R}^{M\times D}$. What is
# the shape of $\partial \mathbf{z}/\partial W$ and what are its entries? Compute the VJP
# $\bar{\mathbf{g}}\,\partial \mathbf{z}/\partial W$ for an upstream row
# $\bar{\mathbf{g}}\in\mathbb{R}^{1\times M}$ and compare it with
# [chapter 1.1](01_1_computational_graph.ipynb)'s
# $\partial \mathcal{L}/\partial W = \bar Y^\top X$.
# ```
#
# ```{solution} ex-jac-weights
# :class: dropdown
#
# $\partial \mathbf{z}/\partial W$ is $M\times(M\times D)$ with entries
# $\partial z_i/\partial W_{kj} = \delta_{ik}x_j$. Contracting with $\bar{\mathbf{g}}$ over
# $i$ gives $\sum_i \bar g_i\delta_{ik}x_j = \bar g_k x_j$, the $M\times D$ outer product
# $\bar{\mathbf{g}}^\top \mathbf{x}^\top$. With samples as rows, $X = \mathbf{x}^\top$
# ($1\times D$) and $\bar Y = \bar{\mathbf{g}}$ ($1\times M$), so
# $\bar Y^\top X = \bar{\mathbf{g}}^\top \mathbf{x}^\top$: the same matrix. For a batch,
# $\bar Y^\top X$ sums these outer products over the samples.
# ```
#
# ```{exercise} Forward or reverse mode?
# :label: ex-jac-cost
#
# A function $\mathbf{f}:\mathbb{R}^D\to\mathbb{R}^M$ is built from layers whose VJPs and
# Jacobian-vector products (JVPs, $J\mathbf{u}$ for a column $\mathbf{u}$, what forward-mode
# differentiation computes) each cost about as much as evaluating $\mathbf{f}$. How many
# VJPs does it take to form the full Jacobian of $\mathbf{f}$? How many JVPs? Which mode
# would you use for a loss ($M = 1$) of a network with $D = 10^6$ parameters, and which for
# $\mathbf{f}:\mathbb{R}\to\mathbb{R}^{1000}$?
# ```
#
# ```{solution} ex-jac-cost
# :class: dropdown
#
# Row $i$ of $J$ is the VJP $\mathbf{e}_i^\top J$, so $M$ VJPs; column $j$ is the JVP
# $J\mathbf{e}_j$, so $D$ JVPs. For a loss ($M = 1$), one VJP (one backward pass) gives all
# $10^6$ partial derivatives, where forward mode would need $10^6$ JVPs: this is why
# training uses reverse mode. For $\mathbf{f}:\mathbb{R}\to\mathbb{R}^{1000}$ it is the
# other way round: one JVP gives the whole $1000\times 1$ Jacobian, reverse mode would need
# 1000 VJPs {cite}`ch02-baydin2018autodiff`. The code cell below builds the softmax Jacobian
# both ways, row by row from VJPs and column by column from JVPs.
# ```
#
# The solutions, run on numbers:

# %% tags=["hide-input"]
n = 4
A, x = rng.normal(size=(n, n)), rng.normal(size=n)
J_fd = numerical_jacobian(lambda v: v @ A @ v, x)[None, :]
assert_allclose(x @ (A + A.T), J_fd[0], rtol=1e-7)  # x^T (A + A^T)
assert not np.allclose(2 * x @ A, J_fd[0])  # 2 x^T A is wrong for this non-symmetric A
A_sym = (A + A.T) / 2  # a symmetric matrix with the same quadratic form
assert_allclose(2 * x @ A_sym, J_fd[0], rtol=1e-7)  # and right for a symmetric one
print("Exercise 2.1: d(x^T A x)/dx = x^T (A + A^T) = finite differences;")
print("              2 x^T A only for the symmetric A")

K_cls = 5
z, g_bar = rng.normal(size=(2, K_cls))
s = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
softmax_t = lambda v: torch.softmax(v, dim=0)  # noqa: E731
J_soft = np.diag(s) - np.outer(s, s)
assert_allclose(J_soft, autograd_jacobian(softmax_t, z), rtol=1e-12, atol=1e-15)
assert_allclose(s * (g_bar - g_bar @ s), g_bar @ J_soft, atol=1e-15)  # VJP, no Jacobian
print("Exercise 2.2: diag(s) - s s^T = autograd; s * (g - g.s) = g @ J")

M, D = 3, 4
W, x, g_bar = rng.normal(size=(M, D)), rng.normal(size=D), rng.normal(size=M)
J_w = numerical_jacobian(lambda Z: Z @ x, W)  # shape (M, M, D)
assert J_w.shape == (M, M, D)
assert_allclose(J_w, np.einsum("ik,j->ikj", np.eye(M), x), atol=1e-9)  # delta_ik x_j
assert_allclose(np.tensordot(g_bar, J_w, axes=1), np.outer(g_bar, x), atol=1e-9)
# = chapter 1.1's Y_bar^T X with X = x^T, Y_bar = g_bar
assert_allclose(
    np.outer(g_bar, x), calculus.linear_vjp(x[None, :], W, g_bar[None, :])[1]
)
print("Exercise 2.3: dz/dW has shape (M, M, D); its VJP is the outer product g x^T")

z_t, unit = torch.tensor(z), torch.eye(K_cls)
vjp, jvp = torch.autograd.functional.vjp, torch.autograd.functional.jvp
rows_from_vjps = np.stack(
    [vjp(softmax_t, z_t, unit[i])[1].numpy() for i in range(K_cls)]
)
cols_from_jvps = np.stack(
    [jvp(softmax_t, z_t, unit[j])[1].numpy() for j in range(K_cls)], axis=1
)
assert_allclose(rows_from_vjps, J_soft, atol=1e-15)  # K VJPs give the rows
assert_allclose(cols_from_jvps, J_soft, atol=1e-15)  # K JVPs give the columns
print(
    f"Exercise 2.4: {K_cls} VJPs give the rows, {K_cls} JVPs the columns of the "
    "Jacobian"
)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch02-
# ```
