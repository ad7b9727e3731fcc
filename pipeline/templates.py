"""The blank input templates HR fills, generated from `kinds.py` alone.

Every header, dropdown, input message and the instructions table comes from the Kind, so a
change to a Field changes the template; `template_drift` catches committed templates that
no longer match. Layout conventions the reader relies on:

- row 1 of every table sheet is the header, each cell exactly `Field.header` (`中文\\nEnglish`);
- row 2 is an example row in grey italics whose first cell starts with `示例` (skip it);
- an AHP matrix sheet `AHP-<岗位类别>` has indicator IDs across row 1 (from B) and down
  column A (from row 2); in the example matrix those IDs start with `示例`;
- a hidden sheet `_meta` holds `kind`, `version` and `generator` in A1:B3;
- the ratings template also has a sheet `评分标准 Anchors`: per rating indicator, levels 1–5
  and the behaviour each describes (from the indicator library's anchor columns), for the
  raters to rate against. It is never read: scoring takes the anchors from the library.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import math
import tempfile
from pathlib import Path

from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from pipeline import kinds as kinds_module
from pipeline.kinds import (
    AHP_SHEETS,
    ANCHOR_LEVELS,
    CHOICE,
    ID,
    NUMBER,
    PERIOD,
    RATINGS,
    TEMPLATE_VERSION,
    TEXT,
    WEIGHT,
    Field,
    Kind,
    SheetSpec,
    anchor_field,
)
from pipeline.writers.common import display_width, fit_width, new_workbook

EXAMPLE_MARK = "示例"
INSTRUCTIONS_SHEET = "说明 Instructions"
META_SHEET = "_meta"
LISTS_SHEET = "_lists"
GENERATOR = "kpi-pipeline"
AHP_PREFIX = AHP_SHEETS.prefix
EXAMPLE_AHP_FAMILY = "销售"
EMPTY_ROWS = 1000  # rows below the data that get dropdowns and input messages
LIST_LIMIT = 255
LINE_HEIGHT = 15  # points per wrapped line at the 10 pt default font (CJK fonts run tall)
ANCHORS_SHEET = "评分标准 Anchors"

# Header fills: required columns darker, so HR sees at a glance what must be filled.
REQUIRED_FILL = "#9DC3E6"
OPTIONAL_FILL = "#DDEBF7"
BORDER_COLOR = "#8EA9C1"
EXAMPLE_COLOR = "#808080"

WEIGHT_FORMAT = "0%"
MONTH_FORMAT = "yyyy-mm"
DATE_FORMAT = "yyyy-mm-dd"
TEXT_FORMAT = "@"  # ID, period and text columns: Excel keeps `2026-10` and `007` as typed

# A 3×3 judgment matrix that shows the Saaty notation HR types (3, 5, 1/3).
_EXAMPLE_MATRIX = (
    (1, 3, 5),
    ("1/3", 1, 3),
    ("1/5", "1/3", 1),
)

_GENERAL_ZH = (
    "第 1 行为表头(中文 + 英文),请勿修改;深色表头为必填列。",
    "第 2 行为灰色斜体的示例行(编号以“示例”开头),读取时自动忽略,可保留或删除。",
    "带下拉箭头的列请从列表中选择;选中单元格可看到该列的填写说明。",
)
_GENERAL_EN = (
    "Row 1 is the header (Chinese + English): do not change it. Darker headers are required.",
    "Row 2 is a grey italic example (its ID starts with 示例); it is ignored when reading.",
    "Columns with a dropdown take a value from the list; select a cell to see how to fill it.",
)

# The ratings template: what the score column's input message and the instructions add. An input
# message belongs to a column, not to a row's indicator, so the anchors themselves are on a sheet.
_SCORE_HINT = ("对照“评分标准 Anchors”表中各分值的行为描述打分",
               "Rate against the behaviour each level describes (sheet 评分标准 Anchors)")
_ANCHORS_ZH = ("“评分标准 Anchors”表列出每个评分类指标 1–5 分的行为描述(来自指标库),请对照打分;"
               "该表仅供参考,读取时忽略。",)
_ANCHORS_EN = ("The 评分标准 Anchors sheet lists, per rating indicator, the behaviour each level 1–5 "
               "describes (from the indicator library): rate against it. It is for reference and never read.",)
# The anchors sheet: (header, width). The headers name no template column, so the sheet never
# reads as a table of another kind.
_ANCHOR_HEADINGS = (("指标编号\nIndicator ID", 14), ("指标名称\nIndicator", 18), ("分值\nLevel", 8),
                    ("行为描述\nBehaviour anchor", 64))
# Seed 003's example: 责任心, described at 1, 3 and 5.
_EXAMPLE_ANCHORS = ("示例ATT-01", "责任心", {1: "经常拖延任务,需反复催促", 3: "按时完成任务,无重大失误",
                                          5: "主动超额完成任务,承担额外责任"})

# What a column accepts, by field type, for the instructions table (choices are listed instead).
_TYPE_HINTS = {
    WEIGHT: "百分比,如 60%(60、0.6 亦可)\nPercentage, e.g. 60% (60 or 0.6 also work)",
    PERIOD: "2026-10 / 2026-Q3 / 2026-H1 / 2026",
    NUMBER: "数字\nNumber",
    ID: "编号(文本)\nID (text)",
    TEXT: "文本\nText",
}


# ---------------------------------------------------------------------------- public API


def write_template(kind: Kind, path, rows: dict | None = None, *, example: bool = True,
                   anchors: list[tuple[str, str, dict[int, str]]] | None = None,
                   notes: dict[str, tuple[str, int, list[str]]] | None = None) -> Path:
    """Write `kind`'s template to `path`, optionally pre-filled with data rows.

    `rows` maps a sheet (its full name, Chinese or English name) to a list of dicts
    (field name → value), and `AHP-<岗位类别>` to `{"ids": [...], "matrix": [[...]]}`.
    `anchors` (ratings only): (indicator ID, name, {level: behaviour}) per rating indicator for
    the `评分标准 Anchors` sheet; without them that sheet shows the example indicator.
    `notes` maps a sheet (as `rows` does) to (header, width, one text per data row): a column
    after the template's own, for a person to read (the reader ignores columns it does not know).
    Same arguments → byte-identical file.
    """
    if anchors is not None and kind.name != RATINGS.name:
        raise KeyError(f"{kind.name} has no anchors sheet")
    path = Path(path)
    rows = dict(rows or {})
    matrices = {name: rows.pop(name) for name in list(rows) if name.startswith(AHP_PREFIX)}
    if matrices and not any(spec.matrix for spec in kind.sheets):
        raise KeyError(f"{kind.name} has no matrix sheets: {sorted(matrices)}")
    tables: dict[str, list[dict]] = {}
    for key, table_rows in rows.items():
        tables[kind.sheet(key).name] = list(table_rows)  # KeyError: a sheet this kind lacks
    extra = {kind.sheet(key).name: note for key, note in (notes or {}).items()}

    workbook = new_workbook(path, title=f"{kind.zh} {kind.en}")
    styles = _Styles(workbook)
    lists = _ListSheet()

    instructions = workbook.add_worksheet(INSTRUCTIONS_SHEET)
    data_sheets = []
    for spec in kind.sheets:
        if spec.matrix:
            if matrices:
                for name, content in matrices.items():
                    _write_matrix(workbook.add_worksheet(name), styles, content["ids"],
                                  content["matrix"], example=False)
            elif example:
                ids = [f"{EXAMPLE_MARK}{_example_id(i)}" for i in range(len(_EXAMPLE_MATRIX))]
                _write_matrix(workbook.add_worksheet(AHP_PREFIX + EXAMPLE_AHP_FAMILY), styles,
                              ids, _EXAMPLE_MATRIX, example=True)
            continue
        sheet = workbook.add_worksheet(spec.name)
        data_sheets.append((sheet, spec))
    for sheet, spec in data_sheets:
        _write_table(sheet, spec, styles, lists, tables.get(spec.name, []), example=example,
                     hints={"score": _SCORE_HINT} if kind.name == RATINGS.name else None)
        if spec.name in extra:
            _write_note_column(sheet, spec, styles, extra[spec.name], first_row=2 if example else 1)
    if kind.name == RATINGS.name:
        _write_anchors(workbook.add_worksheet(ANCHORS_SHEET), styles,
                       anchors if anchors is not None else [_EXAMPLE_ANCHORS] if example else [],
                       example=anchors is None)

    _write_instructions(instructions, kind, styles)
    instructions.activate()
    if lists.columns:
        lists.write(workbook.add_worksheet(LISTS_SHEET))
    meta = workbook.add_worksheet(META_SHEET)
    for row, (key, value) in enumerate(
        (("kind", kind.name), ("version", TEMPLATE_VERSION), ("generator", GENERATOR))
    ):
        meta.write_string(row, 0, key)
        meta.write_string(row, 1, value)
    meta.hide()
    workbook.close()
    return path


def write_ratings_template(path, indicators) -> Path:
    """The ratings template whose `评分标准 Anchors` sheet lists the rating indicators of an
    indicator library (`indicators`: its rows, as records or a validated frame, in file order)
    with their behaviour anchors; rating indicators that describe no level are listed too."""
    if hasattr(indicators, "to_dict"):
        indicators = indicators.to_dict("records")
    anchors = []
    for record in indicators:
        if record.get("method") != "rating" or not isinstance(record.get("indicator_id"), str):
            continue
        levels = {level: str(record[anchor_field(level)]).strip() for level in ANCHOR_LEVELS
                  if isinstance(record.get(anchor_field(level)), str) and record[anchor_field(level)].strip()}
        name = record.get("name")
        anchors.append((record["indicator_id"], name if isinstance(name, str) else "", levels))
    return write_template(RATINGS, path, anchors=anchors)


def write_all_templates(out_dir) -> list[Path]:
    """Write the blank template of every kind into `out_dir` (`<kind>.xlsx`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [write_template(kind, out / kind.filename) for kind in kinds_module.KINDS.values()]


def template_drift(out_dir) -> list[str]:
    """File names in `out_dir` that differ from (or lack) a fresh generation from kinds.py."""
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="kpi-templates-") as tmp:
        drifted = []
        for fresh in write_all_templates(tmp):
            committed = out / fresh.name
            if not committed.is_file() or not filecmp.cmp(fresh, committed, shallow=False):
                drifted.append(fresh.name)
        return drifted


# ---------------------------------------------------------------------------- formats


class _Styles:
    """The workbook's formats, created once and cached by purpose."""

    def __init__(self, workbook):
        self.workbook = workbook
        self._cache: dict[tuple, object] = {}
        border = {"border": 1, "border_color": BORDER_COLOR}
        self.header = {
            required: workbook.add_format({
                "bold": True, "text_wrap": True, "align": "center", "valign": "vcenter",
                "bg_color": REQUIRED_FILL if required else OPTIONAL_FILL, **border,
            })
            for required in (True, False)
        }
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.subtitle = workbook.add_format({"bold": True, "font_size": 11})
        self.cell = workbook.add_format({"text_wrap": True, "valign": "top", **border})
        self.muted_cell = workbook.add_format({"text_wrap": True, "valign": "top", "italic": True,
                                               "font_color": EXAMPLE_COLOR, **border})
        self.level = workbook.add_format({"align": "center", "valign": "top", **border})
        self.muted_level = workbook.add_format({"align": "center", "valign": "top", "italic": True,
                                                "font_color": EXAMPLE_COLOR, **border})
        self.matrix_id = workbook.add_format({"bold": True, "bg_color": OPTIONAL_FILL, **border})
        self.matrix_value = workbook.add_format({"align": "center", **border})
        self.matrix_example = workbook.add_format(
            {"align": "center", "italic": True, "font_color": EXAMPLE_COLOR, **border})

    def get(self, num_format: str | None = None, *, example: bool = False):
        """A cell format: the number format, in grey italics for the example row."""
        key = (num_format, example)
        if key not in self._cache:
            props: dict = {}
            if num_format:
                props["num_format"] = num_format
            if example:
                props.update({"italic": True, "font_color": EXAMPLE_COLOR})
            self._cache[key] = self.workbook.add_format(props) if props else None
        return self._cache[key]


class _ListSheet:
    """Dropdown lists too long for an inline list live in a hidden `_lists` sheet."""

    def __init__(self):
        self.columns: list[list[str]] = []

    def source(self, values: list[str]) -> list[str] | str:
        if len(",".join(values)) <= LIST_LIMIT:
            return values
        if values not in self.columns:
            self.columns.append(values)
        col = xl_col_to_name(self.columns.index(values))
        return f"={LISTS_SHEET}!${col}$1:${col}${len(values)}"

    def write(self, sheet) -> None:
        for col, values in enumerate(self.columns):
            for row, value in enumerate(values):
                sheet.write_string(row, col, value)
        sheet.hide()


def _column_format(f: Field) -> str | None:
    if f.type == WEIGHT:
        return WEIGHT_FORMAT
    if f.type in (ID, PERIOD, TEXT, CHOICE):
        return TEXT_FORMAT
    return None


def _value_format(f: Field, value) -> str | None:
    """The number format a written value needs (a weight typed as 60 is not shown as 6000%)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return MONTH_FORMAT if f.type == PERIOD else DATE_FORMAT
    if f.type == WEIGHT and _is_number(value):
        return WEIGHT_FORMAT if abs(value) <= 1 else "General"
    return _column_format(f)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _example_id(index: int) -> str:
    return f"KPI-{index + 1:02d}"


# ---------------------------------------------------------------------------- sheets


def _write_cell(sheet, row: int, col: int, f: Field, value, fmt) -> None:
    """Numbers as numbers, text as text (never a formula), dates as dates, None blank."""
    if value is None or value == "":
        if fmt is not None:
            sheet.write_blank(row, col, None, fmt)
    elif _is_number(value):
        sheet.write_number(row, col, value, fmt)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value, fmt)
    elif isinstance(value, (dt.date, dt.datetime)):
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        sheet.write_datetime(row, col, value, fmt)
    else:
        sheet.write_string(row, col, str(value), fmt)


def _example_value(f: Field, first: bool):
    value = f.example
    if first:
        text = "" if value is None else str(value)
        return text if text.startswith(EXAMPLE_MARK) else f"{EXAMPLE_MARK}{text}"
    return value


def _input_message(f: Field, hint: tuple[str, str] | None = None) -> dict:
    title = f"{f.zh} {f.en}"[:32]
    zh = f.help_zh + (" (必填)" if f.required else "")
    en = f.help_en + (" (required)" if f.required else "")
    if hint:
        zh, en = f"{zh};{hint[0]}", f"{en}. {hint[1]}"
    return {"input_title": title, "input_message": f"{zh}\n{en}"[:255]}


def _validation(f: Field, lists: _ListSheet, hint: tuple[str, str] | None = None) -> dict:
    """One data validation per column: the dropdown or range, plus the input message."""
    options = _input_message(f, hint)
    if f.type == CHOICE and f.choices:
        options.update({
            "validate": "list",
            "source": lists.source([c.zh for c in f.choices]),
            "error_type": "warning",
            "error_title": "不在列表中 Not in list",
            "error_message": ("请从下拉列表中选择:" + "、".join(c.zh for c in f.choices)
                              + "\nPlease pick a value from the list.")[:255],
        })
    elif f.type == NUMBER and f.minimum is not None and f.maximum is not None:
        options.update({
            "validate": "decimal", "criteria": "between",
            "minimum": f.minimum, "maximum": f.maximum,
            "error_type": "warning",
            "error_title": "超出范围 Out of range",
            "error_message": f"应在 {f.minimum:g}–{f.maximum:g} 之间\n"
                             f"Expected between {f.minimum:g} and {f.maximum:g}",
        })
    else:
        options["validate"] = "any"
    return options


def _write_table(sheet, spec: SheetSpec, styles: _Styles, lists: _ListSheet,
                 data: list[dict], *, example: bool, hints: dict[str, tuple[str, str]] | None = None) -> None:
    fields = spec.fields
    last_col = len(fields) - 1
    for col, f in enumerate(fields):
        width = max(float(f.width), fit_width([f.header]))
        sheet.set_column(col, col, width, styles.get(_column_format(f)))
        sheet.write_string(0, col, f.header, styles.header[f.required])
    sheet.set_row(0, 30)

    row = 1
    if example:
        for col, f in enumerate(fields):
            value = _example_value(f, first=col == 0)
            fmt = styles.get(_value_format(f, value), example=True)
            _write_cell(sheet, row, col, f, value, fmt)
        row += 1
    unknown = {name for record in data for name in record} - set(spec.field_names)
    if unknown:
        raise KeyError(f"{spec.name}: no such field(s) {sorted(unknown)}")
    for record in data:
        for col, f in enumerate(fields):
            value = record.get(f.name)
            _write_cell(sheet, row, col, f, value, styles.get(_value_format(f, value)))
        row += 1

    last_row = row - 1 + EMPTY_ROWS
    for col, f in enumerate(fields):
        sheet.data_validation(1, col, last_row, col, _validation(f, lists, (hints or {}).get(f.name)))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(row - 1, 1), last_col)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)


def _write_note_column(sheet, spec: SheetSpec, styles: _Styles, note: tuple[str, int, list[str]], *,
                       first_row: int) -> None:
    """A read-only explanation beside the data rows (e.g. how a proposed target was found)."""
    header, width, texts = note
    col = len(spec.fields)
    wrapped = styles.workbook.add_format({"num_format": TEXT_FORMAT, "text_wrap": True})
    sheet.set_column(col, col, width, styles.get(TEXT_FORMAT))
    sheet.write_string(0, col, header, styles.header[False])
    for offset, text in enumerate(texts):
        if text:
            sheet.write_string(first_row + offset, col, text, wrapped)
            sheet.set_row(first_row + offset, LINE_HEIGHT * _lines(text, width))
    sheet.autofilter(0, 0, max(first_row + len(texts) - 1, 1), col)


def _write_matrix(sheet, styles: _Styles, ids, matrix, *, example: bool) -> None:
    """A pairwise judgment matrix: IDs across row 1 from B and down column A from row 2."""
    value_fmt = styles.matrix_example if example else styles.matrix_value
    sheet.set_column(0, 0, max(fit_width(ids), 12.0))
    sheet.set_column(1, len(ids), max(fit_width(ids), 10.0))
    for i, indicator in enumerate(ids):
        sheet.write_string(0, i + 1, str(indicator), styles.matrix_id)
        sheet.write_string(i + 1, 0, str(indicator), styles.matrix_id)
    for i, line in enumerate(matrix):
        for j, value in enumerate(line):
            if _is_number(value):
                sheet.write_number(i + 1, j + 1, value, value_fmt)
            elif value is None:
                sheet.write_blank(i + 1, j + 1, None, value_fmt)
            else:
                sheet.write_string(i + 1, j + 1, str(value), value_fmt)
    sheet.freeze_panes(1, 1)


def _allowed(f: Field) -> str:
    if f.choices:
        text = " / ".join(c.label for c in f.choices)
        default = f.choice_by_code(f.default) if f.default else None
        if default is not None:
            text += f"\n留空为 {default.zh}; blank = {default.en}"
        return text
    if f.type == NUMBER and f.minimum is not None and f.maximum is not None:
        return f"{f.minimum:g}–{f.maximum:g}"
    return _TYPE_HINTS.get(f.type, "")


def _lines(text: str, width: int) -> int:
    """How many lines `text` wraps to in a column `width` characters wide."""
    return sum(max(1, math.ceil(display_width(line) / (width - 3))) for line in text.split("\n"))


def _write_instructions(sheet, kind: Kind, styles: _Styles) -> None:
    """How to fill the template, then one row per column, all derived from the Kind."""
    sheet.write_string(0, 0, f"{kind.zh} 模板说明 · {kind.en} template instructions",
                       styles.title)
    row = 2
    anchors = kind.name == RATINGS.name
    for title, lines in (("填写说明", (*kind.instructions_zh, *(_ANCHORS_ZH if anchors else ()), *_GENERAL_ZH)),
                         ("How to fill", (*kind.instructions_en, *(_ANCHORS_EN if anchors else ()), *_GENERAL_EN))):
        sheet.write_string(row, 0, title, styles.subtitle)
        row += 1
        for number, line in enumerate(lines, start=1):
            sheet.write_string(row, 0, f"{number}. {line}")
            row += 1
        row += 1

    sheet.write_string(row, 0, "字段一览 Columns", styles.subtitle)
    row += 1
    widths = (22, 8, 24, 9, 30, 56, 14)
    headings = ("工作表\nSheet", "列\nColumn", "字段\nField", "必填\nRequired",
                "可选值\nAllowed values", "填写说明\nHelp", "示例\nExample")
    for col, heading in enumerate(headings):
        sheet.write_string(row, col, heading, styles.header[False])
    sheet.set_row(row, 30)
    row += 1
    for spec in kind.tables:
        for col, f in enumerate(spec.fields):
            example = _example_value(f, first=col == 0)
            if f.type == WEIGHT and _is_number(example):
                example = f"{example:.0%}"
            cells = (spec.name, xl_col_to_name(col), f.label, "是 yes" if f.required else "否 no",
                     _allowed(f), f"{f.help_zh}\n{f.help_en}",
                     "" if example is None else str(example))
            for c, text in enumerate(cells):
                sheet.write_string(row, c, text, styles.cell)
            # Wrapped rows are not re-measured by every program on open: size them here.
            sheet.set_row(row, LINE_HEIGHT * max(_lines(t, w) for t, w in zip(cells, widths, strict=True)))
            row += 1
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width)
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.hide_gridlines(2)


def _between(level: int, levels: dict[int, str]) -> str:
    """What an undescribed level means: between its described neighbours."""
    below = [n for n in levels if n < level]
    above = [n for n in levels if n > level]
    if below and above:
        low, high = max(below), min(above)
        return f"介于 {low} 分与 {high} 分之间\nBetween levels {low} and {high}"
    return "未描述\nNot described"


def _write_anchors(sheet, styles: _Styles, anchors: list[tuple[str, str, dict[int, str]]], *,
                   example: bool) -> None:
    """`评分标准 Anchors`: per rating indicator, its ID and name beside levels 1–5 and the
    behaviour each describes; an undescribed level says which described levels it lies between."""
    sheet.write_string(0, 0, "评分标准(行为锚定) · Behaviour anchors", styles.title)
    sheet.write_string(1, 0, "评分时对照各分值的行为描述;本表仅供参考,读取时忽略。")
    sheet.write_string(2, 0, "Rate against the behaviour each level describes; this sheet is for reference and never read.")
    top = 4
    for col, (heading, width) in enumerate(_ANCHOR_HEADINGS):
        sheet.write_string(top, col, heading, styles.header[False])
        sheet.set_column(col, col, width)
    sheet.set_row(top, 30)
    text = styles.muted_cell if example else styles.cell
    muted = styles.muted_cell
    row = top + 1
    if not anchors:
        sheet.merge_range(row, 0, row, len(_ANCHOR_HEADINGS) - 1,
                          "指标库中没有评分类指标\nThe indicator library has no rating indicators", muted)
        sheet.set_row(row, 2 * LINE_HEIGHT)
    for indicator_id, name, levels in anchors:
        shown = ANCHOR_LEVELS if levels else (None,)
        for i, level in enumerate(shown):
            if level is None:
                description, fmt = "指标库未填写行为描述\nThe indicator library describes no level", muted
            elif level in levels:
                description, fmt = levels[level], text
            else:
                description, fmt = _between(level, levels), muted
            level_format = styles.muted_level if fmt is muted else styles.level
            if level is None:
                sheet.write_blank(row + i, 2, None, level_format)
            else:
                sheet.write_number(row + i, 2, level, level_format)
            sheet.write_string(row + i, 3, description, fmt)
            sheet.set_row(row + i, LINE_HEIGHT * max(_lines(description, _ANCHOR_HEADINGS[3][1]), 1) + 3)
        last = row + len(shown) - 1
        for col, value in ((0, indicator_id), (1, name)):
            if last > row:
                sheet.merge_range(row, col, last, col, value, text)
            else:
                sheet.write_string(row, col, value, text)
        row = last + 1
    sheet.freeze_panes(top + 1, 0)
    sheet.repeat_rows(top)
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.hide_gridlines(2)


def data_cell(spec: SheetSpec, field_name: str, data_index: int, *, example: bool = True) -> str:
    """The A1 reference of data row `data_index` (0-based) of `field_name` in a written sheet."""
    col = spec.field_names.index(field_name)
    return xl_rowcol_to_cell(data_index + (2 if example else 1), col)
