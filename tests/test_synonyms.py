"""Everyday header synonyms HR writes instead of the template's labels are read as those columns."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from builders import write_sheets

from pipeline.kinds import KINDS, header_aliases
from pipeline.reader import read_workbook


def test_no_header_names_two_columns_of_one_sheet() -> None:
    for kind in KINDS.values():
        for spec in kind.tables:
            counts = Counter(alias for f in spec.fields for alias in header_aliases(f))
            assert [a for a, n in counts.items() if n > 1] == [], spec.name


@pytest.mark.parametrize(("employee", "period", "indicator", "actual"), [
    ("工号", "月份", "指标", "完成值"),
    ("职工编号", "考核月份", "指标代码", "实际完成"),
    ("员工工号", "考核期间", "KPI编号", "实际完成值"),
])
def test_an_actuals_sheet_with_everyday_headers(tmp_path: Path, employee, period, indicator, actual) -> None:
    path = write_sheets(tmp_path / "10月业绩.xlsx", {"Sheet1": [
        [employee, period, indicator, actual, "备注"],
        ["E001", "2026-10", "K1", "95%", ""],
        ["E002", "2026-10", "K1", 1200, "补录"],
    ]})
    book = read_workbook(path)
    assert book.kind == "actuals" and not [f for f in book.findings if f.is_error]
    [table] = book.tables
    assert {name: table.letters[name] for name in ("employee_id", "period", "indicator_id", "actual")} == {
        "employee_id": "A", "period": "B", "indicator_id": "C", "actual": "D"}
    assert list(table.frame["employee_id"]) == ["E001", "E002"]


def test_a_roster_and_ratings_with_everyday_headers(tmp_path: Path) -> None:
    roster = read_workbook(write_sheets(tmp_path / "花名册.xlsx", {"人员": [
        ["工号", "员工姓名", "所属部门", "职位", "岗位族", "上级工号"],
        ["E001", "王芳", "销售部", "经理", "销售", ""],
    ]}))
    assert roster.kind == "roster"
    assert set(roster.tables[0].letters) >= {"employee_id", "name", "department", "position", "role_family",
                                             "manager_id"}
    ratings = read_workbook(write_sheets(tmp_path / "360.xlsx", {"Sheet1": [
        ["工号", "月份", "指标", "评价人", "关系", "得分", "评价"],
        ["E001", "2026-10", "ATT-01", "E009", "上级", 4, "按时完成"],
    ]}))
    assert ratings.kind == "ratings"
    assert set(ratings.tables[0].letters) >= {"employee_id", "period", "indicator_id", "rater_id", "relation",
                                              "score", "comment"}


def test_in_the_indicator_library_a_bare_指标_is_not_the_id(tmp_path: Path) -> None:
    book = read_workbook(write_sheets(tmp_path / "指标.xlsx", {"指标库 Indicators": [
        ["指标编号", "指标", "维度", "方向", "计分方法"],
        ["K1", "销售额", "业绩", "越高越好", "比率"],
    ]}))
    assert book.kind == "indicators"
    assert book.tables[0].letters["indicator_id"] == "A" and "name" not in book.tables[0].letters
