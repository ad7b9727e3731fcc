"""AHP sheets are read once, by the reader, with the rest of the weights workbook: the batch and
`kpi weights` find the matrices in what it kept, and never open the file again."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import openpyxl
import pytest
import python_calamine
from builders import assert_messages, sheet_name, table, write_book

from pipeline.batch import compute_inbox_weights
from pipeline.cli import compute_weights_file
from pipeline.policy import load_policy
from pipeline.reader import read_workbook
from pipeline.safety import Limits
from pipeline.validate import validate

SCORES = [{"role_family": "销售", "expert_id": x, "indicator_id": k, "score": s}
          for x, row in (("X1", (8, 6, 4)), ("X2", (9, 6, 3)), ("X3", (8, 5, 4)))
          for k, s in zip(("K1", "K2", "K3"), row)]


def weights_book(path: Path, matrix: list[list], *, cells: dict[str, object] | None = None,
                 start_row: int = 1) -> Path:
    """A weights workbook as HR fills it: expert scores, and one AHP sheet whose matrix starts
    at `start_row` (a title typed above it in `cells`)."""
    return write_book(path, {sheet_name("weights"): table("weights", SCORES), "AHP-销售": matrix},
                      start_row={"AHP-销售": start_row}, cells={"AHP-销售": cells or {}})


def test_the_batch_finds_ahp_matrices_in_what_the_reader_kept(tmp_path, monkeypatch):
    # The matrix sits at B3 under a title: the used area does not start at A1.
    matrix = [[None, "指标", "K1", "K2", "K3"],
              [None, "K1", 1, 3, 5],
              [None, "K2", None, 1, "2"],
              [None, "K3", None, None, 1]]
    path = weights_book(tmp_path / "weights.xlsx", matrix, start_row=3, cells={"C1": "销售岗 判断矩阵"})
    policy = load_policy()
    workbook = read_workbook(path, path.name, policy.limits)
    assert workbook.kind == "weights" and workbook.findings == []
    (kept,) = workbook.matrices  # the AHP sheet keeps its cells; the expert sheet is a table
    assert (kept.sheet, kept.role_family) == ("AHP-销售", "销售") and kept.rows
    assert [t.sheet for t in workbook.tables] == [sheet_name("weights")]
    inputs = validate([workbook], policy)

    # Nothing can be opened again: not the file, not its bytes, not with any library.
    workbook.release_bytes()
    path.unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("the weights workbook was opened a second time")

    monkeypatch.setattr(openpyxl, "load_workbook", refuse)
    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", refuse)
    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_path", refuse)
    results, findings = compute_inbox_weights(inputs, policy)
    assert findings == []
    ahp = next(r for r in results if r.method == "ahp")
    assert ahp.role_family == "销售" and list(ahp.weights) == ["K1", "K2", "K3"]
    assert ahp.weights["K1"] > ahp.weights["K2"] > ahp.weights["K3"]
    assert ahp.cr is not None and ahp.cr < 0.10
    assert [r.method for r in results] == ["expert", "ahp"]


def test_blank_looking_cells_in_an_ahp_matrix_read_by_the_reader(tmp_path):
    matrix = [[None, "A", "B", "C", "D"],
              ["A", 1, None, None, "   "],  # C2, D2 below; E2 only spaces, and B5 blank: no judgment
              ["B", None, 1, 2, 3],
              ["C", None, None, 1, 2],
              ["D", None, None, None, 1]]
    cells = {"C2": "=1/3",  # a formula openpyxl saves without a cached value: calamine reads ""
             "D2": "#N/A"}  # an error value: calamine reads ""
    path = weights_book(tmp_path / "weights.xlsx", matrix, cells=cells)
    results, findings = compute_weights_file(path, load_policy())
    assert [r.method for r in results] == ["expert"]  # the matrix yields no weights
    assert [(f.rule, f.sheet, f.cell, f.value) for f in findings] == [
        ("formula_no_value", "AHP-销售", "C2", "=1/3"),
        ("error_value", "AHP-销售", "D2", "#N/A"),
        ("required", "AHP-销售", "E2", ""),
    ]
    assert [f.where for f in findings] == ["weights.xlsx!AHP-销售!C2", "weights.xlsx!AHP-销售!D2",
                                           "weights.xlsx!AHP-销售!E2"]
    assert all(f.is_error for f in findings)
    assert_messages(findings[0], "=1/3")
    assert_messages(findings[1], "#N/A")
    assert [f.column for f in findings] == ["A vs B", "A vs C", "A vs D"]


def test_an_ahp_sheet_beyond_the_readers_limits_is_refused_whole(tmp_path):
    matrix = [[None, "K1", "K2"], ["K1", 1, 3], ["K2", None, 1]]
    path = weights_book(tmp_path / "weights.xlsx", matrix, cells={"Z400": "x"})  # 400 × 26 cells
    policy = load_policy()
    small = dataclasses.replace(policy, limits=Limits(max_cells=5_000))
    results, findings = compute_weights_file(path, small)
    assert results == []
    assert [f.rule for f in findings] == ["unreadable"]
    assert "AHP-销售" in findings[0].message_en and "max_cells" in findings[0].message_en
    results, findings = compute_weights_file(path, policy)  # within the default limits: read
    assert findings == [] and [r.method for r in results] == ["expert", "ahp"]


@pytest.mark.parametrize("sheet", ["AHP-销售", "ahp－销售 "])
def test_only_ahp_sheets_keep_their_cells(tmp_path, sheet):
    """Only an AHP sheet is kept as cells (from A1, whatever its name's width and case)."""
    path = write_book(tmp_path / "weights.xlsx", {sheet_name("weights"): table("weights", SCORES),
                                                  sheet: [[None, "K1"], ["K1", 1]]})
    workbook = read_workbook(path)
    assert [(m.sheet, m.cells()) for m in workbook.matrices] == [(sheet, [["", "K1"], ["K1", 1.0]])]


def test_a_formula_excel_calculated_to_nothing_is_a_blank_judgment(tmp_path):
    """`=IF(C2="","",1/C2)` in the lower triangle, saved by Excel with its result "" (C2 is not
    filled in yet): calculated, so blank, and the judgment asked for is C2's; not a formula
    without a value to recalculate."""
    from builders import replace_members

    matrix = [[None, "K1", "K2"], ["K1", 1, None], ["K2", None, 1]]
    typed = weights_book(tmp_path / "typed.xlsx", matrix, cells={"B3": '=IF(C2="","",1/C2)'})
    with zipfile.ZipFile(typed) as book:
        part = next(n for n in book.namelist() if n.startswith("xl/worksheets/") and b"IF(" in book.read(n))
        xml = book.read(part)
    uncached = b'<c r="B3"><f>IF(C2="","",1/C2)</f><v /></c>'
    assert uncached in xml  # as openpyxl saves it: never calculated
    _, findings = compute_weights_file(typed, load_policy())
    assert [(f.rule, f.cell) for f in findings] == [("formula_no_value", "B3")]
    excel = replace_members(typed, tmp_path / "weights.xlsx", replace={
        part: xml.replace(uncached, b'<c r="B3" t="str"><f>IF(C2="","",1/C2)</f><v></v></c>')})
    results, findings = compute_weights_file(excel, load_policy())
    assert [(f.rule, f.cell, f.column) for f in findings] == [("required", "C2", "K1 vs K2")]
    assert [r.method for r in results] == ["expert"]
