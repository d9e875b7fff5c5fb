"""Every measured-looking number in a chapter's prose is shown by an output (or set in the code) of its section.

The rules, and how to state a number that is not read off an output, are in tools/prose_numbers.py.
"""
from __future__ import annotations

import jupytext
import nbformat
import pytest

from tools import layout, prose_numbers

SOURCES = layout.chapter_sources()


@pytest.mark.parametrize("py", SOURCES, ids=lambda p: p.stem)
def test_prose_numbers_are_what_the_outputs_show(py):
    assert py.with_suffix(".ipynb").exists(), f"{py.name} has no executed .ipynb: run `python3 dev.py execute {py}`"
    problems = prose_numbers.check(jupytext.read(py.with_suffix(".ipynb")))
    assert not problems, f"{py.name}: numbers in the text that no output of their section shows:\n" + "\n".join(
        map(str, problems))


def _nb(markdown: str, printed: str, code: str = "print(x)"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(code)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells = [nbformat.v4.new_markdown_cell("## 1. A section"), cell, nbformat.v4.new_markdown_cell(markdown)]
    return nb


@pytest.mark.parametrize(
    "markdown, printed, ok",
    [
        ("The loss falls to 0.352.", "loss 0.35214", True),
        ("The loss falls to 0.353.", "loss 0.35214", False),  # a stale digit
        ("Accuracy 86.3%.", "accuracy 0.8634", True),  # a fraction shown as a percentage
        ("Accuracy 86.3 %.", "accuracy 86.3%", True),
        ("Accuracy 86.4%.", "accuracy 86.3%", False),
        ("Between 1.5 and 1.7 points.", "1.5 1.9", False),  # a range whose end is not shown
        ("It needs 204 steps.", "steps: 204", True),
        ("It needs 205 steps.", "steps: 204", False),
        ("The limit $2/\\lambda = 8.13$ in math is a formula.", "nothing", True),
        ("Inline `lr=0.37` is code.", "nothing", True),
        ("SHA-256 and ResNet-18 and 28×28 are names and sizes.", "nothing", True),
        ("Chapter 5 has 3 layers.", "nothing", True),  # one-digit integers are not checked
        ("Published in 2017 {cite}`x2017`.", "nothing", True),
        ("Chapters [4.1](04_1_a.ipynb) and [4.2](04_2_b.ipynb) come first.", "nothing", True),  # names
        ("Chapters [4.1](04_1_a.ipynb) and [4.2](04_2_b.ipynb) reach 41.5%.", "nothing", False),
    ],
)
def test_the_rules(markdown, printed, ok):
    assert (prose_numbers.check(_nb(markdown, printed)) == []) == ok


def test_scope_is_the_section_except_in_the_summary():
    nb = _nb("Accuracy 86.3%.", "accuracy 86.3%")
    nb.cells.append(nbformat.v4.new_markdown_cell("## 2. Another section\n\nAgain 86.3%."))
    assert len(prose_numbers.check(nb)) == 1
    nb.cells[-1].source = "## Summary\n\nAgain 86.3%."
    assert prose_numbers.check(nb) == []
