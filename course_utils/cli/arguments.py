"""The command line's words: defaults, argument types, the three parsers, checks before any work.

Part of :mod:`course_utils.cli` (``train.py``). Everything here runs before any data is loaded or
any file is written: an argument that is wrong ends the command with an argparse-style message
and exit status 2. The defaults (:data:`BEST`, :data:`FIXED`) are chapter 5's; the source
assignment's placeholders are :data:`SOURCE_DEFAULTS`.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

__all__ = ["PROG", "ROOT", "DEFAULT_RUN_DIR", "BEST", "FIXED", "SOURCE_DEFAULTS", "DATASETS", "USED_BY", "SUBCOMMANDS",
           "MAX_SEED", "build_parser", "build_sweep_parser", "build_report_parser"]

PROG = "train.py"


def _default_root() -> Path:
    """The repository root when the package runs from a checkout (train.py beside it), else the
    current folder (an installed package, e.g. in Colab)."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "train.py").is_file() else Path.cwd()

ROOT = _default_root()
DEFAULT_RUN_DIR = ROOT / "runs"

#: A configuration in the top group of chapter 5.2's sweep, and the defaults below. It was the best
#: trial of an earlier run of the sweep; the sweep's own first place changes between machines and
#: seeds, so chapter 5.2 re-trains the sweep's best configurations and this one with three seeds and
#: checks that no configuration the sweep found is resolved ahead of it (course_utils.stats.top_group).
#: SOURCE_DEFAULTS are the source assignment's placeholder defaults.
BEST = {
    "epochs": 10,
    "batch_size": 16,
    "loss": "cross_entropy",
    "optimizer": "nadam",
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "weight_init": "Xavier",
    "num_layers": 4,
    "hidden_size": 128,
    "activation": "ReLU",
}
#: Hyperparameters the sweep did not search: held at the usual values in the notebook (and here).
#: (course_utils.optim's defaults, which the sweep used: Momentum/Nesterov beta 0.9, RMSProp beta 0.99,
#: Adam/NAdam betas 0.9 and 0.999, eps 1e-8.)
FIXED = {"momentum": 0.9, "beta": 0.99, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
SOURCE_DEFAULTS = {
    "epochs": 1, "batch_size": 4, "loss": "cross_entropy", "optimizer": "sgd", "learning_rate": 0.1,
    "momentum": 0.5, "beta": 0.5, "beta1": 0.5, "beta2": 0.5, "epsilon": 0.000001, "weight_decay": 0.0,
    "weight_init": "random", "num_layers": 1, "hidden_size": 4, "activation": "sigmoid",
}
DATASETS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
#: Which optimizers use which of the optimizer options (the others ignore them).
USED_BY = {"momentum": ("momentum", "nag"), "beta": ("rmsprop",), "beta1": ("adam", "nadam"),
           "beta2": ("adam", "nadam"), "epsilon": ("rmsprop", "adam", "nadam")}
SUBCOMMANDS = ("sweep", "sweep-report")
MAX_SEED = 2**32 - 1  # numpy's SeedSequence takes more, scikit-learn's random_state does not


def _src(key: str) -> str:
    return f"source default {SOURCE_DEFAULTS[key]}"


# --------------------------------------------------------------------------- argument types
def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum``, with a message that names ``what`` it must be."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what}: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a {what}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "positive integer")
_nonnegative_int = _int_at_least(0, "non-negative integer")


def _seed(text: str) -> int:
    value = _nonnegative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED} (a 32-bit seed), got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None


def _nonnegative_float(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _open_fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value}")
    return value


def _folder_name(what: str):
    """An argparse type: a plain file name (no path separators, not '.' or '..', printable)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        if "/" in text or "\\" in text or text in (".", "..") or not text.isprintable():
            raise argparse.ArgumentTypeError(f"{what} must be a plain folder name (no '/', '\\', control characters, "
                                             f"'.' or '..'), got {text!r}")
        if len(text.encode()) > 200:
            raise argparse.ArgumentTypeError(f"{what} is {len(text.encode())} bytes long; at most 200")
        return text

    return parse


# --------------------------------------------------------------------------- the parsers
def _sweep_help_summary() -> str:
    """One line per option of `train.py sweep` and `train.py sweep-report`, for train.py --help."""
    import textwrap

    blocks = []
    for name, parser in (("sweep", build_sweep_parser()), ("sweep-report", build_report_parser())):
        lines = textwrap.wrap(f"{PROG} {name} [options]: {parser.description.split('. ')[0]}. Options (defaults "
                              f"and details: '{PROG} {name} --help'):", 79, initial_indent="  ",
                              subsequent_indent="  ")
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            flags = "/".join(action.option_strings)
            text = (action.help or "").split(" (default")[0].split(";")[0]
            lines += textwrap.wrap(f"{flags}: {text}", 79, initial_indent="    ", subsequent_indent="        ")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that an epilog paragraph starting with two spaces keeps its lines."""

    def _fill_text(self, text, width, indent):
        import textwrap

        out = []
        for para in text.split("\n\n"):
            if para.startswith("  ") or "\n  " in para:
                out.append("\n".join(indent + line for line in para.splitlines()))
            else:
                out.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    best = ", ".join(f"{k} {v}" for k, v in BEST.items())
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Train the from-scratch feedforward network of chapter 5 (course_utils.network: "
                    "course_utils.graph + course_utils.optim, no autodiff library) on Fashion-MNIST or MNIST. "
                    "Prints per-epoch training and validation loss and accuracy, then the test accuracy. "
                    f"Two subcommands run and read a hyperparameter sweep: '{PROG} sweep' and '{PROG} sweep-report' "
                    "(listed at the end; each has its own --help).",
        epilog=f"Defaults = a configuration in the top group of chapter 5.2's sweep (optuna TPE over the source "
               f"assignment's space, on a training subset; re-trained with three seeds beside the sweep's best "
               f"configurations, no configuration the sweep found is resolved ahead of it): {best}; learning rate "
               f"decayed to 0 with a cosine over the run "
               f"(--lr_schedule). The sweep held momentum {FIXED['momentum']}, beta {FIXED['beta']}, beta1 "
               f"{FIXED['beta1']}, beta2 {FIXED['beta2']} and epsilon {FIXED['epsilon']:g} fixed, so those are the "
               f"defaults here; the source assignment's placeholders (0.5 and 1e-6) are noted per argument. "
               f"Options that the chosen optimizer does not use are reported as ignored. "
               f"W&B logging happens only when wandb is installed and configured; a local run folder is always written. "
               f"Exit status: 0 trained; 1 data not found, or the run diverged (its files say so); 2 invalid "
               f"arguments; 130 interrupted."
               f"\n\n{_sweep_help_summary()}",
        formatter_class=_HelpFormatter,
        allow_abbrev=False,
    )
    a = p.add_argument
    a("-wp", "--wandb_project", default="myprojectname", help="W&B project (default: %(default)s)")
    a("-we", "--wandb_entity", default="myname", help="W&B entity (default: %(default)s)")
    a("-d", "--dataset", default="fashion_mnist", choices=list(DATASETS), help="dataset (default: %(default)s)")
    a("-e", "--epochs", type=_positive_int, default=BEST["epochs"],
      help=f"passes over the training data (default: %(default)s, from the sweep's top group; {_src('epochs')})")
    a("-b", "--batch_size", type=_positive_int, default=BEST["batch_size"],
      help=f"minibatch size (default: %(default)s, from the sweep's top group; {_src('batch_size')})")
    a("-l", "--loss", default=BEST["loss"], choices=["mean_squared_error", "cross_entropy"],
      help=f"loss on the softmax outputs (default: %(default)s, held fixed in the sweep; {_src('loss')})")
    a("-o", "--optimizer", default=BEST["optimizer"], choices=["sgd", "momentum", "nag", "rmsprop", "adam", "nadam"],
      help=f"optimizer (default: %(default)s, from the sweep's top group; {_src('optimizer')})")
    a("-lr", "--learning_rate", type=_positive_float, default=BEST["learning_rate"],
      help=f"(peak) learning rate (default: %(default)s, from the sweep's top group; {_src('learning_rate')})")
    a("-m", "--momentum", type=_nonnegative_float, default=FIXED["momentum"],
      help=f"momentum beta of momentum and nag (default: %(default)s, held fixed in the sweep; {_src('momentum')})")
    a("-beta", "--beta", type=_nonnegative_float, default=FIXED["beta"],
      help=f"rmsprop's decay of the squared-gradient average (default: %(default)s, held fixed in the sweep; {_src('beta')})")
    a("-beta1", "--beta1", type=_nonnegative_float, default=FIXED["beta1"],
      help=f"adam/nadam first-moment decay (default: %(default)s, held fixed in the sweep; {_src('beta1')})")
    a("-beta2", "--beta2", type=_nonnegative_float, default=FIXED["beta2"],
      help=f"adam/nadam second-moment decay (default: %(default)s, held fixed in the sweep; {_src('beta2')})")
    a("-eps", "--epsilon", type=_positive_float, default=FIXED["epsilon"],
      help=f"epsilon of rmsprop/adam/nadam (default: %(default)s, held fixed in the sweep; {_src('epsilon')})")
    a("-w_d", "--weight_decay", type=_nonnegative_float, default=BEST["weight_decay"],
      help=f"L2 coefficient lambda, penalty lambda/2 ||W||^2 on the weights (default: %(default)s, from the sweep's top group; "
           f"{_src('weight_decay')})")
    a("-w_i", "--weight_init", default=BEST["weight_init"], choices=["random", "Xavier", "He"],
      help=f"initialisation: random N(0, 0.01^2), Xavier (Glorot uniform) or He (default: %(default)s, the sweep's "
           f"choice; {_src('weight_init')})")
    a("-nhl", "--num_layers", type=_nonnegative_int, default=BEST["num_layers"],
      help=f"number of hidden layers (default: %(default)s, from the sweep's top group; {_src('num_layers')})")
    a("-sz", "--hidden_size", type=_positive_int, default=BEST["hidden_size"],
      help=f"units per hidden layer (default: %(default)s, from the sweep's top group; {_src('hidden_size')})")
    a("-a", "--activation", default=BEST["activation"], choices=["identity", "sigmoid", "tanh", "ReLU"],
      help=f"hidden-layer activation (default: %(default)s, from the sweep's top group; {_src('activation')})")
    # additions to the source's arguments
    a("--lr_schedule", default="cosine", choices=["constant", "cosine"],
      help="learning-rate schedule over the run (default: %(default)s, as in the notebook)")
    a("--seed", type=_seed, default=0,
      help=f"seed of the split, the initial weights and the batch order, 0 to {MAX_SEED} (default: %(default)s)")
    a("--val_fraction", type=_open_fraction, default=0.1,
      help="share of the training split held out for validation, stratified; each side needs at least one image "
           "per class (default: %(default)s)")
    a("--subset", type=_positive_int, default=None,
      help="train on a stratified subset of this many training images, at least one per class (for quick runs and "
           "tests; default: all)")
    a("--run_dir", type=Path, default=DEFAULT_RUN_DIR,
      help="folder that receives the run folder, created if missing (default: runs/ at the repository root, or in "
           "the current folder when course_utils is installed without the repository)")
    a("--run_name", type=_folder_name("--run_name"), default=None,
      help="name of the run folder, a plain name (default: <time>-<dataset>-<optimizer>)")
    a("--wandb", default="auto", choices=["auto", "off"],
      help="auto: log to W&B when wandb is installed and configured; off: never (default: %(default)s)")
    a("--threads", type=_positive_int, default=1, help="BLAS threads (default: %(default)s; one is fastest for small batches)")
    return p



def build_sweep_parser() -> argparse.ArgumentParser:
    try:  # --help works even where numpy is missing
        from .. import sweeps

        space = "; ".join(f"{k} {', '.join(str(v) for v in vs)}" for k, vs in sweeps.SOURCE_SPACE.items())
    except ImportError:
        space = "course_utils.sweeps.SOURCE_SPACE"
    p = argparse.ArgumentParser(
        prog=f"{PROG} sweep",
        description="Run chapter 5's hyperparameter search from the command line, in parallel and resumable. "
                    "optuna's TPE sampler (seeded per trial) and median pruner over the source assignment's nine "
                    f"hyperparameters ({space}); each trial trains the from-scratch network on the training split (or "
                    "--subset) and is scored by its validation accuracy after its last epoch. Trials are stored in "
                    "a SQLite file, runs/<study>/study.db by default, that several workers on this machine share; "
                    "with --storage postgresql://... workers on many machines join the same study. Starting the "
                    "same command again continues the study: --trials counts every trial in it (completed, pruned "
                    "and failed, from all workers), so the study ends with exactly that many. A worker that is "
                    "killed loses at most its current trial, which its missing heartbeat marks as failed. At the end "
                    f"the report of '{PROG} sweep-report' is written to runs/<study>/report/.",
        epilog=f"Examples: '{PROG} sweep --workers 2 --trials 200' (the full search on this machine); "
               f"'{PROG} sweep --subset 5000 --trials 30 --study ch05' (chapter 5's size); "
               f"'{PROG} sweep --storage postgresql://user:pw@host/db --study big' on each machine. "
               "Exit status: 0 done (or the time budget ran out); 1 a worker failed or the storage cannot be "
               "reached; 2 invalid arguments; 130 interrupted (start the same command again to continue).",
        allow_abbrev=False,
    )
    a = p.add_argument
    a("--study", type=_folder_name("--study"), default=None,
      help="study name; also the folder runs/<study>/ (default: sweep-<dataset>)")
    a("--storage", default=None,
      help="optuna storage: a SQLite file path or sqlite:/// URL, or postgresql://user:password@host:port/database "
           "(default: runs/<study>/study.db)")
    a("--trials", type=_positive_int, default=100,
      help="trials the study should hold when done, counting completed, pruned and failed ones from every worker "
           "and earlier run (default: %(default)s)")
    a("--timeout", type=_positive_float, default=None,
      help="time budget in seconds: no new trial starts after it; running ones finish (default: none)")
    a("--workers", type=_positive_int, default=1,
      help="worker processes on this machine, one BLAS thread each, pulling trials from the same study "
           "(default: %(default)s)")
    a("-d", "--dataset", default="fashion_mnist", choices=list(DATASETS), help="dataset (default: %(default)s)")
    a("--subset", type=_positive_int, default=None,
      help="training images per trial, a stratified subset, at least one per class (default: the whole training "
           "split)")
    a("--val_fraction", type=_open_fraction, default=0.1,
      help="share of the training split held out for validation, stratified (default: %(default)s)")
    a("--seed", type=_seed, default=0,
      help="seed of the split, the subset, every trial's initial weights and batch order, and the sampler "
           "(default: %(default)s)")
    a("--lr_schedule", default="cosine", choices=["constant", "cosine"],
      help="learning-rate schedule of every trial (default: %(default)s)")
    a("--space", action="append", default=[], metavar="NAME=V1,V2",
      help="replace a parameter's choices (repeatable), e.g. --space epochs=1 or --space optimizer=adam,nadam; one "
           "value holds it fixed (default: the source's space)")
    a("--startup_trials", type=_positive_int, default=10,
      help="random trials before TPE models the results (default: %(default)s)")
    a("--pruner_startup", type=_nonnegative_int, default=5,
      help="finished trials before the median pruner prunes (default: %(default)s)")
    a("--pruner_warmup", type=_nonnegative_int, default=1,
      help="epochs a trial runs before it can be pruned (default: %(default)s)")
    a("--heartbeat", type=_positive_int, default=10,
      help="seconds between a running trial's heartbeats (default: %(default)s)")
    a("--grace", type=_positive_int, default=None,
      help="seconds without a heartbeat after which a running trial counts as dead and is marked failed; more "
           "than --heartbeat (default: 3 x --heartbeat)")
    a("--run_dir", type=Path, default=DEFAULT_RUN_DIR,
      help="folder of the study folders (default: runs/ at the repository root, or in the current folder)")
    a("--no_report", action="store_true", help="do not write the report at the end (default: write it)")
    a("--wandb", default="auto", choices=["auto", "off"],
      help="auto: also log the report to W&B when wandb is installed and configured; off: never (default: %(default)s)")
    a("-wp", "--wandb_project", default="myprojectname", help="W&B project of the report (default: %(default)s)")
    a("-we", "--wandb_entity", default="myname", help="W&B entity of the report (default: %(default)s)")
    a("--quiet", action="store_true", help="no line per trial (default: one line per finished trial)")
    return p


def build_report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} sweep-report",
        description="Write the report of a stored sweep, finished or still running. Files: results.csv (every "
                    "trial), results.md (best first), accuracy_by_trial.png, parallel_coordinates.png, "
                    "importances.csv (fANOVA, seeded), best.json (with the train.py command of the best "
                    "configuration) and report.md (all on one page).",
        epilog=f"Example: '{PROG} sweep-report --study sweep-fashion_mnist'. Exit status: 0 written; 1 the storage "
               "cannot be read; 2 invalid arguments or no such study.",
        allow_abbrev=False,
    )
    a = p.add_argument
    a("--study", type=_folder_name("--study"), default=None, help="study name (default: sweep-<dataset>)")
    a("--storage", default=None, help="optuna storage, as for sweep (default: runs/<study>/study.db, which must exist)")
    a("-d", "--dataset", default="fashion_mnist", choices=list(DATASETS),
      help="dataset, only to name the default study (default: %(default)s)")
    a("--run_dir", type=Path, default=DEFAULT_RUN_DIR, help="folder of the study folders (default: runs/)")
    a("--out", type=Path, default=None, help="folder for the report (default: runs/<study>/report)")
    a("--wandb", default="off", choices=["auto", "off"],
      help="auto: also log the report to W&B when wandb is installed and configured (default: %(default)s)")
    a("-wp", "--wandb_project", default="myprojectname", help="W&B project (default: %(default)s)")
    a("-we", "--wandb_entity", default="myname", help="W&B entity (default: %(default)s)")
    return p



# --------------------------------------------------------------------------- checks before any work
def _given(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The ``dest`` of every option that appears on the command line ``argv`` (not defaulted)."""
    by_flag = {flag: action.dest for action in parser._actions for flag in action.option_strings}
    given = set()
    for token in argv:
        if token == "--":
            break
        flag = token.split("=", 1)[0]
        if flag in by_flag:
            given.add(by_flag[flag])
    return given


def _flags(parser: argparse.ArgumentParser, dest: str) -> str:
    for action in parser._actions:
        if action.dest == dest:
            return "/".join(action.option_strings)
    return dest


def _check_folder(parser, flag: str, path: Path) -> None:
    """parser.error unless ``path`` is a folder or can be created as one."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            parser.error(f"argument {flag}: {path} is a file, not a folder: give a folder (it is created if missing)")
        if not os.access(path, os.W_OK | os.X_OK):
            parser.error(f"argument {flag}: the folder {path} is not writable: give a folder you can write to")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        parser.error(f"argument {flag}: cannot create the folder {path}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        parser.error(f"argument {flag}: cannot create the folder {path}: {parent} is not writable")


def _check_split(parser, dataset: str, val_fraction: float, subset: int | None) -> None:
    """parser.error when the stratified validation split or the training subset is impossible:
    scikit-learn's split needs at least one image per class on each side."""
    from .. import data

    spec = data.DATASETS[DATASETS[dataset]]
    n, k = spec.expected_counts[0], len(spec.classes)
    n_val = math.ceil(val_fraction * n)  # scikit-learn's rounding of test_size
    if n_val < k or n - n_val < k:
        side, count = ("validation", n_val) if n_val < k else ("training", n - n_val)
        parser.error(f"argument --val_fraction: {val_fraction:g} of the {n:,} {spec.title} training images leaves "
                     f"{count:,} {side} image(s), fewer than its {k} classes: use a value from {k / n:.6g} to "
                     f"{(n - k) / n:.6g}")
    m = n - n_val
    if subset is not None and subset < m:
        if subset < k:
            parser.error(f"argument --subset: needs at least one image per class ({k}), got {subset}")
        n_sub = math.ceil(subset / m * m)
        if m - n_sub < k:
            parser.error(f"argument --subset: {subset:,} of the {m:,} training images leaves {m - n_sub} for the "
                         f"stratified split's other side, fewer than the {k} classes: use at most {m - k:,}, or "
                         f"{m:,} or more for all of them")


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_network_size(parser, num_layers: int, hidden_size: int, batch_size: int, what: str) -> None:
    """parser.error when the network could not fit in this machine's memory (parameters, gradients,
    optimizer state and the activations of a 4,096-row evaluation chunk, in float32)."""
    sizes = [784] + [hidden_size] * num_layers + [10]
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    need = 4 * (5 * params + 3 * max(batch_size, 4096) * sum(sizes))
    have = _memory_bytes()
    if have is not None and need > 0.8 * have:
        parser.error(f"{what}: a network of {num_layers} hidden layer(s) of {hidden_size:,} units has {params:,} "
                     f"parameters and needs about {need / 2**30:,.1f} GiB, more than this machine's "
                     f"{have / 2**30:,.1f} GiB of memory: use fewer or narrower hidden layers")


def _ignored(parser, argv, args, wandb_used: bool | None = None) -> list[str]:
    """Notes for options given on the command line that this run does not use."""
    given = _given(parser, argv)
    notes = []
    for dest, users in USED_BY.items():
        if dest in given and args.optimizer not in users:
            notes.append(f"{_flags(parser, dest)} {getattr(args, dest)} is ignored: the {args.optimizer} optimizer does "
                         f"not use it (it applies to {', '.join(users)})")
    if args.num_layers == 0:
        for dest in ("hidden_size", "activation"):
            if dest in given:
                notes.append(f"{_flags(parser, dest)} {getattr(args, dest)} is ignored: with -nhl 0 there is no "
                             f"hidden layer")
    if wandb_used is False:
        for dest in ("wandb_project", "wandb_entity"):
            if dest in given:
                notes.append(f"{_flags(parser, dest)} {getattr(args, dest)} is ignored: W&B is not used in this run")
    return notes
