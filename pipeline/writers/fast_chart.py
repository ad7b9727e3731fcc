"""Employee-sheet bar charts whose XML xlsxwriter assembles once per shape, not once per sheet.

Every employee sheet has the same achievement chart; only the sheet name, the number of
indicators, their names and values, and the chart's axis ids differ. Building and
serialising an xlsxwriter chart costs ~0.8 ms, a sixth of a sheet. `AchievementChart` asks
xlsxwriter once per shape (indicator count and options) for the XML of a probe chart
configured exactly like a real one but holding marker values, cuts it at the markers, and
fills the pieces in for each sheet, escaping as xlsxwriter does. Anything the template could
not reproduce (category names that xlsxwriter would cache as numbers) goes through a plain
xlsxwriter chart. Tests compare whole workbooks written both ways byte for byte.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache

from xlsxwriter.chart_bar import ChartBar
from xlsxwriter.utility import quote_sheetname
from xlsxwriter.xmlwriter import XMLwriter

_MARK = "\u2063"  # invisible separator: never in a sheet name or an indicator name we write
_PROBE_SHEET = f"{_MARK}SHEET{_MARK}"
_PROBE_ID = 4998  # xlsxwriter numbers a chart's axes from 5001 + id: here 99990001, 99990002
_PROBE_VALUE = 987654321.0
_ESCAPER = XMLwriter()
_TYPE_PROBE = ChartBar()


@lru_cache(maxsize=1)
def _blank_chart() -> ChartBar:
    return ChartBar({"type": "bar"})


def _escape_value(text: str) -> str:
    """A `<c:v>` text as xlsxwriter's `_xml_data_element` escapes it."""
    return _ESCAPER._escape_control_characters(_ESCAPER._escape_data(text))


def _escape_formula(text: str) -> str:
    return _ESCAPER._escape_data(text)


class _Capture(io.StringIO):
    def close(self):  # xlsxwriter closes its file handle when done; keep the text
        pass


def chart_xml(chart) -> str:
    """The XML xlsxwriter writes for `chart` (its id and cached data already set)."""
    out = _Capture()
    chart._set_filehandle(out)
    chart._assemble_xml_file()
    return out.getvalue()


class AchievementChart(ChartBar):
    """A bar chart of one sheet's achievements; see the module docstring.

    `configure(chart, sheet_name, points)` must set the chart up exactly as for a plain
    xlsxwriter chart (series over the sheet's ranges, title, axes, size); the template of
    each (key, points) is made from it once per process.
    """

    _templates: dict[tuple, list[str | tuple]] = {}

    def __init__(self, key: tuple, configure, sheet_name: str, categories: list[str], values: list[float]):
        # xlsxwriter's chart constructor sets ~150 defaults (0.3 ms) the template makes moot: take
        # a constructed chart's state instead; the workbook only reads id, size and data ids.
        self.__dict__.update(_blank_chart().__dict__)
        self.series = [key]  # xlsxwriter refuses a chart without series; the template holds the real one
        self._key = (key, len(categories))
        self._configure = configure
        self._sheet_name = sheet_name
        self._categories = categories
        self._values = values

    @staticmethod
    def usable(categories: list[str]) -> bool:
        """Whether xlsxwriter would cache these categories as strings (what the template holds)."""
        return bool(categories) and _TYPE_PROBE._get_data_type(categories) == "str" and \
            not any(_MARK in c or len(c) > 16383 for c in categories)

    def _template(self) -> list[str | tuple]:
        template = self._templates.get(self._key)
        if template is None:
            template = self._templates[self._key] = self._make_template()
        return template

    def _make_template(self) -> list[str | tuple]:
        points = self._key[1]
        probe = ChartBar({"type": "bar"})
        self._configure(probe, _PROBE_SHEET, points)
        probe.id = _PROBE_ID
        probe.embedded = True  # as add_chart() sets it: embedded charts carry print settings
        for formula, data_id in probe.formula_ids.items():
            # the categories are column C of the sheet, the values column K (see scorecards)
            if "$C$" in formula:
                probe.formula_data[data_id] = [f"{_MARK}C{i}{_MARK}" for i in range(points)]
            else:
                probe.formula_data[data_id] = [_PROBE_VALUE + i for i in range(points)]
        xml = chart_xml(probe)
        markers = {_escape_formula(quote_sheetname(_PROBE_SHEET)): ("sheet",),
                   f'val="{5001 + _PROBE_ID:04d}0001"': ("axis", 1), f'val="{5001 + _PROBE_ID:04d}0002"': ("axis", 2)}
        markers.update({f"<c:v>{_MARK}C{i}{_MARK}</c:v>": ("category", i) for i in range(points)})
        markers.update({f"<c:v>{_PROBE_VALUE + i}</c:v>": ("value", i) for i in range(points)})
        pattern = re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)))
        template: list[str | tuple] = []
        position = 0
        found = set()
        for match in pattern.finditer(xml):
            template.append(xml[position:match.start()])
            template.append(markers[match.group(0)])
            found.add(match.group(0))
            position = match.end()
        template.append(xml[position:])
        if found != set(markers) or _MARK in "".join(p for p in template if isinstance(p, str)):
            raise RuntimeError("chart template: xlsxwriter's chart XML is not what this module expects")
        return template

    def _assemble_xml_file(self):
        chart_id = 5001 + int(self.id)
        sheet = _escape_formula(quote_sheetname(self._sheet_name))
        parts = []
        for piece in self._template():
            if isinstance(piece, str):
                parts.append(piece)
            elif piece[0] == "sheet":
                parts.append(sheet)
            elif piece[0] == "axis":
                parts.append(f'val="{chart_id:04d}{piece[1]:04d}"')
            elif piece[0] == "category":
                parts.append(f"<c:v>{_escape_value(self._categories[piece[1]])}</c:v>")
            else:
                parts.append(f"<c:v>{self._values[piece[1]]}</c:v>")
        self.fh.write("".join(parts))
        self._xml_close()


def add_chart(workbook, chart) -> None:
    """Register a chart built outside `Workbook.add_chart` (what add_chart does after building)."""
    chart.embedded = True
    chart.date_1904 = workbook.date_1904
    chart.remove_timezone = workbook.remove_timezone
    workbook.charts.append(chart)
