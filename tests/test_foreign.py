"""Workbooks written by other programs (issue 14, item 8): read what is readable, refuse the rest
with one bilingual reason, and never let a foreign library cost memory, minutes or console text.

Every workbook is built here the way the broken one was made: a legacy .xls by a minimal
BIFF8/compound-file writer, an .xlsx by zip surgery on an xlsxwriter file.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from builders import replace_members, sheet_name, sheet_xml, table
from click.testing import CliRunner
from company import PERIOD

import pipeline.reader as reader
from pipeline.cli import diff_command
from pipeline.diff import VBA, ExcelError, diff_workbooks, format_changes, load_book
from pipeline.findings import finding
from pipeline.reader import read_workbook
from pipeline.safety import (
    OPENPYXL_MERGED_RANGES,
    OPENPYXL_NAMED_STYLES,
    check_input_file,
    normalised_xlsx,
    ole2_kind,
    openpyxl_input,
)
from pipeline.writers.errors_book import LIST_SHEET, write_errors_workbook

ROOT = Path(__file__).resolve().parents[1]
ACTUALS = sheet_name("actuals")
ROWS = [{"employee_id": f"E{i:03d}", "period": PERIOD, "indicator_id": "K1", "actual": i} for i in range(1, 6)]
SHEET1 = "xl/worksheets/sheet1.xml"


def the_refusal(result):
    assert [f.rule for f in result.findings] == ["unreadable"], [(f.rule, f.message_en) for f in result.findings]
    f = result.findings[0]
    assert f.is_error and f.message_zh.startswith("无法读取该文件") and f.message_en.startswith("Cannot read this file")
    assert "Traceback" not in f.message_en and result.kind is None and not result.tables
    return f


def assert_read(result, rows: int = len(ROWS)):
    assert not [f for f in result.findings if f.rule == "unreadable"], [f.message_en for f in result.findings]
    assert result.kind == "actuals", [f.message_en for f in result.findings]
    assert result.rows == rows
    assert result.tables[0].frame["employee_id"].tolist()[0] == "E001"


@pytest.fixture
def no_parser(monkeypatch):
    """Fail the test if calamine is ever handed the file."""
    def refuse(*args, **kwargs):
        raise AssertionError("calamine was handed the file")

    monkeypatch.setattr(reader.CalamineWorkbook, "from_path", refuse)
    monkeypatch.setattr(reader.CalamineWorkbook, "from_filelike", refuse)


# ================================================================== a minimal .xls writer

def _record(kind: int, data: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _text(value: str, wide_count: bool = True) -> bytes:
    return struct.pack("<H" if wide_count else "<B", len(value)) + b"\x01" + value.encode("utf-16-le")


def biff8(sheets: dict[str, dict[tuple[int, int], object]], *, dimensions: dict[str, tuple] | None = None,
          globals_extra: bytes = b"") -> bytes:
    """A BIFF8 workbook stream: {sheet: {(row, col): value}} (0-based), text as LABEL records,
    numbers as NUMBER records; `dimensions` overrides a sheet's DIMENSIONS record."""
    bodies = []
    for name, cells in sheets.items():
        rows = [r for r, _ in cells] or [0]
        cols = [c for _, c in cells] or [0]
        declared = (dimensions or {}).get(name, (0, max(rows) + 1, 0, max(cols) + 1))
        body = [_record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0x0DBB, 0x07CC, 0, 6)),
                _record(0x0200, struct.pack("<IIHHH", *declared, 0))]
        for (r, c), value in sorted(cells.items()):
            if isinstance(value, str):
                body.append(_record(0x0204, struct.pack("<HHH", r, c, 15) + _text(value)))
            else:
                body.append(_record(0x0203, struct.pack("<HHHd", r, c, 15, float(value))))
        body.append(_record(0x000A))
        bodies.append(b"".join(body))
    head = (_record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 6))
            + _record(0x0042, struct.pack("<H", 1200)) + globals_extra)
    bound = [_record(0x0085, struct.pack("<IBB", 0, 0, 0) + _text(n, wide_count=False)) for n in sheets]
    offset = len(head) + sum(map(len, bound)) + 4
    for index, name in enumerate(sheets):
        bound[index] = _record(0x0085, struct.pack("<IBB", offset, 0, 0) + _text(name, wide_count=False))
        offset += len(bodies[index])
    return head + b"".join(bound) + _record(0x000A) + b"".join(bodies)


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A version-3 compound file (512-byte sectors) holding `streams`, each padded to 4 KB so
    none lives in the mini stream: what Excel, and Crystal Reports, write around a .xls."""
    sector, end, free, fat_mark, none = 512, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    datas = [(name, data + b"\0" * max(4096 - len(data), 0)) for name, data in streams.items()]
    counts = [-(-len(d) // sector) for _, d in datas]
    dir_sectors = -(-(len(datas) + 1) * 128 // sector)
    fat_sectors = 1
    while fat_sectors * 128 < fat_sectors + dir_sectors + sum(counts):
        fat_sectors += 1
    fat = [fat_mark] * fat_sectors
    first_dir = len(fat)
    fat += [first_dir + i + 1 for i in range(dir_sectors - 1)] + [end]
    starts = []
    for count in counts:
        starts.append(len(fat))
        fat += [len(fat) + i + 1 for i in range(count - 1)] + [end]
    fat += [free] * (fat_sectors * 128 - len(fat))
    header = bytearray(sector)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<III", header, 0x2C, fat_sectors, first_dir, 0)
    struct.pack_into("<IIIII", header, 0x38, 4096, end, 0, end, 0)
    for i in range(109):
        struct.pack_into("<I", header, 0x4C + 4 * i, i if i < fat_sectors else free)
    directory = bytearray()
    entries = [("Root Entry", 5, end, 0)] + [(n, 2, s, len(d)) for (n, d), s in zip(datas, starts)]
    for index, (name, kind, start, size) in enumerate(entries):
        entry = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\0\0"
        entry[0:len(encoded)] = encoded
        struct.pack_into("<HBB", entry, 64, len(encoded), kind, 1)
        right = index + 1 if 0 < index < len(entries) - 1 else none
        child = 1 if index == 0 and len(entries) > 1 else none
        struct.pack_into("<IIIII", entry, 68, none, right, child, 0, 0)
        struct.pack_into("<II", entry, 116, start, size)
        directory += entry
    directory += b"\0" * (dir_sectors * sector - len(directory))
    body = b"".join(struct.pack("<I", v) for v in fat) + bytes(directory)
    for (_, data), count in zip(datas, counts):
        body += data + b"\0" * (count * sector - len(data))
    return bytes(header) + body


def actuals_cells(rows: list[dict] = ROWS) -> dict[tuple[int, int], object]:
    grid = table("actuals", rows)
    return {(r, c): v for r, row in enumerate(grid) for c, v in enumerate(row) if v is not None}


def write_xls(path: Path, stream_name: str = "Workbook", **options) -> Path:
    path.write_bytes(compound_file({stream_name: biff8({ACTUALS: actuals_cells()}, **options)}))
    return path


# ================================================================== an .xlsx as another program writes it

def xlsx(path: Path, rows: list[dict] = ROWS) -> Path:
    """The actuals template as Excel stores it (xlsxwriter: shared strings, declarations)."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet(ACTUALS)
    for r, row in enumerate(table("actuals", rows)):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    book.close()
    return path


def rebuild(source: Path, target: Path, rename=lambda name: name, replace: dict[str, bytes] | None = None,
            add: dict[str, bytes] | None = None, first: dict[str, bytes] | None = None) -> Path:
    """A copy of the zip with members renamed (after `replace` picked their bytes by old name),
    `first` written before them and `add` after."""
    replace = replace or {}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in (first or {}).items():
            zout.writestr(name, data)
        for info in zin.infolist():
            zout.writestr(rename(info.filename), replace.get(info.filename, zin.read(info)))
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return target


def relocated(source: Path, target: Path, folder: str = "content") -> Path:
    """The workbook part and everything under xl/ moved to `folder`/, declared in _rels/.rels."""
    with zipfile.ZipFile(source) as archive:
        rels = archive.read("_rels/.rels").replace(b'Target="xl/workbook.xml"', f'Target="/{folder}/workbook.xml"'.encode())
        types = archive.read("[Content_Types].xml").replace(b'PartName="/xl/', f'PartName="/{folder}/'.encode())
    return rebuild(source, target, lambda n: f"{folder}/" + n[3:] if n.startswith("xl/") else n,
                   replace={"_rels/.rels": rels, "[Content_Types].xml": types})


def with_merges(source: Path, target: Path, refs: list[str]) -> Path:
    with zipfile.ZipFile(source) as archive:
        xml = archive.read(SHEET1)
    merges = f'<mergeCells count="{len(refs)}">' + "".join(f'<mergeCell ref="{r}"/>' for r in refs) + "</mergeCells>"
    return replace_members(source, target, {SHEET1: xml.replace(b"</sheetData>", b"</sheetData>" + merges.encode())})


# ================================================================== .xls sized before calamine builds it

def _sst_claiming_a_billion(path: Path) -> Path:
    sst = _record(0x00FC, struct.pack("<ii", 1_000_000_000, 1_000_000_000))
    path.write_bytes(compound_file({"Workbook": biff8({ACTUALS: actuals_cells()}, globals_extra=sst)}))
    return path


def _far_cell(path: Path) -> Path:
    cells = {**actuals_cells(), (65535, 255): 1.0}  # A1 … IV65536: calamine builds 16.7 M cells
    path.write_bytes(compound_file({"Workbook": biff8({ACTUALS: cells})}))
    return path


XLS_CASES = {
    # 42 KB-ish of file declaring 65,536 × 256 cells: calamine reserves them all first
    "declared.xls": (lambda p: write_xls(p, dimensions={ACTUALS: (0, 65536, 0, 256)}),
                     ["limits.max_", "256"], ["limits.max_", "256"]),
    # a declared extent past any memory: calamine alone aborts the whole process on it
    "abort.xls": (lambda p: write_xls(p, dimensions={ACTUALS: (0, 0xFFFFFFFF, 0, 0xFFFF)}),
                  ["limits.max_rows"], ["limits.max_rows", "4,294,967,295 rows"]),
    "backwards.xls": (lambda p: write_xls(p, dimensions={ACTUALS: (70_000, 3, 0, 4)}),
                      ["损坏"], ["damaged", "backwards"]),
    "far_cell.xls": (_far_cell, ["limits.max_", "256"], ["limits.max_", "256"]),
    "sst.xls": (_sst_claiming_a_billion, ["损坏"], ["damaged", "1,000,000,000 strings"]),
}


@pytest.mark.parametrize("name", sorted(XLS_CASES))
def test_xls_extent_is_checked_before_calamine_builds_it(tmp_path, no_parser, name):
    build, zh, en = XLS_CASES[name]
    path = build(tmp_path / name)
    assert check_input_file(path) == "xls"
    f = the_refusal(read_workbook(path))
    assert f.file == name
    for needle in zh:
        assert needle in f.message_zh, f.message_zh
    for needle in en:
        assert needle in f.message_en, f.message_en


def test_a_plain_xls_within_the_limits_is_read(tmp_path):
    assert_read(read_workbook(write_xls(tmp_path / "actuals.xls")))


# ================================================================== no foreign text on the console

def test_a_rust_panic_prints_nothing_and_is_one_finding(tmp_path):
    """A truncated Lbl record makes calamine panic (index out of bounds); with RUST_BACKTRACE=1
    it printed the panic and a ~60-frame backtrace on stderr."""
    path = tmp_path / "fuzzed.xls"
    lbl = _record(0x0018, b"\0\0")  # a defined name two bytes long
    path.write_bytes(compound_file({"Workbook": biff8({ACTUALS: actuals_cells()}, globals_extra=lbl)}))
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from pipeline.reader import read_workbook
        result = read_workbook(Path({str(path)!r}))
        print("ours before", file=sys.stderr, flush=True)
        for f in result.findings:
            print(f.rule, "|", f.message_zh, "|", f.message_en)
        print("ours after", file=sys.stderr)
    """)
    env = {"RUST_BACKTRACE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "ours before\nours after\n"  # our own stderr intact, nothing else
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unreadable |")
    assert "损坏" in lines[0] and "damaged" in lines[0]
    assert "index out of bounds" not in lines[0] and "xls.rs" not in lines[0]


# ================================================================== openpyxl's work is budgeted

@pytest.fixture
def bound_merges(monkeypatch):
    """Every merged range openpyxl binds cell by cell, as a list of references."""
    from openpyxl.worksheet._reader import WorksheetReader

    bound: list[str] = []
    original = WorksheetReader.bind_merged_cells

    def record(self):
        if self.parser.merged_cells:
            bound.extend(str(m.ref) for m in self.parser.merged_cells.mergeCell)
        return original(self)

    monkeypatch.setattr(WorksheetReader, "bind_merged_cells", record)
    return bound


def _bad_cell():
    return finding("required", file="actuals.xlsx", sheet=ACTUALS, cell="D3", column="实际值 Actual")


def _copy(tmp_path: Path, source: Path):
    out = write_errors_workbook(source, [_bad_cell()], tmp_path / "out.errors.xlsx")
    book = openpyxl.load_workbook(out)
    notes = " ".join(str(c.value) for row in book[LIST_SHEET].iter_rows() for c in row if c.value)
    return book, notes


def test_a_huge_merged_range_is_left_out_of_the_errors_copy(tmp_path, bound_merges):
    source = with_merges(xlsx(tmp_path / "plain.xlsx"), tmp_path / "actuals.xlsx", ["A1:A1", "B1:B1048576", "F2:G2"])
    book, notes = _copy(tmp_path, source)
    assert "B1:B1048576" not in bound_merges and "F2:G2" in bound_merges
    sheet = book[ACTUALS]
    assert [str(r) for r in sheet.merged_cells.ranges] == ["F2:G2"]  # the sane one is kept
    assert sheet["A2"].value == "E001" and sheet["D3"].fill.fgColor.rgb.endswith("FFC7CE")
    assert "too large or too many" in notes and "过大或过多" in notes


def test_too_many_merged_ranges_are_all_left_out(tmp_path, bound_merges):
    count = OPENPYXL_MERGED_RANGES + 1
    refs = [f"H{2 * i + 1}:H{2 * i + 2}" for i in range(count)]
    source = with_merges(xlsx(tmp_path / "plain.xlsx"), tmp_path / "actuals.xlsx", refs)
    book, notes = _copy(tmp_path, source)
    assert bound_merges == [] and not book[ACTUALS].merged_cells.ranges
    assert f"{count:,} merged ranges of sheet '{ACTUALS}'" in notes


def test_many_named_styles_are_reduced_to_normal(tmp_path):
    plain = xlsx(tmp_path / "plain.xlsx")
    with zipfile.ZipFile(plain) as archive:
        styles = archive.read("xl/styles.xml").decode()
    count = OPENPYXL_NAMED_STYLES + 500  # "Normal 2", "Normal 3", …: the bloat old templates carry
    xfs = '<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>' * (count + 1)
    names = "".join(f'<cellStyle name="Normal {i + 2}" xfId="{i + 1}"/>' for i in range(count))
    head, _, rest = styles.partition("<cellStyleXfs")
    rest = rest.split("</cellStyleXfs>", 1)[1]
    before, _, after = rest.partition("<cellStyles")
    after = after.split("</cellStyles>", 1)[1]
    styles = (head + f'<cellStyleXfs count="{count + 1}">{xfs}</cellStyleXfs>' + before
              + f'<cellStyles count="{count + 1}"><cellStyle name="Normal" xfId="0" builtinId="0"/>{names}</cellStyles>'
              + after)
    source = replace_members(plain, tmp_path / "actuals.xlsx", {"xl/styles.xml": styles.encode()})
    prepared = openpyxl_input(source)
    assert prepared.named_styles_left_out == count
    with zipfile.ZipFile(io.BytesIO(prepared.data)) as archive:
        assert archive.read("xl/styles.xml").count(b"<cellStyle ") == 1
    book, _ = _copy(tmp_path, source)
    assert book[ACTUALS]["A2"].value == "E001"


def test_diff_binds_no_merge_and_builds_no_stylesheet(tmp_path, monkeypatch):
    import openpyxl.styles.stylesheet as stylesheet
    import openpyxl.worksheet.merge as merge

    def refuse(*args, **kwargs):
        raise AssertionError("openpyxl was asked to bind merges or build styles")

    monkeypatch.setattr(merge.MergedCellRange, "__init__", refuse)
    monkeypatch.setattr(stylesheet, "apply_stylesheet", refuse)
    plain = xlsx(tmp_path / "plain.xlsx")
    merged = with_merges(plain, tmp_path / "merged.xlsx", ["B1:B1048576"] + [f"H{i}:I{i}" for i in range(1, 3000)])
    assert diff_workbooks(plain, merged) == []  # merges are layout, not values
    changed = xlsx(tmp_path / "changed.xlsx", [{**ROWS[0], "actual": 99}] + ROWS[1:])
    assert [(c.cell, c.old, c.new) for c in diff_workbooks(merged, changed)] == [("D2", 1, 99)]


# ================================================================== readable layouts are read

def test_xls_streams_named_in_capitals_are_read(tmp_path):
    for name in ("WORKBOOK", "BOOK", "workbook"):  # Crystal Reports writes capitals
        path = write_xls(tmp_path / f"{name}.xls", stream_name=name)
        assert ole2_kind(path) == "xls" and check_input_file(path) == "xls"
        assert_read(read_workbook(path))


def test_backslash_member_names_are_read(tmp_path):
    plain = xlsx(tmp_path / "plain.xlsx")
    path = rebuild(plain, tmp_path / "考勤导出.xlsx", lambda n: n.replace("/", "\\"))
    with zipfile.ZipFile(path) as archive:
        assert "xl\\worksheets\\sheet1.xml" in archive.namelist()
    assert_read(read_workbook(path))
    assert diff_workbooks(plain, path) == []  # openpyxl reads it too, through the normalised copy
    book, notes = _copy(tmp_path, path)
    assert book[ACTUALS]["A2"].value == "E001" and "could not be copied" not in notes


def test_a_workbook_part_declared_elsewhere_is_read(tmp_path):
    plain = xlsx(tmp_path / "plain.xlsx")
    path = relocated(plain, tmp_path / "actuals.xlsx")
    with zipfile.ZipFile(path) as archive:
        assert "content/workbook.xml" in archive.namelist() and "xl/workbook.xml" not in archive.namelist()
    assert_read(read_workbook(path))
    assert diff_workbooks(plain, path) == []
    with zipfile.ZipFile(io.BytesIO(normalised_xlsx(path))) as archive:
        assert {"xl/workbook.xml", "xl/_rels/workbook.xml.rels", SHEET1} <= set(archive.namelist())
        assert b'Target="xl/workbook.xml"' in archive.read("_rels/.rels")
    assert normalised_xlsx(plain) is None  # a workbook laid out as Excel does is not rewritten


def test_an_unused_utf16_custom_xml_part_is_accepted(tmp_path):
    plain = xlsx(tmp_path / "plain.xlsx")
    item = '<?xml version="1.0" encoding="utf-16"?><ds:datastoreItem ds:itemID="{1}" ' \
           'xmlns:ds="http://schemas.openxmlformats.org/officeDocument/2006/customXml"/>'
    path = replace_members(plain, tmp_path / "actuals.xlsx", add={"customXml/item1.xml": item.encode("utf-16")})
    assert_read(read_workbook(path))
    # Read through its encoding: a DTD in a UTF-16 part is still found and refused.
    lol = '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    bad = replace_members(plain, tmp_path / "bad.xlsx", add={"customXml/item1.xml": lol.encode("utf-16")})
    f = the_refusal(read_workbook(bad))
    assert "customXml/item1.xml" in f.message_en and "<!ENTITY" in f.message_zh


def test_the_part_calamine_reads_is_the_part_checked(tmp_path, no_parser):
    """calamine follows _rels/.rels, and takes names in any case and with either slash: a
    harmless decoy where our scan used to look must not hide the sheet calamine reads."""
    plain = xlsx(tmp_path / "plain.xlsx")
    far = sheet_xml({1: {"A1": "x", "A99999999999": 2}})  # calamine alone aborts on this one
    decoy = relocated(plain, tmp_path / "moved.xlsx")
    decoy = rebuild(decoy, tmp_path / "decoy.xlsx", replace={"content/worksheets/sheet1.xml": far},
                    add={name: data for name, data in _members(plain).items() if name.startswith("xl/")})
    assert "limits.max_rows" in the_refusal(read_workbook(decoy)).message_en
    cased = rebuild(plain, tmp_path / "cased.xlsx", first={"XL\\Worksheets\\SHEET1.XML": far})
    assert "limits.max_rows" in the_refusal(read_workbook(cased)).message_en


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


# ================================================================== kpi diff

def _formula_book(path: Path, cached: object, *, t_str: bool = False, error_text: bool = False,
                  vba: bytes | None = None) -> Path:
    """A1 =B1 with a cached result; A2 the error #N/A (a formula's) or the text '#N/A'."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("S")
    sheet.write_formula("A1", "=B1", None, cached)
    if error_text:
        sheet.write_string("A2", "#N/A")
    else:
        sheet.write_formula("A2", "=B1", None, "#N/A")
    if vba is not None:
        project = path.with_suffix(".bin")
        project.write_bytes(vba)
        book.add_vba_project(str(project))
    book.close()
    if t_str:  # what Excel itself writes for a formula whose result is the empty text
        with zipfile.ZipFile(path) as archive:
            xml = archive.read(SHEET1)
        moved = path.with_name("t_" + path.name)
        path.rename(moved)
        replace_members(moved, path, {SHEET1: xml.replace(b'<c r="A1">', b'<c r="A1" t="str">')})
    return path


@pytest.mark.parametrize("t_str", [False, True])
def test_diff_sees_an_empty_cached_result_become_1(tmp_path, t_str):
    a = _formula_book(tmp_path / "a.xlsx", "", t_str=t_str)
    b = _formula_book(tmp_path / "b.xlsx", 1)
    changes = diff_workbooks(a, b)
    assert [c.as_json() for c in changes] == [{"sheet": "S", "cell": "A1", "kind": "value", "old": "", "new": 1}]
    assert diff_workbooks(a, a) == []


def test_diff_never_calls_an_error_equal_to_its_text(tmp_path):
    error = _formula_book(tmp_path / "a.xlsx", 1)
    text = _formula_book(tmp_path / "b.xlsx", 1, error_text=True)
    cells = load_book(error).sheets["S"].cells
    assert cells[(2, 1)].value == ExcelError("#N/A")
    values = [c for c in diff_workbooks(error, text) if c.cell == "A2" and c.kind == "value"]
    assert [c.as_json() for c in values] == [{"sheet": "S", "cell": "A2", "kind": "value",
                                              "old": {"error": "#N/A"}, "new": "#N/A"}]
    assert "#N/A → '#N/A'" in format_changes(values, "en")  # the text is quoted, the error not


def test_diff_reports_the_vba_project(tmp_path):
    plain = _formula_book(tmp_path / "plain.xlsx", 1)
    macro = _formula_book(tmp_path / "macro.xlsm", 1, vba=b"Attribute VB_Name = \"Module1\"")
    other = _formula_book(tmp_path / "other.xlsm", 1, vba=b"Attribute VB_Name = \"Module2\"")
    same = _formula_book(tmp_path / "same.xlsm", 1, vba=b"Attribute VB_Name = \"Module1\"")
    added = diff_workbooks(plain, macro)
    assert [(c.sheet, c.cell, c.kind, c.old) for c in added] == [("", "xl/vbaProject.bin", VBA, None)]
    assert len(added[0].new) == 64
    removed = diff_workbooks(macro, plain)
    assert removed[0].kind == VBA and removed[0].new is None and removed[0].old == added[0].new
    changed = diff_workbooks(macro, other)
    assert changed[0].kind == VBA and None not in (changed[0].old, changed[0].new)
    assert changed[0].old != changed[0].new
    assert diff_workbooks(macro, same) == []
    result = CliRunner().invoke(diff_command, [str(plain), str(macro)])
    assert result.exit_code == 1 and "VBA project added" in result.output and "宏" in result.output
    assert "vba 1" in result.output
    as_json = CliRunner().invoke(diff_command, [str(macro), str(other), "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)[0]["kind"] == "vba"
    report = CliRunner().invoke(diff_command, [str(macro), str(other), "--out", str(tmp_path / "r.xlsx")])
    assert report.exit_code == 1
    assert openpyxl.load_workbook(tmp_path / "r.xlsx").sheetnames == ["差异 Changes"]  # no sheet for macros
