"""Tests of train.py, chapter 5's command-line trainer, run as a subprocess on small subsets.

The training runs need the Fashion-MNIST / MNIST files (``COURSE_DATA`` mirror or the user cache);
without them those tests are skipped with the reason. No test touches the network or a W&B account:
W&B is exercised with a stub ``wandb`` package put on ``PYTHONPATH``.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TRAIN, fake_wandb, load_script, require_datasets, wandb_calls
from helpers import run_train as run

pytestmark = pytest.mark.processes  # it waits on processes: a parallel run starts it beside a notebook (conftest.py)

SOURCE_FLAGS = ["-wp", "--wandb_project", "-we", "--wandb_entity", "-d", "--dataset", "-e", "--epochs", "-b", "--batch_size",
                "-l", "--loss", "-o", "--optimizer", "-lr", "--learning_rate", "-m", "--momentum", "-beta", "--beta",
                "-beta1", "--beta1", "-beta2", "--beta2", "-eps", "--epsilon", "-w_d", "--weight_decay", "-w_i",
                "--weight_init", "-nhl", "--num_layers", "-sz", "--hidden_size", "-a", "--activation"]
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)  train_loss \d+\.\d{4}  train_acc (\d\.\d{4})  val_loss \d+\.\d{4}  "
                        r"val_acc (\d\.\d{4})  \(\d+\.\d s\)$")
TEST_LINE = re.compile(r"^test_loss \d+\.\d{4}  test_acc (\d\.\d{4})$")


def load_train_module():
    return load_script(TRAIN, "train_cli")


@pytest.fixture(scope="module")
def have_data():
    require_datasets("fashion-mnist", "mnist")


# --------------------------------------------------------------------------- arguments
def test_source_arguments_and_defaults_are_the_sweeps_top_group_choice():
    train = load_train_module()
    parser = train.build_parser()
    flags = {s for action in parser._actions for s in action.option_strings}
    assert set(SOURCE_FLAGS) <= flags
    args = parser.parse_args([])
    assert (args.wandb_project, args.wandb_entity, args.dataset) == ("myprojectname", "myname", "fashion_mnist")
    for key, value in train.BEST.items():
        assert getattr(args, key) == value, key
    for key, value in train.FIXED.items():
        assert getattr(args, key) == value, key
    choices = {a.dest: a.choices for a in parser._actions if a.choices}
    assert choices["dataset"] == ["mnist", "fashion_mnist"]
    assert choices["loss"] == ["mean_squared_error", "cross_entropy"]
    assert choices["optimizer"] == ["sgd", "momentum", "nag", "rmsprop", "adam", "nadam"]
    assert {"random", "Xavier"} <= set(choices["weight_init"])
    assert choices["activation"] == ["identity", "sigmoid", "tanh", "ReLU"]
    # the source's short flags parse to the right destinations
    a = parser.parse_args("-e 3 -b 8 -o nag -lr 0.01 -m 0.8 -beta 0.7 -beta1 0.6 -beta2 0.99 -eps 1e-7 -w_d 0.001 "
                          "-w_i random -nhl 2 -sz 16 -a tanh -l mean_squared_error -d mnist".split())
    assert (a.epochs, a.batch_size, a.optimizer, a.learning_rate, a.momentum, a.beta, a.beta1, a.beta2, a.epsilon,
            a.weight_decay, a.weight_init, a.num_layers, a.hidden_size, a.activation, a.loss, a.dataset) == \
        (3, 8, "nag", 0.01, 0.8, 0.7, 0.6, 0.99, 1e-7, 0.001, "random", 2, 16, "tanh", "mean_squared_error", "mnist")


def test_help_says_what_the_sweep_chose(capsys):
    train = load_train_module()
    with pytest.raises(SystemExit) as exc:
        train.main(["--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "top group of chapter 5.2's sweep" in out and "tied" not in out
    assert "from the sweep's top group; source default 4" in out  # batch size
    for key, value in train.BEST.items():
        assert f"{key} {value}" in out


def test_invalid_choice_exits_with_argparse_message():
    proc = run(["-o", "adagrad"])
    assert proc.returncode == 2
    assert "usage: train.py" in proc.stderr
    assert "train.py: error: argument -o/--optimizer: invalid choice: 'adagrad'" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("argv, message", [
    (["-a", "relu"], "argument -a/--activation: invalid choice: 'relu'"),
    (["-e", "0"], "argument -e/--epochs: must be a positive integer, got 0"),
    (["-lr", "-1"], "argument -lr/--learning_rate: must be a finite number >= 0"),
])
def test_other_bad_values_exit_2(argv, message, capsys):
    train = load_train_module()
    with pytest.raises(SystemExit) as exc:
        train.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_out_of_range_beta_is_an_argparse_error(capsys):
    train = load_train_module()
    with pytest.raises(SystemExit) as exc:
        train.main(["-o", "adam", "-beta1", "1.5"])
    assert exc.value.code == 2
    assert "invalid optimizer settings for adam: beta1 must be in [0, 1), got 1.5" in capsys.readouterr().err


# --------------------------------------------------------------------------- training runs
def test_training_run_prints_metrics_and_writes_run_folder(have_data, tmp_path):
    proc = run(["--subset", "600", "-e", "2", "-b", "32", "-nhl", "1", "-sz", "32", "-o", "adam", "-lr", "0.003",
                "--run_dir", str(tmp_path), "--run_name", "smoke", "--wandb", "off"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Data: Fashion-MNIST")
    assert lines[1] == "train 600 / validation 6,000 / test 10,000 images"
    assert "W&B: off (--wandb off)" in proc.stdout
    epochs = [EPOCH_LINE.match(line) for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2 and all(epochs), lines
    assert [m.group(1) for m in epochs] == ["1", "2"]
    test = TEST_LINE.match(lines[-1])
    assert test, lines[-1]
    test_acc = float(test.group(1))
    assert 0.5 < test_acc <= 1.0  # 600 images, two epochs: far above chance (0.1)

    folder = tmp_path / "smoke"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.csv", "summary.json"]
    config = json.loads((folder / "config.json").read_text())
    assert config["optimizer"] == "adam" and config["subset"] == 600 and config["train_examples"] == 600
    with open(folder / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert f"{float(rows[-1]['val_acc']):.4f}" == epochs[-1].group(4)
    summary = json.loads((folder / "summary.json").read_text())
    assert f"{summary['test_acc']:.4f}" == f"{test_acc:.4f}" and summary["epochs_run"] == 2

    again = run(["--subset", "600", "-e", "2", "-b", "32", "-nhl", "1", "-sz", "32", "-o", "adam", "-lr", "0.003",
                 "--run_dir", str(tmp_path), "--run_name", "smoke", "--wandb", "off"])
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "smoke-1" / "metrics.csv").is_file()  # an existing run folder is never overwritten
    strip = lambda out: [ln for ln in out.splitlines() if ln.startswith(("epoch", "test"))]  # noqa: E731
    assert [re.sub(r"\(\d+\.\d s\)", "", ln) for ln in strip(again.stdout)] == \
        [re.sub(r"\(\d+\.\d s\)", "", ln) for ln in strip(proc.stdout)]  # seeded: same numbers


@pytest.mark.parametrize("fail", [False, True])
def test_wandb_is_used_when_installed_and_configured_and_never_required(have_data, tmp_path, fail):
    env, log = fake_wandb(tmp_path, fail=fail)
    proc = run(["-d", "mnist", "--subset", "300", "-e", "1", "-nhl", "1", "-sz", "16", "-b", "64", "-o", "sgd",
                "-lr", "0.1", "-wp", "proj", "-we", "me", "--run_dir", str(tmp_path / "runs"), "--run_name", "w"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("Data: MNIST")
    assert (tmp_path / "runs" / "w" / "metrics.csv").is_file()
    if fail:
        assert "W&B: wandb.init failed: ConnectionError: no network" in proc.stdout
        assert not log.exists()
    else:
        assert "W&B: logging to Weights & Biases" in proc.stdout
        calls = wandb_calls(log)
        assert calls[0] == ["init", {"project": "proj", "entity": "me", "job_type": None}]
        assert calls[1][0] == "log" and calls[1][1]["step"] == 1 and "val_acc" in calls[1][1]
        assert calls[-1][0] == "finish" and "test_acc" in calls[-1][1]


def test_unconfigured_wandb_is_skipped(tmp_path, monkeypatch):
    train = load_train_module()
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    ok, why = train._wandb_configured()
    assert not ok and "not configured" in why


def test_fixed_defaults_are_the_optimizers_defaults_the_sweep_used():
    """The sweep built its optimizers with course_utils.optim's defaults; train.py's defaults match them."""
    import numpy as np

    from course_utils import optim

    train = load_train_module()
    p = [np.zeros(1)]
    assert optim.Momentum(p).beta == optim.Nesterov(p).beta == train.FIXED["momentum"]
    assert optim.RMSProp(p).beta == train.FIXED["beta"] and optim.RMSProp(p).eps == train.FIXED["epsilon"]
    for cls in (optim.Adam, optim.NAdam):
        o = cls(p)
        assert (o.beta1, o.beta2, o.eps) == (train.FIXED["beta1"], train.FIXED["beta2"], train.FIXED["epsilon"])


# --------------------------------------------------------------------------- issue 13: never a traceback
def _error_lines(stderr: str) -> list[str]:
    """The lines of an argparse-style error after its usage block (usage lines and their indented continuations)."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("usage: train.py"), stderr
    return [ln for ln in lines if not ln.startswith(("usage:", " "))]


def _bad_values(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, what the one-line message says) for values that argparse accepts by type or that
    break later: each must end in exit status 2 with one line of message and no traceback."""
    a_file = tmp / "a-file"
    a_file.write_text("not a folder\n")
    a_dir = tmp / "a-dir"
    a_dir.mkdir(exist_ok=True)
    not_a_db = tmp / "notes.db"
    not_a_db.write_text("not a database\n")
    from course_utils import sweep_storage

    if not (tmp / "made" / "s" / "study.db").exists():  # a real (empty) sweep for the report rows
        (tmp / "made" / "s").mkdir(parents=True)
        sweep_storage.open_study(sweep_storage.open_storage(tmp / "made" / "s" / "study.db", heartbeat_interval=None),
                                 "s", config={})
    run = ["--run_dir", str(tmp / "runs")]
    return [
        # training: the validation split, the subset, the run folder, the seed, the network size
        (["--val_fraction", "0"], "argument --val_fraction: must be in (0, 1), got 0.0"),
        (["--val_fraction", "1"], "argument --val_fraction: must be in (0, 1), got 1.0"),
        (["--val_fraction", "nan"], "argument --val_fraction: must be in (0, 1), got nan"),
        (["--val_fraction", "abc"], "argument --val_fraction: invalid number: 'abc'"),
        (["--val_fraction", "1e-9"], "leaves 1 validation image(s), fewer than its 10 classes"),
        (["--val_fraction", "0.99999"], "leaves 0 training image(s), fewer than its 10 classes"),
        (["-d", "mnist", "--val_fraction", "0.0001"], "leaves 6 validation image(s), fewer than its 10 classes"),
        (["--subset", "0"], "argument --subset: must be a positive integer, got 0"),
        (["--subset", "9"], "argument --subset: needs at least one image per class (10), got 9"),
        (["--subset", "53995"], "argument --subset: 53,995 of the 54,000 training images leaves 5"),
        (["--run_dir", str(a_file)], "is a file, not a folder"),
        (["--run_dir", str(a_file / "sub")], f"cannot create the folder {a_file / 'sub'}: {a_file} is a file"),
        (["--run_name", ""], "argument --run_name: --run_name must not be empty"),
        (["--run_name", "a/b"], "--run_name must be a plain folder name"),
        (["--run_name", ".."], "--run_name must be a plain folder name"),
        (["--run_name", "x" * 300], "--run_name is 300 bytes long; at most 200"),
        (["--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
        (["--seed", str(2**32)], "argument --seed: must be an integer from 0 to 4294967295"),
        (["-nhl", "5", "-sz", "1000000"], "parameters and needs about"),
        (["-nhl", "-1"], "argument -nhl/--num_layers: must be a non-negative integer, got -1"),
        (["-e", "0"], "argument -e/--epochs: must be a positive integer, got 0"),
        (["-b", "0"], "argument -b/--batch_size: must be a positive integer, got 0"),
        (["-b", "1.5"], "argument -b/--batch_size: invalid positive integer: '1.5'"),
        (["-lr", "0"], "argument -lr/--learning_rate: must be > 0, got 0"),
        (["-lr", "inf"], "argument -lr/--learning_rate: must be a finite number >= 0, got inf"),
        (["-lr", "1e999"], "argument -lr/--learning_rate: must be a finite number >= 0"),
        (["-w_d", "-0.1"], "argument -w_d/--weight_decay: must be a finite number >= 0"),
        (["-eps", "0"], "argument -eps/--epsilon: must be > 0, got 0"),
        (["-o", "rmsprop", "-beta", "1"], "invalid optimizer settings for rmsprop: beta"),
        (["-o", "nag", "-m", "1"], "invalid optimizer settings for nag: beta (momentum) must be in [0, 1)"),
        (["-o", "adam", "-beta2", "1"], "invalid optimizer settings for adam: beta2 must be in [0, 1)"),
        (["--threads", "0"], "argument --threads: must be a positive integer, got 0"),
        (["-d", "cifar10"], "argument -d/--dataset: invalid choice: 'cifar10'"),
        (["-w_i", "orthogonal"], "argument -w_i/--weight_init: invalid choice: 'orthogonal'"),
        (["--lr_schedule", "step"], "argument --lr_schedule: invalid choice: 'step'"),
        (["--momentm", "0.5"], "unrecognized arguments: --momentm 0.5"),
        # the sweep
        (["sweep", "--trials", "0", *run], "argument --trials: must be a positive integer, got 0"),
        (["sweep", "--workers", "0", *run], "argument --workers: must be a positive integer, got 0"),
        (["sweep", "--workers", "1000000", *run], "argument --workers: 1000000 processes on a machine with"),
        (["sweep", "--timeout", "-5", *run], "argument --timeout: must be a finite number >= 0, got -5"),
        (["sweep", "--timeout", "inf", *run], "argument --timeout: must be a finite number >= 0, got inf"),
        (["sweep", "--space", "epochs", *run], "argument --space: 'epochs' is not NAME=VALUE[,VALUE...]"),
        (["sweep", "--space", "depth=3", *run], "argument --space: unknown parameter 'depth' in 'depth=3'"),
        (["sweep", "--space", "optimizer=adagrad", *run], "argument --space: optimizer 'adagrad' is not one of"),
        (["sweep", "--space", "epochs=0", *run], "argument --space: epochs must be >= 1, got '0'"),
        (["sweep", "--space", "learning_rate=-1", *run], "argument --space: learning_rate must be > 0, got '-1'"),
        (["sweep", "--space", "weight_decay=nan", *run], "argument --space: weight_decay must be finite, got 'nan'"),
        (["sweep", "--space", "batch_size=abc", *run], "argument --space: batch_size needs an integer, got 'abc'"),
        (["sweep", "--space", "epochs=1,1", *run], "argument --space: 'epochs=1,1' repeats a value"),
        (["sweep", "--space", "epochs=1", "--space", "epochs=2", *run], "parameter 'epochs' is given twice"),
        (["sweep", "--space", "num_layers=5", "--space", "hidden_size=1000000", *run], "parameters and needs about"),
        (["sweep", "--storage", "mysql://u@localhost/db", *run], "argument --storage: unsupported storage 'mysql'"),
        (["sweep", "--storage", "sqlite:///:memory:", *run], "an in-memory SQLite database cannot be shared"),
        (["sweep", "--storage", str(a_dir), *run], f"argument --storage: {a_dir} is a folder"),
        (["sweep", "--storage", str(a_file / "x.db"), *run], f"argument --storage: {a_file} is a file, not a folder"),
        (["sweep", "--storage", "", *run], "argument --storage: must not be empty"),
        (["sweep", "--storage", str(not_a_db), *run], f"cannot use {not_a_db} as an optuna database: file is not a"),
        (["sweep", "--study", "a/b", *run], "--study must be a plain folder name"),
        (["sweep", "--heartbeat", "5", "--grace", "5", *run], "argument --grace: must be more than --heartbeat (5 s)"),
        (["sweep", "--run_dir", str(a_file)], "argument --run_dir: " + str(a_file) + " is a file"),
        (["sweep", "--val_fraction", "1e-9", *run], "leaves 1 validation image(s), fewer than its 10 classes"),
        (["sweep", "--subset", "5", *run], "argument --subset: needs at least one image per class (10), got 5"),
        # the report
        (["sweep-report", "--study", "nothing-here", *run], "there is no sweep database at"),
        (["sweep-report", "--storage", str(tmp / "missing.db")], "there is no sweep database at"),
        (["sweep-report", "--storage", "oracle://u@h/db"], "argument --storage: unsupported storage 'oracle'"),
        (["sweep-report", "--storage", str(not_a_db)], f"cannot use {not_a_db} as an optuna database"),
        (["sweep-report", "--run_dir", str(tmp / "made"), "--study", "s", "--out", str(a_file)],
         f"argument --out: {a_file} is a file, not a folder"),
        (["sweep-report", "--run_dir", str(tmp / "made"), "--study", "t"], "there is no sweep database at"),
        (["sweep-report", "--storage", str(tmp / "made" / "s" / "study.db"), "--study", "t"],
         "argument --study: no study named 't' in this storage; it holds 's'"),
    ]


def test_bad_values_exit_2_with_one_line_and_no_traceback(tmp_path, capsys):
    """Issue 13, kind 4: every value that parses but cannot work is rejected up front."""
    train = load_train_module()
    rows = _bad_values(tmp_path)
    assert len(rows) >= 30
    for argv, message in rows:
        with pytest.raises(SystemExit) as exc:
            train.main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2, (argv, err)
        lines = _error_lines(err)
        assert len(lines) == 1, (argv, err)
        prog = "train.py " + argv[0] if argv[0] in ("sweep", "sweep-report") else "train.py"
        assert lines[0].startswith(f"{prog}: error: "), (argv, err)
        assert message in lines[0], (argv, lines[0])
        assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing was created for a rejected command


@pytest.mark.parametrize("row", [0, 10, 17, 40, 52, 60])
def test_bad_values_as_a_subprocess(tmp_path, row):
    argv, message = _bad_values(tmp_path)[row]
    proc = run(argv)
    assert proc.returncode == 2, proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_help_documents_the_sweep_options():
    proc = run(["--help"])
    assert proc.returncode == 0
    out = " ".join(proc.stdout.split())
    sweep = load_train_module().build_sweep_parser()
    for action in sweep._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert f"{flag}" in out, flag
    assert "train.py sweep [options]" in out and "train.py sweep-report [options]" in out
    for sub in ("sweep", "sweep-report"):
        proc = run([sub, "--help"])
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: train.py {sub}"), proc.stderr
        assert "(default" in proc.stdout


def test_options_the_optimizer_does_not_use_are_reported_as_ignored():
    train = load_train_module()
    parser = train.build_parser()
    from course_utils.cli import arguments

    argv = ["-o", "sgd", "-m", "0.5", "-beta1", "0.8", "--epsilon=1e-7", "-nhl", "0", "-sz", "64", "-wp", "p"]
    notes = arguments._ignored(parser, argv, parser.parse_args(argv), wandb_used=False)
    assert notes == [
        "-m/--momentum 0.5 is ignored: the sgd optimizer does not use it (it applies to momentum, nag)",
        "-beta1/--beta1 0.8 is ignored: the sgd optimizer does not use it (it applies to adam, nadam)",
        "-eps/--epsilon 1e-07 is ignored: the sgd optimizer does not use it (it applies to rmsprop, adam, nadam)",
        "-sz/--hidden_size 64 is ignored: with -nhl 0 there is no hidden layer",
        "-wp/--wandb_project p is ignored: W&B is not used in this run",
    ]
    argv = ["-o", "adam", "-beta1", "0.8", "-eps", "1e-7", "-m", "0.9"]  # -m is ignored even at its default value
    notes = arguments._ignored(parser, argv, parser.parse_args(argv), wandb_used=True)
    assert notes == ["-m/--momentum 0.9 is ignored: the adam optimizer does not use it (it applies to momentum, nag)"]


def _strict_json(path: Path):
    def no_constants(name):
        raise ValueError(f"{path.name}: bare {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=no_constants)


def test_a_diverged_run_stops_with_a_message_and_writes_valid_files(have_data, tmp_path):
    proc = run(["-o", "sgd", "-lr", "1e30", "--lr_schedule", "constant", "--subset", "300", "-e", "3", "-nhl", "1",
                "-sz", "16", "-m", "0.5", "--run_dir", str(tmp_path), "--run_name", "boom", "--wandb", "off"])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert err[0] == ("train.py: note: -m/--momentum 0.5 is ignored: the sgd optimizer does not use it "
                      "(it applies to momentum, nag)")
    assert len(err) == 2 and err[1].startswith("train.py: error: training diverged in epoch 1 (the loss became NaN")
    assert "the loss became NaN or infinite: training stopped" in proc.stdout
    assert "test_acc" not in proc.stdout  # a diverged network is not evaluated
    folder = tmp_path / "boom"
    summary = _strict_json(folder / "summary.json")
    assert summary["status"] == "diverged" and summary["diverged"] is True
    assert summary["test_acc"] is None and summary["test_loss"] is None and summary["epochs_run"] == 1
    config = _strict_json(folder / "config.json")
    assert config["ignored_options"] == [err[0].removeprefix("train.py: note: ")]
    with open(folder / "metrics.csv", newline="") as fh:
        rows = list(csv.reader(fh, strict=True))
    assert rows[0] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    assert len(rows) == 2 and rows[1][0] == "1"
    for cell in rows[1]:
        assert cell == "" or (cell.lower() not in ("nan", "inf", "-inf") and float(cell) == float(cell)), rows[1]
    assert rows[1][1] == ""  # the training loss of the diverged epoch: missing, not NaN


def test_a_completed_run_has_status_completed(have_data, tmp_path):
    proc = run(["--subset", "200", "-e", "1", "-nhl", "1", "-sz", "8", "-b", "64", "--run_dir", str(tmp_path),
                "--run_name", "ok", "--wandb", "off"])
    assert proc.returncode == 0, proc.stderr
    summary = _strict_json(tmp_path / "ok" / "summary.json")
    assert summary["status"] == "completed" and 0.0 <= summary["test_acc"] <= 1.0
    assert _strict_json(tmp_path / "ok" / "config.json")["ignored_options"] == []


def test_python_m_course_utils_cli_is_train_py(tmp_path):
    """Colab has the package, not train.py: the module runs the same commands."""
    env = dict(os.environ, COURSE_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "course_utils.cli", "-e", "0"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "train.py: error: argument -e/--epochs: must be a positive integer" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "course_utils.cli", "sweep", "--help"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and "--workers" in proc.stdout
