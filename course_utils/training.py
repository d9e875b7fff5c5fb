"""PyTorch training helpers for a single run, with progress bars and a history table.

Used by chapter 4 (``as_float_images``, ``make_loader``, ``fit``, ``predict``) and chapter 7
(``make_loader``, ``fit``, ``predict``); ``course_utils.batched`` trains several runs at once in exactly
``make_loader``'s order and checks labels with :func:`_labels`. Chapter 6 writes its loop out by
hand on purpose; the loop here is the same loop, packaged: for each epoch, one pass over
shuffled minibatches (forward, loss, backward, step), then an evaluation pass over the
validation data.

Edge cases: a loader or an array with no examples is refused with a ``ValueError``
naming the function (a mean over zero examples would be a division by zero); the
loss functions must average over their batch (``reduction="mean"``, the default),
because the history reports per-example means; a model's train/eval mode is
restored even when a call fails.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .validation import check_bool as _check_bool
from .validation import positive_int as _positive_int
from .validation import seed as _seed

__all__ = ["as_float_images", "make_loader", "fit", "evaluate", "predict"]


def as_float_images(X: np.ndarray, scale: str = "unit", flatten: bool = True) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 tensor, (N, 784) when ``flatten`` else (N, 1, 28, 28).

    ``scale``: 'unit' divides by 255 (values in [0, 1]); 'raw' keeps 0..255. Any image size
    (N, H, W) works; zero images give an empty tensor of the same layout, (0, H * W) or (0, 1, H, W).
    """
    if scale not in {"unit", "raw"}:
        raise ValueError(f"scale must be 'unit' or 'raw', got {scale!r}")
    flatten = _check_bool("as_float_images: flatten", flatten)
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if X.dtype != np.uint8:
        raise TypeError(f"as_float_images expects uint8 pixels (0..255) as returned by course_utils.data, "
                        f"got dtype {X.dtype}")
    if X.ndim != 3:
        raise ValueError(f"as_float_images expects images of shape (N, H, W), got {X.shape}")
    n, h, w = X.shape
    t = torch.as_tensor(X, dtype=torch.float32)
    if scale == "unit":
        t = t / 255.0
    return t.reshape(n, h * w) if flatten else t.reshape(n, 1, h, w)


def _labels(y, where: str) -> torch.Tensor:
    """Class ids as a 1-D int64 tensor; whole-valued floats are accepted, anything else refused."""
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{where}: y must be a 1-D array of class ids, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ValueError(f"{where}: y must hold integer class ids, got non-integer values "
                             f"(for example {arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]})")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{where}: y must hold integer class ids, got dtype {arr.dtype}")
    return torch.as_tensor(arr.astype(np.int64))


def make_loader(X, y, batch_size: int, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A DataLoader over ``TensorDataset(X, y)`` whose shuffling is seeded (same order every run).

    ``X`` (array or tensor, at least one example), ``y`` the integer class ids (1-D, one per
    example), ``batch_size`` a positive integer, ``seed`` a non-negative integer.
    """
    batch_size = _positive_int("batch_size", batch_size)
    shuffle = _check_bool("make_loader: shuffle", shuffle)
    seed = _seed("make_loader: seed", seed)
    X = torch.as_tensor(X)
    if X.ndim == 0:
        raise ValueError("make_loader: X must have one row per example, got a scalar")
    y = _labels(y, "make_loader")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    if len(X) == 0:
        raise ValueError(f"make_loader: X is empty (shape {tuple(X.shape)}); a loader needs at least one example")
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


def _device_of(model: torch.nn.Module, device):
    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _check_mean_loss(loss_fn, where: str) -> None:
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction != "mean":
        raise ValueError(f"{where}: loss_fn must average over the batch (reduction='mean'), got "
                         f"reduction={reduction!r}; the reported losses are means over the examples")


def _nonempty_loader(loader, name: str, where: str) -> None:
    """Refuse a loader that has a length of 0 (one without a length is checked while iterating)."""
    try:
        n = len(loader)
    except TypeError:
        return
    if n == 0:
        raise ValueError(f"{where}: {name} has no batches (an empty dataset?); pass a loader with at least one example")


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, loss_fn, device=None) -> tuple[float, float]:
    """Mean loss over the examples and accuracy of ``model`` on ``loader`` (model put in eval mode,
    and back in its former mode afterwards). ``loss_fn`` returns the batch mean; the loader must
    yield at least one example."""
    _check_mean_loss(loss_fn, "evaluate")
    _nonempty_loader(loader, "the loader", "evaluate")
    device = _device_of(model, device)
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    try:
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            total_loss += float(loss_fn(out, yb)) * len(yb)
            correct += int((out.argmax(1) == yb).sum())
            n += len(yb)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no examples; pass a loader with at least one example")
    return total_loss / n, correct / n


def fit(model, train_loader, *, loss_fn, optimizer, num_epochs: int, val_loader=None, device=None,
        progress: bool = True, desc: str | None = None):
    """Train ``model`` for ``num_epochs`` passes over ``train_loader``.

    Returns a pandas DataFrame, one row per epoch: ``epoch, train_loss, train_acc, val_loss, val_acc``.
    The training metrics are averaged over the examples seen during the epoch (the model changes
    while they are measured); the validation metrics are measured after the epoch (NaN without
    ``val_loader``). One progress bar for the whole run, updated once per batch.
    ``train_loader`` must yield at least one example in every epoch (a DataLoader, not a
    one-shot generator); ``loss_fn`` must return the batch mean. Empty loaders are refused
    before the first step.
    """
    num_epochs = _positive_int("num_epochs", num_epochs)
    _check_mean_loss(loss_fn, "fit")
    _nonempty_loader(train_loader, "train_loader", "fit")
    if val_loader is not None:
        _nonempty_loader(val_loader, "val_loader", "fit")
    import pandas as pd
    from tqdm.auto import tqdm

    try:
        total = num_epochs * len(train_loader)
    except TypeError:
        total = None
    device = _device_of(model, device)
    model.to(device)
    rows = []
    with tqdm(total=total, desc=desc or "training", disable=not progress, leave=False) as bar:
        for epoch in range(1, num_epochs + 1):
            model.train()
            total_loss, correct, n = 0.0, 0, 0
            for xb, yb in train_loader:
                xb, yb = xb.to(device), yb.to(device)
                out = model(xb)
                loss = loss_fn(out, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach()) * len(yb)
                correct += int((out.detach().argmax(1) == yb).sum())
                n += len(yb)
                bar.update(1)
            if n == 0:
                raise ValueError(f"fit: train_loader yielded no examples in epoch {epoch}; pass a loader that "
                                 f"yields at least one example in every epoch (a DataLoader, not a generator)")
            row = {"epoch": epoch, "train_loss": total_loss / n, "train_acc": correct / n,
                   "val_loss": float("nan"), "val_acc": float("nan")}
            if val_loader is not None:
                row["val_loss"], row["val_acc"] = evaluate(model, val_loader, loss_fn, device)
            rows.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}")
    return pd.DataFrame(rows)


@torch.no_grad()
def predict(model: torch.nn.Module, X, device=None, batch_size: int = 1024) -> np.ndarray:
    """Predicted class ids (argmax of the outputs) for ``X`` (array, tensor or DataLoader), as an
    int64 array of one id per example.

    Floating-point inputs are converted to the model's parameter dtype (a float64 NumPy array
    works with a float32 model); other dtypes are passed as they are. ``X`` must hold at least
    one example; ``batch_size`` (a positive integer) applies to arrays and tensors.
    """
    batch_size = _positive_int("predict: batch_size", batch_size)
    device = _device_of(model, device)
    try:
        param_dtype = next(model.parameters()).dtype
    except StopIteration:
        param_dtype = None
    if isinstance(X, DataLoader):
        _nonempty_loader(X, "the loader", "predict")
        batches = X
    else:
        t = torch.as_tensor(X)
        if t.ndim == 0 or len(t) == 0:
            raise ValueError(f"predict: X is empty (shape {tuple(t.shape)}); pass at least one example")
        batches = torch.split(t, batch_size)
    was_training = model.training
    model.eval()
    preds = []
    try:
        for xb in batches:
            if isinstance(xb, (list, tuple)):
                xb = xb[0]
            if param_dtype is not None and xb.is_floating_point() and param_dtype.is_floating_point:
                xb = xb.to(param_dtype)
            preds.append(model(xb.to(device)).argmax(1).cpu().numpy())
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("predict: the loader yielded no examples; pass at least one example")
    return np.concatenate(preds).astype(np.int64, copy=False)
