"""The data layer, tested on small IDX and CSV files the tests write.

The registry's real checksums are swapped for the checksums of these small files, so every
path of the loader (mirror, cache, system folder with rewritten gzip headers, download from
file:// URLs, corruption, truncation, offline) runs here without the real datasets.
"""
from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from course_utils import data


from test_data_support import closed_port_url, copy_to, gz, idx_bytes, sha, tiny_idx  # noqa: F401  (tiny_idx is a fixture)


# --------------------------------------------------------------------------- registry and names
def test_registry_has_the_three_datasets_with_checksums():
    assert data.names() == ["fashion-mnist", "mnist", "sign-mnist"]
    for spec in data.DATASETS.values():
        assert spec.urls and all(u.endswith("/") for u in spec.urls)
        for fs in spec.files.values():
            assert fs.sha256 and len(fs.sha256) == 64
    assert len(data.DATASETS["sign-mnist"].classes) == 24
    assert "J" not in data.DATASETS["sign-mnist"].classes and "Z" not in data.DATASETS["sign-mnist"].classes


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; valid names: fashion-mnist, mnist, sign-mnist"):
        data.load("cifar10")


def test_aliases_are_accepted(tiny_idx, monkeypatch):
    copy_to(tiny_idx["src"], tiny_idx["tmp"] / "mirror" / "fashion-mnist")
    monkeypatch.setenv("COURSE_DATA", str(tiny_idx["tmp"] / "mirror"))
    assert data.load("fashion_mnist").name == "fashion-mnist"


# --------------------------------------------------------------------------- look-up order
def test_loads_from_mirror_first(tiny_idx, monkeypatch):
    copy_to(tiny_idx["src"], tiny_idx["tmp"] / "mirror" / "fashion-mnist")
    monkeypatch.setenv("COURSE_DATA", str(tiny_idx["tmp"] / "mirror"))
    monkeypatch.setattr(data, "_download", lambda *a, **k: pytest.fail("must not download"))
    ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "COURSE_DATA mirror"
    assert ds.X_train.dtype == np.uint8 and ds.X_train.shape == (30, 28, 28)
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.X_train, tiny_idx["arrays"]["train_images"])
    np.testing.assert_array_equal(ds.y_test, tiny_idx["arrays"]["test_labels"])
    assert ds.classes == ["a", "b", "c"] and ds.num_classes == 3
    assert ds.note() == "Data: Fashion-MNIST (30 train / 9 test images, 3 classes)."
    assert list(ds.counts()["train"]) == [10, 10, 10]


def test_system_folder_with_rewritten_gzip_headers_verifies_by_content(tiny_idx):
    """Debian's copy has other gzip headers (no FNAME, other mtime): other bytes, same content."""
    sysdir = tiny_idx["tmp"] / "system" / "fashion-mnist"
    sysdir.mkdir(parents=True)
    for role, name in tiny_idx["names"].items():
        raw = gzip.decompress((tiny_idx["src"] / name).read_bytes())
        rewritten = gz(raw, mtime=1590000000)
        assert sha(rewritten) != tiny_idx["spec"].files[role].sha256
        (sysdir / name).write_bytes(rewritten)
    ds = data.load("fashion-mnist", download=False)
    assert ds.source == "system dataset folder"
    np.testing.assert_array_equal(ds.X_test, tiny_idx["arrays"]["test_images"])


def test_uncompressed_copy_verifies_by_raw_checksum(tiny_idx, monkeypatch):
    mirror = tiny_idx["tmp"] / "mirror" / "fashion-mnist"
    mirror.mkdir(parents=True)
    for name in tiny_idx["names"].values():
        (mirror / name[:-3]).write_bytes(gzip.decompress((tiny_idx["src"] / name).read_bytes()))
    monkeypatch.setenv("COURSE_DATA", str(tiny_idx["tmp"] / "mirror"))
    ds = data.load("fashion-mnist", download=False)
    np.testing.assert_array_equal(ds.X_train, tiny_idx["arrays"]["train_images"])


# --------------------------------------------------------------------------- download
def test_download_writes_verified_files_into_the_cache(tiny_idx):
    ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "download"
    cache = tiny_idx["tmp"] / "cache" / "data" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(tiny_idx["names"].values())  # no .part left behind
    # the second load finds the cache and does not download
    ds2 = data.load("fashion-mnist", progress=False)
    assert ds2.source == "user cache"


def test_corrupted_download_is_rejected_and_never_renamed_into_place(tiny_idx):
    bad = tiny_idx["tmp"] / "badsource"
    copy_to(tiny_idx["src"], bad)
    name = tiny_idx["names"]["train_images"]
    blob = bytearray((bad / name).read_bytes())
    blob[100] ^= 0xFF
    (bad / name).write_bytes(bytes(blob))
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], urls=(bad.as_uri() + "/",))
    with pytest.warns(data.DataWarning, match=r"train-images-idx3-ubyte\.gz downloaded from file://.* is corrupted "
                      r"\(SHA-256 mismatch.*Not used: failed verification; trying the next URL"):
        with pytest.raises(data.DatasetNotFoundError) as err:
            data.load("fashion-mnist", progress=False)
    msg = str(err.value)
    assert "failed verification" in msg and name in msg and "SHA-256 mismatch" in msg
    cache = tiny_idx["tmp"] / "cache" / "data" / "fashion-mnist"
    assert not (cache / name).exists()
    assert not list(cache.glob("*.part"))


def test_second_url_used_when_first_is_corrupt(tiny_idx):
    bad = tiny_idx["tmp"] / "badsource"
    copy_to(tiny_idx["src"], bad)
    for f in bad.iterdir():
        f.write_bytes(f.read_bytes()[:50])  # truncated everywhere
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], urls=(bad.as_uri() + "/", tiny_idx["src"].as_uri() + "/"))
    with pytest.warns(data.DataWarning, match=r"is truncated \(SHA-256 mismatch.*trying the next URL"):
        ds = data.load("fashion-mnist", progress=False)
    np.testing.assert_array_equal(ds.X_train, tiny_idx["arrays"]["train_images"])


# --------------------------------------------------------------------------- corruption and truncation
def test_truncated_cache_file_is_named_deleted_and_refetched(tiny_idx):
    data.load("fashion-mnist", progress=False)  # fill the cache
    cached = tiny_idx["tmp"] / "cache" / "data" / "fashion-mnist" / tiny_idx["names"]["test_images"]
    cached.write_bytes(cached.read_bytes()[:-200])
    with pytest.warns(UserWarning, match=r"t10k-images-idx3-ubyte\.gz.*SHA-256 mismatch.*fetched again"):
        ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "download"
    assert sha(cached.read_bytes()) == tiny_idx["spec"].files["test_images"].sha256
    np.testing.assert_array_equal(ds.X_test, tiny_idx["arrays"]["test_images"])


def test_corrupted_mirror_file_is_named_and_skipped_not_used(tiny_idx, monkeypatch):
    mirror = copy_to(tiny_idx["src"], tiny_idx["tmp"] / "mirror" / "fashion-mnist")
    name = tiny_idx["names"]["train_labels"]
    blob = bytearray((mirror / name).read_bytes())
    blob[-12] ^= 0x01
    (mirror / name).write_bytes(bytes(blob))
    monkeypatch.setenv("COURSE_DATA", str(tiny_idx["tmp"] / "mirror"))
    with pytest.warns(UserWarning, match=r"train-labels-idx1-ubyte\.gz.*Not used"):
        ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "download"  # fell through to a verified copy
    assert (mirror / name).exists()  # a mirror is not ours to delete


def test_wrong_checksum_in_registry_rejects_even_a_good_file(tiny_idx, monkeypatch):
    mirror = copy_to(tiny_idx["src"], tiny_idx["tmp"] / "mirror" / "fashion-mnist")
    files = dict(tiny_idx["spec"].files)
    files["test_labels"] = dataclasses.replace(files["test_labels"], sha256="0" * 64, raw_sha256="1" * 64)
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], files=files)
    monkeypatch.setenv("COURSE_DATA", str(mirror.parent))
    with pytest.warns(UserWarning, match="SHA-256 mismatch"):
        with pytest.raises(data.DatasetNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
            data.load("fashion-mnist", progress=False)


def test_read_idx_detects_truncation_and_bad_magic(tmp_path):
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    good = tmp_path / "x.idx"
    good.write_bytes(idx_bytes(arr))
    np.testing.assert_array_equal(data.read_idx(good, 0x803), arr)
    short = tmp_path / "short.idx"
    short.write_bytes(idx_bytes(arr)[:-5])
    with pytest.raises(data.ChecksumError, match=r"short\.idx.*truncated"):
        data.read_idx(short)
    with pytest.raises(data.ChecksumError, match="magic 0x00000803, expected 0x00000801"):
        data.read_idx(good, 0x801)
    broken_gz = tmp_path / "x.idx.gz"
    broken_gz.write_bytes(gz(idx_bytes(arr))[:-30])
    with pytest.raises(data.ChecksumError, match=r"x\.idx\.gz is truncated: its gzip stream ends"):
        data.read_idx(broken_gz)


# --------------------------------------------------------------------------- offline
def test_offline_error_names_dataset_files_places_and_urls(tiny_idx, monkeypatch):
    nowhere = closed_port_url() + "fm/"  # nothing listens there: connection refused, no network used
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], urls=(nowhere,))
    monkeypatch.setenv("COURSE_DATA", str(tiny_idx["tmp"] / "empty-mirror"))
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("fashion-mnist", progress=False)
    msg = str(err.value)
    for needle in ("Fashion-MNIST", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "COURSE_DATA mirror",
                   "user cache", "system dataset folder", nowhere + "train-images-idx3-ubyte.gz", "To fix"):
        assert needle in msg, needle


def test_course_offline_skips_download(tiny_idx, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(data, "_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(data.DatasetNotFoundError, match="COURSE_OFFLINE=1"):
        data.load("fashion-mnist")


# --------------------------------------------------------------------------- stand-ins
def test_stand_in_is_fashion_mnist_when_reachable(tiny_idx, monkeypatch):
    copy_to(tiny_idx["src"], tiny_idx["tmp"] / "mirror" / "fashion-mnist")
    monkeypatch.setenv("COURSE_DATA", str(tiny_idx["tmp"] / "mirror"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(data.DatasetNotFoundError, match="Sign Language MNIST"):
        data.load("sign-mnist")
    ds = data.load("sign-mnist", stand_in=True)
    assert ds.name == "fashion-mnist" and ds.stand_in_for == "sign-mnist" and ds.is_stand_in
    assert ds.note().startswith("STAND-IN DATA: Sign Language MNIST could not be found")
    assert "Every result below is for Fashion-MNIST" in ds.note()


def test_stand_in_falls_back_to_sklearn_digits(tiny_idx, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    ds = data.load("mnist", stand_in=True)
    assert ds.name == "digits-8x8" and ds.stand_in_for == "mnist"
    assert ds.X_train.shape[1:] == (28, 28) and ds.X_train.dtype == np.uint8
    assert len(ds.y_train) + len(ds.y_test) == 1797
    assert ds.X_train.max() == 255 and ds.classes == [str(d) for d in range(10)]
    assert "STAND-IN" in ds.note() and "MNIST" in ds.note()


# --------------------------------------------------------------------------- Sign Language MNIST CSV
def write_sign_csv(path: Path, labels, rng, pixels=None, header=None, newline="\n"):
    header = header or ",".join(["label"] + [f"pixel{i}" for i in range(1, 785)])
    pixels = rng.integers(0, 256, (len(labels), 784)) if pixels is None else pixels
    lines = [header] + [",".join(map(str, [lab, *row])) for lab, row in zip(labels, pixels)]
    path.write_text(newline.join(lines) + newline)
    return pixels


def test_show_note_prints_the_note_or_displays_a_stand_in_box(capsys, monkeypatch):
    X, y = np.zeros((4, 28, 28), np.uint8), np.array([0, 1, 0, 1])
    real = data.Dataset("mnist", "MNIST", X, y, X, y, ["0", "1"])
    data.show_note(real)
    assert capsys.readouterr().out == real.note() + "\n" == "Data: MNIST (4 train / 4 test images, 2 classes).\n"

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    stand_in = data.Dataset("digits-8x8", "digits <8x8>", X, y, X, y, ["0", "1"], stand_in_for="sign-mnist")
    data.show_note(stand_in)
    assert capsys.readouterr().out == ""
    (obj, raw), = shown
    assert raw and obj["text/plain"] == stand_in.note() and obj["text/plain"].startswith("STAND-IN DATA: Sign Language")
    box = obj["text/html"]
    assert box.startswith('<div class="admonition warning"') and box.endswith("</div>")
    assert "Stand-in data: this page ran on digits &lt;8x8&gt;, not Sign Language MNIST" in box  # escaped
    assert "<8x8>" not in box and "downloads Sign Language MNIST and the same code runs on it" in box


def test_sign_csv_reader_remaps_labels_and_checks_content(tmp_path):
    rng = np.random.default_rng(1)
    labels = [0, 8, 10, 24, 3]
    f = tmp_path / "s.csv"
    pixels = write_sign_csv(f, labels, rng)
    X, y = data.read_sign_mnist_csv(f)
    assert X.shape == (5, 28, 28) and X.dtype == np.uint8
    np.testing.assert_array_equal(X.reshape(5, -1), pixels)
    assert y.tolist() == [0, 8, 9, 23, 3]  # 10 (K) -> 9, 24 (Y) -> 23
    assert [data.SIGN_LETTERS[i] for i in y] == ["A", "I", "K", "Y", "D"]
    with pytest.raises(data.ChecksumError, match=r"s\.csv: 5 rows, expected 6"):
        data.read_sign_mnist_csv(f, expected_rows=6)
    write_sign_csv(f, [0, 9], rng)
    with pytest.raises(data.ChecksumError, match=r"labels \[9\] are invalid"):
        data.read_sign_mnist_csv(f)
    write_sign_csv(f, [0], rng, pixels=np.full((1, 784), 300))
    with pytest.raises(data.ChecksumError, match="outside 0..255"):
        data.read_sign_mnist_csv(f)
    write_sign_csv(f, [0], rng, header="label," + ",".join(f"p{i}" for i in range(784)))
    with pytest.raises(data.ChecksumError, match="expected the 785 columns"):
        data.read_sign_mnist_csv(f)


@pytest.fixture
def tiny_sign(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    src = tmp_path / "signsrc"
    src.mkdir()
    write_sign_csv(src / "sign_mnist_train.csv", [0, 1, 2, 10, 24, 24], rng)
    write_sign_csv(src / "sign_mnist_test.csv", [3, 4], rng)
    files = {"train": data.FileSpec("sign_mnist_train.csv", sha((src / "sign_mnist_train.csv").read_bytes())),
             "test": data.FileSpec("sign_mnist_test.csv", sha((src / "sign_mnist_test.csv").read_bytes()))}
    spec = dataclasses.replace(data.DATASETS["sign-mnist"], files=files, urls=(src.as_uri() + "/",), expected_counts=(6, 2))
    monkeypatch.setitem(data.DATASETS, "sign-mnist", spec)
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIRS", (tmp_path / "system",))
    return {"src": src, "spec": spec, "tmp": tmp_path}


def test_sign_mnist_downloads_verifies_and_loads(tiny_sign):
    ds = data.load("sign-mnist", progress=False)
    assert ds.title == "Sign Language MNIST" and not ds.is_stand_in
    assert ds.X_train.shape == (6, 28, 28) and ds.num_classes == 24
    assert [ds.classes[i] for i in ds.y_train] == ["A", "B", "C", "K", "Y", "Y"]


def test_sign_mnist_truncated_csv_is_refetched(tiny_sign):
    data.load("sign-mnist", progress=False)
    cached = tiny_sign["tmp"] / "cache" / "data" / "sign-mnist" / "sign_mnist_train.csv"
    cached.write_text("\n".join(cached.read_text().splitlines()[:3]) + "\n")
    with pytest.warns(UserWarning, match="sign_mnist_train.csv"):
        ds = data.load("sign-mnist", progress=False)
    assert len(ds.y_train) == 6


def test_sign_mnist_unverified_hash_mismatch_warns_but_uses_valid_file(tiny_sign):
    """The pinned CSV hashes are third-party and unverified: a structurally valid file with other
    bytes (CRLF line endings) is used with a warning; a damaged one is still rejected."""
    src = tiny_sign["src"]
    crlf = src / "sign_mnist_train.csv"
    crlf.write_bytes(crlf.read_bytes().replace(b"\n", b"\r\n"))
    files = {k: dataclasses.replace(v, sha256_verified=False) for k, v in tiny_sign["spec"].files.items()}
    data.DATASETS["sign-mnist"] = dataclasses.replace(tiny_sign["spec"], files=files)
    with pytest.warns(UserWarning, match="not verified; the file passed the structural checks"):
        ds = data.load("sign-mnist", progress=False)
    assert len(ds.y_train) == 6
    crlf.write_bytes(b"label,pixel1\n1,2\n")
    (tiny_sign["tmp"] / "cache" / "data" / "sign-mnist" / "sign_mnist_train.csv").unlink()
    with pytest.warns(data.DataWarning, match=r"sign_mnist_train\.csv downloaded from .*expected the 785 columns"):
        with pytest.raises(data.DatasetNotFoundError, match="failed verification"):
            data.load("sign-mnist", progress=False)


# --------------------------------------------------------------------------- split helper
def test_train_val_split_is_seeded_and_stratified():
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    X = np.arange(len(y))
    X_tr, X_val, y_tr, y_val = data.train_val_split(X, y, val_fraction=0.1, seed=3)
    assert len(X_val) == 100 and len(X_tr) == 900
    assert np.bincount(y_val).tolist() == [10, 20, 30, 40]
    assert set(X_tr).isdisjoint(X_val) and len(set(X_tr) | set(X_val)) == 1000
    again = data.train_val_split(X, y, val_fraction=0.1, seed=3)
    np.testing.assert_array_equal(again[1], X_val)
    other = data.train_val_split(X, y, val_fraction=0.1, seed=4)
    assert not np.array_equal(other[1], X_val)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
        data.train_val_split(X, y, val_fraction=1.5)
    with pytest.raises(ValueError, match="X has 1000 samples but y has 999"):
        data.train_val_split(X, y[:-1])
    with pytest.raises(ValueError, match=r"classes \[4\] have one sample each"):
        data.train_val_split(np.arange(1001), np.append(y, 4))
    with pytest.raises(ValueError, match="fewer than the 4 classes"):
        data.train_val_split(X, y, val_fraction=0.001)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        data.train_val_split(X, y, seed=-1)
    with pytest.raises(ValueError, match=r"one label per sample \(1-D\)"):
        data.train_val_split(X, y.reshape(-1, 1))
    # lists and tables are refused by name (a list cannot be indexed by an index array; a DataFrame's
    # [] would pick columns, not rows)
    import pandas as pd

    with pytest.raises(TypeError, match=r"X must be a NumPy array or a torch tensor, got list.*np.asarray\(X\)"):
        data.train_val_split(X.tolist(), y)
    with pytest.raises(TypeError, match="y must be a NumPy array or a torch tensor, got Series"):
        data.train_val_split(X, pd.Series(y))
    with pytest.raises(TypeError, match="X must be .* got DataFrame"):
        data.train_val_split(pd.DataFrame({"x": X}), y)


def test_train_val_split_is_scikit_learns_stratified_split_index_for_index():
    """The split written out with NumPy equals train_test_split(..., stratify=y): on random label sets and
    fractions, and where scikit-learn refuses a split, so does it."""
    import torch
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(150):
        k = int(rng.integers(2, 12))
        y = rng.integers(0, k, int(rng.integers(2 * k, 600)))
        frac = float(rng.choice([0.1, 0.2, 0.25, 1 / 3, 0.5, rng.uniform(0.01, 0.7)]))
        seed = int(rng.integers(0, 2**32 - 1))
        X = np.arange(len(y)) * 10
        try:
            expected = train_test_split(X, y, test_size=frac, random_state=seed, stratify=y)
        except ValueError:
            with pytest.raises(ValueError):
                data.train_val_split(X, y, frac, seed)
            continue
        got = data.train_val_split(X, y, frac, seed)
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(a, b)
        compared += 1
    assert compared > 100
    # a tensor is indexed the same way
    X_tr, X_val, y_tr, y_val = data.train_val_split(torch.arange(1000), torch.as_tensor(np.repeat(np.arange(4), 250)))
    assert isinstance(X_val, torch.Tensor) and len(X_val) == 100 and torch.bincount(y_val).tolist() == [25] * 4


# --------------------------------------------------------------------------- the real mirror, when present
@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_real_mirror_matches_manifest(name):
    import os

    if not os.environ.get("COURSE_DATA") or not (Path(os.environ["COURSE_DATA"]) / name).is_dir():
        pytest.skip("COURSE_DATA does not point at a mirror holding " + name)
    ds = data.load(name, download=False, progress=False)
    assert ds.X_train.shape == (60000, 28, 28) and ds.X_test.shape == (10000, 28, 28)
    expected = {"fashion-mnist": [6000] * 10, "mnist": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]}[name]
    assert np.bincount(ds.y_train).tolist() == expected


def test_the_books_splits_of_the_real_data_are_scikit_learns():
    """train.py's and chapters 5.1 and 5.2's splits (10% held out, then a stratified subset of the rest)."""
    import os

    from sklearn.model_selection import train_test_split

    if not os.environ.get("COURSE_DATA") or not (Path(os.environ["COURSE_DATA"]) / "fashion-mnist").is_dir():
        pytest.skip("COURSE_DATA does not point at a mirror holding fashion-mnist")
    ds = data.load("fashion-mnist", download=False, progress=False)
    X, y = ds.X_train.reshape(len(ds.y_train), -1), ds.y_train
    for fraction, seed, data_X, data_y in [(0.1, 0, X, y), (0.1, 3, X, y), (20_000 / 54_000, 0, X[:54_000], y[:54_000])]:
        expected = train_test_split(data_X, data_y, test_size=fraction, random_state=seed, stratify=data_y)
        for a, b in zip(expected, data.train_val_split(data_X, data_y, fraction, seed)):
            np.testing.assert_array_equal(a, b)
