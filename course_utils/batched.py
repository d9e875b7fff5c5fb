"""Every seed at the cost of one: S copies of a small PyTorch model trained as one batched model.

The chapters teach a single training run; their tables train every seed of a configuration (and
configurations that differ only in a learning rate) together. ``S`` *members*, each with its own
initial weights, its own minibatch order, its own data subset and its own learning rate, become
one model whose parameters carry a leading member axis ``S``; every layer makes one batched
matrix product (``torch.baddbmm``) or one grouped convolution per step for all members. Each
member computes exactly what its separate run computes, up to the rounding of the batched
kernels (tested against separate runs: ``tests/test_batched.py``).

Used by chapters 6 and 7 for their multi-seed tables, and by chapter 4 for
``training.make_loader``'s order (:func:`epoch_orders`).

Example (3 seeds of one configuration; a separate run of seed ``s`` would be
``training.make_loader(X, y, 64, seed=s)`` with ``torch.optim.Adam(model.parameters(), lr=1e-3)``)::

    from course_utils import batched
    seeds = [0, 1, 2]
    net = batched.stack([build(seed) for seed in seeds])          # parameters (3, ...)
    loader = batched.Loader(X, y, batch_size=64, seeds=seeds)     # make_loader's order, per seed
    opt = batched.optimizer(net, torch.optim.Adam, lr=1e-3)       # or lr=[1e-3, 1e-2, 1e-1]
    histories = batched.fit(net, loader, optimizer=opt, num_epochs=10, val=(X_val, y_val))
    histories[k]                  # seed k's table: epoch, step, train_loss, train_acc, val_loss, val_acc
    models = net.unstack()        # ordinary nn.Modules with the trained weights

The pieces, each usable alone:

- :func:`stack` (a :class:`Stack`): ``net(x)`` takes ``x`` of shape ``(S, B, ...)`` (member k's
  batch in ``x[k]``) or, with ``shared=True``, ``(B, ...)`` given to every member; it returns
  ``(S, B, ...)``. ``net.unstack()`` / ``net.member(k)`` give ordinary modules. Two ways to run:
  ``mode="layers"`` replaces every layer by a batched one (``nn.Linear``, ``nn.Conv1d/2d``,
  ``nn.BatchNorm1d/2d`` with running statistics per member, activations, pooling, ``nn.Flatten``)
  and runs the model's own forward on ``(S, B, ...)``; ``mode="vmap"`` runs any model through
  ``torch.func.functional_call`` and ``torch.func.vmap``. ``mode="auto"`` (the default) takes
  "layers" for ``nn.Sequential`` trees of such layers, for ``models.SmallCNN`` and with
  ``forward=`` (a function ``forward(module, x)`` that only calls layers and acts elementwise),
  else "vmap". A model whose forward only calls its layers and adds or scales their outputs
  (chapter 6's MLP) runs in "layers" mode when asked: ``stack(models, mode="layers")``.
- :class:`Loader`: member k's minibatches in exactly the order of
  ``training.make_loader(X_k, y_k, batch_size, seed=seeds[k])`` over successive epochs (or, with
  ``order="randperm"``, of ``torch.randperm(n, generator=torch.Generator().manual_seed(seeds[k]))``
  split into batches each epoch), with optional per-member data subsets; one ``index_select`` per
  step, no per-example Python. :func:`epoch_orders` gives those orders as index tensors.
- :func:`optimizer` (a :class:`MemberOptimizer`): a ``torch.optim`` optimizer over the stacked
  parameters. Only optimizers that act on each coordinate separately (SGD with or without
  (Nesterov) momentum, Adam, AdamW, Adamax, NAdam, RAdam, RMSprop, Adagrad, Adadelta, Rprop, ASGD)
  are accepted: on stacked parameters they give every member its own update. LBFGS, Adafactor,
  Muon and SparseAdam couple coordinates and are refused. ``lr`` may be one value per member (a
  learning-rate grid; not for ASGD, whose per-tensor state depends on the rate), computed
  exactly (``rates="exact"``, one optimizer pass per distinct rate) or at the cost of one pass
  (``rates="scaled"``).
- :func:`fit` / :class:`Trainer`: per-member history, optional per-member early stopping
  (``patience`` on a monitored metric, or ``stop_when``), per-member gradient clipping, and what
  happens to a member whose loss is not finite (``on_divergence``). A stopped member's parameters,
  buffers and optimizer state no longer change; the others go on, bitwise as if it were not there
  (with ``rates="scaled"``, up to rounding when it had the largest rate).
- :func:`evaluate`, :func:`predict`: every member on one array at once.

``python -m course_utils.batched`` measures 3 members trained as one against 3 separate runs
written as chapters 4, 6 and 7 write them (CPU seconds per epoch, one thread).

A custom loop is the chapters' loop with a leading member axis::

    for xb, yb in loader:                        # xb (S, B, ...), yb (S, B)
        losses = batched.member_losses(net(xb), yb)      # (S,), each member's batch mean
        opt.zero_grad()
        losses.sum().backward()                  # each member gets the gradient of its own loss
        opt.step()

How the members stay apart: the loss is the *sum* of the members' means, so member k's
parameters receive exactly the gradient of member k's loss; every batched layer computes each
member from its own slice; the accepted optimizers are elementwise, so one ``step()`` on the
stacked parameters is every member's own step. With several learning rates the optimizer steps
once per distinct rate from the same parameters and state, and each member keeps the pass at its
own rate (``rates="exact"``), or, cheaper, steps once at the largest rate and moves each member
its rate's share of the way (``rates="scaled"``, exact up to about one rounding per step). A NaN
or inf in one member therefore never reaches another, and with ``rates="exact"`` a member's
numbers do not depend on which other members train beside it (tested bitwise: beside a member
that diverges, and against a run without it).

Why one module (about 1,600 lines): the stacked model, the loader, the optimizer and the trainer
share one convention (the member axis first, members stopped through ``Stack.active``), and a
chapter uses them together; :func:`epoch_orders` is the one place that knows how
``training.make_loader`` draws its order.

Not supported: dropout and other random layers (their masks could not be a separate run's), tied
parameters, optimizers that couple coordinates, clipping by the global norm over all members
(:func:`clip_grad_norm_` clips each member by its own norm), members with different data sizes.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import validation

__all__ = [
    "Stack",
    "stack",
    "Loader",
    "MemberOptimizer",
    "optimizer",
    "member_losses",
    "clip_grad_norm_",
    "Trainer",
    "fit",
    "evaluate",
    "predict",
    "ELEMENTWISE_OPTIMIZERS",
    "PER_MEMBER_RATE_OPTIMIZERS",
    "SCALED_RATE_OPTIMIZERS",
    "epoch_orders",
]

# Optimizers whose update of a coordinate depends only on that coordinate's gradient, value and state.
ELEMENTWISE_OPTIMIZERS = tuple(
    getattr(torch.optim, name)
    for name in ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "Rprop", "ASGD")
    if hasattr(torch.optim, name)
)
# ... whose state shared by a whole tensor (a step count) does not depend on the learning rate.
PER_MEMBER_RATE_OPTIMIZERS = tuple(c for c in ELEMENTWISE_OPTIMIZERS if c.__name__ != "ASGD")
# ... whose step is proportional to the rate and whose state does not depend on it (rates="scaled").
SCALED_RATE_OPTIMIZERS = tuple(c for c in ELEMENTWISE_OPTIMIZERS if c.__name__ not in ("Rprop", "ASGD"))
_COUPLING = {
    "LBFGS": "it searches along a direction over all coordinates at once (a line search on one loss)",
    "Adafactor": "it factors the second moment of a matrix into row and column statistics",
    "Muon": "it orthogonalises the whole update matrix",
    "SparseAdam": "it needs sparse gradients",
}


# --------------------------------------------------------------------------- batched layers
def _to_channels(x: torch.Tensor) -> torch.Tensor:
    """(S, B, C, *spatial) -> (B, S * C, *spatial); free when x's memory is (B, S, ...)."""
    return x.transpose(0, 1).reshape(x.shape[1], x.shape[0] * x.shape[2], *x.shape[3:])


def _from_channels(z: torch.Tensor, S: int) -> torch.Tensor:
    """(B, S * C, *spatial) -> (S, B, C, *spatial), a view."""
    return z.view(z.shape[0], S, z.shape[1] // S, *z.shape[2:]).transpose(0, 1)


def _stack_param(tensors: Sequence[torch.Tensor], name: str) -> nn.Parameter:
    flags = {t.requires_grad for t in tensors}
    if len(flags) > 1:
        raise ValueError(f"stack: parameter {name!r} requires grad in some members and not in others; "
                         f"freeze the same parameters in every member")
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).clone(), requires_grad=flags.pop())


def _stack_buffer(tensors: Sequence[torch.Tensor | None]):
    if any(t is None for t in tensors):
        return None
    return torch.stack([t.detach() for t in tensors]).clone()


class _BatchedLinear(nn.Module):
    """S ``nn.Linear`` layers: weight (S, out, in), bias (S, out); input (S, B, ..., in)."""

    def __init__(self, leaves: Sequence[nn.Linear]):
        super().__init__()
        self.in_features, self.out_features = leaves[0].in_features, leaves[0].out_features
        self.weight = _stack_param([m.weight for m in leaves], "weight")
        self.bias = None if leaves[0].bias is None else _stack_param([m.bias for m in leaves], "bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = self.weight.shape[0]
        flat = x if x.ndim == 3 else x.reshape(S, -1, x.shape[-1])
        wt = self.weight.transpose(1, 2)
        out = torch.bmm(flat, wt) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), flat, wt)
        return out if x.ndim == 3 else out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"members={self.weight.shape[0]}, in_features={self.in_features}, out_features={self.out_features}"


class _BatchedConv(nn.Module):
    """S ``nn.Conv1d``/``nn.Conv2d`` layers as one grouped convolution; input (S, B, C, *spatial).

    The members' channels lie side by side, (B, S * C, H, W), in channels-last memory order, which
    PyTorch's CPU kernels convolve and pool faster (SmallCNN, 12 members: about 1.4x); the
    following layers keep that order, and ``_to_channels`` / ``_from_channels`` stay views.
    """

    def __init__(self, leaves):
        super().__init__()
        m = leaves[0]
        self.dims = 1 if isinstance(m, nn.Conv1d) else 2
        self._conv = F.conv1d if self.dims == 1 else F.conv2d
        self.stride, self.padding, self.dilation, self.groups = m.stride, m.padding, m.dilation, m.groups
        self.padding_mode = m.padding_mode
        self._pad = getattr(m, "_reversed_padding_repeated_twice", None)
        self.out_channels = m.out_channels
        self.weight = _stack_param([c.weight for c in leaves], "weight")
        self.bias = None if m.bias is None else _stack_param([c.bias for c in leaves], "bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = self.weight.shape[0]
        xc = _to_channels(x)
        if self.dims == 2:  # channels-last images: the grouped convolution, ReLU and pooling run faster on CPUs
            xc = xc.contiguous(memory_format=torch.channels_last)
        w = self.weight.reshape(-1, *self.weight.shape[2:])
        b = None if self.bias is None else self.bias.reshape(-1)
        if self.padding_mode != "zeros":
            xc = F.pad(xc, self._pad, mode=self.padding_mode)
            padding = 0 if self.dims == 1 else (0, 0)
        else:
            padding = self.padding
        return _from_channels(self._conv(xc, w, b, self.stride, padding, self.dilation, self.groups * S), S)

    def extra_repr(self) -> str:
        return f"members={self.weight.shape[0]}, {tuple(self.weight.shape[1:])}, groups={self.groups}"


class _BatchedBatchNorm(nn.Module):
    """S ``nn.BatchNorm1d``/``2d`` layers: batch statistics and running statistics per member.

    The members' channels are laid side by side, (B, S * C, ...), so one ``F.batch_norm`` call
    normalises every member over its own batch; the stacked buffers (S, C) are updated through
    flat views, exactly as ``nn.BatchNorm`` updates its own.
    """

    def __init__(self, leaves):
        super().__init__()
        m = leaves[0]
        self.num_features, self.eps, self.momentum = m.num_features, m.eps, m.momentum
        self.affine, self.track_running_stats = m.affine, m.track_running_stats
        self.example_dims = (1, 2) if isinstance(m, nn.BatchNorm1d) else (3,)
        self.weight = _stack_param([b.weight for b in leaves], "weight") if m.affine else None
        self.bias = _stack_param([b.bias for b in leaves], "bias") if m.affine else None
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, _stack_buffer([getattr(b, name) for b in leaves]))
        self.training = m.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim - 2 not in self.example_dims:
            kind = "BatchNorm1d" if self.example_dims == (1, 2) else "BatchNorm2d"
            raise ValueError(f"batched {kind}: expected input (S, B, C{', L' if kind.endswith('1d') else ', H, W'})"
                             f"{' or (S, B, C)' if kind.endswith('1d') else ''}, got {tuple(x.shape)}")
        S = x.shape[0]
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average; members that train share the count
                factor = 1.0 / float(self.num_batches_tracked.max())
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        rm = self.running_mean.view(-1) if (track and self.running_mean is not None) else None
        rv = self.running_var.view(-1) if (track and self.running_var is not None) else None
        w = None if self.weight is None else self.weight.reshape(-1)
        b = None if self.bias is None else self.bias.reshape(-1)
        out = F.batch_norm(_to_channels(x), rm, rv, w, b, use_batch, factor, self.eps)
        return _from_channels(out, S)

    def extra_repr(self) -> str:
        return f"members={self.running_mean.shape[0] if self.running_mean is not None else '?'}, {self.num_features}"


class _PerExample(nn.Module):
    """A layer without parameters that treats dimension 0 as its batch, applied to (S, B, ...)."""

    def __init__(self, module: nn.Module, channelwise: bool):
        super().__init__()
        self.inner = module
        self.channelwise = channelwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, B = x.shape[:2]
        if self.channelwise and x.ndim >= 4:  # (B, S * C, ...): a view when x came from a batched convolution
            return _from_channels(self.inner(_to_channels(x)), S)
        out = self.inner(x.reshape(S * B, *x.shape[2:]))
        return out.view(S, B, *out.shape[1:])


_ELEMENTWISE_LAYERS = tuple(getattr(nn, n) for n in (
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh",
    "Softplus", "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid", "Tanhshrink", "LogSigmoid", "Identity",
) if hasattr(nn, n))
_CHANNELWISE_LAYERS = tuple(getattr(nn, n) for n in (
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d", "LPPool2d",
))
_PER_EXAMPLE_LAYERS = (nn.Flatten, nn.Unflatten, nn.Softmax, nn.LogSoftmax)
_RANDOM_LAYERS = tuple(getattr(nn, n) for n in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                                                "FeatureAlphaDropout") if hasattr(nn, n))
_CONTAINERS = (nn.Sequential,)


def _layer_kind(module: nn.Module) -> str | None:
    """'linear', 'conv', 'bn', 'elementwise', 'channelwise', 'per-example', 'container' or None (unknown)."""
    t = type(module)
    if t is nn.Linear:
        return "linear"
    if t in (nn.Conv1d, nn.Conv2d):
        return "conv"
    if t in (nn.BatchNorm1d, nn.BatchNorm2d):
        return "bn"
    if t in _ELEMENTWISE_LAYERS:
        return "elementwise"
    if t in _CHANNELWISE_LAYERS:
        return None if getattr(module, "return_indices", False) else "channelwise"
    if t in _PER_EXAMPLE_LAYERS:
        return "per-example"
    if t in _CONTAINERS:
        return "container"
    return None


def _layers_problem(model: nn.Module) -> str | None:
    """Why ``model`` cannot run in "layers" mode, or None. Modules of unknown type are allowed as
    long as they only hold other modules (their forward then runs on (S, B, ...) inputs)."""
    for name, m in model.named_modules():
        if _layer_kind(m) is not None:
            continue
        own = [n for n, _ in m.named_parameters(recurse=False)] + [n for n, _ in m.named_buffers(recurse=False)]
        if own:
            return f"{name or 'the model'} ({type(m).__name__}) holds its own parameter or buffer {own[0]!r}"
        if not list(m.children()):
            return f"layer {name!r} ({type(m).__name__}) has no batched version"
    return None


def _batched_layer(leaves: Sequence[nn.Module]) -> nn.Module:
    kind = _layer_kind(leaves[0])
    if kind == "linear":
        return _BatchedLinear(leaves)
    if kind == "conv":
        return _BatchedConv(leaves)
    if kind == "bn":
        return _BatchedBatchNorm(leaves)
    if kind == "elementwise":
        return copy.deepcopy(leaves[0])
    return _PerExample(copy.deepcopy(leaves[0]), channelwise=(kind == "channelwise"))


# --------------------------------------------------------------------------- the stacked model
def _check_same_structure(models: Sequence[nn.Module]) -> None:
    first = models[0]
    names0 = [(n, type(m)) for n, m in first.named_modules()]
    p0 = [(n, tuple(p.shape), p.dtype, p.device) for n, p in first.named_parameters()]
    b0 = [(n, None if b is None else (tuple(b.shape), b.dtype)) for n, b in first.named_buffers()]
    reprs0 = [m.extra_repr() for _, m in first.named_modules()]
    for k, m in enumerate(models[1:], start=1):
        if not isinstance(m, nn.Module):
            raise TypeError(f"stack: member {k} is a {type(m).__name__}, not an nn.Module")
        names = [(n, type(x)) for n, x in m.named_modules()]
        if names != names0:
            diff = next((a, b) for a, b in zip(names + [None] * len(names0), names0 + [None] * len(names)) if a != b)
            raise ValueError(f"stack: member {k} has another architecture than member 0 (first difference: "
                             f"{diff[0]} vs {diff[1]}); stack members that differ only in their weights")
        params = [(n, tuple(p.shape), p.dtype, p.device) for n, p in m.named_parameters()]
        if params != p0:
            diff = next((a, b) for a, b in zip(params, p0) if a != b) if len(params) == len(p0) else (len(params), len(p0))
            raise ValueError(f"stack: member {k}'s parameters differ from member 0's in shape, dtype or device "
                             f"(first difference: {diff[0]} vs {diff[1]})")
        if [(n, None if b is None else (tuple(b.shape), b.dtype)) for n, b in m.named_buffers()] != b0:
            raise ValueError(f"stack: member {k}'s buffers differ from member 0's in name, shape or dtype")
        reprs = [x.extra_repr() for _, x in m.named_modules()]
        if reprs != reprs0:
            i = next(i for i, (a, b) in enumerate(zip(reprs, reprs0)) if a != b)
            raise ValueError(f"stack: layer {names0[i][0] or '(the model)'} of member {k} is configured differently "
                             f"from member 0's ({reprs[i]!r} vs {reprs0[i]!r})")
        if m.training != first.training:
            raise ValueError(f"stack: member {k} is in {'train' if m.training else 'eval'} mode and member 0 is not; "
                             f"put every member in the same mode")


def _known_forward(model: nn.Module):
    """The forward of a course_utils model written with layers only (for "layers" mode), or None.

    ``models.SmallCNN.forward`` checks that its input is one batch of images, (N, 1, 28, 28), and
    then computes ``head(backbone(x))``; batched, the same layers run on (S, N, 1, 28, 28).
    """
    from .models import SmallCNN

    if type(model) is SmallCNN:
        return _small_cnn_forward
    return None


def _small_cnn_forward(module, x):
    if x.ndim != 5 or tuple(x.shape[2:]) != (1, 28, 28):
        raise ValueError(f"batched SmallCNN expects input of shape (S, N, 1, 28, 28) (or (N, 1, 28, 28) with "
                         f"shared=True), got {tuple(x.shape)}; convert uint8 images with models.images_to_tensor(X)")
    return module.head(module.backbone(x))


class _Call(nn.Module):
    """Wraps a module and a function ``forward(module, x, ...)`` so that vmap can call it as a module."""

    def __init__(self, module: nn.Module, fn: Callable):
        super().__init__()
        self.m = module
        self.__dict__["fn"] = fn

    def forward(self, *args, **kwargs):
        return self.fn(self.m, *args, **kwargs)


class Stack(nn.Module):
    """``S`` members of one architecture as one module; build it with :func:`stack`.

    ``net.module`` holds the stacked parameters and buffers, each with a leading axis of size
    ``S`` (``net.num_members``). ``net(x)`` takes ``x`` of shape ``(S, B, ...)``, member ``k``'s
    batch in ``x[k]``; ``net(x, shared=True)`` takes ``(B, ...)`` and gives it to every member.
    Further arguments go to the model's forward (e.g. ``return_hidden=True``); every output has
    the member axis first. ``net.active`` (a bool tensor) marks the members that still train (see
    :meth:`stop`).
    """

    def __init__(self, models: Sequence[nn.Module], mode: str = "auto", forward: Callable | None = None):
        super().__init__()
        if isinstance(models, nn.Module) or not isinstance(models, (list, tuple)):
            raise TypeError(f"stack expects a list of nn.Modules (one per member), got {type(models).__name__}")
        if len(models) == 0:
            raise ValueError("stack: the list of models is empty; pass one model per member (seed)")
        if not all(isinstance(m, nn.Module) for m in models):
            bad = next(type(m).__name__ for m in models if not isinstance(m, nn.Module))
            raise TypeError(f"stack expects nn.Modules, got a {bad}")
        if mode not in ("auto", "layers", "vmap"):
            raise ValueError(f"stack: mode must be 'auto', 'layers' or 'vmap', got {mode!r}")
        if forward is not None and not callable(forward):
            raise TypeError(f"stack: forward must be a function forward(module, x, ...) or None, got {forward!r}")
        if len({id(m) for m in models}) != len(models):
            raise ValueError("stack: the same model object appears twice; build one model per member "
                             "(copy.deepcopy a shared start)")
        first = models[0]
        n_all = len(list(first.named_parameters(remove_duplicate=False)))
        if n_all != len(list(first.named_parameters())):
            raise ValueError("stack: the model shares (ties) a parameter between layers; tied parameters are not supported")
        random = [n for n, m in first.named_modules() if isinstance(m, _RANDOM_LAYERS)]
        if random:
            raise ValueError(f"stack: layer {random[0]!r} is {type(first.get_submodule(random[0])).__name__}, a random "
                             f"layer; batched members could not draw their separate runs' random masks. Remove it, or "
                             f"train these members separately")
        _check_same_structure(models)
        S = len(models)
        if forward is None and mode != "vmap":
            forward = _known_forward(first)
        root_is_layer = _layer_kind(first) not in (None, "container")
        problem = None if root_is_layer else _layers_problem(first)
        custom = [n for n, m in first.named_modules() if _layer_kind(m) is None and (n or forward is None)]
        if mode == "auto":
            mode = "layers" if root_is_layer or (problem is None and not custom) else "vmap"
        elif mode == "layers" and problem is not None:
            raise ValueError(f"stack(mode='layers'): {problem}; use mode='vmap' (any layer) or mode='auto'")
        self.mode = mode
        self.num_members = S
        self.__dict__["_prototype"] = copy.deepcopy(first)  # not a submodule: a template for unstack
        self._forward_fn = forward
        template = copy.deepcopy(first)
        if mode == "layers" and root_is_layer:
            template = _batched_layer(models)
        elif mode == "layers":
            self._replace_layers(template, models)
        else:
            self._stack_in_place(template, models)
        self.module = template
        self.register_buffer("active", torch.ones(S, dtype=torch.bool), persistent=False)
        self.__dict__["_frozen_buffers"] = None
        self.__dict__["_vmapped"] = None

    # -- construction
    @staticmethod
    def _replace_layers(template: nn.Module, models: Sequence[nn.Module]) -> None:
        def visit(prefix: str, module: nn.Module):
            for name, child in list(module.named_children()):
                full = f"{prefix}{name}"
                if _layer_kind(child) in ("container", None):
                    visit(full + ".", child)
                else:
                    setattr(module, name, _batched_layer([m.get_submodule(full) for m in models]))

        visit("", template)

    @staticmethod
    def _stack_in_place(template: nn.Module, models: Sequence[nn.Module]) -> None:
        for name, p in list(template.named_parameters()):
            owner, leaf = template.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2]
            setattr(owner, leaf, _stack_param([m.get_parameter(name) for m in models], name))
        for name, b in list(template.named_buffers()):
            owner, leaf = template.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2]
            owner._buffers[leaf] = _stack_buffer([m.get_buffer(name) for m in models])

    # -- running
    def _check_x(self, x, shared: bool):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"batched model: x must be a torch.Tensor, got {type(x).__name__}")
        if shared:
            if x.ndim < 1:
                raise ValueError(f"batched model: a shared input needs a batch axis, got shape {tuple(x.shape)}")
        elif x.ndim < 2 or x.shape[0] != self.num_members:
            raise ValueError(f"batched model: x must have a leading member axis of size S={self.num_members}, "
                             f"got shape {tuple(x.shape)}; to give one input (B, ...) to every member call "
                             f"net(x, shared=True)")
        dtype = self._dtype
        if dtype is not None and x.is_floating_point() and x.dtype != dtype:
            raise TypeError(f"batched model: x is {x.dtype} but the parameters are {dtype}; convert the data "
                            f"(e.g. torch.as_tensor(X, dtype={dtype})) or the model (net.to({dtype}))")

    def forward(self, x: torch.Tensor, *args, shared: bool = False, **kwargs):
        self._check_x(x, validation.check_bool("batched model: shared", shared))
        if self.mode == "layers":
            if shared:
                x = x.unsqueeze(0).expand(self.num_members, *x.shape)
            out = self.module(x, *args, **kwargs) if self._forward_fn is None else \
                self._forward_fn(self.module, x, *args, **kwargs)
        else:
            out = self._vmap_forward(x, shared, args, kwargs)
        return out

    def _vmap_forward(self, x, shared, args, kwargs):
        from torch.func import functional_call, vmap

        target = self.module if self._forward_fn is None else _Call(self.module, self._forward_fn)
        prefix = "" if self._forward_fn is None else "m."
        params = {prefix + n: p for n, p in self.module.named_parameters()}
        buffers = {prefix + n: b for n, b in self.module.named_buffers()}

        def one(p, b, xi):
            return functional_call(target, (p, b), (xi, *args), kwargs, strict=True)

        return vmap(one, in_dims=(0, 0, None if shared else 0), randomness="error")(params, buffers, x)

    @property
    def _dtype(self):
        p = next(iter(self.module.parameters()), None)
        return p.dtype if p is not None and p.is_floating_point() else None

    # -- members
    def stacked_parameters(self) -> list[nn.Parameter]:
        """The trainable stacked parameters (``requires_grad``), each of shape ``(S, ...)``."""
        return [p for p in self.module.parameters() if p.requires_grad]

    def _state_of(self, k: int) -> dict:
        names = dict(self._prototype.named_parameters())
        names.update(dict(self._prototype.named_buffers()))
        state = {}
        stacked = dict(self.module.named_parameters())
        stacked.update({n: b for n, b in self.module.named_buffers() if b is not None})
        for name in names:
            if names[name] is None:
                continue
            state[name] = stacked[name][k].detach().clone()
        return state

    def member(self, k: int) -> nn.Module:
        """Member ``k`` as an ordinary module (a copy, in the stack's train/eval mode, dtype and device)."""
        k = validation.int_at_least("member: k", k, 0)
        if k >= self.num_members:
            raise ValueError(f"member: k must be below the number of members S={self.num_members}, got {k}")
        m = copy.deepcopy(self._prototype)
        m.load_state_dict(self._state_of(k), strict=True, assign=True)
        for (name, p), (_, q) in zip(m.named_parameters(), self._prototype.named_parameters()):
            p.requires_grad_(q.requires_grad)
        return m.train(self.training)

    def unstack(self) -> list[nn.Module]:
        """Every member as an ordinary module with its trained weights and buffers (copies)."""
        return [self.member(k) for k in range(self.num_members)]

    # -- stopping
    def stop(self, members) -> None:
        """Stop members (an index, a list of indices or a bool mask of length S): from now on their
        parameters, buffers and optimizer state no longer change (the :class:`MemberOptimizer`
        keeps their slices at every step, and puts back the buffers that a forward pass in train
        mode updated, such as batch norm's running statistics); the others train on."""
        mask = torch.zeros(self.num_members, dtype=torch.bool)
        if isinstance(members, (torch.Tensor, np.ndarray)) and members.dtype in (torch.bool, np.bool_):
            members = torch.as_tensor(members).cpu()
            if members.shape != (self.num_members,):
                raise ValueError(f"stop: a mask needs one entry per member ({self.num_members}), got shape {tuple(members.shape)}")
            mask = members
        else:
            idx = [members] if validation.is_int(members) else list(members)
            for k in idx:
                if not validation.is_int(k) or not 0 <= k < self.num_members:
                    raise ValueError(f"stop: members are indices 0..{self.num_members - 1}, got {k!r}")
                mask[int(k)] = True
        new = mask.to(self.active.device) & self.active
        if not bool(new.any()):
            return
        self.active &= ~new
        self.__dict__["_frozen_buffers"] = {n: b.detach().clone() for n, b in self.module.named_buffers() if b is not None}

    def _restore_buffers(self) -> None:
        stopped = ~self.active
        with torch.no_grad():
            for n, b in self.module.named_buffers():
                if b is not None and n in self._frozen_buffers:
                    b[stopped] = self._frozen_buffers[n][stopped]

    def extra_repr(self) -> str:
        return f"members={self.num_members}, mode={self.mode!r}"


def stack(models: Sequence[nn.Module], mode: str = "auto", forward: Callable | None = None) -> Stack:
    """One batched model from ``S`` models of the same architecture (their current weights,
    buffers and ``requires_grad`` flags; the models themselves are not changed).

    ``mode``: "layers" (batched layers, fastest), "vmap" (any model), "auto" (see the module
    docstring). ``forward``: optional ``forward(module, x, ...)`` used instead of the model's own
    forward (e.g. ``lambda m, x: m.head(m.backbone(x))`` for a model whose forward checks the shape
    of a single batch).
    """
    return Stack(models, mode=mode, forward=forward)


# --------------------------------------------------------------------------- data
def _member_data(X, y, S: int, where: str):
    """(X_all, y_all, index) from shared (N, ...) data or from S per-member arrays; index is
    (S, n) into X_all or None (every member sees all of X)."""
    from .training import _labels

    if isinstance(X, (list, tuple)):
        if not isinstance(y, (list, tuple)) or len(X) != S or len(y) != S:
            raise ValueError(f"{where}: per-member data needs S={S} arrays X and S label arrays y, got "
                             f"{len(X)} and {len(y) if isinstance(y, (list, tuple)) else 'one array'}")
        Xs = [torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x) for x in X]
        ys = [_labels(t, where) for t in y]
        sizes = [len(x) for x in Xs]
        for k, (a, b) in enumerate(zip(Xs, ys)):
            if len(a) != len(b):
                raise ValueError(f"{where}: member {k}'s X has {len(a)} samples but its y has {len(b)}")
        if len(set(sizes)) != 1:
            raise ValueError(f"{where}: every member needs the same number of examples, got {sizes}")
        if sizes[0] == 0:
            raise ValueError(f"{where}: the members' data are empty; pass at least one example")
        if len({tuple(x.shape[1:]) for x in Xs}) != 1:
            raise ValueError(f"{where}: the members' examples have different shapes")
        n = sizes[0]
        index = torch.arange(S * n).view(S, n)
        return torch.cat(Xs), torch.cat(ys), index
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if X.ndim == 0:
        raise ValueError(f"{where}: X must have one row per example, got a scalar")
    y = _labels(y, where)
    if len(X) != len(y):
        raise ValueError(f"{where}: X has {len(X)} samples but y has {len(y)}")
    if len(X) == 0:
        raise ValueError(f"{where}: X is empty (shape {tuple(X.shape)}); pass at least one example")
    return X, y, None


def _draw_epoch(g: torch.Generator, n: int, order: str, shuffle: bool) -> torch.Tensor:
    """One epoch's order of n examples from generator g, drawing what the epoch's loader draws."""
    if order == "make_loader":
        torch.empty((), dtype=torch.int64).random_(generator=g)  # the DataLoader iterator's base seed
    if not shuffle:
        return torch.arange(n)
    perm = torch.randperm(n, generator=g)
    if order == "make_loader":
        torch.randperm(n, generator=g)  # RandomSampler's second permutation, for its (empty) remainder
    return perm


def epoch_orders(n: int, seed: int, num_epochs: int, order: str = "make_loader") -> torch.Tensor:
    """The order in which a seeded loader visits ``n`` examples in each of ``num_epochs`` epochs:
    an int64 tensor (num_epochs, n), row e the indices of epoch e + 1.

    ``order="make_loader"``: the order of ``training.make_loader(X, y, batch_size, seed=seed)``
    iterated epoch after epoch (any batch size; per epoch its DataLoader draws the iterator's
    base seed, the permutation, and the sampler's closing second permutation, all from one
    ``torch.Generator().manual_seed(seed)``). ``order="randperm"``: each epoch
    ``torch.randperm(n, generator=g)`` from one generator seeded with ``seed``.
    """
    n = validation.positive_int("epoch_orders: n", n)
    seed = validation.seed("epoch_orders: seed", seed)
    num_epochs = validation.positive_int("epoch_orders: num_epochs", num_epochs)
    if order not in ("make_loader", "randperm"):
        raise ValueError(f"epoch_orders: order must be 'make_loader' or 'randperm', got {order!r}")
    g = torch.Generator().manual_seed(seed)
    return torch.stack([_draw_epoch(g, n, order, True) for _ in range(num_epochs)])




class Loader:
    """Minibatches for ``S`` members at once: ``for xb, yb in loader`` gives ``xb`` of shape
    ``(S, B, ...)`` and ``yb`` of shape ``(S, B)``, one epoch per ``for`` loop.

    ``seeds``: one seed per member (repeat a seed to give several members the same order, e.g. a
    learning-rate grid). With ``order="make_loader"`` (the default) member ``k`` sees its examples
    in exactly the order of ``training.make_loader(X_k, y_k, batch_size, seed=seeds[k])`` iterated
    epoch after epoch (a ``DataLoader`` with ``shuffle=True`` and a seeded ``torch.Generator``:
    per epoch one draw of the loader's base seed, the permutation, and the sampler's closing
    ``randperm``); with ``order="randperm"`` each epoch is
    ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``, the generator carried
    over epochs. ``shuffle=False`` keeps every member's order (full-batch training, evaluation).

    Data: ``X`` (N, ...) and class ids ``y`` (N,) shared by every member, optionally with
    ``subsets`` (S index arrays of one length n: member k trains on ``X[subsets[k]]``, as a
    separate run on that subset would); or ``X`` and ``y`` as lists of S arrays of one length.
    The last batch of an epoch is short when ``batch_size`` does not divide n, for every member.
    """

    def __init__(self, X, y, batch_size: int, seeds: Sequence[int], *, subsets=None, shuffle: bool = True,
                 order: str = "make_loader", device=None):
        if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__"):
            raise TypeError(f"Loader: seeds must be a list of seeds, one per member, got {seeds!r}")
        seeds = [validation.seed(f"Loader: seeds[{k}]", s) for k, s in enumerate(seeds)]
        if not seeds:
            raise ValueError("Loader: seeds is empty; give one seed per member")
        S = len(seeds)
        self.batch_size = validation.positive_int("Loader: batch_size", batch_size)
        self.shuffle = validation.check_bool("Loader: shuffle", shuffle)
        if order not in ("make_loader", "randperm"):
            raise ValueError(f"Loader: order must be 'make_loader' or 'randperm', got {order!r}")
        X, y, index = _member_data(X, y, S, "Loader")
        if subsets is not None:
            if index is not None:
                raise ValueError("Loader: give either per-member arrays X, y or subsets of one X, not both")
            if len(subsets) != S:
                raise ValueError(f"Loader: subsets needs one index array per member (S={S}), got {len(subsets)}")
            idx = [torch.as_tensor(np.asarray(s) if not isinstance(s, torch.Tensor) else s) for s in subsets]
            for k, s in enumerate(idx):
                if s.ndim == 1 and s.numel() == 0:
                    continue
                if s.ndim != 1 or s.dtype in (torch.bool,) or s.is_floating_point():
                    raise ValueError(f"Loader: subsets[{k}] must be a 1-D array of integer indices, got "
                                     f"shape {tuple(s.shape)} dtype {s.dtype}")
                if len(s) and (int(s.min()) < 0 or int(s.max()) >= len(X)):
                    raise ValueError(f"Loader: subsets[{k}] holds indices outside 0..{len(X) - 1}")
            sizes = [len(s) for s in idx]
            if len(set(sizes)) != 1:
                raise ValueError(f"Loader: every member's subset needs the same size, got {sizes}")
            if sizes[0] == 0:
                raise ValueError("Loader: the subsets are empty; give each member at least one example")
            index = torch.stack(idx).to(torch.int64)
        if device is not None:
            X, y = X.to(device), y.to(device)
        self.X, self.y, self.index = X, y, index
        self.seeds, self.order, self.num_members = seeds, order, S
        self.n = len(X) if index is None else index.shape[1]
        self._generators = [torch.Generator().manual_seed(s) for s in seeds]

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def epoch_order(self) -> torch.Tensor:
        """The next epoch's order, (S, n) positions into each member's data (advances the generators)."""
        return torch.stack([_draw_epoch(g, self.n, self.order, self.shuffle) for g in self._generators])

    def __iter__(self):
        order = self.epoch_order()
        rows = order if self.index is None else self.index.gather(1, order)
        rows = rows.to(self.X.device)
        S, X, y, B = self.num_members, self.X, self.y, self.batch_size
        # one small gather per step: it stays in the cache and gives contiguous batches (gathering
        # thousands of rows at once and handing out views of them measured 2x slower at batch size 8)
        for start in range(0, self.n, B):
            idx = rows[:, start:start + B].reshape(-1)
            b = len(idx) // S
            yield X.index_select(0, idx).view(S, b, *X.shape[1:]), y.index_select(0, idx).view(S, b)


# --------------------------------------------------------------------------- optimizer
def _check_optimizer_class(cls, per_member_lr: bool, rates: str = "exact"):
    name = getattr(cls, "__name__", repr(cls))
    if name in _COUPLING:
        raise ValueError(f"batched: torch.optim.{name} cannot train stacked members because {_COUPLING[name]}, "
                         f"which would mix the members; use an elementwise optimizer "
                         f"({', '.join(c.__name__ for c in ELEMENTWISE_OPTIMIZERS)}) or train separately")
    if cls not in ELEMENTWISE_OPTIMIZERS:
        raise ValueError(f"batched: {name} is not one of the optimizers known to act on each coordinate separately "
                         f"({', '.join(c.__name__ for c in ELEMENTWISE_OPTIMIZERS)}); an optimizer that couples "
                         f"coordinates would mix the members. Train these members separately")
    if per_member_lr and cls not in PER_MEMBER_RATE_OPTIMIZERS:
        raise ValueError(f"batched: {name} keeps rate-dependent state per tensor (not per coordinate), so members "
                         f"cannot have different rates; give one lr, or use one of "
                         f"{', '.join(c.__name__ for c in PER_MEMBER_RATE_OPTIMIZERS)}")
    if per_member_lr and rates == "scaled" and cls not in SCALED_RATE_OPTIMIZERS:
        raise ValueError(f"batched: {name}'s state depends on the learning rate, so rates='scaled' cannot give members "
                         f"different rates; use rates='exact'")


class MemberOptimizer:
    """A ``torch.optim`` optimizer over a :class:`Stack`'s parameters, with a learning rate per
    member and per-member stopping. Build it with :func:`optimizer`, or wrap an optimizer that
    was built on ``net.stacked_parameters()`` with ``MemberOptimizer(net, torch_optimizer)``
    (``lr``: None for the groups' own rates, or one rate per member; ``rates``: see below).

    How a step gives every member its own update: the accepted optimizers act on each coordinate
    separately, so one ``step()`` on the stacked parameters is every member's own step. With
    several rates:

    - ``rates="exact"`` (the default): the inner optimizer steps once per distinct rate of the
      members that train, each time from the same parameters and state, and every member keeps
      the pass at its own rate: bitwise what the optimizer computes at that rate. A step costs
      one optimizer step per distinct rate, plus copies.
    - ``rates="scaled"``: one step at the largest rate, after which member k's parameters are
      moved ``lr_k / lr_max`` of the way from where they were (``torch.lerp``). The accepted
      optimizers' steps are proportional to the rate and their state does not depend on it, so
      this is member k's own step up to about one rounding of each parameter per step (members
      at the largest rate are exact). About the cost of one step; not for Rprop and ASGD.

    A stopped member keeps its parameters and state (and its buffers, see :meth:`Stack.stop`).
    With one rate and no stopped member a step is one plain ``step()``.

    ``opt.optimizer`` is the inner ``torch.optim`` optimizer; ``opt.lr`` the members' rates
    (NumPy array). A learning-rate scheduler on ``opt.optimizer`` scales every member's rate by
    its group's rate over the group's initial rate. ``zero_grad``, ``step``, ``state_dict``,
    ``load_state_dict`` and ``param_groups`` work as usual.
    """

    def __init__(self, net: Stack, inner: torch.optim.Optimizer, lr=None, rates: str = "exact"):
        if not isinstance(net, Stack):
            raise TypeError(f"MemberOptimizer: net must be a batched.Stack (from batched.stack), got {type(net).__name__}")
        if not isinstance(inner, torch.optim.Optimizer):
            raise TypeError(f"MemberOptimizer: expected a torch.optim optimizer, got {type(inner).__name__}")
        if rates not in ("exact", "scaled"):
            raise ValueError(f"MemberOptimizer: rates must be 'exact' or 'scaled', got {rates!r}")
        S = net.num_members
        member_rates = None if lr is None else _member_rates(lr, S, "MemberOptimizer")
        grid = member_rates is not None and len(set(member_rates)) > 1
        _check_optimizer_class(type(inner), grid, rates)
        stacked = {id(p) for p in net.module.parameters()}
        for group in inner.param_groups:
            for p in group["params"]:
                if id(p) not in stacked:
                    raise ValueError("MemberOptimizer: the optimizer holds a parameter that is not one of the stacked "
                                     "model's; build it on net.stacked_parameters()")
                if p.ndim == 0 or p.shape[0] != S:
                    raise ValueError(f"MemberOptimizer: a parameter of shape {tuple(p.shape)} has no member axis of size {S}")
        self.net, self.optimizer, self.rates = net, inner, rates
        self._rates = member_rates if grid else None  # None: every member at its groups' (common) rate
        if member_rates is not None and not grid:
            for g in inner.param_groups:
                g["lr"] = member_rates[0]
        self._initial = [g["lr"] for g in inner.param_groups]
        self._masks = {}

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def lr(self) -> np.ndarray:
        """Each member's learning rate (of the first parameter group) as it stands now."""
        g, g0 = self.optimizer.param_groups[0]["lr"], self._initial[0]
        if self._rates is None:
            return np.full(self.net.num_members, float(g))
        return np.array([self._rate(r, g, g0) for r in self._rates])

    @staticmethod
    def _rate(member_rate: float, group_lr, initial_lr):
        return member_rate if group_lr == initial_lr else member_rate * (float(group_lr) / float(initial_lr))

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state)

    # -- the parameters and their state as flat lists
    def _params(self):
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _tensors(self, params):
        """(per-member tensors, shared tensors, signature): the parameters and the state tensors
        with their shape (a leading member axis), the other state tensors (step counts), and the
        layout, which changes only when the optimizer creates its state."""
        member, shared, signature = list(params), [], []
        for p in params:
            state = self.optimizer.state.get(p, {})
            signature.append(tuple(state))
            for v in state.values():
                if isinstance(v, torch.Tensor):
                    (member if v.shape == p.shape else shared).append(v)
                elif not isinstance(v, (int, float)):
                    signature.append(id(v))
        return member, shared, signature

    def _passes(self, active: torch.Tensor):
        """[(rate or None, bool mask of its members)] for the members that train."""
        if self._rates is None:
            return [(None, active)] if bool(active.any()) else []
        by_rate = {}
        for k in torch.nonzero(active).flatten().tolist():
            by_rate.setdefault(self._rates[k], []).append(k)
        out = []
        for rate, ks in by_rate.items():
            mask = torch.zeros_like(active)
            mask[ks] = True
            out.append((rate, mask))
        return out

    def _set_rate(self, rate, lrs):
        if rate is not None:
            for g, lr0, init in zip(self.optimizer.param_groups, lrs, self._initial):
                g["lr"] = self._rate(rate, lr0, init)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            raise ValueError("MemberOptimizer.step: a closure (re-evaluating one loss) would mix the members; "
                             "compute the losses, call backward, then step()")
        active = self.net.active.cpu()
        passes = self._passes(active)
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        try:
            if not passes:
                pass  # every member stopped
            elif len(passes) == 1 and bool(active.all()):
                self._set_rate(passes[0][0], lrs)
                self.optimizer.step()
            elif self.rates == "scaled":
                self._scaled_step(passes, active, lrs)
            else:
                self._exact_step(passes, lrs)
        finally:
            for g, lr0 in zip(self.optimizer.param_groups, lrs):
                g["lr"] = lr0
        if self.net._frozen_buffers is not None:
            self.net._restore_buffers()
        return None

    def _layout(self, member):
        """A cached :class:`_Layout` of these tensors, or None when they cannot share one buffer."""
        ids = tuple(map(id, member))
        cached = getattr(self, "_cached_layout", None)
        if cached is not None and cached.ids == ids:
            return cached
        layout = _Layout.build(member, self.net.num_members)
        self._cached_layout = layout
        return layout

    def _exact_step(self, passes, lrs):
        params = self._params()
        member, shared, signature = self._tensors(params)
        created = any(not self.optimizer.state.get(p) for p in params)
        layout = None if created else self._layout(member)
        if layout is None:
            return self._exact_step_general(passes, lrs, params, member, shared, signature)
        layout.snapshot()
        saved_s = [t.clone() for t in shared]
        for i, (rate, mask) in enumerate(passes):
            if i > 0:
                layout.restore()
                if shared:
                    torch._foreach_copy_(shared, saved_s)
            self._set_rate(rate, lrs)
            self.optimizer.step()
            if i == 0:
                if tuple(map(id, self._tensors(params)[0])) != layout.ids:
                    raise RuntimeError(f"batched: {type(self.optimizer).__name__} replaced its state tensors during a "
                                       f"step; MemberOptimizer expects them updated in place")
                layout.results.copy_(layout.saved)
            layout.merge(mask)
        layout.write_results()

    def _exact_step_general(self, passes, lrs, params, member, shared, signature):
        """The exact step when the optimizer creates its state (the first step) or the tensors
        differ in dtype or device: the same passes, with per-parameter copies."""
        S = self.net.num_members
        saved = _Flat(member, S)
        saved_s = [t.clone() for t in shared]
        before = None  # per-parameter state, kept when the optimizer may create state in this step
        if len(passes) > 1 and any(not self.optimizer.state.get(p) for p in params):
            before = {p: {k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                          for k, v in self.optimizer.state.get(p, {}).items()} for p in params}
        results = now = None
        for i, (rate, mask) in enumerate(passes):
            if i > 0 and before is None:
                saved.copy_to(member)
                if shared:
                    torch._foreach_copy_(shared, saved_s)
            elif i > 0:  # start again from the state as it was, some of it not yet created
                saved.copy_to(params)
                for p in params:
                    if before[p]:
                        self.optimizer.state[p] = {k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                                                   for k, v in before[p].items()}
                    else:
                        self.optimizer.state.pop(p, None)
            self._set_rate(rate, lrs)
            self.optimizer.step()
            if i == 0 or before is not None:
                now, _, now_sig = self._tensors(params)
            if i == 0:
                if now_sig == signature:
                    before = None
                    results = saved.clone()
                else:  # members outside every pass (stopped) keep what they had; state created now: zeros
                    old = {id(t): v for t, v in zip(member, saved.views())}
                    results = _Flat([old[id(t)] if id(t) in old else torch.zeros_like(t) for t in now], S)
            results.merge(_Flat(now, S), mask)
        results.copy_to(now)

    def _scaled_step(self, passes, active, lrs):
        params = self._params()
        S = self.net.num_members
        top = max(rate for rate, _ in passes) if self._rates is not None else None
        member, _, signature = self._tensors(params)
        stopped = not bool(active.all())
        layout = None if stopped else _Layout.build(params, S) if getattr(self, "_param_layout", None) is None \
            or self._param_layout.ids != tuple(map(id, params)) else self._param_layout
        if layout is not None:  # the common case: every member trains
            self._param_layout = layout
            layout.snapshot()
            self._set_rate(top, lrs)
            self.optimizer.step()
            torch.cat(layout.rows, dim=1, out=layout.scratch)
            torch.lerp(layout.saved, layout.scratch, self._weights(layout.saved, top), out=layout.results)
            layout.write_results()
            return
        saved = _Flat(member if stopped else params, S)
        self._set_rate(top, lrs)
        self.optimizer.step()
        if self._rates is not None:
            moved = _Flat(params, S)
            old = _Flat(member[:len(params)], S, data=saved.data[:, :moved.data.shape[1]])
            torch.lerp(old.data, moved.data, self._weights(moved.data, top), out=moved.data)
            moved.copy_to(params)
        if stopped:
            now, _, now_sig = self._tensors(params)
            if now_sig != signature:  # the state was created by this step: stopped members hold zeros
                old = {id(t): v for t, v in zip(member, saved.views())}
                saved = _Flat([old[id(t)] if id(t) in old else torch.zeros_like(t) for t in now], S)
            current = _Flat(now, S)
            current.merge(saved, ~active)
            current.copy_to(now)

    def _weights(self, like: torch.Tensor, top: float) -> torch.Tensor:
        """lr_k / top per member as an (S, 1) tensor (1 for every member at the rate ``top``)."""
        w = torch.tensor([r / top if top > 0 else 1.0 for r in self._rates], dtype=torch.float64)
        return w.to(device=like.device, dtype=like.dtype).view(-1, 1)


class _Layout:
    """Contiguous tensors of one dtype and device with a leading member axis S, and three
    (S, total) buffers: a snapshot, the merged results and scratch space. Built once and reused
    while the optimizer keeps the same tensors, so a pass costs a few operations, not a few per
    tensor."""

    @classmethod
    def build(cls, tensors, S: int):
        if not tensors or any(not t.is_contiguous() for t in tensors):
            return None
        if len({(t.dtype, t.device) for t in tensors}) != 1:
            return None
        self = cls()
        self.ids = tuple(map(id, tensors))
        self.tensors = list(tensors)
        self.rows = [t.detach().view(S, -1) for t in tensors]
        total = sum(r.shape[1] for r in self.rows)
        make = lambda: torch.empty(S, total, dtype=tensors[0].dtype, device=tensors[0].device)  # noqa: E731
        self.saved, self.results, self.scratch = make(), make(), make()
        self.saved_views = _Flat([], S, data=self.saved)._with_shapes([t.shape for t in tensors]).views()
        self.results_views = _Flat([], S, data=self.results)._with_shapes([t.shape for t in tensors]).views()
        return self

    def snapshot(self) -> None:
        torch.cat(self.rows, dim=1, out=self.saved)

    def restore(self) -> None:
        torch._foreach_copy_(self.tensors, self.saved_views)

    def merge(self, members: torch.Tensor) -> None:
        """results <- the current tensors for the members marked in ``members`` (bool, S)."""
        torch.cat(self.rows, dim=1, out=self.scratch)
        torch.where(members.to(self.results.device).view(-1, 1), self.scratch, self.results, out=self.results)

    def write_results(self) -> None:
        torch._foreach_copy_(self.tensors, self.results_views)


class _Flat:
    """Tensors with a leading member axis S laid side by side in one (S, total) tensor, so that a
    copy, a merge or a lerp over all of them is one operation."""

    def __init__(self, tensors, S: int, data: torch.Tensor | None = None):
        self.shapes = [t.shape for t in tensors]
        self.S = S
        if data is None:
            data = torch.cat([t.detach().reshape(S, -1) for t in tensors], dim=1) if tensors else torch.zeros(S, 0)
        self.data = data

    def clone(self) -> "_Flat":
        return _Flat([], self.S, data=self.data.clone())._with_shapes(self.shapes)

    def _with_shapes(self, shapes):
        self.shapes = shapes
        return self

    def views(self) -> list[torch.Tensor]:
        out, start = [], 0
        for shape in self.shapes:
            n = math.prod(shape[1:])
            out.append(self.data[:, start:start + n].view(shape))
            start += n
        return out

    def copy_to(self, tensors) -> None:
        if tensors:
            torch._foreach_copy_(list(tensors), self.views()[:len(tensors)])

    def merge(self, other: "_Flat", members: torch.Tensor) -> None:
        """Take the members marked in ``members`` (bool, S) from ``other``; the rest stays."""
        mask = members.to(self.data.device).view(-1, 1)
        torch.where(mask, other.data, self.data, out=self.data)


def _member_rates(lr, S: int, where: str) -> list[float]:
    arr = np.asarray(lr.detach().cpu() if isinstance(lr, torch.Tensor) else lr, dtype=object)
    if arr.ndim != 1 or len(arr) != S:
        raise ValueError(f"{where}: lr needs one rate per member (S={S}), got {arr.shape[0] if arr.ndim == 1 else lr!r}")
    return [validation.nonnegative_real(f"{where}: lr[{k}]", float(r) if isinstance(r, (np.floating, torch.Tensor)) else r)
            for k, r in enumerate(arr)]


def optimizer(net: Stack, optimizer_class, lr, rates: str = "exact", **kwargs) -> MemberOptimizer:
    """``optimizer_class(net.stacked_parameters(), lr=..., **kwargs)`` for the stacked members.

    ``lr``: one learning rate for every member, or a sequence of ``S`` rates (a learning-rate
    grid: member k trains at ``lr[k]``). ``rates``: "exact" (one optimizer pass per distinct
    rate) or "scaled" (one pass; see :class:`MemberOptimizer`). ``kwargs`` go to the optimizer
    (momentum, nesterov, betas, weight_decay, fused, ...). Refused: optimizers that couple
    coordinates (LBFGS, Adafactor, Muon, SparseAdam) and, for a rate grid, ASGD (its
    rate-dependent state is one number per tensor) and with ``rates="scaled"`` also Rprop.
    """
    if not isinstance(net, Stack):
        raise TypeError(f"optimizer: net must be a batched.Stack (from batched.stack), got {type(net).__name__}")
    if not isinstance(optimizer_class, type):
        raise TypeError(f"optimizer: optimizer_class must be a torch.optim class such as torch.optim.Adam, "
                        f"got {optimizer_class!r}")
    if rates not in ("exact", "scaled"):
        raise ValueError(f"optimizer: rates must be 'exact' or 'scaled', got {rates!r}")
    member_rates = None
    if isinstance(lr, (list, tuple, np.ndarray, torch.Tensor)):
        member_rates = _member_rates(lr, net.num_members, "optimizer")
        lr = max(member_rates)
    else:
        lr = validation.nonnegative_real("optimizer: lr", lr)
    _check_optimizer_class(optimizer_class, member_rates is not None and len(set(member_rates)) > 1, rates)
    params = net.stacked_parameters()
    if not params:
        raise ValueError("optimizer: the stacked model has no trainable parameters (requires_grad=True)")
    return MemberOptimizer(net, optimizer_class(params, lr=lr, **kwargs), member_rates, rates=rates)


# --------------------------------------------------------------------------- losses and clipping
def _is_cross_entropy(loss_fn) -> bool:
    if loss_fn is F.cross_entropy:
        return True
    return (type(loss_fn) is nn.CrossEntropyLoss and loss_fn.weight is None and loss_fn.reduction == "mean")


def member_losses(out: torch.Tensor, y: torch.Tensor, loss_fn=F.cross_entropy) -> torch.Tensor:
    """Each member's mean loss over its batch, shape ``(S,)``: ``out`` (S, B, ...) and ``y`` (S, B).

    ``loss_fn`` is a per-batch loss that averages over the batch, as in a separate run
    (``F.cross_entropy``, ``nn.CrossEntropyLoss()``, or any ``loss_fn(out_k, y_k)`` returning the
    batch mean, applied to each member with ``torch.vmap``). Backpropagate ``losses.sum()``: each
    member's parameters receive the gradient of its own loss.
    """
    if out.shape[:2] != y.shape[:2]:
        raise ValueError(f"member_losses: outputs {tuple(out.shape)} and targets {tuple(y.shape)} need the same "
                         f"leading (S, B) axes")
    if _is_cross_entropy(loss_fn):
        S, B = y.shape[:2]
        smoothing = 0.0 if loss_fn is F.cross_entropy else loss_fn.label_smoothing
        per = F.cross_entropy(out.reshape(S * B, *out.shape[2:]), y.reshape(S * B, *y.shape[2:]),
                              reduction="none", label_smoothing=smoothing)
        return per.view(S, -1).mean(1)
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction != "mean":
        raise ValueError(f"member_losses: loss_fn must average over the batch (reduction='mean'), got {reduction!r}")
    return torch.vmap(loss_fn)(out, y)


@torch.no_grad()
def clip_grad_norm_(net: Stack, max_norm: float) -> torch.Tensor:
    """Clip each member's gradient to norm ``max_norm`` over that member's parameters only, as
    ``torch.nn.utils.clip_grad_norm_`` does in a separate run; returns the members' norms (S,)."""
    max_norm = validation.nonnegative_real("clip_grad_norm_: max_norm", max_norm, positive=True)
    grads = [p.grad for p in net.stacked_parameters() if p.grad is not None]
    S = net.num_members
    if not grads:
        return torch.zeros(S)
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(S, -1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, dim=0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype).view(-1, *([1] * (g.ndim - 1))))
    return total


# --------------------------------------------------------------------------- evaluation
def _chunks(X, index, batch_size):
    n = len(X) if index is None else index.shape[1]
    for start in range(0, n, batch_size):
        if index is None:
            yield X[start:start + batch_size], None, start
        else:
            idx = index[:, start:start + batch_size]
            yield X.index_select(0, idx.reshape(-1).to(X.device)).view(*idx.shape, *X.shape[1:]), idx, start


def _param_dtype(net: Stack):
    p = next(iter(net.module.parameters()), None)
    return None if p is None else p.dtype


def _device(net: Stack):
    p = next(iter(net.module.parameters()), None)
    return torch.device("cpu") if p is None else p.device


@torch.no_grad()
def _evaluate(net: Stack, X, y, index, loss_fn, batch_size):
    dtype, device = _param_dtype(net), _device(net)
    S = net.num_members
    total = torch.zeros(S, dtype=torch.float64, device=device)
    correct = torch.zeros(S, dtype=torch.int64, device=device)
    n = 0
    for xb, idx, start in _chunks(X, index, batch_size):
        if xb.is_floating_point() and dtype is not None and dtype.is_floating_point:
            xb = xb.to(dtype)
        xb = xb.to(device)
        if idx is None:
            out = net(xb, shared=True)
            yb = y[start:start + len(xb)].to(device).unsqueeze(0).expand(S, -1)
        else:
            out = net(xb)
            yb = y.index_select(0, idx.reshape(-1).to(y.device)).view(idx.shape).to(device)
        b = yb.shape[1]
        total += member_losses(out, yb, loss_fn).double() * b
        correct += (out.argmax(-1) == yb).sum(1)
        n += b
    return (total / n).cpu().numpy(), (correct.double() / n).cpu().numpy()


def evaluate(net: Stack, X, y, loss_fn=F.cross_entropy, batch_size: int = 1024):
    """Every member's mean loss and accuracy on ``(X, y)``: two NumPy arrays of shape (S,).

    ``X``, ``y``: shared by every member, or lists of S arrays (one per member). The model is
    put in eval mode and back in its former mode afterwards.
    """
    if not isinstance(net, Stack):
        raise TypeError(f"evaluate: net must be a batched.Stack, got {type(net).__name__}")
    batch_size = validation.positive_int("evaluate: batch_size", batch_size)
    X, y, index = _member_data(X, y, net.num_members, "evaluate")
    was = net.training
    net.eval()
    try:
        return _evaluate(net, X, y, index, loss_fn, batch_size)
    finally:
        net.train(was)


@torch.no_grad()
def predict(net: Stack, X, batch_size: int = 1024) -> np.ndarray:
    """Every member's predicted class ids (argmax) for ``X`` (N, ...): an int64 array (S, N).

    Floating-point inputs are converted to the parameters' dtype (as ``training.predict``); the
    model runs in eval mode and is put back in its former mode afterwards.
    """
    if not isinstance(net, Stack):
        raise TypeError(f"predict: net must be a batched.Stack, got {type(net).__name__}")
    batch_size = validation.positive_int("predict: batch_size", batch_size)
    t = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if t.ndim == 0 or len(t) == 0:
        raise ValueError(f"predict: X is empty (shape {tuple(t.shape)}); pass at least one example")
    dtype, device = _param_dtype(net), _device(net)
    was = net.training
    net.eval()
    try:
        out = []
        for xb in torch.split(t, batch_size):
            if xb.is_floating_point() and dtype is not None and dtype.is_floating_point:
                xb = xb.to(dtype)
            out.append(net(xb.to(device), shared=True).argmax(-1).cpu())
    finally:
        net.train(was)
    return torch.cat(out, dim=1).numpy().astype(np.int64, copy=False)


# --------------------------------------------------------------------------- training
class Trainer:
    """Trains a :class:`Stack` with a :class:`Loader` and a :class:`MemberOptimizer`, one epoch at
    a time; :meth:`fit` may be called again to continue (epochs, steps, early-stopping state and
    the loader's order carry on, as with ``training.fit`` on the same loader and optimizer).

    Every epoch records, per member: ``epoch``, ``step`` (the member's steps so far),
    ``train_loss``/``train_acc`` (the epoch's running means over its examples, in train mode,
    as ``training.fit`` reports them) and, for every evaluation set ``name``, ``{name}_loss`` and
    ``{name}_acc`` after the epoch in eval mode. ``eval_sets`` maps names to ``(X, y)``; ``val``
    is short for ``eval_sets={"val": val}``.

    Stopping a member (it keeps its weights, buffers and optimizer state from then on):

    - ``patience``: after ``patience`` epochs without improving ``monitor`` (default "val_acc";
      higher is better for ``*_acc``, lower for ``*_loss``) by more than ``min_delta``;
      ``restore_best`` puts back the member's weights and buffers of its best epoch;
    - ``stop_when(epoch, metrics)``: a function given the epoch and a dict of (S,) arrays (the
      columns above) that returns a bool array (S,) of members to stop after this epoch;
    - ``on_divergence``: a member whose training loss is not finite: "continue" (it keeps
      training, as its separate run would), "stop", or "raise" (``FloatingPointError``).

    ``clip_grad_norm``: clip each member's gradient to this norm (its own norm, see
    :func:`clip_grad_norm_`).
    """

    def __init__(self, net: Stack, loader: Loader, optimizer, *, loss_fn=F.cross_entropy, val=None,
                 eval_sets: dict | None = None, patience: int | None = None, monitor: str | None = None,
                 min_delta: float = 0.0, restore_best: bool = False, stop_when: Callable | None = None,
                 on_divergence: str = "continue", clip_grad_norm: float | None = None, eval_batch_size: int = 1024):
        if not isinstance(net, Stack):
            raise TypeError(f"Trainer: net must be a batched.Stack (from batched.stack), got {type(net).__name__}")
        if not isinstance(loader, Loader):
            raise TypeError(f"Trainer: loader must be a batched.Loader, got {type(loader).__name__}")
        if loader.num_members != net.num_members:
            raise ValueError(f"Trainer: the loader has {loader.num_members} members (seeds) but the model has "
                             f"{net.num_members}; give the loader one seed per member")
        if isinstance(optimizer, torch.optim.Optimizer):
            optimizer = MemberOptimizer(net, optimizer)
        if not isinstance(optimizer, MemberOptimizer):
            raise TypeError(f"Trainer: optimizer must come from batched.optimizer (or be a torch.optim optimizer "
                            f"built on net.stacked_parameters()), got {type(optimizer).__name__}")
        if optimizer.net is not net:
            raise ValueError("Trainer: the optimizer was built for another stacked model")
        reduction = getattr(loss_fn, "reduction", "mean")
        if reduction != "mean":
            raise ValueError(f"Trainer: loss_fn must average over the batch (reduction='mean'), got {reduction!r}")
        if on_divergence not in ("continue", "stop", "raise"):
            raise ValueError(f"Trainer: on_divergence must be 'continue', 'stop' or 'raise', got {on_divergence!r}")
        sets = dict(eval_sets or {})
        if val is not None:
            if "val" in sets:
                raise ValueError("Trainer: give the validation set either as val= or as eval_sets['val'], not both")
            sets = {"val": val, **sets}
        self.eval_sets = {}
        for name, data in sets.items():
            if not isinstance(name, str) or not name or name == "train":
                raise ValueError(f"Trainer: evaluation set names must be non-empty strings other than 'train' (the "
                                 f"running training metrics), got {name!r}")
            if not isinstance(data, (tuple, list)) or len(data) != 2:
                raise ValueError(f"Trainer: eval_sets[{name!r}] must be a pair (X, y)")
            self.eval_sets[name] = _member_data(data[0], data[1], net.num_members, f"Trainer: eval_sets[{name!r}]")
        columns = ["train_loss", "train_acc"] + [f"{n}_{m}" for n in self.eval_sets for m in ("loss", "acc")]
        if patience is not None:
            patience = validation.positive_int("Trainer: patience", patience)
            monitor = monitor or "val_acc"
            if monitor not in columns:
                raise ValueError(f"Trainer: monitor {monitor!r} is not recorded; choose one of {columns} "
                                 f"(give a validation set with val=(X, y) to monitor val_acc)")
        elif monitor is not None or restore_best:
            raise ValueError("Trainer: monitor and restore_best need patience (the epochs without improvement)")
        if stop_when is not None and not callable(stop_when):
            raise TypeError(f"Trainer: stop_when must be a function stop_when(epoch, metrics), got {stop_when!r}")
        self.net, self.loader, self.optimizer, self.loss_fn = net, loader, optimizer, loss_fn
        self.patience, self.monitor = patience, monitor
        self.min_delta = validation.nonnegative_real("Trainer: min_delta", min_delta)
        self.restore_best = validation.check_bool("Trainer: restore_best", restore_best)
        self.stop_when, self.on_divergence = stop_when, on_divergence
        self.clip = None if clip_grad_norm is None else validation.nonnegative_real(
            "Trainer: clip_grad_norm", clip_grad_norm, positive=True)
        self.eval_batch_size = validation.positive_int("Trainer: eval_batch_size", eval_batch_size)
        S = net.num_members
        self.epochs_done = 0
        self.steps = np.zeros(S, dtype=np.int64)
        self.stopped_epoch = np.full(S, -1)  # the epoch after which a member stopped (-1: still training)
        self.stop_reason = [""] * S
        self._best = np.full(S, np.nan)
        self._since_best = np.zeros(S, dtype=np.int64)
        self._best_state = None

    def _higher_is_better(self) -> bool:
        return self.monitor.endswith("_acc")

    def _stop(self, members: np.ndarray, reason: str, epoch: int):
        members = members & (self.stopped_epoch < 0)
        if not members.any():
            return
        if reason == "patience" and self.restore_best and self._best_state is not None:
            idx = torch.as_tensor(np.flatnonzero(members))
            with torch.no_grad():
                for name, t in list(self.net.module.named_parameters()) + list(self.net.module.named_buffers()):
                    if t is not None and name in self._best_state:
                        t.index_copy_(0, idx.to(t.device), self._best_state[name].index_select(0, idx.to(t.device)))
        for k in np.flatnonzero(members):
            self.stopped_epoch[k] = epoch
            self.stop_reason[k] = reason
        self.net.stop(torch.as_tensor(members))

    def fit(self, num_epochs: int, progress: bool = True, desc: str | None = None):
        """Train ``num_epochs`` more epochs; returns one ``pandas.DataFrame`` per member (rows for
        the epochs that member trained in this call)."""
        import pandas as pd
        from tqdm.auto import tqdm

        num_epochs = validation.positive_int("fit: num_epochs", num_epochs)
        net, loader, opt = self.net, self.loader, self.optimizer
        S = net.num_members
        device = _device(net)
        rows = [[] for _ in range(S)]
        with tqdm(total=num_epochs * len(loader), desc=desc or f"training {S} members", disable=not progress,
                  leave=False) as bar:
            for _ in range(num_epochs):
                outside = (self.stopped_epoch < 0) & ~net.active.cpu().numpy()
                for k in np.flatnonzero(outside):  # stopped with net.stop() between calls
                    self.stopped_epoch[k], self.stop_reason[k] = self.epochs_done, "net.stop"
                active = (self.stopped_epoch < 0)
                if not active.any():
                    break
                epoch = self.epochs_done + 1
                net.train()
                run_loss = torch.zeros(S, dtype=torch.float64, device=device)
                correct = torch.zeros(S, dtype=torch.int64, device=device)
                n = 0
                for xb, yb in loader:
                    xb, yb = xb.to(device), yb.to(device)
                    out = net(xb)
                    losses = member_losses(out, yb, self.loss_fn)
                    opt.zero_grad(set_to_none=True)
                    losses.sum().backward()
                    if self.clip is not None:
                        clip_grad_norm_(net, self.clip)
                    opt.step()
                    b = yb.shape[1]
                    run_loss += losses.detach().double() * b
                    correct += (out.detach().argmax(-1) == yb).sum(1)
                    n += b
                    bar.update(1)
                self.epochs_done = epoch
                self.steps[active] += len(loader)
                metrics = {"train_loss": (run_loss / n).cpu().numpy(), "train_acc": (correct.double() / n).cpu().numpy()}
                if self.eval_sets:
                    net.eval()
                    for name, (X, y, index) in self.eval_sets.items():
                        metrics[f"{name}_loss"], metrics[f"{name}_acc"] = _evaluate(
                            net, X, y, index, self.loss_fn, self.eval_batch_size)
                    net.train()
                for k in np.flatnonzero(active):
                    rows[k].append({"epoch": epoch, "step": int(self.steps[k]),
                                    **{c: float(v[k]) for c, v in metrics.items()}})
                bar.set_postfix(loss=f"{np.nanmean(np.where(active, metrics['train_loss'], np.nan)):.3f}")
                self._after_epoch(epoch, metrics, active)
        return [pd.DataFrame(r, columns=["epoch", "step", *self._columns()]) for r in rows]

    def _columns(self):
        return ["train_loss", "train_acc"] + [f"{n}_{m}" for n in self.eval_sets for m in ("loss", "acc")]

    def _after_epoch(self, epoch, metrics, active):
        diverged = active & ~np.isfinite(metrics["train_loss"])
        if diverged.any():
            if self.on_divergence == "raise":
                k = int(np.flatnonzero(diverged)[0])
                raise FloatingPointError(f"fit: member {k}'s training loss became {metrics['train_loss'][k]} in epoch "
                                         f"{epoch} (learning rate {self.optimizer.lr[k]:g}); lower its rate, or pass "
                                         f"on_divergence='continue' or 'stop'")
            if self.on_divergence == "stop":
                self._stop(diverged, "diverged", epoch)
                active = active & ~diverged
        if self.patience is not None:
            value = metrics[self.monitor]
            sign = 1.0 if self._higher_is_better() else -1.0
            improved = active & (np.isnan(self._best) | (sign * (value - self._best) > self.min_delta))
            self._best = np.where(improved, value, self._best)
            self._since_best = np.where(improved, 0, self._since_best + 1)
            if self.restore_best and improved.any():
                idx = torch.as_tensor(np.flatnonzero(improved))
                state = self._best_state or {}
                for name, t in list(self.net.module.named_parameters()) + list(self.net.module.named_buffers()):
                    if t is None:
                        continue
                    if name not in state:
                        state[name] = t.detach().clone()
                    else:
                        state[name].index_copy_(0, idx.to(t.device), t.detach().index_select(0, idx.to(t.device)))
                self._best_state = state
            self._stop(active & (self._since_best >= self.patience), "patience", epoch)
        if self.stop_when is not None:
            mask = np.asarray(self.stop_when(epoch, metrics))
            if mask.shape != (self.net.num_members,) or mask.dtype != bool:
                raise ValueError(f"fit: stop_when must return a bool array with one entry per member "
                                 f"({self.net.num_members}), got {mask!r}")
            self._stop(mask & active, "stop_when", epoch)


def fit(net: Stack, loader: Loader, *, optimizer, num_epochs: int, progress: bool = True, desc: str | None = None,
        **kwargs):
    """Train every member for ``num_epochs`` epochs: ``Trainer(net, loader, optimizer, **kwargs).fit(...)``.

    Returns one ``pandas.DataFrame`` per member (columns ``epoch, step, train_loss, train_acc``
    and ``{name}_loss, {name}_acc`` per evaluation set, e.g. ``val=(X_val, y_val)``). To continue
    training later, keep a :class:`Trainer` and call its ``fit`` again.
    """
    return Trainer(net, loader, optimizer, **kwargs).fit(num_epochs, progress=progress, desc=desc)


# --------------------------------------------------------------------------- benchmark
def _benchmark(repeats: int = 3) -> "pd.DataFrame":  # noqa: F821
    """CPU seconds per epoch, 3 members trained as one against 3 separate runs written as the
    chapters write them, on one thread: ``python -m course_utils.batched``. Synthetic data of the
    chapters' shapes; each time is the best of ``repeats`` (other processes only slow a run down)."""
    import time

    import pandas as pd

    from . import training
    from .models import SmallCNN

    torch.set_num_threads(1)
    seeds, rows = [0, 1, 2], []

    def best(fn):
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        return min(times)

    def mlp(seed):  # chapter 6's default model: 6 hidden layers of 16, Adam (fused), batch 128
        torch.manual_seed(seed)
        layers, d = [], 2
        for _ in range(6):
            layers += [nn.Linear(d, 16), nn.ReLU()]
            d = 16
        return nn.Sequential(*layers, nn.Linear(16, 5))

    g = torch.Generator().manual_seed(0)
    X6, y6 = torch.randn(3000, 2, generator=g), torch.randint(0, 5, (3000,), generator=g)

    def ch6_separate():
        for s in seeds:
            m = mlp(s)
            opt = torch.optim.Adam(m.parameters(), lr=1e-2, fused=True)
            gen = torch.Generator().manual_seed(s)
            for idx in torch.randperm(3000, generator=gen).split(128):
                loss = F.cross_entropy(m(X6[idx]), y6[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

    def ch6_batched():
        net = stack([mlp(s) for s in seeds])
        fit(net, Loader(X6, y6, 128, seeds, order="randperm"),
            optimizer=optimizer(net, torch.optim.Adam, lr=1e-2, fused=True), num_epochs=1, progress=False)

    rows.append(("ch6 MLP 2-16x6-5, Adam, 3,000 points", 128, best(ch6_separate), best(ch6_batched)))

    X4 = torch.rand(4096, 784, generator=g)
    y4 = torch.randint(0, 24, (4096,), generator=g)

    def softmax_regression():
        m = nn.Linear(784, 24)
        nn.init.zeros_(m.weight)
        nn.init.zeros_(m.bias)
        return m

    for batch_size in (8, 64, 1024, 4096):
        def ch4_separate():
            for s in seeds:  # chapter 4's loop: a seeded DataLoader, loss.item() per step
                m = softmax_regression()
                opt = torch.optim.Adam(m.parameters(), lr=1e-3)
                for xb, yb in training.make_loader(X4, y4, batch_size, seed=s):
                    loss = F.cross_entropy(m(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    loss.item()

        def ch4_batched():
            net = stack([softmax_regression() for _ in seeds])
            fit(net, Loader(X4, y4, batch_size, seeds), optimizer=optimizer(net, torch.optim.Adam, lr=1e-3),
                num_epochs=1, progress=False)

        rows.append(("ch4 softmax regression 784-24, Adam, 4,096 images", batch_size,
                     best(ch4_separate), best(ch4_batched)))

    X7 = torch.rand(500, 1, 28, 28, generator=g)
    y7 = torch.randint(0, 10, (500,), generator=g)

    def ch7_separate():
        for s in seeds:
            m = SmallCNN(seed=s)
            training.fit(m, training.make_loader(X7, y7, 32, seed=s), loss_fn=F.cross_entropy,
                         optimizer=torch.optim.Adam(m.parameters(), lr=1e-3), num_epochs=1, progress=False)

    def ch7_batched():
        net = stack([SmallCNN(seed=s) for s in seeds])
        fit(net, Loader(X7, y7, 32, seeds), optimizer=optimizer(net, torch.optim.Adam, lr=1e-3), num_epochs=1,
            progress=False)

    rows.append(("ch7 SmallCNN, Adam, 500 images", 32, best(ch7_separate), best(ch7_batched)))
    table = pd.DataFrame(rows, columns=["model", "batch", "3 separate runs (s/epoch)", "3 batched (s/epoch)"])
    table["speed-up"] = table.iloc[:, 2] / table.iloc[:, 3]
    return table


if __name__ == "__main__":
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, 1 thread; "
          f"CPU seconds per epoch, best of 3")
    print(_benchmark().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
