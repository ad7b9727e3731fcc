"""`kpi trace`: every number on one employee's scorecard, with the input cell it came from.

It reads only the period folder: the machine sheets of summary.xlsx (values and source cells),
the employee's sheet in the department workbook (the formulas), and the manifest (the SHA-256
of each input file), so an auditor can trace a score without the inbox at hand.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import openpyxl
from python_calamine import CalamineWorkbook
from xlsxwriter.utility import xl_col_to_name

from pipeline.audit import load_manifest
from pipeline.findings import BilingualError
from pipeline.outputs import DETAILS_SHEET, TOTALS_SHEET, UNSCORED_SHEET
from pipeline.texts import say
from pipeline.writers.common import display_width
from pipeline.writers.scorecards import (
    ACHIEVEMENT_LETTER,
    ACTUAL_LETTER,
    BONUS_LABEL,
    GRADE_LABEL,
    INDICATOR_ID_COLUMN,
    POINTS_LABEL,
    WEIGHTED_SCORE_LETTER,
)

# The scorecard's computed columns, and the lines under its table, as the writer lays them out.
_COMPUTED = ((ACTUAL_LETTER, "actual"), (ACHIEVEMENT_LETTER, "achievement"), (WEIGHTED_SCORE_LETTER, "weighted_score"))
_INDICATOR_LETTER, _LABEL_LETTER = xl_col_to_name(INDICATOR_ID_COLUMN), "A"
_OLDER_TOTAL_LABEL = ("总分 Total", "Total")  # scorecards written before the one total line
_TOTAL_LINES = (("total_rounded", POINTS_LABEL), ("total", _OLDER_TOTAL_LABEL), ("grade", GRADE_LABEL),
                ("bonus", BONUS_LABEL))


@dataclass
class TracedNumber:
    item: str  # what the number is (weight, target, actual, achievement, ...)
    indicator_id: str
    value: object
    source: str = ""  # file!sheet!cell of the input, or the scorecard cell for computed numbers
    sha256: str = ""  # of the input file the source cell is in
    formula: str = ""  # how the scorecard computes it


@dataclass
class TraceReport:
    employee_id: str
    period: str
    scorecard: str = ""  # workbook!sheet holding the live formulas
    numbers: list[TracedNumber] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"employee_id": self.employee_id, "period": self.period, "scorecard": self.scorecard,
                "numbers": [asdict(n) for n in self.numbers]}


class TraceError(BilingualError):
    """The employee or the period folder cannot be traced."""


def _rows(path: Path, sheet: str) -> list[dict]:
    grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()
    header = [str(h) for h in grid[0]]
    return [dict(zip(header, row)) for row in grid[1:]]


def _find_sheet(period_dir: Path, employee_id: str) -> tuple[Path, str] | None:
    for path in sorted((period_dir / "departments").rglob("*.xlsx")):
        for name in CalamineWorkbook.from_path(str(path)).sheet_names:
            if name == employee_id or name.startswith(f"{employee_id} "):
                return path, name
    return None


def trace_employee(period_dir: Path, employee_id: str) -> TraceReport:
    """Trace one employee's scorecard back to the input cells and the formulas."""
    period_dir = Path(period_dir)
    manifest = load_manifest(period_dir)
    hashes: dict[str, str] = {}
    for item in manifest.get("inputs", []):
        for key in (item.get("file"), Path(str(item.get("path", ""))).name):
            if key:
                hashes[key] = item.get("sha256", "")
    summary = period_dir / "summary.xlsx"
    details = [r for r in _rows(summary, DETAILS_SHEET) if str(r.get("employee_id")) == employee_id]
    totals = [r for r in _rows(summary, TOTALS_SHEET) if str(r.get("employee_id")) == employee_id]
    if not totals:
        raise TraceError(f"员工 {employee_id} 不在 {summary} 中。", f"Employee {employee_id} is not in {summary}.")
    report = TraceReport(employee_id=employee_id, period=str(manifest.get("period", "")))
    if totals[0].get("total") in ("", None):
        unscored = [r for r in _rows(summary, UNSCORED_SHEET) if str(r.get("employee_id")) == employee_id]
        reason = unscored[0] if unscored else {}
        report.numbers.append(TracedNumber("not scored", "", reason.get("reason_en", ""),
                                           source=str(reason.get("where", ""))))
        return report

    formulas: dict[tuple[str, str], tuple[str, str]] = {}
    located = _find_sheet(period_dir, employee_id)
    if located:
        path, sheet_name = located
        report.scorecard = f"{path.relative_to(period_dir).as_posix()}!{sheet_name}"
        sheet = openpyxl.load_workbook(path, read_only=True)[sheet_name]
        for row in sheet.iter_rows(min_row=1, max_row=sheet.max_row):
            cells = {c.column_letter: c for c in row if getattr(c, "column_letter", None)}
            indicator = cells[_INDICATOR_LETTER].value if _INDICATOR_LETTER in cells else None
            label = str(cells[_LABEL_LETTER].value or "") if _LABEL_LETTER in cells else ""
            for letter, item in _COMPUTED:
                cell = cells.get(letter)
                if cell is not None and isinstance(cell.value, str) and cell.value.startswith("="):
                    if indicator:
                        formulas.setdefault((str(indicator), item), (cell.coordinate, cell.value))
            total_cell = cells.get(WEIGHTED_SCORE_LETTER)  # the total lines' values stand under the weighted scores
            if total_cell is not None and isinstance(total_cell.value, str) and total_cell.value.startswith("="):
                for key, words in _TOTAL_LINES:
                    if any(label.startswith(w) for w in words) and ("", key) not in formulas:
                        formulas[("", key)] = (total_cell.coordinate, total_cell.value)
                        break
        if ("", "total") not in formulas and ("", "total_rounded") in formulas:  # one total line: the sum is inside it
            coordinate, formula = formulas[("", "total_rounded")]
            inner = re.search(r"SUM\([^)]*\)", formula)
            formulas[("", "total")] = (coordinate, f"={inner.group(0)}" if inner else formula)

    def sha(source: str) -> str:
        return hashes.get(source.split("!", 1)[0], "") if source and "!" in source else ""

    for row in details:
        indicator = str(row["indicator_id"])
        for item, source_key in (("weight", "agreement_source"), ("base", "base_source"),
                                 ("target", "target_source"), ("stretch", "stretch_source"), ("actual", "source")):
            value = row.get(item)
            if value in ("", None):
                continue
            source = str(row.get(source_key) or "")
            coordinate, formula = formulas.get((indicator, item), ("", ""))
            original = row.get("original_target")
            if item == "target" and row.get("adjustment") and original not in ("", None) and original != value:
                # Adjusted: the value from the adjustment row(s), the agreement's own target from its cell.
                adjusted = str(row["adjustment"])
                report.numbers.append(TracedNumber(item, indicator, value, adjusted, sha(adjusted), formula))
                report.numbers.append(TracedNumber("original_target", indicator, original, source, sha(source)))
                continue
            report.numbers.append(TracedNumber(item, indicator, value, source, sha(source), formula))
        for cell in str(row.get("adjustment") or "").split("; "):
            if cell:
                report.numbers.append(TracedNumber("adjustment", indicator, "", cell, sha(cell)))
        # A 360 rating: each rating cell it was made of, with relation, score and the weight it carries.
        for part in str(row.get("rating_sources") or "").split("; "):
            cell, _, what = part.partition(" (")
            if cell:
                relation, score, weight = (what.rstrip(")").split(", ") + ["", "", ""])[:3]
                report.numbers.append(TracedNumber("rating", indicator, _number(score), cell, sha(cell),
                                                   f"{relation}, weight {weight}"))
        for item in ("achievement", "weighted_score"):
            coordinate, formula = formulas.get((indicator, item), ("", ""))
            report.numbers.append(TracedNumber(item, indicator, row.get(item), coordinate, "", formula))
    for item in ("total", "total_rounded", "grade", "bonus"):
        coordinate, formula = formulas.get(("", item), ("", ""))
        report.numbers.append(TracedNumber(item, "", totals[0].get(item), coordinate, "", formula))
    return report


def _number(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text


# What each traced number is, as the scorecard labels it (the JSON keeps the field names).
ITEM_LABELS = {
    "weight": ("权重", "Weight"), "base": ("基础值", "Base"), "target": ("目标值", "Target"),
    "stretch": ("冲刺值", "Stretch"), "actual": ("实际值", "Actual"), "rating": ("评分", "Rating"),
    "achievement": ("完成率", "Achievement"), "weighted_score": ("加权得分", "Weighted score"),
    "total": ("总分", "Total"), "total_rounded": ("总分(百分制)", "Points"), "grade": ("等级", "Grade"),
    "bonus": ("奖金系数", "Bonus"), "not scored": ("未评分", "Not scored"),
}


def format_trace(report: TraceReport, lang: str = "zh") -> str:
    """One line per number: indicator, what it is, the value, its input cell, formula and hash."""
    lines = [f"{report.employee_id}  {report.period}  {report.scorecard}"]
    for n in report.numbers:
        value = f"{n.value:.6g}" if isinstance(n.value, float) else str(n.value)
        zh, en = ITEM_LABELS.get(n.item, (n.item, n.item))
        item = say(zh, en, lang)
        parts = [f"  {n.indicator_id:<10} {item}{' ' * max(1, 24 - display_width(item))}{value:>14}"]
        if n.source:
            parts.append(f"  ← {n.source}")
        if n.formula:
            parts.append(f"  {n.formula}")
        if n.sha256:
            parts.append(f"  sha256 {n.sha256[:16]}…")
        lines.append("".join(parts))
    return "\n".join(lines)
