"""Unit tests of course_utils.network (chapter 5's from-scratch classifier) and course_utils.sweeps.

Whole-network gradients against central finite differences (float64) and against a PyTorch model
with copied weights; training steps against torch.optim; shapes, errors, determinism.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import network, optim
from course_utils.checks import numerical_gradient, relative_error

ACTS = ["identity", "sigmoid", "tanh", "relu"]
LOSSES = ["cross_entropy", "mean_squared_error"]
TORCH_ACT = {"identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def small_batch(seed=0, n=7, d=6, k=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, k, size=n)


def make_net(act="tanh", loss="cross_entropy", wd=0.0, hidden=(5, 4), init="xavier", dtype=np.float64, seed=0, d=6, k=3):
    return network.FeedForwardNet(d, list(hidden), k, activation=act, init=init, loss=loss, weight_decay=wd,
                                  dtype=dtype, seed=seed)


def perturb_biases(net, seed=1):
    """Non-zero biases, so the bias gradients are exercised in a generic point."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        layer.b.value[...] = 0.3 * rng.standard_normal(layer.b.value.shape)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_whole_network_gradients_match_finite_differences(act, loss):
    X, y = small_batch()
    net = make_net(act, loss, wd=0.05, init="he")
    perturb_biases(net)
    net.loss_and_grads(X, y)
    analytic = [p.grad.copy() for p in net.params]
    for prm, g in zip(net.params, analytic):
        original = prm.value.copy()

        def f(v, prm=prm):
            prm.value[...] = v
            return net.objective(X, y)

        numeric = numerical_gradient(f, original)
        prm.value[...] = original
        assert relative_error(g, numeric) < 1e-6, (act, loss, prm.name)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_whole_network_matches_torch_with_copied_weights(act, loss):
    X, y = small_batch(seed=3, n=9)
    wd = 0.01
    net = make_net(act, loss, wd=wd, hidden=(5, 4, 4))
    perturb_biases(net)
    data_loss = net.loss_and_grads(X, y)
    tensors = [torch.tensor(p.value, requires_grad=True) for p in net.params]
    h = torch.tensor(X)
    pairs = list(zip(tensors[0::2], tensors[1::2]))
    for i, (W, b) in enumerate(pairs):
        h = h @ W.T + b
        if i < len(pairs) - 1:
            h = TORCH_ACT[act](h)
    yt = torch.tensor(y)
    if loss == "cross_entropy":
        L = F.cross_entropy(h, yt)
    else:
        L = ((torch.softmax(h, 1) - F.one_hot(yt, 3).double()) ** 2).sum(1).mean()
    penalty = 0.5 * wd * sum((W ** 2).sum() for W, _ in pairs)
    (L + penalty).backward()
    np.testing.assert_allclose(data_loss, L.item(), rtol=1e-12)
    np.testing.assert_allclose(net.penalty(), penalty.item(), rtol=1e-12)
    for prm, t in zip(net.params, tensors):
        np.testing.assert_allclose(prm.grad, t.grad.numpy(), rtol=1e-9, atol=1e-13, err_msg=prm.name)


def test_weight_decay_touches_weights_not_biases():
    X, y = small_batch()
    plain, decayed = make_net(wd=0.0), make_net(wd=0.5)
    plain.loss_and_grads(X, y)
    decayed.loss_and_grads(X, y)
    for p0, p1 in zip(plain.params, decayed.params):
        if p0.name.endswith(".W"):
            np.testing.assert_allclose(p1.grad - p0.grad, 0.5 * p0.value, rtol=1e-12, atol=1e-15)
        else:
            np.testing.assert_array_equal(p1.grad, p0.grad)


# --------------------------------------------------------------------------- structure and errors
@pytest.mark.parametrize("hidden", [[], [3], [4, 4, 4, 4, 4]])
def test_any_depth(hidden):
    net = network.FeedForwardNet(6, hidden, 3, seed=0, dtype=np.float64)
    sizes = [6, *hidden, 3]
    assert [tuple(p.value.shape) for p in net.params] == [s for a, b in zip(sizes[:-1], sizes[1:]) for s in ((b, a), (b,))]
    assert net.num_parameters == sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    X, _ = small_batch()
    assert net.logits_of(X).shape == (7, 3)
    np.testing.assert_allclose(net.predict_proba(X).sum(1), 1.0)


def test_inits():
    big = lambda init: network.FeedForwardNet(400, [300], 10, init=init, seed=0)  # noqa: E731
    W = big("random").layers[0].W.value
    assert abs(W.std() - 0.01) < 0.001
    W = big("xavier").layers[0].W.value
    bound = np.sqrt(6 / 700)
    assert W.max() <= bound and W.min() >= -bound and W.max() > 0.95 * bound
    W = big("he").layers[0].W.value
    assert abs(W.std() - np.sqrt(2 / 400)) < 0.003
    assert all((layer.b.value == 0).all() for layer in big("he").layers)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown init 'glorot'.*'xavier'"):
        network.FeedForwardNet(6, [4], 3, init="glorot")
    with pytest.raises(ValueError, match="unknown activation 'gelu'.*'relu'"):
        network.FeedForwardNet(6, [4], 3, activation="gelu")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        network.FeedForwardNet(6, [4], 3, loss="hinge")
    with pytest.raises(ValueError, match="hidden_sizes\\[1\\] must be a positive integer"):
        network.FeedForwardNet(6, [4, 0], 3)
    with pytest.raises(ValueError, match="weight_decay must be a finite non-negative number, got -1"):
        network.FeedForwardNet(6, [4], 3, weight_decay=-1)
    net = make_net()
    with pytest.raises(ValueError, match=r"X must have shape \(batch, 6\), got \(7, 5\)"):
        net.evaluate(np.zeros((7, 5)), np.zeros(7, int))
    with pytest.raises(ValueError, match=r"y must have shape \(7,\)"):
        net.evaluate(np.zeros((7, 6)), np.zeros(6, int))
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
        network.make_optimizer("adagrad", [np.zeros(2)], 0.1)
    with pytest.raises(ValueError, match="unknown schedule"):
        network.train(net, *small_batch(), schedule="step")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        network.train(net, *small_batch(), batch_size=0)


def test_make_optimizer_maps_names_and_hyperparameters():
    p = [np.zeros(3)]
    assert isinstance(network.make_optimizer("nag", p, 0.1, beta=0.7), optim.Nesterov)
    assert network.make_optimizer("nag", p, 0.1, beta=0.7).beta == 0.7
    opt = network.make_optimizer("rmsprop", p, 0.1, beta=0.8, eps=1e-5, beta1=0.1)  # beta1 unused by rmsprop: ignored
    assert (opt.beta, opt.eps) == (0.8, 1e-5)
    opt = network.make_optimizer("nadam", p, 0.1, beta1=0.8, beta2=0.99, eps=None)
    assert (opt.beta1, opt.beta2, opt.eps) == (0.8, 0.99, 1e-8)
    for name, cls in [("sgd", optim.SGD), ("momentum", optim.Momentum), ("adam", optim.Adam)]:
        assert type(network.make_optimizer(name, p, 0.1)) is cls


def test_flops_per_example():
    assert network.flops_per_example([784, 128, 128, 10], train=False) == 2 * (784 * 128 + 128 * 128 + 1280)
    assert network.flops_per_example([784, 128, 128, 10]) == 2 * (3 * (784 * 128 + 128 * 128 + 1280) - 784 * 128)


# --------------------------------------------------------------------------- training
def blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    X = centers[y] + 0.6 * rng.standard_normal((n, 2))
    return X.astype(np.float32), y


@pytest.mark.parametrize("opt", ["sgd", "momentum", "nag", "rmsprop", "adam", "nadam"])
def test_training_learns_and_keeps_arrays_in_place(opt):
    X, y = blobs()
    net = network.FeedForwardNet(2, [16], 3, activation="tanh", seed=0)
    arrays = [id(p.value) for p in net.params]
    lr = 0.1 if opt in {"sgd", "momentum", "nag"} else 0.01
    hist = network.train(net, X, y, X_val=X, y_val=y, optimizer=opt, lr=lr, batch_size=32, num_epochs=15, seed=0)
    assert list(hist.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "diverged"]
    assert hist.train_loss.iloc[-1] < hist.train_loss.iloc[0]
    assert net.accuracy(X, y) > 0.95
    assert [id(p.value) for p in net.params] == arrays


def test_training_is_deterministic_and_cosine_ends_near_zero():
    X, y = blobs()
    runs = []
    for _ in range(2):
        net = network.FeedForwardNet(2, [8, 8], 3, seed=4)
        hist = network.train(net, X, y, optimizer="adam", lr=0.01, batch_size=16, num_epochs=3, schedule="cosine", seed=2)
        runs.append((net.get_weights(), hist))
    for (W0, b0), (W1, b1) in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(W0, W1)
        np.testing.assert_array_equal(b0, b1)
    lr_last = runs[0][1].lr.iloc[-1]
    steps = 3 * int(np.ceil(400 / 16))
    np.testing.assert_allclose(lr_last, 0.01 * 0.5 * (1 + np.cos(np.pi * (steps - 1) / steps)))


def test_full_batch_adam_steps_match_torch():
    """Three full-batch steps of network.train with Adam = the same steps of torch.optim.Adam."""
    X, y = small_batch(seed=5, n=12)
    net = make_net("relu", "cross_entropy", hidden=(5,))
    perturb_biases(net)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for lin, (W, b) in zip([model[0], model[2]], net.get_weights()):
            lin.weight.copy_(torch.tensor(W))
            lin.bias.copy_(torch.tensor(b))
    network.train(net, X, y, optimizer="adam", lr=0.05, batch_size=12, num_epochs=3, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(torch.tensor(X)), torch.tensor(y)).backward()
        opt.step()
    for lin, (W, b) in zip([model[0], model[2]], net.get_weights()):
        np.testing.assert_allclose(W, lin.weight.detach().numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b, lin.bias.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_divergence_is_reported_not_raised():
    X, y = blobs(60)
    X[5, 0] = np.nan
    net = network.FeedForwardNet(2, [4], 3, seed=0)
    hist = network.train(net, X, y, X_val=X, y_val=y, batch_size=60, num_epochs=3)
    assert bool(hist.diverged.iloc[-1]) and len(hist) == 1 and np.isnan(hist.train_loss.iloc[0])


def test_callback_sees_every_epoch():
    X, y = blobs(50)
    seen = []
    network.train(network.FeedForwardNet(2, [4], 3), X, y, X_val=X, y_val=y, num_epochs=4, batch_size=10,
                  callback=lambda e, row: seen.append((e, round(row["val_acc"], 6))))
    assert [e for e, _ in seen] == [1, 2, 3, 4]


def test_standardizer():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(50, 4, 4), dtype=np.uint8)
    sc = network.Standardizer()
    with pytest.raises(RuntimeError, match="call fit"):
        sc.transform(imgs)
    Z = sc.fit_transform(imgs)
    assert Z.shape == (50, 16) and Z.dtype == np.float32
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(sc.std, (imgs / 255).std())  # one overall standard deviation
    np.testing.assert_allclose(Z * sc.std + sc.mean, imgs.reshape(50, 16) / 255, atol=1e-6)
    with pytest.raises(ValueError, match="fit on 16 features, got 9"):
        sc.transform(imgs[:, :3, :3])


# --------------------------------------------------------------------------- sweeps
def _toy_study(seed=0, n_trials=12):
    from course_utils import sweeps

    space = {"a": [1, 2, 3], "b": ["x", "y"], "c": [0.1, 1.0]}

    def objective(trial):
        p = sweeps.suggest(trial, space)
        cb = sweeps.pruning_callback(trial)
        value = 0.0
        for epoch in (1, 2, 3):
            value = 0.2 * p["a"] + (0.3 if p["b"] == "y" else 0.0) + 0.01 * epoch + 0.05 * p["c"]
            cb(epoch, {"val_acc": value})
        return value

    study = sweeps.make_study(seed, n_startup_trials=4, pruner_startup_trials=3)
    sweeps.run_study(study, objective, n_trials, progress=False)
    return study, space


def test_sweep_is_reproducible_and_tables_read_it():
    from course_utils import sweeps

    s1, space = _toy_study()
    s2, _ = _toy_study()
    t1, t2 = sweeps.results_table(s1, list(space)), sweeps.results_table(s2, list(space))
    assert t1.equals(t2)
    assert t1.iloc[0]["state"] == "complete" and t1.iloc[0]["val_acc"] == round(s1.best_value, 3)
    imp = sweeps.param_importances(s1, seed=0)
    assert set(imp.index) <= set(space) and abs(imp.sum() - 1) < 0.05
    assert imp.equals(sweeps.param_importances(s2, seed=0))
    rho = sweeps.spearman_table(t1, list(space))
    assert "b" not in rho.index and rho["a"] > 0.5
    mm = sweeps.marginal_means(t1, list(space))
    assert set(mm.columns) == {"parameter", "choice", "trials", "mean", "best"}
    ax = sweeps.parallel_coordinates(t1, list(space), space=space)
    assert ax.get_title().startswith("Parallel coordinates")
    import matplotlib.pyplot as plt

    plt.close("all")
    assert sweeps.space_size(space) == 3 * 2 * 2  # SOURCE_SPACE's size belongs to the sweeps tests


def test_suggest_rejects_empty_choices():
    from course_utils import sweeps

    study = sweeps.make_study(0)
    with pytest.raises(ValueError, match="space\\['a'\\] must be a non-empty list"):
        sweeps.suggest(study.ask(), {"a": []})
