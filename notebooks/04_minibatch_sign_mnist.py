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
# # Chapter 4: Stochastic minibatch optimization
#
# The box below names the data this page ran on.

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
    package = f"course-utils[ch04] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["hide-input"]
# The data this page ran on, in a box made from the loaded dataset object
# (section "The data" below says more).
import html

from IPython.display import display

from course_utils import data

ds = data.load("sign-mnist", stand_in=True)


def data_notice(ds):
    """An admonition box naming the data this page ran on (a warning for a stand-in)."""
    note = html.escape(ds.note())
    if ds.is_stand_in:
        wanted = html.escape(data.DATASETS[ds.stand_in_for].title)
        title = f"Stand-in data: this page ran on {html.escape(ds.title)}, not {wanted}"
        body = (
            f"{note} The chapter's class names, number of classes, chance rate and "
            f"figure titles come from the loaded data; the numbers in its text are "
            f"those of {html.escape(ds.title)}. Where a network is available, the "
            f"loader downloads {wanted} and the same code runs on it."
        )
        kind = "warning"
    else:
        title, body, kind = f"Data: {html.escape(ds.title)}", note, "note"
    # the classes style it on the site; the inline colours make a box in Jupyter
    # and Colab too
    colour = {"warning": "#e08e0b", "note": "#2e6fba"}[kind]
    style = f"border-left: 0.4em solid {colour}; padding: 0.2em 0.8em; margin: 0.5em 0"
    box = (
        f'<div class="admonition {kind}" style="{style}">'
        f'<p class="admonition-title"><strong>{title}</strong></p>'
        f"<p>{body}</p></div>"
    )
    # text/plain: the dataset's own one-line note (the statistics page reads it)
    display({"text/html": box, "text/plain": ds.note()}, raw=True)


data_notice(ds)

# %% [markdown]
# [Chapter 3](03_optimizers.ipynb) ran gradient descent, momentum and Adam on a function of two
# variables, where one gradient costs nothing. A classifier's loss is an average over every
# training image, so one exact gradient costs a pass over the whole data set. This chapter
# trains a classifier of images and shows what changes when each step uses only a small random
# batch of them: what a minibatch and an epoch are and how PyTorch's `TensorDataset` and
# `DataLoader` produce them; how gradient descent, momentum and Adam compare on the full-batch
# loss when each gets the same number of steps at its own best learning rate; how the batch size
# trades the number of steps against their noise; how many epochs training needs as a function
# of the learning rate; and how to read a trained classifier's mistakes. Two experiments go
# beyond the source notes: how the scale of the inputs moves the learning rates that work, and
# how much further a small convolutional network gets with the same training loop.
#
# The chapter is written for Sign Language MNIST {cite}`ch04-signmnist2017`, images of hand
# signs for letters. Where those files can be neither found nor downloaded, the data layer
# substitutes a labelled stand-in, and the box at the top of this page says which data this
# page ran on ({ref}`sec-ch04-data` says more). Class names, the
# number of classes, the chance rate and the figure titles are taken from the loaded data, so
# the same code serves both; numbers quoted in the text are those of the data that ran.
#
# **Learning objectives.** After this chapter you can
#
# - explain what a minibatch and an epoch are, produce them reproducibly with `TensorDataset`
#   and `DataLoader`, and average an epoch's loss over examples rather than batches;
# - compute gradient descent's largest stable learning rate for softmax regression from the
#   data, and recognise a run that is above it;
# - compare optimizers and batch sizes fairly: the same budget, a fresh model and optimizer
#   for every run, several seeds, and differences within the spread called ties;
# - say how many epochs training needs as a function of the learning rate, and how the scale
#   of the inputs moves the learning rates that work;
# - judge a classifier against the chance rate, per class and by its confusion matrix.
#
# **Prerequisites:** [chapter 1](01_computational_graph.ipynb) (gradients, batches and the
# softmax cross-entropy), [chapter 2](02_jacobians.ipynb) (the Jacobian of the softmax) and
# [chapter 3](03_optimizers.ipynb) (gradient descent, momentum {cite}`ch04-polyak1964momentum`,
# Adam {cite}`ch04-kingma2015adam`, and the step-size limit set by the Hessian's largest
# eigenvalue).
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

# %% tags=["parameters"]
SEED = 0
N_SEEDS = 3  # every comparison runs seeds SEED, SEED + 1, ..., SEED + N_SEEDS - 1
# Subsets keep the page within its CPU budget (about three minutes on 2 cores). With a
# GPU, or more patience, raise N_TRAIN to None (every training image) and CNN_EPOCHS to
# 20 or more.
N_TRAIN = 5000  # training images drawn at random (None: all of them)
N_TEST = None  # test images (None: the whole test set)
# Full batch (one step per epoch) on raw pixels 0..255, as in the source notes: each
# optimizer on a grid of learning rates that holds the notes' two rates and a shared one
NUM_STEPS_FULL = 100
LRS_FULL = {
    "gradient descent": (3e-7, 1e-6, 3e-6, 1e-5, 3e-5),
    "momentum": (3e-7, 1e-6, 3e-6, 1e-5, 3e-5),
    "Adam": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3),
}
LRS_NOTES = {
    "gradient descent": (1e-6, 1e-5),
    "momentum": (1e-6, 1e-5),
    "Adam": (1e-5, 1e-3),
}
LR_SHARED = 3e-5  # on every optimizer's grid, far above gradient descent's limit
MOMENTUM = 0.9
# Batch-size sweep: Adam at one learning rate, a fresh model and optimizer per run
BATCH_SIZES = (8, 16, 64, 1024, 4096)
LR_ADAM = 1e-5
NUM_EPOCHS = 20
EVAL_BATCH_SIZE = 16  # the runs whose test accuracy, confusions and mistakes are shown
# Epochs to a target training loss against the learning rate: Adam, minibatches
BATCH_SIZE_LR = 64
LRS_EPOCHS = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 1e-3)
TARGET_LOSS = 0.5
# Input scaling: full-batch runs on the first N_SCALE images, rates one decade apart
N_SCALE = 1000
NUM_STEPS_SCALE = 50
LRS_SCALE_GD = tuple(10.0**k for k in range(-8, 2))
LRS_SCALE_ADAM = tuple(10.0**k for k in range(-6, 1))
# The small CNN, and softmax regression trained with the same recipe
CNN_CHANNELS = (8, 16)
CNN_HIDDEN = 64
CNN_EPOCHS = 10
CNN_BATCH_SIZE = 64
CNN_LR = 3e-3

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

import course_utils
from course_utils import data, plots, stats, training
from course_utils.plots import COLUMN_WIDTH

SEEDS = [SEED + k for k in range(N_SEEDS)]
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# Every comparison below reports a result measured once per seed; two small helpers print it
# as mean ± sd over the seeds, and with its range (the lowest and the highest seed).


# %% tags=["hide-input"]
def mean_sd_of(values, fmt=".3f"):
    """'mean ± sd' of one number per seed."""
    v = np.asarray(values, dtype=float)
    return stats.mean_sd(v.mean(), v.std(ddof=1), fmt)


def over_seeds(values, fmt=".3f"):
    """'mean ± sd (range min to max)' of one number per seed."""
    v = np.asarray(values, dtype=float)
    return f"{mean_sd_of(v, fmt)} (range {v.min():{fmt}} to {v.max():{fmt}})"


# %% [markdown]
# (sec-ch04-data)=
# ## The data
#
# `data.load("sign-mnist", stand_in=True)` returns Sign Language MNIST when its files are found
# ($27{,}455$ training and $7{,}172$ test images of 28×28 grey pixels; $24$ letters, because J
# and Z need a motion and have no still image) and otherwise a stand-in with a visible label.
# The cell under the chapter's title loaded it and named it in the box there; here are its
# classes.

# %%
K = ds.num_classes
data_label = f"{ds.title} (stand-in)" if ds.is_stand_in else ds.title

print(f"{K} classes: {', '.join(ds.classes)}")

# %% [markdown]
# Training on every image is affordable with a GPU but not within this page's CPU budget, so the
# experiments use `N_TRAIN` training images drawn at random (seeded) from the training set, and
# the test set given by `N_TEST`. The pixels stay as the integers 0..255, converted to floats:
# that is what the source notes train on, and {ref}`sec-ch04-input-scaling` comes back to it.


# %%
def draw_training_subset(seed):
    """N_TRAIN training images drawn at random with `seed`: uint8 images and labels."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(ds.y_train))
    idx = idx[:N_TRAIN] if N_TRAIN else idx
    return ds.X_train[idx], ds.y_train[idx]


images_train, y_train_np = draw_training_subset(SEED)
test_idx = np.arange(len(ds.y_test))[:N_TEST] if N_TEST else np.arange(len(ds.y_test))
images_test, y_test_np = ds.X_test[test_idx], ds.y_test[test_idx]

X = training.as_float_images(images_train, scale="raw")  # (N, 784) float32, 0..255
y = torch.as_tensor(y_train_np)
X_test = training.as_float_images(images_test, scale="raw")
y_test = torch.as_tensor(y_test_np)
N, D = X.shape
print(
    f"training subset: {N:,} of {len(ds.y_train):,} images; "
    f"test: {len(y_test):,} images; {D} pixels each"
)
print(f"pixel values: min {X.min():.0f}, max {X.max():.0f}, mean {X.mean():.1f}")

counts = np.bincount(y_train_np, minlength=K)
majority = int(counts.argmax())
chance_uniform = 1 / K
chance_majority = float(np.mean(y_test_np == majority))
print(
    f"images per class in the training subset: min {counts.min()}, max {counts.max()}"
)
print(
    f"chance rates on the test set: guessing uniformly {chance_uniform:.1%};\n"
    f"  always predicting the most frequent training class ({ds.classes[majority]}) "
    f"{chance_majority:.1%}"
)

# %%
first_of_class = [
    int(np.flatnonzero(y_train_np == k)[0]) for k in range(K) if np.any(y_train_np == k)
]
ncols = min(len(first_of_class), 12)
fig = plots.image_grid(
    images_train[first_of_class],
    [ds.classes[y_train_np[i]] for i in first_of_class],
    ncols=ncols,
    size=COLUMN_WIDTH / ncols,
    suptitle=f"{data_label}: one training image per class",
)
plt.show()

# %% [markdown]
# The chance rates printed above are the floor every accuracy below is compared with. Always
# predicting the most frequent class can beat uniform guessing when the classes are unbalanced,
# so both are given.
#
# (sec-ch04-minibatches)=
# ## Minibatches and epochs
#
# The training loss is an average over the $N$ training examples, and so is its gradient:
#
# $$
# \mathcal{L}(\boldsymbol\theta) = \frac{1}{N}\sum_{i=1}^{N} \ell_i(\boldsymbol\theta),
# \qquad
# \nabla \mathcal{L}(\boldsymbol\theta)
#   = \frac{1}{N}\sum_{i=1}^{N} \nabla \ell_i(\boldsymbol\theta),
# $$ (eq-full-gradient)
#
# where $\ell_i$ is the loss of example $i$. A {term}`minibatch` $\mathcal{B}$ is a small set of
# $B = |\mathcal{B}|$ examples (the {term}`batch size`), and its gradient is the same average
# over $\mathcal{B}$ only:
#
# $$
# \mathbf{g}_{\mathcal{B}}(\boldsymbol\theta)
#   = \frac{1}{B}\sum_{i\in \mathcal{B}} \nabla \ell_i(\boldsymbol\theta).
# $$ (eq-minibatch-gradient)
#
# If $\mathcal{B}$ is drawn uniformly at random, $\mathbf{g}_{\mathcal{B}}$ is an unbiased
# estimate of $\nabla \mathcal{L}$: right on average, with a noise that shrinks as $B$ grows.
# Stochastic gradient descent takes a {term}`step` along $-\mathbf{g}_{\mathcal{B}}$ for one
# batch after another {cite}`ch04-bottou2018optimization`. In practice the batches are not drawn
# independently: the examples are shuffled once, the shuffled order is cut into consecutive
# batches, and one {term}`epoch` is one pass through all of them, so that every example is used
# exactly once per epoch. The next epoch reshuffles. With $N$ examples and batch size $B$ an
# epoch has $\lceil N/B\rceil$ steps, and the last batch holds what is left over.
#
# PyTorch {cite}`ch04-paszke2019pytorch` splits this into two objects. A `TensorDataset` wraps
# tensors that share their first dimension and returns example $i$ as a tuple; a `DataLoader`
# draws the shuffled order, cuts it into batches and stacks each batch into tensors. To see the
# order itself, here is a data set whose only content is each example's index.

# %%
n_demo, b_demo = 20, 6
index_dataset = TensorDataset(torch.arange(n_demo))
loader_demo = DataLoader(
    index_dataset,
    batch_size=b_demo,
    shuffle=True,
    generator=torch.Generator().manual_seed(SEED),
)
epochs_demo = []
for epoch in range(2):
    batches = [batch.tolist() for (batch,) in loader_demo]
    epochs_demo.append(batches)
    print(f"epoch {epoch + 1}: " + "  ".join(str(b) for b in batches))

print(f"steps per epoch: len(loader) = {len(loader_demo)} = ceil({n_demo}/{b_demo})")
assert len(loader_demo) == math.ceil(n_demo / b_demo)
for batches in epochs_demo:  # one epoch = every example exactly once
    assert sorted(sum(batches, [])) == list(range(n_demo))
assert epochs_demo[0] != epochs_demo[1]  # each epoch reshuffles
again = DataLoader(
    index_dataset,
    batch_size=b_demo,
    shuffle=True,
    generator=torch.Generator().manual_seed(SEED),
)
assert [batch.tolist() for (batch,) in again] == epochs_demo[0]  # same seed, same order

# %% [markdown]
# Each epoch is a permutation of the 20 indices cut into batches of 6, 6, 6 and 2, the second
# epoch is a different permutation, and a generator with the same seed gives the same order
# again. The next cell draws the two epochs: each square is one example, its colour the batch it
# is used in.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.5))
batch_colors = plt.get_cmap("tab10").colors
rows = [
    ("stored order\n(colour: batch\nin epoch 1)", list(range(n_demo)), epochs_demo[0]),
    ("epoch 1:\nvisiting order", sum(epochs_demo[0], []), epochs_demo[0]),
    ("epoch 2:\nvisiting order", sum(epochs_demo[1], []), epochs_demo[1]),
]
for r, (label, order, batches) in enumerate(rows):
    batch_of = {i: k for k, batch in enumerate(batches) for i in batch}
    for pos, i in enumerate(order):
        ax.add_patch(
            plt.Rectangle(
                (pos, -r - 0.4), 0.92, 0.8, color=batch_colors[batch_of[i]], alpha=0.75
            )
        )
        ax.text(pos + 0.46, -r, str(i), ha="center", va="center", fontsize=8)
    if r > 0:
        start = 0
        for k, batch in enumerate(batches):
            ax.text(
                start + len(batch) / 2 - 0.04,
                -r + 0.52,
                f"batch {k + 1}",
                ha="center",
                fontsize=7,
            )
            start += len(batch)
ax.set_yticks([0, -1, -2], [label for label, _, _ in rows], fontsize=8)
ax.set_xlim(-0.2, n_demo + 0.2)
ax.set_ylim(-2.6, 0.75)
ax.set_xticks([])
ax.set_xlabel(f"position in the pass ({n_demo} examples, batch size {b_demo})")
ax.grid(False)
ax.set_title("One epoch = one shuffled pass over the data, cut into minibatches")
plt.show()

# %% [markdown]
# Two facts about averages are easy to get wrong in a training loop, and the next cell checks
# both on the training subset. First, when the batches of an epoch all have the same size, the
# mean of their gradients at a fixed $\boldsymbol\theta$ equals the full gradient
# {eq}`eq-full-gradient` exactly: the epoch covers every example once. Second, a loss function
# such as `F.cross_entropy` returns the mean over its batch, so the loss of an epoch must be
# rebuilt as a sum over examples (`loss.item() * len(yb)`) and divided by $N$. Averaging the
# batch means instead gives the examples of a smaller last batch more weight.


# %%
def softmax_regression(num_features: int, num_classes: int) -> nn.Linear:
    """Softmax regression: one linear layer whose weights and bias start at zero."""
    model = nn.Linear(num_features, num_classes)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    return model


def train_epochs(model, optimizer, loader, num_epochs, bar=None):
    """Minibatch training; returns each epoch's loss averaged over its examples.

    The loss of an epoch is measured while the model changes: batch t is scored by the
    parameters after t - 1 steps of that epoch.
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    losses = []
    for _ in range(num_epochs):
        total, count = 0.0, 0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)  # mean over the batch
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)  # back to a sum over examples
            count += len(yb)
            if bar is not None:
                bar.update(1)
        losses.append(total / count)
    return losses


# %% [markdown]
# The check uses a random parameter point (so that it is not a special case of
# $\boldsymbol\theta = 0$), $4{,}096$ images in double precision cut into 64 batches of 64, and a
# frozen model (learning rate 0) for the epoch loss.

# %%
torch.manual_seed(SEED)
probe = nn.Linear(D, K).double()
with torch.no_grad():
    probe.weight.mul_(1e-2)
X64, y64 = X[:4096].double() / 255, y[:4096]  # 64 batches of 64: all the same size

full_grad = torch.autograd.grad(F.cross_entropy(probe(X64), y64), probe.weight)[0]
batch_grads = torch.stack(
    [
        torch.autograd.grad(F.cross_entropy(probe(xb), yb), probe.weight)[0]
        for xb, yb in training.make_loader(X64, y64, batch_size=64, seed=SEED)
    ]
)
np.testing.assert_allclose(batch_grads.mean(0), full_grad, rtol=1e-10, atol=1e-14)
spread = batch_grads.std(0).norm() / full_grad.norm()
print(
    f"mean of the 64 minibatch gradients = the full gradient;\n"
    f"one minibatch gradient's spread around it: {spread:.2f} x its norm"
)

frozen = softmax_regression(D, K)
with torch.no_grad():
    frozen.weight.copy_(probe.weight.float())
loader_uneven = training.make_loader(X, y, batch_size=1024, seed=SEED)  # last is short
sgd_frozen = torch.optim.SGD(frozen.parameters(), lr=0.0)
epoch_loss = train_epochs(frozen, sgd_frozen, loader_uneven, 1)[0]
with torch.no_grad():
    full_loss = F.cross_entropy(frozen(X), y).item()
    batch_means = [F.cross_entropy(frozen(xb), yb).item() for xb, yb in loader_uneven]
np.testing.assert_allclose(epoch_loss, full_loss, rtol=1e-5)
print(f"batch sizes: {[len(yb) for _, yb in loader_uneven]}")
print(
    f"full-data loss {full_loss:.4f}; epoch loss averaged over examples "
    f"{epoch_loss:.4f};\nplain mean of the batch means {np.mean(batch_means):.4f}"
)

# %% [markdown]
# The spread printed above is the noise that minibatch training accepts in exchange for cheap
# steps: a single batch of 64 gives a gradient that is off by a sizeable fraction of its norm,
# and only the average over the epoch is exact. The mean of the batch means differs from the
# full-data loss whenever the last batch is shorter; `train_epochs` weights by examples and
# agrees with it.
#
# (sec-ch04-softmax-regression)=
# ## Softmax regression on raw pixels
#
# The model of the source notes is softmax regression: one linear layer from the $D = 784$
# pixels to one score per class, the {term}`softmax` turning scores into probabilities, and the
# {term}`cross-entropy` loss. Write $\tilde{\mathbf{x}} = (\mathbf{x}, 1)$ for the pixels and a
# constant 1, and $\tilde W = [W \;\; \mathbf{b}] \in \mathbb{R}^{K\times(D+1)}$ for the
# weights and the bias side by side. Then
#
# $$
# \begin{aligned}
# \mathbf{s}_i &= \operatorname{softmax}(\tilde W\tilde{\mathbf{x}}_i), \qquad
# \mathcal{L}(\tilde W) = -\frac{1}{N}\sum_{i=1}^N \log s_{i, y_i}, \\
# \nabla_{\tilde W} \mathcal{L}
#   &= \frac{1}{N}\sum_{i=1}^N (\mathbf{s}_i - \mathbf{e}_{y_i})\,
#      \tilde{\mathbf{x}}_i^{\top},
# \end{aligned}
# $$ (eq-softmax-regression)
#
# where $\mathbf{e}_{y}$ is the one-hot vector of class $y$. The weights start at zero, as in
# the notes. Then every class gets the same score, $\mathbf{s}_i$ is uniform, and the initial
# loss is exactly $\log K$, whatever the data. The loss is convex in $\tilde W$, so there is no
# bad local minimum to land in, and differences between runs below come from the optimizer, the
# step size and the data drawn.
#
# How large a step can gradient descent take? Near a point where the Hessian is
# $\nabla^2\mathcal{L}$, the loss is close to a quadratic, and on a quadratic gradient descent
# converges only if its {term}`learning rate` is $\eta < 2/\lambda_{\max}$, and gradient
# descent with momentum $\beta$ (PyTorch's `SGD(momentum=β)`, the heavy-ball method) only if
# $\eta < 2(1+\beta)/\lambda_{\max}$ ([chapter 3](03_optimizers.ipynb)). At $\tilde W = 0$ the
# Hessian of {eq}`eq-softmax-regression` has a closed form, because
# $\mathbf{s}_i = \mathbf{1}/K$ for every example:
#
# $$
# \begin{aligned}
# \nabla^2\mathcal{L}\big|_{\tilde W = 0}
#   &= \Big(\tfrac{1}{K} I_K - \tfrac{1}{K^2}\mathbf{1}\mathbf{1}^{\top}\Big) \otimes M,
# \\
# M &= \frac{1}{N}\sum_{i=1}^N \tilde{\mathbf{x}}_i \tilde{\mathbf{x}}_i^{\top},
# \end{aligned}
# $$ (eq-hessian-at-zero)
#
# with the parameters ordered row by row of $\tilde W$. The first factor has eigenvalues $1/K$
# and $0$, so the largest curvature is $\lambda_{\max} = \lambda_{\max}(M)/K$: the largest
# eigenvalue of the pixels' second-moment matrix $M$ divided by $K$. The next cell checks the
# gradient and the Hessian against `torch.autograd` on a small random problem in double
# precision, checks both step-size limits with `torch.optim.SGD` on a one-dimensional
# quadratic, and then computes the limits for the training subset.


# %%
def augment(Z):
    """Append a column of ones: x -> (x, 1)."""
    return torch.cat([Z, torch.ones(len(Z), 1, dtype=Z.dtype)], dim=1)


g = torch.Generator().manual_seed(SEED)
n_s, d_s, k_s = 30, 5, 4
Xs = torch.randn(n_s, d_s, generator=g, dtype=torch.float64)
ys = torch.randint(0, k_s, (n_s,), generator=g)


def loss_of(theta):  # theta: W~ (k_s x (d_s + 1)) flattened row by row
    return F.cross_entropy(augment(Xs) @ theta.reshape(k_s, d_s + 1).T, ys)


theta = 0.3 * torch.randn(k_s * (d_s + 1), generator=g, dtype=torch.float64)
theta.requires_grad_(True)
S = torch.softmax(augment(Xs) @ theta.detach().reshape(k_s, d_s + 1).T, dim=1)
grad_formula = (S - F.one_hot(ys, k_s)).T @ augment(Xs) / n_s
grad_autograd = torch.autograd.grad(loss_of(theta), theta)[0].reshape(k_s, d_s + 1)
np.testing.assert_allclose(grad_formula, grad_autograd, rtol=1e-12, atol=1e-14)

theta0 = torch.zeros(k_s * (d_s + 1), dtype=torch.float64)
np.testing.assert_allclose(loss_of(theta0).item(), math.log(k_s), rtol=1e-14)
H_autograd = torch.autograd.functional.hessian(loss_of, theta0)
M_s = augment(Xs).T @ augment(Xs) / n_s
first_factor = torch.eye(k_s, dtype=torch.float64) / k_s - 1 / k_s**2
np.testing.assert_allclose(
    torch.kron(first_factor, M_s), H_autograd, rtol=1e-12, atol=1e-14
)
np.testing.assert_allclose(
    torch.linalg.eigvalsh(H_autograd)[-1],
    torch.linalg.eigvalsh(M_s)[-1] / k_s,
    rtol=1e-10,
)
print("gradient, initial loss log K and Hessian at zero: match torch.autograd")


# %%


def quadratic_run(lr, momentum, curvature=4.0, steps=200):
    """|theta| after `steps` of SGD on f(theta) = curvature * theta^2 / 2 from 1."""
    theta_q = torch.ones(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([theta_q], lr=lr, momentum=momentum)
    for _ in range(steps):
        opt.zero_grad()
        (curvature * theta_q**2 / 2).sum().backward()
        opt.step()
    return abs(theta_q.item())


for beta in (0.0, MOMENTUM):
    limit = 2 * (1 + beta) / 4.0
    assert quadratic_run(0.98 * limit, beta) < 1 < quadratic_run(1.02 * limit, beta)
print(
    f"step-size limits 2/lambda (gradient descent) and 2(1+beta)/lambda\n"
    f"(momentum {MOMENTUM}): confirmed on a quadratic"
)


def gd_bound(Z):
    """2 / lambda_max of the Hessian at W~ = 0: gradient descent's largest stable lr."""
    Za = augment(Z.double())
    return 2 * K / torch.linalg.eigvalsh(Za.T @ Za / len(Za))[-1].item()


lr_bound_raw = gd_bound(X)
limits = {"gradient descent": lr_bound_raw, "momentum": (1 + MOMENTUM) * lr_bound_raw}
print(
    f"at W~ = 0 on raw pixels: gradient descent is stable below "
    f"2/lambda_max = {lr_bound_raw:.2e},\n"
    f"momentum below 2(1+beta)/lambda_max = {limits['momentum']:.2e}"
)

# %% [markdown]
# The bound is tiny because the pixels are large: $M$ grows with the square of the pixel values,
# which reach 255. Keep this number in mind for the next experiment.
#
# (sec-ch04-full-batch)=
# ### Full batch: gradient descent, momentum and Adam
#
# With the whole training subset as the batch, every step uses the exact gradient and an epoch
# is a single step. The source notes run each optimizer of [chapter 3](03_optimizers.ipynb) at
# two learning rates. Here each runs for `NUM_STEPS_FULL` steps on a grid of rates that contains
# the notes' two (momentum with $\beta = 0.9$; Adam with PyTorch's defaults). With the full
# batch and weights that start at zero there is nothing random in a run: the only thing a
# {term}`seed` can change is which images are drawn. So each seed draws its own `N_TRAIN`
# training images (seed `SEED` draws the subset used everywhere else on this page), and every
# configuration runs once per seed.


# %%
def make_optimizer(name, params, lr):
    if name == "gradient descent":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM)
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(
        f"unknown optimizer {name!r}; choose 'gradient descent', 'momentum' or 'Adam'"
    )


def train_full_batch(Z, targets, optimizer_name, lr, num_steps, bar=None):
    """Full-batch training of a zero-initialised softmax regression.

    Returns the model and the loss after t = 0, 1, ..., num_steps steps.
    """
    model = softmax_regression(Z.shape[1], K)
    optimizer = make_optimizer(optimizer_name, model.parameters(), lr)
    losses = []
    for _ in range(num_steps):
        loss = F.cross_entropy(model(Z), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if bar is not None:
            bar.update(1)
    with torch.no_grad():
        losses.append(F.cross_entropy(model(Z), targets).item())
    return model, np.array(losses)


# %%
subsets = {}  # seed -> (pixels 0..255, labels) of its own N_TRAIN training images
for seed in SEEDS:
    images_s, labels_s = draw_training_subset(seed)
    Z_s = training.as_float_images(images_s, scale="raw")
    subsets[seed] = (Z_s, torch.as_tensor(labels_s))
bound_of = {seed: gd_bound(Z_s) for seed, (Z_s, _) in subsets.items()}

configs = [(name, lr) for name, lrs in LRS_FULL.items() for lr in lrs]
full_runs = {}  # (optimizer, lr, seed) -> loss after 0, 1, ..., NUM_STEPS_FULL steps
rows = []  # one row per run
total = len(configs) * len(SEEDS) * NUM_STEPS_FULL
with tqdm(total=total, desc="full-batch grid") as bar:
    for seed, (Z_s, y_s) in subsets.items():
        for name, lr in configs:
            losses = train_full_batch(Z_s, y_s, name, lr, NUM_STEPS_FULL, bar)[1]
            full_runs[name, lr, seed] = losses
            rows.append((name, lr, seed, losses[-1], losses.max() > losses[0]))
results_full = pd.DataFrame(rows, columns=["optimizer", "lr", "seed", "final", "rose"])
summary_full = stats.summarize(results_full, ["optimizer", "lr"], "final")
rose = results_full.groupby(["optimizer", "lr"], sort=False)["rose"].sum()

# each optimizer's best rate: the one whose worst seed ended lowest
worst_seed = summary_full["max"]
best_lr = {name: worst_seed.loc[name].idxmin() for name in LRS_FULL}

# %% [markdown]
# The next cell prints the grid as a table: the final loss as mean ± sd over the seeds and its
# range, whether the rate is above the optimizer's stability limit at $\tilde W = 0$ (for
# gradient descent and momentum) on every seed, and on how many seeds the loss rose above its
# starting value $\log K$ at some step.


# %% tags=["hide-input", "nbval-measured"] tolerance={"abs": 6.7, "rel": 4.1}
def above_limit(name, lr):
    """'yes' ('no') when lr is above (below) the optimizer's limit on every seed."""
    if name not in limits:
        return "-"
    factor = 1 + MOMENTUM if name == "momentum" else 1.0
    above = [lr > factor * bound_of[seed] for seed in SEEDS]
    return "yes" if all(above) else "no" if not any(above) else "at it"


table = pd.DataFrame(
    {
        "optimizer": [name for name, _ in summary_full.index],
        "lr": [f"{lr:.0e}" for _, lr in summary_full.index],
        "above limit": [above_limit(*key) for key in summary_full.index],
        f"loss after {NUM_STEPS_FULL}": [
            stats.mean_sd(m, sd, ".3f")
            for m, sd in zip(summary_full["mean"], summary_full["sd"])
        ],
        "min": summary_full["min"].map("{:.3f}".format).values,
        "max": summary_full["max"].map("{:.3f}".format).values,
        "rose above start": [f"{k} of {len(SEEDS)}" for k in rose],
    }
)
print(
    f"{data_label}, {N:,} images per seed, {len(SEEDS)} seeds; "
    f"start: log K = {math.log(K):.4f}"
)
print(table.to_string(index=False))

# %% [markdown]
# The figure draws every run of seed `SEED`, one panel per optimizer (the notes' two rates
# thicker), and, in the fourth panel, the three optimizers at their own best rates: the mean
# over the seeds and, shaded, the range.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.4), sharey=True)
steps = np.arange(NUM_STEPS_FULL + 1)
colors = dict(zip(LRS_FULL, plt.get_cmap("tab10").colors))
for ax, (name, lrs) in zip(axes.flat, LRS_FULL.items()):
    for k, lr in enumerate(lrs):
        notes = lr in LRS_NOTES[name]
        ax.plot(
            steps,
            full_runs[name, lr, SEED],
            lw=2.2 if notes else 1.0,
            color=plt.get_cmap("viridis")(k / (len(lrs) - 1)),
            label=f"{lr:.0e}" + (" (notes)" if notes else ""),
        )
    ax.set_title(name)
    ax.legend(fontsize=7, title="learning rate", title_fontsize=7)
ax = axes[1, 1]
for name, lr in best_lr.items():
    runs = np.array([full_runs[name, lr, seed] for seed in SEEDS])
    ax.plot(steps, runs.mean(0), color=colors[name], label=f"{name}, {lr:.0e}")
    ax.fill_between(steps, runs.min(0), runs.max(0), color=colors[name], alpha=0.3)
ax.set_title("each at its own best rate")
ax.legend(fontsize=7)
for ax in axes.flat:
    ax.axhline(math.log(K), color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step (= epoch, full batch)")
for ax in axes[:, 0]:
    ax.set_ylabel("training loss (nats)")
fig.suptitle(
    f"Full-batch softmax regression on {data_label}, raw pixels\n"
    f"({N:,} images per seed; dotted: log K, the start)"
)
plt.show()

small_gd, large_gd = (
    np.array([full_runs["gradient descent", lr, s] for s in SEEDS])
    for lr in LRS_NOTES["gradient descent"]
)
small_mom, large_mom = (
    np.array([full_runs["momentum", lr, s] for s in SEEDS])
    for lr in LRS_NOTES["momentum"]
)
small_adam, large_adam = (
    np.array([full_runs["Adam", lr, s] for s in SEEDS]) for lr in LRS_NOTES["Adam"]
)
assert np.all(np.diff(small_gd, axis=1) <= 1e-6)  # decreases at every step, every seed
# momentum gets further than gradient descent at the same rate
assert np.all(small_mom[:, -1] < small_gd[:, -1])
for runs in (large_gd, large_mom, large_adam):  # the large rates overshoot at first
    assert np.all(runs.max(1) > math.log(K))
for runs in (small_gd, small_mom, small_adam):  # still falling over the last 10 steps
    assert np.all(runs[:, -1] < runs[:, -11])
# above their limits, where gradient descent and momentum end depends on the seed
# far more than at the small rate; Adam at its small rate never rises above the start
for small, large in ((small_gd, large_gd), (small_mom, large_mom)):
    assert np.ptp(large[:, -1]) > 10 * np.ptp(small[:, -1])
assert np.all(small_adam.max(1) <= small_adam[:, 0])

# %% [markdown]
# What the grid shows on the data that ran (the checks under the figure assert each statement
# on every seed):
#
# - **Gradient descent** at the notes' small rate $10^{-6}$, below the limit $2/\lambda_{\max}$,
#   decreases the loss at every step, but slowly. At the notes' large rate $10^{-5}$, above the
#   limit, the first steps overshoot and the loss climbs above its starting value $\log K$;
#   where such a run ends depends strongly on the seed (its final losses spread more than ten
#   times as widely as at $10^{-6}$). The limit
#   describes the curvature at $\tilde W = 0$ only. Once the weights grow, the softmax
#   saturates and the curvature falls, which is why such a run can come back down at all, and
#   why the best rate on the grid, just above the limit, still works: its loss never rises
#   above the start.
# - **Momentum** at the same small rate gets further than gradient descent, since its velocity
#   accumulates up to $1/(1-\beta) = 10$ steps' worth of gradient. At the large rate it is
#   above its own limit $2(1+\beta)/\lambda_{\max}$: the loss overshoots, and where it ends
#   depends strongly on the seed (the same test as for gradient descent).
# - **Adam** scales each coordinate's step by a running estimate of the gradient's size, so its
#   learning rate is roughly the step in parameter units, whatever the gradient's scale. At
#   $10^{-3}$ that step is large for weights that multiply pixels of size 255: the loss shoots
#   up above $\log K$ at first. At $10^{-5}$ its loss never rises above the start.
#
# The runs at the notes' small rates are all still falling at the last step: on raw pixels the
# problem is badly conditioned, and no optimizer reaches the minimum in `NUM_STEPS_FULL` steps
# at a rate that is safe at the start. {ref}`sec-ch04-input-scaling` makes this precise.
#
# (sec-ch04-matched)=
# ### The same budget, each optimizer at its own best rate
#
# The source notes conclude that Adam tolerates a larger learning rate than gradient descent and
# momentum and then converges faster. Two runs per optimizer at hand-picked rates cannot show
# that: a fair comparison gives every optimizer the same number of steps and its own best rate.
# The grid above provides both. For each optimizer the cell below picks the rate whose *worst*
# seed ended lowest (a rate that works on every draw of the data, not one that got lucky once),
# and compares the three at those rates and at one rate they share, `LR_SHARED`.

# %% tags=["nbval-measured"] tolerance={"abs": 0.024, "rel": 2.7}
print(f"each optimizer at its own best rate, {NUM_STEPS_FULL} full-batch steps:")
finals = {}
for name, lr in best_lr.items():
    finals[name] = results_full.query("optimizer == @name and lr == @lr")[
        "final"
    ].values
    print(f"  {name:>16}: lr {lr:.0e}, final loss {over_seeds(finals[name])}")
ratio = best_lr["Adam"] / max(best_lr["gradient descent"], best_lr["momentum"])
print(f"Adam's best rate over the larger of the other two: a factor {ratio:.0f}")
assert ratio >= 10
assert finals["Adam"].max() < finals["momentum"].min()  # ranges disjoint: Adam ahead
assert finals["momentum"].max() < finals["gradient descent"].min()
for name, lrs in LRS_FULL.items():  # the grid brackets every best rate
    assert lrs[0] < best_lr[name] < lrs[-1], name
# gradient descent's best rate is above its limit at W~ = 0, yet never rose above log K
gd_best = best_lr["gradient descent"]
assert gd_best > max(bound_of.values()) and rose["gradient descent", gd_best] == 0

# %% tags=["nbval-measured"] tolerance={"abs": 6.7, "rel": 1.7}
shared = {
    name: results_full.query("optimizer == @name and lr == @LR_SHARED")["final"].values
    for name in LRS_FULL
}
print(
    f"all three at the shared rate {LR_SHARED:.0e}, {NUM_STEPS_FULL} full-batch steps:"
)
for name, v in shared.items():
    print(f"  {name:>16}: final loss {over_seeds(v)}")
assert LR_SHARED > 5 * limits["gradient descent"]
# gradient descent and momentum end more than twice as high as Adam's worst seed
others = min(shared["gradient descent"].min(), shared["momentum"].min())
assert others > 2 * shared["Adam"].max()

# %% [markdown]
# On the data that ran, both halves of the notes' claim hold at this matched budget:
#
# - **Adam tolerates larger rates.** Its best rate on the grid is a hundred times that of
#   gradient descent and of momentum (printed; asserted: at least ten times). At the shared rate
#   $3\times10^{-5}$, more than five times gradient descent's limit (asserted), gradient descent
#   and momentum jump around and end more than twice as high as Adam's worst seed, on every
#   seed (asserted).
# - **At its own best rate Adam gets furthest.** Adam ends lowest, then momentum, then gradient
#   descent, with ranges over the seeds that do not overlap (asserted), so this is a ranking and
#   not a tie: 0.310, 0.395 and 0.697 on average after 100 steps.
#
# Two limits of this result: it is one budget on one grid of rates a factor of about three
# apart (each optimizer's best rate is inside its grid, asserted, but a finer grid could move it
# a little), and it is the full-batch problem on raw pixels, where the conditioning is bad and
# gradient descent pays most for it; {ref}`sec-ch04-input-scaling` shows how much of the gap is
# the scale of the inputs.
#
# (sec-ch04-batch-size)=
# ## Batch size
#
# Now the steps use minibatches. The source notes train the same softmax regression with Adam at
# learning rate $\eta = 10^{-5}$ for 20 epochs at batch sizes 8, 16, 64, 1,024 and 4,096, and
# compare the loss per epoch. An epoch at batch size 8 is many more steps than an epoch at
# 4,096, each with a noisier gradient; the question is which wins per epoch, per step and per
# second. Every run below gets a new zero-initialised model, a new optimizer and a new
# `DataLoader` seeded with the run's seed, so that the runs of one seed differ only in the batch
# size, and each batch size runs with every seed (the seed changes the order of the batches).


# %%
def run_batch_size(batch_size, seed, bar=None):
    """One run of the sweep: a fresh model and Adam, a loader seeded with `seed`."""
    model = softmax_regression(D, K)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR_ADAM)
    loader = training.make_loader(X, y, batch_size=batch_size, seed=seed)
    t0 = time.process_time()
    losses = train_epochs(model, optimizer, loader, NUM_EPOCHS, bar)
    return model, np.array(losses), time.process_time() - t0


steps_per_epoch = {b: math.ceil(N / b) for b in BATCH_SIZES}
sweep, models, cpu_seconds = {}, {}, {}  # keyed by (batch size, seed)
total = NUM_EPOCHS * sum(steps_per_epoch.values()) * len(SEEDS)
with tqdm(total=total, desc="batch-size sweep") as bar:
    for seed in SEEDS:
        for b in BATCH_SIZES:
            models[b, seed], sweep[b, seed], cpu_seconds[b, seed] = run_batch_size(
                b, seed, bar
            )


# %% tags=["nbval-measured"] tolerance={"abs": 0.06, "rel": 5.4}
first = {b: np.array([sweep[b, s][0] for s in SEEDS]) for b in BATCH_SIZES}
final = {b: np.array([sweep[b, s][-1] for s in SEEDS]) for b in BATCH_SIZES}
print(f"Adam, lr {LR_ADAM:.0e}, {N:,} images; loss per epoch, {len(SEEDS)} seeds:")
print(
    pd.DataFrame(
        {
            "batch size": BATCH_SIZES,
            "steps per epoch": [steps_per_epoch[b] for b in BATCH_SIZES],
            "steps in total": [NUM_EPOCHS * steps_per_epoch[b] for b in BATCH_SIZES],
            "loss, epoch 1": [mean_sd_of(first[b]) for b in BATCH_SIZES],
            f"loss, epoch {NUM_EPOCHS}": [mean_sd_of(final[b]) for b in BATCH_SIZES],
        }
    ).to_string(index=False)
)

# %% [markdown]
# How much an epoch costs depends on the machine and on what else runs on it, so the next cell
# (CPU seconds of this process, which other programs do not inflate) prints numbers that only
# describe the machine that built the page; the statements the text makes about them are
# asserted in the cell.

# %% tags=["nbval-ignore-output"] ignore_reason="CPU time per run depends on the machine, its load and its BLAS"
sec_per_epoch = {
    b: np.mean([cpu_seconds[b, s] for s in SEEDS]) / NUM_EPOCHS for b in BATCH_SIZES
}
for b in BATCH_SIZES:
    print(
        f"batch size {b:>5}: {1e3 * sec_per_epoch[b]:6.1f} ms per epoch, "
        f"{1e6 * sec_per_epoch[b] / steps_per_epoch[b]:7.0f} µs per step"
    )
smallest, largest = BATCH_SIZES[0], BATCH_SIZES[-1]
assert sec_per_epoch[smallest] > 2 * sec_per_epoch[1024]  # small batches: slower epochs
per_step = {b: sec_per_epoch[b] / steps_per_epoch[b] for b in BATCH_SIZES}
assert per_step[largest] == max(per_step.values())  # the largest batch: slowest steps

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.6), sharey=True)
epochs = np.arange(1, NUM_EPOCHS + 1)
for k, b in enumerate(BATCH_SIZES):
    runs = np.array([sweep[b, s] for s in SEEDS])
    color = plt.get_cmap("tab10").colors[k]
    for ax, x in zip(axes, (epochs, steps_per_epoch[b] * epochs)):
        ax.plot(x, runs.mean(0), marker=".", color=color, label=f"{b:,}")
        ax.fill_between(x, runs.min(0), runs.max(0), color=color, alpha=0.25)
axes[0].set_xlabel("epoch")
axes[0].set_title("per epoch")
axes[0].xaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[1].set_xscale("log")
axes[1].set_xlabel("optimizer steps taken (log scale)")
axes[1].set_title("per step")
axes[0].set_ylabel("training loss of the epoch (nats)")
axes[0].legend(title="batch size", fontsize=8, title_fontsize=8)
for ax in axes:
    ax.set_yscale("log")
fig.suptitle(
    f"Adam, lr = {LR_ADAM:.0e}, on {data_label} ({N:,} images)\n"
    f"mean and range over {len(SEEDS)} seeds"
)
plt.show()

# %%
# Per epoch: from the second batch size up, each larger batch ends higher on every seed.
for small, large in zip(BATCH_SIZES[1:-1], BATCH_SIZES[2:]):
    assert final[small].max() < final[large].min(), (small, large)
# The two smallest batch sizes are the closest pair.
gaps = np.diff([final[b].mean() for b in BATCH_SIZES])
assert abs(gaps[0]) < gaps[1:].min()
# Per step: at the number of steps the smaller batch takes in one epoch, the larger
# batch (interpolated on a log scale of steps) is already lower, on every seed.
for seed in SEEDS:
    for small, large in zip(BATCH_SIZES[:-1], BATCH_SIZES[1:]):
        steps_large = steps_per_epoch[large] * epochs
        at_same_step = np.exp(
            np.interp(
                np.log(steps_per_epoch[small]),
                np.log(steps_large),
                np.log(sweep[large, seed]),
            )
        )
        assert at_same_step < sweep[small, seed][0], (seed, small, large)

# %% [markdown]
# Per epoch (left), the smaller the batch, the lower the loss: from batch size 16 up, each
# larger batch ends higher on every seed (asserted), and the two smallest, 8 and 16, are the
# closest pair (asserted), close enough that their ranges over the seeds can overlap, which the
# book counts as a tie. Per step (right) the order reverses: at a given number of steps the
# larger batches are ahead (asserted for each neighbouring pair and every seed), because their
# gradient is less noisy. Both follow from Adam's small fixed learning rate. Each Adam step
# moves each weight by at most about $\eta = 10^{-5}$, whatever the batch size, so the distance
# covered in an epoch grows with the number of steps in it, and batch size 8 takes hundreds of
# times as many steps per epoch as batch size 4,096 (the table's "steps per epoch"). The noise
# of a small batch costs little at so small a step.
#
# What an epoch costs in time is a separate question, and the timing cell answers it for the
# machine that built the page. On it, an epoch at batch size 8 took more than twice as long as
# one at 1,024 (asserted): the fixed cost of a step (the Python loop, the forward and backward
# pass of a small model, the optimizer call) is paid 625 times per epoch instead of a handful.
# Per step, the largest batch was the slowest (asserted). A `DataLoader` over a `TensorDataset`
# fetches the examples of a batch one at a time and stacks them, so part of the cost is per
# example and does not shrink with fewer, larger steps. With a learning rate tuned for each
# batch size the picture changes as well: large batches want larger steps
# {cite}`ch04-goyal2017accurate,ch04-shallue2019measuring`, and whether small batches also
# generalise better is debated {cite}`ch04-keskar2017largebatch,ch04-masters2018revisiting`.
# [Chapter 6](06_mlp_training_dynamics.ipynb) measures test accuracy against the batch size
# ({ref}`sec-ch06-batch-size`).
#
# (sec-ch04-notes-loop)=
# ### The source notes' loop: a stale optimizer
#
# The source notes write the sweep differently. They create one model and one Adam optimizer
# before the loop over batch sizes and, at the start of each batch size, set the model's weights
# back to zero. The weights are reset in place, so the optimizer still holds them, and it keeps
# its state: Adam's running averages $\mathbf{m}_t$ and $\mathbf{v}_t$ of the gradient and of
# its square, and its step count $t$. From the second batch size on, Adam therefore starts with
# the previous run's moment estimates instead of zeros, and with the bias correction of its
# first steps already switched off ($1 - \beta_1^t \approx 1$ for large $t$). The weights do
# start from zero every time. The cell runs that loop exactly, with every seed, and sets it beside
# the fresh runs above.


# %%
def notes_loop(seed):
    """The source notes' sweep: one model and one Adam for every batch size.

    The weights are set back to zero before each batch size; the optimizer is not reset.
    """
    model = softmax_regression(D, K)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR_ADAM)
    losses, steps_before = {}, {}
    for batch_size in BATCH_SIZES:
        with torch.no_grad():  # in place: the optimizer still holds these tensors
            model.weight.zero_()
            model.bias.zero_()
        state = optimizer.state[model.weight]
        steps_before[batch_size] = int(state["step"]) if state else 0
        loader = training.make_loader(X, y, batch_size=batch_size, seed=seed)
        losses[batch_size] = np.array(
            train_epochs(model, optimizer, loader, NUM_EPOCHS)
        )
    return losses, steps_before


notes = {seed: notes_loop(seed) for seed in tqdm(SEEDS, desc="the notes' loop")}
steps_before = notes[SEED][1]
print(
    "Adam's step count when each batch size starts:\n"
    + ", ".join(f"{b}: {steps_before[b]:,}" for b in BATCH_SIZES)
)
assert steps_before[BATCH_SIZES[1]] == NUM_EPOCHS * steps_per_epoch[BATCH_SIZES[0]]

# %% tags=["nbval-measured"] tolerance={"abs": 0.06, "rel": null}
first_notes = {b: np.array([notes[s][0][b][0] for s in SEEDS]) for b in BATCH_SIZES}
final_notes = {b: np.array([notes[s][0][b][-1] for s in SEEDS]) for b in BATCH_SIZES}
print(f"{'':>10}   {'loss, epoch 1':^29}   {f'loss, epoch {NUM_EPOCHS}':^29}")
columns = ("fresh", "notes loop", "fresh", "notes loop")
print(f"{'batch size':>10}   " + "  ".join(f"{c:>13}" for c in columns))
for b in BATCH_SIZES:
    print(
        f"{b:>10}   {mean_sd_of(first[b]):>13}  {mean_sd_of(first_notes[b]):>13}   "
        f"{mean_sd_of(final[b]):>13}  {mean_sd_of(final_notes[b]):>13}"
    )
change = max(abs(final_notes[b].mean() / final[b].mean() - 1) for b in BATCH_SIZES)
print(f"largest relative change of a mean final loss: {change:.3f}")
# the first batch size is a fresh run in both loops: identical, seed by seed
assert all(
    np.array_equal(notes[s][0][BATCH_SIZES[0]], sweep[BATCH_SIZES[0], s]) for s in SEEDS
)
assert change < 0.1
# first epoch: lower than fresh with hundreds of steps per epoch, higher with a handful
for b in (16, 64):
    assert first_notes[b].max() < first[b].min(), b
for b in (1024, 4096):
    assert first_notes[b].min() > first[b].max(), b
# the batch sizes whose fresh ranges are disjoint keep their order in the notes' loop
for small, large in zip(BATCH_SIZES[1:-1], BATCH_SIZES[2:]):
    assert final_notes[small].mean() < final_notes[large].mean(), (small, large)

# %% [markdown]
# The first batch size is a fresh run in both loops, and its losses agree exactly (asserted).
# From the second on, the notes' loop starts each batch size with Adam's state from the runs
# before it (the step count printed above: 12,500 steps already taken when batch size 16
# starts). What that changes most is the first epoch: with hundreds of steps per epoch (batch
# sizes 16 and 64) the first epoch of the notes' loop ends lower than a fresh run's, with a
# handful (1,024 and 4,096) higher, on every seed (asserted). After 20 epochs the differences
# are small: no mean final loss moves by more than 3.7% (asserted: less than 10%), and from
# batch size 16 up the batch sizes keep their order (asserted). So on this data the notes' loop
# does not reverse the comparison of batch sizes. It does compare runs that do not start alike,
# and whether the carried-over state helps or hurts depends on the batch size and on the
# epoch, so its effect cannot be predicted in general: the loop that starts every run fresh is
# the one to use.
#
# A different mistake does stop training altogether: building a new model for each run but
# keeping the old optimizer. The optimizer updates the parameter tensors it was given when it
# was built, so the new model never moves.

# %%
stale_optimizer = torch.optim.Adam(softmax_regression(D, K).parameters(), lr=LR_ADAM)
new_model = softmax_regression(D, K)  # a new model, with the optimizer of another one
loss_stale = train_epochs(
    new_model,
    stale_optimizer,
    training.make_loader(X, y, batch_size=1024, seed=SEED),
    1,
)[0]
assert torch.count_nonzero(new_model.weight) == 0
assert torch.count_nonzero(new_model.bias) == 0
print(
    f"new model, optimizer of another model: weights still all zero after an epoch;\n"
    f"epoch loss {loss_stale:.4f} = log K = {math.log(K):.4f}"
)

# %% [markdown]
# (sec-ch04-epochs-vs-lr)=
# ## How many epochs does training need, as a function of the learning rate?
#
# The source exercise on batching asks this outright. To answer it, Adam trains the same model
# with minibatches of `BATCH_SIZE_LR` at learning rates from $10^{-6}$ to $10^{-3}$ (a factor of
# about three apart up to $10^{-4}$), with every seed, for at most `NUM_EPOCHS` epochs. After
# each epoch the model is scored on the whole training subset (with the weights frozen, so the
# number is the loss of one model), and the run's answer is the first epoch at which that loss
# is at most `TARGET_LOSS`, or "never" if that does not happen within the budget. A learning
# rate's answer is the median over the seeds (a "never" counts as more than any number of
# epochs), so one lucky or unlucky seed does not decide it; the figure shows every seed.


# %%
def epochs_to_target(lr, seed):
    """Adam at `lr`: training loss after each epoch, first epoch <= TARGET_LOSS."""
    model = softmax_regression(D, K)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loader = training.make_loader(X, y, batch_size=BATCH_SIZE_LR, seed=seed)
    losses = []
    for _ in range(NUM_EPOCHS):
        train_epochs(model, optimizer, loader, 1)
        with torch.no_grad():
            losses.append(F.cross_entropy(model(X), y).item())
    reached = np.flatnonzero(np.array(losses) <= TARGET_LOSS)
    return np.array(losses), (int(reached[0]) + 1 if len(reached) else math.inf)


lr_runs, needed = {}, {}
for lr in tqdm(LRS_EPOCHS, desc="learning rates"):
    for seed in SEEDS:
        lr_runs[lr, seed], needed[lr, seed] = epochs_to_target(lr, seed)
median_needed = {
    lr: float(np.median([needed[lr, s] for s in SEEDS])) for lr in LRS_EPOCHS
}


# %% tags=["nbval-measured"] tolerance={"abs": 4.0, "rel": 0.31}
def epochs_text(e):
    return "never" if math.isinf(e) else f"{e:.0f}"


print(
    f"Adam, batch size {BATCH_SIZE_LR}, {N:,} images: epochs until the training loss "
    f"is <= {TARGET_LOSS}\n(budget {NUM_EPOCHS} epochs; median of {len(SEEDS)} seeds)"
)
for lr in LRS_EPOCHS:
    print(f"  lr {lr:.0e}: {epochs_text(median_needed[lr]):>5}")

# %% [markdown]
# The full-batch runs of {ref}`sec-ch04-full-batch` add the other half of the answer. Below its
# stability limit, gradient descent with a small rate follows the gradient flow
# $\dot{\boldsymbol\theta} = -\nabla\mathcal{L}(\boldsymbol\theta)$ in steps of length $\eta$, so
# the loss after $t$ steps depends on the product $\eta t$ alone, and the number of steps (here:
# epochs) to any target is inversely proportional to $\eta$. The cell compares, for each
# optimizer, two neighbouring rates of the grid (about a factor $3$ apart), after numbers of
# steps that give the same $\eta t$.

# %% tags=["nbval-measured"] tolerance={"abs": 4.0, "rel": null}
pairs = {
    "gradient descent": (3e-7, 1e-6),
    "momentum": (3e-7, 1e-6),
    "Adam": (1e-5, 3e-5),
}
apart = {}
print(f"loss after t steps at rate eta, the same eta * t (seed {SEED}):")
header = f"{'eta':>5}  {'t':>3}  {'loss':>6}"
print(f"{'':>16}  {header}   {header}  apart")
for name, (lr_small, lr_large) in pairs.items():
    t_large = round(NUM_STEPS_FULL * lr_small / lr_large)
    slow = full_runs[name, lr_small, SEED][NUM_STEPS_FULL]
    fast = full_runs[name, lr_large, SEED][t_large]
    apart[name] = abs(slow - fast) / fast
    print(
        f"{name:>16}  {lr_small:.0e}  {NUM_STEPS_FULL:>3}  {slow:.4f}   "
        f"{lr_large:.0e}  {t_large:>3}  {fast:.4f}  {apart[name]:.3f}"
    )
    same_eta_t = lr_large * t_large / (lr_small * NUM_STEPS_FULL)
    assert abs(same_eta_t - 1) < 0.02
assert pairs["gradient descent"][1] < min(bound_of.values())  # both below the limit
assert apart["gradient descent"] < 0.01 < 0.03 < apart["Adam"]
assert apart["gradient descent"] < apart["momentum"] < apart["Adam"]
# Adam: after the same eta * t, the larger rate is behind the smaller one
assert fast > slow  # (the last pair printed is Adam's)
assert name == "Adam"

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.5))
ax = axes[0]
never_at = NUM_EPOCHS + 3
for k, seed in enumerate(SEEDS):
    shown = [min(needed[lr, seed], never_at) for lr in LRS_EPOCHS]
    ax.plot(
        np.array(LRS_EPOCHS) * 1.06 ** (k - 1),
        shown,
        "o",
        ms=4,
        alpha=0.6,
        label="each seed" if k == 0 else None,
        color="tab:blue",
    )
ax.plot(
    LRS_EPOCHS,
    [min(median_needed[lr], never_at) for lr in LRS_EPOCHS],
    "k-",
    lw=1,
    label="median",
)
ax.axhline(NUM_EPOCHS + 1.5, color="grey", ls=":", lw=1)
ax.text(LRS_EPOCHS[1], never_at, "never (within the budget)", fontsize=8, va="center")
ax.set_xscale("log")
ax.set_ylim(0, never_at + 1)
ax.set_xlabel("learning rate (log scale)")
ax.set_ylabel(f"epochs until training loss ≤ {TARGET_LOSS}")
ax.set_title(f"Adam, batch size {BATCH_SIZE_LR}")
ax.legend(fontsize=8, loc="center left")
ax = axes[1]
for lr in LRS_FULL["gradient descent"][:4]:
    t = np.arange(NUM_STEPS_FULL + 1)
    ax.plot(lr * t[1:], full_runs["gradient descent", lr, SEED][1:], label=f"{lr:.0e}")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("learning rate × steps, η t (log scale)")
ax.set_ylabel("training loss (nats)")
ax.set_title("full-batch gradient descent")
ax.legend(fontsize=8, title="learning rate", title_fontsize=8)
fig.suptitle(f"How many epochs? ({data_label}, {N:,} images, raw pixels)")
plt.show()

# from 3e-6 to 3e-5: fewer epochs at a larger rate, but less than in proportion
inner = [lr for lr in LRS_EPOCHS if 3e-6 <= lr <= 3e-5]
assert median_needed[inner[0]] > median_needed[inner[1]] >= median_needed[inner[2]]
products = [lr * median_needed[lr] for lr in inner]  # epochs x rate grows with the rate
assert all(a < b for a, b in zip(products, products[1:]))
assert math.isinf(median_needed[LRS_EPOCHS[0]])  # the smallest rate: never, median seed
assert all(math.isinf(needed[LRS_EPOCHS[-1], s]) for s in SEEDS)  # the largest: no seed
# at 1e-4 the loss jumps up between epochs far more than at 1e-5
jump = {lr: max(np.diff(lr_runs[lr, s]).max() for s in SEEDS) for lr in (1e-5, 1e-4)}
assert jump[1e-4] > 3 * jump[1e-5]
# full batch: 1e-5, far above the limit, leaves the eta * t curve at once
off_curve = full_runs["gradient descent", 1e-5, SEED][10]  # eta * t = 1e-4
assert off_curve > 1.5 * full_runs["gradient descent", 1e-6, SEED][100]
# gradient descent's and momentum's best full-batch rates lie within 3x of their limits
for name, factor in (("gradient descent", 1.0), ("momentum", 1 + MOMENTUM)):
    assert 1 / 3 < best_lr[name] / (factor * lr_bound_raw) < 3, name

# %% [markdown]
# The answer has two regimes and an edge between them.
#
# - **Small rates: epochs in inverse proportion to $\eta$.** For full-batch gradient descent
#   below its limit this is the gradient flow: after the same $\eta t$ the runs at
#   $3\times10^{-7}$ and $10^{-6}$ are 0.3% apart (asserted: within 1%), so a rate three times
#   smaller needs three times as many epochs to any target. Momentum is near the law but not
#   on it (3.2% apart here): its velocity takes about $1/(1-\beta) = 10$ steps to build up, a
#   large part of the 30 steps at the larger rate. Adam is furthest from it (11.8% apart,
#   asserted: more than 3% and more than momentum): after the same $\eta t$ the larger rate is
#   behind (asserted), so raising Adam's rate buys less than in proportion. The minibatch
#   table shows the same for Adam: 13 epochs at $3\times10^{-6}$, 5 at $10^{-5}$ and 3 at
#   $3\times10^{-5}$ (asserted: fewer epochs at a larger rate, but the product of rate and
#   epochs grows), while at $10^{-6}$ the target is not reached within the budget of 20
#   epochs.
# - **Large rates: no gain, then never.** Past the middle of the grid more rate stops helping.
#   At $10^{-4}$ the loss jumps up and down from epoch to epoch (asserted: its largest rise
#   between two epochs is more than three times that at $10^{-5}$), and at $10^{-3}$ no seed
#   reaches the target within the budget (asserted). For full-batch gradient descent this edge
#   is the stability limit $2/\lambda_{\max}$ of {ref}`sec-ch04-softmax-regression`.
#
# The right panel of the figure draws gradient descent's full-batch losses against $\eta t$:
# the two rates below the limit lie on one curve, while $10^{-5}$, far above it, leaves it at
# once (asserted: at $\eta t = 10^{-4}$ its loss is more than 50% above that of $10^{-6}$).
#
# In short: below the edge, halving the learning rate about doubles the epochs needed (for
# gradient descent to within 1%, for Adam less than that); above it, no number of epochs gets
# there. The rate that needs the fewest epochs sits just below the edge, which is also why the
# best rates of gradient descent and momentum in {ref}`sec-ch04-matched` lie within a factor
# $3$ of their limits (asserted). [Chapter 3](03_optimizers.ipynb) measures the same trade-off
# in steps on the Rosenbrock function.
#
# (sec-ch04-accuracy)=
# ## How well does it classify?
#
# Training loss is what the optimizer sees; accuracy on images it has not seen is what a user
# sees, measured on the {term}`test set`. The source notes report $65.3\%$ test accuracy for
# this model after 20 epochs at batch size 16 on the real Sign Language MNIST data. That is
# their number, on their data. Ours, on the data named at the top of the page, is below for
# every run of the batch-size sweep, with the chance rates beside it.


# %% tags=["nbval-measured"] tolerance={"abs": 5.2, "rel": 6.0}
def acc_text(values):
    """'mean% ± sd%' of accuracies (fractions), one per seed."""
    a = 100 * np.asarray(values)
    return stats.mean_sd(a.mean(), a.std(ddof=1), ".1f", "%")


pred_test = {key: training.predict(model, X_test) for key, model in models.items()}
test_acc = {key: float(np.mean(pred == y_test_np)) for key, pred in pred_test.items()}
acc_of = {b: np.array([test_acc[b, s] for s in SEEDS]) for b in BATCH_SIZES}
acc_eval = acc_of[EVAL_BATCH_SIZE]
print(
    f"{data_label}: test accuracy after {NUM_EPOCHS} epochs at batch size "
    f"{EVAL_BATCH_SIZE}: {acc_text(acc_eval)}"
)
print(
    f"chance: {chance_uniform:.1%} (uniform over {K} classes), "
    f"{chance_majority:.1%} (most frequent class)"
)
print("every batch size (mean ± sd over seeds):")
for b in BATCH_SIZES:
    print(f"  {b:>5}: {acc_text(acc_of[b])}")
assert acc_eval.min() > 2 * max(chance_uniform, chance_majority)

# %% [markdown]
# The accuracy is far above chance (asserted: more than twice the larger chance rate, on every
# seed). Compare the accuracies of the batch sizes with their training losses in the sweep's
# table: they need not come in the same order, because the loss rewards confident scores on the
# training images while the accuracy counts correct decisions on new ones.
#
# One accuracy hides which classes fail. The bar chart gives the accuracy per class (the
# recall: the share of each class's test images classified correctly) of the batch-size-16
# runs, averaged over the seeds, with the range over the seeds as a black line.

# %%
y_hat = {s: pred_test[EVAL_BATCH_SIZE, s] for s in SEEDS}
recall = np.array(
    [[np.mean(y_hat[s][y_test_np == k] == k) for k in range(K)] for s in SEEDS]
)  # seeds x classes (every class occurs in the test set)
fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 3.4))
mean_recall = recall.mean(0)
ax.bar(range(K), 100 * mean_recall, color="tab:blue")
ax.vlines(range(K), 100 * recall.min(0), 100 * recall.max(0), color="black", lw=1.5)
ax.axhline(100 * acc_eval.mean(), color="black", lw=1, label="overall accuracy")
ax.axhline(100 * chance_uniform, color="grey", ls=":", label="chance 1/K")
rotate = 90 if K > 12 or max(map(len, ds.classes)) > 3 else 0
ax.set_xticks(range(K), ds.classes, rotation=rotate)
ax.set_ylabel("test accuracy of the class (%)")
ax.set_ylim(0, 118)
ax.set_yticks(range(0, 101, 20))
ax.set_title(
    f"Per-class test accuracy, softmax regression, batch size {EVAL_BATCH_SIZE}"
)
ax.legend(loc="upper center", ncol=2)
plt.show()

# %% [markdown]
# The confusion matrix shows where each class's errors go. It pools the predictions of the
# batch-size-16 runs of every seed: rows are the true class and columns the prediction, each row
# divided by its number of images, so the diagonal repeats the bar chart (asserted). Look for
# the largest cells off the diagonal: pairs of classes that look alike to a model that weighs
# each pixel on its own (garments with similar outlines on the Fashion-MNIST stand-in; on the
# real data, letters whose hand shapes differ in a finger or two).

# %%
fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 0.82 * COLUMN_WIDTH))
_, cm = plots.confusion_matrix(
    np.concatenate([y_test_np] * len(SEEDS)),
    np.concatenate([y_hat[s] for s in SEEDS]),
    ds.classes,
    ax=ax,
    title=f"Confusion matrix, softmax regression ({data_label}, test set)",
)
plt.show()
np.testing.assert_allclose(np.diag(cm), mean_recall)  # diagonal = recall

# %% [markdown]
# Looking at the mistakes themselves is the quickest way to see what a pixel-level linear model
# cannot tell apart: here are the first misclassified test images of the run with seed `SEED`.

# %%
wrong = np.flatnonzero(y_hat[SEED] != y_test_np)[:18]
fig = plots.image_grid(
    images_test[wrong],
    [f"{ds.classes[y_test_np[i]]}\n→ {ds.classes[y_hat[SEED][i]]}" for i in wrong],
    ncols=6,
    size=COLUMN_WIDTH / 6,
    suptitle=f"The first {len(wrong)} misclassified test images ({data_label}); "
    "true → predicted",
)
plt.show()

# %% [markdown]
# (sec-ch04-input-scaling)=
# ## Beyond the notes: input scaling moves the learning rate
#
# Every run so far fed the model pixel values up to 255. Scaling the inputs by a factor $c$
# scales the gradient with respect to the weights by $c$ at the same scores, because
# $\mathbf{x}$ enters {eq}`eq-softmax-regression` linearly, and it scales the curvature
# $\lambda_{\max}(M)$ of {eq}`eq-hessian-at-zero` by about $c^2$. Gradient descent's usable
# learning rate therefore moves by about $1/c^2$: between pixels in 0..255 and pixels in
# $[0, 1]$ that is a factor of $255^2$. Adam divides out the gradient's scale, so only the size
# of the weights that are needed matters, and it scales like $1/c$: Adam's learning rate moves
# by about $255$. Standardizing each pixel (subtract its mean, divide by its standard deviation
# over the training images) {cite}`ch04-lecun1998efficient` changes more than the scale: it
# removes the large common mean that all pixels share, which makes $M$ better conditioned.
#
# The cell checks the scaling of the gradient at $\tilde W = 0$ exactly, and computes gradient
# descent's limit for each scaling.


# %%
def scalings_of(Z):
    """The three input scalings of pixels Z (0..255)."""
    mean, sd = Z.mean(0), Z.std(0)
    sd = torch.where(sd > 0, sd, torch.ones_like(sd))  # constant pixels: leave at 0
    return {
        "0..255 (raw)": Z,
        "[0, 1] (÷255)": Z / 255,
        "standardized": (Z - mean) / sd,
    }


X_scale, y_scale = X[:N_SCALE], y[:N_SCALE]
scalings = scalings_of(X_scale)
raw, unit, std = scalings

# At W~ = 0 the scores do not depend on x, so the weight gradient is proportional to x.
model0 = softmax_regression(D, K)
grads = {}
for label in (raw, unit):
    model0.zero_grad()
    F.cross_entropy(model0(scalings[label]), y_scale).backward()
    grads[label] = (model0.weight.grad.clone(), model0.bias.grad.clone())
np.testing.assert_allclose(grads[raw][0], 255 * grads[unit][0], rtol=1e-4, atol=1e-6)
np.testing.assert_allclose(grads[raw][1], grads[unit][1], rtol=1e-6)
print(
    "at W~ = 0: weight gradient(raw) = 255 x weight gradient([0, 1]); "
    "bias gradients equal"
)

bounds = {label: gd_bound(Z) for label, Z in scalings.items()}
ratio_bounds = bounds[unit] / bounds[raw]
print("GD bound 2/lambda_max at W~ = 0:")
for label, v in bounds.items():
    print(f"  {label:>14}: {v:.2e}")
print(f"ratio of the bounds, [0, 1] over raw: {ratio_bounds:,.0f} (255^2 = {255**2:,})")
np.testing.assert_allclose(
    ratio_bounds, 255**2, rtol=0.05
)  # the bias column is not scaled

# %% [markdown]
# Then full-batch gradient descent and Adam run for `NUM_STEPS_SCALE` steps at learning rates
# one decade apart, for each of the three scalings, on the first `N_SCALE` images of each seed's
# training draw. As before, each optimizer's best rate is the one whose worst seed ended lowest,
# and a rate counts as "usable" when the run ended at least 25% below the starting loss
# $\log K$ on every seed.

# %%
OPTIMIZERS_SCALE = {
    "GD": ("gradient descent", LRS_SCALE_GD),
    "Adam": ("Adam", LRS_SCALE_ADAM),
}
scale_runs = {}  # (scaling, "GD"/"Adam", lr, seed) -> loss after NUM_STEPS_SCALE steps
runs_per_seed = len(scalings) * (len(LRS_SCALE_GD) + len(LRS_SCALE_ADAM))
with tqdm(
    total=runs_per_seed * len(SEEDS) * NUM_STEPS_SCALE, desc="scaling grid"
) as bar:
    for seed in SEEDS:
        Z_s, y_s = subsets[seed][0][:N_SCALE], subsets[seed][1][:N_SCALE]
        for label, Zc in scalings_of(Z_s).items():
            for short, (opt_name, lrs) in OPTIMIZERS_SCALE.items():
                for lr in lrs:
                    losses = train_full_batch(
                        Zc, y_s, opt_name, lr, NUM_STEPS_SCALE, bar
                    )[1]
                    scale_runs[label, short, lr, seed] = losses[-1]

# %% [markdown]
# The next cell picks, for each optimizer and scaling, the best rate and the rates that were
# usable on every seed, and prints them as powers of ten; the cell after it prints the loss
# reached at the best rate.

# %% tags=["hide-input", "nbval-measured"] tolerance={"abs": 2.0, "rel": 0.0}
USABLE = 0.75  # usable: ended at least 25% below log K on every seed
best_lr_scale, best_loss, largest_usable, rows = {}, {}, {}, []


def power(lr):
    return f"10^{round(math.log10(lr))}"


for label in scalings:
    row = {"inputs": label}
    for short, (_, lrs) in OPTIMIZERS_SCALE.items():
        per_lr = np.array(
            [[scale_runs[label, short, lr, s] for s in SEEDS] for lr in lrs]
        )
        best = int(np.argmin(per_lr.max(1)))  # the rate whose worst seed ended lowest
        usable = [lr for lr, v in zip(lrs, per_lr) if v.max() < USABLE * math.log(K)]
        best_lr_scale[label, short] = lrs[best]
        best_loss[label, short] = per_lr[best]
        largest_usable[label, short] = max(usable) if usable else math.nan
        row[f"{short} best lr"] = power(lrs[best])
        row[f"{short} usable"] = (
            f"{power(min(usable))} to {power(max(usable))}" if usable else "none"
        )
    rows.append(row)
print(pd.DataFrame(rows).to_string(index=False))
decades = {
    short: round(math.log10(best_lr_scale[unit, short] / best_lr_scale[raw, short]))
    for short in OPTIMIZERS_SCALE
}
print(
    f"from raw to [0, 1] inputs the best rate moves by {decades['GD']} decades "
    f"(gradient descent) and {decades['Adam']} (Adam)"
)

# %% tags=["nbval-measured"] tolerance={"abs": 0.13, "rel": 2.3}
print(
    f"loss after {NUM_STEPS_SCALE} steps at the best rate (mean ± sd over the seeds):"
)
print(
    pd.DataFrame(
        {
            "inputs": list(scalings),
            "gradient descent": [
                mean_sd_of(best_loss[label, "GD"]) for label in scalings
            ],
            "Adam": [mean_sd_of(best_loss[label, "Adam"]) for label in scalings],
        }
    ).to_string(index=False)
)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(COLUMN_WIDTH, 3.6), sharey=True)
for k, label in enumerate(scalings):
    color = plt.get_cmap("tab10").colors[k]
    for ax, (short, (opt_name, lrs)) in zip(axes, OPTIMIZERS_SCALE.items()):
        per_lr = np.array(
            [[scale_runs[label, short, lr, s] for s in SEEDS] for lr in lrs]
        )
        ax.plot(lrs, per_lr.mean(1), marker="o", ms=3, color=color, label=label)
        ax.fill_between(lrs, per_lr.min(1), per_lr.max(1), color=color, alpha=0.25)
    axes[0].axvline(bounds[label], color=color, ls="--", lw=1)
for ax, title in zip(axes, ("gradient descent\n(dashed: 2/λmax at W = 0)", "Adam")):
    ax.axhline(math.log(K), color="grey", ls=":", lw=1, label="log K (no progress)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_title(title)
axes[1].legend(fontsize=8)
axes[0].set_ylabel(f"training loss after {NUM_STEPS_SCALE} steps (nats)")
fig.suptitle(
    f"Input scaling and the usable learning rate\n({data_label}, "
    f"{N_SCALE:,} images; mean and range over {len(SEEDS)} seeds)"
)
plt.show()

# %%
assert abs(decades["GD"] - math.log10(255**2)) <= 1
assert abs(decades["Adam"] - math.log10(255)) <= 1 and decades["Adam"] < decades["GD"]
for label in scalings:  # the limit at W~ = 0 predicts GD's best and largest usable rate
    assert bounds[label] / 10 < best_lr_scale[label, "GD"] < 10 * bounds[label], label
    assert bounds[label] / 10 < largest_usable[label, "GD"] < 10 * bounds[label], label
assert 1 / 3 < bounds[std] / bounds[unit] < 3
assert (
    largest_usable[std, "GD"] > bounds[std]
)  # somewhat above the limit can still work
for (
    label
) in scalings:  # the largest rate of the grid ends above the start, on every seed
    for seed in SEEDS:
        assert scale_runs[label, "GD", LRS_SCALE_GD[-1], seed] > math.log(K), label
for short in ("GD", "Adam"):  # standardized inputs get furthest, on every seed
    others = np.minimum(best_loss[raw, short], best_loss[unit, short])
    assert np.all(best_loss[std, short] < others), short

# %% [markdown]
# Read off the figure and the tables:
#
# - For **gradient descent**, the usable range moves by several decades between raw and
#   $[0, 1]$ inputs, in line with the factor $255^2$ predicted and checked above: the best rate
#   moves within one decade of the $\log_{10} 255^2 \approx 4.8$ decades predicted
#   (asserted). The dashed lines, the limit
#   $2/\lambda_{\max}$ at $\tilde W = 0$, predict where the usable range ends to within a decade
#   (asserted, for the best and for the largest usable rate). Rates somewhat above the limit can
#   still end well (with standardized inputs the largest usable rate is above the limit,
#   asserted): their first steps overshoot, but as the weights grow the softmax saturates, the
#   curvature falls and the run recovers. At the largest rate of the grid the loss ends higher
#   than it started, for every scaling and seed (asserted).
# - For **Adam** the shift is smaller: within one decade of the $\log_{10} 255 \approx 2.4$
#   decades predicted by the argument above, and smaller than for gradient descent (both
#   asserted). This is why the source notes, on raw pixels, use Adam at $10^{-5}$ where
#   $10^{-3}$, the usual default, suits inputs in $[0, 1]$.
# - **Standardized** inputs need roughly the same learning rate as $[0, 1]$ inputs for gradient
#   descent (their limits are within a factor $3$, asserted), but compare the best losses
#   reached in the same number of steps: with the shared mean removed the problem is better
#   conditioned, and the standardized runs get furthest for both optimizers, on every seed
#   (asserted). With only `N_SCALE` images and $D + 1$ weights per class, the lowest of these
#   training losses say more about how fast the optimizer fits the training images than about
#   accuracy on new ones.
#
# The lesson is practical: a learning rate is only meaningful together with the scale of the
# inputs. Copying a learning rate from a tutorial that scaled its pixels differently can make a
# run crawl or diverge for no other reason.
#
# (sec-ch04-cnn)=
# ## Beyond the notes: a small CNN in the same training loop
#
# How far does the same data go with a better model? A convolutional network looks at small
# patches of neighbouring pixels with shared weights, which suits images far better than one
# weight per pixel and class. The network below has two convolution layers with `CNN_CHANNELS`
# channels, each followed by max-pooling, a hidden layer of `CNN_HIDDEN` units and a linear
# read-out; it takes standardized images of shape (1, 28, 28) and trains with `training.fit`
# (the loop written out above, packaged with a progress bar). For a fair comparison, softmax
# regression is trained with exactly the same recipe: the same standardized inputs, optimizer,
# learning rate, batch size and number of epochs, and both run with every seed (the seed sets
# the initial weights and the order of the batches).


# %%
def small_cnn(num_classes, channels=CNN_CHANNELS, hidden=CNN_HIDDEN):
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 28x28 -> 14x14
        nn.Conv2d(c1, c2, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 14x14 -> 7x7
        nn.Flatten(),
        nn.Linear(c2 * 7 * 7, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


mean_px, std_px = X.mean().item(), X.std().item()
images_std = ((X - mean_px) / std_px).reshape(-1, 1, 28, 28)
images_test_std = ((X_test - mean_px) / std_px).reshape(-1, 1, 28, 28)
contenders = {
    "softmax regression": lambda: nn.Sequential(nn.Flatten(), softmax_regression(D, K)),
    "small CNN": lambda: small_cnn(K),
}
acc_recipe, n_params, cnn_loss = {}, {}, {}
for name, build in contenders.items():
    for seed in SEEDS:
        torch.manual_seed(seed)
        model = build()
        n_params[name] = sum(p.numel() for p in model.parameters())
        history = training.fit(
            model,
            training.make_loader(images_std, y, batch_size=CNN_BATCH_SIZE, seed=seed),
            loss_fn=F.cross_entropy,
            optimizer=torch.optim.Adam(model.parameters(), lr=CNN_LR),
            num_epochs=CNN_EPOCHS,
            desc=f"{name}, seed {seed}",
        )
        cnn_loss[name, seed] = history["train_loss"]
        pred = training.predict(model, images_test_std)
        acc_recipe[name, seed] = float(np.mean(pred == y_test_np))


# %% tags=["nbval-measured"] tolerance={"abs": 4.0, "rel": 3.5}
print(
    f"{data_label}, {N:,} training images, {len(y_test):,} test images, "
    f"{len(SEEDS)} seeds\n"
    f"recipe A: raw pixels, Adam {LR_ADAM:.0e}, batch {EVAL_BATCH_SIZE}, "
    f"{NUM_EPOCHS} epochs (the batch-size sweep)\n"
    f"recipe B: standardized pixels, Adam {CNN_LR:.0e}, batch {CNN_BATCH_SIZE}, "
    f"{CNN_EPOCHS} epochs"
)
rows = [
    ("chance (most frequent class)", "-", "-", f"{chance_majority:.1%}"),
    ("softmax regression", "A", D * K + K, acc_text(acc_eval)),
]
for name in contenders:
    accs = [acc_recipe[name, s] for s in SEEDS]
    rows.append((name, "B", n_params[name], acc_text(accs)))
columns = ["model", "recipe", "parameters", "test accuracy"]
print(pd.DataFrame(rows, columns=columns).to_string(index=False))
acc_softmax = np.array([acc_recipe["softmax regression", s] for s in SEEDS])
acc_cnn = np.array([acc_recipe["small CNN", s] for s in SEEDS])
assert (
    acc_cnn.min() > acc_softmax.max()
)  # ranges disjoint: the CNN is ahead on every seed
assert abs(acc_softmax.mean() - acc_eval.mean()) < 0.03

# %% [markdown]
# With the same data, loop, optimizer and number of epochs (recipe B), the CNN is more accurate
# than softmax regression on every seed (asserted: the ranges over the seeds do not overlap).
# Softmax regression with standardized inputs and a larger learning rate lands within a few
# points of the 20-epoch raw-pixel runs of the sweep (asserted: within 3 points on average) in
# half the epochs: a better recipe speeds it up, but its accuracy is limited by the model, which
# can only weigh each pixel on its own. These are numbers for `N_TRAIN` training images and
# `CNN_EPOCHS` epochs, chosen for a CPU budget; the parameters cell is where to raise both.
#
# ## Summary
#
# - A minibatch gradient is an average over a random subset of examples: an unbiased, noisy
#   estimate of the full gradient (one batch of 64 was off by 0.88 of its norm). One epoch is
#   one shuffled pass over the data cut into $\lceil N/B \rceil$ batches; `TensorDataset` holds
#   the examples and `DataLoader` shuffles and batches them, reproducibly with a seeded
#   generator.
# - An epoch's loss must be averaged over examples, not over batches, when the last batch is
#   shorter; the mean of equal-size minibatch gradients over an epoch is exactly the full
#   gradient.
# - On raw pixels, gradient descent's stable learning rate at the start is
#   $2K/\lambda_{\max}(M)$, tiny (2.81e-06 on the data that ran) because the pixels are large;
#   above it the loss first rises.
# - With the same budget of full-batch steps and each optimizer at its own best rate from a
#   grid, Adam ended lowest, then momentum, then gradient descent, with ranges over the seeds
#   that do not overlap; Adam's best rate was a hundred times theirs. On the data that ran, the
#   notes' claim holds.
# - With Adam at a small fixed learning rate, small batches win per epoch (more steps) and large
#   batches win per step (less noise). On this CPU an epoch at batch size 8 took more than twice
#   as long as one at 1,024, and the largest batch had the slowest steps.
# - The notes' loop (weights reset, one Adam for every batch size) carries Adam's state from run
#   to run. Here it changed the first epoch, moved no final loss by more than 3.7% and kept the
#   order of the batch sizes: a flaw to fix, not a reversal. A new model with an old optimizer
#   does not train at all.
# - The epochs training needs fall in inverse proportion to the learning rate while the rate is
#   small (exactly so for gradient descent, whose loss depends on $\eta t$; less than that for
#   Adam), until an edge (the stability limit for gradient descent, the noise for minibatch
#   Adam) beyond which more rate does not help and the target is never reached
#   ({ref}`sec-ch04-epochs-vs-lr`).
# - Judge a classifier against the chance rate, per class and by its confusions.
# - Input scaling by $c$ moves gradient descent's usable learning rate by about $1/c^2$ and
#   Adam's by about $1/c$; standardized inputs also condition the problem better.
# - A small CNN in the same loop beats softmax regression on the same data, on every seed.
#
# ## Exercises
#
# ```{exercise} Counting steps
# :label: ex-ch4-steps
#
# The full Sign Language MNIST training set has $N = 27{,}455$ images. For each batch size of
# the sweep ($8$, $16$, $64$, $1{,}024$ and $4{,}096$), how many optimizer steps are there in
# $20$ epochs, and how many images does the last batch of each epoch hold (with
# `drop_last=False`, the default)?
# ```
#
# ```{solution} ex-ch4-steps
# :class: dropdown
#
# An epoch has $\lceil N/B \rceil$ steps and the last batch holds
# $N - (\lceil N/B\rceil - 1)\,B$ images:
#
# | batch size $B$ | steps per epoch | steps in 20 epochs | last batch |
# |---:|---:|---:|---:|
# | $8$ | $3{,}432$ | $68{,}640$ | $7$ |
# | $16$ | $1{,}716$ | $34{,}320$ | $15$ |
# | $64$ | $429$ | $8{,}580$ | $63$ |
# | $1{,}024$ | $27$ | $540$ | $831$ |
# | $4{,}096$ | $7$ | $140$ | $2{,}879$ |
#
# In code: `math.ceil(27455 / B)` and `27455 - (math.ceil(27455 / B) - 1) * B`, or
# `len(loader)` and the length of the last batch of a `DataLoader`.
# ```
#
# ```{exercise} Averaging over batches or over examples
# :label: ex-ch4-average
#
# A loop records `np.mean(batch_losses)`, the plain mean of the batch-mean losses, as the loss
# of an epoch. Write the weight this gives to one example of a full batch and to one example of
# the last batch, for $m$ batches of which the last holds $r < B$ examples. When do the two ways
# of averaging agree? How large is the last batch's weight for $N = 27{,}455$ and
# $B = 4{,}096$?
# ```
#
# ```{solution} ex-ch4-average
# :class: dropdown
#
# Each batch mean gets weight $1/m$, so an example of a full batch gets $1/(mB)$ and an example
# of the last batch gets $1/(mr)$, while the per-example average gives every example $1/N$ with
# $N = (m-1)B + r$. The two agree for every loss when $r = B$ (the batch size divides $N$, or
# `drop_last=True`). For $N = 27{,}455$ and $B = 4{,}096$: $m = 7$ and $r = 2{,}879$, so the
# last batch's examples count $B/r \approx 1.42$ times as much as the others. The check in
# {ref}`sec-ch04-minibatches` shows the effect on a frozen model.
# ```
#
# ```{exercise} A learning rate for [0, 1] inputs
# :label: ex-ch4-scaling
#
# A run of gradient descent on softmax regression works well at learning rate $10^{-6}$ on raw
# pixels (0..255). Someone divides the pixels by 255 and keeps the learning rate. Using the
# argument of {ref}`sec-ch04-input-scaling`, predict what happens and which learning rate to
# try instead. Repeat for Adam at $10^{-5}$. Then check your prediction with
# `train_full_batch` on the `scalings` of that section.
# ```
#
# ```{solution} ex-ch4-scaling
# :class: dropdown
#
# Dividing the inputs by $c = 255$ divides the weight gradient by $255$ and the curvature by
# about $255^2$, so gradient descent at the same rate takes steps about $255$ times smaller in a
# landscape whose usable step is about $65{,}000$ times larger: the loss barely moves from
# $\log K$. Multiply the learning rate by about $255^2$:
# $10^{-6}\cdot 65{,}025 \approx 0.065$, i.e. try $0.03$ to $0.1$. Adam's steps do not depend on
# the gradient's scale, but the weights it has to reach are $255$ times larger, so it needs a
# rate about $255$ times larger: $10^{-5}\cdot 255 \approx 2.6\times10^{-3}$, close to the
# common default $10^{-3}$. The tables of {ref}`sec-ch04-input-scaling` show the best rates
# found on the grid for each scaling.
# ```
#
# ```{exercise} The stale optimizer
# :label: ex-ch4-stale
#
# Explain, in terms of what a PyTorch optimizer stores, (a) why a new model trained with an
# optimizer built for an earlier model does not learn at all, and (b) why the loop of the source
# notes (one model whose weights are set back to zero for each batch size, one optimizer for all
# of them) trains every batch size but does not start each run from the same state. Write the
# loop so that every run starts fresh.
# ```
#
# ````{solution} ex-ch4-stale
# :class: dropdown
#
# `torch.optim.Adam(model.parameters(), lr)` stores references to the parameter tensors it was
# given, and per parameter a state: the running averages $\mathbf{m}_t$ and $\mathbf{v}_t$ of
# the gradient and of its square and the step count $t$. `optimizer.step()` updates only those
# tensors, using that state. (a) A new model has new parameter tensors: `loss.backward()` fills
# their gradients, but no optimizer steps them, so the model stays at its initial weights (the
# check in {ref}`sec-ch04-notes-loop` confirms it). (b) Zeroing the weights in place keeps the
# same tensors, so the optimizer still steps them, but with the moment estimates and the step
# count of the previous run: the first steps of every run after the first are not those of a
# fresh Adam (no bias correction, other step lengths). Nothing fails; the runs simply do not
# start alike. The loop that starts every run fresh creates all three inside the loop:
#
# ```python
# for batch_size in BATCH_SIZES:
#     model = softmax_regression(D, K)
#     optimizer = torch.optim.Adam(model.parameters(), lr=LR_ADAM)
#     loader = training.make_loader(X, y, batch_size=batch_size, seed=seed)
#     losses = train_epochs(model, optimizer, loader, NUM_EPOCHS)
# ```
# ````
#
# ```{exercise} Same time, not same epochs
# :label: ex-ch4-time
#
# The batch-size comparison fixed the number of epochs. Change it to fix the CPU time instead:
# give each batch size the same number of seconds (for example the time batch size 64 needed
# for 20 epochs) and compare the training losses reached. Which batch size wins now on your
# machine, and why might a GPU change the answer?
# ```
#
# ```{solution} ex-ch4-time
# :class: dropdown
#
# Measure the time per step of each batch size (as in the timing cell), compute how many steps
# fit into the budget, and train for that many steps, breaking out of the epoch loop when the
# count is reached. Two costs compete: a fixed cost per step (the Python loop, the forward and
# backward pass of a small model, the optimizer call) and a cost per example (the `DataLoader`
# fetching and stacking examples one at a time, the arithmetic). Small batches pay the per-step
# cost most often, but at a small Adam learning rate their many steps are what makes progress;
# which effect wins depends on your machine, so measure it. A GPU processes a batch of $1{,}024$
# in about the time of a batch of $8$, which shifts the balance towards large batches with a
# correspondingly larger learning rate {cite}`ch04-goyal2017accurate`. Indexing the tensors
# with a whole batch of indices at once, instead of example by example, removes most of the
# per-example cost of the loader.
# ```
#
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch04-
# ```
