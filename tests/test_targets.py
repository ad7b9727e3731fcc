"""`kpi targets`: next period's base / target / stretch from the results history, and the
calibration sheet's shares reaching each tier."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from builders import write_inbox
from click.testing import CliRunner

from pipeline.batch import run_batch
from pipeline.cli import main
from pipeline.policy import load_policy
from pipeline.scoring import tier_shares
from pipeline.targets import NoHistory, nearest_rank, propose_targets

MONTHS = ("2026-07", "2026-08", "2026-09")
PEOPLE = [("S1", "销售部", "销售"), ("S2", "销售部", "销售"), ("S3", "销售部", "销售"), ("S4", "销售部", "销售"),
          ("S5", "销售部", "销售"), ("S6", "销售部", "销售"), ("R1", "研发部", "研发"), ("R2", "研发部", "研发"),
          ("R3", "研发部", "研发")]
INDICATORS = [
    {"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "direction": "越高越好", "method": "比率", "unit": "万元"},
    {"indicator_id": "K2", "name": "投诉率", "dimension": "业绩", "direction": "越低越好", "method": "比率", "unit": "%",
     "aggregation": "平均"},
    {"indicator_id": "K3", "name": "新客户", "dimension": "业绩", "direction": "越高越好", "method": "阶梯", "unit": "个"},
]
# Actuals per month (07, 08, 09). S6 has a personal agreement (K1 70%, K2 30%) in September only.
ACTUALS = {
    "K1": {"S1": (100, 110, 120), "S2": (90, 90, 90), "S3": (80, 85, 90), "S4": (130, 125, 135),
           "S5": (60, 70, 65), "S6": (100, 101, 102), "R1": (50, 50, 50), "R2": (70, 80, 90), "R3": (60, 60, 60)},
    "K2": {"S1": (0.02, 0.03, 0.025), "S2": (0.01, 0.01, 0.01), "S3": (0.04, 0.05, 0.045),
           "S4": (0.015, 0.016, 0.018), "S5": (0.03, 0.03, 0.03), "S6": (0.02, 0.02, 0.02)},
    "K3": {"S1": (10, 12, 14.045), "S2": (8, 8, 8), "S3": (11, 11, 11), "S4": (15, 15, 16), "S5": (5, 6, 7),
           "S6": (9, 10, None), "R1": (3, 3, 3), "R2": (4, 5, 6), "R3": (4, 4, 4)},
}
ROLE_KPIS = [("销售", "K1", 50, 100, None, None), ("销售", "K2", 20, 0.02, None, None), ("销售", "K3", 30, 10, 8, 12),
             ("研发", "K1", 60, 60, None, None), ("研发", "K3", 40, 4, 2, 6)]


def month_inbox(folder: Path, month: int) -> Path:
    period = MONTHS[month]
    roster = [{"employee_id": e, "name": f"员工{e}", "department": d, "role_family": f} for e, d, f in PEOPLE]
    role_kpis = [{"role_family": f, "period": period, "indicator_id": i, "weight": w, "target": t, "base": b,
                  "stretch": s} for f, i, w, t, b, s in ROLE_KPIS]
    personal = ([{"employee_id": "S6", "period": period, "indicator_id": "K1", "weight": 70, "target": 100},
                 {"employee_id": "S6", "period": period, "indicator_id": "K2", "weight": 30, "target": 0.02}]
                if month == 2 else [])
    actuals = [{"employee_id": e, "period": period, "indicator_id": i, "actual": values[month]}
               for i, people in ACTUALS.items() for e, values in people.items()
               if values[month] is not None and not (e.startswith("R") and i == "K2")]
    return write_inbox(folder, roster=roster, indicators=INDICATORS, role_kpis=role_kpis, employee_kpis=personal,
                       actuals=actuals)


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    """Three months of one company scored into one output folder."""
    tmp = tmp_path_factory.mktemp("targets")
    out = tmp / "out"
    for month in range(3):
        inbox = month_inbox(tmp / f"inbox-{month}", month)
        result = run_batch(inbox, MONTHS[month], out, load_policy(), jobs=1)
        assert result.exit_code == 0
    return tmp, out


def read_rows(path: Path, sheet: str) -> list[dict]:
    book = openpyxl.load_workbook(path, data_only=True)
    rows = list(book[sheet].iter_rows(values_only=True))
    book.close()
    heads = [str(h).split("\n")[-1] for h in rows[0]]
    return [dict(zip(heads, row)) for row in rows[1:] if any(v is not None for v in row)]


def tiers(rows: list[dict], owner: str, who: str, indicator: str) -> tuple:
    row = next(r for r in rows if r[owner] == who and r["Indicator ID"] == indicator)
    return row["Base"], row["Target"], row["Stretch"]


# ------------------------------------------------------------------------------ nearest rank

def test_nearest_rank_is_the_ceiling_of_share_times_count():
    from fractions import Fraction

    assert [nearest_rank(6, Fraction(s, 10)) for s in (8, 5, 2)] == [5, 3, 2]
    assert [nearest_rank(3, Fraction(s, 10)) for s in (8, 5, 2)] == [3, 2, 1]
    assert [nearest_rank(10, Fraction(s, 10)) for s in (8, 5, 2)] == [8, 5, 2]  # exact: 0.8 × 10 is 8, not 8.0000001
    assert nearest_rank(1, Fraction(2, 10)) == 1


# ------------------------------------------------------------------------------ percentile targets

@pytest.fixture(scope="module")
def proposal(company):
    tmp, out = company
    found = propose_targets(out, "2026-10")
    return found, read_rows(found.path, "岗位指标 RoleKPIs"), read_rows(found.path, "个人指标 EmployeeKPIs")


def test_role_targets_are_the_values_reached_by_80_50_20_percent(proposal):
    # 销售 K1 means, best first: S4 130, S1 110, S6 101, S2 90, S3 85, S5 65 → ranks 5 / 3 / 2.
    found, role, _ = proposal
    assert found.path.name == "targets-2026-10.xlsx" and found.periods == list(MONTHS)
    assert tiers(role, "Role family", "销售", "K1") == (85, 101, 110)
    # 研发 K1: R2 80, R3 60, R1 50 → ranks 3 / 2 / 1.
    assert tiers(role, "Role family", "研发", "K1") == (50, 60, 80)
    assert tiers(role, "Role family", "研发", "K3") == (3, 4, 5)


def test_lower_is_better_sorts_ascending_and_percent_units_keep_4_decimals(proposal):
    # 销售 K2 means, best (lowest) first: S2 0.01, S4 0.016333…, S6 0.02, S1 0.025, S5 0.03, S3 0.045.
    _, role, _ = proposal
    assert tiers(role, "Role family", "销售", "K2") == (0.03, 0.02, 0.0163)


def test_means_are_exact_and_rounded_half_up(proposal):
    # 销售 K3: S4 15.33, S1 (10 + 12 + 14.045) / 3 = 12.015 → 12.02 (not the float's 12.01), S3 11,
    # S6 9.5 (two months), S2 8, S5 6.
    _, role, _ = proposal
    assert tiers(role, "Role family", "销售", "K3") == (8, 11, 12.02)


def test_periods_weights_and_personal_agreements(proposal):
    found, role, personal = proposal
    assert {r["Period"] for r in role + personal} == {"2026-10"}
    assert {(r["Role family"], r["Indicator ID"]): r["Weight"] for r in role} == {
        ("销售", "K1"): 0.5, ("销售", "K2"): 0.2, ("销售", "K3"): 0.3, ("研发", "K1"): 0.6, ("研发", "K3"): 0.4}
    assert [(r["Employee ID"], r["Indicator ID"], r["Weight"]) for r in personal] == [("S6", "K1", 0.7),
                                                                                     ("S6", "K2", 0.3)]
    # A personal agreement gets its role family's percentiles.
    assert tiers(personal, "Employee ID", "S6", "K1") == (85, 101, 110)
    assert tiers(personal, "Employee ID", "S6", "K2") == (0.03, 0.02, 0.0163)
    assert (found.role_rows, found.personal_rows, found.proposed, found.kept) == (5, 2, 7, 0)


def test_basis_column_says_how_each_number_was_found(proposal):
    _, role, personal = proposal
    basis = next(r["Basis"] for r in role if r["Role family"] == "销售" and r["Indicator ID"] == "K1")
    assert "近 12 个月内 2026-07–2026-09 共 3 个月" in basis and "6 人" in basis and "80%/50%/20%" in basis
    assert "Basis: last 12 months: 2026-07–2026-09, 3 months, 6 employees" in basis
    assert "ranks 5/3/2" in basis and "higher is better" in basis
    lower = next(r["Basis"] for r in role if r["Role family"] == "销售" and r["Indicator ID"] == "K2")
    assert "越低越好" in lower and "lower is better" in lower
    assert personal[0]["Basis"].startswith("按岗位类别 销售")


def test_the_proposal_reads_back_as_a_valid_agreements_file(company, proposal, tmp_path):
    tmp, _ = company
    found, _, _ = proposal
    inbox = tmp_path / "next"
    inbox.mkdir()
    for name in ("roster.xlsx", "indicators.xlsx"):
        shutil.copy(tmp / "inbox-2" / name, inbox / name)
    shutil.copy(found.path, inbox / "agreements.xlsx")
    result = CliRunner().invoke(main, ["validate", str(inbox), "--json"])
    assert result.exit_code == 0, result.output
    assert not [f for f in __import__("json").loads(result.output) if f["severity"] == "error"]


def test_a_rerun_writes_the_same_bytes(company, proposal, tmp_path):
    _, out = company
    found, _, _ = proposal
    again = propose_targets(out, "2026-10", out_path=tmp_path / "again.xlsx")
    assert again.path.read_bytes() == found.path.read_bytes()


def test_the_window_counts_periods_back_from_p(company, tmp_path):
    _, out = company
    # For 2026-11 a window of 2 months holds 2026-09 alone: 销售 K1 = S4 135, S1 120, S6 102, S2 90, S3 90, S5 65.
    found = propose_targets(out, "2026-11", window=2, out_path=tmp_path / "w.xlsx")
    assert found.periods == ["2026-09"]
    role = read_rows(found.path, "岗位指标 RoleKPIs")
    assert tiers(role, "Role family", "销售", "K1") == (90, 102, 120)


# ------------------------------------------------------------------------------ growth, same period last year

def test_growth_is_the_last_3_periods_mean_times_one_plus_g(company, tmp_path):
    _, out = company
    found = propose_targets(out, "2026-10", method="growth", growth=0.1, out_path=tmp_path / "g.xlsx")
    role = read_rows(found.path, "岗位指标 RoleKPIs")
    personal = read_rows(found.path, "个人指标 EmployeeKPIs")
    # 销售 K1 per-month averages 560/6, 581/6, 602/6: mean 1743/18 = 96.8333…
    assert tiers(role, "Role family", "销售", "K1") == (96.83, 106.52, 116.2)
    # S6's own K1: 100, 101, 102 → 101 × 1.1 = 111.1.
    assert tiers(personal, "Employee ID", "S6", "K1") == (101, 111.1, 121.2)
    basis = next(r["Basis"] for r in personal if r["Indicator ID"] == "K1")
    assert "本人" in basis and "× (1 + 0.1)" in basis and "own average" in basis


def test_same_period_last_year_uses_that_period_alone(company, tmp_path):
    _, out = company
    found = propose_targets(out, "2027-07", same_period=True, out_path=tmp_path / "y.xlsx")
    assert found.periods == ["2026-07"]
    role = read_rows(found.path, "岗位指标 RoleKPIs")
    # 销售 K1 in 2026-07, best first: 130, 100, 100, 90, 80, 60 → ranks 5 / 3 / 2.
    assert tiers(role, "Role family", "销售", "K1") == (80, 100, 100)
    assert "去年同期 2026-07" in role[0]["Basis"] and "same period last year 2026-07" in role[0]["Basis"]
    assert {r["Period"] for r in role} == {"2027-07"}


def test_same_period_last_year_without_that_period_proposes_nothing(company, tmp_path):
    _, out = company
    with pytest.raises(NoHistory):
        propose_targets(out, "2026-10", same_period=True, out_path=tmp_path / "none.xlsx")
    assert not (tmp_path / "none.xlsx").exists()


# ------------------------------------------------------------------------------ the command

def test_kpi_targets_writes_the_default_file_and_says_so(company, tmp_path):
    _, out = company
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    result = CliRunner().invoke(main, ["targets", "--history", str(copy), "--for", "2026-10", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert (copy / "targets-2026-10.xlsx").is_file()
    assert "5 role rows, 2 personal rows; 7 proposed from history" in result.output
    result = CliRunner().invoke(main, ["targets", "--history", str(copy), "--for", "2026-10", "--growth", "0.2",
                                       "--out", str(tmp_path / "g.xlsx")])
    assert result.exit_code == 0, result.output
    assert tiers(read_rows(tmp_path / "g.xlsx", "岗位指标 RoleKPIs"), "Role family", "研发", "K1")[1] == 76  # (60 + 63.33… + 66.67…) / 3 × 1.2


def test_kpi_targets_without_history_exits_1_in_both_languages(tmp_path):
    result = CliRunner().invoke(main, ["targets", "--history", str(tmp_path), "--for", "2026-10"])
    assert result.exit_code == 1
    assert "没有历史数据库" in result.output and "No history database" in result.output
    assert "Traceback" not in result.output


def test_kpi_targets_before_any_history_exits_1(company):
    _, out = company
    result = CliRunner().invoke(main, ["targets", "--history", str(out), "--for", "2026-01", "--lang", "en"])
    assert result.exit_code == 1 and "no final results" in result.output


# ------------------------------------------------------------------------------ calibration

def test_tier_shares_are_direction_aware():
    detail = pd.DataFrame({
        "indicator_id": ["A"] * 4 + ["B"] * 4,
        "direction": ["higher"] * 4 + ["lower"] * 4,
        "actual": [5, 8, 10, 13, 0.01, 0.02, 0.03, 0.05],
        "base": [8] * 4 + [None] * 4,
        "target": [10] * 4 + [0.02] * 4,
        "stretch": [12] * 4 + [0.01] * 4,
    })
    shares = tier_shares(detail).set_index("indicator_id")
    assert shares.loc["A"].tolist() == [0.75, 0.5, 0.25]
    assert pd.isna(shares.loc["B", "base_share"]) and shares.loc["B", "target_share"] == 0.5
    assert shares.loc["B", "stretch_share"] == 0.25


def test_calibration_sheet_shows_shares_reaching_base_target_stretch(company):
    _, out = company
    book = openpyxl.load_workbook(out / "2026-09" / "summary.xlsx", data_only=True)
    rows = list(book["校准 Calibration"].iter_rows(values_only=True))
    book.close()
    header = next(i for i, r in enumerate(rows) if r[0] and str(r[0]).startswith("指标编号"))
    heads = [str(h) for h in rows[header]]
    assert any("80%" in h for h in heads) and any("50%" in h for h in heads) and any("20%" in h for h in heads)
    found = {r[0]: r[len(heads) - 3:len(heads)] for r in rows[header + 1:] if r[0]}
    # K3 in September: S1 14.045, S2 8, S3 11, S4 16, S5 7 (tiers 8/10/12); R1 3, R2 6, R3 4 (tiers 2/4/6).
    assert found["K3"] == (7 / 8, 5 / 8, 3 / 8)
    # K2 (lower is better, target 0.02, no base or stretch): S2 0.01, S4 0.018 and S6 0.02 reach it.
    assert found["K2"][0] is None and found["K2"][1] == 0.5 and found["K2"][2] is None
