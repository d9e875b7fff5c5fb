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
* ``weight_decay`` lambda adds the L2 penalty (lambda / 2) * sum ||W||^2 over the weight matrices
  (not the biases) to the objective, so lambda * W is added to each weight gradient. With the
  optimizers' own coupled ``weight_decay`` this would be the same update, except that it would also
  decay the biases.
* Every layer is a :class:`course_utils.graph.Linear` with weight matrix ``layer.W``
  (out_features, in_features) and bias ``layer.b``; parameter names ``"hidden1.W"``, ...,
  ``"output.b"``.
* Bad input raises before anything changes: a wrong shape or dtype, an empty batch (zero rows),
  a non-positive ``batch_size`` raise a ``ValueError`` (``TypeError`` for a wrong type) naming the
  method and what it received.

Example::

    net = FeedForwardNet(784, [128, 128], 10, activation="relu", init="xavier", seed=0)
    history = train(net, X_train, y_train, X_val=X_val, y_val=y_val,
                    optimizer="adam", lr=1e-3, batch_size=64, num_epochs=5)
    acc = net.accuracy(X_test, y_test)
"""
from __future__ import annotations

import math
import numbers
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


def _is_int(n) -> bool:
    return isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_))


def _positive_int(name: str, n) -> int:
    if not _is_int(n) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _seed(name: str, seed, allow_none: bool = False):
    if seed is None and allow_none:
        return None
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer{' or None' if allow_none else ''}, got {seed!r}")
    return int(seed)


# --------------------------------------------------------------------------- the network
class FeedForwardNet:
    """in_features -> hidden_sizes[0] -> ... -> num_classes, an activation after every hidden layer.

    The graph is built once in ``__init__``: ``self.x`` and ``self.y`` are its :class:`graph.Input`
    leaves, ``self.layers`` its :class:`graph.Linear` layers (weights ``layer.W``, biases
    ``layer.b``), ``self.logits`` the output layer's node, ``self.loss`` the loss node, and
    ``self.params`` the :class:`graph.Parameter` list (W before b, input layer first).
    ``seed`` (a non-negative integer, or None for fresh entropy) or ``rng`` (a
    ``numpy.random.Generator``, which takes precedence) makes the initial weights reproducible.
    ``dtype`` (float32 or float64) is the parameters' dtype; inputs are converted to it.
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
        if _is_int(hidden_sizes):
            hidden_sizes = [hidden_sizes]
        if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, (Sequence, np.ndarray)):
            raise TypeError(f"hidden_sizes must be a list of positive integers (or one integer), got {hidden_sizes!r}")
        sizes = [in_features, *hidden_sizes, num_classes]
        for label, n in zip(["in_features", *[f"hidden_sizes[{i}]" for i in range(len(hidden_sizes))], "num_classes"], sizes):
            _positive_int(label, n)
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.activation = _choice("activation", activation, ACTIVATIONS)
        self.init = _choice("init", init, INITS)
        self.loss_name = _choice("loss", loss, LOSSES)
        self.weight_decay = optim.check_nonnegative("weight_decay", weight_decay)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from exc
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        if rng is None:
            rng = np.random.default_rng(_seed("seed", seed, allow_none=True))
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
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
        self._weights = [layer.W for layer in self.layers]
        self._scratch = [np.empty_like(W.value) for W in self._weights]

    def __repr__(self) -> str:
        arch = "-".join(str(n) for n in self.sizes)
        return (f"FeedForwardNet({arch}, activation={self.activation!r}, init={self.init!r}, "
                f"loss={self.loss_name!r}, weight_decay={self.weight_decay!r}, dtype={self.dtype.name})")

    @property
    def num_parameters(self) -> int:
        return int(sum(p.value.size for p in self.params))

    # --- inputs
    def _check_X(self, X, where: str) -> np.ndarray:
        """``X`` as a (batch >= 1, in_features) array of the network's dtype, or a clear error."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"{where}: X must have shape (batch, {self.sizes[0]}), got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{where}: X is an empty batch, shape {X.shape}; pass at least one row")
        if X.dtype != self.dtype:
            if X.dtype.kind not in "biuf":
                raise TypeError(f"{where}: X must hold real numbers, got dtype {X.dtype}")
            X = X.astype(self.dtype)
        return X

    def _check_y(self, X: np.ndarray, y, where: str) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"{where}: y must have shape ({len(X)},) to match X of shape {X.shape}, got {y.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"{where}: y must hold integer class ids, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= self.sizes[-1]:
            raise ValueError(f"{where}: y must hold class ids in [0, {self.sizes[-1]}), "
                             f"got min {y.min()} and max {y.max()}")
        return y

    # --- one training step's worth of work
    def penalty(self) -> float:
        """The L2 term (lambda / 2) * sum over weight matrices of ||W||^2 (0 without weight decay)."""
        if self.weight_decay == 0.0:
            return 0.0
        return 0.5 * self.weight_decay * float(sum(np.vdot(W.value, W.value) for W in self._weights))

    def loss_and_grads(self, X, y) -> float:
        """Forward and backward pass on one batch: fills every ``param.grad`` with the gradient of
        data loss + :meth:`penalty`, and returns the data loss (the mean over the batch, a float).

        The training step's hot path: ``X`` and ``y`` go into the graph as they are, and the
        graph's nodes check them (shapes, an empty batch, integer labels in range; ``X`` of
        another dtype is converted by the first layer)."""
        self.x.value = X
        self.y.value = y
        loss = graph.forward(self.loss)
        graph.backward(self.loss)
        if self.weight_decay != 0.0:
            for W, buf in zip(self._weights, self._scratch):
                np.multiply(W.value, self.weight_decay, out=buf)
                W.grad += buf
        return float(loss)

    def objective(self, X, y) -> float:
        """Data loss + L2 penalty on a batch (what :meth:`loss_and_grads` differentiates)."""
        X = self._check_X(X, "objective")
        y = self._check_y(X, y, "objective")
        self.x.value, self.y.value = X, y
        return float(graph.forward(self.loss)) + self.penalty()

    # --- inference
    def _logits(self, X, batch_size, where: str) -> np.ndarray:
        X = self._check_X(X, where)
        batch_size = _positive_int(f"{where}: batch_size", batch_size)
        out = np.empty((len(X), self.sizes[-1]), dtype=self.dtype)
        for start in range(0, len(X), batch_size):
            self.x.value = X[start:start + batch_size]
            out[start:start + batch_size] = graph.forward(self.logits)
        return out

    def logits_of(self, X, batch_size: int = 4096) -> np.ndarray:
        """Output-layer values (before the softmax) for every row of ``X`` (at least one row),
        computed ``batch_size`` rows at a time; shape ``(len(X), num_classes)``, the network's dtype."""
        return self._logits(X, batch_size, "logits_of")

    def predict_proba(self, X, batch_size: int = 4096) -> np.ndarray:
        """Softmax probabilities (float64) for every row of ``X``; each row sums to 1."""
        z = self._logits(X, batch_size, "predict_proba").astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X, batch_size: int = 4096) -> np.ndarray:
        """Predicted class ids, shape ``(len(X),)``."""
        return self._logits(X, batch_size, "predict").argmax(axis=1)

    def evaluate(self, X, y, batch_size: int = 4096) -> tuple[float, float]:
        """(mean data loss, accuracy) over ``X, y`` (at least one example), ``batch_size`` rows at a time."""
        return self._evaluate(X, y, batch_size, "evaluate")

    def accuracy(self, X, y, batch_size: int = 4096) -> float:
        """The fraction of rows of ``X`` whose predicted class is ``y`` (at least one example)."""
        return self._evaluate(X, y, batch_size, "accuracy")[1]

    def _evaluate(self, X, y, batch_size, where: str) -> tuple[float, float]:
        X = self._check_X(X, where)
        y = self._check_y(X, y, where)
        batch_size = _positive_int(f"{where}: batch_size", batch_size)
        total, correct = 0.0, 0
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            self.x.value, self.y.value = xb, yb
            total += float(graph.forward(self.loss)) * len(xb)
            correct += int((self.logits.value.argmax(axis=1) == yb).sum())
        return total / len(X), correct / len(X)

    # --- weights in and out
    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of (W, b) for every layer, input layer first."""
        return [(layer.W.value.copy(), layer.b.value.copy()) for layer in self.layers]

    def set_weights(self, weights) -> None:
        """Copy (W, b) pairs into the layers, in place (optimizers keep their references).

        Every pair is checked (shape, real finite numbers) before anything is copied: a bad
        pair raises and leaves all layers as they were.
        """
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(f"set_weights: got {len(weights)} (W, b) pairs for {len(self.layers)} layers")
        checked = []
        for i, (layer, pair) in enumerate(zip(self.layers, weights)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"set_weights: weights[{i}] must be a (W, b) pair for layer {layer.name!r}, "
                                 f"got {type(pair).__name__}")
            W, b = np.asarray(pair[0]), np.asarray(pair[1])
            if W.shape != layer.W.value.shape or b.shape != layer.b.value.shape:
                raise ValueError(f"set_weights: layer {layer.name!r}: expected W {layer.W.value.shape} and "
                                 f"b {layer.b.value.shape}, got {W.shape} and {b.shape}")
            for label, arr in (("W", W), ("b", b)):
                if arr.dtype.kind not in "biuf":
                    raise TypeError(f"set_weights: layer {layer.name!r}: {label} must hold real numbers, "
                                    f"got dtype {arr.dtype}")
                if not np.isfinite(arr).all():
                    raise ValueError(f"set_weights: layer {layer.name!r}: {label} contains NaN or infinity")
            checked.append((layer, W, b))
        for layer, W, b in checked:
            layer.W.value[...] = W
            layer.b.value[...] = b


def flops_per_example(sizes: Sequence[int], train: bool = True) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of the matrix products for one example.

    ``sizes`` are the layer widths, input first (at least two positive integers).
    Forward: 2 * sum(n_in * n_out). A training step adds the weight gradients (the same again)
    and the gradients with respect to each hidden layer's input (the same, less the first layer,
    whose input needs no gradient). Element-wise work (activations, softmax, optimizer) is not counted.
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)) or len(sizes) < 2:
        raise ValueError(f"flops_per_example: sizes must list at least two layer widths (input first), got {sizes!r}")
    sizes = [_positive_int(f"flops_per_example: sizes[{i}]", n) for i, n in enumerate(sizes)]
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
    are not blown up). Fit on the training split only. ``dtype`` (float32 or float64) is the
    dtype :meth:`transform` returns. Empty image sets (zero images) are refused."""

    mean: np.ndarray | None = None
    std: float | None = None
    dtype: type = np.float32

    @staticmethod
    def _flat(X, where: str) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim < 2:
            raise ValueError(f"Standardizer.{where}: expected images (N, H, W) or rows (N, D), got shape {X.shape}")
        if X.shape[0] == 0 or X.size == 0:
            raise ValueError(f"Standardizer.{where}: the images are empty, shape {X.shape}; pass at least one image")
        if X.dtype.kind not in "biuf":
            raise TypeError(f"Standardizer.{where}: expected numeric pixels (uint8), got dtype {X.dtype}")
        return X.reshape(len(X), -1)

    def _out_dtype(self) -> np.dtype:
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as exc:
            raise TypeError(f"Standardizer: dtype must be np.float32 or np.float64, got {self.dtype!r}") from exc
        if dtype.kind != "f":
            raise ValueError(f"Standardizer: dtype must be a float type (np.float32 or np.float64), got {dtype}")
        return dtype

    def fit(self, X) -> "Standardizer":
        """Learn the per-pixel mean and the overall standard deviation of ``X`` (pixels 0..255)."""
        flat = self._flat(X, "fit").astype(np.float64) / 255.0
        if not np.isfinite(flat).all():
            raise ValueError("Standardizer.fit: the images contain NaN or infinity")
        std = float(flat.std())
        if not std > 0:
            raise ValueError("Standardizer.fit: the images are constant (standard deviation 0); "
                             "fit on images that vary")
        self.mean, self.std = flat.mean(axis=0), std
        return self

    def transform(self, X) -> np.ndarray:
        """``(X / 255 - mean) / std`` as rows ``(N, H * W)`` of ``dtype``."""
        if self.mean is None:
            raise RuntimeError("Standardizer: call fit() on the training images first")
        dtype = self._out_dtype()
        flat = self._flat(X, "transform")
        if flat.shape[1] != self.mean.shape[0]:
            raise ValueError(f"Standardizer was fit on {self.mean.shape[0]} features, got {flat.shape[1]}")
        out = flat.astype(dtype)
        out *= dtype.type(1.0 / (255.0 * self.std))
        out -= (self.mean / self.std).astype(dtype)
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
    """Index arrays of one shuffled pass over ``range(n)`` (the last batch may be smaller).

    ``n`` and ``batch_size`` are positive integers and ``rng`` a ``numpy.random.Generator``;
    bad arguments raise here, at the call, not at the first ``next()``.
    """
    n = _positive_int("iterate_minibatches: n (the number of examples)", n)
    batch_size = _positive_int("iterate_minibatches: batch_size", batch_size)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"iterate_minibatches: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return _minibatches(rng.permutation(n), batch_size)


def _minibatches(perm: np.ndarray, batch_size: int):
    for start in range(0, len(perm), batch_size):
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
    ``optimizer`` is a name of :data:`OPTIMIZERS` (built with ``lr`` and ``optimizer_kwargs``)
    or an :class:`course_utils.optim.Optimizer` over ``[p.value for p in net.params]`` (in that
    order; its own ``lr`` is used, and ``optimizer_kwargs`` must then be None).
    ``X_val`` and ``y_val`` come together. ``seed`` (a non-negative integer) fixes the minibatch order.
    ``callback(epoch, row)`` is called after every epoch (an optuna pruner raises from it).
    Every argument is checked before the first step. Training stops early, with a warning
    row, when the loss becomes NaN or infinite; the history then has a column ``diverged``
    set to True.
    """
    X_train = net._check_X(X_train, "train (X_train)")
    y_train = net._check_y(X_train, y_train, "train (y_train)")
    batch_size = _positive_int("batch_size", batch_size)
    num_epochs = _positive_int("num_epochs", num_epochs)
    seed = _seed("train: seed", seed)
    schedule = _choice("schedule", schedule, SCHEDULES)
    if (X_val is None) != (y_val is None):
        raise ValueError("train: pass X_val and y_val together (one of them is None)")
    has_val = X_val is not None
    if has_val:
        X_val = net._check_X(X_val, "train (X_val)")
        y_val = net._check_y(X_val, y_val, "train (y_val)")
    if callback is not None and not callable(callback):
        raise TypeError(f"train: callback must be callable as callback(epoch, row), got {type(callback).__name__}")
    if isinstance(optimizer, optim.Optimizer):
        if optimizer_kwargs:
            raise ValueError("train: optimizer_kwargs apply only when optimizer is a name; "
                             "set the hyperparameters on the optimizer object instead")
        values = [p.value for p in net.params]
        if len(optimizer.params) != len(values) or any(a is not b for a, b in zip(optimizer.params, values)):
            raise ValueError("train: the optimizer must update this network's parameter arrays, "
                             "[p.value for p in net.params] in that order; build it from them")
        opt = optimizer
        lr = opt.lr
    else:
        opt = make_optimizer(optimizer, [p.value for p in net.params], lr, **(optimizer_kwargs or {}))
    import pandas as pd
    from tqdm.auto import tqdm

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
            for idx in _minibatches(rng.permutation(n), batch_size):
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
