"""dev.py: its installer (uv must look where pip looks: uv reads neither pip's config files nor PIP_* variables),
where the bytecode of .venv is kept, and the environment of the test run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dev


def pairs(options: list[str]) -> list[tuple[str, str]]:
    """('--flag', value) pairs of an option list (``--no-index`` stands alone)."""
    out, it = [], iter(options)
    for flag in it:
        out.append((flag, "") if flag == "--no-index" else (flag, next(it)))
    return out


def test_pip_variables_become_uv_options(monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no config file: the variables alone
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///a/simple file:///b/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/wheels")
    monkeypatch.setenv("PIP_CONSTRAINT", "/c.txt")
    monkeypatch.setenv("PIP_TRUSTED_HOST", "mirror.example")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_CERT", "/certs/ca.pem")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    options, env = dev._pip_settings(Path(sys.executable))
    assert pairs(options) == [("--index-url", "https://mirror.example/simple"),
                              ("--extra-index-url", "file:///a/simple"), ("--extra-index-url", "file:///b/simple"),
                              ("--find-links", "/wheels"), ("--constraint", "/c.txt"),
                              ("--allow-insecure-host", "mirror.example"), ("--no-index", "")]
    assert env["SSL_CERT_FILE"] == "/certs/ca.pem"


def test_install_section_overrides_global_and_variables_override_both(monkeypatch, tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nfind-links = /global\nextra-index-url = file:///g/simple\n"
                    "[install]\nfind-links = /install\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    options = pairs(dev._pip_settings(Path(sys.executable))[0])
    assert ("--find-links", "/install") in options and ("--find-links", "/global") not in options
    assert ("--extra-index-url", "file:///g/simple") in options and ("--no-index", "") not in options
    monkeypatch.setenv("PIP_FIND_LINKS", "/variable")
    options = pairs(dev._pip_settings(Path(sys.executable))[0])
    assert ("--find-links", "/variable") in options and ("--find-links", "/install") not in options


def test_pip_does_the_work_where_uv_cannot_be_had_or_fails(monkeypatch, tmp_path):
    calls = []

    def fake_run(cmd, **kwargs):  # uv's own install fails, or uv's run of the install
        calls.append(cmd)
        fails = (case == "uv-missing" and cmd[-1] == dev.UV) or (case == "uv-fails" and cmd[1:3] == ["-m", "uv"])
        return subprocess.CompletedProcess(cmd, 1 if fails else 0, stdout="")

    monkeypatch.setattr(dev.subprocess, "run", fake_run)
    py = tmp_path / "python"
    for case in ("uv-missing", "uv-fails"):
        calls.clear()
        dev._install(py, ["-r", "requirements.txt"])
        assert calls[-1][:4] == [str(py), "-m", "pip", "install"] and calls[-1][-2:] == ["-r", "requirements.txt"]
        assert any(c[:4] == [str(py), "-m", "uv", "pip"] for c in calls) == (case == "uv-fails")
        # neither compiles all of .venv: the commands compile what they import (dev._cache_bytecode)
        assert "--no-compile" in calls[-1] and not any("--compile-bytecode" in c for c in calls)


def test_bytecode_is_kept_in_the_venv_where_the_caller_forbids_writing_it_next_to_the_sources(
        monkeypatch, tmp_path):
    monkeypatch.setattr(dev, "VENV", tmp_path / "venv")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    monkeypatch.delenv("COURSE_BOOK_NO_VENV", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    dev._cache_bytecode()
    prefix = str(tmp_path / "venv" / "pycache")
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ and os.environ["PYTHONPYCACHEPREFIX"] == prefix
    assert sys.dont_write_bytecode is False and sys.pycache_prefix == prefix
    # a process it starts writes the bytecode of what it imports there, and nothing beside the source
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text("X = 1\n")
    subprocess.run([sys.executable, "-c", "import mod"], cwd=tmp_path / "src", check=True)
    assert [p.name for p in (tmp_path / "venv" / "pycache").rglob("mod.*.pyc")] == \
        [f"mod.{sys.implementation.cache_tag}.pyc"]
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["mod.py"]

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # a prefix of the caller's own is kept
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "mine"))
    dev._cache_bytecode()
    assert os.environ["PYTHONPYCACHEPREFIX"] == str(tmp_path / "mine") == sys.pycache_prefix
    for setting in ({"COURSE_BOOK_NO_VENV": "1", "PYTHONDONTWRITEBYTECODE": "1"}, {}):  # nothing to change
        monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
        for name, value in setting.items():
            monkeypatch.setenv(name, value)
        before = dict(os.environ)
        dev._cache_bytecode()
        assert dict(os.environ) == before


def test_the_test_run_gives_each_worker_its_share_of_the_cores_and_a_slow_progress_bar(monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen.update(cmd=cmd, env=kwargs["env"])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(dev.subprocess, "run", fake_run)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TQDM_MININTERVAL",
                 "COURSE_TEST_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert dev.cmd_test(["-k", "x"]) == 0
    env = seen["env"]
    assert seen["cmd"][-2:] == ["-k", "x"] and seen["cmd"][seen["cmd"].index("-n") + 1] == "2"
    assert "--no-loadscope-reorder" in seen["cmd"]  # conftest.py's order of the files, not xdist's
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"  # 4 cores, 2 workers
    assert env["TQDM_MININTERVAL"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the caller's own setting wins
    monkeypatch.setenv("COURSE_TEST_WORKERS", "4")
    dev.cmd_test([])
    assert seen["env"]["OMP_NUM_THREADS"] == "3" and seen["env"]["MKL_NUM_THREADS"] == "1"  # min(3, 4 cores) // 4


def test_a_parallel_run_starts_the_longest_files_first():
    """conftest.file_order: the modules that wait on processes alternate with the notebooks by their
    recorded wall time (longest first), then come the other modules as collected."""
    from types import SimpleNamespace

    import conftest
    from tools import layout

    def item(path, processes=False):
        marker = object() if processes else None
        return SimpleNamespace(path=path, get_closest_marker=lambda name: marker if name == "processes" else None)

    notebooks = [p.with_suffix(".ipynb") for p in layout.chapter_sources()]
    recorded = {p: conftest._recorded_wall_seconds(p) for p in notebooks}
    assert all(s > 0 for s in recorded.values()), recorded  # every chapter has its execution record
    tests = Path(__file__).parent
    items = [item(tests / "test_a.py"), *[item(p) for p in notebooks], item(tests / "test_b.py", processes=True),
             item(tests / "test_a.py"), item(tests / "test_c.py"), item(tests / "test_d.py", processes=True)]
    order = conftest.file_order(items)
    longest = sorted(notebooks, key=lambda p: -recorded[p])
    assert order[:4] == [tests / "test_b.py", longest[0], tests / "test_d.py", longest[1]]
    assert order[4:-2] == longest[2:] and order[-2:] == [tests / "test_a.py", tests / "test_c.py"]
    assert conftest._recorded_wall_seconds(tests / "no-such.ipynb") == 0.0
    # the longest modules of the suite carry the marker
    for name in ("test_sweep", "test_sweep_postgres", "test_models_concurrency"):
        assert "pytestmark = pytest.mark.processes" in (tests / f"{name}.py").read_text()


def test_the_execution_record_is_read_from_the_notebooks_json(tmp_path):
    """layout.execution_record, which the test order, the statistics page and the staleness check read:
    the stored record, {} without one, None without the file, and a clear error for a file that is not
    a notebook."""
    import json

    import pytest

    from tools import layout, staleness, stats_page

    stem = layout.chapter_sources()[0].stem
    record = layout.execution_record(layout.NOTEBOOKS / f"{stem}.ipynb")
    assert record["status"] == "ok" and record["wall_seconds"] > 0
    assert stats_page._record(stem) == record
    assert layout.execution_record(tmp_path / "absent.ipynb") is None
    bare = tmp_path / "bare.ipynb"
    bare.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert layout.execution_record(bare) == {}
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    with pytest.raises(ValueError, match="is not a notebook.*dev.py execute"):
        layout.execution_record(broken)
    import conftest

    assert conftest._recorded_wall_seconds(broken) == 0.0  # the order falls back, the run goes on
    assert staleness.stale_reason(tmp_path / "absent.py") == "absent.ipynb does not exist"
