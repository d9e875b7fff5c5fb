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
# # Chapter 5: Backpropagation from scratch on Fashion-MNIST
#
# This chapter trains a real image classifier with nothing but the pieces built so far: the
# reverse-mode engine of [chapter 1](01_computational_graph.ipynb) computes every gradient, and
# the optimizers of [chapter 3](03_optimizers.ipynb) take the steps. No automatic-differentiation
# library is involved; PyTorch appears only as a referee that checks our gradients. On top of
# that network we do what a practitioner does next: a hyperparameter {term}`sweep`, a careful look
# at the errors of the chosen model, a comparison of two loss functions, and a second dataset.
# Backpropagation through a whole network turns out to be the chain rule applied layer after
# layer, and the sweep teaches a lesson of its own: a search scores every configuration with one
# noisy run, so what it finds has to be re-trained with other {term}`seeds <seed>` before anything
# is concluded from it.
#
# **Learning objectives.** After this chapter you can
#
# - write the forward and backward pass of a feedforward network as matrix products, and check
#   the whole network's gradient against finite differences and `torch.autograd`;
# - train that network with minibatches, an optimizer of [chapter 3](03_optimizers.ipynb) and a
#   cosine learning-rate schedule;
# - run a Bayesian hyperparameter sweep (optuna's TPE sampler with a median pruner) and separate
#   what it found from what one seed favoured, by re-training its best configurations with
#   several seeds and by changing one factor at a time;
# - read a classifier's errors: per-class recall, the confusions, and the confident mistakes that
#   raise the validation loss while the accuracy holds;
# - explain why squared error on softmax outputs learns least from its worst mistakes, and measure
#   whether that matters in training;
# - train any configuration, or run the full search, from the command line with `train.py`.
#
# **Prerequisites:** [chapter 0](00_data.ipynb) (the datasets),
# [chapter 1](01_computational_graph.ipynb) (the computational graph),
# [chapter 3](03_optimizers.ipynb) (the optimizers) and
# [chapter 4](04_minibatch_sign_mnist.ipynb) (minibatch training, seeds and ties).
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
    package = f"course-utils[ch05] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
# SEED seeds the split, the subsets, every initialisation, the batch order and the
# sampler; every comparison of trained configurations runs N_SEEDS seeds: SEED,
# SEED + 1, ...
SEED = 0
N_SEEDS = 3
# The sweep (section 4): optuna TPE trials, each trained on a stratified subset of the
# training split and scored on the whole validation split; then the sweep's TOP_K best
# configurations are re-trained with N_SEEDS seeds. A reader with time may raise them:
# `train.py sweep` runs the full search (all 54,000 images, hundreds of trials).
SWEEP_TRAIN = 5_000  # training images per trial
N_TRIALS = 30
TOP_K = 3
# Loss comparison (section 6): four optimizers x two losses x N_SEEDS, on a subset.
CMP_TRAIN = 10_000
CMP_EPOCHS = 5
# MNIST (section 7): three configurations x N_SEEDS on the 54,000-image training split.
MNIST_EPOCHS = 4
# Every run decays its learning rate to 0 with a cosine over the run.
LR_SCHEDULE = "cosine"

# %%
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

import course_utils
from course_utils import checks, cli, data, graph, network, optim, plots, stats, sweeps

SEEDS = [SEED + k for k in range(N_SEEDS)]
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# (sec-ch05-data)=
# ## 1. The data
#
# Fashion-MNIST {cite}`ch05-xiao2017fashion` has the shape of MNIST (28x28 grey images, 60,000 for
# training and 10,000 for testing, ten balanced classes) but shows clothes, and it is harder: a
# shirt, a T-shirt and a pullover can look alike at this resolution. We keep the standard
# {term}`test set` untouched until the end and hold out 10% of the training images, seeded and
# {term}`stratified <stratified split>`, as the {term}`validation set`: every model choice below is
# made on those 6,000 images.

# %%
ds = data.load("fashion-mnist")
print(ds.note())
X_tr_img, X_val_img, y_tr, y_val = data.train_val_split(
    ds.X_train, ds.y_train, val_fraction=0.1, seed=SEED
)
y_test = ds.y_test
print(f"train {len(y_tr):,} / validation {len(y_val):,} / test {len(y_test):,} images")
print("validation images per class:", np.bincount(y_val).tolist())
assert (np.bincount(y_val) == 600).all() and (np.bincount(y_tr) == 5_400).all()

# %%
first = [int(np.flatnonzero(y_tr == k)[0]) for k in range(ds.num_classes)]
fig = plots.image_grid(
    X_tr_img[first],
    titles=ds.classes,
    ncols=5,
    size=1.4,
    suptitle="Fashion-MNIST: the first training image of each class",
)
plt.show()

# %% [markdown]
# The network sees each image as a row of 784 numbers. We scale the pixels to $[0, 1]$, subtract
# the per-pixel mean of the training split and divide by the training split's overall standard
# deviation (one number, so the always-black border pixels are not blown up). The statistics come
# from the training split only; validation and test images are transformed with them.

# %%
scaler = network.Standardizer().fit(X_tr_img)
X_tr, X_val, X_test = (
    scaler.transform(X_tr_img),
    scaler.transform(X_val_img),
    scaler.transform(ds.X_test),
)
assert abs(X_tr.mean()) < 1e-4
print(f"rows: {X_tr.shape}, {X_tr.dtype}; pixel sd used: {scaler.std:.4f}")
print(f"sd of the scaled training rows: {X_tr.std():.3f}")

# %% [markdown]
# (sec-ch05-network)=
# ## 2. The network is a graph, backpropagation is the chain rule through it
#
# A feedforward classifier with $L$ hidden layers maps a batch $X$ (one example per row, $B$ of
# them) to {term}`logits` through affine layers and an activation $\phi$:
#
# $$
# \begin{aligned}
# Z_l &= H_{l-1} W_l^\top + \mathbf{1}\mathbf{b}_l^\top, && l = 1, \dots, L+1, \\
# H_l &= \phi(Z_l), && l = 1, \dots, L, \qquad H_0 = X .
# \end{aligned}
# $$ (eq-bp-forward)
#
# The logits of example $i$ are row $i$ of $Z_{L+1}$, written $\mathbf{z}_i$. The objective is the
# mean loss over the batch plus an optional L2 penalty on the weight matrices
# ({term}`weight decay` $\lambda_{\text{wd}}$; biases are not decayed):
#
# $$
# \mathcal{L} = \frac{1}{B}\sum_{i=1}^{B} \ell(\mathbf{z}_i, y_i)
# + \frac{\lambda_{\text{wd}}}{2}\sum_{l=1}^{L+1} \lVert W_l\rVert_F^2 ,
# $$ (eq-bp-objective)
#
# with one of two losses on the softmax probabilities $\mathbf{s} = \operatorname{softmax}(\mathbf{z})$,
# {term}`cross-entropy` or squared error:
#
# $$
# \ell_{\text{CE}}(\mathbf{z}, y) = -\log s_y, \qquad
# \ell_{\text{SE}}(\mathbf{z}, y) = \lVert \mathbf{s} - \mathbf{e}_y\rVert^2 .
# $$ (eq-bp-losses)
#
# {term}`Backpropagation` {cite}`ch05-rumelhart1986backprop` starts from
# $G_{L+1} = \partial\mathcal{L}/\partial Z_{L+1}$ (for cross-entropy $G_{L+1} = (S - Y)/B$, where
# the rows of $S$ are the softmax probabilities and $Y$ holds the one-hot labels) and walks back,
# one layer at a time:
#
# $$
# \begin{aligned}
# \frac{\partial \mathcal{L}}{\partial W_l} &= G_l^\top H_{l-1} + \lambda_{\text{wd}} W_l, \\
# \frac{\partial \mathcal{L}}{\partial \mathbf{b}_l} &= G_l^\top \mathbf{1}, \\
# G_{l-1} &= \big(G_l W_l\big) \odot \phi'(Z_{l-1}) .
# \end{aligned}
# $$ (eq-bp-backward)
#
# Nothing here is new: each of these products is the backward rule of one node of
# [chapter 1](01_computational_graph.ipynb)'s engine (`Linear`, `ReLU`, `SoftmaxCrossEntropy`,
# ...), and `graph.backward` calls them in reverse topological order. `network.FeedForwardNet`
# only wires the nodes for any list of hidden sizes, activation, initialisation and loss. Here is
# the graph of a small network:

# %%
demo = network.FeedForwardNet(
    784, [32, 32], 10, activation="tanh", init="xavier", loss="cross_entropy", seed=SEED
)
print(textwrap.fill(repr(demo), 88, subsequent_indent="    "))
print(" -> ".join(node.name for node in graph.topological_sort(demo.loss)))
shapes = ", ".join(f"{p.name} {p.value.shape}" for p in demo.params)
print(textwrap.fill(f"parameters: {shapes}", 88, subsequent_indent="    "))

# %% [markdown]
# (sec-ch05-gradient-check)=
# ### Checking the whole network's gradients
#
# [Chapter 1](01_computational_graph.ipynb) checked each node on its own. A network composes them, and a wiring mistake (a missing
# accumulation, a transposed product) would only show on the whole. We check the full gradient of
# {eq}`eq-bp-objective` with respect to every parameter of a small network, in float64, for every
# activation and both losses, with weight decay switched on, against central finite differences
# (`checks.numerical_gradient`, step $10^{-6}$).

# %%
rng = np.random.default_rng(SEED)
X_small = rng.standard_normal((8, 12))
y_small = rng.integers(0, 4, size=8)


def small_net(activation, loss):
    net = network.FeedForwardNet(
        12,
        [6, 5],
        4,
        activation=activation,
        init="he",
        loss=loss,
        weight_decay=0.05,
        dtype=np.float64,
        seed=SEED,
    )
    for layer in net.layers:  # non-zero biases: a generic point
        layer.b.value[...] = 0.3 * rng.standard_normal(layer.b.value.shape)
    return net


# %%
rows = []
for activation in network.ACTIVATIONS:
    for loss in network.LOSSES:
        net = small_net(activation, loss)
        net.loss_and_grads(X_small, y_small)
        worst = 0.0
        for prm in net.params:
            analytic, original = prm.grad.copy(), prm.value.copy()

            def f(v, prm=prm, net=net):
                prm.value[...] = v
                return net.objective(X_small, y_small)

            numeric = checks.numerical_gradient(f, original)
            prm.value[...] = original
            worst = max(worst, checks.relative_error(analytic, numeric))
        rows.append(
            {
                "activation": activation,
                "loss": loss,
                "parameters": net.num_parameters,
                "max relative error": "< 1e-6" if worst < 1e-6 else f"{worst:.1e}",
            }
        )
fd = pd.DataFrame(rows)
assert (fd["max relative error"] == "< 1e-6").all()
print(fd.to_string(index=False))

# %% [markdown]
# Finite differences agree to better than $10^{-6}$ in every case. They are an independent check
# but a weak one (their own error is about $10^{-8}$ here). A sharper referee is PyTorch: we copy
# the weights into a `torch` model with the same architecture and compare the loss and every
# gradient that `torch.autograd` computes, in float64.

# %%
torch_act = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}
rows = []
for activation in network.ACTIVATIONS:
    for loss in network.LOSSES:
        net = small_net(activation, loss)
        data_loss = net.loss_and_grads(X_small, y_small)
        leaves = [torch.tensor(p.value, requires_grad=True) for p in net.params]
        pairs = list(zip(leaves[0::2], leaves[1::2]))  # (W, b) of each layer
        h = torch.tensor(X_small)
        for i, (W, b) in enumerate(pairs):
            h = h @ W.T + b
            h = torch_act[activation](h) if i < len(pairs) - 1 else h
        yt = torch.tensor(y_small)
        if loss == "cross_entropy":
            L = F.cross_entropy(h, yt)
        else:
            L = ((torch.softmax(h, 1) - F.one_hot(yt, 4).double()) ** 2).sum(1).mean()
        (L + 0.5 * net.weight_decay * sum((W**2).sum() for W, _ in pairs)).backward()
        np.testing.assert_allclose(data_loss, L.item(), rtol=1e-12)
        for prm, leaf in zip(net.params, leaves):
            np.testing.assert_allclose(
                prm.grad, leaf.grad.numpy(), rtol=1e-9, atol=1e-13
            )
        worst = max(
            checks.relative_error(p.grad, leaf.grad.numpy())
            for p, leaf in zip(net.params, leaves)
        )
        rows.append(
            {
                "activation": activation,
                "loss": loss,
                "max relative error": "< 1e-12" if worst < 1e-12 else f"{worst:.0e}",
            }
        )
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# The two libraries agree to rounding error: our backward pass *is* the gradient.
#
# (sec-ch05-training)=
# ## 3. Training: one step, many times
#
# A {term}`step` is four lines: put a {term}`minibatch` into the graph's input leaves,
# `graph.forward`, `graph.backward`, and `opt.step` with the list of gradient arrays; the optimizer
# updates the parameter arrays in place, so the graph sees the new weights at the next step
# without being rebuilt. `network.train` wraps that loop with shuffling, a learning-rate
# schedule, per-epoch metrics and a callback. Every run of this chapter uses float32 (float64 is
# only for the checks) and a cosine schedule {cite}`ch05-loshchilov2017sgdr` (without restarts)
# over the $T$ steps of the run,
#
# $$
# \eta_t = \tfrac{\eta}{2}\big(1 + \cos(\pi t / T)\big),
# $$ (eq-bp-cosine)
#
# a choice the source assignment did not make: it lets a short run finish at a small learning
# rate instead of bouncing around the minimum. The learning rates named below are the peak values
# $\eta$.
#
# One helper trains a configuration, given as a dictionary of the sweep's hyperparameter names,
# with one seed (the seed fixes the initial weights and the batch order), and a second one repeats
# that for every seed of `SEEDS`:


# %%
def run(p, X, y, seed, loss="cross_entropy"):
    """Train configuration p (the sweep's names) with one seed: (net, history)."""
    net = sweeps.build_network(p, num_classes=ds.num_classes, seed=seed, loss=loss)
    history = network.train(
        net,
        X,
        y,
        X_val=X_val,
        y_val=y_val,
        optimizer=p["optimizer"],
        lr=p["learning_rate"],
        batch_size=p["batch_size"],
        num_epochs=p["epochs"],
        schedule=LR_SCHEDULE,
        seed=seed,
    )
    return net, history


def over_seeds(configs, X, y, loss="cross_entropy"):
    """Every configuration of a dict label -> p with every seed: a row per run."""
    rows, histories = [], {}
    for label, p in configs.items():
        for seed in SEEDS:
            _, h = run(p, X, y, seed, loss=loss)
            histories[label, seed] = h
            acc = 100 * h["val_acc"].iloc[-1]
            rows.append({"configuration": label, "seed": seed, "val_acc": acc})
    return pd.DataFrame(rows), histories


# %% [markdown]
# The tables of results over seeds all have the same form, mean ± sd and the range (min to max)
# of the validation accuracy in percent; this cell formats them:


# %% tags=["hide-input"]
def spread(summary, ref=None):
    """A printable table of a stats.summarize table (values in %)."""
    out = pd.DataFrame(index=summary.index)
    out["mean ± sd"] = [
        stats.mean_sd(m, s) for m, s in zip(summary["mean"], summary["sd"])
    ]
    out["min"] = summary["min"].map(lambda v: f"{v:.1f}")
    out["max"] = summary["max"].map(lambda v: f"{v:.1f}")
    if ref is not None:
        out["mean - " + ref] = (summary["mean"] - summary.loc[ref, "mean"]).map(
            lambda v: f"{v:+.1f}"
        )
    out.index.name = None
    return out.to_string()


# %% [markdown]
# (sec-ch05-sweep)=
# ## 4. The sweep
#
# Which depth, width, activation, initialisation, optimizer, learning rate, batch size, weight
# decay and number of epochs? The source assignment's search space, with the He initialisation
# {cite}`ch05-he2015delving` beside Xavier's {cite}`ch05-glorot2010understanding` and a small
# "random" one, has $2 \cdot 3 \cdot 3 \cdot 3 \cdot 2 \cdot 6 \cdot 3 \cdot 3 \cdot 3$ = 17,496
# combinations, far more than we can train. Three strategies:
#
# - **Grid search** trains every combination, or a coarse sub-grid; with nine parameters even two
#   values each is $2^9 = 512$ runs, and most of them vary parameters that do not matter.
# - **Random search** {cite}`ch05-bergstra2012random` samples combinations uniformly. It beats a
#   grid when few parameters matter, because every trial tries a new value of each parameter, but
#   it never learns: its last trial is as likely as its first to pair a learning rate of
#   $10^{-4}$ with plain SGD, or to use a weight decay of 0.5.
# - **TPE**, the tree-structured Parzen estimator {cite}`ch05-bergstra2011algorithms` in optuna
#   {cite}`ch05-akiba2019optuna`, starts with a few random trials, then splits the finished trials
#   into a good group and a bad one and proposes values that are likely under the good group's
#   distribution and unlikely under the bad group's, so it stops spending trials on settings
#   that failed. A median pruner also stops a trial after any epoch in which its validation
#   accuracy is below the median of the earlier trials at that epoch (once five trials have
#   finished).
#
# **Sizing.** A trial trains on a stratified subset of `SWEEP_TRAIN` = 5,000 training images for
# the trial's own number of epochs (5 or 10), and is scored by its accuracy on all 6,000
# validation images after the last epoch; `N_TRIALS` = 30 trials fit the chapter's CPU budget.
# Every trial starts from weights drawn with the same seed and sees the batches in the same
# order, so two trials differ only in their hyperparameters. `sweeps.make_objective` builds that
# trial, and `train.py sweep` ({ref}`sec-ch05-cli`) builds its trials with it too.

# %%
SPACE = sweeps.SOURCE_SPACE
print(f"{len(SPACE)} parameters, {sweeps.space_size(SPACE):,} combinations:")
for name, choices in SPACE.items():
    print(f"  {name:14s} {choices}")
_, X_sweep_img, _, y_sweep = data.train_val_split(
    X_tr_img, y_tr, val_fraction=SWEEP_TRAIN / len(y_tr), seed=SEED
)
X_sweep = scaler.transform(X_sweep_img)
per_class = np.bincount(y_sweep)
print(f"sweep subset: {len(y_sweep):,} images, ", end="")
print(f"{per_class.min()}-{per_class.max()} per class")

# %%
objective = sweeps.make_objective(
    X_sweep,
    y_sweep,
    X_val,
    y_val,
    num_classes=ds.num_classes,
    space=SPACE,
    seed=SEED,
    schedule=LR_SCHEDULE,
)
study = sweeps.make_study(
    SEED, n_startup_trials=10, pruner_warmup_epochs=1, pruner_startup_trials=5
)
t0 = time.process_time()
sweeps.run_study(study, objective, N_TRIALS, desc="sweep")
sweep_cpu = time.process_time() - t0
table = sweeps.results_table(study, list(SPACE))

# %% [markdown]
# `TPESampler(seed=SEED)` and one worker make the sweep repeat exactly on one machine. On another
# machine the first ten trials, which are random, are the same; from then on TPE proposes from
# the results, whose last digits differ between machines, and the sweep may take another path.
# With another seed it takes another path from the first trial. So the table below is this run's
# sweep, not a result another reader will reproduce digit for digit, and nothing in this chapter
# is concluded from its order; the conclusions come from the re-trained runs of
# {ref}`sec-ch05-top-group` and {ref}`sec-ch05-one-factor`, which do not depend on the path. The
# trials, best first (a pruned trial shows the validation accuracy of the last epoch it ran, as
# "epochs run/planned", and sorts after the completed ones), and the fANOVA importances
# {cite}`ch05-hutter2014fanova` of this sweep (a random forest fitted to the completed trials,
# its variance split into a share per parameter):

# %% tags=["nbval-ignore-output"] ignore_reason="a Bayesian sweep's later trials depend on earlier results, so another machine or seed samples other configurations"
counts = table["state"].value_counts()
print(
    f"{N_TRIALS} trials in {sweep_cpu:.0f} s of CPU time: "
    f"{counts.get('complete', 0)} completed, {counts.get('pruned', 0)} pruned"
)
show = pd.DataFrame(
    {
        "trial": table["trial"],
        "val acc": (100 * table["val_acc"]).map(lambda v: f"{v:.1f}%"),
        "epochs": [
            f"{r.epochs}" if r.state == "complete" else f"{r.epochs_run}/{r.epochs}"
            for r in table.itertuples()
        ],
        "layers": table["num_layers"],
        "size": table["hidden_size"],
        "wd": table["weight_decay"].map(lambda v: f"{v:g}"),
        "lr": table["learning_rate"].map(lambda v: f"{v:g}"),
        "optimizer": table["optimizer"],
        "batch": table["batch_size"],
        "init": table["weight_init"],
        "activation": table["activation"],
    }
)
print(show.to_string(index=False))
importance = sweeps.param_importances(study, seed=SEED)
shares = ", ".join(f"{k} {v:.2f}" for k, v in importance.items())
print(textwrap.fill(f"fANOVA importances: {shares}", 88, subsequent_indent="    "))

# %% [markdown]
# Two pictures of the same run: each trial's validation accuracy against its number, with the
# best so far as a line (the first plot a W&B sweep shows), and the parallel-coordinates plot,
# one line per trial through its value of each hyperparameter, coloured by the accuracy it
# reached.

# %%
fig, (ax_trial, ax_par) = plt.subplots(
    2, 1, figsize=(plots.COLUMN_WIDTH, 8.2), height_ratios=[1, 1.35]
)
sweeps.accuracy_by_trial_plot(
    table,
    ax=ax_trial,
    title=f"Sweep: validation accuracy of each of {N_TRIALS} trials",
)
sweeps.parallel_coordinates(
    table,
    list(SPACE),
    value="val_acc",
    space=SPACE,
    ax=ax_par,
    title=f"Parallel coordinates, trained on {SWEEP_TRAIN:,} images",
)
plt.show()

# %% [markdown]
# Both pictures show how TPE works rather than what is true of the hyperparameters. The first ten
# trials are random; later trials cluster around what worked so far, so the parallel coordinates
# are dense near the best configurations and sparse elsewhere. A value that appears only in bad
# trials may have been unlucky in its company: the sampler pairs values, so the trials that used
# one setting also share whatever else TPE put beside it. For the same reason the importances
# describe the trials this sweep chose and change with its path.
#
# (sec-ch05-top-group)=
# ### Re-training the sweep's best with several seeds
#
# Every trial ran with one seed, so the sweep's ranking mixes real differences with the luck of
# that seed, and its best trial is the one that was both good and lucky. We take the sweep's
# `TOP_K` = 3 best completed configurations and the defaults of `train.py` (the configuration a
# reader gets without arguments, {ref}`sec-ch05-cli`), and train each of them with `N_SEEDS` = 3
# seeds on the same 5,000 images. With the first seed, each of the sweep's configurations repeats
# its trial exactly. Under the book's rule, configurations whose ranges over the seeds overlap
# are tied.

# %% tags=["nbval-measured"] tolerance={"abs": 4.0, "rel": 2.0}
args = cli.build_parser().parse_args([])
DEFAULTS = {  # train.py's defaults, in the sweep's names
    "epochs": args.epochs,
    "num_layers": args.num_layers,
    "hidden_size": args.hidden_size,
    "weight_decay": args.weight_decay,
    "learning_rate": args.learning_rate,
    "optimizer": {"nag": "nesterov"}.get(args.optimizer, args.optimizer),
    "batch_size": args.batch_size,
    "weight_init": args.weight_init.lower(),
    "activation": args.activation.lower(),
}
candidates, trial_of = {"defaults": DEFAULTS}, {}
for number in table.loc[table["state"] == "complete", "trial"]:
    params = study.trials[number].params
    if params not in candidates.values() and len(candidates) <= TOP_K:
        label = f"sweep #{len(candidates)}"
        candidates[label], trial_of[label] = params, number
top_results, top_hist = over_seeds(candidates, X_sweep, y_sweep)
top_summary = stats.summarize(top_results, "configuration", "val_acc")
top = stats.top_group(top_summary)
print(f"validation accuracy (%), {N_SEEDS} seeds each, {SWEEP_TRAIN:,} training images")
print(spread(top_summary))
print(f"tied with the best (ranges overlap): {len(top)} of {len(top_summary)}")

# %% [markdown]
# The configurations behind the labels, with each one's score in the sweep (its seed-`SEED` run):

# %% tags=["nbval-ignore-output"] ignore_reason="which configurations the sweep ranks first depends on its path, which differs between machines and seeds"
for label, number in trial_of.items():
    p = candidates[label]
    score = 100 * study.trials[number].value
    print(f"{label}: trial {number} ({score:.1f}% in the sweep)")
    described = ", ".join(f"{k} {v}" for k, v in p.items())
    print(textwrap.fill(described, 88, initial_indent="    ", subsequent_indent="    "))

# %% [markdown]
# All four train to about 86% on 5,000 images, with a spread over seeds of a few tenths of a
# point. `train.py`'s defaults (NAdam, ReLU, Xavier, 4 layers of 128, batch size 16, learning
# rate $10^{-3}$, 10 epochs) were chosen from an earlier run of this sweep, and they are in the
# top group here: no configuration the sweep found is better on every seed. That is what a
# default can honestly claim, a configuration the sweep supports, not the unique best. How many
# of the sweep's configurations tie with it, and how close they come, is this run's: with 30
# trials another path may stop a little short of the defaults. The sweep's first place went to
# a configuration that was good and whose one seed was lucky, so its score in the sweep can
# overstate it; compare the score printed beside its configuration above with its mean over
# seeds.

# %%
for label, number in trial_of.items():  # the sweep's own run is the seed-SEED run
    again = top_results.query("configuration == @label and seed == @SEED")["val_acc"]
    np.testing.assert_allclose(
        again.item(), 100 * study.trials[number].value, rtol=1e-12
    )
assert "defaults" in top
assert top_summary["max"].max() - top_summary["min"].min() < 2.0
assert top_summary["mean"].between(84, 88).all()

# %% [markdown]
# (sec-ch05-one-factor)=
# ### What matters: one change at a time
#
# A sweep's trials were chosen by the sampler, so its groups are not a fair experiment: the
# trials that used plain SGD may also have used a bad initialisation. To see what each
# hyperparameter does, we start from the defaults and change one of them at a time, with three
# seeds each, on the sweep's 5,000 images.

# %% tags=["nbval-measured"] tolerance={"abs": 4.0, "rel": null}
CHANGES = [
    ("learning_rate", 1e-4),
    ("optimizer", "sgd"),
    ("optimizer", "momentum"),
    ("optimizer", "nesterov"),
    ("optimizer", "rmsprop"),
    ("optimizer", "adam"),
    ("weight_init", "he"),
    ("weight_init", "random"),
    ("activation", "tanh"),
    ("activation", "sigmoid"),
    ("weight_decay", 5e-4),
    ("weight_decay", 0.5),
    ("num_layers", 3),
    ("hidden_size", 32),
    ("batch_size", 64),
    ("epochs", 5),
]
changed = {}
for name, value in CHANGES:
    shown = value if isinstance(value, str) else f"{value:g}"
    changed[f"{name} {shown}"] = dict(DEFAULTS, **{name: value})
one_results, _ = over_seeds(changed, X_sweep, y_sweep)
one_results = pd.concat(
    [top_results.query("configuration == 'defaults'"), one_results], ignore_index=True
)
one_summary = stats.summarize(one_results, "configuration", "val_acc")
print(f"validation accuracy (%), {N_SEEDS} seeds each, one change from the defaults")
print(spread(one_summary, ref="defaults"))

# %% [markdown]
# Two groups:
#
# - **Changes that cost more than a point**, with every seed below every seed of the defaults: a
#   weight decay of 0.5 leaves the network at chance (10.0%: the penalty's minimum is so close to
#   zero weights that every image gets the same class); plain SGD ends near 70% and momentum and
#   Nesterov near 84%, because the space's learning rates, made for adaptive methods, are far too
#   small for them ({ref}`sec-ch05-losses` trains SGD at 0.1); NAdam at $10^{-4}$ instead of
#   $10^{-3}$, the sigmoid, and 32-unit layers each cost one to five points. So does the "random"
#   initialisation $N(0, 0.01^2)$, about three points: with NAdam, which divides each step by the
#   running size of its gradient, the tiny first gradients of a network that barely passes a
#   signal ({ref}`ex-bp-init-scale`) still produce full-size steps, and the network recovers.
# - **Changes within a point**: RMSProp or Adam instead of NAdam, He instead of Xavier, tanh
#   instead of ReLU, a weight decay of 0.0005, 3 layers instead of 4, batch size 64 instead of
#   16, and 5 epochs instead of 10. Their means differ from the defaults' by a few tenths of a
#   point, about the spread over seeds; three seeds do not resolve differences this small, so
#   we call none of them better or worse.
#
# In the sweep these costs came combined, several in one trial, and a trial's failure does not say
# which setting caused it; one change at a time shows each one's own price.

# %%
diff = one_summary["mean"] - one_summary.loc["defaults", "mean"]
costly = [
    "weight_decay 0.5",
    "optimizer sgd",
    "optimizer momentum",
    "optimizer nesterov",
    "learning_rate 0.0001",
    "activation sigmoid",
    "hidden_size 32",
    "weight_init random",
]
small = [c for c in changed if c not in costly]
assert (one_summary.loc[costly, "max"] < one_summary.loc["defaults", "min"]).all()
assert (diff[costly] < -1).all() and (diff[small].abs() < 1).all()
assert one_summary.loc["weight_decay 0.5", "max"] < 11 and diff["optimizer sgd"] < -10
assert -4 < diff["weight_init random"] < -2
assert 65 < one_summary.loc["optimizer sgd", "mean"] < 75
assert (
    one_summary.loc[["optimizer momentum", "optimizer nesterov"], "mean"]
    .between(82, 86)
    .all()
)
assert (
    diff[["learning_rate 0.0001", "activation sigmoid", "hidden_size 32"]]
    .between(-5, -1)
    .all()
)
# %% [markdown]
# (sec-ch05-retrain)=
# ## 5. The defaults, trained on all the training images
#
# The defaults, now trained on the full 54,000-image training split with the chapter's seed,
# validated after each epoch and tested once at the end.

# %%
best_net = sweeps.build_network(DEFAULTS, num_classes=ds.num_classes, seed=SEED)
t0 = time.process_time()
history = network.train(
    best_net,
    X_tr,
    y_tr,
    X_val=X_val,
    y_val=y_val,
    optimizer=DEFAULTS["optimizer"],
    lr=DEFAULTS["learning_rate"],
    batch_size=DEFAULTS["batch_size"],
    num_epochs=DEFAULTS["epochs"],
    schedule=LR_SCHEDULE,
    seed=SEED,
    progress=True,
    desc="defaults",
)
retrain_cpu = time.process_time() - t0
test_loss, test_acc = best_net.evaluate(X_test, y_test)

# %% tags=["nbval-measured"] tolerance={"abs": 5.6, "rel": 2.0}
print(
    history[["epoch", "train_loss", "val_loss", "train_acc", "val_acc"]].to_string(
        index=False,
        formatters={
            "train_loss": "{:.3f}".format,
            "val_loss": "{:.3f}".format,
            "train_acc": lambda v: f"{100 * v:.1f}%",
            "val_acc": lambda v: f"{100 * v:.1f}%",
        },
    )
)
gap = 100 * (history["val_acc"].iloc[-1] - test_acc)
print(f"test accuracy: {100 * test_acc:.1f}% (test loss {test_loss:.3f}),")
print(f"{gap:.1f} points below the final validation accuracy")

# %% tags=["nbval-ignore-output"] ignore_reason="CPU time varies by machine and load"
per_epoch = retrain_cpu / DEFAULTS["epochs"]
print(
    f"training: {retrain_cpu:.1f} s of CPU time, {per_epoch:.2f} s per epoch "
    f"of {len(y_tr):,} images at batch size {DEFAULTS['batch_size']}"
)

# %% [markdown]
# The learning curves, with the final model's test accuracy for reference (this cell only draws):

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 1, figsize=(plots.COLUMN_WIDTH, 6.4), sharex=True)
epochs = history["epoch"]
axes[0].plot(
    epochs, history["train_loss"], "o-", label="training (running mean over the epoch)"
)
axes[0].plot(epochs, history["val_loss"], "s-", label="validation (after the epoch)")
axes[0].set(ylabel="cross-entropy (nats)", title="Loss")
axes[1].plot(epochs, 100 * history["train_acc"], "o-", label="training")
axes[1].plot(epochs, 100 * history["val_acc"], "s-", label="validation")
axes[1].axhline(
    100 * test_acc,
    color="0.4",
    ls="--",
    lw=1,
    label=f"test, final model ({100 * test_acc:.1f}%)",
)
axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
for a in axes:
    a.legend()
fig.suptitle("train.py's defaults on the full training split")
plt.show()

# %% [markdown]
# With all 54,000 images the defaults end at 89.8% validation accuracy, several points above what
# they reached on 5,000 images, and at **89.3% test accuracy**, close to the
# $90.21\%$ of the source report. The curves show the usual overfitting signature, with a twist.
# The training loss keeps falling, to 0.117, while the validation loss is lowest after epoch 6
# (0.298) and then rises, to 0.331 at the end; yet the validation *accuracy* does not fall with
# it (89.7% after epoch 6, 89.8% at the end). The network gets a few more validation images right
# while it grows over-confident on the ones it gets wrong, which the loss punishes
# ({ref}`sec-ch05-errors` measures it). Stopping at the lowest validation loss
# ({ref}`ex-bp-early-stopping`) would have kept about the same accuracy as training on.
#
# The test accuracy is 0.5 points below the final validation accuracy. Some of that gap may be
# selection, since the defaults were chosen because they did well on these validation images,
# and some is sampling noise: with 6,000 validation images, one {term}`standard error` of an
# accuracy near 90% is $\sqrt{0.9 \cdot 0.1 / 6000} \approx 0.4$ points, and with 10,000 test
# images $0.3$ points.

# %%
val_loss, val_acc = history["val_loss"].to_numpy(), history["val_acc"].to_numpy()
lowest = int(np.argmin(val_loss))
assert history["train_loss"].is_monotonic_decreasing
assert lowest < len(val_loss) - 2 and val_loss[-1] > val_loss[lowest] + 0.01
assert val_acc[-1] > val_acc[lowest] - 0.003  # the accuracy does not fall with it
assert test_acc > 0.88 and abs(gap) < 1.5

# %% [markdown]
# (sec-ch05-errors)=
# ### Where the errors are
#
# The row-normalised confusion matrix shows, for each true class, where its test images went;
# the diagonal is each class's recall.

# %%
y_pred = best_net.predict(X_test)
proba = best_net.predict_proba(X_test)
fig, ax = plt.subplots(figsize=(plots.COLUMN_WIDTH, 6.4))
_, cm = plots.confusion_matrix(
    y_test,
    y_pred,
    ds.classes,
    normalize=True,
    ax=ax,
    title=f"Fashion-MNIST test set, row-normalised (accuracy {100 * test_acc:.1f}%)",
)
plt.show()

# %% tags=["nbval-measured"] tolerance={"abs": 4.4, "rel": 0.053}
recall = pd.Series(100 * np.diag(cm), index=ds.classes)
print("recall per class (%):")
print(recall.to_string(float_format=lambda v: f"{v:.1f}"))

# %% tags=["nbval-measured"] tolerance={"abs": 58.0, "rel": 4.0}
upper = ["T-shirt/top", "Shirt", "Pullover", "Coat"]
ids = [ds.classes.index(c) for c in upper]
counts_upper = pd.DataFrame(
    [[int(((y_test == i) & (y_pred == j)).sum()) for j in ids] for i in ids],
    index=[f"true {c}" for c in upper],
    columns=upper,
)
wrong = y_pred != y_test
within = sum(counts_upper.iloc[a, b] for a in range(4) for b in range(4) if a != b)
print("test images of each upper-body class (rows) by predicted class (columns):")
print(counts_upper.to_string())
print(f"{within} of the {wrong.sum()} test errors ({100 * within / wrong.sum():.0f}%)")
print("are confusions among these four classes")

# %% [markdown]
# The errors are not spread evenly. Footwear, bags and trousers are recognised 95-98% of the
# time; the upper-body garments are not: shirts only 70.4% of the time, pullovers 81.7%, coats
# 83.3%, T-shirts 85.0%, the four lowest recalls. Confusions among these four classes are 63% of
# all test errors, and they come in near-symmetric pairs (shirt as T-shirt 121 times, T-shirt as
# shirt 100; pullover as coat 85, coat as pullover 77): the classes overlap rather than one class
# absorbing another. At 28x28 pixels a shirt's collar or buttons are a few pixels, and several of
# the images below are hard to name for a person too.

# %%
footwear_etc = ["Trouser", "Sandal", "Sneaker", "Bag", "Ankle boot"]
assert recall.idxmin() == "Shirt" and set(recall.nsmallest(4).index) == set(upper)
assert recall[footwear_etc].min() > 93 and within / wrong.sum() > 0.5
both_ways = [(a, b) for a in range(4) for b in range(a + 1, 4)]
for a, b in both_ways:
    ab, ba = counts_upper.iloc[a, b], counts_upper.iloc[b, a]
    assert min(ab, ba) < 40 or max(ab, ba) / min(ab, ba) < 1.5, (upper[a], upper[b])

# %% [markdown]
# The images behind three of those confusions, the most confidently wrong first (title: the
# probability the network gave to its wrong answer):

# %%
shown_pairs = [("Shirt", "T-shirt/top"), ("T-shirt/top", "Shirt"), ("Pullover", "Coat")]
fig, axes = plt.subplots(3, 8, figsize=(plots.COLUMN_WIDTH, 3.9))
shown = []
for row, (true, pred) in zip(axes, shown_pairs):
    t, p = ds.classes.index(true), ds.classes.index(pred)
    idx = np.flatnonzero((y_test == t) & (y_pred == p))
    idx = idx[np.argsort(-proba[idx, p], kind="stable")][:8]
    shown += [proba[i, p] for i in idx]
    for ax, i in zip(row, idx):
        ax.imshow(ds.X_test[i], cmap="gray")
        ax.set_title(f"p={proba[i, p]:.2f}", fontsize=8)
    for ax in row:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    row[0].set_ylabel(f"{true}\nas {pred}", fontsize=8)
fig.suptitle("Confident mistakes on the test set: true class (left) as another")
plt.show()

# %% tags=["nbval-measured"] tolerance={"abs": 58.0, "rel": 0.057}
p_wrong = proba[wrong, y_pred[wrong]]
nats = -np.log(np.maximum(proba[np.arange(len(y_test)), y_test], 1e-30))
print(
    f"probability given to the wrong answer: {min(shown):.2f} to {max(shown):.2f} "
    f"for the {len(shown)} images shown;"
)
print(
    f"over all {wrong.sum()} test errors median {np.median(p_wrong):.2f}, "
    f"above 0.9 for {100 * (p_wrong > 0.9).mean():.0f}% of them;"
)
loss_share = nats[wrong].sum() / nats.sum()
print(
    f"the errors ({100 * wrong.mean():.1f}% of the test images) carry "
    f"{100 * loss_share:.0f}% of the test loss"
)

# %% [markdown]
# The images shown are the network's most confident mistakes in three of the pairs, and they are
# very confident (their probabilities are printed above). Over all 1,071 errors the median
# probability given to the wrong answer is 0.78, and almost a third of the errors (30%) are made
# with more than 0.9, which leaves less than 0.1 for the true class, a cross-entropy of more than
# $-\log 0.1 \approx 2.3$ nats for each. That is why the errors, about a tenth of the test
# images, carry 89% of the test loss, and why the validation loss rises in the later epochs while
# the accuracy holds.

# %%
assert np.median(p_wrong) > 0.6 and 0.2 < (p_wrong > 0.9).mean() < 0.4
assert 0.08 < wrong.mean() < 0.12 and loss_share > 0.6

# %% [markdown]
# (sec-ch05-losses)=
# ## 6. Cross-entropy against squared error
#
# Both losses act on the softmax probabilities $\mathbf{s}$; their gradients with respect to the
# logits differ:
#
# $$
# \begin{aligned}
# \frac{\partial \ell_{\text{CE}}}{\partial \mathbf{z}} &= \mathbf{s} - \mathbf{e}_y, \\
# \frac{\partial \ell_{\text{SE}}}{\partial \mathbf{z}}
# &= \mathbf{s} \odot \big(\mathbf{u} - (\mathbf{u}^\top \mathbf{s})\,\mathbf{1}\big),
# \qquad \mathbf{u} = 2\,(\mathbf{s} - \mathbf{e}_y).
# \end{aligned}
# $$ (eq-bp-ce-vs-se)
#
# When the network is confidently wrong, $\mathbf{s}$ is close to a one-hot vector $\mathbf{e}_k$
# with $k \ne y$; then every component of the squared-error gradient carries a factor that goes
# to zero (either $s_j \to 0$, or $u_k - \mathbf{u}^\top \mathbf{s} \to 0$), while the
# cross-entropy gradient tends to $\mathbf{e}_k - \mathbf{e}_y$. Squared error learns least from
# its worst mistakes. The engine's two loss nodes show it, and `torch.autograd` confirms the
# numbers:

# %%
rows = []
for margin in [0.0, 2.0, 5.0, 10.0]:
    # the true class is 0; class 2 is ahead by `margin`
    z = np.array([[0.0, 0.0, margin, 0.0]])
    row = {"logit margin of the wrong class": margin}
    for name, node_cls in [("CE", graph.SoftmaxCrossEntropy), ("SE", graph.SoftmaxMSE)]:
        zin = graph.Input("z", z.copy(), requires_grad=True)
        loss = node_cls(zin, graph.Input("y", np.array([0])))
        graph.forward(loss)
        graph.backward(loss)
        zt = torch.tensor(z, requires_grad=True)
        if name == "CE":
            ref = F.cross_entropy(zt, torch.tensor([0]))
        else:
            onehot = F.one_hot(torch.tensor([0]), 4).double()
            ref = ((torch.softmax(zt, 1) - onehot) ** 2).sum()
        ref.backward()
        np.testing.assert_allclose(zin.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
        row[f"|dL/dz| {name}"] = float(np.linalg.norm(zin.grad))
    rows.append(row)
grad_table = pd.DataFrame(rows)
print(grad_table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
assert grad_table["|dL/dz| SE"].iloc[-1] < 1e-3 < grad_table["|dL/dz| CE"].iloc[-1]

# %% [markdown]
# Does it matter in training? One network (two hidden layers of 64 ReLU units, Xavier
# initialisation, batch size 64) with four optimizers, each at a learning rate that suits it,
# trained with both losses and three seeds on the same `CMP_TRAIN` = 10,000-image subset for
# `CMP_EPOCHS` = 5 epochs, and validated on the 6,000 validation images:

# %% tags=["nbval-measured"] tolerance={"abs": 2.0, "rel": null}
_, X_cmp_img, _, y_cmp = data.train_val_split(
    X_tr_img, y_tr, val_fraction=CMP_TRAIN / len(y_tr), seed=SEED
)
X_cmp = scaler.transform(X_cmp_img)
base = dict(
    num_layers=2,
    hidden_size=64,
    weight_decay=0.0,
    weight_init="xavier",
    activation="relu",
    batch_size=64,
    epochs=CMP_EPOCHS,
)
cmp_configs = {
    "SGD, lr 0.1": dict(base, optimizer="sgd", learning_rate=0.1),
    "momentum, lr 1e-2": dict(base, optimizer="momentum", learning_rate=1e-2),
    "Adam, lr 1e-3": dict(base, optimizer="adam", learning_rate=1e-3),
    "NAdam, lr 1e-3": dict(base, optimizer="nadam", learning_rate=1e-3),
}
cmp_results, cmp_hist = {}, {}
for loss in ["cross_entropy", "mean_squared_error"]:
    res, hist = over_seeds(cmp_configs, X_cmp, y_cmp, loss=loss)
    cmp_results[loss] = stats.summarize(res, "configuration", "val_acc")
    cmp_hist.update({(loss, *key): h for key, h in hist.items()})
ce, se = cmp_results["cross_entropy"], cmp_results["mean_squared_error"]
print(f"validation accuracy (%) after {CMP_EPOCHS} epochs, {N_SEEDS} seeds each")
print("cross-entropy:")
print(spread(ce))
print("squared error:")
print(spread(se))
print("CE - SE (difference of the means):")
print((ce["mean"] - se["mean"]).map(lambda v: f"{v:+.1f}").to_string())

# %% [markdown]
# With the plain gradient methods cross-entropy is ahead: by 1.2 points with SGD and 1.5 with
# momentum after five epochs, every seed of cross-entropy above every seed of squared error.
# With Adam and NAdam the advantage disappears: the means are within a point of each other, and
# cross-entropy is no longer ahead on every seed. Adaptive methods divide each step by the
# running size of the gradient, so the smaller scale of the squared-error gradient no longer
# slows them down, and the vanishing gradient on badly wrong examples concerns few examples once
# most are roughly right.
# So the common advice (use cross-entropy, squared error learns slowly) shows on our data only
# with the non-adaptive optimizers. All four runs use the same network and activation; only the
# optimizer, with the learning rate that suits it, and the loss change.

# %%
d_loss = ce["mean"] - se["mean"]
plain, adaptive = (
    ["SGD, lr 0.1", "momentum, lr 1e-2"],
    ["Adam, lr 1e-3", "NAdam, lr 1e-3"],
)
assert (ce.loc[plain, "min"] > se.loc[plain, "max"]).all() and (
    d_loss[plain] > 0.7
).all()
assert (d_loss[adaptive].abs() < 1).all()
assert (ce.loc[adaptive, "min"] <= se.loc[adaptive, "max"]).all()

# %% [markdown]
# The mean validation accuracy after each epoch, with the range over the seeds shaded (this cell
# only draws):

# %% tags=["hide-input"]
fig, axes = plt.subplots(
    2, 2, figsize=(plots.COLUMN_WIDTH, 5.6), sharex=True, sharey=True
)
for ax, label in zip(axes.flat, cmp_configs):
    for loss, style, name in [
        ("cross_entropy", "o-", "cross-entropy"),
        ("mean_squared_error", "s--", "squared error"),
    ]:
        acc = np.stack([100 * cmp_hist[loss, label, s]["val_acc"] for s in SEEDS])
        ep = cmp_hist[loss, label, SEED]["epoch"]
        line = ax.plot(ep, acc.mean(0), style, label=name)[0]
        ax.fill_between(ep, acc.min(0), acc.max(0), color=line.get_color(), alpha=0.2)
    ax.set_title(label)
    ax.set_xticks(range(1, CMP_EPOCHS + 1))
for ax in axes[1]:
    ax.set_xlabel("epoch")
for ax in axes[:, 0]:
    ax.set_ylabel("validation accuracy (%)")
axes[0, 0].legend()
fig.suptitle(f"Cross-entropy against squared error ({CMP_TRAIN:,} training images)")
plt.show()

# %% [markdown]
# (sec-ch05-mnist)=
# ## 7. MNIST
#
# The same network on handwritten digits {cite}`ch05-lecun1998gradient`, each configuration
# trained with three seeds on MNIST's full 54,000-image training split (10% held out, seeded and
# stratified, as for Fashion-MNIST) for `MNIST_EPOCHS` = 4 epochs and tested once. The
# configurations differ in one factor at a time: the defaults (with batch size 64, to fit the
# budget), the same with tanh instead of ReLU, and the same with Adam instead of NAdam.

# %%
mn = data.load("mnist")
print(mn.note())
Xm_tr_img, Xm_val_img, ym_tr, ym_val = data.train_val_split(
    mn.X_train, mn.y_train, val_fraction=0.1, seed=SEED
)
m_scaler = network.Standardizer().fit(Xm_tr_img)
Xm_tr, Xm_val, Xm_test = (
    m_scaler.transform(a) for a in (Xm_tr_img, Xm_val_img, mn.X_test)
)
m_base = dict(DEFAULTS, batch_size=64, epochs=MNIST_EPOCHS)
mnist_configs = {
    "NAdam, ReLU": m_base,
    "NAdam, tanh": dict(m_base, activation="tanh"),
    "Adam, ReLU": dict(m_base, optimizer="adam"),
}

# %% tags=["nbval-measured"] tolerance={"abs": 0.6, "rel": 2.0}
rows = []
for label, p in mnist_configs.items():
    for seed in SEEDS:
        net = sweeps.build_network(p, num_classes=mn.num_classes, seed=seed)
        network.train(
            net,
            Xm_tr,
            ym_tr,
            optimizer=p["optimizer"],
            lr=p["learning_rate"],
            batch_size=p["batch_size"],
            num_epochs=p["epochs"],
            schedule=LR_SCHEDULE,
            seed=seed,
        )
        val = 100 * net.accuracy(Xm_val, ym_val)
        test = 100 * net.accuracy(Xm_test, mn.y_test)
        rows.append({"configuration": label, "seed": seed, "val": val, "test": test})
mnist_results = pd.DataFrame(rows)
m_val = stats.summarize(mnist_results, "configuration", "val")
m_test = stats.summarize(mnist_results, "configuration", "test")
print(f"MNIST, {MNIST_EPOCHS} epochs, {N_SEEDS} seeds each: validation accuracy (%)")
print(spread(m_val, ref="NAdam, ReLU"))
print("test accuracy (%)")
print(spread(m_test, ref="NAdam, ReLU"))

# %% [markdown]
# All three reach between 97.4% and 97.9% mean test accuracy in four epochs, the range of the
# source report. With everything else fixed, ReLU is ahead of tanh by half a point on the
# test set, every seed above every seed (on Fashion-MNIST, in {ref}`sec-ch05-one-factor`, tanh
# was also about half a point behind, within the noise of three seeds there); Adam and NAdam are
# tied, as they were within a point of each other there.

# %%
relu, tanh, adam = (
    mnist_results.query("configuration == @c")["test"] for c in mnist_configs
)
assert mnist_results["test"].min() > 97.0
assert tanh.max() < relu.min() and stats.tied(relu, adam)
assert -1 < diff["activation tanh"] < 0

# %% [markdown]
# (sec-ch05-cli)=
# ## 8. The command-line trainer
#
# `train.py` at the repository root (or `python -m course_utils.cli` where only the package is
# installed, as in Colab) is the source assignment's trainer with its arguments and short flags
# (`-d`, `-e`, `-b`, `-l`, `-o`, `-lr`, `-m`, `-beta`, `-beta1`, `-beta2`, `-eps`, `-w_d`, `-w_i`,
# `-nhl`, `-sz`, `-a`, `-wp`, `-we`). Its defaults are the configuration that
# {ref}`sec-ch05-top-group` found tied with the best of the sweep, and `python train.py --help`
# lists them. It logs to Weights & Biases when `wandb` is installed and configured, and always
# writes `runs/<name>/config.json`, `metrics.csv` and `summary.json`.
#
# The full search is one command. It runs the sweep of {ref}`sec-ch05-sweep` on all 54,000
# training images with parallel workers that share one study in a SQLite file, so it can be
# stopped and started again; `sweep-report` writes the table, the accuracy-by-trial and
# parallel-coordinates plots and the fANOVA importances of a finished or running study:
#
# ```bash
# python train.py sweep --trials 300 --workers 2
# python train.py sweep-report
# python train.py sweep --subset 5000 --trials 30 --study ch05   # this chapter's size
# ```

# %%
sweep_args = cli.build_sweep_parser().parse_args(["--trials", "300", "--workers", "2"])
a = sweep_args
print(
    f"sweep: {a.trials} trials, {a.workers} workers, seed {a.seed}, subset {a.subset}"
)
command = sweeps.train_command(DEFAULTS)
print("train.py's defaults, written out:")
print(command)
assert vars(cli.build_parser().parse_args(command.split()[2:])) == vars(args)
assert sweep_args.subset is None and sweep_args.lr_schedule == LR_SCHEDULE
assert args.lr_schedule == LR_SCHEDULE and args.loss == "cross_entropy"

# %% [markdown]
# How fast is the engine? `bench/engine_vs_torch.py` times one epoch of a 784-128-128-10 network
# with Adam against an identical PyTorch model, in one process, and reports the achieved GFLOP/s
# against a measured matrix-product peak; run it on your machine (`python
# bench/engine_vs_torch.py --profile` also shows where the engine's time goes).
#
# ## Summary
#
# - The from-scratch network is [chapter 1](01_computational_graph.ipynb)'s nodes wired for any
#   number and width of layers, four activations, three initialisations, two losses and weight
#   decay. Its whole-network gradients agree with finite differences (to $10^{-6}$) and with
#   `torch.autograd` (to $10^{-12}$).
# - Training is forward, backward and an in-place optimizer step from
#   [chapter 3](03_optimizers.ipynb), repeated; the graph is built once.
# - A TPE sweep with a median pruner, 30 trials on 5,000 images, follows a path that depends on
#   its results, so its table differs between machines and seeds. Re-trained with three seeds
#   beside the sweep's best configurations, `train.py`'s defaults (NAdam, ReLU, Xavier, 4 layers
#   of 128, batch size 16, learning rate $10^{-3}$, 10 epochs; 86.5 ± 0.1% on 5,000 images) are
#   in the top group: no configuration the sweep found is better on every seed.
# - Changed one at a time from the defaults, a weight decay of 0.5 (chance level), plain SGD,
#   momentum and Nesterov at the space's learning rates, a learning rate of $10^{-4}$, the sigmoid,
#   the $N(0, 0.01^2)$ initialisation and 32-unit layers each cost more than a point; RMSProp and
#   Adam instead of NAdam, He initialisation, tanh, a small weight decay, one layer less, batch
#   size 64 and 5 epochs stay within a point.
# - On all 54,000 images the defaults reach 89.8% validation and 89.3% test accuracy. Confusions
#   among T-shirts, shirts, pullovers and coats are 63% of the errors, and the network is
#   over-confident on its errors, which is why its validation loss rises while its accuracy holds.
# - Cross-entropy beats squared error by 1.2-1.5 points with SGD and momentum; with Adam and NAdam
#   it is no longer ahead.
# - On MNIST the defaults (at batch size 64, four epochs) reach 97.9% test accuracy; ReLU is ahead
#   of tanh by half a point and Adam and NAdam are tied, one factor changed at a time.
# - `train.py` trains any configuration and runs the full search from the command line; its
#   defaults are in the sweep's top group.
#
# ## Exercises
#
# ```{exercise} Initialisation scale and the signal
# :label: ex-bp-init-scale
#
# The sweep's "random" initialisation draws every weight from $N(0, 0.01^2)$. Build a 5-layer,
# 128-unit tanh network with each of `"random"`, `"xavier"` and `"he"` and measure the standard
# deviation of each hidden layer's output on 1,000 training images at initialisation. What
# happens to the signal?
# ```
#
# ```{solution} ex-bp-init-scale
# :class: dropdown
#
# A layer with $n$ inputs of standard deviation $\operatorname{sd}_x$ and weights of standard
# deviation $\operatorname{sd}_w$ produces pre-activations of standard deviation about
# $\sqrt{n}\,\operatorname{sd}_w\operatorname{sd}_x$, and tanh is close to the identity near zero.
# With $\operatorname{sd}_w = 0.01$ that factor is $0.01\sqrt{784} = 0.28$ for the first layer
# and $0.01\sqrt{128} = 0.11$ for each of the others. The measurement below follows it: 0.22 after
# the first layer, then about nine times smaller after each further layer, and a standard
# deviation of about $5\times10^{-6}$ for the logits. The logits hardly depend on the image, and
# the gradients reaching the first layers are scaled down by the same factors. Plain SGD then
# barely moves the first layers; an adaptive optimizer divides each step by the running size of
# its gradient and gets going anyway, which is why the "random" initialisation cost NAdam only
# about three points in {ref}`sec-ch05-one-factor`. Xavier's variance
# $2/(n_{\text{in}} + n_{\text{out}})$ {cite}`ch05-glorot2010understanding` makes the factor close
# to one: the signal shrinks only from 0.65 to 0.32 over five tanh layers. He's $2/n_{\text{in}}$
# {cite}`ch05-he2015delving`, made for ReLU (which zeroes half of its inputs), is a little larger
# still and keeps tanh layers near 0.6.
# ```
#
# ```{exercise} The squared-error gradient
# :label: ex-bp-se-gradient
#
# Derive the squared-error gradient of {eq}`eq-bp-ce-vs-se` from the softmax Jacobian
# $\partial s_j / \partial z_k = s_j(\delta_{jk} - s_k)$.
# ```
#
# ```{solution} ex-bp-se-gradient
# :class: dropdown
#
# With $\ell = \lVert \mathbf{s} - \mathbf{e}_y\rVert^2$ and
# $\mathbf{u} = \partial \ell/\partial \mathbf{s} = 2(\mathbf{s} - \mathbf{e}_y)$, the chain rule
# gives $\partial \ell/\partial z_k = \sum_j u_j\, s_j(\delta_{jk} - s_k) = s_k u_k - s_k \sum_j
# u_j s_j = s_k\,(u_k - \mathbf{u}^\top \mathbf{s})$, that is
# $\mathbf{s} \odot (\mathbf{u} - (\mathbf{u}^\top \mathbf{s})\mathbf{1})$. This is the rule of the
# engine's `SoftmaxMSE` node, which {ref}`sec-ch05-losses` checked against `torch.autograd`. For
# cross-entropy the same computation with $\mathbf{u} = -\mathbf{e}_y / s_y$ gives
# $\mathbf{u}^\top \mathbf{s} = -1$ and $s_k(u_k + 1) = s_k - \delta_{ky}$.
# ```
#
# ```{exercise} Early stopping
# :label: ex-bp-early-stopping
#
# Early stopping keeps the weights of the epoch with the best validation score. Using the history
# of {ref}`sec-ch05-retrain`, at which epoch would it stop if the score were the validation loss,
# and if it were the validation accuracy? What accuracy would each keep?
# ```
#
# ```{solution} ex-bp-early-stopping
# :class: dropdown
#
# With the chapter's seed the validation loss is lowest after epoch 6, where the validation
# accuracy is 89.7%; the accuracy is highest after epoch 9, 90.0%, and ends at 89.8%. Because the
# network grows over-confident on the images it gets wrong, the loss turns up while the accuracy
# still improves a little: stopping on the loss would have cost a few tenths of a point of
# validation accuracy here. Stop on the metric you will report. The cell below reads both epochs
# off the history.
# ```
#
# ```{exercise} L2 penalty and the optimizer's weight decay
# :label: ex-bp-coupled-decay
#
# The network adds $\tfrac{\lambda_{\text{wd}}}{2}\sum_l\lVert W_l\rVert_F^2$ to the loss. The
# optimizers of [chapter 3](03_optimizers.ipynb) also accept `weight_decay`. Are the two the same? Check with one SGD
# step.
# ```
#
# ```{solution} ex-bp-coupled-decay
# :class: dropdown
#
# The optimizers' `weight_decay` is *coupled* L2: it adds $\lambda_{\text{wd}} \mathbf{w}$ to the
# gradient of every array it updates, which is what the penalty adds to the gradient of each
# weight matrix. For plain SGD the two therefore give the same weight matrices after a step. They
# differ on the biases, which the optimizer decays too and the network's penalty leaves alone.
# For Adam and the other adaptive optimizers the added $\lambda_{\text{wd}} \mathbf{w}$ is divided
# by the running gradient scale like the rest of the gradient, so L2 and decoupled weight decay
# (AdamW, {cite}`ch05-loshchilov2019adamw`) are different methods there. The cell below checks the
# SGD case.
# ```
#
# The solutions, computed:

# %% tags=["hide-input"]
# Exercise 1: the signal through 5 tanh layers of 128 units at initialisation.
rows = {}
for init in ["random", "xavier", "he"]:
    net = network.FeedForwardNet(
        784, [128] * 5, 10, activation="tanh", init=init, dtype=np.float64, seed=SEED
    )
    net.x.value = X_tr[:1000].astype(np.float64)
    graph.forward(net.logits)
    acts = [
        n for n in graph.topological_sort(net.logits) if isinstance(n, graph.Tanh)
    ] + [net.logits]
    rows[init] = [float(n.value.std()) for n in acts]
stds = pd.DataFrame(rows, index=[f"layer {i}" for i in range(1, 6)] + ["logits"]).T
print("exercise 1: sd of each layer's output at initialisation")
print(stds.to_string(float_format=lambda v: f"{v:.1e}"))
assert stds.loc["random", "logits"] < 1e-4 < 0.1 < stds.loc["xavier", "layer 5"]
assert (stds.loc["he"].iloc[:5] > 0.5).all()
assert (stds.loc["xavier"].iloc[:5] > 0.3).all()

# Exercise 4: the network's L2 penalty against the optimizer's coupled weight decay.
lam, lr = 0.1, 0.5
nets = [
    network.FeedForwardNet(12, [6], 4, weight_decay=w, dtype=np.float64, seed=SEED)
    for w in (lam, 0.0)
]
for net in nets:
    net.layers[0].b.value[...] = 1.0
opts = [
    optim.SGD([p.value for p in nets[0].params], lr=lr),
    optim.SGD([p.value for p in nets[1].params], lr=lr, weight_decay=lam),
]
for net, opt in zip(nets, opts):
    net.loss_and_grads(X_small, y_small)
    opt.step([p.grad for p in net.params])
for p0, p1 in zip(*(net.params for net in nets)):
    if p0.name.endswith(".W"):
        np.testing.assert_allclose(p0.value, p1.value, rtol=1e-12)
    else:
        np.testing.assert_allclose(
            p1.value,
            p0.value - lr * lam * (p0.value + lr * p0.grad),
            rtol=1e-12,
            atol=1e-15,
        )
print("exercise 4: same weight matrices after an SGD step; the optimizer's decay")
print("also shrank the biases")

# %% tags=["hide-input", "nbval-measured"] tolerance={"abs": 4.0, "rel": 0.45}
# Exercise 3: early stopping on the validation loss against the validation accuracy.
by_loss = history.loc[history["val_loss"].idxmin()]
by_acc = history.loc[history["val_acc"].idxmax()]
print(
    f"exercise 3: lowest validation loss after epoch {int(by_loss.epoch)} "
    f"(accuracy {100 * by_loss.val_acc:.1f}%);"
)
print(
    f"highest validation accuracy after epoch {int(by_acc.epoch)} "
    f"({100 * by_acc.val_acc:.1f}%); last epoch {100 * val_acc[-1]:.1f}%"
)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch05-
# ```
