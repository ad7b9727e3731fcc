"""Forced distribution as HR practises it: quotas, the cap and rank modes, groups, ties.

Expected grades are worked out by hand in the comments, or by the oracles below: a literal
step-by-step cascade and a rank grader written from the rule with exact fractions, sharing
no code with `pipeline.scoring`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from builders import write_inbox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.batch import run_batch
from pipeline.findings import RULES, WARNING
from pipeline.policy import ForcedDistribution, PolicyError, load_policy, parse_policy
from pipeline.scoring import forced_distribution, forced_grades

ROOT = Path(__file__).resolve().parents[1]
SHARES = "{S: 0.10, A: 0.20, B: 0.50, C: 0.15, D: 0.05}"
ORDER = ["S", "A", "B", "C", "D"]
CJK = re.compile(r"[\u4e00-\u9fff]")


def policy(mode: str = "cap", group: str = "department", min_group: int = 10, shares: str = SHARES):
    return parse_policy(f"forced_distribution: {{shares: {shares}, mode: {mode}, group: {group}, "
                        f"min_group: {min_group}}}\n")


CAP, RANK = policy("cap"), policy("rank")
SHORT = parse_policy(f"forced_distribution: {SHARES}\n")


def frame(departments: dict[str, list[float]]) -> pd.DataFrame:
    """Totals as scoring hands them over: rounded totals per department, the score grade from them."""
    rows = [(f"{d}{i:02d}", d, float(t)) for d, totals in departments.items() for i, t in enumerate(totals)]
    totals = pd.DataFrame(rows, columns=["employee_id", "department", "total_rounded"],
                          index=range(500, 500 + len(rows)))
    totals["period"] = "2026-10"
    totals["score_grade"] = [score_grade(t) for t in totals["total_rounded"]]
    return totals


def score_grade(total: float) -> str:
    """The default grade table by hand: S ≥ 110, A ≥ 100, B ≥ 90, C ≥ 80, else D."""
    for grade, minimum in (("S", 110), ("A", 100), ("B", 90), ("C", 80)):
        if total >= minimum:
            return grade
    return "D"


def grades(departments: dict[str, list[float]], pol) -> list[str]:
    return list(forced_grades(frame(departments), pol))


# =========================================================================== policy


def test_long_form_defaults_to_cap_per_department_with_pools_under_10() -> None:
    got = parse_policy(f"forced_distribution: {{shares: {SHARES}}}\n").forced_distribution
    assert got == ForcedDistribution({"S": 0.1, "A": 0.2, "B": 0.5, "C": 0.15, "D": 0.05},
                                     mode="cap", group="department", min_group=10)


def test_long_form_reads_every_key() -> None:
    got = parse_policy("forced_distribution:\n  shares: {S: 0.2, A: 0.3, B: 0.5}\n  mode: rank\n"
                       "  group: company\n  min_group: 4\n").forced_distribution
    assert got == ForcedDistribution({"S": 0.2, "A": 0.3, "B": 0.5}, mode="rank", group="company", min_group=4)


def test_short_form_means_rank_with_every_department_on_its_own() -> None:
    assert SHORT.forced_distribution == ForcedDistribution(
        {"S": 0.1, "A": 0.2, "B": 0.5, "C": 0.15, "D": 0.05}, mode="rank", group="department", min_group=1)


def test_forced_distribution_stays_off_by_default() -> None:
    assert load_policy().forced_distribution is None
    assert parse_policy("forced_distribution: null\n").forced_distribution is None


BAD = [
    ("forced_distribution: {shares: {S: 0.1, X: 0.9}}\n", "forced_distribution.shares.X"),     # unknown grade
    ("forced_distribution: {S: 0.1, X: 0.9}\n", "forced_distribution.X"),                       # short form too
    ("forced_distribution: {shares: {S: 0.2, A: 0.2, B: 0.5, C: 0.15, D: 0.05}}\n", "forced_distribution.shares"),
    ("forced_distribution: {shares: {S: 0.1, A: 0.2}}\n", "forced_distribution.shares"),        # sums to 0.3
    ("forced_distribution: {S: 0.1, A: 0.2}\n", "forced_distribution"),                         # short, 0.3
    ("forced_distribution: {shares: {S: 10, A: 90}}\n", "forced_distribution.shares.S"),        # percents
    ("forced_distribution: {shares: {}}\n", "forced_distribution.shares"),
    ("forced_distribution: {shares: [0.5, 0.5]}\n", "forced_distribution.shares"),
    ("forced_distribution: {shares: {S: 1}, mode: strict}\n", "forced_distribution.mode"),
    ("forced_distribution: {shares: {S: 1}, group: team}\n", "forced_distribution.group"),
    ("forced_distribution: {shares: {S: 1}, min_group: 0}\n", "forced_distribution.min_group"),
    ("forced_distribution: {shares: {S: 1}, min_group: 2.5}\n", "forced_distribution.min_group"),
    ("forced_distribution: {shares: {S: 1}, min_group: ten}\n", "forced_distribution.min_group"),
    ("forced_distribution: {shares: {S: 1}, min_group: true}\n", "forced_distribution.min_group"),
    ("forced_distribution: {shares: {S: 1}, minimum_group: 5}\n", "forced_distribution.minimum_group"),
    ("forced_distribution: {mode: cap, group: company}\n", "forced_distribution.shares"),        # shares missing
    ("forced_distribution: cap\n", "forced_distribution"),
]


@pytest.mark.parametrize(("text", "key"), BAD, ids=[k + ":" + t.strip()[21:50] for t, k in BAD])
def test_bad_forced_distribution_names_the_key_in_both_languages(text: str, key: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    error = info.value
    assert error.key == key
    assert CJK.search(error.zh), error.zh
    assert error.en and not CJK.search(error.en), error.en


def test_shares_error_says_what_they_sum_to() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("forced_distribution: {shares: {S: 0.2, A: 0.2, B: 0.5, C: 0.15, D: 0.05}}\n")
    assert "1.10" in info.value.en and "1.10" in info.value.zh


# =========================================================================== quotas

# quota_i = half_up(cumulative share × n) for S, S+A, S..B, S..C, S..D with .10/.20/.50/.15/.05,
# by hand: n = 1: .1 .3 .8 .95 1 → 0 0 1 1 1; n = 3: .3 .9 2.4 2.85 3 → 0 1 2 3 3;
# n = 5: .5 1.5 4 4.75 5 → 1 2 4 5 5 (0.5 rounds up); n = 10: 1 3 8 9.5 10 → 1 3 8 10 10;
# n = 20: 2 6 16 19 20.
QUOTAS = {1: [0, 0, 1, 1, 1], 3: [0, 1, 2, 3, 3], 5: [1, 2, 4, 5, 5], 10: [1, 3, 8, 10, 10],
          20: [2, 6, 16, 19, 20]}


@pytest.mark.parametrize("n", sorted(QUOTAS))
def test_rank_mode_fills_the_hand_computed_quotas(n: int) -> None:
    got = grades({"X": [150 - 3 * i for i in range(n)]}, RANK)  # n distinct totals, best first
    expected = [ORDER[next(i for i, q in enumerate(QUOTAS[n]) if q >= place)] for place in range(1, n + 1)]
    assert got == expected
    for i in range(len(ORDER)):
        assert sum(ORDER.index(g) <= i for g in got) == QUOTAS[n][i]


def test_quotas_by_hand_for_small_groups() -> None:
    assert grades({"X": [95]}, RANK) == ["B"]                                   # n = 1: only B has a place
    assert grades({"X": [120, 100, 80]}, RANK) == ["A", "B", "C"]               # n = 3: no S
    assert grades({"X": [120, 110, 100, 90, 80]}, RANK) == ["S", "A", "B", "B", "C"]  # n = 5
    assert grades({"X": [100 - i for i in range(20)]}, RANK) == ["S"] * 2 + ["A"] * 4 + ["B"] * 10 + ["C"] * 3 + ["D"]


def test_quotas_are_exact_on_the_typed_shares() -> None:
    # S 0.2 + A 0.7 over 15 people is exactly 13.5 → 14 (in floats 0.2 + 0.7 = 0.8999999999999999,
    # and × 15 = 13.499999999999998, which would round to 13).
    pol = policy("rank", shares="{S: 0.2, A: 0.7, B: 0.1}")
    got = grades({"X": [150 - i for i in range(15)]}, pol)
    assert got.count("S") == 3 and got.count("S") + got.count("A") == 14 and got.count("B") == 1


# =========================================================================== rank mode

def test_rank_mode_five_tied_at_100_all_keep_s_and_the_warning_says_by_4() -> None:
    totals = frame({"销售部": [100] * 5 + [99, 98, 97, 96, 95]})
    got, findings = forced_distribution(totals, RANK)
    # quotas S 1, S+A 3, S..B 8, S..C 10: the five tied share rank 1 → S; ranks 6-8 → B, 9-10 → C
    assert list(got) == ["S"] * 5 + ["B", "B", "B", "C", "C"]
    assert [f.rule for f in findings] == ["forced_tie", "forced_tie"]
    s_line, a_line = findings
    assert s_line.severity == WARNING
    assert "销售部: 5 employees tied at 100.00 exceed the S quota by 4" in s_line.message_en
    assert "销售部:5 名员工并列 100.00 分,超出 S 等级名额 4 人" in s_line.message_zh
    # S and A together: 3 places, 5 people hold them
    assert "5 employees tied at 100.00 exceed the S+A quota by 2" in a_line.message_en
    assert s_line.period == "2026-10" and s_line.value == "100.00"


def test_rank_mode_tie_straddling_a_line_keeps_the_better_grade_and_later_grades_shrink() -> None:
    # n = 10: ranks 3-5 tie across the A line (3): all A; B then holds ranks 6-8 only
    totals = frame({"X": [120, 110, 105, 105, 105, 100, 99, 98, 97, 96]})
    got, findings = forced_distribution(totals, RANK)
    assert list(got) == ["S", "A", "A", "A", "A", "B", "B", "B", "C", "C"]
    assert len(findings) == 1
    assert "X: 3 employees tied at 105.00 exceed the S+A quota by 2" in findings[0].message_en


def test_rank_mode_lifts_low_scores_and_cap_mode_does_not() -> None:
    # The case: 50%, 45%, 40% are D by score. Alone in the company (one pool of 3),
    # rank mode hands out A, B, C by places (quotas 0, 1, 2, 3); cap keeps them D.
    totals = {"X": [50, 45, 40]}
    assert grades(totals, RANK) == ["A", "B", "C"]
    assert grades(totals, CAP) == ["D", "D", "D"]


# =========================================================================== cap mode

README_TOTALS = [115, 112, 104, 101, 98, 95, 88, 85, 60, 50]


def test_cap_mode_worked_example() -> None:
    # score grades S S A A B B C C D D; quotas S 1, S+A 3, S..B 8.
    # S: two hold it, quota 1 → 112 moves to A. S+A: 115, 112, 104, 101 → 101 moves to B.
    # S..B: 115 … 95 are six people, within 8. Nobody below moves up.
    totals = frame({"X": README_TOTALS})
    assert list(totals["score_grade"]) == ["S", "S", "A", "A", "B", "B", "C", "C", "D", "D"]
    got, findings = forced_distribution(totals, CAP)
    assert list(got) == ["S", "A", "A", "B", "B", "B", "C", "C", "D", "D"]
    assert findings == []
    assert grades({"X": README_TOTALS}, RANK) == ["S", "A", "A", "B", "B", "B", "B", "B", "C", "C"]


def test_cap_mode_cascades_down_more_than_one_grade() -> None:
    # Ten people all at S by score (110-119): S keeps 1, A 2 more, B 5 more, C the last 2.
    totals = frame({"X": [119 - i for i in range(10)]})
    assert list(forced_grades(totals, CAP)) == ["S", "A", "A", "B", "B", "B", "B", "B", "C", "C"]


def test_cap_mode_tie_at_the_line_kept_and_reported() -> None:
    # Three tied at 112 (S by score) in 10: the S quota is 1, the tie stays whole on S.
    totals = frame({"研发部": [112, 112, 112, 104, 98, 95, 93, 91, 88, 70]})
    got, findings = forced_distribution(totals, CAP)
    # S+A quota 3 is full with the three S: 104 → B. S..B 8: ranks 4-8 are B by score or cap.
    assert list(got) == ["S", "S", "S", "B", "B", "B", "B", "B", "C", "D"]
    assert [f.message_en.split(" (")[0] for f in findings] == [
        "研发部: 3 employees tied at 112.00 exceed the S quota by 2"]
    assert findings[0].message_zh.startswith("研发部:3 名员工并列 112.00 分,超出 S 等级名额 2 人")


def test_cap_mode_no_warning_when_the_tie_holds_no_quota() -> None:
    # Five tied at 95 (B by score) cross the S and S+A lines by rank, but hold neither grade.
    totals = frame({"X": [95] * 5 + [85, 84, 83, 82, 81]})
    got, findings = forced_distribution(totals, CAP)
    assert list(got) == list(totals["score_grade"])
    assert findings == []


def test_nobody_moves_up_in_cap_mode_and_the_bonus_grade_is_never_better() -> None:
    rng = np.random.default_rng(13)
    totals = frame({f"D{d}": list(rng.integers(40, 125, size=rng.integers(1, 21))) for d in range(30)})
    got = forced_grades(totals, CAP)
    assert (got.map(ORDER.index) >= totals["score_grade"].map(ORDER.index)).all()


# =========================================================================== groups

def test_small_departments_are_pooled_company_wide() -> None:
    # 大部门 (12) is graded alone; 小一 (3) and 小二 (4) are one pool of 7:
    # pool quotas .7 → 1, 2.1 → 2, 5.6 → 6, 6.65 → 7: ranks 1 S, 2 A, 3-6 B, 7 C.
    departments = {"大部门": [100 - i for i in range(12)], "小一": [118, 90, 80], "小二": [117, 116, 70, 60]}
    got = forced_grades(frame(departments), RANK)
    # 大部门 n = 12: 1.2 → 1, 3.6 → 4, 9.6 → 10, 11.4 → 11, 12
    assert list(got[:12]) == ["S", "A", "A", "A", "B", "B", "B", "B", "B", "B", "C", "D"]
    # pool order: 118 (小一), 117, 116 (小二), 90 (小一), 80 (小一), 70, 60 (小二)
    assert list(got[12:]) == ["S", "B", "B", "A", "B", "B", "C"]
    # Per department (min_group 1) each small one would have its own places instead:
    alone = forced_grades(frame(departments), policy("rank", min_group=1))
    # n = 3: quotas 0, 1, 2, 3 → A B C; n = 4: .4 → 0, 1.2 → 1, 3.2 → 3, 3.8 → 4 → A B B C
    assert list(alone[12:]) == ["A", "B", "C", "A", "B", "B", "C"]


def test_pool_smaller_than_min_group_is_still_one_pool() -> None:
    # two departments of 2: one pool of 4 (quotas .4 → 0, 1.2 → 1, 3.2 → 3, 3.8 → 4)
    got, findings = forced_distribution(frame({"甲": [90, 90], "乙": [90, 80]}), RANK)
    # three tied at 90 share rank 1 → A (S has no place); rank 4 → C. The S+A line (1) is
    # overrun by 2; S..B (3) holds exactly the three.
    assert list(got) == ["A", "A", "A", "C"]
    assert len(findings) == 1
    assert findings[0].message_en.startswith(
        "departments under 10 people, pooled: 3 employees tied at 90.00 exceed the S+A quota by 2")
    assert findings[0].message_zh.startswith("人数不足 10 人的部门合并:3 名员工并列 90.00 分")


def test_min_group_boundary_a_department_of_exactly_min_group_stands_alone() -> None:
    departments = {"整": [100 - i for i in range(5)], "零": [99, 98]}
    got = forced_grades(frame(departments), policy("rank", min_group=5))
    assert list(got[:5]) == ["S", "A", "B", "B", "C"]          # n = 5 on its own
    assert list(got[5:]) == ["A", "B"]                          # pool of 2: 0, 1, 2, 2, 2


def test_group_company_ranks_everyone_together() -> None:
    departments = {"甲": [100 - i for i in range(10)], "乙": [120 - i for i in range(10)]}
    got = forced_grades(frame(departments), policy("rank", group="company"))
    # n = 20: quotas 2, 6, 16, 19, 20; 乙 holds places 1-10, 甲 places 11-20
    assert list(got[10:]) == ["S", "S", "A", "A", "A", "A", "B", "B", "B", "B"]
    assert list(got[:10]) == ["B"] * 6 + ["C"] * 3 + ["D"]
    _, findings = forced_distribution(frame({"甲": [100, 100], "乙": [100] * 8}), policy("rank", group="company"))
    assert findings[0].message_en.startswith("whole company: 10 employees tied at 100.00 exceed the S quota by 9")


# =========================================================================== short form

def test_short_form_scores_exactly_as_before() -> None:
    # The former rule: rank per department, no pooling (a department of 2 keeps its own places).
    departments = {"X": [100 - i for i in range(10)], "Y": [50, 60]}
    assert grades(departments, SHORT) == ["S", "A", "A", "B", "B", "B", "B", "B", "C", "C", "B", "A"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from([50, 80, 85, 90, 95, 100, 105, 110, 115]), min_size=1, max_size=20),
                min_size=1, max_size=4))
def test_short_form_is_long_form_rank_without_pooling(departments: list[list[int]]) -> None:
    totals = frame({f"D{i}": values for i, values in enumerate(departments)})
    assert list(forced_grades(totals, SHORT)) == list(forced_grades(totals, policy("rank", min_group=1)))


# =========================================================================== oracles

def quotas(shares: list[Fraction], n: int) -> list[int]:
    """half_up(cumulative share × n), exact; from the last grade with a share on, everyone fits."""
    out, cumulative = [], Fraction(0)
    last = max(i for i, s in enumerate(shares) if s > 0)
    for i, share in enumerate(shares):
        cumulative += share
        out.append(n if i >= last else int(cumulative * n + Fraction(1, 2)))  # floor(x + ½): half up
    return out


def oracle_groups(departments: list[str], how: ForcedDistribution) -> list[str]:
    if how.group == "company":
        return ["*"] * len(departments)
    sizes = {d: departments.count(d) for d in departments}
    return ["*pool" if sizes[d] < how.min_group else d for d in departments]


def oracle_rank(totals: list[float], shares: list[Fraction]) -> list[int]:
    q = quotas(shares, len(totals))
    places = [1 + sum(other > t for other in totals) for t in totals]
    return [next(i for i, quota in enumerate(q) if quota >= place) for place in places]


def oracle_cascade(totals: list[float], score: list[int], shares: list[Fraction]) -> tuple[list[int], dict]:
    """HR's cascade, step by step: over each quota line, move the lowest total down one grade."""
    n, q = len(totals), quotas(shares, len(totals))
    grade = list(score)
    for line in range(len(shares) - 1):
        while True:
            holders = [p for p in range(n) if grade[p] <= line]
            if len(holders) <= q[line]:
                break
            lowest = min(totals[p] for p in holders)
            tied = [p for p in holders if totals[p] == lowest]
            if len(holders) - len(tied) < q[line]:
                break  # the tie straddles the line: kept together on the better grade
            for p in tied:
                assert grade[p] == line  # the lowest of the top grades sit on the line's grade
                grade[p] += 1
    overrun = {line: sum(g <= line for g in grade) - q[line] for line in range(len(shares) - 1)}
    return grade, {line: excess for line, excess in overrun.items() if excess > 0}


def oracle(departments: list[str], totals: list[float], how: ForcedDistribution) -> tuple[list[str], list]:
    """(grade per person, sorted (group, size, grades of the line, excess) of each overrun quota)."""
    shares = [Fraction(str(how.shares.get(g, 0))) for g in ORDER]
    groups = oracle_groups(departments, how)
    names = {"*": "whole company", "*pool": f"departments under {how.min_group} people, pooled"}
    result, overruns = [None] * len(totals), []
    for group in dict.fromkeys(groups):
        members = [p for p, g in enumerate(groups) if g == group]
        values = [totals[p] for p in members]
        if how.mode == "rank":
            got = oracle_rank(values, shares)
            q = quotas(shares, len(values))
            excess = {line: sum(g <= line for g in got) - q[line] for line in range(len(ORDER) - 1)}
            excess = {line: e for line, e in excess.items() if e > 0}
        else:
            got, excess = oracle_cascade(values, [ORDER.index(score_grade(v)) for v in values], shares)
        for p, g in zip(members, got):
            result[p] = ORDER[g]
        overruns += [(names.get(group, group), len(values), "+".join(ORDER[:line + 1]), e)
                     for line, e in excess.items()]
    return result, sorted(overruns)


people = st.lists(st.tuples(st.sampled_from(["销售部", "研发部", "行政部", "财务部"]),
                            st.sampled_from([40, 45, 50, 79.99, 80, 85, 90, 95, 99.99, 100, 100.01, 105, 110, 112.5])),
                  min_size=1, max_size=60)
shares_st = st.sampled_from([SHARES, "{S: 0.2, A: 0.7, B: 0.1}", "{S: 0.05, A: 0.25, B: 0.4, C: 0.2, D: 0.1}",
                             "{A: 0.5, B: 0.5}", "{S: 0.15, A: 0.15, B: 0.4, C: 0.3}"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people, st.sampled_from(["cap", "rank"]), st.sampled_from(["department", "company"]),
       st.integers(1, 12), shares_st)
def test_matches_the_literal_cascade_and_the_rank_oracle(rows, mode, group, min_group, shares) -> None:
    how = policy(mode, group, min_group, shares)
    departments, values = [d for d, _ in rows], [t for _, t in rows]
    totals = pd.DataFrame({"department": departments, "total_rounded": values, "period": "2026-10"})
    totals["score_grade"] = [score_grade(t) for t in values]
    got, findings = forced_distribution(totals, how)
    expected, overruns = oracle(departments, values, how.forced_distribution)
    assert list(got) == expected
    pattern = re.compile(r"^(.+): \d+ employees tied at [\d.]+ exceed the (\S+) quota by (\d+) \(group of (\d+),")
    reported = sorted((m[1], int(m[4]), m[2], int(m[3])) for m in map(pattern.match, (f.message_en for f in findings)))
    assert reported == overruns


def test_cap_is_the_worse_of_the_score_grade_and_the_rank_grade() -> None:
    rng = np.random.default_rng(7)
    values = [float(v) for v in rng.choice([60, 85, 92, 95, 101, 104, 111, 115], size=20)]
    totals = frame({"X": values})
    cap, rank = forced_grades(totals, CAP), forced_grades(totals, RANK)
    worse = np.maximum(totals["score_grade"].map(ORDER.index), rank.map(ORDER.index))
    assert list(cap) == [ORDER[i] for i in worse]


def test_ten_thousand_employees_in_many_departments() -> None:
    rng = np.random.default_rng(2026)
    n = 10_000
    totals = pd.DataFrame({"department": rng.choice([f"部门{i}" for i in range(120)] + ["小组"], size=n,
                                                    p=[0.99 / 120] * 120 + [0.01]),
                           "total_rounded": np.round(rng.normal(95, 10, size=n), 2), "period": "2026-10"})
    totals["score_grade"] = [score_grade(t) for t in totals["total_rounded"]]
    got, findings = forced_distribution(totals, CAP)
    assert got.index.equals(totals.index) and got.notna().all()
    shares = [Fraction(s) for s in ("0.1", "0.2", "0.5", "0.15", "0.05")]
    for department, members in totals.groupby("department"):
        q = quotas(shares, len(members))
        held = got[members.index].map(ORDER.index)
        overrun = {f.message_en.split(" quota by")[0].split("the ")[-1] for f in findings
                   if f.message_en.startswith(f"{department}:")}
        for line in range(4):
            if "+".join(ORDER[:line + 1]) not in overrun:
                assert (held <= line).sum() <= q[line]


# =========================================================================== messages and docs

def test_forced_tie_rule_is_a_bilingual_warning() -> None:
    severity, zh, en = RULES["forced_tie"]
    assert severity == WARNING and CJK.search(zh) and not CJK.search(en.replace("{group_en}", ""))
    assert "{total}" in zh and "{excess}" in zh and "{group}" in zh


def _example(lines: list[str]) -> dict[str, list[str]]:
    """The worked example's rows (`totals`, `score grade`, `cap`, `rank`) as lists of cells."""
    rows = {}
    for line in lines:
        cells = [c for c in re.split(r"[\s|#]+", line.replace("`", "")) if c]
        for name in ("totals", "total", "score", "cap", "rank"):
            if cells and cells[0] == name and name not in rows:
                values = cells[2:12] if name == "score" else cells[1:11]
                if len(values) == 10 and all(re.fullmatch(r"\d+|[SABCD]", v) for v in values):
                    rows[name] = values
    return rows


@pytest.mark.parametrize("path", ["pipeline/default_policy.yaml", "config/policy.yaml", "README.md"])
def test_the_documented_worked_example_is_what_scoring_gives(path: str) -> None:
    text = (ROOT / path).read_text("utf-8")
    start = text.index("forced_distribution: {shares:") if path == "README.md" else text.index("# Forced distribution")
    rows = _example(text[start:start + 4000].splitlines())
    totals = [float(v) for v in rows.get("totals", rows.get("total"))]
    assert totals == README_TOTALS
    assert rows["score"] == [score_grade(t) for t in totals]
    assert rows["cap"] == grades({"X": totals}, CAP)
    assert rows["rank"] == grades({"X": totals}, RANK)


# =========================================================================== end to end

def _inbox(folder: Path) -> Path:
    """A 销售部 of 10 filled by hand: one ratio indicator, totals 115 112 104 101 98 95 88 85 60 50,
    and a 行政部 of 3 tied at 100 (pooled: the only small department)."""
    people = [(f"S{i:02d}", "销售部", "销售", t) for i, t in enumerate(README_TOTALS, start=1)]
    people += [(f"A{i:02d}", "行政部", "行政", 100) for i in range(1, 4)]
    return write_inbox(
        folder,
        roster=[{"employee_id": e, "name": f"员工{e}", "department": d, "role_family": f, "status": "在职"}
                for e, d, f, _ in people],
        indicators=[{"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "category": "结果",
                     "direction": "越高越好", "method": "比率", "unit": "万元", "aggregation": "求和"}],
        role_kpis=[{"role_family": f, "period": "2026-10", "indicator_id": "K1", "weight": "100%", "target": 200}
                   for f in ("销售", "行政")],
        actuals=[{"employee_id": e, "period": "2026-10", "indicator_id": "K1", "actual": 2 * t}
                 for e, _, _, t in people],
    )


def test_end_to_end_totals_sheet_holds_score_grade_and_grade(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f"forced_distribution:\n  shares: {SHARES}\n  mode: cap\n", encoding="utf-8")
    result = run_batch(_inbox(tmp_path / "inbox"), "2026-10", tmp_path / "out", load_policy(policy_file), jobs=1)
    assert result.exit_code == 0, [f.message_en for f in result.findings if f.is_error]

    book = openpyxl.load_workbook(result.period_dir / "summary.xlsx", data_only=True)
    rows = list(book["总分 Totals"].iter_rows(values_only=True))
    header = list(rows[0])
    assert "score_grade" in header and "grade" in header
    got = {r[header.index("employee_id")]: (r[header.index("score_grade")], r[header.index("grade")],
                                            r[header.index("bonus")]) for r in rows[1:]}
    assert [got[f"S{i:02d}"][0] for i in range(1, 11)] == ["S", "S", "A", "A", "B", "B", "C", "C", "D", "D"]
    assert [got[f"S{i:02d}"][1] for i in range(1, 11)] == ["S", "A", "A", "B", "B", "B", "C", "C", "D", "D"]
    assert got["S02"][2] == 1.2 and got["S04"][2] == 1.0          # the bonus follows the final grade
    # 行政部 (3, the only small department, pooled alone): quotas 0, 1, 2, 3; the three tied at
    # A by score keep A over the S+A line (1) and the S..B line (2)
    assert {got[f"A{i:02d}"][:2] for i in range(1, 4)} == {("A", "A")}
    ties = [f for f in result.findings if f.rule == "forced_tie"]
    assert [f.message_en.split(" (")[0] for f in ties] == [
        "departments under 10 people, pooled: 3 employees tied at 100.00 exceed the S+A quota by 2",
        "departments under 10 people, pooled: 3 employees tied at 100.00 exceed the S+A+B quota by 1"]
    warnings = [" ".join(str(c) for c in r if c) for r in book["警告 Warnings"].iter_rows(values_only=True)]
    assert any("3 名员工并列 100.00 分" in w for w in warnings)

    # The scorecard says which mode moved a grade, and only where it moved.
    sales = openpyxl.load_workbook(result.period_dir / "departments" / "销售部.xlsx")
    moved = next(ws for ws in sales.worksheets if ws.title.startswith("S02"))
    kept = next(ws for ws in sales.worksheets if ws.title.startswith("S01"))
    comments = {c.value: c.comment.text for row in moved.iter_rows() for c in row if c.comment}
    assert "强制分布(名额上限)由 S 调为 A Forced distribution (quota cap): S → A" in comments.values()
    assert "A" in comments
    assert not any("Forced distribution" in (c.comment.text if c.comment else "")
                   for row in kept.iter_rows() for c in row)
