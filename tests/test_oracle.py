"""Issue 13's check, done here first: whole companies through the batch, against an oracle from SPEC §3.

Each case generates a company with `oracle.generate` (openpyxl workbooks filled the way HR
fills them: see that module), runs the real batch on it (`run_batch`, one case through the
`kpi run` command), reads `summary.xlsx` and compares it with `oracle.Oracle`, which reads the
same input files with openpyxl and scores them with `fractions.Fraction` from the text of
SPEC §3. Every employee's total (within 1e-12 of the exact value), total_rounded (exact),
score_grade, grade and bonus; every Details row's weight, target, actual, achievement (clipped
and raw) and weighted score; who is unscored and why; the cascade (targets, coverage, actual)
and calibration (employees, reached, share, flag); the missing-month, missing-supervisor and
forced-tie findings. Zero mismatches.

The cases at the end are the mismatches this oracle found (percent slips beside a fraction, a
refused cell in the department rollup), each a minimal inbox, kept as regression tests.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from fractions import Fraction as F
from pathlib import Path

import pytest
import yaml
from builders import seed_000_inbox, write_inbox
from oracle import (
    Line,
    Oracle,
    compare,
    generate,
    half_up,
    read_summary,
    write_company,
)

from pipeline.batch import run_batch
from pipeline.policy import load_policy

# (seed, period of the company, periods run on its inbox, policy variant, months_too, through the CLI)
# The variants (oracle.POLICY_VARIANTS): 0 defaults; 1 cap by department (min_group 5) and rater
# weights overridden; 2 rank company-wide, lower-is-better linear, cap 1.3, tiered 0.5/1.3; 3 the
# short form, other rater weights, missing_months: error; 4 cap company-wide, floor 0.2, a peer
# weight of 0; 5 rank by department (min_group 8) with no share for D, other grades and bonuses,
# 销售 rated by supervisor and customer only; 6 cap by department (min_group 10) with no share
# for S, 1 decimal; 7 cap by department with no pooling (min_group 1), linear.
CASES = [
    (0, "2026-10", ("2026-10",), 0, False, False),
    (1, "2026-Q3", ("2026-Q3",), 1, False, False),
    (2, "2026", ("2026",), 2, False, True),
    (3, "2026-Q3", ("2026-Q3",), 3, False, False),
    (4, "2026-H1", ("2026-H1",), 4, False, False),
    (5, "2026-10", ("2026-10",), 5, False, False),
    (6, "2026-Q4", ("2026-Q4",), 6, False, False),
    (7, "2026-H2", ("2026-H2",), 7, False, False),
    (8, "2026-Q1", ("2026-Q1", "2026-02"), 0, True, False),
    (9, "2026-Q2", ("2026-Q2",), 5, False, False),
    (10, "2026-H1", ("2026-H1", "2026-06"), 1, True, False),
]
RUNS = [(case, period) for case in CASES for period in case[2]]


def run_kpi(inbox: Path, period: str, out: Path, policy: Path | None, cli: bool) -> None:
    if cli:
        kpi = Path(sys.executable).with_name("kpi")
        command = [str(kpi), "run", str(inbox), "--period", period, "--out", str(out), "--jobs", "1"]
        if policy is not None:
            command += ["--policy", str(policy)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 1), done.stdout + done.stderr
    else:
        run_batch(inbox, period, out, load_policy(policy), jobs=1)


class Outcomes:
    """Each run once per session: the parametrized cases and the coverage test share them."""

    def __init__(self, root: Path):
        self.root, self.done = root, {}

    def get(self, case: tuple, period: str) -> tuple[Oracle, list[str], dict]:
        key = (case[0], period)
        if key not in self.done:
            seed, company_period, _, variant, months_too, cli = case
            company = generate(seed, company_period, variant, months_too)
            folder = self.root / f"{seed}_{company_period}"
            inbox = folder / "inbox"
            if not inbox.exists():
                write_company(company, inbox, folder / "policy")
            policy = folder / "policy" / "policy.yaml" if company.policy is not None else None
            out = folder / f"out_{period}"
            run_kpi(inbox, period, out, policy, cli)
            oracle = Oracle(inbox, period, company.policy)
            diffs = compare(oracle, read_summary(out / period / "summary.xlsx"))
            self.done[key] = (oracle, diffs, {"company": company, "inbox": inbox})
        return self.done[key]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> Outcomes:
    return Outcomes(tmp_path_factory.mktemp("oracle"))


@pytest.mark.parametrize(("case", "period"), RUNS, ids=[f"seed{c[0]}-{p}" for c, p in RUNS])
def test_company_matches_the_oracle(outcomes: Outcomes, case: tuple, period: str) -> None:
    oracle, diffs, info = outcomes.get(case, period)
    scored = sum(1 for p in oracle.people.values() if p.total is not None)
    assert scored >= 5, f"too few scored employees to say anything ({scored})"
    assert not diffs, (f"{len(diffs)} mismatches (inbox {info['inbox']}, period {period}):\n" +
                       "\n".join(diffs[:60]))
    if period == case[1]:  # every planted error is seen by the oracle (the generator did what it meant)
        for employee, rule in info["company"].intended.items():
            assert rule in oracle.people[employee].problems, (employee, rule, oracle.people[employee].problems)


def test_the_cases_cover_what_issue_13_checks(outcomes: Outcomes) -> None:
    """Across all cases: every method and direction, each aggregation with months missing, ratings
    by month and by period, unweighted relations, the boundary values, both forced-distribution
    modes over groups of 1 to 20 with ties at a quota line, and the planted errors (a rating
    outside 1–5 is in `test_negative_actuals_and_bad_ratings`)."""
    stats, planted = Counter(), Counter()
    for case, period in RUNS:
        oracle, _, info = outcomes.get(case, period)
        stats.update(oracle.stats)
        if period == case[1]:
            planted.update(info["company"].intended.values())
        for p in oracle.people.values():
            stats.update(f"unscored_{rule}" for rule in set(p.problems))
    needed = [f"method_{m}_{d}" for m in ("ratio", "tiered", "pass_fail") for d in ("higher", "lower")]
    needed += ["method_rating_higher", "rollup_sum", "rollup_mean", "rollup_last", "missing_months",
               "period_level_actual", "ratings_by_month", "ratings_by_period", "unweighted_relation_shown",
               "at_target", "above_cap", "below_floor", "tier_line", "float_noise_off_target", "rounding_tie_x5",
               "on_grade_line", "fd_moved_cap", "fd_moved_rank", "fd_tie_at_quota_line", "fd_group_1", "fd_group_20",
               "unscored_percent_slip", "unscored_missing_actual", "unscored_missing_rating",
               "unscored_rating_unweighted", "unscored_missing_months_error", "unscored_left", "unscored_no_agreement",
               "unscored_ratio_stretch_side"]
    missing = [name for name in needed if not stats[name]]
    assert not missing, (missing, sorted(stats.items()))
    assert sum(stats[f"fd_group_{n}"] for n in range(2, 10)) and sum(stats[f"fd_group_{n}"] for n in range(10, 21))
    assert set(planted) >= {"percent_slip", "missing_actual", "missing_rating", "rating_unweighted",
                            "ratio_stretch_side", "zero_target", "tiers_not_monotonic", "negative_actual_lower_ratio",
                            "period_beside_months", "not_half_step"}, planted


# ------------------------------------------------------------------------------ the oracle itself


def test_oracle_reproduces_the_spec_worked_examples(tmp_path: Path) -> None:
    # Example 1 (seed 000): 0.63 + 0.24 + 0.10 = 0.97 → 97.00 → B
    inbox = seed_000_inbox(tmp_path / "inbox")
    oracle = Oracle(inbox, "2026-Q3", None)
    person = oracle.people["S002"]
    assert [line.achievement for line in person.lines] == [F("1.05"), F("0.8"), 1]
    assert (person.total, person.rounded, person.grade) == (F("0.97"), 97, "B")
    # Example 3 (seed 004): tiered 20 / 25 / 30
    line = Line("K", F(1), F(20), F(25), F(30))
    assert oracle.achievement("tiered", "higher", F("22.5"), line) == F("0.8")
    assert oracle.achievement("tiered", "higher", F(30), line) == F("1.2")
    assert oracle.achievement("tiered", "higher", F(19), line) == 0
    mirrored = Line("K", F(1), F(30), F(25), F(20))
    assert oracle.achievement("tiered", "lower", F("27.5"), mirrored) == F("0.8")
    # Half-up on the exact decimals; the issue's numbers
    assert half_up(F("96.495"), 2) == F("96.50") and half_up(F("109.994999999455"), 2) == F("109.99")
    assert half_up(F("96.49499999"), 2) == F("96.49") and half_up(F("0.5"), 0) == 1
    assert F("0.8999999999999") < F("0.9")


def test_seed_000_end_to_end(tmp_path: Path) -> None:
    inbox = seed_000_inbox(tmp_path / "inbox")
    run_batch(inbox, "2026-Q3", tmp_path / "out", load_policy(), jobs=1)
    oracle = Oracle(inbox, "2026-Q3", None)
    assert compare(oracle, read_summary(tmp_path / "out" / "2026-Q3" / "summary.xlsx")) == []


# ------------------------------------------------------------------------------ small inboxes

PEOPLE = [{"employee_id": f"E{i}", "name": f"员工{i}", "department": "研发部", "role_family": "研发",
           "manager_id": "E1" if i > 1 else None} for i in range(1, 4)]


def run_small(folder: Path, period: str, policy: dict | None = None, **tables) -> tuple[Oracle, dict, list[str]]:
    write_inbox(folder / "inbox", **tables)
    policy_path = None
    if policy is not None:
        policy_path = folder / "policy.yaml"
        policy_path.write_text(yaml.safe_dump(policy, allow_unicode=True), "utf-8")
    run_batch(folder / "inbox", period, folder / "out", load_policy(policy_path), jobs=1)
    oracle = Oracle(folder / "inbox", period, policy)
    got = read_summary(folder / "out" / period / "summary.xlsx")
    return oracle, got, compare(oracle, got)


def percent_inbox(k1_target: object, k1_actuals: list[object]) -> dict:
    """E1..E3: 回款率 (unit %, ratio) 50% beside 产量 (件) 50% at target."""
    indicators = [
        {"indicator_id": "K1", "name": "回款率", "dimension": "业绩", "direction": "越高越好", "method": "比率",
         "unit": "%", "aggregation": "平均"},
        {"indicator_id": "K2", "name": "产量", "dimension": "业绩", "direction": "越高越好", "method": "比率",
         "unit": "件", "aggregation": "求和"}]
    role = [{"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": "50%", "target": k1_target},
            {"role_family": "研发", "period": "2026-10", "indicator_id": "K2", "weight": "50%", "target": 100}]
    actuals = []
    for i, a in enumerate(k1_actuals, start=1):
        actuals += [{"employee_id": f"E{i}", "period": "2026-10", "indicator_id": "K1", "actual": a},
                    {"employee_id": f"E{i}", "period": "2026-10", "indicator_id": "K2", "actual": 100}]
    return {"roster": PEOPLE, "indicators": indicators, "role_kpis": role, "actuals": actuals}


def test_percent_slips_that_both_read_alike(tmp_path: Path) -> None:
    # 95 beside 90% is a slip (E3); 1.5 is not above 1.5 (E2 scored, capped); 0.95 is fine (E1).
    oracle, got, diffs = run_small(tmp_path, "2026-10", **percent_inbox("90%", [0.95, 1.5, 95]))
    assert diffs == []
    assert [p.problems for p in oracle.people.values()] == [[], [], ["percent_slip"]]
    # A target typed 90 beside actuals typed as fractions: the target cell is the slip, the role is out.
    oracle, got, diffs = run_small(tmp_path / "reverse", "2026-10", **percent_inbox(90, ["95%", 0.95, 0.8]))
    assert diffs == [] and all(p.problems == ["percent_slip"] for p in oracle.people.values())


def test_monthly_ratings_sum_or_blank_aggregation_and_period_beside_months(tmp_path: Path) -> None:
    """Monthly 360 ratings of a sum (or blank, i.e. sum) indicator roll up as the mean of the months;
    quarterly ratings beside monthly ones are an error (SPEC states it for actuals; applied alike)."""
    indicators = [
        {"indicator_id": "K1", "name": "产量", "dimension": "业绩", "direction": "越高越好", "method": "比率",
         "unit": "件", "aggregation": "求和"},
        {"indicator_id": "A1", "name": "协作", "dimension": "态度", "direction": "越高越好", "method": "评分",
         "aggregation": "平均"},
        {"indicator_id": "A2", "name": "责任", "dimension": "态度", "direction": "越高越好", "method": "评分",
         "aggregation": "求和"},
        {"indicator_id": "A3", "name": "学习", "dimension": "能力", "direction": "越高越好", "method": "评分"}]
    role = [{"role_family": "研发", "period": "2026-Q3", "indicator_id": "K1", "weight": "40%", "target": 300}] + [
        {"role_family": "研发", "period": "2026-Q3", "indicator_id": i, "weight": "20%"} for i in ("A1", "A2", "A3")]
    months = ("2026-07", "2026-08", "2026-09")
    actuals = [{"employee_id": f"E{i}", "period": m, "indicator_id": "K1", "actual": 100} for i in (1, 2, 3)
               for m in months]
    ratings = []
    for i in (1, 2, 3):
        for indicator in ("A1", "A2", "A3"):
            for month, score in zip(months, (3, 4, 5)):
                ratings += [{"employee_id": f"E{i}", "period": month, "indicator_id": indicator, "rater_id": "BOSS",
                             "relation": "上级", "score": score},
                            {"employee_id": f"E{i}", "period": month, "indicator_id": indicator, "rater_id": f"E{i}",
                             "relation": "自评", "score": 4.5}]
    ratings.append({"employee_id": "E3", "period": "2026-Q3", "indicator_id": "A2", "rater_id": "BOSS2",
                    "relation": "上级", "score": 2})
    oracle, got, diffs = run_small(tmp_path, "2026-Q3", roster=PEOPLE, indicators=indicators, role_kpis=role,
                                   actuals=actuals, ratings=ratings)
    assert diffs == []
    assert oracle.people["E3"].problems == ["period_beside_months"]
    assert oracle.people["E1"].total is not None


def test_forced_distribution_small_groups_and_zero_quotas(tmp_path: Path) -> None:
    """Groups of 1 and 2 with no pooling: a quota of half_up(0.1 × 2) = 0 holds no S, a tie of two at
    115 is moved down together; rank mode alike; a lone employee in a group of 1 gets B."""
    indicators = [{"indicator_id": "K1", "name": "产量", "dimension": "业绩", "direction": "越高越好",
                   "method": "比率", "unit": "件", "aggregation": "求和"}]
    roster = [{"employee_id": "E1", "name": "甲", "department": "一部", "role_family": "研发"},
              {"employee_id": "E2", "name": "乙", "department": "一部", "role_family": "研发"},
              {"employee_id": "E3", "name": "丙", "department": "二部", "role_family": "研发"}]
    role = [{"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": "100%", "target": 100}]
    actuals = [{"employee_id": e, "period": "2026-10", "indicator_id": "K1", "actual": 115} for e in ("E1", "E2", "E3")]
    shares = {"S": 0.1, "A": 0.2, "B": 0.5, "C": 0.15, "D": 0.05}
    for mode in ("cap", "rank"):
        policy = {"forced_distribution": {"shares": shares, "mode": mode, "group": "department", "min_group": 1}}
        oracle, got, diffs = run_small(tmp_path / mode, "2026-10", policy, roster=roster, indicators=indicators,
                                       role_kpis=role, actuals=actuals)
        assert diffs == []
        assert [oracle.people[e].grade for e in ("E1", "E2", "E3")] == ["A", "A", "B"]


def test_negative_actuals_and_bad_ratings(tmp_path: Path) -> None:
    """A loss (-20 against a 100 profit target) scores at the floor; a negative count under
    target ÷ actual, a rating of 6 and one of 3.3 are errors that keep their employee unscored."""
    indicators = [
        {"indicator_id": "K1", "name": "利润", "dimension": "业绩", "direction": "越高越好", "method": "比率",
         "unit": "万元", "aggregation": "求和"},
        {"indicator_id": "K2", "name": "缺陷", "dimension": "业绩", "direction": "越低越好", "method": "比率",
         "unit": "个", "aggregation": "求和"},
        {"indicator_id": "A1", "name": "协作", "dimension": "态度", "direction": "越高越好", "method": "评分",
         "aggregation": "平均"}]
    roster = PEOPLE + [{"employee_id": "E4", "name": "员工4", "department": "研发部", "role_family": "研发",
                        "manager_id": "E1"}]
    role = [{"role_family": "研发", "period": "2026-10", "indicator_id": "K1", "weight": "40%", "target": 100},
            {"role_family": "研发", "period": "2026-10", "indicator_id": "K2", "weight": "40%", "target": 5},
            {"role_family": "研发", "period": "2026-10", "indicator_id": "A1", "weight": "20%"}]
    actuals, ratings = [], []
    for i, (k1, k2, supervisor) in enumerate([(-20, 4, 4), (100, -1, 4), (90, 5, 6), (110, 3, 3.3)], start=1):
        actuals += [{"employee_id": f"E{i}", "period": "2026-10", "indicator_id": "K1", "actual": k1},
                    {"employee_id": f"E{i}", "period": "2026-10", "indicator_id": "K2", "actual": k2}]
        ratings += [{"employee_id": f"E{i}", "period": "2026-10", "indicator_id": "A1", "rater_id": "B",
                     "relation": "上级", "score": supervisor},
                    {"employee_id": f"E{i}", "period": "2026-10", "indicator_id": "A1", "rater_id": f"E{i}",
                     "relation": "自评", "score": 4}]
    oracle, got, diffs = run_small(tmp_path, "2026-10", roster=roster, indicators=indicators, role_kpis=role,
                                   actuals=actuals, ratings=ratings)
    assert diffs == []
    assert [oracle.people[e].problems for e in ("E1", "E2", "E3", "E4")] == [
        [], ["negative_actual_lower_ratio"], ["out_of_range"], ["not_half_step"]]
    assert oracle.people["E1"].lines[0].achievement == 0


# ------------------------------------------------------------------------------ found by the oracle (fixed)

def test_spec_bare_actual_above_1_5_beside_a_percent_target_is_a_slip(tmp_path: Path) -> None:
    # E1's 回款率 actual typed 1.6 (no % sign, not %-formatted) against a target typed 90%
    oracle, got, diffs = run_small(tmp_path, "2026-10", **percent_inbox("90%", [1.6, 0.95, 0.9]))
    assert oracle.people["E1"].problems == ["percent_slip"]
    assert diffs == [], diffs


def test_spec_bare_target_above_1_5_beside_fraction_actuals_is_a_slip(tmp_path: Path) -> None:
    # The role's 回款率 target typed 1.6 beside actuals typed 95%, 0.95 and 0.8
    oracle, got, diffs = run_small(tmp_path, "2026-10", **percent_inbox(1.6, ["95%", 0.95, 0.8]))
    assert all(p.problems == ["percent_slip"] for p in oracle.people.values())
    assert diffs == [], diffs


def test_a_rejected_actual_does_not_feed_the_department_rollup(tmp_path: Path) -> None:
    tables = percent_inbox("90%", [0.95, 0.9, 95])  # E3's 95 is a slip: E3 is not scored
    tables["dept_targets"] = [{"department": "研发部", "period": "2026-10", "indicator_id": "K1", "target": "90%"}]
    oracle, got, diffs = run_small(tmp_path, "2026-10", **tables)
    assert diffs == [] and oracle.people["E3"].problems == ["percent_slip"]
    row = got["cascade"][("研发部", "K1")]
    # the mean of the valid actuals (0.95, 0.9), or no figure at all; never one made from 95
    actual = row["部门实际\nDepartment actual"]
    assert actual is None or abs(actual - 0.925) <= 1e-12, row
