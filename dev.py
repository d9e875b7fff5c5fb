#!/usr/bin/env python3
"""The book's task runner: one file, standard library only, so it runs on a bare Python 3.11.

    python3 dev.py build      the site into _build/html (executes only notebooks whose code, or course_utils, changed)
    python3 dev.py test       unit tests, notebook pairing checks and nbval over every notebook
    python3 dev.py execute    re-execute every notebook from its .py (or only the ones named)
    python3 dev.py stats      rewrite book/execution-statistics.md from the notebooks' metadata
    python3 dev.py colab-check  every chapter in a simulated Colab runtime (tools/colab_check.py; --static: imports only)
    python3 dev.py measure    measure the measured cells' spread over rounding profiles and seeds; write tolerances
    python3 dev.py test --other-rounding   the tests under another machine's BLAS rounding (tools/profiles.py)

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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
NOTEBOOKS = ROOT / "notebooks"
STATS_PAGE = ROOT / "book" / "execution-statistics.md"
META_KEY = "course_book"  # notebook metadata key holding the execution record
EXEC_TIMEOUT_S = 1800  # per cell


# --------------------------------------------------------------------------- environment
def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _requirements_stamp() -> Path:
    h = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
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
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
        subprocess.run(pip + ["-q", "-r", str(ROOT / "requirements.txt")], check=True)
        subprocess.run(pip + ["-q", "--no-deps", "-e", str(ROOT)], check=True)
        for old in VENV.glob(".installed-*"):
            old.unlink()
        stamp.touch()
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


# --------------------------------------------------------------------------- notebooks
def notebook_sources() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def code_hash(nb) -> str:
    """SHA-256 over the code cells (source and tags): what decides whether outputs are stale."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.strip().encode())
            h.update(repr(sorted(cell.metadata.get("tags", []))).encode())
            h.update(b"\x00")
    return h.hexdigest()


def deps_hash() -> str:
    """SHA-256 over the code every notebook imports besides its own: course_utils and train.py.

    Outputs depend on it as much as on the notebook's cells (a changed optimizer changes every
    number it trains), so a change here marks every notebook stale.
    """
    h = hashlib.sha256()
    for path in sorted((ROOT / "course_utils").rglob("*.py")) + [ROOT / "train.py"]:
        if path.exists():
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\x00")
            h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\x00")
    return h.hexdigest()


def _read_pair(py: Path):
    import jupytext

    source = jupytext.read(py)
    ipynb = py.with_suffix(".ipynb")
    stored = jupytext.read(ipynb) if ipynb.exists() else None
    return source, stored


def is_stale(py: Path) -> bool:
    """True when the .ipynb is missing, or its outputs were made from other code than the .py's."""
    source, stored = _read_pair(py)
    if stored is None:
        return True
    record = stored.metadata.get(META_KEY, {})
    return (record.get("code_sha256") != code_hash(source) or record.get("deps_sha256") != deps_hash()
            or record.get("status") != "ok")


def _finalise_metadata(nb) -> None:
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    jt = nb.metadata.setdefault("jupytext", {})
    jt["formats"] = "ipynb,py:percent"
    jt.pop("text_representation", None)


def execute(py: Path) -> dict:
    """Execute ``py`` in a fresh kernel and write its .ipynb with outputs and an execution record."""
    import jupytext
    import resource
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = jupytext.read(py)
    _finalise_metadata(nb)
    env_before = dict(os.environ)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    shared = ROOT.parent / "shared" / "data"
    if "COURSE_DATA" not in os.environ and shared.is_dir():
        os.environ["COURSE_DATA"] = str(shared)
    client = NotebookClient(
        nb,
        timeout=EXEC_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        record_timing=False,
    )
    print(f"[dev] executing {py.relative_to(ROOT)} ...", flush=True)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    status, error = "ok", None
    try:
        client.execute()
    except CellExecutionError as exc:
        status, error = "failed", str(exc).splitlines()[-1] if str(exc) else "cell error"
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    data_lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain", "")
            for line in (text if isinstance(text, str) else "".join(text)).splitlines():
                line = line.strip().strip("'\"")
                entry = _data_note(line)
                if entry and entry not in data_lines:
                    data_lines.append(entry)
    record = {
        "code_sha256": code_hash(nb),
        "data": data_lines,
        "deps_sha256": deps_hash(),
        "status": status,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "executed": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores, {'CUDA' if _has_cuda() else 'no GPU'}",
    }
    if error:
        record["error"] = error
    old = py.with_suffix(".ipynb")
    if old.exists():  # the tolerance measurement stays with the notebook; a test says when it is stale
        old_nb = jupytext.read(old)
        measurement = old_nb.metadata.get(META_KEY, {}).get("measurement")
        if measurement:
            record["measurement"] = measurement
        if len(old_nb.cells) == len(nb.cells):  # per-line tolerances live in the .ipynb only
            for new_cell, old_cell in zip(nb.cells, old_nb.cells):
                lines = old_cell.metadata.get("tolerance_lines")
                if lines is not None and new_cell.source == old_cell.source:
                    new_cell.metadata["tolerance_lines"] = lines
    nb.metadata[META_KEY] = record
    jupytext.write(nb, py.with_suffix(".ipynb"))
    print(f"[dev] {py.name}: {status}, wall {wall:.1f} s, kernel CPU {cpu:.1f} s", flush=True)
    return record


def _data_note(line: str) -> str | None:
    """What a line printed by ``course_utils.data.Dataset.note()`` says about the data that ran, or None."""
    import re

    stand_in = re.match(r"STAND-IN DATA: (.+?) could not be found or downloaded, so this run uses (.+?) \(", line)
    if stand_in:
        return f"STAND-IN: {stand_in.group(2)} in place of {stand_in.group(1)}"
    real = re.match(r"Data: (.+?) \(", line)
    return real.group(1) if real else None


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def sync_markdown(py: Path) -> bool:
    """Bring prose changes of the .py into the .ipynb without touching outputs. True if changed."""
    import jupytext

    source, stored = _read_pair(py)
    if [(c.cell_type, c.source) for c in source.cells] == [(c.cell_type, c.source) for c in stored.cells]:
        return False
    merged = jupytext.read(py.with_suffix(".ipynb"))
    code_cells = iter(c for c in merged.cells if c.cell_type == "code")
    new_cells = []
    for cell in source.cells:
        if cell.cell_type == "code":
            old = next(code_cells)
            lines = old.metadata.get("tolerance_lines")  # kept in the .ipynb only
            old.metadata = cell.metadata
            if lines is not None:
                old.metadata["tolerance_lines"] = lines
            new_cells.append(old)
        else:
            new_cells.append(cell)
    merged.cells = new_cells
    jupytext.write(merged, py.with_suffix(".ipynb"))
    return True


def stats_table() -> str:
    import jupytext

    rows = [
        "| notebook | status | wall time (s) | kernel CPU time (s) | executed | machine | data it ran on |",
        "|---|---|---:|---:|---|---|---|",
    ]
    total_wall = total_cpu = 0.0
    for py in notebook_sources():
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            rows.append(f"| [{py.stem}](../notebooks/{py.stem}.ipynb) | not executed | | | | | |")
            continue
        rec = jupytext.read(ipynb).metadata.get(META_KEY, {})
        total_wall += rec.get("wall_seconds", 0.0)
        total_cpu += rec.get("cpu_seconds", 0.0)
        rows.append(
            f"| [{py.stem}](../notebooks/{py.stem}.ipynb) | {rec.get('status', 'unknown')} | "
            f"{rec.get('wall_seconds', '')} | {rec.get('cpu_seconds', '')} | {rec.get('executed', '')} | "
            f"{rec.get('machine', '')} | {_data_cell(rec)} |"
        )
    rows.append(f"| **all notebooks** | | **{total_wall:.1f}** | **{total_cpu:.1f}** | | | |")
    return "\n".join(rows) + "\n" + "\n" + checks_table()


def _data_cell(rec: dict) -> str:
    data = rec.get("data")
    if data is None:
        return "(not recorded)"
    return "; ".join(f"**{d}**" if d.startswith("STAND-IN") else d for d in data) or "generated in the chapter"


INTRO_PAGE = ROOT / "book" / "intro.md"


def intro_with_data(text: str) -> str:
    """The intro page with its chapter table's last column set to the data each chapter last ran on."""
    import jupytext

    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("| [") or "](../notebooks/" not in line:
            continue
        stem = line.split("](../notebooks/", 1)[1].split(".ipynb)", 1)[0]
        ipynb = NOTEBOOKS / f"{stem}.ipynb"
        rec = jupytext.read(ipynb).metadata.get(META_KEY, {}) if ipynb.exists() else {}
        cells = line.rstrip().rstrip("|").split(" | ")
        cells[-1] = _data_cell(rec)
        lines[i] = " | ".join(cells) + " |"
    return "\n".join(lines)


def _cell_label(cell) -> str:
    """A short name for a code cell on the statistics page: its first comment, else its first line."""
    lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
    comment = next((ln.lstrip("# ") for ln in lines if ln.startswith("#")), None)
    text = comment or (lines[0] if lines else "(empty)")
    text = text.replace("|", "/").replace("`", "'")
    return text[:60] + ("..." if len(text) > 60 else "")


def checks_table() -> str:
    """How each notebook's outputs are compared by `dev.py test`: exact, measured (tolerance), ignored (why)."""
    import jupytext

    sys.path.insert(0, str(ROOT))
    from tools import measured

    rows = [
        "**How the outputs are checked.** `python3 dev.py test` re-executes every notebook and compares each "
        "code cell's output with the stored one: *exact* cells as text; *measured* cells (numbers that come "
        "from training) token by token, the text exactly and every number within the tolerance declared on "
        "the cell, measured by `python3 dev.py measure` as the largest deviation over the runs listed, times "
        "the margin; *ignored* cells not at all, for the reason given (what the text draws from them is "
        "asserted in the notebook).",
        "",
        "| notebook | cell | kind | tolerance (abs, rel) | largest deviation measured (abs, rel) | over the runs |",
        "|---|---:|---|---|---|---|",
    ]
    for py in notebook_sources():
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            continue
        nb = jupytext.read(ipynb)
        meas = nb.metadata.get(META_KEY, {}).get("measurement", {})
        code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("outputs")]
        exact = 0
        for i, cell in code:
            tags = cell.metadata.get("tags", [])
            if measured.MEASURED_TAG in tags:
                tol = cell.metadata.get(measured.TOLERANCE_KEY) or {}
                spread = meas.get("cells", {}).get(str(i), {})
                fmt = lambda v: "none" if v is None else f"{v:.3g}"
                runs = f"{len(meas.get('runs', []))} runs ({', '.join(meas.get('runs', []))}), margin {meas.get('margin')}"
                line_abs = [row[0] for rows_ in (cell.metadata.get("tolerance_lines") or {}).values()
                            for row in rows_ if row is not None and row[0] is not None]
                per_line = (f"; per line abs {min(line_abs):.3g} to {max(line_abs):.3g}"
                            if len(line_abs) > 1 and min(line_abs) < max(line_abs) else "")
                rows.append(
                    f"| {py.stem} | {i} {_cell_label(cell)} | measured | {fmt(tol.get('abs'))}, {fmt(tol.get('rel'))}{per_line} | "
                    f"{fmt(spread.get('abs'))}, {fmt(spread.get('rel'))} | {runs if meas else 'not measured'} |"
                )
            elif measured.IGNORED_TAG in tags:
                why = str(cell.metadata.get("ignore_reason", "(no reason given)")).replace("|", "/")
                rows.append(f"| {py.stem} | {i} {_cell_label(cell)} | ignored | | | {why} |")
            else:
                exact += 1
        rows.append(f"| {py.stem} | all others | exact: {exact} cells | | | |")
    return "\n".join(rows) + "\n"


STATS_BEGIN = "<!-- stats:begin (written by `python3 dev.py stats`; do not edit by hand) -->"
STATS_END = "<!-- stats:end -->"


def write_stats() -> None:
    INTRO_PAGE.write_text(intro_with_data(INTRO_PAGE.read_text()))
    text = STATS_PAGE.read_text()
    head, _, rest = text.partition(STATS_BEGIN)
    _, _, tail = rest.partition(STATS_END)
    STATS_PAGE.write_text(f"{head}{STATS_BEGIN}\n\n{stats_table()}\n{STATS_END}{tail}")


# --------------------------------------------------------------------------- commands
def cmd_execute(args: list[str]) -> int:
    targets = [Path(a).resolve().with_suffix(".py") for a in args] or notebook_sources()
    missing = [t for t in targets if not t.exists()]
    if missing:
        print("[dev] no such notebook source: " + ", ".join(str(m) for m in missing), file=sys.stderr)
        return 2
    failed = [t.name for t in targets if execute(t)["status"] != "ok"]
    write_stats()
    if failed:
        print("[dev] failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


def cmd_build(args: list[str]) -> int:
    stale = [py for py in notebook_sources() if is_stale(py)]
    for py in notebook_sources():
        if py not in stale and sync_markdown(py):
            print(f"[dev] {py.name}: prose changed, outputs kept", flush=True)
    if stale:
        print("[dev] code changed, re-executing: " + ", ".join(p.name for p in stale), flush=True)
        if cmd_execute([str(p) for p in stale]) != 0:
            return 1
    cmd = [sys.executable, "-m", "jupyter_book", "build", str(ROOT), "-W", "-n", "--keep-going", *args]
    # jupyter-book exposes no `python -m jupyter_book` entry point in every release: use its script.
    jb = Path(sys.executable).with_name("jupyter-book")
    if jb.exists():
        cmd = [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going", *args]
    return subprocess.run(cmd, cwd=ROOT).returncode


def _rounding_option(args: list[str]) -> tuple[str | None, list[str]]:
    """Take ``--other-rounding`` or ``--rounding NAME`` out of ``args``: (profile name or None, the rest)."""
    rest, profile = [], None
    it = iter(args)
    for a in it:
        if a == "--other-rounding":
            from tools import profiles

            profile = profiles.OTHER
        elif a == "--rounding" or a.startswith("--rounding="):
            profile = a.partition("=")[2] or next(it, "")
        else:
            rest.append(a)
    return profile, rest


def cmd_test(args: list[str]) -> int:
    """pytest as the README gives it; ``--other-rounding`` / ``--rounding NAME`` run it under a rounding
    profile (tools/profiles.py): NumPy's and PyTorch's kernels of another machine, in the notebook kernels too."""
    env = dict(os.environ)
    profile, args = _rounding_option(args)
    if profile is not None:
        from tools import profiles

        try:
            profiles.apply(profile, env)
        except ValueError as exc:
            print(f"[dev] {exc}", file=sys.stderr)
            return 2
        settings = " ".join(f"{k}={v}" for k, v in profiles.PROFILES[profile].items()) or "(none)"
        print(f"[dev] rounding profile {profile!r}: {settings}", flush=True)
    shared = ROOT.parent / "shared" / "data"
    if "COURSE_DATA" not in env and shared.is_dir():
        env["COURSE_DATA"] = str(shared)
    env.setdefault("PYTHONHASHSEED", "0")
    # Two workers for the two cores; --dist loadfile keeps each notebook's cells on one worker.
    cmd = [sys.executable, "-m", "pytest", "-n", os.environ.get("COURSE_TEST_WORKERS", "2"), "--dist", "loadfile", *args]
    print("[dev] " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def cmd_measure(args: list[str]) -> int:
    """Measure the measured cells' spread across rounding profiles and seeds; write tolerances (tools/measure.py)."""
    from tools import measure

    status = measure.main(args)
    if status == 0 and "--check" not in args:
        write_stats()
    return status


def cmd_stats(args: list[str]) -> int:
    write_stats()
    print(stats_table())
    return 0


def cmd_colab_check(args: list[str]) -> int:
    """The simulated Colab run (tools/colab_check.py); `--static` for the import check alone."""
    return subprocess.run([sys.executable, str(ROOT / "tools" / "colab_check.py"), *args], cwd=ROOT).returncode


COMMANDS = {"build": cmd_build, "test": cmd_test, "execute": cmd_execute, "measure": cmd_measure, "stats": cmd_stats,
            "colab-check": cmd_colab_check}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        print(f"unknown or missing command; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    ensure_environment()
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
