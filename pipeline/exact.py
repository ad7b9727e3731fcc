"""Exact decimal arithmetic for the values that decide a boundary.

Scores become bonuses, so a comparison (pass/fail, a tier line, the cap) or a half-up rounding
must never be decided by float noise: 0.8999999999999 stays below a 0.9 target and a total of
109.994999999455% stays 109.99. Each input is taken as the decimal the person typed (a float
cell by its shortest repr, `repr(0.1) == '0.1'`) and computed with `fractions.Fraction`.

The batch stays vectorised in floats and asks this module only for the rows and totals that sit
close enough to a boundary for float noise to matter (see `scoring.score_period`).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal
from fractions import Fraction
from functools import lru_cache

ONE = Fraction(1)


@lru_cache(maxsize=1 << 16)
def typed(value: float) -> Fraction:
    """The decimal a float cell holds, as typed: its shortest repr (0.1 → 1/10, not 0.1000…0555)."""
    return Fraction(repr(float(value)))


def decimal_of(value: float) -> Decimal:
    """`typed` as a Decimal (for display and for half-up quantising)."""
    return Decimal(repr(float(value)))


def half_up(value: Fraction | float, decimals: int = 2) -> Decimal:
    """Half-up rounding (ties away from zero), exact on the value: 0.125 → 0.13, 96.495 → 96.50.

    A float is taken by its shortest repr (never pre-rounded to fewer digits): 109.994999999455
    rounds to 109.99, not 110.00.
    """
    exact = value if isinstance(value, Fraction) else typed(value)
    scaled = abs(exact) * 10 ** decimals
    whole = math.floor(scaled + Fraction(1, 2))
    rounded = Decimal(whole if exact >= 0 else -whole).scaleb(-decimals)
    return rounded.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


# Decimal arithmetic wide enough to stay exact on typed decimals (a float's shortest repr has at
# most 17 digits, so their sums and products fit): what Fractions give, an order of magnitude faster.
WIDE = Context(prec=100)


def half_up_decimal(value: Decimal, decimals: int = 2) -> Decimal:
    """`half_up` of a Decimal computed exactly in `WIDE` (no negative zero): 0.125 → 0.13."""
    rounded = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP, context=WIDE)
    return rounded if rounded else abs(rounded)


def half_up_text(value: float, decimals: int = 2, thousands: bool = False) -> str:
    """`half_up(value, decimals)` as text (`thousands`: with 1,234 separators), fast for a float.

    Away from a tie the float's own digits decide (its error is far below the margin); within
    1e-6 of a tie the exact rule does. Writers call this once per number they print."""
    scaled = abs(float(value)) * 10 ** decimals
    if not math.isfinite(scaled) or scaled >= 1e12 or abs(scaled % 1 - 0.5) < 1e-6:
        # The typed decimal (shortest repr), rounded half-up: what `half_up` does, without Fractions.
        rounded = decimal_of(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
        return f"{rounded:,}" if thousands else str(rounded)
    whole = math.floor(scaled + 0.5)
    sign = "-" if value < 0 and whole else ""
    return sign + (f"{whole / 10 ** decimals:,.{decimals}f}" if thousands else f"{whole / 10 ** decimals:.{decimals}f}")


def near(x: float, y: float, relative: float = 1e-9) -> bool:
    """True when floats `x` and `y` are too close for float arithmetic to tell their order."""
    return abs(x - y) <= relative * max(abs(x), abs(y), 1e-300)


def achievement(method: str, lower: bool, a: Fraction, t: Fraction | None, b: Fraction | None,
                s: Fraction | None, *, lower_is_better: str, cap: Fraction, base_score: Fraction,
                stretch_score: Fraction, scale_max: Fraction) -> Fraction:
    """The unclipped achievement of one row, exactly (the same table as `scoring.achievement`)."""
    if method == "ratio":
        assert t is not None
        if not lower:
            return a / t
        if lower_is_better == "linear":
            return 2 - a / t
        return cap if a == 0 else t / a
    if method == "pass_fail":
        assert t is not None
        return ONE if (a <= t if lower else a >= t) else Fraction(0)
    if method == "tiered":
        assert t is not None and b is not None and s is not None
        sign = -1 if lower else 1
        ga, gb, gt, gs = a * sign, b * sign, t * sign, s * sign
        if ga < gb:
            return Fraction(0)
        if ga < gt:
            return base_score + (1 - base_score) * (ga - gb) / (gt - gb)
        if ga < gs:
            return 1 + (stretch_score - 1) * (ga - gt) / (gs - gt)
        return stretch_score
    if method == "rating":
        return a / (scale_max if t is None else t)
    raise ValueError(f"unknown scoring method {method!r}")


def to_float(value: Fraction) -> float:
    """The nearest float, ±inf beyond the float range (a ratio over a denormal target)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def clip(value: Fraction, floor: Fraction, cap: Fraction) -> Fraction:
    return max(floor, min(cap, value))
