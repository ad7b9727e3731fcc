"""Distribution: per-employee scorecards (encrypted), manager-scoped workbooks, verify --passwords."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from builders import seed_indicators, write_inbox, write_sheets
from click.testing import CliRunner
from company import PERIOD, small_company
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import distribution
from pipeline.audit import MANIFEST_PATH, load_manifest, manifest_bytes, sha256_file, verify
from pipeline.batch import run_batch
from pipeline.cli import main
from pipeline.distribution import (
    MASTER_ENV,
    PASSWORD_ALPHABET,
    DistributionError,
    decrypt_bytes,
    encrypt_bytes,
    load_passwords,
    manager_cycles,
    manager_pairs,
)
from pipeline.policy import PolicyError, load_policy, parse_policy

OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")
SMALL_IDS = {"S001", "S002", "S003", "R001", "R002", "R003"}
SCORED = {"S001", "S002", "S003", "R001", "R002"}  # R003 has left
MASTER = "master-Passw0rd"


@pytest.fixture(autouse=True)
def crash_reports(tmp_path, monkeypatch) -> Path:
    """Crash reports under the test's folder; no master password unless a test sets one."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(MASTER_ENV, raising=False)
    return tmp_path / "state" / "kpi"


def _password_csv(path: Path, passwords: dict[str, str]) -> Path:
    """The list HR keeps, typed as a CSV with the template's bilingual headers under a title."""
    lines = ["员工密码清单,", "员工编号 Employee ID,密码 Password"] + [f"{e},{p}" for e, p in passwords.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _package_text(data: bytes) -> str:
    """Every XML part of an .xlsx package, as one text."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())


def _ids_in(text: str, ids: set[str]) -> set[str]:
    return {e for e in ids if re.search(rf"(?<![A-Za-z0-9]){e}(?![0-9])", text)}


PASSWORDS = {e: f"pw-{e}-secret" for e in sorted(SMALL_IDS)}


# ------------------------------------------------------------------------------ per-employee, given passwords

@pytest.fixture(scope="module")
def given_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("given")
    inbox = small_company(tmp / "inbox")
    listed = _password_csv(tmp / "passwords.csv", PASSWORDS)
    result = run_batch(inbox, PERIOD, tmp / "out", load_policy(), jobs=2, passwords_file=listed)
    return tmp, result, listed


def test_each_employee_file_decrypts_to_that_employee_alone(given_run):
    _, result, _ = given_run
    files = sorted((result.period_dir / "employees").rglob("*.xlsx"))
    assert [f.relative_to(result.period_dir).as_posix() for f in files] == [
        "employees/研发部/R001.xlsx", "employees/研发部/R002.xlsx", "employees/销售部/S001.xlsx",
        "employees/销售部/S002.xlsx", "employees/销售部/S003.xlsx"]
    for path in files:
        employee = path.stem
        data = path.read_bytes()
        assert data[:8] == OLE2  # an encrypted OLE2 container, not a readable zip
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(data))
        plain = decrypt_bytes(data, PASSWORDS[employee])
        book = openpyxl.load_workbook(io.BytesIO(plain))
        assert len(book.sheetnames) == 1 and book.sheetnames[0].startswith(employee)
        sheet = book.worksheets[0]
        assert sheet.sheet_state == "visible" and sheet["C5"].value == employee  # 员工编号 in the header block
        assert _ids_in(_package_text(plain), SMALL_IDS) == {employee}
        cached = openpyxl.load_workbook(io.BytesIO(plain), data_only=True).worksheets[0]
        formulas = [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
        assert formulas and all(cached[c.coordinate].value is not None for c in formulas)  # live, with values
        with pytest.raises(DistributionError):
            decrypt_bytes(data, PASSWORDS[employee] + "x")
        other = next(e for e in SCORED if e != employee)
        with pytest.raises(DistributionError):
            decrypt_bytes(data, PASSWORDS[other])


def test_the_employee_sheet_is_the_department_workbooks_sheet(given_run):
    _, result, _ = given_run
    plain = decrypt_bytes((result.period_dir / "employees/销售部/S002.xlsx").read_bytes(), PASSWORDS["S002"])
    mine = openpyxl.load_workbook(io.BytesIO(plain)).worksheets[0]
    theirs = openpyxl.load_workbook(result.period_dir / "departments/销售部.xlsx")[mine.title]
    assert [[c.value for c in row] for row in mine.iter_rows()] == [[c.value for c in row] for row in theirs.iter_rows()]


def test_manifest_records_the_decrypted_content_and_verify_checks_it(given_run, tmp_path):
    tmp, result, listed = given_run
    manifest = load_manifest(result.period_dir)
    entries = {e["path"]: e for e in manifest["outputs"]}
    for path in (result.period_dir / "employees").rglob("*.xlsx"):
        entry = entries[path.relative_to(result.period_dir).as_posix()]
        plain = decrypt_bytes(path.read_bytes(), PASSWORDS[path.stem])
        assert entry["plain_sha256"] == hashlib.sha256(plain).hexdigest() != entry["sha256"]
    assert "plain_sha256" not in entries["summary.xlsx"]
    passwords = load_passwords(listed)
    assert verify(result.period_dir, passwords=passwords).ok

    # Tamper: change a decrypted cell, encrypt again with the same password, re-hash the manifest.
    import shutil

    copy = tmp_path / PERIOD
    shutil.copytree(result.period_dir, copy)
    target = copy / "employees/销售部/S002.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(decrypt_bytes(target.read_bytes(), PASSWORDS["S002"])))
    book.worksheets[0]["J11"] = 999
    buffer = io.BytesIO()
    book.save(buffer)
    target.write_bytes(encrypt_bytes(buffer.getvalue(), PASSWORDS["S002"]))
    manifest = load_manifest(copy)
    for entry in manifest["outputs"]:
        if entry["path"] == "employees/销售部/S002.xlsx":
            entry["sha256"], entry["size"] = sha256_file(target), target.stat().st_size
    (copy / MANIFEST_PATH).write_bytes(manifest_bytes(manifest))
    assert verify(copy).ok  # the outer hashes alone were re-done by the tamperer
    report = verify(copy, passwords=passwords)
    assert not report.ok and report.content_changed == ["employees/销售部/S002.xlsx"]
    cli = CliRunner().invoke(main, ["verify", str(copy), "--passwords", str(listed), "--lang", "en"])
    assert cli.exit_code == 1 and "decrypted content changed: employees/销售部/S002.xlsx" in cli.output

    wrong = _password_csv(tmp_path / "wrong.csv", {**PASSWORDS, "S001": "not-the-password"})
    report = verify(result.period_dir, passwords=load_passwords(wrong))
    assert not report.ok and report.undecryptable == ["employees/销售部/S001.xlsx"]


def test_a_password_list_missing_an_employee_or_too_short_is_refused_before_writing(tmp_path):
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"
    missing = _password_csv(tmp_path / "missing.csv", {e: p for e, p in PASSWORDS.items() if e != "R002"})
    with pytest.raises(DistributionError) as caught:
        run_batch(inbox, PERIOD, out, load_policy(), jobs=1, passwords_file=missing)
    assert "R002" in caught.value.zh and "R002" in caught.value.en and "missing.csv" in caught.value.en
    assert not (out / PERIOD).exists()
    short = _password_csv(tmp_path / "short.csv", {**PASSWORDS, "S003": "1234567"})
    result = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(out),
                                       "--passwords", str(short)])
    assert result.exit_code == 2
    assert "short.csv!B8" in result.output and "S003" in result.output and "8" in result.output
    assert "1234567" not in result.output and "Traceback" not in result.output
    assert not (out / PERIOD).exists()


def test_an_xlsx_password_list_is_read_like_any_template(tmp_path):
    path = write_sheets(tmp_path / "pw.xlsx", {"密码": [["工号", "文件密码"], ["  S001 ", "abcdefgh"],
                                                         [1001, 12345678]]},
                        title_rows={"密码": [["2026年10月"]]})
    assert load_passwords(path) == {"S001": "abcdefgh", "1001": "12345678"}
    write_sheets(tmp_path / "none.xlsx", {"Sheet": [["员工编号", "备注"], ["S001", "x"]]})
    with pytest.raises(DistributionError) as caught:
        load_passwords(tmp_path / "none.xlsx")
    assert "Password" in caught.value.en and "密码" in caught.value.zh


# ------------------------------------------------------------------------------ generated passwords

def test_generated_passwords_are_listed_only_in_the_encrypted_list(tmp_path, monkeypatch, crash_reports):
    monkeypatch.setenv(MASTER_ENV, MASTER)
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(out),
                                       "--generate-passwords", "--json"])
    assert result.exit_code == 0, result.output
    period_dir = out / PERIOD
    listed = period_dir / "employees" / "passwords.xlsx"
    assert listed.read_bytes()[:8] == OLE2
    with pytest.raises(DistributionError):
        decrypt_bytes(listed.read_bytes(), "wrong-master")
    passwords = load_passwords(listed)  # decrypted with the master password from the environment
    assert set(passwords) == SCORED
    for employee, password in passwords.items():
        assert len(password) >= 12 and set(password) <= set(PASSWORD_ALPHABET)
        path = next(period_dir.glob(f"employees/*/{employee}.xlsx"))
        assert openpyxl.load_workbook(io.BytesIO(decrypt_bytes(path.read_bytes(), password))).sheetnames[0].startswith(employee)
    assert len(set(passwords.values())) == len(passwords)
    # Nowhere else: not on screen, not in the manifest, not in any readable output.
    shown = result.output + result.stderr
    readable = [p for p in period_dir.rglob("*") if p.is_file() and p.read_bytes()[:8] != OLE2]
    texts = [shown] + [_package_text(p.read_bytes()) if p.suffix == ".xlsx" else p.read_text("utf-8")
                       for p in readable]
    assert any(p.name == "manifest.json" for p in readable)
    for password in passwords.values():
        assert not any(password in text for text in texts)
    assert json.loads(result.output)["exit_code"] == 0
    assert verify(period_dir, passwords=passwords).ok
    cli = CliRunner().invoke(main, ["verify", str(period_dir), "--passwords", str(listed), "--lang", "en"])
    assert cli.exit_code == 0 and f"{len(SCORED) + 1} encrypted files were decrypted" in cli.output


def test_a_crash_after_generating_passwords_reports_none_of_them(tmp_path, monkeypatch, crash_reports):
    monkeypatch.setenv(MASTER_ENV, MASTER)
    made = []
    original = distribution.generate_password

    def recorded(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    def broken(path, rows, master, lang):
        raise RuntimeError("the list could not be written")

    monkeypatch.setattr(distribution, "generate_password", recorded)
    monkeypatch.setattr(distribution, "write_password_list", broken)
    inbox = small_company(tmp_path / "inbox")
    result = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(tmp_path / "out"),
                                       "--generate-passwords", "--jobs", "1"])
    assert result.exit_code == 3
    report = next(crash_reports.glob("crash-*.txt")).read_text("utf-8")
    assert "RuntimeError: the list could not be written" in report
    assert len(made) == len(SCORED)
    for password in made + [MASTER]:
        assert password not in report and password not in result.output + result.stderr
    assert not (tmp_path / "out" / PERIOD).exists()


def test_generating_without_a_master_password_is_refused_before_any_work(tmp_path, monkeypatch):
    read = []
    monkeypatch.setattr("pipeline.batch.read_inbox", lambda *a, **k: read.append(1) or [])
    inbox = small_company(tmp_path / "inbox")
    result = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(tmp_path / "out"),
                                       "--generate-passwords"])
    assert result.exit_code == 2 and not read and not (tmp_path / "out").exists()
    assert MASTER_ENV in result.output and "未设置环境变量" in result.output and "is not set" in result.output
    monkeypatch.setenv(MASTER_ENV, "short")
    result = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(tmp_path / "out"),
                                       "--generate-passwords", "--lang", "en"])
    assert result.exit_code == 2 and "too short" in result.output and "short" not in result.output.split("too")[0]
    both = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(tmp_path / "out"),
                                     "--generate-passwords", "--passwords", str(_password_csv(tmp_path / "p.csv",
                                                                                              PASSWORDS))])
    assert both.exit_code == 2 and not read


def test_per_employee_without_passwords_is_plain_and_byte_identical_on_rerun(tmp_path):
    inbox = small_company(tmp_path / "inbox")
    policy = parse_policy("output: {per_employee: true}\n")
    one = run_batch(inbox, PERIOD, tmp_path / "one", policy, jobs=1)
    two = run_batch(inbox, PERIOD, tmp_path / "two", policy, jobs=2)
    files = sorted(p.relative_to(one.period_dir).as_posix() for p in (one.period_dir / "employees").rglob("*.xlsx"))
    assert len(files) == len(SCORED)
    for rel in files:
        assert (one.period_dir / rel).read_bytes() == (two.period_dir / rel).read_bytes()
        assert openpyxl.load_workbook(one.period_dir / rel).sheetnames[0].startswith(Path(rel).stem)
    assert not any("plain_sha256" in e for e in load_manifest(one.period_dir)["outputs"])


@pytest.mark.parametrize("text, key", [("output: {per_employee: yes please}\n", "output.per_employee"),
                                       ("output: {split_by: team}\n", "output.split_by")])
def test_distribution_policy_keys_are_checked(text, key):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.key == key and caught.value.zh and caught.value.en


# ------------------------------------------------------------------------------ manager subtrees

def _reference(managers: dict[str, str | None]) -> tuple[set[tuple[str, str]], set[str]]:
    """(manager, employee) pairs and people on a cycle, by walking each chain with a visited set."""
    pairs, looped = set(), set()
    for employee in managers:
        seen, current = set(), managers[employee]
        while current is not None and current in managers and current not in seen:
            seen.add(current)
            current = managers[current]
        if employee in seen:
            looped.add(employee)
        pairs |= {(m, employee) for m in seen if m != employee}
    return pairs, looped


@st.composite
def org_charts(draw):
    n = draw(st.integers(1, 25))
    ids = [f"E{i:02d}" for i in range(n)]
    managers = {}
    for i, e in enumerate(ids):
        # Mostly a tree (a manager listed earlier), sometimes anyone (loops, oneself) or unknown.
        kind = draw(st.sampled_from(["top", "tree", "tree", "tree", "any", "unknown"]))
        if kind == "tree" and i:
            managers[e] = ids[draw(st.integers(0, i - 1))]
        elif kind == "any":
            managers[e] = ids[draw(st.integers(0, n - 1))]
        elif kind == "unknown":
            managers[e] = "X99"
        else:
            managers[e] = None
    return managers


@given(org_charts())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_subtrees_are_exactly_everyone_under_each_manager(managers):
    roster = pd.DataFrame({"employee_id": list(managers), "manager_id": list(managers.values())}, dtype=object)
    pairs, cycles = manager_pairs(roster)
    expected, looped = _reference(managers)
    found = set(zip(pairs["manager_id"], pairs["employee_id"]))
    assert found == expected
    assert all(m != e for m, e in found)  # nobody is in their own workbook
    assert {e for cycle in cycles for e in cycle} == looped
    assert sorted(map(tuple, cycles)) == sorted(map(tuple, manager_cycles(roster)))
    for cycle in cycles:  # each cycle follows the manager column back to its start
        assert [managers[e] for e in cycle] == cycle[1:] + cycle[:1]


def test_a_long_chain_and_a_big_loop_end(tmp_path):
    n = 3000
    chain = pd.DataFrame({"employee_id": [f"E{i}" for i in range(n)],
                          "manager_id": [None] + [f"E{i - 1}" for i in range(1, n)]}, dtype=object)
    assert manager_cycles(chain) == []
    loop = chain.assign(manager_id=[f"E{n - 1}"] + list(chain["manager_id"][1:]))
    cycles = manager_cycles(loop)
    assert len(cycles) == 1 and len(cycles[0]) == n


ORG = [  # (id, name, department, manager)
    ("C01", "总经理", "总经办", None),
    ("S001", "王芳", "销售部", "C01"), ("S002", "李强", "销售部", "S001"), ("S003", "赵敏", "销售部", "S002"),
    ("S004", "孙丽", "销售部", "S002"), ("S005", "周雨", "销售部", "S001"),
    ("R001", "陈刚", "研发部", "C01"), ("R002", "周杰", "研发部", "R001"),
]


def _org_inbox(folder: Path, org=ORG) -> Path:
    roster = [{"employee_id": e, "name": n, "department": d, "position": "岗位", "role_family": "销售",
               "manager_id": m} for e, n, d, m in org]
    role = [{"role_family": "销售", "period": PERIOD, "indicator_id": k, "weight": w, "target": t}
            for k, w, t in (("K1", 60, 200), ("K2", 30, 15), ("K3", 10, "2%"))]
    actuals = []
    for i, (e, *_rest) in enumerate(org):
        actuals += [{"employee_id": e, "period": PERIOD, "indicator_id": "K1", "actual": 150 + 10 * i},
                    {"employee_id": e, "period": PERIOD, "indicator_id": "K2", "actual": 12},
                    {"employee_id": e, "period": PERIOD, "indicator_id": "K3", "actual": "1.5%"}]
    return write_inbox(folder, roster=roster, indicators=seed_indicators(), role_kpis=role, actuals=actuals)


def _people_in(path: Path, ids: set[str]) -> tuple[set[str], set[str]]:
    """(IDs with a scorecard sheet, IDs anywhere in the workbook's XML)."""
    sheets = {name.split(" ")[0] for name in openpyxl.load_workbook(path).sheetnames if name != "汇总 Summary"}
    return sheets, _ids_in(_package_text(path.read_bytes()), ids)


def test_manager_workbooks_hold_exactly_each_managers_subtree(tmp_path):
    inbox = _org_inbox(tmp_path / "inbox")
    result = run_batch(inbox, PERIOD, tmp_path / "out", parse_policy("output: {split_by: manager}\n"), jobs=2)
    ids = {e for e, *_ in ORG}
    managers = {e: m for e, _, _, m in ORG}
    expected, _ = _reference(managers)
    books = sorted(p.relative_to(result.period_dir).as_posix() for p in (result.period_dir / "managers").rglob("*.xlsx"))
    assert books == ["managers/C01_总经理.xlsx", "managers/R001_陈刚.xlsx", "managers/S001_王芳.xlsx",
                     "managers/S002_李强.xlsx"]
    assert not (result.period_dir / "departments").exists()
    for rel in books:
        manager = Path(rel).stem.split("_")[0]
        subtree = {e for m, e in expected if m == manager}
        sheets, mentioned = _people_in(result.period_dir / rel, ids)
        assert sheets == subtree
        assert mentioned == subtree | {manager}  # the manager is named (title, file), never scored here
    # The department head's own scorecard is with their manager, never in their own workbook.
    assert "S001" in _people_in(result.period_dir / "managers/C01_总经理.xlsx", ids)[0]
    summary = openpyxl.load_workbook(result.period_dir / "managers/S002_李强.xlsx", data_only=True)["汇总 Summary"]
    ranks = {summary.cell(r, 2).value: summary.cell(r, 1).value for r in range(5, 7)}
    assert sorted(ranks) == ["S003", "S004"] and sorted(ranks.values()) == [1, 2]  # ranked within the workbook


def test_a_big_managers_workbook_is_a_summary_with_direct_reports_beside_it(tmp_path):
    inbox = _org_inbox(tmp_path / "inbox")
    result = run_batch(inbox, PERIOD, tmp_path / "out",
                       parse_policy("output: {split_by: manager, max_sheets: 3}\n"), jobs=1)
    ids = {e for e, *_ in ORG}
    top = openpyxl.load_workbook(result.period_dir / "managers/C01_总经理.xlsx")
    assert top.sheetnames == ["汇总 Summary"]
    listed = {top.active.cell(r, 2).value for r in range(5, 5 + 7)}
    assert listed == ids - {"C01"}
    assert _people_in(result.period_dir / "managers/C01_总经理/C01_总经理.xlsx", ids)[0] == {"S001", "R001"}
    assert _people_in(result.period_dir / "managers/S001_王芳/S001_王芳.xlsx", ids)[0] == {"S002", "S005"}


def test_a_head_who_is_their_own_manager_is_not_filed_under_themselves(tmp_path):
    org = [("S001", "王芳", "销售部", "S001")] + [row for row in ORG if row[2] == "销售部" and row[0] != "S001"]
    inbox = _org_inbox(tmp_path / "inbox", org)
    result = run_batch(inbox, PERIOD, tmp_path / "out", parse_policy("output: {max_sheets: 2}\n"), jobs=1)
    cycle = [f for f in result.warnings if f.rule == "manager_cycle"]
    assert len(cycle) == 1 and "S001 → S001" in cycle[0].message_en and cycle[0].cell == "F2"
    teams = result.period_dir / "departments" / "销售部"
    placed = {p.name: _people_in(p, {e for e, *_ in org})[0] for p in teams.glob("*.xlsx")}
    assert placed == {"未指定上级 no manager.xlsx": {"S001"}, "S001 王芳.xlsx": {"S002", "S005"},
                      "S002 李强.xlsx": {"S003", "S004"}}
    managed = run_batch(inbox, PERIOD, tmp_path / "out2", parse_policy("output: {split_by: manager}\n"), jobs=1)
    assert {p.name for p in (managed.period_dir / "managers").glob("*.xlsx")} == {"S001_王芳.xlsx", "S002_李强.xlsx"}
    assert _people_in(managed.period_dir / "managers/S001_王芳.xlsx", {e for e, *_ in org})[0] == {
        "S002", "S003", "S004", "S005"}


def test_a_loop_between_two_people_ends_and_is_reported(tmp_path):
    org = [("A01", "甲", "销售部", "B01"), ("B01", "乙", "销售部", "A01"), ("C01", "丙", "销售部", "A01")]
    inbox = _org_inbox(tmp_path / "inbox", org)
    result = run_batch(inbox, PERIOD, tmp_path / "out", parse_policy("output: {split_by: manager}\n"), jobs=1)
    cycle = [f for f in result.warnings if f.rule == "manager_cycle"]
    assert len(cycle) == 1 and "A01 → B01 → A01" in cycle[0].message_en and "循环" in cycle[0].message_zh
    ids = {e for e, *_ in org}
    assert _people_in(result.period_dir / "managers/A01_甲.xlsx", ids)[0] == {"B01", "C01"}
    assert _people_in(result.period_dir / "managers/B01_乙.xlsx", ids)[0] == {"A01", "C01"}

