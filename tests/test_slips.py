"""Scale slips and ratio preconditions: plausible numbers that would score wrong without a word.

Each inbox is seed 000's sales team (S001, S002 in 销售) with one indicator filled the way HR
fills it. Columns: RoleKPIs/EmployeeKPIs D 权重, E 基础值, F 目标值, G 冲刺值; actuals D 实际值.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import (
    assert_messages,
    seed_roster,
    sheet_name,
    table,
    write_book,
    write_inbox,
)

from pipeline.policy import PolicyError, load_policy, parse_policy
from pipeline.reader import read_inbox
from pipeline.scoring import score_period
from pipeline.validate import Inputs, validate

PERIOD = "2026-Q3"
ROLE_KPIS = sheet_name("agreements", 0)
EMPLOYEE_KPIS = sheet_name("agreements", 1)
ACTUALS = sheet_name("actuals")


# ------------------------------------------------------------------------------ helpers

def indicator(unit: str = "%", method: str = "比率", direction: str = "越高越好", aggregation: str = "平均",
              indicator_id: str = "K1", name: str = "回款率") -> dict:
    return {"indicator_id": indicator_id, "name": name, "dimension": "业绩", "category": "结果",
            "direction": direction, "method": method, "unit": unit, "aggregation": aggregation}


def role(target: object, stretch: object = None, period: str = PERIOD, indicator_id: str = "K1") -> dict:
    return {"role_family": "销售", "period": period, "indicator_id": indicator_id, "weight": "100%",
            "target": target, "stretch": stretch}


def personal(target: object, employee: str = "S002", stretch: object = None, period: str = PERIOD) -> dict:
    return {"employee_id": employee, "period": period, "indicator_id": "K1", "weight": "100%",
            "target": target, "stretch": stretch}


def actual(employee: str, value: object, period: str = PERIOD, indicator_id: str = "K1") -> dict:
    return {"employee_id": employee, "period": period, "indicator_id": indicator_id, "actual": value}


def inbox(folder: Path, *, indicators: list[dict], actuals: list[dict], role_kpis: list[dict] | None = None,
          employee_kpis: list[dict] | None = None) -> Path:
    return write_inbox(folder, roster=seed_roster(), indicators=indicators, role_kpis=role_kpis or [],
                       employee_kpis=employee_kpis or [], actuals=actuals)


def run(folder: Path, period: str | None = PERIOD, policy=None) -> Inputs:
    return validate(read_inbox(folder), policy or load_policy(), period)


def found(inputs: Inputs, rule: str) -> list:
    return [f for f in inputs.findings if f.rule == rule]


def the(inputs: Inputs, rule: str):
    hits = found(inputs, rule)
    assert len(hits) == 1, f"expected one {rule}, got {[(f.rule, f.where) for f in inputs.findings]}"
    return hits[0]


def blocked_periods(inputs: Inputs, employee: str) -> set[str]:
    return {period for period, _ in inputs.blocked.get(employee, [])}


def unscored(inputs: Inputs, period: str = PERIOD) -> dict[str, str]:
    scores = score_period(inputs, load_policy(), period)
    return dict(zip(scores.unscored["employee_id"], scores.unscored["rule"]))


# ------------------------------------------------------------------------------ percent typed bare

def test_bare_actual_beside_a_percent_target_is_an_error_and_the_employee_is_not_scored(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator()], role_kpis=[role("90%")],
                   actuals=[actual("S001", "92%"), actual("S002", 95)])
    inputs = run(folder)
    f = the(inputs, "percent_slip")
    assert f.is_error
    assert f.where == f"actuals.xlsx!{ACTUALS}!D3"
    assert f.employee_id == "S002" and f.period == PERIOD
    assert "看起来 95 本意是 95%:请写成 95% 或 0.95" in f.message_zh
    assert "looks like 95 was meant as 95%: write 95% or 0.95" in f.message_en.lower()
    assert_messages(f, "K1", "90%", f"agreements.xlsx!{ROLE_KPIS}!F2")
    assert blocked_periods(inputs, "S002") == {PERIOD}
    assert "S001" not in inputs.blocked
    assert unscored(inputs) == {"S002": "percent_slip"}


def test_bare_target_beside_percent_actuals_is_an_error_on_the_role_target(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator()], role_kpis=[role(90)],
                   actuals=[actual("S001", "92%"), actual("S002", "95%")])
    inputs = run(folder)
    f = the(inputs, "percent_slip")  # one finding for the shared target cell, not one per member
    assert f.where == f"agreements.xlsx!{ROLE_KPIS}!F2"
    assert f.employee_id == ""
    assert "90 本意是 90%:请写成 90% 或 0.9" in f.message_zh
    assert_messages(f, f"actuals.xlsx!{ACTUALS}!D2", "92%")
    assert inputs.bad_role_sets[("销售", PERIOD)] is f
    assert unscored(inputs) == {"S001": "percent_slip", "S002": "percent_slip"}


def test_bare_personal_target_blocks_that_employee_only(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator()], role_kpis=[role("90%")], employee_kpis=[personal(90)],
                   actuals=[actual("S001", "92%"), actual("S002", "95%")])
    inputs = run(folder)
    f = the(inputs, "percent_slip")
    assert f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!F2"
    assert f.employee_id == "S002"
    assert blocked_periods(inputs, "S002") == {PERIOD}
    assert inputs.bad_role_sets == {}
    assert unscored(inputs) == {"S002": "percent_slip"}


@pytest.mark.parametrize("unit", ["％", " 百分比 ", "%"])
def test_every_way_of_writing_percent_is_a_percent_unit(tmp_path, unit):
    folder = inbox(tmp_path, indicators=[indicator(unit=unit)], role_kpis=[role("90%")],
                   actuals=[actual("S001", "92%"), actual("S002", 95)])
    assert the(run(folder), "percent_slip").where == f"actuals.xlsx!{ACTUALS}!D3"


def test_a_unit_that_is_not_percent_is_not_checked_for_bare_percents(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator(unit="分")], role_kpis=[role(0.9)],
                   actuals=[actual("S001", 1.2), actual("S002", 3)])
    inputs = run(folder)
    assert found(inputs, "percent_slip") == []
    assert "S002" not in inputs.blocked


def test_a_monthly_cell_of_a_quarter_is_checked_against_the_quarter_target(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator()], role_kpis=[role("90%")],
                   actuals=[actual("S002", v, m) for v, m in (("91%", "2026-07"), (95, "2026-08"), (0.93, "2026-09"))]
                   + [actual("S001", "92%")])
    inputs = run(folder)
    f = the(inputs, "percent_slip")
    assert f.where == f"actuals.xlsx!{ACTUALS}!D3"
    assert blocked_periods(inputs, "S002") == {PERIOD}


def test_a_genuine_250_percent_growth_against_a_200_percent_target_is_not_flagged(tmp_path):
    growth = indicator(name="销售增长率")
    folder = inbox(tmp_path, indicators=[growth], role_kpis=[role("200%")],
                   actuals=[actual("S001", "250%"), actual("S002", 2.1)])
    inputs = run(folder)
    assert [f for f in inputs.findings if f.rule in ("percent_slip", "scale_ratio")] == []
    assert inputs.blocked == {}
    scores = score_period(inputs, load_policy(), PERIOD)
    assert scores.totals.set_index("employee_id")["total"].to_dict() == pytest.approx({"S001": 1.2, "S002": 1.05})


def test_percent_typed_as_text_or_percent_formatted_is_not_flagged(tmp_path):
    write_inbox(tmp_path, roster=seed_roster(), indicators=[indicator()], role_kpis=[role("90%")])
    # S001 typed "95%" as text; S002's cell holds 0.95 shown as 95% by its number format.
    rows = table("actuals", [actual("S001", "95%"), actual("S002", 0.95)])
    write_book(tmp_path / "actuals.xlsx", {ACTUALS: rows}, number_formats={ACTUALS: {"D3": "0%"}})
    inputs = run(tmp_path)
    assert not [f for f in inputs.findings if f.is_error]
    assert found(inputs, "percent_slip") == [] and found(inputs, "scale_ratio") == []
    assert inputs.actuals["actual"].tolist() == pytest.approx([0.95, 0.95])


def test_an_actual_of_zero_says_nothing_about_the_unit(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator()], role_kpis=[role(90)],
                   actuals=[actual("S001", 0), actual("S002", 95)])
    inputs = run(folder)
    assert [f for f in inputs.findings if f.rule in ("percent_slip", "scale_ratio")] == []


# ------------------------------------------------------------------------------ scale ratio

def test_an_actual_hundreds_of_times_its_target_is_a_warning_naming_the_cell(tmp_path):
    sales = indicator(unit="万元", aggregation="求和", name="销售额")
    folder = inbox(tmp_path, indicators=[sales], role_kpis=[role(5000)],
                   actuals=[actual("S001", 5200), actual("S002", 2_000_000)])
    inputs = run(folder)
    f = the(inputs, "scale_ratio")
    assert not f.is_error
    assert f.where == f"actuals.xlsx!{ACTUALS}!D3" and f.employee_id == "S002"
    assert "Actual 2,000,000 is 400× the target 5,000" in f.message_en
    assert "实际值 2,000,000 是目标值 5,000 的 400 倍" in f.message_zh
    assert_messages(f, "K1", "S002")
    assert inputs.blocked == {}


def test_an_actual_hundreds_of_times_below_its_target_is_a_warning(tmp_path):
    sales = indicator(unit="元", aggregation="求和", name="销售额")
    folder = inbox(tmp_path, indicators=[sales], role_kpis=[role(2_000_000)],
                   actuals=[actual("S001", 2_100_000), actual("S002", 210)])
    f = the(run(folder), "scale_ratio")
    assert f.where == f"actuals.xlsx!{ACTUALS}!D3"
    assert "Actual 210 is 1/9,524 of the target 2,000,000" in f.message_en


def test_scale_ratio_follows_the_policy(tmp_path):
    sales = indicator(unit="万元", aggregation="求和", name="销售额")
    folder = inbox(tmp_path, indicators=[sales], role_kpis=[role(5000)],
                   actuals=[actual("S001", 5200), actual("S002", 200_000)])
    assert the(run(folder), "scale_ratio").where == f"actuals.xlsx!{ACTUALS}!D3"  # 40× the target
    lenient = parse_policy("checks: {scale_ratio: 50}")
    assert found(run(folder, policy=lenient), "scale_ratio") == []


def test_monthly_cells_of_a_sum_indicator_count_as_their_share_of_the_quarter(tmp_path):
    sales = indicator(unit="万元", aggregation="求和", name="销售额")
    months = ("2026-07", "2026-08", "2026-09")
    # S001: 180 + 210 + 230 against 600 for the quarter (a month is a third: no warning).
    # S002: August typed in 元 (2,100,000 instead of 210).
    rows = [actual("S001", v, m) for v, m in zip((180, 210, 230), months)]
    rows += [actual("S002", v, m) for v, m in zip((190, 2_100_000, 200), months)]
    folder = inbox(tmp_path, indicators=[sales], role_kpis=[role(600)], actuals=rows)
    f = the(run(folder), "scale_ratio")
    assert f.where == f"actuals.xlsx!{ACTUALS}!D6"
    assert "Monthly actual 2,100,000 × 3 months = 6,300,000 is 10,500× the target 600" in f.message_en


def test_monthly_cells_of_a_mean_indicator_are_compared_as_they_are(tmp_path):
    rate = indicator(unit="%", aggregation="平均", name="毛利率")
    months = ("2026-07", "2026-08", "2026-09")
    rows = [actual("S001", v, m) for v, m in zip(("30%", "31%", "29%"), months)]
    rows += [actual("S002", v, m) for v, m in zip(("30%", "0.3%", "29%"), months)]  # 0.3% for 30%
    folder = inbox(tmp_path, indicators=[rate], role_kpis=[role("30%")], actuals=rows)
    f = the(run(folder), "scale_ratio")
    assert f.where == f"actuals.xlsx!{ACTUALS}!D6"
    assert "Actual 0.003 is 1/100 of the target 0.3" in f.message_en


def test_scale_ratio_must_be_above_one():
    with pytest.raises(PolicyError) as caught:
        parse_policy("checks: {scale_ratio: 1}")
    assert caught.value.key == "checks.scale_ratio"
    assert parse_policy("").scale_ratio == 20


# ------------------------------------------------------------------------------ ratio preconditions

def test_ratio_stretch_below_target_when_higher_is_better(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator(unit="万元", name="销售额")], role_kpis=[role("90%")],
                   employee_kpis=[personal(200, stretch=150)], actuals=[actual("S001", "91%"), actual("S002", 210)])
    inputs = run(folder)
    f = the(inputs, "ratio_stretch_side")
    assert f.is_error and f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!G2"
    assert_messages(f, "K1", "150", "200")
    assert blocked_periods(inputs, "S002") == {PERIOD}


def test_ratio_stretch_above_target_when_lower_is_better(tmp_path):
    complaints = indicator(direction="越低越好", name="客户投诉率")
    folder = inbox(tmp_path, indicators=[complaints], role_kpis=[role("2%", stretch="3%")],
                   actuals=[actual("S001", "1.5%"), actual("S002", "2%")])
    inputs = run(folder)
    f = the(inputs, "ratio_stretch_side")
    assert f.where == f"agreements.xlsx!{ROLE_KPIS}!G2"
    assert "lower is better" in f.message_en and "at most" in f.message_en
    assert ("销售", PERIOD) in inputs.bad_role_sets


def test_ratio_stretch_on_the_right_side_is_accepted(tmp_path):
    folder = inbox(tmp_path, indicators=[indicator(unit="万元", name="销售额")], role_kpis=[role(200, stretch=250)],
                   actuals=[actual("S001", 180), actual("S002", 210)])
    inputs = run(folder)
    assert not [f for f in inputs.findings if f.is_error]


def test_ratio_with_a_negative_target(tmp_path):
    profit = indicator(unit="万元", name="利润")
    folder = inbox(tmp_path, indicators=[profit], role_kpis=[role(10)], employee_kpis=[personal(-50)],
                   actuals=[actual("S001", 12), actual("S002", -20)])
    inputs = run(folder)
    f = the(inputs, "negative_target")
    assert f.is_error and f.where == f"agreements.xlsx!{EMPLOYEE_KPIS}!F2"
    assert_messages(f, "K1", "-50")
    assert "tiered" in f.message_en and "阶梯" in f.message_zh
    assert blocked_periods(inputs, "S002") == {PERIOD}


def test_lower_is_better_ratio_with_a_negative_actual(tmp_path):
    cost = indicator(unit="万元", direction="越低越好", name="费用超支", aggregation="求和")
    months = ("2026-07", "2026-08", "2026-09")
    rows = [actual("S001", -5)]  # a direct quarterly cell
    rows += [actual("S002", v, m) for v, m in zip((4, -2, 3), months)]  # a monthly cell
    folder = inbox(tmp_path, indicators=[cost], role_kpis=[role(10)], actuals=rows)
    inputs = run(folder)
    hits = sorted(found(inputs, "negative_actual_lower_ratio"), key=lambda f: f.cell)
    assert [f.where for f in hits] == [f"actuals.xlsx!{ACTUALS}!D2", f"actuals.xlsx!{ACTUALS}!D4"]
    assert all(f.is_error for f in hits)
    assert_messages(hits[0], "K1", "-5", "lower_is_better: linear")
    assert blocked_periods(inputs, "S001") == {PERIOD} and blocked_periods(inputs, "S002") == {PERIOD}
    assert unscored(inputs) == {"S001": "negative_actual_lower_ratio", "S002": "negative_actual_lower_ratio"}


def test_a_negative_actual_is_fine_under_linear_lower_is_better(tmp_path):
    cost = indicator(unit="万元", direction="越低越好", name="费用超支")
    folder = inbox(tmp_path, indicators=[cost], role_kpis=[role(10)],
                   actuals=[actual("S001", -5), actual("S002", 8)])
    inputs = run(folder, policy=parse_policy("achievement: {lower_is_better: linear}"))
    assert found(inputs, "negative_actual_lower_ratio") == []
    assert inputs.blocked == {}


# ------------------------------------------------------------------------------ several periods

def test_a_monthly_cell_shared_by_a_month_and_its_quarter_is_reported_once_and_blocks_both(tmp_path):
    months = ("2026-07", "2026-08", "2026-09")
    rows = [actual(e, v, m) for e in ("S001", "S002") for v, m in zip(("90%", "91%", "92%"), months)]
    rows[3] = actual("S002", 95, "2026-07")
    folder = inbox(tmp_path, indicators=[indicator()], role_kpis=[role("90%"), role("90%", period="2026-07")],
                   actuals=rows)
    inputs = run(folder, period=None)
    f = the(inputs, "percent_slip")
    assert f.where == f"actuals.xlsx!{ACTUALS}!D5"
    assert blocked_periods(inputs, "S002") == {"2026-07", PERIOD}
