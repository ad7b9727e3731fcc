"""Signed manifests and protected scorecards: every tampering is caught and named; slips are stopped.

A hash in the manifest proves nothing once the manifest itself can be rewritten: these tests
make each forgery an auditor worries about (a bonus changed and re-hashed, a count edited, a
file deleted with its entry, a manifest re-signed with another key, a signature removed, the
run record edited) and require `verify` with the public key to fail on it, naming the file
and the reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from company import PERIOD, small_company

from pipeline.audit import (
    MANIFEST_PATH,
    MANIFEST_SIG,
    RUN_RECORD,
    RUN_SIG,
    manifest_bytes,
    seal,
    verify,
    write_manifest,
)
from pipeline.batch import BatchError, run_batch
from pipeline.cli import main, verify_command
from pipeline.policy import load_policy, parse_policy
from pipeline.runs import person_files
from pipeline.signing import (
    SigningError,
    fingerprint,
    load_private_key,
    load_public_key,
    new_keys,
    signature_matches,
    signature_text,
)

# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """HR's key pair and a stranger's."""
    root = tmp_path_factory.mktemp("keys")
    return new_keys(root / "hr"), new_keys(root / "stranger")


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory, keys):
    """A period signed through the command line, as HR runs it."""
    (private, _), _ = keys
    root = tmp_path_factory.mktemp("signed")
    inbox = small_company(root / "inbox")
    result = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(root / "out"),
                                       "--jobs", "1", "--sign-key", str(private), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "audit/manifest.sig" in result.output
    return root, inbox, root / "out" / PERIOD


@pytest.fixture
def period(signed_run, tmp_path):
    """A copy of the signed period folder to tamper with."""
    copy = tmp_path / PERIOD
    shutil.copytree(signed_run[2], copy)
    return copy


def public(keys) -> Path:
    return keys[0][1]


def load(period_dir: Path) -> dict:
    return json.loads((period_dir / MANIFEST_PATH).read_text("utf-8"))


def rewrite(period_dir: Path, manifest: dict) -> None:
    """Save an edited manifest exactly as kpi writes one (a careful forger)."""
    write_manifest(period_dir, manifest)


def rehash(period_dir: Path, rel: str) -> None:
    """Put a changed file's new size and hash into the manifest."""
    manifest = load(period_dir)
    entry = next(e for e in manifest["outputs"] if e["path"] == rel)
    data = (period_dir / rel).read_bytes()
    entry["size"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    rewrite(period_dir, manifest)


def invoke_verify(*args) -> object:
    return CliRunner().invoke(verify_command, [str(a) for a in args])


def change_a_bonus(period_dir: Path) -> str:
    """Raise S002's bonus coefficient on their scorecard, as someone with Excel would."""
    rel = "departments/销售部.xlsx"
    book = openpyxl.load_workbook(period_dir / rel)
    sheet = book["S002 李强"]
    bonus = next(cell for row in sheet.iter_rows() for cell in row
                 if isinstance(cell.value, str) and cell.value.startswith("=INDEX("))
    bonus.value = 1.5
    book.save(period_dir / rel)
    return rel


def problems(report) -> list[tuple[str, str]]:
    return [(p["file"], p["reason"]) for p in report.signature_problems]


# ------------------------------------------------------------------------------ keys


def test_keys_new_writes_a_private_key_for_its_owner_alone_and_a_public_key(tmp_path):
    private, public_key = new_keys(tmp_path / "keys")
    assert (private.name, public_key.name) == ("kpi.key", "kpi.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_key.stat().st_mode) & 0o044 == 0o044  # others may read it
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, not encrypted
    assert public_key.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    key = load_private_key(private)
    assert fingerprint(key) == fingerprint(load_public_key(public_key))
    data = b"exact bytes"
    assert signature_matches(load_public_key(public_key), data, signature_text(key, data))
    assert not signature_matches(load_public_key(public_key), data + b" ", signature_text(key, data))
    assert not signature_matches(load_public_key(public_key), data, b"not base64 at all!")


def test_keys_new_refuses_to_overwrite_either_key(tmp_path):
    private, public_key = new_keys(tmp_path)
    before = (private.read_bytes(), public_key.read_bytes())
    with pytest.raises(SigningError) as caught:
        new_keys(tmp_path)
    assert "never overwritten" in caught.value.en and "不会覆盖" in caught.value.zh
    assert (private.read_bytes(), public_key.read_bytes()) == before
    # a public key alone in the folder also stops it, and no private key is left behind
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "kpi.pub").write_bytes(b"someone's key")
    with pytest.raises(SigningError):
        new_keys(lone)
    assert not (lone / "kpi.key").exists()


def test_keys_new_command(tmp_path):
    result = CliRunner().invoke(main, ["keys", "new", str(tmp_path / "k"), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "kpi.key" in result.output and "kpi.pub" in result.output and "SHA256:" in result.output
    again = CliRunner().invoke(main, ["keys", "new", str(tmp_path / "k")])
    assert again.exit_code == 2
    assert "不会覆盖" in again.output and "never overwritten" in again.output


def test_a_key_of_the_wrong_kind_is_named_not_a_traceback(tmp_path, keys):
    (private, public_key), _ = keys
    with pytest.raises(SigningError, match="is a public key"):
        load_private_key(public_key)
    with pytest.raises(SigningError, match="is a private key"):
        load_public_key(private)
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(SigningError, match="not a PEM private key"):
        load_private_key(tmp_path / "junk.pem")
    with pytest.raises(SigningError, match="No public key file"):
        load_public_key(tmp_path / "nowhere.pub")
    # the run stops before any work, as a usage problem
    with pytest.raises(BatchError, match="is a public key"):
        run_batch(tmp_path, PERIOD, tmp_path / "out", load_policy(), sign_key=public_key)
    assert not (tmp_path / "out").exists()
    result = invoke_verify(tmp_path, "--public-key", private)
    assert result.exit_code == 2 and "private key" in result.output


# ------------------------------------------------------------------------------ a signed run


def test_a_signed_run_verifies_with_its_public_key(signed_run, keys):
    _, _, period_dir = signed_run
    report = verify(period_dir, public_key=public(keys))
    assert report.ok and report.authenticated is True and report.signature_problems == []
    assert report.public_key == fingerprint(load_public_key(public(keys)))
    result = invoke_verify(period_dir, "--public-key", public(keys), "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "signed by the public key SHA256:" in result.output


def test_without_a_public_key_verify_says_authenticity_was_not_checked(signed_run):
    _, _, period_dir = signed_run
    report = verify(period_dir)
    assert report.ok and report.authenticated is None and report.signed
    result = invoke_verify(period_dir, "--lang", "en")
    assert result.exit_code == 0
    assert "authenticity was not checked" in result.output


def test_the_run_record_and_signatures_are_beside_the_manifest_not_in_it(signed_run, keys):
    _, _, period_dir = signed_run
    manifest = load(period_dir)
    listed = {entry["path"] for entry in manifest["outputs"]}
    assert not listed & {MANIFEST_PATH, MANIFEST_SIG, RUN_RECORD, RUN_SIG}
    assert manifest["counts"]["output_files"] == len(manifest["outputs"])
    record = json.loads((period_dir / RUN_RECORD).read_text("utf-8"))
    assert set(record) >= {"started_utc", "finished_utc", "operator", "host", "kpi_version", "command_line",
                           "manifest_sha256", "signed_by"}
    assert record["manifest_sha256"] == hashlib.sha256((period_dir / MANIFEST_PATH).read_bytes()).hexdigest()
    assert record["signed_by"] == fingerprint(load_public_key(public(keys)))
    assert record["command_line"] == sys.argv  # the process's command line (here pytest's)
    assert record["started_utc"].endswith("Z") and record["started_utc"] <= record["finished_utc"]


def test_the_manifest_holds_the_effective_policy(signed_run, tmp_path):
    _, _, period_dir = signed_run
    effective = load(period_dir)["policy"]["effective"]
    assert effective == load_policy().settings
    assert effective["output"]["protect_sheets"] is True
    assert [g["grade"] for g in effective["grades"]] == ["S", "A", "B", "C", "D"]
    # an override file changes only its key; the rest of what was in force is there too
    settings = parse_policy("achievement: {cap: 1.5}\n").settings
    assert settings["achievement"] == {"cap": 1.5, "floor": 0.0, "lower_is_better": "ratio"}
    assert settings["tiered"] == load_policy().settings["tiered"]
    json.dumps(settings, sort_keys=True)  # plain JSON values


# ------------------------------------------------------------------------------ tampering


def test_a_changed_bonus_rehashed_in_the_manifest_is_caught_only_by_the_signature(period, keys):
    rel = change_a_bonus(period)
    assert verify(period).changed == [rel]  # caught by the hash as long as the manifest is not touched
    rehash(period, rel)
    unsigned_view = verify(period)
    assert unsigned_view.ok and unsigned_view.authenticated is None  # the gap a signature closes
    report = verify(period, public_key=public(keys))
    assert not report.ok and report.authenticated is False
    assert problems(report) == [(MANIFEST_SIG, "mismatch"), (RUN_RECORD, "other_manifest")]
    result = invoke_verify(period, "--public-key", public(keys), "--lang", "en")
    assert result.exit_code == 1
    assert "audit/manifest.sig" in result.output and "does not match the public key" in result.output


def test_an_edited_count_is_caught(period, keys):
    manifest = load(period)
    manifest["counts"]["scored"] += 1
    manifest["counts"]["grades"]["A"] = manifest["counts"]["grades"].get("A", 0) + 1  # kept consistent
    rewrite(period, manifest)
    assert verify(period).ok  # consistent in itself: only the signature can tell
    report = verify(period, public_key=public(keys))
    assert not report.ok and (MANIFEST_SIG, "mismatch") in problems(report)


def test_counts_that_contradict_the_manifest_fail_even_without_a_key(period):
    manifest = load(period)
    manifest["counts"]["output_files"] += 1
    manifest["counts"]["scored"] += 1
    rewrite(period, manifest)
    report = verify(period)
    assert not report.ok
    assert [p["check"] for p in report.inconsistent] == ["output_files", "scored"]
    result = invoke_verify(period, "--lang", "en")
    assert result.exit_code == 1 and "counts" in result.output and "lists" in result.output


def test_a_deleted_file_with_its_manifest_entry_is_caught(period, keys):
    manifest = load(period)
    manifest["outputs"] = [e for e in manifest["outputs"] if e["path"] != "summary.xlsx"]
    (period / "summary.xlsx").unlink()
    rewrite(period, manifest)
    without_key = verify(period)  # today's "Verified: all N" no longer: the count says one is gone
    assert not without_key.ok and [p["check"] for p in without_key.inconsistent] == ["output_files"]
    manifest["counts"]["output_files"] -= 1  # a forger who also fixes the count
    rewrite(period, manifest)
    assert verify(period).ok
    report = verify(period, public_key=public(keys))
    assert not report.ok and (MANIFEST_SIG, "mismatch") in problems(report)


def test_a_manifest_re_signed_with_another_key_is_caught(period, keys):
    _, (stranger, stranger_public) = keys
    rel = change_a_bonus(period)
    rehash(period, rel)
    record = json.loads((period / RUN_RECORD).read_text("utf-8"))
    seal(period, period=PERIOD, started_utc=record["started_utc"], package_version=record["kpi_version"],
         key=load_private_key(stranger))
    assert verify(period, public_key=stranger_public).ok  # a complete forgery under the forger's own key
    report = verify(period, public_key=public(keys))
    assert not report.ok
    assert problems(report) == [(MANIFEST_SIG, "mismatch"), (RUN_SIG, "mismatch")]


@pytest.mark.parametrize("removed", [MANIFEST_SIG, RUN_SIG, RUN_RECORD])
def test_a_missing_signature_or_run_record_is_caught(period, keys, removed):
    (period / removed).unlink()
    assert verify(period).ok  # these are not outputs: without the key nothing is claimed about them
    report = verify(period, public_key=public(keys))
    assert not report.ok and problems(report) == [(removed, "missing")]
    result = invoke_verify(period, "--public-key", public(keys), "--lang", "en")
    assert result.exit_code == 1 and removed in result.output and "missing" in result.output


def test_an_unsigned_run_fails_with_a_public_key(tmp_path, signed_run, keys):
    _, inbox, _ = signed_run
    result = run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), jobs=1)
    assert not (result.period_dir / MANIFEST_SIG).exists() and (result.period_dir / RUN_RECORD).exists()
    assert verify(result.period_dir).ok
    report = verify(result.period_dir, public_key=public(keys))
    assert not report.ok and problems(report) == [(MANIFEST_SIG, "missing"), (RUN_SIG, "missing")]


def test_run_record_tampering_is_caught(period, keys, tmp_path):
    record = json.loads((period / RUN_RECORD).read_text("utf-8"))
    record["operator"] = "someone-else"
    (period / RUN_RECORD).write_bytes(manifest_bytes(record))
    report = verify(period, public_key=public(keys))
    assert not report.ok and problems(report) == [(RUN_SIG, "mismatch")]
    # a genuine run record of another manifest, signed with the right key, does not fit either
    other = tmp_path / "other"
    write_manifest(other, {"period": PERIOD, "outputs": []})
    seal(other, period=PERIOD, started_utc=record["started_utc"], package_version="0.1.0",
         key=load_private_key(keys[0][0]))
    for rel in (RUN_RECORD, RUN_SIG):
        shutil.copy(other / rel, period / rel)
    report = verify(period, public_key=public(keys))
    assert problems(report) == [(RUN_RECORD, "other_manifest")]


# ------------------------------------------------------------------------------ reruns


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_signed_rerun_is_byte_identical_apart_from_the_run_record(signed_run, keys, tmp_path):
    root, inbox, period_dir = signed_run
    (private, _), _ = keys
    again = run_batch(inbox, PERIOD, tmp_path / "out", load_policy(), jobs=1, sign_key=private, lang="en")
    first, second = _hashes(period_dir), _hashes(again.period_dir)
    for rel in (RUN_RECORD, RUN_SIG):  # when and by whom: varies, outside the identical set
        first.pop(rel), second.pop(rel)
    assert first == second  # outputs, manifest and its signature (Ed25519 is deterministic)
    assert verify(again.period_dir, public_key=public(keys)).ok


def test_a_rerun_into_the_same_folder_keeps_or_archives_by_outputs_and_signature(tmp_path, signed_run, keys):
    _, inbox, _ = signed_run
    (private, _), (stranger, _) = keys
    out = tmp_path / "out"
    run_batch(inbox, PERIOD, out, load_policy(), jobs=1, sign_key=private)
    same = run_batch(inbox, PERIOD, out, load_policy(), jobs=1, sign_key=private)
    assert same.housekeeping.unchanged  # the run record alone differs: nothing archived
    other_key = run_batch(inbox, PERIOD, out, load_policy(), jobs=1, sign_key=stranger)
    assert not other_key.housekeeping.unchanged and other_key.housekeeping.archived is not None
    # the archived run's record and signatures are kpi's own: it stays prunable
    assert person_files(other_key.housekeeping.archived) == []


# ------------------------------------------------------------------------------ sheet protection


def _cell(sheet, predicate):
    return next(cell for row in sheet.iter_rows() for cell in row if predicate(cell.value))


def test_scorecard_sheets_are_protected_with_the_review_section_open(signed_run):
    _, _, period_dir = signed_run
    book = openpyxl.load_workbook(period_dir / "departments" / "销售部.xlsx")
    summary = book["汇总 Summary"]
    assert summary.protection.sheet and summary.protection.autoFilter is False  # False: filtering allowed
    sheet = book["S002 李强"]
    protection = sheet.protection
    assert protection.sheet is True and not protection.password
    # allowed while protected (openpyxl: False means "not prevented")
    assert protection.formatColumns is False and protection.formatRows is False
    assert protection.selectLockedCells is False and protection.selectUnlockedCells is False
    total = _cell(sheet, lambda v: isinstance(v, str) and v.startswith(("=SUM(L", "=ROUND(SUM(L")))
    assert total.protection.locked is True
    actual = sheet.cell(row=11, column=10)  # the first indicator's actual (the table's first row)
    assert isinstance(actual.value, (int, float)) and actual.protection.locked is True
    notes = _cell(sheet, lambda v: isinstance(v, str) and v.startswith(("绩效面谈记录", "Review meeting notes")))
    assert notes.protection.locked is True  # the label
    assert sheet.cell(row=notes.row + 1, column=notes.column).protection.locked is False  # the notes box
    for label in ("Employee signature", "Manager signature"):  # the run is in English
        signature = _cell(sheet, lambda v, label=label: isinstance(v, str) and v.startswith(label))
        assert sheet.cell(row=signature.row, column=signature.column + 3).protection.locked is False
        date = sheet.cell(row=signature.row + 1, column=signature.column)
        assert date.value.startswith("Date")
        assert sheet.cell(row=date.row, column=date.column + 3).protection.locked is False


def test_protection_follows_the_policy(tmp_path, signed_run):
    _, inbox, _ = signed_run
    off = run_batch(inbox, PERIOD, tmp_path / "off", parse_policy("output: {protect_sheets: false}\n"), jobs=1)
    sheet = openpyxl.load_workbook(off.period_dir / "departments" / "销售部.xlsx")["S002 李强"]
    assert not sheet.protection.sheet
    locked = run_batch(inbox, PERIOD, tmp_path / "pw", parse_policy("output: {protect_password: hr2026}\n"), jobs=1)
    sheet = openpyxl.load_workbook(locked.period_dir / "departments" / "销售部.xlsx")["S002 李强"]
    assert sheet.protection.sheet and sheet.protection.password  # stored as Excel's legacy hash
