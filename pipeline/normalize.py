"""Turning what HR typed into typed values: `60%`, `１２`, `1,200`, `2026年10月`, dates.

Each parser takes a column of raw cell values (as calamine returns them) and gives back the
typed column plus a mask of cells that held something unusable, so validation can name them.
Parsing works on the column's distinct values, which keeps it fast on big files.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata

import numpy as np
import pandas as pd

from pipeline.kinds import CHOICE, ID, NUMBER, PERIOD, TEXT, WEIGHT, Field, choice_aliases, fold

_BLANK_STRINGS = {"", "-", "—", "/"}


def is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in ("",)


# Zero-width characters come along when IDs are pasted from chat apps and web pages; they
# make `E001` and `E001\u200b` look identical yet differ.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def _text(value: object) -> str:
    return unicodedata.normalize("NFKC", str(value)).translate(_INVISIBLE).strip()


# ------------------------------------------------------------------------------ numbers

_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CURRENCY = "¥$€£元"
_GROUPED_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?(%|‰)?$")


def parse_number(value: object) -> float | None:
    """A float from a cell, or None if it is not a number. `60%` → 0.6, `1,200` → 1200."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if not isinstance(value, str):
        return None  # dates, times: not a number
    text = _text(value).replace(" ", "").replace("\u00a0", "")
    text = text.replace("\u2212", "-").replace("\u2013", "-")  # − and – pasted from documents
    text = text.strip(_CURRENCY)
    if "," in text:
        # Thousands separators only where they group thousands: `1,200` is 1200, but `1,2`
        # (a decimal comma, or a typo) is not silently read as 12.
        if not _GROUPED_RE.match(text):
            return None
        text = text.replace(",", "")
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1], 0.01
    elif text.endswith("‰"):
        text, scale = text[:-1], 0.001
    if not _NUMBER_RE.match(text):
        return None
    number = float(text) * scale
    return number if math.isfinite(number) else None  # `1e999` is not a number anyone means


def _is_percent_text(value: object) -> bool:
    return isinstance(value, str) and _text(value).endswith("%")


# ------------------------------------------------------------------------------ periods

_MONTH_RE = re.compile(r"^(\d{4})\s*(?:[-/.年]\s*)(\d{1,2})\s*(?:月(?:份)?)?$")
_COMPACT_MONTH_RE = re.compile(r"^(\d{4})(\d{2})$")
_QUARTER_RE = re.compile(r"^(\d{4})\s*[-/年]?\s*(?:Q|第)\s*([1-4])\s*(?:季度?)?$", re.IGNORECASE)
_QUARTER_ZH_RE = re.compile(r"^(\d{4})\s*年?\s*第?\s*([一二三四1-4])\s*季度?$")
_HALF_RE = re.compile(r"^(\d{4})\s*[-/年]?\s*H\s*([12])$", re.IGNORECASE)
_HALF_ZH_RE = re.compile(r"^(\d{4})\s*年?\s*(上|下)半年$")
_YEAR_RE = re.compile(r"^(\d{4})\s*(?:年(?:度)?)?$")
_ZH_DIGITS = {"一": "1", "二": "2", "三": "3", "四": "4"}


def parse_period(value: object) -> str | None:
    """The canonical period (`2026-10`, `2026-Q3`, `2026-H1`, `2026`), or None.

    A month typed as `2026-10` that Excel turned into the date 2026-10-01 reads as that month.
    """
    if isinstance(value, (dt.datetime, dt.date)):
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        if number.is_integer() and 1900 <= number <= 2999:
            return f"{int(number)}"
        if number.is_integer() and 190001 <= number <= 299912 and 1 <= int(number) % 100 <= 12:
            return f"{int(number) // 100}-{int(number) % 100:02d}"  # 202610 typed, Excel kept a number
        return None
    if not isinstance(value, str):
        return None
    text = _text(value)
    # datetime text that came through as a string: 2026-10-01 00:00:00, 2026/10/1
    date_match = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]00:00(?::00)?)?$", text)
    if date_match:
        year, month = int(date_match.group(1)), int(date_match.group(2))
        return f"{year:04d}-{month:02d}" if 1 <= month <= 12 else None
    for pattern in (_MONTH_RE, _COMPACT_MONTH_RE):
        match = pattern.match(text)
        if match:
            month = int(match.group(2))
            return f"{int(match.group(1)):04d}-{month:02d}" if 1 <= month <= 12 else None
    for pattern in (_QUARTER_RE, _QUARTER_ZH_RE):
        match = pattern.match(text)
        if match:
            quarter = _ZH_DIGITS.get(match.group(2), match.group(2))
            return f"{match.group(1)}-Q{quarter}"
    match = _HALF_RE.match(text)
    if match:
        return f"{match.group(1)}-H{match.group(2)}"
    match = _HALF_ZH_RE.match(text)
    if match:
        return f"{match.group(1)}-H{'1' if match.group(2) == '上' else '2'}"
    match = _YEAR_RE.match(text)
    if match:
        return match.group(1)
    return None


def period_months(period: str) -> list[str]:
    """The months a period covers, in order: `2026-Q3` → 2026-07, 2026-08, 2026-09."""
    if re.fullmatch(r"\d{4}-\d{2}", period):
        return [period]
    year = period[:4]
    if period.endswith(("Q1", "Q2", "Q3", "Q4")):
        first = (int(period[-1]) - 1) * 3 + 1
        months = range(first, first + 3)
    elif period.endswith(("H1", "H2")):
        first = 1 if period.endswith("H1") else 7
        months = range(first, first + 6)
    elif re.fullmatch(r"\d{4}", period):
        months = range(1, 13)
    else:
        raise ValueError(f"not a period: {period!r}")
    return [f"{year}-{m:02d}" for m in months]


# ------------------------------------------------------------------------------ columns

def _by_distinct(raw: pd.Series, parse) -> pd.Series:
    """Apply `parse` once per distinct value: HR files repeat IDs and periods thousands of times."""
    objects = raw.astype(object)
    try:
        distinct = pd.unique(objects)
    except TypeError:  # unhashable: should not happen with cell values
        return objects.map(parse)
    lookup = {value: parse(value) for value in distinct}
    return objects.map(lookup.__getitem__)


def parse_column(raw: pd.Series, f: Field) -> tuple[pd.Series, pd.Series]:
    """(typed values, mask of non-blank cells that could not be read as `f`'s type)."""
    blank = _by_distinct(raw, is_blank).astype(bool)
    if f.type in (ID, TEXT):
        def as_text(value: object) -> object:
            if is_blank(value):
                return None
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            if isinstance(value, (dt.datetime, dt.date)):
                return value.isoformat()
            text = _text(value)
            return None if f.type == ID and text in _BLANK_STRINGS else text

        typed = _by_distinct(raw, as_text)
        return typed.astype(object), pd.Series(False, index=raw.index)
    if f.type in (NUMBER, WEIGHT):
        numeric_mask = raw.map(type).isin((float, int))
        typed = pd.Series(np.nan, index=raw.index, dtype="float64")
        typed[numeric_mask] = raw[numeric_mask].astype("float64")
        others = ~numeric_mask & ~blank
        if others.any():
            parsed = _by_distinct(raw[others], parse_number)
            typed[others] = parsed.astype("float64")
            if f.type == WEIGHT:
                # `60` means 60%; `60%` and a %-formatted 0.6 already are shares.
                whole_percent = others & typed.gt(1) & ~_by_distinct(raw, _is_percent_text).astype(bool)
                typed[whole_percent] = typed[whole_percent] / 100
        if f.type == WEIGHT:
            typed[numeric_mask & typed.gt(1)] = typed[numeric_mask & typed.gt(1)] / 100
        bad = ~blank & typed.isna()
        return typed, bad
    if f.type == PERIOD:
        typed = _by_distinct(raw, lambda v: None if is_blank(v) else parse_period(v))
        bad = ~blank & typed.isna()
        return typed.astype(object), bad
    if f.type == CHOICE:
        aliases = choice_aliases(f)
        typed = _by_distinct(raw, lambda v: None if is_blank(v) else aliases.get(fold(v)))
        bad = ~blank & typed.isna()
        if f.default is not None:
            typed = typed.where(~blank, f.default)
        return typed.astype(object), bad
    raise ValueError(f"unknown field type {f.type!r}")
