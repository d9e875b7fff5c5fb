"""Where the book's files are and how chapters are named: defined here once, used by every tool.

Standard library only: ``dev.py`` imports it before its virtual environment exists.

- A chapter is ``notebooks/NN_slug.py`` (jupytext percent source) with its ``NN_slug.ipynb``. A
  chapter that holds more than one lecture is split into parts, one notebook each:
  ``notebooks/NN_P_slug.py`` (``04_1_minibatches``, ``04_2_batch_size``). The chapter number is
  always the first two digits (``chapter("04_2_batch_size") == "04"``), so the parts of a chapter
  share its Colab extra ``chNN``; :func:`number` gives what the site prints (``"4"``, ``"4.2"``).
- The data mirror is ``../shared/data`` beside the checkout (``COURSE_DATA`` overrides it); every tool
  that starts a notebook kernel points ``COURSE_DATA`` at it through :func:`notebook_environment`.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# the data mirror beside the checkout (the team's shared folder; CI's copy of it)
DATA_MIRROR = ROOT.parent / "shared" / "data"
# notebook metadata key of the execution record (hashes, status, times, data, tolerance measurement)
META_KEY = "course_book"

CHAPTER_GLOB = "[0-9][0-9]_*"  # a chapter's or a part's file name, without suffix
# NN_slug or NN_P_slug; the slug starts with a letter, so "07_3d_views" is chapter 7, not a part
CHAPTER_STEM = re.compile(r"^(?P<chapter>\d\d)_(?:(?P<part>\d+)_)?(?P<slug>[A-Za-z][\w-]*)$")


def chapter_sources(root: Path = ROOT, suffix: str = ".py") -> list[Path]:
    """Every chapter (or part) file of ``root/notebooks`` with ``suffix``, in book order."""
    return sorted(p for p in (Path(root) / "notebooks").glob(CHAPTER_GLOB + suffix) if is_chapter(p.stem))


def execution_record(ipynb: Path) -> dict | None:
    """The execution record ``dev.py execute`` stored in the metadata of ``ipynb`` (status, hashes, times, data,
    tolerance measurement): ``{}`` when the notebook has none, None when the file does not exist. Read as
    plain JSON, so that ordering the test run's files by these records needs no jupytext."""
    try:
        text = Path(ipynb).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text).get("metadata", {}).get(META_KEY, {})
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{ipynb} is not a notebook (JSON with a metadata object): {exc}; restore it with "
                         "`git checkout` or execute its .py again with `python3 dev.py execute`") from None
    return record if isinstance(record, dict) else {}


def is_chapter(stem: str) -> bool:
    return CHAPTER_STEM.match(stem) is not None


def _match(stem: str) -> re.Match:
    m = CHAPTER_STEM.match(stem)
    if m is None:
        raise ValueError(f"{stem!r} is not a chapter's name: chapters are notebooks/NN_slug or, split into parts, "
                         f"notebooks/NN_P_slug (e.g. 04_2_batch_size)")
    return m


def chapter(stem: str) -> str:
    """The chapter's two digits: ``"05"`` for ``05_backprop`` and for ``05_2_sweeps``."""
    return _match(stem).group("chapter")


def part(stem: str) -> int | None:
    """The part's number (``2`` for ``04_2_batch_size``), or None for an unsplit chapter."""
    p = _match(stem).group("part")
    return int(p) if p is not None else None


def number(stem: str) -> str:
    """What the site numbers by: ``"4"`` for ``04_slug``, ``"4.2"`` for ``04_2_slug``."""
    n, p = int(chapter(stem)), part(stem)
    return f"{n}" if p is None else f"{n}.{p}"


def docname_stem(docname: str) -> str | None:
    """``"04_2_batch_size"`` for the Sphinx docname ``notebooks/04_2_batch_size``; None if not a chapter."""
    folder, _, stem = docname.partition("/")
    return stem if folder == "notebooks" and is_chapter(stem) else None


def data_mirror() -> Path | None:
    """The local data mirror: ``$COURSE_DATA`` when set, else ``../shared/data`` when it exists, else None."""
    if os.environ.get("COURSE_DATA"):
        return Path(os.environ["COURSE_DATA"])
    return DATA_MIRROR if DATA_MIRROR.is_dir() else None


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share_cores(env: dict, workers: int) -> dict:
    """``env`` for one of ``workers`` processes that run side by side (test workers, measured runs): each gets
    its share of the cores as its thread count (unless ``env`` sets one), also where a chapter asks for every
    core (``course_utils.runtime.available_cores`` reads ``OMP_NUM_THREADS``). A process with more threads
    than its share waits, at every parallel step, on a thread that another process holds off the core."""
    from course_utils.runtime import available_cores  # needs .venv's numpy: call it from a command

    share = str(max(1, available_cores() // max(1, workers)))
    for name in THREAD_VARIABLES:
        env.setdefault(name, share)
    return env


def notebook_environment(env: dict | None = None) -> dict:
    """``env`` (default ``os.environ``) set up for a notebook kernel: the data mirror, a fixed hash seed."""
    env = os.environ if env is None else env
    if "COURSE_DATA" not in env and DATA_MIRROR.is_dir():
        env["COURSE_DATA"] = str(DATA_MIRROR)
    env.setdefault("PYTHONHASHSEED", "0")
    return env
