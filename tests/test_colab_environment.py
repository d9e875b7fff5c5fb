"""The Colab environment: every module a chapter imports is in Colab or installed by its setup cell.

tools/colab_check.py reads, at test time, every chapter's code cells and the course_utils modules
they use (transitively), and checks them against the declared Colab set
(colab/colab-environment.txt) and the chapter's extra `chNN` in pyproject.toml. The second half
shows on copies that the check fails when a package leaves the declared set, when a chapter
imports something undeclared, or when an extra would replace what Colab ships.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tools import colab_check as cc
from tools import layout

ROOT = layout.ROOT

OUTSIDE = "reaches outside the notebook's folder"


@pytest.fixture(scope="module")
def result():
    return cc.static_check(ROOT)


def test_declared_colab_set_names_its_source_and_date():
    declared = cc.read_declared(ROOT / cc.DECLARED)
    assert "googlecolab/backend-info" in declared.header["source"]
    assert re.match(r"\d{4}-\d{2}-\d{2}", declared.header["read"])
    assert "torch" in declared.versions and "numpy" in declared.versions
    # the simulation installs Colab's versions except where the file says why not
    assert "numpy==" + declared.versions["numpy"] in declared.simulation_specs()
    assert all(declared.notes[k] for k in declared.simulate), "every `# simulate:` override gives its reason"


def test_every_chapter_is_checked(result):
    problems, reports = result
    chapters = [layout.chapter(p.stem) for p in layout.chapter_sources()]
    assert [r.chapter for r in reports] == chapters
    assert all(r.from_colab for r in reports), "every chapter imports something from Colab's packages"


def test_every_import_is_declared_or_installed_by_the_setup_cell(result):
    problems, _ = result
    problems = [p for p in problems if OUTSIDE not in p]
    assert not problems, "\n".join(problems)


def test_no_chapter_reaches_outside_its_folder(result):
    """In Colab the notebook is alone in /content: no ../train.py, no ../shared/data."""
    problems, _ = result
    problems = [p for p in problems if OUTSIDE in p]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the check can fail
def _copy(tmp_path: Path, chapters=("05", "07")) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "course_utils", root / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "notebooks").mkdir()
    for py in layout.chapter_sources():
        if layout.chapter(py.stem) in chapters:
            shutil.copy2(py, root / "notebooks" / py.name)
    (root / "colab").mkdir()
    shutil.copy2(ROOT / cc.DECLARED, root / cc.DECLARED)
    text = (ROOT / "pyproject.toml").read_text()
    # keep only the extras of the copied chapters
    text = re.sub(r"^ch(\d\d) = .*\n", lambda m: m.group(0) if m.group(1) in chapters else "", text, flags=re.M)
    (root / "pyproject.toml").write_text(text)
    return root


def _import_problems(root: Path) -> list[str]:
    problems, _ = cc.static_check(root)
    return [p for p in problems if OUTSIDE not in p]


def test_the_copy_passes(tmp_path):
    assert _import_problems(_copy(tmp_path)) == []


def test_removing_a_package_from_the_declared_set_fails(tmp_path):
    root = _copy(tmp_path)
    path = root / cc.DECLARED
    path.write_text(re.sub(r"^xgboost==.*\n", "", path.read_text(), flags=re.M))
    problems = _import_problems(root)
    assert any(re.search(r"notebooks/07_\w+\.py: imports `xgboost`", p) for p in problems), problems


def test_an_undeclared_import_in_a_chapter_fails(tmp_path):
    root = _copy(tmp_path)
    py = next((root / "notebooks").glob("07_*.py"))
    py.write_text(py.read_text() + "\n# %%\nimport polars_undeclared_xyz\n")
    problems = _import_problems(root)
    assert any("imports `polars_undeclared_xyz`" in p for p in problems), problems


def test_an_import_through_course_utils_needs_the_chapters_extra(tmp_path):
    root = _copy(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('ch05 = ["course-utils[sweeps]"]', "ch05 = []"))
    problems = _import_problems(root)
    assert any(re.search(r"notebooks/05_\w+\.py: imports `optuna`", p) and "through course_utils." in p
               for p in problems), problems


def test_an_extra_must_not_replace_what_colab_ships(tmp_path):
    root = _copy(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(re.sub(r"^ch07 = \[\]", 'ch07 = ["torch>=2.1", "xgboost==3.0", "scipy>=1.10"]',
                                pyproject.read_text(), flags=re.M))
    problems = _import_problems(root)
    assert any("extra ch07 names torch" in p for p in problems), problems
    assert any("installs xgboost==3.0, but Colab ships xgboost==" in p for p in problems), problems
    assert any("pins or caps xgboost==3.0" in p for p in problems), problems
    # a lower bound that Colab's version satisfies installs nothing there: not a problem
    assert not any("scipy" in p for p in problems), problems


def test_course_utils_dependencies_must_accept_colabs_versions(tmp_path):
    root = _copy(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"numpy>=1.24"', '"numpy>=99"'))
    problems = _import_problems(root)
    assert any("requires numpy>=99, but Colab has numpy==" in p for p in problems), problems


def test_a_chapter_must_install_its_own_extra(tmp_path):
    root = _copy(tmp_path)
    py = next((root / "notebooks").glob("05_*.py"))
    py.write_text(py.read_text().replace("course-utils[ch05]", "course-utils[ch07]"))
    problems = _import_problems(root)
    assert any("must install `course-utils[ch05]`" in p for p in problems), problems


def test_a_malformed_declared_file_is_named(tmp_path):
    root = _copy(tmp_path)
    path = root / cc.DECLARED
    path.write_text(path.read_text() + "numpy>=2\n")
    problems = _import_problems(root)
    assert len(problems) == 1 and "colab-environment.txt" in problems[0] and "numpy>=2" in problems[0], problems


def test_reaching_outside_the_folder_is_found(tmp_path):
    root = _copy(tmp_path)
    py = next((root / "notebooks").glob("07_*.py"))
    py.write_text(py.read_text() + '\n# %%\nopen("../shared/data/x")\n')
    problems, _ = cc.static_check(root)
    assert any(OUTSIDE in p and re.search(r"notebooks/07_\w+\.py", p) for p in problems), problems
