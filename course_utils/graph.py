"""A small reverse-mode automatic-differentiation engine on NumPy.

Introduced in chapter 1.1 (the engine, logistic regression); chapter 1.2 trains its batch-size
study with it, several seeds at once, and chapter 5 builds its feedforward classifier on it.

Data layout
-----------
Samples are ROWS. Every value that flows through a graph is an array of shape
``(batch, features)``; integer class labels have shape ``(batch,)``. This is
PyTorch's layout (``nn.Linear`` computes ``x @ W.T + b``) and the natural one for
NumPy's row-major arrays: one sample is one contiguous row, and ``X[idx]``
gathers a minibatch. Texts that keep samples as columns, shape
``(features, batch)``, write the same formulas transposed: their
``dL/dx = W^T dL/dy`` is our ``dL/dX = dL/dY @ W``. A layer's weight matrix is
``W`` and its bias ``b`` throughout the book.

Several seeds at once
---------------------
Every node also accepts a leading SEED axis: values of shape ``(S, batch, features)`` hold S
independent models (S seeds of one configuration) that train together, one batched matrix
product per layer and step. A :class:`Linear` layer made with a list of S generators,
``Linear(x, 2, 1, rng=[rng_0, ..., rng_{S-1}])``, has ``W`` of shape ``(S, out, in)`` and ``b`` of
shape ``(S, out)``, and seed k's slice is exactly what ``rng=rng_k`` would draw. Its input is
``(S, batch, in)`` (each seed its own minibatch), or ``(batch, in)`` from an :class:`Input`
without ``requires_grad`` (one batch shared by every seed, e.g. a test set). A loss then has one
value per seed, shape ``(S,)``, and :func:`backward` on it gives each seed's parameters the
gradient of its own loss. Seeds never mix: S seeds together compute what S separate graphs
compute (``tests/test_graph.py`` checks it, also when one seed diverges).

How it works
------------
A :class:`Node` has ``inputs`` (other nodes), a ``value`` computed by
:meth:`Node.forward`, a ``grad`` (the gradient of the final scalar loss with
respect to ``value``, same shape) and trainable :class:`Parameter` s in
``params``. Each node's ``backward`` sits right beside its ``forward``, as in
micrograd: it reads ``self.grad`` and ADDS its contribution to each input's
``grad`` and to each own parameter's ``grad``, so a node used twice receives the
sum of both contributions. The function :func:`backward` zeroes every gradient,
seeds ``loss.grad = 1.0`` and calls the nodes' ``backward`` in reverse
topological order. ``forward`` and ``backward`` hold the mathematics; the checks of
what a node receives (shapes, dtypes, label ranges) sit in helpers they call first.

Gradients are computed only where they are needed: an :class:`Input` has
``grad = None`` unless it was made with ``requires_grad=True`` (as in PyTorch),
and so does every node that depends on no parameter and no such input.

Parameter arrays are allocated once and only ever changed in place, and so are
their gradient buffers: an optimizer may keep references to both.

Edge cases (the rules every node follows)
-----------------------------------------
* dtypes: a :class:`Linear` layer converts its input to its own float dtype. A
  gradient has its value's dtype when that is a float type, and float64 when the
  value holds integers or booleans (an integer :class:`Input` with
  ``requires_grad=True`` gets a float64 ``grad``).
* An empty batch (zero rows) is an error, not a NaN: :class:`Linear` and every
  loss node raise a ``ValueError`` naming the node and the shape it received.
* Loss targets computed by the graph: where the loss is differentiable in its
  target, the gradient reaches the target (:class:`MSE`, :class:`BinaryCrossEntropy`);
  integer class labels are not differentiable, so :class:`SoftmaxCrossEntropy` and
  :class:`SoftmaxMSE` raise a ``ValueError`` in :func:`backward` when their labels
  need a gradient (they depend on a parameter or an ``Input`` with ``requires_grad``).

Example::

    rng = np.random.default_rng(0)
    x, y = Input("x"), Input("y")
    p = Sigmoid(Linear(x, 2, 1, rng=rng, name="fc"))
    loss = BinaryCrossEntropy(p, y)
    params = parameters(loss)
    x.value, y.value = X_batch, y_batch     # shapes (batch, 2) and (batch,)
    forward(loss)
    backward(loss)
    for prm in params:
        prm.value -= lr * prm.grad          # in place

Why one module (about 700 lines, half of them docstrings and the checks' messages): the nodes, the
topological sort and the forward and backward sweeps are one small engine whose parts only make sense
together (every node follows the same gradient and shape contract, and the sweeps rely on it); chapter
1.1 reads them in one place, as in micrograd. The argument checks sit beside the node they guard, in
helpers the mathematics calls first, so that each node's forward and backward read as the formulas.
"""
from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence

import numpy as np

from . import validation

__all__ = [
    "Parameter", "Node", "Input", "Linear",
    "Identity", "Sigmoid", "Tanh", "ReLU",
    "Loss", "BinaryCrossEntropy", "SoftmaxCrossEntropy", "SoftmaxMSE", "MSE",
    "topological_sort", "forward", "backward", "parameters", "INITS",
]

INITS = ("random", "xavier", "he")


class Parameter:
    """A trainable array and the gradient of the loss with respect to it (same shape and dtype).

    ``value`` must be a writable numpy float array: it is updated in place.
    """

    def __init__(self, value: np.ndarray, name: str = "param"):
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            kind = f"array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(f"Parameter {name!r}: value must be a numpy float array (float32 or float64), "
                            f"got {kind}; convert it with np.asarray(value, dtype=np.float64)")
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"


class Node:
    """Base class: ``forward()`` sets ``self.value`` from the inputs' values; ``backward()``
    adds ``dL/d(input)`` into each input's ``grad`` (and ``dL/dparam`` into each own
    parameter's ``grad``) given ``self.grad = dL/d(self.value)``.

    A graph is fixed once built: :func:`forward` and :func:`backward` cache the
    topological order on the root node the first time they see it.
    """

    def __init__(self, *inputs, name: str | None = None):
        self.inputs: list[Node] = [_as_node(i) for i in inputs]
        self.params: list[Parameter] = []
        self.value = None
        self.grad = None
        self.name = name if name is not None else type(self).__name__.lower()

    def forward(self) -> None:
        raise NotImplementedError

    def backward(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        shape = None if self.value is None else np.shape(self.value)
        return f"{type(self).__name__}({self.name!r}, value shape={shape})"

    def _error(self, message: str, kind: type[Exception] = ValueError) -> Exception:
        """An exception (ValueError unless ``kind`` says otherwise) whose message names this node."""
        return kind(f"{type(self).__name__} node {self.name!r}: {message}")


class Input(Node):
    """A leaf whose ``value`` you set before :func:`forward` (a batch of inputs or labels).

    With ``requires_grad=True`` it also receives ``dL/d(value)`` in ``grad``.
    """

    def __init__(self, name: str = "input", value=None, requires_grad: bool = False):
        super().__init__(name=name)
        self.value = value
        self.requires_grad = requires_grad

    def forward(self) -> None:
        if self.value is None:
            raise self._error("has no value: set .value to an array before forward()")
        if not isinstance(self.value, np.ndarray):
            try:
                self.value = np.asarray(self.value)
            except Exception as exc:  # e.g. a torch tensor that requires grad, a ragged list
                raise self._error(f"value of type {type(self.value).__name__} cannot be turned into a numpy "
                                  f"array ({exc}); set .value to a numpy array", TypeError) from exc
        if self.value.dtype.kind not in "biuf":
            raise self._error(f"value must hold numbers, got dtype {self.value.dtype}; set .value to a numeric array",
                              TypeError)

    def backward(self) -> None:
        pass


def _as_node(obj) -> Node:
    """A node as it is; an array, list or number as a constant :class:`Input`."""
    if isinstance(obj, Node):
        return obj
    if isinstance(obj, (np.ndarray, np.generic, list, tuple, numbers.Number)):
        value = np.asarray(obj)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"a constant node input must hold numbers, got dtype {value.dtype}")
        return Input("constant", value=value)
    raise TypeError(f"a node input must be a Node, a numpy array or a number, got {type(obj).__name__}; "
                    f"wrap other values with np.asarray or use an Input node")


# --------------------------------------------------------------------------- the affine layer
def _initial_weights(init: str, out_features: int, in_features: int, rng: np.random.Generator) -> np.ndarray:
    """W of shape (out, in): N(0, 0.01^2), Glorot-uniform or He-normal (see :class:`Linear`)."""
    if init == "random":
        return 0.01 * rng.standard_normal((out_features, in_features))
    if init == "xavier":
        a = np.sqrt(6.0 / (in_features + out_features))
        return rng.uniform(-a, a, size=(out_features, in_features))
    return np.sqrt(2.0 / in_features) * rng.standard_normal((out_features, in_features))  # "he"


class Linear(Node):
    """Y = X @ W.T + b for a batch X of shape (batch, in_features), batch >= 1.

    Parameters ``W`` (out_features, in_features), named ``"<name>.W"``, and ``b``
    (out_features,), named ``"<name>.b"``, as ``weight`` and ``bias`` in
    ``torch.nn.Linear``. Backward (rows are samples; Y_bar = dL/dY)::

        dL/dX = Y_bar @ W        dL/dW = Y_bar.T @ X        dL/db = Y_bar.sum(axis=0)

    ``init`` chooses the initial ``W`` (``b`` starts at zero):

    - ``"random"``: W ~ N(0, 0.01^2), the small-random-numbers recipe of early
      courses; fine for one layer, it shrinks signals layer after layer;
    - ``"xavier"`` (Glorot & Bengio 2010, uniform): W ~ U(-a, a), a = sqrt(6 / (in + out));
    - ``"he"`` (He et al. 2015, fan-in, normal): W ~ N(0, 2 / in), for ReLU networks.

    ``rng`` is a ``numpy.random.Generator``; without one, a generator is seeded from
    NumPy's global random state (which ``course_utils.runtime.init`` seeds). A list of S
    generators makes S seeds at once (see the module docstring): ``W`` of shape
    ``(S, out_features, in_features)`` and ``b`` of shape ``(S, out_features)``, seed k's weights
    drawn from ``rng[k]``, its input ``(S, batch, in_features)``. ``dtype``
    is the parameters' float type; inputs of another real dtype (integers, booleans,
    other floats) are converted to it, also when the input requires a gradient (its
    ``grad`` keeps the input's own float dtype, float64 for an integer input).
    """

    def __init__(self, x, in_features: int, out_features: int, *, init: str = "xavier",
                 rng: np.random.Generator | Sequence[np.random.Generator] | None = None, dtype=np.float64,
                 name: str | None = None):
        super().__init__(x, name=name)
        try:
            in_features = validation.positive_int("in_features", in_features)
            out_features = validation.positive_int("out_features", out_features)
        except ValueError as exc:
            raise self._error(str(exc)) from None
        if init not in INITS:
            raise self._error(f"unknown init {init!r}; valid: {', '.join(repr(i) for i in INITS)}")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise self._error(f"dtype must be a float type (np.float32 or np.float64), got {dtype!r}",
                              TypeError) from exc
        if self.dtype.kind != "f":
            raise self._error(f"dtype must be a float type (np.float32 or np.float64), got {self.dtype}")
        rngs = self._generators(rng)
        weights = [_initial_weights(init, out_features, in_features, r) for r in rngs]
        self.seeds = None if isinstance(rng, np.random.Generator) or rng is None else len(rngs)
        W = weights[0] if self.seeds is None else np.stack(weights)
        self.in_features, self.out_features, self.init = in_features, out_features, init
        self.W = Parameter(W.astype(self.dtype), f"{self.name}.W")
        self.b = Parameter(np.zeros(W.shape[:-1], dtype=self.dtype), f"{self.name}.b")
        self.params = [self.W, self.b]

    def _generators(self, rng) -> list[np.random.Generator]:
        """``rng`` as a list of generators (one per seed), or a TypeError that says what to pass."""
        if rng is None:
            return [np.random.default_rng(np.random.randint(0, 2**31 - 1))]
        if isinstance(rng, np.random.Generator):
            return [rng]
        hint = "np.random.default_rng(seed), or a list of them, one per seed"
        if isinstance(rng, (list, tuple)):
            if not rng:
                raise self._error(f"rng is an empty list; pass {hint}")
            bad = [type(r).__name__ for r in rng if not isinstance(r, np.random.Generator)]
            if bad:
                raise self._error(f"rng must be a numpy.random.Generator ({hint}), got a list holding {bad[0]}",
                                  TypeError)
            return list(rng)
        raise self._error(f"rng must be a numpy.random.Generator ({hint}), got {type(rng).__name__}", TypeError)

    def forward(self) -> None:
        X = self._X = self._checked_input()  # (B, in), or (S, B, in): S seeds at once
        # Y = X W^T + b, the bias added to every row
        self.value = X @ self.W.value.mT + self.b.value[..., None, :]

    def backward(self) -> None:
        Y_bar, X, W = self.grad, self._X, self.W.value  # Y_bar = dL/dY
        self.W.grad += Y_bar.mT @ X  # dL/dW = Y_bar^T X
        self.b.grad += Y_bar.sum(axis=-2)  # dL/db = the column sums of Y_bar
        if self.inputs[0].grad is not None:
            self.inputs[0].grad += Y_bar @ W  # dL/dX = Y_bar W

    def _checked_input(self) -> np.ndarray:
        """The input batch in the layer's dtype, after checking its shape (a ValueError naming both)."""
        node = self.inputs[0]
        x = node.value
        seeds, ndim = self.seeds, x.ndim
        expected = f"(batch, {self.in_features})" if seeds is None else f"({seeds}, batch, {self.in_features})"
        shared = seeds is not None and ndim == 2 and isinstance(node, Input) and not node.requires_grad
        if not (ndim == 2 and (seeds is None or shared) or ndim == 3 and seeds is not None and x.shape[0] == seeds) \
                or x.shape[-1] != self.in_features:
            also = (f" (or (batch, {self.in_features}) from an Input without requires_grad, shared by every seed)"
                    if seeds is not None else "")
            raise self._error(f"input {node.name!r} has shape {np.shape(x)}, expected {expected}{also}")
        if x.shape[-2] == 0:
            raise self._error(f"input {node.name!r} is an empty batch, shape {x.shape}; feed at least one row")
        if x.dtype != self.dtype:
            if x.dtype.kind not in "biuf":
                raise self._error(f"input {node.name!r} must hold real numbers, got dtype {x.dtype}")
            x = x.astype(self.dtype)
        return x


# --------------------------------------------------------------------------- activations
class Identity(Node):
    """y = x (a linear output layer, or a placeholder)."""

    def forward(self) -> None:
        self.value = self.inputs[0].value

    def backward(self) -> None:
        if self.inputs[0].grad is not None:
            self.inputs[0].grad += self.grad


class Sigmoid(Node):
    """s = 1 / (1 + exp(-z)), computed without overflow; ds/dz = s (1 - s)."""

    def forward(self) -> None:
        z = self.inputs[0].value
        e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
        self.value = np.where(z >= 0, 1.0, e) / (1.0 + e)

    def backward(self) -> None:
        if self.inputs[0].grad is not None:
            s = self.value
            self.inputs[0].grad += self.grad * s * (1.0 - s)


class Tanh(Node):
    """t = tanh(z); dt/dz = 1 - t^2."""

    def forward(self) -> None:
        self.value = np.tanh(self.inputs[0].value)

    def backward(self) -> None:
        if self.inputs[0].grad is not None:
            t = self.value
            self.inputs[0].grad += self.grad * (1.0 - t * t)


class ReLU(Node):
    """r = max(z, 0); dr/dz = 1 where z > 0, else 0."""

    def forward(self) -> None:
        self.value = np.maximum(self.inputs[0].value, 0)

    def backward(self) -> None:
        if self.inputs[0].grad is not None:
            self.inputs[0].grad += np.where(self.value > 0, self.grad, 0)


# --------------------------------------------------------------------------- losses (mean over the batch)
class Loss(Node):
    """A loss: the mean over the batch of a per-sample loss, a scalar; one mean per seed, shape (S,),
    when its input has a leading seed axis (then :func:`backward` seeds each seed's loss with 1)."""

    def __init__(self, prediction, target, name: str | None = None):
        super().__init__(prediction, target, name=name)

    def _seedwise(self, ndim: int):
        """``self.grad / batch`` shaped to broadcast against an input of ``ndim`` dimensions."""
        g = self.grad
        if isinstance(g, float) or g.ndim == 0:
            return float(g)
        return g.reshape(g.shape + (1,) * (ndim - 1))


class BinaryCrossEntropy(Loss):
    """L = -(1/B) sum_i sum_k [y log p + (1 - y) log(1 - p)] for probabilities p (batch, k).

    Targets ``y`` in [0, 1] (NaN is refused): shape (batch,) when k = 1, or p's shape
    (with a seed axis, p is (S, batch, k) and the targets are p's shape, or the same without
    the seed axis, shared by every seed).
    When ``p`` is a :class:`Sigmoid` node the loss is computed from its input logits z,
    stably::

        -[y log s(z) + (1 - y) log(1 - s(z))] = max(z, 0) - z y + log(1 + exp(-|z|))

    (no overflow, no log(0), however large |z|), and the gradient goes straight to
    the logits, dL/dz = (s(z) - y) / B, skipping the sigmoid's s(1 - s) factor that
    underflows to 0 at large |z|. Any other ``p`` is clipped to [eps, 1 - eps].

    The loss is differentiable in its target too: when ``y`` is a node that needs a
    gradient (soft targets computed by the graph) it receives
    dL/dy = (log(1 - p) - log p) / B, which is -z / B on the logits path.
    """

    def __init__(self, p, y, name: str | None = None):
        super().__init__(p, y, name=name)

    def forward(self) -> None:
        p_node, p = self.inputs[0], self.inputs[0].value
        t = self._t = _targets_like(self, p, self.inputs[1].value, "probabilities", probability=True)
        if isinstance(p_node, Sigmoid):  # from the logits z: finite for every z
            z = p_node.inputs[0].value
            per_sample = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        else:
            eps = np.finfo(p.dtype).eps if p.dtype.kind == "f" else 1e-12
            self._pc = pc = np.clip(p, eps, 1 - eps)
            per_sample = -(t * np.log(pc) + (1 - t) * np.log1p(-pc))
        self.value = per_sample.sum(axis=(-2, -1)) / p.shape[-2]

    def backward(self) -> None:
        p_node, y_node, t = self.inputs[0], self.inputs[1], self._t
        scale = self._seedwise(t.ndim) / t.shape[-2]
        sigmoid = isinstance(p_node, Sigmoid)
        if sigmoid:
            z_node = p_node.inputs[0]
            if z_node.grad is not None:
                z_node.grad += (p_node.value - t) * scale  # dL/dz = (s(z) - y) / B
        elif p_node.grad is not None:
            pc = self._pc
            g = (pc - t) / (pc * (1 - pc)) * scale
            p_node.grad += np.where(pc == p_node.value, g, 0)  # clip has zero slope where it clipped
        if y_node.grad is not None:  # soft targets computed by the graph
            if sigmoid:
                dt = p_node.inputs[0].value * -scale
            else:
                dt = (np.log1p(-self._pc) - np.log(self._pc)) * scale
            _add_gradient(y_node, dt)


class SoftmaxCrossEntropy(Loss):
    """L = (1/B) sum_i [log sum_k exp(z_ik) - z_i,y_i] for logits z (batch, K), labels y (batch,) int.

    dL/dz = (softmax(z) - onehot(y)) / B. The log-sum-exp subtracts the row maximum first.
    With a seed axis: logits (S, batch, K), labels (S, batch) or (batch,).
    Integer labels are not differentiable: :func:`backward` raises a ``ValueError`` when
    the labels node needs a gradient.
    """

    def __init__(self, logits, y, name: str | None = None):
        super().__init__(logits, y, name=name)

    def forward(self) -> None:
        z = self.inputs[0].value
        y = _class_labels(self, z, self.inputs[1].value)
        shifted = z - z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        sums = e.sum(axis=-1, keepdims=True)
        self._probs, self._onehot = e / sums, y[..., None] == np.arange(z.shape[-1])
        z_label = np.take_along_axis(shifted, y[..., None], axis=-1)
        self.value = (np.log(sums) - z_label).sum(axis=(-2, -1)) / z.shape[-2]

    def backward(self) -> None:
        _refuse_label_gradient(self)
        z_node = self.inputs[0]
        if z_node.grad is not None:
            g = self._probs - self._onehot  # softmax(z) - onehot(y)
            z_node.grad += g * (self._seedwise(g.ndim) / g.shape[-2])


class SoftmaxMSE(Loss):
    """L = (1/B) sum_i sum_k (softmax(z)_ik - onehot(y)_ik)^2 for logits z (batch, K), labels y (batch,).

    With s = softmax(z) and g = dL/ds = 2 (s - onehot) / B, the softmax Jacobian gives
    dL/dz = s * (g - sum_k g_k s_k). With a seed axis: logits (S, batch, K), labels (S, batch) or
    (batch,). Integer labels are not differentiable: :func:`backward` raises a ``ValueError`` when
    the labels node needs a gradient.
    """

    def __init__(self, logits, y, name: str | None = None):
        super().__init__(logits, y, name=name)

    def forward(self) -> None:
        z = self.inputs[0].value
        y = _class_labels(self, z, self.inputs[1].value)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        s = e / e.sum(axis=-1, keepdims=True)
        diff = s - (y[..., None] == np.arange(z.shape[-1]))
        self._s, self._diff = s, diff
        self.value = (diff * diff).sum(axis=(-2, -1)) / z.shape[-2]

    def backward(self) -> None:
        _refuse_label_gradient(self)
        z_node = self.inputs[0]
        if z_node.grad is not None:
            s = self._s
            g = self._diff * (2.0 * self._seedwise(s.ndim) / s.shape[-2])
            z_node.grad += s * (g - (g * s).sum(axis=-1, keepdims=True))


class MSE(Loss):
    """L = (1/B) sum_i sum_k (pred_ik - target_ik)^2: squared error summed over features,
    averaged over the batch (for one output feature: torch's ``MSELoss()``).

    ``target`` has pred's shape, or (batch,) when pred is (batch, 1) (with a seed axis, also
    either of those without the seed axis, shared by every seed).
    dL/dpred = 2 (pred - target) / B, and its negative reaches the target when the
    target is a node that needs a gradient (a target computed by the graph).
    """

    def __init__(self, pred, target, name: str | None = None):
        super().__init__(pred, target, name=name)

    def forward(self) -> None:
        pred = self.inputs[0].value
        t = _targets_like(self, pred, self.inputs[1].value, "predictions")
        self._diff = pred - t
        self.value = (self._diff * self._diff).sum(axis=(-2, -1)) / pred.shape[-2]

    def backward(self) -> None:
        pred_node, target_node = self.inputs
        g = self._diff * (2.0 * self._seedwise(self._diff.ndim) / self._diff.shape[-2])
        if pred_node.grad is not None:
            pred_node.grad += g
        if target_node.grad is not None:
            _add_gradient(target_node, -g)


def _add_gradient(node: Node, g: np.ndarray) -> None:
    """``node.grad += g`` for a target whose value was reshaped ((batch,) for (batch, 1)) or shared by
    every seed (then the seeds' contributions add up, as for any value used several times)."""
    if g.size != node.grad.size:
        g = g.reshape(-1, node.grad.size).sum(axis=0)
    node.grad += g.reshape(node.grad.shape)


def _nonempty_batch(node: Node, p: np.ndarray, what: str) -> None:
    """A ValueError naming the node and the shape when a loss sees zero rows (its mean would be 0/0)."""
    if p.ndim not in (2, 3):
        raise node._error(f"{what} {node.inputs[0].name!r} must have shape (batch, k), or (seeds, batch, k), "
                          f"got {p.shape}")
    if p.shape[-2] == 0:
        raise node._error(f"{what} {node.inputs[0].name!r} are an empty batch, shape {p.shape}: "
                          f"the mean over zero samples is undefined; feed at least one row")


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` itself when it is a float type, else float64 (the dtype of a gradient or target)."""
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _targets_like(node: Node, p: np.ndarray, t, what: str, probability: bool = False) -> np.ndarray:
    """Targets as an array of p's shape and p's float dtype, or a ValueError naming both shapes.

    Accepted: p's shape; (batch,) when p is (batch, 1); with a seed axis, either without it (shared).
    ``probability``: the targets must lie in [0, 1] (NaN refused).
    """
    _nonempty_batch(node, p, what)
    t = np.asarray(t)
    if t.dtype.kind not in "biuf":
        raise node._error(f"targets {node.inputs[1].name!r} must hold real numbers, got dtype {t.dtype}")
    single = p.shape[-1] == 1
    if t.shape == p.shape[:-1] and single or p.ndim == 3 and t.shape == p.shape[1:-1] and single:
        t = t[..., None]  # (batch,) for (batch, 1), also with seeds
    elif t.shape != p.shape and not (p.ndim == 3 and t.shape == p.shape[1:]):
        raise node._error(f"targets {node.inputs[1].name!r} have shape {t.shape} but {what} "
                          f"{node.inputs[0].name!r} have shape {p.shape}")
    t = t.astype(_float_dtype(p.dtype), copy=False)
    if probability and not (t.min() >= 0 and t.max() <= 1):  # also catches NaN
        outside = ~((t >= 0) & (t <= 1))
        raise node._error(f"targets {node.inputs[1].name!r} must lie in [0, 1] (no NaN), got {int(outside.sum())} "
                          f"of {t.size} values outside, for example {t[outside].flat[0]}")
    return t if t.shape == p.shape else np.broadcast_to(t, p.shape)


def _refuse_label_gradient(node: Node) -> None:
    """Integer class labels have no gradient: refuse a labels node that needs one."""
    labels = node.inputs[1]
    if labels.grad is not None:
        raise node._error(
            f"labels {labels.name!r} need a gradient (they depend on a parameter or on an Input with "
            f"requires_grad=True), but integer class labels are not differentiable; feed the labels "
            f"through an Input without requires_grad (for targets that should receive a gradient use MSE "
            f"or BinaryCrossEntropy)")


def _class_labels(node: Node, z: np.ndarray, y) -> np.ndarray:
    """Integer labels of z's shape without its last axis, in [0, K) for logits (..., batch, K), or a
    ValueError; with a seed axis, labels (batch,) are shared by every seed."""
    y = np.asarray(y)
    _nonempty_batch(node, z, "logits")
    if y.shape != z.shape[:-1] and not (z.ndim == 3 and y.shape == z.shape[1:-1]):
        expected = f"({z.shape[-2]},)" + (f" or {z.shape[:-1]}" if z.ndim == 3 else "")
        raise node._error(f"labels {node.inputs[1].name!r} have shape {y.shape} but logits "
                          f"{node.inputs[0].name!r} have shape {z.shape}; expected labels of shape {expected}")
    name = node.inputs[1].name
    if y.dtype.kind not in "iu":
        raise node._error(f"labels {name!r} must be integers (class ids), got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= z.shape[-1]:
        raise node._error(f"labels {name!r} must lie in [0, {z.shape[-1]}) for logits of shape {z.shape}, "
                          f"got min {y.min()} and max {y.max()}")
    return np.broadcast_to(y, z.shape[:-1])


# --------------------------------------------------------------------------- running a graph
def _takes_a_graph(function):
    """Refuse, with a clear TypeError, a root that is not a graph node (the decorated functions
    hold only the algorithm)."""

    @functools.wraps(function)
    def checked(root, *args, **kwargs):
        if not isinstance(root, Node):
            raise TypeError(f"expected a graph Node (for example a loss node), got {type(root).__name__}")
        return function(root, *args, **kwargs)

    return checked


@_takes_a_graph
def topological_sort(root: Node) -> list[Node]:
    """Every node ``root`` depends on, each after all of its inputs, ``root`` last.

    Depth-first, inputs in order (the order the recursive definition gives), written
    with an explicit stack so that deep graphs do not hit Python's recursion limit.
    """
    order, seen = [], set()
    stack = [(root, False)]  # (node, are its inputs already listed?)
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)  # after all of its inputs
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((inp, False) for inp in reversed(node.inputs) if id(inp) not in seen)
    return order


def _order(root: Node) -> list[Node]:
    """``topological_sort(root)``, computed once per root (a graph is fixed once built)."""
    if getattr(root, "_order", None) is None:
        root._order = topological_sort(root)
    return root._order


def _needs_gradient(root: Node, order: list[Node]) -> list[bool]:
    """For each node of ``order``: does it depend on a parameter or an Input with requires_grad?

    Cached on ``root`` per setting of the inputs' ``requires_grad`` flags (the only thing that can
    change in a graph once built).
    """
    cached = getattr(root, "_needs", None)
    if cached is not None:
        for node, flag in cached[0]:
            if node.requires_grad != flag:
                break
        else:
            return cached[1]
    needs: set[int] = set()
    for node in order:
        if node.params or getattr(node, "requires_grad", False) or not needs.isdisjoint(map(id, node.inputs)):
            needs.add(id(node))
    flags = [(node, node.requires_grad) for node in order if isinstance(node, Input)]
    root._needs = (flags, [id(node) in needs for node in order])
    return root._needs[1]


@_takes_a_graph
def forward(root: Node):
    """Compute every node's value in topological order; return ``root.value``."""
    for node in _order(root):
        node.forward()
    return root.value


@_takes_a_graph
def backward(root: Node, grad=None) -> None:
    """Fill ``.grad`` of every node and parameter ``root`` depends on (after :func:`forward`).

    Zeroes all gradients, seeds ``root.grad = 1.0`` (``root`` must be a scalar, such as
    a loss; a loss over S seeds at once, value shape (S,), is seeded with ones, so each seed's
    parameters get the gradient of its own loss; for another non-scalar root pass ``grad``,
    an array of its shape, to get the vector-Jacobian product), then runs each node's
    ``backward`` in reverse topological order. Nodes that depend on no parameter and no
    input with ``requires_grad=True`` get ``grad = None`` and are skipped. A gradient has its
    value's float dtype (float64 for an integer value). A wrong ``grad`` raises before
    any gradient is touched.
    """
    order = _order(root)
    if root.value is None:
        raise root._error("has no value yet: call forward(root) before backward(root)")
    if grad is None:
        if isinstance(root, Loss) and np.ndim(root.value) == 1:
            root_grad = np.ones_like(root.value)  # S seeds: each its own loss
        elif np.size(root.value) != 1:
            raise root._error(f"backward() without grad needs a scalar root, value has shape "
                              f"{np.shape(root.value)}; pass grad= an array of that shape")
        else:
            root_grad = 1.0
    else:
        try:
            root_grad = np.asarray(grad, dtype=_float_dtype(np.result_type(root.value)))
        except (TypeError, ValueError) as exc:
            raise root._error(f"grad must be a numeric array of the value's shape {np.shape(root.value)}, "
                              f"got {type(grad).__name__}") from exc
        if root_grad.shape != np.shape(root.value):
            raise root._error(f"grad has shape {root_grad.shape} but the value has shape {np.shape(root.value)}")
    for node, needed in zip(order, _needs_gradient(root, order)):
        if not needed:
            node.grad = None
        elif node is not root:
            node.grad = _zeroed(node.grad, node.value)
        for prm in node.params:
            prm.grad.fill(0)
    root.grad = root_grad
    for node in reversed(order):
        if node.grad is not None:
            node.backward()


def _zeroed(buf, like):
    """A zero gradient for the value ``like``: its shape, its float dtype (float64 for integers);
    ``buf`` cleared in place when it fits, else a new array."""
    if isinstance(buf, np.ndarray) and isinstance(like, np.ndarray) and buf.shape == like.shape \
            and buf.dtype == like.dtype:  # the training loop's case: a float value, the buffer from last time
        buf.fill(0)
        return buf
    shape, dtype = np.shape(like), _float_dtype(np.result_type(like))
    if isinstance(buf, np.ndarray) and buf.shape == shape and buf.dtype == dtype:
        buf.fill(0)
        return buf
    return np.zeros(shape, dtype=dtype)


@_takes_a_graph
def parameters(root: Node) -> list[Parameter]:
    """The trainable parameters ``root`` depends on, in topological order (W before b), each once."""
    out, seen = [], set()
    for node in topological_sort(root):
        for prm in node.params:
            if id(prm) not in seen:
                seen.add(id(prm))
                out.append(prm)
    return out
