"""Behaviour anchors (BARS, seed 003): from the indicator library to the ratings template and to
the level reached on each scorecard; the raters' comments in the 360 block."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from builders import sheet_name, table, write_inbox, write_sheets
from click.testing import CliRunner
from recalc import mismatches

from pipeline.batch import run_batch
from pipeline.cli import main
from pipeline.kinds import INDICATORS, RATINGS
from pipeline.policy import parse_policy
from pipeline.reader import read_workbook
from pipeline.scoring import indicator_anchors, rating_scores
from pipeline.templates import ANCHORS_SHEET, EXAMPLE_MARK, write_ratings_template, write_template
from pipeline.validate import validate
from pipeline.writers import scorecards
from pipeline.writers.fast_sheet import ReferenceSheet
from pipeline.writers.scorecards import anchor_note, comments_note, nearest_level

PERIOD = "2026-10"
RATINGS_SHEET = sheet_name("ratings")
# Seed 003's 责任心, described at 1, 3 and 5; 团队协作 described at every level.
DUTY = {1: "经常拖延任务,需反复催促", 3: "按时完成任务,无重大失误", 5: "主动超额完成任务,承担额外责任"}
TEAM = {1: "拒绝协助同事,推诿责任", 2: "偶尔配合,需要督促", 3: "配合团队工作,完成分配的任务",
        4: "乐于协助同事,主动分享经验", 5: "主动帮助同事,推动团队目标实现"}
LONG_COMMENT = "多次需要催促才提交周报,交付经常晚于约定时间。" * 12


def _anchors(levels: dict[int, str]) -> dict[str, str]:
    return {f"anchor_{level}": text for level, text in levels.items()}


INDICATOR_ROWS = [
    {"indicator_id": "KPI-01", "name": "项目完成率", "dimension": "业绩", "direction": "越高越好", "method": "比率",
     "unit": "%", "anchor_1": "比率指标的描述不显示"},
    {"indicator_id": "ATT-01", "name": "责任心", "dimension": "态度", "direction": "越高越好", "method": "评分",
     **_anchors(DUTY)},
    {"indicator_id": "ATT-02", "name": "团队协作", "dimension": "态度", "direction": "越高越好", "method": "评分",
     **_anchors(TEAM)},
]

# (supervisor, peer, self) per employee and indicator; 研发 weighs them 40/30/30, so
# E1's 责任心 is 0.4×3.5 + 0.3×4 + 0.3×4 = 3.8, E2's 团队协作 4.0, E3's 责任心 0.4×1.5 + 0.3 + 0.3 = 1.2.
SCORES = {"E1": {"ATT-01": (3.5, 4, 4), "ATT-02": (4, 4, 4)},
          "E2": {"ATT-01": (4, 4, 4), "ATT-02": (4, 4, 4)},
          "E3": {"ATT-01": (1.5, 1, 1), "ATT-02": (2, 2, 3)}}
COMMENTS = {("E1", "ATT-01", "peer"): "交接文档写得很清楚",
            ("E1", "ATT-01", "supervisor"): "按时完成任务,偶有延误",
            ("E3", "ATT-01", "self"): "本月家里有事,\n下月改进",
            ("E3", "ATT-01", "supervisor"): LONG_COMMENT}


def _inbox(folder: Path, *, indicators=INDICATOR_ROWS, comments=COMMENTS) -> Path:
    roster = [{"employee_id": "E0", "name": "陈经理", "department": "研发部", "role_family": "研发"}] + [
        {"employee_id": e, "name": n, "department": "研发部", "role_family": "研发", "manager_id": "E0"}
        for e, n in (("E1", "张三"), ("E2", "李四"), ("E3", "王五"))]
    role = [{"role_family": "研发", "period": PERIOD, "indicator_id": i, "weight": w, "target": t}
            for i, w, t in (("KPI-01", 50, "90%"), ("ATT-01", 25, None), ("ATT-02", 25, None))]
    actuals = [{"employee_id": e, "period": PERIOD, "indicator_id": "KPI-01", "actual": "92%"}
               for e in ("E0", "E1", "E2", "E3")]
    ratings = []
    for employee, by_indicator in {**SCORES, "E0": {"ATT-01": (5, 5, 5), "ATT-02": (5, 5, 5)}}.items():
        for indicator, scores in by_indicator.items():
            raters = (("E0" if employee != "E0" else "X1", "上级", "supervisor"),
                      ("E2" if employee != "E2" else "E1", "同事", "peer"), (employee, "自评", "self"))
            for (rater, relation, code), score in zip(raters, scores, strict=True):
                ratings.append({"employee_id": employee, "period": PERIOD, "indicator_id": indicator,
                                "rater_id": rater, "relation": relation, "score": score,
                                "comment": comments.get((employee, indicator, code))})
    return write_inbox(folder, roster=roster, indicators=indicators, role_kpis=role, actuals=actuals,
                       ratings=ratings)


def _run(tmp_path: Path, lang: str = "zh", **inbox) -> Path:
    result = run_batch(_inbox(tmp_path / "inbox", **inbox), PERIOD, tmp_path / "out", parse_policy(""), lang=lang,
                       jobs=1)
    assert result.exit_code == 0
    return result.period_dir / "departments" / "研发部.xlsx"


def _sheet(workbook, employee_id: str):
    return workbook[next(name for name in workbook.sheetnames if name.startswith(employee_id + " "))]


def _rating_block(sheet) -> list[tuple[int, str, str]]:
    """(row, column B, column D) of every row of the 360 block below its header."""
    header = next(row for row in range(1, sheet.max_row + 1)
                  if str(sheet.cell(row, 2).value or "").startswith(("指标编号", "Indicator ID")) and row > 12)
    rows = []
    for row in range(header + 1, sheet.max_row + 1):
        b = sheet.cell(row, 2).value
        if b is None:
            break
        rows.append((row, str(b), str(sheet.cell(row, 4).value or "")))
    return rows


def _merged(sheet, row: int) -> str | None:
    return next((str(r) for r in sheet.merged_cells.ranges if r.min_row == row and r.min_col == 2), None)


# ------------------------------------------------------------------------------ the library


def test_anchors_are_read_from_an_indicator_library_filled_by_hand(tmp_path):
    # HR types short headers (1分, 3分 …) after the template's columns; levels 2 and 4 left empty.
    spec = INDICATORS.sheets[0]
    head = [f.zh for f in spec.fields if not f.name.startswith("anchor_")] + ["1分", "3分", "5分"]
    base = [f.name for f in spec.fields if not f.name.startswith("anchor_")]
    rows = [head]
    for record in INDICATOR_ROWS[:2]:
        rows.append([record.get(name) for name in base] + [record.get(f"anchor_{n}") for n in (1, 3, 5)])
    rows[2][-1] = "  主动超额完成任务,承担额外责任  "  # stray spaces typed around it
    path = write_sheets(tmp_path / "指标库.xlsx", {"指标": rows})
    workbook = read_workbook(path)
    assert workbook.kind == "indicators" and not workbook.findings
    frame = validate([workbook], parse_policy("")).indicators
    assert frame.set_index("indicator_id").loc["ATT-01", "anchor_3"] == DUTY[3]
    assert pd.isna(frame.set_index("indicator_id").loc["ATT-01", "anchor_2"])
    # Only rating indicators carry anchors onward; the ratio indicator's text is not shown anywhere.
    assert indicator_anchors(frame) == {"ATT-01": DUTY}


def test_bilingual_anchor_headers_are_the_kinds_fields(tmp_path):
    path = write_sheets(tmp_path / "indicators.xlsx", {sheet_name("indicators"): table("indicators", INDICATOR_ROWS)})
    frame = validate([read_workbook(path)], parse_policy("")).indicators
    assert indicator_anchors(frame) == {"ATT-01": DUTY, "ATT-02": TEAM}
    assert [f.header for f in INDICATORS.sheets[0].fields[-5:]] == [
        f"{n}分描述\nLevel {n} anchor" for n in range(1, 6)]


def test_no_anchor_columns_means_no_anchors():
    frame = pd.DataFrame({"indicator_id": ["ATT-01"], "method": ["rating"], "name": ["责任心"]})
    assert indicator_anchors(frame) == {}


# ------------------------------------------------------------------------------ the ratings template


def _anchor_rows(path: Path) -> list[tuple]:
    sheet = openpyxl.load_workbook(path)[ANCHORS_SHEET]
    header = next(r for r in range(1, 10) if sheet.cell(r, 1).value == "指标编号\nIndicator ID")
    assert [sheet.cell(header, c).value for c in (3, 4)] == ["分值\nLevel", "行为描述\nBehaviour anchor"]
    return [tuple(sheet.cell(r, c).value for c in (1, 2, 3, 4)) for r in range(header + 1, sheet.max_row + 1)]


def test_ratings_template_lists_each_rating_indicators_levels(tmp_path):
    library = INDICATOR_ROWS + [{"indicator_id": "ATT-03", "name": "主动性", "method": "rating"}]
    typed = [{**row, "method": {"比率": "ratio", "评分": "rating"}.get(row["method"], row["method"])} for row in library]
    rows = _anchor_rows(write_ratings_template(tmp_path / "ratings.xlsx", typed))
    assert rows[:5] == [("ATT-01", "责任心", 1, DUTY[1]), (None, None, 2, "介于 1 分与 3 分之间\nBetween levels 1 and 3"),
                        (None, None, 3, DUTY[3]), (None, None, 4, "介于 3 分与 5 分之间\nBetween levels 3 and 5"),
                        (None, None, 5, DUTY[5])]  # ID and name merged down the indicator's levels
    assert rows[5:10] == [("ATT-02", "团队协作", n, TEAM[n]) if n == 1 else (None, None, n, TEAM[n]) for n in range(1, 6)]
    assert rows[10][:3] == ("ATT-03", "主动性", None) and "describes no level" in rows[10][3]
    assert len(rows) == 11  # the ratio indicator is not listed
    sheet = openpyxl.load_workbook(tmp_path / "ratings.xlsx")[ANCHORS_SHEET]
    assert {str(r) for r in sheet.merged_cells.ranges} >= {"A6:A10", "B6:B10", "A11:A15"}


def test_blank_ratings_template_shows_the_example_anchors_only():
    path = Path(__file__).resolve().parents[1] / "workbooks" / "templates" / "ratings.xlsx"
    rows = _anchor_rows(path)
    assert rows[0][0] == f"{EXAMPLE_MARK}ATT-01" and rows[0][2:] == (1, DUTY[1])
    assert [row[2] for row in rows] == [1, 2, 3, 4, 5] and rows[4][3] == DUTY[5]
    sheet = openpyxl.load_workbook(path)[ANCHORS_SHEET]
    assert sheet.cell(6, 4).font.i  # grey italics, like every example


def test_score_column_points_the_raters_at_the_anchors(tmp_path):
    path = write_ratings_template(tmp_path / "ratings.xlsx", [])
    sheet = openpyxl.load_workbook(path)[RATINGS_SHEET]
    (validation,) = [dv for dv in sheet.data_validations.dataValidation if "F3" in dv.sqref]
    assert ANCHORS_SHEET in validation.prompt and "1–5" in validation.prompt
    assert len(validation.prompt) <= 255 and len(validation.promptTitle) <= 32
    rows = _anchor_rows(path)
    assert "no rating indicators" in rows[0][0]


def test_filled_ratings_template_with_anchors_reads_clean(tmp_path):
    rows = [{"employee_id": "E1", "period": PERIOD, "indicator_id": "ATT-01", "rater_id": "E0", "relation": "上级",
             "score": 4}]
    path = write_template(RATINGS, tmp_path / "ratings.xlsx", {RATINGS_SHEET: rows},
                          anchors=[("ATT-01", "责任心", DUTY)])
    workbook = read_workbook(path)
    assert workbook.kind == "ratings" and not workbook.findings
    assert [(t.sheet, len(t.frame)) for t in workbook.tables] == [(RATINGS_SHEET, 1)]


def test_kpi_templates_indicators_writes_the_ratings_template(tmp_path):
    library = write_sheets(tmp_path / "lib.xlsx", {sheet_name("indicators"): table("indicators", INDICATOR_ROWS)})
    result = CliRunner().invoke(main, ["templates", "--indicators", str(library), "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["ratings.xlsx"]
    assert "2 rating indicators" in result.output
    assert [row[:3] for row in _anchor_rows(tmp_path / "t" / "ratings.xlsx")][::5] == [
        ("ATT-01", "责任心", 1), ("ATT-02", "团队协作", 1)]


def test_kpi_templates_leaves_out_the_librarys_rows_with_errors_and_exits_1(tmp_path):
    rows = INDICATOR_ROWS + [
        {"indicator_id": "ATT-03", "name": "主动性", "dimension": "态度", "direction": "越高越好", "method": "打分",
         "anchor_1": "等待安排"},
        {"indicator_id": "ATT-01", "name": "责任心(重复)", "dimension": "态度", "direction": "越高越好", "method": "评分",
         "anchor_1": "重复"}]
    library = write_sheets(tmp_path / "lib.xlsx", {sheet_name("indicators"): table("indicators", rows)})
    result = CliRunner().invoke(main, ["templates", "--indicators", str(library), "--out", str(tmp_path / "t"),
                                       "--lang", "en"])
    assert result.exit_code == 1
    assert "3 errors in lib.xlsx: the rows with errors are left out" in result.output
    assert "指标库 Indicators!F5" in result.output  # the unknown scoring method's cell
    listed = [row[0] for row in _anchor_rows(tmp_path / "t" / "ratings.xlsx") if row[0]]
    assert listed == ["ATT-02"]  # the duplicated ATT-01 and the unreadable ATT-03 are not guessed at


def test_kpi_templates_refuses_a_file_that_is_no_indicator_library(tmp_path):
    roster = write_sheets(tmp_path / "roster.xlsx", {sheet_name("roster"): table("roster", [
        {"employee_id": "E1", "name": "张三", "department": "研发部", "role_family": "研发"}])})
    result = CliRunner().invoke(main, ["templates", "--indicators", str(roster), "--out", str(tmp_path / "t"),
                                       "--lang", "en"])
    assert result.exit_code == 2
    assert "roster.xlsx is not an indicator library" in result.output
    assert not (tmp_path / "t").exists()


# ------------------------------------------------------------------------------ the level reached


@pytest.mark.parametrize("rating, levels, expected", [
    (3.8, DUTY, 3),  # |3.8 − 3| = 0.8 < |3.8 − 5| = 1.2
    (4.0, TEAM, 4),  # exactly a described level
    (1.2, DUTY, 1),
    (4.0, DUTY, 5),  # as near 3 as 5: ties go up
    (3.995, DUTY, 5),  # shown as 4.00 (half-up): decided on the number the table shows
    (2.0, {3: "x", 5: "y"}, 3),
    (4.6, {1: "x"}, 1),
])
def test_nearest_described_level(rating, levels, expected):
    assert nearest_level(rating, levels) == expected


def test_anchor_note_words():
    assert anchor_note(3.8, DUTY, "zh") == f"达到水平(最接近 3 分) Level reached (closest: 3):{DUTY[3]}"
    assert anchor_note(4.0, TEAM, "zh") == f"达到水平(最接近 4 分) Level reached (closest: 4):{TEAM[4]}"
    assert anchor_note(4.0, DUTY, "zh").startswith("达到水平(最接近 5 分)")  # a tie goes up
    assert anchor_note(1.2, DUTY, "en") == f"Level reached (closest: 1): {DUTY[1]}"


def test_scorecards_show_the_anchor_of_the_level_reached_under_the_indicators_rows(tmp_path):
    path = _run(tmp_path)
    workbook = openpyxl.load_workbook(path)
    expected = {("E1", "ATT-01"): f"(最接近 3 分) Level reached (closest: 3):{DUTY[3]}",  # r = 3.8
                ("E2", "ATT-02"): f"(最接近 4 分) Level reached (closest: 4):{TEAM[4]}",  # r = 4.0
                ("E2", "ATT-01"): f"(最接近 5 分) Level reached (closest: 5):{DUTY[5]}",  # r = 4.0, tie up
                ("E3", "ATT-01"): f"(最接近 1 分) Level reached (closest: 1):{DUTY[1]}"}  # r = 1.2
    for (employee, indicator), text in expected.items():
        sheet = _sheet(workbook, employee)
        block = _rating_block(sheet)
        last = max(row for row, b, _ in block if b == indicator)
        assert sheet.cell(last + 1, 2).value == "达到水平" + text
        assert _merged(sheet, last + 1) == f"B{last + 1}:I{last + 1}"  # one wrapped line across the block
        assert sheet.cell(last + 1, 2).alignment.wrap_text
        assert sheet.row_dimensions[last + 1].height >= 18
    # The rating in the indicator table still sums its own relations' rows, not the lines between.
    checked, problems = mismatches(path)
    assert checked and not problems, problems[:5]
    sheet = _sheet(workbook, "E1")
    rows = [row for row, b, _ in _rating_block(sheet) if b == "ATT-02"]
    table_row = next(r for r in range(11, 20) if sheet.cell(r, 2).value == "ATT-02")
    assert sheet.cell(table_row, 10).value == f"=SUMPRODUCT(I{rows[0]}:I{rows[-1]},G{rows[0]}:G{rows[-1]})"


def test_english_scorecards_word_the_level_in_english(tmp_path):
    sheet = _sheet(openpyxl.load_workbook(_run(tmp_path, lang="en")), "E3")
    texts = [b for _, b, _ in _rating_block(sheet)]
    assert f"Level reached (closest: 1): {DUTY[1]}" in texts
    assert any(t.startswith("Comments: supervisor: 多次需要催促") for t in texts)


# ------------------------------------------------------------------------------ comments


def test_rating_detail_carries_the_comments_per_relation():
    ratings = pd.DataFrame({
        "employee_id": ["E1"] * 5, "indicator_id": ["A"] * 5,
        "relation": ["supervisor", "peer", "peer", "peer", "self"], "score": [4.0, 3.0, 4.0, 5.0, 5.0],
        "period": [PERIOD] * 5, "comment": ["按时\n完成", None, "乐于助人", "  主动分享  ", ""],
    })
    roster = pd.DataFrame({"employee_id": ["E1"], "role_family": ["研发"]})
    _, detail = rating_scores(ratings, roster, PERIOD, parse_policy(""))
    comments = dict(zip(detail["relation"], detail["comments"]))
    assert comments["supervisor"] == "按时 完成"  # one line per comment
    assert comments["peer"] == "乐于助人\n主动分享"  # the peers' in file order, blanks left out
    assert pd.isna(comments["self"])
    _, without = rating_scores(ratings.drop(columns="comment"), roster, PERIOD, parse_policy(""))
    assert without["comments"].isna().all()


def test_comments_are_shown_with_their_relation_supervisor_first(tmp_path):
    workbook = openpyxl.load_workbook(_run(tmp_path))
    sheet = _sheet(workbook, "E1")
    block = _rating_block(sheet)
    last = max(row for row, b, _ in block if b == "ATT-01")
    assert sheet.cell(last + 2, 2).value == "评语 Comments:上级:按时完成任务,偶有延误;同事:交接文档写得很清楚"
    assert _merged(sheet, last + 2) == f"B{last + 2}:I{last + 2}"
    # E2 has no comments: its indicators get the anchor line alone.
    assert not any(b.startswith("评语") for _, b, _ in _rating_block(_sheet(workbook, "E2")))


def test_long_comments_are_cut_to_a_few_lines_with_the_whole_text_in_a_note(tmp_path):
    workbook = openpyxl.load_workbook(_run(tmp_path))
    sheet = _sheet(workbook, "E3")
    (row, text), = [(r, b) for r, b, _ in _rating_block(sheet) if b.startswith("评语")]
    assert text.startswith("评语 Comments:上级:多次需要催促") and text.endswith("…")
    assert "自评" not in text  # the self-rating's comment comes after the supervisor's long one
    assert len(text) < len(LONG_COMMENT)
    note = sheet.cell(row, 2).comment.text
    assert LONG_COMMENT in note and "自评:本月家里有事, 下月改进" in note
    assert sheet.row_dimensions[row].height <= 15 * scorecards.NOTE_LINES + 3


def test_comments_note_is_empty_without_comments():
    item = scorecards._row_class(("relation", "rating_period", "comments"))("peer", PERIOD, None)
    assert comments_note([item], PERIOD, "zh") == ""


# ------------------------------------------------------------------------------ nothing to show


def test_without_anchors_or_comments_nothing_is_added_and_the_layout_holds(tmp_path):
    plain = [{k: v for k, v in row.items() if not k.startswith("anchor_")} for row in INDICATOR_ROWS]
    path = _run(tmp_path, indicators=plain, comments={})
    workbook = openpyxl.load_workbook(path)
    for employee in ("E0", "E1", "E2", "E3"):
        sheet = _sheet(workbook, employee)
        block = _rating_block(sheet)
        assert [b for _, b, _ in block] == ["ATT-01"] * 3 + ["ATT-02"] * 3  # the relations' rows only
        assert [row for row, _, _ in block] == list(range(block[0][0], block[0][0] + 6))
        texts = [str(c.value) for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
        assert not any("达到水平" in t or "Comments" in t for t in texts)
        # The review section still starts one row below the block.
        review = next(r for r in range(1, sheet.max_row + 1) if str(sheet.cell(r, 9).value or "").startswith("绩效面谈"))
        assert review == block[-1][0] + 2
    checked, problems = mismatches(path)
    assert checked and not problems, problems[:5]


# ------------------------------------------------------------------------------ FastSheet


def test_notes_and_comments_are_byte_identical_to_xlsxwriter_cells(tmp_path, monkeypatch):
    inbox = _inbox(tmp_path / "inbox")
    policy = parse_policy("")
    fast = run_batch(inbox, PERIOD, tmp_path / "fast", policy, jobs=1)
    monkeypatch.setattr(scorecards, "SHEET_CLASS", ReferenceSheet)
    monkeypatch.setattr(scorecards, "CHART_TEMPLATES", False)
    reference = run_batch(inbox, PERIOD, tmp_path / "reference", policy, jobs=1)
    name = "departments/研发部.xlsx"
    with zipfile.ZipFile(fast.period_dir / name) as a, zipfile.ZipFile(reference.period_dir / name) as b:
        assert a.namelist() == b.namelist()
        assert any("comments" in member for member in a.namelist())  # the long comment's note
        for member in a.namelist():
            assert a.read(member) == b.read(member), member
