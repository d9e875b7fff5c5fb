"""Sphinx extension: the site's own fixes and conventions.

- **Numbering per chapter**: equations, exercises and figures of ``notebooks/NN_slug`` are numbered
  ``N.1, N.2, ...`` (N from the file name), as QuantEcon and d2l do, instead of running across the book.
  The reader notebooks for Colab (``tools/reader_notebooks.py``) use the same numbers.
- **One search field**: the theme's top header bar repeated the sidebar's search field; it is removed.
- **Logo and favicon**: a light-text logo in dark mode, and a favicon.
- **Scripts once**: sphinx-thebe's configuration script was included twice on every page, which raised
  "Identifier 'THEBE_JS_URL' has already been declared"; duplicates are dropped.
- **Footer**: the note on where the numbers come from links the execution-statistics page.
"""
from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "_static"
CHAPTER = re.compile(r"^notebooks/(\d\d)_")


def _theme_options(app, config):
    options = dict(config.html_theme_options or {})
    options["navbar_persistent"] = []  # the search field lives in the sidebar only
    logo = dict(options.get("logo") or {})
    logo.setdefault("image_dark", "_static/logo-dark.svg")
    options["logo"] = logo
    config.html_theme_options = options
    config.html_static_path = [*config.html_static_path, str(STATIC)]
    config.html_favicon = str(STATIC / "favicon.svg")


def _number_per_chapter(app, env):
    """Rewrite the numbers Sphinx assigned (continuous across the book) as (chapter, k) per chapter."""
    for docname, figtypes in env.toc_fignumbers.items():
        match = CHAPTER.match(docname)
        if not match:
            continue
        chapter = int(match.group(1))
        for figtype, numbers in figtypes.items():
            ordered = sorted(numbers.items(), key=lambda item: item[1])
            figtypes[figtype] = {key: (chapter, k) for k, (key, _) in enumerate(ordered, start=1)}
    return []


def _page_context(app, pagename, templatename, context, doctree):
    scripts, seen = [], set()
    for script in context.get("script_files", []):
        # the same script twice, added once with filename None and once with "" (sphinx-thebe, togglebutton)
        key = (getattr(script, "filename", None) or "",
               repr(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        scripts.append(script)
    if "script_files" in context:
        context["script_files"][:] = scripts
    stats = context["pathto"]("book/execution-statistics")
    context["theme_extra_footer"] = (
        "<p>Every number in this book was computed by the code beside it; see the "
        f'<a href="{stats}">execution statistics</a> for when and how each chapter ran and how its '
        "outputs are checked.</p>"
    )


def setup(app):
    app.connect("config-inited", _theme_options)
    app.connect("env-get-updated", _number_per_chapter, priority=900)
    app.connect("html-page-context", _page_context, priority=1000)  # after the others add scripts
    app.add_css_file("book.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
