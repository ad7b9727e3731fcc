"""Roll-ups that say what they did: missing months, a period row beside monthly rows, 360
ratings entered month by month, and ratings that exist but that the policy does not count.

Inboxes are xlsx files written the way HR fills them (tests/builders.py).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from builders import write_inbox

from pipeline.policy import load_policy, parse_policy
from pipeline.reader import read_inbox
from pipeline.scoring import score_period
from pipeline.validate import validate

POLICY = load_policy()
PEOPLE = [{"employee_id": "E1", "name": "甲", "department": "销售部", "position": "销售", "role_family": "销售"},
          {"employee_id": "E2", "name": "乙", "department": "研发部", "position": "工程师", "role_family": "研发"}]
INDICATORS = [
    {"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "aggregation": "求和", "unit": "万元"},
    {"indicator_id": "A1", "name": "责任心", "dimension": "态度", "direction": "越高越好", "method": "评分",
     "aggregation": "平均"},
]
ROLE = [{"role_family": family, "period": "2026-Q3", "indicator_id": k, "weight": w, "target": t}
        for family in ("销售", "研发") for k, w, t in (("K1", "80%", 300), ("A1", "20%", None))]


def monthly(employee: str, values: dict[str, object]) -> list[dict]:
    return [{"employee_id": employee, "period": month, "indicator_id": "K1", "actual": value}
            for month, value in values.items()]


def rating(employee: str, period: str, relation: str, score: float, rater: str = "R1") -> dict:
    return {"employee_id": employee, "period": period, "indicator_id": "A1", "rater_id": rater,
            "relation": relation, "score": score}


FULL_RATINGS = [rating("E1", "2026-Q3", "上级", 4), rating("E2", "2026-Q3", "上级", 4)]


def run(folder: Path, actuals: list[dict], ratings: list[dict] = FULL_RATINGS, policy=POLICY):
    write_inbox(folder, roster=PEOPLE, indicators=INDICATORS, role_kpis=ROLE, actuals=actuals, ratings=ratings)
    inputs = validate(read_inbox(folder), policy, "2026-Q3")
    return inputs, score_period(inputs, policy, "2026-Q3")


def findings(inputs, rule: str) -> list:
    return [f for f in inputs.findings if f.rule == rule]


def test_missing_month_is_a_warning_naming_employee_indicator_and_months(tmp_path: Path) -> None:
    actuals = (monthly("E1", {"2026-07": 100, "2026-08": 120})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    inputs, scores = run(tmp_path, actuals)
    [warning] = findings(inputs, "missing_months")
    assert not warning.is_error
    assert (warning.employee_id, warning.period) == ("E1", "2026-Q3")
    assert "K1" in warning.message_en and "2026-09" in warning.message_en
    assert "2026-07, 2026-08" in warning.message_en
    assert "2026-09" in warning.message_zh and "K1" in warning.message_zh
    assert warning.where == "actuals.xlsx!实际值 Actuals!D2"  # E1's first monthly actual
    # still scored, on the months present: (100 + 120) / 300
    assert scores.details.set_index(["employee_id", "indicator_id"]).loc[("E1", "K1"), "actual"] == 220
    assert set(scores.totals["employee_id"]) == {"E1", "E2"}


def test_missing_month_policy_error_keeps_the_employee_out(tmp_path: Path) -> None:
    policy = parse_policy("rollup: {missing_months: error}")
    actuals = (monthly("E1", {"2026-07": 100, "2026-09": 120})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    inputs, scores = run(tmp_path, actuals, policy=policy)
    [error] = findings(inputs, "missing_months_error")
    assert error.is_error and "2026-08" in error.message_en
    assert list(scores.totals["employee_id"]) == ["E2"]
    unscored = scores.unscored.set_index("employee_id")
    assert unscored.loc["E1", "rule"] == "missing_months_error"


def test_policy_refuses_an_unknown_missing_months_mode() -> None:
    with pytest.raises(Exception, match="rollup.missing_months"):
        parse_policy("rollup: {missing_months: ignore}")


def test_period_actual_beside_monthly_actuals_is_an_error_naming_both_cells(tmp_path: Path) -> None:
    actuals = (monthly("E1", {"2026-07": 100, "2026-08": 120, "2026-09": 90, "2026-Q3": 400})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    inputs, scores = run(tmp_path, actuals)
    [error] = findings(inputs, "period_beside_months")
    assert error.is_error and error.employee_id == "E1"
    assert error.cell == "D5"  # the quarterly row
    assert "actuals.xlsx!实际值 Actuals!D5" in error.message_en
    for cell in ("D2", "D3", "D4"):
        assert f"actuals.xlsx!实际值 Actuals!{cell}" in error.message_en
    assert list(scores.totals["employee_id"]) == ["E2"]  # neither 400 nor 310 is guessed


def test_monthly_360_ratings_roll_up_by_mean_of_monthly_weighted_ratings(tmp_path: Path) -> None:
    # 研发 (default weights: supervisor .4, peer .3, self .3).
    # July: supervisor 4, peer 3 → (0.4×4 + 0.3×3) / 0.7; August: supervisor 5 → 5; September none.
    ratings = [rating("E2", "2026-07", "上级", 4), rating("E2", "2026-07", "同事", 3, "R2"),
               rating("E2", "2026-08", "上级", 5), rating("E1", "2026-Q3", "上级", 4)]
    actuals = (monthly("E1", {"2026-07": 100, "2026-08": 100, "2026-09": 100})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    inputs, scores = run(tmp_path, actuals, ratings)
    assert [f.rule for f in inputs.findings if f.is_error] == []
    july = (Fraction(4, 10) * 4 + Fraction(3, 10) * 3) / Fraction(7, 10)
    expected = (july + 5) / 2
    details = scores.details.set_index(["employee_id", "indicator_id"])
    assert details.loc[("E2", "A1"), "actual"] == pytest.approx(float(expected), abs=1e-12)
    assert details.loc[("E2", "A1"), "achievement"] == pytest.approx(float(expected / 5), abs=1e-12)
    # The 360 detail: Σ weight_used × mean_score is the rolled-up rating (the scorecard's SUMPRODUCT)
    detail = scores.ratings[scores.ratings["employee_id"] == "E2"]
    assert sorted(detail["rating_period"]) == ["2026-07", "2026-07", "2026-08"]
    assert (detail["weight_used"] * detail["mean_score"]).sum() == pytest.approx(float(expected), abs=1e-12)


def test_360_rolled_up_with_last_aggregation_takes_the_latest_month(tmp_path: Path) -> None:
    indicators = [dict(INDICATORS[0]), dict(INDICATORS[1], aggregation="期末")]
    ratings = [rating("E2", "2026-07", "上级", 2), rating("E2", "2026-09", "上级", 4.5),
               rating("E1", "2026-Q3", "上级", 4)]
    actuals = (monthly("E1", {"2026-07": 100, "2026-08": 100, "2026-09": 100})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    write_inbox(tmp_path, roster=PEOPLE, indicators=indicators, role_kpis=ROLE, actuals=actuals, ratings=ratings)
    inputs = validate(read_inbox(tmp_path), POLICY, "2026-Q3")
    scores = score_period(inputs, POLICY, "2026-Q3")
    details = scores.details.set_index(["employee_id", "indicator_id"])
    assert details.loc[("E2", "A1"), "actual"] == 4.5


def test_period_rating_beside_monthly_ratings_is_an_error(tmp_path: Path) -> None:
    ratings = [rating("E2", "2026-07", "上级", 4), rating("E2", "2026-Q3", "上级", 3, "R2"),
               rating("E1", "2026-Q3", "上级", 4)]
    actuals = (monthly("E1", {"2026-07": 100, "2026-08": 100, "2026-09": 100})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    inputs, scores = run(tmp_path, actuals, ratings)
    [error] = findings(inputs, "period_beside_months")
    assert error.employee_id == "E2" and "ratings.xlsx" in error.message_en
    assert "E2" not in set(scores.totals["employee_id"])


def test_rated_only_by_relations_the_policy_does_not_count(tmp_path: Path) -> None:
    # 销售 counts supervisor, self and customer; E1 is rated by a peer only
    ratings = [rating("E1", "2026-Q3", "同事", 4), rating("E2", "2026-Q3", "上级", 4)]
    actuals = (monthly("E1", {"2026-07": 100, "2026-08": 100, "2026-09": 100})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    inputs, scores = run(tmp_path, actuals, ratings)
    [error] = findings(inputs, "rating_unweighted")
    assert error.employee_id == "E1"
    assert "同事" in error.message_zh and "上级、自评、客户" in error.message_zh and "销售" in error.message_zh
    assert "peer only" in error.message_en and "supervisor, self, customer" in error.message_en
    assert not findings(inputs, "missing_rating")
    unscored = scores.unscored.set_index("employee_id")
    assert unscored.loc["E1", "rule"] == "rating_unweighted"
    assert "缺少" not in unscored.loc["E1", "reason_zh"]


def test_scorecard_of_a_month_by_month_rated_quarter_recalculates_to_its_cached_values(tmp_path: Path) -> None:
    from recalc import mismatches

    from pipeline.batch import run_batch

    ratings = [rating("E2", "2026-07", "上级", 4), rating("E2", "2026-07", "同事", 3, "R2"),
               rating("E2", "2026-08", "上级", 5), rating("E1", "2026-Q3", "上级", 4)]
    actuals = (monthly("E1", {"2026-07": 100, "2026-08": 100, "2026-09": 100})
               + monthly("E2", {"2026-07": 100, "2026-08": 100, "2026-09": 100}))
    inbox = write_inbox(tmp_path / "inbox", roster=PEOPLE, indicators=INDICATORS, role_kpis=ROLE, actuals=actuals,
                        ratings=ratings)
    result = run_batch(inbox, "2026-Q3", tmp_path / "out", POLICY, jobs=1)
    book = result.period_dir / "departments" / "研发部.xlsx"
    checked, problems = mismatches(book)
    assert checked > 0 and problems == []
    import openpyxl

    sheet = next(ws for ws in openpyxl.load_workbook(book).worksheets if "E2" in ws.title)
    texts = {str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None}
    assert any(t.endswith(" 7月") for t in texts) and any(t.endswith(" 8月") for t in texts)
