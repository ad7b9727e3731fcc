"""A realistic company inbox of any size, written fast, for `make bench`.

`generate_company(folder, employees=10_000)` writes the files HR would drop into the inbox for
one month: roster, indicator library, agreements (role KPIs per role family plus personal KPIs
for about 2% of employees), actuals split over several files by department, 360 ratings and
department targets. Same arguments → byte-identical files.

How the files are written (speed): a company of 100,000 employees has about a million rating
rows and half a million actual rows, some ten million cells; xlsxwriter spends ~10 µs on every
cell (about two minutes on this machine). So every file is first written by
`pipeline.templates.write_template` with only its first data row — a genuine template: header,
grey example row, dropdowns, input messages, instructions, hidden `_meta` sheet — and the
remaining rows are then streamed into that worksheet's XML as ordinary OOXML rows (shared
strings, each column with the style xlsxwriter gave that column's cell in the first row), the
way Excel itself stores them. Files are written by two worker processes.

    python benchmarks/generate.py DIR [--employees 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from xlsxwriter.utility import xl_col_to_name

from pipeline.kinds import (
    ACTUALS,
    AGREEMENTS,
    DEPT_TARGETS,
    INDICATORS,
    RATINGS,
    ROSTER,
    TEMPLATE_VERSION,
    Kind,
)
from pipeline.templates import write_template

MAX_SHEET_ROWS = 1_048_576
RATING_FILE_ROWS = 600_000  # above this the 360 export is split like the actuals

# ---------------------------------------------------------------------------- the library

# id, name, dimension, category, direction, method, unit, aggregation, definition, data source
_INDICATORS = (
    ("SAL-01", "销售额", "performance", "result", "higher", "ratio", "万元", "sum", "当月回款口径销售额", "CRM"),
    ("SAL-02", "新客户数", "performance", "result", "higher", "tiered", "个", "sum", "首次签约并回款的客户数", "CRM"),
    ("SAL-03", "客户投诉率", "performance", "process", "lower", "pass_fail", "%", "mean", "有效投诉单数 / 服务客户数",
     "客服系统"),
    ("SAL-04", "销售费用率", "performance", "process", "lower", "ratio", "%", "mean", "销售费用 / 销售额", "财务系统"),
    ("SAL-05", "回款率", "performance", "result", "higher", "ratio", "%", "mean", "实际回款 / 应收账款", "财务系统"),
    ("RND-01", "项目完成率", "performance", "result", "higher", "ratio", "%", "mean", "按期完成的里程碑 / 计划里程碑",
     "项目管理系统"),
    ("RND-02", "专利数量", "performance", "result", "higher", "tiered", "件", "sum", "受理的专利与软著申请数",
     "知识产权台账"),
    ("RND-03", "缺陷率", "performance", "process", "lower", "ratio", "%", "mean", "测试发现缺陷数 / 交付功能点",
     "缺陷管理系统"),
    ("RND-04", "代码评审及时率", "performance", "process", "higher", "pass_fail", "%", "mean",
     "按时完成的代码评审 / 提交的评审", "代码平台"),
    ("RND-05", "技术难题解决率", "ability", "process", "higher", "ratio", "%", "mean",
     "按期关闭的技术难题 / 分配的技术难题", "项目管理系统"),
    ("PRD-01", "产量达成率", "performance", "result", "higher", "ratio", "%", "mean", "实际产量 / 计划产量", "MES"),
    ("PRD-02", "良品率", "performance", "result", "higher", "ratio", "%", "mean", "合格品数 / 产出数", "MES"),
    ("PRD-03", "单位成本", "performance", "process", "lower", "tiered", "元", "mean", "制造成本 / 合格品数", "ERP"),
    ("PRD-04", "安全事故数", "performance", "process", "lower", "pass_fail", "次", "sum", "可记录安全事故次数",
     "安环台账"),
    ("ADM-01", "流程优化次数", "performance", "result", "higher", "tiered", "次", "sum", "上线并验收的流程优化项", "OA"),
    ("ADM-02", "报销审批时长", "performance", "process", "lower", "ratio", "天", "mean", "报销单从提交到付款的平均天数",
     "OA"),
    ("ADM-03", "服务满意度", "performance", "result", "higher", "ratio", "分", "mean", "员工对行政服务回访评分(百分制)",
     "满意度调查"),
    ("FIN-01", "报表及时率", "performance", "process", "higher", "pass_fail", "%", "mean", "按时报送的报表 / 应报报表",
     "财务系统"),
    ("FIN-02", "应收账款周转天数", "performance", "result", "lower", "ratio", "天", "mean", "平均应收账款 / 日均收入",
     "财务系统"),
    ("FIN-03", "预算偏差率", "performance", "process", "lower", "ratio", "%", "mean", "|实际 − 预算| / 预算", "财务系统"),
    ("ATT-01", "责任心", "attitude", "process", "higher", "rating", "分", "mean", "360 评价,1–5 分", "360评价"),
    ("ATT-02", "团队协作", "attitude", "process", "higher", "rating", "分", "mean", "360 评价,1–5 分", "360评价"),
    ("ATT-03", "主动性", "attitude", "process", "higher", "rating", "分", "mean", "360 评价,1–5 分", "360评价"),
    ("ABL-01", "学习能力", "ability", "development", "higher", "rating", "分", "mean", "360 评价,1–5 分", "360评价"),
    ("ABL-02", "专业能力", "ability", "development", "higher", "rating", "分", "mean", "360 评价,1–5 分", "360评价"),
)
_FIELDS = ("indicator_id", "name", "dimension", "category", "direction", "method", "unit", "aggregation",
           "definition", "data_source")
LIBRARY = {row[0]: dict(zip(_FIELDS, row)) for row in _INDICATORS}

# Monthly (base, target, stretch) of the role KPIs; ratings: 4 of 5 meets expectations.
_TARGETS = {
    "SAL-01": (None, 60, None), "SAL-02": (3, 5, 8), "SAL-03": (None, 0.02, None),
    "SAL-04": (None, 0.08, None), "SAL-05": (None, 0.95, None),
    "RND-01": (None, 0.9, None), "RND-02": (1, 2, 4), "RND-03": (None, 0.05, None),
    "RND-04": (None, 0.95, None), "RND-05": (None, 0.85, None),
    "PRD-01": (None, 1.0, None), "PRD-02": (None, 0.98, None), "PRD-03": (120, 100, 90),
    "PRD-04": (None, 0, None),
    "ADM-01": (1, 2, 4), "ADM-02": (None, 3, None), "ADM-03": (None, 90, None),
    "FIN-01": (None, 1.0, None), "FIN-02": (None, 45, None), "FIN-03": (None, 0.05, None),
}
RATING_TARGET = 4

# Role families: (indicator, weight %) in priority order; a set of k indicators is the first k,
# weights rescaled to 100 by largest remainder. At k = 8 they are exactly as written (sum 100;
# performance ≥ 60%; 销售 60/25/15 as the policy's dimension check expects).
FAMILIES = {
    "销售": (("SAL-01", 25), ("SAL-02", 10), ("SAL-03", 5), ("ABL-01", 15), ("ATT-01", 15),
             ("SAL-04", 10), ("SAL-05", 10), ("ABL-02", 10)),
    "研发": (("RND-01", 20), ("RND-02", 15), ("RND-03", 15), ("ABL-01", 10), ("ATT-02", 10),
             ("RND-04", 10), ("RND-05", 15), ("ATT-01", 5)),
    "生产": (("PRD-01", 25), ("PRD-02", 20), ("PRD-03", 10), ("ATT-01", 10), ("ATT-02", 10),
             ("PRD-04", 10), ("ABL-02", 10), ("ATT-03", 5)),
    "行政": (("ADM-01", 20), ("ADM-02", 20), ("ADM-03", 25), ("ATT-01", 10), ("ATT-02", 15),
             ("ATT-03", 10)),
    "财务": (("FIN-01", 20), ("FIN-02", 25), ("FIN-03", 15), ("ABL-02", 20), ("ATT-01", 10),
             ("ATT-02", 10)),
}
# Share of employees per family, department name stems, titles.
_FAMILY_SHARE = (("生产", 0.32), ("销售", 0.28), ("研发", 0.25), ("行政", 0.08), ("财务", 0.07))
_DEPARTMENT_NAMES = {  # stem, then the family's middle and final part: 华东 + 销售 + 部
    "销售": ("华东", "华南", "华北", "华中", "西南", "西北", "东北", "大客户", "渠道", "海外", "电商", "政企"),
    "研发": ("平台", "终端", "算法", "数据", "嵌入式", "测试", "架构", "云服务", "安全", "硬件"),
    "生产": ("总装", "冲压", "焊装", "涂装", "注塑", "包装", "机加", "电装", "仓储", "质检"),
    "行政": ("行政", "人力资源", "采购", "后勤", "法务"),
    "财务": ("财务", "审计", "资金", "税务", "成本"),
}
_NAME_PARTS = {"销售": ("销售", "部"), "研发": ("研发", "部"), "生产": ("", "车间"), "行政": ("", "部"),
               "财务": ("", "部")}
_TITLES = {
    "销售": ("销售总监", "销售主管", ("销售代表", "销售代表", "高级销售代表", "大客户经理")),
    "研发": ("研发总监", "项目经理", ("软件工程师", "软件工程师", "高级工程师", "测试工程师", "硬件工程师")),
    "生产": ("厂长", "班组长", ("操作工", "操作工", "操作工", "质检员", "设备维修工")),
    "行政": ("行政经理", "主管", ("行政专员", "人事专员", "采购专员", "前台")),
    "财务": ("财务经理", "主管", ("会计", "出纳", "财务分析师", "审计专员")),
}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾田董潘袁蔡蒋余杜叶程魏苏吕丁任卢沈"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "霞",
          "平", "刚", "秀英", "志强", "建华", "晓燕", "子涵", "浩然", "欣怡", "思远", "雨轩", "佳琪", "俊杰", "宇航",
          "婷婷", "晨曦", "文博", "梓萱", "一鸣", "雪梅", "海燕", "国栋", "立新", "春华", "嘉怡", "诗涵", "子轩")
_COMMENTS = ("按时交付,主动补位", "沟通及时,乐于分享", "细节仍需加强", "能带新人", "遇到问题主动上报",
             "跨部门配合顺畅", "本月加班支援项目", "学习新工具很快")
_NOTES = ("系统导出后人工核对", "月底补录", "含跨月调整")
_CN_NUMBERS = "一二三四五六七八九十"

# Choice labels as HR picks them from the dropdowns.
_ZH = {"performance": "业绩", "ability": "能力", "attitude": "态度", "result": "结果", "process": "过程",
       "development": "发展", "higher": "越高越好", "lower": "越低越好", "ratio": "比率", "tiered": "阶梯",
       "pass_fail": "达标", "rating": "评分", "sum": "求和", "mean": "平均", "last": "期末"}


def is_rating(indicator: str) -> bool:
    return LIBRARY[indicator]["method"] == "rating"


def role_sets(indicators_per_employee: int) -> dict[str, list[tuple[str, int]]]:
    """Each family's (indicator, weight %) set: the first k, weights summing to exactly 100."""
    sets = {}
    for family, items in FAMILIES.items():
        chosen = items[:max(3, indicators_per_employee)]
        sets[family] = list(zip([i for i, _ in chosen], _largest_remainder([w for _, w in chosen])))
    return sets


def _largest_remainder(weights: list[float], total: int = 100) -> list[int]:
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    whole = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (whole[i] - raw[i], i))
    for i in order[:total - sum(whole)]:
        whole[i] += 1
    return whole


# ---------------------------------------------------------------------------- the company

def _department_sizes(rng: random.Random, employees: int) -> list[int]:
    """Head counts: mostly 50–200, some 200–800, one big department (up to 2,000) above 200."""
    if employees < 400:  # tiny companies (smoke tests): three or four departments
        parts = max(2, min(4, employees // 25))
        base = employees // parts
        return [base + (1 if i < employees % parts else 0) for i in range(parts)]
    sizes = [max(201, min(2_000, int(employees * 0.12)))] if employees >= 1_000 else []
    left = employees - sum(sizes)
    while left > 0:
        roll = rng.random()
        if roll < 0.03 and employees >= 50_000:
            size = rng.randint(800, 2_000)
        elif roll < 0.18:
            size = rng.randint(201, 800)
        else:
            size = rng.randint(50, 200)
        if left - size < 50:
            size = left
        sizes.append(size)
        left -= size
    return sizes


def _families(rng: random.Random, count: int) -> list[str]:
    families, weights = zip(*_FAMILY_SHARE)
    chosen = ["生产"] + [rng.choices(families, weights)[0] for _ in range(count - 1)]  # the big one: a plant
    missing = [f for f in families if f not in chosen]
    if count > len(families):  # every family at least once when there is room
        for i, family in enumerate(missing):
            chosen[1 + i] = family
    return chosen


def _department_name(family: str, taken: set[str]) -> str:
    middle, final = _NAME_PARTS[family]
    for round_ in range(99):
        for stem in _DEPARTMENT_NAMES[family]:
            name = f"{stem}{middle}{_number(round_ + 1) if round_ else ''}{final}"
            if name not in taken:
                taken.add(name)
                return name
    raise RuntimeError("out of department names")


def _number(n: int) -> str:
    if n <= 10:
        return _CN_NUMBERS[n - 1]
    if n < 20:
        return "十" + _CN_NUMBERS[n - 11]
    return _CN_NUMBERS[n // 10 - 1] + "十" + (_CN_NUMBERS[n % 10 - 1] if n % 10 else "")


def build_people(rng: random.Random, employees: int) -> tuple[list[dict], list[dict]]:
    """(people, departments). The CEO heads 总经办 (a small office reporting to the CEO);
    department heads report to the CEO, team leads to their head, staff (teams of 6–25) to
    their team lead. `team` groups people under one manager (team 0: the CEO's reports)."""
    width = max(6, len(str(employees)))
    office = max(3, min(50, employees // 200))
    sizes = _department_sizes(rng, employees - office)
    families = _families(rng, len(sizes))
    taken: set[str] = {"总经办"}
    ceo_id = f"E{1:0{width}d}"
    people = [{"employee_id": ceo_id, "name": "郑国华", "department": "总经办", "position": "总经理",
               "role_family": "行政", "manager_id": None, "status": "在职", "team": -1}]
    for n in range(2, office + 1):
        people.append({"employee_id": f"E{n:0{width}d}", "name": rng.choice(_SURNAMES) + rng.choice(_GIVEN),
                       "department": "总经办", "position": rng.choice(("总经理助理", "战略专员", "秘书")),
                       "role_family": "行政", "manager_id": ceo_id, "status": "在职", "team": 0})
    departments = [{"name": "总经办", "family": "行政", "members": list(people)}]
    number = office + 1
    team_no = 1
    for size, family in zip(sizes, families):
        name = _department_name(family, taken)
        head_title, lead_title, staff_titles = _TITLES[family]
        members = []
        for _ in range(size):
            members.append({"employee_id": f"E{number:0{width}d}", "name": rng.choice(_SURNAMES) + rng.choice(_GIVEN),
                            "department": name, "position": None, "role_family": family, "manager_id": None,
                            "status": "在职", "team": None})
            number += 1
        head = members[0]
        head.update(position=head_title, manager_id=ceo_id, team=0)
        head_team = team_no
        team_no += 1
        i = 1
        while i < size:  # a lead (in the head's team) and the lead's staff
            members[i].update(position=lead_title, manager_id=head["employee_id"], team=head_team)
            team = rng.randint(6, 25)
            for member in members[i + 1:i + 1 + team]:
                member.update(position=rng.choice(staff_titles), manager_id=members[i]["employee_id"], team=team_no)
            i += 1 + team
            team_no += 1
        people.extend(members)
        departments.append({"name": name, "family": family, "members": members})
    for person in rng.sample(people[1:], max(1, len(people) // 50)):
        person["status"] = None  # HR leaves some blank: blank means active
    return people, departments


def _round(value: float, unit: str) -> float:
    if unit == "%":
        return round(value, 4)
    if unit in ("万元", "元", "天", "分"):
        return round(value, 1)
    return round(value, 2)


def _actual(rng: random.Random, indicator: str, target: float, level: float):
    """A realistic monthly actual around `level` × target (inverted when lower is better)."""
    info = LIBRARY[indicator]
    factor = max(0.3, level * rng.uniform(0.92, 1.08))
    if info["method"] == "tiered":
        if info["direction"] == "higher":
            return max(0, round(target * factor) + rng.choice((-1, 0, 0, 1)))
        return round(target / factor, 1)
    if indicator == "PRD-04":
        return 0 if rng.random() < 0.96 else rng.choice((1, 1, 2))
    if indicator == "FIN-01":
        return 1.0 if rng.random() < min(0.97, 0.6 + 0.35 * level) else round(rng.uniform(0.8, 0.98), 4)
    value = target * factor if info["direction"] == "higher" else target / factor
    if info["unit"] == "%" and indicator != "PRD-01":
        value = min(value, 1.0)
    if info["unit"] == "分":
        value = min(value, 100.0)
    return _round(value, info["unit"])


def _half(score: float) -> float:
    return min(5.0, max(1.0, round(score * 2) / 2))


def _personal(rng: random.Random, role: list[tuple[str, int]]) -> list[tuple[str, int, float]]:
    """A personal agreement: the role set with 5 points moved between two results and own targets."""
    weights = dict(role)
    results = [i for i, _ in role if not is_rating(i)]
    if len(results) >= 2:
        giver, taker = rng.sample(results, 2)
        if weights[giver] > 5:
            weights[giver] -= 5
            weights[taker] += 5
    factor = rng.choice((0.8, 0.9, 1.1, 1.2, 1.3))
    return [(i, weights[i], factor) for i, _ in role]


def _tiers(indicator: str, factor: float = 1.0) -> tuple:
    """(base, target, stretch): the role's, or scaled by `factor` for a personal agreement.

    Rates where higher is better (a % unit) and 百分制 scores keep the role's targets."""
    if is_rating(indicator):
        return None, RATING_TARGET, None
    base, target, stretch = _TARGETS[indicator]
    info = LIBRARY[indicator]
    if factor == 1.0 or info["unit"] == "分" or (info["unit"] == "%" and info["direction"] == "higher"):
        return base, target, stretch
    scaled = tuple(None if v is None else (round(v * factor) if isinstance(v, int) else _round(v * factor, info["unit"]))
                   for v in (base, target, stretch))
    if info["method"] == "tiered":
        b, t, s = scaled
        if not (b < t < s if info["direction"] == "higher" else b > t > s):
            return base, target, stretch
    if info["method"] == "ratio" and not scaled[1]:
        return base, target, stretch
    return scaled


# ---------------------------------------------------------------------------- rows

def company_rows(employees: int, indicators_per_employee: int, seed: int, actual_files: int,
                 period: str) -> tuple[list[tuple[str, Kind, dict]], dict]:
    """Every file's rows: [(file name, kind, {sheet name: [row tuples in field order]})], facts."""
    rng = random.Random(seed)
    people, departments = build_people(rng, employees)
    sets = role_sets(indicators_per_employee)
    by_team: dict[int, list[str]] = {}
    for p in people:
        by_team.setdefault(p["team"], []).append(p["employee_id"])
    level = {p["employee_id"]: min(1.5, max(0.5, rng.gauss(1.0, 0.12))) for p in people}

    # Personal KPIs for ~2% (not the CEO), in roster order.
    personal_ids = set(rng.sample([p["employee_id"] for p in people[1:]], max(1, employees // 50)))
    agreements: dict[str, list[tuple[str, int, tuple]]] = {}  # employee -> (indicator, weight, tiers)
    employee_kpis = []
    for p in people:
        role = sets[p["role_family"]]
        if p["employee_id"] in personal_ids:
            rows = [(i, w, _tiers(i, f)) for i, w, f in _personal(rng, role)]
            agreements[p["employee_id"]] = rows
            for i, w, (b, t, s) in rows:
                employee_kpis.append((p["employee_id"], period, i, w / 100, b, t, s))
    role_kpis = [(family, period, i, w / 100, *_tiers(i)) for family, items in sets.items() for i, w in items]

    roster = [(p["employee_id"], p["name"], p["department"], p["position"], p["role_family"], p["manager_id"],
               p["status"]) for p in people]
    indicators = [tuple(_ZH.get(row[k], row[k]) if k in ("dimension", "category", "direction", "method",
                                                               "aggregation") else row[k] for k in _FIELDS)
                  for row in LIBRARY.values()]

    # Actuals and ratings per department.
    actual_rows: dict[str, list[tuple]] = {}
    rating_rows: dict[str, list[tuple]] = {}
    totals: dict[tuple[str, str], float] = {}
    for department in departments:
        acts, rates = [], []
        for p in department["members"]:
            employee_id = p["employee_id"]
            agreement = agreements.get(employee_id) or [(i, w, _tiers(i)) for i, w in sets[p["role_family"]]]
            team = by_team[p["team"]]
            for indicator, _w, (_b, target, _s) in agreement:
                if is_rating(indicator):
                    continue
                info = LIBRARY[indicator]
                if info["aggregation"] == "sum" and target:
                    key = (department["name"], indicator)
                    totals[key] = totals.get(key, 0) + target
                acts.append((employee_id, period, indicator, _actual(rng, indicator, target, level[employee_id]),
                             info["data_source"], rng.choice(_NOTES) if rng.random() < 0.02 else None))
            raters = []
            if p["manager_id"]:
                raters.append((p["manager_id"], "上级"))
            peers = [e for e in team if e != employee_id and e != p["manager_id"]]
            if len(peers) < 2:
                peers = [m["employee_id"] for m in department["members"][:30]
                         if m["employee_id"] not in (employee_id, p["manager_id"])] or peers
            for peer in rng.sample(peers, min(2, len(peers))):
                raters.append((peer, "同事"))
            raters.append((employee_id, "自评"))
            center = 1.9 + 2.0 * min(level[employee_id], 1.2)
            for indicator, _w, _t in agreement:
                if not is_rating(indicator):
                    continue
                for rater_id, relation in raters:
                    bonus = 0.4 if relation == "自评" else 0.0
                    rates.append((employee_id, period, indicator, rater_id, relation,
                                  _half(center + bonus + rng.uniform(-0.7, 0.7)),
                                  rng.choice(_COMMENTS) if rng.random() < 0.1 else None))
        actual_rows[department["name"]] = acts
        rating_rows[department["name"]] = rates

    dept_targets = []
    for (department, indicator), total in sorted(totals.items(), key=lambda kv: kv[0]):
        step = 10 if LIBRARY[indicator]["unit"] == "万元" else 1
        dept_targets.append((department, period, indicator, max(step, int(total * 0.95 // step * step))))

    # Split departments over the actuals files, balanced by rows, in department order.
    groups = _groups([d["name"] for d in departments], actual_rows, max(1, actual_files))
    files: list[tuple[str, Kind, dict]] = [
        ("roster.xlsx", ROSTER, {ROSTER.sheets[0].name: roster}),
        ("indicators.xlsx", INDICATORS, {INDICATORS.sheets[0].name: indicators}),
        ("agreements.xlsx", AGREEMENTS, {AGREEMENTS.sheets[0].name: role_kpis,
                                         AGREEMENTS.sheets[1].name: employee_kpis}),
        ("dept_targets.xlsx", DEPT_TARGETS, {DEPT_TARGETS.sheets[0].name: dept_targets}),
    ]
    width = len(str(len(groups)))
    for n, group in enumerate(groups, start=1):
        name = f"actuals_{n:0{width}d}.xlsx" if len(groups) > 1 else "actuals.xlsx"
        files.append((name, ACTUALS, {ACTUALS.sheets[0].name: [r for d in group for r in actual_rows[d]]}))
    total_ratings = sum(len(v) for v in rating_rows.values())
    rating_groups = [[d["name"] for d in departments]] if total_ratings <= RATING_FILE_ROWS else \
        _groups([d["name"] for d in departments], rating_rows, max(len(groups), math.ceil(total_ratings / RATING_FILE_ROWS)))
    width = len(str(len(rating_groups)))
    for n, group in enumerate(rating_groups, start=1):
        name = f"ratings_{n:0{width}d}.xlsx" if len(rating_groups) > 1 else "ratings.xlsx"
        files.append((name, RATINGS, {RATINGS.sheets[0].name: [r for d in group for r in rating_rows[d]]}))

    detail_rows = sum(len(agreements.get(p["employee_id"]) or sets[p["role_family"]]) for p in people)
    facts = {
        "employees": len(people),
        "departments": len(departments),
        "department_sizes": sorted((len(d["members"]) for d in departments), reverse=True),
        "departments_over_200": sum(len(d["members"]) > 200 for d in departments),
        "managers": len({p["manager_id"] for p in people if p["manager_id"]}),
        "indicators": len(LIBRARY),
        "role_kpi_rows": len(role_kpis),
        "employee_kpi_employees": len(personal_ids),
        "employee_kpi_rows": len(employee_kpis),
        "detail_rows": detail_rows,
        "actual_rows": sum(len(v) for v in actual_rows.values()),
        "rating_rows": total_ratings,
        "dept_target_rows": len(dept_targets),
    }
    return files, facts


def _groups(names: list[str], rows: dict[str, list], count: int) -> list[list[str]]:
    """Consecutive departments in up to `count` groups of about equal rows, none empty."""
    count = max(1, min(count, len(names)))
    total = sum(len(rows[n]) for n in names)
    groups: list[list[str]] = [[]]
    done = 0
    for i, name in enumerate(names):
        open_groups = count - len(groups)
        if groups[-1] and open_groups > 0 and (done >= len(groups) * total / count or len(names) - i <= open_groups):
            groups.append([])
        groups[-1].append(name)
        done += len(rows[name])
    return groups


# ---------------------------------------------------------------------------- writing

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CELL = re.compile(r'<c r="([A-Z]+)\d+"( s="\d+")?')
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")


def _escape(text: str) -> str:
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if text[:1].isspace() or text[-1:].isspace():
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


def write_file(path: Path, kind: Kind, tables: dict[str, list[tuple]], *, example: bool = True) -> int:
    """Write one input workbook: a real template holding the first row, the rest streamed in."""
    path = Path(path)
    skeleton = path.with_name(f".{path.name}.skeleton")
    first = {}
    for sheet, rows in tables.items():
        fields = kind.sheet(sheet).field_names
        first[sheet] = [dict(zip(fields, rows[0]))] if rows else []
        if len(rows) + 2 > MAX_SHEET_ROWS:
            raise ValueError(f"{path.name}: {len(rows)} rows do not fit one sheet")
    write_template(kind, skeleton, first, example=example)
    try:
        _stream_rows(skeleton, path, kind, tables, example)
    finally:
        skeleton.unlink(missing_ok=True)
    return sum(len(rows) for rows in tables.values())


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels}
    return {s.get("name"): "xl/" + targets[s.get(_REL)] for s in workbook.iter(f"{_NS}sheet")}


class _SharedStrings:
    def __init__(self, xml: str):
        self.xml = xml
        root = ElementTree.fromstring(xml.encode("utf-8"))
        self.index: dict[str, int] = {}
        for i, si in enumerate(root.iter(f"{_NS}si")):
            self.index.setdefault("".join(t.text or "" for t in si.iter(f"{_NS}t")), i)
        self.unique = len(root.findall(f"{_NS}si"))
        self.count = int(root.get("count", self.unique))
        self.new: list[str] = []

    def get(self, text: str) -> int:
        index = self.index.get(text)
        if index is None:
            index = self.index[text] = self.unique + len(self.new)
            self.new.append(_escape(text))
        return index

    def render(self) -> bytes:
        head, tail = self.xml.rsplit("</sst>", 1)
        head = re.sub(r'count="\d+" uniqueCount="\d+"',
                      f'count="{self.count}" uniqueCount="{self.unique + len(self.new)}"', head, count=1)
        return (head + "".join(f"<si>{t}</si>" for t in self.new) + "</sst>" + tail).encode("utf-8")


def _render_rows(rows: list[tuple], first_row: int, styles: list[str], strings: _SharedStrings):
    """`<row>` elements for rows starting at Excel row `first_row`, a chunk at a time."""
    letters = [xl_col_to_name(c) for c in range(len(styles))]
    columns = list(zip(letters, styles))
    get = strings.get
    chunk = []
    count = 0
    for offset, row in enumerate(rows):
        r = first_row + offset
        cells = [f'<row r="{r}" spans="1:{len(styles)}">']
        for (letter, style), value in zip(columns, row):
            if value is None:
                continue
            if value.__class__ is str:
                cells.append(f'<c r="{letter}{r}"{style} t="s"><v>{get(value)}</v></c>')
                count += 1
            else:
                cells.append(f'<c r="{letter}{r}"{style}><v>{value!r}</v></c>')
        cells.append("</row>")
        chunk.append("".join(cells))
        if len(chunk) == 5_000:
            yield "".join(chunk)
            chunk = []
    strings.count += count
    if chunk:
        yield "".join(chunk)


def _stream_rows(skeleton: Path, target: Path, kind: Kind, tables: dict[str, list[tuple]], example: bool) -> None:
    with zipfile.ZipFile(skeleton) as zin:
        parts = _sheet_parts(zin)
        strings = _SharedStrings(zin.read("xl/sharedStrings.xml").decode("utf-8"))
        plans = {}
        workbook_xml = zin.read("xl/workbook.xml").decode("utf-8")
        for sheet, rows in tables.items():
            if len(rows) < 2:
                continue
            spec = kind.sheet(sheet)
            written = 2 if example else 1  # header (+ example) rows
            first = written + 1  # the first data row, written by xlsxwriter
            xml = zin.read(parts[spec.name]).decode("utf-8")
            row_xml = re.search(rf'<row r="{first}"[^>]*>(.*?)</row>', xml).group(1)
            by_letter = {m.group(1): m.group(2) or "" for m in _CELL.finditer(row_xml)}
            styles = [by_letter.get(xl_col_to_name(c), "") for c in range(len(spec.fields))]
            last = first + len(rows) - 1
            last_col = xl_col_to_name(len(spec.fields) - 1)
            xml = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last_col}{last}"/>', xml, count=1)
            xml = re.sub(r'<autoFilter ref="[^"]*"/>', f'<autoFilter ref="A1:{last_col}{last}"/>', xml, count=1)
            quoted = re.escape(f"'{spec.name}'!")
            workbook_xml = re.sub(rf"({quoted}\$A\$1:\${last_col}\$)\d+", rf"\g<1>{last}", workbook_xml)
            head, tail = xml.split("</sheetData>", 1)
            plans[parts[spec.name]] = (head, "</sheetData>" + tail, rows[1:], first + 1, styles)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6,
                             allowZip64=True) as zout:
            late = []
            for info in zin.infolist():
                copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                copy.compress_type = zipfile.ZIP_DEFLATED
                copy.external_attr = info.external_attr
                if info.filename == "xl/sharedStrings.xml":
                    late.append(copy)  # written after the sheets have added their strings
                    continue
                if info.filename == "xl/workbook.xml":
                    zout.writestr(copy, workbook_xml.encode("utf-8"))
                    continue
                plan = plans.get(info.filename)
                if plan is None:
                    zout.writestr(copy, zin.read(info.filename))
                    continue
                head, tail, rows, first, styles = plan
                with zout.open(copy, "w", force_zip64=len(rows) > 200_000) as out:
                    out.write(head.encode("utf-8"))
                    for chunk in _render_rows(rows, first, styles, strings):
                        out.write(chunk.encode("utf-8"))
                    out.write(tail.encode("utf-8"))
            for copy in late:
                zout.writestr(copy, strings.render())


# ---------------------------------------------------------------------------- public API

_TASKS: list = []


def _write_task(index: int) -> tuple[str, int, float]:
    folder, name, kind, tables, example = _TASKS[index]
    start = time.perf_counter()
    rows = write_file(folder / name, kind, tables, example=example)
    return name, rows, time.perf_counter() - start


def generate_company(folder, employees: int = 10_000, indicators_per_employee: int = 8, seed: int = 1,
                     actual_files: int = 4, period: str = "2026-10", jobs: int | None = None) -> dict:
    """Write a company of `employees` into `folder` (the inbox); return what was written.

    Deterministic: the same arguments give byte-identical files, whatever `jobs` is.
    """
    global _TASKS
    if employees < 10:
        raise ValueError("employees must be at least 10")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    files, facts = company_rows(employees, indicators_per_employee, seed, actual_files, period)
    rows_seconds = time.perf_counter() - start
    _TASKS = [(folder, name, kind, tables, kind is not DEPT_TARGETS) for name, kind, tables in files]
    order = sorted(range(len(_TASKS)), key=lambda i: -sum(len(r) for r in _TASKS[i][3].values()))
    jobs = max(1, min(jobs or min(2, os.cpu_count() or 1), len(order)))
    if jobs == 1 or not sys.platform.startswith("linux"):
        written = [_write_task(i) for i in order]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            written = pool.map(_write_task, order, chunksize=1)
    _TASKS = []
    written.sort()
    facts.update({
        "folder": str(folder),
        "period": period,
        "seed": seed,
        "indicators_per_employee": indicators_per_employee,
        "template_version": TEMPLATE_VERSION,
        "files": {name: rows for name, rows, _ in written},
        "bytes": sum((folder / name).stat().st_size for name, _, _ in written),
        "seconds": round(time.perf_counter() - start, 3),
        "seconds_rows": round(rows_seconds, 3),
    })
    return facts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a realistic company inbox for the benchmark.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--indicators", type=int, default=8, help="indicators per employee (largest role sets)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--actual-files", type=int, default=4)
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    facts = generate_company(args.folder, args.employees, args.indicators, args.seed, args.actual_files,
                             args.period, jobs=args.jobs)
    facts.pop("department_sizes")
    print(json.dumps(facts, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
