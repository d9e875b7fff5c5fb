"""Argument checks shared by every module of ``course_utils``: one home, one wording.

Each check returns the value converted to a plain Python type, or raises an error that names the
argument, says what was expected and shows what was given, so a caller can fix the call from the
message alone. ``bool`` is refused where a number is expected (``True`` is an ``int`` in Python, but
never a meaningful batch size or seed).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["is_int", "positive_int", "int_at_least", "seed", "check_bool", "real", "nonnegative_real"]


def is_int(n) -> bool:
    """True for Python and NumPy integers, False for bools and everything else."""
    return isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_))


def positive_int(name: str, n, allow_none: bool = False, none_means: str | None = None):
    """``n`` as an int; a ``ValueError`` naming ``name`` unless it is an integer >= 1.

    With ``allow_none``, ``None`` is returned as it is and the message says what it means, e.g.
    ``positive_int("threads", n, allow_none=True, none_means="all cores")``.
    """
    if n is None and allow_none:
        return None
    if not is_int(n) or n < 1:
        alternative = f" or None ({none_means})" if allow_none and none_means else " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive integer{alternative}, got {n!r}")
    return int(n)


def int_at_least(name: str, value, minimum: int) -> int:
    """``value`` as an int; a ``TypeError`` when it is not an integer, a ``ValueError`` below ``minimum``."""
    if not is_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def seed(name: str, value, allow_none: bool = False, maximum: int | None = None):
    """A seed: a non-negative integer (or ``None`` when ``allow_none``), at most ``maximum`` when one
    is given (e.g. ``2**32 - 1``, NumPy's legacy generator's limit); a ``ValueError`` otherwise."""
    if value is None and allow_none:
        return None
    if not is_int(value) or value < 0 or (maximum is not None and value > maximum):
        bound = f" at most {_number_text(maximum)}" if maximum is not None else ""
        raise ValueError(f"{name} must be a non-negative integer{bound}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _number_text(n: int) -> str:
    """``2**32 - 1`` for a power of two less one (as a reader knows the limit), else the digits."""
    k = (n + 1).bit_length() - 1
    return f"2**{k} - 1" if n > 1 and 2**k == n + 1 else str(n)


def check_bool(name: str, value) -> bool:
    """``value`` as a bool; a ``TypeError`` unless it is ``True`` or ``False`` (NumPy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def real(name: str, value) -> float:
    """A finite real number as a float: a ``TypeError`` for non-numbers and bools, a ``ValueError`` for inf/NaN."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def nonnegative_real(name: str, value, positive: bool = False) -> float:
    """A finite real >= 0 (> 0 when ``positive``) as a float; errors as :func:`real`, and below the bound."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite {'positive' if positive else 'non-negative'} number, got {value!r}")
    return value
