"""Cascade: department targets against the individual targets and actuals, by aggregation.

Only `sum` indicators add up across employees; for `mean` and `last` (期末) indicators the
department compares the mean of its employees' targets (and actuals): a rate or a level is
never summed across people. Every number below is worked out by hand.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from builders import write_inbox

from pipeline.policy import load_policy
from pipeline.reader import read_inbox
from pipeline.scoring import score_period
from pipeline.validate import validate

QUARTER = "2026-Q3"
MONTHS = ("2026-07", "2026-08", "2026-09")
PEOPLE = ("E1", "E2", "E3")

ROSTER = [
    {"employee_id": "E1", "name": "甲", "department": "销售部", "position": "销售代表", "role_family": "市场"},
    {"employee_id": "E2", "name": "乙", "department": "销售部", "position": "销售代表", "role_family": "市场"},
    {"employee_id": "E3", "name": "丙", "department": "销售部", "position": "销售代表", "role_family": "市场"},
]
INDICATORS = [  # as HR types them: Chinese choices
    {"indicator_id": "KS", "name": "销售额", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "万元", "aggregation": "求和"},
    {"indicator_id": "KM", "name": "回款率", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "%", "aggregation": "平均"},
    {"indicator_id": "KL", "name": "期末客户数", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "个", "aggregation": "期末"},
    {"indicator_id": "KN", "name": "新客户数", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "个"},  # no aggregation typed: sum
]
WEIGHTS = {"KS": "40%", "KM": "30%", "KL": "20%", "KN": "10%"}
TARGETS = {  # personal quarterly targets
    "E1": {"KS": 100, "KM": "90%", "KL": 10, "KN": 5},
    "E2": {"KS": 200, "KM": "95%", "KL": 20, "KN": 6},
    "E3": {"KS": 300, "KM": "85%", "KL": 30, "KN": 7},
}
MONTHLY = {  # July, August, September
    "E1": {"KS": (30, 30, 40), "KM": ("80%", "90%", "100%"), "KL": (8, 9, 12), "KN": (1, 2, 2)},
    "E2": {"KS": (60, 70, 80), "KM": ("90%", "95%", "100%"), "KL": (15, 16, 18), "KN": (2, 2, 2)},
    "E3": {"KS": (100, 110, 120), "KM": ("85%", "88%", "91%"), "KL": (25, 26, 27), "KN": (3, 3, 3)},
}
DEPARTMENT_TARGETS = {"KS": 500, "KM": "92%", "KL": 25, "KN": 15}


@pytest.fixture(scope="module")
def cascade(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("cascade") / "inbox"
    write_inbox(
        folder, roster=ROSTER, indicators=INDICATORS,
        employee_kpis=[{"employee_id": e, "period": QUARTER, "indicator_id": k, "weight": WEIGHTS[k], "target": t}
                       for e, targets in TARGETS.items() for k, t in targets.items()],
        actuals=[{"employee_id": e, "period": month, "indicator_id": k, "actual": values[i]}
                 for e, by_indicator in MONTHLY.items() for k, values in by_indicator.items()
                 for i, month in enumerate(MONTHS)],
        dept_targets=[{"department": "销售部", "period": QUARTER, "indicator_id": k, "target": t}
                      for k, t in DEPARTMENT_TARGETS.items()],
    )
    policy = load_policy()
    inputs = validate(read_inbox(folder), policy, QUARTER)
    assert [f.message_en for f in inputs.findings if f.is_error] == []
    scores = score_period(inputs, policy, QUARTER)
    assert sorted(scores.totals["employee_id"]) == list(PEOPLE)
    return scores.cascade.set_index("indicator_id")


def test_sum_indicator_adds_targets_and_actuals_across_employees(cascade):
    ks = cascade.loc["KS"]
    assert ks["employees"] == 3
    assert ks["individual_targets"] == 100 + 200 + 300
    assert ks["coverage"] == pytest.approx(600 / 500)
    # each employee's quarter is the sum of the months: 100, 210, 330
    assert ks["actual"] == 100 + 210 + 330
    assert ks["department_achievement"] == pytest.approx(640 / 500)


def test_mean_indicator_compares_the_mean_of_the_rates(cascade):
    km = cascade.loc["KM"]
    assert km["individual_targets"] == pytest.approx((0.90 + 0.95 + 0.85) / 3)  # 0.90, never 2.70
    assert km["coverage"] == pytest.approx(0.90 / 0.92)
    # each employee's quarter is the mean of the months: 0.90, 0.95, 0.88; the department's their mean
    assert km["actual"] == pytest.approx(0.91)
    assert km["department_achievement"] == pytest.approx(0.91 / 0.92)


def test_last_indicator_compares_the_mean_of_the_levels(cascade):
    kl = cascade.loc["KL"]
    assert kl["individual_targets"] == pytest.approx((10 + 20 + 30) / 3)  # 20, not the 60 a sum would give
    assert kl["coverage"] == pytest.approx(20 / 25)
    # each employee's quarter is September's level: 12, 18, 27
    assert kl["actual"] == pytest.approx((12 + 18 + 27) / 3)
    assert kl["department_achievement"] == pytest.approx(19 / 25)


def test_indicator_without_aggregation_adds_up_as_a_sum(cascade):
    kn = cascade.loc["KN"]
    assert kn["individual_targets"] == 5 + 6 + 7
    assert kn["coverage"] == pytest.approx(18 / 15)
    assert kn["actual"] == 5 + 6 + 9
    assert kn["department_achievement"] == pytest.approx(20 / 15)


def test_month_period_with_a_last_indicator_uses_the_mean_of_the_targets(tmp_path: Path):
    folder = write_inbox(
        tmp_path / "inbox", roster=ROSTER, indicators=INDICATORS,
        role_kpis=[{"role_family": "市场", "period": "2026-10", "indicator_id": "KL", "weight": 100, "target": 20}],
        employee_kpis=[{"employee_id": "E3", "period": "2026-10", "indicator_id": "KL", "weight": 100, "target": 32}],
        actuals=[{"employee_id": e, "period": "2026-10", "indicator_id": "KL", "actual": a}
                 for e, a in (("E1", 18), ("E2", 21), ("E3", 30))],
        dept_targets=[{"department": "销售部", "period": "2026-10", "indicator_id": "KL", "target": 24}],
    )
    policy = load_policy()
    inputs = validate(read_inbox(folder), policy, "2026-10")
    scores = score_period(inputs, policy, "2026-10")
    kl = scores.cascade.set_index("indicator_id").loc["KL"]
    assert kl["employees"] == 3
    assert kl["individual_targets"] == pytest.approx((20 + 20 + 32) / 3)  # two by role, one personal: 24
    assert kl["coverage"] == pytest.approx(1.0)
    assert kl["actual"] == pytest.approx((18 + 21 + 30) / 3)  # 23
    assert kl["department_achievement"] == pytest.approx(23 / 24)
