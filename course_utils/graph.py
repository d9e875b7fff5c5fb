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
``dL/dx = A^T dL/dy`` is our ``dL/dX = dL/dY @ A``.

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

import numpy as np

__all__ = [
    "Parameter", "Node", "Input", "Linear",
    "Identity", "Sigmoid", "Tanh", "ReLU",
    "BinaryCrossEntropy", "SoftmaxCrossEntropy", "SoftmaxMSE", "MSE",
    "topological_sort", "forward", "backward", "parameters", "INITS",
]

INITS = ("random", "xavier", "he")


class Parameter:
    """A trainable array and the gradient of the loss with respect to it (same shape and dtype)."""

    def __init__(self, value: np.ndarray, name: str = "param"):
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

    def _error(self, message: str) -> ValueError:
        return ValueError(f"{type(self).__name__} node {self.name!r}: {message}")


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
            self.value = np.asarray(self.value)

    def backward(self) -> None:
        pass


def _as_node(obj) -> Node:
    if isinstance(obj, Node):
        return obj
    if isinstance(obj, (np.ndarray, list, tuple, int, float)):
        return Input("constant", value=np.asarray(obj))
    raise TypeError(f"a node input must be a Node or an array, got {type(obj).__name__}")


# --------------------------------------------------------------------------- the affine layer
class Linear(Node):
    """Y = X @ A.T + b for a batch X of shape (batch, in_features).

    Parameters ``A`` (out_features, in_features) and ``b`` (out_features,), as in
    ``torch.nn.Linear``. Backward (rows are samples; G = dL/dY)::

        dL/dX = G @ A        dL/dA = G.T @ X        dL/db = G.sum(axis=0)

    ``init`` chooses the initial ``A`` (``b`` starts at zero):

    - ``"random"``: A ~ N(0, 0.01^2), the small-random-numbers recipe of early
      courses; fine for one layer, it shrinks signals layer after layer;
    - ``"xavier"`` (Glorot & Bengio 2010, uniform): A ~ U(-a, a), a = sqrt(6 / (in + out));
    - ``"he"`` (He et al. 2015, fan-in, normal): A ~ N(0, 2 / in), for ReLU networks.

    ``rng`` is a ``numpy.random.Generator``; without one, a generator is seeded from
    NumPy's global random state (which ``course_utils.runtime.init`` seeds). ``dtype``
    is the parameters' float type; inputs of another dtype are converted.
    """

    def __init__(self, x, in_features: int, out_features: int, *, init: str = "xavier",
                 rng: np.random.Generator | None = None, dtype=np.float64, name: str | None = None):
        super().__init__(x, name=name)
        for label, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise self._error(f"{label} must be a positive integer, got {n!r}")
        if init not in INITS:
            raise self._error(f"unknown init {init!r}; valid: {', '.join(repr(i) for i in INITS)}")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise self._error(f"dtype must be a float type (float32 or float64), got {self.dtype}")
        if rng is None:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        shape = (int(out_features), int(in_features))
        if init == "random":
            A = 0.01 * rng.standard_normal(shape)
        elif init == "xavier":
            a = np.sqrt(6.0 / (in_features + out_features))
            A = rng.uniform(-a, a, size=shape)
        else:  # "he"
            A = np.sqrt(2.0 / in_features) * rng.standard_normal(shape)
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self.A = Parameter(A.astype(self.dtype), f"{self.name}.A")
        self.b = Parameter(np.zeros(out_features, dtype=self.dtype), f"{self.name}.b")
        self.params = [self.A, self.b]

    def forward(self) -> None:
        x = self.inputs[0].value
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._error(f"input {self.inputs[0].name!r} has shape {x.shape}, "
                              f"expected (batch, {self.in_features})")
        self._x = x if x.dtype == self.dtype else x.astype(self.dtype)
        y = self._x @ self.A.value.T
        y += self.b.value
        self.value = y

    def backward(self) -> None:
        g, x_node = self.grad, self.inputs[0]
        self.A.grad += g.T @ self._x
        self.b.grad += g.sum(axis=0)
        if x_node.grad is not None:
            x_node.grad += g @ self.A.value


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

    Targets ``y`` in [0, 1]: shape (batch,) when k = 1, or p's shape. When ``p`` is a
    :class:`Sigmoid` node the loss is computed from its input logits z, stably::

        -[y log s(z) + (1 - y) log(1 - s(z))] = max(z, 0) - z y + log(1 + exp(-|z|))

    (no overflow, no log(0), however large |z|), and the gradient goes straight to
    the logits, dL/dz = (s(z) - y) / B, skipping the sigmoid's s(1 - s) factor that
    underflows to 0 at large |z|. Any other ``p`` is clipped to [eps, 1 - eps].
    """

    def __init__(self, p, y, name: str | None = None):
        super().__init__(p, y, name=name)

    def forward(self) -> None:
        p_node, y_node = self.inputs
        p = p_node.value
        t = _targets_like(self, p, y_node.value, "probabilities")
        if t.min() < 0 or t.max() > 1:
            raise self._error(f"targets must lie in [0, 1], got min {t.min()} and max {t.max()}")
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
        p_node, t = self.inputs[0], self._t
        scale = float(self.grad) / t.shape[0]
        if isinstance(p_node, Sigmoid):
            z_node = p_node.inputs[0]
            if z_node.grad is not None:
                z_node.grad += (p_node.value - t) * scale
        elif p_node.grad is not None:
            pc = self._pc
            g = (pc - t) / (pc * (1 - pc)) * scale
            p_node.grad += np.where(pc == p_node.value, g, 0)   # clip has zero slope where it clipped


class SoftmaxCrossEntropy(Node):
    """L = (1/B) sum_i [log sum_k exp(z_ik) - z_i,y_i] for logits z (batch, K), labels y (batch,) int.

    dL/dz = (softmax(z) - onehot(y)) / B. The log-sum-exp subtracts the row maximum first.
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
        z_node = self.inputs[0]
        if z_node.grad is not None:
            g = self._probs.copy()
            g[np.arange(g.shape[0]), self._y] -= 1
            g *= float(self.grad) / g.shape[0]
            z_node.grad += g


class SoftmaxMSE(Node):
    """L = (1/B) sum_i sum_k (softmax(z)_ik - onehot(y)_ik)^2 for logits z (batch, K), labels y (batch,).

    With s = softmax(z) and g = dL/ds = 2 (s - onehot) / B, the softmax Jacobian gives
    dL/dz = s * (g - sum_k g_k s_k).
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
        z_node = self.inputs[0]
        if z_node.grad is not None:
            s = self._s
            g = self._diff * (2.0 * float(self.grad) / s.shape[0])
            z_node.grad += s * (g - (g * s).sum(axis=1, keepdims=True))


class MSE(Node):
    """L = (1/B) sum_i sum_k (pred_ik - target_ik)^2: squared error summed over features,
    averaged over the batch (for one output feature: torch's ``MSELoss()``).

    ``target`` has pred's shape, or (batch,) when pred is (batch, 1).
    dL/dpred = 2 (pred - target) / B (and its negative for the target).
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


def _targets_like(node: Node, p: np.ndarray, t, what: str) -> np.ndarray:
    """Targets as an array of p's shape and float dtype, or a ValueError naming both shapes."""
    t = np.asarray(t)
    if p.ndim != 2:
        raise node._error(f"{what} {node.inputs[0].name!r} must have shape (batch, k), got {p.shape}")
    if t.shape != p.shape and not (p.shape[1] == 1 and t.shape == (p.shape[0],)):
        raise node._error(f"targets {node.inputs[1].name!r} have shape {t.shape} but {what} "
                          f"{node.inputs[0].name!r} have shape {p.shape}")
    return t.reshape(p.shape).astype(p.dtype, copy=False)


def _class_labels(node: Node, z: np.ndarray, y) -> np.ndarray:
    """Integer labels of shape (batch,) in [0, K) for logits (batch, K), or a ValueError."""
    y = np.asarray(y)
    if z.ndim != 2:
        raise node._error(f"logits {node.inputs[0].name!r} must have shape (batch, classes), got {z.shape}")
    if y.shape != (z.shape[0],):
        raise node._error(f"labels {node.inputs[1].name!r} have shape {y.shape} but logits "
                          f"{node.inputs[0].name!r} have shape {z.shape}; expected labels of shape ({z.shape[0]},)")
    if y.dtype.kind not in "iu":
        raise node._error(f"labels must be integers (class ids), got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= z.shape[1]):
        raise node._error(f"labels must lie in [0, {z.shape[1]}), got min {y.min()} and max {y.max()}")
    return y


# --------------------------------------------------------------------------- running a graph
def topological_sort(root: Node) -> list[Node]:
    """Every node ``root`` depends on, each after all of its inputs, ``root`` last."""
    order, seen = [], set()

    def visit(node: Node) -> None:
        if id(node) not in seen:
            seen.add(id(node))
            for inp in node.inputs:
                visit(inp)
            order.append(node)

    visit(root)
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
    ``requires_grad=True`` get ``grad = None`` and are skipped.
    """
    order = _order(root)
    if root.value is None:
        raise root._error("has no value yet: call forward(root) before backward(root)")
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
    if grad is None:
        if np.size(root.value) != 1:
            raise root._error(f"backward() without grad needs a scalar root, value has shape "
                              f"{np.shape(root.value)}; pass grad= an array of that shape")
        root.grad = 1.0
    else:
        grad = np.asarray(grad, dtype=np.result_type(root.value))
        if grad.shape != np.shape(root.value):
            raise root._error(f"grad has shape {grad.shape} but the value has shape {np.shape(root.value)}")
        root.grad = grad
    for node in reversed(order):
        if node.grad is not None:
            node.backward()


def _zeroed(buf, like):
    """A zero array shaped like ``like``: ``buf`` cleared in place when it fits, else a new one."""
    if isinstance(buf, np.ndarray) and buf.shape == like.shape and buf.dtype == like.dtype:
        buf.fill(0)
        return buf
    return np.zeros_like(like)


def parameters(root: Node) -> list[Parameter]:
    """The trainable parameters ``root`` depends on, in topological order (A before b), each once."""
    out, seen = [], set()
    for node in topological_sort(root):
        for prm in node.params:
            if id(prm) not in seen:
                seen.add(id(prm))
                out.append(prm)
    return out
