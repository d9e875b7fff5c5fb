"""A feedforward classifier built from scratch on the chapter-1 engine, trained with the chapter-3 optimizers.

Introduced in chapter 5.1 (backpropagation on Fashion-MNIST) and used by chapter 5.2 (the
hyperparameter sweep); ``train.py`` at the repository root is its command-line front end.

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

Several seeds at once
---------------------
:class:`BatchedNet` holds the networks of several seeds of one configuration as stacked arrays
(a leading seed axis) and :func:`train_seeds` trains them together, one batched matrix product
per layer and step, each seed with its own initial weights, minibatch order and (optionally)
training set. Seed k ends exactly where ``train(FeedForwardNet(..., seed=k), ..., seed=k)`` ends
(``tests/test_network_batched.py``); a seed that diverges or is stopped by the callback stops
alone. It is the same graph, built with the engine's leading seed axis (:mod:`course_utils.graph`).

Example::

    net = FeedForwardNet(784, [128, 128], 10, activation="relu", init="xavier", seed=0)
    history = train(net, X_train, y_train, X_val=X_val, y_val=y_val,
                    optimizer="adam", lr=1e-3, batch_size=64, num_epochs=5)
    acc = net.accuracy(X_test, y_test)

    nets = BatchedNet(784, [128, 128], 10, seeds=[0, 1, 2])
    history = train_seeds(nets, X_train, y_train, optimizer="adam", lr=1e-3)
    accs = nets.accuracy(X_test, y_test)        # one per seed

Why one module: the single network, its training loop and its batched twin share their rules
(the layers' and losses' arithmetic, the loop, the argument checks), and the batched version is
tested against the single one; side by side, a change to one is seen next to the other.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import graph, optim, validation

__all__ = [
    "ACTIVATIONS", "LOSSES", "INITS", "OPTIMIZERS",
    "FeedForwardNet", "Standardizer", "make_optimizer", "train", "iterate_minibatches", "flops_per_example",
    "cosine_lr", "BatchedNet", "train_seeds",
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
        self._configure(in_features, hidden_sizes, num_classes, activation, init, loss, weight_decay, dtype)
        if rng is None:
            rng = np.random.default_rng(validation.seed("seed", seed, allow_none=True))
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
        self._build(rng)

    def _configure(self, in_features, hidden_sizes, num_classes, activation, init, loss, weight_decay, dtype) -> None:
        """Check the architecture and settings and store them (nothing is built yet)."""
        if validation.is_int(hidden_sizes):
            hidden_sizes = [hidden_sizes]
        if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, (Sequence, np.ndarray)):
            raise TypeError(f"hidden_sizes must be a list of positive integers (or one integer), got {hidden_sizes!r}")
        sizes = [in_features, *hidden_sizes, num_classes]
        for label, n in zip(["in_features", *[f"hidden_sizes[{i}]" for i in range(len(hidden_sizes))], "num_classes"], sizes):
            validation.positive_int(label, n)
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.activation = _choice("activation", activation, ACTIVATIONS)
        self.init = _choice("init", init, INITS)
        self.loss_name = _choice("loss", loss, LOSSES)
        self.weight_decay = validation.nonnegative_real("weight_decay", weight_decay)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from exc
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.sizes = [int(n) for n in sizes]
        self.hidden_sizes = self.sizes[1:-1]

    def _build(self, rng) -> None:
        """The graph: every layer's weights drawn from ``rng`` (a list of generators: one per seed)."""
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
        return float(self._loss_and_grads(X, y))

    def _loss_and_grads(self, X, y):
        self.x.value = X
        self.y.value = y
        loss = graph.forward(self.loss)
        graph.backward(self.loss)
        if self.weight_decay != 0.0:
            for W, buf in zip(self._weights, self._scratch):
                np.multiply(W.value, self.weight_decay, out=buf)
                W.grad += buf
        return loss

    def objective(self, X, y) -> float:
        """Data loss + L2 penalty on a batch (what :meth:`loss_and_grads` differentiates)."""
        X = self._check_X(X, "objective")
        y = self._check_y(X, y, "objective")
        self.x.value, self.y.value = X, y
        return float(graph.forward(self.loss)) + self.penalty()

    # --- inference
    def _logits(self, X, batch_size, where: str) -> np.ndarray:
        X = self._check_X(X, where)
        batch_size = validation.positive_int(f"{where}: batch_size", batch_size)
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
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def predict(self, X, batch_size: int = 4096) -> np.ndarray:
        """Predicted class ids, shape ``(len(X),)``."""
        return self._logits(X, batch_size, "predict").argmax(axis=-1)

    def evaluate(self, X, y, batch_size: int = 4096) -> tuple[float, float]:
        """(mean data loss, accuracy) over ``X, y`` (at least one example), ``batch_size`` rows at a time."""
        return self._evaluate(X, y, batch_size, "evaluate")

    def accuracy(self, X, y, batch_size: int = 4096) -> float:
        """The fraction of rows of ``X`` whose predicted class is ``y`` (at least one example)."""
        return self._evaluate(X, y, batch_size, "accuracy")[1]

    def _evaluate(self, X, y, batch_size, where: str) -> tuple[float, float]:
        X = self._check_X(X, where)
        y = self._check_y(X, y, where)
        batch_size = validation.positive_int(f"{where}: batch_size", batch_size)
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
        for layer, W, b in self._checked_weights(weights, [(layer.W.value.shape, layer.b.value.shape)
                                                           for layer in self.layers]):
            layer.W.value[...] = W
            layer.b.value[...] = b

    def _checked_weights(self, weights, shapes, where: str = "set_weights") -> list:
        """(layer, W, b) for every (W, b) pair, each checked against ``shapes`` (shape, real finite numbers)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(f"{where}: got {len(weights)} (W, b) pairs for {len(self.layers)} layers")
        checked = []
        for i, (layer, pair, (W_shape, b_shape)) in enumerate(zip(self.layers, weights, shapes)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"{where}: weights[{i}] must be a (W, b) pair for layer {layer.name!r}, "
                                 f"got {type(pair).__name__}")
            W, b = np.asarray(pair[0]), np.asarray(pair[1])
            if W.shape != W_shape or b.shape != b_shape:
                raise ValueError(f"{where}: layer {layer.name!r}: expected W {W_shape} and "
                                 f"b {b_shape}, got {W.shape} and {b.shape}")
            for label, arr in (("W", W), ("b", b)):
                if arr.dtype.kind not in "biuf":
                    raise TypeError(f"{where}: layer {layer.name!r}: {label} must hold real numbers, "
                                    f"got dtype {arr.dtype}")
                if not np.isfinite(arr).all():
                    raise ValueError(f"{where}: layer {layer.name!r}: {label} contains NaN or infinity")
            checked.append((layer, W, b))
        return checked


def flops_per_example(sizes: Sequence[int], train: bool = True) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of the matrix products for one example.

    ``sizes`` are the layer widths, input first (at least two positive integers).
    Forward: 2 * sum(n_in * n_out). A training step adds the weight gradients (the same again)
    and the gradients with respect to each hidden layer's input (the same, less the first layer,
    whose input needs no gradient). Element-wise work (activations, softmax, optimizer) is not counted.
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)) or len(sizes) < 2:
        raise ValueError(f"flops_per_example: sizes must list at least two layer widths (input first), got {sizes!r}")
    sizes = [validation.positive_int(f"flops_per_example: sizes[{i}]", n) for i, n in enumerate(sizes)]
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
    n = validation.positive_int("iterate_minibatches: n (the number of examples)", n)
    batch_size = validation.positive_int("iterate_minibatches: batch_size", batch_size)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"iterate_minibatches: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return _minibatches(rng.permutation(n), batch_size)


def _minibatches(perm: np.ndarray, batch_size: int):
    for start in range(0, len(perm), batch_size):
        yield perm[start:start + batch_size]


def cosine_lr(lr: float, step: int, total_steps: int) -> float:
    """The cosine schedule without restarts: ``lr * (1 + cos(pi * step / total_steps)) / 2``,
    from ``lr`` at step 0 down to 0 at ``total_steps``."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


@dataclass
class _Run:
    """The checked data and loop settings of a training run (what :func:`train` and
    :func:`train_seeds` share)."""

    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    batch_size: int
    num_epochs: int
    schedule: str
    callback: Callable | None


def _check_run(net: FeedForwardNet, X_train, y_train, X_val, y_val, batch_size, num_epochs, schedule,
               callback, where: str) -> _Run:
    """Every argument of a training run checked (and converted) before the first step."""
    X_train = net._check_X(X_train, f"{where} (X_train)")
    y_train = net._check_y(X_train, y_train, f"{where} (y_train)")
    if (X_val is None) != (y_val is None):
        raise ValueError(f"{where}: pass X_val and y_val together (one of them is None)")
    if X_val is not None:
        X_val = net._check_X(X_val, f"{where} (X_val)")
        y_val = net._check_y(X_val, y_val, f"{where} (y_val)")
    if callback is not None and not callable(callback):
        raise TypeError(f"{where}: callback must be callable as callback(epoch, row), got {type(callback).__name__}")
    return _Run(X_train, y_train, X_val, y_val, validation.positive_int("batch_size", batch_size),
                validation.positive_int("num_epochs", num_epochs), _choice("schedule", schedule, SCHEDULES), callback)


def _checked_optimizer(net: FeedForwardNet, optimizer, lr, optimizer_kwargs) -> tuple[optim.Optimizer, float]:
    """The optimizer over ``net``'s parameter arrays (built from a name, or checked) and its peak rate."""
    values = [p.value for p in net.params]
    if not isinstance(optimizer, optim.Optimizer):
        return make_optimizer(optimizer, values, lr, **(optimizer_kwargs or {})), lr
    if optimizer_kwargs:
        raise ValueError("train: optimizer_kwargs apply only when optimizer is a name; "
                         "set the hyperparameters on the optimizer object instead")
    if len(optimizer.params) != len(values) or any(a is not b for a, b in zip(optimizer.params, values)):
        raise ValueError("train: the optimizer must update this network's parameter arrays, "
                         "[p.value for p in net.params] in that order; build it from them")
    return optimizer, optimizer.lr


def _progress_bar(total: int, progress: bool, desc: str | None):
    """A one-line tqdm.auto bar over the epochs that stays, complete, when training ends."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc or "training", disable=not progress, leave=True)


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
    callback: Callable[[int, dict], bool | None] | None = None,
    progress: bool = False,
    desc: str | None = None,
):
    """Minibatch training of ``net``; returns a pandas DataFrame with one row per epoch.

    Columns: ``epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds, diverged``. The
    training metrics are averaged over the examples of the epoch while the weights change (as in
    ``course_utils.training.fit``), the validation metrics are measured after the epoch (NaN
    without validation data); ``lr`` is the learning rate of the epoch's last step and
    ``seconds`` the epoch's wall time (it varies from run to run: never print it as a result).

    ``schedule``: ``"constant"``, or ``"cosine"`` (:func:`cosine_lr` over the T steps of the run,
    reaching 0 at the end). ``optimizer`` is a name of :data:`OPTIMIZERS` (built with ``lr`` and
    ``optimizer_kwargs``) or an :class:`course_utils.optim.Optimizer` over
    ``[p.value for p in net.params]`` (in that order; its own ``lr`` is used, and
    ``optimizer_kwargs`` must then be None). ``X_val`` and ``y_val`` come together. ``seed`` (a
    non-negative integer) fixes the minibatch order. ``callback(epoch, row)`` is called after every
    epoch: returning True stops training there (early stopping), and an exception it raises (an
    optuna pruner's) ends the call. Every argument is checked before the first step. Training
    stops early, with a row of NaN, when the loss becomes NaN or infinite; the history's column
    ``diverged`` is then True.
    """
    run = _check_run(net, X_train, y_train, X_val, y_val, batch_size, num_epochs, schedule, callback, "train")
    seed = validation.seed("train: seed", seed)
    opt, lr = _checked_optimizer(net, optimizer, lr, optimizer_kwargs)
    import pandas as pd

    grads = [p.grad for p in net.params]
    rng = np.random.default_rng(seed)
    n = len(run.X)
    total_steps = math.ceil(n / run.batch_size) * run.num_epochs
    step, rows, diverged = 0, [], False
    with _progress_bar(run.num_epochs, progress, desc) as bar:
        for epoch in range(1, run.num_epochs + 1):
            t0 = time.perf_counter()
            total_loss, correct = 0.0, 0
            for idx in _minibatches(rng.permutation(n), run.batch_size):
                if run.schedule == "cosine":
                    opt.lr = cosine_lr(lr, step, total_steps)
                xb, yb = run.X[idx], run.y[idx]
                loss = net.loss_and_grads(xb, yb)  # forward and backward
                if not math.isfinite(loss):
                    diverged = True
                    break
                opt.step(grads)  # every parameter array, in place
                step += 1
                total_loss += loss * len(idx)
                correct += int((net.logits.value.argmax(axis=1) == yb).sum())
            row = _epoch_row(epoch, total_loss / n, correct / n, opt.lr, diverged)
            if run.X_val is not None and not diverged:
                with np.errstate(over="ignore", invalid="ignore"):
                    row["val_loss"], row["val_acc"] = net.evaluate(run.X_val, run.y_val)
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
            if diverged or (run.callback is not None and run.callback(epoch, row) is True):
                break
    history = pd.DataFrame(rows)
    history["diverged"] = diverged
    return history


def _epoch_row(epoch: int, train_loss: float, train_acc: float, lr: float, diverged: bool) -> dict:
    nan = float("nan")
    return {"epoch": epoch, "train_loss": nan if diverged else float(train_loss),
            "train_acc": nan if diverged else float(train_acc), "val_loss": nan, "val_acc": nan, "lr": float(lr)}


# --------------------------------------------------------------------------- several seeds at once
class BatchedNet(FeedForwardNet):
    """The networks of several seeds, one architecture, built as one graph with a leading seed axis.

    ``BatchedNet(784, [128, 128], 10, seeds=[0, 1, 2], ...)`` holds S = ``len(seeds)`` networks;
    network k starts from exactly the weights of ``FeedForwardNet(..., seed=seeds[k])`` (same
    arguments otherwise). It is the same graph of :mod:`course_utils.graph` nodes, built with one
    generator per seed, so every parameter has a leading seed axis (``layer.W.value`` of shape
    ``(S, out, in)``), a training batch holds one minibatch per seed (``X`` of shape
    ``(S, B, in)``, ``y`` of shape ``(S, B)``), each layer computes one batched matrix product
    (each seed's own: no seed's numbers touch another's), and :meth:`loss_and_grads` returns the S
    losses. Inference takes one ``X`` of shape ``(N, in)`` for every seed and answers with a leading
    seed axis: ``logits_of`` (S, N, K), ``predict`` (S, N), ``evaluate`` and ``accuracy`` arrays (S,).

    All parameters live in one flat array ``flat`` (the parameters' values are views into it) and
    their gradients in ``flat_grad``: one optimizer of :mod:`course_utils.optim` over ``[flat]``
    updates every array of every seed in one call. Those optimizers act element by element, so
    this is the update that separate optimizers over separate networks make. Train it with
    :func:`train_seeds`; :meth:`network` gives seed k's network as a :class:`FeedForwardNet`.
    """

    def __init__(self, in_features: int = 784, hidden_sizes: Sequence[int] = (128, 128), num_classes: int = 10,
                 *, seeds: Sequence[int], activation: str = "relu", init: str = "xavier",
                 loss: str = "cross_entropy", weight_decay: float = 0.0, dtype=np.float32):
        if validation.is_int(seeds) or isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, np.ndarray)):
            raise TypeError(f"BatchedNet: seeds must be a list of non-negative integers, got {seeds!r}")
        if len(seeds) == 0:
            raise ValueError("BatchedNet: seeds is empty; pass at least one seed")
        self.seeds = [validation.seed(f"BatchedNet: seeds[{k}]", s) for k, s in enumerate(seeds)]
        self._configure(in_features, hidden_sizes, num_classes, activation, init, loss, weight_decay, dtype)
        self._build([np.random.default_rng(s) for s in self.seeds])
        size = sum(p.value.size for p in self.params)
        self.flat, self.flat_grad = np.empty(size, dtype=self.dtype), np.zeros(size, dtype=self.dtype)
        offset = 0
        for p in self.params:  # the graph only ever changes them in place
            n = p.value.size
            view = self.flat[offset:offset + n].reshape(p.value.shape)
            view[...] = p.value
            p.value, p.grad = view, self.flat_grad[offset:offset + n].reshape(p.value.shape)
            offset += n

    def __len__(self) -> int:
        return len(self.seeds)

    def __repr__(self) -> str:
        return super().__repr__().replace("FeedForwardNet(", "BatchedNet(", 1).replace(
            ", activation", f", seeds={self.seeds}, activation", 1)

    def loss_and_grads(self, X, y) -> np.ndarray:
        """Every seed's forward and backward pass on its own batch (``X`` (S, B, in), ``y`` (S, B)):
        fills every ``param.grad`` and returns the S data losses, shape (S,)."""
        return np.array(self._loss_and_grads(X, y))

    def objective(self, X, y) -> np.ndarray:
        """Each seed's data loss + L2 penalty on a batch, shape (S,)."""
        self.x.value, self.y.value = X, y
        losses = np.array(graph.forward(self.loss), dtype=np.float64)
        for W in self._weights:
            losses += 0.5 * self.weight_decay * (W.value.astype(np.float64) ** 2).sum(axis=(1, 2))
        return losses

    # --- one seed's weights
    def weights_of(self, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of seed k's (W, b) for every layer, input layer first (as ``get_weights``)."""
        return [(layer.W.value[k].copy(), layer.b.value[k].copy()) for layer in self.layers]

    def set_weights_of(self, k: int, weights) -> None:
        """Copy seed k's (W, b) pairs in place, every pair checked first (as ``set_weights``)."""
        shapes = [(layer.W.value.shape[1:], layer.b.value.shape[1:]) for layer in self.layers]
        for layer, W, b in self._checked_weights(weights, shapes, "set_weights_of"):
            layer.W.value[k], layer.b.value[k] = W, b

    def network(self, k: int) -> FeedForwardNet:
        """Seed k's network as a :class:`FeedForwardNet` (a copy of its current weights)."""
        net = FeedForwardNet(self.sizes[0], self.hidden_sizes, self.sizes[-1], activation=self.activation,
                             init=self.init, loss=self.loss_name, weight_decay=self.weight_decay, dtype=self.dtype,
                             seed=self.seeds[k])
        net.set_weights(self.weights_of(k))
        return net

    # --- inference, every seed on the same rows
    def _logits(self, X, batch_size, where: str) -> np.ndarray:
        X = self._check_X(X, where)
        batch_size = validation.positive_int(f"{where}: batch_size", batch_size)
        out = np.empty((len(self), len(X), self.sizes[-1]), dtype=self.dtype)
        for start in range(0, len(X), batch_size):
            self.x.value = X[start:start + batch_size]
            out[:, start:start + batch_size] = graph.forward(self.logits)
        return out

    def _evaluate(self, X, y, batch_size, where: str) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_X(X, where)
        y = self._check_y(X, y, where)
        batch_size = validation.positive_int(f"{where}: batch_size", batch_size)
        total, correct = np.zeros(len(self)), np.zeros(len(self), dtype=np.int64)
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            self.x.value, self.y.value = xb, yb
            total += np.asarray(graph.forward(self.loss), dtype=np.float64) * len(xb)
            correct += (self.logits.value.argmax(axis=-1) == yb).sum(axis=-1)
        return total / len(X), correct / len(X)


def _check_seed_data(net: BatchedNet, X, y, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Training rows shared by every seed, ``X`` (N, in) (returned with None: ``y`` is checked by
    the caller), or one set per seed, ``X`` (S, N, in) and ``y`` (S, N), each checked and converted
    to the network's dtype."""
    X = np.asarray(X)
    if X.ndim != 3:
        return net._check_X(X, f"{where} (X_train)"), None
    if len(X) != len(net):
        raise ValueError(f"{where}: X_train of shape {X.shape} holds {len(X)} data sets for {len(net)} seeds; "
                         f"pass one per seed, shape ({len(net)}, N, {net.sizes[0]}), or one (N, {net.sizes[0]}) for all")
    y = np.asarray(y)
    if y.shape != X.shape[:2]:
        raise ValueError(f"{where}: y_train must have shape {X.shape[:2]} to match X_train of shape {X.shape}, got {y.shape}")
    X = np.stack([net._check_X(Xk, f"{where} (X_train[{k}])") for k, Xk in enumerate(X)])
    for k in range(len(X)):
        net._check_y(X[k], y[k], f"{where} (y_train[{k}])")
    return X, y


def train_seeds(
    net: BatchedNet,
    X_train,
    y_train,
    *,
    optimizer: str = "adam",
    lr: float = 1e-3,
    batch_size: int = 64,
    num_epochs: int = 5,
    X_val=None,
    y_val=None,
    schedule: str = "constant",
    optimizer_kwargs: dict | None = None,
    callback: Callable[[int, dict], bool | None] | None = None,
    progress: bool = False,
    desc: str | None = None,
):
    """:func:`train` for every seed of a :class:`BatchedNet` at once; one history row per seed and epoch.

    Seed k trains as ``train(FeedForwardNet(..., seed=seeds[k]), ..., seed=seeds[k])`` would: its
    own initial weights, its own minibatch order (``numpy.random.default_rng(seeds[k])``) and, when
    ``X_train`` has shape (S, N, in) and ``y_train`` (S, N), its own training set; with ``X_train``
    of shape (N, in) every seed sees the same examples. The arguments mean what they mean for
    :func:`train` (``optimizer`` is a name). The history has :func:`train`'s columns and ``seed``.

    A seed stops on its own, and the others go on unaffected: when its loss becomes NaN or
    infinite (its last row is NaN, ``diverged`` True), or when ``callback(epoch, row)`` returns
    True for its row (``row["seed"]`` says whose). A stopped seed's weights are those it had when
    it stopped. Its arrays keep being computed with the rest (a seed's numbers never enter another
    seed's), and are restored when training ends.
    """
    where = "train_seeds"
    if not isinstance(net, BatchedNet):
        raise TypeError(f"{where}: net must be a BatchedNet, got {type(net).__name__}")
    X_train, y_per_seed = _check_seed_data(net, X_train, y_train, where)
    first = (X_train[0], y_per_seed[0]) if y_per_seed is not None else (X_train, y_train)
    run = _check_run(net, *first, X_val, y_val, batch_size, num_epochs, schedule, callback, where)
    if not isinstance(optimizer, str):
        raise TypeError(f"{where}: optimizer must be a name of network.OPTIMIZERS, got {type(optimizer).__name__}")
    opt = make_optimizer(optimizer, [net.flat], lr, **(optimizer_kwargs or {}))
    import pandas as pd

    S, n = len(net), run.X.shape[0]
    seeds = np.arange(S)[:, None]
    X_all, y_all = (X_train, y_per_seed) if y_per_seed is not None else (run.X, run.y)

    def batch(idx):  # each seed's rows of its own data
        return (X_all[seeds, idx], y_all[seeds, idx]) if y_per_seed is not None else (X_all[idx], y_all[idx])

    rngs = [np.random.default_rng(s) for s in net.seeds]
    total_steps = math.ceil(n / run.batch_size) * run.num_epochs
    active = np.ones(S, dtype=bool)  # the seeds still training
    diverged, kept, rows, owner, step = np.zeros(S, dtype=bool), {}, [], [], 0
    with _progress_bar(run.num_epochs, progress, desc) as bar, np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, run.num_epochs + 1):
            t0 = time.perf_counter()
            training = np.flatnonzero(active)
            total_loss, correct, lr_last = np.zeros(S), np.zeros(S, dtype=np.int64), np.zeros(S)
            order = np.stack([rng.permutation(n) for rng in rngs])
            for start in range(0, n, run.batch_size):
                if run.schedule == "cosine":
                    opt.lr = cosine_lr(lr, step, total_steps)
                idx = order[:, start:start + run.batch_size]
                xb, yb = batch(idx)
                losses = net.loss_and_grads(xb, yb)  # every seed's forward and backward
                lr_last[active] = opt.lr
                for k in np.flatnonzero(active & ~np.isfinite(losses)):
                    diverged[k], active[k], kept[k] = True, False, net.weights_of(k)
                if not active.any():
                    break
                opt.step([net.flat_grad])  # every seed's parameters, in place
                step += 1
                total_loss += losses.astype(np.float64) * idx.shape[1]
                correct += (net.logits.value.argmax(axis=2) == yb).sum(axis=1)
            val = net.evaluate(run.X_val, run.y_val) if run.X_val is not None and active.any() else None
            seconds = time.perf_counter() - t0
            for k in training:
                row = {"seed": net.seeds[k],
                       **_epoch_row(epoch, total_loss[k] / n, correct[k] / n, lr_last[k], bool(diverged[k]))}
                if val is not None and not diverged[k]:
                    row["val_loss"], row["val_acc"] = float(val[0][k]), float(val[1][k])
                row["seconds"] = seconds
                rows.append(row)
                owner.append(k)
                if active[k] and run.callback is not None and run.callback(epoch, row) is True:
                    active[k], kept[k] = False, net.weights_of(k)
            bar.update(1)
            if not active.any():
                break
    for k, weights in kept.items():
        net.set_weights_of(k, weights)
    history = pd.DataFrame(rows)
    history["diverged"] = diverged[owner]
    return history
