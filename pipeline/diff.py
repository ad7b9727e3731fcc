"""`kpi diff`: what changed between two workbooks, row by row and cell by cell, for auditors.

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
- Rows matched by key (a sheet with a template's key columns, or the columns ``by_key``
  names; never with ``by_position``): ``added``/``removed`` with ``cell`` the row's range
  (``"A7:H7"``, on B's side for added, A's for removed) and ``old``/``new`` the row's values as
  a list: one change per row, not one per cell. Cells of matched rows are reported at B's
  reference.
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
import math
import re
import unicodedata
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from defusedxml import ElementTree as SafeET
from openpyxl.formula.translate import Translator
from openpyxl.reader.strings import read_string_table
from openpyxl.styles.numbers import builtin_format_code, is_date_format, is_timedelta_format
from openpyxl.utils.cell import get_column_letter, range_boundaries
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from pipeline.findings import BilingualError
from pipeline.kinds import KINDS as TEMPLATE_KINDS
from pipeline.kinds import SheetSpec, fold, header_aliases
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
from pipeline.texts import say
from pipeline.writers.common import display_width, fit_width, new_workbook, safe_sheet_name

MAX_UNCOMPRESSED = 200 * 1024 * 1024  # bytes a workbook may inflate to before we refuse it
HEADER_SCAN_ROWS = 20

VALUE, FORMULA, ADDED, REMOVED, VBA = "value", "formula", "added", "removed", "vba"
KINDS = (VALUE, FORMULA, ADDED, REMOVED)  # the kinds of the JSON contract, and `vba` when found

GENERAL = "General"
# Built-in formats 14 and 22 show in the reader's own short-date style (10/1/26 in one
# country, 2026/10/1 in another): an auditor is shown the unambiguous ISO form instead.
_BUILTIN_DATES = {14: "yyyy-mm-dd", 22: "yyyy-mm-dd h:mm"}



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
    # How each side's cell shows its value (`0%`); for a row, one format per cell. Display only.
    old_format: Any = field(default=None, compare=False, repr=False)
    new_format: Any = field(default=None, compare=False, repr=False)
    key: str = field(default="", compare=False, repr=False)  # the row's key, rows matched by key

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
    number_format: str = "General"  # how the cell shows its value (`0%`, `yyyy-mm-dd`)


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
        codes, dates, durations = (_cell_formats(utf8_xml(archive.read(styles_part))) if styles_part
                                   else ([], set(), set()))
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
                sheets[name] = SheetData(name, _sheet_cells(parser, codes))
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


def _cell_formats(styles_xml: bytes) -> tuple[list[str], set[int], set[int]]:
    """Each cell format's number format code (by index into cellXfs), and the formats that
    show dates and durations: what openpyxl would find, without building its stylesheet
    (tens of thousands of styles cost it half a minute). The part's prolog was checked (no
    DTD): its tags are read as they are."""
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
    codes: list[str] = []
    dates, durations = set(), set()
    known: dict[int, str] = {}
    for index, number_format in enumerate(formats):
        if number_format not in known:
            known[number_format] = (custom[number_format] if number_format in custom else
                                    _BUILTIN_DATES.get(number_format) or builtin_format_code(number_format))
        code = known[number_format] or GENERAL
        codes.append(code)
        if is_date_format(code):
            dates.add(index)
        if is_timedelta_format(code):
            durations.add(index)
    return codes, dates, durations


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


def _sheet_cells(parser: _CellParser, codes: list[str]) -> dict[tuple[int, int], _Cell]:
    """Non-empty cells of one sheet, from the cells the XML holds (a stray formatted cell at
    XFD1048576 does not make us walk a million empty ones), each with its number format."""
    cells: dict[tuple[int, int], _Cell] = {}
    for _, row in parser.parse():
        for cell in row:
            pos = (cell["row"], cell["column"])
            raw = cell["value"]
            style = cell.get("style_id") or 0
            code = codes[style] if style < len(codes) else GENERAL
            if cell["data_type"] == "f" or isinstance(raw, (ArrayFormula, DataTableFormula)):
                cached = cell.get("cached")
                cells[pos] = _Cell(_formula_text(raw), cached if cached == "" else _norm_value(cached), code)
                continue
            if cell["data_type"] == "e" and raw is not None:
                raw = ExcelError(str(raw))
            value = _norm_value(raw)
            if value is not None:
                cells[pos] = _Cell(None, value, code)
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
                   a_ref: str | None = None, b_ref: str | None = None) -> list[tuple]:
    """(kind, old, new, old format, new format) for one pair of cells: a formula entry, then
    a value entry. A formula text has no number format (None)."""
    fa, va, ka = (ca.formula, ca.value, ca.number_format) if ca else (None, None, None)
    fb, vb, kb = (cb.formula, cb.value, cb.number_format) if cb else (None, None, None)
    out: list[tuple] = []
    if fa is not None or fb is not None:
        if fa is None or fb is None or not _formulas_equal(fa, fb, a_ref, b_ref):
            out.append((FORMULA, fa if fa is not None else va, fb if fb is not None else vb,
                        None if fa is not None else ka, None if fb is not None else kb))
    uncached = (fa is not None and va is None) or (fb is not None and vb is None)
    if not uncached and not values_equal(va, vb, tolerance):
        out.append((VALUE, va, vb, ka, kb))
    return out


# ---------------------------------------------------------------------------------------------
# which rows are the same row: keys


@dataclass(frozen=True)
class KeyPlan:
    """How one sheet's rows are matched: the header row on each side, the key columns there,
    and what the key columns are called (for the note that says rows were matched by key)."""

    header_a: int
    header_b: int
    columns_a: tuple[int, ...]
    columns_b: tuple[int, ...]
    names_zh: tuple[str, ...]
    names_en: tuple[str, ...]


def _template_tables() -> list[tuple[SheetSpec, dict[str, str]]]:
    """(sheet, header alias -> field) for every template sheet whose rows have a key: the kind
    descriptions decide which columns identify a row, as they do for validation."""
    global _TEMPLATE_TABLES
    if _TEMPLATE_TABLES is None:
        _TEMPLATE_TABLES = [
            (spec, {alias: f.name for f in spec.fields for alias in header_aliases(f)})
            for kind in TEMPLATE_KINDS.values() for spec in kind.tables if spec.key]
    return _TEMPLATE_TABLES


_TEMPLATE_TABLES: list[tuple[SheetSpec, dict[str, str]]] | None = None

# Short names for `--by-key` (the headers themselves come from the kind descriptions).
_KEY_SHORT = {"employee": "employee_id", "员工": "employee_id", "indicator": "indicator_id",
              "rater": "rater_id", "expert": "expert_id", "role": "role_family"}
_AUTO = ("all", "auto", "default", "全部", "自动")


def _key_field_aliases() -> dict[str, set[str]]:
    """Every key field of the templates -> every header text that names it."""
    aliases: dict[str, set[str]] = {}
    for spec, _ in _template_tables():
        for f in spec.fields:
            if f.name in spec.key:
                aliases.setdefault(f.name, set()).update(header_aliases(f))
    return aliases


def _expand_keys(by_key: Iterable[str] | None) -> list[str] | None:
    """Explicit key names, or None for the templates' own keys (no keys given, or `all`)."""
    keys: list[str] = []
    for item in by_key or []:
        for part in str(item).split(","):
            part = part.strip()
            if part and fold(part) in _AUTO:
                return None
            if part:
                keys.append(part)
    return list(dict.fromkeys(keys)) or None


def _key_patterns(key: str) -> set[str]:
    norm = fold(key)
    canonical = _KEY_SHORT.get(norm)
    for name, aliases in _key_field_aliases().items():
        if norm in aliases or norm.replace(" ", "_") == name:
            canonical = name
    return _key_field_aliases()[canonical] if canonical else {norm}


def _header_candidates(sheet: SheetData) -> list[tuple[int, dict[int, str]]]:
    """Rows among the first 20 whose cells are mostly non-empty text: possible header rows,
    with their texts as written."""
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
            found.append((r, texts))
    return found


def _template_columns(header: dict[int, str], aliases: dict[str, str]) -> dict[str, int]:
    """field -> column of a header row, by the template's header aliases (leftmost wins)."""
    found: dict[str, int] = {}
    for col, text in sorted(header.items()):
        name = aliases.get(fold(text))
        if name is not None and name not in found:
            found[name] = col
    return found


def _sheet_is(spec: SheetSpec, sheet_name: str) -> bool:
    return fold(sheet_name) in {fold(spec.name), fold(spec.zh), fold(spec.en), fold(spec.zh + spec.en)}


def _template_plan(sa: SheetData, sb: SheetData) -> KeyPlan | None:
    """Match rows by the template's key when both sides have its key columns under a header:
    the sheet named like a template first, then the template whose columns fit best."""
    best: tuple | None = None
    for spec, aliases in _template_tables():
        for row_a, header_a in _header_candidates(sa):
            found = _template_columns(header_a, aliases)
            if all(k in found for k in spec.key):
                score = (_sheet_is(spec, sa.name), len(found), len(spec.key))
                if best is None or score > best[0]:
                    best = (score, spec, aliases, row_a, found)
                break
    if best is None:
        return None
    _, spec, aliases, row_a, found_a = best
    for row_b, header_b in _header_candidates(sb):
        found_b = _template_columns(header_b, aliases)
        if all(k in found_b for k in spec.key):
            return KeyPlan(row_a, row_b, tuple(found_a[k] for k in spec.key),
                           tuple(found_b[k] for k in spec.key),
                           tuple(spec.field(k).zh for k in spec.key),
                           tuple(spec.field(k).en for k in spec.key))
    return None


def _find_key_columns(header: dict[int, str], keys: list[str]) -> dict[str, int]:
    """key -> column for each key found in this header (exact text first, then containment)."""
    found: dict[str, int] = {}
    folded = {c: fold(t) for c, t in header.items()}
    for key in keys:
        patterns = _key_patterns(key)
        exact = [c for c, h in sorted(folded.items()) if h in patterns]
        partial = [c for c, h in sorted(folded.items()) if any(p in h for p in patterns)]
        column = next(iter(exact or partial), None)
        if column is not None and column not in found.values():
            found[key] = column
    return found


def _explicit_plan(sa: SheetData, sb: SheetData, keys: list[str]) -> KeyPlan | None:
    for row_a, header_a in _header_candidates(sa):
        cols_a = _find_key_columns(header_a, keys)
        if not cols_a:
            continue
        for row_b, header_b in _header_candidates(sb):
            cols_b = _find_key_columns(header_b, keys)
            common = [k for k in keys if k in cols_a and k in cols_b]
            if common:
                names = tuple(" ".join(str(header_a[cols_a[k]]).split()) for k in common)
                return KeyPlan(row_a, row_b, tuple(cols_a[k] for k in common),
                               tuple(cols_b[k] for k in common), names, names)
        return None
    return None


def key_plans(a: Book, b: Book, by_key: list[str] | None = None, *,
              by_position: bool = False) -> dict[str, KeyPlan]:
    """The sheets (in both books) whose rows are matched by key, and how.

    Without `by_key`, a sheet is matched by its template's key (employee, period, indicator
    for actuals) when both sides have those columns; with `by_key`, by those columns. The
    other sheets, and every sheet with `by_position`, are compared cell by cell."""
    if by_position:
        return {}
    keys = _expand_keys(by_key)
    plans = {}
    for name, sheet in a.sheets.items():
        other = b.sheets.get(name)
        if other is None:
            continue
        plan = _template_plan(sheet, other) if keys is None else _explicit_plan(sheet, other, keys)
        if plan is not None:
            plans[name] = plan
    return plans


def keyed_sheets(a: Book, b: Book, by_key: list[str] | None) -> list[str]:
    """Sheets (in both books) whose rows `by_key` can match; the others are diffed by cell."""
    return list(key_plans(a, b, by_key))


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


def _rows_by_key(sheet: SheetData, header_row: int, key_cols: tuple[int, ...]) -> dict[tuple, int]:
    """Data rows (below the header, not blank) keyed by (key values, occurrence), in order."""
    rows = sorted({r for r, _ in sheet.cells if r > header_row})
    seen: Counter = Counter()
    keyed: dict[tuple, int] = {}
    for r in rows:
        key = tuple(_key_value(sheet.cells.get((r, c))) for c in key_cols)
        keyed[(key, seen[key])] = r
        seen[key] += 1
    return keyed


def _row_pairs(sa: SheetData, sb: SheetData, plan: KeyPlan) -> list[tuple[int | None, int | None]]:
    """The data rows of both sides in report order, as (A row, B row) with None on the side
    that lacks the row: B's order, each removed row just before the B row that follows it
    in A's order."""
    rows_a = _rows_by_key(sa, plan.header_a, plan.columns_a)
    rows_b = _rows_by_key(sb, plan.header_b, plan.columns_b)
    entries: list[tuple[tuple, tuple[int | None, int | None]]] = []
    next_b: float = math.inf
    for key, ra in reversed(list(rows_a.items())):
        if key in rows_b:
            next_b = rows_b[key]
        else:
            entries.append(((next_b, 0, ra), (ra, None)))
    for key, rb in rows_b.items():
        entries.append(((rb, 1, 0), (rows_a.get(key), rb)))
    entries.sort(key=lambda e: e[0])
    return [pair for _, pair in entries]


def _column_ids(sheet: SheetData, header_row: int) -> dict[tuple, int]:
    """Column identity (header text and occurrence; position when the header is blank) -> col."""
    header = {c: fold(cell.value) for (r, c), cell in sheet.cells.items()
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


def _row_cells(sheet: SheetData, row: int) -> list[_Cell | None]:
    return [sheet.cells.get((row, c)) for c in range(sheet.min_col, sheet.max_col + 1)]


def _row_values(sheet: SheetData, row: int) -> list[Any]:
    return [None if cell is None else (cell.value if cell.value is not None else cell.formula)
            for cell in _row_cells(sheet, row)]


def _row_formats(sheet: SheetData, row: int) -> list[str | None]:
    return [None if cell is None or cell.value is None else cell.number_format
            for cell in _row_cells(sheet, row)]


def _row_range(sheet: SheetData, row: int) -> str:
    return f"{get_column_letter(sheet.min_col)}{row}:{get_column_letter(sheet.max_col)}{row}"


def _key_text(sheet: SheetData, row: int, columns: tuple[int, ...]) -> str:
    """The row's key as its cells show it: `E006 · 2026-10 · KPI01`."""
    shown = []
    for c in columns:
        cell = sheet.cells.get((row, c))
        shown.append("" if cell is None else shown_as(
            cell.value if cell.value is not None else cell.formula, cell.number_format))
    return " · ".join(shown)


def _diff_by_key(sa: SheetData, sb: SheetData, tolerance: float, plan: KeyPlan) -> list[CellChange]:
    """Rows matched by key: an inserted row is one `added`, not a cascade of changed cells."""
    out = _diff_cells(sa, sb, tolerance, rows=(plan.header_a, plan.header_b))
    cols_a, cols_b = _column_ids(sa, plan.header_a), _column_ids(sb, plan.header_b)
    column_pairs: list[tuple[int | None, int | None]] = [(cols_a.get(i), c) for i, c in cols_b.items()]
    column_pairs += [(c, None) for i, c in cols_a.items() if i not in cols_b]
    for ra, rb in _row_pairs(sa, sb, plan):
        if rb is None:
            assert ra is not None  # a pair has at least one side
            ref = _row_range(sa, ra)
            out.append(CellChange(sa.name, ref, REMOVED, _row_values(sa, ra), None, a_ref=ref,
                                  b_ref="", old_format=_row_formats(sa, ra),
                                  key=_key_text(sa, ra, plan.columns_a)))
            continue
        if ra is None:
            ref = _row_range(sb, rb)
            out.append(CellChange(sb.name, ref, ADDED, None, _row_values(sb, rb), a_ref="",
                                  b_ref=ref, new_format=_row_formats(sb, rb),
                                  key=_key_text(sb, rb, plan.columns_b)))
            continue
        key = None
        for col_a, col_b in column_pairs:
            ref_a = f"{get_column_letter(col_a)}{ra}" if col_a else ""
            ref_b = f"{get_column_letter(col_b)}{rb}" if col_b else ""
            found = _compare_cells(sa.cells.get((ra, col_a)) if col_a else None,
                                   sb.cells.get((rb, col_b)) if col_b else None,
                                   tolerance, ref_a or None, ref_b or None)
            for kind, old, new, old_format, new_format in found:
                key = key if key is not None else _key_text(sb, rb, plan.columns_b)
                out.append(CellChange(sb.name, ref_b or ref_a, kind, old, new, a_ref=ref_a,
                                      b_ref=ref_b, old_format=old_format, new_format=new_format,
                                      key=key))
    return out


# ---------------------------------------------------------------------------------------------
# diffing


def diff_workbooks(a: Any, b: Any, *, tolerance: float = 0.0, by_key: list[str] | None = None,
                   by_position: bool = False) -> list[CellChange]:
    """Every difference between workbooks `a` and `b` (paths or `Book`s), in report order.

    Rows are matched by key where `key_plans` finds key columns (the templates' own keys
    unless `by_key` names others); `by_position` compares every sheet cell by cell.
    Raises DiffInputError if either cannot be read."""
    book_a = a if isinstance(a, Book) else load_book(a)
    book_b = b if isinstance(b, Book) else load_book(b)
    plans = key_plans(book_a, book_b, by_key, by_position=by_position)
    changes: list[CellChange] = []
    for name, sheet_a in book_a.sheets.items():
        sheet_b = book_b.sheets.get(name)
        if sheet_b is None:
            changes.append(CellChange(name, "", REMOVED, name, None))
        elif name in plans:
            changes.extend(_diff_by_key(sheet_a, sheet_b, tolerance, plans[name]))
        else:
            changes.extend(_diff_cells(sheet_a, sheet_b, tolerance))
    for name in book_b.sheets:
        if name not in book_a.sheets:
            changes.append(CellChange(name, "", ADDED, None, name))
    hash_a, hash_b = (book.vba[1] if book.vba else None for book in (book_a, book_b))
    vba = book_b.vba or book_a.vba
    if hash_a != hash_b and vba is not None:  # the macros themselves: compared by hash, never run or read
        changes.append(CellChange("", vba[0], VBA, hash_a, hash_b))
    return changes


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
        for kind, old, new, old_format, new_format in _compare_cells(
                cells_a.get(pos), cells_b.get(pos), tolerance):
            out.append(CellChange(sa.name, ref, kind, old, new, old_format=old_format,
                                  new_format=new_format))
    return out


# ---------------------------------------------------------------------------------------------
# a value as its cell shows it

_COLORS = {"black", "blue", "cyan", "green", "magenta", "red", "white", "yellow"}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class _FormatUnsupported(Exception):
    """A format code we do not render (conditions, fractions): the value is shown as General."""


def _sections(code: str) -> list[str]:
    """A format code's `;`-separated sections (positive; negative; zero; text)."""
    sections, current, i = [], [], 0
    while i < len(code):
        ch = code[i]
        if ch == '"':
            end = code.find('"', i + 1)
            end = len(code) if end < 0 else end
            current.append(code[i:end + 1])
            i = end + 1
            continue
        if ch in "\\_*" and i + 1 < len(code):
            current.append(code[i:i + 2])
            i += 2
            continue
        if ch == "[":
            end = code.find("]", i)
            end = len(code) if end < 0 else end
            current.append(code[i:end + 1])
            i = end + 1
            continue
        if ch == ";":
            sections.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    sections.append("".join(current))
    return sections


def _tokens(section: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: lit, digit (0 # ?), dot, comma, percent, exp, date, ampm, elapsed."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(section)
    while i < n:
        ch = section[i]
        low = ch.lower()
        if ch == '"':
            end = section.find('"', i + 1)
            end = n if end < 0 else end
            tokens.append(("lit", section[i + 1:end]))
            i = end + 1
        elif ch == "\\":
            tokens.append(("lit", section[i + 1:i + 2]))
            i += 2
        elif ch == "_":
            tokens.append(("lit", " "))  # space as wide as the next character
            i += 2
        elif ch == "*":
            i += 2  # repeat-to-fill: nothing to show in a text
        elif ch == "[":
            end = section.find("]", i)
            end = n if end < 0 else end
            inner = section[i + 1:end]
            if inner.startswith("$"):  # [$¥-804]: a currency symbol, then a locale
                tokens.append(("lit", inner[1:].split("-", 1)[0]))
            elif inner[:1] in "<>=":
                raise _FormatUnsupported(inner)
            elif inner.lower() in ("h", "hh", "m", "mm", "s", "ss"):
                tokens.append(("elapsed", inner.lower()))
            elif inner.lower() in _COLORS or inner.lower().startswith("color"):
                pass
            # anything else ([DBNum1], [natnum]) changes the script, not the number: skipped
            i = end + 1
        elif ch in "0#?":
            tokens.append(("digit", ch))
            i += 1
        elif ch == ".":
            tokens.append(("dot", "."))
            i += 1
        elif ch == ",":
            tokens.append(("comma", ","))
            i += 1
        elif ch == "%":
            tokens.append(("percent", "%"))
            i += 1
        elif low == "e" and section[i + 1:i + 2] in ("+", "-"):
            tokens.append(("exp", "E" + section[i + 1]))
            i += 2
        elif section[i:i + 5].upper() == "AM/PM":
            tokens.append(("ampm", "AM/PM"))
            i += 5
        elif section[i:i + 3].upper() == "A/P":
            tokens.append(("ampm", "A/P"))
            i += 3
        elif section[i:i + 7].lower() == "general":
            tokens.append(("general", ""))
            i += 7
        elif low in "ymdhs":
            j = i
            while j < n and section[j].lower() == low:
                j += 1
            tokens.append(("date", section[i:j].lower()))
            i = j
        elif ch == "@":
            tokens.append(("at", "@"))
            i += 1
        else:
            tokens.append(("lit", ch))
            i += 1
    return tokens


def _general(value: Any) -> str:
    """Excel's General: integers without a decimal point, up to 15 significant digits."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.15g}".replace("e", "E")


def _half_up(number: Decimal, places: int) -> Decimal:
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _render_number(number: Decimal, tokens: list[tuple[str, str]]) -> str:
    """A non-negative number through one numeric section (digits, grouping, %, scaling, E+)."""
    kinds = [k for k, _ in tokens]
    digits = [i for i, k in enumerate(kinds) if k == "digit"]
    if any(k == "general" for k in kinds):
        shown = _general(float(number))
        return "".join(shown if k == "general" else t if k == "lit" else "" for k, t in tokens)
    if not digits:  # a format of literals only ("-", "N/A")
        return "".join(t for k, t in tokens if k == "lit")
    exp_at = next((i for i, k in enumerate(kinds) if k == "exp"), len(tokens))
    dot_at = next((i for i, k in enumerate(kinds) if k == "dot" and i < exp_at), None)
    int_end = dot_at if dot_at is not None else exp_at
    int_ph = [i for i in digits if i < int_end]
    frac_ph = [i for i in digits if dot_at is not None and dot_at < i < exp_at]
    exp_ph = [i for i in digits if i > exp_at]
    if any(k == "lit" and "/" in t and int_ph and i > int_ph[0] for i, (k, t) in enumerate(tokens)
           if i < int_end):
        raise _FormatUnsupported("fraction")
    number = number * (100 ** kinds.count("percent"))
    scaled = 0
    for last in (max(int_ph, default=-1), max(frac_ph, default=-1)):
        j = last + 1
        while last >= 0 and j < len(tokens) and kinds[j] == "comma":
            scaled += 1
            j += 1
    number = number / (1000 ** scaled) if scaled else number
    grouping = bool(int_ph) and any(kinds[i] == "comma" for i in range(int_ph[0], int_ph[-1]))
    exponent = 0
    if exp_at < len(tokens):
        width = max(len(int_ph), 1)
        if number:
            exponent = number.adjusted() - (width - 1)
        mantissa = _half_up(number.scaleb(-exponent), len(frac_ph))
        if number and mantissa.adjusted() >= width:  # 9.99 rounded up to 10.0
            exponent += 1
            mantissa = _half_up(number.scaleb(-exponent), len(frac_ph))
        number = mantissa
    else:
        number = _half_up(number, len(frac_ph))
    int_text, _, frac_text = f"{number:f}".partition(".")
    int_text = "" if int_text == "0" else int_text
    frac_text = frac_text.ljust(len(frac_ph), "0")
    texts = ["" if k in ("comma", "at", "date", "ampm", "elapsed") else t for k, t in tokens]
    texts = [{"percent": "%", "dot": "."}.get(k, x) for k, x in zip(kinds, texts)]
    interior = any(kinds[i] == "lit" for i in range(int_ph[0], int_ph[-1])) if int_ph else False
    if grouping and not interior:
        required = sum(tokens[i][1] == "0" for i in int_ph)
        whole = int_text.rjust(required, "0")
        for i in int_ph:
            texts[i] = ""
        texts[int_ph[0]] = f"{int(whole):,}" if whole else ""
    elif int_ph:
        rest = list(int_text)
        for i in reversed(int_ph):
            placeholder = tokens[i][1]
            texts[i] = rest.pop() if rest else {"0": "0", "?": " "}.get(placeholder, "")
        texts[int_ph[0]] = "".join(rest) + texts[int_ph[0]]
    elif dot_at is not None:
        texts[dot_at] = int_text + "."
    significant = len(frac_text.rstrip("0"))
    for k, i in enumerate(frac_ph):
        placeholder = tokens[i][1]
        texts[i] = frac_text[k] if k < significant or placeholder == "0" else (
            " " if placeholder == "?" else "")
    if exp_at < len(tokens):
        sign = "-" if exponent < 0 else ("+" if tokens[exp_at][1] == "E+" else "")
        texts[exp_at] = "E" + sign
        required = max(sum(tokens[i][1] == "0" for i in exp_ph), 1)
        for i in exp_ph:
            texts[i] = ""
        if exp_ph:
            texts[exp_ph[0]] = str(abs(exponent)).rjust(required, "0")
    return "".join(texts)


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.time):
        return dt.datetime.combine(dt.date(1899, 12, 30), value)
    if isinstance(value, dt.timedelta):
        return dt.datetime(1899, 12, 30) + value
    return from_excel(value)


def _render_date(value: Any, tokens: list[tuple[str, str]]) -> str:
    """A date, time or serial number through a date section (y m d h s, AM/PM, [h])."""
    moment = _as_datetime(value)
    twelve = any(k == "ampm" for k, _ in tokens)
    timed = [(i, t) for i, (k, t) in enumerate(tokens) if k in ("date", "elapsed")]
    out: list[str] = []
    for i, (kind, text) in enumerate(tokens):
        if kind == "lit":
            out.append(text)
        elif kind == "date":
            letter, size = text[0], len(text)
            if letter == "m":
                before = [t for j, t in timed if j < i]
                after = [t for j, t in timed if j > i]
                if (before and before[-1][0] == "h") or (after and after[0][0] == "s"):
                    letter = "minute"
            if letter == "y":
                out.append(f"{moment.year:04d}" if size > 2 else f"{moment.year % 100:02d}")
            elif letter == "m":
                name = _MONTHS[moment.month - 1]
                out.append({1: str(moment.month), 2: f"{moment.month:02d}", 3: name[:3],
                            5: name[0]}.get(size, name))
            elif letter == "d":
                day = _DAYS[moment.weekday()]
                out.append({1: str(moment.day), 2: f"{moment.day:02d}", 3: day[:3]}.get(size, day))
            elif letter == "h":
                hour = (moment.hour % 12 or 12) if twelve else moment.hour
                out.append(f"{hour:02d}" if size > 1 else str(hour))
            elif letter == "minute":
                out.append(f"{moment.minute:02d}" if size > 1 else str(moment.minute))
            elif letter == "s":
                out.append(f"{moment.second:02d}" if size > 1 else str(moment.second))
        elif kind == "elapsed":
            span = (moment - dt.datetime(1899, 12, 30)).total_seconds()
            unit = {"h": 3600, "m": 60, "s": 1}[text[0]]
            out.append(str(int(span // unit)).rjust(len(text), "0"))
        elif kind == "ampm":
            morning = moment.hour < 12
            out.append(("AM" if morning else "PM") if text == "AM/PM" else ("A" if morning else "P"))
        elif kind == "dot":
            out.append(".")
        elif kind == "digit":
            out.append(f"{moment.microsecond:06d}"[:1] if text == "0" else "")
        elif kind == "percent":
            out.append("%")
    return "".join(out)


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def shown_as(value: Any, number_format: str | None = GENERAL) -> str:
    """The text a cell formatted `number_format` shows for `value`: 0.3 in `0%` is `30%`,
    1234.5 in `#,##0.00` is `1,234.50`, a date in `yyyy"年"m"月"d"日"` is `2026年10月1日`.

    Covers the formats HR workbooks use (digits, grouping, %, scaling, currency, sections,
    scientific, dates and times); a code it does not cover (conditions, fractions) shows the
    value as General. Text, booleans and error values show as themselves."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, ExcelError):
        return value.code
    if isinstance(value, str):
        return value
    code = number_format or GENERAL
    try:
        sections = [_tokens(s) for s in _sections(code)]
        dated = [any(k in ("date", "ampm", "elapsed") for k, _ in s) for s in sections]
        if isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta)):
            return _render_date(value, sections[0]) if dated[0] else _iso(value)
        if not _is_number(value) or not math.isfinite(value):
            return str(value)
        if code.strip().lower() == "general":
            return _general(value)
        index = 0
        if value < 0 and len(sections) >= 2 and sections[1]:
            index = 1
        elif value == 0 and len(sections) >= 3 and sections[2]:
            index = 2
        if dated[index]:
            return _render_date(value, sections[index])
        magnitude = abs(Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
        text = _render_number(magnitude, sections[index])
        return "-" + text if value < 0 and index == 0 else text
    except (_FormatUnsupported, ArithmeticError, ValueError, OverflowError, IndexError):
        if isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta)):
            return _iso(value)
        return _general(value) if _is_number(value) and math.isfinite(value) else str(value)


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
# What a change is, for people: a row and a whole sheet are both `added` in JSON.
_ROW_ADDED, _ROW_REMOVED, _SHEET_ADDED, _SHEET_REMOVED = "row+", "row-", "sheet+", "sheet-"
_WHAT_LABELS = {
    **_KIND_LABELS,
    _ROW_ADDED: ("新增行", "row added"), _ROW_REMOVED: ("删除行", "row removed"),
    _SHEET_ADDED: ("新增工作表", "sheet added"), _SHEET_REMOVED: ("删除工作表", "sheet removed"),
}
_COUNT_LABELS = {
    VALUE: ("值", "value"), FORMULA: ("公式", "formula"),
    _ROW_ADDED: ("新增行", "rows added"), _ROW_REMOVED: ("删除行", "rows removed"),
    _SHEET_ADDED: ("新增工作表", "sheets added"), _SHEET_REMOVED: ("删除工作表", "sheets removed"),
    VBA: ("宏", "vba"),
}


def _what(change: CellChange) -> str:
    if change.kind == ADDED:
        return _ROW_ADDED if change.cell else _SHEET_ADDED
    if change.kind == REMOVED:
        return _ROW_REMOVED if change.cell else _SHEET_REMOVED
    return change.kind


def _say(lang: str, zh: str, en: str) -> str:
    """The project's `say`, with diff's argument order and a slash between the languages."""
    return say(zh, en, lang, sep=" / ")


def _kind_label(change: CellChange | str, lang: str) -> str:
    what = change if isinstance(change, str) else _what(change)
    zh, en = _WHAT_LABELS.get(what, (what, what))
    return en if lang == "en" else f"{zh} {en}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any, lang: str, limit: int = 60, number_format: Any = None) -> str:
    """A value for the screen, as its cell shows it; text in quotes, so `'100'` (text) and
    `100` (a number) differ. A row (list) is its cells' texts joined by `|`, unquoted."""
    if value is None:
        return "(empty)" if lang == "en" else "(空 empty)"
    if isinstance(value, (list, tuple)):
        formats = number_format if isinstance(number_format, (list, tuple)) else [None] * len(value)
        text = " | ".join("" if v is None else shown_as(v, f) for v, f in zip(value, formats))
    elif isinstance(value, str):
        text = "'" + value.replace("\n", "\\n") + "'"
    else:
        text = shown_as(value, number_format).replace("\n", " ")
    return _clip(text, limit)


def _old_new(change: CellChange, lang: str, limit: int = 60) -> tuple[str, str]:
    """Both sides as shown; when the formats show the same text for different values (0.301
    and 0.302 both show 30%), the stored values follow in brackets."""
    old = _show(change.old, lang, limit, change.old_format)
    new = _show(change.new, lang, limit, change.new_format)
    if old == new and change.kind == VALUE:
        old += f" ({_show(change.old, lang, limit)})"
        new += f" ({_show(change.new, lang, limit)})"
    return old, new


def _location(change: CellChange) -> str:
    if change.kind == VBA:
        return change.cell
    sheet = change.sheet
    if any(not (ch.isalnum() or ch == "_") for ch in sheet):
        sheet = "'" + sheet.replace("'", "''") + "'"
    return f"{sheet}!{change.cell}" if change.cell else f"[{change.sheet}]"


def count_line(changes: list[CellChange], lang: str = "zh") -> str:
    """`共 3 处差异:值 1,公式 1,新增行 1,删除行 0`: rows and sheets counted apart, sheets
    and macros only when there are some."""
    counts = Counter(_what(c) for c in changes)
    shown = [VALUE, FORMULA, _ROW_ADDED, _ROW_REMOVED]
    shown += [k for k in (_SHEET_ADDED, _SHEET_REMOVED, VBA) if counts[k]]
    zh = f"共 {len(changes)} 处差异:" + ",".join(f"{_COUNT_LABELS[k][0]} {counts[k]}" for k in shown)
    noun = "change" if len(changes) == 1 else "changes"
    en = f"{len(changes)} {noun}: " + ", ".join(f"{_COUNT_LABELS[k][1]} {counts[k]}" for k in shown)
    return en if lang == "en" else f"{zh} / {en}"


def format_changes(changes: list[CellChange], lang: str = "zh") -> str:
    """A screen table, one line per change (`Sheet!D4  value  30% → 35%`, with the row's key
    where rows were matched by key), then the counts."""
    if not changes:
        return _say(lang, "两个工作簿相同。", "The workbooks are identical.")
    rows = [(_location(c), _kind_label(c, lang), c) for c in changes]
    where_w = max(display_width(r[0]) for r in rows)
    kind_w = max(display_width(r[1]) for r in rows)
    lines = []
    for where, kind, change in rows:
        if change.kind == VBA:
            detail = _vba_detail(change, lang)
        elif change.kind in (ADDED, REMOVED) and not change.cell:
            detail = _say(lang, "整个工作表", "whole sheet")
        elif change.kind == ADDED:
            detail = "→ " + _show(change.new, lang, 100, change.new_format)
        elif change.kind == REMOVED:
            detail = _show(change.old, lang, 100, change.old_format) + " →"
        else:
            old, new = _old_new(change, lang)
            detail = f"{old} → {new}" + (f"  [{change.key}]" if change.key else "")
        pad_where = " " * (where_w - display_width(where))
        pad_kind = " " * (kind_w - display_width(kind))
        lines.append(f"{where}{pad_where}  {kind}{pad_kind}  {detail}")
    lines.append(count_line(changes, lang))
    return "\n".join(lines)


def keyed_note(plans: dict[str, KeyPlan], lang: str = "zh") -> str:
    """Which sheets had their rows matched by key, and by which columns; empty when none."""
    if not plans:
        return ""
    zh = ";".join(f"“{name}”按 {' + '.join(p.names_zh)}" for name, p in plans.items())
    en = "; ".join(f"'{name}' by {' + '.join(p.names_en)}" for name, p in plans.items())
    return _say(lang, f"按关键列匹配行:{zh}。要按位置比较,请加 --by-position。",
                f"Rows matched by key: {en}. Add --by-position to compare by position.")


def _vba_detail(change: CellChange, lang: str) -> str:
    def short(digest: str | None) -> str:
        return f"sha256 {digest[:12]}…" if digest else ""

    if change.old is None:
        return _say(lang, "VBA 宏项目:新增", "VBA project added") + f" → {short(change.new)}"
    if change.new is None:
        return _say(lang, "VBA 宏项目:删除", "VBA project removed") + f" ({short(change.old)})"
    return _say(lang, "VBA 宏项目:已更改", "VBA project changed") + f" {short(change.old)} → {short(change.new)}"


def _label(lang: str, zh: str, en: str, sep: str = "\n") -> str:
    return en if lang == "en" else f"{zh}{sep}{en}"


@dataclass
class Comparison:
    """Two workbooks read once, how their rows were matched, and what differs."""

    a: Book
    b: Book
    plans: dict[str, KeyPlan]
    changes: list[CellChange]
    keys_unmatched: bool = False  # `--by-key` named columns that no sheet has


def compare(a: Any, b: Any, *, tolerance: float = 0.0, by_key: list[str] | None = None,
            by_position: bool = False) -> Comparison:
    """What `kpi diff` does before it prints: read both workbooks, decide how each sheet's
    rows are matched, and list the changes. Raises DiffInputError if either cannot be read."""
    book_a = a if isinstance(a, Book) else load_book(a)
    book_b = b if isinstance(b, Book) else load_book(b)
    keys = list(by_key or []) or None
    plans = key_plans(book_a, book_b, keys, by_position=by_position)
    changes = diff_workbooks(book_a, book_b, tolerance=tolerance, by_key=keys, by_position=by_position)
    return Comparison(book_a, book_b, plans, changes, bool(_expand_keys(keys)) and not plans)


def keys_unmatched_note(by_key: Iterable[str], lang: str = "zh") -> str:
    names = ", ".join(by_key)
    return _say(lang, f"没有工作表包含关键列 {names},已逐个单元格比较。",
                f"No sheet has the key column(s) {names}; compared cell by cell.")


def by_key_and_position_note(lang: str = "zh") -> str:
    return _say(lang, "--by-key 与 --by-position 只能选一个。", "Use either --by-key or --by-position, not both.")


def out_is_input_note(out: Any, lang: str = "zh") -> str:
    return _say(lang, f"--out 不能覆盖被比较的文件 {out}。请换一个报告文件名。",
                f"--out must not overwrite a compared file ({out}). Choose another report file name.")


def report_written_note(out: Any, lang: str = "zh") -> str:
    return _say(lang, f"差异报告已写入 {out}", f"Report written to {out}")


# ---------------------------------------------------------------------------------------------
# the xlsx report

MAX_COMMENTS_PER_SHEET = 1000
_FILLS = {VALUE: "#FFEB9C", FORMULA: "#FFEB9C", REMOVED: "#FFC7CE", ADDED: "#C6EFCE"}
_DATE_SHOWN = "yyyy-mm-dd hh:mm:ss"  # a date in a cell whose own format is not a date format


class _Formats:
    """xlsxwriter formats made on demand: fill by change kind, wrap for multi-line text, and
    the cell's own number format, so a value prints as it did in its workbook."""

    def __init__(self, workbook: Any) -> None:
        self.workbook = workbook
        self.cache: dict[tuple, Any] = {}
        self.header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top",
                                           "bg_color": "#D9E1F2", "border": 1})
        self.title = workbook.add_format({"bold": True, "bg_color": "#D9E1F2"})
        self.muted = workbook.add_format({"font_color": "#808080", "align": "center"})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})

    def get(self, kind: str | None, value: Any, number_format: Any = None, *,
            wrap: bool = False, left: bool = False) -> Any:
        """The format of one written cell (top-aligned, so the cells of a tall row line up)."""
        wrap = wrap or (isinstance(value, str) and "\n" in value)
        code = number_format if isinstance(number_format, str) and number_format != GENERAL else None
        if isinstance(value, (dt.datetime, dt.date, dt.time)):
            code = code if code and is_date_format(code) else _DATE_SHOWN
        elif not _is_number(value):
            code = None
        key = (kind, wrap, code, left)
        if key not in self.cache:
            props: dict[str, Any] = {"valign": "top"}
            if kind:
                props.update({"bg_color": _FILLS[kind], "border": 1, "italic": kind == FORMULA})
            if wrap:
                props["text_wrap"] = True
            if code:
                props["num_format"] = code
            if left:
                props["align"] = "left"
            self.cache[key] = self.workbook.add_format(props)
        return self.cache[key]


def _print_setup(ws: Any, lang: str, repeat: tuple[int, int]) -> None:
    """Landscape A4, as wide as one page, header rows on every page, page numbers below."""
    ws.set_landscape()
    ws.set_paper(9)
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(*repeat)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    ws.set_footer("&L&A&R" + _label(lang, "第 &P 页,共 &N 页", "Page &P of &N", " / "))


def write_diff_report(path: Any, a: Any, b: Any, changes: list[CellChange],
                      lang: str = "zh", *, by_key: list[str] | None = None,
                      by_position: bool = False) -> Path:
    """An xlsx an auditor can read and print: the list of changes (old and new side by
    side, as their cells show them), then each changed sheet with A and B side by side,
    matched rows on one line and the changed cells filled. Input text is always written as
    text; pass the same `by_key`/`by_position` as to `diff_workbooks`."""
    book_a = a if isinstance(a, Book) else load_book(a)
    book_b = b if isinstance(b, Book) else load_book(b)
    plans = key_plans(book_a, book_b, by_key, by_position=by_position)
    out = Path(path)
    workbook = new_workbook(out, title=_label(lang, "工作簿差异", "Workbook differences", " "))
    formats = _Formats(workbook)
    taken: set[str] = set()
    _write_change_list(workbook, taken, changes, formats, lang)
    by_sheet: dict[str, list[CellChange]] = {}
    for change in changes:
        if change.kind != VBA:  # not a sheet: listed above only
            by_sheet.setdefault(change.sheet, []).append(change)
    for name, sheet_changes in by_sheet.items():
        _write_side_by_side(workbook, taken, name, book_a, book_b, sheet_changes, formats, lang,
                            plans.get(name))
    workbook.close()
    return out


def _write_change_list(workbook: Any, taken: set[str], changes: list[CellChange],
                       formats: _Formats, lang: str) -> None:
    sheet = workbook.add_worksheet(safe_sheet_name(_label(lang, "差异", "Changes", " "), taken))
    keyed = any(c.key for c in changes)
    titles = [_label(lang, "工作表", "Sheet"), _label(lang, "单元格", "Cell")]
    titles += [_label(lang, "行(关键列)", "Row (key)")] if keyed else []
    titles += [_label(lang, "类型", "Kind"), _label(lang, "旧值 (A)", "Old (A)"),
               _label(lang, "新值 (B)", "New (B)")]
    old_col = len(titles) - 2
    sheet.write_row(0, 0, titles, formats.header)
    sheet.set_row(0, 16 if lang == "en" else 30)
    widths: list[list[Any]] = [t.split("\n") for t in titles]
    for i, change in enumerate(changes, start=1):
        row = [change.sheet, change.cell] + ([change.key] if keyed else [])
        row += [_kind_label(change, lang)]
        for col, value in enumerate(row):
            _write_value(sheet, i, col, value, formats.get(None, value))
            widths[col].append(value)
        old, new = _old_new(change, lang, 200)
        for col, value, number_format, text in ((old_col, change.old, change.old_format, old),
                                                (old_col + 1, change.new, change.new_format, new)):
            # Left-aligned and wrapped: old and new read side by side however wide a value is.
            if isinstance(value, (list, tuple)) or (change.kind == VALUE and old == new):
                shown = text if value is not None else None  # a row, or equal-looking values
                _write_value(sheet, i, col, shown, formats.get(None, shown, wrap=True, left=True))
            else:
                _write_value(sheet, i, col, value,
                             formats.get(None, value, number_format, wrap=True, left=True))
            widths[col].append(text if value is not None else "")
    for col, values in enumerate(widths):
        sheet.set_column(col, col, fit_width(values, maximum=45 if col >= old_col else 40))
    sheet.freeze_panes(1, 0)
    if changes:
        sheet.autofilter(0, 0, len(changes), len(titles) - 1)
    _print_setup(sheet, lang, (0, 0))


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
    elif isinstance(value, (dt.datetime, dt.date, dt.time)):
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
                        changes: list[CellChange], formats: _Formats, lang: str,
                        plan: KeyPlan | None) -> None:
    """A and B next to each other: column 0 holds A's row numbers, then A's columns, then
    B's row numbers, then B's columns; the report rows start below a title row and a
    column-letters row. By position, row r of both sits on one report row; by key, a
    matched pair of rows does, and a row only one side has faces a blank row."""
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
    if plan is None:
        last_row = max(sa.max_row, sb.max_row, max((r for r, _ in (*marks_a, *marks_b)), default=0))
        pairs: list[tuple[int | None, int | None]] = [(r, r) for r in range(1, last_row + 1)]
    else:
        top = max(plan.header_a, plan.header_b)
        pairs = [(r if r <= plan.header_a else None, r if r <= plan.header_b else None)
                 for r in range(1, top + 1)]
        pairs += _row_pairs(sa, sb, plan)
    line_a = {ra: i + 2 for i, (ra, _) in enumerate(pairs) if ra is not None}
    line_b = {rb: i + 2 for i, (_, rb) in enumerate(pairs) if rb is not None}

    ws = workbook.add_worksheet(safe_sheet_name(name, taken))
    ws.set_comments_author("kpi diff")
    width_a = max(sa.max_col, max((c for _, c in marks_a), default=0), 1)
    width_b = max(sb.max_col, max((c for _, c in marks_b), default=0), 1)
    start_b = width_a + 2  # B's column A; B's row numbers just left of it
    titles = []
    for book, zh, en in ((book_a, "A(旧)", "A (old)"), (book_b, "B(新)", "B (new)")):
        title = _label(lang, zh, en, " / ") + f": {Path(book.path).name}"
        if name not in book.sheets:
            title += " — " + _label(lang, "无此工作表", "no such sheet", " / ")
        titles.append(title)
    for first, width, title in ((1, width_a, titles[0]), (start_b, width_b, titles[1])):
        if width > 1:
            ws.merge_range(0, first, 0, first + width - 1, title, formats.title)
        else:
            ws.write_string(0, first, title, formats.title)
    for first, width in ((1, width_a), (start_b, width_b)):
        for c in range(1, width + 1):
            ws.write_string(1, first + c - 1, get_column_letter(c), formats.muted)
    for ra, line in line_a.items():
        ws.write_number(line, 0, ra, formats.muted)
    for rb, line in line_b.items():
        ws.write_number(line, start_b - 1, rb, formats.muted)
    widths: dict[int, list[Any]] = {}
    lines: dict[int, int] = {}
    comments = 0
    for side, marks, lines_of, offset in ((sa, marks_a, line_a, 1), (sb, marks_b, line_b, start_b)):
        filled = Counter(r for r, _ in side.cells)
        for pos in sorted(side.cells.keys() | marks.keys()):
            if pos[0] not in lines_of:
                continue
            cell = side.cells.get(pos)
            shown = None if cell is None else (cell.formula if cell.formula is not None else cell.value)
            number_format = None if cell is None or cell.formula is not None else cell.number_format
            marked = marks.get(pos)
            row, col = lines_of[pos[0]], offset + pos[1] - 1
            _write_value(ws, row, col, shown,
                         formats.get(marked.kind if marked else None, shown, number_format))
            text = _clip(shown_as(shown, number_format), 40) if shown is not None else ""
            if isinstance(shown, str):
                lines[row] = max(lines.get(row, 1), shown.count("\n") + 1)
                text = _clip(max(shown.split("\n"), key=display_width), 40)
                if filled[pos[0]] == 1:  # a title or note alone on its row spills over
                    text = text[:12]
            widths.setdefault(col, []).append(text)
            if marked and marked.kind in (VALUE, FORMULA) and comments < MAX_COMMENTS_PER_SHEET:
                old, new = _old_new(marked, lang, 200)
                ws.write_comment(row, col, f"{_kind_label(marked, lang)}: {old} → {new}")
                comments += 1
    for row, count in lines.items():
        if count > 1:  # xlsxwriter cannot autofit heights: size multi-line rows ourselves
            ws.set_row(row, 14 * min(count, 8))
    ws.set_column(0, 0, 5)
    ws.set_column(start_b - 1, start_b - 1, 5)
    for col, values in widths.items():
        ws.set_column(col, col, fit_width(values, maximum=40))
    ws.freeze_panes(2, 1)
    _print_setup(ws, lang, (0, 1))


__all__ = [
    "ADDED", "FORMULA", "KINDS", "REMOVED", "VALUE", "VBA", "Book", "CellChange", "DiffInputError", "ExcelError",
    "Comparison", "KeyPlan", "SheetData", "by_key_and_position_note", "compare", "count_line", "diff_workbooks",
    "format_changes", "key_plans", "keyed_note", "keyed_sheets", "keys_unmatched_note", "out_is_input_note",
    "report_written_note", "load_book", "normalize_formula", "shown_as", "values_equal",
    "write_diff_report",
]
