"""A small reverse-mode automatic-differentiation engine on NumPy.

Introduced in chapter 1 (logistic regression and the batch-size study); chapter 5
builds its feedforward classifier on it.

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
topological order.

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
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "Parameter", "Node", "Input", "Linear",
    "Identity", "Sigmoid", "Tanh", "ReLU",
    "BinaryCrossEntropy", "SoftmaxCrossEntropy", "SoftmaxMSE", "MSE",
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
class Linear(Node):
    """Y = X @ W.T + b for a batch X of shape (batch, in_features), batch >= 1.

    Parameters ``W`` (out_features, in_features), named ``"<name>.W"``, and ``b``
    (out_features,), named ``"<name>.b"``, as ``weight`` and ``bias`` in
    ``torch.nn.Linear``. Backward (rows are samples; G = dL/dY)::

        dL/dX = G @ W        dL/dW = G.T @ X        dL/db = G.sum(axis=0)

    ``init`` chooses the initial ``W`` (``b`` starts at zero):

    - ``"random"``: W ~ N(0, 0.01^2), the small-random-numbers recipe of early
      courses; fine for one layer, it shrinks signals layer after layer;
    - ``"xavier"`` (Glorot & Bengio 2010, uniform): W ~ U(-a, a), a = sqrt(6 / (in + out));
    - ``"he"`` (He et al. 2015, fan-in, normal): W ~ N(0, 2 / in), for ReLU networks.

    ``rng`` is a ``numpy.random.Generator``; without one, a generator is seeded from
    NumPy's global random state (which ``course_utils.runtime.init`` seeds). ``dtype``
    is the parameters' float type; inputs of another real dtype (integers, booleans,
    other floats) are converted to it, also when the input requires a gradient (its
    ``grad`` keeps the input's own float dtype, float64 for an integer input).
    """

    def __init__(self, x, in_features: int, out_features: int, *, init: str = "xavier",
                 rng: np.random.Generator | None = None, dtype=np.float64, name: str | None = None):
        super().__init__(x, name=name)
        for label, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
                raise self._error(f"{label} must be a positive integer, got {n!r}")
        if init not in INITS:
            raise self._error(f"unknown init {init!r}; valid: {', '.join(repr(i) for i in INITS)}")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise self._error(f"dtype must be a float type (np.float32 or np.float64), got {dtype!r}",
                              TypeError) from exc
        if self.dtype.kind != "f":
            raise self._error(f"dtype must be a float type (np.float32 or np.float64), got {self.dtype}")
        if rng is None:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        elif not isinstance(rng, np.random.Generator):
            raise self._error(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                              f"got {type(rng).__name__}", TypeError)
        shape = (int(out_features), int(in_features))
        if init == "random":
            W = 0.01 * rng.standard_normal(shape)
        elif init == "xavier":
            a = np.sqrt(6.0 / (in_features + out_features))
            W = rng.uniform(-a, a, size=shape)
        else:  # "he"
            W = np.sqrt(2.0 / in_features) * rng.standard_normal(shape)
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self.W = Parameter(W.astype(self.dtype), f"{self.name}.W")
        self.b = Parameter(np.zeros(out_features, dtype=self.dtype), f"{self.name}.b")
        self.params = [self.W, self.b]

    def forward(self) -> None:
        x = self.inputs[0].value
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._error(f"input {self.inputs[0].name!r} has shape {x.shape}, "
                              f"expected (batch, {self.in_features})")
        if x.shape[0] == 0:
            raise self._error(f"input {self.inputs[0].name!r} is an empty batch, shape {x.shape}; "
                              f"feed at least one row")
        if x.dtype != self.dtype:
            if x.dtype.kind not in "biuf":
                raise self._error(f"input {self.inputs[0].name!r} must hold real numbers, got dtype {x.dtype}")
            x = x.astype(self.dtype)
        self._x = x
        y = x @ self.W.value.T
        y += self.b.value
        self.value = y

    def backward(self) -> None:
        g, x_node = self.grad, self.inputs[0]
        self.W.grad += g.T @ self._x
        self.b.grad += g.sum(axis=0)
        if x_node.grad is not None:
            x_node.grad += g @ self.W.value


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
        e = np.exp(-np.abs(z))                      # in (0, 1]: never overflows
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


# --------------------------------------------------------------------------- losses (scalar: mean over the batch)
class BinaryCrossEntropy(Node):
    """L = -(1/B) sum_i sum_k [y log p + (1 - y) log(1 - p)] for probabilities p (batch, k).

    Targets ``y`` in [0, 1] (NaN is refused): shape (batch,) when k = 1, or p's shape.
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
        p_node, y_node = self.inputs
        p = p_node.value
        t = _targets_like(self, p, y_node.value, "probabilities")
        outside = ~((t >= 0) & (t <= 1))          # also catches NaN
        if outside.any():
            raise self._error(f"targets {y_node.name!r} must lie in [0, 1] (no NaN), got {int(outside.sum())} "
                              f"of {t.size} values outside, for example {t[outside].flat[0]}")
        self._t = t
        if isinstance(p_node, Sigmoid):
            z = p_node.inputs[0].value
            per_sample = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        else:
            eps = np.finfo(p.dtype).eps if p.dtype.kind == "f" else 1e-12
            self._pc = pc = np.clip(p, eps, 1 - eps)
            per_sample = -(t * np.log(pc) + (1 - t) * np.log1p(-pc))
        self.value = per_sample.sum() / p.shape[0]

    def backward(self) -> None:
        p_node, y_node, t = self.inputs[0], self.inputs[1], self._t
        scale = float(self.grad) / t.shape[0]
        sigmoid = isinstance(p_node, Sigmoid)
        if sigmoid:
            z_node = p_node.inputs[0]
            if z_node.grad is not None:
                z_node.grad += (p_node.value - t) * scale
        elif p_node.grad is not None:
            pc = self._pc
            g = (pc - t) / (pc * (1 - pc)) * scale
            p_node.grad += np.where(pc == p_node.value, g, 0)   # clip has zero slope where it clipped
        if y_node.grad is not None:                               # soft targets computed by the graph
            if sigmoid:
                dt = p_node.inputs[0].value * -scale
            else:
                dt = (np.log1p(-self._pc) - np.log(self._pc)) * scale
            y_node.grad += dt.reshape(y_node.grad.shape)


class SoftmaxCrossEntropy(Node):
    """L = (1/B) sum_i [log sum_k exp(z_ik) - z_i,y_i] for logits z (batch, K), labels y (batch,) int.

    dL/dz = (softmax(z) - onehot(y)) / B. The log-sum-exp subtracts the row maximum first.
    Integer labels are not differentiable: :func:`backward` raises a ``ValueError`` when
    the labels node needs a gradient.
    """

    def __init__(self, logits, y, name: str | None = None):
        super().__init__(logits, y, name=name)

    def forward(self) -> None:
        z = self.inputs[0].value
        y = _class_labels(self, z, self.inputs[1].value)
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        sums = e.sum(axis=1, keepdims=True)
        self._probs, self._y = e / sums, y
        rows = np.arange(z.shape[0])
        self.value = (np.log(sums[:, 0]) - shifted[rows, y]).sum() / z.shape[0]

    def backward(self) -> None:
        _refuse_label_gradient(self)
        z_node = self.inputs[0]
        if z_node.grad is not None:
            g = self._probs.copy()
            g[np.arange(g.shape[0]), self._y] -= 1
            g *= float(self.grad) / g.shape[0]
            z_node.grad += g


class SoftmaxMSE(Node):
    """L = (1/B) sum_i sum_k (softmax(z)_ik - onehot(y)_ik)^2 for logits z (batch, K), labels y (batch,).

    With s = softmax(z) and g = dL/ds = 2 (s - onehot) / B, the softmax Jacobian gives
    dL/dz = s * (g - sum_k g_k s_k). Integer labels are not differentiable:
    :func:`backward` raises a ``ValueError`` when the labels node needs a gradient.
    """

    def __init__(self, logits, y, name: str | None = None):
        super().__init__(logits, y, name=name)

    def forward(self) -> None:
        z = self.inputs[0].value
        y = _class_labels(self, z, self.inputs[1].value)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        s = e / e.sum(axis=1, keepdims=True)
        diff = s.copy()
        diff[np.arange(z.shape[0]), y] -= 1
        self._s, self._diff = s, diff
        self.value = (diff * diff).sum() / z.shape[0]

    def backward(self) -> None:
        _refuse_label_gradient(self)
        z_node = self.inputs[0]
        if z_node.grad is not None:
            s = self._s
            g = self._diff * (2.0 * float(self.grad) / s.shape[0])
            z_node.grad += s * (g - (g * s).sum(axis=1, keepdims=True))


class MSE(Node):
    """L = (1/B) sum_i sum_k (pred_ik - target_ik)^2: squared error summed over features,
    averaged over the batch (for one output feature: torch's ``MSELoss()``).

    ``target`` has pred's shape, or (batch,) when pred is (batch, 1).
    dL/dpred = 2 (pred - target) / B, and its negative reaches the target when the
    target is a node that needs a gradient (a target computed by the graph).
    """

    def __init__(self, pred, target, name: str | None = None):
        super().__init__(pred, target, name=name)

    def forward(self) -> None:
        pred = self.inputs[0].value
        t = _targets_like(self, pred, self.inputs[1].value, "predictions")
        self._diff = pred - t
        self.value = (self._diff * self._diff).sum() / pred.shape[0]

    def backward(self) -> None:
        pred_node, target_node = self.inputs
        g = self._diff * (2.0 * float(self.grad) / self._diff.shape[0])
        if pred_node.grad is not None:
            pred_node.grad += g
        if target_node.grad is not None:
            target_node.grad -= g.reshape(target_node.grad.shape)


def _nonempty_batch(node: Node, p: np.ndarray, what: str) -> None:
    """A ValueError naming the node and the shape when a loss sees zero rows (its mean would be 0/0)."""
    if p.ndim != 2:
        raise node._error(f"{what} {node.inputs[0].name!r} must have shape (batch, k), got {p.shape}")
    if p.shape[0] == 0:
        raise node._error(f"{what} {node.inputs[0].name!r} are an empty batch, shape {p.shape}: "
                          f"the mean over zero samples is undefined; feed at least one row")


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` itself when it is a float type, else float64 (the dtype of a gradient or target)."""
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def _targets_like(node: Node, p: np.ndarray, t, what: str) -> np.ndarray:
    """Targets as an array of p's shape and p's float dtype, or a ValueError naming both shapes."""
    _nonempty_batch(node, p, what)
    t = np.asarray(t)
    if t.dtype.kind not in "biuf":
        raise node._error(f"targets {node.inputs[1].name!r} must hold real numbers, got dtype {t.dtype}")
    if t.shape != p.shape and not (p.shape[1] == 1 and t.shape == (p.shape[0],)):
        raise node._error(f"targets {node.inputs[1].name!r} have shape {t.shape} but {what} "
                          f"{node.inputs[0].name!r} have shape {p.shape}")
    return t.reshape(p.shape).astype(_float_dtype(p.dtype), copy=False)


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
    """Integer labels of shape (batch,) in [0, K) for logits (batch, K), or a ValueError."""
    y = np.asarray(y)
    _nonempty_batch(node, z, "logits")
    if y.shape != (z.shape[0],):
        raise node._error(f"labels {node.inputs[1].name!r} have shape {y.shape} but logits "
                          f"{node.inputs[0].name!r} have shape {z.shape}; expected labels of shape ({z.shape[0]},)")
    name = node.inputs[1].name
    if y.dtype.kind not in "iu":
        raise node._error(f"labels {name!r} must be integers (class ids), got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise node._error(f"labels {name!r} must lie in [0, {z.shape[1]}) for logits of shape {z.shape}, "
                          f"got min {y.min()} and max {y.max()}")
    return y


# --------------------------------------------------------------------------- running a graph
def _check_root(root) -> None:
    if not isinstance(root, Node):
        raise TypeError(f"expected a graph Node (for example a loss node), got {type(root).__name__}")


def topological_sort(root: Node) -> list[Node]:
    """Every node ``root`` depends on, each after all of its inputs, ``root`` last.

    Depth-first, inputs in order (the order the recursive definition gives), written
    with an explicit stack so that deep graphs do not hit Python's recursion limit.
    """
    _check_root(root)
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((inp, False) for inp in reversed(node.inputs) if id(inp) not in seen)
    return order


def _order(root: Node) -> list[Node]:
    """``topological_sort(root)``, computed once per root (a graph is fixed once built)."""
    if getattr(root, "_order", None) is None:
        root._order = topological_sort(root)
    return root._order


def forward(root: Node):
    """Compute every node's value in topological order; return ``root.value``."""
    for node in _order(root):
        node.forward()
    return root.value


def backward(root: Node, grad=None) -> None:
    """Fill ``.grad`` of every node and parameter ``root`` depends on (after :func:`forward`).

    Zeroes all gradients, seeds ``root.grad = 1.0`` (``root`` must be a scalar, such as
    a loss; for a non-scalar root pass ``grad``, an array of its shape, to get the
    vector-Jacobian product), then runs each node's ``backward`` in reverse
    topological order. Nodes that depend on no parameter and no input with
    ``requires_grad=True`` get ``grad = None`` and are skipped. A gradient has its
    value's float dtype (float64 for an integer value). A wrong ``grad`` raises before
    any gradient is touched.
    """
    order = _order(root)
    if root.value is None:
        raise root._error("has no value yet: call forward(root) before backward(root)")
    if grad is None:
        if np.size(root.value) != 1:
            raise root._error(f"backward() without grad needs a scalar root, value has shape "
                              f"{np.shape(root.value)}; pass grad= an array of that shape")
        root_grad = 1.0
    else:
        try:
            root_grad = np.asarray(grad, dtype=_float_dtype(np.result_type(root.value)))
        except (TypeError, ValueError) as exc:
            raise root._error(f"grad must be a numeric array of the value's shape {np.shape(root.value)}, "
                              f"got {type(grad).__name__}") from exc
        if root_grad.shape != np.shape(root.value):
            raise root._error(f"grad has shape {root_grad.shape} but the value has shape {np.shape(root.value)}")
    needs = set()  # ids of the nodes whose gradient is needed
    for node in order:
        if node.params or getattr(node, "requires_grad", False) or not needs.isdisjoint(map(id, node.inputs)):
            needs.add(id(node))
            if node is not root:
                node.grad = _zeroed(node.grad, node.value)
        else:
            node.grad = None
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


def parameters(root: Node) -> list[Parameter]:
    """The trainable parameters ``root`` depends on, in topological order (W before b), each once."""
    out, seen = [], set()
    for node in topological_sort(root):
        for prm in node.params:
            if id(prm) not in seen:
                seen.add(id(prm))
                out.append(prm)
    return out
