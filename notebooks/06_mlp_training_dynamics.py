# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 6: Training dynamics of a deep MLP
#
# A multilayer perceptron has a handful of knobs: the learning rate, batch normalisation, the batch
# size, the depth and the width. This chapter turns each of them on one small problem, a 2-D
# classification task with five spiral arms, and looks at what happens to training. A 2-D input
# lets us *see* what a network has learned (its decision boundaries, even the linear pieces a ReLU
# network is made of), and a small network trains in seconds, so every claim can be measured
# instead of guessed: when a loss curve is flat we find out why (dead ReLU units, the loss at
# initialisation, the size of the updates), and when a deep network does not train we measure the
# gradient layer by layer.
#
# The training loop is written out in plain PyTorch (`nn.Linear`, an explicit loop over epochs and
# minibatches) on purpose: every experiment below is a small change to it.
#
# Prerequisites: backpropagation through an MLP (chapter 5), Adam (chapter 3), minibatch training
# in PyTorch (chapter 4).

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
# A reader with a GPU or more time can raise N_PER_CLASS, the epochs, BS1_EPOCHS and GRID.

# %%
import copy
import math
import time
from dataclasses import dataclass
from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import NullFormatter
from scipy.spatial import ConvexHull
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset
from tqdm.auto import tqdm

import course_utils
from course_utils import plots, toy_data

info = course_utils.runtime.init(SEED)
print(info)


def fmt_loss(x):
    """A loss to 3 significant digits (what the text needs, stable across machines)."""
    return f"{x:.3g}"


def fmt_acc(a):
    """An accuracy (or any fraction) in percent, to 0.1%."""
    return f"{100 * a:.1f}%"


# %% [markdown]
# ## The data
#
# `course_utils.toy_data.spirals` draws `N_PER_CLASS` points on each of `NUM_CLASSES` spiral arms.
# A point of class $k$ has a radius $r$ drawn uniformly from $[0.05, 1]$ and the angle
#
# $$
# \theta = \frac{2\pi k}{K} + 2\pi r ,
# $$ (eq-ch6-spiral)
#
# so each arm winds once around the origin; Gaussian noise of standard deviation `NOISE` is added
# to the point $r(\cos\theta, \sin\theta)$. The boundaries between classes are curved, and near the
# centre, where the arms are closer than the noise, the classes overlap: no model can be perfect
# there. The rows come shuffled; the first 60% are the training set, the next 20% validation,
# the last 20% test.

# %%
X_all, y_all = toy_data.spirals(N_PER_CLASS, NUM_CLASSES, noise=NOISE, seed=SEED)
n = len(y_all)
n_train, n_val = int(0.6 * n), int(0.2 * n)
X_all, y_all = torch.from_numpy(X_all), torch.from_numpy(y_all)
X_train, y_train = X_all[:n_train], y_all[:n_train]
X_val, y_val = X_all[n_train : n_train + n_val], y_all[n_train : n_train + n_val]
X_test, y_test = X_all[n_train + n_val :], y_all[n_train + n_val :]
counts = pd.DataFrame(
    {
        name: np.bincount(t.numpy(), minlength=NUM_CLASSES)
        for name, t in [("train", y_train), ("validation", y_val), ("test", y_test)]
    }
)
counts.index.name = "class"
counts.loc["total"] = counts.sum()
counts.T

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for ax, (name, X, y) in zip(
    axes, [("training", X_train, y_train), ("validation", X_val, y_val)]
):
    sc = ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        cmap=plt.get_cmap("tab10", NUM_CLASSES),
        vmin=-0.5,
        vmax=NUM_CLASSES - 0.5,
        s=6,
    )
    ax.set(
        title=f"Five spiral arms: {name} set ({len(y):,} points)",
        xlabel="$x_1$",
        ylabel="$x_2$",
        aspect="equal",
    )
fig.colorbar(sc, ax=axes, ticks=range(NUM_CLASSES), label="class")
plt.show()

# %% [markdown]
# ## The model and the training loop
#
# The default model has 6 hidden layers of 16 units, each an `nn.Linear` followed by a ReLU, and
# a linear output layer with one logit per class: 7 `nn.Linear` in all. Two options are used later:
# `batch_norm=True` puts an `nn.BatchNorm1d` between each hidden `nn.Linear` and its ReLU, and
# `residual=True` adds a skip connection around every hidden layer but the first. The forward pass
# can also return every hidden layer's ReLU output, which we need to count dead units and linear
# regions. The weights keep PyTorch's default initialisation, since that is what a reader gets.


# %%
class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units, each Linear -> [BatchNorm1d] -> ReLU, then a Linear head.

    ``residual=True`` adds a skip connection around every hidden layer but the first
    (which changes the dimension): ``h <- h + residual_scale * ReLU(BN(W h + b))``.
    ``forward(x, return_hidden=True)`` also returns the ReLU outputs of every hidden layer.
    """

    def __init__(
        self,
        depth=6,
        width=16,
        batch_norm=False,
        residual=False,
        residual_scale=1.0,
        in_features=2,
        num_classes=NUM_CLASSES,
    ):
        super().__init__()
        for name, value in [
            ("depth", depth),
            ("width", width),
            ("in_features", in_features),
            ("num_classes", num_classes),
        ]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"MLP: {name} must be a positive integer, got {value!r}"
                )
        if not residual_scale > 0:
            raise ValueError(
                f"MLP: residual_scale must be positive, got {residual_scale!r}"
            )
        self.depth, self.width, self.batch_norm = depth, width, batch_norm
        self.residual, self.residual_scale = residual, residual_scale
        self.blocks = nn.ModuleList()
        for i in range(depth):
            layers = [nn.Linear(in_features if i == 0 else width, width)]
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU())
            self.blocks.append(nn.Sequential(*layers))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x, return_hidden=False):
        hidden = []
        h = x
        for i, block in enumerate(self.blocks):
            a = block(h)
            hidden.append(a)
            h = h + self.residual_scale * a if (self.residual and i > 0) else a
        logits = self.head(h)
        return (logits, hidden) if return_hidden else logits


model = MLP()
print(model)
n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_linear} nn.Linear layers, {n_params:,} parameters")
assert n_linear == 7

# %% [markdown]
# The loop below is the whole training procedure: for each epoch, one pass over shuffled
# minibatches (forward, loss, `zero_grad`, backward, Adam step), then an evaluation pass. Each
# epoch adds one row to a table: the step count, the training loss and accuracy averaged over the
# epoch's minibatches (the model changes while they are measured), the validation loss and
# accuracy, and the fraction of dead units (defined in the next section). The shuffling uses a
# seeded `torch.Generator`, so a run gives the same numbers every time. The sampler hands the
# dataset a whole list of indices per batch: the default `DataLoader` would look the examples up
# one by one and collate them, which on this tiny model costs more than the model itself.

# %%
loss_fn = nn.CrossEntropyLoss()


def make_loader(X, y, batch_size, seed=SEED):
    """Shuffled minibatches, in the same order on every run (a seeded generator)."""
    dataset = TensorDataset(X, y)
    generator = torch.Generator().manual_seed(seed)
    sampler = BatchSampler(
        RandomSampler(dataset, generator=generator), batch_size, drop_last=False
    )
    return DataLoader(dataset, sampler=sampler, batch_size=None)  # one X[idx] per batch


@torch.no_grad()
def evaluate(model, X, y):
    """Mean cross-entropy and accuracy on (X, y), the model in eval mode."""
    model.eval()
    logits = model(X)
    return loss_fn(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


@torch.no_grad()
def dead_fractions(model, X=None):
    """Per hidden layer, the fraction of units whose ReLU output is 0 for every row of X (eval mode).

    X defaults to the whole training set: a unit that is 0 on all of it passes no signal and,
    since ReLU'(z) = 0 for z < 0, gets no gradient from any training example.
    """
    model.eval()
    _, hidden = model(X_train if X is None else X, return_hidden=True)
    return tuple((a <= 0).all(dim=0).float().mean().item() for a in hidden)


def train(model, *, lr, batch_size, num_epochs, seed=SEED):
    """Adam on the training set; one row of metrics per epoch (see the text above)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loader = make_loader(X_train, y_train, batch_size, seed)
    rows, step = [], 0
    for epoch in range(1, num_epochs + 1):
        model.train()
        sum_loss, n_correct, n_seen = 0.0, 0, 0
        for xb, yb in loader:
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            sum_loss += loss.item() * len(yb)
            n_correct += (logits.argmax(1) == yb).sum().item()
            n_seen += len(yb)
        if not math.isfinite(sum_loss):
            raise FloatingPointError(
                f"the training loss became {sum_loss} in epoch {epoch} (lr={lr})"
            )
        val_loss, val_acc = evaluate(model, X_val, y_val)
        dead = dead_fractions(model)
        rows.append(
            dict(
                epoch=epoch,
                step=step,
                train_loss=sum_loss / n_seen,
                train_acc=n_correct / n_seen,
                val_loss=val_loss,
                val_acc=val_acc,
                dead=float(np.mean(dead)),
                dead_per_layer=dead,
            )
        )
    return pd.DataFrame(rows)


# %% [markdown]
# Several experiments share a configuration (the default model at `lr = 0.01` and batch 128 appears
# in the learning-rate sweep, the batch-norm comparison and the depth and width sweeps), so runs
# are kept in a dictionary and trained once. A sweep that shows 40 epochs of a run trained for 100
# uses its first 40 rows: there is no learning-rate schedule and the shuffling is seeded, so they
# are exactly what a 40-epoch run records. The cell after the next checks this on 3 epochs.


# %%
@dataclass
class Run:
    model: MLP
    history: pd.DataFrame


runs = {}  # configuration -> Run: each configuration is trained once and reused


def build(depth=6, width=16, batch_norm=False, residual=False, residual_scale=1.0):
    """A freshly initialised MLP; seeding first makes the initial weights the same on every call."""
    torch.manual_seed(SEED)
    return MLP(depth, width, batch_norm, residual, residual_scale)


def get_run(
    depth=6,
    width=16,
    batch_norm=False,
    lr=LR,
    batch_size=BATCH_SIZE,
    num_epochs=NUM_EPOCHS,
):
    """Train the configuration, or reuse it; return (model, history of the first num_epochs epochs).

    The model is the one at the end of its run, which may be longer than num_epochs.
    """
    key = (depth, width, batch_norm, lr, batch_size)
    if key not in runs or len(runs[key].history) < num_epochs:
        model = build(depth, width, batch_norm)
        runs[key] = Run(
            model, train(model, lr=lr, batch_size=batch_size, num_epochs=num_epochs)
        )
    run = runs[key]
    return run.model, run.history.iloc[:num_epochs]


# %%
model_def, hist_def = get_run(num_epochs=NUM_EPOCHS)  # the default model, 100 epochs
hist_3 = train(build(), lr=LR, batch_size=BATCH_SIZE, num_epochs=3)
pd.testing.assert_frame_equal(hist_def.iloc[:3], hist_3)
print("the first 3 epochs of the 100-epoch run are identical to a separate 3-epoch run")

# %% [markdown]
# ## Learning rate
#
# Before training, two measurements that will explain the flat curves below.
#
# **The loss at initialisation.** If the logits $z_k$ are (nearly) the same for every class, the
# softmax gives every class probability $1/K$ and the cross-entropy of any example is
#
# $$
# L = -\ln\frac{e^{z_y}}{\sum_{k=1}^K e^{z_k}} = \ln K \qquad (z_1 = \dots = z_K),
# $$ (eq-ch6-lnk)
#
# here $\ln 5 = 1.609$. A loss curve sitting at $\ln K$ means the network outputs (almost) nothing
# that depends on the input. A constant output that is *not* uniform does no better: the best
# constant prediction has the entropy of the label frequencies as its loss.
#
# **Dead units.** A ReLU unit is *dead* on a data set when its pre-activation is negative for
# every example: it outputs 0 everywhere, and because $\mathrm{ReLU}'(z)=0$ for $z<0$ its incoming
# weights and bias get a zero gradient from every example. It can only come back if the layers
# before it change its inputs; a dead unit of the first layer, whose inputs are the data, stays
# dead. We count, per layer, the units that output 0 on all 3,000 training points.
#
# PyTorch initialises an `nn.Linear` with $n$ inputs with weights and biases drawn from
# $U(-1/\sqrt n, 1/\sqrt n)$, of variance $1/(3n)$. For a zero-mean pre-activation $z_l$ a ReLU
# keeps half of its second moment, so, ignoring the biases, each layer multiplies the variance of
# the signal by
#
# $$
# n \cdot \frac{1}{3n} \cdot \frac12 = \frac16 ,
# $$ (eq-ch6-shrink)
#
# that is, the standard deviation across inputs shrinks by $\sqrt 6 \approx 2.4$ per layer. The
# first table measures it on the seeded default model.

# %%
model0 = build()
loss0, acc0 = evaluate(model0, X_val, y_val)
print(
    f"at initialisation: validation loss {loss0:.4f}, ln K = ln {NUM_CLASSES} = {math.log(NUM_CLASSES):.4f}, "
    f"accuracy {fmt_acc(acc0)}"
)
with torch.no_grad():
    logits0, hidden0 = model0(X_train, return_hidden=True)
init_table = pd.DataFrame(
    {
        "layer": [f"hidden {i + 1}" for i in range(len(hidden0))] + ["logits"],
        "std across inputs": [f"{a.std(0).mean().item():.2g}" for a in hidden0]
        + [f"{logits0.std(0).mean().item():.2g}"],
        "dead units": [fmt_acc(d) for d in dead_fractions(model0)] + [""],
    }
).set_index("layer")
init_table.T

# %%
assert abs(loss0 - math.log(NUM_CLASSES)) < 0.01
big = nn.Linear(
    1000, 1000
)  # PyTorch's default initialisation: variance 1/(3 fan_in), bounded by 1/sqrt(fan_in)
np.testing.assert_allclose(big.weight.var().item(), 1 / (3 * 1000), rtol=0.01)
assert big.weight.abs().max().item() <= 1 / math.sqrt(1000)

# %% [markdown]
# The loss at initialisation is $\ln 5$ to three decimals: the spread of the logits across inputs
# is below $10^{-3}$. The standard deviation across inputs falls by a factor of 2.6 to 4.2 per
# layer over the first five layers, a little faster than the $\sqrt 6$ of {eq}`eq-ch6-shrink`
# (dead units pass nothing), and 40.6% of the 96 hidden units are already dead before any
# training, up to 75% in layer 5.
#
# Now the sweep: six learning rates for Adam, batch 128, 40 epochs each (the run at `lr = 0.01`
# is the default model's, shown up to epoch 40). The right panel follows the dead units during
# training. The table adds the first epoch at which the validation loss drops below
# $0.9 \ln K$, a measure of how long a run stays on the plateau.


# %%
def leaves_plateau(h):
    """First epoch with validation loss below 0.9 ln K (None if never)."""
    below = h.epoch[h.val_loss < 0.9 * math.log(NUM_CLASSES)]
    return int(below.iloc[0]) if len(below) else None


lr_rows = {}
for lr in tqdm(LRS, desc="learning rates"):
    _, h = get_run(lr=lr, num_epochs=NUM_EPOCHS if lr == LR else SWEEP_EPOCHS)
    lr_rows[lr] = h.iloc[:SWEEP_EPOCHS]

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for lr, h in lr_rows.items():
    axes[0].plot(h.epoch, h.val_loss, label=f"lr = {lr:g}")
    axes[1].plot(h.epoch, 100 * h.dead, label=f"lr = {lr:g}")
axes[0].axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
axes[0].set(
    title=f"Validation loss, Adam, batch {BATCH_SIZE}",
    xlabel="epoch",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
axes[1].set(
    title="Dead ReLU units (0 on every training point)",
    xlabel="epoch",
    ylabel="dead units (% of 96)",
)
axes[0].legend(ncol=2)
axes[1].legend(ncol=2)
plt.show()

pd.DataFrame(
    {
        "lr": [f"{lr:g}" for lr in lr_rows],
        "val loss, epoch 1": [fmt_loss(h.val_loss.iloc[0]) for h in lr_rows.values()],
        f"val loss, epoch {SWEEP_EPOCHS}": [
            fmt_loss(h.val_loss.iloc[-1]) for h in lr_rows.values()
        ],
        "val accuracy": [fmt_acc(h.val_acc.iloc[-1]) for h in lr_rows.values()],
        "leaves plateau at epoch": [
            leaves_plateau(h) or "never" for h in lr_rows.values()
        ],
        "dead units": [fmt_acc(h.dead.iloc[-1]) for h in lr_rows.values()],
        "dead per layer (%)": [
            " ".join(f"{100 * d:.0f}" for d in h.dead_per_layer.iloc[-1])
            for h in lr_rows.values()
        ],
    }
).set_index("lr")

# %% [markdown]
# Three of the six curves are flat at $\ln K$. To tell *why*, the next table measures, for every
# run that stopped at epoch 40, how far the parameters moved from their initial values
# ($\lVert\theta-\theta_0\rVert/\lVert\theta_0\rVert$), the spread of the logits across the
# validation inputs (0 means the output does not depend on the input) and the number of hidden
# layers in which every unit is dead.


# %%
@torch.no_grad()
def logit_spread(model, X=X_val):
    """The standard deviation of the logits across inputs, averaged over classes: 0 means a constant output."""
    model.eval()
    return model(X).std(dim=0).mean().item()


def param_change(model):
    """||theta - theta_0|| / ||theta_0||, theta_0 the seeded initial parameters of the same architecture."""
    init = build(
        model.depth, model.width, model.batch_norm, model.residual, model.residual_scale
    )
    theta = torch.cat([p.detach().ravel() for p in model.parameters()])
    theta0 = torch.cat([p.detach().ravel() for p in init.parameters()])
    return ((theta - theta0).norm() / theta0.norm()).item()


freq_val = np.bincount(y_val.numpy(), minlength=NUM_CLASSES) / len(y_val)
best_constant_loss = float(
    -(freq_val * np.log(freq_val)).sum()
)  # entropy of the validation labels
diag = {}
for lr in [lr for lr in LRS if lr != LR]:  # these runs stopped at epoch SWEEP_EPOCHS
    m = runs[(6, 16, False, lr, BATCH_SIZE)].model
    diag[lr] = dict(
        change=param_change(m),
        spread=logit_spread(m),
        dead_layers=sum(d == 1.0 for d in dead_fractions(m)),
    )
print(
    f"best loss of a constant prediction on the validation set (entropy of its labels): {best_constant_loss:.4f}"
)
pd.DataFrame(
    {
        f"{lr:g}": {
            "||θ−θ₀|| / ||θ₀||": f"{d['change']:.2g}",
            "logit spread": f"{d['spread']:.2g}",
            "fully dead layers": d["dead_layers"],
        }
        for lr, d in diag.items()
    }
).T.rename_axis("lr")

# %%
for lr in (
    1,
    0.2,
):  # a fully dead layer: constant output, no better than the best constant prediction
    assert diag[lr]["dead_layers"] >= 1 and diag[lr]["spread"] < 1e-6
    assert lr_rows[lr].val_loss.iloc[-1] >= best_constant_loss - 1e-4
    assert np.isclose(
        freq_val, lr_rows[lr].val_acc.iloc[-1], atol=1e-6
    ).any()  # accuracy = one class's share
assert (
    diag[1e-5]["change"] < 0.05
    and abs(lr_rows[1e-5].val_loss.iloc[-1] - math.log(NUM_CLASSES)) < 0.01
)

# %% [markdown]
# The measurements separate two different failures behind the same flat curve:
#
# - **Too large (`lr` = 1 and 0.2): the network died.** After 40 epochs 84.4% and 88.5% of the
#   units are dead, with every unit of the last hidden layer dead (and layers 4 and 5 too at
#   `lr = 1`). The logit spread is exactly 0: the output is the same for every input, so the
#   network predicts one class everywhere (accuracy 18.7%, the share of class 1 in the validation
#   set) and its loss cannot go below the 1.6075 of the best constant prediction. The parameters
#   moved a lot (by 28 and 5.1 times their initial norm) but no gradient flows back through a dead
#   layer, so the run cannot recover. The dead fraction jumps in the first epoch and hardly
#   changes afterwards (right panel). (At the smaller learning rates, by contrast, the dead
#   fraction falls: units dead at initialisation come back as the layers before them learn,
#   except in the first layer, which keeps its 38% in every run that did not die.)
# - **Too small (`lr` = 1e-5): the network barely moved.** The parameters changed by 2% of their
#   norm, the logit spread is still below $10^{-3}$ as at initialisation, and the loss stays at
#   $\ln K$ where {eq}`eq-ch6-lnk` put it. Nothing is broken; the steps are too short.
#
# In between, `lr` = 0.001 and 5e-4 first sit on the $\ln K$ plateau (they leave it at epochs 10
# and 16) and then descend without having converged after 40 epochs; `lr = 0.01` leaves at epoch 3
# and reaches the lowest loss, so it is the default. Dead units alone are not fatal: the good run
# still has a third of its units dead; a layer in which *all* are dead is.
#
# ## The default model, 100 epochs
#
# The default model (`lr = 0.01`, batch 128) for 100 epochs; the test set is used once, at the end.

# %%
final = {
    name: evaluate(model_def, X, y)
    for name, X, y in [
        ("train", X_train, y_train),
        ("validation", X_val, y_val),
        ("test", X_test, y_test),
    ]
}
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(
    hist_def.epoch, hist_def.train_loss, label="train (average over the epoch)"
)
axes[0].plot(hist_def.epoch, hist_def.val_loss, label="validation")
axes[0].plot([NUM_EPOCHS], [final["test"][0]], "k*", ms=10, label="test (end)")
axes[0].set(
    title="Default model: loss",
    xlabel="epoch",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
axes[1].plot(
    hist_def.epoch, 100 * hist_def.train_acc, label="train (average over the epoch)"
)
axes[1].plot(hist_def.epoch, 100 * hist_def.val_acc, label="validation")
axes[1].plot([NUM_EPOCHS], [100 * final["test"][1]], "k*", ms=10, label="test (end)")
axes[1].set(title="Default model: accuracy", xlabel="epoch", ylabel="accuracy (%)")
for ax in axes:
    ax.legend()
plt.show()
best_epoch = int(hist_def.epoch[hist_def.val_loss.idxmin()])
last10 = hist_def.val_acc.iloc[-10:]
print(
    f"lowest validation loss {fmt_loss(hist_def.val_loss.min())} at epoch {best_epoch}; validation accuracy "
    f"over the last 10 epochs {fmt_acc(last10.mean())} ± {fmt_acc(last10.std())}"
)
pd.DataFrame(
    {
        name: {"loss": fmt_loss(l), "accuracy": fmt_acc(a)}
        for name, (l, a) in final.items()
    }
)

# %%
r_test = X_test.norm(dim=1)
with torch.no_grad():
    correct = (model_def.eval()(X_test).argmax(1) == y_test).float()
for lo_r, hi_r in [(0, 0.3), (0.3, 0.6), (0.6, 2)]:
    sel = (r_test >= lo_r) & (r_test < hi_r)
    print(
        f"test points with radius in [{lo_r}, {hi_r}): {int(sel.sum()):4d}, accuracy {fmt_acc(correct[sel].mean().item())}"
    )

# %% [markdown]
# Training and validation curves lie on top of each other: 1,493 parameters on 3,000 points do
# not overfit this smooth problem in 100 epochs, and the final training, validation and test
# accuracies (89.6%, 87.3%, 89.6%) differ by about the epoch-to-epoch wobble of the validation
# accuracy (88.3% on average over the last 10 epochs, with a standard deviation of 1.1%, from
# Adam's noisy steps at this learning rate). The lowest validation loss is at epoch 99: the model
# is still improving, slowly. Errors are most frequent near the centre, where the arms come
# together: 79.2% of the test points within radius 0.3 are classified correctly, against 92.4% and
# 93.7% further out, where the noise still mixes neighbouring arms.
#
# ## Batch normalisation
#
# Batch normalisation {cite}`ch06-ioffe2015batchnorm` standardises each unit's pre-activation $z$ over
# the minibatch $B$ and then applies a learned scale $\gamma$ and shift $\beta$:
#
# $$
# \hat z = \gamma\,\frac{z - \mu_B}{\sqrt{\sigma_B^2 + \varepsilon}} + \beta, \qquad
# \mu_B = \frac{1}{|B|}\sum_{i\in B} z_i, \quad \sigma_B^2 = \frac{1}{|B|}\sum_{i\in B}(z_i - \mu_B)^2 .
# $$ (eq-ch6-bn)
#
# During training it also keeps running averages of $\mu_B$ and of the *unbiased* batch variance
# (momentum 0.1); in eval mode it uses those instead of the batch's statistics, so a prediction
# does not depend on the other examples of the batch. The next cell checks both statements
# against `nn.BatchNorm1d`.

# %%
torch.manual_seed(SEED)
bn = nn.BatchNorm1d(4)
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
    bn.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
z = 3 * torch.randn(32, 4) + 1
out = bn.train()(z)
mu, var = z.mean(0), z.var(0, unbiased=False)
by_hand = bn.weight * (z - mu) / torch.sqrt(var + bn.eps) + bn.bias
np.testing.assert_allclose(
    out.detach().numpy(), by_hand.detach().numpy(), rtol=1e-5, atol=1e-5
)
np.testing.assert_allclose(
    bn.running_mean.numpy(), (0.1 * mu).numpy(), rtol=1e-5, atol=1e-6
)
np.testing.assert_allclose(
    bn.running_var.numpy(), (0.9 + 0.1 * z.var(0, unbiased=True)).numpy(), rtol=1e-5
)
print(
    "nn.BatchNorm1d in training mode matches the formula; the running statistics update as stated"
)

# %% [markdown]
# Batch norm undoes the shrinking of {eq}`eq-ch6-shrink`: at initialisation every pre-activation
# is standardised, so each hidden layer's output should have the spread of $\mathrm{ReLU}(z)$ for
# a standardised $z$; for a standard normal $z$ that is $\sqrt{1/2 - 1/(2\pi)} = 0.584$. The table
# measures it on a fresh batch-norm model in training mode, with the whole training set as batch.

# %%
with torch.no_grad():
    logits0_bn, hidden0_bn = build(batch_norm=True).train()(X_train, return_hidden=True)
    loss0_bn = loss_fn(logits0_bn, y_train).item()
relu_std = math.sqrt(0.5 - 1 / (2 * math.pi))  # std of ReLU(z) for z ~ N(0, 1)
stds_bn = [a.std(0).mean().item() for a in hidden0_bn]
print(
    f"loss at initialisation with batch norm (training mode): {loss0_bn:.3f}, ln K = {math.log(NUM_CLASSES):.3f}; "
    f"std of ReLU(z), z ~ N(0, 1): {relu_std:.3f}"
)
assert all(abs(s - relu_std) < 0.1 for s in stds_bn)
pd.DataFrame(
    {
        "layer": [f"hidden {i + 1}" for i in range(len(hidden0_bn))] + ["logits"],
        "no batch norm": init_table["std across inputs"].tolist(),
        "batch norm": [f"{s:.2g}" for s in stds_bn]
        + [f"{logits0_bn.std(0).mean().item():.2g}"],
    }
).set_index("layer").T.rename_axis("std across inputs at initialisation")

# %% [markdown]
# Every layer of the batch-norm model carries a signal of the expected size (0.54 to 0.59), the
# logits vary across inputs (spread 0.4) and the loss at initialisation, 1.804, is *above*
# $\ln K$: the network starts with input-dependent, if random, opinions. Now the same learning-rate
# sweep with batch norm (40 epochs; `lr = 0.01` again for 100 epochs, to compare with the default
# model).

# %%
bn_rows = {}
for lr in tqdm(LRS, desc="learning rates, batch norm"):
    _, h = get_run(
        batch_norm=True, lr=lr, num_epochs=NUM_EPOCHS if lr == LR else SWEEP_EPOCHS
    )
    bn_rows[lr] = h.iloc[:SWEEP_EPOCHS]
model_bn, hist_bn = get_run(batch_norm=True)

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(
    LRS, [h.val_loss.iloc[-1] for h in lr_rows.values()], "o-", label="no batch norm"
)
axes[0].plot(
    LRS, [h.val_loss.iloc[-1] for h in bn_rows.values()], "s-", label="batch norm"
)
axes[0].axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
axes[0].set(
    title=f"Validation loss after {SWEEP_EPOCHS} epochs",
    xlabel="learning rate",
    xscale="log",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
for name, h in [("no batch norm", hist_def), ("batch norm", hist_bn)]:
    axes[1].plot(h.epoch, h.val_loss, label=f"{name}, validation")
    axes[1].plot(h.epoch, h.train_loss, ls="--", label=f"{name}, train (training mode)")
axes[1].set(
    title=f"lr = {LR:g}, {NUM_EPOCHS} epochs",
    xlabel="epoch",
    ylabel="cross-entropy (nats)",
    yscale="log",
)
for ax in axes:
    ax.legend()
plt.show()
pd.DataFrame(
    {
        "lr": [f"{lr:g}" for lr in LRS],
        "val loss, no BN": [fmt_loss(lr_rows[lr].val_loss.iloc[-1]) for lr in LRS],
        "val loss, BN": [fmt_loss(bn_rows[lr].val_loss.iloc[-1]) for lr in LRS],
        "val acc, no BN": [fmt_acc(lr_rows[lr].val_acc.iloc[-1]) for lr in LRS],
        "val acc, BN": [fmt_acc(bn_rows[lr].val_acc.iloc[-1]) for lr in LRS],
        "dead, no BN": [fmt_acc(lr_rows[lr].dead.iloc[-1]) for lr in LRS],
        "dead, BN": [fmt_acc(bn_rows[lr].dead.iloc[-1]) for lr in LRS],
    }
).set_index("lr")

# %%
final_bn = {
    name: evaluate(model_bn, X, y)
    for name, X, y in [
        ("train", X_train, y_train),
        ("validation", X_val, y_val),
        ("test", X_test, y_test),
    ]
}
print(
    f"batch-norm model after {NUM_EPOCHS} epochs, eval mode: "
    + ", ".join(
        f"{name} loss {fmt_loss(l)} accuracy {fmt_acc(a)}"
        for name, (l, a) in final_bn.items()
    )
)
print(
    f"its training loss averaged over epoch {NUM_EPOCHS} in training mode: {fmt_loss(hist_bn.train_loss.iloc[-1])}"
)

# %% [markdown]
# With batch norm the useful range of learning rates is much wider. At `lr` = 0.001 and 5e-4 the
# plain network was still crawling off the plateau after 40 epochs (validation loss 0.637 and
# 0.919); with batch norm it reaches 0.322 and 0.362, better than the plain network's best. At
# `lr = 0.2`, where the plain network died, the batch-norm network learns (0.649), and at
# `lr = 1e-5` it at least moves (1.53). At `lr = 0.01` the two end up close (0.366 and 0.351). Batch
# norm is no protection against every learning rate: at `lr = 1` both networks end at a constant
# output, and the batch-norm network has 45.8% dead units there. For `lr` ≤ 0.01 it has no dead
# unit at all: a unit whose standardised pre-activation has zero mean over every batch is
# positive for some examples, unless $\gamma$ and $\beta$ learn to push it down.
#
# Over 100 epochs at `lr = 0.01` the two models reach similar validation losses. The dashed
# training-mode loss of the batch-norm model stays well above its validation loss: in training
# mode each example is normalised with the statistics of a random batch of 128, a noise that
# disappears in eval mode: averaged over the last epoch in training mode its training loss is
# 0.431, evaluated in eval mode after it 0.331, close to its validation loss of 0.353.
#
# ## Batch size
#
# With $N$ training examples and batch size $B$ an epoch is $\lceil N/B\rceil$ optimizer steps. At
# a fixed learning rate, a small batch makes many noisy steps per epoch, a large batch a few
# accurate ones. The sweep uses `lr = 0.001`, where batch 128 learns slowly enough for differences
# to show. Batch size 1 makes 3,000 steps per epoch and is by far the slowest per epoch on a CPU,
# so it runs only `BS1_EPOCHS` = 4 epochs (12,000 steps); the others run 40 epochs. (Batch size 1
# is also why this comparison has no batch norm: `nn.BatchNorm1d` cannot compute a variance from
# one example and refuses to train on it.)

# %%
bs_rows = {}
for bs in tqdm(BATCH_SIZES, desc="batch sizes"):
    _, h = get_run(
        lr=BATCH_SIZE_LR,
        batch_size=bs,
        num_epochs=BS1_EPOCHS if bs == 1 else SWEEP_EPOCHS,
    )
    bs_rows[bs] = h
    assert h.step.iloc[0] == math.ceil(n_train / bs)

pd.DataFrame(
    {
        "batch size": BATCH_SIZES,
        "iterations per epoch": [int(bs_rows[bs].step.iloc[0]) for bs in BATCH_SIZES],
        "epochs": [len(bs_rows[bs]) for bs in BATCH_SIZES],
        "steps": [int(bs_rows[bs].step.iloc[-1]) for bs in BATCH_SIZES],
        "val loss": [fmt_loss(bs_rows[bs].val_loss.iloc[-1]) for bs in BATCH_SIZES],
        "val accuracy": [fmt_acc(bs_rows[bs].val_acc.iloc[-1]) for bs in BATCH_SIZES],
        "leaves plateau at epoch": [
            leaves_plateau(bs_rows[bs]) or "never" for bs in BATCH_SIZES
        ],
    }
).set_index("batch size")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for bs, h in bs_rows.items():
    axes[0].plot(
        h.epoch, h.val_loss, "o-" if bs == 1 else "-", ms=3, label=f"batch {bs}"
    )
    axes[1].plot(
        h.step, h.val_loss, "o-" if bs == 1 else "-", ms=3, label=f"batch {bs}"
    )
axes[0].set(
    title=f"Against epochs (lr = {BATCH_SIZE_LR:g})",
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
    ax.legend()
plt.show()

# %%
h1, h16, h128 = bs_rows[1], bs_rows[16], bs_rows[128]
epoch_128 = int(h128.epoch[h128.val_loss <= h1.val_loss.iloc[-1]].iloc[0])
step_16 = int(h16.step[h16.val_loss <= h128.val_loss.iloc[-1]].iloc[0])
print(
    f"batch 128 first reaches batch 1's final loss ({fmt_loss(h1.val_loss.iloc[-1])}) at epoch {epoch_128}"
)
print(
    f"batch 16 first reaches batch 128's final loss ({fmt_loss(h128.val_loss.iloc[-1])}) after {step_16:,} steps"
)

# %% [markdown]
# What a step costs on this machine (a measured time, so it changes from run to run and machine to
# machine; the cell's output is not compared by the tests):


# %% tags=["nbval-ignore-output"]
def seconds_per_step(batch_size, steps=200):
    model, loader = build(), make_loader(X_train, y_train, batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=BATCH_SIZE_LR)
    batches = iter(loader)
    t0 = time.perf_counter()
    for _ in range(steps):
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iter(loader)
            xb, yb = next(batches)
        optimizer.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimizer.step()
    return (time.perf_counter() - t0) / steps


for bs in BATCH_SIZES:
    s = seconds_per_step(bs)
    print(
        f"batch {bs:5d}: {1e6 * s:6.0f} µs per step, {s * math.ceil(n_train / bs):6.3f} s per epoch"
    )

# %% [markdown]
# Against epochs, that is per example seen, smaller batches win: after 4 epochs batch 1 is at
# 0.702, a loss batch 128 reaches only at epoch 36, and batch 1024 has made just 120
# steps in 40 epochs and is still on the $\ln K$ plateau (1.58). Against optimizer steps the order
# reverses: batch 128 gets to 0.637 in 960 steps, batch 16 needs 4,512 steps for the same loss and
# batch 1 is at 0.702 after 12,000. A larger batch makes a better step; a smaller batch
# makes more steps per epoch. Which wins in time depends on what a step costs: for this tiny model
# on a CPU the time per step is dominated by overhead and grows far more slowly than the batch (see
# the measurement above), so large batches are cheap per example. How far the batch can grow before extra examples stop buying
# progress per step, and how to scale the learning rate with it, is measured at scale in
# {cite}`ch06-goyal2017accurate,ch06-shallue2019measuring`; the claim that small batches also generalise
# better {cite}`ch06-keskar2017largebatch,ch06-masters2018revisiting` cannot be judged here, since the
# runs did not train to convergence.
#
# ## Depth and width
#
# Depth 1, 2, 6 and 10 at width 16, and width 8, 16, 32 and 64 at depth 6: all with Adam at
# `lr = 0.01`, batch 128, 100 epochs (the depth-6, width-16 run is the default model). The table
# gives the accuracy of the final model on each split, the spread of the validation accuracy over
# the last 10 epochs, and the epoch at which each run left the $\ln K$ plateau.

# %%
arch = [(d, 16) for d in DEPTHS] + [(6, w) for w in WIDTHS if w != 16]
arch_rows = []
for depth, width in tqdm(arch, desc="depth and width"):
    m, h = get_run(depth=depth, width=width)
    (_, ta), (vl, va), (_, sa) = (
        evaluate(m, X, y)
        for X, y in [(X_train, y_train), (X_val, y_val), (X_test, y_test)]
    )
    arch_rows.append(
        dict(
            depth=depth,
            width=width,
            params=sum(p.numel() for p in m.parameters()),
            train_acc=ta,
            val_acc=va,
            test_acc=sa,
            val_loss=vl,
            val_acc_std_last10=h.val_acc.iloc[-10:].std(),
            leaves_plateau=leaves_plateau(h),
        )
    )
arch_df = pd.DataFrame(arch_rows)
arch_df.assign(
    **{
        c: arch_df[c].map(fmt_acc)
        for c in ["train_acc", "val_acc", "test_acc", "val_acc_std_last10"]
    },
    val_loss=arch_df.val_loss.map(fmt_loss),
).set_index(["depth", "width"]).rename(
    columns={
        "val_acc_std_last10": "val acc std, last 10 epochs",
        "leaves_plateau": "leaves plateau at epoch",
    }
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
by_depth = arch_df[arch_df.width == 16].sort_values("depth")
by_width = arch_df[arch_df.depth == 6].sort_values("width")
for ax, df, col, label in [
    (axes[0], by_depth, "depth", "hidden layers (width 16)"),
    (axes[1], by_width, "width", "units per hidden layer (depth 6, log scale)"),
]:
    ax.plot(df[col], 100 * df.train_acc, "o-", label="train")
    ax.plot(df[col], 100 * df.val_acc, "s-", label="validation")
    ax.set(xlabel=label, ylabel="accuracy (%)")
    ax.legend()
axes[0].set(
    title=f"Accuracy against depth ({NUM_EPOCHS} epochs)",
    xticks=by_depth.depth.tolist(),
)
axes[1].set(title=f"Accuracy against width ({NUM_EPOCHS} epochs)", xscale="log")
axes[1].set_xticks(by_width.width.tolist(), [str(w) for w in by_width.width])
axes[1].xaxis.set_minor_formatter(NullFormatter())
plt.show()


# %%
def predictor(model):
    """numpy (n, 2) -> predicted class ids, for plots.decision_boundary."""

    @torch.no_grad()
    def predict(P):
        model.eval()
        return model(torch.as_tensor(P, dtype=torch.float32)).argmax(1).numpy()

    return predict


best = arch_df.loc[arch_df.val_acc.idxmax()]
worst = arch_df.loc[arch_df.val_acc.idxmin()]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
for ax, row, name in [(axes[0], best, "best"), (axes[1], worst, "worst")]:
    m, _ = get_run(depth=int(row.depth), width=int(row.width))
    plots.decision_boundary(
        predictor(m),
        X_val.numpy(),
        y_val.numpy(),
        ax=ax,
        resolution=300,
        margin=0.1,
        title=f"{name}: depth {int(row.depth)}, width {int(row.width)}, "
        f"val acc {fmt_acc(row.val_acc)}",
    )
    ax.set_aspect("equal")
plt.show()

# %% [markdown]
# Depth matters most between one hidden layer and two: 63.6% against 89.4% validation accuracy.
# One layer of 16 ReLUs cuts the plane into at most 137 convex pieces (next section) and its
# boundaries (right) are a few straight segments that cannot follow the arms; two layers already
# trace the spirals (left), and their errors are at the centre. Deeper is not better here: depth
# 10 ends at 83.5%, below depth 2 and 6, and its *training* accuracy is lower too (84.2%), so the
# gap is a matter of optimisation, not of overfitting. With PyTorch's default initialisation the
# signal shrinks at every layer ({eq}`eq-ch6-shrink`): the depth-10 network leaves the plateau
# later (epoch 6 against 3) and its validation accuracy wobbles more (1.8% over the last 10
# epochs); the last section shows where this leads at depth 60. One seed cannot say how large the
# gap between depth 2, 6 and 10 really is. Width, at depth 6, hardly matters
# between 8 and 64 units: the validation accuracies (85.7% to 88.0%) differ by about as much as one
# run's accuracy wobbles over its last 10 epochs (the std column), so the sweep does not rank the
# widths; it only says that 8 units per layer are already enough for this problem.
#
# ## Linear regions
#
# A ReLU network is piecewise linear: fix which units are on and which are off, and every layer is
# an affine map, so the network is affine on the set of inputs that share that *activation
# pattern*. Each such set is convex (it is cut out by one linear inequality per unit, given the
# pattern of the layers before it). For one hidden layer of $n$ units on a $d$-dimensional input,
# the boundaries are $n$ hyperplanes $w_j^\top x + b_j = 0$, and $n$ hyperplanes in general
# position divide $\mathbb{R}^d$ into at most
#
# $$
# r(n, d) = \sum_{k=0}^{d} \binom{n}{k}
# $$ (eq-ch6-regions)
#
# regions {cite}`ch06-zaslavsky1975facing`. For $n = 16$ lines in the plane that is
# $1 + 16 + 120 = 137$. A deeper network can fold the input space and have many more regions, up to
# exponentially many in the depth {cite}`ch06-montufar2014number`, though at initialisation the count
# grows only with the number of units {cite}`ch06-hanin2019complexity`.


# %%
def region_bound(n_units, in_dim):
    """Regions of n hyperplanes in general position in R^d: sum_{k=0}^{d} C(n, k)."""
    return sum(math.comb(n_units, k) for k in range(in_dim + 1))


bound_16 = region_bound(16, 2)
print(f"one hidden layer of 16 ReLUs on 2-D input: at most {bound_16} linear regions")
assert bound_16 == 1 + 16 + 120 == 137

# %% [markdown]
# To count the regions of a trained network we evaluate its activation pattern on every point of
# a $401\times401$ grid over the bounding box of the training data and count the distinct patterns.
# That is a **lower bound** on the number of regions inside the box: a region that contains no
# grid point is missed. For the one-hidden-layer network the exact count inside the box can also be
# computed: for lines in general position, a convex box is divided into $1 + L + I$ pieces, where
# $L$ is the number of lines that cross the box and $I$ the number of their intersection points
# inside it (each line adds one piece, plus one per line it crosses inside the box).

# %%
lo, hi = (
    X_train.min(0).values.numpy(),
    X_train.max(0).values.numpy(),
)  # the data's bounding box


@torch.no_grad()
def activation_regions(model, grid=GRID):
    """Label each point of a (grid+1) x (grid+1) grid over the data's box by its ReLU on/off pattern.

    Returns (number of distinct patterns, labels of shape (grid+1, grid+1), grid axes)."""
    model.eval()
    gx, gy = np.linspace(lo[0], hi[0], grid + 1), np.linspace(lo[1], hi[1], grid + 1)
    P = torch.from_numpy(
        np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2).astype(np.float32)
    )
    _, hidden = model(P, return_hidden=True)
    bits = np.packbits(
        torch.cat([a > 0 for a in hidden], dim=1).numpy(), axis=1
    )  # one row per point
    rows = (
        np.ascontiguousarray(bits).view(np.dtype((np.void, bits.shape[1]))).ravel()
    )  # row -> one value
    _, labels = np.unique(rows, return_inverse=True)
    return int(labels.max()) + 1, labels.reshape(grid + 1, grid + 1), (gx, gy)


def exact_regions_in_box(linear):
    """Exact number of pieces into which the lines w_j.x + b_j = 0 of a 2-input Linear cut the box [lo, hi]."""
    W, b = (
        linear.weight.detach().double().numpy(),
        linear.bias.detach().double().numpy(),
    )
    corners = np.array(
        [[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]], dtype=float
    )
    values = (
        corners @ W.T + b
    )  # a line crosses the (convex) box iff its sign changes over the corners
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
    f"depth 1, width 16: {n_lines} of 16 lines cross the box, {n_points} intersections inside it: "
    f"exactly 1 + {n_lines} + {n_points} = {exact} regions in the box"
)
print(
    "found on the grid: "
    + ", ".join(f"{g + 1}x{g + 1}: {c}" for g, c in grid_1.items())
)
assert max(grid_1.values()) <= exact <= bound_16

# %%
region_rows = []
for depth, width in arch:
    m, _ = get_run(depth=depth, width=width)
    region_rows.append(
        dict(
            depth=depth,
            width=width,
            hidden_units=depth * width,
            at_init=activation_regions(build(depth, width))[0],
            trained=activation_regions(m)[0],
        )
    )
regions_df = pd.DataFrame(region_rows).set_index(["depth", "width"])
assert (
    regions_df.loc[(1, 16), "trained"] <= bound_16
    and regions_df.loc[(1, 16), "at_init"] <= bound_16
)
regions_df.rename(
    columns={
        "at_init": f"regions at init ({GRID + 1}² grid)",
        "trained": f"regions trained ({GRID + 1}² grid)",
    }
)

# %%
res_counts = {
    g: activation_regions(model_def, g)[0]
    for g in [GRID // 4, GRID // 2, GRID, 2 * GRID]
}
print(
    "default model, regions found against grid size: "
    + ", ".join(f"{g + 1}x{g + 1}: {c}" for g, c in res_counts.items())
)
assert list(res_counts.values()) == sorted(
    res_counts.values()
)  # nested grids: never fewer

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
rng_colors = np.random.default_rng(SEED)
for ax, (depth, width) in zip(axes, [(1, 16), (6, 16)]):
    m, _ = get_run(depth=depth, width=width)
    count, labels, (gx, gy) = activation_regions(m)
    shuffled = rng_colors.permutation(count)[
        labels
    ]  # neighbouring regions get unrelated colours
    ax.pcolormesh(gx, gy, shuffled, cmap="tab20", shading="auto", rasterized=True)
    classes = predictor(m)(np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)).reshape(
        labels.shape
    )
    ax.contour(
        gx, gy, classes, levels=np.arange(NUM_CLASSES) + 0.5, colors="k", linewidths=0.8
    )
    ax.set(
        title=f"depth {depth}, width {width}: {count} regions found\n(colours: regions; black: class boundaries)",
        xlabel="$x_1$",
        ylabel="$x_2$",
        aspect="equal",
    )
    ax.grid(False)
plt.show()

# %% [markdown]
# The trained one-layer network has 47 regions in the box, exactly what the grid finds at both
# resolutions, well below the 137 of {eq}`eq-ch6-regions`: only 11 of its 16 lines cross the box,
# and only 35 of the 55 intersections of those lines fall inside it. Deeper networks have far
# more regions: 2,333 found for the default model, 5,019 at depth 10, 23,892 at width 64. Those
# are lower bounds, and for the large networks they are loose: the count of the default model
# still grows with the grid (1,541 on $101^2$ points, 2,512 on $801^2$), and 23,892 regions on
# 160,801 grid points leave fewer than 7 points per region. Two more observations from the table:
# training multiplies the count (for the default model, 194 regions at initialisation), and at
# initialisation depth 6 and depth 10 have the same 194 regions: with the shrinking signal of
# {eq}`eq-ch6-shrink`, the units of the deeper layers barely switch inside the box. The picture
# shows where training put its pieces: the regions of the default model are small in the middle
# of the data, where the class boundaries (black) wind around the centre, and large in the
# corners, where the output does not need to change.
#
# ## Vanishing gradients
#
# Backpropagation multiplies the gradient by one Jacobian per layer. For a plain ReLU layer
# $h_l = \mathrm{ReLU}(W_l h_{l-1} + b_l)$ and a residual one
# $h_l = h_{l-1} + \alpha\,\mathrm{ReLU}(W_l h_{l-1} + b_l)$,
#
# $$
# \frac{\partial h_l}{\partial h_{l-1}} = D_l W_l \quad\text{(plain)}, \qquad
# \frac{\partial h_l}{\partial h_{l-1}} = I + \alpha\, D_l W_l \quad\text{(residual)},
# $$ (eq-ch6-jacobians)
#
# with $D_l$ the diagonal matrix of $\mathrm{ReLU}'$ (1 for active units, 0 otherwise). Under
# PyTorch's default initialisation the plain Jacobian shrinks a gradient's squared norm by the same
# factor $1/6$ as {eq}`eq-ch6-shrink` on average: $\sqrt{1/6}\approx 0.408$ per layer, so after 60
# layers about $10^{-23}$ {cite}`ch06-glorot2010understanding,ch06-he2015delving`. The identity in the
# residual Jacobian {cite}`ch06-he2016resnet` gives the gradient a path that no layer can shrink. But
# the residual branches add up: with $\alpha = 1$ sixty non-negative ReLU outputs pile onto $h$.
# So we also try $\alpha = 1/\sqrt{60}$, which keeps the total variance the 60 branches add of the
# order of one branch's; that the residual modules of a deep network must be scaled for it to start
# training is one of the results of {cite}`ch06-hanin2018start`.
#
# Three networks with 60 hidden layers of 16 units and *the same initial weights*: plain, residual,
# and residual with scaled branches. We measure $\lVert\partial L/\partial W_l\rVert$ for every
# layer on the whole training set, in float64 (the cell also shows what float32 makes of the
# smallest one).


# %%
def layer_grad_norms(model, X=X_train, y=y_train, dtype=torch.float64):
    """||dL/dW|| of every nn.Linear (hidden layers, then the head) for the loss on (X, y), eval mode,
    computed on a copy of the model in ``dtype``."""
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
for (
    m
) in deep_models.values():  # the same initial weights: only the skip connections differ
    assert all(
        torch.equal(p, q)
        for p, q in zip(m.parameters(), deep_models["plain"].parameters())
    )
grad_norms = {name: layer_grad_norms(m) for name, m in deep_models.items()}
g32 = layer_grad_norms(deep_models["plain"], dtype=torch.float32)
print(
    f"plain network, first layer: {grad_norms['plain'][0]:.2g} in float64, {g32[0]:.2g} in float32"
)
for name, m in deep_models.items():
    print(
        f"{name:17s} loss at initialisation {evaluate(m, X_val, y_val)[0]:.3g}, "
        f"logit spread {logit_spread(m):.2g}"
    )

layers = np.arange(1, DEEP_DEPTH + 2)
fig, ax = plt.subplots()
for (name, g), marker in zip(grad_norms.items(), "os^"):
    ax.semilogy(layers, g, marker + "-", ms=3, label=name)
ax.set(
    title=f"Gradient norm per layer at initialisation, {DEEP_DEPTH} hidden layers of 16",
    xlabel="layer (1 = next to the input, 61 = output layer)",
    ylabel="||∂L/∂W||  (log scale)",
)
ax.legend()
plt.show()
show = [1, 2, 5, 10, 20, 30, 40, 50, 60, 61]
pd.DataFrame(
    {name: [f"{g[i - 1]:.2g}" for i in show] for name, g in grad_norms.items()},
    index=pd.Index(show, name="layer"),
).T

# %%
inner = (layers >= 10) & (layers <= DEEP_DEPTH - 5)
factor = math.exp(-np.polyfit(layers[inner], np.log(grad_norms["plain"][inner]), 1)[0])
g_s = grad_norms["residual, scaled"]
hidden_ratio = g_s[:DEEP_DEPTH].max() / g_s[:DEEP_DEPTH].min()
print(
    f"plain: the gradient norm shrinks by a factor {factor:.3f} per layer towards the input "
    f"(sqrt(1/6) = {math.sqrt(1 / 6):.3f})"
)
print(
    f"first layer, scaled residual / plain: {g_s[0] / grad_norms['plain'][0]:.1e}; "
    f"scaled residual, largest / smallest hidden layer: {hidden_ratio:.1f}"
)
assert abs(factor - math.sqrt(1 / 6)) < 0.03
assert g_s[0] / grad_norms["plain"][0] > 1e20 and hidden_ratio < 10
assert (
    grad_norms["residual"].min() > 1e3
)  # unscaled residual: nothing vanishes, but everything is large

# %% [markdown]
# In the plain network the gradient norm falls by a factor 0.402 per layer towards the input, the
# $\sqrt{1/6} = 0.408$ predicted above, down to $1.9\times10^{-26}$ at the first layer; in float32 it
# is exactly 0, so the first layers of this network cannot learn at all. Both residual networks
# cure the vanishing: their gradient norms are about the same at every depth. But with
# $\alpha = 1$ they are $10^4$ to $10^5$, because the forward signal has exploded instead (its
# loss at initialisation is far above $\ln K$); with $\alpha = 1/\sqrt{60}$ they stay between 0.04
# and 0.2 in every hidden layer, and the first layer gets $4\times10^{24}$ times the plain
# network's gradient. Does it matter for training? All three, 12 epochs at `lr = 0.01`:

# %%
deep_hist = {}
for name, kw in tqdm(deep.items(), desc=f"{DEEP_DEPTH}-layer networks"):
    deep_hist[name] = train(
        build(DEEP_DEPTH, 16, **kw),
        lr=LR,
        batch_size=BATCH_SIZE,
        num_epochs=DEEP_EPOCHS,
    )
fig, ax = plt.subplots()
for name, h in deep_hist.items():
    ax.plot(h.epoch, h.val_loss, label=name)
ax.axhline(math.log(NUM_CLASSES), color="k", ls=":", lw=1, label="ln K")
ax.set(
    title=f"{DEEP_DEPTH} hidden layers of 16, lr = {LR:g}",
    xlabel="epoch",
    ylabel="validation loss (nats)",
    yscale="log",
)
ax.legend()
plt.show()
deep_table = pd.DataFrame(
    {
        name: {
            "val loss": fmt_loss(h.val_loss.iloc[-1]),
            "val accuracy": fmt_acc(h.val_acc.iloc[-1]),
        }
        for name, h in deep_hist.items()
    }
)
assert (
    deep_hist["residual, scaled"].val_acc.iloc[-1]
    > deep_hist["plain"].val_acc.iloc[-1] + 0.5
)
deep_table

# %% [markdown]
# The plain 60-layer network does not move from $\ln K$ (18.7%, one class everywhere). The
# unscaled residual network starts far above $\ln K$, spends its epochs bringing the exploded
# output down, and after 12 epochs is barely better than chance. The scaled residual network
# trains like the 6-layer default model: 86.1% after 12 epochs. Skip connections remove the
# vanishing gradient; keeping the forward signal at a sensible size is a separate job, done here
# by scaling the branches and in practice also by normalisation layers and initialisation.
#
# ## Summary
#
# - A flat loss curve at $\ln K$ has more than one cause, and measurements tell them apart. With
#   `lr` = 1 or 0.2 the network **died**: a whole layer of dead ReLUs, a constant output, a loss
#   no better than the best constant prediction. With `lr = 1e-5` it **did not move**: parameters
#   2% away from their initial values, the loss at initialisation still $\ln K$ because PyTorch's
#   default initialisation shrinks the signal by about $\sqrt 6$ per layer.
# - The default model (6 × 16, Adam, `lr = 0.01`, batch 128) reaches 87–90% accuracy on every
#   split after 100 epochs without overfitting; its errors sit at the centre, where the classes
#   overlap.
# - Batch norm restores a unit-size signal in every layer, removes the dead units for moderate
#   learning rates and widens the range of learning rates that train; it does not rescue `lr = 1`.
# - Against epochs small batches progress faster, against steps large ones do; which is faster in
#   time depends on the cost of a step.
# - Going from one hidden layer to two gives the big jump here (64% to 89%); more depth, at this
#   initialisation and budget, does not help, and width between 8 and 64 makes no difference we
#   can resolve.
# - A one-layer ReLU network of 16 units has at most 137 linear regions in the plane (47 in the
#   box for ours); deeper trained networks have thousands, concentrated where the boundaries bend.
# - In a plain 60-layer network the gradient shrinks by the predicted 0.41 per layer (to exactly 0
#   in float32 at the first layer); residual connections cure this, and scaling the residual
#   branches keeps the forward signal from exploding, so the network trains.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-ch6-bound
#
# Show that $r(n, d) = \sum_{k=0}^{d}\binom{n}{k}$ of {eq}`eq-ch6-regions` equals $2^n$ when
# $n \le d$. What does that say about a one-hidden-layer network whose width is at most its input
# dimension? How many regions can 16 units make on a 16-dimensional input, and on a 2-dimensional
# one?
# ```
#
# ```{solution} ex-ch6-bound
# :class: dropdown
#
# For $n \le d$ the terms with $k > n$ are 0, so $r(n, d) = \sum_{k=0}^{n}\binom{n}{k} = 2^n$ by
# the binomial theorem: every one of the $2^n$ on/off patterns occurs (for hyperplanes in general
# position, e.g. linearly independent normals). On a 16-dimensional input, 16 units can make
# $2^{16} = 65{,}536$ regions; on a 2-dimensional input only $r(16, 2) = 137$, because in the plane
# most patterns are geometrically impossible. The code cell after the exercises checks both numbers
# with `region_bound`.
# ```
#
# ```{exercise}
# :label: ex-ch6-dead-init
#
# The table in the learning-rate section shows 37.5% (6 of 16) dead units in the first hidden layer
# *before training*. With PyTorch's default initialisation the first layer ($n = 2$ inputs) has
# $w \sim U(-1/\sqrt2, 1/\sqrt2)^2$ and $b \sim U(-1/\sqrt2, 1/\sqrt2)$. Estimate by simulation the
# probability that such a unit is dead on our training set. Is 6 of 16 surprising?
# ```
#
# ```{solution} ex-ch6-dead-init
# :class: dropdown
#
# Draw many $(w, b)$ pairs and check whether $w^\top x + b \le 0$ for all 3,000 training points $x$.
# The code cell after the exercises does it for 20,000 units: the probability is about 12%
# (roughly the chance that $b < -\lVert w\rVert$, since the data fill a disc of radius about 1).
# With 16 independent units the number of dead ones is binomial, and 6 or more has a probability
# of about 1%: our seed drew an unlucky first layer. That is one reason to look at several seeds
# before reading much into a single run.
# ```
#
# ```{exercise}
# :label: ex-ch6-bn-batch1
#
# Why does the batch-size sweep run without batch norm? Try `nn.BatchNorm1d(16)` in training mode on
# a batch of one example and explain the error from {eq}`eq-ch6-bn`. Would eval mode work?
# ```
#
# ```{solution} ex-ch6-bn-batch1
# :class: dropdown
#
# With $|B| = 1$, $\mu_B = z$ and $\sigma_B^2 = 0$, so $\hat z = \beta$ for every input: the layer
# would erase the input, and the running variance would be updated with an undefined unbiased
# variance ($0/0$). PyTorch refuses: `ValueError: Expected more than 1 value per channel when
# training` (checked below). In eval mode the layer uses its running statistics, an affine map
# that works for any batch size, including one example; this is also how a trained batch-norm model
# predicts a single input.
# ```
#
# ```{exercise}
# :label: ex-ch6-he
#
# Repeat the gradient measurement of the 60-layer plain network with He initialisation
# {cite}`ch06-he2015delving` (`nn.init.kaiming_normal_(weight, nonlinearity="relu")` and zero biases in
# every `nn.Linear`). By how much does the gradient norm change per layer now? Predict the answer
# from the argument of {eq}`eq-ch6-shrink` first.
# ```
#
# ```{solution} ex-ch6-he
# :class: dropdown
#
# He initialisation has weight variance $2/n$, so the factor of {eq}`eq-ch6-shrink` becomes
# $n\cdot\frac{2}{n}\cdot\frac12 = 1$: on average the gradient keeps its size from layer to layer.
# The code cell below measures it: the first and the last hidden layer's gradient norms differ by
# about a factor of 2, against $10^{24}$ with the default initialisation. Whether the
# network then also *trains* in 12 epochs is worth trying yourself: for fully connected ReLU
# networks the right variance avoids one failure mode at the start of training but not a second
# one, which grows with the sum of the reciprocal layer widths, here $60/16$ {cite}`ch06-hanin2018start`.
# ```

# %%
# Checks of the solutions above.
assert (
    region_bound(3, 5) == 2**3
    and region_bound(16, 16) == 2**16 == 65_536
    and region_bound(16, 2) == 137
)

rng = np.random.default_rng(SEED)
a = 1 / math.sqrt(2)
w, b = rng.uniform(-a, a, size=(20_000, 2)), rng.uniform(-a, a, size=20_000)
hull = X_train.numpy().astype(np.float64)
hull = hull[
    ConvexHull(hull).vertices
]  # a linear function's maximum over the points is at a hull vertex
p_dead = float(((hull @ w.T + b) <= 0).all(axis=0).mean())
p_6_or_more = sum(
    math.comb(16, k) * p_dead**k * (1 - p_dead) ** (16 - k) for k in range(6, 17)
)
print(
    f"P(first-layer unit dead at initialisation) ≈ {p_dead:.2f}; P(6 or more of 16 dead) ≈ {p_6_or_more:.2f}"
)
assert 0.09 < p_dead < 0.15 and p_6_or_more < 0.06

try:
    nn.BatchNorm1d(16).train()(torch.randn(1, 16))
except ValueError as err:
    print("BatchNorm1d, training mode, one example:", str(err).split(",")[0])
assert nn.BatchNorm1d(16).eval()(torch.randn(1, 16)).shape == (1, 16)

he = build(DEEP_DEPTH, 16)
for module in he.modules():
    if isinstance(module, nn.Linear):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.zeros_(module.bias)
g_he = layer_grad_norms(he)
print(
    f"He initialisation: first / last hidden layer gradient norm {g_he[0] / g_he[DEEP_DEPTH - 1]:.2g}"
)
assert 0.1 < g_he[0] / g_he[DEEP_DEPTH - 1] < 10

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch06-
# ```
