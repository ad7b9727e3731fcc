"""Reading rules (SPEC §1, §7): each test builds its workbook the way a person fills it and
asserts the exact cell a finding names.

Actuals sheets are used for most value rules: columns A 员工编号, B 考核周期, C 指标编号,
D 实际值, E 数据来源, F 备注.
"""

from __future__ import annotations

import datetime as dt
import io
import sys
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from builders import assert_messages, headers, sheet_name, table, write_book, write_sheets
from company import small_company

import pipeline.reader as reader
from pipeline.kinds import KINDS, TEMPLATE_VERSION
from pipeline.policy import load_policy
from pipeline.reader import read_inbox, read_workbook
from pipeline.safety import Limits
from pipeline.templates import write_template
from pipeline.validate import validate

ACTUALS = sheet_name("actuals")
ACTUALS_HEADERS = headers("actuals")


def actual_rows(*rows: tuple) -> list[list]:
    """Header plus (employee, period, indicator, actual) rows, as typed."""
    return [ACTUALS_HEADERS] + [list(row) for row in rows]


def the(findings: list, rule: str):
    """The one finding of `rule`; fails when there are none or several."""
    found = [f for f in findings if f.rule == rule]
    assert len(found) == 1, f"expected one {rule}, got {[(f.rule, f.where) for f in findings]}"
    return found[0]




def no_errors(findings: list) -> list:
    """The errors among findings (for `assert not no_errors(...)`-style checks)."""
    return [(f.rule, f.where, f.message_en) for f in findings if f.is_error]


def validated(path: Path):
    """Read and validate one workbook alone; findings about absent other files are dropped."""
    wb = read_workbook(path)
    inputs = validate([wb], load_policy())
    own = [f for f in inputs.findings if f.rule != "missing_input"]
    return wb, inputs, own


def actuals_frame(path: Path):
    wb, inputs, findings = validated(path)
    assert wb.kind == "actuals", findings
    return inputs.actuals, findings


# ================================================================== classification

def test_meta_sheet_decides_the_kind(tmp_path):
    # A renamed sheet and a pasted roster beside it: headers alone would match two kinds.
    roster_headers = headers("roster")
    path = write_book(tmp_path / "october.xlsx", {
        "数据": actual_rows(("E001", "2026-10", "K1", 5)),
        "名单": [roster_headers, ["E001", "张三", "销售部", None, "销售"]],
    }, meta={"kind": "actuals", "version": "1"})
    wb = read_workbook(path)
    assert wb.kind == "actuals"
    assert wb.version == "1"
    assert not wb.findings
    assert [t.sheet for t in wb.tables] == ["数据"]
    assert wb.tables[0].frame["employee_id"].tolist() == ["E001"]


def test_without_meta_the_same_file_is_ambiguous(tmp_path):
    roster_headers = headers("roster")
    path = write_book(tmp_path / "october.xlsx", {
        "数据": actual_rows(("E001", "2026-10", "K1", 5)),
        "名单": [roster_headers, ["E001", "张三", "销售部", None, "销售"]],
    })
    wb = read_workbook(path)
    f = the(wb.findings, "ambiguous_kind")
    assert (f.file, f.sheet, f.cell) == ("october.xlsx", "", "")
    assert_messages(f, "actuals", "roster")
    assert wb.kind is None and not wb.tables


@pytest.mark.parametrize("name", ["实际值 Actuals", "实际值", "Actuals", "actuals", "实际值Actuals", " Actuals 实际值 "])
def test_sheet_name_classifies_even_when_a_column_is_missing(tmp_path, name):
    # Without the 实际值 column the headers match no kind; the sheet name still does.
    path = write_sheets(tmp_path / "a.xlsx", {name: [["员工编号", "考核周期", "指标编号"],
                                                     ["E001", "2026-10", "K1"]]})
    wb = read_workbook(path)
    assert wb.kind == "actuals"
    f = the(wb.findings, "missing_column")
    assert (f.file, f.sheet, f.cell) == ("a.xlsx", name, "1")
    assert_messages(f, "实际值 Actual")


def test_headers_alone_classify_a_sheet1(tmp_path):
    path = write_sheets(tmp_path / "export.xlsx", {"Sheet1": actual_rows(("E001", "2026-10", "K1", 5),
                                                                        ("E002", "2026-10", "K1", 7))})
    wb = read_workbook(path)
    assert wb.kind == "actuals"
    assert not wb.findings
    assert wb.tables[0].sheet == "Sheet1"
    assert wb.tables[0].frame["_row"].tolist() == [2, 3]


def test_a_file_matching_no_kind_is_unknown(tmp_path):
    path = write_sheets(tmp_path / "notes.xlsx", {"Sheet1": [["日期", "事项"], ["2026-10-01", "开会"]]})
    wb = read_workbook(path)
    f = the(wb.findings, "unknown_kind")
    assert (f.file, f.sheet, f.cell) == ("notes.xlsx", "Sheet1", "")  # the sheet whose headers are listed
    assert f.is_error and f.message_zh and f.message_en
    assert "日期" in f.message_zh and "事项" in f.message_en
    assert wb.kind is None


def test_sheets_named_for_two_kinds_are_ambiguous(tmp_path):
    path = write_sheets(tmp_path / "both.xlsx", {
        sheet_name("actuals"): actual_rows(("E001", "2026-10", "K1", 5)),
        sheet_name("roster"): table("roster", [{"employee_id": "E001", "name": "张三", "department": "销售部",
                                                "role_family": "销售"}]),
    })
    wb = read_workbook(path)
    f = the(wb.findings, "ambiguous_kind")
    assert f.file == "both.xlsx" and f.cell == ""
    assert_messages(f, "actuals", "roster")
    assert not wb.tables


def test_sheets_whose_headers_fit_two_kinds_are_ambiguous(tmp_path):
    path = write_sheets(tmp_path / "both.xlsx", {
        "Sheet1": table("roster", [{"employee_id": "E001", "name": "张三", "department": "销售部",
                                    "role_family": "销售"}]),
        "Sheet2": table("indicators", [{"indicator_id": "K1", "name": "销售额", "dimension": "业绩",
                                        "direction": "越高越好", "method": "比率"}]),
    })
    wb = read_workbook(path)
    f = the(wb.findings, "ambiguous_kind")
    assert f.file == "both.xlsx"
    assert_messages(f, "indicators", "roster")
    assert not wb.tables


# ================================================================== headers

ODD = ["员工编号 ", "ＰＥＲＩＯＤ", "  指标编号", "实际值 \n  Actual", "Data  Source", "备注"]


@pytest.mark.parametrize("header", [
    ["员工编号", "考核周期", "指标编号", "实际值", "数据来源", "备注"],
    ["Employee ID", "Period", "Indicator ID", "Actual", "Data source", "Note"],
    ["employee_id", "period", "indicator_id", "actual", "data_source", "note"],
    ["员工编号\nEmployee ID", "考核周期\nPeriod", "指标编号\nIndicator ID", "实际值\nActual",
     "数据来源\nData source", "备注\nNote"],
    ODD,
    ["ＥＭＰＬＯＹＥＥ ＩＤ", "period", "INDICATOR ID", "actual", "数据来源", "备注"],
], ids=["zh", "en", "fields", "bilingual", "odd-spacing", "full-width"])
def test_header_matching(tmp_path, header):
    path = write_sheets(tmp_path / "a.xlsx", {"Sheet1": [header, ["E001", "2026-10", "K1", 5, "CRM", ""],
                                                        ["E002", "2026-10", "K1", "五", "CRM", ""]]})
    wb = read_workbook(path)
    assert wb.kind == "actuals", wb.findings
    t = wb.tables[0]
    assert t.letters == {"employee_id": "A", "period": "B", "indicator_id": "C", "actual": "D",
                         "data_source": "E", "note": "F"}
    assert t.extra == {}
    _, inputs, findings = validated(path)
    f = the(findings, "not_a_number")
    assert f.where == "a.xlsx!Sheet1!D3"
    assert_messages(f, "五", "实际值 Actual")


def test_columns_in_another_order(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: [
        ["实际值", "备注", "指标编号", "员工编号", "考核周期"],
        [5, "", "K1", "E001", "2026-10"],
        ["abc", "", "K2", "E002", "2026-10"],
    ]})
    wb = read_workbook(path)
    assert wb.tables[0].letters == {"actual": "A", "note": "B", "indicator_id": "C", "employee_id": "D",
                                    "period": "E"}
    frame, findings = actuals_frame(path)
    f = the(findings, "not_a_number")
    assert f.where == f"a.xlsx!{ACTUALS}!A3"
    assert frame[["employee_id", "indicator_id", "actual"]].values.tolist() == [["E001", "K1", 5.0]]


def test_extra_column_is_kept_aside_and_ignored(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: [
        ACTUALS_HEADERS + ["区域 Region"],
        ["E001", "2026-10", "K1", 5, "CRM", "", "华东"],
    ]})
    wb = read_workbook(path)
    t = wb.tables[0]
    assert t.extra == {"区域 Region": "G"}
    assert "区域 Region" not in t.frame.columns and "华东" not in t.frame.values
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["actual"].tolist() == [5.0]


def test_missing_required_column_names_the_header_row(tmp_path):
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: [
        ["员工编号", "考核周期", "指标编号", "备注"],
        ["E001", "2026-10", "K1", "备注"],
    ]}, start_row={ACTUALS: 3}, cells={ACTUALS: {"A1": "十月实际值"}})
    wb = read_workbook(path)
    f = the(wb.findings, "missing_column")
    assert f.where == f"a.xlsx!{ACTUALS}!3"
    assert f.column == "实际值 Actual"
    assert_messages(f, "实际值 Actual")


def test_duplicate_column_is_reported(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: [
        ["员工编号", "考核周期", "指标编号", "实际值", "Actual"],
        ["E001", "2026-10", "K1", 5, 6],
    ]})
    f = the(read_workbook(path).findings, "duplicate_column")
    assert f.where == f"a.xlsx!{ACTUALS}!E1"
    assert_messages(f, "实际值 Actual", "D1", "E1")


# ================================================================== rows

def test_title_row_and_blank_rows_keep_excel_row_numbers(tmp_path):
    # Row 1: merged title, row 2: blank, row 3: header, rows 4-5 data, row 6 blank, row 7 bad.
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: [
        ACTUALS_HEADERS,
        ["E001", "2026-10", "K1", 5],
        ["E002", "2026-10", "K1", 6],
        [],
        ["E003", "2026-10", "K1", "abc"],
        ["E004", "2026-10", "K1", 8],
    ]}, start_row={ACTUALS: 3}, cells={ACTUALS: {"A1": "2026年10月 实际值"}}, merges={ACTUALS: ["A1:G1"]})
    wb = read_workbook(path)
    assert wb.tables[0].header_row == 3
    assert wb.tables[0].frame["_row"].tolist() == [4, 5, 7, 8]
    frame, findings = actuals_frame(path)
    f = the(findings, "not_a_number")
    assert (f.file, f.sheet, f.cell) == ("a.xlsx", ACTUALS, "D7")
    assert_messages(f, "abc")
    assert frame["_row"].tolist() == [4, 5, 8]
    assert frame["employee_id"].tolist() == ["E001", "E002", "E004"]


def test_leading_blank_rows_and_columns_keep_cell_references(tmp_path):
    # The table starts at C4: references must still be the Excel ones.
    rows = [[None, None] + row for row in actual_rows(("E001", "2026-10", "K1", 5),
                                                      ("E002", "2026-10", "K1", "N/A"))]
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: rows}, start_row={ACTUALS: 4})
    wb = read_workbook(path)
    assert wb.tables[0].letters["actual"] == "F"
    _, findings = actuals_frame(path)
    assert the(findings, "not_a_number").cell == "F6"


def test_example_row_is_skipped(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("示例E000", "2026-10", "KPI-01", 210, "CRM"),
        ("E001", "2026-10", "K1", 5),
    )})
    wb = read_workbook(path)
    assert wb.tables[0].frame["_row"].tolist() == [3]
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["employee_id"].tolist() == ["E001"]


def test_example_row_in_reordered_columns_is_skipped(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: [
        ["考核周期", "员工编号", "指标编号", "实际值"],
        ["2026-10", "示例E000", "KPI-01", "示例"],
        ["2026-10", "E001", "K1", 5],
    ]})
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["_row"].tolist() == [3]


def test_merged_department_fills_each_row(tmp_path):
    roster = table("roster", [
        {"employee_id": "E001", "name": "张三", "department": "销售部", "role_family": "销售"},
        {"employee_id": "E002", "name": "李四", "role_family": "销售", "manager_id": "E001"},
        {"employee_id": "E003", "name": "王五", "role_family": "销售", "manager_id": "E001"},
        {"employee_id": "E004", "name": "赵六", "department": "研发部", "role_family": "研发"},
    ])
    path = write_book(tmp_path / "roster.xlsx", {sheet_name("roster"): roster},
                      merges={sheet_name("roster"): ["C2:C4"]})
    wb, inputs, findings = validated(path)
    assert not no_errors(findings)
    assert inputs.roster["department"].tolist() == ["销售部", "销售部", "销售部", "研发部"]


def test_hidden_sheet_is_read(tmp_path):
    path = write_book(tmp_path / "a.xlsx", {
        "说明 Instructions": [["请在隐藏的工作表中填写"]],
        ACTUALS: actual_rows(("E001", "2026-10", "K1", 5)),
    }, hidden=(ACTUALS,))
    wb = read_workbook(path)
    assert wb.kind == "actuals"
    assert wb.tables[0].frame["employee_id"].tolist() == ["E001"]


def test_sheet_with_only_headers_has_no_rows(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: [ACTUALS_HEADERS]})
    wb = read_workbook(path)
    assert not wb.findings
    assert len(wb.tables) == 1 and wb.tables[0].frame.empty
    frame, findings = actuals_frame(path)
    assert frame.empty and not no_errors(findings)


def test_trailing_formatted_blank_columns_and_rows_are_ignored(tmp_path):
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: actual_rows(("E001", "2026-10", "K1", 5))},
                      cells={ACTUALS: {"K40": "", "Z3": " "}})
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["_row"].tolist() == [2]


# ================================================================== values

def test_numbers_as_people_type_them(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("E001", "2026-10", "K1", "1,200"),
        ("E002", "2026-10", "K1", "１２"),
        ("E003", "2026-10", "K1", "1.5%"),
        ("E004", "2026-10", "K1", " 35 "),
        ("E005", "2026-10", "K1", 7),
        ("E006", "2026-10", "K1", "１，２００．５"),
        ("E007", "2026-10", "K1", "\u22125"),
        ("E008", "2026-10", "K1", "¥3,000"),
    )})
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["actual"].tolist() == [1200.0, 12.0, 0.015, 35.0, 7.0, 1200.5, -5.0, 3000.0]


@pytest.mark.parametrize("text", ["N/A", "abc", "12个", "TRUE", "1e999", "-", "1.2.3"])
def test_text_in_a_number_column_names_the_cell(tmp_path, text):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("E001", "2026-10", "K1", 5),
        ("E002", "2026-10", "K1", text),
    )})
    frame, findings = actuals_frame(path)
    f = the(findings, "not_a_number")
    assert f.where == f"a.xlsx!{ACTUALS}!D3"
    assert_messages(f, text, "实际值 Actual")
    assert f.value == text
    assert "required" not in {x.rule for x in findings}
    assert frame["employee_id"].tolist() == ["E001"]


def test_ids_are_trimmed_and_numeric_ids_lose_their_decimal(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("  E001 ", "2026-10", " K1\u3000", 5),
        (1001.0, "2026-10", 7, 6),
        (1002, "2026-10", "Ｋ２", 7),
    )})
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["employee_id"].tolist() == ["E001", "1001", "1002"]
    assert frame["indicator_id"].tolist() == ["K1", "7", "K2"]


@pytest.mark.parametrize("value, number_format", [
    ("60%", None), (60, None), (0.6, "0%"), (0.6, None), ("0.6", None), ("６０％", None), ("60", None),
])
def test_weights_as_people_type_them(tmp_path, value, number_format):
    sheet = sheet_name("agreements", 1)
    rows = table("agreements", [
        {"employee_id": "E001", "period": "2026-10", "indicator_id": "K1", "weight": value, "target": 10},
        {"employee_id": "E001", "period": "2026-10", "indicator_id": "K2", "weight": "40%", "target": 10},
    ], 1)
    path = write_book(tmp_path / "agreements.xlsx", {sheet: rows},
                      number_formats={sheet: {"D2": number_format}} if number_format else None)
    wb, inputs, findings = validated(path)
    assert not no_errors(findings)
    assert inputs.employee_kpis["weight"].tolist() == pytest.approx([0.6, 0.4])


def test_period_typed_as_a_month_that_excel_made_a_date(tmp_path):
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("E001", dt.datetime(2026, 10, 1), "K1", 5),
        ("E002", dt.date(2026, 11, 1), "K1", 5),
    )}, number_formats={ACTUALS: {"B2": "yyyy-mm", "B3": "yyyy\"年\"m\"月\""}})
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["period"].tolist() == ["2026-10", "2026-11"]


@pytest.mark.parametrize("typed, expected", [
    ("2026-10", "2026-10"), ("2026/10", "2026-10"), ("2026年10月", "2026-10"), ("2026-1", "2026-01"),
    ("2026Q3", "2026-Q3"), ("2026-Q3", "2026-Q3"), ("2026 q3", "2026-Q3"), ("2026年第3季度", "2026-Q3"),
    ("2026年第三季度", "2026-Q3"), ("2026-H1", "2026-H1"), ("2026年上半年", "2026-H1"),
    ("2026", "2026"), (2026, "2026"), (2026.0, "2026"), ("２０２６－１０", "2026-10"),
    (202610, "2026-10"), ("202610", "2026-10"),
])
def test_periods_parse(tmp_path, typed, expected):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(("E001", typed, "K1", 5))})
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["period"].tolist() == [expected]


@pytest.mark.parametrize("typed", ["2026-13", "2026-Q5", "十月", "2026-00", 26, 202613])
def test_bad_period_names_the_cell(tmp_path, typed):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("E001", "2026-10", "K1", 5),
        ("E002", typed, "K1", 5),
    )})
    frame, findings = actuals_frame(path)
    f = the(findings, "bad_period")
    assert f.where == f"a.xlsx!{ACTUALS}!B3"
    assert_messages(f, str(typed))
    assert frame["employee_id"].tolist() == ["E001"]


INDICATORS = sheet_name("indicators")


def indicator(direction: object, **extra) -> dict:
    return {"indicator_id": "K1", "name": "投诉率", "dimension": "业绩", "direction": direction,
            "method": "比率", **extra}


@pytest.mark.parametrize("typed", ["越低越好", "lower", "Lower", " LOWER ", "越低越好 lower"])
def test_choices_by_chinese_english_or_code(tmp_path, typed):
    path = write_sheets(tmp_path / "i.xlsx", {INDICATORS: table("indicators", [indicator(typed)])})
    wb, inputs, findings = validated(path)
    assert not no_errors(findings)
    assert inputs.indicators["direction"].tolist() == ["lower"]


def test_wrong_choice_lists_the_choices(tmp_path):
    path = write_sheets(tmp_path / "i.xlsx", {INDICATORS: table("indicators", [
        indicator("越高越好", indicator_id="K0"), indicator("down")])})
    wb, inputs, findings = validated(path)
    f = the(findings, "bad_choice")
    assert f.where == f"i.xlsx!{INDICATORS}!E3"
    assert_messages(f, "down", "越高越好 higher", "越低越好 lower", "方向 Direction")
    assert inputs.indicators["indicator_id"].tolist() == ["K0"]


def test_blank_choice_takes_its_default(tmp_path):
    path = write_sheets(tmp_path / "i.xlsx", {INDICATORS: table("indicators", [indicator("越高越好")])})
    _, inputs, findings = validated(path)
    assert not no_errors(findings)
    assert inputs.indicators["aggregation"].tolist() == ["sum"]


# ================================================================== formulas and errors

def test_formula_without_cached_value_is_an_error_not_a_zero(tmp_path):
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("E001", "2026-10", "K1", 5), ("E002", "2026-10", "K1", 6), ("E003", "2026-10", "K1", 7),
        ("E004", "2026-10", "K1", None),
    )}, cells={ACTUALS: {"D5": "=B5*2"}})
    wb = read_workbook(path)
    f = the(wb.findings, "formula_no_value")
    assert f.where == f"a.xlsx!{ACTUALS}!D5"
    assert_messages(f, "=B5*2")
    frame, findings = actuals_frame(path)
    assert [x.cell for x in findings if x.is_error] == ["D5"]
    assert "E004" not in frame["employee_id"].tolist()
    assert 0 not in frame["actual"].tolist()


def test_formula_with_cached_value_is_read_by_its_value(tmp_path):
    path = tmp_path / "a.xlsx"
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet(ACTUALS)
    for col, text in enumerate(ACTUALS_HEADERS):
        sheet.write_string(0, col, text)
    sheet.write_row(1, 0, ["E001", "2026-10", "K1"])
    sheet.write_formula("D2", "=100+20", None, 120)
    workbook.close()
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame["actual"].tolist() == [120.0]


@pytest.mark.parametrize("formula, error", [("=1/0", "#DIV/0!"), ("=NA()", "#N/A")])
def test_error_cell_names_the_cell(tmp_path, formula, error):
    path = tmp_path / "a.xlsx"
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet(ACTUALS)
    for col, text in enumerate(ACTUALS_HEADERS):
        sheet.write_string(0, col, text)
    for row in range(1, 6):
        sheet.write_row(row, 0, [f"E00{row}", "2026-10", "K1"])
        if row != 5:
            sheet.write_number(row, 3, row * 10)
    sheet.write_formula("D6", formula, None, error)
    workbook.close()
    wb = read_workbook(path)
    f = the(wb.findings, "error_value")
    assert f.where == f"a.xlsx!{ACTUALS}!D6"
    assert_messages(f, error)
    frame, findings = actuals_frame(path)
    assert [x.cell for x in findings if x.is_error] == ["D6"]
    assert frame["employee_id"].tolist() == ["E001", "E002", "E003", "E004"]


def test_error_value_in_an_id_column_is_reported(tmp_path):
    path = tmp_path / "a.xlsx"
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet(ACTUALS)
    for col, text in enumerate(ACTUALS_HEADERS):
        sheet.write_string(0, col, text)
    sheet.write_formula("A2", '=VLOOKUP("x",Z1:Z2,1,0)', None, "#N/A")
    sheet.write_row(1, 1, ["2026-10", "K1", 5])
    workbook.close()
    frame, findings = actuals_frame(path)
    f = the(findings, "error_value")
    assert f.where == f"a.xlsx!{ACTUALS}!A2"
    assert "required" not in {x.rule for x in findings}
    assert frame.empty


# ================================================================== unreadable files

def a_real_workbook(tmp_path: Path) -> Path:
    return write_sheets(tmp_path / "real.xlsx", {ACTUALS: actual_rows(
        *[(f"E{i:03d}", "2026-10", "K1", i) for i in range(200)])})


def test_random_bytes_named_xlsx(tmp_path):
    path = tmp_path / "random.xlsx"
    path.write_bytes(bytes(range(256)) * 40)
    f = the(read_workbook(path).findings, "unreadable")
    assert (f.file, f.sheet, f.cell) == ("random.xlsx", "", "")
    assert ".xlsx" in f.message_zh and ".xlsx" in f.message_en


def test_truncated_workbook(tmp_path):
    data = a_real_workbook(tmp_path).read_bytes()
    path = tmp_path / "half.xlsx"
    path.write_bytes(data[: len(data) // 2])
    f = the(read_workbook(path).findings, "unreadable")
    assert f.file == "half.xlsx"
    assert "truncated" in f.message_en and "不完整" in f.message_zh


def test_workbook_damaged_inside(tmp_path):
    data = bytearray(a_real_workbook(tmp_path).read_bytes())
    # Flip bytes in the middle of the first member's compressed data: the zip still opens.
    start = data.index(b"PK\x03\x04") + 60
    for i in range(start, start + 20):
        data[i] ^= 0xFF
    path = tmp_path / "bad.xlsx"
    path.write_bytes(bytes(data))
    f = the(read_workbook(path).findings, "unreadable")
    assert f.file == "bad.xlsx" and f.cell == ""
    assert "damaged" in f.message_en and "损坏" in f.message_zh


def test_ole2_file_mentions_password_and_xls(tmp_path):
    path = tmp_path / "locked.xlsx"
    path.write_bytes(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + b"\0" * 4096)
    f = the(read_workbook(path).findings, "unreadable")
    assert f.file == "locked.xlsx"
    assert "password" in f.message_en and ".xls" in f.message_en
    assert "密码" in f.message_zh and ".xls" in f.message_zh


def test_empty_file(tmp_path):
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    f = the(read_workbook(path).findings, "unreadable")
    assert f.file == "empty.xlsx" and "empty" in f.message_en


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "photos.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.txt", "not a workbook")
    f = the(read_workbook(path).findings, "unreadable")
    assert f.file == "photos.xlsx" and "xl/workbook.xml" in f.message_en


def test_csv_is_read_and_an_unrecognised_xls_is_told_to_save_as_xlsx(tmp_path):
    # Since issue 6 a CSV is read (tests/test_hostile.py covers it); an OLE2 file that is
    # neither a legacy .xls nor a recognisable encrypted workbook is still refused.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "actuals.csv").write_text("员工编号,考核周期,指标编号,实际值\nE001,2026-10,K1,5\n", "utf-8")
    (inbox / "old.xls").write_bytes(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + b"\0" * 1024)
    (inbox / "~$roster.xlsx").write_bytes(b"lock file")
    results = read_inbox(inbox)
    assert [r.file for r in results] == ["actuals.csv", "old.xls"]
    assert results[0].kind == "actuals" and not results[0].findings
    f = the(results[1].findings, "unreadable")
    assert f.file == "old.xls" and f.cell == ""
    assert ".xlsx" in f.message_zh and ".xlsx" in f.message_en
    assert ".xls " in f.message_en and "password" in f.message_en


def test_one_bad_file_does_not_stop_the_inbox(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "broken.xlsx").write_bytes(b"garbage")
    write_sheets(inbox / "actuals.xlsx", {ACTUALS: actual_rows(("E001", "2026-10", "K1", 5))})
    results = {r.file: r for r in read_inbox(inbox)}
    assert the(results["broken.xlsx"].findings, "unreadable").file == "broken.xlsx"
    assert results["actuals.xlsx"].kind == "actuals" and not results["actuals.xlsx"].findings


def _zip_bomb(path: Path, real: Path, megabytes: int = 200) -> Path:
    """A real workbook plus one member of `megabytes` MB of zeros (a few hundred KB on disk)."""
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            archive.writestr(member, source.read(member))
        chunk = b"\0" * (1024 * 1024)
        with archive.open("xl/media/image1.bin", "w") as handle:
            for _ in range(megabytes):
                handle.write(chunk)
    return path


def test_zip_bomb_is_refused_before_anything_inflates(tmp_path, monkeypatch):
    path = _zip_bomb(tmp_path / "bomb.xlsx", a_real_workbook(tmp_path))
    assert path.stat().st_size < 2 * 1024 * 1024
    opened = []
    monkeypatch.setattr(reader.CalamineWorkbook, "from_path", lambda *a, **k: opened.append(a))
    monkeypatch.setattr(zipfile.ZipFile, "testzip", lambda self: opened.append("testzip"))
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, *a, **k: opened.append(a))
    f = the(read_workbook(path).findings, "unreadable")
    assert f.file == "bomb.xlsx"
    assert "zip bomb" in f.message_en and "压缩炸弹" in f.message_zh
    assert opened == []


def test_inflated_size_limit(tmp_path):
    path = a_real_workbook(tmp_path)
    f = the(read_workbook(path, limits=Limits(max_uncompressed_bytes=10_000)).findings, "unreadable")
    assert f.file == "real.xlsx"
    assert "zip bomb" in f.message_en and "max_uncompressed_mb" in f.message_en
    assert read_workbook(path).kind == "actuals"


def test_too_many_rows_is_refused_with_the_limit(tmp_path):
    path = a_real_workbook(tmp_path)
    f = the(read_workbook(path, limits=Limits(max_rows=100)).findings, "unreadable")
    assert f.file == "real.xlsx" and "100" in f.message_en and ACTUALS in f.message_zh


def test_xml_entity_expansion_is_refused(tmp_path):
    real = a_real_workbook(tmp_path)
    path = tmp_path / "lol.xlsx"
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol2;</t></is></c></row>'
            '<row r="2"><c r="B2"><f>1+1</f></c></row></sheetData></worksheet>')
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = bomb.encode()
            archive.writestr(member, data)
    result = read_workbook(path)
    f = the(result.findings, "unreadable")
    assert f.file == "lol.xlsx" and f.cell == "" and len(result.findings) == 1
    assert not result.tables


def test_openpyxl_is_protected_by_defusedxml():
    from pipeline.safety import assert_defusedxml_in_force

    assert_defusedxml_in_force()


def test_workbook_written_by_openpyxl_in_memory_roundtrip(tmp_path):
    # A sanity check on the builders themselves: what we write is what a person would see.
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: actual_rows(("E001", "2026-10", "K1", 5))},
                      cells={ACTUALS: {"D3": "=B3*2"}}, meta={"kind": "actuals"})
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    assert book["_meta"].sheet_state == "hidden" and book[ACTUALS]["D3"].value == "=B3*2"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_blank_generated_templates_read_clean_with_the_example_skipped(tmp_path, kind):
    path = write_template(KINDS[kind], tmp_path / f"{kind}.xlsx")
    wb = read_workbook(path)
    assert wb.kind == kind and wb.version == TEMPLATE_VERSION
    assert not wb.findings, [(f.rule, f.where) for f in wb.findings]
    assert [len(t.frame) for t in wb.tables] == [0] * len(KINDS[kind].tables)


def test_tall_header_merged_down_two_rows_is_not_data(tmp_path):
    # Each header merged A1:A2, B1:B2 ...: the second row must not become a row of header text.
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("E001", "2026-10", "K1", 5), ("E002", "2026-10", "K1", "x"))},
        start_row={ACTUALS: 2},
        cells={ACTUALS: {f"{c}1": v for c, v in zip("ABCD", ACTUALS_HEADERS)} | {f"{c}2": None for c in "ABCD"}},
        merges={ACTUALS: ["A1:A2", "B1:B2", "C1:C2", "D1:D2"]})
    frame, findings = actuals_frame(path)
    assert [(f.rule, f.cell) for f in findings if f.is_error] == [("not_a_number", "D4")]
    assert frame["_row"].tolist() == [3]


def test_two_row_header_with_group_titles(tmp_path):
    # Row 1: 基本信息 over A:C and 实际值 merged down D1:D2; row 2: the other headers.
    path = write_book(tmp_path / "a.xlsx", {ACTUALS: [
        ["基本信息", None, None, "实际值\nActual"],
        ["员工编号", "考核周期", "指标编号"],
        ["E001", "2026-10", "K1", 5],
        ["E002", "2026-10", "K1", "N/A"],
    ]}, merges={ACTUALS: ["A1:C1", "D1:D2"]})
    wb = read_workbook(path)
    assert wb.kind == "actuals"
    assert wb.tables[0].header_row == 2
    assert wb.tables[0].letters["actual"] == "D"
    frame, findings = actuals_frame(path)
    assert the(findings, "not_a_number").where == f"a.xlsx!{ACTUALS}!D4"
    assert frame["actual"].tolist() == [5.0]


def test_merged_department_running_past_the_last_row(tmp_path):
    roster = table("roster", [
        {"employee_id": "E001", "name": "张三", "department": "销售部", "role_family": "销售"},
        {"employee_id": "E002", "name": "李四", "role_family": "销售"},
    ])
    path = write_book(tmp_path / "roster.xlsx", {sheet_name("roster"): roster},
                      merges={sheet_name("roster"): ["C2:C6"]})
    _, inputs, findings = validated(path)
    assert not no_errors(findings)
    assert inputs.roster["_row"].tolist() == [2, 3]
    assert inputs.roster["department"].tolist() == ["销售部", "销售部"]


def _with_cell_type(path: Path, cell: str, cell_type: str) -> Path:
    """Rewrite one `<c r="...">` of the first sheet with a `t=` attribute, as Excel would write it."""
    out = path.with_name("typed_" + path.name)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(f'<c r="{cell}">'.encode(), f'<c r="{cell}" t="{cell_type}">'.encode())
            archive.writestr(member, data)
    return out


def test_formula_whose_saved_result_is_empty_text_is_blank_not_an_error(tmp_path):
    # =IFERROR(VLOOKUP(...),"") in the note column, saved by Excel: <c t="str"><f>…</f><v></v></c>
    path = tmp_path / "a.xlsx"
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet(ACTUALS)
    for col, text in enumerate(ACTUALS_HEADERS):
        sheet.write_string(0, col, text)
    sheet.write_row(1, 0, ["E001", "2026-10", "K1", 5])
    sheet.write_formula("F2", '=IFERROR(VLOOKUP(A2,Z:Z,1,0),"")', None, "")
    workbook.close()
    frame, findings = actuals_frame(_with_cell_type(path, "F2", "str"))
    assert not no_errors(findings)
    assert frame["note"].tolist() == [None]
    # The same cell with no saved result at all is an error naming it.
    frame, findings = actuals_frame(path)
    assert the(findings, "formula_no_value").cell == "F2"


def test_uncalculated_formula_found_in_prefixed_sheet_xml(tmp_path):
    import xml.etree.ElementTree as ET

    path = write_book(tmp_path / "a.xlsx", {ACTUALS: actual_rows(("E001", "2026-10", "K1", None))},
                      cells={ACTUALS: {"D2": "=B2*2"}})
    namespace = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    ET.register_namespace("ss", namespace)
    out = tmp_path / "prefixed.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = ET.tostring(ET.fromstring(data), encoding="UTF-8")
                assert b"<ss:f>" in data
            archive.writestr(member, data)
    f = the(read_workbook(out).findings, "formula_no_value")
    assert f.where == f"prefixed.xlsx!{ACTUALS}!D2"


def test_system_files_are_skipped_and_notes_only_warned_about(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "__MACOSX").mkdir(parents=True)
    (inbox / "Thumbs.db").write_bytes(b"\0" * 64)
    (inbox / "desktop.ini").write_text("[.ShellClassInfo]")
    (inbox / "__MACOSX" / "._actuals.xlsx").write_bytes(b"\0" * 64)
    (inbox / "说明.txt").write_text("十月数据", "utf-8")
    (inbox / "roster.xlsx.bak").write_bytes(b"old")
    (inbox / "targets.ods").write_bytes(b"PK")
    results = {r.file: r for r in read_inbox(inbox)}
    assert sorted(results) == ["roster.xlsx.bak", "targets.ods", "说明.txt"]
    assert [f.severity for f in results["说明.txt"].findings] == ["warning"]
    assert [f.severity for f in results["roster.xlsx.bak"].findings] == ["warning"]
    f = the(results["targets.ods"].findings, "unreadable")
    assert f.is_error and ".xlsx" in f.message_en and ".xlsx" in f.message_zh


def test_meta_file_with_a_renamed_sheet_missing_a_column_names_the_column(tmp_path):
    path = write_book(tmp_path / "roster.xlsx", {"Sheet1": [
        ["员工编号", "姓名", "部门"],
        ["E001", "张三", "销售部"],
    ]}, meta={"kind": "roster", "version": "1"})
    wb = read_workbook(path)
    assert wb.kind == "roster"
    f = the(wb.findings, "missing_column")
    assert f.where == "roster.xlsx!Sheet1!1"
    assert_messages(f, "岗位类别 Role family")
    assert "missing_sheet" not in {x.rule for x in wb.findings}


def test_meta_file_without_the_sheet_names_the_sheet(tmp_path):
    path = write_book(tmp_path / "roster.xlsx", {"Sheet1": [["备注"], ["无"]]}, meta={"kind": "roster"})
    f = the(read_workbook(path).findings, "missing_sheet")
    assert f.where == "roster.xlsx"
    assert_messages(f, "员工花名册 Roster")


@pytest.mark.parametrize("typed", ["1,2", "12,00", "1,2345"])
def test_commas_that_do_not_group_thousands_are_not_guessed(tmp_path, typed):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(("E001", "2026-10", "K1", typed))})
    _, findings = actuals_frame(path)
    f = the(findings, "not_a_number")
    assert f.where == f"a.xlsx!{ACTUALS}!D2"
    assert_messages(f, typed)


def test_invisible_characters_pasted_into_ids_are_removed(tmp_path):
    path = write_sheets(tmp_path / "a.xlsx", {ACTUALS: actual_rows(
        ("\ufeffE001\u200b", "2026-10", "K1\u200d", 5))})
    frame, findings = actuals_frame(path)
    assert not no_errors(findings)
    assert frame[["employee_id", "indicator_id"]].values.tolist() == [["E001", "K1"]]


def test_reading_in_worker_processes_gives_what_reading_in_one_gives(tmp_path, monkeypatch):
    """`read_inbox(jobs=2)` forks readers for a big inbox; forced here on a small one, with a
    planted mistake, a note and a damaged file, it must give the same workbooks in the same order."""
    if not sys.platform.startswith("linux"):
        pytest.skip("workers are forked on Linux only")
    inbox = small_company(tmp_path / "inbox", mistake=True)
    (inbox / "说明.txt").write_text("notes", encoding="utf-8")
    (inbox / "damaged.xlsx").write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    limits = load_policy().limits
    alone = read_inbox(inbox, limits)
    monkeypatch.setattr(reader, "PARALLEL_READ_BYTES", 0)
    read_in_workers, forked = reader._read_in_workers, []
    monkeypatch.setattr(reader, "_read_in_workers", lambda *args: forked.append(args) or read_in_workers(*args))
    together = read_inbox(inbox, limits, jobs=2)
    assert forked, "the workers were not used"
    assert [wb.file for wb in together] == [wb.file for wb in alone] and len(alone) >= 9
    assert any(f.rule == "unreadable" for wb in together for f in wb.findings)
    for one, other in zip(alone, together):
        assert (other.kind, other.rows) == (one.kind, one.rows)
        assert [f.as_dict() for f in other.findings] == [f.as_dict() for f in one.findings]
        assert len(other.tables) == len(one.tables) and len(other.matrices) == len(one.matrices)
        for a, b in zip(one.tables, other.tables):
            assert (b.spec, b.file, b.sheet, b.letters, b.extra, b.header_row, b.bad_cells) == \
                   (a.spec, a.file, a.sheet, a.letters, a.extra, a.header_row, a.bad_cells)
            pd.testing.assert_frame_equal(b.frame, a.frame)
    policy = load_policy()
    assert [f.as_dict() for f in validate(together, policy).findings] == \
           [f.as_dict() for f in validate(alone, policy).findings]
