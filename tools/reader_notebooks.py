#!/usr/bin/env python3
"""Reader notebooks: the chapters with their MyST markup rewritten as Markdown that Jupyter and Colab render.

The site renders the chapters' MyST (roles, directives, labelled equations). Colab, Jupyter and a
downloaded ``.ipynb`` show plain Markdown, where ``{cite}`key``` and a solution directive are raw
markup and the solutions are visible. This module makes, from each ``notebooks/NN_slug.ipynb``, a
*reader notebook* whose Markdown reads as intended there.

**One source for numbers and labels: the site build.** The reader notebooks are written at the end of
the HTML build by ``book/_ext/colab_readers.py``, which fills a :class:`Book` from the Sphinx environment
of that build (``book_from_sphinx``): equation, exercise and figure numbers from ``env.toc_fignumbers`` after
``book/_ext/book_site.py`` renumbered them per chapter and part (``(4.1.5)``, "Exercise 7.3"), section
titles from the labels Sphinx resolved, glossary terms from its glossary, and citations from
sphinxcontrib-bibtex: each cited work's label as the site prints it (``book/_ext/bib_style.py``:
"Kingma and Ba, 2015") and each chapter's reference list with the site's entries, in the site's order.
Nothing here counts or formats on its own; ``tests/test_reader_notebooks.py`` compares the reader
notebooks with the built pages.

Why one module (about 640 lines): every rewrite below reads the same :class:`Book` and the same MyST
parsing of a cell, and they must agree with each other (a link's target, a number's format); split by
markup they would pass the book and the parser around. It writes nothing of its own but the notebooks.

What is rewritten (the Markdown, cell by cell; code cells, outputs and tags are copied unchanged):

- ``{cite}`` and friends: author-year text linking to the work's DOI or URL (``{cite:t}`` -> "Kingma and
  Ba (2015)", ``{cite}``/``{cite:p}`` -> "(Kingma and Ba, 2015)"); ``{bibliography}``: the chapter's list;
- labelled equations get ``\\tag{N.k}`` and ``{eq}`` becomes "(N.k)", linked to the equation on the site;
- ``exercise`` -> a heading "Exercise N.k: title"; ``solution`` -> a collapsed ``<details>`` block;
- ``{ref}``/``{numref}``/``{doc}``/``{term}`` and ``[text](#label)`` -> links to the site; chapter links
  (``[chapter 3](03_optimizers.ipynb)``) -> that chapter's reader notebook in Colab; other files of the
  repository -> the file on GitHub;
- admonitions -> block quotes (``dropdown`` ones -> ``<details>``); ``{guilabel}`` -> bold;
  targets ``(label)=``, comments ``% ...`` and block breaks ``+++`` are dropped.

Code cells whose input the site hides (tags ``remove-input``, ``hide-input``, ``remove-cell``,
``hide-cell``) are folded: Colab shows them as a form titled by a ``#@title`` line (metadata
``cellView: form``), JupyterLab collapsed (``jupyter.source_hidden``); they still run.

Anything else (an unknown role or directive, a label the site does not know, an exercise without a
label, a citation key the bibliography lacks) raises :class:`ConversionError` naming the chapter, the
cell and what to do, and fails the build; :func:`find_myst` checks the result once more.

Why not a maintained converter: QuantEcon's ``sphinx-tojupyter`` (0.6.0, on PyPI) is a second Sphinx
builder that rebuilds notebooks from the doctree; it drops stored outputs (its code-cell translator
skips ``cell_output`` containers), renders citations as LaTeX ``\\cite{}``, leaves solutions open, numbers
equations by ``toc_secnumbers`` rather than the book's per-part numbers, and pulls in dask and nbdime. A
second full build with it would cost more than this module, and give readers less.

    .venv/bin/python tools/reader_notebooks.py --out DIR [notebooks/NN_slug.ipynb ...]

builds the site (stored outputs, nothing executed) into a temporary folder and copies the reader
notebooks to ``DIR``. The workflow publishes the site's reader notebooks to the branch ``colab``, which
the Colab launch buttons open.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, or loaded by the Sphinx extension
    sys.path.insert(0, str(ROOT))

from tools import layout  # noqa: E402

READER_BRANCH = "colab"  # the branch the workflow publishes reader notebooks to; Colab opens them there
COLAB_URL = "https://colab.research.google.com"
READERS_IN_SITE = Path("_sources") / "notebooks"  # where the site build writes them (its .ipynb downloads)

ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso",
               "admonition", "margin", "sidebar", "topic", "epigraph"}
CODE_DIRECTIVES = {"code", "code-block", "sourcecode"}
FOLDED_TAGS = ("remove-cell", "remove-input", "hide-cell", "hide-input")


class ConversionError(ValueError):
    """MyST markup that the reader notebooks cannot render (or a broken reference)."""


# --------------------------------------------------------------------------- the book, as the site build resolved it
@dataclasses.dataclass
class Target:
    docname: str  # "notebooks/05_1_backprop_fashion_mnist"
    kind: str  # "equation", "exercise", "figure", "section", "label", "term"
    number: str | None = None  # "5.3", "4.1.5"
    title: str | None = None  # Markdown (a section's title, math as $...$)
    anchor: str = ""


@dataclasses.dataclass
class Citation:
    label: str  # "Kingma and Ba, 2015": the site's label (names, then the year)
    url: str | None  # DOI or URL of the work
    entry: str  # the site's reference-list entry, as Markdown

    @property
    def names(self) -> str:
        return self.label.rpartition(", ")[0] or self.label

    @property
    def year(self) -> str:
        return self.label.rpartition(", ")[2]


@dataclasses.dataclass
class Book:
    root: Path
    site_url: str  # ends with "/"
    repository: str  # https://github.com/org/repo
    branch: str  # the source branch (for links to files)
    reader_branch: str = READER_BRANCH
    labels: dict[str, Target] = dataclasses.field(default_factory=dict)
    titles: dict[str, str] = dataclasses.field(default_factory=dict)  # docname -> title
    terms: dict[str, Target] = dataclasses.field(default_factory=dict)  # glossary term (lower case) -> target
    citations: dict[str, Citation] = dataclasses.field(default_factory=dict)  # key as cited -> citation
    bibliographies: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # docname -> keys, site order

    def page_url(self, docname: str, anchor: str = "") -> str:
        return f"{self.site_url}{docname}.html" + (f"#{anchor}" if anchor else "")

    def colab_url(self, stem: str) -> str:
        org_repo = self.repository.split("github.com/", 1)[1].strip("/")
        return f"{COLAB_URL}/github/{org_repo}/blob/{self.reader_branch}/notebooks/{stem}.ipynb"

    def file_url(self, rel: str) -> str:
        return f"{self.repository.rstrip('/')}/blob/{self.branch}/{rel}"


def load_config(root: Path) -> tuple[str, str, str]:
    """(site URL, repository URL, branch) from ``_config.yml``."""
    import yaml

    cfg = yaml.safe_load((root / "_config.yml").read_text())
    site = (cfg.get("html") or {}).get("baseurl") or ""
    repo = (cfg.get("repository") or {}).get("url") or ""
    branch = (cfg.get("repository") or {}).get("branch") or "main"
    if not site.startswith("http"):
        raise ConversionError("_config.yml: html.baseurl (the site's public URL) is needed for the reader notebooks' links")
    if "github.com/" not in repo:
        raise ConversionError("_config.yml: repository.url must be a GitHub repository (Colab opens notebooks from GitHub)")
    return site.rstrip("/") + "/", repo.rstrip("/"), branch


# --------------------------------------------------------------------------- markdown scanning
FENCE_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_RE = re.compile(r"^\{(?P<name>[A-Za-z][\w:.-]*)\}\s*(?P<arg>.*)$")
TARGET_RE = re.compile(r"^ {0,3}\((?P<label>[^()\s]+)\)=\s*$")
HEADING_RE = re.compile(r"^ {0,3}(?P<hashes>#{1,6})\s+(?P<title>.*?)\s*#*\s*$")
MATH_LABEL_RE = re.compile(r"\$\$\s*\((?P<label>[^()\s]+)\)\s*$")
OPTION_RE = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
INLINE_RE = re.compile(
    r"(?P<role>\{(?P<rname>[A-Za-z][\w:+.-]*)\}(?P<rt>`+)(?P<rc>.+?)(?P=rt))"
    r"|(?P<code>(?P<ct>`+).+?(?P=ct))"
    r"|(?P<math>\$\$.+?\$\$|(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$)"
    r"|(?P<image>!\[[^\]]*\]\([^)]*\))"
    r"|(?P<link>\[(?P<ltext>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<lurl>[^()\s]+)(?P<ltitle>\s+\"[^\"]*\")?\))"
    r"|(?P<subst>\{\{[^{}]*\}\})",
    re.S,
)
EXPLICIT_RE = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


def _split_options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """Directive options (``:key: value`` lines or a ``---`` YAML block) and the remaining body."""
    opts: dict[str, str] = {}
    if body and body[0].strip() == "---":
        import yaml

        end = next((i for i in range(1, len(body)) if body[i].strip() == "---"), None)
        if end is None:
            raise ConversionError("a directive's YAML option block (---) is not closed")
        parsed = yaml.safe_load("\n".join(body[1:end])) or {}
        return {str(k): "" if v is None else str(v) for k, v in parsed.items()}, body[end + 1:]
    i = 0
    while i < len(body) and (m := OPTION_RE.match(body[i].strip())) and body[i].startswith(":"):
        opts[m.group("key")] = m.group("value").strip()
        i += 1
    while i < len(body) and not body[i].strip():
        i += 1
    return opts, body[i:]


def _find_fence_end(lines: list[str], start: int, fence: str) -> int:
    char, n = fence[0], len(fence)
    close = re.compile(rf"^ {{0,3}}{re.escape(char)}{{{n},}}\s*$")
    for j in range(start + 1, len(lines)):
        if close.match(lines[j]):
            return j
    return len(lines)  # an unclosed fence runs to the end, as in CommonMark


def _math_block_end(lines: list[str], start: int) -> int:
    """Index of the line that closes the $$ block opened on ``lines[start]``."""
    first = lines[start].strip()
    if first.count("$$") >= 2:
        return start
    for j in range(start + 1, len(lines)):
        if "$$" in lines[j]:
            return j
    return len(lines) - 1


# --------------------------------------------------------------------------- conversion of one chapter
class Chapter:
    """Converts the Markdown of one chapter, with the numbers and labels of ``book``."""

    def __init__(self, book: Book, stem: str):
        self.book = book
        self.stem = stem
        self.docname = f"notebooks/{stem}"
        self.heading_level = 1
        self.cell = 0

    # ---- errors
    def fail(self, message: str):
        raise ConversionError(f"{self.stem}.ipynb, cell {self.cell}: {message}")

    # ---- blocks
    def convert(self, text: str) -> str:
        return "\n".join(self.block(text.split("\n")))

    def block(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        para: list[str] = []

        def flush():
            if para:
                out.extend(self.inline("\n".join(para)).split("\n"))
                para.clear()

        i = 0
        while i < len(lines):
            line = lines[i]
            fence = FENCE_RE.match(line)
            if fence and not (fence.group("fence")[0] == "`" and "`" in fence.group("info")):
                flush()
                end = _find_fence_end(lines, i, fence.group("fence"))
                body = lines[i + 1:end]
                d = DIRECTIVE_RE.match(fence.group("info").strip())
                if d:
                    out.extend(self.directive(d.group("name"), d.group("arg").strip(), body))
                elif fence.group("fence")[0] == ":":
                    self.fail(f"a colon fence without a directive name ({line.strip()!r})")
                else:
                    out.extend(lines[i:end + 1])  # a code block: verbatim
                i = end + 1
                continue
            if line.lstrip().startswith("$$") and len(line) - len(line.lstrip()) <= 3:
                flush()
                end = _math_block_end(lines, i)
                out.extend(self.math("\n".join(lines[i:end + 1])))
                i = end + 1
                continue
            target = TARGET_RE.match(line)
            if target:
                flush()
                self.target(target.group("label"), lines[i + 1:])
                i += 1
                continue
            if re.match(r"^ {0,3}%", line) or re.match(r"^ {0,3}\+\+\+", line):
                flush()  # a MyST comment or block break: not shown on the site either
                i += 1
                continue
            heading = HEADING_RE.match(line)
            if heading:
                flush()
                self.heading_level = len(heading.group("hashes"))
                out.append(self.inline(line))
                i += 1
                continue
            para.append(line)
            i += 1
        flush()
        return out

    def target(self, label: str, rest: list[str]):
        """``(label)=``: dropped (the site resolved it); it must be a label the site knows."""
        if label not in self.book.labels:
            self.fail(f"the label {label!r} is not in the site build")

    def _target(self, label: str, kind: str, what: str) -> Target:
        target = self.book.labels.get(label)
        if target is None or target.kind != kind:
            self.fail(f"{what} {label!r} is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} of the site build"
                      + (f" (it is a {target.kind})" if target else ""))
        return target

    def math(self, text: str) -> list[str]:
        body = text.strip()
        m = MATH_LABEL_RE.search(body)
        label = m.group("label") if m else None
        if m:
            body = body[: m.start()] + "$$"
        if not (body.startswith("$$") and body.endswith("$$") and len(body) >= 4):
            self.fail(f"a display-math block is not closed with $$: {text[:60]!r}")
        inner = body[2:-2].strip("\n")
        if label is None:
            return text.split("\n")
        number = self._target(label, "equation", "the equation label").number
        return ["$$", inner.strip(), *([rf"\tag{{{number}}}"] if number else []), "$$"]

    def directive(self, name: str, arg: str, body: list[str]) -> list[str]:
        opts, content = _split_options(body)
        if name == "exercise":
            return self.exercise(arg, opts, content)
        if name == "solution":
            return self.solution(arg, opts, content)
        if name == "bibliography":
            return self.bibliography(opts, content)
        if name == "math":
            text = "\n".join(content).strip()
            label = opts.get("label")
            return self.math(f"$$\n{text}\n$$" + (f" ({label})" if label else ""))
        if name in CODE_DIRECTIVES:
            lang = arg.split()[0] if arg else ""
            fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", "\n".join(content))), default=0))
            return [f"{fence}{lang}", *content, fence]
        if name == "dropdown" or (name in ADMONITIONS and "dropdown" in opts.get("class", "").split()):
            title = self.inline(arg) if arg else name.capitalize()
            return ["<details>", f"<summary>{title}</summary>", "", *self.block(content), "", "</details>"]
        if name in ADMONITIONS:
            title = self.inline(arg) if (name in {"admonition", "topic", "sidebar"} and arg) else \
                {"seealso": "See also"}.get(name, name.capitalize())
            inner = self.block(content)
            return [f"> **{title}**", ">", *[f"> {ln}" if ln.strip() else ">" for ln in inner]]
        self.fail(f"the MyST directive {{{name}}} has no rendering in reader notebooks; teach "
                  f"tools/reader_notebooks.py (Chapter.directive) to render it, or use a supported one")
        return []

    def exercise(self, title: str, opts: dict, content: list[str]) -> list[str]:
        heading = "Exercise"
        if "nonumber" not in opts:
            if not opts.get("label"):
                self.fail(f"an exercise without a :label: ({title!r}): give every exercise one (CONTRIBUTING.md)")
            number = self._target(opts["label"], "exercise", "the exercise label").number
            heading = f"Exercise {number}" if number else heading
        if title:
            heading += f": {self.inline(title)}"
        level = "#" * min(self.heading_level + 1, 6)
        return [f"{level} {heading}", "", *self.block(content)]

    def solution(self, label: str, opts: dict, content: list[str]) -> list[str]:
        summary = "Solution"
        if label:
            number = self._target(label, "exercise", "the solution refers to").number
            if number:
                summary = f"Solution to Exercise {number}"
        return ["<details>", f"<summary>{summary}</summary>", "", *self.block(content), "", "</details>"]

    def bibliography(self, opts: dict, content: list[str]) -> list[str]:
        keys = self.book.bibliographies.get(self.docname, [])
        if not keys:
            return ["*No works are cited in this chapter.*"]
        return [f"- [{self.book.citations[k].label}] {self.book.citations[k].entry}" for k in keys]

    # ---- inline
    def inline(self, text: str) -> str:
        def replace(m: re.Match) -> str:
            if m.group("role"):
                return self.role(m.group("rname"), m.group("rc"))
            if m.group("link"):
                return self.link(m.group("ltext"), m.group("lurl"), m.group("ltitle") or "")
            if m.group("subst"):
                self.fail(f"a MyST substitution {m.group('subst')!r} has no value in reader notebooks")
            return m.group(0)  # code spans, math and images as they are

        return INLINE_RE.sub(replace, text)

    def role(self, name: str, content: str) -> str:
        content = content.strip()
        if name == "cite" or name.startswith("cite:"):
            return self.cite(name, content)
        if name in {"eq", "ref", "numref"}:
            return self.ref(name, content)
        if name == "doc":
            m = EXPLICIT_RE.match(content)
            text, target = (m.group("text"), m.group("target")) if m else ("", content)
            docname = self.resolve_doc(target)
            title = text or self.book.titles.get(docname)
            if not title:
                self.fail(f"{{doc}}`{content}`: no page {docname!r} in the book")
            return f"[{title}]({self.doc_url(docname)})"
        if name in {"guilabel", "menuselection"}:
            return f"**{content.replace('-->', '→')}**"
        if name == "kbd":
            return f"<kbd>{content}</kbd>"
        if name == "math":
            return f"${content}$"
        if name in {"sub", "sup"}:
            return f"<{name}>{content}</{name}>"
        if name == "abbr":
            return re.sub(r"\s*\(.*\)$", "", content)
        if name == "term":
            m = EXPLICIT_RE.match(content)
            text, term = (m.group("text"), m.group("target")) if m else (content, content)
            target = self.book.terms.get(term.strip().lower())
            if target is None:
                self.fail(f"{{term}}`{content}`: no glossary term {term!r} in the book's pages")
            return f"[{text}]({self.book.page_url(target.docname, target.anchor)})"
        if name == "emphasis":
            return f"*{content}*"
        if name in {"strong"}:
            return f"**{content}**"
        if name in {"code", "literal", "file", "samp", "command", "program", "envvar", "py:func", "py:class",
                    "py:mod", "py:meth", "py:attr", "func", "class", "mod", "meth", "attr"}:
            return f"`{content}`"
        self.fail(f"the MyST role {{{name}}} has no rendering in reader notebooks; teach "
                  f"tools/reader_notebooks.py (Chapter.role) to render it, or use a supported one")
        return ""

    def cite(self, name: str, content: str) -> str:
        parts = []
        for key in (k.strip() for k in content.split(",") if k.strip()):
            c = self.book.citations.get(key)
            if c is None:
                self.fail(f"the citation key {key!r} is in no bibliography of the site build (book/references.bib, "
                          "and the chapter's {bibliography} with its :keyprefix:)")
            text = f"{c.names} ({c.year})" if name in {"cite:t", "cite:ts"} else \
                c.names if name == "cite:author" else c.year if name == "cite:year" else c.label
            parts.append(f"[{text}]({c.url})" if c.url else text)
        if name in {"cite:t", "cite:ts", "cite:author", "cite:year", "cite:alp"}:
            return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        return "(" + "; ".join(parts) + ")"

    def ref(self, name: str, content: str) -> str:
        m = EXPLICIT_RE.match(content)
        text, label = (m.group("text"), m.group("target")) if m else ("", content)
        target = self.book.labels.get(label)
        if target is None:
            self.fail(f"{{{name}}}`{content}`: no label {label!r} in the site build")
        url = self.book.page_url(target.docname, target.anchor)
        if name == "eq":
            if target.kind != "equation":
                self.fail(f"{{eq}}`{label}` refers to a {target.kind}, not a labelled equation")
            return f"[({target.number})]({url})" if not text else f"[{text}]({url})"
        if text:
            for token in ("{number}", "%s"):
                text = text.replace(token, target.number or "")
            text = text.replace("{name}", target.title or "")
            return f"[{text}]({url})"
        if target.kind == "equation":
            return f"[({target.number})]({url})"
        if target.kind == "exercise":
            return f"[Exercise {target.number}]({url})" if target.number else f"[Exercise]({url})"
        if target.kind in {"figure", "table"} and name == "numref":
            return f"[{target.kind.capitalize()} {target.number}]({url})"
        if target.title:
            return f"[{target.title}]({url})"
        self.fail(f"{{{name}}}`{label}` needs an explicit text (`text <{label}>`): the label is not on a heading")
        return ""

    def resolve_doc(self, target: str) -> str:
        """A document path as written in ``notebooks/NN.ipynb`` -> the book's docname."""
        path = target.split("#")[0]
        if path.startswith("/"):
            rel = path.lstrip("/")
        else:
            rel = (Path("notebooks") / path).as_posix()
        parts: list[str] = []
        for part in rel.split("/"):
            if part == "..":
                if not parts:
                    self.fail(f"the link {target!r} leaves the book")
                parts.pop()
            elif part not in {"", "."}:
                parts.append(part)
        return re.sub(r"\.(md|ipynb|py|rst)$", "", "/".join(parts))

    def doc_url(self, docname: str, anchor: str = "") -> str:
        stem = layout.docname_stem(docname)
        if stem and not anchor:
            return self.book.colab_url(stem)
        return self.book.page_url(docname, anchor)

    def link(self, text: str, url: str, title: str) -> str:
        text = self.inline(text)
        if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):  # https:, mailto:, ...
            return f"[{text}]({url}{title})"
        if url.startswith("#"):
            label = url[1:]
            target = self.book.labels.get(label)
            new = self.book.page_url(target.docname, target.anchor) if target else self.book.page_url(self.docname, label)
            return f"[{text}]({new}{title})"
        path, _, anchor = url.partition("#")
        if re.search(r"\.(md|ipynb|rst)$", path):
            docname = self.resolve_doc(path)
            if docname not in self.book.titles:
                self.fail(f"the link {url!r} points at {docname!r}, which is not a page of the book")
            label = self.book.labels.get(anchor)
            new = self.doc_url(docname, label.anchor if label else anchor)
            return f"[{text}]({new}{title})"
        resolved = (self.book.root / "notebooks" / path).resolve()
        try:
            inside = resolved.relative_to(self.book.root.resolve()).as_posix()
        except ValueError:
            self.fail(f"the link {url!r} points outside the repository")
        if not resolved.exists():
            self.fail(f"the link {url!r} points at {inside}, which does not exist")
        return f"[{text}]({self.book.file_url(inside)}{'#' + anchor if anchor else ''}{title})"

# --------------------------------------------------------------------------- what must never reach a reader notebook
FENCED_CODE_RE = re.compile(r"^( {0,3})(`{3,}|~{3,})(?!\s*\{)[^\n]*\n.*?^\1?\2[`~]*\s*$", re.S | re.M)
ROLE_OR_CODE_RE = re.compile(r"(?P<role>\{[A-Za-z][\w:+.-]*\}(?P<rt>`+).*?(?P=rt))|(?P<ct>`+).+?(?P=ct)", re.S)
MYST_PATTERNS = {
    "role": re.compile(r"\{[A-Za-z][\w:+.-]*\}`"),
    "directive": re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*\{[^}\n]*\}", re.M),
    "target": re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M),
    "equation label": re.compile(r"\$\$\s*\([^()\s]+\)\s*$", re.M),
    "directive option": re.compile(r"^:(label|class|filter|keyprefix|name|nonumber|hidden|all|style|open):", re.M),
    "comment": re.compile(r"^ {0,3}%", re.M),
    "block break": re.compile(r"^ {0,3}\+\+\+", re.M),
    "substitution": re.compile(r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}"),
}


def find_myst(markdown: str) -> list[str]:
    """The MyST roles, directives and other markup left in ``markdown`` (outside code), as short descriptions."""
    text = FENCED_CODE_RE.sub("", markdown)
    found = []

    def strip(m: re.Match) -> str:  # roles are findings; inline code spans are not looked into
        if m.group("role"):
            found.append(f"role: {m.group('role')[:60]!r}")
        return ""

    for kind, pattern in MYST_PATTERNS.items():  # block-level markup first: a fence is no code span
        if kind not in {"role", "substitution"}:
            found.extend(f"{kind}: {m.group(0).strip()[:60]!r}" for m in pattern.finditer(text))
    text = ROLE_OR_CODE_RE.sub(strip, text)
    found.extend(f"substitution: {m.group(0)[:60]!r}" for m in MYST_PATTERNS["substitution"].finditer(text))
    return found


# --------------------------------------------------------------------------- notebooks
def fold(cell) -> None:
    """Fold a code cell whose input the site hides: a Colab form with a ``#@title`` line, collapsed in JupyterLab."""
    lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
    comment = lines[0].lstrip("#").strip() if lines and lines[0].startswith("#") else ""
    title = comment or ("Setup" if "remove-cell" in cell.metadata.get("tags", []) else "Code (folded)")
    cell.source = f"#@title {title}\n{cell.source}"
    cell.metadata["cellView"] = "form"
    cell.metadata.setdefault("jupyter", {})["source_hidden"] = True


def unfolded_source(source: str) -> str:
    """The cell's source without the ``#@title`` line :func:`fold` added."""
    return source.split("\n", 1)[1] if source.startswith("#@title ") else source


def convert_notebook(nb, stem: str, book: Book):
    """The reader notebook of one chapter (a new notebook; ``nb`` is not changed)."""
    import nbformat

    reader = copy.deepcopy(nb)
    chapter = Chapter(book, stem)
    for i, cell in enumerate(reader.cells):
        if cell.cell_type == "code":
            if set(cell.metadata.get("tags", [])) & set(FOLDED_TAGS):
                fold(cell)
            continue
        if cell.cell_type != "markdown":
            continue
        chapter.cell = i
        cell.source = chapter.convert(cell.source)
        left = find_myst(cell.source)
        if left:
            raise ConversionError(f"{stem}.ipynb, cell {i}: MyST markup reached the reader notebook: {'; '.join(left)}")
    title = book.titles.get(chapter.docname, stem)
    note = (f"*This is the reader notebook of {title} of [How neural networks are trained]({book.site_url}), made "
            f"from [`notebooks/{stem}.ipynb`]({book.file_url(f'notebooks/{stem}.ipynb')}) for Colab and Jupyter. "
            f"The first code cell installs what the chapter needs in Colab and does nothing elsewhere; the "
            f"[chapter on the site]({book.page_url(chapter.docname)}) has the same text and outputs.*")
    first_md = next((i for i, c in enumerate(reader.cells) if c.cell_type == "markdown"), -1)
    reader.cells.insert(first_md + 1, nbformat.v4.new_markdown_cell(note, metadata={"tags": ["reader-note"]}))
    reader.metadata.setdefault("course_book", {})
    if isinstance(reader.metadata["course_book"], dict):
        reader.metadata["course_book"]["reader_notebook"] = {"source": f"notebooks/{stem}.ipynb",
                                                             "made_by": "tools/reader_notebooks.py"}
    return reader


def write_reader_notebooks(book: Book, sources: list[Path], out: Path) -> list[Path]:
    """Convert the chapters ``sources`` (.ipynb paths) into ``out``; returns the files written."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        reader = convert_notebook(nb, Path(path).stem, book)
        nbformat.validate(reader)
        dest = out / Path(path).name
        nbformat.write(reader, dest)
        written.append(dest)
    return written


def build_site(root: Path, out: Path) -> Path:
    """Build the site of the checkout ``root`` into ``out`` (its stored outputs, nothing executed) and return
    the folder where the build wrote the reader notebooks. Raises ConversionError when the build fails."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb)] if jb.exists() else [sys.executable, "-m", "jupyter_book"]
    result = subprocess.run([*cmd, "build", str(root), "--path-output", str(out)], capture_output=True, text=True)
    readers = out / "_build" / "html" / READERS_IN_SITE
    if result.returncode != 0 or not readers.is_dir():
        raise ConversionError(f"the site build of {root} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return readers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the chapters' reader notebooks (Markdown without MyST), "
                                                 "from a site build of this checkout.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="chapters to copy (default: every chapter)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the reader notebooks")
    args = parser.parse_args(argv)
    wanted = {p.stem for p in args.notebooks}
    with tempfile.TemporaryDirectory(prefix="reader-notebooks-") as tmp:
        try:
            readers = build_site(ROOT, Path(tmp))
        except ConversionError as exc:
            print(f"reader notebooks: {exc}", file=sys.stderr)
            return 1
        args.out.mkdir(parents=True, exist_ok=True)
        for path in layout.chapter_sources(ROOT, ".ipynb"):
            if (not wanted or path.stem in wanted) and (readers / path.name).exists():
                shutil.copy2(readers / path.name, args.out / path.name)
                print(args.out / path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
