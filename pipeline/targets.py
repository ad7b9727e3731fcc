"""Targets from history: next period's base / target / stretch, proposed from what people reached.

Seed 004 sets targets from past data so that about 80% of employees reach the base, 50% the
target and 20% the stretch; seed 002 sets the next target at the last three months' average ×
growth. `propose_targets` reads the current results of earlier periods from `OUT/history.sqlite`
and writes a filled agreements template for HR to review, each row with a `依据 Basis` text
saying how its numbers were found.

- Percentile (default): per role family and indicator, each employee's mean actual over the
  window (the `window` periods of P's length before P); base / target / stretch = the value
  reached by at least 80% / 50% / 20% of those employees: nearest rank (the ⌈p·n⌉-th value) on
  the means sorted best first (descending when higher is better, ascending when lower is).
- Growth: the mean of the last 3 periods with actuals × (1 + g) is the target; the base is that
  mean itself (what was already reached), the stretch the mean × (1 + 2g). A role family's mean
  of a period is the average over its employees; a personal agreement uses the employee's own.
  Pass a negative g for lower-is-better indicators.
- Same period last year: the window is the single period one year before P.

Role rows: the role families and indicators of the latest earlier period's role agreements, with
their weights. Personal agreements (employees whose latest rows came from the EmployeeKPIs sheet)
get the same percentiles as their role family for each indicator, or their own growth. Rating
(360) indicators and indicators without actuals in the window keep the latest agreement's values.
Values are rounded half-up to 2 decimals, 4 for percent units (the indicator library's unit).
"""

from __future__ import annotations

import json
import math
from contextlib import closing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pandas as pd

from pipeline import history
from pipeline.exact import half_up, typed
from pipeline.findings import BilingualError
from pipeline.outputs import DETAILS_SHEET
from pipeline.periods import Period

# (field, share of employees that reach it)
TIERS = (("base", Fraction(8, 10)), ("target", Fraction(5, 10)), ("stretch", Fraction(2, 10)))
GROWTH_PERIODS = 3
DEFAULT_WINDOW = 12
BASIS_HEADER = "依据\nBasis"
BASIS_WIDTH = 60
PERCENT_UNITS = {"%", "％", "百分比", "百分率", "percent", "pct"}
PERSONAL_SHEET_NAMES = ("EmployeeKPIs", "个人指标")
_LENGTHS = {"month": ("个月", "months"), "quarter": ("个季度", "quarters"), "half": ("个半年", "halves"),
            "year": ("年", "years")}


class NoHistory(BilingualError):
    """Nothing to propose from: no database, no earlier period, or no actuals (exit 1)."""


@dataclass
class Proposal:
    """The written file and what it holds."""

    path: Path
    role_rows: int
    personal_rows: int
    proposed: int  # rows whose numbers come from history
    kept: int  # rows that keep the latest agreement's values (ratings, no actuals)
    periods: list[str] = field(default_factory=list)


def default_path(out_dir: Path, period: Period | str) -> Path:
    return Path(out_dir) / f"targets-{period}.xlsx"


# ------------------------------------------------------------------------------ reading

def _read_results(out_dir: Path, period: Period, window: int, same_period: bool) -> tuple[pd.DataFrame, list[str], str]:
    """(current results of the used periods and of the latest earlier one, used periods, latest)."""
    con = history.connect(out_dir, create=False)
    if con is None:
        raise NoHistory(f"{out_dir} 中没有历史数据库({history.DB_NAME}),无法提出目标。先用 kpi run … --out {out_dir} 运行。",
                        f"No history database ({history.DB_NAME}) in {out_dir}: nothing to propose targets from. "
                        f"Run kpi run … --out {out_dir} first.")
    with closing(con):
        current = dict(con.execute("SELECT period, run_id FROM current_runs").fetchall())
        before = history._same_length_before(current, period)
        if not before:
            raise NoHistory(f"历史数据库中没有 {period} 之前同长度周期的正式结果,无法提出目标。",
                            f"The history holds no final results of periods like {period} before it: nothing to "
                            "propose targets from.")
        if same_period:
            last_year = period.last_year().text
            used = [last_year] if last_year in current else []
        else:
            used = [p for p in before if period.steps_after(Period.of(p)) <= window]
        latest = before[-1]
        runs = [current[p] for p in dict.fromkeys([*used, latest])]
        marks = ",".join("?" * len(runs))
        frame = pd.read_sql_query(
            "SELECT period, employee_id, role_family, indicator_id, weight, base, target, stretch, actual, source "
            f"FROM results WHERE run_id IN ({marks}) ORDER BY rowid", con, params=runs)
    return frame, used, latest


def _details(out_dir: Path, latest: str) -> pd.DataFrame:
    """The latest earlier run's Details: each row's direction, method and agreement cell."""
    path = Path(out_dir) / latest / "summary.xlsx"
    wanted = ["employee_id", "indicator_id", "method", "direction", "indicator_name", "agreement_source"]
    try:
        frame = pd.read_excel(path, sheet_name=DETAILS_SHEET, engine="calamine", dtype=object)
    except Exception:  # moved, damaged or from an older kpi: the facts then come from the library or defaults
        return pd.DataFrame(columns=wanted)
    for name in wanted:
        if name not in frame.columns:
            frame[name] = None
    frame = frame[wanted]
    frame["employee_id"] = frame["employee_id"].astype(str)
    frame["indicator_id"] = frame["indicator_id"].astype(str)
    return frame


def _library_path(out_dir: Path, latest: str) -> Path | None:
    """The indicator library the latest earlier run read (from its manifest), if still there."""
    try:
        manifest = json.loads((Path(out_dir) / latest / "audit" / "manifest.json").read_text("utf-8"))
        for entry in manifest.get("inputs", []):
            if entry.get("kind") == "indicators" and Path(entry.get("path", "")).is_file():
                return Path(entry["path"])
    except (OSError, ValueError, AttributeError):
        pass
    return None


def read_library(path: Path) -> pd.DataFrame:
    """An indicator library's rows (indicator_id, name, direction, method, unit); empty if unreadable."""
    from pipeline.policy import parse_policy
    from pipeline.reader import read_workbook
    from pipeline.validate import validate

    columns = ["indicator_id", "name", "direction", "method", "unit"]
    try:
        workbook = read_workbook(Path(path))
        if workbook.kind != "indicators":
            return pd.DataFrame(columns=columns)
        indicators = validate([workbook], parse_policy("")).indicators
    except Exception:  # a library that cannot be read only costs the units: values get 2 decimals
        return pd.DataFrame(columns=columns)
    for name in columns:
        if name not in indicators.columns:
            indicators[name] = None
    return indicators[columns]


def indicator_facts(details: pd.DataFrame, library: pd.DataFrame) -> pd.DataFrame:
    """Per indicator: direction and method (as last scored, else the library's), unit, name."""
    scored = details.drop_duplicates("indicator_id").set_index("indicator_id")
    known = library.drop_duplicates("indicator_id").set_index("indicator_id")
    ids = list(dict.fromkeys([*scored.index, *known.index]))
    facts = pd.DataFrame(index=pd.Index(ids, name="indicator_id"))
    for name, scored_name in (("direction", "direction"), ("method", "method"), ("name", "indicator_name")):
        first = scored[scored_name].reindex(ids) if len(scored) else pd.Series(None, index=ids, dtype=object)
        second = known[name].reindex(ids) if len(known) else pd.Series(None, index=ids, dtype=object)
        facts[name] = first.where(first.notna(), second)
    facts["unit"] = known["unit"].reindex(ids) if len(known) else None
    return facts


def decimals_for(unit: object) -> int:
    """2 decimals, 4 for a percent unit (a rate kept as a fraction: 1.5% is 0.015)."""
    return 4 if isinstance(unit, str) and unit.strip().casefold() in PERCENT_UNITS else 2


# ------------------------------------------------------------------------------ computing

def nearest_rank(count: int, share: Fraction) -> int:
    """The 1-based rank, best first, of the value reached by at least `share` of `count` people."""
    return max(1, math.ceil(count * share))


def _exact_mean(values) -> Fraction:
    values = list(values)
    return sum((typed(v) for v in values), Fraction(0)) / len(values)


def percentile_tiers(means: pd.DataFrame, lower: bool) -> dict[str, tuple[Fraction, str]]:
    """base / target / stretch of one group: (exact mean of the employee at the nearest rank, who).

    `means`: one row per employee with `mean` (float, for sorting) and `values` (their actuals)."""
    ordered = means.sort_values(["mean", "employee_id"], ascending=[lower, True], kind="stable")
    picked = {}
    for name, share in TIERS:
        row = ordered.iloc[nearest_rank(len(ordered), share) - 1]
        picked[name] = (_exact_mean(row["values"]), row["employee_id"])
    return picked


def growth_tiers(mean: Fraction, growth: Fraction) -> dict[str, Fraction]:
    return {"base": mean, "target": mean * (1 + growth), "stretch": mean * (1 + 2 * growth)}


def _group_growth_mean(rows: pd.DataFrame) -> tuple[Fraction, list[str]]:
    """The mean over the last 3 periods (with actuals) of the group's average actual per period."""
    periods = sorted(set(rows["period"]), key=lambda p: Period.of(p).position)[-GROWTH_PERIODS:]
    chosen = rows[rows["period"].isin(periods)]
    per_period = chosen.groupby("period")["actual"].mean()
    approximate = float(per_period.mean())
    if len(chosen) <= 200 or _close_to_tie(approximate):
        exact = [_exact_mean(chosen.loc[chosen["period"] == p, "actual"]) for p in periods]
        return sum(exact, Fraction(0)) / len(exact), periods
    return Fraction(approximate), periods


def _close_to_tie(value: float) -> bool:
    """Whether float noise could decide a half-up rounding of `value` (at 2 to 6 decimals)."""
    for decimals in range(2, 7):
        scaled = abs(value) * 10 ** decimals
        if abs(scaled - math.floor(scaled) - 0.5) < 1e-6:
            return True
    return False


# ------------------------------------------------------------------------------ the proposal

def _span(used: list[str], shape: str) -> tuple[str, str]:
    zh, en = _LENGTHS[shape]
    if not used:
        return "无", "none"
    if len(used) == 1:
        return used[0], used[0]
    return f"{used[0]}–{used[-1]} 共 {len(used)} {zh}", f"{used[0]}–{used[-1]}, {len(used)} {en}"


def _number(value: Fraction | None, decimals: int) -> float | None:
    return None if value is None else float(half_up(value, decimals))


def _copied(latest_row: dict) -> dict:
    return {k: (None if pd.isna(latest_row.get(k)) else float(latest_row[k])) for k in ("base", "target", "stretch")}


def propose_targets(out_dir: Path, period: Period | str, *, window: int = DEFAULT_WINDOW, method: str = "percentile",
                    growth: float = 0.0, same_period: bool = False, out_path: Path | None = None,
                    library: Path | None = None) -> Proposal:
    """Propose next period's agreements from the history of `out_dir` and write them to `out_path`
    (default OUT/targets-<period>.xlsx). NoHistory when nothing can be proposed."""
    from pipeline.kinds import AGREEMENTS
    from pipeline.templates import write_template

    out_dir = Path(out_dir)
    period = Period.of(period)
    results, used, latest = _read_results(out_dir, period, window, same_period)
    details = _details(out_dir, latest)
    library_path = library or _library_path(out_dir, latest)
    facts = indicator_facts(details, read_library(library_path) if library_path else pd.DataFrame(
        columns=["indicator_id", "name", "direction", "method", "unit"]))
    shape = period.kind
    g = typed(growth)

    # Who had a personal agreement in the latest period: their rows came from the EmployeeKPIs sheet.
    sources = details["agreement_source"].astype(str)
    personal_ids = set(details.loc[sources.str.contains("|".join(PERSONAL_SHEET_NAMES), regex=True), "employee_id"])
    now = results[results["period"] == latest].copy()
    now["personal"] = now["employee_id"].isin(personal_ids)
    now = now[now["role_family"].notna() | now["personal"]]

    rating = set(facts.index[facts["method"] == "rating"])
    history_rows = results[results["period"].isin(used) & results["actual"].notna()
                           & ~results["indicator_id"].isin(rating) & (results["source"] != "360")]
    history_rows = history_rows[history_rows["role_family"].notna()]
    groups = history_rows.groupby(["role_family", "indicator_id"], sort=False)
    span_zh, span_en = _span(used, shape)
    if same_period:
        span_zh, span_en = f"去年同期 {span_zh}", f"same period last year {span_en}"
    else:
        span_zh, span_en = f"近 {window} {_LENGTHS[shape][0]}内 {span_zh}", f"last {window} {_LENGTHS[shape][1]}: {span_en}"

    group_values: dict[tuple, tuple[dict, str, str] | None] = {}

    def for_group(family: str, indicator: str):
        key = (family, indicator)
        if key in group_values:
            return group_values[key]
        if key not in groups.indices:
            group_values[key] = None
            return None
        rows = history_rows.iloc[groups.indices[key]]
        lower = facts["direction"].get(indicator) == "lower"
        if method == "growth":
            mean, periods = _group_growth_mean(rows)
            tiers = growth_tiers(mean, g)
            how_zh = (f"{_span(periods, shape)[0]} 岗位平均 {_plain(mean)} × (1 + {growth:g}) 为目标;"
                      f"基础 = 平均值,冲刺 = 平均值 × (1 + 2×{growth:g})")
            how_en = (f"role-family average of {_span(periods, shape)[1]} = {_plain(mean)} × (1 + {growth:g}) "
                      f"is the target; base = the average, stretch = average × (1 + 2×{growth:g})")
        else:
            per = rows.groupby("employee_id", sort=True)["actual"]
            means = pd.DataFrame({"mean": per.mean(), "values": per.agg(list)}).reset_index()
            picked = percentile_tiers(means, lower)
            tiers = {k: v for k, (v, _) in picked.items()}
            count = len(means)
            how_zh = (f"{span_zh},{count} 人各自平均实际值:基础/目标/冲刺 = 至少 80%/50%/20% 的人达到的值"
                      f"(第 {'/'.join(str(nearest_rank(count, s)) for _, s in TIERS)} 名,"
                      f"{'越低越好' if lower else '越高越好'})")
            how_en = (f"{span_en}, {count} employees' mean actuals: base/target/stretch = values reached by at "
                      f"least 80%/50%/20% (ranks {'/'.join(str(nearest_rank(count, s)) for _, s in TIERS)}, "
                      f"{'lower' if lower else 'higher'} is better)")
        if method == "growth" and same_period:
            how_zh, how_en = f"去年同期:{how_zh}", f"same period last year: {how_en}"
        group_values[key] = (tiers, how_zh, how_en)
        return group_values[key]

    def personal_growth(employee: str, indicator: str):
        rows = history_rows[(history_rows["employee_id"] == employee) & (history_rows["indicator_id"] == indicator)]
        if rows.empty:
            return None
        mean, periods = _group_growth_mean(rows)
        return (growth_tiers(mean, g),
                f"本人 {_span(periods, shape)[0]} 平均 {_plain(mean)} × (1 + {growth:g}) 为目标;基础 = 平均值,"
                f"冲刺 = 平均值 × (1 + 2×{growth:g})",
                f"own average of {_span(periods, shape)[1]} = {_plain(mean)} × (1 + {growth:g}) is the target; "
                f"base = the average, stretch = average × (1 + 2×{growth:g})")

    role_rows: list[dict] = []
    personal_rows: list[dict] = []
    role_notes: list[str] = []
    personal_notes: list[str] = []
    proposed = kept = 0
    for is_personal, owner in ((False, "role_family"), (True, "employee_id")):
        chosen = now[now["personal"] == is_personal].drop_duplicates([owner, "indicator_id"])
        for record in chosen.to_dict("records"):
            indicator = record["indicator_id"]
            decimals = decimals_for(facts["unit"].get(indicator) if "unit" in facts else None)
            found = None
            if indicator not in rating and record.get("source") != "360":
                if is_personal and method == "growth":
                    found = personal_growth(record["employee_id"], indicator)
                elif record.get("role_family") is not None:
                    found = for_group(record["role_family"], indicator)
            if found is None:
                values = _copied(record)
                why = ("评分类指标" if indicator in rating or record.get("source") == "360"
                       else f"{span_zh}无实际值")
                why_en = ("rating indicator" if indicator in rating or record.get("source") == "360"
                          else f"no actuals in {span_en}")
                note = f"{why}:沿用 {latest} 协议的值\nBasis: {why_en}; kept from the {latest} agreement"
                kept += 1
            else:
                tiers, how_zh, how_en = found
                values = {k: _number(v, decimals) for k, v in tiers.items()}
                note = f"{how_zh}\nBasis: {how_en}"
                if is_personal and method != "growth":
                    note = f"按岗位类别 {record['role_family']}:{note}"
                if facts["method"].get(indicator) == "tiered" and not _ordered(values, facts["direction"].get(indicator)):
                    note += " ⚠ 三档未拉开,请调整 tiers not apart: adjust before use"
                if pd.isna(facts["direction"].get(indicator)):
                    note += " (方向未知,按越高越好 direction unknown: taken as higher is better)"
                proposed += 1
            row = {owner: record[owner], "period": period.text, "indicator_id": indicator,
                   "weight": None if pd.isna(record.get("weight")) else float(record["weight"]), **values}
            (personal_rows if is_personal else role_rows).append(row)
            (personal_notes if is_personal else role_notes).append(note)
    if not proposed:
        raise NoHistory(f"{span_zh}:没有可用的实际值,无法提出目标(评分类指标不从历史提出)。",
                        f"{span_en}: no actuals to propose targets from (rating indicators are not proposed "
                        "from history).")
    path = Path(out_path) if out_path else default_path(out_dir, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_template(AGREEMENTS, path, {"RoleKPIs": role_rows, "EmployeeKPIs": personal_rows}, example=False,
                   notes={"RoleKPIs": (BASIS_HEADER, BASIS_WIDTH, role_notes),
                          "EmployeeKPIs": (BASIS_HEADER, BASIS_WIDTH, personal_notes)})
    return Proposal(path, len(role_rows), len(personal_rows), proposed, kept, used)


def _plain(value: Fraction) -> str:
    return format(half_up(value, 4).normalize(), "f")


def _ordered(values: dict, direction: object) -> bool:
    b, t, s = values.get("base"), values.get("target"), values.get("stretch")
    if b is None or t is None or s is None:
        return False
    return b > t > s if direction == "lower" else b < t < s
