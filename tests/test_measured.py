"""The comparison of measured cells (tools/measured.py) and its nbval plugin (tools/nbval_measured.py)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import measured

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, skeleton, values",
    [
        ("loss 0.352, accuracy 86.3%", "loss \u2980, accuracy \u2980%", [0.352, 86.3]),
        ("lr 1e-3 and 2.5E+02", "lr \u2980 and \u2980", [1e-3, 250.0]),
        ("5,400 images, [600, 600]", "\u2980 images, [\u2980, \u2980]", [5400, 600, 600]),
        ("ch05 has 4x128 and x2", "ch05 has \u2980x128 and x2", [4]),
        ("range 1.5-1.7 and -0.25", "range \u2980-\u2980 and \u2980", [1.5, 1.7, -0.25]),
        ("a  b\t c   \nnext  ", "a b c\nnext", []),
        ("nan inf", "nan inf", []),
    ],
)
def test_tokenize(text, skeleton, values):
    skel, numbers = measured.tokenize(text)
    assert skel == skeleton
    assert [n.value for n in numbers] == pytest.approx(values)


def test_units_of_the_last_printed_digit():
    _, numbers = measured.tokenize("0.0 12 3.25 1.5e-03 7.")
    assert [n.unit for n in numbers] == pytest.approx([0.1, 1.0, 0.01, 1e-4, 1.0])


def test_compare_accepts_numbers_within_both_bounds_and_rejects_the_rest():
    ref = "val loss 0.352  val acc 86.3%"
    tol = {"abs": 0.5, "rel": 0.05}
    assert measured.compare(ref, "val loss 0.366  val acc 86.1%", tol) == []
    # the loss moved 8 %: inside abs, outside rel
    assert measured.compare(ref, "val loss 0.380 val acc 86.3%", tol)
    # the accuracy moved 0.7 points: inside rel (5 % of 86.3), outside abs
    assert measured.compare(ref, "val loss 0.352 val acc 85.6%", tol)
    # a zero may move by one printed unit under rel, not more
    assert measured.compare("dead 0.0", "dead 0.1", {"rel": 0.1}) == []
    assert measured.compare("dead 0.0", "dead 0.2", {"rel": 0.1})
    assert measured.compare("x 1.0", "x nan", {"abs": 1.0})


def test_compare_requires_the_same_text_and_table_layout():
    tol = {"abs": 10.0}
    assert measured.compare("best: relu 86.3", "best: tanh 86.3", tol)
    assert measured.compare("a 1\nb 2", "a 1", tol)
    assert measured.compare("a 1 2", "a 1", tol)
    # realignment of a table column is not a difference
    assert measured.compare("lr    loss\n0.1   9.9\n1.0   9.8", "lr loss\n0.1 10.1\n1.0  9.7", tol) == []


def test_deviations_are_what_compare_needs():
    ref, new = "a 0.352 b 86.3 c 0.0", "a 0.366 b 86.1 c 0.0"
    d_abs, d_rel = measured.deviations(ref, new)
    assert d_abs == pytest.approx(0.2)
    assert d_rel == pytest.approx(0.014 / 0.352)
    assert measured.compare(ref, new, {"abs": d_abs, "rel": d_rel}) == []
    assert measured.compare(ref, new, {"abs": d_abs * 0.9, "rel": d_rel}) != []
    assert measured.compare(ref, new, {"abs": d_abs, "rel": d_rel * 0.9}) != []
    assert measured.deviations("a 1", "b 1") is None
    assert math.isinf(measured.deviations("z 0.0", "z 0.5")[1])


def _notebook(tmp_path, tags, tolerance, stored):
    """A one-cell notebook printing NEW_VALUE from the environment, with ``stored`` as its stored output."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell('import os\nprint("val loss", os.environ["NEW_VALUE"], "acc 86.3%")')
    cell.metadata["tags"] = tags
    if tolerance is not None:
        cell.metadata["tolerance"] = tolerance
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"val loss {stored} acc 86.3%\n")]
    nb.cells = [cell]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    "tags, tolerance, new_value, passes",
    [
        ([], None, "0.352", True),  # exact cell, same text
        ([], None, "0.353", False),  # exact cell: any difference fails
        (["nbval-measured"], {"abs": 0.02, "rel": 0.1}, "0.366", True),
        (["nbval-measured"], {"abs": 0.02, "rel": 0.1}, "0.380", False),
        (["nbval-measured"], None, "0.352", False),  # tagged without a tolerance: fails, says why
        (["nbval-ignore-output"], None, "99", True),
    ],
)
def test_plugin_in_a_real_nbval_run(tmp_path, tags, tolerance, new_value, passes):
    path = _notebook(tmp_path, tags, tolerance, "0.352")
    env = dict(os.environ, NEW_VALUE=new_value, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tools.nbval_measured", "--nbval", "-q",
         "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(tmp_path), str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert (result.returncode == 0) == passes, result.stdout[-3000:] + result.stderr[-2000:]
    if tags == ["nbval-measured"] and tolerance is None:
        assert "declares no tolerance" in result.stdout


def test_a_tolerance_per_line_tightens_the_cell_tolerance():
    ref = "stable 86.3\nlottery 10.0"
    new = "stable 87.3\nlottery 60.0"
    cell = {"abs": 60.0}
    assert measured.compare(ref, new, cell) == []
    lines = [[0.4, None], [60.0, None]]
    problems = measured.compare(ref, new, cell, lines)
    assert len(problems) == 1 and "line 1" in problems[0]
    assert measured.compare(ref, "stable 86.5\nlottery 60.0", cell, lines) == []
    # one unit of the last printed digit is always allowed
    assert measured.compare(ref, "stable 86.4\nlottery 10.0", {"abs": 0.0}, [[0.0, 0.0], None]) == []
    by_line = measured.deviations_by_line(ref, new)
    assert by_line[0][0] == pytest.approx(1.0) and by_line[1][0] == pytest.approx(50.0)
