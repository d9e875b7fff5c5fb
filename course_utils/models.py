"""Small PyTorch models, and a cache for their pretrained weights (chapter 7).

Chapter 7 (transfer learning) pretrains :class:`SmallCNN` on a source task,
then reuses it on a target task in three ways: trained from scratch, as a
frozen feature extractor with a new linear head (a *linear probe*), and fully
fine-tuned. The model is therefore split into two parts:

- ``model.backbone``: everything up to the feature vector, ``model.features(x)``;
- ``model.head``: one linear layer from the features to the class scores.

Nothing here downloads weights. Pretrained weights live only in the user cache
(``$COURSE_CACHE``, else ``~/.cache/course-book``: :func:`course_utils.cache.cache_dir`;
never in the repository), under a file name that holds a hash of the pretraining
configuration, next to a small JSON record with the file's SHA-256. :func:`load_or_pretrain` loads them when the
record and the file agree, and otherwise trains and saves them again. :func:`pretrained_smallcnn` is
chapter 7's one call: a SmallCNN pretrained on a source task with Adam, or loaded from the cache,
keyed by the data, the settings, the seed and the CPU's arithmetic kernels (:func:`arithmetic_key`).

Concurrency: several processes (notebooks, scripts, pytest workers) may ask for the same
weights at once. Readers take no lock and read each file once, verifying and loading the same
bytes. Every change to the cache happens while holding one ``filelock.FileLock`` per cached
configuration (``<cache>/models/.locks/<stem>.lock``); a process that finds no valid copy takes
it, checks again, and only then pretrains, so the others wait and load what it saved. Each file
is written to a temporary file in the same folder, flushed to disk (fsync) and renamed over the
target with ``os.replace``, the weights first, then their record: a reader sees whole files
only, and one that catches the moment between the two renames sees a mismatch, which sends it
to the lock (the reading, locking and installing are :mod:`course_utils.cache`'s, shared with the
data layer). Damaged copies and a cache that cannot be written are reported as
:class:`WeightsWarning`, naming the file.

The optional ImageNet ResNet-18 helpers (:func:`find_resnet18_weights`,
:func:`imagenet_resnet18`, :func:`resnet18_features`) only use weights that are
already on disk, in the torch hub cache; without torchvision or without those
weights they report why.

Why one module: the model, the verified cache of its pretrained weights and the pretraining that
fills it are used together, by one chapter, and change together (a new model argument changes the
cache key); the file machinery they stand on (locks, atomic installs) is already shared, in
:mod:`course_utils.cache`.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import random
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

from . import cache, validation
from .cache import cache_dir

__all__ = [
    "SmallCNN",
    "images_to_tensor",
    "set_backbone_trainable",
    "count_parameters",
    "extract_features",
    "cache_dir",
    "config_digest",
    "file_sha256",
    "cached_weights_path",
    "save_weights",
    "load_weights",
    "load_or_pretrain",
    "KERNEL_VARIABLES",
    "arithmetic_key",
    "pretrained_smallcnn",
    "WeightsError",
    "WeightsWarning",
    "find_resnet18_weights",
    "imagenet_resnet18",
    "resnet18_features",
]

IMAGE_SHAPE = (28, 28)


# --------------------------------------------------------------------------- the model
class SmallCNN(nn.Module):
    """A small convolutional classifier for 28x28 grey-scale images, split into backbone and head.

    Shapes for a batch of ``N`` images, with ``channels=(c1, c2)`` and ``feature_dim=d``::

        x                                   (N, 1, 28, 28)  float, pixels in [0, 1]
        conv 3x3 (1 -> c1), ReLU, max-pool 2  (N, c1, 14, 14)
        conv 3x3 (c1 -> c2), ReLU, max-pool 2 (N, c2, 7, 7)
        flatten, linear (49 c2 -> d), ReLU    (N, d)          = features(x)   [backbone]
        linear (d -> num_classes)             (N, num_classes) = forward(x)   [head]

    The model has no batch normalisation and no dropout, so ``train()`` and
    ``eval()`` compute the same function, and a frozen backbone really is a fixed
    feature map (with batch normalisation, a "frozen" backbone in train mode
    would still update its running statistics).

    ``seed`` (optional) makes the initial weights independent of the global torch
    random state: the weights are drawn from a forked generator seeded with it.
    """

    def __init__(self, num_classes: int = 10, channels: tuple[int, int] = (16, 32), feature_dim: int = 128, seed: int | None = None):
        super().__init__()
        if not validation.is_int(num_classes) or num_classes < 2:
            raise ValueError(f"SmallCNN: num_classes must be an integer >= 2, got {num_classes!r}")
        if (not isinstance(channels, (tuple, list)) or len(channels) != 2
                or any(not validation.is_int(c) or c < 1 for c in channels)):
            raise ValueError(f"SmallCNN: channels must be two positive integers, got {channels!r}")
        feature_dim = validation.positive_int("SmallCNN: feature_dim", feature_dim)
        num_classes = int(num_classes)
        channels = tuple(int(c) for c in channels)
        self.num_classes = num_classes
        self.channels = channels
        self.feature_dim = feature_dim
        c1, c2 = channels
        with _maybe_seeded(seed):
            self.backbone = nn.Sequential(
                nn.Conv2d(1, c1, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(c1, c2, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(c2 * 7 * 7, feature_dim),
                nn.ReLU(),
            )
            self.head = nn.Linear(feature_dim, num_classes)

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"SmallCNN expects a torch.Tensor, got {type(x).__name__}; convert uint8 images with images_to_tensor(X)")
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, *IMAGE_SHAPE):
            raise ValueError(f"SmallCNN expects input of shape (N, 1, 28, 28), got {tuple(x.shape)}; convert (N, 28, 28) uint8 images with images_to_tensor(X)")
        if not x.is_floating_point():
            raise TypeError(f"SmallCNN expects a floating-point tensor, got dtype {x.dtype}; convert uint8 images with images_to_tensor(X)")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's output, shape ``(N, feature_dim)``: what a linear probe sees."""
        self._check_input(x)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (logits), shape ``(N, num_classes)``."""
        return self.head(self.features(x))

    def replace_head(self, num_classes: int, seed: int | None = None) -> "SmallCNN":
        """Put a new, freshly initialised linear head with ``num_classes`` outputs on the backbone (in place)."""
        if not validation.is_int(num_classes) or num_classes < 2:
            raise ValueError(f"replace_head: num_classes must be an integer >= 2, got {num_classes!r}")
        num_classes = int(num_classes)
        device = next(self.backbone.parameters()).device
        with _maybe_seeded(seed):
            self.head = nn.Linear(self.feature_dim, num_classes).to(device)
        self.num_classes = num_classes
        return self

    def config(self) -> dict:
        """The constructor arguments (without the seed), e.g. for a cache key."""
        return {"num_classes": self.num_classes, "channels": list(self.channels), "feature_dim": self.feature_dim}


class _maybe_seeded:
    """Context manager: inside, the global torch RNG is seeded with ``seed``; afterwards it is as before."""

    def __init__(self, seed: int | None):
        seed = validation.seed("seed", seed, allow_none=True)
        self.seed = seed
        self._fork = None

    def __enter__(self):
        if self.seed is not None:
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            torch.manual_seed(int(self.seed))
        return self

    def __exit__(self, *exc):
        if self._fork is not None:
            return self._fork.__exit__(*exc)
        return False


def images_to_tensor(X) -> torch.Tensor:
    """uint8 images ``(N, 28, 28)`` (as the data layer returns them) -> float32 tensor ``(N, 1, 28, 28)`` in [0, 1].

    A pure conversion: zero images give an empty tensor of shape ``(0, 1, 28, 28)``.
    """
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if X.dtype != np.uint8:
        raise TypeError(f"images_to_tensor expects uint8 pixels (0..255) as returned by course_utils.data, got dtype {X.dtype}")
    if X.ndim != 3 or X.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images_to_tensor expects images of shape (N, 28, 28), got {X.shape}")
    return torch.from_numpy(X.astype(np.float32) / 255.0).unsqueeze(1)


def set_backbone_trainable(model: SmallCNN, trainable: bool) -> SmallCNN:
    """Freeze (``trainable=False``) or unfreeze the backbone's parameters; the head is left as it is."""
    if not hasattr(model, "backbone"):
        raise TypeError(f"set_backbone_trainable needs a model with a .backbone, got {type(model).__name__}")
    trainable = validation.check_bool("set_backbone_trainable: trainable", trainable)
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)
    return model


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module`` (only those with ``requires_grad`` when ``trainable_only``)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"count_parameters needs a torch.nn.Module, got {type(module).__name__}")
    trainable_only = validation.check_bool("count_parameters: trainable_only", trainable_only)
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def extract_features(model: SmallCNN, X, batch_size: int = 256) -> np.ndarray:
    """``model.features`` of uint8 images ``X`` (N, 28, 28), N >= 1, as a float32 array ``(N, feature_dim)``.

    Runs in eval mode without gradients, ``batch_size`` (a positive integer) images at a time,
    on the model's device; the model's mode is restored afterwards. Zero images raise a
    ``ValueError``.
    """
    batch_size = validation.positive_int("extract_features: batch_size", batch_size)
    if not callable(getattr(model, "features", None)):
        raise TypeError(f"extract_features needs a model with a .features(x) method (SmallCNN), got {type(model).__name__}")
    x = images_to_tensor(X)
    if len(x) == 0:
        raise ValueError(f"extract_features: X is empty (shape {np.shape(X)}); pass at least one image")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [model.features(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


# --------------------------------------------------------------------------- weight cache
LOCK_TIMEOUT_S = 1800  # how long load_or_pretrain waits while another process pretrains the same configuration


class WeightsError(RuntimeError):
    """A cached weights file is missing, does not match its checksum, or belongs to another configuration."""


class WeightsWarning(UserWarning):
    """The weights cache was damaged and is being repaired, or could not be locked or written.

    The message names the file, says what was wrong and what happens next.
    """


def _warn(message: str) -> None:
    """A :class:`WeightsWarning`, attributed to the first caller outside this module (the line that called it)."""
    cache.warn(message, WeightsWarning, __name__)


def config_digest(config: Mapping) -> str:
    """SHA-256 (hex) of a JSON-serialisable configuration, independent of key order."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config_digest expects a mapping (dict), got {type(config).__name__}")
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"config_digest: the configuration must hold only JSON values (str, int, finite float, bool, "
                        f"None, lists, dicts with string keys): {exc}") from exc
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_weights_path(name: str, config: Mapping, root=None) -> Path:
    """Where the weights for ``config`` live: ``<root>/models/<name>-<first 16 hex digits of the config hash>.pt``.

    ``root`` defaults to :func:`cache_dir`. The JSON record sits beside it with suffix ``.json``.
    """
    if not isinstance(name, str) or not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"cached_weights_path: name must be a plain file-name stem, got {name!r}")
    root = Path(root) if root is not None else cache_dir()
    return root / "models" / f"{name}-{config_digest(config)[:16]}.pt"


def _record_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def _lock_path(path: Path) -> Path:
    """The lock of one cached file pair: ``<folder>/.locks/<stem>.lock``."""
    return path.parent / ".locks" / f"{path.stem}.lock"


def _file_lock(path: Path):
    """The lock of the pair ``path`` + record (not yet acquired); an ``OSError`` means the folder
    cannot be written."""
    return cache.file_lock(_lock_path(path), LOCK_TIMEOUT_S, "course_utils.models")


def _sweep_parts(path: Path) -> None:
    """Remove temporary files a killed process left beside ``path`` and its record (only under the lock)."""
    record = _record_path(path)
    cache.sweep_parts(path, record, also=(f"{path.name}.tmp*", f"{record.name}.tmp*"))  # .tmp*: older save_weights


def _record_for(path: Path, config: Mapping | None) -> dict:
    record = {"config": dict(config) if config is not None else None, "file": path.name}
    config_digest(record)  # a configuration that cannot be recorded fails here, before any file is written
    return record


def _write_pair(model: nn.Module, path: Path, record: dict) -> str:
    """Serialise ``model``'s state dict and install it, then its record (call while holding the lock).

    The weights are serialised into memory (the same bytes for the same weights, whatever the file
    name) and hashed there; each file is installed atomically. A reader that looks between the
    two installs sees a record that does not match the weights and treats the cache as invalid.
    """
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    blob = buf.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.install(path, blob)
    record = dict(record, sha256=digest, bytes=len(blob))
    cache.install(_record_path(path), (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    return digest


def save_weights(model: nn.Module, path, config: Mapping | None = None) -> str:
    """Save ``model.state_dict()`` to ``path`` and a JSON record ``{sha256, bytes, config, file}`` beside it.

    Safe under concurrency: the pair is written while holding ``<folder>/.locks/<stem>.lock``
    (a ``filelock.FileLock``, waiting up to ``LOCK_TIMEOUT_S``), and each file is written to a
    temporary file in the same folder, flushed to disk (fsync) and renamed over the target, so an
    interrupted save never leaves a file that looks complete. Returns the SHA-256 of the weights
    file. Raises ``OSError`` when the folder cannot be written (``filelock.Timeout``, a
    ``TimeoutError``, when another process holds the lock all that time) and ``TypeError`` for a
    configuration that is not JSON (before anything is written).
    """
    path = Path(path)
    record = _record_for(path, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path):
        _sweep_parts(path)
        return _write_pair(model, path, record)


def _state_from_bytes(blob: bytes, path: Path):
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to decode means the file is not usable
        raise WeightsError(f"{path} is not a readable weights file ({type(exc).__name__}: {exc})") from exc


def load_weights(model: nn.Module, path, config: Mapping | None = None, sha256: str | None = None) -> str:
    """Load weights saved by :func:`save_weights` into ``model`` after checking them.

    Checks, in order: the file and its JSON record exist; the file's SHA-256 equals
    ``sha256`` (default: the one in the record); the record's configuration equals
    ``config`` (when given); the tensors fit the model. Raises :class:`WeightsError`
    naming what failed; the model is left unchanged then. Returns the SHA-256.

    Each file is read once: the weights are hashed and loaded from the same bytes, so a file
    that another process replaces or damages meanwhile cannot slip in between the check and the
    load. No lock is taken (readers never wait); a record written by another process between
    the reads of the two files shows up as a mismatch, a :class:`WeightsError`.
    """
    path = Path(path)
    record_file = _record_path(path)
    try:
        blob = cache.read_once(path)
    except FileNotFoundError:
        raise WeightsError(f"no weights file at {path}") from None
    except OSError as exc:
        raise WeightsError(f"weights file {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    record = {}
    if sha256 is None or config is not None:
        try:
            text = cache.read_once(record_file)
        except FileNotFoundError:
            raise WeightsError(f"no checksum record {record_file.name} beside {path.name} (in {path.parent}); "
                               "cannot verify the weights") from None
        except OSError as exc:
            raise WeightsError(f"checksum record {record_file} cannot be read ({type(exc).__name__}: {exc})") from exc
        try:
            record = json.loads(text)
            recorded_sha = record["sha256"]
            if not isinstance(recorded_sha, str):
                raise TypeError(f"sha256 is {recorded_sha!r}, not a string")
        except (ValueError, KeyError, TypeError) as exc:
            raise WeightsError(f"checksum record {record_file} is unreadable ({exc!r})") from exc
        if sha256 is None:
            sha256 = recorded_sha
        if config is not None and record.get("config") != json.loads(json.dumps(dict(config))):
            raise WeightsError(f"{path.name} was saved for another configuration (record {record_file}): "
                               f"{record.get('config')} != {dict(config)}")
    actual = hashlib.sha256(blob).hexdigest()
    if actual != sha256:
        size = record.get("bytes") if isinstance(record, dict) else None
        state = "truncated" if isinstance(size, int) and len(blob) < size else "corrupted or replaced"
        sizes = f"{len(blob):,} bytes" + (f", the record says {size:,}" if isinstance(size, int) and size != len(blob) else "")
        raise WeightsError(f"SHA-256 mismatch for {path}: expected {sha256}, file has {actual} ({sizes}); "
                           f"the file is {state}, or its record {record_file.name} does not belong to it")
    state = _state_from_bytes(blob, path)
    # Check every key and shape first: load_state_dict copies the tensors that fit before it
    # reports the ones that do not, which would leave the model half-loaded.
    own = model.state_dict()
    if not isinstance(state, Mapping) or any(not isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path.name} does not hold a state dict of tensors")
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise WeightsError(f"{path.name} does not fit the model {type(model).__name__}: missing {missing}, "
                           f"unexpected {unexpected}, shape mismatches {wrong}")
    try:
        device = next(model.parameters()).device
        model.load_state_dict({k: v.to(device) for k, v in state.items()}, strict=True)
    except (RuntimeError, AttributeError, ValueError) as exc:  # pragma: no cover - checked above
        raise WeightsError(f"{path.name} does not fit the model {type(model).__name__}: {exc}") from exc
    return actual


def _architecture(model: nn.Module) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _exists(path: Path) -> bool:
    try:
        return os.path.lexists(path)
    except OSError:  # pragma: no cover - lexists does not raise on Linux
        return True


@contextlib.contextmanager
def _cache_lock(path: Path, verbose: bool):
    """Hold the lock of one cached configuration. Yields ``(True, "")`` when held, else ``(False, why)``:
    the folder cannot be locked (so it cannot be written either), or another process held the lock
    for ``LOCK_TIMEOUT_S``."""
    lock = None
    try:
        lock = _file_lock(path)
        try:
            lock.acquire(blocking=False)
        except cache.LockTimeout:
            if verbose:
                print(f"waiting for another process that is pretraining the same configuration ({path.name})")
            lock.acquire(timeout=LOCK_TIMEOUT_S)
        held, why = True, ""
    except cache.LockTimeout:
        lock, held = None, False
        why = (f"another process held the cache's lock {_lock_path(path)} for {LOCK_TIMEOUT_S} s (it is still "
               "pretraining the same configuration)")
    except OSError as exc:
        lock, held = None, False
        why = f"the cache cannot be locked ({_lock_path(path)}: {type(exc).__name__}: {exc})"
    try:
        yield held, why
    finally:
        if lock is not None:
            lock.release()


def load_or_pretrain(
    model: nn.Module,
    config: Mapping,
    pretrain: Callable[[nn.Module], object],
    name: str = "small-cnn",
    root=None,
    verbose: bool = True,
) -> str:
    """Fill ``model`` with pretrained weights: from the user cache if a verified copy exists, else by training.

    ``config`` describes the pretraining (data, sizes, epochs, learning rate, seed, ...);
    the cache key is its hash together with the torch version and the model's
    parameter shapes, since each of them changes the weights. ``pretrain(model)``
    trains the model in place; it must be deterministic (seeded, on the CPU, one
    thread) so that cached and freshly trained weights are the same.

    The global random states of torch, NumPy and ``random`` are restored afterwards,
    so the code after this call sees the same random state whichever way the
    weights came. The model is returned in eval mode.

    Returns ``"cache"`` or ``"trained"``.

    Safe under concurrency (several notebooks, scripts or test workers at once): a verified
    cache is loaded without waiting. Otherwise the process takes the configuration's lock
    (``<root>/models/.locks/<stem>.lock``), checks the cache again, and only then pretrains and
    saves; processes that waited for the lock load what it saved, so each configuration is
    pretrained once. A cached file that is corrupted, truncated or missing, or a record that does
    not match it, is named in a :class:`WeightsWarning` and replaced by a fresh training run.
    When the cache cannot be locked or written (a read-only folder), or another process holds
    the lock for ``LOCK_TIMEOUT_S``, a :class:`WeightsWarning` says so and the freshly trained
    weights are returned from memory without touching the cache.
    """
    key = {"config": dict(config), "torch": torch.__version__.split("+")[0], "architecture": _architecture(model)}
    path = cached_weights_path(name, key, root=root)

    def loaded() -> str:
        if verbose:
            print(f"loaded pretrained weights from the cache ({path.name}, SHA-256 verified)")
        model.eval()
        return "cache"

    try:  # the common case: a verified cache, read without waiting for anyone
        load_weights(model, path, config=key)
        return loaded()
    except WeightsError:
        pass  # perhaps damaged, perhaps being written right now: decided under the lock

    with _cache_lock(path, verbose) as (held, why):
        # Under the lock no other process writes this pair: what is seen now is what is there.
        first_use = not _exists(path) and not _exists(_record_path(path))
        problem = None
        if not first_use:
            try:
                load_weights(model, path, config=key)
                return loaded()  # another process saved it while this one waited
            except WeightsError as exc:
                problem = str(exc)
        if problem is not None:
            then = ("Pretraining again and replacing the cached copy." if held
                    else f"Pretraining again; {why}, so the cached copy is left as it is.")
            _warn(f"Cached pretrained weights rejected: {problem}. {then}")
            if verbose:
                print(f"cached weights rejected, pretraining again ({path.name}; see the warning)")
        elif not held:
            _warn(f"Pretrained weights {path} are not cached and will not be: {why}. Pretraining here; the weights "
                  "are used from memory and pretraining runs again next time. Make that folder writable, or point "
                  "COURSE_CACHE (or root=) at a writable folder.")

        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                pretrain(model)
        finally:  # also when pretrain raises: the caller's random state is as before
            np.random.set_state(np_state)
            random.setstate(py_state)

        if held:
            try:
                _sweep_parts(path)
                _write_pair(model, path, _record_for(path, key))
            except OSError as exc:  # a read-only home must not stop the chapter
                _warn(f"Pretrained weights could not be saved into the cache as {path} ({type(exc).__name__}: {exc}); "
                      "they are used from memory and pretraining runs again next time. Remove whatever is in the "
                      "way, or point COURSE_CACHE (or root=) at a writable folder.")
                if verbose:
                    print(f"pretrained; not saved to the cache ({path.name}; see the warning)")
            else:
                if verbose:
                    print(f"pretrained and saved to the cache ({path.name})")
        elif verbose:
            print(f"pretrained; not saved to the cache ({path.name}; see the warning)")
    model.eval()
    return "trained"


# --------------------------------------------------------------------------- pretraining on a source task
# Environment variables that choose the CPU's arithmetic kernels: BLAS (NumPy's OpenBLAS, PyTorch's MKL),
# oneDNN's convolutions and PyTorch's own vectorised kernels. Another choice rounds differently, and
# training turns different roundings into different weights, so they belong to the cache key.
KERNEL_VARIABLES = ("OPENBLAS_CORETYPE", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def arithmetic_key() -> dict:
    """The settings that select this process's arithmetic kernels (part of a pretraining cache key):
    :data:`KERNEL_VARIABLES` as set in the environment, and the vector extension PyTorch uses."""
    key = {v: os.environ.get(v, "") for v in KERNEL_VARIABLES}
    key["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return key


def pretrained_smallcnn(X, y, *, seed: int, epochs: int, lr: float, batch_size: int,
                        channels: tuple[int, int] = (16, 32), feature_dim: int = 128,
                        name: str = "smallcnn", root=None, progress: bool = True,
                        verbose: bool = True) -> tuple[SmallCNN, str]:
    """A :class:`SmallCNN` pretrained on the source task ``(X, y)``, or loaded from the user cache.

    Pretraining: ``SmallCNN(num_classes, channels, feature_dim, seed=seed)`` (one class per label
    0..max(y)) trained with Adam at learning rate ``lr`` for ``epochs`` passes over
    ``training.make_loader(images_to_tensor(X), y, batch_size, seed=seed)``, on the CPU with one
    thread, the model in ``channels_last`` memory format (faster convolutions and pooling on a CPU).
    Seeded throughout, so one machine always gets the same weights.

    The weights are cached by :func:`load_or_pretrain` under a hash of everything that decides them:
    the images and labels (SHA-256 of their bytes), the settings above, the seed, the torch version,
    the model's shapes and :func:`arithmetic_key` (another CPU, or another kernel setting, gets
    its own file). ``X``: uint8 images (N, 28, 28); ``y``: N class ids. Returns ``(model, came_from)``
    with ``came_from`` ``"cache"`` or ``"trained"``; the model is in eval mode, in ``channels_last``.
    """
    from . import runtime, training

    X = np.asarray(X)
    y_arr = np.asarray(y)
    x = images_to_tensor(X)  # checks dtype and shape
    if len(x) == 0:
        raise ValueError("pretrained_smallcnn: X is empty; pass at least one image of the source task")
    if y_arr.ndim != 1 or len(y_arr) != len(x) or y_arr.dtype.kind not in "iu":
        raise ValueError(f"pretrained_smallcnn: y must hold one integer class id per image ({len(x)}), got "
                         f"shape {y_arr.shape} and dtype {y_arr.dtype}")
    if y_arr.min() < 0:
        raise ValueError(f"pretrained_smallcnn: class ids must be >= 0, got {y_arr.min()}")
    seed = validation.seed("pretrained_smallcnn: seed", seed)
    epochs = validation.positive_int("pretrained_smallcnn: epochs", epochs)
    batch_size = validation.positive_int("pretrained_smallcnn: batch_size", batch_size)
    lr = validation.nonnegative_real("pretrained_smallcnn: lr", lr, positive=True)
    num_classes = max(int(y_arr.max()) + 1, 2)
    model = SmallCNN(num_classes, channels=channels, feature_dim=feature_dim, seed=seed)
    config = {
        "images_sha256": hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest(),
        "labels_sha256": hashlib.sha256(y_arr.astype(np.int64).tobytes()).hexdigest(),
        "optimizer": "Adam", "lr": lr, "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "memory_format": "channels_last", "kernels": arithmetic_key(),
    }
    model.to(memory_format=torch.channels_last)

    def pretrain(net):
        loader = training.make_loader(x, y_arr.astype(np.int64), batch_size, seed=seed)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        with runtime.blas_threads(1):
            training.fit(net, loader, loss_fn=nn.functional.cross_entropy, optimizer=opt, num_epochs=epochs,
                         device="cpu", progress=progress, desc=f"pretraining (seed {seed})")

    came_from = load_or_pretrain(model, config, pretrain, name=name, root=root, verbose=verbose)
    return model.to(memory_format=torch.channels_last), came_from


# --------------------------------------------------------------------------- optional ImageNet ResNet-18
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_resnet18_weights() -> tuple[Path | None, str]:
    """Look for torchvision and for ImageNet ResNet-18 weights already in the torch hub cache.

    Never downloads. Returns ``(path, note)``: ``path`` is None when the optional
    section cannot run, and ``note`` says why (or which file was found).
    """
    if importlib.util.find_spec("torchvision") is None:
        return None, "torchvision is not installed, so the ImageNet ResNet-18 comparison is skipped."
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(checkpoints.glob("resnet18-*.pth"))
    if not found:
        return None, (
            "no ImageNet ResNet-18 weights in the torch hub cache (checkpoints/resnet18-*.pth), so the comparison is "
            "skipped; nothing is downloaded here. To enable it, run torchvision.models.resnet18(weights='IMAGENET1K_V1') "
            "once on a machine with a network."
        )
    return found[0], f"found ImageNet ResNet-18 weights: {found[0].name}"


def imagenet_resnet18(path) -> nn.Module:
    """torchvision's ResNet-18 with the ImageNet weights from ``path`` (no download), in eval mode."""
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


@torch.no_grad()
def resnet18_features(model: nn.Module, X, size: int = 64, batch_size: int = 128) -> np.ndarray:
    """512-dimensional ResNet-18 features (the input of its last layer) of uint8 images ``X`` (N, 28, 28).

    Each grey image is resized to ``size`` x ``size``, copied into the three colour
    channels and normalised with the ImageNet mean and standard deviation. ``X`` holds at
    least one image; ``size`` and ``batch_size`` are positive integers.
    """
    size = validation.positive_int("resnet18_features: size", size)
    batch_size = validation.positive_int("resnet18_features: batch_size", batch_size)
    x = images_to_tensor(X)
    if len(x) == 0:
        raise ValueError(f"resnet18_features: X is empty (shape {np.shape(X)}); pass at least one image")
    device = next(model.parameters()).device
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    trunk = nn.Sequential(*list(model.children())[:-1])  # everything but the final fc layer
    trunk.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = torch.nn.functional.interpolate(x[i : i + batch_size], size=(size, size), mode="bilinear", align_corners=False)
        xb = (xb.expand(-1, 3, -1, -1) - mean) / std
        out.append(trunk(xb.to(device)).flatten(1).cpu())
    return torch.cat(out).numpy()
