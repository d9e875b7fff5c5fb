"""Sphinx extension: offer each chapter's jupytext ``.py`` source beside the ``.ipynb`` download.

sphinx-book-theme's download menu lists the page's source (the .ipynb) and a PDF. A chapter's
reviewed source is its paired ``notebooks/NN_slug.py`` (or a part's ``NN_P_slug.py``): this adds a ``.py`` entry to that menu
and copies the files to ``_sources/notebooks/`` in the built site.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_site import layout_module  # noqa: E402  (tools/layout.py: the chapters' file names)


def _add_py_button(app, pagename, templatename, context, doctree):
    if not pagename.startswith("notebooks/"):
        return
    src = Path(app.srcdir) / f"{pagename}.py"
    if not src.exists():
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].insert(1, {
                "type": "link",
                "url": f"{context['pathto']('_sources', 1)}/{pagename}.py",
                "text": ".py",
                "tooltip": "Download the jupytext source (.py, percent format)",
                "icon": "fas fa-file-code",
                "label": "download-py-button",
            })


def _copy_py_sources(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir) / "_sources" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    for py in layout_module().chapter_sources(Path(app.srcdir), ".py"):
        shutil.copy2(py, out / py.name)


def setup(app):
    app.connect("html-page-context", _add_py_button, priority=502)
    app.connect("build-finished", _copy_py_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "0.1"}
