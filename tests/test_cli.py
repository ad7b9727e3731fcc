"""Every `kpi` command and option through click's runner, as a person types them.

Exit codes (0 done, 1 something needs attention, 2 usage or unreadable input) and the key lines
of what is printed; `--json` output is parsed. One demo company and one run are shared by the
module (they take a few seconds each).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from company import small_company

from pipeline import __version__
from pipeline.cli import main

PERIOD = "2026-10"


def kpi(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _lazy_commands_stay_lazy():
    """Running `kpi diff` loads the command into the group: unload it after, as a new process
    would have it (other tests rely on diff, verify and trace being loaded on demand)."""
    before = dict(main.commands)
    yield
    main.commands.clear()
    main.commands.update(before)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "example"
    result = kpi("demo", folder, "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "Example company written to" in result.output and "2 planted mistakes" in result.output
    assert "scored 48, not scored 2" in result.output
    assert "departments/销售部.xlsx" in result.output and ".errors.xlsx" in result.output
    return folder


@pytest.fixture(scope="module")
def company(tmp_path_factory) -> Path:
    return small_company(tmp_path_factory.mktemp("company") / "inbox", mistake=True)


@pytest.fixture(scope="module")
def period_dir(company, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    result = kpi("run", company, "--period", PERIOD, "--out", out, "--jobs", "1", "--lang", "en")
    assert result.exit_code == 1, result.output  # R002's N/A: one employee not scored
    assert f"Period {PERIOD}" in result.output and "scored 4, not scored 2" in result.output
    assert "[not_a_number]" in result.output and "R002" in result.output and "R003" in result.output
    return out / PERIOD


@pytest.fixture
def bad_policy(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("achievement: {cap: -1}\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ the group


def test_version_and_help():
    assert kpi("--version").output.strip() == f"kpi, version {__version__}"
    result = kpi("--help")
    assert result.exit_code == 0
    for name in ("templates", "validate", "run", "demo", "weights", "diff", "verify", "trace"):
        assert name in result.output
        sub = kpi(name, "--help")  # (-h too, but click caches a command's help option per first use)
        assert sub.exit_code == 0 and "Usage: " in sub.output and "Exit codes" in sub.output, name


def test_an_unknown_command_or_option_is_a_usage_error(tmp_path):
    assert kpi("score").exit_code == 2
    result = kpi("run", tmp_path, "--period", PERIOD, "--frobnicate")
    assert result.exit_code == 2 and "No such option" in result.output


# ------------------------------------------------------------------------------ templates


def test_templates(tmp_path):
    result = kpi("templates", "--out", tmp_path / "t")
    assert result.exit_code == 0, result.output
    written = sorted(Path(line).name for line in result.output.split())
    assert written == sorted(p.name for p in (tmp_path / "t").glob("*.xlsx"))
    assert {"roster.xlsx", "indicators.xlsx", "agreements.xlsx", "actuals.xlsx", "ratings.xlsx", "weights.xlsx",
            "dept_targets.xlsx"} == set(written)


# ------------------------------------------------------------------------------ demo


def test_demo_writes_the_company_and_its_output(demo):
    assert (demo / "inbox" / "weights.xlsx").exists()
    assert sorted(p.name for p in (demo / "output" / PERIOD / "departments").glob("*.xlsx")) == [
        "研发部.xlsx", "行政部.xlsx", "销售部.xlsx"]
    assert (demo / "output" / PERIOD / "audit" / "manifest.json").exists()


def test_demo_for_a_period_the_company_has_no_rows_for(tmp_path):
    result = kpi("demo", tmp_path / "x", "--period", "2025-01", "--lang", "en")
    assert result.exit_code == 1, result.output
    assert "The inbox has no data for 2025-01" in result.output and "2026-10" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x" / "output" / "2025-01").exists()


# ------------------------------------------------------------------------------ validate


def test_validate_lists_the_problem_cell(company):
    result = kpi("validate", company, "--lang", "en")
    assert result.exit_code == 1
    assert "N/A" in result.output and "Checked 7 files: 1 error" in result.output


def test_validate_json(company):
    result = kpi("validate", company, "--json", "--period", PERIOD)
    assert result.exit_code == 1
    findings = json.loads(result.output)
    errors = [f for f in findings if f["severity"] == "error"]
    assert len(errors) == 1
    assert errors[0]["value"] == "N/A" and errors[0]["file"].startswith("actuals") and errors[0]["cell"]
    assert errors[0]["message_zh"] and errors[0]["message_en"]


def test_validate_a_clean_inbox(tmp_path):
    clean = small_company(tmp_path / "inbox")
    result = kpi("validate", clean, "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.output


def test_validate_refuses_a_period_it_cannot_read(company):
    result = kpi("validate", company, "--period", "2026-13", "--lang", "en")
    assert result.exit_code == 2 and "2026-13" in result.output


# ------------------------------------------------------------------------------ run


def test_run_json(company, tmp_path):
    result = kpi("run", company, "--period", PERIOD, "--out", tmp_path / "out", "--json", "--jobs", "1")
    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert summary["period"] == PERIOD and summary["exit_code"] == 1
    assert summary["scored"] == 4
    assert {u["employee_id"]: u["reason_en"][:18] for u in summary["unscored"]} == {
        "R002": "'Actual' must be a", "R003": "Has left the compa"}
    assert "summary.xlsx" in summary["files"]


def test_run_strict_writes_no_scorecards(company, tmp_path):
    result = kpi("run", company, "--period", PERIOD, "--out", tmp_path / "out", "--strict", "--lang", "en")
    assert result.exit_code == 1
    assert not (tmp_path / "out" / PERIOD / "departments").exists()
    assert (tmp_path / "out" / PERIOD / "errors").exists()


def test_run_needs_a_period_and_an_inbox(company, tmp_path):
    assert kpi("run", company).exit_code == 2
    missing = kpi("run", tmp_path / "nope", "--period", PERIOD, "--out", tmp_path / "o", "--lang", "en")
    assert missing.exit_code == 2 and "nope" in missing.output
    assert kpi("run", company, "--period", PERIOD, "--jobs", "0").exit_code == 2


def test_run_of_a_clean_company_exits_0(tmp_path):
    clean = small_company(tmp_path / "inbox")
    result = kpi("run", clean, "--period", PERIOD, "--out", tmp_path / "out", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "scored 5, not scored 1" in result.output and "0 errors" in result.output  # R003 has left


# ------------------------------------------------------------------------------ --policy


@pytest.mark.parametrize("command", ["validate", "run", "weights"])
def test_a_bad_policy_is_a_usage_error_naming_the_key(command, company, bad_policy, tmp_path):
    target = company / "roster.xlsx" if command == "weights" else company  # the policy is read first
    extra = ["--period", PERIOD, "--out", tmp_path / "out"] if command == "run" else []
    result = kpi(command, target, *extra, "--policy", bad_policy, "--lang", "en")
    assert result.exit_code == 2, result.output
    assert "achievement.cap" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_policy_that_is_not_there(company):
    result = kpi("validate", company, "--policy", company / "nope.yaml")
    assert result.exit_code == 2 and "nope.yaml" in result.output


def test_a_policy_changes_the_result(company, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("grades:\n  - {grade: 优, min: 0.0, bonus: 1}\n", encoding="utf-8")
    result = kpi("run", company, "--period", PERIOD, "--out", tmp_path / "out", "--policy", policy, "--json")
    assert json.loads(result.output)["grades"] == {"优": 4}


# ------------------------------------------------------------------------------ weights


def test_weights(demo, tmp_path):
    result = kpi("weights", demo / "inbox" / "weights.xlsx", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "销售  (专家打分 expert)" in result.output and "研发  (AHP)" in result.output
    assert "Kendall W=" in result.output and "CR=" in result.output


def test_weights_json(demo):
    result = kpi("weights", demo / "inbox" / "weights.xlsx", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert {r["method"] for r in records} == {"expert", "ahp"}
    for record in records:
        assert sum(record["weights"].values()) == pytest.approx(1.0)
        assert set(record) == {"role_family", "method", "weights", "lambda_max", "ci", "ri", "cr", "kendall_w", "kendall_w_meaning"}
        assert (record["cr"] is None) == (record["method"] == "expert")


def test_weights_out_with_role_kpis(demo, tmp_path):
    out = tmp_path / "weights_result.xlsx"
    result = kpi("weights", demo / "inbox" / "weights.xlsx", "--out", out, "--period", "2026-Q4")
    assert result.exit_code == 0 and str(out) in result.output
    sheets = openpyxl.load_workbook(out).sheetnames
    assert sheets[:2] == ["权重 Weights", "一致性 Consistency"] and "岗位指标 RoleKPIs" in sheets


def test_weights_of_a_file_that_is_not_a_weights_file(company):
    result = kpi("weights", company / "roster.xlsx", "--lang", "en")
    assert result.exit_code == 1 and "Traceback" not in result.output


# ------------------------------------------------------------------------------ trace


def test_trace(period_dir):
    result = kpi("trace", period_dir, "S002", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"S002  {PERIOD}  departments/销售部.xlsx!")
    assert "actuals" in result.output and "sha256" in result.output and "=MIN(" in result.output


def test_trace_json(period_dir):
    result = kpi("trace", period_dir, "S002", "--json")
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    assert trace["employee_id"] == "S002" and trace["period"] == PERIOD
    actuals = [n for n in trace["numbers"] if n["item"] == "actual" and n["source"] != "360"]
    assert actuals and all(n["source"].startswith("actuals_") and len(n["sha256"]) == 64 for n in actuals)
    assert {n["indicator_id"] for n in trace["numbers"] if n["source"] == "360"} == {"A01", "B01"}
    assert any(n["formula"].startswith("=") for n in trace["numbers"])


def test_trace_of_someone_not_there(period_dir):
    result = kpi("trace", period_dir, "NOPE", "--lang", "en")
    assert result.exit_code == 1 and "NOPE" in result.output


# ------------------------------------------------------------------------------ verify


def test_verify(period_dir, tmp_path):
    result = kpi("verify", period_dir, "--lang", "en")
    assert result.exit_code == 0 and result.output.startswith("Verified: all ")
    copy = tmp_path / PERIOD
    shutil.copytree(period_dir, copy)
    summary = copy / "summary.xlsx"
    summary.write_bytes(summary.read_bytes() + b"\0")
    changed = kpi("verify", copy, "--json")
    assert changed.exit_code == 1
    report = json.loads(changed.output)
    assert report["ok"] is False and "summary.xlsx" in json.dumps(report["changed"])
    assert kpi("verify", copy, "--lang", "zh").exit_code == 1


def test_verify_of_a_folder_without_a_manifest(tmp_path):
    result = kpi("verify", tmp_path, "--lang", "en")
    assert result.exit_code in (1, 2) and "manifest" in result.output.lower()


# ------------------------------------------------------------------------------ diff


@pytest.fixture
def two_rosters(company, tmp_path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    shutil.copy(company / "roster.xlsx", a)
    book = openpyxl.load_workbook(a)
    sheet = book.worksheets[0]
    sheet["B3"] = "改名 renamed"
    book.save(b)
    return a, b


def test_diff(two_rosters, tmp_path):
    a, b = two_rosters
    result = kpi("diff", a, b, "--lang", "en")
    assert result.exit_code == 1 and "B3" in result.output and "改名 renamed" in result.output
    same = kpi("diff", a, a, "--lang", "en")
    assert same.exit_code == 0 and "identical" in same.output


def test_diff_json_tolerance_key_and_report(two_rosters, tmp_path):
    a, b = two_rosters
    changes = json.loads(kpi("diff", a, b, "--json").stdout)
    assert [(c["cell"], c["kind"], c["new"]) for c in changes] == [("B3", "value", "改名 renamed")]
    keyed = kpi("diff", a, b, "--by-key", "employee_id", "--tolerance", "0.01", "--lang", "en")
    assert keyed.exit_code == 1 and "改名 renamed" in keyed.output
    report = tmp_path / "report.xlsx"
    assert kpi("diff", a, b, "--out", report).exit_code == 1 and report.exists()
    assert kpi("diff", a, tmp_path / "nope.xlsx").exit_code == 2
