"""The feedback paragraph says what the table shows: the same capped, half-up rounded numbers."""

from __future__ import annotations

import re
from collections import namedtuple
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
from company import PERIOD, small_company

from pipeline.batch import run_batch
from pipeline.policy import load_policy
from pipeline.writers.scorecards import feedback_text

Row = namedtuple("Row", "name method weight actual achievement achievement_raw")
ROWS = [Row("销售额", "ratio", 0.6, 272, 1.2, 1.36), Row("新客户数", "tiered", 0.2, 12, 0.8, 0.8),
        Row("投诉率", "pass_fail", 0.1, 0.03, 0.0, 0.0), Row("责任心", "rating", 0.1, 4.625, 0.925, 0.925)]


def test_capped_achievement_is_shown_with_the_raw_completion() -> None:
    text = feedback_text(ROWS, 91.25, "B", "zh")
    assert "销售额完成 136.0%,计分封顶 120.0%" in text
    assert "scored at the cap of 120.0%" in feedback_text(ROWS, 91.25, "B", "en")


def test_rating_rounds_half_up_like_the_table() -> None:
    assert "责任心评分 4.63 分" in feedback_text(ROWS, 91.25, "B", "zh")  # not 4.62 (half-to-even)


def test_pass_fail_says_met_or_not_never_0_percent() -> None:
    text = feedback_text(ROWS, 91.25, "B", "zh")
    assert "投诉率未达标" in text and "投诉率完成" not in text
    assert "0%" not in text.replace("120.0%", "").replace("136.0%", "").replace("80.0%", "").replace("92.5%", "")


def test_no_contradiction_and_one_next_step() -> None:
    # every indicator below target: nothing is called a strength
    rows = [Row("销售额", "ratio", 0.8, 230, 0.7667, 0.7667), Row("责任心", "rating", 0.2, 4.36, 0.872, 0.872)]
    text = feedback_text(rows, 78.76, "D", "zh")
    assert "达到目标" not in text and "最好" not in text
    assert text.count("下一步") == 1 and "优先改进销售额" in text  # 0.8 × 23.33% lost, more than 0.2 × 12.8%
    assert "此项少得 18.66 分" in text
    good = feedback_text([Row("销售额", "ratio", 1.0, 100, 1.0, 1.0)], 100.0, "A", "zh")
    assert "未达目标" not in good and "各项指标均达到目标" in good


def shown_percent(value: float) -> str:
    return f"{Decimal(repr(value * 100)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def test_every_percent_in_the_feedback_is_in_the_table(tmp_path: Path) -> None:
    inbox = small_company(tmp_path / "inbox")
    result = run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), jobs=1)
    checked = 0
    for path in (result.period_dir / "departments").glob("*.xlsx"):
        book = openpyxl.load_workbook(path, data_only=True)
        for sheet in book.worksheets[1:]:
            values = [c.value for row in sheet.iter_rows() for c in row]
            feedback = next(v for v in values if isinstance(v, str) and v.startswith("本期总分"))
            table = {shown_percent(sheet.cell(row=r, column=11).value) for r in range(11, 30)
                     if isinstance(sheet.cell(row=r, column=11).value, float)}
            for completed, capped in re.findall(r"完成 (\d+\.\d)%(?:,计分封顶 (\d+\.\d)%)?", feedback):
                checked += 1
                assert f"{capped or completed}%" in table, (sheet.title, feedback, table)
    assert checked > 0


def test_scorecards_print_like_an_appraisal_form(tmp_path: Path) -> None:
    from pipeline.policy import parse_policy

    inbox = small_company(tmp_path / "inbox")
    policy = parse_policy("display: {confidential: 内部资料 & 保密}")
    result = run_batch(inbox, PERIOD, tmp_path / "out", policy, jobs=1)
    book = openpyxl.load_workbook(result.period_dir / "departments" / "销售部.xlsx")
    summary, employee = book.worksheets[0], book.worksheets[1]
    assert summary["A1"].value == "销售部 绩效汇总 KPI summary"  # the department named once
    for sheet in (summary, employee):
        footer = sheet.oddFooter  # `&&` is how a footer holds a literal &
        assert footer.left.text == "内部资料 && 保密" and "&P" in footer.center.text and footer.right.text == PERIOD
    texts = {c.value for row in employee.iter_rows() for c in row if isinstance(c.value, str)}
    assert {"绩效面谈记录 Review meeting notes", "员工签字 Employee signature",
            "上级签字 Manager signature"} <= texts
    bonus = next(c for row in employee.iter_rows() for c in row if c.value == "奖金系数 Bonus coefficient")
    assert employee.cell(row=bonus.row, column=12).number_format == "0.00"
    summary_book = openpyxl.load_workbook(result.period_dir / "summary.xlsx")
    assert all(ws.oddFooter.right.text == PERIOD for ws in summary_book.worksheets if ws.sheet_state == "visible")


def test_ties_are_rounded_half_up_on_the_typed_decimal() -> None:
    """At a tie the typed decimal decides, not the float: 1.0005 is 100.05% (100.1%), though
    1.0005 × 1000 is 1000.4999… in floats; 0.35 × (1 − 0.9) is 3.50 points, not 3.49."""
    from pipeline.writers.scorecards import _shown_percent

    assert [_shown_percent(v) for v in (1.0005, 0.8125, 0.80049, -0.0004)] == ["100.1%", "81.3%", "80.0%", "0.0%"]
    rows = [Row("回款率", "ratio", 0.35, 0.9, 0.9, 0.9), Row("销售额", "ratio", 0.65, 100, 1.0, 1.0)]
    assert "此项少得 3.50 分" in feedback_text(rows, 96.5, "A", "zh")
