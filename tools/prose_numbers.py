"""Numbers stated in a chapter's prose must be what the outputs they refer to show.

A chapter's text reads numbers off the outputs above it ("the loss falls to 0.352", "86.3% test
accuracy"). When a notebook is re-executed, or an output changes, the prose can silently go stale. This
check reads every Markdown cell of a chapter's stored notebook and, for every number in it that looks
measured, looks for it in the outputs (and the code, for settings) of the same section:

- **checked**: numbers with a decimal point (``0.352``), a percent sign (``86%``), an exponent
  (``1e-3``), or two or more digits (``47``, ``1,024``);
- **not checked**: numbers inside math (``$...$``, ``$$...$$``), inline code, links, citations and other
  roles, labels, headings' own numbering, names of chapters, parts and exercises ("chapter 4.2",
  "Exercise 7.3"), and one-digit integers ("3 layers");
- **scope**: the outputs and code of the ``##`` section the sentence is in (any code cell of that section,
  before or after the sentence); in sections titled Summary, Exercises, Discussion, or Conclusions, the
  whole chapter. Plain integers (settings such as "batch 128" or "40 epochs") may come from any code or
  output of the chapter. Identifiers (SHA-256, ResNet-18) and sizes written with a multiplication sign
  (28×28) are not numbers to check.

A prose number matches a value shown there when the value, rounded to the prose's number of decimals,
is the prose number (``0.3521`` shows as ``0.352``; ``89.34%`` as ``89.3%``; ``0.893`` as ``89.3%``),
or when they are equal (``1e-3`` and ``0.001``). A number that is not read off an output (a formula's
constant, a count from the data's documentation) goes into math, where it is typeset as such: a Colab
reader still reads a plain number.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from tools import tolerance

WHOLE_CHAPTER_SECTIONS = re.compile(r"^(summary|exercises|discussion|conclusions?|what we found)\b", re.I)

# What is removed from Markdown before numbers are read from it.
_STRIP = [
    re.compile(r"```.*?```", re.S),  # fenced blocks (directive headers and code)
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$"),  # inline math
    re.compile(r"\\\(.*?\\\)", re.S),
    re.compile(r"`[^`\n]*`"),  # inline code, role contents
    re.compile(r"\{[a-z:-]+\}"),  # role names
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<[^>\n]+>"),  # HTML tags
    re.compile(r"^\s*\([\w:-]+\)=\s*$", re.M),  # (label)= targets
    re.compile(r"^\s*:[\w-]+:.*$", re.M),  # directive options
    re.compile(r"^#+\s*[\d.]*", re.M),  # a heading's own numbering
    re.compile(r"https?://\S+"),
    # names of chapters, parts and exercises ("chapter 4.2", "Chapter 1.1's", "Exercise 7.3", "chapters 4.1
    # and 4.2", also as link texts: "chapters [4.1](04_1_minibatches.ipynb) and [4.2](...)"): names, not
    # measurements
    re.compile(r"\b(?:[Cc]hapters?|[Ee]xercises?|[Pp]arts?|[Ss]ections?)\s+\[?\d+(?:\.\d+)*"
               r"(?:(?:,\s*|\s+and\s+|\s+to\s+|\s+or\s+)\[?\d+(?:\.\d+)*)*"),
]
_FENCE = re.compile(r"^(```+|:::+)\s*\{(exercise|solution|admonition|note|tip|warning|important|dropdown|seealso|caution|attention|hint)\}.*$", re.M)
_PROSE_NUMBER = re.compile(
    r"(?<![\w.\u2980\u00d7])(?<![A-Za-z]-)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+)"
    r"(?P<pct>\s?%)?"
    r"(?![\w\u2980\u00d7])"
)


@dataclass
class Problem:
    cell: int
    number: str
    context: str
    section: str

    def __str__(self) -> str:
        return (f"cell {self.cell} (section {self.section!r}): {self.number!r} is not shown by any output or "
                f"code of its section: ...{self.context}...")


_CODE_BLOCK = re.compile(r"^(`{3,})[ \t]*[\w+-]+[ \t]*\n.*?^\1[ \t]*$", re.S | re.M)  # ```python ... ```


def _prose(markdown: str) -> str:
    # code blocks first (also those nested in a solution), then keep the text inside admonitions,
    # exercises and solutions and drop the fences themselves
    text = _CODE_BLOCK.sub(" ", markdown)
    text = _FENCE.sub("", text)
    text = re.sub(r"^(```+|:::+)\s*$", "", text, flags=re.M)
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    return text


def prose_numbers(markdown: str) -> list[tuple[str, float, int, bool, str]]:
    """(text, value, decimals, is_percent, context) of every checked number in ``markdown``."""
    text = _prose(markdown)
    found = []
    for m in _PROSE_NUMBER.finditer(text):
        raw, pct = m.group("num"), bool(m.group("pct"))
        clean = raw.replace(",", "")
        has_point, has_exp = "." in clean, "e" in clean.lower()
        if not (has_point or has_exp or pct or len(clean) >= 2):
            continue
        if re.fullmatch(r"(19|20)\d\d", clean) and not pct:  # a year (citations, dates)
            continue
        decimals = len(clean.lower().partition("e")[0].partition(".")[2])
        context = text[max(0, m.start() - 40): m.end() + 25].replace("\n", " ")
        found.append((raw + ("%" if pct else ""), float(clean), decimals, pct, context.strip()))
    return found


def _shown(cells) -> list[float]:
    values = []
    for cell in cells:
        for texts in tolerance.output_texts(cell.get("outputs", [])).values():
            for t in texts:
                values += [n.value for n in tolerance.tokenize(t)[1]]
        code = re.sub(r"(?<=\d)_(?=\d)", "", cell.source)  # 5_000 is 5000
        values += [n.value for n in tolerance.tokenize(code)[1]]
    return values


def _matches(value: float, decimals: int, pct: bool, shown: list[float]) -> bool:
    tol = 0.5 * 10.0 ** (-decimals) * (1 + 1e-9)
    for v in shown:
        # the prose reads a number without its sign ("by 1.2 to 5.1 points", "-6.8" or "−6.8"): compare sizes
        v = abs(v)
        for candidate in ((v, v * 100) if pct else (v,)):
            if math.isclose(candidate, value, rel_tol=1e-9, abs_tol=1e-12):
                return True
            if abs(candidate - value) <= tol:
                return True
    return False


_HEADING = re.compile(r"^##(?!#)\s+(.*)$", re.M)


def parts(nb) -> list[tuple[str, int, str]]:
    """(section title, cell index, text) for every piece of the notebook, split at ``##`` headings.

    A code cell is one piece; a Markdown cell is split where a ``##`` heading starts a new section.
    """
    title, out = "(top)", []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            out.append((title, i, cell.source))
            continue
        pos = 0
        for m in _HEADING.finditer(cell.source):
            if m.start() > pos:
                out.append((title, i, cell.source[pos:m.start()]))
            title, pos = re.sub(r"^[\d.]+\s*", "", m.group(1)).strip(), m.start()
        out.append((title, i, cell.source[pos:]))
    return out


def check(nb) -> list[Problem]:
    """Every checked prose number of ``nb`` that no output (or code) of its scope shows."""
    pieces = parts(nb)
    whole = _shown([c for c in nb.cells if c.cell_type == "code"])
    by_section: dict[str, list] = {}
    for title, i, _ in pieces:
        if nb.cells[i].cell_type == "code":
            by_section.setdefault(title, []).append(nb.cells[i])
    shown = {title: _shown(cells) for title, cells in by_section.items()}
    problems = []
    for title, i, text in pieces:
        if nb.cells[i].cell_type != "markdown":
            continue
        scope = whole if WHOLE_CHAPTER_SECTIONS.match(title) else shown.get(title, [])
        for raw, value, decimals, pct, context in prose_numbers(text):
            integer = decimals == 0 and not pct and "e" not in raw.lower()
            if not _matches(value, decimals, pct, whole if integer else scope):
                problems.append(Problem(i, raw, context, title))
    return problems


def main(paths: list[str]) -> int:
    import jupytext

    total = 0
    for path in paths:
        nb = jupytext.read(Path(path).with_suffix(".ipynb"))
        problems = check(nb)
        total += len(problems)
        for p in problems:
            print(f"{Path(path).name}: {p}")
    print(f"{total} prose numbers not found in their outputs")
    return 1 if total else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
