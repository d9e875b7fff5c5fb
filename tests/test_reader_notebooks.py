"""Reader notebooks (tools/reader_notebooks.py): what Colab opens and the site's download serves.

Every chapter converts, and no MyST role or directive reaches its reader notebook; code cells,
outputs and tags are copied unchanged; equations and exercises carry the site's N.k numbers.
A small synthetic book pins down each rendering, and unknown markup or broken references fail.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("reader_notebooks", ROOT / "tools" / "reader_notebooks.py")
rn = importlib.util.module_from_spec(spec)
sys.modules.setdefault("reader_notebooks", rn)  # dataclasses look their module up there
spec.loader.exec_module(rn)

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SITE = "https://example.org/book/"
COLAB = "https://colab.research.google.com/github/org/repo/blob/colab/notebooks"


@pytest.fixture(scope="module")
def book():
    return rn.build_book(CHAPTERS, ROOT)


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/NN_slug.ipynb found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_reader_notebook_has_no_myst_and_unchanged_code(book, path):
    the_book, notebooks = book
    nb = notebooks[path]
    reader = rn.convert_notebook(nb, path.stem, the_book)
    nbformat.validate(reader)
    for i, cell in enumerate(reader.cells):
        if cell.cell_type == "markdown":
            assert rn.find_myst(cell.source) == [], f"{path.name} cell {i}: MyST left in the reader notebook"
    src_code = [c for c in nb.cells if c.cell_type == "code"]
    out_code = [c for c in reader.cells if c.cell_type == "code"]
    assert len(src_code) == len(out_code)
    for a, b in zip(src_code, out_code):
        assert (a.source, a.outputs, a.metadata) == (b.source, b.outputs, b.metadata)
    setup = next(c for c in out_code if "google.colab" in c.source)
    assert "remove-cell" in setup.metadata.get("tags", []), "the Colab setup cell must stay (Colab needs it)"
    assert reader.cells[0].source.splitlines()[0] == nb.cells[0].source.splitlines()[0], "the title comes first"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_numbers_follow_the_sites_n_dot_k(book, path):
    the_book, notebooks = book
    nb = notebooks[path]
    n = int(path.name[:2])
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    n_equations = len(re.findall(r"\$\$\s*\([^()\s]+\)\s*$", md, re.M))
    n_exercises = len(re.findall(r"^\s*(?:`{3,}|:{3,})\s*\{exercise\}", md, re.M))
    reader = rn.convert_notebook(nb, path.stem, the_book)
    out = "\n".join(c.source for c in reader.cells if c.cell_type == "markdown")
    assert re.findall(r"\\tag\{([\d.]+)\}", out) == [f"{n}.{k}" for k in range(1, n_equations + 1)]
    assert re.findall(r"^#+ Exercise ([\d.]+)", out, re.M) == [f"{n}.{k}" for k in range(1, n_exercises + 1)]
    assert len(re.findall(r"<details>", out)) >= len(re.findall(r"\{solution\}", md))


def test_the_workflow_publishes_the_branch_colab_opens():
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert f"refs/heads/{rn.READER_BRANCH}" in workflow or f"HEAD:{rn.READER_BRANCH}" in workflow


# --------------------------------------------------------------------------- a synthetic book
BIB = r"""
@article{doe2020x,
  title = {A {Study} of Things},
  author = {Doe, Jane and Roe, Richard},
  journal = {Journal of Things},
  year = {2020},
  doi = {10.1000/xyz}
}
@book{smith2019,
  title = {No Link Here},
  author = {Smith, A. and Jones, B. and G{\"u}nther, C.},
  publisher = {Press},
  year = {2019}
}
@misc{unused2000,
  title = {Never Cited},
  author = {Nobody, N.},
  year = {2000},
  url = {https://example.org/never}
}
"""


def _make_book(tmp_path: Path, chapter2: str, chapter1: str = "# Chapter 1: First\n\nText.") -> Path:
    (tmp_path / "book").mkdir(parents=True, exist_ok=True)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_config.yml").write_text(
        f"html:\n  baseurl: {SITE}\nrepository:\n  url: https://github.com/org/repo\n  branch: main\n")
    (tmp_path / "book" / "references.bib").write_text(BIB)
    (tmp_path / "book" / "running.md").write_text("# Running the book\n\nText.\n")
    (tmp_path / "train.py").write_text("print('hi')\n")
    for name, md in (("01_first", chapter1), ("02_second", chapter2)):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(md),
                    nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["remove-input"]})]
        nbformat.write(nb, tmp_path / "notebooks" / f"{name}.ipynb")
    return tmp_path


def _convert(tmp_path: Path, chapter2: str, chapter1: str = "# Chapter 1: First\n\nText.") -> str:
    root = _make_book(tmp_path, textwrap.dedent(chapter2), textwrap.dedent(chapter1))
    out = rn.write_reader_notebooks(sorted((root / "notebooks").glob("*.ipynb")), tmp_path / "out", root=root)
    nb = nbformat.read([p for p in out if p.name.startswith("02")][0], as_version=4)
    assert nb.cells[-1].source == "x = 1" and nb.cells[-1].metadata["tags"] == ["remove-input"]
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_every_construct_renders(tmp_path):
    out = _convert(tmp_path, """\
        # Chapter 2: Second

        (sec-intro)=
        ## Introduction

        % an author's comment
        Known {cite:t}`ch02-doe2020x`; see also {cite}`ch02-doe2020x,ch02-smith2019`. Click {guilabel}`Run`.

        $$
        a = b
        $$ (eq-first)

        $$
        c = d
        $$

        $$ e = f $$ (eq-second)

        By {eq}`eq-second` and {eq}`eq-first`, back to {ref}`sec-intro` or [the start](#sec-intro),
        {ref}`the intro <sec-intro>`, [chapter 1](01_first.ipynb), {doc}`../book/running`,
        [the trainer](../train.py), [PyPI](https://pypi.org).

        ```python
        print("{cite}`not-a-role`")
        ```

        ```{note}
        Careful with $x$.
        ```

        ```{admonition} More
        :class: dropdown
        Hidden text.
        ```

        ## Exercises

        ```{exercise} Do it
        :label: ex-do

        Solve {eq}`eq-first`.
        ```

        ````{solution} ex-do
        :class: dropdown

        Like this:
        ```python
        x = 1
        ```
        ````

        ```{exercise}
        :label: ex-two
        Again.
        ```

        See {ref}`ex-two` and {numref}`Exercise {number} <ex-do>`.

        ## References

        ```{bibliography}
        :filter: docname in docnames
        :keyprefix: ch02-
        ```
        """)
    doi = "https://doi.org/10.1000/xyz"
    page = f"{SITE}notebooks/02_second.html"
    assert "(sec-intro)=" not in out and "author's comment" not in out
    assert f"Known [Doe and Roe (2020)]({doi}); see also ([Doe and Roe, 2020]({doi}); Smith et al., 2019)." in out
    assert "Click **Run**." in out
    assert "$$\na = b\n\\tag{2.1}\n$$" in out
    assert "$$\nc = d\n$$" in out  # unlabelled: unnumbered, unchanged
    assert "$$\ne = f\n\\tag{2.2}\n$$" in out
    assert f"By [(2.2)]({page}#equation-eq-second) and [(2.1)]({page}#equation-eq-first)" in out
    assert f"back to [Introduction]({page}#sec-intro) or [the start]({page}#sec-intro)" in out
    assert f"[the intro]({page}#sec-intro)" in out
    assert f"[chapter 1]({COLAB}/01_first.ipynb)" in out
    assert f"[Running the book]({SITE}book/running.html)" in out
    assert "[the trainer](https://github.com/org/repo/blob/main/train.py)" in out
    assert "[PyPI](https://pypi.org)" in out
    assert '```python\nprint("{cite}`not-a-role`")\n```' in out  # code is never touched
    assert "> **Note**\n>\n> Careful with $x$." in out
    assert "<details>\n<summary>More</summary>\n\nHidden text.\n\n</details>" in out
    assert f"### Exercise 2.1: Do it\n\nSolve [(2.1)]({page}#equation-eq-first)." in out
    assert "<details>\n<summary>Solution to Exercise 2.1</summary>\n\nLike this:\n```python\nx = 1\n```\n\n</details>" in out
    assert "### Exercise 2.2\n\nAgain." in out
    assert f"See [Exercise 2.2]({page}#ex-two) and [Exercise 2.1]({page}#ex-do)." in out
    refs = out.split("## References", 1)[1]
    assert refs.strip().split("\n\n")[0].splitlines() == [
        f"- Doe, J. and Roe, R. (2020). A Study of Things. *Journal of Things*. <{doi}>",
        "- Smith, A., Jones, B. and Günther, C. (2019). No Link Here. *Press*.",
    ]  # only what the chapter cites, sorted by author
    assert rn.find_myst(out) == []


def test_references_across_chapters(tmp_path):
    out = _convert(tmp_path, "# Chapter 2: Second\n\nAs {eq}`eq-one` in {ref}`sec-one` showed.",
                   chapter1="# Chapter 1: First\n\n(sec-one)=\n## One\n\n$$\nx\n$$ (eq-one)\n")
    assert f"As [(1.1)]({SITE}notebooks/01_first.html#equation-eq-one) in [One]({SITE}notebooks/01_first.html#sec-one)" in out


def test_glossary_terms_and_page_labels(tmp_path):
    root = tmp_path
    (root / "book").mkdir()
    (root / "book" / "glossary.md").write_text(
        "(glossary)=\n# Glossary\n\n```{glossary}\nMinibatch\n  A subset.\n\nStratified split\n  A split.\n```\n")
    out = _convert(tmp_path, "# Chapter 2: Second\n\nA {term}`minibatch`, {term}`split <stratified split>`; see {ref}`glossary`.")
    page = f"{SITE}book/glossary.html"
    assert f"A [minibatch]({page}#term-Minibatch), [split]({page}#term-Stratified-split); see [Glossary]({page}#glossary)." in out
    with pytest.raises(rn.ConversionError, match="no glossary term"):
        _convert(tmp_path / "again", "# Chapter 2: Second\n\nA {term}`unknown thing`.")


@pytest.mark.parametrize("markdown, message", [
    ("Some {unknownrole}`x`.", "{unknownrole}"),
    ("```{figure} a.png\nA figure.\n```", "{figure}"),
    ("Cited {cite}`nobody1999`.", "nobody1999"),
    ("See {eq}`eq-nowhere`.", "eq-nowhere"),
    ("```{solution} ex-missing\nText.\n```", "ex-missing"),
    ("A {{ substitution }} here.", "substitution"),
    ("[gone](missing_file.py)", "does not exist"),
    ("[outside](../../etc/passwd)", "outside the repository"),
    ("[not a page](../book/absent.md)", "not a page of the book"),
])
def test_unknown_markup_and_broken_references_fail_loudly(tmp_path, markdown, message):
    with pytest.raises(rn.ConversionError, match=re.escape(message)):
        _convert(tmp_path, "# Chapter 2: Second\n\n" + markdown)


@pytest.mark.parametrize("leftover", [
    "Text {cite}`key` here.",
    "```{exercise}\nbody\n```",
    ":::{note}\nbody\n:::",
    "(my-label)=",
    "$$\nx\n$$ (eq-x)",
    ":label: ex-1",
    "% a comment",
    "+++",
    "{{ name }}",
])
def test_find_myst_finds_each_kind(leftover):
    assert rn.find_myst(f"Before.\n\n{leftover}\n\nAfter.")


@pytest.mark.parametrize("clean", [
    "Plain *text* with $x_{i}$ and a [link](https://example.org).",
    "```python\nprint('{cite}`x`')\n# (label)=\n% not a comment in code\n```",
    "Inline `{eq}` code, <details><summary>S</summary>\n\nx\n\n</details>",
    "$$\n\\begin{aligned} a &= b \\end{aligned}\n\\tag{3.1}\n$$",
])
def test_find_myst_ignores_code_and_plain_markdown(clean):
    assert rn.find_myst(clean) == []
