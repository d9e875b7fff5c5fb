"""``train.py sweep`` and ``train.py sweep-report``: run chapter 5's search as a resumable study, and report it.

Part of :mod:`course_utils.cli`. ``sweep`` checks its arguments, opens (or continues) the study in
its storage (:mod:`course_utils.sweep_storage`), runs the workers (:mod:`.workers`), settles the
trials of dead workers and writes the report; ``sweep-report`` writes the report of a stored
sweep, finished or still running (:mod:`course_utils.sweep_report`).
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from .arguments import (
    DATASETS,
    PROG,
    _check_folder,
    _check_network_size,
    _check_split,
    _flags,
    _given,
    build_report_parser,
    build_sweep_parser,
)
from .runs import start_wandb
from .workers import _fmt_params, _storage_error, run_workers

__all__ = ["sweep_main", "report_main"]


def _study_default(dataset: str) -> str:
    return f"sweep-{dataset}"


def _resolve_storage(parser, args, must_exist: bool) -> tuple[str, Path]:
    """(storage URL, study folder) of a sweep or report command, checked (parser.error when wrong)."""
    from .. import sweep_storage

    args.study = args.study or _study_default(args.dataset)
    folder = Path(args.run_dir) / args.study
    if args.storage is None:
        url = sweep_storage.storage_url(folder / "study.db")
    else:
        if not args.storage.strip():
            parser.error("argument --storage: must not be empty")
        url = sweep_storage.storage_url(args.storage)
    try:
        backend = sweep_storage.backend_name(url)
    except Exception:
        parser.error(f"argument --storage: not a storage URL or path: {sweep_storage.redact_url(url)!r}")
    if backend not in ("sqlite", "postgresql"):
        parser.error(f"argument --storage: unsupported storage {backend!r}: use a SQLite file (a path or "
                     f"sqlite:///path) or postgresql://user:password@host:port/database")
    path = sweep_storage.sqlite_path(url)
    if backend == "sqlite" and path is None:
        parser.error("argument --storage: an in-memory SQLite database cannot be shared by workers or outlive the "
                     "command: give a file")
    if path is not None:
        if path.is_dir():
            parser.error(f"argument --storage: {path} is a folder: give the database file's path")
        if must_exist and not path.is_file():
            where = "--storage" if args.storage is not None else "--study/--run_dir"
            parser.error(f"argument {where}: there is no sweep database at {path}: run '{PROG} sweep' first, or "
                         f"give --study, --run_dir or --storage of an existing sweep")
        if not must_exist:
            _check_folder(parser, "--storage" if args.storage is not None else "--run_dir", path.parent)
    if backend == "postgresql" and sweep_storage.postgres_driver_missing():
        parser.error("argument --storage: a PostgreSQL storage needs a driver: pip install psycopg2-binary")
    return url, folder



def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{seconds:.1f} s"


def _counts(study) -> dict:
    import collections

    c = collections.Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return {k: c.get(k, 0) for k in ("complete", "pruned", "fail", "running")}


def _fmt_counts(c: dict) -> str:
    return f"{c['complete']} completed, {c['pruned']} pruned, {c['fail']} failed, {c['running']} running"


def sweep_main(argv) -> int:
    import warnings

    from .. import sweep_report, sweep_storage, sweeps

    t0 = time.time()  # the time budget (--timeout) counts from here
    parser = build_sweep_parser()
    args = parser.parse_args(argv)
    _check_folder(parser, "--run_dir", args.run_dir)
    url, folder = _resolve_storage(parser, args, must_exist=False)
    _check_split(parser, args.dataset, args.val_fraction, args.subset)
    try:
        space = sweeps.parse_space_override(args.space)
    except ValueError as exc:
        parser.error(f"argument --space: {exc}")
    _check_network_size(parser, max(space["num_layers"]), max(space["hidden_size"]), max(space["batch_size"]),
                        "argument --space (num_layers, hidden_size)")
    max_workers = 4 * (os.cpu_count() or 1)
    if args.workers > max_workers:
        parser.error(f"argument --workers: {args.workers} processes on a machine with {os.cpu_count()} CPU cores; "
                     f"use at most {max_workers} (one per core is fastest)")
    grace = args.grace if args.grace is not None else 3 * args.heartbeat
    if grace <= args.heartbeat:
        parser.error(f"argument --grace: must be more than --heartbeat ({args.heartbeat} s), got {grace}")
    given = _given(parser, argv)
    notes = []
    if args.wandb == "off" or args.no_report:
        notes += [f"{_flags(parser, d)} is ignored: the report is not logged to W&B" for d in ("wandb_project", "wandb_entity")
                  if d in given]

    import optuna

    from .. import data

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for note in notes:
        print(f"{PROG} sweep: note: {note}", file=sys.stderr)
    n_all = data.DATASETS[DATASETS[args.dataset]].expected_counts[0]
    n_val = math.ceil(args.val_fraction * n_all)  # as _check_split and scikit-learn count
    n_train = n_all - n_val if args.subset is None else min(args.subset, n_all - n_val)
    config = {"dataset": args.dataset, "subset": args.subset, "val_fraction": args.val_fraction, "seed": args.seed,
              "lr_schedule": args.lr_schedule, "space": space, "startup_trials": args.startup_trials,
              "pruner_startup": args.pruner_startup, "pruner_warmup": args.pruner_warmup}
    if sweep_storage.sqlite_path(url) is not None:
        sweep_storage.sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    shown = sweep_storage.redact_url(url)
    lock = None
    try:
        lock = sweep_storage.StudyLock(url, args.study)
        with lock:  # one process at a time creates the tables and the study
            storage = sweep_storage.open_storage(url, heartbeat_interval=args.heartbeat, grace_period=grace)
            study = sweep_storage.open_study(storage, args.study, config=config, seed=args.seed,
                                      n_startup_trials=args.startup_trials, pruner_warmup_epochs=args.pruner_warmup,
                                      pruner_startup_trials=args.pruner_startup)
    except ValueError as exc:
        parser.error(f"argument --study: {exc}")
    except Exception as exc:  # noqa: BLE001 - a server that cannot be reached, a file that is not a database, ...
        if os.environ.get("COURSE_DEBUG"):
            raise
        if sweep_storage.sqlite_path(url) is not None:  # the file given is the problem: an argument error
            parser.error(f"argument --storage: cannot use {sweep_storage.sqlite_path(url)} as an optuna database: "
                         f"{_storage_error(exc)}")
        print(f"{PROG} sweep: error: cannot open the storage {shown}: {_storage_error(exc)}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.close()

    before = _counts(study)
    n_before = sum(before.values())
    print(f"study {args.study!r} in {shown}: {n_before} trial(s) so far ({_fmt_counts(before)})")
    print(f"each trial: {args.dataset}, {n_train:,} training / {n_val:,} validation images, seed {args.seed}, "
          f"lr schedule {args.lr_schedule}; space of {sweeps.space_size(space):,} configurations")
    todo = max(0, args.trials - n_before)
    deadline = t0 + args.timeout if args.timeout is not None else None
    status = 0
    if todo == 0:
        print(f"the study already holds {n_before} >= {args.trials} trials (--trials): nothing to run")
    else:
        try:  # the data must be there before any worker starts
            ds = data.load(DATASETS[args.dataset], progress=True)
        except data.DatasetNotFoundError as exc:
            print(f"{PROG} sweep: error: {exc}", file=sys.stderr)
            return 1
        workers = min(args.workers, todo)
        print(f"running {todo} more trial(s) up to {args.trials} with {workers} worker(s)"
              + (f", no new trial after {args.timeout:g} s" if deadline else ""), flush=True)
        spec = {"url": url, "study": args.study, "config": config, "heartbeat": args.heartbeat, "grace": grace,
                "trials": args.trials, "deadline": deadline, "seed": args.seed, "dataset": args.dataset,
                "subset": args.subset, "val_fraction": args.val_fraction, "lr_schedule": args.lr_schedule,
                "space": space, "startup_trials": args.startup_trials, "pruner_warmup": args.pruner_warmup,
                "pruner_startup": args.pruner_startup, "quiet": args.quiet}
        preloaded, ds = (ds if workers == 1 else None), None  # spawned workers load their own copy
        status = run_workers(spec, workers, preloaded)
        del preloaded
    if status == 130:
        return 130

    try:
        running = sweep_storage.settle_running_trials(study, wait=(grace + args.heartbeat + 1) if _counts(study)["running"] else 0)
        after = _counts(study)
    except Exception as exc:  # noqa: BLE001
        print(f"{PROG} sweep: error: cannot read the storage {shown}: {_storage_error(exc)}", file=sys.stderr)
        return 1
    elapsed = time.time() - t0
    ran = sum(after.values()) - n_before - len(running)
    print(f"study {args.study!r}: {sum(after.values())} trial(s): {_fmt_counts(after)}")
    if todo and ran > 0:
        span = _trial_span(study, n_before)
        line = (f"since this command started: {ran} trial(s) finished in the study in {_duration(elapsed)} "
                f"({60 * ran / elapsed:.1f} trials/min)")
        if span:
            line += f"; first trial start to last trial end {_duration(span)} ({60 * ran / span:.1f} trials/min)"
        print(line)
    if running:
        print(f"trial(s) {', '.join(map(str, running))} are still running in other workers (their heartbeats are fresh)")
    best = sweep_report.best_summary(study, **_command_keywords(config))
    if best is not None:
        print(f"best: trial {best['trial']}, val_acc {best['value']:.4f} | {_fmt_params(best['params'])}")
        print(f"train it: {best['train_command']}")
    if not args.no_report:
        _write_report(study, folder / "report", config, args, prog=f"{PROG} sweep")
    if status == 0 and args.timeout is not None and sum(after.values()) < args.trials:
        print(f"the time budget ({args.timeout:g} s) ran out: start the same command again to continue")
    return status


def _trial_span(study, first_number: int) -> float | None:
    """Seconds from the first start to the last end of the finished trials numbered >= first_number."""
    done = [t for t in study.get_trials(deepcopy=False) if t.number >= first_number and t.datetime_complete is not None
            and t.datetime_start is not None]
    if not done:
        return None
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return span if span > 0 else None


def _command_keywords(config: dict) -> dict:
    """sweeps.train_command's keywords that make train.py repeat a trial of a sweep with ``config``."""
    return {"dataset": config.get("dataset"), "schedule": config.get("lr_schedule"), "subset": config.get("subset"),
            "val_fraction": config.get("val_fraction") if config.get("val_fraction") not in (None, 0.1) else None,
            "seed": config.get("seed") if config.get("seed") else None}


def _write_report(study, out: Path, config: dict | None, args, prog: str) -> dict | None:
    from .. import sweep_report

    config = config or {}
    try:
        keywords = _command_keywords(config)
        report = sweep_report.write_report(study, out, space=config.get("space"), seed=keywords.pop("seed") or 0,
                                     **keywords)
    except OSError as exc:
        print(f"{prog}: error: cannot write the report to {out}: {exc.strerror or exc}", file=sys.stderr)
        return None
    written = ", ".join(report["files"])
    print(f"report: {out}/ ({written})")
    for name, why in report["skipped"].items():
        print(f"report: {name} not written yet: {why}")
    if args.wandb != "off":
        print(f"report W&B: {_log_report_to_wandb(args, study, report, config)}")
    return report


def _log_report_to_wandb(args, study, report: dict, config: dict) -> str:
    """Log the report's table, figures and best trial to a W&B run; never fails the command."""
    run, status = start_wandb(args, {"run_name": f"{study.study_name}-report", **config}, job_type="sweep-report")
    if run is None:
        return status
    try:
        import pandas as pd
        import wandb

        files = report["files"]
        payload = {"results": wandb.Table(dataframe=pd.read_csv(files["results.csv"]))}
        for name in ("accuracy_by_trial.png", "parallel_coordinates.png"):
            if name in files:
                payload[name[:-4]] = wandb.Image(str(files[name]))
        run.log(payload)
        if report["best"] is not None:
            run.summary.update({"best_trial": report["best"]["trial"], "best_val_acc": report["best"]["value"],
                                **{f"best_{k}": v for k, v in report["best"]["params"].items()}})
        run.finish()
    except Exception as exc:  # noqa: BLE001 - W&B never fails the sweep
        return f"logging failed: {type(exc).__name__}: {exc}"
    return "logged to Weights & Biases"


def report_main(argv) -> int:
    import warnings

    from .. import sweep_report, sweep_storage

    parser = build_report_parser()
    args = parser.parse_args(argv)
    url, folder = _resolve_storage(parser, args, must_exist=True)
    out = args.out if args.out is not None else folder / "report"
    _check_folder(parser, "--out" if args.out is not None else "--run_dir", out)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    shown = sweep_storage.redact_url(url)
    try:
        lock = sweep_storage.StudyLock(url, args.study)
        try:
            with lock:  # not while a starting sweep creates the database's tables
                storage = sweep_storage.open_storage(url, heartbeat_interval=None)
        finally:
            lock.close()
        study = sweep_storage.open_study(storage, args.study, create=False)
    except KeyError as exc:
        parser.error(f"argument --study: {exc.args[0]} ({shown})")
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("COURSE_DEBUG"):
            raise
        if sweep_storage.sqlite_path(url) is not None:
            parser.error(f"argument --storage: cannot use {sweep_storage.sqlite_path(url)} as an optuna database: "
                         f"{_storage_error(exc)}")
        print(f"{PROG} sweep-report: error: cannot read the storage {shown}: {_storage_error(exc)}", file=sys.stderr)
        return 1
    config = study.user_attrs.get("sweep_config", {})
    counts = _counts(study)
    print(f"study {args.study!r} in {shown}: {sum(counts.values())} trial(s): {_fmt_counts(counts)}")
    best = sweep_report.best_summary(study, **_command_keywords(config))
    if best is not None:
        print(f"best: trial {best['trial']}, val_acc {best['value']:.4f} | {_fmt_params(best['params'])}")
        print(f"train it: {best['train_command']}")
    report = _write_report(study, out, config, args, prog=f"{PROG} sweep-report")
    return 0 if report is not None else 1
