"""Chapter 5's command-line trainer and its hyperparameter sweep (``train.py`` is a thin wrapper).

Introduced in chapter 5 (backpropagation on Fashion-MNIST). Everything lives in the package so
that a reader who only installed ``course_utils`` (Google Colab) has the same commands:
``python -m course_utils.cli ...`` is ``python train.py ...``.

Three commands:

``train.py [options]``
    Train one configuration of the from-scratch network (course_utils.network) with the source
    assignment's arguments and short flags; defaults = a configuration in chapter 5's tied top group.
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
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["BEST", "FIXED", "SOURCE_DEFAULTS", "DATASETS", "build_parser", "build_sweep_parser",
           "build_report_parser", "main", "start_wandb", "RunFolder"]

PROG = "train.py"


def _default_root() -> Path:
    """The repository root when the package runs from a checkout (train.py beside it), else the
    current folder (an installed package, e.g. in Colab)."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "train.py").is_file() else Path.cwd()


ROOT = _default_root()
DEFAULT_RUN_DIR = ROOT / "runs"

#: A configuration in the top group of chapter 5's sweep, and the defaults below. It was the best
#: trial of an earlier run of the sweep; the sweep's own first place changes between machines and
#: seeds (the top of a sweep is a tie within noise), so the notebook re-trains the sweep's three
#: best configurations and this one with three seeds on the sweep's 5,000 images and asserts that
#: this one is tied with the best (overlapping ranges; course_utils.stats.top_group).
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


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _nonnegative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _open_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
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


# --------------------------------------------------------------------------- the training parser
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
        epilog=f"Defaults = a configuration in the tied top group of chapter 5's sweep (optuna TPE over the source "
               f"assignment's space, on a training subset; re-trained with three seeds beside the sweep's best "
               f"configurations, none of which beats it on every seed): {best}; learning rate decayed to 0 with a cosine over the run "
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
    from . import data

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


# --------------------------------------------------------------------------- logging
def _wandb_configured() -> tuple[bool, str]:
    if os.environ.get("WANDB_MODE", "").lower() in {"disabled", "dryrun"}:
        return False, f"WANDB_MODE={os.environ['WANDB_MODE']}"
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE", "").lower() == "offline":
        return True, ""
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        if "api.wandb.ai" in netrc.read_text():
            return True, ""
    except OSError:
        pass
    return False, "not configured (no WANDB_API_KEY, no wandb login)"


def start_wandb(args, config: dict, **init_kwargs):
    """A W&B run, or (None, reason) when wandb is off, missing, unconfigured or fails to start."""
    if args.wandb == "off":
        return None, "off (--wandb off)"
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        return None, "wandb is not installed"
    ok, why = _wandb_configured()
    if not ok:
        return None, why
    try:
        import wandb

        run = wandb.init(project=args.wandb_project, entity=args.wandb_entity, config=config,
                         name=config.get("run_name"), **init_kwargs)
    except Exception as exc:  # no network, bad key, ...: never fail the training for it
        return None, f"wandb.init failed: {type(exc).__name__}: {exc}"
    return run, "logging to Weights & Biases"


def _finite(obj):
    """``obj`` with every non-finite float (NaN, inf) replaced by None, so that it is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) or type(obj).__name__.startswith("float"):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def _cell(value):
    """A metrics.csv cell: a non-finite number is an empty cell (strict CSV; pandas reads it as NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


class RunFolder:
    """runs/<name>/: config.json, metrics.csv (appended per epoch), summary.json. Strict JSON
    (NaN and infinities are written as null) and CSV (as empty cells)."""

    FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]

    def __init__(self, parent: Path, name: str):
        parent = Path(parent)
        path, k = parent / name, 1
        while True:  # never reuse a folder, even when another run takes the same name at the same moment
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                path, k = parent / f"{name}-{k}", k + 1
        self.path = path
        with open(path / "metrics.csv", "w", newline="") as fh:
            csv.writer(fh).writerow(self.FIELDS)

    def write_json(self, name: str, obj: dict) -> None:
        (self.path / name).write_text(json.dumps(_finite(obj), indent=2, default=str, allow_nan=False) + "\n")

    def log_epoch(self, row: dict) -> None:
        with open(self.path / "metrics.csv", "a", newline="") as fh:
            csv.writer(fh).writerow([_cell(row[k]) for k in self.FIELDS])


# --------------------------------------------------------------------------- data
def _prepare_data(parser, dataset: str, val_fraction: float, subset: int | None, seed: int, progress: bool = True,
                  ds=None):
    """Load the dataset (unless ``ds`` is given), split off the validation set (stratified), take the
    training subset, and standardize: returns (ds, X_tr, X_val, X_te, y_tr, y_val). Raises
    data.DatasetNotFoundError."""
    from . import data, network

    if ds is None:
        ds = data.load(DATASETS[dataset], progress=progress)
    try:
        X_tr, X_val, y_tr, y_val = data.train_val_split(ds.X_train, ds.y_train, val_fraction=val_fraction, seed=seed)
        if subset is not None and subset < len(X_tr):
            _, X_tr, _, y_tr = data.train_val_split(X_tr, y_tr, val_fraction=subset / len(X_tr), seed=seed)
    except ValueError as exc:  # checked up front; this guards against a dataset of another size
        parser.error(f"argument --val_fraction/--subset: the split is impossible: {exc}")
    scaler = network.Standardizer().fit(X_tr)
    return ds, scaler.transform(X_tr), scaler.transform(X_val), scaler.transform(ds.X_test), y_tr, y_val


# --------------------------------------------------------------------------- train.py (one run)
def train_main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_folder(parser, "--run_dir", args.run_dir)
    _check_split(parser, args.dataset, args.val_fraction, args.subset)
    _check_network_size(parser, args.num_layers, args.hidden_size, args.batch_size,
                         "arguments -nhl/--num_layers and -sz/--hidden_size")

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=args.threads, user_api="blas")
    import numpy as np

    from . import data, network

    hyper = {"momentum": {"beta": args.momentum}, "nag": {"beta": args.momentum}, "rmsprop": {"beta": args.beta, "eps": args.epsilon},
             "adam": {"beta1": args.beta1, "beta2": args.beta2, "eps": args.epsilon},
             "nadam": {"beta1": args.beta1, "beta2": args.beta2, "eps": args.epsilon}}.get(args.optimizer, {})
    # validate the optimizer's hyperparameters before loading anything (argparse-style message, exit 2)
    try:
        network.make_optimizer(args.optimizer, [np.zeros(1)], args.learning_rate, **hyper)
    except (ValueError, TypeError) as exc:
        parser.error(f"invalid optimizer settings for {args.optimizer}: {exc}")

    try:
        ds, X_tr, X_val, X_te, y_tr, y_val = _prepare_data(parser, args.dataset, args.val_fraction, args.subset, args.seed)
    except data.DatasetNotFoundError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1

    net = network.FeedForwardNet(X_tr.shape[1], [args.hidden_size] * args.num_layers, ds.num_classes,
                                 activation=args.activation.lower(), init=args.weight_init.lower(), loss=args.loss,
                                 weight_decay=args.weight_decay, dtype=np.float32, seed=args.seed)
    opt = network.make_optimizer(args.optimizer, [p.value for p in net.params], args.learning_rate, **hyper)

    run_name = args.run_name or f"{time.strftime('%Y%m%d-%H%M%S')}-{args.dataset}-{args.optimizer}"
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config.update(run_name=run_name, data_note=ds.note(), train_examples=len(X_tr), val_examples=len(X_val),
                  test_examples=len(X_te), model=repr(net), optimizer_repr=repr(opt), parameters=net.num_parameters)
    try:
        folder = RunFolder(args.run_dir, run_name)
    except OSError as exc:
        parser.error(f"argument --run_dir: cannot create the run folder in {args.run_dir}: {exc.strerror or exc}")
    wb, wb_status = start_wandb(args, config)
    notes = _ignored(parser, argv, args, wandb_used=wb is not None)
    config["ignored_options"] = notes
    folder.write_json("config.json", config)
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)

    print(ds.note())
    print(f"train {len(X_tr):,} / validation {len(X_val):,} / test {len(X_te):,} images")
    print(f"model: {net!r}, {net.num_parameters:,} parameters")
    print(f"optimizer: {opt!r}, lr schedule {args.lr_schedule}, batch size {args.batch_size}, {args.epochs} epoch(s)")
    print(f"W&B: {wb_status}; run folder: {folder.path}", flush=True)

    epochs_done = []

    def on_epoch(epoch: int, row: dict) -> None:
        folder.log_epoch(row)
        epochs_done.append(row)
        if wb is not None:
            wb.log({k: row[k] for k in RunFolder.FIELDS if k != "epoch"}, step=epoch)
        print(f"epoch {epoch}/{args.epochs}  train_loss {row['train_loss']:.4f}  train_acc {row['train_acc']:.4f}  "
              f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}  ({row['seconds']:.1f} s)", flush=True)

    def finish(summary: dict) -> None:
        folder.write_json("summary.json", summary)
        if wb is not None:
            wb.summary.update(_finite(summary))
            wb.finish()

    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # divergence is detected and reported
            history = network.train(net, X_tr, y_tr, X_val=X_val, y_val=y_val, optimizer=opt,
                                    batch_size=args.batch_size, num_epochs=args.epochs, schedule=args.lr_schedule,
                                    seed=args.seed, callback=on_epoch)
    except KeyboardInterrupt:
        last = epochs_done[-1]["val_acc"] if epochs_done else None
        finish({"status": "interrupted", "test_loss": None, "test_acc": None, "diverged": False,
                "final_val_acc": last, "epochs_run": len(epochs_done)})
        print(f"{PROG}: interrupted after {len(epochs_done)} complete epoch(s); the run folder {folder.path} has "
              f"their metrics", file=sys.stderr)
        return 130
    diverged = bool(history["diverged"].iloc[-1])
    if diverged:
        row = history.iloc[-1].to_dict()
        folder.log_epoch(row)
        epoch = int(row["epoch"])
        print(f"epoch {epoch}/{args.epochs}  the loss became NaN or infinite: training stopped "
              f"(try a smaller learning rate)", flush=True)
        finite = history["val_acc"].dropna()
        finish({"status": "diverged", "test_loss": None, "test_acc": None, "diverged": True,
                "final_val_acc": float(finite.iloc[-1]) if len(finite) else None, "epochs_run": int(len(history)),
                "message": f"the training loss became NaN or infinite in epoch {epoch}; no test evaluation"})
        print(f"{PROG}: error: training diverged in epoch {epoch} (the loss became NaN or infinite), so the network "
              f"was not evaluated on the test set; try a smaller learning rate (-lr). Run folder: {folder.path}",
              file=sys.stderr)
        return 1
    test_loss, test_acc = net.evaluate(X_te, ds.y_test)
    summary = {"status": "completed", "test_loss": test_loss, "test_acc": test_acc, "diverged": False,
               "final_val_acc": float(history["val_acc"].iloc[-1]), "epochs_run": int(len(history))}
    finish(summary)
    print(f"test_loss {test_loss:.4f}  test_acc {test_acc:.4f}")
    return 0


# --------------------------------------------------------------------------- train.py sweep
def _study_default(dataset: str) -> str:
    return f"sweep-{dataset}"


def build_sweep_parser() -> argparse.ArgumentParser:
    try:  # --help works even where numpy is missing
        from . import sweeps

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


def _resolve_storage(parser, args, must_exist: bool) -> tuple[str, Path]:
    """(storage URL, study folder) of a sweep or report command, checked (parser.error when wrong)."""
    from . import sweeps

    args.study = args.study or _study_default(args.dataset)
    folder = Path(args.run_dir) / args.study
    if args.storage is None:
        url = sweeps.storage_url(folder / "study.db")
    else:
        if not args.storage.strip():
            parser.error("argument --storage: must not be empty")
        url = sweeps.storage_url(args.storage)
    try:
        backend = sweeps._backend(url)
    except Exception:
        parser.error(f"argument --storage: not a storage URL or path: {sweeps.redact_url(url)!r}")
    if backend not in ("sqlite", "postgresql"):
        parser.error(f"argument --storage: unsupported storage {backend!r}: use a SQLite file (a path or "
                     f"sqlite:///path) or postgresql://user:password@host:port/database")
    path = sweeps.sqlite_path(url)
    if backend == "sqlite" and path is None:
        parser.error("argument --storage: an in-memory SQLite database cannot be shared by workers or outlive the "
                     "command: give a file")
    if path is not None:
        if path.is_dir():
            parser.error(f"argument --storage: {path} is a folder: give the database file's path")
        if must_exist and not path.is_file():
            where = "--storage" if args.storage is not None else "--study/--run_dir"
            parser.error(f"argument {where}: there is no sweep database at {path}: run '{PROG} sweep' first, or "
                         f"give --study, --run_dir or --storage of an existing sweep")
        if not must_exist:
            _check_folder(parser, "--storage" if args.storage is not None else "--run_dir", path.parent)
    if backend == "postgresql" and sweeps._postgres_driver_missing():
        parser.error("argument --storage: a PostgreSQL storage needs a driver: pip install psycopg2-binary")
    return url, folder


def _storage_error(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fmt_params(params: dict) -> str:
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _trial_line(t, prefix: str) -> str:
    import optuna

    secs = f"{t.duration.total_seconds():.1f} s" if t.duration is not None else "?"
    if t.state == optuna.trial.TrialState.COMPLETE:
        head = f"trial {t.number} complete: val_acc {t.value:.4f} after {max(t.intermediate_values, default=0)} epoch(s)"
    elif t.state == optuna.trial.TrialState.PRUNED:
        last = max(t.intermediate_values, default=0)
        value = t.intermediate_values.get(last, float("nan"))
        head = f"trial {t.number} pruned after epoch {last}: val_acc {value:.4f}"
    else:
        why = (f"diverged in epoch {t.user_attrs['diverged_at_epoch']}" if "diverged_at_epoch" in t.user_attrs
               else "failed")
        head = f"trial {t.number} failed: {why}"
    return f"{prefix}{head} ({secs}) | {_fmt_params(t.params)}"


def _limit_threads() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _run_sweep_worker(spec: dict, ds=None) -> int:
    """One worker: load the data (unless ``ds`` is given), open the study, pull trials until done.
    Returns an exit status."""
    import warnings

    import optuna

    from . import data, sweeps

    _limit_threads()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    prefix = spec["prefix"]
    parser = build_sweep_parser()
    lock = None
    try:
        ds, X_tr, X_val, _, y_tr, y_val = _prepare_data(parser, spec["dataset"], spec["val_fraction"], spec["subset"],
                                                        spec["seed"], progress=False, ds=ds)
        storage = sweeps.open_storage(spec["url"], heartbeat_interval=spec["heartbeat"], grace_period=spec["grace"])
        study = sweeps.open_study(storage, spec["study"], config=spec["config"], create=False, seed=spec["seed"],
                                  n_startup_trials=spec["startup_trials"], pruner_warmup_epochs=spec["pruner_warmup"],
                                  pruner_startup_trials=spec["pruner_startup"])
        lock = sweeps.StudyLock(spec["url"], spec["study"])
        objective = sweeps.make_objective(X_tr, y_tr, X_val, y_val, num_classes=ds.num_classes, space=spec["space"],
                                          seed=spec["seed"], schedule=spec["lr_schedule"], should_stop=_STOP.is_set)

        def on_trial(t) -> None:
            if not spec["quiet"]:
                print(_trial_line(t, prefix), flush=True)

        import numpy as np

        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverged trial is recorded as such
            why = sweeps.run_worker(study, objective, spec["trials"], lock=lock, seed=spec["seed"],
                                    deadline=spec["deadline"], n_startup_trials=spec["startup_trials"],
                                    on_trial=on_trial, should_stop=_STOP.is_set)
        if why == "stopped":
            print(f"{PROG} sweep: {prefix}stopped (signal) between trials", file=sys.stderr, flush=True)
            return 130
        return 0
    except (KeyboardInterrupt, sweeps.Interrupted):
        print(f"{PROG} sweep: {prefix}stopped (signal): its running trial is recorded as failed", file=sys.stderr,
              flush=True)
        return 130
    except data.DatasetNotFoundError as exc:
        print(f"{PROG} sweep: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except MemoryError:
        print(f"{PROG} sweep: {prefix}error: out of memory in a trial (recorded as failed); use fewer workers or a "
              f"smaller --space", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        if os.environ.get("COURSE_DEBUG"):
            raise
        print(f"{PROG} sweep: {prefix}error: {type(exc).__name__}: {_storage_error(exc)} (this worker stopped; a "
              f"trial it was running is recorded as failed)", file=sys.stderr, flush=True)
        return 1
    finally:
        if lock is not None:
            try:
                lock.close()
            except Exception:  # noqa: BLE001
                pass


#: Set by the first SIGTERM (a worker process) or Ctrl-C (a sweep run in this process): the running
#: trial stops at its next epoch boundary and is recorded as failed; a second signal stops at once.
_STOP = threading.Event()


def _soft_stop(signum, frame) -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt
    _STOP.set()


def _spawned_worker(spec: dict) -> None:
    """Entry point of a worker process (multiprocessing, spawn). Ctrl-C in the terminal reaches the
    parent, which stops its workers with one SIGTERM each; a worker ignores SIGINT itself."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _soft_stop)
    sys.exit(_run_sweep_worker(spec))


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{seconds:.1f} s"


def _counts(study) -> dict:
    import collections

    c = collections.Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return {k: c.get(k, 0) for k in ("complete", "pruned", "fail", "running")}


def _fmt_counts(c: dict) -> str:
    return f"{c['complete']} completed, {c['pruned']} pruned, {c['fail']} failed, {c['running']} running"


def sweep_main(argv) -> int:
    import warnings

    from . import sweeps

    t0 = time.time()  # the time budget (--timeout) counts from here
    parser = build_sweep_parser()
    args = parser.parse_args(argv)
    _check_folder(parser, "--run_dir", args.run_dir)
    url, folder = _resolve_storage(parser, args, must_exist=False)
    _check_split(parser, args.dataset, args.val_fraction, args.subset)
    try:
        space = sweeps.parse_space_override(args.space)
    except ValueError as exc:
        parser.error(f"argument --space: {exc}")
    _check_network_size(parser, max(space["num_layers"]), max(space["hidden_size"]), max(space["batch_size"]),
                        "argument --space (num_layers, hidden_size)")
    max_workers = 4 * (os.cpu_count() or 1)
    if args.workers > max_workers:
        parser.error(f"argument --workers: {args.workers} processes on a machine with {os.cpu_count()} CPU cores; "
                     f"use at most {max_workers} (one per core is fastest)")
    grace = args.grace if args.grace is not None else 3 * args.heartbeat
    if grace <= args.heartbeat:
        parser.error(f"argument --grace: must be more than --heartbeat ({args.heartbeat} s), got {grace}")
    given = _given(parser, argv)
    notes = []
    if args.wandb == "off" or args.no_report:
        notes += [f"{_flags(parser, d)} is ignored: the report is not logged to W&B" for d in ("wandb_project", "wandb_entity")
                  if d in given]

    import optuna

    from . import data

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for note in notes:
        print(f"{PROG} sweep: note: {note}", file=sys.stderr)
    n_all = data.DATASETS[DATASETS[args.dataset]].expected_counts[0]
    n_val = math.ceil(args.val_fraction * n_all)  # as _check_split and scikit-learn count
    n_train = n_all - n_val if args.subset is None else min(args.subset, n_all - n_val)
    config = {"dataset": args.dataset, "subset": args.subset, "val_fraction": args.val_fraction, "seed": args.seed,
              "lr_schedule": args.lr_schedule, "space": space, "startup_trials": args.startup_trials,
              "pruner_startup": args.pruner_startup, "pruner_warmup": args.pruner_warmup}
    if sweeps.sqlite_path(url) is not None:
        sweeps.sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    shown = sweeps.redact_url(url)
    lock = None
    try:
        lock = sweeps.StudyLock(url, args.study)
        with lock:  # one process at a time creates the tables and the study
            storage = sweeps.open_storage(url, heartbeat_interval=args.heartbeat, grace_period=grace)
            study = sweeps.open_study(storage, args.study, config=config, seed=args.seed,
                                      n_startup_trials=args.startup_trials, pruner_warmup_epochs=args.pruner_warmup,
                                      pruner_startup_trials=args.pruner_startup)
    except ValueError as exc:
        parser.error(f"argument --study: {exc}")
    except Exception as exc:  # noqa: BLE001 - a server that cannot be reached, a file that is not a database, ...
        if os.environ.get("COURSE_DEBUG"):
            raise
        if sweeps.sqlite_path(url) is not None:  # the file given is the problem: an argument error
            parser.error(f"argument --storage: cannot use {sweeps.sqlite_path(url)} as an optuna database: "
                         f"{_storage_error(exc)}")
        print(f"{PROG} sweep: error: cannot open the storage {shown}: {_storage_error(exc)}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.close()

    before = _counts(study)
    n_before = sum(before.values())
    print(f"study {args.study!r} in {shown}: {n_before} trial(s) so far ({_fmt_counts(before)})")
    print(f"each trial: {args.dataset}, {n_train:,} training / {n_val:,} validation images, seed {args.seed}, "
          f"lr schedule {args.lr_schedule}; space of {sweeps.space_size(space):,} configurations")
    todo = max(0, args.trials - n_before)
    deadline = t0 + args.timeout if args.timeout is not None else None
    status = 0
    if todo == 0:
        print(f"the study already holds {n_before} >= {args.trials} trials (--trials): nothing to run")
    else:
        try:  # the data must be there before any worker starts
            ds = data.load(DATASETS[args.dataset], progress=True)
        except data.DatasetNotFoundError as exc:
            print(f"{PROG} sweep: error: {exc}", file=sys.stderr)
            return 1
        workers = min(args.workers, todo)
        print(f"running {todo} more trial(s) up to {args.trials} with {workers} worker(s)"
              + (f", no new trial after {args.timeout:g} s" if deadline else ""), flush=True)
        spec = {"url": url, "study": args.study, "config": config, "heartbeat": args.heartbeat, "grace": grace,
                "trials": args.trials, "deadline": deadline, "seed": args.seed, "dataset": args.dataset,
                "subset": args.subset, "val_fraction": args.val_fraction, "lr_schedule": args.lr_schedule,
                "space": space, "startup_trials": args.startup_trials, "pruner_warmup": args.pruner_warmup,
                "pruner_startup": args.pruner_startup, "quiet": args.quiet}
        preloaded, ds = (ds if workers == 1 else None), None  # spawned workers load their own copy
        status = _run_workers(spec, workers, preloaded)
        del preloaded
    if status == 130:
        return 130

    try:
        running = sweeps.settle_running_trials(study, wait=(grace + args.heartbeat + 1) if _counts(study)["running"] else 0)
        after = _counts(study)
    except Exception as exc:  # noqa: BLE001
        print(f"{PROG} sweep: error: cannot read the storage {shown}: {_storage_error(exc)}", file=sys.stderr)
        return 1
    elapsed = time.time() - t0
    ran = sum(after.values()) - n_before - len(running)
    print(f"study {args.study!r}: {sum(after.values())} trial(s): {_fmt_counts(after)}")
    if todo and ran > 0:
        span = _trial_span(study, n_before)
        line = (f"since this command started: {ran} trial(s) finished in the study in {_duration(elapsed)} "
                f"({60 * ran / elapsed:.1f} trials/min)")
        if span:
            line += f"; first trial start to last trial end {_duration(span)} ({60 * ran / span:.1f} trials/min)"
        print(line)
    if running:
        print(f"trial(s) {', '.join(map(str, running))} are still running in other workers (their heartbeats are fresh)")
    best = sweeps.best_summary(study, **_command_keywords(config))
    if best is not None:
        print(f"best: trial {best['trial']}, val_acc {best['value']:.4f} | {_fmt_params(best['params'])}")
        print(f"train it: {best['train_command']}")
    if not args.no_report:
        _write_report(study, folder / "report", config, args, prog=f"{PROG} sweep")
    if status == 0 and args.timeout is not None and sum(after.values()) < args.trials:
        print(f"the time budget ({args.timeout:g} s) ran out: start the same command again to continue")
    return status


def _trial_span(study, first_number: int) -> float | None:
    """Seconds from the first start to the last end of the finished trials numbered >= first_number."""
    done = [t for t in study.get_trials(deepcopy=False) if t.number >= first_number and t.datetime_complete is not None
            and t.datetime_start is not None]
    if not done:
        return None
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return span if span > 0 else None


def _run_workers(spec: dict, workers: int, ds=None) -> int:
    """Run ``workers`` sweep workers (in this process, with the loaded dataset ``ds``, when 1; else
    spawned processes); returns 0, 1 (a worker failed) or 130 (interrupted)."""
    import multiprocessing as mp
    import signal

    if workers == 1:
        if not _main_thread():
            return _run_sweep_worker(dict(spec, prefix=""), ds=ds)
        def stop_here(signum, frame):
            if not _STOP.is_set():
                print(f"{PROG} sweep: stopping at the end of this epoch (Ctrl-C again to stop now)", file=sys.stderr,
                      flush=True)
            _soft_stop(signum, frame)

        _STOP.clear()
        previous = {sig: signal.signal(sig, stop_here) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            status = _run_sweep_worker(dict(spec, prefix=""), ds=ds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if status == 130:
            print(f"{PROG} sweep: interrupted. Start the same command again to continue the study.", file=sys.stderr)
        return status
    ctx = mp.get_context("spawn")
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})  # the children read them before importing numpy
    procs = []
    try:
        for i in range(workers):
            proc = ctx.Process(target=_spawned_worker, args=(dict(spec, prefix=f"[worker {i + 1}] "),),
                               name=f"sweep-worker-{i + 1}")
            proc.start()
            procs.append(proc)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt) if _main_thread() else None
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        print(f"{PROG} sweep: stopping the workers at their next epoch (Ctrl-C again to kill them now)",
              file=sys.stderr, flush=True)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # one SIGTERM: the worker fails its running trial after the current epoch
        try:
            for proc in procs:
                proc.join()
        except KeyboardInterrupt:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
            print(f"{PROG} sweep: workers killed; their running trials are marked failed once their heartbeats "
                  f"are missed", file=sys.stderr)
        print(f"{PROG} sweep: interrupted. Start the same command again to continue the study.", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    status = 0
    for i, proc in enumerate(procs, start=1):
        if proc.exitcode and proc.exitcode < 0:
            name = signal.Signals(-proc.exitcode).name
            print(f"{PROG} sweep: worker {i} was killed ({name}); its running trial is marked failed once its "
                  f"heartbeat is missed", file=sys.stderr)
            status = 1
        elif proc.exitcode:
            status = 130 if proc.exitcode == 130 and status != 1 else 1
    return status


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _command_keywords(config: dict) -> dict:
    """sweeps.train_command's keywords that make train.py repeat a trial of a sweep with ``config``."""
    return {"dataset": config.get("dataset"), "schedule": config.get("lr_schedule"), "subset": config.get("subset"),
            "val_fraction": config.get("val_fraction") if config.get("val_fraction") not in (None, 0.1) else None,
            "seed": config.get("seed") if config.get("seed") else None}


def _write_report(study, out: Path, config: dict | None, args, prog: str) -> dict | None:
    from . import sweeps

    config = config or {}
    try:
        keywords = _command_keywords(config)
        report = sweeps.write_report(study, out, space=config.get("space"), seed=keywords.pop("seed") or 0,
                                     **keywords)
    except OSError as exc:
        print(f"{prog}: error: cannot write the report to {out}: {exc.strerror or exc}", file=sys.stderr)
        return None
    written = ", ".join(report["files"])
    print(f"report: {out}/ ({written})")
    for name, why in report["skipped"].items():
        print(f"report: {name} not written yet: {why}")
    if args.wandb != "off":
        print(f"report W&B: {_log_report_to_wandb(args, study, report, config)}")
    return report


def _log_report_to_wandb(args, study, report: dict, config: dict) -> str:
    """Log the report's table, figures and best trial to a W&B run; never fails the command."""
    run, status = start_wandb(args, {"run_name": f"{study.study_name}-report", **config}, job_type="sweep-report")
    if run is None:
        return status
    try:
        import pandas as pd
        import wandb

        files = report["files"]
        payload = {"results": wandb.Table(dataframe=pd.read_csv(files["results.csv"]))}
        for name in ("accuracy_by_trial.png", "parallel_coordinates.png"):
            if name in files:
                payload[name[:-4]] = wandb.Image(str(files[name]))
        run.log(payload)
        if report["best"] is not None:
            run.summary.update({"best_trial": report["best"]["trial"], "best_val_acc": report["best"]["value"],
                                **{f"best_{k}": v for k, v in report["best"]["params"].items()}})
        run.finish()
    except Exception as exc:  # noqa: BLE001 - W&B never fails the sweep
        return f"logging failed: {type(exc).__name__}: {exc}"
    return "logged to Weights & Biases"


def report_main(argv) -> int:
    import warnings

    from . import sweeps

    parser = build_report_parser()
    args = parser.parse_args(argv)
    url, folder = _resolve_storage(parser, args, must_exist=True)
    out = args.out if args.out is not None else folder / "report"
    _check_folder(parser, "--out" if args.out is not None else "--run_dir", out)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    shown = sweeps.redact_url(url)
    try:
        lock = sweeps.StudyLock(url, args.study)
        try:
            with lock:  # not while a starting sweep creates the database's tables
                storage = sweeps.open_storage(url, heartbeat_interval=None)
        finally:
            lock.close()
        study = sweeps.open_study(storage, args.study, create=False)
    except KeyError as exc:
        parser.error(f"argument --study: {exc.args[0]} ({shown})")
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("COURSE_DEBUG"):
            raise
        if sweeps.sqlite_path(url) is not None:
            parser.error(f"argument --storage: cannot use {sweeps.sqlite_path(url)} as an optuna database: "
                         f"{_storage_error(exc)}")
        print(f"{PROG} sweep-report: error: cannot read the storage {shown}: {_storage_error(exc)}", file=sys.stderr)
        return 1
    config = study.user_attrs.get("sweep_config", {})
    counts = _counts(study)
    print(f"study {args.study!r} in {shown}: {sum(counts.values())} trial(s): {_fmt_counts(counts)}")
    best = sweeps.best_summary(study, **_command_keywords(config))
    if best is not None:
        print(f"best: trial {best['trial']}, val_acc {best['value']:.4f} | {_fmt_params(best['params'])}")
        print(f"train it: {best['train_command']}")
    report = _write_report(study, out, config, args, prog=f"{PROG} sweep-report")
    return 0 if report is not None else 1


# --------------------------------------------------------------------------- entry point
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


if __name__ == "__main__":
    sys.exit(main())
