"""A sweep that outlives a process: where its trials are stored, the lock around creating one,
heartbeats, and the worker loop that ``train.py sweep`` runs in every worker.

Used by :mod:`course_utils.cli` (``train.py sweep``, ``sweep-report``); the search itself (space,
sampler, pruner, objective) is :mod:`course_utils.sweeps`, chapter 5's.

The trials live in an optuna RDB storage, a SQLite file on one machine or a PostgreSQL server for
workers on many machines (optuna's own distributed mode). Workers record a heartbeat; a trial
whose worker died stops beating and is marked failed by the next worker that looks (optuna's
``fail_stale_trials``), so a killed worker loses at most its current trial. A lock around
"count the trials, create the next one" (:class:`StudyLock`: a file lock beside a SQLite file, a
PostgreSQL advisory lock) makes any number of workers stop at exactly the requested number of
trials, counting completed, pruned and failed ones.

Why SQLite and not optuna's journal file: both held up under 1, 2 and 4 concurrent worker
processes on the 2-core reference machine (``bench/storage_bench.py``: 200-300 trials of a fast
objective per run, no errors, no duplicated trial numbers, nothing left running). The journal
file spends less time per trial, SQLite in write-ahead-log mode less than SQLite's default
(which syncs every commit to disk); all of it is a fraction of a second, small beside trials
that train for seconds to minutes. But in optuna 5.0.0 only the RDB storages record heartbeats,
so only with them does the trial of a killed worker end as failed instead of running forever;
and SQLite is the same code path as PostgreSQL.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from . import validation
from .sweeps import TrialDiverged, _optuna, make_pruner, make_sampler

__all__ = [
    "storage_url",
    "redact_url",
    "backend_name",
    "sqlite_path",
    "postgres_driver_missing",
    "open_storage",
    "StudyLock",
    "open_study",
    "trial_seed",
    "run_worker",
    "settle_running_trials",
]


def storage_url(spec: str | os.PathLike) -> str:
    """An optuna storage URL: a file path becomes ``sqlite:///<absolute path>``; a ``postgresql://``
    URL without a driver gets the PostgreSQL driver that is installed (``+psycopg2``, else
    ``+psycopg``: SQLAlchemy 2.1 would pick psycopg 3 even where only psycopg2 is installed);
    any other URL is returned as it is."""
    text = os.fspath(spec)
    if "://" not in text:
        return "sqlite:///" + str(Path(text).expanduser().resolve())
    if text.startswith("postgresql://") or text.startswith("postgres://"):
        import importlib.util

        for driver in ("psycopg2", "psycopg"):
            if importlib.util.find_spec(driver) is not None:
                return f"postgresql+{driver}://" + text.split("://", 1)[1]
    return text


def postgres_driver_missing() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(d) is None for d in ("psycopg2", "psycopg"))


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy understands: show it as given
        return url


def backend_name(url: str) -> str:
    """The SQLAlchemy backend name of a storage URL (``sqlite``, ``postgresql``, ...)."""
    from sqlalchemy.engine import make_url

    return make_url(url).get_backend_name()


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other URLs and for ``:memory:``)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def open_storage(url: str, *, heartbeat_interval: int | None = 10, grace_period: int | None = None):
    """An ``optuna.storages.RDBStorage`` for a SQLite or PostgreSQL URL, with heartbeats every
    ``heartbeat_interval`` seconds (``None``: off) and running trials failed after ``grace_period``
    seconds without one (optuna's default: twice the interval). SQLite waits up to 60 s for a lock
    held by another worker; PostgreSQL connections are checked before use. Raises ValueError for
    another kind of URL and for a PostgreSQL URL without its driver (psycopg2)."""
    optuna = _optuna()
    url = storage_url(url)
    try:
        backend = backend_name(url)
    except Exception as exc:
        raise ValueError(f"not a storage URL: {redact_url(url)!r} ({exc})") from None
    if backend == "sqlite":
        path = sqlite_path(url)
        engine_kwargs = {"connect_args": {"timeout": 60}}
        if path is not None:
            engine_kwargs = {"creator": _sqlite_connector(path)}
    elif backend == "postgresql":
        engine_kwargs = {"pool_pre_ping": True}
        if postgres_driver_missing():
            raise ValueError("a PostgreSQL storage needs a driver: pip install psycopg2-binary")
    else:
        raise ValueError(f"unsupported storage {redact_url(url)!r}: use a SQLite file (sqlite:///path or a path) "
                         f"or a PostgreSQL URL (postgresql://user:password@host:port/database)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                          grace_period=grace_period)


def _sqlite_connector(path: Path):
    """A DBAPI connection factory for a SQLite file shared by worker processes on one machine:
    write-ahead log (readers and the writer do not block each other), ``synchronous=NORMAL``
    (an fsync per checkpoint instead of per commit: a killed process loses nothing committed; a
    power cut may lose the last commits, never the file's consistency), 60 s busy timeout."""
    import sqlite3

    def connect():
        conn = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return connect


class StudyLock:
    """A lock shared by every worker of one study, held only while a worker counts the trials and
    creates the next one (so that N workers stop at exactly the requested number).

    SQLite storage: a ``filelock.FileLock`` on ``<database>.lock`` (fcntl on POSIX; released by the
    operating system when a process dies). PostgreSQL: a session-level advisory lock
    (``pg_advisory_lock``) on a connection of its own, keyed by the study name (released by the
    server when the connection drops). Use as a context manager or with acquire()/release().
    """

    def __init__(self, url: str, study_name: str):
        url = storage_url(url)
        self.backend = backend_name(url)
        self._engine = self._conn = self._file = None
        if self.backend == "sqlite":
            path = sqlite_path(url)
            if path is None:  # in-memory database: one process only
                self._thread = threading.Lock()
            else:
                from filelock import FileLock

                self._file = FileLock(str(path) + ".lock")
        elif self.backend == "postgresql":
            import sqlalchemy

            digest = hashlib.sha256(f"course_utils.sweeps:{study_name}".encode()).digest()
            self._key = int.from_bytes(digest[:8], "big", signed=True)
            self._engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
            self._text = sqlalchemy.text
        else:
            raise ValueError(f"no study lock for a {self.backend} storage")

    def acquire(self) -> None:
        if self._file is not None:
            self._file.acquire()
        elif self._engine is not None:
            if self._conn is None:
                self._conn = self._engine.connect()
            self._conn.execute(self._text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
            self._conn.commit()
        else:
            self._thread.acquire()

    def release(self) -> None:
        if self._file is not None:
            self._file.release()
        elif self._engine is not None:
            self._conn.execute(self._text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            self._conn.commit()
        else:
            self._thread.release()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def open_study(storage, name: str, *, config: Mapping | None = None, create: bool = True, seed: int = 0,
               n_startup_trials: int = 10, pruner_warmup_epochs: int | None = 1, pruner_startup_trials: int = 5):
    """Create study ``name`` in ``storage`` (maximizing; ``config`` stored as its user attribute
    ``"sweep_config"``) or load it when it exists. A loaded study must have been created with the
    same ``config``: otherwise ValueError lists the differences (a restarted sweep must train
    the same way, or its trials are not comparable). ``create=False`` only loads (KeyError when
    there is no such study)."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = make_sampler(seed, n_startup_trials=n_startup_trials)
    pruner = make_pruner(pruner_warmup_epochs, pruner_startup_trials)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        if not create:
            raise KeyError(f"no study named {name!r} in this storage" +
                           (f"; it holds {', '.join(repr(n) for n in names)}" if names else "; it holds none"))
        try:
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize", sampler=sampler,
                                        pruner=pruner)
            if config is not None:
                study.set_user_attr("sweep_config", json.loads(json.dumps(dict(config))))
            return study
        except optuna.exceptions.DuplicatedStudyError:
            pass  # another worker created it a moment ago: load it below
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    if config is not None:
        for _ in range(50):  # the creator sets the config right after creating the study
            stored = study.user_attrs.get("sweep_config")
            if stored is not None:
                break
            time.sleep(0.1)
        if stored is None:
            raise ValueError(f"study {name!r} exists but was not created by a sweep (it has no sweep_config): "
                             f"use another study name")
        wanted = json.loads(json.dumps(dict(config)))
        diff = [f"{k}: stored {stored.get(k)!r}, now {wanted.get(k)!r}" for k in sorted(set(stored) | set(wanted))
                if stored.get(k) != wanted.get(k)]
        if diff:
            raise ValueError(f"study {name!r} was started with other settings ({'; '.join(diff)}): "
                             f"repeat them to continue it, or use another study name")
    return study


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` of a sweep seeded with ``seed`` (a 32-bit integer)."""
    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(study, objective, n_trials: int, *, lock, seed: int = 0, deadline: float | None = None,
               n_startup_trials: int = 10, catch=(TrialDiverged,), on_trial: Callable | None = None,
               should_stop: Callable[[], bool] | None = None) -> str:
    """Pull trials from ``study`` until it holds ``n_trials`` trials (any state: completed, pruned,
    failed, or running in another worker), until ``time.time()`` passes ``deadline`` (no new
    trial is started after it) or until ``should_stop()`` is True. Returns why it stopped:
    ``"done"``, ``"timeout"`` or ``"stopped"``.

    Each trial runs through ``study.optimize(..., n_trials=1)``, so optuna's heartbeat and
    stale-trial handling apply. ``lock`` (a :class:`StudyLock`) is held from counting the trials
    until the next one exists; its sampler is seeded with :func:`trial_seed` of its number. The
    trial's user attribute ``"worker"`` is ``host:pid``. ``on_trial(frozen_trial)`` is called
    after each trial this worker finished. Exceptions from the objective other than ``catch``
    (and KeyboardInterrupt) fail the trial and propagate.
    """
    optuna = _optuna()
    n_trials = validation.positive_int("n_trials", n_trials)
    worker = _worker_id()
    while True:
        if deadline is not None and time.time() >= deadline:
            return "timeout"
        if should_stop is not None and should_stop():
            return "stopped"
        held = True
        lock.acquire()
        try:
            n = len(study.get_trials(deepcopy=False))
            if n >= n_trials:
                return "done"
            study.sampler = make_sampler(trial_seed(seed, n), n_startup_trials=n_startup_trials)
            finished = []

            def gated(trial):
                nonlocal held
                lock.release()
                held = False
                trial.set_user_attr("worker", worker)
                return objective(trial)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
                study.optimize(gated, n_trials=1, catch=tuple(catch), gc_after_trial=False,
                               callbacks=[lambda s, t: finished.append(t)])
        finally:
            if held:
                lock.release()
        if on_trial is not None:
            for t in finished:
                on_trial(t)


def settle_running_trials(study, *, wait: float) -> list[int]:
    """Fail the running trials whose heartbeat has stopped (optuna's ``fail_stale_trials``),
    waiting up to ``wait`` seconds for the trials of dead workers to go stale. Returns the numbers
    of the trials still running then (their workers are alive, e.g. on another machine)."""
    optuna = _optuna()
    from optuna.storages import fail_stale_trials

    running_state = (optuna.trial.TrialState.RUNNING,)
    end = time.monotonic() + max(0.0, wait)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
        running = [t.number for t in study.get_trials(deepcopy=False, states=running_state)]
        left = end - time.monotonic()
        if not running or left <= 0:
            return running
        time.sleep(min(1.0, left))
