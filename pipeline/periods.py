"""The scoring period as one value: a month, quarter, half or year, read once.

A period is typed in an Excel cell, on the command line (`--period`, `--as-of`, `--for`) or read
back from a folder name or the results history. `Period.parse` turns any of these into a
`Period`; everything after works with its months, its length and its neighbours, and never
re-reads the text. `str(period)` is the canonical text (`2026-10`, `2026-Q3`, `2026-H1`,
`2026`), the one written in outputs, folder names and the history database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pipeline.normalize import parse_period

# kind -> (periods per year, months per period)
_SHAPES = {"month": (12, 1), "quarter": (4, 3), "half": (2, 6), "year": (1, 12)}


@functools.total_ordering
@dataclass(frozen=True, eq=True)
class Period:
    """A canonical period and the months it covers.

    Sorted by first month, then by length: 2026-07 < 2026-Q3 < 2026-H2 < 2026-08.
    """

    text: str  # canonical: 2026-10, 2026-Q3, 2026-H1, 2026
    kind: str  # month | quarter | half | year
    year: int
    part: int  # 1-based: the month, quarter or half within the year (1 for a year)
    months: tuple[str, ...]  # YYYY-MM, in order

    @staticmethod
    def parse(value: object) -> Period | None:
        """The period `value` names (a cell as Excel gives it, typed text, a Period), or None."""
        if isinstance(value, Period):
            return value
        text = parse_period(value)
        return None if text is None else _canonical(text)

    @staticmethod
    def of(value: Period | str) -> Period:
        """`value` as a Period, for a caller that has already checked it (ValueError if not one)."""
        period = Period.parse(value)
        if period is None:
            raise ValueError(f"not a period: {value!r} (write 2026-10, 2026-Q3, 2026-H1 or 2026)")
        return period

    @staticmethod
    def canonical(value: object) -> Period | None:
        """The period whose canonical text `value` is exactly (a folder name, a history row), or None:
        `2026-q3` or `2026年10月` are periods a person typed, not names this tool wrote."""
        period = Period.parse(value) if isinstance(value, str) else None
        return period if period is not None and period.text == value else None

    def __str__(self) -> str:
        return self.text

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return (self.start, self.length) < (other.start, other.length)

    @property
    def start(self) -> str:
        return self.months[0]

    @property
    def end(self) -> str:
        return self.months[-1]

    @property
    def length(self) -> int:
        """Months covered: 1, 3, 6 or 12."""
        return len(self.months)

    @property
    def is_month(self) -> bool:
        return self.kind == "month"

    @property
    def per_year(self) -> int:
        """Periods of this kind in a year: 12, 4, 2 or 1."""
        return _SHAPES[self.kind][0]

    @property
    def position(self) -> int:
        """Periods of this kind since year 0: consecutive periods of one kind differ by 1."""
        return self.year * self.per_year + self.part - 1

    def contains(self, month: str) -> bool:
        """`month` (YYYY-MM) is one of this period's months."""
        return month in self.months

    def months_to(self, as_of: str) -> tuple[str, ...]:
        """The months from the first up to and including `as_of` (all of them if `as_of` is not one)."""
        return self.months[:self.months.index(as_of) + 1] if as_of in self.months else self.months

    def enclosing(self, kind: str) -> Period:
        """The period of `kind` (month, quarter, half, year) that holds this one's first month."""
        month = int(self.start[5:7])
        size = _SHAPES[kind][1]
        return _canonical(_text(kind, self.year, (month - 1) // size + 1))

    def shift(self, steps: int) -> Period:
        """The period of this kind `steps` periods away (-1: the one before)."""
        position = self.position + steps
        year, part = divmod(position, self.per_year)
        return _canonical(_text(self.kind, year, part + 1))

    def previous(self, n: int = 1) -> Period:
        """The period of this kind `n` periods before: 2026-Q1 → 2025-Q4."""
        return self.shift(-n)

    def last_year(self) -> Period:
        """The same period one year before: 2026-Q3 → 2025-Q3."""
        return self.shift(-self.per_year)

    def steps_after(self, other: Period) -> int:
        """How many periods of this kind `other` lies before this one (both of one kind)."""
        return self.position - other.position


def _text(kind: str, year: int, part: int) -> str:
    if kind == "month":
        return f"{year:04d}-{part:02d}"
    if kind == "quarter":
        return f"{year:04d}-Q{part}"
    if kind == "half":
        return f"{year:04d}-H{part}"
    return f"{year:04d}"


@functools.lru_cache(maxsize=1024)
def _canonical(text: str) -> Period:
    """The Period of a canonical text (as `parse_period` returns it)."""
    year = int(text[:4])
    marker = text[5:6]
    if len(text) == 4:
        kind, part = "year", 1
    elif marker == "Q":
        kind, part = "quarter", int(text[6])
    elif marker == "H":
        kind, part = "half", int(text[6])
    else:
        kind, part = "month", int(text[5:7])
    size = _SHAPES[kind][1]
    first = (part - 1) * size + 1
    months = tuple(f"{year:04d}-{m:02d}" for m in range(first, first + size))
    return Period(text=text, kind=kind, year=year, part=part, months=months)
