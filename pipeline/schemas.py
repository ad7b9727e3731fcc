"""pandera schemas generated from the template kinds (never written by hand).

Values are parsed first (normalize.py), so the schemas see typed columns and check what the
kind says: required, ranges, choices, half points for 360 scores.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.kinds import CHOICE, NUMBER, WEIGHT, Field, SheetSpec

if TYPE_CHECKING:
    import pandera.pandas as pa


def _pandera():
    """pandera, imported on first use: with its first validation it costs ~0.3 s, which the
    batch spends while the inbox is being read (`prepare_validation`)."""
    import pandera.pandas

    return pandera.pandas

HALF_POINTS = "half_points"


def _checks(f: Field) -> list[pa.Check]:
    pa = _pandera()
    checks: list = []
    if f.type == CHOICE:
        checks.append(pa.Check.isin(list(f.choice_codes()), name="bad_choice", error="bad_choice", ignore_na=True))
    if f.minimum is not None and f.maximum is not None and f.type != WEIGHT:
        checks.append(pa.Check.in_range(f.minimum, f.maximum, name="out_of_range", error="out_of_range",
                                          ignore_na=True))
    if f.type == WEIGHT:
        checks.append(pa.Check.ge(0, name="negative", error="negative", ignore_na=True))
    if f.name == "score" and f.maximum == 5:
        checks.append(pa.Check(lambda s: (s * 2) % 1 == 0, element_wise=False, name=HALF_POINTS,
                               ignore_na=True, error=HALF_POINTS))
    return checks


@lru_cache(maxsize=None)
def schema_for(spec: SheetSpec) -> pa.DataFrameSchema:
    """The schema of one template sheet; `_row` (Excel row) is the index."""
    pa = _pandera()
    columns = {}
    for f in spec.fields:
        dtype = "float64" if f.type in (NUMBER, WEIGHT) else object
        columns[f.name] = pa.Column(dtype, checks=_checks(f), nullable=not f.required, required=False,
                                    coerce=False)
    return pa.DataFrameSchema(columns, strict=False, name=spec.name)


def schema_failures(spec: SheetSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Failure cases (column, check, failure_case, index=Excel row), empty when the frame is fine."""
    pa = _pandera()
    try:
        schema_for(spec).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        cases = cases[["column", "check", "failure_case", "index"]].drop_duplicates(["column", "check", "index"])
        return cases.replace({"check": {"not_nullable": "required"}})
    return pd.DataFrame(columns=["column", "check", "failure_case", "index"])


def prepare_validation() -> None:
    """Import pandera and load what it loads on its first validation (its backends and check
    strategies; ~0.3 s together): the batch calls this while the inbox is being read, off the critical path."""
    pa = _pandera()
    pa.DataFrameSchema({"x": pa.Column(float, checks=pa.Check.ge(0))}).validate(pd.DataFrame({"x": [1.0]}))
