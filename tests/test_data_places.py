"""Issue 13, kind 2: one unreadable or odd file must not stop the search.

In every place (COURSE_DATA mirror, user cache, system folder, download, COURSE_DATA_URL):
- a file that cannot be read is skipped with a DataWarning naming the dataset, the file and the
  place, and the look-up moves on;
- a file is verified by the same rule wherever it came from: its bytes match the pinned SHA-256,
  or its decompressed content matches the pinned content hash (a gzip file with rewritten headers,
  or an uncompressed copy), so good data with other gzip headers is never rejected.

The tests run as root here, and root ignores file permissions; an unreadable file is therefore
simulated in two other ways as well: a folder where the file should be (a real IsADirectoryError
from the OS), and ``open`` patched in course_utils.cache (which reads every file) to raise PermissionError
for that one path.
A real ``chmod 000`` case runs only when the tests do not run as root.
"""
from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import pytest

from course_utils import cache as cache_io  # reads every file (tests patch its open)
from course_utils import data
from test_data_support import (  # noqa: F401  (tiny_idx, file_server are fixtures)
    check_arrays,
    closed_port_url,
    copy_to,
    file_server,
    gz,
    sha,
    tiny_idx,
)

PLACES = {  # label in messages and Dataset.source -> folder under tmp_path, and the env var that points at it
    "COURSE_DATA mirror": "mirror/fashion-mnist",
    "user cache": "cache/data/fashion-mnist",
    "system dataset folder": "system/fashion-mnist",
}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def place_folder(tiny, label: str, monkeypatch) -> Path:
    folder = tiny["tmp"] / PLACES[label]
    if label == "COURSE_DATA mirror":
        monkeypatch.setenv("COURSE_DATA", str(tiny["tmp"] / "mirror"))
    return folder


def make_unreadable(path: Path, how: str, monkeypatch) -> None:
    if how == "a folder in its place":
        path.unlink()
        path.mkdir()
        (path / "inside.txt").write_text("not the data file")
    elif how == "open raises PermissionError":  # what a non-root user gets for a file without read permission
        real_open = open

        def guarded_open(p, *args, **kwargs):
            if Path(p) == path:
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(p, *args, **kwargs)

        monkeypatch.setattr(cache_io, "open", guarded_open, raising=False)
    elif how == "a FIFO":  # opening a FIFO for reading would wait for a writer forever
        path.unlink()
        os.mkfifo(path)
    elif how == "a link to /dev/zero":  # reading it would never end
        path.unlink()
        path.symlink_to("/dev/zero")
    elif how == "chmod 000":
        if IS_ROOT:
            pytest.skip("running as root, which ignores file permissions; the other two cases simulate it")
        path.chmod(0)
    else:
        raise AssertionError(how)


UNREADABLE = ["a folder in its place", "open raises PermissionError", "a FIFO", "a link to /dev/zero", "chmod 000"]


@pytest.mark.parametrize("how", UNREADABLE)
@pytest.mark.parametrize("label", list(PLACES))
def test_an_unreadable_file_is_skipped_with_a_message_and_the_search_moves_on(tiny_idx, monkeypatch, label, how):
    folder = copy_to(tiny_idx["src"], place_folder(tiny_idx, label, monkeypatch))
    victim = folder / tiny_idx["names"]["train_labels"]
    make_unreadable(victim, how, monkeypatch)
    try:
        with pytest.warns(data.DataWarning) as caught:
            ds = data.load("fashion-mnist", progress=False)
    finally:
        if how == "chmod 000":
            victim.chmod(0o644)
    check_arrays(ds, tiny_idx["arrays"])
    assert ds.source == "download"  # every local place was incomplete, so the next place was the download
    messages = [str(w.message) for w in caught if "cannot be read" in str(w.message)]
    assert messages, [str(w.message) for w in caught]
    msg = messages[0]
    for needle in ("Fashion-MNIST", victim.name, f"in the {label}", str(victim)):
        assert needle in msg, (needle, msg)
    assert "Skipped" in msg  # and what to do about it
    if label == "user cache" and how == "a folder in its place":
        # the folder is left alone (it is not a file we wrote); the verified download is used from memory
        assert victim.is_dir()
        assert any("could not be saved into the user cache" in str(w.message) for w in caught)
    elif label == "user cache":
        # an unreadable cached file is replaced by the verified download
        monkeypatch.setattr(cache_io, "open", open, raising=False)
        assert sha(victim.read_bytes()) == tiny_idx["spec"].files["train_labels"].sha256


def test_an_unreadable_mirror_file_falls_back_to_the_next_local_place(tiny_idx, monkeypatch):
    """Mirror with an unreadable file, then a complete system folder: the system folder is used."""
    mirror = copy_to(tiny_idx["src"], place_folder(tiny_idx, "COURSE_DATA mirror", monkeypatch))
    copy_to(tiny_idx["src"], tiny_idx["tmp"] / PLACES["system dataset folder"])
    make_unreadable(mirror / tiny_idx["names"]["test_images"], "a folder in its place", monkeypatch)
    monkeypatch.setattr(data, "_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.warns(data.DataWarning, match=r"t10k-images-idx3-ubyte\.gz in the COURSE_DATA mirror .* cannot be read"):
        ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "system dataset folder"
    check_arrays(ds, tiny_idx["arrays"])


@pytest.mark.parametrize("label", list(PLACES))
def test_a_huge_file_in_place_of_a_small_one_is_rejected_without_reading_it(tiny_idx, monkeypatch, label):
    folder = copy_to(tiny_idx["src"], place_folder(tiny_idx, label, monkeypatch))
    victim = folder / tiny_idx["names"]["test_labels"]
    with open(victim, "wb") as f:  # sparse: 50 MB that take no disk space
        f.truncate(50_000_000)
    with pytest.warns(data.DataWarning, match=r"t10k-labels-idx1-ubyte\.gz in the " + label +
                      r" .* is corrupted: it is 50,000,000 bytes, far more than expected \(\d+ bytes\)"):
        ds = data.load("fashion-mnist", progress=False)
    check_arrays(ds, tiny_idx["arrays"])
    assert ds.source == "download"


def test_a_course_data_that_is_a_file_not_a_folder_is_reported_not_a_crash(tiny_idx, monkeypatch):
    not_a_folder = tiny_idx["tmp"] / "mirror-file"
    not_a_folder.write_text("oops")
    monkeypatch.setenv("COURSE_DATA", str(not_a_folder))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("fashion-mnist")
    assert f"COURSE_DATA mirror: {not_a_folder / 'fashion-mnist'} (no such folder)" in str(err.value)


# --------------------------------------------------------------------------- one verification rule
def rewrite_headers(folder: Path, names) -> None:
    """Recompress every file with another gzip header (no file name, other time stamp), as Debian does."""
    for name in names:
        raw = gzip.decompress((folder / name).read_bytes())
        (folder / name).write_bytes(gz(raw, mtime=1590000000))


def uncompress(folder: Path, names) -> None:
    for name in names:
        (folder / name[:-3]).write_bytes(gzip.decompress((folder / name).read_bytes()))
        (folder / name).unlink()


@pytest.mark.parametrize("variant", ["rewritten gzip headers", "uncompressed copies"])
@pytest.mark.parametrize("label", list(PLACES))
def test_good_content_with_other_bytes_is_accepted_in_every_local_place(tiny_idx, monkeypatch, label, variant):
    folder = copy_to(tiny_idx["src"], place_folder(tiny_idx, label, monkeypatch))
    names = tiny_idx["names"].values()
    (rewrite_headers if variant == "rewritten gzip headers" else uncompress)(folder, names)
    monkeypatch.setattr(data, "_download", lambda *a, **k: pytest.fail("must not download"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", data.DataWarning)  # accepted silently: nothing is wrong with it
        ds = data.load("fashion-mnist", progress=False)
    assert ds.source == label
    check_arrays(ds, tiny_idx["arrays"])


@pytest.mark.parametrize("how", ["file:// URL", "registry URL over HTTP", "COURSE_DATA_URL"])
def test_a_download_with_other_gzip_headers_is_accepted_cached_and_accepted_again(tiny_idx, monkeypatch, file_server, how):
    """The issue's case: a download whose compressed header differs from the mirror's, content intact."""
    www = file_server.root / "fashion-mnist"
    copy_to(tiny_idx["src"], www)
    rewrite_headers(www, tiny_idx["names"].values())
    server = file_server.serve(file_server.root)
    if how == "file:// URL":
        urls = (www.as_uri() + "/",)
    elif how == "registry URL over HTTP":
        urls = (server.url + "/fashion-mnist/",)
    else:
        urls = (closed_port_url(),)
        monkeypatch.setenv("COURSE_DATA_URL", server.url)
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], urls=urls)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", data.DataWarning)
        ds = data.load("fashion-mnist", progress=False)
        assert ds.source == "download"
        check_arrays(ds, tiny_idx["arrays"])
        cached = tiny_idx["cache"] / tiny_idx["names"]["train_images"]
        assert cached.read_bytes() == (www / cached.name).read_bytes()  # stored as received
        assert sha(cached.read_bytes()) != tiny_idx["spec"].files["train_images"].sha256
        again = data.load("fashion-mnist", progress=False)  # the cached copy verifies by the same rule
    assert again.source == "user cache"
    check_arrays(again, tiny_idx["arrays"])


def test_same_content_rule_for_mirror_and_download_rejects_wrong_content_in_both(tiny_idx, monkeypatch):
    """Other headers are fine; other *content* is not, wherever it came from."""
    mirror = copy_to(tiny_idx["src"], place_folder(tiny_idx, "COURSE_DATA mirror", monkeypatch))
    source = tiny_idx["src"]
    name = tiny_idx["names"]["test_labels"]
    raw = bytearray(gzip.decompress((source / name).read_bytes()))
    raw[-1] = (raw[-1] + 1) % 3  # a different label: valid IDX, wrong content
    for folder in (mirror, source):
        (folder / name).write_bytes(gz(bytes(raw), mtime=1590000000))
    with pytest.warns(data.DataWarning) as caught:
        with pytest.raises(data.DatasetNotFoundError) as err:
            data.load("fashion-mnist", progress=False)
    texts = [str(w.message) for w in caught]
    assert any("in the COURSE_DATA mirror" in t and name in t and "is corrupted" in t for t in texts), texts
    assert any("downloaded from file://" in t and name in t and "is corrupted" in t for t in texts), texts
    assert "decompressed content does not match either" in str(err.value)


# --------------------------------------------------------------------------- downloads: COURSE_DATA_URL and failures
def test_course_data_url_is_tried_before_the_registry_urls(tiny_idx, monkeypatch, file_server):
    copy_to(tiny_idx["src"], file_server.root / "fashion-mnist")
    server = file_server.serve(file_server.root)
    monkeypatch.setenv("COURSE_DATA_URL", server.url + "/")  # a trailing slash is fine
    monkeypatch.setattr(data, "_download", _only_from(server.url, data._download))
    ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "download"
    check_arrays(ds, tiny_idx["arrays"])
    assert {p: c for p, c in server.counts.items()} == {f"/fashion-mnist/{n}": 1 for n in tiny_idx["names"].values()}


def _only_from(prefix, real):
    def download(url, *args, **kwargs):
        assert url.startswith(prefix), f"downloaded from {url}, expected only {prefix}/..."
        return real(url, *args, **kwargs)

    return download


@pytest.mark.parametrize("failure", ["HTTP 404", "connection broken off", "bad COURSE_DATA_URL"])
def test_a_failing_course_data_url_falls_back_to_the_registry_urls(tiny_idx, monkeypatch, file_server, failure):
    copy_to(tiny_idx["src"], file_server.root / "fashion-mnist")
    server = file_server.serve(file_server.root)
    name = tiny_idx["names"]["train_images"]
    if failure == "HTTP 404":
        server.rules[f"/fashion-mnist/{name}"] = ("status", 404)
        monkeypatch.setenv("COURSE_DATA_URL", server.url)
        expected = r"HTTP 404"
    elif failure == "connection broken off":
        server.rules[f"/fashion-mnist/{name}"] = ("cut", 1000)
        monkeypatch.setenv("COURSE_DATA_URL", server.url)
        expected = r"(received 1,000 of the [\d,]+ bytes announced|connection broke off)"
    else:
        monkeypatch.setenv("COURSE_DATA_URL", "localhost-without-scheme")
        expected = r"not a valid URL|cannot connect"
    ds = data.load("fashion-mnist", progress=False)  # the registry's file:// URL still works
    check_arrays(ds, tiny_idx["arrays"])
    # Now with nothing behind the registry URL either: the error lists what each URL answered.
    (tiny_idx["cache"] / name).unlink()
    data.DATASETS["fashion-mnist"] = dataclasses.replace(tiny_idx["spec"], urls=(closed_port_url(),))
    with pytest.raises(data.DatasetNotFoundError, match=expected) as err:
        data.load("fashion-mnist", progress=False)
    assert f"{name}: cannot connect" in str(err.value)  # the registry URL, tried after COURSE_DATA_URL


def test_a_cache_that_cannot_be_written_still_returns_verified_data(tiny_idx, monkeypatch):
    """COURSE_CACHE points at a file: nothing can be locked or saved, the download is used from memory."""
    blocker = tiny_idx["tmp"] / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("COURSE_CACHE", str(blocker))
    with pytest.warns(data.DataWarning, match=r"the user cache cannot be locked .*Set COURSE_CACHE to a writable folder"):
        ds = data.load("fashion-mnist", progress=False)
    assert ds.source == "download"
    check_arrays(ds, tiny_idx["arrays"])
    assert blocker.read_text().startswith("a file where")
