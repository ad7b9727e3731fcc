"""The monthly batch end to end: files, formulas, determinism, lock, crash safety, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from company import PERIOD, small_company
from python_calamine import CalamineWorkbook
from recalc import mismatches

from pipeline import batch
from pipeline.batch import BatchError, output_lock, run_batch
from pipeline.cli import main
from pipeline.policy import load_policy


def _hashes(folder: Path) -> dict[str, str]:
    """Every file's hash but the run record's (when and by whom it ran: not byte-identical by design)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()
            and p.relative_to(folder).as_posix() not in ("audit/run.json", "audit/run.sig")}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    inbox = small_company(root / "inbox")
    result = run_batch(inbox, PERIOD, root / "out", load_policy(), jobs=1)
    return root, inbox, result


@pytest.fixture(scope="module")
def mistake_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mistake")
    inbox = small_company(root / "inbox", mistake=True, hostile_name=True)
    before = _hashes(inbox)
    result = run_batch(inbox, PERIOD, root / "out", load_policy(), jobs=1)
    return root, inbox, result, before


def test_clean_run_scores_everyone_active_lists_the_leaver_and_exits_0(clean_run):
    _, _, result = clean_run
    totals = result.scores.totals
    assert sorted(totals["employee_id"]) == ["R001", "R002", "S001", "S002", "S003"]
    # R003 has left: listed, not scored, not lost.
    assert list(result.scores.unscored["employee_id"]) == ["R003"]
    assert result.scores.unscored.iloc[0]["rule"] == "left"
    assert not result.errors
    assert result.exit_code == 0  # a leaver is listed, not an error


def test_output_layout(clean_run):
    _, _, result = clean_run
    files = set(_hashes(result.period_dir))
    assert {"departments/销售部.xlsx", "departments/研发部.xlsx", "summary.xlsx", "audit/manifest.json"} <= files
    assert not any(name.startswith("errors/") for name in files)


def test_department_workbook_has_summary_and_one_sheet_per_employee(clean_run):
    _, _, result = clean_run
    book = openpyxl.load_workbook(result.period_dir / "departments" / "销售部.xlsx")
    assert book.sheetnames[0] == "汇总 Summary"
    assert sorted(book.sheetnames[1:]) == ["S001 王芳", "S002 李强", "S003 赵敏"]


def test_every_employee_sheet_has_live_formulas_with_cached_values(clean_run):
    _, _, result = clean_run
    path = result.period_dir / "departments" / "销售部.xlsx"
    formulas = openpyxl.load_workbook(path)
    cached = openpyxl.load_workbook(path, data_only=True)
    for name in formulas.sheetnames[1:]:
        sheet = formulas[name]
        formula_cells = [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
        assert len(formula_cells) >= 8, name
        assert all(cached[name][c.coordinate].value is not None for c in formula_cells), name
    # S002: 销售额 210/200 → 1.05 with the achievement formula next to its inputs.
    sheet, values = formulas["S002 李强"], cached["S002 李强"]
    row = next(r for r in range(1, 40) if sheet.cell(r, 2).value == "K01")
    assert sheet.cell(row, 11).value.startswith("=MIN(1.2,MAX(0,J")
    assert values.cell(row, 11).value == pytest.approx(1.05, abs=1e-12)
    assert sheet.cell(row, 12).value == f"=F{row}*K{row}"


def test_recalculation_agrees_with_cached_values(clean_run):
    _, _, result = clean_run
    for name in ("销售部.xlsx", "研发部.xlsx"):
        checked, problems = mismatches(result.period_dir / "departments" / name)
        assert checked > 40
        assert problems == []


def test_summary_machine_sheets(clean_run):
    _, _, result = clean_run
    book = CalamineWorkbook.from_path(str(result.period_dir / "summary.xlsx"))
    details = book.get_sheet_by_name("明细 Details").to_python()
    assert details[0][:11] == ["employee_id", "period", "indicator_id", "weight", "base", "target", "stretch",
                               "actual", "achievement", "weighted_score", "source"]
    s003 = {row[2]: row for row in details[1:] if row[0] == "S003"}
    # 销售额 typed with full-width digits "１８０" against 200 → 0.9
    assert s003["K01"][8] == pytest.approx(0.9, abs=1e-12)
    assert s003["K01"][10] == "actuals_销售部.xlsx!实际值 Actuals!D8"
    totals = book.get_sheet_by_name("总分 Totals").to_python()
    assert totals[0][:6] == ["employee_id", "period", "total", "total_rounded", "grade", "bonus"]
    by_id = {row[0]: row for row in totals[1:]}
    assert by_id["R003"][2] == "" and by_id["R003"][4] == ""


def test_manifest_holds_true_hashes(clean_run):
    _, inbox, result = clean_run
    manifest = json.loads((result.period_dir / "audit" / "manifest.json").read_text("utf-8"))
    outputs = {item["path"]: item["sha256"] for item in manifest["outputs"]}
    actual = _hashes(result.period_dir)
    actual.pop("audit/manifest.json")
    assert outputs == actual
    inputs = {Path(item["path"]).name: item["sha256"] for item in manifest["inputs"]}
    assert inputs == {name: digest for name, digest in _hashes(inbox).items()}
    assert manifest["policy"]["sha256"] == hashlib.sha256(manifest["policy"]["content"].encode()).hexdigest()


def test_planted_mistake_is_commented_and_the_employee_listed(mistake_run):
    _, inbox, result, before = mistake_run
    assert result.exit_code == 1
    assert _hashes(inbox) == before  # inputs untouched
    unscored = result.scores.unscored.set_index("employee_id")
    assert unscored.loc["R002", "rule"] == "not_a_number"
    assert "D6" in unscored.loc["R002", "where"]
    assert "R002" not in set(result.scores.totals["employee_id"])
    assert {"R001", "S001", "S002", "S003"} <= set(result.scores.totals["employee_id"])
    errors_book = openpyxl.load_workbook(result.period_dir / "errors" / "actuals_研发部.xlsx.errors.xlsx")
    cell = errors_book["实际值 Actuals"]["D6"]
    assert cell.value == "N/A"
    assert "N/A" in cell.comment.text


def test_injected_text_stays_text(mistake_run):
    _, _, result, _ = mistake_run
    for path in (result.period_dir / "departments" / "销售部.xlsx", result.period_dir / "summary.xlsx"):
        book = openpyxl.load_workbook(path)
        found = [c for ws in book.worksheets for row in ws.iter_rows() for c in row
                 if c.value == "=cmd|' /C calc'!A0"]
        assert found, path
        assert all(c.data_type == "s" for c in found), path


def test_two_runs_are_byte_identical_and_jobs_do_not_matter(tmp_path):
    inbox = small_company(tmp_path / "inbox", mistake=True)
    first = run_batch(inbox, PERIOD, tmp_path / "a", load_policy(), jobs=1)
    second = run_batch(inbox, PERIOD, tmp_path / "b", load_policy(), jobs=2)
    assert _hashes(first.period_dir) == _hashes(second.period_dir)
    again = run_batch(inbox, PERIOD, tmp_path / "a", load_policy(), jobs=2)
    assert _hashes(again.period_dir) == _hashes(second.period_dir)


def test_batch_keeps_python_strings_where_pyarrow_would_be_the_default(tmp_path, monkeypatch):
    """With pyarrow installed, pandas 3 stores strings in Arrow by default: slower to write
    cell by cell (benchmarks/), so the batch asks for Python strings; the outputs are the same."""
    pytest.importorskip("pyarrow")
    import pandas as pd

    inbox = small_company(tmp_path / "inbox", mistake=True)
    plain = run_batch(inbox, PERIOD, tmp_path / "a", load_policy(), jobs=1)
    scored = []
    score_period = batch.score_period
    monkeypatch.setattr(batch, "score_period", lambda *args: scored.append(score_period(*args)) or scored[-1])
    with pd.option_context("mode.string_storage", "pyarrow"):
        arrow = run_batch(inbox, PERIOD, tmp_path / "b", load_policy(), jobs=2)
        assert pd.get_option("mode.string_storage") == "pyarrow"  # the caller's setting is left alone
    storages = {getattr(dtype, "storage", "python") for dtype in scored[0].details.dtypes}
    assert storages == {"python"}
    assert _hashes(arrow.period_dir) == _hashes(plain.period_dir)


def test_strict_writes_no_scorecards(tmp_path):
    inbox = small_company(tmp_path / "inbox", mistake=True)
    result = run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), strict=True)
    assert result.exit_code == 1
    assert not (result.period_dir / "departments").exists()
    assert (result.period_dir / "errors").exists()


def test_lock_names_the_holder(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(BatchError) as raised:
            with output_lock(tmp_path):
                pass
    assert str(os.getpid()) in raised.value.en
    assert not (tmp_path / batch.LOCK_NAME).exists()


@pytest.mark.parametrize("left_behind", [
    json.dumps({"pid": 999_999_999, "host": os.uname().nodename}),  # a dead process's lock file
    "",  # what a full disk leaves: unreadable content never blocks
])
def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, left_behind):
    lock = tmp_path / batch.LOCK_NAME
    lock.write_text(left_behind)
    with output_lock(tmp_path) as held:
        assert held == lock
        # the file now names this process, and the lock is really held: a second run is refused
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(BatchError) as raised:
            with output_lock(tmp_path):
                pass
        assert str(os.getpid()) in raised.value.en and "999999999" not in raised.value.en
    assert not lock.exists()  # released and removed


def test_crash_in_the_middle_leaves_no_partial_period(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    good = run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), jobs=1)
    before = _hashes(good.period_dir)

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("pipeline.writers.summary_book.write_summary_workbook", explode)
    with pytest.raises(RuntimeError):
        run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), jobs=1)
    assert _hashes(good.period_dir) == before  # the previous period is intact
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [PERIOD, "history.sqlite"]  # no temp folder, no lock


def test_cli_run_json_and_exit_codes(tmp_path):
    inbox = small_company(tmp_path / "inbox", mistake=True)
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(tmp_path / "out"), "--json",
                                  "--jobs", "1"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["scored"] == 4
    assert [u["employee_id"] for u in report["unscored"]] == ["R002", "R003"]
    bad_period = runner.invoke(main, ["run", str(inbox), "--period", "2026-13", "--out", str(tmp_path / "out")])
    assert bad_period.exit_code == 2
    assert "2026-13" in bad_period.output
    missing = runner.invoke(main, ["run", str(tmp_path / "nope"), "--period", PERIOD, "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2
    assert "Traceback" not in missing.output


def test_kpi_command_leaves_with_the_exit_code_and_all_its_output(tmp_path):
    """`kpi` skips the interpreter's teardown (`cli.entry`); what it printed to a pipe must
    still arrive whole, and the exit code must be the command's."""
    import subprocess
    import sys

    inbox = small_company(tmp_path / "inbox", mistake=True)

    def kpi(*args):
        return subprocess.run([sys.executable, "-c", "from pipeline.cli import entry; entry()", *args],
                              capture_output=True, text=True, timeout=300)

    run = kpi("run", str(inbox), "--period", PERIOD, "--out", str(tmp_path / "out"), "--json", "--jobs", "2")
    assert run.returncode == 1, run.stderr[-2000:]
    assert json.loads(run.stdout)["scored"] == 4
    assert (tmp_path / "out" / PERIOD / "audit" / "manifest.json").is_file()
    assert not (tmp_path / "out" / batch.LOCK_NAME).exists()
    usage = kpi("run", str(inbox), "--period", "2026-13")
    assert usage.returncode == 2 and "2026-13" in usage.stderr
    version = kpi("--version")
    assert version.returncode == 0 and version.stdout.startswith("kpi")


def test_cli_validate_names_cells_and_exits_1(tmp_path):
    inbox = small_company(tmp_path / "inbox", mistake=True)
    result = CliRunner().invoke(main, ["validate", str(inbox), "--lang", "en"])
    assert result.exit_code == 1
    assert "实际值 Actuals!D6" in result.output
    assert "must be a number but holds 'N/A'" in result.output
    assert result.output.strip().splitlines()[-1] == "Checked 7 files: 1 error, 2 warnings."
    clean = small_company(tmp_path / "clean")
    ok = CliRunner().invoke(main, ["validate", str(clean)])
    assert ok.exit_code == 0, ok.output


def test_trace_names_input_cells_hashes_and_formulas(clean_run):
    from pipeline.trace import trace_employee

    _, inbox, result = clean_run
    report = trace_employee(result.period_dir, "S002")
    assert report.scorecard == "departments/销售部.xlsx!S002 李强"
    by_key = {(n.indicator_id, n.item): n for n in report.numbers}
    actual = by_key[("K01", "actual")]
    assert actual.value == 210 and actual.source == "actuals_销售部.xlsx!实际值 Actuals!D4"
    assert actual.sha256 == hashlib.sha256((inbox / "actuals_销售部.xlsx").read_bytes()).hexdigest()
    assert by_key[("K01", "weight")].source == "agreements.xlsx!岗位指标 RoleKPIs!D2"
    # base, target and stretch by their own cells, not the agreement row's weight cell
    assert [by_key[("K02", item)].source for item in ("base", "target", "stretch")] == [
        f"agreements.xlsx!岗位指标 RoleKPIs!{letter}3" for letter in "EFG"]
    # a 360 achievement traces to each rating row used, with relation and the weight it carries
    ratings = [n for n in report.numbers if n.indicator_id == "A01" and n.item == "rating"]
    assert [(n.source, n.value, n.formula) for n in ratings] == [
        ("ratings.xlsx!行为评分 Ratings!F4", 4.0, "supervisor, weight 75.00%"),
        ("ratings.xlsx!行为评分 Ratings!F5", 3.5, "peer, weight 0.00%"),
        ("ratings.xlsx!行为评分 Ratings!F6", 5.0, "self, weight 25.00%")]
    assert ratings[0].sha256 == hashlib.sha256((inbox / "ratings.xlsx").read_bytes()).hexdigest()
    assert by_key[("K01", "achievement")].formula.startswith("=MIN(1.2,MAX(0,J")
    assert by_key[("", "total")].formula.startswith("=SUM(L")
    assert by_key[("", "grade")].formula.startswith("=LOOKUP(")
    cli = CliRunner().invoke(main, ["trace", str(result.period_dir), "R003"])
    assert cli.exit_code == 0 and "not scored" in cli.output


def test_classic_formula_sheets_store_what_xlsxwriter_would(clean_run):
    """The fast formula preparation must not change a single stored formula."""
    from xlsxwriter.worksheet import Worksheet

    from pipeline.writers.fast_sheet import ReferenceSheet

    _, _, result = clean_run
    standard, fast = Worksheet(), ReferenceSheet()
    formulas = [c.value for name in ("销售部.xlsx", "研发部.xlsx")
                for ws in openpyxl.load_workbook(result.period_dir / "departments" / name).worksheets
                for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert len(formulas) > 80
    for formula in formulas:
        assert fast._prepare_formula(formula) == standard._prepare_formula(formula), formula


def test_large_department_is_split_into_team_workbooks_identically_for_any_jobs(tmp_path):
    from pipeline.policy import parse_policy

    policy = parse_policy("output: {max_sheets: 2}\n")
    inbox = small_company(tmp_path / "inbox")
    one = run_batch(inbox, PERIOD, tmp_path / "one", policy, jobs=1)
    two = run_batch(inbox, PERIOD, tmp_path / "two", policy, jobs=2)
    assert _hashes(one.period_dir) == _hashes(two.period_dir)
    files = set(_hashes(one.period_dir))
    # 销售部 has 3 scored employees > 2: a summary-only workbook plus team workbooks by manager.
    assert {"departments/销售部.xlsx", "departments/销售部/S001 王芳.xlsx", "departments/研发部.xlsx"} <= files
    summary_only = openpyxl.load_workbook(one.period_dir / "departments" / "销售部.xlsx")
    assert summary_only.sheetnames == ["汇总 Summary"]
    team_sheets = [n for p in (one.period_dir / "departments" / "销售部").glob("*.xlsx")
                   for n in openpyxl.load_workbook(p).sheetnames if n != "汇总 Summary"]
    assert sorted(team_sheets) == ["S001 王芳", "S002 李强", "S003 赵敏"]


def test_team_workbooks_cache_the_rank_their_formula_computes(tmp_path):
    """A team workbook's RANK formula ranks only the team's rows, so the cached rank (what a
    viewer shows before recalculating) is the rank within the team, not the department's."""
    from pipeline.policy import parse_policy

    result = run_batch(small_company(tmp_path / "inbox"), PERIOD, tmp_path / "out",
                       parse_policy("output: {max_sheets: 2}\n"), jobs=1)
    department_ranks = dict(zip(result.scores.totals["employee_id"], result.scores.totals["rank"]))
    checked = 0
    for path in (result.period_dir / "departments" / "销售部").glob("*.xlsx"):
        formulas = openpyxl.load_workbook(path)["汇总 Summary"]
        cached = openpyxl.load_workbook(path, data_only=True)["汇总 Summary"]
        # (employee, cached rank, cached points) of the rows whose rank is a RANK formula
        rows = [(cached.cell(r, 2).value, cached.cell(r, 1).value, cached.cell(r, 7).value)
                for r in range(5, formulas.max_row + 1) if str(formulas.cell(r, 1).value or "").startswith("=RANK")]
        for employee_id, rank, points in rows:
            assert rank == 1 + sum(other > points for _, _, other in rows), (path.name, employee_id)
            checked += 1
    assert checked == 3 and sorted(department_ranks.values()) != [1, 1, 1]
