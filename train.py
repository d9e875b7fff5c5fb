#!/usr/bin/env python3
"""Train chapter 5's from-scratch feedforward network on Fashion-MNIST or MNIST from the command line,
and run or read its hyperparameter sweep.

The source assignment's trainer: the same arguments and short flags. The defaults of the
hyperparameters are a configuration in the top group of chapter 5.2's sweep
(notebooks/05_2_hyperparameter_sweep: re-trained with three seeds beside the sweep's best
configurations, no configuration the sweep found is resolved ahead of it); ``--help`` lists them.

Logging: when the ``wandb`` package is installed and configured (``WANDB_API_KEY`` set, a
``wandb login`` entry in ~/.netrc, or ``WANDB_MODE=offline``) the run is also logged to
Weights & Biases. Every run, with or without W&B, writes a local run folder
``runs/<name>/`` with ``config.json``, ``metrics.csv`` (one row per epoch) and ``summary.json``
(status, test loss and accuracy; strict JSON). No account or network is ever needed.

This file is a thin wrapper: the code is the package :mod:`course_utils.cli`, so that ``python -m
course_utils.cli ...`` does the same where only the package is installed (Google Colab).

Examples::

    python train.py                                   # the defaults: chapter 5's top group
    python train.py -d mnist -e 5 -o adam -lr 1e-3    # another run
    python train.py --subset 2000 -e 1 --run_name smoke
    python train.py sweep --workers 2 --trials 200    # the full search, parallel and resumable
    python train.py sweep-report                      # its table and figures, also while it runs
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from course_utils.cli import (  # noqa: E402  (re-exported: tests and chapter 5 read them from train.py)
    BEST,
    DATASETS,
    FIXED,
    SOURCE_DEFAULTS,
    RunFolder,
    build_parser,
    build_report_parser,
    build_sweep_parser,
    main,
    start_wandb,
)
from course_utils.cli.runs import _wandb_configured  # noqa: E402

__all__ = ["BEST", "DATASETS", "FIXED", "SOURCE_DEFAULTS", "RunFolder", "_wandb_configured", "build_parser",
           "build_report_parser", "build_sweep_parser", "main", "start_wandb"]

if __name__ == "__main__":
    sys.exit(main())
