"""The site's own Sphinx extensions (book/_ext) and the screenshot tool: numbering per chapter and part,
author-year labels, the citation in the footer, outputs that load nothing from outside, the vendored
widget manager, and the screenshot tool's page list and verdicts. The whole site is built and shot by
``jupyter-book build .`` and ``tools/site_screenshots.py`` (README: *The site for every reader*)."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from docutils import nodes
from docutils.utils import new_document
from docutils.frontend import get_default_settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))

import bib_style  # noqa: E402
import book_site  # noqa: E402
import site_screenshots  # noqa: E402


@pytest.mark.parametrize("docname, prefix", [
    ("notebooks/04_1_minibatches", (4, 1)),
    ("notebooks/04_2_batch_size", (4, 2)),
    ("notebooks/07_transfer_learning", (7,)),
    ("notebooks/00_data", (0,)),
    ("book/intro", None),
    ("book/references", None),
])
def test_number_prefix_from_the_file_name(docname, prefix):
    assert book_site.number_prefix(docname) == prefix


def test_numbers_per_chapter_and_part():
    # what Sphinx assigns: continuous across the book, in order of appearance within each page
    env = SimpleNamespace(
        all_docs={"book/intro": 0, "notebooks/04_1_a": 0, "notebooks/04_2_b": 0, "notebooks/07_c": 0},
        toc_fignumbers={
            "book/intro": {"figure": {"fig-x": (1,)}},
            "notebooks/04_1_a": {"displaymath": {"equation-a2": (9,), "equation-a1": (8,), "equation-a3": (10,)},
                                 "exercise": {"ex-a": (3,)}},
            "notebooks/04_2_b": {"displaymath": {"equation-b1": (11,)}, "exercise": {"ex-b1": (4,), "ex-b2": (5,)}},
            "notebooks/07_c": {"exercise": {"ex-c2": (7,), "ex-c1": (6,)}},
        })
    book_site._number_per_chapter(None, env)
    t = env.toc_fignumbers
    assert t["notebooks/04_1_a"]["displaymath"] == {"equation-a1": (4, 1, 1), "equation-a2": (4, 1, 2),
                                                    "equation-a3": (4, 1, 3)}
    assert t["notebooks/04_1_a"]["exercise"] == {"ex-a": (4, 1, 1)}
    assert t["notebooks/04_2_b"]["exercise"] == {"ex-b1": (4, 2, 1), "ex-b2": (4, 2, 2)}
    assert t["notebooks/07_c"]["exercise"] == {"ex-c1": (7, 1), "ex-c2": (7, 2)}
    assert t["book/intro"] == {"figure": {"fig-x": (1,)}}  # pages that are not chapters keep Sphinx's numbers
    assert env.book_number_prefix == {"notebooks/04_1_a": (4, 1), "notebooks/04_2_b": (4, 2), "notebooks/07_c": (7,)}


def test_labels_have_no_latex_braces():
    from pybtex.database import parse_file

    database = parse_file(str(ROOT / "book" / "references.bib"))
    labels = {key: bib_style.author_year(entry) for key, entry in database.entries.items()}
    assert labels["signmnist2017"] == "tecperson, 2017"
    bad = {key: label for key, label in labels.items() if set(label) & set("{}\\")}
    assert not bad, f"labels with LaTeX left in them: {bad}"


@pytest.mark.parametrize("latex, text", [
    ("{tecperson}", "tecperson"), (r"M{\"u}ller", "Müller"), ("{XGBoost}: A  System", "XGBoost: A System"),
])
def test_plain_text_of_bibtex(latex, text):
    assert bib_style.plain(latex) == text


def test_citation_comes_from_citation_cff():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    c = book_site.citation(ROOT / "CITATION.cff")
    assert c["title"] == cff["preferred-citation"]["title"]
    assert c["url"] == cff["preferred-citation"]["url"]
    assert c["year"] == str(cff["preferred-citation"]["year"])


def test_citation_without_a_title_says_what_is_missing(tmp_path):
    bad = tmp_path / "CITATION.cff"
    bad.write_text("cff-version: 1.2.0\nauthors:\n  - name: Someone\n")
    with pytest.raises(ValueError, match="cannot read the book's citation.*title"):
        book_site.citation(bad)


def _raw(html: str):
    document = new_document("test", get_default_settings())
    node = nodes.raw("", html, format="html")
    document += node
    return document


def test_matplotlib_animation_loads_no_cdn_stylesheet():
    html = ('<link rel="stylesheet"\nhref="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/font-awesome.min.css">\n'
            '<script language="javascript">/* the animation */</script>')
    document = _raw(html)
    book_site._local_outputs(None, document, "notebooks/03_x")
    out = document.next_node(nodes.raw).astext()
    assert "font-awesome" not in out and "the animation" in out


def test_other_outside_resources_are_found():
    found = book_site.OUTSIDE.findall('<p><a href="https://doi.org/x">a link is fine</a></p>'
                                      '<script src="https://cdn.example.org/lib.js"></script>'
                                      '<img src="//images.example.org/a.png">')
    assert found == ["https://cdn.example.org/lib.js", "//images.example.org/a.png"]


def test_widget_manager_is_served_by_the_site():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    scripts = config["sphinx"]["config"]["nb_ipywidgets_js"]
    assert scripts, "no widget manager configured"
    for path in scripts:
        assert "://" not in path, f"{path} loads from outside the site"
        assert (ROOT / "book" / "_static" / path).is_file(), f"book/_static/{path} is missing"
    assert (ROOT / "book" / "_static" / "jupyter-widgets" / "LICENSE").is_file()


def test_screenshot_pages_skip_the_theme_and_the_redirect(tmp_path):
    for rel in ["index.html", "book/intro.html", "notebooks/03_x.html", "_static/x.html", "search.html"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<html></html>")
    assert site_screenshots.pages(tmp_path, None) == ["book/intro.html", "notebooks/03_x.html", "search.html"]
    assert site_screenshots.pages(tmp_path, ["notebooks/*"]) == ["notebooks/03_x.html"]
    assert site_screenshots.shot_name("notebooks/03_x.html", 400, "dark", 2) == "notebooks-03_x@400-dark-02.png"


def test_screenshot_verdicts():
    view = site_screenshots.View("notebooks/03_x.html", 400, "dark", outside=["https://cdn.example.org/a.js"],
                                 checks={"theme": "dark", "widgets": {"stored": 2, "drawn": 1},
                                         "scrolls": [{"what": "display equation", "math": True, "hint": True,
                                                      "width": 600, "visible": 300, "top": 10, "near": "A"},
                                                     {"what": "inline math", "math": True, "hint": False,
                                                      "width": 500, "visible": 300, "top": 20, "near": "B"}],
                                         "lowContrast": [{"what": "div.x", "ratio": 1.2, "color": "rgb(0,0,0)",
                                                          "background": "rgb(20,20,20)", "count": 3, "top": 5,
                                                          "near": "C", "text": "Data"}]})
    problems = "\n".join(view.problems())
    assert "loads from outside the site: https://cdn.example.org/a.js" in problems
    assert "1 of 2 widgets not drawn" in problems
    assert "scrolls with no hint" in problems and "near 'B'" in problems and "near 'A'" not in problems
    assert "low contrast 1.2" in problems
    assert len(view.notes()) == 2
    fine = site_screenshots.View("book/intro.html", 1400, "light", checks={"theme": "light"})
    assert fine.problems() == []
    wrong_theme = site_screenshots.View("book/intro.html", 1400, "dark", checks={"theme": "light"})
    assert "theme 'light', not 'dark'" in wrong_theme.problems()[0]


def test_citations_in_the_text_take_the_list_labels_year():
    style = bib_style.BookReferenceStyle()
    for role in ("p", "t", "year", "ps", "ts"):
        assert type(style.role_style[role]).__name__ in {"_Parenthetical", "_Textual", "_Year"}, role
    formatted = SimpleNamespace(label="LeCun et al., 1998b")
    assert bib_style.label_year.format_data({"formatted_entry": formatted}).render_as("text") == "1998b"


def test_two_works_with_one_label_get_letters():
    from pybtex.database import parse_file

    database = parse_file(str(ROOT / "book" / "references.bib"))
    labels = [bib_style.label(entry) for entry in database.entries.values()]
    assert len(labels) == len(set(labels)), "two works share a label"
    assert bib_style.label(database.entries["lecun1998gradient"]).startswith("LeCun et al., 1998")


NODE_CHECK = r"""
const plugin = (await import(process.argv[2])).default;
const [glossary, cites] = plugin.transforms.map((t) => t.plugin());
const tree = {type: "root", children: [
  {type: "glossary", children: [
    {type: "paragraph", children: [{type: "text", value: "Epoch\nOne pass over the "}, {type: "strong", children: []}]},
    {type: "paragraph", children: [{type: "text", value: "Step\nOne update."}]}]},
  {type: "cite", label: "ch04-1-kingma2015adam", identifier: "ch04-1-kingma2015adam"},
  {type: "cite", label: "ch07-he2016resnet", identifier: "ch07-he2016resnet"},
  {type: "cite", label: "kingma2015adam", identifier: "kingma2015adam"}]};
glossary(tree); cites(tree);
const role = plugin.roles[0].run({body: "Colab"});
console.log(JSON.stringify({list: tree.children[0].children[0], cites: tree.children.slice(1).map((c) => c.label), role}));
"""


def test_jupyter_book_2_plugin_rewrites_sphinx_markup(tmp_path):
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Jupyter Book 2 plugin (book/_ext/myst_roles.mjs) runs in node")
    script = tmp_path / "check.mjs"
    script.write_text(NODE_CHECK)
    done = subprocess.run([node, str(script), str(ROOT / "book" / "_ext" / "myst_roles.mjs")],
                          capture_output=True, text=True, timeout=60, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    items = out["list"]["children"]
    assert out["list"]["type"] == "definitionList"
    assert [i["type"] for i in items] == ["definitionTerm", "definitionDescription"] * 2
    assert items[0]["children"][0]["value"] == "Epoch" and items[2]["children"][0]["value"] == "Step"
    assert items[1]["children"][0]["children"][0]["value"] == "One pass over the "
    assert out["cites"] == ["kingma2015adam", "he2016resnet", "kingma2015adam"]
    assert out["role"] == [{"type": "strong", "children": [{"type": "text", "value": "Colab"}]}]


def test_widget_outputs_without_their_state_are_a_warning(monkeypatch):
    warnings = []
    monkeypatch.setattr(book_site.logger, "warning", lambda message, **kw: warnings.append(message))
    view = '<script type="application/vnd.jupyter.widget-view+json">{"model_id": "x"}</script>'
    app = SimpleNamespace(env=None)
    monkeypatch.setattr(book_site, "_widget_state_stored", lambda app, docname: False)
    book_site._local_outputs(app, _raw(view), "notebooks/04_2_x")
    assert len(warnings) == 1 and "1 widget outputs" in warnings[0] and "blank on the site" in warnings[0]
    monkeypatch.setattr(book_site, "_widget_state_stored", lambda app, docname: True)
    book_site._local_outputs(app, _raw(view), "notebooks/04_2_x")
    assert len(warnings) == 1
