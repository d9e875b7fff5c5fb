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
# # Chapter 7: Transfer learning
#
# With a few hundred labelled images, a network trained from nothing has little to learn from.
# {term}`Transfer learning` starts instead from a network trained on another, larger task and
# reuses what it learned. This chapter measures how much that helps on a small problem, and
# compares it with the classical alternatives. A small CNN is pretrained on MNIST digits and then
# put to work on 500 labelled Fashion-MNIST images in five ways: trained from scratch, as a
# frozen feature extractor under a trained linear head (a {term}`linear probe`), fully
# {term}`fine-tuned <Fine-tuning>`, as the input of a scikit-learn logistic regression, and
# replaced by gradient-boosted trees on the raw pixels. The comparison is as much the lesson as
# transfer itself: every trained strategy gets a learning-rate sweep and several
# {term}`seeds <seed>`, runs are chosen on validation data and reported on test data, and a
# difference within the spread of the seeds is called a tie.
#
# **Learning objectives.** After this chapter you can
#
# - split a network into a {term}`backbone` and a head, and set up the three ways of training it
#   on a new task (from scratch, a linear probe, fine-tuning), checking in code what each one
#   trains;
# - cache pretrained weights under a hash of everything that produced them, verified by SHA-256,
#   so that nothing is downloaded and nothing is pretrained twice;
# - show that a linear probe is logistic regression on the frozen features, by loading
#   scikit-learn's fitted model into the network's head;
# - compare training strategies honestly: a learning-rate sweep on a log scale for each, several
#   seeds, choosing on the {term}`validation set` and reporting on the {term}`test set`, with the
#   chance rate and classical models as reference points;
# - find where transfer fails: which layer's features carry over to the new task, and how far
#   fine-tuning moves the pretrained weights.
#
# **Prerequisites:** [chapter 0](00_data.ipynb) (the datasets),
# [chapter 3](03_optimizers.ipynb) (Adam) and
# [chapter 4](04_minibatch_sign_mnist.ipynb) (the PyTorch training loop, seeds and ties).
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
    package = f"course-utils[ch07] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
# SEED seeds the data subsets. Every trained configuration runs N_SEEDS seeds, SEED,
# SEED + 1, ...: seed s sets the pretraining of backbone s, the initial weights and the
# batch order of every run with seed s.
SEED = 0
N_SEEDS = 3
# Source task (pretraining on MNIST), one backbone per seed, on the CPU with one thread.
N_SOURCE = 12_000  # MNIST training images used for pretraining (of 60,000)
SOURCE_EPOCHS = 2
SOURCE_LR = 1e-3
SOURCE_BATCH_SIZE = 64
# Target task (Fashion-MNIST with few labels).
N_TRAIN_PER_CLASS = 50  # labelled training images per class: 500 in all
N_VAL_PER_CLASS = 50  # validation images per class (choosing): 500 in all
N_TEST_PER_CLASS = 200  # test images per class (reporting): 2,000 in all
LEARNING_RATES = [1e-1, 1e-2, 1e-3, 1e-4]
BATCH_SIZE = 32
LONG_EPOCHS = 10  # the longer run; its first epoch is the one-epoch run
LOGREG_CS = [0.01, 0.1, 1.0, 10.0]  # inverse L2 strengths for logistic regression
XGB_MAX_DEPTHS = [2, 4]  # gradient-boosted trees: 100 trees of each depth
ERRORS_LR = 1e-3  # the fine-tuning runs whose errors are studied
# Everything runs on the CPU, also where a GPU is present: the networks are small. A
# reader with more time may raise N_SEEDS, N_SOURCE, SOURCE_EPOCHS, LONG_EPOCHS and the
# per-class sizes; the numbers then differ from the book's.

# %%
import copy
import hashlib
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xgboost
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from tqdm.auto import tqdm

import course_utils
from course_utils import data, models, plots, stats, training

SEEDS = [SEED + k for k in range(N_SEEDS)]
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# Two formatting helpers (hidden on the site): an accuracy as a percentage, and a table of
# results over the seeds as mean ± sd and range.


# %% tags=["hide-input"]
def pct(acc):
    """An accuracy in [0, 1] as a percentage with one decimal, this chapter's format."""
    return f"{100 * acc:.1f}"


def spread(summary):
    """A stats.summarize table of accuracies as text: mean ± sd and the range, in %."""
    return pd.DataFrame(
        {
            "mean ± sd": [
                stats.mean_sd(100 * m, 100 * s)
                for m, s in zip(summary["mean"], summary["sd"])
            ],
            "range": [
                f"{100 * lo:.1f}–{100 * hi:.1f}" if n > 1 else "(one run)"
                for lo, hi, n in zip(summary["min"], summary["max"], summary["n"])
            ],
        },
        index=summary.index,
    )


# %% [markdown]
# (sec-ch07-setting)=
# ## The setting: from digits to clothes
#
# **Source task: MNIST** {cite}`ch07-lecun1998gradient`, 60,000 handwritten digits, of which we
# use 12,000 for two epochs of pretraining. **Target task: Fashion-MNIST**
# {cite}`ch07-xiao2017fashion`, ten kinds of clothing, shoes and bags, with only 50 labelled
# images per class for training, another 50 per class for choosing among runs (validation), and
# 200 per class of the official test split for reporting.
#
# Why this pair: the two datasets share the format (28×28 grey levels, centred objects, dark
# background), so the low-level detectors a network learns on digits (edges, strokes, blobs) are
# at least usable on clothes, while the label sets have nothing in common: no digit feature says
# "sandal". That is the situation where transfer is worth measuring rather than assuming. With 500
# labels, a network trained from scratch has little to learn from, which is where a good starting
# point is expected to matter most. We do not pretrain on other Fashion-MNIST classes instead:
# source and target would then share most of their visual features, and the comparison would say
# little about reusing features across tasks.
#
# The classes are balanced in every split, so guessing gives the **chance rate** of 10 %, and
# always answering one class gives the same. Every accuracy below should be read against it.

# %%
mnist = data.load("mnist")
fashion = data.load("fashion-mnist")
print(mnist.note())
print(fashion.note())


def per_class_indices(y, counts, rng):
    """Disjoint, stratified index sets: for each n in counts, n indices per class."""
    parts = [[] for _ in counts]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        start = 0
        for part, n in zip(parts, counts):
            part.append(idx[start : start + n])
            start += n
    return [np.sort(np.concatenate(p)) for p in parts]


# %% [markdown]
# The subsets, drawn with a generator seeded by `SEED` (the same for every seed of the runs
# below), and their sizes:

# %%
rng = np.random.default_rng(SEED)
src_idx = np.sort(rng.choice(len(mnist.y_train), size=N_SOURCE, replace=False))
X_src, y_src = mnist.X_train[src_idx], mnist.y_train[src_idx]
train_idx, val_idx = per_class_indices(
    fashion.y_train, [N_TRAIN_PER_CLASS, N_VAL_PER_CLASS], rng
)
(test_idx,) = per_class_indices(fashion.y_test, [N_TEST_PER_CLASS], rng)
X_train, y_train = fashion.X_train[train_idx], fashion.y_train[train_idx]
X_val, y_val = fashion.X_train[val_idx], fashion.y_train[val_idx]
X_test, y_test = fashion.X_test[test_idx], fashion.y_test[test_idx]
assert not set(train_idx) & set(val_idx)
assert np.all(np.bincount(y_test) == N_TEST_PER_CLASS)  # balanced: chance = majority
classes = fashion.classes
num_classes = fashion.num_classes
chance = 1 / num_classes
sizes = pd.DataFrame(
    {
        "task": [
            "source (pretraining)",
            "target train",
            "target validation",
            "target test",
        ],
        "dataset": [mnist.title, fashion.title, fashion.title, fashion.title],
        "images": [len(y_src), len(y_train), len(y_val), len(y_test)],
        "classes": [mnist.num_classes] + [num_classes] * 3,
    }
).set_index("task")
print(sizes.to_string())
print(f"chance rate on the target task: {pct(chance)}%")

# %% [markdown]
# One image of each class of either task (the grid cell below only draws):

# %% tags=["hide-input"]
for X, y, names, title in [
    (X_src, y_src, mnist.classes, "Source task: one MNIST digit per class"),
    (
        X_train,
        y_train,
        classes,
        "Target task: one Fashion-MNIST training image per class",
    ),
]:
    show = np.concatenate([np.flatnonzero(y == c)[:1] for c in range(10)])
    plots.image_grid(
        X[show], [names[k] for k in y[show]], ncols=5, size=1.4, suptitle=title
    )
    plt.show()

# %% [markdown]
# (sec-ch07-model)=
# ## The model: a backbone and a head
#
# `course_utils.models.SmallCNN` is two convolution blocks and a fully connected layer (the
# **backbone** $h_{\boldsymbol\theta}$, with parameters $\boldsymbol\theta$ and 128 features
# after a ReLU), followed by one linear layer (the **head**), so that for an image $\mathbf{x}$
# the class scores and probabilities are
#
# $$
# \mathbf{z} = W\, h_{\boldsymbol\theta}(\mathbf{x}) + \mathbf{b}, \qquad
# \mathbf{s} = \operatorname{softmax}(\mathbf{z}),
# $$ (eq-tl-backbone-head)
#
# trained by minimising the mean {term}`cross-entropy` $-\log s_{y_i}$ over the training images.
# The strategies differ in where $\boldsymbol\theta$ starts and what is trained:
#
# | strategy | $\boldsymbol\theta$ starts at | trained | trained parameters |
# |---|---|---|---|
# | from scratch | random | $\boldsymbol\theta, W, \mathbf{b}$ | all |
# | linear probe | pretrained $\boldsymbol\theta_{\text{src}}$ | $W, \mathbf{b}$ only | head |
# | fine-tuning | pretrained $\boldsymbol\theta_{\text{src}}$ | $\boldsymbol\theta, W, \mathbf{b}$ | all |
# | logistic regression | pretrained $\boldsymbol\theta_{\text{src}}$ | $W, \mathbf{b}$ (L-BFGS, L2 penalty) | head |
# | boosted trees | — | trees on the 784 raw pixels | — |
#
# With $\boldsymbol\theta$ frozen, {eq}`eq-tl-backbone-head` is multinomial logistic regression
# on the features $h_{\boldsymbol\theta_{\text{src}}}(\mathbf{x})$: the linear probe and the
# scikit-learn model fit the same family of functions, with different optimisers and penalties.
# {ref}`sec-ch07-baselines` checks that by putting scikit-learn's coefficients into the
# network's head.

# %%
model = models.SmallCNN(num_classes=num_classes, seed=SEED)
print(model)
n_backbone = models.count_parameters(model.backbone)
n_head = models.count_parameters(model.head)
c1, c2 = model.channels
d = model.feature_dim
# conv: 3*3*in*out weights + out biases; linear: in*out + out
assert n_backbone == (9 * 1 * c1 + c1) + (9 * c1 * c2 + c2) + (49 * c2 * d + d)
assert n_head == d * num_classes + num_classes
print(
    f"backbone: {n_backbone:,} parameters, head: {n_head:,} parameters "
    f"({pct(n_head / (n_backbone + n_head))}% of the model)"
)

# %% [markdown]
# (sec-ch07-pretraining)=
# ## Pretraining on MNIST, or loading it from the cache
#
# Nothing in this chapter downloads weights. For each seed, the first run pretrains a backbone
# here (Adam, the parameters above) and saves its weights in the user cache (`$COURSE_CACHE`,
# else `~/.cache/course-book`, never in the repository). The file name holds a hash of the
# pretraining configuration: the torch version, the model's shapes, a hash of the very images
# used, the seed, and the settings that select the CPU's arithmetic kernels (another CPU's
# kernels round differently, and training turns different roundings into different weights). A
# JSON record beside the file holds its SHA-256. A later run loads the file only if both match;
# otherwise it says why and pretrains again. Pretraining is seeded and runs on one CPU thread, so
# one machine gets the same weights every time: loading them saves time and changes nothing that
# is printed.

# %%
KERNEL_VARIABLES = ["OPENBLAS_CORETYPE", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA"]


def pretrain_config(seed):
    """Everything that decides the pretrained weights: the cache key."""
    kernels = {v: os.environ.get(v, "") for v in KERNEL_VARIABLES}
    kernels["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return {
        "source": mnist.name,
        "images_sha256": hashlib.sha256(X_src.tobytes() + y_src.tobytes()).hexdigest(),
        "n_source": N_SOURCE,
        "epochs": SOURCE_EPOCHS,
        "lr": SOURCE_LR,
        "batch_size": SOURCE_BATCH_SIZE,
        "optimizer": "Adam",
        "seed": seed,
        "kernels": kernels,
    }


def pretrain(net, seed):
    """Train `net` on the MNIST subset, deterministically (seeded, CPU, one thread)."""
    X_src_t = models.images_to_tensor(X_src)
    loader = training.make_loader(X_src_t, y_src, SOURCE_BATCH_SIZE, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=SOURCE_LR)
    with course_utils.runtime.blas_threads(1):
        training.fit(
            net,
            loader,
            loss_fn=nn.functional.cross_entropy,
            optimizer=opt,
            num_epochs=SOURCE_EPOCHS,
            device="cpu",
            desc=f"pretraining on MNIST (seed {seed})",
        )


# %% [markdown]
# One backbone per seed, loaded or pretrained. This cell's output says which way the weights
# came (and how long that took), so it is the one output of the section that differs between
# readers:

# %% tags=["nbval-ignore-output"] ignore_reason="whether the weights were loaded from the reader's cache or pretrained here, and the CPU time that took"
pretrained = {}  # seed -> the pretrained SmallCNN (ten digit classes)
for seed in SEEDS:
    t0 = time.process_time()
    pretrained[seed] = models.SmallCNN(num_classes=mnist.num_classes, seed=seed)
    came_from = models.load_or_pretrain(
        pretrained[seed],
        pretrain_config(seed),
        lambda net: pretrain(net, seed),
        name="ch07-smallcnn-mnist",
    )
    print(
        f"seed {seed}: weights from {came_from}, {time.process_time() - t0:.1f} s CPU"
    )

# %% [markdown]
# How well the pretrained networks do on the source task, on the 10,000 MNIST test digits:

# %% tags=["nbval-measured"] tolerance={"abs": 1.2, "rel": 2.7}
mnist_acc = [
    float(
        np.mean(
            training.predict(
                pretrained[s], models.images_to_tensor(mnist.X_test), batch_size=256
            )
            == mnist.y_test
        )
    )
    for s in SEEDS
]
print(
    f"pretrained SmallCNN, MNIST test accuracy over {N_SEEDS} seeds: "
    f"{stats.mean_sd(100 * np.mean(mnist_acc), 100 * np.std(mnist_acc, ddof=1))}%, "
    f"lowest {pct(min(mnist_acc))}%"
)
assert min(mnist_acc) > 0.9

# %% [markdown]
# (sec-ch07-strategies)=
# ## The three trained strategies
#
# One function builds the network for a strategy and a seed, and trains it with Adam
# {cite}`ch07-kingma2015adam` at batch size 32 on the 500 target images. From scratch, the
# network starts from the seed's random initialisation, the very weights that pretraining started
# from. The probe and fine-tuning start from a copy of the seed's pretrained backbone with a new
# ten-class head, and the probe freezes the backbone (`requires_grad=False`, so Adam never sees
# it). After each epoch `training.fit` measures the validation accuracy. A run is stopped after
# one epoch, its test predictions are stored, and it is continued for `LONG_EPOCHS - 1` more
# epochs: the first epoch of the longer run *is* the one-epoch run.

# %%
STRATEGIES = ["from scratch", "linear probe", "fine-tuning"]
X_train_t, X_val_t, X_test_t = (
    models.images_to_tensor(X) for X in (X_train, X_val, X_test)
)
val_loader = training.make_loader(X_val_t, y_val, batch_size=256, shuffle=False)


def build(strategy, seed):
    if strategy == "from scratch":
        return models.SmallCNN(num_classes=num_classes, seed=seed)
    net = copy.deepcopy(pretrained[seed]).replace_head(num_classes, seed=seed)
    models.set_backbone_trainable(net, strategy == "fine-tuning")
    return net


def start(strategy, lr, seed):
    """A network, its optimiser and its training loader (seeded shuffling)."""
    net = build(strategy, seed)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    loader = training.make_loader(X_train_t, y_train, BATCH_SIZE, seed=seed)
    return net, opt, loader


def train_more(net, opt, loader, num_epochs):
    return training.fit(
        net,
        loader,
        loss_fn=nn.functional.cross_entropy,
        optimizer=opt,
        num_epochs=num_epochs,
        val_loader=val_loader,
        device="cpu",
        progress=False,
    )


# %% [markdown]
# The next cell checks the claims of this section: one epoch and then one more is the same as two
# epochs in one call, the probe leaves the backbone untouched while fine-tuning moves it, and
# from scratch starts where pretraining started.

# %%
in_two_calls = start("fine-tuning", 1e-3, SEED)
train_more(*in_two_calls, 1)
train_more(*in_two_calls, 1)
in_one_call = start("fine-tuning", 1e-3, SEED)
train_more(*in_one_call, 2)
for (name, pa), pb in zip(
    in_two_calls[0].named_parameters(), in_one_call[0].parameters()
):
    assert torch.equal(pa, pb), name
probe, opt, loader = start("linear probe", 1e-2, SEED)
train_more(probe, opt, loader, 1)
for (name, p), p0 in zip(
    probe.backbone.named_parameters(), pretrained[SEED].backbone.parameters()
):
    assert torch.equal(p, p0), name
first_conv = pretrained[SEED].backbone[0].weight
assert not torch.equal(in_one_call[0].backbone[0].weight, first_conv)
untrained = models.SmallCNN(num_classes=mnist.num_classes, seed=SEED)
for (name, p), p0 in zip(
    build("from scratch", SEED).backbone.named_parameters(),
    untrained.backbone.parameters(),
):
    assert torch.equal(p, p0), name
print(
    "checks passed: 1 + 1 epochs == 2 epochs; the probe leaves the backbone unchanged"
)
print("fine-tuning moves it; from scratch starts from pretraining's initial weights")
for strategy in STRATEGIES:
    n = models.count_parameters(build(strategy, SEED), trainable_only=True)
    print(f"{strategy}: {n:,} trained parameters")

# %% [markdown]
# (sec-ch07-sweep)=
# ## The learning-rate sweep
#
# Four learning rates, $10^{-1}$ to $10^{-4}$, for each of the three strategies and each seed,
# each run recorded after 1 epoch (16 steps of batch 32) and after `LONG_EPOCHS` epochs. For every
# record we keep the validation accuracy (for choosing), the test accuracy and predictions (for
# reporting), and, for fine-tuning, how far the backbone moved from its pretrained weights,
# $\lVert\boldsymbol\theta - \boldsymbol\theta_{\text{src}}\rVert /
# \lVert\boldsymbol\theta_{\text{src}}\rVert$.

# %%
runs = []  # one row per record: strategy, setting, epochs, seed, accuracies
test_preds = {}  # (strategy, setting, epochs, seed) -> predicted test labels
curves = {}  # (strategy, lr, seed) -> validation accuracy after each epoch
drift = {}  # (lr, epochs, seed) -> fine-tuned backbone's relative distance


def record(strategy, setting, epochs, seed, val_acc, pred):
    test_preds[strategy, setting, epochs, seed] = pred
    test_acc = float(np.mean(pred == y_test))
    runs.append(
        {
            "strategy": strategy,
            "setting": setting,
            "epochs": epochs,
            "seed": seed,
            "val_acc": float(val_acc),
            "test_acc": test_acc,
        }
    )


def flat_backbone(net):
    return torch.cat([p.detach().flatten() for p in net.backbone.parameters()])


# %% [markdown]
# The sweep itself: every seed, strategy and learning rate, trained for one epoch, recorded,
# trained on, and recorded again.

# %%
grid = [
    (s, strategy, lr) for s in SEEDS for strategy in STRATEGIES for lr in LEARNING_RATES
]
for seed, strategy, lr in tqdm(grid, desc="sweep"):
    net, opt, loader = start(strategy, lr, seed)
    theta_src = flat_backbone(pretrained[seed])
    curves[strategy, lr, seed] = []
    for done, more in [(1, 1), (LONG_EPOCHS, LONG_EPOCHS - 1)]:
        hist = train_more(net, opt, loader, more)
        curves[strategy, lr, seed] += list(hist.val_acc)
        pred = training.predict(net, X_test_t, batch_size=256)
        record(strategy, f"lr={lr:.0e}", done, seed, hist.val_acc.iloc[-1], pred)
        if strategy == "fine-tuning":
            moved = flat_backbone(net) - theta_src
            drift[lr, done, seed] = float(moved.norm() / theta_src.norm())
sweep = pd.DataFrame(runs)
steps_per_epoch = len(loader)
assert steps_per_epoch == int(np.ceil(len(y_train) / BATCH_SIZE))

# %% [markdown]
# The test accuracy of every strategy and learning rate, over the seeds (mean ± sd, and the range
# from the worst seed to the best):

# %% tags=["nbval-measured"] tolerance={"abs": 67.0, "rel": null}
print(
    f"{len(grid)} runs: {len(STRATEGIES)} strategies × {len(LEARNING_RATES)} "
    f"learning rates × {N_SEEDS} seeds; one epoch = {steps_per_epoch} steps"
)
print("test accuracy (%)")
by_run = ["strategy", "setting"]
sweep_table = pd.concat(
    {
        f"after {e} epoch{'s' if e > 1 else ''}": spread(
            stats.summarize(sweep[sweep.epochs == e], by_run, "test_acc")
        )
        for e in (1, LONG_EPOCHS)
    },
    axis=1,
)
print(sweep_table.to_string())

# %% [markdown]
# Read row by row, the table shows first how much the {term}`learning rate` matters: after ten
# epochs the mean test accuracy of fine-tuning runs from 10.0 % at $10^{-1}$ to 77.5 % at
# $10^{-2}$, and every strategy's worst and best rates are tens of points apart. The spread over
# the seeds is part of the result too: after one epoch, training from scratch at $10^{-2}$ ranges
# from 48.1 % to 62.0 % over the seeds, fine-tuning at $10^{-3}$ only from 61.5 % to 64.5 %. A
# single seed could have told either story.

# %% [markdown]
# (sec-ch07-baselines)=
# ## Classical baselines
#
# **Logistic regression on the frozen features.** Each pretrained backbone turns an image into
# 128 numbers, which scikit-learn's `LogisticRegression` {cite}`ch07-pedregosa2011sklearn`
# (L-BFGS to convergence, an L2 penalty of strength $1/C$) classifies. The features are ReLU
# outputs whose scales differ from one unit to the next (some are zero on every image), so they
# are standardised first (mean 0, variance 1 on the training images; a constant feature stays 0):
# the L2 penalty and L-BFGS's progress both depend on comparable scales. As a reference that uses
# no pretraining at all, the same model on the raw pixels, scaled to $[0, 1]$.
#
# **Gradient-boosted trees on the raw pixels** (XGBoost {cite}`ch07-chen2016xgboost`, 100 trees
# of depth 2 or 4, learning rate $0.3$, histogram method, one thread): trees split on one pixel
# value at a time, so they need no scaling. Neither model on pixels has anything random in it
# (L-BFGS starts from zero; the trees use every image and every pixel), so each runs once; the
# features differ from seed to seed because the backbones do.

# %%
features = {  # seed -> features of the train, validation and test images
    s: [models.extract_features(pretrained[s], X) for X in (X_train, X_val, X_test)]
    for s in SEEDS
}


def logreg(C, scale=True):
    clf = LogisticRegression(C=C, max_iter=5000)
    return make_pipeline(StandardScaler(), clf) if scale else make_pipeline(clf)


fitted = {}  # (seed, C) -> logistic regression on that seed's features
for s in SEEDS:
    F_train, F_val, F_test = features[s]
    for C in LOGREG_CS:
        clf = logreg(C).fit(F_train, y_train)
        assert clf[-1].n_iter_.max() < 5000, "logistic regression did not converge"
        val_acc, pred = clf.score(F_val, y_val), clf.predict(F_test)
        record("logistic regression, features", f"C={C:g}", 0, s, val_acc, pred)
        fitted[s, C] = clf

# %% [markdown]
# The two models on the raw pixels:

# %%
pixels = [X.reshape(len(X), -1) for X in (X_train, X_val, X_test)]
for C in LOGREG_CS:
    clf = logreg(C, scale=False).fit(pixels[0] / 255, y_train)
    assert clf[-1].n_iter_.max() < 5000, "logistic regression did not converge"
    val_acc = clf.score(pixels[1] / 255, y_val)
    pred = clf.predict(pixels[2] / 255)
    record("logistic regression, pixels", f"C={C:g}", 0, None, val_acc, pred)
for depth in XGB_MAX_DEPTHS:
    xgb = xgboost.XGBClassifier(
        n_estimators=100,
        max_depth=depth,
        learning_rate=0.3,
        tree_method="hist",
        n_jobs=1,
        random_state=SEED,
    ).fit(pixels[0], y_train)
    val_acc, pred = np.mean(xgb.predict(pixels[1]) == y_val), xgb.predict(pixels[2])
    record("boosted trees, pixels", f"depth={depth}", 0, None, val_acc, pred)
classical = pd.DataFrame(runs).query("epochs == 0")
CLASSICAL = list(dict.fromkeys(classical.strategy))

# %% [markdown]
# Validation and test accuracy of the classical models (over the seeds for the features; the
# models on pixels ran once):

# %% tags=["nbval-measured"] tolerance={"abs": 9.6, "rel": 6.3}
classical_table = pd.concat(
    {
        "validation %": spread(stats.summarize(classical, by_run, "val_acc")),
        "test %": spread(stats.summarize(classical, by_run, "test_acc")),
    },
    axis=1,
)
classical_table.index = [f"{m}, {s}" for m, s in classical_table.index]
print(classical_table.to_string())
by_C = classical.groupby(["strategy", "setting"])[["val_acc", "test_acc"]].agg(
    ["min", "max"]
)
for C in LOGREG_CS:
    on_pixels = by_C.loc[("logistic regression, pixels", f"C={C:g}")]
    on_features = by_C.loc[("logistic regression, features", f"C={C:g}")]
    for acc in ("val_acc", "test_acc"):
        assert on_pixels[acc, "min"] > on_features[acc, "max"], (C, acc)

# %% [markdown]
# At every $C$, logistic regression on the raw pixels is well above the same model on the
# pretrained features, on validation and on test; {ref}`sec-ch07-comparison` says by how much at
# the settings chosen on validation.

# %% [markdown]
# The claim of the model section, checked: logistic regression on standardised features is a
# linear head on the backbone. The scaler subtracts the training features' mean vector
# $\boldsymbol\mu$ and divides feature $j$ by its sd, $\operatorname{sd}_j$; folding that into
# the weights,
#
# $$
# W' = W \operatorname{diag}(1/\operatorname{sd}_1, \dots, 1/\operatorname{sd}_{128}), \qquad
# \mathbf{b}' = \mathbf{b} - W' \boldsymbol\mu ,
# $$
#
# and loading $(W', \mathbf{b}')$ into a copy of the pretrained network's head gives
# scikit-learn's class probabilities, up to float32 rounding.

# %%
clf = fitted[SEED, 1.0]
scaler, lr_model = clf[0], clf[-1]
W = lr_model.coef_ / scaler.scale_
b = lr_model.intercept_ - W @ scaler.mean_
as_head = copy.deepcopy(pretrained[SEED]).replace_head(num_classes)
with torch.no_grad():
    as_head.head.weight.copy_(torch.from_numpy(W))
    as_head.head.bias.copy_(torch.from_numpy(b))
    p_net = torch.softmax(as_head(X_test_t), dim=1).numpy()
np.testing.assert_allclose(p_net, clf.predict_proba(features[SEED][2]), atol=1e-4)
print("scikit-learn's logistic regression == SmallCNN with that linear head:")
print("the class probabilities of the 2,000 test images agree to 1e-4")

# %% [markdown]
# (sec-ch07-comparison)=
# ## Comparing the strategies
#
# Each strategy is represented by its best setting, the one with the highest **mean validation**
# accuracy over the seeds (ties go to the first in the grid), and reported by the **test**
# accuracy of that setting. Choosing by test accuracy would make the winner's test score an
# optimistic estimate (exercise {ref}`ex-tl-selection`); the validation images play no other
# role. Two kinds of noise are in these numbers. The seeds: another seed, or another CPU's
# rounding, gives another run, which is why each entry has a range. And the test set: with 2,000
# test images the standard error of an accuracy $a$ near 78 % is
#
# $$
# \sqrt{\frac{a(1-a)}{N_{\text{test}}}} = \sqrt{\frac{0.78 \cdot 0.22}{2000}}
# \approx 0.9 \text{ points},
# $$ (eq-tl-stderr)
#
# so test accuracies a point apart are not reliably different even for one fixed model. As
# everywhere in the book, two strategies whose ranges over the seeds overlap are tied.


# %%
def choose(df):
    """Per strategy, the setting with the highest mean validation accuracy."""
    val = stats.summarize(df, by_run, "val_acc")["mean"]
    best = val.groupby(level="strategy", sort=False).idxmax()
    return {strategy: setting for strategy, (_, setting) in best.items()}


long = sweep[sweep.epochs == LONG_EPOCHS]
chosen = {}  # (strategy, epochs) -> (setting, the runs of that setting)
for e, df in [(1, sweep[sweep.epochs == 1]), (LONG_EPOCHS, long), (0, classical)]:
    for strategy, setting in choose(df).items():
        chosen[strategy, e] = (
            setting,
            df[(df.strategy == strategy) & (df.setting == setting)],
        )
best = pd.concat(
    [
        rows.assign(row=f"{s}, {e} ep" if e else s)
        for (s, e), (_, rows) in chosen.items()
    ]
)


def at_chosen(strategy, epochs):
    """Test accuracies, one per seed, of a strategy at its chosen setting."""
    return chosen[strategy, epochs][1].test_acc


stderr = np.sqrt(0.78 * 0.22 / len(y_test))
np.testing.assert_allclose(100 * stderr, 0.9, atol=0.05)

# %% [markdown]
# Each strategy at its chosen setting (the settings are marked in the figure below):

# %% tags=["nbval-measured"] tolerance={"abs": 15.0, "rel": 8.7}
comparison = pd.concat(
    {
        "validation %": stats.summarize(best, "row", "val_acc")["mean"].map(pct),
        "test %": spread(stats.summarize(best, "row", "test_acc"))["mean ± sd"],
        "test range": spread(stats.summarize(best, "row", "test_acc"))["range"],
    },
    axis=1,
)
comparison.index.name = None
print(comparison.to_string())

# %% [markdown]
# The same sweep as a figure: the mean test accuracy against the learning rate, with the range
# over the seeds as error bars, a star on each strategy's chosen rate, and the classical models'
# chosen settings as horizontal lines. The cell only draws.

# %% tags=["hide-input"]
fig, axes = plt.subplots(
    2, 1, figsize=(plots.COLUMN_WIDTH, 8.0), sharex=True, sharey=True
)
for ax, epochs in zip(axes, [1, LONG_EPOCHS]):
    s = stats.summarize(sweep[sweep.epochs == epochs], by_run, "test_acc")
    for k, strategy in enumerate(STRATEGIES):
        rows = s.loc[strategy].loc[[f"lr={lr:.0e}" for lr in LEARNING_RATES]]
        m, lo, hi = (100 * rows[c].to_numpy() for c in ("mean", "min", "max"))
        color = f"C{k}"
        ax.errorbar(
            LEARNING_RATES,
            m,
            yerr=np.clip([m - lo, hi - m], 0, None),  # clip float rounding below 0
            marker="o",
            capsize=3,
            color=color,
            label=strategy,
        )
        pick = [f"lr={lr:.0e}" for lr in LEARNING_RATES].index(
            chosen[strategy, epochs][0]
        )
        ax.plot(
            LEARNING_RATES[pick], m[pick], marker="*", ms=16, color=color, ls="none"
        )
    for strategy, style in zip(CLASSICAL, ["--", "-.", ":"]):
        setting, rows = chosen[strategy, 0]
        ax.axhline(
            100 * rows.test_acc.mean(),
            ls=style,
            color="gray",
            label=f"{strategy} ({setting})",
        )
    ax.axhline(100 * chance, color="black", lw=1, label="chance (10 %)")
    ax.set_xscale("log")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"After {epochs} epoch{'s' if epochs > 1 else ''} "
        f"({epochs * steps_per_epoch} steps of batch {BATCH_SIZE})"
    )
axes[0].set_ylim(0, 100)
axes[1].set_xlabel("learning rate (Adam)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
fig.suptitle(f"Fashion-MNIST with 500 labels: mean and range over {N_SEEDS} seeds")
plt.show()

# %% [markdown]
# The differences that [the discussion](#sec-ch07-discussion) reads, as differences of the
# mean test accuracies (in points) with both ranges beside them:


# %% tags=["nbval-measured"] tolerance={"abs": 24.0, "rel": 20}
L = LONG_EPOCHS
sc1, ft1 = at_chosen("from scratch", 1), at_chosen("fine-tuning", 1)
scL, ftL = at_chosen("from scratch", L), at_chosen("fine-tuning", L)
probe_L = at_chosen("linear probe", L)
feat, pix = (at_chosen(f"logistic regression, {x}", 0) for x in ("features", "pixels"))
pairs = {
    "fine-tuning − from scratch, 1 ep": (ft1, sc1),
    f"fine-tuning − from scratch, {L} ep": (ftL, scL),
    f"log. regression, features − probe ({L} ep)": (feat, probe_L),
    "log. regression: pixels − features": (pix, feat),
}
differences = pd.DataFrame(
    {
        "difference": [100 * (a.mean() - b.mean()) for a, b in pairs.values()],
        "first: range": [f"{pct(a.min())}–{pct(a.max())}" for a, _ in pairs.values()],
        "second: range": [f"{pct(b.min())}–{pct(b.max())}" for _, b in pairs.values()],
    },
    index=list(pairs),
)
print(differences.to_string(formatters={"difference": "{:+.1f}".format}))
per_seed = 100 * (ft1.to_numpy() - sc1.to_numpy())  # the same seed: same batch order
print("fine-tuning − from scratch after 1 epoch, seed by seed:", end=" ")
print(", ".join(f"{v:+.1f}" for v in per_seed), "points")

# %% [markdown]
# The validation accuracy after each epoch, for the chosen learning rate of each trained strategy
# after `LONG_EPOCHS` epochs (the mean over the seeds, and the range as a band; the cell only
# draws):

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(plots.COLUMN_WIDTH, 4.2))
epoch_axis = np.arange(1, LONG_EPOCHS + 1)
mean_curve = {}
for strategy in STRATEGIES:
    lr = float(chosen[strategy, LONG_EPOCHS][0].removeprefix("lr="))
    c = 100 * np.array([curves[strategy, lr, s] for s in SEEDS])
    mean_curve[strategy] = c.mean(axis=0)
    ax.plot(epoch_axis, c.mean(axis=0), marker="o", label=f"{strategy}, lr={lr:.0e}")
    ax.fill_between(epoch_axis, c.min(axis=0), c.max(axis=0), alpha=0.2)
ax.axhline(100 * chance, color="black", lw=1, label="chance (10 %)")
ax.set_xlabel(f"epoch ({steps_per_epoch} steps of batch {BATCH_SIZE} each)")
ax.set_ylabel("validation accuracy (%)")
ax.set_ylim(0, 100)
ax.set_title(f"Validation accuracy per epoch: mean and range over {N_SEEDS} seeds")
ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.15))
plt.show()

# %% [markdown]
# (sec-ch07-errors)=
# ## What fine-tuning gets wrong, and what a too-large step does
#
# The errors of fine-tuning at learning rate $10^{-3}$ after `LONG_EPOCHS` epochs, one of the
# settings at the top of the comparison: the confusion matrix over the test predictions of all
# seeds together, and the share of the errors that confuse two upper-body garments (T-shirt/top,
# pullover, dress, coat, shirt) or involve a bag, seed by seed.

# %%
err_runs = [
    test_preds["fine-tuning", f"lr={ERRORS_LR:.0e}", LONG_EPOCHS, s] for s in SEEDS
]
ax, cm = plots.confusion_matrix(
    np.tile(y_test, N_SEEDS),
    np.concatenate(err_runs),
    classes,
    title=f"Fine-tuning, lr={ERRORS_LR:.0e}: test confusion matrix, {N_SEEDS} seeds",
)
plt.show()
upper_body = np.isin(
    np.arange(num_classes),
    [classes.index(c) for c in ["T-shirt/top", "Pullover", "Dress", "Coat", "Shirt"]],
)
bag = classes.index("Bag")

# %% tags=["nbval-measured"] tolerance={"abs": 96.0, "rel": 1.2}
breakdown = []
for pred in err_runs:
    errors = pred != y_test
    within = errors & upper_body[y_test] & upper_body[pred]
    with_bag = errors & ((y_test == bag) | (pred == bag))
    breakdown.append(
        {
            "errors": errors.sum(),
            "upper-body %": within.sum() / errors.sum(),
            "with a bag %": with_bag.sum() / errors.sum(),
        }
    )
breakdown = pd.DataFrame(breakdown)
breakdown.index = [f"seed {k + 1} of {N_SEEDS}" for k in range(N_SEEDS)]
print(breakdown.to_string(formatters={"upper-body %": pct, "with a bag %": pct}))

# %% [markdown]
# Between 70.7 % and 75.1 % of the errors, seed by seed, confuse two upper-body garments, and
# few involve a bag (at most 9.5 %). In the confusion matrix, the three largest off-diagonal
# entries all lie among the upper-body garments. At 28×28 grey levels these classes differ in
# details (a collar, a zip, a texture) more than in outline, as the misclassified images show:

# %% [markdown]
# (Some misclassified test images of the first seed's run; the cell only draws.)

# %% tags=["hide-input"]
wrong = np.flatnonzero(err_runs[0] != y_test)
pick = wrong[:: max(1, len(wrong) // 12)][:12]
plots.image_grid(
    X_test[pick],
    [f"{classes[y_test[i]]}\n→ {classes[err_runs[0][i]]}" for i in pick],
    ncols=6,
    size=1.25,
    suptitle="Fine-tuning: misclassified test images (true → predicted)",
)
plt.show()

# %% [markdown]
# At the other end of the sweep, the largest learning rate. How many different answers the
# networks trained at $10^{-1}$ give to the 2,000 test images, seed by seed, and how far the
# fine-tuned backbone has moved from its pretrained weights after the first epoch:


# %% tags=["nbval-measured"] tolerance={"abs": 41.0, "rel": 0.63}
def n_answers(pred):
    return np.count_nonzero(np.bincount(pred, minlength=num_classes))


for strategy in ["from scratch", "fine-tuning"]:
    preds = [test_preds[strategy, "lr=1e-01", LONG_EPOCHS, s] for s in SEEDS]
    answers = ", ".join(str(n_answers(p)) for p in preds)
    accs = ", ".join(pct(np.mean(p == y_test)) for p in preds)
    print(f"{strategy}, lr=1e-01, {LONG_EPOCHS} epochs, seed by seed:")
    print(f"  classes answered: {answers}; test accuracy (%): {accs}")
print(
    "fine-tuned backbone after 1 epoch at lr=1e-01: moved "
    + ", ".join(f"{drift[1e-1, 1, s]:.1f}" for s in SEEDS)
    + " times its own size"
)

# %% [markdown]
# At $10^{-1}$ fine-tuning ends with a single answer for all 2,000 test images on every seed, at
# chance: in its first epoch the backbone moves 13.1 to 13.8 times its own size away from the
# pretrained weights, and nothing of the start is left (exercise {ref}`ex-tl-drift`). Training
# from scratch at that rate is a lottery: it ends at chance on some seeds and learns on others
# (up to 65.8 %).

# %% [markdown]
# (sec-ch07-features)=
# ## Why is the probe weak? A look at the features
#
# Two measurements on the pretrained backbones. First, how many of the 128 features are zero on
# every image (ReLU units that never switch on), on the 500 target images and on 500 of the
# source digits. Second, logistic regression (same grid of $C$, chosen by mean validation
# accuracy) on the output of the convolution blocks, the 1,568 numbers that enter the backbone's
# last, fully connected layer: earlier layers of a network tend to be more general and later ones
# more specific to the source task {cite}`ch07-yosinski2014transferable`.

# %%
dead = []
for s in SEEDS:
    on_target = features[s][0].max(axis=0) == 0
    on_source = models.extract_features(pretrained[s], X_src[:500]).max(axis=0) == 0
    dead.append({"target": int(on_target.sum()), "source": int(on_source.sum())})
dead = pd.DataFrame(dead)
conv_runs = []
for s in SEEDS:
    conv_part = pretrained[s].backbone[
        :7
    ]  # conv, ReLU, pool, conv, ReLU, pool, flatten
    with torch.no_grad():
        G_train, G_val, G_test = (
            conv_part(x).numpy() for x in (X_train_t, X_val_t, X_test_t)
        )
    for C in LOGREG_CS:
        clf = logreg(C).fit(G_train, y_train)
        assert clf[-1].n_iter_.max() < 5000, "logistic regression did not converge"
        conv_runs.append(
            {
                "strategy": "convolution output",
                "setting": f"C={C:g}",
                "seed": s,
                "val_acc": clf.score(G_val, y_val),
                "test_acc": clf.score(G_test, y_test),
            }
        )
conv_runs = pd.DataFrame(conv_runs)
conv_setting = choose(conv_runs)["convolution output"]
conv_best = conv_runs[conv_runs.setting == conv_setting]
inputs = {
    f"final features ({d})": chosen["logistic regression, features", 0][1],
    f"convolution output ({G_train.shape[1]:,})": conv_best,
    "raw pixels (784)": chosen["logistic regression, pixels", 0][1],
}

# %% tags=["nbval-measured"] tolerance={"abs": 28.0, "rel": 8.7}
print(
    f"features that are zero on every image, of {d}: on the target images "
    + ", ".join(map(str, dead.target))
    + "; on MNIST digits "
    + ", ".join(map(str, dead.source))
    + " (seed by seed)"
)
feature_table = pd.DataFrame(
    {
        "validation %": [
            spread(stats.summarize(r.assign(k=0), "k", "val_acc")).iloc[0, 0]
            for r in inputs.values()
        ],
        "test %": [
            spread(stats.summarize(r.assign(k=0), "k", "test_acc")).iloc[0, 0]
            for r in inputs.values()
        ],
    },
    index=pd.Index(inputs, name="input to logistic regression"),
)
print(feature_table.to_string())

# %% [markdown]
# Between 48 and 53 of the 128 features are zero on every image, nearly as many on the digits as
# on the clothes: they are {term}`dead units <Dead unit>` left by pretraining, not a property of
# the new task. Logistic regression on the convolution output reaches 79.4 % on test, against
# 72.5 % on the final features and 78.8 % on the raw pixels: the information that separates the
# clothes is still there before the last layer, and lost after it.

# %% [markdown]
# (sec-ch07-discussion)=
# ## Discussion
#
# Read against the chance rate of 10 %, the {term}`standard error` of about 0.9 points
# {eq}`eq-tl-stderr` and the ranges over the seeds, the tables above say the following.
#
# **Transfer gave no measurable head start here.** After one epoch (16 steps), fine-tuning and
# training from scratch, each at its chosen rate, are tied: their ranges overlap, and the
# difference of their means, 4.4 points, is smaller than the from-scratch runs differ among
# themselves (48.1 % to 62.0 %). Seed by seed the difference runs from +0.8 to +11.3 points: which
# seed one happened to run would have decided whether transfer looked like a clear win. After ten
# epochs the two are tied again (77.9 % and 77.5 % on average, overlapping ranges), and their
# validation curves end close together. On this pair of datasets, what pretraining on digits
# bought cannot be told apart from the luck of the seed, although a good starting point is what
# transfer learning is expected to give when labels are few.
#
# **Frozen digit features are worse than pixels.** Logistic regression on the 128 frozen
# features, trained to convergence, is 10.6 points above the linear probe, and 6.3 points below
# logistic regression on the raw pixels, with disjoint ranges: freezing the whole backbone hurts
# here, a case of negative transfer. Where the information is lost shows in the feature study:
# 48 to 53 of the 128 features are dead, on the digits as much as on the clothes, and logistic
# regression on the convolution output, the 1,568 numbers before the last fully connected layer,
# is level with the pixels or above them (79.4 % against 78.8 %). The convolutions carry
# general-purpose features; the last layer, trained to separate digits, throws away what
# separates a shirt from a coat, as expected from {cite}`ch07-yosinski2014transferable`.
# Fine-tuning can retrain that layer; a probe cannot. Part of the probe's gap to logistic
# regression is only under-training: exercise {ref}`ex-tl-probe-longer` closes most of it.
#
# **The classical baselines are as good as the networks here.** After ten epochs, neither network
# at its chosen rate is ahead of logistic regression or boosted trees on the raw pixels (78.8 %
# and 78.0 %): no network's range lies above them. With 500 labels and ten epochs, a CNN with
# 206,922 trained parameters has no edge over a linear model on pixels. We did not measure larger
# training sets, where the usual claim that convolutional networks win is made
# {cite}`ch07-xiao2017fashion`. The classical models also cost seconds and no learning-rate sweep.
#
# **The learning rate matters more than the strategy.** After ten epochs, the learning rate
# moves every trained strategy's mean test accuracy by more than the choice among all six
# strategies at their chosen settings does. Too large a step destroys the start (fine-tuning at
# $10^{-1}$) or makes training a lottery (from scratch at $10^{-1}$); too small a step is slow:
# at $10^{-4}$, every trained strategy is still well behind its result at $10^{-3}$ after ten
# epochs. Sweep the rate on a log scale for each strategy before comparing strategies.

# %%
# The discussion's claims, checked on the numbers above (accuracies in [0, 1]).
head_start = ft1.mean() - sc1.mean()
assert stats.tied(ft1, sc1) and abs(head_start) < sc1.max() - sc1.min()
assert per_seed.max() - per_seed.min() > 5  # one seed alone: either story
assert stats.tied(scL, ftL)  # tied again after LONG_EPOCHS
ft_curve, sc_curve = mean_curve["fine-tuning"], mean_curve["from scratch"]
assert abs(ft_curve[-1] - sc_curve[-1]) < 3  # the curves end close together
assert ft_curve[-1] - ft_curve[0] > 10 and sc_curve[-1] - sc_curve[0] > 10

# %%
# ... on frozen features, the classical models and the learning rate:
trees = at_chosen("boosted trees, pixels", 0)
assert probe_L.max() < feat.min()  # the probe is under-trained
assert feat.max() < pix.min()  # frozen features: worse than pixels
conv = conv_best.test_acc
assert conv.min() > feat.max() + 0.03 and conv.mean() > pix.mean() - 0.01
assert (dead.target - dead.source).abs().max() <= 5 and dead.min().min() > 0.25 * d
for net in (scL, ftL):  # no network is ahead of a classical model on pixels
    assert net.min() <= pix.max() and net.min() <= trees.max()
level = [scL.mean(), ftL.mean(), pix.mean(), trees.mean()]
by_lr = stats.summarize(long[long.strategy.isin(STRATEGIES)], by_run, "test_acc")
lr_effect = by_lr["mean"].groupby(level="strategy").agg(lambda m: m.max() - m.min())
strategy_effect = max(level + [probe_L.mean()]) - min(level + [probe_L.mean()])
assert lr_effect.min() > strategy_effect  # the rate matters more than the strategy
for strategy in STRATEGIES:  # too small: still behind after LONG_EPOCHS
    gap = (
        by_lr.loc[(strategy, "lr=1e-03"), "mean"]
        - by_lr.loc[(strategy, "lr=1e-04"), "mean"]
    )
    assert gap > 0.04, strategy

# %%
# ... on the largest learning rate and on the errors:
for s in SEEDS:  # too large: fine-tuning at 1e-1 loses its start and learns nothing
    assert drift[1e-1, 1, s] > 10 and drift[1e-3, 1, s] < 0.3
    pred = test_preds["fine-tuning", "lr=1e-01", LONG_EPOCHS, s]
    assert n_answers(pred) == 1 and np.mean(pred == y_test) == chance
stuck = [n_answers(test_preds["from scratch", "lr=1e-01", L, s]) == 1 for s in SEEDS]
assert any(stuck) and not all(stuck)  # from scratch at 1e-1: a lottery
assert (breakdown["upper-body %"] > 0.6).all() and (
    breakdown["with a bag %"] < 0.15
).all()
off = cm * (1 - np.eye(num_classes))  # the largest confusions are among garments
top3 = np.argsort(off, axis=None)[::-1][:3]
assert all(
    upper_body[i] and upper_body[j] for i, j in zip(*np.unravel_index(top3, cm.shape))
)
print("all claims of the discussion hold")

# %% [markdown]
# (sec-ch07-resnet)=
# ## Optional: an ImageNet-pretrained ResNet-18
#
# A ResNet-18 {cite}`ch07-he2016resnet` trained on ImageNet is the usual starting point for
# transfer on natural images {cite}`ch07-kornblith2019better`. This section repeats the
# logistic-regression comparison with its $512$ features (each image resized to 64×64, copied into
# the three colour channels and normalised with the ImageNet statistics). It needs torchvision
# and the weights file already in the torch hub cache; it never downloads (this book must run
# offline), and otherwise it is skipped with a note, as on the machine that executed this page.

# %% tags=["nbval-ignore-output"] ignore_reason="runs only where torchvision and the ImageNet weights are installed; elsewhere it prints why it skipped"
weights_path, note = models.find_resnet18_weights()
print(note)
if weights_path is not None:
    resnet = models.imagenet_resnet18(weights_path)
    R_train, R_val, R_test = (
        models.resnet18_features(resnet, X) for X in (X_train, X_val, X_test)
    )
    for C in LOGREG_CS:
        clf = logreg(C).fit(R_train, y_train)
        print(
            f"ResNet-18 features + logistic regression, C={C:g}: "
            f"validation {pct(clf.score(R_val, y_val))}%, "
            f"test {pct(clf.score(R_test, y_test))}%"
        )

# %% [markdown]
# ## Summary
#
# - A network splits into a **backbone** (features) and a **head** (a linear layer on them).
#   Transfer learning reuses a backbone trained on a source task: frozen under a new linear head
#   (a **linear probe**, the same model as logistic regression on the frozen features), or as the
#   starting point of **fine-tuning** every weight.
# - MNIST → Fashion-MNIST with 500 labels: fine-tuning and training from scratch, each at its
#   chosen learning rate, were tied after one epoch and after ten; which seed one happened to run
#   would have decided whether transfer looked like a clear win after one epoch. Frozen last-layer digit features were 6.3 points worse than
#   raw pixels, while the convolution output transferred as well as the pixels: which layer you
#   reuse decides whether transfer helps, and only several seeds tell whether it did.
# - The learning rate moved every strategy's accuracy more than the choice of strategy did: sweep
#   it on a log scale, and compare strategies at their chosen rates.
# - Choose on validation data, report on test data, run several seeds and call overlapping ranges
#   a tie; read accuracies against the chance rate and the standard error
#   $\sqrt{a(1-a)/N_{\text{test}}}$.
# - Classical models on raw pixels (logistic regression, boosted trees) were as accurate as the
#   best networks at this data size, for seconds of CPU. Always include them.
# - Pretrained weights that are not downloaded belong in the user cache, keyed by a hash of
#   everything that produced them (data, settings, seed, library version, CPU kernels) and
#   checked by SHA-256 on load.
#
# ## Exercises
#
# ```{exercise} Training the probe for longer
# :label: ex-tl-probe-longer
#
# The linear probe and logistic regression on the frozen features fit the same family of
# functions, yet after ten epochs the probe was 10.6 points below logistic regression.
# Because the backbone is frozen, its features of the 500 training images never change: compute
# them once, check that training a head on them reproduces the probe of the sweep, then train the
# head for 200 epochs (Adam, learning rate $10^{-2}$, batch 32), once on the raw features and once
# on standardised ones. What does that say about the probe's gap?
# ```
#
# ```{solution} ex-tl-probe-longer
# :class: dropdown
#
# Training the head on precomputed features is the same computation as the probe (the frozen
# backbone gives the same features every epoch), and much cheaper: no convolution per step. The
# first solution cell below checks that one epoch reproduces the probe's weights, then trains
# longer. After 200 epochs the head on standardised features reaches 72.0 % on average, against
# 72.5 % for logistic regression on the same features, and the head on raw features 68.3 %: the
# probe's gap in the sweep was under-training (ten epochs of 16 steps, on features of very
# different scales), not a weaker model. What remains below the pixels is the features' fault,
# not the optimiser's.
# ```
#
# ```{exercise} Choosing on the test set
# :label: ex-tl-selection
#
# For each seed, choose among all runs of that seed (the networks after one and after ten epochs,
# and the classical models) the one with the highest **test** accuracy instead of the one with the
# highest validation accuracy. How much higher is the chosen run's test accuracy? Why is a test
# accuracy chosen this way an optimistic estimate of the accuracy on new images?
# ```
#
# ```{solution} ex-tl-selection
# :class: dropdown
#
# The second solution cell prints both, seed by seed. The maximum over many runs of a noisy
# estimate is biased upwards: among 34 runs, the one with the highest test score is partly the one
# whose test errors happened to be few. The run chosen on validation has no such bias on test.
# Here the difference is 0.3 points on average; with more runs, fewer test images or runs closer
# together it grows.
# ```
#
# ```{exercise} How far fine-tuning moves the backbone
# :label: ex-tl-drift
#
# Fine-tuning at learning rate $10^{-1}$ ended at chance on every seed, although it started from
# the same pretrained weights as the runs at $10^{-3}$. The sweep recorded, for every fine-tuning
# run, the distance of the backbone from its pretrained weights relative to their size, after one
# and after ten epochs. Use it to explain the result.
# ```
#
# ```{solution} ex-tl-drift
# :class: dropdown
#
# The third solution cell prints the table, averaged over the seeds. At $10^{-1}$ the backbone
# moves 13.4 times its own size in the first epoch, at $10^{-3}$ 0.19 of it. Adam's steps are
# about the size of the learning rate for every weight, whatever the gradient's scale
# {cite}`ch07-kingma2015adam`, and the pretrained weights are small (root mean square 0.028), so a
# few steps of $10^{-1}$ overwrite them entirely. What is left is a network trained from a damaged
# start with a step that is too large even from scratch (from scratch at $10^{-1}$ was a
# lottery). Fine-tuning keeps the benefit of pretraining only with small steps, which is why it
# is usually run at a lower learning rate than training from scratch.
# ```
#
# ```{exercise} Batch normalisation in a frozen backbone
# :label: ex-tl-batchnorm
#
# `SmallCNN` has no batch normalisation {cite}`ch07-ioffe2015batchnorm`. Suppose its backbone had
# a `BatchNorm2d` layer, and you trained a linear probe with `requires_grad=False` on every
# backbone parameter but the whole model in `train()` mode, as `training.fit` does. Would the
# backbone stay frozen? What would you do instead?
# ```
#
# ```{solution} ex-tl-batchnorm
# :class: dropdown
#
# No. In train mode a batch-normalisation layer normalises with the statistics of the current
# batch and updates its running mean and variance, which are buffers, not parameters:
# `requires_grad` does not touch them. The features therefore change during "frozen" training,
# and at evaluation time (eval mode, running statistics) they differ from those the head was
# trained on. Put the backbone in eval mode after every `model.train()` call (or override
# `train()` to do so), or precompute the features as in exercise {ref}`ex-tl-probe-longer`. The
# last code cell below shows the running mean moving in train mode and staying put in eval mode.
# ```
#
# The solutions, computed: one cell per exercise, in order.


# %% tags=["hide-input", "nbval-measured"] tolerance={"abs": 9.6, "rel": 8.7}
# Exercise ex-tl-probe-longer: a head trained on precomputed features.
def train_head(features_t, seed, num_epochs, lr=1e-2):
    """The probe's head (same initial weights, same batch order), on fixed features."""
    head = copy.deepcopy(pretrained[seed]).replace_head(num_classes, seed=seed).head
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    loader = training.make_loader(features_t, y_train, BATCH_SIZE, seed=seed)
    training.fit(
        head,
        loader,
        loss_fn=nn.functional.cross_entropy,
        optimizer=opt,
        num_epochs=num_epochs,
        device="cpu",
        progress=False,
    )
    return head


probe_net, probe_opt, probe_loader = start("linear probe", 1e-2, SEED)
train_more(probe_net, probe_opt, probe_loader, 1)
head_1ep = train_head(torch.from_numpy(features[SEED][0]), SEED, 1)
torch.testing.assert_close(head_1ep.weight, probe_net.head.weight, rtol=1e-4, atol=1e-5)
print("one epoch on precomputed features == one epoch of the probe (to 1e-5)")
longer = []
for s in SEEDS:
    F_tr, F_te = (torch.from_numpy(features[s][i]) for i in (0, 2))
    mu, sd = F_tr.mean(0), F_tr.std(0).clamp_min(1e-6)
    for label, tr, te in [
        ("raw", F_tr, F_te),
        ("standardised", (F_tr - mu) / sd, (F_te - mu) / sd),
    ]:
        head = train_head(tr, s, 200)
        with torch.no_grad():
            acc = float((head(te).argmax(1).numpy() == y_test).mean())
        longer.append(
            {"model": f"head, 200 epochs, {label} features", "seed": s, "test_acc": acc}
        )
longer = pd.concat(
    [
        pd.DataFrame(longer),
        probe_L.to_frame().assign(model=f"probe of the sweep, {L} epochs"),
        feat.to_frame().assign(model="logistic regression on the features"),
    ]
)
print(f"test accuracy (%) over {N_SEEDS} seeds")
print(spread(stats.summarize(longer, "model", "test_acc")).to_string())
by_model = longer.groupby("model", sort=False).test_acc.mean()
raw_head, std_head = by_model.iloc[0], by_model.iloc[1]
assert abs(std_head - feat.mean()) < 0.015 and raw_head < std_head - 0.015

# %% tags=["hide-input", "nbval-measured"] tolerance={"abs": 5.2, "rel": null}
# Exercise ex-tl-selection: choosing on test instead of validation, seed by seed.
everything = pd.DataFrame(runs)
picks = []
for s in SEEDS:
    mine = everything[(everything.seed == s) | everything.seed.isna()]
    on_val = mine.sort_values("val_acc", ascending=False, kind="stable").iloc[0]
    picks.append({"on validation": on_val.test_acc, "on test": mine.test_acc.max()})
picks = pd.DataFrame(picks)
picks["optimism"] = picks["on test"] - picks["on validation"]
picks.index = [f"seed {k + 1} of {N_SEEDS}" for k in range(N_SEEDS)]
print(f"test accuracy (%) of the run chosen among the {len(mine)} runs of a seed")
print(picks.map(pct).to_string())
print(f"optimism, mean over the seeds: {100 * picks.optimism.mean():.1f} points")
assert (picks.optimism >= 0).all()

# %% tags=["hide-input", "nbval-measured"] tolerance={"abs": 0.99, "rel": 0.25}
# Exercise ex-tl-drift: how far fine-tuning moved the backbone (mean over the seeds).
theta = [flat_backbone(pretrained[s]) for s in SEEDS]
rms = np.mean([float(t.pow(2).mean().sqrt()) for t in theta])
med = np.mean([float(t.abs().median()) for t in theta])
print(f"pretrained backbones: root mean square weight {rms:.3f}, ", end="")
print(f"median |weight| {med:.3f}")
drift_table = pd.DataFrame(
    {
        f"after {e} ep": {
            f"lr={lr:.0e}": np.mean([drift[lr, e, s] for s in SEEDS])
            for lr in LEARNING_RATES
        }
        for e in (1, LONG_EPOCHS)
    }
).rename_axis("relative distance")
print(drift_table.to_string(float_format="{:.3f}".format))

# %% tags=["hide-input"]
# Exercise ex-tl-batchnorm: batch normalisation in a "frozen" backbone.
bn_backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
for p in bn_backbone.parameters():
    p.requires_grad_(False)
before = bn_backbone[1].running_mean.clone()
bn_backbone.train()
with torch.no_grad():
    bn_backbone(X_train_t[:32])
moved = float((bn_backbone[1].running_mean - before).abs().max())
bn_backbone.eval()
frozen_mean = bn_backbone[1].running_mean.clone()
with torch.no_grad():
    bn_backbone(X_train_t[:32])
assert moved > 0 and torch.equal(bn_backbone[1].running_mean, frozen_mean)
print("train mode: the running mean moved, although no parameter requires a gradient")
print("eval mode: the running mean stayed as it was")

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch07-
# ```
