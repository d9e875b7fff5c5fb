"""Tests of train.py, chapter 5's command-line trainer, run as a subprocess on small subsets.

The training runs need the Fashion-MNIST / MNIST files (``COURSE_DATA`` mirror or the user cache);
without them those tests are skipped with the reason. No test touches the network or a W&B account:
W&B is exercised with a stub ``wandb`` package put on ``PYTHONPATH``.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "train.py"
SOURCE_FLAGS = ["-wp", "--wandb_project", "-we", "--wandb_entity", "-d", "--dataset", "-e", "--epochs", "-b", "--batch_size",
                "-l", "--loss", "-o", "--optimizer", "-lr", "--learning_rate", "-m", "--momentum", "-beta", "--beta",
                "-beta1", "--beta1", "-beta2", "--beta2", "-eps", "--epsilon", "-w_d", "--weight_decay", "-w_i",
                "--weight_init", "-nhl", "--num_layers", "-sz", "--hidden_size", "-a", "--activation"]
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)  train_loss \d+\.\d{4}  train_acc (\d\.\d{4})  val_loss \d+\.\d{4}  "
                        r"val_acc (\d\.\d{4})  \(\d+\.\d s\)$")
TEST_LINE = re.compile(r"^test_loss \d+\.\d{4}  test_acc (\d\.\d{4})$")


def load_train_module():
    spec = importlib.util.spec_from_file_location("train_cli", TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args, env_extra=None, timeout=240):
    env = dict(os.environ, COURSE_OFFLINE="1", PYTHONHASHSEED="0")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def have_data():
    from course_utils import data

    missing = []
    for name in ("fashion-mnist", "mnist"):
        try:
            data.load(name, download=False, progress=False)
        except data.DatasetNotFoundError:
            missing.append(name)
    if missing:
        pytest.skip(f"dataset(s) {', '.join(missing)} not found (set COURSE_DATA to the mirror, e.g. ../shared/data); "
                    "train.py needs real data to train")


# --------------------------------------------------------------------------- arguments
def test_source_arguments_and_defaults_are_the_sweeps_best():
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
    assert "best configuration of chapter 5's sweep" in out
    assert "the sweep's choice; source default 4" in out  # batch size
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


STUB = '''
import json, os
LOG = os.environ["STUB_WANDB_LOG"]
def _write(kind, payload):
    with open(LOG, "a") as fh:
        fh.write(json.dumps([kind, payload]) + "\\n")
class _Run:
    def __init__(self):
        self.summary = {}
    def log(self, metrics, step=None):
        _write("log", {"step": step, **metrics})
    def finish(self):
        _write("finish", dict(self.summary))
def init(**kwargs):
    if os.environ.get("STUB_WANDB_FAIL"):
        raise ConnectionError("no network")
    _write("init", {"project": kwargs.get("project"), "entity": kwargs.get("entity")})
    return _Run()
'''


@pytest.mark.parametrize("fail", [False, True])
def test_wandb_is_used_when_installed_and_configured_and_never_required(have_data, tmp_path, fail):
    stub = tmp_path / "stub"
    (stub / "wandb").mkdir(parents=True)
    (stub / "wandb" / "__init__.py").write_text(STUB)
    log = tmp_path / "wandb_calls.jsonl"
    env = {"PYTHONPATH": str(stub), "WANDB_API_KEY": "dummy", "STUB_WANDB_LOG": str(log)}
    if fail:
        env["STUB_WANDB_FAIL"] = "1"
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
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert calls[0] == ["init", {"project": "proj", "entity": "me"}]
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
