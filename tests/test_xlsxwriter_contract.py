"""The xlsxwriter internals FastSheet, FastDrawing and AchievementChart rely on still exist.

They override private xlsxwriter methods and read undocumented attributes. A release that
renames one would silently disable an override (an override of a method xlsxwriter no longer
calls is dead code) or break at write time; this test names what changed instead. pyproject
pins xlsxwriter to one minor version; when raising the pin, run this test first.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from xlsxwriter import Workbook
from xlsxwriter.chart_bar import ChartBar
from xlsxwriter.drawing import Drawing, DrawingTypes
from xlsxwriter.format import Format
from xlsxwriter.sharedstrings import SharedStringTable
from xlsxwriter.worksheet import ColumnInfo, Worksheet
from xlsxwriter.xmlwriter import XMLwriter

from pipeline.writers.fast_chart import AchievementChart
from pipeline.writers.fast_sheet import FastDrawing, FastSheet, PlainSheet, ReferenceSheet

# Methods our classes define that are not xlsxwriter's (nothing to compare them with).
OWN_METHODS = {
    PlainSheet: {"stamp"},
    ReferenceSheet: set(),
    FastSheet: {"stamp", "_style", "_fast_style_of", "_settle_dimensions", "_sorted_columns", "_flush_parts"},
    FastDrawing: set(),
    # the constructor takes what a template needs; usable/_template/_make_template are its own
    AchievementChart: {"__init__", "usable", "_template", "_make_template"},
}
BASES = {PlainSheet: Worksheet, ReferenceSheet: Worksheet, FastSheet: Worksheet, FastDrawing: Drawing,
         AchievementChart: ChartBar}

# Private methods our code calls on xlsxwriter objects (not overridden).
CALLED = {
    Worksheet: ["_check_dimensions", "_write_row", "_write_empty_row", "_write", "_get_range_data",
                "_assemble_xml_file", "_write_conditional_formatting", "_prepare_chart", "_write_col_info",
                "_write_rows", "_write_merge_cells", "_prepare_formula"],
    Drawing: ["_write_two_cell_anchor"],
    ChartBar: ["_set_filehandle", "_assemble_xml_file", "_xml_close", "_get_data_type"],
    XMLwriter: ["_escape_control_characters", "_escape_data"],
    Format: ["_get_xf_index"],
    SharedStringTable: ["_get_shared_string_index"],
}

# Attributes read or written on a worksheet made by Workbook.add_worksheet.
WORKSHEET_ATTRIBUTES = ["str_table", "merge", "col_info", "col_size_changed", "xls_colmax", "xls_rowmax",
                        "max_digit_width", "cell_padding", "dxf_priority", "cond_formats", "drawing",
                        "default_col_width", "dim_colmin", "dim_rowmin", "dim_rowmax", "comments", "row_info",
                        "excel_version", "fh", "name"]
CHART_ATTRIBUTES = ["formula_ids", "formula_data", "id", "embedded", "series", "date_1904", "remove_timezone", "fh"]
WORKBOOK_ATTRIBUTES = ["charts", "date_1904", "remove_timezone"]
COLUMN_INFO_FIELDS = ["width", "column_format", "hidden", "autofit", "level", "collapsed"]
DRAWING_INFO_FIELDS = ["_drawing_type", "_shape", "_url", "_anchor", "_dimensions", "_rel_index", "_name",
                       "_description", "_decorative"]


def _shape(function) -> list[tuple]:
    """Parameters by kind and default; names too, except `_` and `blank` (an ignored positional
    value: xlsxwriter itself names it `_` in one method and `blank` in the other)."""
    return [("blank" if p.name == "_" else p.name, p.kind, p.default)
            for p in inspect.signature(function).parameters.values()]


def _overrides():
    for cls, base in BASES.items():
        for name, value in vars(cls).items():
            if callable(value) and not name.startswith("__") or name == "__init__":
                yield pytest.param(cls, base, name, id=f"{cls.__name__}.{name}")


@pytest.mark.parametrize("cls, base, name", list(_overrides()))
def test_overridden_methods_exist_with_the_same_signature(cls, base, name):
    if name in OWN_METHODS[cls]:
        return
    assert hasattr(base, name), f"xlsxwriter's {base.__name__} has no {name}: the override is dead"
    assert _shape(getattr(cls, name)) == _shape(getattr(base, name)), \
        f"{cls.__name__}.{name}{inspect.signature(getattr(cls, name))} no longer matches " \
        f"{base.__name__}.{name}{inspect.signature(getattr(base, name))}"


def test_own_methods_are_not_xlsxwriters():
    """A method we add must not shadow an xlsxwriter method of the same name by accident."""
    for cls, names in OWN_METHODS.items():
        for name in names - {"__init__"}:
            assert not hasattr(BASES[cls], name), f"{cls.__name__}.{name} shadows xlsxwriter's"


@pytest.mark.parametrize("owner, names", list(CALLED.items()), ids=lambda v: getattr(v, "__name__", ""))
def test_private_methods_called_exist(owner, names):
    missing = [name for name in names if not callable(getattr(owner, name, None))]
    assert not missing, f"xlsxwriter's {owner.__name__} lacks {missing}"


def test_attributes_read_exist_on_fresh_objects(tmp_path):
    workbook = Workbook(str(tmp_path / "x.xlsx"))
    sheet = workbook.add_worksheet("S")
    chart = workbook.add_chart({"type": "bar"})
    assert isinstance(chart, ChartBar)
    assert [a for a in WORKSHEET_ATTRIBUTES if not hasattr(sheet, a)] == []
    assert [a for a in CHART_ATTRIBUTES if not hasattr(chart, a)] == []
    assert [a for a in WORKBOOK_ATTRIBUTES if not hasattr(workbook, a)] == []
    assert [f for f in COLUMN_INFO_FIELDS if f not in {field.name for field in dataclasses.fields(ColumnInfo)}] == []
    assert ColumnInfo(width=10).width == 10  # the fields FastSheet leaves out have defaults
    assert DrawingTypes.CHART is not None
    sheet.insert_chart(0, 0, chart)
    sheet.write_number(0, 0, 1)
    chart.add_series({"values": ["S", 0, 0, 0, 0]})
    workbook.close()
    drawing_info = sheet.drawing.drawings[0]
    assert [f for f in DRAWING_INFO_FIELDS if not hasattr(drawing_info, f)] == []
    assert drawing_info._drawing_type == DrawingTypes.CHART


def test_fast_sheet_writes_through_every_override(tmp_path):
    """Each override is called when FastSheet writes a workbook (none is dead code)."""
    calls: set[str] = set()
    overridden = [name for name in vars(FastSheet) if callable(vars(FastSheet)[name])
                  and not name.startswith("__") and name not in OWN_METHODS[FastSheet]]

    def spy(name):
        original = getattr(FastSheet, name)

        def wrapper(self, *args, **kwargs):
            calls.add(name)
            return original(self, *args, **kwargs)
        return wrapper

    patched = type("SpiedSheet", (FastSheet,), {name: spy(name) for name in overridden})
    workbook = Workbook(str(tmp_path / "x.xlsx"))
    bold = workbook.add_format({"bold": True})
    sheet = workbook.add_worksheet("S", worksheet_class=patched)
    sheet.set_column(0, 2, 12)
    sheet.write_string(0, 0, "a", bold)
    sheet.write_number(1, 0, 2)
    sheet.write_blank(2, 0, None, bold)
    sheet.write_formula(3, 0, "=A2*2", None, 4)
    sheet.merge_range(5, 0, 5, 2, "m", bold)
    sheet.conditional_format(1, 0, 1, 0, {"type": "cell", "criteria": ">", "value": 1, "format": bold})
    sheet.set_row_pixels(8, 30)
    chart = workbook.add_chart({"type": "bar"})
    chart.add_series({"values": ["S", 1, 0, 1, 0]})
    sheet.insert_chart(10, 0, chart)
    workbook.close()
    # write_* are the _write_* functions themselves (no decorator): called under the public name
    assert set(overridden) - calls - {"_write_string", "_write_number", "_write_blank", "_write_formula"} == set()


def test_workbooks_are_packed_by_our_zipfile_at_its_level(tmp_path):
    """xlsxwriter still packs through the module name `ZipFile` with ZipInfo parts, which
    common.FastZipFile replaces to deflate at ZIP_LEVEL; the parts read back unchanged."""
    import zipfile
    import zlib

    import xlsxwriter.workbook

    from pipeline.writers.common import ZIP_LEVEL, FastZipFile, close_workbook, new_workbook

    source = inspect.getsource(Workbook._store_workbook)
    assert "ZipFile(" in source and "writestr(zipinfo" in source
    assert xlsxwriter.workbook.ZipFile is FastZipFile
    workbook = new_workbook(tmp_path / "a.xlsx")
    sheet = workbook.add_worksheet("S")
    for row in range(2000):
        sheet.write_string(row, 0, f"员工 {row}")
        sheet.write_number(row, 1, row * 1.5)
    close_workbook(workbook)
    with zipfile.ZipFile(tmp_path / "a.xlsx") as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
        data = archive.read(info)
    assert b"<v>2998.5</v>" in data
    fast = zlib.compressobj(ZIP_LEVEL, zlib.DEFLATED, -15)
    assert info.compress_size == len(fast.compress(data) + fast.flush())
