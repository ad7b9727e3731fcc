"""Adjustments (agreements sheet 调整记录 Adjustments): rules, scoring from the effective month, audit trail."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from builders import memory_inbox, monthly_sales_indicators, write_inbox
from python_calamine import CalamineWorkbook

from pipeline.batch import run_batch
from pipeline.policy import load_policy
from pipeline.trace import format_trace, trace_employee
from pipeline.validate import validate

ADJ = "agreements.xlsx!调整记录 Adjustments!"
MONTHS = ("2026-07", "2026-08", "2026-09")


def roster():
    return [
        {"employee_id": "S001", "name": "王经理", "department": "销售部", "position": "销售经理", "role_family": "销售"},
        {"employee_id": "S002", "name": "李销售", "department": "销售部", "position": "销售代表", "role_family": "销售",
         "manager_id": "S001"},
    ]


def role_kpis(months=MONTHS):
    rows = []
    for month in months:
        rows += [
            {"role_family": "销售", "period": month, "indicator_id": "K1", "weight": "60%", "target": 100},
            {"role_family": "销售", "period": month, "indicator_id": "K2", "weight": "30%", "target": 10},
            {"role_family": "销售", "period": month, "indicator_id": "K3", "weight": "10%", "target": 0.9},
        ]
    return rows


def actuals(months=MONTHS):
    rows = []
    for month in months:
        for employee in ("S001", "S002"):
            rows += [
                {"employee_id": employee, "period": month, "indicator_id": "K1", "actual": 110},
                {"employee_id": employee, "period": month, "indicator_id": "K2", "actual": 10},
                {"employee_id": employee, "period": month, "indicator_id": "K3", "actual": 0.9},
            ]
    return rows


def cut_k1(**changes) -> dict:
    """Seed 000: the sales target raised after a market change, approved and on record."""
    row = {"role_family": "销售", "indicator_id": "K1", "field": "目标值", "old_value": 100, "new_value": 120,
           "effective_period": "2026-08", "reason": "市场扩大,区域合并", "approved_by": "HR 张经理",
           "date": "2026-08-03"}
    row.update(changes)
    return row


def inbox(folder, adjustments):
    return write_inbox(folder, roster=roster(), indicators=monthly_sales_indicators(), role_kpis=role_kpis(), actuals=actuals(),
                       adjustments=adjustments)


def details(period_dir) -> pd.DataFrame:
    return pd.read_excel(period_dir / "summary.xlsx", sheet_name="明细 Details", dtype={"adjustment": object})


def findings_of(adjustments, period="2026-08", **tables):
    books = memory_inbox(roster=tables.get("roster", roster()), indicators=monthly_sales_indicators(),
                         role_kpis=tables.get("role_kpis", role_kpis()), actuals=actuals(),
                         employee_kpis=tables.get("employee_kpis", []), adjustments=adjustments)
    inputs = validate(books, load_policy(), period)
    return inputs, inputs.findings


def rules(findings):
    return [f.rule for f in findings]


# ------------------------------------------------------------------------------ three months

@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    root = tmp_path_factory.mktemp("adjusted")
    folder = inbox(root / "inbox", [cut_k1()])
    results = {m: run_batch(folder, m, root / "out", load_policy(), jobs=1) for m in MONTHS}
    return root, results


def test_month_one_keeps_the_agreed_target_months_two_and_three_use_the_new_one(sequence):
    root, results = sequence
    assert all(r.exit_code == 0 for r in results.values()), {m: r.errors for m, r in results.items()}
    july = details(results["2026-07"].period_dir).set_index(["employee_id", "indicator_id"])
    assert july.loc[("S001", "K1"), "target"] == 100
    assert july.loc[("S001", "K1"), "achievement"] == pytest.approx(1.1)
    assert pd.isna(july.loc[("S001", "K1"), "adjustment"])
    for month in ("2026-08", "2026-09"):
        frame = details(results[month].period_dir).set_index(["employee_id", "indicator_id"])
        for employee in ("S001", "S002"):  # a role-family adjustment reaches everyone on the role set
            row = frame.loc[(employee, "K1")]
            assert row["target"] == 120
            assert row["original_target"] == 100
            assert row["achievement"] == pytest.approx(110 / 120)
            assert row["adjustment"] == ADJ + "F2"
        assert pd.isna(frame.loc[("S001", "K2"), "adjustment"])  # only the adjusted indicator
        assert frame.loc[("S001", "K2"), "original_target"] == 10


def test_summary_lists_the_adjustments_applied(sequence):
    _, results = sequence
    assert "调整记录 Adjustments" not in CalamineWorkbook.from_path(
        str(results["2026-07"].period_dir / "summary.xlsx")).sheet_names
    log = pd.read_excel(results["2026-08"].period_dir / "summary.xlsx", sheet_name="调整记录 Adjustments")
    assert len(log) == 1
    row = log.iloc[0]
    assert (row["role_family"], row["indicator_id"], row["field"]) == ("销售", "K1", "target")
    assert (row["old_value"], row["new_value"], row["effective_period"]) == (100, 120, "2026-08")
    assert (row["reason"], row["approved_by"], row["date"]) == ("市场扩大,区域合并", "HR 张经理", "2026-08-03")
    assert row["employees"] == 2 and row["adjustment"] == ADJ + "F2"


def test_scorecard_comments_the_adjusted_target(sequence):
    _, results = sequence
    book = openpyxl.load_workbook(results["2026-08"].period_dir / "departments" / "销售部.xlsx")
    sheet = next(book[name] for name in book.sheetnames if name.startswith("S001"))
    assert sheet["B11"].value == "K1" and sheet["H11"].value == 120
    comment = sheet["H11"].comment.text
    assert "100 → 120" in comment and "市场扩大,区域合并" in comment and "HR 张经理" in comment
    assert "2026-08" in comment
    assert sheet["H12"].comment is None  # K2 was not adjusted
    july = openpyxl.load_workbook(results["2026-07"].period_dir / "departments" / "销售部.xlsx")
    july_sheet = next(july[name] for name in july.sheetnames if name.startswith("S001"))
    assert july_sheet["H11"].comment is None


def test_trace_shows_the_agreement_cell_and_the_adjustment_cell(sequence):
    _, results = sequence
    report = trace_employee(results["2026-08"].period_dir, "S001")
    k1 = {n.item: n for n in report.numbers if n.indicator_id == "K1"}
    assert k1["target"].value == 120 and k1["target"].source == ADJ + "F2"
    assert k1["original_target"].value == 100
    assert k1["original_target"].source == "agreements.xlsx!岗位指标 RoleKPIs!F5"  # 2026-08's K1 row
    assert k1["adjustment"].source == ADJ + "F2"
    assert k1["adjustment"].sha256  # the agreements file's hash, from the manifest
    text = format_trace(report)
    assert ADJ + "F2" in text and "岗位指标 RoleKPIs!F5" in text


def test_employee_adjustment_changes_only_that_employee(tmp_path):
    folder = inbox(tmp_path / "inbox", [cut_k1(role_family=None, employee_id="S002", old_value=100, new_value=80)])
    result = run_batch(folder, "2026-09", tmp_path / "out", load_policy(), jobs=1)
    assert result.exit_code == 0, result.errors
    frame = details(result.period_dir).set_index(["employee_id", "indicator_id"])
    assert frame.loc[("S002", "K1"), "target"] == 80
    assert frame.loc[("S001", "K1"), "target"] == 100


def test_chained_adjustments_each_start_from_the_value_in_force():
    second = cut_k1(old_value=120, new_value=130, effective_period="2026-09", date="2026-09-01")
    inputs, found = findings_of([cut_k1(), second], period="2026-09")
    assert "adjustment_old_value" not in rules(found)
    assert "adjustment_repeated" in rules(found)  # twice within 2026-Q3


# ------------------------------------------------------------------------------ rules

def test_old_value_must_match_the_agreement_naming_both_cells():
    inputs, found = findings_of([cut_k1(old_value=95)])
    [f] = [f for f in found if f.rule == "adjustment_old_value"]
    assert f.is_error and f.cell == "E2" and f.period == "2026-08"
    assert ADJ + "E2" in f.message_en and "agreements.xlsx!岗位指标 RoleKPIs!F5" in f.message_en
    assert "95" in f.message_zh and "100" in f.message_zh
    assert ("销售", "2026-08") in inputs.bad_role_sets  # nobody on the role set is scored on a guess


def test_reason_and_approver_are_required():
    inputs, found = findings_of([cut_k1(reason=None, approved_by="  ")])
    cells = {f.cell for f in found if f.rule == "adjustment_unapproved"}
    assert cells == {"H2", "I2"}
    assert all(f.is_error for f in found if f.rule == "adjustment_unapproved")
    assert ("销售", "2026-08") in inputs.bad_role_sets


def test_refused_adjustment_does_not_block_a_period_before_it():
    inputs, found = findings_of([cut_k1(reason=None)], period="2026-07")
    assert "adjustment_unapproved" in rules(found)
    assert ("销售", "2026-07") not in inputs.bad_role_sets


def test_weights_still_sum_to_100_percent():
    one = {"role_family": "销售", "indicator_id": "K1", "field": "权重", "old_value": 60, "new_value": "70%",
           "effective_period": "2026-08", "reason": "重点考核销售额", "approved_by": "总经理", "date": "2026-08-01"}
    _, found = findings_of([one])
    [f] = [f for f in found if f.rule == "adjustment_weight_sum"]
    assert f.is_error and "110.00%" in f.message_en and ADJ + "F2" in f.message_en
    other = dict(one, indicator_id="K2", old_value=0.3, new_value=0.2)
    _, found = findings_of([one, other])
    assert "adjustment_weight_sum" not in rules(found)
    assert not [f for f in found if f.is_error]


def test_adjusted_weights_are_scored(tmp_path):
    one = {"role_family": "销售", "indicator_id": "K1", "field": "权重", "old_value": 60, "new_value": "70%",
           "effective_period": "2026-08", "reason": "重点考核销售额", "approved_by": "总经理", "date": "2026-08-01"}
    other = dict(one, indicator_id="K2", old_value=0.3, new_value=0.2)
    folder = inbox(tmp_path / "inbox", [one, other])
    result = run_batch(folder, "2026-08", tmp_path / "out", load_policy(), jobs=1)
    assert result.exit_code == 0, result.errors
    frame = details(result.period_dir).set_index(["employee_id", "indicator_id"])
    assert frame.loc[("S001", "K1"), "weight"] == pytest.approx(0.7)
    assert frame.loc[("S001", "K2"), "weight"] == pytest.approx(0.2)
    totals = result.scores.totals.set_index("employee_id")
    assert totals.loc["S001", "total"] == pytest.approx(0.7 * 1.1 + 0.2 * 1 + 0.1 * 1)


def test_second_adjustment_within_a_quarter_is_a_warning_once_per_decision():
    together = [cut_k1(), cut_k1(field="基础值", old_value=None, new_value=90)]
    _, found = findings_of([cut_k1(), cut_k1(old_value=120, new_value=125, effective_period="2026-09",
                                             date="2026-09-02")])
    [f] = [f for f in found if f.rule == "adjustment_repeated"]
    assert not f.is_error and f.cell == "F3" and f.period == "2026-Q3" and ADJ + "F2" in f.message_en
    _, found = findings_of(together)  # base and target changed in one decision: one adjustment
    assert "adjustment_repeated" not in rules(found)
    next_quarter = cut_k1(old_value=120, new_value=125, effective_period="2026-10", date="2026-10-02")
    _, found = findings_of([cut_k1(), next_quarter])
    assert "adjustment_repeated" not in rules(found)


def test_unknown_employee_indicator_and_role_family_are_errors():
    _, found = findings_of([cut_k1(role_family=None, employee_id="S999"), cut_k1(indicator_id="K9"),
                            cut_k1(role_family="市场")])
    by_rule = {f.rule: f for f in found if f.is_error}
    assert by_rule["unknown_employee"].cell == "A2"
    assert by_rule["unknown_indicator"].cell == "C3"
    assert by_rule["adjustment_unknown_role_family"].cell == "B4"


def test_adjustment_needs_an_owner():
    _, found = findings_of([cut_k1(role_family=None)])
    [f] = [f for f in found if f.rule == "adjustment_no_owner"]
    assert f.is_error and f.cell == "A2"


def test_adjusting_an_indicator_not_agreed_is_an_error():
    role = [r for r in role_kpis() if r["indicator_id"] != "K2" or r["period"] != "2026-08"]
    role = [dict(r, weight="90%") if r["indicator_id"] == "K1" and r["period"] == "2026-08" else r for r in role]
    row = cut_k1(indicator_id="K2", old_value=10, new_value=12)
    _, found = findings_of([row], role_kpis=role)
    [f] = [f for f in found if f.rule == "adjustment_no_agreement"]
    assert f.is_error and "K2" in f.message_en


def test_new_value_that_cannot_be_scored_is_an_error():
    inputs, found = findings_of([cut_k1(new_value=0)])
    [f] = [f for f in found if f.rule == "adjustment_bad_value"]
    assert f.is_error and f.cell == "F2"
    assert ("销售", "2026-08") in inputs.bad_role_sets


def test_later_agreement_already_holding_the_new_value_is_not_an_error():
    role = [dict(r, target=120) if r["indicator_id"] == "K1" and r["period"] == "2026-09" else r for r in role_kpis()]
    _, found = findings_of([cut_k1()], period="2026-09", role_kpis=role)
    assert not [f for f in found if f.is_error]
