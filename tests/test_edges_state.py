"""State after an error (issue 13, kind 5): a call that raises changes nothing.

Optimizers that reject a step keep parameters, state and step count; set_weights checks every
pair before copying; load_weights leaves the model unchanged for a file that does not fit;
save_weights leaves no temporary files; load_or_pretrain restores the random state even when
pretraining fails; backward() validates its seed gradient before touching any gradient;
network.train checks every argument before the first step; runtime.init before seeding.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils import graph as G
from course_utils import models, network, optim, runtime

OPTIMIZERS = [optim.SGD, optim.Momentum, optim.Nesterov, optim.RMSProp, optim.Adam, optim.NAdam]


def _snapshot(opt):
    return ([p.copy() for p in opt.params], opt.t,
            [{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in st.items()} for st in opt.state])


def _assert_same(opt, snap):
    params, t, state = snap
    assert opt.t == t
    for p, q in zip(opt.params, params):
        np.testing.assert_array_equal(p, q)
    for st, st0 in zip(opt.state, state):
        assert st.keys() == st0.keys()
        for k in st:
            if k != "tmp" and k != "denom":  # scratch buffers hold no state
                np.testing.assert_array_equal(st[k], st0[k])


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_rejected_step_changes_nothing(cls):
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    opt = cls(ws, lr=0.01, weight_decay=0.1)
    good = [np.ones((3, 2)), np.ones(2)]
    opt.step(good)
    opt.step(good)
    snap = _snapshot(opt)
    bad_calls = [
        [np.ones((3, 2))],                                # too few
        [np.ones((3, 2)), np.ones(3)],                    # the second has the wrong shape
        [np.ones((3, 2)), np.ones(2, dtype=np.int64)],    # the second is not float
        [np.ones((3, 2)), [1.0, 1.0]],                    # the second is not an array
        np.ones(2),                                       # not a list
    ]
    for grads in bad_calls:
        with pytest.raises((ValueError, TypeError)):
            opt.step(grads)
        _assert_same(opt, snap)
    ws[1].flags.writeable = False                         # a parameter made read-only after construction
    with pytest.raises(ValueError, match=r"params\[1\] has become read-only"):
        opt.step(good)
    ws[1].flags.writeable = True
    _assert_same(opt, snap)
    with pytest.raises(ValueError, match="weight_decay must be a finite non-negative number"):
        opt.weight_decay = -0.5
    with pytest.raises(ValueError, match=r"lr \(learning rate\) must be a finite non-negative number"):
        opt.lr = -1.0
    assert (opt.lr, opt.weight_decay) == (0.01, 0.1)
    opt.step(good)                                        # and it still works
    assert opt.t == 3


def test_weight_decay_can_change_between_steps_like_lr():
    w, ref = np.ones(3), np.ones(3)
    opt = optim.SGD([w], lr=0.1)
    opt.step([np.zeros(3)])
    np.testing.assert_array_equal(w, ref)
    opt.weight_decay = 0.5                                # now g <- g + 0.5 w
    opt.step([np.zeros(3)])
    np.testing.assert_allclose(w, ref - 0.1 * 0.5 * ref)


def test_an_optimizer_without_update_fails_at_construction():
    class NoUpdate(optim.Optimizer):
        pass

    w = np.ones(2)
    with pytest.raises(NotImplementedError, match="NoUpdate must implement update"):
        NoUpdate([w], lr=0.1)
    with pytest.raises(NotImplementedError, match="Optimizer must implement update"):
        optim.Optimizer([w], lr=0.1)


# --------------------------------------------------------------------------- network
def test_set_weights_checks_every_pair_before_copying():
    net = network.FeedForwardNet(4, [3], 2, seed=0)
    before = net.get_weights()
    good = [(np.zeros((3, 4)), np.zeros(3)), (np.zeros((2, 3)), np.zeros(2))]
    bad = [
        (good[:1], ValueError, r"set_weights: got 1 \(W, b\) pairs for 2 layers"),
        ([good[0], (np.zeros((3, 3)), np.zeros(2))], ValueError, r"layer 'output': expected W \(2, 3\) and b \(2,\), got \(3, 3\)"),
        ([good[0], (np.zeros((2, 3)),)], ValueError, r"weights\[1\] must be a \(W, b\) pair for layer 'output'"),
        ([good[0], (np.full((2, 3), np.nan), np.zeros(2))], ValueError, "layer 'output': W contains NaN"),
        ([good[0], (np.zeros((2, 3)), np.array(["a", "b"]))], TypeError, "layer 'output': b must hold real numbers"),
    ]
    for weights, exc, message in bad:
        with pytest.raises(exc, match=message):
            net.set_weights(weights)
        for (W0, b0), (W1, b1) in zip(before, net.get_weights()):
            np.testing.assert_array_equal(W0, W1)  # the first layer was not overwritten
            np.testing.assert_array_equal(b0, b1)
    arrays = [p.value for p in net.params]
    net.set_weights(good)
    assert all(p.value is a for p, a in zip(net.params, arrays)) and not net.params[0].value.any()


def test_train_checks_every_argument_before_the_first_step():
    X, y = np.ones((6, 4), np.float32), np.array([0, 1, 0, 1, 0, 1])
    net = network.FeedForwardNet(4, [3], 2, seed=0)
    before = net.get_weights()
    other = network.FeedForwardNet(4, [3], 2, seed=1)
    wrong_opt = optim.Adam([p.value for p in other.params])
    bad = [
        (dict(y_val=y), ValueError, "pass X_val and y_val together"),
        (dict(X_val=X), ValueError, "pass X_val and y_val together"),
        (dict(X_val=X, y_val=y[:3]), ValueError, r"train \(y_val\): y must have shape \(6,\)"),
        (dict(optimizer=wrong_opt), ValueError, "the optimizer must update this network's parameter arrays"),
        (dict(optimizer=optim.Adam([p.value for p in net.params]), optimizer_kwargs={"beta1": 0.5}), ValueError,
         "optimizer_kwargs apply only when optimizer is a name"),
        (dict(callback="print"), TypeError, "callback must be callable"),
        (dict(seed=-1), ValueError, "seed must be a non-negative integer"),
        (dict(seed=1.5), ValueError, "seed must be a non-negative integer"),
        (dict(num_epochs=0), ValueError, "num_epochs must be a positive integer"),
        (dict(batch_size=True), ValueError, "batch_size must be a positive integer"),
        (dict(optimizer="adam", optimizer_kwargs={"momentum": 0.9}), ValueError, "unknown optimizer hyperparameter"),
        (dict(lr=-1.0), ValueError, "lr .* must be a finite non-negative number"),
    ]
    for kwargs, exc, message in bad:
        with pytest.raises(exc, match=message):
            network.train(net, X, y, **kwargs)
    for (W0, b0), (W1, b1) in zip(before, net.get_weights()):
        np.testing.assert_array_equal(W0, W1)
        np.testing.assert_array_equal(b0, b1)
    # an optimizer built from the network's own arrays is accepted and used
    hist = network.train(net, X, y, optimizer=optim.SGD([p.value for p in net.params], lr=0.5), num_epochs=1,
                         batch_size=6, seed=np.int64(3))
    assert hist.lr.iloc[0] == 0.5 and not np.array_equal(before[0][0], net.get_weights()[0][0])


# --------------------------------------------------------------------------- graph
def test_backward_with_a_bad_grad_keeps_the_previous_gradients():
    rng = np.random.default_rng(0)
    x = G.Input("x", value=rng.standard_normal((3, 2)))
    lin = G.Linear(x, 2, 2, rng=rng, name="fc")
    G.forward(lin)
    G.backward(lin, grad=np.ones((3, 2)))
    kept = lin.W.grad.copy()
    for bad, message in ((np.ones(2), r"grad has shape \(2,\)"), (None, "needs a scalar root"),
                         (np.array([["a", "b"]] * 3), "grad must be a numeric array")):
        with pytest.raises(ValueError, match=message):
            G.backward(lin, grad=bad)
        np.testing.assert_array_equal(lin.W.grad, kept)


def test_graph_functions_need_a_node():
    for fn in (G.forward, G.backward, G.parameters, G.topological_sort):
        with pytest.raises(TypeError, match="expected a graph Node.*got ndarray"):
            fn(np.zeros(2))


# --------------------------------------------------------------------------- models
def test_load_weights_that_do_not_fit_leave_the_model_unchanged(tmp_path):
    """torch's load_state_dict copies the tensors that fit before it reports the ones that do not:
    load_weights checks every key and shape first."""
    src = models.SmallCNN(num_classes=5, channels=(4, 8), feature_dim=16, seed=0)  # backbone fits, head does not
    path = tmp_path / "w.pt"
    models.save_weights(src, path)
    dst = models.SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(models.WeightsError, match=r"does not fit.*head.weight: file \(5, 16\), model \(3, 16\)"):
        models.load_weights(dst, path)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed although the file was rejected"


def test_load_weights_rejects_an_unreadable_file(tmp_path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"not a torch file")
    sha = models.file_sha256(path)
    with pytest.raises(models.WeightsError, match="not a readable weights file"):
        models.load_weights(models.SmallCNN(channels=(2, 2), feature_dim=4), path, sha256=sha)


def test_save_weights_leaves_no_temporary_file_when_it_fails(tmp_path, monkeypatch):
    model = models.SmallCNN(channels=(2, 2), feature_dim=4, seed=0)

    # the weights are serialised in memory, then written to a temporary file beside the target: fail
    # after that file holds its bytes and before it is renamed into place
    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(models.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        models.save_weights(model, tmp_path / "m" / "w.pt", config={"a": 1})
    left = [p.name for p in (tmp_path / "m").iterdir() if p.name != ".locks"]  # the lock files stay
    assert not left, f"no partial or temporary file may remain: {left}"
    with pytest.raises(TypeError, match="JSON values"):
        models.save_weights(model, tmp_path / "n" / "w.pt", config={"a": float("nan")})
    assert not (tmp_path / "n").exists(), "a configuration that cannot be recorded fails before any file is written"


def test_load_or_pretrain_restores_the_random_state_when_pretraining_fails(tmp_path):
    def failing(model):
        np.random.rand(5)
        random.random()
        torch.rand(5)
        raise RuntimeError("out of data")

    np.random.seed(1), random.seed(1), torch.manual_seed(1)
    expected = (np.random.rand(), random.random(), torch.rand(1).item())
    np.random.seed(1), random.seed(1), torch.manual_seed(1)
    with pytest.raises(RuntimeError, match="out of data"):
        models.load_or_pretrain(models.SmallCNN(channels=(2, 2), feature_dim=4, seed=0), {"x": 1}, failing,
                                root=tmp_path, verbose=False)
    assert (np.random.rand(), random.random(), torch.rand(1).item()) == expected
    assert not list(tmp_path.rglob("*.pt")), "nothing is cached for a failed pretraining"


# --------------------------------------------------------------------------- runtime
def test_blas_threads_and_init_check_arguments_before_changing_anything():
    runtime.set_threads(1)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="threads must be a positive integer or None"):
            with runtime.blas_threads(bad):
                pass  # pragma: no cover - never entered
        assert torch.get_num_threads() == 1
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    for kwargs in (dict(seed=-1), dict(seed=0, threads=0), dict(seed=0, style="yes")):
        with pytest.raises((ValueError, TypeError)):
            runtime.init(**kwargs)
    assert np.random.rand() == expected, "a rejected init() must not reseed"
    assert torch.get_num_threads() == 1
    with pytest.raises(RuntimeError, match="inside"):
        with runtime.blas_threads(2):
            assert torch.get_num_threads() == 2
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 1
