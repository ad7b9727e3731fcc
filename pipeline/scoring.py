"""Scoring (SPEC §3): vectorised pandas over clean frames; knows nothing about Excel.

Full precision is kept throughout; only the displayed total is rounded, half-up, and the
grade comes from that rounded total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from pipeline.findings import Finding, finding
from pipeline.normalize import period_months
from pipeline.policy import Policy

DETAIL_COLUMNS = ["employee_id", "period", "indicator_id", "weight", "base", "target", "stretch", "actual",
                  "achievement", "weighted_score", "source"]
# Below this many employees on an indicator, a share reaching 100% says little: no flag.
CALIBRATION_MIN_EMPLOYEES = 5
TOTAL_COLUMNS = ["employee_id", "period", "total", "total_rounded", "grade", "bonus"]
# Two values this close (relative) are equal for pass_fail and for the tiered base line: a
# rolled-up mean of three monthly 10% rates is 0.10000000000000002 and must meet a 10% target
# (Excel and LibreOffice compare at about 15 significant digits too).
EQUAL_RTOL = 1e-12
# pandas 3 always copies on write: a shallow copy of a frame is then as safe as a deep one.
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


# ------------------------------------------------------------------------------ numbers

def half_up(value: float, decimals: int = 2) -> Decimal:
    """Half-up rounding as HR expects it (0.125 → 0.13), robust to floats just below a tie.

    The float is first read at 10 significant digits (0.96495 is stored as 0.964949999…),
    then quantised as a Decimal with ROUND_HALF_UP. Never Python's or NumPy's half-to-even.
    """
    exact = Decimal(format(float(value), ".10g"))
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def rounded_percent(total: float, decimals: int = 2) -> Decimal:
    """The displayed total: 0.96495 → 96.50 (percent, half-up)."""
    return half_up(float(total) * 100, decimals)


def grade_for(total_rounded: Decimal, policy: Policy) -> tuple[str, float]:
    """First grade whose minimum the rounded total reaches (grades run from high to low)."""
    grades, bonuses = grades_for(pd.Series([float(total_rounded)]), policy)
    return str(grades.iloc[0]), float(bonuses.iloc[0])


def grades_for(total_rounded: pd.Series, policy: Policy) -> tuple[pd.Series, pd.Series]:
    """(grade, bonus) per rounded total in percent; below every minimum, the last grade.

    The minimums are read as decimals (0.9 → 90, not 90.00000000000001) before they become
    floats, so a rounded total of exactly 90.00 reaches 0.90.
    """
    values = total_rounded.to_numpy(float)
    minimums = [float(Decimal(format(g.min, ".10g")) * 100) for g in policy.grades]
    reached = [values >= m for m in minimums]
    last = policy.grades[-1]
    grade = np.select(reached, [g.grade for g in policy.grades], default=last.grade)
    bonus = np.select(reached, [g.bonus for g in policy.grades], default=last.bonus)
    return (pd.Series(grade, index=total_rounded.index, dtype=object),
            pd.Series(bonus, index=total_rounded.index, dtype="float64"))


def rounded_percents(totals: pd.Series, decimals: int = 2) -> pd.Series:
    """`rounded_percent` of each total, as floats (Decimal work done once per distinct total)."""
    distinct = pd.unique(totals.to_numpy(float))
    lookup = {value: float(rounded_percent(value, decimals)) for value in distinct}
    return pd.Series(totals.to_numpy(float), index=totals.index).map(lookup).astype("float64")


# ------------------------------------------------------------------------------ achievement

def achievement(method: pd.Series, direction: pd.Series, actual: pd.Series, target: pd.Series,
                base: pd.Series, stretch: pd.Series, policy: Policy) -> pd.Series:
    """Unclipped achievement per row for every method and direction (SPEC §3 table)."""
    a, t = actual.to_numpy(float), target.to_numpy(float)
    b, s = base.to_numpy(float), stretch.to_numpy(float)
    m, lower = method.to_numpy(object), direction.to_numpy(object) == "lower"
    out = np.full(len(a), np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = m == "ratio"
        higher_ratio = a / t
        if policy.lower_is_better == "linear":
            lower_ratio = 2 - a / t
        else:
            lower_ratio = np.where(a == 0, policy.cap, t / a)
        out = np.where(ratio, np.where(lower, lower_ratio, higher_ratio), out)

        equal = np.isclose(a, t, rtol=EQUAL_RTOL, atol=0.0)
        passed = np.where(lower, a <= t, a >= t) | equal
        out = np.where(m == "pass_fail", passed.astype(float), out)

        # Tiered: distance travelled from base to target, and target to stretch, in the
        # indicator's direction. For lower-is-better the tiers run b > t > s.
        sign = np.where(lower, -1.0, 1.0)
        ga, gb, gt, gs = a * sign, b * sign, t * sign, s * sign
        bs, ss = policy.base_score, policy.stretch_score
        below_base = (ga < gb) & ~np.isclose(ga, gb, rtol=EQUAL_RTOL, atol=0.0)
        tiered = np.select(
            [below_base, ga < gt, ga < gs],
            [0.0, bs + (1 - bs) * (ga - gb) / (gt - gb), 1 + (ss - 1) * (ga - gt) / (gs - gt)],
            default=ss,
        )
        out = np.where(m == "tiered", tiered, out)

        rating_target = np.where(np.isnan(t), policy.scale_max, t)
        out = np.where(m == "rating", a / rating_target, out)
    return pd.Series(out, index=actual.index, dtype="float64")


def clip(values: pd.Series, policy: Policy) -> pd.Series:
    return values.clip(lower=policy.floor, upper=policy.cap)


# ------------------------------------------------------------------------------ agreements

def resolve_agreements(inputs, period: str) -> pd.DataFrame:
    """Who is measured on what in `period`: personal KPIs where an employee has any, else the role's.

    Validation asks first, scoring next, for the same period of the same inputs: a copy of the
    first answer is kept on `inputs` and handed to the next call, if its roster and agreement
    frames are still the very same objects.
    """
    cache = getattr(inputs, "resolved", None)
    sources = (inputs.roster, inputs.role_kpis, inputs.employee_kpis)
    if cache is not None:
        kept = cache.pop(period, None)
        if kept is not None and all(a is b for a, b in zip(kept[0], sources)):
            return kept[1]
    resolved = _resolve_agreements(inputs, period)
    if cache is not None:
        cache[period] = (sources, resolved.copy(deep=not _COPY_ON_WRITE))
    return resolved


def _resolve_agreements(inputs, period: str) -> pd.DataFrame:
    roster = inputs.roster
    active = roster[roster["status"].fillna("active") == "active"][["employee_id", "role_family"]]
    personal = inputs.employee_kpis[inputs.employee_kpis["period"] == period]
    personal = personal[personal["employee_id"].isin(active["employee_id"])].assign(kpi_source="employee")
    role = inputs.role_kpis[inputs.role_kpis["period"] == period].drop(columns=["employee_id"], errors="ignore")
    by_role = active[~active["employee_id"].isin(personal["employee_id"])].merge(role, on="role_family", how="inner")
    by_role = by_role.assign(kpi_source="role")
    columns = ["employee_id", "period", "indicator_id", "weight", "base", "target", "stretch",
               "kpi_source", "_file", "_sheet", "_row", "_table"]
    resolved = pd.concat([personal.reindex(columns=columns), by_role.reindex(columns=columns)], ignore_index=True)
    return resolved.sort_values(["employee_id", "_file", "_sheet", "_row"], kind="stable").reset_index(drop=True)


def period_actuals(inputs, period: str, indicators: pd.DataFrame) -> pd.DataFrame:
    """Actuals for `period`: given directly, or rolled up from its months by each indicator's aggregation."""
    actuals = inputs.actuals
    if actuals.empty:
        return pd.DataFrame(columns=["employee_id", "indicator_id", "actual", "source", "months"])
    prefix = {i: f"{t.file}!{t.sheet}!{t.letters.get('actual', '')}" for i, t in enumerate(inputs.tables)}
    months = period_months(period)
    # Only the period's rows and the columns used here: each row gets a source text of its own.
    actuals = actuals.loc[actuals["period"].isin([period, *months]),
                          ["employee_id", "indicator_id", "actual", "period", "_table", "_row"]]
    actuals = actuals.assign(source=actuals["_table"].map(prefix) + actuals["_row"].astype(str))
    direct = actuals[actuals["period"] == period][["employee_id", "indicator_id", "actual", "source"]].assign(months=1)
    if months == [period]:
        return direct.reset_index(drop=True)
    keys = ["employee_id", "indicator_id"]
    monthly = actuals[actuals["period"].isin(months)].sort_values(keys + ["period"], kind="stable")
    if monthly.empty:
        return direct.reset_index(drop=True)
    monthly = monthly.join(indicators.set_index("indicator_id")["aggregation"], on="indicator_id")
    monthly["aggregation"] = monthly["aggregation"].fillna("sum")
    grouped = monthly.groupby(keys, sort=True)
    rolled = pd.DataFrame({
        "sum": grouped["actual"].sum(),
        "mean": grouped["actual"].mean(),
        "last": grouped["actual"].last(),
        "aggregation": grouped["aggregation"].first(),
        "source": _joined_sources(monthly, keys),
        "months": grouped["actual"].size(),
    })
    rolled["actual"] = np.select([rolled["aggregation"] == "mean", rolled["aggregation"] == "last"],
                                 [rolled["mean"], rolled["last"]], default=rolled["sum"])
    rolled = rolled.reset_index()[["employee_id", "indicator_id", "actual", "source", "months"]]
    direct_keys = pd.MultiIndex.from_frame(direct[["employee_id", "indicator_id"]])
    rolled = rolled[~pd.MultiIndex.from_frame(rolled[["employee_id", "indicator_id"]]).isin(direct_keys)]
    return pd.concat([direct, rolled], ignore_index=True)


def _joined_sources(monthly: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Each group's source cells in month order, joined by "; " (vectorised: one pass per month slot)."""
    slot = monthly.groupby(keys, sort=False).cumcount().rename("_slot")
    wide = monthly.set_index(keys + [slot])["source"].unstack("_slot")  # groups x month slots, sorted
    joined = wide[0].astype(object)
    for column in wide.columns[1:]:  # at most 12 slots: months in a year
        more = wide[column]
        joined = joined.where(more.isna(), joined + "; " + more)
    return joined


# ------------------------------------------------------------------------------ 360 ratings

def rating_scores(ratings: pd.DataFrame, roster: pd.DataFrame, period: str, policy: Policy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per employee and indicator: weighted rating r; per relation: the 360 detail).

    Mean score per relation, then the policy's rater weights for the employee's role family,
    renormalised over the relations present. Relations the policy gives no weight are in
    the detail (counted = False) but not in r.
    """
    rows = ratings.loc[ratings["period"] == period, ["employee_id", "indicator_id", "relation", "score"]]
    detail_columns = ["employee_id", "indicator_id", "relation", "mean_score", "raters", "policy_weight",
                      "weight_used", "counted"]
    if rows.empty:
        return (pd.DataFrame(columns=["employee_id", "indicator_id", "rating", "source"]),
                pd.DataFrame(columns=detail_columns))
    detail = rows.groupby(["employee_id", "indicator_id", "relation"], sort=True)["score"].agg(["mean", "size"])
    detail = detail.rename(columns={"mean": "mean_score", "size": "raters"}).reset_index()
    family = roster.set_index("employee_id")["role_family"]
    detail["role_family"] = detail["employee_id"].map(family)
    weights = pd.DataFrame(
        [(fam, rel, w) for fam in set(detail["role_family"].dropna().unique()) | {"default"}
         for rel, w in policy.rater_weights_for(fam).items()],
        columns=["role_family", "relation", "policy_weight"],
    )
    detail = detail.merge(weights, on=["role_family", "relation"], how="left")
    detail["policy_weight"] = detail["policy_weight"].fillna(0.0)
    detail["counted"] = detail["policy_weight"] > 0
    present = detail.groupby(["employee_id", "indicator_id"])["policy_weight"].transform("sum")
    detail["weight_used"] = np.where(present > 0, detail["policy_weight"] / present, 0.0)
    detail["contribution"] = detail["weight_used"] * detail["mean_score"]
    scored = detail[detail["counted"]].groupby(["employee_id", "indicator_id"], sort=True)["contribution"].sum()
    per_indicator = scored.rename("rating").reset_index()
    per_indicator["source"] = "360"
    return per_indicator, detail[detail_columns]


# ------------------------------------------------------------------------------ scoring

@dataclass
class Scores:
    """Everything the writers need, as plain frames."""

    period: str
    details: pd.DataFrame  # one row per employee and indicator
    totals: pd.DataFrame  # one row per scored employee
    unscored: pd.DataFrame  # employee, reason (zh, en), where
    ratings: pd.DataFrame  # 360 detail per relation
    dimensions: pd.DataFrame  # employee x dimension subtotals
    calibration: pd.DataFrame
    cascade: pd.DataFrame
    findings: list[Finding] = field(default_factory=list)


def _reason_rows(employee_id: str, reasons: list[Finding]) -> dict:
    first = reasons[0]
    return {"employee_id": employee_id, "reason_zh": first.message_zh, "reason_en": first.message_en,
            "where": first.where, "rule": first.rule, "problems": len(reasons)}


def score_period(inputs, policy: Policy, period: str) -> Scores:
    """Score every active employee of the roster for `period`; list whoever cannot be scored."""
    roster = inputs.roster
    indicators = inputs.indicators.set_index("indicator_id")
    agreements = resolve_agreements(inputs, period)
    agreements = agreements.join(indicators[["name", "dimension", "direction", "method", "unit", "aggregation"]],
                                 on="indicator_id")
    months = set(period_months(period)) | {period}
    findings: list[Finding] = []

    # Who cannot be scored, and why (first reason shown, the count of others kept).
    reasons: dict[str, list[Finding]] = {}
    for employee_id, blocks in inputs.blocked.items():
        relevant = [f for p, f in blocks if p == "" or p in months or p == period]
        if relevant:
            reasons[employee_id] = relevant
    active = roster[roster["status"].fillna("active") == "active"]
    personal = set(agreements.loc[agreements["kpi_source"] == "employee", "employee_id"])
    for (family, p), reason in inputs.bad_role_sets.items():
        if p == period:
            # The set's bad rows are already dropped (all of them when its weights do not sum
            # to 100%): its people are found from the roster, not from what is left of the set.
            members = active.loc[(active["role_family"] == family) & ~active["employee_id"].isin(personal), "employee_id"]
            for employee_id in members.unique():
                reasons.setdefault(employee_id, []).append(reason)
    for indicator_id, reason in inputs.bad_indicators.items():
        for employee_id in agreements.loc[agreements["indicator_id"] == indicator_id, "employee_id"].unique():
            reasons.setdefault(employee_id, []).append(reason)
    unknown = agreements.loc[agreements["method"].isna(), ["employee_id", "indicator_id"]]
    # one pass, not one filter per employee: a role set may carry the unknown indicator to thousands
    unknown_ids = unknown["indicator_id"].astype(str).groupby(unknown["employee_id"], sort=False).agg(", ".join)
    for employee_id, indicator_ids in unknown_ids.items():
        reasons.setdefault(employee_id, []).append(
            finding("unknown_indicator", value=indicator_ids, employee_id=employee_id, period=period))
    for employee_id in active.loc[~active["employee_id"].isin(agreements["employee_id"]), "employee_id"]:
        if employee_id not in reasons:  # a rejected agreement set already says why it is missing
            reasons[employee_id] = [finding("no_agreement", employee_id=employee_id, period=period)]

    # Actual per agreed row: measured actuals, or the weighted 360 rating.
    actuals = period_actuals(inputs, period, inputs.indicators)
    rated, rating_detail = rating_scores(inputs.ratings, roster, period, policy)
    detail = agreements.merge(actuals, on=["employee_id", "indicator_id"], how="left")
    agreements = agreements[["employee_id", "indicator_id", "target"]]  # all `cascade` needs of it below
    detail = detail.merge(rated.rename(columns={"source": "rating_source"}), on=["employee_id", "indicator_id"], how="left")
    is_rating = detail["method"] == "rating"
    detail["actual"] = detail["actual"].astype("float64").where(~is_rating, detail["rating"].astype("float64"))
    detail["source"] = detail["source"].astype(object).where(~is_rating, "360")
    missing = detail["actual"].isna()
    for row in detail.loc[missing, ["employee_id", "indicator_id", "method", "_file", "_sheet"]].to_dict("records"):
        if row["employee_id"] in reasons:
            continue
        rule = "missing_rating" if row["method"] == "rating" else "missing_actual"
        f = finding(rule, employee_id=row["employee_id"], period=period, indicator=row["indicator_id"],
                    file=row["_file"], sheet=row["_sheet"])
        reasons.setdefault(row["employee_id"], []).append(f)
        findings.append(f)
    # Missing supervisor ratings are worth a warning (seed 003: the supervisor weighs most).
    if not rating_detail.empty:
        has_supervisor = rating_detail.assign(sup=rating_detail["relation"] == "supervisor").groupby(
            ["employee_id", "indicator_id"])["sup"].any()
        for employee_id, indicator_id in has_supervisor[~has_supervisor].index:
            findings.append(finding("no_supervisor_rating", employee_id=employee_id, period=period,
                                    indicator=indicator_id))

    # Every agreed row's actual, scored or not: the department rollup counts everyone's valid actuals.
    agreed_actuals = detail[["employee_id", "indicator_id", "actual"]]
    scorable = ~detail["employee_id"].isin(reasons)
    detail = detail[scorable] if _COPY_ON_WRITE else detail[scorable].copy()  # a filtered frame is a copy already
    raw = achievement(detail["method"], detail["direction"], detail["actual"], detail["target"],
                      detail["base"], detail["stretch"], policy)
    detail["achievement_raw"] = raw
    detail["achievement"] = clip(raw, policy)
    detail["weighted_score"] = detail["weight"] * detail["achievement"]
    detail["period"] = period
    # Where the weight and targets came from (the agreement row), for auditors and `kpi trace`.
    # A role's agreement row is shared by everyone in the role: each distinct (table, row) is
    # worded once and its text shared by those rows (one string object each, not one per
    # detail row: hundreds of MB at 100,000 employees).
    pairs = detail.groupby(["_table", "_row"], sort=False, dropna=False).ngroup().to_numpy()
    distinct = detail.iloc[np.unique(pairs, return_index=True)[1]]  # each group's first row, in group order
    rows = distinct["_row"].astype("Int64").astype(str)
    for column, field_name in (("agreement_source", "weight"), ("target_source", "target")):
        prefix = {i: f"{t.file}!{t.sheet}!{t.letters.get(field_name, '')}" for i, t in enumerate(inputs.tables)}
        text = (distinct["_table"].map(prefix) + rows).array
        detail[column] = pd.Series(text.take(pairs), index=detail.index)
    detail = detail.sort_values(["employee_id", "_file", "_sheet", "_row"], kind="stable").reset_index(drop=True)

    totals = detail.groupby("employee_id", sort=True)["weighted_score"].sum().rename("total").reset_index()
    totals["period"] = period
    totals["total_rounded"] = rounded_percents(totals["total"], policy.decimals)
    totals["score_grade"] = grades_for(totals["total_rounded"], policy)[0]
    totals = totals.merge(roster[["employee_id", "name", "department", "position", "role_family", "manager_id"]],
                          on="employee_id", how="left")
    if policy.forced_distribution:
        totals["grade"] = forced_grades(totals, policy)
    else:
        totals["grade"] = totals["score_grade"]
    bonus = {g.grade: g.bonus for g in policy.grades}
    totals["bonus"] = totals["grade"].map(bonus)
    totals["rank"] = totals.groupby("department")["total_rounded"].rank(method="min", ascending=False).astype(int)
    totals = totals[TOTAL_COLUMNS + ["score_grade", "name", "department", "position", "role_family",
                                     "manager_id", "rank"]]

    dimensions = detail.pivot_table(index="employee_id", columns="dimension", values="weighted_score",
                                    aggfunc="sum", fill_value=0.0)
    dimensions = dimensions.reindex(columns=["performance", "ability", "attitude"], fill_value=0.0).reset_index()

    names = roster.set_index("employee_id")
    left = roster[roster["status"] == "left"]
    # Someone who has left is listed once, as left, even if one of their rows also has an error.
    listed = {e: r for e, r in reasons.items() if e not in set(left["employee_id"])}
    unscored = pd.DataFrame([_reason_rows(e, r) for e, r in sorted(listed.items())],
                            columns=["employee_id", "reason_zh", "reason_en", "where", "rule", "problems"])
    unscored.insert(1, "period", period)
    for column in ("name", "department"):
        unscored.insert(2 if column == "name" else 3, column, unscored["employee_id"].map(names[column]) if len(names) else None)
    if not left.empty:
        left_rows = pd.DataFrame({"employee_id": left["employee_id"], "period": period, "name": left["name"],
                                  "department": left["department"], "reason_zh": "已离职,本期不评分。",
                                  "reason_en": "Has left the company; not scored this period.", "where": "",
                                  "rule": "left", "problems": 0})
        unscored = pd.concat([unscored, left_rows], ignore_index=True).sort_values("employee_id", kind="stable")
    unscored = unscored.reset_index(drop=True)

    scored_ratings = rating_detail[rating_detail["employee_id"].isin(totals["employee_id"])].reset_index(drop=True)
    scores = Scores(period=period, details=detail, totals=totals.reset_index(drop=True), unscored=unscored,
                    ratings=scored_ratings, dimensions=dimensions, calibration=pd.DataFrame(),
                    cascade=pd.DataFrame(), findings=findings)
    scores.calibration, calibration_findings = calibration(detail, inputs.indicators, policy)
    scores.findings.extend(calibration_findings)
    scores.cascade = cascade(inputs, agreements, agreed_actuals, period)
    return scores


# ------------------------------------------------------------------------------ grades

def forced_grades(totals: pd.DataFrame, policy: Policy) -> pd.Series:
    """Grades by rank within each department under the policy's forced distribution.

    Quota rule: the top k grades together hold round-half-up(cumulative share × n) people.
    Employees are ranked by rounded total; a tie is never split: a tie group that straddles a
    boundary all get the better grade, and the following grades shrink accordingly.
    """
    shares = policy.forced_distribution or {}
    order = [g.grade for g in policy.grades if g.grade in shares]
    if totals.empty or not order:
        return pd.Series(index=totals.index, dtype=object)
    by_department = totals.groupby("department", sort=False, dropna=False)["total_rounded"]
    size = by_department.transform("size").to_numpy(int)
    rank = by_department.rank(method="min", ascending=False).to_numpy(float)
    # Cumulative quota per grade for each department size (one Decimal rounding per distinct size).
    cumulative = np.cumsum([shares[g] for g in order])
    sizes = np.unique(size)
    quota = np.array([[int(half_up(c * n, 0)) for c in cumulative] for n in sizes])
    bounds = quota[np.searchsorted(sizes, size)]  # employees x grades
    within = rank[:, None] <= bounds
    first = np.where(within.any(axis=1), within.argmax(axis=1), len(order) - 1)
    return pd.Series(np.array(order, dtype=object)[first], index=totals.index, dtype=object)


# ------------------------------------------------------------------------------ company views

def calibration(detail: pd.DataFrame, indicators: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, list[Finding]]:
    """Per indicator, the share of employees reaching 100%: targets too easy or too hard."""
    if detail.empty:
        return pd.DataFrame(columns=["indicator_id", "name", "employees", "reached", "share", "flag"]), []
    grouped = detail.assign(reached=detail["achievement_raw"] >= 1 - 1e-12).groupby("indicator_id", sort=True)
    table = pd.DataFrame({"employees": grouped.size(), "reached": grouped["reached"].sum()}).reset_index()
    table["share"] = table["reached"] / table["employees"]
    table["name"] = table["indicator_id"].map(indicators.set_index("indicator_id")["name"])
    enough = table["employees"] >= CALIBRATION_MIN_EMPLOYEES
    table["flag"] = np.select([enough & (table["share"] > policy.too_easy), enough & (table["share"] < policy.too_hard)],
                              ["too_easy", "too_hard"], default="")
    findings = []
    for row in table.itertuples(index=False):
        if row.flag:
            rule = "calibration_easy" if row.flag == "too_easy" else "calibration_hard"
            findings.append(finding(rule, indicator=f"{row.indicator_id} {row.name}", share=f"{row.share:.0%}"))
    return table[["indicator_id", "name", "employees", "reached", "share", "flag"]], findings


def cascade(inputs, agreements: pd.DataFrame, detail: pd.DataFrame, period: str) -> pd.DataFrame:
    """Department targets against the individual targets (coverage) and actuals (rollup).

    Only `sum` indicators (and those with no aggregation) add up across employees; for `mean`
    and `last` (期末) indicators both the individual targets and the actuals are the mean over
    the department's employees, since a rate or a level is never summed across people.
    `detail` holds the actual per agreed (employee, indicator), NaN where there is none; an
    employee who could not be scored still counts with the actuals they do have.
    """
    columns = ["department", "period", "indicator_id", "name", "department_target", "individual_targets",
               "coverage", "actual", "department_achievement", "employees"]
    targets = inputs.dept_targets[inputs.dept_targets["period"] == period]
    if targets.empty:
        return pd.DataFrame(columns=columns)
    roster = inputs.roster.set_index("employee_id")["department"]
    indicators = inputs.indicators.set_index("indicator_id")
    people = agreements.assign(department=agreements["employee_id"].map(roster))
    people = people.merge(detail[["employee_id", "indicator_id", "actual"]], on=["employee_id", "indicator_id"], how="left")
    people["aggregation"] = people["indicator_id"].map(indicators["aggregation"]).fillna("sum")
    grouped = people.groupby(["department", "indicator_id"])
    summary = pd.DataFrame({
        "target_sum": grouped["target"].sum(min_count=1), "target_mean": grouped["target"].mean(),
        "actual_sum": grouped["actual"].sum(min_count=1), "actual_mean": grouped["actual"].mean(),
        "employees": grouped.size(), "aggregation": grouped["aggregation"].first(),
    }).reset_index()
    mean = summary["aggregation"].isin(["mean", "last"])
    summary["individual_targets"] = np.where(mean, summary["target_mean"], summary["target_sum"])
    summary["actual"] = np.where(mean, summary["actual_mean"], summary["actual_sum"])
    table = targets[["department", "period", "indicator_id", "target"]].rename(columns={"target": "department_target"})
    table = table.merge(summary[["department", "indicator_id", "individual_targets", "actual", "employees"]],
                        on=["department", "indicator_id"], how="left")
    lower = table["indicator_id"].map(indicators["direction"]) == "lower"
    with np.errstate(divide="ignore", invalid="ignore"):
        table["coverage"] = np.where(lower, table["department_target"] / table["individual_targets"],
                                     table["individual_targets"] / table["department_target"])
        table["department_achievement"] = np.where(lower, table["department_target"] / table["actual"],
                                                   table["actual"] / table["department_target"])
    table = table.replace([np.inf, -np.inf], np.nan)
    table["name"] = table["indicator_id"].map(indicators["name"])
    table["employees"] = table["employees"].fillna(0).astype(int)
    return table[columns].sort_values(["department", "indicator_id"]).reset_index(drop=True)
