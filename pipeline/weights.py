"""Indicator weights from expert scores (专家打分法) and AHP pairwise matrices (层次分析法).

The formulas and worked examples: docs/scoring.md §7. Everything here is a pure function of its
inputs except `read_ahp_sheets`, which reads a workbook with the reader (for scripts and tests).
Validation never raises for a user's data: it returns findings that name the cell. `ValueError`
is kept for programming errors (a matrix handed to `ahp` that the checks should have stopped).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.findings import RULES, Finding, finding
from pipeline.kinds import AHP_SHEETS

if TYPE_CHECKING:
    from pipeline.reader import MatrixSheet

# Random consistency index by matrix size, from Saaty, T. L. (1980), *The Analytic Hierarchy
# Process*, New York: McGraw-Hill. Other sources (Saaty 2005, Donegan–Dodd) differ in the
# second decimal, so the table used is a policy setting and its name goes into every output.
RI_SAATY_1980: dict[int, float] = {
    1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45, 10: 1.49,
    11: 1.51, 12: 1.54, 13: 1.56, 14: 1.57, 15: 1.59,
}
RI_TABLES: dict[str, dict[int, float]] = {"Saaty 1980": RI_SAATY_1980}
DEFAULT_RI_TABLE = "Saaty 1980"
RI_TABLE_NAMES_ZH = {"Saaty 1980": "萨蒂 1980 年版", "custom": "自定义"}  # for Chinese messages

CR_LIMIT = 0.10  # Saaty's rule of thumb: CR below 10% is acceptably consistent
SAATY_MAX = 9.0
SAATY_MIN = 1.0 / 9.0
# 1/3 is often typed as 0.33 or 0.333 (1% and 0.1% off): judgments within 2% count as equal,
# both for reciprocity and for the 1/9 end of the scale.
RECIPROCAL_TOLERANCE = 0.02

EXPERT_SHEET = "专家打分 ExpertScores"


# --------------------------------------------------------------------------- parsing


def parse_judgment(value: object) -> float | None:
    """A pairwise judgment as a float: 3, "3", "1/3", "0.333", "１／３", " 1 / 3 ".

    None when the value is blank or not a positive finite number or fraction; the range is
    checked elsewhere so the message can say what is wrong.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    text = unicodedata.normalize("NFKC", str(value))
    text = re.sub(r"\s+", "", text).replace("÷", "/")
    if not text:
        return None
    try:
        if text.count("/") == 1:
            numerator, denominator = (float(part) for part in text.split("/"))
            if denominator == 0:
                return None
            number = numerator / denominator
        else:
            number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _resolve_ri_table(ri_table: Mapping[int, float] | str) -> tuple[str, Mapping[int, float]]:
    """(name, table): the policy names a table; a mapping passed directly is 'custom'."""
    if isinstance(ri_table, str):
        if ri_table not in RI_TABLES:
            raise ValueError(f"Unknown RI table {ri_table!r}; known: {', '.join(RI_TABLES)}")
        return ri_table, RI_TABLES[ri_table]
    for name, table in RI_TABLES.items():
        if dict(ri_table) == table:
            return name, table
    return "custom", ri_table


# --------------------------------------------------------------------------- AHP core


@dataclass(frozen=True, eq=False)
class AhpResult:
    """Eigenvector weights and consistency of one pairwise matrix.

    `culprits` are (i, j, a_ij, w_i / w_j) for the upper-triangle judgments furthest from
    what the weights imply, worst first: the ones HR should look at when CR is too high.
    """

    weights: np.ndarray
    lambda_max: float
    ci: float
    ri: float
    cr: float
    culprits: list[tuple[int, int, float, float]] = field(default_factory=list)


def ahp(matrix: np.ndarray, ri_table: Mapping[int, float] | str = RI_SAATY_1980) -> AhpResult:
    """Saaty's principal-eigenvector weights, λmax, CI, CR and the judgments to revisit.

    The eigenvector, not the column-average or geometric-mean shortcuts: those give
    different weights from the published examples (docs/architecture.md, "Library facts").
    """
    _, table = _resolve_ri_table(ri_table)
    a = np.asarray(matrix, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"AHP needs a non-empty square matrix, got shape {a.shape}")
    n = a.shape[0]
    if n not in table:
        raise ValueError(
            f"AHP matrix has {n} indicators but the RI table covers only sizes "
            f"{min(table)}–{max(table)}: the random index for n = {n} is unknown. "
            "Split the indicators into two levels (dimensions → indicators)."
        )
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("AHP judgments must be positive finite numbers")

    eigenvalues, eigenvectors = np.linalg.eig(a)
    k = int(np.argmax(eigenvalues.real))
    lambda_max = float(eigenvalues[k].real)
    vector = np.abs(eigenvectors[:, k].real)
    weights = vector / vector.sum()

    ri = float(table[n])
    if n <= 2:
        ci = cr = 0.0
    else:
        ci = (lambda_max - n) / (n - 1)
        # λmax ≥ n for a positive reciprocal matrix; a consistent one lands a few ulps off n.
        if abs(ci) < 1e-12:
            ci = 0.0
        cr = ci / ri if ri else 0.0

    ratio = weights[:, None] / weights[None, :]  # w_i / w_j: what a consistent a_ij would be
    deviation = np.abs(np.log(a / ratio))
    upper = [(i, j) for i in range(n) for j in range(i + 1, n) if deviation[i, j] > 1e-9]
    upper.sort(key=lambda ij: -deviation[ij])  # stable: ties keep row-by-row order
    culprits = [(i, j, float(a[i, j]), float(ratio[i, j])) for i, j in upper[:3]]
    return AhpResult(weights, lambda_max, float(ci), ri, float(cr), culprits)


# --------------------------------------------------------------------------- AHP sheets


@dataclass(frozen=True)
class JudgmentCell:
    """One matrix cell as typed: its Excel reference and raw value.

    `problem` is `formula_no_value` or `error_value` when the reader returned a blank that
    is really an uncalculated formula or an Excel error (calamine shows both as "").
    """

    ref: str
    value: object
    problem: str = ""


@dataclass(frozen=True)
class AhpSheet:
    """One `AHP-<role family>` sheet: header ids and the judgment grid with cell references."""

    role_family: str
    sheet: str
    ids: tuple[str, ...]  # across the first row
    row_ids: tuple[str, ...]  # down the first column
    grid: tuple[tuple[JudgmentCell, ...], ...]  # len(row_ids) rows × len(ids) columns
    corner: str = "A1"  # the matrix's top-left (label) cell, where shape problems are reported
    id_refs: tuple[str, ...] = ()  # cells of `ids`
    row_id_refs: tuple[str, ...] = ()  # cells of `row_ids`

    @classmethod
    def from_matrix(cls, role_family: str, ids: Sequence[str], values: Sequence[Sequence[object]],
                    *, sheet: str | None = None, corner: str = "A1") -> AhpSheet:
        """A sheet as if typed with its top-left label cell at `corner` (tests, demos)."""
        col0, row0 = _split_ref(corner)
        grid = tuple(
            tuple(JudgmentCell(_ref(row0 + 1 + r, col0 + 1 + c), v) for c, v in enumerate(row))
            for r, row in enumerate(values)
        )
        return cls(
            role_family=role_family,
            sheet=sheet if sheet is not None else f"{AHP_SHEETS.prefix}{role_family}",
            ids=tuple(ids),
            row_ids=tuple(ids),
            grid=grid,
            corner=corner,
            id_refs=tuple(_ref(row0, col0 + 1 + c) for c in range(len(ids))),
            row_id_refs=tuple(_ref(row0 + 1 + r, col0) for r in range(len(ids))),
        )


def _column_letter(col: int) -> str:
    """0-based column index → Excel letters (0 → A, 26 → AA)."""
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _ref(row: int, col: int) -> str:
    """0-based row and column → Excel reference."""
    return f"{_column_letter(col)}{row + 1}"


def _split_ref(ref: str) -> tuple[int, int]:
    """Excel reference → 0-based (column, row)."""
    match = re.fullmatch(r"([A-Za-z]+)(\d+)", ref)
    if not match:
        raise ValueError(f"Not a cell reference: {ref!r}")
    col = 0
    for ch in match.group(1).upper():
        col = col * 26 + ord(ch) - 64
    return col - 1, int(match.group(2)) - 1


def _format_judgment(x: float) -> str:
    """Saaty-style display: 5, 1.7, 1/3, 1/2.5."""
    if x >= 1:
        text = f"{x:.1f}"
        return text[:-2] if text.endswith(".0") else text
    inverse = _format_judgment(1 / x)
    return inverse if inverse == "1" else f"1/{inverse}"


def _text(value: object) -> str:
    """A cell value as the user typed it, for messages."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _snap(x: float) -> float:
    """A decimal within tolerance of 1/k (k = 2…9) is read as 1/k: 0.333 means 1/3.

    Saaty's scale only has integers and their reciprocals, and reciprocals can only be typed
    approximately as decimals, so this undoes the typing rather than changing a judgment.
    """
    if 0 < x < 1:
        k = round(1 / x)
        if 2 <= k <= 9 and abs(x * k - 1) <= RECIPROCAL_TOLERANCE:
            return 1.0 / k
    return x


def _render(rule: str, base: Finding, **context: object) -> Finding:
    """Re-render a finding's messages with a context `finding()` cannot take.

    `finding()` binds `cell` to the finding's own location, so a template that names other
    cells (`ahp_reciprocal`: "{cell} is 3, so {other_cell} should be 1/3") is filled here.
    """
    ctx: defaultdict[str, str] = defaultdict(str, {k: str(v) for k, v in context.items()})
    for key in list(ctx):  # as in finding(): `{x_en}` falls back to `{x}`
        ctx.setdefault(f"{key}_en", ctx[key])
    _, zh, en = RULES[rule]
    return replace(base, message_zh=zh.format_map(ctx), message_en=en.format_map(ctx))


def _judgment(rule: str, row_id: str, column_id: str, **where: Any) -> Finding:
    """A finding about one judgment: its column is `I01 vs I02`, and the Chinese message calls
    it `I01 对 I02 的判断`, so neither language borrows the other's words."""
    english = finding(rule, column=f"{row_id} vs {column_id}", **where)
    chinese = finding(rule, column=f"{row_id} 对 {column_id} 的判断", **where)
    return replace(english, message_zh=chinese.message_zh)


def pairwise_matrix(sheet: AhpSheet, *, file: str = "") -> tuple[np.ndarray | None, list[Finding]]:
    """The judgment matrix of a sheet, checked cell by cell; None when any check fails.

    Either triangle may be left blank: HR usually fills only the upper one, and a blank
    a_ji is a_ij's reciprocal (and vice versa). A blank diagonal means 1. A pair with both
    cells blank is an error. Decimals close to 1/k are read as 1/k (see `_snap`); when both
    cells of a pair are given the one ≥ 1 (the integer on Saaty's scale) is used.
    """
    where: dict[str, Any] = {"file": file, "sheet": sheet.sheet}
    ids, n = sheet.ids, len(sheet.ids)
    shape_ok = (
        n > 0
        and tuple(sheet.row_ids) == tuple(ids)
        and len(sheet.grid) == n
        and all(len(row) == n for row in sheet.grid)
    )
    if not shape_ok:
        return None, [finding("ahp_not_square", cell=sheet.corner, value=", ".join(ids), **where)]
    seen: dict[str, int] = {}
    for k, indicator in enumerate(ids):
        if indicator in seen:
            ref = sheet.id_refs[k] if k < len(sheet.id_refs) else sheet.corner
            return None, [finding("ahp_not_square", cell=ref, value=indicator, **where)]
        seen[indicator] = k

    findings: list[Finding] = []
    parsed: dict[tuple[int, int], float] = {}
    for i in range(n):
        for j in range(n):
            cell = sheet.grid[i][j]
            if cell.problem:
                findings.append(_judgment(cell.problem, ids[i], ids[j], cell=cell.ref,
                                          value=cell.value, **where))
                continue
            blank = cell.value is None or (isinstance(cell.value, str) and not cell.value.strip())
            if blank:
                continue
            x = parse_judgment(cell.value)
            if x is None:
                findings.append(_judgment("not_a_number", ids[i], ids[j], cell=cell.ref,
                                          value=cell.value, **where))
            elif i == j:
                if abs(x - 1) > 1e-9:
                    findings.append(_judgment("ahp_diagonal", ids[i], ids[j], cell=cell.ref,
                                              value=_text(cell.value), **where))
            elif not (SAATY_MIN * (1 - RECIPROCAL_TOLERANCE) <= x <= SAATY_MAX):
                findings.append(_judgment("ahp_range", ids[i], ids[j], cell=cell.ref,
                                          value=_text(cell.value), **where))
            else:
                parsed[i, j] = x

    matrix = np.ones((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            upper, lower = sheet.grid[i][j], sheet.grid[j][i]
            a_ij, a_ji = parsed.get((i, j)), parsed.get((j, i))
            if a_ij is None and a_ji is None:
                if not any(f.cell in (upper.ref, lower.ref) for f in findings):
                    findings.append(_judgment("required", ids[i], ids[j], cell=upper.ref, **where))
                continue
            if a_ij is not None and a_ji is not None:
                if abs(a_ij * a_ji - 1) > RECIPROCAL_TOLERANCE:
                    base = finding("ahp_reciprocal", cell=lower.ref, column=f"{ids[j]} vs {ids[i]}",
                                   value=_text(lower.value), **where)
                    findings.append(_render("ahp_reciprocal", base, cell=upper.ref,
                                            value=_text(upper.value), other_cell=lower.ref,
                                            expected=_format_judgment(1 / a_ij)))
                    continue
                value = _snap(a_ij) if a_ij >= 1 else 1 / _snap(a_ji)
            elif a_ij is not None:
                value = _snap(a_ij)
            elif a_ji is not None:
                value = 1 / _snap(a_ji)
            matrix[i, j], matrix[j, i] = value, 1 / value
    if findings:
        return None, findings
    return matrix, []


def check_pairwise(cells: AhpSheet, *, file: str = "") -> list[Finding]:
    """Cell-by-cell checks of one AHP sheet: shape, blanks, numbers, 1/9–9, diagonal, reciprocity."""
    return pairwise_matrix(cells, file=file)[1]


# --------------------------------------------------------------------------- reading


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _cell_at(rows: list[list[Any]], r: int, c: int) -> object:
    """A cell of calamine's row lists; "" beyond the used area."""
    return rows[r][c] if r < len(rows) and c < len(rows[r]) else ""


def _id_text(value: object) -> str:
    """A header cell as an indicator id: NFKC, trimmed, 101.0 → "101"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return unicodedata.normalize("NFKC", str(value)).strip()


def _find_corner(rows: list[list[Any]]) -> tuple[int, int] | None:
    """The matrix's top-left (label) cell: right and lower neighbours hold ids.

    A cell whose right and lower neighbours hold the *same* id is preferred (a proper matrix);
    failing that, the first cell with any right and lower neighbours, so a matrix whose ids
    disagree is still found and reported as not square. Title rows have no lower-right pair.
    """
    fallback = None
    for r, row in enumerate(rows):
        for c in range(len(row)):
            right, below = _cell_at(rows, r, c + 1), _cell_at(rows, r + 1, c)
            if _is_blank(right) or _is_blank(below):
                continue
            if _id_text(right) == _id_text(below):
                return r, c
            if fallback is None:
                fallback = (r, c)
    return fallback


@dataclass(frozen=True)
class _Layout:
    """Where a matrix sits on a sheet read by calamine (0-based, from A1)."""

    role_family: str
    sheet: str
    rows: list[list[Any]]
    corner: tuple[int, int] | None
    nrows: int = 0
    ncols: int = 0

    def at(self, r: int, c: int) -> object:
        return _cell_at(self.rows, r, c)

    def blanks(self) -> list[tuple[int, int]]:
        r0, c0 = self.corner or (0, 0)
        return [(r, c) for r in range(r0 + 1, r0 + 1 + self.nrows)
                for c in range(c0 + 1, c0 + 1 + self.ncols) if _is_blank(self.at(r, c))]


def _layout(role_family: str, sheet: str, rows: list[list[Any]]) -> _Layout:
    corner = _find_corner(rows)
    if corner is None:
        return _Layout(role_family, sheet, rows, None)
    r0, c0 = corner
    ncols = 0
    while not _is_blank(_cell_at(rows, r0, c0 + 1 + ncols)):
        ncols += 1
    nrows = 0
    while not _is_blank(_cell_at(rows, r0 + 1 + nrows, c0)):
        nrows += 1
    return _Layout(role_family, sheet, rows, corner, nrows, ncols)


def _ahp_sheet(layout: _Layout, hidden: dict) -> AhpSheet:
    if layout.corner is None:
        return AhpSheet(layout.role_family, layout.sheet, (), (), ())
    r0, c0 = layout.corner
    rows = range(r0 + 1, r0 + 1 + layout.nrows)
    cols = range(c0 + 1, c0 + 1 + layout.ncols)
    grid = tuple(
        tuple(
            JudgmentCell(_ref(r, c), hidden[r, c][1], hidden[r, c][0]) if (r, c) in hidden
            else JudgmentCell(_ref(r, c), layout.at(r, c))
            for c in cols
        )
        for r in rows
    )
    return AhpSheet(
        role_family=layout.role_family,
        sheet=layout.sheet,
        ids=tuple(_id_text(layout.at(r0, c)) for c in cols),
        row_ids=tuple(_id_text(layout.at(r, c0)) for r in rows),
        grid=grid,
        corner=_ref(r0, c0),
        id_refs=tuple(_ref(r0, c) for c in cols),
        row_id_refs=tuple(_ref(r, c0) for r in rows),
    )


def _looked_again(layout: _Layout, hidden: Mapping[str, tuple[str, str]]) -> dict[tuple[int, int], tuple[str, str]]:
    """{(row, col): (problem, text)} for the matrix's blank cells that are not blank.

    calamine returns "" for error cells and never-calculated formulas (docs/architecture.md); a
    silent blank would be filled in as a reciprocal, so what the reader's scan of the sheet's
    XML found there is reported instead (`hidden`: {"C2": ("formula" | "error", text)})."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    for r, c in layout.blanks():
        what = hidden.get(_ref(r, c))
        if what is not None:
            found[r, c] = ("formula_no_value" if what[0] == "formula" else "error_value", what[1])
    return found


def ahp_sheets_from(matrices: Sequence[MatrixSheet]) -> list[AhpSheet]:
    """The AHP sheets of a weights workbook as the reader read them, in sheet order.

    The matrix may sit below a title row or after blank rows and columns. A sheet without a
    recognisable matrix is returned with no ids, so the checks report it instead of dropping
    it. Pure: the reader has read (and guarded) the file once; nothing opens it again.
    """
    sheets = []
    for matrix in matrices:
        layout = _layout(matrix.role_family, matrix.sheet, matrix.cells())
        sheets.append(_ahp_sheet(layout, _looked_again(layout, matrix.hidden)))
    return sheets


def read_ahp_sheets(path: str | Path) -> list[AhpSheet]:
    """Every `AHP-<role family>` sheet of the weights workbook at `path`: the reader (with its
    guards), then `ahp_sheets_from`. For scripts and tests; the batch and `kpi weights` use
    `ahp_sheets_from` on the workbook they read."""
    from pipeline.reader import read_workbook

    return ahp_sheets_from(read_workbook(Path(path)).matrices)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class WeightResult:
    """Weights of one role family by one method, as reported in the workbook and JSON."""

    role_family: str
    method: str  # "expert" | "ahp"
    weights: dict[str, float]
    lambda_max: float | None = None
    ci: float | None = None
    ri: float | None = None
    cr: float | None = None
    kendall_w: float | None = None
    ri_table: str | None = None  # name of the RI table, AHP only

    @property
    def n(self) -> int:
        return len(self.weights)

    def as_json(self) -> dict:
        """The `--json` record of docs/scoring.md §7 (None where a figure does not apply), and what W means."""
        def num(x: float | None) -> float | None:
            return None if x is None else float(x)

        return {
            "role_family": self.role_family,
            "method": self.method,
            "weights": {k: float(v) for k, v in self.weights.items()},
            "lambda_max": num(self.lambda_max),
            "ci": num(self.ci),
            "ri": num(self.ri),
            "cr": num(self.cr),
            "kendall_w": num(self.kendall_w),
            "kendall_w_meaning": kendall_w_meaning(self.kendall_w),
        }


@dataclass(frozen=True, eq=False)
class ExpertResult(WeightResult):
    """Expert-score weights plus who disagreed: `deviations` has one row per expert."""

    deviations: pd.DataFrame = field(default_factory=pd.DataFrame)
    outliers: list[str] = field(default_factory=list)
    n_experts: int = 0


# --------------------------------------------------------------------------- experts


def kendall_w(scores: pd.DataFrame) -> float | None:
    """Kendall's coefficient of concordance with the tie correction.

    `scores`: experts × indicators, complete. W = 12·S / (m²(n³ − n) − m·ΣT), where S is the
    sum of squared deviations of the indicators' rank sums from their mean and T = Σ(t³ − t)
    over each expert's groups of tied scores. None when m < 2, n < 2 or every expert ties
    everything (W undefined).
    """
    m, n = scores.shape
    if m < 2 or n < 2:
        return None
    ranks = scores.rank(axis=1, method="average", ascending=False)
    rank_sums = ranks.sum(axis=0)
    s = float(((rank_sums - rank_sums.mean()) ** 2).sum())
    stacked = scores.stack()
    tie_sizes = stacked.groupby([stacked.index.get_level_values(0), stacked.to_numpy()]).size()
    ties = float((tie_sizes**3 - tie_sizes).sum())
    denominator = m * m * (n**3 - n) - m * ties
    if denominator <= 0:
        return None
    return 12 * s / denominator


# What Kendall's W says about the experts' agreement: (lower bound, Chinese, English), the
# first band whose bound W reaches. A weak agreement means the mean scores hide a split.
KENDALL_W_WEAK = 0.3  # below it, the weights should not be used before the experts re-discuss
KENDALL_W_BANDS: tuple[tuple[float, str, str], ...] = (
    (0.7, "专家意见高度一致", "Strong agreement among the experts"),
    (0.5, "专家意见一致性良好", "Good agreement among the experts"),
    (KENDALL_W_WEAK, "专家意见一致性中等", "Moderate agreement among the experts"),
    (0.0, "专家意见一致性弱:请重新讨论后再使用这些权重",
     "Weak agreement among the experts: re-discuss before using the weights"),
)


def kendall_w_meaning(w: float | None) -> dict[str, str] | None:
    """What W means for the people who will use the weights, {zh, en}; None without a W.

    < 0.3 weak (re-discuss), 0.3–0.5 moderate, 0.5–0.7 good, ≥ 0.7 strong. W is a ratio of
    integers (rank sums of halves over m²(n³ − n) − m·ΣT) divided once in floating point, so a
    W of exactly 0.3 compares equal to 0.3 and lands in its band."""
    if w is None:
        return None
    for bound, zh, en in KENDALL_W_BANDS:
        if w >= bound:
            return {"zh": zh, "en": en}
    return {"zh": KENDALL_W_BANDS[-1][1], "en": KENDALL_W_BANDS[-1][2]}


def expert_weights(scores: pd.DataFrame, *, outlier_factor: float = 2.0,
                   outlier_floor: float = 0.02) -> list[ExpertResult]:
    """Per role family: mean score per indicator normalised to 1, expert deviations, Kendall's W.

    Deviation: the mean absolute difference between an expert's *normalised* scores (their
    scores / their sum) and the group weights, over the indicators they scored (group weights
    renormalised to those). Normalising first means a lenient expert who scores everything
    high but in the same proportions is not an outlier: only disagreement on priorities is.

    Outlier: deviation > `outlier_factor` × the median deviation of the *other* experts and
    > `outlier_floor` (in weight units: 0.02 = two percentage points), so a group that agrees
    closely does not flag noise. Needs at least three experts to flag anyone: with two, each
    is equally far from the mean.

    Kendall's W uses the experts who scored every indicator of the family. Duplicate
    (expert, indicator) rows should have been rejected by validation; here they are averaged.
    """
    if scores is None or scores.empty:
        return []
    frame = scores.copy()
    for column in ("role_family", "expert_id", "indicator_id"):
        frame[column] = frame[column].astype(str)
    frame["score"] = frame["score"].astype(float)
    results: list[ExpertResult] = []
    for role_family in sorted(frame["role_family"].unique()):
        group = frame[frame["role_family"] == role_family]
        indicators = list(pd.unique(group["indicator_id"]))
        experts = list(pd.unique(group["expert_id"]))
        table = (
            group.pivot_table(index="expert_id", columns="indicator_id", values="score",
                              aggfunc="mean")
            .reindex(index=experts, columns=indicators)
        )
        means = table.mean(axis=0)
        weights = means / means.sum()

        mine = table.div(table.sum(axis=1), axis=0)
        theirs = table.notna().mul(weights, axis=1)
        theirs = theirs.div(theirs.sum(axis=1), axis=0)
        deviation = (mine - theirs).abs().mean(axis=1)

        outlier = pd.Series(False, index=deviation.index)
        for expert in deviation.index:
            others = deviation.drop(expert)
            if len(others) >= 2:
                limit = outlier_factor * float(others.median())
                outlier[expert] = deviation[expert] > limit and deviation[expert] > outlier_floor

        deviations = pd.DataFrame({
            "role_family": role_family,
            "expert_id": deviation.index,
            "deviation": deviation.to_numpy(),
            "outlier": outlier.to_numpy(),
        })
        if "_row" in group.columns:
            first_rows = group.groupby("expert_id", sort=False)["_row"].min()
            deviations["first_row"] = first_rows.reindex(deviation.index).to_numpy()

        results.append(ExpertResult(
            role_family=role_family,
            method="expert",
            weights={k: float(v) for k, v in weights.items()},
            kendall_w=kendall_w(table.dropna()),
            deviations=deviations,
            outliers=[e for e in deviation.index if outlier[e]],
            n_experts=len(experts),
        ))
    return results


# --------------------------------------------------------------------------- AHP weights


def _culprit(sheet: AhpSheet, i: int, j: int, a_ij: float, suggested: float) -> tuple[str, str, str]:
    """(cell, `C3(I01 对 I02 = 5,一致时约为 1.7)`, `C3 (I01 vs I02 = 5, consistent ≈ 1.7)`),
    from the cell HR actually typed."""
    cell = sheet.grid[i][j]
    if _is_blank(cell.value):  # only the lower triangle was filled: name that cell
        cell, i, j, a_ij, suggested = sheet.grid[j][i], j, i, 1 / a_ij, 1 / suggested
    typed, consistent = _format_judgment(a_ij), _format_judgment(suggested)
    first, second = sheet.ids[i], sheet.ids[j]
    return (cell.ref, f"{cell.ref}({first} 对 {second} = {typed},一致时约为 {consistent})",
            f"{cell.ref} ({first} vs {second} = {typed}, consistent ≈ {consistent})")


def ahp_weights(sheet: AhpSheet, ri_table: Mapping[int, float] | str = DEFAULT_RI_TABLE, *,
                file: str = "") -> tuple[WeightResult | None, list[Finding]]:
    """Weights from one AHP sheet, or None with the findings that stopped it.

    CR ≥ 0.10 is an error: the weights of an inconsistent matrix are not used, and the
    finding names the judgments most responsible, by cell, so HR knows what to revisit.
    """
    name, table = _resolve_ri_table(ri_table)
    where: dict[str, Any] = {"file": file, "sheet": sheet.sheet}
    matrix, findings = pairwise_matrix(sheet, file=file)
    if sheet.ids and len(sheet.ids) not in table:
        findings = [*findings, finding("ahp_too_large", cell=sheet.corner, count=len(sheet.ids),
                                       maximum=max(table), ri_table=RI_TABLE_NAMES_ZH.get(name, name),
                                       ri_table_en=name, **where)]
    if matrix is None or findings:
        return None, findings
    result = ahp(matrix, table)
    if result.cr >= CR_LIMIT:
        culprits = [_culprit(sheet, *c) for c in result.culprits]
        first_cell = culprits[0][0] if culprits else sheet.corner
        return None, [finding("ahp_inconsistent", cell=first_cell, value=f"{result.cr:.4f}",
                              role_family=sheet.role_family, cr=f"{result.cr:.4f}",
                              culprits=";".join(zh for _, zh, _ in culprits),
                              culprits_en="; ".join(en for _, _, en in culprits), **where)]
    return WeightResult(
        role_family=sheet.role_family,
        method="ahp",
        weights={k: float(w) for k, w in zip(sheet.ids, result.weights, strict=True)},
        lambda_max=result.lambda_max,
        ci=result.ci,
        ri=result.ri,
        cr=result.cr,
        ri_table=name,
    ), []


# --------------------------------------------------------------------------- display, levels


def largest_remainder(weights: Sequence[float], decimals: int = 2) -> list[Decimal]:
    """Percentages at `decimals` places that sum to exactly 100 (Hamilton's method).

    Each share is floored at the display precision and the missing units go to the largest
    remainders, ties to the earlier item. Every value is within one display unit of its
    exact percentage. Weights are normalised first (they should already sum to 1); each is
    rounded to 12 significant digits so 0.29 (stored as 0.28999…) is not floored to 28.99.
    """
    if not weights:
        return []
    values = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError("Weights must be finite and non-negative")
    exact = [Fraction(Decimal(f"{w:.12g}")) for w in values]
    total = sum(exact)
    if total == 0:
        raise ValueError("Weights sum to zero")
    units = 100 * 10**decimals
    quotas = [w * units / total for w in exact]
    floors = [math.floor(q) for q in quotas]
    missing = units - sum(floors)
    order = sorted(range(len(quotas)), key=lambda k: (-(quotas[k] - floors[k]), k))
    for k in order[:missing]:
        floors[k] += 1
    return [Decimal(units_k).scaleb(-decimals) for units_k in floors]


def global_weights(dimension_weights: Mapping[str, float],
                   indicator_weights: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Two-level AHP/expert weights: dimension weight × indicator weight within the dimension.

    Each level must sum to 1 (±1e-6) and every dimension must have its indicators: a missing
    level would silently shrink the total below 100%.
    """
    tolerance = 1e-6
    if abs(sum(dimension_weights.values()) - 1) > tolerance:
        raise ValueError(f"Dimension weights sum to {sum(dimension_weights.values())}, not 1")
    if set(dimension_weights) != set(indicator_weights):
        raise ValueError(
            "Dimensions differ between the two levels: "
            f"{sorted(set(dimension_weights) ^ set(indicator_weights))}"
        )
    result: dict[str, float] = {}
    for dimension, dimension_weight in dimension_weights.items():
        inner = indicator_weights[dimension]
        if abs(sum(inner.values()) - 1) > tolerance:
            raise ValueError(f"Indicator weights of {dimension} sum to {sum(inner.values())}, not 1")
        for indicator, weight in inner.items():
            if indicator in result:
                raise ValueError(f"Indicator {indicator} appears in more than one dimension")
            result[indicator] = dimension_weight * weight
    return result


# --------------------------------------------------------------------------- together


def compute_weights(expert_scores: pd.DataFrame | None, ahp_sheets: Sequence[AhpSheet], *,
                    ri_table: Mapping[int, float] | str = DEFAULT_RI_TABLE, file: str = "",
                    expert_sheet: str = EXPERT_SHEET, outlier_factor: float = 2.0,
                    outlier_floor: float = 0.02) -> tuple[list[WeightResult], list[Finding]]:
    """All weights of a weights workbook: expert results (by role family), then AHP sheets.

    Outlier experts are warnings (the weights are still computed); AHP problems are errors
    and that sheet yields no result.
    """
    results: list[WeightResult] = []
    findings: list[Finding] = []
    experts = expert_weights(expert_scores, outlier_factor=outlier_factor,
                             outlier_floor=outlier_floor) if expert_scores is not None else []
    for result in experts:
        results.append(result)
        flagged = result.deviations[result.deviations["outlier"]]
        for record in flagged.to_dict("records"):
            findings.append(finding(
                "expert_outlier", file=file, sheet=expert_sheet,
                value=f"{record['deviation']:.4f}", expert=record["expert_id"],
                role_family=result.role_family, deviation=f"{record['deviation']:.2%}",
            ))
    for sheet in ahp_sheets:
        ahp_result, sheet_findings = ahp_weights(sheet, ri_table, file=file)
        findings.extend(sheet_findings)
        if ahp_result is not None:
            results.append(ahp_result)
    return results, findings


__all__ = [
    "RI_SAATY_1980", "RI_TABLES", "DEFAULT_RI_TABLE", "CR_LIMIT", "AhpResult", "AhpSheet",
    "JudgmentCell", "WeightResult", "ExpertResult", "parse_judgment", "ahp", "pairwise_matrix",
    "check_pairwise", "ahp_sheets_from", "read_ahp_sheets", "kendall_w", "kendall_w_meaning", "KENDALL_W_BANDS",
    "KENDALL_W_WEAK",
    "expert_weights", "ahp_weights",
    "largest_remainder", "global_weights", "compute_weights",
]
