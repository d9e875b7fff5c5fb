"""Every chapter (or part) is one lecture in a teacher's voice (issue 21; rules in tools/lecture.py).

At most about 3,500 words of prose and 450 lines of visible code, no visible code cell over 40 lines
(counted as the team's before-stop hook counts); no talk of the book's machinery in the prose (asserted,
nbval, tolerances, rounding profiles, "the page cannot build", BLAS kernels, the tests, caches and
hashes); checks out of the lecture's way (a cell that only checks is hidden and prints one line starting
``Checked: ``).
"""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

from tools import layout, lecture

SOURCES = layout.chapter_sources()


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_one_lecture_long(py):
    problems = lecture.size(jupytext.read(py)).problems()
    assert not problems, f"{py.name} is longer than one lecture:\n" + "\n".join(problems)


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_no_maintainer_talk_in_the_prose(py):
    found = lecture.maintainer_talk(jupytext.read(py), layout.chapter(py.stem))
    assert not found, (f"{py.name}: the prose talks about the book's machinery, not about neural networks "
                       "(say it on the statistics page, in CONTRIBUTING.md or in a docstring):\n" + "\n".join(found))


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_checks_stay_out_of_the_lectures_way(py):
    ipynb = py.with_suffix(".ipynb")
    nb = jupytext.read(ipynb) if ipynb.exists() else jupytext.read(py)
    problems = lecture.check_cells(nb, with_outputs=ipynb.exists())
    assert not problems, f"{py.name}:\n" + "\n".join(problems)


# --------------------------------------------------------------------------- the rules themselves
def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _code(source, tags=(), stdout=None):
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)})
    if stdout is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stdout)]
    return cell


def test_size_counts_as_the_hook_does():
    md = nbformat.v4.new_markdown_cell("Two words $x + y$ and $$\\sum_i a_i$$\n```python\nignored code words\n```\n"
                                       "```{note}\ndirective words count\n```")
    visible = _code("\n".join(f"x{i} = {i}" for i in range(41)) + "\n\n\n")
    hidden = _code("\n".join(f"y{i} = {i}" for i in range(100)), tags=["hide-input"])
    size = lecture.size(_nb(md, visible, hidden))
    # "Two words and" + "directive words count" (the directive fence line's "note" too)
    assert size.words == len("Two words and note directive words count".split())
    assert size.code_lines == 41 and size.long_cells == [(1, 41)]
    assert any("41 visible code lines" in p for p in size.problems())


@pytest.mark.parametrize("text, chapter, flagged", [
    ("Every claim the text makes is asserted by that code, so the page cannot build.", "04", True),
    ("The outputs agree within the tolerance of nbval.", "05", True),
    ("Under another rounding profile the loss moves.", "06", True),
    ("The checks under the figure assert each statement.", "04", True),
    ("The timing cell prints numbers that describe the machine that built the page.", "04", True),
    ("Another CPU's BLAS kernels round differently.", "07", True),
    ("The weights are cached under a hash of their configuration.", "07", True),
    ("Each file is checked against its SHA-256 and kept in the cache.", "00", False),  # chapter 0's subject
    ("The loss falls, and the test accuracy rises to 86%; we build the network layer by layer.", "05", False),
    ("Backpropagation never builds the Jacobian; the gradient check agrees with torch.autograd.", "02", False),
    ("The measured slopes wander because of cache effects and the CPU cache.", "02", False),
])
def test_maintainer_talk_is_found(text, chapter, flagged):
    found = lecture.maintainer_talk(_nb(nbformat.v4.new_markdown_cell(text)), chapter)
    assert bool(found) == flagged, found


def test_checks_in_the_way_are_found():
    compute = _code("g = grad(x)\nassert abs(g - 1) < 1e-9\nprint(g)", stdout="1.0\n")
    only_checks = _code("assert a > b\nfor s in seeds:\n    np.testing.assert_allclose(x[s], y[s])")
    hidden_ok = _code("assert a > b", tags=["remove-input"], stdout="Checked: a is above b on every seed.\n")
    hidden_silent = _code("assert a > b", tags=["remove-input"], stdout="")
    problems = lecture.check_cells(_nb(compute, only_checks, hidden_ok, hidden_silent))
    assert [p.split(":")[0] for p in problems] == ["cell 1", "cell 3"]


def test_a_hidden_cell_shows_nothing_but_its_report():
    """The site wraps a remove-input cell's output as a sentence (book.css): no table may hide there."""
    report = _code("x = 1", tags=["remove-input"], stdout="Checked: one.\n")
    table_first = _code("x = 1", tags=["remove-input"], stdout="a   b\n1   2\nChecked: one.\n")
    assert lecture.check_cells(_nb(report)) == []
    problems = lecture.check_cells(_nb(report, table_first))
    assert len(problems) == 1 and problems[0].startswith("cell 1: a remove-input cell shows only")
    with_figure = _code("x = 1", tags=["remove-input"], stdout="Checked: one.\n")
    with_figure.outputs.append(nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"}))
    assert "display_data" in lecture.check_cells(_nb(with_figure))[0]


def test_the_site_wraps_exactly_those_reports():
    css = (Path(lecture.__file__).resolve().parents[1] / "book" / "_static" / "book.css").read_text()
    assert "div.cell.tag_remove-input div.output.stream pre { white-space: pre-wrap; }" in css
