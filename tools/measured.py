"""Compare a cell's outputs token by token: text exactly, numbers within a declared tolerance.

The book has three kinds of output cell (BOOK_DESIGN.md, CONTRIBUTING.md):

- **exact** (no tag): math, data, shapes, checks. nbval compares them as strings.
- **measured** (tag ``nbval-measured``): numbers that come from training. Their text must be the same
  (words, labels, punctuation, the number of rows and columns of a table); every number may move within
  the tolerance declared on the cell, in its metadata::

      # %% tags=["nbval-measured"] tolerance={"abs": 0.6, "rel": 0.05}

  A number ``new`` passes against the stored ``ref`` when ``|new - ref| <= abs`` and
  ``|new - ref| <= max(rel * |ref|, unit)``, where ``unit`` is one unit in the last printed digit of
  ``ref`` (so a stored ``0.0`` may become ``0.1`` but not ``0.5``). Either bound may be ``null``
  (no bound of that kind). ``python3 dev.py measure`` measures the spread of every measured cell across
  rounding profiles and seeds and writes these tolerances; nobody types them in.
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


def _parse(text: str) -> Number:
    clean = text.replace(",", "").replace("\u2212", "-")
    value = float(clean)
    mantissa, _, exponent = clean.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    try:
        unit = 10.0 ** (int(exponent or 0) - decimals)
    except OverflowError:
        unit = math.inf
    return Number(text, value, unit)


def tokenize(text: str) -> tuple[str, list[Number]]:
    """The text with every number replaced by a placeholder (whitespace runs collapsed), and the numbers."""
    numbers: list[Number] = []

    def take(match: re.Match) -> str:
        numbers.append(_parse(match.group("num")))
        return PLACEHOLDER

    lines = [_SPACES.sub(" ", NUMBER.sub(take, line)).rstrip() for line in text.splitlines()]
    return "\n".join(lines), numbers


def _bound(ref: Number, tol: dict) -> float:
    """The largest deviation allowed for ``ref`` under ``tol`` ({"abs": .., "rel": ..})."""
    allowed = math.inf
    if tol.get("abs") is not None:
        allowed = min(allowed, float(tol["abs"]))
    if tol.get("rel") is not None:
        allowed = min(allowed, max(float(tol["rel"]) * abs(ref.value), ref.unit))
    return allowed


def compare(ref: str, new: str, tol: dict) -> list[str]:
    """Problems found comparing ``new`` against ``ref`` under ``tol`` (an empty list: they agree)."""
    ref_skel, ref_nums = tokenize(ref)
    new_skel, new_nums = tokenize(new)
    if ref_skel != new_skel or len(ref_nums) != len(new_nums):
        return [_structure_diff(ref_skel, new_skel)]
    problems = []
    for i, (r, n) in enumerate(zip(ref_nums, new_nums)):
        dev = abs(n.value - r.value)
        if not dev <= _bound(r, tol):  # also catches NaN
            problems.append(
                f"number {i + 1}: stored {r.text}, now {n.text} (|difference| {dev:.3g} > allowed "
                f"{_bound(r, tol):.3g} under tolerance {tol})"
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
    ref_skel, ref_nums = tokenize(ref)
    new_skel, new_nums = tokenize(new)
    if ref_skel != new_skel or len(ref_nums) != len(new_nums):
        return None
    d_abs = d_rel = 0.0
    for r, n in zip(ref_nums, new_nums):
        dev = abs(n.value - r.value)
        if math.isnan(dev):
            return None
        d_abs = max(d_abs, dev)
        if dev > r.unit:
            d_rel = max(d_rel, dev / abs(r.value) if r.value else math.inf)
    return d_abs, d_rel


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
