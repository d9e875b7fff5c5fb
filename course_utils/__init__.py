"""course_utils: the shared package of the course book *How neural networks are trained*.

Modules (each imported on first use, ``course_utils.data`` or ``from course_utils import data``):

- ``runtime``       seeding, device choice, BLAS threading (every chapter)
- ``plots``         the book's figure style and shared figure helpers (every chapter)
- ``validation``    argument checks shared by every module: one home, one wording
- ``data``          dataset registry, local mirror / cache / download with checksums, stand-ins (chapters 0, 4, 5, 7)
- ``cache``         the user cache's machinery: its folder, reading a file once, locks, atomic installs (data, models)
- ``training``      PyTorch training loops with progress bars and a history table (chapters 4, 7)
- ``batched``       every seed at the cost of one: S torch models trained as one batched model (chapters 4, 6, 7)
- ``graph``         the from-scratch reverse-mode autodiff engine and its nodes (chapters 1, 5)
- ``checks``        finite-difference Jacobians and relative errors (chapters 1, 2, 5)
- ``calculus``      closed-form Jacobians of chapter 2
- ``optim``         from-scratch optimizers (chapters 3, 5)
- ``softmax_regression``  softmax regression with its closed-form gradient, many seeds at once (chapter 4)
- ``network``       the from-scratch feedforward classifier (chapter 5)
- ``sweeps``        hyperparameter search as chapter 5 teaches it: space, sampler, objective, tables, plots
- ``sweep_storage`` a sweep that outlives a process: storage, study lock, heartbeats, the worker loop (train.py sweep)
- ``sweep_report``  the report files of a stored sweep (train.py sweep, sweep-report)
- ``cli``           the command-line trainer and sweep behind ``train.py`` (chapter 5; a package, one module per job)
- ``stats``         the book's rule for comparing trained runs over seeds, mean and range (chapters 4-7)
- ``toy_data``      seeded synthetic 2-D datasets (chapter 6)
- ``models``        small PyTorch models and the cache of their pretrained weights (chapter 7)
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
REPOSITORY = "https://github.com/nn-training-course/nn-training-book"
_SUBMODULES = {"runtime", "plots", "validation", "data", "cache", "training", "batched", "graph", "checks", "calculus",
               "optim", "softmax_regression", "network", "sweeps", "sweep_storage", "sweep_report", "cli", "stats",
               "toy_data", "models"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
