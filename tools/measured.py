"""Compare a cell's outputs token by token: text exactly, numbers within a declared tolerance.

The book has three kinds of output cell (BOOK_DESIGN.md, CONTRIBUTING.md):

- **exact** (no tag): math, data, shapes, checks. nbval compares them as strings.
- **measured** (tag ``nbval-measured``): numbers that come from training. Their text must be the same
  (words, labels, punctuation, the number of rows and columns of a table); every number may move within
  the tolerance declared on the cell, in its metadata::

      # %% tags=["nbval-measured"] tolerance={"abs": 0.6, "rel": 0.05}

  A number ``new`` passes against the stored ``ref`` when ``|new - ref| <= abs`` and
  ``|new - ref| <= rel * |ref|``, or when it moved by at most one unit in the last printed digit of
  ``ref`` (so a stored ``0.0`` may become ``0.1`` but not ``0.5``). Either bound may be ``null``
  (no bound of that kind). The ``.ipynb`` also holds a tolerance per output line
  (``tolerance_lines``), measured the same way; a number must satisfy its line's bounds too, so one
  volatile row of a table does not loosen the check of the others. ``python3 dev.py measure``
  measures the spread of every measured cell across rounding profiles and seeds and writes these
  tolerances; nobody types them in.
- **ignored** (tag ``nbval-ignore-output``): timings and what varies without bound.

Whitespace runs inside a line count as one space (a table realigns when a number gains a digit).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

MEASURED_TAG = "nbval-measured"
IGNORED_TAG = "nbval-ignore-output"
TOLERANCE_KEY = "tolerance"
LINES_KEY = "tolerance_lines"  # in the .ipynb only: a tolerance per output line, written with the cell's

# A number as printed by Python, NumPy and pandas: optional sign, digits with optional thousands
# separators, optional fraction, optional exponent. Not preceded by a letter or digit (so the 2 of
# "ch02" or "x2" is text, not a number) and not followed by a digit.
NUMBER = re.compile(
    r"(?<![A-Za-z_\d.])"
    r"(?P<num>[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?"
    r"|[-+\u2212]?\.\d+(?:[eE][-+]?\d+)?)"
    r"(?![\d])"
)
_SPACES = re.compile(r"[ \t]+")
PLACEHOLDER = "\u2980"  # stands for a number in the skeleton of a text


@dataclass(frozen=True)
class Number:
    text: str
    value: float
    unit: float  # one unit in the last printed digit
    line: int = 0  # the line of the text it stands on


def _parse(text: str, line: int = 0) -> Number:
    clean = text.replace(",", "").replace("\u2212", "-")
    value = float(clean)
    mantissa, _, exponent = clean.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    try:
        unit = 10.0 ** (int(exponent or 0) - decimals)
    except OverflowError:
        unit = math.inf
    return Number(text, value, unit, line)


def tokenize(text: str) -> tuple[str, list[Number]]:
    """The text with every number replaced by a placeholder (whitespace runs collapsed), and the numbers."""
    numbers: list[Number] = []
    lines = []
    for index, line in enumerate(text.splitlines()):
        def take(match: re.Match, index=index) -> str:
            numbers.append(_parse(match.group("num"), index))
            return PLACEHOLDER

        lines.append(_SPACES.sub(" ", NUMBER.sub(take, line)).rstrip())
    return "\n".join(lines), numbers


def _bound(ref: Number, tol: dict, lines: list | None = None) -> float:
    """The largest deviation allowed for ``ref``.

    ``tol`` is the cell's tolerance ({"abs": .., "rel": ..}); ``lines``, when measured, holds a tolerance
    per line of the output ([abs, rel] or None), and the tighter of the two applies. A number may always
    move by one unit of its last printed digit (a value on a rounding boundary prints either way).
    """
    allowed = math.inf
    if tol.get("abs") is not None:
        allowed = min(allowed, float(tol["abs"]))
    if tol.get("rel") is not None:
        allowed = min(allowed, float(tol["rel"]) * abs(ref.value))
    if lines is not None and ref.line < len(lines) and lines[ref.line] is not None:
        line_abs, line_rel = lines[ref.line]
        if line_abs is not None:
            allowed = min(allowed, float(line_abs))
        if line_rel is not None:
            allowed = min(allowed, float(line_rel) * abs(ref.value))
    return max(allowed, ref.unit)


def compare(ref: str, new: str, tol: dict, lines: list | None = None) -> list[str]:
    """Problems found comparing ``new`` against ``ref`` under ``tol`` (an empty list: they agree)."""
    ref_skel, ref_nums = tokenize(ref)
    new_skel, new_nums = tokenize(new)
    if ref_skel != new_skel or len(ref_nums) != len(new_nums):
        return [_structure_diff(ref_skel, new_skel)]
    problems = []
    for i, (r, n) in enumerate(zip(ref_nums, new_nums)):
        dev = abs(n.value - r.value)
        bound = _bound(r, tol, lines)
        if not dev <= bound * (1 + 1e-9) + 1e-300:  # decimal steps are inexact in binary; also catches NaN
            problems.append(
                f"number {i + 1} (line {r.line + 1}): stored {r.text}, now {n.text} (|difference| {dev:.3g} "
                f"> allowed {bound:.3g})"
            )
    return problems


def _structure_diff(ref_skel: str, new_skel: str) -> str:
    ref_lines, new_lines = ref_skel.splitlines(), new_skel.splitlines()
    for i, (a, b) in enumerate(zip(ref_lines, new_lines)):
        if a != b:
            return (f"the text differs, not only its numbers (line {i + 1}, numbers shown as "
                    f"{PLACEHOLDER}):\n  stored: {a}\n  now:    {b}")
    return (f"the text differs, not only its numbers: {len(ref_lines)} lines stored, "
            f"{len(new_lines)} now")


def deviations(ref: str, new: str) -> tuple[float, float] | None:
    """(max absolute deviation, smallest ``rel`` that covers every deviation) of ``new`` from ``ref``.

    ``None`` when the structure differs. ``rel`` is ``inf`` when a deviation larger than one printed
    unit occurs at a stored value of zero (no relative bound can cover it).
    """
    per_line = deviations_by_line(ref, new)
    if per_line is None:
        return None
    d_abs = max((d[0] for d in per_line.values()), default=0.0)
    d_rel = max((d[1] for d in per_line.values()), default=0.0)
    return d_abs, d_rel


def deviations_by_line(ref: str, new: str) -> dict[int, tuple[float, float]] | None:
    """For each line of ``ref`` holding numbers: (max absolute deviation, smallest covering ``rel``)."""
    ref_skel, ref_nums = tokenize(ref)
    new_skel, new_nums = tokenize(new)
    if ref_skel != new_skel or len(ref_nums) != len(new_nums):
        return None
    out: dict[int, tuple[float, float]] = {}
    for r, n in zip(ref_nums, new_nums):
        dev = abs(n.value - r.value)
        if math.isnan(dev):
            return None
        d_abs, d_rel = out.get(r.line, (0.0, 0.0))
        d_abs = max(d_abs, dev)
        if dev > r.unit:
            d_rel = max(d_rel, dev / abs(r.value) if r.value else math.inf)
        out[r.line] = (d_abs, d_rel)
    return out


def output_texts(outputs) -> dict[str, list[str]]:
    """The comparable texts of a cell's outputs, keyed like nbval does (stream name or MIME type).

    Images and widget models are left out (nbval does not compare them either).
    """
    skip = {"image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json"}
    texts: dict[str, list[str]] = {}
    streams: dict[str, str] = {}
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            streams[out["name"]] = streams.get(out["name"], "") + out["text"]
        elif kind in ("display_data", "execute_result"):
            for mime, value in out.get("data", {}).items():
                if mime in skip:
                    continue
                texts.setdefault(mime, []).append(value if isinstance(value, str) else "".join(value))
        elif kind == "error":
            texts.setdefault("error", []).append(f"{out.get('ename')}: {out.get('evalue')}")
    for name, text in streams.items():
        texts.setdefault(name, []).append(_coalesce(text))
    return texts


_CR = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)
_BS = re.compile("[^\n]\x08")


def _coalesce(text: str) -> str:
    """Apply carriage returns and backspaces, as nbval does (progress bars)."""
    old = None
    while old != text:
        old, text = text, _BS.sub("", text)
    return _CR.sub("", text)
