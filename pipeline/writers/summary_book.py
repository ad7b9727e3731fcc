"""The company view `summary.xlsx` (docs/outputs.md): what HR and management open, and what machines read.

Human sheets first — `总览 Overview` (headline counts, grade distribution with live COUNTIF
formulas and a chart, department rollup, how to read the workbook), `员工 Employees`,
`目标分解 Cascade`, `校准 Calibration`, `警告 Warnings` — then the machine sheets `明细 Details`,
`总分 Totals` and `未评分 Unscored`, whose row 1 holds the exact column names of
`outputs.DETAIL_COLUMNS` / `outputs.TOTAL_COLUMNS` and whose cells are plain values.

Speed: the machine sheets can hold 800,000 rows. xlsxwriter spends ~10 µs on every cell, so
the workbook is written in two steps. xlsxwriter writes everything except the bodies of the
tables (titles, headers, formulas, charts, formats, panes, filters, print setup); each table
body is then streamed straight into its worksheet part as plain OOXML rows (inline strings,
numbers, the xlsxwriter formats' style indices). Every table body is the last thing on its
sheet. Text is always a string cell (input text starting with `=` stays text), a number is a
number written at full precision (`repr`), and NaN or ±inf become an empty cell, never an
error value. The result is byte-identical for identical input. (The one xlsxwriter internal
used is `Format._get_xf_index()`, the style index xlsxwriter itself gives a cell's format.)
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from xlsxwriter.format import Format
from xlsxwriter.utility import quote_sheetname, xl_col_to_name, xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from pipeline.findings import ERROR, WARNING, Finding, sort_findings
from pipeline.kinds import DIMENSIONS
from pipeline.outputs import (
    DETAIL_COLUMNS,
    DETAIL_EXTRA_COLUMNS,
    DETAILS_SHEET,
    TOTAL_COLUMNS,
    TOTAL_EXTRA_COLUMNS,
    TOTALS_SHEET,
    TRACKING_DETAIL_COLUMNS,
    UNSCORED_COLUMNS,
    UNSCORED_SHEET,
)
from pipeline.policy import Policy
from pipeline.scoring import (
    CALIBRATION_MIN_EMPLOYEES,
    TIER_SHARE_COLUMNS,
    Scores,
)
from pipeline.texts import plural
from pipeline.writers.common import (
    FONT,
    at_zip_level,
    close_workbook,
    display_width,
    fit_width,
    new_workbook,
)
from pipeline.writers.scorecards import (
    AMBER,
    RED,
    Formats,
    _print_setup,
    _traffic_lights,
    inline,
    label,
    progress_mark,
    shown_in_wan,
    wan_name,
)

OVERVIEW_SHEET = "总览 Overview"
EMPLOYEES_SHEET = "员工 Employees"
CASCADE_SHEET = "目标分解 Cascade"
CALIBRATION_SHEET = "校准 Calibration"
WARNINGS_SHEET = "警告 Warnings"
STREAKS_SHEET = "连续表现 Streaks"
ADJUSTMENTS_SHEET = "调整记录 Adjustments"
SHEETS = (OVERVIEW_SHEET, EMPLOYEES_SHEET, CASCADE_SHEET, CALIBRATION_SHEET, WARNINGS_SHEET, STREAKS_SHEET,
          DETAILS_SHEET, TOTALS_SHEET, UNSCORED_SHEET)

# Machine sheets: their column names are declared in pipeline/outputs.py.
_DETAIL_PERCENT = {"weight", "achievement", "weighted_score", "achievement_raw"}
_DETAIL_NUMBERS = {"weight", "base", "target", "stretch", "actual", "achievement", "weighted_score",
                   "achievement_raw", "original_target"}

_SEVERITY = {ERROR: ("错误", "error"), WARNING: ("警告", "warning")}
_FLAG = {"too_easy": ("目标偏低", "target too low"), "too_hard": ("目标偏高", "target too high")}
_DIMENSION = {c.code: c for c in DIMENSIONS}

ROWS_PER_CHUNK = 5_000  # rows rendered at a time while streaming a table body
MAX_TEXT = 32_767  # Excel's limit on the characters in a cell


# ------------------------------------------------------------------------------ public API

def write_summary_workbook(path, scores: Scores, findings: list[Finding], policy: Policy, lang: str = "zh", *,
                           indicators: pd.DataFrame | None = None, streaks: pd.DataFrame | None = None) -> Path:
    """Write `summary.xlsx` for `scores` and return its path.

    `findings` are listed on `警告 Warnings` as given (errors and warnings); findings of
    `scores.findings` missing from them are added, so nothing the scoring said is lost.
    `indicators` (the indicator library) supplies names and units where the scored frames
    lack them. `streaks`: the employees on a streak list (`pipeline.history.find_streaks`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = list(findings)
    known = set(listed)
    listed += [f for f in scores.findings if f not in known]
    listed = sort_findings(listed)
    library = _library(indicators)

    partial = path.with_name(f".{path.name}.xlsxwriter.tmp")
    streamed = path.with_name(f".{path.name}.stream.tmp")
    try:
        workbook = new_workbook(partial, title=f"KPI summary {scores.period}")
        book = _Book(workbook, lang, period=scores.period, confidential=policy.confidential,
                     money_unit=policy.money_unit, mark=progress_mark(scores.as_of, lang))
        totals = _totals_frame(scores)
        _write_overview(book, scores, totals, listed, policy)
        _write_employees(book, scores)
        _write_cascade(book, scores, library)
        _write_calibration(book, scores, policy, library)
        _write_warnings(book, listed)
        _write_streaks(book, streaks, policy)
        _write_details(book, scores, library)
        _write_totals(book, totals)
        _write_unscored(book, scores)
        if len(scores.adjustments):
            _write_adjustments(book, scores)
        book.register_styles()
        close_workbook(workbook)
        book.stream_into(partial, streamed)
        os.replace(streamed, path)
    finally:
        for leftover in (partial, streamed):
            if leftover.exists():
                leftover.unlink()
    return path


# ------------------------------------------------------------------------------ table bodies

@dataclass
class Column:
    """One column of a table body: its values and how to write them.

    kind "s" writes text (always a string cell), "n" a number. `style` is one format for the
    whole column or a list with one format per row. Empty values (None, NaN, ±inf, "") give
    no cell in a machine sheet and a formatted blank cell in a human sheet.
    """

    kind: str
    values: Any  # list or array, one entry per row
    style: Format | list[Format | None] | None = None


@dataclass
class Body:
    sheet: Worksheet
    first_row: int  # 0-based row of the first data row
    columns: list[Column]
    rows: int
    styled_blanks: bool
    heights: list | None = None  # points per row, None for the default height


@dataclass
class _Book:
    workbook: Workbook
    lang: str
    bodies: list[Body] = field(default_factory=list)
    period: str = ""
    confidential: str = ""
    money_unit: str = "元"  # 万元: money in yuan shown in 10k yuan (display.money_unit)
    mark: str = ""  # a progress run's mark, beside every sheet title

    def print_setup(self, sheet, repeat_rows: tuple[int, int] | None = None) -> None:
        _print_setup(sheet, repeat_rows, period=self.period, confidential=self.confidential, lang=self.lang)

    def __post_init__(self):
        self.f = Formats(self.workbook)
        wb = self.workbook
        base = {"font_name": FONT, "font_size": 10, "valign": "vcenter"}
        border = {"border": 1, "border_color": "#BFBFBF"}
        self.machine_header = wb.add_format({**base, "bold": True, "bg_color": "#D9E1F2", "border": 1,
                                             "border_color": "#8EA9DB"})
        self.machine_percent = wb.add_format({**base, "num_format": "0.00%"})
        self.machine_points = wb.add_format({**base, "num_format": "0.00"})
        self.machine_general = wb.add_format(base)
        self.bad = wb.add_format({**base, **border, "bg_color": RED, "font_color": "#9C0006"})
        self.bad_percent = wb.add_format({**base, **border, "bg_color": RED, "font_color": "#9C0006",
                                          "num_format": "0.0%"})
        self.warn = wb.add_format({**base, **border, "bg_color": AMBER, "font_color": "#9C5700"})
        self.warn_wrap = wb.add_format({**base, **border, "bg_color": AMBER, "font_color": "#9C5700",
                                        "text_wrap": True})
        self.center = wb.add_format({**base, **border, "align": "center"})
        top = {**base, **border, "valign": "top"}
        self.top_text = wb.add_format(top)
        self.top_bad = wb.add_format({**top, "bg_color": RED, "font_color": "#9C0006"})
        self.top_warn = wb.add_format({**top, "bg_color": AMBER, "font_color": "#9C5700"})
        self.section = wb.add_format({**base, "bold": True, "font_size": 11, "font_color": "#1F3864",
                                      "bottom": 2, "bottom_color": "#1F3864"})
        self.headline = wb.add_format({**base, **border, "bold": True, "font_size": 12, "num_format": "#,##0",
                                       "align": "center"})
        self.headline_percent = wb.add_format({**base, **border, "bold": True, "font_size": 12,
                                               "num_format": "0.00%", "align": "center"})
        self.sum_label = self.f.total_label
        self.sum_integer = wb.add_format({**base, **border, "bold": True, "bg_color": "#DDEBF7",
                                          "num_format": "#,##0"})
        self.sum_percent = self.f.total_percent
        self.note_text = wb.add_format({**base, "text_wrap": True, "valign": "top"})
        self.hint = wb.add_format({**base, "italic": True, "font_color": "#595959"})
        self.note_hint = wb.add_format({**base, "italic": True, "font_color": "#595959", "text_wrap": True,
                                        "valign": "top"})

    def L(self, zh: str, en: str) -> str:  # header label (two lines in Chinese mode)
        return label(zh, en, self.lang)

    def T(self, zh: str, en: str) -> str:  # inline text (one line)
        return inline(zh, en, self.lang)

    def add_body(self, body: Body) -> None:
        if body.rows:
            self.bodies.append(body)

    def register_styles(self) -> None:
        """Give every format a table body uses its style index before the workbook is closed.

        Formats get their index when xlsxwriter first writes a cell with them; the bodies are
        written after xlsxwriter, so their formats are registered here, in a fixed order.
        """
        for body in self.bodies:
            for column in body.columns:
                styles = column.style if isinstance(column.style, list) else [column.style]
                for style in dict.fromkeys(s for s in styles if s is not None):
                    style._get_xf_index()

    def stream_into(self, source: Path, target: Path) -> None:
        """Copy the xlsxwriter file to `target`, streaming each table body into its worksheet."""
        parts: dict[str, list[Body]] = {}
        worksheets = [ws for ws in self.workbook.worksheets() if not ws.is_chartsheet]
        for body in self.bodies:
            parts.setdefault(f"xl/worksheets/sheet{worksheets.index(body.sheet) + 1}.xml", []).append(body)
        with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED,
                                                             allowZip64=True) as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                copy = at_zip_level(zipfile.ZipInfo(info.filename, date_time=info.date_time))
                copy.external_attr = info.external_attr
                copy.create_system = info.create_system
                bodies = parts.pop(info.filename, None)
                if not bodies:
                    zout.writestr(copy, data)
                    continue
                head, tail = _split_sheet_xml(data.decode("utf-8"), bodies)
                cells = sum(b.rows * len(b.columns) for b in bodies)
                with zout.open(copy, "w", force_zip64=cells * 80 > 1 << 30) as out:
                    out.write(head.encode("utf-8"))
                    for body in bodies:
                        for chunk in _render(body):
                            out.write(chunk.encode("utf-8", "replace"))
                    out.write(tail.encode("utf-8"))
        if parts:  # never drop a table body silently
            raise RuntimeError(f"worksheet parts not found in the workbook: {sorted(parts)}")


_ROW_RE = re.compile(r'<row r="(\d+)"')
_DIMENSION_RE = re.compile(r'<dimension ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"/>')


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _split_sheet_xml(xml: str, bodies: list[Body]) -> tuple[str, str]:
    """The worksheet XML before and after where the bodies' rows go, with the dimension widened."""
    match = _DIMENSION_RE.search(xml)
    if match:
        c1, r1 = _col_index(match.group(1)), int(match.group(2)) - 1
        c2 = _col_index(match.group(3)) if match.group(3) else c1
        r2 = int(match.group(4)) - 1 if match.group(4) else r1
        for body in bodies:
            r1, c1 = min(r1, body.first_row), min(c1, 0)
            r2, c2 = max(r2, body.first_row + body.rows - 1), max(c2, len(body.columns) - 1)
        ref = xl_rowcol_to_cell(r1, c1) + ("" if (r1, c1) == (r2, c2) else ":" + xl_rowcol_to_cell(r2, c2))
        xml = xml[:match.start()] + f'<dimension ref="{ref}"/>' + xml[match.end():]
    written = [int(r) for r in _ROW_RE.findall(xml)]
    if written and max(written) > min(body.first_row for body in bodies):
        raise RuntimeError("a table body must be the last thing on its sheet")
    if "<sheetData/>" in xml:
        head, tail = xml.split("<sheetData/>", 1)
        return head + "<sheetData>", "</sheetData>" + tail
    head, tail = xml.split("</sheetData>", 1)
    return head, "</sheetData>" + tail


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_ESCAPED_LOOKALIKE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_NEEDS_WORK = re.compile(r"[\x00-\x08\x0b-\x1f&<>\ufffe\uffff]|_x|^\s|\s$")


def _inline_text(text: str) -> str:
    """`<t>…</t>` for an inline string cell, escaped as xlsxwriter and Excel do it."""
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
    if not _NEEDS_WORK.search(text):
        return f"<t>{text}</t>"
    if "_x" in text:
        text = _ESCAPED_LOOKALIKE.sub(r"_x005F\1", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    if "\ufffe" in text or "\uffff" in text:
        text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if text[:1].isspace() or text[-1:].isspace():
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


def _number_texts(values) -> list[str | None]:
    """Shortest round-trip text of each number (`repr`), integers without `.0`; None if not finite."""
    numbers = np.asarray(values, dtype=float)
    texts: list[str | None] = [t[:-2] if t.endswith(".0") else t for t in map(repr, numbers.tolist())]
    for i in np.flatnonzero(~np.isfinite(numbers)).tolist():
        texts[i] = None
    return texts


def _string_texts(values, memo: dict) -> list[str | None]:
    """Escaped `<t>` elements; repeated values (periods, codes, names) are escaped once."""
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        t = memo.get(v)
        if t is None:
            t = _inline_text(v)
            if len(memo) < 50_000:
                memo[v] = t
        out.append(t)
    return out


def _style_attr(style) -> str:
    index = style._get_xf_index() if style is not None else 0
    return f' s="{index}"' if index else ""


def _render(body: Body):
    """The body's `<row>` elements, a chunk of rows at a time (built column by column)."""
    letters = [xl_col_to_name(c) for c in range(len(body.columns))]
    memos: list[dict[str, str]] = [{} for _ in body.columns]
    for start in range(0, body.rows, ROWS_PER_CHUNK):
        stop = min(start + ROWS_PER_CHUNK, body.rows)
        numbers = [str(body.first_row + r + 1) for r in range(start, stop)]
        cells_by_column = []
        for letter, column, memo in zip(letters, body.columns, memos, strict=True):
            values = column.values[start:stop]
            if isinstance(column.style, list):
                attrs = [_style_attr(s) for s in column.style[start:stop]]
            else:
                attrs = [_style_attr(column.style)] * (stop - start)
            head = f'<c r="{letter}'
            if column.kind == "n":
                texts = _number_texts(values)
                cells = [f'{head}{r}"{a}><v>{t}</v></c>' if t is not None else
                         (f'{head}{r}"{a}/>' if body.styled_blanks and a else "")
                         for r, t, a in zip(numbers, texts, attrs, strict=True)]
            else:
                texts = _string_texts(values, memo)
                cells = [f'{head}{r}"{a} t="inlineStr"><is>{t}</is></c>' if t is not None else
                         (f'{head}{r}"{a}/>' if body.styled_blanks and a else "")
                         for r, t, a in zip(numbers, texts, attrs, strict=True)]
            cells_by_column.append(cells)
        heights = body.heights[start:stop] if body.heights else [None] * (stop - start)
        yield "".join(
            (f'<row r="{r}" ht="{h:g}" customHeight="1">' if h else f'<row r="{r}">') + "".join(cells) + "</row>"
            for r, h, cells in zip(numbers, heights, zip(*cells_by_column, strict=True), strict=True))


# ------------------------------------------------------------------------------ values

def _texts(values) -> list[str | None]:
    """Text for string cells: None for missing; numbers that stand for IDs lose a trailing .0."""
    out: list[str | None] = []
    for v in (values.tolist() if hasattr(values, "tolist") else list(values)):
        if v is None or v is pd.NA or v is pd.NaT:
            out.append(None)
        elif isinstance(v, str):
            out.append(v or None)
        elif isinstance(v, float):
            if v != v:
                out.append(None)
            else:
                out.append(str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v))
        else:
            text = str(v)
            out.append(text or None)
    return out


def _numbers(values) -> np.ndarray:
    return pd.to_numeric(pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values,
                         errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _width(header: str, values: Any, minimum: int = 6, maximum: int = 60) -> float:
    """fit_width over the header and a sample: the first rows and the longest values."""
    present = [v for v in values if v]
    if len(present) > 2_000:
        longest = sorted(set(present), key=len, reverse=True)[:200]
        present = present[:500] + longest
    return fit_width([*str(header).split("\n"), *present], minimum, maximum)


def _library(indicators: pd.DataFrame | None) -> pd.DataFrame:
    if indicators is None or indicators.empty or "indicator_id" not in indicators.columns:
        return pd.DataFrame(columns=["name", "unit"])
    return indicators.drop_duplicates("indicator_id").set_index("indicator_id").reindex(columns=["name", "unit"])


def _criterion(text: str) -> str:
    """An exact-match COUNTIF criterion as an Excel string literal: no wildcards, no operators."""
    escaped = text.replace("~", "~~").replace("*", "~*").replace("?", "~?").replace('"', '""')
    return f'"={escaped}"'


def _ref(sheet: str, col: int, first: int, last: int) -> str:
    """Absolute reference to rows first..last (0-based) of a column on another sheet."""
    letter = xl_col_to_name(col)
    return f"{quote_sheetname(sheet)}!${letter}${first + 1}:${letter}${max(last, first) + 1}"


def _totals_frame(scores: Scores) -> pd.DataFrame:
    """Every employee scoring saw, by employee_id: the scored with their totals, the unscored with blanks."""
    columns = TOTAL_COLUMNS + TOTAL_EXTRA_COLUMNS
    scored = scores.totals.reindex(columns=columns)
    unscored = scores.unscored
    if not unscored.empty:
        unscored = unscored[~unscored["employee_id"].isin(scored["employee_id"])]
        extra = pd.DataFrame({"employee_id": unscored["employee_id"], "period": _col(unscored, "period"),
                              "name": _col(unscored, "name"), "department": _col(unscored, "department")})
        frames = [f for f in (scored, extra.reindex(columns=columns)) if not f.empty]
        combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    else:
        combined = scored.reset_index(drop=True)
    return combined.sort_values("employee_id", key=lambda ids: ids.astype(str), kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------ machine sheets

def _machine_sheet(book: _Book, name: str, frame: pd.DataFrame, columns: list[str], numeric: set[str],
                   percent: set[str], points: frozenset[str] | set[str] = frozenset()) -> None:
    sheet = book.workbook.add_worksheet(name)
    body_columns = []
    for col, column in enumerate(columns):
        sheet.write_string(0, col, column, book.machine_header)
        values = _col(frame, column)
        if column in numeric:
            numbers = _numbers(values)
            style = (book.machine_percent if column in percent else
                     book.machine_points if column in points else book.machine_general)
            body_columns.append(Column("n", numbers, style))
            width: float = max(12, display_width(column) + 2)
        else:
            texts = _texts(values)
            body_columns.append(Column("s", texts, book.machine_general))
            width = _width(column, texts, minimum=10)
        sheet.set_column(col, col, width)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)
    book.print_setup(sheet, (0, 0))
    book.add_body(Body(sheet, 1, body_columns, len(frame), styled_blanks=False))


def _write_details(book: _Book, scores: Scores, library: pd.DataFrame) -> None:
    details = scores.details
    columns = DETAIL_COLUMNS + DETAIL_EXTRA_COLUMNS + (TRACKING_DETAIL_COLUMNS if scores.as_of else [])
    frame = details.reindex(columns=columns)
    names = _col(details, "name")
    if not library.empty:
        names = names.where(names.notna(), details["indicator_id"].map(library["name"]) if len(details) else names)
    frame["indicator_name"] = names.to_numpy()
    _machine_sheet(book, DETAILS_SHEET, frame, columns, _DETAIL_NUMBERS, _DETAIL_PERCENT)


def _write_totals(book: _Book, totals: pd.DataFrame) -> None:
    _machine_sheet(book, TOTALS_SHEET, totals, TOTAL_COLUMNS + TOTAL_EXTRA_COLUMNS,
                   {"total", "total_rounded", "bonus", "rank"}, {"total"}, {"total_rounded", "bonus"})


def _write_unscored(book: _Book, scores: Scores) -> None:
    _machine_sheet(book, UNSCORED_SHEET, scores.unscored, UNSCORED_COLUMNS, {"problems"}, set())


def _write_adjustments(book: _Book, scores: Scores) -> None:
    """Every adjustment applied this period: whose, what, old → new, from when, why, who approved,
    how many employees it reached, and its cell in the agreements file."""
    from pipeline.adjustments import LOG_COLUMNS

    _machine_sheet(book, ADJUSTMENTS_SHEET, scores.adjustments, LOG_COLUMNS, {"old_value", "new_value", "employees"},
                   set())


# ------------------------------------------------------------------------------ human sheets

def _title(book: _Book, sheet, zh: str, en: str, period: str, note: tuple[str, str] | None = None) -> None:
    f = book.f
    sheet.hide_gridlines(2)
    sheet.write_string(0, 0, book.T(zh, en), f.title)
    subtitle = book.T(f"考核周期 {period}", f"Period {period}")
    if book.mark:
        subtitle += "   " + book.mark
    if note:
        subtitle += "   " + book.T(*note)
    sheet.write_string(1, 0, subtitle, f.subtitle)


def _header(book: _Book, sheet, row: int, headers: list[tuple[str, str]]) -> None:
    for col, (zh, en) in enumerate(headers):
        sheet.write_string(row, col, book.L(zh, en), book.f.header)
    sheet.set_row(row, 15 if book.lang == "en" else 30)


def _set_widths(book: _Book, sheet, headers: list[tuple[str, str]], columns: list[Column],
                minimums: dict[int, int] | None = None, maximum: int = 60) -> list[float]:
    widths = []
    for col, ((zh, en), column) in enumerate(zip(headers, columns, strict=True)):
        head = book.L(zh, en)
        if column.kind == "s":
            width = _width(head, column.values, maximum=maximum)
        else:
            width = fit_width(head.split("\n"), minimum=10)
        width = max(width, (minimums or {}).get(col, 0))
        sheet.set_column(col, col, width)
        widths.append(width)
    return widths


def _note(book: _Book, sheet, row: int, zh: str, en: str, widths: list[float]) -> None:
    """A wrapped explanation over the table's width (Chinese and English on their own lines)."""
    text = book.L(zh, en)
    room = max(sum(widths) - 2, 20)
    lines = sum(max(1, math.ceil(display_width(line) / room)) for line in text.split("\n"))
    sheet.merge_range(row, 0, row, len(widths) - 1, "", book.note_text)
    sheet.write_string(row, 0, text, book.note_hint)
    sheet.set_row(row, 13.5 * lines + 3)


def _write_employees(book: _Book, scores: Scores) -> None:
    f, lang = book.f, book.lang
    sheet = book.workbook.add_worksheet(EMPLOYEES_SHEET)
    scored = scores.totals.copy()
    scored["_dept"] = _col(scored, "department").astype(object).where(_col(scored, "department").notna(), "")
    keys = [c for c in ("_dept", "rank", "employee_id") if c in scored.columns]
    scored = scored.sort_values(keys, kind="stable").reset_index(drop=True)
    dims = scores.dimensions.copy() if not scores.dimensions.empty else pd.DataFrame(columns=["employee_id"])
    dim_codes = [c for c in dims.columns if c != "employee_id"]
    if not dim_codes:
        dim_codes = [d.code for d in DIMENSIONS]
    dims["employee_id"] = dims["employee_id"].astype(object)
    dims = dims.drop_duplicates("employee_id").set_index("employee_id")
    unscored = scores.unscored[~scores.unscored["employee_id"].isin(scored["employee_id"])].copy()
    unscored["_dept"] = _col(unscored, "department").astype(object).where(_col(unscored, "department").notna(), "")
    unscored = unscored.sort_values(["_dept", "employee_id"], kind="stable").reset_index(drop=True)
    n_scored, n = len(scored), len(scored) + len(unscored)

    _title(book, sheet, "员工总分", "Employees", scores.period,
           (f"已评分 {n_scored} 人,未评分 {len(unscored)} 人(列在最后)",
            f"{n_scored} scored, {len(unscored)} not scored (listed last)"))
    sheet.write_string(2, 0, book.T("总分颜色:红 < 80% ≤ 黄 < 100% ≤ 绿",
                                    "Total colours: red < 80% ≤ amber < 100% ≤ green"), book.hint)
    headers = [("部门", "Department"), ("员工编号", "Employee ID"), ("姓名", "Name"), ("岗位", "Position"),
               ("总分", "Total"), ("总分(百分制)", "Points"), ("等级", "Grade"), ("奖金系数", "Bonus"),
               ("部门排名", "Dept. rank")]
    headers += [((_DIMENSION[c].zh, _DIMENSION[c].en.capitalize()) if c in _DIMENSION else (str(c), str(c))) for c in dim_codes]
    headers += [("未评分原因", "Reason not scored")]
    top = 3
    _header(book, sheet, top, headers)

    def both(column: str) -> list:
        return _texts(_col(scored, column)) + _texts(_col(unscored, column))

    def numbers(values, blanks: int) -> np.ndarray:
        return np.concatenate([_numbers(values), np.full(blanks, np.nan)])

    dim_values = [numbers(scored["employee_id"].map(dims[c]) if c in dims.columns and n_scored else
                          np.full(n_scored, np.nan), len(unscored)) for c in dim_codes]
    reason_column = "reason_en" if lang == "en" else "reason_zh"
    columns = [
        Column("s", both("department"), f.text), Column("s", both("employee_id"), f.text),
        Column("s", both("name"), f.text), Column("s", both("position"), f.text),
        Column("n", numbers(_col(scored, "total"), len(unscored)), f.score_percent),
        Column("n", numbers(_col(scored, "total_rounded"), len(unscored)), f.number),
        Column("s", both("grade"), book.center),
        Column("n", numbers(_col(scored, "bonus"), len(unscored)), f.number),
        Column("n", numbers(_col(scored, "rank"), len(unscored)), f.integer),
        *[Column("n", values, f.score_percent) for values in dim_values],
        Column("s", [None] * n_scored + _texts(_col(unscored, reason_column)),
               [f.text] * n_scored + [book.warn_wrap] * len(unscored)),
    ]
    widths = _set_widths(book, sheet, headers, columns, {0: 10, 2: 10}, maximum=70)
    room = widths[-1] - 2
    heights: list[float | None] = [None] * n_scored
    heights += [None if lines == 1 else 13.5 * lines + 2 for lines in (
        sum(max(1, math.ceil(display_width(part) / room)) for part in (text or "").split("\n"))
        for text in columns[-1].values[n_scored:])]  # one reason a line
    first = top + 1
    if n_scored:
        _traffic_lights(sheet, first, 4, first + n_scored - 1, f)
    sheet.freeze_panes(first, 3)
    sheet.autofilter(top, 0, max(top + n, top + 1), len(headers) - 1)
    book.print_setup(sheet, (top, top))
    book.add_body(Body(sheet, first, columns, n, styled_blanks=True, heights=heights))


def _write_cascade(book: _Book, scores: Scores, library: pd.DataFrame) -> None:
    f = book.f
    sheet = book.workbook.add_worksheet(CASCADE_SHEET)
    table = scores.cascade.reset_index(drop=True)
    _title(book, sheet, "部门目标分解", "Department targets and their cascade", scores.period)
    headers = [("部门", "Department"), ("周期", "Period"), ("指标编号", "Indicator ID"), ("指标", "Indicator"),
               ("部门目标", "Department target"), ("个人目标合计", "Σ individual targets"), ("覆盖率", "Coverage"),
               ("部门实际", "Department actual"), ("部门完成率", "Department achievement"), ("人数", "Employees"),
               ("提示", "Flag")]
    top = 4
    _header(book, sheet, top, headers)
    names = _col(table, "name")
    if not library.empty and len(table):
        names = names.where(names.notna(), table["indicator_id"].map(library["name"]))
    units = table["indicator_id"].map(library["unit"]) if (len(table) and not library.empty) else \
        pd.Series([None] * len(table), dtype=object)
    wan = [shown_in_wan(u, None, book.money_unit) for u in units.tolist()]
    value_styles = [f.wan if w else f.for_unit(u) for u, w in zip(units.tolist(), wan, strict=True)]
    if any(wan):  # the unit the figures are shown in, after the indicator's name
        names = pd.Series([wan_name(n, book.lang) if w else n for n, w in zip(names.tolist(), wan, strict=True)],
                          index=names.index, dtype=object)
    coverage = _numbers(_col(table, "coverage"))
    employees = _numbers(_col(table, "employees"))
    flags: list[str | None] = []
    coverage_styles = []
    for cov, people in zip(coverage.tolist(), employees.tolist(), strict=True):
        if not people:
            flags.append(book.T("无人承接该目标", "no employee carries this target"))
            coverage_styles.append(book.bad_percent)
        elif cov != cov:
            flags.append(book.T("无法计算覆盖率", "coverage cannot be computed"))
            coverage_styles.append(book.bad_percent)
        elif cov < 1 - 1e-9:
            flags.append(book.T("个人目标合计低于部门目标", "individual targets fall short of the department target"))
            coverage_styles.append(book.bad_percent)
        else:
            flags.append(None)
            coverage_styles.append(f.percent)
    columns = [
        Column("s", _texts(_col(table, "department")), f.text), Column("s", _texts(_col(table, "period")), f.text),
        Column("s", _texts(_col(table, "indicator_id")), f.text), Column("s", _texts(names), f.text),
        Column("n", _numbers(_col(table, "department_target")), value_styles),
        Column("n", _numbers(_col(table, "individual_targets")), value_styles),
        Column("n", coverage, coverage_styles),
        Column("n", _numbers(_col(table, "actual")), value_styles),
        Column("n", _numbers(_col(table, "department_achievement")), f.percent),
        Column("n", employees, f.integer),
        Column("s", flags, [book.bad if flag else f.text for flag in flags]),
    ]
    widths = _set_widths(book, sheet, headers, columns, {3: 12, 10: 14})
    _note(book, sheet, 2,
          "覆盖率 = 个人目标合计 ÷ 部门目标(越低越好的指标取倒数;按平均汇总的指标用平均值)。"
          "低于 100% 表示个人目标加起来完不成部门目标。",
          "Coverage = Σ individual targets ÷ department target (inverted for lower-is-better; the mean for "
          "mean-aggregated indicators). Below 100% the individual targets do not add up to the department's.",
          widths)
    if table.empty:
        sheet.write_string(top + 1, 0, book.T("本期没有部门目标。", "No department targets for this period."), book.hint)
    else:
        sheet.autofilter(top, 0, top + len(table), len(headers) - 1)
    sheet.freeze_panes(top + 1, 0)
    book.print_setup(sheet, (top, top))
    book.add_body(Body(sheet, top + 1, columns, len(table), styled_blanks=True))


# Calibration: who reaches each tier, with the share a well-set tier is reached by.
_TIER_SHARE_HEADERS = [("达到基础值(基准 80%)", "Reached base (benchmark 80%)"),
                       ("达到目标值(基准 50%)", "Reached target (benchmark 50%)"),
                       ("达到冲刺值(基准 20%)", "Reached stretch (benchmark 20%)")]


def _write_calibration(book: _Book, scores: Scores, policy: Policy, library: pd.DataFrame) -> None:
    f = book.f
    sheet = book.workbook.add_worksheet(CALIBRATION_SHEET)
    table = scores.calibration.reset_index(drop=True)
    _title(book, sheet, "目标校准", "Target calibration", scores.period)
    easy, hard = f"{policy.too_easy:.0%}", f"{policy.too_hard:.0%}"
    headers = [("指标编号", "Indicator ID"), ("指标", "Indicator"), ("人数", "Employees"),
               ("达成 100% 人数", "Reached 100%"), ("达成比例", "Share"), ("判断", "Assessment"),
               *_TIER_SHARE_HEADERS]
    top = 4
    _header(book, sheet, top, headers)
    names = _col(table, "name")
    if not library.empty and len(table):
        names = names.where(names.notna(), table["indicator_id"].map(library["name"]))
    employees = _numbers(_col(table, "employees"))
    flags: list[str | None] = []
    styles = []
    for code, people in zip(_col(table, "flag").tolist(), employees.tolist(), strict=True):
        if isinstance(code, str) and code in _FLAG:
            flags.append(book.T(*_FLAG[code]))
            styles.append(book.warn)
        elif people == people and people < CALIBRATION_MIN_EMPLOYEES:
            flags.append(book.T(f"不足 {CALIBRATION_MIN_EMPLOYEES} 人,不判断",
                                f"fewer than {CALIBRATION_MIN_EMPLOYEES} employees: not judged"))
            styles.append(f.text)
        else:
            flags.append(book.T("正常", "fine") if isinstance(code, str) or code is None else None)
            styles.append(f.text)
    columns = [
        Column("s", _texts(_col(table, "indicator_id")), f.text), Column("s", _texts(names), f.text),
        Column("n", employees, f.integer), Column("n", _numbers(_col(table, "reached")), f.integer),
        Column("n", _numbers(_col(table, "share")), f.percent), Column("s", flags, styles),
        *(Column("n", _numbers(_col(table, name)), f.percent) for name in TIER_SHARE_COLUMNS),
    ]
    widths = _set_widths(book, sheet, headers, columns, {1: 14, 5: 16})
    _note(book, sheet, 2,
          f"每个指标达成 100% 的员工比例:高于 {easy} → 目标偏低;低于 {hard} → 目标偏高;"
          f"不足 {CALIBRATION_MIN_EMPLOYEES} 人的指标不作判断。达到基础值/目标值/冲刺值的比例宜约为 80%/50%/20%。",
          f"Share of employees reaching 100% per indicator: above {easy} → target too low; below {hard} → "
          f"target too high; indicators with fewer than {CALIBRATION_MIN_EMPLOYEES} employees are not judged. "
          "Reaching base / target / stretch: well-set tiers are reached by about 80% / 50% / 20%.",
          widths)
    if table.empty:
        sheet.write_string(top + 1, 0, book.T("本期没有可校准的指标。", "No indicators to calibrate."), book.hint)
    sheet.freeze_panes(top + 1, 0)
    book.print_setup(sheet, (top, top))
    book.add_body(Body(sheet, top + 1, columns, len(table), styled_blanks=True))


def _write_warnings(book: _Book, findings: list[Finding]) -> None:
    f = book.f
    sheet = book.workbook.add_worksheet(WARNINGS_SHEET)
    errors = sum(1 for x in findings if x.is_error)
    warnings = len(findings) - errors
    sheet.hide_gridlines(2)
    sheet.write_string(0, 0, book.T("错误与警告", "Errors and warnings"), f.title)
    sheet.write_string(1, 0, book.T(f"共 {errors} 个错误、{warnings} 个警告。错误使相关员工无法评分,警告请核实。",
                                    f"{plural(errors, 'error')}, {plural(warnings, 'warning')}. An error keeps the employees it "
                                    "concerns from being scored; check the warnings."), f.subtitle)
    headers = [("级别", "Severity"), ("规则", "Rule"), ("文件", "File"), ("工作表", "Sheet"), ("单元格", "Cell"),
               ("员工", "Employee"), ("周期", "Period"), ("问题(中文)", "Message (zh)"),
               ("问题(英文)", "Message (en)")]
    top = 3
    _header(book, sheet, top, headers)
    severity = [book.T(*_SEVERITY.get(x.severity, (x.severity, x.severity))) for x in findings]
    zh = [x.message_zh for x in findings]
    en = [x.message_en for x in findings]
    message_width = 50
    heights = []
    for a, b in zip(zh, en, strict=True):
        lines = max(math.ceil(display_width(a) / (message_width - 2)), math.ceil(display_width(b) / (message_width - 2)),
                    1)
        heights.append(None if lines == 1 else 14 * lines)
    columns = [
        Column("s", severity, [book.top_bad if x.is_error else book.top_warn for x in findings]),
        Column("s", _texts([x.rule for x in findings]), book.top_text),
        Column("s", _texts([x.file for x in findings]), book.top_text),
        Column("s", _texts([x.sheet for x in findings]), book.top_text),
        Column("s", _texts([x.cell for x in findings]), book.top_text),
        Column("s", _texts([x.employee_id for x in findings]), book.top_text),
        Column("s", _texts([x.period for x in findings]), book.top_text),
        Column("s", _texts(zh), f.wrap), Column("s", _texts(en), f.wrap),
    ]
    _set_widths(book, sheet, headers[:7], columns[:7], {0: 9}, maximum=30)
    sheet.set_column(7, 8, message_width)
    if findings:
        sheet.autofilter(top, 0, top + len(findings), len(headers) - 1)
    else:
        sheet.write_string(top + 1, 0, book.T("没有错误或警告。", "No errors or warnings."), book.hint)
    sheet.freeze_panes(top + 1, 0)
    book.print_setup(sheet, (top, top))
    book.add_body(Body(sheet, top + 1, columns, len(findings), styled_blanks=True, heights=heights))


# ------------------------------------------------------------------------------ streaks

_STREAK_KINDS = {"promotion": ("晋升候选", "Promotion candidate"), "improvement": ("改进计划", "Improvement plan")}


def _write_streaks(book: _Book, streaks: pd.DataFrame | None, policy: Policy) -> None:
    """Employees graded in the top (or bottom) grades this period and the periods right before it."""
    f = book.f
    sheet = book.workbook.add_worksheet(STREAKS_SHEET)
    sheet.hide_gridlines(2)
    sheet.write_string(0, 0, book.T("连续表现", "Streaks"), f.title)
    lines = [book.T(f"考核周期 {book.period}", f"Period {book.period}")]
    for kind, (grades, periods) in policy.streaks.items():
        zh, en = _STREAK_KINDS.get(kind, (kind, kind))
        shown = "/".join(grades)
        if not periods:
            lines.append(book.T(f"{zh}:未启用", f"{en}s: turned off"))
            continue
        if book.lang != "en":
            lines.append(f"{zh}:截至本期,连续 {periods} 期或以上等级为 {shown}(同样长度的周期,中间无缺)")
        lines.append(f"{en}s: graded {shown} for {periods} or more periods in a row up to this one (no gap)")
    for row, text in enumerate(lines, start=1):
        sheet.write_string(row, 0, text, f.subtitle)
    headers = [("员工编号", "Employee ID"), ("姓名", "Name"), ("部门", "Department"), ("类型", "Kind"),
               ("连续期数", "Periods"), ("起始周期", "From"), ("各期等级", "Grades")]
    top = len(lines) + 2
    _header(book, sheet, top, headers)
    frame = streaks if streaks is not None else pd.DataFrame(columns=["employee_id", "name", "department", "kind",
                                                                      "periods", "from_period", "grades"])
    kinds = [book.T(*_STREAK_KINDS.get(k, (k, k))) for k in frame["kind"]]
    columns = [
        Column("s", _texts(frame["employee_id"]), book.top_text), Column("s", _texts(frame["name"]), book.top_text),
        Column("s", _texts(frame["department"]), book.top_text), Column("s", _texts(kinds), book.top_text),
        Column("n", _numbers(frame["periods"]), f.integer), Column("s", _texts(frame["from_period"]), book.top_text),
        Column("s", _texts(frame["grades"]), book.top_text),
    ]
    _set_widths(book, sheet, headers, columns, {0: 12, 3: 14}, maximum=40)
    if len(frame):
        sheet.autofilter(top, 0, top + len(frame), len(headers) - 1)
    else:
        sheet.write_string(top + 1, 0, book.T("本期没有人连续达到上述等级。", "Nobody is on a streak this period."),
                           book.hint)
    sheet.freeze_panes(top + 1, 0)
    book.print_setup(sheet, (top, top))
    book.add_body(Body(sheet, top + 1, columns, len(frame), styled_blanks=True))


# ------------------------------------------------------------------------------ overview

def _department_key(value: object) -> str:
    return value if isinstance(value, str) else ""


def _write_overview(book: _Book, scores: Scores, totals: pd.DataFrame, findings: list[Finding],
                    policy: Policy) -> None:
    f, lang = book.f, book.lang
    sheet = book.workbook.add_worksheet(OVERVIEW_SHEET)
    sheet.activate()
    sheet.hide_gridlines(2)
    title = book.T("公司绩效总览", "Company KPI overview")
    sheet.write_string(0, 0, f"{title} · {book.mark}" if book.mark else title, f.title)
    sheet.write_string(1, 0, book.T(f"考核周期 {scores.period}", f"Period {scores.period}"), f.subtitle)

    # Where the formulas look: the Totals and Unscored sheets (row 1 is the header).
    n_rows, n_unscored = len(totals), len(scores.unscored)
    last = n_rows  # 0-based last data row of Totals
    t_total = _ref(TOTALS_SHEET, TOTAL_COLUMNS.index("total"), 1, last)
    t_grade = _ref(TOTALS_SHEET, TOTAL_COLUMNS.index("grade"), 1, last)
    t_dept = _ref(TOTALS_SHEET, len(TOTAL_COLUMNS) + TOTAL_EXTRA_COLUMNS.index("department"), 1, last)
    u_id = _ref(UNSCORED_SHEET, 0, 1, n_unscored)
    u_dept = _ref(UNSCORED_SHEET, UNSCORED_COLUMNS.index("department"), 1, n_unscored)

    scored_totals = _numbers(scores.totals["total"]) if len(scores.totals) else np.zeros(0)
    scored_totals = scored_totals[np.isfinite(scored_totals)]
    n_scored = len(scored_totals)
    errors = sum(1 for x in findings if x.is_error)

    # Headline counts.
    row = 3
    sheet.write_string(row, 0, book.T("关键数字", "Headline"), book.section)
    sheet.write_blank(row, 1, None, book.section)
    scored_cell = xl_rowcol_to_cell(row + 1, 1, row_abs=True, col_abs=True)
    headline = [
        (("已评分员工", "Employees scored"), f"=COUNT({t_total})", n_scored),
        (("未评分员工", "Employees not scored"), f"=COUNTA({u_id})", n_unscored),
        (("错误", "Errors"), None, errors),
        (("警告", "Warnings"), None, len(findings) - errors),
    ]
    for i, ((zh, en), formula, value) in enumerate(headline):
        r = row + 1 + i
        sheet.write_string(r, 0, book.T(zh, en), f.key)
        if formula:
            sheet.write_formula(r, 1, formula, book.headline, value)
        else:
            sheet.write_number(r, 1, value, book.headline)
    r = row + 1 + len(headline)
    sheet.write_string(r, 0, book.T("平均总分", "Mean total"), f.key)
    if n_scored:
        sheet.write_formula(r, 1, f"=AVERAGE({t_total})", book.headline_percent, float(scored_totals.mean()))
    else:
        sheet.write_string(r, 1, "—", book.headline)

    # Grade distribution: COUNTIF over the Totals grade column, with the real counts cached.
    row = r + 2
    sheet.write_string(row, 0, book.T("等级分布", "Grade distribution"), book.section)
    for col in range(1, 5):
        sheet.write_blank(row, col, None, book.section)
    head = row + 1
    grade_headers = [("等级", "Grade"), ("最低总分", "From total"), ("奖金系数", "Bonus"), ("人数", "Employees"),
                     ("占比", "Share")]
    _header(book, sheet, head, grade_headers)
    grades_scored = scores.totals["grade"] if len(scores.totals) else pd.Series(dtype=object)
    for i, g in enumerate(policy.grades):
        r = head + 1 + i
        count = int((grades_scored == g.grade).sum())
        sheet.write_string(r, 0, g.grade, book.center)
        sheet.write_number(r, 1, g.min, f.weight)
        sheet.write_number(r, 2, g.bonus, f.number)
        sheet.write_formula(r, 3, f"=COUNTIF({t_grade},{_criterion(g.grade)})", f.integer, count)
        count_cell = xl_rowcol_to_cell(r, 3)
        sheet.write_formula(r, 4, f"=IF({scored_cell}=0,0,{count_cell}/{scored_cell})", f.percent,
                            count / n_scored if n_scored else 0)
    grade_last = head + len(policy.grades)
    chart = book.workbook.add_chart({"type": "column"})
    chart.add_series({
        "name": book.T("人数", "Employees"),
        "categories": [OVERVIEW_SHEET, head + 1, 0, grade_last, 0],
        "values": [OVERVIEW_SHEET, head + 1, 3, grade_last, 3],
        "data_labels": {"value": True}, "fill": {"color": "#2F5597"}, "gap": 80,
    })
    chart.set_title({"name": book.T("等级分布", "Grade distribution"), "name_font": {"size": 11}})
    chart.set_legend({"none": True})
    chart.set_y_axis({"major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}, "min": 0})
    chart.set_size({"width": 460, "height": 300})
    sheet.insert_chart(3, 6, chart, {"x_offset": 10, "y_offset": 0})

    # Departments: COUNTIFS / AVERAGEIFS over the Totals and Unscored sheets. Excel compares text
    # case-insensitively, so departments differing only in case are one row here.
    row = max(grade_last + 2, 3 + 16)
    sheet.write_string(row, 0, book.T("部门汇总", "Departments"), book.section)
    dept_headers = [("部门", "Department"), ("已评分", "Scored"), ("未评分", "Not scored"),
                    ("平均总分", "Mean total")] + [(f"等级 {g.grade}", f"Grade {g.grade}") for g in policy.grades]
    for col in range(1, len(dept_headers)):
        sheet.write_blank(row, col, None, book.section)
    head = row + 1
    _header(book, sheet, head, dept_headers)
    scored_frame = pd.DataFrame({"key": [_department_key(v).casefold() for v in _col(scores.totals, "department")],
                                 "name": [_department_key(v) for v in _col(scores.totals, "department")],
                                 "total": _numbers(_col(scores.totals, "total")),
                                 "grade": _col(scores.totals, "grade").astype(object).tolist()})
    unscored_names = [_department_key(v) for v in _col(scores.unscored, "department")]
    unscored_keys = [v.casefold() for v in unscored_names]
    display: dict[str, str] = {}
    for key, name in sorted(zip(list(scored_frame["key"]) + unscored_keys,
                                list(scored_frame["name"]) + unscored_names, strict=True), key=lambda kv: (kv[0], kv[1])):
        display.setdefault(key, name)
    first_dept = head + 1
    r = head
    for r, key in enumerate(sorted(display, key=lambda k: display[k]), start=first_dept):
        name = display[key]
        criterion = _criterion(name)
        mine = scored_frame[scored_frame["key"] == key]
        totals_mine = mine["total"].to_numpy()
        totals_mine = totals_mine[np.isfinite(totals_mine)]
        grade_counts = [int((mine["grade"] == g.grade).sum()) for g in policy.grades]
        sheet.write_string(r, 0, name or book.T("(未填部门)", "(no department)"), f.text)
        grade_span = f"{xl_col_to_name(4)}{r + 1}:{xl_col_to_name(3 + len(policy.grades))}{r + 1}"
        sheet.write_formula(r, 1, f"=SUM({grade_span})", f.integer, sum(grade_counts))
        if n_unscored:
            sheet.write_formula(r, 2, f"=COUNTIFS({u_dept},{criterion})", f.integer, unscored_keys.count(key))
        else:  # an empty range would count its one blank cell for a department left blank
            sheet.write_number(r, 2, 0, f.integer)
        if len(totals_mine):
            sheet.write_formula(r, 3, f"=AVERAGEIFS({t_total},{t_dept},{criterion})", f.score_percent,
                                float(totals_mine.mean()))
        else:
            sheet.write_string(r, 3, "—", book.center)
        for j, g in enumerate(policy.grades):
            sheet.write_formula(r, 4 + j, f"=COUNTIFS({t_dept},{criterion},{t_grade},{_criterion(g.grade)})",
                                f.integer, grade_counts[j])
    total_row = r + 1
    sheet.write_string(total_row, 0, book.T("合计", "Total"), book.sum_label)
    for col in range(1, len(dept_headers)):
        letter = xl_col_to_name(col)
        span = f"{letter}{first_dept + 1}:{letter}{max(total_row, first_dept + 1)}"
        if col == 3:
            if n_scored:
                sheet.write_formula(total_row, col, f"=AVERAGE({t_total})", book.sum_percent,
                                    float(scored_totals.mean()))
            else:
                sheet.write_string(total_row, col, "—", book.sum_label)
            continue
        if col == 1:
            value = int(sum((grades_scored == g.grade).sum() for g in policy.grades))
        elif col == 2:
            value = n_unscored
        else:
            value = int((grades_scored == policy.grades[col - 4].grade).sum())
        if display:
            sheet.write_formula(total_row, col, f"=SUM({span})", book.sum_integer, value)
        else:
            sheet.write_number(total_row, col, value, book.sum_integer)

    # How to read this workbook.
    row = total_row + 2
    sheet.write_string(row, 0, book.T("如何阅读本工作簿", "How to read this workbook"), book.section)
    for col in range(1, 12):
        sheet.write_blank(row, col, None, book.section)
    notes = [
        ("总览:本页。等级分布与部门汇总是对“总分 Totals”表的 COUNTIF/COUNTIFS 公式,数字可直接点开核对。",
         "Overview: this page. The grade distribution and the department rollup are COUNTIF/COUNTIFS "
         "formulas over the Totals sheet; click a number to see how it is counted."),
        ("员工:每位员工一行,按部门和排名排序;总分红/黄/绿 = 低于 80% / 80%–100% / 达到 100%;未评分的员工列在最后并写明原因。",
         "Employees: one row per employee by department and rank; totals red / amber / green = below 80% / "
         "80–100% / 100% or more; employees who could not be scored come last, with the reason."),
        ("目标分解:部门目标与个人目标合计的对比;覆盖率低于 100% 说明个人目标加起来完不成部门目标。",
         "Cascade: department targets against the sum of individual targets; coverage below 100% means the "
         "individual targets do not add up to the department's."),
        ("校准:每个指标达成 100% 的员工比例;比例过高说明目标偏低,过低说明目标偏高。",
         "Calibration: per indicator, the share of employees reaching 100%; too high suggests the target is "
         "too low, too low suggests it is too high."),
        ("警告:本期全部错误与警告,指明文件、工作表和单元格;错误会使相关员工无法评分。",
         "Warnings: every error and warning of the period with its file, sheet and cell; an error keeps the "
         "employees concerned from being scored."),
        ("明细 / 总分 / 未评分:供系统与审计读取的原始数据,第一行是固定列名,数值为完整精度(0.97 即 97%)。",
         "Details / Totals / Unscored: plain data for systems and auditors; row 1 holds fixed column names and "
         "numbers are full precision (0.97 means 97%)."),
    ]
    for i, (zh, en) in enumerate(notes, start=1):
        r = row + i
        text = en if lang == "en" else f"{zh}\n{en}"
        sheet.merge_range(r, 0, r, 11, "", book.note_text)
        sheet.write_string(r, 0, text, book.note_text)
        sheet.set_row(r, 30 if lang == "en" else 44)

    first_column = [book.T(zh, en) for (zh, en), _, _ in headline] + [book.T("平均总分", "Mean total")]
    sheet.set_column(0, 0, fit_width(first_column + list(display.values()), minimum=16, maximum=40))
    sheet.set_column(1, 3, 12)
    sheet.set_column(4, max(4, len(dept_headers) - 1), 11)
    sheet.freeze_panes(2, 0)  # the title and period stay in view
    book.print_setup(sheet)
    if len(display) <= 25:  # one page for a typical company
        sheet.fit_to_pages(1, 1)
