"""Sphinx extension: the site's own fixes and conventions.

- **Numbering per chapter and part**: equations, exercises and figures of ``notebooks/NN_slug`` are
  numbered ``N.1, N.2, ...`` and those of a chapter's part ``notebooks/NN_P_slug`` ``N.P.1, N.P.2, ...``
  (N and P from the file name; "Exercise 4.2.3", "(4.1.5)"), as QuantEcon and d2l do, instead of running
  across the book. The numbers live where Sphinx keeps its own, ``env.toc_fignumbers[docname][figtype]
  [node_id]``, as tuples of ints (``(4, 1, 5)``; figtypes ``displaymath``, ``exercise``, ``figure``,
  ``table``, ``code-block``), so every reference (``{eq}``, ``{numref}``, ``{ref}``) and sphinx-exercise's
  titles show them. ``env.book_number_prefix[docname]`` holds each chapter page's prefix (``(4, 1)``,
  ``(7,)``); :func:`number_prefix` parses a docname. The reader notebooks for Colab
  (``tools/reader_notebooks.py``) use the same numbers.
- **One search field**: the theme's top header bar repeated the sidebar's search field; it is removed.
- **Logo and favicon**: a light-text logo in dark mode, and a favicon.
- **Scripts once**: sphinx-thebe's configuration script was included twice on every page, which raised
  "Identifier 'THEBE_JS_URL' has already been declared"; duplicates are dropped.
- **Complete offline**: nothing on a page loads from outside the site. MathJax
  (``book/_static/mathjax``) and the widget manager that draws stored progress bars and sliders
  (``book/_static/jupyter-widgets``, set as ``nb_ipywidgets_js`` in ``_config.yml``) are served from
  the site. Matplotlib's animations (``to_jshtml``) link Font Awesome 4 from a CDN for their buttons;
  the link is dropped, since the theme's own Font Awesome draws those icons. Any other output that
  loads a script or stylesheet from outside is a build warning naming the page.
- **Footer**: how to cite the book (from ``CITATION.cff``, the one place its citation is written) and
  reuse it (text and figures CC BY 4.0, code MIT: ``LICENSE-TEXT``, ``LICENSE``), and the note on where
  the numbers come from, linking the execution-statistics page.
"""
from __future__ import annotations

import html
import importlib.util
import re
import sys
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "book" / "_static"


def layout_module():
    """tools/layout.py, where the chapters' file names (NN_slug, NN_P_slug) are defined once."""
    if "book_layout" not in sys.modules:
        spec = importlib.util.spec_from_file_location("book_layout", ROOT / "tools" / "layout.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["book_layout"] = module
        spec.loader.exec_module(module)
    return sys.modules["book_layout"]


def number_prefix(docname: str) -> tuple[int, ...] | None:
    """``notebooks/04_1_minibatches`` -> ``(4, 1)``; ``notebooks/07_transfer`` -> ``(7,)``; other pages -> None."""
    layout = layout_module()
    stem = layout.docname_stem(docname)
    if stem is None:
        return None
    return tuple(int(n) for n in layout.number(stem).split("."))


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
    """Rewrite the numbers Sphinx assigned (continuous across the book) as (chapter, k) per chapter and
    (chapter, part, k) per part, k counting each kind in order of appearance."""
    env.book_number_prefix = {doc: number_prefix(doc) for doc in sorted(env.all_docs) if number_prefix(doc)}
    for docname, figtypes in env.toc_fignumbers.items():
        prefix = env.book_number_prefix.get(docname)
        if prefix is None:
            continue
        for figtype, numbers in figtypes.items():
            ordered = sorted(numbers.items(), key=lambda item: item[1])
            figtypes[figtype] = {key: (*prefix, k) for k, (key, _) in enumerate(ordered, start=1)}
    return []


# matplotlib's to_jshtml(): <link rel="stylesheet"\nhref="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/font-awesome.min.css">
FONT_AWESOME_LINK = re.compile(r'<link\s+rel="stylesheet"\s+href="https?://[^"]*/font-awesome/[^"]*\.css"\s*/?>\n?')
OUTSIDE = re.compile(r'<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)="((?:https?:)?//[^"]+)"', re.I)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _widget_state_stored(app, docname) -> bool:
    from myst_nb.sphinx_ import NbMetadataCollector

    return "ipywidgets_state" in NbMetadataCollector.get_js_files(app.env, docname)


def _local_outputs(app, doctree, docname):
    """Drop the CDN Font Awesome link of matplotlib's animations; warn about any other outside resource,
    and about widget outputs whose notebook stored no widget state (no manager can draw them)."""
    views = 0
    for node in list(doctree.findall(nodes.raw)):
        if "html" not in node.get("format", "").split():
            continue
        html = node.astext()
        views += html.count(WIDGET_VIEW)
        local = FONT_AWESOME_LINK.sub("", html)
        for url in OUTSIDE.findall(local):
            logger.warning(f"an output loads {url} from outside the site: offline readers lose what it draws; "
                           "vendor it under book/_static or store the output without it",
                           location=node, type="book_site", subtype="offline")
        if local != html:
            replacement = node.copy()
            replacement += nodes.Text(local)
            node.replace_self(replacement)
    if views and app is not None and not _widget_state_stored(app, docname):
        logger.warning(f"{views} widget outputs (progress bars, sliders) but the notebook stores no widget state "
                       "(metadata 'widgets'): they are blank on the site; save the notebook with its widget state "
                       "(nbclient: store_widget_state=True; Jupyter: Widgets > Save Notebook Widget State)",
                       location=docname, type="book_site", subtype="widgets")


def citation(path: Path = ROOT / "CITATION.cff") -> dict:
    """The book's citation from ``CITATION.cff`` (its ``preferred-citation``): authors, year, title, url."""
    try:
        cff = yaml.safe_load(path.read_text(encoding="utf-8"))
        ref = cff.get("preferred-citation") or cff
        names = [a.get("name") or " ".join(filter(None, [a.get("given-names"), a.get("family-names")]))
                 for a in ref["authors"]]
        found = {"authors": names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1],
                 "year": str(ref.get("year") or str(cff.get("date-released", ""))[:4]),
                 "title": ref["title"], "url": ref.get("url") or cff.get("url")}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: cannot read the book's citation ({exc!r}); it needs title, authors (each with "
                         "name, or given-names and family-names), year and url: see the Citation File Format") from exc
    missing = [k for k, v in found.items() if not v]
    if missing:
        raise ValueError(f"{path}: the book's citation has no {', '.join(missing)}; add it to preferred-citation")
    return found


def _footer(app, context) -> str:
    repo = (app.config.html_theme_options or {}).get("repository_url", "").rstrip("/")
    branch = (app.config.html_theme_options or {}).get("repository_branch") or "main"

    def file(name):
        return f'<a href="{repo}/blob/{branch}/{name}">{name}</a>' if repo else name

    stats = context["pathto"]("book/execution-statistics")
    cite = (f"<p><strong>Cite this book:</strong> {app.config.book_citation} ({file('CITATION.cff')}).</p>"
            if app.config.book_citation else "")
    return cite + (
        "<p><strong>Reuse it:</strong> copy, adapt and teach with the text and figures under "
        '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a> '
        f"({file('LICENSE-TEXT')}) and the code under the MIT license ({file('LICENSE')}), naming the book; "
        "the datasets keep their own licenses.</p>"
        "<p>Every number in this book was computed by the code beside it; see the "
        f'<a href="{stats}">execution statistics</a> for when and how each chapter ran and how its '
        "outputs are checked.</p>"
    )


def _read_citation(app, config):
    path = Path(app.srcdir) / "CITATION.cff"
    if not path.exists():  # a partial copy of the book (a test's site): the footer goes without the citation
        config.book_citation = ""
        return
    try:
        c = citation(path)
        config.book_citation = (f"{html.escape(c['authors'])} ({html.escape(c['year'])}). <em>{html.escape(c['title'])}"
                                f'</em>. <a href="{html.escape(c["url"])}">{html.escape(c["url"])}</a>')
    except ValueError as exc:
        logger.warning(str(exc), type="book_site", subtype="citation")
        config.book_citation = config.html_title or config.project


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
    context["theme_extra_footer"] = _footer(app, context)


def setup(app):
    app.add_config_value("book_citation", "", "html")
    app.connect("config-inited", _theme_options)
    app.connect("config-inited", _read_citation)
    app.connect("env-get-updated", _number_per_chapter, priority=900)
    app.connect("doctree-resolved", _local_outputs)
    app.connect("html-page-context", _page_context, priority=1000)  # after the others add scripts
    app.add_css_file("book.css")
    app.add_js_file("book.js")  # marks math that scrolls on a narrow screen (book.css shows it)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
