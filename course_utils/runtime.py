"""Seeding, device choice and BLAS threading shared by every chapter.

Introduced in chapter 0 (the data notebook) and used by all later chapters.

Why the threading helper exists: on a 2-core laptop a small-batch numpy or
PyTorch loop spends more time synchronising BLAS threads than computing. A
batch-64 MLP epoch on Fashion-MNIST took 6.65 s with OpenBLAS' default
threading and 1.38 s with one BLAS thread (PyTorch: 8.56 s against 1.87 s).
:func:`init` therefore pins BLAS and PyTorch to one thread by default; wrap a
large-batch computation in ``with blas_threads(None):`` to give it every core.
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
from dataclasses import dataclass

import numpy as np

from . import validation

__all__ = ["seed_everything", "get_device", "set_threads", "blas_threads", "available_cores", "in_colab", "init",
           "RuntimeInfo"]

MAX_SEED = 2**32 - 1  # NumPy's legacy global generator takes seeds in [0, 2**32 - 1]


def _thread_count(n) -> int:
    """``n`` threads (a positive integer), or one per available core for ``None`` (:func:`available_cores`)."""
    n = validation.positive_int("threads", n, allow_none=True, none_means="all cores")
    return n if n is not None else available_cores()


def available_cores() -> int:
    """The cores this process may use: those of its CPU affinity where the system reports it (``taskset``, a
    container's cpuset), else every core. ``OMP_NUM_THREADS``, where set to a positive integer, caps the
    count, as it caps OpenMP's and PyTorch's own default: ``dev.py test`` sets it to 1, one core for each
    of its two workers, so that no process's threads wait on a core that the other worker holds."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else max(cores, 1)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's legacy global RNG and PyTorch (CPU and CUDA).

    ``seed`` is an integer in [0, 2**32 - 1] (the range NumPy's global generator accepts).
    Returns a fresh :class:`numpy.random.Generator` seeded with ``seed``; prefer
    passing that generator around over relying on global state.
    """
    seed = validation.seed("seed", seed, maximum=MAX_SEED)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # torch is a dependency, but keep numpy-only use possible
        pass
    else:
        torch.manual_seed(seed)  # also seeds every CUDA device
    return np.random.default_rng(seed)


def get_device(prefer: str | None = None):
    """The :class:`torch.device` to train on: CUDA when present, else CPU.

    ``prefer="cpu"`` forces the CPU (useful for bit-for-bit reproducible outputs).
    """
    import torch

    if prefer is not None:
        if prefer not in {"cpu", "cuda"}:
            raise ValueError(f"prefer must be 'cpu', 'cuda' or None, got {prefer!r}")
        if prefer == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("prefer='cuda' was asked for, but torch.cuda.is_available() is False")
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(n: int | None = 1) -> None:
    """Limit BLAS (OpenBLAS/MKL, via threadpoolctl) and PyTorch intra-op threads to ``n``.

    ``n=None`` restores one thread per available core.
    """
    from threadpoolctl import threadpool_limits

    count = _thread_count(n)
    threadpool_limits(limits=count, user_api="blas")
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(count)


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Context manager: run the block with ``n`` BLAS/PyTorch threads (``None``: all cores).

    Both limits are restored afterwards, also when the block raises.
    """
    from threadpoolctl import threadpool_limits

    import torch

    count = _thread_count(n)
    before = torch.get_num_threads()
    with threadpool_limits(limits=count, user_api="blas"):
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


@dataclass(frozen=True)
class RuntimeInfo:
    seed: int
    device: object
    threads: int

    def __str__(self) -> str:  # deterministic: no versions, no timings
        return f"seed={self.seed}, device={self.device}, threads={self.threads}"


def init(seed: int = 0, threads: int | None = 1, style: bool = True) -> RuntimeInfo:
    """One call at the top of every chapter: seed everything, limit threads, apply the plot style.

    On a CUDA machine the device is CUDA and ``threads`` only affects CPU-side work.
    Arguments are checked before anything is changed.
    """
    seed = validation.seed("seed", seed, maximum=MAX_SEED)
    _thread_count(threads)
    style = validation.check_bool("style", style)
    seed_everything(seed)
    set_threads(threads)
    if style:
        from . import plots

        plots.use_style()
    import torch

    return RuntimeInfo(seed=seed, device=get_device(), threads=torch.get_num_threads())
