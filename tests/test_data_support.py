"""Shared helpers for the data-layer tests (``tests/test_data*.py``); this module holds no tests.

- ``make_tiny_idx``: small IDX datasets written as gzip files, with their registry entry;
- the ``tiny_idx`` fixture: such a dataset registered as 'fashion-mnist', with the cache, the
  mirror and the system folder moved under ``tmp_path``;
- the ``file_server`` fixture: a local HTTP server (``http.server`` on 127.0.0.1) serving a folder,
  counting requests per path and able to answer an error or break off a chosen file.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import struct
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from course_utils import data

IDX_NAMES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
             "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}


def idx_bytes(arr: np.ndarray) -> bytes:
    magic = 0x0800 | arr.ndim
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def gz(raw: bytes, mtime: int = 0, name: str | None = None) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=buf, mtime=mtime) as f:
        f.write(raw)
    return buf.getvalue()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def digest(a: np.ndarray) -> str:
    """Dtype, shape and SHA-256 of the bytes: equal digests mean equal arrays."""
    return f"{a.dtype}{a.shape}{sha(np.ascontiguousarray(a).tobytes())}"


def make_tiny_idx(folder: Path, n_train: int = 30, n_test: int = 9, seed: int = 0, base: str = "fashion-mnist"):
    """Write a 3-class IDX dataset (gzip, original-style headers) into ``folder``.

    Returns ``(arrays by role, registry entry based on `base` with these files' checksums)``.
    """
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 3).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 3).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, arr in arrays.items():
        raw = idx_bytes(arr)
        packed = gz(raw, mtime=1504176606, name=IDX_NAMES[role][:-3])
        (folder / IDX_NAMES[role]).write_bytes(packed)
        files[role] = data.FileSpec(IDX_NAMES[role], sha(packed), sha(raw), len(packed))
    spec = dataclasses.replace(data.DATASETS[base], files=files, urls=(folder.as_uri() + "/",),
                               classes=("a", "b", "c"), expected_counts=(n_train, n_test))
    return arrays, spec


@pytest.fixture
def tiny_idx(tmp_path, monkeypatch):
    """A 3-class IDX dataset named 'fashion-mnist' in the registry, with its files in tmp_path/source
    (its only URL, as file://). Cache: tmp_path/cache; system folder: tmp_path/system; no mirror."""
    src = tmp_path / "source"
    arrays, spec = make_tiny_idx(src)
    monkeypatch.setitem(data.DATASETS, "fashion-mnist", spec)
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    for var in ("COURSE_DATA", "COURSE_OFFLINE", "COURSE_DATA_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIRS", (tmp_path / "system",))
    return {"src": src, "arrays": arrays, "names": dict(IDX_NAMES), "spec": spec, "tmp": tmp_path,
            "cache": tmp_path / "cache" / "data" / "fashion-mnist"}


def copy_to(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            (dest / f.name).write_bytes(f.read_bytes())
    return dest


def check_arrays(ds: data.Dataset, arrays: dict) -> None:
    np.testing.assert_array_equal(ds.X_train, arrays["train_images"])
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(ds.X_test, arrays["test_images"])
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])
    assert ds.X_train.dtype == np.uint8 and ds.y_train.dtype == np.int64


# --------------------------------------------------------------------------- a local file server
class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        srv = self.server
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        with srv.count_lock:
            srv.counts[path] += 1
        if srv.delay_s:
            time.sleep(srv.delay_s)
        rule = srv.rules.get(path)
        if rule is not None and rule[0] == "status":
            self.send_error(rule[1])
            return
        if rule is not None and rule[0] == "cut":  # announce the whole file, send only the first bytes
            body = (Path(srv.root) / path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: rule[1]])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


class FileServer:
    """``http.server`` on 127.0.0.1 serving ``root`` in a thread.

    ``counts[path]`` counts GET requests per URL path; ``rules[path] = ("status", 404)`` answers an
    error, ``("cut", n)`` announces the whole file and sends only ``n`` bytes; ``delay_s`` delays
    every answer (to widen race windows).
    """

    def __init__(self, root: Path):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.httpd.root = str(root)
        self.httpd.counts = collections.Counter()
        self.httpd.count_lock = threading.Lock()
        self.httpd.rules = {}
        self.httpd.delay_s = 0.0
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def counts(self) -> collections.Counter:
        return self.httpd.counts

    @property
    def rules(self) -> dict:
        return self.httpd.rules

    def set_delay(self, seconds: float) -> None:
        self.httpd.delay_s = seconds

    def reset_counts(self) -> None:
        with self.httpd.count_lock:
            self.httpd.counts.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def file_server(tmp_path):
    """Start a FileServer on an empty folder ``tmp_path/www``; call ``.serve(root)`` for another folder."""
    servers = []

    class Factory:
        root = tmp_path / "www"

        def serve(self, root: Path) -> FileServer:
            srv = FileServer(root)
            servers.append(srv)
            return srv

    (tmp_path / "www").mkdir()
    yield Factory()
    for srv in servers:
        srv.close()


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused at once, no network used)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
