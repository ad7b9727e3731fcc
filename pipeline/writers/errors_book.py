"""Errors workbooks: a copy of a problem input with its bad cells marked, for HR to fix.

`errors/<input file>.errors.xlsx` (docs/outputs.md) holds a first sheet `错误清单 Errors` listing every
finding, then every sheet of the source under its own name, order and hidden state (the hidden
`_meta` sheet too, so the fixed copy is still recognised as the same template kind). Each cell
a finding names is filled red (error) or amber (warning) and carries a comment saying what is
wrong and how to fix it, so HR can correct the copy and drop it back into the inbox.

The source is a user's file, possibly hostile: it is opened only after a zip sanity check, copied
within a cell budget, text is written as text (never a formula), and whatever goes wrong while
reading it, the list sheet is still written — this module never raises for a bad input.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath

from openpyxl import load_workbook
from openpyxl.styles.numbers import is_date_format
from openpyxl.utils.cell import column_index_from_string, coordinate_to_tuple
from openpyxl.utils.cell import range_boundaries as _range_boundaries
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook.workbook import Workbook

from pipeline.findings import ERROR, Finding, sort_findings
from pipeline.safety import Limits, UnreadableInput, assert_defusedxml_in_force, openpyxl_input
from pipeline.texts import plural, say
from pipeline.writers.common import (
    FONT,
    display_width,
    fit_width,
    new_workbook,
    safe_file_stem,
    safe_sheet_name,
    unique_stem,
)

LIST_SHEET = "错误清单 Errors"
LANGS = ("zh", "en")

# Excel's own "Bad" and "Neutral" cell styles: familiar to HR, and the text stays readable.
ERROR_FILL, ERROR_FONT, ERROR_BORDER = "#FFC7CE", "#9C0006", "#C00000"
WARNING_FILL, WARNING_FONT, WARNING_BORDER = "#FFEB9C", "#9C5700", "#ED7D31"

MAX_ROWS, MAX_COLS = 1_048_576, 16_384
HEAD_ROWS = 10  # rows always kept when a sheet is shortened: title rows and the header
MAX_COMMENTS_PER_SHEET = 10_000  # beyond this the cells are still filled, without a comment
MAX_LINKS = 65_000  # Excel allows 65,530 hyperlinks per worksheet
MAX_MERGE_CELLS = 100_000  # a hostile merge over a whole sheet would pad billions of blanks
MAX_VALIDATIONS = 1_000
# openpyxl keeps every cell of a normally loaded workbook in memory (~400 bytes a cell);
# above this estimate the sheets are streamed (read-only: no merges, widths or panes).
FULL_LOAD_CELLS = 500_000
DEFAULT_WIDTH = 8.43  # Excel's default column width, in characters
MIN_CELL_XML_BYTES = 20  # `<c r="A1"><v>1</v></c>`: bytes of sheet XML per stored cell, at least

_HEADERS = {
    "file": ("文件", "File"),
    "sheet": ("工作表", "Sheet"),
    "cell": ("单元格", "Cell"),
    "column": ("列", "Column"),
    "value": ("值", "Value"),
    "severity": ("级别", "Severity"),
    "rule": ("规则", "Rule"),
    "message_zh": ("问题与修改方法", "Message (zh)"),
    "message_en": ("问题与修改方法(英文)", "Message (en)"),
}
_SEVERITY = {ERROR: ("错误", "Error"), "warning": ("警告", "Warning")}

_CELL_RE = re.compile(r"^\$?([A-Z]{1,3})\$?([0-9]{1,7})$")
_COL_RE = re.compile(r"^\$?([A-Z]{1,3})(?::\$?\1)?$")
_ROW_RE = re.compile(r"^\$?([0-9]{1,7})(?::\$?\1)?$")

_HALIGN = {
    "left": "left", "center": "center", "right": "right", "fill": "fill",
    "justify": "justify", "centerContinuous": "center_across", "distributed": "distributed",
}
_VALIGN = {
    "top": "top", "center": "vcenter", "bottom": "bottom",
    "justify": "vjustify", "distributed": "vdistributed",
}
_BORDERS = {
    "thin": 1, "medium": 2, "dashed": 3, "dotted": 4, "thick": 5, "double": 6, "hair": 7,
    "mediumDashed": 8, "dashDot": 9, "mediumDashDot": 10, "dashDotDot": 11,
    "mediumDashDotDot": 12, "slantDashDot": 13,
}
_BORDER_KEYS = {f"{side}{suffix}" for side in ("left", "right", "top", "bottom")
                for suffix in ("", "_color")}
_DV_TYPES = {
    "whole": "whole", "decimal": "decimal", "list": "list", "date": "date",
    "time": "time", "textLength": "length", "custom": "custom",
}
_DV_CRITERIA = {
    None: "between", "between": "between", "notBetween": "not between",
    "equal": "equal to", "notEqual": "not equal to", "greaterThan": "greater than",
    "lessThan": "less than", "greaterThanOrEqual": "greater than or equal to",
    "lessThanOrEqual": "less than or equal to",
}


def _text(zh: str, en: str, lang: str, sep: str = " ") -> str:
    """English alone for `en`; otherwise Chinese first with English beside."""
    return say(zh, en, lang, sep)


# ----------------------------------------------------------------------------- names


def errors_file_name(source_name: str) -> str:
    """`<source file name>.errors.xlsx`, built from the last path component only, sanitised:
    an input named `../x.xlsx` or `C:\\x.xlsx` still lands inside the errors folder."""
    base = PurePosixPath(str(source_name).replace("\\", "/")).name
    return f"{safe_file_stem(base, fallback='input')}.errors.xlsx"


def write_errors_books(
    findings_by_file: dict[Path, list[Finding]], out_dir: Path, *, lang: str = "zh",
    limits: Limits | None = None,
) -> list[Path]:
    """One errors workbook per input that has findings, in `out_dir`, names unique
    case-insensitively (two inboxes' `actuals.xlsx` must not overwrite each other)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written: list[Path] = []
    for source in sorted(findings_by_file, key=lambda p: str(p)):
        findings = findings_by_file[source]
        if not findings:
            continue
        stem = errors_file_name(Path(source).name)[: -len(".xlsx")]
        name = unique_stem(stem, taken, fallback="input.errors") + ".xlsx"
        written.append(write_errors_workbook(Path(source), findings, out_dir / name, lang=lang,
                                             limits=limits))
    return written


# ----------------------------------------------------------------------------- cell refs


def _parse_cell(ref: str) -> tuple[int, int] | None:
    """Zero-based (row, col) of a single-cell reference like `B3` or `$B$3`, else None."""
    match = _CELL_RE.match(ref.strip().upper())
    if not match:
        return None
    col = column_index_from_string(match.group(1))
    row = int(match.group(2))
    if not (1 <= row <= MAX_ROWS and 1 <= col <= MAX_COLS):
        return None
    return row - 1, col - 1


def _link_target(ref: str) -> str | None:
    """Where a hyperlink for `ref` should land: the cell, a range, a column's or row's first
    cell; None when `ref` is not a reference at all."""
    text = ref.strip().upper()
    if not text:
        return None
    if _parse_cell(text):
        return text.replace("$", "")
    if ":" in text:
        first, _, last = text.partition(":")
        if _parse_cell(first) and _parse_cell(last):
            return text.replace("$", "")
    column = _COL_RE.match(text)
    if column and _parse_cell(f"{column.group(1)}1"):
        return f"{column.group(1)}1"
    row = _ROW_RE.match(text)
    if row and _parse_cell(f"A{row.group(1)}"):
        return f"A{row.group(1)}"
    return None


def _resolve_sheets(wanted, names: list[str]) -> dict[str, str]:
    """Map the sheet names findings use onto the source's sheet names: exactly, else by a
    unique NFKC/case-insensitive match (a reader may have normalised the name)."""
    def key(name: str) -> str:
        return unicodedata.normalize("NFKC", name).strip().casefold()

    loose: dict[str, list[str]] = {}
    for name in names:
        loose.setdefault(key(name), []).append(name)
    resolved = {}
    for sheet in wanted:
        if sheet in names:
            resolved[sheet] = sheet
        elif len(loose.get(key(sheet), [])) == 1:
            resolved[sheet] = loose[key(sheet)][0]
    return resolved


# ----------------------------------------------------------------------------- reading


@dataclass
class _SheetCopy:
    """What was copied from one sheet, for the links and notes on the list sheet."""

    name: str  # the name in the errors workbook
    source_name: str
    shortened: bool = False
    comments_dropped: int = 0
    written: set[tuple[int, int]] = field(default_factory=set)  # flagged cells written
    comments: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)  # HR's own


class _Copier:
    """Copies the source's sheets into an xlsxwriter workbook, marking the flagged cells."""

    def __init__(self, workbook, source: bytes, by_cell, lang: str, max_cells: int):
        self.wb = workbook
        self.source = source  # the bytes openpyxl reads
        self.by_cell = by_cell  # source sheet name → {(row, col): [findings]}
        self.lang = lang
        self.budget = max_cells
        self.formats: dict[tuple, object] = {}
        self.style_cache: dict[object, dict] = {}
        self.cached_book: Workbook | None = None  # read-only data_only workbook: cached formula values

    # -- formats

    def fmt(self, props: dict):
        key = tuple(sorted(props.items()))
        if key not in self.formats:
            self.formats[key] = self.wb.add_format({"font_name": FONT, "font_size": 10, **props})
        return self.formats[key]

    def style_props(self, cell) -> dict:
        """The few style features worth keeping (number format, bold, italic, colours, wrap,
        alignment): enough for the copy to look like the template HR knows."""
        key = getattr(cell, "_style_id", None)
        if key is None:
            style = getattr(cell, "_style", None)
            key = tuple(style) if style is not None else None
        if key is not None and key in self.style_cache:
            return self.style_cache[key]
        props: dict = {}
        try:
            number_format = cell.number_format
            if number_format and number_format != "General":
                props["num_format"] = number_format
            font = cell.font
            if font.b:
                props["bold"] = True
            if font.i:
                props["italic"] = True
            if font.color is not None and font.color.type == "rgb" and len(font.color.rgb) == 8:
                props["font_color"] = "#" + font.color.rgb[2:]
            fill = cell.fill
            if (getattr(fill, "patternType", None) == "solid" and fill.fgColor.type == "rgb"
                    and len(fill.fgColor.rgb) == 8):
                props["bg_color"] = "#" + fill.fgColor.rgb[2:]
            alignment = cell.alignment
            if alignment.wrap_text:
                props["text_wrap"] = True
            if alignment.horizontal in _HALIGN:
                props["align"] = _HALIGN[alignment.horizontal]
            if alignment.vertical in _VALIGN:
                props["valign"] = _VALIGN[alignment.vertical]
            border = cell.border
            for side in ("left", "right", "top", "bottom"):
                edge = getattr(border, side, None)
                if edge is not None and edge.style in _BORDERS:
                    props[side] = _BORDERS[edge.style]
                    color = edge.color
                    if color is not None and color.type == "rgb" and len(color.rgb) == 8:
                        props[f"{side}_color"] = "#" + color.rgb[2:]
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            pass
        if key is not None:
            self.style_cache[key] = props
        return props

    @staticmethod
    def flag_props(findings) -> dict:
        if any(f.severity == ERROR for f in findings):
            fill, font, border = ERROR_FILL, ERROR_FONT, ERROR_BORDER
        else:
            fill, font, border = WARNING_FILL, WARNING_FONT, WARNING_BORDER
        return {"pattern": 1, "bg_color": fill, "font_color": font,
                "border": 2, "border_color": border}

    # -- cells

    def write_value(self, ws, row: int, col: int, cell, props: dict, cached=None) -> None:
        """Write one source cell by type: text with write_string (never a formula), formulas
        only when the source stored a formula, with its cached value."""
        value = cell.value
        data_type = getattr(cell, "data_type", None)
        if data_type == "f" or type(value).__name__ in ("ArrayFormula", "DataTableFormula"):
            self.write_formula(ws, row, col, value, props, cached)
        elif isinstance(value, bool):
            ws.write_boolean(row, col, value, self.fmt(props))
        elif isinstance(value, (int, float)):
            try:
                ws.write_number(row, col, float(value), self.fmt(props))
            except (OverflowError, ValueError):
                ws.write_string(row, col, str(value), self.fmt(props))
        elif isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta)):
            self.write_date(ws, row, col, value, props)
        elif value is None:
            ws.write_blank(row, col, None, self.fmt(props))
        else:  # text, error values such as #N/A, anything exotic: shown as the text it is
            ws.write_string(row, col, str(value), self.fmt(props))

    def write_date(self, ws, row: int, col: int, value, props: dict) -> None:
        number_format = props.get("num_format", "")
        if isinstance(value, dt.timedelta):
            default = "[h]:mm:ss"
        elif isinstance(value, dt.time):
            default = "hh:mm:ss"
        elif isinstance(value, dt.datetime) and value.time() != dt.time(0):
            default = "yyyy-mm-dd hh:mm:ss"
        else:
            default = "yyyy-mm-dd"
        if not (number_format and is_date_format(number_format)):
            props = {**props, "num_format": default}
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        try:
            ws.write_datetime(row, col, value, self.fmt(props))
        except (OverflowError, ValueError, TypeError):
            ws.write_string(row, col, str(value), self.fmt(props))

    def write_formula(self, ws, row: int, col: int, value, props: dict, cached) -> None:
        cached = _formula_cache(cached)
        kind = type(value).__name__
        if kind == "DataTableFormula":  # what-if tables cannot be rebuilt: keep the result
            if cached in ("", None):
                ws.write_blank(row, col, None, self.fmt(props))
            elif isinstance(cached, str):
                ws.write_string(row, col, cached, self.fmt(props))
            else:
                ws.write_number(row, col, cached, self.fmt(props))
            return
        if kind == "ArrayFormula":
            text = value.text or ""
            try:
                min_col, min_row, max_col, max_row = _range_boundaries(str(value.ref))
            except (TypeError, ValueError):
                min_col, min_row, max_col, max_row = col + 1, row + 1, col + 1, row + 1
            if text.strip("={}"):
                ws.write_array_formula(min_row - 1, min_col - 1, max_row - 1, max_col - 1,
                                       text, self.fmt(props), cached)
            return
        text = str(value)
        if text.strip("="):
            ws.write_formula(row, col, text, self.fmt(props), cached)

    def cached_values(self, sheet_name: str, coords: set[tuple[int, int]]) -> dict:
        """Cached results of the formula cells at `coords` (1-based), streamed from a
        read-only `data_only` load so a second full copy of the workbook never sits in memory."""
        if not coords:
            return {}
        if self.cached_book is None:
            self.cached_book = load_workbook(_open(self.source), read_only=True, data_only=True)
        if sheet_name not in self.cached_book.sheetnames:
            return {}
        ws = self.cached_book[sheet_name]
        ws.reset_dimensions()
        last = max(r for r, _ in coords)
        found: dict = {}
        for cells in ws.iter_rows(min_row=min(r for r, _ in coords), max_row=last):
            for cell in cells:
                key = (getattr(cell, "row", None), getattr(cell, "column", None))
                if key in coords:
                    found[key] = cell.value
        return found

    # -- sheets

    def copy_sheet(self, ws_out, ws_in, copy: _SheetCopy, full: bool) -> None:
        flagged = self.by_cell.get(copy.source_name, {})
        finding_rows = {r + 1 for r, _ in flagged}
        last_needed = max(finding_rows | {HEAD_ROWS})
        widths: dict[int, float] = {}
        if full:
            widths = self.copy_layout(ws_out, ws_in)
            rows = _rows_full(ws_in)
        else:
            ws_in.reset_dimensions()
            rows = _rows_streamed(ws_in)
        merges = _merges(ws_in) if full else []
        merge_tops = {}
        for bounds in merges:
            merge_tops[(bounds[1], bounds[0])] = bounds

        formulas: dict[tuple[int, int], tuple] = {}
        copied_rows: set[int] = set()
        line_counts: dict[int, int] = {}
        for row, cells in rows:
            if copy.shortened or self.budget < len(cells):
                copy.shortened = True
                if row > last_needed:
                    break
                if row > HEAD_ROWS and row not in finding_rows:
                    continue
            else:
                self.budget -= len(cells)
            copied_rows.add(row)
            for col, cell in cells:
                props = self.style_props(cell)
                comment = getattr(cell, "comment", None) if full else None
                if comment is not None and comment.text:
                    copy.comments[(row - 1, col - 1)] = (comment.text, comment.author or "")
                marks = flagged.get((row - 1, col - 1))
                if marks:
                    props = {**{k: v for k, v in props.items() if k not in _BORDER_KEYS},
                             **self.flag_props(marks)}
                    copy.written.add((row - 1, col - 1))
                if (row, col) in merge_tops:
                    min_col, min_row, max_col, max_row = merge_tops.pop((row, col))
                    try:
                        ws_out.merge_range(min_row - 1, min_col - 1, max_row - 1, max_col - 1,
                                           "", self.fmt(props))
                    except Exception:  # noqa: BLE001 - overlapping merges in a broken file
                        pass
                if getattr(cell, "data_type", None) == "f" or type(cell.value).__name__ in (
                    "ArrayFormula", "DataTableFormula"
                ):
                    formulas[(row, col)] = (cell, props)
                else:
                    self.write_value(ws_out, row - 1, col - 1, cell, props)
                    if props.get("text_wrap") and isinstance(cell.value, str):
                        lines = _wrapped_lines(cell.value, widths.get(col, DEFAULT_WIDTH))
                        line_counts[row] = max(line_counts.get(row, 1), lines)
        self.fit_rows(ws_out, ws_in, line_counts, full)
        if formulas:
            cached = self.cached_values(copy.source_name, set(formulas))
            for (row, col), (cell, props) in sorted(formulas.items()):
                self.write_value(ws_out, row - 1, col - 1, cell, props, cached.get((row, col)))
        for bounds in merge_tops.values():  # merges whose top-left cell is empty
            min_col, min_row, max_col, max_row = bounds
            if min_row in copied_rows or not copy.shortened:
                try:
                    ws_out.merge_range(min_row - 1, min_col - 1, max_row - 1, max_col - 1, "",
                                       self.fmt({}))
                except Exception:  # noqa: BLE001 - overlapping merges in a broken file
                    pass
        self.mark_findings(ws_out, copy, flagged)
        if full:
            self.copy_validations(ws_out, ws_in)

    @staticmethod
    def fit_rows(ws_out, ws_in, line_counts: dict[int, int], full: bool) -> None:
        """Give rows with multi-line wrapped text (the bilingual header) the height Excel
        would compute on editing: LibreOffice and many viewers show them one line high."""
        explicit = set()
        if full:
            try:
                explicit = {i for i, d in ws_in.row_dimensions.items() if d.ht or d.hidden}
            except AttributeError:
                pass
        for row, lines in line_counts.items():
            if lines > 1 and row not in explicit:
                ws_out.set_row(row - 1, min(14 * lines + 2, 409))

    def mark_findings(self, ws_out, copy: _SheetCopy, flagged) -> None:
        """Fill the flagged cells the copy did not write (typically empty required cells) and
        attach one comment per flagged cell holding all of its findings."""
        comments = 0
        for (row, col), marks in sorted(flagged.items()):
            if (row, col) not in copy.written:
                ws_out.write_blank(row, col, None, self.fmt(self.flag_props(marks)))
                copy.written.add((row, col))
            if comments >= MAX_COMMENTS_PER_SHEET:
                copy.comments_dropped += 1
                continue
            text = _comment_text(marks, self.lang)
            if (row, col) in copy.comments:
                original = copy.comments[(row, col)][0]
                text += f"\n\n{_text('原批注', 'Original comment', self.lang)}: {original}"
            ws_out.write_comment(row, col, text[:32_000], _comment_options(text))
            comments += 1
        for (row, col), (text, author) in sorted(copy.comments.items()):
            if (row, col) in flagged or comments >= MAX_COMMENTS_PER_SHEET:
                continue
            ws_out.write_comment(row, col, text[:32_000],
                                 {**_comment_options(text), "author": author})
            comments += 1

    def copy_layout(self, ws_out, ws_in) -> dict[int, float]:
        """Column widths, row heights, hidden rows/columns and the frozen pane; returns the
        custom widths of the first columns (1-based) for sizing wrapped rows."""
        widths: dict[int, float] = {}
        try:
            for dim in ws_in.column_dimensions.values():
                first, last = max(dim.min or 1, 1), min(dim.max or dim.min or 1, MAX_COLS)
                custom = dim.customWidth or (dim.width and dim.width != 13)
                if first > last or not (custom or dim.hidden):
                    continue
                # The file stores Excel's character width; pixels (7 a character at the default
                # font) round-trip exactly, where set_column() would add padding each time.
                pixels = round(dim.width * 7) if custom and dim.width else None
                if pixels:
                    widths.update((c, dim.width) for c in range(first, min(last, 256) + 1))
                ws_out.set_column_pixels(first - 1, last - 1, pixels, None,
                                         {"hidden": bool(dim.hidden)})
            for index, dim in ws_in.row_dimensions.items():
                if not 1 <= index <= MAX_ROWS:
                    continue
                if dim.ht or dim.hidden:
                    ws_out.set_row(index - 1, dim.ht, None, {"hidden": bool(dim.hidden)})
            pane = ws_in.freeze_panes
            if pane:
                row, col = coordinate_to_tuple(pane)
                ws_out.freeze_panes(row - 1, col - 1)
        except (AttributeError, TypeError, ValueError):
            pass
        self.copy_page_setup(ws_out, ws_in)
        return widths

    @staticmethod
    def copy_page_setup(ws_out, ws_in) -> None:
        """Orientation, paper, fit-to-page and gridlines: the copy prints like the original."""
        try:
            setup = ws_in.page_setup
            if setup.orientation == "landscape":
                ws_out.set_landscape()
            if setup.paperSize:
                ws_out.set_paper(int(setup.paperSize))
            fit = ws_in.sheet_properties.pageSetUpPr
            if fit is not None and fit.fitToPage:
                ws_out.fit_to_pages(int(setup.fitToWidth if setup.fitToWidth is not None else 1),
                                    int(setup.fitToHeight if setup.fitToHeight is not None else 1))
            if ws_in.sheet_view.showGridLines is False:
                ws_out.hide_gridlines(2)
        except (AttributeError, TypeError, ValueError):
            pass

    def copy_validations(self, ws_out, ws_in) -> None:
        """Dropdowns and input messages, so the fixed copy still guides HR like the template."""
        try:
            validations = list(ws_in.data_validations.dataValidation)[:MAX_VALIDATIONS]
        except AttributeError:
            return
        for dv in validations:
            try:
                kind = _DV_TYPES.get(dv.type)
                ranges = [str(r) for r in dv.sqref.ranges]
                if not ranges:
                    continue
                options: dict = {
                    "ignore_blank": bool(dv.allow_blank),
                    "dropdown": not dv.showDropDown,  # the XML flag means *hide* the arrow
                    "show_input": bool(dv.showInputMessage),
                    "show_error": bool(dv.showErrorMessage),
                    "error_type": dv.errorStyle or "stop",
                }
                if kind is None:
                    if not dv.prompt:
                        continue
                    options["validate"] = "any"
                else:
                    if dv.formula1 is None:
                        continue
                    options["validate"] = kind
                    options["value"] = dv.formula1
                    if kind not in ("list", "custom"):
                        options["criteria"] = _DV_CRITERIA.get(dv.operator, "between")
                        if options["criteria"] in ("between", "not between"):
                            if dv.formula2 is None:
                                continue
                            options["maximum"] = dv.formula2
                for key, attr in (("input_title", "promptTitle"), ("input_message", "prompt"),
                                  ("error_title", "errorTitle"), ("error_message", "error")):
                    if getattr(dv, attr):
                        options[key] = getattr(dv, attr)
                if len(ranges) > 1:
                    options["multi_range"] = " ".join(ranges)
                min_col, min_row, max_col, max_row = _range_boundaries(ranges[0])
                ws_out.data_validation(min_row - 1, min_col - 1, max_row - 1, max_col - 1,
                                       options)
            except Exception:  # noqa: BLE001 - one odd validation must not stop the copy
                continue

    def close(self) -> None:
        if self.cached_book is not None:
            self.cached_book.close()


def _open(source: bytes) -> BytesIO:
    """The file's bytes: openpyxl then goes by content, not by the name's extension (an
    input saved as `.XLSX`, `.xlsm` or without extension is still read)."""
    return BytesIO(source)


def _formula_cache(cached):
    """A cached formula result as xlsxwriter stores it; '' (no result) when never calculated,
    so a reader still sees an uncalculated formula rather than a 0."""
    if cached is None:
        return ""
    if isinstance(cached, bool):
        return cached
    if isinstance(cached, (int, float)):
        return float(cached)
    if isinstance(cached, (dt.datetime, dt.date, dt.time, dt.timedelta)):
        try:
            return float(to_excel(cached))
        except (TypeError, ValueError, OverflowError):
            return ""
    return str(cached)


def _rows_full(ws):
    """(row, [(col, cell)]) of a normally loaded sheet, from the cells that exist only:
    `iter_rows` would create every cell of the used rectangle (a 1,048,576-row sheet with one
    far cell)."""
    cells = getattr(ws, "_cells", None)
    if cells is None:
        return
    current, bucket = None, []
    for (row, col), cell in sorted(cells.items()):
        if type(cell).__name__ == "MergedCell":
            continue
        if cell.value is None and not cell.has_style and cell.comment is None:
            continue
        if row != current:
            if bucket:
                yield current, bucket
            current, bucket = row, []
        bucket.append((col, cell))
    if bucket:
        yield current, bucket


def _rows_streamed(ws):
    """(row, [(col, cell)]) of a read-only sheet, cells with a value only."""
    for cells in ws.iter_rows():
        bucket = [(c.column, c) for c in cells if getattr(c, "row", None) and c.value is not None]
        if bucket:
            yield bucket[0][1].row, bucket


def _merges(ws) -> list[tuple[int, int, int, int]]:
    """Merged ranges as (min_col, min_row, max_col, max_row), sane ones only."""
    found: list[tuple[int, int, int, int]] = []
    try:
        ranges = list(ws.merged_cells.ranges)
    except AttributeError:
        return found
    for merged in ranges:
        bounds = merged.bounds
        min_col, min_row, max_col, max_row = bounds
        area = (max_col - min_col + 1) * (max_row - min_row + 1)
        if 1 < area <= MAX_MERGE_CELLS and max_row <= MAX_ROWS and max_col <= MAX_COLS:
            found.append(bounds)
    return sorted(found)


def _wrapped_lines(text: str, width: float) -> int:
    """Lines a wrapped cell needs in a column `width` characters wide (CJK counts double)."""
    usable = max(int(width) - 1, 1)
    return sum(max(1, -(-display_width(part) // usable)) for part in text.split("\n"))


def _comment_text(findings: list[Finding], lang: str) -> str:
    """Every finding on the cell, each in Chinese and English separated by a blank line."""
    blocks = [f.message_en if lang == "en" else f"{f.message_zh}\n\n{f.message_en}"
              for f in findings]
    text = "\n\n".join(blocks)
    return text if len(text) <= 32_000 else text[:32_000] + "…"


def _comment_options(text: str) -> dict:
    """A comment box tall enough to read without resizing (about 48 narrow characters a line)."""
    per_line = 48
    lines = sum(max(1, -(-display_width(p) // per_line)) for p in text.split("\n"))
    height = min(max(20 + 15 * lines, 60), 900)
    return {"author": "kpi", "width": 340, "height": height, "font_name": FONT, "font_size": 9}


# ----------------------------------------------------------------------------- the book


def write_errors_workbook(
    source: Path,
    findings: list[Finding],
    out_path: Path,
    *,
    lang: str = "zh",
    max_cells: int = 2_000_000,
    limits: Limits | None = None,
) -> Path:
    """Write the errors workbook for `source` to `out_path` and return `out_path`.

    `lang`: "en" writes English only; "zh" (the CLI's default) writes Chinese with English
    beside it. Copies at most `max_cells` cells of the whole workbook; beyond that
    only the first rows and the rows with findings are kept, and the list sheet says so.
    `limits` are the reader's size limits (pass the policy's when HR raised them). An
    unreadable source yields the list sheet alone. Same inputs → identical bytes.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    source, out_path = Path(source), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sort_findings(findings)
    by_cell: dict[str, dict[tuple[int, int], list[Finding]]] = {}
    for f in ordered:
        for cell in (f.cell, *f.also) if f.sheet and f.cell else ():
            position = _parse_cell(cell)
            if position:
                by_cell.setdefault(f.sheet, {}).setdefault(position, []).append(f)

    assert_defusedxml_in_force()  # a broken installation, not a user's file: this one raises
    notes: list[tuple[str, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # xlsxwriter warns (not raises) on odd input
        workbook = new_workbook(out_path, title=f"{source.name} — {LIST_SHEET}")
        try:
            wanted = {f.sheet for f in ordered if f.sheet}
            copies = _copy_source(workbook, source, by_cell, wanted, lang, max_cells,
                                  limits or Limits(), notes)
        except Exception as exc:  # noqa: BLE001 - never raise for a user's file
            if isinstance(exc, UnreadableInput):
                zh, en = exc.reason_zh.rstrip("。."), exc.reason_en.rstrip(".")
            else:
                zh, en = f"读取出错({type(exc).__name__})", f"reading failed ({type(exc).__name__})"
            notes = [(f"未能复制原文件的工作表:{zh}。请直接修改原文件。",
                      f"The sheets of the original file could not be copied: {en}. "
                      "Fix the original file directly.")]
            workbook = new_workbook(out_path, title=f"{source.name} — {LIST_SHEET}")
            copies = None
        _write_list(workbook, ordered, copies, source, lang, notes)
        workbook.close()
    return out_path


def _copy_source(workbook, source: Path, by_cell, wanted: set[str], lang: str, max_cells: int,
                 limits: Limits, notes: list) -> dict:
    """Add the list sheet (placeholder, first) and a copy of every source sheet.

    Returns {sheet name as findings give it, and as the source has it: _SheetCopy};
    raises when the source cannot be read at all.
    """
    # The same checks as the reader, then the bytes laid out as openpyxl can follow them and
    # within its budget (merged ranges and named styles left out beyond it); the sheet XML's
    # size estimates the stored cells before anything is parsed.
    prepared = openpyxl_input(source, limits)
    estimate = prepared.sheet_xml_bytes // MIN_CELL_XML_BYTES
    full = estimate <= min(max_cells, FULL_LOAD_CELLS)
    book = load_workbook(_open(prepared.data), read_only=not full, data_only=False)
    copier = None
    try:
        names = list(book.sheetnames)
        resolved = _resolve_sheets(wanted | set(by_cell), names)
        flags: dict[str, dict] = {}
        for sheet, cells in by_cell.items():
            if sheet in resolved:
                target = flags.setdefault(resolved[sheet], {})
                for position, marks in cells.items():
                    target.setdefault(position, []).extend(marks)
        copier = _Copier(workbook, prepared.data, flags, lang, max_cells)
        taken = {n.lower() for n in names}
        list_name = LIST_SHEET if LIST_SHEET.lower() not in taken else safe_sheet_name(
            LIST_SHEET, taken)
        workbook.add_worksheet(list_name)
        copies: dict[str, _SheetCopy] = {}
        for name in names:
            try:
                ws_out = workbook.add_worksheet(name)
                out_name = name
            except Exception:  # noqa: BLE001 - a name Excel itself would refuse
                out_name = safe_sheet_name(name, taken)
                ws_out = workbook.add_worksheet(out_name)
            ws_in = book[name]
            copy = _SheetCopy(name=out_name, source_name=name)
            state = getattr(ws_in, "sheet_state", "visible")
            if state == "hidden":
                ws_out.hide()
            elif state == "veryHidden":
                ws_out.very_hidden()
            if type(ws_in).__name__ in ("Chartsheet",):
                copies[name] = copy
                continue
            copier.copy_sheet(ws_out, ws_in, copy, full)
            copies[name] = copy
            left_out = prepared.merges_left_out.get(name, 0)
            if left_out and full:
                notes.append((
                    f"工作表“{name}”有 {left_out:,} 处合并单元格过大或过多,副本中未合并(值照常显示)。",
                    f"{left_out:,} merged ranges of sheet '{name}' are too large or too many to copy: "
                    "the copy shows their values unmerged.",
                ))
            if copy.shortened:
                notes.append((
                    f"工作表“{name}”太大,副本只包含开头的行和有问题的行;请在原文件中修改。",
                    f"Sheet '{name}' is too large: this copy holds only its first rows and the "
                    "rows with problems. Make the fixes in the original file.",
                ))
            if copy.comments_dropped:
                notes.append((
                    f"工作表“{name}”中另有 {copy.comments_dropped} 个标色单元格未加批注,说明见本清单。",
                    f"{copy.comments_dropped} more marked cells in sheet '{name}' have no "
                    "comment; see this list for their messages.",
                ))
    finally:
        if copier is not None:
            copier.close()
        book.close()
    for sheet, name in resolved.items():
        copies.setdefault(sheet, copies[name])
    return copies


def _list_values(f: Finding, source: Path, lang: str) -> dict[str, str]:
    return {
        "file": f.file or source.name,
        "sheet": f.sheet,
        "cell": f.cell,
        "column": f.column,
        "value": f.value,
        "severity": _text(*_SEVERITY.get(f.severity, (f.severity, f.severity)), lang),
        "rule": f.rule,
        "message_zh": f.message_zh,
        "message_en": f.message_en,
    }


def _write_list(workbook, findings: list[Finding], copies, source: Path, lang: str,
                notes: list[tuple[str, str]]) -> None:
    """The `错误清单 Errors` sheet: one row per finding, linked to the marked cell."""
    if copies is None:
        ws = workbook.add_worksheet(LIST_SHEET)
    else:
        ws = workbook.worksheets()[0]
    ws.activate()
    columns = [c for c in _HEADERS if not (lang == "en" and c == "message_zh")]
    header_fmt = workbook.add_format({
        "bold": True, "text_wrap": True, "valign": "top", "bg_color": "#D9E1F2",
        "border": 1, "font_name": FONT, "font_size": 10})
    text_fmt = workbook.add_format({"valign": "top", "font_name": FONT, "font_size": 10})
    wrap_fmt = workbook.add_format({"valign": "top", "text_wrap": True, "font_name": FONT,
                                    "font_size": 10})
    link_fmt = workbook.add_format({"valign": "top", "font_color": "#0563C1", "underline": 1,
                                    "font_name": FONT, "font_size": 10})
    severity_fmt = {
        ERROR: workbook.add_format({"valign": "top", "bg_color": ERROR_FILL,
                                    "font_color": ERROR_FONT, "font_name": FONT, "font_size": 10}),
        "warning": workbook.add_format({"valign": "top", "bg_color": WARNING_FILL,
                                        "font_color": WARNING_FONT, "font_name": FONT,
                                        "font_size": 10}),
    }
    note_fmt = workbook.add_format({"italic": True, "font_color": "#595959",
                                    "font_name": FONT, "font_size": 10})

    headers = [_text(*_HEADERS[c], lang, sep="\n") for c in columns]
    for col, header in enumerate(headers):
        ws.write_string(0, col, header, header_fmt)
    ws.set_row(0, None if lang == "en" else 30)

    listed = findings[: MAX_ROWS - 20]
    table = [_list_values(f, source, lang) for f in listed]
    widths = {
        name: fit_width([*header.split("\n"), *(v[name] for v in table)], minimum=8,
                        maximum=50 if name.startswith("message") else 30)
        for name, header in zip(columns, headers, strict=True)
    }
    for col, name in enumerate(columns):
        ws.set_column(col, col, widths[name])
    links = 0
    row = 0
    for row, (f, values) in enumerate(zip(listed, table, strict=True), start=1):
        copy = copies.get(f.sheet) if copies and f.sheet else None
        lines = max(
            -(-display_width(values[name]) // max(int(widths[name]) - 2, 1))
            for name in columns if name.startswith("message")
        )
        if lines > 1:  # explicit: LibreOffice and many viewers do not grow wrapped rows
            ws.set_row(row, min(14 * lines + 2, 409))
        for col, name in enumerate(columns):
            text = values[name]
            target = None
            if copy is not None and name == "sheet":
                target = "A1"
            elif copy is not None and name == "cell":
                target = _link_target(f.cell)
            if target and copy is not None and text and links < MAX_LINKS:
                quoted = copy.name.replace("'", "''")
                url = f"internal:'{quoted}'!{target}"
                if ws.write_url(row, col, url, link_fmt, text) == 0:
                    links += 1
                    continue
            if name == "severity":
                ws.write_string(row, col, text, severity_fmt.get(f.severity, text_fmt))
            elif name in ("message_zh", "message_en"):
                ws.write_string(row, col, text, wrap_fmt)
            else:
                ws.write_string(row, col, text, text_fmt)
    last_row = max(row, 0)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, last_row, len(columns) - 1)
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)

    errors = sum(1 for f in findings if f.severity == ERROR)
    summary = [
        (f"共 {errors} 个错误、{len(findings) - errors} 个警告。",
         f"{plural(errors, 'error')}, {plural(len(findings) - errors, 'warning')}."),
        ("红色单元格为错误,必须修改;黄色为警告,请检查。鼠标悬停在标色单元格上可查看批注。",
         "Red cells are errors and must be fixed; amber cells are warnings to check. "
         "Hover over a marked cell to read its comment."),
    ]
    if copies is not None:
        summary.append((
            "修改后请用原文件名保存,替换收件箱中的原文件(本清单工作表可以保留)。",
            "After fixing, save under the original file name, replacing the original in the "
            "inbox (this list sheet may stay)."))
    if len(findings) > MAX_ROWS - 20:
        summary.append((f"仅列出前 {MAX_ROWS - 20} 条。", f"Only the first {MAX_ROWS - 20} are listed."))
    at = last_row + 2
    for zh, en in [*notes, *summary]:
        for line in [en] if lang == "en" else [zh, en]:
            ws.write_string(at, 0, line, note_fmt)
            at += 1


__all__ = ["LIST_SHEET", "errors_file_name", "write_errors_books", "write_errors_workbook"]
