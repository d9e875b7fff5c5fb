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
# # Chapter 1.1: A computational graph from scratch
#
# Every deep-learning framework computes gradients the same way: it records the
# computation as a {term}`computational graph` of small operations, runs it forward to get
# the loss, then walks it backwards applying the chain rule, one operation at a time. In this
# lecture we build such an engine in NumPy (`course_utils.graph`), check every one of its
# derivatives against finite differences and against PyTorch, make the binary cross-entropy
# safe for any logit, and train a logistic regression with it, one sample at a time and in
# minibatches, measuring what a minibatch costs in memory and how noisy its gradient is. [Chapter 1.2](01_2_batch_size.ipynb) then uses the engine for an experiment
# every practitioner meets on day one: what does the batch size change?
#
# **Learning objectives.** After this lecture you can
#
# - build a reverse-mode automatic-differentiation engine from nodes that each have a forward
#   and a backward rule, and check every gradient against finite differences and
#   `torch.autograd`;
# - derive the linear layer's three gradients with samples as rows or as columns, and
#   translate a formula from one layout to the other;
# - compute the binary cross-entropy from logits without overflow or $\log 0$;
# - train logistic regression with stochastic and minibatch gradient descent on the engine;
# - measure what a minibatch update holds in memory, and predict the noise of a minibatch
#   gradient from the per-sample gradients.
#
# **Prerequisites:** Python and NumPy; derivatives and the chain rule; matrix products and
# transposes. [Chapter 2](02_jacobians.ipynb) treats Jacobians and the chain rule for vectors
# and matrices in depth.
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
    package = f"course-utils[ch01] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
SEED = 0  # seeds the data and the initial parameters
# The data: two Gaussian classes in the plane (chapter 1.2 uses the same sizes)
N_TRAIN = 2048
N_TEST = 10_000
# Training: stochastic gradient descent for a few epochs, then minibatches of BATCH_SIZE
LR = 0.03
DEMO_EPOCHS = 3
BATCH_SIZE = 64
# Minibatch-gradient noise: NOISE_DRAWS random minibatches per batch size
NOISE_BATCH_SIZES = [1, 4, 8, 16, 64, 128, 256, 512, 1024]
NOISE_DRAWS = 200

# %%
import inspect
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose
from scipy.stats import norm

import course_utils.runtime
from course_utils import graph as G
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
# * `backward()`: given `grad`, the derivative of the final scalar loss $\mathcal{L}$ with
#   respect to its own output, compute the derivative of $\mathcal{L}$ with respect to each of
#   its inputs (and its own parameters), and **add** it to their `grad`.
#
# If node $v$ computes $v = f(u)$, the chain rule says
#
# $$
# \frac{\partial \mathcal{L}}{\partial u}
# = \frac{\partial \mathcal{L}}{\partial v}\,\frac{\partial v}{\partial u}:
# $$
#
# the backward rule only needs the local derivative of $f$. When $u$ feeds several nodes,
# its gradient is the **sum** of what each consumer sends back, which is why `backward()`
# adds instead of assigning. Running all the forward rules in a **topological order**
# (every node after its inputs) computes the loss; running all the backward rules in the
# reverse order computes every gradient in one sweep
# {cite}`ch01-1-rumelhart1986backprop,ch01-1-baydin2018autodiff`. This is *reverse-mode
# automatic differentiation* ({term}`backpropagation`), and it is all that
# `loss.backward()` does in PyTorch.
#
# The engine follows micrograd {cite}`ch01-1-karpathy2020micrograd`: each node's backward
# rule sits right beside its forward rule. Here is the sigmoid node of `course_utils.graph`,
# in full:

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
#
# The sort keeps its own stack instead of recursing, so that a graph thousands of nodes deep
# does not hit Python's recursion limit:

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
# The price is that formulas written for columns appear **transposed**. The next section
# derives the linear layer's gradients in both layouts, so that you can translate any
# column-layout formula you meet.

# %% [markdown]
# (sec-ch01-linear)=
# ## The `Linear` node and its three gradients
#
# **Column layout (the source's).** For one sample $\mathbf{x}\in\mathbb{R}^{D}$ (a column),
# a linear (affine) layer with $M$ outputs computes $W\mathbf{x} + \mathbf{b}$ with
# $W\in\mathbb{R}^{M\times D}$ and $\mathbf{b}\in\mathbb{R}^M$. For a batch stacked as
# columns, $X_{\mathrm c}\in\mathbb{R}^{D\times B}$, it computes
# $Y_{\mathrm c} = WX_{\mathrm c} + \mathbf{b}\mathbf{1}^\top$, that is
#
# $$
# (Y_{\mathrm c})_{ik} = \sum_j W_{ij}(X_{\mathrm c})_{jk} + b_i
# $$
#
# for sample $k$. Write $\bar Y_{\mathrm c} = \partial \mathcal{L}/\partial Y_{\mathrm c}$
# for the upstream gradient (same shape as $Y_{\mathrm c}$). Each $W_{ij}$ appears in the
# outputs $(Y_{\mathrm c})_{ik}$ of every sample $k$ with coefficient $(X_{\mathrm c})_{jk}$;
# each $(X_{\mathrm c})_{jk}$ appears in $(Y_{\mathrm c})_{ik}$ for every $i$ with coefficient
# $W_{ij}$; each $b_i$ appears in every $(Y_{\mathrm c})_{ik}$ with coefficient 1. Summing
# over those appearances (the chain rule):
#
# $$
# \begin{aligned}
# \frac{\partial \mathcal{L}}{\partial W_{ij}}
#   &= \sum_k (\bar Y_{\mathrm c})_{ik} (X_{\mathrm c})_{jk},\\
# \frac{\partial \mathcal{L}}{\partial (X_{\mathrm c})_{jk}}
#   &= \sum_i W_{ij} (\bar Y_{\mathrm c})_{ik},\\
# \frac{\partial \mathcal{L}}{\partial b_i} &= \sum_k (\bar Y_{\mathrm c})_{ik},
# \end{aligned}
# $$ (eq-linear-index)
#
# which in matrix form are the source's three formulas:
#
# $$
# \begin{aligned}
# \frac{\partial \mathcal{L}}{\partial X_{\mathrm c}} &= W^\top \bar Y_{\mathrm c},\\
# \frac{\partial \mathcal{L}}{\partial W} &= \bar Y_{\mathrm c} X_{\mathrm c}^\top,\\
# \frac{\partial \mathcal{L}}{\partial \mathbf{b}} &= \bar Y_{\mathrm c}\mathbf{1}
# \end{aligned}
# $$ (eq-linear-columns)
#
# (the last one is the sum over the batch). **Row layout (ours).** With samples as rows, the
# batch is $X = X_{\mathrm c}^\top\in\mathbb{R}^{B\times D}$ and the layer computes
# $Y = XW^\top + \mathbf{1}\mathbf{b}^\top$ (PyTorch's `x @ W.T + b`); its upstream gradient
# is $\bar Y = \bar Y_{\mathrm c}^\top$. Transposing {eq}`eq-linear-columns`:
#
# $$
# \begin{aligned}
# \frac{\partial \mathcal{L}}{\partial X} &= \bar Y W,\\
# \frac{\partial \mathcal{L}}{\partial W} &= \bar Y^\top X,\\
# \frac{\partial \mathcal{L}}{\partial \mathbf{b}} &= \bar Y^\top\mathbf{1}
# \end{aligned}
# $$ (eq-linear-rows)
#
# (the last one is the column sums of $\bar Y$). The gradient with respect to $W$ is the same
# matrix in both layouts (it has $W$'s shape); the other two are transposed like the data.
# Here is `Linear`'s code. `.mT` transposes the last two axes (for a matrix, the same as
# `.T`), and `axis=-2` is the batch axis: written this way, the same lines also train several
# seeds at once, which [chapter 1.2](01_2_batch_size.ipynb) uses.

# %%
print(inspect.getsource(G.Linear.forward))
print(inspect.getsource(G.Linear.backward))

# %% [markdown]
# We check {eq}`eq-linear-rows` and {eq}`eq-linear-columns` on numbers: a `Linear` node on a
# batch of $B = 5$ samples, an arbitrary upstream gradient $\bar Y$ passed as `grad=` to
# `backward` (for a non-scalar root, `backward` computes the vector-Jacobian product with
# `grad`, [chapter 2](02_jacobians.ipynb)'s {term}`VJP`), and the input marked
# `requires_grad=True` so that it receives a gradient too. We compare with the formulas in
# both layouts, with central finite differences of $\sum_{ik} \bar Y_{ik}Y_{ik}$, and with
# `torch.autograd`.

# %%
rng = np.random.default_rng(SEED)
x = G.Input("x", value=rng.normal(size=(5, 3)), requires_grad=True)
lin = G.Linear(x, 3, 2, rng=rng, name="linear")
lin.b.value[:] = rng.normal(size=2)  # a non-zero bias (parameters change in place)
Y_bar = rng.normal(size=(5, 2))  # the upstream gradient dL/dY, shape (batch, out)
G.forward(lin)
G.backward(lin, grad=Y_bar)
X, W, b = x.value, lin.W.value, lin.b.value
X_c, Y_bar_c = X.T, Y_bar.T  # the same batch in column layout
formulas = {  # eq-linear-rows, and eq-linear-columns transposed back
    "dL/dX": (x.grad, Y_bar @ W, (W.T @ Y_bar_c).T),
    "dL/dW": (lin.W.grad, Y_bar.T @ X, Y_bar_c @ X_c.T),
    "dL/db": (lin.b.grad, Y_bar.sum(axis=0), Y_bar_c.sum(axis=1)),
}


def sum_Y_bar_Y(X_, W_, b_):
    return np.sum(Y_bar * (X_ @ W_.T + b_))


finite_diffs = [
    numerical_gradient(lambda v: sum_Y_bar_Y(v, W, b), X),
    numerical_gradient(lambda v: sum_Y_bar_Y(X, v, b), W),
    numerical_gradient(lambda v: sum_Y_bar_Y(X, W, v), b),
]
Xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
F.linear(Xt, Wt, bt).backward(torch.tensor(Y_bar))
print("gradient = both layouts' formulas = finite differences = torch.autograd")
for (name, (ours, rows, cols)), fd, t in zip(
    formulas.items(), finite_diffs, (Xt, Wt, bt)
):
    assert_allclose(ours, rows, rtol=1e-12)
    assert_allclose(ours, cols, rtol=1e-12)
    assert relative_error(ours, fd) < 1e-6
    assert relative_error(ours, t.grad.numpy()) < 1e-12
    print(f"{name} shape {str(ours.shape):<7} agrees with all four")

# %% [markdown]
# Every gradient agrees with both layouts' formulas, with finite differences (relative error
# below $10^{-6}$) and with PyTorch (below $10^{-12}$).
#
# ## `Linear` replaces a Multiply node and an Add node
#
# The source assignment first builds the affine map from two nodes, a matrix **Multiply**
# $Z = XW^\top$ and a bias **Add** $Y = Z + \mathbf{1}\mathbf{b}^\top$, and then replaces
# them by one `Linear` node. Writing a node takes a dozen lines; here are the two, as
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
affine = Add(Multiply(x1, W0.copy()), b0.copy())
loss_two = G.BinaryCrossEntropy(G.Sigmoid(affine), y1)

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
# The fused node computes exactly the same thing with one node fewer: one Python call less
# per step in each direction, one intermediate $B\times M$ array fewer, and one place to
# check shapes. Every framework fuses the affine map for these reasons (`torch.nn.Linear`).
#
# ## The gradient check: every node against finite differences and PyTorch
#
# Every node and loss of `course_utils.graph` is checked the same way: its gradients from
# `backward` against central finite differences with step $h = 10^{-6}$ in float64
# (relative error below $10^{-6}$) and against `torch.autograd` for the same operation. For
# a non-scalar node we differentiate $\sum (\text{upstream} \odot \text{value})$ with a
# random upstream array, for a loss the loss itself. The comparison:

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
# The cases, one per node type, each with random inputs and the same operation written in
# PyTorch, are set up in a folded cell:


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
# differences are limited by the $O(h^2)$ truncation and $O(10^{-16}/h)$ rounding of the
# central difference, those against PyTorch by rounding alone.
#
# (sec-ch01-bce)=
# ## Binary cross-entropy without overflow or log(0)
#
# For a predicted probability $\hat p = \sigma(z)$ and a label $y\in\{0, 1\}$, the binary
# cross-entropy is
#
# $$
# \ell = -[y\log \hat p + (1-y)\log(1-\hat p)].
# $$
#
# Computed literally, it breaks for confident logits: $\sigma(40)$ rounds to exactly 1 in
# float64, so $\log(1-\hat p) = \log 0 = -\infty$, and $\sigma(-800)$ underflows to exactly
# 0, so $\log \hat p = -\infty$. Rewritten in terms of the logit it is stable for every $z$:
#
# $$
# \begin{aligned}
# \ell(z, y) &= \log(1 + e^{z}) - yz \\
#   &= \max(z, 0) - yz + \log\left(1 + e^{-|z|}\right), \\
# \frac{\partial \ell}{\partial z} &= \sigma(z) - y .
# \end{aligned}
# $$ (eq-bce-logits)
#
# `BinaryCrossEntropy(p, y)` uses this form whenever `p` is a `Sigmoid` node, and sends the
# gradient $(\sigma(z) - y)/B$ straight to the logits (the sigmoid's own factor
# $\sigma(1-\sigma)$ underflows to 0 at large $|z|$, which would silently stop learning on
# confident mistakes). The loss is averaged over the batch.

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
assert_allclose(z_in.grad, zt.grad.numpy(), rtol=1e-12)
exact_mean = (800 + 40 + np.log(2) + 40 + 800) / 5
assert_allclose([float(bce.value), loss_t.item()], exact_mean, rtol=1e-12)
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
# $\log 2$, 40 and 800, so the batch mean is $(800 + 40 + \log 2 + 40 + 800)/5 = 336.14$,
# the same as PyTorch's `binary_cross_entropy_with_logits`; and the gradient
# $(\sigma(z) - y)/B$ is bounded, $\pm 0.2$ on each of the four mistakes.
#
# (sec-ch01-data)=
# ## The data: two Gaussian classes
#
# Logistic regression is the graph Input → Linear → Sigmoid → BCE. We train it on a
# generated, seeded two-class problem in the plane: class $y\in\{0, 1\}$ (equally likely)
# has points $\mathbf{x}\sim\mathcal{N}(\boldsymbol{\mu}_y, I)$ with
# $\boldsymbol{\mu}_0 = (-0.5, 2)$ and $\boldsymbol{\mu}_1 = (1.5, 0.5)$. Because both
# classes share the covariance $I$, the **Bayes-optimal** classifier (the best any
# classifier can do) is linear: predict class 1 when $\mathbf{u}^\top\mathbf{x} + u_0 > 0$,
# with
#
# $$
# \mathbf{u} = \boldsymbol{\mu}_1 - \boldsymbol{\mu}_0, \qquad
# u_0 = -\tfrac12\,\mathbf{u}^\top(\boldsymbol{\mu}_0 + \boldsymbol{\mu}_1).
# $$
#
# Its error rate is $\Phi(-\|\boldsymbol{\mu}_1 - \boldsymbol{\mu}_0\|/2) = \Phi(-1.25)$, so
# no model can be right more than about 89.4 % of the time. Logistic regression is well
# specified here: its best parameters are the Bayes rule's. The training set has `N_TRAIN`
# = 2048 points, the held-out {term}`test set` 10,000.

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


bayes_acc_test = np.mean(bayes_predict(X_test) == y_test)
print(f"train {X_train.shape}, test {X_test.shape}", end=", ")
print(f"class-1 fraction: train {y_train.mean():.3f}, test {y_test.mean():.3f}")
print(f"Bayes-optimal accuracy: {norm.cdf(np.linalg.norm(u_bayes) / 2):.2%}", end=" ")
print(f"in theory, {bayes_acc_test:.2%} on the test set")

# %% [markdown]
# The training set, with the Bayes-optimal boundary (the plotting code is folded):

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5, 4.2))
for label, marker in ((0, "o"), (1, "s")):
    X_class = X_train[y_train == label]
    ax.scatter(*X_class.T, s=6, marker=marker, alpha=0.5, label=f"class {label}")
xs = np.linspace(X_train[:, 0].min(), X_train[:, 0].max(), 2)
ax.plot(xs, -(u_bayes[0] * xs + u0_bayes) / u_bayes[1], "k--", label="Bayes boundary")
ax.set(
    xlabel="$x_1$",
    ylabel="$x_2$",
    title=f"Training set: {N_TRAIN} points, two Gaussian classes",
    ylim=(X_train[:, 1].min() - 0.5, X_train[:, 1].max() + 0.5),
)
ax.legend(loc="upper right")
plt.show()

# %% [markdown]
# The best training loss the model can reach is the minimum of the (convex) mean BCE over
# the training set. We compute it once with Newton's method, as a yardstick for training:
# writing $\tilde{\mathbf{x}} = (\mathbf{x}, 1)$ and $\boldsymbol{\theta} = (W, \mathbf{b})$
# as one vector, and $\sigma_i = \sigma(\boldsymbol{\theta}^\top\tilde{\mathbf{x}}_i)$, the
# gradient and the Hessian of $\mathcal{L}$ are
#
# $$
# \begin{aligned}
# \nabla\mathcal{L} &= \frac1N\sum_i (\sigma_i - y_i)\,\tilde{\mathbf{x}}_i,\\
# \nabla^2\mathcal{L} &= \frac1N\sum_i \sigma_i(1-\sigma_i)\,
#   \tilde{\mathbf{x}}_i\tilde{\mathbf{x}}_i^\top .
# \end{aligned}
# $$ (eq-bce-hessian)

# %%
X_tilde = np.column_stack([X_train, np.ones(N_TRAIN)])
theta = np.zeros(3)
for _ in range(20):  # Newton's method: theta <- theta - H^-1 g
    s = 1 / (1 + np.exp(-X_tilde @ theta))
    hessian = (X_tilde.T * (s * (1 - s))) @ X_tilde / N_TRAIN
    theta -= np.linalg.solve(hessian, X_tilde.T @ (s - y_train) / N_TRAIN)
z_opt = X_tilde @ theta
LOSS_OPT = float(
    np.mean(np.maximum(z_opt, 0) - z_opt * y_train + np.log1p(np.exp(-np.abs(z_opt))))
)
gradient_at_opt = X_tilde.T @ (1 / (1 + np.exp(-z_opt)) - y_train) / N_TRAIN
assert np.linalg.norm(gradient_at_opt) < 1e-12
print(f"minimum training loss {LOSS_OPT:.4f}", end=" ")
print(f"at W = {theta[:2].round(3)}, b = {theta[2]:.3f}")

# %% [markdown]
# ## Training one sample at a time
#
# Stochastic gradient descent in its purest form: visit the training points in a random
# order and, after each one, move every parameter against its gradient,
# $\boldsymbol{\theta} \leftarrow \boldsymbol{\theta} - \eta\,\nabla_{\boldsymbol{\theta}}
# \ell$, with {term}`learning rate` $\eta$. With the engine, one update is four lines: set
# the inputs, `forward`, `backward`, and subtract `lr * grad` from every parameter **in
# place** (the `Parameter` arrays must never be rebound, because optimizers keep references
# to them).


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


# %% [markdown]
# The loop: a new order of the samples every epoch, one sample per update.

# %%
model = build_model()
W_init, b_init = (p.value for p in model.params)
print("parameters:", [p.name for p in model.params], end=" | ")
print(f"initial W: [{W_init[0, 0]:.4f}, {W_init[0, 1]:.4f}], b: {b_init[0]:.4f}")
sgd_losses = [evaluate(model, X_train, y_train)[0]]
print(f"epoch 0: training loss {sgd_losses[0]:.4f}")
shuffle_rng = np.random.default_rng(SEED)
for epoch in range(1, DEMO_EPOCHS + 1):
    for i in shuffle_rng.permutation(N_TRAIN):
        # a batch of one: shape (1, 2)
        model.x.value, model.y.value = X_train[i : i + 1], y_train[i : i + 1]
        G.forward(model.loss)
        G.backward(model.loss)
        for prm in model.params:
            prm.value -= LR * prm.grad
    sgd_losses.append(evaluate(model, X_train, y_train)[0])
    print(f"epoch {epoch}: training loss {sgd_losses[-1]:.4f}")
sgd_acc = evaluate(model, X_test, y_test)[1]
std_error = np.sqrt(
    bayes_acc_test * (1 - bayes_acc_test) / N_TEST
)  # of a test accuracy
assert sgd_losses[1] < 1.02 * LOSS_OPT and abs(sgd_acc - bayes_acc_test) < 2 * std_error
print(f"test accuracy {sgd_acc:.1%} (Bayes rule {bayes_acc_test:.1%})")

# %% [markdown]
# After one {term}`epoch` (2048 updates) the training loss is already within half a percent
# of the minimum printed above, and after three the test accuracy is within a tenth of a
# point of the Bayes rule's.
#
# ## Training in batches
#
# A **minibatch** of $B$ samples ({term}`batch size` $B$) replaces the one-sample gradient by
# the average over the batch (the BCE node averages over the batch, so its gradient is the
# batch mean of the per-sample gradients). One epoch then makes $\lceil N/B\rceil$ updates
# instead of $N$. The function below is the training loop of this chapter: after every
# epoch it records the loss on the **whole training set**, the same yardstick for every
# batch size (the source's curves average the minibatch losses seen during the epoch, which
# mixes parameters from different moments of the epoch).


# %%
def train(batch_size, lr, num_epochs, seed=SEED):
    """Minibatch SGD on (X_train, y_train); seed fixes the initial parameters and the
    order of the samples. Returns the model and the training loss after each epoch
    (entry 0: before training)."""
    model = build_model(seed)
    rng = np.random.default_rng(seed)
    losses = [evaluate(model, X_train, y_train)[0]]
    for epoch in range(num_epochs):
        order = rng.permutation(N_TRAIN)
        for start in range(0, N_TRAIN, batch_size):
            idx = order[start : start + batch_size]
            model.x.value, model.y.value = X_train[idx], y_train[idx]
            G.forward(model.loss)
            G.backward(model.loss)
            for prm in model.params:
                prm.value -= lr * prm.grad
        losses.append(evaluate(model, X_train, y_train)[0])
    return model, losses


print(f"training loss after epochs 0 to {DEMO_EPOCHS}, lr = {LR}:")
for batch_size in (1, BATCH_SIZE):
    _, losses = train(batch_size, LR, DEMO_EPOCHS)
    if batch_size == 1:  # the loop above, step for step
        assert_allclose(losses, sgd_losses, rtol=1e-15)
    updates = DEMO_EPOCHS * -(-N_TRAIN // batch_size)  # ceil(N / B) per epoch
    shown = ", ".join(f"{v:.4f}" for v in losses)
    print(f"batch size {batch_size:>2}: {shown} ({updates} updates)")

# %% [markdown]
# `train(1, ...)` reproduces the loop above exactly (the same initial parameters, the same
# order of the samples). With batches of 64 the loss falls much more slowly **per epoch**:
# 3 epochs are only 96 updates. Whether that is a bad trade depends on what an update costs
# and on how much a better gradient estimate buys, the subject of
# [chapter 1.2](01_2_batch_size.ipynb). Two things a batch changes can be measured on the
# engine right away: the memory an update needs, and the noise of the gradient it follows.
#
# (sec-ch01-memory)=
# ## Memory
#
# Memory per update grows linearly with the batch: every node stores a `(B, features)`
# value, and the backward pass a gradient of the same shape. We add up what the graph holds
# after one `forward` and `backward` (the parameters are a constant 24 bytes). For
# comparison, the same count for [chapter 5.1](05_1_backprop_fashion_mnist.ipynb)'s
# 784-128-128-10 network in float32:


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
    rng = np.random.default_rng(SEED)
    h = G.ReLU(G.Linear(x, 784, 128, init="he", rng=rng, dtype=dtype, name="fc1"))
    h = G.ReLU(G.Linear(h, 128, 128, init="he", rng=rng, dtype=dtype, name="fc2"))
    logits = G.Linear(h, 128, 10, rng=rng, dtype=dtype, name="fc3")
    return x, y, G.SoftmaxCrossEntropy(logits, y)


logreg = build_model()
mlp_x, mlp_y, mlp = mlp_loss()
memory = {}  # batch size -> (bytes of logistic regression, bytes of the MLP)
fake = np.random.default_rng(SEED)
print(
    f"{'batch size':>10} | {'logistic regression':>20} | "
    f"{'784-128-128-10, float32':>24}"
)
for b in (1, 64, 1024):
    logreg.x.value, logreg.y.value = X_train[:b], y_train[:b]
    mlp_x.value = fake.random((b, 784), dtype=np.float32)
    mlp_y.value = fake.integers(0, 10, b)
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
# ## The noise of a minibatch gradient
#
# A minibatch gradient is an average of $B$ per-sample gradients drawn from the training
# set, so its deviation from the full-batch gradient $\mathbf{g}$ shrinks like $1/B$: for
# $B$ samples drawn without replacement from $N$,
#
# $$
# \mathbb{E}\,\lVert \mathbf{g}_B - \mathbf{g}\rVert^2
# = \frac{\operatorname{tr}\Sigma}{B}\cdot\frac{N - B}{N - 1},
# $$ (eq-minibatch-noise)
#
# with $\Sigma$ the covariance of the per-sample gradients. We measure it with the engine at
# the initial parameters: `NOISE_DRAWS` = 200 random minibatches per batch size, each
# gradient from `backward`.

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
np.testing.assert_allclose(per_sample.mean(axis=0), g_full, rtol=1e-12)
trace_sigma = np.sum(per_sample.var(axis=0))
print(f"|g|^2 = {g_full @ g_full:.4f}, tr(Sigma) = {trace_sigma:.4f}")

# %%
noise_rng = np.random.default_rng(SEED)
noise_rows = []
for b in NOISE_BATCH_SIZES:
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
print(noise.to_string(index=False, float_format="{:.3g}".format))
assert np.all(
    np.abs(noise["measured / predicted"] - 1) < 0.3
)  # 200 draws' sampling error
noise_b = noise.set_index("batch size")["measured"]
print(
    f"at B = 1 the noise is {noise_b[1] / (g_full @ g_full):.1f} times |g|^2;", end=" "
)
noise_ratio = float(f"{noise_b[1] / noise_b[1024]:.2g}")  # two significant digits
print(f"at B = 1024 it is about {noise_ratio:.0f} times smaller")

# %% [markdown]
# The measured noise follows {eq}`eq-minibatch-noise` within the sampling error of 200
# draws, from $B = 1$, where it is about five times the squared length of the gradient
# itself, to $B = 1024$, where it is about 1800 times smaller than at $B = 1$ (the factor
# $(N-B)/(N-1)$ halves it once more at $B = N/2$). Larger batches give smoother, more
# reliable steps; whether that matters depends on the learning rate, because the step's
# noise is $\eta$ times the gradient noise. [Chapter 1.2](01_2_batch_size.ipynb) measures
# both sides of that statement: at a small learning rate ({ref}`sec-ch01-study`) and at
# learning rates scaled with the batch ({ref}`sec-ch01-scaling`).
#
# ## Summary
#
# * A reverse-mode autodiff engine is a list of nodes with a forward and a backward rule
#   each, a topological sort, and two loops. Gradients **accumulate** (`+=`) because a value
#   used twice receives the sum of its consumers' gradients.
# * The book stores samples as **rows**, `(batch, features)`, as PyTorch does; the linear
#   layer's gradients are then $\bar Y W$, $\bar Y^\top X$ and the column sums of $\bar Y$,
#   the transposes of the column-layout $W^\top\bar Y_{\mathrm c}$,
#   $\bar Y_{\mathrm c} X_{\mathrm c}^\top$ and $\bar Y_{\mathrm c}\mathbf 1$.
# * Every gradient of the engine agrees with central finite differences (relative error
#   below $10^{-6}$) and with `torch.autograd`; the binary cross-entropy is computed from the
#   logits, finite at any logit.
# * Logistic regression on two Gaussian classes reached the minimum training loss within
#   half a percent after one epoch of single-sample updates; minibatches of 64 make 64 times
#   fewer updates per epoch and, at the same learning rate, fall more slowly per epoch.
# * A minibatch update holds memory linear in $B$ (56 bytes per sample for logistic
#   regression, about 7 KiB for a 784-128-128-10 network), and its gradient's noise is
#   $\operatorname{tr}\Sigma/B$ times the finite-population factor $(N-B)/(N-1)$, as
#   measured over 200 random minibatches per batch size.
#
# ## Exercises
#
# ```{exercise} A node of your own
# :label: ex-graph-square
#
# Write a node `Square` with value $z^2$ (elementwise) and its backward rule, as a subclass
# of `G.Node`, and check its gradient against `numerical_gradient` with
# `backward(node, grad=...)`.
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
# A column-layout text gives the gradient of $\mathbf{y} = \tanh(W\mathbf{x} + \mathbf{b})$
# with respect to $W$ for one sample as
# $\big((1 - \mathbf{y}\odot \mathbf{y})\odot\bar{\mathbf{y}}\big)\,\mathbf{x}^\top$.
# Translate it to the row layout for a batch $X$ ($B\times D$) with upstream gradient
# $\bar Y$ ($B\times M$), and say which engine nodes compute each factor.
# ```
#
# ```{solution} ex-graph-layout
# :class: dropdown
#
# With $Y = \tanh(XW^\top + \mathbf 1\mathbf{b}^\top)$, the `Tanh` node's backward gives
# $\bar Z = (1 - Y\odot Y)\odot\bar Y$ (elementwise, the same in both layouts), and the
# `Linear` node's backward gives $\partial \mathcal{L}/\partial W = \bar Z^\top X$, which for
# $B = 1$ is the column formula's outer product $\bar{\mathbf{z}}\,\mathbf{x}^\top$ with
# $\bar{\mathbf{z}} = \bar Z^\top$, $\mathbf{x} = X^\top$. For a batch the sum over samples
# comes from the matrix product. The code cell after the exercises runs this on numbers.
# ```
#
# ```{exercise} The learning rate of single-sample updates
# :label: ex-graph-sgd-lr
#
# Train with batch size 1 for one epoch at learning rates 0.003, 0.03 and 0.3 (the
# `train` function above). Which one gets closest to the minimum training loss, and why is
# the largest one not the best?
# ```
#
# ```{solution} ex-graph-sgd-lr
# :class: dropdown
#
# The cell below prints the training loss after one epoch for the three rates, in percent
# above the minimum. At 0.003 the 2048 small steps have not yet reached the minimum; at 0.03
# the run gets within a fraction of a percent of it; at 0.3 it gets there faster but each
# single-sample step is ten times larger and so is its noise: the parameters keep jumping
# around the minimum, and where they are after the last step depends on the last few
# samples. Chapter 1.2 measures that noise ({ref}`sec-ch01-noise`).
# ```
#
# The solutions, run on numbers:


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
assert relative_error(z_sq.grad, fd_square) < 1e-6
print("Exercise 1.1.1: Square's gradient = finite differences (relative error < 1e-6)")

x_ex = G.Input("x", value=rng.normal(size=(1, 3)))
lin_ex = G.Linear(x_ex, 3, 2, rng=rng, name="linear")
y_ex = G.Tanh(lin_ex)
y_bar = rng.normal(size=(1, 2))
G.forward(y_ex)
G.backward(y_ex, grad=y_bar)
y_col, ybar_col, x_col = y_ex.value.T, y_bar.T, x_ex.value.T
assert_allclose(lin_ex.W.grad, ((1 - y_col * y_col) * ybar_col) @ x_col.T)
print("Exercise 1.1.2: the row-layout gradient = the column formula's outer product")

print(
    "Exercise 1.1.3: training loss after one epoch at batch size 1, % above the minimum"
)
above = {}
for lr in (0.003, 0.03, 0.3):
    above[lr] = 100 * (train(1, lr, 1)[1][-1] / LOSS_OPT - 1)
    print(f"  lr = {lr:<5}: {above[lr]:.2f} %")
assert above[0.03] < min(above[0.003], above[0.3])

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch01-1-
# ```
