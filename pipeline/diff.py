"""`kpi diff`: what changed between two workbooks, cell by cell, for auditors.

Values and formulas are compared separately, because an auditor must see a changed formula even
when it still gives the same number (and a changed number even when the formula is the same).

Conventions (the `--json` contract, one object per change):

- ``{"sheet", "cell", "kind", "old", "new"}``; ``kind`` is one of ``value``, ``formula``,
  ``added``, ``removed``, ``vba``. ``old`` is workbook A's side, ``new`` workbook B's.
- ``value``: the cell's value differs (for formula cells, their cached values; skipped when a
  formula was never calculated, i.e. stores no ``<v>``: an empty ``<v>`` is the cached result
  ``""``, which differs from ``1``). A cell filled on one side only is a value change with the
  other side ``null``. Empty string and blank are equal; ``4`` equals ``4.0``; numbers are equal
  within ``tolerance`` (absolute, default exact); TRUE is not 1; strings compare exactly; an
  error value is ``{"error": "#N/A"}``, never equal to the text ``"#N/A"``.
- ``formula``: the formula text differs (ignoring the leading ``=`` and whitespace outside
  quotes), or one side is a formula and the other a constant; ``old``/``new`` are the formula
  texts (with ``=``) or the constant. A formula whose text and cached value both changed gives
  two entries, formula first.
- ``added``/``removed`` with ``cell == ""``: a whole sheet, ``old``/``new`` its name. A renamed
  sheet is one ``removed`` plus one ``added`` (no cell changes for it): names are the only
  identity a sheet has.
- With ``by_key`` only: ``added``/``removed`` with ``cell`` the row's range (``"A7:H7"``, on B's
  side for added, A's for removed) and ``old``/``new`` the row's values as a list. Cells of
  matched rows are reported at B's reference.
- ``vba`` with ``sheet == ""`` and ``cell`` the macro project's part (``xl/vbaProject.bin``):
  the workbooks' VBA projects differ; ``old``/``new`` are the SHA-256 of each side's project,
  ``null`` on the side without one (added, removed or changed; macros are never run or read).
- Order: sheets in A's order, then sheets only in B; within a sheet row by row; the VBA
  project last.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import math
import re
import unicodedata
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import click
from defusedxml import ElementTree as SafeET
from openpyxl.formula.translate import Translator
from openpyxl.reader.strings import read_string_table
from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format
from openpyxl.utils.cell import get_column_letter, range_boundaries
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from pipeline.findings import BilingualError
from pipeline.safety import (
    Limits,
    PackageParts,
    UnreadableInput,
    assert_defusedxml_in_force,
    openpyxl_input,
    part_key,
    resolve_target,
    sheet_parts,
    utf8_xml,
)
from pipeline.writers.common import display_width, fit_width, new_workbook, safe_sheet_name

MAX_UNCOMPRESSED = 200 * 1024 * 1024  # bytes a workbook may inflate to before we refuse it
HEADER_SCAN_ROWS = 20

VALUE, FORMULA, ADDED, REMOVED, VBA = "value", "formula", "added", "removed", "vba"
KINDS = (VALUE, FORMULA, ADDED, REMOVED)  # the kinds every summary counts; `vba` only when found

# The keys our own templates identify rows by; any other header text is accepted as is.
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "employee_id": ("employee_id", "employee id", "员工编号"),
    "indicator_id": ("indicator_id", "indicator id", "指标编号"),
    "period": ("period", "考核周期"),
}
_KEY_SHORT = {"employee": "employee_id", "员工": "employee_id", "indicator": "indicator_id",
              "指标": "indicator_id", "周期": "period"}


class DiffInputError(BilingualError):
    """A workbook we cannot (or will not) read; the CLI turns it into exit 2, never a traceback."""

    def __init__(self, path: Any, reason_zh: str, reason_en: str) -> None:
        self.path, self.reason_zh, self.reason_en = str(path), reason_zh, reason_en
        super().__init__(f"无法读取 {self.path}:{reason_zh}", f"Cannot read {self.path}: {reason_en}")


@dataclass(frozen=True)
class CellChange:
    """One difference. `a_ref`/`b_ref` locate it on each side for the xlsx report only
    (None: same as `cell`; "": absent on that side); they are not part of equality or JSON."""

    sheet: str
    cell: str
    kind: str
    old: Any
    new: Any
    a_ref: str | None = field(default=None, compare=False, repr=False)
    b_ref: str | None = field(default=None, compare=False, repr=False)

    def as_json(self) -> dict:
        return {"sheet": self.sheet, "cell": self.cell, "kind": self.kind,
                "old": _jsonable(self.old), "new": _jsonable(self.new)}


@dataclass(frozen=True)
class ExcelError:
    """An error value (`#N/A`, `#DIV/0!`): never equal to the text that spells it."""

    code: str

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True)
class _Cell:
    formula: str | None  # formula text with its '=', None for a constant
    value: Any  # the constant, or the formula's cached value ("" when it cached an empty
    # result, None when it was never calculated)


@dataclass
class SheetData:
    name: str
    cells: dict[tuple[int, int], _Cell]  # (row, col), 1-based; non-empty cells only

    # cached: removed/added rows ask for the sheet's width once per row
    @cached_property
    def max_row(self) -> int:
        return max((r for r, _ in self.cells), default=0)

    @cached_property
    def max_col(self) -> int:
        return max((c for _, c in self.cells), default=0)

    @cached_property
    def min_col(self) -> int:
        return min((c for _, c in self.cells), default=1)


@dataclass
class Book:
    """A workbook's cells, each with its formula and its cached value, read in one pass."""

    path: str
    sheets: dict[str, SheetData]  # in workbook order, hidden sheets included
    vba: tuple[str, str] | None = None  # (part name, SHA-256) of its VBA project, if any


# ---------------------------------------------------------------------------------------------
# reading


def load_book(path: Any, *, max_uncompressed: int = MAX_UNCOMPRESSED) -> Book:
    """Read a workbook defensively: sniff the bytes and bound the zip before anything parses
    it; hidden sheets are included; every parser failure becomes a DiffInputError.

    The sheets are streamed, cell by cell, from one snapshot of the file: no openpyxl
    workbook is built, so merged ranges are never bound (one `B1:B1048576` range costs
    openpyxl minutes) and the stylesheet is read only for which formats are dates.
    Packages laid out by other programs (backslashes, a relocated workbook part) are read
    through `openpyxl_input`, as the reader reads them."""
    p = Path(path)
    if not p.exists():
        raise DiffInputError(p, "文件不存在。", "the file does not exist.")
    if not p.is_file():
        raise DiffInputError(p, "这不是一个文件。", "this is not a file.")
    assert_defusedxml_in_force()  # openpyxl's parsers must refuse XML entity expansion
    limits = Limits(max_file_bytes=max_uncompressed, max_uncompressed_bytes=max_uncompressed)
    try:  # the project's shared pre-checks: OLE2 (encrypted/.xls), not a zip, bombs, .xlsb
        snapshot = p.read_bytes() if p.stat().st_size <= limits.max_file_bytes else None
        data = openpyxl_input(p, limits, data=snapshot, merges=False).data
    except UnreadableInput as exc:
        raise DiffInputError(p, exc.reason_zh, exc.reason_en) from None
    except OSError as exc:
        raise DiffInputError(p, f"读取失败({exc.strerror or exc})。",
                             f"reading failed ({exc.strerror or exc}).") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about values it cannot convert
            sheets, vba = _read_package(data)
    except Exception as exc:  # any parser failure on a user's file is "unreadable", not a crash
        detail = f"{type(exc).__name__}: {exc}"[:300]
        raise DiffInputError(p, f"文件内容已损坏或不是有效的工作簿({detail})。",
                             f"the content is damaged or not a valid workbook ({detail}).") from None
    return Book(str(path), sheets, vba)


_REL_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"


def _read_package(data: bytes) -> tuple[dict[str, SheetData], tuple[str, str] | None]:
    """Every sheet's cells (chartsheets have none), and the VBA project's part and hash."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = PackageParts(archive)
        names = sheet_parts(archive, parts)
        workbook = SafeET.fromstring(parts.read(archive, "xl/workbook.xml"))
        date1904 = any(_local(e.tag) == "workbookPr" and str(e.get("date1904", "")).lower() in ("1", "true")
                       for e in workbook.iter())
        related = {}
        for rel in SafeET.fromstring(parts.read(archive, "xl/_rels/workbook.xml.rels")):
            kind = str(rel.get("Type", "")).rsplit("/", 1)[-1]
            if rel.get("TargetMode") != "External" and kind not in related:
                related[kind] = resolve_target("xl", rel.get("Target", ""))
        strings_part = parts.get(related.get("sharedStrings") or "xl/sharedStrings.xml")
        strings = []
        if strings_part is not None:
            with archive.open(strings_part) as source:
                strings = read_string_table(source)
        styles_part = parts.get(related.get("styles") or "xl/styles.xml")
        dates, durations = _date_styles(utf8_xml(archive.read(styles_part))) if styles_part else (set(), set())
        epoch = CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900
        sheets: dict[str, SheetData] = {}
        for name, part in names.items():
            if part_key(part).split("/")[1:2] != ["worksheets"]:
                sheets[name] = SheetData(name, {})  # a chartsheet (or dialog sheet): no cells
                continue
            member = parts.get(part)
            if member is None:
                raise KeyError(f"sheet {name!r}: no part {part}")
            with archive.open(member) as source:
                parser = _CellParser(source, strings, epoch=epoch, date_formats=dates, timedelta_formats=durations)
                sheets[name] = SheetData(name, _sheet_cells(parser))
        projects = sorted((key, info) for key, info in parts.by_key.items() if key.rsplit("/", 1)[-1] == "vbaproject.bin")
        vba = None
        if projects:
            digest = hashlib.sha256()
            for _, info in projects:
                digest.update(archive.read(info))
            vba = (projects[0][1].filename.replace("\\", "/"), digest.hexdigest())
    return sheets, vba


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


_PREFIX = rb"(?:[A-Za-z_][\w.\-]*:)?"
_NUM_FMT = re.compile(rb"<" + _PREFIX + rb"numFmt\b([^>]*)>")
_CELL_XFS = re.compile(rb"<(" + _PREFIX + rb")cellXfs\b[^>]*>(.*?)</\1cellXfs\s*>", re.S)
_XF = re.compile(rb"<" + _PREFIX + rb"xf\b([^>]*)>")
_ATTRIBUTE = re.compile(rb"""([\w:.\-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _attributes(tag: bytes) -> dict[str, str]:
    return {name.decode("latin-1"): html.unescape((a if b is None else b).decode("utf-8", "replace"))
            for name, a, b in (m.groups() for m in _ATTRIBUTE.finditer(tag))}


def _date_styles(styles_xml: bytes) -> tuple[set[int], set[int]]:
    """The cell formats (indices into cellXfs) that show dates, and durations: what openpyxl
    would find, without building its stylesheet (tens of thousands of styles cost it half a
    minute). The part's prolog was checked (no DTD): its tags are read as they are."""
    custom: dict[int, str] = {}
    for match in _NUM_FMT.finditer(styles_xml):
        attributes = _attributes(match.group(1))
        try:
            custom[int(attributes.get("numFmtId", ""))] = attributes.get("formatCode", "")
        except ValueError:
            continue
    block = _CELL_XFS.search(styles_xml)
    formats = []
    for match in _XF.finditer(block.group(2) if block else b""):
        try:
            formats.append(int(_attributes(match.group(1)).get("numFmtId", 0)))
        except ValueError:
            formats.append(0)
    dates, durations = set(), set()
    for index, number_format in enumerate(formats):
        code = custom[number_format] if number_format in custom else builtin_format_code(number_format)
        if code:
            if is_date_format(code):
                dates.add(index)
            if is_timedelta_format(code):
                durations.add(index)
    return dates, durations


_FORMULA_TAG = f"{{{SHEET_MAIN_NS}}}f"
_ROW_TAG = f"{{{SHEET_MAIN_NS}}}row"
_VALUE_TAG = f"{{{SHEET_MAIN_NS}}}v"


class _CellParser(WorkSheetParser):
    """openpyxl's cell parser, reading each formula cell's cached value in the same pass and
    nothing of the sheet but its rows (no merged ranges, validations or formats built)."""

    def parse(self):
        depth = 0  # inside a <row>: its cells are read when it ends
        for event, element in iterparse(self.source, events=("start", "end")):
            if element.tag == _ROW_TAG:
                if event == "start":
                    depth += 1
                    continue
                depth -= 1
                row = self.parse_row(element)
                element.clear()
                yield row
            elif event == "end" and not depth:
                element.clear()

    def parse_cell(self, element):
        cell = super().parse_cell(element)
        if cell["data_type"] == "f":
            counter = self.col_counter  # a cell without a reference is counted once
            element.remove(element.find(_FORMULA_TAG))
            cached = super().parse_cell(element)
            self.col_counter = counter
            value = cached["value"]
            if value is None and element.find(_VALUE_TAG) is not None:
                value = ""  # Excel caches an empty text result as an empty <v>
            elif cached["data_type"] == "e" and value is not None:
                value = ExcelError(str(value))
            cell["cached"] = value
        return cell


def _sheet_cells(parser: _CellParser) -> dict[tuple[int, int], _Cell]:
    """Non-empty cells of one sheet, from the cells the XML holds (a stray formatted cell at
    XFD1048576 does not make us walk a million empty ones)."""
    cells: dict[tuple[int, int], _Cell] = {}
    for _, row in parser.parse():
        for cell in row:
            pos = (cell["row"], cell["column"])
            raw = cell["value"]
            if cell["data_type"] == "f" or isinstance(raw, (ArrayFormula, DataTableFormula)):
                cached = cell.get("cached")
                cells[pos] = _Cell(_formula_text(raw), cached if cached == "" else _norm_value(cached))
                continue
            if cell["data_type"] == "e" and raw is not None:
                raw = ExcelError(str(raw))
            value = _norm_value(raw)
            if value is not None:
                cells[pos] = _Cell(None, value)
    return dict(sorted(cells.items()))


def _formula_text(raw: Any) -> str:
    if isinstance(raw, ArrayFormula):
        return str(raw.text or "")
    if isinstance(raw, DataTableFormula):
        args = ",".join(str(a) for a in (raw.r1, raw.r2) if a)
        return f"{{=TABLE({args})}}"
    return str(raw)


# ---------------------------------------------------------------------------------------------
# comparing values and formulas


def _norm_value(value: Any) -> Any:
    """Blank-like values collapse to None; a date is a midnight datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_equal(a: Any, b: Any, tolerance: float = 0.0) -> bool:
    """Excel-minded equality: 4 == 4.0, numbers within `tolerance`, TRUE is not 1."""
    a, b = _norm_value(a), _norm_value(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        if a == b:
            return True
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return abs(a - b) <= tolerance
    return type(a) is type(b) and a == b


def normalize_formula(text: str) -> str:
    """Drop the leading '=' and whitespace outside quotes; a space between two references
    (Excel's intersection operator) is kept as one space."""
    body = text.strip()
    if body.startswith("{=") and body.endswith("}"):
        body = body[2:-1]
    elif body.startswith("="):
        body = body[1:]
    out: list[str] = []
    quote: str | None = None
    pending_space = False
    for ch in body:
        if quote:
            out.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch.isspace():
            pending_space = True
            continue
        if pending_space and out and _ref_end(out[-1]) and _ref_start(ch):
            out.append(" ")
        pending_space = False
        if ch in "\"'":
            quote = ch
        out.append(ch)
    return "".join(out)


def _ref_end(ch: str) -> bool:
    return ch.isalnum() or ch in "$_)'."


def _ref_start(ch: str) -> bool:
    return ch.isalnum() or ch in "$_('"


def _formulas_equal(fa: str, fb: str, a_ref: str | None, b_ref: str | None) -> bool:
    if normalize_formula(fa) == normalize_formula(fb):
        return True
    if a_ref and b_ref and a_ref != b_ref:  # a moved row: relative references move with it
        try:
            moved = Translator(fa, origin=a_ref).translate_formula(b_ref)
        except Exception:  # openpyxl's tokenizer rejects some exotic formulas; compare as text
            return False
        return normalize_formula(moved) == normalize_formula(fb)
    return False


def _compare_cells(ca: _Cell | None, cb: _Cell | None, tolerance: float,
                   a_ref: str | None = None, b_ref: str | None = None) -> list[tuple[str, Any, Any]]:
    """(kind, old, new) for one pair of cells: a formula entry, then a value entry."""
    fa, va = (ca.formula, ca.value) if ca else (None, None)
    fb, vb = (cb.formula, cb.value) if cb else (None, None)
    out: list[tuple[str, Any, Any]] = []
    if fa is not None or fb is not None:
        if fa is None or fb is None or not _formulas_equal(fa, fb, a_ref, b_ref):
            out.append((FORMULA, fa if fa is not None else va, fb if fb is not None else vb))
    uncached = (fa is not None and va is None) or (fb is not None and vb is None)
    if not uncached and not values_equal(va, vb, tolerance):
        out.append((VALUE, va, vb))
    return out


# ---------------------------------------------------------------------------------------------
# diffing


def diff_workbooks(a: Any, b: Any, *, tolerance: float = 0.0,
                   by_key: list[str] | None = None) -> list[CellChange]:
    """Every difference between workbooks `a` and `b` (paths or `Book`s), in report order.

    Raises DiffInputError if either cannot be read."""
    book_a = a if isinstance(a, Book) else load_book(a)
    book_b = b if isinstance(b, Book) else load_book(b)
    keys = _expand_keys(by_key)
    changes: list[CellChange] = []
    for name, sheet_a in book_a.sheets.items():
        sheet_b = book_b.sheets.get(name)
        if sheet_b is None:
            changes.append(CellChange(name, "", REMOVED, name, None))
            continue
        plan = _key_plan(sheet_a, sheet_b, keys) if keys else None
        if plan is None:
            changes.extend(_diff_cells(sheet_a, sheet_b, tolerance))
        else:
            changes.extend(_diff_by_key(sheet_a, sheet_b, tolerance, *plan))
    for name in book_b.sheets:
        if name not in book_a.sheets:
            changes.append(CellChange(name, "", ADDED, None, name))
    hash_a, hash_b = (book.vba[1] if book.vba else None for book in (book_a, book_b))
    vba = book_b.vba or book_a.vba
    if hash_a != hash_b and vba is not None:  # the macros themselves: compared by hash, never run or read
        changes.append(CellChange("", vba[0], VBA, hash_a, hash_b))
    return changes


def keyed_sheets(a: Book, b: Book, by_key: list[str] | None) -> list[str]:
    """Sheets (in both books) whose rows `by_key` can match; the others are diffed by cell."""
    keys = _expand_keys(by_key)
    if not keys:
        return []
    return [name for name, sheet in a.sheets.items()
            if name in b.sheets and _key_plan(sheet, b.sheets[name], keys) is not None]


def _diff_cells(sa: SheetData, sb: SheetData, tolerance: float,
                rows: tuple[int, int] | None = None) -> list[CellChange]:
    """Cell-by-cell at the same address; `rows` = (last A row, last B row) limits the region."""
    cells_a, cells_b = sa.cells, sb.cells
    if rows is not None:
        cells_a = {p: c for p, c in cells_a.items() if p[0] <= rows[0]}
        cells_b = {p: c for p, c in cells_b.items() if p[0] <= rows[1]}
    out = []
    for pos in sorted(cells_a.keys() | cells_b.keys()):
        ref = f"{get_column_letter(pos[1])}{pos[0]}"
        for kind, old, new in _compare_cells(cells_a.get(pos), cells_b.get(pos), tolerance):
            out.append(CellChange(sa.name, ref, kind, old, new))
    return out


def _expand_keys(by_key: Iterable[str] | None) -> list[str]:
    keys: list[str] = []
    for item in by_key or []:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            if _norm_text(part) in ("all", "default", "全部"):
                keys.extend(KEY_ALIASES)
            else:
                keys.append(part)
    return list(dict.fromkeys(keys))


def _norm_text(text: Any) -> str:
    """Header text for matching: NFKC, case-folded, '_'/'-' as spaces, whitespace collapsed."""
    norm = unicodedata.normalize("NFKC", str(text)).casefold().replace("_", " ").replace("-", " ")
    return " ".join(norm.split())


def _key_patterns(key: str) -> tuple[str, ...]:
    norm = _norm_text(key)
    canonical = _KEY_SHORT.get(norm)
    for name, aliases in KEY_ALIASES.items():
        if norm in {_norm_text(a) for a in aliases}:
            canonical = name
    aliases = KEY_ALIASES[canonical] if canonical else (key,)
    return tuple(_norm_text(a) for a in aliases)


def _header_candidates(sheet: SheetData) -> list[tuple[int, dict[int, str]]]:
    """Rows among the first 20 whose cells are mostly non-empty text: possible header rows."""
    if not sheet.cells:
        return []
    first = min(r for r, _ in sheet.cells)
    rows: dict[int, dict[int, Any]] = {}
    for (r, c), cell in sheet.cells.items():
        if r < first + HEADER_SCAN_ROWS:
            rows.setdefault(r, {})[c] = cell
    found = []
    for r in sorted(rows):
        span = max(rows[r]) - min(rows[r]) + 1
        texts = {c: cell.value for c, cell in rows[r].items()
                 if cell.formula is None and isinstance(cell.value, str) and cell.value.strip()}
        if len(texts) >= 2 and len(texts) * 2 >= span and len(texts) * 2 > len(rows[r]):
            found.append((r, {c: _norm_text(t) for c, t in texts.items()}))
    return found


def _find_key_columns(header: dict[int, str], keys: list[str]) -> dict[str, int]:
    """key -> column for each key found in this header (exact text first, then containment)."""
    found: dict[str, int] = {}
    for key in keys:
        patterns = _key_patterns(key)
        exact = [c for c, h in sorted(header.items()) if h in patterns]
        partial = [c for c, h in sorted(header.items()) if any(p in h for p in patterns)]
        column = next(iter(exact or partial), None)
        if column is not None and column not in found.values():
            found[key] = column
    return found


def _key_plan(sa: SheetData, sb: SheetData, keys: list[str]):
    """(header row A, header row B, key columns A, key columns B) or None to diff cell by cell."""
    for row_a, header_a in _header_candidates(sa):
        cols_a = _find_key_columns(header_a, keys)
        if not cols_a:
            continue
        for row_b, header_b in _header_candidates(sb):
            cols_b = _find_key_columns(header_b, keys)
            common = [k for k in keys if k in cols_a and k in cols_b]
            if common:
                return (row_a, row_b, [cols_a[k] for k in common], [cols_b[k] for k in common])
        return None
    return None


def _key_value(cell: _Cell | None) -> Any:
    if cell is None:
        return None
    value = cell.value if cell.value is not None else cell.formula
    if isinstance(value, str):
        return unicodedata.normalize("NFKC", value).strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _rows_by_key(sheet: SheetData, header_row: int, key_cols: list[int]) -> dict[tuple, int]:
    """Data rows (below the header, not blank) keyed by (key values, occurrence), in order."""
    rows = sorted({r for r, _ in sheet.cells if r > header_row})
    seen: Counter = Counter()
    keyed: dict[tuple, int] = {}
    for r in rows:
        key = tuple(_key_value(sheet.cells.get((r, c))) for c in key_cols)
        keyed[(key, seen[key])] = r
        seen[key] += 1
    return keyed


def _column_ids(sheet: SheetData, header_row: int) -> dict[tuple, int]:
    """Column identity (header text and occurrence; position when the header is blank) -> col."""
    header = {c: _norm_text(cell.value) for (r, c), cell in sheet.cells.items()
              if r == header_row and cell.value is not None}
    columns = sorted({c for _, c in sheet.cells} | set(header))
    seen: Counter = Counter()
    ids: dict[tuple, int] = {}
    for c in columns:
        text = header.get(c)
        if text:
            ids[("h", text, seen[text])] = c
            seen[text] += 1
        else:
            ids[("#", c, 0)] = c
    return ids


def _row_values(sheet: SheetData, row: int) -> list[Any]:
    values = []
    for c in range(sheet.min_col, sheet.max_col + 1):
        cell = sheet.cells.get((row, c))
        values.append(None if cell is None else (cell.value if cell.value is not None else cell.formula))
    return values


def _row_range(sheet: SheetData, row: int) -> str:
    return f"{get_column_letter(sheet.min_col)}{row}:{get_column_letter(sheet.max_col)}{row}"


def _diff_by_key(sa: SheetData, sb: SheetData, tolerance: float, header_a: int, header_b: int,
                 keys_a: list[int], keys_b: list[int]) -> list[CellChange]:
    """Rows matched by key: an inserted row is one `added`, not a cascade of changed cells."""
    out = _diff_cells(sa, sb, tolerance, rows=(header_a, header_b))
    rows_a = _rows_by_key(sa, header_a, keys_a)
    rows_b = _rows_by_key(sb, header_b, keys_b)
    cols_a, cols_b = _column_ids(sa, header_a), _column_ids(sb, header_b)
    column_pairs: list[tuple[int | None, int | None]] = [(cols_a.get(i), c) for i, c in cols_b.items()]
    column_pairs += [(c, None) for i, c in cols_a.items() if i not in cols_b]

    # A removed row is listed just before the B row that follows it in A's order.
    anchor: dict[int, float] = {}
    next_b: float = math.inf
    for key, ra in reversed(list(rows_a.items())):
        if key in rows_b:
            next_b = rows_b[key]
        else:
            anchor[ra] = next_b
    groups: list[tuple[tuple, list[CellChange]]] = []
    for key, ra in rows_a.items():
        if key not in rows_b:
            ref = _row_range(sa, ra)
            groups.append(((anchor[ra], 0, ra), [CellChange(
                sa.name, ref, REMOVED, _row_values(sa, ra), None, a_ref=ref, b_ref="")]))
    for key, rb in rows_b.items():
        ra = rows_a.get(key)
        if ra is None:
            ref = _row_range(sb, rb)
            groups.append(((rb, 1, 0), [CellChange(
                sb.name, ref, ADDED, None, _row_values(sb, rb), a_ref="", b_ref=ref)]))
            continue
        row_changes = []
        for col_a, col_b in column_pairs:
            ref_a = f"{get_column_letter(col_a)}{ra}" if col_a else ""
            ref_b = f"{get_column_letter(col_b)}{rb}" if col_b else ""
            found = _compare_cells(sa.cells.get((ra, col_a)) if col_a else None,
                                   sb.cells.get((rb, col_b)) if col_b else None,
                                   tolerance, ref_a or None, ref_b or None)
            for kind, old, new in found:
                row_changes.append(CellChange(sb.name, ref_b or ref_a, kind, old, new,
                                              a_ref=ref_a, b_ref=ref_b))
        if row_changes:
            groups.append(((rb, 1, ra), row_changes))
    groups.sort(key=lambda g: g[0])
    for _, group in groups:
        out.extend(group)
    return out


# ---------------------------------------------------------------------------------------------
# presenting


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, ExcelError):
        return {"error": value.code}
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


_KIND_LABELS = {
    VALUE: ("值", "value"), FORMULA: ("公式", "formula"),
    ADDED: ("新增", "added"), REMOVED: ("删除", "removed"), VBA: ("宏", "vba"),
}


def _say(lang: str, zh: str, en: str) -> str:
    return {"zh": zh, "en": en}.get(lang, f"{zh} / {en}")


def _kind_label(kind: str, lang: str) -> str:
    zh, en = _KIND_LABELS.get(kind, (kind, kind))
    return {"zh": zh, "en": en}.get(lang, f"{zh} {en}")


def _show(value: Any, lang: str, limit: int = 60) -> str:
    if value is None:
        return _say(lang, "(空)", "(empty)") if lang != "both" else "(空 empty)"
    if isinstance(value, (list, tuple)):
        text = " | ".join("" if v is None else _show(v, lang, limit) for v in value)
    elif isinstance(value, ExcelError):
        text = value.code  # unquoted: text is shown in quotes
    elif isinstance(value, str):
        text = "'" + value.replace("\n", "\\n") + "'"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, (dt.datetime, dt.date, dt.time)):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _location(change: CellChange) -> str:
    if change.kind == VBA:
        return change.cell
    sheet = change.sheet
    if any(not (ch.isalnum() or ch == "_") for ch in sheet):
        sheet = "'" + sheet.replace("'", "''") + "'"
    return f"{sheet}!{change.cell}" if change.cell else f"[{change.sheet}]"


def format_changes(changes: list[CellChange], lang: str = "both") -> str:
    """A screen table, one line per change (`Sheet!B4  value  4 → 14`), then counts per kind."""
    if not changes:
        return _say(lang, "两个工作簿相同。", "The workbooks are identical.")
    rows = [(_location(c), _kind_label(c.kind, lang), c) for c in changes]
    where_w = max(display_width(r[0]) for r in rows)
    kind_w = max(display_width(r[1]) for r in rows)
    lines = []
    for where, kind, change in rows:
        if change.kind == VBA:
            detail = _vba_detail(change, lang)
        elif change.kind in (ADDED, REMOVED) and not change.cell:
            detail = _say(lang, "整个工作表", "whole sheet")
        elif change.kind == ADDED:
            detail = "→ " + _show(change.new, lang, 100)
        elif change.kind == REMOVED:
            detail = _show(change.old, lang, 100) + " →"
        else:
            detail = f"{_show(change.old, lang)} → {_show(change.new, lang)}"
        pad_where = " " * (where_w - display_width(where))
        pad_kind = " " * (kind_w - display_width(kind))
        lines.append(f"{where}{pad_where}  {kind}{pad_kind}  {detail}")
    counts = Counter(c.kind for c in changes)
    kinds = KINDS + ((VBA,) if counts[VBA] else ())
    zh = f"共 {len(changes)} 处差异:" + ",".join(
        f"{_KIND_LABELS[k][0]} {counts[k]}" for k in kinds)
    en = f"{len(changes)} change(s): " + ", ".join(f"{k} {counts[k]}" for k in kinds)
    lines.append({"zh": zh, "en": en}.get(lang, f"{zh} / {en}"))
    return "\n".join(lines)


def _vba_detail(change: CellChange, lang: str) -> str:
    def short(digest: str | None) -> str:
        return f"sha256 {digest[:12]}…" if digest else ""

    if change.old is None:
        return _say(lang, "VBA 宏项目:新增", "VBA project added") + f" → {short(change.new)}"
    if change.new is None:
        return _say(lang, "VBA 宏项目:删除", "VBA project removed") + f" ({short(change.old)})"
    return _say(lang, "VBA 宏项目:已更改", "VBA project changed") + f" {short(change.old)} → {short(change.new)}"


def _label(lang: str, zh: str, en: str, sep: str = "\n") -> str:
    return {"zh": zh, "en": en}.get(lang, f"{zh}{sep}{en}")


MAX_COMMENTS_PER_SHEET = 1000
_FILLS = {VALUE: "#FFEB9C", FORMULA: "#FFEB9C", REMOVED: "#FFC7CE", ADDED: "#FFC7CE"}


class _Formats:
    """xlsxwriter formats made on demand: fill by change kind, wrap for multi-line text, dates."""

    def __init__(self, workbook: Any) -> None:
        self.workbook = workbook
        self.cache: dict[tuple, Any] = {}
        self.header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top",
                                           "bg_color": "#D9E1F2", "border": 1})
        self.title = workbook.add_format({"bold": True, "bg_color": "#D9E1F2"})
        self.muted = workbook.add_format({"font_color": "#808080", "align": "center"})

    def get(self, kind: str | None, value: Any) -> Any:
        wrap = isinstance(value, str) and "\n" in value
        date = isinstance(value, dt.datetime)
        key = (kind, wrap, date)
        if key == (None, False, False):
            return None
        if key not in self.cache:
            props: dict[str, Any] = {"valign": "top"}
            if kind:
                props.update({"bg_color": _FILLS[kind], "border": 1, "italic": kind == FORMULA})
            if wrap:
                props["text_wrap"] = True
            if date:
                props["num_format"] = "yyyy-mm-dd hh:mm:ss"
            self.cache[key] = self.workbook.add_format(props)
        return self.cache[key]


def write_diff_report(path: Any, a: Any, b: Any, changes: list[CellChange],
                      lang: str = "both") -> Path:
    """An xlsx an auditor can read: the list of changes, then each changed sheet with A and B
    side by side and the changed cells filled. Input text is always written as text."""
    book_a = a if isinstance(a, Book) else load_book(a)
    book_b = b if isinstance(b, Book) else load_book(b)
    out = Path(path)
    workbook = new_workbook(out, title=_label(lang, "工作簿差异", "Workbook differences", " "))
    formats = _Formats(workbook)
    taken: set[str] = set()

    sheet = workbook.add_worksheet(safe_sheet_name(_label(lang, "差异", "Changes", " "), taken))
    titles = [_label(lang, "工作表", "Sheet"), _label(lang, "单元格", "Cell"),
              _label(lang, "类型", "Kind"), _label(lang, "旧值 (A)", "Old (A)"),
              _label(lang, "新值 (B)", "New (B)")]
    sheet.write_row(0, 0, titles, formats.header)
    sheet.set_row(0, 30 if lang == "both" else 16)
    widths: list[list[Any]] = [[t] for t in titles]
    for i, change in enumerate(changes, start=1):
        row = [change.sheet, change.cell, _kind_label(change.kind, lang), change.old, change.new]
        for col, value in enumerate(row):
            _write_value(sheet, i, col, value, formats.get(None, value))
            widths[col].append(_show(value, lang, 60) if col >= 3 else value)
    for col, values in enumerate(widths):
        sheet.set_column(col, col, fit_width(values, maximum=50))
    sheet.freeze_panes(1, 0)
    if changes:
        sheet.autofilter(0, 0, len(changes), len(titles) - 1)

    by_sheet: dict[str, list[CellChange]] = {}
    for change in changes:
        if change.kind != VBA:  # not a sheet: listed above only
            by_sheet.setdefault(change.sheet, []).append(change)
    for name, sheet_changes in by_sheet.items():
        _write_side_by_side(workbook, taken, name, book_a, book_b, sheet_changes, formats, lang)
    workbook.close()
    return out


def _write_value(ws: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
    """Write by type; text always with write_string, so '=cmd|...' stays text."""
    if value is None or value == "":
        if fmt is not None:
            ws.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value, fmt)
    elif _is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            ws.write_string(row, col, str(value), fmt)
        else:
            ws.write_number(row, col, value, fmt)
    elif isinstance(value, dt.datetime):
        ws.write_datetime(row, col, value, fmt)
    elif isinstance(value, ExcelError):
        ws.write_string(row, col, value.code, fmt)
    elif isinstance(value, (list, tuple)):
        text = " | ".join("" if v is None else str(v) for v in value)
        ws.write_string(row, col, text, fmt)
    else:
        ws.write_string(row, col, str(_jsonable(value)), fmt)


def _cells_of(ref: str) -> list[tuple[int, int]]:
    """(row, col) of every cell of an A1 reference or range."""
    min_col, min_row, max_col, max_row = range_boundaries(ref)
    return [(r, c) for r in range(min_row, max_row + 1) for c in range(min_col, max_col + 1)]


def _write_side_by_side(workbook: Any, taken: set[str], name: str, book_a: Book, book_b: Book,
                        changes: list[CellChange], formats: _Formats, lang: str) -> None:
    """Row r of either workbook sits at report row r + 2 (a title row, a column-letters row);
    column 0 holds row numbers, then A's columns, one gap column, then B's columns."""
    empty = SheetData(name, {})
    sa, sb = book_a.sheets.get(name, empty), book_b.sheets.get(name, empty)
    marks_a: dict[tuple[int, int], CellChange] = {}
    marks_b: dict[tuple[int, int], CellChange] = {}
    for change in changes:
        if not change.cell:
            continue
        ref_a = change.cell if change.a_ref is None else change.a_ref
        ref_b = change.cell if change.b_ref is None else change.b_ref
        for ref, marks in ((ref_a, marks_a), (ref_b, marks_b)):
            for pos in (_cells_of(ref) if ref else []):
                marks.setdefault(pos, change)
    ws = workbook.add_worksheet(safe_sheet_name(name, taken))
    ws.set_comments_author("kpi diff")
    width_a = max(sa.max_col, max((c for _, c in marks_a), default=0), 1)
    width_b = max(sb.max_col, max((c for _, c in marks_b), default=0), 1)
    start_b = 1 + width_a + 1
    titles = []
    for book, zh, en in ((book_a, "A(旧)", "A (old)"), (book_b, "B(新)", "B (new)")):
        title = _label(lang, zh, en, " / ") + f": {Path(book.path).name}"
        if name not in book.sheets:
            title += " — " + _label(lang, "无此工作表", "no such sheet", " / ")
        titles.append(title)
    ws.write_string(0, 1, titles[0], formats.title)
    ws.write_string(0, start_b, titles[1], formats.title)
    for c in range(1, width_a + 1):
        ws.write_string(1, c, get_column_letter(c), formats.muted)
    for c in range(1, width_b + 1):
        ws.write_string(1, start_b + c - 1, get_column_letter(c), formats.muted)
    last_row = max(sa.max_row, sb.max_row, max((r for r, _ in (*marks_a, *marks_b)), default=0))
    for r in range(1, last_row + 1):
        ws.write_number(r + 1, 0, r, formats.muted)
    widths: dict[int, list[Any]] = {}
    lines: dict[int, int] = {}
    comments = 0
    for side, marks, offset in ((sa, marks_a, 1), (sb, marks_b, start_b)):
        for pos in sorted(side.cells.keys() | marks.keys()):
            cell = side.cells.get(pos)
            shown = None if cell is None else (cell.formula if cell.formula is not None else cell.value)
            mark = marks.get(pos)
            row, col = pos[0] + 1, offset + pos[1] - 1
            _write_value(ws, row, col, shown, formats.get(mark.kind if mark else None, shown))
            text = _show(shown, lang, 40) if shown is not None else ""
            if isinstance(shown, str):
                lines[row] = max(lines.get(row, 1), shown.count("\n") + 1)
                text = max(shown.split("\n"), key=display_width)[:40]
            widths.setdefault(col, []).append(text)
            if mark and mark.kind in (VALUE, FORMULA) and comments < MAX_COMMENTS_PER_SHEET:
                note = (f"{_kind_label(mark.kind, lang)}: {_show(mark.old, lang, 200)} → "
                        f"{_show(mark.new, lang, 200)}")
                ws.write_comment(row, col, note)
                comments += 1
    for row, count in lines.items():
        if count > 1:  # xlsxwriter cannot autofit heights: size multi-line rows ourselves
            ws.set_row(row, 14 * min(count, 8))
    ws.set_column(0, 0, 6)
    for col, values in widths.items():
        ws.set_column(col, col, fit_width(values, maximum=40))
    ws.freeze_panes(2, 1)


# ---------------------------------------------------------------------------------------------
# command line

_DIFF_HELP = """Compare two workbooks cell by cell (values and formulas separately), and their
VBA macro projects by hash.

\b
比较两个工作簿:逐个单元格比较值与公式,列出新增/删除的工作表,并按哈希比较 VBA 宏项目。
Exit status: 0 identical / 相同, 1 different / 有差异, 2 unreadable input / 无法读取。

\b
Examples / 示例:
  kpi diff old.xlsx new.xlsx
  kpi diff old.xlsx new.xlsx --tolerance 0.005
  kpi diff actuals_v1.xlsx actuals_v2.xlsx --by-key employee_id --by-key period --by-key indicator_id
  kpi diff actuals_v1.xlsx actuals_v2.xlsx --by-key all --out report.xlsx
  kpi diff a.xlsx b.xlsx --json > changes.json
"""


@click.command("diff", help=_DIFF_HELP)
@click.argument("a", metavar="A.xlsx", type=click.Path(dir_okay=False))
@click.argument("b", metavar="B.xlsx", type=click.Path(dir_okay=False))
@click.option("--tolerance", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Numbers differing by at most this (absolute) are equal. "
                   "数值差的绝对值不超过此值视为相同。")
@click.option("--by-key", "by_key", multiple=True, metavar="KEY",
              help="Match rows by key columns instead of by position (repeat or comma-separate): "
                   "employee_id/员工编号, indicator_id/指标编号, period/考核周期, 'all' for the three, "
                   "or any header text. Sheets without these columns are compared cell by cell. "
                   "按关键列匹配行,插入一行只报一行新增。")
@click.option("--json", "as_json", is_flag=True,
              help='Print a JSON list of {"sheet","cell","kind","old","new"}. 以 JSON 输出。')
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Also write an xlsx report: the changes, and A and B side by side. "
                   "另写一份 xlsx 差异报告。")
@click.option("--lang", type=click.Choice(["zh", "en", "both"]), default="both", show_default=True,
              help="Language of messages. 提示语言。")
@click.pass_context
def diff_command(ctx: click.Context, a: str, b: str, tolerance: float, by_key: tuple[str, ...],
                 as_json: bool, out: str | None, lang: str) -> None:
    try:
        book_a, book_b = load_book(a), load_book(b)
    except DiffInputError as exc:
        click.echo(exc.message(lang), err=True)
        ctx.exit(2)
    if out and any(Path(out).resolve() == Path(p).resolve() for p in (a, b)):
        click.echo(_say(lang, f"--out 不能覆盖被比较的文件 {out}。",
                        f"--out must not overwrite a compared file ({out})."), err=True)
        ctx.exit(2)
    if by_key and not keyed_sheets(book_a, book_b, list(by_key)):
        click.echo(_say(lang, f"没有工作表包含关键列 {', '.join(by_key)},已逐个单元格比较。",
                        f"No sheet has the key column(s) {', '.join(by_key)}; "
                        "compared cell by cell."), err=True)
    changes = diff_workbooks(book_a, book_b, tolerance=tolerance, by_key=list(by_key) or None)
    if as_json:
        click.echo(json.dumps([c.as_json() for c in changes], ensure_ascii=False, indent=2))
    else:
        click.echo(format_changes(changes, lang))
    if out:
        try:
            write_diff_report(out, book_a, book_b, changes, lang=lang)
        except OSError as exc:
            click.echo(_say(lang, f"无法写入报告 {out}:{exc}", f"Cannot write the report {out}: {exc}"),
                       err=True)
            ctx.exit(2)
        click.echo(_say(lang, f"差异报告已写入 {out}", f"Report written to {out}"),
                   err=as_json)
    ctx.exit(1 if changes else 0)


__all__ = [
    "ADDED", "FORMULA", "KINDS", "REMOVED", "VALUE", "VBA", "Book", "CellChange", "DiffInputError", "ExcelError",
    "SheetData", "diff_command", "diff_workbooks", "format_changes", "keyed_sheets", "load_book",
    "normalize_formula", "values_equal", "write_diff_report",
]
