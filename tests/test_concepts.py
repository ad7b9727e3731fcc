"""One home per concept: trace reads the scorecard by the writer's own layout, in either language."""

from __future__ import annotations

import openpyxl
import pytest
from company import PERIOD, small_company

from pipeline.batch import run_batch
from pipeline.outputs import DETAIL_COLUMNS, DETAILS_SHEET, TOTAL_COLUMNS, TOTALS_SHEET
from pipeline.policy import load_policy
from pipeline.trace import trace_employee
from pipeline.writers.scorecards import (
    ACHIEVEMENT_LETTER,
    ACTUAL_LETTER,
    WEIGHTED_SCORE_LETTER,
)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_trace_finds_every_scorecard_formula_in_either_language(tmp_path, lang):
    result = run_batch(small_company(tmp_path / "inbox"), PERIOD, tmp_path / "out", load_policy(), jobs=1, lang=lang)
    report = trace_employee(result.period_dir, "S002")
    by_key = {(n.indicator_id, n.item): n for n in report.numbers}
    assert by_key[("K01", "achievement")].source.startswith(ACHIEVEMENT_LETTER)
    assert f"{ACTUAL_LETTER}" in by_key[("K01", "achievement")].formula
    assert by_key[("K01", "weighted_score")].formula.endswith(f"*{ACHIEVEMENT_LETTER}{by_key[('K01', 'weighted_score')].source[1:]}")
    assert by_key[("", "total_rounded")].formula.startswith(f"=ROUND(SUM({WEIGHTED_SCORE_LETTER}")
    assert by_key[("", "total")].formula.startswith(f"=SUM({WEIGHTED_SCORE_LETTER}")
    assert by_key[("", "grade")].formula.startswith("=LOOKUP(")
    assert by_key[("", "bonus")].formula.startswith("=INDEX(")
    summary = openpyxl.load_workbook(result.period_dir / "summary.xlsx", read_only=True)
    assert [c.value for c in next(summary[DETAILS_SHEET].iter_rows(max_row=1))][:len(DETAIL_COLUMNS)] == DETAIL_COLUMNS
    assert [c.value for c in next(summary[TOTALS_SHEET].iter_rows(max_row=1))][:len(TOTAL_COLUMNS)] == TOTAL_COLUMNS


@pytest.mark.parametrize(("sheet", "role_family"), [
    ("AHP-销售", "销售"), ("ahp－研发 ", "研发"), (" ＡＨＰ-行政", "行政"), ("AHP_销售", None), ("AHPX", None),
    ("ExpertNotes", None),
])
def test_the_ahp_sheet_rule_is_one_rule_for_the_reader_and_the_weights(sheet, role_family):
    from pipeline.kinds import AHP_SHEETS
    from pipeline.reader import _sheet_matches

    assert AHP_SHEETS.after_prefix(sheet) == role_family
    assert _sheet_matches(AHP_SHEETS, sheet) is (role_family is not None)
