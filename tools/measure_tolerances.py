"""Measure how far each chapter's outputs move on other machines and seeds; write the tolerances.

    python3 dev.py measure notebooks/NN_slug.py [...] [--seeds 2] [--profiles sandybridge,nehalem]
                           [--jobs 2] [--margin 2] [--check]

For every notebook it executes the chapter's source (``notebooks/NN_slug.py``) in fresh kernels, ``--jobs``
at a time (one BLAS thread each: two on two cores), and compares every code cell's outputs with the
stored ones (the committed ``.ipynb``). The runs (4 on an AVX2 machine, about 2 notebook run times on 2
cores):

- one per rounding profile that simulates another machine here (``tools/rounding.py``,
  ``measurement_profiles()``: "sandybridge" and "nehalem" on an AVX2 CPU, "haswell" too on an AVX-512
  one), at the chapter's own ``SEED``: what a reader on such a CPU gets;
- one per extra seed (``--seeds``, default 2): ``SEED + k``, alternately under the native profile and
  under ``rounding.OTHER`` (a cell assigning ``SEED`` is injected after the ``parameters`` cell, as
  papermill does; chapters derive every seed from ``SEED``). Training is chaotic: the last digits a
  CPU changes grow like a change of seed, and the text must not depend on the seed either.

The native run at the chapter's seed is left out: it reproduces the stored outputs (``dev.py test``
checks exactly that). What is checked:

- an **exact** cell (no tag) must print the same text in every run at the chapter's seed (another seed
  may change it: exact cells hold what is deterministic for a given seed);
- a **measured** cell (tag ``nbval-measured``) must print the same text up to its numbers in every run;
  a different structure (another winner named, a row more) means a sentence or assertion that depends on
  the machine or the seed, and is an error;
- an **ignored** cell (tag ``nbval-ignore-output``) is not compared;
- a cell that raises in any run (a failed assertion: a claim that does not hold there) is an error.

Tolerances (see ``tools/tolerance.py`` for how they are applied): for each number of a measured cell, the
largest deviation seen among the numbers of its line printed to the same last digit, times ``--margin``,
rounded up to two significant digits (``tolerance_numbers``, in the ``.ipynb``); for the cell, the
largest absolute and relative deviation times the margin (``tolerance``, in the ``.py`` and the
``.ipynb``). Grouping a line's numbers by precision gives a spread or difference printed beside its values
(a mean and its range, a per-seed difference) at least the tolerance its values need: relative to its
size a spread moves far more than the values, and a few runs cannot measure that.

The measurement is recorded in the ``.ipynb``'s metadata (``course_book.measurement``) with the two hashes
of ``tools/staleness.py`` it was measured on; a test fails when either changed since, and
``book/execution-statistics.md`` lists every measured cell (``python3 dev.py stats``). ``--check``
measures and reports without writing anything.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python -m tools.measure_tolerances` from elsewhere
    sys.path.insert(0, str(ROOT))

from tools import layout, rounding, staleness, tolerance  # noqa: E402

SANITIZE_FILE = ROOT / ".nbval_sanitize.cfg"
INJECTED_TAG = "injected-parameters"


# --------------------------------------------------------------------------- execution (in a child process)
def _inject_seed(nb, seed: int) -> None:
    import nbformat

    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.metadata.get("tags", []):
            injected = nbformat.v4.new_code_cell(f"SEED = {seed}  # injected by tools/measure_tolerances.py")
            injected.metadata["tags"] = [INJECTED_TAG]
            nb.cells.insert(i + 1, injected)
            return
    raise ValueError("no cell tagged 'parameters' to inject a seed after")


def execute_variant(py: str, profile: str, seed: int | None, out: str, timeout: int = 1800) -> None:
    """Execute ``py`` under ``profile`` (and ``seed``) and write the executed notebook to ``out``."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    rounding.apply(profile)
    layout.notebook_environment()
    nb = jupytext.read(py)
    if seed is not None:
        _inject_seed(nb, seed)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(py).parent)}}, allow_errors=True)
    try:
        client.execute()
    except CellExecutionError:  # with allow_errors the error is stored in the cell's outputs
        pass
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.metadata.get("tags", [])]
    jupytext.write(nb, out)


def _run_child(py: Path, profile: str, seed: int | None, workdir: Path) -> tuple[str, Path, float]:
    label = profile + (f" seed {seed}" if seed is not None else "")
    out = workdir / f"{py.stem}.{profile}.{'s' + str(seed) if seed is not None else 'base'}.ipynb"
    cmd = [sys.executable, "-m", "tools.measure_tolerances", "--child", str(py), profile,
           "" if seed is None else str(seed), str(out)]
    t0 = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"{py.name} under {label} did not run:\n{result.stderr[-3000:]}")
    return label, out, time.perf_counter() - t0


def variants(base_seed: int, profile_names: list[str], seeds: int) -> list[tuple[str, int | None]]:
    """(profile, seed or None for the chapter's own) of every run: the profiles, then the extra seeds."""
    seed_profiles = ["native", rounding.OTHER] if rounding.OTHER in rounding.available() else ["native"]
    return [(p, None) for p in profile_names] + [
        (seed_profiles[(k - 1) % len(seed_profiles)], base_seed + k) for k in range(1, seeds + 1)]


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
    return {k: [sanitize(v) for v in vs] for k, vs in tolerance.output_texts(cell.get("outputs", [])).items()}


def _first_line(cell) -> str:
    for line in cell.source.splitlines():
        if line.strip():
            return line.strip()[:70]
    return ""


def compare_runs(ref_nb, runs: list[tuple[str, bool, object]]) -> tuple[list[str], dict[int, dict]]:
    """Compare each run with the stored notebook.

    ``runs``: (label, runs at the chapter's seed, executed notebook). Returns the errors and, per measured
    cell (index among all cells), its deviations: ``{"abs", "rel", "runs", "numbers": {"<kind>/<k>":
    per line, per number [abs, rel]}}`` (each the largest over the runs).
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
            if tolerance.IGNORED_TAG in tags:
                continue
            ref_t, new_t = _texts(ref, sanitize), _texts(new, sanitize)
            if tolerance.MEASURED_TAG in tags:
                spread = spreads.setdefault(index, {"abs": 0.0, "rel": 0.0, "runs": [], "numbers": {}})
                spread["runs"].append(label)
                if set(ref_t) != set(new_t) or any(len(ref_t[k]) != len(new_t[k]) for k in ref_t):
                    errors.append(f"{label}: {where}: other outputs ({sorted(new_t)} against {sorted(ref_t)})")
                    continue
                for key in ref_t:
                    for k, (a, b) in enumerate(zip(ref_t[key], new_t[key])):
                        devs = tolerance.deviations(a, b)
                        if devs is None:
                            problem = tolerance.compare(a, b, {"abs": math.inf})
                            errors.append(f"{label}: {where}: the text depends on the run: "
                                          + (problem[0] if problem else "numbers became NaN"))
                            continue
                        seen = spread["numbers"].setdefault(f"{key}/{k}", [[[0.0, 0.0] for _ in row] for row in devs])
                        for row_seen, row in zip(seen, devs):
                            for pair, (d_abs, d_rel) in zip(row_seen, row):
                                pair[0], pair[1] = max(pair[0], d_abs), max(pair[1], d_rel)
                                spread["abs"] = max(spread["abs"], d_abs)
                                spread["rel"] = max(spread["rel"], d_rel)
            elif at_base_seed and ref_t != new_t:
                diff = next((f"{k}: {tolerance.compare(a, b, {'abs': 0.0})[:1]}" for k in ref_t
                             for a, b in zip(ref_t[k], new_t.get(k, [])) if a != b), "outputs differ")
                errors.append(f"{label}: exact {where} prints other text: {diff}"[:800])
    return errors, spreads


def _round_up(x: float) -> float:
    """Round up to two significant digits."""
    if x <= 0 or math.isinf(x):
        return x
    exp = math.floor(math.log10(x)) - 1
    return float(f"{math.ceil(x / 10**exp - 1e-9) * 10**exp:.6g}")


def cell_tolerance(spread: dict, margin: float) -> dict:
    """The cell's tolerance: its largest absolute and relative deviation times ``margin``."""
    rel = None if math.isinf(spread["rel"]) else round(_round_up(margin * spread["rel"]), 6)
    return {"abs": _round_up(margin * spread["abs"]), "rel": rel}


def number_tolerances(spread: dict, ref_cell, margin: float) -> dict[str, list]:
    """Per output ("<kind>/<k>"), per line, a bound per number: ``margin`` times the largest deviation among
    the numbers of the line printed to the same last digit (None for a line without numbers)."""
    texts = _texts(ref_cell, _sanitizer())
    out = {}
    for name, rows in spread.get("numbers", {}).items():
        key, _, k = name.rpartition("/")
        line_units = tolerance.units(texts[key][int(k)])
        bounds: list = []
        for row, units in zip(rows, line_units):
            if not row:
                bounds.append(None)
                continue
            largest: dict[float, float] = {}
            for (d_abs, _), unit in zip(row, units):
                largest[unit] = max(largest.get(unit, 0.0), d_abs)
            bounds.append([_round_up(margin * largest[unit]) for unit in units])
        out[name] = bounds
    return out


# --------------------------------------------------------------------------- writing
def write_tolerances(py: Path, tolerances: dict[int, dict], record: dict, numbers: dict[int, dict]) -> None:
    """Set the ``tolerance`` metadata of the measured cells in the .py and the .ipynb (and, in the .ipynb
    only, ``tolerance_numbers``); record the measurement in the .ipynb."""
    import jupytext

    for path in (py, py.with_suffix(".ipynb")):
        nb = jupytext.read(path)
        for index, tol in tolerances.items():
            cell = nb.cells[index]
            assert tolerance.MEASURED_TAG in cell.metadata.get("tags", []), (path, index)
            cell.metadata[tolerance.TOLERANCE_KEY] = tol
            cell.metadata.pop("tolerance_lines", None)  # the per-line tolerances of before 2026-12-06
            if path.suffix == ".ipynb":
                cell.metadata[tolerance.NUMBERS_KEY] = numbers.get(index, {})
        if path.suffix == ".ipynb":
            nb.metadata.setdefault(layout.META_KEY, {})["measurement"] = record
        jupytext.write(nb, path, fmt="py:percent" if path.suffix == ".py" else None)


def measure(py: Path, *, seeds: int, profile_names: list[str], jobs: int, margin: float, write: bool) -> bool:
    import jupytext

    stale = staleness.stale_reason(py)
    if stale:
        print(f"[measure] {py.name}: the stored outputs are stale ({stale}); run "
              f"`python3 dev.py execute {py.relative_to(ROOT) if py.is_relative_to(ROOT) else py}` first")
        return False
    ref_nb = jupytext.read(py.with_suffix(".ipynb"))
    record = ref_nb.metadata.get(layout.META_KEY, {})
    planned = variants(_chapter_seed(ref_nb), profile_names, seeds)
    if not planned:
        print(f"[measure] {py.name}: no runs (no profile other than this machine, and --seeds 0)")
        return False
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_run_child, py, p, s, Path(tmp)) for p, s in planned]
            results = [f.result() for f in futures]
        runs = [(label, " seed " not in label, jupytext.read(out)) for label, out, _ in results]
    errors, spreads = compare_runs(ref_nb, runs)
    wall = time.perf_counter() - t0
    labels = [label for label, _, _ in runs]
    print(f"[measure] {py.name}: {len(runs)} runs ({'; '.join(labels)}), {jobs} at a time, in {wall:.0f} s")
    tolerances, numbers = {}, {}
    for index, spread in sorted(spreads.items()):
        tol = cell_tolerance(spread, margin)
        tolerances[index] = tol
        numbers[index] = number_tolerances(spread, ref_nb.cells[index], margin)
        note = "  (never varied: is it really measured?)" if spread["abs"] == 0 else ""
        print(f"  measured cell {index} {_first_line(ref_nb.cells[index])!r}: max |d| {spread['abs']:.3g}, "
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
            "wall_seconds": round(wall, 1),
            "cells": {str(i): {"abs": s["abs"], "rel": None if math.isinf(s["rel"]) else s["rel"],
                               "tolerance": tolerances[i], "numbers": numbers[i]}
                      for i, s in sorted(spreads.items())},
        }
        write_tolerances(py, tolerances, rec, numbers)
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
    default_profiles = rounding.measurement_profiles()
    parser = argparse.ArgumentParser(prog="dev.py measure", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks/NN_slug.py (default: every chapter)")
    parser.add_argument("--seeds", type=int, default=2, help="other seeds to run (default 2: SEED+1, SEED+2)")
    parser.add_argument("--profiles", default=",".join(default_profiles),
                        help=f"rounding profiles run at the chapter's seed (default here: {','.join(default_profiles)}; "
                             f"any of {','.join(rounding.available())})")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="notebooks executed at once (default: 2, or 1 on a single core)")
    parser.add_argument("--margin", type=float, default=2.0, help="tolerance = margin x largest deviation (default 2)")
    parser.add_argument("--check", action="store_true", help="measure and report, write nothing")
    args = parser.parse_args(argv)
    if args.seeds < 0 or args.jobs < 1 or args.margin < 1:
        parser.error("--seeds must be >= 0, --jobs >= 1 and --margin >= 1")
    names = [p for p in args.profiles.split(",") if p]
    for name in names:
        try:
            rounding.check(name)
        except ValueError as exc:
            parser.error(str(exc))
    targets = [Path(a).resolve().with_suffix(".py") for a in args.notebooks] or layout.chapter_sources()
    missing = [str(t) for t in targets if not t.exists()]
    if missing:
        parser.error("no such notebook source: " + ", ".join(missing))
    layout.share_cores(os.environ, args.jobs)  # the runs side by side: each its share of the cores
    ok = True
    for py in targets:
        ok &= measure(py, seeds=args.seeds, profile_names=names, jobs=args.jobs, margin=args.margin,
                      write=not args.check)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
