"""The demo inbox: seed 003's company, messy the way HR files are, with two planted mistakes."""

from __future__ import annotations

import datetime as dt
import unicodedata
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import openpyxl
import pytest

from pipeline.demo import INDICATOR_LIBRARY, PERIOD, QUARTER, build_demo_inbox
from pipeline.kinds import ACTUALS, AGREEMENTS, KINDS, RATINGS, ROSTER
from pipeline.templates import EMPTY_ROWS, META_SHEET


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> dict:
    return build_demo_inbox(tmp_path_factory.mktemp("inbox"))


def _rows(path: Path, sheet: str, header_row: int = 1) -> list[dict]:
    """Data rows of a sheet as dicts keyed by field name (example row skipped)."""
    kind_sheet = next(s for k in KINDS.values() for s in k.tables if s.name == sheet)
    ws = openpyxl.load_workbook(path)[sheet]
    out = []
    for row in ws.iter_rows(min_row=header_row + 1, values_only=True):
        if row[0] is None or str(row[0]).startswith("示例"):
            continue
        out.append(dict(zip(kind_sheet.field_names, row, strict=False)))
    return out


def _share(value) -> float:
    """A weight as HR typed it (0.3, `25%`, 20) → a share."""
    if isinstance(value, str):
        return float(value.rstrip("%")) / 100
    return value / 100 if value > 1 else value


def test_inbox_has_the_files(inbox):
    folder = Path(inbox["folder"])
    assert inbox["files"] == ["roster.xlsx", "indicators.xlsx", "agreements.xlsx",
                              "actuals_销售部.xlsx", "actuals_研发部.xlsx", "actuals_行政部.xlsx",
                              "ratings.xlsx", "weights.xlsx", "dept_targets.xlsx"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*inbox["files"], "README.txt"])
    assert inbox["period"] == PERIOD and inbox["employees"] == 50
    for name in inbox["files"]:  # every file, even those touched by openpyxl, keeps its kind
        meta = openpyxl.load_workbook(folder / name)[META_SHEET]
        assert meta.sheet_state == "hidden" and meta["B1"].value in KINDS


def test_roster_has_seed_003s_fifty_people(inbox):
    people = _rows(Path(inbox["folder"]) / "roster.xlsx", ROSTER.sheets[0].name, header_row=2)
    assert len(people) == 50
    assert [p["employee_id"] for p in people] == [f"E{i:03d}" for i in range(1, 51)]
    assert Counter(p["department"] for p in people) == {"销售部": 15, "研发部": 25, "行政部": 10}
    assert len({p["name"] for p in people}) == 50
    managers = {p["department"]: p["employee_id"] for p in people if p["manager_id"] is None}
    assert managers == {"销售部": "E001", "研发部": "E016", "行政部": "E041"}
    assert all(p["manager_id"] == managers[p["department"]] for p in people
               if p["employee_id"] not in managers.values())
    assert {p["status"] for p in people} == {"在职", None}  # blank means active


def test_roster_has_a_merged_title_above_the_header(inbox):
    sheet = openpyxl.load_workbook(Path(inbox["folder"]) / "roster.xlsx")[ROSTER.sheets[0].name]
    assert sheet["A1"].value == "2026年10月 员工花名册"
    assert "A1:G1" in {str(r) for r in sheet.merged_cells.ranges}
    assert [c.value for c in sheet[2]] == [f.header for f in ROSTER.sheets[0].fields]
    assert sheet.freeze_panes == "A3"
    status = [dv for dv in sheet.data_validations.dataValidation if dv.type == "list"]
    last = 1 + 1 + 1 + 50 + EMPTY_ROWS  # title, header, example, people, room to add more
    assert [str(dv.sqref) for dv in status] == [f"G3:G{last}"]  # moved down with the header


def test_planted_mistakes_are_where_the_dict_says(inbox):
    folder = Path(inbox["folder"])
    assert len(inbox["mistakes"]) == 2
    by_file = {m["file"]: m for m in inbox["mistakes"]}
    weight, na = by_file["agreements.xlsx"], by_file["actuals_研发部.xlsx"]

    actuals = openpyxl.load_workbook(folder / na["file"])[na["sheet"]]
    row = actuals[na["cell"]].row
    assert actuals[na["cell"]].value == "N/A"
    assert [actuals.cell(row=row, column=c).value for c in (1, 2, 3)] == [
        na["employee_id"], PERIOD, "RND-04"]

    agreements = openpyxl.load_workbook(folder / weight["file"])[weight["sheet"]]
    assert agreements[weight["cell"]].value == pytest.approx(0.1)
    rows = _rows(folder / weight["file"], weight["sheet"])
    total = sum(_share(r["weight"]) for r in rows if r["employee_id"] == weight["employee_id"])
    assert total == pytest.approx(0.9)
    assert inbox["unscored"] == {PERIOD: sorted([weight["employee_id"], na["employee_id"]])}

    readme = (folder / "README.txt").read_text(encoding="utf-8")
    for m in inbox["mistakes"]:
        assert f"{m['file']}!{m['sheet']}!{m['cell']}" in readme


def test_everything_else_adds_up(inbox):
    folder = Path(inbox["folder"])
    role, personal = AGREEMENTS.sheets[:2]
    sums: dict[tuple, float] = defaultdict(float)
    for r in _rows(folder / "agreements.xlsx", role.name):
        sums[(r["role_family"], r["period"])] += _share(r["weight"])
    for r in _rows(folder / "agreements.xlsx", personal.name):
        sums[(r["employee_id"], r["period"])] += _share(r["weight"])
    assert {k for k in sums} >= {(f, p) for f in ("销售", "研发", "行政") for p in (PERIOD, QUARTER)}
    wrong = {k: v for k, v in sums.items() if abs(v - 1) > 1e-9}
    assert wrong == {("E020", PERIOD): pytest.approx(0.9)}

    rating_targets = {(r["role_family"] if "role_family" in r else r["employee_id"], r["target"])
                      for sheet in (role.name, personal.name)
                      for r in _rows(folder / "agreements.xlsx", sheet)
                      if INDICATOR_LIBRARY[r["indicator_id"]]["method"] == "rating"}
    assert rating_targets == {("销售", 4), ("研发", 4), ("行政", 4), ("E020", 4), ("E001", None)}

    typed = [r["weight"] for r in _rows(folder / "agreements.xlsx", role.name)]
    assert {type(w) for w in typed} >= {str, int, float}  # `25%`, 20 and 0.3 all appear

    indicators = {r["indicator_id"] for r in _rows(folder / "indicators.xlsx", "指标库 Indicators")}
    assert 10 <= len(indicators) <= 15 and indicators == set(INDICATOR_LIBRARY)


def test_actuals_cover_four_months_with_a_realistic_spread(inbox):
    folder = Path(inbox["folder"])
    sales = _rows(folder / "actuals_销售部.xlsx", ACTUALS.sheets[0].name)
    assert {r["period"] for r in sales} == {"2026-07", "2026-08", "2026-09", "2026-10"}
    assert all(r["data_source"] for r in sales)
    revenue = [float(unicodedata.normalize("NFKC", str(r["actual"]))) for r in sales
               if r["indicator_id"].strip() == "SAL-01" and r["period"] != PERIOD]
    within = sum(0.8 * 60 <= v <= 1.15 * 60 for v in revenue)
    assert len(revenue) == 45 and 0.7 <= within / len(revenue) < 1  # most near target, a few off


def test_actuals_carry_the_messy_but_valid_bits(inbox):
    folder = Path(inbox["folder"])
    values = [v for name in inbox["files"] if name.startswith("actuals_")
              for r in _rows(folder / name, ACTUALS.sheets[0].name) for v in r.values()]
    full_width = [v for v in values if isinstance(v, str) and v != unicodedata.normalize("NFKC", v)]
    assert len(full_width) >= 3
    assert sum(isinstance(v, str) and v != v.strip() for v in values) >= 3

    admin = openpyxl.load_workbook(folder / "actuals_行政部.xlsx")[ACTUALS.sheets[0].name]
    month = admin["B3"]
    assert month.value == dt.datetime(2026, 7, 1) and month.number_format == "yyyy-mm"


def test_ratings_are_360_with_chinese_only_headers(inbox):
    folder = Path(inbox["folder"])
    sheet = openpyxl.load_workbook(folder / "ratings.xlsx")[RATINGS.sheets[0].name]
    assert [c.value for c in sheet[1]] == [f.zh for f in RATINGS.sheets[0].fields]
    rows = _rows(folder / "ratings.xlsx", RATINGS.sheets[0].name)
    assert {r["period"] for r in rows} == {PERIOD, QUARTER}
    assert all(1 <= r["score"] <= 5 and r["score"] * 2 == int(r["score"] * 2) for r in rows)
    assert {INDICATOR_LIBRARY[r["indicator_id"]]["method"] for r in rows} == {"rating"}
    relations = defaultdict(set)
    for r in rows:
        relations[(r["employee_id"], r["period"], r["indicator_id"])].add(r["relation"])
    assert all("自评" in rel and "同事" in rel for rel in relations.values())
    unsupervised = {k[0] for k, rel in relations.items() if "上级" not in rel}
    assert unsupervised == {"E001", "E016", "E041"}  # managers: a warning, not an error
    missing = {k for k, rel in relations.items() if "上级" not in rel}
    assert len(missing) == len(inbox["warnings"]) == 12


def test_weights_file_has_expert_scores_and_an_ahp_matrix(inbox):
    workbook = openpyxl.load_workbook(Path(inbox["folder"]) / "weights.xlsx")
    scores = _rows(Path(inbox["folder"]) / "weights.xlsx", "专家打分 ExpertScores")
    assert len(scores) == 30 and {r["expert_id"] for r in scores} == {f"X{i}" for i in range(1, 6)}
    assert all(1 <= r["score"] <= 10 for r in scores)
    sheet = workbook["AHP-研发"]
    assert sheet["B1"].value == sheet["A2"].value == "RND-01"
    assert sheet["B2"].value == 1 and sheet["C2"].value == 2 and sheet["B3"].value == "1/2"


def test_same_seed_gives_identical_bytes(inbox, tmp_path):
    again = build_demo_inbox(tmp_path)
    first, second = Path(inbox["folder"]), Path(again["folder"])
    for name in [*inbox["files"], "README.txt"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    with zipfile.ZipFile(first / "roster.xlsx") as archive:  # the openpyxl-saved ones too
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    assert "2026-01-01T00:00:00Z</dcterms:modified>" in core


def test_another_seed_gives_other_people(inbox, tmp_path):
    other = build_demo_inbox(tmp_path, seed=4)
    sheet = ROSTER.sheets[0].name
    names = [[p["name"] for p in _rows(Path(i["folder"]) / "roster.xlsx", sheet, header_row=2)]
             for i in (inbox, other)]
    assert len(names[1]) == 50 and names[0] != names[1]
