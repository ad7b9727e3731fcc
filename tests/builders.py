"""Workbooks built the way a person fills them: openpyxl, headers typed by hand, messy values."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from pipeline.kinds import KINDS


def write_sheets(path: Path, sheets: dict[str, list[list]], *, title_rows: dict[str, list] | None = None) -> Path:
    """Write `{sheet name: rows}` with openpyxl; `title_rows` are put above a sheet's rows."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in (title_rows or {}).get(name, []):
            sheet.append(row)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def headers(kind: str, sheet: int = 0, style: str = "both") -> list[str]:
    """Header texts for a kind's sheet: `both` (bilingual), `zh` or `en`."""
    spec = KINDS[kind].tables[sheet]
    pick = {"both": lambda f: f.header, "zh": lambda f: f.zh, "en": lambda f: f.en}[style]
    return [pick(f) for f in spec.fields]


def table(kind: str, rows: list[dict], sheet: int = 0, style: str = "both") -> list[list]:
    """Header row plus rows given as dicts by field name (missing fields left blank)."""
    spec = KINDS[kind].tables[sheet]
    return [headers(kind, sheet, style)] + [[row.get(f.name) for f in spec.fields] for row in rows]


def sheet_name(kind: str, sheet: int = 0) -> str:
    return KINDS[kind].tables[sheet].name


def seed_000_inbox(folder: Path, actual_new_clients: object = 12) -> Path:
    """Seed 000's sales rep for 2026-Q3: 销售额 60% (200→210), 新客户数 30% (15→12), 投诉率 10% (2%→1.5%)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_sheets(folder / "roster.xlsx", {sheet_name("roster"): table("roster", seed_roster())})
    write_sheets(folder / "indicators.xlsx", {sheet_name("indicators"): table("indicators", seed_indicators())})
    write_sheets(folder / "agreements.xlsx", {sheet_name("agreements", 0): table("agreements", seed_role_kpis(), 0),
                                              sheet_name("agreements", 1): table("agreements", [], 1)})
    actuals = seed_actuals(new_clients=actual_new_clients)
    write_sheets(folder / "actuals.xlsx", {sheet_name("actuals"): table("actuals", actuals)})
    return folder


# ------------------------------------------------------------------------------ richer books

def write_book(path: Path, sheets: dict[str, list[list]], *, start_row: dict[str, int] | None = None,
               hidden: tuple[str, ...] = (), merges: dict[str, list[str]] | None = None,
               cells: dict[str, dict[str, object]] | None = None,
               number_formats: dict[str, dict[str, str]] | None = None,
               meta: dict[str, str] | None = None) -> Path:
    """Write a workbook as a person would leave it, with openpyxl.

    `start_row` puts a sheet's rows lower down (title rows typed in `cells` above them);
    `cells` sets single cells afterwards (`{"Sheet": {"D5": "=B5*2"}}`: a formula openpyxl
    saves without a cached value); `merges` merges ranges; `number_formats` formats cells;
    `hidden` hides sheets; `meta` adds the hidden `_meta` sheet (`{"kind": "actuals"}`).
    Rows are written cell by cell, so None leaves a cell empty and [] leaves a row blank.
    """
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        first = (start_row or {}).get(name, 1)
        for r, row in enumerate(rows, start=first):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(row=r, column=c, value=value)
        for ref, value in (cells or {}).get(name, {}).items():
            sheet[ref] = value
        for ref in (merges or {}).get(name, []):
            sheet.merge_cells(ref)
        for ref, number_format in (number_formats or {}).get(name, {}).items():
            sheet[ref].number_format = number_format
        if name in hidden:
            sheet.sheet_state = "hidden"
    if meta is not None:
        sheet = workbook.create_sheet("_meta")
        for r, (key, value) in enumerate(meta.items(), start=1):
            sheet.cell(row=r, column=1, value=key)
            sheet.cell(row=r, column=2, value=value)
        sheet.sheet_state = "hidden"
    workbook.save(path)
    return path


def seed_roster() -> list[dict]:
    return [
        {"employee_id": "S001", "name": "王经理", "department": "销售部", "position": "销售经理", "role_family": "销售"},
        {"employee_id": "S002", "name": "李销售", "department": "销售部", "position": "销售代表", "role_family": "销售",
         "manager_id": "S001", "status": "在职"},
    ]


def seed_indicators() -> list[dict]:
    return [
        {"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "category": "结果", "direction": "越高越好",
         "method": "比率", "unit": "万元", "aggregation": "求和"},
        {"indicator_id": "K2", "name": "新客户数", "dimension": "业绩", "category": "结果", "direction": "越高越好",
         "method": "比率", "unit": "个", "aggregation": "求和"},
        {"indicator_id": "K3", "name": "客户投诉率", "dimension": "业绩", "category": "过程", "direction": "越低越好",
         "method": "达标", "unit": "%", "aggregation": "平均"},
    ]


def monthly_sales_indicators(collection_rate_id: str = "K3") -> list[dict]:
    """Two sums and a mean, for runs over several months: 销售额 and 新客户数 add up, 回款率 averages."""
    return [
        {"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "direction": "越高越好", "method": "比率",
         "unit": "万元", "aggregation": "求和"},
        {"indicator_id": "K2", "name": "新客户数", "dimension": "业绩", "direction": "越高越好", "method": "比率",
         "unit": "个", "aggregation": "求和"},
        {"indicator_id": collection_rate_id, "name": "回款率", "dimension": "业绩", "direction": "越高越好",
         "method": "比率", "unit": "%", "aggregation": "平均"},
    ]


def seed_role_kpis() -> list[dict]:
    return [
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K1", "weight": "60%", "target": 200},
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K2", "weight": 30, "target": 15},
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K3", "weight": 0.1, "target": "2%"},
    ]


def seed_actuals(employees: tuple[str, ...] = ("S001", "S002"), new_clients: object = 12) -> list[dict]:
    rows = []
    for employee in employees:
        rows += [
            {"employee_id": employee, "period": "2026-Q3", "indicator_id": "K1", "actual": 210},
            {"employee_id": employee, "period": "2026-Q3", "indicator_id": "K2", "actual": new_clients},
            {"employee_id": employee, "period": "2026-Q3", "indicator_id": "K3", "actual": "1.5%"},
        ]
    return rows


def write_roster(folder: Path, rows: list[dict], name: str = "roster.xlsx") -> Path:
    return write_sheets(folder / name, {sheet_name("roster"): table("roster", rows)})


def write_indicators(folder: Path, rows: list[dict], name: str = "indicators.xlsx") -> Path:
    return write_sheets(folder / name, {sheet_name("indicators"): table("indicators", rows)})


def write_agreements(folder: Path, role_rows: list[dict], employee_rows: list[dict] | None = None,
                     name: str = "agreements.xlsx") -> Path:
    return write_sheets(folder / name, {sheet_name("agreements", 0): table("agreements", role_rows, 0),
                                        sheet_name("agreements", 1): table("agreements", employee_rows or [], 1)})


def write_actuals(folder: Path, rows: list[dict], name: str = "actuals.xlsx") -> Path:
    return write_sheets(folder / name, {sheet_name("actuals"): table("actuals", rows)})


def write_ratings(folder: Path, rows: list[dict], name: str = "ratings.xlsx") -> Path:
    return write_sheets(folder / name, {sheet_name("ratings"): table("ratings", rows)})


# --------------------------------------------------------------------------- generic inboxes

INBOX_TABLES = {  # keyword -> (kind, sheet index)
    "roster": ("roster", 0),
    "indicators": ("indicators", 0),
    "role_kpis": ("agreements", 0),
    "employee_kpis": ("agreements", 1),
    "adjustments": ("agreements", 2),
    "actuals": ("actuals", 0),
    "ratings": ("ratings", 0),
    "dept_targets": ("dept_targets", 0),
}


def write_inbox(folder: Path, **tables: list[dict]) -> Path:
    """One workbook per kind from rows given as dicts by field name (keywords: INBOX_TABLES).

    Agreements always get both sheets (an empty one where no rows are given).
    """
    folder.mkdir(parents=True, exist_ok=True)
    unknown = set(tables) - set(INBOX_TABLES)
    if unknown:
        raise TypeError(f"unknown tables: {sorted(unknown)}")
    by_kind: dict[str, dict[int, list[dict]]] = {}
    for keyword, rows in tables.items():
        kind, sheet = INBOX_TABLES[keyword]
        by_kind.setdefault(kind, {})[sheet] = list(rows)
    for kind, sheets in by_kind.items():
        if kind == "agreements":
            sheets = {**sheets, 0: sheets.get(0, []), 1: sheets.get(1, [])}
        write_sheets(folder / f"{kind}.xlsx",
                     {sheet_name(kind, index): table(kind, rows, index) for index, rows in sorted(sheets.items())})
    return folder


def memory_inbox(**tables: list[dict]) -> list:
    """The same tables as `write_inbox`, as the reader would return them, without any Excel file.

    Values go through the real normalisation and validation; row numbers start at 2 under the
    header, column letters follow the template's field order.
    """
    import pandas as pd
    from openpyxl.utils import get_column_letter

    from pipeline.reader import Table, WorkbookRead

    by_kind: dict[str, WorkbookRead] = {}
    for keyword, rows in tables.items():
        kind, index = INBOX_TABLES[keyword]
        spec = KINDS[kind].tables[index]
        workbook = by_kind.setdefault(kind, WorkbookRead(path=Path(f"{kind}.xlsx"), file=f"{kind}.xlsx",
                                                         kind=kind, version="1"))
        names = [f.name for f in spec.fields]
        frame = pd.DataFrame([[row.get(n) for n in names] for row in rows], columns=names, dtype=object)
        frame["_row"] = range(2, len(frame) + 2)
        letters = {n: get_column_letter(i + 1) for i, n in enumerate(names)}
        workbook.tables.append(Table(spec=spec, file=workbook.file, sheet=spec.name, frame=frame, letters=letters))
    return list(by_kind.values())


def typed_inputs(**tables: list[dict]):
    """A validated `Inputs` built straight from typed rows (codes, shares, canonical periods).

    Skips reading and validation (fast enough for property tests): rows must already be what
    validation would let through. Row numbers start at 2; every table is its own "file".
    """
    import pandas as pd
    from openpyxl.utils import get_column_letter

    from pipeline.reader import Table
    from pipeline.validate import Inputs

    frames, tables_read = {}, []
    for keyword, (kind, index) in INBOX_TABLES.items():
        spec = KINDS[kind].tables[index]
        names = [f.name for f in spec.fields]
        rows = list(tables.get(keyword, []))
        data = {}
        for f in spec.fields:
            values = [row.get(f.name, f.default) for row in rows]
            data[f.name] = pd.Series(values, dtype="float64" if f.type in ("number", "weight") else object)
        frame = pd.DataFrame(data)
        file = f"{keyword}.xlsx"
        frame["_file"], frame["_sheet"] = file, spec.name
        frame["_row"] = pd.Series(range(2, len(rows) + 2), dtype="int64")
        frame["_table"] = pd.Series([len(tables_read)] * len(rows), dtype="int64")
        frames[spec.name] = frame
        letters = {n: get_column_letter(i + 1) for i, n in enumerate(names)}
        tables_read.append(Table(spec=spec, file=file, sheet=spec.name, frame=frame, letters=letters))
    for spec in KINDS["weights"].tables:
        frames.setdefault(spec.name, pd.DataFrame(columns=[f.name for f in spec.fields]))
    return Inputs(workbooks=[], tables=tables_read, frames=frames, matrices=[])


# --------------------------------------------------------------------------- hostile files

def replace_members(source: Path, target: Path, replace: dict[str, bytes] | None = None,
                    add: dict[str, bytes] | None = None) -> Path:
    """A copy of the zip `source` with some members' bytes replaced and others added."""
    import zipfile

    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info)))
        for name, data in add.items():
            zout.writestr(name, data)
    return target


SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def sheet_xml(rows: dict[int, dict[str, object]] | str, dimension: str | None = None,
              prolog: str = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>') -> bytes:
    """Worksheet XML by hand: {row: {ref: value}} (str → inline string) or raw <sheetData> body."""
    if isinstance(rows, str):
        body = rows
    else:
        parts = []
        for r, cells in sorted(rows.items()):
            cell_xml = "".join(
                f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>' if isinstance(value, str)
                else f'<c r="{ref}"><v>{value}</v></c>' for ref, value in cells.items())
            parts.append(f'<row r="{r}">{cell_xml}</row>')
        body = "".join(parts)
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return f'{prolog}<worksheet xmlns="{SHEET_NS}">{dim}<sheetData>{body}</sheetData></worksheet>'.encode()


def ole2_file(path: Path, streams: list[str], size: int = 8192) -> Path:
    """A small OLE2 compound file whose directory names `streams` (no real stream content):
    what an encrypted .xlsx (`EncryptionInfo`, `EncryptedPackage`) or a legacy .xls
    (`Workbook`) looks like to a reader that only looks at names."""
    import struct

    sector = 512
    header = bytearray(sector)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 0x2C, 1)  # one FAT sector
    struct.pack_into("<I", header, 0x30, 1)  # directory in sector 1
    struct.pack_into("<I", header, 0x38, 4096)
    struct.pack_into("<III", header, 0x3C, 0xFFFFFFFE, 0, 0xFFFFFFFE)
    struct.pack_into("<I", header, 0x4C, 0)  # DIFAT[0]: the FAT is sector 0
    for i in range(1, 109):
        struct.pack_into("<I", header, 0x4C + 4 * i, 0xFFFFFFFF)
    fat = bytearray(b"\xff" * sector)
    struct.pack_into("<II", fat, 0, 0xFFFFFFFD, 0xFFFFFFFE)
    directory = bytearray()
    for index, (name, kind) in enumerate([("Root Entry", 5)] + [(s, 2) for s in streams]):
        entry = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\0\0"
        entry[0:len(encoded)] = encoded
        struct.pack_into("<HBB", entry, 64, len(encoded), kind, 1)
        struct.pack_into("<III", entry, 68, 0xFFFFFFFF, index + 1 if index + 1 <= len(streams) and index else 0xFFFFFFFF,
                         1 if index == 0 and streams else 0xFFFFFFFF)
        struct.pack_into("<I", entry, 116, 0xFFFFFFFE)
        directory += entry
    directory += b"\0" * (-len(directory) % sector)
    data = bytes(header) + bytes(fat) + bytes(directory)
    path.write_bytes(data + b"\0" * max(size - len(data), 0))
    return path


def _split_label(needle: str) -> tuple[str, str]:
    """A bilingual label `姓名 Name`: the Chinese message shows `姓名`, the English one `Name`."""
    head, _, tail = needle.partition(" ")
    if tail and any("\u4e00" <= ch <= "\u9fff" for ch in head) and tail.isascii():
        return head, tail
    return needle, needle


def assert_messages(f, *needles: str) -> None:
    """Both messages are there and mention each value or column (in its own language)."""
    assert f.message_zh.strip() and f.message_en.strip()
    for needle in needles:
        zh, en = _split_label(needle)
        assert zh in f.message_zh, (zh, f.message_zh)
        assert en in f.message_en, (en, f.message_en)
