"""The distributed sweep against a real PostgreSQL server (issue 16): ``examples/postgres_sweep.py`` in a
small configuration. It starts a throw-away server on a Unix socket in a temporary folder (no TCP
port), runs two ``train.py sweep`` commands against one study, reads the trials back and stops the
server. Skipped, with the reason, where the PostgreSQL server binaries (Debian's ``postgresql``), the
``psycopg2`` driver or the Fashion-MNIST files are missing; this test never installs anything.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import load_script

pytestmark = pytest.mark.processes  # it waits on processes: a parallel run starts it beside a notebook (conftest.py)

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "examples" / "postgres_sweep.py"


@pytest.fixture
def server_tmp():
    """The tool's own TMPDIR, so that its server folder is this test's alone (and the postgres user, which runs
    the server when the tests run as root, can enter it: pytest's tmp_path is private to its user)."""
    why = load_script(TOOL).missing_requirements()
    if why:
        pytest.skip(f"no PostgreSQL here: {why}")
    from course_utils import data

    try:
        data.load("fashion-mnist", download=False, progress=False)
    except data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST not found (set COURSE_DATA to the mirror, e.g. ../shared/data)")
    folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_stopped_run_stops_its_workers_and_server_and_deletes_the_folder(server_tmp, tmp_path):
    """SIGTERM (a CI job cancelled, a kill from outside) in the middle of the sweep leaves nothing running."""
    proc = subprocess.Popen([sys.executable, str(TOOL), "--trials", "50", "--subset", "300", "--space", "epochs=1",
                             "--report_dir", str(tmp_path / "report")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=dict(os.environ, COURSE_OFFLINE="1", TMPDIR=str(server_tmp)))
    deadline = time.time() + 120
    while not list(server_tmp.glob("pg-sweep-*/data/postmaster.pid")):  # the server is up
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(3)  # the two sweep commands are starting or running
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    assert "postgres_sweep: stopped by signal SIGTERM" in err
    assert list(server_tmp.iterdir()) == []  # the server stopped (its postmaster.pid gone) and its folder deleted
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(server_tmp) not in ps  # no worker and no server left


def test_two_workers_share_one_study_on_postgresql(server_tmp, tmp_path):
    summary_file = tmp_path / "summary.json"
    proc = subprocess.run([sys.executable, str(TOOL), "--trials", "6", "--subset", "300", "--space", "epochs=1",
                           "--heartbeat", "1", "--report_dir", str(tmp_path / "report"), "--summary",
                           str(summary_file), "--max_seconds", "400"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(os.environ, COURSE_OFFLINE="1", TMPDIR=str(server_tmp)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    s = json.loads(summary_file.read_text())
    assert s["exit_codes"] == [0, 0] and s["report_exit_code"] == 0
    assert s["trials"] == 6 and s["numbers"] == list(range(6)) and s["numbers_unique"]
    assert s["states"]["running"] == 0 and sum(s["states"].values()) == 6
    assert s["connected"] == [True, True]  # both commands joined the study (which ran how many trials is timing)
    assert sum(s["trials_by_machine"]) == 6 and len(s["workers"]) == sum(n > 0 for n in s["trials_by_machine"])
    if s["states"]["complete"]:
        assert s["report_best"]["trial"] == s["best_trial"] and s["report_best"]["params"] == s["best_params"]
    assert (tmp_path / "report" / "accuracy_by_trial.png").is_file()
    assert list(server_tmp.iterdir()) == []  # the server stopped and its folder deleted


def test_storage_url_password_is_never_printed():
    from course_utils import sweep_storage

    url = "postgresql://alice:s3cret@db.example:5432/optuna"
    assert "s3cret" not in sweep_storage.redact_url(url) and "alice" in sweep_storage.redact_url(url)


def test_a_postgresql_url_gets_the_installed_driver():
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the book installs psycopg2-binary."""
    from course_utils import sweep_storage

    url = sweep_storage.storage_url("postgresql://alice:pw@db.example:5432/optuna")
    if importlib.util.find_spec("psycopg2") is not None:
        assert url == "postgresql+psycopg2://alice:pw@db.example:5432/optuna"
    elif importlib.util.find_spec("psycopg") is not None:
        assert url == "postgresql+psycopg://alice:pw@db.example:5432/optuna"
    else:
        assert url == "postgresql://alice:pw@db.example:5432/optuna"
    assert sweep_storage.storage_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"  # an explicit driver stays
