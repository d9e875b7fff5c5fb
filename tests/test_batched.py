"""course_utils.batched: S members trained together give what S separate runs give.

Tolerances: the batched layers compute every member with ``torch.baddbmm`` or a grouped
convolution where a separate run uses ``addmm`` or a plain convolution, so the two round
differently in the last bits. In float64 one step differs by about 1e-16; the comparisons below
train a few epochs in float64 and allow 1e-9 (relative) / 1e-11 (absolute) on every parameter,
buffer and recorded loss, far below any difference a chapter could print and far above what the
rounding can accumulate in these runs. Comparisons between batched runs (a member with and
without a diverging or stopped neighbour) are bitwise.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import batched, training
from course_utils.models import SmallCNN
from helpers import one_torch_thread  # noqa: F401  (autouse: every test here on one torch thread)

RTOL, ATOL = 1e-9, 1e-11


def blobs(n=150, d=2, k=3, seed=0, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, d)) + 2.0 * np.eye(k, d)[y]
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(y)


def mlp(seed, batch_norm=False, bias_before_bn=True, width=16, depth=2, d=2, k=3):
    torch.manual_seed(seed)
    layers, width_in = [], d
    for _ in range(depth):
        layers.append(nn.Linear(width_in, width, bias=bias_before_bn or not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        width_in = width
    layers.append(nn.Linear(width, k))
    return nn.Sequential(*layers).double()


def separate_run(model, X, y, batch_size, seed, make_opt, num_epochs, val=None):
    """A separate run with the library's single-run trainer: returns (model, history)."""
    opt = make_opt(model.parameters())
    val_loader = None if val is None else training.make_loader(*val, batch_size=64, shuffle=False)
    hist = training.fit(model, training.make_loader(X, y, batch_size, seed=seed), loss_fn=F.cross_entropy,
                        optimizer=opt, num_epochs=num_epochs, val_loader=val_loader, progress=False)
    return model, hist


def assert_same_model(a: nn.Module, b: nn.Module, rtol=RTOL, atol=ATOL):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        np.testing.assert_allclose(sa[name].detach().numpy(), sb[name].detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)


def bitwise_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --------------------------------------------------------------------------- the loader
@pytest.mark.parametrize("n, batch_size", [(100, 32), (96, 32), (7, 10), (50, 1)])
def test_loader_reproduces_make_loader_order_over_epochs(n, batch_size):
    X = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    y = torch.arange(n) % 3
    seeds = [0, 5, 0, 123]
    loader = batched.Loader(X, y, batch_size, seeds)
    singles = [training.make_loader(X, y, batch_size, seed=s) for s in seeds]
    assert len(loader) == len(singles[0])
    for _ in range(3):  # the generators carry over epochs exactly as a DataLoader's does
        got = list(loader)
        for k, single in enumerate(singles):
            expected = list(single)
            assert len(got) == len(expected)
            for (xb, yb), (xs, ys) in zip(got, expected):
                assert xb.shape == (len(seeds), len(ys), 1)
                assert torch.equal(xb[k], xs) and torch.equal(yb[k], ys)


def test_loader_with_subsets_and_per_member_arrays_matches_loaders_on_the_subsets():
    X, y = blobs(n=60)
    rng = np.random.default_rng(1)
    subsets = [rng.choice(60, size=25, replace=False) for _ in range(3)]
    seeds = [3, 4, 5]
    by_subset = batched.Loader(X, y, 8, seeds, subsets=subsets)
    by_arrays = batched.Loader([X[s] for s in subsets], [y[s] for s in subsets], 8, seeds)
    singles = [training.make_loader(X[s], y[s], 8, seed=seed) for s, seed in zip(subsets, seeds)]
    for _ in range(2):
        a, b = list(by_subset), list(by_arrays)
        for k, single in enumerate(singles):
            for (xa, ya), (xb, yb), (xs, ys) in zip(a, b, single):
                assert torch.equal(xa[k], xs) and torch.equal(ya[k], ys)
                assert torch.equal(xb[k], xs) and torch.equal(yb[k], ys)


def test_loader_randperm_order_is_the_chapter_6_loop():
    X, y = blobs(n=70)
    loader = batched.Loader(X, y, 16, [0, 1], order="randperm")
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    for _ in range(3):
        got = list(loader)
        perms = [torch.randperm(70, generator=g) for g in gens]
        for k in range(2):
            for (xb, yb), idx in zip(got, perms[k].split(16)):
                assert torch.equal(xb[k], X[idx]) and torch.equal(yb[k], y[idx])


def test_loader_without_shuffle_keeps_the_order():
    X, y = blobs(n=10)
    (xb, yb), = list(batched.Loader(X, y, 10, [0, 1], shuffle=False))
    assert torch.equal(xb[0], X) and torch.equal(xb[1], X) and torch.equal(yb[1], y)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer"),
    (dict(seeds=[]), ValueError, "seeds is empty"),
    (dict(seeds=[-1]), ValueError, r"seeds\[0\] must be a non-negative integer"),
    (dict(seeds=3), TypeError, "seeds must be a list"),
    (dict(order="random"), ValueError, "order must be 'make_loader' or 'randperm'"),
    (dict(subsets=[[0, 1], [2]]), ValueError, "the same size"),
    (dict(subsets=[[0, 1]]), ValueError, "one index array per member"),
    (dict(subsets=[[0, 99], [1, 2]]), ValueError, "outside 0..19"),
    (dict(subsets=[[], []]), ValueError, "subsets are empty"),
])
def test_loader_refuses_bad_input(kwargs, error, match):
    X, y = blobs(n=20)
    args = dict(X=X, y=y, batch_size=4, seeds=[0, 1]) | kwargs
    with pytest.raises(error, match=match):
        batched.Loader(**args)


def test_loader_refuses_empty_and_mismatched_data():
    X, y = blobs(n=20)
    with pytest.raises(ValueError, match="X is empty"):
        batched.Loader(X[:0], y[:0], 4, [0])
    with pytest.raises(ValueError, match="X has 20 samples but y has 19"):
        batched.Loader(X, y[:-1], 4, [0])
    with pytest.raises(ValueError, match="same number of examples"):
        batched.Loader([X, X[:10]], [y, y[:10]], 4, [0, 1])
    with pytest.raises(ValueError, match="S=2 arrays"):
        batched.Loader([X], [y], 4, [0, 1])
    with pytest.raises(ValueError, match="integer class ids"):
        batched.Loader(X, y + 0.5, 4, [0])


# --------------------------------------------------------------------------- the stacked model
def test_stack_forward_and_unstack_match_the_members():
    X, _ = blobs()
    members = [mlp(s) for s in range(3)]
    for mode in ("layers", "vmap"):
        net = batched.stack(members, mode=mode)
        assert net.mode == mode and net.num_members == 3
        assert all(p.shape[0] == 3 for p in net.parameters())
        shared = net(X, shared=True)
        per_member = net(X.unsqueeze(0).expand(3, *X.shape))
        for k, m in enumerate(members):
            np.testing.assert_allclose(shared[k].detach(), m(X).detach(), rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(per_member[k].detach(), m(X).detach(), rtol=1e-13, atol=1e-15)
        for k, m in enumerate(net.unstack()):
            assert type(m) is nn.Sequential and bitwise_equal(m, members[k])
        assert net.float().member(1)[0].weight.dtype == torch.float32


def test_stack_auto_mode_picks_layers_for_sequential_and_a_bare_linear_else_vmap():
    assert batched.stack([mlp(0), mlp(1)]).mode == "layers"
    assert batched.stack([nn.Linear(4, 3), nn.Linear(4, 3)]).mode == "layers"
    assert batched.stack([SmallCNN(seed=0), SmallCNN(seed=1)]).mode == "layers"  # its forward is known
    assert batched.stack([SmallCNN(seed=0), SmallCNN(seed=1)], mode="vmap").mode == "vmap"

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(2, 2)

        def forward(self, x):
            return self.body(x).flatten(1)

    assert batched.stack([Custom(), Custom()]).mode == "vmap"
    net = batched.stack([Custom(), Custom()], forward=lambda m, x: m.body(x))
    assert net.mode == "layers"
    with pytest.raises(ValueError, match=r"batched SmallCNN expects input of shape \(S, N, 1, 28, 28\)"):
        batched.stack([SmallCNN(seed=0), SmallCNN(seed=1)])(torch.zeros(2, 3, 28, 28))


def test_stack_leaves_the_models_untouched_and_keeps_frozen_parameters_frozen():
    members = [SmallCNN(seed=s) for s in range(2)]
    for m in members:
        for p in m.backbone.parameters():
            p.requires_grad_(False)
    before = [copy.deepcopy(m.state_dict()) for m in members]
    net = batched.stack(members)
    assert [p.requires_grad for p in net.module.backbone.parameters()] == [False] * 6
    assert len(net.stacked_parameters()) == 2  # the head's weight and bias
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    for m, sd in zip(members, before):
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), sd.values()))
    assert not any(p.requires_grad for p in net.member(0).backbone.parameters())


def test_stack_refuses_bad_input():
    with pytest.raises(ValueError, match="the list of models is empty"):
        batched.stack([])
    with pytest.raises(TypeError, match="a list of nn.Modules"):
        batched.stack(mlp(0))
    with pytest.raises(ValueError, match="another architecture"):
        batched.stack([mlp(0), mlp(1, batch_norm=True)])
    with pytest.raises(ValueError, match="differ from member 0's in shape"):
        batched.stack([mlp(0, width=16), mlp(1, width=8)])
    m = mlp(0)
    with pytest.raises(ValueError, match="same model object appears twice"):
        batched.stack([m, m])
    with pytest.raises(ValueError, match="a random layer"):
        batched.stack([nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)) for _ in range(2)])
    with pytest.raises(ValueError, match="configured differently"):
        batched.stack([nn.Sequential(nn.Conv2d(1, 2, 3, padding=p)) for p in (0, 1)])
    frozen = mlp(1)
    frozen[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match="requires grad in some members"):
        batched.stack([mlp(0), frozen])
    with pytest.raises(ValueError, match="holds its own parameter or buffer 'weight_ih_l0'; use mode='vmap'"):
        batched.stack([nn.Sequential(nn.Linear(2, 2), nn.LSTM(2, 2)) for _ in range(2)], mode="layers")
    with pytest.raises(ValueError, match="layer '1' \\(Softmin\\) has no batched version"):
        batched.stack([nn.Sequential(nn.Linear(2, 2), nn.Softmin(1)) for _ in range(2)], mode="layers")
    with pytest.raises(ValueError, match="mode must be"):
        batched.stack([mlp(0)], mode="fast")
    net = batched.stack([mlp(0), mlp(1)])
    with pytest.raises(ValueError, match="leading member axis of size S=2"):
        net(torch.zeros(5, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="x is torch.float32 but the parameters are torch.float64"):
        net(torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="members are indices 0..1"):
        net.stop(2)
    with pytest.raises(ValueError, match="below the number of members S=2"):
        net.member(2)


# --------------------------------------------------------------------------- against separate runs
OPTIMIZERS = {
    "SGD": lambda p, lr=0.1: torch.optim.SGD(p, lr=lr),
    "momentum": lambda p, lr=0.05: torch.optim.SGD(p, lr=lr, momentum=0.9),
    "Nesterov": lambda p, lr=0.05: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adam": lambda p, lr=1e-2: torch.optim.Adam(p, lr=lr),
    "AdamW": lambda p, lr=1e-2: torch.optim.AdamW(p, lr=lr, weight_decay=0.1),
    "RMSprop": lambda p, lr=1e-3: torch.optim.RMSprop(p, lr=lr, momentum=0.5, centered=True),
    "Adagrad": lambda p, lr=0.1: torch.optim.Adagrad(p, lr=lr, lr_decay=1e-3),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("mode", ["layers", "vmap"])
def test_batched_fit_equals_separate_runs(name, mode):
    X, y = blobs()
    Xv, yv = blobs(n=40, seed=9)
    seeds = [0, 1, 2]
    net = batched.stack([mlp(s) for s in seeds], mode=mode)
    opt = batched.MemberOptimizer(net, OPTIMIZERS[name](net.stacked_parameters()))
    hists = batched.fit(net, batched.Loader(X, y, 32, seeds), optimizer=opt, num_epochs=3, val=(Xv, yv),
                        progress=False)
    for k, seed in enumerate(seeds):
        model, hist = separate_run(mlp(seed), X, y, 32, seed, OPTIMIZERS[name], 3, val=(Xv, yv))
        assert_same_model(net.member(k), model)
        for column in ("train_loss", "train_acc", "val_loss", "val_acc"):
            np.testing.assert_allclose(hists[k][column], hist[column], rtol=RTOL, atol=ATOL, err_msg=column)
        assert hists[k]["epoch"].tolist() == [1, 2, 3] and hists[k]["step"].tolist() == [5, 10, 15]


@pytest.mark.parametrize("name", ["SGD", "momentum", "Adam", "RMSprop", "Adagrad"])
def test_learning_rate_grid_equals_separate_runs(name):
    """Members (lr, seed): three rates, the seeds repeated; each member is its separate run."""
    X, y = blobs()
    base = {"SGD": 0.1, "momentum": 0.05, "Adam": 1e-2, "RMSprop": 1e-3, "Adagrad": 0.1}[name]
    rates = [base, base / 10, base * 3]
    members = [(lr, s) for lr in rates for s in (0, 1)]
    net = batched.stack([mlp(s) for _, s in members])
    make = OPTIMIZERS[name]
    opt = batched.MemberOptimizer(net, make(net.stacked_parameters()), lr=[lr for lr, _ in members])
    np.testing.assert_array_equal(opt.lr, [lr for lr, _ in members])
    batched.fit(net, batched.Loader(X, y, 25, [s for _, s in members]), optimizer=opt, num_epochs=2,
                progress=False)
    for k, (lr, seed) in enumerate(members):
        model, _ = separate_run(mlp(seed), X, y, 25, seed, lambda p: make(p, lr=lr), 2)
        assert_same_model(net.member(k), model)


def test_optimizer_factory_with_a_rate_grid_and_fused_adam():
    X, y = blobs()
    rates = [1e-2, 1e-3, 1e-1]
    net = batched.stack([mlp(0) for _ in rates])
    opt = batched.optimizer(net, torch.optim.Adam, lr=rates, fused=True)
    batched.fit(net, batched.Loader(X, y, 32, [0, 0, 0]), optimizer=opt, num_epochs=2, progress=False)
    for k, lr in enumerate(rates):
        model, _ = separate_run(mlp(0), X, y, 32, 0, lambda p: torch.optim.Adam(p, lr=lr, fused=True), 2)
        assert_same_model(net.member(k), model)


@pytest.mark.parametrize("mode", ["layers", "vmap"])
def test_batch_norm_mlp_train_and_eval_mode_equal_separate_runs(mode):
    """BatchNorm1d: batch statistics per member in train mode, running statistics per member.

    Adam with a bias in the layer before batch norm would divide that bias's gradient (zero up to
    rounding, since batch norm removes any shift) by its own tiny root mean square and amplify
    the last bits; the Adam case therefore uses bias-free layers before batch norm, as is usual.
    """
    X, y = blobs()
    seeds = [0, 1, 2]
    for make, bias in ((OPTIMIZERS["momentum"], True), (OPTIMIZERS["Adam"], False)):
        build = lambda s: mlp(s, batch_norm=True, bias_before_bn=bias)  # noqa: E731
        net = batched.stack([build(s) for s in seeds], mode=mode)
        opt = batched.MemberOptimizer(net, make(net.stacked_parameters()))
        batched.fit(net, batched.Loader(X, y, 32, seeds), optimizer=opt, num_epochs=3, progress=False)
        net.eval()
        out = net(X, shared=True)
        for k, seed in enumerate(seeds):
            model, _ = separate_run(build(seed), X, y, 32, seed, make, 3)
            assert_same_model(net.member(k), model)  # weights and running statistics
            model.eval()
            np.testing.assert_allclose(out[k].detach(), model(X).detach(), rtol=RTOL, atol=ATOL)
            assert int(net.member(k)[1].num_batches_tracked) == 15


def small_conv_net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(54, 3)).double()


def images(n=48, seed=0, size=12):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.random((n, 1, size, size)) + y[:, None, None, None] * np.linspace(0, 1, size)
    return torch.as_tensor(X), torch.as_tensor(y)


def test_conv_net_with_batch_norm_2d_equals_separate_runs():
    X, y = images()
    seeds = [0, 1]
    net = batched.stack([small_conv_net(s) for s in seeds])
    assert net.mode == "layers"
    opt = batched.MemberOptimizer(net, OPTIMIZERS["momentum"](net.stacked_parameters()))
    batched.fit(net, batched.Loader(X, y, 16, seeds), optimizer=opt, num_epochs=2, progress=False)
    for k, seed in enumerate(seeds):
        model, _ = separate_run(small_conv_net(seed), X, y, 16, seed, OPTIMIZERS["momentum"], 2)
        assert_same_model(net.member(k), model)
    net.eval()
    np.testing.assert_allclose(batched.predict(net, X)[1], training.predict(model, X))


@pytest.mark.parametrize("mode", ["layers", "vmap"])
def test_small_cnn_equals_separate_runs(mode):
    X, y = images(n=32, size=28)
    X = X.float()
    seeds = [0, 1]
    net = batched.stack([SmallCNN(num_classes=3, channels=(4, 6), feature_dim=16, seed=s) for s in seeds],
                        mode=mode)
    assert net.mode == mode
    opt = batched.optimizer(net, torch.optim.Adam, lr=1e-3)
    batched.fit(net, batched.Loader(X, y, 8, seeds), optimizer=opt, num_epochs=2, progress=False)
    for k, seed in enumerate(seeds):
        model = SmallCNN(num_classes=3, channels=(4, 6), feature_dim=16, seed=seed)
        separate_run(model, X, y, 8, seed, lambda p: torch.optim.Adam(p, lr=1e-3), 2)
        # float32: one step differs by about 1e-7 relative; 8 Adam steps of rate 1e-3 stay within 1e-5
        assert_same_model(net.member(k), model, rtol=1e-4, atol=1e-5)


def test_custom_forward_with_extra_arguments_in_layers_and_vmap_mode():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(2, 8), nn.ReLU()),
                                         nn.Sequential(nn.Linear(8, 8), nn.ReLU())])
            self.head = nn.Linear(8, 3)

        def forward(self, x, return_hidden=False):
            hidden, h = [], x
            for i, block in enumerate(self.blocks):
                a = block(h)
                hidden.append(a)
                h = h + 0.5 * a if i > 0 else a
            return (self.head(h), hidden) if return_hidden else self.head(h)

    X, _ = blobs(dtype=torch.float32)
    members = []
    for s in range(3):
        torch.manual_seed(s)
        members.append(Residual())
    for mode in ("layers", "vmap"):
        net = batched.stack(members, mode=mode)
        logits, hidden = net(X, shared=True, return_hidden=True)
        assert logits.shape == (3, len(X), 3) and [h.shape for h in hidden] == [(3, len(X), 8)] * 2
        for k, m in enumerate(members):
            ref_logits, ref_hidden = m(X, return_hidden=True)
            np.testing.assert_allclose(logits[k].detach(), ref_logits.detach(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(hidden[1][k].detach(), ref_hidden[1].detach(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- isolation
def test_a_diverging_member_leaves_the_others_bitwise_unchanged():
    """Member 2 at a rate that overflows; members 0 and 1 are bitwise what they are beside a sane member 2,
    and what a run of members 0 and 1 alone gives (each member's matrix products are its own)."""
    X, y = blobs()
    seeds = [0, 1, 2]

    def run(rates, on_divergence="continue"):
        net = batched.stack([mlp(s) for s in seeds])
        opt = batched.optimizer(net, torch.optim.SGD, lr=rates, momentum=0.9)
        hists = batched.fit(net, batched.Loader(X, y, 32, seeds), optimizer=opt, num_epochs=4,
                            on_divergence=on_divergence, progress=False)
        return net, hists

    sane, sane_hists = run([0.05, 0.05, 0.05])
    wild, wild_hists = run([0.05, 0.05, 1e30])
    assert not torch.isfinite(wild.member(2)[0].weight).all()
    assert not np.isfinite(wild_hists[2]["train_loss"].iloc[-1])
    for k in (0, 1):
        assert bitwise_equal(wild.member(k), sane.member(k))
        assert wild_hists[k].equals(sane_hists[k])
    without = batched.stack([mlp(s) for s in seeds[:2]])  # a run without member 2 at all
    batched.fit(without, batched.Loader(X, y, 32, seeds[:2]),
                optimizer=batched.optimizer(without, torch.optim.SGD, lr=0.05, momentum=0.9), num_epochs=4,
                progress=False)
    assert all(bitwise_equal(wild.member(k), without.member(k)) for k in (0, 1))
    stopped, stopped_hists = run([0.05, 0.05, 1e30], on_divergence="stop")
    assert len(stopped_hists[2]) == 1 and len(stopped_hists[0]) == 4
    assert all(bitwise_equal(stopped.member(k), sane.member(k)) for k in (0, 1))
    with pytest.raises(FloatingPointError, match="member 2's training loss became"):
        run([0.05, 0.05, 1e30], on_divergence="raise")


def test_nan_data_of_one_member_never_reaches_another():
    X, y = blobs()
    bad = X.clone()
    bad[5, 0] = float("nan")
    seeds = [0, 1]

    def run(X1):
        net = batched.stack([mlp(s) for s in seeds])
        opt = batched.optimizer(net, torch.optim.Adam, lr=1e-2)
        batched.fit(net, batched.Loader([X, X1], [y, y], 16, seeds), optimizer=opt, num_epochs=2, progress=False)
        return net

    clean, poisoned = run(X), run(bad)
    assert not torch.isfinite(poisoned.member(1)[0].weight).all()
    assert bitwise_equal(poisoned.member(0), clean.member(0))


def test_a_stopped_member_keeps_weights_buffers_and_optimizer_state_and_the_others_go_on():
    X, y = blobs()
    seeds = [0, 1, 2]

    def run(stop_member=None):
        net = batched.stack([mlp(s, batch_norm=True) for s in seeds])
        opt = batched.optimizer(net, torch.optim.Adam, lr=[1e-2, 1e-3, 1e-2])
        trainer = batched.Trainer(net, batched.Loader(X, y, 32, seeds), opt)
        first = trainer.fit(2, progress=False)
        frozen = net.member(1)
        state = {k: v.clone() for k, v in opt.optimizer.state[net.module[0].weight].items()}
        if stop_member is not None:
            net.stop(stop_member)
        later = trainer.fit(3, progress=False)
        return net, opt, first, later, frozen, state

    go, _, _, go_later, _, _ = run()
    net, opt, first, later, frozen, state = run(stop_member=1)
    assert bitwise_equal(net.member(1), frozen)  # weights and running statistics
    now = opt.optimizer.state[net.module[0].weight]
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(now[key][1], state[key][1])
    for k in (0, 2):
        assert bitwise_equal(net.member(k), go.member(k))
        assert later[k].equals(go_later[k])
    assert len(later[1]) == 0 and later[0]["epoch"].tolist() == [3, 4, 5]


def test_early_stopping_per_member_with_patience_and_restore_best():
    X, y = blobs()
    Xv, yv = blobs(n=40, seed=9)
    seeds = [0, 1, 2]
    net = batched.stack([mlp(s) for s in seeds])
    opt = batched.optimizer(net, torch.optim.SGD, lr=[0.1, 0.1, 0.0])  # member 2 never improves
    trainer = batched.Trainer(net, batched.Loader(X, y, 32, seeds), opt, val=(Xv, yv), patience=2,
                              monitor="val_loss", restore_best=True)
    start = net.member(2)
    hists = trainer.fit(6, progress=False)
    assert len(hists[2]) == 3 and trainer.stopped_epoch[2] == 3 and trainer.stop_reason[2] == "patience"
    assert bitwise_equal(net.member(2), start)  # lr 0: its best weights are its start
    for k in (0, 1):  # the val loss falls every epoch here: they train on
        assert len(hists[k]) == 6 and trainer.stopped_epoch[k] == -1
    reference = batched.stack([mlp(s) for s in seeds])
    ref_opt = batched.optimizer(reference, torch.optim.SGD, lr=[0.1, 0.1, 0.0])
    batched.fit(reference, batched.Loader(X, y, 32, seeds), optimizer=ref_opt, num_epochs=6, progress=False)
    for k in (0, 1):
        assert bitwise_equal(net.member(k), reference.member(k))


def test_stop_when_receives_the_metrics_and_stops_the_chosen_members():
    X, y = blobs()
    seen = []

    def stop_when(epoch, metrics):
        seen.append((epoch, sorted(metrics)))
        return np.array([epoch >= 2, False])

    net = batched.stack([mlp(0), mlp(1)])
    hists = batched.fit(net, batched.Loader(X, y, 50, [0, 1]), optimizer=batched.optimizer(net, torch.optim.SGD, lr=0.1),
                        num_epochs=3, eval_sets={"all": (X, y)}, stop_when=stop_when, progress=False)
    assert [len(h) for h in hists] == [2, 3]
    assert seen[0] == (1, ["all_acc", "all_loss", "train_acc", "train_loss"])
    with pytest.raises(ValueError, match="bool array with one entry per member"):
        batched.fit(net, batched.Loader(X, y, 50, [0, 1]), optimizer=batched.optimizer(net, torch.optim.SGD, lr=0.1),
                    num_epochs=1, stop_when=lambda e, m: True, progress=False)


def test_continuing_fit_equals_one_longer_fit():
    X, y = blobs()
    seeds = [0, 1]

    def start():
        net = batched.stack([mlp(s) for s in seeds])
        return batched.Trainer(net, batched.Loader(X, y, 32, seeds), batched.optimizer(net, torch.optim.Adam, lr=1e-2))

    two = start()
    h1, h2 = two.fit(1, progress=False), two.fit(2, progress=False)
    one = start()
    h = one.fit(3, progress=False)
    assert all(bitwise_equal(two.net.member(k), one.net.member(k)) for k in range(2))
    assert h2[0]["epoch"].tolist() == [2, 3] and h[0]["train_loss"].tolist() == h1[0]["train_loss"].tolist() + h2[0]["train_loss"].tolist()


# --------------------------------------------------------------------------- clipping, evaluation, errors
def test_per_member_gradient_clipping_equals_clip_grad_norm_in_separate_runs():
    X, y = blobs()
    seeds = [0, 1]
    net = batched.stack([mlp(s) for s in seeds])
    opt = batched.optimizer(net, torch.optim.SGD, lr=0.5)
    batched.fit(net, batched.Loader(X, y, 32, seeds), optimizer=opt, num_epochs=2, clip_grad_norm=0.05,
                progress=False)
    for k, seed in enumerate(seeds):
        model = mlp(seed)
        sgd = torch.optim.SGD(model.parameters(), lr=0.5)
        loader = training.make_loader(X, y, 32, seed=seed)
        for _ in range(2):
            for xb, yb in loader:
                sgd.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
                sgd.step()
        assert_same_model(net.member(k), model)


def test_evaluate_and_predict_every_member_at_once():
    X, y = blobs()
    members = [mlp(s) for s in range(3)]
    net = batched.stack(members)
    loss, acc = batched.evaluate(net, X, y, batch_size=40)
    pred = batched.predict(net, X.float(), batch_size=40)  # float32 input converted to the float64 parameters
    assert pred.shape == (3, len(X)) and pred.dtype == np.int64
    for k, m in enumerate(members):
        ref_loss, ref_acc = training.evaluate(m, training.make_loader(X, y, 40, shuffle=False), F.cross_entropy)
        assert loss[k] == pytest.approx(ref_loss, rel=1e-12) and acc[k] == ref_acc
        np.testing.assert_array_equal(pred[k], training.predict(m, X))
    per_member = batched.evaluate(net, [X[:50], X[50:100], X[100:]], [y[:50], y[50:100], y[100:]])
    assert per_member[1][2] == training.evaluate(members[2], training.make_loader(X[100:], y[100:], 64, shuffle=False),
                                                 F.cross_entropy)[1]


@pytest.mark.parametrize("cls", [torch.optim.LBFGS, torch.optim.SparseAdam])
def test_optimizers_that_couple_coordinates_are_refused(cls):
    net = batched.stack([mlp(0), mlp(1)])
    with pytest.raises(ValueError, match=f"torch.optim.{cls.__name__} cannot train stacked members"):
        batched.optimizer(net, cls, lr=0.1)
    with pytest.raises(ValueError, match="cannot train stacked members"):
        batched.MemberOptimizer(net, cls(net.stacked_parameters(), lr=0.1))


def test_other_bad_optimizer_and_trainer_input_is_refused():
    X, y = blobs()
    net = batched.stack([mlp(0), mlp(1)])

    class Custom(torch.optim.SGD):
        pass

    with pytest.raises(ValueError, match="not one of the optimizers known to act on each coordinate"):
        batched.optimizer(net, Custom, lr=0.1)
    with pytest.raises(ValueError, match="ASGD keeps rate-dependent state per tensor"):
        batched.optimizer(net, torch.optim.ASGD, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"one rate per member \(S=2\), got 3"):
        batched.optimizer(net, torch.optim.SGD, lr=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"lr\[1\] must be a finite non-negative number"):
        batched.optimizer(net, torch.optim.SGD, lr=[0.1, -1.0])
    with pytest.raises(ValueError, match="not one of the stacked model's"):
        batched.MemberOptimizer(net, torch.optim.SGD(mlp(2).parameters(), lr=0.1))
    opt = batched.optimizer(net, torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match="the loader has 3 members .* but the model has 2"):
        batched.fit(net, batched.Loader(X, y, 8, [0, 1, 2]), optimizer=opt, num_epochs=1)
    loader = batched.Loader(X, y, 8, [0, 1])
    with pytest.raises(ValueError, match="reduction='mean'"):
        batched.fit(net, loader, optimizer=opt, num_epochs=1, loss_fn=nn.CrossEntropyLoss(reduction="sum"))
    with pytest.raises(ValueError, match="monitor 'val_acc' is not recorded"):
        batched.fit(net, loader, optimizer=opt, num_epochs=1, patience=2)
    with pytest.raises(ValueError, match="num_epochs must be a positive integer"):
        batched.fit(net, loader, optimizer=opt, num_epochs=0)
    with pytest.raises(ValueError, match="on_divergence must be"):
        batched.fit(net, loader, optimizer=opt, num_epochs=1, on_divergence="ignore")
    with pytest.raises(ValueError, match="a closure"):
        opt.step(lambda: 0.0)
    other = batched.stack([mlp(0), mlp(1)])
    with pytest.raises(ValueError, match="built for another stacked model"):
        batched.fit(other, loader, optimizer=opt, num_epochs=1)


def test_member_losses_match_each_members_own_loss():
    torch.manual_seed(0)
    out, y = torch.randn(3, 7, 4, dtype=torch.float64), torch.randint(0, 4, (3, 7))
    for loss_fn in (F.cross_entropy, nn.CrossEntropyLoss(label_smoothing=0.1), nn.NLLLoss()):
        got = batched.member_losses(out, y, loss_fn)
        for k in range(3):
            assert float(got[k]) == pytest.approx(float(loss_fn(out[k], y[k])), rel=1e-13)
    with pytest.raises(ValueError, match="leading"):
        batched.member_losses(out, y[:, :5])


# --------------------------------------------------------------------------- rate grids: modes, stopping, orders
def test_epoch_orders_are_make_loaders_and_the_randperm_loop():
    X, y = blobs(n=37)
    orders = batched.epoch_orders(37, 11, 3)
    assert orders.shape == (3, 37) and orders.dtype == torch.int64
    loader = training.make_loader(X, y, 5, seed=11)
    for e in range(3):
        visited = torch.cat([yb for _, yb in loader])
        assert torch.equal(visited, y[orders[e]])
    g = torch.Generator().manual_seed(11)
    rand = batched.epoch_orders(37, 11, 2, order="randperm")
    assert torch.equal(rand[0], torch.randperm(37, generator=g)) and torch.equal(rand[1], torch.randperm(37, generator=g))
    with pytest.raises(ValueError, match="epoch_orders: n must be a positive integer"):
        batched.epoch_orders(0, 1, 1)


@pytest.mark.parametrize("name", ["SGD", "momentum", "Adam", "RMSprop"])
def test_scaled_rates_equal_separate_runs_up_to_rounding(name):
    X, y = blobs()
    base = {"SGD": 0.1, "momentum": 0.05, "Adam": 1e-2, "RMSprop": 1e-3}[name]
    rates = [base, base / 7, base * 3]
    net = batched.stack([mlp(1) for _ in rates])
    make = OPTIMIZERS[name]
    opt = batched.MemberOptimizer(net, make(net.stacked_parameters()), lr=rates, rates="scaled")
    batched.fit(net, batched.Loader(X, y, 25, [1, 1, 1]), optimizer=opt, num_epochs=2, progress=False)
    for k, lr in enumerate(rates):
        model, _ = separate_run(mlp(1), X, y, 25, 1, lambda p: make(p, lr=lr), 2)
        assert_same_model(net.member(k), model)


def test_rprop_rate_grid_is_exact_and_refused_when_scaled():
    X, y = blobs()
    rates = [0.01, 0.002]
    net = batched.stack([mlp(0), mlp(1)])
    opt = batched.optimizer(net, torch.optim.Rprop, lr=rates)
    batched.fit(net, batched.Loader(X, y, 50, [0, 1]), optimizer=opt, num_epochs=2, progress=False)
    for k, lr in enumerate(rates):
        model, _ = separate_run(mlp(k), X, y, 50, k, lambda p: torch.optim.Rprop(p, lr=lr), 2)
        assert_same_model(net.member(k), model)
    with pytest.raises(ValueError, match="use rates='exact'"):
        batched.optimizer(net, torch.optim.Rprop, lr=rates, rates="scaled")


@pytest.mark.parametrize("rates", ["exact", "scaled"])
def test_stopping_in_a_rate_grid_before_and_after_the_first_step(rates):
    """A member stopped before any step keeps its start (and zeros in the optimizer's state); one
    stopped later keeps its weights and state; the others are bitwise what they are without it."""
    X, y = blobs()
    lrs = [1e-2, 1e-3, 3e-2, 1e-2]

    def run(stop_first=None, stop_later=None):
        net = batched.stack([mlp(k) for k in range(4)])
        opt = batched.optimizer(net, torch.optim.Adam, lr=lrs, rates=rates)
        trainer = batched.Trainer(net, batched.Loader(X, y, 30, [0, 1, 2, 3]), opt)
        if stop_first is not None:
            net.stop(stop_first)
        trainer.fit(1, progress=False)
        if stop_later is not None:
            net.stop(stop_later)
        kept = net.member(stop_later) if stop_later is not None else None
        moments = opt.optimizer.state[net.module[0].weight]["exp_avg"].clone()
        trainer.fit(2, progress=False)
        return net, opt, kept, moments

    free, _, _, _ = run()
    net, opt, kept, moments = run(stop_first=1, stop_later=2)
    assert bitwise_equal(net.member(1), mlp(1))
    state = opt.optimizer.state[net.module[0].weight]
    assert not state["exp_avg"][1].any() and not state["exp_avg_sq"][1].any()
    assert bitwise_equal(net.member(2), kept) and torch.equal(state["exp_avg"][2], moments[2])
    for k in (0, 3):
        if rates == "exact":
            assert bitwise_equal(net.member(k), free.member(k))
        else:  # the largest active rate changed from 3e-2 to 1e-2 after member 2 stopped
            assert_same_model(net.member(k), free.member(k))


def test_linear_probe_on_frozen_pretrained_backbones_equals_separate_runs():
    """Chapter 7's probe: each member its own (here: perturbed) backbone, frozen, and a new head."""
    X, y = images(n=24, size=28)
    X = X.float()

    def build(seed):
        net = SmallCNN(num_classes=3, channels=(4, 6), feature_dim=16, seed=seed)
        for p in net.backbone.parameters():
            p.requires_grad_(False)
        return net

    seeds = [0, 1]
    net = batched.stack([build(s) for s in seeds])
    before = [m.backbone.state_dict() for m in net.unstack()]
    batched.fit(net, batched.Loader(X, y, 8, seeds), optimizer=batched.optimizer(net, torch.optim.Adam, lr=1e-2),
                num_epochs=2, progress=False)
    for k, seed in enumerate(seeds):
        model = build(seed)
        separate_run(model, X, y, 8, seed, lambda p: torch.optim.Adam([q for q in p if q.requires_grad], lr=1e-2), 2)
        member = net.member(k)
        assert all(torch.equal(a, b) for a, b in zip(member.backbone.state_dict().values(), before[k].values()))
        assert_same_model(member, model, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batched_training_on_cuda_agrees_with_cpu():
    X, y = blobs(dtype=torch.float32)
    Xi, yi = images(n=32, size=28)
    results = {}
    for device in ("cpu", "cuda"):
        net = batched.stack([mlp(s).float() for s in range(3)]).to(device)
        opt = batched.optimizer(net, torch.optim.Adam, lr=[1e-2, 1e-3, 1e-2])
        hists = batched.fit(net, batched.Loader(X, y, 32, [0, 1, 2], device=device), optimizer=opt, num_epochs=2,
                            val=(X, y), progress=False)
        cnn = batched.stack([SmallCNN(num_classes=3, channels=(4, 6), feature_dim=16, seed=s) for s in range(2)])
        cnn = cnn.to(device)
        batched.fit(cnn, batched.Loader(Xi.float(), yi, 8, [0, 1], device=device),
                    optimizer=batched.optimizer(cnn, torch.optim.SGD, lr=0.05, momentum=0.9), num_epochs=1,
                    progress=False)
        assert next(net.parameters()).device.type == device
        results[device] = (hists, net.member(1).cpu(), batched.predict(cnn, Xi.float()))
    for k in range(3):
        np.testing.assert_allclose(results["cuda"][0][k]["train_loss"], results["cpu"][0][k]["train_loss"], rtol=1e-4)
    assert_same_model(results["cuda"][1], results["cpu"][1], rtol=1e-3, atol=1e-5)
    assert (results["cuda"][2] == results["cpu"][2]).mean() > 0.9
