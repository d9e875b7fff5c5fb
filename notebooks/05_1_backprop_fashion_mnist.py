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
# # Chapter 5.1: Backpropagation from scratch on Fashion-MNIST
#
# This lecture trains a real image classifier with nothing but the pieces built so far: the
# reverse-mode engine of [chapter 1.1](01_1_computational_graph.ipynb) computes every gradient, and
# the optimizers of [chapter 3](03_optimizers.ipynb) take the steps. No automatic-differentiation
# library is involved; PyTorch appears only as a referee that checks our gradients.
# Backpropagation through a whole network turns out to be the chain rule applied layer after
# layer. We then train the network on 20,000 clothing images, look closely at the mistakes it
# makes, and let the six optimizers of chapter 3 train a smaller one with two different losses.
# [Chapter 5.2](05_2_hyperparameter_sweep.ipynb) asks which hyperparameters to choose.
#
# **Learning objectives.** After this lecture you can
#
# - write the forward and backward pass of a feedforward network as matrix products, and check
#   the whole network's gradient against finite differences and `torch.autograd`;
# - write the training loop (minibatches, an optimizer of [chapter 3](03_optimizers.ipynb), a
#   cosine learning-rate schedule) and train the network on Fashion-MNIST;
# - read a classifier's errors: per-class recall, the confusions, and the confident mistakes that
#   raise the validation loss while the accuracy holds;
# - explain why squared error on softmax outputs learns least from its worst mistakes, and
#   measure with several {term}`seeds <seed>` for which optimizers that matters.
#
# **Prerequisites:** [chapter 0](00_data.ipynb) (the datasets),
# [chapter 1.1](01_1_computational_graph.ipynb) (the computational graph),
# [chapter 3](03_optimizers.ipynb) (the optimizers) and
# [chapter 4.1](04_1_minibatches.ipynb) (minibatch training and seeds).
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
    package = f"course-utils[ch05] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
# SEED seeds the split, the subsets, every initialisation and the batch order; every
# comparison of trained configurations runs N_SEEDS seeds: SEED, SEED + 1, ...
SEED = 0
N_SEEDS = 3
# Section 3 (train.py's defaults, 10 epochs): trained on a stratified subset of
# FULL_TRAIN of the 54,000 training images; None trains on all of them (about +25 s
# here).
FULL_TRAIN = 20_000
# Section 4 (losses and optimizers): 6 optimizers x 2 losses x N_SEEDS runs of a small
# network on a stratified subset. A reader with a GPU or time may raise both: 5_000
# images for 5 epochs cost about +6 s here.
CMP_TRAIN = 3_000  # training images
CMP_EPOCHS = 4
# Two configurations trained on the same seeds differ (are "resolved") when every seed's
# difference has the same sign and exceeds MARGIN points of accuracy.
MARGIN = 0.5
# Every run decays its learning rate to 0 with a cosine over the run.
LR_SCHEDULE = "cosine"

# %%
import math
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

import course_utils
from course_utils import checks, cli, data, graph, network, optim, plots, stats

SEEDS = [SEED + k for k in range(N_SEEDS)]
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# (sec-ch05-data)=
# ## 1. The data
#
# Fashion-MNIST {cite}`ch05-1-xiao2017fashion` has the shape of MNIST (28x28 grey images, 60,000
# for training and 10,000 for testing, ten balanced classes) but shows clothes, and it is harder:
# a shirt, a T-shirt and a pullover can look alike at this resolution. We keep the standard
# {term}`test set` untouched until the end and hold out 10% of the training images, seeded and
# {term}`stratified <stratified split>`, as the {term}`validation set`.

# %%
ds = data.load("fashion-mnist")
print(ds.note())
X_tr_img, X_val_img, y_tr, y_val = data.train_val_split(
    ds.X_train, ds.y_train, val_fraction=0.1, seed=SEED
)
y_test = ds.y_test
print(f"train {len(y_tr):,} / validation {len(y_val):,} / test {len(y_test):,} images")
print("validation images per class:", np.bincount(y_val).tolist())

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
print(f"rows: {X_tr.shape}, {X_tr.dtype}; pixel sd used: {scaler.std:.4f}")
print(f"mean of the scaled training rows: {X_tr.mean():.4f}, sd: {X_tr.std():.3f}")

# %% [markdown]
# (sec-ch05-network)=
# ## 2. The network is a graph, backpropagation is the chain rule through it
#
# A feedforward classifier with $L$ hidden layers maps a batch $X$ (one example per row, $B$ of
# them) to {term}`logits` through affine layers and an activation $\phi$: starting from
# $H_0 = X$,
#
# $$
# \begin{aligned}
# Z_l &= H_{l-1} W_l^\top + \mathbf{1}\mathbf{b}_l^\top, \\
# H_l &= \phi(Z_l),
# \end{aligned}
# $$ (eq-bp-forward)
#
# for the layers $l = 1, \dots, L+1$ (the last one has no activation). The logits of example
# $i$ are row $i$ of $Z_{L+1}$, written $\mathbf{z}_i$. The objective is the mean loss over the
# batch plus an optional L2 penalty on the weight matrices ({term}`weight decay`
# $\lambda_{\text{wd}}$; biases are not decayed):
#
# $$
# \begin{aligned}
# \mathcal{L} = {}& \frac{1}{B}\sum_{i=1}^{B} \ell(\mathbf{z}_i, y_i) \\
# &+ \frac{\lambda_{\text{wd}}}{2}\sum_{l=1}^{L+1} \lVert W_l\rVert_F^2 ,
# \end{aligned}
# $$ (eq-bp-objective)
#
# with one of two losses on the softmax probabilities
# $\mathbf{s} = \operatorname{softmax}(\mathbf{z})$, {term}`cross-entropy` or squared error:
#
# $$
# \begin{aligned}
# \ell_{\text{CE}}(\mathbf{z}, y) &= -\log s_y, \\
# \ell_{\text{SE}}(\mathbf{z}, y) &= \lVert \mathbf{s} - \mathbf{e}_y\rVert^2 .
# \end{aligned}
# $$ (eq-bp-losses)
#
# {term}`Backpropagation` {cite}`ch05-1-rumelhart1986backprop` starts from
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
# [chapter 1.1](01_1_computational_graph.ipynb)'s engine (`Linear`, `ReLU`, `SoftmaxCrossEntropy`,
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
# [Chapter 1.1](01_1_computational_graph.ipynb) checked each node on its own. A network composes
# them, and a wiring mistake (a missing accumulation, a transposed product) would only show on
# the whole. We check the full gradient of {eq}`eq-bp-objective` with respect to every parameter
# of a small network, in float64, for every activation and both losses, with weight decay
# switched on, against central finite differences (`checks.numerical_gradient`, step
# $h = 10^{-6}$).

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


def fd_error(net):
    """The largest relative error of the backward pass against finite differences."""
    net.loss_and_grads(X_small, y_small)
    worst = 0.0
    for prm in net.params:
        analytic, original = prm.grad.copy(), prm.value.copy()

        def f(v):
            prm.value[...] = v
            return net.objective(X_small, y_small)

        numeric = checks.numerical_gradient(f, original)
        prm.value[...] = original
        worst = max(worst, checks.relative_error(analytic, numeric))
    return worst


# %%
rows = [
    {
        "activation": act,
        "loss": loss,
        "max relative error": fd_error(small_net(act, loss)),
    }
    for act in network.ACTIVATIONS
    for loss in network.LOSSES
]
fd = pd.DataFrame(rows)
fd["max relative error"] = np.where(
    fd["max relative error"] < 1e-6, "< 1e-6", "too big"
)
print(fd.to_string(index=False))

# %% [markdown]
# Finite differences agree to better than $10^{-6}$ in every case. They are an independent check
# but a weak one: their own error, from the step $h$ and from rounding, is far larger than the
# rounding of a backward pass. A sharper referee is PyTorch: we copy
# the weights into a `torch` computation of the same network and compare the loss and every
# gradient that `torch.autograd` computes, in float64.

# %%
torch_act = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def torch_error(net, activation, loss):
    """Relative errors of our loss and gradients against torch.autograd's."""
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
    grads = [
        checks.relative_error(p.grad, t.grad.numpy())
        for p, t in zip(net.params, leaves)
    ]
    return max(abs(data_loss - L.item()) / abs(L.item()), *grads)


rows = [
    {
        "activation": act,
        "loss": loss,
        "max relative error": torch_error(small_net(act, loss), act, loss),
    }
    for act in network.ACTIVATIONS
    for loss in network.LOSSES
]
ref = pd.DataFrame(rows)
ref["max relative error"] = np.where(
    ref["max relative error"] < 1e-12, "< 1e-12", "too big"
)
print(ref.to_string(index=False))

# %% [markdown]
# The two libraries agree to rounding error: our backward pass *is* the gradient.
#
# (sec-ch05-training)=
# ## 3. Training: one step, many times
#
# A {term}`step` puts a {term}`minibatch` into the graph's input leaves, runs `graph.forward`
# and `graph.backward` (`net.loss_and_grads` does both, and adds the weight-decay term to each
# weight gradient), and hands the list of gradient arrays to the optimizer, which updates the
# parameter arrays in place: the graph sees the new weights at the next step without being
# rebuilt. Every run in this chapter uses float32 (float64 was only for the checks) and a cosine
# schedule {cite}`ch05-1-loshchilov2017sgdr` (without restarts) over the $T$ steps of the run,
#
# $$
# \eta_t = \tfrac{\eta}{2}\big(1 + \cos(\pi t / T)\big),
# $$ (eq-bp-cosine)
#
# a choice the source assignment did not make: it lets a short run finish at a small learning
# rate instead of bouncing around the minimum. The learning rates named below are the peak values
# $\eta$. Here is the whole loop:


# %%
def train_loop(net, X, y, opt, num_epochs, batch_size, seed):
    """Minibatch training with a cosine schedule: the loop of network.train."""
    rng = np.random.default_rng(seed)  # the seed fixes the order of the minibatches
    grads = [p.grad for p in net.params]
    peak, t = opt.lr, 0
    T = num_epochs * math.ceil(len(X) / batch_size)
    for epoch in range(num_epochs):
        for idx in network.iterate_minibatches(len(X), batch_size, rng):
            opt.lr = network.cosine_lr(peak, t, T)
            net.loss_and_grads(X[idx], y[idx])  # forward and backward
            opt.step(grads)  # every parameter array, in place
            t += 1


# %% [markdown]
# `network.train` runs this loop and adds the bookkeeping: per-epoch metrics on the training and
# validation sets, a progress bar, a callback, and a stop when the loss turns NaN or infinite.

# %% tags=["remove-input"]
nets = [network.FeedForwardNet(784, [16], 10, seed=SEED) for _ in range(2)]
opt = network.make_optimizer("adam", [p.value for p in nets[0].params], lr=1e-3)
train_loop(nets[0], X_tr[:640], y_tr[:640], opt, 2, 64, SEED)
network.train(
    nets[1],
    X_tr[:640],
    y_tr[:640],
    optimizer="adam",
    lr=1e-3,
    batch_size=64,
    num_epochs=2,
    schedule="cosine",
    seed=SEED,
)
for (W0, b0), (W1, b1) in zip(nets[0].get_weights(), nets[1].get_weights()):
    assert np.array_equal(W0, W1) and np.array_equal(b0, b1)
print(
    "Checked: train_loop and network.train end with the same weights, to the last bit."
)

# %% [markdown]
# (sec-ch05-full)=
# ### The network trained on 20,000 images
#
# We train `train.py`'s default configuration ([chapter 5.2](05_2_hyperparameter_sweep.ipynb)
# shows where it comes from and how it compares): four hidden layers of 128 ReLU units, Xavier
# initialisation, NAdam at a peak learning rate of $10^{-3}$, batches of 16, ten epochs, no weight
# decay. It trains on a stratified subset of `FULL_TRAIN` = 20,000 of the 54,000 training
# images (a `parameters` value: `None` trains on all of them, at almost three times the cost),
# drawn with the chapter's seed, is validated after each epoch on the 6,000 validation images and
# tested once at the end.

# %%
if FULL_TRAIN is None:  # all the training images
    X_full, y_full = X_tr, y_tr
else:
    _, X_full_img, _, y_full = data.train_val_split(
        X_tr_img, y_tr, val_fraction=FULL_TRAIN / len(y_tr), seed=SEED
    )
    X_full = scaler.transform(X_full_img)
print(f"training on {len(y_full):,} of the {len(y_tr):,} training images")
print("images per class:", np.bincount(y_full).tolist())

# %%
args = cli.build_parser().parse_args([])  # train.py's defaults
sizes = [args.hidden_size] * args.num_layers
net = network.FeedForwardNet(
    784,
    sizes,
    10,
    activation=args.activation.lower(),
    init=args.weight_init.lower(),
    weight_decay=args.weight_decay,
    seed=SEED,
)
t0 = time.process_time()
history = network.train(
    net,
    X_full,
    y_full,
    X_val=X_val,
    y_val=y_val,
    optimizer=args.optimizer,
    lr=args.learning_rate,
    batch_size=args.batch_size,
    num_epochs=args.epochs,
    schedule=LR_SCHEDULE,
    seed=SEED,
    progress=True,
    desc="train.py's defaults",
)
train_cpu = time.process_time() - t0
test_loss, test_acc = net.evaluate(X_test, y_test)
print(net)

# %% tags=["nbval-measured"] tolerance={"abs": 3.2, "rel": 4.0}
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
print(f"test accuracy of the final network: {100 * test_acc:.1f}%", end=" ")
print(f"(loss {test_loss:.3f}), {gap:.1f} points below its validation accuracy")

# %% tags=["nbval-ignore-output"] ignore_reason="CPU time varies by machine and load"
per_epoch = train_cpu / args.epochs
print(f"training: {train_cpu:.1f} s of CPU time, {per_epoch:.2f} s per epoch")

# %% [markdown]
# The learning curves, with the final network's test accuracy for reference (this cell only
# draws):

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 1, figsize=(plots.COLUMN_WIDTH, 6.4), sharex=True)
epochs = history["epoch"]
axes[0].plot(
    epochs, history["train_loss"], "o-", label="training (mean over the epoch)"
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
    label=f"test, final network ({100 * test_acc:.1f}%)",
)
axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
for a in axes:
    a.legend()
fig.suptitle(f"train.py's defaults on {len(y_full):,} training images")
plt.show()

# %% [markdown]
# With 20,000 training images the network ends at 88.8% validation accuracy. The source
# assignment's report gives a validation accuracy of $90.21\%$ for its best configuration,
# trained on its whole training split. With one run each, other validation images, other code
# and fewer training images here, the two numbers cannot be compared closely; a reader who sets
# `FULL_TRAIN = None` trains on all 54,000. The test accuracy, 88.2%, is 0.5 points below our
# final validation accuracy. Some of that gap may be selection, since the defaults were chosen
# because they did well on these validation images
# ([chapter 5.2](05_2_hyperparameter_sweep.ipynb)), and some is sampling noise: with 6,000
# validation images one {term}`standard error` of an accuracy near 88% is
# $\sqrt{0.88 \cdot 0.12 / 6000} \approx 0.4$ points, and with 10,000 test images $0.3$ points.
#
# The curves show the usual overfitting signature, with a twist. The training loss keeps falling,
# to 0.091 (the training accuracy climbs to 96.8%), while the validation loss is lowest after
# epoch 7 (0.348) and then rises, to 0.383 at the end; yet the validation *accuracy* does not
# fall with it (88.1% after epoch 7, 88.8% at the end). The network gets a few more validation
# images right while it grows over-confident on the ones it gets wrong, which the loss punishes
# ({ref}`sec-ch05-errors` measures it). Stopping at the lowest validation loss
# ({ref}`ex-bp-early-stopping`) would have cost more than half a point of accuracy here.

# %% tags=["remove-input"]
val_loss, val_acc = history["val_loss"].to_numpy(), history["val_acc"].to_numpy()
lowest = int(np.argmin(val_loss))
assert history["train_loss"].is_monotonic_decreasing
assert lowest < len(val_loss) - 2 and val_loss[-1] > val_loss[lowest] + 0.01
assert val_acc[-1] > val_acc[lowest] - 0.005 and test_acc > 0.87
print(
    "Checked: the training loss falls every epoch; the validation loss is lowest two "
    "or more epochs before the end and rises after it, while the validation accuracy "
    "does not fall by more than half a point."
)

# %% [markdown]
# (sec-ch05-errors)=
# ### Where the errors are
#
# The row-normalised confusion matrix shows, for each true class, where its test images went, in
# percent; the diagonal is each class's recall, the fraction of its images classified correctly.

# %% tags=["hide-input"]
y_pred = net.predict(X_test)
proba = net.predict_proba(X_test)
short = [c.split("/")[0] for c in ds.classes]  # "T-shirt/top" -> "T-shirt"
fig, ax = plt.subplots(figsize=(5.6, 5.4))
_, cm = plots.confusion_matrix(
    y_test,
    y_pred,
    short,
    normalize=True,
    ax=ax,
    annotate=False,
    title=f"Test set, row-normalised (accuracy {100 * test_acc:.1f}%)",
)
for (i, j), v in np.ndenumerate(cm):
    if v >= 0.005:
        ax.text(
            j,
            i,
            f"{100 * v:.0f}",
            ha="center",
            va="center",
            fontsize=10,
            color="white" if v > 0.5 else "black",
        )
ax.tick_params(labelsize=10)
plt.show()

# %% tags=["nbval-measured"] tolerance={"abs": 6.4, "rel": 0.076}
recall = pd.Series(100 * np.diag(cm), index=ds.classes)
print("recall per class (%):")
print(recall.to_string(float_format=lambda v: f"{v:.1f}"))

# %% tags=["nbval-measured"] tolerance={"abs": 120.0, "rel": 10.0}
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
# The errors are not spread evenly. Footwear, bags and trousers are recognised 95-97% of the
# time; the upper-body garments are not: shirts only 67.5% of the time, pullovers 79.6%, coats
# 82.6%, T-shirts 84.5%, the four lowest recalls. Confusions among these four classes are 62% of
# all test errors, and they come in near-symmetric pairs (shirt as T-shirt 119 times, T-shirt as
# shirt 106; pullover as coat 99, coat as pullover 90): the classes overlap rather than one class
# absorbing another. At 28x28 pixels a shirt's collar or buttons are a few pixels, and several of
# the images below are hard to name for a person too.

# %% tags=["remove-input"]
footwear_etc = ["Trouser", "Sandal", "Sneaker", "Bag", "Ankle boot"]
assert recall.idxmin() == "Shirt" and set(recall.nsmallest(4).index) == set(upper)
assert recall[footwear_etc].min() > 93 and within / wrong.sum() > 0.5
for a, b in [(0, 1), (2, 3)]:  # T-shirt and shirt, pullover and coat
    ab, ba = counts_upper.iloc[a, b], counts_upper.iloc[b, a]
    assert max(ab, ba) / min(ab, ba) < 1.6
print(
    "Checked: shirts have the lowest recall, the four upper-body classes the four "
    "lowest, footwear, bags and trousers above 93%; more than half of the errors are "
    "among the four, and each pair's confusions in its two directions differ by less "
    "than a factor 1.6."
)

# %% [markdown]
# The images behind three of those confusions, the most confidently wrong first (title: the
# probability the network gave to its wrong answer):

# %% tags=["hide-input"]
shown_pairs = [("Shirt", "T-shirt/top"), ("T-shirt/top", "Shirt"), ("Pullover", "Coat")]
fig, axes = plt.subplots(3, 5, figsize=(plots.COLUMN_WIDTH * 0.75, 4.4))
shown = []
for row, (true, pred) in zip(axes, shown_pairs):
    t, p = ds.classes.index(true), ds.classes.index(pred)
    idx = np.flatnonzero((y_test == t) & (y_pred == p))
    idx = idx[np.argsort(-proba[idx, p], kind="stable")][:5]
    shown += [proba[i, p] for i in idx]
    for ax, i in zip(row, idx):
        ax.imshow(ds.X_test[i], cmap="gray")
        ax.set_title(f"{proba[i, p]:.2f}", fontsize=10)
    for ax in row:
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
    row[0].set_ylabel(f"{true.split('/')[0]}\nas {pred.split('/')[0]}", fontsize=10)
fig.suptitle("Confident mistakes: true class (left) as another")
plt.show()

# %% tags=["nbval-measured"] tolerance={"abs": 120.0, "rel": 0.28}
p_wrong = proba[wrong, y_pred[wrong]]
nats = -np.log(np.maximum(proba[np.arange(len(y_test)), y_test], 1e-30))
loss_share = nats[wrong].sum() / nats.sum()
print(f"probability given to the wrong answer, the {len(shown)} images shown: ", end="")
print(f"{min(shown):.2f} to {max(shown):.2f}")
print(f"all {wrong.sum()} test errors: median {np.median(p_wrong):.2f}, ", end="")
print(f"above 0.9 for {100 * (p_wrong > 0.9).mean():.0f}% of them")
print(f"the errors ({100 * wrong.mean():.1f}% of the test images) carry ", end="")
print(f"{100 * loss_share:.0f}% of the test loss")

# %% [markdown]
# The images shown are the network's most confident mistakes in three of the pairs, and they are
# very confident (their probabilities are printed above). Over all 1176 errors the median
# probability given to the wrong answer is 0.81, and more than a third of the errors (36%) are made
# with more than 0.9, which leaves less than 0.1 for the true class, a cross-entropy of more than
# $-\log 0.1 \approx 2.3$ nats for each. That is why the errors, 11.8% of the test images, carry
# 91% of the test loss, and why the validation loss rises in the later epochs while the accuracy
# holds.

# %% tags=["remove-input"]
assert np.median(p_wrong) > 0.6 and 0.15 < (p_wrong > 0.9).mean() < 0.45
assert 0.08 < wrong.mean() < 0.13 and loss_share > 0.6
print(
    "Checked: the median probability on a wrong answer is above 0.6, and the errors "
    "(8-13% of the test images) carry more than 60% of the test loss."
)

# %% [markdown]
# (sec-ch05-losses)=
# ## 4. Two losses and six optimizers
#
# Both losses act on the softmax probabilities $\mathbf{s}$; their gradients with respect to the
# logits differ:
#
# $$
# \begin{aligned}
# \frac{\partial \ell_{\text{CE}}}{\partial \mathbf{z}} &= \mathbf{s} - \mathbf{e}_y, \\
# \frac{\partial \ell_{\text{SE}}}{\partial \mathbf{z}}
# &= \mathbf{s} \odot \big(\mathbf{u} - (\mathbf{u}^\top \mathbf{s})\,\mathbf{1}\big), \\
# \mathbf{u} &= 2\,(\mathbf{s} - \mathbf{e}_y).
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
    z = np.array([[0.0, 0.0, margin, 0.0]])  # the true class is 0; class 2 leads
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
            ref = ((torch.softmax(zt, 1) - F.one_hot(torch.tensor([0]), 4)) ** 2).sum()
        ref.backward()
        np.testing.assert_allclose(zin.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
        row[f"|dL/dz| {name}"] = float(np.linalg.norm(zin.grad))
    rows.append(row)
grad_table = pd.DataFrame(rows)
print(grad_table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

# %% [markdown]
# Does it matter in training? One small network (two hidden layers of 64 ReLU units, Xavier
# initialisation, batches of 64) is trained with each of the six optimizers of
# [chapter 3](03_optimizers.ipynb), at a learning rate that suits it, with both losses and
# `N_SEEDS` = 3 seeds, on a stratified subset of `CMP_TRAIN` = 3,000 training images for
# `CMP_EPOCHS` = 4 epochs, and validated on the 6,000 validation images. With the same seed, the
# two losses start from the same weights and see the same minibatches, so the comparison is
# **paired**: we compare them seed by seed. Following the book's rule
# ({ref}`sec-comparing-runs`), the difference is resolved only when every seed's difference has
# the same sign; we also ask that each exceeds
# `MARGIN` = $0.5$ points ($30$ of the 6,000 validation images), because a run's accuracy moves by
# tenths of a point, and up to two points with squared error and a plain gradient method, when
# only its seed changes (see the ranges below).
#
# The seeds of one configuration train together, as in [chapter 1.2](01_2_batch_size.ipynb):
# `network.BatchedNet` is the same graph built with the engine's leading seed axis (every weight
# matrix holds one slice per seed, and each layer computes one batched matrix product), and
# `network.train_seeds` runs the loop above for every seed at once, each seed with its own
# initial weights and its own minibatch order.

# %%
_, X_cmp_img, _, y_cmp = data.train_val_split(
    X_tr_img, y_tr, val_fraction=CMP_TRAIN / len(y_tr), seed=SEED
)
X_cmp = scaler.transform(X_cmp_img)
OPTIMIZER_LR = {
    "sgd": 0.1,
    "momentum": 1e-2,
    "nesterov": 1e-2,
    "rmsprop": 1e-3,
    "adam": 1e-3,
    "nadam": 1e-3,
}
runs = []
for loss in ["cross_entropy", "mean_squared_error"]:
    for name, lr in OPTIMIZER_LR.items():
        nets = network.BatchedNet(784, [64, 64], 10, seeds=SEEDS, loss=loss)
        hist = network.train_seeds(
            nets,
            X_cmp,
            y_cmp,
            X_val=X_val,
            y_val=y_val,
            optimizer=name,
            lr=lr,
            batch_size=64,
            num_epochs=CMP_EPOCHS,
            schedule=LR_SCHEDULE,
        )
        runs.append(
            hist.assign(loss=loss, optimizer=name, val_acc=100 * hist["val_acc"])
        )
runs = pd.concat(runs, ignore_index=True)

# %% tags=["nbval-measured"] tolerance={"abs": 5.2, "rel": 5.0}
final = runs[runs["epoch"] == CMP_EPOCHS].pivot(
    index=["optimizer", "seed"], columns="loss", values="val_acc"
)
rows = []
for name in OPTIMIZER_LR:
    a = final.loc[name, "cross_entropy"].to_numpy()
    b = final.loc[name, "mean_squared_error"].to_numpy()
    verdict = stats.compare(a, b, paired=True, margin=MARGIN)
    rows.append(
        {
            "optimizer": name,
            "cross-entropy": stats.mean_range(a),
            "squared error": stats.mean_range(b),
            "CE - SE per seed": stats.signed(a - b),
            "cross-entropy is": verdict.word(),
        }
    )
cmp_table = pd.DataFrame(rows).set_index("optimizer")
print(f"validation accuracy (%) after {CMP_EPOCHS} epochs, mean (range) over", end=" ")
print(f"{N_SEEDS} seeds:")
print(cmp_table.iloc[:, :2].to_string())
print("the paired comparison, seed by seed:")
print(cmp_table.iloc[:, 2:].to_string())

# %% [markdown]
# With the three plain gradient methods cross-entropy is ahead on every seed, by 2.6 to 4.9 points
# after four epochs. With RMSProp, Adam and NAdam the per-seed differences are below a point: with
# RMSProp they change sign from seed to seed; with Adam and NAdam squared error is a little ahead
# on every seed, but not by the margin on every seed. For all three: not resolved with 3 seeds.
# Adaptive methods divide each step by the running size of the gradient, so the smaller scale of
# the squared-error gradient no longer slows them down, and the vanishing gradient on badly wrong
# examples concerns few examples once most are roughly right. So the common advice (use
# cross-entropy, squared error learns slowly) shows on our data with the non-adaptive optimizers;
# with the adaptive ones, three seeds do not settle it. All six use the same network; only the
# optimizer, with the learning rate that suits it, and the loss change.

# %% [markdown]
# The mean validation accuracy after each epoch, with the range over the seeds shaded (this cell
# only draws):

# %% tags=["hide-input"]
fig, axes = plt.subplots(
    3, 2, figsize=(plots.COLUMN_WIDTH, 8.4), sharex=True, sharey=True
)
for ax, name in zip(axes.flat, OPTIMIZER_LR):
    for loss, style, label in [
        ("cross_entropy", "o-", "cross-entropy"),
        ("mean_squared_error", "s--", "squared error"),
    ]:
        acc = runs.query("loss == @loss and optimizer == @name").pivot(
            index="epoch", columns="seed", values="val_acc"
        )
        line = ax.plot(acc.index, acc.mean(axis=1), style, label=label)[0]
        ax.fill_between(
            acc.index,
            acc.min(axis=1),
            acc.max(axis=1),
            color=line.get_color(),
            alpha=0.2,
        )
    ax.set_title(f"{name}, lr {OPTIMIZER_LR[name]:g}")
    ax.set_xticks(range(1, CMP_EPOCHS + 1))
for ax in axes[-1]:
    ax.set_xlabel("epoch")
for ax in axes[:, 0]:
    ax.set_ylabel("val. accuracy (%)")
axes[0, 0].legend()
fig.suptitle(f"Cross-entropy against squared error ({CMP_TRAIN:,} training images)")
plt.show()

# %% [markdown]
# ## Summary
#
# - The from-scratch network is [chapter 1.1](01_1_computational_graph.ipynb)'s nodes wired for any
#   number and width of layers, four activations, three initialisations, two losses and weight
#   decay. Its whole-network gradients agree with finite differences (to $10^{-6}$) and with
#   `torch.autograd` (to $10^{-12}$).
# - Training is forward, backward and an in-place optimizer step from
#   [chapter 3](03_optimizers.ipynb), repeated; the graph is built once. The seeds of one
#   configuration train together, with one batched matrix product per layer.
# - On 20,000 of the 54,000 training images `train.py`'s defaults reach 88.8% validation
#   accuracy (the source report's best, trained on its whole training split: $90.21\%$, also on
#   validation images) and 88.2% test accuracy. Confusions among T-shirts, shirts, pullovers
#   and coats are 62% of the errors, and the network is
#   over-confident on its errors, which is why its validation loss rises while its accuracy holds.
# - Cross-entropy is ahead of squared error on every seed with SGD, momentum and Nesterov; with
#   RMSProp, Adam and NAdam the difference is not resolved with 3 seeds.
#
# ## Exercises
#
# ```{exercise} Initialisation scale and the signal
# :label: ex-bp-init-scale
#
# The "random" initialisation of `network.FeedForwardNet` draws every weight from
# $N(0, 0.01^2)$. Build a 5-layer, 128-unit tanh network with each of `"random"`, `"xavier"` and
# `"he"` and measure the standard deviation of each hidden layer's output on 1,000 training
# images at initialisation. What happens to the signal?
# ```
#
# ```{solution} ex-bp-init-scale
# :class: dropdown
#
# A layer with $n$ inputs of standard deviation $\operatorname{sd}_x$ and weights of standard
# deviation $\operatorname{sd}_w$ produces pre-activations of standard deviation about
# $\sqrt{n}\,\operatorname{sd}_w\operatorname{sd}_x$, and tanh is close to the identity near zero.
# With $\operatorname{sd}_w = 0.01$ that factor is $0.01\sqrt{784} = 0.28$ for the first layer
# and $0.01\sqrt{128} = 0.11$ for each of the others. The measurement below follows it: 0.22
# after the first layer, then about nine times smaller after each further layer, and a standard
# deviation of about $5\times10^{-6}$ for the logits. The logits hardly depend on the image, and
# the gradients reaching the first layers are scaled down by the same factors. Plain SGD then
# barely moves the first layers; an adaptive optimizer divides each step by the running size of
# its gradient and gets going anyway ([chapter 5.2](05_2_hyperparameter_sweep.ipynb) measures
# what the "random" initialisation costs NAdam). Xavier's variance
# $2/(n_{\text{in}} + n_{\text{out}})$ {cite}`ch05-1-glorot2010understanding` makes the factor
# close to one: the signal shrinks only from 0.65 to 0.32 over five tanh layers. He's
# $2/n_{\text{in}}$ {cite}`ch05-1-he2015delving`, made for ReLU (which zeroes half of its
# inputs), is a little larger still and keeps tanh layers near 0.6.
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
# gives
#
# $$
# \begin{aligned}
# \frac{\partial \ell}{\partial z_k}
# &= \sum_j u_j\, s_j(\delta_{jk} - s_k) \\
# &= s_k u_k - s_k \sum_j u_j s_j \\
# &= s_k\,(u_k - \mathbf{u}^\top \mathbf{s}),
# \end{aligned}
# $$
#
# that is $\mathbf{s} \odot (\mathbf{u} - (\mathbf{u}^\top \mathbf{s})\mathbf{1})$. This is the
# rule of the engine's `SoftmaxMSE` node, which {ref}`sec-ch05-losses` checked against
# `torch.autograd`. For cross-entropy the same computation with
# $\mathbf{u} = -\mathbf{e}_y / s_y$ gives $\mathbf{u}^\top \mathbf{s} = -1$ and
# $s_k(u_k + 1) = s_k - \delta_{ky}$.
# ```
#
# ```{exercise} Early stopping
# :label: ex-bp-early-stopping
#
# Early stopping keeps the weights of the epoch with the best validation score. Using the history
# of {ref}`sec-ch05-full`, at which epoch would it stop if the score were the validation loss,
# and if it were the validation accuracy? What accuracy would each keep?
# ```
#
# ```{solution} ex-bp-early-stopping
# :class: dropdown
#
# With the chapter's seed the validation loss is lowest after epoch 7, where the validation
# accuracy is 88.1%; the accuracy is highest after the last epoch, epoch 10, at 88.8%. Because
# the network grows over-confident on the images it gets wrong, the loss turns up while the
# accuracy still improves a little: stopping on the loss would have cost more than half a point
# of validation accuracy here. Stop on the metric you will report. The cell below reads both
# epochs off the history.
# ```
#
# ```{exercise} L2 penalty and the optimizer's weight decay
# :label: ex-bp-coupled-decay
#
# The network adds $\tfrac{\lambda_{\text{wd}}}{2}\sum_l\lVert W_l\rVert_F^2$ to the loss. The
# optimizers of [chapter 3](03_optimizers.ipynb) also accept `weight_decay`. Are the two the
# same? Check with one SGD step.
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
# (AdamW, {cite}`ch05-1-loshchilov2019adamw`) are different methods there. The cell below checks
# the SGD case.
# ```
#
# The solutions, computed:

# %% tags=["hide-input"]
# Exercise 5.1.1: the signal through 5 tanh layers of 128 units at initialisation.
rows = {}
for init in ["random", "xavier", "he"]:
    deep = network.FeedForwardNet(
        784, [128] * 5, 10, activation="tanh", init=init, dtype=np.float64, seed=SEED
    )
    deep.x.value = X_tr[:1000].astype(np.float64)
    graph.forward(deep.logits)
    order = graph.topological_sort(deep.logits)
    acts = [n for n in order if isinstance(n, graph.Tanh)] + [deep.logits]
    rows[init] = [float(n.value.std()) for n in acts]
stds = pd.DataFrame(rows, index=[f"layer {i}" for i in range(1, 6)] + ["logits"]).T
print("Exercise 5.1.1: sd of each layer's output at initialisation")
print(stds.to_string(float_format=lambda v: f"{v:.1e}"))
assert stds.loc["random", "logits"] < 1e-4 < 0.1 < stds.loc["xavier", "layer 5"]
assert (stds.loc["he"].iloc[:5] > 0.5).all() and (
    stds.loc["xavier"].iloc[:5] > 0.3
).all()

# Exercise 5.1.4: the network's L2 penalty against the optimizer's coupled weight decay.
lam, lr = 0.1, 0.5
pair = [
    network.FeedForwardNet(12, [6], 4, weight_decay=w, dtype=np.float64, seed=SEED)
    for w in (lam, 0.0)
]
for n in pair:
    n.layers[0].b.value[...] = 1.0
opts = [
    optim.SGD([p.value for p in pair[0].params], lr=lr),
    optim.SGD([p.value for p in pair[1].params], lr=lr, weight_decay=lam),
]
for n, o in zip(pair, opts):
    n.loss_and_grads(X_small, y_small)
    o.step([p.grad for p in n.params])
for p0, p1 in zip(*(n.params for n in pair)):
    if p0.name.endswith(".W"):
        np.testing.assert_allclose(p0.value, p1.value, rtol=1e-12)
    else:
        expected = p0.value - lr * lam * (p0.value + lr * p0.grad)
        np.testing.assert_allclose(p1.value, expected, rtol=1e-12, atol=1e-15)
print("Exercise 5.1.4: the same weight matrices after an SGD step; the optimizer's")
print("decay also shrank the biases")

# %% tags=["hide-input", "nbval-measured"] tolerance={"abs": 4.0, "rel": 0.58}
# Exercise 5.1.3: early stopping on the validation loss against the validation accuracy.
by_loss = history.loc[history["val_loss"].idxmin()]
by_acc = history.loc[history["val_acc"].idxmax()]
print(
    f"Exercise 5.1.3: lowest validation loss after epoch {int(by_loss.epoch)} "
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
# :keyprefix: ch05-1-
# ```
