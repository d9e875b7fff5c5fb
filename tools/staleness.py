"""When a notebook's stored outputs are stale: the two hashes of its execution record.

A notebook's outputs depend on its own code and on the code it runs. ``dev.py execute`` records two
SHA-256 hashes in the ``.ipynb`` (metadata ``course_book``); ``dev.py build`` re-executes a notebook
whose hashes no longer match, ``tests/test_notebooks.py`` fails on one, and the tolerance measurement
(``dev.py measure``) is keyed to the same two hashes.

- ``code_sha256``: the notebook's code cells (each cell's code and its tags), comments left out.
- ``deps_sha256``: the code of every file the notebook runs besides its own cells: the ``course_utils``
  modules it imports (directly, through ``course_utils.X``, and transitively through the package's own
  imports, lazy ones inside functions included) and the repository scripts it runs, as
  ``tools/imports.py`` reads them; each file's path and its code without docstrings and comments.

So a docstring or comment edit re-executes nothing, and a change to ``course_utils/cli/`` (the trainer's
command line) marks stale only the notebooks that run it. Two exceptions keep the hashes
honest: a notebook that prints source or docstrings (``inspect.getsource``, ``getdoc``, ``help(``,
``__doc__``) depends on the full text of its cells and of the files it runs, and a module that reads
docstrings itself is hashed with them.

"Without docstrings and comments" is done on the text: the spans of the docstrings (found by ``ast``)
and of the comments (found by ``tokenize``) are cut out, trailing spaces and blank lines dropped. Unlike
``ast.unparse`` or ``ast.dump``, whose output changes between Python versions, this gives the same
hash on every Python that parses the code.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import io
import re
import tokenize
from pathlib import Path

from tools import layout
from tools.imports import chapter_uses

# printing source or docstrings makes them part of the outputs
READS_SOURCE = re.compile(r"\bgetsource(?:lines)?\b|\bgetdoc\b|\bgetcomments\b|__doc__|(?<![\w.])help\(")


def _offsets(text: str) -> list[int]:
    """Character offset of the start of each line (1-based line numbers index it directly)."""
    starts, pos = [0, 0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _docstring_spans(tree: ast.AST, lines: list[str], starts: list[int], module: bool) -> list[tuple[int, int]]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef) if module else \
        (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, kinds) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                # ast columns count UTF-8 bytes; turn them into characters of the line
                col = len(lines[first.lineno - 1].encode()[: first.col_offset].decode(errors="ignore"))
                end_col = len(lines[first.end_lineno - 1].encode()[: first.end_col_offset].decode(errors="ignore"))
                spans.append((starts[first.lineno] + col, starts[first.end_lineno] + end_col))
    return spans


@functools.lru_cache(maxsize=4096)  # every notebook hashes the same package modules
def code_text(source: str, keep_docs: bool = False, cell: bool = False) -> str:
    """``source`` without comments (and, unless ``keep_docs``, without docstrings), trailing spaces and blank
    lines dropped. Text that does not parse as Python (an IPython magic) loses only its comment lines.

    ``cell=True`` for a notebook cell: a string standing first in a cell is no docstring (the cell may
    display it), only those of its functions and classes are.
    """
    source = source.replace("\r\n", "\n")
    if keep_docs:
        return "\n".join(ln.rstrip() for ln in source.splitlines() if ln.strip())
    lines = source.splitlines(keepends=True)
    starts = _offsets(source)
    spans: list[tuple[int, int]] = []
    try:
        tree = ast.parse(source)
        spans += _docstring_spans(tree, lines, starts, module=not cell)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                spans.append((starts[tok.start[0]] + tok.start[1], starts[tok.end[0]] + tok.end[1]))
    except (SyntaxError, tokenize.TokenError, IndentationError, ValueError):
        kept = [ln for ln in source.splitlines() if not ln.lstrip().startswith("#")]
        return "\n".join(ln.rstrip() for ln in kept if ln.strip())
    out, pos = [], 0
    for start, end in sorted(spans):
        if start >= pos:
            out.append(source[pos:start])
            pos = end
    out.append(source[pos:])
    text = "".join(out)
    return "\n".join(ln.rstrip() for ln in text.splitlines() if ln.strip())


def _notebook_reads_source(nb) -> bool:
    return any(c.cell_type == "code" and READS_SOURCE.search(c.source) for c in nb.cells)


def code_hash(nb) -> str:
    """SHA-256 over the notebook's code cells: each cell's code (comments left out) and its tags."""
    keep = _notebook_reads_source(nb)
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(code_text(cell.source, keep_docs=keep, cell=True).encode())
            h.update(repr(sorted(cell.metadata.get("tags", []))).encode())
            h.update(b"\x00")
    return h.hexdigest()


def dependencies(py: Path, root: Path = layout.ROOT) -> list[Path]:
    """The files besides its own cells that notebook ``py`` runs: course_utils modules, then scripts."""
    uses = chapter_uses(Path(py), Path(root))
    return list(uses.modules.values()) + list(uses.scripts)


def deps_hash(py: Path, nb=None, root: Path = layout.ROOT) -> str:
    """SHA-256 over the code of :func:`dependencies` (path and code of each; see the module docstring)."""
    import jupytext

    root = Path(root).resolve()
    nb = jupytext.read(py) if nb is None else nb
    keep_all = _notebook_reads_source(nb)
    h = hashlib.sha256()
    for path in sorted(dependencies(py, root), key=lambda p: p.resolve().relative_to(root).as_posix()):
        text = path.read_text()
        h.update(path.resolve().relative_to(root).as_posix().encode() + b"\x00")
        h.update(code_text(text, keep_docs=keep_all or bool(READS_SOURCE.search(text))).encode() + b"\x00")
    return h.hexdigest()


def hashes(py: Path, root: Path = layout.ROOT) -> dict[str, str]:
    """The two hashes of notebook ``py`` (its .py source) as the execution record stores them."""
    import jupytext

    nb = jupytext.read(py)
    return {"code_sha256": code_hash(nb), "deps_sha256": deps_hash(py, nb, root)}


def stale_reason(py: Path, root: Path = layout.ROOT) -> str | None:
    """Why the stored outputs of ``py`` are stale (None: they are fresh)."""
    ipynb = Path(py).with_suffix(".ipynb")
    record = layout.execution_record(ipynb)
    if record is None:
        return f"{ipynb.name} does not exist"
    if record.get("status") != "ok":
        return f"its last execution status is {record.get('status')!r}"
    now = hashes(py, root)
    if record.get("code_sha256") != now["code_sha256"]:
        return "its code changed"
    if record.get("deps_sha256") != now["deps_sha256"]:
        return "the code it runs changed (" + ", ".join(
            p.resolve().relative_to(Path(root).resolve()).as_posix() for p in dependencies(py, root)) + ")"
    return None


def is_stale(py: Path, root: Path = layout.ROOT) -> bool:
    return stale_reason(py, root) is not None
