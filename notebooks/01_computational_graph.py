# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
# computation as a **graph** of small operations, runs it forward to get the loss, then walks
# it backwards applying the chain rule, one operation at a time. In this chapter we build
# such an engine in a few hundred lines of NumPy (`course_utils.graph`), check every one
# of its derivatives against finite differences and against PyTorch, and train a logistic
# regression with it. Then we use it for an experiment that every practitioner meets on day
# one: **what does the batch size do?** We train with batch sizes from 1 to 1024, measure
# the loss per epoch and per update, the test accuracy, the decision boundaries, the time per
# epoch on a CPU, the memory and the gradient noise, and we test two common recipes (equal
# numbers of updates, the linear learning-rate scaling rule) by their results.
#
# **Prerequisites:** Python and NumPy; derivatives and the chain rule; matrix products and
# transposes. Chapter 2 treats Jacobians and the chain rule for vectors and matrices in depth.

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
SEED = 0
# The data: two Gaussian classes in the plane. Batch size 1 for 50 epochs means
# NUM_EPOCHS * N_TRAIN single-sample updates in Python, the chapter's main cost
# (about 100 000 updates here). This chapter runs on the CPU only (NumPy); a faster
# machine may raise N_TRAIN and N_TEST.
N_TRAIN = 2048
N_TEST = 10_000  # only evaluated, so a large test set is cheap
# The batch-size study (the setup of the source assignment)
BATCH_SIZES = [1, 4, 8, 16, 64, 128, 256, 512, 1024]
NUM_EPOCHS = 50
LR = 0.03
# The control at an equal number of updates: every batch size gets CONTROL_UPDATES updates,
# repeated with CONTROL_SEEDS different shuffles.
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
from course_utils import plots
from course_utils.checks import numerical_gradient, relative_error

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
# * `backward()`: given `grad`, the derivative of the final scalar loss $L$ with respect to
#   its own output, compute the derivative of $L$ with respect to each of its inputs (and
#   its own parameters), and **add** it to their `grad`.
#
# If node $v$ computes $v = f(u)$, the chain rule says $\partial L/\partial u = \partial
# L/\partial v \cdot \partial v/\partial u$: the backward rule only needs the local derivative
# of $f$. When $u$ feeds several nodes, its gradient is the **sum** of what each consumer sends
# back, which is why `backward()` adds instead of assigning. Running all the forward rules in
# a **topological order** (every node after its inputs) computes the loss; running all the
# backward rules in the reverse order computes every gradient in one sweep
# {cite}`ch01-rumelhart1986backprop,ch01-baydin2018autodiff`. This is *reverse-mode automatic
# differentiation*, and it is all that `loss.backward()` does in PyTorch.
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
#   loss, $\partial L/\partial L = 1$), call `backward()` on each node in reverse order;
# * `parameters(root)`: the trainable `Parameter`s, each a `value` array with a `grad` of
#   the same shape.

# %%
print(inspect.getsource(G.topological_sort))

# %% [markdown]
# ## One data layout for the whole book: samples are rows
#
# A batch of $B$ samples with $n$ features can be stored as an $n\times B$ matrix (one
# **column** per sample, the convention of many textbooks and of the assignment this
# chapter is based on) or as a $B\times n$ matrix (one **row** per sample). This book uses
# **rows**, everywhere: every value in a graph has shape `(batch, features)`, and class
# labels have shape `(batch,)`. Three reasons:
#
# * it is PyTorch's layout (`nn.Linear` computes `x @ W.T + b`, a `DataLoader` stacks samples
#   along the first axis), so the from-scratch code and the PyTorch code of later chapters
#   read the same;
# * NumPy arrays are row-major: one sample is one contiguous row, `X[idx]` gathers a
#   minibatch, and a dataset on disk (`(N, 28, 28)` images) already has samples first;
# * the batch is the axis we slice, shuffle and average over; keeping it first keeps that
#   axis in one place for every tensor, whatever its other dimensions.
#
# The price is that formulas written for columns appear **transposed**. The next section
# derives the linear layer's gradients in both layouts, so that you can translate any
# column-layout formula you meet.

# %% [markdown]
# ## The `Linear` node and its three gradients
#
# **Column layout (the source's).** For one sample $x\in\mathbb{R}^{n}$ (a column), a linear
# (affine) layer computes $y = Ax + b$ with $A\in\mathbb{R}^{m\times n}$, $b\in\mathbb{R}^m$. For a
# batch stacked as columns, $X\in\mathbb{R}^{n\times B}$, it computes $Y = AX + b\mathbf{1}^\top$,
# that is $Y_{ik} = \sum_j A_{ij}X_{jk} + b_i$ for sample $k$. Write $\bar Y = \partial
# L/\partial Y$ for the upstream gradient (same shape as $Y$). Each $A_{ij}$ appears in the
# outputs $Y_{ik}$ of every sample $k$ with coefficient $X_{jk}$; each $X_{jk}$ appears in
# $Y_{ik}$ for every $i$ with coefficient $A_{ij}$; each $b_i$ appears in every $Y_{ik}$ with
# coefficient 1. Summing over those appearances (the chain rule):
#
# $$
# \frac{\partial L}{\partial A_{ij}} = \sum_k \bar Y_{ik} X_{jk},\qquad
# \frac{\partial L}{\partial X_{jk}} = \sum_i A_{ij} \bar Y_{ik},\qquad
# \frac{\partial L}{\partial b_i} = \sum_k \bar Y_{ik},
# $$ (eq-linear-index)
#
# which in matrix form are the source's three formulas:
#
# $$
# \frac{\partial L}{\partial X} = A^\top \bar Y,\qquad
# \frac{\partial L}{\partial A} = \bar Y X^\top,\qquad
# \frac{\partial L}{\partial b} = \bar Y\mathbf{1} \ \ (\text{the sum over the batch}).
# $$ (eq-linear-columns)
#
# **Row layout (ours).** With samples as rows, the batch is $X_r = X^\top\in\mathbb{R}^{B\times n}$ and
# the layer computes $Y_r = X_r A^\top + \mathbf{1}b^\top$ (PyTorch's `x @ W.T + b`); its upstream
# gradient is $\bar Y_r = \bar Y^\top$. Transposing {eq}`eq-linear-columns`:
#
# $$
# \frac{\partial L}{\partial X_r} = \bar Y_r A,\qquad
# \frac{\partial L}{\partial A} = \bar Y_r^\top X_r,\qquad
# \frac{\partial L}{\partial b} = \bar Y_r^\top\mathbf{1} \ \ (\text{the column sums of } \bar Y_r).
# $$ (eq-linear-rows)
#
# The gradient with respect to $A$ is the same matrix in both layouts (it has $A$'s shape);
# the other two are transposed like the data. Here is `Linear`'s code:

# %%
print(inspect.getsource(G.Linear.forward))
print(inspect.getsource(G.Linear.backward))

# %% [markdown]
# We check {eq}`eq-linear-rows` and {eq}`eq-linear-columns` on numbers: a `Linear` node on a
# batch of $B = 5$ samples, an arbitrary upstream gradient $\bar Y_r$ passed as `grad=` to
# `backward` (for a non-scalar root, `backward` computes the vector-Jacobian product with
# `grad`), and the input marked `requires_grad=True` so that it receives a gradient too. We
# compare with the formulas, with central finite differences of $\sum_{ik} (\bar Y_r)_{ik}(Y_r)_{ik}$,
# and with `torch.autograd`.

# %%
rng = np.random.default_rng(SEED)
x = G.Input("x", value=rng.normal(size=(5, 3)), requires_grad=True)
lin = G.Linear(x, 3, 2, rng=rng, name="linear")
lin.b.value[:] = rng.normal(size=2)  # a non-zero bias (parameters change in place)
Y_bar = rng.normal(size=(5, 2))  # the upstream gradient dL/dY, shape (batch, out)
G.forward(lin)
G.backward(lin, grad=Y_bar)
A, X = lin.A.value, x.value

# row layout, eq-linear-rows
assert_allclose(x.grad, Y_bar @ A)
assert_allclose(lin.A.grad, Y_bar.T @ X)
assert_allclose(lin.b.grad, Y_bar.sum(axis=0))
# the same gradients in column layout (X_c = X.T, Ybar_c = Y_bar.T), eq-linear-columns
X_c, Y_bar_c = X.T, Y_bar.T
assert_allclose(x.grad.T, A.T @ Y_bar_c)
assert_allclose(lin.A.grad, Y_bar_c @ X_c.T)
assert_allclose(lin.b.grad, Y_bar_c.sum(axis=1))


def fd_linear(which):
    """Central differences of sum(Y_bar * Y) with respect to X, A or b."""

    def f(v):
        X_, A_, b_ = (
            v if which == k else d for k, d in (("X", X), ("A", A), ("b", lin.b.value))
        )
        return np.sum(Y_bar * (X_ @ A_.T + b_))

    return numerical_gradient(f, {"X": X, "A": A, "b": lin.b.value}[which])


Xt, At, bt = (torch.tensor(a, requires_grad=True) for a in (X, A, lin.b.value))
F.linear(Xt, At, bt).backward(torch.tensor(Y_bar))
for name, ours, fd, tg in [
    ("dL/dX", x.grad, fd_linear("X"), Xt.grad),
    ("dL/dA", lin.A.grad, fd_linear("A"), At.grad),
    ("dL/db", lin.b.grad, fd_linear("b"), bt.grad),
]:
    assert relative_error(ours, fd) < 1e-6 and relative_error(ours, tg.numpy()) < 1e-12
    print(
        f"{name} shape {str(ours.shape):<7} = formula = finite differences (rel. err < 1e-6) = torch.autograd (< 1e-12)"
    )

# %% [markdown]
# ## `Linear` replaces a Multiply node and an Add node
#
# The source assignment first builds the affine map from two nodes, a matrix **Multiply**
# $Z = XA^\top$ and a bias **Add** $Y = Z + \mathbf{1}b^\top$, and then replaces them by one `Linear`
# node. Writing a node takes a dozen lines; here are the two, in the notebook, as
# subclasses of `G.Node`:


# %%
class Multiply(G.Node):
    """Z = X @ A.T, with the parameter A (out, in)."""

    def __init__(self, x, A, name="multiply"):
        super().__init__(x, name=name)
        self.A = G.Parameter(A, f"{name}.A")
        self.params = [self.A]

    def forward(self):
        self.value = self.inputs[0].value @ self.A.value.T

    def backward(self):
        self.A.grad += self.grad.T @ self.inputs[0].value
        if self.inputs[0].grad is not None:
            self.inputs[0].grad += self.grad @ self.A.value


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
A0, b0 = (
    rng_demo.normal(size=(1, 2)),
    rng_demo.normal(size=1),
)  # shared parameter values
X_demo, y_demo = rng_demo.normal(size=(8, 2)), rng_demo.integers(0, 2, 8)

x1, y1 = G.Input("x", value=X_demo), G.Input("y", value=y_demo)
loss_two = G.BinaryCrossEntropy(G.Sigmoid(Add(Multiply(x1, A0.copy()), b0.copy())), y1)

x2, y2 = G.Input("x", value=X_demo), G.Input("y", value=y_demo)
linear = G.Linear(x2, 2, 1, rng=rng_demo, name="linear")
linear.A.value[:], linear.b.value[:] = A0, b0
loss_one = G.BinaryCrossEntropy(G.Sigmoid(linear), y2)

for loss in (loss_two, loss_one):
    G.forward(loss)
    G.backward(loss)
assert_allclose(loss_two.value, loss_one.value, rtol=1e-15)
for p_two, p_one in zip(G.parameters(loss_two), G.parameters(loss_one)):
    assert_allclose(p_two.grad, p_one.grad, rtol=1e-14)
    print(
        f"{p_two.name:<11} gradient {p_two.grad.round(4)} = {p_one.name:<8} gradient {p_one.grad.round(4)}"
    )
for name, loss in (("Multiply + Add", loss_two), ("Linear", loss_one)):
    print(
        f"{name:<15} graph: {' -> '.join(type(n).__name__ for n in G.topological_sort(loss))}"
    )
print(f"same loss: {float(loss_two.value):.4f} = {float(loss_one.value):.4f}")


# %% [markdown]
# The fused node computes exactly the same thing with one node fewer: one Python call less per
# step in each direction, one intermediate $B\times m$ array fewer, and one place to check
# shapes. Every framework fuses the affine map for these reasons (`torch.nn.Linear`).
#
# ## The gradient check: every node against finite differences and PyTorch
#
# `tests/test_graph.py` checks every node of the engine against central finite differences in
# float64 (relative error below $10^{-6}$) and against `torch.autograd` for the same
# operation. Here is the same check, for every node and loss of `course_utils.graph`: for a
# non-scalar node we differentiate $\sum (\text{upstream} \odot \text{value})$ with a random
# upstream array, for a loss the loss itself.

# %%
B_CHECK = 6
check_rng = np.random.default_rng(2)


def leaf(shape, scale=1.0, probabilities=False):
    """An Input that receives a gradient: normal values * scale, or probabilities in (0.05, 0.95)."""
    value = (
        check_rng.uniform(0.05, 0.95, size=shape)
        if probabilities
        else scale * check_rng.normal(size=shape)
    )
    return G.Input("leaf", value=value, requires_grad=True)


def check(node, leaves, torch_fn):
    """Gradients of a node's output (a scalar loss, or sum(upstream * value)) w.r.t. its leaves:
    the engine vs central finite differences and vs torch.autograd. Returns the two max relative errors."""
    G.forward(node)
    upstream = (
        None if np.ndim(node.value) == 0 else check_rng.normal(size=node.value.shape)
    )
    G.backward(node, grad=upstream)
    ours = [lf.grad.copy() for lf in leaves]

    def scalar(v, lf):
        old, lf.value = (
            lf.value,
            v,
        )  # rebinding is fine here: nothing else holds these arrays
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


def linear_case():
    x = leaf((B_CHECK, 3))
    lin = G.Linear(x, 3, 2, rng=check_rng, name="linear")
    lin.b.value[:] = check_rng.normal(size=2)
    return lin, [x, lin.A, lin.b], F.linear


def unary_case(node_cls, torch_fn, scale):
    z = leaf((B_CHECK, 3), scale)
    return node_cls(z), [z], torch_fn


labels = check_rng.integers(0, 4, B_CHECK)
y01 = check_rng.integers(0, 2, B_CHECK).astype(float)
onehot = torch.tensor(np.eye(4)[labels])
y01_t = torch.tensor(y01)[:, None]
z1, p1, z4a, z4b, pred, target = (
    leaf((B_CHECK, 1), 3),
    leaf((B_CHECK, 1), probabilities=True),
    leaf((B_CHECK, 4), 2),
    leaf((B_CHECK, 4), 2),
    leaf((B_CHECK, 2)),
    leaf((B_CHECK, 2)),
)
cases = {
    "Linear (dX, dA, db)": linear_case(),
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
print(
    f"{'node':<36}{'= finite differences (< 1e-6)':<32}{'= torch.autograd (< 1e-10)'}"
)
for name, case in cases.items():
    err_fd, err_torch = check(*case)
    assert err_fd < 1e-6 and err_torch < 1e-10, (name, err_fd, err_torch)
    print(f"{name:<36}{'yes':<32}{'yes'}")

# %% [markdown]
# Every gradient passes both checks. (We print pass/fail against the asserted tolerance, not the
# raw errors, whose last digits depend on the machine; the errors against finite differences
# are limited by the $O(\epsilon^2)$ truncation and $O(10^{-16}/\epsilon)$ rounding of the
# central difference, those against PyTorch by rounding alone.)
#
# ## Binary cross-entropy without overflow or log(0)
#
# For a probability $p = \sigma(z)$ and a label $y\in\{0, 1\}$, the binary cross-entropy is
# $\ell = -[y\log p + (1-y)\log(1-p)]$. Computed literally, it breaks for confident logits:
# $\sigma(40)$ rounds to exactly 1 in float64, so $\log(1-p) = \log 0 = -\infty$, and
# $\exp(800)$ overflows. Rewritten in terms of the logit it is stable for every $z$:
#
# $$
# \ell(z, y) = \log(1 + e^{z}) - yz = \max(z, 0) - yz + \log\left(1 + e^{-|z|}\right),
# \qquad \frac{\partial \ell}{\partial z} = \sigma(z) - y .
# $$ (eq-bce-logits)
#
# `BinaryCrossEntropy(p, y)` uses this form whenever `p` is a `Sigmoid` node, and sends the
# gradient $(\sigma(z) - y)/B$ straight to the logits (the sigmoid's own factor $\sigma(1-\sigma)$
# underflows to 0 at large $|z|$, which would silently stop learning on confident mistakes).
# The loss is averaged over the batch.

# %%
z_extreme = np.array([[-800.0], [-40.0], [0.0], [40.0], [800.0]])
y_extreme = np.array([1.0, 1.0, 1.0, 0.0, 0.0])  # the last two: confidently wrong
with np.errstate(all="ignore"):
    p_naive = 1 / (1 + np.exp(-z_extreme[:, 0]))
    naive = -(y_extreme * np.log(p_naive) + (1 - y_extreme) * np.log(1 - p_naive))
z_in = G.Input("z", value=z_extreme, requires_grad=True)
bce = G.BinaryCrossEntropy(G.Sigmoid(z_in), y_extreme)
with np.errstate(
    over="raise", divide="raise", invalid="raise"
):  # any overflow or log(0) would raise
    G.forward(bce)
    G.backward(bce)
zt = torch.tensor(z_extreme, requires_grad=True)
loss_t = F.binary_cross_entropy_with_logits(zt, torch.tensor(y_extreme)[:, None])
loss_t.backward()
assert_allclose(float(bce.value), loss_t.item(), rtol=1e-12)
assert_allclose(z_in.grad, zt.grad.numpy(), rtol=1e-12)
print("logit z            :", z_extreme[:, 0])
print("naive per-sample   :", naive)
print(f"stable batch mean  : {float(bce.value):.2f} (torch: {loss_t.item():.2f})")
print("dL/dz              :", z_in.grad[:, 0])

# %% [markdown]
# The literal formula returns `inf` for the two confident mistakes and `nan` for $z = -800$
# ($0\cdot\log 0$); the stable form gives the exact mean $(800 + 0 + \log 2 + 40 + 800)/5$,
# the same as PyTorch's `binary_cross_entropy_with_logits`, and the bounded gradient
# $(\sigma(z) - y)/B = \pm 0.2$ on the mistakes.
#
# ## The data: two Gaussian classes
#
# Logistic regression is the graph Input → Linear → Sigmoid → BCE. We train it on a
# generated, seeded two-class problem in the plane: class $c\in\{0, 1\}$ (equally likely) has
# points $x\sim\mathcal{N}(\mu_c, I)$ with $\mu_0 = (-0.5, 2)$ and $\mu_1 = (1.5, 0.5)$.
# Because both classes share the covariance $I$, the **Bayes-optimal** classifier (the best
# any classifier can do) is linear: predict class 1 when $w^\top x + c > 0$ with
# $w = \mu_1 - \mu_0$ and $c = -w^\top(\mu_0 + \mu_1)/2$. Its error rate is $\Phi(-\|\mu_1 -
# \mu_0\|/2) = \Phi(-1.25)$, so no model can be right more than about 89.4 % of the time.
# Logistic regression is well specified here: its best parameters are the Bayes rule's.
#
# The training set has `N_TRAIN` = 2048 points: large enough for a batch of 1024 to be a
# real minibatch (two updates per epoch), small enough that 50 epochs at batch size 1
# (102 400 single-sample updates in Python) fit the chapter's time budget. The held-out
# test set has 10 000 points, so that a test accuracy has a standard error of about 0.3
# percentage points.

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

w_bayes = MU[1] - MU[0]
c_bayes = -w_bayes @ MU.sum(axis=0) / 2
bayes_acc_theory = norm.cdf(np.linalg.norm(w_bayes) / 2)
bayes_acc_train = np.mean((X_train @ w_bayes + c_bayes > 0) == y_train)
bayes_acc_test = np.mean((X_test @ w_bayes + c_bayes > 0) == y_test)
print(
    f"train {X_train.shape}, test {X_test.shape}, class-1 fraction: train {y_train.mean():.3f}, test {y_test.mean():.3f}"
)
print(
    f"Bayes-optimal accuracy: {bayes_acc_theory:.2%} in theory, {bayes_acc_train:.2%} on the training set, "
    f"{bayes_acc_test:.2%} on the test set"
)

# %%
fig, ax = plt.subplots(figsize=(5, 4.2))
for c, marker in ((0, "o"), (1, "s")):
    ax.scatter(
        *X_train[y_train == c].T, s=6, marker=marker, alpha=0.5, label=f"class {c}"
    )
xs = np.linspace(X_train[:, 0].min(), X_train[:, 0].max(), 2)
ax.plot(
    xs, -(w_bayes[0] * xs + c_bayes) / w_bayes[1], "k--", label="Bayes-optimal boundary"
)
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
# training curve below: writing $\tilde x = (x, 1)$ and $\theta = (A, b)$, the gradient is
# $\frac1N\sum_i (\sigma(\theta^\top\tilde x_i) - y_i)\tilde x_i$ and the Hessian
# $H = \frac1N\sum_i \sigma_i(1-\sigma_i)\tilde x_i\tilde x_i^\top$.

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
assert (
    np.linalg.norm(X_tilde.T @ (1 / (1 + np.exp(-z_opt)) - y_train)) / N_TRAIN < 1e-12
)
print(
    f"minimum training loss {LOSS_OPT:.4f} at A = {theta[:2].round(3)}, b = {theta[2]:.3f} "
    f"(Bayes rule direction: {w_bayes}, offset {c_bayes:.3f})"
)

# %% [markdown]
# ## Training one sample at a time
#
# Stochastic gradient descent in its purest form: visit the training points in a random order
# and, after each one, move every parameter against its gradient, $\theta \leftarrow \theta -
# \eta\,\nabla_\theta \ell$. With the engine, one update is four lines: set the inputs, `forward`,
# `backward`, and subtract `lr * grad` from every parameter **in place** (the `Parameter`
# arrays must never be rebound, because optimizers keep references to them).


# %%
@dataclass
class Model:
    x: G.Input
    y: G.Input
    p: G.Node
    loss: G.Node
    params: list


def build_model(init_seed=SEED):
    """Input -> Linear -> Sigmoid -> BCE. The same init_seed gives the same initial parameters."""
    x, y = G.Input("x"), G.Input("y")
    logits = G.Linear(
        x, 2, 1, init="xavier", rng=np.random.default_rng(init_seed), name="linear"
    )
    p = G.Sigmoid(logits, name="p")
    loss = G.BinaryCrossEntropy(p, y, name="bce")
    return Model(x, y, p, loss, G.parameters(loss))


def evaluate(model, X, y):
    """(mean BCE, accuracy) of the model on (X, y)."""
    model.x.value, model.y.value = X, y
    loss = float(G.forward(model.loss))
    return loss, float(np.mean((model.p.value[:, 0] > 0.5) == y))


model = build_model()
print(
    "parameters:",
    [p.name for p in model.params],
    "| initial A:",
    model.params[0].value,
    "b:",
    model.params[1].value,
)
print(f"epoch 0: training loss {evaluate(model, X_train, y_train)[0]:.4f}")
shuffle_rng = np.random.default_rng(SEED)
for epoch in range(1, 4):
    for i in shuffle_rng.permutation(N_TRAIN):
        model.x.value, model.y.value = (
            X_train[i : i + 1],
            y_train[i : i + 1],
        )  # a batch of one: shape (1, 2)
        G.forward(model.loss)
        G.backward(model.loss)
        for prm in model.params:
            prm.value -= LR * prm.grad
    print(f"epoch {epoch}: training loss {evaluate(model, X_train, y_train)[0]:.4f}")

# %% [markdown]
# After one epoch (2048 updates) the loss is already close to the minimum printed above.
#
# ## Training in batches
#
# A **minibatch** of $B$ samples replaces the one-sample gradient by the average over the
# batch (the BCE node averages over the batch, so its gradient is the batch mean of the
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
    """Minibatch SGD on (X_train, y_train) for num_epochs epochs, or until num_updates updates.

    Returns the model and a DataFrame with one row per epoch (row 0: before training):
    epoch, updates so far, training loss (whole training set) and the epoch's wall-clock seconds.
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


for batch_size in (1, 64):
    _, hist = train(batch_size, LR, num_epochs=3)
    print(
        f"batch size {batch_size:>2}: training loss after epochs 0-3:",
        hist["train_loss"].round(4).tolist(),
        f"({hist['updates'].iloc[-1]} updates)",
    )

# %% [markdown]
# `train(1, ...)` reproduces the loop above exactly (same initial parameters, same shuffles). With
# batches of 64 the loss falls much more slowly **per epoch**: 3 epochs are only 96 updates.
# Whether that is a bad trade depends on what an update costs, which is the subject of the
# study.
#
# ## The batch-size study
#
# The source assignment's setup: batch sizes 1, 4, 8, 16, 64, 128, 256, 512 and 1024, 50 epochs
# each, learning rate 0.03, the same initial parameters and the same shuffling seed for every
# run.

# %%
study = {}
for batch_size in tqdm(BATCH_SIZES, desc="batch sizes"):
    study[batch_size] = train(batch_size, LR)

rows = []
for batch_size, (model, hist) in study.items():
    train_loss, train_acc = evaluate(model, X_train, y_train)
    test_loss, test_acc = evaluate(model, X_test, y_test)
    reached = hist[hist["train_loss"] <= 1.01 * LOSS_OPT]
    rows.append(
        {
            "batch size": batch_size,
            "updates": int(hist["updates"].iloc[-1]),
            "epochs to min+1%": int(reached["epoch"].iloc[0])
            if len(reached)
            else "never",
            "updates to min+1%": int(reached["updates"].iloc[0])
            if len(reached)
            else "never",
            "train loss": train_loss,
            "test loss": test_loss,
            "train acc": train_acc,
            "test acc": test_acc,
        }
    )
results = pd.DataFrame(rows)
print(
    results.to_string(
        index=False,
        formatters={
            "train loss": "{:.4f}".format,
            "test loss": "{:.4f}".format,
            "train acc": "{:.1%}".format,
            "test acc": "{:.1%}".format,
        },
    )
)
print(
    f"\nminimum training loss {LOSS_OPT:.4f}; Bayes-optimal accuracy: train {bayes_acc_train:.1%}, test {bayes_acc_test:.1%}"
)
print(
    "('epochs to min+1%': the first epoch after which the training loss is within 1 % of the minimum;"
    " 'updates to min+1%': the number of updates made by then)"
)
reached_updates = [u for u in results["updates to min+1%"].iloc[1:] if u != "never"]
assert max(reached_updates) <= 1.1 * min(
    reached_updates
)  # B = 4 ... 64: the same number of updates

# %%
fig, (ax_e, ax_u) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
colors = plt.get_cmap("viridis")(np.linspace(0, 0.95, len(BATCH_SIZES)))
for color, (batch_size, (_, hist)) in zip(colors, study.items()):
    ax_e.plot(hist["epoch"], hist["train_loss"], color=color, label=f"B = {batch_size}")
    ax_u.plot(
        hist["updates"][1:],
        hist["train_loss"][1:],
        color=color,
        label=f"B = {batch_size}",
    )
for ax in (ax_e, ax_u):
    ax.axhline(LOSS_OPT, color="k", ls=":", lw=1, label="minimum")
ax_e.set(
    xlabel="epoch",
    ylabel="training loss (mean BCE, whole training set)",
    title="Loss per epoch",
)
ax_u.set(
    xlabel="number of updates (log scale)",
    xscale="log",
    title="The same runs against the number of updates",
)
ax_e.legend(ncol=2, fontsize=8)
plt.show()

# %% [markdown]
# Read the two panels together.
#
# * **Per epoch** (left), the small batches win: batch sizes 1 to 16 get within 1 % of the
#   minimum in 1 to 12 epochs, 64 only after 48, and 128 and above not in 50; after 50 epochs
#   the loss of batch size 1024 is still about 30 % above the minimum (table above).
# * **Per update** (right), the curves lie on top of each other: after the same number of
#   updates, every batch size has reached about the same loss. A batch of 1024 computes a much
#   better estimate of the gradient than a batch of 1, but at this learning rate a better
#   estimate buys almost nothing: the progress per update is limited by the step size, not by
#   the noise. The table puts a number on it: batch sizes 4 to 64 all needed the same number
#   of updates to get within 1 % of the minimum, so the number of epochs they needed grew in
#   proportion to $B$. (Batch size 1 got there within its first epoch, the table's resolution.)
# * Batch size 1 is the only curve that keeps **jittering** around the minimum: a step computed
#   from a single sample is noisy enough to be visible in the loss, and its final training loss
#   is a little above that of batch sizes 4 to 16.
#
# So in this setup the batch size changes the *number of updates per epoch* and little else.
# The control experiment below tests that reading directly.

# %% [markdown]
# ### Test accuracy and generalization
#
# The test accuracy hardly moves with the batch size. Below: its range, the train-test gaps,
# and how different the classifiers really are, counted as the test points on which two
# models disagree.


# %%
def predict(model, X):
    model.x.value = X
    return (G.forward(model.p)[:, 0] > 0.5).astype(int)  # forward(p) needs no labels


test_preds = {b: predict(m, X_test) for b, (m, _) in study.items()}
bayes_pred = (X_test @ w_bayes + c_bayes > 0).astype(int)
print(
    f"test accuracy: min {results['test acc'].min():.1%}, max {results['test acc'].max():.1%}; "
    f"Bayes rule {bayes_acc_test:.1%}; standard error of one accuracy "
    f"{math.sqrt(bayes_acc_test * (1 - bayes_acc_test) / N_TEST):.1%}"
)
print(
    "generalization gap (train acc - test acc):",
    ", ".join(
        f"B={b}: {g:+.1%}"
        for b, g in zip(
            results["batch size"], results["train acc"] - results["test acc"]
        )
    ),
)
print(f"the Bayes rule itself: {bayes_acc_train - bayes_acc_test:+.1%}")
print(
    f"{'batch size':>10} | test points (of {N_TEST}) classified differently from B = 1 | from the Bayes rule"
)
for b in BATCH_SIZES:
    print(
        f"{b:>10} | {np.sum(test_preds[b] != test_preds[1]):>50} | {np.sum(test_preds[b] != bayes_pred):>19}"
    )

# %% [markdown]
# ### Decision boundaries and confusion matrices
#
# The boundaries of batch sizes 1, 64, 256 and 1024, over the first 1000 test points, with the
# Bayes-optimal boundary dashed:

# %%
SHOWN = [1, 64, 256, 1024]
fig, axes = plt.subplots(1, len(SHOWN), figsize=(14, 3.8), sharey=True)
for ax, b in zip(axes, SHOWN):
    m = study[b][0]
    plots.decision_boundary(
        lambda grid, m=m: predict(m, grid),
        X_test[:1000],
        y_test[:1000],
        ax=ax,
        resolution=200,
        title=f"B = {b}: test acc {results.set_index('batch size').loc[b, 'test acc']:.1%}",
    )
    ax.plot(xs, -(w_bayes[0] * xs + c_bayes) / w_bayes[1], "k--", lw=1, label="Bayes")
    ax.set_xlim(X_test[:1000, 0].min() - 0.5, X_test[:1000, 0].max() + 0.5)
    ax.set_ylim(X_test[:1000, 1].min() - 0.5, X_test[:1000, 1].max() + 0.5)
axes[0].legend(loc="upper right")
fig.suptitle(
    "Decision boundaries after 50 epochs (shading: predicted class; points: 1000 test points)"
)
plt.show()

# %%
fig, axes = plt.subplots(1, len(SHOWN), figsize=(15, 3.4))
print(
    f"{'batch size':>10} | test confusion counts [[true 0 -> 0, 0 -> 1], [1 -> 0, 1 -> 1]]"
)
for ax, b in zip(axes, SHOWN):
    _, cm = plots.confusion_matrix(
        y_test,
        test_preds[b],
        ["class 0", "class 1"],
        normalize=False,
        ax=ax,
        title=f"B = {b} (test set, counts)",
    )
    print(f"{b:>10} | {cm.astype(int).tolist()}")
plt.show()

# %% [markdown]
# All test accuracies lie between 88.9 % and 89.1 %, within one standard error (0.3 points) of
# the Bayes rule's 89.1 %. The classifiers are not identical, though: the larger the batch, the
# more test points it classifies differently from the Bayes rule (a few dozen for batch sizes
# 4 to 64, over 300 for 1024). The boundaries show why. For small batches they lie almost on
# the Bayes-optimal line; for 1024 the boundary is visibly shifted towards class 1, because its
# bias, which starts at 0 and should grow to about 1, has had only 100 small updates. The
# confusion matrices say the same in numbers: for batch sizes 1 and 64 the errors are split
# about evenly between the classes, for 1024 it misses class 1 almost twice as often as class 0.
# The shifted points lie near the boundary, where either answer is right about half of the
# time, so they cost only 0.1 to 0.2 points of accuracy. The train-test gaps (0.7 to 1.7 points)
# are no larger than the Bayes rule's own 2.0 points: this training sample simply happens to be
# a little easier than the test sample. The largest batch has the *smallest* gap because it
# fits the training set least.
#
# ## Wall-clock time per epoch: does batching pay on a CPU?
#
# The study timed every epoch. The times below come from this machine and change from run to
# run; the conclusions drawn from them hold by large margins (and are asserted).

# %% tags=["nbval-ignore-output"]
epoch_seconds = pd.Series(
    {b: hist["seconds"].iloc[1:].median() for b, (_, hist) in study.items()}
)
updates_per_epoch = pd.Series({b: math.ceil(N_TRAIN / b) for b in BATCH_SIZES})
step_us = 1e6 * epoch_seconds / updates_per_epoch
print(
    pd.DataFrame(
        {
            "median s/epoch": epoch_seconds.map("{:.4f}".format),
            "updates/epoch": updates_per_epoch,
            "µs per update": step_us.map("{:.1f}".format),
            "speed-up vs B=1": (epoch_seconds[1] / epoch_seconds).map("{:.0f}x".format),
        }
    ).to_string()
)
assert epoch_seconds[1] > 20 * epoch_seconds[1024]

# %% [markdown]
# An update costs roughly the same number of microseconds at every batch size in the study
# (the spread between rows is mostly timing noise): the per-update cost is the fixed overhead of some fifty small NumPy calls and Python
# bookkeeping, not arithmetic (the model has three parameters). So the time per epoch is
# roughly proportional to the number of updates per epoch, $\lceil N/B\rceil$, and batching pays
# almost linearly across the whole range of the study. Where does it stop paying? When the
# arithmetic per sample, not the overhead per update, dominates. To find that point we time one
# training step at batch sizes beyond the training set (points drawn with replacement), best
# of several repeats:

# %% tags=["nbval-ignore-output"]
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


step_seconds = pd.Series({b: seconds_per_step(b) for b in TIMING_BATCH_SIZES})
per_sample_ns = 1e9 * step_seconds / step_seconds.index
# model: time per step = overhead + cost per sample * B, fitted by least squares in relative error
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
print(
    f"fit: {1e6 * overhead_s:.1f} µs per step + {1e9 * per_sample_s:.2f} ns per sample; "
    f"the two are equal at B = {overhead_s / per_sample_s:.0f}"
)
assert per_sample_ns[1] > 50 * per_sample_ns[1024]  # batching pays by far up to 1024
assert (
    per_sample_ns[TIMING_BATCH_SIZES[-2]] < 3 * per_sample_ns[TIMING_BATCH_SIZES[-1]]
)  # and then stops

# %%
fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(11, 4))
ax_t.loglog(
    epoch_seconds.index,
    epoch_seconds.values,
    "o-",
    label="measured (median of 50 epochs)",
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
# halves the number of steps, and the time per epoch stops improving. The crossover is far
# beyond every batch size of the study because this model is tiny: the arithmetic per sample
# is a handful of multiplications. For a network with real matrix products per sample the
# overhead is amortized at much smaller batches (exercise 3), and on a GPU, whose fixed cost
# per operation is much larger and whose arithmetic is much faster, at much larger ones.
#
# ## Memory
#
# Memory per update grows linearly with the batch: every node stores a `(B, features)` value,
# and the backward pass a gradient of the same shape. We add up what the graph holds after one
# `forward` and `backward` (the parameters are a constant 24 bytes). For comparison, the same
# count for chapter 5's 784-128-128-10 network in float32:


# %%
def graph_bytes(root):
    """Bytes of the values and gradients held by the nodes of a graph, after forward + backward."""
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
    return (
        x,
        y,
        G.SoftmaxCrossEntropy(
            G.Linear(h, 128, 10, rng=rng, dtype=dtype, name="fc3"), y
        ),
    )


logreg = build_model()
mlp_x, mlp_y, mlp = mlp_loss()
print(
    f"{'batch size':>10} | {'logistic regression':>20} | {'784-128-128-10 MLP, float32':>28}"
)
for b in (1, 64, 1024):
    logreg.x.value, logreg.y.value = X_train[:b], y_train[:b]
    mlp_x.value = rng.random((b, 784), dtype=np.float32)
    mlp_y.value = rng.integers(0, 10, b)
    for loss in (logreg.loss, mlp):
        G.forward(loss)
        G.backward(loss)
    print(
        f"{b:>10} | {graph_bytes(logreg.loss) / 1024:>17.1f} KiB | {graph_bytes(mlp) / 1024:>25.1f} KiB"
    )

# %% [markdown]
# Logistic regression holds 56 bytes per sample (two float64 features, the label, the logit
# and the probability, and two gradients): even a batch of 1024 needs only 56 KiB, so memory
# is no constraint here. The MLP holds about 7 KiB per sample (the 784 input pixels, four
# 128-wide activations with their gradients, and the logits): a batch of 1024 needs about
# 7 MiB, still small for a CPU. The same count for a large network is what limits the batch
# size on a GPU.
#
# ## Stability: the noise of a minibatch gradient
#
# A minibatch gradient is an average of $B$ per-sample gradients drawn from the training set,
# so its deviation from the full-batch gradient $g$ shrinks like $1/B$: for $B$ samples drawn
# without replacement from $N$,
#
# $$
# \mathbb{E}\,\lVert g_B - g\rVert^2 = \frac{\operatorname{tr}\Sigma}{B}\cdot\frac{N - B}{N - 1},
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
assert_allclose(
    per_sample.mean(axis=0), g_full, rtol=1e-12
)  # the batch gradient is the mean of per-sample ones
trace_sigma = np.sum(per_sample.var(axis=0))
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
print(f"|g|^2 = {g_full @ g_full:.4f}, tr(Sigma) = {trace_sigma:.4f}")
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
assert np.all(
    np.abs(noise["measured / predicted"] - 1) < 0.3
)  # 200 draws: within sampling error

# %% [markdown]
# The measured noise follows {eq}`eq-minibatch-noise` within the sampling error of 200 draws, from
# $B = 1$, where it is about five times the squared length of the gradient itself, to
# $B = 1024$, where it is some 2000 times smaller than at $B = 1$ (the factor $(N-B)/(N-1)$
# halves it once more at $B = N/2$). Larger batches give smoother, more
# reliable steps; whether that matters depends on the learning rate, because the step's noise
# is $\eta$ times the gradient noise. At $\eta = 0.03$ it did not matter (the loss-per-update
# curves collapsed). The two experiments below test both sides of that statement.
#
# ## Control: the same number of updates for every batch size
#
# After 50 epochs the large batches had made far fewer updates. Is their higher loss due to the
# batch size or to the number of updates? We give every batch size the same budget of
# `CONTROL_UPDATES` = 100 updates (what batch size 1024 made in 50 epochs) and repeat each run
# with 5 different shuffles, keeping the initial parameters fixed.

# %%
control_rows = []
for b in tqdm(BATCH_SIZES, desc="control"):
    runs = [
        train(b, LR, num_epochs=None, num_updates=CONTROL_UPDATES, shuffle_seed=s)
        for s in range(CONTROL_SEEDS)
    ]
    losses = np.array([hist["train_loss"].iloc[-1] for _, hist in runs])
    test_accs = np.array([evaluate(m, X_test, y_test)[1] for m, _ in runs])
    control_rows.append(
        {
            "batch size": b,
            "samples seen": CONTROL_UPDATES * b,
            "train loss (mean)": losses.mean(),
            "(std over shuffles)": losses.std(),
            "test acc (mean)": test_accs.mean(),
        }
    )
control = pd.DataFrame(control_rows)
print(f"every run: {CONTROL_UPDATES} updates at lr = {LR}")
print(
    control.to_string(
        index=False,
        formatters={
            "train loss (mean)": "{:.4f}".format,
            "(std over shuffles)": "{:.4f}".format,
            "test acc (mean)": "{:.1%}".format,
        },
    )
)
means, stds = (
    control.set_index("batch size")["train loss (mean)"],
    control.set_index("batch size")["(std over shuffles)"],
)
assert (
    means.loc[4:].max() - means.loc[4:].min() < 0.001
)  # B >= 4: the same loss after the same updates
assert (
    means[1] > means.loc[4:].max() and stds[1] > 10 * stds[1024]
)  # B = 1: a little behind, and much noisier

# %% [markdown]
# With the number of updates held fixed, the batch size makes no difference to the mean loss
# from $B = 4$ to $B = 1024$ (0.3050 to 0.3053): a batch of 4 after 100 updates (400 samples
# seen) is exactly as far along as a batch of 1024 after 100 updates (102 400 samples seen).
# Only $B = 1$ is a little behind, by about one standard deviation of its own spread. What a
# larger batch buys is a smaller spread between shuffles (the std column falls with $B$), the
# gradient noise of the previous section. So the gap in the 50-epoch table is a gap in the
# **number of updates**, and in this regime small batches are far more **sample-efficient**: a
# batch of 1024 spends 1024 samples on a step that 4 samples do as well. (In the terms of
# {cite}`ch01-shallue2019measuring`, the *critical batch size* beyond which larger batches stop
# reducing the number of updates needed is tiny at this learning rate.)
#
# ## The linear learning-rate scaling rule
#
# If the step size, not the noise, limits progress, a large batch should take larger steps. The
# **linear scaling rule** {cite}`ch01-goyal2017accurate` says: when the batch size is multiplied by
# $k$, multiply the learning rate by $k$. Its argument: $k$ small-batch steps of size $\eta$ move
# the parameters by about the same amount as one step of size $k\eta$ on the union of the $k$
# batches, as long as the gradient changes little over those $k$ steps. We test it: learning
# rate $\eta_B = 0.03\,B$ (batch size 1 keeps 0.03), 50 epochs.

# %%
scaled = {1: study[1]}
for b in tqdm(BATCH_SIZES[1:], desc="scaled lr"):
    scaled[b] = train(b, LR * b)
scaled_rows = []
for b, (m, hist) in scaled.items():
    last10 = hist["train_loss"].iloc[-10:]
    scaled_rows.append(
        {
            "batch size": b,
            "lr": LR * b,
            "train loss": hist["train_loss"].iloc[-1],
            "last 10 epochs: min": last10.min(),
            "max": last10.max(),
            "peak loss": hist["train_loss"].max(),
            "test acc": evaluate(m, X_test, y_test)[1],
        }
    )
scaled_table = pd.DataFrame(scaled_rows)
print(
    scaled_table.to_string(
        index=False,
        formatters={
            "lr": "{:.2f}".format,
            "train loss": "{:.4f}".format,
            "last 10 epochs: min": "{:.4f}".format,
            "max": "{:.4f}".format,
            "peak loss": "{:.4f}".format,
            "test acc": "{:.1%}".format,
        },
    )
)

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
for color, (b, (_, hist)) in zip(colors, scaled.items()):
    ax.plot(
        hist["epoch"],
        hist["train_loss"],
        color=color,
        label=f"B = {b}, lr = {LR * b:g}",
    )
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
# Up to a batch size of 128 ($\eta = 3.84$) the rule works: in the same 50 epochs every run gets
# within 1 % of the minimum and then jitters around it as batch size 1 does (the last-10-epochs
# columns), with up to 128 times fewer updates, so (timing section) in a small fraction of the
# time. From 256 on it fails: at $\eta = 7.68$ the loss jumps between 0.235 and 0.288 over the
# last 10 epochs instead of settling, and at 15.4 and 30.7 it swings far above the initial loss,
# with test accuracies down to 78.6 %. Why there? Gradient descent on a function with curvature $\lambda$ along some
# direction is stable only if $\eta < 2/\lambda$; the relevant curvature is the largest
# eigenvalue of the Hessian $H$ of the training loss (defined above, with the Newton solution):

# %%
lam_init = np.linalg.eigvalsh(
    bce_hessian(np.r_[build_model().params[0].value.ravel(), 0.0])
).max()
lam_opt = np.linalg.eigvalsh(bce_hessian(theta)).max()
print(
    f"largest Hessian eigenvalue: {lam_init:.3f} at the initial parameters, {lam_opt:.3f} at the minimum"
)
print(
    f"stability limit 2/lambda: {2 / lam_init:.2f} at the start, {2 / lam_opt:.2f} at the minimum"
)
print(
    f"-> with lr = {LR} B, the limit at the minimum is crossed above B = {2 / lam_opt / LR:.0f}"
)
ok = scaled_table[scaled_table["lr"] < 2 / lam_init]
fail = scaled_table[scaled_table["lr"] > 2 / lam_opt]
assert np.all(ok["last 10 epochs: min"] < LOSS_OPT * 1.01) and np.all(
    ok["max"] < LOSS_OPT * 1.03
)  # converged
assert np.all(
    fail["max"] - fail["last 10 epochs: min"] > 0.2
)  # beyond the limit: no convergence
assert np.all(
    fail["peak loss"] > scaled_table["peak loss"].iloc[0]
)  # and above the initial loss

# %% [markdown]
# The curvature is largest where the model is still uncertain (the factor $\sigma(1-\sigma)$ is
# largest at $\sigma = 1/2$), so the stability limit is smallest at the start, 3.3, and 8.1 at
# the minimum. Batch sizes up to 64 stay below both limits and converge; 128 starts above the
# first limit and still converges, because the curvature falls as the model becomes confident.
# At 256 the learning rate is just below the limit at the minimum: the iterates are pulled back
# only weakly along the steepest direction, and the minibatch noise, multiplied by a learning
# rate of 7.68, keeps them jumping. At 512 and 1024 the learning rate is above the limit even at
# the minimum, and the runs cannot converge. This is the general picture of the rule: it holds
# up to a problem-dependent batch size and then fails {cite}`ch01-goyal2017accurate,ch01-shallue2019measuring`.
# Goyal et al. combine it with a *warm-up* (a learning rate that grows over the first epochs, to
# pass the high-curvature start) and with learning-rate decay; exercise 4 tries both here.
#
# ## What batching changes: answers from this chapter's measurements
#
# **Efficiency.** On this CPU an update's cost is almost all fixed overhead, so an epoch takes
# time roughly proportional to the number of updates, and larger batches make epochs faster by
# nearly the factor $B$, up to batches in the thousands (timing section). Per *sample*, though,
# small batches learn more: in the control, 400 samples at $B = 4$ did as much as 102 400
# samples at $B = 1024$.
#
# **Stability.** The minibatch gradient's noise falls like $1/B$ (measured, and predicted by
# {eq}`eq-minibatch-noise`), and the spread between runs with different shuffles falls with
# it (control table). At a small learning rate this hardly shows in the loss curves; at a large
# one it decides whether a run converges (batch size 256 with the scaled learning rate).
#
# **Memory.** Linear in $B$: 56 bytes per sample for logistic regression, about 7 KiB per sample
# for the 784-128-128-10 network. Irrelevant here; the usual upper limit on $B$ on a GPU.
#
# **Convergence speed.** Per epoch, small batches converge fastest (batch sizes 1 to 16 get
# within 1 % of the minimum in a few epochs; 128 and above not in 50). Per update, batch sizes
# from 4 to 1024 converge at exactly the same speed at $\eta = 0.03$, and batch size 1 almost.
# Per second, at a fixed learning rate, it is roughly a draw up to $B = 64$: the same number of
# updates at about the same cost each. Large batches win per second only when the learning
# rate is scaled up with them, which works until the learning rate hits the curvature's
# stability limit (here between $B = 128$ and $B = 256$).
#
# **Generalization.** Not measurably affected. Every batch size's test accuracy is within one
# standard error of the Bayes-optimal accuracy; the train-test gaps are no larger than the Bayes
# rule's own, and smallest for the largest batch; and what does distinguish the large batches
# (a boundary still on its way to the minimum) is under-training, which the equal-updates
# control shows to be a matter of the number of updates. The common claim that large batches generalize worse
# {cite}`ch01-keskar2017largebatch` does not show on this problem, and should not: it is about deep
# networks, whose non-convex losses have many minima, some sharp and some flat, and small-batch
# noise is argued to steer towards flat ones. Logistic regression has a convex loss with a
# single minimum and three parameters fitted from 2048 points; every batch size that trains long
# enough reaches the same minimum, and there is nothing to overfit. Chapter 5 revisits the
# question with a network that can overfit {cite}`ch01-masters2018revisiting,ch01-shallue2019measuring`.
#
# ## Summary
#
# * A reverse-mode autodiff engine is a list of nodes with a forward and a backward rule each,
#   a topological sort, and two loops. Gradients **accumulate** (`+=`) because a value used
#   twice receives the sum of its consumers' gradients.
# * The book stores samples as **rows**, `(batch, features)`, as PyTorch does; the linear layer's
#   gradients are then $\bar Y A$, $\bar Y^\top X$ and the column sums of $\bar Y$, the transposes
#   of the column-layout $A^\top\bar Y$, $\bar Y X^\top$ and $\bar Y\mathbf 1$.
# * Every gradient of the engine agrees with central finite differences (relative error below
#   $10^{-6}$) and with `torch.autograd`; the binary cross-entropy is computed from the logits,
#   finite at any logit.
# * In the batch-size study, the batch size changed the number of updates per epoch and the
#   gradient noise; with a learning rate of 0.03 progress depended on the number of updates
#   alone (from $B = 4$ on), so small batches won per epoch and per sample. Per second it was a
#   draw at a fixed learning rate (the same updates at nearly the same cost each); large batches
#   win per second only with a larger learning rate. Scaling the
#   learning rate linearly with the batch size made batches up to 128 as good per epoch as
#   batch size 1, and failed beyond the curvature's stability limit $2/\lambda_{\max}$.
# * Test accuracy did not depend on the batch size: on a convex, well-specified problem there is
#   no sharp or flat minimum to choose between.
#
# ## Exercises
#
# ```{exercise}
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
# `numerical_gradient(lambda v: np.sum(U * v**2), Z)`. The code cell after the exercises runs this check.
# ````
#
# ```{exercise}
# :label: ex-graph-layout
#
# A column-layout text gives the gradient of $y = \tanh(Ax + b)$ with respect to $A$ as
# $\big((1 - y\odot y)\odot\bar y\big)\,x^\top$ for one sample. Translate it to the row layout for a
# batch $X$ ($B\times n$) with upstream gradient $\bar Y$ ($B\times m$), and say which engine nodes
# compute each factor.
# ```
#
# ```{solution} ex-graph-layout
# :class: dropdown
#
# With $Y = \tanh(XA^\top + \mathbf 1b^\top)$, the `Tanh` node's backward gives
# $\bar Z = (1 - Y\odot Y)\odot\bar Y$ (elementwise, the same in both layouts), and the `Linear`
# node's backward gives $\partial L/\partial A = \bar Z^\top X$, which for $B = 1$ is the
# column formula's outer product $\bar z\,x^\top$ with $\bar z = \bar Z^\top$, $x = X^\top$. For a
# batch the sum over samples comes from the matrix product. Checked in the code cell below.
# ```
#
# ```{exercise}
# :label: ex-graph-crossover
#
# The timing section found that batching stops paying for logistic regression only at batches
# in the thousands. Time one training step of chapter 5's 784-128-128-10 network (built with
# the engine as in the memory section, float32) for batch sizes 1, 4, 16, 64, 256 and 1024, and
# find where the time per sample stops falling. Why is it so much earlier?
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
# that point the time per sample is set by the matrix-product throughput of the CPU. The code cell below
# measures it (its output is not shown because it depends on the machine).
# ```
#
# ```{exercise}
# :label: ex-graph-warmup
#
# With the scaled learning rate $0.03\,B$, try two schedules for $B = 256$, 512 and 1024:
# (a) a linear **warm-up**, the learning rate growing from 0.03 to $0.03\,B$ over the first 5
# epochs; (b) a **decay**, the learning rate divided by 10 for the last 10 epochs. Which one
# rescues which batch size? Explain with the two stability limits of the scaling section.
# ```
#
# ```{solution} ex-graph-warmup
# :class: dropdown
#
# The warm-up changes nothing at the end: $B = 256$ finishes at exactly the same loss as with a
# constant learning rate. Constant-step SGD forgets where it started; its final loss is set by
# the last steps, where a learning rate of 7.68, just under the limit at the minimum (about
# 8.1), amplifies the minibatch noise. The trouble at 256 is at the end, not at the start. The
# decay attacks exactly that: after it the learning rates (0.77 and 1.5) are far below the
# limit, and 10 epochs bring $B = 256$ to the minimum and $B = 512$ within a few percent of it.
# $B = 1024$ is not rescued: at 30.7 its learning rate was almost four times the limit for 40
# epochs, so it starts the last 10 epochs far from the minimum with only 20 updates left. The
# code cell below runs all three schedules (a variant of `train` whose learning rate depends on
# the fractional epoch) and checks these statements.
# ```
#
# The solutions, checked:


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
assert (
    relative_error(z_sq.grad, numerical_gradient(lambda v: np.sum(U * v**2), Z)) < 1e-6
)  # exercise 1

x_ex = G.Input("x", value=rng.normal(size=(1, 3)))
lin_ex = G.Linear(x_ex, 3, 2, rng=rng, name="linear")
y_ex = G.Tanh(lin_ex)
y_bar = rng.normal(size=(1, 2))
G.forward(y_ex)
G.backward(y_ex, grad=y_bar)
y_col, ybar_col, x_col = y_ex.value.T, y_bar.T, x_ex.value.T
assert_allclose(lin_ex.A.grad, ((1 - y_col * y_col) * ybar_col) @ x_col.T)  # exercise 2


def train_schedule(batch_size, lr_at):
    """Like train(), with the learning rate lr_at(t) at fractional epoch t; returns the final training loss."""
    model = build_model()
    rng_s = np.random.default_rng(SEED)
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
final = {
    (name, b): train_schedule(b, make(LR * b))
    for name, make in schedules.items()
    for b in (256, 512, 1024)
}
assert_allclose(
    final["constant", 256],
    scaled_table.set_index("batch size").loc[256, "train loss"],
    rtol=1e-12,
)
assert final["warm-up", 256] > 1.1 * LOSS_OPT  # exercise 4: no help
assert (
    final["decay", 256] < 1.005 * LOSS_OPT and final["decay", 512] < 1.05 * LOSS_OPT
)  # decay helps
assert final["decay", 1024] > 1.5 * LOSS_OPT  # but not at 1024
print(f"final training loss (minimum {LOSS_OPT:.4f})")
for name in schedules:
    print(
        f"{name:>9}: "
        + ", ".join(f"B = {b}: {final[name, b]:.4f}" for b in (256, 512, 1024))
    )


# %% tags=["hide-input", "nbval-ignore-output"]
mlp_x, mlp_y, mlp = mlp_loss()  # exercise 3
mlp_ns = {}
for b in (1, 4, 16, 64, 256, 1024):
    mlp_x.value, mlp_y.value = (
        rng.random((b, 784), dtype=np.float32),
        rng.integers(0, 10, b),
    )
    steps = max(2, 256 // b)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            G.forward(mlp)
            G.backward(mlp)
        best = min(best, (time.perf_counter() - t0) / steps)
    mlp_ns[b] = 1e9 * best / b
print(
    "784-128-128-10 MLP, forward + backward, ns per sample:",
    {b: round(v) for b, v in mlp_ns.items()},
)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch01-
# ```
