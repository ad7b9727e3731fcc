"""Worksheets whose cells cost a fraction of xlsxwriter's own, with the same bytes.

A department batch writes 10,000 employee sheets of ~300 cells. xlsxwriter spends ~6 µs on a
cell: argument decoding, a named tuple in a table, then at close a row walk that builds each
`<c>` element from attribute lists with escaping checks. `FastSheet` keeps xlsxwriter for
everything else (workbook, styles, shared strings, merges, charts, conditional formats,
panes, print setup) and replaces only the cell store: each `write_*` renders its `<c>`
element at once (the style index and the shared-string index are known then) and close()
joins them. Tests write the same workbooks with `FastSheet` and with xlsxwriter's own classes
(`KPI_PLAIN_WRITER=1`) and require every part of the two files to be byte-identical.

Contract the callers keep: cell formats get their style index up front (`register_formats`),
so an index never depends on the order cells are written; formulas use classic functions
only (no dynamic-array rewriting); rows and columns are zero-based integers.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections import defaultdict
from fractions import Fraction

from xlsxwriter.drawing import Drawing, DrawingTypes
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import ColumnInfo, Worksheet

_COLUMN_LETTERS = [xl_col_to_name(c) for c in range(16384)]
_XML_SPECIAL = re.compile(r"[&<>]")
_FORMULA_ERRORS = frozenset({"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"})
_MAX_STRING = 32767
_INFINITIES = (math.inf, -math.inf)


# Rendered blank cells of merged one-row runs, by (row, first col, last col, style attribute).
_BLANK_RUNS: dict[tuple, dict[int, tuple[str, str, bool]]] = {}
# Validated conditional-format options, by (range, priority, options with the format's id):
# (the format object, to guard against a reused id; the cell range; the stored options).
_CONDITIONAL_FORMATS: dict[tuple, tuple] = {}
# Rendered <conditionalFormatting> elements, by (range, rules).
_CONDITIONAL_XML: dict[tuple, str] = {}
# Rendered <sheetProtection> elements, by protection options (the same on every scorecard sheet).
_PROTECTION_XML: dict[tuple, str] = {}


def _write_once(writer, cache: dict, key, render) -> None:
    """Write to `writer.fh` what `render()` (xlsxwriter's own method) writes there, rendered
    once per key into a string and copied after; at most 4,096 keys are kept."""
    xml = cache.get(key)
    if xml is None:
        fh, writer.fh = writer.fh, io.StringIO()
        try:
            render()
            xml = writer.fh.getvalue()
        finally:
            writer.fh = fh
        if len(cache) < 4096:
            cache[key] = xml
    writer.fh.write(xml)


class FastDrawing(Drawing):
    """A drawing whose chart anchors are rendered once per position and name.

    Every employee sheet anchors one chart at one of a few places; xlsxwriter builds the same
    ~1 KB of XML each time through ~40 element calls.
    """

    _anchors: dict[tuple, str] = {}

    def _write_two_cell_anchor(self, index, drawing):
        if drawing._drawing_type != DrawingTypes.CHART or drawing._shape or drawing._url:
            return super()._write_two_cell_anchor(index, drawing)
        key = (index, drawing._anchor, tuple(drawing._dimensions), drawing._rel_index, drawing._name,
               drawing._description, drawing._decorative)
        _write_once(self, self._anchors, key, lambda: super(FastDrawing, self)._write_two_cell_anchor(index, drawing))
        return None


def _hashable_options(options: dict) -> bool:
    """Plain cell rules only: other types (data bars, icons) change the sheet beyond its rule list."""
    return options.get("type") == "cell" and all(
        value.__class__ in (str, int, float, bool) or name == "format" for name, value in options.items())


def register_formats(*formats) -> None:
    """Give cell formats their style index now, in this order, whichever sheet uses them first."""
    for cell_format in formats:
        cell_format._get_xf_index()


def _escape(text: str) -> str:
    if _XML_SPECIAL.search(text):
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _utf16_truncate(text: str, limit: int) -> str:
    return text.encode("utf-16-le")[: 2 * limit].decode("utf-16-le", "ignore")


def plain_writer() -> bool:
    """Whether `KPI_PLAIN_WRITER=1` asks for xlsxwriter's own worksheet and chart classes.

    The same bytes, slower: the way out when an xlsxwriter release breaks an override here, and
    what the byte-identity tests compare the fast classes with.
    """
    return os.environ.get("KPI_PLAIN_WRITER", "").strip() not in ("", "0")


class PlainSheet(Worksheet):
    """xlsxwriter's worksheet untouched, plus `stamp` (which here simply runs)."""

    def stamp(self, stamps: dict, key, write) -> None:
        """Have `write(sheet)` put the cells, merges and column widths that are the same on every
        sheet of a workbook. Here it simply runs; `FastSheet` runs it once per workbook and copies
        the result. `stamps` is the workbook's (style and shared-string indices are per workbook)."""
        write(self)


def sheet_class(fast: type[PlainSheet]) -> type[PlainSheet]:
    """The worksheet class to write with: `fast`, or `PlainSheet` under `KPI_PLAIN_WRITER=1`."""
    return PlainSheet if plain_writer() else fast


class ReferenceSheet(PlainSheet):
    """xlsxwriter's own cell store, minus the dynamic-array formula rewrites.

    xlsxwriter rewrites every formula with ~30 regular expressions to prefix dynamic-array and
    future functions (FILTER, XLOOKUP…). None of our formulas use them, so they are skipped
    (a test checks the stored formulas equal xlsxwriter's own preparation).
    """

    def _prepare_formula(self, formula, expand_future_functions=False):
        if formula.startswith("{"):
            formula = formula[1:]
        if formula.startswith("="):
            formula = formula[1:]
        if formula.endswith("}"):
            formula = formula[:-1]
        return formula


def _corners(rows: dict[int, dict]) -> tuple[tuple[int, int], ...]:
    """The top-left and bottom-right corners of the range that cells in `rows` use."""
    if not rows:
        return ()
    return ((min(rows), min(min(cols) for cols in rows.values())),
            (max(rows), max(max(cols) for cols in rows.values())))


class FastSheet(ReferenceSheet):
    """Cells rendered to `<c>` XML as they are written; see the module docstring."""

    def __init__(self):
        super().__init__()
        # row -> col -> (xml, value, is a number cell); the value feeds chart caches.
        self._cells: defaultdict[int, dict[int, tuple[str, object, bool]]] = defaultdict(dict)
        self._columns: dict[int, list[int]] = {}  # row -> its columns in order, when settled

    # -------------------------------------------------------------- cell store
    # The write methods are the innermost loop of a batch: no helper calls on the common path.
    # Positions are checked once, when the sheet is closed (see _settle_dimensions).

    @staticmethod
    def _style(cell_format) -> str:
        """' s="N"' for a format (its style index), remembered on the format."""
        if cell_format is None:
            return ""
        index = cell_format._get_xf_index()
        cell_format._fast_style = f' s="{index}"' if index else ""
        return cell_format._fast_style

    def _write_string(self, row, col, string, cell_format=None):
        error = 0
        if len(string) > _MAX_STRING // 2 and _utf16_length(string) > _MAX_STRING:
            string = _utf16_truncate(string, _MAX_STRING)
            error = -2
        try:
            style = cell_format._fast_style
        except AttributeError:
            style = self._style(cell_format)
        self._cells[row][col] = (f'<c r="{_COLUMN_LETTERS[col]}{row + 1}"{style} t="s">'
                                 f"<v>{self.str_table._get_shared_string_index(string)}</v></c>", string, False)
        return error

    def _write_number(self, row, col, number, cell_format=None):
        if number != number or number in _INFINITIES or number.__class__ is Fraction:
            if number.__class__ is Fraction:
                return self._write_number(row, col, float(number), cell_format)
            # As xlsxwriter does with nan_inf_to_errors (the only mode our workbooks use).
            if number != number:
                return self._write_formula(row, col, "#NUM!", cell_format, "#NUM!")
            return self._write_formula(row, col, "1/0" if number > 0 else "-1/0", cell_format, "#DIV/0!")
        try:
            style = cell_format._fast_style
        except AttributeError:
            style = self._style(cell_format)
        self._cells[row][col] = (f'<c r="{_COLUMN_LETTERS[col]}{row + 1}"{style}><v>{number:.16G}</v></c>',
                                 number, True)
        return 0

    def _write_blank(self, row, col, blank, cell_format=None):
        if cell_format is None:
            return 0
        try:
            style = cell_format._fast_style
        except AttributeError:
            style = self._style(cell_format)
        self._cells[row][col] = (f'<c r="{_COLUMN_LETTERS[col]}{row + 1}"{style}/>', "", False)
        return 0

    def _write_formula(self, row, col, formula, cell_format=None, value=0):
        if formula is None or formula == "":
            return -1
        formula = self._prepare_formula(formula)
        shown = value
        kind = ""
        if isinstance(value, bool):
            kind, shown = ' t="b"', int(value)
        elif isinstance(value, str):
            if value in _FORMULA_ERRORS:
                kind = ' t="e"'
            elif value:
                kind = ' t="str"'
            shown = _escape(value)
        try:
            style = cell_format._fast_style
        except AttributeError:
            style = self._style(cell_format)
        self._cells[row][col] = (f'<c r="{_COLUMN_LETTERS[col]}{row + 1}"{style}{kind}>'
                                 f"<f>{_escape(formula)}</f><v>{shown}</v></c>", 0 if value is None else value, False)
        return 0

    def stamp(self, stamps: dict, key, write) -> None:
        """See PlainSheet.stamp: the first sheet runs `write`, the others copy what it made.

        Copied: the rendered cells (their shared strings counted again, as writing them would),
        the merged ranges and the column widths. `write` must do nothing else and must come
        before the sheet's other cells.
        """
        made = stamps.get(key)
        if made is None:
            cells, self._cells = self._cells, defaultdict(dict)
            strings, merges, columns = self.str_table.count, len(self.merge), dict(self.col_info)
            try:
                write(self)
            finally:
                new_cells, self._cells = self._cells, cells
            for row, row_cells in new_cells.items():
                cells[row].update(row_cells)
            rows = {row: dict(row_cells) for row, row_cells in new_cells.items() if row_cells}
            made = stamps[key] = (rows, self.str_table.count - strings, [tuple(m) for m in self.merge[merges:]],
                                  {col: info for col, info in self.col_info.items() if columns.get(col) is not info},
                                  _corners(rows))
        else:
            rows, strings, merges, columns, _ = made
            for row, row_cells in rows.items():
                self._cells[row].update(row_cells)
            self.str_table.count += strings
            self.merge.extend(list(m) for m in merges)
            if columns:
                self.col_info.update(columns)
                self.col_size_changed = True
        # The used range grown by the stamp's cells, as writing them would (so a later set_row
        # finds the first column without settling the whole sheet).
        for row, col in made[4]:
            self._check_dimensions(row, col)

    # The public methods, without xlsxwriter's A1-notation decorators (we pass integers).
    write_string = _write_string
    write_number = _write_number
    write_blank = _write_blank
    write_formula = _write_formula

    def merge_range(self, first_row, first_col, last_row, last_col, data, cell_format=None):
        """xlsxwriter's merge_range without its per-cell bookkeeping.

        The overlap check stays (an overlapping merge corrupts the file for Excel), done on
        the stored ranges instead of a dict entry per merged cell. The blank cells that carry
        the format across a one-row range are the same on every sheet, so they are rendered once.
        """
        if first_row > last_row:
            first_row, last_row = last_row, first_row
        if first_col > last_col:
            first_col, last_col = last_col, first_col
        if (first_row, first_col) == (last_row, last_col):
            return super().merge_range(first_row, first_col, last_row, last_col, data, cell_format)
        for r1, c1, r2, c2 in self.merge:
            if r1 <= last_row and first_row <= r2 and c1 <= last_col and first_col <= c2:
                return super().merge_range(first_row, first_col, last_row, last_col, data, cell_format)
        if self._check_dimensions(first_row, first_col) or self._check_dimensions(last_row, last_col):
            return -1
        self.merge.append([first_row, first_col, last_row, last_col])
        if data.__class__ is str:
            # What xlsxwriter's _write does with a string when no string conversion is on.
            if data:
                self._write_string(first_row, first_col, data, cell_format)
            else:
                self._write_blank(first_row, first_col, None, cell_format)
        else:
            self._write(first_row, first_col, data, cell_format)
        if cell_format is None:
            return 0
        for row in range(first_row, last_row + 1):
            key = (row, first_col + (row == first_row), last_col, self._fast_style_of(cell_format))
            blanks = _BLANK_RUNS.get(key)
            if blanks is None:
                style = key[3]
                blanks = _BLANK_RUNS[key] = {col: (f'<c r="{_COLUMN_LETTERS[col]}{row + 1}"{style}/>', "", False)
                                             for col in range(key[1], last_col + 1)}
            self._cells[row].update(blanks)
        return 0

    def _fast_style_of(self, cell_format) -> str:
        try:
            return cell_format._fast_style
        except AttributeError:
            return self._style(cell_format)

    def set_column(self, first_col, last_col, width=None, cell_format=None, options=None):
        """A plain width on integer columns without going through xlsxwriter's argument checks."""
        if (cell_format is None and options is None and first_col.__class__ is int and last_col.__class__ is int
                and width is not None and width >= 1.0 and 0 <= first_col <= last_col < self.xls_colmax):
            pixels = int(width * self.max_digit_width + 0.5) + self.cell_padding
            for col in range(first_col, last_col + 1):
                self.col_info[col] = ColumnInfo(width=pixels)
            self.col_size_changed = True
            return 0
        return super().set_column(first_col, last_col, width, cell_format, options)

    def conditional_format(self, first_row, first_col, last_row, last_col, options=None):
        """xlsxwriter's conditional_format, its validated options remembered per shape.

        Every employee sheet asks for the same three rules on ranges of a few shapes; the
        checks and conversions (~20 µs) are done once and the stored options copied after.
        """
        if not (first_row.__class__ is int and options and _hashable_options(options)):
            return super().conditional_format(first_row, first_col, last_row, last_col, options)
        key = (first_row, first_col, last_row, last_col, self.dxf_priority,
               tuple(sorted((name, value if name != "format" else id(value)) for name, value in options.items())))
        cached = _CONDITIONAL_FORMATS.get(key)
        if cached is not None and cached[0] is options.get("format"):
            _, cell_range, stored = cached
            self.cond_formats.setdefault(cell_range, []).append(dict(stored))
            self.dxf_priority += 1
            return 0
        before = {cell_range: len(rules) for cell_range, rules in self.cond_formats.items()}
        result = super().conditional_format(first_row, first_col, last_row, last_col, options)
        added = [(cell_range, rules[-1]) for cell_range, rules in self.cond_formats.items()
                 if len(rules) > before.get(cell_range, 0)]
        if result == 0 and len(added) == 1 and len(_CONDITIONAL_FORMATS) < 4096:
            _CONDITIONAL_FORMATS[key] = (options.get("format"), added[0][0], dict(added[0][1]))
        return result

    def _write_conditional_formatting(self, cond_range, params):
        """One range's rules, rendered once per range and rules (the same on most sheets)."""
        if any(rule.get("type") != "cellIs" for rule in params):  # other rule types read sheet state
            return super()._write_conditional_formatting(cond_range, params)
        try:
            key = (cond_range, tuple(tuple(sorted(rule.items())) for rule in params))
            hash(key)
        except TypeError:  # a rule with a list or dict value: not cached
            return super()._write_conditional_formatting(cond_range, params)
        _write_once(self, _CONDITIONAL_XML, key,
                    lambda: super(FastSheet, self)._write_conditional_formatting(cond_range, params))
        return None

    def _write_sheet_protection(self):
        """xlsxwriter's element, rendered once per set of options (~16 µs a sheet otherwise)."""
        if not self.protect_options:
            return None
        key = tuple(sorted(self.protect_options.items()))
        _write_once(self, _PROTECTION_XML, key, lambda: super(FastSheet, self)._write_sheet_protection())
        return None

    def _prepare_chart(self, index, chart_id, drawing_id):
        super()._prepare_chart(index, chart_id, drawing_id)
        if self.drawing.__class__ is Drawing:
            self.drawing.__class__ = FastDrawing  # same state, cached anchors

    def _write_col_info(self, col_min, col_max, col_info):
        if (col_info.width is None or col_info.column_format or col_info.hidden or col_info.autofit
                or col_info.level or col_info.collapsed):
            return super()._write_col_info(col_min, col_max, col_info)
        char_width = (col_info.width * 256 // self.max_digit_width) / 256.0
        custom = "" if col_info.width == self.default_col_width else ' customWidth="1"'
        self.fh.write(f'<col min="{col_min + 1}" max="{col_max + 1}" width="{char_width:.16g}"{custom}/>')
        return None

    # -------------------------------------------------------------- close

    def set_row_pixels(self, row, height=None, cell_format=None, options=None):
        if self.dim_colmin != 0:
            self._settle_dimensions()  # set_row reads the current first column
        return super().set_row_pixels(row, height, cell_format, options)

    def _settle_dimensions(self) -> None:
        """The used range, as xlsxwriter tracks it cell by cell (here once, from the store)."""
        columns = self._columns = self._sorted_columns()
        if not columns:
            return
        first_col = min(cols[0] for cols in columns.values())
        last_col = max(cols[-1] for cols in columns.values())
        if min(columns) < 0 or first_col < 0 or max(columns) >= self.xls_rowmax or last_col >= self.xls_colmax:
            raise ValueError(f"sheet {self.name!r}: a cell lies outside Excel's grid")
        self._check_dimensions(min(columns), first_col)
        self._check_dimensions(max(columns), last_col)

    def _sorted_columns(self) -> dict[int, list[int]]:
        """row -> its columns with a cell, in order, for the rows that have cells (the first and
        last give the used range and the spans, all of them the order the row's cells are written in)."""
        return {row: sorted(row_cells) for row, row_cells in self._cells.items() if row_cells}

    def _assemble_xml_file(self):
        self._settle_dimensions()
        super()._assemble_xml_file()

    def _write_rows(self):
        """`<row>` elements as xlsxwriter writes them: spans per 16 rows, row attributes, cells."""
        cells, comments = self._cells, self.comments
        columns = self._columns  # settled just before (_assemble_xml_file)
        row_bounds = {row: (cols[0], cols[-1]) for row, cols in columns.items()}
        for row, row_comments in comments.items():
            if row_comments:
                low, high = min(row_comments), max(row_comments)
                seen = row_bounds.get(row)
                row_bounds[row] = (low, high) if seen is None else (min(seen[0], low), max(seen[1], high))
        bounds: dict[int, tuple[int, int]] = {}  # 16-row block -> (first, last) column used
        for row, (low, high) in row_bounds.items():
            seen = bounds.get(row >> 4)
            bounds[row >> 4] = (low, high) if seen is None else (min(seen[0], low), max(seen[1], high))
        spans = {block: f"{low + 1}:{high + 1}" for block, (low, high) in bounds.items()}
        parts: list[str] = []
        out = parts.append
        plain = self.excel_version != 2010  # the only case xlsxwriter adds x14ac attributes to every row
        row_info, first, last = self.row_info, self.dim_rowmin, self.dim_rowmax
        for row in sorted({row for row, row_cells in cells.items() if row_cells} | set(row_info) | set(comments)):
            if row < first or row > last:
                continue
            span = spans.get(row >> 4)
            row_cells = cells.get(row)
            info = row_info.get(row)
            if row_cells and info is None and plain:
                out(f'<row r="{row + 1}" spans="{span}">' if span else f'<row r="{row + 1}">')
            elif row_cells:
                self._flush_parts(parts)
                self._write_row(row, span, info)
            else:
                self._flush_parts(parts)
                self._write_empty_row(row, span, info)
                continue
            out("".join([row_cells[col][0] for col in columns[row]]))
            out("</row>")
        self._flush_parts(parts)

    def _flush_parts(self, parts: list[str]) -> None:
        if parts:
            self.fh.write("".join(parts))
            parts.clear()

    def _write_merge_cells(self):
        if self.merge:
            letters = _COLUMN_LETTERS
            self.fh.write(f'<mergeCells count="{len(self.merge)}">' + "".join(
                f'<mergeCell ref="{letters[c1]}{r1 + 1}:{letters[c2]}{r2 + 1}"/>' for r1, c1, r2, c2 in self.merge)
                + "</mergeCells>")

    def _get_range_data(self, row_start, col_start, row_end, col_end):
        """Chart caches, from the rendered cells (as xlsxwriter reads its own table)."""
        data = []
        for row in range(row_start, row_end + 1):
            row_cells = self._cells.get(row)
            if row_cells is None:
                data.append(None)
                continue
            for col in range(col_start, col_end + 1):
                cell = row_cells.get(col)
                if cell is None:
                    data.append(None)
                else:
                    data.append(f"{cell[1]:.16g}" if cell[2] else cell[1])
        return data
