"""The worker processes of ``train.py sweep``: each pulls trials from the shared study until it is done.

Part of :mod:`course_utils.cli`. One worker runs in the command's own process; more are spawned
processes with one BLAS thread each. Stopping: the first Ctrl-C (or SIGTERM) stops each worker at
its next epoch boundary and records its running trial as failed; a second one stops at once.
A worker that is killed loses its running trial, which its missing heartbeat marks as failed
(:mod:`course_utils.sweep_storage`).
"""
from __future__ import annotations

import os
import sys
import threading

from .arguments import PROG, build_sweep_parser
from .runs import _prepare_data

__all__ = ["run_workers"]


def _storage_error(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fmt_params(params: dict) -> str:
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _trial_line(t, prefix: str) -> str:
    import optuna

    secs = f"{t.duration.total_seconds():.1f} s" if t.duration is not None else "?"
    if t.state == optuna.trial.TrialState.COMPLETE:
        head = f"trial {t.number} complete: val_acc {t.value:.4f} after {max(t.intermediate_values, default=0)} epoch(s)"
    elif t.state == optuna.trial.TrialState.PRUNED:
        last = max(t.intermediate_values, default=0)
        value = t.intermediate_values.get(last, float("nan"))
        head = f"trial {t.number} pruned after epoch {last}: val_acc {value:.4f}"
    else:
        why = (f"diverged in epoch {t.user_attrs['diverged_at_epoch']}" if "diverged_at_epoch" in t.user_attrs
               else "failed")
        head = f"trial {t.number} failed: {why}"
    return f"{prefix}{head} ({secs}) | {_fmt_params(t.params)}"


def _limit_threads() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _run_sweep_worker(spec: dict, ds=None) -> int:
    """One worker: load the data (unless ``ds`` is given), open the study, pull trials until done.
    Returns an exit status."""
    import warnings

    import optuna

    from .. import data, sweep_storage, sweeps

    _limit_threads()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    prefix = spec["prefix"]
    parser = build_sweep_parser()
    lock = None
    try:
        ds, X_tr, X_val, _, y_tr, y_val = _prepare_data(parser, spec["dataset"], spec["val_fraction"], spec["subset"],
                                                        spec["seed"], progress=False, ds=ds)
        storage = sweep_storage.open_storage(spec["url"], heartbeat_interval=spec["heartbeat"], grace_period=spec["grace"])
        study = sweep_storage.open_study(storage, spec["study"], config=spec["config"], create=False, seed=spec["seed"],
                                  n_startup_trials=spec["startup_trials"], pruner_warmup_epochs=spec["pruner_warmup"],
                                  pruner_startup_trials=spec["pruner_startup"])
        lock = sweep_storage.StudyLock(spec["url"], spec["study"])
        objective = sweeps.make_objective(X_tr, y_tr, X_val, y_val, num_classes=ds.num_classes, space=spec["space"],
                                          seed=spec["seed"], schedule=spec["lr_schedule"], should_stop=_STOP.is_set)

        def on_trial(t) -> None:
            if not spec["quiet"]:
                print(_trial_line(t, prefix), flush=True)

        import numpy as np

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverged trial is recorded as such
            why = sweep_storage.run_worker(study, objective, spec["trials"], lock=lock, seed=spec["seed"],
                                    deadline=spec["deadline"], n_startup_trials=spec["startup_trials"],
                                    on_trial=on_trial, should_stop=_STOP.is_set)
        if why == "stopped":
            print(f"{PROG} sweep: {prefix}stopped (signal) between trials", file=sys.stderr, flush=True)
            return 130
        return 0
    except (KeyboardInterrupt, sweeps.Interrupted):
        print(f"{PROG} sweep: {prefix}stopped (signal): its running trial is recorded as failed", file=sys.stderr,
              flush=True)
        return 130
    except data.DatasetNotFoundError as exc:
        print(f"{PROG} sweep: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except MemoryError:
        print(f"{PROG} sweep: {prefix}error: out of memory in a trial (recorded as failed); use fewer workers or a "
              f"smaller --space", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        if os.environ.get("COURSE_DEBUG"):
            raise
        print(f"{PROG} sweep: {prefix}error: {type(exc).__name__}: {_storage_error(exc)} (this worker stopped; a "
              f"trial it was running is recorded as failed)", file=sys.stderr, flush=True)
        return 1
    finally:
        if lock is not None:
            try:
                lock.close()
            except Exception:  # noqa: BLE001
                pass


#: Set by the first SIGTERM (a worker process) or Ctrl-C (a sweep run in this process): the running
#: trial stops at its next epoch boundary and is recorded as failed; a second signal stops at once.
_STOP = threading.Event()


def _soft_stop(signum, frame) -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt
    _STOP.set()


def _spawned_worker(spec: dict) -> None:
    """Entry point of a worker process (multiprocessing, spawn). Ctrl-C in the terminal reaches the
    parent, which stops its workers with one SIGTERM each; a worker ignores SIGINT itself."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _soft_stop)
    sys.exit(_run_sweep_worker(spec))



def run_workers(spec: dict, workers: int, ds=None) -> int:
    """Run ``workers`` sweep workers (in this process, with the loaded dataset ``ds``, when 1; else
    spawned processes); returns 0, 1 (a worker failed) or 130 (interrupted)."""
    import multiprocessing as mp
    import signal

    if workers == 1:
        if not _main_thread():
            return _run_sweep_worker(dict(spec, prefix=""), ds=ds)
        def stop_here(signum, frame):
            if not _STOP.is_set():
                print(f"{PROG} sweep: stopping at the end of this epoch (Ctrl-C again to stop now)", file=sys.stderr,
                      flush=True)
            _soft_stop(signum, frame)

        _STOP.clear()
        previous = {sig: signal.signal(sig, stop_here) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            status = _run_sweep_worker(dict(spec, prefix=""), ds=ds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if status == 130:
            print(f"{PROG} sweep: interrupted. Start the same command again to continue the study.", file=sys.stderr)
        return status
    ctx = mp.get_context("spawn")
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})  # the children read them before importing numpy
    procs = []
    try:
        for i in range(workers):
            proc = ctx.Process(target=_spawned_worker, args=(dict(spec, prefix=f"[worker {i + 1}] "),),
                               name=f"sweep-worker-{i + 1}")
            proc.start()
            procs.append(proc)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt) if _main_thread() else None
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        print(f"{PROG} sweep: stopping the workers at their next epoch (Ctrl-C again to kill them now)",
              file=sys.stderr, flush=True)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # one SIGTERM: the worker fails its running trial after the current epoch
        try:
            for proc in procs:
                proc.join()
        except KeyboardInterrupt:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
            print(f"{PROG} sweep: workers killed; their running trials are marked failed once their heartbeats "
                  f"are missed", file=sys.stderr)
        print(f"{PROG} sweep: interrupted. Start the same command again to continue the study.", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    status = 0
    for i, proc in enumerate(procs, start=1):
        if proc.exitcode and proc.exitcode < 0:
            name = signal.Signals(-proc.exitcode).name
            print(f"{PROG} sweep: worker {i} was killed ({name}); its running trial is marked failed once its "
                  f"heartbeat is missed", file=sys.stderr)
            status = 1
        elif proc.exitcode:
            status = 130 if proc.exitcode == 130 and status != 1 else 1
    return status


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
