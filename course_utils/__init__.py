"""course_utils: the shared package of the course book *How neural networks are trained*.

Modules (each imported on first use, ``course_utils.data`` or ``from course_utils import data``):

- ``runtime``  seeding, device choice, BLAS threading (every chapter)
- ``plots``    the book's figure style and shared figure helpers (every chapter)
- ``data``     dataset registry, local mirror / cache / download with checksums, stand-ins (chapters 0, 4, 5, 7)
- ``training`` PyTorch training loops with progress bars and a history table (chapters 4, 7)
- ``graph``    the from-scratch reverse-mode autodiff engine and its nodes (chapters 1, 5)
- ``checks``   finite-difference Jacobians and relative errors (chapters 1, 2, 5)
- ``calculus`` closed-form Jacobians of chapter 2
- ``optim``    from-scratch optimizers (chapters 3, 5)
- ``network``  the from-scratch feedforward classifier (chapter 5)
- ``sweeps``   hyperparameter search: the search space, optuna studies, workers, reports (chapter 5)
- ``cli``      the command-line trainer and sweep behind ``train.py`` (chapter 5)
- ``stats``    mean, spread and rankings with ties over several seeds (chapters 4-7)
- ``toy_data`` seeded synthetic 2-D datasets (chapter 6)
- ``models``   small PyTorch models (chapter 7)
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
REPOSITORY = "https://github.com/nn-training-course/nn-training-book"
_SUBMODULES = {"checks", "runtime", "plots", "data", "training", "graph", "calculus", "optim", "network", "sweeps", "toy_data", "models", "cli", "stats"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
