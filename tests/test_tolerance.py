"""The comparison of measured cells (tools/tolerance.py), its nbval plugin (tools/nbval_tolerance.py) and how
tools/measure_tolerances.py turns measured deviations into per-number tolerances."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import measure_tolerances, tolerance

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
    skel, numbers = tolerance.tokenize(text)
    assert skel == skeleton
    assert [n.value for n in numbers] == pytest.approx(values)


def test_units_of_the_last_printed_digit():
    _, numbers = tolerance.tokenize("0.0 12 3.25 1.5e-03 7.")
    assert [n.unit for n in numbers] == pytest.approx([0.1, 1.0, 0.01, 1e-4, 1.0])


def test_compare_accepts_numbers_within_both_bounds_and_rejects_the_rest():
    ref = "val loss 0.352  val acc 86.3%"
    tol = {"abs": 0.5, "rel": 0.05}
    assert tolerance.compare(ref, "val loss 0.366  val acc 86.1%", tol) == []
    # the loss moved 8 %: inside abs, outside rel
    assert tolerance.compare(ref, "val loss 0.380 val acc 86.3%", tol)
    # the accuracy moved 0.7 points: inside rel (5 % of 86.3), outside abs
    assert tolerance.compare(ref, "val loss 0.352 val acc 85.6%", tol)
    # a zero may move by one printed unit under rel, not more
    assert tolerance.compare("dead 0.0", "dead 0.1", {"rel": 0.1}) == []
    assert tolerance.compare("dead 0.0", "dead 0.2", {"rel": 0.1})
    assert tolerance.compare("x 1.0", "x nan", {"abs": 1.0})


def test_compare_requires_the_same_text_and_table_layout():
    tol = {"abs": 10.0}
    assert tolerance.compare("best: relu 86.3", "best: tanh 86.3", tol)
    assert tolerance.compare("a 1\nb 2", "a 1", tol)
    assert tolerance.compare("a 1 2", "a 1", tol)
    # realignment of a table column is not a difference
    assert tolerance.compare("lr    loss\n0.1   9.9\n1.0   9.8", "lr loss\n0.1 10.1\n1.0  9.7", tol) == []


def test_deviations_per_line_and_number():
    ref, new = "a 0.352 b 86.3 c 0.0\nno numbers\nd 5", "a 0.366 b 86.1 c 0.0\nno numbers\nd 5"
    devs = tolerance.deviations(ref, new)
    assert [len(row) for row in devs] == [3, 0, 1]
    (a_abs, a_rel), (b_abs, b_rel), (c_abs, c_rel) = devs[0]
    assert a_abs == pytest.approx(0.014) and a_rel == pytest.approx(0.014 / 0.352)
    assert b_abs == pytest.approx(0.2) and c_abs == 0.0
    assert devs[2] == [(0.0, 0.0)]
    assert tolerance.deviations("a 1", "b 1") is None
    assert tolerance.deviations("x 1.0", "x nan") is None
    assert math.isinf(tolerance.deviations("z 0.0", "z 0.5")[0][0][1])
    assert tolerance.deviations("z 0.0", "z 0.1")[0][0] == (pytest.approx(0.1), 0.0)  # one printed unit
    assert tolerance.units("loss 0.352 acc 86.3%\n\n7") == [[0.001, 0.1], [], [1.0]]


PLUGIN_CASES = [  # (tags, tolerance, value printed now against a stored 0.352, passes)
    ([], None, "0.352", True),  # exact cell, same text
    ([], None, "0.353", False),  # exact cell: any difference fails
    (["nbval-measured"], {"abs": 0.02, "rel": 0.1}, "0.366", True),
    (["nbval-measured"], {"abs": 0.02, "rel": 0.1}, "0.380", False),
    (["nbval-measured"], None, "0.352", False),  # tagged without a tolerance: fails, says why
    (["nbval-ignore-output"], None, "99", True),
]


def test_plugin_in_a_real_nbval_run(tmp_path):
    """One nbval run (one kernel) over a notebook holding every case as a cell, each judged on its own."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for k, (tags, tol, new_value, _) in enumerate(PLUGIN_CASES):
        cell = nbformat.v4.new_code_cell(f'print("val loss", "{new_value}", "acc 86.3%")')
        cell.metadata["tags"] = tags
        if tol is not None:
            cell.metadata["tolerance"] = tol
        cell.execution_count = k + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="val loss 0.352 acc 86.3%\n")]
        nb.cells.append(cell)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tools.nbval_tolerance", "--nbval", "-rA", "-p", "no:cacheprovider",
         "-o", "addopts=", "--rootdir", str(tmp_path), str(path)],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300,
    )
    outcome = {int(cell): status for status, cell in re.findall(r"^(PASSED|FAILED) nb\.ipynb::Cell (\d+)",
                                                                  result.stdout, re.M)}
    assert outcome == {k: "PASSED" if case[3] else "FAILED" for k, case in enumerate(PLUGIN_CASES)}, result.stdout[-3000:]
    assert "declares no tolerance" in result.stdout


def test_per_number_tolerances_replace_the_cells():
    ref = "stable 86.3 loss 0.352\nlottery 10.0"
    new = "stable 87.3 loss 0.352\nlottery 60.0"
    cell = {"abs": 60.0, "rel": None}
    assert tolerance.compare(ref, new, cell) == []
    numbers = [[0.4, 0.01], [60.0]]
    problems = tolerance.compare(ref, new, cell, numbers)
    assert len(problems) == 1 and "line 1" in problems[0]
    assert tolerance.compare(ref, "stable 86.5 loss 0.36\nlottery 60.0", cell, numbers) == []
    assert tolerance.compare(ref, "stable 86.5 loss 0.37\nlottery 60.0", cell, numbers)
    # a number without a measured bound (a line not measured) falls back on the cell's tolerance
    assert tolerance.compare(ref, new, {"abs": 1.0}, [None, [60.0]]) == []
    assert tolerance.compare(ref, new, {"abs": 0.5}, [None, [60.0]])
    # one unit of the last printed digit is always allowed
    assert tolerance.compare(ref, "stable 86.4 loss 0.353\nlottery 10.0", {"abs": 0.0}, [[0.0, 0.0], [0.0]]) == []
    # the cell's relative bound does not tighten a number that has its own bound
    assert tolerance.compare("m 86.2 sd 0.026", "m 86.2 sd 0.013", {"abs": 1.0, "rel": 0.01}, [[0.1, 0.1]]) == []


def _measured_cell(text: str):
    cell = nbformat.v4.new_code_cell("print(x)")
    cell.metadata["tags"] = ["nbval-measured"]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def test_a_spread_gets_at_least_what_the_values_of_its_line_need():
    """The measurement runs saw the sd move by 0.001 only; another machine moves it by 0.013 (issue 23).
    Its bound comes from the values printed beside it to the same precision, not from its own moves."""
    ref = "mean 0.412 (0.390 to 0.431) sd 0.026, accuracy 86.2%\nsteps 960"
    runs = [("a", True, "mean 0.405 (0.383 to 0.427) sd 0.025, accuracy 86.9%\nsteps 960"),
            ("b", True, "mean 0.419 (0.398 to 0.440) sd 0.027, accuracy 85.8%\nsteps 960")]
    ref_nb = nbformat.v4.new_notebook(cells=[_measured_cell(ref)])
    run_nbs = [(label, base, nbformat.v4.new_notebook(cells=[_measured_cell(t)])) for label, base, t in runs]
    errors, spreads = measure_tolerances.compare_runs(ref_nb, run_nbs)
    assert errors == []
    bounds = measure_tolerances.number_tolerances(spreads[0], ref_nb.cells[0], margin=2.0)["stdout/0"]
    # 0.001-numbers: largest deviation 0.009 (the max), times 2; the accuracy (0.1) on its own: 0.7 x 2
    assert bounds == [[0.018, 0.018, 0.018, 0.018, 1.4], [0.0]]
    # the other machine: the sd halves, the values move within what the runs saw
    other = "mean 0.410 (0.391 to 0.429) sd 0.013, accuracy 86.0%\nsteps 960"
    tol = measure_tolerances.cell_tolerance(spreads[0], 2.0)
    assert tolerance.compare(ref, other, tol, bounds) == []
    assert tolerance.compare(ref, "mean 0.450 (0.391 to 0.429) sd 0.013, accuracy 86.0%\nsteps 960", tol, bounds)
    assert tolerance.compare(ref, other.replace("steps 960", "steps 962"), tol, bounds)  # one unit is allowed


def test_a_different_text_in_a_run_is_an_error():
    ref_nb = nbformat.v4.new_notebook(cells=[_measured_cell("best: relu 86.3")])
    runs = [("a", True, nbformat.v4.new_notebook(cells=[_measured_cell("best: tanh 86.1")]))]
    errors, _ = measure_tolerances.compare_runs(ref_nb, runs)
    assert len(errors) == 1 and "the text depends on the run" in errors[0]


def test_round_up_to_two_digits():
    assert [measure_tolerances._round_up(x) for x in (0.0123, 0.018, 4.01, 1100.0, 0.0)] == [0.013, 0.018, 4.1, 1100.0, 0.0]


def test_runs_of_a_measurement():
    assert measure_tolerances.variants(7, ["sandybridge", "nehalem"], 2) == [
        ("sandybridge", None), ("nehalem", None), ("native", 8), ("sandybridge", 9)]
    assert measure_tolerances.variants(0, [], 1) == [("native", 1)]
