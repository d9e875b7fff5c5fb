"""Machinery shared by the tests: a pool of worker processes released together, a stand-in
``wandb`` package, and a loader for scripts that are not modules of a package.

Imported by the test files as ``from helpers import ...`` (pytest puts ``tests/`` on the path).
"""
from __future__ import annotations

import importlib.util
import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test of a module that imports this fixture runs on one torch thread (fast and the same on
    every machine for small tensors); the number of threads is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_script(path: Path | str, name: str | None = None):
    """Import the Python file ``path`` (a script such as ``train.py`` or ``tools/x.py``) as a module."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class WorkerPool:
    """``n`` copies of a Python script, started once and driven step by step.

    Each worker prints one JSON line when it is ready, then answers every line it reads on stdin
    with one JSON line. :meth:`send` writes one line to each worker, buffered, then flushes them all,
    so the workers are released within microseconds of each other (the races the concurrency tests
    need), and returns their answers in worker order. A worker that stops answering for ``timeout``
    seconds, or exits, fails the test with the end of its stderr.
    """

    def __init__(self, script: str, args: list[str], folder: Path, env: dict, n: int, timeout: float):
        path = Path(folder) / "worker.py"
        path.write_text(script)
        self.timeout = timeout
        self.stderr = [open(Path(folder) / f"worker{i}.stderr", "w+") for i in range(n)]
        self.procs = [subprocess.Popen([sys.executable, str(path), *args], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=folder)
                      for err in self.stderr]
        self.queues = [queue.Queue() for _ in self.procs]
        for p, q in zip(self.procs, self.queues):
            threading.Thread(target=self._pump, args=(p, q), daemon=True).start()
        try:
            for reply in self._collect():
                assert reply == {"ready": True}, reply
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _pump(proc, q):
        for line in proc.stdout:
            q.put(line)
        q.put(None)

    def _collect(self) -> list:
        replies = []
        for i, q in enumerate(self.queues):
            try:
                line = q.get(timeout=self.timeout)
            except queue.Empty:
                pytest.fail(f"worker {i} gave no answer within {self.timeout} s; stderr:\n{self.tail(i)}")
            if line is None:
                pytest.fail(f"worker {i} exited (code {self.procs[i].poll()}); stderr:\n{self.tail(i)}")
            replies.append(json.loads(line))
        return replies

    def tail(self, i: int) -> str:
        self.stderr[i].flush()
        self.stderr[i].seek(0)
        return self.stderr[i].read()[-3000:]

    def send(self, lines: list[str]) -> list:
        """One line to each worker (``lines[i]`` to worker ``i``), all released together; their answers."""
        for p, line in zip(self.procs, lines, strict=True):
            p.stdin.write(line.rstrip("\n") + "\n")
        for p in self.procs:  # the writes are buffered; the flushes release the workers together
            p.stdin.flush()
        return self._collect()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self.stderr:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


FAKE_WANDB = '''"""A stand-in for the wandb package: every call is appended to $STUB_WANDB_LOG as a JSON line."""
import json, os

LOG = os.environ["STUB_WANDB_LOG"]


def _write(kind, payload):
    with open(LOG, "a") as fh:
        fh.write(json.dumps([kind, payload]) + "\\n")


class Table:
    def __init__(self, dataframe):
        self.rows = len(dataframe)


class Image:
    def __init__(self, path):
        assert os.path.isfile(path)
        self.path = path


def _plain(value):
    if isinstance(value, Table):
        return value.rows
    if isinstance(value, Image):
        return os.path.basename(value.path)
    return value


class _Run:
    def __init__(self):
        self.summary = {}

    def log(self, metrics, step=None):
        _write("log", {"step": step, **{k: _plain(v) for k, v in metrics.items()}})

    def finish(self):
        _write("finish", dict(self.summary))


def init(**kwargs):
    if os.environ.get("STUB_WANDB_FAIL"):
        raise ConnectionError("no network")
    _write("init", {k: kwargs.get(k) for k in ("project", "entity", "job_type")})
    return _Run()
'''


def fake_wandb(folder: Path, fail: bool = False) -> tuple[dict, Path]:
    """A stand-in ``wandb`` package in ``folder``: (the environment variables that make a child
    process import it as configured W&B, the file its calls are logged to). ``fail``: ``wandb.init``
    raises ConnectionError, as without a network."""
    package = Path(folder) / "stub" / "wandb"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_WANDB)
    log = Path(folder) / "wandb_calls.jsonl"
    env = {"PYTHONPATH": str(package.parent), "WANDB_API_KEY": "dummy", "STUB_WANDB_LOG": str(log)}
    if fail:
        env["STUB_WANDB_FAIL"] = "1"
    return env, log


def wandb_calls(log: Path) -> list:
    """The calls the stand-in ``wandb`` logged, in order: ``[kind, payload]`` pairs."""
    return [json.loads(line) for line in Path(log).read_text().splitlines()]


# --------------------------------------------------------------------------- train.py as a subprocess
TRAIN = ROOT / "train.py"


def train_env(**extra) -> dict:
    """The environment of a ``train.py`` child process: never downloads, stable hashing."""
    env = dict(os.environ, COURSE_OFFLINE="1", PYTHONHASHSEED="0")
    env.update(extra)
    return env


def run_train(args: list[str], env_extra: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python train.py *args`` from the repository root, its output captured as text."""
    return subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True,
                          env=train_env(**(env_extra or {})), timeout=timeout, cwd=ROOT)


def popen_train(args: list[str]) -> subprocess.Popen:
    """``python train.py *args`` started in the background, stdout and stderr piped as text."""
    return subprocess.Popen([sys.executable, str(TRAIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=train_env(), cwd=ROOT)


def require_datasets(*names: str) -> None:
    """Skip the calling test (or fixture) unless every dataset in ``names`` is on this machine."""
    from course_utils import data

    missing = []
    for name in names:
        try:
            data.load(name, download=False, progress=False)
        except data.DatasetNotFoundError:
            missing.append(name)
    if missing:
        pytest.skip(f"dataset(s) {', '.join(missing)} not found (set COURSE_DATA to the mirror, e.g. ../shared/data); "
                    "these tests train on real data")
