"""Hostile and broken input (SPEC §7, issue 6): never a traceback, never a hang, nothing lost.

A corpus with one file per case, each refused with its own bilingual message before any
parser sees it; the same corpus dropped into a valid company's inbox beside a roster full of
formula-injection and path-traversal text; memory measured in a child process; the limits
and their policy keys; .xls, .csv and .xlsm inputs.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pytest
from builders import (
    SHEET_NS,
    headers,
    ole2_file,
    replace_members,
    sheet_name,
    sheet_xml,
    table,
    write_sheets,
)
from company import HOSTILE_PEOPLE, PERIOD, hostile_company

import pipeline.reader as reader
from pipeline.policy import DEFAULT_POLICY_TEXT, load_policy, parse_policy
from pipeline.reader import read_inbox, read_workbook
from pipeline.safety import Limits, check_input_file

ROOT = Path(__file__).resolve().parents[1]
ACTUALS = sheet_name("actuals")
SHEET1 = "xl/worksheets/sheet1.xml"


def the(findings: list, rule: str):
    found = [f for f in findings if f.rule == rule]
    assert len(found) == 1, f"expected one {rule}, got {[(f.rule, f.where, f.message_en) for f in findings]}"
    return found[0]


def real_workbook(path: Path, rows: int = 30) -> Path:
    """A genuine actuals workbook as Excel stores one: shared strings, XML declarations."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet(ACTUALS)
    for r, row in enumerate(table("actuals", [
            {"employee_id": f"E{i:03d}", "period": PERIOD, "indicator_id": "K1", "actual": i} for i in range(rows)])):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    book.close()
    return path


# ================================================================== the corpus

LOL = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
       '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">'
       '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>')


def _random(path: Path, real: Path) -> None:
    path.write_bytes(b"\x13\x37" + random.Random(6).randbytes(50_000))


def _truncated(path: Path, real: Path) -> None:
    data = real.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _encrypted(path: Path, real: Path) -> None:
    ole2_file(path, ["\x06DataSpaces", "EncryptionInfo", "EncryptedPackage"])


def _unknown_ole2(path: Path, real: Path) -> None:
    ole2_file(path, ["SummaryInformation"])


def _zip_bomb(path: Path, real: Path) -> None:
    """The real workbook plus 200 MB of zeros in one member (a few hundred KB on disk)."""
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            archive.writestr(member, source.read(member))
        with archive.open("xl/media/image1.bin", "w") as handle:
            for _ in range(200):
                handle.write(b"\0" * (1024 * 1024))


def _lol_sheet(path: Path, real: Path) -> None:
    replace_members(real, path, {SHEET1: sheet_xml({1: {"A1": "&lol3;"}}, prolog='<?xml version="1.0"?>' + LOL)})


def _lol_strings(path: Path, real: Path) -> None:
    with zipfile.ZipFile(real) as archive:
        strings = archive.read("xl/sharedStrings.xml").decode()
    head, rest = strings.split("?>", 1)
    replace_members(real, path, {"xl/sharedStrings.xml": (head + "?>" + LOL + rest).replace(
        "<t>E001</t>", "<t>&lol3;</t>").encode()})


def _lol_after_comment(path: Path, real: Path) -> None:
    # A DTD pushed 100 KB down the prolog by a comment is still in the prolog: still refused.
    with zipfile.ZipFile(real) as archive:
        styles = archive.read("xl/styles.xml").decode()
    head, rest = styles.split("?>", 1)
    replace_members(real, path, {"xl/styles.xml": (head + "?><!--" + "x" * 100_000 + "-->" + LOL + rest).encode()})


def _far_cell(path: Path, real: Path) -> None:
    # Two cells, a dimension that lies: calamine alone would allocate 1,048,576 × 200 cells.
    replace_members(real, path, {SHEET1: sheet_xml({1: {"A1": "x"}, 1048576: {"GR1048576": 1}}, dimension="A1:B2")})


def _huge_reference(path: Path, real: Path) -> None:
    # calamine alone aborts the whole process on this reference (it asks for ~39 GB).
    replace_members(real, path, {SHEET1: sheet_xml({1: {"A1": "x", "A99999999999": 2}})})


def _wide_without_references(path: Path, real: Path) -> None:
    # Cells without `r` follow each other: 300 of them reach column KN, past max_columns.
    replace_members(real, path, {SHEET1: sheet_xml('<row r="1">' + "<c><v>1</v></c>" * 300 + "</row>")})


def _utf16(path: Path, real: Path) -> None:
    xml = sheet_xml({1: {"A1": "x"}}, prolog='<?xml version="1.0" encoding="UTF-16"?>').decode()
    replace_members(real, path, {SHEET1: xml.encode("utf-16")})


def _not_a_workbook(path: Path, real: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.txt", "not a workbook")


def _empty(path: Path, real: Path) -> None:
    path.write_bytes(b"")


# file name -> (builder, Chinese needles, English needles)
CORPUS = {
    "random.xlsx": (_random, ["不是 Excel 工作簿"], ["not an Excel workbook", "Save it as .xlsx"]),
    "truncated.xlsx": (_truncated, ["不完整"], ["truncated"]),
    "encrypted.xlsx": (_encrypted, ["打开密码", "加密"], ["password-protected (encrypted)", "remove the password"]),
    "compound.xlsx": (_unknown_ole2, ["加密", ".xls"], ["encrypted", ".xls", "save it as .xlsx"]),
    "zipbomb.xlsx": (_zip_bomb, ["压缩炸弹", "limits.min_compression_ratio"],
                     ["zip bomb", "limits.min_compression_ratio"]),
    "lol_sheet.xlsx": (_lol_sheet, ["<!ENTITY", "实体膨胀", SHEET1], ["entity-expansion", "<!ENTITY", SHEET1]),
    "lol_strings.xlsx": (_lol_strings, ["实体膨胀", "xl/sharedStrings.xml"],
                         ["entity-expansion", "xl/sharedStrings.xml"]),
    "lol_after_comment.xlsx": (_lol_after_comment, ["实体膨胀", "xl/styles.xml"], ["entity-expansion", "xl/styles.xml"]),
    "far_cell.xlsx": (_far_cell, ["limits.max_cells", "1,048,576 行 × 200 列"],
                      ["limits.max_cells", "1,048,576 rows × 200 columns", "delete the extra rows"]),
    "huge_reference.xlsx": (_huge_reference, ["limits.max_rows"], ["limits.max_rows", "99,999,999,999 rows"]),
    "wide.xlsx": (_wide_without_references, ["limits.max_columns", "300 列"], ["limits.max_columns", "300 columns"]),
    "utf16.xlsx": (_utf16, ["UTF-8"], ["not UTF-8"]),
    "not_a_workbook.xlsx": (_not_a_workbook, ["xl/workbook.xml"], ["xl/workbook.xml"]),
    "empty.xlsx": (_empty, ["为空"], ["empty"]),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    real = real_workbook(tmp_path_factory.mktemp("real") / "real.xlsx")
    for name, (build, _, _) in CORPUS.items():
        build(folder / name, real)
    return folder


@pytest.fixture
def no_parser(monkeypatch):
    """Fail the test if calamine is ever handed a file."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a parser was handed the file: {args}")

    monkeypatch.setattr(reader.CalamineWorkbook, "from_path", refuse)
    monkeypatch.setattr(reader.CalamineWorkbook, "from_filelike", refuse)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_file_is_refused_before_any_parser_with_a_bilingual_reason(corpus, no_parser, name):
    result = read_workbook(corpus / name)
    f = the(result.findings, "unreadable")
    assert len(result.findings) == 1
    assert f.is_error and f.file == name and f.sheet == "" and f.cell == ""
    assert result.kind is None and not result.tables and not result.matrices
    _, zh, en = CORPUS[name]
    assert f.message_zh.startswith("无法读取该文件") and f.message_en.startswith("Cannot read this file")
    for needle in zh:
        assert needle in f.message_zh, (needle, f.message_zh)
    for needle in en:
        assert needle in f.message_en, (needle, f.message_en)
    assert "Traceback" not in f.message_en


def test_encrypted_workbook_named_xls_or_csv_is_still_told_encrypted(tmp_path, no_parser):
    for name in ("locked.xls", "locked.xlsm", "locked.csv"):
        ole2_file(tmp_path / name, ["EncryptionInfo", "EncryptedPackage"])
        f = the(read_workbook(tmp_path / name).findings, "unreadable")
        assert "password-protected (encrypted)" in f.message_en and "加密" in f.message_zh


def test_rust_panic_in_the_parser_becomes_a_finding(tmp_path, monkeypatch):
    class PanicException(BaseException):  # what pyo3 raises: not an Exception
        pass

    def panic(*args, **kwargs):
        raise PanicException("index out of bounds")

    monkeypatch.setattr(reader.CalamineWorkbook, "from_filelike", panic)  # the bytes read once
    f = the(read_workbook(real_workbook(tmp_path / "a.xlsx")).findings, "unreadable")
    assert "damaged" in f.message_en and "损坏" in f.message_zh and "PanicException" in f.message_en


def test_keyboard_interrupt_is_not_swallowed(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reader.CalamineWorkbook, "from_filelike", interrupt)  # the bytes read once
    with pytest.raises(KeyboardInterrupt):
        read_workbook(real_workbook(tmp_path / "a.xlsx"))


# ================================================================== the hostile inbox, end to end

INJECTED = [name for _, name, _ in HOSTILE_PEOPLE] + ["=cmd|' /C calc'!A0"]
FORBIDDEN_IN_NAMES = set('<>:"/\\|?*')
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def _all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, corpus):
    root = tmp_path_factory.mktemp("hostile")
    inbox = hostile_company(root / "inbox")
    for name in CORPUS:
        shutil.copy(corpus / name, inbox / name)
    before = _all_files(root)
    out = root / "out"
    process = subprocess.run(
        [sys.executable, "-c", "from pipeline.cli import entry; entry()", "run", str(inbox), "--period", PERIOD,
         "--out", str(out), "--json", "--jobs", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    after = _all_files(root)
    return root, inbox, out / PERIOD, process, before, after


def test_hostile_inbox_runs_to_the_end_with_exit_1_and_no_traceback(hostile_run):
    _, _, period_dir, process, _, _ = hostile_run
    assert process.returncode == 1, process.stderr[-3000:]
    assert "Traceback" not in process.stdout + process.stderr
    assert "Error" not in process.stderr, process.stderr[-3000:]
    assert (period_dir / "summary.xlsx").is_file()


def test_every_bad_file_is_named_with_its_reason(hostile_run):
    _, _, _, process, _, _ = hostile_run
    report = json.loads(process.stdout)
    unreadable = {e["file"]: e for e in report["errors"] if e["rule"] == "unreadable"}
    assert set(unreadable) == set(CORPUS)
    for name, (_, zh, en) in CORPUS.items():
        for needle in zh:
            assert needle in unreadable[name]["message_zh"], (name, needle)
        for needle in en:
            assert needle in unreadable[name]["message_en"], (name, needle)


def test_everyone_valid_is_scored(hostile_run):
    _, _, _, process, _, _ = hostile_run
    report = json.loads(process.stdout)
    expected = {"S001", "S002", "S003", "R001", "R002"} | {p[0] for p in HOSTILE_PEOPLE}
    assert report["scored"] == len(expected)
    assert [u["employee_id"] for u in report["unscored"]] == ["R003"]  # she has left


def test_nothing_is_written_outside_the_output_folder(hostile_run):
    _, _, _, _, before, after = hostile_run
    new = after - before
    assert new and all(path.startswith("out/") for path in new), sorted(p for p in new if not p.startswith("out/"))
    assert before <= after  # inputs untouched, nothing removed


def test_output_names_are_sanitised_and_unique(hostile_run):
    _, _, period_dir, _, _, _ = hostile_run
    paths = [p.relative_to(period_dir) for p in period_dir.rglob("*") if p.is_file()]
    departments = [p for p in paths if p.parts[0] == "departments"]
    assert len(departments) == 2 + len({d for _, _, d in HOSTILE_PEOPLE})
    lowered = [p.as_posix().lower() for p in paths]
    assert len(lowered) == len(set(lowered))
    for path in paths:
        for part in path.parts:
            assert ".." not in part and not FORBIDDEN_IN_NAMES & set(part), part
            assert part.split(".")[0].lower() not in RESERVED, part
            assert len(part) <= 100 and part == part.strip(" ."), part
        assert (period_dir / path).resolve().is_relative_to(period_dir.resolve())
    stems = {p.stem for p in departments}
    assert {"SALES", "Sales~2", "_CON", "___etc", "___x", "a_b_c__", "D" * 80} <= stems
    for path in departments + [Path("summary.xlsx")]:
        book = openpyxl.load_workbook(period_dir / path, read_only=True)
        names = book.sheetnames
        book.close()
        assert len({n.lower() for n in names}) == len(names)
        assert all(len(n) <= 31 and not set("[]:*?/\\") & set(n) for n in names), names


def test_injected_text_stays_text_in_every_output_workbook(hostile_run):
    _, _, period_dir, _, _, _ = hostile_run
    seen: dict[str, int] = {}
    workbooks = sorted(period_dir.rglob("*.xlsx"))
    assert any(p.parent.name == "errors" for p in workbooks)
    for path in workbooks:
        book = openpyxl.load_workbook(path)  # formulas as written, not cached values
        for ws in book.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str) and cell.value in INJECTED:
                        assert cell.data_type == "s", (path.name, ws.title, cell.coordinate, cell.value)
                        seen[cell.value] = seen.get(cell.value, 0) + 1
                    if cell.data_type == "f":
                        # our own formulas may name a sheet called after a person ('H01 =cmd|_…'),
                        # but outside quoted sheet names no injected text is ever live
                        live = re.sub(r"'(?:[^']|'')*'", "", cell.value)
                        assert not any(bad in live for bad in ("cmd|", "evil", "SUM(1)", "HYPERLINK")), \
                            (path.name, cell.value)
                    if cell.hyperlink is not None:
                        assert "evil" not in str(cell.hyperlink.target), (path.name, cell.coordinate)
    assert set(seen) == set(INJECTED)  # each name reached the outputs, as text


# ================================================================== memory, in a child process

_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    from pipeline.reader import read_workbook
    start = time.perf_counter()
    result = read_workbook(Path(sys.argv[1]))
    print(json.dumps({
        "kind": result.kind, "rows": result.rows,
        "findings": [[f.rule, f.message_en] for f in result.findings],
        "seconds": time.perf_counter() - start,
        "peak_mb": peak_mb(),
    }))
""")
# The peak of this process image: VmHWM starts afresh at exec, whereas ru_maxrss (SELF or
# CHILDREN) keeps the high-water mark of the forked copy of pytest the child began as.
_PEAK = textwrap.dedent("""
    def peak_mb():
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
""")


def read_in_child(path: Path) -> dict:
    """read_workbook in a fresh interpreter; its peak resident memory comes back with the result."""
    process = subprocess.run([sys.executable, "-c", _PEAK + _CHILD, str(path)], capture_output=True, text=True,
                             cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout)


def _roster_with_stray_last_row(path: Path, column: str = "A") -> Path:
    """A roster of 3 people and one stray value typed in the sheet's last row (A1048576)."""
    roster = table("roster", [{"employee_id": f"E{i}", "name": f"员工{i}", "department": "销售部",
                               "role_family": "销售"} for i in range(1, 4)])
    rows = {r: {f"{'ABCDEFG'[c]}{r}": v for c, v in enumerate(row) if v is not None}
            for r, row in enumerate(roster, start=1)}
    rows[1048576] = {f"{column}1048576": "stray"}
    real = write_sheets(path.with_suffix(".base.xlsx"), {sheet_name("roster"): [["x"]]})
    return replace_members(real, path, {SHEET1: sheet_xml(rows)})


def test_a_sheet_with_one_value_in_row_1048576_is_read_in_bounded_memory(tmp_path):
    real = real_workbook(tmp_path / "real.xlsx")
    path = replace_members(real, tmp_path / "last_row.xlsx", {SHEET1: sheet_xml({1048576: {"A1048576": "x"}})})
    child = read_in_child(path)
    assert [rule for rule, _ in child["findings"]] == ["no_header"], child  # read, then judged
    assert child["peak_mb"] < 400, child
    assert child["seconds"] < 20, child


def test_a_roster_with_a_stray_value_far_out_in_the_last_row_is_refused_with_what_to_do(tmp_path):
    # Since issue 14 the default admits a sheet filling Excel's rows at up to 10 columns (a
    # genuine 932,785-row export): a stray value in the last row is refused beyond that width.
    path = _roster_with_stray_last_row(tmp_path / "roster.xlsx", column="Z")
    child = read_in_child(path)
    [(rule, message)] = child["findings"]
    assert rule == "unreadable"
    assert "1,048,576 rows × 26 columns" in message and "delete the extra rows" in message
    assert "limits.max_cells" in message
    assert child["peak_mb"] < 300, child


def test_a_roster_with_a_stray_value_in_the_last_row_within_the_width_is_read(tmp_path):
    # Within the width the default admits, it is read: the stray value is a row (which
    # validation then reports), but no million-row frame is built.
    path = _roster_with_stray_last_row(tmp_path / "roster.xlsx")
    child = read_in_child(path)
    assert child["kind"] == "roster" and child["rows"] == 4 and child["findings"] == [], child
    assert child["peak_mb"] < 700, child


def test_a_dimension_claiming_the_whole_sheet_costs_nothing(tmp_path):
    real = real_workbook(tmp_path / "real.xlsx")
    path = replace_members(real, tmp_path / "claims.xlsx", {SHEET1: sheet_xml(
        {1: {f"{c}1": h for c, h in zip("ABCDEF", headers("actuals"))}, 2: {"A2": "E001", "B2": PERIOD,
                                                                             "C2": "K1", "D2": 5}},
        dimension="A1:XFD1048576")})
    child = read_in_child(path)
    assert child["kind"] == "actuals" and child["rows"] == 1, child
    assert child["peak_mb"] < 300, child


@pytest.mark.parametrize("name", ["zipbomb.xlsx", "far_cell.xlsx", "huge_reference.xlsx", "lol_sheet.xlsx"])
def test_refused_files_cost_little_memory_and_time(corpus, name):
    child = read_in_child(corpus / name)
    assert [rule for rule, _ in child["findings"]] == ["unreadable"]
    assert child["peak_mb"] < 300, child
    assert child["seconds"] < 10, child


# ================================================================== limits, before reading

def test_limits_name_their_policy_key(tmp_path):
    real = real_workbook(tmp_path / "real.xlsx", rows=300)
    cases = {
        "limits.max_file_mb": Limits(max_file_bytes=1000),
        "limits.max_uncompressed_mb": Limits(max_uncompressed_bytes=10_000),
        "limits.max_sheet_mb": Limits(max_sheet_bytes=5_000),
        "limits.max_rows": Limits(max_rows=100),
        "limits.max_columns": Limits(max_columns=3),
        "limits.max_cells": Limits(max_cells=1000),
        "limits.max_sheets": Limits(max_sheets=0),
    }
    for key, limits in cases.items():
        f = the(read_workbook(real, limits=limits).findings, "unreadable")
        assert key in f.message_zh and key in f.message_en, (key, f.message_en)
    assert read_workbook(real).kind == "actuals"


def test_sheet_size_is_refused_from_the_zip_directory_without_inflating(tmp_path, monkeypatch):
    real = real_workbook(tmp_path / "real.xlsx", rows=300)
    inflated = []
    read = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, *a: inflated.append(name) or read(self, name, *a))
    f = the(read_workbook(real, limits=Limits(max_sheet_bytes=5_000)).findings, "unreadable")
    assert "max_sheet_mb" in f.message_en and ACTUALS in f.message_en
    assert SHEET1 not in inflated


def _with_bad_crc(source: Path, target: Path, member: str) -> Path:
    """`source` with `member`'s recorded CRC changed (local header and directory): its bytes
    still inflate, only the check fails."""
    import struct

    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 14, info.CRC ^ 0x5A5A5A5A)
    directory = data.find(b"PK\x01\x02")
    while directory >= 0:
        name_length = struct.unpack_from("<H", data, directory + 28)[0]
        if data[directory + 46:directory + 46 + name_length] == member.encode():
            struct.pack_into("<I", data, directory + 16, info.CRC ^ 0x5A5A5A5A)
        directory = data.find(b"PK\x01\x02", directory + 4)
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("rows", [5, 3000])  # a sheet read whole by the XML prolog check, and one only scanned
def test_a_sheet_failing_its_crc_is_refused_naming_the_member(tmp_path, rows):
    real = real_workbook(tmp_path / "real.xlsx", rows=rows)
    for member in (SHEET1, "xl/sharedStrings.xml"):
        path = _with_bad_crc(real, tmp_path / "bad.xlsx", member)
        f = the(read_workbook(path).findings, "unreadable")
        assert f"member {member} fails its CRC" in f.message_en and "校验失败" in f.message_zh
    assert read_workbook(real).kind == "actuals"


def test_policy_limits_keys_and_the_two_policy_files_agree():
    assert (ROOT / "pipeline" / "default_policy.yaml").read_bytes() == (ROOT / "config" / "policy.yaml").read_bytes()
    assert load_policy().limits == Limits()
    policy = parse_policy("limits: {max_sheet_mb: 2, max_cells: 5000, min_compression_ratio: 0.01}\n")
    assert policy.limits.max_sheet_bytes == 2 * 1024 * 1024
    assert policy.limits.max_cells == 5000 and policy.limits.min_compression_ratio == 0.01
    for key in ("max_file_mb", "max_uncompressed_mb", "min_compression_ratio", "max_sheet_mb", "max_sheets",
                "max_rows", "max_columns", "max_cells"):
        assert f"  {key}:" in DEFAULT_POLICY_TEXT


def test_workbook_cells_are_limited_over_all_sheets(tmp_path):
    rows = table("actuals", [{"employee_id": f"E{i}", "period": PERIOD, "indicator_id": "K1", "actual": i}
                             for i in range(100)])
    path = write_sheets(tmp_path / "months.xlsx", {"十月": rows, "十一月": rows})
    assert read_workbook(path, limits=Limits(max_cells=1300)).kind == "actuals"  # 2 × 101 rows × 6 columns
    f = the(read_workbook(path, limits=Limits(max_cells=1000)).findings, "unreadable")
    assert "over all its sheets" in f.message_en and "limits.max_cells" in f.message_en


def test_too_many_merged_ranges_are_refused(tmp_path):
    path = real_workbook(tmp_path / "m.xlsx", rows=50)
    book = openpyxl.load_workbook(path)
    for r in range(2, 50, 2):
        book[ACTUALS].merge_cells(f"E{r}:F{r}")
    book.save(path)
    assert read_workbook(path).kind == "actuals"
    f = the(read_workbook(path, limits=Limits(max_merged_ranges=10)).findings, "unreadable")
    assert "merged" in f.message_en and "合并" in f.message_zh


# ================================================================== safe XML

def test_openpyxl_runs_with_defusedxml():
    from openpyxl.xml import DEFUSEDXML

    assert DEFUSEDXML is True


def test_sheet_xml_quirks_do_not_hide_cells_from_the_extent_scan(tmp_path):
    real = real_workbook(tmp_path / "real.xlsx")
    cases = {
        # a prefixed namespace, a row far down given on the row only, a lowercase reference
        "prefixed": f'<?xml version="1.0"?><x:worksheet xmlns:x="{SHEET_NS}"><x:sheetData><x:row r="1">'
                    '<x:c r="A1"><x:v>1</x:v></x:c></x:row><x:row r="900"><x:c r="gz900"><x:v>2</x:v></x:c>'
                    '</x:row></x:sheetData></x:worksheet>',
        "row-only": sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c><v>2</v></c>'
                              '<c><v>3</v></c><c><v>3</v></c><c><v>3</v></c><c><v>3</v></c><c><v>3</v></c>'
                              '<c><v>3</v></c><c><v>3</v></c><c><v>3</v></c><c><v>3</v></c><c><v>3</v></c></row>',
                              dimension="A1").decode(),
        "gt-in-attribute": sheet_xml('<row r="1"><c r="A1"><v>1</v></c><c s=">" r="XFD1"><v>2</v></c></row>',
                                     dimension="A1").decode(),
    }
    limits = Limits(max_cells=2_000_000)
    expected = {"prefixed": "limits.max_columns", "row-only": "limits.max_cells", "gt-in-attribute": "limits.max_columns"}
    for name, xml in cases.items():
        path = replace_members(real, tmp_path / f"{name}.xlsx", {SHEET1: xml.encode()})
        f = the(read_workbook(path, limits=limits).findings, "unreadable")
        assert expected[name] in f.message_en, (name, f.message_en)


def test_hidden_formula_cells_are_found_in_sheets_without_references(tmp_path):
    real = real_workbook(tmp_path / "real.xlsx")
    body = ('<row>' + "".join(f'<c t="inlineStr"><is><t>{h}</t></is></c>' for h in headers("actuals")) + "</row>"
            '<row><c t="inlineStr"><is><t>E001</t></is></c><c t="inlineStr"><is><t>2026-10</t></is></c>'
            '<c t="inlineStr"><is><t>K1</t></is></c><c><f>B2*2</f></c></row>'
            '<row><c t="inlineStr"><is><t>E002</t></is></c><c t="inlineStr"><is><t>2026-10</t></is></c>'
            '<c t="inlineStr"><is><t>K1</t></is></c><c t="e"><v>#N/A</v></c></row>')
    path = replace_members(real, tmp_path / "norefs.xlsx", {SHEET1: sheet_xml(body)})
    result = read_workbook(path)
    assert result.kind == "actuals"
    found = {(f.rule, f.cell) for f in result.findings}
    assert {("formula_no_value", "D2"), ("error_value", "D3")} <= found, found


# ================================================================== .xls, .csv, .xlsm

def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


@pytest.fixture(scope="module")
def legacy_xls(tmp_path_factory) -> Path:
    """A genuine BIFF8 .xls, saved by LibreOffice from an openpyxl workbook."""
    office = _soffice()
    if office is None:
        pytest.skip("LibreOffice is needed to write a genuine .xls")
    folder = tmp_path_factory.mktemp("xls")
    source = write_sheets(folder / "actuals.xlsx", {ACTUALS: table("actuals", [
        {"employee_id": "E001", "period": PERIOD, "indicator_id": "K1", "actual": 5, "note": "=1+1 typed as text"},
        {"employee_id": "E002", "period": PERIOD, "indicator_id": "K1", "actual": "N/A"}])})
    book = openpyxl.load_workbook(source)
    book[ACTUALS]["F2"].data_type = "s"
    book.save(source)
    subprocess.run([office, "--headless", "--norestore", f"-env:UserInstallation=file://{folder}/profile",
                    "--convert-to", "xls", "--outdir", str(folder), str(source)],
                   capture_output=True, timeout=180, check=False)
    path = folder / "actuals.xls"
    if not path.exists():
        pytest.skip("LibreOffice could not convert to .xls here")
    return path


def test_legacy_xls_is_read(legacy_xls, tmp_path):
    assert check_input_file(legacy_xls) == "xls"
    result = read_workbook(legacy_xls)
    assert result.kind == "actuals" and not result.findings, result.findings
    frame = result.tables[0].frame
    assert frame["employee_id"].tolist() == ["E001", "E002"]
    assert frame["note"].tolist()[0] == "=1+1 typed as text"
    # The same bytes under a .xlsx name are still read as what they are.
    renamed = shutil.copy(legacy_xls, tmp_path / "actuals.xlsx")
    assert read_workbook(Path(renamed)).kind == "actuals"


def test_legacy_xls_in_a_batch_gets_a_list_only_errors_workbook(legacy_xls, tmp_path):
    from pipeline.validate import validate
    from pipeline.writers.errors_book import write_errors_workbook

    wb = read_workbook(legacy_xls)
    findings = [f for f in validate([wb], load_policy()).findings if f.file == "actuals.xls"]
    assert any(f.rule == "not_a_number" and f.cell == "D3" for f in findings)
    out = write_errors_workbook(legacy_xls, findings, tmp_path / "actuals.xls.errors.xlsx")
    book = openpyxl.load_workbook(out)
    text = " ".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value)
    assert "legacy .xls" in text


def _csv(path: Path, rows: list[list], encoding: str) -> Path:
    """A CSV as Excel saves one (quoted where needed, CRLF)."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030", "utf-16"])
def test_csv_is_read_in_the_encodings_excel_writes(tmp_path, encoding):
    rows = [headers("roster"), ["E001", "=cmd|' /C calc'!A0", "销售部", "", "销售"],
            ["007", "王芳", "研发部", "", "研发", "E001"], ["", "", "", "", ""]]
    result = read_workbook(_csv(tmp_path / "花名册.csv", rows, encoding))
    assert result.kind == "roster" and not result.findings, result.findings
    table_ = result.tables[0]
    assert table_.sheet == "花名册" and table_.file == "花名册.csv"
    assert table_.frame["employee_id"].tolist() == ["E001", "007"]  # leading zeros kept
    assert table_.frame["name"].tolist()[0] == "=cmd|' /C calc'!A0"  # text, as typed
    assert table_.frame["_row"].tolist() == [2, 3]


def test_csv_is_classified_by_headers_not_by_its_name(tmp_path):
    rows = [headers("actuals"), ["E001", PERIOD, "K1", "1,200", "", "=1+1"]]
    result = read_workbook(_csv(tmp_path / "roster.csv", rows, "utf-8"))
    assert result.kind == "actuals", result.findings
    assert result.tables[0].frame["actual"].tolist() == ["1,200"]  # parsed later as 1200


def test_broken_csv_files_get_a_clear_message(tmp_path):
    bad = {
        "long_field.csv": (b"a,b\n" + b"x" * 200_000 + b",y\n", "malformed"),
        "encoding.csv": (b"\xff\xfe\xfd,\x80\xff\n" * 3, None),
        "huge.csv": (("a," * 10 + "\n").encode() * 200, "limits.max_cells"),
    }
    bad["encoding.csv"] = (b"ab\xff\xffcd\n", "encoding")
    for name, (data, needle) in bad.items():
        (tmp_path / name).write_bytes(data)
        f = the(read_workbook(tmp_path / name, limits=Limits(max_cells=1000)).findings, "unreadable")
        assert needle in f.message_en and f.message_zh, (name, f.message_en)


def test_xlsm_data_is_read_and_nothing_runs(tmp_path):
    source = real_workbook(tmp_path / "a.xlsx", rows=5)
    path = replace_members(source, tmp_path / "macro.xlsm", add={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + b"\0" * 500})
    result = read_workbook(path)
    assert result.kind == "actuals" and not result.findings
    assert result.tables[0].frame["employee_id"].tolist() == [f"E{i:03d}" for i in range(5)]


def test_inbox_reads_csv_xls_and_xlsm_and_still_skips_notes(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _csv(inbox / "roster.csv", [headers("roster"), ["E001", "张三", "销售部", "", "销售"]], "utf-8-sig")
    replace_members(real_workbook(tmp_path / "a.xlsx", rows=2), inbox / "actuals.xlsm")
    (inbox / "readme.txt").write_text("notes", "utf-8")
    results = {r.file: r for r in read_inbox(inbox)}
    assert results["roster.csv"].kind == "roster" and results["actuals.xlsm"].kind == "actuals"
    assert not results["readme.txt"].findings[0].is_error
