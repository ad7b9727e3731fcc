"""An independent oracle for SPEC §3, and a seeded generator of companies to check it on.

Three parts, kept apart on purpose:

- `generate(seed, period)` builds a company the way HR fills the templates: openpyxl
  workbooks with the kinds' headers (bilingual, Chinese or English), weights typed `60%`,
  `60` or `0.6`, percents typed `95%`, `0.95` or as a %-formatted 0.95, numbers stored as
  text, full-width digits, months that Excel turned into dates, several actuals files,
  monthly actuals with months missing, 360 ratings by several relations (some of them
  unweighted for the role family), personal KPIs that replace the role set, clones (ties),
  employees engineered onto x.xx5 rounding ties and grade lines, and a few deliberate errors.
- `Oracle` reads the SAME xlsx files with openpyxl (never the pipeline's reader) and scores
  them from the text of SPEC §3 with `fractions.Fraction` on the typed decimals (a float
  cell by its shortest repr). The only thing it takes from the package is the header labels
  of the template kinds (`pipeline.kinds`), which SPEC §1 makes the single source of truth.
- `read_summary` / `compare` read `summary.xlsx` (`总分 Totals`, `明细 Details`,
  `未评分 Unscored`, `目标分解 Cascade`, `校准 Calibration`) and list every difference.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import openpyxl
import yaml
from builders import sheet_name, table

from pipeline.kinds import KINDS

F = Fraction
ONE = F(1)

# ============================================================================ decimals


def dec_str(x: Fraction) -> str:
    """The exact decimal text of a fraction whose denominator divides a power of ten."""
    x = F(x)
    sign = "-" if x < 0 else ""
    x = abs(x)
    k = 0
    while (10 ** k) % x.denominator:
        k += 1
        if k > 40:
            raise ValueError(f"{x} has no finite decimal expansion")
    digits = str(x.numerator * (10 ** k // x.denominator)).rjust(k + 1, "0")
    whole, frac = digits[:len(digits) - k] if k else digits, digits[len(digits) - k:] if k else ""
    frac = frac.rstrip("0")
    return sign + whole + ("." + frac if frac else "")


def quant(x: Fraction, places: int) -> Fraction:
    """Half-up to `places` decimals (x ≥ 0 in all uses here)."""
    scale = 10 ** places
    return F(math.floor(F(x) * scale + F(1, 2)), scale)


def half_up(x: Fraction, places: int) -> Fraction:
    """SPEC §3 rounding: half-up (away from zero on a tie) on the exact value."""
    scale = 10 ** places
    y = abs(F(x)) * scale
    r = F(math.floor(y + F(1, 2)), scale)
    return r if x >= 0 else -r


def exact(value: float | int) -> Fraction:
    """A typed number as the decimal the person typed: a float by its shortest repr."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return F(value)
    return F(repr(float(value)))


@dataclass(frozen=True)
class Cell:
    """A value written with a number format (e.g. a %-formatted 0.95)."""
    value: object
    number_format: str


# ============================================================================ periods

def period_months(period: str) -> list[str]:
    if "-Q" in period:
        year, q = period.split("-Q")
        return [f"{year}-{m:02d}" for m in range(3 * int(q) - 2, 3 * int(q) + 1)]
    if "-H" in period:
        year, h = period.split("-H")
        return [f"{year}-{m:02d}" for m in range(6 * int(h) - 5, 6 * int(h) + 1)]
    if len(period) == 4:
        return [f"{period}-{m:02d}" for m in range(1, 13)]
    return [period]


def is_month(period: str) -> bool:
    return len(period) == 7 and period[4] == "-" and period[5:].isdigit()


def outside_month(period: str) -> str:
    """A month outside the period (for rows that must not count)."""
    months = period_months(period)
    year, month = int(months[-1][:4]), int(months[-1][5:])
    month += 1
    if month > 12:
        year, month = year + 1, 1
    return f"{year}-{month:02d}"


# ============================================================================ SPEC §2 policy

DEFAULT_POLICY = {
    "achievement": {"cap": 1.2, "floor": 0.0, "lower_is_better": "ratio"},
    "tiered": {"base_score": 0.6, "stretch_score": 1.2},
    "rating": {"scale_max": 5},
    "rater_weights": {
        "default": {"supervisor": 0.4, "peer": 0.3, "self": 0.3},
        "销售": {"supervisor": 0.6, "self": 0.2, "customer": 0.2},
    },
    "grades": [
        {"grade": "S", "min": 1.10, "bonus": 1.5},
        {"grade": "A", "min": 1.00, "bonus": 1.2},
        {"grade": "B", "min": 0.90, "bonus": 1.0},
        {"grade": "C", "min": 0.80, "bonus": 0.8},
        {"grade": "D", "min": 0.00, "bonus": 0.0},
    ],
    "forced_distribution": None,
    "rounding": {"decimals": 2, "mode": "half_up"},
    "rollup": {"missing_months": "warn"},
    "checks": {"calibration": {"too_easy": 0.9, "too_hard": 0.1}},
}
FREE_FORM = ("rater_weights", "dimension_weights")


def merged_policy(override: dict | None) -> dict:
    """The user's keys over the defaults; a role family's rater weights replace that family's."""
    def merge(base: dict, over: dict, top: bool) -> dict:
        out = dict(base)
        for key, value in (over or {}).items():
            if top and key in FREE_FORM:
                out[key] = {**base.get(key, {}), **value}
            elif isinstance(base.get(key), dict) and isinstance(value, dict):
                out[key] = merge(base[key], value, False)
            else:
                out[key] = value
        return out
    return merge(DEFAULT_POLICY, override or {}, True)


def num(value: object) -> Fraction:
    return exact(value) if not isinstance(value, Fraction) else value


@dataclass
class Forced:
    shares: dict[str, Fraction]
    mode: str
    group: str
    min_group: int


def forced_of(raw: dict | None) -> Forced | None:
    if raw is None:
        return None
    if "shares" not in raw:  # short form: rank, every department on its own
        return Forced({str(k): num(v) for k, v in raw.items()}, "rank", "department", 0)
    return Forced({str(k): num(v) for k, v in raw["shares"].items()}, raw.get("mode", "cap"),
                  raw.get("group", "department"), int(raw.get("min_group", 10)))


# ============================================================================ generator

MONTH_PLACES = {"%": 4, "万元": 2, "件": 0, "个": 0, "次": 0, "天": 1, "小时": 1, "分": 1}

# id, name, dimension, method, direction, unit, aggregations allowed
POOL = [
    ("P01", "销售额", "业绩", "ratio", "higher", "万元", ("sum", "mean", "last")),
    ("P02", "回款率", "业绩", "ratio", "higher", "%", ("mean", "last")),
    ("P03", "产量", "业绩", "ratio", "higher", "件", ("sum",)),
    ("P04", "费用率", "业绩", "ratio", "lower", "%", ("mean", "last")),
    ("P05", "交付周期", "业绩", "ratio", "lower", "天", ("mean", "last")),
    ("P06", "缺陷数", "业绩", "ratio", "lower", "个", ("sum", "mean")),
    ("P07", "新客户数", "业绩", "tiered", "higher", "个", ("sum", "mean")),
    ("P08", "满意度", "业绩", "tiered", "higher", "分", ("mean", "last")),
    ("P09", "项目完成率", "业绩", "tiered", "higher", "%", ("mean", "last")),
    ("P10", "投诉次数", "业绩", "tiered", "lower", "次", ("sum",)),
    ("P11", "故障时长", "业绩", "tiered", "lower", "小时", ("mean", "last")),
    ("P12", "培训完成率", "能力", "pass_fail", "higher", "%", ("mean", "last")),
    ("P13", "出勤天数", "态度", "pass_fail", "higher", "天", ("sum",)),
    ("P14", "投诉率", "业绩", "pass_fail", "lower", "%", ("mean", "last")),
    ("P15", "安全事故", "业绩", "pass_fail", "lower", "次", ("sum", "last")),
    ("P16", "人效", "业绩", "ratio", "higher", "万元", ("mean", "last")),
    ("R01", "责任心", "态度", "rating", "higher", "分", ("mean", "last")),
    ("R02", "团队协作", "态度", "rating", "higher", "分", ("mean", "sum")),
    ("R03", "学习能力", "能力", "rating", "higher", "分", ("mean", "last")),
]
# Indicators for the employees engineered onto rounding ties and grade lines.
BOUNDARY_POOL = [
    ("B01", "工作量", "业绩", "ratio", "higher", "件", ("sum",)),
    ("B02", "产值", "业绩", "ratio", "higher", "万元", ("mean",)),
    ("B03", "订单数", "业绩", "ratio", "higher", "件", ("last",)),
]
# Totals the boundary employees land on exactly (x.xx5 ties, grade lines, the numbers).
# Clusters of totals with one rounded value and different exact ones (ranking is by the rounded total).
BOUNDARY_CLUSTERS = [["0.96495", "0.965", "0.96504", "0.9649999"], ["1.1", "1.10004", "1.099951", "1.09995"],
                     ["0.9", "0.90001", "0.89995", "0.9000499"], ["1", "1.00004999", "0.99995", "1.00001"]]
BOUNDARY_TOTALS = ["0.96495", "1.09995", "1.09994999999455", "0.89995", "0.8999499999", "0.9", "1", "0.8",
                   "0.79995", "1.1", "0.85005", "1.00005", "0.99995", "0.9649499999"]

ZH = {"performance": "业绩", "ability": "能力", "attitude": "态度", "ratio": "比率", "tiered": "阶梯",
      "pass_fail": "达标", "rating": "评分", "higher": "越高越好", "lower": "越低越好", "sum": "求和",
      "mean": "平均", "last": "期末", "supervisor": "上级", "peer": "同事", "self": "自评",
      "subordinate": "下属", "customer": "客户"}
DIM_CODE = {"业绩": "performance", "能力": "ability", "态度": "attitude"}
FAMILIES = ["销售", "研发", "行政", "生产", "客服"]
DEPARTMENTS = [("销售部", "销售", "客服"), ("研发部", "研发", "生产"), ("行政部", "行政", None),
               ("生产部", "生产", "研发"), ("客服部", "客服", "销售"), ("财务部", "行政", None)]
SCORES = [F(x, 2) for x in range(2, 11)]  # 1 .. 5 in halves


@dataclass
class Company:
    seed: int
    period: str
    roster: list[dict] = field(default_factory=list)
    indicators: list[dict] = field(default_factory=list)
    role_kpis: list[dict] = field(default_factory=list)
    employee_kpis: list[dict] = field(default_factory=list)
    actuals: dict[str, tuple[str, list[dict]]] = field(default_factory=dict)  # file -> (header style, rows)
    ratings: list[dict] = field(default_factory=list)
    dept_targets: list[dict] = field(default_factory=list)
    policy: dict | None = None
    intended: dict[str, str] = field(default_factory=dict)  # employee -> the rule of a planted error
    notes: list[str] = field(default_factory=list)


POLICY_VARIANTS = [
    None,
    {"forced_distribution": {"shares": {"S": 0.1, "A": 0.2, "B": 0.5, "C": 0.15, "D": 0.05}, "mode": "cap",
                             "group": "department", "min_group": 5},
     "rater_weights": {"研发": {"supervisor": 0.5, "peer": 0.2, "subordinate": 0.3},
                       "default": {"supervisor": 0.5, "self": 0.2, "peer": 0.3}}},
    {"forced_distribution": {"shares": {"S": 0.15, "A": 0.25, "B": 0.4, "C": 0.15, "D": 0.05}, "mode": "rank",
                             "group": "company"},
     "achievement": {"lower_is_better": "linear", "cap": 1.3},
     "tiered": {"base_score": 0.5, "stretch_score": 1.3}},
    {"forced_distribution": {"S": 0.1, "A": 0.2, "B": 0.5, "C": 0.15, "D": 0.05},
     "rater_weights": {"行政": {"supervisor": 0.7, "self": 0.3}, "客服": {"customer": 0.5, "supervisor": 0.5}},
     "rollup": {"missing_months": "error"}},
    {"forced_distribution": {"shares": {"S": 0.05, "A": 0.25, "B": 0.45, "C": 0.2, "D": 0.05}, "mode": "cap",
                             "group": "company"},
     "achievement": {"floor": 0.2},
     "rater_weights": {"default": {"supervisor": 0.5, "peer": 0, "self": 0.5}}},
    {"forced_distribution": {"shares": {"S": 0.1, "A": 0.25, "B": 0.35, "C": 0.3}, "mode": "rank",
                             "group": "department", "min_group": 8},
     "grades": [{"grade": "S", "min": 1.15, "bonus": 2}, {"grade": "A", "min": 1.05, "bonus": 1.3},
                {"grade": "B", "min": 0.95, "bonus": 1}, {"grade": "C", "min": 0.85, "bonus": 0.6},
                {"grade": "D", "min": 0, "bonus": 0}],
     "rater_weights": {"销售": {"supervisor": 0.5, "customer": 0.5}}},
    {"forced_distribution": {"shares": {"S": 0, "A": 0.3, "B": 0.5, "C": 0.15, "D": 0.05}, "mode": "cap",
                             "group": "department", "min_group": 10},
     "rounding": {"decimals": 1}},
    {"forced_distribution": {"shares": {"S": 0.2, "A": 0.2, "B": 0.4, "C": 0.1, "D": 0.1}, "mode": "cap",
                             "group": "department", "min_group": 1},
     "achievement": {"lower_is_better": "linear"}},
]


class Gen:
    """One company for one period, from one seed."""

    def __init__(self, seed: int, period: str, variant: int | None = None, months_too: bool = False):
        self.rng = random.Random(f"{seed}/{period}/{months_too}")
        self.seed, self.period, self.months_too = seed, period, months_too
        self.months = period_months(period)
        self.rollup = not is_month(period)
        variant = seed % len(POLICY_VARIANTS) if variant is None else variant
        self.c = Company(seed=seed, period=period, policy=POLICY_VARIANTS[variant])
        self.monthly_rows: dict[str, list[dict]] = {"role_family": [], "employee_id": []}
        self.policy = merged_policy(self.c.policy)
        self.error_months = self.policy["rollup"]["missing_months"] == "error"

    # ---------------------------------------------------------------- cell spellings
    def period_cell(self, period: str) -> object:
        if is_month(period) and self.rng.random() < 0.15:  # Excel turned 2026-10 into a date
            return dt.datetime(int(period[:4]), int(period[5:]), 1)
        if len(period) == 4 and self.rng.random() < 0.3:
            return int(period)
        return period

    def id_cell(self, employee_id: str) -> str:
        return employee_id + ("  " if self.rng.random() < 0.1 else "")

    def choice_cell(self, code: str) -> str:
        return ZH[code] if self.rng.random() < 0.8 else code

    def weight_cell(self, percent: Fraction) -> object:
        r = self.rng.random()
        if r < 0.05:
            return dec_str(percent).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}) + "％"
        if r < 0.3:
            return dec_str(percent) + ("%" if r < 0.25 else " %")
        if r < 0.6:
            return float(dec_str(percent)) if percent.denominator > 1 else int(percent)
        if r < 0.85:
            return Cell(float(dec_str(percent / 100)), "0%")
        return float(dec_str(percent / 100))

    def value_cell(self, value: Fraction, unit: str) -> object:
        r = self.rng.random()
        if unit == "%":
            if r < 0.05:  # typed on a Chinese keyboard: full-width digits and percent sign
                return dec_str(value * 100).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}) + "％"
            if r < 0.35:
                return dec_str(value * 100) + ("%" if r < 0.3 else " %")
            if r < 0.7:
                return float(dec_str(value))
            return Cell(float(dec_str(value)), "0.0%")
        text = dec_str(value)
        if r < 0.08:
            return text  # a number stored as text
        if r < 0.12 and value >= 1000:
            whole, _, frac = text.partition(".")
            return f"{int(whole):,}" + ("." + frac if frac else "")
        if r < 0.15 and value.denominator == 1:
            return unicodedata.normalize("NFKC", text).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
        return int(value) if value.denominator == 1 else float(text)

    # ---------------------------------------------------------------- library and agreements
    def library(self) -> None:
        self.ind = {}
        for iid, name, dim, method, direction, unit, aggs in POOL + BOUNDARY_POOL:
            agg = self.rng.choice(aggs)
            self.ind[iid] = {"id": iid, "method": method, "direction": direction, "unit": unit, "agg": agg}
            self.c.indicators.append({
                "indicator_id": iid, "name": name, "dimension": dim if self.rng.random() < 0.8 else DIM_CODE[dim],
                "category": "结果", "direction": self.choice_cell(direction), "method": self.choice_cell(method),
                "unit": self.rng.choice(["%", "%", "％", "百分比"]) if unit == "%" else unit,
                "aggregation": None if agg == "sum" and self.rng.random() < 0.3 else
                ZH[agg] if self.rng.random() < 0.7 else agg})

    def targets(self, iid: str, period: str) -> tuple[Fraction | None, Fraction | None, Fraction | None]:
        ind, rng = self.ind[iid], self.rng
        method, direction, unit, agg = ind["method"], ind["direction"], ind["unit"], ind["agg"]
        k = len(period_months(period)) if agg == "sum" else 1
        if method == "rating":
            return None, rng.choice([None, None, F(4), F(9, 2), F(7, 2), F(5)]), None
        if unit == "%":
            if direction == "higher":
                t = F(rng.choice(["0.8", "0.85", "0.9", "0.95", "0.6", "0.75", "0.925"]))
                b, s = t - F(rng.choice(["0.1", "0.15", "0.2"])), t + F(rng.choice(["0.05", "0.1"]))
            else:
                t = F(rng.choice(["0.02", "0.05", "0.1", "0.035", "0.2", "0.015"]))
                b, s = t * 2, t / 2
        elif unit in ("件", "个", "次"):
            if direction == "higher":
                t = F(rng.choice([5, 8, 10, 12, 20, 30])) * k
                b, s = t - max(1, t // 5), t + max(1, t // 5)
            else:
                t = F(rng.choice([2, 3, 4, 6])) * k
                b, s = t + 2 * k, t - k
        elif unit == "万元":
            t = F(rng.choice(["50", "80", "120.5", "200", "35.25", "1000"])) * k
            b, s = t * F(8, 10), t * F(12, 10)
        elif unit == "分":
            b, t, s = rng.choice([(F("3.5"), F(4), F("4.5")), (F(80), F(90), F(95)), (F(3), F(4), F(5))])
        else:  # 天, 小时: lower is better here
            t = F(rng.choice(["5", "7.5", "10", "12.5", "3.2"]))
            if direction == "higher":
                b, s = t * F(8, 10), t * F(12, 10)
            else:
                b, s = t * F(15, 10), t * F(6, 10)
        if method == "tiered":
            return b, t, s
        if method == "ratio" and rng.random() < 0.3:
            return None, t, (t if rng.random() < 0.3 else s)  # on the right side of the target, or on it
        return None, t, None

    @staticmethod
    def split_weights(rng: random.Random, n: int) -> list[Fraction]:
        """n weights in percent summing to exactly 100."""
        if n == 3 and rng.random() < 0.25:
            return [F("33.33"), F("33.33"), F("33.34")]
        if n == 4 and rng.random() < 0.3:
            return [F("12.5"), F("37.5"), F(25), F(25)]
        while True:
            cuts = sorted(rng.sample(range(1, 20), n - 1))
            parts = [b - a for a, b in zip([0] + cuts, cuts + [20])]
            if all(p >= 1 for p in parts):
                return [F(p * 5) for p in parts]

    def agreement_rows(self, key: str, value: str, indicators: list[str],
                       weights: list[Fraction] | None = None, period: str | None = None) -> list[dict]:
        """Agreement rows for the period; with `months_too`, rows for each of its months follow
        (own targets, same weights), so that a month of the quarter can be run on the same inbox."""
        weights = weights or self.split_weights(self.rng, len(indicators))
        period = period or self.period
        rows = []
        for iid, w in zip(indicators, weights):
            b, t, s = self.targets(iid, period)
            unit = self.ind[iid]["unit"]
            rows.append({key: value, "period": self.period_cell(period), "indicator_id": iid,
                         "weight": self.weight_cell(w),
                         "base": None if b is None else self.value_cell(b, unit),
                         "target": None if t is None else self.value_cell(t, unit),
                         "stretch": None if s is None else self.value_cell(s, unit),
                         "_b": b, "_t": t, "_s": s})
        if self.months_too and period == self.period and self.rollup:
            for month in self.months:
                self.monthly_rows[key] += self.agreement_rows(key, value, indicators, weights, month)
        return rows

    def families(self) -> None:
        rng = self.rng
        perf = [p[0] for p in POOL if p[3] != "rating"]
        rates = [p[0] for p in POOL if p[3] == "rating"]
        rng.shuffle(perf)
        self.family_kpis: dict[str, list[dict]] = {}
        for i, family in enumerate(FAMILIES):
            chosen = perf[3 * i:3 * i + 3] if 3 * i + 3 <= len(perf) else rng.sample(perf, 3)
            chosen = chosen[:rng.choice([1, 2, 3])] if i else chosen
            extra = [x for x in rng.sample(perf, 2) if x not in chosen][:rng.choice([0, 1])]
            nrate = rng.choice([0, 1, 1, 2]) if family != "销售" else rng.choice([1, 2])
            indicators = chosen + extra + rng.sample(rates, nrate)
            if len(indicators) < 2:
                indicators += [x for x in perf if x not in indicators][:1]
            rows = self.agreement_rows("role_family", family, indicators)
            self.family_kpis[family] = rows
        for rows in self.family_kpis.values():
            self.c.role_kpis += rows

    # ---------------------------------------------------------------- people
    def people(self) -> None:
        rng = self.rng
        n_depts = rng.randint(3, 6)
        depts = rng.sample(DEPARTMENTS, n_depts)
        sizes = [rng.choice([1, 2, 3, 5, 8, 10, 12, 15, 20]) for _ in depts]
        forced = forced_of(self.policy["forced_distribution"])
        if forced is not None and forced.group == "department" and forced.min_group <= 1:
            sizes[0] = 1  # a department of one, ranked on its own
        if forced is not None:
            sizes[-1] = 20  # and a full one
        self.emps: dict[str, dict] = {}
        self.dept_of: dict[str, list[str]] = {}
        counter = 0
        for (dept, main, other), size in zip(depts, sizes):
            head = None
            self.dept_of[dept] = []
            for j in range(size):
                counter += 1
                eid = f"E{counter:03d}"
                family = other if (other and rng.random() < 0.25) else main
                row = {"employee_id": eid, "name": f"员工{counter}", "department": dept,
                       "position": "经理" if j == 0 else "专员", "role_family": family,
                       "manager_id": head, "status": "在职" if rng.random() < 0.5 else None}
                if j == 0:
                    head = eid
                self.c.roster.append(row)
                self.emps[eid] = {"id": eid, "dept": dept, "family": family, "manager": row["manager_id"],
                                  "kpis": self.family_kpis[family], "personal": False}
                self.dept_of[dept].append(eid)

    def extras(self) -> None:
        """A leaver, sometimes a role family with no KPIs, and personal rows of another period only."""
        rng = self.rng
        dept = rng.choice(list(self.dept_of))
        head = self.dept_of[dept][0]
        self.c.roster.append({"employee_id": "L001", "name": "离职者", "department": dept, "role_family":
                              self.emps[head]["family"], "manager_id": head, "status": "离职"})
        if rng.random() < 0.4:
            self.c.roster.append({"employee_id": "N001", "name": "实习生", "department": dept, "role_family": "实习",
                                  "manager_id": head})
        other = outside_month(self.period)
        for eid in rng.sample(list(self.emps), 2):
            emp = self.emps[eid]
            if emp["personal"]:
                continue
            iid = rng.choice([r["indicator_id"] for r in emp["kpis"]])
            self.c.employee_kpis.append({"employee_id": eid, "period": other, "indicator_id": iid, "weight": "100%",
                                         "target": 1})

    def personal(self) -> None:
        """Some employees get personal KPIs (they replace the role set)."""
        rng = self.rng
        perf = [p[0] for p in POOL if p[3] != "rating"]
        rates = [p[0] for p in POOL if p[3] == "rating"]
        for eid, emp in self.emps.items():
            if rng.random() < 0.12:
                indicators = rng.sample(perf, rng.randint(2, 4)) + rng.sample(rates, rng.choice([0, 1]))
                rows = self.agreement_rows("employee_id", self.id_cell(eid), indicators)
                emp["kpis"], emp["personal"] = rows, True
                self.c.employee_kpis += rows

    def boundary_people(self) -> None:
        """Employees engineered to land exactly on rounding ties and grade lines."""
        rng = self.rng
        depts = list(self.dept_of)
        together = rng.random() < 0.5
        cluster = rng.choice(BOUNDARY_CLUSTERS) if rng.random() < 0.5 else None
        home = rng.choice(depts)
        for n in range(rng.randint(2, 4)):
            total = F(rng.choice(cluster or BOUNDARY_TOTALS))
            dept = home if together else rng.choice(depts)
            eid = f"X{self.seed}{n}"
            family = self.emps[self.dept_of[dept][0]]["family"]
            self.c.roster.append({"employee_id": eid, "name": f"边界{n}", "department": dept, "position": "专员",
                                  "role_family": family, "manager_id": self.dept_of[dept][0]})
            ids = rng.sample([b[0] for b in BOUNDARY_POOL], 2)
            rows = []
            for iid, w in zip(ids, [F(50), F(50)]):
                k = len(self.months) if self.ind[iid]["agg"] == "sum" else 1
                t = F(100) * k
                rows.append({"employee_id": eid, "period": self.period_cell(self.period), "indicator_id": iid,
                             "weight": self.weight_cell(w), "target": self.value_cell(t, "件"),
                             "_b": None, "_t": t, "_s": None})
            self.c.employee_kpis += rows
            # 0.5 × 1 + 0.5 × a2/t2 = total
            values = {ids[0]: rows[0]["_t"], ids[1]: rows[1]["_t"] * (2 * total - 1)}
            self.emps[eid] = {"id": eid, "dept": dept, "family": family, "manager": self.dept_of[dept][0],
                              "kpis": rows, "personal": True, "values": values}
            self.dept_of[dept].append(eid)

    # ---------------------------------------------------------------- actuals
    def desired(self, iid: str, b, t, s) -> Fraction:
        """A period-level actual: on a line, beyond the cap, noise off a line, or random."""
        ind, rng = self.ind[iid], self.rng
        method, direction, unit = ind["method"], ind["direction"], ind["unit"]
        places = MONTH_PLACES[unit]
        r = rng.random()
        if r < 0.18:
            return t
        if method == "ratio" and direction == "higher" and unit == "万元" and r < 0.22:
            return -quant(t / 4, places)  # a loss
        if method == "tiered" and r < 0.3:
            return b if rng.random() < 0.5 else s
        if r < 0.36:
            if direction == "higher":
                v = t * F(3, 2)
                return min(v, F(3, 2)) if unit == "%" else quant(v, places)
            return F(0) if rng.random() < 0.4 else quant(t / 2, places + 1)
        if r < 0.42 and method in ("pass_fail", "tiered", "ratio"):
            eps = F(1, 10 ** 13) if t < 10 else F(1, 10 ** 10)
            return t - eps if rng.random() < 0.5 else t + eps
        if r < 0.46 and method == "tiered":
            lo, hi = (b, t) if direction == "higher" else (t, b)
            return quant((lo + hi) / 2, places + 2)
        factor = F(rng.randint(50, 140), 100)
        v = t * factor if direction == "higher" else t * factor
        v = quant(v, places if unit != "%" else 4)
        if unit == "%":
            v = min(v, F(3, 2))
        return max(v, F(0))

    def split(self, value: Fraction, agg: str, months: list[str], unit: str) -> dict[str, Fraction]:
        """Monthly values over `months` that roll up to exactly `value`."""
        rng, k = self.rng, len(months)
        places = max(MONTH_PLACES[unit], len(dec_str(value).partition(".")[2]))
        q = F(1, 10 ** places)
        if k == 1:
            return {months[0]: value}
        if agg == "sum":
            for _ in range(20):
                shares = [rng.random() + 0.2 for _ in range(k)]
                parts = [quant(value * x / sum(shares), places) if value else F(0) for x in shares[:-1]]
                last = value - sum(parts)
                if last >= 0:
                    return dict(zip(months, parts + [last]))
            return dict(zip(months, [F(0)] * (k - 1) + [value]))
        if agg == "mean":
            if rng.random() < 0.5 or value == 0:
                return {m: value for m in months}
            for _ in range(20):
                deltas = [rng.randint(-5, 5) for _ in range(k - 1)]
                deltas.append(-sum(deltas))
                vals = [value + d * q * (10 if places else 1) for d in deltas]
                if all(v >= 0 for v in vals) and (unit != "%" or all(v <= F(3, 2) for v in vals)):
                    return dict(zip(months, vals))
            return {m: value for m in months}
        # last: the latest month holds the value
        out = {}
        for m in months[:-1]:
            out[m] = max(F(0), quant(value * F(rng.randint(60, 130), 100), places))
            if unit == "%":
                out[m] = min(out[m], F(3, 2))
        out[months[-1]] = value
        return out

    def actual_plan(self, emp: dict) -> dict[str, dict]:
        """indicator -> {'period': v} or {'months': {month: v}} (for every non-rating KPI)."""
        plan = {}
        for row in emp["kpis"]:
            iid = row["indicator_id"]
            ind = self.ind[iid]
            if ind["method"] == "rating":
                continue
            value = emp.get("values", {}).get(iid)
            if value is None:
                value = self.desired(iid, row["_b"], row["_t"], row["_s"])
            if not self.rollup:
                plan[iid] = {"period": value}
                continue
            if self.rng.random() < (0 if self.months_too else 0.15):
                plan[iid] = {"period": value}
                continue
            months = list(self.months)
            if self.rng.random() < (0.04 if self.error_months else 0.1 if self.months_too else 0.3):
                drop = self.rng.sample(months, self.rng.randint(1, len(months) - 1))
                months = [m for m in months if m not in drop]
            plan[iid] = {"months": self.split(value, ind["agg"], months, ind["unit"])}
        return plan

    def rating_plan(self, emp: dict) -> dict[str, dict]:
        """indicator -> {period or month: [(relation, score), ...]}."""
        rng, plan = self.rng, {}
        weights = self.policy["rater_weights"].get(emp["family"], self.policy["rater_weights"]["default"])
        counted = [r for r, w in weights.items() if w and w > 0]
        for row in emp["kpis"]:
            iid = row["indicator_id"]
            if self.ind[iid]["method"] != "rating":
                continue
            if not self.rollup or rng.random() < (0 if self.months_too else 0.35):
                events = [self.period]
            else:
                events = list(self.months)
                if rng.random() < (0.1 if self.months_too else 0.3) and not self.error_months:
                    drop = rng.sample(events, rng.randint(1, len(events) - 1))
                    events = [m for m in events if m not in drop]
            plan[iid] = {}
            for event in events:
                relations = []
                if rng.random() < 0.85:
                    relations.append("supervisor")
                if rng.random() < 0.8:
                    relations.append("self")
                relations += ["peer"] * rng.choice([0, 1, 2, 3])
                relations += ["subordinate"] * rng.choice([0, 0, 1, 2])
                relations += ["customer"] * rng.choice([0, 0, 1, 2])
                if not any(r in counted for r in relations):
                    relations.append(rng.choice(counted))
                if rng.random() < 0.3:
                    same = rng.choice(SCORES[4:])
                    scores = [same] * len(relations)
                else:
                    scores = [rng.choice(SCORES[2:]) for _ in relations]
                plan[iid][event] = list(zip(relations, scores))
        return plan

    def clones(self) -> None:
        """Copy some employees' plans within a department: ties at quota lines."""
        rng = self.rng
        for ids in self.dept_of.values():
            plain = [e for e in ids if not self.emps[e]["personal"]]
            for eid in plain[1:]:
                if rng.random() < 0.3:
                    src = rng.choice([e for e in plain if e != eid and self.emps[e]["family"] ==
                                      self.emps[eid]["family"]] or [eid])
                    if src != eid and "plan" in self.emps[src]:
                        self.emps[eid]["plan"] = self.emps[src]["plan"]
                        self.emps[eid]["rplan"] = self.emps[src]["rplan"]

    def plans(self) -> None:
        for emp in self.emps.values():
            emp["plan"] = self.actual_plan(emp)
            emp["rplan"] = self.rating_plan(emp)

    # ---------------------------------------------------------------- planted errors
    def plant_errors(self) -> None:
        rng = self.rng
        candidates = [e for e in self.emps.values() if not e["id"].startswith("X")]
        rng.shuffle(candidates)
        kinds = ["percent_slip", "rating_unweighted", "missing_actual", "missing_rating", "ratio_stretch_side",
                 "tiers_not_monotonic", "zero_target", "out_of_range", "not_half_step"]
        if self.policy["achievement"]["lower_is_better"] == "ratio":
            kinds.append("negative_actual_lower_ratio")
        if self.rollup:
            kinds.append("period_beside_months")
        start = self.seed * 3 % len(kinds)  # successive seeds walk through every kind
        kinds = [kinds[(start + j) % len(kinds)] for j in range(3)] + rng.sample(kinds, rng.randint(0, 1))
        for kind in dict.fromkeys(kinds):
            for emp in candidates:
                if emp["id"] in self.c.intended or any(emp["plan"] is e.get("plan") for e in self.emps.values()
                                                       if e is not emp):
                    continue
                if self._plant(kind, emp):
                    self.c.intended[emp["id"]] = kind
                    break

    def _plant(self, kind: str, emp: dict) -> bool:
        rng = self.rng
        personal = [r for r in emp["kpis"] if emp["personal"]]
        if kind in ("tiers_not_monotonic", "zero_target"):  # in a personal agreement
            method = "tiered" if kind == "tiers_not_monotonic" else "ratio"
            rows = [r for r in personal if self.ind[r["indicator_id"]]["method"] == method]
            if not rows:
                return False
            row, unit = rows[0], self.ind[rows[0]["indicator_id"]]["unit"]
            if kind == "zero_target":
                row["target"], row["stretch"] = 0, None
            else:  # base and target swapped
                row["base"], row["target"] = self.value_cell(row["_t"], unit), self.value_cell(row["_b"], unit)
            return True
        if kind in ("out_of_range", "not_half_step"):
            if not emp["rplan"]:
                return False
            iid = next(iter(emp["rplan"]))
            events = dict(emp["rplan"][iid])
            event = rng.choice(list(events))
            pairs = list(events[event])
            bad = rng.choice([F(6), F(1, 2), F(11, 2)]) if kind == "out_of_range" else rng.choice([F("3.3"), F("4.25")])
            pairs[0] = (pairs[0][0], bad)
            events[event] = pairs
            emp["rplan"] = {**emp["rplan"], iid: events}
            return True
        if kind == "negative_actual_lower_ratio":
            ids = [i for i in emp["plan"] if self.ind[i]["method"] == "ratio" and self.ind[i]["direction"] == "lower"]
            if not ids:
                return False
            entry = dict(emp["plan"][ids[0]])
            if "period" in entry:
                entry["period"] = F(-1)
            else:
                months = dict(entry["months"])
                months[rng.choice(list(months))] = F(-1)
                entry["months"] = months
            emp["plan"] = {**emp["plan"], ids[0]: entry}
            return True
        if kind == "period_beside_months":
            ids = [i for i, e in emp["plan"].items() if "months" in e]
            if not ids:
                return False
            entry = dict(emp["plan"][ids[0]])
            entry["beside"] = next(iter(entry["months"].values()))
            emp["plan"] = {**emp["plan"], ids[0]: entry}
            return True
        if kind == "ratio_stretch_side":  # only in a personal agreement (a role row would take the family out)
            rows = [r for r in emp["kpis"] if emp["personal"] and self.ind[r["indicator_id"]]["method"] == "ratio"]
            if not rows:
                return False
            row = rows[0]
            wrong = row["_t"] * F(9, 10) if self.ind[row["indicator_id"]]["direction"] == "higher" else row["_t"] * 2
            row["stretch"] = self.value_cell(quant(wrong, 6), self.ind[row["indicator_id"]]["unit"])
            return True
        if kind == "percent_slip":
            for row in emp["kpis"]:
                iid = row["indicator_id"]
                ind = self.ind[iid]
                if ind["unit"] != "%" or ind["method"] == "rating" or row["_t"] > F(3, 2):
                    continue
                entry = dict(emp["plan"][iid])
                key = "period" if "period" in entry else None
                if key:
                    v = max(entry["period"], F("0.2"))
                    entry["period"] = ("slip", v * 100)
                else:
                    months = dict(entry["months"])
                    m = rng.choice(list(months))
                    months[m] = ("slip", max(months[m], F("0.2")) * 100)
                    entry["months"] = months
                emp["plan"] = {**emp["plan"], iid: entry}
                return True
            return False
        if kind == "missing_actual":
            ids = [i for i in emp["plan"]]
            if not ids:
                return False
            emp["plan"] = {k: v for k, v in emp["plan"].items() if k != ids[0]}
            return True
        weights = self.policy["rater_weights"].get(emp["family"], self.policy["rater_weights"]["default"])
        if not emp["rplan"]:
            return False
        iid = next(iter(emp["rplan"]))
        if kind == "missing_rating":
            emp["rplan"] = {k: v for k, v in emp["rplan"].items() if k != iid}
            return True
        unweighted = [r for r in ("supervisor", "peer", "self", "subordinate", "customer")
                      if not weights.get(r)]
        if not unweighted:
            return False
        rel = rng.choice(unweighted)
        events = {ev: [(rel, score) for _, score in pairs] for ev, pairs in emp["rplan"][iid].items()}
        emp["rplan"] = {**emp["rplan"], iid: events}
        return True

    # ---------------------------------------------------------------- rows
    def emit(self) -> None:
        rng = self.rng
        files: dict[str, list[dict]] = {}
        perf = [p[0] for p in POOL if p[3] != "rating"]
        for eid, emp in self.emps.items():
            fname = f"actuals_{emp['dept']}.xlsx" if rng.random() < 0.85 else "actuals_补录.xlsx"
            scatter = rng.random() < 0.2  # this employee's months come from two files
            if rng.random() < 0.05:  # an actual for an indicator the employee has no KPI for
                spare = [i for i in perf if i not in emp["plan"] and all(r["indicator_id"] != i for r in emp["kpis"])]
                if spare:
                    files.setdefault(fname, []).append({"employee_id": eid, "period": self.period_cell(self.period),
                                                        "indicator_id": spare[0], "actual": 7})
            for iid, entry in emp["plan"].items():
                unit = self.ind[iid]["unit"]
                cells = [(self.period, entry["period"])] if "period" in entry else list(entry["months"].items())
                if "beside" in entry:  # a period-level actual typed beside the monthly ones
                    cells.append((self.period, entry["beside"]))
                for period, value in cells:
                    if scatter and rng.random() < 0.5:
                        fname_row = "actuals_补录.xlsx" if fname != "actuals_补录.xlsx" else "actuals_系统导出.xlsx"
                    else:
                        fname_row = fname
                    if isinstance(value, tuple):  # a planted slip: the bare number of points
                        cell = int(value[1]) if value[1].denominator == 1 else float(dec_str(value[1]))
                    else:
                        cell = self.value_cell(value, unit)
                    files.setdefault(fname_row, []).append({
                        "employee_id": self.id_cell(eid), "period": self.period_cell(period), "indicator_id": iid,
                        "actual": cell, "data_source": rng.choice(["CRM", "ERP", "Jira", None])})
            for iid, events in emp["rplan"].items():
                peers = [e for e in self.dept_of[emp["dept"]] if e != eid] or ["PX1"]
                for period, pairs in events.items():
                    used = set()
                    for n, (relation, score) in enumerate(pairs):
                        if relation == "supervisor":
                            rater = emp["manager"] or "CEO01"
                        elif relation == "self":
                            rater = eid
                        elif relation == "customer":
                            rater = f"C{n:02d}"
                        elif relation == "subordinate":
                            rater = f"SUB{n:02d}"
                        else:
                            rater = peers[n % len(peers)] if n < len(peers) else f"P{n:02d}"
                        if rater in used or (relation != "self" and rater == eid):
                            rater = f"R{n:02d}"
                        used.add(rater)
                        self.c.ratings.append({
                            "employee_id": self.id_cell(eid), "period": self.period_cell(period), "indicator_id": iid,
                            "rater_id": rater, "relation": self.choice_cell(relation),
                            "score": dec_str(score) if self.rng.random() < 0.1 else
                            float(score) if score.denominator > 1 else int(score)})
        # Rows of another period: never counted (one of them is not even a number).
        other = outside_month(self.period)
        some = list(self.emps)[:3]
        extra = files.setdefault("actuals_其他周期.xlsx", [])
        for n, eid in enumerate(some):
            extra.append({"employee_id": eid, "period": other, "indicator_id": "P01",
                          "actual": "N/A" if n == 0 else 9999})
        styles = ["both", "both", "zh", "en"]
        for fname, rows in sorted(files.items()):
            if rng.random() < 0.5:  # rows in no particular order (the latest month is not the last row)
                rng.shuffle(rows)
            self.c.actuals[fname] = (rng.choice(styles), rows)
        if rng.random() < 0.5:
            rng.shuffle(self.c.ratings)

    def department_targets(self) -> None:
        rng = self.rng
        for dept, ids in self.dept_of.items():
            carried: dict[str, list[Fraction]] = {}
            for eid in ids:
                for row in self.emps[eid]["kpis"]:
                    if self.ind[row["indicator_id"]]["method"] != "rating":
                        carried.setdefault(row["indicator_id"], []).append(row["_t"])
            for iid in rng.sample(sorted(carried), min(len(carried), rng.randint(1, 3))):
                ts = carried[iid]
                agg = self.ind[iid]["agg"]
                base = sum(ts) if agg == "sum" else sum(ts) / len(ts)
                factor = rng.choice([F(1), F(1), F(9, 10), F(11, 10), F(5, 4)])
                places = MONTH_PLACES[self.ind[iid]["unit"]] + 2
                target = quant(base * factor, places)
                if target <= 0:
                    continue
                self.c.dept_targets.append({"department": dept, "period": self.period_cell(self.period),
                                            "indicator_id": iid,
                                            "target": self.value_cell(target, self.ind[iid]["unit"])})

    def build(self) -> Company:
        self.library()
        self.families()
        self.people()
        self.personal()
        self.boundary_people()
        self.plans()
        self.clones()
        self.plant_errors()
        self.extras()
        self.emit()
        self.department_targets()
        self.c.role_kpis += self.monthly_rows["role_family"]
        self.c.employee_kpis += self.monthly_rows["employee_id"]
        for rows in (self.c.role_kpis, self.c.employee_kpis):
            for row in rows:
                for key in ("_b", "_t", "_s"):
                    row.pop(key, None)
        return self.c


def generate(seed: int, period: str, variant: int | None = None, months_too: bool = False) -> Company:
    return Gen(seed, period, variant, months_too).build()


# ============================================================================ writing

TEMPLATES = Path(__file__).resolve().parents[1] / "workbooks" / "templates"


def write_table(path: Path, sheets: dict[str, list[list]], title: str | None = None,
                rng: random.Random | None = None, template: str | None = None) -> Path:
    """Rows (header first) into a new workbook, or under the example row of the blank template
    `template` (its header, example row, instructions and _meta kept). With `rng`: a blank row
    here and there and sometimes an extra column of HR's own."""
    if template is not None:
        workbook = openpyxl.load_workbook(TEMPLATES / f"{template}.xlsx")
    else:
        workbook = openpyxl.Workbook()
        workbook.remove(workbook.active)
    for name, rows in sheets.items():
        if template is not None:
            sheet = workbook[name]
            rows, r0 = rows[1:], 3
        else:
            sheet = workbook.create_sheet(name)
            r0 = 1
            if title:
                sheet.cell(row=1, column=1, value=title)
                r0 = 3
        extra = rng is not None and rng.random() < 0.2
        if rng is not None:
            spaced = []
            for n, row in enumerate(rows):
                spaced.append(row)
                if n and rng.random() < 0.03:
                    spaced.append([None] * len(row))
            rows = spaced
        for r, row in enumerate(rows, start=r0):
            if extra and any(v is not None for v in row):
                row = list(row) + ["核对人 Checked by" if r == r0 and template is None else "张三"]
            for c, value in enumerate(row, start=1):
                if value is None:
                    continue
                if isinstance(value, Cell):
                    cell = sheet.cell(row=r, column=c, value=value.value)
                    cell.number_format = value.number_format
                else:
                    cell = sheet.cell(row=r, column=c, value=value)
                    if isinstance(value, dt.datetime):
                        cell.number_format = "yyyy-mm"
    workbook.save(path)
    return path


def write_company(company: Company, inbox: Path, policy_dir: Path) -> Path | None:
    """The inbox (one workbook per kind, actuals in several files) and the policy file, if any."""
    inbox.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"layout/{company.seed}/{company.period}")

    def kind_template(kind: str) -> str | None:  # half the files are the blank template, filled in
        return kind if rng.random() < 0.5 else None

    write_table(inbox / "roster.xlsx", {sheet_name("roster"): table("roster", company.roster)},
                title=f"{company.period} 员工花名册", rng=rng, template=kind_template("roster"))
    write_table(inbox / "indicators.xlsx", {sheet_name("indicators"): table("indicators", company.indicators)},
                rng=rng, template=kind_template("indicators"))
    write_table(inbox / "agreements.xlsx", {
        sheet_name("agreements", 0): table("agreements", company.role_kpis, 0),
        sheet_name("agreements", 1): table("agreements", company.employee_kpis, 1, style="en")},
        rng=rng, template=kind_template("agreements"))
    for fname, (style, rows) in company.actuals.items():
        write_table(inbox / fname, {sheet_name("actuals"): table("actuals", rows, style=style)}, rng=rng,
                    template=kind_template("actuals"))
    write_table(inbox / "ratings.xlsx", {sheet_name("ratings"): table("ratings", company.ratings, style="zh")},
                rng=rng, template=kind_template("ratings"))
    if company.dept_targets:
        write_table(inbox / "dept_targets.xlsx",
                    {sheet_name("dept_targets"): table("dept_targets", company.dept_targets)}, rng=rng,
                    template=kind_template("dept_targets"))
    if company.policy is None:
        return None
    policy_dir.mkdir(parents=True, exist_ok=True)
    path = policy_dir / "policy.yaml"
    path.write_text(yaml.safe_dump(company.policy, allow_unicode=True, sort_keys=False), "utf-8")
    return path


# ============================================================================ the oracle: reading


def fold(text: object) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()


def _header_map(kind: str, index: int) -> dict[str, str]:
    out = {}
    for f in KINDS[kind].tables[index].fields:
        for label in (f.header, f.zh, f.en, f.name, f"{f.zh} {f.en}"):
            out[fold(label)] = f.name
    return out


@dataclass
class Raw:
    """One cell as typed: its value, number format and where it is."""
    value: object
    number_format: str
    where: str

    @property
    def empty(self) -> bool:
        return self.value is None or (isinstance(self.value, str) and not self.value.strip())


SHEETS = {("roster", 0), ("indicators", 0), ("agreements", 0), ("agreements", 1), ("actuals", 0), ("ratings", 0),
          ("dept_targets", 0)}


def read_inbox(inbox: Path) -> dict[tuple[str, int], list[dict[str, Raw]]]:
    """Every template sheet in the inbox, rows as {field: Raw}; the header row found by its labels."""
    by_name = {sheet_name(kind, index): (kind, index) for kind, index in SHEETS}
    tables: dict[tuple[str, int], list[dict[str, Raw]]] = {key: [] for key in SHEETS}
    for path in sorted(inbox.glob("*.xlsx")):
        book = openpyxl.load_workbook(path, data_only=True)
        for sheet in book.worksheets:
            if sheet.title not in by_name:
                continue
            kind, index = by_name[sheet.title]
            labels = _header_map(kind, index)
            rows = list(sheet.iter_rows())
            header_at, columns = None, {}
            for r, row in enumerate(rows):
                found = {c: labels[fold(cell.value)] for c, cell in enumerate(row)
                         if cell.value is not None and fold(cell.value) in labels}
                if len(found) >= 2:
                    header_at, columns = r, found
                    break
            if header_at is None:
                continue
            for row in rows[header_at + 1:]:
                record = {name: Raw(row[c].value, row[c].number_format, f"{path.name}!{sheet.title}!{row[c].coordinate}")
                          for c, name in columns.items() if c < len(row)}
                if all(raw.empty for raw in record.values()):
                    continue
                first = row[min(columns)].value if min(columns) < len(row) else None
                if isinstance(first, str) and fold(first).startswith(("示例", "example")):
                    continue  # the template's example row (SPEC §1: its ID starts with 示例/EXAMPLE)
                tables[(kind, index)].append(record)
    return tables


def text(raw: Raw | None) -> str | None:
    if raw is None or raw.empty:
        return None
    if isinstance(raw.value, (int, float)) and not isinstance(raw.value, bool):
        value = raw.value
        return str(int(value)) if float(value).is_integer() else repr(value)
    return unicodedata.normalize("NFKC", str(raw.value)).strip()


def number(raw: Raw | None) -> Fraction | None:
    """A typed number, exactly: floats by shortest repr, '95%' as 0.95, text with separators."""
    if raw is None or raw.empty:
        return None
    value = raw.value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return exact(value)
    s = unicodedata.normalize("NFKC", str(value)).strip().replace(",", "")
    if s.endswith("%"):
        return F(s[:-1].strip()) / 100
    return F(s)


def is_bare(raw: Raw) -> bool:
    """A number typed without a percent sign and not %-formatted."""
    if isinstance(raw.value, str):
        return not unicodedata.normalize("NFKC", raw.value).strip().endswith("%")
    return "%" not in (raw.number_format or "")


def weight(raw: Raw) -> Fraction:
    """`60`, `60%` and a %-formatted 0.6 all mean 60% (a bare 0.6 too)."""
    value = number(raw)
    if isinstance(raw.value, str) and unicodedata.normalize("NFKC", raw.value).strip().endswith("%"):
        return value
    if "%" in (raw.number_format or ""):
        return value
    return value / 100 if value > 1 else value


def period_of(raw: Raw | None) -> str | None:
    if raw is None or raw.empty:
        return None
    value = raw.value
    if isinstance(value, dt.datetime):
        return f"{value.year}-{value.month:02d}"
    s = text(raw).upper()
    return s


def code_of(raw: Raw | None, default: str | None = None) -> str | None:
    s = text(raw)
    if s is None:
        return default
    back = {fold(v): k for k, v in ZH.items()} | {"在职": "active", "离职": "left"}
    return back.get(fold(s), fold(s))


# ============================================================================ the oracle: scoring


@dataclass
class Line:
    indicator_id: str
    weight: Fraction
    base: Fraction | None
    target: Fraction | None
    stretch: Fraction | None
    actual: Fraction | None = None
    raw: Fraction | None = None
    achievement: Fraction | None = None
    weighted: Fraction | None = None
    target_raw: Raw | None = None
    invalid: bool = False  # the agreement row itself is in error


@dataclass
class Person:
    employee_id: str
    department: str
    family: str
    lines: list[Line] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rules of errors that keep the employee unscored
    total: Fraction | None = None
    rounded: Fraction | None = None
    score_grade: str | None = None
    grade: str | None = None
    bonus: Fraction | None = None


class Oracle:
    """SPEC §3 on the typed decimals, from the input files alone."""

    def __init__(self, inbox: Path, period: str, policy: dict | None):
        self.t = read_inbox(inbox)
        self.period = period
        self.months = period_months(period)
        self.rollup = not is_month(period)
        self.policy = merged_policy(policy)
        p = self.policy
        self.cap, self.floor = num(p["achievement"]["cap"]), num(p["achievement"]["floor"])
        self.lower_mode = p["achievement"]["lower_is_better"]
        self.base_score, self.stretch_score = num(p["tiered"]["base_score"]), num(p["tiered"]["stretch_score"])
        self.scale_max = num(p["rating"]["scale_max"])
        self.grades = [(g["grade"], num(g["min"]), num(g["bonus"])) for g in p["grades"]]
        self.decimals = int(p["rounding"]["decimals"])
        self.forced = forced_of(p["forced_distribution"])
        self.missing_error = p["rollup"]["missing_months"] == "error"
        cal = p["checks"]["calibration"]
        self.too_easy, self.too_hard = num(cal["too_easy"]), num(cal["too_hard"])
        self.stats: Counter = Counter()  # what this company exercised (for the coverage test)
        # What SPEC says is reported: months missing (employee, indicator), missing supervisor ratings
        # (employee, indicator; None where only some months lack one), ties kept at a quota line.
        self.missing_months: set[tuple[str, str]] = set()
        self.no_supervisor: dict[tuple[str, str], bool | None] = {}
        self.fd_ties: set[str] = set()
        self._load()
        self.people: dict[str, Person] = {}
        self._score()

    # ---------------------------------------------------------------- inputs
    def _load(self) -> None:
        t = self.t
        self.roster = {}
        for r in t[("roster", 0)]:
            eid = text(r["employee_id"])
            self.roster[eid] = {"department": text(r["department"]), "family": text(r["role_family"]),
                                "status": code_of(r.get("status"), "active")}
        self.library = {}
        for r in t[("indicators", 0)]:
            self.library[text(r["indicator_id"])] = {
                "method": code_of(r["method"]), "direction": code_of(r["direction"]),
                "unit": text(r.get("unit")), "agg": code_of(r.get("aggregation"), "sum")}
        scope = {self.period, *self.months}
        self.role, self.personal = {}, {}
        for key, index, store in (("role_family", 0, self.role), ("employee_id", 1, self.personal)):
            for r in t[("agreements", index)]:
                if period_of(r["period"]) != self.period:
                    continue
                store.setdefault(text(r[key]), []).append(r)
        self.actuals: dict[tuple[str, str], dict[str, Raw]] = {}
        for r in t[("actuals", 0)]:
            period = period_of(r["period"])
            if period not in scope:
                continue
            self.actuals.setdefault((text(r["employee_id"]), text(r["indicator_id"])), {})[period] = r["actual"]
        self.ratings: dict[tuple[str, str], dict[str, list[tuple[str, Fraction]]]] = {}
        for r in t[("ratings", 0)]:
            period = period_of(r["period"])
            if period not in scope:
                continue
            key = (text(r["employee_id"]), text(r["indicator_id"]))
            self.ratings.setdefault(key, {}).setdefault(period, []).append(
                (code_of(r["relation"]), number(r["score"])))
        self.dept_targets = [(text(r["department"]), text(r["indicator_id"]), number(r["target"]))
                             for r in t[("dept_targets", 0)] if period_of(r["period"]) == self.period]

    def is_percent(self, iid: str) -> bool:
        return (self.library[iid]["unit"] or "").strip() in ("%", "％", "百分比")

    # ---------------------------------------------------------------- SPEC §3
    def achievement(self, method: str, direction: str, a: Fraction, line: Line) -> Fraction:
        b, t, s = line.base, line.target, line.stretch
        if method == "ratio":
            if direction == "higher":
                return a / t
            if self.lower_mode == "linear":
                return 2 - a / t
            return self.cap if a == 0 else t / a
        if method == "pass_fail":
            return ONE if (a >= t if direction == "higher" else a <= t) else F(0)
        if method == "tiered":
            bs, ss = self.base_score, self.stretch_score
            if direction == "lower":  # the same with the order reversed: mirror the axis
                a, b, t, s = -a, -b, -t, -s
            if a < b:
                return F(0)
            if a <= t:
                return bs + (1 - bs) * (a - b) / (t - b)
            if a <= s:
                return 1 + (ss - 1) * (a - t) / (s - t)
            return ss
        raise AssertionError(method)

    def rolled_actual(self, person: Person, iid: str) -> Fraction | None:
        cells = self.actuals.get((person.employee_id, iid), {})
        agg = self.library[iid]["agg"]
        if self.rollup and self.period in cells and any(m in cells for m in self.months):
            person.problems.append("period_beside_months")  # SPEC §3: an error naming both cells
            return None
        if self.period in cells or not self.rollup:
            raw = cells.get(self.period)
            if self.rollup:
                self.stats["period_level_actual"] += 1
            if raw is None:
                person.problems.append("missing_actual")
                return None
            return self._checked(person, iid, [raw])
        present = [m for m in self.months if m in cells]
        self.stats[f"rollup_{agg}"] += 1
        if 0 < len(present) < len(self.months):
            self.stats["missing_months"] += 1
            self.missing_months.add((person.employee_id, iid))
        if not present:
            person.problems.append("missing_actual")
            return None
        if len(present) < len(self.months) and self.missing_error:
            person.problems.append("missing_months_error")
            return None
        values = self._checked(person, iid, [cells[m] for m in present], many=True)
        if values is None:
            return None
        if agg == "sum":
            return sum(values, F(0))
        if agg == "mean":
            return sum(values, F(0)) / len(values)
        return values[-1]

    def _checked(self, person: Person, iid: str, raws: list[Raw], many: bool = False):
        """SPEC §3 scale slips: a bare number above 1.5 beside a fraction (≤ 1.5) on a percent indicator."""
        values = [number(r) for r in raws]
        line = next(line for line in person.lines if line.indicator_id == iid)
        if self.is_percent(iid) and line.target is not None:
            limit = F(3, 2)
            actual_slip = line.target <= limit and any(v > limit and is_bare(r) for v, r in zip(values, raws))
            target_slip = line.target > limit and is_bare(line.target_raw) and any(v <= limit for v in values)
            if actual_slip or target_slip:
                person.problems.append("percent_slip")
                return None
        ind = self.library[iid]
        if ind["method"] == "ratio" and ind["direction"] == "lower" and self.lower_mode == "ratio" and \
                any(v < 0 for v in values):  # SPEC §3: an error naming the cell
            person.problems.append("negative_actual_lower_ratio")
            return None
        return values if many else values[0]

    def rating(self, person: Person, iid: str) -> Fraction | None:
        events = self.ratings.get((person.employee_id, iid), {})
        weights = self.policy["rater_weights"].get(person.family, self.policy["rater_weights"]["default"])
        weights = {k: num(v) for k, v in weights.items() if v is not None and num(v) > 0}
        if self.rollup and self.period in events and any(m in events for m in self.months):
            # SPEC states this error for actuals; for ratings it is silent and the same rule is applied
            person.problems.append("period_beside_months")
            return None
        if self.period in events:
            chosen = [self.period]
        else:
            chosen = [m for m in self.months if m in events] if self.rollup else []
        if not chosen:
            person.problems.append("missing_rating")
            return None
        self.stats["ratings_by_month" if chosen[0] != self.period and self.rollup else "ratings_by_period"] += 1
        lacking = [not any(relation == "supervisor" for relation, _ in events[e]) for e in chosen]
        self.no_supervisor[(person.employee_id, iid)] = all(lacking) if all(lacking) or not any(lacking) else None
        monthly = []
        for event in chosen:
            by_relation: dict[str, list[Fraction]] = {}
            for relation, score in events[event]:
                if not 1 <= score <= 5:  # SPEC §1/§3: 1–5, halves allowed; a validation error
                    person.problems.append("out_of_range")
                    return None
                if (score * 2).denominator != 1:
                    person.problems.append("not_half_step")
                    return None
                by_relation.setdefault(relation, []).append(score)
            counted = {r: sum(s, F(0)) / len(s) for r, s in by_relation.items() if r in weights}
            if set(by_relation) - set(counted):
                self.stats["unweighted_relation_shown"] += 1
            if not counted:
                person.problems.append("rating_unweighted")
                return None
            wsum = sum(weights[r] for r in counted)
            monthly.append(sum(weights[r] * m for r, m in counted.items()) / wsum)
        if self.library[iid]["agg"] == "last":
            return monthly[-1]
        # mean; a rating is never summed over months (sum, the library's default, means mean here)
        return sum(monthly, F(0)) / len(monthly)

    def grade_of(self, rounded_percent: Fraction) -> tuple[str, Fraction]:
        value = rounded_percent / 100
        for grade, minimum, bonus in self.grades:
            if value >= minimum:
                return grade, bonus
        return self.grades[-1][0], self.grades[-1][2]

    def _score(self) -> None:
        for eid, info in self.roster.items():
            person = Person(eid, info["department"], info["family"])
            if info["status"] != "active":
                person.problems.append("left")
                self.people[eid] = person
                continue
            rows = self.personal.get(eid) or self.role.get(info["family"]) or []
            if not rows:
                person.problems.append("no_agreement")
            for r in rows:
                person.lines.append(Line(text(r["indicator_id"]), weight(r["weight"]), number(r.get("base")),
                                         number(r.get("target")), number(r.get("stretch")),
                                         target_raw=r.get("target")))
            for line in person.lines:
                ind = self.library[line.indicator_id]
                if ind["method"] == "ratio":  # SPEC §3: errors naming the cell, never a division by zero
                    if line.target is None or line.target <= 0:
                        person.problems.append("zero_target" if line.target == 0 else "negative_target")
                        line.invalid = True
                        continue
                    if line.stretch is not None and (line.stretch < line.target if ind["direction"] == "higher"
                                                     else line.stretch > line.target):
                        person.problems.append("ratio_stretch_side")
                        line.invalid = True
                        continue
                if ind["method"] == "tiered":  # SPEC §3: b, t, s must be monotonic
                    b, t, s_ = line.base, line.target, line.stretch
                    if None in (b, t, s_) or not (b < t < s_ if ind["direction"] == "higher" else b > t > s_):
                        person.problems.append("tiers_not_monotonic" if None not in (b, t, s_) else "missing_tiers")
                        line.invalid = True
                        continue
                if ind["method"] == "rating":
                    r = self.rating(person, line.indicator_id)
                    if r is None:
                        continue
                    line.actual = r
                    line.raw = r / (line.target if line.target is not None else self.scale_max)
                else:
                    a = self.rolled_actual(person, line.indicator_id)
                    if a is None:
                        continue
                    line.actual = a
                    line.raw = self.achievement(ind["method"], ind["direction"], a, line)
                line.achievement = min(max(line.raw, self.floor), self.cap)
                method = ind["method"]
                self.stats[f"method_{method}_{ind['direction']}"] += 1
                if line.raw == 1:
                    self.stats["at_target"] += 1
                if line.raw > self.cap:
                    self.stats["above_cap"] += 1
                if line.raw < self.floor:
                    self.stats["below_floor"] += 1
                if method == "tiered" and line.actual in (line.base, line.stretch):
                    self.stats["tier_line"] += 1
                if line.actual is not None and line.target is not None and line.actual != line.target and \
                        abs(line.actual - line.target) < F(1, 10 ** 9):
                    self.stats["float_noise_off_target"] += 1
                line.weighted = line.weight * line.achievement
            if not person.problems:
                person.total = sum((line.weighted for line in person.lines), F(0))
                person.rounded = half_up(person.total * 100, self.decimals)
                person.score_grade, _ = self.grade_of(person.rounded)
                if (person.total * 100 * 10 ** self.decimals).denominator == 2:
                    self.stats["rounding_tie_x5"] += 1
                if any(person.rounded == m * 100 for _, m, _ in self.grades):
                    self.stats["on_grade_line"] += 1
                person.grade = person.score_grade
            self.people[eid] = person
        self._forced()
        for person in self.people.values():
            if person.grade != person.score_grade:
                self.stats[f"fd_moved_{self.forced.mode}"] += 1
            if person.grade is not None:
                person.bonus = next(b for g, _, b in self.grades if g == person.grade)
        self._cascade()
        self._calibration()

    def shown(self, rounded: Fraction) -> str:
        """A rounded total as displayed: exactly `decimals` places."""
        whole, _, frac = dec_str(rounded).partition(".")
        return whole + ("." + frac.ljust(self.decimals, "0") if self.decimals else "")

    # ---------------------------------------------------------------- forced distribution
    def _forced(self) -> None:
        fd = self.forced
        if fd is None:
            return
        scored = [p for p in self.people.values() if p.total is not None]
        if fd.group == "company":
            groups = [scored]
        else:
            by_dept: dict[str, list[Person]] = {}
            for p in scored:
                by_dept.setdefault(p.department, []).append(p)
            groups, pool = [], []
            for members in by_dept.values():
                (pool if len(members) < fd.min_group else groups).append(members)
            if pool:
                groups.append([p for members in pool for p in members])
        order = [g for g, _, _ in self.grades]
        for members in groups:
            n = len(members)
            cumulative, quotas = F(0), []
            for g in order:
                cumulative += fd.shares.get(g, F(0))
                quotas.append(math.floor(cumulative * n + F(1, 2)))
            members = sorted(members, key=lambda p: -p.rounded)
            self.stats[f"fd_group_{min(n, 20)}"] += 1
            for q in quotas[:-1]:
                if 0 < q < n and members[q - 1].rounded == members[q].rounded:
                    self.stats["fd_tie_at_quota_line"] += 1
            if fd.mode == "rank":
                for p in members:
                    rank = 1 + sum(1 for q in members if q.rounded > p.rounded)
                    p.grade = next((g for g, q in zip(order, quotas) if rank <= q), order[-1])
                for k, q in enumerate(quotas[:-1]):
                    holders = [p for p in members if order.index(p.grade) <= k]
                    if len(holders) > q:
                        self.fd_ties.add(self.shown(holders[-1].rounded))
                continue
            index = {p.employee_id: order.index(p.score_grade) for p in members}
            for k in range(len(order) - 1):
                holders = [p for p in members if index[p.employee_id] <= k]
                q = quotas[k]
                if len(holders) <= q:
                    continue
                keep = q
                if q > 0:
                    line = holders[q - 1].rounded
                    while keep < len(holders) and holders[keep].rounded == line:
                        keep += 1
                    if keep > q:
                        self.fd_ties.add(self.shown(line))
                for p in holders[keep:]:
                    index[p.employee_id] = k + 1
            for p in members:
                p.grade = order[index[p.employee_id]]

    # ---------------------------------------------------------------- cascade and calibration
    def _cascade(self) -> None:
        """Per department target: Σ individual targets (sum) or their mean (mean, last) vs the department's."""
        self.cascade = {}
        for dept, iid, target in self.dept_targets:
            # SPEC is silent on who counts: every active employee of the department who carries the
            # indicator (scored or not) for the targets, except agreement rows that are themselves in
            # error; the actuals that are valid for the period.
            carriers = [p for p in self.people.values() if p.department == dept]
            ts = [line.target for p in carriers for line in p.lines if line.indicator_id == iid and not line.invalid]
            acts = [line.actual for p in carriers for line in p.lines
                    if line.indicator_id == iid and line.actual is not None]
            # The department actual is not defined by SPEC; checked only where every carrier's actual
            # is valid (the pipeline also rolls up the months present under missing_months: error and
            # counts the actuals of employees it could not score).
            complete = len(acts) == len(ts) and not any(
                line.invalid for p in carriers for line in p.lines if line.indicator_id == iid)
            if not ts:
                self.cascade[(dept, iid)] = {"employees": 0}
                continue
            agg = self.library[iid]["agg"]
            individual = sum(ts, F(0)) if agg == "sum" else sum(ts, F(0)) / len(ts)
            actual = (sum(acts, F(0)) if agg == "sum" else sum(acts, F(0)) / len(acts)) if acts else None
            lower = self.library[iid]["direction"] == "lower"
            coverage = (target / individual if individual else None) if lower else individual / target
            self.cascade[(dept, iid)] = {"employees": len(ts), "department_target": target,
                                         "individual_targets": individual, "coverage": coverage,
                                         "actual": actual if complete else "unchecked"}

    def _calibration(self) -> None:
        """Per indicator: the share of scored employees whose unclipped achievement is at least 1."""
        self.calibration = {}
        for p in self.people.values():
            if p.total is None:
                continue
            for line in p.lines:
                entry = self.calibration.setdefault(line.indicator_id, [0, 0])
                entry[0] += 1
                entry[1] += line.raw >= 1


# ============================================================================ the pipeline's output


C_DEPARTMENT, C_INDICATOR, C_EMPLOYEES = "部门\nDepartment", "指标编号\nIndicator ID", "人数\nEmployees"
C_INDIVIDUAL, C_COVERAGE, C_ACTUAL = "个人目标合计\nΣ individual targets", "覆盖率\nCoverage", "部门实际\nDepartment actual"
C_REACHED, C_SHARE, C_FLAG = "达成 100% 人数\nReached 100%", "达成比例\nShare", "判断\nAssessment"


def read_sheet(book, name: str, header_row: int = 1) -> list[dict]:
    rows = list(book[name].iter_rows(values_only=True))
    header = rows[header_row - 1]
    return [dict(zip(header, row)) for row in rows[header_row:] if any(v is not None for v in row)]


def read_summary(path: Path) -> dict:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    out = {"totals": {r["employee_id"]: r for r in read_sheet(book, "总分 Totals")},
           "details": {(r["employee_id"], r["indicator_id"]): r for r in read_sheet(book, "明细 Details")},
           "unscored": {r["employee_id"]: r for r in read_sheet(book, "未评分 Unscored")}}
    cascade = read_sheet(book, "目标分解 Cascade", header_row=5)
    out["cascade"] = {(r[C_DEPARTMENT], r[C_INDICATOR]): r for r in cascade if r.get(C_INDICATOR)}
    calibration = read_sheet(book, "校准 Calibration", header_row=5)
    out["calibration"] = {r[C_INDICATOR]: r for r in calibration if r.get(C_EMPLOYEES) is not None}
    warnings = list(book["警告 Warnings"].iter_rows(min_row=5, values_only=True))
    out["findings"] = [{"rule": row[1], "employee": row[5], "period": row[6], "en": row[8]}
                       for row in warnings if row and row[1]]
    book.close()
    return out


def close(got: object, want: Fraction | None, rel: float = 0.0) -> bool:
    if want is None:
        return got is None
    if not isinstance(got, (int, float)):
        return False
    w = float(want)
    return got == w or abs(got - w) <= 1e-12 + rel * abs(w)


def compare_reported(oracle: Oracle, got: dict) -> list[str]:
    """What SPEC §3 says is reported: missing months, a missing supervisor rating, ties at a quota line."""
    import re

    out = []
    scored = {e for e, p in oracle.people.items() if p.total is not None}
    findings = [f for f in got["findings"] if f["period"] == oracle.period]
    if not oracle.missing_error:
        got_missing = {(f["employee"], re.search(r"indicator (\S+)", f["en"]).group(1)) for f in findings
                       if f["rule"] == "missing_months" and f["employee"] in scored}
        want = {x for x in oracle.missing_months if x[0] in scored}
        for x in sorted(want - got_missing):
            out.append(f"{x[0]}/{x[1]}: months missing but no missing_months warning")
        for x in sorted(got_missing - want):
            out.append(f"{x[0]}/{x[1]}: missing_months warning, but the oracle sees every month")
    got_super = {(f["employee"], re.search(r"indicator (\S+?)\.?$", f["en"]).group(1)) for f in findings
                 if f["rule"] == "no_supervisor_rating"}
    for key, lacking in sorted(oracle.no_supervisor.items()):
        if key[0] not in scored or lacking is None:
            continue
        if lacking and key not in got_super:
            out.append(f"{key[0]}/{key[1]}: no supervisor rating, but no no_supervisor_rating warning")
        if not lacking and key in got_super:
            out.append(f"{key[0]}/{key[1]}: no_supervisor_rating warning, but a supervisor rated")
    got_ties = {re.search(r"tied at (\S+)", f["en"]).group(1) for f in findings if f["rule"] == "forced_tie"}
    if got_ties != oracle.fd_ties:
        out.append(f"forced-distribution ties reported at {sorted(got_ties)}, the oracle keeps ties over a quota at "
                   f"{sorted(oracle.fd_ties)}")
    return out


def compare(oracle: Oracle, got: dict, *, check_reasons: bool = True) -> list[str]:
    """Every difference between the oracle and summary.xlsx, one line each."""
    out = []
    for eid, p in sorted(oracle.people.items()):
        row = got["totals"].get(eid)
        if row is None:
            out.append(f"{eid}: missing from Totals")
            continue
        if p.total is None:
            if row["total"] is not None:
                out.append(f"{eid}: oracle unscored ({p.problems}) but Totals has total {row['total']!r} "
                           f"grade {row['grade']}")
            elif eid not in got["unscored"]:
                out.append(f"{eid}: unscored but not in the Unscored sheet")
            elif check_reasons and got["unscored"][eid]["rule"] not in p.problems:
                out.append(f"{eid}: Unscored rule {got['unscored'][eid]['rule']!r}, oracle expects {p.problems}")
            continue
        if row["total"] is None:
            reason = got["unscored"].get(eid, {})
            out.append(f"{eid}: oracle scores {float(p.total)!r} ({dec_str(p.rounded)}) but the pipeline left it "
                       f"unscored: {reason.get('rule')} {reason.get('reason_en')!r} at {reason.get('where')}")
            continue
        if not close(row["total"], p.total):
            out.append(f"{eid}: total {row['total']!r} != {float(p.total)!r} (exact {p.total})")
        if row["total_rounded"] != float(p.rounded):
            out.append(f"{eid}: total_rounded {row['total_rounded']!r} != {dec_str(p.rounded)} (exact total "
                       f"{p.total} = {float(p.total * 100)!r}%)")
        if row.get("score_grade") != p.score_grade:
            out.append(f"{eid}: score_grade {row.get('score_grade')!r} != {p.score_grade!r} "
                       f"(rounded {dec_str(p.rounded)})")
        if row["grade"] != p.grade:
            out.append(f"{eid}: grade {row['grade']!r} != {p.grade!r} (score grade {p.score_grade}, "
                       f"rounded {dec_str(p.rounded)}, department {p.department})")
        if row["bonus"] != float(p.bonus):
            out.append(f"{eid}: bonus {row['bonus']!r} != {float(p.bonus)!r}")
        for line in p.lines:
            d = got["details"].get((eid, line.indicator_id))
            if d is None:
                out.append(f"{eid}/{line.indicator_id}: missing from Details")
                continue
            for col, want, rel in (("weight", line.weight, 0), ("target", line.target, 1e-15),
                                   ("actual", line.actual, 1e-14), ("achievement", line.achievement, 0),
                                   ("weighted_score", line.weighted, 0), ("achievement_raw", line.raw, 0)):
                if col == "target" and want is None:
                    continue
                if not close(d.get(col), want, rel):
                    out.append(f"{eid}/{line.indicator_id}: {col} {d.get(col)!r} != {float(want)!r} (exact {want})")
    out += compare_reported(oracle, got)
    extra = set(got["totals"]) - set(oracle.people)
    if extra:
        out.append(f"Totals has employees the oracle does not score: {sorted(extra)}")
    for (dept, iid), want in sorted(oracle.cascade.items()):
        row = got["cascade"].get((dept, iid))
        if row is None:
            out.append(f"cascade {dept}/{iid}: missing")
            continue
        if row[C_EMPLOYEES] != want["employees"]:
            out.append(f"cascade {dept}/{iid}: employees {row[C_EMPLOYEES]!r} != {want['employees']}")
        if not want["employees"]:
            continue
        for col, key in ((C_INDIVIDUAL, "individual_targets"), (C_COVERAGE, "coverage"), (C_ACTUAL, "actual")):
            if want[key] == "unchecked":
                continue
            if not close(row[col], want[key], 1e-14):
                out.append(f"cascade {dept}/{iid}: {key} {row[col]!r} != {want[key] and float(want[key])!r} "
                           f"(exact {want[key]})")
    for iid, (n, reached) in sorted(oracle.calibration.items()):
        row = got["calibration"].get(iid)
        if row is None:
            out.append(f"calibration {iid}: missing")
            continue
        if (row[C_EMPLOYEES], row[C_REACHED]) != (n, reached):
            out.append(f"calibration {iid}: employees/reached {row[C_EMPLOYEES]}/{row[C_REACHED]} != {n}/{reached}")
        elif not close(row[C_SHARE], F(reached, n)):
            out.append(f"calibration {iid}: share {row[C_SHARE]!r} != {reached}/{n}")
        elif n >= 5:  # SPEC: above too_easy → target too low, below too_hard → too high (5: the pipeline's minimum)
            share = F(reached, n)
            want = "目标偏低" if share > oracle.too_easy else "目标偏高" if share < oracle.too_hard else "正常"
            if not str(row[C_FLAG]).startswith(want):
                out.append(f"calibration {iid}: flag {row[C_FLAG]!r}, share {reached}/{n} expects {want}")
    return out
