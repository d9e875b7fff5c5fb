"""Optional arguments, shapes and seeds (issue 13, kind 5): every public function accepts the
values its signature and docstring allow (defaults, None, numpy integers, other allowed values)
with the right result, and refuses the others with an error that names the argument.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import calculus as C
from course_utils import checks, graph as G
from course_utils import models, network, runtime, toy_data, training

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# --------------------------------------------------------------------------- calculus: b=None, tensor c
def test_linear_without_bias_matches_torch_and_finite_differences(rng):
    X, W = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    for Y in (C.linear(X, W), C.linear(X, W, None)):
        np.testing.assert_allclose(Y, X @ W.T, rtol=1e-15)
    np.testing.assert_allclose(C.linear(X, W), F.linear(torch.tensor(X), torch.tensor(W)).numpy(), rtol=1e-15)
    jac = checks.numerical_jacobian(lambda Z: C.linear(X, Z), W)
    np.testing.assert_allclose(jac, C.linear_jacobians(X, W)[1], rtol=1e-7, atol=1e-9)
    Wt = torch.tensor(W, requires_grad=True)
    C.linear(torch.tensor(X), Wt).sum().backward()  # torch path without bias
    np.testing.assert_allclose(Wt.grad.numpy(), C.linear_vjp(X, W, np.ones((4, 2)))[1], rtol=1e-15)


def test_tanh_layer_without_bias(rng):
    x, W, v = rng.standard_normal(3), rng.standard_normal((2, 3)), rng.standard_normal(2)
    np.testing.assert_allclose(C.tanh_layer(x, W), np.tanh(W @ x), rtol=1e-15)
    J = C.tanh_layer_jacobian(x, W)
    np.testing.assert_allclose(J, checks.numerical_jacobian(lambda z: C.tanh_layer(z, W), x), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(J, C.tanh_layer_jacobian(x, W, np.zeros(2)), rtol=1e-15)
    np.testing.assert_allclose(C.tanh_layer_vjp(x, W, None, v), v @ J, rtol=1e-14)
    xt = torch.tensor(x, requires_grad=True)
    C.tanh_layer(xt, torch.tensor(W)).backward(torch.tensor(v))
    np.testing.assert_allclose(xt.grad.numpy(), v @ J, rtol=1e-14)
    with pytest.raises(ValueError, match=r"b must have length M = 2 \(the number of rows of W"):
        C.tanh_layer(x, W, np.zeros(3))


def test_trace_outer_accepts_a_tensor_constant_and_differentiates_it(rng):
    x = rng.standard_normal(4)
    c = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    for args in ((xt, c), (x, c)):
        value = C.trace_outer(*args)
        assert isinstance(value, torch.Tensor)
        np.testing.assert_allclose(float(value.detach()), x @ x + 4 * 0.7**2, rtol=1e-14)
    c.grad = None
    C.trace_outer(xt, c).backward()
    np.testing.assert_allclose(float(c.grad), 2 * 4 * 0.7, rtol=1e-14)  # d/dc (n c^2)
    np.testing.assert_allclose(xt.grad.numpy(), C.trace_outer_jacobian(x)[0], rtol=1e-14)
    assert C.trace_outer(x, np.float32(0.5)) == pytest.approx(x @ x + 1.0)
    with pytest.raises(ValueError, match=r"c must be a scalar, got a tensor of shape \(1,\)"):
        C.trace_outer(x, torch.tensor([0.7]))
    with pytest.raises(ValueError, match=r"c must be a scalar, got shape \(2,\)"):
        C.trace_outer(x, [0.7, 0.1])


def test_calculus_layer_functions_name_the_weights_W():
    with pytest.raises(ValueError, match=r"W must be a 2-D matrix, got shape \(3,\)"):
        C.linear(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"X must have D = 3 columns \(samples are rows; W has shape \(2, 3\)"):
        C.linear(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x must have length D = 3 .*columns of W"):
        C.tanh_layer_jacobian(np.zeros(2), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="D >= 1"):
        C.gaussian_exp(np.zeros(0), np.zeros(0), np.zeros((0, 0)))


# --------------------------------------------------------------------------- checks: the step h and floor
def test_numerical_jacobian_step_values(rng):
    x = rng.standard_normal(3)
    exact = np.diag(np.cos(x))
    for h in (1e-4, 1e-6, np.float32(1e-3), 1):  # any positive finite step; accuracy depends on it
        tol = {1: 0.2}.get(h, 1e-5)
        np.testing.assert_allclose(checks.numerical_jacobian(np.sin, x, h=h), exact, atol=tol)
    for bad in (0, -1e-6, float("nan"), float("inf"), "1e-6", True, None):
        with pytest.raises(ValueError, match=r"numerical_jacobian: h \(the finite-difference step\) must be a"):
            checks.numerical_jacobian(np.sin, x, h=bad)
        with pytest.raises(ValueError, match=r"numerical_gradient: h \(the finite-difference step\)"):
            checks.numerical_gradient(lambda v: float(np.sum(v)), x, h=bad)


def test_numerical_jacobian_explains_a_misbehaving_f(rng):
    x = rng.standard_normal(3)
    calls = []

    def shrinking(v):
        calls.append(1)
        return v[: 3 - min(len(calls) - 1, 1)]

    with pytest.raises(ValueError, match=r"f\(x\) has shape \(3,\) but f returned shape \(2,\) at a perturbed point"):
        checks.numerical_jacobian(shrinking, x)
    with np.errstate(invalid="ignore", divide="ignore"):
        with pytest.raises(ValueError, match=r"f is not finite \(NaN or infinity\) at x;"):
            checks.numerical_jacobian(lambda v: np.log(v - 10), x)
        # 1 / (v - x - h e_1) has a pole exactly at x + h along coordinate 1
        with pytest.raises(ValueError, match=r"f is not finite .* at x \+ h at index \(1,\)"):
            checks.numerical_jacobian(lambda v: 1 / (v - x - np.array([0.0, 0.5, 0.0]) + np.array([1, 0, 1])), x, h=0.5)
    with pytest.raises(ValueError, match="x contains non-finite values"):
        checks.numerical_jacobian(np.sin, [1.0, np.inf])


def test_relative_error_floor_and_non_finite_values():
    assert checks.relative_error([0.0, 0.0], [0.0, 0.0], floor=0) == 0.0
    assert checks.relative_error([1e-20], [0.0]) == pytest.approx(1e-8)  # the default floor 1e-12
    assert checks.relative_error([1e-20], [0.0], floor=0) == 1.0
    assert checks.relative_error([1.0, 2.0], [1.0, 2.2], floor=np.float32(1.0)) == pytest.approx(0.2 / 2.2)
    for bad in (-1e-12, float("nan"), float("inf"), "0", True):
        with pytest.raises(ValueError, match="relative_error: floor must be a"):
            checks.relative_error([1.0], [1.0], floor=bad)
    for a, b in (([np.nan], [1.0]), ([1.0], [np.nan]), ([np.inf], [np.inf]), ([1.0, -np.inf], [1.0, 0.0])):
        assert np.isnan(checks.relative_error(a, b)), (a, b)  # so that `relative_error(...) < tol` fails


# --------------------------------------------------------------------------- network: batch sizes, sizes, seeds
def test_batch_size_values(rng):
    net = network.FeedForwardNet(3, [4], 3, seed=0, dtype=np.float64)
    X, y = rng.standard_normal((10, 3)), rng.integers(0, 3, 10)
    ref_logits, (ref_loss, ref_acc) = net.logits_of(X), net.evaluate(X, y)
    for bs in (1, 3, 10, 11, np.int64(4)):
        np.testing.assert_allclose(net.logits_of(X, bs), ref_logits, rtol=1e-12)
        np.testing.assert_allclose(net.predict_proba(X, batch_size=bs), net.predict_proba(X), rtol=1e-12)
        np.testing.assert_array_equal(net.predict(X, bs), ref_logits.argmax(1))
        loss, acc = net.evaluate(X, y, bs)
        assert acc == ref_acc and loss == pytest.approx(ref_loss, rel=1e-12)
        assert net.accuracy(X, y, batch_size=bs) == ref_acc
    for method in ("logits_of", "predict", "predict_proba"):
        for bad in (0, -1, 2.5, True, None):
            with pytest.raises(ValueError, match=rf"{method}: batch_size must be a positive integer"):
                getattr(net, method)(X, bad)
    with pytest.raises(ValueError, match="evaluate: batch_size must be a positive integer, got -4"):
        net.evaluate(X, y, -4)


def test_hidden_sizes_forms_and_seeds():
    shapes = lambda n: [p.value.shape for p in n.params]  # noqa: E731
    assert shapes(network.FeedForwardNet(3, 4, 2)) == shapes(network.FeedForwardNet(3, [4], 2))
    assert shapes(network.FeedForwardNet(3, (4, 5), 2)) == shapes(network.FeedForwardNet(3, np.array([4, 5]), 2))
    assert len(network.FeedForwardNet(3, [], 2).layers) == 1
    for bad in ("128", None, 4.0, {4: 1}):
        with pytest.raises((TypeError, ValueError), match="hidden_sizes"):
            network.FeedForwardNet(3, bad, 2)
    same = [network.FeedForwardNet(3, [4], 2, seed=s).get_weights()[0][0] for s in (5, np.int64(5))]
    np.testing.assert_array_equal(*same)
    from_rng = network.FeedForwardNet(3, [4], 2, seed=99, rng=np.random.default_rng(5)).get_weights()[0][0]
    np.testing.assert_array_equal(from_rng, same[0])  # rng takes precedence over seed
    a, b = (network.FeedForwardNet(3, [4], 2, seed=None).get_weights()[0][0] for _ in range(2))
    assert not np.array_equal(a, b)  # seed=None: fresh entropy
    for bad in (-1, 1.5, "0"):
        with pytest.raises(ValueError, match="seed must be a non-negative integer or None"):
            network.FeedForwardNet(3, [4], 2, seed=bad)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        network.FeedForwardNet(3, [4], 2, rng=0)
    with pytest.raises(ValueError, match="in_features must be a positive integer, got True"):
        network.FeedForwardNet(True, [4], 2)


def test_flops_per_example_and_iterate_minibatches_arguments():
    assert network.flops_per_example((3, 4)) == network.flops_per_example(np.array([3, 4]))
    assert network.flops_per_example([3, 4], train=False) == 2 * 12
    for bad in ([3], [], "34", [3, 0], [3, 2.5]):
        with pytest.raises(ValueError, match="flops_per_example"):
            network.flops_per_example(bad)
    batches = list(network.iterate_minibatches(np.int64(7), 3, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [3, 3, 1] and sorted(np.concatenate(batches)) == list(range(7))
    for args, exc, message in (((5, 0, np.random.default_rng(0)), ValueError, "batch_size must be a positive integer"),
                               ((5, 2, 0), TypeError, "rng must be a numpy.random.Generator"),
                               ((-1, 2, np.random.default_rng(0)), ValueError, r"n \(the number of examples\)")):
        with pytest.raises(exc, match=message):
            network.iterate_minibatches(*args)  # raised at the call, not at the first next()


def test_train_matches_iterate_minibatches_order():
    """train's minibatch order is iterate_minibatches' order for the same seed (one epoch, SGD)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 3)), rng.integers(0, 2, 10)
    net = network.FeedForwardNet(3, [4], 2, seed=0, dtype=np.float64)
    ref = network.FeedForwardNet(3, [4], 2, seed=0, dtype=np.float64)
    network.train(net, X, y, optimizer="sgd", lr=0.1, batch_size=4, num_epochs=1, seed=3)
    opt = network.make_optimizer("sgd", [p.value for p in ref.params], 0.1)
    for idx in network.iterate_minibatches(10, 4, np.random.default_rng(3)):
        ref.loss_and_grads(X[idx], y[idx])
        opt.step([p.grad for p in ref.params])
    for (W0, b0), (W1, b1) in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(W0, W1)
        np.testing.assert_array_equal(b0, b1)


# --------------------------------------------------------------------------- graph: deep graphs, order
def test_deep_graphs_run_without_recursion_limits():
    x = G.Input("x", value=np.full((2, 1), 0.5), requires_grad=True)
    h = x
    for _ in range(3 * sys.getrecursionlimit()):
        h = G.Identity(h)
    loss = G.MSE(h, np.zeros((2, 1)))
    assert float(G.forward(loss)) == pytest.approx(0.25)  # (0.5^2 + 0.5^2) / 2
    G.backward(loss)
    np.testing.assert_allclose(x.grad, [[0.5], [0.5]])


def test_topological_order_is_the_recursive_depth_first_order(rng):
    """The explicit-stack sort returns exactly what the recursive definition returns."""
    def recursive(root):
        order, seen = [], set()

        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                for inp in node.inputs:
                    visit(inp)
                order.append(node)

        visit(root)
        return order

    leaves = [G.Input(f"in{i}", value=np.zeros((1, 1))) for i in range(4)]
    nodes = list(leaves)
    for i in range(40):  # a random DAG with shared inputs
        picks = rng.choice(len(nodes), size=2, replace=True)
        nodes.append(G.MSE(nodes[picks[0]], nodes[picks[1]], name=f"n{i}") if i % 3 == 0
                     else G.Tanh(nodes[picks[0]], name=f"n{i}"))
    root = G.MSE(nodes[-1], nodes[-2], name="root")
    assert [id(n) for n in G.topological_sort(root)] == [id(n) for n in recursive(root)]


# --------------------------------------------------------------------------- training helpers
def test_training_helper_arguments():
    X, y = np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1])
    loader = training.make_loader(X, y, np.int64(2), seed=np.int64(1))
    assert loader.batch_size == 2
    for kwargs, exc, message in ((dict(batch_size=True), ValueError, "batch_size must be a positive integer"),
                                 (dict(batch_size=2, shuffle="no"), TypeError, "shuffle must be True or False"),
                                 (dict(batch_size=2, seed=-1), ValueError, "seed must be a non-negative integer")):
        with pytest.raises(exc, match=message):
            training.make_loader(X, y, **kwargs)
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = training.fit(model, loader, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, num_epochs=np.int64(2), progress=False)
    assert hist.epoch.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"fit: loss_fn must average over the batch \(reduction='mean'\)"):
        training.fit(model, loader, loss_fn=nn.CrossEntropyLoss(reduction="sum"), optimizer=opt, num_epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"evaluate: loss_fn must average over the batch"):
        training.evaluate(model, loader, nn.CrossEntropyLoss(reduction="none"))
    assert training.evaluate(model, loader, F.cross_entropy)[1] == training.evaluate(model, loader, nn.CrossEntropyLoss())[1]
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="predict: batch_size must be a positive integer"):
            training.predict(model, X, batch_size=bad)
    with pytest.raises(TypeError, match="flatten must be True or False"):
        training.as_float_images(np.zeros((1, 2, 2), np.uint8), flatten="yes")


# --------------------------------------------------------------------------- models
def test_model_arguments_accept_numpy_integers_and_refuse_bools():
    m = models.SmallCNN(num_classes=np.int64(3), channels=(np.int64(2), 3), feature_dim=np.int32(4), seed=np.int64(0))
    assert (m.num_classes, m.channels, m.feature_dim) == (3, (2, 3), 4)
    assert m.config() == {"num_classes": 3, "channels": [2, 3], "feature_dim": 4}
    assert m.replace_head(np.int64(5)).head.out_features == 5
    for kwargs, message in ((dict(num_classes=True), "num_classes"), (dict(channels=4), "channels"),
                            (dict(channels=(2, True)), "channels"), (dict(feature_dim=2.0), "feature_dim"),
                            (dict(seed=True), "seed")):
        with pytest.raises(ValueError, match=message):
            models.SmallCNN(**kwargs)
    with pytest.raises(TypeError, match="trainable must be True or False"):
        models.set_backbone_trainable(m, "no")
    with pytest.raises(TypeError, match="count_parameters needs a torch.nn.Module"):
        models.count_parameters([1, 2])
    X = np.zeros((5, 28, 28), np.uint8)
    full = models.extract_features(m, X)
    np.testing.assert_allclose(models.extract_features(m, X, batch_size=np.int64(2)), full, rtol=1e-6, atol=1e-7)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="extract_features: batch_size must be a positive integer"):
            models.extract_features(m, X, batch_size=bad)
    with pytest.raises(TypeError, match=r"needs a model with a .features\(x\) method"):
        models.extract_features(nn.Linear(2, 2), X)
    with pytest.raises(ValueError, match="resnet18_features: size must be a positive integer"):
        models.resnet18_features(m, X, size=0)
    with pytest.raises(ValueError, match="name must be a plain file-name stem, got 3"):
        models.cached_weights_path(3, {})


# --------------------------------------------------------------------------- runtime and toy data
def test_runtime_seed_and_thread_arguments():
    assert runtime.seed_everything(np.int64(3)).integers(100) == np.random.default_rng(3).integers(100)
    runtime.seed_everything(2**32 - 1)
    for bad in (True, -1, 2**32, 1.0, "1"):
        with pytest.raises(ValueError, match=r"seed must be a non-negative integer at most 2\*\*32 - 1"):
            runtime.seed_everything(bad)
    runtime.set_threads(np.int64(1))
    assert torch.get_num_threads() == 1
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="threads must be a positive integer or None"):
            runtime.set_threads(bad)
    for bad in ("CUDA", "gpu", 0):
        with pytest.raises(ValueError, match="prefer must be 'cpu', 'cuda' or None"):
            runtime.get_device(bad)


def test_spirals_argument_types():
    a = toy_data.spirals(np.int64(5), np.int32(3), noise=np.float32(0.1), seed=np.int64(2), turns=1, shuffle=np.bool_(False))
    b = toy_data.spirals(5, 3, noise=0.1, seed=2, turns=1.0, shuffle=False)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    np.testing.assert_array_equal(a[1], b[1])
    for kwargs, exc in ((dict(noise="0.1"), TypeError), (dict(turns=None), TypeError), (dict(shuffle="no"), TypeError),
                        (dict(shuffle=1), TypeError), (dict(noise=True), TypeError), (dict(turns=-1.0), ValueError),
                        (dict(turns=float("inf")), ValueError), (dict(seed=True), TypeError)):
        with pytest.raises(exc, match=next(iter(kwargs))):
            toy_data.spirals(5, 3, **kwargs)


# --------------------------------------------------------------------------- the benchmark's command line
def _bench():
    spec = importlib.util.spec_from_file_location("engine_vs_torch", ROOT / "bench" / "engine_vs_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, words", [
    (["--repeats", "0"], "argument --repeats: expected a positive integer, got 0"),
    (["--batch-sizes", "64", "x"], "argument --batch-sizes: expected a positive integer, got 'x'"),
    (["--examples", "-5"], "argument --examples: expected a positive integer, got -5"),
    (["--threads", "0"], "argument --threads: expected a positive integer, got 0"),
])
def test_bench_cli_rejects_bad_arguments_with_a_usage_error(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _bench().main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_bench_copies_the_engine_weights_into_torch():
    bench = _bench()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 784)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    _, weights, net = bench.engine_epoch(X, y, batch_size=8)
    _, model = bench.torch_epoch(X, y, 8, weights)
    with torch.no_grad():
        out = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, net.logits_of(X), rtol=1e-5, atol=1e-5)
