"""What the batch frees or defers to keep its memory down gives the same data as before.

The read values are dropped once validated (`validate(..., release_rows=True)`), department
details and ratings stay positions in the scores until a writer reads them (`DepartmentRows`),
and a source text is made once per agreement row: none of it may change what is written.
"""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
from company import PERIOD, small_company

from pipeline.batch import PYTHON_STRINGS, DepartmentRows, department_jobs
from pipeline.policy import parse_policy
from pipeline.reader import read_inbox
from pipeline.scoring import score_period
from pipeline.validate import validate
from pipeline.writers.scorecards import DETAIL_FIELDS, RATING_FIELDS, DepartmentData

# Two sheets per workbook: the departments of three become a summary plus team workbooks.
POLICIES = {"default": "", "teams": "output: {max_sheets: 2}\n"}


@pytest.fixture(scope="module")
def inbox(tmp_path_factory):
    return small_company(tmp_path_factory.mktemp("memory") / "inbox", mistake=True)


def _scored(inbox, policy, **options):
    with pd.option_context(*PYTHON_STRINGS):  # as in the batch, whether or not pyarrow is installed
        workbooks = read_inbox(inbox, policy.limits)
        inputs = validate(workbooks, policy, PERIOD, **options)
        return workbooks, inputs, score_period(inputs, policy, PERIOD)


def test_releasing_the_read_values_keeps_counts_frames_findings_and_scores(inbox):
    policy = parse_policy("")
    kept_books, kept, kept_scores = _scored(inbox, policy)
    books, released, scores = _scored(inbox, policy, release_rows=True)
    assert all(len(t.frame) == 0 for wb in books for t in wb.tables)
    assert [wb.rows for wb in books] == [wb.rows for wb in kept_books] and any(wb.rows for wb in books)
    assert [t.cell("employee_id", 5) for t in released.tables] == [t.cell("employee_id", 5) for t in kept.tables]
    assert released.frames.keys() == kept.frames.keys()
    for name, frame in kept.frames.items():
        pd.testing.assert_frame_equal(released.frames[name], frame)
    assert [f.as_dict() for f in released.findings] == [f.as_dict() for f in kept.findings]
    for name in ("details", "totals", "unscored", "ratings", "cascade", "calibration"):
        pd.testing.assert_frame_equal(getattr(scores, name), getattr(kept_scores, name))


def test_source_texts_are_the_agreement_cells_and_shared_per_agreement_row(inbox):
    policy = parse_policy("")
    _, inputs, scores = _scored(inbox, policy)
    details = scores.details
    for column, field_name in (("agreement_source", "weight"), ("target_source", "target")):
        expected = [f"{inputs.tables[t].file}!{inputs.tables[t].sheet}!{inputs.tables[t].letters.get(field_name, '')}{r}"
                    for t, r in zip(details["_table"], details["_row"])]
        assert details[column].tolist() == expected
        assert str(details[column].dtype) == "str"
        objects = {}
        for (t, r), text in zip(zip(details["_table"], details["_row"]), details[column].tolist()):
            assert objects.setdefault((t, r), text) is text  # one string per agreement row
    assert details.groupby(["_table", "_row"]).ngroups < len(details)  # role rows are shared


def _split(frame: pd.DataFrame, keys: pd.Series) -> dict:
    return {key: group for key, group in frame.groupby(keys, sort=False)} if not frame.empty else {}


@pytest.mark.parametrize("policy_text", POLICIES.values(), ids=POLICIES.keys())
def test_department_rows_read_as_the_frames_split_by_workbook(inbox, tmp_path, policy_text):
    policy = parse_policy(policy_text)
    _, inputs, scores = _scored(inbox, policy)
    jobs = department_jobs(scores, inputs.roster, tmp_path, policy, policy.max_sheets)
    assert all(isinstance(data, DepartmentRows) for _, data, _ in jobs)
    if policy_text:
        assert not all(with_sheets for _, _, with_sheets in jobs)  # summary-only workbooks are covered
    # What department_jobs handed the writers before: each frame split by the workbook that
    # shows the employee's sheet (by department for a summary-only workbook).
    sheet_of = {e: i for i, (_, data, with_sheets) in enumerate(jobs) if with_sheets
                for e in data.totals["employee_id"]}
    department_of = dict(zip(scores.totals["employee_id"], scores.totals["department"]))
    details, ratings = scores.details, scores.ratings
    by_sheet = _split(details, details["employee_id"].map(sheet_of))
    ratings_by_sheet = _split(ratings, ratings["employee_id"].map(sheet_of))
    by_department = _split(details, details["employee_id"].map(department_of))
    shown = 0
    for i, (_, data, with_sheets) in enumerate(jobs):
        expected = by_sheet.get(i, details.iloc[0:0]) if with_sheets else by_department.get(data.department,
                                                                                          details.iloc[0:0])
        expected_ratings = ratings_by_sheet.get(i, ratings.iloc[0:0]) if with_sheets else ratings.iloc[0:0]
        assert data.count("details") == len(expected) and data.count("ratings") == len(expected_ratings)
        pd.testing.assert_frame_equal(data.details, expected[[c for c in expected if c in DETAIL_FIELDS]])
        pd.testing.assert_frame_equal(data.ratings, expected_ratings[[c for c in expected_ratings
                                                                      if c in RATING_FIELDS]])
        assert set(DETAIL_FIELDS) <= set(data.details.columns)
        shown += len(expected) if with_sheets else 0
    assert shown == len(details)  # every detail row is on one employee sheet


def test_department_rows_pickle_as_plain_department_data(inbox, tmp_path):
    policy = parse_policy("")
    _, inputs, scores = _scored(inbox, policy)
    _, data, _ = department_jobs(scores, inputs.roster, tmp_path, policy, policy.max_sheets)[0]
    copy = pickle.loads(pickle.dumps(data))
    assert type(copy) is DepartmentData  # its own rows travel, not the frames they are taken from
    pd.testing.assert_frame_equal(copy.details, data.details)
    pd.testing.assert_frame_equal(copy.ratings, data.ratings)
    pd.testing.assert_frame_equal(copy.totals, data.totals)
    assert (copy.department, copy.period, copy.title, copy.managers) == (data.department, data.period, data.title,
                                                                         data.managers)
