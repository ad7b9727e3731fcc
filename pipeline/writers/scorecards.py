"""Department scorecard workbooks: what a manager opens, with every number a live formula.

Each computed cell is an Excel formula over the input cells shown beside it, written with the
engine's value cached, so Excel, WPS and LibreOffice show the numbers at once and an auditor
can click a cell to see how it is made. This module takes scored frames; it knows nothing
about validation.
"""

from __future__ import annotations

import calendar
import math
from collections import namedtuple
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import pandas as pd
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from pipeline.exact import WIDE, decimal_of, half_up, half_up_decimal, half_up_text
from pipeline.kinds import DIMENSIONS, DIRECTIONS, METHODS, RELATIONS
from pipeline.outputs import SCORECARD_DETAIL_FIELDS, SCORECARD_RATING_FIELDS
from pipeline.policy import Policy
from pipeline.writers.common import (
    FONT,
    close_workbook,
    display_width,
    new_workbook,
    safe_sheet_name,
)
from pipeline.writers.fast_chart import AchievementChart, add_chart
from pipeline.writers.fast_sheet import (
    FastSheet,
    ReferenceSheet,
    plain_writer,
    register_formats,
    sheet_class,
)

SUMMARY_SHEET = "汇总 Summary"


# Sheets are written through FastSheet (same bytes as xlsxwriter's own cell store, ~3× cheaper);
# KPI_PLAIN_WRITER=1 (fast_sheet.plain_writer) writes with xlsxwriter's own classes instead.
SHEET_CLASS: type[ReferenceSheet] = FastSheet
CHART_TEMPLATES = True  # employee-sheet charts from a template (same bytes as xlsxwriter's own)

GREEN, AMBER, RED = "#C6EFCE", "#FFEB9C", "#FFC7CE"

_DIMENSION = {c.code: c for c in DIMENSIONS}
_METHOD = {c.code: c for c in METHODS}
_DIRECTION = {c.code: c for c in DIRECTIONS}
_RELATION = {c.code: c for c in RELATIONS}
# Units that mean money counted in yuan: with the policy's display.money_unit 万元 they are shown
# in 10k yuan. The number format scales the display only (a thousands comma and a literal point:
# 12,000,000 → 1200.0), so each cell keeps its exact value and every formula computes the same.
YUAN_UNITS = frozenset({"元", "yuan", "rmb", "cny", "¥", "￥", "人民币", "人民币元", "元人民币"})
WAN_FORMAT = '0"."0,'


def shown_in_wan(unit: object, method: object, money_unit: str) -> bool:
    """Whether a row's values are shown in 万元 (a rating's scores are never money)."""
    return (money_unit == "万元" and method != "rating" and isinstance(unit, str)
            and unit.strip().lower() in YUAN_UNITS)


def wan_name(name: object, lang: str) -> str:
    """An indicator's name with the unit its figures are shown in."""
    return f"{name} (10k yuan)" if lang == "en" else f"{name}(万元)"


# How a grade cell's comment names the forced-distribution mode that moved the grade.
FORCED_MODE_NAMES = {"cap": ("名额上限", "quota cap"), "rank": ("按排名", "by rank")}


def label(zh: str, en: str, lang: str) -> str:
    """Chinese first with English beside it; English alone with --lang en."""
    return en if lang == "en" else f"{zh}\n{en}"


def inline(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else f"{zh} {en}"


def choice_text(choice, lang: str) -> str:
    return choice.en if lang == "en" else choice.zh


@dataclass
class DepartmentData:
    """Everything one department workbook shows (plain frames, so it can go to a worker process)."""

    department: str
    period: str
    totals: pd.DataFrame  # scored employees: outputs.TOTAL_COLUMNS + name, position, manager_id, rank...
    details: pd.DataFrame  # their indicator rows
    ratings: pd.DataFrame  # their 360 detail
    unscored: pd.DataFrame  # the department's employees who could not be scored
    managers: dict[str, str]  # manager_id -> name
    title: str = ""
    # indicator_id -> {level: behaviour anchor}: one small dict, not text on every detail row
    anchors: dict[str, dict[int, str]] = field(default_factory=dict)
    # Earlier periods of the same length, from the results history (pipeline.history): the
    # employees' (employee_id, period, total, total_rounded, grade) and the department's
    # (period, employees, average, one count column per grade). None: no earlier period.
    trend: pd.DataFrame | None = None
    department_trend: pd.DataFrame | None = None
    as_of: str | None = None  # a progress run: the month the period is scored up to


def progress_mark(as_of: str | None, lang: str) -> str:
    """What marks every output of a progress run, so nobody takes it for the period's result."""
    if as_of is None:
        return ""
    return f"Progress to date as of {as_of}" if lang == "en" else f"进度 截至 {as_of} Progress to date"


PACE_TEXT = {"behind": ("落后", "behind"), "on_track": ("正常", "on track"), "ahead": ("领先", "ahead")}
# Agreement columns of the indicator table that an adjustment can change (comments go there).
ADJUSTED_COLUMNS = {"weight": 5, "base": 6, "target": 7, "stretch": 8}


def adjustment_comment(notes: dict, field_name: str, lang: str) -> str:
    """The comment on an adjusted cell: old → new, from when, why, who approved (both languages)."""
    texts = notes[field_name]
    half = len(texts) // 2
    zh = "\n".join(["期中调整:"] + texts[:half])
    en = "\n".join(["Adjusted:"] + texts[half:])
    return en if lang == "en" else f"{zh}\n{en}"


# ------------------------------------------------------------------------------ formats

class Formats:
    """All formats of a scorecard workbook, created once per workbook."""

    def __init__(self, workbook):
        base = {"font_name": FONT, "font_size": 10, "valign": "vcenter"}

        def fmt(**kw):
            return workbook.add_format({**base, **kw})

        border = {"border": 1, "border_color": "#BFBFBF"}
        self.title = fmt(bold=True, font_size=14, font_color="#1F3864")
        self.subtitle = fmt(italic=True, font_color="#595959")
        self.key = fmt(bold=True, bg_color="#F2F2F2", **border)
        self.value = fmt(**border)
        self.header = fmt(bold=True, bg_color="#1F3864", font_color="#FFFFFF", text_wrap=True, align="center", **border)
        self.text = fmt(**border)
        self.wrap = fmt(text_wrap=True, valign="top", **border)
        self.text_wrap = fmt(text_wrap=True, **border)
        self.number = fmt(num_format="#,##0.00", **border)
        self.integer = fmt(num_format="#,##0", **border)
        self.percent = fmt(num_format="0.0%", **border)
        self.weight = fmt(num_format="0%", **border)
        self.score_percent = fmt(num_format="0.00%", **border)
        self.total_label = fmt(bold=True, bg_color="#DDEBF7", **border)
        self.total_percent = fmt(bold=True, num_format="0.00%", bg_color="#DDEBF7", **border)
        self.total_number = fmt(bold=True, num_format="0.00", bg_color="#DDEBF7", **border)
        self.total_text = fmt(bold=True, bg_color="#DDEBF7", align="center", **border)
        self.bonus = fmt(bold=True, num_format="0.00", bg_color="#DDEBF7", **border)  # as in summary.xlsx
        self.signature = fmt(bottom=1, bottom_color="#7F7F7F")
        self.feedback = fmt(text_wrap=True, valign="top", border=1, border_color="#BFBFBF", bg_color="#FAFAFA")
        self.note = fmt(italic=True, font_color="#7F7F7F", text_wrap=True)
        self.wan = fmt(num_format=WAN_FORMAT, **border)  # money in 10k yuan (display.money_unit)
        # The review section is typed in by hand after the talk: left unlocked on protected sheets.
        self.review_notes = fmt(text_wrap=True, valign="top", border=1, border_color="#BFBFBF", bg_color="#FAFAFA",
                                locked=False)
        self.review_line = fmt(bottom=1, bottom_color="#7F7F7F", locked=False)
        self.stamps: dict = {}  # cells shared by every employee sheet of this workbook (FastSheet.stamp)
        self.green = workbook.add_format({"bg_color": GREEN, "font_color": "#006100"})
        self.amber = workbook.add_format({"bg_color": AMBER, "font_color": "#9C5700"})
        self.red = workbook.add_format({"bg_color": RED, "font_color": "#9C0006"})
        # Style indices in creation order, so they never depend on which cell is written first.
        register_formats(self.title, self.subtitle, self.key, self.value, self.header, self.text, self.wrap,
                         self.number, self.integer, self.percent, self.weight, self.score_percent,
                         self.total_label, self.total_percent, self.total_number, self.total_text, self.bonus,
                         self.feedback, self.note, self.signature, self.text_wrap, self.wan, self.review_notes,
                         self.review_line)

    def for_unit(self, unit: object):
        return self.percent if unit == "%" else self.number


def _traffic_lights(sheet, first_row: int, col: int, last_row: int, f: Formats) -> None:
    """Green from 100%, amber from 80%, red below, on one column's rows."""
    cells = (first_row, col, last_row, col)
    sheet.conditional_format(*cells, {"type": "cell", "criteria": ">=", "value": 1, "format": f.green})
    sheet.conditional_format(*cells, {"type": "cell", "criteria": "between", "minimum": 0.8,
                                      "maximum": 0.99999999, "format": f.amber})
    sheet.conditional_format(*cells, {"type": "cell", "criteria": "<", "value": 0.8, "format": f.red})


def _print_setup(sheet, repeat_rows: tuple[int, int] | None = None, *, period: str = "",
                 confidential: str = "", lang: str = "zh") -> None:
    sheet.set_landscape()
    # Footer of every printed page: the confidentiality mark, the page number, the period.
    page = "Page &P of &N" if lang == "en" else "第 &P 页,共 &N 页 Page &P of &N"
    sheet.set_footer(f"&L{_footer_text(confidential)}&C{page}&R{_footer_text(period)}")
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    if repeat_rows:
        sheet.repeat_rows(*repeat_rows)


def _footer_text(text: str) -> str:
    """Text as a header/footer shows it: `&` is a control character there."""
    return str(text).replace("&", "&&")


_SIGNATURE_LABELS = (("员工签字", "Employee signature"), ("日期", "Date"), ("上级签字", "Manager signature"),
                     ("日期", "Date"))


def _review_section(sheet, top: int, f: Formats, lang: str) -> None:
    """面谈记录 and signatures, as Chinese appraisal forms end, beside the chart (columns I–M):
    filled in by hand after the review talk, on the same printed page. The same on every sheet
    whose chart starts on row `top`, so it is stamped."""
    sheet.stamp(f.stamps, ("review section", top, lang), partial(_review_cells, top=top, f=f, lang=lang))
    for row in (top + 6, top + 7, top + 9, top + 10):
        sheet.set_row(row, 22)


def _review_cells(sheet, *, top: int, f: Formats, lang: str) -> None:
    left, right = 8, 12
    sheet.merge_range(top, left, top, left + 3, inline("绩效面谈记录", "Review meeting notes", lang), f.key)
    sheet.merge_range(top + 1, left, top + 4, right, "", f.review_notes)
    for row, (zh, en) in zip((top + 6, top + 7, top + 9, top + 10), _SIGNATURE_LABELS):
        sheet.merge_range(row, left, row, left + 2, inline(zh, en, lang), f.key)
        sheet.merge_range(row, left + 3, row, right, "", f.review_line)


def protect_against_slips(sheet, policy: Policy, **allowed: bool) -> None:
    """Lock the sheet so a formula or a figure is not typed over by accident (`output.protect_sheets`).

    Not security: without `output.protect_password` anyone can unprotect it. Cells formatted
    unlocked (the review section) stay editable; formatting rows and columns and selecting
    cells stay allowed, so a manager can still widen a column or copy a figure."""
    if policy.protect_sheets:
        sheet.protect(policy.protect_password, {"format_columns": True, "format_rows": True,
                                                "select_locked_cells": True, "select_unlocked_cells": True,
                                                **allowed})


# ------------------------------------------------------------------------------ formulas

def _num(value: float) -> str:
    return format(float(value), ".10g")


def achievement_formula(method: str, direction: str, actual: str, target: str, base: str, stretch: str,
                        policy: Policy) -> str:
    """The Excel formula of docs/scoring.md §1 for one indicator row, clipped to [floor, cap]."""
    cap, floor = _num(policy.cap), _num(policy.floor)
    bs, ss = _num(policy.base_score), _num(policy.stretch_score)
    lower = direction == "lower"
    if method == "ratio":
        if not lower:
            raw = f"{actual}/{target}"
        elif policy.lower_is_better == "linear":
            raw = f"2-{actual}/{target}"
        else:
            return f"=IF({actual}=0,{cap},MIN({cap},MAX({floor},{target}/{actual})))"
    elif method == "pass_fail":
        raw = f"IF({actual}{'<=' if lower else '>='}{target},1,0)"
    elif method == "tiered":
        if not lower:
            raw = (f"IF({actual}<{base},0,IF({actual}<{target},{bs}+(1-{bs})*({actual}-{base})/({target}-{base}),"
                   f"IF({actual}<{stretch},1+({ss}-1)*({actual}-{target})/({stretch}-{target}),{ss})))")
        else:
            raw = (f"IF({actual}>{base},0,IF({actual}>{target},{bs}+(1-{bs})*({base}-{actual})/({base}-{target}),"
                   f"IF({actual}>{stretch},1+({ss}-1)*({target}-{actual})/({target}-{stretch}),{ss})))")
    else:  # rating: the weighted 360 rating over its target (scale_max by default)
        raw = f"{actual}/{target}"
    return f"=MIN({cap},MAX({floor},{raw}))"


# ------------------------------------------------------------------------------ feedback

def _shown_percent(value: float) -> str:
    """A fraction as the table's 0.0% format shows it (half-up): 1.3649 → 136.5%.

    Away from a tie of the first decimal the float decides (×1000 cannot move it across one);
    at a tie, the typed decimal does, exactly."""
    value = float(value)
    scaled = abs(value) * 1000
    if math.isfinite(scaled) and scaled < 1e12 and abs(scaled % 1 - 0.5) > 1e-6:
        whole = math.floor(scaled + 0.5)
        return f"{'-' if value < 0 and whole else ''}{whole // 10}.{whole % 10}%"
    return f"{half_up_decimal(WIDE.multiply(decimal_of(value), 100), 1)}%"


def _shown_number(value: float) -> str:
    """A value as the table's #,##0.00 format shows it (half-up): 4.625 → 4.63."""
    return half_up_text(float(value), 2, thousands=True)


def _indicator_result(row) -> tuple[str, str]:
    """One indicator's result in the words and numbers of its table row."""
    if row.method == "rating":
        return (f"{row.name}评分 {_shown_number(row.actual)} 分(得分 {_shown_percent(row.achievement)})",
                f"{row.name} rated {_shown_number(row.actual)} ({_shown_percent(row.achievement)})")
    if row.method == "pass_fail":
        met = row.achievement_raw >= 1
        return (f"{row.name}{'达标' if met else '未达标'}", f"{row.name} {'met' if met else 'not met'}")
    shown, raw = _shown_percent(row.achievement), _shown_percent(row.achievement_raw)
    if raw != shown and row.achievement_raw > row.achievement:
        return (f"{row.name}完成 {raw},计分封顶 {shown}", f"{row.name} at {raw} of target, scored at the cap of {shown}")
    return f"{row.name}完成 {shown}", f"{row.name} at {shown} of target"


def feedback_text(rows: list, total_rounded: float, grade: str, lang: str) -> str:
    """A short feedback paragraph in the seeds' style, with the very numbers the table shows.

    Achievements are the capped ones in the table, rounded half-up as its formats show them
    (the raw completion is added where the cap cut it); short sentences: the total, what reached
    its target, what did not, and one concrete next step.
    """
    zh = [f"本期总分 {total_rounded:.2f},等级 {grade}。"]
    en = [f"Total {total_rounded:.2f}, grade {grade}."]
    reached = [row for row in rows if row.achievement_raw >= 1]
    missed = sorted((row for row in rows if row.achievement_raw < 1), key=lambda row: row.achievement_raw)
    if reached:
        words = [_indicator_result(row) for row in sorted(reached, key=lambda r: -r.achievement_raw)]
        zh.append("达到目标:" + ";".join(w[0] for w in words) + "。")
        en.append("Reached target: " + "; ".join(w[1] for w in words) + ".")
    if missed:
        words = [_indicator_result(row) for row in missed]
        zh.append("未达目标:" + ";".join(w[0] for w in words) + "。")
        en.append("Below target: " + "; ".join(w[1] for w in words) + ".")
        # The next step: the indicator that cost the most points (weight × shortfall).
        focus = max(missed, key=lambda row: (float(row.weight) * (1 - float(row.achievement)), -float(row.achievement)))
        shortfall = WIDE.subtract(1, decimal_of(float(focus.achievement)))
        lost = half_up_decimal(WIDE.multiply(WIDE.multiply(decimal_of(float(focus.weight)), shortfall), 100), 2)
        zh.append(f"下一步:优先改进{focus.name}(此项少得 {lost} 分),请与上级一起制定改进计划。")
        en.append(f"Next step: improve {focus.name} first ({lost} points lost there); agree an improvement plan "
                  "with the manager.")
    else:
        zh.append("各项指标均达到目标,请保持,并挑战冲刺值。")
        en.append("Every indicator reached its target: keep it up and aim for the stretch values.")
    return " ".join(en) if lang == "en" else "".join(zh)


# ------------------------------------------------------------------------------ employee sheet

def configure_achievement_chart(chart, sheet_name: str, points: int, *, lang: str, axis_max: float) -> None:
    """The employee sheet's bar chart: achievement per indicator (its name, column C)."""
    first, last = TABLE_TOP + 1, TABLE_TOP + points
    chart.add_series({
        "name": inline("完成率", "Achievement", lang),
        "categories": [sheet_name, first, 2, last, 2],
        "values": [sheet_name, first, ACHIEVEMENT_COLUMN, last, ACHIEVEMENT_COLUMN],
        "data_labels": {"value": True, "num_format": "0%"},
        "fill": {"color": "#2F5597"},
    })
    chart.set_title({"name": inline("各指标完成率", "Achievement per indicator", lang), "name_font": {"size": 11}})
    chart.set_x_axis({"num_format": "0%", "min": 0, "max": axis_max})
    chart.set_y_axis({"reverse": True})
    chart.set_legend({"none": True})


DETAIL_HEADERS = [
    ("维度", "Dimension", 8), ("指标编号", "Indicator ID", 10), ("指标名称", "Indicator", 16),
    ("计分方式", "Method", 8), ("方向", "Direction", 9), ("权重", "Weight", 7), ("基础值", "Base", 10),
    ("目标值", "Target", 10), ("冲刺值", "Stretch", 10), ("实际值", "Actual", 10),
    ("完成率", "Achievement", 11), ("加权得分", "Weighted score", 11), ("数据来源", "Source", 34),
]
TABLE_TOP = 9  # 0-based row of the indicator table header
PACE_COLUMN = 13  # progress runs: the pace of each indicator, right of the source
# Where the indicator table's computed numbers and the total lines are: `kpi trace` reads them back.
INDICATOR_ID_COLUMN, ACTUAL_COLUMN, ACHIEVEMENT_COLUMN, WEIGHTED_SCORE_COLUMN = 1, 9, 10, 11
ACTUAL_LETTER, ACHIEVEMENT_LETTER, WEIGHTED_SCORE_LETTER = (xl_col_to_name(c) for c in
                                                           (ACTUAL_COLUMN, ACHIEVEMENT_COLUMN, WEIGHTED_SCORE_COLUMN))
POINTS_LABEL = ("总分(百分制", "Total (points")  # how the points are rounded follows these words
GRADE_LABEL = ("等级", "Grade")
BONUS_LABEL = ("奖金系数", "Bonus coefficient")
_WEIGHTED = f"${WEIGHTED_SCORE_LETTER}$"  # absolute column of the weighted scores


@lru_cache(maxsize=None)
def _detail_headers(lang: str) -> tuple[tuple[str, int], ...]:
    """(header text, column width) of the indicator table: the same on every sheet."""
    return tuple((label(zh, en, lang), max(width, display_width(zh) + 2, min(len(en), 14) + 2))
                 for zh, en, width in DETAIL_HEADERS)


@dataclass(frozen=True)
class EmployeeCells:
    """Where an employee sheet keeps the figures the summary links to (`total` is the formula of the
    unrounded sum: the sheet shows the total once, as points)."""

    sheet: str
    total: str
    total_rounded: str
    grade: str
    bonus: str
    dimension_range: str
    weighted_range: str


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _group(records: list, key: str) -> dict[str, list]:
    """Records grouped by `key`, groups and members in their original order."""
    groups: dict[str, list] = {}
    for record in records:
        groups.setdefault(getattr(record, key), []).append(record)
    return groups

_HEADER_LABELS = (("姓名", "Name"), ("员工编号", "Employee ID"), ("部门", "Department"), ("岗位", "Position"),
                  ("直属上级", "Manager"), ("考核周期", "Period"))


def _write_sheet_frame(sheet, *, period: str, policy: Policy, f: Formats, lang: str,
                       widths: tuple[tuple[int, int], ...] = (), as_of: str | None = None) -> None:
    """What every employee sheet of a workbook shares: titles, field labels, grade table, table header."""
    title = inline("绩效计分卡", "KPI scorecard", lang)
    sheet.write_string(0, 0, f"{title} · {progress_mark(as_of, lang)}" if as_of else title, f.title)
    sheet.write_string(1, 0, inline(f"考核周期 {period}", f"Period {period}", lang), f.subtitle)
    for i, (zh, en) in enumerate(_HEADER_LABELS):
        row, col = 3 + i % 3, (i // 3) * 5
        sheet.merge_range(row, col, row, col + 1, inline(zh, en, lang), f.key)
    # Grade table (ascending minimums, visible): the grade and bonus formulas look it up.
    grade_col = 10
    sheet.write_string(2, grade_col, inline("等级表", "Grades", lang), f.key)
    for j, (zh, en) in enumerate((("最低分", "From"), ("等级", "Grade"), ("奖金系数", "Bonus"))):
        sheet.write_string(3, grade_col + j, inline(zh, en, lang), f.header)
    for i, g in enumerate(sorted(policy.grades, key=lambda g: g.min)):
        sheet.write_number(4 + i, grade_col, g.min * 100, f.number)
        sheet.write_string(4 + i, grade_col + 1, g.grade, f.text)
        sheet.write_number(4 + i, grade_col + 2, g.bonus, f.number)
    wider = dict(widths)
    for col, (text, width) in enumerate(_detail_headers(lang)):
        sheet.write_string(TABLE_TOP, col, text, f.header)
        sheet.set_column(col, col, max(width, wider.get(col, 0)))
    if as_of:
        sheet.write_string(TABLE_TOP, PACE_COLUMN, label("进度", "Pace", lang), f.header)
        sheet.set_column(PACE_COLUMN, PACE_COLUMN, 14)  # "正常 on track" on one line


def table_widths(details: list, money_unit: str = "元", lang: str = "zh") -> tuple[tuple[int, int], ...]:
    """(column, width) of the indicator table's name and value columns that the workbook's widest
    value needs as its format shows it (12,000,000.00, 1200.0 in 万元 or 135.0%; CJK counted
    double), so no number prints as ### and no name is cut; names wider than 30 wrap."""
    names = max((display_width(wan_name(row.name, lang) if shown_in_wan(row.unit, row.method, money_unit)
                               else row.name) for row in details), default=0)
    values = 0
    for row in details:
        wan = shown_in_wan(row.unit, row.method, money_unit)
        for value in (row.base, row.target, row.stretch, row.actual):
            if not _missing(value):
                shown = (f"{float(value) / 10000:.1f}" if wan else
                         f"{float(value):.1%}" if row.unit == "%" and row.method != "rating" else f"{float(value):,.2f}")
                values = max(values, len(shown))
    widths = ((2, min(names, 30) + 2),) + tuple((col, values + 3) for col in (6, 7, 8, 9))
    return widths


# ------------------------------------------------------------------------------ 360 notes

NOTE_COLUMNS = (1, 8)  # a note under an indicator's 360 rows spans the block's columns B–I
NOTE_LINES = 4  # at most this many printed lines of comments per indicator; the rest in the cell's note
NOTE_LIMIT = 32_767  # what a cell (or its note) holds
RatingNote = namedtuple("RatingNote", "kind text")


def nearest_level(rating: float, levels) -> int:
    """The described level closest to the rating as the table shows it (half-up to 2 places),
    ties going up: 3.80 with anchors at 1, 3 and 5 → 3; 4.00 → 5 (as near 3 as 5)."""
    shown = half_up(float(rating), 2)
    return min(levels, key=lambda level: (abs(shown - level), -level))


def anchor_note(rating: float, anchors: dict[int, str], lang: str) -> str:
    """`达到水平(最接近 3 分):<level 3's anchor>`: the behaviour described nearest the rating."""
    level = nearest_level(rating, anchors)
    if lang == "en":
        return f"Level reached (closest: {level}): {anchors[level]}"
    return f"达到水平(最接近 {level} 分) Level reached (closest: {level}):{anchors[level]}"


def _relation_label(item, period: str, lang: str) -> str:
    """How the 360 block names a detail row's relation: 上级, or 上级 7月 for a month of a quarter."""
    relation = _RELATION.get(item.relation)
    text = choice_text(relation, lang) if relation else str(item.relation)
    month = getattr(item, "rating_period", None)
    if isinstance(month, str) and month != period and len(month) == 7:
        # a quarter rated month by month: one row per month and relation ("上级 7月")
        number = int(month[5:])
        text = f"{text} {calendar.month_abbr[number]}" if lang == "en" else f"{text} {number}月"
    return text


def comments_note(group: list, period: str, lang: str) -> str:
    """`评语 Comments:上级:按时完成任务;同事:乐于助人`: every comment of an indicator's raters,
    each with the rater's relation, the supervisor's first (empty when nobody wrote one)."""
    order = {relation.code: i for i, relation in enumerate(RELATIONS)}  # the supervisor's first
    said = [f"{_relation_label(item, period, lang)}{': ' if lang == 'en' else ':'}{comment}"
            for item in sorted(group, key=lambda item: order.get(item.relation, len(order)))
            if isinstance(getattr(item, "comments", None), str)
            for comment in item.comments.split("\n") if comment]
    if not said:
        return ""
    return ("Comments: " + "; ".join(said)) if lang == "en" else ("评语 Comments:" + ";".join(said))


def _rating_notes(ratings_by_indicator: dict[str, list], rows: list, anchors: dict[str, dict[int, str]],
                  period: str, lang: str) -> dict[str, list]:
    """indicator_id → the lines under its 360 rows: the anchor of the level reached (when the
    indicator library describes levels) and the raters' comments (when there are any)."""
    ratings_of = {row.indicator_id: row.actual for row in rows if row.method == "rating"}
    notes: dict[str, list] = {}
    for indicator_id, group in ratings_by_indicator.items():
        lines = []
        levels = anchors.get(indicator_id)
        rating = ratings_of.get(indicator_id)
        if levels and rating is not None and not _missing(rating):
            lines.append(RatingNote("anchor", anchor_note(float(rating), levels, lang)))
        said = comments_note(group, period, lang)
        if said:
            lines.append(RatingNote("comments", said))
        if lines:
            notes[indicator_id] = lines
    return notes


def _table_column_widths(widths: tuple[tuple[int, int], ...]) -> list[float]:
    """Every table column's width as `_write_sheet_frame` sets it (the header's or the widest value's)."""
    wider = dict(widths)
    return [max(width, wider.get(col, 0)) for col, (_, width) in enumerate(_detail_headers("zh"))]


def _fit_note(text: str, width: float) -> str:
    """`text`, cut with … to NOTE_LINES lines of a merged cell `width` characters wide."""
    budget = NOTE_LINES * max(int(width) - 1, 1)
    if _lines(text, width) <= NOTE_LINES:
        return text
    shown, used = [], 0
    for ch in text:
        used += display_width(ch)
        if used > budget - 4:  # room for the ellipsis and a little slack at line ends
            break
        shown.append(ch)
    cut = "".join(shown).rstrip()
    return (cut[:-1] if cut.endswith((";", ";")) else cut).rstrip() + "…"


def _total_labels(sheet, *, total_row: int, decimals: int, f: Formats, lang: str) -> None:
    """The labels of the total lines and the empty feedback box: the same on every sheet with as
    many indicators, so they are stamped."""
    sheet.merge_range(total_row, 0, total_row, 10,
                      inline(f"{POINTS_LABEL[0]},四舍五入 {decimals} 位)",
                             f"{POINTS_LABEL[1]}, rounded half-up to {decimals} d.p.)", lang),
                      f.total_label)
    sheet.merge_range(total_row + 1, 0, total_row + 1, 10, inline(*GRADE_LABEL, lang), f.total_label)
    sheet.merge_range(total_row + 2, 0, total_row + 2, 10, inline(*BONUS_LABEL, lang), f.total_label)
    feedback_row = total_row + 5
    sheet.write_string(feedback_row - 1, 0, inline("评语", "Feedback", lang), f.key)
    sheet.merge_range(feedback_row, 0, feedback_row, 12, "", f.feedback)


_RATING_HEADS = (("指标编号", "Indicator ID"), ("指标名称", "Indicator"), ("评价关系", "Relation"),
                 ("评价人数", "Raters"), ("计入", "Counted"), ("平均分", "Mean score"), ("政策权重", "Policy weight"),
                 ("实际权重", "Weight used"))


def _rating_heading(sheet, *, rating_top: int, f: Formats, lang: str) -> None:
    """The 360 block's title and column heads (mean score per relation, the policy weight, the
    weight used after renormalising)."""
    sheet.merge_range(rating_top - 1, 1, rating_top - 1, 2, "", f.key)
    sheet.write_string(rating_top - 1, 1, inline("360 评分明细", "360 ratings", lang), f.key)
    for col, (zh, en) in enumerate(_RATING_HEADS, start=1):
        sheet.write_string(rating_top, col, label(zh, en, lang), f.header)


def write_employee_sheet(workbook, sheet_name: str, employee: dict, rows: list, ratings: list,
                         manager_name: str, policy: Policy, f: Formats, lang: str,
                         widths: tuple[tuple[int, int], ...] = (),
                         anchors: dict[str, dict[int, str]] | None = None, trend: Sequence = (),
                         as_of: str | None = None) -> EmployeeCells:
    sheet = workbook.add_worksheet(sheet_name, worksheet_class=sheet_class(SHEET_CLASS))
    sheet.hide_gridlines(2)
    sheet.stamp(f.stamps, ("employee sheet", employee["period"], lang, widths, as_of),
                partial(_write_sheet_frame, period=employee["period"], policy=policy, f=f, lang=lang, widths=widths,
                        as_of=as_of))
    header_values = (employee["name"], employee["employee_id"], employee["department"], employee.get("position"),
                     manager_name, employee["period"])
    for i, value in enumerate(header_values):
        row, col = 3 + i % 3, (i // 3) * 5
        sheet.merge_range(row, col + 2, row, col + 3, "" if _missing(value) else str(value), f.value)
    grade_col = 10
    g_first, g_last = 4, 4 + len(policy.grades) - 1
    mins = f"${xl_col_to_name(grade_col)}${g_first + 1}:${xl_col_to_name(grade_col)}${g_last + 1}"
    names = f"${xl_col_to_name(grade_col + 1)}${g_first + 1}:${xl_col_to_name(grade_col + 1)}${g_last + 1}"
    bonuses = f"${xl_col_to_name(grade_col + 2)}${g_first + 1}:${xl_col_to_name(grade_col + 2)}${g_last + 1}"
    sheet.set_row(TABLE_TOP, 32)

    # 360 detail goes below the indicator table; rating rows need its row numbers first.
    first = TABLE_TOP + 1
    last = first + len(rows) - 1
    total_row = last + 1
    rating_top = total_row + 8
    rating_rows: dict[str, tuple[int, int]] = {}
    cursor = rating_top + 1
    ratings_by_indicator = _group(ratings, "indicator_id")
    # Under each indicator's rows: the anchor of the level reached and the raters' comments.
    notes = _rating_notes(ratings_by_indicator, rows, anchors or {}, employee["period"], lang) if ratings else {}
    for indicator_id, group in ratings_by_indicator.items():
        rating_rows[indicator_id] = (cursor, cursor + len(group) - 1)
        cursor += len(group) + len(notes.get(indicator_id, ()))

    for i, row in enumerate(rows):
        r = first + i
        dim = _DIMENSION.get(row.dimension)
        sheet.write_string(r, 0, choice_text(dim, lang) if dim else "", f.text)
        sheet.write_string(r, 1, str(row.indicator_id), f.text)
        wan = shown_in_wan(row.unit, row.method, policy.money_unit)
        name = wan_name(row.name, lang) if wan else str(row.name)
        sheet.write_string(r, 2, name, f.text_wrap if display_width(name) > 30 else f.text)
        sheet.write_string(r, 3, choice_text(_METHOD[row.method], lang), f.text)
        sheet.write_string(r, 4, choice_text(_DIRECTION[row.direction], lang), f.text)
        sheet.write_number(r, 5, float(row.weight), f.weight)
        value_format = f.wan if wan else f.for_unit(row.unit)
        for col, value in ((6, row.base), (7, row.target), (8, row.stretch)):
            if not _missing(value):
                sheet.write_number(r, col, float(value), value_format)
            else:
                sheet.write_blank(r, col, None, value_format)
        n = r + 1
        cell = {"base": f"G{n}", "target": f"H{n}", "stretch": f"I{n}", "actual": f"{ACTUAL_LETTER}{n}",
                "weight": f"F{n}", "ach": f"{ACHIEVEMENT_LETTER}{n}"}
        if row.method == "rating":
            if _missing(row.target):
                sheet.write_number(r, 7, policy.scale_max, f.number)
            span = rating_rows.get(row.indicator_id)
            if span is not None:
                low, high = span
                weights = f"I{low + 1}:I{high + 1}"
                means = f"G{low + 1}:G{high + 1}"
                sheet.write_formula(r, ACTUAL_COLUMN, f"=SUMPRODUCT({weights},{means})", f.number, float(row.actual))
            else:
                sheet.write_number(r, ACTUAL_COLUMN, float(row.actual), f.number)
            source = inline("360 评分(见下方明细)", "360 ratings (detail below)", lang)
        else:
            sheet.write_number(r, ACTUAL_COLUMN, float(row.actual), value_format)
            source = str(row.source)
        formula = achievement_formula(row.method, row.direction, cell["actual"], cell["target"], cell["base"],
                                      cell["stretch"], policy)
        sheet.write_formula(r, ACHIEVEMENT_COLUMN, formula, f.percent, float(row.achievement))
        sheet.write_formula(r, WEIGHTED_SCORE_COLUMN, f"={cell['weight']}*{cell['ach']}", f.score_percent, float(row.weighted_score))
        sheet.write_string(r, 12, source, f.text)
        if as_of and isinstance(row.pace, str):
            sheet.write_string(r, PACE_COLUMN, inline(*PACE_TEXT[row.pace], lang), f.text)
        if isinstance(row.adjustment_notes, dict):
            for field_name in row.adjustment_notes:
                sheet.write_comment(r, ADJUSTED_COLUMNS[field_name], adjustment_comment(row.adjustment_notes,
                                                                                        field_name, lang),
                                    {"x_scale": 2.2, "y_scale": 1.6})
    _traffic_lights(sheet, first, ACHIEVEMENT_COLUMN, last, f)

    # One total line: the points (the weighted scores' sum × 100, rounded half-up), which the
    # grade and the summary use; the unrounded sum lives only inside its formula.
    total_sum = f"SUM({WEIGHTED_SCORE_LETTER}{first + 1}:{WEIGHTED_SCORE_LETTER}{last + 1})"
    rounded_cell = xl_rowcol_to_cell(total_row, WEIGHTED_SCORE_COLUMN)
    grade_cell = xl_rowcol_to_cell(total_row + 1, WEIGHTED_SCORE_COLUMN)
    bonus_cell = xl_rowcol_to_cell(total_row + 2, WEIGHTED_SCORE_COLUMN)
    feedback_row = total_row + 5
    sheet.stamp(f.stamps, ("total lines", total_row, policy.decimals, lang),
                partial(_total_labels, total_row=total_row, decimals=policy.decimals, f=f, lang=lang))
    sheet.write_formula(total_row, WEIGHTED_SCORE_COLUMN, f"=ROUND({total_sum}*100,{policy.decimals})", f.total_number,
                        float(employee["total_rounded"]))
    grade, score_grade = str(employee["grade"]), str(employee.get("score_grade", employee["grade"]))
    if policy.forced_distribution and grade != score_grade:
        # Moved by the quotas: a lookup of the total would give the score's grade, not this one.
        mode_zh, mode_en = FORCED_MODE_NAMES[policy.forced_distribution.mode]
        sheet.write_string(total_row + 1, WEIGHTED_SCORE_COLUMN, grade, f.total_text)
        sheet.write_comment(grade_cell, inline(f"强制分布({mode_zh})由 {score_grade} 调为 {grade}",
                                               f"Forced distribution ({mode_en}): {score_grade} → {grade}", lang))
    else:
        sheet.write_formula(total_row + 1, WEIGHTED_SCORE_COLUMN, f"=LOOKUP({rounded_cell},{mins},{names})", f.total_text,
                            str(employee["grade"]))
    sheet.write_formula(total_row + 2, WEIGHTED_SCORE_COLUMN, f"=INDEX({bonuses},MATCH({grade_cell},{names},0))", f.bonus,
                        float(employee["bonus"]))

    sheet.write_string(feedback_row, 0, feedback_text(rows, float(employee["total_rounded"]), str(employee["grade"]), lang),
                       f.feedback)
    sheet.set_row(feedback_row, 48)

    # 360 detail: mean score per relation, the policy weight and the weight used after renormalising.
    if ratings:
        sheet.stamp(f.stamps, ("360 heading", rating_top, lang),
                    partial(_rating_heading, rating_top=rating_top, f=f, lang=lang))
        sheet.set_row(rating_top, 44)  # "政策权重 / Policy weight" wraps to three lines
        names_by_id = {row.indicator_id: row.name for row in rows}
        note_width = sum(_table_column_widths(widths)[NOTE_COLUMNS[0]:NOTE_COLUMNS[1] + 1])
        r = rating_top + 1
        for indicator_id, group in ratings_by_indicator.items():
            for item in group:
                sheet.write_string(r, 1, str(indicator_id), f.text)
                sheet.write_string(r, 2, str(names_by_id.get(indicator_id, "")), f.text)
                sheet.write_string(r, 3, _relation_label(item, employee["period"], lang), f.text)
                sheet.write_number(r, 4, int(item.raters), f.integer)
                counted = ("是" if item.counted else "否") if lang != "en" else ("yes" if item.counted else "no")
                sheet.write_string(r, 5, counted, f.text)
                sheet.write_number(r, 6, float(item.mean_score), f.number)
                sheet.write_number(r, 7, float(item.policy_weight), f.weight)
                sheet.write_number(r, 8, float(item.weight_used), f.score_percent)
                r += 1
            for note in notes.get(indicator_id, ()):
                shown = _fit_note(note.text, note_width)
                sheet.merge_range(r, NOTE_COLUMNS[0], r, NOTE_COLUMNS[1], shown, f.feedback)
                if shown != note.text:  # cut to fit the page: the whole text stays in the cell's note
                    sheet.write_comment(r, NOTE_COLUMNS[0], note.text[:NOTE_LIMIT], {"x_scale": 3, "y_scale": 2})
                # Merged cells do not grow by themselves: one line per width of text, CJK counted double.
                sheet.set_row(r, 15 * _lines(shown, note_width) + 3)
                r += 1
        chart_row = r + 1
    else:
        chart_row = rating_top

    categories, values = [str(row.name) for row in rows], [float(row.achievement) for row in rows]
    axis_max = max(policy.cap, 1.0)
    if CHART_TEMPLATES and not plain_writer() and AchievementChart.usable(categories):
        chart = AchievementChart((lang, axis_max), partial(configure_achievement_chart, lang=lang, axis_max=axis_max),
                                 sheet_name, categories, values)
        add_chart(workbook, chart)
    else:
        chart = workbook.add_chart({"type": "bar"})
        configure_achievement_chart(chart, sheet_name, len(rows), lang=lang, axis_max=axis_max)
    chart_height = 60 + 28 * max(len(rows), 3)
    chart.set_size({"width": 620, "height": chart_height})
    sheet.insert_chart(chart_row, 0, chart)
    _review_section(sheet, chart_row, f, lang)
    _write_employee_trend(workbook, sheet, sheet_name, chart_row + max(-(-chart_height // 20), 12) + 1, trend,
                          employee, (total_row, total_row + 1, total_row + 2), f, lang)

    sheet.freeze_panes(TABLE_TOP + 1, 0)
    _print_setup(sheet, (TABLE_TOP, TABLE_TOP), period=employee["period"], confidential=policy.confidential,
                 lang=lang)
    sheet.set_column(12, 12, max(34, min(60, max((display_width(row.source) for row in rows), default=10))))
    protect_against_slips(sheet, policy)
    quoted = "'" + sheet_name.replace("'", "''") + "'"
    return EmployeeCells(
        sheet=sheet_name, total=f"SUM({quoted}!{_WEIGHTED}{first + 1}:{_WEIGHTED}{last + 1})", total_rounded=f"{quoted}!{rounded_cell}",
        grade=f"{quoted}!{grade_cell}", bonus=f"{quoted}!{bonus_cell}",
        dimension_range=f"{quoted}!$A${first + 1}:$A${last + 1}", weighted_range=f"{quoted}!{_WEIGHTED}{first + 1}:{_WEIGHTED}{last + 1}",
    )


# ------------------------------------------------------------------------------ summary sheet

SUMMARY_HEADERS = [
    ("排名", "Rank", 6), ("员工编号", "Employee ID", 11), ("姓名", "Name", 10), ("岗位", "Position", 12),
    ("直属上级", "Manager", 10), ("总分", "Total", 9), ("总分(百分制)", "Points", 9), ("等级", "Grade", 7),
    ("奖金系数", "Bonus", 8),
]


def write_summary_sheet(workbook, data: DepartmentData, employees: list[dict], subtotals: dict[str, dict[str, float]],
                        cells: dict[str, EmployeeCells], policy: Policy, f: Formats, lang: str, *, linked: bool = True):
    """One row per employee (linked to their sheet), unscored employees with reasons, grade chart."""
    sheet = workbook.add_worksheet(SUMMARY_SHEET, worksheet_class=sheet_class(SHEET_CLASS))
    sheet.hide_gridlines(2)
    title = data.title or data.department
    title = f"{title} KPI summary" if lang == "en" else f"{title} 绩效汇总 KPI summary"
    if data.as_of:
        title = f"{title} · {progress_mark(data.as_of, lang)}"
    sheet.write_string(0, 0, title, f.title)
    sheet.write_string(1, 0, inline(f"考核周期 {data.period}", f"Period {data.period}", lang), f.subtitle)
    dims = [d for d in DIMENSIONS]
    headers = SUMMARY_HEADERS + [(d.zh, d.en, 10) for d in dims]
    top = 3
    for col, (zh, en, width) in enumerate(headers):
        sheet.write_string(top, col, label(zh, en, lang), f.header)
        sheet.set_column(col, col, max(width, display_width(zh) + 2, min(len(en), 14) + 2))
    sheet.set_row(top, 32)
    first, last = top + 1, top + len(employees)
    rounded_range = f"$G${first + 1}:$G${last + 1}" if employees else "$G$1:$G$1"
    for i, emp in enumerate(SimpleNamespace(**record) for record in employees):
        r = first + i
        link = cells.get(emp.employee_id) if linked else None
        rank_formula = f"=RANK(G{r + 1},{rounded_range})"
        sheet.write_formula(r, 0, rank_formula, f.integer, int(emp.rank))
        if link:
            sheet.write_url(r, 1, f"internal:'{link.sheet.replace(chr(39), chr(39) * 2)}'!A1", f.text, string=str(emp.employee_id))
        else:
            sheet.write_string(r, 1, str(emp.employee_id), f.text)
        sheet.write_string(r, 2, str(emp.name), f.text)
        sheet.write_string(r, 3, "" if _missing(emp.position) else str(emp.position), f.text)
        sheet.write_string(r, 4, data.managers.get(emp.manager_id, "") if isinstance(emp.manager_id, str) else "", f.text)
        values = [(5, emp.total, f.score_percent, "total"), (6, emp.total_rounded, f.number, "total_rounded"),
                  (7, emp.grade, f.text, "grade"), (8, emp.bonus, f.number, "bonus")]
        for col, value, fmt, attr in values:
            if link:
                sheet.write_formula(r, col, f"={getattr(link, attr)}", fmt, value if isinstance(value, str) else float(value))
            elif isinstance(value, str):
                sheet.write_string(r, col, value, fmt)
            else:
                sheet.write_number(r, col, float(value), fmt)
        for j, dim in enumerate(dims):
            value = float(subtotals.get(emp.employee_id, {}).get(dim.code, 0.0))
            if link:
                criterion = choice_text(dim, lang)
                sheet.write_formula(r, 9 + j, f'=SUMIF({link.dimension_range},"{criterion}",{link.weighted_range})',
                                    f.score_percent, value)
            else:
                sheet.write_number(r, 9 + j, value, f.score_percent)
    if employees:
        _traffic_lights(sheet, first, 5, last, f)
    sheet.freeze_panes(top + 1, 3)
    sheet.autofilter(top, 0, max(last, top), len(headers) - 1)

    # Grade distribution (COUNTIF over the grade column) and its chart.
    dist_col = len(headers) + 1
    sheet.write_string(top, dist_col, label("等级", "Grade", lang), f.header)
    sheet.write_string(top, dist_col + 1, label("人数", "Employees", lang), f.header)
    grade_range = f"$H${first + 1}:$H${max(last, first) + 1}"
    for i, g in enumerate(policy.grades):
        sheet.write_string(top + 1 + i, dist_col, g.grade, f.text)
        count = sum(emp["grade"] == g.grade for emp in employees)
        sheet.write_formula(top + 1 + i, dist_col + 1, f'=COUNTIF({grade_range},"{g.grade}")', f.integer, count)
    sheet.set_column(dist_col, dist_col + 1, 11)  # "Employees" on one line
    chart = workbook.add_chart({"type": "column"})
    chart.add_series({
        "name": inline("人数", "Employees", lang),
        "categories": [SUMMARY_SHEET, top + 1, dist_col, top + len(policy.grades), dist_col],
        "values": [SUMMARY_SHEET, top + 1, dist_col + 1, top + len(policy.grades), dist_col + 1],
        "data_labels": {"value": True}, "fill": {"color": "#2F5597"},
    })
    chart.set_title({"name": inline("等级分布", "Grade distribution", lang), "name_font": {"size": 11}})
    chart.set_legend({"none": True})
    most = max((sum(emp["grade"] == g.grade for emp in employees) for g in policy.grades), default=0)
    # People are counted in whole numbers: no 0.1 … 0.9 steps when the counts are small or all 0.
    chart.set_y_axis({"min": 0, "max": max(most, 1), "major_unit": 1, "num_format": "0"} if most <= 10
                     else {"min": 0, "num_format": "0"})
    chart.set_size({"width": 420, "height": 260})
    sheet.insert_chart(top + len(policy.grades) + 2, dist_col, chart)

    # Nobody is lost: the department's unscored employees, with every reason and where it is.
    row = max(last, top) + 3
    if not data.unscored.empty:
        widths = [max(width, display_width(zh) + 2, min(len(en), 14) + 2) for zh, en, width in headers]
        reason_cols, where_cols = (3, 8), (9, len(headers) - 1)
        reason_width = sum(widths[reason_cols[0]:reason_cols[1] + 1])
        where_width = sum(widths[where_cols[0]:where_cols[1] + 1])
        sheet.merge_range(row, 0, row, 2, inline("未评分员工", "Not scored", lang), f.key)
        row += 1
        for (low, high), (zh, en) in zip(((1, 1), (2, 2), reason_cols, where_cols),
                                         (("员工编号", "Employee ID"), ("姓名", "Name"), ("原因", "Reason"),
                                          ("位置", "Where"))):
            text = label(zh, en, lang)
            if low == high:
                sheet.write_string(row, low, text, f.header)
            else:
                sheet.merge_range(row, low, row, high, text, f.header)
        sheet.set_row(row, 32)
        for item in data.unscored.itertuples(index=False):
            row += 1
            sheet.write_string(row, 1, str(item.employee_id), f.text)
            sheet.write_string(row, 2, "" if pd.isna(item.name) else str(item.name), f.text)
            reason = item.reason_en if lang == "en" else "\n".join(  # every reason, each in Chinese then English
                f"{zh}\n{en}" for zh, en in zip(str(item.reason_zh).split("\n"), str(item.reason_en).split("\n")))
            sheet.merge_range(row, reason_cols[0], row, reason_cols[1], reason, f.wrap)
            where = "" if _missing(item.where) else str(item.where)
            sheet.merge_range(row, where_cols[0], row, where_cols[1], where, f.wrap)
            # Merged cells do not grow by themselves: one line per width of text, CJK counted double.
            lines = max(_lines(reason, reason_width), _lines(where, where_width))
            sheet.set_row(row, 15 * lines + 3)
    _write_department_trend(sheet, row + 2, data, employees, (first, last), f, lang)
    _print_setup(sheet, (top, top), period=data.period, confidential=policy.confidential, lang=lang)
    protect_against_slips(sheet, policy, autofilter=True)  # filtering by grade stays possible
    sheet.activate()
    return sheet


# ------------------------------------------------------------------------------ trends

TREND_FIELDS = ("employee_id", "period", "total", "total_rounded", "grade")


def _write_employee_trend(workbook, sheet, sheet_name: str, top: int, trend: Sequence, employee: dict,
                          total_rows: tuple[int, int, int], f: Formats, lang: str) -> None:
    """The employee's earlier periods of the same length (oldest first) and this one, with a line
    chart of the points: how the result moved, on the sheet the review talk is about.

    Nothing when there is no earlier period. This period's row links to the sheet's own total."""
    if not trend:
        return
    sheet.merge_range(top, 0, top, 1, inline("历史趋势", "Trend", lang), f.key)
    heads = (("考核周期", "Period"), ("总分", "Total"), ("总分(百分制)", "Points"), ("等级", "Grade"))
    for col, (zh, en) in enumerate(heads):
        sheet.write_string(top + 1, col, label(zh, en, lang), f.header)
    sheet.set_row(top + 1, 32)
    row = top + 2
    for item in trend:
        sheet.write_string(row, 0, str(item.period), f.text)
        sheet.write_number(row, 1, float(item.total), f.score_percent)
        sheet.write_number(row, 2, float(item.total_rounded), f.number)
        sheet.write_string(row, 3, str(item.grade), f.text)
        row += 1
    total_row, rounded_row, grade_row = total_rows
    sheet.write_string(row, 0, str(employee["period"]), f.total_text)
    sheet.write_formula(row, 1, f"={xl_rowcol_to_cell(total_row, WEIGHTED_SCORE_COLUMN)}", f.total_percent, float(employee["total"]))
    sheet.write_formula(row, 2, f"={xl_rowcol_to_cell(rounded_row, WEIGHTED_SCORE_COLUMN)}", f.total_number,
                        float(employee["total_rounded"]))
    sheet.write_formula(row, 3, f"={xl_rowcol_to_cell(grade_row, WEIGHTED_SCORE_COLUMN)}", f.total_text, str(employee["grade"]))
    chart = workbook.add_chart({"type": "line"})
    chart.add_series({
        "name": inline("总分(百分制)", "Points", lang),
        "categories": [sheet_name, top + 2, 0, row, 0], "values": [sheet_name, top + 2, 2, row, 2],
        "marker": {"type": "circle", "size": 6}, "data_labels": {"value": True, "num_format": "0.0"},
        "line": {"color": "#2F5597", "width": 2},
    })
    chart.set_title({"name": inline("总分趋势", "Points over time", lang), "name_font": {"size": 11}})
    chart.set_legend({"none": True})
    chart.set_y_axis({"num_format": "0", "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_size({"width": 520, "height": 240})
    sheet.insert_chart(top, 5, chart)


def _write_department_trend(sheet, top: int, data: DepartmentData, employees: list[dict],
                            rows: tuple[int, int], f: Formats, lang: str) -> None:
    """The department's average total and grade mix in each earlier period, then this period's
    (live over the summary's own columns). Nothing when there is no earlier period."""
    trend = data.department_trend
    if trend is None or trend.empty:
        return
    grades = [c for c in trend.columns if c not in ("department", "period", "employees", "average")]
    sheet.merge_range(top, 0, top, 2, inline(f"历史趋势 · {data.department}", f"Trend · {data.department}", lang),
                      f.key)
    heads = [label("考核周期", "Period", lang), label("人数", "Employees", lang), label("平均总分", "Average", lang)]
    heads += grades
    for col, text in enumerate(heads):
        sheet.write_string(top + 1, col, text, f.header)
    sheet.set_row(top + 1, 32)
    row = top + 2
    for values in trend.to_dict("records"):  # a dozen periods at most
        sheet.write_string(row, 0, str(values["period"]), f.text)
        sheet.write_number(row, 1, int(values["employees"]), f.integer)
        sheet.write_number(row, 2, float(values["average"]), f.score_percent)
        for j, grade in enumerate(grades):
            sheet.write_number(row, 3 + j, int(values.get(grade, 0)), f.integer)
        row += 1
    first, last = rows
    scored = [emp for emp in employees if not _missing(emp.get("total"))]
    totals = f"$F${first + 1}:$F${max(last, first) + 1}"
    grade_range = f"$H${first + 1}:$H${max(last, first) + 1}"
    sheet.write_string(row, 0, str(data.period), f.total_text)
    sheet.write_formula(row, 1, f"=COUNT({totals})", f.integer, len(scored))
    if scored:
        average = sum(float(emp["total"]) for emp in scored) / len(scored)
        sheet.write_formula(row, 2, f"=AVERAGE({totals})", f.total_percent, average)
    else:
        sheet.write_blank(row, 2, None, f.total_percent)
    for j, grade in enumerate(grades):
        count = sum(emp["grade"] == grade for emp in employees)
        sheet.write_formula(row, 3 + j, f'=COUNTIF({grade_range},"{grade}")', f.integer, count)


# ------------------------------------------------------------------------------ workbook

def _lines(text: str, width: float) -> int:
    """Lines `text` wraps to in a column `width` characters wide."""
    return sum(max(1, -(-display_width(part) // max(int(width) - 1, 1))) for part in str(text).split("\n"))


def employee_sheet_name(employee_id: str, name: str, taken: set[str]) -> str:
    return safe_sheet_name(f"{employee_id} {name}", taken, fallback=str(employee_id))


def write_department_workbook(path: Path, data: DepartmentData, policy: Policy, lang: str = "zh",
                              *, employee_sheets: bool = True) -> Path:
    """A department (or team) workbook: the summary first, then one sheet per employee."""
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = new_workbook(path, title=f"{data.title or data.department} {data.period}")
    f = Formats(workbook)
    taken = {SUMMARY_SHEET.lower()}
    cells: dict[str, EmployeeCells] = {}
    # Plain records, not DataFrames: a pandas call costs ~1 ms, and a workbook has hundreds of rows.
    employees = sorted(_employee_records(data.totals), key=lambda emp: (emp["rank"], emp["employee_id"]))
    details = _records(data.details, SCORECARD_DETAIL_FIELDS)
    # The summary must be the first sheet, but its formulas need the employee sheets' cells:
    # the sheet names and cell positions are known before writing, so plan them first.
    plans = []
    if employee_sheets:
        details_by_employee = _group(details, "employee_id")
        ratings_by_employee = _group(_records(data.ratings, SCORECARD_RATING_FIELDS), "employee_id")
        trend_by_employee = _group(_records(data.trend, TREND_FIELDS), "employee_id") if data.trend is not None else {}
        for emp in employees:
            name = employee_sheet_name(emp["employee_id"], emp["name"], taken)
            rows = details_by_employee[emp["employee_id"]]
            ratings = ratings_by_employee.get(emp["employee_id"], [])
            plans.append((name, emp, rows, ratings, trend_by_employee.get(emp["employee_id"], ())))
    summary_cells = {name_emp["employee_id"]: _planned_cells(name, rows) for name, name_emp, rows, *_ in plans}
    widths = table_widths(details, policy.money_unit, lang) if plans else ()
    write_summary_sheet(workbook, data, employees, _dimension_subtotals(details), summary_cells, policy, f, lang,
                        linked=employee_sheets)
    for name, emp, rows, ratings, trend in plans:
        manager_id = emp.get("manager_id")
        manager = data.managers.get(manager_id, "") if isinstance(manager_id, str) else ""
        cells[emp["employee_id"]] = write_employee_sheet(workbook, name, emp, rows, ratings, manager, policy, f, lang,
                                                         widths, data.anchors, trend, as_of=data.as_of)
    close_workbook(workbook)
    return path


DETAIL_FIELDS, RATING_FIELDS = SCORECARD_DETAIL_FIELDS, SCORECARD_RATING_FIELDS  # older names, for the tests


@lru_cache(maxsize=None)
def _row_class(fields: tuple[str, ...]):
    return namedtuple("Row", fields)


def _columns(frame: pd.DataFrame, fields) -> list[list]:
    """Each field's values as a Python list (missing columns as None).

    Through one object array rather than column by column: a workbook's frames are small, and
    taking each column out as a Series cost more than its values (~1.5 ms per workbook)."""
    if frame.empty:
        return [[] for _ in fields]
    by_name = dict(zip(frame.columns, frame.to_numpy(dtype=object).T.tolist()))
    return [by_name[name] if name in by_name else [None] * len(frame) for name in fields]


def _records(frame: pd.DataFrame, fields: tuple[str, ...]) -> list:
    """Rows as named tuples, built column-wise (to_dict or itertuples cost ~1 ms a call)."""
    if frame.empty:
        return []
    return list(map(_row_class(fields)._make, zip(*_columns(frame, fields))))


def _employee_records(totals: pd.DataFrame) -> list[dict]:
    fields = list(totals.columns)
    return [dict(zip(fields, values)) for values in zip(*_columns(totals, fields))]


def _dimension_subtotals(details: list) -> dict[str, dict[str, float]]:
    """Weighted score per employee and dimension."""
    subtotals: dict[str, dict[str, float]] = {}
    for row in details:
        by_dimension = subtotals.setdefault(row.employee_id, {})
        by_dimension[row.dimension] = by_dimension.get(row.dimension, 0.0) + float(row.weighted_score)
    return subtotals


def _planned_cells(sheet_name: str, rows: list) -> EmployeeCells:
    """The cells write_employee_sheet will use (same layout arithmetic)."""
    first = TABLE_TOP + 1
    last = first + len(rows) - 1
    total_row = last + 1
    quoted = "'" + sheet_name.replace("'", "''") + "'"
    return EmployeeCells(
        sheet=sheet_name,
        total=f"SUM({quoted}!{_WEIGHTED}{first + 1}:{_WEIGHTED}{last + 1})",
        total_rounded=f"{quoted}!{xl_rowcol_to_cell(total_row, WEIGHTED_SCORE_COLUMN)}",
        grade=f"{quoted}!{xl_rowcol_to_cell(total_row + 1, WEIGHTED_SCORE_COLUMN)}",
        bonus=f"{quoted}!{xl_rowcol_to_cell(total_row + 2, WEIGHTED_SCORE_COLUMN)}",
        dimension_range=f"{quoted}!$A${first + 1}:$A${last + 1}",
        weighted_range=f"{quoted}!{_WEIGHTED}{first + 1}:{_WEIGHTED}{last + 1}",
    )
