"""Scoring (docs/scoring.md): vectorised pandas over clean frames; knows nothing about Excel.

Full precision is kept throughout; only the displayed total is rounded, half-up, and the
grade comes from that rounded total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from pipeline import exact
from pipeline.findings import Finding, finding
from pipeline.kinds import ANCHOR_LEVELS, anchor_field
from pipeline.outputs import (
    DETAIL_COLUMNS as DETAIL_COLUMNS,  # the older home of the name, for the tests
)
from pipeline.outputs import RATING_DETAIL_COLUMNS, TOTAL_COLUMNS
from pipeline.periods import Period
from pipeline.policy import Policy

# Below this many employees on an indicator, a share reaching 100% says little: no flag.
CALIBRATION_MIN_EMPLOYEES = 5
# Calibration: the share reaching base / target / stretch, to hold against 80 / 50 / 20%.
TIER_SHARE_COLUMNS = ["base_share", "target_share", "stretch_share"]
# pandas 3 always copies on write: a shallow copy of a frame is then as safe as a deep one.
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


# ------------------------------------------------------------------------------ numbers

def half_up(value: float | Fraction, decimals: int = 2) -> Decimal:
    """Half-up rounding as HR expects it (0.125 → 0.13), exact on the decimal the float holds.

    A float is read by its shortest repr (2.675 is 2.675, though stored as 2.67499999…), never
    pre-rounded to fewer digits; never Python's or NumPy's half-to-even.
    """
    return exact.half_up(value, decimals)


def rounded_percent(total: float | Fraction, decimals: int = 2) -> Decimal:
    """The displayed total: 0.96495 → 96.50 (percent, half-up, exact)."""
    value = total if isinstance(total, Fraction) else exact.typed(total)
    return exact.half_up(value * 100, decimals)


def grade_for(total_rounded: Decimal, policy: Policy) -> tuple[str, float]:
    """First grade whose minimum the rounded total reaches (grades run from high to low)."""
    grades, bonuses = grades_for(pd.Series([float(total_rounded)]), policy)
    return str(grades.iloc[0]), float(bonuses.iloc[0])


def grades_for(total_rounded: pd.Series, policy: Policy) -> tuple[pd.Series, pd.Series]:
    """(grade, bonus) per rounded total in percent; below every minimum, the last grade.

    Rounded totals and minimums are both decimals held as their nearest floats (0.9 → 90.0),
    and floats keep the order of the decimals they stand for: the comparison is exact.
    """
    values = total_rounded.to_numpy(float)
    minimums = [float(exact.decimal_of(g.min) * 100) for g in policy.grades]
    reached = [values >= m for m in minimums]
    last = policy.grades[-1]
    grade = np.select(reached, [g.grade for g in policy.grades], default=last.grade)
    bonus = np.select(reached, [g.bonus for g in policy.grades], default=last.bonus)
    return (pd.Series(grade, index=total_rounded.index, dtype=object),
            pd.Series(bonus, index=total_rounded.index, dtype="float64"))


def rounded_percents(totals: pd.Series, decimals: int = 2) -> pd.Series:
    """Each total rounded half-up to a percent with `decimals`, as floats.

    Only for totals far from a rounding tie (`near_rounding_tie`): there the float's own value
    rounds like the exact total. Vectorised: floor(x + 0.5) on the scaled float.
    """
    scaled = totals.to_numpy(float) * 10.0 ** (decimals + 2)
    rounded = np.floor(np.abs(scaled) + 0.5) * np.sign(scaled) / 10.0 ** decimals
    return pd.Series(rounded + 0.0, index=totals.index, dtype="float64")


def near_rounding_tie(totals: pd.Series, decimals: int = 2) -> np.ndarray:
    """Totals within float noise of a half-up tie (…5 in the first dropped digit), or of a
    whole step: those are rounded exactly instead (0.96495 summed in floats is 0.964949999…)."""
    scaled = np.abs(totals.to_numpy(float)) * 10.0 ** (decimals + 2)
    fraction = scaled - np.floor(scaled)
    return np.abs(fraction - 0.5) < 1e-6


def ranked_within(totals: pd.DataFrame) -> pd.DataFrame:
    """`totals` with `rank` as Excel's RANK over these rows gives it (highest points first, ties
    sharing the best rank): what a workbook holding only these employees caches beside its
    RANK formula (a team's or a manager's workbook, not the whole department)."""
    return totals.assign(rank=totals["total_rounded"].rank(method="min", ascending=False).astype(int))


# ------------------------------------------------------------------------------ achievement

def achievement(method: pd.Series, direction: pd.Series, actual: pd.Series, target: pd.Series,
                base: pd.Series, stretch: pd.Series, policy: Policy) -> pd.Series:
    """Unclipped achievement per row for every method and direction (docs: the scoring table).

    Comparisons are plain float comparisons, with no tolerance: floats keep the order of the
    decimals typed in the cells. Where an actual was computed (a roll-up, a 360 rating) and
    sits within float noise of a line, `score_period` decides that row exactly (`exact`)."""
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

        passed = np.where(lower, a <= t, a >= t)
        out = np.where(m == "pass_fail", passed.astype(float), out)

        # Tiered: distance travelled from base to target, and target to stretch, in the
        # indicator's direction. For lower-is-better the tiers run b > t > s.
        sign = np.where(lower, -1.0, 1.0)
        ga, gb, gt, gs = a * sign, b * sign, t * sign, s * sign
        bs, ss = policy.base_score, policy.stretch_score
        tiered = np.select(
            [ga < gb, ga < gt, ga < gs],
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


def period_actuals(inputs, period: Period | str, indicators: pd.DataFrame) -> pd.DataFrame:
    """Actuals for `period`: given directly, or rolled up from its months by each indicator's aggregation."""
    actuals = inputs.actuals
    if actuals.empty:
        return pd.DataFrame(columns=["employee_id", "indicator_id", "actual", "source", "months"])
    prefix = {i: f"{t.file}!{t.sheet}!{t.letters.get('actual', '')}" for i, t in enumerate(inputs.tables)}
    scored = Period.of(period)
    period, months = scored.text, list(scored.months)
    # Only the period's rows and the columns used here: each row gets a source text of its own.
    actuals = actuals.loc[actuals["period"].isin([period, *months]),
                          ["employee_id", "indicator_id", "actual", "period", "_table", "_row"]]
    actuals = actuals.assign(source=actuals["_table"].map(prefix) + actuals["_row"].astype(str))
    direct = actuals[actuals["period"] == period][["employee_id", "indicator_id", "actual", "source"]].assign(months=1)
    if scored.is_month:
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

_RATING_KEYS = ["employee_id", "indicator_id", "rating_period", "relation"]


def rating_scores(ratings: pd.DataFrame, roster: pd.DataFrame, period: Period | str, policy: Policy,
                  indicators: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per employee and indicator: weighted rating r; per rating period and relation: the 360 detail).

    Mean score per relation, then the policy's rater weights for the employee's role family,
    renormalised over the counted relations present. Relations the policy gives no weight are
    in the detail (counted = False) but not in r.

    A quarter, half or year rated month by month rolls up by the indicator's aggregation: the
    mean of the monthly weighted ratings (`last`: the latest month's; a sum of ratings means
    nothing, so `sum` is read as mean too). Ratings given for the period itself win over
    monthly ones (validation reports such a mix as an error). The detail's `weight_used` is
    each relation's weight within its month divided by the months averaged, so
    Σ weight_used × mean_score is r: the scorecard's SUMPRODUCT over the detail gives r.
    `comments` holds the relation's raters' comments (评语), one per line, for the scorecard.
    """
    scored = Period.of(period)
    period = scored.text
    in_scope = ratings["period"].isin([period, *scored.months]) if not scored.is_month else ratings["period"] == period
    wanted = ["employee_id", "indicator_id", "relation", "score", "period"] + (["comment"] if "comment" in ratings else [])
    rows = ratings.loc[in_scope, wanted]
    rows = rows.rename(columns={"period": "rating_period"})
    if not scored.is_month and not rows.empty:
        keys = rows["employee_id"].astype(str) + "\x00" + rows["indicator_id"].astype(str)
        direct = set(keys[rows["rating_period"] == period])
        rows = rows[(rows["rating_period"] == period) | ~keys.isin(direct)]
        if indicators is not None and not rows.empty:
            aggregation = rows["indicator_id"].map(indicators.set_index("indicator_id")["aggregation"])
            latest = rows.groupby(["employee_id", "indicator_id"])["rating_period"].transform("max")
            rows = rows[(aggregation != "last").to_numpy() | (rows["rating_period"] == latest).to_numpy()]
    if rows.empty:
        return (pd.DataFrame(columns=["employee_id", "indicator_id", "rating", "source"]),
                pd.DataFrame(columns=RATING_DETAIL_COLUMNS))
    detail = rows.groupby(_RATING_KEYS, sort=True)["score"].agg(["mean", "size", "sum"])
    detail = detail.rename(columns={"mean": "mean_score", "size": "raters", "sum": "score_total"})
    detail["comments"] = _joined_comments(rows).reindex(detail.index)
    detail = detail.reset_index()
    family = roster.set_index("employee_id")["role_family"]
    # As text even when no rater is in the roster (all NaN would be float64, which pandas
    # refuses to merge with the policy's family names).
    detail["role_family"] = detail["employee_id"].map(family).astype(object)
    weights = pd.DataFrame(
        [(fam, rel, w) for fam in set(detail["role_family"].dropna().unique()) | {"default"}
         for rel, w in policy.rater_weights_for(fam).items()],
        columns=["role_family", "relation", "policy_weight"],
    )
    detail = detail.merge(weights, on=["role_family", "relation"], how="left")
    detail["policy_weight"] = detail["policy_weight"].fillna(0.0)
    detail["counted"] = detail["policy_weight"] > 0
    present = detail.groupby(["employee_id", "indicator_id", "rating_period"])["policy_weight"].transform("sum")
    # Months with a counted rating, per employee and indicator: the monthly ratings averaged.
    counted_months = detail["rating_period"].where(present > 0)
    averaged = counted_months.groupby([detail["employee_id"], detail["indicator_id"]]).transform("nunique")
    with np.errstate(divide="ignore", invalid="ignore"):
        detail["weight_used"] = np.where(present > 0, detail["policy_weight"] / present / averaged, 0.0)
    detail["contribution"] = detail["weight_used"] * detail["mean_score"]
    scored = detail[detail["counted"]].groupby(["employee_id", "indicator_id"], sort=True)["contribution"].sum()
    per_indicator = scored.rename("rating").reset_index()
    per_indicator["source"] = "360"
    return per_indicator, detail[RATING_DETAIL_COLUMNS]


def _joined_comments(rows: pd.DataFrame) -> pd.Series:
    """Per rating period and relation (the 360 detail's keys): the raters' non-blank comments in
    file order, each on one line, joined by newlines (vectorised: one pass per rater slot)."""
    if "comment" not in rows:
        return pd.Series(dtype=object)
    said = rows[rows["comment"].notna()]
    if said.empty:
        return pd.Series(dtype=object)
    text = said["comment"].astype(str).str.split().str.join(" ")  # a comment's own line breaks go
    said = said.assign(_text=text)[text != ""]
    if said.empty:
        return pd.Series(dtype=object)
    slot = said.groupby(_RATING_KEYS, sort=False).cumcount().rename("_slot")
    wide = said.set_index(_RATING_KEYS + [slot])["_text"].unstack("_slot")  # groups x rater slots
    joined = wide[0].astype(object)
    for column in wide.columns[1:]:  # as many slots as the most raters of one relation
        more = wide[column]
        joined = joined.where(more.isna(), joined + "\n" + more)
    return joined


def indicator_anchors(indicators: pd.DataFrame) -> dict[str, dict[int, str]]:
    """indicator_id → {level: behaviour anchor} of the rating indicators that describe levels.

    One small dict for the whole company: the scorecards look an indicator's anchors up in it
    rather than carrying their text on every employee's rows."""
    columns = [anchor_field(level) for level in ANCHOR_LEVELS if anchor_field(level) in indicators]
    if not columns or indicators.empty:
        return {}
    rated = indicators.loc[indicators["method"] == "rating", ["indicator_id", *columns]].dropna(
        subset=columns, how="all")
    anchors: dict[str, dict[int, str]] = {}
    for record in rated.to_dict("records"):  # one per rating indicator: a few dozen at most
        levels = {int(column.rsplit("_", 1)[1]): str(record[column]).strip() for column in columns
                  if isinstance(record[column], str) and record[column].strip()}
        if levels and isinstance(record["indicator_id"], str):
            anchors[record["indicator_id"]] = levels
    return anchors


def exact_rating(counted: Sequence[Sequence]) -> Fraction:
    """r of one employee and indicator, exactly, from its counted rows of the 360 detail:
    (rating period, policy weight, score total, raters) each.

    Scores are whole or half points, so each relation's score total is exact as a float."""
    months: dict[str, list[tuple[Fraction, Fraction]]] = {}
    for rating_period, weight, total, raters in counted:
        months.setdefault(rating_period, []).append((exact.typed(weight), exact.typed(total) / int(raters)))
    if not months:
        raise ValueError("no counted rating")
    per_month = [sum((w * mean for w, mean in parts), Fraction(0)) / sum((w for w, _ in parts), Fraction(0))
                 for parts in months.values()]
    return sum(per_month, Fraction(0)) / len(per_month)


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
    anchors: dict[str, dict[int, str]] = field(default_factory=dict)  # indicator_id → {level: anchor}
    # A progress run: the month the period is scored up to (None: the period's final result).
    as_of: str | None = None
    # The adjustments applied in this period (`adjustments.LOG_COLUMNS`).
    adjustments: pd.DataFrame = field(default_factory=pd.DataFrame)


def _reason_rows(employee_id: str, reasons: list[Finding]) -> dict:
    """Every distinct reason, not just the first: HR fixes them all before the next run."""
    first = reasons[0]
    pairs = list(dict.fromkeys((f.message_zh, f.message_en) for f in reasons))  # one line each, both languages alike
    where = list(dict.fromkeys(f.where for f in reasons if f.where))
    return {"employee_id": employee_id, "reason_zh": "\n".join(p[0] for p in pairs),
            "reason_en": "\n".join(p[1] for p in pairs),
            "where": "; ".join(where), "rule": first.rule, "problems": len(reasons)}


def score_period(inputs, policy: Policy, period: Period | str, as_of: str | None = None) -> Scores:
    """Score every active employee of the roster for `period`; list whoever cannot be scored.

    `as_of` (a month of `period`): the period to date, with sum targets pro-rated (`pro_rate`)
    and each indicator's pace (`pace`)."""
    from pipeline.adjustments import apply_adjustments

    scored = Period.of(period)
    period = scored.text  # as the frames and the outputs hold it
    roster = inputs.roster
    indicators = inputs.indicators.set_index("indicator_id")
    agreements = resolve_agreements(inputs, period)
    applied = apply_adjustments(inputs, scored, agreements, policy.weight_sum_tolerance)
    agreements = applied.agreements.join(
        indicators[["name", "dimension", "direction", "method", "unit", "aggregation"]], on="indicator_id")
    share = progress_share(scored, as_of)
    if share is not None:
        agreements = pro_rate(agreements, share)
    months = set(scored.months) | {period}
    findings: list[Finding] = []

    # Who cannot be scored, and why (every reason, and their count).
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
    without = [e for e in active.loc[~active["employee_id"].isin(agreements["employee_id"]), "employee_id"]
               if e not in reasons]  # a rejected agreement set already says why it is missing
    refused = inputs.refusal("no_agreement", len(without), [], period)
    if refused is not None:  # one line for everyone, naming the refused file
        findings.append(refused)
    for employee_id in without:
        reasons[employee_id] = [refused or finding("no_agreement", employee_id=employee_id, period=period)]

    # Actual per agreed row: measured actuals, or the weighted 360 rating.
    actuals = period_actuals(inputs, scored, inputs.indicators)
    rated, rating_detail = rating_scores(inputs.ratings, roster, scored, policy, inputs.indicators)
    detail = agreements.merge(actuals, on=["employee_id", "indicator_id"], how="left")
    agreements = agreements[["employee_id", "indicator_id", "target"]]  # all `cascade` needs of it below
    detail = detail.merge(rated.rename(columns={"source": "rating_source"}), on=["employee_id", "indicator_id"], how="left")
    is_rating = detail["method"] == "rating"
    detail["actual"] = detail["actual"].astype("float64").where(~is_rating, detail["rating"].astype("float64"))
    detail["source"] = detail["source"].astype(object).where(~is_rating, "360")
    missing = detail["actual"].isna() & ~detail["employee_id"].isin(reasons)
    for rule in ("missing_rating", "missing_actual") if inputs.refused else ():
        rows = detail.loc[missing & ((detail["method"] == "rating") == (rule == "missing_rating"))]
        employees = rows["employee_id"].unique()
        refused = inputs.refusal(rule, len(employees), sorted(rows["indicator_id"].unique()), period)
        if refused is not None:  # one line for everyone, naming the refused file
            findings.append(refused)
            for employee_id in employees:
                reasons.setdefault(employee_id, []).append(refused)
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
    exact_totals = _settle_exactly(detail, inputs, scored, policy, rating_detail, share)
    # Pace only means something in a progress run; a final run's rows have none.
    detail["pace"] = pace(detail["achievement_raw"], policy.pace_band) if share is not None else None
    detail["period"] = period
    # Where the weight and targets came from (the agreement row), for auditors and `kpi trace`.
    # A role's agreement row is shared by everyone in the role: each distinct (table, row) is
    # worded once and its text shared by those rows (one string object each, not one per
    # detail row: hundreds of MB at 100,000 employees).
    pairs = detail.groupby(["_table", "_row"], sort=False, dropna=False).ngroup().to_numpy()
    distinct = detail.iloc[np.unique(pairs, return_index=True)[1]]  # each group's first row, in group order
    rows = distinct["_row"].astype("Int64").astype(str)
    for column, field_name in (("agreement_source", "weight"), ("base_source", "base"), ("target_source", "target"),
                               ("stretch_source", "stretch")):
        prefix = {i: f"{t.file}!{t.sheet}!{t.letters.get(field_name, '')}" for i, t in enumerate(inputs.tables)}
        text = (distinct["_table"].map(prefix) + rows).array
        detail[column] = pd.Series(text.take(pairs), index=detail.index)
    detail["rating_sources"] = _rating_sources(detail, inputs, rating_detail, scored)
    detail = detail.sort_values(["employee_id", "_file", "_sheet", "_row"], kind="stable").reset_index(drop=True)

    totals = detail.groupby("employee_id", sort=True)["weighted_score"].sum().rename("total").reset_index()
    totals["period"] = period
    totals["total_rounded"] = rounded_percents(totals["total"], policy.decimals)
    if exact_totals:
        settled = totals["employee_id"].map(exact_totals)
        chosen = settled.notna()
        totals.loc[chosen, "total"] = [float(v) for v in settled[chosen]]
        totals.loc[chosen, "total_rounded"] = [float(rounded_percent(v, policy.decimals)) for v in settled[chosen]]
    totals["score_grade"] = grades_for(totals["total_rounded"], policy)[0]
    totals = totals.merge(roster[["employee_id", "name", "department", "position", "role_family", "manager_id"]],
                          on="employee_id", how="left")
    totals["grade"], forced_findings = forced_distribution(totals, policy)
    findings.extend(forced_findings)
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
                    cascade=pd.DataFrame(), findings=findings, anchors=indicator_anchors(inputs.indicators),
                    as_of=as_of if share is not None else None, adjustments=applied.log)
    scores.calibration, calibration_findings = calibration(detail, inputs.indicators, policy)
    scores.findings.extend(calibration_findings)
    scores.cascade = cascade(inputs, agreements, agreed_actuals, period)
    return scores


def _settle_exactly(detail: pd.DataFrame, inputs, period: Period, policy: Policy,
                    rating_detail: pd.DataFrame, share: Fraction | None = None) -> dict[str, Fraction]:
    """Decide exactly what float noise could decide; return those employees' exact totals.

    Float arithmetic is kept for every row whose result cannot flip. An employee is settled
    exactly (every row recomputed with fractions of the typed decimals, `exact`) when
    - a computed actual (a roll-up of months, a 360 rating) lies within float noise of a line
      it is compared with (target, base, stretch): a mean of three 10% months is
      0.10000000000000002 in floats and must meet a 10% target;
    - an unclipped achievement lies within noise of the cap, the floor or 100% (calibration);
    - the total lies within noise of a half-up tie (0.96495 summed in floats is 0.964949999…).
    Their rows' achievement and weighted score become the floats of the exact values.
    """
    if detail.empty:
        return {}
    a, t = detail["actual"].to_numpy(float), detail["target"].to_numpy(float)
    b, s = detail["base"].to_numpy(float), detail["stretch"].to_numpy(float)
    raw = detail["achievement_raw"].to_numpy(float)
    rating = (detail["method"] == "rating").to_numpy(bool)
    months = detail["months"].to_numpy(float) if "months" in detail else np.ones(len(detail))
    # A pro-rated target is computed too: its float is not the exact target × months elapsed / months.
    prorated = detail["_prorated"].to_numpy(bool) if "_prorated" in detail else np.zeros(len(detail), dtype=bool)
    computed = rating | (months > 1) | prorated

    def close(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.abs(x - y) <= 1e-9 * np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-300)

    line = computed & (close(a, t) | close(a, b) | close(a, s))
    # Within noise of 100% without being it: whether the target was reached (calibration).
    # Near the cap or floor needs nothing: the clipped value is the bound or within 1e-15 of it,
    # which only a total near a tie could feel (checked below).
    reached = (np.abs(raw - 1) <= 1e-9) & (raw != 1)
    employees = detail["employee_id"]
    chosen = set(employees[line | reached])
    float_totals = detail.groupby("employee_id", sort=False)["weighted_score"].sum()
    chosen.update(float_totals.index[near_rounding_tie(float_totals, policy.decimals)])
    if not chosen:
        return {}
    rows = np.flatnonzero(employees.isin(chosen).to_numpy(bool))
    picked = detail.iloc[rows]
    aggregation = dict(zip(inputs.indicators["indicator_id"], inputs.indicators["aggregation"]))
    rolled_keys = {(e, i) for e, i, m, r in zip(picked["employee_id"], picked["indicator_id"], months[rows],
                                                rating[rows]) if m > 1 and not r}
    rolled = _exact_rollups(inputs, period, rolled_keys, aggregation)
    ratings_of: dict[tuple[str, str], list[list]] = {}
    if rating[rows].any():
        wanted = rating_detail[rating_detail["employee_id"].isin(chosen) & rating_detail["counted"]]
        for employee_id, indicator_id, *parts in zip(*(wanted[c].to_numpy(dtype=object) for c in (
                "employee_id", "indicator_id", "rating_period", "policy_weight", "score_total", "raters"))):
            ratings_of.setdefault((employee_id, indicator_id), []).append(parts)
    constants: dict[str, Any] = dict(lower_is_better=policy.lower_is_better, cap=exact.typed(policy.cap),
                     base_score=exact.typed(policy.base_score), stretch_score=exact.typed(policy.stretch_score),
                     scale_max=exact.typed(policy.scale_max))
    floor, cap = exact.typed(policy.floor), constants["cap"]

    def fraction(value: float) -> Fraction | None:
        return None if np.isnan(value) else exact.typed(value)

    agreed = {name: detail[f"_agreed_{name}"].to_numpy(float) for name in ("target", "base", "stretch")
              if f"_agreed_{name}" in detail}

    def bound(name: str, values: np.ndarray, position: int | np.integer) -> Fraction | None:
        """A target, base or stretch exactly: a pro-rated one from the agreed decimal × share."""
        if share is not None and prorated[position]:
            full = agreed[name][position]
            return None if np.isnan(full) else exact.typed(full) * share
        return fraction(values[position])

    totals: dict[str, Fraction] = {}
    new_raw, new_clipped, new_weighted = [], [], []
    # Many rows repeat the same numbers (a rating pattern, a role's targets and weights): each
    # distinct rating and each distinct row is computed once.
    rated: dict[tuple, Fraction] = {}
    computed_rows: dict[tuple, tuple[Fraction, float, float, float]] = {}
    for position, (employee_id, indicator_id, method, direction, weight) in zip(rows, picked[
            ["employee_id", "indicator_id", "method", "direction", "weight"]].itertuples(index=False, name=None)):
        key = (employee_id, indicator_id)
        if rating[position]:
            counted = tuple(map(tuple, ratings_of[key]))
            actual = rated.get(counted)
            if actual is None:
                actual = rated[counted] = exact_rating(counted)
        elif key in rolled:
            actual = rolled[key]
        else:
            actual = exact.typed(a[position])
        # The row's numbers as the key (a pro-rated row's by its agreed decimals; NaN, which
        # equals nothing, as None).
        typed_lines = ((agreed["target"][position], agreed["base"][position], agreed["stretch"][position])
                       if share is not None and prorated[position] else (t[position], b[position], s[position]))
        row_key = (method, direction, weight, actual, share is not None and bool(prorated[position]),
                   *(None if x != x else x for x in typed_lines))
        result = computed_rows.get(row_key)
        if result is None:
            lines = (bound("target", t, position), bound("base", b, position), bound("stretch", s, position))
            unclipped = exact.achievement(method, direction == "lower", actual, *lines, **constants)
            clipped = exact.clip(unclipped, floor, cap)
            weighted = exact.typed(weight) * clipped
            result = computed_rows[row_key] = (weighted, exact.to_float(unclipped), float(clipped), float(weighted))
        totals[employee_id] = totals.get(employee_id, Fraction(0)) + result[0]
        new_raw.append(result[1])
        new_clipped.append(result[2])
        new_weighted.append(result[3])
    for column, values in (("achievement_raw", new_raw), ("achievement", new_clipped),
                           ("weighted_score", new_weighted)):
        updated = detail[column].to_numpy(float).copy()
        updated[rows] = values
        detail[column] = updated
    return totals


# ------------------------------------------------------------------------------ progress to date

PACE = ("behind", "on_track", "ahead")


def progress_share(period: Period | str, as_of: str | None) -> Fraction | None:
    """Months elapsed / months in `period` for a progress run as of `as_of` (None: a final run)."""
    if as_of is None:
        return None
    scored = Period.of(period)
    return Fraction(scored.months.index(as_of) + 1, scored.length)


def pro_rate(agreements: pd.DataFrame, share: Fraction) -> pd.DataFrame:
    """Targets (and base, stretch) of sum indicators × `share`: three months of a quarterly sales
    target of 300 are 200 by the end of its second month. Mean and last (期末) indicators, and
    360 ratings, keep theirs: a rate or a level is not reached bit by bit. The agreed values are
    kept (`_agreed_*`) so that exact scoring multiplies the typed decimals, not their floats."""
    summed = ((agreements["aggregation"].fillna("sum") == "sum") & (agreements["method"] != "rating")).to_numpy(bool)
    factor = np.where(summed, float(share), 1.0)
    out = agreements.assign(_prorated=summed)
    for name in ("target", "base", "stretch"):
        out[f"_agreed_{name}"] = agreements[name]
        out[name] = agreements[name].to_numpy(float) * factor
    out["original_target"] = agreements["original_target"].to_numpy(float) * factor
    return out


def pace(achievement_raw: pd.Series, band: float) -> pd.Series:
    """behind / on_track / ahead: achievement to date against 100% of the pro-rated target,
    within ±band (inclusive) on track."""
    low, high = float(1 - exact.decimal_of(band)), float(1 + exact.decimal_of(band))
    values = achievement_raw.to_numpy(float)
    return pd.Series(np.select([values < low, values > high], ["behind", "ahead"], default="on_track"),
                     index=achievement_raw.index, dtype=object)


def _rating_sources(detail: pd.DataFrame, inputs, rating_detail: pd.DataFrame, period: Period) -> pd.Series:
    """For rating rows: every rating cell behind the rating, with its relation, score and the
    weight it carries in r ("ratings.xlsx!行为评分 Ratings!F5 (supervisor, 4, 40.00%)"), for
    auditors and `kpi trace`. Empty for other rows."""
    result = pd.Series("", index=detail.index, dtype=object)
    rating = (detail["method"] == "rating").to_numpy(bool)
    if not rating.any() or rating_detail.empty:
        return result
    ratings = inputs.ratings
    rows = ratings.loc[ratings["period"].isin([period.text, *period.months]),
                      ["employee_id", "indicator_id", "relation", "score", "period", "_table", "_row"]]
    rows = rows.rename(columns={"period": "rating_period"})
    wanted = detail.loc[rating, ["employee_id", "indicator_id"]].drop_duplicates()
    rows = rows.merge(wanted, on=["employee_id", "indicator_id"])
    used = rating_detail[["employee_id", "indicator_id", "rating_period", "relation", "raters", "weight_used"]]
    rows = rows.merge(used, on=["employee_id", "indicator_id", "rating_period", "relation"])  # rows r was made of
    if rows.empty:
        return result
    prefix = [f"{t.file}!{t.sheet}!{t.letters.get('score', '')}" for t in inputs.tables]
    # A few distinct scores and shares among many rows: each is formatted once.
    share_values = (rows["weight_used"] / rows["raters"] * 100).to_numpy(float)
    share_text = {v: f"{v:.2f}%" for v in np.unique(share_values).tolist()}
    scores = rows["score"].to_numpy(float)
    score_text = {v: format(v, "g") for v in np.unique(scores).tolist()}
    # Grouped by (employee, indicator) in sorted order, each group's cells in sheet order:
    # integer codes sort an order of magnitude faster than the strings themselves.
    employee_codes, employee_keys = pd.factorize(rows["employee_id"], sort=True)
    indicator_codes, indicator_keys = pd.factorize(rows["indicator_id"], sort=True)
    tables, sheet_rows = rows["_table"].to_numpy(int), rows["_row"].to_numpy(int)
    order = np.lexsort((sheet_rows, tables, indicator_codes, employee_codes))
    texts = [f"{prefix[table]}{row} ({relation}, {score_text.get(score) or format(score, 'g')}, "
             f"{share_text.get(share) or f'{share:.2f}%'})" for table, row, relation,
             score, share in zip(tables[order].tolist(), sheet_rows[order].tolist(),
                                 rows["relation"].to_numpy(object)[order].tolist(), scores[order].tolist(),
                                 share_values[order].tolist())]
    # Each (employee, indicator) is now a run of rows: join each run's texts by slicing
    # (pandas' groupby-agg with a Python join costs a frame slice per group).
    employees, indicators = employee_codes[order], indicator_codes[order]
    starts = np.flatnonzero(np.r_[True, (employees[1:] != employees[:-1]) | (indicators[1:] != indicators[:-1])])
    ends = np.r_[starts[1:], len(rows)]
    joined = pd.Series(["; ".join(texts[a:b]) for a, b in zip(starts.tolist(), ends.tolist())],
                       index=pd.MultiIndex.from_arrays([np.asarray(employee_keys, dtype=object)[employees[starts]],
                                                        np.asarray(indicator_keys, dtype=object)[indicators[starts]]]),
                       dtype=object)
    keys = pd.MultiIndex.from_frame(detail[["employee_id", "indicator_id"]])
    found = joined.reindex(keys).to_numpy(dtype=object)
    result[:] = np.where(rating & pd.notna(found), found, "")
    return result


def _exact_rollups(inputs, period: Period, keys: set[tuple[str, str]], aggregation: dict) -> dict:
    """(employee, indicator) -> the exact roll-up of its monthly actuals (as `period_actuals`)."""
    if not keys:
        return {}
    actuals = inputs.actuals
    wanted = actuals["period"].isin(period.months) & actuals["employee_id"].isin({e for e, _ in keys})
    rows = actuals.loc[wanted, ["employee_id", "indicator_id", "period", "actual"]].sort_values(
        ["employee_id", "indicator_id", "period"], kind="stable")
    parts: dict[tuple[str, str], list[Fraction]] = {}
    for employee_id, indicator_id, _, actual in rows.itertuples(index=False, name=None):
        if (employee_id, indicator_id) in keys and not np.isnan(actual):
            parts.setdefault((employee_id, indicator_id), []).append(exact.typed(actual))
    result = {}
    for key, values in parts.items():
        how = aggregation.get(key[1])
        if how == "last":
            result[key] = values[-1]
        elif how == "mean":
            result[key] = sum(values, Fraction(0)) / len(values)
        else:
            result[key] = sum(values, Fraction(0))
    return result


# ------------------------------------------------------------------------------ grades

def forced_grades(totals: pd.DataFrame, policy: Policy) -> pd.Series:
    """Final grades under the policy's forced distribution (see `forced_distribution`)."""
    return forced_distribution(totals, policy)[0]


# Names of the groups other than a department, for the tie warnings.
_COMPANY = ("全公司", "whole company")
_POOLED = ("人数不足 {n} 人的部门合并", "departments under {n} people, pooled")


def forced_distribution(totals: pd.DataFrame, policy: Policy) -> tuple[pd.Series, list[Finding]]:
    """(final grade per row of `totals`, a warning for each tie that overruns a quota).

    Quota: in a group of n, the top i grades (policy order) together hold at most
    quota_i = half_up(cumulative share of those grades × n) people, exactly on the decimals
    typed. Rank: `total_rounded` descending, ties sharing the best rank ("min").
    - rank mode: the first grade i with quota_i ≥ rank; a tie straddling a quota line keeps
      the better grade and the following grades shrink.
    - cap mode: the worse of the score's grade and that rank grade. That is the cascade HR
      runs by hand (the excess over each quota moves down one grade, lowest total first)
      and it never moves anyone up.
    Groups: the whole company, or each department, where departments with fewer than
    `min_group` scored people are ranked together as one company-wide pool (used even if
    that pool is itself small).
    """
    forced = policy.forced_distribution
    order = [g.grade for g in policy.grades]
    if "score_grade" in totals:
        score_grade = totals["score_grade"]
    else:
        score_grade = grades_for(totals["total_rounded"], policy)[0]
    if forced is None or totals.empty:
        return score_grade.astype(object), []
    shares = [Decimal(repr(float(forced.shares.get(g, 0.0)))) for g in order]
    # From the last grade with a share on, everyone fits (the shares sum to 1 within 1e-6).
    full_from = max(i for i, share in enumerate(shares) if share > 0)
    cumulative: np.ndarray = np.cumsum(np.array(shares, dtype=object))

    # Groups: codes 0..k-1 for departments, k for the pool of small ones.
    if forced.group == "company":
        codes = np.zeros(len(totals), dtype=int)
        labels = [_COMPANY]
    else:
        department = totals["department"].astype(object).where(totals["department"].notna(), "")
        codes, names = pd.factorize(department.astype(str))
        small = np.bincount(codes)[codes] < forced.min_group
        codes = np.where(small, len(names), codes)
        labels = [(str(n), str(n)) for n in names] + [(_POOLED[0].format(n=forced.min_group),
                                                       _POOLED[1].format(n=forced.min_group))]
    total = totals["total_rounded"].to_numpy(float)
    by_group = pd.Series(total).groupby(codes)
    rank = by_group.rank(method="min", ascending=False).to_numpy(float)
    size = by_group.transform("size").to_numpy(int)

    # quota_i per distinct group size: one Decimal rounding per size and grade.
    sizes = np.unique(size)
    quota = np.array([[n if i >= full_from else int((c * n).quantize(Decimal(1), rounding=ROUND_HALF_UP))
                       for i, c in enumerate(cumulative)] for n in sizes.tolist()], dtype=int)
    bounds = quota[np.searchsorted(sizes, size)]  # employees x grades, non-decreasing along a row
    rank_index = (rank[:, None] > bounds).sum(axis=1)  # first grade whose quota reaches the rank
    if forced.mode == "rank":
        final = rank_index
    else:
        position = {g: i for i, g in enumerate(order)}
        final = np.maximum(score_grade.map(position).to_numpy(int), rank_index)
    grades = pd.Series(np.array(order, dtype=object)[final], index=totals.index, dtype=object)

    # A tie kept whole can leave more people in the top i grades than quota_i: say so.
    lines = np.arange(len(order) - 1)
    holders = pd.DataFrame(final[:, None] <= lines).groupby(codes).sum()  # groups x grade lines
    group_quota = pd.DataFrame(bounds[:, :-1]).groupby(codes).first()
    excess = holders - group_quota
    findings: list[Finding] = []
    period = str(totals["period"].iloc[0]) if "period" in totals else ""
    for code, line in zip(*np.nonzero(excess.to_numpy() > 0)):
        group_code = excess.index[code]
        members = (codes == group_code) & (final <= line)
        tied_total = total[members].min()
        tied = members & (total == tied_total)
        zh, en = labels[group_code]
        findings.append(finding(
            "forced_tie", period=period, value=f"{tied_total:.{policy.decimals}f}", group=zh, group_en=en,
            count=int(tied.sum()), total=f"{tied_total:.{policy.decimals}f}", grades="+".join(order[:line + 1]),
            excess=int(excess.iat[code, line]), size=int(size[members][0]),
            quota=int(group_quota.iat[code, line]), kept=order[int(final[tied][0])]))
    return grades, findings


# ------------------------------------------------------------------------------ company views

def calibration(detail: pd.DataFrame, indicators: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, list[Finding]]:
    """Per indicator, the share of employees reaching 100%: targets too easy or too hard."""
    if detail.empty:
        return pd.DataFrame(columns=["indicator_id", "name", "employees", "reached", "share", "flag",
                                     *TIER_SHARE_COLUMNS]), []
    grouped = detail.assign(reached=detail["achievement_raw"] >= 1).groupby("indicator_id", sort=True)
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
    table = table.merge(tier_shares(detail), on="indicator_id", how="left")
    return table[["indicator_id", "name", "employees", "reached", "share", "flag", *TIER_SHARE_COLUMNS]], findings


def tier_shares(detail: pd.DataFrame) -> pd.DataFrame:
    """Per indicator, the share of employees whose actual reaches the base, the target and the
    stretch (direction-aware; only rows that have that value), to hold against 80 / 50 / 20%."""
    columns = ["indicator_id", "base_share", "target_share", "stretch_share"]
    if detail.empty or "actual" not in detail.columns:
        return pd.DataFrame(columns=columns)
    lower = (detail["direction"] == "lower") if "direction" in detail.columns else pd.Series(False, index=detail.index)
    actual = pd.to_numeric(detail["actual"], errors="coerce")
    frame = pd.DataFrame({"indicator_id": detail["indicator_id"]})
    for name in ("base", "target", "stretch"):
        line = pd.to_numeric(detail[name], errors="coerce")
        slack = 1e-9 * pd.concat([actual.abs(), line.abs()], axis=1).max(axis=1).clip(lower=1e-300)
        reached = (actual - line).where(~lower, line - actual) >= -slack  # equal within float noise counts
        has = line.notna() & actual.notna()
        frame[f"{name}_has"] = has
        frame[f"{name}_hit"] = reached & has
    grouped = frame.groupby("indicator_id", sort=True)
    sums = grouped.sum()
    table = pd.DataFrame(index=sums.index)
    for name in ("base", "target", "stretch"):
        has = sums[f"{name}_has"]
        table[f"{name}_share"] = (sums[f"{name}_hit"] / has).where(has > 0)
    return table.reset_index()[columns]


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
