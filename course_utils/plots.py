"""One figure style for the whole book, and the figure helpers that several chapters share.

Conventions: every figure has a title, labelled axes (with units where there are
units), a legend when it shows more than one series, and log scales where the
values span decades. Functions return the matplotlib ``Figure`` or ``Axes`` so a
chapter can add to them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["COLUMN_WIDTH", "use_style", "image_grid", "confusion_matrix", "curves", "most_confused_pairs", "decision_boundary"]

#: The width, in inches at the style's 100 dpi, of the site's text column (772 px at a 1400 px window): a figure this wide is shown at
#: its own size (its text stays readable); a wider one is shrunk. Multi-panel figures stack rows instead.
COLUMN_WIDTH = 7.5

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.autolayout": False,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "image.cmap": "viridis",
    "axes.prop_cycle": mpl.cycler(color=plt.get_cmap("tab10").colors),
    "animation.embed_limit": 30.0,  # MB, for FuncAnimation.to_jshtml()
}


def use_style() -> None:
    """Apply the book's matplotlib style (called by :func:`course_utils.runtime.init`)."""
    mpl.rcParams.update(STYLE)


def image_grid(
    images: np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    size: float = 1.3,
    suptitle: str | None = None,
):
    """Show images (N, H, W) in a grid, one optional title per image. Returns the Figure."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"image_grid expects images of shape (N, H, W), got {images.shape}")
    n = len(images)
    if titles is not None and len(titles) != n:
        raise ValueError(f"image_grid got {n} images but {len(titles)} titles")
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def confusion_matrix(
    y_true,
    y_pred,
    class_names: Sequence[str],
    normalize: bool = True,
    ax=None,
    title: str | None = None,
    annotate: bool | None = None,
):
    """Plot a confusion matrix (rows: true class, columns: predicted).

    With ``normalize=True`` each row is divided by its count, so the diagonal is the
    per-class recall. Returns ``(ax, matrix)`` with the matrix as plotted.
    """
    from sklearn.metrics import confusion_matrix as _cm

    k = len(class_names)
    cm = _cm(np.asarray(y_true), np.asarray(y_pred), labels=np.arange(k)).astype(float)
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    if ax is None:
        side = max(4.0, 0.42 * k + 1.5)
        _, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalize else "count")
    ax.set_xticks(range(k), class_names, rotation=90 if k > 6 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(False)
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix (counts)"))
    if annotate is None:
        annotate = k <= 12
    if annotate:
        for i in range(k):
            for j in range(k):
                v = cm[i, j]
                if v == 0:
                    continue
                txt = f"{v:.2f}" if normalize else f"{int(v)}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white" if v > (0.5 if normalize else cm.max() / 2) else "black")
    return ax, cm


def most_confused_pairs(y_true, y_pred, class_names: Sequence[str], top: int = 5):
    """The ``top`` off-diagonal (true, predicted) pairs by count, as a pandas DataFrame."""
    import pandas as pd
    from sklearn.metrics import confusion_matrix as _cm

    k = len(class_names)
    cm = _cm(np.asarray(y_true), np.asarray(y_pred), labels=np.arange(k))
    support = cm.sum(axis=1)
    rows = [
        (class_names[i], class_names[j], int(cm[i, j]), cm[i, j] / support[i] if support[i] else 0.0, i, j)
        for i in range(k)
        for j in range(k)
        if i != j and cm[i, j] > 0
    ]
    rows.sort(key=lambda r: (-r[2], r[4], r[5]))
    return pd.DataFrame(rows[:top], columns=["true", "predicted", "count", "fraction of true class", "true_id", "pred_id"])


def curves(
    series: Mapping[str, Sequence[float]],
    x: Mapping[str, Sequence[float]] | None = None,
    xlabel: str = "epoch",
    ylabel: str = "loss",
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    ax=None,
):
    """Plot several named curves on one axes (e.g. a loss per epoch for each setting)."""
    if ax is None:
        _, ax = plt.subplots()
    for label, ys in series.items():
        ys = np.asarray(ys, dtype=float)
        xs = np.asarray(x[label]) if x is not None else np.arange(1, len(ys) + 1)
        ax.plot(xs, ys, label=str(label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return ax


def decision_boundary(predict, X, y, ax=None, resolution: int = 300, margin: float = 0.5, title: str | None = None, cmap: str = "tab10"):
    """Shade the class ``predict`` assigns over a grid around 2-D points ``X`` and scatter ``X`` coloured by ``y``.

    ``predict`` maps an (n, 2) float array to n integer class labels.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary needs 2-D points of shape (n, 2), got {X.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.0))
    (x0, y0), (x1, y1) = X.min(0) - margin, X.max(0) + margin
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    zz = np.asarray(predict(grid)).reshape(gx.shape)
    k = int(max(y.max(), zz.max())) + 1
    cm = plt.get_cmap(cmap, max(k, 2))
    ax.contourf(gx, gy, zz, levels=np.arange(-0.5, k + 0.5), cmap=cm, alpha=0.25, vmin=-0.5, vmax=k - 0.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cm, s=8, vmin=-0.5, vmax=k - 0.5, edgecolors="none")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax
