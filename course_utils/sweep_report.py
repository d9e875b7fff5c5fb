"""The report of a sweep, read from its storage: the files ``train.py sweep`` and ``train.py
sweep-report`` write into ``runs/<study>/report/``.

``results.csv`` (every trial, in trial order, full precision), ``results.md`` (best first),
``accuracy_by_trial.png``, ``parallel_coordinates.png``, ``importances.csv`` (fANOVA, seeded),
``best.json`` (with the ``train.py`` command of the best configuration) and ``report.md`` (all of
it on one page). The tables and figures are :mod:`course_utils.sweeps`' (chapter 5's).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from .sweeps import (
    _optuna,
    accuracy_by_trial_plot,
    param_importances,
    parallel_coordinates,
    results_table,
    train_command,
    trials_frame,
)

__all__ = ["best_summary", "write_report"]


def best_summary(study, **command) -> dict | None:
    """The best completed trial as a dict (trial, value, params, train_command), or None;
    ``command`` holds the keywords of :func:`train_command` (dataset, schedule, subset, ...)."""
    optuna = _optuna()
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    best = max(done, key=lambda t: (t.value, -t.number))
    return {"trial": best.number, "value": best.value, "params": dict(best.params),
            "train_command": train_command(best.params, **command)}


def _markdown(df, index: bool = True) -> str:
    """``df`` as a Markdown table (pandas' ``to_markdown``, which needs the tabulate package; without
    it, the plain-text table in a code block, with a note)."""
    try:
        return df.to_markdown(index=index)
    except ImportError:
        return "```\n" + df.to_string(index=index) + "\n```\n(pip install tabulate for a Markdown table)"


def write_report(study, folder, *, space: Mapping[str, Sequence] | None = None, seed: int = 0,
                 value_name: str = "val_acc", **command) -> dict:
    """Write a sweep's report into ``folder`` (created if needed) from the stored trials; works while
    the sweep is still running. Files: ``results.csv`` (every trial, in trial order, full precision),
    ``results.md`` (best first, rounded), ``accuracy_by_trial.png``, ``parallel_coordinates.png``,
    ``importances.csv`` (fANOVA, seeded with ``seed``, the sweep's seed), ``best.json`` and
    ``report.md`` (all of it on one page); ``command`` holds the other keywords of
    :func:`train_command` for the best trial's command line. Returns a dict with the paths written, the state counts, the best trial and, for
    a part that could not be made yet (too few trials), the reason."""
    import pandas as pd
    from matplotlib.figure import Figure
    import matplotlib as mpl

    from . import plots

    _optuna()  # a clear ImportError before any file is written
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = list(space) if space is not None else None
    out: dict = {"folder": folder, "files": {}, "skipped": {}}

    frame = trials_frame(study, params, value_name)
    frame.to_csv(folder / "results.csv", index=False)
    out["files"]["results.csv"] = folder / "results.csv"
    table = results_table(study, params, value_name)
    (folder / "results.md").write_text((_markdown(table, index=False) if len(table) else "(no trials yet)") + "\n")
    out["files"]["results.md"] = folder / "results.md"
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    out["counts"] = {k: int(counts.get(k, 0)) for k in ("complete", "pruned", "fail", "running")}

    with mpl.rc_context(plots.STYLE):
        fig = Figure(figsize=(6.4, 3.8), layout="constrained")
        accuracy_by_trial_plot(table if len(table) else pd.DataFrame(columns=["trial", "state", value_name]),
                               ax=fig.add_subplot(), value=value_name)
        fig.savefig(folder / "accuracy_by_trial.png")
        out["files"]["accuracy_by_trial.png"] = folder / "accuracy_by_trial.png"

        names = params or sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
        have = table.dropna(subset=[value_name]) if len(table) else table
        have = have.dropna(subset=names) if len(have) else have
        if len(have):
            fig = Figure(figsize=(1.15 * (len(names) + 1) + 1.5, 4.2), layout="constrained")
            parallel_coordinates(have, names, value=value_name, ax=fig.add_subplot(), space=space,
                                 title=f"Parallel coordinates: {len(have)} trials, coloured by {value_name}")
            fig.savefig(folder / "parallel_coordinates.png")
            out["files"]["parallel_coordinates.png"] = folder / "parallel_coordinates.png"
        else:
            out["skipped"]["parallel_coordinates.png"] = "no trial has a value yet"

    n_done = out["counts"]["complete"]
    try:
        if n_done < 2:
            raise ValueError(f"fANOVA needs at least 2 completed trials, the study has {n_done}")
        imp = param_importances(study, seed=seed, decimals=3)
        imp.rename_axis("parameter").to_csv(folder / "importances.csv")
        out["files"]["importances.csv"] = folder / "importances.csv"
        out["importances"] = imp
    except (ValueError, RuntimeError) as exc:
        out["skipped"]["importances.csv"] = str(exc)
        out["importances"] = None

    best = best_summary(study, seed=seed if seed else None, **command)
    out["best"] = best
    (folder / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    out["files"]["best.json"] = folder / "best.json"

    lines = [f"# Sweep report: study {study.study_name!r}", "",
             f"{len(frame)} trials: " + ", ".join(f"{v} {k}" for k, v in out["counts"].items()) + ".", ""]
    if best is not None:
        lines += [f"Best: trial {best['trial']}, {value_name} {best['value']:.4f}. Train it with:", "",
                  f"    {best['train_command']}", ""]
    for name in ("accuracy_by_trial.png", "parallel_coordinates.png"):
        if name in out["files"]:
            lines += [f"![{name[:-4]}]({name})", ""]
    if out["importances"] is not None:
        lines += ["## fANOVA importances", "", _markdown(out["importances"].rename_axis("parameter").to_frame()), ""]
    lines += ["## Trials, best first", "", (folder / "results.md").read_text()]
    for name, why in out["skipped"].items():
        lines += [f"Not written: {name} ({why}).", ""]
    (folder / "report.md").write_text("\n".join(lines))
    out["files"]["report.md"] = folder / "report.md"
    return out
