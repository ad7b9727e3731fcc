"""Validation checks (SPEC §1–§3): one test per check, each on an inbox built the way HR fills
it (seed 000's sales team, then one thing wrong), asserting the rule and the exact cell.

Columns: roster A 员工编号 … E 岗位类别, F 直属上级编号; indicators A 指标编号 … E 方向, F 计分方式;
RoleKPIs/EmployeeKPIs A 岗位类别/员工编号, B 考核周期, C 指标编号, D 权重, E 基础值, F 目标值,
G 冲刺值; actuals A 员工编号, B 考核周期, C 指标编号, D 实际值; ratings … F 分数.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import (
    assert_messages,
    seed_000_inbox,
    seed_actuals,
    seed_indicators,
    seed_role_kpis,
    seed_roster,
    sheet_name,
    table,
    write_actuals,
    write_agreements,
    write_book,
    write_indicators,
    write_ratings,
    write_roster,
)

from pipeline.policy import load_policy
from pipeline.reader import read_inbox
from pipeline.validate import Inputs, validate

PERIOD = "2026-Q3"
ROSTER = sheet_name("roster")
INDICATORS = sheet_name("indicators")
ROLE_KPIS = sheet_name("agreements", 0)
EMPLOYEE_KPIS = sheet_name("agreements", 1)
ACTUALS = sheet_name("actuals")
RATINGS = sheet_name("ratings")


# ------------------------------------------------------------------------------ helpers

def run(folder: Path, period: str | None = PERIOD) -> Inputs:
    return validate(read_inbox(folder), load_policy(), period)


def the(inputs: Inputs, rule: str, **where):
    """The one finding of `rule` (at `where`, if given); fails on none or several."""
    found = [f for f in inputs.findings if f.rule == rule
             and all(getattr(f, key) == value for key, value in where.items())]
    assert len(found) == 1, f"expected one {rule} {where}, got {[(f.rule, f.where) for f in inputs.findings]}"
    return found[0]


def errors(inputs: Inputs) -> list[tuple[str, str, str]]:
    return [(f.rule, f.where, f.message_en) for f in inputs.findings if f.is_error]


def rules(inputs: Inputs) -> set[str]:
    return {f.rule for f in inputs.findings}




def blocked_periods(inputs: Inputs, employee: str) -> set[str]:
    return {period for period, _ in inputs.blocked.get(employee, [])}


@pytest.fixture
def inbox(tmp_path) -> Path:
    return seed_000_inbox(tmp_path / "inbox")


def with_indicators(folder: Path, *extra: dict) -> None:
    write_indicators(folder, seed_indicators() + list(extra))


def employee_kpis(folder: Path, rows: list[dict], role_rows: list[dict] | None = None) -> None:
    write_agreements(folder, seed_role_kpis() if role_rows is None else role_rows, rows)


def kpi(indicator: str, weight: object, target: object = None, base: object = None, stretch: object = None,
        employee: str = "S002") -> dict:
    return {"employee_id": employee, "period": PERIOD, "indicator_id": indicator, "weight": weight,
            "base": base, "target": target, "stretch": stretch}


def actual(employee: str, indicator: str, value: object, period: str = PERIOD) -> dict:
    return {"employee_id": employee, "period": period, "indicator_id": indicator, "actual": value}


# ------------------------------------------------------------------------------ the clean case

def test_seed_inbox_has_no_errors(inbox):
    inputs = run(inbox)
    assert not errors(inputs)
    assert inputs.blocked == {} and inputs.bad_role_sets == {} and inputs.bad_indicators == {}
    assert sorted(inputs.roster["employee_id"]) == ["S001", "S002"]
    assert inputs.role_kpis["weight"].tolist() == pytest.approx([0.6, 0.3, 0.1])
    assert inputs.role_kpis["target"].tolist() == pytest.approx([200, 15, 0.02])
    assert inputs.actuals["actual"].tolist() == pytest.approx([210, 12, 0.015] * 2)


def test_a_realistic_messy_inbox_has_no_errors(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    # The roster typed in English with stray spaces; the manager's ID typed as a number.
    roster = [
        {"employee_id": "S001 ", "name": "王经理", "department": "销售部", "position": "销售经理", "role_family": "销售"},
        {"employee_id": " S002", "name": " 李销售 ", "department": "销售部", "role_family": "销售 ",
         "manager_id": "S001", "status": "active"},
        {"employee_id": 1003.0, "name": "张销售", "department": "销售部", "role_family": "销售",
         "manager_id": "S001", "status": "在职"},
    ]
    roster_rows = table("roster", roster, style="en")
    write_book(folder / "花名册.xlsx", {"Sheet1": roster_rows})
    # Indicators with English and mixed-case choices, an example row, a title row above.
    indicators = table("indicators", [
        {"indicator_id": "示例KPI-01", "name": "示例", "dimension": "业绩", "direction": "越高越好", "method": "比率"},
        {"indicator_id": "K1", "name": "销售额", "dimension": "performance", "direction": "Higher", "method": "RATIO"},
        {"indicator_id": "K2", "name": "新客户数", "dimension": "业绩 performance", "direction": "越高越好",
         "method": "比率", "aggregation": "Sum"},
        {"indicator_id": "K3", "name": "客户投诉率", "dimension": "业绩", "direction": "lower", "method": "pass_fail",
         "aggregation": "平均"},
    ])
    write_book(folder / "指标库.xlsx", {INDICATORS: indicators}, start_row={INDICATORS: 3},
               cells={INDICATORS: {"A1": "2026 年指标库"}}, merges={INDICATORS: ["A1:J1"]})
    # Weights typed three ways, targets with thousands separators and full-width digits.
    role = table("agreements", [
        {"role_family": "销售", "period": "2026年第3季度", "indicator_id": "K1", "weight": "60%", "target": "2,000"},
        {"role_family": "销售", "period": "2026Q3", "indicator_id": "K2", "weight": "３０", "target": "１５"},
        {"role_family": "销售", "period": "2026-q3", "indicator_id": "K3", "weight": 0.1, "target": "2%"},
    ], 0)
    write_book(folder / "agreements.xlsx", {ROLE_KPIS: role, EMPLOYEE_KPIS: table("agreements", [], 1)},
               number_formats={ROLE_KPIS: {"D4": "0%"}})
    # Monthly actuals in two department files, with blank rows and messy numbers.
    months = ["2026-07", "2026-08", "2026-09"]
    first = [actual(e, "K1", "700", m) for e in ("S001", "S002 ") for m in months]
    second = [actual(e, i, v, m) for e in ("S002", "1003") for m in months
              for i, v in (("K2", "４"), ("K3", "1.5%"))]
    second += [actual("1003", "K1", "1,000", m) for m in months] + [actual("S001", i, v, m) for m in months
                                                                    for i, v in (("K2", 4), ("K3", 0.01))]
    write_actuals(folder, first, "sales_actuals.xlsx")
    rows = table("actuals", second)
    write_book(folder / "crm_actuals.xlsx", {"Sheet1": rows[:4] + [[]] + rows[4:]})
    inputs = run(folder)
    assert not errors(inputs)
    assert inputs.blocked == {}
    assert sorted(inputs.roster["employee_id"]) == ["1003", "S001", "S002"]
    assert inputs.roster.set_index("employee_id").loc["S002", "role_family"] == "销售"
    assert inputs.role_kpis["period"].tolist() == [PERIOD] * 3
    assert inputs.role_kpis["weight"].tolist() == pytest.approx([0.6, 0.3, 0.1])
    assert inputs.role_kpis["target"].tolist() == pytest.approx([2000, 15, 0.02])
    assert inputs.indicators["indicator_id"].tolist() == ["K1", "K2", "K3"]
    assert len(inputs.actuals) == 27
    assert set(inputs.actuals["employee_id"]) == {"S001", "S002", "1003"}


# ------------------------------------------------------------------------------ values

def test_required_empty_cell(inbox):
    roster = seed_roster()
    roster[1]["name"] = None
    write_roster(inbox, roster)
    inputs = run(inbox)
    f = the(inputs, "required")
    assert f.where == f"roster.xlsx!{ROSTER}!B3"
    assert f.column == "姓名 Name"
    assert_messages(f, "姓名 Name")
    assert "" in blocked_periods(inputs, "S002")
    assert [e for e in errors(inputs) if e[0] != "required"] == []


def test_blank_required_cell_is_not_confused_with_a_blank_row(inbox):
    actuals = seed_actuals()
    actuals[4]["actual"] = "  "
    write_actuals(inbox, actuals)
    inputs = run(inbox)
    f = the(inputs, "required")
    assert f.where == f"actuals.xlsx!{ACTUALS}!D6"
    assert_messages(f, "实际值 Actual")
    assert PERIOD in blocked_periods(inputs, "S002")


def test_duplicate_employee_in_the_roster_names_both_cells(inbox):
    write_roster(inbox, seed_roster() + [{"employee_id": "S002", "name": "李销售(重复)", "department": "销售部",
                                          "role_family": "销售", "manager_id": "S001"}])
    inputs = run(inbox)
    dups = sorted((f for f in inputs.findings if f.rule == "duplicate_key"), key=lambda f: f.cell)
    assert [f.where for f in dups] == [f"roster.xlsx!{ROSTER}!A3", f"roster.xlsx!{ROSTER}!A4"]
    for f in dups:
        assert_messages(f, "S002", f"roster.xlsx!{ROSTER}!A3", f"roster.xlsx!{ROSTER}!A4")
    assert "" in blocked_periods(inputs, "S002")
    assert "S001" not in inputs.blocked


def test_duplicate_indicator_names_both_cells(inbox):
    with_indicators(inbox, {"indicator_id": "K2", "name": "新客户数(重复)", "dimension": "业绩",
                            "direction": "越高越好", "method": "比率"})
    inputs = run(inbox)
    cells = sorted(f.where for f in inputs.findings if f.rule == "duplicate_key")
    assert cells == [f"indicators.xlsx!{INDICATORS}!A3", f"indicators.xlsx!{INDICATORS}!A5"]
    assert "K2" in inputs.bad_indicators


def test_same_actual_in_two_department_files_is_a_conflict(inbox):
    (inbox / "actuals.xlsx").unlink()
    write_actuals(inbox, seed_actuals(("S001",)), "销售部实际值.xlsx")
    write_actuals(inbox, seed_actuals(("S002",)) + [actual("S002", "K1", 250)], "财务部实际值.xlsx")
    inputs = run(inbox)
    conflicts = sorted((f for f in inputs.findings if f.rule == "conflict"), key=lambda f: f.file)
    first, second = f"财务部实际值.xlsx!{ACTUALS}!D2", f"财务部实际值.xlsx!{ACTUALS}!D5"
    assert [f.where for f in conflicts] == [first, second]
    # and across files:
    write_actuals(inbox, seed_actuals(("S002",)), "财务部实际值.xlsx")
    write_actuals(inbox, seed_actuals(("S001",)) + [actual("S002", "K1", 250)], "销售部实际值.xlsx")
    inputs = run(inbox)
    conflicts = sorted((f for f in inputs.findings if f.rule == "conflict"), key=lambda f: f.file)
    first, second = f"财务部实际值.xlsx!{ACTUALS}!D2", f"销售部实际值.xlsx!{ACTUALS}!D5"
    assert [f.where for f in conflicts] == [first, second]
    for f in conflicts:
        assert f.employee_id == "S002" and f.period == PERIOD
        assert_messages(f, first, second, "S002", "K1")
    assert PERIOD in blocked_periods(inputs, "S002")
    assert "S001" not in inputs.blocked
    assert not [e for e in errors(inputs) if e[0] != "conflict"]


def test_unknown_employee_in_actuals(inbox):
    write_actuals(inbox, seed_actuals() + [actual("S099", "K1", 100)])
    inputs = run(inbox)
    f = the(inputs, "unknown_employee")
    assert f.where == f"actuals.xlsx!{ACTUALS}!A8"
    assert_messages(f, "S099")
    assert len(errors(inputs)) == 1


def test_unknown_indicator_in_agreements(inbox):
    role = seed_role_kpis()
    role.append({"role_family": "销售", "period": PERIOD, "indicator_id": "K9", "weight": 0, "target": 1})
    write_agreements(inbox, role)
    inputs = run(inbox)
    f = the(inputs, "unknown_indicator")
    assert f.where == f"agreements.xlsx!{ROLE_KPIS}!C5"
    assert_messages(f, "K9")
    assert ("销售", PERIOD) in inputs.bad_role_sets


def test_unknown_indicator_in_employee_kpis_blocks_the_employee(inbox):
    employee_kpis(inbox, [kpi("K1", "60%", 200), kpi("K2", "30%", 15), kpi("KX", "10%", 1)])
    inputs = run(inbox)
    f = the(inputs, "unknown_indicator")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!C4"
    assert_messages(f, "KX")
    assert PERIOD in blocked_periods(inputs, "S002")


def test_unknown_manager(inbox):
    roster = seed_roster()
    roster[1]["manager_id"] = "S999"
    write_roster(inbox, roster)
    inputs = run(inbox)
    f = the(inputs, "unknown_manager")
    assert f.where == f"roster.xlsx!{ROSTER}!F3"
    assert_messages(f, "S999")


def test_manager_may_be_listed_below_the_employee(inbox):
    roster = list(reversed(seed_roster()))
    write_roster(inbox, roster)
    assert not errors(run(inbox))


# ------------------------------------------------------------------------------ agreements

def test_employee_weights_summing_to_90_percent(inbox):
    employee_kpis(inbox, [kpi("K1", "60%", 200), kpi("K2", "20%", 15), kpi("K3", "10%", "2%")])
    inputs = run(inbox)
    f = the(inputs, "weight_sum")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!D2"
    assert f.employee_id == "S002" and f.period == PERIOD
    assert_messages(f, "S002", "90.00%", "D2, D3, D4", PERIOD)
    assert PERIOD in blocked_periods(inputs, "S002")
    assert inputs.employee_kpis.empty


def test_role_weights_summing_to_90_percent(inbox):
    role = seed_role_kpis()
    role[1]["weight"] = 20
    write_agreements(inbox, role)
    inputs = run(inbox)
    f = the(inputs, "weight_sum")
    assert f.where == f"agreements.xlsx!{ROLE_KPIS}!D2"
    assert_messages(f, "销售", "90.00%", "D2, D3, D4", PERIOD)
    assert ("销售", PERIOD) in inputs.bad_role_sets


def test_weights_within_tolerance_are_accepted(inbox):
    with_indicators(inbox, {"indicator_id": "K4", "name": "回款率", "dimension": "业绩", "direction": "越高越好",
                            "method": "比率"})
    employee_kpis(inbox, [kpi("K1", "33.33%", 200), kpi("K2", "33.33%", 15), kpi("K4", "33.34%", 1)])
    write_actuals(inbox, seed_actuals() + [actual("S002", "K4", 1)])
    inputs = run(inbox)
    assert not errors(inputs)


def tiered_indicators(folder: Path) -> None:
    with_indicators(
        folder,
        {"indicator_id": "K4", "name": "毛利率", "dimension": "业绩", "direction": "越高越好", "method": "阶梯"},
        {"indicator_id": "K5", "name": "回款天数", "dimension": "业绩", "direction": "越低越好", "method": "阶梯"},
    )


def test_tiers_out_of_order(inbox):
    tiered_indicators(inbox)
    employee_kpis(inbox, [kpi("K1", "50%", 200), kpi("K4", "30%", base=25, target=20, stretch=30),
                          kpi("K5", "20%", base=30, target=25, stretch=20)])
    write_actuals(inbox, seed_actuals() + [actual("S002", "K4", 22), actual("S002", "K5", 26)])
    inputs = run(inbox)
    f = the(inputs, "tiers_not_monotonic")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!E3"
    assert_messages(f, "25 / 20 / 30")
    assert "递增" in f.message_zh and "increasing" in f.message_en
    assert PERIOD in blocked_periods(inputs, "S002")


def test_tiers_in_order_for_lower_is_better_are_accepted(inbox):
    tiered_indicators(inbox)
    employee_kpis(inbox, [kpi("K1", "50%", 200), kpi("K4", "30%", base=20, target=25, stretch=30),
                          kpi("K5", "20%", base=30, target=25, stretch=20)])
    write_actuals(inbox, seed_actuals() + [actual("S002", "K4", 22), actual("S002", "K5", 26)])
    inputs = run(inbox)
    assert not errors(inputs)
    assert sorted(inputs.employee_kpis["indicator_id"]) == ["K1", "K4", "K5"]


def test_lower_is_better_tiers_in_increasing_order_are_refused(inbox):
    tiered_indicators(inbox)
    employee_kpis(inbox, [kpi("K1", "50%", 200), kpi("K4", "30%", base=20, target=25, stretch=30),
                          kpi("K5", "20%", base=20, target=25, stretch=30)])
    inputs = run(inbox)
    f = the(inputs, "tiers_not_monotonic")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!E4"
    assert "递减" in f.message_zh and "decreasing" in f.message_en


def test_tiered_row_without_stretch(inbox):
    tiered_indicators(inbox)
    employee_kpis(inbox, [kpi("K1", "50%", 200), kpi("K4", "50%", base=20, target=25)])
    inputs = run(inbox)
    f = the(inputs, "missing_tiers")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!G3"
    assert_messages(f, "K4")


def test_ratio_with_target_zero(inbox):
    employee_kpis(inbox, [kpi("K1", "60%", 0), kpi("K2", "30%", 15), kpi("K3", "10%", "2%")])
    inputs = run(inbox)
    f = the(inputs, "zero_target")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!F2"
    assert_messages(f, "K1", "0")
    assert PERIOD in blocked_periods(inputs, "S002")


def test_ratio_without_target(inbox):
    role = seed_role_kpis()
    role[1]["target"] = None
    write_agreements(inbox, role)
    inputs = run(inbox)
    f = the(inputs, "missing_target")
    assert f.where == f"agreements.xlsx!{ROLE_KPIS}!F3"
    assert_messages(f, "K2")


# ------------------------------------------------------------------------------ ratings

def rating(score: object, rater: str, relation: str = "同事", employee: str = "S002") -> dict:
    return {"employee_id": employee, "period": PERIOD, "indicator_id": "K6", "rater_id": rater,
            "relation": relation, "score": score}


@pytest.fixture
def rated_inbox(inbox) -> Path:
    with_indicators(inbox, {"indicator_id": "K6", "name": "团队协作", "dimension": "态度", "direction": "越高越好",
                            "method": "评分"})
    return inbox


def test_rating_outside_1_to_5(rated_inbox):
    write_ratings(rated_inbox, [rating(4, "S001", "上级"), rating(6, "S003")])
    inputs = run(rated_inbox)
    f = the(inputs, "out_of_range")
    assert f.where == f"ratings.xlsx!{RATINGS}!F3"
    assert_messages(f, "6", "1–5")
    assert "6.0" not in f.message_zh + f.message_en
    assert inputs.ratings["rater_id"].tolist() == ["S001"]


def test_rating_not_on_a_half_step(rated_inbox):
    write_ratings(rated_inbox, [rating(3.3, "S001", "上级"), rating(3.5, "S003"), rating("4.5", "S004"),
                                rating(5, "S002", "自评")])
    inputs = run(rated_inbox)
    f = the(inputs, "not_half_step")
    assert f.where == f"ratings.xlsx!{RATINGS}!F2"
    assert_messages(f, "3.3")
    assert not [e for e in errors(inputs) if e[0] != "not_half_step"]
    assert inputs.ratings["score"].tolist() == [3.5, 4.5, 5.0]


def test_rating_relation_must_be_a_choice(rated_inbox):
    write_ratings(rated_inbox, [rating(4, "S001", "老板")])
    inputs = run(rated_inbox)
    f = the(inputs, "bad_choice")
    assert f.where == f"ratings.xlsx!{RATINGS}!E2"
    assert_messages(f, "老板", "上级 supervisor")


# ------------------------------------------------------------------------------ completeness

def test_missing_actual_blocks_the_employee(inbox):
    actuals = [a for a in seed_actuals() if not (a["employee_id"] == "S002" and a["indicator_id"] == "K2")]
    write_actuals(inbox, actuals)
    inputs = run(inbox)
    f = the(inputs, "missing_actual")
    assert f.where == f"agreements.xlsx!{ROLE_KPIS}!C3"
    assert f.employee_id == "S002" and f.period == PERIOD
    assert_messages(f, "S002", "K2", PERIOD)
    assert PERIOD in blocked_periods(inputs, "S002")
    assert "S001" not in inputs.blocked


def test_monthly_actuals_cover_a_quarter(inbox):
    months = ("2026-07", "2026-08", "2026-09")
    rows = [actual(e, i, v, m) for e in ("S001", "S002") for m in months
            for i, v in (("K1", 70), ("K2", 4), ("K3", "1.5%"))]
    write_actuals(inbox, rows)
    inputs = run(inbox)
    assert not errors(inputs)


def test_missing_actual_for_an_employee_with_personal_kpis(inbox):
    employee_kpis(inbox, [kpi("K1", "70%", 200), kpi("K3", "30%", "2%")])
    actuals = [a for a in seed_actuals() if not (a["employee_id"] == "S002" and a["indicator_id"] == "K3")]
    write_actuals(inbox, actuals)
    inputs = run(inbox)
    f = the(inputs, "missing_actual")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!C3"
    assert_messages(f, "S002", "K3")


def test_missing_rating_blocks_the_employee(rated_inbox):
    employee_kpis(rated_inbox, [kpi("K1", "60%", 200), kpi("K2", "20%", 15), kpi("K6", "20%", 5)])
    write_ratings(rated_inbox, [rating(4, "S001", "上级", employee="S001")])
    inputs = run(rated_inbox)
    f = the(inputs, "missing_rating")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!C4"
    assert_messages(f, "S002", "K6")
    assert PERIOD in blocked_periods(inputs, "S002")


# ------------------------------------------------------------------------------ design warnings

@pytest.fixture
def dimensions_inbox(inbox) -> Path:
    with_indicators(
        inbox,
        {"indicator_id": "K7", "name": "专业能力", "dimension": "能力", "direction": "越高越好", "method": "比率"},
        {"indicator_id": "K8", "name": "出勤率", "dimension": "态度", "direction": "越高越好", "method": "比率"},
    )
    write_actuals(inbox, seed_actuals() + [actual("S002", "K7", 1), actual("S002", "K8", 1)])
    return inbox


def test_two_indicators_warn(dimensions_inbox):
    employee_kpis(dimensions_inbox, [kpi("K1", "70%", 200), kpi("K2", "30%", 15)])
    inputs = run(dimensions_inbox)
    f = the(inputs, "indicator_count", employee_id="S002")
    assert not f.is_error
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!A2"
    assert_messages(f, "S002", "2", "3–8")
    assert not errors(inputs) and "S002" not in inputs.blocked


def test_performance_share_below_60_percent_warns(dimensions_inbox):
    employee_kpis(dimensions_inbox, [kpi("K1", "50%", 200), kpi("K7", "30%", 1), kpi("K8", "20%", 1)])
    inputs = run(dimensions_inbox)
    f = the(inputs, "performance_share", employee_id="S002")
    assert not f.is_error
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!A2"
    assert_messages(f, "S002", "50%", "60%")
    assert not errors(inputs)


def test_equal_weights_warn(dimensions_inbox):
    employee_kpis(dimensions_inbox, [kpi("K1", "25%", 200), kpi("K2", "25%", 15), kpi("K7", "25%", 1),
                                     kpi("K8", "25%", 1)])
    inputs = run(dimensions_inbox)
    f = the(inputs, "equal_weights", employee_id="S002")
    assert not f.is_error
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!A2"
    assert_messages(f, "S002", "4")
    assert not errors(inputs)


def test_unequal_weights_do_not_warn(inbox):
    inputs = run(inbox)
    assert not rules(inputs) & {"equal_weights", "indicator_count", "performance_share"}


# ------------------------------------------------------------------------------ periods and inbox

def test_period_argument_is_normalised(inbox):
    inputs = validate(read_inbox(inbox), load_policy(), "2026年第3季度")
    assert not errors(inputs)
    write_actuals(inbox, seed_actuals(("S001",)))
    inputs = validate(read_inbox(inbox), load_policy(), "2026q3")
    assert {f.employee_id for f in inputs.findings if f.rule == "missing_actual"} == {"S002"}


def test_empty_inbox_names_what_is_missing(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    inputs = run(folder)
    missing = [f for f in inputs.findings if f.rule == "missing_input"]
    assert len(missing) == 3
    assert all(f.message_zh and f.message_en and f.cell == "" for f in missing)


def test_unreadable_file_in_the_inbox_is_a_finding_not_a_crash(inbox):
    (inbox / "extra.xlsx").write_bytes(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + b"\0" * 512)
    inputs = run(inbox)
    f = the(inputs, "unreadable")
    assert f.where == "extra.xlsx"
    assert len(errors(inputs)) == 1


# ------------------------------------------------------------------------------ one error, one message

def test_missing_required_column_blocks_whoever_the_sheet_concerns(inbox):
    rows = [[a["employee_id"], a["period"], a["indicator_id"]] for a in seed_actuals()]
    write_book(inbox / "actuals.xlsx", {ACTUALS: [["员工编号", "考核周期", "指标编号"]] + rows})
    inputs = run(inbox)
    f = the(inputs, "missing_column")
    assert f.where == f"actuals.xlsx!{ACTUALS}!1"
    assert_messages(f, "实际值 Actual")
    assert inputs.actuals.empty
    for employee in ("S001", "S002"):
        assert {(p, r.rule) for p, r in inputs.blocked[employee]} == {(PERIOD, "missing_column")}
    assert [e[0] for e in errors(inputs)] == ["missing_column"]


def test_unknown_indicator_does_not_also_claim_the_weights_are_wrong(inbox):
    role = seed_role_kpis()
    role[2]["indicator_id"] = "K33"
    write_agreements(inbox, role)
    inputs = run(inbox)
    f = the(inputs, "unknown_indicator")
    assert f.where == f"agreements.xlsx!{ROLE_KPIS}!C4"
    assert "weight_sum" not in rules(inputs)
    assert inputs.bad_role_sets[("销售", PERIOD)] is f


def test_weight_that_is_not_a_number_is_reported_once(inbox):
    employee_kpis(inbox, [kpi("K1", "60%", 200), kpi("K2", "三成", 15), kpi("K3", "10%", "2%")])
    inputs = run(inbox)
    f = the(inputs, "not_a_number")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!D3"
    assert_messages(f, "三成", "权重 Weight")
    assert "weight_sum" not in rules(inputs)
    assert PERIOD in blocked_periods(inputs, "S002")


def test_weights_of_one_employee_across_two_files_name_the_files(inbox):
    write_agreements(inbox, seed_role_kpis(), [kpi("K1", "60%", 200), kpi("K2", "20%", 15)])
    write_agreements(inbox, [], [kpi("K3", "10%", "2%")], name="agreements_extra.xlsx")
    inputs = run(inbox)
    f = the(inputs, "weight_sum")
    assert_messages(f, "90.00%", f"agreements.xlsx!{EMPLOYEE_KPIS}!D2",
                    f"agreements_extra.xlsx!{EMPLOYEE_KPIS}!D2")


def test_negative_weight(inbox):
    employee_kpis(inbox, [kpi("K1", "60%", 200), kpi("K2", "50%", 15), kpi("K3", "-10%", "2%")])
    inputs = run(inbox)
    f = the(inputs, "negative")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!D4"
    assert_messages(f, "-10%", "权重 Weight")
    assert PERIOD in blocked_periods(inputs, "S002")


def test_expert_score_outside_1_to_10(inbox):
    sheet = sheet_name("weights", 0)
    write_book(inbox / "weights.xlsx", {sheet: table("weights", [
        {"role_family": "销售", "expert_id": "X1", "indicator_id": "K1", "score": 8},
        {"role_family": "销售", "expert_id": "X1", "indicator_id": "K2", "score": "11"},
    ])})
    inputs = run(inbox)
    f = the(inputs, "out_of_range")
    assert f.where == f"weights.xlsx!{sheet}!D3"
    assert_messages(f, "11", "1–10", "重要性分数 Importance score")
    assert inputs.expert_scores["score"].tolist() == [8.0]


def test_the_same_actuals_file_dropped_twice_is_used_once_with_one_warning(inbox):
    # Issue 14 changed this: it used to be one conflict per row (2 × 30 errors); a copy of a file
    # is now one warning naming both files, and the rows are used once.
    rows = [actual(e, "K1", 100 + i, f"2026-{m:02d}") for i, e in enumerate(["S001", "S002"])
            for m in range(1, 13)] + seed_actuals()
    write_actuals(inbox, rows)
    write_actuals(inbox, rows, "actuals (1).xlsx")
    inputs = run(inbox)
    assert not [f for f in inputs.findings if f.rule == "conflict"]
    f = the(inputs, "duplicate_file")
    assert f.file == "actuals (1).xlsx" and not f.is_error
    assert_messages(f, "actuals.xlsx")
    assert len(inputs.actuals) == len(rows) and set(inputs.actuals["_file"]) == {"actuals.xlsx"}
    assert not [f for reasons in inputs.blocked.values() for _, f in reasons if f.file == "actuals (1).xlsx"]
