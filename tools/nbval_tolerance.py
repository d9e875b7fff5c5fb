"""A pytest plugin on top of nbval: cells tagged ``nbval-measured`` are compared within a tolerance.

nbval compares every output as a string, which is right for what is deterministic and wrong for numbers
that come from training: another CPU's BLAS kernels round differently, training amplifies the last digit,
and the printed loss moves in its second digit. For a cell tagged ``nbval-measured`` this plugin replaces
nbval's comparison with :func:`tools.tolerance.compare`: the text (words, labels, table layout) must be
the same, and each number must lie within its measured tolerance (the cell's metadata ``tolerance`` and
``tolerance_numbers``, written by ``python3 dev.py measure``). Everything else about nbval (execution,
sanitizing, untagged cells, ``nbval-ignore-output``) is unchanged.

Loaded by the repository's ``conftest.py``.
"""
from __future__ import annotations

import types

from tools import tolerance


def pytest_collection_modifyitems(session, config, items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval absent: nothing to extend
        return
    for item in items:
        if not isinstance(item, IPyNbCell):
            continue
        meta = item.cell.get("metadata", {})
        tags = meta.get("tags", [])
        tol = meta.get(tolerance.TOLERANCE_KEY)
        if tolerance.MEASURED_TAG in tags:
            item.compare_outputs = types.MethodType(_compare_within_tolerance, item)
            item._tolerance = tol
            item._tolerance_numbers = meta.get(tolerance.NUMBERS_KEY) or {}


def _compare_within_tolerance(self, test, ref, skip_compare=None):
    """nbval's ``compare_outputs`` for a measured cell (same signature, same reporting)."""
    self.comparison_traceback = []
    tol = getattr(self, "_tolerance", None)
    if not isinstance(tol, dict) or not ({"abs", "rel"} & set(tol)):
        self.comparison_traceback.append(
            f"cell {self.cell_num} is tagged {tolerance.MEASURED_TAG!r} but declares no tolerance "
            f"(metadata {tolerance.TOLERANCE_KEY!r} = {tol!r}); run `python3 dev.py measure` on its notebook"
        )
        return False
    sanitize = self.sanitize
    ref_texts = {k: [sanitize(v) for v in vs] for k, vs in tolerance.output_texts(ref).items()}
    new_texts = {k: [sanitize(v) for v in vs] for k, vs in tolerance.output_texts(test).items()}
    if set(ref_texts) != set(new_texts):
        self.comparison_traceback.append(
            f"output kinds differ: stored {sorted(ref_texts)}, now {sorted(new_texts)}"
        )
        return False
    ok = True
    for key, refs in ref_texts.items():
        news = new_texts[key]
        if len(refs) != len(news):
            self.comparison_traceback.append(f"{key}: {len(refs)} outputs stored, {len(news)} now")
            return False
        for k, (ref_text, new_text) in enumerate(zip(refs, news)):
            numbers = getattr(self, "_tolerance_numbers", {}).get(f"{key}/{k}")
            problems = tolerance.compare(ref_text, new_text, tol, numbers)
            if problems:
                ok = False
                self.comparison_traceback.append(
                    f"measured cell, {key}: outside its measured tolerance (cell: {tol}):\n  "
                    + "\n  ".join(problems[:10])
                    + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
                )
                self.comparison_traceback.append("stored:\n" + ref_text)
                self.comparison_traceback.append("now:\n" + new_text)
    return ok
