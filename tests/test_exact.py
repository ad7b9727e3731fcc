"""Exact decimal semantics end to end: boundaries decided on the decimals HR typed.

Every inbox here is a real xlsx written by openpyxl the way HR fills it, read and validated by
the pipeline; the expected numbers come from `fractions.Fraction` arithmetic on the typed
decimals in this file (an oracle independent of `pipeline.exact`).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from builders import typed_inputs, write_inbox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalize import parse_number
from pipeline.policy import load_policy
from pipeline.reader import read_inbox
from pipeline.scoring import half_up, rounded_percent, score_period
from pipeline.validate import validate

POLICY = load_policy()
PEOPLE = [{"employee_id": "E1", "name": "甲", "department": "研发部", "position": "工程师", "role_family": "研发"}]


def indicator(indicator_id: str, method: str, direction: str = "越高越好", aggregation: str = "求和") -> dict:
    return {"indicator_id": indicator_id, "name": indicator_id, "dimension": "业绩", "direction": direction,
            "method": method, "aggregation": aggregation}


def score_one(folder: Path, indicators: list[dict], role_kpis: list[dict], actuals: list[dict], period: str = "2026-10"):
    write_inbox(folder, roster=PEOPLE, indicators=indicators, role_kpis=role_kpis, actuals=actuals)
    inputs = validate(read_inbox(folder), POLICY, period)
    assert [f.rule for f in inputs.findings if f.is_error] == []
    scores = score_period(inputs, POLICY, period)
    return scores.details.set_index("indicator_id"), scores.totals.iloc[0]


def one_ratio(folder: Path, actual: object, target: object, method: str = "比率"):
    return score_one(folder, [indicator("K1", method)],
                     [{"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": "100%",
                       "target": target}],
                     [{"employee_id": "E1", "period": "2026-10", "indicator_id": "K1", "actual": actual}])


def test_pass_fail_just_below_the_target_fails(tmp_path: Path) -> None:
    # 0.8999999999999 is not 0.9: the old 1e-12 tolerance passed it (grade A instead of D)
    details, total = one_ratio(tmp_path, 0.8999999999999, 0.9, method="达标")
    assert details.loc["K1", "achievement"] == 0.0
    assert (total["total_rounded"], total["grade"], total["bonus"]) == (0.0, "D", 0.0)
    details, total = one_ratio(tmp_path / "exact", 0.9, 0.9, method="达标")
    assert details.loc["K1", "achievement"] == 1.0 and total["grade"] == "A"


@pytest.mark.parametrize(("actual", "target", "rounded", "grade"), [
    (109.994999999455, 100, "109.99", "A"),   # was pre-rounded to 110.00 (S, bonus 1.5)
    (96.49499999, 100, "96.49", "B"),
    (96.495, 100, "96.50", "B"),              # a true tie, stored as 0.964949999… in floats
    (2.89485, 3, "96.50", "B"),               # 2.89485 / 3 = 0.96495 exactly
    (109.995, 100, "110.00", "S"),            # the tie rounds up into S
    (89.995, 100, "90.00", "B"),
    (89.99499999999, 100, "89.99", "C"),
])
def test_total_rounds_half_up_on_the_exact_decimal(tmp_path: Path, actual: float, target: float, rounded: str,
                                                   grade: str) -> None:
    details, total = one_ratio(tmp_path, actual, target)
    exact_total = Fraction(repr(actual)) / Fraction(repr(float(target)))
    assert details.loc["K1", "achievement"] == float(exact_total)
    assert Decimal(repr(float(total["total_rounded"]))) == Decimal(rounded)
    assert total["grade"] == grade


def test_weights_33_33_33_34_with_a_tie_total(tmp_path: Path) -> None:
    # three indicators each at 96.495%: Σ w × a = 0.96495 exactly, a half-up tie → 96.50
    indicators = [indicator(k, "比率") for k in ("K1", "K2", "K3")]
    role = [{"role_family": "研发", "period": "2026-10", "indicator_id": k, "weight": w, "target": 100}
            for k, w in (("K1", "33.33%"), ("K2", 33.33), ("K3", "33.34%"))]
    actuals = [{"employee_id": "E1", "period": "2026-10", "indicator_id": k, "actual": 96.495} for k in ("K1", "K2", "K3")]
    details, total = score_one(tmp_path, indicators, role, actuals)
    assert list(details["weight"]) == [0.3333, 0.3333, 0.3334]  # as typed, no 0.33330000000000004
    assert float(total["total_rounded"]) == 96.5 and total["grade"] == "B"


def test_tier_line_and_cap_exact_for_rolled_up_means(tmp_path: Path) -> None:
    # Mean of 3 months of 0.1 is 0.1 exactly (0.10000000000000002 in floats): it sits on the base
    # line of a tiered indicator and on the target of a pass/fail one.
    indicators = [indicator("T1", "阶梯", aggregation="平均"), indicator("P1", "达标", "越低越好", "平均"),
                  indicator("R1", "比率", aggregation="平均")]
    role = [{"role_family": "研发", "period": "2026-Q3", "indicator_id": "T1", "weight": "40%",
             "base": "10%", "target": "20%", "stretch": "30%"},
            {"role_family": "研发", "period": "2026-Q3", "indicator_id": "P1", "weight": "30%", "target": "10%"},
            {"role_family": "研发", "period": "2026-Q3", "indicator_id": "R1", "weight": "30%", "target": "0.25"}]
    actuals = [{"employee_id": "E1", "period": f"2026-{m:02d}", "indicator_id": k, "actual": v}
               for m in (7, 8, 9) for k, v in (("T1", "10%"), ("P1", "10%"), ("R1", 0.3))]
    details, total = score_one(tmp_path, indicators, role, actuals, "2026-Q3")
    assert details.loc["T1", "achievement"] == 0.6          # exactly at base → base score
    assert details.loc["P1", "achievement"] == 1.0          # exactly at target (lower is better)
    assert details.loc["R1", "achievement"] == 1.2          # 0.3 / 0.25 = 1.2, the cap
    expected = Fraction(4, 10) * Fraction(6, 10) + Fraction(3, 10) + Fraction(3, 10) * Fraction(6, 5)
    assert total["total"] == float(expected)
    assert float(total["total_rounded"]) == float(rounded_percent(expected))


def test_percent_text_is_scaled_as_a_decimal() -> None:
    assert parse_number("33.33%") == 0.3333
    assert parse_number("0.35%") == 0.0035
    assert parse_number("12‰") == 0.012
    assert 0.35 * 0.01 != 0.0035  # what multiplying floats would have given
    assert repr(parse_number("0.35%")) == "0.0035"


@pytest.mark.parametrize(("value", "expected"), [(Fraction(96495, 1000), "96.50"), (Fraction(1, 3), "0.33"),
                                                 (Fraction(-1, 8), "-0.13"), (109.994999999455, "109.99")])
def test_half_up_of_fractions_and_floats(value, expected: str) -> None:
    assert str(half_up(value, 2)) == expected


# ------------------------------------------------------------------------------ oracle

def oracle_achievement(method: str, lower: bool, a: Fraction, t: Fraction, b: Fraction | None,
                       s: Fraction | None) -> Fraction:
    """SPEC table, written again here with fractions (default policy: cap 1.2, ratio, 0.6/1.2)."""
    if method == "ratio":
        value = (Fraction(6, 5) if a == 0 else t / a) if lower else a / t
    elif method == "pass_fail":
        value = Fraction(int(a <= t if lower else a >= t))
    else:
        sign = -1 if lower else 1
        ga, gb, gt, gs = a * sign, b * sign, t * sign, s * sign
        if ga < gb:
            value = Fraction(0)
        elif ga < gt:
            value = Fraction(3, 5) + Fraction(2, 5) * (ga - gb) / (gt - gb)
        elif ga < gs:
            value = 1 + Fraction(1, 5) * (ga - gt) / (gs - gt)
        else:
            value = Fraction(6, 5)
    return max(Fraction(0), min(Fraction(6, 5), value))


def oracle_round(total: Fraction) -> Decimal:
    scaled = total * 10000
    whole = int(scaled + Fraction(1, 2)) if scaled >= 0 else -int(-scaled + Fraction(1, 2))
    return Decimal(whole).scaleb(-2)


decimals = st.integers(min_value=1, max_value=3000).map(lambda n: Fraction(n, 100))
rows = st.tuples(st.sampled_from(["ratio", "pass_fail", "tiered"]), st.booleans(), decimals, decimals,
                 st.integers(min_value=1, max_value=9))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=5), st.integers(min_value=0, max_value=2))
def test_scores_match_a_fraction_oracle(cases: list, months_extra: int) -> None:
    """Random decimals (two places, as HR types them), monthly or rolled up by mean over
    1-3 months: achievements, totals and rounded totals equal the oracle's exactly."""
    n = len(cases)
    weights = [Fraction(100 // n + (1 if i < 100 % n else 0), 100) for i in range(n)]
    indicators, role, actuals = [], [], []
    expected_total = Fraction(0)
    months = [f"2026-{m:02d}" for m in range(7, 8 + months_extra)]
    period = "2026-Q3" if months_extra else "2026-07"
    for i, ((method, lower, a, t, step), w) in enumerate(zip(cases, weights)):
        k = f"K{i}"
        indicators.append({"indicator_id": k, "name": k, "dimension": "performance", "method": method,
                           "direction": "lower" if lower else "higher", "aggregation": "mean"})
        b = s = None
        agreement = {"role_family": "研发", "period": period, "indicator_id": k, "weight": float(w), "target": float(t)}
        if method == "tiered":
            gap = Fraction(step, 100)
            b, s = (t + gap, t - gap) if lower else (t - gap, t + gap)
            agreement.update(base=float(b), stretch=float(s))
        role.append(agreement)
        # months with values a - d, a, a + d average to a exactly (a float mean may not)
        offsets = [Fraction(0)] if len(months) == 1 else [Fraction(-step, 100), Fraction(step, 100), Fraction(0)][:len(months)]
        if len(months) == 2:
            offsets = [Fraction(-step, 100), Fraction(step, 100)]
        for month, offset in zip(months, offsets):
            actuals.append({"employee_id": "E1", "period": month, "indicator_id": k, "actual": float(a + offset)})
        expected_total += w * oracle_achievement(method, lower, a, t, b, s)
    inputs = typed_inputs(roster=PEOPLE, indicators=indicators, role_kpis=role, actuals=actuals)
    scores = score_period(inputs, POLICY, period)
    assert scores.unscored.empty
    total = scores.totals.iloc[0]
    assert Decimal(repr(float(total["total_rounded"]))) == oracle_round(expected_total)
    assert total["total"] == pytest.approx(float(expected_total), abs=1e-12)


def test_half_up_decimal_is_half_up_on_wide_decimals():
    """The Decimal form of half_up that the feedback paragraph uses: ties away from zero, exact
    on products of typed decimals, and no negative zero."""
    from pipeline.exact import WIDE, half_up, half_up_decimal

    assert str(half_up_decimal(Decimal("0.125"))) == "0.13"
    assert str(half_up_decimal(Decimal("96.495"))) == "96.50"
    assert str(half_up_decimal(Decimal("-0.004"))) == "0.00"
    assert str(half_up_decimal(WIDE.multiply(Decimal("1.0005"), 100), 1)) == "100.1"  # 1000.4999… in floats
    for value in ("0.35", "2.675", "1.005", "-1.005"):
        assert half_up_decimal(Decimal(value)) == half_up(float(value))
