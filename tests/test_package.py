"""The shape of the package: every module is listed where a reader looks for it, and the modules of
``course_utils`` import each other without a cycle (module-level and lazy imports inside functions alike).
"""
from __future__ import annotations

import ast
from pathlib import Path

import course_utils

PACKAGE = Path(course_utils.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    """Dotted name below course_utils -> file, e.g. ``cli.trainer`` -> course_utils/cli/trainer.py."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of course_utils that module ``name`` imports anywhere in its code."""
    package = name if path.name == "__init__.py" else ".".join(name.split(".")[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = parts[: len(parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("course_utils"):
                target = node.module.removeprefix("course_utils").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import data` imports the module data
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("course_utils."):
                    found.add(alias.name.removeprefix("course_utils."))
    return {m for m in found if m in known and m != name}


def test_every_module_is_listed_in_the_package_docstring():
    top = {name.split(".")[0] for name in _modules()}
    assert top == course_utils._SUBMODULES, "course_utils/__init__.py: _SUBMODULES differs from the modules on disk"
    for name in top:
        assert f"``{name}``" in course_utils.__doc__, f"course_utils/__init__.py: the docstring does not list {name}"


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    # a package's __init__ may import its own submodules (that is what it is for); nothing else may close a loop
    edges = {m: {d for d in deps if not (d.startswith(m + ".") and modules[m].name == "__init__.py")}
             for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert "cli.trainer" in graph and "cache" in graph["data"]  # the walk saw the package's real imports


def test_no_module_over_about_600_lines_without_a_reason():
    """Issue 20: a module longer than about 600 lines (650) says in its docstring why it is one module,
    in a paragraph that starts "Why one module"."""
    long = []
    for path in _modules().values():
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > 650 and "why one module" not in doc.lower():
            long.append(f"course_utils/{path.relative_to(PACKAGE)} ({lines} lines)")
    assert not long, "no 'Why one module' paragraph in the docstring of " + ", ".join(long)
