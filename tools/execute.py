"""Execute a chapter and store its outputs with its execution record (``python3 dev.py execute``).

:func:`execute` runs ``notebooks/NN_slug.py`` in a fresh ``python3`` kernel (working folder ``notebooks/``,
the data mirror and ``PYTHONHASHSEED=0`` set by :func:`tools.layout.notebook_environment`) and writes its
``.ipynb`` with the outputs and, in the metadata key ``course_book``, the execution record: the two
hashes of ``tools/staleness.py``, the status, wall and kernel CPU time, the date, the machine and the data
it ran on (read from the lines ``course_utils.data`` prints). The tolerance measurement and each measured
cell's per-number tolerances (``tools/measure_tolerances.py``) are carried over from the old ``.ipynb``
while the cell's source is the same: a test says when they were measured on other code.

:func:`sync_prose` brings changes that need no execution (Markdown cells, comments in code cells) from the
``.py`` into the ``.ipynb`` and keeps the outputs (``dev.py build`` calls it for fresh notebooks).
"""
from __future__ import annotations

import os
import re
import resource
import time
from pathlib import Path

from tools import layout, staleness, tolerance

EXEC_TIMEOUT_S = 1800  # per cell
KEPT_CELL_KEYS = (tolerance.NUMBERS_KEY,)  # cell metadata that lives in the .ipynb only


def _finalise_metadata(nb) -> None:
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    jt = nb.metadata.setdefault("jupytext", {})
    jt["formats"] = "ipynb,py:percent"
    jt.pop("text_representation", None)


def data_note(line: str) -> str | None:
    """What a line printed by ``course_utils.data.Dataset.note()`` says about the data that ran, or None."""
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


def _vector_unit() -> str:
    """The widest vector instructions of this CPU, which decide the kernels the libraries pick
    (``tools/rounding.py``): "AVX-512", "AVX2", "AVX", or the architecture's name."""
    import platform

    from tools import rounding

    flags = rounding.cpu_flags()
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            return name
    return platform.machine() or "unknown CPU"


def _data_lines(nb) -> list[str]:
    found: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain", "")
            for line in (text if isinstance(text, str) else "".join(text)).splitlines():
                entry = data_note(line.strip().strip("'\""))
                if entry and entry not in found:
                    found.append(entry)
    return found


def execute(py: Path) -> dict:
    """Execute ``py`` in a fresh kernel and write its .ipynb with outputs and an execution record."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = jupytext.read(py)
    _finalise_metadata(nb)
    env_before = dict(os.environ)
    layout.notebook_environment()
    client = NotebookClient(nb, timeout=EXEC_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(py).parent)}}, record_timing=False)
    print(f"[dev] executing {py.relative_to(layout.ROOT) if py.is_relative_to(layout.ROOT) else py} ...", flush=True)
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
    record = {
        "code_sha256": staleness.code_hash(nb),
        "data": _data_lines(nb),
        "deps_sha256": staleness.deps_hash(py, nb),
        "status": status,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "executed": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{os.cpu_count()} CPU cores ({_vector_unit()}), {'CUDA' if _has_cuda() else 'no GPU'}",
    }
    if error:
        record["error"] = error
    old = py.with_suffix(".ipynb")
    if old.exists():  # the tolerance measurement stays with the notebook; a test says when it is stale
        old_nb = jupytext.read(old)
        measurement = old_nb.metadata.get(layout.META_KEY, {}).get("measurement")
        if measurement:
            record["measurement"] = measurement
        if len(old_nb.cells) == len(nb.cells):
            for new_cell, old_cell in zip(nb.cells, old_nb.cells):
                if new_cell.source == old_cell.source:
                    _keep_cell_keys(new_cell, old_cell)
    nb.metadata[layout.META_KEY] = record
    jupytext.write(nb, py.with_suffix(".ipynb"))
    print(f"[dev] {py.name}: {status}, wall {wall:.1f} s, kernel CPU {cpu:.1f} s", flush=True)
    return record


def _keep_cell_keys(new_cell, old_cell) -> None:
    for key in KEPT_CELL_KEYS:
        if key in old_cell.metadata:
            new_cell.metadata[key] = old_cell.metadata[key]


def sync_prose(py: Path) -> bool:
    """Bring Markdown and code comments of the .py into the fresh .ipynb, outputs kept. True if changed.

    Call it only for a notebook that is not stale (its code cells differ from the .py in comments at most).
    """
    import jupytext

    source = jupytext.read(py)
    merged = jupytext.read(py.with_suffix(".ipynb"))
    if [(c.cell_type, c.source, c.metadata) for c in source.cells] == \
            [(c.cell_type, c.source, {k: v for k, v in c.metadata.items() if k not in KEPT_CELL_KEYS})
             for c in merged.cells]:
        return False
    code_cells = iter(c for c in merged.cells if c.cell_type == "code")
    new_cells = []
    for cell in source.cells:
        if cell.cell_type == "code":
            old = next(code_cells)
            kept = {k: old.metadata[k] for k in KEPT_CELL_KEYS if k in old.metadata}
            old.source, old.metadata = cell.source, cell.metadata
            old.metadata.update(kept)
            new_cells.append(old)
        else:
            new_cells.append(cell)
    merged.cells = new_cells
    jupytext.write(merged, py.with_suffix(".ipynb"))
    return True
