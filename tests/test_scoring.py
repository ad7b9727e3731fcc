"""Scoring (SPEC §3): methods, clipping, totals, 360 ratings, rounding, grades, roll-ups, views.

Every expected number is computed here from the SPEC formula (by hand or with plain Python
arithmetic on the inputs), never by calling the function under test.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import memory_inbox, seed_000_inbox, typed_inputs, write_inbox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.policy import load_policy, parse_policy
from pipeline.reader import read_inbox
from pipeline.scoring import (
    DETAIL_COLUMNS,
    TOTAL_COLUMNS,
    achievement,
    calibration,
    clip,
    forced_grades,
    grade_for,
    half_up,
    period_actuals,
    rating_scores,
    rounded_percent,
    score_period,
)
from pipeline.validate import validate

POLICY = load_policy()
NAN = float("nan")
EPS = 1e-12


def ach(method: str, direction: str, a: float, t: float = NAN, b: float = NAN, s: float = NAN,
        policy=POLICY) -> float:
    """The unclipped achievement of one row."""
    out = achievement(pd.Series([method]), pd.Series([direction]), pd.Series([a], dtype=float),
                      pd.Series([t], dtype=float), pd.Series([b], dtype=float), pd.Series([s], dtype=float),
                      policy)
    return float(out.iloc[0])


def clipped(method: str, direction: str, a: float, t: float = NAN, b: float = NAN, s: float = NAN,
            policy=POLICY) -> float:
    raw = achievement(pd.Series([method]), pd.Series([direction]), pd.Series([a], dtype=float),
                      pd.Series([t], dtype=float), pd.Series([b], dtype=float), pd.Series([s], dtype=float),
                      policy)
    return float(clip(raw, policy).iloc[0])


def run(folder: Path, period: str, policy=POLICY):
    inputs = validate(read_inbox(folder), policy, period)
    return inputs, score_period(inputs, policy, period)


def errors(inputs) -> list[str]:
    return [f"{f.rule}: {f.message_en}" for f in inputs.findings if f.is_error]


def row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(frame), dtype=bool)
    for key, value in where.items():
        mask &= (frame[key] == value).to_numpy()
    assert mask.sum() == 1, f"expected one row for {where}, found {int(mask.sum())}"
    return frame[mask].iloc[0]


PEOPLE = [
    {"employee_id": "E1", "name": "甲", "department": "研发部", "position": "工程师", "role_family": "研发"},
]


def indicator(indicator_id: str, method: str, direction: str = "higher", aggregation: str = "sum",
              dimension: str = "performance", name: str | None = None) -> dict:
    return {"indicator_id": indicator_id, "name": name or indicator_id, "dimension": dimension,
            "direction": direction, "method": method, "aggregation": aggregation}


# =========================================================================== worked examples


def test_worked_example_1_seed_000_end_to_end(tmp_path: Path) -> None:
    inputs, scores = run(seed_000_inbox(tmp_path / "inbox"), "2026-Q3")
    assert errors(inputs) == []
    assert set(DETAIL_COLUMNS) <= set(scores.details.columns)
    assert set(TOTAL_COLUMNS) <= set(scores.totals.columns)
    weights = {"K1": 0.6, "K2": 0.3, "K3": 0.1}
    expected = {"K1": 210 / 200, "K2": 12 / 15, "K3": 1.0}  # K3 pass_fail lower: 1.5% <= 2%
    assert expected["K1"] == pytest.approx(1.05) and expected["K2"] == pytest.approx(0.8)
    for indicator_id, value in expected.items():
        got = row(scores.details, employee_id="S002", indicator_id=indicator_id)
        assert got["achievement"] == pytest.approx(value, abs=1e-12)
        assert got["weighted_score"] == pytest.approx(weights[indicator_id] * value, abs=1e-12)
        assert got["period"] == "2026-Q3"
    assert [round(row(scores.details, employee_id="S002", indicator_id=k)["weighted_score"], 10)
            for k in ("K1", "K2", "K3")] == [0.63, 0.24, 0.1]
    # the source is the actual's own cell: actuals.xlsx, sheet 实际值 Actuals, column D, row 5
    assert row(scores.details, employee_id="S002", indicator_id="K1")["source"] == "actuals.xlsx!实际值 Actuals!D5"
    total = row(scores.totals, employee_id="S002")
    assert total["total"] == pytest.approx(0.63 + 0.24 + 0.10, abs=1e-12)
    assert total["total_rounded"] == 97.00
    assert total["grade"] == "B" and total["bonus"] == 1.0
    assert total["period"] == "2026-Q3"
    assert scores.unscored.empty


def test_worked_example_3_tiered() -> None:
    b, t, s = 20.0, 25.0, 30.0
    assert ach("tiered", "higher", 22.5, t, b, s) == pytest.approx(0.6 + 0.4 * (22.5 - 20) / (25 - 20))
    assert ach("tiered", "higher", 22.5, t, b, s) == pytest.approx(0.80)
    assert ach("tiered", "higher", 30, t, b, s) == pytest.approx(1.2)
    assert ach("tiered", "higher", 19, t, b, s) == 0.0
    assert ach("tiered", "higher", 20, t, b, s) == pytest.approx(0.6)   # exactly at base
    assert ach("tiered", "higher", 25, t, b, s) == pytest.approx(1.0)   # exactly at target
    assert ach("tiered", "higher", 35, t, b, s) == pytest.approx(1.2)   # beyond stretch
    assert ach("tiered", "higher", 27.5, t, b, s) == pytest.approx(1 + 0.2 * (27.5 - 25) / (30 - 25))


# =========================================================================== methods × directions


@pytest.mark.parametrize(("method", "direction", "a", "t", "raw", "clipped_value"), [
    # ratio, higher is better: a / t, clipped to [0, 1.2]
    ("ratio", "higher", 210, 200, 210 / 200, 210 / 200),
    ("ratio", "higher", 200, 200, 1.0, 1.0),
    ("ratio", "higher", 300, 200, 1.5, 1.2),        # a/t = 1.5 clipped to the cap
    ("ratio", "higher", 240, 200, 1.2, 1.2),        # exactly at the cap
    ("ratio", "higher", 0, 200, 0.0, 0.0),
    ("ratio", "higher", -10, 200, -0.05, 0.0),      # below the floor
    # ratio, lower is better (policy default ratio): t / a, a = 0 scores the cap
    ("ratio", "lower", 4, 2, 2 / 4, 0.5),
    ("ratio", "lower", 2, 2, 1.0, 1.0),
    ("ratio", "lower", 1, 2, 2.0, 1.2),
    ("ratio", "lower", 0, 2, 1.2, 1.2),
    # pass_fail at equality, both directions
    ("pass_fail", "higher", 15, 15, 1.0, 1.0),
    ("pass_fail", "higher", 14.999, 15, 0.0, 0.0),
    ("pass_fail", "higher", 16, 15, 1.0, 1.0),
    ("pass_fail", "lower", 0.02, 0.02, 1.0, 1.0),
    ("pass_fail", "lower", 0.0201, 0.02, 0.0, 0.0),
    ("pass_fail", "lower", 0.015, 0.02, 1.0, 1.0),
    ("pass_fail", "lower", 0.0, 0.0, 1.0, 1.0),
    # rating: r / t, t defaulting to scale_max (5)
    ("rating", "higher", 4.0, NAN, 4 / 5, 4 / 5),
    ("rating", "higher", 5.0, NAN, 1.0, 1.0),
    ("rating", "higher", 4.0, 4.0, 1.0, 1.0),       # explicit target
    ("rating", "higher", 3.0, 4.0, 3 / 4, 3 / 4),
    ("rating", "higher", 5.0, 4.0, 5 / 4, 1.2),     # above an explicit target, clipped
])
def test_methods_and_directions(method: str, direction: str, a: float, t: float, raw: float,
                                clipped_value: float) -> None:
    assert ach(method, direction, a, t) == pytest.approx(raw, abs=1e-12)
    assert clipped(method, direction, a, t) == pytest.approx(clipped_value, abs=1e-12)


LINEAR = parse_policy("achievement: {lower_is_better: linear}")


@pytest.mark.parametrize(("a", "t", "raw", "clipped_value"), [
    (1.5, 2.0, 2 - 1.5 / 2, 1.2),       # 1.25 above the cap
    (2.0, 2.0, 1.0, 1.0),
    (3.0, 2.0, 0.5, 0.5),
    (4.0, 2.0, 0.0, 0.0),
    (5.0, 2.0, 2 - 5 / 2, 0.0),        # below the floor: clipped to 0
    (0.0, 2.0, 2.0, 1.2),              # best possible: clipped to the cap
    (1.0, 2.0, 1.5, 1.2),
])
def test_ratio_lower_linear(a: float, t: float, raw: float, clipped_value: float) -> None:
    assert ach("ratio", "lower", a, t, policy=LINEAR) == pytest.approx(raw, abs=1e-12)
    assert clipped("ratio", "lower", a, t, policy=LINEAR) == pytest.approx(clipped_value, abs=1e-12)


@pytest.mark.parametrize(("a", "expected"), [
    # lower is better: base 30 > target 25 > stretch 20
    (31, 0.0),                                   # worse than base
    (30, 0.6),                                   # exactly at base
    (27.5, 0.6 + 0.4 * (30 - 27.5) / (30 - 25)),  # 0.8
    (25, 1.0),                                   # at target
    (22.5, 1 + 0.2 * (25 - 22.5) / (25 - 20)),    # 1.1
    (20, 1.2),                                   # at stretch
    (15, 1.2),                                   # beyond stretch
])
def test_tiered_lower(a: float, expected: float) -> None:
    assert ach("tiered", "lower", a, t=25, b=30, s=20) == pytest.approx(expected, abs=1e-12)


def test_policy_values_drive_the_methods() -> None:
    policy = parse_policy("achievement: {cap: 1.5, floor: 0.2}\ntiered: {base_score: 0.5, stretch_score: 1.4}\n"
                          "rating: {scale_max: 10}")
    assert clipped("ratio", "higher", 400, 200, policy=policy) == pytest.approx(1.5)
    assert clipped("ratio", "higher", 20, 200, policy=policy) == pytest.approx(0.2)
    assert ach("ratio", "lower", 0, 2, policy=policy) == pytest.approx(1.5)   # a = 0 → the cap
    assert ach("tiered", "higher", 20, 25, 20, 30, policy=policy) == pytest.approx(0.5)
    assert ach("tiered", "higher", 22.5, 25, 20, 30, policy=policy) == pytest.approx(0.5 + 0.5 * 0.5)
    assert ach("tiered", "higher", 30, 25, 20, 30, policy=policy) == pytest.approx(1.4)
    assert ach("tiered", "higher", 27.5, 25, 20, 30, policy=policy) == pytest.approx(1 + 0.4 * 0.5)
    assert ach("rating", "higher", 8, policy=policy) == pytest.approx(0.8)


def test_achievement_is_vectorised_over_mixed_rows() -> None:
    frame = pd.DataFrame([
        ("ratio", "higher", 210, 200, NAN, NAN, 1.05),
        ("ratio", "lower", 0, 2, NAN, NAN, 1.2),
        ("tiered", "higher", 22.5, 25, 20, 30, 0.8),
        ("tiered", "lower", 27.5, 25, 30, 20, 0.8),
        ("pass_fail", "lower", 0.015, 0.02, NAN, NAN, 1.0),
        ("pass_fail", "higher", 12, 15, NAN, NAN, 0.0),
        ("rating", "higher", 4.5, NAN, NAN, NAN, 0.9),
    ], columns=["method", "direction", "a", "t", "b", "s", "expected"], index=[10, 11, 12, 13, 14, 15, 16])
    out = achievement(frame["method"], frame["direction"], frame["a"], frame["t"], frame["b"], frame["s"], POLICY)
    assert list(out.index) == list(frame.index)
    assert out.to_numpy() == pytest.approx(frame["expected"].to_numpy(), abs=1e-12)
    assert not out.isna().any()


def test_comparisons_have_no_tolerance() -> None:
    # 0.8999999999999 is below 0.9, whatever float noise elsewhere would have forgiven
    assert ach("pass_fail", "higher", 0.8999999999999, 0.9) == 0.0
    assert ach("pass_fail", "lower", 0.9000000000001, 0.9) == 0.0
    assert ach("tiered", "higher", 19.999999999999, t=25, b=20, s=30) == 0.0
    assert ach("pass_fail", "lower", 0.1001, 0.1) == 0.0


def test_equality_survives_float_noise_in_rolled_up_actuals() -> None:
    # The mean of three monthly 10% rates is 0.10000000000000002 in floating point: HR sees
    # 10% against a 10% target, so lower-is-better pass_fail must pass (and tiered at base scores base).
    assert pd.Series([0.1, 0.1, 0.1]).mean() != 0.1  # the float noise this test is about
    assert pd.Series([0.1] * 6).mean() != 0.1
    indicators = [indicator("P1", "pass_fail", "lower", "mean"), indicator("P2", "pass_fail", "higher", "mean"),
                  indicator("T1", "tiered", "higher", "mean"), indicator("T2", "tiered", "lower", "mean")]
    role = [{"role_family": "研发", "period": "2026-H2", "indicator_id": "P1", "weight": 0.25, "target": 0.1},
            {"role_family": "研发", "period": "2026-H2", "indicator_id": "P2", "weight": 0.25, "target": 0.1},
            {"role_family": "研发", "period": "2026-H2", "indicator_id": "T1", "weight": 0.25,
             "base": 0.1, "target": 0.2, "stretch": 0.3},
            {"role_family": "研发", "period": "2026-H2", "indicator_id": "T2", "weight": 0.25,
             "base": 0.1, "target": 0.05, "stretch": 0.02}]
    actuals = [{"employee_id": "E1", "period": f"2026-{m:02d}", "indicator_id": k, "actual": 0.1}
               for m in range(7, 13) for k in ("P1", "P2", "T1", "T2")]
    inputs = typed_inputs(roster=PEOPLE, indicators=indicators, role_kpis=role, actuals=actuals)
    scores = score_period(inputs, POLICY, "2026-H2")
    got = scores.details.set_index("indicator_id")["achievement"]
    assert got["P1"] == 1.0 and got["P2"] == 1.0
    assert got["T1"] == 0.6 and got["T2"] == 0.6
    assert float(scores.totals["total_rounded"].iloc[0]) == 80.0


# =========================================================================== 360 ratings


def ratings_frame(rows: list[tuple[str, str, str, float]], period: str = "2026-Q3") -> pd.DataFrame:
    return pd.DataFrame([(e, period, k, f"R{i}", rel, score) for i, (e, k, rel, score) in enumerate(rows)],
                        columns=["employee_id", "period", "indicator_id", "rater_id", "relation", "score"])


ROSTER_360 = pd.DataFrame({"employee_id": ["D1", "S1"], "role_family": ["研发", "销售"]})


def test_rating_renormalised_over_relations_present() -> None:
    # default weights supervisor .4, peer .3, self .3; no self rating
    rated, detail = rating_scores(ratings_frame([("D1", "A1", "supervisor", 4), ("D1", "A1", "peer", 3)]),
                                  ROSTER_360, "2026-Q3", POLICY)
    assert row(rated, employee_id="D1", indicator_id="A1")["rating"] == pytest.approx((0.4 * 4 + 0.3 * 3) / 0.7)
    sup = row(detail, employee_id="D1", relation="supervisor")
    assert sup["weight_used"] == pytest.approx(0.4 / 0.7) and bool(sup["counted"])
    assert row(detail, employee_id="D1", relation="peer")["weight_used"] == pytest.approx(0.3 / 0.7)
    assert detail["weight_used"].sum() == pytest.approx(1.0)


def test_rating_mean_per_relation_then_weights() -> None:
    rows = [("D1", "A1", "supervisor", 4), ("D1", "A1", "peer", 3), ("D1", "A1", "peer", 4.5),
            ("D1", "A1", "peer", 5), ("D1", "A1", "self", 5)]
    rated, detail = rating_scores(ratings_frame(rows), ROSTER_360, "2026-Q3", POLICY)
    peer_mean = (3 + 4.5 + 5) / 3
    peer = row(detail, employee_id="D1", relation="peer")
    assert peer["mean_score"] == pytest.approx(peer_mean) and peer["raters"] == 3
    expected = 0.4 * 4 + 0.3 * peer_mean + 0.3 * 5
    assert row(rated, employee_id="D1")["rating"] == pytest.approx(expected)


def test_relation_without_policy_weight_is_shown_not_counted() -> None:
    # 销售: supervisor .6, self .2, customer .2 — peer has no weight
    rows = [("S1", "A1", "supervisor", 4), ("S1", "A1", "peer", 1), ("S1", "A1", "self", 5)]
    rated, detail = rating_scores(ratings_frame(rows), ROSTER_360, "2026-Q3", POLICY)
    peer = row(detail, employee_id="S1", relation="peer")
    assert not bool(peer["counted"])
    assert peer["policy_weight"] == 0 and peer["weight_used"] == 0
    assert peer["mean_score"] == 1
    assert row(rated, employee_id="S1")["rating"] == pytest.approx((0.6 * 4 + 0.2 * 5) / 0.8)


def test_rating_of_other_periods_ignored() -> None:
    frame = pd.concat([ratings_frame([("D1", "A1", "supervisor", 4)]),
                       ratings_frame([("D1", "A1", "supervisor", 1)], period="2026-Q2")], ignore_index=True)
    rated, _ = rating_scores(frame, ROSTER_360, "2026-Q3", POLICY)
    assert row(rated, employee_id="D1")["rating"] == pytest.approx(4.0)


def test_rating_indicator_scored_end_to_end_with_missing_supervisor_warning() -> None:
    people = PEOPLE + [{"employee_id": "E2", "name": "乙", "department": "研发部", "role_family": "研发"}]
    inputs = validate(memory_inbox(
        roster=people,
        indicators=[indicator("K1", "比率"), indicator("A1", "评分", dimension="态度")],
        role_kpis=[{"role_family": "研发", "period": "2026-Q3", "indicator_id": "K1", "weight": "70%", "target": 100},
                   {"role_family": "研发", "period": "2026-Q3", "indicator_id": "A1", "weight": "30%"}],
        actuals=[{"employee_id": e, "period": "2026-Q3", "indicator_id": "K1", "actual": 90} for e in ("E1", "E2")],
        ratings=[
            {"employee_id": "E1", "period": "2026-Q3", "indicator_id": "A1", "rater_id": "M1", "relation": "上级", "score": 4},
            {"employee_id": "E1", "period": "2026-Q3", "indicator_id": "A1", "rater_id": "E2", "relation": "同事", "score": 3},
            {"employee_id": "E1", "period": "2026-Q3", "indicator_id": "A1", "rater_id": "E1", "relation": "自评", "score": 4.5},
            {"employee_id": "E2", "period": "2026-Q3", "indicator_id": "A1", "rater_id": "E1", "relation": "同事", "score": 4},
            {"employee_id": "E2", "period": "2026-Q3", "indicator_id": "A1", "rater_id": "E2", "relation": "自评", "score": 5},
        ]), POLICY, "2026-Q3")
    assert errors(inputs) == []
    scores = score_period(inputs, POLICY, "2026-Q3")
    r1 = 0.4 * 4 + 0.3 * 3 + 0.3 * 4.5
    r2 = (0.3 * 4 + 0.3 * 5) / 0.6
    e1 = row(scores.details, employee_id="E1", indicator_id="A1")
    assert e1["actual"] == pytest.approx(r1) and e1["achievement"] == pytest.approx(r1 / 5)
    assert e1["source"] == "360"
    assert row(scores.details, employee_id="E2", indicator_id="A1")["achievement"] == pytest.approx(r2 / 5)
    assert row(scores.totals, employee_id="E1")["total"] == pytest.approx(0.7 * 0.9 + 0.3 * r1 / 5)
    assert row(scores.dimensions, employee_id="E1")["attitude"] == pytest.approx(0.3 * r1 / 5)
    assert row(scores.dimensions, employee_id="E1")["performance"] == pytest.approx(0.7 * 0.9)
    assert row(scores.dimensions, employee_id="E1")["ability"] == 0
    warnings = [f for f in scores.findings if f.rule == "no_supervisor_rating"]
    assert [f.employee_id for f in warnings] == ["E2"]
    assert set(scores.ratings["employee_id"]) == {"E1", "E2"}


# =========================================================================== rounding


@pytest.mark.parametrize(("value", "decimals", "expected"), [
    (0.125, 2, "0.13"),
    (0.005, 2, "0.01"),
    (0.015, 2, "0.02"),
    (2.675, 2, "2.68"),      # stored as 2.67499999…
    (1.005, 2, "1.01"),      # stored as 1.00499999…
    (0.5, 0, "1"),
    (1.5, 0, "2"),
    (2.5, 0, "3"),           # half-to-even would give 2
    (96.495, 2, "96.50"),
    (0.1249, 2, "0.12"),
    (-0.125, 2, "-0.13"),    # half away from zero
])
def test_half_up(value: float, decimals: int, expected: str) -> None:
    assert half_up(value, decimals) == Decimal(expected)
    assert str(half_up(value, decimals)) == expected


def test_rounded_percent() -> None:
    assert rounded_percent(0.96495) == Decimal("96.50")    # 0.96495 is 0.964949999… as a float
    assert rounded_percent(0.964949) == Decimal("96.49")
    assert rounded_percent(0.97) == Decimal("97.00")
    assert str(rounded_percent(0.97)) == "97.00"
    assert rounded_percent(0.00005) == Decimal("0.01")
    assert rounded_percent(0.00004999) == Decimal("0.00")
    assert rounded_percent(1.1) == Decimal("110.00")
    assert rounded_percent(0.63 + 0.24 + 0.1) == Decimal("97.00")
    assert rounded_percent(0.96495, 1) == Decimal("96.5")
    assert rounded_percent(0.9645, 1) == Decimal("96.5")
    assert round(0.125, 2) == 0.12  # what Python's half-to-even would have shown


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=4))
def test_half_up_matches_exact_decimal(units: int, decimals: int) -> None:
    # a decimal number with one digit more than kept, typed by HR, read as a float
    exact = Decimal(units).scaleb(-(decimals + 1))
    expected = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    assert half_up(float(exact), decimals) == expected


# =========================================================================== grades


@pytest.mark.parametrize(("total", "rounded", "grade", "bonus"), [
    (1.10, "110.00", "S", 1.5),        # exactly at the S minimum
    (1.2, "120.00", "S", 1.5),
    (1.09995, "110.00", "S", 1.5),     # rounds up into S
    (1.0999, "109.99", "A", 1.2),
    (1.00, "100.00", "A", 1.2),
    (0.99995, "100.00", "A", 1.2),
    (0.99994, "99.99", "B", 1.0),
    (0.97, "97.00", "B", 1.0),
    (0.89995, "90.00", "B", 1.0),      # rounds up to 90.00 → B
    (0.8999, "89.99", "C", 0.8),       # 89.99 stays below 90.00
    (0.8, "80.00", "C", 0.8),
    (0.79994, "79.99", "D", 0.0),
    (0.0, "0.00", "D", 0.0),
])
def test_grade_from_rounded_total(total: float, rounded: str, grade: str, bonus: float) -> None:
    r = rounded_percent(total)
    assert r == Decimal(rounded)
    assert grade_for(r, POLICY) == (grade, bonus)


def test_grade_below_every_minimum_is_the_last_grade() -> None:
    policy = parse_policy("grades:\n  - {grade: 优, min: 0.9, bonus: 1}\n  - {grade: 差, min: 0.5, bonus: 0}\n")
    assert grade_for(Decimal("40.00"), policy) == ("差", 0.0)
    assert grade_for(Decimal("90.00"), policy) == ("优", 1.0)


def one_indicator_case(actuals: dict[str, float]) -> object:
    """Employees with a single ratio indicator (weight 100%, target 1) and the given actuals."""
    return typed_inputs(
        roster=[{"employee_id": e, "name": e, "department": "研发部", "role_family": "研发", "status": "active"}
                for e in actuals],
        indicators=[indicator("K1", "ratio")],
        role_kpis=[{"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": 1.0, "target": 1.0}],
        actuals=[{"employee_id": e, "period": "2026-10", "indicator_id": "K1", "actual": a} for e, a in actuals.items()],
    )


def test_grade_comes_from_the_rounded_total_end_to_end() -> None:
    scores = score_period(one_indicator_case({"E1": 0.89995, "E2": 0.8999, "E3": 0.96495, "E4": 1.1}),
                          POLICY, "2026-10")
    got = scores.totals.set_index("employee_id")
    assert got.loc["E1", "total"] == pytest.approx(0.89995, abs=1e-15)   # full precision kept
    assert got.loc["E1", "total_rounded"] == 90.00 and got.loc["E1", "grade"] == "B"
    assert got.loc["E2", "total_rounded"] == 89.99 and got.loc["E2", "grade"] == "C"
    assert got.loc["E3", "total_rounded"] == 96.50 and got.loc["E3", "grade"] == "B"
    assert got.loc["E4", "total_rounded"] == 110.00 and got.loc["E4", "grade"] == "S"
    assert got.loc["E4", "bonus"] == 1.5 and got.loc["E2", "bonus"] == 0.8
    assert list(got["rank"]) == [3, 4, 2, 1]


# =========================================================================== forced distribution

FORCED = parse_policy("forced_distribution: {S: 0.10, A: 0.20, B: 0.50, C: 0.15, D: 0.05}")


def forced_frame(departments: dict[str, list[float]]) -> pd.DataFrame:
    rows = [(f"{d}{i}", d, t) for d, totals in departments.items() for i, t in enumerate(totals)]
    return pd.DataFrame(rows, columns=["employee_id", "department", "total_rounded"], index=range(100, 100 + len(rows)))


def test_forced_distribution_quotas() -> None:
    # Quota rule (docstring): the top k grades hold half_up(cumulative share × n) people.
    # n = 10: S 1, S+A 3, S+A+B 8, S..C half_up(9.5) = 10, all 10.
    totals = forced_frame({"X": [100 - i for i in range(10)]})
    grades = forced_grades(totals, FORCED)
    assert list(grades.index) == list(totals.index)
    assert list(grades) == ["S", "A", "A", "B", "B", "B", "B", "B", "C", "C"]


def test_forced_distribution_keeps_ties_together_on_the_better_grade() -> None:
    # two people tie for first: both S (the S quota is 1), A shrinks to the single place left
    totals = forced_frame({"X": [110, 110, 100, 99, 98, 97, 96, 95, 94, 93]})
    assert list(forced_grades(totals, FORCED)) == ["S", "S", "A", "B", "B", "B", "B", "B", "C", "C"]
    # a tie group of three straddling the A/B boundary (ranks 3-5, A ends at 3): all A
    totals = forced_frame({"X": [120, 110, 105, 105, 105, 100, 99, 98, 97, 96]})
    assert list(forced_grades(totals, FORCED)) == ["S", "A", "A", "A", "A", "B", "B", "B", "C", "C"]


def test_forced_distribution_per_department() -> None:
    totals = forced_frame({"X": [100 - i for i in range(10)], "Y": [50, 60]})
    grades = forced_grades(totals, FORCED).tolist()
    # Y, n = 2: S half_up(0.2) = 0, S+A half_up(0.6) = 1, S+A+B half_up(1.6) = 2
    assert grades[10:] == ["B", "A"]
    assert grades[:10] == ["S", "A", "A", "B", "B", "B", "B", "B", "C", "C"]


def test_forced_distribution_in_score_period() -> None:
    actuals = {f"E{i}": 1.2 - 0.05 * i for i in range(10)}
    scores = score_period(one_indicator_case(actuals), FORCED, "2026-10")
    got = scores.totals.set_index("employee_id")
    assert list(got.loc[[f"E{i}" for i in range(10)], "grade"]) == ["S", "A", "A", "B", "B", "B", "B", "B", "C", "C"]
    # score_grade is what the scores alone would give: E0 120 → S, E9 75 → D
    assert got.loc["E0", "score_grade"] == "S" and got.loc["E9", "score_grade"] == "D"
    assert got.loc["E9", "bonus"] == 0.8   # the bonus follows the grade given


# =========================================================================== roll-ups

ROLLUP_INDICATORS = [
    indicator("K1", "比率", aggregation="求和"),
    indicator("K2", "达标", direction="越低越好", aggregation="平均"),
    indicator("K3", "比率", aggregation="期末"),
    indicator("K4", "比率", aggregation="求和"),
]


def rollup_inbox(folder: Path) -> Path:
    monthly = {"K1": [70, 80, 90], "K2": ["10%", "10%", "10%"], "K3": [5, 8, 6]}
    actuals = [{"employee_id": "E1", "period": f"2026-{m:02d}", "indicator_id": k, "actual": values[i]}
               for i, m in enumerate((7, 8, 9)) for k, values in monthly.items()]
    actuals.append({"employee_id": "E1", "period": "2026-Q3", "indicator_id": "K4", "actual": 45})  # the quarter itself
    actuals.append({"employee_id": "E1", "period": "2026-10", "indicator_id": "K1", "actual": 1000})  # not Q3
    return write_inbox(folder, roster=PEOPLE, indicators=ROLLUP_INDICATORS, actuals=actuals, role_kpis=[
        {"role_family": "研发", "period": "2026-Q3", "indicator_id": "K1", "weight": 40, "target": 200},
        {"role_family": "研发", "period": "2026-Q3", "indicator_id": "K2", "weight": 20, "target": "10%"},
        {"role_family": "研发", "period": "2026-Q3", "indicator_id": "K3", "weight": 20, "target": 10},
        {"role_family": "研发", "period": "2026-Q3", "indicator_id": "K4", "weight": 20, "target": 50},
    ])


def test_quarter_rolls_up_monthly_actuals(tmp_path: Path) -> None:
    inputs, scores = run(rollup_inbox(tmp_path), "2026-Q3")
    assert errors(inputs) == []
    rolled = period_actuals(inputs, "2026-Q3", inputs.indicators)
    assert row(rolled, indicator_id="K1")["actual"] == 70 + 80 + 90                   # sum
    assert row(rolled, indicator_id="K1")["months"] == 3
    assert row(rolled, indicator_id="K2")["actual"] == pytest.approx(0.1, abs=1e-15)  # mean
    assert row(rolled, indicator_id="K3")["actual"] == 6                              # last month
    assert row(rolled, indicator_id="K4")["actual"] == 45                             # given for Q3
    assert row(rolled, indicator_id="K4")["months"] == 1
    assert row(rolled, indicator_id="K1")["source"] == "; ".join(
        f"actuals.xlsx!实际值 Actuals!D{r}" for r in (2, 5, 8))
    expected = {"K1": min(1.2, 240 / 200), "K2": 1.0, "K3": 6 / 10, "K4": 45 / 50}
    for k, value in expected.items():
        assert row(scores.details, indicator_id=k)["achievement"] == pytest.approx(value, abs=1e-12)
    assert row(scores.totals, employee_id="E1")["total"] == pytest.approx(
        0.4 * 1.2 + 0.2 * 1.0 + 0.2 * 0.6 + 0.2 * 0.9, abs=1e-12)


def test_month_period_uses_that_month_only(tmp_path: Path) -> None:
    inputs = validate(read_inbox(rollup_inbox(tmp_path)), POLICY, "2026-Q3")
    rolled = period_actuals(inputs, "2026-08", inputs.indicators)
    assert sorted(rolled["indicator_id"]) == ["K1", "K2", "K3"]
    assert row(rolled, indicator_id="K1")["actual"] == 80


def test_year_and_half_roll_up() -> None:
    months = [f"2026-{m:02d}" for m in range(1, 13)]
    inputs = typed_inputs(
        roster=[{"employee_id": "E1", "name": "甲", "department": "研发部", "role_family": "研发"}],
        indicators=[indicator("K1", "ratio"), indicator("K2", "ratio", aggregation="mean"),
                    indicator("K3", "ratio", aggregation="last")],
        actuals=[{"employee_id": "E1", "period": p, "indicator_id": k, "actual": float(i + 1)}
                 for i, p in enumerate(months) for k in ("K1", "K2", "K3")],
    )
    year = period_actuals(inputs, "2026", inputs.indicators).set_index("indicator_id")["actual"]
    assert year["K1"] == sum(range(1, 13)) and year["K2"] == pytest.approx(6.5) and year["K3"] == 12
    half = period_actuals(inputs, "2026-H2", inputs.indicators).set_index("indicator_id")["actual"]
    assert half["K1"] == sum(range(7, 13)) and half["K2"] == pytest.approx(9.5) and half["K3"] == 12


# =========================================================================== calibration and cascade


def calibration_detail(reached: dict[str, list[float]]) -> pd.DataFrame:
    rows = [(f"E{i}", k, a) for k, values in reached.items() for i, a in enumerate(values)]
    return pd.DataFrame(rows, columns=["employee_id", "indicator_id", "achievement_raw"])


CAL_INDICATORS = pd.DataFrame({"indicator_id": ["K1", "K2", "K3", "K4"], "name": ["销售额", "新客户", "回款", "毛利"]})


def test_calibration_flags() -> None:
    detail = calibration_detail({
        "K1": [1.0, 1.1, 1.2, 1.05, 1.0],       # everyone reaches 100%: too easy
        "K2": [0.5, 0.9, 0.99, 0.7, 0.2],       # nobody: too hard
        "K3": [1.0, 1.1, 0.5, 0.9, 0.8],        # 2 of 5: fine
        "K4": [1.0] * 9 + [0.5],                # 9 of 10 = 0.9: not above too_easy
    })
    table, findings = calibration(detail, CAL_INDICATORS, POLICY)
    got = table.set_index("indicator_id")
    assert got.loc["K1", "flag"] == "too_easy" and got.loc["K1", "share"] == 1.0
    assert got.loc["K2", "flag"] == "too_hard" and got.loc["K2", "share"] == 0.0
    assert got.loc["K3", "flag"] == "" and got.loc["K3", "share"] == pytest.approx(2 / 5)
    assert got.loc["K4", "flag"] == "" and got.loc["K4", "share"] == pytest.approx(0.9)
    assert got.loc["K4", "employees"] == 10 and got.loc["K4", "reached"] == 9
    assert got.loc["K1", "name"] == "销售额"
    assert sorted((f.rule, f.severity) for f in findings) == [("calibration_easy", "warning"),
                                                              ("calibration_hard", "warning")]


def test_calibration_needs_enough_employees() -> None:
    table, findings = calibration(calibration_detail({"K1": [1.0] * 4, "K2": [0.1] * 4}), CAL_INDICATORS, POLICY)
    assert list(table["flag"]) == ["", ""] and findings == []


def test_calibration_uses_policy_thresholds() -> None:
    policy = parse_policy("checks: {calibration: {too_easy: 0.5, too_hard: 0.3}}")
    table, _ = calibration(calibration_detail({"K3": [1.0, 1.1, 1.2, 0.9, 0.8], "K2": [1.0, 0.5, 0.5, 0.5, 0.5]}),
                           CAL_INDICATORS, policy)
    got = table.set_index("indicator_id")["flag"]
    assert got["K3"] == "too_easy" and got["K2"] == "too_hard"


def test_cascade_coverage_and_rollup(tmp_path: Path) -> None:
    folder = seed_000_inbox(tmp_path / "inbox")
    write_inbox(folder, dept_targets=[
        {"department": "销售部", "period": "2026-Q3", "indicator_id": "K1", "target": 500},
        {"department": "销售部", "period": "2026-Q3", "indicator_id": "K3", "target": "2.5%"},
        {"department": "销售部", "period": "2026-Q4", "indicator_id": "K1", "target": 999},   # other period
        {"department": "研发部", "period": "2026-Q3", "indicator_id": "K2", "target": 10},     # nobody
    ])
    inputs, scores = run(folder, "2026-Q3")
    assert errors(inputs) == []
    cascade = scores.cascade
    assert len(cascade) == 3
    k1 = row(cascade, department="销售部", indicator_id="K1")
    assert k1["department_target"] == 500 and k1["individual_targets"] == 200 + 200
    assert k1["coverage"] == pytest.approx(400 / 500)
    assert k1["actual"] == 210 + 210 and k1["department_achievement"] == pytest.approx(420 / 500)
    assert k1["employees"] == 2 and k1["name"] == "销售额"
    # K3: mean aggregation, lower is better: coverage = department target / mean individual target
    k3 = row(cascade, department="销售部", indicator_id="K3")
    assert k3["individual_targets"] == pytest.approx(0.02)
    assert k3["coverage"] == pytest.approx(0.025 / 0.02)
    assert k3["actual"] == pytest.approx(0.015) and k3["department_achievement"] == pytest.approx(0.025 / 0.015)
    nobody = row(cascade, department="研发部")
    assert nobody["employees"] == 0 and pd.isna(nobody["coverage"]) and pd.isna(nobody["actual"])


def test_cascade_counts_actuals_of_unscored_employees(tmp_path: Path) -> None:
    # nobody has a 新客户数 actual: both are unscored, but their sales still make the department's
    folder = seed_000_inbox(tmp_path / "inbox", actual_new_clients=None)
    write_inbox(folder, dept_targets=[{"department": "销售部", "period": "2026-Q3", "indicator_id": "K1", "target": 500}])
    _, scores = run(folder, "2026-Q3")
    assert scores.totals.empty and list(scores.unscored["rule"]) == ["required", "required"]  # blank actual cell
    k1 = row(scores.cascade, indicator_id="K1")
    assert k1["actual"] == 420 and k1["department_achievement"] == pytest.approx(420 / 500)
    assert k1["employees"] == 2


# =========================================================================== unscored


def test_unscored_employees_listed_with_reason(tmp_path: Path) -> None:
    roster = [
        {"employee_id": "E1", "name": "甲", "department": "研发部", "role_family": "研发"},
        {"employee_id": "E2", "name": "乙", "department": "研发部", "role_family": "研发"},       # missing actual
        {"employee_id": "E3", "name": "丙", "department": "研发部", "role_family": "研发", "status": "离职"},
        {"employee_id": "E4", "name": "丁", "department": "行政部", "role_family": "行政"},       # no agreement
        {"employee_id": "E5", "name": "戊", "department": "研发部", "role_family": "研发", "status": "离职"},
        {"employee_id": "E6", "name": "己", "department": "生产部", "role_family": "生产"},       # bad role set
    ]
    actuals = [{"employee_id": e, "period": "2026-10", "indicator_id": k, "actual": 100}
               for e in ("E1", "E2", "E3") for k in ("K1", "K2") if (e, k) != ("E2", "K2")]
    actuals.append({"employee_id": "E5", "period": "2026-10", "indicator_id": "K1", "actual": "abc"})  # bad cell
    actuals += [{"employee_id": "E6", "period": "2026-10", "indicator_id": k, "actual": 1} for k in ("K1", "K2")]
    folder = write_inbox(tmp_path, roster=roster, indicators=[indicator("K1", "比率"), indicator("K2", "比率")],
                         actuals=actuals, role_kpis=[
                             {"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": 50, "target": 100},
                             {"role_family": "研发", "period": "2026-10", "indicator_id": "K2", "weight": 50, "target": 100},
                             {"role_family": "生产", "period": "2026-10", "indicator_id": "K1", "weight": 50, "target": 1},
                             {"role_family": "生产", "period": "2026-10", "indicator_id": "K2", "weight": 40, "target": 1},
                         ])
    inputs, scores = run(folder, "2026-10")
    assert list(scores.totals["employee_id"]) == ["E1"]
    unscored = scores.unscored
    assert list(unscored["employee_id"]) == ["E2", "E3", "E4", "E5", "E6"]   # each once, sorted
    reasons = unscored.set_index("employee_id")
    assert reasons.loc["E2", "rule"] == "missing_actual"
    assert "K2" in reasons.loc["E2", "reason_en"] and "K2" in reasons.loc["E2", "reason_zh"]
    assert reasons.loc["E3", "rule"] == "left" and reasons.loc["E5", "rule"] == "left"
    assert reasons.loc["E4", "rule"] == "no_agreement"
    assert reasons.loc["E6", "rule"] == "weight_sum"
    assert reasons.loc["E6", "name"] == "己" and reasons.loc["E6", "department"] == "生产部"
    assert (reasons["period"] == "2026-10").all()
    assert reasons["reason_zh"].str.len().gt(0).all() and reasons["reason_en"].str.len().gt(0).all()
    assert set(scores.details["employee_id"]) == {"E1"}
    assert set(scores.dimensions["employee_id"]) == {"E1"}


def test_indicator_missing_from_the_library_blocks_its_employees() -> None:
    inputs = typed_inputs(
        roster=[{"employee_id": e, "name": e, "department": "研发部", "role_family": "研发"} for e in ("E1", "E2")],
        indicators=[indicator("K1", "ratio")],
        role_kpis=[{"role_family": "研发", "period": "2026-10", "indicator_id": k, "weight": 0.5, "target": 1.0}
                   for k in ("K1", "K9")],
        actuals=[{"employee_id": e, "period": "2026-10", "indicator_id": "K1", "actual": 1.0} for e in ("E1", "E2")],
    )
    scores = score_period(inputs, POLICY, "2026-10")
    assert scores.totals.empty
    assert list(scores.unscored["employee_id"]) == ["E1", "E2"]
    assert set(scores.unscored["rule"]) == {"unknown_indicator"}
    assert scores.unscored["reason_en"].str.contains("K9").all()


def test_nobody_scorable_gives_empty_frames() -> None:
    inputs = typed_inputs(
        roster=[{"employee_id": "E1", "name": "甲", "department": "研发部", "role_family": "研发"}],
        indicators=[indicator("K1", "ratio")],
        role_kpis=[{"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": 1.0, "target": 1.0}],
    )
    scores = score_period(inputs, POLICY, "2026-10")
    assert scores.totals.empty and scores.details.empty
    assert list(scores.unscored["rule"]) == ["missing_actual"]
    assert set(TOTAL_COLUMNS) <= set(scores.totals.columns)
    assert "employee_id" in scores.dimensions.columns


def test_personal_kpis_replace_role_kpis() -> None:
    inputs = typed_inputs(
        roster=[{"employee_id": e, "name": e, "department": "研发部", "role_family": "研发"} for e in ("E1", "E2")],
        indicators=[indicator("K1", "ratio"), indicator("K2", "ratio")],
        role_kpis=[{"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": 1.0, "target": 100}],
        employee_kpis=[{"employee_id": "E2", "period": "2026-10", "indicator_id": "K2", "weight": 1.0, "target": 10}],
        actuals=[{"employee_id": e, "period": "2026-10", "indicator_id": k, "actual": 8}
                 for e in ("E1", "E2") for k in ("K1", "K2")],
    )
    scores = score_period(inputs, POLICY, "2026-10")
    assert list(zip(scores.details["employee_id"], scores.details["indicator_id"], strict=True)) == [("E1", "K1"), ("E2", "K2")]
    assert row(scores.totals, employee_id="E2")["total"] == pytest.approx(0.8)
    assert row(scores.totals, employee_id="E1")["total"] == pytest.approx(0.08)


# =========================================================================== properties


@st.composite
def scorecards(draw):
    n = draw(st.integers(min_value=1, max_value=8))
    parts = draw(st.lists(st.integers(min_value=1, max_value=100), min_size=n, max_size=n))
    weights = [p / sum(parts) for p in parts]
    methods = draw(st.lists(st.sampled_from([("ratio", "higher"), ("ratio", "lower"), ("pass_fail", "higher"),
                                             ("pass_fail", "lower")]), min_size=n, max_size=n))
    targets = draw(st.lists(st.floats(min_value=0.5, max_value=1000), min_size=n, max_size=n))
    ratios = draw(st.lists(st.floats(min_value=0, max_value=3), min_size=n, max_size=n))
    return weights, methods, targets, ratios


def expected_achievement(method: str, direction: str, a: float, t: float, policy) -> float:
    if method == "ratio":
        raw = a / t if direction == "higher" else (policy.cap if a == 0 else t / a)
    else:
        raw = float(a >= t) if direction == "higher" else float(a <= t)
    return min(policy.cap, max(policy.floor, raw))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scorecards(), st.sampled_from(["", "achievement: {cap: 1.5, floor: 0.3}", "achievement: {cap: 1.0}"]))
def test_total_is_sum_of_weighted_scores_within_floor_and_cap(case, policy_text: str) -> None:
    weights, methods, targets, ratios = case
    policy = parse_policy(policy_text)
    ids = [f"K{i}" for i in range(len(weights))]
    actuals = [t * r for t, r in zip(targets, ratios, strict=True)]
    inputs = typed_inputs(
        roster=[{"employee_id": "E1", "name": "甲", "department": "研发部", "role_family": "研发"}],
        indicators=[indicator(k, m, d) for k, (m, d) in zip(ids, methods, strict=True)],
        employee_kpis=[{"employee_id": "E1", "period": "2026-10", "indicator_id": k, "weight": w, "target": t}
                       for k, w, t in zip(ids, weights, targets, strict=True)],
        actuals=[{"employee_id": "E1", "period": "2026-10", "indicator_id": k, "actual": a} for k, a in zip(ids, actuals, strict=True)],
    )
    scores = score_period(inputs, policy, "2026-10")
    details = scores.details.set_index("indicator_id")
    expected = [w * expected_achievement(m, d, a, t, policy)
                for w, (m, d), a, t in zip(weights, methods, actuals, targets, strict=True)]
    for k, value in zip(ids, expected, strict=True):
        assert details.loc[k, "weighted_score"] == pytest.approx(value, abs=1e-12)
    total = float(scores.totals["total"].iloc[0])
    assert total == pytest.approx(float(details["weighted_score"].sum()), abs=1e-12)
    assert total == pytest.approx(math.fsum(expected), abs=1e-12)
    assert policy.floor - 1e-12 <= total <= policy.cap + 1e-12
    rounded = rounded_percent(total)
    assert float(scores.totals["total_rounded"].iloc[0]) == float(rounded)
    assert abs(rounded - Decimal(repr(total * 100))) <= Decimal("0.005") + Decimal("1e-9")


@given(st.floats(min_value=-10, max_value=50), st.floats(min_value=0, max_value=10))
def test_tiered_monotonic_and_bounded(a: float, step: float) -> None:
    b, t, s = 20.0, 25.0, 30.0
    lo, hi = ach("tiered", "higher", a, t, b, s), ach("tiered", "higher", a + step, t, b, s)
    assert 0 <= lo <= hi + 1e-12 <= POLICY.stretch_score + 1e-12
    # lower is better mirrors it: b > t > s
    assert ach("tiered", "lower", -a, -t, -b, -s) == pytest.approx(lo, abs=1e-12)


@given(st.lists(st.tuples(st.sampled_from(["supervisor", "peer", "self", "subordinate", "customer"]),
                          st.sampled_from([1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5])), min_size=1, max_size=12))
def test_rating_is_a_weighted_mean_of_counted_relations(scores: list[tuple[str, float]]) -> None:
    rows = [("D1", "A1", rel, score) for rel, score in scores]
    rated, detail = rating_scores(ratings_frame(rows), ROSTER_360, "2026-Q3", POLICY)
    weights = POLICY.rater_weights["default"]
    means = {rel: float(np.mean([s for r, s in scores if r == rel])) for rel, _ in scores}
    counted = {rel: m for rel, m in means.items() if weights.get(rel, 0) > 0}
    if not counted:
        assert rated.empty
        return
    expected = sum(weights[r] * m for r, m in counted.items()) / sum(weights[r] for r in counted)
    assert row(rated, employee_id="D1")["rating"] == pytest.approx(expected, abs=1e-12)
    assert min(counted.values()) - 1e-12 <= expected <= max(counted.values()) + 1e-12
    assert set(detail["relation"]) == set(means)
