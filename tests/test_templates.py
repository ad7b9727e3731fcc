"""The generated templates follow kinds.py exactly, and the committed ones do not drift."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from pipeline.kinds import (
    AGREEMENTS,
    CHOICE,
    KINDS,
    ROSTER,
    TEMPLATE_VERSION,
    WEIGHT,
    WEIGHTS,
    Choice,
    Field,
    Kind,
    SheetSpec,
)
from pipeline.templates import (
    ANCHORS_SHEET,
    EXAMPLE_MARK,
    INSTRUCTIONS_SHEET,
    LISTS_SHEET,
    META_SHEET,
    template_drift,
    write_all_templates,
    write_template,
)

COMMITTED = Path(__file__).resolve().parents[1] / "workbooks" / "templates"
ALL_KINDS = list(KINDS.values())


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("templates")
    write_all_templates(out)
    return out


def _open(template_dir: Path, kind: Kind):
    return openpyxl.load_workbook(template_dir / kind.filename)


def _column(sheet, col: int):
    """The <col> entry covering a column (xlsxwriter merges neighbours with equal settings)."""
    return next(d for d in sheet.column_dimensions.values() if d.min <= col <= d.max)


def _validations_at(sheet, cell: str) -> list:
    return [dv for dv in sheet.data_validations.dataValidation if cell in dv.sqref]


def test_write_all_templates_writes_one_file_per_kind(tmp_path):
    paths = write_all_templates(tmp_path)
    assert sorted(p.name for p in paths) == sorted(k.filename for k in ALL_KINDS)
    assert all(p.stat().st_size > 0 for p in paths)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_sheet_order_and_meta(template_dir, kind):
    workbook = _open(template_dir, kind)
    expected = [INSTRUCTIONS_SHEET]
    for spec in kind.sheets:
        expected.append("AHP-销售" if spec.matrix else spec.name)
    if kind.name == "ratings":
        expected.append(ANCHORS_SHEET)  # the behaviour anchors the raters rate against
    expected.append(META_SHEET)
    assert workbook.sheetnames == expected
    assert workbook.active.title == INSTRUCTIONS_SHEET
    meta = workbook[META_SHEET]
    assert meta.sheet_state == "hidden"
    assert [[c.value for c in row] for row in meta["A1:B3"]] == [
        ["kind", kind.name], ["version", TEMPLATE_VERSION], ["generator", "kpi-pipeline"]]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_header_row_is_the_kinds_fields_in_order(template_dir, kind):
    workbook = _open(template_dir, kind)
    for spec in kind.tables:
        sheet = workbook[spec.name]
        assert [c.value for c in sheet[1]] == [f.header for f in spec.fields]
        assert sheet.max_column == len(spec.fields)
        for cell, f in zip(sheet[1], spec.fields, strict=True):
            assert cell.font.b and cell.alignment.wrap_text
            assert cell.value == f"{f.zh}\n{f.en}"  # nothing added: readers match it exactly


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_example_row_is_marked_grey_and_italic(template_dir, kind):
    workbook = _open(template_dir, kind)
    for spec in kind.tables:
        sheet = workbook[spec.name]
        first = sheet.cell(row=2, column=1).value
        assert isinstance(first, str) and first.startswith(EXAMPLE_MARK)
        for cell in sheet[2]:
            assert cell.font.i, cell.coordinate
            assert cell.font.color.rgb.endswith("808080"), cell.coordinate
        assert sheet.max_row == 2  # a blank template holds nothing but the example


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_choice_columns_have_dropdowns_listing_the_choices(template_dir, kind):
    workbook = _open(template_dir, kind)
    checked = 0
    for spec in kind.tables:
        sheet = workbook[spec.name]
        for col, f in enumerate(spec.fields, start=1):
            if f.type != CHOICE:
                continue
            letter = get_column_letter(col)
            for row in (2, 3, 1001):
                lists = [dv for dv in _validations_at(sheet, f"{letter}{row}") if dv.type == "list"]
                assert len(lists) == 1, (spec.name, f.name, row)
                assert lists[0].formula1 == '"' + ",".join(c.zh for c in f.choices) + '"'
            checked += 1
    assert checked == sum(f.type == CHOICE for s in kind.tables for f in s.fields)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_every_column_has_a_bilingual_input_message(template_dir, kind):
    workbook = _open(template_dir, kind)
    for spec in kind.tables:
        sheet = workbook[spec.name]
        for col, f in enumerate(spec.fields, start=1):
            (validation,) = _validations_at(sheet, f"{get_column_letter(col)}3")
            assert validation.showInputMessage
            assert validation.promptTitle == f"{f.zh} {f.en}"[:32]
            assert f.help_zh in validation.prompt and f.help_en in validation.prompt
            assert len(validation.prompt) <= 255


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_frozen_header_autofilter_and_weight_format(template_dir, kind):
    workbook = _open(template_dir, kind)
    for spec in kind.tables:
        sheet = workbook[spec.name]
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref.startswith("A1:")
        for col, f in enumerate(spec.fields, start=1):
            assert _column(sheet, col).width >= f.width
            if f.type == WEIGHT:
                assert sheet.cell(row=2, column=col).number_format == "0%"
                assert _column(sheet, col).number_format == "0%"


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_instructions_explain_every_column(template_dir, kind):
    sheet = _open(template_dir, kind)[INSTRUCTIONS_SHEET]
    text = [c for row in sheet.iter_rows(values_only=True) for c in row if c]
    joined = "\n".join(map(str, text))
    for line in (*kind.instructions_zh, *kind.instructions_en):
        assert line in joined
    labels = [row[2] for row in sheet.iter_rows(values_only=True) if row[2]]
    for spec in kind.tables:
        for f in spec.fields:
            assert f.label in labels
            for choice in f.choices:
                assert choice.label in joined


def test_weights_template_has_an_example_ahp_matrix(template_dir):
    sheet = _open(template_dir, WEIGHTS)["AHP-销售"]
    ids = [sheet.cell(row=1, column=c).value for c in (2, 3, 4)]
    assert ids == [sheet.cell(row=r, column=1).value for r in (2, 3, 4)]
    assert all(i.startswith(EXAMPLE_MARK) for i in ids)
    assert [sheet.cell(row=r, column=r).value for r in (2, 3, 4)] == [1, 1, 1]
    assert sheet["C2"].value == 3 and sheet["B3"].value == "1/3"


def test_committed_templates_do_not_drift():
    assert template_drift(COMMITTED) == [], "run write_all_templates('workbooks/templates')"


def test_committed_readme_lists_every_template():
    readme = (COMMITTED / "README.md").read_text(encoding="utf-8")
    for kind in ALL_KINDS:
        assert f"`{kind.filename}`" in readme


def test_drift_is_detected_when_a_field_changes(monkeypatch):
    spec = ROSTER.sheets[0]
    changed_field = dataclasses.replace(spec.field("name"), help_zh="员工的身份证姓名")
    fields = tuple(changed_field if f.name == "name" else f for f in spec.fields)
    changed = dataclasses.replace(ROSTER, sheets=(dataclasses.replace(spec, fields=fields),))
    monkeypatch.setitem(KINDS, "roster", changed)
    assert template_drift(COMMITTED) == ["roster.xlsx"]


def test_drift_reports_a_missing_template(tmp_path):
    write_all_templates(tmp_path)
    (tmp_path / "ratings.xlsx").unlink()
    assert template_drift(tmp_path) == ["ratings.xlsx"]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_same_kind_gives_identical_bytes(tmp_path, kind):
    first = write_template(kind, tmp_path / "a.xlsx")
    second = write_template(kind, tmp_path / "b.xlsx")
    assert first.read_bytes() == second.read_bytes()


def test_data_rows_are_written_with_the_right_types(tmp_path):
    role, personal = AGREEMENTS.sheets[:2]
    rows = {
        role.name: [
            {"role_family": "销售", "period": "2026-10", "indicator_id": "SAL-01", "weight": 0.3,
             "target": 60},
            {"role_family": "研发", "period": "2026-10", "indicator_id": "RND-01", "weight": "25%",
             "target": 0.9},
            {"role_family": "行政", "period": "2026-10", "indicator_id": "ADM-01", "weight": 20,
             "base": 1, "target": 2, "stretch": 4},
        ],
        personal.en: [{"employee_id": "=HYPERLINK(\"x\")", "period": "2026-10",
                       "indicator_id": "SAL-01", "weight": 1.0, "target": 100}],
    }
    path = write_template(AGREEMENTS, tmp_path / "agreements.xlsx", rows)
    sheet = openpyxl.load_workbook(path)[role.name]
    assert [c.value for c in sheet[3]] == ["销售", "2026-10", "SAL-01", 0.3, None, 60, None]
    assert sheet["D3"].number_format == "0%"
    assert sheet["D4"].value == "25%" and sheet["D4"].data_type == "s"
    assert sheet["D5"].value == 20 and sheet["D5"].number_format == "General"  # not 2000%
    assert sheet["E5"].value == 1 and sheet["E4"].value is None
    assert sheet.auto_filter.ref == "A1:G5"
    assert _validations_at(sheet, "A1005") and not _validations_at(sheet, "A1006")
    injected = openpyxl.load_workbook(path)[personal.name]["A3"]
    assert injected.data_type == "s" and injected.value.startswith("=")  # text, not a formula


def test_without_example_the_data_starts_in_row_2(tmp_path):
    spec = ROSTER.sheets[0]
    person = {"employee_id": "E001", "name": "王芳", "department": "销售部", "role_family": "销售"}
    path = write_template(ROSTER, tmp_path / "roster.xlsx", {spec.name: [person]}, example=False)
    sheet = openpyxl.load_workbook(path)[spec.name]
    assert sheet["A2"].value == "E001" and not sheet["A2"].font.i
    assert sheet.max_row == 2


def test_ahp_rows_replace_the_example_matrix(tmp_path):
    matrix = {"ids": ["RND-01", "RND-02"], "matrix": [[1, 3], ["1/3", 1]]}
    path = write_template(WEIGHTS, tmp_path / "weights.xlsx", {"AHP-研发": matrix})
    workbook = openpyxl.load_workbook(path)
    assert "AHP-销售" not in workbook.sheetnames
    sheet = workbook["AHP-研发"]
    assert [[c.value for c in row] for row in sheet["A1:C3"]] == [
        [None, "RND-01", "RND-02"], ["RND-01", 1, 3], ["RND-02", "1/3", 1]]


def test_unknown_sheet_or_field_is_refused(tmp_path):
    with pytest.raises(KeyError):
        write_template(ROSTER, tmp_path / "x.xlsx", {"花名册2": []})
    with pytest.raises(KeyError, match="AHP-销售"):
        write_template(ROSTER, tmp_path / "x.xlsx", {"AHP-销售": {"ids": [], "matrix": []}})
    with pytest.raises(KeyError, match="salary"):
        write_template(ROSTER, tmp_path / "x.xlsx", {"Roster": [{"salary": 1}]})


def test_long_choice_lists_move_to_a_hidden_lists_sheet(tmp_path):
    choices = tuple(Choice(f"site{i}", f"第{i}号生产基地车间", f"plant {i}") for i in range(30))
    spec = SheetSpec("基地", "Sites", (Field("site", "基地", "Site", CHOICE, True, choices=choices,
                                             help_zh="基地", help_en="Site", example="示例"),))
    kind = Kind("sites", "基地", "Sites", (spec,))
    workbook = openpyxl.load_workbook(write_template(kind, tmp_path / "sites.xlsx"))
    assert workbook.sheetnames == [INSTRUCTIONS_SHEET, spec.name, LISTS_SHEET, META_SHEET]
    assert workbook[LISTS_SHEET].sheet_state == "hidden"
    assert [c.value for c in workbook[LISTS_SHEET]["A"]] == [c.zh for c in choices]
    (validation,) = _validations_at(workbook[spec.name], "A3")
    assert validation.type == "list" and validation.formula1 == f"{LISTS_SHEET}!$A$1:$A$30"
