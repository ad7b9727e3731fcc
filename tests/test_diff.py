"""kpi diff: planted changes are reported exactly, nothing else, and bad files never crash."""

from __future__ import annotations

import datetime as dt
import json
import zipfile

import openpyxl
import pytest
import xlsxwriter
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.cli import diff_command
from pipeline.diff import (
    CellChange,
    DiffInputError,
    diff_workbooks,
    format_changes,
    load_book,
    normalize_formula,
    shown_as,
    values_equal,
    write_diff_report,
)

SHEET = "实际值 Actuals"
HEADER = ["员工编号\nEmployee ID", "考核周期\nPeriod", "指标编号\nIndicator ID", "实际值\nActual",
          "目标值\nTarget", "达成率\nAchievement"]


def write_xlsx(path, sheets: dict[str, dict]) -> str:
    """Write a workbook with xlsxwriter. Each sheet maps "B4" to a value, or to ("=F", cached)
    for a formula with its cached value (as Excel would save it). Strings go in as strings."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    for name, cells in sheets.items():
        ws = wb.add_worksheet(name)
        for ref, value in cells.items():
            if isinstance(value, tuple):
                ws.write_formula(ref, value[0], None, value[1])
            elif isinstance(value, str):
                ws.write_string(ref, value)
            elif isinstance(value, dt.datetime):
                ws.write_datetime(ref, value, wb.add_format({"num_format": "yyyy-mm-dd"}))
            else:
                ws.write(ref, value)
    wb.close()
    return str(path)


def actuals_sheet(rows: list[tuple[str, int, int]], title: bool = True) -> dict:
    """A sheet like our actuals template: title row, bilingual header, data rows whose
    achievement is a per-row formula (so an inserted row shifts the formulas below it)."""
    cells: dict = {}
    if title:
        cells["A1"] = "2026年10月 实际值 / Actuals October 2026"
    header_row = 2 if title else 1
    for i, text in enumerate(HEADER):
        cells[f"{'ABCDEF'[i]}{header_row}"] = text
    for offset, (emp, actual, target) in enumerate(rows, start=1):
        r = header_row + offset
        cells.update({f"A{r}": emp, f"B{r}": "2026-10", f"C{r}": "KPI01", f"D{r}": actual,
                      f"E{r}": target, f"F{r}": (f"=D{r}/E{r}", actual / target)})
    return cells


BASE_ROWS = [(f"E{i:03d}", 10 * i, 100) for i in range(1, 9)]


@pytest.fixture
def base(tmp_path):
    return write_xlsx(tmp_path / "a.xlsx", {SHEET: actuals_sheet(BASE_ROWS),
                                            "说明 Notes": {"A1": "说明", "B2": 4}})


def run_cli(*args):
    return CliRunner().invoke(diff_command, [str(a) for a in args])


# ---------------------------------------------------------------------------------------------
# identical, values, formulas


def test_identical_workbooks_have_no_changes(tmp_path, base):
    copy = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(BASE_ROWS),
                                            "说明 Notes": {"A1": "说明", "B2": 4}})
    assert diff_workbooks(base, copy) == []
    result = run_cli(base, copy)
    assert result.exit_code == 0
    assert "identical" in result.output


def test_planted_value_change_is_the_only_change(tmp_path, base):
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(BASE_ROWS),
                                             "说明 Notes": {"A1": "说明", "B2": 14}})
    assert diff_workbooks(base, other) == [CellChange("说明 Notes", "B2", "value", 4, 14)]
    result = run_cli(base, other)
    assert result.exit_code == 1
    assert "'说明 Notes'!B2" in result.output and "4 → 14" in result.output


def test_formula_changed_same_cached_value_is_one_formula_change(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"S": {"A1": 2, "A2": 2, "A3": ("=A1+A2", 4)}})
    b = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": 2, "A2": 2, "A3": ("=A1*A2", 4)}})
    assert diff_workbooks(a, b) == [CellChange("S", "A3", "formula", "=A1+A2", "=A1*A2")]


def test_formula_and_cached_value_changed_gives_two_entries_formula_first(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"S": {"A1": 2, "A2": 3, "A3": ("=A1+A2", 5)}})
    b = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": 2, "A2": 3, "A3": ("=A1*A2", 6)}})
    assert diff_workbooks(a, b) == [
        CellChange("S", "A3", "formula", "=A1+A2", "=A1*A2"),
        CellChange("S", "A3", "value", 5, 6),
    ]


def test_same_formula_new_cached_value_is_a_value_change(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"S": {"A1": 2, "A3": ("=A1*10", 20)}})
    b = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": 3, "A3": ("=A1*10", 30)}})
    assert diff_workbooks(a, b) == [CellChange("S", "A1", "value", 2, 3),
                                    CellChange("S", "A3", "value", 20, 30)]


def test_formula_replaced_by_its_value_is_a_formula_change(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"S": {"A1": 2, "A2": ("=A1*2", 4)}})
    b = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": 2, "A2": 4}})
    assert diff_workbooks(a, b) == [CellChange("S", "A2", "formula", "=A1*2", 4)]


def test_formula_without_cached_value_compares_by_formula_only(tmp_path):
    # openpyxl writes formulas without cached values, like programs that never calculate.
    paths = []
    for name, formula in (("a", "=SUM(A1:A2)"), ("b", "=SUM(A1:A2)")):
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "S"
        ws["A1"], ws["A2"], ws["A3"] = 1, 2, formula
        wb.save(tmp_path / f"{name}.xlsx")
        paths.append(tmp_path / f"{name}.xlsx")
    assert diff_workbooks(*paths) == []


def test_formula_text_ignores_leading_equals_and_whitespace_only():
    assert normalize_formula("= SUM( A1 : A3 )") == normalize_formula("=SUM(A1:A3)")
    assert normalize_formula('=A1&" x "') != normalize_formula('=A1&"x"')  # inside quotes counts
    assert normalize_formula("='My Sheet'!A1") != normalize_formula("='MySheet'!A1")
    assert normalize_formula("=A1:B5 B2:C3") == "A1:B5 B2:C3"  # the intersection space stays
    assert normalize_formula("=a1") != normalize_formula("=A1")


def test_value_equality_rules():
    assert values_equal(4, 4.0)
    assert values_equal("", None)
    assert not values_equal(True, 1)
    assert not values_equal("4", 4)
    assert not values_equal("abc", "abc ")
    assert values_equal(dt.date(2026, 10, 1), dt.datetime(2026, 10, 1))
    assert values_equal(1.0, 1.004, tolerance=0.005)
    assert not values_equal(1.0, 1.006, tolerance=0.005)


def test_tolerance_option(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"S": {"A1": 0.9700, "A2": 5}})
    b = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": 0.9704, "A2": 5.0}})
    assert diff_workbooks(a, b) == [CellChange("S", "A1", "value", 0.97, 0.9704)]
    assert diff_workbooks(a, b, tolerance=0.001) == []
    assert run_cli(a, b, "--tolerance", "0.001").exit_code == 0
    assert run_cli(a, b).exit_code == 1


def test_blank_versus_filled_cell_is_a_value_change_with_null(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"S": {"A1": "x"}})
    b = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": "x", "B7": 3, "C2": ""}})
    assert diff_workbooks(a, b) == [CellChange("S", "B7", "value", None, 3)]


def test_dates_compare_as_datetimes(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"S": {"A1": dt.datetime(2026, 10, 1)}})
    b = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": dt.datetime(2026, 11, 1)}})
    same = write_xlsx(tmp_path / "c.xlsx", {"S": {"A1": dt.datetime(2026, 10, 1)}})
    assert diff_workbooks(a, same) == []
    changes = diff_workbooks(a, b)
    assert changes == [CellChange("S", "A1", "value", dt.datetime(2026, 10, 1),
                                  dt.datetime(2026, 11, 1))]
    assert changes[0].as_json()["new"] == "2026-11-01T00:00:00"


# ---------------------------------------------------------------------------------------------
# sheets


def test_added_and_removed_sheets(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"One": {"A1": 1}, "Two": {"A1": 2}})
    b = write_xlsx(tmp_path / "b.xlsx", {"One": {"A1": 1}, "Three": {"A1": 3}})
    assert diff_workbooks(a, b) == [
        CellChange("Two", "", "removed", "Two", None),
        CellChange("Three", "", "added", None, "Three"),
    ]


def test_renamed_sheet_is_removed_plus_added_without_cell_changes(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"Data": {"A1": 1, "B2": 2}, "Old name": {"A1": 7}})
    b = write_xlsx(tmp_path / "b.xlsx", {"Data": {"A1": 1, "B2": 2}, "New name": {"A1": 7}})
    assert diff_workbooks(a, b) == [
        CellChange("Old name", "", "removed", "Old name", None),
        CellChange("New name", "", "added", None, "New name"),
    ]


def test_hidden_sheets_are_compared(tmp_path):
    paths = []
    for name, version in (("a", "1.0"), ("b", "1.1")):
        wb = openpyxl.Workbook()
        wb.active.title = "Data"
        meta = wb.create_sheet("_meta")
        meta["A1"], meta["B1"] = "version", version
        meta.sheet_state = "hidden"
        wb.save(tmp_path / f"{name}.xlsx")
        paths.append(tmp_path / f"{name}.xlsx")
    assert diff_workbooks(*paths) == [CellChange("_meta", "B1", "value", "1.0", "1.1")]


def test_changes_follow_sheet_order_then_row_major(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"Z": {"B2": 1, "A3": 1}, "A": {"A1": 1}})
    b = write_xlsx(tmp_path / "b.xlsx", {"Z": {"B2": 2, "A3": 2}, "A": {"A1": 2}, "N": {}})
    assert [(c.sheet, c.cell) for c in diff_workbooks(a, b)] == [
        ("Z", "B2"), ("Z", "A3"), ("A", "A1"), ("N", "")]


# ---------------------------------------------------------------------------------------------
# rows matched by key


def test_row_inserted_in_the_middle_by_key_is_one_added_row(tmp_path, base):
    rows = BASE_ROWS[:4] + [("E099", 55, 100)] + BASE_ROWS[4:]
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(rows),
                                             "说明 Notes": {"A1": "说明", "B2": 4}})
    # The template's key columns are found by themselves: no --by-key needed.
    changes = diff_workbooks(base, other)
    # The formulas below the new row moved (=D7/E7 became =D8/E8): not a change.
    assert changes == [CellChange(SHEET, "A7:F7", "added", None,
                                  ["E099", "2026-10", "KPI01", 55, 100, 0.55])]
    assert diff_workbooks(base, other, by_key=["employee_id", "indicator_id", "period"]) == changes
    # By position, every row below the insertion differs.
    cascade = diff_workbooks(base, other, by_position=True)
    assert len(cascade) > 10
    assert {c.kind for c in cascade} == {"value", "formula"}
    keyed = run_cli(base, other, "--lang", "en")
    assert keyed.exit_code == 1
    assert keyed.stdout.splitlines()[-1] == "1 change: value 0, formula 0, rows added 1, rows removed 0"
    assert "Rows matched by key: '实际值 Actuals' by Employee ID + Period + Indicator ID" in keyed.stderr
    by_position = run_cli(base, other, "--by-position", "--json")
    assert by_position.exit_code == 1 and len(json.loads(by_position.stdout)) == len(cascade)


def test_appended_row_is_one_added_row_not_cell_changes(tmp_path, base):
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(BASE_ROWS + [("E009", 90, 100)]),
                                             "说明 Notes": {"A1": "说明", "B2": 4}})
    assert diff_workbooks(base, other) == [
        CellChange(SHEET, "A11:F11", "added", None, ["E009", "2026-10", "KPI01", 90, 100, 0.9])]
    result = run_cli(base, other)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("'实际值 Actuals'!A11:F11") and "新增行 row added" in lines[0]
    assert lines[-1] == ("共 1 处差异:值 0,公式 0,新增行 1,删除行 0 / "
                         "1 change: value 0, formula 0, rows added 1, rows removed 0")


def test_removed_row_is_one_removed_row(tmp_path, base):
    rows = [r for r in BASE_ROWS if r[0] != "E005"]
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(rows),
                                             "说明 Notes": {"A1": "说明", "B2": 4}})
    changes = diff_workbooks(base, other)
    assert changes == [CellChange(SHEET, "A7:F7", "removed",
                                  ["E005", "2026-10", "KPI01", 50, 100, 0.5], None)]
    text = format_changes(changes, "en")
    assert text.splitlines() == ["'实际值 Actuals'!A7:F7  row removed  E005 | 2026-10 | KPI01 | 50 | 100 | 0.5 →",
                                 "1 change: value 0, formula 0, rows added 0, rows removed 1"]


def test_by_key_reports_removed_rows_and_changed_cells_at_b_reference(tmp_path, base):
    rows = [r for r in BASE_ROWS if r[0] != "E002"]
    rows = [(e, 999 if e == "E006" else a, t) for e, a, t in rows]
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(rows),
                                             "说明 Notes": {"A1": "说明", "B2": 4}})
    changes = diff_workbooks(base, other, by_key=["员工编号"])
    assert changes == [
        CellChange(SHEET, "A4:F4", "removed", ["E002", "2026-10", "KPI01", 20, 100, 0.2], None),
        CellChange(SHEET, "D7", "value", 60, 999),  # E006 is row 8 in A, row 7 in B
        CellChange(SHEET, "F7", "value", 0.6, 9.99),
    ]


def test_by_key_accepts_short_names_and_all(tmp_path, base):
    rows = BASE_ROWS + [("E100", 1, 100)]
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(rows),
                                             "说明 Notes": {"A1": "说明", "B2": 4}})
    expected = [CellChange(SHEET, "A11:F11", "added", None,
                           ["E100", "2026-10", "KPI01", 1, 100, 0.01])]
    assert diff_workbooks(base, other, by_key=["employee"]) == expected
    assert diff_workbooks(base, other, by_key=["all"]) == expected
    assert diff_workbooks(base, other, by_key=["employee_id,period"]) == expected


def test_by_key_falls_back_to_cells_on_sheets_without_key_columns(tmp_path):
    a = write_xlsx(tmp_path / "a.xlsx", {"Free": {"A1": "x", "B1": "y", "A2": 1, "A3": 2}})
    b = write_xlsx(tmp_path / "b.xlsx", {"Free": {"A1": "x", "B1": "y", "A2": 9, "A3": 1,
                                                  "A4": 2}})
    assert diff_workbooks(a, b, by_key=["employee_id"]) == diff_workbooks(a, b)
    assert len(diff_workbooks(a, b, by_key=["employee_id"])) == 3


def test_by_key_cli(tmp_path, base):
    rows = BASE_ROWS[:2] + [("E050", 50, 100)] + BASE_ROWS[2:]
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(rows),
                                             "说明 Notes": {"A1": "说明", "B2": 4}})
    result = run_cli(base, other, "--by-key", "employee_id", "--by-key", "period", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"sheet": SHEET, "cell": "A5:F5", "kind": "added", "old": None,
         "new": ["E050", "2026-10", "KPI01", 50, 100, 0.5]}]


# ---------------------------------------------------------------------------------------------
# output formats


@pytest.fixture
def planted(tmp_path, base):
    """B = A with a planted value, a planted formula (same result) and an added sheet."""
    sheet = actuals_sheet(BASE_ROWS)
    sheet["D5"] = 31  # E003's actual (formula F5 keeps its cached 0.3: as saved by a stale file)
    sheet["F6"] = ("=ROUND(D6/E6,4)", 0.4)
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: sheet, "说明 Notes": {"A1": "说明", "B2": 4},
                                             "新增 Added": {"A1": "=cmd|' /C calc'!A0"}})
    expected = [
        {"sheet": SHEET, "cell": "D5", "kind": "value", "old": 30, "new": 31},
        {"sheet": SHEET, "cell": "F6", "kind": "formula", "old": "=D6/E6",
         "new": "=ROUND(D6/E6,4)"},
        {"sheet": "新增 Added", "cell": "", "kind": "added", "old": None, "new": "新增 Added"},
    ]
    return base, other, expected


def test_json_output_is_exactly_the_planted_list(planted):
    a, b, expected = planted
    result = run_cli(a, b, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == expected
    assert [c.as_json() for c in diff_workbooks(a, b)] == expected


def test_screen_table_lists_cells_and_counts(planted):
    a, b, _ = planted
    text = format_changes(diff_workbooks(a, b), "en")
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("'实际值 Actuals'!D5") and "30 → 31" in lines[0]
    assert lines[0].endswith("[E003 · 2026-10 · KPI01]")  # the row's key, rows matched by key
    assert "formula" in lines[1] and "'=ROUND(D6/E6,4)'" in lines[1]
    assert lines[2].startswith("[新增 Added]") and "sheet added" in lines[2]
    assert lines[3] == "3 changes: value 1, formula 1, rows added 0, rows removed 0, sheets added 1"
    assert format_changes([], "en") == "The workbooks are identical."
    assert format_changes([]) == "两个工作簿相同。 / The workbooks are identical."


def test_xlsx_report_has_changes_and_side_by_side_sheets(tmp_path, planted):
    a, b, expected = planted
    out = tmp_path / "report.xlsx"
    result = run_cli(a, b, "--out", out, "--lang", "en")
    assert result.exit_code == 1
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Changes", SHEET, "新增 Added"]
    rows = list(wb["Changes"].iter_rows(values_only=True))
    assert rows[0] == ("Sheet", "Cell", "Row (key)", "Kind", "Old (A)", "New (B)")
    assert rows[1:] == [(SHEET, "D5", "E003 · 2026-10 · KPI01", "value", 30, 31),
                        (SHEET, "F6", "E004 · 2026-10 · KPI01", "formula", "=D6/E6", "=ROUND(D6/E6,4)"),
                        ("新增 Added", None, None, "sheet added", None, "新增 Added")]
    side = wb[SHEET]
    # Row r sits at r + 2 (title row, column-letters row); column 1 holds row numbers, then A's
    # columns, a gap column, and B's columns.
    a_cell, b_cell = side.cell(7, 5), side.cell(7, 5 + 6 + 1)
    assert (a_cell.value, b_cell.value) == (30, 31)
    assert a_cell.fill.fgColor.rgb.endswith("FFEB9C") and b_cell.fill.fgColor.rgb.endswith("FFEB9C")
    assert side.cell(7, 3).value == "2026-10"
    assert side.cell(7, 3).fill.fgColor.rgb in (None, "00000000")  # unchanged: no fill
    # Formulas are shown as text, never written as formulas; hostile text stays text.
    assert side.cell(8, 14).value == "=ROUND(D6/E6,4)" and side.cell(8, 14).data_type == "s"
    assert side.cell(8, 7).value == "=D6/E6"
    added = wb["新增 Added"]
    hostile = [c for row in added.iter_rows() for c in row if c.value == "=cmd|' /C calc'!A0"]
    assert hostile and all(c.data_type == "s" for c in hostile)


def test_xlsx_report_is_deterministic(tmp_path, planted):
    a, b, _ = planted
    changes = diff_workbooks(a, b)
    write_diff_report(tmp_path / "r1.xlsx", a, b, changes)
    write_diff_report(tmp_path / "r2.xlsx", a, b, changes)
    assert (tmp_path / "r1.xlsx").read_bytes() == (tmp_path / "r2.xlsx").read_bytes()
    assert openpyxl.load_workbook(tmp_path / "r1.xlsx").sheetnames[0] == "差异 Changes"


def test_xlsx_report_by_key_highlights_rows(tmp_path, base):
    rows = BASE_ROWS[:4] + [("E099", 55, 100)] + BASE_ROWS[4:]
    rows = [r for r in rows if r[0] != "E002"]
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(rows),
                                             "说明 Notes": {"A1": "说明", "B2": 4}})
    out = tmp_path / "r.xlsx"
    assert run_cli(base, other, "--out", out).exit_code == 1
    side = openpyxl.load_workbook(out)[SHEET]
    start_b = 1 + 6 + 1 + 1  # 1-based column of B's column A
    lines = {side.cell(r, 2).value: r for r in range(3, side.max_row + 1) if side.cell(r, 2).value}
    lines_b = {side.cell(r, start_b).value: r for r in range(3, side.max_row + 1) if side.cell(r, start_b).value}
    # A matched row sits on one line; a row one side lacks faces a blank row on the other.
    assert lines["E006"] == lines_b["E006"]
    removed, added = lines["E002"], lines_b["E099"]
    assert side.cell(removed, start_b).value is None and side.cell(added, 2).value is None
    assert all(side.cell(removed, 2 + i).fill.fgColor.rgb.endswith("FFC7CE") for i in range(6))  # red
    assert all(side.cell(added, start_b + i).fill.fgColor.rgb.endswith("C6EFCE") for i in range(6))  # green
    assert side.cell(lines["E006"], 2).fill.fgColor.rgb in (None, "00000000")  # unchanged: no fill


def test_xlsx_report_prints_landscape_one_page_wide_old_beside_new(tmp_path, base):
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(BASE_ROWS),
                                             "说明 Notes": {"A1": "说明", "B2": 5}})
    out = tmp_path / "r.xlsx"
    assert run_cli(base, other, "--out", out).exit_code == 1
    wb = openpyxl.load_workbook(out)
    changes = wb["差异 Changes"]
    header = [c.value for c in changes[1]]
    assert header == ["工作表\nSheet", "单元格\nCell", "类型\nKind", "旧值 (A)\nOld (A)", "新值 (B)\nNew (B)"]
    assert changes.freeze_panes == "A2"
    for sheet in wb.worksheets:
        assert sheet.page_setup.orientation == "landscape"
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        # one page wide (1 is the file format's default, left out of the file), any number tall
        assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0)
    # Columns as wide as their text, bilingual header included (CJK counts double).
    assert changes.column_dimensions["A"].width >= len("说明") * 2 + len(" Notes")
    side = wb["说明 Notes"]
    assert side.freeze_panes == "B3"  # title and column letters stay, so do the row numbers


def test_values_show_in_their_cells_number_format(tmp_path):
    def book(path, achievement, amount, day):
        wb = xlsxwriter.Workbook(str(path))
        ws = wb.add_worksheet("实际值 Actuals")
        ws.write_row(0, 0, ["员工编号", "考核周期", "指标编号", "实际值", "完成日期", "达成率"])
        ws.write_row(1, 0, ["E001", "2026-10", "KPI01"])
        ws.write_number(1, 3, amount, wb.add_format({"num_format": "#,##0.00"}))
        ws.write_datetime(1, 4, day, wb.add_format({"num_format": "yyyy-mm-dd"}))
        ws.write_number(1, 5, achievement, wb.add_format({"num_format": "0%"}))
        wb.close()
        return path

    a = book(tmp_path / "a.xlsx", 0.3, 1234.5, dt.datetime(2026, 10, 2))
    b = book(tmp_path / "b.xlsx", 0.35, 2234.5, dt.datetime(2026, 10, 9))
    result = run_cli(a, b, "--lang", "en")
    lines = result.stdout.splitlines()
    assert lines[0] == "'实际值 Actuals'!D2  value  1,234.50 → 2,234.50  [E001 · 2026-10 · KPI01]"
    assert "2026-10-02 → 2026-10-09" in lines[1]
    assert "30% → 35%" in lines[2]
    as_json = json.loads(run_cli(a, b, "--json").stdout)  # JSON keeps the raw values
    assert [(c["old"], c["new"]) for c in as_json] == [(1234.5, 2234.5), ("2026-10-02T00:00:00",
                                                                           "2026-10-09T00:00:00"), (0.3, 0.35)]
    out = tmp_path / "r.xlsx"
    run_cli(a, b, "--out", out)
    listed = openpyxl.load_workbook(out)["差异 Changes"]
    assert (listed["F4"].value, listed["F4"].number_format) == (0.35, "0%")  # prints as 35%
    assert listed["E2"].number_format == "#,##0.00"


def test_shown_as_follows_excel_formats():
    assert shown_as(0.3, "0%") == "30%"
    assert shown_as(1234.5, "#,##0.00") == "1,234.50"
    assert shown_as(-1234.5, "#,##0.00;[Red]-#,##0.00") == "-1,234.50"
    assert shown_as(0.125, "0.00") == "0.13"  # half up, as Excel shows it
    assert shown_as(dt.datetime(2026, 10, 1), 'yyyy"年"m"月"d"日"') == "2026年10月1日"
    assert shown_as(46296, "yyyy-mm-dd") == "2026-10-01"
    assert shown_as(0.5, "General") == "0.5" and shown_as("0.3", "0%") == "0.3"  # text stays text


def test_lang_zh_is_chinese_with_english_beside_it_and_en_is_english_only(tmp_path, base):
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(BASE_ROWS),
                                             "说明 Notes": {"A1": "说明", "B2": 5}})
    zh = run_cli(base, other)
    assert "值 value" in zh.stdout and "共 1 处差异" in zh.stdout and "1 change" in zh.stdout
    en = run_cli(base, other, "--lang", "en")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in en.stdout.replace("实际值 Actuals", "").replace("说明 Notes", ""))
    assert run_cli(base, other, "--lang", "both").exit_code == 2  # no third choice any more


def test_kpi_diff_is_a_command_of_kpi(tmp_path, base):
    from pipeline.cli import main

    result = CliRunner().invoke(main, ["diff", base, base, "--lang", "en"])
    assert result.exit_code == 0 and "identical" in result.output


# ---------------------------------------------------------------------------------------------
# unreadable input


def assert_clean_exit_2(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.output


def test_random_bytes_exit_2(tmp_path, base):
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(bytes(range(256)) * 40)
    assert_clean_exit_2(run_cli(base, junk), "junk.xlsx", "not an Excel workbook")
    assert_clean_exit_2(run_cli(junk, base, "--json"), "junk.xlsx")


def test_truncated_zip_exit_2(tmp_path, base):
    data = open(base, "rb").read()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(data[: len(data) // 2])
    assert_clean_exit_2(run_cli(base, cut), "cut.xlsx", "无法读取")


def test_damaged_member_exit_2(tmp_path, base):
    # A valid zip whose sheet XML is garbage: openpyxl's failure becomes exit 2 too.
    bad = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"<not xml" if info.filename.endswith("sheet1.xml") else data)
    assert_clean_exit_2(run_cli(base, bad), "bad.xlsx", "damaged")


def test_encrypted_or_xls_exit_2(tmp_path, base):
    ole = tmp_path / "locked.xlsx"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    assert_clean_exit_2(run_cli(base, ole), "encrypted", ".xls")


def test_missing_file_exit_2(tmp_path, base):
    assert_clean_exit_2(run_cli(base, tmp_path / "nope.xlsx"), "nope.xlsx", "does not exist")


def test_zip_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 2**20))
    with pytest.raises(DiffInputError) as err:
        load_book(bomb)
    assert "zip bomb" in err.value.message("en")
    small = write_xlsx(tmp_path / "ok.xlsx", {"S": {"A1": 1}})
    with pytest.raises(DiffInputError):
        load_book(small, max_uncompressed=100)


def test_xlsm_is_read(tmp_path, base):
    macro = tmp_path / "a.xlsm"
    macro.write_bytes(open(base, "rb").read())
    assert diff_workbooks(base, macro) == []


# ---------------------------------------------------------------------------------------------
# property: whatever values are planted, exactly those cells are reported

cell_values = st.one_of(st.integers(-10**6, 10**6), st.text("abc 编号", min_size=1, max_size=5),
                        st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grid=st.dictionaries(st.tuples(st.integers(1, 6), st.integers(1, 4)), cell_values,
                            min_size=1, max_size=12),
       plant=st.dictionaries(st.tuples(st.integers(1, 6), st.integers(1, 4)), cell_values,
                             max_size=4))
def test_planted_changes_are_found_exactly(tmp_path, grid, plant):
    def ref(pos):
        return f"{'ABCD'[pos[1] - 1]}{pos[0]}"

    changed = {**grid, **plant}
    a = write_xlsx(tmp_path / "pa.xlsx", {"S": {ref(p): v for p, v in grid.items()}})
    b = write_xlsx(tmp_path / "pb.xlsx", {"S": {ref(p): v for p, v in changed.items()}})
    expected = [CellChange("S", ref(p), "value", grid.get(p), changed[p])
                for p in sorted(changed) if not values_equal(grid.get(p), changed[p])]
    assert diff_workbooks(a, b) == expected


def test_out_never_overwrites_an_input(tmp_path, base):
    other = write_xlsx(tmp_path / "b.xlsx", {"S": {"A1": 1}})
    before = open(base, "rb").read()
    assert_clean_exit_2(run_cli(base, other, "--out", base), "--out")
    assert open(base, "rb").read() == before


def test_unknown_key_says_it_fell_back(tmp_path, base):
    other = write_xlsx(tmp_path / "b.xlsx", {SHEET: actuals_sheet(BASE_ROWS),
                                             "说明 Notes": {"A1": "说明", "B2": 5}})
    result = run_cli(base, other, "--by-key", "no_such_column", "--lang", "en")
    assert result.exit_code == 1
    assert "compared cell by cell" in result.stderr
    assert "'说明 Notes'!B2" in result.stdout


def test_help_has_examples():
    result = CliRunner().invoke(diff_command, ["--help"])
    assert result.exit_code == 0
    assert "kpi diff old.xlsx new.xlsx" in result.output and "--by-key" in result.output
