# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# # Chapter 6: Training dynamics of a deep MLP
#
# A multilayer perceptron has a handful of knobs: the learning rate, batch normalisation, the
# batch size, the depth and the width. This chapter turns each of them on one small problem, a
# 2-D classification task with five spiral arms, and measures what happens to training. A 2-D
# input lets us *see* what a network has learned (its decision boundaries, even the linear
# pieces a ReLU network is made of), and a small network trains in seconds, so every experiment
# runs on several seeds: when a loss curve is flat we find out why (dead ReLU units, the loss at
# initialisation, the size of the updates), and when a deep network does not train we measure
# the gradient layer by layer.
#
# **Learning objectives.** After this chapter you can
#
# - tell apart the two failures behind a loss curve stuck at $\ln K$ (a network whose ReLU units
#   died, and one that barely moved) by measuring dead units, the spread of the logits and how
#   far the parameters moved;
# - explain why PyTorch's default initialisation shrinks the signal of a deep ReLU network, and
#   how batch normalisation restores it;
# - compare batch sizes per epoch, per optimizer step and by their validation and test accuracy,
#   and say what such a comparison can and cannot show about generalization;
# - compare trained configurations (learning rates, depths, widths) over several seeds, and call
#   results within their spread a tie;
# - count the linear regions of a ReLU network: exactly for one hidden layer in the plane, as a
#   lower bound for deeper ones;
# - measure a vanishing gradient layer by layer, and make a 60-layer network trainable with
#   scaled residual connections.
#
# **Prerequisites:** backpropagation through an MLP ([chapter 5](05_backprop_fashion_mnist.ipynb)),
# Adam ([chapter 3](03_optimizers.ipynb)) and minibatch training in PyTorch
# ([chapter 4](04_minibatch_sign_mnist.ipynb)).
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
    package = f"course-utils[ch06] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
SEED = 0
N_SEEDS = 3  # every trained configuration runs with seeds SEED, SEED + 1, ...
NUM_CLASSES = 5  # spiral arms, one per class
N_PER_CLASS = 1_000  # 5,000 points: 3,000 train, 1,000 validation, 1,000 test
NOISE = 0.05  # standard deviation of the Gaussian noise added to each point
LR = 1e-2  # Adam's learning rate for the default model
BATCH_SIZE = 128
NUM_EPOCHS = 100  # the default model and the depth / width sweep
SWEEP_EPOCHS = 40  # the learning-rate, batch-norm and batch-size sweeps
LRS = [1, 0.2, 0.01, 0.001, 5e-4, 1e-5]
BATCH_SIZES = [1, 16, 128, 1024]
BATCH_SIZE_LR = 1e-3  # the fixed learning rate of the batch-size sweep
BS1_EPOCHS = 4  # batch size 1 makes 3,000 steps per epoch: fewer epochs for it
DEPTHS = [1, 2, 6, 10]  # hidden layers, at width 16
WIDTHS = [8, 16, 32, 64]  # units per hidden layer, at depth 6
GRID = 400  # linear regions are counted on a (GRID + 1) x (GRID + 1) grid
DEEP_DEPTH = 60  # hidden layers of the plain and the residual deep networks
DEEP_EPOCHS = 12
# With a GPU or more time, raise N_SEEDS, N_PER_CLASS, the epochs, BS1_EPOCHS, GRID.

# %%
import copy
import math
import time
from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import NullFormatter
from scipy.spatial import ConvexHull
from torch import nn
from tqdm.auto import tqdm

import course_utils
from course_utils import plots, stats, toy_data

SEEDS = [SEED + k for k in range(N_SEEDS)]
pd.set_option("display.width", 88)
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# Three helpers print what the text needs and no more digits: a loss to 3 significant digits,
# an accuracy to 0.1%, and a table of "mean ± sd" over the seeds, one row per configuration
# (`course_utils.stats`, introduced in [chapter 4](04_minibatch_sign_mnist.ipynb)).


# %%
def fmt_loss(x):
    """A loss to 3 significant digits."""
    return f"{x:.3g}"


def fmt_acc(a):
    """An accuracy (or any fraction) in percent, to 0.1%."""
    return f"{100 * a:.1f}%"


def mean_sd_table(results, by, columns):
    """One row per configuration ``by``; each column "mean ± sd" over the seeds.

    ``columns`` maps a column title to (column of ``results``, scale, format).
    """
    table = {}
    for title, (column, scale, fmt) in columns.items():
        s = stats.summarize(results, by, column)
        table[title] = [
            stats.mean_sd(scale * m, scale * sd, fmt)
            for m, sd in zip(s["mean"], s["sd"])
        ]
    return pd.DataFrame(table, index=s.index)


# %% [markdown]
# (sec-ch06-data)=
# ## The data
#
# `course_utils.toy_data.spirals` draws `N_PER_CLASS` points on each of `NUM_CLASSES` spiral
# arms. A point of class $k$ has a radius $\rho$ drawn uniformly from $[0.05, 1]$ and the angle
#
# $$
# \psi = \frac{2\pi k}{K} + 2\pi \rho ,
# $$ (eq-ch6-spiral)
#
# so each arm winds once around the origin; Gaussian noise of standard deviation `NOISE` is
# added to the point $\rho(\cos\psi, \sin\psi)$. The boundaries between classes are curved, and
# near the centre, where the arms are closer than the noise, the classes overlap: no model can be
# perfect there. The rows come shuffled; the first 60% are the training set, the next 20% the
# {term}`validation set <Validation set>`, the last 20% the {term}`test set <Test set>`.

# %%
X_all, y_all = toy_data.spirals(N_PER_CLASS, NUM_CLASSES, noise=NOISE, seed=SEED)
n = len(y_all)
n_train, n_val = int(0.6 * n), int(0.2 * n)
X_all, y_all = torch.from_numpy(X_all), torch.from_numpy(y_all)
X_train, y_train = X_all[:n_train], y_all[:n_train]
X_val, y_val = X_all[n_train : n_train + n_val], y_all[n_train : n_train + n_val]
X_test, y_test = X_all[n_train + n_val :], y_all[n_train + n_val :]
splits = {
    "train": (X_train, y_train),
    "validation": (X_val, y_val),
    "test": (X_test, y_test),
}
counts = pd.DataFrame(
    {
        name: np.bincount(y.numpy(), minlength=NUM_CLASSES)
        for name, (_, y) in splits.items()
    }
)
counts.index.name = "class"
counts.loc["total"] = counts.sum()
counts.T

# %%
fig, axes = plt.subplots(1, 2, figsize=(plots.COLUMN_WIDTH, 3.6))
for ax, name in zip(axes, ["train", "validation"]):
    X, y = splits[name]
    sc = ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        cmap=plt.get_cmap("tab10", NUM_CLASSES),
        vmin=-0.5,
        vmax=NUM_CLASSES - 0.5,
        s=4,
    )
    ax.set(
        title=f"{name} set ({len(y):,} points)",
        xlabel="$x_1$",
        ylabel="$x_2$",
        aspect="equal",
    )
fig.suptitle("Five spiral arms, one class each")
fig.colorbar(sc, ax=axes, ticks=range(NUM_CLASSES), label="class")
plt.show()

# %% [markdown]
# (sec-ch06-model)=
# ## The model and the training loop
#
# The default model has 6 hidden layers of 16 units, each an `nn.Linear` followed by a ReLU, and
# a linear output layer with one logit per class: 7 `nn.Linear` in all. Two options are used
# later: `batch_norm=True` puts an `nn.BatchNorm1d` between each hidden `nn.Linear` and its ReLU,
# and `residual=True` adds a skip connection around every hidden layer but the first. The
# forward pass can also return every hidden layer's ReLU output, which we need to count dead
# units and linear regions. The weights keep PyTorch's default initialisation, since that is
# what a reader gets.


# %%
class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units (Linear, [BatchNorm1d], ReLU), a head.

    The input has 2 features and the head one logit per class. ``residual=True`` adds a
    skip connection around every hidden layer but the first (which changes the
    dimension): ``h <- h + residual_scale * ReLU(BN(W h + b))``.
    ``forward(x, return_hidden=True)`` also returns every hidden layer's ReLU output.
    """

    def __init__(
        self, depth=6, width=16, batch_norm=False, residual=False, residual_scale=1.0
    ):
        super().__init__()
        for name, value in [("depth", depth), ("width", width)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"MLP: {name} must be a positive integer, not {value!r}"
                )
        if not residual_scale > 0:
            raise ValueError(
                f"MLP: residual_scale must be positive, not {residual_scale!r}"
            )
        self.depth, self.width, self.batch_norm = depth, width, batch_norm
        self.residual, self.residual_scale = residual, residual_scale
        self.blocks = nn.ModuleList()
        for i in range(depth):
            layers = [nn.Linear(2 if i == 0 else width, width)]
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            self.blocks.append(nn.Sequential(*layers, nn.ReLU()))
        self.head = nn.Linear(width, NUM_CLASSES)

    def forward(self, x, return_hidden=False):
        hidden = []
        h = x
        for i, block in enumerate(self.blocks):
            a = block(h)
            hidden.append(a)
            h = h + self.residual_scale * a if (self.residual and i > 0) else a
        logits = self.head(h)
        return (logits, hidden) if return_hidden else logits


# %%
model = MLP()
print(model)
n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_linear} nn.Linear layers, {n_params:,} parameters")
assert n_linear == 7

# %% [markdown]
# The loop below is the whole training procedure. Each {term}`epoch` shuffles the training set
# with a seeded `torch.Generator` and cuts the permutation into {term}`minibatches <Minibatch>`;
# each minibatch makes one {term}`step <Step>`: forward, loss, `zero_grad`, backward, Adam step.
# (`fused=True` selects PyTorch's single-kernel implementation of the same Adam update.)
# After each epoch the model is
# evaluated and the epoch adds one row to a table: the step count; the training loss averaged
# over the epoch's minibatches in training mode (the model changes while it is measured); the
# training and validation loss and accuracy of the model at the end of the epoch, in eval mode;
# and the fraction of dead units (defined in {ref}`sec-ch06-learning-rate`). A run is fixed by
# its seed: the seed draws the initial weights and the order of the minibatches.

# %%
loss_fn = nn.CrossEntropyLoss()


@torch.no_grad()
def evaluate(model, X, y):
    """Eval mode on (X, y): mean cross-entropy, accuracy, and per hidden layer the
    fraction of dead units (ReLU output 0 for every row of X)."""
    model.eval()
    logits, hidden = model(X, return_hidden=True)
    dead = tuple((a <= 0).all(dim=0).float().mean().item() for a in hidden)
    accuracy = (logits.argmax(1) == y).float().mean().item()
    return loss_fn(logits, y).item(), accuracy, dead


# %%
def train(model, *, lr, batch_size, num_epochs, seed):
    """Adam on the training set, batches shuffled by ``seed``; one row per epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    generator = torch.Generator().manual_seed(seed)
    rows, step = [], 0
    for epoch in range(1, num_epochs + 1):
        model.train()
        running = torch.zeros(())
        for idx in torch.randperm(n_train, generator=generator).split(batch_size):
            loss = loss_fn(model(X_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            running += loss.detach() * len(idx)
        if not torch.isfinite(running):
            raise FloatingPointError(
                f"the training loss became {running.item()} in epoch {epoch} (lr={lr})"
            )
        train_loss, train_acc, dead = evaluate(model, X_train, y_train)
        val_loss, val_acc, _ = evaluate(model, X_val, y_val)
        rows.append(
            dict(
                epoch=epoch,
                step=step,
                running_loss=running.item() / n_train,
                train_loss=train_loss,
                train_acc=train_acc,
                val_loss=val_loss,
                val_acc=val_acc,
                dead=float(np.mean(dead)),
                dead_per_layer=dead,
            )
        )
    return pd.DataFrame(rows)


# %% [markdown]
# Several experiments share a configuration (the default model at `lr = 0.01` and batch 128
# appears in the learning-rate sweep, the batch-norm comparison and the depth and width sweeps),
# so every run is trained once, kept in a dictionary and reused. A sweep that shows 40 epochs
# of a run trained for 100 uses its first 40 rows: there is no learning-rate schedule and the
# shuffling is seeded, so they are exactly what a 40-epoch run records. The next cell trains the
# default model with every seed and checks this on 3 epochs.


# %%
runs = {}  # configuration and seed -> (model at the end of its run, history)


def build(
    depth=6, width=16, batch_norm=False, residual=False, residual_scale=1.0, seed=SEED
):
    """A freshly initialised MLP: the same seed gives the same initial weights."""
    torch.manual_seed(seed)
    return MLP(depth, width, batch_norm, residual, residual_scale)


def get_run(
    depth=6,
    width=16,
    batch_norm=False,
    lr=LR,
    batch_size=BATCH_SIZE,
    num_epochs=NUM_EPOCHS,
    seed=SEED,
):
    """Train the configuration, or reuse it: (model, history of its first num_epochs).

    The model is the one at the end of its run, which may be longer than num_epochs.
    """
    key = (depth, width, batch_norm, lr, batch_size, seed)
    if key not in runs or len(runs[key][1]) < num_epochs:
        model = build(depth, width, batch_norm, seed=seed)
        history = train(
            model, lr=lr, batch_size=batch_size, num_epochs=num_epochs, seed=seed
        )
        runs[key] = (model, history)
    model, history = runs[key]
    return model, history.iloc[:num_epochs]


# %% [markdown]
# Each comparison below trains a list of configurations with every seed and collects one row
# per run: the configuration, the seed and the metrics of the run's last epoch.


# %%
def sweep(configs, desc):
    """Every configuration (a dict of get_run arguments) with every seed: one row per
    run with the configuration, the seed and the metrics of its last epoch."""
    rows = []
    for config in tqdm(configs, desc=desc):
        for seed in SEEDS:
            _, h = get_run(**config, seed=seed)
            last = h.iloc[-1].drop("dead_per_layer").to_dict()
            rows.append({**config, "seed": seed, **last, "plateau": plateau_epochs(h)})
    return pd.DataFrame(rows)


def plateau_epochs(h):
    """Epochs before the validation loss first drops below 0.9 ln K (all if never)."""
    below = h.val_loss.to_numpy() < 0.9 * math.log(NUM_CLASSES)
    return int(below.argmax()) if below.any() else len(h)


# %%
default = {seed: get_run(seed=seed) for seed in tqdm(SEEDS, desc="default model")}
hist_3 = train(build(), lr=LR, batch_size=BATCH_SIZE, num_epochs=3, seed=SEED)
pd.testing.assert_frame_equal(default[SEED][1].iloc[:3], hist_3)
print("the first 3 epochs of the 100-epoch run are identical to a separate 3-epoch run")

# %% [markdown]
# (sec-ch06-learning-rate)=
# ## Learning rate
#
# Before training, two measurements that will explain the flat curves below.
#
# **The loss at initialisation.** If the logits $z_k$ are the same for every class, the softmax
# gives every class probability $1/K$ and the {term}`cross-entropy <Cross-entropy>` of any
# example is
#
# $$
# \ell = -\ln\frac{e^{z_y}}{\sum_{k=0}^{K-1} e^{z_k}} = \ln K
# \qquad (z_0 = \dots = z_{K-1}),
# $$ (eq-ch6-lnk)
#
# here $\ln 5 = 1.609$. A network whose {term}`logits <Logits>` do not depend on the input makes
# a constant prediction, and no constant prediction does much better: the best one predicts the
# label frequencies and has their entropy as its loss, a little below $\ln K$ when the classes
# are not exactly balanced. A loss curve sitting at $\ln K$ means the network outputs (almost)
# nothing that depends on the input.
#
# **Dead units.** A ReLU unit is {term}`dead <Dead unit>` on a data set when its pre-activation
# is negative for every example: it outputs 0 everywhere, and because $\mathrm{ReLU}'(u)=0$ for
# $u<0$ its incoming weights and bias get a zero gradient from every example. It can only come
# back if the layers before it change its inputs. A unit of the first layer that is dead at
# initialisation stays dead: its inputs are the data, which do not change, and Adam, given only
# zero gradients, never moves its weights. We count, per layer, the units that output 0 on all
# 3,000 training points.
#
# PyTorch initialises an `nn.Linear` with $n_{\text{in}}$ inputs with weights and biases drawn
# from $U(-1/\sqrt{n_{\text{in}}}, 1/\sqrt{n_{\text{in}}})$, of variance $1/(3n_{\text{in}})$.
# For a zero-mean pre-activation a ReLU keeps half of its second moment, so, ignoring the
# biases, each layer multiplies the variance of the signal by
#
# $$
# n_{\text{in}} \cdot \frac{1}{3n_{\text{in}}} \cdot \frac12 = \frac16 ,
# $$ (eq-ch6-shrink)
#
# that is, the standard deviation across inputs shrinks by $\sqrt 6 \approx 2.4$ per layer. The
# first table measures it on the default model as the seed initialises it.

# %%
model0 = build()
loss0, acc0, _ = evaluate(model0, X_val, y_val)
dead0 = evaluate(model0, X_train, y_train)[2]  # per layer, on the training set
with torch.no_grad():
    logits0, hidden0 = model0(X_train, return_hidden=True)
sd0 = [a.std(0).mean().item() for a in hidden0] + [logits0.std(0).mean().item()]
print(
    f"at initialisation: validation loss {loss0:.4f} "
    f"(ln K = ln {NUM_CLASSES} = {math.log(NUM_CLASSES):.4f}), accuracy {fmt_acc(acc0)}"
)
print(
    "sd ratio of consecutive layers:",
    " ".join(f"{a / b:.1f}" for a, b in zip(sd0, sd0[1:])),
)
print(f"dead units: {fmt_acc(np.mean(dead0))} of the {16 * len(dead0)} hidden units")
init_table = pd.DataFrame(
    {
        "layer": [f"hidden {i + 1}" for i in range(len(hidden0))] + ["logits"],
        "sd across inputs": [f"{s:.2g}" for s in sd0],
        "dead units": [fmt_acc(d) for d in dead0] + [""],
    }
).set_index("layer")
init_table.T

# %% [markdown]
# The same holds for every seed's initial weights, which the next cell checks: the logits
# barely depend on the input, so the loss at initialisation is that of a constant prediction,
# softmax of the mean logits, close to $\ln K$ (it is above $\ln K$ by as much as the head's
# random biases make that constant prediction non-uniform).


# %%
def constant_prediction_loss(logits, y):
    """The cross-entropy on y of the constant prediction softmax(mean logits)."""
    mean = logits.mean(0, keepdim=True).expand_as(logits)
    return loss_fn(mean, y).item()


for seed in SEEDS:
    m = build(seed=seed).eval()
    with torch.no_grad():
        logits, hidden = m(X_val, return_hidden=True)
    loss = evaluate(m, X_val, y_val)[0]
    assert logits.std(0).mean().item() < 1e-2
    assert abs(loss - constant_prediction_loss(logits, y_val)) < 1e-3
    assert abs(loss - math.log(NUM_CLASSES)) < 0.05
    sds = [a.std(0).mean().item() for a in hidden]  # faster than sqrt 6 per layer
    assert (sds[0] / sds[-1]) ** (1 / (len(sds) - 1)) > math.sqrt(6)
big = nn.Linear(1000, 1000)  # default initialisation: variance 1/(3 fan_in)
np.testing.assert_allclose(big.weight.var().item(), 1 / (3 * 1000), rtol=0.01)
assert big.weight.abs().max().item() <= 1 / math.sqrt(1000)

# %% [markdown]
# For this seed the standard deviation across inputs falls by a factor of 2.7 to 4.2 per layer
# over the first five layers; on every seed's initial weights it falls, on average over the six
# hidden layers, faster than the $\sqrt 6$ of {eq}`eq-ch6-shrink`, because dead units pass
# nothing. 40.6% of the 96 hidden units of this seed's model are dead before any training, up to
# 75% in layer 5.
#
# Now the sweep: six {term}`learning rates <Learning rate>` $\eta$ for Adam (`lr` in the code),
# batch 128, 40 epochs, each with the seeds
# `SEEDS` (the runs at `lr = 0.01` are the default model's, shown up to epoch 40). The table
# gives, as mean ± sd over the seeds, the validation loss and accuracy after 40 epochs,
# the number of epochs a run spends on the plateau (before its validation loss first drops
# below $0.9 \ln K$), and the percentage of dead units at initialisation and after 40 epochs.

# %% tags=["nbval-measured"] tolerance={"abs": 28.0, "rel": null}
dead_init = {
    seed: float(np.mean(evaluate(build(seed=seed), X_train, y_train)[2]))
    for seed in SEEDS
}
lr_runs = sweep(
    [dict(batch_norm=False, lr=lr, num_epochs=SWEEP_EPOCHS) for lr in LRS],
    "learning rates",
)
lr_runs["dead_init"] = lr_runs.seed.map(dead_init)
lr_table = mean_sd_table(
    lr_runs,
    "lr",
    {
        "val loss": ("val_loss", 1, ".3f"),
        "val acc %": ("val_acc", 100, ".1f"),
        "plateau": ("plateau", 1, ".1f"),
        "dead % init": ("dead_init", 100, ".1f"),
        "dead % end": ("dead", 100, ".1f"),
    },
)
lr_table.index = [f"{lr:g}" for lr in lr_table.index]
lr_table.rename_axis("lr")

# %% [markdown]
# The curves of the sweep, drawn by the next cell: the mean over the seeds, and shaded the range
# from the lowest to the highest seed.


# %% tags=["hide-input"]
def band(ax, lr, column, scale=1.0, batch_norm=False, **style):
    """The mean over the seeds of a history column against the epoch, and its range."""
    hs = [
        get_run(batch_norm=batch_norm, lr=lr, num_epochs=SWEEP_EPOCHS, seed=s)[1]
        for s in SEEDS
    ]
    values = scale * np.stack([h[column].to_numpy() for h in hs])
    line = ax.plot(hs[0].epoch, values.mean(0), **style)[0]
    ax.fill_between(
        hs[0].epoch, values.min(0), values.max(0), color=line.get_color(), alpha=0.2
    )


fig, axes = plt.subplots(2, 1, figsize=(plots.COLUMN_WIDTH, 6.4), sharex=True)
for lr in LRS:
    band(axes[0], lr, "val_loss", label=f"lr = {lr:g}")
    band(axes[1], lr, "dead", scale=100, label=f"lr = {lr:g}")
axes[0].axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
axes[0].set(
    title=f"Validation loss, Adam, batch {BATCH_SIZE} (mean, range over seeds)",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
axes[1].set(
    title="Dead ReLU units (0 on every training point)",
    xlabel="epoch",
    ylabel="dead units (% of 96)",
)
axes[0].legend(ncol=4)
axes[1].legend(ncol=3)
plt.show()

# %% [markdown]
# Three of the six learning rates leave the loss flat at $\ln K$ on every seed. To tell *why*,
# the next table measures, for every run that stopped at epoch 40, how far the parameters moved
# from their initial values ($\lVert\boldsymbol\theta-\boldsymbol\theta_0\rVert /
# \lVert\boldsymbol\theta_0\rVert$), the spread of the logits across the validation inputs (0
# means the output does not depend on the input) and the number of hidden layers in which every
# unit is dead. Each column gives the lowest and the highest value over the seeds.


# %%
@torch.no_grad()
def logit_spread(model, X=X_val):
    """The sd of the logits across inputs, mean over classes: 0 is a constant output."""
    model.eval()
    return model(X).std(dim=0).mean().item()


def param_change(model, seed):
    """||theta - theta_0|| / ||theta_0||, theta_0 the seed's initial parameters."""
    init = build(
        model.depth,
        model.width,
        model.batch_norm,
        model.residual,
        model.residual_scale,
        seed=seed,
    )
    theta = torch.cat([p.detach().ravel() for p in model.parameters()])
    theta0 = torch.cat([p.detach().ravel() for p in init.parameters()])
    return ((theta - theta0).norm() / theta0.norm()).item()


# %%
def diagnose(batch_norm, lrs):
    """One row per (lr, seed): parameter change, logit spread, fully dead layers."""
    rows = []
    for lr in lrs:  # runs that stopped at epoch SWEEP_EPOCHS
        for seed in SEEDS:
            m = runs[(6, 16, batch_norm, lr, BATCH_SIZE, seed)][0]
            rows.append(
                dict(
                    lr=lr,
                    seed=seed,
                    change=param_change(m, seed),
                    spread=logit_spread(m),
                    dead_layers=sum(d == 1.0 for d in evaluate(m, X_train, y_train)[2]),
                )
            )
    return pd.DataFrame(rows)


def low_high(results, by, column, fmt):
    """ "lowest to highest" of a column over the seeds, per configuration."""
    s = stats.summarize(results, by, column)
    return [f"{lo:{fmt}} to {hi:{fmt}}" for lo, hi in zip(s["min"], s["max"])]


# %% tags=["nbval-measured"] tolerance={"abs": 5.8, "rel": 4.0}
diag = diagnose(False, [lr for lr in LRS if lr != LR])
freq_val = np.bincount(y_val.numpy(), minlength=NUM_CLASSES) / len(y_val)
best_constant_loss = float(-(freq_val * np.log(freq_val)).sum())  # label entropy
print(
    "best loss of a constant prediction on the validation set "
    f"(entropy of its labels): {best_constant_loss:.4f}"
)
pd.DataFrame(
    {
        "||θ−θ₀|| / ||θ₀||": low_high(diag, "lr", "change", ".2g"),
        "logit spread": low_high(diag, "lr", "spread", ".2g"),
        "fully dead layers": low_high(diag, "lr", "dead_layers", "d"),
    },
    index=pd.Index([f"{lr:g}" for lr in diag.lr.unique()], name="lr"),
)

# %%
for lr in (1, 0.2):  # a fully dead layer: constant output, no better than a constant
    d = diag[diag.lr == lr]
    r = lr_runs[lr_runs.lr == lr]
    assert (d.dead_layers >= 1).all() and (d.spread < 1e-6).all()
    assert (r.val_loss >= best_constant_loss - 1e-4).all()
    for acc in r.val_acc:  # the accuracy is one class's share of the validation set
        assert np.isclose(freq_val, acc, atol=1e-6).any()
tiny = diag[diag.lr == 1e-5]
assert (tiny.change < 0.05).all() and (tiny.spread < 1e-3).all()
at = {lr: lr_runs[lr_runs.lr == lr] for lr in LRS}
assert (at[1e-5].plateau == SWEEP_EPOCHS).all()
assert ((at[1e-5].dead - at[1e-5].dead_init).abs() <= 2 / 96 + 1e-9).all()
drop = {lr: (r.dead_init - r.dead).mean() for lr, r in at.items()}
for lr in (1e-3, 5e-4):  # dead units come back; fewer do at lr = 0.01
    assert (at[lr].dead < at[lr].dead_init - 0.05).all() and drop[LR] < drop[lr]
# lr = 0.01: off the plateau first, and lower than 1, 0.2, 5e-4, 1e-5 on every seed
assert at[LR].plateau.max() < at[1e-3].plateau.min()
for lr in (1, 0.2, 5e-4, 1e-5):
    assert at[LR].val_loss.max() < at[lr].val_loss.min()
assert at[LR].val_loss.std() < at[1e-3].val_loss.std()
# first-layer units dead at initialisation stay dead (layer 1's fraction never falls)
for (depth, width, bn, lr, bs, seed), (m, h) in list(runs.items()):
    if not bn and depth == 6 and width == 16:
        first = evaluate(build(seed=seed), X_train, y_train)[2][0]
        assert h.dead_per_layer.iloc[-1][0] >= first

# %% [markdown]
# The measurements separate two different failures behind the same flat curve:
#
# - **Too large (`lr` = 1 and 0.2): the network died.** After 40 epochs 85.1% and 86.8% of the
#   units are dead on average, and on every seed at least one hidden layer has lost every unit
#   (3 to 4 such layers at `lr = 1`). The logit spread is exactly 0: the output is the same for
#   every input, so the network predicts one class everywhere (its accuracy is that class's
#   share of the validation set) and its loss cannot go below the 1.6075 of the best constant
#   prediction. The parameters moved a lot (28 to 31 and 4.7 to 5.6 times their initial norm),
#   but no gradient flows back through a dead layer, so the run cannot recover.
# - **Too small (`lr` = 1e-5): the network barely moved.** The parameters changed by 1.4% to
#   2.6% of their norm, the logit spread is still below $10^{-3}$ as at initialisation, and the
#   loss stays where {eq}`eq-ch6-lnk` put it. Nothing is broken; the steps are too short.
#
# In between, `lr` = 0.001 and 5e-4 first sit on the $\ln K$ plateau (9.7 and 17.0 epochs on
# average) and then descend, without having converged after 40 epochs. How long a run sits
# there depends on its initial weights, and the results spread accordingly: over the seeds the
# validation loss at `lr = 0.001` has a standard deviation of 0.320, against 0.045 at
# `lr = 0.01`. `lr = 0.01` leaves the plateau first on every seed (after 2.0 epochs on
# average) and ends
# below `lr` = 1, 0.2, 5e-4 and 1e-5 on every seed. Against 0.001 three seeds do not settle the
# order: whether their ranges overlap depends on which seeds one draws. `lr = 0.01` is the
# default because it gets off the plateau quickly whatever the seed.
#
# The dead units tell the same story from the inside. At 0.001 and 5e-4 the dead fraction falls
# on every seed, from 39.6% at initialisation to about a quarter (24.3% and 26.0% on average):
# units dead at initialisation come back as the layers before them learn. At 0.01 it falls
# less, to 35.1%: some units come back while others die. At 1e-5 it stays within two units of
# where it started (40.3% on average). And in no run that did not die has the first layer lost
# a dead unit: such a unit never receives a gradient. Dead units alone are not fatal: the good
# runs keep about a third of their units dead. A layer in which *all* of them are dead is.
#
# (sec-ch06-default-model)=
# ## The default model, 100 epochs
#
# The default model (`lr = 0.01`, batch 128) for 100 epochs, with every seed. The table gives
# every split's loss and accuracy at the end, as mean ± sd over the seeds; the test set is used
# once, here at the end. A line printed before it gives the epoch at which each run's
# validation loss was lowest, and how much a run's validation accuracy wobbles from epoch to
# epoch at the end.

# %% tags=["nbval-measured"] tolerance={"abs": 46.0, "rel": 8.8}
final = pd.DataFrame(
    [
        dict(seed=seed, split=name, loss=loss, acc=acc)
        for seed, (m, _) in default.items()
        for name, (X, y) in splits.items()
        for loss, acc, _ in [evaluate(m, X, y)]
    ]
)
best_epochs = [int(h.epoch[h.val_loss.idxmin()]) for _, h in default.values()]
wobble = [h.val_acc.iloc[-10:].std() for _, h in default.values()]
print(f"epoch of the lowest validation loss, per seed: {best_epochs}")
print(
    "sd of the validation accuracy over the last 10 epochs: "
    f"{np.mean(wobble) * 100:.1f} points (mean over seeds)"
)
mean_sd_table(
    final, "split", {"loss": ("loss", 1, ".3f"), "accuracy (%)": ("acc", 100, ".1f")}
)

# %% [markdown]
# The learning curves of the run with seed `SEED` (training set and validation set in eval mode
# after every epoch; the star is the test set at the end), drawn by the next cell:

# %% tags=["hide-input"]
hist_def = default[SEED][1]
fig, axes = plt.subplots(2, 1, figsize=(plots.COLUMN_WIDTH, 6), sharex=True)
for column, label in [("train_loss", "train"), ("val_loss", "validation")]:
    axes[0].plot(hist_def.epoch, hist_def[column], label=label)
    axes[1].plot(
        hist_def.epoch, 100 * hist_def[column.replace("loss", "acc")], label=label
    )
test = final[(final.seed == SEED) & (final.split == "test")].iloc[0]
axes[0].plot([NUM_EPOCHS], [test.loss], "k*", ms=10, label="test (end)")
axes[1].plot([NUM_EPOCHS], [100 * test.acc], "k*", ms=10, label="test (end)")
axes[0].set(
    title=f"Default model, seed {SEED}: loss",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
axes[1].set(title="Default model: accuracy", xlabel="epoch", ylabel="accuracy (%)")
for ax in axes:
    ax.legend()
plt.show()

# %% tags=["nbval-measured"] tolerance={"abs": 46.0, "rel": null}
r_test = X_test.norm(dim=1)
radius_bins = [(0, 0.3), (0.3, 0.6), (0.6, 2)]
by_radius = []
for seed, (m, _) in default.items():
    with torch.no_grad():
        correct = (m.eval()(X_test).argmax(1) == y_test).float()
    for lo_r, hi_r in radius_bins:
        sel = (r_test >= lo_r) & (r_test < hi_r)
        by_radius.append(
            dict(
                seed=seed,
                radius=f"[{lo_r}, {hi_r})",
                points=int(sel.sum()),
                acc=correct[sel].mean().item(),
            )
        )
by_radius = pd.DataFrame(by_radius)
table = mean_sd_table(by_radius, "radius", {"accuracy (%)": ("acc", 100, ".1f")})
table.insert(0, "test points", by_radius.groupby("radius", sort=False).points.first())
table

# %%
for seed in SEEDS:
    acc = final[final.seed == seed].set_index("split").acc
    assert acc["train"] - acc["validation"] < 0.05 and acc["train"] - acc["test"] < 0.05
    centre = by_radius[by_radius.seed == seed].acc.to_numpy()
    assert centre[0] < min(centre[1:]) - 0.05
assert min(best_epochs) > NUM_EPOCHS // 2

# %% [markdown]
# The training and validation curves lie close together: 1,493 parameters on 3,000 points do
# not overfit this smooth problem in 100 epochs. On every seed the training accuracy is within
# 5 points of the validation and the test accuracy (89.7%, 88.9% and 89.6% on average), and the
# differences between the splits are of the size of the spread over the seeds (0.6 to 1.2
# points) and of the epoch-to-epoch wobble of a single run (a standard deviation of 1.5 points
# over its last 10 epochs, from Adam's noisy steps at this learning rate). The lowest validation
# loss comes late in every run (epochs 96, 66 and 77): the validation loss is still falling
# slowly, or has flattened out. Errors are most frequent near the centre, where the arms come
# together: 78.6% of the test points within radius 0.3 are classified correctly, against 92.4%
# and 94.1% further out.
#
# (sec-ch06-batch-norm)=
# ## Batch normalisation
#
# {term}`Batch normalisation` {cite}`ch06-ioffe2015batchnorm` standardises each unit's
# pre-activation $u$ over the $B$ examples of the minibatch and then applies a learned scale
# $\gamma$ and shift $\delta$:
#
# $$
# \begin{aligned}
# \hat u &= \gamma\,\frac{u - \bar u}{\sqrt{\operatorname{sd}_B^2 + \epsilon}} + \delta, \\
# \bar u &= \frac{1}{B}\sum_{i=1}^{B} u_i, \qquad
# \operatorname{sd}_B^2 = \frac{1}{B}\sum_{i=1}^{B} (u_i - \bar u)^2 .
# \end{aligned}
# $$ (eq-ch6-bn)
#
# During training it also keeps running averages of $\bar u$ and of the *unbiased* batch
# variance (momentum 0.1); in eval mode it uses those instead of the batch's statistics, so a
# prediction does not depend on the other examples of the batch. The next cell checks both
# statements against `nn.BatchNorm1d` (whose `weight` is $\gamma$ and `bias` is $\delta$).

# %%
torch.manual_seed(SEED)
bn = nn.BatchNorm1d(4)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
    bn.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
z = 3 * torch.randn(32, 4) + 1
out = bn.train()(z)
mean, var = z.mean(0), z.var(0, unbiased=False)
by_hand = bn.weight * (z - mean) / torch.sqrt(var + bn.eps) + bn.bias
np.testing.assert_allclose(
    out.detach().numpy(), by_hand.detach().numpy(), rtol=1e-5, atol=1e-5
)
np.testing.assert_allclose(
    bn.running_mean.numpy(), (0.1 * mean).numpy(), rtol=1e-5, atol=1e-6
)
np.testing.assert_allclose(
    bn.running_var.numpy(), (0.9 + 0.1 * z.var(0, unbiased=True)).numpy(), rtol=1e-5
)
print(
    "nn.BatchNorm1d in training mode matches the formula; running statistics as stated"
)

# %% [markdown]
# Batch norm undoes the shrinking of {eq}`eq-ch6-shrink`: at initialisation every
# pre-activation is standardised, so each hidden layer's output should have the spread of
# $\mathrm{ReLU}(u)$ for a standardised $u$; for a standard normal $u$ that is
# $\sqrt{1/2 - 1/(2\pi)} = 0.584$. The table measures it on a fresh batch-norm model in training
# mode, with the whole training set as the batch.

# %%
with torch.no_grad():
    logits0_bn, hidden0_bn = build(batch_norm=True).train()(X_train, return_hidden=True)
    loss0_bn = loss_fn(logits0_bn, y_train).item()
relu_sd = math.sqrt(0.5 - 1 / (2 * math.pi))  # sd of ReLU(z) for z ~ N(0, 1)
sds_bn = [a.std(0).mean().item() for a in hidden0_bn]
print(
    f"loss at initialisation with batch norm (training mode): {loss0_bn:.3f}, "
    f"ln K = {math.log(NUM_CLASSES):.3f}"
)
print(f"sd of ReLU(z) for z ~ N(0, 1): {relu_sd:.3f}")
assert all(abs(s - relu_sd) < 0.1 for s in sds_bn)
pd.DataFrame(
    {
        "layer": [f"hidden {i + 1}" for i in range(len(hidden0_bn))] + ["logits"],
        "no batch norm": init_table["sd across inputs"].tolist(),
        "batch norm": [f"{s:.2g}" for s in sds_bn]
        + [f"{logits0_bn.std(0).mean().item():.2g}"],
    }
).set_index("layer").rename_axis(columns="sd across inputs at initialisation")

# %% [markdown]
# Every layer of the batch-norm model carries a signal of the expected size (0.54 to 0.59), the
# logits vary across inputs (sd 0.4) and the loss at initialisation, 1.804, is *above* $\ln K$:
# the network starts with input-dependent, if random, opinions. Now the same learning-rate
# sweep with batch norm: 40 epochs, the seeds `SEEDS`, and `lr = 0.01` again for 100 epochs, to
# compare with the default model. The table repeats the plain network's results beside it.

# %% tags=["nbval-measured"] tolerance={"abs": 26.0, "rel": 4.9}
bn_runs = sweep(
    [dict(batch_norm=True, lr=lr, num_epochs=SWEEP_EPOCHS) for lr in LRS],
    "learning rates, batch norm",
)
for seed in SEEDS:  # lr = 0.01 with batch norm also for 100 epochs
    get_run(batch_norm=True, seed=seed)
plain = mean_sd_table(
    lr_runs,
    "lr",
    {"loss, no BN": ("val_loss", 1, ".3f"), "acc %, no BN": ("val_acc", 100, ".1f")},
)
with_bn = mean_sd_table(
    bn_runs,
    "lr",
    {
        "loss, BN": ("val_loss", 1, ".3f"),
        "acc %, BN": ("val_acc", 100, ".1f"),
        "dead %, BN": ("dead", 100, ".1f"),
    },
)
bn_table = pd.concat([plain, with_bn], axis=1)
bn_table = bn_table[
    ["loss, no BN", "loss, BN", "acc %, no BN", "acc %, BN", "dead %, BN"]
]
bn_table.index = [f"{lr:g}" for lr in bn_table.index]
bn_table.rename_axis(f"lr ({SWEEP_EPOCHS} epochs)")

# %% [markdown]
# The next cell draws the validation loss after 40 epochs against the learning rate, with and
# without batch norm (mean and range over the seeds), and the 100-epoch runs at `lr = 0.01`.

# %% tags=["hide-input"]
both = pd.concat([lr_runs, bn_runs])
fig, axes = plt.subplots(2, 1, figsize=(plots.COLUMN_WIDTH, 6.6))
for bn, marker, name in [(False, "o-", "no batch norm"), (True, "s-", "batch norm")]:
    summary = stats.summarize(both[both.batch_norm == bn], "lr", "val_loss")
    axes[0].errorbar(
        summary.index,
        summary["mean"],
        yerr=[summary["mean"] - summary["min"], summary["max"] - summary["mean"]],
        fmt=marker,
        capsize=3,
        label=name,
    )
    for seed in SEEDS:
        h = get_run(batch_norm=bn, seed=seed)[1]
        label = name if seed == SEED else None
        axes[1].plot(h.epoch, h.val_loss, color=f"C{int(bn)}", lw=1, label=label)
axes[0].axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
axes[0].set(
    title=f"Validation loss after {SWEEP_EPOCHS} epochs (mean, range over seeds)",
    xlabel="learning rate",
    xscale="log",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
axes[1].set(
    title=f"lr = {LR:g}, {NUM_EPOCHS} epochs, one line per seed",
    xlabel="epoch",
    ylabel="validation loss (nats)",
    yscale="log",
)
for ax in axes:
    ax.legend()
plt.show()

# %%
bn_diag = diagnose(True, [1])
assert (bn_diag.dead_layers >= 1).all() and (bn_diag.spread < 1e-6).all()  # lr = 1
plain_at = {lr: lr_runs[lr_runs.lr == lr].val_loss for lr in LRS}
bn_at = {lr: bn_runs[bn_runs.lr == lr].val_loss for lr in LRS}
for lr in (1e-3, 5e-4):  # lower on average, and far less dependent on the seed
    assert bn_at[lr].mean() < plain_at[lr].mean()
    assert bn_at[lr].std() < plain_at[lr].std() / 2
assert not stats.tied(bn_at[5e-4], plain_at[5e-4])  # better on every seed
assert (bn_at[0.2] < 0.9 * math.log(NUM_CLASSES)).all()  # learns where plain died
assert (bn_at[1e-5] < math.log(NUM_CLASSES) - 0.02).all()  # at least moves
assert stats.tied(bn_at[LR], plain_at[LR])
assert (bn_runs[bn_runs.lr <= LR].dead <= 1 / 96 + 1e-9).all()  # at most one dead unit

# %% [markdown]
# With batch norm the useful range of learning rates is much wider, and the result depends much
# less on the seed. At `lr` = 0.001 and 5e-4 the plain network was still crawling off the
# plateau after 40 epochs (validation loss 0.670 ± 0.320 and 0.926 ± 0.259); with batch norm it
# reaches 0.316 ± 0.005 and 0.350 ± 0.020, lower on average and with a fraction of the spread;
# at 5e-4 every batch-norm seed ends below every plain one. At `lr = 0.2`, where the plain
# network died, the batch-norm network learns on every seed (0.473 ± 0.091), and at
# `lr = 1e-5` it at least moves (1.532 ± 0.029, below $\ln K$ on every seed). At `lr = 0.01`
# the two are tied (0.333 ± 0.045 and 0.335 ± 0.026). Batch norm is no protection against every
# learning rate: at `lr = 1` both networks end at a constant output, and the batch-norm network
# has a fully dead layer on every seed. For `lr` ≤ 0.01 it has at most one dead unit in 96: a
# unit whose standardised pre-activation has zero mean over every batch is positive for some
# examples, unless $\gamma$ and $\delta$ learn to push it down.
#
# Over 100 epochs at `lr = 0.01`, the table compares the two models at the end, over the
# seeds; the batch-norm model is also shown in training mode, where each example is normalised
# with the statistics of its random minibatch: its training loss averaged over the last epoch.

# %% tags=["nbval-measured"] tolerance={"abs": 3.4, "rel": 8.0}
long = pd.DataFrame(
    [
        dict(
            model=name,
            seed=seed,
            running=h.running_loss.iloc[-1],
            train=h.train_loss.iloc[-1],
            val=h.val_loss.iloc[-1],
            val_acc=h.val_acc.iloc[-1],
        )
        for name, bn in [("no batch norm", False), ("batch norm", True)]
        for seed in SEEDS
        for h in [get_run(batch_norm=bn, seed=seed)[1]]
    ]
)
mean_sd_table(
    long,
    "model",
    {
        "train loss, train mode": ("running", 1, ".3f"),
        "train loss": ("train", 1, ".3f"),
        "val loss": ("val", 1, ".3f"),
        "val acc (%)": ("val_acc", 100, ".1f"),
    },
).rename_axis(f"after {NUM_EPOCHS} epochs")

# %%
bn_long, plain_long = (
    long[long.model == "batch norm"],
    long[long.model == "no batch norm"],
)
assert (bn_long.running > bn_long.train + 0.05).all()  # the noise of batch statistics
assert stats.tied(bn_long.val_acc, plain_long.val_acc)
assert ((plain_long.running - plain_long.train).abs() < 0.05).all()

# %% [markdown]
# After 100 epochs at `lr = 0.01` the two models are tied in validation accuracy (88.9 ± 1.2%
# and 88.4 ± 0.4%). The training loss of the batch-norm model measured in training mode stays
# well above its eval-mode training loss, on every seed (0.473 against 0.313 on average): in
# training mode each example is normalised with the statistics of a random batch of 128, a
# noise that disappears in eval mode. The plain network has no such gap (0.269 and 0.273).
#
# (sec-ch06-batch-size)=
# ## Batch size
#
# With $N$ training examples and {term}`batch size <Batch size>` $B$ an epoch is
# $\lceil N/B\rceil$ optimizer steps. At a fixed learning rate, a small batch makes many noisy
# steps per epoch, a large batch a few accurate ones. The sweep uses `lr = 0.001`, where batch
# 128 learns slowly enough for differences to show, and the seeds `SEEDS`. Batch size 1 makes
# 3,000 steps per epoch and is by far the slowest per epoch on a CPU, so it runs only
# `BS1_EPOCHS` = 4 epochs (12,000 steps); the others run 40 epochs. (Batch size 1 is also why
# this comparison has no batch norm: `nn.BatchNorm1d` cannot compute a variance from one example
# and refuses to train on it.)

# %% tags=["nbval-measured"] tolerance={"abs": 26.0, "rel": 8.0}
bs_configs = [
    dict(
        lr=BATCH_SIZE_LR,
        batch_size=bs,
        num_epochs=BS1_EPOCHS if bs == 1 else SWEEP_EPOCHS,
    )
    for bs in BATCH_SIZES
]
bs_runs = sweep(bs_configs, "batch sizes")
bs_runs["steps per epoch"] = bs_runs.batch_size.map(lambda bs: math.ceil(n_train / bs))
bs_runs["epochs"] = bs_runs.batch_size.map(
    lambda bs: BS1_EPOCHS if bs == 1 else SWEEP_EPOCHS
)
assert (bs_runs.step == bs_runs["steps per epoch"] * bs_runs.epochs).all()
bs_table = mean_sd_table(
    bs_runs,
    "batch_size",
    {"val loss": ("val_loss", 1, ".3f"), "val acc (%)": ("val_acc", 100, ".1f")},
)
first = bs_runs.groupby("batch_size", sort=False).first()
bs_table.insert(0, "steps", first.step)
bs_table.insert(0, "epochs", first.epochs)
bs_table.insert(0, "steps per epoch", first["steps per epoch"])
bs_table.rename_axis("batch size")

# %%
fig, axes = plt.subplots(2, 1, figsize=(plots.COLUMN_WIDTH, 6.4))
for i, bs in enumerate(BATCH_SIZES):
    for seed in SEEDS:
        h = get_run(**bs_configs[i], seed=seed)[1]
        style = dict(color=f"C{i}", lw=1, marker="o" if bs == 1 else None, ms=3)
        label = f"batch {bs}" if seed == SEED else None
        axes[0].plot(h.epoch, h.val_loss, label=label, **style)
        axes[1].plot(h.step, h.val_loss, label=label, **style)
axes[0].set(
    title=f"Against epochs (lr = {BATCH_SIZE_LR:g}, one line per seed)",
    xlabel="epoch",
    ylabel="validation loss (nats)",
    yscale="log",
)
axes[1].set(
    title=f"Against optimizer steps (lr = {BATCH_SIZE_LR:g})",
    xlabel="optimizer steps",
    xscale="log",
    ylabel="validation loss (nats)",
    yscale="log",
)
for ax in axes:
    ax.axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
    ax.legend(ncol=2)
plt.show()

# %% [markdown]
# Per epoch and per step, paired by seed (each seed gives every batch size the same initial
# weights): the validation loss of each batch size after `BS1_EPOCHS` epochs, and at the end of
# the first epoch at which each has made at least as many steps as batch 128 makes in 40 epochs
# (batch 1024 never does; it is compared with batch 128 at its own 120 steps).


# %% tags=["nbval-measured"] tolerance={"abs": 4.0, "rel": null}
def val_loss_at(bs, seed, *, epoch=None, steps=None):
    """Validation loss after ``epoch`` epochs, or at the first epoch with >= steps."""
    h = get_run(**bs_configs[BATCH_SIZES.index(bs)], seed=seed)[1]
    row = h.iloc[epoch - 1] if epoch else h[h.step >= steps].iloc[0]
    return row.val_loss, int(row.step)


per_epoch = pd.DataFrame(
    {
        bs: [val_loss_at(bs, s, epoch=BS1_EPOCHS)[0] for s in SEEDS]
        for bs in BATCH_SIZES
    },
    index=SEEDS,
)
steps_960 = {bs: val_loss_at(bs, SEED, steps=960)[1] for bs in BATCH_SIZES[:3]}
per_step = pd.DataFrame(
    {bs: [val_loss_at(bs, s, steps=960)[0] for s in SEEDS] for bs in BATCH_SIZES[:3]},
    index=SEEDS,
)
per_step_120 = pd.DataFrame(
    {bs: [val_loss_at(bs, s, steps=120)[0] for s in SEEDS] for bs in [128, 1024]},
    index=SEEDS,
)
print(f"validation loss after {BS1_EPOCHS} epochs, one row per seed:")
print(per_epoch.map(fmt_loss).rename_axis("seed \\ batch").to_string())
print("validation loss at the first epoch with at least 960 steps, one row per seed:")
print(
    per_step.map(fmt_loss)
    .rename(columns=lambda bs: f"{bs} ({steps_960[bs]:,} steps)")
    .rename_axis("seed \\ batch")
    .to_string()
)
print("validation loss after 120 steps (batch 128: epoch 5; batch 1024: epoch 40):")
print(per_step_120.map(fmt_loss).rename_axis("seed \\ batch").to_string())

# %%
assert (per_epoch[1] < per_epoch[16]).all() and (per_epoch[16] < per_epoch[128]).all()
assert (per_step[128] < per_step[16]).all() and (per_step[16] < per_step[1]).all()
assert (per_step_120[1024] < per_step_120[128]).all()
assert (per_epoch[16] < per_epoch[1024]).all()
assert (per_epoch[[128, 1024]] > 0.9 * math.log(NUM_CLASSES)).all().all()  # plateau

# %% [markdown]
# Against epochs, that is per example seen, smaller batches win on every seed: after 4 epochs
# batch 1 is ahead of batch 16, and batch 16 ahead of batch 128 and 1024, which are both still
# on the plateau. Against optimizer steps the order reverses on every seed: batch 128 after its
# 960 steps is ahead of batch 16 after 1,128 steps, which is ahead of batch 1 after 3,000; and
# after 120 steps batch 1024 is, just, ahead of batch 128. A larger batch makes a better step;
# a smaller batch makes more steps per epoch.
#
# What a step costs on this machine: a measured time, which changes from run to run and from
# machine to machine.


# %% tags=["nbval-ignore-output"] ignore_reason="wall-clock timings vary by machine and load"
def seconds_per_step(batch_size, steps=200):
    """Wall-clock seconds of one training step of the default model."""
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=BATCH_SIZE_LR, fused=True)
    idx = torch.arange(steps * batch_size) % n_train
    t0 = time.perf_counter()
    for batch in idx.split(batch_size):
        optimizer.zero_grad()
        loss_fn(model(X_train[batch]), y_train[batch]).backward()
        optimizer.step()
    return (time.perf_counter() - t0) / steps


step_seconds = {bs: seconds_per_step(bs) for bs in BATCH_SIZES}
for bs, s in step_seconds.items():
    print(
        f"batch {bs:5d}: {1e6 * s:6.0f} µs per step, "
        f"{s * math.ceil(n_train / bs):6.3f} s per epoch"
    )
assert step_seconds[1024] < 100 * step_seconds[1]  # 1,024 times the examples

# %% [markdown]
# Which wins in time depends on what a step costs. For this tiny model on a CPU the time per
# step is dominated by overhead and grows far more slowly than the batch, so large batches are
# cheap per example. How far the batch can grow before extra examples stop buying progress per
# step, and how to scale the learning rate with it, is measured at scale in
# {cite}`ch06-goyal2017accurate,ch06-shallue2019measuring`.
#
# **Validation and test accuracy against batch size.** [Chapter 1](01_computational_graph.ipynb)
# left open whether the batch size changes how well a network generalizes. The table and the
# figure give each batch size's accuracy on the training, validation and test sets at the end of
# its runs, and the {term}`generalization gap <Generalization gap>` between training and test
# accuracy, over the seeds.

# %% tags=["nbval-measured"] tolerance={"abs": 31.0, "rel": 18}
bs_final = pd.DataFrame(
    [
        dict(batch_size=bs, seed=seed, split=name, acc=evaluate(m, X, y)[1])
        for bs, config in zip(BATCH_SIZES, bs_configs)
        for seed in SEEDS
        for m in [get_run(**config, seed=seed)[0]]
        for name, (X, y) in splits.items()
    ]
)
wide = bs_final.pivot_table(index=["batch_size", "seed"], columns="split", values="acc")
wide["gap"] = wide["train"] - wide["test"]
wide = wide.reset_index()
gen_table = mean_sd_table(
    wide,
    "batch_size",
    {
        "train acc (%)": ("train", 100, ".1f"),
        "val acc (%)": ("validation", 100, ".1f"),
        "test acc (%)": ("test", 100, ".1f"),
        "train − test (points)": ("gap", 100, ".1f"),
    },
)
test_means = wide.groupby("batch_size").test.mean()
print(
    f"mean test accuracy per batch size: from {100 * test_means.min():.1f}% "
    f"to {100 * test_means.max():.1f}%"
)
print(
    f"train − test accuracy over all {len(wide)} runs: "
    f"from {100 * wide.gap.min():.1f} "
    f"to {100 * wide.gap.max():.1f} points"
)

gen_table.rename_axis("batch size")

# %% [markdown]
# The same accuracies against the batch size, drawn by the next cell (mean and range over the
# seeds; the three splits are shifted sideways a little to keep them apart).

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(plots.COLUMN_WIDTH, 3.6))
for i, split in enumerate(["train", "validation", "test"]):
    acc = stats.summarize(bs_final[bs_final.split == split], "batch_size", "acc")
    x = np.array(BATCH_SIZES) * 1.08 ** (i - 1)  # side by side
    yerr = 100 * np.array([acc["mean"] - acc["min"], acc["max"] - acc["mean"]])
    ax.errorbar(x, 100 * acc["mean"], yerr=yerr, fmt="o-", capsize=3, label=split)
ax.set(
    title=f"Accuracy at the end of the runs (mean, range over {N_SEEDS} seeds)",
    xlabel="batch size (log scale)",
    xscale="log",
    ylabel="accuracy (%)",
)
ax.set_xticks(BATCH_SIZES, [str(b) for b in BATCH_SIZES])
ax.xaxis.set_minor_formatter(NullFormatter())
ax.legend()
plt.show()

# %%
assert wide.gap.abs().max() < 0.25 * (test_means.max() - test_means.min())
largest, others = wide[wide.batch_size == 1024], wide[wide.batch_size != 1024]
for split in ("train", "test"):  # batch 1024 is below every other batch size
    assert largest[split].max() < others[split].min()
assert (bs_runs[bs_runs.batch_size == 1024].plateau == SWEEP_EPOCHS).all()

# %% [markdown]
# **What these runs show.** A batch size's test accuracy follows its training accuracy, and no
# batch size opens a gap between the two: over all 12 runs the training accuracy exceeds the test
# accuracy by -1.2 to 2.5 points, while the batch sizes' mean test accuracies range from 25.5%
# to 86.7%. Those differences come from how far each batch size got in its budget, not from how
# well what it learned generalizes: batch 1024, still on the plateau after its 120 steps, is
# below every other batch size on every seed, on the training set as on the test set.
#
# **What they do not show.** The claim that small batches generalize better than large ones
# {cite}`ch06-keskar2017largebatch,ch06-masters2018revisiting` is about networks trained to the
# same low training loss, where large batches were seen to end with a larger gap between
# training and test accuracy. None of our runs overfits, and the batch sizes stop at very
# different training losses, so these runs can neither confirm nor refute it. Testing it would
# take every batch size trained to convergence, with a learning rate tuned for each, on a
# problem where the network can overfit (more parameters, fewer training points), and more
# seeds than three: on this chapter's CPU budget that is an exercise for a GPU.
#
# (sec-ch06-depth-width)=
# ## Depth and width
#
# Depth 1, 2, 6 and 10 at width 16, and width 8, 16, 32 and 64 at depth 6: all with Adam at
# `lr = 0.01`, batch 128, 100 epochs, each with the seeds `SEEDS` (the depth-6, width-16 runs
# are the default model's). The table gives the final model's accuracy on each split over the
# seeds.

# %% tags=["nbval-measured"] tolerance={"abs": 64.0, "rel": 7.0}
arch = [(d, 16) for d in DEPTHS] + [(6, w) for w in WIDTHS if w != 16]
arch_runs = sweep([dict(depth=d, width=w) for d, w in arch], "depth and width")
arch_acc = pd.DataFrame(
    [
        dict(
            depth=d,
            width=w,
            seed=seed,
            **{name: evaluate(m, X, y)[1] for name, (X, y) in splits.items()},
        )
        for d, w in arch
        for seed in SEEDS
        for m in [get_run(depth=d, width=w, seed=seed)[0]]
    ]
)
arch_table = mean_sd_table(
    arch_acc,
    ["depth", "width"],
    {
        "train acc (%)": ("train", 100, ".1f"),
        "val acc (%)": ("validation", 100, ".1f"),
        "test acc (%)": ("test", 100, ".1f"),
    },
)
arch_table.insert(
    0, "params", [sum(p.numel() for p in build(d, w).parameters()) for d, w in arch]
)
arch_table

# %%
fig, axes = plt.subplots(1, 2, figsize=(plots.COLUMN_WIDTH, 3.4), sharey=True)
for ax, col, keep, label in [
    (axes[0], "depth", arch_acc.width == 16, "hidden layers (width 16, log scale)"),
    (axes[1], "width", arch_acc.depth == 6, "units per layer (depth 6, log scale)"),
]:
    for split, marker in [("train", "o-"), ("validation", "s-")]:
        s = stats.summarize(arch_acc[keep].sort_values(col), col, split)
        yerr = 100 * np.array([s["mean"] - s["min"], s["max"] - s["mean"]])
        ax.errorbar(
            s.index, 100 * s["mean"], yerr=yerr, fmt=marker, capsize=3, label=split
        )
    ax.set(xlabel=label, xscale="log")
    ax.set_xticks(sorted(arch_acc[keep][col].unique()))
    ax.set_xticklabels([str(v) for v in sorted(arch_acc[keep][col].unique())])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend()
axes[0].set(title="Accuracy against depth", ylabel="accuracy (%)")
axes[1].set(title="Accuracy against width")
fig.suptitle(f"{NUM_EPOCHS} epochs, mean and range over {N_SEEDS} seeds")
plt.show()


# %%
def group_acc(**where):
    """Validation accuracies over the seeds of one architecture."""
    sel = np.logical_and.reduce([arch_acc[k] == v for k, v in where.items()])
    return arch_acc[sel].validation


depth_2 = group_acc(depth=2, width=16)
assert group_acc(depth=1, width=16).max() < depth_2.min()  # two beat one, every seed
for d in (6, 10):  # more depth never beats two layers, nor fits the training set better
    assert not group_acc(depth=d, width=16).min() > depth_2.max()
    train_d = arch_acc[(arch_acc.depth == d) & (arch_acc.width == 16)].train
    train_2 = arch_acc[(arch_acc.depth == 2) & (arch_acc.width == 16)].train
    assert not train_d.min() > train_2.max()
for w in (16, 32, 64):  # 8 units are below every wider network, on every seed
    assert group_acc(depth=6, width=8).max() < group_acc(depth=6, width=w).min()
for w in (32, 64):  # more width never beats 16 units
    assert not group_acc(depth=6, width=w).min() > group_acc(depth=6, width=16).max()

# %% [markdown]
# The decision boundaries of one and of two hidden layers (seed `SEED`):


# %%
def predictor(model):
    """numpy (n, 2) -> predicted class ids, for plots.decision_boundary."""

    @torch.no_grad()
    def predict(P):
        model.eval()
        return model(torch.as_tensor(P, dtype=torch.float32)).argmax(1).numpy()

    return predict


fig, axes = plt.subplots(1, 2, figsize=(plots.COLUMN_WIDTH, 3.9))
for ax, depth in zip(axes, [1, 2]):
    m, _ = get_run(depth=depth, width=16)
    plots.decision_boundary(
        predictor(m),
        X_val.numpy(),
        y_val.numpy(),
        ax=ax,
        resolution=300,
        margin=0.1,
        title=f"depth {depth}: val acc {fmt_acc(evaluate(m, X_val, y_val)[1])}",
    )
    ax.set_aspect("equal")
fig.suptitle(f"Decision boundaries on the validation set, width 16, seed {SEED}")
plt.show()

# %% [markdown]
# Depth matters most between one hidden layer and two: two layers beat one on every seed
# (88.9 ± 0.5% against 68.2 ± 7.0% validation accuracy). One layer of 16 ReLUs cuts the plane
# into at most 137 convex pieces ({ref}`sec-ch06-linear-regions`), and its boundaries (left)
# are a few straight segments that cannot follow the arms; two layers already trace the spirals
# (right), and their errors are at the centre. More depth does not help here: neither 6 nor 10
# layers beat 2 by the range rule (88.9 ± 1.2% and 87.0 ± 1.6%), and their training accuracies
# are no higher either, so it is not overfitting that holds them back. With PyTorch's default
# initialisation the signal shrinks at every layer ({eq}`eq-ch6-shrink`);
# {ref}`sec-ch06-vanishing` shows where this leads at depth 60. In width, 8 units per layer are
# too few: below every wider network on every seed (54.6 ± 33.5%). Beyond 16 units more width
# does not help: neither 32 nor 64 units beat 16 by the range rule (88.9 ± 1.2% at 16,
# 89.0 ± 0.5% at 32, 89.3 ± 0.9% at 64). At depth 6, 16 units per layer are already enough for
# this problem, and the 21,317 parameters of width 64 buy nothing measurable over the 1,493 of
# width 16.
#
# (sec-ch06-linear-regions)=
# ## Linear regions
#
# A ReLU network is piecewise linear: fix which units are on and which are off, and every layer
# is an affine map, so the network is affine on the set of inputs that share that *activation
# pattern*. Each such set is convex (it is cut out by one linear inequality per unit, given the
# pattern of the layers before it): a {term}`linear region <Linear region>`. For one hidden
# layer of $n$ units on a $D$-dimensional input, the boundaries are the $n$ hyperplanes
# $(W_1\mathbf{x} + \mathbf{b}_1)_j = 0$, and $n$ hyperplanes in general position divide
# $\mathbb{R}^D$ into at most
#
# $$
# r(n, D) = \sum_{k=0}^{D} \binom{n}{k}
# $$ (eq-ch6-regions)
#
# regions {cite}`ch06-zaslavsky1975facing`. For $n = 16$ lines in the plane that is
# $1 + 16 + 120 = 137$. A deeper network can fold the input space and have many more regions, up
# to exponentially many in the depth {cite}`ch06-montufar2014number`, though at initialisation
# the count grows only with the number of units {cite}`ch06-hanin2019complexity`.


# %%
def region_bound(n_units, in_dim):
    """Regions of n hyperplanes in general position in R^D: sum_{k=0}^{D} C(n, k)."""
    return sum(math.comb(n_units, k) for k in range(in_dim + 1))


bound_16 = region_bound(16, 2)
print(f"one hidden layer of 16 ReLUs on 2-D input: at most {bound_16} linear regions")
assert bound_16 == 1 + 16 + 120 == 137

# %% [markdown]
# To count the regions of a trained network we evaluate its activation pattern on every point
# of a $401\times401$ grid over the bounding box of the training data and count the distinct
# patterns. That is a **lower bound** on the number of regions inside the box: a region that
# contains no grid point is missed. For the one-hidden-layer network the exact count inside the
# box can also be computed: for lines in general position, a convex box is divided into
# $1 + c + q$ pieces, where $c$ is the number of lines that cross the box and $q$ the number of
# their intersection points inside it (each line adds one piece, plus one per line it crosses
# inside the box).

# %%
lo, hi = X_train.min(0).values.numpy(), X_train.max(0).values.numpy()  # the data's box


@torch.no_grad()
def activation_regions(model, grid=GRID):
    """Label each point of a (grid+1) x (grid+1) grid over the box by its ReLU pattern.

    Returns (number of distinct patterns, labels (grid+1, grid+1), the grid axes)."""
    model.eval()
    gx, gy = np.linspace(lo[0], hi[0], grid + 1), np.linspace(lo[1], hi[1], grid + 1)
    P = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2).astype(np.float32)
    _, hidden = model(torch.from_numpy(P), return_hidden=True)
    on = torch.cat([a > 0 for a in hidden], dim=1).numpy()
    bits = np.ascontiguousarray(np.packbits(on, axis=1))  # one row per point
    rows = bits.view(np.dtype((np.void, bits.shape[1]))).ravel()  # row -> one value
    _, labels = np.unique(rows, return_inverse=True)
    return int(labels.max()) + 1, labels.reshape(grid + 1, grid + 1), (gx, gy)


# %% tags=["nbval-measured"] tolerance={"abs": 72.0, "rel": 1.5}
def exact_regions_in_box(linear):
    """Exact number of pieces into which the lines of a 2-input Linear cut the box."""
    W = linear.weight.detach().double().numpy()
    b = linear.bias.detach().double().numpy()
    corners = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]])
    values = corners @ W.T + b  # a line crosses the box iff it changes sign at corners
    crossing = np.flatnonzero((values.min(0) < 0) & (values.max(0) > 0))
    inside = 0
    for i, j in combinations(crossing, 2):
        point = np.linalg.solve(W[[i, j]], -b[[i, j]])
        inside += bool(np.all(point > lo) and np.all(point < hi))
    return 1 + len(crossing) + inside, len(crossing), inside


model_1 = get_run(depth=1, width=16)[0]
exact, n_lines, n_points = exact_regions_in_box(model_1.blocks[0][0])
grid_1 = {g: activation_regions(model_1, g)[0] for g in [GRID, 2 * GRID]}
print(
    f"depth 1, width 16: {n_lines} of 16 lines cross the box; of their "
    f"{math.comb(n_lines, 2)} intersections {n_points} lie inside it"
)
print(f"exactly 1 + {n_lines} + {n_points} = {exact} regions in the box")
print(
    "found on the grid: "
    + ", ".join(f"{g + 1}x{g + 1}: {c}" for g, c in grid_1.items())
)
assert max(grid_1.values()) <= exact <= bound_16

# %% tags=["nbval-measured"] tolerance={"abs": 9800.0, "rel": 2.1}
regions_df = pd.DataFrame(
    [
        dict(
            depth=d,
            width=w,
            hidden_units=d * w,
            at_init=activation_regions(build(d, w))[0],
            trained=activation_regions(get_run(depth=d, width=w)[0])[0],
        )
        for d, w in arch
    ]
).set_index(["depth", "width"])
assert regions_df.loc[(1, 16)].max() <= bound_16
assert (regions_df.trained > regions_df.at_init).all()
assert regions_df.at_init[(6, 16)] == regions_df.at_init[(10, 16)]
first_six = zip(build(6, 16).blocks.parameters(), build(10, 16).blocks[:6].parameters())
assert all(torch.equal(p, q) for p, q in first_six)  # the same first six layers
shallow, deeper = [(1, 16), (2, 16)], [(6, 16), (10, 16)]
assert regions_df.trained[shallow].max() < 1000 < regions_df.trained[deeper].min()
assert regions_df.trained[6].loc[WIDTHS].is_monotonic_increasing
regions_df.rename(
    columns={
        "at_init": f"at init ({GRID + 1}² grid)",
        "trained": f"trained ({GRID + 1}² grid)",
    }
).rename_axis(columns="regions found")

# %% tags=["nbval-measured"] tolerance={"abs": 6400.0, "rel": 1.4}
res_counts = {
    g: activation_regions(default[SEED][0], g)[0]
    for g in [GRID // 4, GRID // 2, GRID, 2 * GRID]
}
print("default model, regions found against grid size:")
print(", ".join(f"{g + 1}x{g + 1}: {c}" for g, c in res_counts.items()))
wide_64 = regions_df.trained[(6, 64)]
print(
    f"width 64: {wide_64:,} regions found on {(GRID + 1) ** 2:,} grid points, "
    f"{(GRID + 1) ** 2 / wide_64:.1f} points per region"
)
_, labels, (gx, gy) = activation_regions(default[SEED][0])
radius = np.hypot(*np.meshgrid(gx, gy))
areas = {"within radius 0.5": radius < 0.5, "beyond radius 1": radius > 1}
density = {
    name: 1000 * len(np.unique(labels[a])) / a.sum() for name, a in areas.items()
}
print("default model, regions per 1,000 grid points:")
print(", ".join(f"{name} {d:.1f}" for name, d in density.items()))
assert list(res_counts.values()) == sorted(res_counts.values())  # nested grids
assert density["within radius 0.5"] > 1.5 * density["beyond radius 1"]

# %%
fig, axes = plt.subplots(1, 2, figsize=(plots.COLUMN_WIDTH, 4.2))
rng_colors = np.random.default_rng(SEED)
for ax, (depth, width) in zip(axes, [(1, 16), (6, 16)]):
    m, _ = get_run(depth=depth, width=width)
    count, labels, (gx, gy) = activation_regions(m)
    shuffled = rng_colors.permutation(count)[labels]  # neighbours get unrelated colours
    ax.pcolormesh(gx, gy, shuffled, cmap="tab20", shading="auto", rasterized=True)
    P = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    classes = predictor(m)(P).reshape(labels.shape)
    levels = np.arange(NUM_CLASSES) + 0.5
    ax.contour(gx, gy, classes, levels=levels, colors="k", linewidths=0.8)
    ax.set(
        title=f"depth {depth}, width {width}:\n{count} regions found",
        xlabel="$x_1$",
        ylabel="$x_2$",
        aspect="equal",
    )
    ax.grid(False)
fig.suptitle("Linear regions (colours) and class boundaries (black), seed " + str(SEED))
plt.show()

# %% [markdown]
# The trained one-layer network has exactly 48 regions in the box, well below the 137 of
# {eq}`eq-ch6-regions`: only 11 of its 16 lines cross the box, and only 36 of the 55
# intersections of those lines fall inside it. The grid finds 46 of them, at both resolutions:
# a region can be too small to contain a grid point. Deeper networks have far more regions: on
# the $401^2$ grid 2,276 are found for the default model, 5,294 at depth 10 and 23,543 at width
# 64. Those are lower bounds, and for the large networks they are loose: the count of the
# default model still grows with the grid (1,411 on $101^2$ points, 2,492 on $801^2$), and
# 23,543 regions on 160,801 grid points leave 6.8 points per region. Three more observations
# from the table, which hold for other seeds too: training multiplies the count (for the
# default model from 194 at initialisation); after training depth 1 and 2 have hundreds of
# regions, depth 6 and 10 thousands; and at initialisation depth 10 has exactly as many
# regions as depth 6 (194). Its first six layers have the same initial weights as the depth-6
# network, and with the signal
# shrunk by {eq}`eq-ch6-shrink` the units of the four layers beyond them do not switch inside
# the box. The picture shows where training put its pieces: the regions of the default model
# are small in the middle of the data, where the class boundaries (black) wind around the
# centre (37.3 regions per 1,000 grid points within radius 0.5), and large in the corners,
# where the output does not need to change (5.3 beyond radius 1).
#
# (sec-ch06-vanishing)=
# ## Vanishing gradients
#
# Backpropagation multiplies the gradient by one Jacobian per layer. For a plain ReLU layer
# $\mathbf{h}_l = \mathrm{ReLU}(W_l \mathbf{h}_{l-1} + \mathbf{b}_l)$ and a residual one
# $\mathbf{h}_l = \mathbf{h}_{l-1} + \alpha\,\mathrm{ReLU}(W_l \mathbf{h}_{l-1} + \mathbf{b}_l)$,
#
# $$
# \begin{aligned}
# \text{plain:}\quad
# \frac{\partial \mathbf{h}_l}{\partial \mathbf{h}_{l-1}} &= M_l W_l, \\
# \text{residual:}\quad
# \frac{\partial \mathbf{h}_l}{\partial \mathbf{h}_{l-1}} &= I + \alpha\, M_l W_l,
# \end{aligned}
# $$ (eq-ch6-jacobians)
#
# with $M_l$ the diagonal matrix of $\mathrm{ReLU}'$ (1 for active units, 0 otherwise). Under
# PyTorch's default initialisation the plain Jacobian shrinks a gradient's squared norm by the
# same factor $1/6$ as {eq}`eq-ch6-shrink` on average: $\sqrt{1/6}\approx 0.408$ per layer, so
# after 60 layers about $10^{-23}$: a {term}`vanishing gradient <Vanishing gradient>`
# {cite}`ch06-glorot2010understanding,ch06-he2015delving`. A
# {term}`residual connection <Residual connection>` {cite}`ch06-he2016resnet` changes the
# product: each factor is the identity plus a correction, so the gradient reaching the first
# layer no longer has to pass through 60 shrinking matrices. That does not make every factor
# harmless; the corrections can still shrink or grow the gradient, and how much they do is what
# the measurement below shows. The residual branches also add up in the forward pass: with
# $\alpha = 1$ sixty non-negative ReLU outputs pile onto $\mathbf{h}$. So we also try
# $\alpha = 1/\sqrt{60}$, which keeps the total variance the 60 branches add of the order of one
# branch's; that the residual modules of a deep network must be scaled for it to start training
# is one of the results of {cite}`ch06-hanin2018start`.
#
# Three networks with 60 hidden layers of 16 units and *the same initial weights*: plain,
# residual, and residual with scaled branches. We measure $\lVert\partial \mathcal{L}/\partial
# W_l\rVert$ for every layer on the whole training set, in float64 (the cell also shows what
# float32 makes of the smallest one).


# %%
def layer_grad_norms(model, X=X_train, y=y_train, dtype=torch.float64):
    """||dL/dW|| of every nn.Linear (hidden layers, then the head) for the loss on
    (X, y), in eval mode, computed on a copy of the model in ``dtype``."""
    model = copy.deepcopy(model).to(dtype).eval()
    loss_fn(model(X.to(dtype)), y).backward()
    linears = [block[0] for block in model.blocks] + [model.head]
    return np.array([lin.weight.grad.norm().item() for lin in linears])


deep = {
    "plain": dict(),
    "residual": dict(residual=True),
    "residual, scaled": dict(residual=True, residual_scale=1 / math.sqrt(DEEP_DEPTH)),
}
deep_models = {name: build(DEEP_DEPTH, 16, **kw) for name, kw in deep.items()}
for m in deep_models.values():  # the same initial weights: only the skip paths differ
    plain_params = deep_models["plain"].parameters()
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), plain_params))
grad_norms = {name: layer_grad_norms(m) for name, m in deep_models.items()}
g32 = layer_grad_norms(deep_models["plain"], dtype=torch.float32)
print(
    f"plain network, first layer: {grad_norms['plain'][0]:.2g} in float64, "
    f"{g32[0]:.2g} in float32"
)
for name, m in deep_models.items():
    print(
        f"{name:17s} loss at initialisation {evaluate(m, X_val, y_val)[0]:.3g}, "
        f"logit spread {logit_spread(m):.2g}"
    )
show = [1, 2, 5, 10, 20, 30, 40, 50, 60, 61]
pd.DataFrame(
    {name: [f"{g[i - 1]:.2g}" for i in show] for name, g in grad_norms.items()},
    index=pd.Index(show, name="layer"),
).rename_axis(columns="||∂L/∂W||")

# %% [markdown]
# All 61 layers' gradient norms, drawn by the next cell on a logarithmic scale:

# %% tags=["hide-input"]
layers = np.arange(1, DEEP_DEPTH + 2)
fig, ax = plt.subplots(figsize=(plots.COLUMN_WIDTH, 4))
for (name, g), marker in zip(grad_norms.items(), "os^"):
    ax.semilogy(layers, g, marker + "-", ms=3, label=name)
ax.set(
    title=f"Gradient norm per layer at initialisation, {DEEP_DEPTH} layers of 16",
    xlabel="layer (1 = next to the input, 61 = output layer)",
    ylabel="||∂L/∂W||  (log scale)",
)
ax.legend()
plt.show()


# %%
def shrink_factor(g):
    """Per-layer factor of a geometric fit to the gradient norms of layers 10 to 55."""
    inner = (layers >= 10) & (layers <= DEEP_DEPTH - 5)
    return math.exp(-np.polyfit(layers[inner], np.log(g[inner]), 1)[0])


factors = [shrink_factor(grad_norms["plain"])] + [
    shrink_factor(layer_grad_norms(build(DEEP_DEPTH, 16, seed=s))) for s in SEEDS[1:]
]
g_s = grad_norms["residual, scaled"][:DEEP_DEPTH]
hidden_ratio = g_s.max() / g_s.min()
print(
    "plain: factor per layer towards the input "
    + ", ".join(f"{f:.3f}" for f in factors)
    + f" (seeds {', '.join(map(str, SEEDS))}); sqrt(1/6) = {math.sqrt(1 / 6):.3f}"
)
print(f"first layer, scaled residual / plain: {g_s[0] / grad_norms['plain'][0]:.1e}")
print(
    f"scaled residual, hidden layers: {g_s.min():.2g} to {g_s.max():.2g}, "
    f"largest / smallest {hidden_ratio:.1f}"
)
assert all(0.3 < f < 0.45 for f in factors) and np.mean(factors) < math.sqrt(1 / 6)
assert g_s[0] / grad_norms["plain"][0] > 1e20 and hidden_ratio < 10
assert grad_norms["residual"].min() > 1e3  # unscaled: nothing vanishes, all is large
assert evaluate(deep_models["residual"], X_val, y_val)[0] > 10 * math.log(NUM_CLASSES)

# %% [markdown]
# In the plain network the gradient norm falls by a factor 0.402 per layer towards the input
# for this seed (0.345 to 0.402 over the seeds), a little faster than the predicted
# $\sqrt{1/6} = 0.408$, as for the forward signal: dead units pass nothing back. At the first
# layer it is $1.9\times10^{-26}$; in float32 it is exactly 0, so the first layers of this
# network cannot learn at all. The residual networks do not vanish. With $\alpha = 1$ their
# gradient norms are large instead, of order $10^4$ to $10^5$, because the forward signal has
# exploded (its loss at initialisation is far above $\ln K$). With $\alpha = 1/\sqrt{60}$ they
# lie between 0.033 and 0.18 in the hidden layers, a factor 5.3 between the largest and the
# smallest. So the residual path does not keep the gradient's size fixed (it still changes
# from layer to layer), but it replaces the plain network's geometric decay by a variation
# within a small factor, and the first layer gets $4.3\times10^{24}$ times the plain network's
# gradient. Does it matter for training? All three networks, 12 epochs at `lr = 0.01`, with the
# seeds `SEEDS`:

# %% tags=["nbval-measured"] tolerance={"abs": 7.4, "rel": 11}
deep_runs = []
for name, kw in tqdm(deep.items(), desc=f"{DEEP_DEPTH}-layer networks"):
    for seed in SEEDS:
        h = train(
            build(DEEP_DEPTH, 16, seed=seed, **kw),
            lr=LR,
            batch_size=BATCH_SIZE,
            num_epochs=DEEP_EPOCHS,
            seed=seed,
        )
        last = h.iloc[-1].drop("dead_per_layer")
        deep_runs.append(dict(network=name, seed=seed, history=h, **last))
deep_runs = pd.DataFrame(deep_runs)
fig, ax = plt.subplots(figsize=(plots.COLUMN_WIDTH, 4))
for i, name in enumerate(deep):
    for seed, h in zip(SEEDS, deep_runs[deep_runs.network == name].history):
        label = name if seed == SEED else None
        ax.plot(h.epoch, h.val_loss, color=f"C{i}", lw=1, label=label)
ax.axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
ax.set(
    title=f"{DEEP_DEPTH} hidden layers of 16, lr = {LR:g}, one line per seed",
    xlabel="epoch",
    ylabel="validation loss (nats)",
    yscale="log",
)
ax.legend()
plt.show()
mean_sd_table(
    deep_runs,
    "network",
    {"val loss": ("val_loss", 1, ".3f"), "val acc (%)": ("val_acc", 100, ".1f")},
).rename_axis(f"after {DEEP_EPOCHS} epochs")

# %%
by_net = {name: deep_runs[deep_runs.network == name] for name in deep}
assert (by_net["plain"].val_loss > math.log(NUM_CLASSES) - 0.02).all()
for acc in by_net["plain"].val_acc:  # one class everywhere
    assert np.isclose(freq_val, acc, atol=1e-6).any()
assert (by_net["residual, scaled"].val_acc > 0.8).all()
assert by_net["residual, scaled"].val_acc.min() > by_net["residual"].val_acc.max()
assert by_net["residual"].val_acc.min() < 0.5

# %% [markdown]
# The plain 60-layer network does not leave $\ln K$ on any seed (19.0 ± 0.4%: one class
# everywhere). The unscaled residual network starts far above $\ln K$, spends its epochs
# bringing the exploded output down, and after 12 epochs is barely better than chance
# (30.7 ± 5.9%). The scaled residual network trains: 86.3 ± 1.5% after 12 epochs, above the
# unscaled one on every seed. Skip connections remove the vanishing gradient; keeping the
# forward signal at a sensible size is a separate job, done here by scaling the branches and in
# practice also by normalisation layers and initialisation.
#
# ## Summary
#
# - A flat loss curve at $\ln K$ has more than one cause, and measurements tell them apart. With
#   `lr` = 1 or 0.2 the network **died** on every seed: a whole layer of dead ReLUs, a constant
#   output, a loss no better than the best constant prediction. With `lr = 1e-5` it **did not
#   move**: parameters 1.4% to 2.6% away from their initial values, the loss near $\ln K$
#   because PyTorch's default initialisation shrinks the signal by about $\sqrt 6$ per layer.
# - In between, how long a run sits on the plateau depends on its initial weights: at
#   `lr = 0.001` the validation loss after 40 epochs has a standard deviation of 0.320 over the
#   seeds. `lr = 0.01` leaves the plateau first on every seed (after 2.0 epochs on average).
# - The default model (6 × 16, Adam, `lr = 0.01`, batch 128) reaches 88.9% to 89.7% accuracy
#   on the three splits after 100 epochs, without overfitting; its errors sit at the centre,
#   where the classes overlap.
# - Batch norm restores a unit-size signal in every layer, removes all but at most one dead unit
#   for moderate learning rates, widens the range of learning rates that train and makes the
#   result much less dependent on the seed; it does not rescue `lr = 1`.
# - Against epochs small batches progress faster, against steps large ones do. No batch size
#   opened a gap between training and test accuracy here (-1.2 to 2.5 points): the test accuracy
#   follows how far training got. Whether small batches generalize better at equal training
#   loss these runs cannot say.
# - Going from one hidden layer to two gives the big jump (68.2% to 88.9%); more depth does not
#   help at this initialisation and budget; 8 units per layer are too few, and more than 16 do
#   not help.
# - A one-layer ReLU network of 16 units has at most 137 linear regions in the plane (48 in the
#   box for ours); deeper trained networks have thousands, concentrated where the boundaries
#   bend.
# - In a plain 60-layer network the gradient shrinks by about 0.4 per layer (to exactly 0 in
#   float32 at the first layer); residual connections stop the decay, and scaling the residual
#   branches keeps the forward signal from exploding, so the network trains.
#
# ## Exercises
#
# ```{exercise} Regions of one hidden layer
# :label: ex-ch6-bound
#
# Show that $r(n, D) = \sum_{k=0}^{D}\binom{n}{k}$ of {eq}`eq-ch6-regions` equals $2^n$ when
# $n \le D$. What does that say about a one-hidden-layer network whose width is at most its
# input dimension? How many regions can 16 units make on a 16-dimensional input, and on a
# 2-dimensional one?
# ```
#
# ```{solution} ex-ch6-bound
# :class: dropdown
#
# For $n \le D$ the terms with $k > n$ are 0, so $r(n, D) = \sum_{k=0}^{n}\binom{n}{k} = 2^n$ by
# the binomial theorem: every one of the $2^n$ on/off patterns occurs (for hyperplanes in
# general position, e.g. linearly independent normals). On a 16-dimensional input, 16 units can
# make $2^{16} = 65{,}536$ regions; on a 2-dimensional input only $r(16, 2) = 137$, because in
# the plane most patterns are geometrically impossible. The cell after the exercises computes
# both numbers with `region_bound`.
# ```
#
# ```{exercise} Dead units at initialisation
# :label: ex-ch6-dead-init
#
# The table in {ref}`sec-ch06-learning-rate` shows 37.5% (6 of 16) dead units in the first
# hidden layer of seed `SEED`'s model *before training*. With PyTorch's default initialisation
# the first layer ($n_{\text{in}} = 2$ inputs) draws each weight and bias from
# $U(-1/\sqrt2, 1/\sqrt2)$. Estimate by simulation the probability that such a unit is dead on
# our training set. Is 6 of 16 surprising?
# ```
#
# ```{solution} ex-ch6-dead-init
# :class: dropdown
#
# Draw many units (two weights and a bias each) and check whether the unit's pre-activation is
# $\le 0$ at all 3,000 training points. The cell after the exercises does it for 20,000 units:
# the probability is about 12% (roughly the chance that the bias is below minus the norm of the
# weights, since the data fill a disc of radius about 1). With 16 independent units the number
# of dead ones is binomial, and 6 or more has a probability of about 1%: this seed drew an
# unlucky first layer. That is one reason to look at several seeds before reading much into a
# single run.
# ```
#
# ```{exercise} Batch norm on a batch of one
# :label: ex-ch6-bn-batch1
#
# Why does the batch-size sweep run without batch norm? Try `nn.BatchNorm1d(16)` in training
# mode on a batch of one example and explain the error from {eq}`eq-ch6-bn`. Would eval mode
# work?
# ```
#
# ```{solution} ex-ch6-bn-batch1
# :class: dropdown
#
# With $B = 1$, $\bar u = u$ and $\operatorname{sd}_B^2 = 0$, so $\hat u = \delta$ for every
# input: the layer would erase the input, and the running variance would be updated with an
# undefined unbiased variance ($0/0$). PyTorch refuses: `ValueError: Expected more than 1 value
# per channel when training` (the cell after the exercises shows it). In eval mode the layer
# uses its running statistics, an affine map that works for any batch size, including one
# example; this is also how a trained batch-norm model predicts a single input.
# ```
#
# ```{exercise} He initialisation and the vanishing gradient
# :label: ex-ch6-he
#
# Repeat the gradient measurement of the 60-layer plain network with He initialisation
# {cite}`ch06-he2015delving` (`nn.init.kaiming_normal_(weight, nonlinearity="relu")` and zero
# biases in every `nn.Linear`). By how much does the gradient norm change per layer now?
# Predict the answer from the argument of {eq}`eq-ch6-shrink` first.
# ```
#
# ```{solution} ex-ch6-he
# :class: dropdown
#
# He initialisation has weight variance $2/n_{\text{in}}$, so the factor of {eq}`eq-ch6-shrink`
# becomes $n_{\text{in}}\cdot\frac{2}{n_{\text{in}}}\cdot\frac12 = 1$: on average the gradient
# keeps its size from layer to layer. The cell after the exercises measures it: the first and
# the last hidden layer's gradient norms differ by about a factor of 2, against $10^{24}$ with
# the default initialisation. Whether the network then also *trains* in 12 epochs is worth
# trying yourself: for fully connected ReLU networks the right variance avoids one failure mode
# at the start of training but not a second one, which grows with the sum of the reciprocal
# layer widths, here $60/16$ {cite}`ch06-hanin2018start`.
# ```

# %%
# The computations of the solutions above.
assert region_bound(3, 5) == 2**3
assert region_bound(16, 16) == 2**16 == 65_536 and region_bound(16, 2) == 137

rng = np.random.default_rng(SEED)
a = 1 / math.sqrt(2)
w, b = rng.uniform(-a, a, size=(20_000, 2)), rng.uniform(-a, a, size=20_000)
points = X_train.numpy().astype(np.float64)
hull = points[ConvexHull(points).vertices]  # a linear function peaks at a hull vertex
p_dead = float(((hull @ w.T + b) <= 0).all(axis=0).mean())
k_dead = round(16 * dead0[0])  # dead units in this seed's first layer
p_k_or_more = sum(
    math.comb(16, k) * p_dead**k * (1 - p_dead) ** (16 - k) for k in range(k_dead, 17)
)
print(
    f"P(first-layer unit dead at initialisation) ≈ {p_dead:.2f}; "
    f"P({k_dead} or more of 16 dead) ≈ {p_k_or_more:.2f}"
)
assert 0.09 < p_dead < 0.15

try:
    nn.BatchNorm1d(16).train()(torch.randn(1, 16))
except ValueError as err:
    print("BatchNorm1d, training, 1 example:", str(err).split(",")[0])
assert nn.BatchNorm1d(16).eval()(torch.randn(1, 16)).shape == (1, 16)

he = build(DEEP_DEPTH, 16)
for module in he.modules():
    if isinstance(module, nn.Linear):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.zeros_(module.bias)
g_he = layer_grad_norms(he)
ratio_he = g_he[0] / g_he[DEEP_DEPTH - 1]
print(f"He initialisation: first / last hidden layer gradient norm {ratio_he:.2g}")
assert 0.1 < ratio_he < 10

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch06-
# ```
