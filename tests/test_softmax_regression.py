"""course_utils.softmax_regression: the closed-form gradient, the stability limit, and batched training
that gives what separate torch runs give."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import batched, training
from course_utils import softmax_regression as sr


def problem(n=60, d=5, k=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype) * 3 + 1
    y = torch.randint(0, k, (n,), generator=g)
    return X, y, k


def linear_run(X, y, k, name, lr, steps, loader=None, dtype=torch.float64):
    """A separate run as the chapter writes it: nn.Linear from zero, F.cross_entropy, torch.optim."""
    model = torch.nn.Linear(X.shape[1], k).to(dtype)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = sr.make_optimizer(name, model.parameters(), lr)
    losses = []
    if loader is None:
        for _ in range(steps):
            loss = F.cross_entropy(model(X), y)
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            losses.append(F.cross_entropy(model(X), y).item())
        return np.array(losses), model
    for _ in range(steps):  # epochs
        total = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
        losses.append(total / len(y))
    return np.array(losses), model


def weights_of(model):
    return torch.cat([model.weight, model.bias[:, None]], dim=1).detach()


def test_gradient_matches_autograd_with_leading_axes():
    X, y, k = problem()
    Xa = sr.augment(X)
    W = torch.randn(3, k, Xa.shape[1], dtype=torch.float64, requires_grad=True)
    loss, grad = sr.loss_and_gradient(Xa, y, W.detach())
    for s in range(3):
        ref = F.cross_entropy(Xa @ W[s].T, y)
        (g,) = torch.autograd.grad(ref, W)
        np.testing.assert_allclose(loss[s], ref.item(), rtol=1e-13)
        np.testing.assert_allclose(grad[s], g[s], rtol=1e-12, atol=1e-14)
    assert sr.loss(Xa, y, torch.zeros(k, Xa.shape[1], dtype=torch.float64)).item() == pytest.approx(math.log(k))


def test_stability_limit_is_two_over_the_hessians_largest_eigenvalue():
    X, y, k = problem(n=40, d=3)
    Xa = sr.augment(X)

    def loss_of(theta):
        return F.cross_entropy(Xa @ theta.reshape(k, -1).T, y)

    H = torch.autograd.functional.hessian(loss_of, torch.zeros(k * Xa.shape[1], dtype=torch.float64))
    lam = torch.linalg.eigvalsh(H)[-1].item()
    assert sr.stability_limit(X, k) == pytest.approx(2 / lam, rel=1e-10)
    assert sr.stability_limit(X, k, momentum=0.9) == pytest.approx(2 * 1.9 / lam, rel=1e-10)
    with pytest.raises(ValueError, match="momentum"):
        sr.stability_limit(X, k, momentum=1.0)


@pytest.mark.parametrize("per_seed_data", [False, True])
def test_full_batch_settings_together_equal_separate_runs(per_seed_data):
    settings = [("gradient descent", 0.05), ("momentum", 0.02), ("Adam", 0.01), ("gradient descent", 5.0)]
    if per_seed_data:
        data = [problem(seed=s) for s in (1, 2)]
        Xa = torch.stack([sr.augment(X) for X, _, _ in data])
        y = torch.stack([yy for _, yy, _ in data])
    else:
        X, y, k = problem()
        Xa = sr.augment(X)
    k = 4
    losses, W = sr.full_batch(Xa, y, settings, 15, k)
    for c, (name, lr) in enumerate(settings):
        for s in range(2 if per_seed_data else 1):
            Xs = Xa[s] if per_seed_data else Xa
            ys = y[s] if per_seed_data else y
            ref, model = linear_run(Xs[:, :-1], ys, k, name, lr, 15)
            got = losses[:, s, c] if per_seed_data else losses[:, c]
            np.testing.assert_allclose(got, ref, rtol=1e-10)
            np.testing.assert_allclose(W[s, c] if per_seed_data else W[c], weights_of(model), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,lr", [("gradient descent", 0.05), ("momentum", 0.01), ("Adam", 0.01)])
def test_minibatch_seeds_together_equal_make_loader_runs(name, lr):
    X, y, k = problem(n=50)
    X = X.float()
    seeds = [0, 3, 7]
    W = torch.zeros(3, k, X.shape[1] + 1, requires_grad=True)
    loader = batched.Loader(sr.augment(X), y, 8, seeds)
    got = sr.minibatch(loader, [(W, sr.make_optimizer(name, [W], lr))], 3)
    for j, s in enumerate(seeds):
        ref, model = linear_run(X, y, k, name, lr, 3, loader=training.make_loader(X, y, 8, seed=s),
                                dtype=torch.float32)
        np.testing.assert_allclose(got[0, j], ref, rtol=1e-5)
        np.testing.assert_allclose(W[j].detach(), weights_of(model), rtol=1e-4, atol=1e-6)


def test_models_share_batches_and_a_diverging_one_leaves_the_other_untouched():
    X, y, k = problem(n=40)
    X = X.float()
    Xa = sr.augment(X)

    def run(second_lr):
        W = torch.zeros(2, k, Xa.shape[1], requires_grad=True)
        V = torch.zeros(2, k, Xa.shape[1], requires_grad=True)
        models = [(W, sr.make_optimizer("Adam", [W], 0.01)), (V, sr.make_optimizer("gradient descent", [V], second_lr))]
        out = sr.minibatch(batched.Loader(Xa, y, 8, [0, 1]), models, 4)
        return out, W.detach()

    calm, W_calm = run(1e-3)
    wild, W_wild = run(1e6)
    assert not np.all(np.isfinite(wild[1])) or wild[1].max() > 1e3  # the second model diverged
    # the first model's columns of the shared product do not depend on the second's values: bitwise equal
    np.testing.assert_array_equal(wild[0], calm[0])
    assert torch.equal(W_wild, W_calm)
    # and, up to the rounding of a narrower product, what it gives alone
    W = torch.zeros(2, k, Xa.shape[1], requires_grad=True)
    alone = sr.minibatch(batched.Loader(Xa, y, 8, [0, 1]), [(W, sr.make_optimizer("Adam", [W], 0.01))], 4)
    np.testing.assert_allclose(alone[0], calm[0], rtol=1e-6)


def test_subsets_per_member_equal_runs_on_the_subsets():
    X, y, k = problem(n=80)
    X = X.float()
    subsets = [torch.arange(0, 40), torch.arange(40, 80)]
    W = torch.zeros(2, k, X.shape[1] + 1, requires_grad=True)
    loader = batched.Loader(sr.augment(X), y, 16, [5, 5], subsets=subsets)
    got = sr.minibatch(loader, [(W, sr.make_optimizer("momentum", [W], 0.01))], 2)
    for j, idx in enumerate(subsets):
        ref, _ = linear_run(X[idx], y[idx], k, "momentum", 0.01, 2,
                            loader=training.make_loader(X[idx], y[idx], 16, seed=5), dtype=torch.float32)
        np.testing.assert_allclose(got[0, j], ref, rtol=1e-5)


def test_bad_input_is_refused_by_name():
    X, y, k = problem()
    Xa = sr.augment(X)
    with pytest.raises(ValueError, match="columns"):
        sr.loss_and_gradient(X, y, torch.zeros(k, Xa.shape[1], dtype=X.dtype))
    with pytest.raises(ValueError, match="empty batch"):
        sr.loss_and_gradient(Xa[:0], y[:0], torch.zeros(k, Xa.shape[1], dtype=X.dtype))
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        sr.make_optimizer("sgd", [torch.zeros(1, requires_grad=True)], 0.1)
    with pytest.raises(ValueError, match="lr"):
        sr.make_optimizer("Adam", [torch.zeros(1, requires_grad=True)], 0.0)
    with pytest.raises(ValueError, match="no settings"):
        sr.full_batch(Xa, y, [], 3, k)
    with pytest.raises(ValueError, match="augment"):
        sr.augment(torch.zeros(3))
    W = torch.zeros(2, k, Xa.shape[1], requires_grad=True)
    with pytest.raises(ValueError, match="members=3"):
        sr.minibatch(batched.Loader(Xa, y, 8, [0, 1, 2]), [(W, sr.make_optimizer("Adam", [W], 0.1))], 1)


def test_adams_stepped_together_are_bitwise_their_own_steps():
    """minibatch() steps fused Adams with one kernel call (sr._step): the same bits as each opt.step(),
    for Adams with different histories (a fresh one, one with state carried over, another lr); SGD and
    an Adam with a hook take their own step()."""
    g = torch.Generator().manual_seed(0)

    def setup():
        params = [torch.zeros(3, 4, 6, requires_grad=True) for _ in range(4)]
        opts = [sr.make_optimizer("Adam", [params[0]], 1e-3), sr.make_optimizer("Adam", [params[1]], 1e-3),
                sr.make_optimizer("Adam", [params[2]], 1e-2), sr.make_optimizer("momentum", [params[3]], 1e-2)]
        hooked = torch.zeros(3, 4, 6, requires_grad=True)
        opts.append(sr.make_optimizer("Adam", [hooked], 1e-3))
        calls = []
        opts[-1].register_step_post_hook(lambda *a: calls.append(1))
        return params + [hooked], opts, calls

    grads = [[torch.randn(3, 4, 6, generator=g) for _ in range(5)] for _ in range(6)]
    runs = []
    for together in (False, True):
        params, opts, calls = setup()
        for t, gs in enumerate(grads):
            for p, gr in zip(params, gs):
                p.grad = gr.clone()
            if t == 2:  # one Adam's history restarts: a fresh optimizer on the same tensor
                opts[0] = sr.make_optimizer("Adam", [params[0]], 1e-3)
            if together:
                sr._step(opts)
            else:
                for o in opts:
                    o.step()
        runs.append(([p.detach().clone() for p in params], [dict(o.state[p]) for o, p in zip(opts, params)], calls))
    (p_sep, s_sep, c_sep), (p_tog, s_tog, c_tog) = runs
    for a, b in zip(p_sep, p_tog):
        assert torch.equal(a, b)
    for a, b in zip(s_sep, s_tog):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(c_sep) == len(c_tog) == len(grads)  # the hooked Adam took its own step()
    assert sr._fused_adam_key(opts[1]) is not None and sr._fused_adam_key(opts[3]) is None  # the fast path ran


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_minibatch_is_bitwise_one_step_after_another(dtype):
    """minibatch() keeps its work tensors and its optimizer step plan from step to step: the same bits as
    computing each step anew and calling every optimizer's step(), for two models sharing the batches
    (fused Adams, one with state carried over from an earlier run, and gradient descent) over epochs with
    a short last batch."""
    X, y, k = problem(n=50, dtype=dtype)
    Xa = sr.augment(X)

    def models():
        W = torch.zeros(2, k, Xa.shape[1], dtype=dtype, requires_grad=True)
        V = torch.zeros(2, k, Xa.shape[1], dtype=dtype, requires_grad=True)
        U = torch.zeros(2, k, Xa.shape[1], dtype=dtype, requires_grad=True)
        return [(W, sr.make_optimizer("Adam", [W], 0.01)), (V, sr.make_optimizer("Adam", [V], 0.003)),
                (U, sr.make_optimizer("gradient descent", [U], 0.05))]

    runs = []
    for planned in (True, False):
        ms = models()
        sr.minibatch(batched.Loader(Xa, y, 16, [0, 1]), ms[1:2], 1)  # V's Adam carries its state over
        loader = batched.Loader(Xa, y, 7, [3, 4])
        if planned:
            losses = sr.minibatch(loader, ms, 3)
        else:
            for W, _ in ms:
                W.grad = torch.zeros_like(W)
            totals = torch.zeros(3, 2, len(ms), dtype=torch.float64)
            for epoch in range(3):
                for Xb, yb in loader:
                    totals[epoch].add_(sr._minibatch_step(Xb, yb, [W for W, _ in ms]))
                    for _, opt in ms:
                        opt.step()
            losses = (totals / loader.n).permute(2, 1, 0).numpy()
        runs.append((losses, [W.detach().clone() for W, _ in ms], [dict(o.state[W]) for W, o in ms]))
    (l_plan, w_plan, s_plan), (l_ref, w_ref, s_ref) = runs
    np.testing.assert_array_equal(l_plan, l_ref)
    for a, b in zip(w_plan, w_ref):
        assert torch.equal(a, b)
    for a, b in zip(s_plan, s_ref):
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_tensors_off_the_cpu_are_refused_with_what_to_do():
    """Training runs on the CPU: data or weights on another device (here PyTorch's "meta" device, which
    every machine has) get a message naming the tensor and the fix, not a device mismatch deep inside."""
    X, y, k = problem(dtype=torch.float32)
    Xa = sr.augment(X)
    with pytest.raises(ValueError, match=r"full_batch: Xa is on meta.*on the CPU"):
        sr.full_batch(Xa.to("meta"), y, [("Adam", 0.1)], 2, k)
    W = torch.zeros(2, k, Xa.shape[1], requires_grad=True)
    with pytest.raises(ValueError, match=r"minibatch: the loader's X is on meta.*without device="):
        sr.minibatch(batched.Loader(Xa, y, 8, [0, 1], device="meta"), [(W, sr.make_optimizer("Adam", [W], 0.1))], 1)
    V = torch.zeros(2, k, Xa.shape[1], device="meta", requires_grad=True)
    with pytest.raises(ValueError, match=r"minibatch: models\[1\]'s W is on meta"):
        sr.minibatch(batched.Loader(Xa, y, 8, [0, 1]), [(W, sr.make_optimizer("Adam", [W], 0.1)),
                                                         (V, sr.make_optimizer("Adam", [V], 0.1))], 1)
