# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 3: Optimizers on the Rosenbrock function
#
# Every network in this book is trained by the same loop: compute the gradient of the loss,
# hand it to an *optimizer*, let the optimizer move the weights. This chapter opens the
# optimizer. We write six of them from scratch in `course_utils.optim` (gradient descent,
# heavy-ball momentum, Nesterov momentum, RMSProp, Adam and NAdam), check every one step for
# step against `torch.optim`, and then watch them on a function small enough to draw: the
# two-dimensional Rosenbrock function, a curved narrow valley that is easy to state and
# hard to descend. We look at what the learning rate does (and at what *too large* means for
# each method), untangle two momentum formulas that circulate in course notes, measure how
# many steps each method needs as a function of the learning rate, and end with a problem on
# which plain momentum beats Adam. Chapter 5 uses these same classes to train a network.
#
# **Prerequisites:** chapter 1 (gradients, and what an optimizer step does with them);
# chapter 2 (derivatives of vector functions; here we also use the Hessian, the matrix of
# second derivatives). No machine learning beyond that.

# %% tags=["remove-cell"]
# Colab setup: install course_utils and what this chapter needs (a no-op elsewhere).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    source = os.environ.get(
        "COURSE_BOOK_SOURCE",
        "git+https://github.com/nn-training-course/nn-training-book@main",
    )
    package = f"course-utils[ch03] @ {source}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %% tags=["parameters"]
SEED = 0
W_START = (0.0, 1.0)  # where every run on the Rosenbrock function starts
NUM_STEPS_SHORT = 100  # the first comparison at lr = 0.01
NUM_STEPS_LONG = 1000  # the larger learning rate, lr = 0.04
NUM_STEPS_SIDE = 500  # all six optimizers side by side
ANIM_FRAMES = (
    50  # frames of the animation (each frame is an image stored in the notebook)
)
# Steps-to-tolerance sweep: learning rates per optimizer, step budget, and the tolerance on R(w).
# Everything here is cheap; a reader may raise SWEEP_LRS and SWEEP_MAX_STEPS freely.
SWEEP_LRS = 25
SWEEP_MAX_STEPS = 2000
TOL = 1e-6

# %%
import inspect

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, display
from matplotlib.animation import FuncAnimation
from matplotlib.colors import LogNorm
from numpy.testing import assert_allclose

import course_utils.runtime
from course_utils import optim
from course_utils.checks import numerical_gradient, relative_error

torch.set_default_dtype(torch.float64)  # compare with torch.optim in double precision
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# ## The Rosenbrock function
#
# We minimise the Rosenbrock function {cite}`ch03-rosenbrock1960` in the form
#
# $$
# R(w) = (1 - w_1)^2 + 10\,(w_2 - w_1^2)^2 ,
# $$ (eq-rosenbrock)
#
# which is zero only at the minimum $w^\star = (1, 1)$. Its gradient and Hessian are
#
# $$
# \nabla R(w) = \begin{pmatrix} -2(1 - w_1) - 40\,w_1 (w_2 - w_1^2) \\ 20\,(w_2 - w_1^2) \end{pmatrix},
# \qquad
# \nabla^2 R(w) = \begin{pmatrix} 2 - 40\,w_2 + 120\,w_1^2 & -40\,w_1 \\ -40\,w_1 & 20 \end{pmatrix}.
# $$ (eq-rosenbrock-grad)
#
# The second term is a steep-walled parabolic valley $w_2 = w_1^2$; the first term makes the
# valley floor slope gently towards $(1, 1)$. We start every run at $w_0 = (0, 1)$, on the
# valley's wall. The functions below work elementwise, so one call evaluates $R$ on a whole
# grid (or on torch tensors), and the code cell after them checks the formulas against
# `torch.autograd` and finite differences.


# %%
def rosenbrock(w1, w2):
    """R(w) for arrays (or tensors) w1, w2 of any shape, elementwise."""
    return (1 - w1) ** 2 + 10 * (w2 - w1**2) ** 2


def rosenbrock_grad(w):
    """The gradient of R at the point w = (w1, w2)."""
    w1, w2 = w
    return np.array([-2 * (1 - w1) - 40 * w1 * (w2 - w1**2), 20 * (w2 - w1**2)])


def rosenbrock_hessian(w):
    """The Hessian of R at the point w."""
    w1, w2 = w
    return np.array([[2 - 40 * w2 + 120 * w1**2, -40 * w1], [-40 * w1, 20.0]])


for point in [W_START, (1.0, 1.0), (-1.2, 1.0), (0.7, 0.29)]:
    w = torch.tensor(point, requires_grad=True)
    (g_torch,) = torch.autograd.grad(rosenbrock(w[0], w[1]), w)
    H_torch = torch.autograd.functional.hessian(lambda v: rosenbrock(v[0], v[1]), w)
    assert_allclose(rosenbrock_grad(point), g_torch.numpy(), rtol=1e-12, atol=1e-12)
    assert_allclose(rosenbrock_hessian(point), H_torch.numpy(), rtol=1e-12, atol=1e-12)
    assert_allclose(
        rosenbrock_grad(point),
        numerical_gradient(lambda v: rosenbrock(*v), point),
        atol=1e-7,
    )

curvatures = np.linalg.eigvalsh(rosenbrock_hessian((1.0, 1.0)))
print("gradient and Hessian agree with torch.autograd and finite differences")
print(
    f"Hessian eigenvalues at the minimum: {curvatures[0]:.3f} and {curvatures[1]:.2f}"
    f" (condition number {curvatures[1] / curvatures[0]:.0f})"
)
print(
    f"gradient descent is stable near the minimum only for lr < 2 / {curvatures[1]:.2f} = {2 / curvatures[1]:.4f}"
)

# %% [markdown]
# Near the minimum the valley is 258 times more curved across than along. Gradient descent
# on a quadratic with curvature $\lambda$ multiplies the error along that direction by
# $1 - \eta\lambda$ per step, so it is stable only when $\eta < 2/\lambda_{\max}$: about 0.0197
# here. Keep that number in mind for the experiments below.
#
# The contour plot is computed the vectorized way: `np.meshgrid` builds the grid of points
# and one call of `rosenbrock` evaluates all of them, with no Python loop. The contour
# levels are spaced logarithmically, because $R$ spans five decades over the plotted area.

# %%
G1, G2 = np.meshgrid(np.linspace(-1.0, 1.6, 256), np.linspace(-0.7, 2.0, 256))
R_GRID = rosenbrock(G1, G2)  # 65,536 values in one vectorized call
assert (
    R_GRID.min() > 0
)  # the grid misses (1, 1) itself, so the log-scaled levels need no masking
LEVELS = np.logspace(-3, 2.5, 23)
XLIM, YLIM = (-1.0, 1.6), (-0.7, 2.0)


def rosenbrock_axes(ax=None, title=None, figsize=(5.0, 4.0)):
    """Log-spaced contours of R, the start (black dot) and the minimum (red star)."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.contour(
        G1,
        G2,
        R_GRID,
        levels=LEVELS,
        norm=LogNorm(),
        cmap="Greys_r",
        linewidths=0.6,
        alpha=0.8,
    )
    ax.plot(*W_START, "ko", ms=5, label="start $w_0$", zorder=3)
    ax.plot(1, 1, "r*", ms=11, label="minimum $w^\\star$", zorder=3)
    ax.set(xlim=XLIM, ylim=YLIM, xlabel="$w_1$", ylabel="$w_2$")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


fig, ax = plt.subplots(figsize=(5.6, 4.2))
filled = ax.contourf(
    G1, G2, R_GRID, levels=LEVELS, norm=LogNorm(), cmap="viridis", extend="both"
)
fig.colorbar(
    filled, ax=ax, label="$R(w)$ (log scale)", ticks=[1e-3, 1e-2, 1e-1, 1, 10, 100]
)
rosenbrock_axes(
    ax, title="The Rosenbrock function $R(w) = (1-w_1)^2 + 10(w_2-w_1^2)^2$"
)
ax.plot(
    np.linspace(-1, 1.6),
    np.linspace(-1, 1.6) ** 2,
    "w--",
    lw=1,
    label="valley floor $w_2 = w_1^2$",
)
ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# ## Six optimizers from scratch
#
# All six methods keep some memory of past gradients (except plain gradient descent) and
# turn the current gradient $g_t = \nabla R(w_{t-1})$ into a step. With learning rate $\eta$,
# step count $t = 1, 2, \dots$ and all buffers starting at zero, the update equations are
# exactly those of `torch.optim`: heavy-ball momentum {cite}`ch03-polyak1964momentum`, Nesterov
# momentum in the form of {cite}`ch03-sutskever2013importance`, RMSProp {cite}`ch03-hinton2012rmsprop`
# and Adam {cite}`ch03-kingma2015adam`:
#
# $$
# \begin{aligned}
# &\text{gradient descent (SGD):} && w \leftarrow w - \eta\, g_t \\
# &\text{momentum:} && v_t = \beta v_{t-1} + g_t, \quad w \leftarrow w - \eta\, v_t \\
# &\text{Nesterov:} && v_t = \beta v_{t-1} + g_t, \quad w \leftarrow w - \eta\,(g_t + \beta v_t) \\
# &\text{RMSProp:} && s_t = \beta s_{t-1} + (1-\beta) g_t^2, \quad w \leftarrow w - \eta\, \frac{g_t}{\sqrt{s_t} + \epsilon} \\
# &\text{Adam:} && m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
# &&& w \leftarrow w - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}
# \end{aligned}
# $$ (eq-six-optimizers)
#
# (squares, roots and divisions elementwise). NAdam {cite}`ch03-dozat2016nadam` mixes Nesterov's
# look-ahead into Adam: it updates $m_t, v_t$ like Adam and steps by
#
# $$
# w \leftarrow w - \eta\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g_t}{\sqrt{\hat v_t}+\epsilon}
#   - \eta\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{\sqrt{\hat v_t}+\epsilon},
# \qquad \mu_t = \beta_1\bigl(1 - \tfrac12\, 0.96^{\,0.004\,t}\bigr),\quad \Pi_t = \textstyle\prod_{i\le t}\mu_i ,
# $$ (eq-nadam)
#
# with $\hat v_t = v_t/(1-\beta_2^t)$: torch's momentum schedule $\mu_t$, which starts near
# $\beta_1/2$ and approaches $\beta_1$ only after thousands of steps. Each optimizer may also
# add *weight decay* $\lambda$ to the gradient first, $g_t \leftarrow g_t + \lambda w$, as torch does.
#
# In `course_utils.optim` every method is a short subclass of one base class, `Optimizer`,
# which holds the parameter arrays, the learning rate, the weight decay and a state dict per
# parameter, and whose `step(grads)` updates the arrays **in place**. A subclass only says
# what state it needs and how one parameter is updated. Here is Adam's part, whole:

# %%
print(inspect.getsource(optim.Adam.init_state))
print(inspect.getsource(optim.Adam._moments))
print(inspect.getsource(optim.Adam._denominator))
print(inspect.getsource(optim.Adam.update))

# %% [markdown]
# Every operation writes into an existing buffer (`out=`, `*=`, `+=`), so after the first
# step no parameter-sized array is allocated: chapter 5 calls `step` thousands of times per
# epoch. The helpers below run any of these optimizers on $R$ from $w_0$, and run the same
# experiment with `torch.optim`, where `torch.autograd` computes the gradient. A run stops
# early when it *diverges*, which we define as a coordinate leaving $[-10^6, 10^6]$.


# %%
def run(opt_cls, lr, num_steps, w0=W_START, grad=rosenbrock_grad, **hyper):
    """The iterates w_0, ..., w_T of opt_cls(lr, **hyper) on R from w0; stops once |w| > 1e6."""
    w = np.array(w0, dtype=np.float64)
    opt = opt_cls([w], lr=lr, **hyper)
    path = [w.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(num_steps):
            opt.step([grad(w)])
            path.append(w.copy())
            if not np.all(np.abs(w) < 1e6):
                break
    return np.array(path)


def torch_run(make_opt, num_steps, w0=W_START):
    """The same with a torch.optim optimizer, the gradient from torch.autograd."""
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = make_opt([w])
    path = [w.detach().numpy().copy()]
    for _ in range(num_steps):
        opt.zero_grad()
        rosenbrock(w[0], w[1]).backward()
        opt.step()
        path.append(w.detach().numpy().copy())
        if not torch.all(w.abs() < 1e6):
            break
    return np.array(path)


def loss_path(path):
    return rosenbrock(path[:, 0], path[:, 1])


def max_relative_error(a, b):
    """The largest per-step relative_error between two trajectories of equal length."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return max(relative_error(x, y) for x, y in zip(a, b))


# %% [markdown]
# The check against `torch.optim`: 1,000 steps of each optimizer, with settings at which the
# iteration is stable (the unit tests in `tests/test_optim.py` run more settings, a random
# ill-conditioned quadratic, weight decay and float32).

# %%
VERIFY = {  # name: (our optimizer, torch's, learning rate, our hyperparameters, torch's)
    "SGD": (optim.SGD, torch.optim.SGD, 0.01, {}, {}),
    "Momentum": (
        optim.Momentum,
        torch.optim.SGD,
        0.002,
        dict(beta=0.9),
        dict(momentum=0.9),
    ),
    "Nesterov": (
        optim.Nesterov,
        torch.optim.SGD,
        0.002,
        dict(beta=0.9),
        dict(momentum=0.9, nesterov=True),
    ),
    "RMSProp": (
        optim.RMSProp,
        torch.optim.RMSprop,
        0.002,
        dict(beta=0.99, eps=1e-3),
        dict(alpha=0.99, eps=1e-3),
    ),
    "Adam": (optim.Adam, torch.optim.Adam, 0.01, {}, {}),
    "NAdam": (optim.NAdam, torch.optim.NAdam, 0.01, {}, {}),
}
for name, (ours, theirs, lr, hyper, torch_hyper) in VERIFY.items():
    a = run(ours, lr, NUM_STEPS_LONG, **hyper)
    b = torch_run(lambda ps: theirs(ps, lr=lr, **torch_hyper), NUM_STEPS_LONG)
    assert len(a) == NUM_STEPS_LONG + 1 and max_relative_error(a, b) <= 1e-6, name
    print(
        f"{name:9s} lr={lr:<6g} matches torch.optim over {NUM_STEPS_LONG} steps"
        f" (relative error <= 1e-6); final R = {loss_path(a)[-1]:.2e}"
    )

torch.set_default_dtype(
    torch.float32
)  # torch then keeps NAdam's product of mu_t in float32
nadam_float32_scalars = torch_run(
    lambda ps: torch.optim.NAdam(ps, lr=0.01), NUM_STEPS_LONG
)
torch.set_default_dtype(torch.float64)
nadam_drift = max_relative_error(
    run(optim.NAdam, 0.01, NUM_STEPS_LONG), nadam_float32_scalars
)
assert 1e-12 < nadam_drift < 1e-8
print(
    f"NAdam against torch with its default float32 scalar state: relative difference {nadam_drift:.0e}"
)

# %% [markdown]
# One detail surfaced while building this check: torch's NAdam keeps the product $\Pi_t$ in
# the default scalar dtype, which is float32 unless the default dtype is float64 (set in the
# imports cell). With float32 the two trajectories differ by about $2\times10^{-10}$ relative,
# inside our tolerance but far above float64 rounding. Why the settings above are "stable"
# ones is explained after the side-by-side comparison below.
#
# ## Adding an algorithm: AdamW in one short class
#
# Weight decay as above is *coupled*: $\lambda w$ is added to the gradient and then divided
# by Adam's $\sqrt{\hat v_t}$ like the rest of it. AdamW {cite}`ch03-loshchilov2019adamw` *decouples*
# it: $w \leftarrow (1 - \eta\lambda)\,w$, then the Adam step on the raw gradient. With the base
# class that is one short subclass, checked here against `torch.optim.AdamW`:


# %%
class AdamW(optim.Adam):
    r"""Adam with decoupled weight decay: w <- (1 - lr * decay) w, then the Adam step on g."""

    hyperparameters = ("beta1", "beta2", "eps", "decoupled_weight_decay")

    def __init__(self, params, lr=1e-3, weight_decay=1e-2, **adam_hyper):
        super().__init__(
            params, lr=lr, **adam_hyper
        )  # the coupled weight decay stays 0
        self.decoupled_weight_decay = optim.check_nonnegative(
            "weight_decay", weight_decay
        )

    def update(self, p, g, state):
        p *= 1.0 - self.lr * self.decoupled_weight_decay
        super().update(p, g, state)


a = run(AdamW, 0.01, NUM_STEPS_LONG, weight_decay=0.1)
b = torch_run(
    lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1), NUM_STEPS_LONG
)
assert max_relative_error(a, b) <= 1e-6
print(AdamW([np.zeros(2)], lr=0.01, weight_decay=0.1))
print(
    f"matches torch.optim.AdamW over {NUM_STEPS_LONG} steps, ending at w = {a[-1].round(3)}"
)

# %% [markdown]
# ## Gradient descent, momentum and Adam at $\eta = 0.01$
#
# The first comparison: 100 steps of gradient descent, momentum with $\beta = 0.9$ and Adam
# (torch's defaults $\beta_1 = 0.9$, $\beta_2 = 0.999$), all at learning rate 0.01. The loss is
# drawn on log-log axes, where the early and the late steps are both visible.

# %%
THREE = {  # name: (class, hyperparameters, colour, the torch.optim counterpart)
    "gradient descent": (
        optim.SGD,
        {},
        "C0",
        lambda ps, lr: torch.optim.SGD(ps, lr=lr),
    ),
    "momentum (β = 0.9)": (
        optim.Momentum,
        dict(beta=0.9),
        "C1",
        lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    ),
    "Adam": (optim.Adam, {}, "C2", lambda ps, lr: torch.optim.Adam(ps, lr=lr)),
}


def compare_three(lr, num_steps):
    paths = {
        name: run(cls, lr, num_steps, **hyper)
        for name, (cls, hyper, _, _) in THREE.items()
    }
    rows = []
    for name, path in paths.items():
        losses = loss_path(path)
        rows.append(
            {
                "optimizer": name,
                "steps run": len(path) - 1,
                "final R": f"{losses[-1]:.3g}",
                "smallest R": f"{np.nanmin(losses):.3g}",
                "final w": np.array2string(path[-1], precision=3)
                if np.all(np.abs(path[-1]) < 1e6)
                else "diverged",
            }
        )
    return paths, pd.DataFrame(rows).set_index("optimizer")


def plot_three(paths, lr):
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    rosenbrock_axes(ax0, title=f"Trajectories, lr = {lr}")
    for name, path in paths.items():
        colour = THREE[name][2]
        ax0.plot(path[:, 0], path[:, 1], ".-", color=colour, ms=2, lw=1, label=name)
        ax1.plot(np.arange(len(path)), loss_path(path), color=colour, label=name)
    ax0.legend(loc="lower right", fontsize=8)
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="step $t$",
        ylabel="$R(w_t)$",
        title=f"Loss, lr = {lr}",
    )
    ax1.legend()
    plt.show()


paths_short, table = compare_three(0.01, NUM_STEPS_SHORT)
for name, path in paths_short.items():  # the three runs, checked against torch.optim
    make_torch = THREE[name][3]
    assert (
        max_relative_error(
            path, torch_run(lambda ps: make_torch(ps, 0.01), NUM_STEPS_SHORT)
        )
        <= 1e-6
    ), name
print(table.to_string())
adam_first_step = paths_short["Adam"][1] - paths_short["Adam"][0]
assert_allclose(rosenbrock_grad(W_START), [-2.0, 20.0])
assert_allclose(
    adam_first_step, [0.01, -0.01], atol=1e-9
)  # -lr * sign(g), whatever the size of g
assert (
    paths_short["momentum (β = 0.9)"][:, 0].max() > 1.0
)  # momentum overshoots w_1 = 1
print(
    f"Adam's first step: {adam_first_step.round(6)}; momentum's largest w_1: {paths_short['momentum (β = 0.9)'][:, 0].max():.3f}"
)
plot_three(paths_short, 0.01)

# %% [markdown]
# After 100 steps only momentum has reached the valley floor near the minimum ($R \approx 5\times 10^{-4}$);
# gradient descent and Adam are both still crawling along the valley with
# $R \approx 0.09$. Gradient descent first falls straight down the steep wall into the valley and
# then moves along its floor with steps of size $\eta\,|\nabla R|$, tiny because the floor is
# almost flat. Adam's steps have length about $\eta$ in each coordinate, however steep or flat
# the function: at $w_0$ the gradient is $(-2, 20)$, pointing almost straight down the wall,
# but Adam's first step is $-\eta\,\mathrm{sign}(g_1) = (0.01, -0.01)$ (up to $\epsilon$),
# diagonal, and after that it keeps walking at roughly 0.01 per coordinate per step. Momentum
# builds up speed along the floor, overshoots the minimum (its largest $w_1$ is above 1) and
# swings back.
#
# ## A larger learning rate: $\eta = 0.04$ for 1,000 steps
#
# The source notes of this course claim that at $\eta = 0.04$ gradient descent fails to
# converge, momentum diverges and Adam converges. We run it:

# %%
paths_long, table = compare_three(0.04, NUM_STEPS_LONG)
print(table.to_string())
plot_three(paths_long, 0.04)

# %% [markdown]
# All three claims hold on our runs, and the outputs say more precisely what happens:
#
# * **Gradient descent** does not diverge: it falls into a *2-cycle*, jumping between
#   $a = (0.7, 0.29)$ and $b = (0.5, 0.45)$ forever, where $R = 0.49$ and $R = 0.65$. The
#   cycle is exact, $a - 0.04\,\nabla R(a) = b$ and $b - 0.04\,\nabla R(b) = a$, and it
#   *attracts*: the two-step map's Jacobian $(I - \eta\nabla^2R(b))(I - \eta\nabla^2R(a))$ has
#   spectral radius below 1 (checked in the next cell). The learning rate is twice the
#   stability limit 0.0197 near the minimum, so the minimum itself repels.
# * **Momentum** leaves the plotted area within a few steps and passes $10^6$ at step 17:
#   it diverges.
# * **Adam** converges, with $R < 10^{-6}$ from step 779 on. Its steps are divided by the
#   running gradient scale $\sqrt{\hat v_t}$, so a steep wall does not turn into a huge step
#   as it does for the other two methods.
#
# The checks, and the torch comparison of the two runs that do not diverge:

# %%
a, b = np.array([0.7, 0.29]), np.array([0.5, 0.45])
assert_allclose(a - 0.04 * rosenbrock_grad(a), b, atol=1e-12)
assert_allclose(b - 0.04 * rosenbrock_grad(b), a, atol=1e-12)
assert_allclose([rosenbrock(*a), rosenbrock(*b)], [0.49, 0.65], atol=1e-12)
gd_path = paths_long["gradient descent"]
assert_allclose(gd_path[-2:], [b, a], atol=1e-9)  # the run ends on the cycle
two_step = (np.eye(2) - 0.04 * rosenbrock_hessian(b)) @ (
    np.eye(2) - 0.04 * rosenbrock_hessian(a)
)
rho = np.abs(np.linalg.eigvals(two_step)).max()
assert rho < 1
first_on_cycle = next(
    t
    for t in range(len(gd_path))
    if np.allclose(gd_path[t], a, atol=1e-6) or np.allclose(gd_path[t], b, atol=1e-6)
)
print(
    f"gradient descent: on the 2-cycle (to 1e-6) from step {first_on_cycle}; spectral radius of the two-step map {rho:.3f}"
)

mom_path = paths_long["momentum (β = 0.9)"]
assert len(mom_path) < NUM_STEPS_LONG + 1
print(f"momentum: |w| exceeds 1e6 at step {len(mom_path) - 1}")

adam_path = paths_long["Adam"]
assert loss_path(adam_path)[-1] < TOL
for path, make in [
    (gd_path, lambda ps: torch.optim.SGD(ps, lr=0.04)),
    (adam_path, lambda ps: torch.optim.Adam(ps, lr=0.04)),
]:
    assert max_relative_error(path, torch_run(make, NUM_STEPS_LONG)) <= 1e-6
first_tol = int(np.argmax(loss_path(adam_path) < TOL))
print(
    f"Adam: R < {TOL:g} from step {first_tol} on; R = {loss_path(adam_path)[-1]:.2g} at step {NUM_STEPS_LONG}"
)
print("gradient descent and Adam match torch.optim over all 1000 steps")

# %% [markdown]
# ## Which momentum? Two formulas for the same method
#
# The source notes define momentum as an exponential moving average of the gradients,
#
# $$
# v_t = \beta v_{t-1} + (1-\beta)\, g_t, \qquad w \leftarrow w - \eta\, v_t ,
# $$ (eq-momentum-ema)
#
# but run `torch.optim.SGD(momentum=β)`, which uses $v_t = \beta v_{t-1} + g_t$ (equation
# {eq}`eq-six-optimizers`). These are the same method at different learning rates. Write
# $\tilde v_t$ for the moving average and $v_t$ for torch's buffer. Both start at zero, and if
# $\tilde v_{t-1} = (1-\beta)v_{t-1}$ then
# $\tilde v_t = \beta(1-\beta)v_{t-1} + (1-\beta)g_t = (1-\beta)v_t$. So by induction
#
# $$
# \tilde v_t = (1-\beta)\,v_t \quad\text{for all } t, \qquad\text{hence}\qquad
# \eta\,\tilde v_t = \bigl(\eta(1-\beta)\bigr)\,v_t :
# $$ (eq-momentum-rescale)
#
# the moving-average form with learning rate $\eta$ takes exactly the steps of torch's form
# with learning rate $\eta(1-\beta)$, ten times smaller for $\beta = 0.9$. Under a constant
# gradient torch's buffer grows to $g/(1-\beta) = 10g$ while the moving average stays at
# $g$. So the momentum that diverged above at $\eta = 0.04$ is torch's; the notes' own
# formula at $\eta = 0.04$ is torch's at 0.004. `optim.Momentum(..., ema=True)` implements
# the moving-average form; we check the equivalence against torch:

# %%
ema_path = run(optim.Momentum, 0.04, NUM_STEPS_LONG, beta=0.9, ema=True)
rescaled_torch = torch_run(
    lambda ps: torch.optim.SGD(ps, lr=0.04 * (1 - 0.9), momentum=0.9), NUM_STEPS_LONG
)
rescaled_ours = run(optim.Momentum, 0.04 * (1 - 0.9), NUM_STEPS_LONG, beta=0.9)
assert max_relative_error(ema_path, rescaled_torch) <= 1e-6
assert max_relative_error(ema_path, rescaled_ours) <= 1e-12
print("moving-average form at lr 0.04 == torch's form at lr 0.004, step for step")
print(
    f"moving-average form at lr 0.04: R = {loss_path(ema_path)[-1]:.1e} after {NUM_STEPS_LONG} steps;"
    f" torch's form at lr 0.04 diverged at step {len(mom_path) - 1}"
)

fig, ax = plt.subplots(figsize=(6.4, 3.8))
ax.plot(loss_path(mom_path), color="C1", label="torch form $v = \\beta v + g$, lr 0.04")
ax.plot(
    loss_path(ema_path),
    color="C3",
    lw=3,
    alpha=0.5,
    label="moving average $v = \\beta v + (1-\\beta) g$, lr 0.04",
)
ax.plot(
    loss_path(rescaled_torch),
    "k--",
    lw=1,
    label="torch form, lr 0.004 (torch.optim.SGD)",
)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="step $t$",
    ylabel="$R(w_t)$",
    ylim=(1e-20, 1e12),
    title="Two momentum formulas, β = 0.9",
)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The moving-average curve and the dashed torch curve at $\eta = 0.004$ lie on top of each
# other, and reach $R$ of order $10^{-18}$ in 1,000 steps. When reading a learning rate in a
# paper or in notes, check which momentum formula it belongs to: a factor $1/(1-\beta)$
# separates them (100 for $\beta = 0.99$).
#
# ## All six side by side
#
# Now all six at the same learning rate, $\eta = 0.01$, for 500 steps, with torch's default
# hyperparameters ($\beta = 0.9$ for both momentum methods).

# %%
SIX = {  # name: (class, hyperparameters)
    "gradient descent": (optim.SGD, {}),
    "momentum": (optim.Momentum, dict(beta=0.9)),
    "Nesterov": (optim.Nesterov, dict(beta=0.9)),
    "RMSProp": (optim.RMSProp, {}),
    "Adam": (optim.Adam, {}),
    "NAdam": (optim.NAdam, {}),
}
COLOURS = dict(zip(SIX, ["C0", "C1", "C4", "C5", "C2", "C3"]))
paths_six = {
    name: run(cls, 0.01, NUM_STEPS_SIDE, **hyper) for name, (cls, hyper) in SIX.items()
}

rows = []
for name, path in paths_six.items():
    losses = loss_path(path)
    reached = np.flatnonzero(losses < TOL)
    rows.append(
        {
            "optimizer": name,
            f"R after {NUM_STEPS_SIDE} steps": f"{losses[-1]:.2g}",
            f"first step with R < {TOL:g}": str(reached[0])
            if reached.size
            else "not reached",
            "distance to (1, 1)": f"{np.linalg.norm(path[-1] - 1):.3f}",
        }
    )
print(pd.DataFrame(rows).set_index("optimizer").to_string())

fig, axes = plt.subplots(2, 3, figsize=(11, 7), sharex=True, sharey=True)
for ax, (name, path) in zip(axes.flat, paths_six.items()):
    rosenbrock_axes(ax, title=name)
    ax.plot(path[:, 0], path[:, 1], ".-", color=COLOURS[name], ms=2, lw=0.8)
    ax.label_outer()
fig.suptitle(f"Six optimizers on $R$, lr = 0.01, {NUM_STEPS_SIDE} steps")
plt.show()

fig, ax = plt.subplots(figsize=(6.4, 4))
for name, path in paths_six.items():
    ax.plot(np.arange(len(path)), loss_path(path), color=COLOURS[name], label=name)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="step $t$",
    ylabel="$R(w_t)$",
    title=f"Loss of the six optimizers, lr = 0.01",
)
ax.legend()
plt.show()

# %% [markdown]
# At this learning rate the two momentum methods are in a class of their own: both pass
# below $R = 10^{-6}$ within about 130 steps (Nesterov slightly earlier, with a smaller
# overshoot past the minimum) and reach $10^{-20}$ and below by step 500. The other four have
# not reached $10^{-6}$ after 500 steps. RMSProp, like Adam, takes steps of about $\eta$ per
# coordinate but without momentum's averaging; it ends closest of the four. Adam and NAdam
# are the slowest here: $\eta = 0.01$ is a small learning rate *for them* (the sweep below
# shows Adam converging even at $\eta = 1$). NAdam's momentum schedule keeps $\mu_t$ between
# 0.45 and 0.49 during these 500 steps, about half of Adam's $\beta_1 = 0.9$. A single shared
# learning rate is not a fair comparison of methods whose steps scale so differently; the
# sweep over learning rates below is.
#
# ### Why the torch checks use "stable" settings
#
# Our code and torch's round some operations differently (torch computes
# $\beta s + (1-\beta)g^2$ in one fused `addcmul`, for example), so two correct implementations
# can differ in the 16th digit. Whether such a difference stays there depends on the
# dynamics. We can see this without torch: start each optimizer once from $w_0$ and once from
# $w_0 + (10^{-15}, 0)$, a change in the last digits, and measure how far apart the two runs
# get within 1,000 steps.

# %%
perturbed_start = (W_START[0] + 1e-15, W_START[1])
sensitivity = []
for label, cls, lr, hyper in [
    ("RMSProp, lr 0.01 (defaults, as above)", optim.RMSProp, 0.01, {}),
    (
        "RMSProp, lr 0.002, eps 1e-3 (the torch check)",
        optim.RMSProp,
        0.002,
        dict(eps=1e-3),
    ),
    ("gradient descent, lr 0.01", optim.SGD, 0.01, {}),
    ("momentum, lr 0.002", optim.Momentum, 0.002, dict(beta=0.9)),
    ("Adam, lr 0.01", optim.Adam, 0.01, {}),
]:
    a = run(cls, lr, NUM_STEPS_LONG, **hyper)
    b = run(cls, lr, NUM_STEPS_LONG, w0=perturbed_start, **hyper)
    sensitivity.append(
        {"run": label, "largest relative difference": max_relative_error(a, b)}
    )
sensitivity = pd.DataFrame(sensitivity).set_index("run")
assert sensitivity.iloc[0, 0] > 1e-6 and (sensitivity.iloc[1:, 0] < 1e-12).all()
print(
    sensitivity.to_string(formatters={"largest relative difference": "{:.0e}".format})
)

# %% [markdown]
# In the stable runs the $10^{-15}$ difference never grows beyond $2\times10^{-14}$. With
# RMSProp's defaults at $\eta = 0.01$ it grows to $6\times10^{-2}$: near the valley floor
# RMSProp's step is close to $\eta\,\mathrm{sign}(g)$ (because $\epsilon$ is tiny), a
# discontinuous function of $g$, and a last-digit change can flip a step. Such a run cannot
# be compared with torch step for step, and that says nothing about either implementation.
# So the checks against torch use settings where the iteration is stable, and there the two
# agree to rounding over 1,000 steps.
#
# ## Watching them move
#
# The animation shows the six runs above together; the frames are spaced geometrically in
# the step count (every step early on, every 40th step or so at the end), because the
# interesting motion happens in the first few dozen steps. To keep it light and quick to
# make, the static parts (contours, axes, legend) are drawn once into an image, and each
# frame only redraws the six paths on top of it; frames are stored as JPEG.

# %%
frame_steps = np.unique(
    np.geomspace(1, NUM_STEPS_SIDE, ANIM_FRAMES).round().astype(int)
)
DPI = 72
with plt.rc_context({"figure.constrained_layout.use": False}):
    # 1. the static background, rendered once
    fig, ax = plt.subplots(figsize=(5.2, 4.0), dpi=DPI)
    rosenbrock_axes(ax, title=f"Six optimizers, lr = 0.01, {NUM_STEPS_SIDE} steps")
    for name in SIX:
        ax.plot([], [], "-", color=COLOURS[name], lw=1.5, label=name)
    ax.legend(loc="lower right", fontsize=7, ncols=2)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
    fig.canvas.draw()
    background = np.asarray(fig.canvas.buffer_rgba()).copy()
    data_box, limits = ax.get_position(), (ax.get_xlim(), ax.get_ylim())
    plt.close(fig)
    # 2. the animated figure: the background image, and a transparent axes at the same place
    height_px, width_px = background.shape[:2]
    fig = plt.figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    back = fig.add_axes([0, 0, 1, 1])
    back.imshow(background, interpolation="none")
    back.set_axis_off()
    front = fig.add_axes(data_box)
    front.set(xlim=limits[0], ylim=limits[1])
    front.set_axis_off()
    front.patch.set_alpha(0)
    lines = {
        name: front.plot([], [], "-", color=COLOURS[name], lw=1.2)[0] for name in SIX
    }
    dots = {name: front.plot([], [], "o", color=COLOURS[name], ms=5)[0] for name in SIX}
    step_label = front.text(
        0.02, 0.97, "", transform=front.transAxes, va="top", fontsize=9
    )


def draw_frame(i):
    t = frame_steps[i]
    for name, path in paths_six.items():
        lines[name].set_data(path[: t + 1, 0], path[: t + 1, 1])
        dots[name].set_data(path[t : t + 1, 0], path[t : t + 1, 1])
    step_label.set_text(f"step {t}")
    return [*lines.values(), *dots.values(), step_label]


anim = FuncAnimation(fig, draw_frame, frames=len(frame_steps), interval=150)
with plt.rc_context(
    {
        "animation.frame_format": "jpeg",
        "savefig.dpi": DPI,
        "figure.constrained_layout.use": False,
    }
):
    animation_html = anim.to_jshtml(default_mode="once")
plt.close(fig)
print(f"{len(frame_steps)} frames, steps {frame_steps[0]} to {frame_steps[-1]}")

# %% tags=["nbval-ignore-output"]
# (output not compared by nbval: matplotlib gives the player a random element id on every run)
display(HTML(animation_html))

# %% [markdown]
# ## Try it yourself: learning rate and β
#
# In Jupyter or Colab the sliders below rerun momentum and Adam (whose $\beta_1$ is set to
# the same $\beta$) for 300 steps. On the static website the sliders do nothing; the figure
# after them shows six settings instead.


# %% tags=["nbval-ignore-output"]
# (output not compared by nbval: under nbval the first figure is a plain output, under
#  nbclient it is captured inside the widget, so the stored and fresh outputs differ in form)
def explore(lr=0.01, beta=0.9):
    ax = rosenbrock_axes(
        figsize=(5.2, 4.0), title=f"300 steps, lr = {lr:.3g}, β = {beta:.2f}"
    )
    for name, cls, hyper, colour in [
        ("momentum", optim.Momentum, dict(beta=beta), "C1"),
        ("Adam", optim.Adam, dict(beta1=beta), "C2"),
    ]:
        path = run(cls, lr, 300, **hyper)
        status = "diverged" if len(path) < 301 else f"R = {loss_path(path)[-1]:.1e}"
        ax.plot(
            path[:, 0],
            path[:, 1],
            ".-",
            color=colour,
            ms=2,
            lw=0.8,
            label=f"{name}: {status}",
        )
    ax.legend(loc="lower right", fontsize=8)
    plt.show()


widgets.interact(
    explore,
    lr=widgets.FloatLogSlider(
        value=0.01, base=10, min=-3, max=-1, step=0.1, description="lr"
    ),
    beta=widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="β"),
)
# %%
STATIC_LRS, STATIC_BETAS = [0.003, 0.01, 0.04], [0.5, 0.9]
static_rows = []
fig, axes = plt.subplots(2, 3, figsize=(11, 7), sharex=True, sharey=True)
for row, beta in zip(axes, STATIC_BETAS):
    for ax, lr in zip(row, STATIC_LRS):
        rosenbrock_axes(ax, title=f"lr = {lr}, β = {beta}")
        for name, cls, hyper, colour in [
            ("momentum", optim.Momentum, dict(beta=beta), "C1"),
            ("Adam", optim.Adam, dict(beta1=beta), "C2"),
        ]:
            path = run(cls, lr, 300, **hyper)
            status = "diverged" if len(path) < 301 else f"R = {loss_path(path)[-1]:.1e}"
            static_rows.append(
                {"lr": lr, "β": beta, "optimizer": name, "after 300 steps": status}
            )
            ax.plot(
                path[:, 0],
                path[:, 1],
                ".-",
                color=colour,
                ms=2,
                lw=0.8,
                label=f"{name}: {status}",
            )
        ax.legend(loc="lower right", fontsize=7)
        ax.label_outer()
fig.suptitle("Momentum and Adam (β₁ = β), 300 steps, for six settings")
plt.show()
print(
    pd.DataFrame(static_rows)
    .pivot(index=["lr", "β"], columns="optimizer", values="after 300 steps")
    .to_string()
)

# %% [markdown]
# Reading the panels and the table under them: at a fixed learning rate a larger $\beta$
# carries momentum further along the valley (at $\eta = 0.01$, $R = 8.3\times10^{-4}$ after
# 300 steps with $\beta = 0.5$ against $7\times10^{-14}$ with $\beta = 0.9$), until the learning
# rate is too large: at $\eta = 0.04$, $\beta = 0.9$ diverges and $\beta = 0.5$ does not diverge
# but is still at $R = 1.2$ after 300 steps. Adam diverges in none of the six panels; after 300
# steps its loss lies between $3\times10^{-3}$ and $6\times10^{-2}$, lowest at the largest
# learning rate, and at each learning rate $\beta_1 = 0.5$ did slightly better than $0.9$.
#
# ## Steps to tolerance against the learning rate
#
# How many steps does each method need to bring $R$ below $10^{-6}$, as a function of the
# learning rate? We sweep 25 learning rates from $10^{-4}$ to 1 (log-spaced), with a budget
# of 2,000 steps, and record one of three outcomes per run: *converged* (with
# the step count), *not reached* within the budget, or *diverged*. For the Rosenbrock
# function a step is an epoch: the whole "dataset" is the one function.

# %%
SWEEP_GRID = np.logspace(-4, 0, SWEEP_LRS)


def steps_to_tolerance(opt_cls, lr, tol=TOL, max_steps=SWEEP_MAX_STEPS, **hyper):
    """(outcome, steps): ('converged', t) with R(w_t) < tol, ('diverged', t), or ('not reached', max_steps)."""
    w = np.array(W_START)
    opt = opt_cls([w], lr=lr, **hyper)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, max_steps + 1):
            opt.step([rosenbrock_grad(w)])
            loss = rosenbrock(*w)
            if not loss < 1e12:  # also catches nan
                return "diverged", t
            if loss < tol:
                return "converged", t
    return "not reached", max_steps


sweep = pd.DataFrame(
    [
        {
            "optimizer": name,
            "lr": lr,
            **dict(zip(["outcome", "steps"], steps_to_tolerance(cls, lr, **hyper))),
        }
        for name, (cls, hyper) in SIX.items()
        for lr in SWEEP_GRID
    ]
)
summary = []
for name, group in sweep.groupby("optimizer", sort=False):
    ok = group[group.outcome == "converged"]
    div = group[group.outcome == "diverged"]
    best = ok.loc[ok.steps.idxmin()] if len(ok) else None
    summary.append(
        {
            "optimizer": name,
            "converged": f"{len(ok)} of {len(group)}",
            "lr range converged": f"{ok.lr.min():.2g} to {ok.lr.max():.2g}"
            if len(ok)
            else "none",
            "best lr": f"{best.lr:.2g}" if best is not None else "",
            "fewest steps": int(best.steps) if best is not None else "",
            "smallest lr that diverged": f"{div.lr.min():.2g}" if len(div) else "none",
        }
    )
print(f"R < {TOL:g} within {SWEEP_MAX_STEPS} steps, from w0 = {W_START}:")
print(pd.DataFrame(summary).set_index("optimizer").to_string())

for name in ["gradient descent", "NAdam"]:
    group = sweep[sweep.optimizer == name]
    print(
        f"{name}: "
        + ", ".join(
            f"{lr:.2g} {outcome}"
            for lr, outcome in zip(group.lr, group.outcome)
            if lr >= 0.01
        )
    )
rms_path = run(optim.RMSProp, 0.01, SWEEP_MAX_STEPS)
late_steps = np.abs(
    np.diff(rms_path[-101:], axis=0)
)  # |w_{t+1} - w_t| per coordinate, last 100 steps
assert (
    np.median(late_steps) > 0.1 * 0.01
)  # still moving by a sizeable fraction of lr per step
print(
    f"RMSProp at lr 0.01: over its last 100 of {SWEEP_MAX_STEPS} steps the median step per coordinate is"
    f" {np.median(late_steps) / 0.01:.1f} lr"
)

# %%
fig, (ax, ax_status) = plt.subplots(
    2, 1, figsize=(7.5, 6.5), height_ratios=[3, 1.4], sharex=True
)
OUTCOME_STYLE = {
    "converged": ("o", 1.0),
    "not reached": ("^", 0.35),
    "diverged": ("x", 1.0),
}
for k, name in enumerate(SIX):
    group = sweep[sweep.optimizer == name]
    steps = np.where(
        group.outcome == "converged", group.steps, np.nan
    )  # gaps where it did not converge
    ax.plot(group.lr, steps, "o-", color=COLOURS[name], ms=3, label=name)
    for outcome, (marker, alpha) in OUTCOME_STYLE.items():
        sel = group[group.outcome == outcome]
        ax_status.scatter(
            sel.lr,
            np.full(len(sel), k),
            marker=marker,
            color=COLOURS[name],
            alpha=alpha,
            s=22,
        )
ax.axhline(SWEEP_MAX_STEPS, color="grey", ls=":", lw=1)
ax.text(SWEEP_GRID[0], SWEEP_MAX_STEPS * 1.1, "step budget", color="grey", fontsize=8)
ax.set(
    xscale="log",
    yscale="log",
    ylabel=f"steps until $R < 10^{{{np.log10(TOL):.0f}}}$",
    title="Steps to tolerance against learning rate (Rosenbrock, from $w_0 = (0, 1)$)",
)
ax.legend(ncols=2, fontsize=8)
ax_status.set(
    yticks=range(len(SIX)),
    yticklabels=list(SIX),
    xlabel="learning rate $\\eta$",
    ylim=(len(SIX) - 0.5, -0.5),
    title="Outcome of each run",
)
ax_status.legend(
    handles=[
        plt.Line2D([], [], ls="", marker=m, color="grey", alpha=a, label=o)
        for o, (m, a) in OUTCOME_STYLE.items()
    ],
    ncols=3,
    loc="upper left",
    bbox_to_anchor=(0, -0.35),
    fontsize=8,
)
ax_status.grid(False)
plt.show()

# %% [markdown]
# The sweep separates the methods into two families.
#
# * **Gradient descent and the two momentum methods** have a window of learning rates that
#   works, bounded below by the step budget and above by divergence. Gradient descent
#   converges only for 0.01 and 0.015 (980 steps at 0.015); from 0.022 to 0.068 it neither
#   converges nor diverges but keeps oscillating, like the 2-cycle above, and from 0.1 on it
#   diverges. Momentum converges from $10^{-3}$ to 0.022 and needs 128 steps at its best
#   (0.01); Nesterov's window ends a notch earlier, at 0.015, but at 0.0068 it needs 87 steps,
#   fewer than any other method. Inside the window, steps fall roughly as
#   $1/\eta$: the straight lines of slope $-1$ on the log-log plot.
# * **Adam, NAdam and RMSProp never diverge** in this range: their step is bounded by about
#   $\eta$ per coordinate. Adam converges for every $\eta \ge 0.015$ up to 1, its best runs
#   (124 steps at 0.68) at the top of the range; NAdam converges only in two bands, 0.015 to
#   0.032 and 0.46 to 0.68, and needs more steps than Adam in both.
#   **RMSProp never reaches the tolerance**: without momentum to average them, its steps stay
#   about $\eta$ long per coordinate (over its last 100 of 2,000 steps at $\eta = 0.01$ the
#   median step is one learning rate per coordinate), so it keeps jumping around near the
#   minimum instead of settling.
#
# So "Adam is robust to the learning rate" is true here in the sense that it does not blow
# up over four decades of learning rates; its *best* step count (124) is about momentum's
# (128) and worse than Nesterov's (87).
#
# ## No free lunch: where momentum beats Adam
#
# No optimizer is best on every problem {cite}`ch03-wolpert1997nfl`. A concrete case: the
# quadratic $f(w) = \tfrac12 w^\top A w$ whose curvatures are 1 and $1/\kappa$, with the
# eigenvectors rotated by 45° so they are *not* aligned with the coordinate axes. Adam
# rescales each coordinate separately, a diagonal preconditioner, and no diagonal rescaling
# can undo a rotated ill-conditioning; momentum does not rescale at all, but on quadratics,
# with well-chosen settings, it needs only about $\sqrt\kappa$ times more steps than on a
# perfectly conditioned problem, where gradient descent needs $\kappa$ times more. For momentum the best settings are even
# known in closed form {cite}`ch03-polyak1964momentum`:
# $\beta^\star = \bigl(\tfrac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\bigr)^2$ and
# $\eta^\star = 4/(\sqrt{\lambda_{\max}} + \sqrt{\lambda_{\min}})^2$.
#
# For a fair race both momentum and Adam get their learning rate *and* their $\beta$
# (Adam's $\beta_1$) tuned on the same grids: 16 learning rates from 0.01 to 10, and
# $\beta \in \{0, 0.3, 0.5, 0.7, 0.9\}$. We count the steps until $f$ has fallen by a factor
# $10^8$ from $w_0 = (-1.5, 1)$, with a budget of 1,000 steps. As a control we also run the
# axis-aligned version of the $\kappa = 1000$ problem.

# %%
NFL_LRS = np.logspace(-2, 1, 16)
NFL_BETAS = [0.0, 0.3, 0.5, 0.7, 0.9]
NFL_PROBLEMS = [
    (10, "rotated 45°"),
    (100, "rotated 45°"),
    (1000, "rotated 45°"),
    (1000, "axis-aligned"),
]


def rotation(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def quadratic_steps(A, opt_cls, lr, max_steps=1000, **hyper):
    """Steps until 0.5 w^T A w falls below 1e-8 of its start value (inf: diverged or not reached)."""
    w = np.array([-1.5, 1.0])
    f0 = 0.5 * w @ A @ w
    opt = opt_cls([w], lr=lr, **hyper)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, max_steps + 1):
            opt.step([A @ w])
            f = 0.5 * w @ A @ w
            if not f < 1e6 * f0:
                return np.inf
            if f < 1e-8 * f0:
                return t
    return np.inf


def best_setting(A, opt_cls, beta_name=None):
    """(steps, lr, beta) of the fastest run over the grids."""
    betas = NFL_BETAS if beta_name else [None]
    runs = [
        (
            quadratic_steps(A, opt_cls, lr, **({beta_name: b} if beta_name else {})),
            lr,
            b,
        )
        for b in betas
        for lr in NFL_LRS
    ]
    return min(runs, key=lambda r: r[0])


def describe(steps, lr, beta=None):
    if not np.isfinite(steps):
        return "not reached"
    return f"{steps:.0f} (lr {lr:.2g}" + (f", β {beta:g})" if beta is not None else ")")


nfl_rows, nfl_steps = [], {}
for kappa, orientation in NFL_PROBLEMS:
    Q = rotation(np.pi / 4) if orientation.startswith("rotated") else np.eye(2)
    A = Q @ np.diag([1.0, 1.0 / kappa]) @ Q.T
    beta_star = ((np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)) ** 2
    lr_star = 4 / (1 + np.sqrt(1 / kappa)) ** 2
    results = {
        "gradient descent": best_setting(A, optim.SGD),
        "momentum (tuned)": best_setting(A, optim.Momentum, "beta"),
        "momentum (Polyak's β*, η*)": (
            quadratic_steps(A, optim.Momentum, lr_star, beta=beta_star),
            lr_star,
            round(beta_star, 3),
        ),
        "Adam (tuned)": best_setting(A, optim.Adam, "beta1"),
    }
    problem = f"κ = {kappa}, {orientation}"
    nfl_rows.append(
        {"problem": problem, **{name: describe(*r) for name, r in results.items()}}
    )
    nfl_steps[problem] = {name: r[0] for name, r in results.items()}

print("steps to reduce f by 1e8 (the best settings in brackets):")
print(pd.DataFrame(nfl_rows).set_index("problem").T.to_string())
for kappa in (100, 1000):
    rotated = nfl_steps[f"κ = {kappa}, rotated 45°"]
    assert rotated["momentum (tuned)"] < rotated["Adam (tuned)"]
    assert rotated["momentum (Polyak's β*, η*)"] < rotated["Adam (tuned)"]
aligned = nfl_steps["κ = 1000, axis-aligned"]
assert aligned["Adam (tuned)"] < aligned["momentum (tuned)"] / 10

# %% [markdown]
# Reading the table row by row:
#
# * At $\kappa = 10$ the tuned methods tie: 24 steps for momentum and for Adam (Polyak's
#   closed-form momentum needs 19).
# * As $\kappa$ grows, tuned momentum's step count grows roughly like $\sqrt\kappa$
#   (24, 69, 204: about a factor 3 per factor 10 in $\kappa$, and $\sqrt{10}\approx 3.2$), Adam's
#   faster (24, 85, 490). At $\kappa = 1000$ Adam needs 2.4 times as many steps as momentum,
#   and even Polyak's settings, found with no search at all, beat the best Adam at $\kappa = 100$
#   and $1000$. Gradient descent grows like $\kappa$ (53, 527, then not within 1,000 steps).
# * The axis-aligned control turns the result around: there Adam's per-coordinate scaling
#   *is* the right preconditioner and it needs 7 steps, against momentum's 164. (Momentum
#   treats every direction alike; its counts differ between the two orientations only because
#   the fixed start $w_0$ has different components along the two eigenvectors.)
#
# So which optimizer is faster depends on the problem, here on nothing more than the angle
# between the valley and the coordinate axes.
#
# This is a statement about optimisation speed on one deterministic problem. Whether
# adaptive methods also find solutions that *generalise* worse in deep learning, as
# {cite}`ch03-wilson2017marginal` report for several tasks, is a different question, which this
# chapter does not address.
#
# ## Summary
#
# * An optimizer turns a gradient into a step and keeps a little state per parameter.
#   `course_utils.optim` implements SGD, momentum, Nesterov, RMSProp, Adam and NAdam over NumPy
#   arrays, one short subclass of a shared `Optimizer` each, updating in place; all six match
#   `torch.optim` to $10^{-6}$ relative over 1,000 steps, and AdamW was one more short class.
# * On the Rosenbrock function at $\eta = 0.01$, momentum reaches the minimum's neighbourhood
#   in 100 steps while gradient descent and Adam crawl along the valley floor.
# * At $\eta = 0.04$, twice gradient descent's stability limit $2/\lambda_{\max}\approx 0.0197$,
#   gradient descent is trapped in an exact attracting 2-cycle, torch-style momentum diverges
#   within 17 steps, and Adam converges: the source notes' claims, confirmed and made precise.
# * The two momentum formulas $v \leftarrow \beta v + g$ and $v \leftarrow \beta v + (1-\beta)g$
#   are the same method with learning rates differing by a factor $1-\beta$.
# * Steps to tolerance against learning rate: gradient descent and momentum have a window
#   bounded by the budget and by divergence; Adam does not diverge at any learning rate up
#   to 1, but at its best it is about as fast as tuned momentum and slower than Nesterov;
#   RMSProp never settles.
# * No free lunch: on rotated ill-conditioned quadratics tuned momentum beats tuned Adam,
#   by a factor 2.4 in steps at $\kappa = 1000$; on the axis-aligned version Adam wins, 7 steps
#   against 164.
#
# ## Exercises
#
# ```{exercise}
# :label: ex-opt-momentum-stability
#
# Heavy-ball momentum (torch's form) on a one-dimensional quadratic $f(w) = \tfrac{\lambda}{2}w^2$
# is the linear recursion $w_{t+1} = (1 + \beta - \eta\lambda)\,w_t - \beta\, w_{t-1}$. For which
# learning rates is it stable? Use the result with the largest Hessian eigenvalue of $R$ at
# the minimum to predict momentum's largest stable learning rate near $(1, 1)$ for $\beta = 0.9$,
# and compare it with the sweep.
# ```
#
# ```{solution} ex-opt-momentum-stability
# :class: dropdown
#
# With $v_t = (w_{t-1} - w_t)/\eta$ the update $v_{t+1} = \beta v_t + \lambda w_t$,
# $w_{t+1} = w_t - \eta v_{t+1}$ becomes $w_{t+1} = (1+\beta-\eta\lambda)w_t - \beta w_{t-1}$. Its
# characteristic polynomial $z^2 - (1+\beta-\eta\lambda)z + \beta$ has both roots inside the unit
# circle (for $0\le\beta<1$) exactly when $|1 + \beta - \eta\lambda| < 1 + \beta$, that is
# $0 < \eta < 2(1+\beta)/\lambda$. With $\lambda_{\max} = 101.6$ and $\beta = 0.9$ the limit is
# $3.8/101.6 \approx 0.0374$, $1+\beta = 1.9$ times gradient descent's $0.0197$. The sweep's
# largest converging learning rate for momentum was 0.022, and 0.032 diverged; the bound is a statement about the neighbourhood of the minimum only, and
# runs from $(0,1)$ can blow up earlier on the steeper walls. The code cell after the
# exercises checks the bound with the roots of the polynomial.
# ```
#
# ```{exercise}
# :label: ex-opt-adam-scale
#
# Multiply the loss by a constant $c > 0$. What happens to the trajectory of gradient
# descent, and to Adam's? Check it by running both on $c\,R$ for $c = 100$.
# ```
#
# ```{solution} ex-opt-adam-scale
# :class: dropdown
#
# Gradient descent on $cR$ with learning rate $\eta$ is gradient descent on $R$ with $c\eta$:
# its trajectory changes completely (for $c = 100$ and $\eta = 0.01$ it diverges). Adam's
# $m_t$ scales by $c$ and $\sqrt{v_t}$ by $c$, so $\hat m/\sqrt{\hat v}$ is unchanged: apart from
# $\epsilon$ (which becomes relatively 100 times smaller), Adam's trajectory is the same. This
# is why Adam's learning rate reads as a step length in parameter units, whatever the scale
# of the loss, while gradient descent's must be chosen relative to the curvature.
# ```
#
# ```{exercise}
# :label: ex-opt-amsgrad
#
# AMSGrad {cite}`ch03-reddi2018amsgrad` changes one line of Adam: the denominator uses the running
# maximum $\hat v^{\max}_t = \max(\hat v^{\max}_{t-1}, v_t)$ instead of $v_t$. Write it as a subclass
# of `optim.Adam` and check it against `torch.optim.Adam(amsgrad=True)` on $R$.
# ```
#
# ````{solution} ex-opt-amsgrad
# :class: dropdown
#
# The subclass needs one more state buffer and overrides `update`; everything else is Adam's:
#
# ```python
# class AMSGrad(optim.Adam):
#     def init_state(self, p):
#         return {**super().init_state(p), "v_max": np.zeros_like(p)}
#
#     def update(self, p, g, state):
#         m, v, tmp = self._moments(g, state)
#         np.maximum(state["v_max"], v, out=state["v_max"])
#         denom = self._denominator(state["v_max"], tmp)
#         np.divide(m, denom, out=tmp)
#         tmp *= self.lr / (1.0 - self.beta1**self.t)
#         p -= tmp
# ```
#
# The cell below runs it for 1,000 steps against torch.
# ````
#
# The solutions, checked:

# %% tags=["hide-input"]
# Exercise 1: the stability bound 2 (1 + beta) / lambda from the roots of z^2 - (1 + beta - lr lambda) z + beta.
lam, beta = curvatures[1], 0.9
bound = 2 * (1 + beta) / lam
for lr, stable in [(0.99 * bound, True), (1.01 * bound, False)]:
    roots = np.roots([1.0, -(1 + beta - lr * lam), beta])
    assert (np.abs(roots).max() < 1) == stable
print(
    f"exercise 1: momentum (beta = 0.9) is stable near the minimum for lr < {bound:.4f}"
)


# Exercise 2: scaling the loss by c = 100.
def scaled_grad(w):
    return 100 * rosenbrock_grad(w)


gd_scaled = run(optim.SGD, 0.01, 300, grad=scaled_grad)
adam_plain = run(optim.Adam, 0.01, 300)
adam_scaled = run(optim.Adam, 0.01, 300, grad=scaled_grad)
assert len(gd_scaled) < 301  # gradient descent on 100 R at lr 0.01 diverges
assert (
    max_relative_error(adam_plain, adam_scaled) < 1e-6
)  # Adam barely notices (only eps)
print(
    f"exercise 2: gradient descent on 100 R diverged at step {len(gd_scaled) - 1};"
    f" Adam's 300 iterates on 100 R equal those on R to a relative 1e-6"
)


# Exercise 3: AMSGrad as a subclass of Adam.
class AMSGrad(optim.Adam):
    def init_state(self, p):
        return {**super().init_state(p), "v_max": np.zeros_like(p)}

    def update(self, p, g, state):
        m, v, tmp = self._moments(g, state)
        np.maximum(state["v_max"], v, out=state["v_max"])
        denom = self._denominator(state["v_max"], tmp)
        np.divide(m, denom, out=tmp)
        tmp *= self.lr / (1.0 - self.beta1**self.t)
        p -= tmp


a = run(AMSGrad, 0.01, NUM_STEPS_LONG)
b = torch_run(lambda ps: torch.optim.Adam(ps, lr=0.01, amsgrad=True), NUM_STEPS_LONG)
assert max_relative_error(a, b) <= 1e-6
print(
    f"exercise 3: AMSGrad matches torch.optim.Adam(amsgrad=True) over {NUM_STEPS_LONG} steps"
)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch03-
# ```
