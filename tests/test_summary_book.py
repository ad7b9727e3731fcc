"""summary.xlsx: the company view for people, and exact plain sheets for machines and auditors."""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from python_calamine import CalamineWorkbook

from pipeline.findings import finding, sort_findings
from pipeline.policy import load_policy
from pipeline.reader import read_inbox
from pipeline.scoring import DETAIL_COLUMNS, TOTAL_COLUMNS, Scores, score_period
from pipeline.validate import validate
from pipeline.writers.summary_book import (
    CALIBRATION_SHEET,
    CASCADE_SHEET,
    DETAILS_SHEET,
    EMPLOYEES_SHEET,
    OVERVIEW_SHEET,
    SHEETS,
    TOTALS_SHEET,
    UNSCORED_SHEET,
    WARNINGS_SHEET,
    write_summary_workbook,
)

sys.path.insert(0, str(Path(__file__).parent))
import builders  # noqa: E402
from recalc import recalculated_libreoffice  # noqa: E402

PERIOD = "2026-Q3"
POLICY = load_policy()


def _score(folder: Path):
    inputs = validate(read_inbox(folder), POLICY, PERIOD)
    return inputs, score_period(inputs, POLICY, PERIOD)


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    folder = builders.seed_000_inbox(tmp_path_factory.mktemp("seed000") / "inbox")
    return _score(folder)


def _write(path: Path, scores: Scores, findings=(), lang: str = "zh", indicators=None) -> Path:
    return write_summary_workbook(path, scores, list(findings), POLICY, lang, indicators=indicators)


def _rows(ws) -> list[tuple]:
    return [tuple(row) for row in ws.iter_rows(values_only=True)]


def _calamine(path: Path, sheet: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def _with_unscored(scores: Scores, employee_id: str = "S002") -> Scores:
    """Seed 000 with one employee moved out of scoring, as scoring itself would leave them."""
    reason = finding("missing_actual", employee_id=employee_id, period=PERIOD, indicator="K2",
                     file="actuals.xlsx", sheet="实际值 Actuals", cell="D6")
    totals = scores.totals[scores.totals["employee_id"] != employee_id].reset_index(drop=True)
    unscored = pd.DataFrame([{
        "employee_id": employee_id, "period": PERIOD, "name": "李销售", "department": "销售部",
        "reason_zh": reason.message_zh, "reason_en": reason.message_en, "where": reason.where,
        "rule": reason.rule, "problems": 1}])
    return dataclasses.replace(
        scores, totals=totals, unscored=unscored,
        details=scores.details[scores.details["employee_id"] != employee_id].reset_index(drop=True),
        dimensions=scores.dimensions[scores.dimensions["employee_id"] != employee_id].reset_index(drop=True),
        findings=[*scores.findings, reason])


# ------------------------------------------------------------------------------ structure

def test_sheets_in_order_overview_first_and_active(seed, tmp_path):
    inputs, scores = seed
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings, indicators=inputs.indicators)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == list(SHEETS)
    assert wb.active.title == OVERVIEW_SHEET
    for name in SHEETS:  # a frozen header everywhere
        assert wb[name].freeze_panes is not None, name
    assert CalamineWorkbook.from_path(str(path)).sheet_names == list(SHEETS)


def test_details_exact_header_and_full_precision_values(seed, tmp_path):
    inputs, scores = seed
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings, indicators=inputs.indicators)
    ws = openpyxl.load_workbook(path)[DETAILS_SHEET]
    rows = _rows(ws)
    header = list(rows[0])
    assert header[:len(DETAIL_COLUMNS)] == DETAIL_COLUMNS
    assert header[len(DETAIL_COLUMNS):] == ["achievement_raw", "dimension", "method", "direction", "indicator_name",
                                              "agreement_source", "target_source", "base_source", "stretch_source",
                                              "rating_sources", "original_target", "adjustment"]
    data = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert len(data) == len(scores.details) == 6
    s001 = [r for r in data if r["employee_id"] == "S001"]
    assert [r["indicator_id"] for r in s001] == ["K1", "K2", "K3"]
    for row, ach, weighted in zip(s001, (1.05, 0.8, 1.0), (0.63, 0.24, 0.1), strict=True):
        assert abs(row["achievement"] - ach) < 1e-12
        assert abs(row["weighted_score"] - weighted) < 1e-12
        assert row["period"] == PERIOD
        assert row["base"] is None and row["stretch"] is None  # NaN is an empty cell, never an error
    assert s001[0]["source"].startswith("actuals.xlsx!")
    assert s001[2]["method"] == "pass_fail" and s001[2]["direction"] == "lower"

    cal = _calamine(path, DETAILS_SHEET)
    assert cal[0][:len(DETAIL_COLUMNS)] == DETAIL_COLUMNS
    cal_rows = [dict(zip(cal[0], row, strict=True)) for row in cal[1:]]
    cal_s001 = [r for r in cal_rows if r["employee_id"] == "S001"]
    for row, ach, weighted in zip(cal_s001, (1.05, 0.8, 1.0), (0.63, 0.24, 0.1), strict=True):
        assert abs(row["achievement"] - ach) < 1e-12
        assert abs(row["weighted_score"] - weighted) < 1e-12
        assert row["base"] == "" and row["stretch"] == ""
    # Full precision: what scoring computed comes back bit for bit.
    expected = scores.details.sort_values(["employee_id", "indicator_id"])["weighted_score"].tolist()
    got = [r["weighted_score"] for r in sorted(cal_rows, key=lambda r: (r["employee_id"], r["indicator_id"]))]
    assert got == expected


def test_totals_exact_header_and_values(seed, tmp_path):
    inputs, scores = seed
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    rows = _rows(openpyxl.load_workbook(path)[TOTALS_SHEET])
    header = list(rows[0])
    assert header[:len(TOTAL_COLUMNS)] == TOTAL_COLUMNS
    assert header[len(TOTAL_COLUMNS):] == ["name", "department", "rank", "score_grade"]
    data = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert set(data) == {"S001", "S002"}
    for row in data.values():
        assert abs(row["total"] - 0.97) < 1e-12
        assert row["total_rounded"] == 97.0
        assert row["grade"] == "B"
        assert row["bonus"] == 1.0
        assert row["period"] == PERIOD
        assert row["department"] == "销售部"
        assert row["rank"] == 1
    cal = _calamine(path, TOTALS_SHEET)
    assert cal[0][:len(TOTAL_COLUMNS)] == TOTAL_COLUMNS
    assert cal[1][:6] == ["S001", PERIOD, pytest.approx(0.97, abs=1e-12), 97.0, "B", 1.0]


def test_pandas_reads_the_machine_sheets_by_name(seed, tmp_path):
    inputs, scores = seed
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    details = pd.read_excel(path, sheet_name=DETAILS_SHEET, engine="calamine", dtype={"employee_id": str})
    totals = pd.read_excel(path, sheet_name=TOTALS_SHEET, engine="calamine")
    assert list(details.columns[:len(DETAIL_COLUMNS)]) == DETAIL_COLUMNS
    assert details["weighted_score"].sum() == pytest.approx(scores.details["weighted_score"].sum(), abs=1e-12)
    assert totals.set_index("employee_id")["total"].to_dict() == pytest.approx({"S001": 0.97, "S002": 0.97})


# ------------------------------------------------------------------------------ nobody lost

def test_unscored_employee_in_totals_with_empty_values_and_in_unscored_with_reason(seed, tmp_path):
    inputs, scores = seed
    scores = _with_unscored(scores)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    wb = openpyxl.load_workbook(path)
    rows = _rows(wb[TOTALS_SHEET])
    header = rows[0]
    data = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert set(data) == {"S001", "S002"}
    s002 = data["S002"]
    assert [s002[c] for c in ("total", "total_rounded", "grade", "bonus", "rank")] == [None] * 5
    assert (s002["period"], s002["name"], s002["department"]) == (PERIOD, "李销售", "销售部")
    assert data["S001"]["grade"] == "B"
    cal = {r[0]: r for r in _calamine(path, TOTALS_SHEET)[1:]}
    assert cal["S002"][2:6] == ["", "", "", ""]

    unscored = _rows(wb[UNSCORED_SHEET])
    assert list(unscored[0]) == ["employee_id", "period", "name", "department", "reason_zh", "reason_en", "where",
                                 "rule", "problems"]
    assert len(unscored) == 2
    row = dict(zip(unscored[0], unscored[1], strict=True))
    assert row["employee_id"] == "S002" and row["rule"] == "missing_actual" and row["problems"] == 1
    assert "K2" in row["reason_zh"] and "K2" in row["reason_en"]
    assert row["where"] == "actuals.xlsx!实际值 Actuals!D6"

    # The people sheet lists them after the scored, total and grade empty, with the reason.
    people = _rows(wb[EMPLOYEES_SHEET])
    header_row = next(i for i, r in enumerate(people) if r[1] and str(r[1]).startswith("员工编号"))
    body = people[header_row + 1:]
    assert [r[1] for r in body] == ["S001", "S002"]
    assert body[1][4] is None and body[1][6] is None
    assert "K2" in body[1][-1]
    assert body[0][4] == pytest.approx(0.97) and body[0][6] == "B"

    overview = openpyxl.load_workbook(path, data_only=True)[OVERVIEW_SHEET]
    headline = {r[0]: r[1] for r in _rows(overview) if r[0]}
    assert headline["已评分员工 Employees scored"] == 1
    assert headline["未评分员工 Employees not scored"] == 1


def test_real_unscored_inbox(tmp_path):
    """The inbox route: a text actual makes both employees unscored (needs reader/validate to cope)."""
    folder = builders.seed_000_inbox(tmp_path / "inbox", actual_new_clients="N/A")
    inputs, scores = _score(folder)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings + scores.findings)
    wb = openpyxl.load_workbook(path)
    totals = _rows(wb[TOTALS_SHEET])
    unscored = _rows(wb[UNSCORED_SHEET])
    assert {r[0] for r in totals[1:]} == {"S001", "S002"}
    assert all(r[2] is None and r[4] is None for r in totals[1:])
    assert {r[0] for r in unscored[1:]} == {"S001", "S002"}
    assert all(r[4] for r in unscored[1:])


# ------------------------------------------------------------------------------ text stays text

def test_text_is_never_a_formula_and_ids_stay_strings(seed, tmp_path):
    inputs, scores = seed
    tricky = {
        "S001": "=HYPERLINK(\"http://evil\",\"x\")",
        "S002": "  <r>a & b</r>  ",
    }
    totals = scores.totals.copy()
    totals["name"] = totals["employee_id"].map(tricky)
    details = scores.details.copy()
    details["source"] = "=1+1"
    unscored = pd.DataFrame([{"employee_id": "00123", "period": PERIOD, "name": "+cmd|' /C calc'!A0",
                              "department": "@SUM(A1)", "reason_zh": "=1/0", "reason_en": "-2+3",
                              "where": "http://example.com", "rule": "missing_actual", "problems": 2},
                             {"employee_id": "00124", "period": PERIOD, "name": "_x0041_ \x07 tab\t",
                              "department": "", "reason_zh": "", "reason_en": "", "where": "", "rule": "x",
                              "problems": 0}])
    scores = dataclasses.replace(scores, totals=totals, details=details, unscored=unscored)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    wb = openpyxl.load_workbook(path)
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "e", (sheet.title, cell.coordinate)
    machine = wb[TOTALS_SHEET]
    by_id = {row[0].value: row for row in machine.iter_rows(min_row=2)}
    assert by_id["S001"][6].value == tricky["S001"] and by_id["S001"][6].data_type == "s"
    assert by_id["S002"][6].value == tricky["S002"] and by_id["S002"][6].data_type == "s"
    assert by_id["00123"][0].data_type == "s"  # a numeric-looking ID stays a string
    details_sheet = wb[DETAILS_SHEET]
    assert details_sheet["K2"].value == "=1+1" and details_sheet["K2"].data_type == "s"
    un = wb[UNSCORED_SHEET]
    assert [c.value for c in un[2]] == ["00123", PERIOD, "+cmd|' /C calc'!A0", "@SUM(A1)", "=1/0", "-2+3",
                                        "http://example.com", "missing_actual", 2]
    assert all(c.data_type == "s" for c in un[2][:8])
    assert not wb[UNSCORED_SHEET]._hyperlinks
    people = {row[1].value: row for row in wb[EMPLOYEES_SHEET].iter_rows() if row[1].value in tricky}
    assert people["S001"][2].value == tricky["S001"] and people["S001"][2].data_type == "s"
    cal = {r[0]: r for r in _calamine(path, TOTALS_SHEET)[1:]}
    assert cal["S002"][6] == tricky["S002"]
    assert cal["00123"][0] == "00123"
    # Control characters and `_xHHHH_` look-alikes are escaped the OOXML way (as Excel and
    # xlsxwriter do); calamine decodes them back exactly (openpyxl leaves inline escapes as is).
    assert cal["00124"][6] == "_x0041_ \x07 tab\t"


# ------------------------------------------------------------------------------ formulas and caches

def _totals_grades(path: Path) -> tuple[list[str], list[str]]:
    rows = _rows(openpyxl.load_workbook(path)[TOTALS_SHEET])
    grade, dept = rows[0].index("grade"), rows[0].index("department")
    return [r[grade] for r in rows[1:]], [r[dept] for r in rows[1:]]


def test_cached_countif_values_equal_the_real_counts(seed, tmp_path):
    inputs, scores = seed
    scores = _with_unscored(scores)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    grades, _ = _totals_grades(path)
    formulas_ws = openpyxl.load_workbook(path)[OVERVIEW_SHEET]
    cached_ws = openpyxl.load_workbook(path, data_only=True)[OVERVIEW_SHEET]
    seen = 0
    for row in formulas_ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("=COUNTIF("):
                grade = cell.value.split(',"=')[1].rstrip('")')
                assert cached_ws[cell.coordinate].value == grades.count(grade), cell.coordinate
                seen += 1
    assert seen == len(POLICY.grades)
    # calamine reads the same cached numbers.
    cal = _calamine(path, OVERVIEW_SHEET)
    grade_rows = {r[0]: r for r in cal if r and r[0] in {g.grade for g in POLICY.grades}}
    assert {g: grade_rows[g][3] for g in grade_rows} == {g.grade: grades.count(g.grade) for g in POLICY.grades}
    assert grade_rows["B"][4] == pytest.approx(1.0)  # share of the scored


def test_cached_values_agree_with_a_recalculation(seed, tmp_path):
    formulas = pytest.importorskip("formulas")
    inputs, scores = seed
    scores = _with_unscored(scores)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    solution = formulas.ExcelModel().loads(str(path)).finish().calculate()
    cached = openpyxl.load_workbook(path, data_only=True)[OVERVIEW_SHEET]
    formula_cells = openpyxl.load_workbook(path)[OVERVIEW_SHEET]
    checked = 0
    for key, value in solution.items():
        sheet, _, ref = key.rpartition("!")
        if OVERVIEW_SHEET.upper() not in sheet.upper() or ":" in ref:
            continue
        if not (isinstance(formula_cells[ref].value, str) and formula_cells[ref].value.startswith("=")):
            continue
        computed = value.value[0][0] if hasattr(value, "value") else value
        assert float(computed) == pytest.approx(cached[ref].value, abs=1e-12), (ref, formula_cells[ref].value)
        checked += 1
    assert checked >= 3 + 2 * len(POLICY.grades)


def test_department_rollup(seed, tmp_path):
    inputs, scores = seed
    scores = _with_unscored(scores)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    rows = _rows(openpyxl.load_workbook(path, data_only=True)[OVERVIEW_SHEET])
    sales = next(r for r in rows if r[0] == "销售部")
    grades = [g.grade for g in POLICY.grades]
    assert sales[1:4] == (1, 1, pytest.approx(0.97))
    assert dict(zip(grades, sales[4:4 + len(grades)], strict=True)) == {g: int(g == "B") for g in grades}
    total = next(r for r in rows if r[0] == "合计 Total")
    assert total[1:3] == (1, 1)


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_rollup_formulas_recalculate_to_the_cached_values_with_awkward_names(seed, tmp_path):
    """Departments with wildcards, operators, quotes, case variants and none at all."""
    inputs, scores = seed
    departments = ["Sales*", "sales*", "a?b", "~x", 'q"uote', None, "<5", "=x"]
    grades = ["B", "A", "C", "D", "S", "B", "A", "C"]
    rows = []
    for i, (department, grade) in enumerate(zip(departments, grades, strict=True)):
        row = scores.totals.iloc[0].to_dict()
        row.update(employee_id=f"T{i}", department=department, grade=grade, total=0.5 + i / 10, rank=1)
        rows.append(row)
    unscored = pd.DataFrame([{"employee_id": f"U{i}", "period": PERIOD, "name": "n", "department": d,
                              "reason_zh": "r", "reason_en": "r", "where": "", "rule": "x", "problems": 1}
                             for i, d in enumerate(["Sales*", "SALES*", None, "zzz"])])
    scores = dataclasses.replace(scores, totals=pd.DataFrame(rows), unscored=unscored)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    formulas_ws = openpyxl.load_workbook(path)[OVERVIEW_SHEET]
    cached_ws = openpyxl.load_workbook(path, data_only=True)[OVERVIEW_SHEET]
    recalculated = recalculated_libreoffice(path)
    checked = 0
    for row in formulas_ws.iter_rows():
        for cell in row:
            if cell.data_type == "f":
                cached = cached_ws[cell.coordinate].value
                assert recalculated[(OVERVIEW_SHEET, cell.coordinate)] == pytest.approx(cached, abs=1e-12), (
                    cell.coordinate, cell.value)
                checked += 1
    assert checked > 50
    by_name = {r[0]: r for r in _rows(cached_ws) if r[0]}
    assert by_name["SALES*"][1:3] == (2, 2)  # Excel compares case-insensitively: one row
    assert by_name["(未填部门) (no department)"][1:3] == (1, 1)
    assert by_name["zzz"][1:4] == (0, 1, "—")


# ------------------------------------------------------------------------------ determinism

def test_identical_bytes_for_identical_input(seed, tmp_path):
    inputs, scores = seed
    a = _write(tmp_path / "a.xlsx", scores, inputs.findings, indicators=inputs.indicators)
    time.sleep(1.1)
    b = _write(tmp_path / "b.xlsx", scores, inputs.findings, indicators=inputs.indicators)
    assert a.read_bytes() == b.read_bytes()
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind
    with zipfile.ZipFile(a) as z:
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in z.infolist())


# ------------------------------------------------------------------------------ the other sheets

def test_warnings_lists_every_finding_sorted_and_adds_scoring_findings(seed, tmp_path):
    inputs, scores = seed
    extra = finding("missing_actual", employee_id="S009", period=PERIOD, indicator="K1", file="b.xlsx",
                    sheet="实际值 Actuals", cell="D9")
    error = finding("not_a_number", file="a.xlsx", sheet="实际值 Actuals", cell="D3", column="实际值 Actual",
                    value="N/A")
    scores = dataclasses.replace(scores, findings=[*scores.findings, extra])
    given = [error, *inputs.findings]
    path = _write(tmp_path / "summary.xlsx", scores, given)
    rows = _rows(openpyxl.load_workbook(path)[WARNINGS_SHEET])
    top = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith("级别"))
    listed = rows[top + 1:]
    expected = sort_findings([*given, extra])
    assert [r[1] for r in listed] == [f.rule for f in expected]
    assert [r[7] for r in listed] == [f.message_zh for f in expected]
    assert [r[8] for r in listed] == [f.message_en for f in expected]
    error_row = next(r for r in listed if r[1] == "not_a_number")
    assert error_row[:5] == ("错误 error", "not_a_number", "a.xlsx", "实际值 Actuals", "D3")
    overview = {r[0]: r[1] for r in _rows(openpyxl.load_workbook(path)[OVERVIEW_SHEET]) if r[0]}
    assert overview["错误 Errors"] == 2 and overview["警告 Warnings"] == len(expected) - 2


def test_cascade_flags_targets_that_do_not_add_up(seed, tmp_path):
    inputs, scores = seed
    cascade = pd.DataFrame([
        {"department": "销售部", "period": PERIOD, "indicator_id": "K1", "name": "销售额", "department_target": 500.0,
         "individual_targets": 400.0, "coverage": 0.8, "actual": 420.0, "department_achievement": 0.84,
         "employees": 2},
        {"department": "销售部", "period": PERIOD, "indicator_id": "K2", "name": "新客户数", "department_target": 30.0,
         "individual_targets": 30.0, "coverage": 1.0, "actual": 24.0, "department_achievement": 0.8,
         "employees": 2},
    ])
    scores = dataclasses.replace(scores, cascade=cascade)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings, indicators=inputs.indicators)
    ws = openpyxl.load_workbook(path)[CASCADE_SHEET]
    rows = _rows(ws)
    top = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith("部门\n"))
    k1, k2 = rows[top + 1], rows[top + 2]
    assert k1[:10] == ("销售部", PERIOD, "K1", "销售额", 500, 400, 0.8, 420, 0.84, 2)
    assert "低于部门目标" in k1[10] and "fall short" in k1[10]
    assert k2[10] is None
    coverage = ws.cell(row=top + 2, column=7)
    assert coverage.number_format.endswith("%")


def test_calibration_states_thresholds_and_flags_in_words(seed, tmp_path):
    inputs, scores = seed
    calibration = pd.DataFrame([
        {"indicator_id": "K1", "name": "销售额", "employees": 10, "reached": 10, "share": 1.0, "flag": "too_easy"},
        {"indicator_id": "K2", "name": "新客户数", "employees": 10, "reached": 0, "share": 0.0, "flag": "too_hard"},
        {"indicator_id": "K3", "name": "客户投诉率", "employees": 10, "reached": 5, "share": 0.5, "flag": ""},
        {"indicator_id": "K4", "name": "小指标", "employees": 2, "reached": 2, "share": 1.0, "flag": ""},
    ])
    scores = dataclasses.replace(scores, calibration=calibration)
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    rows = _rows(openpyxl.load_workbook(path)[CALIBRATION_SHEET])
    text = " ".join(str(v) for r in rows[:4] for v in r if v)
    assert f"{POLICY.too_easy:.0%}" in text and f"{POLICY.too_hard:.0%}" in text
    top = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith("指标编号"))
    flags = {r[0]: r[5] for r in rows[top + 1:]}
    assert flags["K1"] == "目标偏低 target too low"
    assert flags["K2"] == "目标偏高 target too high"
    assert "目标" not in flags["K3"]
    assert "5" in flags["K4"]


def test_english_only_labels(seed, tmp_path):
    inputs, scores = seed
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings, lang="en")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == list(SHEETS)  # sheet names are fixed
    overview = _rows(wb[OVERVIEW_SHEET])
    assert overview[0][0] == "Company KPI overview"
    assert any(r[0] == "Employees scored" for r in overview)
    people = _rows(wb[EMPLOYEES_SHEET])
    assert ("Department", "Employee ID", "Name") in [r[:3] for r in people]
    # Machine sheets do not change with the language.
    assert list(_rows(wb[TOTALS_SHEET])[0][:len(TOTAL_COLUMNS)]) == TOTAL_COLUMNS


def test_formats_and_print_setup(seed, tmp_path):
    inputs, scores = seed
    path = _write(tmp_path / "summary.xlsx", scores, inputs.findings)
    wb = openpyxl.load_workbook(path)
    totals = wb[TOTALS_SHEET]
    assert totals["C2"].number_format == "0.00%" and totals["D2"].number_format == "0.00"
    details = wb[DETAILS_SHEET]
    assert details["D2"].number_format == "0.00%" and details["I2"].number_format == "0.00%"
    people = wb[EMPLOYEES_SHEET]
    assert people["E5"].number_format == "0.00%" and people["F5"].number_format.endswith("0.00")
    assert people.conditional_formatting  # red / amber / green on the total
    assert people.auto_filter.ref
    for name in (OVERVIEW_SHEET, EMPLOYEES_SHEET, CASCADE_SHEET, CALIBRATION_SHEET, WARNINGS_SHEET):
        ws = wb[name]
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9, name
        assert ws.sheet_properties.pageSetUpPr.fitToPage, name
    assert len(wb[OVERVIEW_SHEET]._charts) == 1


def test_nobody_scored_and_nothing_else(seed, tmp_path):
    inputs, scores = seed
    empty = dataclasses.replace(
        scores, details=scores.details.iloc[0:0], totals=scores.totals.iloc[0:0],
        dimensions=scores.dimensions.iloc[0:0], calibration=scores.calibration.iloc[0:0],
        cascade=scores.cascade.iloc[0:0], findings=[],
        unscored=pd.DataFrame(columns=["employee_id", "period", "name", "department", "reason_zh", "reason_en",
                                       "where", "rule", "problems"]))
    path = _write(tmp_path / "summary.xlsx", empty, [])
    wb = openpyxl.load_workbook(path, data_only=True)
    assert list(_rows(wb[DETAILS_SHEET])[0][:len(DETAIL_COLUMNS)]) == DETAIL_COLUMNS
    assert len(_rows(wb[DETAILS_SHEET])) == 1 and len(_rows(wb[TOTALS_SHEET])) == 1
    headline = {r[0]: r[1] for r in _rows(wb[OVERVIEW_SHEET]) if r[0]}
    assert headline["已评分员工 Employees scored"] == 0 and headline["未评分员工 Employees not scored"] == 0


# ------------------------------------------------------------------------------ scale

def _large(employees: int, indicators: int = 8) -> Scores:
    rng = np.random.default_rng(7)
    ids = np.array([f"E{i:06d}" for i in range(employees)], dtype=object)
    n = employees * indicators
    ach = rng.uniform(0.5, 1.3, n)
    weight = np.full(n, 1 / indicators)
    details = pd.DataFrame({
        "employee_id": np.repeat(ids, indicators), "period": PERIOD,
        "indicator_id": np.tile(np.array([f"K{j}" for j in range(indicators)], dtype=object), employees),
        "weight": weight, "base": np.nan, "target": 100.0, "stretch": np.nan, "actual": ach * 100,
        "achievement": ach, "weighted_score": ach * weight,
        "source": [f"actuals.xlsx!实际值 Actuals!D{i + 2}" for i in range(n)], "achievement_raw": ach,
        "dimension": "performance", "method": "ratio", "direction": "higher", "name": "销售额"})
    total = details.groupby("employee_id")["weighted_score"].sum()
    totals = pd.DataFrame({"employee_id": total.index, "period": PERIOD, "total": total.to_numpy(),
                           "total_rounded": np.round(total.to_numpy() * 100, 2)})
    totals["grade"] = np.where(totals["total_rounded"] >= 90, "B", "C")
    totals["bonus"] = np.where(totals["grade"] == "B", 1.0, 0.8)
    totals["score_grade"] = totals["grade"]
    totals["name"] = [f"员工{i}" for i in range(employees)]
    totals["department"] = [f"部门{i % 20:02d}" for i in range(employees)]
    totals["rank"] = totals.groupby("department")["total_rounded"].rank(method="min", ascending=False).astype(int)
    return Scores(period=PERIOD, details=details, totals=totals,
                  unscored=pd.DataFrame(columns=["employee_id", "period", "name", "department", "reason_zh",
                                                 "reason_en", "where", "rule", "problems"]),
                  ratings=pd.DataFrame(), calibration=pd.DataFrame(), cascade=pd.DataFrame(),
                  dimensions=pd.DataFrame({"employee_id": total.index, "performance": total.to_numpy(),
                                           "ability": 0.0, "attitude": 0.0}))


def test_80000_detail_rows(tmp_path):
    """A 10,000-employee company's machine sheets, whole (how fast: benchmarks/timings.py)."""
    scores = _large(10_000)
    path = _write(tmp_path / "big.xlsx", scores)
    cal = CalamineWorkbook.from_path(str(path))
    details = cal.get_sheet_by_name(DETAILS_SHEET).to_python()
    assert len(details) == 80_001
    last = details[-1]
    assert last[0] == "E009999" and last[2] == "K7"
    assert last[9] == scores.details["weighted_score"].iloc[-1]
    assert not any(isinstance(v, float) and math.isnan(v) for row in details[1:50] for v in row)
    assert len(cal.get_sheet_by_name(TOTALS_SHEET).to_python()) == 10_001
