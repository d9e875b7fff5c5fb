"""Chapter 5's command-line trainer and its hyperparameter sweep (``train.py`` is a thin wrapper).

Introduced in chapter 5 (backpropagation on Fashion-MNIST). Everything lives in the package so
that a reader who only installed ``course_utils`` (Google Colab) has the same commands:
``python -m course_utils.cli ...`` is ``python train.py ...``.

Three commands:

``train.py [options]``
    Train one configuration of the from-scratch network (course_utils.network) with the source
    assignment's arguments and short flags; defaults = a configuration in the top group of chapter 5.2's sweep.
    Writes ``runs/<name>/`` (``config.json``, ``metrics.csv``, ``summary.json``).
``train.py sweep [options]``
    The Bayesian search of chapter 5 (optuna TPE + median pruner over the source's nine
    hyperparameters, :data:`course_utils.sweeps.SOURCE_SPACE`) with parallel, resumable workers:
    trials are stored in a SQLite file under ``runs/<study>/`` (or a PostgreSQL server shared
    by workers on several machines); the same command continues the study after a crash.
``train.py sweep-report [options]``
    The results table, parallel coordinates, fANOVA importances and accuracy-by-trial plot of a
    stored (finished or running) sweep, written to ``runs/<study>/report/``.

Exit status: 0 done; 1 a runtime failure (data not found, a diverged run, a storage that cannot
be reached, a worker that crashed); 2 invalid arguments (an argparse-style message, before any
work); 130 interrupted. No command ends in a Python traceback (``COURSE_DEBUG=1`` shows one for
an unexpected error).

Modules, one job each (no import cycle: each imports only those above it):

- :mod:`.arguments`       defaults, argument types, the three parsers, checks before any work
- :mod:`.runs`            a run's folder (config, metrics, summary), its W&B run, its data
- :mod:`.trainer`         ``train.py``: one training run
- :mod:`.workers`         the sweep's worker processes and how they stop
- :mod:`.sweep_commands`  ``train.py sweep`` and ``train.py sweep-report``
"""
from __future__ import annotations

import os
import sys

from .arguments import (
    BEST,
    DATASETS,
    FIXED,
    PROG,
    SOURCE_DEFAULTS,
    SUBCOMMANDS,
    build_parser,
    build_report_parser,
    build_sweep_parser,
)
from .runs import RunFolder, start_wandb
from .sweep_commands import report_main, sweep_main
from .trainer import train_main

__all__ = ["BEST", "FIXED", "SOURCE_DEFAULTS", "DATASETS", "build_parser", "build_sweep_parser",
           "build_report_parser", "main", "start_wandb", "RunFolder"]


def main(argv=None) -> int:
    """``train.py [options]``, ``train.py sweep [options]`` or ``train.py sweep-report [options]``.
    Returns the exit status; argparse errors raise SystemExit(2) (and ``--help`` SystemExit(0))."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    prog = f"{PROG} {command}" if command else PROG
    try:
        if command == "sweep":
            return sweep_main(argv[1:])
        if command == "sweep-report":
            return report_main(argv[1:])
        return train_main(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{prog}: error: out of memory: use a smaller network (-nhl, -sz), batch (-b) or --subset",
              file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a CLI never ends in a traceback
        if os.environ.get("COURSE_DEBUG"):
            raise
        text = " ".join(str(exc).split())
        print(f"{prog}: error: unexpected {type(exc).__name__}: {text} (please report it; COURSE_DEBUG=1 shows the "
              f"traceback)", file=sys.stderr)
        return 1

