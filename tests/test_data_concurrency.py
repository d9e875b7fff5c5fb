"""Issue 13, kind 1: several processes load the same dataset at once while the cache is damaged.

Every process must get verified data (or a clear error), never a low-level crash such as a
``FileNotFoundError`` from inside verification, and the cache must end up correct, with each
damaged or missing file downloaded exactly once (processes that waited for a file's lock
re-check the cache instead of downloading it again).

The stress test starts 4 worker processes once; each round the test damages the cache (one
file corrupted, one truncated, one deleted, one left good; a corrupted file also sits in the
``COURSE_DATA`` mirror), releases the 4 workers at the same moment and compares every worker's
arrays with the truth. The files come from a local ``http.server`` on 127.0.0.1 that counts the
requests.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from course_utils import cache as cache_io  # reads every file (tests patch its open)
from course_utils import data
from helpers import WorkerPool
from test_data_support import IDX_NAMES, closed_port_url, copy_to, digest, file_server, make_tiny_idx, sha  # noqa: F401

pytestmark = pytest.mark.processes  # it waits on processes: a parallel run starts it beside a notebook (conftest.py)

N_WORKERS = 4
N_ROUNDS = 20
ROUND_TIMEOUT_S = 120

WORKER = r'''
import dataclasses, hashlib, json, sys, traceback, warnings
from pathlib import Path

import numpy as np

cfg = json.loads(Path(sys.argv[1]).read_text())
from course_utils import data

spec = data.DATASETS[cfg["name"]]
if cfg.get("files"):
    spec = dataclasses.replace(spec, files={r: data.FileSpec(*v) for r, v in cfg["files"].items()},
                               classes=tuple(cfg["classes"]), expected_counts=tuple(cfg["counts"]))
data.DATASETS[cfg["name"]] = dataclasses.replace(spec, urls=tuple(cfg["urls"]))
data.SYSTEM_DIRS = tuple(Path(p) for p in cfg["system_dirs"])


def digest(a):
    return f"{a.dtype}{a.shape}{hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}"


print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = data.load(cfg["name"], progress=False)
            out = {"ok": True, "source": ds.source,
                   "digests": {k: digest(getattr(ds, k)) for k in ("X_train", "y_train", "X_test", "y_test")}}
        except BaseException as exc:  # report everything, the test decides
            out = {"ok": False, "error": "".join(traceback.format_exception(exc))}
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    print(json.dumps(out), flush=True)
'''


def start_workers(tmp: Path, cfg: dict, env: dict, n: int = N_WORKERS) -> WorkerPool:
    """``n`` worker processes loading the dataset ``cfg`` describes; ``send(["go"] * n)`` releases all at once."""
    cfg_file = tmp / "worker.json"
    cfg_file.write_text(json.dumps(cfg))
    return WorkerPool(WORKER, [str(cfg_file)], tmp, env, n, ROUND_TIMEOUT_S)


def worker_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COURSE_DATA", "COURSE_OFFLINE", "COURSE_DATA_URL", "COURSE_CACHE")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def damage(cache: Path, names: list[str], k: int) -> dict[str, str]:
    """Corrupt, truncate and delete three cached files (chosen by ``k``); one stays good."""
    n = len(names)
    corrupt, truncate, delete, keep = (names[(k + i) % n] for i in range(4))
    blob = bytearray((cache / corrupt).read_bytes())
    mid = len(blob) // 2
    blob[mid : mid + 8] = bytes(b ^ 0xFF for b in blob[mid : mid + 8])  # same size, other bytes
    (cache / corrupt).write_bytes(bytes(blob))
    (cache / truncate).write_bytes((cache / truncate).read_bytes()[: max(1, (cache / truncate).stat().st_size // 2)])
    (cache / delete).unlink()
    (cache / f".{delete}.deadbeef.part").write_bytes(b"left by a killed process")  # swept under the lock
    return {"corrupted": corrupt, "truncated": truncate, "deleted": delete, "kept": keep}


def check_round(label: str, replies: list[dict], truth: dict[str, str]) -> None:
    for i, r in enumerate(replies):
        assert r["ok"], f"{label}, worker {i} failed:\n{r['error']}"
        assert r["digests"] == truth, f"{label}, worker {i}: arrays differ from the truth"
        assert r["source"] in ("download", "user cache"), (label, i, r["source"])
        for w in r["warnings"]:
            assert "FileNotFoundError" not in w and "Traceback" not in w, (label, i, w)
            assert w.startswith("DataWarning: "), (label, i, w)


def check_cache(cache: Path, spec: data.DatasetSpec, label: str) -> None:
    names = sorted(fs.filename for fs in spec.files.values())
    assert sorted(p.name for p in cache.iterdir()) == names, f"{label}: cache holds {sorted(os.listdir(cache))}"
    for fs in spec.files.values():
        assert sha((cache / fs.filename).read_bytes()) == fs.sha256, f"{label}: cached {fs.filename} is wrong"


def test_four_processes_repair_a_damaged_cache_20_rounds_in_a_row(tmp_path, file_server):
    www = tmp_path / "www"
    arrays, spec = make_tiny_idx(www / "fashion-mnist", n_train=1000, n_test=200, seed=11)
    truth = {"X_train": digest(arrays["train_images"]), "y_train": digest(arrays["train_labels"].astype(np.int64)),
             "X_test": digest(arrays["test_images"]), "y_test": digest(arrays["test_labels"].astype(np.int64))}
    server = file_server.serve(www)
    server.set_delay(0.02)  # widen the window in which the workers race for the same file
    # A mirror that holds a corrupted copy of one file: every worker must skip it and go on.
    mirror = copy_to(www / "fashion-mnist", tmp_path / "mirror" / "fashion-mnist")
    labels = mirror / IDX_NAMES["train_labels"]
    labels.write_bytes(labels.read_bytes()[:-3] + b"\x00\x00\x00")
    cfg = {"name": "fashion-mnist", "files": {r: [fs.filename, fs.sha256, fs.raw_sha256, fs.size] for r, fs in spec.files.items()},
           "classes": list(spec.classes), "counts": list(spec.expected_counts),
           "urls": [closed_port_url(), server.url + "/fashion-mnist/"],  # the first base refuses every connection
           "system_dirs": [str(tmp_path / "system")]}
    env = worker_env(COURSE_CACHE=tmp_path / "cache", COURSE_DATA=tmp_path / "mirror")
    cache = tmp_path / "cache" / "data" / "fashion-mnist"
    names = [IDX_NAMES[r] for r in ("train_images", "train_labels", "test_images", "test_labels")]
    workers = start_workers(tmp_path, cfg, env)
    try:
        for rnd in range(N_ROUNDS):
            server.reset_counts()
            if rnd == 0:
                expected = dict.fromkeys(names, 1)  # an empty cache: each file downloaded once
            else:
                what = damage(cache, names, rnd)
                expected = {what["corrupted"]: 1, what["truncated"]: 1, what["deleted"]: 1}
            replies = workers.send(["go"] * N_WORKERS)
            label = f"round {rnd + 1} of {N_ROUNDS}"
            check_round(label, replies, truth)
            got = {Path(p).name: c for p, c in server.counts.items()}
            assert got == expected, f"{label}: downloads per file {got}, expected exactly {expected}"
            check_cache(cache, spec, label)
            assert any(r["source"] == "download" for r in replies), label
    finally:
        workers.close()


def test_four_processes_repair_a_damaged_cache_of_the_real_fashion_mnist(tmp_path, file_server):
    """One round on the real files, served over HTTP by COURSE_DATA_URL (the registry's URLs refuse)."""
    root = Path(os.environ.get("COURSE_DATA", "/nonexistent"))
    if not all((root / "fashion-mnist" / n).is_file() for n in IDX_NAMES.values()):
        pytest.skip("the real Fashion-MNIST files are not in $COURSE_DATA/fashion-mnist "
                    "(set COURSE_DATA=/work/shared/data or another mirror to run this test)")
    spec = data.DATASETS["fashion-mnist"]
    truth_ds = data.load("fashion-mnist", download=False, progress=False)
    assert truth_ds.source == "COURSE_DATA mirror"
    truth = {k: digest(getattr(truth_ds, k)) for k in ("X_train", "y_train", "X_test", "y_test")}
    del truth_ds
    server = file_server.serve(root)
    cache = tmp_path / "cache" / "data" / "fashion-mnist"
    copy_to(root / "fashion-mnist", cache)
    names = [spec.files[r].filename for r in ("train_images", "train_labels", "test_images", "test_labels")]
    what = damage(cache, names, 1)  # train-labels corrupted, t10k-images truncated, t10k-labels deleted
    cfg = {"name": "fashion-mnist", "urls": [closed_port_url()], "system_dirs": [str(tmp_path / "system")]}
    env = worker_env(COURSE_CACHE=tmp_path / "cache", COURSE_DATA_URL=server.url)
    workers = start_workers(tmp_path, cfg, env)
    try:
        replies = workers.send(["go"] * N_WORKERS)
    finally:
        workers.close()
    check_round("real Fashion-MNIST", replies, truth)
    got = {Path(p).name: c for p, c in server.counts.items()}
    assert got == {what["corrupted"]: 1, what["truncated"]: 1, what["deleted"]: 1}
    check_cache(cache, spec, "real Fashion-MNIST")


# --------------------------------------------------------------------------- the races, made deterministic
@pytest.fixture
def tiny_with_cache(tmp_path, monkeypatch):
    arrays, spec = make_tiny_idx(tmp_path / "source")
    monkeypatch.setitem(data.DATASETS, "fashion-mnist", spec)
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    for var in ("COURSE_DATA", "COURSE_OFFLINE", "COURSE_DATA_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIRS", (tmp_path / "system",))
    cache = copy_to(tmp_path / "source", tmp_path / "cache" / "data" / "fashion-mnist")
    return arrays, spec, cache


def test_a_file_deleted_just_before_it_is_read_counts_as_missing(tiny_with_cache, monkeypatch):
    """Another process deletes a cached file between our look and our read: it is fetched, no crash."""
    arrays, spec, cache = tiny_with_cache
    victim = cache / spec.files["test_images"].filename
    real_open = open
    fired = []

    def racing_open(path, *args, **kwargs):
        if Path(path) == victim and not fired:
            fired.append(True)
            victim.unlink()  # the other process wins the race
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(cache_io, "open", racing_open, raising=False)
    ds = data.load("fashion-mnist", progress=False)
    assert fired and ds.source == "download"
    np.testing.assert_array_equal(ds.X_test, arrays["test_images"])
    assert sha(victim.read_bytes()) == spec.files["test_images"].sha256


def test_a_damaged_file_repaired_by_another_process_meanwhile_is_not_deleted_or_downloaded(tiny_with_cache, monkeypatch):
    """We see a truncated cached file; by the time we hold its lock another process has installed a
    good copy: we must use that copy, not delete it and not download again."""
    arrays, spec, cache = tiny_with_cache
    target = cache / spec.files["train_images"].filename
    good = target.read_bytes()
    target.write_bytes(good[:100])
    real_lock = data._cache_lock

    def lock_after_the_other_process(spec_, fs, search):
        if fs.filename == target.name:
            target.write_bytes(good)  # the other process repaired it while we waited for the lock
        return real_lock(spec_, fs, search)

    monkeypatch.setattr(data, "_cache_lock", lock_after_the_other_process)
    monkeypatch.setattr(data, "_download", lambda *a, **k: pytest.fail("must not download a file that is now good"))
    ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "user cache"
    np.testing.assert_array_equal(ds.X_train, arrays["train_images"])
    assert target.read_bytes() == good


def test_threads_in_one_process_share_the_repair(tiny_with_cache):
    """4 threads at once against a cache with a corrupted, a truncated and a missing file."""
    arrays, spec, cache = tiny_with_cache
    names = [spec.files[r].filename for r in ("train_images", "train_labels", "test_images", "test_labels")]
    damage(cache, names, 0)
    results, errors = [], []
    barrier = threading.Barrier(4)

    def work():
        barrier.wait()
        try:
            results.append(data.load("fashion-mnist", progress=False))
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.DataWarning)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert len(results) == 4
    for ds in results:
        np.testing.assert_array_equal(ds.X_train, arrays["train_images"])
        np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])
    check_cache(cache, spec, "threads")


def test_a_lock_held_too_long_by_another_process_gives_a_clear_error_after_one_wait(tiny_with_cache, monkeypatch):
    import time

    from filelock import FileLock

    arrays, spec, cache = tiny_with_cache
    name = spec.files["train_labels"].filename
    (cache / name).unlink()
    monkeypatch.setattr(data, "LOCK_TIMEOUT_S", 0.3)
    held = FileLock(str(cache.parent / ".locks" / f"fashion-mnist--{name}.lock"))  # "another process" holds it
    (cache.parent / ".locks").mkdir(parents=True, exist_ok=True)
    with held:
        t0 = time.perf_counter()
        with pytest.warns(data.DataWarning, match=r"train-labels-idx1-ubyte\.gz: waited 0\.3 s for the user cache's "
                          r"lock .*Wait for it to finish, then load again"):
            with pytest.raises(data.DatasetNotFoundError, match="waited 0.3 s"):
                data.load("fashion-mnist", progress=False)
        assert time.perf_counter() - t0 < 5
    assert not (cache / name).exists()  # nothing was written without the lock
