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


# --------------------------------------------------------------------------- several seeds at once
S = 3  # seeds trained together in these tests
SEED_TOL = 1e-12  # S seeds together vs S separate graphs: the same operations per seed (observed: equal bits)


def seed_case(name, rngs):
    """A loss over S seeds (leading seed axis) and, for seed k, the same loss as a separate graph.

    Returns (batched loss, its leaves, [(loss_k, leaves_k) for each seed])."""
    data = np.random.default_rng(99)
    if name == "linear_bce":  # logistic regression: Linear -> Sigmoid -> BCE, targets (S, B)
        X, t = data.standard_normal((S, B, 3)), (data.random((S, B)) > 0.5).astype(float)
        x = G.Input("x", value=X, requires_grad=True)
        lin = G.Linear(x, 3, 1, rng=rngs, name="fc")
        lin.b.value[...] = data.standard_normal((S, 1))
        batched = G.BinaryCrossEntropy(G.Sigmoid(lin), t)
        singles = []
        for k in range(S):
            xk = G.Input("x", value=X[k], requires_grad=True)
            lk = G.Linear(xk, 3, 1, rng=np.random.default_rng(k), name="fc")
            lk.b.value[...] = lin.b.value[k]
            singles.append((G.BinaryCrossEntropy(G.Sigmoid(lk), t[k]), [xk, lk.W, lk.b]))
        return batched, [x, lin.W, lin.b], singles
    if name == "mlp_softmax_ce":  # Linear-Tanh-Linear-softmax CE, one input batch shared by every seed
        X, y = data.standard_normal((B, 4)), data.integers(0, 3, B)
        x = G.Input("x", value=X)
        h = G.Linear(G.Tanh(G.Linear(x, 4, 5, rng=rngs, name="h")), 5, 3, rng=rngs, name="out")
        batched = G.SoftmaxCrossEntropy(h, y)
        singles = []
        for k in range(S):
            rk = np.random.default_rng(k)
            hk = G.Linear(G.Tanh(G.Linear(G.Input("x", value=X), 4, 5, rng=rk, name="h")), 5, 3, rng=rk, name="out")
            lk = G.SoftmaxCrossEntropy(hk, y)
            singles.append((lk, G.parameters(lk)))
        return batched, G.parameters(batched), singles
    if name in ("softmax_mse", "mse", "bce_probs"):  # losses on an input with a seed axis, per-seed labels
        K = 4 if name != "bce_probs" else 1
        Z = data.uniform(0.05, 0.95, (S, B, K)) if name == "bce_probs" else data.standard_normal((S, B, K))
        z = G.Input("z", value=Z, requires_grad=True)
        if name == "softmax_mse":
            target = data.integers(0, K, (S, B))
            batched, make = G.SoftmaxMSE(z, target), G.SoftmaxMSE
        elif name == "mse":
            target = data.standard_normal((S, B, K))
            batched, make = G.MSE(z, target), G.MSE
        else:
            target = (data.random((S, B)) > 0.5).astype(float)
            batched, make = G.BinaryCrossEntropy(z, target), G.BinaryCrossEntropy
        singles = []
        for k in range(S):
            zk = G.Input("z", value=Z[k], requires_grad=True)
            singles.append((make(zk, target[k]), [zk]))
        return batched, [z], singles
    raise KeyError(name)


@pytest.mark.parametrize("name", ["linear_bce", "mlp_softmax_ce", "softmax_mse", "mse", "bce_probs"])
def test_seed_axis_gives_each_seed_its_own_loss_and_gradients(name):
    rngs = [np.random.default_rng(k) for k in range(S)]
    batched, leaves, singles = seed_case(name, rngs)
    G.forward(batched)
    G.backward(batched)  # a loss over S seeds: each seed's loss seeded with 1
    assert np.shape(batched.value) == (S,)
    for k, (loss_k, leaves_k) in enumerate(singles):
        G.forward(loss_k)
        G.backward(loss_k)
        np.testing.assert_allclose(batched.value[k], loss_k.value, rtol=SEED_TOL)
        for leaf, leaf_k in zip(leaves, leaves_k):
            np.testing.assert_allclose(leaf.value[k] if leaf.value.ndim > leaf_k.value.ndim else leaf.value,
                                       leaf_k.value, rtol=0)  # seed k starts where a separate graph starts
            np.testing.assert_allclose(leaf.grad[k], leaf_k.grad, rtol=SEED_TOL, atol=1e-300)
    # the gradient of the sum of the S losses, by finite differences (one check of the whole batched graph)
    assert_close_fd([leaf.grad.copy() for leaf in leaves], fd_grads(batched, leaves, upstream=np.ones(S)))


def test_stacked_linear_draws_each_seed_from_its_own_generator():
    for init in INIT_NAMES:
        stacked = G.Linear(G.Input("x"), 4, 3, init=init, rng=[np.random.default_rng(k) for k in range(S)])
        assert stacked.seeds == S and stacked.W.value.shape == (S, 3, 4) and stacked.b.value.shape == (S, 3)
        for k in range(S):
            single = G.Linear(G.Input("x"), 4, 3, init=init, rng=np.random.default_rng(k))
            assert single.seeds is None
            np.testing.assert_array_equal(stacked.W.value[k], single.W.value)


INIT_NAMES = G.INITS


def train_logistic(X, y, seeds, batch_size, lr, num_epochs):
    """Minibatch SGD on logistic regression, the loop of chapters 1.1 and 1.2.

    ``seeds`` an int: one run; a list: the runs of those seeds together (leading seed axis),
    each seed its own initial weights and its own order of the samples."""
    together = isinstance(seeds, list)
    seed_list = seeds if together else [seeds]
    init = [np.random.default_rng(s) for s in seed_list]
    x, t = G.Input("x"), G.Input("y")
    loss = G.BinaryCrossEntropy(G.Sigmoid(G.Linear(x, X.shape[1], 1, rng=init if together else init[0])), t)
    params = G.parameters(loss)
    orders = [np.random.default_rng(1000 + s) for s in seed_list]
    losses = []
    for _ in range(num_epochs):
        order = np.stack([r.permutation(len(X)) for r in orders])  # (S, N): each seed its own order
        if not together:
            order = order[0]
        for start in range(0, len(X), batch_size):
            idx = order[..., start:start + batch_size]
            x.value, t.value = X[idx], y[idx]
            with np.errstate(over="ignore", invalid="ignore"):
                losses.append(np.copy(G.forward(loss)))
                G.backward(loss)
            for prm in params:
                prm.value -= lr * prm.grad
    return [p.value.copy() for p in params], np.array(losses)


@pytest.mark.parametrize("batch_size, lr", [(1, 0.03), (16, 0.5), (100, 2.0)])
def test_seeds_trained_together_equal_separate_runs(batch_size, lr):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 2)) + np.repeat([[-1.0, 0.0], [1.0, 0.5]], 100, axis=0)
    y = np.repeat([0, 1], 100)
    seeds = [0, 1, 2]
    together, losses = train_logistic(X, y, seeds, batch_size, lr, num_epochs=3)
    assert losses.shape[1:] == (len(seeds),)
    for k, s in enumerate(seeds):
        alone, losses_k = train_logistic(X, y, s, batch_size, lr, num_epochs=3)
        np.testing.assert_allclose(losses[:, k], losses_k, rtol=SEED_TOL)
        for a, b in zip(together, alone):
            np.testing.assert_allclose(a[k], b, rtol=SEED_TOL)


def test_a_diverging_seed_leaves_the_others_as_they_would_be_alone():
    """Seed 1 gets data 1000 times larger, so its learning rate is far past the stability limit:
    its weights overflow to inf/NaN. The other seeds end exactly where they end alone."""
    rng = np.random.default_rng(3)
    S_, N, lr = 3, 64, 0.1
    X = rng.standard_normal((S_, N, 2))
    X[1] *= 1000.0
    targets = X @ np.array([1.0, -2.0])[:, None] + 0.5  # a linear regression per seed
    inits = [np.random.default_rng(k) for k in range(S_)]
    x, t = G.Input("x"), G.Input("t")
    loss = G.MSE(G.Linear(x, 2, 1, rng=inits), t)
    params = G.parameters(loss)
    singles = []
    for k in range(S_):
        xk, tk = G.Input("x"), G.Input("t")
        lk = G.MSE(G.Linear(xk, 2, 1, rng=np.random.default_rng(k)), tk)
        singles.append((xk, tk, lk, G.parameters(lk)))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in list(range(0, N, 8)) * 8:  # 8 epochs
            x.value, t.value = X[:, start:start + 8], targets[:, start:start + 8]
            G.forward(loss)
            G.backward(loss)
            for prm in params:
                prm.value -= lr * prm.grad
            for k, (xk, tk, lk, pk) in enumerate(singles):
                xk.value, tk.value = X[k, start:start + 8], targets[k, start:start + 8]
                G.forward(lk)
                G.backward(lk)
                for prm in pk:
                    prm.value -= lr * prm.grad
    assert not np.isfinite(params[0].value[1]).all()  # seed 1 diverged
    for k in (0, 2):
        assert np.isfinite(params[0].value[k]).all()
        for prm, prm_k in zip(params, singles[k][3]):
            np.testing.assert_allclose(prm.value[k], prm_k.value, rtol=SEED_TOL)
    np.testing.assert_array_equal(np.isfinite(params[0].value[1]), np.isfinite(singles[1][3][0].value))


def test_seed_axis_shapes_are_checked_with_clear_errors():
    rngs = [np.random.default_rng(k) for k in range(S)]
    x = G.Input("x", value=np.zeros((2, B, 3)))  # 2 seeds of data for a 3-seed layer
    with pytest.raises(ValueError, match=r"Linear node 'fc': input 'x' has shape \(2, 5, 3\), expected \(3, batch, 3\)"):
        G.forward(G.Linear(x, 3, 1, rng=rngs, name="fc"))
    shared = G.Input("x", value=np.zeros((B, 3)), requires_grad=True)  # shared, but needs a gradient
    with pytest.raises(ValueError, match=r"expected \(3, batch, 3\) \(or \(batch, 3\) from an Input without requires_grad"):
        G.forward(G.Linear(shared, 3, 1, rng=rngs, name="fc"))
    plain = G.Linear(G.Input("x", value=np.zeros((S, B, 3))), 3, 1, rng=rngs[0], name="one")
    with pytest.raises(ValueError, match=r"expected \(batch, 3\)"):  # one seed's layer, three seeds of data
        G.forward(plain)
    z = G.Input("z", value=np.zeros((S, B, 4)))
    with pytest.raises(ValueError, match=r"labels 'y' have shape \(2, 5\).*expected labels of shape \(5,\) or \(3, 5\)"):
        G.forward(G.SoftmaxCrossEntropy(z, G.Input("y", value=np.zeros((2, B), dtype=int))))
    with pytest.raises(ValueError, match=r"targets 't' have shape \(3, 4\)"):
        G.forward(G.MSE(z, G.Input("t", value=np.zeros((S, 4)))))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator.*a list holding int"):
        G.Linear(G.Input("x"), 3, 1, rng=[np.random.default_rng(0), 1])
    with pytest.raises(ValueError, match="rng is an empty list"):
        G.Linear(G.Input("x"), 3, 1, rng=[])


def test_a_shared_target_that_needs_a_gradient_receives_the_sum_over_seeds():
    """A target shared by every seed is a value used S times: its gradient is the sum of the S seeds'."""
    data = np.random.default_rng(4)
    P = data.standard_normal((S, B, 2))
    target = G.Input("t", value=data.standard_normal((B, 2)), requires_grad=True)
    loss = G.MSE(G.Input("p", value=P), target)
    G.forward(loss)
    G.backward(loss)
    expected = sum(-2 * (P[k] - target.value) / B for k in range(S))
    np.testing.assert_allclose(target.grad, expected, rtol=1e-12)


# --------------------------------------------------------------------------- what chapter 1.1 prints
@pytest.mark.parametrize("code", [G.Sigmoid, G.Linear.forward, G.Linear.backward, G.topological_sort],
                         ids=["Sigmoid", "Linear.forward", "Linear.backward", "topological_sort"])
def test_the_printed_source_is_the_mathematics_that_runs(code):
    """Chapter 1.1 prints these with inspect.getsource: they hold the algorithm, not argument checks,
    and what is printed is the code that runs (the functions are not replaced by wrappers whose
    source would differ)."""
    import inspect

    source = inspect.getsource(code)
    assert "raise" not in source and "isinstance(root" not in source and "_error(" not in source
    assert len(source.splitlines()) <= 25
    if code is G.topological_sort:  # the decorator that refuses a non-node root wraps exactly this function
        assert G.topological_sort.__wrapped__.__code__.co_filename == G.__file__
        assert inspect.getsource(G.topological_sort.__wrapped__) == source
