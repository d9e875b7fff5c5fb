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
# # Chapter 1.2: What the batch size changes
#
# [Chapter 1.1](01_1_computational_graph.ipynb) built a reverse-mode autodiff engine and
# trained logistic regression with it, one sample at a time and in minibatches. Minibatches
# of 64 made 64 times fewer updates per epoch and fell more slowly per epoch. Is that a bad
# trade? In this lecture we train batch sizes from 1 to 1024, each with several seeds, and
# measure what the batch size changes: the loss per epoch and per update, the test accuracy
# and the decision boundaries, and the time per epoch on a CPU. Then we test two common
# recipes by their results: giving every batch size the same number of updates, and scaling
# the learning rate linearly with the batch size.
#
# **Learning objectives.** After this lecture you can
#
# - train a model with several seeds at once and compare batch sizes seed by seed;
# - tell the number of updates per epoch, the cost of an update and the gradient noise apart
#   as the effects of the batch size, and measure each;
# - test the equal-updates control and the linear learning-rate scaling rule, and predict
#   from the Hessian's largest eigenvalue where the rule fails.
#
# **Prerequisites:** [chapter 1.1](01_1_computational_graph.ipynb) (the engine, the data,
# the training loop, and the noise of a minibatch gradient).
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
SEED = 0  # seeds the data; training run k uses the seed SEED + k
# The data of chapter 1.1: two Gaussian classes in the plane
N_TRAIN = 2048
N_TEST = 10_000  # only evaluated, so a large test set is cheap
# The batch-size study (the setup of the source assignment), each batch size with
# N_SEEDS seeds trained together. Batch size 1 for 50 epochs is
# NUM_EPOCHS * N_TRAIN = 102,400 single-sample updates in Python, the lecture's main
# cost. This runs on the CPU only (NumPy); a faster machine may raise N_TRAIN and
# N_SEEDS.
BATCH_SIZES = [1, 4, 8, 16, 64, 128, 256, 512, 1024]
NUM_EPOCHS = 50
LR = 0.03
N_SEEDS = 3
# The linear scaling rule: lr = LR * B for these batch sizes (4 and 8 are left out for
# time; a faster machine may add them)
SCALED_BATCH_SIZES = [16, 64, 128, 256, 512, 1024]
# The control at an equal number of updates: every batch size gets CONTROL_UPDATES
# updates, with CONTROL_SEEDS shuffles from the same initial parameters.
CONTROL_UPDATES = 100
CONTROL_SEEDS = 5
# Timing: epochs per batch size (one seed), and one training step for batch sizes beyond
# the training set (resampled points), best of TIMING_REPEATS
TIMING_EPOCHS = 3
TIMING_BATCH_SIZES = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]
TIMING_REPEATS = 3

# %%
import itertools
import math
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import course_utils.runtime
from course_utils import graph as G
from course_utils import plots, stats
from course_utils.plots import COLUMN_WIDTH

np.set_printoptions(precision=4, suppress=True)
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# ## The data, the model and the training loop
#
# The data are chapter 1.1's: `N_TRAIN` = 2048 training and 10,000 test points from two
# Gaussian classes, drawn with the same seed. The folded cell makes them, the Bayes-optimal
# rule and the minimum training loss (Newton's method on {eq}`eq-bce-hessian`), as there. The training set is large enough for a batch of
# 1024 to be a real minibatch (two updates per epoch), and with 10,000 test points a test
# accuracy has a {term}`standard error` of about 0.3 percentage points.

# %% tags=["hide-input"]
MU = np.array([[-0.5, 2.0], [1.5, 0.5]])  # class means, one row per class


def make_two_gaussians(n, rng):
    """n points, classes balanced and shuffled: x ~ N(MU[y], I)."""
    y = rng.permutation(np.arange(n) % 2)
    return MU[y] + rng.normal(size=(n, 2)), y


data_rng = np.random.default_rng(SEED)
X_train, y_train = make_two_gaussians(N_TRAIN, data_rng)
X_test, y_test = make_two_gaussians(N_TEST, data_rng)
u_bayes = MU[1] - MU[0]
u0_bayes = -u_bayes @ MU.sum(axis=0) / 2


def bayes_predict(X):
    return (X @ u_bayes + u0_bayes > 0).astype(int)


bayes_acc_train = np.mean(bayes_predict(X_train) == y_train)
bayes_acc_test = np.mean(bayes_predict(X_test) == y_test)
std_error = math.sqrt(bayes_acc_test * (1 - bayes_acc_test) / N_TEST)
X_tilde = np.column_stack([X_train, np.ones(N_TRAIN)])


def bce_hessian(theta):
    """The Hessian of the mean BCE at theta = (W, b), eq-bce-hessian."""
    s = 1 / (1 + np.exp(-X_tilde @ theta))
    return (X_tilde.T * (s * (1 - s))) @ X_tilde / N_TRAIN


theta = np.zeros(3)
for _ in range(20):  # Newton's method
    s = 1 / (1 + np.exp(-X_tilde @ theta))
    theta -= np.linalg.solve(bce_hessian(theta), X_tilde.T @ (s - y_train) / N_TRAIN)
z_opt = X_tilde @ theta
LOSS_OPT = float(
    np.mean(np.maximum(z_opt, 0) - z_opt * y_train + np.log1p(np.exp(-np.abs(z_opt))))
)
print(
    f"train {X_train.shape}, test {X_test.shape}; minimum training loss {LOSS_OPT:.4f}"
)
print(f"Bayes-optimal accuracy: train {bayes_acc_train:.1%}, test {bayes_acc_test:.1%}")
print(f"standard error of a test accuracy: {std_error:.1%}")

# %% [markdown]
# The model is chapter 1.1's Input → Linear → Sigmoid → BCE, and the loop is chapter 1.1's
# `train`. Another {term}`seed` gives other initial parameters and another order of the
# samples, so every batch size is trained with `N_SEEDS` = 3 seeds (run $k$ draws its
# initial parameters and its shuffles from the seed `SEED + k`). The
# seeds train together, as one model with a leading seed axis: `Linear` gets one generator
# per seed and holds weights of shape `(S, 1, 2)` for `S` seeds, each seed draws its own
# minibatch, a batch has shape `(S, B, 2)`, the loss has one value per seed, and one batched
# matrix product per step serves all of them. Seed $k$ computes exactly what it computes
# alone (`course_utils.graph` tests this), at the cost of about one run. The loop also
# records each epoch's CPU time, and can stop after `num_updates` updates.


# %%
@dataclass
class Model:
    x: G.Input
    y: G.Input
    p: G.Node
    loss: G.Node
    params: list


def build_model(seeds):
    """Input -> Linear -> Sigmoid -> BCE, one model per seed (a leading seed axis)."""
    x, y = G.Input("x"), G.Input("y")
    init = [np.random.default_rng(s) for s in seeds]  # seed s: its own initial W
    logits = G.Linear(x, 2, 1, init="xavier", rng=init, name="linear")
    p = G.Sigmoid(logits, name="p")
    loss = G.BinaryCrossEntropy(p, y, name="bce")  # one mean BCE per seed
    return Model(x, y, p, loss, G.parameters(loss))


def evaluate(model, X, y):
    """Per seed: (mean BCE, accuracy) on (X, y), two arrays of shape (S,)."""
    model.x.value, model.y.value = X, y  # one batch, shared by every seed
    loss = G.forward(model.loss)
    return loss, np.mean((model.p.value[..., 0] > 0.5) == y, axis=-1)


# %% [markdown]
# The loop differs from chapter 1.1's in two places: each seed shuffles the samples with
# its own generator, and the indices of a step, `order[:, start : start + batch_size]`,
# pick one minibatch per seed.


# %%
@dataclass
class Run:
    model: Model
    losses: list  # per epoch (entry 0: before training): training loss of each seed
    updates: list  # updates made by the end of each epoch
    seconds: list  # CPU seconds of each epoch


def train(batch_size, lr, seeds, num_epochs=NUM_EPOCHS, num_updates=None, inits=None):
    """Minibatch SGD on (X_train, y_train), the runs of `seeds` together. Seed s
    shuffles the samples and, unless `inits` gives other seeds, draws the initial W."""
    model = build_model(seeds if inits is None else inits)
    rngs = [np.random.default_rng(s) for s in seeds]
    run = Run(model, [evaluate(model, X_train, y_train)[0]], [0], [])
    for _ in range(num_epochs) if num_epochs else itertools.count():
        order = np.stack([rng.permutation(N_TRAIN) for rng in rngs])  # (S, N)
        start_time, updates = time.process_time(), run.updates[-1]
        for start in range(0, N_TRAIN, batch_size):
            idx = order[:, start : start + batch_size]  # (S, B): one batch per seed
            model.x.value, model.y.value = X_train[idx], y_train[idx]
            G.forward(model.loss)
            G.backward(model.loss)  # each seed: the gradient of its own loss
            for prm in model.params:
                prm.value -= lr * prm.grad
            updates += 1
            if updates == num_updates:
                break
        run.seconds.append(time.process_time() - start_time)
        run.updates.append(updates)
        run.losses.append(evaluate(model, X_train, y_train)[0])
        if updates == num_updates:
            break
    run.losses = np.array(run.losses)  # shape (epochs + 1, S)
    return run


# %% tags=["remove-input"]
together = train(64, LR, [SEED, SEED + 1], num_epochs=2)
for k, s in enumerate([SEED, SEED + 1]):
    alone = train(64, LR, [s], num_epochs=2)
    np.testing.assert_allclose(together.losses[:, k], alone.losses[:, 0], rtol=1e-12)
    for p_both, p_alone in zip(together.model.params, alone.model.params):
        np.testing.assert_allclose(p_both.value[k], p_alone.value[0], rtol=1e-12)
print(
    "Checked: two seeds trained together end where each ends alone (B = 64, 2 epochs)."
)

# %% [markdown]
# (sec-ch01-study)=
# ## The batch-size study
#
# The source assignment's setup: batch sizes 1, 4, 8, 16, 64, 128, 256, 512 and 1024, 50
# epochs each, learning rate 0.03, every batch size with the same seeds, so that the runs of
# one seed start from the same parameters and see the samples in the same order (they are
# paired). The table shows, per batch size, the updates made, the final training loss in
# percent above the minimum, and the test accuracy: the mean over the seeds and, in
# brackets, the lowest and highest seed. (A helper in the folded cell formats such tables.)

# %% tags=["hide-input"]
FORMATS = {  # column: (format, header)
    "updates": (".0f", "updates"),
    "lr": (".2f", "lr"),
    "above min": (".2f", "above min (%)"),
    "train acc": (".1f", "train acc (%)"),
    "test acc": (".1f", "test acc (%)"),
    "gap": (".1f", "gap (points)"),
}


def table_over_seeds(runs, *columns, by="B"):
    """One row per batch size: each column's mean over the seeds and its range, as text
    (only the mean where every seed has the same value)."""
    table = {}
    for col in columns:
        fmt, header = FORMATS[col]
        s = stats.summarize(runs, by, col)
        same = (s["min"] == s["max"]).all()
        table[header] = [
            f"{m:{fmt}}" if same else stats.mean_range(runs[runs[by] == i][col], fmt)
            for i, m in zip(s.index, s["mean"])
        ]
    return pd.DataFrame(table, index=s.index).to_string()


# %%
SEEDS = [SEED + k for k in range(N_SEEDS)]
study = {b: train(b, LR, SEEDS) for b in tqdm(BATCH_SIZES, desc="batch sizes")}
rows = []
for b, run in study.items():
    acc_train, acc_test = (
        evaluate(run.model, X, y)[1] for X, y in ((X_train, y_train), (X_test, y_test))
    )
    for k, seed in enumerate(SEEDS):
        curve = run.losses[:, k]  # training loss after each epoch
        reached = np.flatnonzero(curve <= 1.01 * LOSS_OPT)  # within 1 % of the minimum
        first = reached[0] if reached.size else None
        rows.append(
            {
                "B": b,
                "seed": seed,
                "updates": run.updates[-1],
                "epochs to 1%": np.inf if first is None else first,
                "updates to 1%": np.inf if first is None else run.updates[first],
                "train loss": curve[-1],
                "last 10 range": np.ptp(curve[-10:]),
                "train acc": 100 * acc_train[k],
                "test acc": 100 * acc_test[k],
            }
        )
runs = pd.DataFrame(rows)
runs["above min"] = 100 * (runs["train loss"] / LOSS_OPT - 1)
print(f"learning rate {LR}, {NUM_EPOCHS} epochs, seeds {SEEDS}: mean (range)")
print(table_over_seeds(runs, "updates", "above min", "test acc"))
print(f"minimum training loss {LOSS_OPT:.4f} ('above min': % above it)")

# %% [markdown]
# The batch sizes that get within 1 % of the minimum training loss in every run, and when
# (the first epoch after which the loss is that close, and the number of updates made by
# then; the range over the seeds), and how much the training loss still moves over the last
# 10 epochs:

# %%
FAST = [1, 4, 8, 16]
fast = runs[runs["B"].isin(FAST)]
assert np.isfinite(fast["epochs to 1%"]).all()  # every run of B <= 16 gets there
assert (runs[runs["B"] >= 128]["epochs to 1%"] == np.inf).all()  # B >= 128: none
print(f"{'B':>5} {'epochs to 1%':>14} {'updates to 1%':>16}")
for b, g in fast.groupby("B"):
    e, u = g["epochs to 1%"], g["updates to 1%"]
    print(
        f"{b:>5} {e.min():>7.0f} to {e.max():<3.0f} {u.min():>8.0f} to {u.max():<5.0f}"
    )
# B = 4 to 16 need about the same number of updates: within a seed, they differ by
# at most one epoch of B = 4 (the loss is measured once per epoch)
for seed, g in fast[fast["B"] >= 4].groupby("seed"):
    assert np.ptp(g["updates to 1%"]) <= N_TRAIN / 4, seed
jitter = runs.groupby("B")["last 10 range"].agg(["min", "max"])
assert jitter.loc[1, "min"] > 5 * jitter.loc[[8, 16], "max"].max()
print("training loss over the last 10 epochs, range (max - min), lowest to highest:")
for b in FAST:
    print(f"  B = {b:>2}: {jitter.loc[b, 'min']:.4f} to {jitter.loc[b, 'max']:.4f}")

# %% [markdown]
# The training loss of every batch size, per epoch and per update (the runs with seed
# `SEED`; the figure code is folded):

# %% tags=["hide-input"]
fig, (ax_e, ax_u) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 8), sharey=True)
colors = plt.get_cmap("viridis")(np.linspace(0, 0.95, len(BATCH_SIZES)))
for color, b in zip(colors, BATCH_SIZES):
    run = study[b]
    label = f"B = {b}"
    ax_e.plot(range(len(run.losses)), run.losses[:, 0], color=color, label=label)
    ax_u.plot(run.updates[1:], run.losses[1:, 0], color=color, label=label)
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
# * **Per epoch** (top panel), the small batches get further: batch sizes 1 to 16 get within
#   1 % of the minimum in 1 to 16 epochs (second table), 64 ends about 1 % above it after 50
#   epochs, and 128 and above further away; batch size 1024 ends on average 49 % above the
#   minimum, between 32 % and 62 % depending on the seed (first table): 100 updates leave it
#   close to wherever its initial parameters were.
# * **Per update** (bottom panel), the curves lie on top of each other: after the same number
#   of updates, every batch size has reached about the same loss. A batch of 1024 computes a
#   much better estimate of the gradient than a batch of 1, but at this learning rate a
#   better estimate buys almost nothing: the progress per update is limited by the step
#   size, not by the noise. The second table puts a number on it: batch sizes 4 to 16 need
#   1536 to 2560 updates to get within 1 % of the minimum, so the number of epochs they need
#   grows in proportion to $B$.
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
# The test accuracy stays close to the Bayes rule's, except for the largest batches. Below:
# its range over all runs, the train-test gaps ({term}`generalization gap`), how different
# the classifiers really are, counted as the test points on which two models disagree, and
# each model's bias $b$, which starts at 0 and should reach the minimum's.


# %%
def predict(model, X):
    """Predicted classes of every seed's model, shape (S, len(X))."""
    model.x.value = X
    return (G.forward(model.p)[..., 0] > 0.5).astype(int)  # forward(p) needs no labels


preds = {b: predict(run.model, X_test) for b, run in study.items()}
k_of = {seed: k for k, seed in enumerate(SEEDS)}
runs["gap"] = runs["train acc"] - runs["test acc"]
runs["differs from B=1"] = [
    np.sum(preds[b][k_of[s]] != preds[1][k_of[s]]) for b, s in zip(runs.B, runs.seed)
]
runs["differs from Bayes"] = [
    np.sum(preds[b][k_of[s]] != bayes_predict(X_test))
    for b, s in zip(runs.B, runs.seed)
]
runs["bias"] = [
    study[b].model.params[1].value[k_of[s], 0] for b, s in zip(runs.B, runs.seed)
]
bayes_gap = 100 * (bayes_acc_train - bayes_acc_test)

# %%
print(f"test accuracy over all runs: {runs['test acc'].min():.1f}% to", end=" ")
print(f"{runs['test acc'].max():.1f}%; Bayes rule {bayes_acc_test:.1%}")
print(f"(standard error {std_error:.1%}, two standard errors {2 * std_error:.1%})")
print(f"the Bayes rule's own gap (train acc - test acc): {bayes_gap:.1f} points")
per_b = runs.groupby("B")
table = pd.DataFrame(
    {
        "gap (points)": per_b["gap"].apply(stats.mean_range),
        "vs B=1": per_b["differs from B=1"].mean().round().astype(int),
        "vs Bayes": per_b["differs from Bayes"].mean().round().astype(int),
        "bias b": per_b["bias"].mean().round(3),
    }
)
print(f"the gap (mean and range); test points (of {N_TEST}) classified differently")
print("from B = 1 and from the Bayes rule, and the bias, means over the seeds:")
print(table.to_string())
print(f"(the bias of the minimum: {theta[2]:.3f})")
big = runs[runs["B"] == 1024]
lost = 100 * bayes_acc_test - big["test acc"]
print(
    f"B = 1024: {big['differs from Bayes'].mean() / N_TEST:.0%} of the test points",
    end=" ",
)
print(
    f"differ from the Bayes rule; accuracy lost: {lost.mean():.1f} points on", end=" "
)
print(f"average, {lost.max():.1f} at most")

# %% tags=["remove-input"]
up_to_128 = runs[runs["B"] <= 128]
off_bayes = abs(up_to_128["test acc"] - 100 * bayes_acc_test)
assert (off_bayes < 2 * 100 * std_error).all()  # within two standard errors
means = runs.groupby("B")[["differs from Bayes", "bias", "gap"]].mean()
assert (
    means.loc[1024, "differs from Bayes"]
    > 4 * means.loc[4:64, "differs from Bayes"].max()
)
assert big["bias"].mean() < 0.5 * theta[2]  # the bias is far from its optimum
# the points that differ lie near the boundary: they cost less accuracy than their count
assert (lost < 100 * big["differs from Bayes"] / N_TEST).all()
# the gaps up to B = 128 are the Bayes rule's own, to within a point
assert (abs(up_to_128["gap"] - bayes_gap) < 1).all()
print(
    "Checked: every run up to B = 128 is within two standard errors of the Bayes rule's"
    " test accuracy, with a gap within a point of the Bayes rule's own; B = 1024 "
    "differs"
    " from the Bayes rule on more than four times as many points as any of B = 4 to 64."
)

# %% [markdown]
# ### Decision boundaries and confusion matrices
#
# The boundaries of batch sizes 1, 64, 256 and 1024 (the runs with seed `SEED`), over the
# first 1000 test points, with the Bayes-optimal boundary dashed; the figure code is folded:

# %% tags=["hide-input"]
SHOWN = [1, 64, 256, 1024]
test_acc = runs.set_index(["B", "seed"])["test acc"]
xs = np.linspace(X_test[:1000, 0].min(), X_test[:1000, 0].max(), 2)
fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 7.2), sharex=True, sharey=True)
for ax, b in zip(axes.flat, SHOWN):
    m = study[b].model
    plots.decision_boundary(
        lambda grid, m=m: predict(m, grid)[0],
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
# The confusion matrices of the same runs, on the whole test set (figure code folded), and
# below them, for every seed, the two kinds of error: true class 1 predicted as 0, against
# true class 0 predicted as 1.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 2, figsize=(COLUMN_WIDTH, 6.0))
for ax, b in zip(axes.flat, SHOWN):
    plots.confusion_matrix(
        y_test,
        preds[b][0],
        ["class 0", "class 1"],
        normalize=False,
        ax=ax,
        title=f"B = {b} (test set, counts)",
    )
plt.show()

# %%
print(f"{'B':>5} | errors on class 1 / errors on class 0, one pair per seed | ratios")
for b in SHOWN:
    misses = [
        (np.sum(p[y_test == 1] == 0), np.sum(p[y_test == 0] == 1)) for p in preds[b]
    ]
    pairs = ", ".join(f"{m1} / {m0}" for m1, m0 in misses)
    ratios = [m1 / m0 for m1, m0 in misses]
    print(f"{b:>5} | {pairs} | {min(ratios):.1f} to {max(ratios):.1f}")
    if b == 64:  # split evenly between the classes
        assert all(0.8 < r < 1.25 for r in ratios)
    if b == 1024:  # lopsided
        assert max(max(ratios), 1 / min(ratios)) > 1.3

# %% [markdown]
# For batch sizes up to 128 every run's test accuracy lies within two standard errors
# (0.6 points) of the Bayes rule's 89.1 %. The classifiers are not identical, though: batch
# sizes 4 to 64 classify a few dozen test points differently from the Bayes rule (40 to 64
# on average), batch size 1 more (113, its jitter), and the largest batches hundreds (495
# for 1024). The boundaries show why. For small batches they lie almost on the Bayes-optimal
# line; for 1024 the boundary is visibly off it, because its bias, which starts at 0 and
# should reach 1.034, is still at 0.08 on average after only 100 small updates. The
# confusion counts say the same in numbers: for batch size 64 the errors are split evenly
# between the classes, while those of 1024 are lopsided, here 1.5 to 2.3 times as many on
# class 1 as on class 0 (which class it misses more depends on where the boundary has got
# to). Most of the shifted points lie near the boundary, where either answer is right about
# half of the time, so they cost less accuracy than their number suggests: 1024 disagrees
# with the Bayes rule on 5 % of the test set and loses 1.0 points of accuracy on average
# (1.9 in the worst seed). The train-test gaps (1.5 to 1.7 points on average up to
# $B = 128$) are the Bayes rule's own 2.0 points, to within a point: this training sample
# happens to be a little easier than the test sample, for every model that fits it well.
#
# (sec-ch01-timing)=
# ## Time per epoch: does batching pay on a CPU?
#
# We time `TIMING_EPOCHS` = 3 epochs of one seed's run at every batch size and keep the
# fastest, in CPU time (which other programs on the machine disturb less than the
# wall-clock time). The times change from machine to machine and from run to run;
# the conclusions drawn from them hold by large margins.

# %% tags=["nbval-ignore-output"] ignore_reason="wall-clock times vary by machine and by run"
epoch_seconds = pd.Series(
    {
        b: min(train(b, LR, [SEED], num_epochs=TIMING_EPOCHS).seconds)
        for b in BATCH_SIZES
    }
)
updates_per_epoch = pd.Series({b: math.ceil(N_TRAIN / b) for b in BATCH_SIZES})
step_us = 1e6 * epoch_seconds / updates_per_epoch
speed_up = epoch_seconds[1] / epoch_seconds
print(
    pd.DataFrame(
        {
            "s per epoch": epoch_seconds.map("{:.4f}".format),
            "updates/epoch": updates_per_epoch,
            "µs per update": step_us.map("{:.1f}".format),
            "speed-up vs B=1": speed_up.map("{:.0f}x".format),
        }
    ).to_string()
)
print(f"an update at B = 64 costs {step_us[64] / step_us[4]:.1f} times one at B = 4")
assert step_us.max() < 10 * step_us.min()  # an update costs about the same at every B
assert speed_up[1024] > 100  # so batching pays almost in proportion to B

# %% [markdown]
# An update costs roughly the same time at every batch size in the study (within a factor of
# a few, while the updates per epoch change by a factor of 1024): the per-update cost is the
# fixed overhead of some fifty small NumPy calls and Python bookkeeping, not arithmetic (the
# model has three parameters). So the time per epoch is roughly proportional to the number of
# updates per epoch, $\lceil N/B\rceil$, and batching pays almost linearly across the study.
# "Roughly the same" is not "the same", though: at a fixed learning rate, where $B = 4$ and
# $B = 64$ make nearly the same progress per update ({ref}`sec-ch01-control`), the ratio in the
# last line is what separates them per second, a small factor that depends on the machine.
# Where does batching stop paying? When the arithmetic per sample, not the overhead per update,
# dominates. To find that point we time one step at batch sizes beyond the training set (points
# drawn with replacement), best of several repeats:

# %%
timing_model = build_model([SEED])
timing_rng = np.random.default_rng(SEED)


def seconds_per_step(batch_size, repeats=TIMING_REPEATS):
    idx = timing_rng.integers(0, N_TRAIN, (1, batch_size))  # one seed, resampled
    Xb, yb = X_train[idx], y_train[idx]
    steps = max(1, min(300, 20_000 // batch_size))
    best = math.inf
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(steps):
            timing_model.x.value, timing_model.y.value = Xb, yb
            G.forward(timing_model.loss)
            G.backward(timing_model.loss)
            for prm in timing_model.params:
                prm.value -= 0.0 * prm.grad  # a real update, of size zero
        best = min(best, (time.process_time() - t0) / steps)
    return best


# %% tags=["nbval-ignore-output"] ignore_reason="wall-clock times vary by machine and by run"
step_seconds = pd.Series({b: seconds_per_step(b) for b in TIMING_BATCH_SIZES})
per_sample_ns = 1e9 * step_seconds / step_seconds.index
# time per step = overhead + cost per sample * B, least squares in relative error
design = np.column_stack([np.ones(len(step_seconds)), step_seconds.index])
design /= step_seconds.to_numpy()[:, None]
overhead_s, per_sample_s = np.linalg.lstsq(design, np.ones(len(design)), rcond=None)[0]
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
# at or beyond the study's largest batch sizes; how far beyond depends on the CPU
assert crossover > BATCH_SIZES[-1] / 4

# %% [markdown]
# Both measurements as figures, on log-log axes (the plotting code is folded):

# %% tags=["hide-input"]
fig, (ax_t, ax_s) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 7))
ax_t.loglog(
    epoch_seconds.index, epoch_seconds.values, "o-", label="measured (best of 3)"
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
    per_sample_ns.index, per_sample_ns.values, "s-", color="C1", label="measured (best)"
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
# On a CPU, for this model, batching pays as long as the fixed cost of an update is larger
# than the arithmetic of the batch: the time per sample falls like $1/B$ up to batch sizes of
# a thousand or more (the fit's crossover above), and flattens after that: doubling
# the batch then doubles the time per step, and the time per epoch stops improving. The crossover
# lies at or beyond the study's largest batch sizes because this model is tiny: the arithmetic
# per sample is a handful of multiplications, whose cost the CPU's vector instructions set,
# so another CPU puts the crossover elsewhere. For a network with real matrix products per
# sample the overhead is amortized at much smaller batches ({ref}`ex-graph-crossover`), and on a GPU,
# whose fixed cost per operation is much larger and whose arithmetic is much faster, at much
# larger ones.
#
# (sec-ch01-control)=
# ## Control: the same number of updates for every batch size
#
# After 50 epochs the large batches had made far fewer updates. Is their higher loss due to
# the batch size or to the number of updates? We give every batch size the same budget of
# `CONTROL_UPDATES` = 100 updates (what batch size 1024 made in 50 epochs) and repeat each
# run with `CONTROL_SEEDS` = 5 different shuffles (seeds `SEED + k`), keeping the initial
# parameters of seed `SEED` for all of them. The runs with the same shuffle seed are paired
# across batch sizes.

# %%
SHUFFLES = [SEED + k for k in range(CONTROL_SEEDS)]
control_rows = []
for b in BATCH_SIZES:
    budget = dict(num_epochs=None, num_updates=CONTROL_UPDATES)
    run = train(b, LR, SHUFFLES, **budget, inits=[SEED] * CONTROL_SEEDS)
    acc = evaluate(run.model, X_test, y_test)[1]
    for k, s in enumerate(SHUFFLES):
        loss = run.losses[-1, k]
        control_rows.append({"B": b, "shuffle": s, "loss": loss, "acc": 100 * acc[k]})
control_runs = pd.DataFrame(control_rows)
control = stats.summarize(control_runs, "B", "loss")[["mean", "min", "max"]]
control.insert(0, "samples seen", CONTROL_UPDATES * control.index)
control["test acc (%)"] = control_runs.groupby("B")["acc"].mean()
print(
    f"every run: {CONTROL_UPDATES} updates at lr = {LR}; {CONTROL_SEEDS} shuffles each"
)
print(
    control.to_string(
        formatters={"test acc (%)": "{:.1f}".format}, float_format="{:.4f}".format
    )
)
means = control["mean"]
spread_4 = 100 * (means.loc[4:].max() / means.loc[4:].min() - 1)
print(f"mean losses of B = 4 to 1024: within {spread_4:.1f} % of each other")
loss_of = {b: g["loss"].to_numpy() for b, g in control_runs.groupby("B")}
verdicts = {}
for b in (1, 4):  # against B = 1024, paired by shuffle
    v = stats.compare(loss_of[b], loss_of[1024], paired=True, higher_is_better=False)
    verdicts[b] = v
    print(
        f"B = {b} against B = 1024, per shuffle: {stats.signed(v.differences, '.4f')}"
    )
    print(f"  -> {v.word()}")

# %% tags=["remove-input"]
width = control["max"] - control["min"]  # the spread over the shuffles
assert spread_4 < 3
assert width[1] > 10 * width[1024] and width.loc[64:].max() < 0.2 * width[1]
print(
    "Checked: from B = 64 on, the range over the shuffles is below a fifth of B = 1's."
)

# %% [markdown]
# With the number of updates held fixed, the batch size moves the mean loss by at most
# 0.1 % from $B = 4$ to $B = 1024$ (0.3050 to 0.3053). After 100 updates a batch of 4 (400
# samples seen) against a batch of 1024 (102,400 samples seen) is not resolved with 5
# seeds: the per-shuffle differences change sign. $B = 1$ is behind $B = 1024$ on every
# shuffle, by 0.0002 to 0.0235. What a larger batch
# buys is a smaller spread between shuffles (the range from min to max: from $B = 64$ on it
# is a small fraction of batch size 1's), the gradient noise of {ref}`sec-ch01-noise`. So
# the gap in the 50-epoch table is a gap in the **number of updates**, and in this regime
# small batches are far more **sample-efficient**: a batch of 1024 spends 1024 samples on a
# step that 4 samples do about as well. (In the terms of {cite}`ch01-2-shallue2019measuring`,
# the *critical batch size* beyond which larger batches stop reducing the number of updates
# needed is tiny at this learning rate.)
#
# (sec-ch01-scaling)=
# ## The linear learning-rate scaling rule
#
# If the step size, not the noise, limits progress, a large batch should take larger steps.
# The **linear scaling rule** {cite}`ch01-2-goyal2017accurate` says: when the batch size is
# multiplied by $k$, multiply the learning rate by $k$. Its argument: $k$ small-batch steps
# of size $\eta$ move the parameters by about the same amount as one step of size $k\eta$ on
# the union of the $k$ batches, as long as the gradient changes little over those $k$ steps.
# We test it: learning rate $\eta_B = 0.03\,B$ for the batch sizes of
# `SCALED_BATCH_SIZES`, from 16 to 1024 (batch size 1 keeps 0.03), 50 epochs, the same
# `N_SEEDS` seeds as the study. (How many epochs training needs as a function of the
# learning rate is measured for a network in {ref}`sec-ch04-epochs-vs-lr`.)

# %%
scaled = {1: study[1]}  # batch size 1 keeps lr = 0.03
for b in tqdm(SCALED_BATCH_SIZES, desc="scaled lr"):
    scaled[b] = train(b, LR * b, SEEDS)
scaled_rows = []
for b, run in scaled.items():
    acc = evaluate(run.model, X_test, y_test)[1]
    for k, s in enumerate(SEEDS):
        last10 = run.losses[-10:, k]
        scaled_rows.append(
            {
                "B": b,
                "seed": s,
                "lr": LR * b,
                "above min": 100 * (run.losses[-1, k] / LOSS_OPT - 1),
                "last 10: min (%)": 100 * (last10.min() / LOSS_OPT - 1),
                "last 10: max (%)": 100 * (last10.max() / LOSS_OPT - 1),
                "test acc": 100 * acc[k],
            }
        )
scaled_runs = pd.DataFrame(scaled_rows)
per_b = scaled_runs.groupby("B")
extremes = pd.DataFrame(
    {
        "lowest": per_b["last 10: min (%)"].min(),
        "highest": per_b["last 10: max (%)"].max(),
    }
)
print(f"mean (range) over seeds {SEEDS}:")
print(table_over_seeds(scaled_runs, "lr", "above min", "test acc"))
print("over the last 10 epochs, the training loss in % above the minimum,")
print("lowest and highest over the seeds:")
print(extremes.to_string(float_format="{:.2f}".format))
final = {b: g["above min"].to_numpy() for b, g in scaled_runs.groupby("B")}
print("final loss minus B = 1's (points of % above the minimum), per seed:")
for b in (16, 64, 128):
    v = stats.compare(final[b], final[1], paired=True, higher_is_better=False)
    print(f"  B = {b:>3}: {stats.signed(v.differences, '.2f')} -> {v.word()}")

# %% [markdown]
# The training curves of the runs with seed `SEED` (plotting code folded):

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 4.6))
for b in scaled:
    color = colors[BATCH_SIZES.index(b)]
    label = f"B = {b}, lr = {LR * b:g}"
    ax.plot(scaled[b].losses[:, 0], color=color, label=label)
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
# last 10 epochs at most 6.1 % above the minimum, for both), with up to 64 times fewer updates,
# so ({ref}`sec-ch01-timing`) in a small fraction of the time. Seed by seed, the final
# losses of 16 and 64 lie within a quarter of a percentage point of batch size 1's, and
# against it neither is resolved with 3 seeds (the last lines of the output). At 128 ($\eta = 3.84$) the runs still get there but
# jitter more, up to 15 % above the minimum over the last 10 epochs, and end behind batch
# size 1 on every seed. At 256 ($\eta = 7.68$)
# the loss keeps jumping, up to 24 % above the minimum over the last 10 epochs, and the test
# accuracy of one seed drops to 86.7 %. At 15.4 and 30.7 the runs do not converge at all:
# over their last 10 epochs the loss swings to several times the minimum, and the test
# accuracy falls to 78.6 % in the worst run. Why there? Gradient descent on a function with
# curvature $\lambda$ along some direction is stable only if $\eta < 2/\lambda$; the
# relevant curvature is the largest eigenvalue $\lambda_{\max}$ of the Hessian
# $\nabla^2\mathcal{L}$ of the training loss ({eq}`eq-bce-hessian`):

# %%
W_init_seed = build_model([SEED]).params[0].value.ravel()
lam_init = np.linalg.eigvalsh(bce_hessian(np.r_[W_init_seed, 0.0])).max()
lam_opt = np.linalg.eigvalsh(bce_hessian(theta)).max()
print(f"largest Hessian eigenvalue: {lam_init:.3f} at the initial parameters", end=", ")
print(f"{lam_opt:.3f} at the minimum")
print(f"stability limit 2/lambda_max: {2 / lam_init:.2f} at the start", end=", ")
print(f"{2 / lam_opt:.2f} at the minimum")
print(f"-> with lr = {LR} B, the limit at the minimum is crossed above", end=" ")
print(f"B = {2 / lam_opt / LR:.0f}")

# %% [markdown]
# The curvature is largest where the model is still uncertain (the factor $\sigma(1-\sigma)$
# is largest at $\sigma = 1/2$), so the stability limit is smallest at the start, 3.3 for
# the initial parameters of seed `SEED`, and 8.1 at the minimum. Batch sizes up to 64 stay
# below both limits and converge; 128 starts close to the first limit (above it, for these
# initial parameters) and still converges, because the curvature falls as the model becomes
# confident. At 256 the learning rate is close to the limit at the minimum (just below it
# here): the iterates are pulled back only weakly along the steepest direction, and the
# minibatch noise, multiplied by a learning rate of 7.68, keeps them jumping. At 512 and
# 1024 the learning rate is above the limit even at the minimum: these runs are past the
# stable region, and none of their seeds converges. This is the general picture of the
# rule: it holds up to a problem-dependent batch size and then fails
# {cite}`ch01-2-goyal2017accurate,ch01-2-shallue2019measuring`. Goyal et al. combine it with
# a *warm-up* (a learning rate that grows over the first epochs, to pass the high-curvature
# start) and with learning-rate decay; {ref}`ex-graph-warmup` tries both here.

# %% tags=["remove-input"]
ok = scaled_runs[scaled_runs["B"] <= 64]
assert (ok["lr"] < 2 / lam_init).all()  # below both limits
# ... so every seed converges, jittering like B = 1
assert (ok["last 10: min (%)"] < 1).all() and (ok["last 10: max (%)"] < 10).all()
at_128, at_256 = (scaled_runs[scaled_runs["B"] == b] for b in (128, 256))
assert 0.5 < LR * 128 * lam_init / 2 < 1.5  # 128: close to the limit at the start
assert (at_128["last 10: min (%)"] < 1).all()  # ... and converges too
assert abs(LR * 256 * lam_opt / 2 - 1) < 0.15  # 256: close to the limit at the minimum
assert at_256["last 10: max (%)"].max() > 15  # ... and keeps jumping
fail = scaled_runs[scaled_runs["B"] >= 512]
assert (fail["lr"] > 2 / lam_opt).all()  # above the limit even at the minimum
# ... so no convergence: the loss swings to several times the minimum
assert (fail["last 10: min (%)"] > 1).all() and (fail["last 10: max (%)"] > 200).all()
print(
    "Checked: B <= 128 converge on every seed; B = 512 and 1024, past the stability"
    " limit at the minimum, on none."
)

# %% [markdown]
# ## Discussion: what batching changes
#
# **Efficiency.** On this CPU an update's cost is almost all fixed overhead, so an epoch
# takes time roughly proportional to the number of updates: larger batches make epochs
# faster by nearly the factor $B$, up to a thousand or more ({ref}`sec-ch01-timing`).
# Per *sample*, though, small batches learn more: in the control, 400 samples at $B = 4$
# ended within 0.1 % of the mean loss that 102,400 samples at $B = 1024$ reached.
#
# **Stability.** The minibatch gradient's noise falls like $1/B$ ({ref}`sec-ch01-noise`),
# and the spread between runs with different shuffles falls with it (the control's range).
# At a small learning rate this hardly shows in the loss curves; at a large one it decides
# whether a run converges (batch size 256 with the scaled learning rate).
#
# **Memory.** Linear in $B$ ({ref}`sec-ch01-memory`), and small for this model at every
# batch size of the study; on a GPU, the usual upper limit on $B$.
#
# **Convergence speed.** Per epoch, small batches converge fastest (batch sizes 1 to 16 get
# within 1 % of the minimum in 1 to 16 epochs; 128 and above not in 50). Per update, the
# mean losses of batch sizes 4 to 1024 lay within 0.1 % of each other at $\eta = 0.03$ in
# the control, and batch size 1 was behind. Per second, at a fixed learning rate, batch sizes
# from 4 to 64 are then separated only by what an update costs, a small factor that depends
# on the machine (the timing's last line). Large batches win per second only when the
# learning rate is scaled up with them, which works as long as the learning rate stays below
# the curvature's stability limit (here up to $B = 64$ cleanly, up to 128 with more jitter).
#
# **Generalization.** Every run up to $B = 128$ reached the Bayes rule's test accuracy to
# within two standard errors; the largest batches lost up to 1.9 points because they were
# under-trained, which the control shows to be a matter of the number of updates. The
# common claim that large batches generalize worse {cite}`ch01-2-keskar2017largebatch` does
# not show here, and should not: it is about deep networks, whose non-convex losses have
# sharp and flat minima, and small-batch noise is argued to steer towards flat ones.
# Logistic regression has a convex loss with a single minimum, and nothing to overfit. {ref}`sec-ch06-batch-size` compares batch sizes again for a multilayer network,
# per epoch and per optimizer step; none of its runs overfits either, so it leaves the claim
# open too. Testing it takes networks trained to the same low training loss on a problem
# where they can overfit
# {cite}`ch01-2-masters2018revisiting,ch01-2-shallue2019measuring`.
#
# ## Summary
#
# * The seeds of one batch size train together, as one model with a leading seed axis: seed
#   $k$ computes exactly what it computes alone, at the cost of about one run.
# * In the batch-size study (three seeds per batch size), the batch size changed the number
#   of updates per epoch and the gradient noise; with a learning rate of 0.03 the progress
#   after a number of updates hardly depended on the batch size (from $B = 4$ on), so small
#   batches got further per epoch and per sample. Per second, at a fixed learning rate, batch sizes from 4 to
#   64 differ only by the cost of an update, a small factor that depends on the machine;
#   large batches win per second only with a larger learning rate.
# * Scaling the learning rate linearly with the batch size brought batches up to 64 to
#   within a quarter of a percentage point of batch size 1's final loss on every seed, with
#   up to 64 times fewer updates, and failed beyond the curvature's stability limit
#   $2/\lambda_{\max}$.
# * Every run that trained long enough reached the Bayes rule's test accuracy to within two
#   standard errors: on a convex, well-specified problem there is no sharp or flat minimum to
#   choose between, and the largest batches were under-trained, not worse at generalizing.
#
# ## Exercises
#
# ```{exercise} Where batching stops paying for a network
# :label: ex-graph-crossover
#
# {ref}`sec-ch01-timing` found that batching stops paying for logistic regression only at
# batches of a thousand or more. Time one training step of
# [chapter 5.1](05_1_backprop_fashion_mnist.ipynb)'s 784-128-128-10 network (built with the
# engine as in {ref}`sec-ch01-memory`, float32) for batch sizes 1, 4, 16, 64, 256 and 1024,
# and find where the time per sample stops falling. Why is it so much earlier?
# ```
#
# ```{solution} ex-graph-crossover
# :class: dropdown
#
# Time `G.forward(mlp)`, `G.backward(mlp)` for each batch size as in `seconds_per_step`. The
# arithmetic per sample is now about
#
# $$
# 3\times(784\cdot128 + 128\cdot128 + 128\cdot10)\approx 3.5\times10^5
# $$
#
# multiply-adds (forward, and two products in the backward pass), thousands of times more than logistic
# regression's, while the fixed overhead per step is similar (a few dozen NumPy calls). So
# the overhead is amortized at batch sizes around a hundred instead of a thousand or more:
# past that point the time per sample is set by the matrix-product throughput of the CPU.
# The last code cell of the chapter measures it.
# ```
#
# ```{exercise} Warm-up or decay?
# :label: ex-graph-warmup
#
# With the scaled learning rate $0.03\,B$, try two schedules for $B = 256$, 512 and 1024:
# (a) a linear **warm-up**, the learning rate growing from 0.03 to $0.03\,B$ over the first
# 5 epochs; (b) a **decay**, the learning rate divided by 10 for the last 10 epochs. Which
# one rescues which batch size? Explain with the two stability limits of
# {ref}`sec-ch01-scaling`.
# ```
#
# ```{solution} ex-graph-warmup
# :class: dropdown
#
# The cell below runs all three schedules (a variant of `train` whose learning rate depends
# on the fractional epoch) for every seed of the study, and prints the final training loss in
# percent above the minimum. **The warm-up rescues nothing, and here it made the two largest
# batches worse.** At $B = 256$ it finishes at exactly the same loss as the constant learning
# rate, on every seed: constant-step SGD forgets where it started, and its final loss is set
# by the last steps, where a learning rate of 7.68, close to the limit at the minimum (about
# 8.1), amplifies the minibatch noise. The trouble at 256 is at the end, not at the start. At
# 512 and 1024 the warm-up ended further from the minimum than the constant learning rate
# (means of 60.7 against 46.0, and 1125.6 against 627.6): their learning rates lie above the
# limit even at the minimum, so where they end depends on the whole path, and a gentle start
# does not bring them closer. **The decay attacks the end.** After it the learning rates (0.77 and 1.54)
# are far below the limit, and 10 epochs bring $B = 256$ to the minimum on every seed and
# $B = 512$ closer (6.5 % above it on average). $B = 1024$ gains least: at 30.7 its learning
# rate was almost four times the limit for 40 epochs, so it starts the last 10 epochs far
# from the minimum with only 20 updates left (98.1 % above it on average).
# ```
#
# The solutions, run on numbers (each schedule with every seed of the study):


# %% tags=["hide-input"]
def train_schedule(batch_size, lr_at, seeds):
    """Like train(), with the learning rate lr_at(t) at fractional epoch t.

    Returns the final training loss of each seed."""
    model = build_model(seeds)
    rngs = [np.random.default_rng(s) for s in seeds]
    steps = math.ceil(N_TRAIN / batch_size)
    for epoch in range(NUM_EPOCHS):
        order = np.stack([rng.permutation(N_TRAIN) for rng in rngs])
        for k, start in enumerate(range(0, N_TRAIN, batch_size)):
            idx = order[:, start : start + batch_size]
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
above = {  # (schedule, B) -> % above the minimum, one value per seed
    (name, b): 100 * (train_schedule(b, make(LR * b), SEEDS) / LOSS_OPT - 1)
    for name, make in schedules.items()
    for b in LATE
}
for b in LATE:  # the constant schedule repeats the runs of the scaling section
    scaled_above = 100 * (scaled[b].losses[-1] / LOSS_OPT - 1)
    np.testing.assert_allclose(above["constant", b], scaled_above, rtol=1e-12)
np.testing.assert_allclose(above["warm-up", 256], above["constant", 256], rtol=1e-9)
assert (above["decay", 256] < 0.5).all()  # decay rescues 256 on every seed
mean = {key: v.mean() for key, v in above.items()}
assert mean["decay", 256] < mean["decay", 512] < mean["decay", 1024]
assert all(mean["decay", b] < mean["constant", b] for b in LATE)
print("Exercise 1.2.2: final training loss in % above the minimum, mean (worst seed)")
for name in schedules:
    cells = [f"{mean[name, b]:.1f} ({above[name, b].max():.1f})" for b in LATE]
    print(f"{name:>9}: " + ", ".join(f"B = {b}: {c}" for b, c in zip(LATE, cells)))
decayed = [LR * b / 10 for b in LATE]
print("learning rates after the decay:", ", ".join(f"{lr:.2f}" for lr in decayed))
print(f"B = 1024's lr before the decay: {LR * 1024 / (2 / lam_opt):.1f} x the limit")


# %% tags=["hide-input", "nbval-ignore-output"] ignore_reason="wall-clock times vary by machine and by run"
def mlp_loss(dtype=np.float32):
    """Chapter 5's 784-128-128-10 network on the engine, with a softmax
    cross-entropy."""
    x, y = G.Input("x"), G.Input("y")
    rng = np.random.default_rng(SEED)
    h = G.ReLU(G.Linear(x, 784, 128, init="he", rng=rng, dtype=dtype, name="fc1"))
    h = G.ReLU(G.Linear(h, 128, 128, init="he", rng=rng, dtype=dtype, name="fc2"))
    logits = G.Linear(h, 128, 10, rng=rng, dtype=dtype, name="fc3")
    return x, y, G.SoftmaxCrossEntropy(logits, y)


mlp_x, mlp_y, mlp = mlp_loss()
fake = np.random.default_rng(SEED)
mlp_ns = {}
for b in (1, 4, 16, 64, 256, 1024):
    mlp_x.value = fake.random((b, 784), dtype=np.float32)
    mlp_y.value = fake.integers(0, 10, b)
    steps = max(2, 256 // b)
    best = math.inf
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(steps):
            G.forward(mlp)
            G.backward(mlp)
        best = min(best, (time.process_time() - t0) / steps)
    mlp_ns[b] = 1e9 * best / b
print("Exercise 1.2.1: 784-128-128-10 network, forward + backward, ns per sample:")
print({b: round(v) for b, v in mlp_ns.items()})
assert mlp_ns[1] > 10 * mlp_ns[1024]  # batching pays up to ...
assert mlp_ns[1024] > 0.5 * mlp_ns[64]  # ... about a hundred, then the curve is flat

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch01-2-
# ```
