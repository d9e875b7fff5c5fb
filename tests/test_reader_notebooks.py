"""Reader notebooks (tools/reader_notebooks.py, written by the site build): what Colab opens and the site's
download serves.

Against the built site: every chapter's reader notebook exists, holds no MyST, keeps every code cell (its
source, outputs and tags; the cells the site hides folded), and carries the numbers and citation labels
the site's page shows (equations, exercises, the reference list). A small hand-made book pins down each
rendering, and unknown markup or broken references fail.
"""
from __future__ import annotations

import html
import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from tools import layout
from tools import reader_notebooks as rn

ROOT = layout.ROOT

SITE_INPUTS = ["book", "_config.yml", "_toc.yml", "tools/reader_notebooks.py", "tools/layout.py"]  # and the chapters


def _chapters_in_the_book() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*notebooks/(\S+)", toc))
    return [p for p in layout.chapter_sources(ROOT, ".ipynb") if p.stem in listed]


CHAPTERS = _chapters_in_the_book()


def _newest_input() -> float:
    newest = max((p.stat().st_mtime for p in layout.chapter_sources(ROOT, ".ipynb")), default=0.0)
    for name in SITE_INPUTS:
        path = ROOT / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "_build" not in p.parts]
        newest = max([newest, *(p.stat().st_mtime for p in files)])
    return newest


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The HTML folder of a site built from the current sources: `_build/html` when `dev.py build` made it
    after the last change (as in .ci/run), else a fresh build (stored outputs, nothing executed)."""
    html_dir = ROOT / "_build" / "html"
    readers = html_dir / rn.READERS_IN_SITE
    built = [p.stat().st_mtime for p in readers.glob("*.ipynb")] if readers.is_dir() else []
    if built and len(built) >= len(CHAPTERS) and min(built) > _newest_input():
        return html_dir
    return rn.build_site(ROOT, tmp_path_factory.mktemp("site")).parents[1]


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/NN_slug.ipynb in _toc.yml"


def _reader(site: Path, path: Path):
    reader = site / rn.READERS_IN_SITE / path.name
    assert reader.exists(), f"the site build wrote no reader notebook for {path.name}"
    return nbformat.read(reader, as_version=4)


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_reader_notebook_has_no_myst_and_every_code_cell(site, path):
    nb, reader = nbformat.read(path, as_version=4), _reader(site, path)
    nbformat.validate(reader)
    for i, cell in enumerate(reader.cells):
        if cell.cell_type == "markdown":
            assert rn.find_myst(cell.source) == [], f"{path.name} cell {i}: MyST left in the reader notebook"
    src_code = [c for c in nb.cells if c.cell_type == "code"]
    out_code = [c for c in reader.cells if c.cell_type == "code"]
    assert len(src_code) == len(out_code)
    for a, b in zip(src_code, out_code):
        assert rn.unfolded_source(b.source) == a.source and a.outputs == b.outputs
        assert a.metadata.get("tags", []) == b.metadata.get("tags", [])
        hidden = bool(set(a.metadata.get("tags", [])) & set(rn.FOLDED_TAGS))
        assert hidden == (b.metadata.get("cellView") == "form" and b.source.startswith("#@title ")), (
            f"{path.name}: the cells the site hides are folded in Colab, and only those")
    setup = next(c for c in out_code if "google.colab" in c.source)
    assert "remove-cell" in setup.metadata.get("tags", []), "the Colab setup cell must stay (Colab needs it)"
    assert reader.cells[0].source.splitlines()[0] == nb.cells[0].source.splitlines()[0], "the title comes first"


def _page(site: Path, path: Path) -> str:
    return (site / "notebooks" / f"{path.stem}.html").read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_numbers_are_the_sites(site, path):
    """Equation tags and exercise numbers, in order, are those the chapter's page shows."""
    page, md = _page(site, path), _markdown(_reader(site, path))
    assert re.findall(r"\\tag\{([\d.]+)\}", md) == re.findall(r'class="eqno">\(([\d.]+)\)', page)
    site_exercises = re.findall(r'<span class="caption-number">Exercise ([\d.]+) </span>', page)
    assert re.findall(r"^#+ Exercise ([\d.]+)", md, re.M) == site_exercises
    assert re.findall(r"<summary>Solution to Exercise ([\d.]+)</summary>", md) == \
        re.findall(r'<p class="admonition-title">Solution to<a class="reference internal" href="#[^"]*">'
                   r'\s*(?:<span class="std std-ref">)?\s*Exercise ([\d.]+)', page)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_citations_and_references_are_the_sites(site, path):
    page, md = _page(site, path), _markdown(_reader(site, path))
    labels = re.findall(r'role="doc-biblioentry">\s*<span class="label"><span class="fn-bracket">\[</span>(.*?)'
                        r'<span class="fn-bracket">\]</span>', page, re.S)
    site_labels = [html.unescape(re.sub(r"<[^>]+>", "", x)).strip() for x in labels]
    assert len(site_labels) == page.count('role="doc-biblioentry"')
    references = md.split("## References", 1)[1] if "## References" in md else ""
    reader_labels = re.findall(r"^- \[([^\]]+)\] ", references, re.M)
    assert reader_labels == site_labels, "the reference list differs from the site's"
    cited = re.findall(r"\(\[([^\]]+, \d{4}[a-z]?)\]\(", md) + re.findall(r"\[([^\]]+) \((\d{4}[a-z]?)\)\]\(", md)
    for label in cited:
        label = label if isinstance(label, str) else f"{label[0]}, {label[1]}"
        assert label in site_labels, f"{path.name}: the citation {label!r} is not in the page's reference list"


def test_the_workflow_publishes_the_branch_colab_opens():
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert f"refs/heads/{rn.READER_BRANCH}" in workflow or f"HEAD:{rn.READER_BRANCH}" in workflow


# --------------------------------------------------------------------------- a hand-made book
SITE = "https://example.org/book/"
COLAB = "https://colab.research.google.com/github/org/repo/blob/colab/notebooks"
PAGE2 = f"{SITE}notebooks/02_1_second.html"
DOI = "https://doi.org/10.1000/xyz"


def _book(root: Path) -> rn.Book:
    """What book_from_sphinx would read from a site build of the two chapters below."""
    T = rn.Target
    return rn.Book(
        root=root, site_url=SITE, repository="https://github.com/org/repo", branch="main",
        titles={"notebooks/01_first": "Chapter 1: First", "notebooks/02_1_second": "Chapter 2.1: Second",
                "book/running": "Running the book", "book/glossary": "Glossary"},
        labels={
            "sec-intro": T("notebooks/02_1_second", "section", None, "Introduction", "sec-intro"),
            "sec-one": T("notebooks/01_first", "section", None, "One at $\\eta$", "sec-one"),
            "glossary": T("book/glossary", "section", None, "Glossary", "glossary"),
            "eq-first": T("notebooks/02_1_second", "equation", "2.1.1", None, "equation-eq-first"),
            "eq-second": T("notebooks/02_1_second", "equation", "2.1.2", None, "equation-eq-second"),
            "eq-one": T("notebooks/01_first", "equation", "1.1", None, "equation-eq-one"),
            "ex-do": T("notebooks/02_1_second", "exercise", "2.1.1", None, "ex-do"),
            "ex-two": T("notebooks/02_1_second", "exercise", "2.1.2", None, "ex-two"),
        },
        terms={"minibatch": T("book/glossary", "term", None, "Minibatch", "term-Minibatch")},
        citations={"ch02-doe2020x": rn.Citation("Doe and Roe, 2020", DOI, "Jane Doe and Richard Roe\\. A study\\."),
                   "ch02-smith2019": rn.Citation("Smith et al., 2019", None, "A\\. Smith, B\\. Jones, and C\\. Günther\\.")},
        bibliographies={"notebooks/02_1_second": ["ch02-doe2020x", "ch02-smith2019"]},
    )


def _convert(tmp_path: Path, markdown: str, code_tags=("remove-input",)) -> str:
    (tmp_path / "notebooks").mkdir(exist_ok=True)
    (tmp_path / "train.py").write_text("print('hi')\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(textwrap.dedent(markdown)),
                nbformat.v4.new_code_cell("# Check the sums\nx = 1", metadata={"tags": list(code_tags)})]
    reader = rn.convert_notebook(nb, "02_1_second", _book(tmp_path))
    code = reader.cells[-1]
    assert rn.unfolded_source(code.source) == "# Check the sums\nx = 1" and code.metadata["tags"] == list(code_tags)
    assert (code.metadata.get("cellView") == "form") == bool(set(code_tags) & set(rn.FOLDED_TAGS))
    return "\n".join(c.source for c in reader.cells if c.cell_type == "markdown")


def test_every_construct_renders(tmp_path):
    out = _convert(tmp_path, """\
        # Chapter 2.1: Second

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
        [the trainer](../train.py), [PyPI](https://pypi.org), {ref}`sec-one`, a {term}`minibatch`.

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
    assert "(sec-intro)=" not in out and "author's comment" not in out
    assert f"Known [Doe and Roe (2020)]({DOI}); see also ([Doe and Roe, 2020]({DOI}); Smith et al., 2019)." in out
    assert "Click **Run**." in out
    assert "$$\na = b\n\\tag{2.1.1}\n$$" in out
    assert "$$\nc = d\n$$" in out  # unlabelled: unnumbered, unchanged
    assert "$$\ne = f\n\\tag{2.1.2}\n$$" in out
    assert f"By [(2.1.2)]({PAGE2}#equation-eq-second) and [(2.1.1)]({PAGE2}#equation-eq-first)" in out
    assert f"back to [Introduction]({PAGE2}#sec-intro) or [the start]({PAGE2}#sec-intro)" in out
    assert f"[the intro]({PAGE2}#sec-intro)" in out
    assert f"[chapter 1]({COLAB}/01_first.ipynb)" in out
    assert f"[Running the book]({SITE}book/running.html)" in out
    assert "[the trainer](https://github.com/org/repo/blob/main/train.py)" in out
    assert "[PyPI](https://pypi.org)" in out
    assert f"[One at $\\eta$]({SITE}notebooks/01_first.html#sec-one)" in out
    assert f"a [minibatch]({SITE}book/glossary.html#term-Minibatch)." in out
    assert '```python\nprint("{cite}`not-a-role`")\n```' in out  # code is never touched
    assert "> **Note**\n>\n> Careful with $x$." in out
    assert "<details>\n<summary>More</summary>\n\nHidden text.\n\n</details>" in out
    assert f"### Exercise 2.1.1: Do it\n\nSolve [(2.1.1)]({PAGE2}#equation-eq-first)." in out
    assert "<details>\n<summary>Solution to Exercise 2.1.1</summary>\n\nLike this:\n```python\nx = 1\n```\n\n</details>" in out
    assert "### Exercise 2.1.2\n\nAgain." in out
    assert f"See [Exercise 2.1.2]({PAGE2}#ex-two) and [Exercise 2.1.1]({PAGE2}#ex-do)." in out
    refs = out.split("## References", 1)[1]
    assert refs.strip().split("\n\n")[0].splitlines() == [
        "- [Doe and Roe, 2020] Jane Doe and Richard Roe\\. A study\\.",
        "- [Smith et al., 2019] A\\. Smith, B\\. Jones, and C\\. Günther\\.",
    ]  # the site's entries, in the site's order
    assert rn.find_myst(out) == []


def test_hidden_cells_fold_with_their_first_comment_as_title(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter 2.1: Second"),
                nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["hide-input"]}),
                nbformat.v4.new_code_cell("# Plot the losses\nplot()", metadata={"tags": ["remove-input"]}),
                nbformat.v4.new_code_cell("shown()")]
    code = [c for c in rn.convert_notebook(nb, "02_1_second", _book(tmp_path)).cells if c.cell_type == "code"]
    assert [c.source.splitlines()[0] for c in code] == ["#@title Code (folded)", "#@title Plot the losses", "shown()"]
    assert [c.metadata.get("jupyter", {}).get("source_hidden", False) for c in code] == [True, True, False]


@pytest.mark.parametrize("markdown, message", [
    ("Some {unknownrole}`x`.", "{unknownrole}"),
    ("```{figure} a.png\nA figure.\n```", "{figure}"),
    ("Cited {cite}`nobody1999`.", "nobody1999"),
    ("See {eq}`eq-nowhere`.", "eq-nowhere"),
    ("See {eq}`sec-intro`.", "not a labelled equation"),
    ("$$\nx\n$$ (eq-unknown)", "eq-unknown"),
    ("```{exercise} No label\nText.\n```", "without a :label:"),
    ("```{solution} ex-missing\nText.\n```", "ex-missing"),
    ("(label-nobody-knows)=\n## Heading", "label-nobody-knows"),
    ("A {{ substitution }} here.", "substitution"),
    ("A {term}`unknown thing`.", "no glossary term"),
    ("[gone](missing_file.py)", "does not exist"),
    ("[outside](../../etc/passwd)", "outside the repository"),
    ("[not a page](../book/absent.md)", "not a page of the book"),
])
def test_unknown_markup_and_broken_references_fail_loudly(tmp_path, markdown, message):
    with pytest.raises(rn.ConversionError, match=re.escape(message)):
        _convert(tmp_path, "# Chapter 2.1: Second\n\n" + markdown)


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
