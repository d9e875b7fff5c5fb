"""What a chapter's code uses: its imports, the ``course_utils`` modules it reaches, the scripts it runs.

Read statically from the source (``ast``), never by importing anything:

- the modules a chapter's code cells import (``import x``, ``from x import y``, ``importlib.import_module("x")``,
  IPython magics translated first), each marked *optional* when a ``try``/``except ImportError`` guards it;
- the ``course_utils`` modules it reaches: imported directly (``from course_utils import data``,
  ``import course_utils.data as d``), through attribute access (``course_utils.data.load``, also under an
  alias: ``import course_utils as cu; cu.data``), and transitively through the package's own imports,
  relative ones and lazy ones inside functions included; importing ``a.b`` runs ``a/__init__.py`` too;
- the repository's scripts it runs (a string in its code naming an existing ``.py`` file of the
  repository, e.g. ``[sys.executable, "train.py"]`` or ``!python ../train.py``, and ``-m course_utils.X``),
  with what they import in turn.

Two tools read this: ``tools/colab_check.py`` (is every imported package in Colab or installed by the
chapter's setup cell?) and ``tools/staleness.py`` (which files a notebook's outputs depend on).
"""
from __future__ import annotations

import ast
import dataclasses
import functools
from pathlib import Path

PACKAGE = "course_utils"


@dataclasses.dataclass(frozen=True)
class Import:
    module: str  # dotted, absolute
    where: str  # file and line
    optional: bool  # guarded by try/except ImportError
    via: str = ""  # the course_utils module (or script) it came through, if any


@dataclasses.dataclass
class Uses:
    """What one chapter uses (see the module docstring)."""

    imports: list[Import]  # every import outside course_utils, direct or through course_utils / scripts
    modules: dict[str, Path]  # course_utils module -> its file, every one the chapter's code runs
    scripts: list[Path]  # repository scripts the chapter runs


_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _guards_import_error(handler: ast.ExceptHandler) -> bool:
    """True for a handler that catches ImportError and carries on (one that raises makes the import required)."""
    if any(isinstance(n, ast.Raise) for n in ast.walk(handler)):
        return False
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names)


def _in_package(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, package: str | None):
        self.package = package  # the dotted name of the module's package, for relative imports
        self.optional_depth = 0
        self.found: list[tuple[str, int, bool]] = []
        self.attributes: set[str] = set()  # course_utils.X attribute uses
        self.aliases: dict[str, str] = {PACKAGE: PACKAGE}  # local name -> course_utils module it is bound to
        self.strings: list[str] = []  # string constants (scripts and `-m module` a cell may run)

    def _add(self, module: str, node: ast.AST):
        self.found.append((module, node.lineno, self.optional_depth > 0))

    def visit_Try(self, node: ast.Try):
        guarded = any(_guards_import_error(h) for h in node.handlers)
        self.optional_depth += guarded
        for stmt in node.body:
            self.visit(stmt)
        self.optional_depth -= guarded
        for part in (node.handlers, node.orelse, node.finalbody):
            for stmt in part:
                self.visit(stmt)

    visit_TryStar = visit_Try

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            self._add(alias.name, node)
            if alias.asname and _in_package(alias.name):
                self.aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.level:
            if not self.package:
                return
            parts = self.package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = node.module or ""
        self._add(module, node)
        if _in_package(module):
            for alias in node.names:  # `from course_utils import data` names a submodule
                self._add(f"{module}.{alias.name}", node)
                self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"

    def visit_Call(self, node: ast.Call):
        # importlib.import_module("x") and __import__("x") with a literal name
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in {"import_module", "__import__"} and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and not node.args[0].value.startswith("."):
            self._add(node.args[0].value, node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            self.attributes.add(f"{self.aliases[node.value.id]}.{node.attr}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant):
        if isinstance(node.value, str):
            self.strings.append(node.value)


@dataclasses.dataclass(frozen=True)
class _Found:
    found: tuple[tuple[str, int, bool], ...]
    attributes: frozenset[str]
    strings: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def _parse(source: str, package: str | None) -> _Found:
    v = _ImportVisitor(package)
    v.visit(ast.parse(source))
    return _Found(tuple(v.found), frozenset(v.attributes), tuple(v.strings))


def _visit(source: str, where: str, package: str | None) -> _Found:
    """What ``source`` imports (cached by its text: every notebook reads the same package modules)."""
    try:
        return _parse(source, package)
    except SyntaxError as exc:
        raise SyntaxError(f"{where}: cannot parse ({exc.msg}, line {exc.lineno})") from None


def notebook_cells(py: Path) -> list[tuple[int, str]]:
    """(cell number, plain Python) of every code cell of a jupytext notebook, IPython magics translated."""
    stat = Path(py).stat()
    return list(_notebook_cells(str(Path(py).resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=256)
def _notebook_cells(path: str, _mtime_ns: int, _size: int) -> tuple[tuple[int, str], ...]:
    import jupytext
    from IPython.core.inputtransformer2 import TransformerManager

    tm = TransformerManager()
    nb = jupytext.read(path)
    return tuple((i, tm.transform_cell(c.source)) for i, c in enumerate(nb.cells) if c.cell_type == "code")


def module_file(root: Path, module: str) -> Path | None:
    """The file of the repository's module ``module`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``), or None."""
    rel = Path(*module.split("."))
    for cand in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _scripts_and_modules(strings: list[str], root: Path, folder: Path) -> tuple[list[Path], list[str]]:
    """Repository scripts (``x.py`` relative to ``folder`` or to ``root``) and ``course_utils`` modules named
    in the words of ``strings`` (a command line split or written out)."""
    scripts, modules = [], []
    root = root.resolve()
    for text in strings:
        for word in text.split():
            word = word.strip("'\"")
            if word.endswith(".py"):
                for base in (folder, root):
                    cand = (base / word).resolve()
                    if cand.is_file() and cand.is_relative_to(root) and cand not in scripts:
                        scripts.append(cand)
                        break
            elif _in_package(word) and all(p.isidentifier() for p in word.split(".")):
                modules.append(word)
    return scripts, modules


def chapter_uses(py: Path, root: Path) -> Uses:
    """Every import a chapter makes, the course_utils modules and scripts it runs (see the module docstring)."""
    result: list[Import] = []
    pending: list[tuple[str, str]] = [(PACKAGE, "")]  # (course_utils module, how it was reached)
    script_queue: list[tuple[Path, str]] = []
    for cell, code in notebook_cells(py):
        where = f"{py.relative_to(root).as_posix()} (code cell {cell})"
        v = _visit(code, where, None)
        for module, line, optional in v.found:
            if _in_package(module):
                pending.append((module, ""))
            else:
                result.append(Import(module, f"{where}, line {line}", optional))
        pending.extend((a, "") for a in v.attributes)
        scripts, modules = _scripts_and_modules(v.strings, root, py.parent)
        script_queue.extend((s, "") for s in scripts)
        pending.extend((m, "") for m in modules)
    scripts_seen: list[Path] = []
    while script_queue:  # a script's own imports, as if the chapter made them
        script, _ = script_queue.pop()
        if script in scripts_seen:
            continue
        scripts_seen.append(script)
        rel = script.relative_to(root.resolve()).as_posix()
        v = _visit(script.read_text(), rel, None)
        for module, line, optional in v.found:
            if _in_package(module):
                pending.append((module, rel))
            elif module_file(root, module) is None:
                result.append(Import(module, f"{rel}, line {line}", optional, rel))
        pending.extend((a, rel) for a in v.attributes)
    seen: dict[str, Path] = {}
    while pending:
        module, via = pending.pop()
        path = module_file(root, module)
        if path is None or module in seen:
            continue
        seen[module] = path
        # importing a.b.c imports a and a.b first
        parts = module.split(".")
        pending.extend((".".join(parts[:k]), via) for k in range(1, len(parts)))
        package = module if path.name == "__init__.py" else ".".join(parts[:-1])
        v = _visit(path.read_text(), path.relative_to(root).as_posix(), package)
        for sub, line, optional in v.found:
            if _in_package(sub):
                pending.append((sub, via or module))
            else:
                result.append(Import(sub, f"{path.relative_to(root).as_posix()}, line {line}", optional, module))
        pending.extend((a, via or module) for a in v.attributes)
    return Uses(result, dict(sorted(seen.items())), sorted(scripts_seen))
