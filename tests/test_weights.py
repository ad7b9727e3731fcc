"""Weights (SPEC §4): expert scores, AHP, display rounding, two levels, the weights workbook."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.weights import (
    RI_SAATY_1980,
    AhpSheet,
    ExpertResult,
    JudgmentCell,
    WeightResult,
    ahp,
    ahp_weights,
    check_pairwise,
    compute_weights,
    expert_weights,
    global_weights,
    kendall_w,
    kendall_w_meaning,
    largest_remainder,
    pairwise_matrix,
    parse_judgment,
    read_ahp_sheets,
)
from pipeline.writers.weights_book import (
    CONSISTENCY_SHEET,
    ROLE_KPIS_HEADERS,
    ROLE_KPIS_SHEET,
    WEIGHTS_SHEET,
    write_weights_workbook,
)

DRINKS = ["coffee", "wine", "tea", "beer", "soda", "milk", "water"]
DRINKS_UPPER = [
    [9, 5, 2, 1, 1, 1 / 2],
    [1 / 3, 1 / 9, 1 / 9, 1 / 9, 1 / 9],
    [1 / 3, 1 / 4, 1 / 3, 1 / 9],
    [1 / 2, 1, 1 / 3],
    [2, 1 / 2],
    [1 / 3],
]


def upper_only(n: int, upper_rows: list[list[object]]) -> list[list[object]]:
    """A grid as HR fills it: diagonal 1, upper triangle typed, lower triangle blank."""
    grid: list[list[object]] = [["" for _ in range(n)] for _ in range(n)]
    for i in range(n):
        grid[i][i] = 1
        for k, value in enumerate(upper_rows[i] if i < len(upper_rows) else []):
            grid[i][i + 1 + k] = value
    return grid


def full_matrix(n: int, upper_rows: list[list[float]]) -> np.ndarray:
    matrix = np.ones((n, n))
    for i, row in enumerate(upper_rows):
        for k, value in enumerate(row):
            matrix[i, i + 1 + k], matrix[i + 1 + k, i] = value, 1 / value
    return matrix


def scores_frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["role_family", "expert_id", "indicator_id", "score"])
    frame["_row"] = range(2, len(frame) + 2)
    return frame


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3, 3.0),
        (0.5, 0.5),
        ("3", 3.0),
        ("1/3", 1 / 3),
        (" 1 / 3 ", 1 / 3),
        ("0.333", 0.333),
        ("１／３", 1 / 3),  # full-width digits and slash, NFKC first
        ("９", 9.0),
    ],
)
def test_parse_judgment_accepts_what_hr_types(raw, expected):
    assert parse_judgment(raw) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("raw", ["", "  ", None, "abc", "1/0", "1//3", True, float("nan"), "inf"])
def test_parse_judgment_rejects_non_numbers(raw):
    assert parse_judgment(raw) is None


# --------------------------------------------------------------------------- AHP core


def test_saaty_drinks_example():
    """Saaty's published drinks example: eigenvector weights, λmax and CR (Saaty 1980 RI).

    numpy's eigenvector reproduces every published figure to 4 decimals.
    """
    result = ahp(full_matrix(7, DRINKS_UPPER))
    expected = [0.1775, 0.0191, 0.0418, 0.1164, 0.1896, 0.1288, 0.3268]
    assert [round(float(w), 4) for w in result.weights] == expected
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert result.lambda_max == pytest.approx(7.1766, abs=5e-5)
    assert result.ri == 1.32
    assert result.ci == pytest.approx((result.lambda_max - 7) / 6)
    assert result.cr == pytest.approx(0.0223, abs=5e-5)


def test_saaty_drinks_from_sheet_with_only_upper_triangle():
    sheet = AhpSheet.from_matrix("drinks", DRINKS, upper_only(7, DRINKS_UPPER))
    result, findings = ahp_weights(sheet)
    assert findings == []
    assert result.method == "ahp"
    assert result.ri_table == "Saaty 1980"
    assert list(result.weights) == DRINKS
    assert round(result.weights["water"], 4) == 0.3268
    assert round(result.cr, 4) == 0.0223


def test_consistent_matrix_gives_exact_weights_and_zero_cr():
    # weights 4:2:1 → a_ij = w_i / w_j
    result = ahp(np.array([[1, 2, 4], [1 / 2, 1, 2], [1 / 4, 1 / 2, 1]]))
    assert result.weights == pytest.approx([4 / 7, 2 / 7, 1 / 7], abs=1e-12)
    assert result.lambda_max == pytest.approx(3.0, abs=1e-12)
    assert result.ci == 0.0
    assert result.cr == 0.0
    assert result.culprits == []


def test_two_and_one_indicator_have_cr_zero():
    two = ahp(np.array([[1, 3], [1 / 3, 1]]))
    assert two.weights == pytest.approx([0.75, 0.25], abs=1e-12)
    assert (two.ci, two.cr, two.ri) == (0.0, 0.0, 0.0)
    one = ahp(np.array([[1.0]]))
    assert one.weights.tolist() == [1.0]
    assert one.cr == 0.0


def test_more_than_fifteen_indicators_is_refused():
    with pytest.raises(ValueError, match="RI table covers only sizes 1–15"):
        ahp(np.ones((16, 16)))
    ids = [f"I{k:02d}" for k in range(16)]
    sheet = AhpSheet.from_matrix("研发", ids, [[1] * 16 for _ in range(16)])
    result, findings = ahp_weights(sheet)
    assert result is None
    assert [f.rule for f in findings] == ["ahp_too_large"]
    assert "16" in findings[0].message_en and "15" in findings[0].message_en


def test_ri_table_is_saaty_1980():
    assert RI_SAATY_1980[3] == 0.58 and RI_SAATY_1980[9] == 1.45 and RI_SAATY_1980[15] == 1.59
    assert len(RI_SAATY_1980) == 15


# --------------------------------------------------------------------------- AHP checks


def test_inconsistent_matrix_names_the_culprit_cell():
    # Consistent with weights 8:4:2:1 except I03 vs I04, typed 1/8 instead of 2.
    ids = ["I01", "I02", "I03", "I04"]
    grid = upper_only(4, [[2, 4, 8], [2, 4], ["1/8"]])
    sheet = AhpSheet.from_matrix("销售", ids, grid, corner="B2")  # judgments start at C3
    result, findings = ahp_weights(sheet, file="weights.xlsx")
    assert result is None
    assert len(findings) == 1
    problem = findings[0]
    assert problem.rule == "ahp_inconsistent" and problem.is_error
    assert problem.cell == "F5"  # row I03 (row 5), column I04 (column F)
    assert problem.where == "weights.xlsx!AHP-销售!F5"
    assert problem.value == "0.4026"
    assert "F5 (I03 vs I04 = 1/8, consistent ≈ 1/2.4)" in problem.message_en
    assert problem.message_en.index("F5") < problem.message_en.index("F4")
    assert "CR = 0.4026" in problem.message_zh and "销售" in problem.message_zh
    assert "F5(I03 对 I04 = 1/8,一致时约为 1/2.4)" in problem.message_zh


def test_culprits_are_sorted_by_log_deviation():
    ids = ["I01", "I02", "I03", "I04"]
    result = ahp(full_matrix(4, [[2, 4, 8], [2, 4], [1 / 8]]))
    assert result.cr > 0.10
    assert [(i, j) for i, j, _, _ in result.culprits][0] == (2, 3)
    assert len(result.culprits) == 3
    deviations = [abs(math.log(a * (1 / s))) for _, _, a, s in result.culprits]
    assert deviations == sorted(deviations, reverse=True)
    assert ids[result.culprits[0][0]] == "I03"


def test_mildly_inconsistent_matrix_passes():
    sheet = AhpSheet.from_matrix("销售", ["I01", "I02", "I03", "I04"],
                                 upper_only(4, [[2, 4, 8], [2, 4], ["1/2"]]))
    result, findings = ahp_weights(sheet)
    assert findings == []
    assert 0 < result.cr < 0.10
    assert sum(result.weights.values()) == pytest.approx(1.0)


def test_reciprocity_error_names_both_cells():
    grid = [[1, 3, 5], [3, 1, 2], ["1/5", "1/2", 1]]  # B3 should be 1/3
    findings = check_pairwise(AhpSheet.from_matrix("行政", ["A", "B", "C"], grid))
    assert [(f.rule, f.cell) for f in findings] == [("ahp_reciprocal", "B3")]
    assert findings[0].message_en == (
        "Judgments are not reciprocal: C2 is 3, so B3 should be 1/3."
    )
    assert findings[0].value == "3"


def test_out_of_range_judgments_name_their_cells():
    grid = upper_only(3, [[10, "1/10"], [2]])
    findings = check_pairwise(AhpSheet.from_matrix("行政", ["A", "B", "C"], grid))
    assert [(f.rule, f.cell, f.value) for f in findings] == [
        ("ahp_range", "C2", "10"),
        ("ahp_range", "D2", "1/10"),
    ]
    assert "1/9–9" in findings[0].message_en


def test_one_third_typed_as_fraction_or_decimal_is_accepted():
    as_fraction = AhpSheet.from_matrix("x", ["A", "B", "C"], upper_only(3, [["1/3", 2], [5]]))
    as_decimal = AhpSheet.from_matrix("x", ["A", "B", "C"], upper_only(3, [[0.333, 2], [5]]))
    both_sides = AhpSheet.from_matrix("x", ["A", "B", "C"],
                                      [[1, "0.333", 2], [3, 1, 5], ["0.5", "0.2", 1]])
    results = [ahp_weights(s) for s in (as_fraction, as_decimal, both_sides)]
    assert all(findings == [] for _, findings in results)
    reference = list(results[0][0].weights.values())
    for result, _ in results[1:]:
        assert list(result.weights.values()) == pytest.approx(reference, abs=1e-12)
    # 1/9 typed as 0.11 is on the scale, 0.1 is not
    assert check_pairwise(AhpSheet.from_matrix("x", ["A", "B"], [[1, 0.11], ["", 1]])) == []


def test_diagonal_blank_and_text_problems():
    grid = [["", 3, ""], ["", 2, "abc"], ["", "", 1]]
    findings = check_pairwise(AhpSheet.from_matrix("x", ["A", "B", "C"], grid))
    assert [(f.rule, f.cell) for f in findings] == [
        ("ahp_diagonal", "C3"),
        ("not_a_number", "D3"),
        ("required", "D2"),  # A vs C: both cells blank
    ]
    assert findings[1].column == "B vs C"
    assert "abc" in findings[1].message_en


def test_lower_triangle_alone_is_enough():
    grid = [[1, "", ""], [0.5, 1, ""], [0.25, 0.5, 1]]
    matrix, findings = pairwise_matrix(AhpSheet.from_matrix("x", ["A", "B", "C"], grid))
    assert findings == []
    assert matrix[0, 1] == 2.0 and matrix[0, 2] == 4.0 and matrix[1, 2] == 2.0


def test_not_square_and_duplicate_ids():
    mismatched = AhpSheet(
        role_family="x", sheet="AHP-x", ids=("A", "B"), row_ids=("B", "A"),
        grid=AhpSheet.from_matrix("x", ["A", "B"], [[1, 2], ["", 1]]).grid, corner="B3",
    )
    assert [(f.rule, f.cell) for f in check_pairwise(mismatched)] == [("ahp_not_square", "B3")]
    duplicated = AhpSheet.from_matrix("x", ["A", "A"], [[1, 2], ["", 1]])
    assert [(f.rule, f.cell) for f in check_pairwise(duplicated)] == [("ahp_not_square", "C1")]
    empty = AhpSheet("x", "AHP-x", (), (), ())
    assert [f.rule for f in check_pairwise(empty)] == ["ahp_not_square"]


# --------------------------------------------------------------------------- reading


def test_read_ahp_sheets_with_title_row(tmp_path):
    path = tmp_path / "weights.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "说明 Instructions"
    book.active["A1"] = "AHP-sheets hold pairwise matrices"
    sales = book.create_sheet("AHP-销售")
    sales["A1"] = "销售岗 判断矩阵 Pairwise matrix"  # title row, then a blank row
    for col, indicator in enumerate(["I01", "I02", "I03"], start=3):
        sales.cell(row=3, column=col, value=indicator)  # ids across row 3 from C3
        sales.cell(row=col + 1, column=2, value=indicator)  # ids down column B from B4
    sales["B3"] = "指标"
    sales["C4"], sales["D4"], sales["E4"] = 1, 3, "5"
    sales["D5"], sales["E5"] = 1, " ２ "  # full-width, with spaces
    sales["E6"] = 1
    other = book.create_sheet("ahp－研发 ")  # full-width hyphen, lower case, trailing space
    other["A1"], other["B1"], other["A2"], other["B2"] = None, "Q1", "Q1", 1
    book.create_sheet("ExpertNotes")["A1"] = "not an AHP sheet"
    book.create_sheet("AHP-行政")["A1"] = "还没填 not filled in yet"
    book.save(path)

    sheets = read_ahp_sheets(path)
    assert [(s.role_family, s.sheet) for s in sheets] == [
        ("销售", "AHP-销售"), ("研发", "ahp－研发 "), ("行政", "AHP-行政")
    ]
    assert [f.rule for f in check_pairwise(sheets[2])] == ["ahp_not_square"]
    sales_sheet = sheets[0]
    assert sales_sheet.ids == ("I01", "I02", "I03") == sales_sheet.row_ids
    assert sales_sheet.corner == "B3"
    assert sales_sheet.id_refs == ("C3", "D3", "E3")
    assert sales_sheet.grid[0][1].ref == "D4" and sales_sheet.grid[0][1].value == 3
    assert sales_sheet.grid[1][2].ref == "E5" and sales_sheet.grid[1][2].value == " ２ "
    assert sales_sheet.grid[2][0].ref == "C6" and sales_sheet.grid[2][0].value == ""

    result, findings = ahp_weights(sales_sheet, file="weights.xlsx")
    assert findings == []
    assert list(result.weights) == ["I01", "I02", "I03"]
    assert result.weights["I01"] > result.weights["I02"] > result.weights["I03"]
    single, _ = ahp_weights(sheets[1])
    assert single.weights == {"Q1": 1.0}


def test_read_ahp_sheets_looks_again_at_blank_formula_and_error_cells(tmp_path):
    path = tmp_path / "weights.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "AHP-行政"
    for col, indicator in enumerate(["A", "B", "C"], start=2):
        sheet.cell(row=1, column=col, value=indicator)
        sheet.cell(row=col, column=1, value=indicator)
    sheet["B2"], sheet["C3"], sheet["D4"] = 1, 1, 1
    sheet["C2"] = "=1/3"  # openpyxl saves no cached value: calamine reads ""
    sheet["D2"] = "#N/A"  # an error constant: calamine reads ""
    sheet["D3"] = 2
    book.save(path)

    (ahp_sheet,) = read_ahp_sheets(path)
    findings = check_pairwise(ahp_sheet, file="weights.xlsx")
    assert [(f.rule, f.cell, f.value) for f in findings] == [
        ("formula_no_value", "C2", "=1/3"),
        ("error_value", "D2", "#N/A"),
    ]


# --------------------------------------------------------------------------- experts


def test_seed_003_expert_scores_8_6_4():
    rows = [("销售", e, i, s) for e in ("E1", "E2", "E3")
            for i, s in (("I01", 8), ("I02", 6), ("I03", 4))]
    (result,) = expert_weights(scores_frame(rows))
    assert isinstance(result, ExpertResult)
    assert result.method == "expert"
    assert list(result.weights) == ["I01", "I02", "I03"]
    assert [Fraction(w).limit_denominator(100) for w in result.weights.values()] == [
        Fraction(8, 18), Fraction(6, 18), Fraction(4, 18)
    ]
    assert [round(w * 100, 2) for w in result.weights.values()] == [44.44, 33.33, 22.22]
    shown = largest_remainder(list(result.weights.values()))
    assert shown == [Decimal("44.45"), Decimal("33.33"), Decimal("22.22")]
    assert sum(shown) == Decimal("100.00")
    assert result.kendall_w == pytest.approx(1.0)
    assert result.outliers == []
    assert (result.lambda_max, result.ci, result.ri, result.cr) == (None, None, None, None)
    assert result.deviations["deviation"].max() < 1e-12
    assert result.deviations["first_row"].tolist() == [2, 5, 8]


def test_kendall_w_is_one_for_identical_rankings():
    scores = pd.DataFrame([[9, 7, 5, 3], [8, 6, 4, 2], [10, 9, 2, 1]], index=["E1", "E2", "E3"])
    assert kendall_w(scores) == pytest.approx(1.0, abs=1e-12)
    assert kendall_w(scores.iloc[:1]) is None  # one expert
    assert kendall_w(scores.iloc[:, :1]) is None  # one indicator
    assert kendall_w(pd.DataFrame([[5, 5], [7, 7]])) is None  # everyone ties everything


def test_kendall_w_with_ties_by_hand():
    # m = 3 experts, n = 4 indicators; rank 1 = most important, ties get the mean rank.
    #   E1: 9 7 5 3 → ranks 1   2   3   4                       ties: none, T = 0
    #   E2: 8 8 6 4 → ranks 1.5 1.5 3   4                       ties: one pair, T = 2³−2 = 6
    #   E3: 7 9 5 5 → ranks 2   1   3.5 3.5                     ties: one pair, T = 6
    # Rank sums R = 4.5, 4.5, 9.5, 11.5; mean 7.5; S = 9 + 9 + 4 + 16 = 38.
    # W = 12·38 / (3²·(4³−4) − 3·12) = 456 / (540 − 36) = 456/504 = 19/21 ≈ 0.9048.
    scores = pd.DataFrame([[9, 7, 5, 3], [8, 8, 6, 4], [7, 9, 5, 5]], index=["E1", "E2", "E3"])
    assert kendall_w(scores) == pytest.approx(19 / 21, abs=1e-12)


def test_outlier_expert_is_flagged_and_reported():
    profiles = {"E1": (8, 6, 4), "E2": (8, 6, 4), "E3": (9, 6, 4), "E4": (2, 6, 10)}
    rows = [("研发", e, i, s) for e, scores in profiles.items()
            for i, s in zip(("I01", "I02", "I03"), scores, strict=True)]
    (result,) = expert_weights(scores_frame(rows))
    assert result.outliers == ["E4"]
    assert result.deviations.set_index("expert_id")["outlier"].to_dict() == {
        "E1": False, "E2": False, "E3": False, "E4": True
    }
    assert result.kendall_w < 0.5
    # a stricter factor flags nobody
    (lenient,) = expert_weights(scores_frame(rows), outlier_factor=100)
    assert lenient.outliers == []

    results, findings = compute_weights(scores_frame(rows), [], file="weights.xlsx")
    assert [f.rule for f in findings] == ["expert_outlier"]
    assert findings[0].severity == "warning"
    assert "E4" in findings[0].message_en and "研发" in findings[0].message_zh


def test_lenient_expert_with_same_priorities_is_not_an_outlier():
    profiles = {"E1": (8, 6, 4), "E2": (4, 3, 2), "E3": (8, 6, 4)}  # E2 halves everything
    rows = [("行政", e, i, s) for e, scores in profiles.items()
            for i, s in zip(("I01", "I02", "I03"), scores, strict=True)]
    (result,) = expert_weights(scores_frame(rows))
    assert result.outliers == []
    assert result.deviations["deviation"].max() < 1e-12


# --------------------------------------------------------------------------- display, levels


def test_largest_remainder_ties_go_to_the_first():
    assert largest_remainder([1 / 3, 1 / 3, 1 / 3]) == [
        Decimal("33.34"), Decimal("33.33"), Decimal("33.33")
    ]
    assert largest_remainder([0.29, 0.71]) == [Decimal("29.00"), Decimal("71.00")]
    assert largest_remainder([1, 1], decimals=0) == [Decimal("50"), Decimal("50")]
    assert largest_remainder([]) == []
    with pytest.raises(ValueError):
        largest_remainder([0, 0])
    with pytest.raises(ValueError):
        largest_remainder([0.5, -0.5])


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=15)
       .filter(lambda ws: sum(ws) > 0))
def test_largest_remainder_sums_to_exactly_100(weights):
    shown = largest_remainder(weights, decimals=2)
    assert sum(shown) == Decimal("100.00")
    assert all(value.as_tuple().exponent == -2 for value in shown)
    total = sum(Fraction(w) for w in weights)
    for weight, value in zip(weights, shown, strict=True):
        exact = Fraction(weight) / total * 100
        assert abs(Fraction(value) - exact) <= Fraction(1, 100) + Fraction(1, 10**9)


def test_global_weights_multiply_the_two_levels():
    result = global_weights(
        {"performance": 0.6, "ability": 0.25, "attitude": 0.15},
        {
            "performance": {"I01": 0.5, "I02": 0.3, "I03": 0.2},
            "ability": {"I04": 1.0},
            "attitude": {"I05": 0.4, "I06": 0.6},
        },
    )
    assert result == pytest.approx(
        {"I01": 0.3, "I02": 0.18, "I03": 0.12, "I04": 0.25, "I05": 0.06, "I06": 0.09}
    )
    assert list(result) == ["I01", "I02", "I03", "I04", "I05", "I06"]
    assert sum(result.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Dimension weights sum"):
        global_weights({"a": 0.5, "b": 0.4}, {"a": {"I1": 1}, "b": {"I2": 1}})
    with pytest.raises(ValueError, match="Indicator weights of b"):
        global_weights({"a": 0.5, "b": 0.5}, {"a": {"I1": 1}, "b": {"I2": 0.9}})
    with pytest.raises(ValueError, match="differ"):
        global_weights({"a": 1.0}, {"a": {"I1": 1}, "b": {"I2": 1}})


# --------------------------------------------------------------------------- together, output


def drinks_and_sales() -> tuple[list[WeightResult], list]:
    rows = [("销售", e, i, s) for e in ("E1", "E2")
            for i, s in (("I01", 8), ("I02", 6), ("I03", 4))]
    sheets = [
        AhpSheet.from_matrix("研发", DRINKS, upper_only(7, DRINKS_UPPER)),
        AhpSheet.from_matrix("行政", ["A", "B"], [[1, 10], ["", 1]]),  # out of range
    ]
    return compute_weights(scores_frame(rows), sheets, file="weights.xlsx")


def test_compute_weights_orders_experts_then_ahp_and_serialises():
    results, findings = drinks_and_sales()
    assert [(r.role_family, r.method) for r in results] == [("销售", "expert"), ("研发", "ahp")]
    assert [(f.rule, f.cell, f.sheet) for f in findings] == [("ahp_range", "C2", "AHP-行政")]
    expert, analytic = (r.as_json() for r in results)
    assert set(expert) == {"role_family", "method", "weights", "lambda_max", "ci", "ri", "cr",
                           "kendall_w", "kendall_w_meaning"}
    assert expert["method"] == "expert" and expert["lambda_max"] is None
    assert expert["kendall_w"] == pytest.approx(1.0)
    assert expert["kendall_w_meaning"] == {"zh": "专家意见高度一致", "en": "Strong agreement among the experts"}
    assert analytic["method"] == "ahp" and analytic["kendall_w"] is None
    assert analytic["kendall_w_meaning"] is None
    assert analytic["ri"] == 1.32 and round(analytic["cr"], 4) == 0.0223
    assert list(analytic["weights"]) == DRINKS


def machine_name(header: str) -> str:
    """A weights workbook header's plain column name: its last line."""
    return header.rsplit("\n", 1)[-1]


def test_weights_workbook_contents(tmp_path):
    results, _ = drinks_and_sales()
    path = tmp_path / "weights.xlsx"
    write_weights_workbook(path, results, role_kpis_period="2026-Q3")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [WEIGHTS_SHEET, CONSISTENCY_SHEET, ROLE_KPIS_SHEET]

    weights = book[WEIGHTS_SHEET]
    rows = list(weights.iter_rows(values_only=True))
    # Each header: the label in both languages, then the column's plain name on its last line.
    assert rows[0][:3] == ("岗位类别 Role family\nrole_family", "指标编号 Indicator ID\nindicator_id",
                           "权重 Weight\nweight")
    assert [machine_name(h) for h in rows[0]] == ["role_family", "indicator_id", "weight", "weight_exact",
                                                  "method"]
    assert weights.freeze_panes == "A2"
    assert "100%" in weights["C1"].comment.text
    assert weights["C2"].number_format == "0.00%"
    by_family: dict[str, list[tuple]] = {}
    for row in rows[1:]:
        by_family.setdefault(row[0], []).append(row)
    assert [r[1] for r in by_family["销售"]] == ["I01", "I02", "I03"]
    assert [r[2] for r in by_family["销售"]] == pytest.approx([0.4445, 0.3333, 0.2222], abs=1e-12)
    assert [r[3] for r in by_family["销售"]] == pytest.approx([8 / 18, 6 / 18, 4 / 18], abs=1e-15)
    for family_rows in by_family.values():
        assert sum(round(r[2] * 10000) for r in family_rows) == 10000  # shows exactly 100.00%
        assert sum(r[3] for r in family_rows) == pytest.approx(1.0, abs=1e-12)

    consistency = list(book[CONSISTENCY_SHEET].iter_rows(values_only=True))
    assert [machine_name(h) for h in consistency[0]] == [
        "role_family", "method", "n", "lambda_max", "ci", "ri", "cr", "kendall_w", "kendall_w_meaning", "ri_table"]
    assert consistency[0][7] == "肯德尔协调系数 Kendall's W\nkendall_w"
    assert consistency[1][:3] == ("销售", "expert", 3)
    assert consistency[1][3:7] == (None, None, None, None)
    assert consistency[1][7] == pytest.approx(1.0) and consistency[1][9] is None
    assert consistency[1][8] == "专家意见高度一致\nStrong agreement among the experts"
    assert consistency[2][:3] == ("研发", "ahp", 7)
    assert consistency[2][3] == pytest.approx(7.1766, abs=5e-5)
    assert consistency[2][5] == 1.32 and consistency[2][9] == "Saaty 1980"
    assert consistency[2][8] is None  # AHP: no experts, no W, nothing to interpret

    role_kpis = list(book[ROLE_KPIS_SHEET].iter_rows(values_only=True))
    assert list(role_kpis[0]) == ROLE_KPIS_HEADERS
    assert role_kpis[1] == ("销售", "2026-Q3", "I01", pytest.approx(0.4445), None, None, None)
    assert len(role_kpis) == 1 + 3 + 7
    assert all(isinstance(row[1], str) for row in role_kpis[1:])


def test_weights_workbook_is_byte_identical_and_role_kpis_optional(tmp_path):
    results, _ = drinks_and_sales()
    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    write_weights_workbook(first, results)
    write_weights_workbook(second, results)
    assert first.read_bytes() == second.read_bytes()
    assert openpyxl.load_workbook(first).sheetnames == [WEIGHTS_SHEET, CONSISTENCY_SHEET]


# --------------------------------------------------------------------------- for people


@pytest.mark.parametrize(("w", "band"), [
    (0.0, "weak"), (0.09, "weak"), (0.2999, "weak"), (0.3, "moderate"), (0.49, "moderate"),
    (0.5, "good"), (0.6999, "good"), (0.7, "strong"), (1.0, "strong"),
])
def test_kendall_w_meaning_bands(w, band):
    meaning = kendall_w_meaning(w)
    assert meaning["en"].lower().startswith(band)
    assert ("重新讨论" in meaning["zh"]) == (band == "weak")
    assert ("re-discuss" in meaning["en"]) == (band == "weak")


def test_experts_who_rank_every_indicator_differently_are_told_to_re_discuss():
    assert kendall_w_meaning(None) is None
    rows = [("研发", e, i, s) for e, scores in {"E1": (8, 6, 4), "E2": (4, 8, 6), "E3": (6, 4, 8)}.items()
            for i, s in zip(("I01", "I02", "I03"), scores, strict=True)]
    (split,) = expert_weights(scores_frame(rows))
    assert split.kendall_w == pytest.approx(0.0)
    assert split.as_json()["kendall_w_meaning"] == {
        "zh": "专家意见一致性弱:请重新讨论后再使用这些权重",
        "en": "Weak agreement among the experts: re-discuss before using the weights"}


LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z_\-]*")
HAN = re.compile(r"[\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")


def weights_findings() -> list:
    """One finding of every kind the weights produce, on IDs and a role family in ASCII."""
    findings = []
    findings += check_pairwise(AhpSheet.from_matrix("RD", ["I01", "I02", "I03"],
                                                    [["", 3, ""], ["", 2, "abc"], ["", "", 1]]))
    findings += check_pairwise(AhpSheet.from_matrix("RD", ["I01", "I02", "I03"],
                                                    upper_only(3, [[10, "1/10"], [2]])))
    findings += check_pairwise(AhpSheet.from_matrix("RD", ["I01", "I02", "I03"],
                                                    [[1, 3, 5], [3, 1, 2], ["1/5", "1/2", 1]]))
    findings += check_pairwise(AhpSheet.from_matrix("RD", ["I01", "I01"], [[1, 2], ["", 1]]))
    findings += ahp_weights(AhpSheet.from_matrix("RD", [f"I{k:02d}" for k in range(16)],
                                                 [[1] * 16 for _ in range(16)]))[1]
    findings += ahp_weights(AhpSheet.from_matrix("RD", ["I01", "I02", "I03", "I04"],
                                                 upper_only(4, [[2, 4, 8], [2, 4], ["1/8"]])))[1]
    profiles = {"E1": (8, 6, 4), "E2": (8, 6, 4), "E3": (9, 6, 4), "E4": (2, 6, 10)}
    rows = [("RD", e, i, s) for e, scores in profiles.items()
            for i, s in zip(("I01", "I02", "I03"), scores, strict=True)]
    findings += compute_weights(scores_frame(rows), [])[1]
    hidden = AhpSheet("RD", "AHP-RD", ("I01", "I02"), ("I01", "I02"), (
        (JudgmentCell("B2", 1), JudgmentCell("C2", "=1/3", "formula_no_value")),
        (JudgmentCell("B3", "#N/A", "error_value"), JudgmentCell("C3", 1))))
    findings += check_pairwise(hidden)
    return findings


def test_every_weights_message_keeps_to_its_language():
    findings = weights_findings()
    assert {f.rule for f in findings} >= {
        "ahp_diagonal", "not_a_number", "required", "ahp_range", "ahp_reciprocal", "ahp_not_square",
        "ahp_too_large", "ahp_inconsistent", "expert_outlier", "formula_no_value", "error_value"}
    # Allowed in Chinese: IDs and cell references, the value the person typed quoted back (all
    # removed below), the role family (data), the figures' symbols and the program's name.
    allowed = {"RD", "CR", "RI", "Excel"}
    for f in findings:
        text = re.sub(r"\b[A-Z]{1,2}\d+\b", "", f.message_zh)
        words = set(LATIN_WORD.findall(text.replace(f.value, "") if f.value else text))
        assert words <= allowed, (f.rule, f.message_zh)
        assert not HAN.search(f.message_en), (f.rule, f.message_en)
    for band in (0.1, 0.4, 0.6, 0.8):
        meaning = kendall_w_meaning(band)
        assert not LATIN_WORD.search(meaning["zh"]) and not HAN.search(meaning["en"])


def test_judgment_findings_say_how_to_fix_them():
    (out_of_range, _) = check_pairwise(AhpSheet.from_matrix("RD", ["A", "B", "C"], upper_only(3, [[10, "1/10"], [2]])))
    assert "1/3" in out_of_range.message_zh and "reciprocal" in out_of_range.message_en
    (required,) = check_pairwise(AhpSheet.from_matrix("RD", ["A", "B", "C"], upper_only(3, [[2, ""], [2]])))
    assert required.column == "A vs C"
    assert required.message_zh == "“A 对 C 的判断”为必填项,不能为空。"
    assert required.message_en == "'A vs C' is required and is empty."


def test_kpi_weights_prints_what_w_means(tmp_path):
    from builders import sheet_name, table, write_sheets
    from click.testing import CliRunner

    from pipeline.cli import main

    scores = {"X1": (8, 6, 4), "X2": (4, 8, 6), "X3": (6, 4, 8)}  # every expert ranks differently
    rows = [{"role_family": "销售", "expert_id": e, "indicator_id": k, "score": s}
            for e, profile in scores.items() for k, s in zip(("K1", "K2", "K3"), profile, strict=True)]
    path = write_sheets(tmp_path / "weights.xlsx", {sheet_name("weights", 0): table("weights", rows)})
    english = CliRunner().invoke(main, ["weights", str(path), "--lang", "en"])
    assert english.exit_code == 0, english.output
    line = next(x for x in english.output.splitlines() if "Kendall W" in x)
    assert line == "  Kendall W=0.0000  Weak agreement among the experts: re-discuss before using the weights."
    both = CliRunner().invoke(main, ["weights", str(path)])
    assert "专家意见一致性弱:请重新讨论后再使用这些权重。 Weak agreement" in both.output
    out = tmp_path / "result.xlsx"
    assert CliRunner().invoke(main, ["weights", str(path), "--out", str(out)]).exit_code == 0
    sheet = openpyxl.load_workbook(out)[CONSISTENCY_SHEET]
    assert sheet["I2"].value.startswith("专家意见一致性弱") and sheet["I2"].fill.fgColor.rgb.endswith("FFEB9C")
    printed = sheet.page_setup
    assert printed.orientation == "landscape" and printed.fitToHeight == 0
