"""Softmax regression trained for many seeds or settings at once (chapter 4).

Chapter 4.1 writes softmax regression as one linear layer, :math:`\\mathbf{s}_i =
\\operatorname{softmax}(\\tilde W \\tilde{\\mathbf{x}}_i)` with :math:`\\tilde{\\mathbf{x}} = (\\mathbf{x}, 1)`
and :math:`\\tilde W = [W \\;\\; \\mathbf{b}]` of shape (K, D + 1), derives the gradient of the mean
cross-entropy over a batch,

    grad = (S - Y)^T X~ / B        (S: the softmax outputs, Y: the one-hot labels, rows = examples),

checks it against ``torch.autograd`` and then trains with it. The functions here take weights with
leading axes, one slice per seed or per setting, compute every slice's loss and gradient with one
batched matrix product, and let a ``torch.optim`` optimizer take the step (the optimizers act
elementwise, so each slice moves exactly as it would alone). That is how the chapter's tables train
all their seeds, learning rates and optimizers at the cost of a few runs.

- :func:`loss_and_gradient` is the formula above for any leading axes.
- :func:`stability_limit` is gradient descent's (or heavy-ball momentum's) largest stable learning rate
  at :math:`\\tilde W = 0`, :math:`2(1+\\beta)K / \\lambda_{\\max}(C)` with :math:`C = \\tilde X^\\top \\tilde X / N`.
- :func:`full_batch` runs several optimizers (each with its own rate) on the whole data at once.
- :func:`minibatch` runs several models through the minibatches of a ``course_utils.batched.Loader``:
  member ``k`` visits the examples in the order that ``training.make_loader(X, y, batch_size,
  seed=seeds[k])`` gives, so a batched run reproduces the chapter's single-run loop
  (``tests/test_softmax_regression.py``).

Weights start at zero, as in the chapter. Nothing here is specific to images: ``X`` is any float
matrix with one example per row. Training runs on the CPU (chapter 4's sizes are CPU-sized): tensors on
another device are refused with a message that says so.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.optim.optimizer as _torch_optimizer

from . import runtime, validation

__all__ = ["augment", "loss_and_gradient", "stability_limit", "make_optimizer", "OPTIMIZERS", "full_batch",
           "minibatch", "loss", "accuracy", "predict"]

OPTIMIZERS = ("gradient descent", "momentum", "Adam")


def augment(X: torch.Tensor) -> torch.Tensor:
    """Append a column of ones to the last axis: x -> (x, 1)."""
    X = torch.as_tensor(X)
    if X.ndim < 2:
        raise ValueError(f"augment: X must have one example per row (at least 2 axes), got shape {tuple(X.shape)}")
    return torch.cat([X, torch.ones(*X.shape[:-1], 1, dtype=X.dtype)], dim=-1)


def loss_and_gradient(Xa: torch.Tensor, y: torch.Tensor, W: torch.Tensor):
    """Mean cross-entropy and its gradient ``(S - Y)^T X~ / B`` for weights ``W`` (..., K, D+1).

    ``Xa`` is (..., B, D+1) augmented inputs and ``y`` (..., B) integer labels; leading axes broadcast
    against ``W``'s. Returns ``(loss, grad)`` with shapes (...) and (..., K, D+1).
    """
    loss, grad = _grouped(Xa, y, W.unsqueeze(-3))
    return loss[..., 0], grad[..., 0, :, :]


def stability_limit(X: torch.Tensor, num_classes: int, momentum: float = 0.0) -> float:
    """The largest stable learning rate at W~ = 0: 2(1 + beta) / lambda_max(Hessian), in float64.

    At W~ = 0 every softmax output is 1/K and the Hessian is (I/K - 11^T/K^2) (x) C with
    C = X~^T X~ / N, whose largest eigenvalue is lambda_max(C) / K. ``momentum`` = beta of heavy-ball
    momentum (0 for plain gradient descent).
    """
    num_classes = validation.int_at_least("stability_limit: num_classes", num_classes, 2)
    beta = validation.real("stability_limit: momentum", momentum)
    if not 0 <= beta < 1:
        raise ValueError(f"stability_limit: momentum must be in [0, 1), got {beta}")
    Xa = augment(torch.as_tensor(X, dtype=torch.float64))
    C = Xa.T @ Xa / len(Xa)
    return 2 * (1 + beta) * num_classes / torch.linalg.eigvalsh(C)[-1].item()


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    """``torch.optim`` for the chapter's three optimizers: 'gradient descent', 'momentum' or 'Adam'."""
    lr = validation.nonnegative_real(f"make_optimizer: lr for {name!r}", lr, positive=True)
    if name == "gradient descent":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "Adam":
        return torch.optim.Adam(params, lr=lr, fused=True)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(map(repr, OPTIMIZERS))}")


def _on_cpu(where: str, **tensors: torch.Tensor) -> None:
    for name, t in tensors.items():
        if t.device.type != "cpu":
            raise ValueError(f"{where}: {name} is on {t.device}, but this softmax regression trains on the CPU; "
                             "keep the data and the weights on the CPU (build the batched.Loader without device=)")


def _zeros(shape, dtype) -> torch.Tensor:
    p = torch.zeros(shape, dtype=dtype, requires_grad=True)
    p.grad = torch.zeros_like(p)
    return p


def full_batch(Xa: torch.Tensor, y: torch.Tensor, settings: Sequence[tuple[str, float]], num_steps: int,
               num_classes: int, momentum: float = 0.9, bar=None):
    """Full-batch training of one zero-initialised model per setting ``(optimizer name, lr)``, all at once.

    ``Xa`` is (N, D+1), or (S, N, D+1) for one data set per seed (then every setting has S models), and
    ``y`` (N,) or (S, N). Every step computes all models' losses and gradients with one matrix product per
    data set, then each setting's optimizer steps. Returns ``(losses, weights)``: the loss after 0, 1,
    ..., ``num_steps`` steps, an array (num_steps + 1, C) or (num_steps + 1, S, C), and the final
    weights, (C, K, D+1) or (S, C, K, D+1). ``bar`` (a tqdm bar) is advanced once per step. The products
    use every core (``runtime.blas_threads(None)``); the thread setting is restored afterwards.
    """
    num_steps = validation.positive_int("full_batch: num_steps", num_steps)
    _on_cpu("full_batch", Xa=Xa, y=y)
    if not settings:
        raise ValueError("full_batch: no settings given; pass a list of (optimizer name, learning rate)")
    if Xa.ndim not in (2, 3) or y.shape != Xa.shape[:-1]:
        raise ValueError(f"full_batch: Xa must be (N, D+1) or (S, N, D+1) with y (N,) or (S, N); "
                         f"got {tuple(Xa.shape)} and {tuple(y.shape)}")
    lead = tuple(Xa.shape[:-2])
    params = [_zeros((*lead, num_classes, Xa.shape[-1]), Xa.dtype) for _ in settings]
    optimizers = [make_optimizer(name, [p], lr, momentum) for (name, lr), p in zip(settings, params)]
    with runtime.blas_threads(None):  # a few big matrix products per step: worth every core
        return _full_batch_steps(Xa, y, params, optimizers, num_steps, bar)


def _full_batch_steps(Xa, y, params, optimizers, num_steps, bar):
    history = []
    for _ in range(num_steps):
        W = torch.stack([p.detach() for p in params], dim=-3)  # (..., C, K, D+1)
        loss, grad = _grouped(Xa, y, W)
        history.append(loss)
        for c, (p, opt) in enumerate(zip(params, optimizers)):
            p.grad.copy_(grad[..., c, :, :])
            opt.step()
        if bar is not None:
            bar.update(1)
    W = torch.stack([p.detach() for p in params], dim=-3)
    history.append(_grouped(Xa, y, W)[0])
    return torch.stack(history).numpy(), W


def _grouped(Xa: torch.Tensor, y: torch.Tensor, W: torch.Tensor):
    """Losses (..., R) and gradients (..., R, K, D+1) of R models ``W`` (..., R, K, D+1) on the same data.

    ``Xa`` (..., N, D+1) and ``y`` (..., N) broadcast against ``W``'s leading axes. The R models' scores
    come from ONE product with an (R*K)-column weight matrix, their gradients from one more.
    """
    R, K, D1 = W.shape[-3:]
    if Xa.shape[-1] != D1:
        raise ValueError(f"softmax regression: the inputs have {Xa.shape[-1]} columns but W has {D1}; "
                         "augment the inputs (x, 1) and give W one column per input and one for the bias")
    N = Xa.shape[-2]
    if N == 0:
        raise ValueError(f"softmax regression: an empty batch (inputs of shape {tuple(Xa.shape)}) has no mean loss")
    Z = Xa @ W.reshape(*W.shape[:-3], R * K, D1).transpose(-1, -2)  # (..., N, R*K)
    logp = torch.log_softmax(Z.view(*Z.shape[:-1], R, K), dim=-1)
    label = y.unsqueeze(-1).unsqueeze(-1).expand(*logp.shape[:-1], 1)  # (..., N, R, 1)
    loss = -logp.gather(-1, label).squeeze(-1).mean(-2)  # (..., R)
    minus_one = torch.full(label.shape, -1.0, dtype=Z.dtype)
    G = logp.exp_().scatter_add_(-1, label, minus_one).div_(N).reshape(Z.shape)  # (S - Y) / N
    grad = G.transpose(-1, -2) @ Xa  # (..., R*K, D+1)
    return loss, grad.view(*grad.shape[:-2], R, K, D1)


def minibatch(loader, models: Sequence[tuple[torch.Tensor, torch.optim.Optimizer]], num_epochs: int,
              after_epoch: Callable[[int], None] | None = None, bar=None) -> np.ndarray:
    """Train R models, each with one slice per loader member, through the same minibatches.

    ``loader``: a :class:`course_utils.batched.Loader` over augmented inputs (x, 1); member k gets the
    batches of ``training.make_loader(X, y, batch_size, seed=seeds[k])`` (or of its own subset).
    ``models``: R pairs ``(W, optimizer)``, ``W`` a leaf tensor (S, K, D+1) with S = the loader's members,
    and an optimizer over it. Returns the epoch losses as an array (R, S, num_epochs): the mean over the
    examples of the batch losses, each measured with the weights before that batch's step (what
    chapter 4.1's ``train_epochs`` reports). ``after_epoch(epoch)`` runs after every epoch (e.g. to score
    the models); ``bar`` (a tqdm bar) advances once per step. Batches of ``LARGE_BATCH`` rows or more use
    every core, smaller ones one thread (many small operations, which threads only slow down).
    """
    num_epochs = validation.positive_int("minibatch: num_epochs", num_epochs)
    if not models:
        raise ValueError("minibatch: no models given; pass a list of (weights, optimizer) pairs")
    _on_cpu("minibatch", **{"the loader's X": loader.X, "the loader's y": loader.y},
            **{f"models[{r}]'s W": W for r, (W, _) in enumerate(models)})
    S = loader.num_members
    for W, _ in models:
        if W.ndim != 3 or W.shape[0] != S or W.shape[2] != loader.X.shape[-1]:
            raise ValueError(f"minibatch: each W must be (members={S}, K, D+1={loader.X.shape[-1]}), "
                             f"got {tuple(W.shape)}")
        if W.grad is None:
            W.grad = torch.zeros_like(W)
    weights = [w for w, _ in models]
    optimizers = list(dict.fromkeys(opt for _, opt in models))  # each optimizer steps once
    totals = torch.zeros(num_epochs, S, len(models), dtype=torch.float64)  # summed over the examples
    # large batches are a few big matrix products per step: worth every core; small ones are many
    # small operations, which threads only slow down
    with runtime.blas_threads(None if loader.batch_size >= LARGE_BATCH else 1):
        _epochs(loader, weights, optimizers, totals, after_epoch, bar)
    return (totals / loader.n).permute(2, 1, 0).numpy()


LARGE_BATCH = 1024  # minibatch() uses every core from this batch size on


def _epochs(loader, weights, optimizers, totals, after_epoch, bar) -> None:
    buffers: dict = {}  # the step's work tensors, reused from step to step
    for epoch in range(len(totals)):
        step = None  # rebuilt every epoch: after_epoch may change an optimizer (its rate, a hook)
        for Xb, yb in loader:  # (S, b, D+1), (S, b)
            totals[epoch].add_(_minibatch_step(Xb, yb, weights, buffers))  # fills every W.grad
            if step is None:
                _step(optimizers)  # the first step creates the optimizers' state ...
                step = _step_plan(optimizers)  # ... which the plan steps in place from now on
            else:
                step()
            if bar is not None:
                bar.update(1)
        if after_epoch is not None:
            after_epoch(epoch)


def _step(optimizers) -> None:
    """One step of every optimizer, as ``opt.step()`` would take it.

    Fused Adams on the CPU with one parameter group of one dtype, their state in place (after their first
    ``step()``), no hooks and the same settings step together in one call of the fused kernel that
    ``Adam.step`` itself ends in (``torch._fused_adam_``, after counting the step), on the optimizers' own
    state: the same result, bitwise (``tests/test_softmax_regression.py``), without ``step()``'s per-call
    bookkeeping, which at batch size 8 cost four times the update (about 130 µs a call). The kernel's
    signature has been the same since PyTorch 2.0; a test compares it with ``step()`` bit for bit. Every other
    optimizer, and every optimizer where this PyTorch lacks the kernel, calls ``step()``.
    """
    _step_plan(optimizers)()


def _step_plan(optimizers) -> Callable[[], None]:
    """:func:`_step` for the optimizers as they are now: a function that takes one step of each.

    The plan holds the tensors of each group of fused Adams (parameters, gradients, state), so it stays
    valid while those tensors are updated in place, as :func:`minibatch` does (the gradients are written
    into ``W.grad``, the state is created by the first step); build a new one when a tensor is replaced
    or an optimizer's settings or hooks change.
    """
    together: dict[tuple, list] = {}
    own_step = []
    for opt in optimizers:
        key = _fused_adam_key(opt)
        if key is None:
            own_step.append(opt)
        else:
            together.setdefault(key, []).append(opt)
    groups = []
    for (lr, beta1, beta2, eps, weight_decay), group in together.items():
        params = [p for opt in group for p in opt.param_groups[0]["params"]]
        states = [opt.state[p] for opt in group for p in opt.param_groups[0]["params"]]
        tensors = ([p.detach() for p in params], [p.grad for p in params], [s["exp_avg"] for s in states],
                   [s["exp_avg_sq"] for s in states], [s["step"] for s in states])
        groups.append((tensors, dict(amsgrad=False, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay,
                                     eps=eps, maximize=False, grad_scale=None, found_inf=None)))

    def step() -> None:
        for opt in own_step:
            opt.step()
        with torch.no_grad():
            for (p, g, m, v, steps), settings in groups:
                # what torch.optim.adam._fused_adam does for CPU tensors of one dtype: count the step,
                # then the fused kernel
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(p, g, m, v, [], steps, **settings)

    return step


def _fused_adam_key(opt):
    """The settings of a fused Adam that :func:`_step` may step directly, or None."""
    if type(opt) is not torch.optim.Adam or len(opt.param_groups) != 1 or not hasattr(torch, "_fused_adam_"):
        return None
    if opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks or \
            _torch_optimizer._global_optimizer_pre_hooks or _torch_optimizer._global_optimizer_post_hooks:
        return None
    g = opt.param_groups[0]
    if not g.get("fused") or g["amsgrad"] or g["maximize"] or g["capturable"] or g["differentiable"] or \
            g.get("decoupled_weight_decay") or isinstance(g["lr"], torch.Tensor):
        return None
    for p in g["params"]:
        state = opt.state.get(p)
        if p.grad is None or p.grad.is_sparse or not state or "step" not in state or p.device.type != "cpu" \
                or p.dtype != torch.float32 or p.grad.dtype != p.dtype:
            return None
    return (g["lr"], g["betas"][0], g["betas"][1], g["eps"], g["weight_decay"])


def _minibatch_step(Xb: torch.Tensor, yb: torch.Tensor, weights: Sequence[torch.Tensor],
                    buffers: dict | None = None) -> torch.Tensor:
    """Summed losses (S, R) of R models (each W: (S, K, D+1)) on one batch; writes each gradient into W.grad.

    The formula of :func:`_grouped` for one minibatch: one product for the scores of all R models, one for
    their gradients (small batches are dominated by the number of operations per step, not their size).
    ``buffers``: a dict in which the step keeps its work tensors from one call to the next (None: new ones).
    """
    S, b, D1 = Xb.shape
    R, K = len(weights), weights[0].shape[1]
    buffers = {} if buffers is None else buffers
    if R == 1:
        W = weights[0].detach()
    else:
        W = buffers.get("W")
        if W is None or W.shape != (S, R * K, D1) or W.dtype != weights[0].dtype:
            W = buffers["W"] = torch.empty((S, R * K, D1), dtype=weights[0].dtype)
            buffers["grad"] = torch.empty_like(W)
        torch.cat([w.detach() for w in weights], dim=1, out=W)  # (S, R*K, D+1)
    logp = torch.log_softmax(torch.bmm(Xb, W.transpose(1, 2)).view(S, b, R, K), dim=-1)
    label = yb.reshape(S, b, 1, 1).expand(S, b, R, 1)
    loss = logp.gather(-1, label).sum(1).neg_().view(S, R)  # summed over the batch
    minus_one = buffers.get((S, b, R))
    if minus_one is None or minus_one.dtype != W.dtype:
        minus_one = buffers[(S, b, R)] = torch.full((S, b, R, 1), -1.0, dtype=W.dtype)
    G = logp.exp_().scatter_add_(-1, label, minus_one).div_(b)  # (S - Y) / B
    if R == 1:
        torch.bmm(G.view(S, b, K).transpose(1, 2), Xb, out=weights[0].grad)
    else:
        grad = torch.bmm(G.view(S, b, R * K).transpose(1, 2), Xb, out=buffers["grad"]).view(S, R, K, -1)
        for r, w in enumerate(weights):
            w.grad.copy_(grad[:, r])
    return loss


def accuracy(Xa: torch.Tensor, y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Share of correct predictions for weights ``W`` (..., K, D+1) on ``Xa`` (N, D+1): shape (...)."""
    with torch.no_grad():
        pred = (Xa @ W.transpose(-1, -2)).argmax(-1)
    return (pred == y).double().mean(-1)


def predict(Xa: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Predicted classes for weights ``W`` (..., K, D+1) on ``Xa`` (N, D+1): shape (..., N)."""
    with torch.no_grad():
        return (Xa @ W.transpose(-1, -2)).argmax(-1)


def loss(Xa: torch.Tensor, y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of weights ``W`` (..., K, D+1) on ``Xa`` (..., N, D+1), without a gradient."""
    with torch.no_grad():
        logp = torch.log_softmax(Xa @ W.transpose(-1, -2), dim=-1)
        return -logp.gather(-1, y.expand(logp.shape[:-1]).unsqueeze(-1)).squeeze(-1).mean(-1)

