"""Hyperparameter search helpers on optuna: a search space, an objective with pruning, a study,
and the tables and figures that read a sweep.

Introduced in chapter 5 (the sweep over the source assignment's space on Fashion-MNIST).

Why optuna's TPE sampler rather than a grid or random search: the space is categorical and
large (chapter 5's has 2*3*3*3*2*6*3*2*3 = 11,664 combinations), a full grid is out of reach,
and random search keeps spending trials in regions that the first trials already showed to be
bad (a learning rate of 1e-4 with plain SGD, a weight decay of 0.5). TPE (the tree-structured
Parzen estimator, Bergstra et al. 2011) models the values that good trials used and the values
that bad trials used, per parameter, and proposes what is likely under the first and unlikely
under the second; after a few random start-up trials it concentrates on the promising region.
A median pruner stops a trial whose validation accuracy after an epoch is below the median of
earlier trials at that epoch.

Reproducibility: ``TPESampler(seed=...)`` with ``n_jobs=1`` proposes the same trials every run,
as long as the objective is deterministic (seed the model and the batch order from the trial's
parameters, not from a global state).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "SOURCE_SPACE",
    "space_size",
    "suggest",
    "make_study",
    "run_study",
    "pruning_callback",
    "results_table",
    "param_importances",
    "spearman_table",
    "marginal_means",
    "parallel_coordinates",
]

#: The search space of the source assignment (CS6910 assignment 1), as name -> list of choices.
SOURCE_SPACE: dict[str, list] = {
    "epochs": [5, 10],
    "num_layers": [3, 4, 5],
    "hidden_size": [32, 64, 128],
    "weight_decay": [0.0, 0.0005, 0.5],
    "learning_rate": [1e-3, 1e-4],
    "optimizer": ["sgd", "momentum", "nesterov", "rmsprop", "adam", "nadam"],
    "batch_size": [16, 32, 64],
    "weight_init": ["random", "xavier"],
    "activation": ["sigmoid", "tanh", "relu"],
}


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


def make_study(seed: int, *, n_startup_trials: int = 10, pruner_warmup_epochs: int | None = 1,
               pruner_startup_trials: int = 5, direction: str = "maximize", multivariate: bool = True):
    """A quiet optuna study with a seeded TPE sampler and (unless ``pruner_warmup_epochs`` is None)
    a median pruner that prunes once ``pruner_startup_trials`` trials have finished, at any epoch
    from ``pruner_warmup_epochs`` on (optuna's ``n_warmup_steps``; epochs are reported as steps
    1, 2, ...). ``multivariate=True`` lets TPE model the parameters jointly."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate)
    pruner = (optuna.pruners.NopPruner() if pruner_warmup_epochs is None else
              optuna.pruners.MedianPruner(n_startup_trials=pruner_startup_trials, n_warmup_steps=pruner_warmup_epochs))
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


def run_study(study, objective, n_trials: int, *, progress: bool = True, desc: str = "sweep"):
    """``study.optimize(objective, n_trials, n_jobs=1)`` with one tqdm.auto bar; returns the study."""
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    from tqdm.auto import tqdm

    with tqdm(total=n_trials, desc=desc, disable=not progress, leave=False) as bar:
        def tick(study, trial):
            bar.update(1)

        study.optimize(objective, n_trials=n_trials, n_jobs=1, callbacks=[tick], gc_after_trial=False)
    return study


def results_table(study, params: Sequence[str] | None = None, value_name: str = "val_acc", decimals: int = 3):
    """One row per trial, best first: number, state (COMPLETE/PRUNED/FAIL), the parameters, the
    value (the objective, or for a pruned trial its last reported value), and the epochs it ran."""
    import pandas as pd

    optuna = _optuna()
    rows = []
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            value = t.value
        elif t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        else:
            value = float("nan")
        keys = params if params is not None else list(t.params)
        row = {"trial": t.number, "state": t.state.name.lower()}
        row.update({k: t.params.get(k) for k in keys})
        row[value_name] = round(float(value), decimals) if value is not None and np.isfinite(value) else float("nan")
        row["epochs_run"] = (max(t.intermediate_values) if t.intermediate_values else 0)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
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
