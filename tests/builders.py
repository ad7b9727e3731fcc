"""Workbooks built the way a person fills them: openpyxl, headers typed by hand, messy values."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from pipeline.kinds import KINDS


def write_sheets(path: Path, sheets: dict[str, list[list]], *, title_rows: dict[str, list] | None = None) -> Path:
    """Write `{sheet name: rows}` with openpyxl; `title_rows` are put above a sheet's rows."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in (title_rows or {}).get(name, []):
            sheet.append(row)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def headers(kind: str, sheet: int = 0, style: str = "both") -> list[str]:
    """Header texts for a kind's sheet: `both` (bilingual), `zh` or `en`."""
    spec = KINDS[kind].tables[sheet]
    pick = {"both": lambda f: f.header, "zh": lambda f: f.zh, "en": lambda f: f.en}[style]
    return [pick(f) for f in spec.fields]


def table(kind: str, rows: list[dict], sheet: int = 0, style: str = "both") -> list[list]:
    """Header row plus rows given as dicts by field name (missing fields left blank)."""
    spec = KINDS[kind].tables[sheet]
    return [headers(kind, sheet, style)] + [[row.get(f.name) for f in spec.fields] for row in rows]


def sheet_name(kind: str, sheet: int = 0) -> str:
    return KINDS[kind].tables[sheet].name


def seed_000_inbox(folder: Path, actual_new_clients: object = 12) -> Path:
    """Seed 000's sales rep for 2026-Q3: 销售额 60% (200→210), 新客户数 30% (15→12), 投诉率 10% (2%→1.5%)."""
    folder.mkdir(parents=True, exist_ok=True)
    roster = [
        {"employee_id": "S001", "name": "王经理", "department": "销售部", "position": "销售经理", "role_family": "销售"},
        {"employee_id": "S002", "name": "李销售", "department": "销售部", "position": "销售代表", "role_family": "销售",
         "manager_id": "S001", "status": "在职"},
    ]
    write_sheets(folder / "roster.xlsx", {sheet_name("roster"): table("roster", roster)})
    indicators = [
        {"indicator_id": "K1", "name": "销售额", "dimension": "业绩", "category": "结果", "direction": "越高越好",
         "method": "比率", "unit": "万元", "aggregation": "求和"},
        {"indicator_id": "K2", "name": "新客户数", "dimension": "业绩", "category": "结果", "direction": "越高越好",
         "method": "比率", "unit": "个", "aggregation": "求和"},
        {"indicator_id": "K3", "name": "客户投诉率", "dimension": "业绩", "category": "过程", "direction": "越低越好",
         "method": "达标", "unit": "%", "aggregation": "平均"},
    ]
    write_sheets(folder / "indicators.xlsx", {sheet_name("indicators"): table("indicators", indicators)})
    role_kpis = [
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K1", "weight": "60%", "target": 200},
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K2", "weight": 30, "target": 15},
        {"role_family": "销售", "period": "2026-Q3", "indicator_id": "K3", "weight": 0.1, "target": "2%"},
    ]
    write_sheets(folder / "agreements.xlsx", {sheet_name("agreements", 0): table("agreements", role_kpis, 0),
                                              sheet_name("agreements", 1): table("agreements", [], 1)})
    actuals = []
    for employee in ("S001", "S002"):
        actuals += [
            {"employee_id": employee, "period": "2026-Q3", "indicator_id": "K1", "actual": 210},
            {"employee_id": employee, "period": "2026-Q3", "indicator_id": "K2", "actual": actual_new_clients},
            {"employee_id": employee, "period": "2026-Q3", "indicator_id": "K3", "actual": "1.5%"},
        ]
    write_sheets(folder / "actuals.xlsx", {sheet_name("actuals"): table("actuals", actuals)})
    return folder
