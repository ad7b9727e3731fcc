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
from decimal import Decimal
from itertools import repeat

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
    if value.__class__ is str and value.isascii():
        return value.strip()  # NFKC leaves ASCII as it is, and no invisible character is ASCII
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
    shift = 0
    if text.endswith("%"):
        text, shift = text[:-1], 2
    elif text.endswith("‰"):
        text, shift = text[:-1], 3
    if not _NUMBER_RE.match(text):
        return None
    # Scaled as a decimal: `33.33%` is 0.3333 as typed, not 33.33 × 0.01 = 0.33330000000000004.
    number = float(Decimal(text).scaleb(-shift)) if shift else float(text)
    return number if math.isfinite(number) else None  # `1e999` is not a number anyone means


def _hundredths(values: np.ndarray) -> np.ndarray:
    """`60` → 0.6 for weights typed as whole percents, divided as decimals (33.33 → 0.3333)."""
    return np.fromiter((float(Decimal(repr(float(v))).scaleb(-2)) for v in values), dtype="float64",
                       count=len(values))


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


# ------------------------------------------------------------------------------ columns

_TYPE_OF = np.frompyfunc(type, 1, 1)
# Type objects and None as 0-d object arrays, compared elementwise with object arrays.
_STR, _FLOAT, _INT, _NONE = (np.array(value, dtype=object) for value in (str, float, int, None))


class Distinct:
    """A column as codes into its distinct values, so that a parser runs once per distinct
    value: HR files repeat IDs and periods thousands of times.

    The distinct values are pandas' (first occurrence of each, equal values together, so
    `1.0` and `True` share one, as `pd.unique` has them). Missing values (None, NaN, NaT) have
    code -1 and are parsed once per type. The reader hands its own factorisation of each
    column to validation (`Table.codes`), so a column is hashed once.
    """

    __slots__ = ("values", "codes", "uniques", "_text")

    def __init__(self, values: np.ndarray, codes: np.ndarray | None = None, uniques: np.ndarray | None = None):
        self.values = values
        if codes is None or uniques is None or len(codes) != len(values):
            codes, uniques = pd.factorize(values)
        self.codes, self.uniques = codes, uniques
        self._text: np.ndarray | None = None

    def _is_text(self) -> np.ndarray:
        """Which distinct values are exactly `str`."""
        if self._text is None:
            self._text = np.equal(_TYPE_OF(self.uniques), _STR) if len(self.uniques) else np.zeros(0, dtype=bool)
        return self._text

    def blank(self) -> np.ndarray:
        """`is_blank` of every value; for distinct values that are all text, without a Python
        call per value (blank text is what `strip` empties)."""
        if not self._is_text().all():
            return self.test(is_blank)
        results = np.zeros(len(self.uniques) + 1, dtype=bool)
        results[:-1] = ~np.fromiter(map(bool, map(str.strip, self.uniques)), dtype=bool, count=len(self.uniques))
        out = results.take(self.codes)
        self._missing(is_blank, out)
        return out

    def matches(self, pattern: re.Pattern) -> np.ndarray:
        """Which values are text that `pattern` matches at the start."""
        text = self._is_text()
        results = np.zeros(len(self.uniques) + 1, dtype=bool)
        if text.all():
            results[:-1] = np.fromiter(map(bool, map(pattern.match, self.uniques)), dtype=bool, count=len(text))
        elif text.any():
            results[:-1][text] = np.fromiter(map(bool, map(pattern.match, self.uniques[text])), dtype=bool,
                                             count=int(text.sum()))
        return results.take(self.codes)  # missing values (None, NaN) are not text

    def apply(self, parse, text_gaps: bool = False) -> np.ndarray:
        """`parse` of every value (an object array aligned with the column).

        `text_gaps`: where some results are text, the others (None) become NaN, as a pandas
        column of text holds its gaps (what `Series.map` gave here before)."""
        results = np.empty(len(self.uniques) + 1, dtype=object)
        results[:-1] = np.fromiter(map(parse, self.uniques), dtype=object, count=len(self.uniques))
        out = results.take(self.codes)  # code -1 takes the last slot, filled below
        used = self._missing(parse, out)
        if text_gaps and len(out):
            present = np.zeros(len(results), dtype=bool)
            present[self.codes[self.codes >= 0]] = True
            used.extend(results[present])
            if any(result.__class__ is str for result in used):
                gaps = np.equal(results, _NONE)
                gaps[-1] = False
                gaps = gaps.take(self.codes)
                missing = np.flatnonzero(self.codes < 0)
                if len(missing):
                    gaps[missing] = pd.isna(out[missing])
                out[gaps] = np.nan
        return out

    def test(self, predicate) -> np.ndarray:
        """`predicate` of every value, as a boolean array aligned with the column."""
        results = np.zeros(len(self.uniques) + 1, dtype=bool)
        results[:-1] = np.fromiter(map(predicate, self.uniques), dtype=bool, count=len(self.uniques))
        out = results.take(self.codes)
        self._missing(predicate, out)
        return out

    def _missing(self, parse, out: np.ndarray) -> list:
        """Fill in `out` for the missing values (code -1), parsed once per type."""
        missing = np.flatnonzero(self.codes < 0)
        used = []
        if len(missing):
            values = self.values[missing]
            types = _TYPE_OF(values)
            for kind in pd.unique(types):  # None, float NaN, NaT...: a handful of types
                chosen = types == kind
                result = parse(values[np.argmax(chosen)])
                out[missing[chosen]] = result
                used.append(result)
        return used

    def is_text(self) -> np.ndarray:
        """Which cells hold a `str` (exactly): a string only ever equals a string."""
        return np.append(self._is_text(), False).take(self.codes)

    def renew_text(self) -> None:
        """Make each distinct text a new object. The reader's cells come from calamine amid
        millions of other objects, most of them freed at once: a few survivors spread over
        all that memory would keep it from being returned. New copies lie together."""
        text = np.flatnonzero(self._is_text())
        if len(text):
            uniques = self.uniques.copy()
            uniques[text] = np.fromiter(map("".join, zip(uniques[text], repeat(""))), dtype=object, count=len(text))
            self.uniques = uniques

    def shared(self) -> np.ndarray:
        """The column with equal strings as one object (other values as they are): a column
        of IDs or periods then costs one object per distinct text, not one per cell."""
        if not self._is_text().any():
            return self.values
        same = self.uniques.take(self.codes)
        if self._is_text().all() and not (self.codes < 0).any():
            return same
        return np.where(self.is_text(), same, self.values)


def _numeric(values: np.ndarray) -> np.ndarray:
    """Cells holding a Python float or int (not a bool, not text): read as they are."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    types = _TYPE_OF(values)
    return np.equal(types, _FLOAT) | np.equal(types, _INT)


def _nan_if_none(value: float | None) -> float:
    return np.nan if value is None else value


def parse_column(raw: pd.Series, f: Field,
                 codes: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[pd.Series, pd.Series]:
    """(typed values, mask of non-blank cells that could not be read as `f`'s type).

    `codes`: the column's (codes, distinct values), when the reader already factorised it."""
    index = raw.index
    if f.type in (NUMBER, WEIGHT):
        return _parse_numbers(raw.to_numpy(dtype="float64" if raw.dtype == np.float64 else object), index, f)
    values = raw.to_numpy(dtype=object)
    distinct = Distinct(values, *(codes or (None, None)))
    blank = distinct.blank()
    if f.type in (ID, TEXT):
        def as_text(value: object) -> object:
            if value.__class__ is str and value.isascii():  # most cells: the steps below, short
                text = value.strip()
                return None if not text or (f.type == ID and text in _BLANK_STRINGS) else text
            if is_blank(value):
                return None
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            if isinstance(value, (dt.datetime, dt.date)):
                return value.isoformat()
            text = _text(value)
            return None if f.type == ID and text in _BLANK_STRINGS else text

        typed = pd.Series(distinct.apply(as_text, text_gaps=True), index=index, dtype=object)
        return typed, pd.Series(False, index=index)
    if f.type == PERIOD:
        typed = distinct.apply(lambda v: None if is_blank(v) else parse_period(v), text_gaps=True)
        bad = ~blank & pd.isna(typed)
        return pd.Series(typed, index=index, dtype=object), pd.Series(bad, index=index)
    if f.type == CHOICE:
        aliases = choice_aliases(f)
        typed = distinct.apply(lambda v: None if is_blank(v) else aliases.get(fold(v)), text_gaps=True)
        bad = ~blank & pd.isna(typed)
        if f.default is not None:
            typed = np.where(blank, f.default, typed)
        return pd.Series(typed, index=index, dtype=object), pd.Series(bad, index=index)
    raise ValueError(f"unknown field type {f.type!r}")


def _parse_numbers(values: np.ndarray, index: pd.Index, f: Field) -> tuple[pd.Series, pd.Series]:
    """A NUMBER or WEIGHT column: numbers as they are, text (`60%`, `1,200`) parsed."""
    if values.dtype == np.float64:  # a column of numbers only: nothing to parse
        typed = values.copy()
        if f.type == WEIGHT:
            whole = typed > 1
            typed[whole] = _hundredths(typed[whole])
        return pd.Series(typed, index=index, dtype="float64"), pd.Series(np.zeros(len(typed), dtype=bool), index=index)
    numeric = _numeric(values)
    typed = np.full(len(values), np.nan)
    blank = np.zeros(len(values), dtype=bool)
    if numeric.any():
        typed[numeric] = values[numeric].astype("float64")
        blank[numeric] = np.isnan(typed[numeric])
    rest = np.flatnonzero(~numeric)
    if len(rest):
        # Blanks, text, booleans, dates: judged once per distinct value among themselves.
        among = Distinct(values[rest])
        empty = among.blank()
        blank[rest] = empty
        others = rest[~empty]
        if len(others):
            among = Distinct(values[others], among.codes[~empty], among.uniques)
            typed[others] = among.apply(lambda v: _nan_if_none(parse_number(v))).astype("float64")
            if f.type == WEIGHT:
                # `60` means 60%; `60%` and a %-formatted 0.6 already are shares.
                whole = others[(typed[others] > 1) & ~among.test(_is_percent_text)]
                typed[whole] = _hundredths(typed[whole])
    if f.type == WEIGHT:
        whole = numeric & (typed > 1)
        typed[whole] = _hundredths(typed[whole])
    bad = ~blank & np.isnan(typed)
    return pd.Series(typed, index=index, dtype="float64"), pd.Series(bad, index=index)
