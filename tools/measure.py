"""Measure how much each chapter's outputs move across rounding profiles and seeds; write the tolerances.

    python3 dev.py measure [notebooks/NN_slug.py ...] [--seeds 2] [--profiles native,sandybridge,...]
                           [--jobs 2] [--margin 2] [--check]

For every notebook it executes the chapter's source (``notebooks/NN_slug.py``) in fresh kernels:

- once under each rounding profile (``tools/profiles.py``) with the chapter's own ``SEED``, and
- once under the native profile for each of ``--seeds`` other seeds (``SEED + 1``, ``SEED + 2``, ...: a
  cell assigning ``SEED`` is injected after the ``parameters`` cell, as papermill does; chapters derive
  every seed they use from ``SEED``),

and compares every code cell's outputs with the stored ones (the committed ``.ipynb``):

- an **exact** cell (no tag) must print the same text under every profile; a difference is reported as
  an error (the cell needs the ``nbval-measured`` tag, or its output rounded to what is deterministic);
- a **measured** cell (tag ``nbval-measured``) must print the same text up to its numbers under every
  profile *and* every seed: a different structure (another winner named, a row more) means a sentence or
  assertion that depends on the machine or the seed, and is reported as an error. Its numbers' largest
  deviation (absolute, and relative) times ``--margin`` becomes the cell's tolerance, rounded up to two
  significant digits, written into the cell's metadata in the ``.py`` and the ``.ipynb``;
- an **ignored** cell (tag ``nbval-ignore-output``) is not compared;
- a cell that raises under any profile or seed (a failed assertion: a claim that does not hold there) is
  an error.

The spreads are recorded in the ``.ipynb``'s metadata (``course_book.measurement``) together with the code
hash they were measured on; ``book/execution-statistics.md`` lists them (``python3 dev.py stats``), and a
test fails when a notebook's code changed after its tolerances were measured. ``--check`` measures and
reports without writing anything.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import copy
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import measured, profiles  # noqa: E402

META_KEY = "course_book"
SANITIZE_FILE = ROOT / ".nbval_sanitize.cfg"


# --------------------------------------------------------------------------- execution (in a child process)
def _inject_seed(nb, seed: int) -> None:
    import nbformat

    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.metadata.get("tags", []):
            injected = nbformat.v4.new_code_cell(f"SEED = {seed}  # injected by tools/measure.py")
            injected.metadata["tags"] = ["injected-parameters"]
            nb.cells.insert(i + 1, injected)
            return
    raise ValueError("no cell tagged 'parameters' to inject a seed after")


def execute_variant(py: str, profile: str, seed: int | None, out: str, timeout: int = 1800) -> None:
    """Execute ``py`` under ``profile`` (and ``seed``) and write the executed notebook to ``out``."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    profiles.apply(profile)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    shared = ROOT.parent / "shared" / "data"
    if "COURSE_DATA" not in os.environ and shared.is_dir():
        os.environ["COURSE_DATA"] = str(shared)
    nb = jupytext.read(py)
    if seed is not None:
        _inject_seed(nb, seed)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(py).parent)}}, allow_errors=True)
    try:
        client.execute()
    except CellExecutionError:  # with allow_errors the error is stored in the cell's outputs
        pass
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    jupytext.write(nb, out)


def _run_child(py: Path, profile: str, seed: int | None, workdir: Path) -> tuple[str, Path, float]:
    label = profile + (f" seed {seed}" if seed is not None else "")
    out = workdir / f"{py.stem}.{profile}.{'s' + str(seed) if seed is not None else 'base'}.ipynb"
    cmd = [sys.executable, "-m", "tools.measure", "--child", str(py), profile, "" if seed is None else str(seed), str(out)]
    t0 = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"{py.name} under {label} did not run:\n{result.stderr[-3000:]}")
    return label, out, time.perf_counter() - t0


# --------------------------------------------------------------------------- comparison
def _sanitizer():
    patterns = re.findall(r"^regex: (.*)$\n^replace: (.*)$", SANITIZE_FILE.read_text(), flags=re.MULTILINE)
    compiled = [(re.compile(p), r) for p, r in patterns]

    def sanitize(text: str) -> str:
        for pattern, replace in compiled:
            text = pattern.sub(replace, text)
        return text

    return sanitize


def _texts(cell, sanitize) -> dict[str, list[str]]:
    return {k: [sanitize(v) for v in vs] for k, vs in measured.output_texts(cell.get("outputs", [])).items()}


def _first_line(cell) -> str:
    for line in cell.source.splitlines():
        if line.strip():
            return line.strip()[:70]
    return ""


def compare_runs(ref_nb, runs: list[tuple[str, bool, object]]) -> tuple[list[str], dict[int, dict]]:
    """Compare each run with the stored notebook.

    ``runs``: (label, is_profile_run_at_the_chapter_seed, executed notebook). Returns the errors and, per
    measured cell (index among all cells), its largest deviations.
    """
    sanitize = _sanitizer()
    errors: list[str] = []
    spreads: dict[int, dict] = {}
    code = [(i, c) for i, c in enumerate(ref_nb.cells) if c.cell_type == "code"]
    for label, at_base_seed, nb in runs:
        cells = [c for c in nb.cells if c.cell_type == "code"]
        if len(cells) != len(code):
            errors.append(f"{label}: {len(cells)} code cells executed, {len(code)} stored")
            continue
        for (index, ref), new in zip(code, cells):
            tags = ref.metadata.get("tags", [])
            where = f"cell {index} ({_first_line(ref)!r})"
            errs = [o for o in new.get("outputs", []) if o.get("output_type") == "error"]
            if errs:
                errors.append(f"{label}: {where} raised {errs[0].get('ename')}: {errs[0].get('evalue')}"[:600])
                continue
            if measured.IGNORED_TAG in tags:
                continue
            ref_t, new_t = _texts(ref, sanitize), _texts(new, sanitize)
            if measured.MEASURED_TAG in tags:
                spread = spreads.setdefault(index, {"abs": 0.0, "rel": 0.0, "runs": []})
                spread["runs"].append(label)
                if set(ref_t) != set(new_t) or any(len(ref_t[k]) != len(new_t[k]) for k in ref_t):
                    errors.append(f"{label}: {where}: other outputs ({sorted(new_t)} against {sorted(ref_t)})")
                    continue
                for key in ref_t:
                    for k, (a, b) in enumerate(zip(ref_t[key], new_t[key])):
                        per_line = measured.deviations_by_line(a, b)
                        if per_line is None:
                            problem = measured.compare(a, b, {"abs": math.inf})
                            errors.append(f"{label}: {where}: the text depends on the run: "
                                          + (problem[0] if problem else "numbers became NaN"))
                            continue
                        lines = spread.setdefault("lines", {}).setdefault(f"{key}/{k}", {})
                        for line, (d_abs, d_rel) in per_line.items():
                            old_abs, old_rel = lines.get(line, (0.0, 0.0))
                            lines[line] = (max(old_abs, d_abs), max(old_rel, d_rel))
                            spread["abs"] = max(spread["abs"], d_abs)
                            spread["rel"] = max(spread["rel"], d_rel)
            elif at_base_seed and ref_t != new_t:
                diff = next((f"{k}: {measured.compare(a, b, {'abs': 0.0})[:1]}" for k in ref_t
                             for a, b in zip(ref_t[k], new_t.get(k, [])) if a != b), "outputs differ")
                errors.append(f"{label}: exact {where} prints other text: {diff}"[:800])
    return errors, spreads


def _round_up(x: float) -> float:
    """Round up to two significant digits."""
    if x <= 0 or math.isinf(x):
        return x
    exp = math.floor(math.log10(x)) - 1
    return math.ceil(x / 10**exp - 1e-9) * 10**exp


def tolerance_from(spread: dict, margin: float) -> dict:
    rel = None if math.isinf(spread["rel"]) else round(_round_up(margin * spread["rel"]), 6)
    return {"abs": float(f"{_round_up(margin * spread['abs']):.6g}"), "rel": rel}


def line_tolerances(spread: dict, ref_cell, margin: float) -> dict[str, list]:
    """Per output ("<kind>/<k>") a list with one [abs, rel] per line (None: a line without numbers)."""
    sanitize = _sanitizer()
    texts = _texts(ref_cell, sanitize)
    out = {}
    for name, lines in spread.get("lines", {}).items():
        key, _, k = name.rpartition("/")
        n_lines = len(measured.tokenize(texts[key][int(k)])[0].splitlines())
        row: list = [None] * n_lines
        for line, (d_abs, d_rel) in lines.items():
            tol = tolerance_from({"abs": d_abs, "rel": d_rel}, margin)
            row[line] = [tol["abs"], tol["rel"]]
        out[name] = row
    return out


# --------------------------------------------------------------------------- writing
def write_tolerances(py: Path, tolerances: dict[int, dict], record: dict,
                     lines: dict[int, dict] | None = None) -> None:
    """Set the ``tolerance`` metadata of the measured cells in the .py and the .ipynb (and, in the .ipynb
    only, ``tolerance_lines``: one tolerance per output line); record the spreads."""
    import jupytext

    for path in (py, py.with_suffix(".ipynb")):
        nb = jupytext.read(path)
        for index, tol in tolerances.items():
            cell = nb.cells[index]
            assert measured.MEASURED_TAG in cell.metadata.get("tags", []), (path, index)
            cell.metadata[measured.TOLERANCE_KEY] = tol
            if path.suffix == ".ipynb" and lines is not None:
                cell.metadata[measured.LINES_KEY] = lines.get(index, {})
        if path.suffix == ".ipynb":
            nb.metadata.setdefault(META_KEY, {})["measurement"] = record
        jupytext.write(nb, path, fmt="py:percent" if path.suffix == ".py" else None)


def measure(py: Path, *, seeds: int, profile_names: list[str], jobs: int, margin: float, write: bool) -> bool:
    import jupytext

    from dev import code_hash  # noqa: E402  (dev.py at the repository root)

    ref_nb = jupytext.read(py.with_suffix(".ipynb"))
    record = ref_nb.metadata.get(META_KEY, {})
    if record.get("code_sha256") != code_hash(jupytext.read(py)):
        print(f"[measure] {py.name}: the stored outputs are stale; run `python3 dev.py execute {py.relative_to(ROOT)}` first")
        return False
    base_seed = _chapter_seed(ref_nb)
    variants = [(p, None) for p in profile_names] + [("native", base_seed + k) for k in range(1, seeds + 1)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_run_child, py, p, s, Path(tmp)) for p, s in variants]
            results = [f.result() for f in futures]
        runs = [(label, " seed " not in label, jupytext.read(out)) for label, out, _ in results]
    errors, spreads = compare_runs(ref_nb, runs)
    wall = time.perf_counter() - t0
    labels = [label for label, _, _ in runs]
    print(f"[measure] {py.name}: {len(runs)} runs ({'; '.join(labels)}) in {wall:.0f} s")
    tolerances, lines = {}, {}
    for index, spread in sorted(spreads.items()):
        tol = tolerance_from(spread, margin)
        tolerances[index] = tol
        lines[index] = line_tolerances(spread, ref_nb.cells[index], margin)
        cell = ref_nb.cells[index]
        note = "  (never varied: is it really measured?)" if spread["abs"] == 0 else ""
        print(f"  measured cell {index} {_first_line(cell)!r}: max |d| {spread['abs']:.3g}, "
              f"rel {spread['rel']:.3g} -> tolerance {tol}{note}")
    for e in errors:
        print("  ERROR " + e)
    if errors:
        print(f"[measure] {py.name}: {len(errors)} problems; tolerances not written")
        return False
    if write:
        rec = {
            "code_sha256": record.get("code_sha256"),
            "deps_sha256": record.get("deps_sha256"),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "runs": labels,
            "margin": margin,
            "cells": {str(i): {"abs": s["abs"], "rel": None if math.isinf(s["rel"]) else s["rel"],
                               "tolerance": tolerances[i], "lines": lines[i]}
                      for i, s in sorted(spreads.items())},
        }
        write_tolerances(py, tolerances, rec, lines)
        print(f"[measure] {py.name}: tolerances written ({len(tolerances)} measured cells)")
    return True


def _chapter_seed(nb) -> int:
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            match = re.search(r"^SEED\s*=\s*(\d+)", cell.source, flags=re.MULTILINE)
            if match:
                return int(match.group(1))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _, py, profile, seed, out = argv
        execute_variant(py, profile, int(seed) if seed else None, out)
        return 0
    parser = argparse.ArgumentParser(prog="dev.py measure", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks/NN_slug.py (default: every chapter)")
    parser.add_argument("--seeds", type=int, default=2, help="other seeds to run (default 2: SEED+1, SEED+2)")
    parser.add_argument("--profiles", default=",".join(profiles.available()),
                        help=f"rounding profiles (default: all this CPU can run: {','.join(profiles.available())})")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--margin", type=float, default=2.0, help="tolerance = margin x largest deviation (default 2)")
    parser.add_argument("--check", action="store_true", help="measure and report, write nothing")
    args = parser.parse_args(argv)
    if args.seeds < 0 or args.jobs < 1 or args.margin < 1:
        parser.error("--seeds must be >= 0, --jobs >= 1 and --margin >= 1")
    names = [p for p in args.profiles.split(",") if p]
    for name in names:
        try:
            profiles.check(name)
        except ValueError as exc:
            parser.error(str(exc))
    targets = [Path(a).resolve().with_suffix(".py") for a in args.notebooks] or sorted(
        (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    missing = [str(t) for t in targets if not t.exists()]
    if missing:
        parser.error("no such notebook source: " + ", ".join(missing))
    ok = True
    for py in targets:
        ok &= measure(py, seeds=args.seeds, profile_names=names, jobs=args.jobs, margin=args.margin,
                      write=not args.check)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
