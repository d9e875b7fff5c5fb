"""Repository-wide pytest configuration: nbval's comparison extended for measured cells
(tools/nbval_tolerance.py), and the order in which a parallel run hands out its files."""
from __future__ import annotations

from itertools import zip_longest

pytest_plugins = ["tools.nbval_tolerance"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "processes: the module starts processes and waits on them (a parallel run starts it early, beside a notebook)",
    )


def _recorded_wall_seconds(path) -> float:
    """A notebook's wall time when it was last executed (its execution record), 0.0 without one."""
    from tools import layout

    try:
        return float((layout.execution_record(path) or {}).get("wall_seconds", 0.0))
    except (OSError, ValueError, TypeError):
        return 0.0


def file_order(items: list) -> list:
    """The files of ``items`` in the order a parallel run should start them: the longest first, so that
    the workers end together (`dev.py test` hands out whole files, in this order: --dist loadfile
    --no-loadscope-reorder). The modules marked ``processes`` (the sweeps and the cache races, each
    among the longest files, and each partly waiting) alternate with the notebooks by their recorded
    wall time, longest first, so that a waiting module runs beside a computing notebook; then come the
    other test modules as collected. Only the order of whole files changes; within a file the items
    keep theirs."""
    first = {item.path: item for item in reversed(items)}  # each file's first item
    paths = list(dict.fromkeys(item.path for item in items))
    waiting = [p for p in paths if first[p].get_closest_marker("processes") is not None]
    notebooks = sorted((p for p in paths if p.suffix == ".ipynb" and p not in waiting),
                       key=_recorded_wall_seconds, reverse=True)
    merged = [p for pair in zip_longest(waiting, notebooks) for p in pair if p is not None]
    placed = set(merged)
    return merged + [p for p in paths if p not in placed]


def pytest_collection_modifyitems(session, config, items):
    position = {path: k for k, path in enumerate(file_order(items))}
    items.sort(key=lambda item: position[item.path])  # stable: each file's items keep their order
