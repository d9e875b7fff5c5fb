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
# # Chapter 1: A computational graph from scratch
#
# Every deep-learning framework computes gradients the same way: it records the
# computation as a {term}`computational graph` of small operations, runs it forward to get
# the loss, then walks it backwards applying the chain rule, one operation at a time. In this
# chapter we build such an engine in a few hundred lines of NumPy (`course_utils.graph`),
# check every one of its derivatives against finite differences and against PyTorch, and
# train a logistic regression with it. Then we use it for an experiment that every
# practitioner meets on day one: **what does the batch size do?** We train with batch sizes
# from 1 to 1024, each with several seeds, measure the loss per epoch and per update, the test
# accuracy, the decision boundaries, the time per epoch on a CPU, the memory and the gradient
# noise, and we test two common recipes (equal numbers of updates, the linear learning-rate
# scaling rule) by their results.
#
# **Learning objectives.** After this chapter you can
#
# - build a reverse-mode automatic-differentiation engine from nodes that each have a forward
#   and a backward rule, and check every gradient against finite differences and
#   `torch.autograd`;
# - derive the linear layer's three gradients with samples as rows or as columns, and
#   translate a formula from one layout to the other;
# - compute the binary cross-entropy from logits without overflow or $\log 0$;
# - train logistic regression with minibatch gradient descent and measure, over several
#   seeds, what the batch size changes: updates per epoch, time, memory, gradient noise,
#   accuracy;
# - test the equal-updates control and the linear learning-rate scaling rule, and predict
#   from the Hessian's largest eigenvalue where the rule fails.
#
# **Prerequisites:** Python and NumPy; derivatives and the chain rule; matrix products and
# transposes. [Chapter 2](02_jacobians.ipynb) treats Jacobians and the chain rule for vectors
# and matrices in depth.
#
# Symbols follow the book's {ref}`notation`; terms are defined in the {ref}`glossary`.
#
# ```{admonition} Every number here was computed
# :class: note
# The numbers, tables and figures on this page were produced by the code beside them, and every claim
# the text makes is asserted by that code, so the page cannot build if a claim stops holding. Results
# of training vary slightly between machines and seeds; where the chapter compares trained models, it
# runs several seeds and calls differences within their spread a tie.
# ```

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
    package = f"course-utils[ch01] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
SEED = 0  # seeds the data; training run k uses the seed SEED + k
# The data: two Gaussian classes in the plane. Batch size 1 for 50 epochs means
# NUM_EPOCHS * N_TRAIN single-sample updates in Python per seed, the chapter's main cost
# (about 100,000 updates here). This chapter runs on the CPU only (NumPy); a faster
# machine may raise N_TRAIN, N_TEST and N_SEEDS.
N_TRAIN = 2048
N_TEST = 10_000  # only evaluated, so a large test set is cheap
# The batch-size study (the setup of the source assignment), each run with N_SEEDS seeds
# (initial parameters and shuffling)
BATCH_SIZES = [1, 4, 8, 16, 64, 128, 256, 512, 1024]
NUM_EPOCHS = 50
LR = 0.03
N_SEEDS = 3
# The control at an equal number of updates: every batch size gets CONTROL_UPDATES
# updates, repeated with CONTROL_SEEDS shuffles from the same initial parameters.
CONTROL_UPDATES = 100
CONTROL_SEEDS = 5
# Minibatch-gradient noise: random minibatches drawn per batch size
NOISE_DRAWS = 200
# Time of one training step, for batch sizes beyond the training set (resampled points)
TIMING_BATCH_SIZES = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]
TIMING_REPEATS = 5

# %%
import inspect
import itertools
import math
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose
from scipy.stats import norm
from tqdm.auto import tqdm

import course_utils.runtime
from course_utils import graph as G
from course_utils import plots, stats
from course_utils.checks import numerical_gradient, relative_error
from course_utils.plots import COLUMN_WIDTH

np.set_printoptions(precision=4, suppress=True)
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# ## A graph of nodes, each with a forward and a backward rule
#
# A computation such as "logistic regression on a batch, then its loss" is a chain of
# small operations. We represent each one by a **node** that knows two things:
#
# * `forward()`: compute its output `value` from its inputs' values;
# * `backward()`: given `grad`, the derivative of the final scalar loss $\mathcal{L}$ with
#   respect to its own output, compute the derivative of $\mathcal{L}$ with respect to each of
#   its inputs (and its own parameters), and **add** it to their `grad`.
#
# If node $v$ computes $v = f(u)$, the chain rule says
# $\partial \mathcal{L}/\partial u = \partial \mathcal{L}/\partial v \cdot \partial v/\partial u$:
# the backward rule only needs the local derivative of $f$. When $u$ feeds several nodes, its gradient is the **sum** of what each consumer sends
# back, which is why `backward()` adds instead of assigning. Running all the forward rules in
# a **topological order** (every node after its inputs) computes the loss; running all the
# backward rules in the reverse order computes every gradient in one sweep
# {cite}`ch01-rumelhart1986backprop,ch01-baydin2018autodiff`. This is *reverse-mode automatic
# differentiation* ({term}`backpropagation`), and it is all that `loss.backward()` does in
# PyTorch.
#
# The engine follows micrograd {cite}`ch01-karpathy2020micrograd`: each node's backward rule sits
# right beside its forward rule. Here is the sigmoid node of `course_utils.graph`, in full:

# %%
print(inspect.getsource(G.Sigmoid))

# %% [markdown]
# Its forward rule uses $e = \exp(-|z|)\in(0, 1]$, so it never overflows, whatever the
# sign of $z$. Its backward rule is $\partial s/\partial z = s(1-s)$, applied to the upstream
# gradient `self.grad`. The whole engine is four functions on top of such nodes:
#
# * `topological_sort(root)`: a depth-first search that lists every node `root` depends on,
#   each after its inputs;
# * `forward(root)`: call `forward()` on each node in that order, return `root.value`;
# * `backward(root)`: zero every gradient, set `root.grad = 1.0` (the root is the scalar
#   loss, $\partial \mathcal{L}/\partial \mathcal{L} = 1$), call `backward()` on each node
#   in reverse order;
# * `parameters(root)`: the trainable `Parameter`s, each a `value` array with a `grad` of
#   the same shape.

# %%
print(inspect.getsource(G.topological_sort))

# %% [markdown]
# ## One data layout for the whole book: samples are rows
#
# A batch of $B$ samples with $D$ features can be stored as a $D\times B$ matrix (one
# **column** per sample, the convention of many textbooks and of the assignment this
# chapter is based on) or as a $B\times D$ matrix (one **row** per sample). This book uses
# **rows**, everywhere: every value in a graph has shape `(batch, features)`, and class
# labels have shape `(batch,)`. Three reasons:
#
# * it is PyTorch's layout (`nn.Linear` computes `x @ W.T + b`, a `DataLoader` stacks samples
#   along the first axis), so the from-scratch code and the PyTorch code of later chapters
#   read the same;
# * NumPy arrays are row-major: one sample is one contiguous row, `X[idx]` gathers a
#   {term}`minibatch`, and a dataset on disk (`(N, 28, 28)` images) already has samples first;
# * the batch is the axis we slice, shuffle and average over; keeping it first keeps that
#   axis in one place for every tensor, whatever its other dimensions.
#
# The price is that formulas written for columns appear **transposed**. The next section,
# {ref}`sec-ch01-linear`, derives the linear layer's gradients in both layouts, so that you can translate any
# column-layout formula you meet.

# %% [markdown]
# (sec-ch01-linear)=
# ## The `Linear` node and its three gradients
#
# **Column layout (the source's).** For one sample $\mathbf{x}\in\mathbb{R}^{D}$ (a column), a
# linear (affine) layer computes $W\mathbf{x} + \mathbf{b}$ with $W\in\mathbb{R}^{M\times D}$ and
# $\mathbf{b}\in\mathbb{R}^M$. For a batch stacked as columns, $X_{\mathrm c}\in\mathbb{R}^{D\times B}$,
# it computes $Y_{\mathrm c} = WX_{\mathrm c} + \mathbf{b}\mathbf{1}^\top$, that is
# $(Y_{\mathrm c})_{ik} = \sum_j W_{ij}(X_{\mathrm c})_{jk} + b_i$ for sample $k$. Write
# $\bar Y_{\mathrm c} = \partial \mathcal{L}/\partial Y_{\mathrm c}$ for the upstream gradient (same
# shape as $Y_{\mathrm c}$). Each $W_{ij}$ appears in the outputs $(Y_{\mathrm c})_{ik}$ of every
# sample $k$ with coefficient $(X_{\mathrm c})_{jk}$; each $(X_{\mathrm c})_{jk}$ appears in
# $(Y_{\mathrm c})_{ik}$ for every $i$ with coefficient $W_{ij}$; each $b_i$ appears in every
# $(Y_{\mathrm c})_{ik}$ with coefficient 1. Summing over those appearances (the chain rule):
#
# $$
# \frac{\partial \mathcal{L}}{\partial W_{ij}}
#   = \sum_k (\bar Y_{\mathrm c})_{ik} (X_{\mathrm c})_{jk},\qquad
# \frac{\partial \mathcal{L}}{\partial (X_{\mathrm c})_{jk}}
#   = \sum_i W_{ij} (\bar Y_{\mathrm c})_{ik},\qquad
# \frac{\partial \mathcal{L}}{\partial b_i} = \sum_k (\bar Y_{\mathrm c})_{ik},
# $$ (eq-linear-index)
#
# which in matrix form are the source's three formulas:
#
# $$
# \frac{\partial \mathcal{L}}{\partial X_{\mathrm c}} = W^\top \bar Y_{\mathrm c},\qquad
# \frac{\partial \mathcal{L}}{\partial W} = \bar Y_{\mathrm c} X_{\mathrm c}^\top,\qquad
# \frac{\partial \mathcal{L}}{\partial \mathbf{b}} = \bar Y_{\mathrm c}\mathbf{1}
# $$ (eq-linear-columns)
#
# (the last one is the sum over the batch). **Row layout (ours).** With samples as rows, the
# batch is $X = X_{\mathrm c}^\top\in\mathbb{R}^{B\times D}$ and the layer computes
# $Y = XW^\top + \mathbf{1}\mathbf{b}^\top$ (PyTorch's `x @ W.T + b`); its upstream gradient is
# $\bar Y = \bar Y_{\mathrm c}^\top$. Transposing {eq}`eq-linear-columns`:
#
# $$
# \frac{\partial \mathcal{L}}{\partial X} = \bar Y W,\qquad
# \frac{\partial \mathcal{L}}{\partial W} = \bar Y^\top X,\qquad
# \frac{\partial \mathcal{L}}{\partial \mathbf{b}} = \bar Y^\top\mathbf{1}
# $$ (eq-linear-rows)
#
# (the last one is the column sums of $\bar Y$). The gradient with respect to $W$ is the same
# matrix in both layouts (it has $W$'s shape); the other two are transposed like the data.
# Here is `Linear`'s code:

# %%
print(inspect.getsource(G.Linear.forward))
print(inspect.getsource(G.Linear.backward))

# %% [markdown]
# We check {eq}`eq-linear-rows` and {eq}`eq-linear-columns` on numbers: a `Linear` node on a
# batch of $B = 5$ samples, an arbitrary upstream gradient $\bar Y$ passed as `grad=` to
# `backward` (for a non-scalar root, `backward` computes the vector-Jacobian product with
# `grad`, [chapter 2](02_jacobians.ipynb)'s {term}`VJP`), and the input marked
# `requires_grad=True` so that it receives a gradient too. We compare with the formulas, with
# central finite differences of $\sum_{ik} \bar Y_{ik}Y_{ik}$, and with `torch.autograd`.

# %%
rng = np.random.default_rng(SEED)
x = G.Input("x", value=rng.normal(size=(5, 3)), requires_grad=True)
lin = G.Linear(x, 3, 2, rng=rng, name="linear")
lin.b.value[:] = rng.normal(size=2)  # a non-zero bias (parameters change in place)
Y_bar = rng.normal(size=(5, 2))  # the upstream gradient dL/dY, shape (batch, out)
G.forward(lin)
G.backward(lin, grad=Y_bar)
W, X = lin.W.value, x.value

# row layout, eq-linear-rows
assert_allclose(x.grad, Y_bar @ W)
assert_allclose(lin.W.grad, Y_bar.T @ X)
assert_allclose(lin.b.grad, Y_bar.sum(axis=0))
# the same gradients in column layout (X_c = X.T, Ybar_c = Y_bar.T), eq-linear-columns
X_c, Y_bar_c = X.T, Y_bar.T
assert_allclose(x.grad.T, W.T @ Y_bar_c)
assert_allclose(lin.W.grad, Y_bar_c @ X_c.T)
assert_allclose(lin.b.grad, Y_bar_c.sum(axis=1))


def fd_linear(which):
    """Central differences of sum(Y_bar * Y) with respect to X, W or b."""
    values = {"X": X, "W": W, "b": lin.b.value}

    def f(v):
        X_, W_, b_ = (v if which == k else d for k, d in values.items())
        return np.sum(Y_bar * (X_ @ W_.T + b_))

    return numerical_gradient(f, values[which])


Xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, lin.b.value))
F.linear(Xt, Wt, bt).backward(torch.tensor(Y_bar))
print("each gradient = formula = finite differences (relative error < 1e-6)")
print("              = torch.autograd (relative error < 1e-12)")
for name, ours, fd, tg in [
    ("dL/dX", x.grad, fd_linear("X"), Xt.grad),
    ("dL/dW", lin.W.grad, fd_linear("W"), Wt.grad),
    ("dL/db", lin.b.grad, fd_linear("b"), bt.grad),
]:
    assert relative_error(ours, fd) < 1e-6 and relative_error(ours, tg.numpy()) < 1e-12
    print(f"{name} shape {str(ours.shape):<7} passes both checks")

# %% [markdown]
# ## `Linear` replaces a Multiply node and an Add node
#
# The source assignment first builds the affine map from two nodes, a matrix **Multiply**
# $Z = XW^\top$ and a bias **Add** $Y = Z + \mathbf{1}\mathbf{b}^\top$, and then replaces them by
# one `Linear` node. Writing a node takes a dozen lines; here are the two, in the notebook, as
# subclasses of `G.Node`:


# %%
class Multiply(G.Node):
    """Z = X @ W.T, with the parameter W (out, in)."""

    def __init__(self, x, W, name="multiply"):
        super().__init__(x, name=name)
        self.W = G.Parameter(W, f"{name}.W")
        self.params = [self.W]

    def forward(self):
        self.value = self.inputs[0].value @ self.W.value.T

    def backward(self):
        self.W.grad += self.grad.T @ self.inputs[0].value
        if self.inputs[0].grad is not None:
            self.inputs[0].grad += self.grad @ self.W.value


class Add(G.Node):
    """Y = Z + b, the bias b (out,) broadcast over the batch."""

    def __init__(self, z, b, name="add"):
        super().__init__(z, name=name)
        self.b = G.Parameter(b, f"{name}.b")
        self.params = [self.b]

    def forward(self):
        self.value = self.inputs[0].value + self.b.value

    def backward(self):
        self.b.grad += self.grad.sum(axis=0)  # b was broadcast over the batch: sum back
        if self.inputs[0].grad is not None:
            self.inputs[0].grad += self.grad  # d(z + b)/dz = identity


# %% [markdown]
# Both graphs below compute logistic regression's loss, Input → affine → Sigmoid →
# binary cross-entropy, with the same parameter values. They must agree on the loss and on
# every gradient:

# %%
rng_demo = np.random.default_rng(1)
W0, b0 = rng_demo.normal(size=(1, 2)), rng_demo.normal(size=1)  # shared values
X_demo, y_demo = rng_demo.normal(size=(8, 2)), rng_demo.integers(0, 2, 8)

x1, y1 = G.Input("x", value=X_demo), G.Input("y", value=y_demo)
loss_two = G.BinaryCrossEntropy(G.Sigmoid(Add(Multiply(x1, W0.copy()), b0.copy())), y1)

x2, y2 = G.Input("x", value=X_demo), G.Input("y", value=y_demo)
linear = G.Linear(x2, 2, 1, rng=rng_demo, name="linear")
linear.W.value[:], linear.b.value[:] = W0, b0
loss_one = G.BinaryCrossEntropy(G.Sigmoid(linear), y2)

for loss in (loss_two, loss_one):
    G.forward(loss)
    G.backward(loss)
assert_allclose(loss_two.value, loss_one.value, rtol=1e-15)
for p_two, p_one in zip(G.parameters(loss_two), G.parameters(loss_one)):
    assert_allclose(p_two.grad, p_one.grad, rtol=1e-14)
    print(f"{p_two.name:<11} gradient {p_two.grad.round(4)}", end=" ")
    print(f"= {p_one.name:<8} gradient {p_one.grad.round(4)}")
for name, loss in (("Multiply+Add", loss_two), ("Linear", loss_one)):
    nodes = " -> ".join(type(n).__name__ for n in G.topological_sort(loss))
    print(f"{name:<12} graph: {nodes}")
print(f"same loss: {float(loss_two.value):.4f} = {float(loss_one.value):.4f}")


# %% [markdown]
# The fused node computes exactly the same thing with one node fewer: one Python call less per
# step in each direction, one intermediate $B\times m$ array fewer, and one place to check
# shapes. Every framework fuses the affine map for these reasons (`torch.nn.Linear`).
#
# ## The gradient check: every node against finite differences and PyTorch
#
# Every node and loss of `course_utils.graph` is checked the same way: its gradients from
# `backward` against central finite differences in float64 (relative error below
# $10^{-6}$) and against `torch.autograd` for the same operation. For a non-scalar node we
# differentiate $\sum (\text{upstream} \odot \text{value})$ with a random upstream array, for
# a loss the loss itself. The comparison:

# %%
B_CHECK = 6
check_rng = np.random.default_rng(2)


def check(node, leaves, torch_fn):
    """Gradients of a node's output (a scalar loss, or sum(upstream * value)) with
    respect to its leaves: the engine against central finite differences and against
    torch.autograd. Returns the two largest relative errors."""
    G.forward(node)
    shape = np.shape(node.value)
    upstream = None if shape == () else check_rng.normal(size=shape)
    G.backward(node, grad=upstream)
    ours = [lf.grad.copy() for lf in leaves]

    def scalar(v, lf):
        # rebinding is fine here: nothing else holds these arrays
        old, lf.value = lf.value, v
        out = G.forward(node)
        lf.value = old
        return float(np.sum(out if upstream is None else upstream * out))

    fd = [numerical_gradient(lambda v, lf=lf: scalar(v, lf), lf.value) for lf in leaves]
    ts = [torch.tensor(lf.value, requires_grad=True) for lf in leaves]
    torch_fn(*ts).backward(None if upstream is None else torch.tensor(upstream))
    return (
        max(relative_error(a, b) for a, b in zip(ours, fd)),
        max(relative_error(a, t.grad.numpy()) for a, t in zip(ours, ts)),
    )


# %% [markdown]
# The cases: one per node type, each with random inputs and the same operation written in
# PyTorch:


# %% tags=["hide-input"]
def leaf(shape, scale=1.0, probabilities=False):
    """An Input that receives a gradient: normal values * scale, or in (0.05, 0.95)."""
    if probabilities:
        value = check_rng.uniform(0.05, 0.95, size=shape)
    else:
        value = scale * check_rng.normal(size=shape)
    return G.Input("leaf", value=value, requires_grad=True)


def linear_case():
    x = leaf((B_CHECK, 3))
    lin = G.Linear(x, 3, 2, rng=check_rng, name="linear")
    lin.b.value[:] = check_rng.normal(size=2)
    return lin, [x, lin.W, lin.b], F.linear


def unary_case(node_cls, torch_fn, scale):
    z = leaf((B_CHECK, 3), scale)
    return node_cls(z), [z], torch_fn


labels = check_rng.integers(0, 4, B_CHECK)
y01 = check_rng.integers(0, 2, B_CHECK).astype(float)
onehot = torch.tensor(np.eye(4)[labels])
y01_t = torch.tensor(y01)[:, None]
z1, p1 = leaf((B_CHECK, 1), 3), leaf((B_CHECK, 1), probabilities=True)
z4a, z4b = leaf((B_CHECK, 4), 2), leaf((B_CHECK, 4), 2)
pred, target = leaf((B_CHECK, 2)), leaf((B_CHECK, 2))
cases = {
    "Linear (dX, dW, db)": linear_case(),
    "Identity": unary_case(G.Identity, lambda z: z * 1, 1.0),
    "Sigmoid": unary_case(G.Sigmoid, torch.sigmoid, 3.0),
    "Tanh": unary_case(G.Tanh, torch.tanh, 2.0),
    "ReLU": unary_case(G.ReLU, torch.relu, 2.0),
    "BinaryCrossEntropy(Sigmoid(z), y)": (
        G.BinaryCrossEntropy(G.Sigmoid(z1), y01),
        [z1],
        lambda z: F.binary_cross_entropy_with_logits(z, y01_t),
    ),
    "BinaryCrossEntropy(p, y)": (
        G.BinaryCrossEntropy(p1, y01),
        [p1],
        lambda p: F.binary_cross_entropy(p, y01_t),
    ),
    "SoftmaxCrossEntropy": (
        G.SoftmaxCrossEntropy(z4a, labels),
        [z4a],
        lambda z: F.cross_entropy(z, torch.tensor(labels)),
    ),
    "SoftmaxMSE": (
        G.SoftmaxMSE(z4b, labels),
        [z4b],
        lambda z: ((torch.softmax(z, dim=1) - onehot) ** 2).sum(dim=1).mean(),
    ),
    "MSE (pred and target)": (
        G.MSE(pred, target),
        [pred, target],
        lambda p, t: ((p - t) ** 2).sum(dim=1).mean(),
    ),
}

# %%
print(f"{'node':<36}{'= finite differences':<24}{'= torch.autograd'}")
print(f"{'(largest relative error below)':<36}{'1e-6':<24}{'1e-10'}")
for name, case in cases.items():
    err_fd, err_torch = check(*case)
    assert err_fd < 1e-6 and err_torch < 1e-10, (name, err_fd, err_torch)
    print(f"{name:<36}{'yes':<24}{'yes'}")

# %% [markdown]
# Every gradient passes both checks. The table says so rather than printing the errors
# themselves, whose last digits differ from machine to machine: the errors against finite
# differences are limited by the $O(\epsilon^2)$ truncation and $O(10^{-16}/\epsilon)$
# rounding of the central difference, those against PyTorch by rounding alone.
#
# (sec-ch01-bce)=
# ## Binary cross-entropy without overflow or log(0)
#
# For a predicted probability $\hat p = \sigma(z)$ and a label $y\in\{0, 1\}$, the binary
# cross-entropy is $\ell = -[y\log \hat p + (1-y)\log(1-\hat p)]$. Computed literally, it
# breaks for confident logits: $\sigma(40)$ rounds to exactly 1 in float64, so
# $\log(1-\hat p) = \log 0 = -\infty$, and $\sigma(-800)$ underflows to exactly 0, so
# $\log \hat p = -\infty$. Rewritten in terms of the logit it is stable for every $z$:
#
# $$
# \begin{aligned}
# \ell(z, y) &= \log(1 + e^{z}) - yz = \max(z, 0) - yz + \log\left(1 + e^{-|z|}\right), \\
# \frac{\partial \ell}{\partial z} &= \sigma(z) - y .
# \end{aligned}
# $$ (eq-bce-logits)
#
# `BinaryCrossEntropy(p, y)` uses this form whenever `p` is a `Sigmoid` node, and sends the
# gradient $(\sigma(z) - y)/B$ straight to the logits (the sigmoid's own factor $\sigma(1-\sigma)$
# underflows to 0 at large $|z|$, which would silently stop learning on confident mistakes).
# The loss is averaged over the batch.

# %%
z_extreme = np.array([[-800.0], [-40.0], [0.0], [40.0], [800.0]])
# all but the middle sample are confidently wrong: z << 0 for y = 1, z >> 0 for y = 0
y_extreme = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
with np.errstate(all="ignore"):
    p_naive = 1 / (1 + np.exp(-z_extreme[:, 0]))
    naive = -(y_extreme * np.log(p_naive) + (1 - y_extreme) * np.log(1 - p_naive))
z_in = G.Input("z", value=z_extreme, requires_grad=True)
bce = G.BinaryCrossEntropy(G.Sigmoid(z_in), y_extreme)
with np.errstate(over="raise", divide="raise", invalid="raise"):  # overflow, log(0)
    G.forward(bce)
    G.backward(bce)
zt = torch.tensor(z_extreme, requires_grad=True)
loss_t = F.binary_cross_entropy_with_logits(zt, torch.tensor(y_extreme)[:, None])
loss_t.backward()
assert_allclose(float(bce.value), loss_t.item(), rtol=1e-12)
assert_allclose(z_in.grad, zt.grad.numpy(), rtol=1e-12)
exact_mean = (800 + 40 + np.log(2) + 40 + 800) / 5
assert_allclose(float(bce.value), exact_mean, rtol=1e-15)
assert np.isinf(naive[[0, 3, 4]]).all() and np.isfinite(naive[[1, 2]]).all()
print("logit z            :", z_extreme[:, 0])
print("label y            :", y_extreme)
print("naive per-sample   :", naive)
print(f"stable batch mean  : {float(bce.value):.2f} (torch: {loss_t.item():.2f})")
print(f"(800 + 40 + log 2 + 40 + 800) / 5 = {exact_mean:.2f}")
print("dL/dz              :", z_in.grad[:, 0])

# %% [markdown]
# Four of the five samples are confidently wrong: $z = -800$ and $z = -40$ with label 1,
# $z = 40$ and $z = 800$ with label 0. The literal formula returns `inf` for three of them:
# $\sigma(-800)$ underflows to 0, and $\sigma(40)$ and $\sigma(800)$ round to 1, so a
# $\log 0$ appears. It survives $z = -40$ only because $\sigma(-40)\approx 4\times10^{-18}$
# is still a float64 number. The stable form gives each sample its exact loss, 800, 40,
# $\log 2$, 40 and 800, so the batch mean is $(800 + 40 + \log 2 + 40 + 800)/5 = 336.14$, the
# same as PyTorch's `binary_cross_entropy_with_logits`; and the gradient
# $(\sigma(z) - y)/B$ is bounded, $\pm 0.2$ on each of the four mistakes.
#
# (sec-ch01-data)=
# ## The data: two Gaussian classes
#
# Logistic regression is the graph Input → Linear → Sigmoid → BCE. We train it on a
# generated, seeded two-class problem in the plane: class $y\in\{0, 1\}$ (equally likely) has
# points $\mathbf{x}\sim\mathcal{N}(\boldsymbol{\mu}_y, I)$ with $\boldsymbol{\mu}_0 = (-0.5, 2)$
# and $\boldsymbol{\mu}_1 = (1.5, 0.5)$. Because both classes share the covariance $I$, the
# **Bayes-optimal** classifier (the best any classifier can do) is linear: predict class 1
# when $\mathbf{u}^\top\mathbf{x} + u_0 > 0$ with $\mathbf{u} = \boldsymbol{\mu}_1 - \boldsymbol{\mu}_0$
# and $u_0 = -\mathbf{u}^\top(\boldsymbol{\mu}_0 + \boldsymbol{\mu}_1)/2$. Its error rate is
# $\Phi(-\|\boldsymbol{\mu}_1 - \boldsymbol{\mu}_0\|/2) = \Phi(-1.25)$, so no model can be right
# more than about 89.4 % of the time. Logistic regression is well specified here: its best
# parameters are the Bayes rule's.
#
# The training set has `N_TRAIN` = 2048 points: large enough for a batch of 1024 to be a
# real minibatch (two updates per epoch), small enough that 50 epochs at batch size 1
# (102,400 single-sample updates in Python, for each seed) fit the chapter's time budget. The
# held-out {term}`test set` has 10,000 points, so that a test accuracy has a
# {term}`standard error` of about 0.3 percentage points.

# %%
MU = np.array([[-0.5, 2.0], [1.5, 0.5]])  # class means, one row per class


def make_two_gaussians(n, rng):
    """n points, classes balanced and shuffled: x ~ N(MU[y], I)."""
    y = rng.permutation(np.arange(n) % 2)
    X = MU[y] + rng.normal(size=(n, 2))
    return X, y


data_rng = np.random.default_rng(SEED)
X_train, y_train = make_two_gaussians(N_TRAIN, data_rng)
X_test, y_test = make_two_gaussians(N_TEST, data_rng)

u_bayes = MU[1] - MU[0]
u0_bayes = -u_bayes @ MU.sum(axis=0) / 2


def bayes_predict(X):
    return (X @ u_bayes + u0_bayes > 0).astype(int)


bayes_acc_theory = norm.cdf(np.linalg.norm(u_bayes) / 2)
bayes_acc_train = np.mean(bayes_predict(X_train) == y_train)
bayes_acc_test = np.mean(bayes_predict(X_test) == y_test)
std_error = math.sqrt(bayes_acc_test * (1 - bayes_acc_test) / N_TEST)
print(f"train {X_train.shape}, test {X_test.shape}", end=", ")
print(f"class-1 fraction: train {y_train.mean():.3f}, test {y_test.mean():.3f}")
print(f"{N_TRAIN * NUM_EPOCHS} updates for 50 epochs at batch size 1")
print(f"Bayes-optimal accuracy: {bayes_acc_theory:.2%} in theory,", end=" ")
print(f"{bayes_acc_train:.2%} on the training set,")
print(f"{bayes_acc_test:.2%} on the test set")
print(f"standard error of a test accuracy: {std_error:.1%}")

# %%
fig, ax = plt.subplots(figsize=(5, 4.2))
for label, marker in ((0, "o"), (1, "s")):
    X_class = X_train[y_train == label]
    ax.scatter(*X_class.T, s=6, marker=marker, alpha=0.5, label=f"class {label}")
xs = np.linspace(X_train[:, 0].min(), X_train[:, 0].max(), 2)
bayes_line = -(u_bayes[0] * xs + u0_bayes) / u_bayes[1]
ax.plot(xs, bayes_line, "k--", label="Bayes-optimal boundary")
ax.set(
    xlabel="$x_1$",
    ylabel="$x_2$",
    title=f"Training set: {N_TRAIN} points, two Gaussian classes",
    ylim=(X_train[:, 1].min() - 0.5, X_train[:, 1].max() + 0.5),
)
ax.legend(loc="upper right")
plt.show()

# %% [markdown]
# The best training loss the model can reach is the minimum of the (convex) mean BCE over the
# training set. We compute it once with Newton's method, as a reference line for every
# training curve below: writing $\tilde{\mathbf{x}} = (\mathbf{x}, 1)$ and
# $\boldsymbol{\theta} = (W, \mathbf{b})$ as one vector, the gradient is
# $\frac1N\sum_i (\sigma(\boldsymbol{\theta}^\top\tilde{\mathbf{x}}_i) - y_i)\tilde{\mathbf{x}}_i$
# and the Hessian
# $\nabla^2\mathcal{L} = \frac1N\sum_i \sigma_i(1-\sigma_i)\tilde{\mathbf{x}}_i\tilde{\mathbf{x}}_i^\top$,
# with $\sigma_i = \sigma(\boldsymbol{\theta}^\top\tilde{\mathbf{x}}_i)$.

# %%
X_tilde = np.column_stack([X_train, np.ones(N_TRAIN)])


def bce_hessian(theta):
    s = 1 / (1 + np.exp(-X_tilde @ theta))
    return (X_tilde.T * (s * (1 - s))) @ X_tilde / N_TRAIN


theta = np.zeros(3)
for _ in range(20):
    s = 1 / (1 + np.exp(-X_tilde @ theta))
    theta -= np.linalg.solve(bce_hessian(theta), X_tilde.T @ (s - y_train) / N_TRAIN)
z_opt = X_tilde @ theta
LOSS_OPT = float(
    np.mean(np.maximum(z_opt, 0) - z_opt * y_train + np.log1p(np.exp(-np.abs(z_opt))))
)
gradient_at_opt = X_tilde.T @ (1 / (1 + np.exp(-z_opt)) - y_train) / N_TRAIN
assert np.linalg.norm(gradient_at_opt) < 1e-12
print(f"minimum training loss {LOSS_OPT:.4f}", end=" ")
print(f"at W = {theta[:2].round(3)}, b = {theta[2]:.3f}")
print(f"(Bayes rule: direction {u_bayes}, offset {u0_bayes:.3f})")

# %% [markdown]
# ## Training one sample at a time
#
# Stochastic gradient descent in its purest form: visit the training points in a random order
# and, after each one, move every parameter against its gradient,
# $\boldsymbol{\theta} \leftarrow \boldsymbol{\theta} - \eta\,\nabla_{\boldsymbol{\theta}} \ell$,
# with {term}`learning rate` $\eta$. With the engine, one update is four lines: set the
# inputs, `forward`, `backward`, and subtract `lr * grad` from every parameter **in place**
# (the `Parameter` arrays must never be rebound, because optimizers keep references to them).


# %%
@dataclass
class Model:
    x: G.Input
    y: G.Input
    p: G.Node
    loss: G.Node
    params: list


def build_model(init_seed=SEED):
    """Input -> Linear -> Sigmoid -> BCE; init_seed fixes the initial parameters."""
    x, y = G.Input("x"), G.Input("y")
    init_rng = np.random.default_rng(init_seed)
    logits = G.Linear(x, 2, 1, init="xavier", rng=init_rng, name="linear")
    p = G.Sigmoid(logits, name="p")
    loss = G.BinaryCrossEntropy(p, y, name="bce")
    return Model(x, y, p, loss, G.parameters(loss))


def evaluate(model, X, y):
    """(mean BCE, accuracy) of the model on (X, y)."""
    model.x.value, model.y.value = X, y
    loss = float(G.forward(model.loss))
    return loss, float(np.mean((model.p.value[:, 0] > 0.5) == y))


model = build_model()
W_init, b_init = (p.value for p in model.params)
print("parameters:", [p.name for p in model.params], end=" | ")
print(f"initial W: [{W_init[0, 0]:.4f}, {W_init[0, 1]:.4f}], b: {b_init[0]:.4f}")
print(f"epoch 0: training loss {evaluate(model, X_train, y_train)[0]:.4f}")
shuffle_rng = np.random.default_rng(SEED)
for epoch in range(1, 4):
    for i in shuffle_rng.permutation(N_TRAIN):
        # a batch of one: shape (1, 2)
        model.x.value, model.y.value = X_train[i : i + 1], y_train[i : i + 1]
        G.forward(model.loss)
        G.backward(model.loss)
        for prm in model.params:
            prm.value -= LR * prm.grad
    print(f"epoch {epoch}: training loss {evaluate(model, X_train, y_train)[0]:.4f}")

# %% [markdown]
# After one {term}`epoch` (2048 updates) the loss is already close to the minimum printed
# above.
#
# ## Training in batches
#
# A **minibatch** of $B$ samples ({term}`batch size` $B$) replaces the one-sample gradient by
# the average over the batch (the BCE node averages over the batch, so its gradient is the batch mean of the
# per-sample gradients). One epoch then makes $\lceil N/B\rceil$ updates instead of $N$.
# The function below is the training loop of the rest of the chapter. After every epoch it
# records the loss on the **whole training set**, the same yardstick for every batch size
# (the source's curves average the minibatch losses seen during the epoch, which mixes
# parameters from different moments of the epoch), and the wall-clock time the epoch took.


# %%
def train(
    batch_size,
    lr,
    num_epochs=NUM_EPOCHS,
    num_updates=None,
    shuffle_seed=SEED,
    init_seed=SEED,
):
    """Minibatch SGD on (X_train, y_train) for num_epochs epochs (None: no limit), or
    until num_updates updates.

    Returns the model and a DataFrame with one row per epoch (row 0: before training):
    epoch, updates so far, training loss (whole training set), the epoch's wall-clock
    seconds.
    """
    if batch_size < 1 or lr <= 0:
        raise ValueError(
            f"need batch_size >= 1 and lr > 0, got batch_size={batch_size}, lr={lr}"
        )
    model = build_model(init_seed)
    rng = np.random.default_rng(shuffle_seed)
    history = [(0, 0, evaluate(model, X_train, y_train)[0], np.nan)]
    updates = 0
    epochs = itertools.count(1) if num_epochs is None else range(1, num_epochs + 1)
    for epoch in epochs:
        order = rng.permutation(N_TRAIN)
        start_time = time.perf_counter()
        for start in range(0, N_TRAIN, batch_size):
            idx = order[start : start + batch_size]
            model.x.value, model.y.value = X_train[idx], y_train[idx]
            G.forward(model.loss)
            G.backward(model.loss)
            for prm in model.params:
                prm.value -= lr * prm.grad
            updates += 1
            if updates == num_updates:
                break
        seconds = time.perf_counter() - start_time
        history.append((epoch, updates, evaluate(model, X_train, y_train)[0], seconds))
        if updates == num_updates:
            break
    return model, pd.DataFrame(
        history, columns=["epoch", "updates", "train_loss", "seconds"]
    )


# %%
print("training loss after epochs 0, 1, 2 and 3:")
for batch_size in (1, 64):
    _, hist = train(batch_size, LR, num_epochs=3)
    losses = ", ".join(f"{v:.4f}" for v in hist["train_loss"])
    print(f"batch size {batch_size:>2}: {losses} ({hist['updates'].iloc[-1]} updates)")

# %% [markdown]
# `train(1, ...)` reproduces the loop above exactly (same initial parameters, same shuffles). With
# batches of 64 the loss falls much more slowly **per epoch**: 3 epochs are only 96 updates.
# Whether that is a bad trade depends on what an update costs, which is the subject of the
# study.
#
# The study below trains every batch size several times, with different seeds. A helper
# prints such results as a table with one row per batch size and, in each column, the
# mean ± sd over the seeds:

# %% tags=["hide-input"]
FORMATS = {  # column: (format, header)
    "updates": (".0f", "updates"),
    "lr": (".2f", "lr"),
    "train loss": (".4f", "train loss"),
    "above min": (".2f", "above min (%)"),
    "train acc": (".1f", "train acc (%)"),
    "test acc": (".1f", "test acc (%)"),
    "gap": (".1f", "gap (points)"),
}
CONSTANT = {"updates", "lr"}  # the same in every seed: printed once


def table_over_seeds(runs, *columns, by="B"):
    """One row per batch size; each column's mean ± sd over the seeds, as text."""
    table = {}
    for col in columns:
        fmt, header = FORMATS[col]
        s = stats.summarize(runs, by, col)
        if col in CONSTANT:
            table[header] = [f"{m:{fmt}}" for m in s["mean"]]
        else:
            table[header] = [
                stats.mean_sd(m, sd, fmt) for m, sd in zip(s["mean"], s["sd"])
            ]
    return pd.DataFrame(table, index=s.index).to_string()


# %% [markdown]
# (sec-ch01-study)=
# ## The batch-size study
#
# The source assignment's setup: batch sizes 1, 4, 8, 16, 64, 128, 256, 512 and 1024, 50 epochs
# each, learning rate 0.03, the same initial parameters and the same shuffling seed for every
# batch size. One such run is one draw: another {term}`seed` gives other initial parameters and
# another order of the samples. So every batch size is trained with `N_SEEDS` = 3 seeds (the
# initial parameters and the shuffling of run $k$ come from seed `SEED + k`), and the tables
# show the mean ± sd over the seeds, or their range. Two batch sizes whose ranges overlap are
# tied.

# %%
SEEDS = [SEED + k for k in range(N_SEEDS)]
study = {}  # (batch size, seed) -> (model, history)
for batch_size in tqdm(BATCH_SIZES, desc="batch sizes"):
    for seed in SEEDS:
        study[batch_size, seed] = train(
            batch_size, LR, shuffle_seed=seed, init_seed=seed
        )

rows = []
for (batch_size, seed), (model, hist) in study.items():
    reached = hist[hist["train_loss"] <= 1.01 * LOSS_OPT]
    rows.append(
        {
            "B": batch_size,
            "seed": seed,
            "updates": int(hist["updates"].iloc[-1]),
            "epochs to 1%": reached["epoch"].iloc[0] if len(reached) else np.inf,
            "updates to 1%": reached["updates"].iloc[0] if len(reached) else np.inf,
            "train loss": hist["train_loss"].iloc[-1],
            "last 10 range": np.ptp(hist["train_loss"].iloc[-10:]),
            "train acc": 100 * evaluate(model, X_train, y_train)[1],
            "test acc": 100 * evaluate(model, X_test, y_test)[1],
        }
    )
runs = pd.DataFrame(rows)
runs["above min"] = 100 * (runs["train loss"] / LOSS_OPT - 1)
print(f"learning rate {LR}, {NUM_EPOCHS} epochs, seeds {SEEDS}: mean ± sd over seeds")
print(
    table_over_seeds(
        runs, "updates", "train loss", "above min", "train acc", "test acc"
    )
)
print(f"minimum training loss {LOSS_OPT:.4f} ('above min': % above it);")
print(f"Bayes-optimal accuracy: train {bayes_acc_train:.1%}, test {bayes_acc_test:.1%}")

# %% [markdown]
# The batch sizes that get within 1 % of the minimum training loss in every run, and when
# (the first epoch after which the loss is that close, and the number of updates made by
# then; the range over the seeds):

# %%
FAST = [1, 4, 8, 16]
fast = runs[runs["B"].isin(FAST)]
assert np.isfinite(fast["epochs to 1%"]).all()  # every run of B <= 16 gets there
assert (runs[runs["B"] >= 128]["epochs to 1%"] == np.inf).all()  # B >= 128: none does
print(f"{'B':>5} {'epochs to 1%':>14} {'updates to 1%':>16}")
for b, g in fast.groupby("B"):
    e, u = g["epochs to 1%"], g["updates to 1%"]
    print(
        f"{b:>5} {e.min():>7.0f} to {e.max():<3.0f} {u.min():>8.0f} to {u.max():<5.0f}"
    )
# B = 4 to 16 need about the same number of updates: within a seed, they differ by at
# most one epoch of B = 4 (the loss is measured once per epoch)
for seed, g in fast[fast["B"] >= 4].groupby("seed"):
    assert np.ptp(g["updates to 1%"]) <= N_TRAIN / 4, seed
jitter = runs.groupby("B")["last 10 range"].agg(["min", "max"])
assert jitter.loc[1, "min"] > 5 * jitter.loc[[8, 16], "max"].max()
print("training loss over the last 10 epochs, range (max - min), lowest to highest:")
for b in FAST:
    print(f"  B = {b:>2}: {jitter.loc[b, 'min']:.4f} to {jitter.loc[b, 'max']:.4f}")

# %% [markdown]
# The training loss of every batch size, per epoch and per update (the runs with seed
# `SEED`; the other seeds look the same):

# %% tags=["hide-input"]
fig, (ax_e, ax_u) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 8), sharey=True)
colors = plt.get_cmap("viridis")(np.linspace(0, 0.95, len(BATCH_SIZES)))
for color, batch_size in zip(colors, BATCH_SIZES):
    hist = study[batch_size, SEED][1]
    label = f"B = {batch_size}"
    ax_e.plot(hist["epoch"], hist["train_loss"], color=color, label=label)
    ax_u.plot(hist["updates"][1:], hist["train_loss"][1:], color=color, label=label)
for ax in (ax_e, ax_u):
    ax.axhline(LOSS_OPT, color="k", ls=":", lw=1, label="minimum")
    ax.set_ylabel("training loss (mean BCE)")
ax_e.set(xlabel="epoch", title="Loss per epoch (whole training set)")
ax_u.set(
    xlabel="number of updates (log scale)",
    xscale="log",
    title="The same runs against the number of updates",
)
ax_e.legend(ncol=2, fontsize=8)
plt.show()

# %% [markdown]
# Read the two panels and the two tables together.
#
# * **Per epoch** (top panel), the small batches win: batch sizes 1 to 16 get within 1 % of
#   the minimum in 1 to 16 epochs (second table), 64 is still about 1 % above it after 50
#   epochs, and 128 and above are further away; after 50 epochs the loss of batch size 1024 is
#   on average 49 % above the minimum, with a large spread over the seeds (first table):
#   100 updates leave it close to wherever its initial parameters were.
# * **Per update** (bottom panel), the curves lie on top of each other: after the same number
#   of updates, every batch size has reached about the same loss. A batch of 1024 computes a
#   much better estimate of the gradient than a batch of 1, but at this learning rate a better
#   estimate buys almost nothing: the progress per update is limited by the step size, not by
#   the noise. The second table puts a number on it: batch sizes 4 to 16 need 1536 to 2560
#   updates to get within 1 % of the minimum, so the number of epochs they need grows in
#   proportion to $B$.
# * Batch size 1 keeps **jittering** around the minimum: over its last 10 epochs its training
#   loss moves within a range of 0.0026 to 0.0124 (depending on the seed), against at most
#   0.0002 for batch sizes 8 and 16. A step computed from a single sample is noisy enough to
#   be visible in the loss, so where batch size 1 ends depends on its last few steps.
#
# So in this setup the batch size changes the *number of updates per epoch* and little else.
# {ref}`sec-ch01-control` tests that reading directly.
#
# (sec-ch01-generalization)=
# ### Test accuracy and generalization
#
# The test accuracy hardly moves with the batch size, except for the largest batches. Below:
# its range over all runs, the train-test gaps ({term}`generalization gap`), how different the
# classifiers really are, counted as the test points on which two models disagree, and each
# model's bias $b$, which starts at 0 and should reach the minimum's.


# %%
def predict(model, X):
    model.x.value = X
    return (G.forward(model.p)[:, 0] > 0.5).astype(int)  # forward(p) needs no labels


bayes_pred = bayes_predict(X_test)
runs["gap"] = runs["train acc"] - runs["test acc"]
runs["differs from B=1"] = [
    np.sum(predict(study[b, s][0], X_test) != predict(study[1, s][0], X_test))
    for b, s in zip(runs["B"], runs["seed"])
]
runs["differs from Bayes"] = [
    np.sum(predict(study[b, s][0], X_test) != bayes_pred)
    for b, s in zip(runs["B"], runs["seed"])
]
runs["bias"] = [
    float(study[b, s][0].params[1].value[0]) for b, s in zip(runs["B"], runs["seed"])
]

# %%
bayes_gap = 100 * (bayes_acc_train - bayes_acc_test)
print(f"test accuracy over all runs: {runs['test acc'].min():.1f}% to", end=" ")
print(f"{runs['test acc'].max():.1f}%; Bayes rule {bayes_acc_test:.1%}")
print(f"(standard error {std_error:.1%}, two standard errors {2 * std_error:.1%})")
print(f"the Bayes rule's own gap (train acc - test acc): {bayes_gap:.1f} points")
per_b = runs.groupby("B")
table = pd.DataFrame(
    {
        "gap (points)": [
            stats.mean_sd(m, sd, ".1f")
            for m, sd in zip(per_b["gap"].mean(), per_b["gap"].std())
        ],
        "differs from B=1": per_b["differs from B=1"].mean().round().astype(int),
        "differs from Bayes": per_b["differs from Bayes"].mean().round().astype(int),
        "bias b": per_b["bias"].mean().round(3),
    }
)
print(
    f"test points (of {N_TEST}) classified differently, and the bias, mean over seeds:"
)
print(table.to_string())
print(f"(the bias of the minimum: {theta[2]:.3f})")
big = runs[runs["B"] == 1024]
lost = 100 * bayes_acc_test - big["test acc"]
share = big["differs from Bayes"].mean() / N_TEST
print(f"B = 1024: {share:.0%} of the test points differ", end=" ")
print("from the Bayes rule;")
print(f"accuracy lost: {lost.mean():.1f} points on average, {lost.max():.1f} at most")

# %%
up_to_128 = runs[runs["B"] <= 128]
off_bayes = abs(up_to_128["test acc"] - 100 * bayes_acc_test)
assert (off_bayes < 2 * 100 * std_error).all()  # within two standard errors
means = per_b[["differs from Bayes", "bias", "gap"]].mean()
assert (
    means.loc[1024, "differs from Bayes"]
    > 4 * means.loc[4:64, "differs from Bayes"].max()
)
assert big["bias"].mean() < 0.5 * theta[2]  # the bias is far from its optimum
# the points that differ lie near the boundary: they cost less accuracy than their count
assert (lost < 100 * big["differs from Bayes"] / N_TEST).all()
# the gaps up to B = 128 are the Bayes rule's own, to within a point
assert (abs(up_to_128["gap"] - bayes_gap) < 1).all()

# %% [markdown]
# ### Decision boundaries and confusion matrices
#
# The boundaries of batch sizes 1, 64, 256 and 1024 (the runs with seed `SEED`), over the
# first 1000 test points, with the Bayes-optimal boundary dashed:

# %% tags=["hide-input"]
SHOWN = [1, 64, 256, 1024]
test_acc = runs.set_index(["B", "seed"])["test acc"]
fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 7.2), sharex=True, sharey=True)
for ax, b in zip(axes.flat, SHOWN):
    m = study[b, SEED][0]
    plots.decision_boundary(
        lambda grid, m=m: predict(m, grid),
        X_test[:1000],
        y_test[:1000],
        ax=ax,
        resolution=200,
        title=f"B = {b}: test accuracy {test_acc[b, SEED]:.1f}%",
    )
    ax.plot(xs, -(u_bayes[0] * xs + u0_bayes) / u_bayes[1], "k--", lw=1, label="Bayes")
    ax.set_xlim(X_test[:1000, 0].min() - 0.5, X_test[:1000, 0].max() + 0.5)
    ax.set_ylim(X_test[:1000, 1].min() - 0.5, X_test[:1000, 1].max() + 0.5)
    ax.label_outer()
axes[0, 0].legend(loc="upper right")
fig.suptitle(
    "Decision boundaries after 50 epochs\n"
    "(shading: predicted class; points: 1000 test points)"
)
plt.show()

# %% [markdown]
# The confusion matrices of the same runs, on the whole test set. The printed lines count the
# two kinds of error for every seed: true class 1 predicted as 0, against true class 0
# predicted as 1.

# %%
fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.0))
for ax, b in zip(axes.flat, SHOWN):
    plots.confusion_matrix(
        y_test,
        predict(study[b, SEED][0], X_test),
        ["class 0", "class 1"],
        normalize=False,
        ax=ax,
        title=f"B = {b} (test set, counts)",
    )
plt.show()
misses = {}  # (B, seed) -> (class-1 points predicted 0, class-0 points predicted 1)
for b in SHOWN:
    for s in SEEDS:
        pred = predict(study[b, s][0], X_test)
        misses[b, s] = (np.sum(pred[y_test == 1] == 0), np.sum(pred[y_test == 0] == 1))
print(f"{'B':>5} | errors on class 1 / errors on class 0, one pair per seed | ratios")
for b in SHOWN:
    pairs = ", ".join(f"{misses[b, s][0]} / {misses[b, s][1]}" for s in SEEDS)
    ratios = [misses[b, s][0] / misses[b, s][1] for s in SEEDS]
    print(f"{b:>5} | {pairs} | {min(ratios):.1f} to {max(ratios):.1f}")
    if b == 64:  # split evenly between the classes
        assert all(0.8 < r < 1.25 for r in ratios)
    if b == 1024:  # lopsided
        assert max(max(ratios), 1 / min(ratios)) > 1.3

# %% [markdown]
# For batch sizes up to 128 every run's test accuracy lies within two standard errors
# (0.6 points) of the Bayes rule's 89.1 %. The classifiers are not identical, though: batch
# sizes 4 to 64 classify a few dozen test points differently from the Bayes rule (40 to 64
# on average), batch size 1 more (113, its jitter), and the largest batches hundreds (495 for
# 1024). The boundaries show why. For small batches they lie almost on the Bayes-optimal
# line; for 1024 the boundary is visibly off the Bayes line, because its bias, which starts at 0 and
# should reach 1.034, is still at 0.08 on average after only 100 small updates. The confusion
# counts say the same in numbers: for batch size 64 the errors are split evenly between the
# classes, while those of 1024 are lopsided, here 1.5 to 2.3 times as many on class 1 as on
# class 0 (which class it misses more depends on where the boundary has got to). Most of the shifted points lie near the boundary, where either answer is right about
# half of the time, so they cost less accuracy than their number suggests: 1024 disagrees
# with the Bayes rule on 5 % of the test set and loses 1.0 points of accuracy on average
# (1.9 in the worst seed). The train-test gaps (1.5 to 1.7 points up to $B = 128$) are the
# Bayes rule's own 2.0 points, to within a point: this training sample simply happens to be
# a little easier than the test sample, and the gap says so about every model that fits it
# well. Only the under-trained largest batches depart from it (0.7 points for 1024).
#
# (sec-ch01-timing)=
# ## Wall-clock time per epoch: does batching pay on a CPU?
#
# The study timed every epoch. The times below come from this machine and change from run to
# run; the conclusions drawn from them hold on any machine by large margins, and the code
# checks them.

# %% tags=["nbval-ignore-output"] ignore_reason="wall-clock times vary by machine and by run"
epoch_seconds = pd.Series(
    {
        b: np.median([study[b, s][1]["seconds"].iloc[1:] for s in SEEDS])
        for b in BATCH_SIZES
    }
)
updates_per_epoch = pd.Series({b: math.ceil(N_TRAIN / b) for b in BATCH_SIZES})
step_us = 1e6 * epoch_seconds / updates_per_epoch
speed_up = epoch_seconds[1] / epoch_seconds
print(
    pd.DataFrame(
        {
            "median s/epoch": epoch_seconds.map("{:.4f}".format),
            "updates/epoch": updates_per_epoch,
            "µs per update": step_us.map("{:.1f}".format),
            "speed-up vs B=1": speed_up.map("{:.0f}x".format),
        }
    ).to_string()
)
assert step_us.max() < 10 * step_us.min()  # an update costs about the same at every B
assert speed_up[1024] > 100  # so batching pays almost in proportion to B

# %% [markdown]
# An update costs roughly the same number of microseconds at every batch size in the study
# (within a factor of a few, on a quiet machine much less, while the number of updates per
# epoch changes by a factor of 1024): the per-update cost is the fixed overhead of some fifty small NumPy calls and Python
# bookkeeping, not arithmetic (the model has three parameters). So the time per epoch is
# roughly proportional to the number of updates per epoch, $\lceil N/B\rceil$, and batching pays
# almost linearly across the whole range of the study. Where does it stop paying? When the
# arithmetic per sample, not the overhead per update, dominates. To find that point we time one
# training step at batch sizes beyond the training set (points drawn with replacement), best
# of several repeats:

# %%
timing_model = build_model()
timing_rng = np.random.default_rng(SEED)


def seconds_per_step(batch_size, repeats=TIMING_REPEATS):
    idx = timing_rng.integers(0, N_TRAIN, batch_size)
    Xb, yb = X_train[idx], y_train[idx]
    steps = max(1, min(1000, 20_000 // batch_size))
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            timing_model.x.value, timing_model.y.value = Xb, yb
            G.forward(timing_model.loss)
            G.backward(timing_model.loss)
            for prm in timing_model.params:
                prm.value -= 0.0 * prm.grad  # a real update, of size zero
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


# %% tags=["nbval-ignore-output"] ignore_reason="wall-clock times vary by machine and by run"
step_seconds = pd.Series({b: seconds_per_step(b) for b in TIMING_BATCH_SIZES})
per_sample_ns = 1e9 * step_seconds / step_seconds.index
# time per step = overhead + cost per sample * B, least squares in relative error
design = (
    np.column_stack([np.ones(len(step_seconds)), step_seconds.index])
    / step_seconds.values[:, None]
)
overhead_s, per_sample_s = np.linalg.lstsq(
    design, np.ones(len(step_seconds)), rcond=None
)[0]
print(
    pd.DataFrame(
        {
            "µs per step": (1e6 * step_seconds).map("{:.1f}".format),
            "ns per sample": per_sample_ns.map("{:.1f}".format),
        }
    ).to_string()
)
crossover = overhead_s / per_sample_s
print(
    f"fit: {1e6 * overhead_s:.1f} µs per step + {1e9 * per_sample_s:.2f} ns per sample;"
)
print(f"the two are equal at B = {crossover:.0f}")
assert per_sample_ns[1] > 50 * per_sample_ns[1024]  # batching pays by far up to 1024
largest, second = TIMING_BATCH_SIZES[-1], TIMING_BATCH_SIZES[-2]
assert per_sample_ns[second] < 3 * per_sample_ns[largest]  # and then stops
assert crossover > BATCH_SIZES[-1]  # beyond every batch size of the study

# %% [markdown]
# Both measurements as figures, on log-log axes:

# %% tags=["hide-input"]
fig, (ax_t, ax_s) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 7))
ax_t.loglog(
    epoch_seconds.index,
    epoch_seconds.values,
    "o-",
    label="measured (median over the epochs and seeds)",
)
ax_t.loglog(
    epoch_seconds.index,
    epoch_seconds[1] / epoch_seconds.index,
    "k:",
    label="ideal: $\\propto 1/B$",
)
ax_t.set(
    xlabel="batch size B",
    ylabel="wall-clock time per epoch (s)",
    title=f"One epoch of {N_TRAIN} samples",
)
ax_t.legend()
ax_s.loglog(
    per_sample_ns.index,
    per_sample_ns.values,
    "s-",
    color="C1",
    label="measured (best of repeats)",
)
b_grid = np.logspace(0, np.log10(TIMING_BATCH_SIZES[-1]), 100)
ax_s.loglog(
    b_grid,
    1e9 * (overhead_s / b_grid + per_sample_s),
    "k:",
    label="overhead / B + cost per sample",
)
ax_s.set(
    xlabel="batch size B",
    ylabel="time per sample (ns)",
    title="Time per training sample, one step",
)
ax_s.legend()
plt.show()

# %% [markdown]
# On a CPU, for this model, batching pays as long as the fixed cost of an update is larger than
# the arithmetic of the batch: the time per sample falls like $1/B$ up to batch sizes in the
# thousands (printed above as the point where the fitted overhead and arithmetic are equal),
# and flattens after that; from there on, doubling the batch doubles the time per step and
# halves the number of steps, and the time per epoch stops improving. The crossover lies
# beyond every batch size of the study because this model is tiny: the arithmetic per sample
# is a handful of multiplications. For a network with real matrix products per sample the
# overhead is amortized at much smaller batches ({ref}`ex-graph-crossover`), and on a GPU,
# whose fixed cost per operation is much larger and whose arithmetic is much faster, at much
# larger ones.
#
# (sec-ch01-memory)=
# ## Memory
#
# Memory per update grows linearly with the batch: every node stores a `(B, features)` value,
# and the backward pass a gradient of the same shape. We add up what the graph holds after one
# `forward` and `backward` (the parameters are a constant 24 bytes). For comparison, the same
# count for [chapter 5](05_backprop_fashion_mnist.ipynb)'s 784-128-128-10 network in float32:


# %%
def graph_bytes(root):
    """Bytes of the values and gradients that a graph's nodes hold after backward."""
    total = 0
    for node in G.topological_sort(root):
        for arr in (node.value, node.grad):
            if isinstance(arr, np.ndarray):
                total += arr.nbytes
    return total


def mlp_loss(dtype=np.float32):
    x, y = G.Input("x"), G.Input("y")
    h = G.ReLU(G.Linear(x, 784, 128, init="he", rng=rng, dtype=dtype, name="fc1"))
    h = G.ReLU(G.Linear(h, 128, 128, init="he", rng=rng, dtype=dtype, name="fc2"))
    logits = G.Linear(h, 128, 10, rng=rng, dtype=dtype, name="fc3")
    return x, y, G.SoftmaxCrossEntropy(logits, y)


logreg = build_model()
mlp_x, mlp_y, mlp = mlp_loss()
memory = {}  # batch size -> (bytes of logistic regression, bytes of the MLP)
print(f"{'batch size':>10} | {'logistic regression':>20} |", end=" ")
print(f"{'784-128-128-10, float32':>24}")
for b in (1, 64, 1024):
    logreg.x.value, logreg.y.value = X_train[:b], y_train[:b]
    mlp_x.value = rng.random((b, 784), dtype=np.float32)
    mlp_y.value = rng.integers(0, 10, b)
    for loss in (logreg.loss, mlp):
        G.forward(loss)
        G.backward(loss)
    memory[b] = graph_bytes(logreg.loss), graph_bytes(mlp)
    kib = [m / 1024 for m in memory[b]]
    print(f"{b:>10} | {kib[0]:>16.1f} KiB | {kib[1]:>20.1f} KiB")
bytes_per_sample = [(memory[1024][k] - memory[1][k]) / 1023 for k in (0, 1)]
print(f"per sample: {bytes_per_sample[0]:.0f} bytes", end=" and ")
print(f"{bytes_per_sample[1] / 1024:.2f} KiB")

# %% [markdown]
# Logistic regression holds 56 bytes per sample (two float64 features, the label, the logit
# and the probability, and two gradients): even a batch of 1024 needs only 56 KiB, so memory
# is no constraint here. The MLP holds about 7 KiB per sample (the 784 input pixels, four
# 128-wide activations with their gradients, and the logits): a batch of 1024 needs about
# 7 MiB, still small for a CPU. The same count for a large network is what limits the batch
# size on a GPU.
#
# (sec-ch01-noise)=
# ## Stability: the noise of a minibatch gradient
#
# A minibatch gradient is an average of $B$ per-sample gradients drawn from the training set,
# so its deviation from the full-batch gradient $\mathbf{g}$ shrinks like $1/B$: for $B$
# samples drawn without replacement from $N$,
#
# $$
# \mathbb{E}\,\lVert \mathbf{g}_B - \mathbf{g}\rVert^2
# = \frac{\operatorname{tr}\Sigma}{B}\cdot\frac{N - B}{N - 1},
# $$ (eq-minibatch-noise)
#
# with $\Sigma$ the covariance of the per-sample gradients. We measure it with the engine at
# the initial parameters: 200 random minibatches per batch size, each gradient from `backward`.

# %%
noise_model = build_model()


def full_gradient(model, X, y):
    model.x.value, model.y.value = X, y
    G.forward(model.loss)
    G.backward(model.loss)
    return np.concatenate([p.grad.ravel() for p in model.params])


g_full = full_gradient(noise_model, X_train, y_train)
per_sample = np.stack(
    [
        full_gradient(noise_model, X_train[i : i + 1], y_train[i : i + 1])
        for i in range(N_TRAIN)
    ]
)
# the batch gradient is the mean of the per-sample ones
assert_allclose(per_sample.mean(axis=0), g_full, rtol=1e-12)
trace_sigma = np.sum(per_sample.var(axis=0))
print(f"|g|^2 = {g_full @ g_full:.4f}, tr(Sigma) = {trace_sigma:.4f}")

# %%
noise_rng = np.random.default_rng(SEED)
noise_rows = []
for b in BATCH_SIZES:
    draws = [
        full_gradient(noise_model, X_train[idx], y_train[idx])
        for idx in (
            noise_rng.choice(N_TRAIN, b, replace=False) for _ in range(NOISE_DRAWS)
        )
    ]
    measured = np.mean(np.sum((np.array(draws) - g_full) ** 2, axis=1))
    predicted = trace_sigma / b * (N_TRAIN - b) / (N_TRAIN - 1)
    noise_rows.append((b, measured, predicted))
noise = pd.DataFrame(noise_rows, columns=["batch size", "measured", "predicted"])
noise["measured / predicted"] = noise["measured"] / noise["predicted"]
noise_b = noise.set_index("batch size")["measured"]
print(
    noise.to_string(
        index=False,
        formatters={
            "measured": "{:.3g}".format,
            "predicted": "{:.3g}".format,
            "measured / predicted": "{:.2f}".format,
        },
    )
)
# 200 draws: within their sampling error
assert np.all(np.abs(noise["measured / predicted"] - 1) < 0.3)
print(
    f"at B = 1 the noise is {noise_b[1] / (g_full @ g_full):.1f} times |g|^2;", end=" "
)
noise_ratio = float(f"{noise_b[1] / noise_b[1024]:.2g}")  # two significant digits
print(f"at B = 1024 it is about {noise_ratio:.0f} times smaller")

# %% [markdown]
# The measured noise follows {eq}`eq-minibatch-noise` within the sampling error of 200 draws,
# from $B = 1$, where it is about five times the squared length of the gradient itself, to
# $B = 1024$, where it is about 1800 times smaller than at $B = 1$ (the factor
# $(N-B)/(N-1)$ halves it once more at $B = N/2$). Larger batches give smoother, more reliable
# steps; whether that matters depends on the learning rate, because the step's noise is $\eta$
# times the gradient noise. At $\eta = 0.03$ it did not matter (the loss-per-update curves of
# {ref}`sec-ch01-study` collapsed). The next two experiments, {ref}`sec-ch01-control` and
# {ref}`sec-ch01-scaling`, test both sides of that statement.
#
# (sec-ch01-control)=
# ## Control: the same number of updates for every batch size
#
# After 50 epochs the large batches had made far fewer updates. Is their higher loss due to the
# batch size or to the number of updates? We give every batch size the same budget of
# `CONTROL_UPDATES` = 100 updates (what batch size 1024 made in 50 epochs) and repeat each run
# with `CONTROL_SEEDS` = 5 different shuffles (seeds `SEED + k`), keeping the initial
# parameters fixed.

# %%
CONTROL_SHUFFLES = [SEED + k for k in range(CONTROL_SEEDS)]
control_rows = []
for b in tqdm(BATCH_SIZES, desc="control"):
    for s in CONTROL_SHUFFLES:
        m, hist = train(
            b, LR, num_epochs=None, num_updates=CONTROL_UPDATES, shuffle_seed=s
        )
        control_rows.append(
            {
                "B": b,
                "shuffle": s,
                "train loss": hist["train_loss"].iloc[-1],
                "test acc": 100 * evaluate(m, X_test, y_test)[1],
            }
        )
control_runs = pd.DataFrame(control_rows)
control = stats.summarize(control_runs, "B", "train loss")
control["samples seen"] = CONTROL_UPDATES * control.index
control["test acc (%)"] = control_runs.groupby("B")["test acc"].mean()
print(
    f"every run: {CONTROL_UPDATES} updates at lr = {LR}; {CONTROL_SEEDS} shuffles each"
)
print(
    control[["samples seen", "mean", "sd", "min", "max", "test acc (%)"]].to_string(
        formatters={
            **{k: "{:.4f}".format for k in ("mean", "sd", "min", "max")},
            "test acc (%)": "{:.1f}".format,
        }
    )
)
means, sds = control["mean"], control["sd"]
spread_4 = 100 * (means.loc[4:].max() / means.loc[4:].min() - 1)
off_1 = 100 * (means[1] / means[1024] - 1)
print(f"mean losses of B = 4 to 1024: within {spread_4:.1f} % of each other;", end=" ")
print(f"B = 1: {off_1:+.1f} % from B = 1024")
# about the same loss after the same number of updates, whatever the batch size
assert spread_4 < 3 and abs(off_1) < 5
# the larger batches are much less noisy
assert sds[1] > 10 * sds[1024] and sds.loc[64:].max() < 0.2 * sds[1]

# %% [markdown]
# With the number of updates held fixed, the batch size makes almost no difference to the
# mean loss: from $B = 4$ to $B = 1024$ the means lie within 0.1 % of each other (0.3050 to
# 0.3053), so a batch of 4 after 100 updates (400 samples seen) is as far along as a batch of
# 1024 after 100 updates (102,400 samples seen). $B = 1$ differs by 2.8 %, here behind the
# others. (With other data and seeds these small differences
# go either way; they stay within a few percent, a small fraction of the gaps in the
# 50-epoch table.) What a larger batch buys is a smaller spread between shuffles (the sd
# column: from $B = 64$ on it is a small fraction of batch size 1's), the gradient noise of
# {ref}`sec-ch01-noise`. So the gap in the 50-epoch table is a gap in the
# **number of updates**, and in this regime small batches are far more **sample-efficient**: a
# batch of 1024 spends 1024 samples on a step that 4 samples do as well. (In the terms of
# {cite}`ch01-shallue2019measuring`, the *critical batch size* beyond which larger batches stop
# reducing the number of updates needed is tiny at this learning rate.)
#
# (sec-ch01-scaling)=
# ## The linear learning-rate scaling rule
#
# If the step size, not the noise, limits progress, a large batch should take larger steps. The
# **linear scaling rule** {cite}`ch01-goyal2017accurate` says: when the batch size is multiplied by
# $k$, multiply the learning rate by $k$. Its argument: $k$ small-batch steps of size $\eta$ move
# the parameters by about the same amount as one step of size $k\eta$ on the union of the $k$
# batches, as long as the gradient changes little over those $k$ steps. We test it: learning
# rate $\eta_B = 0.03\,B$ (batch size 1 keeps 0.03), 50 epochs, the same `N_SEEDS` seeds as the
# study. (How many epochs training needs as a function of the learning rate is measured for a
# network in {ref}`sec-ch04-epochs-vs-lr`.)

# %%
scaled = {(1, s): study[1, s] for s in SEEDS}  # batch size 1 keeps lr = 0.03
for b in tqdm(BATCH_SIZES[1:], desc="scaled lr"):
    for s in SEEDS:
        scaled[b, s] = train(b, LR * b, shuffle_seed=s, init_seed=s)
scaled_rows = []
for (b, s), (m, hist) in scaled.items():
    last10 = hist["train_loss"].iloc[-10:]
    scaled_rows.append(
        {
            "B": b,
            "seed": s,
            "lr": LR * b,
            "train loss": hist["train_loss"].iloc[-1],
            "last 10: min": last10.min(),
            "last 10: max": last10.max(),
            "peak": hist["train_loss"].max(),
            "initial": hist["train_loss"].iloc[0],
            "test acc": 100 * evaluate(m, X_test, y_test)[1],
        }
    )
scaled_runs = pd.DataFrame(scaled_rows)
for col in ("last 10: min", "last 10: max"):  # in % above the minimum
    scaled_runs[col + " (%)"] = 100 * (scaled_runs[col] / LOSS_OPT - 1)
per_b = scaled_runs.groupby("B")
extremes = pd.DataFrame(
    {
        "lowest": per_b["last 10: min (%)"].min(),
        "highest": per_b["last 10: max (%)"].max(),
        "lowest test acc (%)": per_b["test acc"].min(),
    }
)
print(f"mean ± sd over seeds {SEEDS}:")
print(table_over_seeds(scaled_runs, "lr", "train loss", "test acc"))
print("over the last 10 epochs, the training loss in % above the minimum,")
print("lowest and highest over the seeds; and the lowest test accuracy:")
print(extremes.to_string(float_format="{:.2f}".format))

# %% [markdown]
# The training curves of the runs with seed `SEED`:

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 4.6))
for color, b in zip(colors, BATCH_SIZES):
    hist = scaled[b, SEED][1]
    label = f"B = {b}, lr = {LR * b:g}"
    ax.plot(hist["epoch"], hist["train_loss"], color=color, label=label)
ax.axhline(LOSS_OPT, color="k", ls=":", lw=1, label="minimum")
ax.set(
    yscale="log",
    xlabel="epoch",
    ylabel="training loss (mean BCE, whole training set)",
    title="Linear scaling rule: lr = 0.03 B",
)
ax.legend(ncol=2, fontsize=8)
plt.show()

# %% [markdown]
# Up to a batch size of 64 ($\eta = 1.92$) the rule works: in the same 50 epochs every run
# gets within 1 % of the minimum and then jitters around it as batch size 1 does (over the
# last 10 epochs at most 6 % above the minimum, for both), with up to 64 times fewer updates,
# so ({ref}`sec-ch01-timing`) in a small fraction of the time. At 128 ($\eta = 3.84$) the runs
# still get there but jitter more, up to 15 % above the minimum. At 256 ($\eta = 7.68$) the
# loss keeps jumping, up to 24 % above the minimum over the last 10 epochs, and one seed ends
# with a test accuracy of 86.7 %. At 15.4 and 30.7 the runs do not converge at all: over their
# last 10 epochs the loss swings to several times the minimum, and the test accuracy falls
# to 78.6 % in the worst run. Why there? Gradient descent on a
# function with curvature $\lambda$ along some direction is stable only if
# $\eta < 2/\lambda$; the relevant curvature is the largest eigenvalue $\lambda_{\max}$ of the Hessian $\nabla^2\mathcal{L}$ of the training
# loss (defined in {ref}`sec-ch01-data`, with the Newton solution):

# %%
W_init_seed = build_model().params[0].value.ravel()
lam_init = np.linalg.eigvalsh(bce_hessian(np.r_[W_init_seed, 0.0])).max()
lam_opt = np.linalg.eigvalsh(bce_hessian(theta)).max()
print(f"largest Hessian eigenvalue: {lam_init:.3f} at the initial parameters", end=", ")
print(f"{lam_opt:.3f} at the minimum")
print(f"stability limit 2/lambda_max: {2 / lam_init:.2f} at the start", end=", ")
print(f"{2 / lam_opt:.2f} at the minimum")
print(f"-> with lr = {LR} B, the limit at the minimum is crossed above", end=" ")
print(f"B = {2 / lam_opt / LR:.0f}")

# %% [markdown]
# The curvature is largest where the model is still uncertain (the factor $\sigma(1-\sigma)$ is
# largest at $\sigma = 1/2$), so the stability limit is smallest at the start, 3.3 for the
# initial parameters of seed `SEED`, and 8.1 at the minimum. Batch sizes up to 64 stay below
# both limits and converge; 128 starts close to the first limit (above it, for these initial
# parameters) and still converges, because the curvature falls as the model becomes
# confident. At 256 the learning rate is close to the
# limit at the minimum (just below it here): the iterates are pulled back only weakly along
# the steepest direction, and the minibatch noise, multiplied by a learning rate of 7.68,
# keeps them jumping. At 512 and 1024 the learning rate is above the limit even at the minimum, and the
# runs cannot converge. This is the general picture of the rule: it holds up to a
# problem-dependent batch size and then fails
# {cite}`ch01-goyal2017accurate,ch01-shallue2019measuring`. Goyal et al. combine it with a
# *warm-up* (a learning rate that grows over the first epochs, to pass the high-curvature
# start) and with learning-rate decay; {ref}`ex-graph-warmup` tries both here. The checks of
# these statements, over every seed:


# %%
def rows_of(condition):
    return scaled_runs[condition(scaled_runs)]


ok = rows_of(lambda r: r["B"] <= 64)
assert (ok["lr"] < 2 / lam_init).all()  # below both limits
# ... so every seed converges, jittering like B = 1
assert (ok["last 10: min (%)"] < 1).all() and (ok["last 10: max (%)"] < 10).all()
at_128, at_256 = rows_of(lambda r: r["B"] == 128), rows_of(lambda r: r["B"] == 256)
assert 0.5 < LR * 128 * lam_init / 2 < 1.5  # 128: close to the limit at the start
assert (at_128["last 10: min (%)"] < 1).all()  # ... and converges too
assert abs(LR * 256 * lam_opt / 2 - 1) < 0.15  # 256: close to the limit at the minimum
assert (at_256["last 10: max (%)"] > 15).all()  # ... and keeps jumping
fail = rows_of(lambda r: r["B"] >= 512)
assert (fail["lr"] > 2 / lam_opt).all()  # above the limit even at the minimum
# ... so no convergence: the loss swings to several times the minimum
assert (fail["last 10: min (%)"] > 1).all() and (fail["last 10: max (%)"] > 200).all()
print("B <= 128 converge with every seed; B = 512 and 1024 with none")

# %% [markdown]
# ## Discussion: what batching changes
#
# **Efficiency.** On this CPU an update's cost is almost all fixed overhead, so an epoch takes
# time roughly proportional to the number of updates, and larger batches make epochs faster by
# nearly the factor $B$, up to batches in the thousands ({ref}`sec-ch01-timing`). Per *sample*,
# though, small batches learn more: in the control, 400 samples at $B = 4$ did as much as
# 102,400 samples at $B = 1024$.
#
# **Stability.** The minibatch gradient's noise falls like $1/B$ (measured, and predicted by
# {eq}`eq-minibatch-noise`), and the spread between runs with different shuffles falls with
# it (the control's sd column). At a small learning rate this hardly shows in the loss curves;
# at a large one it decides whether a run converges (batch size 256 with the scaled learning
# rate).
#
# **Memory.** Linear in $B$: 56 bytes per sample for logistic regression, about 7 KiB per sample
# for the 784-128-128-10 network. Irrelevant here; the usual upper limit on $B$ on a GPU.
#
# **Convergence speed.** Per epoch, small batches converge fastest (batch sizes 1 to 16 get
# within 1 % of the minimum in 1 to 16 epochs; 128 and above not in 50). Per update, batch
# sizes from 4 to 1024 converge at the same speed at $\eta = 0.03$, and batch size 1 almost.
# Per second, at a fixed learning rate, it is roughly a draw up to $B = 64$: the same number of
# updates at about the same cost each. Large batches win per second only when the learning
# rate is scaled up with them, which works as long as the learning rate stays below the
# curvature's stability limit (here up to $B = 64$ cleanly, up to 128 with more jitter).
#
# **Generalization.** Not affected, as long as the model has trained long enough. Every run
# up to $B = 128$ has a test accuracy within two standard errors of the Bayes-optimal
# accuracy, and its train-test gap is the Bayes rule's own, to within a point. The largest batches lose
# up to 1.9 points of test accuracy after 50 epochs, but what distinguishes them (a boundary
# still on its way to the minimum) is under-training, which the equal-updates control shows
# to be a matter of the number of updates. The common claim that large batches generalize
# worse {cite}`ch01-keskar2017largebatch` does not show on this problem, and should not: it is
# about deep networks, whose non-convex losses have many minima, some sharp and some flat, and
# small-batch noise is argued to steer towards flat ones. Logistic regression has a convex loss
# with a single minimum and three parameters fitted from 2048 points; every batch size that
# trains long enough reaches the same minimum, and there is nothing to overfit.
# {ref}`sec-ch06-batch-size` asks the question again for a network that can overfit, and
# measures its validation and test accuracy against the batch size over several seeds
# {cite}`ch01-masters2018revisiting,ch01-shallue2019measuring`.
#
# ## Summary
#
# * A reverse-mode autodiff engine is a list of nodes with a forward and a backward rule each,
#   a topological sort, and two loops. Gradients **accumulate** (`+=`) because a value used
#   twice receives the sum of its consumers' gradients.
# * The book stores samples as **rows**, `(batch, features)`, as PyTorch does; the linear
#   layer's gradients are then $\bar Y W$, $\bar Y^\top X$ and the column sums of $\bar Y$, the
#   transposes of the column-layout $W^\top\bar Y_{\mathrm c}$, $\bar Y_{\mathrm c} X_{\mathrm c}^\top$
#   and $\bar Y_{\mathrm c}\mathbf 1$.
# * Every gradient of the engine agrees with central finite differences (relative error below
#   $10^{-6}$) and with `torch.autograd`; the binary cross-entropy is computed from the logits,
#   finite at any logit.
# * In the batch-size study (three seeds per batch size), the batch size changed the number of
#   updates per epoch and the gradient noise; with a learning rate of 0.03 progress depended
#   on the number of updates alone (from $B = 4$ on), so small batches won per epoch and per
#   sample. Per second it was a draw at a fixed learning rate (the same updates at nearly the
#   same cost each); large batches win per second only with a larger learning rate. Scaling
#   the learning rate linearly with the batch size made batches up to 64 as good per epoch as
#   batch size 1, and failed beyond the curvature's stability limit $2/\lambda_{\max}$.
# * Test accuracy did not depend on the batch size once the model had trained long enough: on
#   a convex, well-specified problem there is no sharp or flat minimum to choose between.
#
# ## Exercises
#
# ```{exercise} A node of your own
# :label: ex-graph-square
#
# Write a node `Square` with value $z^2$ (elementwise) and its backward rule, as a subclass of
# `G.Node`, and check its gradient against `numerical_gradient` with `backward(node, grad=...)`.
# ```
#
# ````{solution} ex-graph-square
# :class: dropdown
#
# The local derivative is $2z$, so the backward rule adds `2 * z * self.grad` to the input's
# gradient:
#
# ```python
# class Square(G.Node):
#     def forward(self):
#         self.value = self.inputs[0].value ** 2
#
#     def backward(self):
#         if self.inputs[0].grad is not None:
#             self.inputs[0].grad += 2 * self.inputs[0].value * self.grad
# ```
#
# With `z = G.Input("z", value=Z, requires_grad=True)`, `node = Square(z)`, an upstream array
# `U`, `G.forward(node)` and `G.backward(node, grad=U)`, the gradient `z.grad` equals
# `numerical_gradient(lambda v: np.sum(U * v**2), Z)`. The code cell after the exercises runs
# this check.
# ````
#
# ```{exercise} From column layout to row layout
# :label: ex-graph-layout
#
# A column-layout text gives the gradient of $\mathbf{y} = \tanh(W\mathbf{x} + \mathbf{b})$ with
# respect to $W$ as $\big((1 - \mathbf{y}\odot \mathbf{y})\odot\bar{\mathbf{y}}\big)\,\mathbf{x}^\top$
# for one sample. Translate it to the row layout for a batch $X$ ($B\times D$) with upstream
# gradient $\bar Y$ ($B\times M$), and say which engine nodes compute each factor.
# ```
#
# ```{solution} ex-graph-layout
# :class: dropdown
#
# With $Y = \tanh(XW^\top + \mathbf 1\mathbf{b}^\top)$, the `Tanh` node's backward gives
# $\bar Z = (1 - Y\odot Y)\odot\bar Y$ (elementwise, the same in both layouts), and the `Linear`
# node's backward gives $\partial \mathcal{L}/\partial W = \bar Z^\top X$, which for $B = 1$ is the
# column formula's outer product $\bar{\mathbf{z}}\,\mathbf{x}^\top$ with
# $\bar{\mathbf{z}} = \bar Z^\top$, $\mathbf{x} = X^\top$. For a batch the sum over samples comes
# from the matrix product. The code cell after the exercises runs this on numbers.
# ```
#
# ```{exercise} Where batching stops paying for a network
# :label: ex-graph-crossover
#
# {ref}`sec-ch01-timing` found that batching stops paying for logistic regression only at
# batches in the thousands. Time one training step of
# [chapter 5](05_backprop_fashion_mnist.ipynb)'s 784-128-128-10 network (built with the engine as
# in {ref}`sec-ch01-memory`, float32) for batch sizes 1, 4, 16, 64, 256 and 1024, and find where
# the time per sample stops falling. Why is it so much earlier?
# ```
#
# ```{solution} ex-graph-crossover
# :class: dropdown
#
# Time `G.forward(mlp)`, `G.backward(mlp)` for each batch size as in `seconds_per_step`. The
# arithmetic per sample is now about $3\times(784\cdot128 + 128\cdot128 + 128\cdot10)\approx 3.5\times10^5$
# multiply-adds (forward, and two products in the backward pass), thousands of times more than
# logistic regression's, while the fixed overhead per step is similar (a few dozen NumPy calls).
# So the overhead is amortized at batch sizes around a hundred instead of several thousand: past
# that point the time per sample is set by the matrix-product throughput of the CPU. The last
# code cell of the chapter measures it.
# ```
#
# ```{exercise} Warm-up or decay?
# :label: ex-graph-warmup
#
# With the scaled learning rate $0.03\,B$, try two schedules for $B = 256$, 512 and 1024:
# (a) a linear **warm-up**, the learning rate growing from 0.03 to $0.03\,B$ over the first 5
# epochs; (b) a **decay**, the learning rate divided by 10 for the last 10 epochs. Which one
# rescues which batch size? Explain with the two stability limits of {ref}`sec-ch01-scaling`.
# ```
#
# ```{solution} ex-graph-warmup
# :class: dropdown
#
# The warm-up changes nothing at the end: $B = 256$ finishes at exactly the same loss as with a
# constant learning rate, in every seed. Constant-step SGD forgets where it started; its final
# loss is set by the last steps, where a learning rate of 7.68, close to the limit at the
# minimum (about 8.1), amplifies the minibatch noise. The trouble at 256 is at the end, not at
# the start. The decay attacks exactly that: after it the learning rates (0.77 and 1.5) are
# far below the limit, and 10 epochs bring $B = 256$ to the minimum in every seed, and
# $B = 512$ closer (6.5 % above it on average). $B = 1024$ gains least: at 30.7 its learning
# rate was almost four times the limit for 40 epochs, so it starts the last 10 epochs far
# from the minimum with only 20 updates left (98.1 % above it on average). The code cell below runs all three schedules (a variant of `train` whose
# learning rate depends on the fractional epoch) for every seed of the study.
# ```
#
# The solutions, run on numbers (each schedule with every seed of the study):


# %% tags=["hide-input"]
class Square(G.Node):
    def forward(self):
        self.value = self.inputs[0].value ** 2

    def backward(self):
        if self.inputs[0].grad is not None:
            self.inputs[0].grad += 2 * self.inputs[0].value * self.grad


Z, U = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
z_sq = G.Input("z", value=Z, requires_grad=True)
sq = Square(z_sq)
G.forward(sq)
G.backward(sq, grad=U)
fd_square = numerical_gradient(lambda v: np.sum(U * v**2), Z)
assert relative_error(z_sq.grad, fd_square) < 1e-6  # exercise 1

x_ex = G.Input("x", value=rng.normal(size=(1, 3)))
lin_ex = G.Linear(x_ex, 3, 2, rng=rng, name="linear")
y_ex = G.Tanh(lin_ex)
y_bar = rng.normal(size=(1, 2))
G.forward(y_ex)
G.backward(y_ex, grad=y_bar)
y_col, ybar_col, x_col = y_ex.value.T, y_bar.T, x_ex.value.T
assert_allclose(lin_ex.W.grad, ((1 - y_col * y_col) * ybar_col) @ x_col.T)  # exercise 2


def train_schedule(batch_size, lr_at, seed):
    """Like train(), with the learning rate lr_at(t) at fractional epoch t.

    Returns the final training loss."""
    model = build_model(seed)
    rng_s = np.random.default_rng(seed)
    steps = math.ceil(N_TRAIN / batch_size)
    for epoch in range(NUM_EPOCHS):
        order = rng_s.permutation(N_TRAIN)
        for k, start in enumerate(range(0, N_TRAIN, batch_size)):
            idx = order[start : start + batch_size]
            model.x.value, model.y.value = X_train[idx], y_train[idx]
            G.forward(model.loss)
            G.backward(model.loss)
            lr = lr_at(epoch + k / steps)
            for prm in model.params:
                prm.value -= lr * prm.grad
    return evaluate(model, X_train, y_train)[0]


schedules = {
    "constant": lambda peak: lambda t: peak,
    "warm-up": lambda peak: lambda t: LR + min(1.0, t / 5) * (peak - LR),
    "decay": lambda peak: lambda t: peak if t < NUM_EPOCHS - 10 else peak / 10,
}
LATE = (256, 512, 1024)
final = {
    (name, b, s): train_schedule(b, make(LR * b), s)
    for name, make in schedules.items()
    for b in LATE
    for s in SEEDS
}
scaled_final = scaled_runs.set_index(["B", "seed"])["train loss"]
for b, s in itertools.product(LATE, SEEDS):  # exercise 4
    # the same runs as in the scaling section
    assert_allclose(final["constant", b, s], scaled_final[b, s], rtol=1e-12)
for s in SEEDS:  # warm-up: at 256 the end is exactly that of a constant learning rate
    assert_allclose(final["warm-up", 256, s], final["constant", 256, s], rtol=1e-9)
above = {k: 100 * (v / LOSS_OPT - 1) for k, v in final.items()}  # % above the minimum
mean_above = {
    (name, b): np.mean([above[name, b, s] for s in SEEDS])
    for name in schedules
    for b in LATE
}
assert all(above["decay", 256, s] < 0.5 for s in SEEDS)  # decay rescues 256
# ... helps 512 less and 1024 least
assert mean_above["decay", 256] < mean_above["decay", 512] < mean_above["decay", 1024]
assert all(mean_above["decay", b] < mean_above["constant", b] for b in LATE)
print(f"final training loss in % above the minimum {LOSS_OPT:.4f}, mean (worst seed)")
for name in schedules:
    cells = [
        f"{mean_above[name, b]:.1f} ({max(above[name, b, s] for s in SEEDS):.1f})"
        for b in LATE
    ]
    print(f"{name:>9}: " + ", ".join(f"B = {b}: {c}" for b, c in zip(LATE, cells)))
decayed = [LR * b / 10 for b in LATE]
print("learning rates after the decay:", ", ".join(f"{lr:.2f}" for lr in decayed))
print(f"B = 1024's lr before the decay: {LR * 1024 / (2 / lam_opt):.1f} x the limit")


# %% tags=["hide-input", "nbval-ignore-output"] ignore_reason="wall-clock times vary by machine and by run"
mlp_x, mlp_y, mlp = mlp_loss()  # exercise 3
mlp_ns = {}
for b in (1, 4, 16, 64, 256, 1024):
    mlp_x.value = rng.random((b, 784), dtype=np.float32)
    mlp_y.value = rng.integers(0, 10, b)
    steps = max(2, 256 // b)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            G.forward(mlp)
            G.backward(mlp)
        best = min(best, (time.perf_counter() - t0) / steps)
    mlp_ns[b] = 1e9 * best / b
print("784-128-128-10 network, forward + backward, ns per sample:")
print({b: round(v) for b, v in mlp_ns.items()})
assert mlp_ns[1] > 10 * mlp_ns[1024]  # batching pays up to ...
assert mlp_ns[1024] > 0.5 * mlp_ns[64]  # ... about a hundred, then the curve is flat

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch01-
# ```
