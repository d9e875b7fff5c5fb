# ---
# jupyter:
#   jupytext:
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
# which plain momentum beats Adam. [Chapter 5.1](05_1_backprop_fashion_mnist.ipynb) uses these
# same classes to train a network.
#
# **Learning objectives.** After this chapter you can
#
# - write the update rules of gradient descent, momentum, Nesterov momentum, RMSProp, Adam
#   and NAdam, implement each as a small class, and check it step for step against
#   `torch.optim`;
# - predict from the Hessian's largest eigenvalue which learning rates make gradient descent
#   stable, and recognise the ways a run fails (divergence, a 2-cycle, endless jitter);
# - convert a learning rate between the two momentum formulas in circulation;
# - measure the steps to a target loss as a function of the learning rate, and read a method's
#   window of working learning rates off it;
# - construct a problem on which momentum beats Adam, and say why.
#
# **Prerequisites:** [chapter 1.1](01_1_computational_graph.ipynb) (gradients, and what an
# optimizer step does with them); [chapter 2](02_jacobians.ipynb) (derivatives of vector
# functions; here we also use the Hessian, the matrix of second derivatives). No machine
# learning beyond that.
#
# Symbols follow the book's {ref}`notation`; terms are defined in the {ref}`glossary`.
#
# Nothing in this chapter is random: every run starts from the same point and follows the
# exact gradient, so one run per setting is the whole result, and `SEED` below only seeds
# the libraries for form's sake.

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
SEED = 0  # nothing below is random; the seed only initialises the libraries
W_START = (0.0, 1.0)  # where every run on the Rosenbrock function starts
NUM_STEPS_SHORT = 100  # the first comparison at lr = 0.01
NUM_STEPS_LONG = 1000  # the larger learning rate, lr = 0.04
NUM_STEPS_SIDE = 500  # all six optimizers side by side
# Steps of the step-for-step checks against torch.optim (1000: about +1.5 s here,
# most of it torch's per-step overhead)
NUM_STEPS_CHECK = 300
# The animation: frames (each an image stored in the notebook) and width in inches
# at 100 dpi (6.4 inches = 640 pixels)
ANIM_FRAMES = 20  # 40: a smoother animation, about +0.4 s here
ANIM_WIDTH = 6.4
# Steps-to-target sweep: learning rates per optimizer, step budget, and the target
# on R(w). Everything here is cheap; a reader may raise SWEEP_LRS and SWEEP_MAX_STEPS.
SWEEP_LRS = 25
SWEEP_MAX_STEPS = 2000
TOL = 1e-6  # the target
# No free lunch: the step budget of each run on the quadratics (1000: about +0.3 s
# here; every best run needs fewer than 600 steps)
NFL_MAX_STEPS = 600

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
from course_utils.plots import COLUMN_WIDTH

torch.set_default_dtype(torch.float64)  # compare with torch.optim in double precision
info = course_utils.runtime.init(SEED)
print(info)

# %% [markdown]
# ## The Rosenbrock function
#
# We minimise the Rosenbrock function {cite}`ch03-rosenbrock1960` of
# $\mathbf{w} = (w_1, w_2)$ in the form
#
# $$
# R(\mathbf{w}) = (1 - w_1)^2 + 10\,(w_2 - w_1^2)^2 ,
# $$ (eq-rosenbrock)
#
# which is zero only at the minimum $\mathbf{w}^\star = (1, 1)$. Its gradient and Hessian are
#
# $$
# \begin{aligned}
# \nabla R(\mathbf{w}) &= \begin{pmatrix} -2(1 - w_1) - 40\,w_1 (w_2 - w_1^2) \\
#   20\,(w_2 - w_1^2) \end{pmatrix}, \\
# \nabla^2 R(\mathbf{w}) &= \begin{pmatrix} r_{11} & -40\,w_1 \\
#   -40\,w_1 & 20 \end{pmatrix},\\
# r_{11} &= 2 - 40\,w_2 + 120\,w_1^2 .
# \end{aligned}
# $$ (eq-rosenbrock-grad)
#
# The second term is a steep-walled parabolic valley $w_2 = w_1^2$; the first term makes the
# valley floor slope gently towards $(1, 1)$. We start every run at $\mathbf{w}_0 = (0, 1)$,
# on the valley's wall. The functions below work elementwise, so one call evaluates $R$ on a whole
# grid (or on torch tensors), and the code cell after them checks the formulas against
# `torch.autograd` and finite differences.


# %%
def rosenbrock(w1, w2):
    """R(w) for arrays (or tensors) w1, w2 of any shape, elementwise."""
    return (1 - w1) ** 2 + 10 * (w2 - w1**2) ** 2


def rosenbrock_grad(w):
    """The gradient of R at w = (w1, w2), or at each row of an array of points."""
    w = np.asarray(w)
    w1, w2 = w[..., 0], w[..., 1]
    return np.stack(
        [-2 * (1 - w1) - 40 * w1 * (w2 - w1**2), 20 * (w2 - w1**2)], axis=-1
    )


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
    "gradient descent is stable near the minimum only for"
    f" lr < 2 / {curvatures[1]:.2f} = {2 / curvatures[1]:.4f}"
)

# %% [markdown]
# Near the minimum the valley is 258 times more curved across than along (the Hessian's
# condition number $\kappa = \lambda_{\max}/\lambda_{\min}$). Gradient descent on a
# quadratic with curvature $\lambda$ multiplies the error along that direction by
# $1 - \eta\lambda$ per step, so it is stable only when $\eta < 2/\lambda_{\max}$: about
# 0.0197 here. Keep that number in mind for {ref}`sec-ch03-larger-lr`.
#
# The contour plot is computed the vectorized way: `np.meshgrid` builds the grid of points
# and one call of `rosenbrock` evaluates all of them, with no Python loop. The contour
# levels are spaced logarithmically, because $R$ spans five decades over the plotted area.

# %%
G1, G2 = np.meshgrid(np.linspace(-1.0, 1.6, 256), np.linspace(-0.7, 2.0, 256))
R_GRID = rosenbrock(G1, G2)  # 65,536 values in one vectorized call
# the grid misses (1, 1) itself, so the log-scaled levels need no masking
assert R_GRID.min() > 0
LEVELS = np.logspace(-3, 2.5, 23)
XLIM, YLIM = (-1.0, 1.6), (-0.7, 2.0)

# %% [markdown]
# A helper draws these contours, the start and the minimum on any axes (every trajectory
# plot of the chapter uses it); then the function itself:

# %% tags=["hide-input"]


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
    ax.plot(*W_START, "ko", ms=5, label="start $\\mathbf{w}_0$", zorder=3)
    ax.plot(1, 1, "r*", ms=11, label="minimum $\\mathbf{w}^\\star$", zorder=3)
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
    filled,
    ax=ax,
    label="$R(\\mathbf{w})$ (log scale)",
    ticks=[1e-3, 1e-2, 1e-1, 1, 10, 100],
)
rosenbrock_axes(ax, title="The Rosenbrock function $R = (1-w_1)^2 + 10(w_2-w_1^2)^2$")
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
# (sec-ch03-six-optimizers)=
# ## Six optimizers from scratch
#
# All six methods keep some memory of past gradients (except plain gradient descent) and
# turn the current gradient $\mathbf{g}_t = \nabla R(\mathbf{w}_{t-1})$ into a step. With
# {term}`learning rate` $\eta$, step count $t = 1, 2, \dots$ and all buffers starting at zero,
# the update equations are exactly those of `torch.optim`: heavy-ball {term}`momentum`
# {cite}`ch03-polyak1964momentum`, Nesterov momentum in the form of
# {cite}`ch03-sutskever2013importance`, RMSProp {cite}`ch03-hinton2012rmsprop` and Adam
# {cite}`ch03-kingma2015adam`:
#
# $$
# \begin{aligned}
# &\textbf{gradient descent:}\\
# &\quad \mathbf{w} \leftarrow \mathbf{w} - \eta\,\mathbf{g}_t \\
# &\textbf{momentum:}\\
# &\quad \mathbf{m}_t = \beta\,\mathbf{m}_{t-1} + \mathbf{g}_t,\\
# &\quad \mathbf{w} \leftarrow \mathbf{w} - \eta\,\mathbf{m}_t \\
# &\textbf{Nesterov:}\\
# &\quad \mathbf{m}_t = \beta\,\mathbf{m}_{t-1} + \mathbf{g}_t,\\
# &\quad \mathbf{w} \leftarrow \mathbf{w} - \eta\,(\mathbf{g}_t + \beta\,\mathbf{m}_t) \\
# &\textbf{RMSProp:}\\
# &\quad \mathbf{v}_t = \beta\,\mathbf{v}_{t-1} + (1-\beta)\,\mathbf{g}_t^2,\\
# &\quad \mathbf{w} \leftarrow \mathbf{w}
#   - \frac{\eta\,\mathbf{g}_t}{\sqrt{\mathbf{v}_t} + \epsilon} \\
# &\textbf{Adam:}\\
# &\quad \mathbf{m}_t = \beta_1 \mathbf{m}_{t-1} + (1-\beta_1)\,\mathbf{g}_t,\\
# &\quad \mathbf{v}_t = \beta_2 \mathbf{v}_{t-1} + (1-\beta_2)\,\mathbf{g}_t^2,\\
# &\quad \hat{\mathbf{m}}_t = \frac{\mathbf{m}_t}{1-\beta_1^t},
#   \quad \hat{\mathbf{v}}_t = \frac{\mathbf{v}_t}{1-\beta_2^t},\\
# &\quad \mathbf{w} \leftarrow \mathbf{w}
#   - \frac{\eta\,\hat{\mathbf{m}}_t}{\sqrt{\hat{\mathbf{v}}_t} + \epsilon}
# \end{aligned}
# $$ (eq-six-optimizers)
#
# (squares, roots and divisions elementwise). NAdam {cite}`ch03-dozat2016nadam` mixes Nesterov's
# look-ahead into Adam: it updates $\mathbf{m}_t, \mathbf{v}_t$ like Adam and steps by
#
# $$
# \begin{aligned}
# \mathbf{w} \leftarrow \mathbf{w}
#   &- \eta\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{\mathbf{g}_t}{\sqrt{\hat{\mathbf{v}}_t}+\epsilon} \\
#   &- \eta\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,
#      \frac{\mathbf{m}_t}{\sqrt{\hat{\mathbf{v}}_t}+\epsilon},
# \end{aligned}
# $$ (eq-nadam)
#
# with torch's momentum schedule and its running product
#
# $$
# \mu_t = \beta_1\bigl(1 - \tfrac12\, 0.96^{\,0.004\,t}\bigr), \qquad
# \Pi_t = \textstyle\prod_{i\le t}\mu_i ;
# $$
#
# $\mu_t$ starts near $\beta_1/2$ and approaches $\beta_1$ only
# after thousands of steps. Each optimizer may also add {term}`weight decay`
# $\lambda_{\text{wd}}$ to the gradient first,
# $\mathbf{g}_t \leftarrow \mathbf{g}_t + \lambda_{\text{wd}}\mathbf{w}$, as torch does.
#
# In `course_utils.optim` every method is a short subclass of one base class, `Optimizer`,
# which holds the parameter arrays, the learning rate, the weight decay and a state dict per
# parameter, and whose `step(grads)` updates the arrays **in place**. A subclass only says
# what state it needs and how one parameter is updated. The buffers carry the names of the
# equations: `state["m"]` holds $\mathbf{m}_t$ (momentum, Nesterov, Adam, NAdam) and
# `state["v"]` holds $\mathbf{v}_t$ (RMSProp, Adam, NAdam). Here is Adam's part, whole:

# %%
print(inspect.getsource(optim.Adam.init_state))
print(inspect.getsource(optim.Adam._moments))
print(inspect.getsource(optim.Adam._denominator))
print(inspect.getsource(optim.Adam.update))

# %% [markdown]
# `power(b, t)` is $b^t$, the bias correction's power. When $\beta_1$ or $\beta_2$ is an array, one
# value per row of a grid (as in the sweeps below), it raises each value separately, as a single
# number is raised: NumPy's power of a whole array can round the last bit differently on some
# CPUs, and the rows would no longer follow their single runs exactly.
#
# Every operation writes into an existing buffer (`out=`, `*=`, `+=`), so after the first
# step no parameter-sized array is allocated: [chapter 5.1](05_1_backprop_fashion_mnist.ipynb)
# calls `step` thousands of times per epoch. The helpers below run any of these optimizers on
# $R$ from $\mathbf{w}_0$, and run the same experiment with `torch.optim`, fed the same
# gradient {eq}`eq-rosenbrock-grad` (checked against `torch.autograd` above), so that the
# comparison tests the optimizers alone. A run stops early when it *diverges*, which we
# define as a coordinate leaving $[-10^6, 10^6]$.


# %%
def run(opt_cls, lr, num_steps, w0=W_START, grad=rosenbrock_grad, **hyper):
    """The iterates w_0, ..., w_T of opt_cls(lr, **hyper) on R from w0.

    Stops early once a coordinate leaves [-1e6, 1e6] (the run diverged)."""
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
    """The same with a torch.optim optimizer, fed the same gradient."""
    w = torch.tensor(w0, dtype=torch.float64)
    opt = make_opt([w])
    path = [w.numpy().copy()]
    for _ in range(num_steps):
        w.grad = torch.from_numpy(rosenbrock_grad(w.numpy()))
        opt.step()
        path.append(w.numpy().copy())
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
# The check against `torch.optim`: `NUM_STEPS_CHECK` = 300 steps of each optimizer, whose
# iterates must agree with torch's to a relative error of $10^{-6}$ at every step, with
# settings at which the iteration is stable ({ref}`sec-ch03-stable-settings` shows why
# that matters).

# %%
T = torch.optim
MOMENTUM, NESTEROV = dict(momentum=0.9), dict(momentum=0.9, nesterov=True)
RMSPROP = dict(beta=0.99, eps=1e-3)  # torch calls RMSProp's beta "alpha"
VERIFY = [  # (name, our class, torch's class, lr, our hyperparameters, torch's)
    ("SGD", optim.SGD, T.SGD, 0.01, {}, {}),
    ("Momentum", optim.Momentum, T.SGD, 0.002, dict(beta=0.9), MOMENTUM),
    ("Nesterov", optim.Nesterov, T.SGD, 0.002, dict(beta=0.9), NESTEROV),
    ("RMSProp", optim.RMSProp, T.RMSprop, 0.002, RMSPROP, dict(alpha=0.99, eps=1e-3)),
    ("Adam", optim.Adam, T.Adam, 0.01, {}, {}),
    ("NAdam", optim.NAdam, T.NAdam, 0.01, {}, {}),
]
for name, ours, theirs, lr, hyper, torch_hyper in VERIFY:
    a = run(ours, lr, NUM_STEPS_CHECK, **hyper)
    b = torch_run(lambda ps: theirs(ps, lr=lr, **torch_hyper), NUM_STEPS_CHECK)
    assert len(a) == NUM_STEPS_CHECK + 1 and max_relative_error(a, b) <= 1e-6, name
    print(
        f"{name:9s} lr={lr:<6g} = torch.optim over {NUM_STEPS_CHECK} steps"
        f" (to 1e-6); final R = {loss_path(a)[-1]:.2e}"
    )

# %% [markdown]
# A detail worth knowing when you compare with torch: torch's NAdam keeps the product
# $\Pi_t$ in the default scalar dtype, which is float32 unless the default dtype is float64
# (set in the imports cell). With float32 the two trajectories differ by a relative
# $2\times10^{-10}$ or so, well below the $10^{-6}$ of the check but far above float64
# rounding:

# %%
torch.set_default_dtype(torch.float32)  # torch keeps NAdam's product of mu_t in float32
nadam_float32_scalars = torch_run(lambda ps: T.NAdam(ps, lr=0.01), NUM_STEPS_CHECK)
torch.set_default_dtype(torch.float64)
nadam_drift = max_relative_error(
    run(optim.NAdam, 0.01, NUM_STEPS_CHECK), nadam_float32_scalars
)
assert 1e-12 < nadam_drift < 1e-8
print(
    "NAdam against torch with its default float32 scalar state:"
    f" relative difference {nadam_drift:.0e}"
)

# %% [markdown]
# ## Adding an algorithm: AdamW in one short class
#
# Weight decay as defined in {ref}`sec-ch03-six-optimizers` is *coupled*:
# $\lambda_{\text{wd}}\mathbf{w}$ is added to the gradient and then divided by Adam's
# $\sqrt{\hat{\mathbf{v}}_t}$ like the rest of it. AdamW
# {cite}`ch03-loshchilov2019adamw` *decouples* it:
# $\mathbf{w} \leftarrow (1 - \eta\lambda_{\text{wd}})\,\mathbf{w}$, then the Adam step on the
# raw gradient. With the base class that is one short subclass, checked here against
# `torch.optim.AdamW`:


# %%
class AdamW(optim.Adam):
    r"""Adam with decoupled weight decay: w <- (1 - lr * decay) w, then Adam's step."""

    hyperparameters = ("beta1", "beta2", "eps", "decoupled_weight_decay")

    def __init__(self, params, lr=1e-3, weight_decay=1e-2, **adam_hyper):
        # the coupled weight decay of the base class stays 0
        super().__init__(params, lr=lr, **adam_hyper)
        self.decoupled_weight_decay = optim.check_nonnegative(
            "weight_decay", weight_decay
        )

    def update(self, p, g, state):
        p *= 1.0 - self.lr * self.decoupled_weight_decay
        super().update(p, g, state)


a = run(AdamW, 0.01, NUM_STEPS_CHECK, weight_decay=0.1)
b = torch_run(lambda ps: T.AdamW(ps, lr=0.01, weight_decay=0.1), NUM_STEPS_CHECK)
assert max_relative_error(a, b) <= 1e-6
opt = AdamW([np.zeros(2)], lr=0.01, weight_decay=0.1)
print(f"AdamW(lr={opt.lr}, decoupled_weight_decay={opt.decoupled_weight_decay})")
print(
    f"= torch.optim.AdamW over {NUM_STEPS_CHECK} steps, ending at w = {a[-1].round(3)}"
)

# %% [markdown]
# (sec-ch03-first-comparison)=
# ## Gradient descent, momentum and Adam at η = 0.01
#
# The first comparison: 100 steps of gradient descent, momentum with $\beta = 0.9$ and Adam
# (torch's defaults $\beta_1 = 0.9$, $\beta_2 = 0.999$), all at learning rate 0.01. The loss is
# drawn on log-log axes, where the early and the late steps are both visible.

# %%
THREE = {  # name: (class, hyperparameters, colour, the torch.optim counterpart)
    "gradient descent": (optim.SGD, {}, "C0", lambda ps, lr: T.SGD(ps, lr=lr)),
    "momentum (β = 0.9)": (
        optim.Momentum,
        dict(beta=0.9),
        "C1",
        lambda ps, lr: T.SGD(ps, lr=lr, momentum=0.9),
    ),
    "Adam": (optim.Adam, {}, "C2", lambda ps, lr: T.Adam(ps, lr=lr)),
}


def compare_three(lr, num_steps):
    paths = {
        name: run(cls, lr, num_steps, **hyper)
        for name, (cls, hyper, _, _) in THREE.items()
    }
    rows = []
    for name, path in paths.items():
        losses = loss_path(path)
        finite = np.all(np.abs(path[-1]) < 1e6)
        rows.append(
            {
                "optimizer": name,
                "steps run": len(path) - 1,
                "final R": f"{losses[-1]:.3g}",
                "smallest R": f"{np.nanmin(losses):.3g}",
                "final w": np.array2string(path[-1], precision=3)
                if finite
                else "diverged",
            }
        )
    return paths, pd.DataFrame(rows).set_index("optimizer")


# %% [markdown]
# A helper draws the trajectories over the contours and, below them, the loss against the
# step:


# %% tags=["hide-input"]
def plot_three(paths, lr):
    fig, (ax0, ax1) = plt.subplots(
        2, 1, figsize=(COLUMN_WIDTH, 9.5), height_ratios=[1.25, 1]
    )
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
        ylabel="$R(\\mathbf{w}_t)$",
        title=f"Loss, lr = {lr}",
    )
    ax1.legend()
    plt.show()


# %%
paths_short, table = compare_three(0.01, NUM_STEPS_SHORT)
for name, path in paths_short.items():  # the three runs, checked against torch.optim
    make_torch = THREE[name][3]
    reference = torch_run(lambda ps: make_torch(ps, 0.01), NUM_STEPS_SHORT)
    assert max_relative_error(path, reference) <= 1e-6, name
print(table.to_string())
adam_first_step = paths_short["Adam"][1] - paths_short["Adam"][0]
assert_allclose(rosenbrock_grad(W_START), [-2.0, 20.0])
# -lr * sign(g), whatever the size of g
assert_allclose(adam_first_step, [0.01, -0.01], atol=1e-9)
largest_w1 = paths_short["momentum (β = 0.9)"][:, 0].max()
assert largest_w1 > 1.0  # momentum overshoots w_1 = 1
print(
    f"Adam's first step: {adam_first_step.round(6)};"
    f" momentum's largest w_1: {largest_w1:.3f}"
)
plot_three(paths_short, 0.01)

# %% [markdown]
# After 100 steps only momentum has reached the valley floor near the minimum
# ($R \approx 5\times 10^{-4}$); gradient descent and Adam are both still crawling along the
# valley with $R \approx 0.09$. Gradient descent first falls straight down the steep wall into
# the valley and then moves along its floor with steps of size $\eta\,|\nabla R|$, tiny because
# the floor is almost flat. Adam's steps have length about $\eta$ in each coordinate, however
# steep or flat the function: at $\mathbf{w}_0$ the gradient is $(-2, 20)$, pointing almost
# straight down the wall, but Adam's first step is
# $-\eta\,\mathrm{sign}(\mathbf{g}_1) = (0.01, -0.01)$ (up to $\epsilon$), diagonal, and after
# that it keeps walking at roughly 0.01 per coordinate per step. Momentum builds up speed
# along the floor, overshoots the minimum (its largest $w_1$ is above 1) and swings back.
#
# (sec-ch03-larger-lr)=
# ## A larger learning rate: η = 0.04 for 1,000 steps
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
#   $\mathbf{w}_{\mathrm a} = (0.7, 0.29)$ and $\mathbf{w}_{\mathrm b} = (0.5, 0.45)$
#   forever, where $R = 0.49$ and $R = 0.65$. The cycle is exact,
#
#   $$
#   \begin{aligned}
#   \mathbf{w}_{\mathrm a} - 0.04\,\nabla R(\mathbf{w}_{\mathrm a}) &= \mathbf{w}_{\mathrm b},\\
#   \mathbf{w}_{\mathrm b} - 0.04\,\nabla R(\mathbf{w}_{\mathrm b}) &= \mathbf{w}_{\mathrm a},
#   \end{aligned}
#   $$
#
#   and it *attracts*: the two-step map's Jacobian, the product of
#   $I - \eta\nabla^2R(\mathbf{w}_{\mathrm b})$ and $I - \eta\nabla^2R(\mathbf{w}_{\mathrm a})$,
#   has spectral radius below 1 (the next cell computes it). The learning rate is twice the
#   stability limit 0.0197 near the minimum, so the minimum itself repels.
# * **Momentum** leaves the plotted area within a few steps and passes $10^6$ at step 17:
#   it diverges.
# * **Adam** converges, with $R < 10^{-6}$ from step 779 on. Its steps are divided by the
#   running gradient scale $\sqrt{\hat{\mathbf{v}}_t}$, so a steep wall does not turn into
#   a huge step as it does for the other two methods.

# %%
w_a, w_b = np.array([0.7, 0.29]), np.array([0.5, 0.45])
gd_path = paths_long["gradient descent"]
I2 = np.eye(2)
two_step = (I2 - 0.04 * rosenbrock_hessian(w_b)) @ (I2 - 0.04 * rosenbrock_hessian(w_a))
rho = np.abs(np.linalg.eigvals(two_step)).max()
on_cycle = [
    np.allclose(w, w_a, atol=1e-6) or np.allclose(w, w_b, atol=1e-6) for w in gd_path
]
lr_limit = 2 / curvatures[1]
print(f"lr 0.04 is {0.04 / lr_limit:.1f} times the stability limit {lr_limit:.4f}")
stays = len(on_cycle) - on_cycle[::-1].index(False)  # on the cycle from here on
print(f"gradient descent: on the 2-cycle (to 1e-6) from step {stays} on")
print(f"                  spectral radius of the two-step map {rho:.3f}")
mom_path = paths_long["momentum (β = 0.9)"]
print(f"momentum: |w| exceeds 1e6 at step {len(mom_path) - 1}")
adam_path = paths_long["Adam"]
first_below = int(np.argmax(loss_path(adam_path) < TOL))
print(f"Adam: R < {TOL:g} from step {first_below} on;", end=" ")
print(f"R = {loss_path(adam_path)[-1]:.2g} at step {NUM_STEPS_LONG}")

# %% tags=["remove-input"]
assert_allclose(w_a - 0.04 * rosenbrock_grad(w_a), w_b, atol=1e-12)
assert_allclose(w_b - 0.04 * rosenbrock_grad(w_b), w_a, atol=1e-12)
assert_allclose([rosenbrock(*w_a), rosenbrock(*w_b)], [0.49, 0.65], atol=1e-12)
assert_allclose(gd_path[-2:], [w_b, w_a], atol=1e-9)  # the run ends on the cycle
assert rho < 1 and stays < NUM_STEPS_LONG - 100
assert len(mom_path) < NUM_STEPS_LONG + 1
assert (loss_path(adam_path)[first_below:] < TOL).all()  # and stays below
for path, make in [
    (gd_path, lambda ps: T.SGD(ps, lr=0.04)),
    (adam_path, lambda ps: T.Adam(ps, lr=0.04)),
]:
    assert max_relative_error(path, torch_run(make, NUM_STEPS_LONG)) <= 1e-6
print(
    "Checked: the 2-cycle is exact and the run ends on it; gradient descent and Adam"
    " match torch.optim over all 1,000 steps."
)

# %% [markdown]
# (sec-ch03-which-momentum)=
# ## Which momentum? Two formulas for the same method
#
# The source notes define momentum as an exponential moving average of the gradients,
#
# $$
# \begin{aligned}
# \tilde{\mathbf{m}}_t &= \beta\,\tilde{\mathbf{m}}_{t-1} + (1-\beta)\,\mathbf{g}_t,\\
# \mathbf{w} &\leftarrow \mathbf{w} - \eta\,\tilde{\mathbf{m}}_t ,
# \end{aligned}
# $$ (eq-momentum-ema)
#
# but run `torch.optim.SGD(momentum=β)`, which uses
# $\mathbf{m}_t = \beta\,\mathbf{m}_{t-1} + \mathbf{g}_t$ (equation {eq}`eq-six-optimizers`).
# These are the same method at different learning rates. Both buffers start at zero, and if
# $\tilde{\mathbf{m}}_{t-1} = (1-\beta)\,\mathbf{m}_{t-1}$ then
#
# $$
# \begin{aligned}
# \tilde{\mathbf{m}}_t &= \beta(1-\beta)\,\mathbf{m}_{t-1} + (1-\beta)\,\mathbf{g}_t\\
# &= (1-\beta)\,\mathbf{m}_t .
# \end{aligned}
# $$
#
# So by induction
#
# $$
# \begin{aligned}
# \tilde{\mathbf{m}}_t &= (1-\beta)\,\mathbf{m}_t \quad\text{for all } t,
# \quad\text{hence}\\
# \eta\,\tilde{\mathbf{m}}_t &= \bigl(\eta(1-\beta)\bigr)\,\mathbf{m}_t :
# \end{aligned}
# $$ (eq-momentum-rescale)
#
# the moving-average form with learning rate $\eta$ takes exactly the steps of torch's form
# with learning rate $\eta(1-\beta)$, ten times smaller for $\beta = 0.9$. Under a constant
# gradient torch's buffer grows to $\mathbf{g}/(1-\beta) = 10\,\mathbf{g}$ while the moving
# average stays at $\mathbf{g}$. So the momentum that diverged in {ref}`sec-ch03-larger-lr`
# at $\eta = 0.04$ is torch's; the notes' own formula at $\eta = 0.04$ is torch's at 0.004.
# `optim.Momentum(..., ema=True)` implements the moving-average form; we check the
# equivalence against torch:

# %%
ema_path = run(optim.Momentum, 0.04, NUM_STEPS_LONG, beta=0.9, ema=True)
rescaled_torch = torch_run(
    lambda ps: T.SGD(ps, lr=0.04 * (1 - 0.9), momentum=0.9), NUM_STEPS_LONG
)
rescaled_ours = run(optim.Momentum, 0.04 * (1 - 0.9), NUM_STEPS_LONG, beta=0.9)
assert max_relative_error(ema_path, rescaled_torch) <= 1e-6
assert max_relative_error(ema_path, rescaled_ours) <= 1e-12
print("moving-average form at lr 0.04 == torch's form at lr 0.004, step for step")
print(
    f"moving-average form at lr 0.04: R = {loss_path(ema_path)[-1]:.1e}"
    f" after {NUM_STEPS_LONG} steps"
)
print(f"torch's form at lr 0.04: diverged at step {len(mom_path) - 1}")

# %% [markdown]
# The three runs' losses; the plotting code is folded:

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.4, 3.8))
ax.plot(loss_path(mom_path), color="C1", label="torch form $m = \\beta m + g$, lr 0.04")
ax.plot(
    loss_path(ema_path),
    color="C3",
    lw=3,
    alpha=0.5,
    label="moving average $m = \\beta m + (1-\\beta) g$, lr 0.04",
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
    ylabel="$R(\\mathbf{w}_t)$",
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
# (sec-ch03-six)=
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
mu = [optim.NAdam([np.zeros(1)]).mu(t) for t in range(1, NUM_STEPS_SIDE + 1)]
print(f"NAdam's momentum mu_t over these steps: {min(mu):.2f} to {max(mu):.2f}")

# %% [markdown]
# The trajectories, one panel per optimizer, and then the six losses in one plot:

# %% tags=["hide-input"]
fig, axes = plt.subplots(3, 2, figsize=(COLUMN_WIDTH, 9.6), sharex=True, sharey=True)
for ax, (name, path) in zip(axes.flat, paths_six.items()):
    rosenbrock_axes(ax, title=name)
    ax.plot(path[:, 0], path[:, 1], ".-", color=COLOURS[name], ms=2, lw=0.8)
    ax.label_outer()
axes.flat[0].legend(loc="lower right", fontsize=8)
fig.suptitle(f"Six optimizers on $R$, lr = 0.01, {NUM_STEPS_SIDE} steps")
plt.show()

fig, ax = plt.subplots(figsize=(6.4, 4))
for name, path in paths_six.items():
    ax.plot(np.arange(len(path)), loss_path(path), color=COLOURS[name], label=name)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="step $t$",
    ylabel="$R(\\mathbf{w}_t)$",
    title="Loss of the six optimizers, lr = 0.01",
)
ax.legend()
plt.show()

# %% [markdown]
# At this learning rate the two momentum methods are in a class of their own: both pass
# below $R = 10^{-6}$ by step 128 (Nesterov at step 120, with a smaller overshoot past the
# minimum) and reach $10^{-20}$ and below by step 500. The other four have not reached
# $10^{-6}$ after 500 steps. RMSProp, like Adam, takes steps of about $\eta$ per coordinate
# but without momentum's averaging; it ends closest of the four. Adam and NAdam are the
# slowest here: $\eta = 0.01$ is a small learning rate *for them* ({ref}`sec-ch03-sweep`
# shows Adam converging even at $\eta = 1$). NAdam's momentum schedule keeps $\mu_t$ between
# 0.45 and 0.49 during these 500 steps, about half of Adam's $\beta_1 = 0.9$. A single shared
# learning rate is not a fair comparison of methods whose steps scale so differently; the
# sweep over learning rates is.
#
# (sec-ch03-stable-settings)=
# ### Why the torch checks use "stable" settings
#
# Our code and torch's round some operations differently (torch computes
# $\beta\,\mathbf{v} + (1-\beta)\,\mathbf{g}^2$ in one fused `addcmul`, for example), so two
# correct implementations can differ in the 16th digit. Whether such a difference stays
# there depends on the dynamics. We can see this without torch: start each optimizer once
# from $\mathbf{w}_0$ and once from $\mathbf{w}_0 + (10^{-15}, 0)$, a change in the last
# digits, and measure how far apart the two runs get within 1,000 steps.

# %%
perturbed_start = (W_START[0] + 1e-15, W_START[1])
sensitivity = []
for label, cls, lr, hyper in [
    ("RMSProp, lr 0.01 (defaults, as above)", optim.RMSProp, 0.01, {}),
    ("RMSProp, lr 0.002, eps 1e-3 (the torch check)", optim.RMSProp, 0.002, RMSPROP),
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
# RMSProp's step is close to $\eta\,\mathrm{sign}(\mathbf{g})$ (because $\epsilon$ is tiny), a
# discontinuous function of $\mathbf{g}$, and a last-digit change can flip a step. Such a run
# cannot be compared with torch step for step, and that says nothing about either
# implementation. So the checks against torch use settings where the iteration is stable,
# and there the two agree step for step.
#
# ## Watching them move
#
# The animation shows the six runs of {ref}`sec-ch03-six` together; the frames are spaced
# geometrically in the step count (every step early on, every 140th step or so at the end),
# because the interesting motion happens in the first few dozen steps. The code that makes it
# only draws: the static parts (contours, axes, legend) once into an image, and on top of it,
# frame by frame, the six paths, stored as JPEG images.

# %% tags=["hide-input"]
frame_steps = np.unique(
    np.geomspace(1, NUM_STEPS_SIDE, ANIM_FRAMES).round().astype(int)
)
DPI = 100
with plt.rc_context({"figure.constrained_layout.use": False}):
    # 1. the static background, rendered once
    fig, ax = plt.subplots(figsize=(ANIM_WIDTH, 0.78 * ANIM_WIDTH), dpi=DPI)
    rosenbrock_axes(ax, title=f"Six optimizers, lr = 0.01, {NUM_STEPS_SIDE} steps")
    for name in SIX:
        ax.plot([], [], "-", color=COLOURS[name], lw=1.5, label=name)
    ax.legend(loc="lower right", fontsize=9, ncols=2)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.93)
    fig.canvas.draw()
    background = np.asarray(fig.canvas.buffer_rgba()).copy()
    data_box, limits = ax.get_position(), (ax.get_xlim(), ax.get_ylim())
    plt.close(fig)
    # 2. the animated figure: the background image, a transparent axes at the same place
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
        name: front.plot([], [], "-", color=COLOURS[name], lw=1.5)[0] for name in SIX
    }
    dots = {name: front.plot([], [], "o", color=COLOURS[name], ms=6)[0] for name in SIX}
    step_label = front.text(
        0.02, 0.97, "", transform=front.transAxes, va="top", fontsize=11
    )


def draw_frame(i):
    t = frame_steps[i]
    for name, path in paths_six.items():
        lines[name].set_data(path[: t + 1, 0], path[: t + 1, 1])
        dots[name].set_data(path[t : t + 1, 0], path[t : t + 1, 1])
    step_label.set_text(f"step {t}")
    return [*lines.values(), *dots.values(), step_label]


anim = FuncAnimation(fig, draw_frame, frames=len(frame_steps), interval=150)
jpeg = {"animation.frame_format": "jpeg", "savefig.dpi": DPI}
with plt.rc_context({**jpeg, "figure.constrained_layout.use": False}):
    animation_html = anim.to_jshtml(default_mode="once")
plt.close(fig)
assert width_px >= 600  # wide enough to read in the text column
print(f"{len(frame_steps)} frames, steps {frame_steps[0]} to {frame_steps[-1]},")
print(f"{width_px} x {height_px} pixels")

# %% tags=["nbval-ignore-output"] ignore_reason="matplotlib gives the animation player a random element id on every run"
display(HTML(animation_html))

# %% [markdown]
# ## Try it yourself: learning rate and β
#
# In Jupyter or Colab, set the sliders below and press the button to rerun momentum and Adam
# (whose $\beta_1$ is set to the same $\beta$) for 300 steps (the code that makes the sliders
# is folded). On the static website the sliders do nothing; the table and the figure after
# them show six settings instead.


# %% tags=["hide-input", "nbval-ignore-output"] ignore_reason="an interactive widget: its view carries a new model id on every run"
def explore(lr=0.01, beta=0.9):
    ax = rosenbrock_axes(
        figsize=(6.4, 5.0), title=f"300 steps, lr = {lr:.3g}, β = {beta:.2f}"
    )
    for name, cls, hyper, colour in [
        ("momentum", optim.Momentum, dict(beta=beta), "C1"),
        ("Adam", optim.Adam, dict(beta1=beta), "C2"),
    ]:
        path = run(cls, lr, 300, **hyper)
        status = "diverged" if len(path) < 301 else f"R = {loss_path(path)[-1]:.1e}"
        ax.plot(*path.T, ".-", color=colour, ms=2, lw=0.8, label=f"{name}: {status}")
    ax.legend(loc="lower right", fontsize=8)
    plt.show()


# manual: the runs start when the button is pressed, not when the notebook is executed
_ = widgets.interact_manual(
    explore,
    lr=widgets.FloatLogSlider(
        value=0.01, base=10, min=-3, max=-1, step=0.1, description="lr"
    ),
    beta=widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="β"),
)

# %%
STATIC_LRS, STATIC_BETAS = [0.003, 0.01, 0.04], [0.5, 0.9]
STATIC_RUNS = [
    ("momentum", optim.Momentum, "beta", "C1"),
    ("Adam", optim.Adam, "beta1", "C2"),
]
static_paths, static_rows = {}, []
for lr in STATIC_LRS:
    for beta in STATIC_BETAS:
        for name, cls, beta_name, _ in STATIC_RUNS:
            path = run(cls, lr, 300, **{beta_name: beta})
            final = loss_path(path)[-1]
            status = "diverged" if len(path) < 301 else f"R = {final:.1e}"
            static_paths[lr, beta, name] = (path, status)
            static_rows.append(
                {"lr": lr, "β": beta, "optimizer": name, "after 300 steps": status}
            )
print(
    pd.DataFrame(static_rows)
    .pivot(index=["lr", "β"], columns="optimizer", values="after 300 steps")
    .to_string()
)

# %% [markdown]
# The six settings drawn, one row per learning rate:

# %% tags=["hide-input"]
fig, axes = plt.subplots(3, 2, figsize=(COLUMN_WIDTH, 10), sharex=True, sharey=True)
for row, lr in zip(axes, STATIC_LRS):
    for ax, beta in zip(row, STATIC_BETAS):
        rosenbrock_axes(ax, title=f"lr = {lr}, β = {beta}")
        for name, _, _, colour in STATIC_RUNS:
            path, status = static_paths[lr, beta, name]
            label = f"{name}: {status}"
            ax.plot(*path.T, ".-", color=colour, ms=2, lw=0.8, label=label)
        ax.legend(loc="lower right", fontsize=7)
        ax.label_outer()
fig.suptitle("Momentum and Adam (β₁ = β), 300 steps, for six settings")
plt.show()

# %% [markdown]
# Reading the table and the panels: at a fixed learning rate a larger $\beta$ carries
# momentum further along the valley (at $\eta = 0.01$, $R = 8.3\times10^{-4}$ after 300 steps
# with $\beta = 0.5$ against $7\times10^{-14}$ with $\beta = 0.9$), until the learning rate is
# too large: at $\eta = 0.04$, $\beta = 0.9$ diverges and $\beta = 0.5$ does not diverge but is
# still at $R = 1.2$ after 300 steps. Adam diverges in none of the six settings; after 300
# steps its loss lies between $3\times10^{-3}$ and $7\times10^{-2}$, lowest at the largest
# learning rate, and at each learning rate $\beta_1 = 0.5$ did slightly better than $0.9$.

# %% tags=["remove-input"]
final_R = {k: loss_path(p)[-1] for k, (p, _) in static_paths.items()}
adam_R = [final_R[lr, beta, "Adam"] for lr in STATIC_LRS for beta in STATIC_BETAS]
assert final_R[0.01, 0.5, "momentum"] > 1e6 * final_R[0.01, 0.9, "momentum"]
assert static_paths[0.04, 0.9, "momentum"][1] == "diverged"
assert 1 < final_R[0.04, 0.5, "momentum"] < 2
assert 3e-3 < min(adam_R) and max(adam_R) < 7e-2
assert min(adam_R) in (final_R[0.04, 0.5, "Adam"], final_R[0.04, 0.9, "Adam"])
assert all(final_R[lr, 0.5, "Adam"] < final_R[lr, 0.9, "Adam"] for lr in STATIC_LRS)
print(
    "Checked: at lr 0.01, beta 0.9 takes momentum over a million times further down "
    "than"
    " 0.5; Adam diverges in none of the six settings, after 300 steps R lies between"
    f" {min(adam_R):.1e} and {max(adam_R):.1e}, lowest at lr 0.04, and beta_1 = 0.5 is"
    " lower than 0.9 at every learning rate."
)

# %% [markdown]
# (sec-ch03-sweep)=
# ## Steps to the target against the learning rate
#
# How many steps does each method need to bring $R$ below $10^{-6}$, as a function of the
# learning rate? We sweep 25 learning rates from $10^{-4}$ to 1 (log-spaced), with a budget
# of 2,000 steps, and record one of three outcomes per run. The 25 runs of one optimizer
# train together, as one array with a row per learning rate: the optimizers accept one
# learning rate per row, and every update is elementwise, so each row follows exactly the
# path it would follow alone. The outcomes: *converged* (with
# the step count), *not reached* within the budget, or *diverged*. For the Rosenbrock
# function a step is an {term}`epoch`: the whole "dataset" is the one function.
# [Chapter 4.3](04_3_learning_rates.ipynb) asks the same question for a network trained on
# minibatches, where an epoch is many steps: {ref}`sec-ch04-epochs-vs-lr`.

# %%
SWEEP_GRID = np.logspace(-4, 0, SWEEP_LRS)


def steps_to_target(opt_cls, lrs, tol=TOL, max_steps=SWEEP_MAX_STEPS, **hyper):
    """One run per learning rate, all as one stacked array (row k: lrs[k]). For each:
    ('converged', t) with R(w_t) < tol, ('diverged', t), or ('not reached', T)."""
    w = np.tile(W_START, (len(lrs), 1))
    opt = opt_cls([w], lr=lrs[:, None], **hyper)  # one learning rate per row
    result = [("not reached", max_steps)] * len(lrs)
    open_runs = set(range(len(lrs)))
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, max_steps + 1):
            opt.step([rosenbrock_grad(w)])
            loss = rosenbrock(w[:, 0], w[:, 1])
            for k in list(open_runs):
                if not loss[k] < 1e12 or loss[k] < tol:  # diverged (or nan), or there
                    result[k] = ("converged" if loss[k] < tol else "diverged", t)
                    open_runs.remove(k)
            if not open_runs:
                break
    return result


sweep = pd.DataFrame(
    [
        {"optimizer": name, "lr": lr, "outcome": outcome, "steps": steps}
        for name, (cls, hyper) in SIX.items()
        for lr, (outcome, steps) in zip(
            SWEEP_GRID, steps_to_target(cls, SWEEP_GRID, **hyper)
        )
    ]
)
SHOWN_AS = {"not reached": "-", "diverged": "div"}
outcomes = sweep.assign(
    shown=[SHOWN_AS.get(o, str(s)) for o, s in zip(sweep.outcome, sweep.steps)]
).pivot(index="lr", columns="optimizer", values="shown")[list(SIX)]
outcomes.index = [f"{lr:.2g}" for lr in outcomes.index]
outcomes.index.name = "lr"
print(f"steps until R < {TOL:g} from w0 = {W_START}")
print(f"(-: not within {SWEEP_MAX_STEPS} steps; div: diverged)")
print(outcomes.rename(columns={"gradient descent": "GD"}).to_string())

# %% tags=["remove-input"]
# each row of a stacked grid follows its own run exactly (Adam, lr and beta1 per row)
GRID_LRS, GRID_BETA1 = [0.003, 0.01, 0.03], [0.0, 0.5, 0.9]
w_grid = np.tile(W_START, (len(GRID_LRS), 1))
grid_opt = optim.Adam(
    [w_grid], lr=np.array(GRID_LRS)[:, None], beta1=np.array(GRID_BETA1)[:, None]
)
for _ in range(NUM_STEPS_CHECK):
    grid_opt.step([rosenbrock_grad(w_grid)])
for row, lr, beta1 in zip(w_grid, GRID_LRS, GRID_BETA1):
    assert np.array_equal(row, run(optim.Adam, lr, NUM_STEPS_CHECK, beta1=beta1)[-1])
print(
    "Checked: each row of a stacked grid of Adam's learning rate and beta1 ends where "
    f"its own run ends, to the last bit ({NUM_STEPS_CHECK} steps)."
)

# %%
summary = []
for name, group in sweep.groupby("optimizer", sort=False):
    ok = group[group.outcome == "converged"]
    div = group[group.outcome == "diverged"]
    best = ok.loc[ok.steps.idxmin()] if len(ok) else None
    summary.append(
        {
            "optimizer": name,
            "converged": f"{len(ok)} of {len(group)}",
            "for lr": f"{ok.lr.min():.2g} to {ok.lr.max():.2g}" if len(ok) else "none",
            "best lr": f"{best.lr:.2g}" if best is not None else "",
            "fewest steps": int(best.steps) if best is not None else "",
            "diverged from": f"{div.lr.min():.2g}" if len(div) else "none",
        }
    )
print(pd.DataFrame(summary).set_index("optimizer").to_string())
rms_path = run(optim.RMSProp, 0.01, SWEEP_MAX_STEPS)
# |w_{t+1} - w_t| per coordinate over the last 100 steps
late_steps = np.abs(np.diff(rms_path[-101:], axis=0))
assert np.median(late_steps) > 0.1 * 0.01  # still moving by a sizeable fraction of lr
print(f"RMSProp at lr 0.01, last 100 of {SWEEP_MAX_STEPS} steps:", end=" ")
print(f"median step per coordinate {np.median(late_steps) / 0.01:.1f} lr")

# %% [markdown]
# The same sweep as a figure: the step counts of the runs that converged (top) and the
# outcome of every run (bottom).

# %% tags=["hide-input"]
fig, (ax, ax_status) = plt.subplots(
    2, 1, figsize=(COLUMN_WIDTH, 6.5), height_ratios=[3, 1.4], sharex=True
)
OUTCOME_STYLE = {
    "converged": ("o", 1.0),
    "not reached": ("^", 0.35),
    "diverged": ("x", 1.0),
}
for k, name in enumerate(SIX):
    group = sweep[sweep.optimizer == name]
    # gaps where it did not converge
    steps = np.where(group.outcome == "converged", group.steps, np.nan)
    ax.plot(group.lr, steps, "o-", color=COLOURS[name], ms=3, label=name)
    for outcome, (marker, alpha) in OUTCOME_STYLE.items():
        sel = group[group.outcome == outcome]
        y = np.full(len(sel), k)
        style = dict(marker=marker, color=COLOURS[name], alpha=alpha, s=22)
        ax_status.scatter(sel.lr, y, **style)
ax.axhline(SWEEP_MAX_STEPS, color="grey", ls=":", lw=1)
ax.text(SWEEP_GRID[0], SWEEP_MAX_STEPS * 1.1, "step budget", color="grey", fontsize=8)
ax.set(
    xscale="log",
    yscale="log",
    ylabel=f"steps until $R < 10^{{{np.log10(TOL):.0f}}}$",
    title="Steps to R < 1e-6 against learning rate (Rosenbrock, from $(0, 1)$)",
)
ax.legend(ncols=2, fontsize=8)
ax_status.set(
    yticks=range(len(SIX)),
    yticklabels=list(SIX),
    xlabel="learning rate $\\eta$",
    ylim=(len(SIX) - 0.5, -0.5),
    title="Outcome of each run",
)
handles = [
    plt.Line2D([], [], ls="", marker=m, color="grey", alpha=a, label=o)
    for o, (m, a) in OUTCOME_STYLE.items()
]
ax_status.legend(
    handles=handles, ncols=3, loc="upper left", bbox_to_anchor=(0, -0.35), fontsize=8
)
ax_status.grid(False)
plt.show()

# %% [markdown]
# The sweep separates the methods into two families.
#
# * **Gradient descent and the two momentum methods** have a window of learning rates that
#   works, bounded below by the step budget and above by divergence. Gradient descent
#   converges only for 0.01 and 0.015 (980 steps at 0.015); from 0.022 to 0.068 it neither
#   converges nor diverges but keeps oscillating, like the 2-cycle of
#   {ref}`sec-ch03-larger-lr`, and from 0.1 on it diverges. Momentum converges from
#   $10^{-3}$ to 0.022 and needs 128 steps at its best (0.01); Nesterov's window ends a notch
#   earlier, at 0.015, but at 0.0068 it needs 87 steps, fewer than any other method. Inside
#   the window, steps fall roughly as $1/\eta$: the straight lines of slope $-1$ on the
#   log-log plot.
# * **Adam, NAdam and RMSProp never diverge** in this range: their step is bounded by about
#   $\eta$ per coordinate. Adam converges for every $\eta \ge 0.015$ up to 1, its best runs
#   (124 steps at 0.68) at the top of the range; NAdam converges only from 0.015 to 0.032
#   and again at 0.46, and needs more steps than Adam wherever both converge.
#   **RMSProp never reaches the target**: without momentum to average them, its steps stay
#   about $\eta$ long per coordinate (over its last 100 of 2,000 steps at $\eta = 0.01$ the
#   median step is one learning rate per coordinate), so it keeps jumping around near the
#   minimum instead of settling.
#
# So "Adam is robust to the learning rate" is true here in the sense that it does not blow
# up over four decades of learning rates; its *best* step count (124) is about momentum's
# (128) and worse than Nesterov's (87).


# %% tags=["remove-input"]
def outcome(name, lr):
    row = sweep[(sweep.optimizer == name) & np.isclose(sweep.lr, lr, rtol=0.05)]
    return tuple(row[["outcome", "steps"]].iloc[0])


def window(name):
    ok = sweep[(sweep.optimizer == name) & (sweep.outcome == "converged")]
    return ok.lr.min(), ok.lr.max(), int(ok.steps.min())


gd_lrs = sweep[sweep.optimizer == "gradient descent"]
gd_converged = gd_lrs[gd_lrs.outcome == "converged"].lr
assert np.allclose(gd_converged, [0.01, 0.015], rtol=0.05)
assert outcome("gradient descent", 0.015) == ("converged", 980)
assert all(outcome("gradient descent", lr)[0] == "not reached" for lr in (0.022, 0.068))
assert (gd_lrs[gd_lrs.lr >= 0.1].outcome == "diverged").all()
best = {name: window(name)[2] for name in ("momentum", "Nesterov", "Adam")}
assert best == {"momentum": 128, "Nesterov": 87, "Adam": 124}
assert min(window(n)[2] for n in SIX if n != "RMSProp") == best["Nesterov"]
adaptive = sweep[sweep.optimizer.isin(["RMSProp", "Adam", "NAdam"])]
assert (adaptive.outcome != "diverged").all()
assert (sweep[sweep.optimizer == "RMSProp"].outcome == "not reached").all()
adam = sweep[(sweep.optimizer == "Adam") & (sweep.lr >= 0.015)]
assert (adam.outcome == "converged").all()
print(
    "Checked: gradient descent converges for two learning rates (980 steps at 0.015);"
    " the fewest steps are momentum's 128, Nesterov's 87 and Adam's 124; RMSProp,"
    " Adam and NAdam never diverge, and Adam converges for every lr from 0.015 on."
)

# %% [markdown]
# (sec-ch03-no-free-lunch)=
# ## No free lunch: where momentum beats Adam
#
# No optimizer is best on every problem {cite}`ch03-wolpert1997nfl`. A concrete case: the
# quadratic $f(\mathbf{w}) = \tfrac12 \mathbf{w}^\top A\mathbf{w}$ whose curvatures
# (eigenvalues of $A$) are 1 and $1/\kappa$, with the eigenvectors rotated by 45° so they are
# *not* aligned with the coordinate axes. Adam rescales each coordinate separately, a
# diagonal preconditioner, and no diagonal rescaling can undo a rotated ill-conditioning;
# momentum does not rescale at all, but on quadratics, with well-chosen settings, it needs
# only about $\sqrt\kappa$ times more steps than on a perfectly conditioned problem, where
# gradient descent needs $\kappa$ times more. For momentum the best settings are even known
# in closed form {cite}`ch03-polyak1964momentum`:
#
# $$
# \begin{aligned}
# \beta^\star &= \left(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\right)^2,\\
# \eta^\star &= \frac{4}{\bigl(\sqrt{\lambda_{\max}} + \sqrt{\lambda_{\min}}\bigr)^2}.
# \end{aligned}
# $$ (eq-polyak)
#
# For a fair race both momentum and Adam get their learning rate *and* their $\beta$
# (Adam's $\beta_1$) tuned on the same grids: 16 learning rates from 0.01 to 10, and
# $\beta \in \{0, 0.3, 0.5, 0.7, 0.9\}$. We count the steps until $f$ has fallen by a factor
# $10^8$ from $\mathbf{w}_0 = (-1.5, 1)$, with a budget of `NFL_MAX_STEPS` = 600 steps. As
# a control we also run the axis-aligned version of the $\kappa = 1000$ problem. As in the
# sweep, the 80 runs of one method on one problem (16 learning rates, 5 values of
# $\beta$) train together, one row each. The products with $A$ are written out coordinate by coordinate, so that
# every machine computes exactly the same numbers.

# %%
NFL_LRS = np.logspace(-2, 1, 16)
NFL_BETAS = [0.0, 0.3, 0.5, 0.7, 0.9]
NFL_PROBLEMS = [(10, "rotated"), (100, "rotated"), (1000, "rotated"), (1000, "aligned")]


def quadratic(kappa, orientation):
    """The matrix A with eigenvalues 1 and 1/kappa, rotated by 45° or axis-aligned."""
    theta = np.pi / 4 if orientation == "rotated" else 0.0
    Q = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return Q @ np.diag([1.0, 1.0 / kappa]) @ Q.T


def quadratic_steps(A, opt_cls, lrs, max_steps=NFL_MAX_STEPS, **hyper):
    """For each learning rate (with the matching entries of array hyperparameters), the
    steps until w^T A w / 2 falls below 1e-8 of its start (inf: diverged or not within
    max_steps). All runs train together, one row each."""
    w = np.tile([-1.5, 1.0], (len(lrs), 1))

    def grad(w):  # A @ w for every row, coordinate by coordinate
        return np.stack(
            [
                A[0, 0] * w[:, 0] + A[0, 1] * w[:, 1],
                A[1, 0] * w[:, 0] + A[1, 1] * w[:, 1],
            ],
            axis=1,
        )

    g = grad(w)
    f0 = 0.5 * (w[:, 0] * g[:, 0] + w[:, 1] * g[:, 1])
    opt = opt_cls([w], lr=np.asarray(lrs)[:, None], **hyper)
    steps, diverged = np.full(len(lrs), np.inf), np.zeros(len(lrs), dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(1, max_steps + 1):
            opt.step([g])
            g = grad(w)  # the gradient at the new w: its f, and the next step
            f = 0.5 * (w[:, 0] * g[:, 0] + w[:, 1] * g[:, 1])
            diverged |= ~(f < 1e6 * f0)
            steps[(f < 1e-8 * f0) & ~diverged & np.isinf(steps)] = t
            if (diverged | np.isfinite(steps)).all():
                break
    return steps


# %%
def best_setting(A, opt_cls, beta_name=None):
    """(steps, lr, beta) of the fastest run over the grids (the first one on a tie)."""
    betas = NFL_BETAS if beta_name else [None]
    lrs = np.tile(NFL_LRS, len(betas))  # for each beta, every learning rate
    beta_of_run = np.repeat(betas, len(NFL_LRS))
    hyper = {beta_name: beta_of_run.astype(float)[:, None]} if beta_name else {}
    steps = quadratic_steps(A, opt_cls, lrs, **hyper)
    k = int(np.argmin(steps))
    return steps[k], lrs[k], beta_of_run[k]


# %%
print(f"grids: {len(NFL_LRS)} learning rates from {NFL_LRS[0]:g} to {NFL_LRS[-1]:g},")
print(f"       beta in {NFL_BETAS}")
nfl = {}  # (kappa, orientation) -> {method: (steps, lr, beta)}
for kappa, orientation in NFL_PROBLEMS:
    A = quadratic(kappa, orientation)
    beta_star = ((np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)) ** 2
    lr_star = 4 / (1 + np.sqrt(1 / kappa)) ** 2
    polyak = quadratic_steps(A, optim.Momentum, [lr_star], beta=beta_star)[0]
    nfl[kappa, orientation] = {
        "GD": best_setting(A, optim.SGD),
        "momentum": best_setting(A, optim.Momentum, "beta"),
        "Polyak": (polyak, lr_star, beta_star),
        "Adam": best_setting(A, optim.Adam, "beta1"),
    }
problems = [f"κ = {k}, {o}" for k, o in NFL_PROBLEMS]
steps = pd.DataFrame(
    [{m: f"{r[0]:.0f}" for m, r in res.items()} for res in nfl.values()],
    index=problems,
).replace("inf", "-")
print(f"\nsteps to reduce f by 1e8 (-: not within {NFL_MAX_STEPS} steps):")
print(steps.to_string())
settings = pd.DataFrame(
    [
        {m: f"lr {r[1]:.2g}, β {r[2]:.3g}" for m, r in res.items() if m != "GD"}
        for res in nfl.values()
    ],
    index=problems,
)
print("\nthe settings of those runs:")
print(settings.to_string())

# %% tags=["remove-input"]
for kappa in (100, 1000):
    rotated = nfl[kappa, "rotated"]
    assert rotated["momentum"][0] < rotated["Adam"][0]
    assert rotated["Polyak"][0] < rotated["Adam"][0]
aligned = nfl[1000, "aligned"]
assert aligned["Adam"][0] < aligned["momentum"][0] / 10
ratio = nfl[1000, "rotated"]["Adam"][0] / nfl[1000, "rotated"]["momentum"][0]
print(
    "Checked: at κ = 100 and 1000 (rotated) tuned momentum and Polyak's settings need"
    " fewer steps than tuned Adam, and on the aligned problem Adam needs fewer than a"
    f" tenth of momentum's; at κ = 1000, rotated, tuned Adam needs {ratio:.1f} times "
    "the"
    " steps of tuned momentum."
)

# %% [markdown]
# Reading the table row by row:
#
# * At $\kappa = 10$ the tuned methods need the same 24 steps, momentum and Adam (Polyak's
#   closed-form momentum needs 19).
# * As $\kappa$ grows, tuned momentum's step count grows roughly like $\sqrt\kappa$
#   (24, 69, 204: about a factor 3 per factor 10 in $\kappa$, and $\sqrt{10}\approx 3.2$), Adam's
#   faster (24, 85, 490). At $\kappa = 1000$ Adam needs 2.4 times as many steps as momentum,
#   and even Polyak's settings, found with no search at all, beat the best Adam at
#   $\kappa = 100$ and $1000$. Gradient descent grows like $\kappa$ (53, 527, then not within
#   600 steps).
# * The axis-aligned control turns the result around: there Adam's per-coordinate scaling
#   *is* the right preconditioner and it needs 7 steps, against momentum's 164. (Momentum
#   treats every direction alike; its counts differ between the two orientations only because
#   the fixed start $\mathbf{w}_0$ has different components along the two eigenvectors.)
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
#   `torch.optim` to $10^{-6}$ relative over 300 steps, and AdamW was one more short class.
# * On the Rosenbrock function at $\eta = 0.01$, momentum reaches the minimum's neighbourhood
#   in 100 steps while gradient descent and Adam crawl along the valley floor.
# * At $\eta = 0.04$, twice gradient descent's stability limit $2/\lambda_{\max}\approx 0.0197$,
#   gradient descent is trapped in an exact attracting 2-cycle, torch-style momentum diverges
#   within 17 steps, and Adam converges: the source notes' claims, confirmed and made precise.
# * The two momentum formulas $\mathbf{m} \leftarrow \beta\mathbf{m} + \mathbf{g}$ and
#   $\mathbf{m} \leftarrow \beta\mathbf{m} + (1-\beta)\mathbf{g}$ are the same method with
#   learning rates differing by a factor $1-\beta$.
# * Steps to the target $R < 10^{-6}$ against learning rate: gradient descent and momentum have a window
#   bounded by the budget and by divergence; Adam does not diverge at any learning rate up
#   to 1, but at its best it is about as fast as tuned momentum and slower than Nesterov;
#   RMSProp never settles.
# * No free lunch: on rotated ill-conditioned quadratics tuned momentum beats tuned Adam,
#   by a factor 2.4 in steps at $\kappa = 1000$; on the axis-aligned version Adam wins, 7 steps
#   against 164.
#
# ## Exercises
#
# ```{exercise} Momentum's stability limit
# :label: ex-opt-momentum-stability
#
# Heavy-ball momentum (torch's form) on a one-dimensional quadratic $f(w) = \tfrac{\lambda}{2}w^2$
# is the linear recursion $w_{t+1} = (1 + \beta - \eta\lambda)\,w_t - \beta\, w_{t-1}$. For which
# learning rates is it stable? Use the result with the largest Hessian eigenvalue of $R$ at
# the minimum to predict momentum's largest stable learning rate near $(1, 1)$ for $\beta = 0.9$,
# and compare it with {ref}`the sweep <sec-ch03-sweep>`.
# ```
#
# ```{solution} ex-opt-momentum-stability
# :class: dropdown
#
# With $m_t = (w_{t-1} - w_t)/\eta$ the update $m_{t+1} = \beta m_t + \lambda w_t$,
# $w_{t+1} = w_t - \eta m_{t+1}$ becomes $w_{t+1} = (1+\beta-\eta\lambda)w_t - \beta w_{t-1}$. Its
# characteristic polynomial $z^2 - (1+\beta-\eta\lambda)z + \beta$ has both roots inside the unit
# circle (for $0\le\beta<1$) exactly when $|1 + \beta - \eta\lambda| < 1 + \beta$, that is
# $0 < \eta < 2(1+\beta)/\lambda$. With $\lambda_{\max} = 101.6$ and $\beta = 0.9$ the limit is
# $3.8/101.6 \approx 0.0374$, $1+\beta = 1.9$ times gradient descent's $0.0197$. The sweep's
# largest converging learning rate for momentum was 0.022, and 0.032 diverged; the bound is a
# statement about the neighbourhood of the minimum only, and runs from $(0,1)$ can blow up
# earlier on the steeper walls. The code cell after the exercises checks the bound with the
# roots of the polynomial.
# ```
#
# ```{exercise} Scaling the loss
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
# $\mathbf{m}_t$ scales by $c$ and $\sqrt{\mathbf{v}_t}$ by $c$, so
# $\hat{\mathbf{m}}_t/\sqrt{\hat{\mathbf{v}}_t}$ is unchanged: apart from $\epsilon$ (which
# becomes relatively 100 times smaller), Adam's trajectory is the same. This is why Adam's
# learning rate reads as a step length in parameter units, whatever the scale of the loss,
# while gradient descent's must be chosen relative to the curvature.
# ```
#
# ```{exercise} AMSGrad as a subclass of Adam
# :label: ex-opt-amsgrad
#
# AMSGrad {cite}`ch03-reddi2018amsgrad` changes one line of Adam: the denominator uses the
# running maximum $\mathbf{v}^{\max}_t = \max(\mathbf{v}^{\max}_{t-1}, \mathbf{v}_t)$ instead of
# $\mathbf{v}_t$. Write it as a subclass of `optim.Adam` and check it against
# `torch.optim.Adam(amsgrad=True)` on $R$.
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
# The cell below runs it for 300 steps against torch.
# ````
#
# The solutions, run:

# %% tags=["hide-input"]
# Exercise 3.1: the bound 2 (1 + beta) / lambda from the roots of
# z^2 - (1 + beta - lr lambda) z + beta.
lam, beta = curvatures[1], 0.9
bound = 2 * (1 + beta) / lam
for lr, stable in [(0.99 * bound, True), (1.01 * bound, False)]:
    roots = np.roots([1.0, -(1 + beta - lr * lam), beta])
    assert (np.abs(roots).max() < 1) == stable
assert outcome("momentum", 0.022)[0] == "converged"
assert outcome("momentum", 0.032)[0] == "diverged"
print(
    "Exercise 3.1: momentum (beta = 0.9) is stable near the minimum for lr < "
    f"{bound:.4f}"
)


# Exercise 3.2: scaling the loss by c = 100.
def scaled_grad(w):
    return 100 * rosenbrock_grad(w)


gd_scaled = run(optim.SGD, 0.01, 300, grad=scaled_grad)
adam_plain = run(optim.Adam, 0.01, 300)
adam_scaled = run(optim.Adam, 0.01, 300, grad=scaled_grad)
assert len(gd_scaled) < 301  # gradient descent on 100 R at lr 0.01 diverges
# Adam barely notices (only eps)
assert max_relative_error(adam_plain, adam_scaled) < 1e-6
print(f"Exercise 3.2: gradient descent on 100 R diverged at step {len(gd_scaled) - 1};")
print("              Adam's 300 iterates on 100 R equal those on R to a relative 1e-6")


# Exercise 3.3: AMSGrad as a subclass of Adam.
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


a = run(AMSGrad, 0.01, NUM_STEPS_CHECK)
b = torch_run(lambda ps: T.Adam(ps, lr=0.01, amsgrad=True), NUM_STEPS_CHECK)
assert max_relative_error(a, b) <= 1e-6
print(
    f"Exercise 3.3: AMSGrad = torch.optim.Adam(amsgrad=True) over {NUM_STEPS_CHECK} "
    "steps"
)

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :keyprefix: ch03-
# ```
