"""PyTorch training helpers with progress bars and a history table (chapters 4 and 7).

Chapter 6 writes its loop out by hand on purpose; the loop here is the same loop,
packaged: for each epoch, one pass over shuffled minibatches (forward, loss, backward,
step), then an evaluation pass over the validation data.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["as_float_images", "make_loader", "fit", "evaluate", "predict"]


def as_float_images(X: np.ndarray, scale: str = "unit", flatten: bool = True) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 tensor, (N, 784) when ``flatten`` else (N, 1, 28, 28).

    ``scale``: 'unit' divides by 255 (values in [0, 1]); 'raw' keeps 0..255.
    """
    if scale not in {"unit", "raw"}:
        raise ValueError(f"scale must be 'unit' or 'raw', got {scale!r}")
    t = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    if scale == "unit":
        t = t / 255.0
    return t.reshape(len(t), -1) if flatten else t.reshape(len(t), 1, *t.shape[1:])


def make_loader(X, y, batch_size: int, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A DataLoader over ``TensorDataset(X, y)`` whose shuffling is seeded (same order every run)."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    X = torch.as_tensor(X)
    y = torch.as_tensor(y, dtype=torch.long)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


def _device_of(model: torch.nn.Module, device):
    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, loss_fn, device=None) -> tuple[float, float]:
    """Mean loss over the examples and accuracy of ``model`` on ``loader`` (model put in eval mode)."""
    device = _device_of(model, device)
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        out = model(xb)
        total_loss += float(loss_fn(out, yb)) * len(yb)
        correct += int((out.argmax(1) == yb).sum())
        n += len(yb)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no examples")
    return total_loss / n, correct / n


def fit(model, train_loader, *, loss_fn, optimizer, num_epochs: int, val_loader=None, device=None,
        progress: bool = True, desc: str | None = None):
    """Train ``model`` for ``num_epochs`` passes over ``train_loader``.

    Returns a pandas DataFrame, one row per epoch: ``epoch, train_loss, train_acc, val_loss, val_acc``.
    The training metrics are averaged over the examples seen during the epoch (the model changes
    while they are measured); the validation metrics are measured after the epoch (NaN without
    ``val_loader``). One progress bar for the whole run, updated once per batch.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    device = _device_of(model, device)
    model.to(device)
    rows = []
    with tqdm(total=num_epochs * len(train_loader), desc=desc or "training", disable=not progress, leave=False) as bar:
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
            row = {"epoch": epoch, "train_loss": total_loss / n, "train_acc": correct / n,
                   "val_loss": float("nan"), "val_acc": float("nan")}
            if val_loader is not None:
                row["val_loss"], row["val_acc"] = evaluate(model, val_loader, loss_fn, device)
            rows.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}")
    return pd.DataFrame(rows)


@torch.no_grad()
def predict(model: torch.nn.Module, X, device=None, batch_size: int = 1024) -> np.ndarray:
    """Predicted class ids (argmax of the outputs) for ``X`` (array, tensor or DataLoader)."""
    device = _device_of(model, device)
    was_training = model.training
    model.eval()
    preds = []
    batches = X if isinstance(X, DataLoader) else torch.split(torch.as_tensor(X), batch_size)
    for xb in batches:
        if isinstance(xb, (list, tuple)):
            xb = xb[0]
        preds.append(model(xb.to(device)).argmax(1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(preds) if preds else np.empty(0, dtype=np.int64)
