"""Every dataset the book uses: a registry, one verified loader, stand-ins and a split helper.

Introduced in chapter 0 (the data notebook); used by chapters 4, 5 and 7.

Where a file is looked for, in order (the first place that holds every file of the dataset, each
one verified, wins):

1. ``$COURSE_DATA/<dataset>/`` (a local mirror; CI points it at ``../shared/data``);
2. the user cache, ``$COURSE_CACHE/data/<dataset>/`` (default ``~/.cache/course-book``);
3. system dataset folders, ``/usr/share/datasets/<dataset>/`` (Debian's ``dataset-fashion-mnist``
   package installs there with rewritten gzip headers);
4. a download into the user cache, from ``$COURSE_DATA_URL/<dataset>/<file>`` when that variable
   is set (a classroom HTTP mirror), then from each of the registry's canonical URLs in turn.

Verification: one rule wherever a file came from (mirror, cache, system folder, download). A
file is accepted when the SHA-256 of its bytes equals the pinned ``sha256``, or, when its
decompressed content is what counts (a gzip file, or an uncompressed copy ``name`` of
``name.gz`` in a folder), when the SHA-256 of that content equals the pinned ``raw_sha256``:
gzip headers hold a time stamp and a file name that repackagers rewrite without changing the
data. Every accepted file is then parsed (IDX header, magic number, shape, counts, label range),
and the arrays are made from the very bytes that were verified, so nothing another process does
to the file afterwards can change them. A file whose pinned SHA-256 is marked unverified
(``sha256_verified=False``: a hash published by third parties that no copy has confirmed) is accepted on
a mismatch only when it passes the structural checks, with a warning; every file of the registry is
verified today.

What happens to a file that is not accepted (a :class:`DataWarning` names the dataset, the file,
the place and what to do): a file that cannot be read (permissions, a folder in its place, any
``OSError``) is skipped; a corrupted or truncated file in a mirror or system folder (not ours to
change) is skipped; in the user cache it is deleted and fetched again. Then the search moves on.
When nothing verifies, :class:`DatasetNotFoundError` names the dataset, the files, each place
searched and what was found there, the URLs actually tried with what each answered (or that
downloading was off and how to turn it on), and what to do. ``load(name, stand_in=True)``
returns a clearly labelled stand-in instead (Fashion-MNIST when it is reachable, else
scikit-learn's bundled 8x8 digits scaled to 28x28).

Concurrency: several processes (notebooks, ``train.py`` runs, pytest workers) may load the same
dataset at once. Every change to the user cache happens while holding a per-file lock
(``<cache>/data/.locks/<dataset>--<file>.lock``, a ``filelock.FileLock``), and a process that
acquires the lock checks the cache again before it deletes or downloads anything, so each
damaged or missing file is downloaded once. A download is received into memory, verified, then
written to a temporary file in the cache folder, flushed to disk (fsync) and renamed over the
target with ``os.replace``, so a reader sees the old file or the new one, never a partial one.
Readers take no lock: a file that vanishes while it is being looked at counts as missing. (The
reading, locking and installing are :mod:`course_utils.cache`'s, shared with the weights cache.)

Environment variables:

- ``COURSE_DATA``: a local mirror, laid out as ``<mirror>/<dataset>/<file>``;
- ``COURSE_CACHE``: the cache root (files go to ``$COURSE_CACHE/data/<dataset>/``);
- ``COURSE_DATA_URL``: an HTTP(S) base URL tried before the canonical URLs, serving
  ``$COURSE_DATA_URL/<dataset>/<file>`` (for example ``python -m http.server`` run in a mirror);
- ``COURSE_OFFLINE=1``: never download (``download=False`` does the same for one call).

Why one module (about 900 lines, a third of them the registry's pinned hashes and the messages):
the contract above is one rule applied in one pipeline, registry -> places -> read and verify ->
repair the cache -> download, and each step exists only for the next; split apart, every piece
would need the registry, the places and the wording of the same warnings. The generic cache
machinery (reading once, locks, atomic installs) is :mod:`course_utils.cache`, shared with the
weights cache.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import math
import os
import struct
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import cache, validation
from .cache import cache_dir

__all__ = [
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "DATASETS",
    "DatasetNotFoundError",
    "ChecksumError",
    "DataWarning",
    "load",
    "names",
    "cache_dir",
    "search_dirs",
    "train_val_split",
    "read_idx",
    "read_sign_mnist_csv",
    "show_note",
]

SYSTEM_DIRS = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 30
LOCK_TIMEOUT_S = 600  # how long a process waits while another one fetches the same file
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: its name, the SHA-256 of its bytes and of its decompressed content."""

    filename: str
    sha256: str | None
    raw_sha256: str | None = None  # of the decompressed bytes (.gz files), accepted where headers were rewritten
    size: int | None = None
    sha256_verified: bool = True  # False: the pinned hash is published by third parties, not checked by us


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    files: dict[str, FileSpec]  # role -> file; roles: train_images, train_labels, test_images, test_labels (IDX) or train, test (CSV)
    urls: tuple[str, ...]  # base URLs, tried in order; the file name is appended
    classes: tuple[str, ...]
    reader: str  # "idx" or "sign-mnist-csv"
    license: str
    citation: str  # bibtex key in book/references.bib
    expected_counts: tuple[int, int]  # (train, test)


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
# Sign Language MNIST labels 0..24 are the letters A..Y; 9 (J) and 25 (Z) need motion and never occur.
# The loader maps the 24 labels that occur onto 0..23, in alphabetical order.
SIGN_LETTERS = tuple(chr(ord("A") + i) for i in range(25) if i != 9)

DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        files={
            "train_images": FileSpec("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                                     "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 26421880),
            "train_labels": FileSpec("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                                     "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 29515),
            "test_images": FileSpec("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 4422102),
            "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 5148),
        },
        urls=(
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
        classes=FASHION_CLASSES,
        reader="idx",
        license="MIT",
        citation="xiao2017fashion",
        expected_counts=(60000, 10000),
    ),
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        files={
            "train_images": FileSpec("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                     "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 9912422),
            "train_labels": FileSpec("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                     "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 28881),
            "test_images": FileSpec("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 1648877),
            "test_labels": FileSpec("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 4542),
        },
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        classes=DIGIT_CLASSES,
        reader="idx",
        license="CC BY-SA 3.0",
        citation="lecun1998gradient",
        expected_counts=(60000, 10000),
    ),
    "sign-mnist": DatasetSpec(
        name="sign-mnist",
        title="Sign Language MNIST",
        files={
            # The CSVs of the Kaggle dataset datamunge/sign-language-mnist (CRLF line endings), byte for byte
            # the files at the URL below: SHA-256 and size checked on a copy (2026-12-06), equal to what
            # public loaders pin and to the git blobs of the repository the URL serves.
            "train": FileSpec("sign_mnist_train.csv", "4c2897f19fab2b0ae2a7e4fa82e969043315d9f3a1a9cc0948b576bf1189a7e5",
                              size=83_281_065),
            "test": FileSpec("sign_mnist_test.csv", "0e9d67bae23e67f40728e0b63bf15ad4bd5175947b8a9fac5dd9f17ce133c47b",
                             size=21_777_485),
        },
        urls=("https://raw.githubusercontent.com/PhilChodrow/ml-notes/main/data/sign-language-mnist/",),
        classes=SIGN_LETTERS,
        reader="sign-mnist-csv",
        license="CC0",
        citation="signmnist2017",
        expected_counts=(27455, 7172),
    ),
}

_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "sign_mnist": "sign-mnist",
            "sign-language-mnist": "sign-mnist", "sign_language_mnist": "sign-mnist"}


def names() -> list[str]:
    """The registered dataset names."""
    return sorted(DATASETS)


def _spec(name: str) -> DatasetSpec:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string such as 'fashion-mnist', got {type(name).__name__} {name!r}; "
                        f"valid names: {', '.join(names())}")
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(names())}. Pass one of these "
                         "(course_utils.data.names() lists them).")
    return DATASETS[key]


# --------------------------------------------------------------------------- errors
class DatasetNotFoundError(FileNotFoundError):
    """No verified copy of a dataset could be found or downloaded."""


class ChecksumError(ValueError):
    """A file's content is not what the registry pins (checksum, IDX or CSV structure, counts)."""


class DataWarning(UserWarning):
    """A file was skipped, deleted or not saved; the message names the dataset, file, place and what to do."""


def _warn(message: str) -> None:
    """A :class:`DataWarning`, attributed to the first caller outside this module (the line that called load)."""
    cache.warn(message, DataWarning, __name__)


# --------------------------------------------------------------------------- places
def _cache_folder(spec: DatasetSpec) -> Path:
    return cache_dir() / "data" / spec.name


def search_dirs(name: str) -> list[tuple[str, Path]]:
    """The (label, folder) pairs searched for dataset ``name``, in order."""
    spec = _spec(name)
    places = []
    if os.environ.get("COURSE_DATA"):
        places.append(("COURSE_DATA mirror", Path(os.environ["COURSE_DATA"]).expanduser() / spec.name))
    places.append(("user cache", _cache_folder(spec)))
    for d in SYSTEM_DIRS:
        places.append(("system dataset folder", Path(d) / spec.name))
    return places


def _download_urls(spec: DatasetSpec, fs: FileSpec) -> list[str]:
    """The URLs a file is downloaded from, in order: ``$COURSE_DATA_URL/<dataset>/<file>``, then the registry's."""
    urls = []
    base = os.environ.get("COURSE_DATA_URL", "").strip()
    if base:
        urls.append(f"{base.rstrip('/')}/{spec.name}/{fs.filename}")
    urls.extend(b + fs.filename for b in spec.urls)
    return urls


_OFF = ("1", "true", "yes", "on")
_ON = ("", "0", "false", "no", "off")


def _downloads_off(download: bool) -> str | None:
    """Why downloading is off (``download=False`` or ``COURSE_OFFLINE``), or None when it is on."""
    if not download:
        return "download=False"
    raw = os.environ.get("COURSE_OFFLINE", "")
    value = raw.strip().lower()
    if value in _ON:
        return None
    if value not in _OFF:
        _warn(f"COURSE_OFFLINE={raw!r} is not one of 1/true/yes/on or 0/false/no/off; it is taken as 1 "
              "(no downloads). Unset it, or set it to 0, to allow downloads.")
    return f"COURSE_OFFLINE={raw}"


# --------------------------------------------------------------------------- reading and parsing
def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _read_or_explain(path: Path) -> bytes:
    """Read ``path`` for the public readers; an ``OSError`` keeps its type and says what to do."""
    try:
        return cache.read_once(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: no such file. Check the path; data.load(name) finds, verifies and "
                                "downloads the registry's files by itself.") from exc
    except IsADirectoryError as exc:
        raise IsADirectoryError(f"{path} is a folder, not a file. Pass the path of the file inside it.") from exc
    except PermissionError as exc:
        raise PermissionError(f"{path}: permission denied ({exc.strerror}). Make it readable (chmod a+r) "
                              "or copy it somewhere readable.") from exc
    except OSError as exc:
        raise OSError(f"{path}: cannot be read ({exc}). Check the file and the disk, or copy it elsewhere.") from exc


def _content(blob: bytes) -> tuple[bytes | None, str | None, str | None]:
    """``(content, None, None)``: the decompressed bytes of a gzip blob, or the blob itself;
    ``(None, state, why)`` when the gzip stream is damaged (state 'truncated' or 'corrupted')."""
    if blob[:2] != GZIP_MAGIC:
        return blob, None, None
    try:
        return gzip.decompress(blob), None, None
    except EOFError:
        return None, "truncated", "its gzip stream ends before the end-of-stream marker"
    except (OSError, zlib.error) as exc:
        return None, "corrupted", f"not a valid gzip stream ({exc})"


_IDX_KINDS = {0x801: "labels, 1 dimension", 0x803: "images, 3 dimensions"}


def _parse_idx(buf: bytes, where: str, expected_magic: int | None = None) -> np.ndarray:
    """Parse uncompressed IDX bytes into a uint8 array; ChecksumError messages start with ``where``."""
    if len(buf) < 4:
        raise ChecksumError(f"{where}: {len(buf)} bytes is too short for an IDX header (a 4-byte magic number, "
                            "then 4 bytes per dimension); the file is truncated or not an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", buf[:4])
    magic = int.from_bytes(buf[:4], "big")
    if zero != 0 or dtype_code != 0x08:
        raise ChecksumError(f"{where}: magic number 0x{magic:08x} is not that of an unsigned-byte IDX file "
                            "(0x0000080N); it is not an IDX file, or it is corrupted.")
    if expected_magic is not None and magic != expected_magic:
        raise ChecksumError(f"{where}: magic 0x{magic:08x}, expected 0x{expected_magic:08x} "
                            f"({_IDX_KINDS.get(expected_magic, 'IDX')}); it is another kind of IDX file.")
    if ndim == 0:
        raise ChecksumError(f"{where}: the IDX header declares 0 dimensions; the file is corrupted.")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ChecksumError(f"{where}: {len(buf)} bytes is too short for an IDX header with {ndim} dimensions "
                            f"({header} bytes); the file is truncated.")
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    expected = header + math.prod(dims)
    if len(buf) != expected:
        state = "truncated" if len(buf) < expected else "padded"
        raise ChecksumError(f"{where}: {len(buf):,} bytes, but its header {dims} needs {expected:,}: {state}.")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims).copy()


def _parse_sign_csv(content: bytes, where: str, expected_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    try:
        df = pd.read_csv(io.BytesIO(content), dtype=np.int64)
    except (ValueError, OverflowError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ChecksumError(f"{where}: not a readable Sign Language MNIST CSV ({exc}).") from exc
    cols = ["label"] + [f"pixel{i}" for i in range(1, 785)]
    if list(df.columns) != cols:
        raise ChecksumError(f"{where}: expected the {len(cols)} columns label,pixel1..pixel784, got {len(df.columns)} "
                            f"columns starting {list(df.columns[:3])}.")
    if expected_rows is not None and len(df) != expected_rows:
        raise ChecksumError(f"{where}: {len(df):,} rows, expected {expected_rows:,}: truncated or not the original file.")
    labels = df["label"].to_numpy()
    bad = np.unique(labels[(labels < 0) | (labels > 24) | (labels == 9)])
    if bad.size:
        raise ChecksumError(f"{where}: labels {bad.tolist()} are invalid (Sign Language MNIST uses 0..24 without 9).")
    pixels = df.iloc[:, 1:].to_numpy()
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise ChecksumError(f"{where}: pixel values outside 0..255.")
    remap = np.where(labels > 9, labels - 1, labels)
    return pixels.astype(np.uint8).reshape(-1, 28, 28), remap.astype(np.int64)


def _parse_role(spec: DatasetSpec, role: str, content: bytes, where: str):
    """Parse one file of ``spec`` and check it against the registry (kind, shape, count, label range)."""
    n_expected = spec.expected_counts[0 if role.startswith("train") else 1]
    if spec.reader == "idx":
        images = role.endswith("images")
        arr = _parse_idx(content, where, 0x803 if images else 0x801)
        if images and arr.shape[1:] != (28, 28):
            raise ChecksumError(f"{where}: images of shape {arr.shape[1:]}, expected (28, 28).")
        if len(arr) != n_expected:
            raise ChecksumError(f"{where}: holds {len(arr):,} {'images' if images else 'labels'}, expected {n_expected:,}.")
        if not images:
            arr = arr.astype(np.int64)
            if arr.size and arr.max() >= len(spec.classes):
                raise ChecksumError(f"{where}: labels up to {arr.max()}, but {spec.title} has {len(spec.classes)} classes "
                                    f"(0..{len(spec.classes) - 1}).")
        return arr
    if spec.reader == "sign-mnist-csv":
        return _parse_sign_csv(content, where, n_expected)
    raise ValueError(f"dataset {spec.name!r}: unknown reader {spec.reader!r} in the registry; use 'idx' or 'sign-mnist-csv'")


def _verify(blob: bytes, fs: FileSpec, where: str, parse: Callable[[bytes], object]) -> tuple[str, object]:
    """Verify ``blob`` (the bytes of ``where``) by the module's one rule and parse it.

    Returns ``(how, parsed)`` with how 'sha256', 'content sha256' or 'structure'; raises
    :class:`ChecksumError` whose message starts with ``where`` and says truncated or corrupted.
    """
    content, gz_state, gz_why = _content(blob)
    digest = _sha256(blob)
    if fs.sha256 is not None and digest == fs.sha256:
        how = "sha256"
    elif fs.raw_sha256 is not None and content is not None and _sha256(content) == fs.raw_sha256:
        how = "content sha256"
    elif (fs.sha256 is None and fs.raw_sha256 is None) or (fs.sha256 is not None and not fs.sha256_verified):
        how = "structure"  # nothing trustworthy pinned: the structural checks decide
    else:
        size = len(blob)
        if gz_state:  # a damaged gzip stream says which
            state = gz_state
        elif content is not blob:  # a complete gzip stream with other content
            state = "corrupted"
        else:
            state = "truncated" if fs.size and size < fs.size else "corrupted"
        detail = f"got {digest}, expected {fs.sha256}; {size:,} bytes" + (
            f", expected {fs.size:,}" if fs.size and fs.size != size else "")
        if gz_why:
            detail += f"; {gz_why}"
        elif fs.raw_sha256 is not None and content is not blob:
            detail += "; its decompressed content does not match either"
        raise ChecksumError(f"{where} is {state} (SHA-256 mismatch: {detail}).")
    if content is None:
        raise ChecksumError(f"{where} is {gz_state}: {gz_why}.")
    parsed = parse(content)
    if how == "structure" and fs.sha256 is not None:
        _warn(f"{where}: SHA-256 {digest} differs from the pinned {fs.sha256}, which is published by third "
              "parties and not verified; the file passed the structural checks (row count, columns, label and "
              "pixel ranges) and is used. Line endings (CRLF vs LF) change the hash without changing the data.")
    return how, parsed


# --------------------------------------------------------------------------- public readers
_READER_HINT = "Replace it with a good copy; data.load(name) finds, verifies and downloads the registry's files."


def read_idx(path: Path | str, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a uint8 array; checks magic, dims and length.

    Raises :class:`ChecksumError` naming the file for a damaged gzip stream, a header too short,
    a wrong magic number or a length that does not match the header; ``FileNotFoundError``,
    ``IsADirectoryError``, ``PermissionError`` or ``OSError`` naming it when it cannot be read.
    """
    path = Path(path)
    blob = _read_or_explain(path)
    content, state, why = _content(blob)
    if content is None:
        raise ChecksumError(f"{path} is {state}: {why}. {_READER_HINT}")
    try:
        return _parse_idx(content, str(path), expected_magic)
    except ChecksumError as exc:
        raise ChecksumError(f"{exc} {_READER_HINT}") from None


def read_sign_mnist_csv(path: Path | str, expected_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a Sign Language MNIST CSV (``label,pixel1..pixel784``).

    Returns images (N, 28, 28) uint8 and labels remapped from 0..24 (no 9) onto 0..23.
    Raises :class:`ChecksumError` naming the file for a bad header, a wrong column or row
    count, labels outside 0..24 or equal to 9, or pixels outside 0..255; an ``OSError``
    naming it when it cannot be read.
    """
    path = Path(path)
    blob = _read_or_explain(path)
    try:
        return _parse_sign_csv(blob, str(path), expected_rows)
    except ChecksumError as exc:
        raise ChecksumError(f"{exc} {_READER_HINT}") from None


# --------------------------------------------------------------------------- the dataset object
@dataclass
class Dataset:
    """A loaded dataset: uint8 images (N, 28, 28), int64 labels, class names indexed by label."""

    name: str
    title: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str = ""  # where it came from, e.g. 'COURSE_DATA mirror' (no machine-specific paths)
    location: str = ""  # the folder (machine-specific; not printed by note())
    stand_in_for: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_stand_in(self) -> bool:
        return self.stand_in_for is not None

    def note(self) -> str:
        """One line that says which data this is; a STAND-IN says so loudly.

        Deliberately free of where the files were found (``source``, ``location``), so that a
        notebook printing it gives the same output on every machine that has the same data.
        """
        sizes = f"{len(self.y_train):,} train / {len(self.y_test):,} test images, {self.num_classes} classes"
        if self.stand_in_for:
            wanted = _spec(self.stand_in_for).title
            return (f"STAND-IN DATA: {wanted} could not be found or downloaded, so this run uses {self.title} "
                    f"({sizes}). Every result below is for {self.title}, not {wanted}.")
        return f"Data: {self.title} ({sizes})."

    def counts(self):
        """Images per class and split, as a pandas DataFrame."""
        import pandas as pd

        k = self.num_classes
        return pd.DataFrame(
            {"train": np.bincount(self.y_train, minlength=k), "test": np.bincount(self.y_test, minlength=k)},
            index=pd.Index(self.classes, name="class"),
        )

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, train={self.X_train.shape}, test={self.X_test.shape}, classes={self.num_classes}" + (
            f", stand_in_for={self.stand_in_for!r})" if self.stand_in_for else ")")


# --------------------------------------------------------------------------- one look-up
class _Search:
    """What one look-up saw, for the warnings and for the final error message."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        self.places: list[str] = []  # one line per place: what each file was there
        self.problems: list[str] = []  # files found but not used, and why (each also warned)
        self.tried: list[str] = []  # URLs actually tried and what each answered
        self.off: str | None = None  # why downloading was off
        self.downloaded = False
        self.lock_timed_out = False  # then waiting again would only repeat it

    def problem(self, message: str) -> None:
        if message not in self.problems:  # a re-check under the lock may find the same thing again
            self.problems.append(message)
            _warn(message)

    def error(self) -> DatasetNotFoundError:
        spec = self.spec
        cache_folder = _cache_folder(spec)
        files = ", ".join(fs.filename for fs in spec.files.values())
        lines = [f"Dataset {spec.title!r} ({spec.name}) was not found.", f"Files needed: {files}", "Places searched:"]
        if not os.environ.get("COURSE_DATA"):
            lines.append("  - COURSE_DATA mirror: not searched (COURSE_DATA is not set)")
        lines += [f"  - {p}" for p in self.places]
        if self.problems:
            lines.append("Files found but not used:")
            lines += [f"  - {p}" for p in self.problems]
        fixes = []
        if self.off:
            first = _download_urls(spec, next(iter(spec.files.values())))
            how = ("call data.load() without download=False" if self.off == "download=False"
                   else "unset COURSE_OFFLINE or set it to 0")
            lines.append(f"Downloading was off ({self.off}), so no URL was tried; it would have used, for "
                         f"{next(iter(spec.files.values())).filename}:")
            lines += [f"  - {u}" for u in first]
            fixes.append(f"turn downloading on ({how}) and load again")
        else:
            lines.append("URLs tried:")
            lines += [f"  - {t}" for t in self.tried] or ["  - none"]
            fixes.append("connect to the internet and load again, or set COURSE_DATA_URL to an HTTP mirror that "
                         f"serves {spec.name}/<file>")
        fixes.append(f"put verified copies of the files into $COURSE_DATA/{spec.name}/ (a local mirror; set "
                     f"COURSE_DATA to its root) or into {cache_folder}/")
        fixes.append("or, in a chapter, load with stand_in=True to run on a labelled stand-in")
        lines.append("To fix: " + "; ".join(fixes) + ".")
        return DatasetNotFoundError("\n".join(lines))


@dataclass
class _Local:
    """One file looked for in one folder."""

    parsed: object = None
    ok: bool = False
    how: str = ""
    bad: list = field(default_factory=list)  # (path, message): read, but failed verification
    unreadable: list = field(default_factory=list)  # (path, message): exists, cannot be read

    def status(self) -> str:
        if self.ok:
            return f"verified ({self.how})"
        if self.bad:
            return "rejected (" + ("truncated" if any(" is truncated" in m for _, m in self.bad) else "corrupted") + ")"
        return "unreadable" if self.unreadable else "missing"


def _candidates(folder: Path, fs: FileSpec) -> list[tuple[Path, FileSpec]]:
    """``name.gz`` verified as pinned; an uncompressed copy ``name`` by the pinned content hash."""
    out = [(folder / fs.filename, fs)]
    if fs.filename.endswith(".gz") and fs.raw_sha256 is not None:
        out.append((folder / fs.filename[:-3], FileSpec(fs.filename[:-3], fs.raw_sha256, None, None, fs.sha256_verified)))
    return out


def _check_local(spec: DatasetSpec, role: str, fs: FileSpec, label: str, folder: Path) -> _Local:
    """Read and verify ``role``'s file in ``folder``; a file that vanishes meanwhile counts as missing."""
    res = _Local()
    for path, cfs in _candidates(folder, fs):
        where = f"{spec.title} file {path.name} in the {label} ({path})"
        try:
            blob = cache.read_once(path, max_size=2 * cfs.size + (1 << 20) if cfs.size else None)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            res.unreadable.append((path, f"{where} cannot be read ({type(exc).__name__}: {exc.strerror or exc})."))
            continue
        except cache.FileTooLarge as exc:  # far too large: not this file (and not read into memory)
            res.bad.append((path, f"{where} is corrupted: it {exc} ({cfs.size:,} bytes)."))
            continue
        try:
            res.how, res.parsed = _verify(blob, cfs, where, lambda c, w=where: _parse_role(spec, role, c, w))
        except ChecksumError as exc:
            res.bad.append((path, str(exc)))
            continue
        res.ok = True
        return res
    return res


_HINTS = {
    "COURSE_DATA mirror": ("Not used; looking elsewhere. To repair the mirror, replace the file with a good copy "
                           "(its SHA-256 is pinned in course_utils.data.DATASETS) or delete it.",
                           "Skipped; looking elsewhere. Make it a readable file (chmod a+r) or remove it."),
    "system dataset folder": ("Not used; looking elsewhere. To repair it, reinstall the system package that installed "
                              "it (Debian: apt-get install --reinstall dataset-<name>) or delete the file.",
                              "Skipped; looking elsewhere. Make it a readable file or remove it."),
    "user cache": ("", "Skipped; a fresh download replaces it when downloading is on. If it stays, delete it."),
}


# --------------------------------------------------------------------------- the user cache
@contextlib.contextmanager
def _cache_lock(spec: DatasetSpec, fs: FileSpec, search: _Search):
    """Hold the cache's lock for one file. Yields True (held), False (the cache cannot be locked,
    so it must not be changed) or None (another process held it for LOCK_TIMEOUT_S: give up)."""
    lock_path = cache_dir() / "data" / ".locks" / f"{spec.name}--{fs.filename}.lock"
    lock = None
    try:
        lock = cache.file_lock(lock_path, LOCK_TIMEOUT_S, "course_utils.data")
        lock.acquire()
        state = True
    except cache.LockTimeout:
        lock, state = None, None
        search.problem(f"{spec.title} file {fs.filename}: waited {LOCK_TIMEOUT_S} s for the user cache's lock "
                       f"({lock_path}); another process (a notebook, a train.py run or a test worker) has been "
                       "fetching it all that time. Wait for it to finish, then load again.")
    except OSError as exc:
        lock, state = None, False
        search.problem(f"{spec.title} file {fs.filename}: the user cache cannot be locked ({lock_path}: {exc}), so "
                       "it is left unchanged. Set COURSE_CACHE to a writable folder.")
    try:
        yield state
    finally:
        if lock is not None:
            lock.release()


class _ShortDownload(OSError):
    pass


def _download(url: str, fs: FileSpec, progress: bool) -> bytes:
    """Receive ``url`` into memory with a progress bar; raises when fewer bytes arrive than announced."""
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.strip().isdigit() else None
        buf = io.BytesIO()
        with tqdm(total=total or fs.size, unit="B", unit_scale=True, desc=fs.filename,
                  disable=not progress, leave=False) as bar:
            for block in iter(lambda: resp.read(CHUNK), b""):
                buf.write(block)
                bar.update(len(block))
    blob = buf.getvalue()
    if total is not None and len(blob) != total:
        raise _ShortDownload(f"received {len(blob):,} of the {total:,} bytes announced")
    return blob


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return f"no answer within {DOWNLOAD_TIMEOUT_S} s"
    if isinstance(exc, http.client.HTTPException):
        return f"the connection broke off ({type(exc).__name__}: {exc})"
    if isinstance(exc, ValueError):
        return f"not a valid URL ({exc}); check COURSE_DATA_URL and the registry"
    return f"{type(exc).__name__}: {exc}"


def _fetch(spec: DatasetSpec, role: str, fs: FileSpec, search: _Search, progress: bool):
    """Download ``role``'s file from each URL in turn until one verifies: ``(blob, parsed, url)`` or None."""
    for url in _download_urls(spec, fs):
        where = f"{spec.title} file {fs.filename} downloaded from {url}"
        try:
            blob = _download(url, fs, progress)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            search.tried.append(f"{url}: {_why(exc)}")
            continue
        try:
            how, parsed = _verify(blob, fs, where, lambda c, w=where: _parse_role(spec, role, c, w))
        except ChecksumError as exc:
            search.tried.append(f"{url}: downloaded, but failed verification")
            search.problem(f"{exc} Not used: failed verification; trying the next URL, if any.")
            continue
        search.tried.append(f"{url}: downloaded and verified ({how})")
        return blob, parsed, url
    return None


def _repair_cache(spec: DatasetSpec, role: str, fs: FileSpec, search: _Search, fetch: bool, progress: bool = False):
    """Under the file's lock: check the cache again (another process may have repaired it), delete a
    damaged copy and, with ``fetch``, download, verify and install a fresh one. Returns the parsed
    content or None."""
    folder = _cache_folder(spec)
    dest = folder / fs.filename
    with _cache_lock(spec, fs, search) as locked:
        if locked is None:
            search.lock_timed_out = True
            return None
        res = _check_local(spec, role, fs, "user cache", folder)
        if res.ok:
            return res.parsed
        for path, message in res.bad:
            if not locked:
                search.problem(f"{message} Not used, and not deleted: the user cache could not be locked.")
                continue
            try:
                path.unlink(missing_ok=True)
                search.problem(f"{message} Deleted the cached copy; it will be fetched again.")
            except OSError as exc:
                search.problem(f"{message} Not used; it could not be deleted ({exc}): delete it by hand.")
        for _, message in res.unreadable:
            search.problem(f"{message} {_HINTS['user cache'][1]}")
        if locked:
            cache.sweep_parts(dest)
        if not fetch:
            return None
        got = _fetch(spec, role, fs, search, progress)
        if got is None:
            return None
        blob, parsed, url = got
        search.downloaded = True
        if locked:
            try:
                cache.install(dest, blob)
            except OSError as exc:
                search.problem(f"{spec.title} file {fs.filename}, downloaded from {url}, is verified and used, but "
                               f"could not be saved into the user cache as {dest} ({type(exc).__name__}: {exc}); it "
                               "will be downloaded again next time. Remove whatever is in the way, or set "
                               "COURSE_CACHE to a writable folder.")
        return parsed


# --------------------------------------------------------------------------- finding files
def _find(spec: DatasetSpec, download: bool, progress: bool) -> tuple[dict[str, object], str, str]:
    """Verified, parsed content for every file of ``spec``: ``(values by role, source label, location)``."""
    search = _Search(spec)
    cache_folder = _cache_folder(spec)
    from_cache: dict[str, object] = {}
    for label, folder in search_dirs(spec.name):
        is_cache = folder == cache_folder
        try:
            exists = folder.is_dir()
        except OSError as exc:
            search.problem(f"{spec.title}: the {label} ({folder}) cannot be searched ({exc}). Skipped; looking "
                           "elsewhere. Make the folder readable.")
            search.places.append(f"{label}: {folder} (cannot be searched)")
            continue
        if not exists:
            search.places.append(f"{label}: {folder} (no such folder)")
            continue
        found: dict[str, object] = {}
        status = []
        for role, fs in spec.files.items():
            res = _check_local(spec, role, fs, label, folder)
            if is_cache and res.bad:  # a damaged cached copy: re-checked and deleted under the lock
                repaired = _repair_cache(spec, role, fs, search, fetch=False)
                if repaired is not None:
                    res = _Local(parsed=repaired, ok=True, how="after another process repaired it")
            else:
                hint_bad, hint_unreadable = _HINTS[label]
                for _, message in res.bad:
                    search.problem(f"{message} {hint_bad}")
                for _, message in res.unreadable:
                    search.problem(f"{message} {hint_unreadable}")
            if res.ok:
                found[role] = res.parsed
            status.append(f"{fs.filename} {res.status()}")
        search.places.append(f"{label}: {folder}: " + ", ".join(status))
        if is_cache:
            from_cache = found
        if len(found) == len(spec.files):
            return found, label, str(folder)
        # A folder with some but not all files: a download into the cache may complete them.

    search.off = _downloads_off(download)
    if search.off or search.lock_timed_out:
        raise search.error()
    values = dict(from_cache)
    for role, fs in spec.files.items():
        if role in values:
            continue
        parsed = _repair_cache(spec, role, fs, search, fetch=True, progress=progress)
        if parsed is None:
            raise search.error()
        values[role] = parsed
    return values, ("download" if search.downloaded else "user cache"), str(cache_folder)


def _assemble(spec: DatasetSpec, values: dict[str, object], where: str):
    if spec.reader == "idx":
        X_train, y_train = values["train_images"], values["train_labels"]
        X_test, y_test = values["test_images"], values["test_labels"]
    else:
        X_train, y_train = values["train"]
        X_test, y_test = values["test"]
    for split, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
        if len(X) != len(y):  # each file's count is checked against the registry, so this is a registry bug
            raise ChecksumError(f"{spec.title} ({spec.name}), {split} split from {where}: {len(X)} images but "
                                f"{len(y)} labels. The registry entry is inconsistent; report it as a bug.")
    return X_train, y_train, X_test, y_test


def _digits_stand_in(stand_in_for: str) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), upscaled to 28x28 uint8, split 80/20 (seeded, stratified)."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = zoom(digits.images, (1, 28 / 8, 28 / 8), order=1)  # 0..16 values, bilinear
    images = np.clip(np.rint(images * (255 / 16)), 0, 255).astype(np.uint8)
    X_tr, X_te, y_tr, y_te = train_val_split(images, digits.target.astype(np.int64), val_fraction=0.2, seed=0)
    return Dataset("digits-8x8", "scikit-learn digits (8x8, upscaled to 28x28)", X_tr, y_tr, X_te, y_te,
                   list(DIGIT_CLASSES), source="bundled with scikit-learn", location="sklearn.datasets.load_digits",
                   stand_in_for=stand_in_for)


# --------------------------------------------------------------------------- public API
def load(name: str, *, stand_in: bool = False, download: bool = True, progress: bool = True) -> Dataset:
    """Load dataset ``name`` ('fashion-mnist', 'mnist' or 'sign-mnist') as uint8 images and int64 labels.

    Looks in the places listed in the module docstring and returns the first complete, verified
    copy; safe to call from several processes at once. Raises :class:`DatasetNotFoundError` when
    none is found (``download=False`` or ``COURSE_OFFLINE=1`` skip the download), ``ValueError``
    for an unknown name. Skipped, deleted or unsaved files are reported as :class:`DataWarning`.

    With ``stand_in=True``, a dataset that cannot be found or downloaded is replaced by
    Fashion-MNIST (if reachable, and if it is not the dataset asked for), else scikit-learn's
    digits; the result's ``stand_in_for`` names what it replaces and ``note()`` says so.
    """
    spec = _spec(name)
    try:
        values, source, location = _find(spec, download=download, progress=progress)
    except DatasetNotFoundError:
        if not stand_in:
            raise
        if spec.name != "fashion-mnist":
            try:
                ds = load("fashion-mnist", download=download, progress=progress)
                ds.stand_in_for = spec.name
                return ds
            except DatasetNotFoundError:
                pass
        return _digits_stand_in(spec.name)
    X_train, y_train, X_test, y_test = _assemble(spec, values, location)
    return Dataset(spec.name, spec.title, X_train, y_train, X_test, y_test, list(spec.classes),
                   source=source, location=location, info={"license": spec.license, "citation": spec.citation})


def show_note(ds: Dataset) -> None:
    """Say which data a chapter runs on, under its title: with the dataset asked for, print
    ``ds.note()`` (one quiet line); with a stand-in, display a warning box that says so (HTML in a
    notebook, with ``ds.note()`` as its plain-text form, which is all a terminal shows)."""
    if not ds.is_stand_in:
        print(ds.note())
        return
    try:
        from IPython.display import display
    except ImportError:  # no IPython (a script): the note says it all
        print(ds.note())
        return
    import html

    wanted = _spec(ds.stand_in_for).title
    box = ('<div class="admonition warning" style="border-left: 0.4em solid #e08e0b; padding: 0.2em 0.8em; '
           'margin: 0.5em 0">'
           f'<p class="admonition-title"><strong>Stand-in data: this page ran on {html.escape(ds.title)}, not '
           f'{html.escape(wanted)}</strong></p>'
           f'<p>{html.escape(ds.note())} The class names, number of classes, chance rate and figure titles come from '
           'the loaded data; the numbers in the text are those of the data the book ran on. With a network, the '
           f'loader downloads {html.escape(wanted)} and the same code runs on it.</p></div>')
    display({"text/plain": ds.note(), "text/html": box}, raw=True)


def train_val_split(X, y, val_fraction: float = 0.1, seed: int = 0):
    """Seeded, stratified split: returns ``X_train, X_val, y_train, y_val`` (each class keeps its share).

    ``X`` and ``y`` are arrays (NumPy or PyTorch) with one row and one label per sample; the validation set
    holds ``ceil(val_fraction * len(y))`` samples. This is the split of scikit-learn's
    ``train_test_split(X, y, test_size=val_fraction, random_state=seed, stratify=y)`` (its
    ``StratifiedShuffleSplit``), index for index (``tests/test_data.py`` compares the two), written out
    with NumPy: importing scikit-learn costs about 1.8 s of CPU, most of a short ``train.py`` run, and the
    book's splits then do not depend on the scikit-learn version a reader has.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}; pass the share to hold out, e.g. 0.1")
    for name, a in (("X", X), ("y", y)):
        if not _is_array(a):
            raise TypeError(f"train_val_split: {name} must be a NumPy array or a torch tensor, got "
                            f"{type(a).__name__}; convert it first, e.g. np.asarray({name})")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}; pass images and labels of the same split")
    seed = validation.seed("seed", seed, maximum=2**32 - 1)
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y must hold one label per sample (1-D), got shape {labels.shape}")
    n_val = math.ceil(val_fraction * len(labels))
    n_train = len(labels) - n_val
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"classes {classes[counts < 2].tolist()} have one sample each; a stratified split needs "
                         "at least two of every class")
    if min(n_train, n_val) < len(classes):
        raise ValueError(f"val_fraction={val_fraction} leaves {n_train} training and {n_val} validation samples, "
                         f"fewer than the {len(classes)} classes; choose a fraction that leaves one of each on both sides")
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])  # each class's indices
    rng = np.random.RandomState(seed)  # scikit-learn's check_random_state(seed)
    train_counts = _approximate_mode(counts, n_train, rng)
    val_counts = _approximate_mode(counts - train_counts, n_val, rng)
    train, val = [], []
    for k in range(len(classes)):
        shuffled = members[k].take(rng.permutation(counts[k]), mode="clip")
        train.extend(shuffled[: train_counts[k]])
        val.extend(shuffled[train_counts[k] : train_counts[k] + val_counts[k]])
    train, val = rng.permutation(train), rng.permutation(val)
    return X[train], X[val], y[train], y[val]


def _is_array(a) -> bool:
    """A NumPy array or a torch tensor (without importing torch: where it is not imported, no tensor exists)."""
    torch = sys.modules.get("torch")
    return isinstance(a, np.ndarray) or (torch is not None and isinstance(a, torch.Tensor))


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``n_draws`` samples each class gets: its share, rounded down, and the samples left over
    to the classes with the largest remainders (ties drawn at random); scikit-learn's helper of this name."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)
