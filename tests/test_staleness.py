"""A notebook's staleness hashes (tools/staleness.py) cover its code and the code it runs, nothing else.

A docstring or comment edit changes no hash; a code edit in a module marks stale exactly the notebooks
that run it (directly, through ``course_utils.X``, through the package's own and lazy imports, or
through a script they run); the trainer's command line is not run by chapters that never import it.
"""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import jupytext
import pytest

from tools import imports, layout, staleness


def test_code_text_leaves_out_docstrings_and_comments_only():
    source = textwrap.dedent('''\
        """Module docstring."""
        import os  # why

        def f(x):
            """Docstring
            on two lines."""
            s = "# not a comment"  # a comment
            return x

        class A:
            \'\'\'Class docstring.\'\'\'
            y = "Ünïcode"  # after a non-ASCII string
        ''')
    assert staleness.code_text(source) == (
        'import os\ndef f(x):\n    s = "# not a comment"\n    return x\nclass A:\n    y = "Ünïcode"')
    assert staleness.code_text(source, keep_docs=True).startswith('"""Module docstring."""\nimport os  # why')
    # in a notebook cell a string standing first is displayed, not a docstring
    assert staleness.code_text('"shown"\nx = 1  # c', cell=True) == '"shown"\nx = 1'
    # an IPython magic does not parse: only comment lines go
    assert staleness.code_text("%matplotlib inline\n# c\nx = 1", cell=True) == "%matplotlib inline\nx = 1"


PACKAGE = {
    "__init__.py": '''\
        """The package."""
        import importlib


        def __getattr__(name):
            return importlib.import_module(f"{__name__}.{name}")
        ''',
    "a.py": '''\
        """Module a: imports b lazily."""


        def run():
            from . import b  # only when called

            return b.VALUE
        ''',
    "b.py": 'VALUE = 1  # b\n',
    "c.py": '"""Module c."""\nC = 3\n',
    "d.py": 'from .c import C\nD = C + 1\n',
}
NOTEBOOKS = {
    "01_first": "from course_utils import a\n\nprint(a.run())\n",
    "02_second": "import course_utils\n\nprint(course_utils.c.C)\n",
    "03_third": ('import subprocess\nimport sys\n\nimport course_utils as cu\n\nprint(cu.b.VALUE)\n'
                 'subprocess.run([sys.executable, "../train.py"], check=True)\n'),
    "04_1_source": "import inspect\n\nfrom course_utils import c\n\nprint(inspect.getsource(c))\n",
}


def _write_notebook(path: Path, code: str) -> None:
    path.write_text('# ---\n# jupyter:\n#   kernelspec:\n#     name: python3\n#     display_name: Python 3\n'
                    '#     language: python\n# ---\n\n# %% [markdown]\n# # Chapter\n\n# %%\n' + code)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "course_utils").mkdir()
    for name, text in PACKAGE.items():
        (tmp_path / "course_utils" / name).write_text(textwrap.dedent(text))
    (tmp_path / "notebooks").mkdir()
    for stem, code in NOTEBOOKS.items():
        _write_notebook(tmp_path / "notebooks" / f"{stem}.py", code)
    (tmp_path / "train.py").write_text('"""A script."""\nfrom course_utils.d import D\n\nprint(D)\n')
    return tmp_path


def _hashes(root: Path) -> dict[str, dict]:
    return {py.stem: staleness.hashes(py, root) for py in layout.chapter_sources(root)}


def _deps(root: Path, stem: str) -> list[str]:
    return [p.resolve().relative_to(root.resolve()).as_posix()
            for p in staleness.dependencies(root / "notebooks" / f"{stem}.py", root)]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_dependencies_follow_imports_attributes_lazy_imports_and_scripts(repo):
    assert _deps(repo, "01_first") == ["course_utils/__init__.py", "course_utils/a.py", "course_utils/b.py"]
    assert _deps(repo, "02_second") == ["course_utils/__init__.py", "course_utils/c.py"]
    assert _deps(repo, "03_third") == ["course_utils/__init__.py", "course_utils/b.py", "course_utils/c.py",
                                       "course_utils/d.py", "train.py"]


def test_docstrings_and_comments_change_no_hash(repo):
    before = _hashes(repo)
    _edit(repo / "course_utils" / "a.py", "Module a: imports b lazily.", "Module a, reworded.")
    _edit(repo / "course_utils" / "b.py", "# b", "# the value b holds")
    _edit(repo / "course_utils" / "__init__.py", '"""The package."""', '"""The package, reworded."""')
    _edit(repo / "train.py", '"""A script."""', '"""A script that prints D."""')
    after = _hashes(repo)
    assert {stem: h for stem, h in after.items() if stem != "04_1_source"} == \
        {stem: h for stem, h in before.items() if stem != "04_1_source"}


def _stale_after(repo: Path, path: Path, old: str, new: str) -> set[str]:
    before = _hashes(repo)
    _edit(path, old, new)
    after = _hashes(repo)
    assert all(before[s]["code_sha256"] == after[s]["code_sha256"] for s in before)
    return {s for s in before if before[s]["deps_sha256"] != after[s]["deps_sha256"]}


def test_a_code_edit_marks_exactly_the_notebooks_that_run_it(repo):
    assert _stale_after(repo, repo / "course_utils" / "b.py", "VALUE = 1", "VALUE = 2") == {"01_first", "03_third"}
    assert _stale_after(repo, repo / "course_utils" / "d.py", "C + 1", "C + 2") == {"03_third"}
    assert _stale_after(repo, repo / "train.py", "print(D)", "print(D, D)") == {"03_third"}
    assert _stale_after(repo, repo / "course_utils" / "c.py", "C = 3", "C = 4") == {"02_second", "03_third", "04_1_source"}


def test_a_notebook_that_prints_source_depends_on_its_docstrings(repo):
    assert _stale_after(repo, repo / "course_utils" / "c.py", "Module c.", "Module c, reworded.") == {"04_1_source"}


def test_comments_in_a_notebook_change_nothing_but_code_and_tags_do(repo):
    py = repo / "notebooks" / "02_second.py"
    before = staleness.hashes(py, repo)
    _edit(py, "print(course_utils.c.C)", "print(course_utils.c.C)  # the constant")
    assert staleness.hashes(py, repo) == before
    _edit(py, "# %%\nimport course_utils", '# %% tags=["hide-input"]\nimport course_utils')
    assert staleness.hashes(py, repo)["code_sha256"] != before["code_sha256"]


def test_the_trainers_command_line_leaves_chapters_that_never_import_it_fresh(tmp_path):
    """On a copy of this repository: a code change in course_utils.cli marks stale exactly the chapters whose
    dependencies hold it, and at least the chapters on calculus and optimizers stay fresh."""
    root = tmp_path / "repo"
    shutil.copytree(layout.ROOT / "course_utils", root / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "notebooks").mkdir()
    for py in layout.chapter_sources():
        shutil.copy2(py, root / "notebooks" / py.name)
    if (layout.ROOT / "train.py").exists():
        shutil.copy2(layout.ROOT / "train.py", root / "train.py")
    cli = imports.module_file(root, "course_utils.cli")
    assert cli is not None, "course_utils.cli (the trainer's command line) not found"
    notebooks = {py: jupytext.read(py) for py in layout.chapter_sources(root)}
    users = {py.stem for py in notebooks if cli.resolve() in [p.resolve() for p in staleness.dependencies(py, root)]}
    before = {py.stem: staleness.deps_hash(py, nb, root) for py, nb in notebooks.items()}
    cli.write_text(cli.read_text() + "\nCHANGED_BY_THE_TEST = True\n")
    after = {py.stem: staleness.deps_hash(py, nb, root) for py, nb in notebooks.items()}
    stale = {s for s in before if before[s] != after[s]}
    assert stale == users
    never = {py.stem for py in layout.chapter_sources(root) if layout.chapter(py.stem) in {"02", "03"}}
    assert never and not (never & stale), f"chapters 2 and 3 do not run the trainer, yet {never & stale} went stale"
