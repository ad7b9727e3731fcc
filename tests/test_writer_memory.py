"""Written workbooks are freed by reference counting, without the garbage collector.

The batch writes with automatic collection paused (`batch._run_task`); a reference cycle left
in a finished workbook would keep all of it in memory until the task ends.
"""

from __future__ import annotations

import gc

from company import small_company

from pipeline.batch import department_jobs
from pipeline.policy import parse_policy
from pipeline.reader import read_inbox
from pipeline.scoring import score_period
from pipeline.validate import validate
from pipeline.writers.scorecards import write_department_workbook
from pipeline.writers.summary_book import write_summary_workbook

PERIOD = "2026-10"


def test_finished_workbooks_leave_no_reference_cycles(tmp_path):
    policy = parse_policy("")
    inputs = validate(read_inbox(small_company(tmp_path / "inbox"), policy.limits), policy, PERIOD)
    scores = score_period(inputs, policy, PERIOD)
    jobs = department_jobs(scores, inputs.roster, tmp_path / "departments", policy, policy.max_sheets)
    assert jobs and any(with_sheets for _, _, with_sheets in jobs)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds, to look at it
    try:
        for path, data, with_sheets in jobs:
            write_department_workbook(path, data, policy, "zh", employee_sheets=with_sheets)
        write_summary_workbook(tmp_path / "summary.xlsx", scores, inputs.findings + scores.findings, policy, "zh",
                               indicators=inputs.indicators)
        gc.collect()
        left = {type(o).__module__ + "." + type(o).__qualname__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    # pandas' itertuples makes a namedtuple class per call (a class is always a cycle); no
    # workbook, sheet, chart or format may be left for the collector.
    assert not {name for name in left if name.startswith(("xlsxwriter.", "pipeline."))}, left
    assert all(path.exists() for path, _, _ in jobs)
