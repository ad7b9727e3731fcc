"""Inputs as HR leaves them: backup copies, files and folders nobody may read, files replaced
while the run reads them, and a genuine giant export (issue 14)."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import shutil
from pathlib import Path

import openpyxl
import pytest
from builders import sheet_name, table, write_inbox, write_sheets
from click.testing import CliRunner
from company import PERIOD, small_company

from pipeline import batch, reader
from pipeline.audit import MANIFEST_PATH, build_manifest
from pipeline.batch import run_batch
from pipeline.cli import main
from pipeline.policy import load_policy
from pipeline.reader import kind_from_name, load_input, read_inbox, read_workbook
from pipeline.safety import Limits, SheetExtent, UnreadableInput, check_extent, check_workbook_cells
from pipeline.validate import looks_like_copy, validate

POLICY = load_policy()


def rules(findings) -> list[str]:
    return [f.rule for f in findings]


def only(findings, rule: str):
    found = [f for f in findings if f.rule == rule]
    assert len(found) == 1, [(f.rule, f.file, f.message_en) for f in findings]
    return found[0]


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def manifest_of(period_dir: Path) -> dict:
    return json.loads((period_dir / MANIFEST_PATH).read_text(encoding="utf-8"))


def company_with_chinese_roster(folder: Path) -> Path:
    """The small company, its roster saved as HR names it: 花名册.xlsx."""
    inbox = small_company(folder)
    (inbox / "roster.xlsx").rename(inbox / "花名册.xlsx")
    return inbox


# ================================================================== copies

@pytest.mark.parametrize("name", ["花名册 - 副本.xlsx", "花名册 - 副本 (2).xlsx", "roster (1).xlsx", "roster(2).xlsx",
                                  "副本 roster.xlsx", "Copy of roster.xlsx", "roster - Copy.xlsx",
                                  "roster copy 2.xlsx", "复件 花名册.xlsx", "花名册的副本.xlsx", "sub/roster（1）.xlsx"])
def test_names_windows_macos_wps_and_browsers_give_copies_look_like_copies(name):
    assert looks_like_copy(name)


@pytest.mark.parametrize("name", ["花名册.xlsx", "roster.xlsx", "actuals_销售部.xlsx", "actuals 2026-10.xlsx",
                                  "scopy.xlsx", "Q3 (2026).xlsx", "copyright.xlsx"])
def test_ordinary_names_do_not_look_like_copies(name):
    assert not looks_like_copy(name)


def test_an_identical_roster_copy_is_one_warning_and_the_run_exits_0(tmp_path):
    inbox = company_with_chinese_roster(tmp_path / "inbox")
    shutil.copy(inbox / "花名册.xlsx", inbox / "花名册 - 副本.xlsx")
    code, output = run_cli("run", inbox, "--period", PERIOD, "--out", tmp_path / "out")
    assert code == 0, output
    assert "Traceback" not in output
    assert "花名册 - 副本.xlsx" in output and "identical to 花名册.xlsx" in output  # said on the console
    manifest = manifest_of(tmp_path / "out" / PERIOD)
    assert [f["rule"] for f in manifest["warnings"]].count("duplicate_file") == 1
    copy = next(i for i in manifest["inputs"] if i["file"] == "花名册 - 副本.xlsx")
    assert copy["copy_of"] == "花名册.xlsx"
    assert copy["sha256"] == hashlib.sha256((inbox / "花名册.xlsx").read_bytes()).hexdigest()


def test_an_identical_copy_is_ignored_and_the_original_used(tmp_path):
    inbox = company_with_chinese_roster(tmp_path / "inbox")
    shutil.copy(inbox / "花名册.xlsx", inbox / "花名册 - 副本.xlsx")
    inputs = validate(read_inbox(inbox), POLICY, PERIOD)
    f = only(inputs.findings, "duplicate_file")
    assert f.file == "花名册 - 副本.xlsx" and not f.is_error
    assert "花名册.xlsx" in f.message_zh and "花名册.xlsx" in f.message_en
    assert "duplicate_key" not in rules(inputs.findings)
    assert set(inputs.roster["_file"]) == {"花名册.xlsx"} and len(inputs.roster) == 6
    scores = batch.score_period(inputs, POLICY, PERIOD)
    assert sorted(scores.totals["employee_id"]) == ["R001", "R002", "S001", "S002", "S003"]


def test_the_later_file_is_the_copy_when_neither_name_says_so(tmp_path):
    inbox = company_with_chinese_roster(tmp_path / "inbox")
    shutil.copy(inbox / "花名册.xlsx", inbox / "员工名单.xlsx")
    f = only(validate(read_inbox(inbox), POLICY, PERIOD).findings, "duplicate_file")
    assert f.file == sorted(["花名册.xlsx", "员工名单.xlsx"])[1]


def _roster(count: int) -> list[dict]:
    return [{"employee_id": f"E{i:03d}", "name": f"员工{i}", "department": "销售部", "position": "销售代表",
             "role_family": "销售"} for i in range(1, count + 1)]


def test_a_copy_that_differs_is_one_error_on_the_copy_not_one_per_row(tmp_path):
    inbox = tmp_path / "inbox"
    write_inbox(inbox, roster=_roster(100))
    changed = _roster(100)
    for row in changed[:3]:
        row["department"] = "市场部"  # HR edited the copy
    write_sheets(inbox / "roster (1).xlsx", {sheet_name("roster"): table("roster", changed)})
    code, output = run_cli("validate", inbox, "--lang", "en")
    assert code == 1
    assert output.count("[copied_file]") == 1 and "[duplicate_key]" not in output
    inputs = validate(read_inbox(inbox), POLICY)
    f = only(inputs.findings, "copied_file")
    assert f.is_error and f.file == "roster (1).xlsx" and f.cell == ""
    assert "roster.xlsx" in f.message_en and "97 of its 100" in f.message_en and "3 differ" in f.message_en
    assert "roster.xlsx" in f.message_zh and "97" in f.message_zh
    # Only the original's rows are used, and nobody is kept from being scored because of the copy.
    assert set(inputs.roster["_file"]) == {"roster.xlsx"} and len(inputs.roster) == 100
    assert set(inputs.roster["department"]) == {"销售部"}
    assert not inputs.blocked


def test_a_differing_roster_copy_does_not_crash_the_run_and_everyone_is_scored(tmp_path):
    inbox = company_with_chinese_roster(tmp_path / "inbox")
    book = openpyxl.load_workbook(inbox / "花名册.xlsx")
    book[sheet_name("roster")]["B3"] = "王芳芳"  # one name changed in the copy
    book.save(inbox / "花名册 - 副本.xlsx")
    code, output = run_cli("run", inbox, "--period", PERIOD, "--out", tmp_path / "out")
    assert code == 1 and "Traceback" not in output  # an error: which version is right is HR's call
    assert output.count("[copied_file]") == 1 and "[duplicate_key]" not in output
    result = run_batch(inbox, PERIOD, tmp_path / "out2", POLICY, jobs=1)
    assert sorted(result.scores.totals["employee_id"]) == ["R001", "R002", "S001", "S002", "S003"]
    assert list(result.scores.unscored["rule"]) == ["left"]
    assert only(result.findings, "copied_file").file == "花名册 - 副本.xlsx"


def test_files_that_share_a_few_rows_are_not_copies(tmp_path):
    # A corrections file repeating two rows of the main actuals: each repeated row is one
    # duplicate (the row is used once); only a file mostly made of another's rows (or named as
    # a copy) is set aside.
    inbox = tmp_path / "inbox"
    rows = [{"employee_id": f"E{i:03d}", "period": PERIOD, "indicator_id": "K1", "actual": i} for i in range(1, 41)]
    write_inbox(inbox, roster=_roster(40), actuals=rows)
    write_sheets(inbox / "补录.xlsx", {sheet_name("actuals"): table("actuals", rows[:2] + [
        {"employee_id": "E001", "period": "2026-09", "indicator_id": "K1", "actual": 5}])})
    inputs = validate(read_inbox(inbox), POLICY)
    assert "copied_file" not in rules(inputs.findings) and "duplicate_file" not in rules(inputs.findings)
    assert rules(inputs.findings).count("duplicate") == 2 and "conflict" not in rules(inputs.findings)


def test_identical_copies_of_an_unreadable_file_are_one_error_and_one_warning(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "actuals.xlsx").write_bytes(b"garbage")
    (inbox / "actuals - 副本.xlsx").write_bytes(b"garbage")
    inputs = validate(read_inbox(inbox), POLICY)
    assert only(inputs.findings, "unreadable").file == "actuals.xlsx"
    assert only(inputs.findings, "duplicate_file").file == "actuals - 副本.xlsx"


# ================================================================== one copy of the bytes

def test_a_workbook_is_parsed_from_the_bytes_read_once(tmp_path):
    path = small_company(tmp_path / "inbox") / "ratings.xlsx"
    data = path.read_bytes()
    source = load_input(path)
    path.unlink()  # nothing may open the file again
    result = read_workbook(path, source=source)
    assert result.kind == "ratings" and result.rows > 0 and not result.findings
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size == len(data)
    assert result.data == data


def test_reading_in_workers_keeps_the_bytes_and_their_hash(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    monkeypatch.setattr(reader, "PARALLEL_READ_BYTES", 0)
    alone, together = read_inbox(inbox), read_inbox(inbox, jobs=2)
    for one, other in zip(alone, together):
        assert other.sha256 == one.sha256 == hashlib.sha256(one.path.read_bytes()).hexdigest()
        assert other.data == one.data and other.mtime_ns == one.mtime_ns


def test_the_manifest_hashes_what_was_read_and_a_replaced_input_is_named(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    roster = inbox / "roster.xlsx"
    version_a = roster.read_bytes()
    read = batch.read_inbox

    def read_then_replace(folder, *args, **kwargs):
        workbooks = read(folder, *args, **kwargs)
        shutil.copy(inbox / "ratings.xlsx", roster)  # someone saves another file over it
        os.utime(roster, ns=(1_000_000_000, 1_000_000_000))
        return workbooks

    monkeypatch.setattr(batch, "read_inbox", read_then_replace)
    code, output = run_cli("run", inbox, "--period", PERIOD, "--out", tmp_path / "out")
    assert code == 0, output  # the run used version A, which is clean
    assert "roster.xlsx" in output and "changed after the run read it" in output
    manifest = manifest_of(tmp_path / "out" / PERIOD)
    entry = next(i for i in manifest["inputs"] if i["file"] == "roster.xlsx")
    assert entry["sha256"] == hashlib.sha256(version_a).hexdigest() != hashlib.sha256(roster.read_bytes()).hexdigest()
    assert entry["size"] == len(version_a)
    changed = [w for w in manifest["warnings"] if w["rule"] == "input_changed"]
    assert [w["where"] for w in changed] == ["roster.xlsx"]


def test_an_input_removed_during_the_run_is_named(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    read = batch.read_inbox

    def read_then_remove(folder, *args, **kwargs):
        workbooks = read(folder, *args, **kwargs)
        (inbox / "dept_targets.xlsx").unlink()
        return workbooks

    monkeypatch.setattr(batch, "read_inbox", read_then_remove)
    result = run_batch(inbox, PERIOD, tmp_path / "out", POLICY, jobs=1)
    f = only(result.findings, "input_changed")
    assert f.file == "dept_targets.xlsx" and "removed" in f.message_en and "删除" in f.message_zh
    assert result.exit_code == 0


# ================================================================== unreadable inputs

def _refuse_opening(monkeypatch, name: str) -> None:
    """As a file without read permission behaves for a user who is not root (chmod does not
    stop root): opening it raises PermissionError."""
    def fake_open(file, *args, **kwargs):
        if Path(str(file)).name == name:
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(reader, "open", fake_open, raising=False)


def test_an_unreadable_file_is_one_finding_and_the_others_are_scored(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    _refuse_opening(monkeypatch, "dept_targets.xlsx")
    result = run_batch(inbox, PERIOD, tmp_path / "out", POLICY, jobs=1)
    f = only(result.findings, "unreadable")
    assert f.file == "dept_targets.xlsx" and "permission denied" in f.message_en and "权限" in f.message_zh
    assert sorted(result.scores.totals["employee_id"]) == ["R001", "R002", "S001", "S002", "S003"]
    entry = next(i for i in manifest_of(result.period_dir)["inputs"] if i["file"] == "dept_targets.xlsx")
    assert entry["sha256"] is None and entry["size"] is None  # never re-read by the manifest


def test_a_refused_ratings_file_is_one_finding_for_everyone_it_costs(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    (inbox / "ratings.xlsx").rename(inbox / "行为评分.xlsx")
    _refuse_opening(monkeypatch, "行为评分.xlsx")
    result = run_batch(inbox, PERIOD, tmp_path / "out", POLICY, jobs=1)
    assert "missing_rating" not in rules(result.findings)
    f = only(result.findings, "refused_unscored")
    assert f.is_error and f.file == "行为评分.xlsx" and f.period == PERIOD
    assert f.message_en.startswith("5 employees cannot be scored for 2026-10 because 行为评分.xlsx was refused")
    assert "(permission denied (Permission denied))" in f.message_en  # the reason, without the advice
    assert "A01" in f.message_en and "B01" in f.message_en and "owner" not in f.message_en
    assert "5 名员工" in f.message_zh and "行为评分.xlsx" in f.message_zh
    unscored = result.scores.unscored.set_index("employee_id")
    assert sorted(unscored.index) == ["R001", "R002", "R003", "S001", "S002", "S003"]
    assert all("行为评分.xlsx" in reason for reason in unscored.drop(index="R003")["reason_en"])
    code, output = run_cli("run", inbox, "--period", PERIOD, "--out", tmp_path / "out2", "--lang", "en")
    assert code == 1 and output.count("[refused_unscored]") == 1 and "has no rating" not in output


def test_a_refused_file_of_unknown_kind_still_names_itself_for_what_is_missing(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    (inbox / "actuals_研发部.xlsx").rename(inbox / "data.xlsx")
    _refuse_opening(monkeypatch, "data.xlsx")
    inputs = validate(read_inbox(inbox), POLICY, PERIOD)
    f = only(inputs.findings, "refused_unscored")
    assert "data.xlsx" in f.message_en and "2 employees" in f.message_en and "R01" in f.message_en
    assert "missing_actual" not in rules(inputs.findings)


def test_without_a_refused_file_missing_ratings_are_still_named_per_employee(tmp_path):
    inbox = small_company(tmp_path / "inbox")
    (inbox / "ratings.xlsx").unlink()
    inputs = validate(read_inbox(inbox), POLICY, PERIOD)
    assert "refused_unscored" not in rules(inputs.findings)
    assert rules(inputs.findings).count("missing_rating") >= 5


def test_an_unreadable_subfolder_is_named_and_the_rest_is_scored(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    (inbox / "研发部").mkdir()
    (inbox / "actuals_研发部.xlsx").rename(inbox / "研发部" / "actuals_研发部.xlsx")
    scandir = os.scandir

    def refusing_scandir(path="."):
        if Path(path).name == "研发部":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    result = run_batch(inbox, PERIOD, tmp_path / "out", POLICY, jobs=1)
    f = only(result.findings, "unreadable_folder")
    assert f.file == "研发部/" and "研发部/" in f.message_en and "permission denied" in f.message_en
    assert "None of its files were read" in f.message_en and "研发部/" in f.message_zh
    assert sorted(result.scores.totals["employee_id"]) == ["S001", "S002", "S003"]
    consequence = only(result.findings, "refused_unscored")
    assert "研发部/" in consequence.message_en and "2 employees" in consequence.message_en
    assert result.exit_code == 1


def test_the_manifest_never_re_reads_an_input(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "gone.xlsx").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    manifest = build_manifest(period=PERIOD, inputs=[
        {"path": str(inbox / "gone.xlsx"), "kind": None, "rows": 0, "size": None, "sha256": None},
        {"path": str(inbox / "vanished.xlsx"), "kind": None, "rows": 0},  # an old caller: hashed, or None
    ], policy_text="", outputs_dir=out, counts={}, warnings=[], package_version="0")
    assert [(i["size"], i["sha256"]) for i in manifest["inputs"]] == [(None, None), (None, None)]


@pytest.mark.parametrize(("name", "kind"), [("行为评分.xlsx", "ratings"), ("360评价_10月.xlsx", "ratings"),
                                            ("actuals_研发部.xlsx", "actuals"), ("花名册 - 副本.xlsx", "roster"),
                                            ("绩效协议.xlsx", "agreements"), ("data.xlsx", None)])
def test_a_file_name_says_what_kind_it_holds(name, kind):
    assert kind_from_name(name) == kind


# ================================================================== a genuine big company

def test_the_default_limits_admit_a_full_height_sheet_at_a_realistic_width():
    limits = Limits()
    assert load_policy().limits.max_cells == limits.max_cells  # the policy file and the code agree
    for columns in (6, 10):  # 932,785 × 6 was a real ratings export refused at 5,000,000 cells
        check_extent("行为评分 Ratings", SheetExtent(1_048_576, columns), limits)
        check_workbook_cells(1_048_576 * columns, limits)
    with pytest.raises(UnreadableInput, match="limits.max_cells"):
        check_extent("行为评分 Ratings", SheetExtent(1_048_576, 11), limits)
