"""Scale slips and ratio preconditions: plausible numbers that would score wrong without a word.

Each inbox is seed 000's sales team (S001, S002 in 销售) with one indicator filled the way HR
fills it. Columns: RoleKPIs/EmployeeKPIs D 权重, E 基础值, F 目标值, G 冲刺值; actuals D 实际值.
"""

from __future__ import annotations

from pathlib import Path

from builders import (
    assert_messages,
    seed_roster,
    sheet_name,
    write_inbox,
)

from pipeline.policy import load_policy
from pipeline.reader import read_inbox
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
