"""Period scoping: a run for one period is judged on that period's rows only.

A problem in a row of another period is listed, labelled with its period, but does not
change the exit code or keep anyone from being scored. A period the inbox has no rows for
is said in one line naming the periods it does hold, and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import write_book, write_inbox
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

from pipeline.batch import (
    inbox_periods,
    no_data_finding,
    other_period_finding,
    run_batch,
    split_by_period,
)
from pipeline.cli import main
from pipeline.findings import finding
from pipeline.kinds import KINDS
from pipeline.policy import load_policy
from pipeline.reader import read_inbox
from pipeline.validate import validate

# 市场 has no expected dimension shares in the policy: the inbox is free of design warnings, so
# every finding below is one the test plants.
ROSTER = [
    {"employee_id": "M001", "name": "孙丽", "department": "市场部", "position": "市场经理", "role_family": "市场"},
    {"employee_id": "M002", "name": "钱进", "department": "市场部", "position": "市场专员", "role_family": "市场",
     "manager_id": "M001"},
]
INDICATORS = [
    {"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "万元", "aggregation": "求和"},
    {"indicator_id": "K2", "name": "新客户数", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "个", "aggregation": "求和"},
    {"indicator_id": "K3", "name": "客户投诉率", "dimension": "业绩", "direction": "越低越好", "method": "达标",
     "unit": "%", "aggregation": "平均"},
]
TARGETS = {"2026-09": (200, 15, "2%"), "2026-10": (200, 15, "2%"), "2026-Q3": (600, 45, "2%")}


def role_rows(periods=("2026-09", "2026-10")) -> list[dict]:
    rows = []
    for period in periods:
        k1, k2, k3 = TARGETS[period]
        rows += [{"role_family": "市场", "period": period, "indicator_id": "K1", "weight": "60%", "target": k1},
                 {"role_family": "市场", "period": period, "indicator_id": "K2", "weight": 30, "target": k2},
                 {"role_family": "市场", "period": period, "indicator_id": "K3", "weight": 0.1, "target": k3}]
    return rows


def actual_rows(months=("2026-09", "2026-10"), bad: dict | None = None) -> list[dict]:
    """Both employees' actuals per month; `bad` = {(employee, month, indicator): value typed}."""
    rows = []
    for month in months:
        for employee in ("M001", "M002"):
            for indicator, value in (("K1", 210), ("K2", 12), ("K3", "1.5%")):
                value = (bad or {}).get((employee, month, indicator), value)
                rows.append({"employee_id": employee, "period": month, "indicator_id": indicator, "actual": value})
    return rows


def inbox(folder: Path, **tables) -> Path:
    tables.setdefault("roster", ROSTER)
    tables.setdefault("indicators", INDICATORS)
    tables.setdefault("role_kpis", role_rows())
    tables.setdefault("actuals", actual_rows())
    return write_inbox(folder, **tables)


def kpi(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def run_json(folder: Path, period: str, out: Path):
    result = kpi("run", folder, "--period", period, "--out", out, "--json", "--jobs", 1)
    return result.exit_code, json.loads(result.stdout)


def cells(path: Path, sheet: str) -> list[str]:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()
    return [str(value) for row in rows for value in row]


# ------------------------------------------------------------------------------ pure rules

def test_split_by_period_keeps_the_period_its_months_and_findings_without_a_period():
    def at(period: str):
        return finding("not_a_number", file="actuals.xlsx", sheet="实际值 Actuals", cell="D2", period=period)

    findings = [at(""), at("2026-07"), at("2026-09"), at("2026-Q3"), at("2026-10"), at("2026"), at("2026-H2")]
    this, other = split_by_period(findings, "2026-Q3")
    assert [f.period for f in this] == ["", "2026-07", "2026-09", "2026-Q3"]
    assert [f.period for f in other] == ["2026-10", "2026", "2026-H2"]
    this, other = split_by_period(findings, "2026-10")
    assert [f.period for f in this] == ["", "2026-10"]
    # a year counts its months, not the quarters and halves typed as periods of their own
    this, other = split_by_period(findings, "2026")
    assert [f.period for f in this] == ["", "2026-07", "2026-09", "2026-10", "2026"]
    assert [f.period for f in other] == ["2026-Q3", "2026-H2"]


def test_other_period_finding_is_a_warning_labelled_with_its_period():
    f = finding("not_a_number", file="actuals.xlsx", sheet="实际值 Actuals", cell="D5", column="实际值 Actual",
                value="abc", employee_id="M002", period="2026-09")
    shown = other_period_finding(f, "2026-10")
    assert shown.severity == "warning" and not shown.is_error
    assert (shown.rule, shown.cell, shown.period, shown.employee_id) == ("not_a_number", "D5", "2026-09", "M002")
    assert shown.message_zh.startswith("〔属于考核周期 2026-09 的错误,不影响本次 2026-10 的评分〕")
    assert shown.message_zh.endswith(f.message_zh)
    assert shown.message_en == f"[Error of period 2026-09: does not affect this 2026-10 run] {f.message_en}"


def test_no_data_finding_names_the_periods_held():
    f = no_data_finding("2025-01", ["2026-09", "2026-10"])
    assert f.is_error and f.rule == "no_period_data" and f.period == "2025-01"
    assert f.message("zh") == ("收件箱中没有 2025-01 的数据。收件箱中有的考核周期:2026-09、2026-10 / "
                                 "The inbox has no data for 2025-01. Periods in the inbox: 2026-09, 2026-10")
    assert no_data_finding("2026-10", ["2026-09", "2026-10"]) is None
    assert no_data_finding("2026-Q3", ["2026-09"]) is None  # one of its months has rows
    assert no_data_finding("2026-10", ["2026-Q4"]) is not None  # a quarter's agreements do not score a month
    assert no_data_finding("2026-10", []).message_en.endswith("Periods in the inbox: none")


# ------------------------------------------------------------------------------ findings carry their period

def test_row_findings_on_dated_sheets_carry_the_row_period(tmp_path):
    folder = inbox(tmp_path / "inbox",
                   actuals=actual_rows(bad={("M002", "2026-09", "K1"): "abc"})
                   + [{"employee_id": "M001", "period": "2026/13", "indicator_id": "K1", "actual": 5}],
                   ratings=[{"employee_id": "M001", "period": "2026年9月", "indicator_id": "K1", "rater_id": "M002",
                             "relation": "同事", "score": 7}],
                   employee_kpis=[{"employee_id": "M002", "period": "2026-Q3", "indicator_id": "K1", "weight": "abc",
                                   "target": 600}],
                   dept_targets=[{"department": "市场部", "period": "2026-09", "indicator_id": "K1", "target": "多"}])
    inputs = validate(read_inbox(folder), load_policy())
    by_cell = {(f.sheet, f.cell): f for f in inputs.findings if f.is_error}
    actuals, ratings = KINDS["actuals"].tables[0].name, KINDS["ratings"].tables[0].name
    agreements, targets = KINDS["agreements"].tables[1].name, KINDS["dept_targets"].tables[0].name
    assert (by_cell[(actuals, "D5")].rule, by_cell[(actuals, "D5")].period) == ("not_a_number", "2026-09")
    assert (by_cell[(ratings, "F2")].rule, by_cell[(ratings, "F2")].period) == ("out_of_range", "2026-09")
    assert (by_cell[(agreements, "D2")].rule, by_cell[(agreements, "D2")].period) == ("not_a_number", "2026-Q3")
    assert (by_cell[(targets, "D2")].rule, by_cell[(targets, "D2")].period) == ("not_a_number", "2026-09")
    # a row whose period cell cannot be read concerns every period
    assert (by_cell[(actuals, "B14")].rule, by_cell[(actuals, "B14")].period) == ("bad_period", "")


def test_a_formula_without_a_value_in_a_row_of_another_month_carries_that_month(tmp_path):
    folder = inbox(tmp_path / "inbox", actuals=[])
    spec = KINDS["actuals"].tables[0]
    rows = [[f.header for f in spec.fields]] + [
        [r["employee_id"], r["period"], r["indicator_id"], r["actual"]] for r in actual_rows()]
    write_book(folder / "actuals.xlsx", {spec.name: rows}, cells={spec.name: {"D3": "=B3*2"}})  # M001 2026-09 K2
    inputs = validate(read_inbox(folder), load_policy())
    f = next(f for f in inputs.findings if f.rule == "formula_no_value")
    assert (f.cell, f.period) == ("D3", "2026-09")


def test_inbox_periods_counts_rows_refused_by_validation(tmp_path):
    folder = inbox(tmp_path / "inbox", actuals=actual_rows() + [
        {"employee_id": "M001", "period": "2026-11", "indicator_id": "K1", "actual": "abc"}],
        ratings=[{"employee_id": "M001", "period": "2026-Q4", "indicator_id": "K1", "rater_id": "M002",
                  "relation": "同事", "score": 4}],
        dept_targets=[{"department": "市场部", "period": "2027-01", "indicator_id": "K1", "target": 1}])
    inputs = validate(read_inbox(folder), load_policy())
    # 2026-11's only row is refused, yet the inbox holds 2026-11; department targets hold no period
    assert inbox_periods(inputs) == ["2026-09", "2026-10", "2026-11", "2026-Q4"]


# ------------------------------------------------------------------------------ kpi run

def test_bad_actual_of_another_month_does_not_fail_the_month(tmp_path):
    folder = inbox(tmp_path / "inbox", actuals=actual_rows(bad={("M002", "2026-09", "K1"): "abc"}))
    code, report = run_json(folder, "2026-10", tmp_path / "out")
    assert code == 0
    assert report["scored"] == 2 and report["unscored"] == [] and report["errors"] == []
    [other] = report["other_period_findings"]
    assert (other["rule"], other["cell"], other["period"], other["severity"]) == ("not_a_number", "D5", "2026-09",
                                                                                  "error")
    assert report["periods_in_inbox"] == ["2026-09", "2026-10"] and report["no_data"] is False
    # September itself is wrong: M002 is not scored there
    code, report = run_json(folder, "2026-09", tmp_path / "out")
    assert code == 1
    assert [u["employee_id"] for u in report["unscored"]] == ["M002"]
    assert [(e["rule"], e["cell"]) for e in report["errors"]] == [("not_a_number", "D5")]
    assert report["other_period_findings"] == []


def test_the_console_says_how_many_findings_concern_other_periods(tmp_path):
    folder = inbox(tmp_path / "inbox", actuals=actual_rows(bad={("M002", "2026-09", "K1"): "abc"}))
    result = kpi("run", folder, "--period", "2026-10", "--out", tmp_path / "out", "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert "错误 0 个,警告 0 个" in result.output
    assert "另有 1 条问题属于其他考核周期 (2026-09)" in result.output
    assert "1 more finding concerns another period (2026-09)" in result.output
    assert "abc" not in result.output  # the finding itself is in the files, not among this run's errors
    english = kpi("run", folder, "--period", "2026-10", "--out", tmp_path / "out", "--jobs", 1, "--lang", "en")
    assert "0 errors, 0 warnings" in english.output and "1 more finding concerns another period (2026-09)" in english.output
    assert "另有" not in english.output


def test_other_period_findings_are_labelled_in_the_summary_errors_workbook_and_manifest(tmp_path):
    folder = inbox(tmp_path / "inbox", actuals=actual_rows(bad={("M002", "2026-09", "K1"): "abc"}))
    result = run_batch(folder, "2026-10", tmp_path / "out", load_policy(), jobs=1)
    assert result.exit_code == 0 and result.errors == [] and len(result.other_periods) == 1
    warnings = cells(result.period_dir / "summary.xlsx", "警告 Warnings")
    label = "〔属于考核周期 2026-09 的错误,不影响本次 2026-10 的评分〕"
    assert any(text.startswith(label) and "abc" in text for text in warnings)
    assert any(text.startswith("[Error of period 2026-09: does not affect this 2026-10 run]") for text in warnings)
    errors_book = result.period_dir / "errors" / "actuals.xlsx.errors.xlsx"
    assert errors_book.is_file()  # the bad cell is marked, so September can be fixed in time
    assert any(text.startswith(label) for text in cells(errors_book, "错误清单 Errors"))
    manifest = json.loads((result.period_dir / "audit" / "manifest.json").read_text("utf-8"))
    assert manifest["counts"]["errors"] == 0 and manifest["counts"]["other_periods"] == 1
    assert [w["where"] for w in manifest["warnings"]] == ["actuals.xlsx!实际值 Actuals!D5"]


@pytest.mark.parametrize("case", ["personal_bad_weight", "role_bad_target", "personal_weights_90"])
def test_agreement_error_of_another_month_does_not_fail_the_month(tmp_path, case):
    employee_kpis, roles = [], role_rows()
    if case == "personal_bad_weight":
        employee_kpis = [{"employee_id": "M002", "period": "2026-09", "indicator_id": k, "weight": w, "target": t}
                         for k, w, t in (("K1", "abc", 200), ("K2", 30, 15), ("K3", 10, "2%"))]
    elif case == "role_bad_target":
        roles[0] = dict(roles[0], target="二百")  # 2026-09, K1
    else:
        employee_kpis = [{"employee_id": "M002", "period": "2026-09", "indicator_id": k, "weight": w, "target": t}
                         for k, w, t in (("K1", 50, 200), ("K2", 30, 15), ("K3", 10, "2%"))]
    folder = inbox(tmp_path / "inbox", role_kpis=roles, employee_kpis=employee_kpis)
    code, report = run_json(folder, "2026-10", tmp_path / "out")
    assert code == 0 and report["scored"] == 2 and report["errors"] == []
    assert {f["period"] for f in report["other_period_findings"]} == {"2026-09"}
    assert any(f["severity"] == "error" for f in report["other_period_findings"])
    code, report = run_json(folder, "2026-09", tmp_path / "out")
    assert code == 1
    unscored = ["M001", "M002"] if case == "role_bad_target" else ["M002"]
    assert [u["employee_id"] for u in report["unscored"]] == unscored


def test_a_quarter_counts_errors_in_rows_of_its_months(tmp_path):
    folder = inbox(tmp_path / "inbox", role_kpis=role_rows(("2026-Q3", "2026-10")),
                   actuals=actual_rows(("2026-07", "2026-08", "2026-09", "2026-10"),
                                       bad={("M002", "2026-09", "K1"): "abc", ("M001", "2026-10", "K2"): "十二"}))
    code, report = run_json(folder, "2026-Q3", tmp_path / "out")
    assert code == 1
    assert [u["employee_id"] for u in report["unscored"]] == ["M002"]
    assert [(e["rule"], e["period"]) for e in report["errors"]] == [("not_a_number", "2026-09")]
    assert [(f["rule"], f["period"]) for f in report["other_period_findings"]] == [("not_a_number", "2026-10")]
    # and the month after the quarter is judged on its own rows: M001's October is wrong
    code, report = run_json(folder, "2026-10", tmp_path / "out")
    assert code == 1
    assert [u["employee_id"] for u in report["unscored"]] == ["M001"]
    assert [(f["rule"], f["period"]) for f in report["other_period_findings"]] == [("not_a_number", "2026-09")]


def test_a_row_whose_period_cannot_be_read_still_counts(tmp_path):
    rows = actual_rows() + [{"employee_id": "M002", "period": "九月", "indicator_id": "K1", "actual": 1}]
    code, report = run_json(inbox(tmp_path / "inbox", actuals=rows), "2026-10", tmp_path / "out")
    assert code == 1
    assert [(e["rule"], e["period"]) for e in report["errors"]] == [("bad_period", "")]


def test_period_with_no_data_names_the_periods_held_and_writes_nothing(tmp_path):
    folder = inbox(tmp_path / "inbox", actuals=actual_rows(bad={("M002", "2026-09", "K1"): "abc"}))
    out = tmp_path / "out"
    result = kpi("run", folder, "--period", "2025-01", "--out", out, "--jobs", 1)
    assert result.exit_code == 1
    assert result.output.strip() == ("收件箱中没有 2025-01 的数据。收件箱中有的考核周期:2026-09、2026-10 / "
                                     "The inbox has no data for 2025-01. Periods in the inbox: 2026-09, 2026-10")
    assert not out.exists()
    english = kpi("run", folder, "--period", "2025-01", "--out", out, "--lang", "en")
    assert english.output.strip() == "The inbox has no data for 2025-01. Periods in the inbox: 2026-09, 2026-10"
    code, report = run_json(folder, "2025-01", out)
    assert code == 1 and report["no_data"] is True and report["scored"] == 0 and report["files"] == []
    assert report["periods_in_inbox"] == ["2026-09", "2026-10"]
    assert [e["rule"] for e in report["errors"]] == ["no_period_data"]
    assert not out.exists()


def test_period_with_no_data_leaves_earlier_outputs_alone(tmp_path):
    folder = inbox(tmp_path / "inbox")
    out = tmp_path / "out"
    assert run_batch(folder, "2026-10", out, load_policy(), jobs=1).exit_code == 0
    quarter = run_batch(folder, "2026-Q4", out, load_policy(), jobs=1)
    assert quarter.no_data is False  # no 2026-Q4 row, but October is one of its months: not "no data"
    assert quarter.exit_code == 1 and quarter.period_dir.is_dir()  # nobody has 2026-Q4 agreements
    before = {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")}
    nothing = run_batch(folder, "2027", out, load_policy(), jobs=1)
    assert nothing.no_data and nothing.exit_code == 1 and nothing.scores is None and nothing.files == []
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert not (out / "2027").exists()


def test_an_unreadable_file_is_shown_before_the_no_data_line(tmp_path):
    folder = inbox(tmp_path / "inbox")
    (folder / "actuals_2025.xlsx").write_bytes(b"not a workbook")
    result = kpi("run", folder, "--period", "2025-01", "--out", tmp_path / "out", "--lang", "en")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == "The inbox has no data for 2025-01. Periods in the inbox: 2026-09, 2026-10"
    assert "actuals_2025.xlsx" in result.output and "[unreadable]" in result.output


# ------------------------------------------------------------------------------ kpi validate

def test_validate_with_a_period_does_not_fail_on_other_periods(tmp_path):
    folder = inbox(tmp_path / "inbox", actuals=actual_rows(bad={("M002", "2026-09", "K1"): "abc"}))
    everything = kpi("validate", folder, "--lang", "en")
    assert everything.exit_code == 1  # without a period, every error counts (as before)
    assert everything.output.strip().splitlines()[-1] == "Checked 4 files: 1 error, 0 warnings."
    october = kpi("validate", folder, "--period", "2026-10", "--lang", "en")
    assert october.exit_code == 0, october.output
    lines = october.output.strip().splitlines()
    assert lines[-2:] == ["Checked 4 files: 0 errors, 0 warnings.",
                          "1 more finding concerns another period (2026-09)"]
    assert "[Error of period 2026-09: does not affect this 2026-10 run]" in october.output  # still listed
    assert kpi("validate", folder, "--period", "2026-09").exit_code == 1
    assert kpi("validate", folder, "--period", "2026-Q3").exit_code == 1  # September is one of its months
    listed = json.loads(kpi("validate", folder, "--period", "2026-10", "--json").stdout)
    assert [(f["rule"], f["severity"], f["period"]) for f in listed] == [("not_a_number", "warning", "2026-09")]
