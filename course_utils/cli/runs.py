"""What one training run writes and reads: its run folder, its W&B run, and its data.

Part of :mod:`course_utils.cli`. Every run writes ``runs/<name>/`` (``config.json``,
``metrics.csv`` appended per epoch, ``summary.json``; strict JSON and CSV); W&B is used only
when the ``wandb`` package is installed and configured, and never fails a run.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from .arguments import DATASETS

__all__ = ["RunFolder", "start_wandb"]


def _wandb_configured() -> tuple[bool, str]:
    if os.environ.get("WANDB_MODE", "").lower() in {"disabled", "dryrun"}:
        return False, f"WANDB_MODE={os.environ['WANDB_MODE']}"
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE", "").lower() == "offline":
        return True, ""
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        if "api.wandb.ai" in netrc.read_text():
            return True, ""
    except OSError:
        pass
    return False, "not configured (no WANDB_API_KEY, no wandb login)"


def start_wandb(args, config: dict, **init_kwargs):
    """A W&B run, or (None, reason) when wandb is off, missing, unconfigured or fails to start."""
    if args.wandb == "off":
        return None, "off (--wandb off)"
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        return None, "wandb is not installed"
    ok, why = _wandb_configured()
    if not ok:
        return None, why
    try:
        import wandb

        run = wandb.init(project=args.wandb_project, entity=args.wandb_entity, config=config,
                         name=config.get("run_name"), **init_kwargs)
    except Exception as exc:  # no network, bad key, ...: never fail the training for it
        return None, f"wandb.init failed: {type(exc).__name__}: {exc}"
    return run, "logging to Weights & Biases"


def _finite(obj):
    """``obj`` with every non-finite float (NaN, inf) replaced by None, so that it is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) or type(obj).__name__.startswith("float"):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def _cell(value):
    """A metrics.csv cell: a non-finite number is an empty cell (strict CSV; pandas reads it as NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


class RunFolder:
    """runs/<name>/: config.json, metrics.csv (appended per epoch), summary.json. Strict JSON
    (NaN and infinities are written as null) and CSV (as empty cells)."""

    FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]

    def __init__(self, parent: Path, name: str):
        parent = Path(parent)
        path, k = parent / name, 1
        while True:  # never reuse a folder, even when another run takes the same name at the same moment
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                path, k = parent / f"{name}-{k}", k + 1
        self.path = path
        with open(path / "metrics.csv", "w", newline="") as fh:
            csv.writer(fh).writerow(self.FIELDS)

    def write_json(self, name: str, obj: dict) -> None:
        (self.path / name).write_text(json.dumps(_finite(obj), indent=2, default=str, allow_nan=False) + "\n")

    def log_epoch(self, row: dict) -> None:
        with open(self.path / "metrics.csv", "a", newline="") as fh:
            csv.writer(fh).writerow([_cell(row[k]) for k in self.FIELDS])


# --------------------------------------------------------------------------- data
def _prepare_data(parser, dataset: str, val_fraction: float, subset: int | None, seed: int, progress: bool = True,
                  ds=None):
    """Load the dataset (unless ``ds`` is given), split off the validation set (stratified), take the
    training subset, and standardize: returns (ds, X_tr, X_val, X_te, y_tr, y_val). Raises
    data.DatasetNotFoundError."""
    from .. import data, network

    if ds is None:
        ds = data.load(DATASETS[dataset], progress=progress)
    try:
        X_tr, X_val, y_tr, y_val = data.train_val_split(ds.X_train, ds.y_train, val_fraction=val_fraction, seed=seed)
        if subset is not None and subset < len(X_tr):
            _, X_tr, _, y_tr = data.train_val_split(X_tr, y_tr, val_fraction=subset / len(X_tr), seed=seed)
    except ValueError as exc:  # checked up front; this guards against a dataset of another size
        parser.error(f"argument --val_fraction/--subset: the split is impossible: {exc}")
    scaler = network.Standardizer().fit(X_tr)
    return ds, scaler.transform(X_tr), scaler.transform(X_val), scaler.transform(ds.X_test), y_tr, y_val
