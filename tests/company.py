"""A small company for end-to-end runs: two departments, every method, 360 ratings, two actuals files."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from builders import sheet_name, table, write_sheets

PERIOD = "2026-10"


def small_company(folder: Path, *, mistake: bool = False, hostile_name: bool = False) -> Path:
    """Write the inbox. With `mistake`, R002's 缺陷率 actual is typed 'N/A' (R002 cannot be scored)."""
    folder.mkdir(parents=True, exist_ok=True)
    roster = [
        {"employee_id": "S001", "name": "王芳", "department": "销售部", "position": "销售经理", "role_family": "销售"},
        {"employee_id": "S002", "name": "李强", "department": "销售部", "position": "销售代表", "role_family": "销售",
         "manager_id": "S001"},
        {"employee_id": "S003", "name": "=cmd|' /C calc'!A0" if hostile_name else "赵敏", "department": "销售部",
         "position": "销售代表", "role_family": "销售", "manager_id": "S001"},
        {"employee_id": "R001", "name": "陈刚", "department": "研发部", "position": "研发经理", "role_family": "研发"},
        {"employee_id": "R002", "name": "周杰", "department": "研发部", "position": "工程师", "role_family": "研发",
         "manager_id": "R001"},
        {"employee_id": "R003", "name": "吴静", "department": "研发部", "position": "工程师", "role_family": "研发",
         "manager_id": "R001", "status": "离职"},
    ]
    write_sheets(folder / "roster.xlsx", {sheet_name("roster"): table("roster", roster)},
                 title_rows={sheet_name("roster"): [["2026年10月 员工花名册"]]})
    if hostile_name:  # openpyxl would store "=..." as a formula; HR's file holds it as text
        book = openpyxl.load_workbook(folder / "roster.xlsx")
        cell = book[sheet_name("roster")]["B5"]
        cell.data_type = "s"
        book.save(folder / "roster.xlsx")
    indicators = [
        ("K01", "销售额", "业绩", "越高越好", "比率", "万元", "求和"),
        ("K02", "新客户数", "业绩", "越高越好", "阶梯", "个", "求和"),
        ("K03", "客户投诉率", "业绩", "越低越好", "达标", "%", "平均"),
        ("K04", "销售费用率", "业绩", "越低越好", "比率", "%", "平均"),
        ("R01", "项目完成率", "业绩", "越高越好", "比率", "%", "平均"),
        ("R02", "缺陷率", "业绩", "越低越好", "比率", "%", "平均"),
        ("R03", "专利数量", "业绩", "越高越好", "阶梯", "个", "求和"),
        ("A01", "责任心", "态度", "越高越好", "评分", "分", "平均"),
        ("A02", "团队协作", "态度", "越高越好", "评分", "分", "平均"),
        ("B01", "学习能力", "能力", "越高越好", "评分", "分", "平均"),
    ]
    write_sheets(folder / "indicators.xlsx", {sheet_name("indicators"): table("indicators", [
        {"indicator_id": i, "name": n, "dimension": d, "direction": di, "method": m, "unit": u, "aggregation": a}
        for i, n, d, di, m, u, a in indicators])})
    role = [
        ("销售", "K01", "40%", None, 200, None), ("销售", "K02", 20, 10, 15, 20), ("销售", "K03", "10%", None, "2%", None),
        ("销售", "K04", 0.1, None, "5%", None), ("销售", "A01", 10, None, None, None), ("销售", "B01", 10, None, None, None),
        ("研发", "R01", 30, None, "90%", None), ("研发", "R02", 20, None, "3%", None), ("研发", "R03", 20, 1, 2, 4),
        ("研发", "A02", 15, None, None, None), ("研发", "B01", 15, None, 4, None),
    ]
    role_rows = [{"role_family": f, "period": PERIOD, "indicator_id": i, "weight": w, "base": b, "target": t,
                  "stretch": s} for f, i, w, b, t, s in role]
    personal = [  # the sales manager has personal KPIs
        {"employee_id": "S001", "period": PERIOD, "indicator_id": "K01", "weight": 70, "target": 600},
        {"employee_id": "S001", "period": PERIOD, "indicator_id": "K04", "weight": 15, "target": 0.05},
        {"employee_id": "S001", "period": PERIOD, "indicator_id": "A01", "weight": 15},
    ]
    write_sheets(folder / "agreements.xlsx", {sheet_name("agreements", 0): table("agreements", role_rows, 0),
                                              sheet_name("agreements", 1): table("agreements", personal, 1)})
    sales = [
        ("S001", "K01", 630), ("S001", "K04", "4.5%"),
        ("S002", "K01", 210), ("S002", "K02", 12), ("S002", "K03", "1.5%"), ("S002", "K04", 0.06),
        ("S003", "K01", "１８０"), ("S003", "K02", 22), ("S003", "K03", 0.025), ("S003", "K04", "5%"),
    ]
    write_sheets(folder / "actuals_销售部.xlsx", {sheet_name("actuals"): table("actuals", [
        {"employee_id": e + "  ", "period": PERIOD, "indicator_id": i, "actual": a, "data_source": "CRM"}
        for e, i, a in sales])})
    rnd = [
        ("R001", "R01", 0.95), ("R001", "R02", 0.02), ("R001", "R03", 3),
        ("R002", "R01", "85%"), ("R002", "R02", "N/A" if mistake else 0.04), ("R002", "R03", 1),
    ]
    write_sheets(folder / "actuals_研发部.xlsx", {sheet_name("actuals"): table("actuals", [
        {"employee_id": e, "period": PERIOD, "indicator_id": i, "actual": a, "data_source": "Jira"}
        for e, i, a in rnd], style="zh")})
    ratings = []
    raters = {"S001": [("S001", "自评")], "S002": [("S001", "上级"), ("S003", "同事"), ("S002", "自评")],
              "S003": [("S001", "上级"), ("S003", "自评"), ("C9", "客户")],
              "R001": [("R002", "同事"), ("R001", "自评")], "R002": [("R001", "上级"), ("R002", "自评")]}
    scores = [4, 3.5, 5, 4.5, 3]
    for employee, pairs in raters.items():
        indicators_for = ["A01", "B01"] if employee.startswith("S") else ["A02", "B01"]
        for k, indicator in enumerate(indicators_for):
            for j, (rater, relation) in enumerate(pairs):
                ratings.append({"employee_id": employee, "period": PERIOD, "indicator_id": indicator,
                                "rater_id": rater, "relation": relation, "score": scores[(j + k) % len(scores)]})
    write_sheets(folder / "ratings.xlsx", {sheet_name("ratings"): table("ratings", ratings)})
    write_sheets(folder / "dept_targets.xlsx", {sheet_name("dept_targets"): table("dept_targets", [
        {"department": "销售部", "period": PERIOD, "indicator_id": "K01", "target": 1000}])})
    return folder


# --------------------------------------------------------------------------- hostile roster

# (employee_id, name, department): formula injection in names, path traversal, reserved and
# forbidden characters, a 300-character name and names differing only in case in departments.
HOSTILE_PEOPLE = [
    ("H01", "=cmd|' /C calc'!A0", "../../etc"),
    ("H02", "@SUM(1)", "..\\..\\x"),
    ("H03", "+1", "CON"),
    ("H04", "-1", "a/b:c*?"),
    ("H05", "http://evil", "D" * 300),
    ("H06", "=HYPERLINK(\"http://evil\",\"x\")", "Sales"),
    ("H07", "普通员工", "SALES"),
]


def hostile_company(folder: Path) -> Path:
    """small_company (with its `=cmd|...` employee) plus R&D people whose names and departments
    are hostile text; each has complete actuals and ratings, so each can be scored."""
    small_company(folder, hostile_name=True)
    book = openpyxl.load_workbook(folder / "roster.xlsx")
    sheet = book[sheet_name("roster")]
    for employee_id, name, department in HOSTILE_PEOPLE:
        sheet.append([employee_id, name, department, "工程师", "研发", "R001"])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # as typed by HR: text, never a formula
    book.save(folder / "roster.xlsx")
    actuals, ratings = [], []
    for employee_id, _, _ in HOSTILE_PEOPLE:
        actuals += [{"employee_id": employee_id, "period": PERIOD, "indicator_id": "R01", "actual": 0.92},
                    {"employee_id": employee_id, "period": PERIOD, "indicator_id": "R02", "actual": 0.03},
                    {"employee_id": employee_id, "period": PERIOD, "indicator_id": "R03", "actual": 3}]
        for indicator in ("A02", "B01"):
            ratings += [{"employee_id": employee_id, "period": PERIOD, "indicator_id": indicator,
                         "rater_id": "R001", "relation": "上级", "score": 4},
                        {"employee_id": employee_id, "period": PERIOD, "indicator_id": indicator,
                         "rater_id": employee_id, "relation": "自评", "score": 4.5}]
    write_sheets(folder / "actuals_hostile.xlsx", {sheet_name("actuals"): table("actuals", actuals)})
    write_sheets(folder / "ratings_hostile.xlsx", {sheet_name("ratings"): table("ratings", ratings)})
    return folder
