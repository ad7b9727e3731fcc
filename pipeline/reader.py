"""Reading HR's workbooks into frames whose rows remember their origin cell.

A file is classified by its `_meta` sheet, else by sheet names, else by headers; never
guessed between two kinds. Headers are found under title rows and matched by Chinese label,
English label, field name or both. Data is read with calamine (fast); the sheet XML is only
consulted for what calamine hides: formulas never calculated and error cells (#N/A, #DIV/0!),
which calamine reads as blanks.

Formats: .xlsx and .xlsm (data only: nothing in a workbook is ever run), legacy .xls (BIFF,
read by calamine) and .csv (UTF-8 or GB18030, one sheet of text). Before calamine sees an
.xlsx, `pipeline.safety` has sized every member, refused DTDs in every XML part and scanned
every sheet's cells against the limits, in the same pass that finds the hidden cells.
Every problem with a file becomes a finding; no exception (not even a Rust panic) escapes.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import os
import re
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
from defusedxml import ElementTree as SafeET
from pandas.api.types import infer_dtype
from python_calamine import CalamineWorkbook
from xlsxwriter.utility import xl_col_to_name

from pipeline.findings import WARNING, Finding, finding
from pipeline.kinds import ID, KINDS, TEMPLATE_VERSION, Kind, SheetSpec, fold, header_aliases
from pipeline.normalize import Distinct, is_blank
from pipeline.safety import (
    CSV,
    XLSX,
    Limits,
    SheetExtent,
    Source,
    UnreadableInput,
    cell_positions,
    check_extent,
    check_input_file,
    check_merged_ranges,
    check_workbook_cells,
    check_xls_sheets,
    normalised_xls,
    normalised_xlsx,
    scan_workbook_sheets,
)
from pipeline.workers import run_biggest_first

# A Rust panic inside calamine prints its message, and with RUST_BACKTRACE set a backtrace of
# some sixty frames, on the process's stderr before Python sees the exception. Neither is for
# HR: no backtrace is ever taken, and stderr is closed around calamine (`_calamine_quiet`).
os.environ["RUST_BACKTRACE"] = "0"

HEADER_SCAN_ROWS = 30
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".csv"}
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


@dataclass
class Table:
    """One template sheet as read: raw values by field, with each row's Excel row number."""

    spec: SheetSpec
    file: str
    sheet: str
    frame: pd.DataFrame  # columns: field names present + `_row`
    letters: dict[str, str]  # field -> column letter
    extra: dict[str, str] = field(default_factory=dict)  # unmatched header -> column letter
    header_row: int = 1
    bad_cells: dict[str, str] = field(default_factory=dict)  # cell -> rule already reported
    # field -> (codes, distinct values) of its column, as the reader factorised it: validation
    # parses each distinct value once without hashing the column again (and then drops them).
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    def cell(self, field_name: str, row: int) -> str:
        letter = self.letters.get(field_name, "")
        return f"{letter}{row}" if letter else f"{row}"


@dataclass
class MatrixSheet:
    """An AHP-<role family> sheet as read: its cells, in which the weights module finds the
    matrix. Read with the workbook (so the same guards apply) and never opened again.

    Only these small sheets keep their cells after reading. `rows`: calamine's rows of the used
    area, which starts at row `top`, column `left` (0-based) of the sheet. `hidden`: the cells
    calamine shows blank that are not, by reference ({"C2": ("formula", "=1/3")}, ("error",
    "#N/A")), from the scan of the sheet's XML that finds them for tables too."""

    file: str
    sheet: str
    role_family: str
    rows: list[list] = field(default_factory=list, repr=False)
    top: int = 0
    left: int = 0
    hidden: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def cells(self) -> list[list]:
        """The sheet's cells from A1 to its last cell, as lists ("" outside the used area)."""
        grid = _Grid(self.rows, self.top, self.left)
        return grid.head(grid.height)


@dataclass(frozen=True)
class InputBytes:
    """One input file as read, once: its bytes (None when it is too large to read at all) and
    the size and modification time it had when opened. What is checked, parsed and hashed
    is these bytes, whatever happens to the file on disk meanwhile."""

    data: bytes | None
    size: int
    mtime_ns: int


def load_input(path: Path, limits: Limits = Limits()) -> InputBytes:
    """Read a file once, with the modification time it had when opened; UnreadableInput
    (naming the reason: permission denied, vanished, a folder...) when it cannot be read.
    A file larger than `limits.max_file_bytes` is not read into memory at all."""
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if status.st_size > limits.max_file_bytes:  # refused by its size alone
                return InputBytes(None, status.st_size, status.st_mtime_ns)
            data = handle.read()
    except OSError as exc:
        raise _open_refusal(exc) from None
    return InputBytes(data, len(data), status.st_mtime_ns)


def _open_refusal(exc: OSError) -> UnreadableInput:
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        return UnreadableInput(
            f"没有读取权限({reason})。请让文件所有者开放读取权限,或把文件另存一份到收件箱",
            f"permission denied ({reason}). Ask the file's owner for read access, or save a copy "
            "of it into the inbox")
    if isinstance(exc, FileNotFoundError):
        return UnreadableInput(f"文件在读取前消失了({reason})。请确认文件仍在收件箱中后重新运行",
                               f"the file vanished before it was read ({reason}). Check that it is "
                               "still in the inbox and run again")
    return UnreadableInput(f"无法打开文件({reason})", f"cannot open the file ({reason})")


@dataclass
class WorkbookRead:
    path: Path
    file: str
    kind: str | None = None
    version: str | None = None
    tables: list[Table] = field(default_factory=list)
    matrices: list[MatrixSheet] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # The tables' row count once their rows are released (`release_rows`), else None.
    released_rows: int | None = field(default=None, repr=False, compare=False)
    # The bytes read (once) and what the manifest records of them: the SHA-256 is of exactly
    # what was parsed. `size` and `mtime_ns` are the file's as it was opened, compared again
    # at the end of a run (`changed_since_read`). None where the file could not be read.
    sha256: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    data: bytes | None = field(default=None, repr=False, compare=False)
    # Set by validation when this file is a copy of another inbox file: its rows are not used.
    copy_of: str | None = None
    # For a file no template fits: the kind its headers come closest to (what it would have held).
    closest_kind: str | None = None

    @property
    def rows(self) -> int:
        if self.released_rows is not None:
            return self.released_rows
        return sum(len(t.frame) for t in self.tables)

    def release_bytes(self) -> None:
        """Drop the bytes read once nothing will parse the file again."""
        self.data = None

    def changed_since_read(self) -> str | None:
        """How the file on disk differs from when it was read ("changed", "removed"), or None.

        Size and modification time, as `make` and `rsync` judge it: a file rewritten while the
        run read it (or after) is named, so nobody trusts a result computed from the old bytes
        without knowing."""
        if self.size is None or self.mtime_ns is None:
            return None
        try:
            now = self.path.stat()
        except FileNotFoundError:
            return "removed"
        except OSError:
            return "changed"
        return None if (now.st_size, now.st_mtime_ns) == (self.size, self.mtime_ns) else "changed"

    def release_rows(self) -> None:
        """Drop the cell values read, once validation has typed them: at 100,000 employees they
        are hundreds of MB. What else a table holds (file, sheet, column letters, header row)
        stays, so cells can still be named, and `rows` still counts the rows read."""
        if self.released_rows is None:
            self.released_rows = self.rows
        for table in self.tables:
            table.frame = table.frame.iloc[0:0].copy()  # a copy: a view would keep the rows
            table.codes = {}


# ------------------------------------------------------------------------------ classification

def _alias_map(spec: SheetSpec) -> dict[str, str]:
    return {alias: f.name for f in spec.fields for alias in header_aliases(f)}


_ALIASES = {(kind.name, spec.name): _alias_map(spec) for kind in KINDS.values() for spec in kind.tables}


def _sheet_matches(spec: SheetSpec, sheet_name: str) -> bool:
    name = fold(sheet_name)
    if spec.prefix:
        return spec.after_prefix(sheet_name) is not None
    names = {fold(spec.name), fold(spec.zh), fold(spec.en), fold(f"{spec.en} {spec.zh}"),
             fold(spec.zh + spec.en)} - {""}
    return name in names


def _header_row(grid: list[list], aliases: dict[str, str]) -> tuple[int, dict[int, str], int]:
    """(row index, column index -> field, matched count) of the best header row in the grid."""
    best: tuple[int, dict[int, str], int] = (-1, {}, 0)
    for index, row in enumerate(grid[:HEADER_SCAN_ROWS]):
        matched: dict[int, str] = {}
        for col, value in enumerate(row):
            if isinstance(value, str) and value.strip():
                name = aliases.get(fold(value))
                if name is not None:
                    matched[col] = name
        if len(set(matched.values())) > best[2]:
            best = (index, matched, len(set(matched.values())))
    return best


def _meta_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # version 1 typed as a number reads 1.0
    return str(value).strip()


def _meta(grid: list[list] | None) -> tuple[str | None, str | None]:
    """(kind, version) from a `_meta` sheet's grid (None when the workbook has none)."""
    if not grid:
        return None, None
    meta = {fold(row[0]): _meta_text(row[1]) for row in grid if len(row) >= 2 and isinstance(row[0], str)}
    return meta.get("kind"), meta.get("version")


def _kinds_by_headers(grid: list[list]) -> list[str]:
    """The kinds whose sheet this grid's header row fits best (required columns all present)."""
    scores: dict[str, int] = {}
    for kind in KINDS.values():
        for spec in kind.tables:
            _, matched, count = _header_row(grid, _ALIASES[(kind.name, spec.name)])
            if {f.name for f in spec.required} <= set(matched.values()):
                scores[kind.name] = max(scores.get(kind.name, 0), count)
    if not scores:
        return []
    top = max(scores.values())
    return [k for k, v in scores.items() if v == top]


def _found_headers(grid: list[list], row: int) -> list[str]:
    """The headers a sheet has in `row` (its first filled row when `row` is -1)."""
    rows = grid[:HEADER_SCAN_ROWS]
    if row < 0:
        row = next((i for i, r in enumerate(rows) if sum(isinstance(v, str) and v.strip() != "" for v in r) >= 2), -1)
    if row < 0:
        return []
    return [" ".join(str(v).split())[:30] for v in rows[row] if isinstance(v, str) and v.strip()]


def closest_template(grids: dict[str, list[list]], file: str) -> tuple[Kind, SheetSpec, str, list[str]] | None:
    """For a file no template fits: the template sheet its headers come closest to (headers that
    are a template's or its everyday synonyms count twice, near misses such as 完成数 for 完成值
    once; the file's name breaks ties), that sheet's name in the file and the headers found."""
    import difflib

    by_name = kind_from_name(file)
    best: tuple | None = None
    for sheet, grid in grids.items():
        for kind in KINDS.values():
            for spec in kind.tables:
                aliases = _ALIASES[(kind.name, spec.name)]
                row, matched, count = _header_row(grid, aliases)
                found = _found_headers(grid, row if count else -1)
                near = sum(bool(difflib.get_close_matches(fold(h), list(aliases), n=1, cutoff=0.6)) for h in found)
                score = (2 * count + near, kind.name == by_name)
                if found and (best is None or score > best[0]):
                    best = (score, kind, spec, sheet, found)
    if best is None:
        return None
    if best[0][0] == 0 and by_name is None:  # nothing alike: no template to point at
        return None
    _, kind, spec, sheet, found = best
    if best[0][0] == 0 and by_name is not None:
        kind = KINDS[by_name]
        spec = kind.tables[0]
    return kind, spec, sheet, found


def unknown_kind_finding(grids: dict[str, list[list]], file: str) -> tuple[Finding, str | None]:
    """"Cannot tell which template": with the closest template's headers and the headers found,
    so HR sees what to rename; and that template's kind."""
    closest = closest_template(grids, file)
    if closest is None:
        return finding("unknown_kind", file=file), None
    kind, spec, sheet, found = closest
    expected_zh = "、".join(f.zh + ("*" if f.required else "") for f in spec.fields)
    expected_en = ", ".join(f.en + ("*" if f.required else "") for f in spec.fields)
    shown = found[:15] + (["…"] if len(found) > 15 else [])
    several = len(kind.tables) > 1
    hint = (f"最接近的是“{kind.zh}”模板" + (f"的工作表“{spec.zh}”" if several else "") +
            f",应有表头:{expected_zh}(* 为必填);本文件工作表“{sheet}”的表头是:{'、'.join(shown)}。")
    hint_en = (f"Closest is the {kind.en} template" + (f" (sheet '{spec.en}')" if several else "") +
               f", whose headers are: {expected_en} (* required); this file's sheet '{sheet}' has: "
               f"{', '.join(shown)}. ")
    return finding("unknown_kind", file=file, sheet=sheet, hint=hint, hint_en=hint_en), kind.name


def _named_sheet(sheet_name: str) -> bool:
    return any(_sheet_matches(s, sheet_name) for k in KINDS.values() for s in k.sheets)


def classify(sheet_names: list[str], grids: dict[str, list[list]], meta_kind: str | None = None,
             named: bool = True) -> tuple[list[str], str]:
    """Candidate kinds for a workbook and how they were found (`meta`, `sheets`, `headers`).

    Several candidates mean the file is ambiguous: sheets named for two kinds, or sheets whose
    headers fit two kinds (e.g. a roster pasted beside the actuals), are reported, not guessed.
    `named=False` (a CSV file, whose one "sheet" is named after the file) classifies by
    headers alone.
    """
    if meta_kind in KINDS:
        return [meta_kind], "meta"
    by_sheet = {
        k.name for k in KINDS.values()
        if named and any(_sheet_matches(s, n) for s in k.sheets for n in sheet_names)
    }
    # Sheets not named for any kind count by their headers, so nothing in the file is ignored.
    by_headers = {k for name, grid in grids.items() if not (named and _named_sheet(name))
                  for k in _kinds_by_headers(grid)}
    if by_sheet:
        return sorted(by_sheet | by_headers), "sheets"
    return sorted(by_headers), "headers"


# Words in a file name that say which kind it holds: a file that could not be read still
# tells, by its name, what will be missing because of it.
_NAME_WORDS = {
    "roster": ("花名册", "名册", "roster"),
    "indicators": ("指标库", "indicator"),
    "agreements": ("协议", "岗位指标", "个人指标", "agreement", "kpis"),
    "actuals": ("实际", "actual"),
    "ratings": ("评分", "评价", "360", "rating"),
    "weights": ("权重", "专家打分", "weight", "ahp"),
    "dept_targets": ("部门目标", "dept", "department"),
}


def kind_from_name(file: str) -> str | None:
    """The kind a file's name points to (`行为评分.xlsx` → ratings), None unless exactly one."""
    name = fold(PurePath(file).stem)
    found = {kind for kind, words in _NAME_WORDS.items() if any(word in name for word in words)}
    return found.pop() if len(found) == 1 else None


# ------------------------------------------------------------------------------ hidden cells

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


# A formula element (any namespace prefix) or an error-typed cell inside <sheetData>: only
# those cells are parsed, so a sheet of plain values costs one regex search.
# Three patterns, each with a literal start: one alternation of them scans 15 times slower.
_HITS = (re.compile(rb"<f[\s/>]"), re.compile(rb":f[\s/>]"), re.compile(rb"t=[\"']e[\"']"))
_SHEET_DATA_TAG = re.compile(rb"<([A-Za-z_][\w.\-]*:)?sheetData[\s/>]")
_NS_DECL = re.compile(rb"""\sxmlns(?::([A-Za-z_][\w.\-]*))?\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def hidden_cells(data: bytes, prefixed: bool = True) -> dict[str, tuple[str, str]]:
    """Cells calamine shows blank but are not, in one worksheet's XML: {cell: ("formula" |
    "error", text)} for formulas never calculated and error values (#N/A, #DIV/0!).

    Only the cells around a formula tag or an error type are parsed (with defusedxml); a
    sheet where that is not possible (odd prefixes, cells without references) is parsed whole.
    `prefixed=False`: the caller knows the sheet data holds no prefixed tag (`<x:f>`).
    """
    match = _SHEET_DATA_TAG.search(data)
    if not match:
        return {}
    start = match.start()
    end = data.rfind(b"sheetData", match.end())
    end = len(data) if end < 0 else end
    patterns = _HITS if prefixed else _HITS[::2]
    hits = sorted(m.start() for pattern in patterns for m in pattern.finditer(data, start, end))
    if not hits:
        return {}
    prefix = match.group(1) or b""
    open_tag, close_tag = b"<" + prefix + b"c", b"</" + prefix + b"c>"
    fragments: dict[int, bytes] = {}
    for hit in hits:
        cell = data.rfind(open_tag, start, hit + 1)
        while cell >= 0 and data[cell + len(open_tag):cell + len(open_tag) + 1] not in (b" ", b"\t", b"\r", b"\n", b">", b"/"):
            cell = data.rfind(open_tag, start, cell)
        if cell < 0:
            return _hidden_cells_parsed(data)
        if cell in fragments:
            continue
        tag_end = data.find(b">", cell)
        if tag_end > 0 and data[tag_end - 1:tag_end] == b"/":
            stop = tag_end + 1
        else:
            close = data.find(close_tag, cell)
            stop = close + len(close_tag) if close >= 0 else -1
        if stop < 0 or stop <= hit:
            return _hidden_cells_parsed(data)
        fragments[cell] = data[cell:stop]
    root = data[:start]
    declarations = b" ".join(b"xmlns" + (b":" + p if p else b"") + b'="' + (a or b) + b'"'
                             for p, a, b in _NS_DECL.findall(root))
    try:
        wrapper = SafeET.fromstring(b"<w " + declarations + b">" + b"".join(fragments.values()) + b"</w>")
    except SafeET.ParseError:
        return _hidden_cells_parsed(data)
    elements = [e for e in wrapper if _local(e.tag) == "c"]
    if len(elements) != len(fragments):
        return _hidden_cells_parsed(data)
    offsets = list(fragments)
    unnamed = [offsets[i] for i, e in enumerate(elements) if not e.get("r")]
    positions = cell_positions(data, unnamed) if unnamed else {}
    found: dict[str, tuple[str, str]] = {}
    for offset, element in zip(offsets, elements):
        ref = element.get("r")
        if not ref:
            if offset not in positions:
                continue
            row, col = positions[offset]
            ref = f"{xl_col_to_name(col - 1)}{row}"
        what = _hidden(element)
        if what:
            found[ref.upper()] = what
    return found


def _hidden(element) -> tuple[str, str] | None:
    """("formula" | "error", text) when calamine would show this <c> element blank."""
    formula = value = None
    for child in element:
        name = _local(child.tag)
        if name == "f":
            formula = child
        elif name == "v":
            value = child
    cached = value is not None and value.text not in (None, "")
    if value is not None and element.get("t") == "str":
        cached = True  # Excel's `<c t="str"><v></v>`: the formula's result is ""
    if element.get("t") == "e":
        return ("error", value.text if cached and value is not None else "#ERROR")
    if formula is not None and not cached and element.get("t") != "inlineStr":
        return ("formula", "=" + (formula.text or "(shared formula)"))
    return None


def _hidden_cells_parsed(data: bytes) -> dict[str, tuple[str, str]]:
    """The whole sheet through defusedxml: for the odd sheets the fast path cannot take."""
    found: dict[str, tuple[str, str]] = {}
    for _, element in SafeET.iterparse(_BytesReader(data)):
        if _local(element.tag) != "c":
            continue
        what = _hidden(element)
        ref = element.get("r")
        if what and ref:
            found[ref.upper()] = what
        element.clear()
    return found


class _BytesReader:
    """A minimal file object for iterparse over bytes already in memory."""

    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data) - self._pos
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk


# ------------------------------------------------------------------------------ reading

class _Grid:
    """A sheet's cells as calamine gives them: the rows of its used area (all of one length),
    which starts at row `top`, column `left` (0-based) of the sheet. Rows and columns outside
    it are empty. Nothing is padded or copied until a part of the sheet is asked for."""

    __slots__ = ("rows", "top", "left", "height", "width")

    def __init__(self, rows: list[list], top: int = 0, left: int = 0):
        self.rows, self.top, self.left = rows, top, left
        self.height = top + len(rows) if rows else 0  # rows from row 1 to the last one
        self.width = left + len(rows[0]) if rows else 0  # columns from A to the last one

    def row(self, index: int) -> list:
        """Row `index` (0-based) from column A, as a new list."""
        if not self.top <= index < self.height:
            return [""] * self.width
        row = self.rows[index - self.top]
        return [""] * self.left + row if self.left else list(row)

    def head(self, count: int) -> list[list]:
        """The first `count` rows from A1, as lists."""
        return [self.row(index) for index in range(min(count, self.height))]

    def cell(self, row: int, col: int) -> object:
        if self.top <= row < self.height and self.left <= col < self.width:
            return self.rows[row - self.top][col - self.left]
        return ""

    def columns(self, first: int, wanted: list[int]) -> dict[int, np.ndarray]:
        """Columns `wanted` from row `first` down to the last row, one object array each."""
        count = max(self.height - first, 0)
        body = self.rows[max(first - self.top, 0):]
        above = count - len(body)  # rows of the data above the used area: empty
        width = self.width - self.left
        out = {}
        for col in wanted:
            index = col - self.left
            if not body or not 0 <= index < width:
                out[col] = np.full(count, "", dtype=object)
                continue
            try:
                values = np.fromiter(map(itemgetter(index), body), dtype=object, count=len(body))
            except IndexError:  # rows of different lengths (not from calamine): short ones padded
                values = np.fromiter((row[index] if index < len(row) else "" for row in body), dtype=object,
                                     count=len(body))
            if above:
                values = np.concatenate([np.full(above, "", dtype=object), values])
            out[col] = values
        return out


def _header_view(grid: _Grid, merged: list) -> list[list]:
    """The rows where a header may be, with a cell merged down several rows shown in each."""
    view = grid.head(HEADER_SCAN_ROWS)
    for (r0, c0), (r1, _) in merged or ():
        if r1 == r0 or r0 >= len(view) or c0 >= len(view[r0]):
            continue
        for r in range(r0 + 1, min(r1, len(view) - 1) + 1):
            if c0 < len(view[r]):
                view[r][c0] = view[r0][c0]
    return view


def _fill_merged(grid: _Grid, merged: list, first_data: int,
                 columns: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """A value merged down several data rows (e.g. a department) belongs to each of them.

    Only ranges that start in the data count: a title or header merged down into the data is
    not data. `columns` (sheet column -> its values from row `first_data`) are filled in
    place; returns, for each of them that a range covers, which of its cells were filled
    beyond a range's first cell.
    """
    height, width = grid.height, grid.width
    ranges = [((r0, c0), (r1, c1)) for (r0, c0), (r1, c1) in merged or ()
              if first_data <= r0 < height and c0 < width]
    # Merged ranges do not overlap in a file Excel wrote: more merged cells than the sheet has
    # is a crafted file, refused before it costs minutes.
    area = sum((min(r1, height - 1) - r0 + 1) * max(min(c1, width - 1) - c0 + 1, 0)
               for (r0, c0), (r1, c1) in ranges)
    if area > height * width:
        raise UnreadableInput("合并单元格区域互相重叠,不是 Excel 保存的正常文件。请取消合并后另存为 .xlsx。",
                              "its merged cell ranges overlap, which Excel never saves. Unmerge them "
                              "and save it again as .xlsx.")
    filled: dict[int, np.ndarray] = {}
    # Ranges are filled one after another; where they overlap, a later range's first cell may
    # hold what an earlier one put there: remembered for the columns not kept.
    corners: dict[int, set[int]] = {}
    for (r0, c0), _ in ranges:
        if c0 not in columns:
            corners.setdefault(c0, set()).add(r0)
    moved: dict[tuple[int, int], object] = {}
    for (r0, c0), (r1, c1) in ranges:
        if c0 in columns:
            value = columns[c0][r0 - first_data]
        else:
            value = moved.get((r0, c0), grid.cell(r0, c0))
        last = min(r1, height - 1)
        for c in range(c0, min(c1, width - 1) + 1):
            low = r0 + 1 if c == c0 else r0  # the range's first cell keeps its value
            if c in columns:
                if low <= last:
                    columns[c][low - first_data:last + 1 - first_data] = value
                    mask = filled.setdefault(c, np.zeros(len(columns[c]), dtype=bool))
                    mask[low - first_data:last + 1 - first_data] = True
            elif c in corners:
                for r in corners[c]:
                    if low <= r <= last:
                        moved[(r, c)] = value
    return filled


# What pandas' `infer_dtype` says of a column that holds no text (nothing blank but NaN).
_NO_TEXT = {"floating", "integer", "mixed-integer-float", "boolean", "empty"}

_EXAMPLE = re.compile(r"^\s*(示例|example|e\.g\.)", re.IGNORECASE)


def _read_table(spec: SheetSpec, kind: Kind, file: str, sheet_name: str, grid: _Grid, view: list[list],
                merged: list, hidden: dict[str, tuple[str, str]]) -> tuple[Table | None, list[Finding]]:
    aliases = _ALIASES[(kind.name, spec.name)]
    header_index, matched, _ = _header_row(view, aliases)
    findings: list[Finding] = []
    if header_index < 0:
        header = spec.fields[0].header.replace("\n", " ")
        return None, [finding("no_header", file=file, sheet=sheet_name, example_header=header)]
    header_row = header_index + 1
    letters: dict[str, str] = {}
    columns: dict[str, int] = {}
    for col, name in sorted(matched.items()):
        if name in columns:
            label = spec.field(name).label
            cells = f"{letters[name]}{header_row}, {xl_col_to_name(col)}{header_row}"
            findings.append(finding("duplicate_column", file=file, sheet=sheet_name,
                                    cell=f"{xl_col_to_name(col)}{header_row}", column=label, cells=cells))
            continue
        columns[name] = col
        letters[name] = xl_col_to_name(col)
    extra = {
        str(value).strip(): xl_col_to_name(col)
        for col, value in enumerate(view[header_index])
        if col not in matched and not is_blank(value)
    }
    for f in spec.required:
        if f.name not in columns:
            findings.append(finding("missing_column", file=file, sheet=sheet_name,
                                    cell=f"{header_row}", column=f.label))
    # The table's columns, from the row under the header down, one array each: whole columns
    # are judged at once (blank, example, shared text), never cell by cell in Python.
    first = header_index + 1
    values = grid.columns(first, sorted(set(columns.values())))
    filled = _fill_merged(grid, merged, first, values)
    bad_cells: dict[str, str] = {}
    # Cells calamine reads blank but that hold an uncalculated formula or an error value.
    for cell_ref, (what, text) in hidden.items():
        letter = cell_ref.rstrip("0123456789")
        row_number = int(cell_ref[len(letter):])
        names = [n for n, lt in letters.items() if lt == letter]
        if not names or row_number <= header_row:
            continue
        rule = "formula_no_value" if what == "formula" else "error_value"
        bad_cells[cell_ref] = rule
        findings.append(finding(rule, file=file, sheet=sheet_name, cell=cell_ref,
                                column=spec.field(names[0]).label, value=text))
    count = max(grid.height - first, 0)
    # Each column's distinct values (a column without text, say of numbers, needs none).
    distinct = {name: None if infer_dtype(values[col], skipna=False) in _NO_TEXT else Distinct(values[col])
                for name, col in columns.items()}
    # A row is data when one of the table's cells holds something. A merged value running
    # past the last real row does not make a row: filled cells do not count.
    blank = np.ones(count, dtype=bool)
    for name, col in columns.items():
        column = distinct[name]
        empty = column.blank() if column is not None else pd.isna(values[col])
        if col in filled:
            empty |= filled[col]
        blank &= empty
    if bad_cells:  # a row whose only content is a formula without value still is a row
        bad_rows = np.array(sorted({int(re.sub(r"[A-Z]+", "", c)) for c in bad_cells}), dtype=np.int64)
        blank &= ~np.isin(np.arange(first + 1, first + 1 + count, dtype=np.int64), bad_rows)
    # The template's example row is marked in its first column (`示例E000`); HR may have
    # moved the columns, so an ID column starting with 示例 marks it too.
    first_col = min(columns, key=columns.__getitem__) if columns else None
    example = np.zeros(count, dtype=bool)
    for name in columns:
        marked = distinct[name]
        if marked is not None and (name == first_col or spec.field(name).type == ID):
            example |= marked.matches(_EXAMPLE)
    keep = np.flatnonzero(~blank & ~example)
    del blank, example
    data: dict[str, pd.Series] = {}
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, col in columns.items():
        column = distinct.pop(name)
        if column is None:  # numbers: held as floats where pandas would infer floats
            kept = values.pop(col)[keep]
            floats = infer_dtype(kept, skipna=False) in ("floating", "mixed-integer-float")
            data[name] = pd.Series(kept.astype("float64") if floats else kept, dtype="float64" if floats else object,
                                   copy=False)
            continue
        column.renew_text()
        data[name] = pd.Series(column.shared()[keep], dtype=object, copy=False)
        codes[name] = (column.codes[keep].astype(np.int32), column.uniques)
        del column, values[col]
    frame = pd.DataFrame(data) if data else pd.DataFrame(index=pd.RangeIndex(len(keep)))
    frame["_row"] = pd.Series(keep + first + 1, dtype="int64")
    table = Table(spec=spec, file=file, sheet=sheet_name, frame=frame, letters=letters, extra=extra,
                  header_row=header_row, bad_cells=bad_cells, codes=codes)
    return table, findings


@dataclass
class _Book:
    """A workbook's sheets as grids, whatever the format it came in."""

    sheet_names: list[str]
    grids: dict[str, _Grid]
    merged: dict[str, list]
    hidden: dict[str, dict[str, tuple[str, str]]]
    meta_grid: list[list] | None = None
    named: bool = True  # sheet names mean something (not a CSV named after its file)


def _is_panic(exc: BaseException) -> bool:
    """pyo3 reports a panic in Rust code as PanicException, which is not an Exception."""
    return type(exc).__name__ == "PanicException"


@contextmanager
def _calamine_quiet():
    """File descriptor 2 sent to /dev/null while calamine works: what Rust prints there (a
    panic's message and backtrace) never reaches the console; the exception still reaches us
    and becomes a finding. Our own messages written before are flushed first, and stderr is
    back as it was afterwards."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to protect
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_workbook(path: Path, file: str | None = None, limits: Limits = Limits(),
                  source: InputBytes | None = None) -> WorkbookRead:
    """Read one input workbook (.xlsx, .xlsm, .xls or .csv); every problem becomes a finding,
    never an exception.

    The file is read once (`source`: its bytes, when the caller read them already); every
    check and parser works on those bytes, and the result keeps them with their SHA-256.
    """
    file = file or path.name
    result = WorkbookRead(path=path, file=file)
    collecting = gc.isenabled()
    gc.disable()  # millions of small lists, none of them cyclic: the collector only costs time
    try:
        source = source if source is not None else load_input(path, limits)
        _keep_bytes(result, source)
        if source.data is None:  # too large to read: its size alone refuses it
            check_input_file(path, limits)
        fmt = check_input_file(path, limits, data=source.data)
        if fmt == CSV:
            book = _csv_book(path, limits, source.data if source.data is not None else path.read_bytes())
        else:
            book = _calamine_book(path, fmt, limits, source.data)
        _read_book(result, book)
    except UnreadableInput as exc:
        result.findings.append(finding("unreadable", file=file, reason=exc.reason_zh,
                                       reason_en=exc.reason_en))
    except Exception as exc:  # a user's file must never cost a traceback
        result.findings.append(_damaged_finding(file, exc))
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        result.findings.append(_damaged_finding(file, exc))
    finally:
        if collecting:
            gc.enable()
    if any(f.rule == "unreadable" for f in result.findings):
        result.tables, result.matrices, result.kind = [], [], None  # nothing half-read is used
    return result


def _keep_bytes(result: WorkbookRead, source: InputBytes) -> None:
    """What the manifest records of the bytes read (nothing of a file too large to read)."""
    result.mtime_ns = source.mtime_ns
    if source.data is not None:
        result.data, result.size = source.data, source.size
        result.sha256 = hashlib.sha256(source.data).hexdigest()


def _damaged_finding(file: str, exc: BaseException) -> Finding:
    if type(exc).__name__ == "PasswordError":
        return finding("unreadable", file=file,
                       reason="工作簿设置了打开密码(已加密),无法读取。请去掉密码后另存为 .xlsx。",
                       reason_en="the workbook is password-protected (encrypted) and cannot be read; "
                                 "remove the password and save it as .xlsx.")
    if _is_panic(exc):  # the Rust message names calamine's source lines: nothing for HR
        detail = "calamine PanicException"
    else:
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:300] if str(exc) else type(exc).__name__
    return finding(
        "unreadable", file=file,
        reason=f"文件已损坏,或由不兼容的程序生成,无法解析。请在 Excel 中打开并另存为 .xlsx({detail})",
        reason_en=f"the file is damaged or was written by an incompatible program and cannot be parsed; "
                  f"open it in Excel and save it as .xlsx ({detail})")


def _read_book(result: WorkbookRead, book: _Book) -> None:
    file = result.file
    sheet_names, grids, merged = book.sheet_names, book.grids, book.merged
    # Header rows are looked for in a view where a header merged down two rows (a tall
    # header) shows in each of them; the grid itself keeps merges out of the data.
    views = {name: _header_view(grid, merged.get(name, [])) for name, grid in grids.items()}
    meta_kind, result.version = _meta(book.meta_grid)
    kinds, how = classify(sheet_names, views, meta_kind, book.named)
    if not kinds:
        unknown, result.closest_kind = unknown_kind_finding(views, file)
        result.findings.append(unknown)
        return
    if len(kinds) > 1:
        result.findings.append(finding("ambiguous_kind", file=file, kinds=", ".join(kinds)))
        return
    kind = KINDS[kinds[0]]
    result.kind = kind.name
    result.version = result.version or (TEMPLATE_VERSION if how == "meta" else None)
    used: set[str] = set()
    for spec in kind.sheets:
        names = [n for n in sheet_names if n in grids and book.named and _sheet_matches(spec, n)]
        if spec.matrix:
            for name in names:  # the grid is kept for these small sheets only
                grid = grids[name]
                result.matrices.append(MatrixSheet(file=file, sheet=name, role_family=spec.after_prefix(name) or "",
                                                   rows=grid.rows, top=grid.top, left=grid.left,
                                                   hidden=book.hidden.get(name, {})))
            continue
        if not names:
            # No sheet by that name: take the sheet whose headers fit best.
            aliases = _ALIASES[(kind.name, spec.name)]
            required = {f.name for f in spec.required}
            fits = [(n, _header_row(g, aliases)) for n, g in views.items()
                    if n not in used and not (book.named and _named_sheet(n))]
            full = [n for n, h in fits if required <= set(h[1].values())]
            names = full  # e.g. one sheet per month: read them all
            partial = [(h[2], n) for n, h in fits if h[2] >= 2]
            if not names and how == "meta" and partial:
                # The template says what this is, and one sheet looks like it but lacks a
                # column: read that sheet so the missing column is named, not the sheet.
                names = [max(partial, key=lambda item: item[0])[1]]
        if not names:
            if spec.name not in kind.optional_sheets:
                result.findings.append(finding("missing_sheet", file=file, sheet_label=spec.name))
            continue
        for name in names:
            used.add(name)
            table, table_findings = _read_table(spec, kind, file, name, grids[name], views[name],
                                                merged.get(name, []), book.hidden.get(name, {}))
            result.findings.extend(table_findings)
            if table is not None:
                result.tables.append(table)


# ------------------------------------------------------------------------------ formats

def _calamine_book(path: Path, fmt: str, limits: Limits, data: bytes | None = None) -> _Book:
    """An .xlsx/.xlsm (every sheet's XML scanned first) or a legacy .xls (every sheet's BIFF
    records scanned first), read by calamine from `data` when given, else from `path`."""
    hidden: dict[str, dict] = {}
    parts: dict[str, str] = {}
    if fmt == XLSX:  # all sheets checked against the limits before calamine sees the file
        data = normalised_xlsx(path if data is None else data) or data  # other programs' layouts
        parts, hidden = _scan_xlsx(path if data is None else data, limits)
    else:  # calamine reserves a sheet's declared extent and builds it whole: sized first
        check_xls_sheets(path if data is None else data, limits)
        data = normalised_xls(path if data is None else data) or data  # `WORKBOOK`, `BOOK`
    with _calamine_quiet():
        return _calamine_sheets(path, fmt, limits, data, parts, hidden)


def _calamine_sheets(path: Path, fmt: str, limits: Limits, data: bytes | None,
                     parts: dict[str, str], hidden: dict[str, dict]) -> _Book:
    expected = {".xlsx", ".xlsm"} if fmt == XLSX else {".xls"}
    if data is not None:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
    elif path.suffix.lower() in expected:
        workbook = CalamineWorkbook.from_path(str(path))
    else:  # content and name disagree (a .xlsx saved as .xls): calamine goes by content here
        with path.open("rb") as handle:
            workbook = CalamineWorkbook.from_filelike(handle)
    sheet_names = list(workbook.sheet_names)
    if len(sheet_names) > limits.max_sheets:
        raise UnreadableInput(
            f"工作表过多({len(sheet_names)} 张,上限 {limits.max_sheets});如确为正常文件,可在政策文件 "
            "limits.max_sheets 中调高上限",
            f"too many sheets ({len(sheet_names)}, limit {limits.max_sheets}); if the file is genuine, "
            "raise limits.max_sheets in the policy file")
    book = _Book(sheet_names=sheet_names, grids={}, merged={}, hidden={})
    total = 0
    for name in sheet_names:
        if name in book.grids or (fold(name) == "_meta" and book.meta_grid is not None):
            continue  # a name twice: calamine gives the first sheet for both
        book.hidden[name] = hidden.get(parts.get(name, ""), {})
        sheet = workbook.get_sheet_by_name(name)
        # The grid runs from A1 to the last cell: checked again before Python builds it.
        end = sheet.end
        extent = SheetExtent(end[0] + 1, end[1] + 1) if sheet.height and end is not None else SheetExtent(0, 0)
        check_extent(name, extent, limits)
        total += extent.cells
        check_workbook_cells(total, limits)
        grid = _grid(sheet)
        merged = sheet.merged_cell_ranges or []
        del sheet
        check_merged_ranges(name, len(merged), limits)
        if fold(name) == "_meta":
            book.meta_grid = grid.head(grid.height)
            continue
        book.grids[name], book.merged[name] = grid, merged
    return book


def _grid(sheet) -> _Grid:
    """The sheet's used area as calamine's `to_python()` gives it, placed in the sheet: its
    last cell is `sheet.end`, so the rows start where their count and length say (at the
    used area's first cell, or at A1 for a version that pads), whatever the version does."""
    if not sheet.height:
        return _Grid([])
    rows = sheet.to_python()
    if not rows:
        return _Grid([])
    (last_row, last_col) = sheet.end
    top, left = last_row + 1 - len(rows), last_col + 1 - len(rows[0])
    if top < 0 or left < 0:  # not what any version gives: read it from A1 as it came
        top = left = 0
    return _Grid(rows, top, left)


def _scan_xlsx(path: Source, limits: Limits) -> tuple[dict[str, str], dict[str, dict]]:
    """The safety scan of every sheet (see safety.scan_workbook_sheets), collecting on the way
    the cells calamine would show blank: each sheet's XML is inflated once. `path`: the file,
    or its bytes."""
    hidden: dict[str, dict] = {}

    def each(part: str, data: bytes, prefixed: bool) -> None:
        hidden[part] = hidden_cells(data, prefixed)

    parts = scan_workbook_sheets(path, limits, each=each)
    return parts, hidden


def _csv_book(path: Path, limits: Limits, data: bytes) -> _Book:
    """A CSV file (`data`: its bytes) as one sheet of text cells (formula-like text stays
    text), named after the file and classified by its headers. UTF-8 (with or without BOM) or
    GB18030, which Chinese Excel writes; the size was checked before, rows and columns are
    counted while reading."""
    head = data[:4]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encodings = ["utf-16"]
    elif head[:3] == b"\xef\xbb\xbf":
        encodings = ["utf-8-sig"]
    else:
        encodings = ["utf-8", "gb18030"]
    for encoding in encodings:
        try:
            grid = _csv_rows(path, data, encoding, limits)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise UnreadableInput(
            "CSV 文件的编码无法识别(既不是 UTF-8 也不是 GB18030)。请在 Excel 中另存为 .xlsx。",
            "the CSV file's encoding is not recognised (neither UTF-8 nor GB18030). Save it as .xlsx in Excel.")
    name = path.stem or "CSV"
    return _Book(sheet_names=[name], grids={name: _Grid(grid)}, merged={}, hidden={}, named=False)


def _csv_rows(path: Path, data: bytes, encoding: str, limits: Limits) -> list[list]:
    with io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="strict", newline="") as handle:
        first = handle.readline(64 * 1024)
        counts = {d: first.count(d) for d in (",", ";", "\t")}
        delimiter = max(counts, key=lambda d: (counts[d], d == ","))
        handle.seek(0)
        rows: list[list] = []
        width = 0
        try:
            for row in csv.reader(handle, delimiter=delimiter):
                rows.append(row)
                if len(row) > width:
                    width = len(row)
                if len(rows) > limits.max_rows or width > limits.max_columns or len(rows) * width > limits.max_cells:
                    check_extent(path.stem, SheetExtent(len(rows), width), limits)
        except csv.Error as exc:
            raise UnreadableInput(
                f"CSV 文件格式错误(第 {len(rows) + 1} 行:{exc})。请在 Excel 中另存为 .xlsx。",
                f"the CSV file is malformed (line {len(rows) + 1}: {exc}). Save it as .xlsx in Excel.") from None
    for row in rows:  # the grid is rectangular, as calamine's is
        if len(row) < width:
            row.extend([""] * (width - len(row)))
    if rows and rows[0] and isinstance(rows[0][0], str):
        rows[0][0] = rows[0][0].lstrip("\ufeff")
    return rows


_SYSTEM_FILES = {"thumbs.db", "desktop.ini", "ehthumbs.db"}
_SYSTEM_FOLDERS = {"__macosx"}


def inbox_files(folder: Path) -> list[Path]:
    """Every candidate input in the inbox, in a stable order (`inbox_listing` without the
    folders that could not be listed)."""
    return inbox_listing(folder)[0]


def inbox_listing(folder: Path) -> tuple[list[Path], list[tuple[Path, OSError]]]:
    """(every candidate input in the inbox in a stable order, the folders that could not be
    listed with why): a folder nobody may open hides its files, so it is named, not skipped.

    Skipped: Office lock files (`~$…`), hidden files and folders, what Windows and macOS
    leave in shared folders (Thumbs.db, desktop.ini, __MACOSX), and links to folders.
    """
    files: list[Path] = []
    refused: list[tuple[Path, OSError]] = []
    pending = [folder]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as exc:
            refused.append((directory, exc))
            continue
        for entry in entries:
            name = entry.name
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_folder = False
            if is_folder:
                if not (name.startswith(".") or name.lower() in _SYSTEM_FOLDERS):
                    pending.append(Path(entry.path))
            elif not (name.startswith(("~$", ".")) or name.lower() in _SYSTEM_FILES) and Path(entry.path).is_file():
                files.append(Path(entry.path))
    return sorted(files), sorted(refused, key=lambda item: item[0])


def read_inbox(folder: Path, limits: Limits = Limits(), jobs: int = 1,
               meanwhile: Callable[[], object] | None = None) -> list[WorkbookRead]:
    """Read every file in the inbox; each file is isolated, so one bad file (or folder) costs
    one finding.

    Each file is read once, here; its bytes are what is parsed and hashed (`WorkbookRead.data`,
    `.sha256`). `jobs` > 1: on Linux, a big inbox's workbooks are parsed by that many forked
    processes, which inherit the bytes, largest first (calamine holds the GIL, so threads
    would not help); same result, in the same order. `meanwhile()` runs while they read.
    """
    listed, folders = inbox_listing(folder)
    files = [(path, path.relative_to(folder).as_posix()) for path in listed]
    sources = [_load(path, limits) for path, _ in files]
    if jobs > 1 and _worth_forking(files, sources):
        results = _read_in_workers(files, sources, limits, jobs, meanwhile)
    else:
        if meanwhile:
            meanwhile()
        results = [_read_inbox_file(path, name, limits, source) for (path, name), source in zip(files, sources)]
    return results + [_refused_folder(folder, path, exc) for path, exc in folders]


def _load(path: Path, limits: Limits) -> InputBytes | UnreadableInput | None:
    """A workbook's bytes, or why they cannot be read; None for a file that is no workbook
    (a note, a picture), which is only fingerprinted."""
    if path.suffix.lower() not in WORKBOOK_SUFFIXES:
        return None
    try:
        return load_input(path, limits)
    except UnreadableInput as exc:
        return exc


def _read_inbox_file(path: Path, name: str, limits: Limits,
                     source: InputBytes | UnreadableInput | None = None) -> WorkbookRead:
    if path.suffix.lower() not in WORKBOOK_SUFFIXES:
        result = WorkbookRead(path=path, file=name)
        _fingerprint(result)
        result.findings.append(_unsupported(path, name))
        return result
    if isinstance(source, UnreadableInput):
        result = WorkbookRead(path=path, file=name)
        result.findings.append(finding("unreadable", file=name, reason=source.reason_zh, reason_en=source.reason_en))
        return result
    return read_workbook(path, name, limits, source)


def _fingerprint(result: WorkbookRead) -> None:
    """SHA-256, size and modification time of a file that is not parsed (a note beside the
    data), read in chunks: the manifest names everything the inbox held."""
    digest = hashlib.sha256()
    try:
        with open(result.path, "rb") as handle:
            status = os.fstat(handle.fileno())
            size = 0
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return
    result.sha256, result.size, result.mtime_ns = digest.hexdigest(), size, status.st_mtime_ns


def _refused_folder(inbox: Path, path: Path, exc: OSError) -> WorkbookRead:
    """A folder that could not be listed, as an input that could not be read."""
    relative = path.relative_to(inbox).as_posix()
    name = (inbox.name if relative == "." else relative) + "/"
    result = WorkbookRead(path=path, file=name)
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        zh = f"没有打开权限({reason})。请让文件夹所有者开放权限,或把其中的文件移到收件箱"
        en = f"permission denied ({reason}). Ask the folder's owner for access, or move its files into the inbox"
    else:
        zh, en = f"无法列出其中的文件({reason})", f"its files cannot be listed ({reason})"
    result.findings.append(finding("unreadable_folder", file=name, folder=name, reason=zh, reason_en=en))
    return result


# Below this many bytes of workbooks, starting processes costs more than reading in parallel
# saves (at 10,000 employees the inbox is 4.6 MB and its ratings file 1.1 s of a 1.6 s read).
PARALLEL_READ_BYTES = 2_000_000


def _worth_forking(files: list[tuple[Path, str]], sources: list) -> bool:
    sizes = [source.size for source in sources if isinstance(source, InputBytes)]
    return sys.platform.startswith("linux") and len(sizes) > 1 and sum(sizes) >= PARALLEL_READ_BYTES


def _read_in_workers(files: list[tuple[Path, str]], sources: list, limits: Limits, jobs: int,
                     meanwhile: Callable[[], object] | None = None) -> list[WorkbookRead]:
    calls = [(source.size if isinstance(source, InputBytes) else 0, _read_detached, (path, name, limits, source))
             for (path, name), source in zip(files, sources)]
    results = run_biggest_first(calls, jobs, meanwhile=meanwhile)
    for result, source in zip(results, sources):  # the bytes stayed here: not sent back and forth
        if result.sha256 is not None and isinstance(source, InputBytes):
            result.data = source.data
    return results


def _read_detached(path: Path, name: str, limits: Limits, source) -> WorkbookRead:
    """`_read_inbox_file` in a worker: the result goes back without the bytes, which the
    parent holds already."""
    result = _read_inbox_file(path, name, limits, source)
    result.release_bytes()
    return result


IGNORED_SUFFIXES = {".txt", ".md", ".pdf", ".doc", ".docx", ".png", ".jpg", ".jpeg", ".json", ".yaml", ".yml"}


def _unsupported(path: Path, name: str) -> Finding:
    suffix = path.suffix.lower()
    if suffix in IGNORED_SUFFIXES:  # notes HR keeps beside the data: say so, but it is not an error
        return finding("unreadable", severity="warning", file=name,
                       reason=f"不是 Excel 工作簿({suffix}),已忽略。", reason_en=f"not an Excel workbook ({suffix}); ignored.")
    if suffix in _OTHER_SPREADSHEETS:
        zh = f"不支持 {suffix} 格式,请在 Excel 或 WPS 中另存为 .xlsx。"
        en = f"{suffix} files are not supported; save it as .xlsx in Excel or WPS."
    else:  # a note or a picture left in the inbox: said, not an error
        zh, en = f"不是 Excel 工作簿({suffix or '无扩展名'}),已跳过。", f"not an Excel workbook ({suffix or 'no extension'}); skipped."
        return finding("unreadable", severity=WARNING, file=name, reason=zh, reason_en=en)
    return finding("unreadable", file=name, reason=zh, reason_en=en)


# Spreadsheets HR may have meant as inputs: an error, so the batch does not run without them.
_OTHER_SPREADSHEETS = {".xlsb", ".ods", ".et", ".ett", ".numbers", ".tsv", ".xlt", ".xltx", ".xltm"}
