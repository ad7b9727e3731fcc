"""A filled example company (seed 003's SME of 50 people) written the way HR really writes it.

The inbox is made from the generated templates and then roughed up the way real files are:
a merged title row above the roster header, Chinese-only headers in the ratings file, weights
typed as `60%`, `60` and `0.6`, full-width digits, trailing spaces in IDs, months that Excel
turned into dates. Exactly two honest mistakes are planted (listed under "mistakes" in the
returned dict and in README.txt); everything else is valid, so the demo shows both scoring and errors.
Same seed → byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.cell_range import CellRange, MultiCellRange

from pipeline.kinds import (
    ACTUALS,
    AGREEMENTS,
    DEPT_TARGETS,
    INDICATORS,
    RATINGS,
    ROSTER,
    WEIGHTS,
    Field,
)
from pipeline.templates import data_cell, write_template
from pipeline.writers.common import FIXED_CREATED

PERIOD = "2026-10"
QUARTER = "2026-Q3"
PERIODS = (PERIOD, QUARTER)
MONTHS = ("2026-07", "2026-08", "2026-09", "2026-10")  # 07–09 roll up into 2026-Q3
_QUARTER_MONTHS = MONTHS[:3]

# Department, role family, head count, manager's title, staff titles (seed 003: 15/25/10).
DEPARTMENTS = (
    ("销售部", "销售", 15, "销售经理", ("销售代表", "销售代表", "高级销售代表", "大客户经理")),
    ("研发部", "研发", 25, "研发经理", ("软件工程师", "软件工程师", "高级工程师", "测试工程师",
                                        "硬件工程师")),
    ("行政部", "行政", 10, "行政经理", ("行政专员", "人事专员", "前台主管", "采购专员")),
)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾田董潘袁蔡蒋余杜叶程魏苏吕丁任卢沈"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
          "明", "超", "霞", "平", "刚", "秀英", "志强", "建华", "晓燕", "子涵", "浩然", "欣怡",
          "思远", "雨轩", "佳琪", "俊杰", "宇航", "婷婷", "晨曦", "文博", "梓萱", "一鸣", "雪梅",
          "海燕", "国栋", "立新", "春华", "嘉怡", "诗涵", "子轩", "博文", "明辉", "晓东", "振宇",
          "慧敏")

# The indicator library. Choice fields hold codes; they are written as the Chinese label HR
# picks from the dropdown.
_INDICATOR_ROWS = (
    ("SAL-01", "销售额", "performance", "result", "higher", "ratio", "万元", "sum",
     "当月回款口径销售额", "CRM"),
    ("SAL-02", "新客户数", "performance", "result", "higher", "tiered", "个", "sum",
     "首次签约并回款的客户数", "CRM"),
    ("SAL-03", "客户投诉率", "performance", "process", "lower", "pass_fail", "%", "mean",
     "有效投诉单数 / 服务客户数", "客服系统"),
    ("SAL-04", "销售费用率", "performance", "process", "lower", "ratio", "%", "mean",
     "销售费用 / 销售额", "财务系统"),
    ("RND-01", "项目完成率", "performance", "result", "higher", "ratio", "%", "mean",
     "按期完成的里程碑 / 计划里程碑", "项目管理系统"),
    ("RND-02", "专利数量", "performance", "result", "higher", "tiered", "件", "sum",
     "受理的专利与软著申请数", "知识产权台账"),
    ("RND-03", "技术难题解决率", "ability", "process", "higher", "ratio", "%", "mean",
     "按期关闭的技术难题 / 分配的技术难题", "项目管理系统"),
    ("RND-04", "缺陷率", "performance", "process", "lower", "ratio", "%", "mean",
     "测试发现缺陷数 / 交付功能点", "缺陷管理系统"),
    ("ADM-01", "流程优化次数", "performance", "result", "higher", "tiered", "次", "sum",
     "上线并验收的流程优化项", "OA"),
    ("ADM-02", "报销审批时长", "performance", "process", "lower", "ratio", "天", "mean",
     "报销单从提交到付款的平均天数", "OA"),
    ("ADM-03", "投诉处理满意度", "performance", "result", "higher", "ratio", "分", "mean",
     "员工对行政服务回访评分(百分制)", "满意度调查"),
    ("ATT-01", "责任心", "attitude", "process", "higher", "rating", "分", "mean",
     "360 评价,1–5 分", "360评价"),
    ("ATT-02", "团队协作", "attitude", "process", "higher", "rating", "分", "mean",
     "360 评价,1–5 分", "360评价"),
    ("ATT-03", "主动性", "attitude", "process", "higher", "rating", "分", "mean",
     "360 评价,1–5 分", "360评价"),
    ("ABL-01", "学习能力", "ability", "development", "higher", "rating", "分", "mean",
     "360 评价,1–5 分", "360评价"),
)
# Behaviour anchors of the attitude indicators at levels 1, 3 and 5, as seed 003 describes them.
_ANCHORS = {
    "ATT-01": ("经常拖延任务,需反复催促", "按时完成任务,无重大失误", "主动超额完成任务,承担额外责任"),
    "ATT-02": ("拒绝协助同事,推诿责任", "配合团队工作,完成分配的任务", "主动帮助同事,推动团队目标实现"),
    "ATT-03": ("等待上级安排工作,从不主动思考", "主动完成本职工作,偶尔提出建议", "主动寻找工作机会,推动流程优化"),
}
_INDICATOR_FIELDS = tuple(name for name in INDICATORS.sheets[0].field_names if not name.startswith("anchor_"))
INDICATOR_LIBRARY = {row[0]: dict(zip(_INDICATOR_FIELDS, row, strict=True))
                     | dict(zip(("anchor_1", "anchor_3", "anchor_5"), _ANCHORS.get(row[0], ())))
                     for row in _INDICATOR_ROWS}

# Monthly (base, target, stretch); a quarter's targets are three months' for `sum` indicators.
_MONTHLY_TARGETS = {
    "SAL-01": (None, 60, None), "SAL-02": (3, 5, 8), "SAL-03": (None, 0.02, None),
    "SAL-04": (None, 0.08, None),
    "RND-01": (None, 0.9, None), "RND-02": (1, 2, 3), "RND-03": (None, 0.85, None),
    "RND-04": (None, 0.05, None),
    "ADM-01": (1, 2, 4), "ADM-02": (None, 3, None), "ADM-03": (None, 90, None),
}

RATING_TARGET = 4  # role KPIs; the sales manager's personal rows leave it blank (= scale max 5)

# Role KPIs: indicator → weight. Performance is 60% everywhere (seed 003's 60/25/15 for sales).
ROLE_WEIGHTS = {
    "销售": {"SAL-01": 0.30, "SAL-02": 0.15, "SAL-03": 0.05, "SAL-04": 0.10,
             "ABL-01": 0.25, "ATT-01": 0.15},
    "研发": {"RND-01": 0.25, "RND-02": 0.15, "RND-04": 0.20, "RND-03": 0.20, "ATT-02": 0.20},
    "行政": {"ADM-01": 0.20, "ADM-02": 0.20, "ADM-03": 0.20, "ATT-01": 0.10, "ATT-02": 0.15,
             "ATT-03": 0.15},
}

# Personal KPIs for 2026-10: (indicator, weight, base, target, stretch).
_SALES_MANAGER_KPIS = (
    ("SAL-01", 0.40, None, 100, None), ("SAL-02", 0.15, 4, 6, 10),
    ("SAL-03", 0.05, None, 0.02, None), ("ABL-01", 0.25, None, None, None),
    ("ATT-01", 0.15, None, None, None),
)
_SENIOR_ENGINEER_KPIS = (  # planted mistake (b): ATT-02 typed as 10% instead of 20% → 90%
    ("RND-01", 0.30, None, 0.95, None), ("RND-02", 0.20, 2, 3, 4),
    ("RND-04", 0.10, None, 0.04, None), ("RND-03", 0.20, None, 0.9, None),
    ("ATT-02", 0.10, None, 4, None),
)
SALES_MANAGER = "E001"
WEIGHT_MISTAKE_EMPLOYEE = "E020"
WEIGHT_MISTAKE_INDICATOR = "ATT-02"
NA_MISTAKE_EMPLOYEE = "E031"
NA_MISTAKE_INDICATOR = "RND-04"

# AHP judgments for 研发 (upper triangle; nearly consistent, CR well under 0.10).
AHP_RND_IDS = ("RND-01", "RND-02", "RND-03", "RND-04", "ATT-02")
_AHP_RND_UPPER = {(0, 1): 2, (0, 2): 2, (0, 3): 3, (0, 4): 3, (1, 2): 1, (1, 3): 2, (1, 4): 2,
                  (2, 3): 2, (2, 4): 2, (3, 4): 1}
# Expert importance (1–10) around which the five experts' scores for 销售 vary.
_SALES_IMPORTANCE = {"SAL-01": 9, "SAL-02": 7, "SAL-03": 4, "SAL-04": 5, "ABL-01": 6, "ATT-01": 5}

_COMMENTS = ("按时交付,主动补位", "沟通及时,乐于分享", "细节仍需加强", "能带新人", "遇到问题主动上报",
             "跨部门配合顺畅", "本月加班支援项目", "学习新工具很快")
_NOTES = ("含大客户回款", "系统导出后人工核对", "月底补录")

_MIDNIGHT = FIXED_CREATED.replace(tzinfo=None)  # openpyxl stores naive UTC


# ---------------------------------------------------------------------------- the company


def _people(rng: random.Random) -> list[dict]:
    """50 employees E001..E050, each department's first person its manager."""
    names: set[str] = set()
    people = []
    number = 1
    for department, family, count, manager_title, titles in DEPARTMENTS:
        manager_id = f"E{number:03d}"
        for i in range(count):
            name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
            while name in names:
                name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
            names.add(name)
            people.append({
                "employee_id": f"E{number:03d}", "name": name, "department": department,
                "position": manager_title if i == 0 else rng.choice(titles),
                "role_family": family, "manager_id": None if i == 0 else manager_id,
                "status": "在职",
            })
            number += 1
    for person in rng.sample(people[1:], 3):  # HR leaves some blank: blank means active
        person["status"] = None
    return people


def _targets(indicator: str, period: str) -> tuple:
    if _is_rating(indicator):  # HR's convention: 4 of 5 means "meets expectations" (100%)
        return None, RATING_TARGET, None
    base, target, stretch = _MONTHLY_TARGETS[indicator]
    if period == QUARTER and INDICATOR_LIBRARY[indicator]["aggregation"] == "sum":
        return tuple(None if v is None else v * 3 for v in (base, target, stretch))
    return base, target, stretch


def _agreement(person: dict, period: str) -> list[tuple]:
    """The (indicator, weight, base, target, stretch) rows that apply to an employee."""
    if period == PERIOD and person["employee_id"] == SALES_MANAGER:
        return list(_SALES_MANAGER_KPIS)
    if period == PERIOD and person["employee_id"] == WEIGHT_MISTAKE_EMPLOYEE:
        return list(_SENIOR_ENGINEER_KPIS)
    return [(i, w, *_targets(i, period)) for i, w in ROLE_WEIGHTS[person["role_family"]].items()]


def _is_rating(indicator: str) -> bool:
    return INDICATOR_LIBRARY[indicator]["method"] == "rating"


def _zh(field: Field, code: str) -> str:
    """The Chinese label of a choice code, as the template's dropdown writes it."""
    choice = field.choice_by_code(code)
    if choice is None:
        raise KeyError(f"{field.name} has no choice {code!r}")
    return choice.zh


# ---------------------------------------------------------------------------- the files


def build_demo_inbox(folder, *, seed: int = 3) -> dict:
    """Write the demo company's input workbooks into `folder`; say what is where."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    people = _people(rng)
    files: list[str] = []
    mistakes: list[dict] = []

    def write(name: str, kind, rows, *, example: bool = True) -> Path:
        files.append(name)
        return write_template(kind, folder / name, rows, example=example)

    roster_path = write("roster.xlsx", ROSTER, {ROSTER.sheets[0].name: people})
    _add_title_row(roster_path, ROSTER.sheets[0], "2026年10月 员工花名册")

    indicator_spec = INDICATORS.sheets[0]
    indicator_rows = []
    for row in INDICATOR_LIBRARY.values():
        indicator_rows.append({
            name: _zh(indicator_spec.field(name), value) if indicator_spec.field(name).choices
            else value
            for name, value in row.items()
        })
    write("indicators.xlsx", INDICATORS, {indicator_spec.name: indicator_rows})

    weight_mistake = _write_agreements(write, people)
    levels = _performance_levels(rng, people)
    for department, *_ in DEPARTMENTS:
        name = f"actuals_{department}.xlsx"
        members = [p for p in people if p["department"] == department]
        rows, planted = _actual_rows(rng, members, levels)
        path = write(name, ACTUALS, {ACTUALS.sheets[0].name: rows})
        if planted is not None:
            mistakes.append({"file": name, "sheet": ACTUALS.sheets[0].name,
                             "cell": data_cell(ACTUALS.sheets[0], "actual", planted),
                             "employee_id": NA_MISTAKE_EMPLOYEE, "period": PERIOD,
                             "what": f"{NA_MISTAKE_EMPLOYEE} 的 {NA_MISTAKE_INDICATOR} 缺陷率 "
                                     f"{PERIOD} 实际值填成文本 “N/A” → 该员工 {PERIOD} 无法评分 / "
                                     f"actual typed as text 'N/A': employee cannot be scored"})
        if department == "行政部":
            _months_as_dates(path, ACTUALS.sheets[0])

    ratings_path = write("ratings.xlsx", RATINGS,
                         {RATINGS.sheets[0].name: _rating_rows(rng, people, levels)})
    _chinese_only_headers(ratings_path, RATINGS.sheets[0])

    write("weights.xlsx", WEIGHTS, {
        WEIGHTS.sheets[0].name: _expert_rows(rng),
        "AHP-研发": {"ids": list(AHP_RND_IDS), "matrix": _ahp_matrix()},
    })
    write("dept_targets.xlsx", DEPT_TARGETS,
          {DEPT_TARGETS.sheets[0].name: _department_target_rows(people)}, example=False)

    mistakes.append(weight_mistake)
    unscored = sorted(m["employee_id"] for m in mistakes)
    managers = [p for p in people if p["manager_id"] is None]
    result = {
        "folder": str(folder),
        "files": files,
        "period": PERIOD,
        "periods": list(PERIODS),
        "employees": len(people),
        "indicators": {k: v["name"] for k, v in INDICATOR_LIBRARY.items()},
        "mistakes": mistakes,
        "unscored": {PERIOD: unscored},
        "warnings": [f"{m['employee_id']} {indicator} {period}: 无上级评分 no supervisor rating"
                     for period in PERIODS for m in managers
                     for indicator, *_ in _agreement(m, period) if _is_rating(indicator)],
    }
    (folder / "README.txt").write_text(_readme(result), encoding="utf-8")
    return result


def _write_agreements(write, people: list[dict]) -> dict:
    """RoleKPIs for both periods plus two employees' personal KPIs; returns mistake (b)."""
    role_rows = []
    for period in (PERIOD, QUARTER):
        for family, weights in ROLE_WEIGHTS.items():
            for indicator, weight in weights.items():
                base, target, stretch = _targets(indicator, period)
                role_rows.append({"role_family": family, "period": period,
                                  "indicator_id": indicator,
                                  "weight": _typed_weight(weight, family, period),
                                  "base": base, "target": target, "stretch": stretch})
    employee_rows: list[dict] = []
    planted = None
    for person in people:
        employee_id = person["employee_id"]
        if employee_id not in (SALES_MANAGER, WEIGHT_MISTAKE_EMPLOYEE):
            continue
        for indicator, weight, base, target, stretch in _agreement(person, PERIOD):
            if employee_id == WEIGHT_MISTAKE_EMPLOYEE and indicator == WEIGHT_MISTAKE_INDICATOR:
                planted = len(employee_rows)
            employee_rows.append({"employee_id": employee_id, "period": PERIOD,
                                  "indicator_id": indicator,
                                  "weight": f"{weight:.0%}" if employee_id == SALES_MANAGER
                                  else weight,
                                  "base": base, "target": target, "stretch": stretch})
    role_spec, employee_spec = AGREEMENTS.sheets[:2]
    write("agreements.xlsx", AGREEMENTS,
          {role_spec.name: role_rows, employee_spec.name: employee_rows})
    if planted is None:
        raise RuntimeError("the demo company lost the employee whose weight carries the planted mistake")
    return {"file": "agreements.xlsx", "sheet": employee_spec.name,
            "cell": data_cell(employee_spec, "weight", planted),
            "employee_id": WEIGHT_MISTAKE_EMPLOYEE, "period": PERIOD,
            "what": f"{WEIGHT_MISTAKE_EMPLOYEE} 的个人指标权重合计 90%({WEIGHT_MISTAKE_INDICATOR} "
                    f"团队协作应为 20%,误填 10%)→ 该员工 {PERIOD} 无法评分 / personal KPI weights "
                    f"sum to 90% (ATT-02 typed 10% instead of 20%): employee cannot be scored"}


def _typed_weight(weight: float, family: str, period: str):
    """How HR typed a weight: 0.3 in a % cell, the text `25%`, or plain 20."""
    if period == QUARTER or family == "销售":
        return weight
    if family == "研发":
        return f"{round(weight * 100)}%"
    return round(weight * 100)


def _performance_levels(rng: random.Random, people: list[dict]) -> dict[str, float]:
    """Each employee's share of target: most 0.85–1.12, four far off either way."""
    levels = {p["employee_id"]: rng.uniform(0.85, 1.12) for p in people}
    for employee_id, level in zip(("E006", "E011", "E028", "E046"), (0.55, 1.4, 0.6, 0.65),
                                  strict=True):
        levels[employee_id] = level
    return levels


def _actual_value(rng: random.Random, indicator: str, target: float, level: float):
    """A realistic monthly actual around `level` × target (inverted when lower is better)."""
    info = INDICATOR_LIBRARY[indicator]
    factor = max(0.3, level + rng.uniform(-0.08, 0.08))
    value = target * factor if info["direction"] == "higher" else target / factor
    if info["method"] == "tiered":  # small counts: a month is often one more or one less
        return max(0, round(value) + rng.choice((-1, 0, 0, 1)))
    if info["unit"] == "%":
        return round(min(value, 1.0), 3)
    if info["unit"] == "分":
        return round(min(value, 100.0), 1)
    return round(value, 1)


def _full_width(text: str) -> str:
    """What an input method's full-width mode makes of digits: `62.5` → `６２．５`."""
    return text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789."})


def _actual_rows(rng: random.Random, members: list[dict], levels: dict) -> tuple[list, int | None]:
    """Monthly actuals of one department; returns the rows and the index of the N/A row."""
    rows: list[dict] = []
    planted = None
    for person in members:
        employee_id = person["employee_id"]
        for month in MONTHS:
            agreement = _agreement(person, PERIOD if month == PERIOD else QUARTER)
            for indicator, _weight, _base, target, _stretch in agreement:
                if _is_rating(indicator):
                    continue
                # Quarter targets of `sum` indicators are three months'; actuals are monthly.
                monthly = _MONTHLY_TARGETS[indicator][1] if month != PERIOD else target
                value = _actual_value(rng, indicator, monthly, levels[employee_id])
                if (employee_id, month, indicator) == (NA_MISTAKE_EMPLOYEE, PERIOD,
                                                       NA_MISTAKE_INDICATOR):
                    value, planted = "N/A", len(rows)
                rows.append({"employee_id": employee_id, "period": month,
                             "indicator_id": indicator, "actual": value,
                             "data_source": INDICATOR_LIBRARY[indicator]["data_source"],
                             "note": rng.choice(_NOTES) if rng.random() < 0.04 else None})
    # Realistic noise that must still read cleanly: full-width digits, trailing spaces.
    candidates = [r for r in rows if r["indicator_id"] in ("SAL-01", "ADM-03", "RND-01")
                  and isinstance(r["actual"], float)]
    for row in rng.sample(candidates, 3):
        row["actual"] = _full_width(f"{row['actual']:g}")
    for row in rng.sample([r for r in rows if r["actual"] != "N/A"], 3):
        row["employee_id"] += " "
    rng.choice(rows)["indicator_id"] += " "
    return rows, planted


def _half(score: float) -> float:
    return min(5.0, max(1.0, round(score * 2) / 2))


def _rating_rows(rng: random.Random, people: list[dict], levels: dict) -> list[dict]:
    """360 ratings: supervisor, 1–2 peers and self; managers have no supervisor (a warning)."""
    managers = [p["employee_id"] for p in people if p["manager_id"] is None]
    rows = []
    for period in PERIODS:
        for person in people:
            employee_id = person["employee_id"]
            if person["manager_id"] is None:
                raters = [(m, "同事") for m in managers if m != employee_id]
            else:
                colleagues = [p["employee_id"] for p in people
                              if p["department"] == person["department"]
                              and p["employee_id"] not in (employee_id, person["manager_id"])]
                peers = rng.sample(colleagues, rng.choice((1, 2)))
                raters = [(person["manager_id"], "上级"), *((p, "同事") for p in peers)]
            raters.append((employee_id, "自评"))
            center = 1.9 + 2.0 * min(levels[employee_id], 1.2)
            for indicator, *_ in _agreement(person, period):
                if not _is_rating(indicator):
                    continue
                for rater_id, relation in raters:
                    bonus = 0.4 if relation == "自评" else 0.0
                    rows.append({"employee_id": employee_id, "period": period,
                                 "indicator_id": indicator, "rater_id": rater_id,
                                 "relation": relation,
                                 "score": _half(center + bonus + rng.uniform(-0.7, 0.7)),
                                 "comment": rng.choice(_COMMENTS) if rng.random() < 0.15 else None})
    return rows


def _expert_rows(rng: random.Random) -> list[dict]:
    """Five experts score the sales indicators' importance 1–10."""
    return [{"role_family": "销售", "expert_id": f"X{expert}", "indicator_id": indicator,
             "score": min(10, max(1, importance + rng.choice((-1, 0, 0, 1))))}
            for expert in range(1, 6) for indicator, importance in _SALES_IMPORTANCE.items()]


def _ahp_matrix() -> list[list]:
    """The 研发 judgment matrix as HR types it: numbers above the diagonal, `1/2` below."""
    n = len(AHP_RND_IDS)
    matrix: list[list] = [[1] * n for _ in range(n)]
    for (i, j), value in _AHP_RND_UPPER.items():
        matrix[i][j] = value
        matrix[j][i] = 1 if value == 1 else f"1/{value}"
    return matrix


def _department_target_rows(people: list[dict]) -> list[dict]:
    """Department targets a little under the sum of individual targets (cascade covered)."""
    rows = []
    for department, *_ in DEPARTMENTS:
        members = [p for p in people if p["department"] == department]
        for period in PERIODS:
            totals: dict[str, float] = {}
            for person in members:
                for indicator, _w, _b, target, _s in _agreement(person, period):
                    if INDICATOR_LIBRARY[indicator]["aggregation"] == "sum":
                        totals[indicator] = totals.get(indicator, 0) + target
            for indicator, total in totals.items():
                step = 10 if INDICATOR_LIBRARY[indicator]["unit"] == "万元" else 1
                rows.append({"department": department, "period": period,
                             "indicator_id": indicator,
                             "target": int(total * 0.95 // step * step)})
    return rows


# ---------------------------------------------------------------------------- HR's touches


def _add_title_row(path: Path, spec, title: str) -> None:
    """Insert a merged title row above the header, as HR does before printing."""
    workbook = openpyxl.load_workbook(path)
    sheet = workbook[spec.name]
    sheet.insert_rows(1)
    last = get_column_letter(len(spec.fields))
    sheet["A1"] = title
    sheet["A1"].font = Font(name=sheet["A2"].font.name, bold=True, size=14)
    sheet["A1"].alignment = Alignment(horizontal="center", vertical="center")
    sheet.merge_cells(f"A1:{last}1")
    sheet.row_dimensions[1].height = 26
    sheet.row_dimensions[2].height = 30
    # openpyxl moves cells only: move what Excel would move with them.
    for validation in sheet.data_validations.dataValidation:
        ranges = []
        for cell_range in validation.sqref.ranges:
            moved = CellRange(cell_range.coord)
            moved.shift(row_shift=1)
            ranges.append(moved.coord)
        validation.sqref = MultiCellRange(" ".join(ranges))
    sheet.freeze_panes = "A3"
    if sheet.auto_filter.ref:
        moved = CellRange(sheet.auto_filter.ref)
        moved.shift(row_shift=1)
        sheet.auto_filter.ref = moved.coord
    sheet.print_title_rows = "2:2"
    _save_reproducibly(workbook, path)


def _chinese_only_headers(path: Path, spec) -> None:
    """Rewrite the header as Chinese labels only, as in a file retyped by hand."""
    workbook = openpyxl.load_workbook(path)
    sheet = workbook[spec.name]
    for col, field in enumerate(spec.fields, start=1):
        sheet.cell(row=1, column=col).value = field.zh
    _save_reproducibly(workbook, path)


def _months_as_dates(path: Path, spec) -> None:
    """Months typed as `2026-10` that Excel turned into the date 2026-10-01 (shown yyyy-mm)."""
    workbook = openpyxl.load_workbook(path)
    sheet = workbook[spec.name]
    col = spec.field_names.index("period") + 1
    for row in range(3, sheet.max_row + 1):  # row 1 header, row 2 example
        cell = sheet.cell(row=row, column=col)
        if isinstance(cell.value, str) and re.fullmatch(r"\d{4}-\d{2}", cell.value):
            year, month = map(int, cell.value.split("-"))
            cell.value = dt.datetime(year, month, 1)
            cell.number_format = "yyyy-mm"
    _save_reproducibly(workbook, path)


def _save_reproducibly(workbook, path: Path) -> None:
    """Save with openpyxl, then pin what it stamps with `now` (docProps, zip entry times)."""
    workbook.properties.created = _MIDNIGHT
    workbook.properties.modified = _MIDNIGHT
    buffer = io.BytesIO()
    workbook.save(buffer)  # sets properties.modified to now: patched below
    stamp = _MIDNIGHT.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp + rb"\g<2>", data)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            target.writestr(entry, data)


def _readme(result: dict) -> str:
    lines = [
        "KPI 演示公司 / demo company",
        "",
        "一家 50 人的中小企业:销售部 15 人、研发部 25 人、行政部 10 人,",
        "每个部门第一人为经理。考核周期 2026-10(月度)与 2026-Q3(季度,由 7–9 月实际值汇总)。",
        "A 50-person SME: 15 sales, 25 R&D, 10 admin; the first person of each",
        "department is its manager. Periods 2026-10 (month) and 2026-Q3 (rolled up from July–Sept).",
        "",
        "文件 Files:",
        *(f"  {name}" for name in result["files"]),
        "",
        "指标 Indicators:",
        *(f"  {k} {v}" for k, v in result["indicators"].items()),
        "",
        "故意留下的两处错误 The two planted mistakes:",
    ]
    for m in result["mistakes"]:
        lines.append(f"  {m['file']}!{m['sheet']}!{m['cell']}: {m['what']}")
    lines += [
        "",
        "预期的提醒 Expected warnings (not errors):",
        *(f"  {w}" for w in result["warnings"]),
        "",
        "其余为真实工作中常见但合法的写法:花名册上方的合并标题行、评分表只有中文表头、权重写成",
        "60% / 60 / 0.6、全角数字、编号末尾空格、行政部实际值中被 Excel 变成日期的月份。",
        "Everything else is valid, if messy the way real files are: a merged title row above the",
        "roster header, Chinese-only headers in ratings, weights typed 60% / 60 / 0.6, full-width",
        "digits, trailing spaces in IDs, months turned into dates in the admin actuals.",
        "",
        "评分类指标的目标值:岗位指标填 4(4 分即达标);E001 的个人指标留空(按满分 5 计)。",
        "Rating targets: 4 in the role KPIs (4 of 5 meets expectations); blank in E001's",
        "personal KPIs, which means the scale maximum 5.",
        "",
    ]
    return "\n".join(lines)
