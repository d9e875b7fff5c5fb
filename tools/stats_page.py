"""The execution-statistics page and the intro's data column, written from the notebooks' execution records.

``python3 dev.py stats`` (and every ``dev.py execute`` and ``dev.py measure``) rewrites

- the part of ``book/execution-statistics.md`` between its two ``stats:`` markers: one row per notebook
  (chapters and parts alike: status, wall and kernel CPU time, date, machine, the data it ran on), and
  how each code cell's output is checked (exact, measured with its tolerance and the spread measured,
  ignored with its reason);
- the last column of every row of ``book/intro.md``'s chapter table whose first cell links notebooks
  (``[...](../notebooks/<stem>.ipynb)``): the data those notebooks last ran on (a row that links the
  parts of a chapter lists the data of all of them).

``tests/test_notebooks.py`` fails when either page says something else than the records.
"""
from __future__ import annotations

import re

from tools import layout, tolerance

STATS_PAGE = layout.ROOT / "book" / "execution-statistics.md"
INTRO_PAGE = layout.ROOT / "book" / "intro.md"
STATS_BEGIN = "<!-- stats:begin (written by `python3 dev.py stats`; do not edit by hand) -->"
STATS_END = "<!-- stats:end -->"
NOTEBOOK_LINK = re.compile(r"\]\(\.\./notebooks/(?P<stem>[^)/]+)\.ipynb\)")


def _record(stem: str) -> dict | None:
    return layout.execution_record(layout.NOTEBOOKS / f"{stem}.ipynb")


def data_cell(records: list[dict | None]) -> str:
    """The data the notebooks of ``records`` ran on, stand-ins in bold."""
    if not records or any(r is None or r.get("data") is None for r in records):
        return "(not recorded)"
    data: list[str] = []
    for rec in records:
        data += [d for d in rec["data"] if d not in data]
    return "; ".join(f"**{d}**" if d.startswith("STAND-IN") else d for d in data) or "generated in the chapter"


def stats_table() -> str:
    rows = [
        "| notebook | status | wall time (s) | kernel CPU time (s) | executed | machine | data it ran on |",
        "|---|---|---:|---:|---|---|---|",
    ]
    total_wall = total_cpu = 0.0
    for py in layout.chapter_sources():
        rec = _record(py.stem)
        link = f"[{py.stem}](../notebooks/{py.stem}.ipynb)"
        if rec is None:
            rows.append(f"| {link} | not executed | | | | | |")
            continue
        total_wall += rec.get("wall_seconds", 0.0)
        total_cpu += rec.get("cpu_seconds", 0.0)
        rows.append(
            f"| {link} | {rec.get('status', 'unknown')} | {rec.get('wall_seconds', '')} | {rec.get('cpu_seconds', '')} | "
            f"{rec.get('executed', '')} | {rec.get('machine', '')} | {data_cell([rec])} |"
        )
    rows.append(f"| **all notebooks** | | **{total_wall:.1f}** | **{total_cpu:.1f}** | | | |")
    return "\n".join(rows) + "\n" + "\n" + checks_table()


def _cell_label(cell) -> str:
    """A short name for a code cell on the statistics page: its first comment, else its first line."""
    lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
    comment = next((ln.lstrip("# ") for ln in lines if ln.startswith("#")), None)
    text = comment or (lines[0] if lines else "(empty)")
    text = text.replace("|", "/").replace("`", "'")
    return text[:60] + ("..." if len(text) > 60 else "")


def _fmt(v) -> str:
    return "none" if v is None else f"{v:.3g}"


def checks_table() -> str:
    """How each notebook's outputs are compared by `dev.py test`: exact, measured (tolerance), ignored (why)."""
    import jupytext

    rows = [
        "**How the outputs are checked.** `python3 dev.py test` re-executes every notebook and compares each "
        "code cell's output with the stored one: *exact* cells as text; *measured* cells (numbers that come "
        "from training) token by token, the text exactly and every number within its tolerance, measured by "
        "`python3 dev.py measure` over the runs listed (other machines' kernels and other seeds) as the largest "
        "deviation among the numbers of its line printed to the same precision, times the margin; *ignored* "
        "cells not at all, for the reason given (what the text draws from them is checked in the notebook).",
        "",
        "| notebook | cell | kind | tolerance (abs, rel) | largest deviation measured (abs, rel) | over the runs |",
        "|---|---:|---|---|---|---|",
    ]
    for py in layout.chapter_sources():
        ipynb = py.with_suffix(".ipynb")
        if not ipynb.exists():
            continue
        nb = jupytext.read(ipynb)
        meas = nb.metadata.get(layout.META_KEY, {}).get("measurement", {})
        runs = f"{len(meas.get('runs', []))} runs ({', '.join(meas.get('runs', []))}), margin {meas.get('margin')}"
        exact = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.get("outputs"):
                continue
            tags = cell.metadata.get("tags", [])
            if tolerance.MEASURED_TAG in tags:
                tol = cell.metadata.get(tolerance.TOLERANCE_KEY) or {}
                spread = meas.get("cells", {}).get(str(i), {})
                bounds = [b for rows_ in (cell.metadata.get(tolerance.NUMBERS_KEY) or {}).values()
                          for row in rows_ if row for b in row]
                per_number = (f"; per number {min(bounds):.3g} to {max(bounds):.3g}"
                              if len(bounds) > 1 and min(bounds) < max(bounds) else "")
                rows.append(
                    f"| {py.stem} | {i} {_cell_label(cell)} | measured | {_fmt(tol.get('abs'))}, {_fmt(tol.get('rel'))}"
                    f"{per_number} | {_fmt(spread.get('abs'))}, {_fmt(spread.get('rel'))} | "
                    f"{runs if meas else 'not measured'} |"
                )
            elif tolerance.IGNORED_TAG in tags:
                why = str(cell.metadata.get("ignore_reason", "(no reason given)")).replace("|", "/")
                rows.append(f"| {py.stem} | {i} {_cell_label(cell)} | ignored | | | {why} |")
            else:
                exact += 1
        rows.append(f"| {py.stem} | all others | exact: {exact} cells | | | |")
    return "\n".join(rows) + "\n"


def intro_with_data(text: str) -> str:
    """The intro page with the last column of every table row whose first cell links notebooks set to the
    data they last ran on."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        cells = line.rstrip().rstrip("|").split(" | ")
        stems = NOTEBOOK_LINK.findall(cells[0]) if line.startswith("| ") and len(cells) > 1 else []
        if not stems:
            continue
        cells[-1] = data_cell([_record(stem) for stem in stems])
        lines[i] = " | ".join(cells) + " |"
    return "\n".join(lines)


def write_stats() -> None:
    INTRO_PAGE.write_text(intro_with_data(INTRO_PAGE.read_text()))
    text = STATS_PAGE.read_text()
    head, _, rest = text.partition(STATS_BEGIN)
    _, _, tail = rest.partition(STATS_END)
    STATS_PAGE.write_text(f"{head}{STATS_BEGIN}\n\n{stats_table()}\n{STATS_END}{tail}")
