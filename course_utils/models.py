"""Small PyTorch models, and a cache for their pretrained weights (chapter 7).

Chapter 7 (transfer learning) pretrains :class:`SmallCNN` on a source task,
then reuses it on a target task in three ways: trained from scratch, as a
frozen feature extractor with a new linear head (a *linear probe*), and fully
fine-tuned. The model is therefore split into two parts:

- ``model.backbone``: everything up to the feature vector, ``model.features(x)``;
- ``model.head``: one linear layer from the features to the class scores.

Nothing here downloads weights. Pretrained weights live only in the user cache
(``$COURSE_CACHE``, else ``~/.cache/course-book``, by the data layer's rule; never
in the repository), under a file name that holds a hash of the pretraining
configuration, next to a small JSON record with the file's SHA-256. :func:`load_or_pretrain` loads them when the
record and the file agree, and otherwise trains and saves them again.

The optional ImageNet ResNet-18 helpers (:func:`find_resnet18_weights`,
:func:`imagenet_resnet18`, :func:`resnet18_features`) only use weights that are
already on disk, in the torch hub cache; without torchvision or without those
weights they report why and the chapter skips that section.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import numbers
import os
import pickle
import random
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

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
    "WeightsError",
    "find_resnet18_weights",
    "imagenet_resnet18",
    "resnet18_features",
]

IMAGE_SHAPE = (28, 28)


def _is_int(n) -> bool:
    return isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_))


def _positive_int(name: str, n) -> int:
    if not _is_int(n) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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
        if not _is_int(num_classes) or num_classes < 2:
            raise ValueError(f"SmallCNN: num_classes must be an integer >= 2, got {num_classes!r}")
        if (not isinstance(channels, (tuple, list)) or len(channels) != 2
                or any(not _is_int(c) or c < 1 for c in channels)):
            raise ValueError(f"SmallCNN: channels must be two positive integers, got {channels!r}")
        if not _is_int(feature_dim) or feature_dim < 1:
            raise ValueError(f"SmallCNN: feature_dim must be a positive integer, got {feature_dim!r}")
        num_classes, feature_dim = int(num_classes), int(feature_dim)
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
        if not _is_int(num_classes) or num_classes < 2:
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
        if seed is not None and (not _is_int(seed) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
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
    trainable = _check_bool("set_backbone_trainable: trainable", trainable)
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)
    return model


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module`` (only those with ``requires_grad`` when ``trainable_only``)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"count_parameters needs a torch.nn.Module, got {type(module).__name__}")
    trainable_only = _check_bool("count_parameters: trainable_only", trainable_only)
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def extract_features(model: SmallCNN, X, batch_size: int = 256) -> np.ndarray:
    """``model.features`` of uint8 images ``X`` (N, 28, 28), N >= 1, as a float32 array ``(N, feature_dim)``.

    Runs in eval mode without gradients, ``batch_size`` (a positive integer) images at a time,
    on the model's device; the model's mode is restored afterwards. Zero images raise a
    ``ValueError``.
    """
    batch_size = _positive_int("extract_features: batch_size", batch_size)
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
class WeightsError(RuntimeError):
    """A cached weights file is missing, does not match its checksum, or belongs to another configuration."""


def cache_dir() -> Path:
    """The user cache root, by the data layer's rule (:func:`course_utils.data.cache_dir`).

    ``$COURSE_CACHE``, else ``$XDG_CACHE_HOME/course-book``, else ``~/.cache/course-book``.
    The folder is not created here.
    """
    try:
        from .data import cache_dir as _data_cache_dir  # the data layer owns the rule
    except ImportError:  # a trimmed install without the data layer: the same rule
        env = os.environ.get("COURSE_CACHE")
        if env:
            return Path(env).expanduser()
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "course-book"
    return Path(_data_cache_dir())


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


def save_weights(model: nn.Module, path, config: Mapping | None = None) -> str:
    """Save ``model.state_dict()`` to ``path`` and a JSON record ``{sha256, config}`` beside it.

    Both files are written to temporary names and then renamed, so an interrupted
    save never leaves a file that looks complete. Returns the SHA-256 of the weights file.
    """
    path = Path(path)
    record = {"config": dict(config) if config is not None else None, "file": path.name}
    config_digest(record)  # a configuration that cannot be recorded fails here, before any file is written
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    rec_tmp = _record_path(path).with_name(_record_path(path).name + f".tmp{os.getpid()}")
    try:
        torch.save(model.state_dict(), tmp)
        digest = file_sha256(tmp)
        os.replace(tmp, path)
        record["sha256"] = digest
        rec_tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.replace(rec_tmp, _record_path(path))
    finally:  # an interrupted save leaves no temporary files behind
        for leftover in (tmp, rec_tmp):
            leftover.unlink(missing_ok=True)
    return digest


def load_weights(model: nn.Module, path, config: Mapping | None = None, sha256: str | None = None) -> str:
    """Load weights saved by :func:`save_weights` into ``model`` after checking them.

    Checks, in order: the file and its JSON record exist; the file's SHA-256 equals
    ``sha256`` (default: the one in the record); the record's configuration equals
    ``config`` (when given); the tensors fit the model. Raises :class:`WeightsError`
    naming what failed; the model is left unchanged then. Returns the SHA-256.
    """
    path = Path(path)
    record_file = _record_path(path)
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    record = None
    if sha256 is None or config is not None:
        if not record_file.is_file():
            raise WeightsError(f"no checksum record {record_file.name} beside {path.name}; cannot verify the weights")
        try:
            record = json.loads(record_file.read_text())
            recorded_sha = record["sha256"]
        except (ValueError, KeyError, TypeError) as exc:
            raise WeightsError(f"checksum record {record_file} is unreadable ({exc!r})") from exc
        if sha256 is None:
            sha256 = recorded_sha
        if config is not None and record.get("config") != json.loads(json.dumps(dict(config))):
            raise WeightsError(f"{path.name} was saved for another configuration: {record.get('config')} != {dict(config)}")
    actual = file_sha256(path)
    if actual != sha256:
        raise WeightsError(f"SHA-256 mismatch for {path}: expected {sha256}, file has {actual} (corrupted or replaced)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"{path.name} is not a readable weights file: {exc}") from exc
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

    Returns ``"cache"`` or ``"trained"``. A file whose checksum or configuration does
    not match is reported and replaced by a fresh training run.
    """
    key = {"config": dict(config), "torch": torch.__version__.split("+")[0], "architecture": _architecture(model)}
    path = cached_weights_path(name, key, root=root)
    if path.exists():
        try:
            load_weights(model, path, config=key)
        except WeightsError as exc:
            if verbose:
                print(f"cached weights rejected, pretraining again: {exc}")
        else:
            if verbose:
                print(f"loaded pretrained weights from the cache ({path.name}, SHA-256 verified)")
            model.eval()
            return "cache"
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            pretrain(model)
    finally:  # also when pretrain raises: the caller's random state is as before
        np.random.set_state(np_state)
        random.setstate(py_state)
    try:
        save_weights(model, path, config=key)
    except OSError as exc:  # a read-only home must not stop the chapter
        if verbose:
            print(f"pretrained; could not write the cache ({exc})")
    else:
        if verbose:
            print(f"pretrained and saved to the cache ({path.name})")
    model.eval()
    return "trained"


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
    size = _positive_int("resnet18_features: size", size)
    batch_size = _positive_int("resnet18_features: batch_size", batch_size)
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
