"""Every dataset the book uses: a registry, one verified loader, stand-ins and a split helper.

Introduced in chapter 0 (the data notebook); used by chapters 4, 5 and 7.

Where a file is looked for, in order (the first copy that verifies wins):

1. ``$COURSE_DATA/<dataset>/`` (a local mirror; CI points it at ``../shared/data``);
2. the user cache, ``$COURSE_CACHE/data/<dataset>/`` (default ``~/.cache/course-book``);
3. system dataset folders, ``/usr/share/datasets/<dataset>/`` (Debian's ``dataset-fashion-mnist``
   package installs there with rewritten gzip headers, so its files are verified by the SHA-256
   of their *decompressed* content);
4. a download into the user cache: each canonical URL in turn, streamed with a progress bar into a
   temporary file, verified, then renamed into place (an interrupted download never leaves a
   file that looks complete).

A file that fails verification is named in a warning and never used: in the user cache it is
deleted and fetched again; elsewhere (a mirror or system folder that is not ours to change) the
search moves on. When nothing verifies, :class:`DatasetNotFoundError` names the dataset, the
files, the places searched and the URLs. ``load(name, stand_in=True)`` returns a clearly
labelled stand-in instead (Fashion-MNIST when it is reachable, else scikit-learn's bundled 8x8
digits scaled to 28x28).

Set ``COURSE_OFFLINE=1`` to skip the download step.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = [
    "Dataset",
    "DatasetSpec",
    "FileSpec",
    "DATASETS",
    "DatasetNotFoundError",
    "ChecksumError",
    "load",
    "names",
    "cache_dir",
    "search_dirs",
    "train_val_split",
    "read_idx",
    "read_sign_mnist_csv",
]

SYSTEM_DIRS = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 30
CHUNK = 1 << 20


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
            # SHA-256 published by third-party loaders for these CSVs; not verified by us (no copy could be
            # obtained when the registry was written). A mismatch with a structurally valid file warns.
            "train": FileSpec("sign_mnist_train.csv", "4c2897f19fab2b0ae2a7e4fa82e969043315d9f3a1a9cc0948b576bf1189a7e5", sha256_verified=False),
            "test": FileSpec("sign_mnist_test.csv", "0e9d67bae23e67f40728e0b63bf15ad4bd5175947b8a9fac5dd9f17ce133c47b", sha256_verified=False),
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
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(names())}")
    return DATASETS[key]


# --------------------------------------------------------------------------- errors
class DatasetNotFoundError(FileNotFoundError):
    """No verified copy of a dataset could be found or downloaded."""


class ChecksumError(ValueError):
    """A file's bytes do not match the checksum pinned in the registry."""


# --------------------------------------------------------------------------- places
def cache_dir() -> Path:
    """The user cache root: ``$COURSE_CACHE``, else ``$XDG_CACHE_HOME/course-book``, else ``~/.cache/course-book``."""
    if os.environ.get("COURSE_CACHE"):
        return Path(os.environ["COURSE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "course-book"


def search_dirs(name: str) -> list[tuple[str, Path]]:
    """The (label, folder) pairs searched for dataset ``name``, in order."""
    spec = _spec(name)
    places = []
    if os.environ.get("COURSE_DATA"):
        places.append(("COURSE_DATA mirror", Path(os.environ["COURSE_DATA"]).expanduser() / spec.name))
    places.append(("user cache", cache_dir() / "data" / spec.name))
    for d in SYSTEM_DIRS:
        places.append(("system dataset folder", d / spec.name))
    return places


# --------------------------------------------------------------------------- verification
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, fs: FileSpec, structural: Callable[[Path], None] | None = None) -> str:
    """Return how ``path`` verified ('sha256', 'decompressed sha256', 'structure'), or raise ChecksumError."""
    if fs.sha256 is None:
        if structural is None:
            raise ChecksumError(f"{path}: no checksum pinned and no structural check available")
        structural(path)
        return "structure"
    digest = _sha256_file(path)
    if digest == fs.sha256:
        return "sha256"
    if fs.raw_sha256 is not None:
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            h = hashlib.sha256()
            with opener(path, "rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):
                    h.update(block)
            if h.hexdigest() == fs.raw_sha256:
                return "decompressed sha256"
        except (OSError, EOFError, zlib.error):
            pass  # truncated or not gzip: falls through to the error below
    if not fs.sha256_verified and structural is not None:
        structural(path)  # raises when the content is damaged
        warnings.warn(
            f"{path.name}: SHA-256 {digest} differs from the pinned {fs.sha256}, which is published by third "
            "parties and not verified; the file passed the structural checks (row count, columns, label and "
            "pixel ranges) and is used. Line endings (CRLF vs LF) change the hash without changing the data.",
            stacklevel=3,
        )
        return "structure"
    size = path.stat().st_size
    raise ChecksumError(
        f"{path}: SHA-256 mismatch (got {digest}, expected {fs.sha256}; {size:,} bytes"
        + (f", expected {fs.size:,}" if fs.size else "")
        + "). The file is corrupted or truncated."
    )


# --------------------------------------------------------------------------- download
def _download(url: str, dest: Path, fs: FileSpec, structural, progress: bool) -> None:
    """Stream ``url`` into a temporary file beside ``dest``, verify it, then rename it into place."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            total = resp.headers.get("Content-Length")
            with tqdm(total=int(total) if total else fs.size, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress, leave=False) as bar:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        _verify(tmp, fs, structural)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


# --------------------------------------------------------------------------- readers
def read_idx(path: Path | str, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a uint8 array; checks magic, dims and length."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            buf = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ChecksumError(f"{path}: cannot be decompressed ({exc}); the file is corrupted or truncated") from exc
    if len(buf) < 4:
        raise ChecksumError(f"{path}: {len(buf)} bytes is too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", buf[:4])
    magic = struct.unpack(">I", buf[:4])[0]
    if zero != 0 or dtype_code != 0x08:
        raise ChecksumError(f"{path}: not an unsigned-byte IDX file (magic 0x{magic:08x})")
    if expected_magic is not None and magic != expected_magic:
        raise ChecksumError(f"{path}: magic 0x{magic:08x}, expected 0x{expected_magic:08x}")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    expected = header + int(np.prod(dims))
    if len(buf) != expected:
        raise ChecksumError(f"{path}: {len(buf):,} bytes, but its header {dims} needs {expected:,}: truncated or padded")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims).copy()


def _sign_structure(expected_rows: int | None):
    def check(path: Path) -> None:
        read_sign_mnist_csv(path, expected_rows=expected_rows)

    return check


def read_sign_mnist_csv(path: Path | str, expected_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a Sign Language MNIST CSV (``label,pixel1..pixel784``).

    Returns images (N, 28, 28) uint8 and labels remapped from 0..24 (no 9) onto 0..23.
    Raises :class:`ChecksumError` naming the file for a bad header, a wrong column or row
    count, labels outside 0..24 or equal to 9, or pixels outside 0..255.
    """
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=np.int64)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ChecksumError(f"{path}: not a readable Sign Language MNIST CSV ({exc})") from exc
    cols = ["label"] + [f"pixel{i}" for i in range(1, 785)]
    if list(df.columns) != cols:
        raise ChecksumError(f"{path}: expected the {len(cols)} columns label,pixel1..pixel784, got {len(df.columns)} columns "
                            f"starting {list(df.columns[:3])}")
    if expected_rows is not None and len(df) != expected_rows:
        raise ChecksumError(f"{path}: {len(df):,} rows, expected {expected_rows:,}: truncated or not the original file")
    labels = df["label"].to_numpy()
    bad = np.unique(labels[(labels < 0) | (labels > 24) | (labels == 9)])
    if bad.size:
        raise ChecksumError(f"{path}: labels {bad.tolist()} are invalid (Sign Language MNIST uses 0..24 without 9)")
    pixels = df.iloc[:, 1:].to_numpy()
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise ChecksumError(f"{path}: pixel values outside 0..255")
    remap = np.where(labels > 9, labels - 1, labels)
    return pixels.astype(np.uint8).reshape(-1, 28, 28), remap.astype(np.int64)


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


# --------------------------------------------------------------------------- finding files
def _find_files(spec: DatasetSpec, download: bool, progress: bool) -> tuple[dict[str, Path], str, str]:
    structural = {role: (_sign_structure(spec.expected_counts[0 if role == "train" else 1]) if spec.reader == "sign-mnist-csv" else None)
                  for role in spec.files}
    rejected: list[str] = []
    for label, folder in search_dirs(spec.name):
        if not folder.is_dir():
            continue
        found: dict[str, Path] = {}
        for role, fs in spec.files.items():
            candidates = [folder / fs.filename]
            if fs.filename.endswith(".gz"):
                candidates.append(folder / fs.filename[:-3])  # an uncompressed copy verifies by raw_sha256
            for path in candidates:
                if not path.is_file():
                    continue
                try:
                    _verify(path, fs if path.suffix == ".gz" or not fs.filename.endswith(".gz") else
                            FileSpec(path.name, fs.raw_sha256, sha256_verified=fs.sha256_verified), structural[role])
                except ChecksumError as exc:
                    rejected.append(str(exc))
                    if label == "user cache":
                        warnings.warn(f"{exc} Deleting the cached copy; it will be fetched again.", stacklevel=3)
                        path.unlink()
                    else:
                        warnings.warn(f"{exc} Not used; looking elsewhere.", stacklevel=3)
                    continue
                found[role] = path
                break
        if len(found) == len(spec.files):
            return found, label, str(folder)
        # A folder with some but not all files: those files may still be completed by a download into the cache.

    cache = cache_dir() / "data" / spec.name
    errors: list[str] = []
    if download and os.environ.get("COURSE_OFFLINE") != "1":
        found = {}
        for role, fs in spec.files.items():
            dest = cache / fs.filename
            if dest.is_file():
                try:
                    _verify(dest, fs, structural[role])
                    found[role] = dest
                    continue
                except ChecksumError as exc:
                    warnings.warn(f"{exc} Deleting the cached copy; it will be fetched again.", stacklevel=3)
                    dest.unlink()
            for base in spec.urls:
                url = base + fs.filename
                try:
                    _download(url, dest, fs, structural[role], progress)
                    found[role] = dest
                    break
                except ChecksumError as exc:
                    errors.append(f"{url}: downloaded, but failed verification: {exc}")
                except (urllib.error.URLError, OSError, TimeoutError) as exc:
                    errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            if role not in found:
                break
        if len(found) == len(spec.files):
            return found, "download", str(cache)
    elif not download:
        errors.append("downloading was not allowed (download=False)")
    else:
        errors.append("downloading was skipped (COURSE_OFFLINE=1)")

    searched = "\n".join(f"  - {label}: {folder}" for label, folder in search_dirs(spec.name))
    files = ", ".join(fs.filename for fs in spec.files.values())
    urls = "\n".join(f"  - {base}<file>" for base in spec.urls)
    msg = (f"Dataset {spec.title!r} ({spec.name}) was not found.\n"
           f"Files needed: {files}\nPlaces searched:\n{searched}\nURLs tried:\n{urls}\n")
    if rejected:
        msg += "Files found but rejected:\n" + "\n".join(f"  - {r}" for r in rejected) + "\n"
    if errors:
        msg += "Download attempts:\n" + "\n".join(f"  - {e}" for e in errors) + "\n"
    msg += ("To fix: put the files in $COURSE_DATA/" + spec.name + "/ (a local mirror) or in " + str(cache) +
            ", or connect to the internet and load again.")
    raise DatasetNotFoundError(msg)


def _read(spec: DatasetSpec, paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if spec.reader == "idx":
        X_train = read_idx(paths["train_images"], 0x803)
        y_train = read_idx(paths["train_labels"], 0x801).astype(np.int64)
        X_test = read_idx(paths["test_images"], 0x803)
        y_test = read_idx(paths["test_labels"], 0x801).astype(np.int64)
    else:
        X_train, y_train = read_sign_mnist_csv(paths["train"])
        X_test, y_test = read_sign_mnist_csv(paths["test"])
    for split, X, y, n in (("train", X_train, y_train, spec.expected_counts[0]), ("test", X_test, y_test, spec.expected_counts[1])):
        if len(X) != len(y):
            raise ChecksumError(f"{spec.title} {split}: {len(X)} images but {len(y)} labels")
        if X.shape[1:] != (28, 28):
            raise ChecksumError(f"{spec.title} {split}: images of shape {X.shape[1:]}, expected (28, 28)")
        if y.size and (y.min() < 0 or y.max() >= len(spec.classes)):
            raise ChecksumError(f"{spec.title} {split}: labels outside 0..{len(spec.classes) - 1}")
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

    With ``stand_in=True``, a dataset that cannot be found or downloaded is replaced by
    Fashion-MNIST (if reachable, and if it is not the dataset asked for), else scikit-learn's
    digits; the result's ``stand_in_for`` names what it replaces and ``note()`` says so.
    """
    spec = _spec(name)
    try:
        paths, source, location = _find_files(spec, download=download, progress=progress)
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
    X_train, y_train, X_test, y_test = _read(spec, paths)
    return Dataset(spec.name, spec.title, X_train, y_train, X_test, y_test, list(spec.classes),
                   source=source, location=location, info={"license": spec.license, "citation": spec.citation})


def train_val_split(X, y, val_fraction: float = 0.1, seed: int = 0):
    """Seeded, stratified split: returns ``X_train, X_val, y_train, y_val`` (each class keeps its share)."""
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    return train_test_split(X, y, test_size=val_fraction, random_state=seed, stratify=y)
