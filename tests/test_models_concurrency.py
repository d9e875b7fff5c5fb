"""Issue 13, kind 1, for the pretrained-weights cache of ``course_utils.models``.

Several processes (notebooks, scripts, pytest workers) ask ``load_or_pretrain`` for the same
pretrained weights at once while the cache holds a corrupted weights file, a truncated one, a
record that does not match its weights, a missing weights file, a missing record and an
absent entry. Every process must get exactly the weights that pretraining gives (or a clear
error, never a crash), each configuration must be pretrained exactly once (the others wait for
its lock and load what was saved), each damaged file must be named in exactly one warning,
and the cache must be valid afterwards.

The stress test starts 4 fresh interpreters once (the spawn model: nothing is inherited from
pytest) and drives them through several rounds; each round the test damages the cache, then
releases all workers at the same moment. Two more tests race a reader against a process that
keeps replacing the weights: what a reader loads is always exactly what it verified.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils import models
from course_utils.models import SmallCNN, WeightsError
from helpers import WorkerPool

pytestmark = pytest.mark.processes  # it waits on processes: a parallel run starts it beside a notebook (conftest.py)

N_WORKERS = 4
N_ROUNDS = 3  # after the first one, which starts from an empty cache: rounds 1-3 damage the record in each of
# the 3 ways of RECORD_DAMAGE, and alternate the two ways of releasing the workers (issue 20: 5 rounds repeated these)
STEP_TIMEOUT_S = 120
RACE_SECONDS = 2  # how long a reader races a process that keeps replacing the file
PRETRAIN_STEPS = 40  # about 0.15 s of CPU for the tiny network below
PRETRAIN_SLEEP_S = 0.8  # stands in for a longer pretraining: the lock is held about a second,
# long enough that the other workers really wait for it, without spending the shared CPU

# One cache entry per kind of damage (each under its own name, so the test can find its files).
KINDS = ["corrupted", "truncated", "record mismatch", "missing weights", "missing record", "absent", "valid"]
# What the one warning for each damaged kind must say (besides naming the file).
EXPECTED_WARNING = {
    "corrupted": "corrupted or replaced",
    "truncated": "truncated",
    "record mismatch": None,  # varies with the round: checked by RECORD_DAMAGE
    "missing weights": "no weights file at",
    "missing record": "no checksum record",
}
RECORD_DAMAGE = [  # (how the record is damaged, what the warning says)
    ("sha256 of other weights", "does not belong to it"),
    ("record of another configuration", "was saved for another configuration"),
    ("cut short", "is unreadable"),
]


# --------------------------------------------------------------------------- shared with the workers
def build(kind: str) -> SmallCNN:
    """The tiny network of one cache entry (its initial weights depend on the kind)."""
    return SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=KINDS.index(kind))


def config_of(kind: str) -> dict:
    return {"kind": kind, "steps": PRETRAIN_STEPS, "lr": 0.1}


def name_of(kind: str) -> str:
    return "tiny-" + kind.replace(" ", "-")


def make_pretrain(kind: str, log: Path | None, label: str = "", sleep: float = PRETRAIN_SLEEP_S):
    """Seeded, one-thread pretraining; each run appends one line to ``log`` (the count the test checks)."""

    def pretrain(model: nn.Module) -> None:
        if log is not None:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{label}\t{kind}\t{os.getpid()}\n".encode())
            finally:
                os.close(fd)
        g = torch.Generator().manual_seed(1000 + KINDS.index(kind))
        x = torch.rand(64, 1, 28, 28, generator=g)
        y = torch.randint(0, 3, (64,), generator=g)
        for _ in range(PRETRAIN_STEPS):  # plain gradient descent: the first torch.optim object in a
            model.zero_grad()  # process costs more than a second of CPU (it imports torch._dynamo)
            nn.functional.cross_entropy(model(x), y).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
        time.sleep(sleep)

    return pretrain


def state_digest(model: nn.Module) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes: equal digests, identical weights."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.numpy().tobytes())
    return h.hexdigest()


def run_kind(kind: str, root: Path, log: Path, label: str) -> dict:
    """What one worker does for one cache entry; every outcome is reported, the test decides."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = build(kind)
            came_from = models.load_or_pretrain(model, config_of(kind), make_pretrain(kind, log, label),
                                                name=name_of(kind), root=root, verbose=False)
            out = {"ok": True, "came_from": came_from, "digest": state_digest(model)}
        except BaseException as exc:  # noqa: BLE001
            out = {"ok": False, "error": "".join(traceback.format_exception(exc))}
    out["kind"] = kind
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    return out


WORKER = r'''
import json, sys
import torch

torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
import test_models_concurrency as t

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    out = [t.run_kind(kind, t.Path(job["root"]), t.Path(job["log"]), job["label"]) for kind in job["kinds"]]
    print(json.dumps(out), flush=True)
'''


def start_workers(tmp: Path, n: int = N_WORKERS) -> WorkerPool:
    """``n`` fresh Python processes (nothing inherited from pytest); ``send`` gives each its job."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("COURSE_CACHE", None)  # every call passes root=
    return WorkerPool(WORKER, [str(Path(__file__).parent)], tmp, env, n, STEP_TIMEOUT_S)


# --------------------------------------------------------------------------- damage and checks
def files_of(root: Path, kind: str) -> tuple[Path, Path]:
    found = sorted((root / "models").glob(f"{name_of(kind)}-*.pt"))
    assert len(found) == 1, f"{kind}: expected one weights file, found {[p.name for p in found]}"
    return found[0], found[0].with_suffix(".json")


def damage(root: Path, rnd: int) -> dict[str, str]:
    """Damage every entry but 'valid'; returns what the warning of each damaged kind must say."""
    said = {}
    for kind in KINDS:
        if kind == "valid":
            continue
        path, record = files_of(root, kind)
        if kind == "corrupted":  # same size, other bytes
            blob = bytearray(path.read_bytes())
            mid = len(blob) // 2
            blob[mid : mid + 8] = bytes(b ^ 0xFF for b in blob[mid : mid + 8])
            path.write_bytes(bytes(blob))
        elif kind == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        elif kind == "record mismatch":
            how, _ = RECORD_DAMAGE[rnd % len(RECORD_DAMAGE)]
            other = files_of(root, "valid")[1].read_text()
            if how == "sha256 of other weights":
                rec = json.loads(record.read_text())
                rec["sha256"] = json.loads(other)["sha256"]
                record.write_text(json.dumps(rec))
            elif how == "record of another configuration":
                record.write_text(other)
            else:
                record.write_text(record.read_text()[:30])
        elif kind == "missing weights":
            path.unlink()
            (path.parent / f".{path.name}.deadbeef.part").write_bytes(b"left by a killed process")
        elif kind == "missing record":
            record.unlink()
        elif kind == "absent":
            path.unlink()
            record.unlink()
        if kind == "record mismatch":
            said[kind] = RECORD_DAMAGE[rnd % len(RECORD_DAMAGE)][1]
        elif kind != "absent":
            said[kind] = EXPECTED_WARNING[kind]
    return said


def check_kind(label: str, kind: str, results: list[dict], truth: str, pretrained: int, said: str | None,
               root: Path) -> None:
    for i, r in enumerate(results):
        assert r["ok"], f"{label}, {kind}, worker {i} failed:\n{r['error']}"
        assert r["digest"] == truth, f"{label}, {kind}, worker {i}: weights differ from what pretraining gives"
        for w in r["warnings"]:
            assert w.startswith("WeightsWarning: "), (label, kind, i, w)
    assert pretrained == (0 if kind == "valid" else 1), f"{label}, {kind}: pretrained {pretrained} times"
    came = sorted(r["came_from"] for r in results)
    expected = ["cache"] * N_WORKERS if kind == "valid" else ["cache"] * (N_WORKERS - 1) + ["trained"]
    assert came == expected, (label, kind, came)
    warned = [w for r in results for w in r["warnings"]]
    if said is None:
        assert warned == [], (label, kind, warned)
    else:
        path, _ = files_of(root, kind)
        assert len(warned) == 1, f"{label}, {kind}: expected one warning (from the process that repaired it), got {warned}"
        assert path.stem in warned[0] and said in warned[0] and "replacing the cached copy" in warned[0], (label, warned)


def check_cache(root: Path, truths: dict[str, str], label: str) -> None:
    """Every entry loads, verified and silently, with the weights pretraining gives; nothing is left over."""
    folder = root / "models"
    names = sorted(p.name for p in folder.iterdir() if p.name != ".locks")
    expected = sorted(f"{files_of(root, k)[0].stem}{s}" for k in KINDS for s in (".json", ".pt"))
    assert names == expected, f"{label}: the cache holds {names}"

    def must_not_train(model):
        raise AssertionError(f"{label}: the cache should hold these weights")

    for kind in KINDS:
        path, record = files_of(root, kind)
        rec = json.loads(record.read_text())
        assert rec["sha256"] == models.file_sha256(path) and rec["bytes"] == path.stat().st_size, (label, kind)
        model = build(kind)
        with no_warning():
            assert models.load_or_pretrain(model, config_of(kind), must_not_train, name=name_of(kind), root=root,
                                           verbose=False) == "cache"
        assert state_digest(model) == truths[kind], (label, kind)


@contextlib.contextmanager
def no_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    assert not caught, [str(w.message) for w in caught]


def pretrain_counts(log: Path, label: str) -> dict[str, int]:
    lines = log.read_text().splitlines() if log.exists() else []
    counts = dict.fromkeys(KINDS, 0)
    for line in lines:
        rnd, kind, _pid = line.split("\t")
        if rnd == label:
            counts[kind] += 1
    return counts


# --------------------------------------------------------------------------- the tests
def test_four_processes_repair_a_damaged_weights_cache_round_after_round(tmp_path):
    torch.set_num_threads(1)
    truths = {}
    for kind in KINDS:  # what pretraining gives, computed here without any cache
        model = build(kind)
        make_pretrain(kind, None, sleep=0)(model)
        truths[kind] = state_digest(model)
    assert len(set(truths.values())) == len(KINDS), "each entry must hold other weights"
    root, log = tmp_path / "cache", tmp_path / "pretrain.log"
    workers = start_workers(tmp_path)
    try:
        for rnd in range(N_ROUNDS + 1):
            label = f"round {rnd + 1} of {N_ROUNDS + 1}"
            said = {} if rnd == 0 else damage(root, rnd)  # round 1: an empty cache
            results: dict[str, list[dict]] = {k: [] for k in KINDS}
            if rnd % 2 == 0:
                # all workers on the same entry at the same moment, one entry after the other
                for kind in KINDS:
                    job = {"kinds": [kind], "root": str(root), "log": str(log), "label": label}
                    replies = workers.send([json.dumps(job)] * N_WORKERS)
                    for reply in replies:
                        results[kind] += reply
            else:
                # all entries at once, in another order in each worker: several locks held together
                jobs = [{"kinds": KINDS[i:] + KINDS[:i], "root": str(root), "log": str(log), "label": label}
                        for i in range(N_WORKERS)]
                for reply in workers.send([json.dumps(job) for job in jobs]):
                    for r in reply:
                        results[r["kind"]].append(r)
            counts = pretrain_counts(log, label)
            for kind in KINDS:
                if rnd == 0:  # an empty cache: each entry pretrained once, no warning
                    assert counts[kind] == 1, (label, kind, counts)
                    assert all(r["ok"] and r["digest"] == truths[kind] and not r["warnings"] for r in results[kind]), (
                        label, kind, results[kind])
                    continue
                check_kind(label, kind, results[kind], truths[kind], counts[kind], said.get(kind), root)
            check_cache(root, truths, label)
    finally:
        workers.close()


def _serialized(model: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


SWAPPER = r'''
import os, sys, time
path, a, b, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
blobs = [open(a, "rb").read(), open(b, "rb").read()]
print("ready", flush=True)
end, i = time.monotonic() + seconds, 0
while time.monotonic() < end:
    tmp = f"{path}.swap{i % 2}"
    with open(tmp, "wb") as f:
        f.write(blobs[i % 2])
    os.replace(tmp, path)
    i += 1
print(i)
'''


def test_a_reader_loads_exactly_the_bytes_it_verified_while_the_file_is_replaced(tmp_path):
    """Another process keeps replacing the weights file, alternately with A and B; a reader that
    asks for A's SHA-256 gets A or a WeightsError, never B (which a check-then-reopen could load)."""
    torch.set_num_threads(1)
    a = SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=1)
    b = SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=2)
    (tmp_path / "a.pt").write_bytes(_serialized(a))
    (tmp_path / "b.pt").write_bytes(_serialized(b))
    sha_a = hashlib.sha256(_serialized(a)).hexdigest()
    path = tmp_path / "w.pt"
    path.write_bytes(_serialized(a))
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(path), str(tmp_path / "a.pt"),
                                str(tmp_path / "b.pt"), str(RACE_SECONDS)], stdout=subprocess.PIPE, text=True)
    assert swapper.stdout.readline() == "ready\n"
    loaded = rejected = 0
    try:
        while swapper.poll() is None:
            model = SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=3)
            try:
                assert models.load_weights(model, path, sha256=sha_a) == sha_a
            except WeightsError as exc:
                assert "SHA-256 mismatch" in str(exc), exc
                rejected += 1
                continue
            assert state_digest(model) == state_digest(a), "loaded other weights than the ones verified"
            loaded += 1
    finally:
        swapper.wait(timeout=30)
    swaps = int(swapper.stdout.read())
    assert swaps > 100 and loaded > 0 and rejected > 0, (swaps, loaded, rejected)


WRITER = r'''
import sys, time, torch
from course_utils import models
from course_utils.models import SmallCNN
torch.set_num_threads(1)
path, seconds = sys.argv[1], float(sys.argv[2])
nets = [SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=s) for s in (1, 2)]
print("ready", flush=True)
end, i = time.monotonic() + seconds, 0
while time.monotonic() < end:
    models.save_weights(nets[i % 2], path, config={"seed": 1 + i % 2})
    i += 1
print(i)
'''


def test_a_reader_never_accepts_a_record_that_does_not_match_while_weights_are_saved(tmp_path):
    """Another process keeps saving A and B (weights, then record) to the same path; every load that
    succeeds holds A or B exactly, with the digest and configuration of what it loaded."""
    torch.set_num_threads(1)
    nets = {1: SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=1),
            2: SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=2)}
    weights = {s: state_digest(m) for s, m in nets.items()}
    sha = {s: models.save_weights(m, tmp_path / f"ref{s}.pt") for s, m in nets.items()}
    path = tmp_path / "w.pt"
    models.save_weights(nets[1], path, config={"seed": 1})
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(RACE_SECONDS)], stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline() == "ready\n"
    seen = {1: 0, 2: 0}
    rejected = 0
    try:
        while writer.poll() is None:
            model = SmallCNN(num_classes=3, channels=(2, 4), feature_dim=8, seed=3)
            wanted = 1 + (sum(seen.values()) + rejected) % 2  # ask for A and B in turn
            try:
                digest = models.load_weights(model, path, config={"seed": wanted})
            except WeightsError as exc:  # the other one was there, or a save was between its two renames
                assert "SHA-256 mismatch" in str(exc) or "another configuration" in str(exc), exc
                rejected += 1
                continue
            assert state_digest(model) == weights[wanted], "loaded weights that do not match the record"
            assert digest == sha[wanted]
            seen[wanted] += 1
    finally:
        writer.wait(timeout=30)
    saves = int(writer.stdout.read())
    assert saves > 20 and seen[1] > 0 and seen[2] > 0 and rejected > 0, (saves, seen, rejected)
    assert not list(tmp_path.glob(".*.part")), "every save renames its temporary files away"
