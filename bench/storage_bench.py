#!/usr/bin/env python3
"""Which local optuna storage holds up under concurrent workers? A stress test, not a unit test.

N worker processes (spawned, one BLAS thread each) share one study and run a fast objective
(``--sleep`` seconds of "work", nine categorical suggestions from TPE over chapter 5's space, three
intermediate reports), stopping when the study holds ``--trials`` finished trials
(``optuna.study.MaxTrialsCallback``). That is far more storage traffic per second than a real
trial (seconds to minutes) makes, which is the point. For each storage and worker count it prints
the wall time, the trials per second, the exceptions the workers raised, duplicated trial
numbers, trials left RUNNING, and the trials above the requested number (MaxTrialsCallback
overshoots by design: each worker checks only after its own trial).

Storages compared (optuna 5.0.0):

- ``sqlite``: ``RDBStorage("sqlite:///...")`` with heartbeats (interval 1 s), what ``train.py sweep`` uses;
- ``journal``: ``JournalStorage(JournalFileBackend(path))`` with its default symlink lock;
- ``journal-open``: the same with ``JournalFileOpenLock``.

Run it (about 2 minutes on 2 cores)::

    .venv/bin/python bench/storage_bench.py --workers 1 2 4 --trials 200
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _storage(kind: str, folder: str):
    import optuna

    if kind == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{folder}/study.db", heartbeat_interval=1, grace_period=5,
                                          engine_kwargs={"connect_args": {"timeout": 60}})
    if kind == "sqlite-wal":  # what course_utils.sweep_storage.open_storage does: WAL journal, synchronous=NORMAL
        from course_utils import sweep_storage

        return sweep_storage.open_storage(f"{folder}/study.db", heartbeat_interval=1, grace_period=5)
    path = os.path.join(folder, "study.log")
    journal = optuna.storages.journal
    lock = journal.JournalFileOpenLock(path) if kind == "journal-open" else None
    return optuna.storages.JournalStorage(journal.JournalFileBackend(path, lock_obj=lock))


def _worker(kind: str, folder: str, n_trials: int, sleep: float, seed: int, errors) -> None:
    import warnings

    import optuna

    from course_utils import sweeps

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name="bench", storage=_storage(kind, folder),
                                  sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True))

        def objective(trial):
            sweeps.suggest(trial, sweeps.SOURCE_SPACE)
            for step in range(1, 4):
                time.sleep(sleep / 3)
                trial.report(step / 10, step)
            return trial.number / 1000

        study.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(n_trials)], gc_after_trial=False)
    except BaseException as exc:  # noqa: BLE001 - counted and reported
        errors.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")


def bench(kind: str, workers: int, n_trials: int, sleep: float) -> dict:
    import optuna

    with tempfile.TemporaryDirectory() as folder:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        optuna.create_study(study_name="bench", storage=_storage(kind, folder), direction="maximize")
        ctx = mp.get_context("spawn")
        manager = ctx.Manager()
        errors = manager.list()
        os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        procs = [ctx.Process(target=_worker, args=(kind, folder, n_trials, sleep, 100 + i, errors)) for i in range(workers)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wall = time.perf_counter() - t0
        trials = optuna.load_study(study_name="bench", storage=_storage(kind, folder)).get_trials(deepcopy=False)
        numbers = collections.Counter(t.number for t in trials)
        states = collections.Counter(t.state.name for t in trials)
        finished = states["COMPLETE"] + states["PRUNED"] + states["FAIL"]
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
        result = {"storage": kind, "workers": workers, "wall_s": round(wall, 1), "finished": finished,
                  "trials_per_s": round(finished / wall, 1), "errors": len(errors),
                  "duplicate_numbers": sum(c - 1 for c in numbers.values() if c > 1),
                  "running_left": states["RUNNING"], "over_requested": max(0, len(trials) - n_trials),
                  "exit_codes": sorted({p.exitcode for p in procs}), "file_kB": size // 1024}
        for e in list(errors)[:2]:
            print(f"  [{kind} x{workers}] worker error: {e}", file=sys.stderr)
        manager.shutdown()
        return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--storages", nargs="+", default=["sqlite", "sqlite-wal", "journal", "journal-open"],
                   choices=["sqlite", "sqlite-wal", "journal", "journal-open"])
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--trials", type=int, default=200, help="finished trials per run (default: %(default)s)")
    p.add_argument("--sleep", type=float, default=0.03, help="seconds of work per trial (default: %(default)s)")
    args = p.parse_args(argv)
    import pandas as pd

    rows = []
    for kind in args.storages:
        for n in args.workers:
            rows.append(bench(kind, n, args.trials, args.sleep))
            print(rows[-1], flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
