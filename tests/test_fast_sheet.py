"""FastSheet must write exactly the bytes xlsxwriter's own classes write.

The department tests run the batch twice, the second time under KPI_PLAIN_WRITER=1 (xlsxwriter's
own Worksheet and Chart classes), and compare every part of every workbook.
"""

from __future__ import annotations

import math
import zipfile
from functools import partial
from pathlib import Path

import openpyxl
import pytest
from company import hostile_company, small_company
from python_calamine import CalamineWorkbook
from xlsxwriter.worksheet import Worksheet

from pipeline.batch import run_batch
from pipeline.policy import parse_policy
from pipeline.writers import scorecards
from pipeline.writers.common import new_workbook
from pipeline.writers.fast_sheet import (
    FastSheet,
    PlainSheet,
    ReferenceSheet,
    plain_writer,
    register_formats,
    sheet_class,
)

PERIOD = "2026-10"


def _use_plain_xlsxwriter(monkeypatch) -> None:
    monkeypatch.setenv("KPI_PLAIN_WRITER", "1")
    assert plain_writer() and sheet_class(FastSheet) is PlainSheet


def test_plain_writer_switch(monkeypatch):
    monkeypatch.delenv("KPI_PLAIN_WRITER", raising=False)
    assert not plain_writer() and sheet_class(FastSheet) is FastSheet
    monkeypatch.setenv("KPI_PLAIN_WRITER", "0")
    assert not plain_writer()
    monkeypatch.setenv("KPI_PLAIN_WRITER", "1")
    assert plain_writer() and sheet_class(FastSheet) is PlainSheet
    # PlainSheet is xlsxwriter's worksheet with nothing overridden: only `stamp` is added
    assert set(vars(PlainSheet)) - {"__module__", "__doc__", "__qualname__", "__firstlineno__",
                                    "__static_attributes__"} == {"stamp"}


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _assert_same_files(fast_dir: Path, reference_dir: Path) -> int:
    fast = sorted(p.relative_to(fast_dir) for p in fast_dir.rglob("*.xlsx"))
    reference = sorted(p.relative_to(reference_dir) for p in reference_dir.rglob("*.xlsx"))
    assert fast == reference and fast
    for relative in fast:
        a, b = _parts(fast_dir / relative), _parts(reference_dir / relative)
        assert list(a) == list(b), relative
        for name in a:
            assert a[name] == b[name], f"{relative}: {name} differs"
    return len(fast)


@pytest.mark.parametrize("policy_text, lang", [
    ("", "zh"),
    # forced distribution (a grade cell with a comment), English, team workbooks
    ("forced_distribution: {S: 0.10, A: 0.20, B: 0.50, C: 0.15, D: 0.05}\noutput: {max_sheets: 2}\n", "en"),
    # sheets protected with a password (the protection element is rendered once per options)
    ("output: {protect_password: hr2026}\n", "zh"),
])
def test_department_workbooks_are_byte_identical_to_xlsxwriter_cells(tmp_path, monkeypatch, policy_text, lang):
    inbox = hostile_company(tmp_path / "inbox")
    policy = parse_policy(policy_text)
    fast = run_batch(inbox, PERIOD, tmp_path / "fast", policy, lang=lang, jobs=1)
    _use_plain_xlsxwriter(monkeypatch)
    reference = run_batch(inbox, PERIOD, tmp_path / "reference", policy, lang=lang, jobs=1)
    assert _assert_same_files(fast.period_dir / "departments", reference.period_dir / "departments") >= 2


def test_unscored_employees_and_mistakes_are_byte_identical(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox", mistake=True)
    policy = parse_policy("")
    fast = run_batch(inbox, PERIOD, tmp_path / "fast", policy, jobs=1)
    assert fast.exit_code == 1 and not fast.scores.unscored.empty
    _use_plain_xlsxwriter(monkeypatch)
    reference = run_batch(inbox, PERIOD, tmp_path / "reference", policy, jobs=1)
    _assert_same_files(fast.period_dir / "departments", reference.period_dir / "departments")


def _edge_workbook(path: Path, sheet_class) -> None:
    workbook = new_workbook(path)
    percent = workbook.add_format({"num_format": "0%"})
    bold = workbook.add_format({"bold": True})
    same_as_bold = workbook.add_format({"bold": True})
    register_formats(percent, bold, same_as_bold)
    sheet = workbook.add_worksheet("边缘 Edge", worksheet_class=sheet_class)
    sheet.write_string(0, 0, "A & B <c> \"d\"", bold)
    sheet.write_string(0, 3, "x" * 40_000)  # truncated to Excel's 32,767
    sheet.write_string(1, 0, "  空格  ")
    sheet.write_number(1, 1, 0.1 + 0.2, percent)
    sheet.write_number(1, 2, 7)
    sheet.write_number(2, 0, math.nan, percent)
    sheet.write_number(2, 1, math.inf)
    sheet.write_number(2, 2, -math.inf)
    sheet.write_blank(3, 0, None)  # no format: not written
    sheet.write_blank(3, 1, None, same_as_bold)
    sheet.write_formula(4, 0, "=A2&\"<x>\"", bold, "  空格  <x>")
    sheet.write_formula(4, 1, "=B2>0", None, True)
    sheet.write_formula(4, 2, "=1/0", None, "#DIV/0!")
    sheet.write_formula(4, 3, "=B2*2", percent, 0.6000000000000001)
    sheet.write_formula(4, 4, "=SUM(B2:C2)", None, "")
    sheet.merge_range(6, 0, 6, 3, "合并 merged", bold)
    sheet.set_row(8, 30)
    sheet.set_row(40, 12)
    sheet.write_comment(20, 5, "注释 note")
    sheet.write_url(21, 0, "internal:'边缘 Edge'!A1", bold, string="link")
    for r in range(10, 14):
        sheet.write_string(r, 1, f"指标{r}")
        sheet.write_formula(r, 2, f"=B{r + 1}", percent, r / 10)
    chart = workbook.add_chart({"type": "bar"})
    chart.add_series({"categories": ["边缘 Edge", 10, 1, 13, 1], "values": ["边缘 Edge", 10, 2, 13, 2]})
    sheet.insert_chart(15, 6, chart)
    workbook.close()


@pytest.mark.parametrize("reference_class", [Worksheet, ReferenceSheet])
def test_edge_cells_are_byte_identical(tmp_path, reference_class):
    _edge_workbook(tmp_path / "fast.xlsx", FastSheet)
    _edge_workbook(tmp_path / "reference.xlsx", reference_class)
    fast, reference = _parts(tmp_path / "fast.xlsx"), _parts(tmp_path / "reference.xlsx")
    assert list(fast) == list(reference)
    for name in fast:
        assert fast[name] == reference[name], name
    # and what a reader sees
    rows = CalamineWorkbook.from_path(str(tmp_path / "fast.xlsx")).get_sheet_by_name("边缘 Edge").to_python()
    assert rows[0][0] == 'A & B <c> "d"' and len(rows[0][3]) == 32767
    assert rows[1][0] == "  空格  " and rows[1][1] == pytest.approx(0.3) and rows[4][3] == pytest.approx(0.6)
    sheet = openpyxl.load_workbook(tmp_path / "fast.xlsx")["边缘 Edge"]
    assert sheet["A5"].value == '=A2&"<x>"' and sheet["C3"].value == "=-1/0"
    assert "A7:D7" in {str(r) for r in sheet.merged_cells.ranges}
    assert sheet.row_dimensions[9].height == 30
    chart_xml = fast["xl/charts/chart1.xml"].decode()
    assert "<c:v>指标10</c:v>" in chart_xml and "<c:v>1.3</c:v>" in chart_xml  # caches from the cells


CHART_NAMES = [
    ["销售额", "新客户数", "回款率 & <毛利>", "客户满意度"],
    ["_x0041_ escaped-looking", "  leading space", "tab\there", "bell\x07"],
    ["Revenue"],
    ["2024", "3.5"],  # numbers to xlsxwriter: cached as numbers, so the plain chart is used
]


def _charts_workbook(path: Path, templates: bool, lang: str) -> None:
    from pipeline.writers.fast_chart import AchievementChart, add_chart

    workbook = new_workbook(path)
    for i, names in enumerate(CHART_NAMES * 2):
        name = f"E{i:03d} 员工 & co"
        sheet = workbook.add_worksheet(name, worksheet_class=FastSheet if templates else Worksheet)
        values = [0.5 + 0.173 * j for j in range(len(names))]
        for j, (text, value) in enumerate(zip(names, values, strict=True)):
            sheet.write_string(scorecards.TABLE_TOP + 1 + j, 2, text)
            sheet.write_formula(scorecards.TABLE_TOP + 1 + j, 10, "=1", None, value)
        configure = partial(scorecards.configure_achievement_chart, lang=lang, axis_max=1.2)
        if templates and AchievementChart.usable(names):
            chart = AchievementChart((lang, 1.2), configure, name, names, values)
            add_chart(workbook, chart)
        else:
            chart = workbook.add_chart({"type": "bar"})
            configure(chart, name, len(names))
        chart.set_size({"width": 620, "height": 200})
        sheet.insert_chart(20, 0, chart)
    workbook.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_template_charts_are_byte_identical_to_xlsxwriter_charts(tmp_path, lang):
    from pipeline.writers.fast_chart import AchievementChart

    assert not AchievementChart.usable(CHART_NAMES[-1]) and AchievementChart.usable(CHART_NAMES[1])
    _charts_workbook(tmp_path / "fast.xlsx", True, lang)
    _charts_workbook(tmp_path / "reference.xlsx", False, lang)
    fast, reference = _parts(tmp_path / "fast.xlsx"), _parts(tmp_path / "reference.xlsx")
    assert list(fast) == list(reference) and sum(n.startswith("xl/charts/") for n in fast) == 8
    for name in fast:
        assert fast[name] == reference[name], name
    chart = fast["xl/charts/chart5.xml"].decode()  # the first names again, on the fifth sheet
    assert "回款率 &amp; &lt;毛利&gt;" in chart and "E004 员工 &amp; co" in chart and 'val="50050001"' in chart
