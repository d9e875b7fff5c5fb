"""Issue 13, kind 3: every error of the data layer says what and where.

Each message names the dataset (when there is one), the file, the place (path or URL) and what
to do; a missing file is reported as missing, not as corrupted or truncated; the offline message
lists no "URLs tried" when none were tried. Table-driven over the kinds of bad content and over
the places (COURSE_DATA mirror, user cache, system folder, download).
"""
from __future__ import annotations

import dataclasses
import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from course_utils import cache as cache_io  # reads every file (tests patch its open)
from course_utils import data
from test_data_support import (  # noqa: F401  (tiny_idx, file_server are fixtures)
    IDX_NAMES,
    closed_port_url,
    copy_to,
    file_server,
    gz,
    idx_bytes,
    tiny_idx,
)

IMAGES = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
GOOD = idx_bytes(IMAGES)

# (case, file bytes, expected_magic, pattern the message must contain after the path)
IDX_CASES = [
    ("empty file", b"", None, r"0 bytes is too short for an IDX header"),
    ("2 bytes", b"\x00\x00", None, r"2 bytes is too short for an IDX header"),
    ("header cut inside the dimensions", b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", None,
     r"10 bytes is too short for an IDX header with 3 dimensions \(16 bytes\); the file is truncated"),
    ("float IDX, not unsigned bytes", b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4, None,
     r"magic number 0x00000d01 is not that of an unsigned-byte IDX file"),
    ("not IDX at all", b"<html>Not Found</html>", None, r"magic number 0x3c68746d is not that of an unsigned-byte IDX"),
    ("labels file where images are expected", idx_bytes(np.zeros(5, np.uint8)), 0x803,
     r"magic 0x00000801, expected 0x00000803 \(images, 3 dimensions\)"),
    ("zero dimensions", b"\x00\x00\x08\x00", None, r"the IDX header declares 0 dimensions"),
    ("body truncated", GOOD[:-5], None, r"1,579 bytes, but its header \(2, 28, 28\) needs 1,584: truncated"),
    ("body padded", GOOD + b"\x00" * 3, None, r"1,587 bytes, but its header \(2, 28, 28\) needs 1,584: padded"),
]


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("case,blob,magic,pattern", IDX_CASES, ids=[c[0] for c in IDX_CASES])
def test_read_idx_names_the_file_the_problem_and_what_to_do(tmp_path, case, blob, magic, pattern, compressed):
    path = tmp_path / ("bad.idx.gz" if compressed else "bad.idx")
    path.write_bytes(gz(blob) if compressed else blob)
    with pytest.raises(data.ChecksumError) as err:  # never a bare struct.error
        data.read_idx(path, magic)
    msg = str(err.value)
    assert msg.startswith(f"{path}: "), msg
    assert re.search(pattern, msg), (pattern, msg)
    assert "Replace it with a good copy" in msg


@pytest.mark.parametrize("damage,pattern", [
    ("truncated", r"is truncated: its gzip stream ends before the end-of-stream marker"),
    ("crc", r"is corrupted: not a valid gzip stream \(CRC check failed"),
])
def test_read_idx_tells_a_truncated_gzip_from_a_corrupted_one(tmp_path, damage, pattern):
    packed = bytearray(gz(GOOD))
    if damage == "truncated":
        packed = packed[:-30]
    else:
        packed[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path = tmp_path / "x.idx.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(data.ChecksumError, match=re.escape(str(path)) + " " + pattern):
        data.read_idx(path)


def _unreadable(path: Path, how: str, monkeypatch):
    if how == "missing":
        return FileNotFoundError, r"no such file\. Check the path"
    if how == "a folder":
        path.mkdir()
        return IsADirectoryError, r"is a folder, not a file"
    real_open = open  # as root, chmod cannot make a file unreadable: simulate what the OS answers

    def guarded(p, *a, **k):
        if Path(p) == path:
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *a, **k)

    path.write_bytes(b"x")
    monkeypatch.setattr(cache_io, "open", guarded, raising=False)
    return PermissionError, r"permission denied \(Permission denied\)\. Make it readable \(chmod a\+r\)"


@pytest.mark.parametrize("how", ["missing", "a folder", "permission denied"])
@pytest.mark.parametrize("reader", ["read_idx", "read_sign_mnist_csv"])
def test_public_readers_say_missing_or_unreadable_never_corrupted(tmp_path, monkeypatch, reader, how):
    path = tmp_path / ("f.idx.gz" if reader == "read_idx" else "f.csv")
    exc_type, pattern = _unreadable(path, how, monkeypatch)
    with pytest.raises(exc_type) as err:
        getattr(data, reader)(path)
    msg = str(err.value)
    assert str(path) in msg and re.search(pattern, msg), msg
    assert "corrupted" not in msg and "truncated" not in msg


HEADER = ",".join(["label"] + [f"pixel{i}" for i in range(1, 785)])
ROW = ",".join(["3"] + ["7"] * 784)
CSV_CASES = [
    ("empty file", b"", None, r"not a readable Sign Language MNIST CSV \(No columns to parse"),
    ("binary garbage", gzip.compress(b"x" * 100), None, r"not a readable Sign Language MNIST CSV"),
    ("wrong header", b"a,b,c\n1,2,3\n", None, r"expected the 785 columns label,pixel1..pixel784, got 3 columns"),
    ("a word in a pixel", f"{HEADER}\n{ROW[:-1]}x\n".encode(), None, r"not a readable Sign Language MNIST CSV"),
    ("too few rows", f"{HEADER}\n{ROW}\n".encode(), 2, r"1 rows, expected 2: truncated or not the original file"),
    ("label 9 (J)", f"{HEADER}\n9{ROW[1:]}\n".encode(), None, r"labels \[9\] are invalid"),
    ("pixel 300", f"{HEADER}\n{ROW[:-1]}300\n".encode(), None, r"pixel values outside 0..255"),
]


@pytest.mark.parametrize("case,blob,rows,pattern", CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_read_sign_mnist_csv_names_the_file_the_problem_and_what_to_do(tmp_path, case, blob, rows, pattern):
    path = tmp_path / "sign.csv"
    path.write_bytes(blob)
    with pytest.raises(data.ChecksumError) as err:
        data.read_sign_mnist_csv(path, expected_rows=rows)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and re.search(pattern, msg), msg
    assert "Replace it with a good copy" in msg


# --------------------------------------------------------------------------- in the look-up: every place
PLACES = ["COURSE_DATA mirror", "user cache", "system dataset folder", "download"]
# Files whose registry entry pins no checksum are verified by their structure alone; these bad
# contents then reach the parser inside load(), which must name the dataset, file and place.
BAD_CONTENT = {
    "too short for a header": (b"\x00\x00\x08\x03\x00\x00", r"too short for an IDX header with 3 dimensions"),
    "labels where images belong": (idx_bytes(np.zeros(30, np.uint8)), r"magic 0x00000801, expected 0x00000803"),
    "body truncated": (GOOD[:-5], r"needs 1,584: truncated"),
    "too few images": (GOOD, r"holds 2 images, expected 30"),
}
HINTS = {
    "COURSE_DATA mirror": "Not used; looking elsewhere. To repair the mirror, replace the file",
    "user cache": "Deleted the cached copy; it will be fetched again",
    "system dataset folder": "Not used; looking elsewhere. To repair it, reinstall the system package",
    "download": "Not used: failed verification; trying the next URL",
}


def _put(tiny, label, monkeypatch) -> tuple[Path, str]:
    """Copy the tiny dataset into the place ``label``; returns (folder, how the place is written in messages)."""
    tmp = tiny["tmp"]
    folder = {"COURSE_DATA mirror": tmp / "mirror", "user cache": tmp / "cache" / "data",
              "system dataset folder": tmp / "system", "download": tmp / "www"}[label] / "fashion-mnist"
    copy_to(tiny["src"], folder)
    if label == "COURSE_DATA mirror":
        monkeypatch.setenv("COURSE_DATA", str(tmp / "mirror"))
    if label == "download":
        data.DATASETS["fashion-mnist"] = dataclasses.replace(data.DATASETS["fashion-mnist"], urls=(folder.as_uri() + "/",))
    else:
        data.DATASETS["fashion-mnist"] = dataclasses.replace(data.DATASETS["fashion-mnist"], urls=(closed_port_url(),))
    return folder, (f"downloaded from {folder.as_uri()}/" if label == "download" else f"in the {label} ({folder}/")


@pytest.mark.parametrize("kind", list(BAD_CONTENT))
@pytest.mark.parametrize("label", PLACES)
def test_bad_content_in_any_place_is_named_with_dataset_file_place_and_what_to_do(tiny_idx, monkeypatch, label, kind):
    unpinned = {r: dataclasses.replace(fs, sha256=None, raw_sha256=None) for r, fs in tiny_idx["spec"].files.items()}
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], files=unpinned)
    folder, where = _put(tiny_idx, label, monkeypatch)
    name = IDX_NAMES["train_images"]
    blob, pattern = BAD_CONTENT[kind]
    (folder / name).write_bytes(gz(blob))
    with pytest.warns(data.DataWarning) as caught:
        with pytest.raises(data.DatasetNotFoundError) as err:
            data.load("fashion-mnist", progress=False)
    warned = [str(w.message) for w in caught if name in str(w.message)]
    assert len(warned) == 1, [str(w.message) for w in caught]
    for msg in (warned[0], str(err.value)):
        assert f"Fashion-MNIST file {name} {where}" in msg, (where, msg)
        assert re.search(pattern, msg), (pattern, msg)
        assert HINTS[label] in msg, msg
    assert str(err.value).startswith("Dataset 'Fashion-MNIST' (fashion-mnist) was not found.\nFiles needed: ")
    assert "To fix: " in str(err.value)


@pytest.mark.parametrize("label", ["COURSE_DATA mirror", "user cache", "system dataset folder"])
def test_missing_truncated_and_corrupted_are_told_apart(tiny_idx, monkeypatch, label):
    folder, _ = _put(tiny_idx, label, monkeypatch)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    names = IDX_NAMES
    (folder / names["train_images"]).unlink()
    labels = folder / names["train_labels"]
    labels.write_bytes(labels.read_bytes()[:-10])
    images = folder / names["test_images"]
    blob = bytearray(images.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    images.write_bytes(bytes(blob))
    with pytest.warns(data.DataWarning) as caught:
        with pytest.raises(data.DatasetNotFoundError) as err:
            data.load("fashion-mnist")
    msg = str(err.value)
    line = next(ln for ln in msg.splitlines() if ln.startswith(f"  - {label}: {folder}: "))
    assert line.endswith(f"{names['train_images']} missing, {names['train_labels']} rejected (truncated), "
                         f"{names['test_images']} rejected (corrupted), {names['test_labels']} verified (sha256)"), line
    texts = [str(w.message) for w in caught]
    assert not any(names["train_images"] in t for t in texts), texts  # a missing file is not a problem to warn about
    assert any(names["train_labels"] in t and " is truncated (SHA-256 mismatch" in t for t in texts), texts
    assert any(names["test_images"] in t and " is corrupted (" in t for t in texts), texts
    if label == "user cache":
        assert not labels.exists() and not images.exists()  # deleted: they will be fetched again
    else:
        assert labels.exists() and images.exists()  # not ours to delete


# --------------------------------------------------------------------------- downloading off, URLs tried
@pytest.mark.parametrize("how,off,turn_on", [
    ("COURSE_OFFLINE=1", "COURSE_OFFLINE=1", "unset COURSE_OFFLINE or set it to 0"),
    ("COURSE_OFFLINE=true", "COURSE_OFFLINE=true", "unset COURSE_OFFLINE or set it to 0"),
    ("download=False", "download=False", "call data.load() without download=False"),
])
def test_with_downloading_off_no_url_is_listed_as_tried(tiny_idx, monkeypatch, how, off, turn_on):
    monkeypatch.setattr(data, "_download", lambda *a, **k: pytest.fail("must not download"))
    kwargs = {}
    if how.startswith("COURSE_OFFLINE"):
        monkeypatch.setenv("COURSE_OFFLINE", how.split("=")[1])
    else:
        kwargs["download"] = False
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("fashion-mnist", **kwargs)
    msg = str(err.value)
    assert "URLs tried" not in msg
    assert f"Downloading was off ({off}), so no URL was tried" in msg
    assert f"turn downloading on ({turn_on})" in msg
    assert tiny_idx["src"].as_uri() + "/train-images-idx3-ubyte.gz" in msg  # where it would download from


def test_an_unknown_course_offline_value_warns_and_keeps_downloads_off(tiny_idx, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "maybe")
    with pytest.warns(data.DataWarning, match=r"COURSE_OFFLINE='maybe' is not one of .* taken as 1"):
        with pytest.raises(data.DatasetNotFoundError, match=r"Downloading was off \(COURSE_OFFLINE=maybe\)"):
            data.load("fashion-mnist")


@pytest.mark.parametrize("with_course_data_url", [False, True])
def test_urls_tried_lists_exactly_the_urls_tried_and_their_answers(tiny_idx, monkeypatch, file_server, with_course_data_url):
    server = file_server.serve(file_server.root)  # an empty folder: every file answers 404
    refused = closed_port_url()
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], urls=(refused, server.url + "/mirror/"))
    name = IDX_NAMES["train_images"]
    expected = [f"  - {refused}{name}: cannot connect (", f"  - {server.url}/mirror/{name}: HTTP 404 "]
    if with_course_data_url:
        monkeypatch.setenv("COURSE_DATA_URL", server.url + "/classroom")
        expected.insert(0, f"  - {server.url}/classroom/fashion-mnist/{name}: HTTP 404 ")
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("fashion-mnist", progress=False)
    lines = str(err.value).splitlines()
    start = lines.index("URLs tried:") + 1
    tried = [ln for ln in lines[start:] if ln.startswith("  - ")][: len(expected) + 1]
    assert len(tried) == len(expected) or not tried[len(expected)].startswith("  - http"), tried
    for got, want in zip(tried, expected):
        assert got.startswith(want), (got, want)
    assert "connect to the internet and load again, or set COURSE_DATA_URL" in str(err.value)


# --------------------------------------------------------------------------- names, and what the chapters print
def test_unknown_and_non_string_names_say_what_to_pass():
    with pytest.raises(ValueError) as err:
        data.load("cifar10")
    assert str(err.value) == ("unknown dataset 'cifar10'; valid names: fashion-mnist, mnist, sign-mnist. Pass one of "
                              "these (course_utils.data.names() lists them).")
    with pytest.raises(TypeError, match=r"dataset name must be a string such as 'fashion-mnist', got int 3; valid names"):
        data.load(3)


def test_the_first_two_lines_chapter_0_prints_are_unchanged(monkeypatch, tmp_path):
    """notebooks/00_data.py prints the first two lines of this error; its stored output must still match."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIRS", (tmp_path / "system",))
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("sign-mnist")
    assert str(err.value).splitlines()[:2] == ["Dataset 'Sign Language MNIST' (sign-mnist) was not found.",
                                               "Files needed: sign_mnist_train.csv, sign_mnist_test.csv"]
    assert "  - COURSE_DATA mirror: not searched (COURSE_DATA is not set)" in str(err.value)
