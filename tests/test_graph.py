"""Unit tests of course_utils.graph: every node's gradients against central finite
differences (float64, relative error < 1e-6) and against torch.autograd, plus the
engine's contract (shapes, errors, accumulation, order, dtypes, in-place updates)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import graph as G
from course_utils.checks import numerical_gradient, relative_error

FD_TOL = 1e-6     # finite differences, float64
TORCH_TOL = 1e-10  # same formula in another library, float64
B = 5             # batch size used throughout


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def grads_of(loss_node, leaves, upstream=None):
    """Run forward/backward and return [leaf.grad for leaf] (leaves are Inputs or Parameters)."""
    G.forward(loss_node)
    G.backward(loss_node, grad=upstream)
    return [leaf.grad.copy() for leaf in leaves]


def fd_grads(loss_node, leaves, upstream=None):
    """Central finite differences of sum(upstream * root.value) with respect to each leaf's value."""
    out = []
    for leaf in leaves:
        original = leaf.value.copy()

        def f(v, leaf=leaf):
            if isinstance(leaf, G.Parameter):
                leaf.value[...] = v  # parameters change in place
            else:
                leaf.value = v
            val = G.forward(loss_node)
            return float(np.sum(val * (1.0 if upstream is None else upstream)))

        out.append(numerical_gradient(f, original))
        if isinstance(leaf, G.Input):
            leaf.value = original
        else:
            leaf.value[...] = original
    G.forward(loss_node)
    return out


def assert_close_fd(ours, numeric):
    for a, n in zip(ours, numeric):
        assert relative_error(a, n) < FD_TOL, relative_error(a, n)


def torch_grads(fn, arrays, upstream=None):
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*ts)
    if upstream is None:
        out.backward()
    else:
        out.backward(torch.tensor(upstream))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


# --------------------------------------------------------------------------- Linear
def test_linear_gradients_match_formulas_fd_and_torch(rng):
    x = G.Input("x", value=rng.standard_normal((B, 3)), requires_grad=True)
    lin = G.Linear(x, 3, 4, rng=rng, name="fc")
    lin.b.value[...] = rng.standard_normal(4)
    upstream = rng.standard_normal((B, 4))
    dX, dW, db = grads_of(lin, [x, lin.W, lin.b], upstream)
    # The row-layout formulas: dL/dX = G W, dL/dW = G^T X, dL/db = column sums of G
    np.testing.assert_allclose(dX, upstream @ lin.W.value, rtol=1e-12)
    np.testing.assert_allclose(dW, upstream.T @ x.value, rtol=1e-12)
    np.testing.assert_allclose(db, upstream.sum(axis=0), rtol=1e-12)
    # ... are the column-layout ones transposed (x_c = X^T, g_c = G^T of shape (features, batch)):
    # dL/dx_c = W^T g_c, dL/dW = g_c x_c^T, dL/db = g_c summed over the batch (columns)
    x_c, g_c = x.value.T, upstream.T
    np.testing.assert_allclose(dX.T, lin.W.value.T @ g_c, rtol=1e-12)
    np.testing.assert_allclose(dW, g_c @ x_c.T, rtol=1e-12)
    np.testing.assert_allclose(db, g_c.sum(axis=1), rtol=1e-12)
    assert_close_fd([dX, dW, db], fd_grads(lin, [x, lin.W, lin.b], upstream))
    value, tg = torch_grads(F.linear, [x.value, lin.W.value, lin.b.value], upstream)
    np.testing.assert_allclose(lin.value, value, rtol=1e-12)
    for ours, theirs in zip([dX, dW, db], tg):
        assert relative_error(ours, theirs) < TORCH_TOL


@pytest.mark.parametrize("init", ["random", "xavier", "he"])
def test_linear_init_statistics(init):
    lin = G.Linear(G.Input("x"), 400, 300, init=init, rng=np.random.default_rng(0))
    W = lin.W.value
    assert W.shape == (300, 400) and lin.b.value.shape == (300,)
    assert not lin.b.value.any()
    expected_std = {"random": 0.01, "xavier": np.sqrt(2.0 / 700), "he": np.sqrt(2.0 / 400)}[init]
    assert abs(W.std() / expected_std - 1) < 0.02
    if init == "xavier":
        assert np.abs(W).max() <= np.sqrt(6.0 / 700)


def test_linear_unknown_init_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown init 'glorot'.*'random', 'xavier', 'he'"):
        G.Linear(G.Input("x"), 2, 1, init="glorot")


def test_linear_default_rng_is_seeded_by_global_state():
    np.random.seed(7)
    a = G.Linear(G.Input("x"), 3, 2).W.value.copy()
    np.random.seed(7)
    b = G.Linear(G.Input("x"), 3, 2).W.value
    np.testing.assert_array_equal(a, b)


def test_wrong_shape_names_node_and_both_shapes():
    x = G.Input("pixels", value=np.zeros((8, 5)))
    lin = G.Linear(x, 4, 2, name="fc1")
    with pytest.raises(ValueError, match=r"Linear node 'fc1'.*'pixels'.*\(8, 5\).*\(batch, 4\)"):
        G.forward(lin)
    x.value = np.zeros(4)  # one sample without its batch axis
    with pytest.raises(ValueError, match=r"fc1.*\(4,\)"):
        G.forward(lin)
    z = G.Input("logits", value=np.zeros((8, 3)))
    y = G.Input("labels", value=np.zeros(7, dtype=int))
    for cls in (G.SoftmaxCrossEntropy, G.SoftmaxMSE):
        with pytest.raises(ValueError, match=r"'loss'.*\(7,\).*\(8, 3\)"):
            G.forward(cls(z, y, name="loss"))
    t = G.Input("target", value=np.zeros((8, 2)))
    with pytest.raises(ValueError, match=r"MSE node 'mse'.*\(8, 2\).*\(8, 3\)"):
        G.forward(G.MSE(z, t))
    p = G.Sigmoid(G.Input("z", value=np.zeros((8, 1))))
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy node 'bce'.*\(7,\).*\(8, 1\)"):
        G.forward(G.BinaryCrossEntropy(p, G.Input("y", value=np.zeros(7)), name="bce"))


def test_bad_labels_and_missing_values_raise():
    z = G.Input("logits", value=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"labels .constant. must lie in \[0, 4\) for logits of shape \(3, 4\), got min 0 and max 4"):
        G.forward(G.SoftmaxCrossEntropy(z, np.array([0, 4, 1])))
    with pytest.raises(ValueError, match="integers"):
        G.forward(G.SoftmaxCrossEntropy(z, np.array([0.0, 1.0, 1.0])))
    with pytest.raises(ValueError, match=r"targets .* must lie in \[0, 1\].*for example 2.0"):
        G.forward(G.BinaryCrossEntropy(G.Sigmoid(G.Input("z", value=np.zeros((2, 1)))), np.array([0, 2])))
    with pytest.raises(ValueError, match=r"Input node 'x'.*no value"):
        G.forward(G.Sigmoid(G.Input("x")))
    with pytest.raises(ValueError, match="positive integer"):
        G.Linear(G.Input("x"), 0, 3)


# --------------------------------------------------------------------------- activations
ACTIVATIONS = [
    (G.Identity, lambda z: z),
    (G.Sigmoid, torch.sigmoid),
    (G.Tanh, torch.tanh),
    (G.ReLU, torch.relu),
]


@pytest.mark.parametrize("cls,torch_fn", ACTIVATIONS, ids=[c.__name__ for c, _ in ACTIVATIONS])
def test_activation_gradients(cls, torch_fn, rng):
    z0 = rng.standard_normal((B, 4)) * 2
    z0[np.abs(z0) < 1e-3] = 0.5  # keep ReLU's kink away from the finite-difference stencil
    z = G.Input("z", value=z0, requires_grad=True)
    node = cls(z)
    upstream = rng.standard_normal((B, 4))
    (dz,) = grads_of(node, [z], upstream)
    assert_close_fd([dz], fd_grads(node, [z], upstream))
    value, (tdz,) = torch_grads(torch_fn, [z0], upstream)
    np.testing.assert_allclose(node.value, value, rtol=1e-12, atol=1e-15)
    assert relative_error(dz, tdz) < TORCH_TOL


def test_sigmoid_is_stable_at_extreme_logits():
    z = np.array([[-1000.0], [-40.0], [0.0], [40.0], [1000.0]])
    node = G.Sigmoid(G.Input("z", value=z))
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        G.forward(node)
    np.testing.assert_allclose(node.value, torch.sigmoid(torch.tensor(z)).numpy(), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- losses
def loss_case(name, rng):
    """(loss node, leaves to check, torch function of the same leaves' values)."""
    if name == "bce_logits":  # BCE on a Sigmoid: computed from the logits
        z = G.Input("z", value=rng.standard_normal((B, 1)) * 3, requires_grad=True)
        t = (rng.random(B) > 0.5).astype(float)
        return G.BinaryCrossEntropy(G.Sigmoid(z), t), [z], \
            lambda zt: F.binary_cross_entropy_with_logits(zt, torch.tensor(t)[:, None])
    if name == "bce_logits_multi":
        z = G.Input("z", value=rng.standard_normal((B, 3)), requires_grad=True)
        t = rng.random((B, 3))  # soft targets
        return G.BinaryCrossEntropy(G.Sigmoid(z), t), [z], \
            lambda zt: F.binary_cross_entropy_with_logits(zt, torch.tensor(t), reduction="sum") / B
    if name == "bce_probs":  # BCE on probabilities that do not come from a Sigmoid node
        p = G.Input("p", value=rng.uniform(0.05, 0.95, (B, 1)), requires_grad=True)
        t = (rng.random(B) > 0.5).astype(float)
        return G.BinaryCrossEntropy(p, t), [p], lambda pt: F.binary_cross_entropy(pt, torch.tensor(t)[:, None])
    if name == "softmax_ce":
        z = G.Input("z", value=rng.standard_normal((B, 4)) * 2, requires_grad=True)
        y = rng.integers(0, 4, B)
        return G.SoftmaxCrossEntropy(z, y), [z], lambda zt: F.cross_entropy(zt, torch.tensor(y))
    if name == "softmax_mse":
        z = G.Input("z", value=rng.standard_normal((B, 4)) * 2, requires_grad=True)
        y = rng.integers(0, 4, B)
        onehot = torch.tensor(np.eye(4)[y])
        return G.SoftmaxMSE(z, y), [z], lambda zt: ((torch.softmax(zt, 1) - onehot) ** 2).sum(1).mean()
    if name == "mse":
        pred = G.Input("pred", value=rng.standard_normal((B, 3)), requires_grad=True)
        target = G.Input("target", value=rng.standard_normal((B, 3)), requires_grad=True)
        return G.MSE(pred, target), [pred, target], lambda p, t: ((p - t) ** 2).sum(1).mean()
    if name == "mse_1d_target":
        pred = G.Input("pred", value=rng.standard_normal((B, 1)), requires_grad=True)
        target = rng.standard_normal(B)
        return G.MSE(pred, target), [pred], lambda p: F.mse_loss(p, torch.tensor(target)[:, None])
    raise KeyError(name)


LOSSES = ["bce_logits", "bce_logits_multi", "bce_probs", "softmax_ce", "softmax_mse", "mse", "mse_1d_target"]


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradients(name, rng):
    loss, leaves, torch_fn = loss_case(name, rng)
    ours = grads_of(loss, leaves)
    assert np.ndim(loss.value) == 0
    assert_close_fd(ours, fd_grads(loss, leaves))
    value, theirs = torch_grads(torch_fn, [leaf.value for leaf in leaves])
    np.testing.assert_allclose(float(loss.value), float(value), rtol=1e-12)
    for a, b in zip(ours, theirs):
        assert relative_error(a, b) < TORCH_TOL


def test_bce_from_logits_is_stable_at_large_logits():
    z0 = np.array([[-800.0], [-50.0], [50.0], [800.0]])
    t = np.array([1.0, 0.0, 1.0, 0.0])  # the wrong class with huge confidence for +/-800
    z = G.Input("z", value=z0, requires_grad=True)
    loss = G.BinaryCrossEntropy(G.Sigmoid(z), t)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        G.forward(loss)
        G.backward(loss)
    value, (tdz,) = torch_grads(lambda zt: F.binary_cross_entropy_with_logits(zt, torch.tensor(t)[:, None]), [z0])
    np.testing.assert_allclose(float(loss.value), float(value), rtol=1e-12)  # (800 + 50 + 0 + 800) / 4
    np.testing.assert_allclose(z.grad, tdz, rtol=1e-12)
    np.testing.assert_allclose(z.grad.ravel(), [-0.25, 0.0, 0.0, 0.25], atol=1e-20)


# --------------------------------------------------------------------------- the engine
def small_net(rng, dtype=np.float64, classes=3):
    x, y = G.Input("x"), G.Input("y")
    h = G.Tanh(G.Linear(x, 4, 6, rng=rng, dtype=dtype, name="fc1"))
    h = G.ReLU(G.Linear(h, 6, 5, init="he", rng=rng, dtype=dtype, name="fc2"))
    loss = G.SoftmaxCrossEntropy(G.Linear(h, 5, classes, init="random", rng=rng, dtype=dtype, name="out"), y)
    return x, y, loss


def test_network_gradients_against_fd_and_torch(rng):
    x, y, loss = small_net(rng)
    x.value, y.value = rng.standard_normal((B, 4)), rng.integers(0, 3, B)
    params = G.parameters(loss)
    assert [p.name for p in params] == ["fc1.W", "fc1.b", "fc2.W", "fc2.b", "out.W", "out.b"]
    ours = grads_of(loss, params)
    assert x.grad is None and y.grad is None  # inputs need no gradient by default
    assert_close_fd(ours, fd_grads(loss, params))

    def torch_loss(W1, b1, W2, b2, W3, b3):
        X = torch.tensor(x.value)
        h = torch.relu(F.linear(torch.tanh(F.linear(X, W1, b1)), W2, b2))
        return F.cross_entropy(F.linear(h, W3, b3), torch.tensor(y.value))

    value, theirs = torch_grads(torch_loss, [p.value for p in params])
    np.testing.assert_allclose(float(loss.value), float(value), rtol=1e-12)
    for a, b in zip(ours, theirs):
        assert relative_error(a, b) < TORCH_TOL


def test_topological_order_and_gradient_accumulation(rng):
    # x feeds two branches that meet again: x.grad must be the sum of both paths
    x = G.Input("x", value=rng.standard_normal((B, 2)), requires_grad=True)
    a = G.Tanh(x, name="a")
    b = G.Sigmoid(x, name="b")
    both = G.Linear(a, 2, 2, rng=rng, name="la")
    s = G.MSE(both, b, name="loss")  # b is used as a target: its gradient flows too
    order = G.topological_sort(s)
    position = {id(n): i for i, n in enumerate(order)}
    assert order[-1] is s and len(order) == len({id(n) for n in order})
    for node in order:
        assert all(position[id(i)] < position[id(node)] for i in node.inputs)
    (dx,) = grads_of(s, [x])
    assert_close_fd([dx], fd_grads(s, [x]))
    # a second backward gives the same gradients: backward() zeroes before accumulating
    G.backward(s)
    np.testing.assert_allclose(x.grad, dx, rtol=1e-15)


def test_shared_parameter_node_used_twice(rng):
    x = G.Input("x", value=rng.standard_normal((B, 3)))
    lin = G.Linear(x, 3, 3, rng=rng, name="shared")
    twice = G.Linear(G.Tanh(lin), 3, 3, rng=rng, name="second")
    loss = G.MSE(twice, lin)  # lin's value is used by two consumers
    params = G.parameters(loss)
    assert [p.name for p in params] == ["shared.W", "shared.b", "second.W", "second.b"]
    assert_close_fd(grads_of(loss, params), fd_grads(loss, params))


def test_backward_needs_a_scalar_root_or_a_grad(rng):
    node = G.Linear(G.Input("x", value=rng.standard_normal((B, 2))), 2, 3, rng=rng, name="fc")
    G.forward(node)
    with pytest.raises(ValueError, match=r"scalar root.*\(5, 3\)"):
        G.backward(node)
    with pytest.raises(ValueError, match=r"grad has shape \(3,\)"):
        G.backward(node, grad=np.ones(3))
    with pytest.raises(ValueError, match="call forward"):
        G.backward(G.Sigmoid(G.Input("x", value=np.zeros((1, 1)))))


def test_float32_stays_float32_and_updates_are_in_place(rng):
    x, y, loss = small_net(rng, dtype=np.float32)
    x.value, y.value = rng.standard_normal((B, 4)), rng.integers(0, 3, B)  # float64 input is converted
    params = G.parameters(loss)
    values = [p.value for p in params]
    grads = [p.grad for p in params]
    for _ in range(3):
        G.forward(loss)
        G.backward(loss)
        for p in params:
            p.value -= 0.1 * p.grad
    for node in G.topological_sort(loss):
        if not isinstance(node, G.Input):
            assert np.result_type(node.value) == np.float32, node
    for p, v, g in zip(params, values, grads):
        assert p.value is v and p.grad is g  # same arrays: optimizers may hold them
        assert p.value.dtype == p.grad.dtype == np.float32
    # float32 gradients agree with float64 ones to float32 precision
    x64, y64, loss64 = small_net(np.random.default_rng(0))
    x32, y32, loss32 = small_net(np.random.default_rng(0), dtype=np.float32)
    for xx, yy in ((x64, y64), (x32, y32)):
        xx.value, yy.value = np.ones((B, 4)), np.arange(B) % 3
    g64 = grads_of(loss64, G.parameters(loss64))
    g32 = grads_of(loss32, G.parameters(loss32))
    for a, b in zip(g64, g32):
        assert relative_error(a, b) < 1e-5


def test_training_reduces_the_loss_and_separates_two_blobs():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 1, (100, 2)), rng.normal(2, 1, (100, 2))])
    y = np.repeat([0, 1], 100)
    x, t = G.Input("x", value=X), G.Input("y", value=y)
    p = G.Sigmoid(G.Linear(x, 2, 1, rng=rng, name="fc"))
    loss = G.BinaryCrossEntropy(p, t)
    first = float(G.forward(loss))
    for _ in range(100):
        G.forward(loss)
        G.backward(loss)
        for prm in G.parameters(loss):
            prm.value -= 0.5 * prm.grad
    assert float(G.forward(loss)) < 0.2 * first
    assert ((p.value[:, 0] > 0.5) == y).mean() > 0.95
