"""Compare a cell's outputs token by token: text exactly, numbers within measured tolerances.

The book has three kinds of output cell (CONTRIBUTING.md, *Outputs that hold on every machine*):

- **exact** (no tag): math, data, shapes, checks. nbval compares them as strings.
- **measured** (tag ``nbval-measured``): numbers that come from training. Their text must be the same
  (words, labels, punctuation, the number of rows and columns of a table); every number may move within
  its tolerance. ``python3 dev.py measure`` (``tools/measure_tolerances.py``) measures them; nobody types
  them in. Two levels:

  - **per number** (the ``.ipynb``'s cell metadata ``tolerance_numbers``: for each output, for each line,
    one absolute bound per number of the line, or null for a line without numbers). This is what
    applies wherever it was measured. A number's bound is the largest deviation measured among the
    numbers *of its line printed to the same last digit* (its line-mates in the same unit: a mean and its
    range, a difference or a spread beside the values it comes from), times the margin. A spread or a
    difference of trained values is far more volatile relative to its size than the values are, and a
    handful of runs cannot measure that; in absolute terms it moves no more than about twice as much as
    its values, so a bound at least as wide as theirs holds on machines the measurement never saw.
    Numbers of another precision on the same line (a loss printed to 0.001 beside an accuracy printed
    to 0.1) keep bounds of their own.
  - **per cell** (metadata ``tolerance``, written into the ``.py`` too, where a reviewer sees it)::

        # %% tags=["nbval-measured"] tolerance={"abs": 0.6, "rel": 0.05}

    the largest absolute and relative deviation of the cell times the margin: the summary, and the bound
    for a line without per-number tolerances (``|new - ref| <= abs`` and ``<= rel * |ref|``; either may be
    null).

  A number may always move by one unit of the last printed digit of the stored value (a value on a
  rounding boundary prints either way; so a stored ``0.0`` may become ``0.1`` but not ``0.5``).
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
NUMBERS_KEY = "tolerance_numbers"  # in the .ipynb only: per output, per line, a bound per number

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


def _bound(ref: Number, index: int, tol: dict, numbers: list | None = None) -> float:
    """The largest deviation allowed for ``ref``, the ``index``-th number of its line.

    ``numbers`` (per line: a list with one bound per number, or None) applies where it has a bound for
    this number; elsewhere the cell's ``tol`` ({"abs": .., "rel": ..}). Never less than one printed unit.
    """
    row = numbers[ref.line] if numbers is not None and ref.line < len(numbers) else None
    if isinstance(row, list) and index < len(row) and isinstance(row[index], (int, float)):
        return max(float(row[index]), ref.unit)
    allowed = math.inf
    if tol.get("abs") is not None:
        allowed = min(allowed, float(tol["abs"]))
    if tol.get("rel") is not None:
        allowed = min(allowed, float(tol["rel"]) * abs(ref.value))
    return max(allowed, ref.unit)


def _index_in_line(numbers: list[Number]) -> list[int]:
    out, seen = [], {}
    for n in numbers:
        seen[n.line] = seen.get(n.line, -1) + 1
        out.append(seen[n.line])
    return out


def compare(ref: str, new: str, tol: dict, numbers: list | None = None) -> list[str]:
    """Problems found comparing ``new`` against ``ref`` (an empty list: they agree).

    ``tol``: the cell's tolerance; ``numbers``: this output's per-number tolerances (see the module docstring).
    """
    ref_skel, ref_nums = tokenize(ref)
    new_skel, new_nums = tokenize(new)
    if ref_skel != new_skel or len(ref_nums) != len(new_nums):
        return [_structure_diff(ref_skel, new_skel)]
    problems = []
    for i, (r, n, j) in enumerate(zip(ref_nums, new_nums, _index_in_line(ref_nums))):
        dev = abs(n.value - r.value)
        bound = _bound(r, j, tol, numbers)
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


def deviations(ref: str, new: str) -> list[list[tuple[float, float]]] | None:
    """For each line of ``ref``, for each of its numbers: (absolute deviation, relative deviation) of ``new``.

    ``None`` when the text differs beyond its numbers, or a number became NaN. The relative deviation is
    0 for a move within one printed unit (always allowed), and ``inf`` for a larger move from a stored zero.
    """
    ref_skel, ref_nums = tokenize(ref)
    new_skel, new_nums = tokenize(new)
    if ref_skel != new_skel or len(ref_nums) != len(new_nums):
        return None
    out: list[list[tuple[float, float]]] = [[] for _ in ref.splitlines()]
    for r, n in zip(ref_nums, new_nums):
        dev = abs(n.value - r.value)
        if math.isnan(dev):
            return None
        rel = 0.0 if dev <= r.unit else (dev / abs(r.value) if r.value else math.inf)
        out[r.line].append((dev, rel))
    return out


def units(text: str) -> list[list[float]]:
    """For each line of ``text``, the printed unit (last digit) of each of its numbers."""
    skel, nums = tokenize(text)
    out: list[list[float]] = [[] for _ in text.splitlines()]
    for n in nums:
        out[n.line].append(n.unit)
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
