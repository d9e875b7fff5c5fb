"""A chapter as a lecture: its size, and a teacher's voice (issue 21; CONTRIBUTING.md, *Anatomy of a chapter notebook*).

- **Size.** One notebook is one 75-90 minute lecture: at most about ``MAX_WORDS`` words of prose and
  ``MAX_CODE_LINES`` lines of visible code, no visible code cell over ``MAX_CELL_LINES`` lines. Counted
  exactly as the team's before-stop hook counts (``shared/hooks/before-stop``, block 1b): words are runs
  of letters (``[A-Za-z][A-Za-z'-]*``) in Markdown cells with display math, inline math and fenced code
  blocks (not directives) removed; a code line is a non-blank line of a code cell that is not tagged
  ``remove-input``, ``remove-cell``, ``hide-input`` or ``hide-cell``.
- **Voice.** The prose speaks about neural networks to a student, never about how the book is built or
  tested. :data:`MAINTAINER_TALK` lists what gives the maintainer away: the hook's words (asserted, nbval,
  tolerance, rounding profile, cannot build) and their kin (assertions, the page or the build, BLAS and
  CPU kernels, the tests, re-execution, caches and hashes). Chapter 0, whose subject is the data layer
  (verified downloads, the cache), may speak of caches and hashes (:data:`PLUMBING`).
- **Checks out of the way.** A cell that only checks (assertions) is not part of the lecture: it is
  tagged ``remove-input`` and prints one line that says what was checked, starting with ``Checked: ``
  (e.g. ``print("Checked: the mean of the 64 minibatch gradients equals the full gradient (to 1e-10).")``),
  or its assertions move into the cell that computes what they check.

``tests/test_lecture.py`` applies these to every chapter; ``python3 tools/lecture.py`` prints the table.
"""
from __future__ import annotations

import ast
import dataclasses
import re
import sys
from pathlib import Path

MAX_WORDS = 3500
MAX_CODE_LINES = 450
MAX_CELL_LINES = 40
HIDDEN_TAGS = {"remove-input", "remove-cell", "hide-input", "hide-cell"}
CHECKED_PREFIX = "Checked: "

# what the hook removes before counting words (and before looking for maintainer talk)
_NOT_PROSE = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|```(?!\{)[^\n]*\n.*?```", re.S)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")

MAINTAINER_TALK: dict[str, re.Pattern] = {  # name -> pattern, case-insensitive
    # the before-stop hook's words
    "asserted": re.compile(r"\basserted\b", re.I),
    "nbval": re.compile(r"\bnbval\b", re.I),
    "tolerance": re.compile(r"\btolerances?\b", re.I),
    "rounding profile": re.compile(r"\brounding profiles?\b", re.I),
    "cannot build": re.compile(r"\bcannot build\b", re.I),
    # their kin
    "assertion": re.compile(r"\bassert(?:s|ions?)?\b", re.I),
    "the page ... build": re.compile(r"\b(?:the|this) page(?:'s)?\b[^.\n]{0,80}?\bbuil[dt]\b"
                                     r"|\bbuilt (?:the|this) page\b", re.I),
    "the build": re.compile(r"\bthe (?:site |book )?build\b|\bbuild fails\b|\bfails? (?:the|to) build\b", re.I),
    "BLAS kernel": re.compile(r"\b(?:Open)?BLAS\b|\bMKL\b|\boneDNN\b|\bATEN_CPU|\b(?:CPU|arithmetic|BLAS)(?:'s)? kernels?\b",
                              re.I),
    "the tests": re.compile(r"\bthe tests\b|\bunit tests?\b|\bpytest\b|\bdev\.py\b"),
    "re-execution": re.compile(r"\bre-?execut\w*", re.I),
}
PLUMBING: dict[str, re.Pattern] = {  # maintainer talk too, except in chapter 0 (the data layer is its subject)
    "cache": re.compile(r"(?<!CPU )(?<!memory )\bcach(?:e|es|ed|ing)\b(?! effects?| misses)", re.I),  # not the CPU's
    "hash": re.compile(r"\bhash(?:es|ed|ing)?\b|\bSHA-?256\b", re.I),
}


@dataclasses.dataclass
class Size:
    words: int
    code_lines: int
    long_cells: list[tuple[int, int]]  # (cell index, visible lines) of visible code cells over MAX_CELL_LINES

    def problems(self) -> list[str]:
        out = []
        if self.words > MAX_WORDS:
            out.append(f"{self.words} words of prose (at most about {MAX_WORDS:,}): split it into parts or cut")
        if self.code_lines > MAX_CODE_LINES:
            out.append(f"{self.code_lines} lines of visible code (at most {MAX_CODE_LINES}): move plumbing into "
                       "course_utils or a hide-input cell, or split the chapter into parts")
        out += [f"cell {i}: {n} visible code lines (at most {MAX_CELL_LINES}): split it, or fold what is not the "
                "lecture into a hide-input cell or course_utils" for i, n in self.long_cells]
        return out


def _source(cell) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def prose(markdown: str) -> str:
    """A Markdown cell's prose as the hook reads it: display and inline math and fenced code removed."""
    return _NOT_PROSE.sub(" ", markdown)


def size(nb) -> Size:
    words = code = 0
    long_cells = []
    for i, cell in enumerate(nb.cells):
        src = _source(cell)
        if cell.get("cell_type") == "markdown":
            words += len(_WORD.findall(prose(src)))
        elif cell.get("cell_type") == "code" and not (_tags(cell) & HIDDEN_TAGS):
            n = len([ln for ln in src.splitlines() if ln.strip()])
            code += n
            if n > MAX_CELL_LINES:
                long_cells.append((i, n))
    return Size(words, code, long_cells)


def maintainer_talk(nb, chapter: str) -> list[str]:
    """Every place where the prose of ``nb`` (chapter ``"NN"``) talks about the book's machinery."""
    patterns = dict(MAINTAINER_TALK)
    if chapter != "00":
        patterns.update(PLUMBING)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "markdown":
            continue
        text = prose(_source(cell))
        for name, pattern in patterns.items():
            for m in pattern.finditer(text):
                context = text[max(0, m.start() - 50): m.end() + 30].replace("\n", " ").strip()
                found.append(f"cell {i}: {name!r}: ...{context}...")
    return found


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return ""


def _is_check(stmt: ast.stmt) -> bool:
    """An assertion: ``assert ...`` or a call of ``assert_*`` (``np.testing.assert_allclose``, ...)."""
    return isinstance(stmt, ast.Assert) or _call_name(stmt).startswith("assert")


def _only_checks(body: list[ast.stmt]) -> bool:
    """True when ``body`` does nothing but check: assertions, prints, and loops or branches of those."""
    for stmt in body:
        if _is_check(stmt) or _call_name(stmt) == "print":
            continue
        if isinstance(stmt, (ast.For, ast.While, ast.If)) and _only_checks(stmt.body) and _only_checks(stmt.orelse):
            continue
        if isinstance(stmt, ast.With) and _only_checks(stmt.body):
            continue
        return False
    return True


def _stdout_lines(cell) -> list[str]:
    text = ""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            text += out["text"] if isinstance(out["text"], str) else "".join(out["text"])
    return [ln for ln in text.splitlines() if ln.strip()]


def check_cells(nb, with_outputs: bool = True) -> list[str]:
    """Assertion cells that stand in the lecture's way (see the module docstring).

    A visible cell that does nothing but check fails; a ``remove-input`` cell that checks must print exactly
    one line starting with ``Checked: `` (``with_outputs=False``: the outputs are not looked at).
    """
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        try:
            body = ast.parse(_source(cell)).body
        except SyntaxError:
            continue
        if not any(_is_check(n) for s in body for n in ast.walk(s) if isinstance(n, ast.stmt)):
            continue
        tags = _tags(cell)
        if _only_checks(body) and not (tags & HIDDEN_TAGS):
            problems.append(f"cell {i}: a visible cell that only checks: tag it remove-input and print one line "
                            f"starting {CHECKED_PREFIX!r} saying what was checked, or move its assertions into the "
                            "cell that computes what they check")
        if "remove-input" in tags and with_outputs:
            checked = [ln for ln in _stdout_lines(cell) if ln.startswith(CHECKED_PREFIX)]
            if len(checked) != 1:
                problems.append(f"cell {i}: a remove-input cell that checks must print one line starting "
                                f"{CHECKED_PREFIX!r} saying what was checked (the reader sees nothing else of "
                                f"it); it prints {len(checked)}")
    if with_outputs:
        problems += _hidden_outputs(nb)
    return problems


def _hidden_outputs(nb) -> list[str]:
    """A ``remove-input`` cell shows nothing but its check's report: the site wraps that text at the column
    (``book/_static/book.css``), which would garble a table or any other output."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or "remove-input" not in _tags(cell):
            continue
        other = [o.get("output_type") for o in cell.get("outputs", [])
                 if not (o.get("output_type") == "stream" and o.get("name") == "stdout")]
        lines = _stdout_lines(cell)
        if other or (lines and not lines[0].startswith(CHECKED_PREFIX)):
            problems.append(f"cell {i}: a remove-input cell shows only the line starting {CHECKED_PREFIX!r} "
                            f"(the site wraps it as a sentence); it also shows {other or 'other text first'}: "
                            "print that in a visible cell")
    return problems


def main(paths: list[str]) -> int:
    import jupytext

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tools import layout

    targets = [Path(p) for p in paths] or layout.chapter_sources(suffix=".ipynb")
    print("| notebook | words of prose | visible code lines | cells over 40 lines | maintainer talk | checks in the way |")
    print("|---|---:|---:|---:|---:|---:|")
    bad = 0
    for path in targets:
        nb = jupytext.read(path)
        s, talk, checks = size(nb), maintainer_talk(nb, layout.chapter(path.stem)), check_cells(nb)
        bad += bool(s.problems() or talk or checks)
        print(f"| {path.stem} | {s.words} | {s.code_lines} | {len(s.long_cells)} | {len(talk)} | {len(checks)} |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
