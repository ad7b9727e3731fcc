"""The results history (OUT/history.sqlite): runs, results and totals of every run, trends on the
scorecards, streaks, and the `kpi history` / `kpi runs` commands."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from builders import write_inbox
from click.testing import CliRunner

from pipeline import history
from pipeline.batch import run_batch
from pipeline.cli import main
from pipeline.policy import load_policy, parse_policy

MONTHS = ("2026-07", "2026-08", "2026-09")
PEOPLE = [  # employee_id, name, department, role family
    ("E1", "王芳", "销售部", "销售"), ("E2", "李强", "销售部", "销售"), ("E3", "赵敏", "销售部", "销售"),
    ("E4", "陈刚", "研发部", "研发"), ("E5", "周杰", "研发部", "研发"),
]
# Each employee's level per month: all three actuals equal it, targets are 100, so the total is
# level / 100 (S from 110, A from 100, B from 90, C from 80, D below).
LEVELS = {
    "2026-07": {"E1": 115, "E2": 95, "E3": 100, "E4": 85, "E5": 95},
    "2026-08": {"E1": 105, "E2": 92, "E3": 101, "E4": 95, "E5": 85},
    "2026-09": {"E1": 112, "E2": 90, "E3": 99, "E4": 82, "E5": 70},
}


def company_inbox(folder: Path, period: str, levels: dict[str, float]) -> Path:
    """One month's inbox: roster, indicators, the month's agreements and actuals."""
    roster = [{"employee_id": e, "name": n, "department": d, "role_family": f} for e, n, d, f in PEOPLE]
    indicators = [{"indicator_id": i, "name": name, "dimension": "业绩", "direction": "越高越好", "method": "比率",
                   "unit": "万元", "aggregation": "求和"} for i, name in (("K1", "销售额"), ("K2", "回款额"), ("K3", "毛利"))]
    role_kpis = [{"role_family": f, "period": period, "indicator_id": i, "weight": w, "target": 100}
                 for f in ("销售", "研发") for i, w in (("K1", 50), ("K2", 30), ("K3", 20))]
    actuals = [{"employee_id": e, "period": period, "indicator_id": i, "actual": level}
               for e, level in levels.items() for i in ("K1", "K2", "K3")]
    return write_inbox(folder, roster=roster, indicators=indicators, role_kpis=role_kpis, actuals=actuals)


def run_month(tmp_path: Path, out: Path, period: str, levels: dict | None = None, policy=None, **kw):
    inbox = company_inbox(tmp_path / f"inbox-{period}", period, levels or LEVELS[period])
    return run_batch(inbox, period, out, policy or load_policy(), jobs=1, **kw)


def query(out: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(out / "history.sqlite") as con:
        return con.execute(sql, args).fetchall()


def sheet_rows(path: Path, sheet: str) -> list[dict]:
    """A machine sheet (header row 1) of a workbook as dicts."""
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = list(book[sheet].iter_rows(values_only=True))
    book.close()
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def dump(out: Path) -> list[str]:
    with sqlite3.connect(out / "history.sqlite") as con:
        return list(con.iterdump())


STREAK_POLICY = "streaks: {promotion: {periods: 3}}\n"


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """July, August, a corrected rerun of July, then September, into one output folder."""
    tmp = tmp_path_factory.mktemp("months")
    out = tmp / "out"
    policy = parse_policy(STREAK_POLICY)
    runs = {}
    runs["07"] = run_month(tmp, out, "2026-07", policy=policy)
    runs["08"] = run_month(tmp, out, "2026-08", policy=policy)
    corrected = dict(LEVELS["2026-07"], E2=102)  # E2's July actuals were typed wrong: B became A
    runs["07b"] = run_month(tmp, out, "2026-07", corrected, policy=policy)
    runs["09"] = run_month(tmp, out, "2026-09", policy=policy)
    return tmp, out, runs


def run_ids(out: Path) -> list[str]:
    return [r for (r,) in query(out, "SELECT run_id FROM runs ORDER BY finished_utc")]


# ------------------------------------------------------------------------------ the database

def test_schema_is_versioned_wal_with_the_documented_columns(months):
    _, out, _ = months
    assert query(out, "PRAGMA user_version") == [(history.SCHEMA_VERSION,)]
    assert query(out, "PRAGMA journal_mode") == [("wal",)]
    columns = {table: [row[1] for row in query(out, f"PRAGMA table_info({table})")]
               for table in ("runs", "results", "totals", "current_totals", "current_results")}
    assert columns["runs"] == ["run_id", "period", "kind", "as_of", "started_utc", "finished_utc", "operator", "host",
                               "kpi_version", "policy_sha256", "manifest_sha256", "status", "replaces_run_id",
                               "exit_code"]
    assert columns["results"] == ["run_id", "period", "employee_id", "department", "role_family", "indicator_id",
                                  "weight", "base", "target", "stretch", "original_target", "actual", "achievement",
                                  "weighted_score", "adjustment", "source"]
    assert columns["totals"] == ["run_id", "period", "employee_id", "total", "total_rounded", "grade", "score_grade",
                                 "bonus"]
    assert columns["current_totals"] == columns["totals"] and columns["current_results"] == columns["results"]


def test_every_run_is_recorded_and_the_rerun_replaces_the_first(months):
    _, out, runs = months
    rows = query(out, "SELECT run_id, period, kind, status, exit_code, replaces_run_id, policy_sha256, "
                      "manifest_sha256 FROM runs ORDER BY finished_utc")
    assert [(p, k, s, e) for _, p, k, s, e, *_ in rows] == [
        ("2026-07", "final", "ok", 0), ("2026-08", "final", "ok", 0), ("2026-07", "final", "ok", 0),
        ("2026-09", "final", "ok", 0)]
    first, august, rerun, september = rows
    assert rerun[5] == first[0]  # replaces_run_id: the July run it replaced...
    assert runs["07b"].housekeeping.archived.name == first[0]  # ...whose folder was archived under that id
    assert first[5] is None and august[5] is None and september[5] is None
    assert len({r[0] for r in rows}) == 4
    assert first[6] == parse_policy(STREAK_POLICY).sha256
    for row, key in zip(rows, ("07", "08", "07b", "09")):  # the manifest that was in place after each run
        folder = out / ".history" / "2026-07" / row[0] if key == "07" else runs[key].period_dir
        assert row[7] == history.hashlib.sha256((folder / "audit" / "manifest.json").read_bytes()).hexdigest()
    # history keeps both July runs; current_* show the rerun
    assert query(out, "SELECT COUNT(DISTINCT run_id) FROM totals WHERE period = '2026-07'") == [(2,)]
    assert query(out, "SELECT DISTINCT run_id FROM current_totals WHERE period = '2026-07'") == [(rerun[0],)]
    assert query(out, "SELECT DISTINCT run_id FROM current_results WHERE period = '2026-07'") == [(rerun[0],)]
    assert query(out, "SELECT grade FROM current_totals WHERE period = '2026-07' AND employee_id = 'E2'") == [("A",)]
    assert query(out, "SELECT grade FROM totals WHERE run_id = ? AND employee_id = 'E2'", first[0]) == [("B",)]


def _run_folders(out: Path, runs: dict) -> dict[str, Path]:
    """run id -> the folder holding that run's outputs (the period folder or its archive)."""
    folders = {}
    for run_id, period in query(out, "SELECT run_id, period FROM runs"):
        archived = out / ".history" / period / run_id
        folders[run_id] = archived if archived.is_dir() else out / period
    return folders


def test_database_totals_equal_each_runs_totals_sheet(months):
    _, out, runs = months
    for run_id, folder in _run_folders(out, runs).items():
        sheet = sheet_rows(folder / "summary.xlsx", "总分 Totals")
        expected = sorted((r["employee_id"], r["period"], r["total"], r["total_rounded"], r["grade"], r["score_grade"],
                           r["bonus"]) for r in sheet)
        stored = sorted(query(out, "SELECT employee_id, period, total, total_rounded, grade, score_grade, bonus "
                                   "FROM totals WHERE run_id = ?", run_id))
        assert stored == expected and len(stored) == len(PEOPLE)


def test_database_results_equal_each_runs_details_sheet(months):
    _, out, runs = months
    departments = {e: d for e, _, d, _ in PEOPLE}
    families = {e: f for e, _, _, f in PEOPLE}
    for run_id, folder in _run_folders(out, runs).items():
        sheet = sheet_rows(folder / "summary.xlsx", "明细 Details")
        expected = sorted((r["employee_id"], r["period"], departments[r["employee_id"]], families[r["employee_id"]],
                           r["indicator_id"], r["weight"], r["base"], r["target"], r["stretch"], r["target"],
                           r["actual"], r["achievement"], r["weighted_score"], None, r["source"]) for r in sheet)
        stored = sorted(query(out, "SELECT employee_id, period, department, role_family, indicator_id, weight, base, "
                                   "target, stretch, original_target, actual, achievement, weighted_score, "
                                   "adjustment, source FROM results WHERE run_id = ?", run_id))
        assert stored == expected and len(stored) == 3 * len(PEOPLE)


def test_unscored_employees_are_in_totals_with_empty_totals(tmp_path):
    out = tmp_path / "out"
    levels = dict(LEVELS["2026-07"], E3="N/A")
    result = run_month(tmp_path, out, "2026-07", levels)
    assert result.exit_code == 1
    assert query(out, "SELECT total, grade FROM totals WHERE employee_id = 'E3'") == [(None, None)]
    assert query(out, "SELECT status, exit_code FROM runs") == [("ok", 1)]
    assert query(out, "SELECT COUNT(*) FROM results WHERE employee_id = 'E3'") == [(0,)]



# ------------------------------------------------------------------------------ failed and killed runs

def test_a_failure_just_before_the_commit_leaves_the_database_unchanged(tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_month(tmp_path, out, "2026-07")
    before = dump(out)

    def fail():
        raise RuntimeError("disk gone")

    monkeypatch.setattr(history, "_before_commit", fail)
    with pytest.raises(RuntimeError):
        run_month(tmp_path, out, "2026-08")
    assert dump(out) == before
    monkeypatch.undo()
    run_month(tmp_path, out, "2026-08")  # the next run records normally
    assert query(out, "SELECT period FROM runs ORDER BY finished_utc") == [("2026-07",), ("2026-08",)]


def test_a_run_failing_while_it_writes_leaves_the_database_unchanged(tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_month(tmp_path, out, "2026-07")
    before = dump(out)

    def explode(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pipeline.audit.build_manifest", explode)
    with pytest.raises(OSError):
        run_month(tmp_path, out, "2026-07", dict(LEVELS["2026-07"], E1=80))
    assert dump(out) == before
    assert not (out / "2026-08").exists()


_KILL_BEFORE_COMMIT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from pipeline import history
from pipeline.batch import run_batch
from pipeline.policy import load_policy
history._before_commit = lambda: os.kill(os.getpid(), signal.SIGKILL)
run_batch(Path(sys.argv[1]), "2026-08", Path(sys.argv[2]), load_policy(), jobs=1)
"""


def test_a_run_killed_inside_its_transaction_leaves_the_database_unchanged(tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    run_month(tmp_path, out, "2026-07")
    before = dump(out)
    inbox = company_inbox(tmp_path / "inbox-aug", "2026-08", LEVELS["2026-08"])
    script = _KILL_BEFORE_COMMIT.format(tests=str(Path(__file__).parent))
    killed = subprocess.run([sys.executable, "-c", script, str(inbox), str(out)], capture_output=True, text=True,
                            timeout=300, cwd=Path(__file__).parent.parent)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert dump(out) == before  # the uncommitted rows of the killed run are not there
    again = run_batch(inbox, "2026-08", out, load_policy(), jobs=1)
    assert again.exit_code == 0
    assert query(out, "SELECT period FROM runs ORDER BY finished_utc") == [("2026-07",), ("2026-08",)]


def test_a_strict_run_that_writes_no_scorecards_is_logged_but_not_current(tmp_path):
    out = tmp_path / "out"
    run_month(tmp_path, out, "2026-07")
    inbox = company_inbox(tmp_path / "bad", "2026-07", dict(LEVELS["2026-07"], E3="N/A"))
    aborted = run_batch(inbox, "2026-07", out, load_policy(), strict=True, jobs=1)
    assert aborted.exit_code == 1
    rows = query(out, "SELECT run_id, status, exit_code FROM runs ORDER BY finished_utc")
    assert [(s, e) for _, s, e in rows] == [("ok", 0), ("aborted", 1)]
    assert query(out, "SELECT COUNT(*) FROM totals WHERE run_id = ?", rows[1][0]) == [(0,)]
    assert query(out, "SELECT DISTINCT run_id FROM current_totals") == [(rows[0][0],)]


def test_an_unusable_database_is_named_with_how_to_fix_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "history.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(history.HistoryError) as caught:
        run_month(tmp_path, out, "2026-07")
    assert "history.sqlite" in caught.value.en and "Move it aside" in caught.value.en
    assert "移走" in caught.value.zh
    assert not (out / "2026-07").exists()  # nothing is written before the history can be read


def test_a_database_from_a_newer_kpi_is_refused(tmp_path):
    out = tmp_path / "out"
    run_month(tmp_path, out, "2026-07")
    with sqlite3.connect(out / "history.sqlite") as con:
        con.execute(f"PRAGMA user_version = {history.SCHEMA_VERSION + 1}")
    shown = CliRunner().invoke(main, ["runs", str(out), "--lang", "en"])
    assert shown.exit_code == 2
    assert "newer kpi" in shown.output and "Upgrade kpi" in shown.output


# ------------------------------------------------------------------------------ trends

def trend_block(path: Path, sheet: str, title: str) -> list[tuple]:
    """The rows under the trend block titled `title` (its header row skipped), up to a blank row."""
    book = openpyxl.load_workbook(path, data_only=True)
    ws = book[sheet]
    rows = list(ws.iter_rows(values_only=True))
    start = next(i for i, row in enumerate(rows) if isinstance(row[0], str) and row[0].startswith(title))
    found = []
    for row in rows[start + 2:]:
        if row[0] is None:
            break
        found.append(row)
    return found


def sheet_of(path: Path, employee_id: str) -> str:
    return next(name for name in openpyxl.load_workbook(path, read_only=True).sheetnames
                if name.startswith(employee_id + " "))


def test_trend_cells_on_a_scorecard_equal_the_earlier_runs_totals(months):
    _, out, runs = months
    book = runs["09"].period_dir / "departments" / "销售部.xlsx"
    totals = {period: {r["employee_id"]: r for r in sheet_rows(runs[key].period_dir / "summary.xlsx", "总分 Totals")}
              for period, key in (("2026-07", "07b"), ("2026-08", "08"), ("2026-09", "09"))}
    for employee in ("E1", "E2", "E3"):
        rows = trend_block(book, sheet_of(book, employee), "历史趋势")
        assert [r[0] for r in rows] == ["2026-07", "2026-08", "2026-09"]
        for row in rows:
            expected = totals[row[0]][employee]
            assert row[1:4] == (expected["total"], expected["total_rounded"], expected["grade"])
    # July by its current (corrected) run: E2 is an A there, not the B of the run it replaced
    assert trend_block(book, sheet_of(book, "E2"), "历史趋势")[0][3] == "A"


def test_this_periods_trend_row_links_to_the_sheets_own_total(months):
    _, _, runs = months
    book = runs["09"].period_dir / "departments" / "销售部.xlsx"
    ws = openpyxl.load_workbook(book)[sheet_of(book, "E1")]
    last = max(row[0].row for row in ws.iter_rows() if row[0].value == "2026-09" and row[1].data_type == "f")
    assert ws.cell(last, 2).value.startswith("=L") and ws.cell(last, 4).value.startswith("=L")
    assert len(ws._charts) == 2  # achievement bars and the trend line


def test_no_trend_block_without_an_earlier_period(months):
    tmp, _, runs = months
    book = runs["07b"].period_dir / "departments" / "销售部.xlsx"
    wb = openpyxl.load_workbook(book)
    for ws in wb.worksheets:
        assert not any(isinstance(c.value, str) and c.value.startswith("历史趋势")
                       for row in ws.iter_rows() for c in row), ws.title


def test_department_summary_shows_average_and_grade_mix_per_period(months):
    _, _, runs = months
    book = runs["09"].period_dir / "departments" / "研发部.xlsx"
    rows = trend_block(book, "汇总 Summary", "历史趋势")
    assert [r[0] for r in rows] == ["2026-07", "2026-08", "2026-09"]
    grades = ["S", "A", "B", "C", "D"]
    expected = {"2026-07": ((0.85 + 0.95) / 2, {"C": 1, "B": 1}), "2026-08": ((0.95 + 0.85) / 2, {"B": 1, "C": 1}),
                "2026-09": ((0.82 + 0.70) / 2, {"C": 1, "D": 1})}
    for row in rows:
        average, mix = expected[row[0]]
        assert row[1] == 2 and row[2] == pytest.approx(average, abs=1e-12)
        assert list(row[3:8]) == [mix.get(g, 0) for g in grades]


def test_a_rerun_with_the_same_history_is_byte_identical(tmp_path):
    out = tmp_path / "out"
    run_month(tmp_path, out, "2026-07")
    inbox = company_inbox(tmp_path / "aug", "2026-08", LEVELS["2026-08"])
    first = run_batch(inbox, "2026-08", out, load_policy(), jobs=1)
    assert trend_block(first.period_dir / "departments" / "销售部.xlsx", "汇总 Summary", "历史趋势")
    again = run_batch(inbox, "2026-08", out, load_policy(), jobs=1)
    assert again.housekeeping.unchanged  # same outputs byte for byte: nothing archived
    runs = query(out, "SELECT run_id, replaces_run_id FROM runs WHERE period = '2026-08' ORDER BY finished_utc")
    assert len(runs) == 2 and runs[1][1] == runs[0][0]
    assert query(out, "SELECT DISTINCT run_id FROM current_totals WHERE period = '2026-08'") == [(runs[1][0],)]


def test_trends_use_only_periods_of_the_same_length_before_the_one_scored():
    import pandas as pd

    assert history._same_length_before(["2026-07", "2026-Q2", "2026-09", "2025-12", "2026", "2026-10"],
                                       "2026-09") == ["2025-12", "2026-07"]
    assert history._same_length_before(["2025-Q4", "2026-Q1", "2026-03"], "2026-Q2") == ["2025-Q4", "2026-Q1"]
    earlier = pd.DataFrame({"period": [f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01"],
                            "employee_id": "E1", "total": 1.0, "total_rounded": 100.0, "grade": "A"})
    assert list(history.last_periods(earlier)["period"]) == [f"2025-{m:02d}" for m in range(2, 13)] + ["2026-01"]


# ------------------------------------------------------------------------------ streaks

def test_streaks_sheet_lists_promotion_candidates_and_improvement_plans(months):
    _, _, runs = months
    rows = sheet_rows_at(runs["09"].period_dir / "summary.xlsx", "连续表现 Streaks")
    assert [(r["员工编号\nEmployee ID"], r["类型\nKind"], r["连续期数\nPeriods"], r["起始周期\nFrom"], r["各期等级\nGrades"])
            for r in rows] == [("E1", "晋升候选 Promotion candidate", 3, "2026-07", "S, A, S"),
                               ("E5", "改进计划 Improvement plan", 2, "2026-08", "C, D")]
    assert rows[0]["姓名\nName"] == "王芳" and rows[0]["部门\nDepartment"] == "销售部"


def sheet_rows_at(path: Path, sheet: str) -> list[dict]:
    """The rows under the sheet's header row (the one starting with the Employee ID header)."""
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    rows = list(book[sheet].iter_rows(values_only=True))
    top = next(i for i, row in enumerate(rows) if str(row[0]).startswith("员工编号"))
    return [dict(zip(rows[top], row)) for row in rows[top + 1:] if any(v is not None for v in row)]


def _totals(period: str, grades: dict[str, str]):
    import pandas as pd

    return pd.DataFrame({"employee_id": list(grades), "period": period, "grade": list(grades.values()),
                         "name": [f"n{e}" for e in grades], "department": "D"})


def _earlier(rows: list[tuple[str, str, str]]):
    import pandas as pd

    return pd.DataFrame(rows, columns=["employee_id", "period", "grade"]).assign(total=1.0, total_rounded=100.0)


def test_a_missing_period_breaks_a_streak():
    streaks = {"promotion": (("S", "A"), 2)}
    earlier = _earlier([("E1", "2026-07", "S"), ("E2", "2026-08", "A")])  # E1 has no August result
    found = history.find_streaks(earlier, _totals("2026-09", {"E1": "S", "E2": "S"}), "2026-09", streaks)
    assert list(found["employee_id"]) == ["E2"] and list(found["grades"]) == ["A, S"]


def test_streaks_count_every_period_in_a_row_and_cross_year_ends():
    streaks = {"promotion": (("S", "A"), 4), "improvement": (("C", "D"), 2)}
    earlier = _earlier([("E1", p, "A") for p in ("2025-Q2", "2025-Q3", "2025-Q4")] +
                       [("E2", "2025-Q3", "B"), ("E2", "2025-Q4", "C"), ("E3", "2025-Q4", "A")])
    found = history.find_streaks(earlier, _totals("2026-Q1", {"E1": "S", "E2": "D", "E3": "S", "E4": "D"}),
                                 "2026-Q1", streaks)
    assert found[["employee_id", "kind", "periods", "from_period", "grades"]].values.tolist() == [
        ["E1", "promotion", 4, "2025-Q2", "A, A, A, S"], ["E2", "improvement", 2, "2025-Q4", "C, D"]]


def test_a_streak_list_with_periods_zero_is_off():
    found = history.find_streaks(_earlier([]), _totals("2026-09", {"E1": "S"}), "2026-09",
                                 {"promotion": (("S",), 0)})
    assert found.empty


def test_streak_policy_is_validated_and_follows_the_policys_own_grades():
    from pipeline.policy import PolicyError

    assert load_policy().streaks == {"promotion": (("S", "A"), 4), "improvement": (("C", "D"), 2)}
    with pytest.raises(PolicyError) as caught:
        parse_policy("streaks: {promotion: {grades: [S, X]}}")
    assert caught.value.key == "streaks.promotion.grades" and "X" in caught.value.en
    with pytest.raises(PolicyError) as caught:
        parse_policy("streaks: {improvement: {periods: -1}}")
    assert caught.value.key == "streaks.improvement.periods"
    with pytest.raises(PolicyError):
        parse_policy("streaks: {demotion: {periods: 2}}")
    own = parse_policy("grades:\n  - {grade: 优秀, min: 1.0, bonus: 1.2}\n  - {grade: 合格, min: 0.8, bonus: 1}\n"
                       "  - {grade: 不合格, min: 0, bonus: 0}\n")
    assert own.streaks == {"promotion": (("优秀",), 4), "improvement": (("不合格",), 2)}


# ------------------------------------------------------------------------------ commands

def test_kpi_history_json_lists_periods_and_runs(months):
    _, out, _ = months
    shown = CliRunner().invoke(main, ["history", str(out), "E2", "--json"])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)
    ids = run_ids(out)
    assert [(p["period"], p["total_rounded"], p["grade"], p["bonus"], p["run_id"]) for p in found["periods"]] == [
        ("2026-07", 102.0, "A", 1.2, ids[2]), ("2026-08", 92.0, "B", 1.0, ids[1]), ("2026-09", 90.0, "B", 1.0, ids[3])]
    assert [(r["run_id"], r["period"], r["grade"], r["current"]) for r in found["runs"]] == [
        (ids[0], "2026-07", "B", False), (ids[1], "2026-08", "B", True), (ids[2], "2026-07", "A", True),
        (ids[3], "2026-09", "B", True)]
    assert found["department"] == "销售部"


def test_kpi_history_text_and_an_unknown_employee(months):
    _, out, _ = months
    shown = CliRunner().invoke(main, ["history", str(out), "E1", "--lang", "en"])
    assert shown.exit_code == 0
    assert "History of employee E1" in shown.output and "2026-08" in shown.output and "105.00" in shown.output
    assert "历史" not in shown.output  # English only
    both = CliRunner().invoke(main, ["history", str(out), "E1"])
    assert "员工 E1 的历史" in both.output and "History of employee E1" in both.output
    missing = CliRunner().invoke(main, ["history", str(out), "X9", "--lang", "en"])
    assert missing.exit_code == 1 and "No run has scored this employee" in missing.output


def test_kpi_runs_lists_the_run_log(months):
    _, out, _ = months
    ids = run_ids(out)
    shown = CliRunner().invoke(main, ["runs", str(out), "--period", "2026-07", "--json"])
    assert shown.exit_code == 0, shown.output
    log = json.loads(shown.output)
    assert [(r["run_id"], r["status"], r["exit_code"], r["scored"], r["replaces_run_id"], r["current"])
            for r in log] == [(ids[0], "ok", 0, 5, None, False), (ids[2], "ok", 0, 5, ids[0], True)]
    text = CliRunner().invoke(main, ["runs", str(out), "--lang", "en"])
    assert text.exit_code == 0
    lines = text.output.strip().splitlines()
    assert lines[0].split()[:4] == ["Run", "Period", "Kind", "Status"] and len(lines) == 5
    assert all(run_id in text.output for run_id in ids)


def test_commands_without_a_database_say_so(tmp_path):
    shown = CliRunner().invoke(main, ["runs", str(tmp_path), "--lang", "en"])
    assert shown.exit_code == 2 and "No history database" in shown.output and "kpi run" in shown.output
    assert not (tmp_path / "history.sqlite").exists()  # reading never creates it


def test_trends_reach_team_workbooks_and_are_the_same_for_any_jobs(tmp_path):
    policy = parse_policy("output: {max_sheets: 2}\n")  # 销售部 (3 people) splits into team workbooks
    books = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        run_month(tmp_path / f"j{jobs}", out, "2026-07", policy=policy)
        inbox = company_inbox(tmp_path / "aug", "2026-08", LEVELS["2026-08"]) if jobs == 1 else tmp_path / "aug"
        result = run_batch(inbox, "2026-08", out, policy, jobs=jobs)
        books[jobs] = {p.relative_to(result.period_dir).as_posix(): p.read_bytes()
                       for p in sorted((result.period_dir / "departments").rglob("*.xlsx"))}
    assert books[1] == books[2]
    folder = tmp_path / "out1" / "2026-08" / "departments"
    teams = sorted((folder / "销售部").glob("*.xlsx"))
    assert len(teams) == 2
    for book in teams:
        for name in openpyxl.load_workbook(book, read_only=True).sheetnames[1:]:
            employee = name.split()[0]
            rows = trend_block(book, name, "历史趋势")
            assert [(r[0], r[2]) for r in rows] == [("2026-07", float(LEVELS["2026-07"][employee])),
                                                    ("2026-08", float(LEVELS["2026-08"][employee]))]
    rows = trend_block(folder / "销售部.xlsx", "汇总 Summary", "历史趋势")  # the summary-only department book
    assert [r[0] for r in rows] == ["2026-07", "2026-08"] and rows[0][1] == 3
