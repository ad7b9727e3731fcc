"""The weights workbook (docs/scoring.md §7): weights per role family, consistency figures, RoleKPIs draft.

Row 1 of the machine sheets holds the plain column names that tests, scripts and auditors
read; the Chinese labels are cell comments on those headers. Displayed weights come from
the largest-remainder method, and the stored value is that same rounded fraction, so what
Excel shows, what it sums and what a reader gets agree (each role family is exactly
100.00%). `weight_exact` keeps the full-precision weight beside it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Sequence

from pipeline.weights import WeightResult, largest_remainder
from pipeline.writers.common import close_workbook, fit_width, new_workbook

WEIGHTS_SHEET = "权重 Weights"
CONSISTENCY_SHEET = "一致性 Consistency"
ROLE_KPIS_SHEET = "岗位指标 RoleKPIs"

WEIGHTS_COLUMNS = [
    ("role_family", "岗位类别 Role family"),
    ("indicator_id", "指标编号 Indicator ID"),
    ("weight", "权重(显示值,合计 100%)Weight as displayed, sums to 100%"),
    ("weight_exact", "权重(精确值)Exact weight"),
    ("method", "方法:expert 专家打分法 / ahp 层次分析法 Method"),
]
CONSISTENCY_COLUMNS = [
    ("role_family", "岗位类别 Role family"),
    ("method", "方法:expert 专家打分法 / ahp 层次分析法 Method"),
    ("n", "指标个数 Number of indicators"),
    ("lambda_max", "最大特征根 λmax"),
    ("ci", "一致性指标 CI = (λmax − n)/(n − 1)"),
    ("ri", "平均随机一致性指标 RI"),
    ("cr", "一致性比率 CR = CI/RI,应 < 0.10"),
    ("kendall_w", "肯德尔协调系数 Kendall's W(专家一致程度 expert agreement)"),
    ("ri_table", "RI 表来源 RI table used"),
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


def _header(sheet, columns: Sequence[tuple[str, str]], header_format) -> None:
    for col, (name, label) in enumerate(columns):
        sheet.write_string(0, col, name, header_format)
        sheet.write_comment(0, col, label)
    sheet.freeze_panes(1, 0)


def write_weights_workbook(path: str | Path, results: Sequence[WeightResult], *,
                           role_kpis_period: str | None = None) -> None:
    """Write the weights workbook; with `role_kpis_period`, also a RoleKPIs draft for HR.

    The RoleKPIs draft holds one weight set per role family (the first result for it in
    `results`, i.e. expert scores before AHP from `compute_weights`): two sets for one role
    family would sum to 200% in an agreements file.
    """
    workbook = new_workbook(path, title="KPI weights 指标权重")
    header = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1})
    wrapped_header = workbook.add_format(
        {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "top"}
    )
    percent = workbook.add_format({"num_format": PERCENT})
    exact_format = workbook.add_format({"num_format": "0.000000%"})
    four = workbook.add_format({"num_format": DECIMAL_4})

    # 权重 Weights
    sheet = workbook.add_worksheet(WEIGHTS_SHEET)
    _header(sheet, WEIGHTS_COLUMNS, header)
    widths = [[name] for name, _ in WEIGHTS_COLUMNS]
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
    _header(sheet, CONSISTENCY_COLUMNS, header)
    widths = [[name] for name, _ in CONSISTENCY_COLUMNS]
    for row, result in enumerate(results, start=1):
        sheet.write_string(row, 0, result.role_family)
        sheet.write_string(row, 1, result.method)
        sheet.write_number(row, 2, result.n)
        for col, figure in enumerate(
            (result.lambda_max, result.ci, result.ri, result.cr, result.kendall_w), start=3
        ):
            if figure is not None:  # a figure that does not apply stays an empty cell
                sheet.write_number(row, col, float(figure), four)
        if result.ri_table:
            sheet.write_string(row, 8, result.ri_table)
        widths[0].append(result.role_family)
        widths[8].append(result.ri_table or "")
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
