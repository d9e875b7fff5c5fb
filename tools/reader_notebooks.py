#!/usr/bin/env python3
"""Reader notebooks: the chapters with their MyST markup rewritten as Markdown that Jupyter and Colab render.

The site renders the chapters' MyST (roles, directives, labelled equations). Colab, Jupyter and a
downloaded ``.ipynb`` show plain Markdown, where ``{cite}`key``` and a solution directive are raw
markup and the solutions are visible. This module makes, from each ``notebooks/NN_slug.ipynb``
(the one source of truth), a *reader notebook* whose Markdown reads as intended there:

- ``{cite}`` and friends: author-year text linking to the DOI or URL of ``book/references.bib``
  (``{cite:t}`` -> "Kingma and Ba (2015)", ``{cite}``/``{cite:p}`` -> "(Kingma and Ba, 2015)");
- ``{bibliography}``: a list of the entries this chapter cites;
- labelled equations get ``\\tag{N.k}`` and ``{eq}`` becomes "(N.k)", linked to the equation on the
  site; N is the chapter's number (the ``NN`` of its file name), k counts the chapter's labelled
  equations in order of appearance, exactly as the site numbers them; exercises likewise;
- ``exercise`` -> a heading "Exercise N.k: title"; ``solution`` -> a collapsed ``<details>`` block;
- ``{ref}``/``{numref}``/``{doc}`` and ``[text](#label)`` -> links to the site; chapter links
  (``[chapter 3](03_optimizers.ipynb)``) -> that chapter's reader notebook in Colab; other files of
  the repository -> the file on GitHub;
- admonitions -> block quotes (``dropdown`` ones -> ``<details>``); ``{guilabel}`` -> bold;
  targets ``(label)=``, comments ``% ...`` and block breaks ``+++`` are dropped.

Anything else (an unknown role or directive, a label nobody defines, a citation key missing from
the bibliography) raises :class:`ConversionError` naming the chapter, the cell and what to do;
:func:`find_myst` checks the result once more. Code cells, their outputs and every cell's tags and
metadata are copied unchanged.

    .venv/bin/python tools/reader_notebooks.py --out DIR [notebooks/NN_slug.ipynb ...]

The site build (``book/_ext/colab_readers.py``) writes them into the site as the chapters'
``.ipynb`` downloads; the workflow publishes the same files to the branch ``colab``, which the
Colab launch buttons open.
"""
from __future__ import annotations

import argparse
import codecs
import copy
import dataclasses
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READER_BRANCH = "colab"  # the branch the workflow publishes reader notebooks to; Colab opens them there
COLAB_URL = "https://colab.research.google.com"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"

ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso",
               "admonition", "margin", "sidebar", "topic", "epigraph"}
CODE_DIRECTIVES = {"code", "code-block", "sourcecode"}


class ConversionError(ValueError):
    """MyST markup that the reader notebooks cannot render (or a broken reference)."""


# --------------------------------------------------------------------------- the book: labels, titles, bibliography
@dataclasses.dataclass
class Target:
    docname: str  # "notebooks/05_backprop_fashion_mnist"
    kind: str  # "equation", "exercise", "section", "label"
    number: str | None = None  # "5.3"
    title: str | None = None
    anchor: str = ""


@dataclasses.dataclass
class Book:
    root: Path
    site_url: str  # ends with "/"
    repository: str  # https://github.com/org/repo
    branch: str  # the source branch (for links to files)
    reader_branch: str = READER_BRANCH
    labels: dict[str, Target] = dataclasses.field(default_factory=dict)
    titles: dict[str, str] = dataclasses.field(default_factory=dict)  # docname -> title
    bib: dict | None = None  # key -> pybtex Entry
    terms: dict[str, Target] = dataclasses.field(default_factory=dict)  # glossary term (lower case) -> target

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


def chapter_number(stem: str) -> str:
    """``05_backprop`` -> ``5``: the N of the site's N.k numbers."""
    m = re.match(r"(\d\d)_", stem)
    if not m:
        raise ConversionError(f"{stem}: a chapter's file name starts with its two-digit number (NN_slug)")
    return str(int(m.group(1)))


def _latex_text(s: str) -> str:
    import latexcodec  # noqa: F401  (registers the codec)

    text = codecs.decode(s, "ulatex")
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def load_bib(path: Path) -> dict:
    from pybtex.database import parse_file

    return dict(parse_file(str(path)).entries)


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
    """Converts the Markdown of one chapter. ``collect=True`` is the first pass: numbers and labels only."""

    def __init__(self, book: Book, stem: str, collect: bool):
        self.book = book
        self.stem = stem
        self.docname = f"notebooks/{stem}"
        self.n = chapter_number(stem)
        self.collect = collect
        self.equations = 0
        self.exercises = 0
        self.heading_level = 1
        self.cited: list[str] = []  # bib keys, in order of first citation
        self.keyprefixes: set[str] = set()
        self.cell = 0
        self.pending_target: str | None = None

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
        """``(label)=``: a section label when a heading follows, else a plain label."""
        following = next((ln for ln in rest if ln.strip()), "")
        h = HEADING_RE.match(following)
        title = self.plain(h.group("title")) if h else None
        self.define(label, Target(self.docname, "section" if h else "label", None, title, label))

    def define(self, label: str, target: Target):
        if not self.collect:
            return
        old = self.book.labels.get(label)
        if old is not None and (old.docname, old.anchor) != (target.docname, target.anchor):
            self.fail(f"the label {label!r} is defined twice ({old.docname} and {target.docname}); labels must be unique")
        self.book.labels[label] = target

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
        self.equations += 1
        number = f"{self.n}.{self.equations}"
        self.define(label, Target(self.docname, "equation", number, None, f"equation-{label}"))
        return ["$$", inner.strip(), rf"\tag{{{number}}}", "$$"]

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
        if "nonumber" in opts:
            heading = "Exercise"
            number = None
        else:
            self.exercises += 1
            number = f"{self.n}.{self.exercises}"
            heading = f"Exercise {number}"
        if opts.get("label"):
            self.define(opts["label"], Target(self.docname, "exercise", number, self.plain(title) if title else None,
                                              opts["label"]))
        if title:
            heading += f": {self.inline(title)}"
        level = "#" * min(self.heading_level + 1, 6)
        return [f"{level} {heading}", "", *self.block(content)]

    def solution(self, label: str, opts: dict, content: list[str]) -> list[str]:
        summary = "Solution"
        if label and not self.collect:
            target = self.book.labels.get(label)
            if target is None or target.kind != "exercise":
                self.fail(f"the solution refers to {label!r}, which is no exercise label")
            if target.number:
                summary = f"Solution to Exercise {target.number}"
        return ["<details>", f"<summary>{summary}</summary>", "", *self.block(content), "", "</details>"]

    def bibliography(self, opts: dict, content: list[str]) -> list[str]:
        prefix = opts.get("keyprefix", "")
        self.keyprefixes.add(prefix)
        if self.collect:
            return []
        bib = self.book.bib or {}
        keys = sorted(bib) if "all" in opts else [k[len(prefix):] for k in self.cited if k.startswith(prefix)]
        keys = [k for k in dict.fromkeys(keys)]
        if not keys:
            return ["*No works are cited in this chapter.*"]
        entries = sorted(keys, key=lambda k: (self._authors_sort(bib[k]), bib[k].fields.get("year", "")))
        return [f"- {self.reference(bib[k])}" for k in entries]

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

    def plain(self, text: str) -> str:
        """Heading or title text without markup, for link texts."""
        text = re.sub(r"\{[A-Za-z][\w:+.-]*\}`([^`]*)`", r"\1", text)
        return re.sub(r"[*_`]", "", text).strip()

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
            if self.collect:
                return ""
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
            if self.collect:
                return ""
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
        keys = [k.strip() for k in content.split(",") if k.strip()]
        for k in keys:
            if k not in self.cited:
                self.cited.append(k)
        if self.collect:
            return ""
        parts = []
        for key in keys:
            entry = self.bib_entry(key)
            authors, year = self._authors_short(entry), entry.fields.get("year", "n.d.")
            text = f"{authors} ({year})" if name in {"cite:t", "cite:ts"} else \
                authors if name == "cite:author" else year if name == "cite:year" else f"{authors}, {year}"
            url = self._entry_url(entry)
            parts.append(f"[{text}]({url})" if url else text)
        if name in {"cite:t", "cite:ts", "cite:author", "cite:year", "cite:alp"}:
            return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        return "(" + "; ".join(parts) + ")"

    def bib_entry(self, key: str):
        bib = self.book.bib or {}
        prefixes = sorted(self.keyprefixes, key=len, reverse=True) + [""]
        for prefix in prefixes:
            if key.startswith(prefix) and key[len(prefix):] in bib:
                return bib[key[len(prefix):]]
        self.fail(f"the citation key {key!r} is not in book/references.bib (with this chapter's bibliography "
                  f"prefix {', '.join(sorted(self.keyprefixes)) or '(none)'})")

    def ref(self, name: str, content: str) -> str:
        m = EXPLICIT_RE.match(content)
        text, label = (m.group("text"), m.group("target")) if m else ("", content)
        if self.collect:
            return ""
        target = self.book.labels.get(label)
        if target is None:
            self.fail(f"{{{name}}}`{content}`: no label {label!r} in the book")
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
            return f"[Exercise {target.number}]({url})" if target.number else f"[{target.title or 'Exercise'}]({url})"
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
        if docname.startswith("notebooks/") and re.match(r"\d\d_", docname.split("/", 1)[1]) and not anchor:
            return self.book.colab_url(docname.split("/", 1)[1])
        return self.book.page_url(docname, anchor)

    def link(self, text: str, url: str, title: str) -> str:
        text = self.inline(text)
        if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):  # https:, mailto:, ...
            return f"[{text}]({url}{title})"
        if url.startswith("#"):
            if self.collect:
                return ""
            label = url[1:]
            target = self.book.labels.get(label)
            new = self.book.page_url(target.docname, target.anchor) if target else self.book.page_url(self.docname, label)
            return f"[{text}]({new}{title})"
        path, _, anchor = url.partition("#")
        if re.search(r"\.(md|ipynb|rst)$", path):
            docname = self.resolve_doc(path)
            if not self.collect and docname not in self.book.titles:
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

    # ---- bibliography formatting
    @staticmethod
    def _last(person) -> str:
        return _latex_text(" ".join(person.prelast_names + person.last_names))

    def _authors_short(self, entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [self._last(p) for p in people]
        if not names:
            return _latex_text(entry.fields.get("title", "Anonymous"))
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} and {names[1]}"
        return f"{names[0]} et al."

    def _authors_sort(self, entry) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        return " ".join(self._last(p) for p in people).lower()

    @staticmethod
    def _entry_url(entry) -> str | None:
        doi = entry.fields.get("doi")
        if doi:
            return doi if doi.startswith("http") else f"https://doi.org/{doi}"
        if entry.fields.get("url"):
            return entry.fields["url"]
        if entry.fields.get("eprint") and entry.fields.get("archiveprefix", entry.fields.get("eprinttype", "")).lower() == "arxiv":
            return f"https://arxiv.org/abs/{entry.fields['eprint']}"
        return None

    def reference(self, entry) -> str:
        people = entry.persons.get("author") or []

        def full(p):
            first = _latex_text(" ".join(p.first_names + p.middle_names))
            initials = " ".join(f"{w[0]}." for w in re.split(r"[\s-]+", first) if w)
            return f"{self._last(p)}, {initials}".strip(", ")

        names = [full(p) for p in people]
        authors = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""
        f = entry.fields
        title = _latex_text(f.get("title", ""))
        venue = _latex_text(f.get("journal") or f.get("booktitle") or f.get("publisher") or f.get("howpublished") or "")
        details = []
        if f.get("volume"):
            details.append(f"{f['volume']}" + (f"({f['number']})" if f.get("number") else ""))
        if f.get("pages"):
            details.append(_latex_text(f["pages"]).replace("--", "–"))
        text = f"{authors} ({f.get('year', 'n.d.')}). {title}."
        if venue:
            text += f" *{venue}*" + (f", {', '.join(details)}" if details else "") + "."
        if f.get("note"):
            text += f" {_latex_text(f['note'])}."
        url = self._entry_url(entry)
        if url:
            text += f" <{url}>"
        return text


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
def _title(markdown: str) -> str | None:
    for line in markdown.splitlines():
        m = HEADING_RE.match(line)
        if m and len(m.group("hashes")) == 1:
            return m.group("title").strip()
    return None


def scan_page(book: Book, docname: str, text: str) -> None:
    """Labels (``(label)=`` before a heading) and glossary terms of a prose page of the book."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        fence = FENCE_RE.match(lines[i])
        if fence:
            end = _find_fence_end(lines, i, fence.group("fence"))
            d = DIRECTIVE_RE.match(fence.group("info").strip())
            if d and d.group("name") == "glossary":
                _, body = _split_options(lines[i + 1:end])
                for line in body:
                    if line.strip() and not line[0].isspace():
                        term = line.split(" : ")[0].strip()
                        anchor = "term-" + re.sub(r"[^A-Za-z0-9]+", "-", term).strip("-")
                        book.terms[term.lower()] = Target(docname, "term", None, term, anchor)
            i = end + 1
            continue
        target = TARGET_RE.match(lines[i])
        if target:
            following = next((ln for ln in lines[i + 1:] if ln.strip()), "")
            h = HEADING_RE.match(following)
            title = re.sub(r"[*_`]", "", h.group("title")).strip() if h else None
            book.labels[target.group("label")] = Target(docname, "section" if h else "label", None, title,
                                                         target.group("label"))
        i += 1


def build_book(sources: list[Path], root: Path = ROOT) -> tuple[Book, dict[Path, object]]:
    """Read the chapters, collect every label, number and title (the first pass)."""
    import nbformat

    site, repo, branch = load_config(root)
    book = Book(root=root, site_url=site, repository=repo, branch=branch)
    book.bib = load_bib(root / "book" / "references.bib")
    for md in sorted((root / "book").glob("*.md")):
        text = md.read_text()
        title = _title(text)
        if title:
            book.titles[f"book/{md.stem}"] = title
        scan_page(book, f"book/{md.stem}", text)
    notebooks = {}
    for path in sorted((root / "notebooks").glob(NOTEBOOK_GLOB)):
        nb = nbformat.read(path, as_version=4)
        notebooks[path] = nb
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
        book.titles[f"notebooks/{path.stem}"] = _title(first) or path.stem
    for path, nb in notebooks.items():
        chapter = Chapter(book, path.stem, collect=True)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                chapter.cell = i
                chapter.convert(cell.source)
    wanted = {p.resolve() for p in sources}
    return book, {p: nb for p, nb in notebooks.items() if p.resolve() in wanted}


def convert_notebook(nb, stem: str, book: Book):
    """The reader notebook of one chapter (a new notebook; ``nb`` is not changed)."""
    reader = copy.deepcopy(nb)
    chapter = Chapter(book, stem, collect=False)
    # citation keys and prefixes first, so the bibliography and every citation resolve
    prescan = Chapter(book, stem, collect=True)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            prescan.cell = i
            prescan.convert(cell.source)
    chapter.keyprefixes = prescan.keyprefixes
    chapter.cited = list(prescan.cited)
    for i, cell in enumerate(reader.cells):
        if cell.cell_type != "markdown":
            continue
        chapter.cell = i
        cell.source = chapter.convert(cell.source)
        left = find_myst(cell.source)
        if left:
            raise ConversionError(f"{stem}.ipynb, cell {i}: MyST markup reached the reader notebook: {'; '.join(left)}")
    note = (f"*This is the reader notebook of {book.titles.get(chapter.docname, stem)} of "
            f"[How neural networks are trained]({book.site_url}), made from "
            f"[`notebooks/{stem}.ipynb`]({book.file_url(f'notebooks/{stem}.ipynb')}) for Colab and Jupyter. "
            f"The first code cell installs what the chapter needs in Colab and does nothing elsewhere; the "
            f"[chapter on the site]({book.page_url(chapter.docname)}) has the same text and outputs.*")
    import nbformat

    first_md = next((i for i, c in enumerate(reader.cells) if c.cell_type == "markdown"), -1)
    reader.cells.insert(first_md + 1, nbformat.v4.new_markdown_cell(note, metadata={"tags": ["reader-note"]}))
    reader.metadata.setdefault("course_book", {})
    if isinstance(reader.metadata["course_book"], dict):
        reader.metadata["course_book"]["reader_notebook"] = {"source": f"notebooks/{stem}.ipynb",
                                                             "made_by": "tools/reader_notebooks.py"}
    return reader


def write_reader_notebooks(sources: list[Path], out: Path, root: Path = ROOT) -> list[Path]:
    """Convert the chapters ``sources`` (.ipynb or .py paths) into ``out``; returns the files written."""
    import nbformat

    sources = [Path(s).with_suffix(".ipynb") for s in sources]
    missing = [s for s in sources if not s.is_file()]
    if missing:
        raise ConversionError(f"no such notebook: {', '.join(map(str, missing))}")
    book, notebooks = build_book(sources, root)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in notebooks.items():
        reader = convert_notebook(nb, path.stem, book)
        nbformat.validate(reader)
        dest = out / path.name
        nbformat.write(reader, dest)
        written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the chapters' reader notebooks (Markdown without MyST).")
    parser.add_argument("notebooks", nargs="*", type=Path, help="chapters to convert (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the reader notebooks")
    args = parser.parse_args(argv)
    sources = args.notebooks or sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))
    try:
        written = write_reader_notebooks(sources, args.out)
    except (ConversionError, OSError) as exc:
        print(f"reader notebooks: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
