"""Progress runs (`kpi run --as-of`): the period to date, pro-rated sum targets, pace, marked outputs."""

from __future__ import annotations

import hashlib

import openpyxl
import pandas as pd
import pytest
from builders import monthly_sales_indicators, write_inbox
from click.testing import CliRunner

from pipeline.batch import BatchError, run_batch
from pipeline.cli import main
from pipeline.policy import load_policy, parse_policy

MARK = "进度 截至 2026-08 Progress to date"


def roster():
    return [{"employee_id": "S001", "name": "王经理", "department": "销售部", "position": "销售经理",
             "role_family": "销售"}]


def role_kpis():
    return [
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K1", "weight": "60%", "target": 300},
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K2", "weight": "30%", "target": 30},
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K4", "weight": "10%", "target": "90%"},
    ]


def actuals(august_sales=80):
    rows = []
    for month, k1, k2, k4 in (("2026-07", 100, 12, "90%"), ("2026-08", august_sales, 12, "96%"),
                              ("2026-09", 500, 1, "10%")):  # September is after the as-of month: not read
        if k1 is not None:
            rows.append({"employee_id": "S001", "period": month, "indicator_id": "K1", "actual": k1})
        rows += [{"employee_id": "S001", "period": month, "indicator_id": "K2", "actual": k2},
                 {"employee_id": "S001", "period": month, "indicator_id": "K4", "actual": k4}]
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracking")
    folder = write_inbox(root / "inbox", roster=roster(), indicators=monthly_sales_indicators("K4"), role_kpis=role_kpis(),
                         actuals=actuals())
    final = run_batch(folder, "2026-Q3", root / "out", load_policy(), jobs=1)
    before = _hashes(final.period_dir)
    tracking = run_batch(folder, "2026-Q3", root / "out", load_policy(), jobs=1, as_of="2026-08")
    return root, folder, final, before, tracking


def _hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_quarter_to_date_against_hand_computed_numbers(runs):
    _, _, _, _, tracking = runs
    assert tracking.exit_code == 0, tracking.errors
    assert (tracking.kind, tracking.as_of) == ("tracking", "2026-08")
    frame = pd.read_excel(tracking.period_dir / "summary.xlsx", sheet_name="明细 Details").set_index("indicator_id")
    # sum: July + August against 300 × 2/3 = 200
    assert frame.loc["K1", "actual"] == 180 and frame.loc["K1", "target"] == pytest.approx(200)
    assert frame.loc["K1", "achievement"] == pytest.approx(0.9)
    assert frame.loc["K2", "actual"] == 24 and frame.loc["K2", "target"] == pytest.approx(20)
    assert frame.loc["K2", "achievement"] == pytest.approx(1.2)
    # mean: (90% + 96%) / 2 against the unchanged 90%
    assert frame.loc["K4", "actual"] == pytest.approx(0.93) and frame.loc["K4", "target"] == pytest.approx(0.9)
    assert frame.loc["K4", "achievement"] == pytest.approx(0.93 / 0.9)
    assert list(frame["pace"]) == ["behind", "ahead", "on_track"]
    total = 0.6 * 0.9 + 0.3 * 1.2 + 0.1 * (0.93 / 0.9)
    assert tracking.scores.totals["total"].iloc[0] == pytest.approx(total)
    assert tracking.scores.totals["total_rounded"].iloc[0] == 100.33


def test_progress_folder_beside_the_final_one_which_is_untouched(runs):
    root, _, final, before, tracking = runs
    assert tracking.period_dir == root / "out" / "2026-Q3-to-2026-08"
    assert final.period_dir == root / "out" / "2026-Q3"
    assert _hashes(final.period_dir) == before
    assert not (root / "out" / ".history").exists()  # the final run was not archived either
    final_details = pd.read_excel(final.period_dir / "summary.xlsx", sheet_name="明细 Details")
    assert "pace" not in final_details.columns
    assert final_details.set_index("indicator_id").loc["K1", "actual"] == 680  # all three months


def test_every_output_is_marked(runs):
    _, _, _, _, tracking = runs
    summary = openpyxl.load_workbook(tracking.period_dir / "summary.xlsx", read_only=True)
    assert MARK in summary["总览 Overview"]["A1"].value
    assert MARK in summary["员工 Employees"]["A2"].value
    book = openpyxl.load_workbook(tracking.period_dir / "departments" / "销售部.xlsx")
    assert MARK in book["汇总 Summary"]["A1"].value
    sheet = next(book[name] for name in book.sheetnames if name.startswith("S001"))
    assert MARK in sheet["A1"].value
    assert sheet["N10"].value == "进度\nPace"
    assert [sheet[f"N{r}"].value for r in (11, 12, 13)] == ["落后 behind", "领先 ahead", "正常 on track"]
    final = openpyxl.load_workbook(runs[2].period_dir / "departments" / "销售部.xlsx")
    final_sheet = next(final[name] for name in final.sheetnames if name.startswith("S001"))
    assert "进度" not in final_sheet["A1"].value and final_sheet["N10"].value is None


def test_console_line_is_marked(runs, tmp_path):
    _, folder, _, _, _ = runs
    result = CliRunner().invoke(main, ["run", str(folder), "--period", "2026-Q3", "--as-of", "2026-08",
                                       "--out", str(tmp_path / "out"), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert f"考核周期 2026-Q3 Period 2026-Q3  {MARK}" in result.output
    assert "2026-Q3-to-2026-08" in result.output


def test_missing_months_only_up_to_as_of(tmp_path):
    folder = write_inbox(tmp_path / "inbox", roster=roster(), indicators=monthly_sales_indicators("K4"), role_kpis=role_kpis(),
                         actuals=[r for r in actuals() if r["period"] == "2026-07"])
    result = run_batch(folder, "2026-Q3", tmp_path / "out", load_policy(), jobs=1, as_of="2026-08")
    missing = [f for f in result.findings if f.rule == "missing_months"]
    assert missing and all("2026-08" in f.message_en and "2026-09" not in f.message_en for f in missing)
    july = run_batch(folder, "2026-Q3", tmp_path / "out2", load_policy(), jobs=1, as_of="2026-07")
    assert not [f for f in july.findings if f.rule == "missing_months"]
    assert july.period_dir.name == "2026-Q3-to-2026-07"
    frame = july.scores.details.set_index("indicator_id")
    assert frame.loc["K1", "target"] == pytest.approx(100)  # 300 × 1/3


def test_pro_rated_target_is_compared_exactly(tmp_path):
    """2.49 × 2/3 is 1.66 exactly; in floats it is 1.6600000000000001, above 0.83 + 0.83."""
    pass_fail = [{"indicator_id": "P1", "name": "回款额达标", "dimension": "业绩", "direction": "越高越好",
                  "method": "达标", "unit": "万元", "aggregation": "求和"}]
    role = [{"role_family": "销售", "period": "2026-Q3", "indicator_id": "P1", "weight": "100%", "target": 2.49}]
    rows = [{"employee_id": "S001", "period": m, "indicator_id": "P1", "actual": 0.83} for m in ("2026-07", "2026-08")]
    folder = write_inbox(tmp_path / "inbox", roster=roster(), indicators=pass_fail, role_kpis=role, actuals=rows)
    result = run_batch(folder, "2026-Q3", tmp_path / "out", load_policy(), jobs=1, as_of="2026-08")
    row = result.scores.details.iloc[0]
    assert row["achievement"] == 1.0 and row["pace"] == "on_track"


@pytest.mark.parametrize("period, as_of, words", [
    ("2026-Q3", "2026-10", "2026-07 to 2026-09"),
    ("2026-Q3", "August", "2026-07 to 2026-09"),
    ("2026-10", "2026-10", "single month"),
])
def test_as_of_must_be_a_month_of_the_period(runs, tmp_path, period, as_of, words):
    _, folder, _, _, _ = runs
    with pytest.raises(BatchError) as caught:
        run_batch(folder, period, tmp_path / "out", load_policy(), jobs=1, as_of=as_of)
    assert words in caught.value.message("en") and "--as-of" in caught.value.message("zh")
    assert not (tmp_path / "out").exists()


def test_pace_band_from_the_policy(tmp_path):
    folder = write_inbox(tmp_path / "inbox", roster=roster(), indicators=monthly_sales_indicators("K4"), role_kpis=role_kpis(),
                         actuals=actuals())
    policy = parse_policy("tracking: {pace_band: 0.2}")
    result = run_batch(folder, "2026-Q3", tmp_path / "out", policy, jobs=1, as_of="2026-08")
    assert list(result.scores.details["pace"]) == ["on_track", "on_track", "on_track"]  # 90%, 120%, 103%
    with pytest.raises(Exception) as caught:
        parse_policy("tracking: {pace_band: 2}")
    assert "tracking.pace_band" in str(caught.value)


def test_the_history_records_the_progress_run_as_tracking_and_never_as_current(runs):
    import sqlite3

    root, _, final, _, tracking = runs
    with sqlite3.connect(root / "out" / "history.sqlite") as con:
        kinds = con.execute("SELECT kind, as_of FROM runs ORDER BY finished_utc").fetchall()
        current = con.execute("SELECT DISTINCT run_id FROM current_totals").fetchall()
        final_run = con.execute("SELECT run_id FROM runs WHERE kind = 'final'").fetchall()
    assert kinds == [("final", None), ("tracking", "2026-08")]
    assert current == final_run
