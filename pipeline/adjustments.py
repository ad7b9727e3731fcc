"""Adjustments: agreed values changed during the year, applied from their effective month on.

The agreements template's `调整记录 Adjustments` sheet holds one row per change of a target,
base, stretch or weight, for one employee or a whole role family, with the old value as agreed,
the new one, the month it applies from, the reason and the approver (seed 000: a target cut
after a market change is "记录在案作为后续参考"; seed 004: "一般季度内不轻易调整").

When an adjustment applies: to every period whose last month is at or after its effective
month. A quarter holding the effective month is scored on the new value (the quarter's
agreement was changed during it); a month before it keeps the old one. Several adjustments of
one value apply in effective-month order (then date, then row), each one's old value being the
value in force before it. For a period starting after the effective month whose agreement
already holds the new value (HR wrote it in), there is nothing left to apply.

Pure functions over validated frames; validation turns what they find into findings and
blocks, scoring applies the values (a few rows, merged onto the agreements by mask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from pipeline import exact
from pipeline.findings import Finding, finding
from pipeline.kinds import ADJUSTED_FIELDS, AGREEMENTS
from pipeline.periods import Period

ADJUSTMENTS = AGREEMENTS.sheets[2]
FIELDS = tuple(c.code for c in ADJUSTED_FIELDS)
_FIELD_LABEL = {c.code: (c.zh, c.en) for c in ADJUSTED_FIELDS}
# The summary's list of applied adjustments.
LOG_COLUMNS = ["period", "employee_id", "role_family", "indicator_id", "field", "old_value", "new_value",
               "effective_period", "reason", "approved_by", "date", "employees", "adjustment"]


def exact_value(value: float, field_name: str) -> Fraction:
    """The decimal typed in an old/new value cell; a weight typed as 30 means 30% (as in agreements)."""
    typed = exact.typed(value)
    return typed / 100 if field_name == "weight" and typed > 1 else typed


def shown(value: Fraction | float, field_name: str) -> str:
    """A value as a person reads it: 30% for a weight, 120 or 1.5 otherwise."""
    number = value if isinstance(value, Fraction) else exact.typed(value)
    if field_name == "weight":
        return f"{format(float(number * 100), '.10g')}%"
    return format(float(number), ".10g")


def date_text(value: object) -> str:
    """The approval date as written (a date cell reads as 2026-08-05, not an ISO timestamp)."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text[:10] if len(text) == 19 and text[10] == "T" and text.endswith("00:00:00") else text


def prepared(inputs) -> pd.DataFrame:
    """The clean adjustment rows in the order they apply, with their month, owner and cells."""
    frame = inputs.frames.get(ADJUSTMENTS.name)
    if frame is None or frame.empty:
        return pd.DataFrame()
    rows = frame.copy()
    rows["month"] = rows["effective_period"].map(lambda p: Period.of(p).start)
    rows["owner_kind"] = np.where(rows["employee_id"].notna(), "employee", "role")
    rows["owner"] = rows["employee_id"].where(rows["employee_id"].notna(), rows["role_family"])
    rows["date_text"] = rows["date"].map(date_text)
    rows["file"], rows["sheet"] = rows["_file"], rows["_sheet"]  # named tuples drop names with a leading _
    for column, field_name in (("cell", "new_value"), ("old_cell", "old_value")):
        rows[column] = [f"{f}!{s}!{inputs.tables[int(t)].cell(field_name, int(r))}"
                        for f, s, t, r in zip(rows["_file"], rows["_sheet"], rows["_table"], rows["_row"])]
    return rows.sort_values(["month", "date_text", "_table", "_row"], kind="stable").reset_index(drop=True)


@dataclass
class Applied:
    """The period's agreements with adjustments applied, what could not be applied, and the log."""

    agreements: pd.DataFrame  # + original_target, adjustment, adjustment_notes
    findings: list[tuple[str, str, Finding]] = field(default_factory=list)  # (owner kind, owner, finding)
    log: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LOG_COLUMNS))


def _agreement_cell(inputs, row: pd.Series, field_name: str) -> str:
    return f"{row['_file']}!{row['_sheet']}!{inputs.tables[int(row['_table'])].cell(field_name, int(row['_row']))}"


def apply_adjustments(inputs, period: Period | str, agreements: pd.DataFrame, tolerance: float = 0.001,
                      adjustments: pd.DataFrame | None = None) -> Applied:
    """`agreements` (resolved for `period`) with the adjustments that apply to `period`.

    Role-family adjustments change the role's rows (everyone measured on the role set), then
    employee adjustments change that employee's rows, whichever set they come from. Loops run
    over adjustment groups (a handful); the agreement rows are changed by vectorised masks.
    """
    scored = Period.of(period)
    period = scored.text  # as the findings and the log name it
    agreements = agreements.copy()
    agreements["original_target"] = agreements["target"]
    agreements["adjustment"] = ""
    agreements["adjustment_notes"] = None
    rows = prepared(inputs) if adjustments is None else adjustments
    if rows.empty or agreements.empty:
        return Applied(agreements)
    first, last = scored.start, scored.end
    rows = rows[rows["month"] <= last]
    if rows.empty:
        return Applied(agreements)
    result = Applied(agreements)
    family_of = agreements["employee_id"].map(inputs.role_family_of)
    is_role = (agreements["kpi_source"] == "role").to_numpy(bool)
    employee_ids = agreements["employee_id"].to_numpy(dtype=object)
    indicator_ids = agreements["indicator_id"].to_numpy(dtype=object)
    cells: list[list[str]] = [[] for _ in range(len(agreements))]  # per agreement row: the adjustment cells applied
    notes: dict[int, dict[str, list[str]]] = {}
    weight_changed: list[tuple[str, str, np.ndarray, list[str]]] = []
    log = []
    order = {"role": 0, "employee": 1}
    groups = sorted(rows.groupby(["owner_kind", "owner", "indicator_id", "field"], sort=False),
                    key=lambda item: (order[item[0][0]], str(item[0][1]), str(item[0][2]), FIELDS.index(item[0][3])))
    for (kind, owner, indicator_id, field_name), group in groups:
        if kind == "role":
            mask = is_role & (family_of.to_numpy(dtype=object) == owner) & (indicator_ids == indicator_id)
        else:
            mask = (employee_ids == owner) & (indicator_ids == indicator_id)
        positions = np.flatnonzero(mask)
        starts_here = group["month"] >= first
        if not len(positions):
            # Measured on the indicator in the effective period: an adjustment of nothing is a slip.
            owned = (is_role & (family_of.to_numpy(dtype=object) == owner)) if kind == "role" else employee_ids == owner
            if starts_here.any() and owned.any():
                adjustment = group[starts_here].iloc[0]
                result.findings.append((kind, owner, finding(
                    "adjustment_no_agreement", file=adjustment["_file"], sheet=adjustment["_sheet"],
                    cell=adjustment["old_cell"].rsplit("!", 1)[-1], column="指标编号 Indicator ID", value=indicator_id,
                    employee_id=owner if kind == "employee" else "", period=period, who=_who(kind, owner)[0],
                    who_en=_who(kind, owner)[1], indicator=indicator_id)))
            continue
        base_row = agreements.iloc[positions[0]]
        value = base_row[field_name]
        current = None if pd.isna(value) else exact_value(value, "")
        agreed_cell = _agreement_cell(inputs, base_row, field_name)
        label_zh, label_en = _FIELD_LABEL[field_name]
        applied_here = []
        for adjustment in group.itertuples(index=False):
            old, new = exact_value(adjustment.old_value, field_name), exact_value(adjustment.new_value, field_name)
            if current is not None and old == current:
                current = new
                applied_here.append(adjustment)
            elif current is not None and new == current and adjustment.month < first:
                continue  # a later period whose agreement already holds the new value
            else:
                result.findings.append((kind, owner, finding(
                    "adjustment_old_value", file=adjustment.file, sheet=adjustment.sheet,
                    cell=adjustment.old_cell.rsplit("!", 1)[-1], column="原值 Old value",
                    value=shown(old, field_name), employee_id=owner if kind == "employee" else "", period=period,
                    who=_who(kind, owner)[0], who_en=_who(kind, owner)[1], indicator=indicator_id,
                    field=label_zh, field_en=label_en, old=shown(old, field_name),
                    agreed="空" if current is None else shown(current, field_name),
                    agreed_en="blank" if current is None else shown(current, field_name),
                    adjustment_cell=adjustment.old_cell, agreement_cell=agreed_cell)))
                applied_here = []
                break
        if not applied_here:
            continue
        agreements.iloc[positions, agreements.columns.get_loc(field_name)] = np.nan if current is None else float(current)
        texts = [f"{shown(exact_value(a.old_value, field_name), field_name)} → "
                 f"{shown(exact_value(a.new_value, field_name), field_name)}"
                 f"({a.effective_period};{a.reason};{a.approved_by})" for a in applied_here]
        texts_en = [f"{shown(exact_value(a.old_value, field_name), field_name)} → "
                    f"{shown(exact_value(a.new_value, field_name), field_name)} "
                    f"(from {a.effective_period}; {a.reason}; approved by {a.approved_by})" for a in applied_here]
        for position in positions:
            cells[position].extend(a.cell for a in applied_here)
            notes.setdefault(int(position), {})[field_name] = [*texts, *texts_en]
        if field_name == "weight":
            weight_changed.append((kind, owner, positions, [a.cell for a in applied_here]))
        for a in applied_here:
            log.append({"period": period, "employee_id": owner if kind == "employee" else "",
                        "role_family": owner if kind == "role" else "", "indicator_id": indicator_id,
                        "field": field_name, "old_value": float(exact_value(a.old_value, field_name)),
                        "new_value": float(exact_value(a.new_value, field_name)),
                        "effective_period": a.effective_period, "reason": a.reason, "approved_by": a.approved_by,
                        "date": a.date_text, "employees": int(len(set(employee_ids[positions]))),
                        "adjustment": a.cell})
    if weight_changed:
        result.findings.extend(_weight_sums(agreements, weight_changed, period, tolerance))
    agreements["adjustment"] = ["; ".join(dict.fromkeys(c)) for c in cells]
    if notes:
        column = agreements["adjustment_notes"].to_numpy(dtype=object).copy()
        for row_position, by_field in notes.items():
            column[row_position] = by_field
        agreements["adjustment_notes"] = column
    result.log = pd.DataFrame(log, columns=LOG_COLUMNS)
    return result


def _who(kind: str, owner: str) -> tuple[str, str]:
    return (f"员工 {owner}", f"employee {owner}") if kind == "employee" else (f"岗位类别 {owner}", f"role family {owner}")


def _weight_sums(agreements: pd.DataFrame, changed: list, period: str, tolerance: float) -> list:
    """Weights of everyone a weight adjustment touched still sum to 100%: one error per adjustment owner."""
    touched = sorted({e for _, _, positions, _ in changed for e in agreements["employee_id"].iloc[positions]})
    rows = agreements[agreements["employee_id"].isin(touched)]
    sums = rows.groupby("employee_id")["weight"].sum()
    out, said = [], set()
    for kind, owner, positions, cells in changed:
        for employee_id in dict.fromkeys(agreements["employee_id"].iloc[positions]):
            total = float(sums.get(employee_id, 1.0))
            if abs(total - 1) > tolerance and (kind, owner) not in said:
                said.add((kind, owner))
                file, sheet, cell = cells[-1].split("!")
                out.append((kind, owner, finding(
                    "adjustment_weight_sum", file=file, sheet=sheet, cell=cell, column="新值 New value",
                    value=f"{total:.2%}", employee_id=owner if kind == "employee" else "", period=period,
                    who=_who(kind, owner)[0], who_en=_who(kind, owner)[1], total=f"{total * 100:.2f}%",
                    cells=", ".join(cells))))
    return out


def repeated_in_quarter(rows: pd.DataFrame) -> list[Finding]:
    """A second adjustment of one indicator (one employee or role family) within a calendar
    quarter: a warning on each later one. Rows of one decision (same effective month and date,
    e.g. base, target and stretch changed together) count as one adjustment."""
    if rows.empty:
        return []
    quarter = rows["month"].map(lambda month: Period.of(month).enclosing("quarter").text)
    rows = rows.assign(quarter=quarter)
    found = []
    for (kind, owner, indicator_id, q), group in rows.groupby(["owner_kind", "owner", "indicator_id", "quarter"],
                                                               sort=True):
        decisions = list(dict.fromkeys(zip(group["month"], group["date_text"])))
        if len(decisions) < 2:
            continue
        first = group[[(m, d) == decisions[0] for m, d in zip(group["month"], group["date_text"])]]
        earlier = ", ".join(first["cell"])
        for row in group[[(m, d) != decisions[0] for m, d in zip(group["month"], group["date_text"])]].itertuples():
            found.append(finding(
                "adjustment_repeated", file=row.file, sheet=row.sheet, cell=row.cell.rsplit("!", 1)[-1],
                column="生效周期 Effective period", value=row.effective_period,
                employee_id=owner if kind == "employee" else "", period=q, who=_who(kind, owner)[0],
                who_en=_who(kind, owner)[1], indicator=indicator_id, quarter=q, earlier=earlier))
    return found
