"""Sphinx extension: a chapter's Colab button and ``.ipynb`` download serve its reader notebook.

The site renders the chapters' MyST; Colab and a downloaded notebook would show it raw (roles,
directives, open solutions). At the end of an HTML build this writes each chapter's *reader
notebook* (``tools/reader_notebooks.py``: the same cells with plain Markdown) over the chapter's
copy in ``_sources/notebooks/``, which is what the download menu's ``.ipynb`` entry links to, and
points the launch menu's Colab entry at the same file on the branch ``colab``, where the
workflow publishes it (``.github/workflows/book.yml``). A chapter whose Markdown cannot be
converted fails the build with the converter's message.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _tool(app):
    """tools/reader_notebooks.py of the book being built."""
    if "reader_notebooks" not in sys.modules:
        path = Path(app.srcdir) / "tools" / "reader_notebooks.py"
        spec = importlib.util.spec_from_file_location("reader_notebooks", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["reader_notebooks"] = module
        spec.loader.exec_module(module)
    return sys.modules["reader_notebooks"]


def _is_chapter(pagename: str) -> bool:
    return bool(re.fullmatch(r"notebooks/\d\d_[\w-]+", pagename))


def _point_buttons_at_readers(app, pagename, templatename, context, doctree):
    if not _is_chapter(pagename):
        return
    tool = _tool(app)
    site, repo, branch = tool.load_config(Path(app.srcdir))
    book = tool.Book(root=Path(app.srcdir), site_url=site, repository=repo, branch=branch)
    stem = pagename.split("/", 1)[1]
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
    tool = _tool(app)
    sources = sorted((Path(app.srcdir) / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    out = Path(app.outdir) / "_sources" / "notebooks"
    try:
        written = tool.write_reader_notebooks(sources, out, root=Path(app.srcdir))
    except tool.ConversionError as exc:
        raise ExtensionError(f"reader notebooks: {exc}") from exc
    logger.info(f"reader notebooks: wrote {len(written)} to {out}")


def setup(app):
    app.connect("html-page-context", _point_buttons_at_readers, priority=503)
    app.connect("build-finished", _write_reader_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
