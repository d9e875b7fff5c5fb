"""A feedforward classifier built from scratch on the chapter-1 engine, trained with the chapter-3 optimizers.

Introduced in chapter 5 (backpropagation on Fashion-MNIST); ``train.py`` at the repository
root is its command-line front end.

No automatic differentiation library is involved: the network is a graph of
:mod:`course_utils.graph` nodes (``Linear`` layers, activations and a softmax loss), built once,
and every training step runs :func:`course_utils.graph.forward` and
:func:`course_utils.graph.backward` on it and hands the gradients to an optimizer from
:mod:`course_utils.optim`, which updates the parameter arrays in place.

Conventions
-----------
* Samples are rows: inputs ``(batch, in_features)``, labels ``(batch,)`` integers.
* ``hidden_sizes`` lists the width of each hidden layer (any number, ``[]`` gives softmax regression).
* ``activation``: ``"identity"``, ``"sigmoid"``, ``"tanh"`` or ``"relu"`` (every hidden layer).
* ``init``: ``"random"`` (N(0, 0.01^2)), ``"xavier"`` (Glorot uniform) or ``"he"`` (N(0, 2/fan_in));
  biases start at zero. See :class:`course_utils.graph.Linear`.
* ``loss``: ``"cross_entropy"`` (softmax cross-entropy) or ``"mean_squared_error"`` (squared error
  between the softmax probabilities and the one-hot label, summed over classes, averaged over the batch).
* ``weight_decay`` lambda adds the L2 penalty (lambda / 2) * sum ||A||^2 over the weight matrices
  (not the biases) to the objective, so lambda * A is added to each weight gradient. With the
  optimizers' own coupled ``weight_decay`` this would be the same update, except that it would also
  decay the biases.

Example::

    net = FeedForwardNet(784, [128, 128], 10, activation="relu", init="xavier", seed=0)
    history = train(net, X_train, y_train, X_val=X_val, y_val=y_val,
                    optimizer="adam", lr=1e-3, batch_size=64, num_epochs=5)
    acc = net.accuracy(X_test, y_test)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import graph, optim

__all__ = [
    "ACTIVATIONS", "LOSSES", "INITS", "OPTIMIZERS",
    "FeedForwardNet", "Standardizer", "make_optimizer", "train", "iterate_minibatches", "flops_per_example",
]

ACTIVATIONS = {"identity": graph.Identity, "sigmoid": graph.Sigmoid, "tanh": graph.Tanh, "relu": graph.ReLU}
LOSSES = {"cross_entropy": graph.SoftmaxCrossEntropy, "mean_squared_error": graph.SoftmaxMSE}
INITS = graph.INITS
#: optimizer names -> classes of course_utils.optim ("nag" is the source assignment's name for Nesterov)
OPTIMIZERS = {
    "sgd": optim.SGD,
    "momentum": optim.Momentum,
    "nesterov": optim.Nesterov,
    "nag": optim.Nesterov,
    "rmsprop": optim.RMSProp,
    "adam": optim.Adam,
    "nadam": optim.NAdam,
}
SCHEDULES = ("constant", "cosine")


def _choice(kind: str, value: str, valid) -> str:
    key = str(value).lower()
    if key not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(repr(v) for v in valid)}")
    return key


# --------------------------------------------------------------------------- the network
class FeedForwardNet:
    """in_features -> hidden_sizes[0] -> ... -> num_classes, an activation after every hidden layer.

    The graph is built once in ``__init__``: ``self.x`` and ``self.y`` are its :class:`graph.Input`
    leaves, ``self.logits`` the output layer's node, ``self.loss`` the loss node, and
    ``self.params`` the :class:`graph.Parameter` list (A before b, input layer first).
    ``seed`` (or ``rng``, a ``numpy.random.Generator``) makes the initial weights reproducible.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden_sizes: Sequence[int] = (128, 128),
        num_classes: int = 10,
        *,
        activation: str = "relu",
        init: str = "xavier",
        loss: str = "cross_entropy",
        weight_decay: float = 0.0,
        dtype=np.float32,
        seed: int | None = 0,
        rng: np.random.Generator | None = None,
    ):
        if isinstance(hidden_sizes, (int, np.integer)):
            hidden_sizes = [hidden_sizes]
        sizes = [in_features, *hidden_sizes, num_classes]
        for label, n in zip(["in_features", *[f"hidden_sizes[{i}]" for i in range(len(hidden_sizes))], "num_classes"], sizes):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{label} must be a positive integer, got {n!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.activation = _choice("activation", activation, ACTIVATIONS)
        self.init = _choice("init", init, INITS)
        self.loss_name = _choice("loss", loss, LOSSES)
        self.weight_decay = optim.check_nonnegative("weight_decay", weight_decay)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        if rng is None:
            rng = np.random.default_rng(seed)
        self.sizes = [int(n) for n in sizes]
        self.hidden_sizes = self.sizes[1:-1]

        self.x = graph.Input("x")
        self.y = graph.Input("y")
        h: graph.Node = self.x
        self.layers: list[graph.Linear] = []
        act = ACTIVATIONS[self.activation]
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-2], self.sizes[1:-1]), start=1):
            lin = graph.Linear(h, n_in, n_out, init=self.init, rng=rng, dtype=self.dtype, name=f"hidden{i}")
            self.layers.append(lin)
            h = act(lin, name=f"{self.activation}{i}")
        self.logits = graph.Linear(h, self.sizes[-2], self.sizes[-1], init=self.init, rng=rng, dtype=self.dtype, name="output")
        self.layers.append(self.logits)
        self.loss = LOSSES[self.loss_name](self.logits, self.y, name=self.loss_name)
        self.params: list[graph.Parameter] = graph.parameters(self.loss)
        self._weights = [layer.A for layer in self.layers]
        self._scratch = [np.empty_like(A.value) for A in self._weights]

    def __repr__(self) -> str:
        arch = "-".join(str(n) for n in self.sizes)
        return (f"FeedForwardNet({arch}, activation={self.activation!r}, init={self.init!r}, "
                f"loss={self.loss_name!r}, weight_decay={self.weight_decay!r}, dtype={self.dtype.name})")

    @property
    def num_parameters(self) -> int:
        return int(sum(p.value.size for p in self.params))

    # --- inputs
    def _check_X(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (batch, {self.sizes[0]}), got {X.shape}")
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        return X

    def _check_y(self, X: np.ndarray, y) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"y must have shape ({len(X)},) to match X of shape {X.shape}, got {y.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"y must hold integer class ids, got dtype {y.dtype}")
        return y

    # --- one training step's worth of work
    def penalty(self) -> float:
        """The L2 term (lambda / 2) * sum over weight matrices of ||A||^2 (0 without weight decay)."""
        if self.weight_decay == 0.0:
            return 0.0
        return 0.5 * self.weight_decay * float(sum(np.vdot(A.value, A.value) for A in self._weights))

    def loss_and_grads(self, X, y) -> float:
        """Forward and backward pass on one batch: fills every ``param.grad`` with the gradient of
        data loss + :meth:`penalty`, and returns the data loss (the mean over the batch, a float)."""
        self.x.value = X
        self.y.value = y
        loss = graph.forward(self.loss)
        graph.backward(self.loss)
        if self.weight_decay != 0.0:
            for A, buf in zip(self._weights, self._scratch):
                np.multiply(A.value, self.weight_decay, out=buf)
                A.grad += buf
        return float(loss)

    def objective(self, X, y) -> float:
        """Data loss + L2 penalty on a batch (what :meth:`loss_and_grads` differentiates)."""
        X = self._check_X(X)
        y = self._check_y(X, y)
        self.x.value, self.y.value = X, y
        return float(graph.forward(self.loss)) + self.penalty()

    # --- inference
    def logits_of(self, X, batch_size: int = 4096) -> np.ndarray:
        """Output-layer values (before the softmax) for every row of ``X``, in chunks."""
        X = self._check_X(X)
        out = np.empty((len(X), self.sizes[-1]), dtype=self.dtype)
        for start in range(0, len(X), batch_size):
            self.x.value = X[start:start + batch_size]
            out[start:start + batch_size] = graph.forward(self.logits)
        return out

    def predict_proba(self, X, batch_size: int = 4096) -> np.ndarray:
        z = self.logits_of(X, batch_size).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X, batch_size: int = 4096) -> np.ndarray:
        """Predicted class ids."""
        return self.logits_of(X, batch_size).argmax(axis=1)

    def evaluate(self, X, y, batch_size: int = 4096) -> tuple[float, float]:
        """(mean data loss, accuracy) over ``X, y``."""
        X = self._check_X(X)
        y = self._check_y(X, y)
        if len(X) == 0:
            raise ValueError("evaluate: X is empty")
        total, correct = 0.0, 0
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            self.x.value, self.y.value = xb, yb
            total += float(graph.forward(self.loss)) * len(xb)
            correct += int((self.logits.value.argmax(axis=1) == yb).sum())
        return total / len(X), correct / len(X)

    def accuracy(self, X, y, batch_size: int = 4096) -> float:
        return self.evaluate(X, y, batch_size)[1]

    # --- weights in and out
    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of (A, b) for every layer, input layer first."""
        return [(layer.A.value.copy(), layer.b.value.copy()) for layer in self.layers]

    def set_weights(self, weights) -> None:
        """Copy (A, b) pairs into the layers, in place (optimizers keep their references)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(f"got {len(weights)} (A, b) pairs for {len(self.layers)} layers")
        for layer, (A, b) in zip(self.layers, weights):
            A, b = np.asarray(A), np.asarray(b)
            if A.shape != layer.A.value.shape or b.shape != layer.b.value.shape:
                raise ValueError(f"layer {layer.name!r}: expected A {layer.A.value.shape} and b {layer.b.value.shape}, "
                                 f"got {A.shape} and {b.shape}")
            layer.A.value[...] = A
            layer.b.value[...] = b


def flops_per_example(sizes: Sequence[int], train: bool = True) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of the matrix products for one example.

    Forward: 2 * sum(n_in * n_out). A training step adds the weight gradients (the same again)
    and the gradients with respect to each hidden layer's input (the same, less the first layer,
    whose input needs no gradient). Element-wise work (activations, softmax, optimizer) is not counted.
    """
    pairs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    fwd = 2 * sum(pairs)
    if not train:
        return fwd
    return fwd + 2 * sum(pairs) + 2 * sum(pairs[1:])


# --------------------------------------------------------------------------- input scaling
@dataclass
class Standardizer:
    """Flatten uint8 images to rows, scale to [0, 1], subtract the per-pixel training mean and
    divide by the training set's overall standard deviation (one number, so empty border pixels
    are not blown up). Fit on the training split only."""

    mean: np.ndarray | None = None
    std: float | None = None
    dtype: type = np.float32

    @staticmethod
    def _flat(X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim < 2:
            raise ValueError(f"expected images (N, H, W) or rows (N, D), got shape {X.shape}")
        return X.reshape(len(X), -1)

    def fit(self, X) -> "Standardizer":
        flat = self._flat(X).astype(np.float64) / 255.0
        self.mean = flat.mean(axis=0)
        self.std = float(flat.std())
        if not self.std > 0:
            raise ValueError("Standardizer.fit: the images are constant (standard deviation 0)")
        return self

    def transform(self, X) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("Standardizer: call fit() on the training images first")
        flat = self._flat(X)
        if flat.shape[1] != self.mean.shape[0]:
            raise ValueError(f"Standardizer was fit on {self.mean.shape[0]} features, got {flat.shape[1]}")
        out = flat.astype(self.dtype)
        out *= self.dtype(1.0 / (255.0 * self.std))
        out -= (self.mean / self.std).astype(self.dtype)
        return out

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)


# --------------------------------------------------------------------------- training
def make_optimizer(name: str, params: Sequence[np.ndarray], lr: float, **hyper) -> optim.Optimizer:
    """An optimizer of :mod:`course_utils.optim` by name (see :data:`OPTIMIZERS`).

    ``hyper`` may hold ``beta`` (momentum, nesterov/nag, rmsprop), ``beta1``, ``beta2`` (adam, nadam)
    and ``eps`` (rmsprop, adam, nadam); keys the chosen optimizer does not use are ignored, so one
    command line (``train.py``) can carry all of them. ``None`` values mean the optimizer's default.
    """
    key = _choice("optimizer", name, OPTIMIZERS)
    cls = OPTIMIZERS[key]
    uses = {"sgd": (), "momentum": ("beta",), "nesterov": ("beta",), "nag": ("beta",),
            "rmsprop": ("beta", "eps"), "adam": ("beta1", "beta2", "eps"), "nadam": ("beta1", "beta2", "eps")}[key]
    unknown = set(hyper) - {"beta", "beta1", "beta2", "eps"}
    if unknown:
        raise ValueError(f"unknown optimizer hyperparameter(s) {sorted(unknown)}; valid: beta, beta1, beta2, eps")
    kwargs = {k: v for k, v in hyper.items() if k in uses and v is not None}
    return cls(list(params), lr=lr, **kwargs)


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator):
    """Index arrays of one shuffled pass over ``range(n)`` (the last batch may be smaller)."""
    perm = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield perm[start:start + batch_size]


def train(
    net: FeedForwardNet,
    X_train,
    y_train,
    *,
    optimizer: str | optim.Optimizer = "adam",
    lr: float = 1e-3,
    batch_size: int = 64,
    num_epochs: int = 5,
    X_val=None,
    y_val=None,
    schedule: str = "constant",
    seed: int = 0,
    optimizer_kwargs: dict | None = None,
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = False,
    desc: str | None = None,
):
    """Minibatch training of ``net``; returns a pandas DataFrame with one row per epoch.

    Columns: ``epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds``. The training
    metrics are averaged over the examples of the epoch while the weights change (as in
    ``course_utils.training.fit``), the validation metrics are measured after the epoch (NaN
    without validation data); ``lr`` is the learning rate of the epoch's last step and
    ``seconds`` the epoch's wall time (it varies from run to run: never print it as a result).

    ``schedule``: ``"constant"``, or ``"cosine"`` (the learning rate follows
    lr * (1 + cos(pi * t / T)) / 2 over the T steps of the run, reaching 0 at the end).
    ``callback(epoch, row)`` is called after every epoch (an optuna pruner raises from it).
    Training stops early, with a warning row, when the loss becomes NaN or infinite; the
    history then has a column ``diverged`` set to True.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    X_train = net._check_X(X_train)
    y_train = net._check_y(X_train, y_train)
    if len(X_train) == 0:
        raise ValueError("train: X_train is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, (int, np.integer)) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    schedule = _choice("schedule", schedule, SCHEDULES)
    has_val = X_val is not None
    if has_val:
        X_val = net._check_X(X_val)
        y_val = net._check_y(X_val, y_val)
    if isinstance(optimizer, optim.Optimizer):
        opt = optimizer
        lr = opt.lr
    else:
        opt = make_optimizer(optimizer, [p.value for p in net.params], lr, **(optimizer_kwargs or {}))
    grads = [p.grad for p in net.params]
    rng = np.random.default_rng(seed)
    n = len(X_train)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = steps_per_epoch * num_epochs
    step = 0
    rows = []
    diverged = False
    with tqdm(total=num_epochs, desc=desc or "training", disable=not progress, leave=False) as bar:
        for epoch in range(1, num_epochs + 1):
            t0 = time.perf_counter()
            total_loss, correct = 0.0, 0
            for idx in iterate_minibatches(n, batch_size, rng):
                if schedule == "cosine":
                    opt.lr = lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
                xb, yb = X_train[idx], y_train[idx]
                loss = net.loss_and_grads(xb, yb)
                if not math.isfinite(loss):
                    diverged = True
                    break
                opt.step(grads)
                step += 1
                total_loss += loss * len(idx)
                correct += int((net.logits.value.argmax(axis=1) == yb).sum())
            row = {"epoch": epoch, "train_loss": total_loss / n if not diverged else float("nan"),
                   "train_acc": correct / n if not diverged else float("nan"),
                   "val_loss": float("nan"), "val_acc": float("nan"), "lr": float(opt.lr)}
            if has_val and not diverged:
                with np.errstate(over="ignore", invalid="ignore"):
                    row["val_loss"], row["val_acc"] = net.evaluate(X_val, y_val)
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
            if diverged:
                break
            if callback is not None:
                callback(epoch, row)
    history = pd.DataFrame(rows)
    history["diverged"] = diverged
    return history
