"""Recalculate a workbook the way a spreadsheet program would, to check our cached values.

LibreOffice (headless, with a profile that recalculates on load) when it is installed; the
`formulas` package otherwise, so the check runs on any machine.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import openpyxl

_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">
<value>0</value></prop></item>
</oor:items>
"""


def formula_cells(path: Path) -> dict[tuple[str, str], tuple[str, object]]:
    """(sheet, cell) -> (formula, cached value) for every formula cell."""
    formulas = openpyxl.load_workbook(path)
    cached = openpyxl.load_workbook(path, data_only=True)
    cells = {}
    for sheet in formulas.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cells[(sheet.title, cell.coordinate)] = (cell.value, cached[sheet.title][cell.coordinate].value)
    return cells


def recalculated_libreoffice(path: Path) -> dict[tuple[str, str], object] | None:
    soffice = shutil.which("soffice")
    if soffice is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile" / "user"
        profile.mkdir(parents=True)
        (profile / "registrymodifications.xcu").write_text(_PROFILE, "utf-8")
        out = Path(tmp) / "out"
        source = Path(tmp) / "in.xlsx"
        shutil.copyfile(path, source)
        subprocess.run([soffice, f"-env:UserInstallation=file://{profile.parent}", "--headless", "--convert-to",
                        "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(source)],
                       check=True, capture_output=True, timeout=300)
        result = openpyxl.load_workbook(out / "in.xlsx", data_only=True)
        return {(ws.title, c.coordinate): c.value for ws in result.worksheets for row in ws.iter_rows() for c in row}


def recalculated_formulas(path: Path) -> dict[tuple[str, str], object]:
    import formulas

    solution = formulas.ExcelModel().loads(str(path)).finish().calculate()
    values = {}
    for key, ranges in solution.items():
        text = str(key)
        if "!" not in text or ":" in text.split("!")[1]:
            continue
        book_sheet, cell = text.rsplit("!", 1)
        sheet = book_sheet.strip("'").split("]", 1)[1]
        value = ranges.value[0][0]
        values[(sheet.upper(), cell)] = value
    return values


def mismatches(path: Path, tolerance: float = 1e-9) -> tuple[int, list[str]]:
    """(formula cells checked, descriptions of cells whose recalculated value differs from the cache)."""
    cells = formula_cells(path)
    recalculated = recalculated_libreoffice(path)
    upper = False
    if recalculated is None:
        recalculated, upper = recalculated_formulas(path), True
    problems = []
    for (sheet, cell), (formula, cached) in cells.items():
        got = recalculated.get((sheet.upper() if upper else sheet, cell))
        if isinstance(cached, str) or isinstance(got, str):
            same = str(cached) == str(got)
        else:
            same = got is not None and cached is not None and abs(float(got) - float(cached)) <= tolerance
        if not same:
            problems.append(f"{sheet}!{cell} {formula}: cached {cached!r}, recalculated {got!r}")
    return len(cells), problems
