#!/usr/bin/env python3
"""Colab readers: the declared Colab environment, the static import check and the simulated Colab run.

    python3 dev.py colab-check             the simulated Colab run (several minutes, needs PyPI)
    python3 dev.py colab-check --static    only the static check (tests/test_colab_environment.py runs it too)
    python3 dev.py colab-check 03 05 4.2   the simulated run of some chapters (every part) or parts only

**The static check** reads, at run time, every chapter's code cells (``notebooks/NN_slug.py``) and
the ``course_utils`` modules each chapter uses (transitively; ``tools/imports.py`` reads them), and checks that every module they
import is in the declared Colab set (``colab/colab-environment.txt``) or installed by that
chapter's setup cell (the extra ``chNN`` of ``pyproject.toml``); that the extras never name what
Colab ships (pip would replace it) and pin nothing; that ``course_utils``' own dependencies are
satisfied by Colab's versions (so the setup cell installs none of them); and that no chapter's
code reaches outside its folder (in Colab the notebook is alone in ``/content``).

**The simulated run** builds a fresh virtual environment holding only the declared Colab set
(from the package index; the exceptions the declared file marks ``# simulate:``), adds a stand-in
``google.colab`` module that the kernel imports at start-up (as Colab's kernel does), points the
setup cells at a copy of this checkout through ``COURSE_BOOK_SOURCE``, and executes every chapter's
reader notebook (what Colab opens) top to bottom in an empty working folder, one chapter after the
other. The data comes from a file server on 127.0.0.1 serving the local mirror through
``COURSE_DATA_URL`` when ``course_utils.data`` supports it (the real download path), else from
``COURSE_DATA``; the output says which. After each chapter it records what the setup cell
installed, fails if it changed a declared package, and uninstalls it again, so that every chapter
starts from a fresh runtime.

Why one module (about 620 lines): both checks read the same declaration (``colab/colab-environment.txt``
and the extras of ``pyproject.toml``) and the same map of what each chapter imports; the simulated run
then executes what the static check approved. Half of the file is that run's plumbing (the virtual
environment, the file server, the stand-in ``google.colab``), which serves nothing else.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: `python tools/colab_check.py`
    sys.path.insert(0, str(ROOT))

from tools import layout  # noqa: E402
from tools.imports import PACKAGE, chapter_uses, notebook_cells  # noqa: E402

DECLARED = Path("colab/colab-environment.txt")
EXTRA_RE = re.compile(r"course-utils\[(ch\d\d)\]")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- the declared set
@dataclasses.dataclass
class DeclaredEnvironment:
    """The parsed ``colab/colab-environment.txt``."""

    versions: dict[str, str]  # canonical name -> Colab's version
    names: dict[str, str]  # canonical name -> name as written
    simulate: dict[str, str | None]  # canonical name -> replacement spec, or None to leave it out
    notes: dict[str, str]  # canonical name -> the reason given
    header: dict[str, str]  # source, source-date, read, runtime

    def simulation_specs(self) -> list[str]:
        """What the simulated run installs: Colab's ``name==version`` unless the file says otherwise."""
        specs = []
        for key, version in self.versions.items():
            if key in self.simulate:
                if self.simulate[key] is not None:
                    specs.append(self.simulate[key])
            else:
                specs.append(f"{self.names[key]}=={version}")
        return specs


LINE_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!_-]+)\s*(?:#\s*(?P<comment>.*))?$")
SIMULATE_RE = re.compile(r"^simulate:\s*(?P<spec>skip|[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+)\s*(?:\((?P<why>.*)\))?\s*$")


def read_declared(path: Path) -> DeclaredEnvironment:
    """Parse the declared Colab set; a malformed line raises ValueError naming the file and line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the declared Colab environment is missing (see tools/colab_check.py)")
    env = DeclaredEnvironment({}, {}, {}, {}, {})
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"#\s*(source|source-date|read|runtime):\s*(.+)$", line)
            if m:
                env.header[m.group(1)] = m.group(2).strip()
            continue
        m = LINE_RE.match(line)
        if not m:
            raise ValueError(f"{path}:{number}: expected `name==version` (optionally `# simulate: ...`), got {raw!r}")
        key = canonical(m.group("name"))
        if key in env.versions:
            raise ValueError(f"{path}:{number}: {m.group('name')} is declared twice")
        env.versions[key] = m.group("version")
        env.names[key] = m.group("name")
        comment = (m.group("comment") or "").strip()
        if comment:
            s = SIMULATE_RE.match(comment)
            if not s:
                raise ValueError(f"{path}:{number}: a comment on a package line must read `# simulate: skip (why)` "
                                 f"or `# simulate: name==version (why)`, got {comment!r}")
            env.simulate[key] = None if s.group("spec") == "skip" else s.group("spec")
            env.notes[key] = (s.group("why") or "").strip()
    for field in ("source", "source-date", "read"):
        if field not in env.header:
            raise ValueError(f"{path}: the header line `# {field}: ...` is missing (where and when the list was read)")
    for field in ("source-date", "read"):
        if not re.match(r"\d{4}-\d{2}-\d{2}\b", env.header[field]):
            raise ValueError(f"{path}: `# {field}:` must start with a date YYYY-MM-DD, got {env.header[field]!r}")
    if not env.versions:
        raise ValueError(f"{path}: declares no package")
    return env


# --------------------------------------------------------------------------- pyproject extras
def _requirement(text: str):
    from packaging.requirements import Requirement

    return Requirement(text)


def read_pyproject(path: Path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def base_requirements(pyproject: dict) -> list:
    return [_requirement(r) for r in pyproject["project"].get("dependencies", [])]


def expand_extra(pyproject: dict, extra: str, _seen: frozenset = frozenset()) -> list:
    """The requirements an extra installs beyond the base dependencies; self-references expanded."""
    name = canonical(pyproject["project"]["name"])
    extras = pyproject["project"].get("optional-dependencies", {})
    if extra not in extras:
        raise KeyError(extra)
    out = []
    for text in extras[extra]:
        req = _requirement(text)
        if canonical(req.name) == name:
            for sub in sorted(req.extras):
                if sub in _seen:
                    continue
                out.extend(expand_extra(pyproject, sub, _seen | {extra}))
        else:
            out.append(req)
    return out


# --------------------------------------------------------------------------- imports (tools/imports.py)
def stdlib_modules() -> frozenset[str]:
    return frozenset(sys.stdlib_module_names) | {"__future__"}


@functools.lru_cache(maxsize=1)
def _local_distributions() -> dict[str, list[str]]:
    """Top-level module -> distributions that provide it, from the environment running the check."""
    import importlib.metadata as md

    return {k: [canonical(d) for d in v] for k, v in md.packages_distributions().items()}


def provider(module: str, names: set[str]) -> str | None:
    """The distribution in ``names`` (canonical) that provides ``module``, or None.

    A distribution provides a module when its name is the module's name or a dotted prefix of it
    (``xgboost``, ``google.colab`` -> ``google-colab``), or when the installed distribution of that
    name ships the module's top-level package (``scikit-learn`` ships ``sklearn``).
    """
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        key = canonical(".".join(parts[:k]))
        if key in names:
            return key
    for dist in _local_distributions().get(parts[0], []):
        if dist in names:
            return dist
    return None


def chapter_number(py: Path) -> str:
    """The chapter's two digits (the parts of a chapter share them, and its extra ``chNN``)."""
    return layout.chapter(py.stem)


# --------------------------------------------------------------------------- the static check
@dataclasses.dataclass
class ChapterReport:
    chapter: str  # "05"
    notebook: str
    extra: list[str]  # requirement strings the setup cell installs
    from_colab: dict[str, list[str]]  # distribution -> modules
    from_extra: dict[str, list[str]]
    optional_missing: list[str]  # optional imports that neither covers (fine: guarded)


def static_check(root: Path = ROOT) -> tuple[list[str], list[ChapterReport]]:
    """Problems (empty when all is well) and, per chapter, where each imported module comes from."""
    problems: list[str] = []
    reports: list[ChapterReport] = []
    declared_path = root / DECLARED
    try:
        declared = read_declared(declared_path)
    except (OSError, ValueError) as exc:
        return [str(exc)], []
    pyproject = read_pyproject(root / "pyproject.toml")
    colab = set(declared.versions)
    extras = pyproject["project"].get("optional-dependencies", {})
    std = stdlib_modules()

    # course_utils' own dependencies: Colab's versions must satisfy them, or the setup cell replaces them
    for req in base_requirements(pyproject):
        key = canonical(req.name)
        if key not in colab:
            problems.append(f"pyproject.toml: course_utils depends on {req}, which {DECLARED} does not declare: "
                            f"the setup cell would install it in Colab. Declare Colab's version (if Colab ships it) "
                            f"or move it to the extras of the chapters that need it.")
        elif not req.specifier.contains(declared.versions[key], prereleases=True):
            problems.append(f"pyproject.toml: course_utils requires {req}, but Colab has {declared.names[key]}=="
                            f"{declared.versions[key]}: the setup cell would replace Colab's {declared.names[key]}. "
                            f"Widen the range in [project] dependencies.")

    sources = layout.chapter_sources(root)
    if not sources:
        problems.append(f"{root / 'notebooks'}: no chapter sources ({layout.CHAPTER_GLOB}.py)")
    chapter_extras = {f"ch{chapter_number(p)}" for p in sources}
    for name in sorted(extras):
        if re.fullmatch(r"ch\d\d", name) and name not in chapter_extras:
            problems.append(f"pyproject.toml: extra {name} belongs to no chapter (no notebooks/{name[2:]}_*.py); remove it")

    for py in sources:
        nn = chapter_number(py)
        extra = f"ch{nn}"
        rel = py.relative_to(root).as_posix()
        cells = notebook_cells(py)
        setup = next((code for _, code in cells if "google.colab" in code), None)
        found = EXTRA_RE.findall(setup or "")
        if found != [extra]:
            problems.append(f"{rel}: the Colab setup cell must install `course-utils[{extra}]` (found "
                            f"{', '.join(found) or 'no course-utils extra'}); see CONTRIBUTING.md")
        if extra not in extras:
            problems.append(f"pyproject.toml: no extra `{extra}` for {rel}; add `{extra} = [...]` (what the chapter "
                            f"needs beyond {DECLARED}) to [project.optional-dependencies]")
            installs = []
        else:
            installs = expand_extra(pyproject, extra)
        extra_names = {canonical(r.name) for r in installs}
        for req in installs:
            key = canonical(req.name)
            if key in colab and not req.specifier.contains(declared.versions[key], prereleases=True):
                problems.append(f"pyproject.toml: extra {extra} installs {req}, but Colab ships "
                                f"{declared.names[key]}=={declared.versions[key]} ({DECLARED}): pip would replace "
                                f"Colab's copy. Widen the requirement or remove it from the extra.")
            if key == "torch":
                problems.append(f"pyproject.toml: extra {extra} names torch; never install torch in Colab")
            if any(s.operator in {"==", "===", "<", "<=", "~="} for s in req.specifier):
                problems.append(f"pyproject.toml: extra {extra} pins or caps {req}; give a lower bound at most")

        report = ChapterReport(nn, rel, [str(r) for r in installs], {}, {}, [])
        for imp in chapter_uses(py, root).imports:
            top = imp.module.split(".")[0]
            if not top or top in std or top == PACKAGE:
                continue
            origin = f"{imp.where}" + (f" (through {imp.via})" if imp.via else "")
            dist = provider(imp.module, colab)
            if dist:
                report.from_colab.setdefault(dist, []).append(imp.module)
                continue
            dist = provider(imp.module, extra_names)
            if dist:
                report.from_extra.setdefault(dist, []).append(imp.module)
                continue
            if imp.optional:
                report.optional_missing.append(f"{imp.module} ({origin})")
                continue
            problems.append(f"{rel}: imports `{imp.module}` at {origin}, which is neither in {DECLARED} (what Colab "
                            f"ships) nor in the extra {extra} of pyproject.toml (what its setup cell installs). "
                            f"Add it to {extra} (if Colab lacks it) or declare Colab's version in {DECLARED}.")
        for mapping in (report.from_colab, report.from_extra):
            for k in mapping:
                mapping[k] = sorted(set(mapping[k]))
        reports.append(report)

        # a chapter's code must not reach outside its folder: in Colab the notebook is alone in /content
        for cell, code in cells:
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    s = node.value
                    if s == ".." or s.startswith(("../", "..\\")) or "shared/data" in s:
                        problems.append(f"{rel} (code cell {cell}, line {node.lineno}): the path {s!r} reaches outside "
                                        f"the notebook's folder, which in Colab holds nothing but the notebook; use "
                                        f"course_utils (its data layer for data) instead")
    return problems, reports


def print_static(problems: list[str], reports: list[ChapterReport]) -> None:
    for r in reports:
        colab = ", ".join(sorted(r.from_colab)) or "nothing"
        extra = ", ".join(r.extra) or "nothing"  # a requirement Colab already satisfies installs nothing there
        print(f"{r.notebook} (chapter {r.chapter}): from Colab {colab}; its setup cell installs course_utils + {extra}")
        if r.optional_missing:
            print(f"    optional imports, neither declared nor installed (guarded): {'; '.join(r.optional_missing)}")
    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"- {p}", file=sys.stderr)
    else:
        print("static check: every module every chapter imports is declared or installed by its setup cell")


# --------------------------------------------------------------------------- the simulated run
def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def _copy_checkout(dest: Path) -> None:
    """Copy what the repository holds (tracked and untracked, not ignored files) to ``dest``."""
    try:
        listed = _run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                      capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"colab-check: cannot list the checkout's files with git ({exc}); run it in a git clone") from None
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _pip_state(python: Path) -> dict[str, str]:
    out = _run([python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"], capture_output=True, text=True).stdout
    return {canonical(d["name"]): d["version"] for d in json.loads(out)}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    served: list[str] = []

    def log_message(self, fmt, *args):  # keep the terminal clean; record what was asked for
        _QuietHandler.served.append(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else '?'}")


def _start_file_server(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


STAND_IN = '''"""A stand-in for Colab's google.colab package, made by tools/colab_check.py for the simulated run.

Colab's kernel imports google.colab at start-up; the chapters' setup cells test for it in
sys.modules. This stand-in has nothing else: a chapter that calls into google.colab fails here.
"""
'''


def _reader_notebooks(root: Path, out: Path) -> Path:
    """Build the site of the checkout ``root`` into ``out``; the folder holding its reader notebooks (what
    Colab opens: tools/reader_notebooks.py, written by the site build)."""
    from tools import reader_notebooks

    return reader_notebooks.build_site(root, out)


def simulate(chapters: list[str], keep: bool, data_dir: Path | None) -> int:
    t_start = time.perf_counter()
    declared = read_declared(ROOT / DECLARED)
    sources = layout.chapter_sources(ROOT)
    if chapters:  # "05" selects every part of chapter 5, "4.2" only that part
        wanted = lambda p, c: c == layout.number(p.stem) or c.zfill(2) == chapter_number(p)  # noqa: E731
        unknown = {c for c in chapters if not any(wanted(p, c) for p in sources)}
        sources = [p for p in sources if any(wanted(p, c) for c in chapters)]
        if unknown:
            print(f"colab-check: no chapter {', '.join(sorted(unknown))} in notebooks/", file=sys.stderr)
            return 2
    work = Path(tempfile.mkdtemp(prefix="colab-sim-"))
    print(f"[colab-check] working folder {work}", flush=True)
    try:
        return _simulate(declared, sources, work, data_dir, t_start)
    finally:
        if keep:
            print(f"[colab-check] kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _simulate(declared: DeclaredEnvironment, sources: list[Path], work: Path, data_dir: Path | None, t_start: float) -> int:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    import nbformat

    # 1. the repository, as Colab would fetch it (COURSE_BOOK_SOURCE points the setup cells here)
    source = work / "source"
    _copy_checkout(source)
    # the chapters as their .py sources say (a committed .ipynb may wait for re-execution): what
    # `dev.py build` publishes after re-executing a stale notebook
    import jupytext

    for py in layout.chapter_sources(source):
        jupytext.write(jupytext.read(py), py.with_suffix(".ipynb"))

    # 2. a fresh environment with only the declared Colab set
    venv = work / "venv"
    colab_python = re.search(r"Python [\d.]+", declared.header.get("runtime", ""))
    print(f"[colab-check] creating a fresh virtual environment (Python {sys.version.split()[0]}; Colab has "
          f"{colab_python.group(0) if colab_python else 'its own Python'})", flush=True)
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    specs = declared.simulation_specs()
    pip_spec = [s for s in specs if canonical(s.split("==")[0]) == "pip"]
    others = [s for s in specs if s not in pip_spec]
    t0 = time.perf_counter()
    if pip_spec:
        _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *pip_spec])
    print(f"[colab-check] installing the declared set: {' '.join(others)}", flush=True)
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *others])
    print(f"[colab-check] environment ready in {time.perf_counter() - t0:.0f} s", flush=True)
    for key in declared.versions:
        if key in declared.simulate:
            spec = declared.simulate[key]
            print(f"    {declared.names[key]}: Colab {declared.versions[key]}, simulated "
                  f"{spec or 'not installed'} ({declared.notes.get(key, '')})")
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     capture_output=True, text=True).stdout.strip())
    (site / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (site / "google" / "colab" / "__init__.py").write_text(STAND_IN)
    baseline = _pip_state(python)
    changed = {k: (declared.versions[k], baseline.get(k)) for k in declared.versions
               if k not in declared.simulate and baseline.get(k) != declared.versions[k]}
    if changed:
        print(f"[colab-check] the fresh environment does not hold the declared versions: {changed}", file=sys.stderr)
        return 1

    # 3. a kernel of that environment that imports google.colab at start-up, as Colab's does
    ipython_dir = work / "ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab-stand-in.py").write_text("import google.colab  # noqa: F401  (tools/colab_check.py)\n")
    kernels = work / "jupyter" / "kernels" / "colab-sim"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Simulated Colab", "language": "python"}))
    os.environ["JUPYTER_PATH"] = str(work / "jupyter") + os.pathsep + os.environ.get("JUPYTER_PATH", "")

    # 4. the data: a local file server through COURSE_DATA_URL where the data layer supports it
    mirror = data_dir or layout.data_mirror() or layout.DATA_MIRROR
    kernel_env = {k: v for k, v in os.environ.items()
                  if k not in {"COURSE_DATA", "COURSE_DATA_URL", "COURSE_CACHE", "COURSE_OFFLINE", "VIRTUAL_ENV",
                               "PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH", "COURSE_BOOK_NO_VENV", "MPLBACKEND"}}
    kernel_env.update({"COURSE_BOOK_SOURCE": source.resolve().as_uri(), "IPYTHONDIR": str(ipython_dir),
                       "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel 6.17's debugger notice, not ours
                       "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"})
    server = None
    supports_url = "COURSE_DATA_URL" in (source / "course_utils" / "data.py").read_text()
    if not mirror.is_dir():
        print(f"[colab-check] no data mirror at {mirror} (set COURSE_DATA or --data): the chapters download "
              f"from the canonical URLs", flush=True)
        data_line = f"data: canonical URLs (no mirror at {mirror})"
    elif supports_url:
        server, url = _start_file_server(mirror)
        kernel_env["COURSE_DATA_URL"] = url
        data_line = f"data: downloaded through COURSE_DATA_URL={url}, a file server on 127.0.0.1 serving {mirror}"
    else:
        kernel_env["COURSE_DATA"] = str(mirror)
        kernel_env["COURSE_OFFLINE"] = "1"
        data_line = (f"data: COURSE_DATA={mirror} with COURSE_OFFLINE=1 (course_utils.data has no COURSE_DATA_URL "
                     f"yet, so the download path is not exercised)")
    print(f"[colab-check] {data_line}", flush=True)

    # 5. each chapter: its reader notebook, alone in an empty folder (Colab's /content), run top to bottom
    try:  # the site build of the copy writes them
        readers, readers_error = _reader_notebooks(source, work / "site"), ""
    except ValueError as exc:
        readers, readers_error = None, f"no reader notebooks: {str(exc)[-500:]}"
    results = []
    for py in sources:
        nn, label = chapter_number(py), layout.number(py.stem)  # "04" (its extra chNN) and "4.2"
        chapter = source / "notebooks" / py.with_suffix(".ipynb").name
        if readers is not None and (readers / chapter.name).exists():  # what Colab opens: the reader notebook
            reader, reader_error = readers / chapter.name, ""
        else:  # run the chapter itself (the same code cells), and fail the chapter
            reader, reader_error = chapter, readers_error or f"the site build wrote no reader notebook for {chapter.name}"
        content = work / f"content-{py.stem}"
        content.mkdir()
        cache = work / f"cache-{py.stem}"  # a fresh runtime has no cache: every chapter downloads its data
        env = dict(kernel_env, COURSE_CACHE=str(cache), HOME=str(work / f"home-{py.stem}"))
        Path(env["HOME"]).mkdir()
        shutil.copy2(reader, content / reader.name)
        nb = nbformat.read(content / reader.name, as_version=4)
        client = NotebookClient(nb, timeout=1800, kernel_name="colab-sim", resources={"metadata": {"path": str(content)}})
        before_served = len(_QuietHandler.served)
        print(f"[colab-check] chapter {label}: running {reader.name} ...", flush=True)
        t0 = time.perf_counter()
        status, error = "ok", ""
        try:
            client.execute(env=env)
        except CellExecutionError as exc:
            status = "failed"
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            error = lines[-1] if lines else "a cell raised"
        except Exception as exc:  # a dead kernel, a timeout: report it and go on with the next chapter
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        wall = time.perf_counter() - t0
        nbformat.write(nb, content / reader.name)
        after = _pip_state(python)
        added = {k: v for k, v in after.items() if k not in baseline}
        replaced = {k: (baseline[k], v) for k, v in after.items() if k in baseline and baseline[k] != v}
        removed = [k for k in baseline if k not in after]
        if reader_error:
            status, error = "failed", (error + "; " if error else "") + reader_error
        if "course-utils" not in added and status == "ok":
            status, error = "failed", "the setup cell did not install course-utils: the Colab branch did not run"
        if replaced or removed:
            status = "failed"
            error = (error + "; " if error else "") + f"the setup cell replaced or removed Colab's packages: {replaced or removed}"
        # the setup cell run a second time (a reader who runs all cells again) must change nothing
        if "course-utils" in added:
            again = subprocess.run([str(python), "-m", "pip", "install", "-q",
                                    f"course-utils[ch{nn}] @ {env['COURSE_BOOK_SOURCE']}"],
                                   env=env, capture_output=True, text=True)
        if "course-utils" in added and (again.returncode != 0 or _pip_state(python) != after):
            status = "failed"
            error = (error + "; " if error else "") + f"the setup cell is not idempotent: {again.stderr.strip()[-300:]}"
        served = _QuietHandler.served[before_served:]
        results.append({"chapter": label, "notebook": reader.name, "status": status, "error": error, "wall_s": round(wall, 1),
                        "installed": {k: v for k, v in sorted(added.items())}, "replaced": replaced,
                        "downloads": len([s for s in served if s.startswith("GET")])})
        print(f"[colab-check] chapter {label}: {status} in {wall:.0f} s; setup cell installed "
              f"{', '.join(f'{k}=={v}' for k, v in sorted(added.items())) or 'nothing'}"
              + (f"; {len(served)} file(s) served" if server else "") + (f"\n    {error}" if error else ""), flush=True)
        # back to a fresh runtime for the next chapter
        if added:
            _run([python, "-m", "pip", "uninstall", "-y", "-q", *sorted(added)])
        for k, (old, _new) in replaced.items():
            _run([python, "-m", "pip", "install", "-q", "--no-deps", f"{k}=={old}"])
    if server:
        server.shutdown()

    total = time.perf_counter() - t_start
    print("\nSimulated Colab run")
    print(f"  Colab set: {DECLARED} (read {declared.header['read']} from {declared.header['source']})")
    print(f"  {data_line}")
    print("  | chapter | status | wall (s) | the setup cell installed |")
    print("  |---|---|---:|---|")
    for r in results:
        inst = ", ".join(f"{k} {v}" for k, v in r["installed"].items())
        print(f"  | {r['notebook']} | {r['status']} | {r['wall_s']} | {inst} |")
    print(f"  total wall time, environment included: {total:.0f} s")
    (work / "report.json").write_text(json.dumps({"data": data_line, "chapters": results, "total_s": round(total, 1)}, indent=1))
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        print(f"colab-check: FAILED: {', '.join(r['notebook'] + ' (' + r['error'] + ')' for r in failed)}", file=sys.stderr)
        return 1
    print("colab-check: every chapter ran top to bottom in the simulated Colab runtime")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py colab-check", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapters to run (default: all), e.g. 03 5 (every part) or 4.2 (one part)")
    parser.add_argument("--static", action="store_true", help="only the static check (fast; no network)")
    parser.add_argument("--root", type=Path, default=ROOT, help="for --static: the checkout to check (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (environment, executed notebooks)")
    parser.add_argument("--data", type=Path, help="the local data mirror to serve (default: $COURSE_DATA or ../shared/data)")
    args = parser.parse_args(argv)
    chapters = [c.zfill(2) if c.isdigit() else c for c in args.chapters]
    if any(not re.fullmatch(r"\d\d|\d{1,2}\.\d+", c) for c in chapters):
        parser.error(f"chapters are numbers such as 03 or 5, or parts such as 4.2, got {' '.join(args.chapters)}")
    chapters = [f"{int(c.split('.')[0])}.{c.split('.')[1]}" if "." in c else c for c in chapters]
    try:
        problems, reports = static_check(args.root.resolve())
    except (OSError, ValueError, SyntaxError, KeyError) as exc:
        print(f"colab-check: {exc}", file=sys.stderr)
        return 1
    print_static(problems, reports)
    if args.static:
        return 1 if problems else 0
    if problems:
        print("[colab-check] the static check found problems (above); running the simulation all the same", flush=True)
    try:
        status = simulate(chapters, args.keep, args.data)
        return status or (1 if problems else 0)
    except subprocess.CalledProcessError as exc:
        print(f"colab-check: a command failed ({' '.join(map(str, exc.cmd))}, exit {exc.returncode}); "
              f"its output is above", file=sys.stderr)
        return 1
    except ValueError as exc:  # a chapter whose reader notebook cannot be made (tools/reader_notebooks.py)
        print(f"colab-check: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("colab-check: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
