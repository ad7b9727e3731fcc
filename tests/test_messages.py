"""Errors that point at the cause: 'did you mean' for mistyped IDs, every row of a weight set marked."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from builders import write_inbox

from pipeline.batch import run_batch
from pipeline.policy import load_policy
from pipeline.reader import read_inbox
from pipeline.suggest import IdIndex, edit_distance
from pipeline.validate import validate

RED = "FFFFC7CE"
PEOPLE = [{"employee_id": f"E00{i}", "name": f"员工{i}", "department": "研发部", "role_family": "研发"}
          for i in range(1, 6)]
INDICATORS = [{"indicator_id": k, "name": k, "dimension": "业绩", "direction": "越高越好", "method": "比率"}
              for k in ("K1", "K2", "K3")]


def test_edit_distance_counts_a_swap_of_neighbours_as_one() -> None:
    assert edit_distance("E040", "E004") == 1
    assert edit_distance("E004", "E004") == 0
    assert edit_distance("E04", "E004") == 1
    assert edit_distance("E104", "E004") == 1
    assert edit_distance("X999", "E004") == 4


def test_nearest_ids() -> None:
    index = IdIndex(["E004", "E041", "E123", "F999"])
    assert index.nearest("E040") == ["E004", "E041"]  # a swap and a substitution, one edit each
    assert index.nearest("e004") == ["E004"]           # case slip
    assert index.nearest("E0004") == ["E004"]          # doubled character
    assert index.nearest("Z777") == []                 # nothing close: no guess


def test_unknown_employee_suggests_the_nearest_id(tmp_path: Path) -> None:
    role = [{"role_family": "研发", "period": "2026-10", "indicator_id": k, "weight": w, "target": 100}
            for k, w in (("K1", "50%"), ("K2", "30%"), ("K3", "20%"))]
    actuals = [{"employee_id": "E040", "period": "2026-10", "indicator_id": "K1", "actual": 90},
               {"employee_id": "Q777", "period": "2026-10", "indicator_id": "K2", "actual": 90}]
    write_inbox(tmp_path, roster=PEOPLE, indicators=INDICATORS, role_kpis=role, actuals=actuals)
    inputs = validate(read_inbox(tmp_path), load_policy(), "2026-10")
    unknown = {f.value: f for f in inputs.findings if f.rule == "unknown_employee"}
    assert "Did you mean 'E004'?" in unknown["E040"].message_en
    assert "是否应为“E004”?" in unknown["E040"].message_zh
    assert "Did you mean" not in unknown["Q777"].message_en and "是否应为" not in unknown["Q777"].message_zh


def test_weight_sum_error_marks_every_row_of_the_set(tmp_path: Path) -> None:
    personal = [{"employee_id": "E001", "period": "2026-10", "indicator_id": k, "weight": w, "target": 100}
                for k, w in (("K1", "50%"), ("K2", "30%"), ("K3", "10%"))]  # 90%
    role = [{"role_family": "研发", "period": "2026-10", "indicator_id": k, "weight": w, "target": 100}
            for k, w in (("K1", "50%"), ("K2", "30%"), ("K3", "20%"))]
    actuals = [{"employee_id": e["employee_id"], "period": "2026-10", "indicator_id": k, "actual": 100}
               for e in PEOPLE for k in ("K1", "K2", "K3")]
    inbox = write_inbox(tmp_path / "inbox", roster=PEOPLE, indicators=INDICATORS, role_kpis=role,
                        employee_kpis=personal, actuals=actuals)
    result = run_batch(inbox, "2026-10", tmp_path / "out", load_policy(), jobs=1)
    [error] = [f for f in result.findings if f.rule == "weight_sum"]
    assert (error.cell, error.also) == ("D2", ("D3", "D4"))
    book = openpyxl.load_workbook(result.period_dir / "errors" / "agreements.xlsx.errors.xlsx")
    sheet = book["个人指标 EmployeeKPIs"]
    assert [sheet[cell].fill.fgColor.rgb for cell in ("D2", "D3", "D4")] == [RED, RED, RED]
