"""Each notebook pair is consistent: the .ipynb matches its .py, carries fresh outputs, and is in the book.

nbval (run by the same `pytest` call, see pyproject.toml) re-executes every .ipynb and compares
outputs; these tests catch what nbval cannot: a .py edited without re-executing, outputs made
from other code, a chapter missing from the table of contents, a stale statistics page.
"""
from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml

from tools import layout, staleness, stats_page, tolerance

ROOT = layout.ROOT
SOURCES = layout.chapter_sources()

SETUP_CELL = """# Colab setup: install course_utils and what this chapter needs (a no-op elsewhere).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    source = os.environ.get(
        "COURSE_BOOK_SOURCE",
        "git+{url}@{branch}",
    )
    package = f"course-utils[ch{chapter}] @ {{source}}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)"""


def config():
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_there_are_notebooks():
    assert SOURCES, "no notebooks/NN_slug.py (or NN_P_slug.py) found"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_ipynb_matches_its_py(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{py.name} has no paired {ipynb.name}: run `python3 dev.py execute {py.relative_to(ROOT)}`"
    source, stored = jupytext.read(py), jupytext.read(ipynb)
    src_cells = [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in source.cells]
    nb_cells = [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in stored.cells]
    for i, (a, b) in enumerate(zip(src_cells, nb_cells)):
        assert a == b, f"{ipynb.name}: cell {i} differs from {py.name} (run `python3 dev.py build` or `dev.py execute`)"
    assert len(src_cells) == len(nb_cells), f"{ipynb.name} has {len(nb_cells)} cells, {py.name} has {len(src_cells)}"
    assert source.metadata.get("kernelspec", {}).get("name") == "python3", f"{py.name}: kernel must be python3"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_outputs_are_fresh_and_error_free(py):
    """The outputs were made by the notebook's code and the code it runs, as they are now (tools/staleness.py)."""
    nb = jupytext.read(py.with_suffix(".ipynb"))
    record = nb.metadata.get(layout.META_KEY, {})
    assert record.get("status") == "ok", f"{py.name}: last execution status {record.get('status')!r}"
    now = staleness.hashes(py)
    assert record.get("code_sha256") == now["code_sha256"], (
        f"{py.name}: the stored outputs were produced by other code; re-execute it (`python3 dev.py execute {py.relative_to(ROOT)}`)")
    assert record.get("deps_sha256") == now["deps_sha256"], (
        f"{py.name}: the code it runs changed since its outputs were made ("
        + ", ".join(p.relative_to(ROOT).as_posix() for p in staleness.dependencies(py))
        + f"); re-execute it (`python3 dev.py execute {py.relative_to(ROOT)}`)")
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.get("execution_count") is not None for c in code), f"{py.name}: unexecuted code cells"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{py.name}: {len(errors)} error outputs"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_chapter_anatomy(py):
    """Setup cell verbatim (the chapter's extra chNN; parts share it), a parameters cell, a title with its number."""
    nb = jupytext.read(py)
    repo = config()["repository"]
    expected = SETUP_CELL.format(url=repo["url"], branch=repo["branch"], chapter=layout.chapter(py.stem))
    setup = [c for c in nb.cells if c.cell_type == "code" and "remove-cell" in c.metadata.get("tags", [])]
    assert setup and setup[0].source.strip() == expected, f"{py.name}: the Colab setup cell must read exactly:\n{expected}"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), f"{py.name}: no cell tagged 'parameters'"
    first = nb.cells[0]
    title = f"# Chapter {layout.number(py.stem)}: "
    assert first.cell_type == "markdown" and first.source.startswith(title), (
        f"{py.name}: must open with '{title}...' (a part N.P of chapter N is notebooks/NN_P_slug)")


WHOLE_LECTURE = {
    "a **Learning objectives** list": r"\*\*Learning objectives",
    "the notation and glossary line": r"\{ref\}`notation`[^\n]*\{ref\}`glossary`",
    "a `## Summary` section": r"^## Summary\b",
    "a `## Exercises` section": r"^## Exercises\b",
    "an exercise": r"^\s*(?:`{3,}|:{3,})\{exercise\}",
    "a `## References` section": r"^## References\b",
    "a bibliography of the works it cites (`:filter: docname in docnames`)": r":filter:\s*docname in docnames",
}


def _keyprefix(nb) -> str | None:
    found = re.findall(r"^:keyprefix:\s*(\S+)", "\n".join(c.source for c in nb.cells if c.cell_type == "markdown"), re.M)
    return found[0] if found else None


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_every_notebook_is_a_whole_lecture(py):
    """Issue 21: every chapter and every part has its objectives, summary, exercises and references, and runs
    on its own (its imports cell seeds everything with `course_utils.runtime.init(SEED)`)."""
    nb = jupytext.read(py)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = [what for what, pattern in WHOLE_LECTURE.items() if not re.search(pattern, markdown, re.M)]
    if not any(c.cell_type == "code" and re.search(r"runtime\.init\(SEED\)", c.source) for c in nb.cells):
        missing.append("an imports cell with `info = course_utils.runtime.init(SEED)`")
    if _keyprefix(nb) is None:
        missing.append("a `:keyprefix:` on its bibliography")
    assert not missing, f"{py.name} lacks " + "; ".join(missing)


def test_bibliography_key_prefixes_are_unique():
    """Each chapter or part cites under a prefix of its own (`ch04-1-`), so its reference list is its own."""
    prefixes = {}
    for py in SOURCES:
        prefixes.setdefault(_keyprefix(jupytext.read(py)), []).append(py.stem)
    shared = {p: stems for p, stems in prefixes.items() if p is not None and len(stems) > 1}
    assert not shared, f"the same :keyprefix: in several notebooks: {shared}"


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_ignored_outputs_are_only_tagged_where_they_vary(py):
    """nbval-ignore-output is for measured times and the like; keep a visible reason next to it."""
    nb = jupytext.read(py)
    tagged = [c for c in nb.cells if "nbval-ignore-output" in c.metadata.get("tags", [])]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(tagged) <= max(2, len(code) // 5), f"{py.name}: {len(tagged)} of {len(code)} cells skip output checks"


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*(notebooks/\S+)", toc))
    assert {f"notebooks/{p.stem}" for p in SOURCES} <= listed


def test_execution_statistics_page_is_current():
    page = stats_page.STATS_PAGE.read_text()
    assert stats_page.stats_table() in page, "book/execution-statistics.md is stale: run `python3 dev.py stats`"
    intro = stats_page.INTRO_PAGE.read_text()
    assert stats_page.intro_with_data(intro) == intro, (
        "the intro's table says other data than the chapters last ran on: run `python3 dev.py stats`")


def test_colab_launch_button_configured_for_main():
    cfg = config()
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert cfg["repository"]["branch"] == "main"
    assert cfg["execute"]["execute_notebooks"] == "off"
    import course_utils

    assert course_utils.REPOSITORY == cfg["repository"]["url"]


def test_chapter_code_is_formatted_to_the_text_column():
    """ruff format at 88 characters (pyproject.toml), and no code line longer than that.

    The site's text column shows about 88 characters of code; a longer line is cut off
    sideways. ruff does not split long strings or comments, so those are checked here too.
    """
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run([ruff, "format", "--check", "--diff", *map(str, SOURCES)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"run `ruff format notebooks/`:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
    too_long = []
    for py in SOURCES:
        for cell in jupytext.read(py).cells:
            if cell.cell_type != "code":
                continue
            too_long += [f"{py.name}: {line[:60]}... ({len(line)} chars)"
                         for line in cell.source.splitlines() if len(line) > 88]
    assert not too_long, "code lines wider than the text column (88 characters):\n" + "\n".join(too_long)


MEASURED, IGNORED = tolerance.MEASURED_TAG, tolerance.IGNORED_TAG


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_measured_and_ignored_cells_are_declared(py):
    """A measured cell declares its tolerance; an ignored cell says why; nothing else carries either."""
    problems = []
    for i, cell in enumerate(jupytext.read(py).cells):
        tags = cell.metadata.get("tags", [])
        tol = cell.metadata.get(tolerance.TOLERANCE_KEY)
        if MEASURED in tags and IGNORED in tags:
            problems.append(f"cell {i}: both {MEASURED} and {IGNORED}")
        if MEASURED in tags:
            ok = (isinstance(tol, dict) and set(tol) <= {"abs", "rel"} and
                  any(isinstance(tol.get(k), (int, float)) and tol[k] >= 0 for k in ("abs", "rel")))
            if not ok:
                problems.append(f"cell {i}: tagged {MEASURED} without a tolerance "
                                f"(run `python3 dev.py measure {py.relative_to(ROOT)}`): {tol!r}")
        elif tol is not None:
            problems.append(f"cell {i}: a tolerance on a cell not tagged {MEASURED}")
        if IGNORED in tags and not str(cell.metadata.get("ignore_reason", "")).strip():
            problems.append(f"cell {i}: tagged {IGNORED} without an ignore_reason (what varies, and why)")
    assert not problems, f"{py.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_tolerances_were_measured_on_this_code(py):
    """Tolerances come from `dev.py measure` on the outputs as they are (the same two hashes as the
    execution record: the notebook's code and the code it runs), never from a keyboard."""
    source = jupytext.read(py)
    measured = {i: c.metadata.get(tolerance.TOLERANCE_KEY) for i, c in enumerate(source.cells)
                if MEASURED in c.metadata.get("tags", [])}
    if not measured:
        return
    stored_nb = jupytext.read(py.with_suffix(".ipynb"))
    record = stored_nb.metadata.get(layout.META_KEY, {}).get("measurement")
    hint = f"run `python3 dev.py measure {py.relative_to(ROOT)}`"
    assert record, f"{py.name}: its measured cells' tolerances were never measured; {hint}"
    now = staleness.hashes(py)
    assert record.get("code_sha256") == now["code_sha256"], (
        f"{py.name}: the code changed since its tolerances were measured on {record.get('date')}; {hint}")
    assert record.get("deps_sha256") == now["deps_sha256"], (
        f"{py.name}: the code it runs changed since its tolerances were measured on {record.get('date')}; {hint}")
    written = {int(i): c["tolerance"] for i, c in record.get("cells", {}).items()}
    assert written == measured, f"{py.name}: the tolerances differ from the ones measured; {hint}"
    for i, cell in record.get("cells", {}).items():
        assert stored_nb.cells[int(i)].metadata.get(tolerance.NUMBERS_KEY) == cell.get("numbers"), (
            f"{py.name}: cell {i}'s per-number tolerances differ from the ones measured; {hint}")
