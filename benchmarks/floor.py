"""The floor: what the batch's unavoidable parts cost with plain library calls and no extra work.

Run by `bench.py`, each part in its own process (so its time and peak memory are its own):

    python benchmarks/floor.py read INBOX                # every sheet of every input file
    python benchmarks/floor.py details ROWS OUT.xlsx     # a Details sheet, 11 columns
    python benchmarks/floor.py sheets OUT_DIR JOBS N1 N2 ...   # employee sheets per workbook

Each prints one JSON object with its seconds.

- read: fastexcel when it is importable (`read_excel`, then `load_sheet` of every sheet and its
  conversion to Arrow), otherwise python-calamine (`CalamineWorkbook.from_path(p)
  .get_sheet_by_name(n).to_python()`); calamine is always measured too, for comparison.
  fastexcel is not a project dependency: install it beside the project to measure with it.
- details: xlsxwriter in constant_memory mode writing the Details rows (3 text, 7 number and 1
  text column, like `明细 Details`' 11 stable columns).
- sheets: xlsxwriter (in_memory) writing the same number of employee sheets split into the same
  workbooks as the batch wrote, each sheet one small 10 × 13 table with a few formulas carrying
  their cached values, workbooks spread over JOBS processes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
                    "nan_inf_to_errors": True}


# ---------------------------------------------------------------------------- read

def _inputs(inbox: Path) -> list[Path]:
    return sorted(p for p in Path(inbox).rglob("*.xlsx") if not p.name.startswith((".", "~$")))


def read_calamine(inbox: Path) -> dict:
    from python_calamine import CalamineWorkbook

    start = time.perf_counter()
    cells = 0
    for path in _inputs(inbox):
        workbook = CalamineWorkbook.from_path(str(path))
        for name in workbook.sheet_names:
            rows = workbook.get_sheet_by_name(name).to_python()
            cells += sum(len(r) for r in rows)
    return {"reader": "python-calamine", "seconds": time.perf_counter() - start, "cells": cells}


def read_fastexcel(inbox: Path) -> dict:
    import fastexcel

    try:
        import pyarrow  # noqa: F401

        arrow = True
    except ImportError:
        arrow = False
    start = time.perf_counter()
    rows = 0
    for path in _inputs(inbox):
        reader = fastexcel.read_excel(str(path))
        for name in reader.sheet_names:
            try:
                sheet = reader.load_sheet(name)
            except fastexcel.FastExcelError:
                sheet = reader.load_sheet(name, header_row=None)
            rows += sheet.height
            try:
                sheet.to_arrow()
            except fastexcel.ArrowError:
                # Without pyarrow the RecordBatch is still built in Rust; only its hand-over to
                # pyarrow fails. With pyarrow installed this is the ordinary zero-copy conversion.
                if arrow:
                    raise
    return {"reader": f"fastexcel {fastexcel.__version__}" + ("" if arrow else " (no pyarrow)"),
            "seconds": time.perf_counter() - start, "rows": rows}


def read_floor(inbox: Path) -> dict:
    result = {"calamine": read_calamine(inbox)}
    try:
        import fastexcel  # noqa: F401
    except ImportError:
        result["floor"] = result["calamine"]
        return result
    result["fastexcel"] = read_fastexcel(inbox)
    result["floor"] = result["fastexcel"]
    return result


# ---------------------------------------------------------------------------- write

def details_floor(rows: int, path: Path) -> dict:
    """One Details sheet of `rows` rows × 11 columns, xlsxwriter constant_memory."""
    import xlsxwriter

    start = time.perf_counter()
    workbook = xlsxwriter.Workbook(str(path), {**WORKBOOK_OPTIONS, "constant_memory": True})
    sheet = workbook.add_worksheet("明细 Details")
    percent = workbook.add_format({"num_format": "0.00%"})
    header = ["employee_id", "period", "indicator_id", "weight", "base", "target", "stretch", "actual",
              "achievement", "weighted_score", "source"]
    for col, text in enumerate(header):
        sheet.write_string(0, col, text)
    indicators = [f"KPI-{i:02d}" for i in range(1, 9)]
    write_string, write_number = sheet.write_string, sheet.write_number
    for r in range(1, rows + 1):
        k = r % 8
        actual = 50.0 + (r % 97)
        achievement = min(1.2, actual / 100.0)
        write_string(r, 0, f"E{r // 8 + 1:06d}")
        write_string(r, 1, "2026-10")
        write_string(r, 2, indicators[k])
        write_number(r, 3, 0.125, percent)
        write_number(r, 4, 80.0)
        write_number(r, 5, 100.0)
        write_number(r, 6, 120.0)
        write_number(r, 7, actual)
        write_number(r, 8, achievement, percent)
        write_number(r, 9, achievement * 0.125, percent)
        write_string(r, 10, f"actuals_{k % 4 + 1}.xlsx!实际值 Actuals!D{r + 2}")
    workbook.close()
    return {"seconds": time.perf_counter() - start, "rows": rows}


def _write_workbook(item: tuple[str, int]) -> int:
    """A workbook with `count` employee sheets: a 10 × 13 table each, formulas with cached values."""
    import xlsxwriter

    path, count = item
    workbook = xlsxwriter.Workbook(path, {**WORKBOOK_OPTIONS, "in_memory": True})
    bold = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1})
    percent = workbook.add_format({"num_format": "0.0%", "border": 1})
    number = workbook.add_format({"num_format": "#,##0.00", "border": 1})
    text = workbook.add_format({"border": 1})
    header = ["维度", "指标", "权重", "基础值", "目标值", "冲刺值", "实际值", "完成率", "得分", "单位", "来源", "方向",
              "方式"]
    if count == 0:
        workbook.add_worksheet("汇总 Summary").write_string(0, 0, "汇总")
    for s in range(count):
        sheet = workbook.add_worksheet(f"E{s:06d} 员工")
        for col, label in enumerate(header):
            sheet.write_string(0, col, label, bold)
        for i in range(1, 9):
            actual = 80.0 + 5 * i
            sheet.write_string(i, 0, "业绩", text)
            sheet.write_string(i, 1, f"指标{i}", text)
            sheet.write_number(i, 2, 0.125, percent)
            sheet.write_number(i, 3, 80.0, number)
            sheet.write_number(i, 4, 100.0, number)
            sheet.write_number(i, 5, 120.0, number)
            sheet.write_number(i, 6, actual, number)
            achievement = min(1.2, actual / 100.0)
            sheet.write_formula(i, 7, f"=MIN(MAX(G{i + 1}/E{i + 1},0),1.2)", percent, achievement)
            sheet.write_formula(i, 8, f"=C{i + 1}*H{i + 1}", percent, achievement * 0.125)
            sheet.write_string(i, 9, "万元", text)
            sheet.write_string(i, 10, f"actuals_1.xlsx!实际值 Actuals!D{i + 2}", text)
            sheet.write_string(i, 11, "越高越好", text)
            sheet.write_string(i, 12, "比率", text)
        total = sum(min(1.2, (80.0 + 5 * i) / 100.0) * 0.125 for i in range(1, 9))
        sheet.write_string(9, 0, "合计", bold)
        sheet.write_formula(9, 8, "=SUM(I2:I9)", percent, total)
    workbook.close()
    return count


def sheets_floor(out_dir: Path, jobs: int, counts: list[int]) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [(str(out_dir / f"book{i:04d}.xlsx"), n) for i, n in enumerate(counts)]
    items.sort(key=lambda item: -item[1])  # biggest first, as the batch does
    start = time.perf_counter()
    if jobs <= 1:
        for item in items:
            _write_workbook(item)
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pool.map(_write_workbook, items, chunksize=1)
    return {"seconds": time.perf_counter() - start, "workbooks": len(items), "sheets": sum(counts), "jobs": jobs}


def main(argv: list[str]) -> None:
    what = argv[0]
    if what == "read":
        result = read_floor(Path(argv[1]))
    elif what == "details":
        result = details_floor(int(argv[1]), Path(argv[2]))
    elif what == "sheets":
        result = sheets_floor(Path(argv[1]), int(argv[2]), [int(n) for n in argv[3:]])
    else:
        raise SystemExit(f"unknown floor part {what!r}")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
