"""Exact numbers for indexing: concentrations as fractions, GB/T 8170 rounding, ceilings.

Binary floating point gives wrong integers where an IAQI is exactly whole
(CO 24 h 2.2 gives 55.00000000000001 and a ceiling of 56), so the indexing step works on
exact rationals. A float is read as the decimal it prints as (``repr``): 2.2 means 2.2.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from numbers import Rational, Real

from aqi_service.errors import ConcentrationError

Number = int | float | Decimal | Fraction | str

HUGE = Fraction(10**30)
"""Any concentration above this is above every breakpoint table; larger values are read as
this (so that ``1e999999999`` cannot make the exact arithmetic build a billion-digit number)."""
TINY = Fraction(1, 10**30)
"""A positive value below this is read as this (1e-999999999 stays cheap and positive)."""
_HUGE_EXPONENT = 30
_NUMERIC_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def to_fraction(value: Number, name: str = "concentration") -> Fraction:
    """Return ``value`` as an exact non-negative Fraction, or raise ConcentrationError."""
    if isinstance(value, bool):
        raise ConcentrationError(f"{name}: expected a number, got a boolean")
    if isinstance(value, int):
        result = Fraction(value) if value.bit_length() < 128 else HUGE * (1 if value > 0 else -1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConcentrationError(f"{name}: {value!r} is not a finite number")
        result = Fraction(Decimal(float.__repr__(value)))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ConcentrationError(f"{name}: {value} is not a finite number")
        if value.adjusted() > _HUGE_EXPONENT:
            result = HUGE if value > 0 else -HUGE
        elif value.adjusted() < -_HUGE_EXPONENT:
            # Far below any precision that matters, but not zero: 2012 still rounds it up.
            result = TINY if value > 0 else (-TINY if value < 0 else Fraction(0))
        else:
            result = Fraction(value)
    elif isinstance(value, Rational):
        result = Fraction(value.numerator, value.denominator)
    elif isinstance(value, Real):
        return to_fraction(float(value), name)
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMERIC_TEXT.match(text):
            raise ConcentrationError(f"{name}: {value[:40]!r} is not a number")
        return to_fraction(Decimal(text), name)
    else:
        raise ConcentrationError(f"{name}: expected a number, got {type(value).__name__}")
    if result < 0:
        raise ConcentrationError(f"{name}: {value} is negative")
    return result


def round_half_even(value: Fraction, decimals: int) -> Fraction:
    """Round per GB/T 8170 (round half to even) to ``decimals`` places, exactly."""
    return Fraction(round(value, decimals))
