"""Sphinx extension: a chapter's Colab button and ``.ipynb`` download serve its reader notebook.

The site renders the chapters' MyST; Colab and a downloaded notebook would show it raw (roles,
directives, open solutions). At the end of an HTML build this writes each chapter's *reader
notebook* (``tools/reader_notebooks.py``: the same cells with plain Markdown) over the chapter's
copy in ``_sources/notebooks/``, which is what the download menu's ``.ipynb`` entry links to, and
points the launch menu's Colab entry at the same file on the branch ``colab``, where the
workflow publishes it (``.github/workflows/book.yml``). A chapter whose Markdown cannot be
converted fails the build with the converter's message.

The reader notebooks' numbers and labels come from this build and nowhere else (:func:`book_from_sphinx`):
equation, exercise, figure and table numbers from ``env.toc_fignumbers`` as ``book_site.py`` left them (it
renumbers per chapter and part at ``env-get-updated``), section titles from the resolved doctrees, glossary
terms and labels from the standard domain, and citations from sphinxcontrib-bibtex's domain (the label and
the reference-list entry the site prints, rendered by pybtex's Markdown backend).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _tool(root):
    """tools/reader_notebooks.py of the book being built (the repository root is the Sphinx source folder)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tools import reader_notebooks

    return reader_notebooks


def _dotted(number) -> str | None:
    return ".".join(map(str, number)) if number else None


def _title_markdown(node) -> str:
    """A section title node as Markdown: its math as ``$...$``, its code as backticks."""
    from docutils import nodes

    parts = []
    for child in node.children:
        if isinstance(child, nodes.math):
            parts.append(f"${child.astext()}$")
        elif isinstance(child, nodes.literal):
            parts.append(f"`{child.astext()}`")
        elif isinstance(child, nodes.Text):
            parts.append(child.astext())
        else:
            parts.append(_title_markdown(child))
    return "".join(parts)


def _section_titles(env, docname: str) -> dict[str, str]:
    """Section id -> its title as Markdown, in the resolved doctree of ``docname``."""
    from docutils import nodes

    titles = {}
    for section in env.get_doctree(docname).findall(nodes.section):
        if section.children and isinstance(section.children[0], nodes.title):
            for anchor in section["ids"]:
                titles[anchor] = _title_markdown(section.children[0])
    return titles


def _work_url(entry) -> str | None:
    fields = entry.fields
    if fields.get("doi"):
        doi = fields["doi"]
        return doi if doi.startswith("http") else f"https://doi.org/{doi}"
    if fields.get("url"):
        return fields["url"]
    if fields.get("eprint") and fields.get("archiveprefix", fields.get("eprinttype", "")).lower() == "arxiv":
        return f"https://arxiv.org/abs/{fields['eprint']}"
    return None


def book_from_sphinx(env, root: Path):
    """Everything the reader notebooks need to know about the book, from the environment of its site build."""
    from pybtex.backends.markdown import Backend

    tool = _tool(root)
    site, repo, branch = tool.load_config(root)
    book = tool.Book(root=root, site_url=site, repository=repo, branch=branch)
    book.titles = {doc: _title_markdown(title) for doc, title in env.titles.items()}
    std = env.domaindata["std"]
    docs_with_sections = {doc for doc, _anchor, _title in std["labels"].values()}
    section_titles = {doc: _section_titles(env, doc) for doc in sorted(docs_with_sections) if doc in env.all_docs}
    for label, (doc, anchor) in std["anonlabels"].items():
        book.labels[label] = tool.Target(doc, "label", None, None, anchor)
    for label, (doc, anchor, title) in std["labels"].items():
        markdown = section_titles.get(doc, {}).get(anchor) or title or None
        book.labels[label] = tool.Target(doc, "section" if markdown else "label", None, markdown, anchor)
    for figtype, kind in (("figure", "figure"), ("table", "table")):
        for label, target in list(book.labels.items()):
            number = env.toc_fignumbers.get(target.docname, {}).get(figtype, {}).get(target.anchor)
            if number:
                book.labels[label] = dataclasses.replace(target, kind=kind, number=_dotted(number))
    for label, (doc, _n) in env.domaindata["math"]["objects"].items():
        anchor = f"equation-{label}"
        number = env.toc_fignumbers.get(doc, {}).get("displaymath", {}).get(anchor)
        book.labels[label] = tool.Target(doc, "equation", _dotted(number), None, anchor)
    for label, info in getattr(env, "sphinx_exercise_registry", {}).items():
        if info.get("type") == "exercise":
            number = env.toc_fignumbers.get(info["docname"], {}).get("exercise", {}).get(label)
            book.labels[label] = tool.Target(info["docname"], "exercise", _dotted(number), None, label)
    for term, (doc, anchor) in std.get("terms", {}).items():
        book.terms[term.lower()] = tool.Target(doc, "term", None, term, anchor)
    backend = Backend()
    for c in env.domaindata["cite"]["citations"]:
        entry = " ".join(c.formatted_entry.text.render(backend).split())
        book.citations.setdefault(c.key, tool.Citation(c.formatted_entry.label, _work_url(c.entry), entry))
        book.bibliographies.setdefault(c.bibliography_key.docname, []).append(c.key)
    return book


def _point_buttons_at_readers(app, pagename, templatename, context, doctree):
    tool = _tool(app.srcdir)
    stem = tool.layout.docname_stem(pagename)
    if stem is None:
        return
    site, repo, branch = tool.load_config(Path(app.srcdir))
    book = tool.Book(root=Path(app.srcdir), site_url=site, repository=repo, branch=branch)
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            if group.get("label") == "launch-buttons" and button.get("text") == "Colab":
                button["url"] = book.colab_url(stem)
                button["tooltip"] = "Open this chapter in Colab (its reader notebook)"
            if group.get("label") == "download-buttons" and button.get("text") == ".ipynb":
                button["tooltip"] = "Download the notebook (the reader edition, for Jupyter and Colab)"


def _write_reader_notebooks(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    tool = _tool(app.srcdir)
    root = Path(app.srcdir)
    sources = [p for p in tool.layout.chapter_sources(root, ".ipynb") if f"notebooks/{p.stem}" in app.env.all_docs]
    out = Path(app.outdir) / tool.READERS_IN_SITE
    try:
        written = tool.write_reader_notebooks(book_from_sphinx(app.env, root), sources, out)
    except tool.ConversionError as exc:
        raise ExtensionError(f"reader notebooks: {exc}") from exc
    logger.info(f"reader notebooks: wrote {len(written)} to {out}")


def setup(app):
    app.connect("html-page-context", _point_buttons_at_readers, priority=503)
    app.connect("build-finished", _write_reader_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.2"}
