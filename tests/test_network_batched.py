"""S seeds trained together (network.BatchedNet, network.train_seeds) against S separate runs.

Seed k of a BatchedNet must train exactly as ``train(FeedForwardNet(..., seed=k), ..., seed=k)``:
the same initial weights, the same minibatch order, the same arithmetic. The passes are the same
floating-point operations in the same order (one matrix product per seed and layer, elementwise
optimizer updates), so on the machines tried the results agree to the last bit; the tests allow
1e-12 relative in float64 and 1e-5 in float32, the room a BLAS library would need if it chose
another kernel for a stacked product than for a single one.
"""
from __future__ import annotations

import numpy as np
import pytest

from course_utils import network

OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam"]
LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 0.01, "adam": 0.01, "nadam": 0.01}
RTOL = {np.float64: 1e-12, np.float32: 1e-5}
COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "diverged"]


def blobs(n=150, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    X = rng.standard_normal((k, d))[y] + 0.8 * rng.standard_normal((n, d))
    return X, y


def separate(seed, X, y, net_kw, train_kw, sizes=(6, [5, 4], 3)):
    net = network.FeedForwardNet(*sizes, seed=seed, **net_kw)
    history = network.train(net, X, y, seed=seed, **train_kw)
    return net, history


def assert_same_run(bn, k, history, net, rtol):
    """Seed k of the batched run (its weights and its history rows) equals the separate run."""
    for (W0, b0), (W1, b1) in zip(net.get_weights(), bn.weights_of(k)):
        np.testing.assert_allclose(W1, W0, rtol=rtol, atol=rtol * 1e-3)
        np.testing.assert_allclose(b1, b0, rtol=rtol, atol=rtol * 1e-3)
    mine = history[history["seed"] == bn.seeds[k]].reset_index(drop=True)
    assert len(mine) == len(net_history := getattr(net, "_history")), (len(mine), len(net_history))
    for col in COLUMNS:
        np.testing.assert_allclose(mine[col].astype(float), net_history[col].astype(float), rtol=rtol, atol=1e-12,
                                   err_msg=col)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_seeds_together_equal_separate_runs_for_every_optimizer(optimizer, dtype):
    X, y = blobs()
    X_val, y_val = blobs(40, seed=1)
    seeds = [3, 5, 11]
    net_kw = dict(activation="tanh", init="he", weight_decay=0.01, dtype=dtype)
    train_kw = dict(optimizer=optimizer, lr=LR[optimizer], batch_size=16, num_epochs=3, X_val=X_val, y_val=y_val,
                    schedule="cosine")
    bn = network.BatchedNet(6, [5, 4], 3, seeds=seeds, **net_kw)
    history = network.train_seeds(bn, X, y, **train_kw)
    assert list(history.columns) == ["seed", *COLUMNS[:-1], "seconds", "diverged"]
    assert history["seed"].tolist() == [s for _ in range(3) for s in seeds]
    for k, seed in enumerate(seeds):
        net, net._history = separate(seed, X, y, net_kw, train_kw)
        assert_same_run(bn, k, history, net, RTOL[dtype])


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mean_squared_error"])
def test_every_activation_and_loss(activation, loss):
    X, y = blobs(90)
    net_kw = dict(activation=activation, loss=loss, dtype=np.float64)
    train_kw = dict(optimizer="adam", lr=0.02, batch_size=20, num_epochs=2, X_val=X[:30], y_val=y[:30])
    bn = network.BatchedNet(6, [5, 4], 3, seeds=[0, 1], **net_kw)
    history = network.train_seeds(bn, X, y, **train_kw)
    for k in range(2):
        net, net._history = separate(k, X, y, net_kw, train_kw)
        assert_same_run(bn, k, history, net, 1e-12)


def test_initial_weights_are_each_seeds_own():
    bn = network.BatchedNet(6, [5], 3, seeds=[7, 8], init="random", dtype=np.float64)
    for k, seed in enumerate([7, 8]):
        ref = network.FeedForwardNet(6, [5], 3, seed=seed, init="random", dtype=np.float64).get_weights()
        for (W0, b0), (W1, b1) in zip(ref, bn.weights_of(k)):
            np.testing.assert_array_equal(W0, W1)
            np.testing.assert_array_equal(b0, b1)
    W = bn.layers[0].W.value
    assert W.shape == (2, 5, 6) and not np.array_equal(W[0], W[1])
    # every parameter and gradient is a view of the one flat buffer the optimizer updates
    assert all(np.shares_memory(p.value, bn.flat) for p in bn.params)
    assert all(np.shares_memory(p.grad, bn.flat_grad) for p in bn.params)
    assert bn.flat.size == 2 * sum(p.value[0].size for p in bn.params)


def test_each_seed_its_own_data_subset():
    X_all, y_all = blobs(300)
    rng = np.random.default_rng(0)
    subsets = [rng.choice(300, size=100, replace=False) for _ in range(3)]
    Xs, ys = np.stack([X_all[s] for s in subsets]), np.stack([y_all[s] for s in subsets])
    net_kw = dict(dtype=np.float64)
    train_kw = dict(optimizer="nadam", lr=0.01, batch_size=32, num_epochs=2)
    bn = network.BatchedNet(6, [5, 4], 3, seeds=[0, 1, 2], **net_kw)
    history = network.train_seeds(bn, Xs, ys, **train_kw)
    for k in range(3):
        net, net._history = separate(k, Xs[k], ys[k], net_kw, train_kw)
        assert_same_run(bn, k, history, net, 1e-12)


def test_a_diverging_seed_stops_alone():
    """Seed 1's data holds a NaN: its run stops where the separate run stops; the others are untouched."""
    X, y = blobs(96)
    Xs, ys = np.stack([X, X, X]), np.stack([y, y, y])
    Xs[1, 50, 0] = np.nan  # reached in the first epoch, after some steps
    net_kw = dict(dtype=np.float64)
    train_kw = dict(optimizer="adam", lr=0.01, batch_size=16, num_epochs=3, X_val=X[:30], y_val=y[:30],
                    schedule="cosine")
    bn = network.BatchedNet(6, [5, 4], 3, seeds=[0, 1, 2], **net_kw)
    history = network.train_seeds(bn, Xs, ys, **train_kw)
    by_seed = dict(tuple(history.groupby("seed")))
    assert len(by_seed[1]) == 1 and bool(by_seed[1]["diverged"].iloc[0]) and np.isnan(by_seed[1]["train_loss"]).all()
    assert len(by_seed[0]) == len(by_seed[2]) == 3 and not history.query("seed != 1")["diverged"].any()
    for k in range(3):
        net, net._history = separate(k, Xs[k], ys[k], net_kw, train_kw)
        assert_same_run(bn, k, history, net, 1e-12)  # also the stopped seed: its weights before the NaN


def test_a_seed_that_diverges_on_its_own_leaves_the_others_alone():
    """Divergence from the arithmetic itself (no NaN in the data): seed 0's inputs are so large
    that SGD at this rate blows up; seed 1 trains on the same rows at their usual size."""
    X, y = blobs(96)
    Xs, ys = np.stack([X * 1e3, X]), np.stack([y, y])
    net_kw = dict(activation="identity", dtype=np.float64)
    train_kw = dict(optimizer="sgd", lr=0.1, batch_size=32, num_epochs=30)
    bn = network.BatchedNet(6, [5, 4], 3, seeds=[0, 1], **net_kw)
    history = network.train_seeds(bn, Xs, ys, **train_kw)
    last = history.groupby("seed").tail(1).set_index("seed")
    assert bool(last.loc[0, "diverged"]) and last.loc[0, "epoch"] < 30
    assert not last.loc[1, "diverged"] and last.loc[1, "epoch"] == 30
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(2):
            net, net._history = separate(k, Xs[k], ys[k], net_kw, train_kw)
            assert_same_run(bn, k, history, net, 1e-12)


def test_a_seed_stopped_early_by_the_callback_keeps_its_weights_and_the_others_go_on():
    X, y = blobs()
    seen = []

    def stop_seed_4_after_epoch_2(epoch, row):
        seen.append((row.get("seed"), epoch))
        return row["seed"] == 4 and epoch == 2

    net_kw = dict(dtype=np.float64)
    train_kw = dict(optimizer="rmsprop", lr=0.01, batch_size=25, num_epochs=4, X_val=X, y_val=y, schedule="cosine",
                    callback=stop_seed_4_after_epoch_2)
    bn = network.BatchedNet(6, [5, 4], 3, seeds=[4, 9], **net_kw)
    history = network.train_seeds(bn, X, y, **train_kw)
    assert seen == [(4, 1), (9, 1), (4, 2), (9, 2), (9, 3), (9, 4)]
    seen.clear()
    assert history.groupby("seed").size().to_dict() == {4: 2, 9: 4}
    for k, seed in enumerate([4, 9]):
        alone = dict(train_kw, callback=lambda epoch, row, seed=seed: stop_seed_4_after_epoch_2(epoch, {"seed": seed}))
        net, net._history = separate(seed, X, y, net_kw, alone)
        assert_same_run(bn, k, history, net, 1e-12)
    assert len(network.train(network.FeedForwardNet(6, [5], 3), X, y, num_epochs=4,
                             callback=lambda epoch, row: epoch == 3)) == 3


def test_inference_of_every_seed_equals_its_network():
    X, y = blobs(60)
    bn = network.BatchedNet(6, [5], 3, seeds=[0, 1, 2], dtype=np.float64)
    network.train_seeds(bn, X, y, optimizer="adam", lr=0.05, batch_size=16, num_epochs=2)
    logits = bn.logits_of(X, batch_size=7)
    losses, accs = bn.evaluate(X, y, batch_size=13)
    np.testing.assert_allclose(bn.accuracy(X, y), accs)
    for k in range(3):
        net = bn.network(k)
        assert isinstance(net, network.FeedForwardNet)
        np.testing.assert_allclose(logits[k], net.logits_of(X), rtol=1e-12)
        loss, acc = net.evaluate(X, y)
        assert accs[k] == acc and losses[k] == pytest.approx(loss, rel=1e-12)


def test_bad_arguments_raise_before_anything_changes():
    X, y = blobs(40)
    bn = network.BatchedNet(6, [5], 3, seeds=[0, 1], dtype=np.float64)
    before = bn.flat.copy()
    bad = [
        (dict(X_train=np.stack([X] * 3), y_train=np.stack([y] * 3)), ValueError, "holds 3 data sets for 2 seeds"),
        (dict(X_train=np.stack([X] * 2), y_train=y), ValueError, r"y_train must have shape \(2, 40\)"),
        (dict(X_train=np.zeros((0, 6)), y_train=np.zeros(0, int)), ValueError, "X is an empty batch"),
        (dict(X_train=X[:, :5]), ValueError, r"X must have shape \(batch, 6\)"),
        (dict(optimizer=object()), TypeError, "optimizer must be a name"),
        (dict(optimizer="adagrad"), ValueError, "unknown optimizer 'adagrad'"),
        (dict(X_val=X), ValueError, "pass X_val and y_val together"),
        (dict(batch_size=0), ValueError, "batch_size must be a positive integer"),
        (dict(schedule="step"), ValueError, "unknown schedule"),
        (dict(callback=3), TypeError, "callback must be callable"),
        (dict(lr=-1.0), ValueError, r"lr \(learning rate\) must be"),
    ]
    for kwargs, exc, message in bad:
        args = dict(X_train=X, y_train=y) | kwargs
        with pytest.raises(exc, match=message):
            network.train_seeds(bn, args.pop("X_train"), args.pop("y_train"), **args)
        np.testing.assert_array_equal(bn.flat, before)
    with pytest.raises(TypeError, match="net must be a BatchedNet"):
        network.train_seeds(network.FeedForwardNet(6, [5], 3), X, y)
    for seeds, exc, message in (([], ValueError, "seeds is empty"), (3, TypeError, "seeds must be a list"),
                                ([0, -1], ValueError, r"seeds\[1\] must be a non-negative integer")):
        with pytest.raises(exc, match=message):
            network.BatchedNet(6, [5], 3, seeds=seeds)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        network.BatchedNet(6, [5], 3, seeds=[0], activation="gelu")
    with pytest.raises(ValueError, match="set_weights_of: layer 'output': expected W"):
        bn.set_weights_of(0, [bn.weights_of(0)[0], (np.zeros((2, 2)), np.zeros(3))])
    np.testing.assert_array_equal(bn.flat, before)
