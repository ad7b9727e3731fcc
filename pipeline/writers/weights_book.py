"""The weights workbook (docs/scoring.md §7): weights per role family, consistency figures, RoleKPIs draft.

Row 1 is for both readers: each header says what the column is in Chinese and English
(`权重 Weight`), and its last line is the plain column name that scripts and auditors use
(`weight`: `header.rsplit("\n", 1)[-1]`); a comment on the header explains the column.
Displayed weights come from the largest-remainder method, and the stored value is that same
rounded fraction, so what Excel shows, what it sums and what a reader gets agree (each role
family is exactly 100.00%). `weight_exact` keeps the full-precision weight beside it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Sequence

from pipeline.weights import KENDALL_W_WEAK, WeightResult, kendall_w_meaning, largest_remainder
from pipeline.writers.common import close_workbook, fit_width, new_workbook

WEIGHTS_SHEET = "权重 Weights"
CONSISTENCY_SHEET = "一致性 Consistency"
ROLE_KPIS_SHEET = "岗位指标 RoleKPIs"

# (column name, header label, what the header's comment explains)
METHOD_NOTE = "expert = 专家打分法 expert scores; ahp = 层次分析法 analytic hierarchy process"
WEIGHTS_COLUMNS = [
    ("role_family", "岗位类别 Role family", ""),
    ("indicator_id", "指标编号 Indicator ID", ""),
    ("weight", "权重 Weight", "显示值,每个岗位类别合计恰为 100%。\nAs displayed: each role family sums to exactly 100%."),
    ("weight_exact", "精确权重 Exact weight", "未经舍入的权重。\nThe weight before rounding."),
    ("method", "方法 Method", METHOD_NOTE),
]
CONSISTENCY_COLUMNS = [
    ("role_family", "岗位类别 Role family", ""),
    ("method", "方法 Method", METHOD_NOTE),
    ("n", "指标个数 Indicators", ""),
    ("lambda_max", "最大特征根 λmax", "层次分析法判断矩阵的最大特征根。\nPrincipal eigenvalue of the AHP matrix."),
    ("ci", "一致性指标 CI", "CI = (λmax − n)/(n − 1)"),
    ("ri", "随机一致性指标 RI", "平均随机一致性指标,取自 RI 表。\nRandom index, from the RI table."),
    ("cr", "一致性比率 CR", "CR = CI/RI,应小于 0.10。\nCR = CI/RI, must be below 0.10."),
    ("kendall_w", "肯德尔协调系数 Kendall's W",
     "专家打分的一致程度,0 到 1。\nHow far the experts agree, 0 to 1."),
    ("kendall_w_meaning", "专家意见一致性 Expert agreement",
     "W < 0.3 弱 weak, 0.3–0.5 中等 moderate, 0.5–0.7 良好 good, ≥ 0.7 强 strong"),
    ("ri_table", "RI 表 RI table", ""),
]
ROLE_KPIS_HEADERS = [
    "岗位类别\nRole family",
    "考核周期\nPeriod",
    "指标编号\nIndicator ID",
    "权重\nWeight",
    "基础值\nBase",
    "目标值\nTarget",
    "冲刺值\nStretch",
]
PERCENT = "0.00%"
DECIMAL_4 = "0.0000"


def _displayed(result: WeightResult) -> list[tuple[str, float, float]]:
    """(indicator_id, largest-remainder fraction, exact weight) in the result's order."""
    exact = list(result.weights.values())
    shares = largest_remainder(exact, decimals=2)
    return [
        (indicator, float(share / Decimal(100)), weight)
        for indicator, share, weight in zip(result.weights, shares, exact, strict=True)
    ]


def _header(sheet, columns: Sequence[tuple[str, str, str]], label_format, name_format, cell_format) -> None:
    """Row 1: the bilingual label, and below it, small and grey, the column's plain name."""
    for col, (name, label, note) in enumerate(columns):
        sheet.write_rich_string(0, col, label_format, label + "\n", name_format, name, cell_format)
        if note:
            sheet.write_comment(0, col, note, {"x_scale": 2})
    sheet.set_row(0, 30)
    sheet.freeze_panes(1, 0)
    sheet.set_landscape()  # printed: one page wide, the header on every page
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)


def _widths(columns: Sequence[tuple[str, str, str]]) -> list[list[str]]:
    """Each column's header lines, to size it with its values."""
    return [[label, name] for name, label, _ in columns]


def write_weights_workbook(path: str | Path, results: Sequence[WeightResult], *,
                           role_kpis_period: str | None = None) -> None:
    """Write the weights workbook; with `role_kpis_period`, also a RoleKPIs draft for HR.

    The RoleKPIs draft holds one weight set per role family (the first result for it in
    `results`, i.e. expert scores before AHP from `compute_weights`): two sets for one role
    family would sum to 200% in an agreements file.
    """
    workbook = new_workbook(path, title="KPI weights 指标权重")
    wrapped_header = workbook.add_format(
        {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "top"}
    )
    percent = workbook.add_format({"num_format": PERCENT})
    exact_format = workbook.add_format({"num_format": "0.000000%"})
    label = workbook.add_format({"bold": True})
    name = workbook.add_format({"font_color": "#808080", "font_size": 9})
    wrapped = workbook.add_format({"text_wrap": True, "valign": "top"})
    weak = workbook.add_format({"text_wrap": True, "valign": "top", "bg_color": "#FFEB9C"})

    # 权重 Weights
    sheet = workbook.add_worksheet(WEIGHTS_SHEET)
    _header(sheet, WEIGHTS_COLUMNS, label, name, wrapped_header)
    widths = _widths(WEIGHTS_COLUMNS)
    row = 1
    for result in results:
        for indicator, shown, exact in _displayed(result):
            sheet.write_string(row, 0, result.role_family)
            sheet.write_string(row, 1, indicator)
            sheet.write_number(row, 2, shown, percent)
            sheet.write_number(row, 3, exact, exact_format)
            sheet.write_string(row, 4, result.method)
            for col, text in enumerate((result.role_family, indicator, "100.00%",
                                        "100.000000%", result.method)):
                widths[col].append(text)
            row += 1
    for col, values in enumerate(widths):
        sheet.set_column(col, col, fit_width(values))

    # 一致性 Consistency
    sheet = workbook.add_worksheet(CONSISTENCY_SHEET)
    _header(sheet, CONSISTENCY_COLUMNS, label, name, wrapped_header)
    widths = _widths(CONSISTENCY_COLUMNS)
    top = workbook.add_format({"valign": "top"})  # a row with a two-line meaning reads along its top
    top_four = workbook.add_format({"valign": "top", "num_format": DECIMAL_4})
    for row, result in enumerate(results, start=1):
        sheet.write_string(row, 0, result.role_family, top)
        sheet.write_string(row, 1, result.method, top)
        sheet.write_number(row, 2, result.n, top)
        for col, figure in enumerate(
            (result.lambda_max, result.ci, result.ri, result.cr, result.kendall_w), start=3
        ):
            if figure is not None:  # a figure that does not apply stays an empty cell
                sheet.write_number(row, col, float(figure), top_four)
        meaning = kendall_w_meaning(result.kendall_w)
        if meaning is not None:
            text = f"{meaning['zh']}\n{meaning['en']}"
            sheet.write_string(row, 8, text, weak if (result.kendall_w or 0) < KENDALL_W_WEAK else wrapped)
            sheet.set_row(row, 30)
            widths[8].append(text)
        if result.ri_table:
            sheet.write_string(row, 9, result.ri_table, top)
        widths[0].append(result.role_family)
        widths[9].append(result.ri_table or "")
    for col, values in enumerate(widths):
        sheet.set_column(col, col, fit_width(values + ["0.0000"]))

    # 岗位指标 RoleKPIs (draft to paste into an agreements template)
    if role_kpis_period is not None:
        sheet = workbook.add_worksheet(ROLE_KPIS_SHEET)
        for col, label in enumerate(ROLE_KPIS_HEADERS):
            sheet.write_string(0, col, label, wrapped_header)
        sheet.set_row(0, 30)
        sheet.freeze_panes(1, 0)
        widths = [[label] for label in ROLE_KPIS_HEADERS]
        done: set[str] = set()
        row = 1
        for result in results:
            if result.role_family in done:
                continue
            done.add(result.role_family)
            for indicator, shown, _ in _displayed(result):
                sheet.write_string(row, 0, result.role_family)
                sheet.write_string(row, 1, role_kpis_period)
                sheet.write_string(row, 2, indicator)
                sheet.write_number(row, 3, shown, percent)  # base/target/stretch: HR fills
                widths[0].append(result.role_family)
                widths[1].append(role_kpis_period)
                widths[2].append(indicator)
                row += 1
        for col, values in enumerate(widths):
            sheet.set_column(col, col, fit_width(values, minimum=10))

    close_workbook(workbook)


__all__ = ["write_weights_workbook", "WEIGHTS_SHEET", "CONSISTENCY_SHEET", "ROLE_KPIS_SHEET",
           "ROLE_KPIS_HEADERS"]
