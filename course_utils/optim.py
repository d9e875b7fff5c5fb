"""From-scratch optimizers over NumPy arrays, checked against ``torch.optim``.

Introduced in chapter 3 (optimizers on the Rosenbrock function) and used by
chapter 5 to train the from-scratch network.

Every optimizer is built the same way as ``torch.optim``: it holds a list of
parameter arrays, keeps per-parameter state (momentum buffers, moment
estimates) in ``self.state``, and ``step(grads)`` updates the arrays **in
place** from a matching list of gradients::

    W, b = rng.normal(size=(784, 10)), np.zeros(10)
    opt = Adam([W, b], lr=1e-3)
    for ...:
        dW, db = ...            # gradients of the loss, same shapes as W, b
        opt.step([dW, db])      # W and b change in place; never rebound

Conventions shared by all classes (and by ``torch.optim``):

* ``g`` is the gradient passed to :meth:`Optimizer.step`, ``w`` the parameter,
  ``t = 1, 2, ...`` the step count, ``eta`` the learning rate ``lr``.
* The buffers are named as on the book's notation page: ``state["m"]`` holds the momentum
  (momentum, Nesterov) or first moment (Adam, NAdam) ``m_t``, ``state["v"]`` the second moment
  ``v_t`` (RMSProp, Adam, NAdam); ``state["tmp"]`` is scratch space.
* Every array may carry a leading seed axis (S models trained together, chapter 1.2): the
  updates are elementwise, so each seed's slice is updated as if it were alone.
* A grid of hyperparameters trains as one stacked model too (chapter 3's sweeps): ``lr``,
  ``weight_decay`` and every hyperparameter (``beta``, ``beta1``, ``beta2``, ``eps``,
  ``momentum_decay``) may be a numpy array that broadcasts against every parameter, one value
  per member (shape ``(S, 1)`` for parameters of shape ``(S, n)``). Member k then follows
  exactly the trajectory of an optimizer made with the k-th values alone.
* Weight decay is *coupled* L2 regularisation, applied first:
  ``g <- g + lambda * w`` (``weight_decay=lambda``). The caller's gradient
  arrays are never modified. (Decoupled weight decay, AdamW, is one short
  subclass: chapter 3 shows it.)
* State arrays have the parameter's dtype, so float32 parameters are updated in
  float32 and float64 ones in float64. Every update uses in-place NumPy
  operations (``out=``) on preallocated scratch buffers: ``step`` allocates no
  parameter-sized arrays after the first call.
* A rejected call changes nothing: ``step`` checks every gradient (count, type,
  shape, float dtype) and every parameter (still writable) before it touches any
  state, so after an error the parameters, the state and ``t`` are as before.
  Gradients are not checked for NaN or infinity (as in ``torch.optim``): a
  non-finite gradient makes the parameters non-finite; callers that can diverge
  check their loss (``course_utils.network.train`` does).

To add an algorithm, subclass :class:`Optimizer`, validate its hyperparameters
in ``__init__``, and implement :meth:`Optimizer.init_state` (the per-parameter
state) and :meth:`Optimizer.update` (one parameter's update); per-step scalars
such as bias corrections go in :meth:`Optimizer.begin_step`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import validation

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "RMSProp", "Adam", "NAdam",
           "check_nonnegative", "check_positive", "check_beta", "power"]


# --------------------------------------------------------------------------- validation
def _hyperparameter(name: str, value, check):
    """A real number as a float, or a numpy array of them as a read-only float64 array (one value
    per member of a stacked model); ``check(name, x)`` validates one number and may raise."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf" or value.dtype.kind == "b" or value.size == 0:
            raise TypeError(f"{name} must be a real number or a non-empty numeric array, got an array of dtype "
                            f"{value.dtype} and shape {value.shape}")
        values = value.astype(np.float64)
        for index in np.ndindex(values.shape):
            try:
                check(name, float(values[index]))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{exc} (at index {index} of {name})") from None
        values.flags.writeable = False
        return values
    return check(name, value)


def check_nonnegative(name: str, value):
    """``value`` as a float (or a float array), or an error naming ``name`` when it is not a finite
    number >= 0 (anywhere in the array)."""
    return _hyperparameter(name, value, validation.nonnegative_real)


def check_positive(name: str, value):
    """``value`` as a float (or a float array), or an error naming ``name`` unless it is a finite
    number > 0 (everywhere in the array)."""
    return _hyperparameter(name, value, lambda n, v: validation.nonnegative_real(n, v, positive=True))


def _beta(name: str, value) -> float:
    value = validation.real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def check_beta(name: str, value):
    """``value`` as a float (or a float array), or a ``ValueError`` naming ``name`` unless 0 <= value < 1."""
    return _hyperparameter(name, value, _beta)


def power(base, exponent):
    """``base ** exponent`` for a hyperparameter that may be an array (one value per member).

    Each value is raised with Python's float power, the one a single optimizer's float gets:
    NumPy's vectorised power rounds the last bit differently on some CPUs (AVX-512), which would
    set a stacked member apart from the optimizer made with its values alone.
    """
    if not isinstance(base, np.ndarray) and not isinstance(exponent, np.ndarray):
        return base**exponent
    b, e = np.broadcast_arrays(np.asarray(base, dtype=np.float64), np.asarray(exponent, dtype=np.float64))
    return np.array([float(x) ** float(y) for x, y in zip(b.flat, e.flat)]).reshape(b.shape)


def _check_params(params) -> list[np.ndarray]:
    if isinstance(params, np.ndarray):
        raise TypeError("params must be a list of numpy arrays, got a single array: wrap it as [array]")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of numpy arrays, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError("params is empty: the optimizer needs at least one array to update")
    seen: set[int] = set()
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}] must be a numpy array, got {type(p).__name__}")
        if p.dtype.kind != "f":
            raise TypeError(f"params[{i}] must be a floating-point array (float32/float64), got dtype {p.dtype}")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}] is read-only; the optimizer updates parameters in place")
        if id(p) in seen:
            raise ValueError(f"params[{i}] is the same array as an earlier entry; it would be updated twice per step")
        seen.add(id(p))
    return params


# --------------------------------------------------------------------------- base class
class Optimizer:
    """Base class: holds the parameters, the learning rate, weight decay and per-parameter state.

    Parameters
    ----------
    params : list of numpy float arrays, updated in place by :meth:`step`.
    lr : learning rate ``eta >= 0``; may be changed between steps (``opt.lr = ...``, checked).
    weight_decay : coupled L2 coefficient ``lambda >= 0``: ``g <- g + lambda * w`` before the
        update; may be changed between steps too (checked).
    Each may also be an array of values, one per member of a stacked model (module docstring).

    Attributes
    ----------
    params : the list of arrays (the same objects that were passed in).
    state : list of dicts, one per parameter, created at the first :meth:`step`.
    t : number of steps taken so far.

    Subclasses implement :meth:`init_state` and :meth:`update` (a class without
    :meth:`update` raises ``NotImplementedError`` when it is constructed), and may override
    :meth:`begin_step` for per-step scalars.
    """

    #: names of the hyperparameters shown by ``repr`` (besides lr and weight_decay)
    hyperparameters: tuple[str, ...] = ()

    def __init__(self, params: Sequence[np.ndarray], lr: float, weight_decay: float = 0.0):
        if type(self).update is Optimizer.update:
            raise NotImplementedError(f"{type(self).__name__} must implement update(p, g, state)")
        self.params = _check_params(params)
        self.lr = lr
        self.weight_decay = weight_decay
        self.state: list[dict] = [{} for _ in self.params]
        self.t = 0
        self._wd_buffers: list[np.ndarray] | None = None

    # lr and weight_decay are validated properties so schedules can change them between steps
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = check_nonnegative("lr (learning rate)", value)

    @property
    def weight_decay(self) -> float:
        return self._weight_decay

    @weight_decay.setter
    def weight_decay(self, value) -> None:
        self._weight_decay = check_nonnegative("weight_decay", value)

    def __repr__(self) -> str:
        fields = ["lr", *self.hyperparameters, "weight_decay"]
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in fields)
        return f"{type(self).__name__}({len(self.params)} arrays, {args})"

    # --- the hooks a subclass implements
    def init_state(self, p: np.ndarray) -> dict:
        """The state of one parameter before its first update (buffers of ``p``'s shape and dtype)."""
        return {}

    def begin_step(self) -> None:
        """Called once per step, after ``self.t`` is incremented and before any :meth:`update`."""

    def update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        """Update one parameter ``p`` in place from its (weight-decayed) gradient ``g``."""
        raise NotImplementedError(f"{type(self).__name__} must implement update(p, g, state)")

    # --- the driver
    def _array_hyperparameters(self) -> dict[str, np.ndarray]:
        names = ["lr", "weight_decay", *self.hyperparameters]
        return {n: getattr(self, n) for n in names if isinstance(getattr(self, n, None), np.ndarray)}

    def _check_grads(self, grads) -> None:
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of numpy arrays matching params, got {type(grads).__name__}")
        if len(grads) != len(self.params):
            raise ValueError(f"got {len(grads)} gradients for {len(self.params)} parameter arrays")
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if not isinstance(g, np.ndarray):
                raise TypeError(f"grads[{i}] must be a numpy array, got {type(g).__name__}")
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] has shape {g.shape}, but params[{i}] has shape {p.shape}")
            if g.dtype.kind != "f":
                raise TypeError(f"grads[{i}] must be a floating-point array, got dtype {g.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"params[{i}] has become read-only; the optimizer updates parameters in place")
        for name, value in self._array_hyperparameters().items():
            for i, p in enumerate(self.params):
                try:
                    fits = np.broadcast_shapes(value.shape, p.shape) == p.shape
                except ValueError:
                    fits = False
                if not fits:
                    raise ValueError(f"{name} has shape {value.shape}, which does not broadcast to params[{i}]'s "
                                     f"shape {p.shape}; give one value per member with trailing axes of size 1 "
                                     f"(for example shape ({p.shape[0]}, {', '.join(['1'] * (p.ndim - 1))}))")

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter, in place, from ``grads`` (same order and shapes as ``params``).

        Invalid ``grads`` raise before anything changes (parameters, state and ``t`` stay as they were).
        """
        self._check_grads(grads)
        if self.t == 0:
            self.state = [self.init_state(p) for p in self.params]
        self.t += 1
        self.begin_step()
        wd = self.weight_decay
        decay = bool(np.any(wd != 0.0))
        if decay and self._wd_buffers is None:
            self._wd_buffers = [np.empty_like(p) for p in self.params]
        for i, (p, g, state) in enumerate(zip(self.params, grads, self.state)):
            if decay:
                buf = self._wd_buffers[i]
                np.multiply(p, wd, out=buf)
                np.add(buf, g, out=buf, casting="same_kind")
                g = buf
            self.update(p, g, state)

    def reset(self) -> None:
        """Forget all state (momentum buffers, moment estimates, step count)."""
        self.state = [{} for _ in self.params]
        self.t = 0


# --------------------------------------------------------------------------- algorithms
class SGD(Optimizer):
    r"""Plain (stochastic) gradient descent, as ``torch.optim.SGD(momentum=0)``.

    .. math::  w \leftarrow w - \eta\, g
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)

    def init_state(self, p):
        return {"tmp": np.empty_like(p)}

    def update(self, p, g, state):
        tmp = state["tmp"]
        np.multiply(g, self.lr, out=tmp, casting="same_kind")
        p -= tmp


class Momentum(Optimizer):
    r"""Heavy-ball momentum (Polyak), as ``torch.optim.SGD(momentum=beta)``.

    With ``m_0 = 0`` (the buffer ``state["m"]``):

    .. math::
        m_t = \beta\, m_{t-1} + g_t, \qquad w \leftarrow w - \eta\, m_t

    ``ema=True`` uses the exponential-moving-average form found in many notes,

    .. math::
        m_t = \beta\, m_{t-1} + (1-\beta)\, g_t, \qquad w \leftarrow w - \eta\, m_t ,

    whose buffer is exactly ``(1 - beta)`` times torch's, so ``ema=True`` with
    learning rate ``eta`` takes the same steps as ``ema=False`` with
    ``eta * (1 - beta)``. (torch's ``dampening`` option is not the same thing:
    torch skips the damping on the first step.)
    """

    hyperparameters = ("beta", "ema")

    def __init__(self, params, lr: float = 1e-3, beta: float = 0.9, weight_decay: float = 0.0, ema: bool = False):
        self.beta = check_beta("beta (momentum)", beta)
        self.ema = validation.check_bool("ema", ema)
        super().__init__(params, lr, weight_decay)

    def init_state(self, p):
        return {"m": np.zeros_like(p), "tmp": np.empty_like(p)}

    def _accumulate(self, g, state):
        """m <- beta m + g (or + (1 - beta) g with ema=True), in place; return (m, tmp)."""
        m, tmp = state["m"], state["tmp"]
        m *= self.beta
        if self.ema:
            np.multiply(g, 1.0 - self.beta, out=tmp, casting="same_kind")
            m += tmp
        else:
            np.add(m, g, out=m, casting="same_kind")
        return m, tmp

    def update(self, p, g, state):
        m, tmp = self._accumulate(g, state)
        np.multiply(m, self.lr, out=tmp)
        p -= tmp  # w <- w - lr m


class Nesterov(Momentum):
    r"""Nesterov momentum in the form of ``torch.optim.SGD(momentum=beta, nesterov=True)``.

    With ``m_0 = 0`` (the buffer ``state["m"]``):

    .. math::
        m_t = \beta\, m_{t-1} + g_t, \qquad w \leftarrow w - \eta\,(g_t + \beta\, m_t)

    (Sutskever et al.'s reformulation: the gradient is evaluated at the current
    iterate, and the step looks ahead along the updated momentum.) ``ema=True``
    uses ``m_t = beta m_{t-1} + (1 - beta) g_t`` and ``w <- w - eta ((1 - beta) g_t + beta m_t)``,
    again the ``ema=False`` steps with ``eta * (1 - beta)``.
    """

    def update(self, p, g, state):
        m, tmp = self._accumulate(g, state)
        if self.ema:
            # tmp holds (1 - beta) g from _accumulate: two subtractions, no temporary
            tmp *= self.lr
            p -= tmp
            np.multiply(m, self.beta * self.lr, out=tmp)
            p -= tmp
        else:
            np.multiply(m, self.beta, out=tmp)
            np.add(tmp, g, out=tmp, casting="same_kind")
            tmp *= self.lr
            p -= tmp  # w <- w - lr (g + beta m)


class RMSProp(Optimizer):
    r"""RMSProp (Hinton), as ``torch.optim.RMSprop(alpha=beta, eps=eps)``.

    With ``v_0 = 0`` (the buffer ``state["v"]``):

    .. math::
        v_t = \beta\, v_{t-1} + (1-\beta)\, g_t^2, \qquad
        w \leftarrow w - \eta\, \frac{g_t}{\sqrt{v_t} + \epsilon}

    Note where ``eps`` sits: added to the square root, outside it, as in torch
    (some implementations put it inside). torch calls ``beta`` ``alpha``;
    the defaults are torch's.
    """

    hyperparameters = ("beta", "eps")

    def __init__(self, params, lr: float = 1e-2, beta: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0):
        self.beta = check_beta("beta (RMSProp decay, torch's alpha)", beta)
        self.eps = check_positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def init_state(self, p):
        return {"v": np.zeros_like(p), "tmp": np.empty_like(p)}

    def update(self, p, g, state):
        v, tmp = state["v"], state["tmp"]
        np.square(g, out=tmp, casting="same_kind")
        tmp *= 1.0 - self.beta
        v *= self.beta
        v += tmp  # v <- beta v + (1 - beta) g^2
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp, casting="same_kind")
        tmp *= self.lr
        p -= tmp


class Adam(Optimizer):
    r"""Adam (Kingma and Ba), as ``torch.optim.Adam(betas=(beta1, beta2), eps=eps)``.

    With ``m_0 = v_0 = 0`` and ``t = 1, 2, ...``:

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2,

    .. math::
        w \leftarrow w - \frac{\eta}{1-\beta_1^t}\;
        \frac{m_t}{\sqrt{v_t}\,/\sqrt{1-\beta_2^t} + \epsilon}

    i.e. the bias-corrected ``m_hat / (sqrt(v_hat) + eps)`` with eps added
    after the bias correction of ``v``, exactly where torch adds it.
    """

    hyperparameters = ("beta1", "beta2", "eps")

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        self.beta1 = check_beta("beta1", beta1)
        self.beta2 = check_beta("beta2", beta2)
        self.eps = check_positive("eps", eps)
        super().__init__(params, lr, weight_decay)

    def init_state(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "tmp": np.empty_like(p)}

    def _moments(self, g, state):
        """Update m and v in place; return (m, v, tmp)."""
        m, v, tmp = state["m"], state["v"], state["tmp"]
        np.multiply(g, 1.0 - self.beta1, out=tmp, casting="same_kind")
        m *= self.beta1
        m += tmp
        np.square(g, out=tmp, casting="same_kind")
        tmp *= 1.0 - self.beta2
        v *= self.beta2
        v += tmp
        return m, v, tmp

    def _denominator(self, v, tmp):
        """tmp <- sqrt(v) / sqrt(1 - beta2^t) + eps."""
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / np.sqrt(1.0 - power(self.beta2, self.t))
        tmp += self.eps
        return tmp

    def update(self, p, g, state):
        m, v, tmp = self._moments(g, state)
        denom = self._denominator(v, tmp)
        np.divide(m, denom, out=tmp)
        tmp *= self.lr / (1.0 - power(self.beta1, self.t))
        p -= tmp


class NAdam(Adam):
    r"""Nesterov-accelerated Adam (Dozat), exactly as ``torch.optim.NAdam``.

    torch's NAdam uses a momentum *schedule* with ``momentum_decay = psi``
    (default 0.004, as in Dozat's paper and torch):

    .. math::
        \mu_t = \beta_1\left(1 - \tfrac12\, 0.96^{\,t\psi}\right), \qquad
        \Pi_t = \prod_{i=1}^{t} \mu_i ,

    and with ``m_t, v_t`` as in :class:`Adam`:

    .. math::
        w \leftarrow w
        - \eta\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
        - \eta\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}

    ``beta1`` is only the asymptote of the schedule: ``mu_t`` starts near
    ``beta1 / 2`` and approaches ``beta1`` over thousands of steps (with the
    default ``psi`` it is ``0.575 beta1`` at ``t = 1000`` and ``0.9 beta1`` at
    ``t = 9860``). A large ``momentum_decay``
    (for example 1e3) makes ``mu_t = beta1`` from the first step.

    Note for comparisons with torch: torch keeps ``Pi_t`` in the default scalar
    dtype (float32 unless ``torch.set_default_dtype(torch.float64)``); this class
    always uses Python floats (float64).
    """

    hyperparameters = ("beta1", "beta2", "eps", "momentum_decay")

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
    ):
        self.momentum_decay = check_nonnegative("momentum_decay", momentum_decay)
        super().__init__(params, lr, beta1, beta2, eps, weight_decay)
        self.mu_product = 1.0

    def mu(self, t: int) -> float:
        """The momentum coefficient ``mu_t`` of the schedule."""
        return self.beta1 * (1.0 - 0.5 * power(0.96, t * self.momentum_decay))

    def begin_step(self):
        if self.t == 1:
            self.mu_product = 1.0
        mu, mu_next = self.mu(self.t), self.mu(self.t + 1)
        self.mu_product *= mu
        self._coef_g = self.lr * (1.0 - mu) / (1.0 - self.mu_product)
        self._coef_m = self.lr * mu_next / (1.0 - self.mu_product * mu_next)

    def init_state(self, p):
        return {**super().init_state(p), "denom": np.empty_like(p)}

    def update(self, p, g, state):
        m, v, tmp = self._moments(g, state)
        denom = state["denom"]
        np.divide(v, 1.0 - power(self.beta2, self.t), out=denom)
        np.sqrt(denom, out=denom)
        denom += self.eps
        np.divide(g, denom, out=tmp, casting="same_kind")
        tmp *= self._coef_g
        p -= tmp
        np.divide(m, denom, out=tmp)
        tmp *= self._coef_m
        p -= tmp
