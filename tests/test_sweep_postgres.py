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
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "examples" / "postgres_sweep.py"


def test_two_workers_share_one_study_on_postgresql(tmp_path):
    why = load_script(TOOL).missing_requirements()
    if why:
        pytest.skip(f"no PostgreSQL here: {why}")
    from course_utils import data

    try:
        data.load("fashion-mnist", download=False, progress=False)
    except data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST not found (set COURSE_DATA to the mirror, e.g. ../shared/data)")
    summary_file = tmp_path / "summary.json"
    proc = subprocess.run([sys.executable, str(TOOL), "--trials", "6", "--subset", "300", "--space", "epochs=1",
                           "--heartbeat", "1", "--report_dir", str(tmp_path / "report"), "--summary",
                           str(summary_file), "--max_seconds", "400"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=dict(os.environ, COURSE_OFFLINE="1"))
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
    assert not list(Path("/tmp").glob("pg-sweep-*/data/postmaster.pid"))  # no server left running


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
