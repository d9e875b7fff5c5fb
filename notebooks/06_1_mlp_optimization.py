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
# # Chapter 6.1: Training an MLP: learning rate, batch normalisation and batch size
#
# A multilayer perceptron trained with Adam has a few settings that decide whether it learns at
# all: the learning rate, batch normalisation and the batch size. This lecture turns each of them
# on one small problem, five spiral arms in the plane, and measures what happens. When a loss
# curve stays flat we find out why by measuring the network (its dead ReLU units, its loss at
# initialisation, how far its parameters moved). A 2-D problem trains in seconds, so every
# setting runs with several seeds. [Chapter 6.2](06_2_mlp_depth_width.ipynb) takes the same
# problem to depth, width, linear regions and vanishing gradients.
#
# **The source exercise.** Chapter 6 follows the MLP part of Exercise 4 of the course *Machine
# Learning Methods* (section 6.1, "Optimization of an MLP"): a training pipeline written from
# scratch in PyTorch for an MLP with 6 hidden layers (7 `nn.Linear`), ReLU, and batch norm
# before the activation; learning rates 1, 0.01, 0.001 and 0.00001; batch norm against none;
# batch sizes 1, 16, 128 and 1,024 trained for 1, 10, 50 and 50 epochs. Two things are
# replaced: the exercise classifies European cities into countries by their coordinates, here
# five generated spiral arms, which every reader has without a download; and every setting runs
# with three seeds instead of one, so that no conclusion rests on one draw of the initial
# weights. {ref}`sec-ch06-1-source` says which of the exercise's expected answers held.
#
# **Learning objectives.** After this lecture you can
#
# - write the training loop of an MLP in plain PyTorch and compare trained settings seed by seed;
# - tell apart the two failures behind a loss curve stuck at $\ln K$, a network whose ReLU units
#   died and one that barely moved, by measuring dead units, the spread of the logits and how far
#   the parameters moved;
# - explain why PyTorch's default initialisation shrinks the signal of a deep ReLU network, and
#   how batch normalisation restores it;
# - compare batch sizes per epoch and per optimizer step, and say what such a comparison shows
#   about generalization.
#
# **Prerequisites:** backpropagation through an MLP ([chapter 5.1](05_1_backprop_fashion_mnist.ipynb)),
# Adam ([chapter 3](03_optimizers.ipynb)) and minibatches and epochs in PyTorch
# ([chapter 4.1](04_1_minibatches.ipynb)).
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
    package = f"course-utils[ch06] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
SEED = 0
N_SEEDS = 3  # every trained setting runs with seeds SEED, SEED + 1, ...
NUM_CLASSES = 5  # spiral arms, one per class
N_PER_CLASS = 500  # 2,500 points: 1,500 train, 500 validation, 500 test
NOISE = 0.05  # standard deviation of the Gaussian noise added to each point
DEPTH, WIDTH = 6, 16  # hidden layers and units per hidden layer
LR = 1e-2  # Adam's learning rate for the default model
BATCH_SIZE = 128
NUM_EPOCHS = 30  # the learning-rate and batch-norm sweeps
LRS = [1, 0.2, 0.01, 0.001, 5e-4, 1e-5]
BN_LRS = [1, 0.2, 0.01, 0.001, 5e-4]  # the rates repeated with batch norm
BATCH_SIZES = [1, 16, 128, 1024]
BATCH_EPOCHS = [1, 10, 50, 50]  # epochs per batch size, as in the source exercise
BATCH_SIZE_LR = 1e-3  # the fixed learning rate of the batch-size sweep
# With a GPU or more time, raise N_SEEDS, N_PER_CLASS, NUM_EPOCHS and BATCH_EPOCHS.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

import course_utils
from course_utils import batched, plots, stats, toy_data

SEEDS = [SEED + k for k in range(N_SEEDS)]
pd.set_option("display.width", 88)
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# (sec-ch06-data)=
# ## The data
#
# `toy_data.spirals` draws `N_PER_CLASS` points on each of `NUM_CLASSES` spiral arms. A point of
# class $k$ has a radius $\rho$ drawn uniformly from $[0.05, 1]$ and the angle
#
# $$
# \psi = \frac{2\pi k}{K} + 2\pi \rho ,
# $$ (eq-ch6-spiral)
#
# so each arm winds once around the origin; Gaussian noise of standard deviation `NOISE` is
# added to the point $\rho(\cos\psi, \sin\psi)$. Near the centre the arms are closer than the
# noise, so the classes overlap there and no model can be perfect. The rows come shuffled;
# `toy_data.split` makes the first 60% the training set, the next 20% the
# {term}`validation set <Validation set>` and the last 20% the {term}`test set <Test set>`.

# %%
X, y = toy_data.spirals(N_PER_CLASS, NUM_CLASSES, noise=NOISE, seed=SEED)
splits = toy_data.split(torch.from_numpy(X), torch.from_numpy(y), (0.6, 0.2, 0.2))
(X_train, y_train), (X_val, y_val), (X_test, y_test) = splits.values()
n_train = len(y_train)
counts = pd.DataFrame(
    {name: np.bincount(ys, minlength=NUM_CLASSES) for name, (_, ys) in splits.items()}
)
counts.index.name = "class"
counts.loc["total"] = counts.sum()
counts.T

# %% [markdown]
# The next cell draws the training and validation points, coloured by class.

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(plots.COLUMN_WIDTH, 3.6))
for ax, name in zip(axes, ["train", "validation"]):
    Xs, ys = splits[name]
    sc = ax.scatter(*Xs.T, c=ys, cmap=plt.get_cmap("tab10", NUM_CLASSES), s=4)
    sc.set_clim(-0.5, NUM_CLASSES - 0.5)
    ax.set(title=f"{name} set ({len(ys):,} points)", xlabel="$x_1$", ylabel="$x_2$")
    ax.set_aspect("equal")
fig.suptitle("Five spiral arms, one class each")
fig.colorbar(sc, ax=axes, ticks=range(NUM_CLASSES), label="class")
plt.show()

# %% [markdown]
# (sec-ch06-model)=
# ## The model
#
# The model has `DEPTH` = 6 hidden layers of `WIDTH` = 16 units, each an `nn.Linear` followed by
# a ReLU, and an output layer with one {term}`logit <Logits>` per class: 7 `nn.Linear` in all, as
# in the source exercise. With `batch_norm=True` an `nn.BatchNorm1d` sits between each hidden
# `nn.Linear` and its ReLU. The forward pass can also return every hidden layer's output, to
# count dead units. `build(seed)` draws PyTorch's default initialisation from the seed.


# %%
class MLP(nn.Module):
    """Hidden layers (Linear, [BatchNorm1d], ReLU) and a linear head."""

    def __init__(self, depth=DEPTH, width=WIDTH, batch_norm=False):
        super().__init__()
        self.blocks = nn.ModuleList()
        for i in range(depth):
            layers = [nn.Linear(2 if i == 0 else width, width)]
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            self.blocks.append(nn.Sequential(*layers, nn.ReLU()))
        self.head = nn.Linear(width, NUM_CLASSES)

    def forward(self, x, return_hidden=False):
        hidden = []
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        logits = self.head(x)
        return (logits, hidden) if return_hidden else logits


def build(seed, batch_norm=False):
    """A fresh default MLP: the same seed gives the same initial weights."""
    torch.manual_seed(seed)
    return MLP(batch_norm=batch_norm)


model = build(SEED)
print(model)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

# %% [markdown]
# (sec-ch06-init)=
# ## The network before training
#
# Two measurements on the untrained network explain the flat loss curves we will meet.
#
# **The loss at initialisation.** If the logits $z_k$ are the same for every class, the softmax
# gives every class probability $1/K$, and the {term}`cross-entropy <Cross-entropy>` of any
# example is
#
# $$
# \begin{aligned}
# \ell &= -\ln\frac{e^{z_y}}{\sum_{k=0}^{K-1} e^{z_k}} = \ln K \\
# &\text{when } z_0 = \dots = z_{K-1},
# \end{aligned}
# $$ (eq-ch6-lnk)
#
# here $\ln 5 = 1.609$. A network whose logits do not depend on the input makes a constant
# prediction, and the best constant prediction, the label frequencies, does only a little
# better ({ref}`ex-ch6-constant`). A loss curve sitting at $\ln K$ means the network outputs
# (almost) nothing that depends on the input.
#
# **Dead units.** A ReLU unit is {term}`dead <Dead unit>` on a data set when its pre-activation
# is negative for every example: it outputs 0 everywhere, and because $\mathrm{ReLU}'(u)=0$ for
# $u<0$ its incoming weights and bias get a zero gradient from every example. It can only come
# back if the layers before it change its inputs; a dead unit of the first layer stays dead,
# since its inputs are the data. We count, per layer, the units that output 0 on all 1,500
# training points.
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
# table measures it on the default model as seed `SEED` initialises it.

# %%
loss_fn = nn.CrossEntropyLoss()


@torch.no_grad()
def dead_units(net, X=X_train):
    """Per hidden layer, which units output 0 on every row of X (eval mode).

    A (depth, width) mask for one model, (S, depth, width) for a batched one."""
    net.eval()
    extra = dict(shared=True) if isinstance(net, batched.Stack) else {}
    _, hidden = net(X, return_hidden=True, **extra)
    return torch.stack([(a <= 0).all(dim=-2) for a in hidden], dim=-2)


with torch.no_grad():
    logits0, hidden0 = model.eval()(X_train, return_hidden=True)
sd0 = [a.std(0).mean().item() for a in hidden0 + [logits0]]
dead0 = dead_units(model).float().mean(1)
print(
    f"at initialisation: training loss {loss_fn(logits0, y_train).item():.4f}, "
    f"ln K = {math.log(NUM_CLASSES):.4f}"
)
print(
    "sd ratio of consecutive layers:",
    " ".join(f"{a / b:.1f}" for a, b in zip(sd0, sd0[1:])),
)
print(f"dead units: {dead0.mean().item():.1%} of the {DEPTH * WIDTH} hidden units")
pd.DataFrame(
    {
        "layer": [f"hidden {i + 1}" for i in range(DEPTH)] + ["logits"],
        "sd across inputs": [f"{s:.2g}" for s in sd0],
        "dead units": [f"{d:.1%}" for d in dead0.tolist()] + [""],
    }
).set_index("layer").T

# %% tags=["remove-input"]
for seed in SEEDS:  # every seed's initial network: an almost constant output
    m = build(seed).eval()
    with torch.no_grad():
        logits, hidden = m(X_train, return_hidden=True)
    assert logits.std(0).mean().item() < 1e-2
    assert abs(loss_fn(logits, y_train).item() - math.log(NUM_CLASSES)) < 0.05
    sds = [a.std(0).mean().item() for a in hidden]
    assert (sds[0] / sds[-1]) ** (1 / (DEPTH - 1)) > math.sqrt(6)
big = nn.Linear(1000, 1000)  # default initialisation: variance 1/(3 fan_in)
np.testing.assert_allclose(big.weight.var().item(), 1 / (3 * 1000), rtol=0.01)
print(
    f"Checked: seeds {SEEDS} all start with near-constant logits, a loss within 0.05 "
    "of ln K and a signal shrinking faster than sqrt 6 per layer."
)

# %% [markdown]
# The spread across inputs shrinks by a factor of 2.7 to 4.2 per layer over the first five
# layers, faster than the $\sqrt 6$ of {eq}`eq-ch6-shrink`, partly because dead units pass
# nothing on: 40.6% of the 96 hidden units are dead before any training, up to 75% in layer 5.
# In the last hidden layer the spread is below $10^{-3}$: the logits hardly depend on the
# input, and the loss, 1.6148, is close to $\ln K$.
#
# (sec-ch06-one-run)=
# ## One training run
#
# The loop below is the whole training procedure. Each {term}`epoch` shuffles the training set
# with a seeded `torch.Generator` and cuts the permutation into {term}`minibatches <Minibatch>`;
# each minibatch makes one {term}`step <Step>`: forward, loss, `zero_grad`, backward, Adam step.
# After each epoch the model is evaluated on the validation set in eval mode. A run is fixed by
# its seed: the seed draws the initial weights and the order of the minibatches.


# %%
@torch.no_grad()
def evaluate(model, X, y):
    """Mean cross-entropy and accuracy of the model on (X, y), in eval mode."""
    logits = model.eval()(X)
    return loss_fn(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train(model, *, lr, batch_size, num_epochs, seed):
    """Adam on the training set, batches shuffled by ``seed``; one row per epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(1, num_epochs + 1):
        model.train()
        for idx in torch.randperm(n_train, generator=generator).split(batch_size):
            loss = loss_fn(model(X_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss, val_acc = evaluate(model, X_val, y_val)
        rows.append(dict(epoch=epoch, val_loss=val_loss, val_acc=val_acc))
    return pd.DataFrame(rows)


# %% [markdown]
# One run of the default model (`lr = 0.01`, batch 128, 30 epochs, seed `SEED`):

# %% tags=["nbval-measured"] tolerance={"abs": 34.0, "rel": 1.8}
history = train(
    build(SEED), lr=LR, batch_size=BATCH_SIZE, num_epochs=NUM_EPOCHS, seed=SEED
)
history["val_acc"] *= 100
history.iloc[[0, 2, 4, 9, 14, 19, 24, 29]].set_index("epoch").round(3).rename(
    columns={"val_loss": "val loss", "val_acc": "val acc (%)"}
)

# %% [markdown]
# The validation loss starts at $\ln K$, stays there for the first few epochs, then falls to
# 0.340 after 30 epochs, with 87.8% of the validation points classified correctly. Is that what
# *this* seed does, or what the setting does? From here on every
# setting is trained with the seeds `SEEDS`, and the seeds of a setting train together:
# `course_utils.batched` stacks the three networks into one
# model whose parameters carry a leading seed axis, with the loop above, each seed keeping its
# own initial weights and minibatch order. Runs with the same seed share both, so two settings
# are compared seed by seed (the book's rule, {term}`resolved difference <Resolved difference>`):
# a difference is resolved when it has the same sign on every seed.


# %%
def train_grid(lrs, *, batch_norm=False, batch_size=BATCH_SIZE, num_epochs=NUM_EPOCHS):
    """Every (lr, seed) pair as one member of a batched model, trained together.

    Returns the trained batched model, the members' (lr, seed) pairs and one row per
    member and epoch, with the fraction of dead units after that epoch (plain MLPs)."""
    members = [(lr, seed) for lr in lrs for seed in SEEDS]
    nets = [build(seed, batch_norm) for _, seed in members]
    net = batched.stack(nets, mode="layers")
    loader = batched.Loader(
        X_train, y_train, batch_size, [s for _, s in members], order="randperm"
    )
    rates = [lr for lr, _ in members]
    opt = batched.optimizer(net, torch.optim.Adam, lr=rates, fused=True, rates="scaled")
    trainer = batched.Trainer(net, loader, opt, val=(X_val, y_val))
    rows = []
    for _ in tqdm(range(num_epochs), desc=f"{len(members)} runs"):
        histories = trainer.fit(1, progress=False)
        dead = [math.nan] * len(members)
        if not batch_norm:
            dead = dead_units(net).float().mean((1, 2)).tolist()
        for (lr, seed), h, d in zip(members, histories, dead):
            rows.append(dict(lr=lr, seed=seed, **h.iloc[0], dead=d))
    return net, members, pd.DataFrame(rows)


# %% [markdown]
# (sec-ch06-learning-rate)=
# ## Learning rate
#
# Six {term}`learning rates <Learning rate>` $\eta$ for Adam (`lr` in the code): the source's 1,
# 0.01, 0.001 and 0.00001, and 0.2 and 5e-4 in between; batch 128, 30 epochs, seeds `SEEDS`. The
# table gives the validation loss and accuracy after 30 epochs and the epochs a run spends on
# the plateau (before its validation loss first drops below $0.9 \ln K$): the mean and, in
# brackets, the lowest and highest value over the seeds.


# %% tags=["nbval-measured"] tolerance={"abs": 45.0, "rel": 0.88}
def plateau(val_loss):
    """Epochs before the validation loss first drops below 0.9 ln K (all if never)."""
    below = np.asarray(val_loss) < 0.9 * math.log(NUM_CLASSES)
    return int(below.argmax()) if below.any() else len(below)


def mean_range_table(results, by, columns):
    """One row per setting; each column "mean (lowest to highest)" over the seeds.

    ``columns`` maps a title to (column of ``results``, scale, format)."""
    groups = results.groupby(by, sort=False)
    return pd.DataFrame(
        {
            title: groups[col].apply(lambda v: stats.mean_range(scale * v, fmt))
            for title, (col, scale, fmt) in columns.items()
        }
    )


lr_net, lr_members, lr_history = train_grid(LRS)
lr_final = lr_history[lr_history.epoch == NUM_EPOCHS].copy()
lr_final["plateau"] = [
    plateau(h.val_loss) for _, h in lr_history.groupby(["lr", "seed"], sort=False)
]
lr_columns = {
    "val loss": ("val_loss", 1, ".3f"),
    "val acc (%)": ("val_acc", 100, ".1f"),
    "plateau (epochs)": ("plateau", 1, ".0f"),
}
mean_range_table(lr_final, "lr", lr_columns).rename(index="{:g}".format)

# %% tags=["remove-input"]
h0 = lr_history[(lr_history.lr == LR) & (lr_history.seed == SEED)]
np.testing.assert_allclose(h0.val_loss[:5], history.val_loss[:5], atol=1e-3)
print(
    f"Checked: in the batched runs, seed {SEED} at lr = {LR:g} gives the validation "
    "losses of the hand-written loop's run (to 1e-3, first 5 epochs)."
)

# %% [markdown]
# The next cell draws the curves of the sweep: the mean over the seeds, and shaded the range from
# the lowest to the highest seed, of the validation loss and of the fraction of dead units.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 1, figsize=(plots.COLUMN_WIDTH, 6.4), sharex=True)
for lr, h in lr_history.groupby("lr", sort=False):
    for ax, column, scale in [(axes[0], "val_loss", 1), (axes[1], "dead", 100)]:
        values = scale * h.pivot(index="seed", columns="epoch", values=column)
        epochs = values.columns
        line = ax.plot(epochs, values.mean(), label=f"lr = {lr:g}")[0]
        ax.fill_between(
            epochs, values.min(), values.max(), color=line.get_color(), alpha=0.2
        )
axes[0].axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
axes[0].set(
    title=f"Validation loss, Adam, batch {BATCH_SIZE} (mean, range over seeds)",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
axes[1].set(
    title="Dead ReLU units (0 on every training point)",
    xlabel="epoch",
    ylabel=f"dead units (% of {DEPTH * WIDTH})",
)
axes[0].legend(ncol=4)
plt.show()

# %% [markdown]
# Three of the six learning rates leave the loss flat at $\ln K$ on every seed. To tell *why*,
# the next table measures, after the 30 epochs, how far the parameters moved from their initial
# values ($\lVert\boldsymbol\theta-\boldsymbol\theta_0\rVert / \lVert\boldsymbol\theta_0\rVert$),
# the spread of the logits across the validation inputs (0: the output does not depend on the
# input) and the number of hidden layers in which every unit is dead (lowest to highest seed).


# %% tags=["nbval-measured"] tolerance={"abs": 6.0, "rel": 2.7}
def flat_parameters(net):
    """Every member's parameters as one row: (S, number of parameters)."""
    params = net.stacked_parameters()
    return torch.cat([p.detach().reshape(len(p), -1) for p in params], dim=1)


@torch.no_grad()
def diagnose(net, members, batch_norm=False):
    """One row per member: parameter change, logit spread, dead units per layer."""
    start = batched.stack(
        [build(seed, batch_norm) for _, seed in members], mode="layers"
    )
    theta, theta0 = flat_parameters(net), flat_parameters(start)
    spread = net.eval()(X_val, shared=True).std(dim=1).mean(dim=1)
    dead, dead_start = dead_units(net), dead_units(start)
    return pd.DataFrame(
        dict(
            lr=[lr for lr, _ in members],
            seed=[seed for _, seed in members],
            change=((theta - theta0).norm(dim=1) / theta0.norm(dim=1)).tolist(),
            spread=spread.tolist(),
            dead_layers=dead.all(dim=2).sum(dim=1).tolist(),
            dead=dead.sum((1, 2)).tolist(),
            came_back=(dead_start & ~dead).sum((1, 2)).tolist(),
            died=(~dead_start & dead).sum((1, 2)).tolist(),
            first_layer_ok=(dead[:, 0] >= dead_start[:, 0]).all(dim=1).tolist(),
        )
    )


def low_high(results, by, column, fmt):
    """ "lowest to highest" of a column over the seeds, per setting."""
    s = stats.summarize(results, by, column)
    return [f"{lo:{fmt}} to {hi:{fmt}}" for lo, hi in zip(s["min"], s["max"])]


diag = diagnose(lr_net, lr_members)
pd.DataFrame(
    {
        "||θ−θ₀|| / ||θ₀||": low_high(diag, "lr", "change", ".2g"),
        "logit spread": low_high(diag, "lr", "spread", ".2g"),
        "fully dead layers": low_high(diag, "lr", "dead_layers", "d"),
    },
    index=pd.Index([f"{lr:g}" for lr in LRS], name="lr"),
)

# %% tags=["remove-input"]
freq_val = np.bincount(y_val, minlength=NUM_CLASSES) / len(y_val)
best_constant_loss = float(-(freq_val * np.log(freq_val)).sum())  # label entropy
at = {lr: lr_final[lr_final.lr == lr] for lr in LRS}
for lr in (1, 0.2):  # a fully dead layer: constant output, no better than a constant
    d = diag[diag.lr == lr]
    assert (d.dead_layers >= 1).all() and (d.spread < 1e-6).all()
    assert (at[lr].val_loss >= best_constant_loss - 1e-4).all()
    for acc in at[lr].val_acc:  # the accuracy is one class's share
        assert np.isclose(freq_val, acc, atol=1e-6).any()
tiny = diag[diag.lr == 1e-5]
assert (tiny.change < 0.05).all() and (tiny.spread < 1e-3).all()
assert diag.first_layer_ok.all()
print(
    "Checked: lr = 1 and 0.2 end with a dead layer and a constant output on every "
    "seed, lr = 1e-5 moves < 5%; no first-layer unit revives."
)

# %% [markdown]
# The measurements separate two different failures behind the same flat curve:
#
# - **Too large (`lr` = 1 and 0.2): the network died.** On every seed at least one hidden layer
#   has lost every unit. The logit spread is exactly 0: the network predicts one class
#   everywhere (its accuracy is that class's share of the validation set), and its loss cannot go
#   below the best constant prediction's. The parameters moved a lot, but no gradient flows back
#   through a dead layer, so the run cannot recover.
# - **Too small (`lr` = 1e-5): the network barely moved.** The parameters changed by 0.65% to 1%
#   of their norm, the logit spread is still below $10^{-3}$ as at initialisation, and
#   the loss stays where {eq}`eq-ch6-lnk` put it. Nothing is broken; the steps are too short.
#
# In between, `lr` = 0.001 and 5e-4 first sit on the $\ln K$ plateau: 0.001 leaves it after 19
# to 23 epochs and is still far from converged after 30 (1.132 to 1.259), and 5e-4 has barely
# left it (a plateau of 30 epochs means the run never left it). How long a run sits there
# depends on its initial weights, and where it ends depends on when it left. So we compare the
# default `lr = 0.01` with them by the time spent on the plateau, and with the three failed
# rates by the loss at the end:


# %% tags=["nbval-measured"] tolerance={"abs": 14.0, "rel": 1.1}
def verdicts(results, a, others, value, words, fmt):
    """lr = a against each of the others, paired by seed: one line per comparison."""
    ra = results[results.lr == a].sort_values("seed")[value].to_numpy()
    for other in others:
        rb = results[results.lr == other].sort_values("seed")[value].to_numpy()
        v = stats.compare(ra, rb, paired=True, higher_is_better=False)
        diffs = stats.signed(v.differences, fmt)
        print(f"  lr = {a:g} against {other:g}: {v.word(*words)} (per seed: {diffs})")


print(f"validation loss after {NUM_EPOCHS} epochs:")
verdicts(lr_final, LR, [1, 0.2, 1e-5], "val_loss", ("lower", "higher"), ".3f")
print("epochs on the plateau:")
verdicts(lr_final, LR, [1e-3, 5e-4], "plateau", ("fewer", "more"), ".0f")

# %% [markdown]
# The dead units tell the same story from the inside. The next table counts the hidden units
# (of 96) dead after 30 epochs, those dead at initialisation that came back, and those alive at
# initialisation that died.

# %% tags=["nbval-measured"] tolerance={"abs": 26.0, "rel": null}
mean_range_table(
    diag,
    "lr",
    {
        "dead at the end": ("dead", 1, ".1f"),
        "came back": ("came_back", 1, ".1f"),
        "died": ("died", 1, ".1f"),
    },
).rename(index="{:g}".format)

# %% [markdown]
# At 1 and 0.2 about half of the units die and few come back. At 0.01, 0.001 and 5e-4 units dead
# at initialisation come back as the layers before them learn, while others die, more of them at
# 0.01; at 1e-5 almost nothing changes. No first-layer unit comes back in any of these runs.
# Dead units alone are not fatal: the runs at 0.01 end with more than a third of them dead. A
# layer in which *all* of them are dead is.
#
# (sec-ch06-batch-norm)=
# ## Batch normalisation
#
# {term}`Batch normalisation` {cite}`ch06-1-ioffe2015batchnorm` standardises each unit's
# pre-activation $u$ over the $B$ examples of the minibatch and then applies a learned scale
# $\gamma$ and shift $\delta$:
#
# $$
# \begin{aligned}
# \hat u &= \gamma\,\frac{u - \bar u}{\sqrt{\operatorname{sd}_B^2 + 10^{-5}}} + \delta, \\
# \bar u &= \frac{1}{B}\sum_{i=1}^{B} u_i, \\
# \operatorname{sd}_B^2 &= \frac{1}{B}\sum_{i=1}^{B} (u_i - \bar u)^2 ,
# \end{aligned}
# $$ (eq-ch6-bn)
#
# (the $10^{-5}$ guards against division by zero). During training it also keeps running averages
# of $\bar u$ and of the *unbiased* batch variance (momentum 0.1); eval mode uses those instead,
# so that a prediction does not depend on the rest of the batch. The next cell computes
# {eq}`eq-ch6-bn` by hand and compares it with `nn.BatchNorm1d` (`weight` is $\gamma$, `bias`
# is $\delta$).

# %%
torch.manual_seed(SEED)
bn = nn.BatchNorm1d(4)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
    bn.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
u = 3 * torch.randn(32, 4) + 1
out = bn.train()(u).detach()
mean, var = u.mean(0), u.var(0, unbiased=False)
by_hand = bn.weight * (u - mean) / torch.sqrt(var + bn.eps) + bn.bias
torch.testing.assert_close(out, by_hand.detach(), rtol=1e-5, atol=1e-5)
torch.testing.assert_close(bn.running_mean, 0.1 * mean)
torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * u.var(0, unbiased=True))
print("nn.BatchNorm1d = the formula; running statistics updated as stated")

# %% [markdown]
# Batch norm undoes the shrinking of {eq}`eq-ch6-shrink`: at initialisation every pre-activation
# is standardised, so each hidden layer's output should have the spread of $\mathrm{ReLU}(u)$ for
# a standardised $u$; for a standard normal $u$ that is $\sqrt{1/2 - 1/(2\pi)} = 0.584$. The
# table measures it on a fresh batch-norm model in training mode, with the whole training set as
# the batch.

# %%
with torch.no_grad():
    logits0_bn, hidden0_bn = build(SEED, batch_norm=True).train()(
        X_train, return_hidden=True
    )
relu_sd = math.sqrt(0.5 - 1 / (2 * math.pi))  # sd of ReLU(z) for z ~ N(0, 1)
sds_bn = [a.std(0).mean().item() for a in hidden0_bn + [logits0_bn]]
print(f"loss at initialisation: {loss_fn(logits0_bn, y_train).item():.3f}")
assert all(abs(s - relu_sd) < 0.1 for s in sds_bn[:-1])
pd.DataFrame(
    {
        "no batch norm": [f"{s:.2g}" for s in sd0],
        "batch norm": [f"{s:.2g}" for s in sds_bn],
    },
    index=pd.Index(
        [f"hidden {i + 1}" for i in range(DEPTH)] + ["logits"], name="layer"
    ),
).T.rename_axis("sd across inputs")

# %% [markdown]
# Every layer of the batch-norm model carries a signal of the expected size (0.54 to 0.59), the
# logits vary across inputs (sd 0.4), and the loss at initialisation, 1.795, is *above* $\ln K$:
# the network starts with input-dependent, if random, opinions. Now the learning-rate sweep with
# batch norm. Its runs have the same initial `nn.Linear` weights and minibatch order as the
# plain runs of their seeds, so the two are compared seed by seed. The table gives the
# batch-norm runs' validation loss after 30 epochs and their epochs on the plateau, the
# per-seed difference in epochs on the plateau from the plain run of the same seed, and the
# rule's verdict on it; a difference counts when it exceeds `PLATEAU_MARGIN` = 5 epochs on
# every seed.

# %% tags=["nbval-measured"] tolerance={"abs": 14.0, "rel": null}
PLATEAU_MARGIN = 5  # epochs: a smaller per-seed difference in time on the plateau
bn_net, bn_members, bn_history = train_grid(BN_LRS, batch_norm=True)
bn_final = bn_history[bn_history.epoch == NUM_EPOCHS].copy()
bn_final["plateau"] = [
    plateau(h.val_loss) for _, h in bn_history.groupby(["lr", "seed"], sort=False)
]
rows = []
for lr in BN_LRS:
    plain, bn = (r[r.lr == lr].sort_values("seed") for r in (lr_final, bn_final))
    v = stats.compare(
        bn.plateau,
        plain.plateau,
        paired=True,
        higher_is_better=False,
        margin=PLATEAU_MARGIN,
    )
    rows.append(
        {
            "lr": f"{lr:g}",
            "val loss": stats.mean_range(bn.val_loss, ".3f"),
            "plateau": stats.mean_range(bn.plateau, ".0f"),
            "BN − no BN": stats.signed(v.differences, ".0f"),
            "leaves it": v.word("sooner", "later"),
        }
    )
pd.DataFrame(rows).set_index("lr").rename_axis("with batch norm")

# %% [markdown]
# The next cell draws the validation loss against the learning rate, with and without batch norm
# (mean and range over the seeds).

# %% tags=["hide-input"]
both = pd.concat([lr_final.assign(bn=False), bn_final.assign(bn=True)])
fig, ax = plt.subplots(figsize=(plots.COLUMN_WIDTH, 3.8))
for bn_on, marker, name in [(False, "o-", "no batch norm"), (True, "s-", "batch norm")]:
    s = stats.summarize(both[both.bn == bn_on], "lr", "val_loss")
    yerr = [s["mean"] - s["min"], s["max"] - s["mean"]]
    ax.errorbar(s.index, s["mean"], yerr=yerr, fmt=marker, capsize=3, label=name)
ax.axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
ax.set(
    title=f"Validation loss after {NUM_EPOCHS} epochs (mean, range over seeds)",
    xlabel="learning rate",
    xscale="log",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
ax.legend()
plt.show()

# %% tags=["remove-input"]
for lr in (0.2, 1e-3, 5e-4):  # batch norm ends lower, by more than 0.2 nats per seed
    plain, bn = (r[r.lr == lr].sort_values("seed") for r in (lr_final, bn_final))
    v = stats.compare(
        bn.val_loss, plain.val_loss, paired=True, higher_is_better=False, margin=0.2
    )
    assert v.sign == 1
bn_diag = diagnose(bn_net, bn_members, batch_norm=True)
assert (bn_final[bn_final.lr == 0.2].val_loss < 0.9 * math.log(NUM_CLASSES)).all()
assert (bn_diag[bn_diag.lr <= LR].dead <= 1).all()
print(
    "Checked: with batch norm the loss ends lower at lr = 0.2, 0.001 and 5e-4 (by > "
    "0.2 per seed); at lr <= 0.01 no run has more than 1 dead unit."
)

# %% [markdown]
# With batch norm the useful range of learning rates is wider. At `lr` = 0.2, where the plain
# network died, and at 0.001 and 5e-4, where it was still crawling off the plateau, the
# batch-norm network leaves the plateau sooner on every seed, and it ends lower, by more than
# 0.2 nats on every seed.
# At the default `lr = 0.01` the difference is not resolved with 3 seeds. Batch norm does not
# protect against every learning rate: at `lr = 1` neither network leaves the plateau. For `lr` ≤ 0.01 the batch-norm
# networks have at most one dead unit in 96: a standardised pre-activation has zero mean over
# the batch, so it is positive for some examples unless $\gamma$ and $\delta$ push it down.
#
# Batch norm also changes what "the training loss" means: in training mode each example is
# normalised with the statistics of its random minibatch, in eval mode with the running
# averages. The table compares, at `lr = 0.01`, the training loss averaged over the last epoch's
# minibatches in training mode with the final model's loss on the training set in eval mode.

# %% tags=["nbval-measured"] tolerance={"abs": 0.64, "rel": 8.0}
modes = []
for name, (net, members) in {
    "no batch norm": (lr_net, lr_members),
    "batch norm": (bn_net, bn_members),
}.items():
    eval_loss, _ = batched.evaluate(net, X_train, y_train)
    h = (lr_final if net is lr_net else bn_final).reset_index(drop=True)
    for k, (lr, seed) in enumerate(members):
        if lr == LR:
            modes.append(
                dict(model=name, train=h.train_loss[k], eval=eval_loss[k], seed=seed)
            )
modes = pd.DataFrame(modes)
modes["gap"] = modes["train"] - modes["eval"]
with_bn = modes[modes.model == "batch norm"]
v = stats.compare(
    with_bn["train"], with_bn["eval"], paired=True, higher_is_better=False
)
print(f"batch norm, training mode against eval mode: {v.word('lower', 'higher')}")
mean_range_table(
    modes,
    "model",
    {
        "training mode": ("train", 1, ".2f"),
        "eval mode": ("eval", 1, ".2f"),
        "difference": ("gap", 1, ".2f"),
    },
).rename_axis(f"training loss, lr = {LR:g}")

# %% [markdown]
# The batch-norm model's training loss in training mode is higher than its eval-mode loss on
# every seed, by 0.07 to 0.15: the noise of normalising with a random batch of 128, gone in
# eval mode. The plain
# network's two losses differ only by how much the model changed during the epoch.
#
# (sec-ch06-batch-size)=
# ## Batch size
#
# With $N$ training examples and {term}`batch size <Batch size>` $B$ an epoch is
# $\lceil N/B\rceil$ optimizer steps. At a fixed learning rate, a small batch makes many noisy
# steps per epoch, a large batch a few accurate ones. As in the source exercise, batch sizes 1,
# 16, 128 and 1,024 run for 1, 10, 50 and 50 epochs (`BATCH_EPOCHS`), at `lr = 0.001`, without
# batch norm (which cannot normalise a batch of one example: {ref}`ex-ch6-bn-batch1`). The
# batched loop is written out here, to record every step's minibatch loss and the validation
# loss every 50 steps.


# %%
def train_batch_size(batch_size, num_epochs, eval_every=50):
    """The seeds at one batch size: per-step minibatch losses (steps, S), and the
    validation loss every eval_every steps, at the checkpoints and after every epoch."""
    net = batched.stack([build(seed) for seed in SEEDS], mode="layers").train()
    loader = batched.Loader(X_train, y_train, batch_size, SEEDS, order="randperm")
    opt = batched.optimizer(net, torch.optim.Adam, lr=BATCH_SIZE_LR, fused=True)
    step_losses, evals, step = [], [], 0
    for epoch in range(1, num_epochs + 1):
        for xb, yb in loader:
            losses = batched.member_losses(net(xb), yb)
            opt.zero_grad()
            losses.sum().backward()
            opt.step()
            step_losses.append(losses.detach())
            step += 1
            end = step == epoch * len(loader)
            if step % eval_every == 0 or step in checkpoints or end:
                val_loss, _ = batched.evaluate(net, X_val, y_val)
                for seed, v in zip(SEEDS, val_loss):
                    e = step / len(loader)
                    evals.append(dict(step=step, epoch=e, seed=seed, val_loss=v))
    return net, torch.stack(step_losses).numpy(), pd.DataFrame(evals)


steps_of = {
    bs: math.ceil(n_train / bs) * epochs
    for bs, epochs in zip(BATCH_SIZES, BATCH_EPOCHS)
}
checkpoints = sorted({steps_of[BATCH_SIZES[-1]], steps_of[BATCH_SIZES[-2]]})


bs_runs = {
    bs: train_batch_size(bs, epochs)
    for bs, epochs in zip(tqdm(BATCH_SIZES, desc="batch sizes"), BATCH_EPOCHS)
}

# %% [markdown]
# The next cell draws the validation loss of every run against epochs and against optimizer
# steps, and, for seed `SEED`, the minibatch loss of every step (the source's question about
# stability).

# %% tags=["hide-input"]
fig, axes = plt.subplots(3, 1, figsize=(plots.COLUMN_WIDTH, 9.6))
for i, (bs, (_, step_losses, evals)) in enumerate(bs_runs.items()):
    for seed, e in evals.groupby("seed"):
        label = f"batch {bs}" if seed == SEED else None
        axes[0].plot(e.epoch, e.val_loss, color=f"C{i}", lw=1, label=label)
        axes[1].plot(e.step, e.val_loss, color=f"C{i}", lw=1, label=label)
    steps = np.arange(1, len(step_losses) + 1)
    axes[2].plot(steps, step_losses[:, 0], color=f"C{i}", lw=0.5, label=f"batch {bs}")
axes[0].set(title="Validation loss against epochs", xlabel="epoch", xscale="log")
axes[1].set(title="Validation loss against optimizer steps", xlabel="optimizer steps")
axes[2].set(
    title=f"Minibatch loss of every step, seed {SEED}", xlabel="optimizer steps"
)
for ax in axes:
    ax.set(ylabel="cross-entropy (nats)", yscale="log")
    if ax is not axes[0]:
        ax.set_xscale("log")
    ax.legend(ncol=4, fontsize="small")
fig.suptitle(f"lr = {BATCH_SIZE_LR:g}, one line per seed")
plt.show()

# %% [markdown]
# The table gives, per batch size, the steps per epoch, the epochs and steps of the run, and the
# validation loss after one epoch, after 100 steps (all that batch 1,024 makes), after 600 steps
# (all that batch 128 makes) and at the end; then the rule's verdicts, paired by seed (with the
# margin of 0.2 nats).


# %% tags=["nbval-measured"] tolerance={"abs": 1.4, "rel": 2.8}
def val_loss_at(bs, *, step=None, epoch=None):
    """Each seed's validation loss at a step count or at the end of an epoch."""
    evals = bs_runs[bs][2]
    at = evals.step == (step if step else epoch * math.ceil(n_train / bs))
    return evals[at].sort_values("seed").val_loss.to_numpy()


bs_rows = []
for bs, epochs in zip(BATCH_SIZES, BATCH_EPOCHS):
    cells = {"after 1 epoch": val_loss_at(bs, epoch=1)}
    for steps in checkpoints:
        if steps <= steps_of[bs]:
            cells[f"after {steps:,} steps"] = val_loss_at(bs, step=steps)
    cells["at the end"] = val_loss_at(bs, epoch=epochs)
    bs_rows.append(
        {
            "batch": bs,
            "steps/epoch": math.ceil(n_train / bs),
            "epochs": epochs,
            "steps": steps_of[bs],
            **{k: stats.mean_range(v, ".2f") for k, v in cells.items()},
        }
    )
print(pd.DataFrame(bs_rows).set_index("batch").T.fillna("").to_string())
MARGIN = 0.2  # nats: smaller per-seed differences of validation losses do not count
last = checkpoints[-1]
for when, a, b, at in [
    ("after 10 epochs", 16, 128, dict(epoch=10)),
    (f"after {last:,} steps", 128, 16, dict(step=last)),
]:
    la, lb = val_loss_at(a, **at), val_loss_at(b, **at)
    v = stats.compare(la, lb, paired=True, higher_is_better=False, margin=MARGIN)
    diffs = stats.signed(v.differences, ".2f")
    print(f"{when}: batch {a} against {b}: {v.word('lower', 'higher')} ({diffs})")

# %% [markdown]
# Against epochs, that is per example seen, the smaller batch is ahead: after one epoch only
# batch 1 has moved below $\ln K$ (1.55), and after 10 epochs batch 16 is lower than batch 128.
# Against optimizer steps the order reverses: after 600 steps batch 128 is lower than batch 16,
# and batch 1 is still at $\ln K$. A larger batch makes a better step; a smaller batch makes
# more steps per epoch. The bottom panel answers the source's question about stability: the
# loss of a single example jumps by a factor of several from one step to the next, that of a
# batch of 16 much less, batch 128's wobbles little and batch 1,024's is smooth, because the
# noise of a minibatch gradient falls with the batch size ({ref}`sec-ch01-noise`).
#
# What a step costs on this machine (a measured time, which changes from run to run):


# %% tags=["nbval-ignore-output"] ignore_reason="wall-clock timings vary by machine and load"
def seconds_per_step(batch_size, steps=50):
    """Wall-clock seconds of one training step of the default model (one seed)."""
    model = build(SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=BATCH_SIZE_LR, fused=True)
    idx = torch.arange(steps * batch_size) % n_train
    start = time.perf_counter()
    for batch in idx.split(batch_size):
        optimizer.zero_grad()
        loss_fn(model(X_train[batch]), y_train[batch]).backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


step_seconds = {bs: seconds_per_step(bs) for bs in BATCH_SIZES}
for bs, s in step_seconds.items():
    epoch = s * math.ceil(n_train / bs)
    print(f"batch {bs:5d}: {1e6 * s:6.0f} µs per step, {epoch:6.3f} s per epoch")
assert step_seconds[1024] < 100 * step_seconds[1]  # 1,024 times the examples

# %% [markdown]
# For this small model on a CPU the time of a step is dominated by overhead and grows far more
# slowly than the batch, so large batches are much cheaper per example. How far the batch can
# grow before extra examples stop buying progress per step, and how to scale the learning rate
# with it, is measured at scale in {cite}`ch06-1-goyal2017accurate,ch06-1-shallue2019measuring`.
#
# **Accuracy and generalization.** [Chapter 1.2](01_2_batch_size.ipynb) left open whether the
# batch size changes how well a network generalizes. The table gives each batch size's training
# and test accuracy at the end of its runs, and the
# {term}`generalization gap <Generalization gap>` between them.

# %% tags=["nbval-measured"] tolerance={"abs": 39.0, "rel": 36.0}
bs_acc = []
for bs, (net, _, _) in bs_runs.items():
    acc = {name: batched.evaluate(net, Xs, ys)[1] for name, (Xs, ys) in splits.items()}
    for k, seed in enumerate(SEEDS):
        bs_acc.append({"batch": bs, "seed": seed, **{n: a[k] for n, a in acc.items()}})
bs_acc = pd.DataFrame(bs_acc)
bs_acc["gap"] = bs_acc["train"] - bs_acc["test"]
print(
    f"train − test accuracy over all {len(bs_acc)} runs: from "
    f"{100 * bs_acc.gap.min():.1f} to {100 * bs_acc.gap.max():.1f} points"
)
mean_range_table(
    bs_acc,
    "batch",
    {
        "train acc (%)": ("train", 100, ".1f"),
        "test acc (%)": ("test", 100, ".1f"),
        "train − test (points)": ("gap", 100, ".1f"),
    },
)

# %% [markdown]
# No batch size opens a gap between training and test accuracy: over all 12 runs the training
# accuracy exceeds the test accuracy by -1.3 to 4.7 points, while the batch sizes' mean test
# accuracies range from 22.5% to 66.1%. What differs is how far each batch size got in its
# budget: batch 1 after its single epoch and batch 1,024 after its 100 steps have barely left the
# plateau. None of these runs overfits, so they can neither confirm nor refute the claim that
# small batches generalize better {cite}`ch06-1-keskar2017largebatch,ch06-1-masters2018revisiting`,
# which is about networks trained to the same low training loss: that would take every batch
# size trained to convergence with its own tuned learning rate, and more seeds.
#
# (sec-ch06-1-source)=
# ## The source exercise's questions
#
# - *What does a too high learning rate do, and a too low one?* The expected answers hold, with a
#   sharper diagnosis: at `lr` = 1 and `0.2` the loss does not explode, the ReLU units die within
#   the first epochs and the output becomes constant; at `lr = 1e-5` the network barely moves.
# - *Train for 100 epochs: what happens after too many epochs?* The expected answer is
#   overfitting. [Chapter 6.2](06_2_mlp_depth_width.ipynb) trains the default model for 100
#   epochs, and none of its runs overfits this problem.
# - *How does batch norm contribute to training?* It restores a signal of unit size in every
#   layer and gets off the plateau sooner over a wider range of learning rates. At the default
#   rate its difference from the plain network is not resolved, and it does not rescue `lr = 1`.
# - *Batch size: accuracy, iterations per epoch and stability.* Small batches make more progress
#   per epoch and their loss is noisier from step to step; large batches make more progress per
#   step. With the source's epochs at `lr = 0.001`, batch 1 (one epoch) and batch 1,024 (100
#   steps) end barely off the plateau.
#
# Besides the data and the seeds, this lecture adds the learning rates `0.2` and `5e-4`, and the
# measurements (dead units, logit spread, parameter change) that say *why* a curve is flat.
#
# ## Summary
#
# - A loss curve flat at $\ln K$ has more than one cause, and measurements tell them apart. With
#   `lr` = 1 or 0.2 the network **died** on every seed: a fully dead layer, a constant output, a
#   loss no better than the best constant prediction. With `lr = 1e-5` it **did not move**, and
#   its loss stayed near $\ln K$ because PyTorch's default initialisation shrinks the signal by
#   about $\sqrt 6$ per layer.
# - `lr = 0.01` leaves the plateau first on every seed; 0.001 and 5e-4 sit on it for 19 epochs
#   or more, and a run's loss at the end depends on when it left.
# - During training some dead units come back and others die; a first-layer unit never comes
#   back. A layer in which every unit is dead ends the run.
# - Batch norm restores a signal of unit size in every layer and widens the range of learning
#   rates that train; it does not rescue `lr = 1`.
# - Against epochs small batches progress faster, against steps large ones do. No batch size
#   opened a gap between training and test accuracy; whether small batches generalize better at
#   equal training loss these runs cannot say.
#
# ## Exercises
#
# ```{exercise} The best constant prediction
# :label: ex-ch6-constant
#
# Show that among all constant predictions $\mathbf{s}$ (the same class probabilities for
# every input) the one with the lowest mean cross-entropy on a data set predicts the label
# frequencies $\mathbf{f}$, and that its loss is their entropy
# $-\sum_k f_k \ln f_k \le \ln K$. Compute it for our validation set.
# ```
#
# ```{solution} ex-ch6-constant
# :class: dropdown
#
# The mean cross-entropy of a constant $\mathbf{s}$ is $-\sum_k f_k \ln s_k$. Minimising it
# subject to $\sum_k s_k = 1$ (Gibbs' inequality) gives $s_k = f_k$, and the minimum is the
# entropy of $\mathbf{f}$, at most $\ln K$, with equality for balanced classes. The cell after
# the exercises finds the same optimum with Adam on constant logits: 1.6093 on our validation
# set, whose classes are almost balanced, against $\ln 5 = 1.6094$.
# ```
#
# ```{exercise} Dead units at initialisation
# :label: ex-ch6-dead-init
#
# The table in {ref}`sec-ch06-init` shows 37.5% (6 of 16) dead units in the first
# hidden layer of seed `SEED`'s model *before training*. With PyTorch's default initialisation
# the first layer ($n_{\text{in}} = 2$ inputs) draws each weight and bias from
# $U(-1/\sqrt2, 1/\sqrt2)$. Estimate by simulation the probability that such a unit is dead on
# our training set. Is 6 of 16 surprising?
# ```
#
# ```{solution} ex-ch6-dead-init
# :class: dropdown
#
# Draw many units (two weights and a bias each) and check whether the pre-activation is $\le 0$
# at all 1,500 training points. For 20,000 units (the cell after the exercises) the
# probability is about 12%, roughly the chance that the bias is below minus the norm of the
# weights, since the data fill a disc of radius about 1. The number of dead units among 16 is
# binomial, and 6 or more has a probability of about 1%: this seed drew an unlucky first layer.
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
# input: the layer would erase the input, and the unbiased variance for the running average is
# $0/0$. PyTorch refuses: `Expected more than 1 value per channel when training` (the cell after
# the exercises). In eval mode the layer applies its running statistics, an affine map that
# works for any batch, including one example: that is how a trained batch-norm model predicts.
# ```

# %%
# The computations of the solutions above.
logits_c = torch.zeros(NUM_CLASSES, requires_grad=True)  # one constant prediction
opt_c = torch.optim.Adam([logits_c], lr=0.1)
for _ in range(500):
    loss_c = loss_fn(logits_c.expand(len(y_val), -1), y_val)
    opt_c.zero_grad()
    loss_c.backward()
    opt_c.step()
freq = np.bincount(y_val, minlength=NUM_CLASSES) / len(y_val)
np.testing.assert_allclose(torch.softmax(logits_c, 0).detach(), freq, atol=1e-3)
print(
    f"best constant prediction: loss {loss_c.item():.4f}, softmax = label frequencies"
)

rng = np.random.default_rng(SEED)
a = 1 / math.sqrt(2)
w, b = rng.uniform(-a, a, size=(20_000, 2)), rng.uniform(-a, a, size=20_000)
p_dead = float(((X_train.double().numpy() @ w.T + b) <= 0).all(axis=0).mean())
k_dead = round(WIDTH * dead0[0].item())  # dead units in this seed's first layer
p_k = sum(
    math.comb(16, k) * p_dead**k * (1 - p_dead) ** (16 - k) for k in range(k_dead, 17)
)
print(f"P(a first-layer unit is dead) ≈ {p_dead:.2f}")
print(f"P({k_dead} or more of 16 dead) ≈ {p_k:.2f}")

try:
    nn.BatchNorm1d(16).train()(torch.randn(1, 16))
except ValueError as err:
    print("BatchNorm1d, training, 1 example:", str(err).split(",")[0])
assert nn.BatchNorm1d(16).eval()(torch.randn(1, 16)).shape == (1, 16)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch06-1-
# ```
