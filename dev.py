#!/usr/bin/env python3
"""The book's task runner: standard library only until it has its virtual environment, so it runs on a bare
Python 3.11. Each command is a short function here; the work is done by the module of tools/ it names.

    python3 dev.py build      the site into _build/html; first re-executes the stale notebooks (whose code, or
                              the code they run, changed: tools/staleness.py) and copies prose-only changes
    python3 dev.py test       unit tests, notebook checks and nbval over every notebook (pytest)
    python3 dev.py test --other-rounding   the same under another machine's kernels (tools/rounding.py);
                              --rounding NAME for any profile
    python3 dev.py execute    re-execute every notebook from its .py, or the ones named (tools/execute.py)
    python3 dev.py stats      rewrite book/execution-statistics.md and the intro's data column (tools/stats_page.py)
    python3 dev.py measure notebooks/NN_slug.py   run a chapter on other machines' kernels and seeds; write
                              its measured cells' tolerances (tools/measure_tolerances.py)
    python3 dev.py colab-check  every chapter in a simulated Colab runtime (tools/colab_check.py; --static: imports only)
    python3 dev.py setup      only create and fill .venv (what every other command does first)

On first use it creates a virtual environment in .venv at the repository root and
installs requirements.txt and the course_utils package into it (again whenever
requirements.txt or pyproject.toml change). Set COURSE_BOOK_NO_VENV=1 to use the
current interpreter instead (conda, Colab, a CI image that installed everything).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tools import layout  # standard library only: where the chapters and the data mirror are

ROOT = layout.ROOT
VENV = ROOT / ".venv"


# --------------------------------------------------------------------------- environment
def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _requirements_stamp() -> Path:
    """A file in .venv named by what is installed: requirements.txt and pyproject.toml's [project] and
    [build-system] (a change to the tools' settings, [tool.*], installs nothing)."""
    import json

    h = hashlib.sha256((ROOT / "requirements.txt").read_bytes())
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # Python 3.10: the whole file
        h.update((ROOT / "pyproject.toml").read_bytes())
    else:
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        h.update(json.dumps({k: pyproject.get(k) for k in ("project", "build-system")}, sort_keys=True).encode())
    return VENV / f".installed-{h.hexdigest()[:16]}"


def ensure_environment() -> None:
    """Re-run this script inside .venv, creating and filling it first when needed."""
    if os.environ.get("COURSE_BOOK_NO_VENV") == "1":
        return
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = _venv_python()
    if not py.exists():
        print(f"[dev] creating a virtual environment in {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp = _requirements_stamp()
    if not stamp.exists():
        print("[dev] installing requirements.txt and course_utils into .venv (first use only)", flush=True)
        _install(py, ["-r", str(ROOT / "requirements.txt")])
        _install(py, ["--no-deps", "-e", str(ROOT)])
        for old in VENV.glob(".installed-*"):
            old.unlink()
        stamp.touch()
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def _cache_bytecode() -> None:
    """Keep the bytecode that Python compiles, for this command and every process it starts.

    .venv is installed without compiling its 13,800 modules (40 s of uv's 49 s here); a command compiles
    the modules it imports as it imports them (about 5,400 after `.ci/run`, the standard library's
    included), and later imports read them (``import torch``: 2 s instead of 4). Where
    PYTHONDONTWRITEBYTECODE forbids writing next to the sources, the cache goes to .venv/pycache
    (PYTHONPYCACHEPREFIX; a prefix the caller set is kept): nothing is written in the repository or
    outside .venv. With COURSE_BOOK_NO_VENV=1 the caller's settings stand.
    """
    if os.environ.get("COURSE_BOOK_NO_VENV") == "1" or not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    prefix = os.environ.get("PYTHONPYCACHEPREFIX") or str(VENV / "pycache")
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    sys.dont_write_bytecode, sys.pycache_prefix = False, prefix


# uv installs requirements.txt in about 10 s where pip takes 55 s (2 cores, empty caches); where uv cannot
# be installed or fails, pip does the work, so uv is never required. Neither compiles to bytecode: Python
# compiles what a command imports as it imports it (_cache_bytecode).
UV = "uv==0.13.9"
_UV_OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
               "constraint": "--constraint", "trusted-host": "--allow-insecure-host"}


def _pip_settings(py: Path) -> tuple[list[str], dict[str, str]]:
    """pip's own configuration (its config files and PIP_* variables, as ``pip config list`` shows them) as
    uv options and environment: uv reads neither, and must look where pip looks."""
    import ast

    listed = subprocess.run([str(py), "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=False).stdout
    rank = {"global": 0, "install": 1, ":env:": 2}  # pip: [install] over [global], PIP_* variables over both
    chosen: dict[str, tuple[int, str]] = {}
    for line in listed.splitlines():
        name, sep, value = line.partition("=")
        section, _, key = name.rpartition(".")
        if not sep or section not in rank:
            continue
        try:
            value = str(ast.literal_eval(value))
        except (ValueError, SyntaxError):
            continue
        if key not in chosen or rank[section] >= chosen[key][0]:
            chosen[key] = (rank[section], value)
    options = []
    for key, flag in _UV_OPTIONS.items():
        for item in chosen.get(key, (0, ""))[1].split():
            options += [flag, item]
    if chosen.get("no-index", (0, ""))[1].lower() in {"1", "true", "yes", "on"}:
        options.append("--no-index")
    env = dict(os.environ)
    if "cert" in chosen:
        env.setdefault("SSL_CERT_FILE", chosen["cert"][1])
    return options, env


def _install(py: Path, args: list[str]) -> None:
    """``pip install args`` into .venv: with uv where it can be had, else (or where uv fails) with pip."""
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile"]
    if subprocess.run([*pip, UV], capture_output=True, check=False).returncode == 0:
        options, env = _pip_settings(py)
        # pip's semantics: the best version from every index, not the first index that has the project
        uv = [str(py), "-m", "uv", "pip", "install", "--quiet", "--python", str(py),
              "--index-strategy", "unsafe-best-match", *options]
        if subprocess.run([*uv, *args], env=env, check=False).returncode == 0:
            return
        print("[dev] uv could not install it; pip will", flush=True)
    subprocess.run([*pip, *args], check=True)


# --------------------------------------------------------------------------- commands
# Each command imports its tool after ensure_environment(): the tools need the packages of .venv.
def _targets(args: list[str]) -> list[Path] | None:
    """The notebooks named in ``args`` (their .py sources), or every chapter; None (and a message) if one is missing."""
    targets = [Path(a).resolve().with_suffix(".py") for a in args] or layout.chapter_sources()
    missing = [t for t in targets if not t.exists()]
    if missing:
        print("[dev] no such notebook source: " + ", ".join(str(m) for m in missing), file=sys.stderr)
        return None
    return targets


def cmd_execute(args: list[str]) -> int:
    from tools import execute, stats_page

    targets = _targets(args)
    if targets is None:
        return 2
    failed = [t.name for t in targets if execute.execute(t)["status"] != "ok"]
    stats_page.write_stats()
    if failed:
        print("[dev] failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


def cmd_build(args: list[str]) -> int:
    from tools import execute, staleness

    stale = []
    for py in layout.chapter_sources():
        reason = staleness.stale_reason(py)
        if reason:
            print(f"[dev] {py.name}: stale ({reason})", flush=True)
            stale.append(py)
        elif execute.sync_prose(py):
            print(f"[dev] {py.name}: prose or comments changed, outputs kept", flush=True)
    if stale:
        print("[dev] re-executing: " + ", ".join(p.name for p in stale), flush=True)
        if cmd_execute([str(p) for p in stale]) != 0:
            return 1
    # jupyter-book exposes no `python -m jupyter_book` entry point in every release: use its script.
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb)] if jb.exists() else [sys.executable, "-m", "jupyter_book"]
    return subprocess.run([*cmd, "build", str(ROOT), "-W", "-n", "--keep-going", *args], cwd=ROOT).returncode


def _rounding_option(args: list[str]) -> tuple[str | None, list[str]]:
    """Take ``--other-rounding`` or ``--rounding NAME`` out of ``args``: (profile name or None, the rest)."""
    from tools import rounding

    rest, profile = [], None
    it = iter(args)
    for a in it:
        if a == "--other-rounding":
            profile = rounding.OTHER
        elif a == "--rounding" or a.startswith("--rounding="):
            profile = a.partition("=")[2] or next(it, "")
        else:
            rest.append(a)
    return profile, rest


def cmd_test(args: list[str]) -> int:
    """pytest as the README gives it; ``--other-rounding`` / ``--rounding NAME`` run it under a rounding
    profile (tools/rounding.py): another machine's kernels, in the tests and the notebook kernels alike."""
    from tools import rounding

    env = dict(os.environ)
    profile, args = _rounding_option(args)
    if profile is not None:
        try:
            rounding.apply(profile, env)
        except ValueError as exc:
            print(f"[dev] {exc}", file=sys.stderr)
            return 2
        print(f"[dev] rounding profile {rounding.describe(profile)}", flush=True)
    layout.notebook_environment(env)
    # Two workers for the two cores; --dist loadfile keeps each notebook's cells on one worker, and
    # --no-loadscope-reorder hands out the files in conftest.py's order (the longest first) instead of
    # xdist's (the most items first, which left the long sweep tests for the end)
    workers = os.environ.get("COURSE_TEST_WORKERS", "2")
    # each worker's share of the cores, for its tests and the notebook kernels they start (chapter 4.3
    # took 51 s instead of 26 s when its two threads waited on a core that the other worker held)
    layout.share_cores(env, int(workers) if workers.isdigit() else 1)
    # nbval reads a cell's messages only after the cell has finished: a long cell's progress bar, redrawn
    # ten times a second, filled the kernel's message queue until the last message was dropped and nbval
    # gave up on the cell ("Timeout of 5 seconds exceeded waiting for output"). One redraw a second.
    env.setdefault("TQDM_MININTERVAL", "1")
    cmd = [sys.executable, "-m", "pytest", "-n", workers, "--dist", "loadfile", "--no-loadscope-reorder", *args]
    print("[dev] " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def cmd_measure(args: list[str]) -> int:
    """Measure how far the measured cells move on other machines and seeds; write tolerances (tools/measure_tolerances.py)."""
    from tools import measure_tolerances, stats_page

    status = measure_tolerances.main(args)
    if status == 0 and "--check" not in args and not {"-h", "--help"} & set(args):
        stats_page.write_stats()
    return status


def cmd_stats(args: list[str]) -> int:
    from tools import stats_page

    stats_page.write_stats()
    print(stats_page.stats_table())
    return 0


def cmd_colab_check(args: list[str]) -> int:
    """The simulated Colab run (tools/colab_check.py); `--static` for the import check alone."""
    return subprocess.run([sys.executable, str(ROOT / "tools" / "colab_check.py"), *args], cwd=ROOT).returncode


def cmd_setup(args: list[str]) -> int:
    """Nothing beyond ensure_environment(): .venv exists and holds requirements.txt and course_utils."""
    print(f"[dev] {sys.prefix} holds requirements.txt and course_utils", flush=True)
    return 0


COMMANDS = {"build": cmd_build, "test": cmd_test, "execute": cmd_execute, "measure": cmd_measure, "stats": cmd_stats,
            "colab-check": cmd_colab_check, "setup": cmd_setup}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        print(f"unknown or missing command; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    ensure_environment()
    _cache_bytecode()
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
