"""Audit manifest and `kpi verify`: deterministic, and names every tampered, deleted or extra file."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from pipeline.audit import (
    MANIFEST_PATH,
    ManifestError,
    build_manifest,
    sha256_file,
    verify,
    write_manifest,
)
from pipeline.cli import main

POLICY = "rounding: {decimals: 2, mode: half_up}\n# 中文注释\n"


@pytest.fixture
def run(tmp_path):
    """A period folder as the batch leaves it, with its manifest, and the inbox it read."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "actuals.xlsx").write_bytes(b"actuals-bytes")
    (inbox / "roster.xlsx").write_bytes(b"roster-bytes")
    out = tmp_path / "output" / "2026-10"
    (out / "departments").mkdir(parents=True)
    (out / "summary.xlsx").write_bytes(b"summary" * 1000)
    (out / "departments" / "销售部.xlsx").write_bytes(b"sales")
    (out / "departments" / "研发部.xlsx").write_bytes(b"rnd")
    manifest = make_manifest(inbox, out)
    write_manifest(out, manifest)
    return inbox, out


def make_manifest(inbox, out):
    return build_manifest(
        period="2026-10",
        inputs=[
            {"path": str(inbox / "roster.xlsx"), "kind": "roster", "template_version": "1",
             "rows": 2},
            {"path": str(inbox / "actuals.xlsx"), "kind": "actuals", "template_version": "1",
             "rows": 5},
        ],
        policy_text=POLICY,
        outputs_dir=out,
        counts={"employees": 2, "scored": 2},
        warnings=[{"rule": "indicator_count", "message_en": "E001 has 2 indicators"}],
        package_version="0.1.0",
    )


def invoke(*args):
    return CliRunner().invoke(main, ["verify", *(str(a) for a in args)])


def test_sha256_file_streams_the_same_hash(tmp_path):
    data = bytes(range(256)) * 9000  # > 1 MB: several chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_manifest_content(run):
    inbox, out = run
    manifest = json.loads((out / MANIFEST_PATH).read_text(encoding="utf-8"))
    assert manifest["manifest_version"] == 2
    assert manifest["period"] == "2026-10"
    assert manifest["package_version"] == "0.1.0"
    assert [o["path"] for o in manifest["outputs"]] == [
        "departments/研发部.xlsx", "departments/销售部.xlsx", "summary.xlsx"]
    summary = manifest["outputs"][2]
    assert summary == {"path": "summary.xlsx", "size": 7000,
                       "sha256": hashlib.sha256(b"summary" * 1000).hexdigest()}
    roster = manifest["inputs"][0]
    assert roster == {"path": str(inbox / "roster.xlsx"), "kind": "roster",
                      "template_version": "1", "rows": 2, "size": 12,
                      "sha256": hashlib.sha256(b"roster-bytes").hexdigest()}
    assert manifest["policy"] == {"content": POLICY,
                                  "sha256": hashlib.sha256(POLICY.encode("utf-8")).hexdigest()}
    assert manifest["counts"] == {"employees": 2, "scored": 2, "output_files": 3}
    assert manifest["warnings"][0]["rule"] == "indicator_count"
    assert "中文注释" in (out / MANIFEST_PATH).read_text(encoding="utf-8")  # not \u-escaped


def test_manifest_is_byte_identical_when_rebuilt(run):
    inbox, out = run
    first = (out / MANIFEST_PATH).read_bytes()
    write_manifest(out, make_manifest(inbox, out))  # the manifest itself is not listed
    assert (out / MANIFEST_PATH).read_bytes() == first
    assert first.endswith(b"}\n")


def test_verify_passes_on_a_fresh_run(run):
    _, out = run
    report = verify(out)
    assert report.ok
    assert report.checked == 3
    assert (report.changed, report.missing, report.unexpected) == ([], [], [])
    assert (report.inputs_changed, report.inputs_missing) == ([], [])
    result = invoke(out, "--lang", "en")
    assert result.exit_code == 0
    assert "all 3 output files match" in result.output


def test_verify_names_a_tampered_byte(run):
    _, out = run
    target = out / "departments" / "销售部.xlsx"
    data = bytearray(target.read_bytes())
    data[2] ^= 0x01
    target.write_bytes(bytes(data))
    report = verify(out)
    assert not report.ok
    assert report.changed == ["departments/销售部.xlsx"]
    assert (report.missing, report.unexpected) == ([], [])
    result = invoke(out)
    assert result.exit_code == 1
    assert "departments/销售部.xlsx" in result.output and "changed" in result.output


def test_verify_names_a_deleted_file(run):
    _, out = run
    (out / "summary.xlsx").unlink()
    report = verify(out)
    assert (report.ok, report.missing, report.changed) == (False, ["summary.xlsx"], [])
    result = invoke(out, "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["missing"] == ["summary.xlsx"] and payload["ok"] is False


def test_verify_names_an_unexpected_file(run):
    _, out = run
    (out / "departments" / "extra.xlsx").write_bytes(b"x")
    report = verify(out)
    assert (report.ok, report.unexpected) == (False, ["departments/extra.xlsx"])
    assert "departments/extra.xlsx" in invoke(out).output


def test_changed_and_missing_inputs_are_reported_but_do_not_fail(run):
    inbox, out = run
    (inbox / "actuals.xlsx").write_bytes(b"edited after the run")
    (inbox / "roster.xlsx").unlink()
    report = verify(out)
    assert report.ok
    assert report.inputs_changed == [str(inbox / "actuals.xlsx")]
    assert report.inputs_missing == [str(inbox / "roster.xlsx")]
    result = invoke(out, "--lang", "en")
    assert result.exit_code == 0
    assert "input changed" in result.output


def test_missing_manifest_is_a_clear_failure(tmp_path):
    (tmp_path / "p").mkdir()
    with pytest.raises(ManifestError) as err:
        verify(tmp_path / "p")
    assert "manifest.json" in err.value.message("en")
    result = invoke(tmp_path / "p")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "manifest.json" in result.output and "审计清单" in result.output
    assert invoke(tmp_path / "nowhere").exit_code == 1


def test_broken_or_escaping_manifest_is_rejected(run):
    _, out = run
    path = out / MANIFEST_PATH
    path.write_text("{not json", encoding="utf-8")
    assert invoke(out).exit_code == 1
    path.write_text(json.dumps({"outputs": [{"path": "../../etc/passwd", "sha256": "0"}]}),
                    encoding="utf-8")
    with pytest.raises(ManifestError) as err:
        verify(out)
    assert "leaves the output folder" in err.value.message("en")


def test_a_file_instead_of_a_folder_is_a_failure_not_a_crash(run):
    _, out = run
    result = invoke(out / "summary.xlsx")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "summary.xlsx" in result.output
