"""Hyperparameter search on optuna, as chapter 5 teaches it: a search space, a sampler and a
pruner, the objective (train one configuration, report each epoch), and the tables and figures
that read a sweep.

Introduced in chapter 5 (the sweep over the source assignment's space on Fashion-MNIST); the
command-line sweep (``python train.py sweep``, :mod:`course_utils.cli`) runs the same space and
the same trial with parallel, resumable workers, on the machinery of
:mod:`course_utils.sweep_storage` (storage, lock, heartbeats, the worker loop), and writes its
report with :mod:`course_utils.sweep_report`.

Why optuna's TPE sampler rather than a grid or random search: the space is categorical and
large (chapter 5's has 2*3*3*3*2*6*3*3*3 = 17,496 combinations), a full grid is out of reach,
and random search keeps spending trials in regions that the first trials already showed to be
bad (a learning rate of 1e-4 with plain SGD, a weight decay of 0.5). TPE (the tree-structured
Parzen estimator, Bergstra et al. 2011) models the values that good trials used and the values
that bad trials used, per parameter, and proposes what is likely under the first and unlikely
under the second; after a few random start-up trials it concentrates on the promising region.
A median pruner stops a trial whose validation accuracy after an epoch is below the median of
earlier trials at that epoch.

Reproducibility: ``TPESampler(seed=...)`` with ``n_jobs=1`` proposes the same trials every run,
as long as the objective is deterministic (seed the model and the batch order from the trial's
parameters, not from a global state). :func:`course_utils.sweep_storage.run_worker`
seeds the sampler of trial number ``k`` from ``(seed, k)``, so one worker repeats a sweep exactly,
across a crash and restart too; several workers interleave their trials by timing, so their sweep
differs from run to run.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np

from . import validation

__all__ = [
    "SOURCE_SPACE",
    "TRAIN_FLAGS",
    "TrialDiverged",
    "Interrupted",
    "space_size",
    "suggest",
    "parse_space_override",
    "make_sampler",
    "make_pruner",
    "make_study",
    "run_study",
    "pruning_callback",
    "build_network",
    "make_objective",
    "trials_frame",
    "results_table",
    "param_importances",
    "spearman_table",
    "marginal_means",
    "parallel_coordinates",
    "accuracy_by_trial_plot",
    "train_command",
]

#: The search space of the source assignment (CS6910 assignment 1), as name -> list of choices.
#: ``weight_init`` has the source's He and Xavier plus the book's "random" N(0, 0.01^2)
#: (chapter 5 shows what that small initialisation does to deep networks).
SOURCE_SPACE: dict[str, list] = {
    "epochs": [5, 10],
    "num_layers": [3, 4, 5],
    "hidden_size": [32, 64, 128],
    "weight_decay": [0.0, 0.0005, 0.5],
    "learning_rate": [1e-3, 1e-4],
    "optimizer": ["sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam"],
    "batch_size": [16, 32, 64],
    "weight_init": ["random", "xavier", "he"],
    "activation": ["sigmoid", "tanh", "relu"],
}

#: The space's parameter names -> train.py's short flags (``train_command`` writes a command line).
TRAIN_FLAGS: dict[str, str] = {
    "epochs": "-e",
    "num_layers": "-nhl",
    "hidden_size": "-sz",
    "weight_decay": "-w_d",
    "learning_rate": "-lr",
    "optimizer": "-o",
    "batch_size": "-b",
    "weight_init": "-w_i",
    "activation": "-a",
}

#: What a value of each parameter must be (used to check ``--space`` overrides).
_KINDS = {
    "epochs": ("int", 1),
    "num_layers": ("int", 0),
    "hidden_size": ("int", 1),
    "batch_size": ("int", 1),
    "weight_decay": ("float", 0.0),
    "learning_rate": ("float", None),  # > 0
}


class TrialDiverged(Exception):
    """The objective's training loss became NaN or infinite: the trial is recorded as failed."""


class Interrupted(Exception):
    """A worker was asked to stop (``should_stop`` returned True): its running trial is recorded as failed."""


def _optuna():
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - optuna is in requirements.txt
        raise ImportError("course_utils.sweeps needs optuna: pip install 'optuna>=3.5'") from exc
    return optuna


def space_size(space: Mapping[str, Sequence]) -> int:
    """Number of combinations in a categorical space."""
    return int(np.prod([len(v) for v in space.values()]))


def suggest(trial, space: Mapping[str, Sequence]) -> dict:
    """One categorical suggestion per parameter of ``space``: a dict name -> value."""
    for name, choices in space.items():
        if not isinstance(choices, (list, tuple)) or len(choices) == 0:
            raise ValueError(f"space[{name!r}] must be a non-empty list of choices, got {choices!r}")
    return {name: trial.suggest_categorical(name, list(choices)) for name, choices in space.items()}


def _parse_value(name: str, text: str):
    """One choice of parameter ``name`` from text, checked; a ValueError says what is allowed."""
    from . import network

    text = text.strip()
    if name in ("optimizer", "activation", "weight_init"):
        valid = {"optimizer": network.OPTIMIZERS, "activation": network.ACTIVATIONS, "weight_init": network.INITS}[name]
        key = text.lower()
        if key not in valid:
            raise ValueError(f"{name} {text!r} is not one of {', '.join(sorted(valid))}")
        return key
    kind, minimum = _KINDS[name]
    try:
        value = int(text) if kind == "int" else float(text)
    except ValueError:
        raise ValueError(f"{name} needs {'an integer' if kind == 'int' else 'a number'}, got {text!r}") from None
    if kind == "float" and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {text!r}")
    if minimum is None and not value > 0:
        raise ValueError(f"{name} must be > 0, got {text!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {text!r}")
    return value


def parse_space_override(items: Sequence[str], base: Mapping[str, Sequence] = SOURCE_SPACE) -> dict:
    """``base`` with some parameters' choices replaced: each item is ``name=v1,v2,...`` (one value
    holds the parameter fixed). Raises ValueError naming the item that is wrong and what is allowed."""
    space = {k: list(v) for k, v in base.items()}
    seen = set()
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise ValueError(f"{item!r} is not NAME=VALUE[,VALUE...], e.g. epochs=1 or optimizer=adam,nadam")
        if name not in space:
            raise ValueError(f"unknown parameter {name!r} in {item!r}; the space has {', '.join(space)}")
        if name in seen:
            raise ValueError(f"parameter {name!r} is given twice")
        seen.add(name)
        choices = [_parse_value(name, v) for v in values.split(",")]
        if len(set(choices)) != len(choices):
            raise ValueError(f"{item!r} repeats a value")
        space[name] = choices
    return space


# --------------------------------------------------------------------------- samplers, pruners, in-memory studies
def make_sampler(seed: int, *, n_startup_trials: int = 10, multivariate: bool = True):
    """optuna's TPE sampler, seeded; ``constant_liar`` (optuna's default) makes parallel workers
    treat each other's running trials as bad, so they do not all propose the same configuration."""
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate,
                                          constant_liar=True)


def make_pruner(warmup_epochs: int | None = 1, startup_trials: int = 5):
    """A median pruner (``None``: no pruning); see :func:`make_study`."""
    optuna = _optuna()
    if warmup_epochs is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs)


def make_study(seed: int, *, n_startup_trials: int = 10, pruner_warmup_epochs: int | None = 1,
               pruner_startup_trials: int = 5, direction: str = "maximize", multivariate: bool = True):
    """A quiet optuna study with a seeded TPE sampler and (unless ``pruner_warmup_epochs`` is None)
    a median pruner that prunes once ``pruner_startup_trials`` trials have finished, at any epoch
    from ``pruner_warmup_epochs`` on (optuna's ``n_warmup_steps``; epochs are reported as steps
    1, 2, ...). ``multivariate=True`` lets TPE model the parameters jointly."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler(seed, n_startup_trials=n_startup_trials, multivariate=multivariate)
    pruner = make_pruner(pruner_warmup_epochs, pruner_startup_trials)
    return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)


def pruning_callback(trial, metric: str = "val_acc") -> Callable[[int, dict], None]:
    """A per-epoch callback for :func:`course_utils.network.train`: reports ``row[metric]`` to the
    trial and raises ``optuna.TrialPruned`` when the pruner says stop."""
    optuna = _optuna()

    def callback(epoch: int, row: dict) -> None:
        value = row[metric]
        trial.report(float(value) if np.isfinite(value) else 0.0, step=epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")

    return callback


def run_study(study, objective, n_trials: int, *, progress: bool = True, desc: str = "sweep",
              catch=(TrialDiverged,)):
    """``study.optimize(objective, n_trials, n_jobs=1)`` with one tqdm.auto bar; returns the study.
    A trial that raises one of ``catch`` (by default :class:`TrialDiverged`, from
    :func:`make_objective`) is recorded as failed and the sweep goes on."""
    n_trials = validation.positive_int("n_trials", n_trials)
    from tqdm.auto import tqdm

    with tqdm(total=n_trials, desc=desc, disable=not progress, leave=True) as bar:  # the finished bar stays
        def tick(study, trial):
            bar.update(1)

        study.optimize(objective, n_trials=n_trials, n_jobs=1, callbacks=[tick], gc_after_trial=False,
                       catch=tuple(catch))
    return study


# --------------------------------------------------------------------------- the trial (chapter 5 and train.py sweep)
def build_network(params: Mapping, *, in_features: int = 784, num_classes: int = 10, seed: int = 0,
                  loss: str = "cross_entropy"):
    """The :class:`course_utils.network.FeedForwardNet` of a hyperparameter dict (the space's names)."""
    from . import network

    return network.FeedForwardNet(in_features, [params["hidden_size"]] * params["num_layers"], num_classes,
                                  activation=params["activation"], init=params["weight_init"], loss=loss,
                                  weight_decay=params["weight_decay"], seed=seed)


def make_objective(X_train, y_train, X_val, y_val, *, num_classes: int, space: Mapping[str, Sequence] = SOURCE_SPACE,
                   seed: int = 0, schedule: str = "cosine", loss: str = "cross_entropy",
                   should_stop: Callable[[], bool] | None = None):
    """Chapter 5's objective: suggest a configuration from ``space``, train the from-scratch network
    (initial weights and batch order seeded by ``seed``, the same for every trial) on the
    standardized ``X_train`` rows, report the validation accuracy after every epoch to the median
    pruner, and return the validation accuracy after the last epoch.

    A run whose loss becomes NaN or infinite raises :class:`TrialDiverged` (the trial is then
    recorded as failed, with the user attribute ``diverged_at_epoch``); pass
    ``catch=(TrialDiverged,)`` to ``study.optimize`` to go on with the next trial. When
    ``should_stop()`` returns True after an epoch, the trial raises :class:`Interrupted` (and is
    recorded as failed): a worker asked to stop (a signal) ends at an epoch boundary.
    """
    from . import network

    X_train, X_val = np.asarray(X_train), np.asarray(X_val)
    in_features = X_train.shape[1]

    def objective(trial) -> float:
        p = suggest(trial, space)
        net = build_network(p, in_features=in_features, num_classes=num_classes, seed=seed, loss=loss)
        prune = pruning_callback(trial)

        def callback(epoch: int, row: dict) -> None:
            if should_stop is not None and should_stop():
                raise Interrupted(f"stopped after epoch {epoch} (asked to stop)")
            prune(epoch, row)

        history = network.train(net, X_train, y_train, X_val=X_val, y_val=y_val, optimizer=p["optimizer"],
                                lr=p["learning_rate"], batch_size=p["batch_size"], num_epochs=p["epochs"],
                                schedule=schedule, seed=seed, callback=callback)
        if bool(history["diverged"].iloc[-1]):
            epoch = int(history["epoch"].iloc[-1])
            trial.set_user_attr("diverged_at_epoch", epoch)
            raise TrialDiverged(f"the training loss became NaN or infinite in epoch {epoch}")
        return float(history["val_acc"].iloc[-1])

    return objective


# --------------------------------------------------------------------------- reading a sweep
def _last_value(t) -> float:
    """A trial's objective, or for a pruned, failed or running trial the last value it reported (NaN if none)."""
    optuna = _optuna()
    if t.state == optuna.trial.TrialState.COMPLETE:
        value = t.value
    elif t.intermediate_values:
        value = t.intermediate_values[max(t.intermediate_values)]
    else:
        value = float("nan")
    return float(value) if value is not None else float("nan")


def trials_frame(study, params: Sequence[str] | None = None, value_name: str = "val_acc"):
    """One row per trial in trial order, at full precision: trial, state, the parameters, the value
    (for a pruned or running trial its last reported value), the epochs reported, the wall time in
    seconds (finished trials), the worker (``host:pid``) and a note (why it failed)."""
    import pandas as pd

    optuna = _optuna()
    rows = []
    for t in study.get_trials(deepcopy=False):
        keys = params if params is not None else list(t.params)
        row = {"trial": t.number, "state": t.state.name.lower()}
        row.update({k: t.params.get(k) for k in keys})
        row[value_name] = _last_value(t)
        row["epochs_run"] = max(t.intermediate_values) if t.intermediate_values else 0
        row["seconds"] = t.duration.total_seconds() if t.duration is not None else float("nan")
        row["worker"] = t.user_attrs.get("worker", "")
        note = ""
        if "diverged_at_epoch" in t.user_attrs:
            note = f"diverged in epoch {t.user_attrs['diverged_at_epoch']}"
        elif t.state == optuna.trial.TrialState.FAIL:
            note = t.system_attrs.get("fail_reason", "failed (worker stopped or crashed)")
        row["note"] = note
        rows.append(row)
    return pd.DataFrame(rows)


def results_table(study, params: Sequence[str] | None = None, value_name: str = "val_acc", decimals: int = 3):
    """One row per trial, best first: number, state (complete/pruned/fail), the parameters, the
    value (the objective, or for a pruned trial its last reported value, rounded to ``decimals``),
    and the epochs it ran: :func:`trials_frame`'s rows without the time, worker and note."""
    df = trials_frame(study, params, value_name)
    if df.empty:
        return df
    df = df.drop(columns=["seconds", "worker", "note"])
    df[value_name] = [round(float(v), decimals) if math.isfinite(v) else float("nan") for v in df[value_name]]
    df["_complete"] = df["state"] == "complete"
    df = df.sort_values(["_complete", value_name, "trial"], ascending=[False, False, True], na_position="last")
    return df.drop(columns="_complete").reset_index(drop=True)


def param_importances(study, seed: int, params: Sequence[str] | None = None, decimals: int = 2):
    """fANOVA importances (Hutter et al. 2014) of the completed trials, with a seeded random forest,
    as a pandas Series summing to 1, largest first (rounded to ``decimals``)."""
    import pandas as pd

    optuna = _optuna()
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    imp = optuna.importance.get_param_importances(study, evaluator=evaluator, params=list(params) if params else None)
    s = pd.Series(imp, name="importance", dtype=float)
    return s.sort_values(ascending=False, kind="stable").round(decimals)


def spearman_table(df, params: Sequence[str], value: str = "val_acc", decimals: int = 2):
    """Spearman rank correlation of each *ordered* parameter with ``value`` over the rows of ``df``
    (categorical parameters are skipped: their order means nothing). Rows with NaN are dropped."""
    import pandas as pd
    from scipy.stats import spearmanr

    out = {}
    d = df.dropna(subset=[value])
    for p in params:
        col = d[p]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) or col.nunique() < 2:
            continue
        rho = spearmanr(col.astype(float), d[value]).statistic
        out[p] = float(rho)
    return pd.Series(out, name=f"Spearman rho with {value}", dtype=float).round(decimals)


def marginal_means(df, params: Sequence[str], value: str = "val_acc", decimals: int = 3):
    """For every parameter and value: how many trials used it, their mean and best ``value``.
    A long table (parameter, choice, trials, mean, best), read with care: the sampler chose these
    trials, so the groups are not a balanced experiment."""
    import pandas as pd

    rows = []
    d = df.dropna(subset=[value])
    for p in params:
        for choice, grp in d.groupby(p, sort=True):
            rows.append({"parameter": p, "choice": choice, "trials": len(grp),
                         "mean": round(float(grp[value].mean()), decimals), "best": round(float(grp[value].max()), decimals)})
    return pd.DataFrame(rows)


def parallel_coordinates(df, params: Sequence[str], value: str = "val_acc", ax=None, title: str | None = None,
                         cmap: str = "viridis", space: Mapping[str, Sequence] | None = None):
    """A matplotlib parallel-coordinates plot: one vertical axis per parameter (its choices evenly
    spaced, in the order of ``space`` when given, else sorted), a last axis for ``value``, and one
    line per trial coloured by ``value`` (best trials drawn on top). Returns the Axes."""
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    d = df.dropna(subset=[value]).sort_values(value, kind="stable")
    if d.empty:
        raise ValueError("parallel_coordinates: no trial has a value")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.15 * (len(params) + 1) + 1.5, 4.2))
    positions = {}
    for p in params:
        choices = list(space[p]) if space is not None and p in space else sorted(d[p].dropna().unique(), key=lambda v: (str(type(v)), v))
        positions[p] = {c: (i / (len(choices) - 1) if len(choices) > 1 else 0.5) for i, c in enumerate(choices)}
    vmin, vmax = float(d[value].min()), float(d[value].max())
    if vmax == vmin:
        vmax = vmin + 1e-9
    norm = colors.Normalize(vmin=vmin, vmax=vmax)
    colormap = plt.get_cmap(cmap)
    xs = np.arange(len(params) + 1)
    for _, row in d.iterrows():
        ys = [positions[p][row[p]] for p in params] + [(row[value] - vmin) / (vmax - vmin)]
        ax.plot(xs, ys, color=colormap(norm(row[value])), alpha=0.75, linewidth=1.2)
    for i, p in enumerate(params):
        ax.axvline(i, color="0.3", linewidth=0.8)
        for c, y in positions[p].items():
            ax.text(i + 0.04, y, _fmt(c), fontsize=7, va="center", ha="left",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    ax.axvline(len(params), color="0.3", linewidth=0.8)
    for frac in (0.0, 0.5, 1.0):
        ax.text(len(params) + 0.04, frac, f"{vmin + frac * (vmax - vmin):.3f}", fontsize=7, va="center")
    ax.set_xticks(xs, [*params, value], rotation=30, ha="right")
    ax.set_yticks([])
    ax.set_ylim(-0.06, 1.06)
    ax.set_xlim(-0.2, len(params) + 0.6)
    ax.grid(False)
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    ax.figure.colorbar(cm.ScalarMappable(norm=norm, cmap=colormap), ax=ax, fraction=0.03, pad=0.02, label=value)
    ax.set_title(title or f"Parallel coordinates: {len(d)} trials, coloured by {value}")
    return ax


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)



def accuracy_by_trial_plot(data, ax=None, value: str = "val_acc", title: str | None = None):
    """Each finished trial's ``value`` against its trial number (the plot a W&B sweep shows first),
    with the running best of the completed trials as a step line. Completed trials are filled dots,
    pruned trials hollow dots at the last value they reported, failed trials black crosses and
    running trials grey ticks along the bottom edge. ``data`` is an optuna study or a table with
    columns ``trial``, ``state`` and ``value`` (:func:`results_table`, :func:`trials_frame`).
    Returns the Axes."""
    import matplotlib.pyplot as plt
    import matplotlib.transforms as mtransforms

    df = data if hasattr(data, "columns") else results_table(data, value_name=value)
    missing = {"trial", "state", value} - set(df.columns)
    if missing:
        raise ValueError(f"accuracy_by_trial_plot: the table lacks column(s) {sorted(missing)}")
    df = df.sort_values("trial")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    state = df["state"].astype(str).str.lower()
    done = df[state == "complete"]
    pruned = df[(state == "pruned") & df[value].notna()]
    failed = df[state == "fail"]
    running = df[state == "running"]
    if len(done):
        ax.plot(done["trial"], done[value], "o", color="C0", markersize=5, label=f"completed ({len(done)})")
        best = np.fmax.accumulate(done[value].to_numpy(dtype=float))
        end = df["trial"].max()
        ax.step(np.r_[done["trial"].to_numpy(), end], np.r_[best, best[-1]], where="post", color="C3",
                linewidth=1.5, label="best so far")
    if len(pruned):
        ax.plot(pruned["trial"], pruned[value], "o", markerfacecolor="none", color="C1", markersize=5,
                label=f"pruned ({len(pruned)}, last value)")
    edge = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    if len(failed):
        ax.plot(failed["trial"], np.full(len(failed), 0.03), "x", color="black", markersize=6, transform=edge,
                clip_on=False, label=f"failed ({len(failed)})")
    if len(running):
        ax.plot(running["trial"], np.full(len(running), 0.03), "|", color="0.5", markersize=9, transform=edge,
                clip_on=False, label=f"running ({len(running)})")
    if not len(done) and not len(pruned):
        ax.text(0.5, 0.5, "no trial has a value yet", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("trial number")
    ax.set_ylabel("validation accuracy" if value == "val_acc" else value)
    if title is None:
        title = f"Accuracy against trial: {len(df)} trials"
        if len(done):
            i = done[value].to_numpy(dtype=float).argmax()
            title += f", best {done[value].iloc[i]:.3f} (trial {int(done['trial'].iloc[i])})"
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    return ax


def _flag_value(name: str, v) -> str:
    if name == "optimizer":
        return {"nesterov": "nag"}.get(v, v)
    if name == "weight_init":
        return {"xavier": "Xavier", "he": "He"}.get(v, v)
    if name == "activation":
        return {"relu": "ReLU"}.get(v, v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def train_command(params: Mapping, *, dataset: str | None = None, schedule: str | None = None,
                  subset: int | None = None, val_fraction: float | None = None, seed: int | None = None,
                  program: str = "python train.py") -> str:
    """The ``train.py`` command line that trains configuration ``params`` (the space's names). With
    the sweep's ``dataset``, ``schedule``, ``subset``, ``val_fraction`` and ``seed`` it repeats the
    trial exactly (same split, subset, initial weights and batch order), then adds the test score."""
    parts = [program]
    if dataset is not None:
        parts += ["-d", dataset]
    for name, flag in TRAIN_FLAGS.items():
        if name in params:
            parts += [flag, _flag_value(name, params[name])]
    if schedule is not None:
        parts += ["--lr_schedule", schedule]
    if subset is not None:
        parts += ["--subset", str(subset)]
    if val_fraction is not None:
        parts += ["--val_fraction", f"{val_fraction:g}"]
    if seed is not None:
        parts += ["--seed", str(seed)]
    return " ".join(parts)
