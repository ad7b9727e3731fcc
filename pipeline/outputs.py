"""The names of every output column, declared once.

Scripts and auditors read the machine sheets of summary.xlsx and the history database by these
names, so scoring, the writers, the batch, history and trace all take them from here; the
meaning of each is stated in docs/outputs.md (which a test holds to this module).
"""

from __future__ import annotations

# ------------------------------------------------------------------------------ summary.xlsx machine sheets

DETAILS_SHEET = "明细 Details"
TOTALS_SHEET = "总分 Totals"
UNSCORED_SHEET = "未评分 Unscored"

# 明细 Details: one row per employee, period and indicator; the stable names first.
DETAIL_COLUMNS = [
    "employee_id",
    "period",  # the period scored (2026-10, 2026-Q3, ...)
    "indicator_id",
    "weight",  # the weight used, as typed (0.6 for 60%)
    "base",  # tiered only
    "target",
    "stretch",  # tiered only
    "actual",  # the actual used (rolled up for a longer period; r for a rating indicator)
    "achievement",  # clipped to [floor, cap], full precision
    "weighted_score",  # weight × achievement
    "source",  # the origin cell of the actual (360 for ratings)
]
# ... then the extras after them.
DETAIL_EXTRA_COLUMNS = [
    "achievement_raw",  # the achievement before clipping
    "dimension",  # performance, ability or attitude
    "method",  # ratio, tiered, pass_fail or rating
    "direction",  # higher or lower
    "indicator_name",  # from the indicator library
    "agreement_source",  # the agreement cell the weight came from
    "target_source",  # the agreement cell of the target
    "base_source",  # the agreement cell of the base
    "stretch_source",  # the agreement cell of the stretch
    "rating_sources",  # the 360 rows a rating indicator was computed from
    "original_target",  # the agreed target before any adjustment
    "adjustment",  # the adjustment cell that changed this indicator's agreement, empty when none
]
# A progress run's Details also say each indicator's pace: behind, on_track or ahead.
TRACKING_DETAIL_COLUMNS = ["pace"]

# 总分 Totals: one row per employee; the stable names first.
TOTAL_COLUMNS = [
    "employee_id",
    "period",
    "total",  # Σ weighted scores, full precision
    "total_rounded",  # the half-up rounded percent the grade comes from
    "grade",  # the final grade (after a forced distribution, if any)
    "bonus",  # the grade's bonus coefficient
]
TOTAL_EXTRA_COLUMNS = [
    "name",
    "department",
    "rank",  # within the department, by rounded total (ties share the best rank)
    "score_grade",  # the grade the score alone gives
]

# 未评分 Unscored: one row per employee who could not be scored.
UNSCORED_COLUMNS = [
    "employee_id", "period", "name", "department",
    "reason_zh", "reason_en",  # why, in Chinese and English
    "where",  # the cell that made it so (file!sheet!cell)
    "rule",  # the finding's rule name
    "problems",  # how many findings concern the employee
]

# ------------------------------------------------------------------------------ scorecards

# The Details fields a scorecard shows (the writer's rows carry exactly these, in this order).
SCORECARD_DETAIL_FIELDS = ("employee_id", "indicator_id", "name", "dimension", "method", "direction", "unit",
                           "weight", "base", "target", "stretch", "actual", "achievement", "achievement_raw",
                           "weighted_score", "source", "pace", "adjustment_notes")
# The 360 detail under a scorecard's indicator table.
SCORECARD_RATING_FIELDS = ("employee_id", "indicator_id", "rating_period", "relation", "raters", "counted",
                           "mean_score", "policy_weight", "weight_used", "comments")
# The 360 detail scoring computes (one row per employee, indicator, rating period and relation).
RATING_DETAIL_COLUMNS = ["employee_id", "indicator_id", "rating_period", "relation", "mean_score", "raters",
                         "score_total", "policy_weight", "weight_used", "counted", "comments"]

# ------------------------------------------------------------------------------ history database

HISTORY_RESULT_COLUMNS = ["run_id", "period", "employee_id", "department", "role_family", "indicator_id", "weight",
                          "base", "target", "stretch", "original_target", "actual", "achievement", "weighted_score",
                          "adjustment", "source"]
HISTORY_TOTAL_COLUMNS = ["run_id", "period", "employee_id", "total", "total_rounded", "grade", "score_grade", "bonus"]
