"""Reading HR's workbooks into frames whose rows remember their origin cell.

A file is classified by its `_meta` sheet, else by sheet names, else by headers; never
guessed between two kinds. Headers are found under title rows and matched by Chinese label,
English label, field name or both. Data is read with calamine (fast); the sheet XML is only
consulted for what calamine hides: formulas never calculated and error cells (#N/A, #DIV/0!),
which calamine reads as blanks.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd
from defusedxml import ElementTree as SafeET
from openpyxl.utils import get_column_letter
from python_calamine import CalamineWorkbook

from pipeline.findings import WARNING, Finding, finding
from pipeline.kinds import ID, KINDS, TEMPLATE_VERSION, Kind, SheetSpec, fold, header_aliases
from pipeline.normalize import is_blank
from pipeline.safety import Limits, UnreadableInput, check_workbook_file

HEADER_SCAN_ROWS = 30
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm"}
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

    def cell(self, field_name: str, row: int) -> str:
        letter = self.letters.get(field_name, "")
        return f"{letter}{row}" if letter else f"{row}"


@dataclass
class MatrixSheet:
    """An AHP-<role family> sheet: kept as a grid; the weights module reads the matrix."""

    file: str
    sheet: str
    role_family: str


@dataclass
class WorkbookRead:
    path: Path
    file: str
    kind: str | None = None
    version: str | None = None
    tables: list[Table] = field(default_factory=list)
    matrices: list[MatrixSheet] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(t.frame) for t in self.tables)


# ------------------------------------------------------------------------------ classification

def _alias_map(spec: SheetSpec) -> dict[str, str]:
    return {alias: f.name for f in spec.fields for alias in header_aliases(f)}


_ALIASES = {(kind.name, spec.name): _alias_map(spec) for kind in KINDS.values() for spec in kind.tables}


def _sheet_matches(spec: SheetSpec, sheet_name: str) -> bool:
    name = fold(sheet_name)
    if spec.prefix:
        return name.startswith(fold(spec.prefix))
    names = {fold(spec.name), fold(spec.zh), fold(spec.en), fold(f"{spec.en} {spec.zh}"),
             fold(spec.zh + spec.en)} - {""}
    return name in names


def _header_row(grid: list[list], aliases: dict[str, str]) -> tuple[int, dict[int, str], int]:
    """(row index, column index -> field, matched count) of the best header row in the grid."""
    best = (-1, {}, 0)
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


def _meta(workbook: CalamineWorkbook) -> tuple[str | None, str | None]:
    names = {fold(n): n for n in workbook.sheet_names}
    if "_meta" not in names:
        return None, None
    grid = workbook.get_sheet_by_name(names["_meta"]).to_python(skip_empty_area=False)
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


def _named_sheet(sheet_name: str) -> bool:
    return any(_sheet_matches(s, sheet_name) for k in KINDS.values() for s in k.sheets)


def classify(workbook: CalamineWorkbook, grids: dict[str, list[list]]) -> tuple[list[str], str]:
    """Candidate kinds for a workbook and how they were found (`meta`, `sheets`, `headers`).

    Several candidates mean the file is ambiguous: sheets named for two kinds, or sheets whose
    headers fit two kinds (e.g. a roster pasted beside the actuals), are reported, not guessed.
    """
    kind, _ = _meta(workbook)
    if kind in KINDS:
        return [kind], "meta"
    by_sheet = {
        k.name for k in KINDS.values()
        if any(_sheet_matches(s, n) for s in k.sheets for n in workbook.sheet_names)
    }
    # Sheets not named for any kind count by their headers, so nothing in the file is ignored.
    by_headers = {k for name, grid in grids.items() if not _named_sheet(name) for k in _kinds_by_headers(grid)}
    if by_sheet:
        return sorted(by_sheet | by_headers), "sheets"
    return sorted(by_headers), "headers"


# ------------------------------------------------------------------------------ hidden cells

def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its XML part inside the zip."""
    workbook = SafeET.fromstring(archive.read("xl/workbook.xml"))
    rels = SafeET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels}
    parts = {}
    for sheet in workbook.iter(f"{_NS}sheet"):
        target = targets.get(sheet.get(f"{_REL_NS}id"), "")
        if not target:
            continue
        path = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        parts[sheet.get("name")] = path
    return parts


# A formula element (any namespace prefix) or an error-typed cell: only then is the XML parsed.
# Plain substring tests and a regex with a literal prefix: a 26 MB sheet is scanned in ~0.1 s.
_PREFIXED_FORMULA = re.compile(rb":f[\s>/]")


def _may_hide(data: bytes) -> bool:
    return (b"<f" in data or b't="e"' in data or b"t='e'" in data
            or _PREFIXED_FORMULA.search(data) is not None)


def special_cells(path: Path, sheet_names: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """Per sheet, cells calamine shows blank but are not: {cell: ("formula"|"error", text)}."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    with zipfile.ZipFile(path) as archive:
        try:
            parts = _sheet_parts(archive)
        except (KeyError, SafeET.ParseError):
            return found
        for name in sheet_names:
            part = parts.get(name)
            if part is None or part not in archive.namelist():
                continue
            data = archive.read(part)
            if not _may_hide(data):
                continue
            cells: dict[str, tuple[str, str]] = {}
            for _, element in SafeET.iterparse(_BytesReader(data)):
                if element.tag != f"{_NS}c":
                    continue
                formula = element.find(f"{_NS}f")
                value = element.find(f"{_NS}v")
                cached = value is not None and value.text not in (None, "")
                if value is not None and element.get("t") == "str":
                    cached = True  # Excel's `<c t="str"><v></v>`: the formula's result is ""
                if element.get("t") == "e":
                    cells[element.get("r")] = ("error", value.text if cached else "#ERROR")
                elif formula is not None and not cached and element.get("t") != "inlineStr":
                    cells[element.get("r")] = ("formula", "=" + (formula.text or "(shared formula)"))
                element.clear()
            if cells:
                found[name] = cells
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

def _header_view(grid: list[list], merged: list) -> list[list]:
    """The rows where a header may be, with a cell merged down several rows shown in each."""
    view = [list(row) for row in grid[:HEADER_SCAN_ROWS]]
    for (r0, c0), (r1, _) in merged or ():
        if r1 == r0 or r0 >= len(view) or c0 >= len(view[r0]):
            continue
        for r in range(r0 + 1, min(r1, len(view) - 1) + 1):
            if c0 < len(view[r]):
                view[r][c0] = view[r0][c0]
    return view


def _fill_merged(grid: list[list], merged: list, first_data: int) -> dict[int, set[int]]:
    """A value merged down several data rows (e.g. a department) belongs to each of them.

    Only ranges that start in the data count: a title or header merged down into the data is
    not data. Returns the cells filled ({grid row: columns}) beyond each range's first cell.
    """
    filled: dict[int, set[int]] = {}
    for (r0, c0), (r1, c1) in merged or ():
        if r0 < first_data or r0 >= len(grid) or c0 >= len(grid[r0]):
            continue
        value = grid[r0][c0]
        for r in range(r0, min(r1, len(grid) - 1) + 1):
            for c in range(c0, min(c1, len(grid[r]) - 1) + 1):
                if (r, c) != (r0, c0):
                    grid[r][c] = value
                    filled.setdefault(r, set()).add(c)
    return filled


_EXAMPLE = re.compile(r"^\s*(示例|example|e\.g\.)", re.IGNORECASE)


def _is_example(value: object) -> bool:
    return isinstance(value, str) and bool(_EXAMPLE.match(value))


def _read_table(spec: SheetSpec, kind: Kind, file: str, sheet_name: str, grid: list[list], view: list[list],
                merged: list, hidden: dict[str, tuple[str, str]]) -> tuple[Table | None, list[Finding]]:
    aliases = _ALIASES[(kind.name, spec.name)]
    header_index, matched, _ = _header_row(view, aliases)
    findings: list[Finding] = []
    if header_index < 0:
        example = spec.fields[0].header.replace("\n", " ")
        return None, [finding("no_header", file=file, sheet=sheet_name, example_header=example)]
    header_row = header_index + 1
    letters: dict[str, str] = {}
    columns: dict[str, int] = {}
    for col, name in sorted(matched.items()):
        if name in columns:
            label = spec.field(name).label
            cells = f"{letters[name]}{header_row}, {get_column_letter(col + 1)}{header_row}"
            findings.append(finding("duplicate_column", file=file, sheet=sheet_name,
                                    cell=f"{get_column_letter(col + 1)}{header_row}", column=label, cells=cells))
            continue
        columns[name] = col
        letters[name] = get_column_letter(col + 1)
    extra = {
        str(value).strip(): get_column_letter(col + 1)
        for col, value in enumerate(view[header_index])
        if col not in matched and not is_blank(value)
    }
    for f in spec.required:
        if f.name not in columns:
            findings.append(finding("missing_column", file=file, sheet=sheet_name,
                                    cell=f"{header_row}", column=f.label))
    filled = _fill_merged(grid, merged, header_index + 1)
    body = grid[header_index + 1:]
    width = max(columns.values(), default=0) + 1
    records = [row[:width] + [""] * (width - len(row)) for row in body]
    raw = pd.DataFrame.from_records(records, columns=range(width)) if records else pd.DataFrame(columns=range(width))
    frame = pd.DataFrame({name: raw[col] if col in raw else pd.Series(dtype=object)
                          for name, col in columns.items()})
    frame["_row"] = range(header_row + 1, header_row + 1 + len(frame))
    bad_cells: dict[str, str] = {}
    # Cells calamine reads blank but that hold an uncalculated formula or an error value.
    for cell_ref, (what, text) in hidden.items():
        letter = re.match(r"[A-Z]+", cell_ref).group(0)
        row_number = int(cell_ref[len(letter):])
        names = [n for n, lt in letters.items() if lt == letter]
        if not names or row_number <= header_row:
            continue
        rule = "formula_no_value" if what == "formula" else "error_value"
        bad_cells[cell_ref] = rule
        findings.append(finding(rule, file=file, sheet=sheet_name, cell=cell_ref,
                                column=spec.field(names[0]).label, value=text))
    if len(frame):
        data_columns = [n for n in columns]
        blank = pd.concat([frame[n].map(is_blank) for n in data_columns], axis=1).all(axis=1) if data_columns else \
            pd.Series(True, index=frame.index)
        if filled and data_columns:
            # A merged value running past the last real row does not make a row.
            by_position = {columns[n]: n for n in data_columns}
            for grid_row, cols in filled.items():
                index = grid_row - header_index - 1
                own = [n for c, n in by_position.items() if c not in cols]
                if 0 <= index < len(frame) and not blank.iloc[index]:
                    blank.iloc[index] = all(is_blank(frame[n].iloc[index]) for n in own)
        if bad_cells:
            flagged_rows = {int(re.sub(r"[A-Z]+", "", c)) for c in bad_cells}
            blank &= ~frame["_row"].isin(flagged_rows)
        # The template's example row is marked in its first column (`示例E000`); HR may have
        # moved the columns, so an ID column starting with 示例 marks it too.
        first_col = min(columns, key=columns.get) if columns else None
        marked = [n for n in columns if n == first_col or spec.field(n).type == ID]
        example = pd.concat([frame[n].map(_is_example) for n in marked], axis=1).any(axis=1) \
            if marked else pd.Series(False, index=frame.index)
        frame = frame[~blank & ~example].reset_index(drop=True)
    table = Table(spec=spec, file=file, sheet=sheet_name, frame=frame, letters=letters, extra=extra,
                  header_row=header_row, bad_cells=bad_cells)
    return table, findings


def read_workbook(path: Path, file: str | None = None, limits: Limits = Limits()) -> WorkbookRead:
    """Read one input workbook; every problem becomes a finding, never an exception."""
    file = file or path.name
    result = WorkbookRead(path=path, file=file)
    try:
        check_workbook_file(path, limits)
        workbook = CalamineWorkbook.from_path(str(path))
        sheet_names = list(workbook.sheet_names)
        if len(sheet_names) > limits.max_sheets:
            raise UnreadableInput(f"工作表过多({len(sheet_names)} 张,上限 {limits.max_sheets})",
                                  f"too many sheets ({len(sheet_names)}, limit {limits.max_sheets})")
        grids: dict[str, list[list]] = {}
        merged: dict[str, list] = {}
        for name in sheet_names:
            if fold(name) == "_meta":
                continue
            sheet = workbook.get_sheet_by_name(name)
            if sheet.total_height > limits.max_rows or sheet.total_width > limits.max_columns:
                raise UnreadableInput(
                    f"工作表“{name}”过大({sheet.total_height} 行 × {sheet.total_width} 列,上限 "
                    f"{limits.max_rows} 行 × {limits.max_columns} 列)",
                    f"sheet '{name}' is too large ({sheet.total_height} rows × {sheet.total_width} columns; "
                    f"limit {limits.max_rows} × {limits.max_columns})",
                )
            grids[name] = sheet.to_python(skip_empty_area=False)
            merged[name] = sheet.merged_cell_ranges
        # Header rows are looked for in a view where a header merged down two rows (a tall
        # header) shows in each of them; the grid itself keeps merges out of the data.
        views = {name: _header_view(grid, merged[name]) for name, grid in grids.items()}
        kinds, how = classify(workbook, views)
        _, result.version = _meta(workbook)
        if not kinds:
            result.findings.append(finding("unknown_kind", file=file))
            return result
        if len(kinds) > 1:
            result.findings.append(finding("ambiguous_kind", file=file, kinds=", ".join(kinds)))
            return result
        kind = KINDS[kinds[0]]
        result.kind = kind.name
        result.version = result.version or (TEMPLATE_VERSION if how == "meta" else None)
        hidden_cells = special_cells(path, sheet_names)
        used: set[str] = set()
        for spec in kind.sheets:
            names = [n for n in sheet_names if _sheet_matches(spec, n)]
            if spec.matrix:
                for name in names:
                    role_family = re.sub(r"^\s*ahp\s*[-_ ]\s*", "", name, flags=re.IGNORECASE).strip()
                    result.matrices.append(MatrixSheet(file=file, sheet=name, role_family=role_family))
                continue
            if not names:
                # No sheet by that name: take the sheet whose headers fit best.
                aliases = _ALIASES[(kind.name, spec.name)]
                required = {f.name for f in spec.required}
                fits = [(n, _header_row(g, aliases)) for n, g in views.items()
                        if n not in used and not _named_sheet(n)]
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
                table, table_findings = _read_table(spec, kind, file, name, grids[name], views[name], merged[name],
                                                    hidden_cells.get(name, {}))
                result.findings.extend(table_findings)
                if table is not None:
                    result.tables.append(table)
    except UnreadableInput as exc:
        result.findings.append(finding("unreadable", file=file, reason=exc.reason_zh,
                                       reason_en=exc.reason_en))
    except Exception as exc:  # a user's file must never cost a traceback
        detail = f"{type(exc).__name__}: {exc}"[:300]
        result.findings.append(finding(
            "unreadable", file=file,
            reason=f"文件已损坏,或由不兼容的程序生成,无法解析。请在 Excel 中打开并另存为 .xlsx({detail})",
            reason_en=f"the file is damaged or was written by an incompatible program and cannot be parsed; "
                      f"open it in Excel and save it as .xlsx ({detail})"))
    return result


_SYSTEM_FILES = {"thumbs.db", "desktop.ini", "ehthumbs.db"}
_SYSTEM_FOLDERS = {"__macosx"}


def inbox_files(folder: Path) -> list[Path]:
    """Every candidate input in the inbox, in a stable order.

    Skipped: Office lock files (`~$…`), hidden files and folders, and what Windows and macOS
    leave in shared folders (Thumbs.db, desktop.ini, __MACOSX).
    """
    files = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith(("~$", ".")) or path.name.lower() in _SYSTEM_FILES:
            continue
        folders = path.relative_to(folder).parts[:-1]
        if any(part.startswith(".") or part.lower() in _SYSTEM_FOLDERS for part in folders):
            continue
        files.append(path)
    return files


def read_inbox(folder: Path, limits: Limits = Limits()) -> list[WorkbookRead]:
    """Read every file in the inbox; each file is isolated, so one bad file costs one finding."""
    results = []
    for path in inbox_files(folder):
        name = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in WORKBOOK_SUFFIXES:
            result = WorkbookRead(path=path, file=name)
            result.findings.append(_unsupported(path, name))
            results.append(result)
            continue
        results.append(read_workbook(path, name, limits))
    return results


IGNORED_SUFFIXES = {".txt", ".md", ".pdf", ".doc", ".docx", ".png", ".jpg", ".jpeg", ".json", ".yaml", ".yml"}


def _unsupported(path: Path, name: str) -> Finding:
    suffix = path.suffix.lower()
    if suffix in IGNORED_SUFFIXES:  # notes HR keeps beside the data: say so, but it is not an error
        return finding("unreadable", severity="warning", file=name,
                       reason=f"不是 Excel 工作簿({suffix}),已忽略。", reason_en=f"not an Excel workbook ({suffix}); ignored.")
    if suffix == ".xls":
        zh, en = "旧版 .xls 文件不受支持,请在 Excel 中另存为 .xlsx。", "legacy .xls files are not supported; save it as .xlsx in Excel."
    elif suffix == ".csv":
        zh, en = "CSV 文件不受支持,请使用模板并另存为 .xlsx。", "CSV files are not supported; use the template and save as .xlsx."
    elif suffix in _OTHER_SPREADSHEETS:
        zh = f"不支持 {suffix} 格式,请在 Excel 或 WPS 中另存为 .xlsx。"
        en = f"{suffix} files are not supported; save it as .xlsx in Excel or WPS."
    else:  # a note or a picture left in the inbox: said, not an error
        zh, en = f"不是 Excel 工作簿({suffix or '无扩展名'}),已跳过。", f"not an Excel workbook ({suffix or 'no extension'}); skipped."
        return finding("unreadable", severity=WARNING, file=name, reason=zh, reason_en=en)
    return finding("unreadable", file=name, reason=zh, reason_en=en)


# Spreadsheets HR may have meant as inputs: an error, so the batch does not run without them.
_OTHER_SPREADSHEETS = {".xlsb", ".ods", ".et", ".ett", ".numbers", ".tsv", ".xlt", ".xltx", ".xltm"}
