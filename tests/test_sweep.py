"""Tests of the command-line sweep (``train.py sweep``, ``train.py sweep-report``) and of the storage,
lock and worker loop of course_utils.sweeps that it is built on (issue 16).

The unit tests use toy objectives and need no data. The sweep runs train the real network on
tiny subsets (a few hundred to 1,000 images, 1-3 epochs) and need the Fashion-MNIST files
(``COURSE_DATA`` mirror or the user cache); without them they are skipped with the reason.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from course_utils import cli, sweep_report, sweep_storage, sweeps  # noqa: E402
from course_utils.cli import arguments, workers  # noqa: E402
from helpers import ROOT, TRAIN, fake_wandb, require_datasets, train_env, wandb_calls  # noqa: E402
from helpers import popen_train as popen  # noqa: E402
from helpers import run_train as run  # noqa: E402

pytestmark = pytest.mark.processes  # it waits on processes: a parallel run starts it beside a notebook (conftest.py)

TRIAL_LINE = re.compile(r"trial (\d+) (complete|pruned|failed)\b(?:: val_acc (\d\.\d{4}))?.*\| (.*)$")


def load(folder: Path, study: str):
    return optuna.load_study(study_name=study, storage=sweep_storage.open_storage(folder / study / "study.db",
                                                                           heartbeat_interval=None))


def recorded(stdout: str) -> dict[int, tuple[str, float | None, str]]:
    """trial number -> (state, printed val_acc, printed parameters) from the workers' lines."""
    out = {}
    for line in stdout.splitlines():
        m = TRIAL_LINE.search(line)
        if m:
            number = int(m.group(1))
            assert number not in out, f"trial {number} reported twice"
            out[number] = (m.group(2), float(m.group(3)) if m.group(3) else None, m.group(4))
    return out


@pytest.fixture(scope="module")
def have_data():
    require_datasets("fashion-mnist")


# --------------------------------------------------------------------------- the space and small helpers
def test_space_is_the_sources_with_he_and_one_definition():
    space = sweeps.SOURCE_SPACE
    assert space["weight_init"] == ["random", "xavier", "he"]
    assert sweeps.space_size(space) == 2 * 3 * 3 * 3 * 2 * 6 * 3 * 3 * 3 == 17_496
    assert list(sweeps.TRAIN_FLAGS) == list(space)
    # the CLI's sweep uses this very dict (no copy of the space in course_utils.cli)
    assert "sweeps.SOURCE_SPACE" in Path(arguments.__file__).read_text()
    assert sweeps.parse_space_override([]) == space and sweeps.parse_space_override([]) is not space


def test_space_overrides_are_parsed_and_checked():
    space = sweeps.parse_space_override(["epochs=1", "optimizer=Adam,nadam", "learning_rate=0.01", "num_layers=0,2"])
    assert space["epochs"] == [1] and space["optimizer"] == ["adam", "nadam"]
    assert space["learning_rate"] == [0.01] and space["num_layers"] == [0, 2]
    assert space["batch_size"] == sweeps.SOURCE_SPACE["batch_size"]
    for bad, message in [("epochs", "not NAME=VALUE"), ("epochs=", "not NAME=VALUE"), ("depth=1", "unknown parameter"),
                         ("weight_init=orthogonal", "is not one of"), ("hidden_size=0", "must be >= 1"),
                         ("learning_rate=0", "must be > 0"), ("weight_decay=inf", "must be finite"),
                         ("epochs=1.5", "needs an integer")]:
        with pytest.raises(ValueError, match=message):
            sweeps.parse_space_override([bad])


def test_train_command_trains_the_configuration_it_names():
    params = {"epochs": 5, "num_layers": 3, "hidden_size": 64, "weight_decay": 0.0005, "learning_rate": 1e-4,
              "optimizer": "nesterov", "batch_size": 32, "weight_init": "he", "activation": "relu"}
    command = sweeps.train_command(params, dataset="mnist", schedule="cosine")
    assert command == ("python train.py -d mnist -e 5 -nhl 3 -sz 64 -w_d 0.0005 -lr 0.0001 -o nag -b 32 -w_i He "
                       "-a ReLU --lr_schedule cosine")
    args = cli.build_parser().parse_args(command.split()[2:])
    assert (args.epochs, args.num_layers, args.hidden_size, args.weight_decay, args.learning_rate, args.optimizer,
            args.batch_size, args.weight_init, args.activation, args.dataset) == \
        (5, 3, 64, 0.0005, 1e-4, "nag", 32, "He", "ReLU", "mnist")


def test_trial_seeds_are_fixed_per_trial_and_differ_between_trials():
    seeds = [sweep_storage.trial_seed(0, k) for k in range(50)]
    assert seeds == [sweep_storage.trial_seed(0, k) for k in range(50)]
    assert len(set(seeds)) == 50 and all(0 <= s < 2**32 for s in seeds)
    assert sweep_storage.trial_seed(1, 0) != sweep_storage.trial_seed(0, 0)


def _toy_trials():
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    dist = {"a": CategoricalDistribution([1, 2, 3])}
    return [
        create_trial(params={"a": 1}, distributions=dist, value=0.50, intermediate_values={1: 0.4, 2: 0.5}),
        create_trial(params={"a": 2}, distributions=dist, state=TrialState.PRUNED, intermediate_values={1: 0.30}),
        create_trial(params={"a": 3}, distributions=dist, value=0.70, intermediate_values={1: 0.6, 2: 0.7}),
        create_trial(params={"a": 1}, distributions=dist, state=TrialState.FAIL),
        create_trial(params={"a": 2}, distributions=dist, value=0.60, intermediate_values={1: 0.5, 2: 0.6}),
    ]


def test_accuracy_by_trial_plot_marks_each_state_and_the_running_best():
    import matplotlib.pyplot as plt

    study = optuna.create_study(direction="maximize")
    study.add_trials(_toy_trials())
    ax = sweeps.accuracy_by_trial_plot(study)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"completed (3)", "best so far", "pruned (1, last value)", "failed (1)"}
    np.testing.assert_array_equal(lines["completed (3)"].get_xdata(), [0, 2, 4])
    np.testing.assert_allclose(lines["completed (3)"].get_ydata(), [0.5, 0.7, 0.6])
    np.testing.assert_allclose(lines["best so far"].get_ydata(), [0.5, 0.7, 0.7, 0.7])  # running best, to the end
    np.testing.assert_array_equal(lines["pruned (1, last value)"].get_xdata(), [1])
    np.testing.assert_allclose(lines["pruned (1, last value)"].get_ydata(), [0.3])
    np.testing.assert_array_equal(lines["failed (1)"].get_xdata(), [3])
    assert ax.get_title() == "Accuracy against trial: 5 trials, best 0.700 (trial 2)"
    assert ax.get_xlabel() == "trial number" and ax.get_ylabel() == "validation accuracy"
    # the same figure from a table, with a running trial
    table = sweeps.results_table(study)
    table.loc[len(table)] = {"trial": 5, "state": "running", "a": 3, "val_acc": float("nan"), "epochs_run": 0}
    ax2 = sweeps.accuracy_by_trial_plot(table)
    assert "running (1)" in {line.get_label() for line in ax2.get_lines()}
    with pytest.raises(ValueError, match="lacks column"):
        sweeps.accuracy_by_trial_plot(table.drop(columns="state"))
    plt.close("all")


def test_write_report_reads_a_stored_study(tmp_path):
    storage = sweep_storage.open_storage(tmp_path / "s.db", heartbeat_interval=None)
    study = sweep_storage.open_study(storage, "toy", config={"space": {"a": [1, 2, 3]}})
    study.add_trials(_toy_trials())
    report = sweep_report.write_report(study, tmp_path / "report", space={"a": [1, 2, 3]}, seed=3, dataset="mnist",
                                 schedule="cosine", subset=300)
    assert report["counts"] == {"complete": 3, "pruned": 1, "fail": 1, "running": 0}
    names = {"results.csv", "results.md", "accuracy_by_trial.png", "parallel_coordinates.png", "importances.csv",
             "best.json", "report.md"}
    assert set(report["files"]) == names and report["skipped"] == {}
    for name in names:
        assert (tmp_path / "report" / name).stat().st_size > 0
    import pandas as pd

    frame = pd.read_csv(tmp_path / "report" / "results.csv")
    assert frame["trial"].tolist() == [0, 1, 2, 3, 4]
    assert frame["state"].tolist() == ["complete", "pruned", "complete", "fail", "complete"]
    best = json.loads((tmp_path / "report" / "best.json").read_text())
    assert best["trial"] == 2 and best["value"] == 0.7 and best["params"] == {"a": 3}
    assert best["train_command"] == "python train.py -d mnist --lr_schedule cosine --subset 300 --seed 3"
    assert "Best: trial 2" in (tmp_path / "report" / "report.md").read_text()
    # a study with too few trials still gets a report that says what is missing
    empty = sweep_storage.open_study(storage, "empty", config={})
    report = sweep_report.write_report(empty, tmp_path / "empty")
    assert "importances.csv" in report["skipped"] and "parallel_coordinates.png" in report["skipped"]
    assert json.loads((tmp_path / "empty" / "best.json").read_text()) is None


def test_a_restarted_study_must_have_the_same_settings(tmp_path):
    storage = sweep_storage.open_storage(tmp_path / "s.db", heartbeat_interval=None)
    sweep_storage.open_study(storage, "s", config={"subset": 300, "seed": 0})
    again = sweep_storage.open_study(storage, "s", config={"subset": 300, "seed": 0})
    assert again.study_name == "s"
    with pytest.raises(ValueError, match=r"started with other settings \(subset: stored 300, now 400\)"):
        sweep_storage.open_study(storage, "s", config={"subset": 400, "seed": 0})
    with pytest.raises(KeyError, match="no study named 'nope'.*it holds 's'"):
        sweep_storage.open_study(storage, "nope", create=False)


TOY_WORKER = textwrap.dedent("""
    import sys, time
    from course_utils import sweep_storage, sweeps
    url, n = sys.argv[1], int(sys.argv[2])
    storage = sweep_storage.open_storage(url, heartbeat_interval=1)
    study = sweep_storage.open_study(storage, "toy", config={"toy": 1})
    lock = sweep_storage.StudyLock(url, "toy")

    def objective(trial):
        p = sweeps.suggest(trial, {"a": [1, 2, 3, 4], "b": [0.1, 0.2, 0.3]})
        time.sleep(0.05)
        return p["a"] * p["b"]

    print(sweep_storage.run_worker(study, objective, n, lock=lock, seed=0, n_startup_trials=3))
""")


def test_three_processes_stop_at_exactly_the_requested_number_of_trials(tmp_path):
    """The lock around 'count, then create the next trial' makes N workers finish exactly n trials
    (optuna's MaxTrialsCallback alone overshoots by up to N - 1)."""
    url = sweep_storage.storage_url(tmp_path / "toy.db")
    sweep_storage.open_study(sweep_storage.open_storage(url, heartbeat_interval=1), "toy", config={"toy": 1})
    procs = [subprocess.Popen([sys.executable, "-c", TOY_WORKER, url, "25"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert all(out.strip() == "done" for out, _ in outs)
    trials = optuna.load_study(study_name="toy", storage=url).get_trials()
    assert sorted(t.number for t in trials) == list(range(25))
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) >= 2  # the work was shared


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_whose_worker_stopped_beating_is_failed(tmp_path):
    storage = sweep_storage.open_storage(tmp_path / "s.db", heartbeat_interval=1, grace_period=2)
    study = sweep_storage.open_study(storage, "s", config={})
    trial = study.ask()  # a worker that asked for a trial, beat once and died
    storage.record_heartbeat(trial._trial_id)
    t0 = time.monotonic()
    assert sweep_storage.settle_running_trials(study, wait=10) == []
    assert 1.5 < time.monotonic() - t0 < 9
    assert study.trials[0].state.name == "FAIL"


# --------------------------------------------------------------------------- sweeps on real data
SMALL = ["--subset", "300", "--space", "epochs=1", "--heartbeat", "1", "--grace", "2"]


def test_one_worker_repeats_a_sweep_exactly_across_a_restart(have_data, tmp_path):
    """Seeded per trial: 3 trials in one go equal 2 trials, a restart, and the third; a restart with
    other settings is refused; a time budget stops new trials."""
    a, b = tmp_path / "a", tmp_path / "b"
    first = run(["sweep", "--run_dir", str(a), "--study", "s", "--trials", "3", *SMALL, "--no_report"])
    assert first.returncode == 0, first.stderr
    part1 = run(["sweep", "--run_dir", str(b), "--study", "s", "--trials", "2", *SMALL, "--no_report"])
    part2 = run(["sweep", "--run_dir", str(b), "--study", "s", "--trials", "3", *SMALL, "--no_report"])
    assert part1.returncode == 0 and part2.returncode == 0, part1.stderr + part2.stderr
    assert "0 trial(s) so far" in part1.stdout and "2 trial(s) so far" in part2.stdout
    assert "running 1 more trial(s) up to 3 with 1 worker(s)" in part2.stdout
    sa, sb = load(a, "s"), load(b, "s")
    assert [(t.number, t.params, t.state, t.value) for t in sa.trials] == \
        [(t.number, t.params, t.state, t.value) for t in sb.trials]
    assert len(sa.trials) == 3
    assert recorded(first.stdout) == {**recorded(part1.stdout), **recorded(part2.stdout)}

    # train.py repeats the best trial exactly from the command the sweep printed
    command = re.search(r"^train it: python train.py (.*)$", first.stdout, flags=re.M).group(1).split()
    assert command[-2:] == ["--subset", "300"]
    again = run([*command, "--run_dir", str(tmp_path / "t"), "--run_name", "best", "--wandb", "off"])
    assert again.returncode == 0, again.stderr
    last_epoch = [ln for ln in again.stdout.splitlines() if ln.startswith("epoch ")][-1]
    assert f"val_acc {sa.best_value:.4f}" in last_epoch

    other = run(["sweep", "--run_dir", str(b), "--study", "s", "--trials", "4", "--subset", "400", "--space",
                 "epochs=1", "--heartbeat", "1", "--grace", "2"])
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert "argument --study: study 's' was started with other settings (subset: stored 300, now 400)" in other.stderr
    done = run(["sweep", "--run_dir", str(b), "--study", "s", "--trials", "3", *SMALL, "--no_report"])
    assert done.returncode == 0 and "nothing to run" in done.stdout
    budget = run(["sweep", "--run_dir", str(b), "--study", "s", "--trials", "10", *SMALL, "--no_report",
                  "--timeout", "0.001"])
    assert budget.returncode == 0, budget.stderr
    assert "the time budget (0.001 s) ran out: start the same command again to continue" in budget.stdout
    assert len(load(b, "s").trials) == 3


def test_killed_worker_loses_one_trial_and_the_restarted_command_completes_the_study(have_data, tmp_path):
    """Issue 16's acceptance test: 2 worker processes on one local study, one killed (SIGKILL) in the
    middle of a trial, the command started again: no duplicated trial number, nothing left
    running, exactly the requested number of trials, and the best configuration read back is the
    best the workers recorded."""
    n, epochs = 4, 4  # 4 trials: one killed, the others shared by 2 live workers (issue 20: 6 repeated that)
    cmd = ["sweep", "--run_dir", str(tmp_path), "--study", "kill", "--trials", str(n), "--subset", "2000",
           "--space", f"epochs={epochs}", "--space", "batch_size=16", "--heartbeat", "1", "--grace", "2",
           "--workers", "2", "--no_report", "--pruner_startup", "100"]
    first = popen(cmd)
    url = sweep_storage.storage_url(tmp_path / "kill" / "study.db")
    victim, deadline, storage = None, time.time() + 180, None
    while victim is None:
        assert time.time() < deadline, "no worker started a trial in time"
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
        if storage is None:
            if not (tmp_path / "kill" / "study.db").is_file():
                continue
            with sweep_storage.StudyLock(url, "kill"):  # as the workers do: never while one creates the tables
                storage = sweep_storage.open_storage(url, heartbeat_interval=None)
        try:
            running = optuna.load_study(study_name="kill", storage=storage).get_trials(
                states=(optuna.trial.TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        for t in running:  # a trial of a spawned worker that has finished its first epoch but not its second
            worker = t.user_attrs.get("worker")
            if worker and int(worker.rsplit(":", 1)[1]) != first.pid and max(t.intermediate_values, default=0) == 1:
                victim = (t.number, int(worker.rsplit(":", 1)[1]))
                break
    number, pid = victim
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    killed = optuna.load_study(study_name="kill", storage=storage).trials[number]
    assert killed.state.name == "RUNNING" and max(killed.intermediate_values) < epochs  # killed mid-trial

    second = popen(cmd)  # the same command again
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    for err in (err1, err2):
        assert "Traceback" not in err
    assert first.returncode == 1 and "was killed (SIGKILL)" in err1, err1
    assert second.returncode == 0, err2

    trials = optuna.load_study(study_name="kill", storage=url).get_trials()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(n))  # exactly n, none duplicated
    states = {t.number: t.state.name for t in trials}
    assert "RUNNING" not in states.values()
    assert states[number] == "FAIL"  # the killed trial: failed, by its missing heartbeat
    assert sum(s in ("COMPLETE", "PRUNED", "FAIL") for s in states.values()) == n

    lines = {**recorded(out1), **recorded(out2)}
    assert set(recorded(out1)).isdisjoint(recorded(out2))
    assert number not in lines and set(lines) == set(range(n)) - {number}
    for t in trials:
        if t.state.name == "COMPLETE":
            assert lines[t.number][0] == "complete" and lines[t.number][1] == round(t.value, 4)
    study = optuna.load_study(study_name="kill", storage=url)
    best_printed = max(v for s, v, _ in lines.values() if s == "complete")
    assert round(study.best_value, 4) == best_printed
    assert workers._fmt_params(study.best_params) in {p for s, v, p in lines.values() if v == best_printed}
    # (the report of a study with a failed trial: test_write_report_reads_a_stored_study; the report
    # command: test_two_workers_then_the_report_command_also_logs_to_wandb)


def test_two_workers_then_the_report_command_also_logs_to_wandb(have_data, tmp_path):
    proc = run(["sweep", "--run_dir", str(tmp_path), "--study", "two", "--trials", "4", "--workers", "2", *SMALL,
                "--wandb", "off"])
    assert proc.returncode == 0, proc.stderr
    assert "running 4 more trial(s) up to 4 with 2 worker(s)" in proc.stdout
    workers = set(re.findall(r"^\[worker (\d)\] trial \d+ ", proc.stdout, flags=re.M))
    assert workers and workers <= {"1", "2"}  # (a worker that started late may have found nothing left to do)
    assert re.search(r"since this command started: 4 trial\(s\) finished in the study in .* trials/min", proc.stdout)
    report_dir = tmp_path / "two" / "report"
    assert (report_dir / "accuracy_by_trial.png").is_file() and (report_dir / "results.md").is_file()
    study = load(tmp_path, "two")
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]

    wandb_env, log = fake_wandb(tmp_path)
    out = tmp_path / "elsewhere"
    proc = subprocess.run([sys.executable, str(TRAIN), "sweep-report", "--run_dir", str(tmp_path), "--study", "two",
                           "--out", str(out), "--wandb", "auto", "-wp", "proj"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=train_env(**wandb_env))
    assert proc.returncode == 0, proc.stderr
    assert "report W&B: logged to Weights & Biases" in proc.stdout
    calls = wandb_calls(log)
    assert calls[0] == ["init", {"project": "proj", "entity": "myname", "job_type": "sweep-report"}]
    assert calls[1][0] == "log" and calls[1][1]["results"] == 4
    assert calls[1][1]["accuracy_by_trial"] == "accuracy_by_trial.png"
    assert calls[-1][0] == "finish" and calls[-1][1]["best_trial"] == study.best_trial.number
    assert json.loads((out / "best.json").read_text())["params"] == study.best_params
