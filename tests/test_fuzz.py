"""Fuzzing the reader (issue 6): mutated real templates and filled workbooks, in the raw zip and
inside its XML members, must come back as data or findings — never an exception, never a hang.

Seeds: the committed blank templates (workbooks/templates/) and the files of a filled company
(tests/company.py). Mutations: flip, insert, delete and truncate at random offsets, plus
splices of the tokens that matter to a spreadsheet reader (entity declarations, far cell
references, error and formula cells, stray row tags). Derandomised, so CI sees the same cases.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest
from company import small_company
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.findings import Finding
from pipeline.reader import Table, WorkbookRead, read_workbook

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "workbooks" / "templates").glob("*.xlsx"))

TOKENS = [
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>',
    b'<c r="XFD1048576"><v>1</v></c>', b'<c r="A99999999999"><v>1</v></c>', b'<c r="GR1048576"><v>1</v></c>',
    b'<dimension ref="A1:XFD1048576"/>', b'<row r="1048576">', b"</row>", b"<row>", b"<c><v>7</v></c>",
    b'<c r="B2" t="e"><v>#N/A</v></c>', b'<c r="D3"><f>SUM(A1:A9)</f></c>', b'<f t="shared" si="0"/>',
    b't="e"', b't="s"', b't="inlineStr"', b"<v>99999999999999999999</v>", b"<v>-1</v>", b"<v>NaN</v>",
    b'<mergeCell ref="A1:XFD1048576"/>', b"&amp;", b"&#0;", b"&lol;", b"<![CDATA[<c>]]>", b"\x00", b"\xff\xfe",
    b"'", b'"', b"<", b">", b"=cmd|' /C calc'!A0",
]

_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    st.integers(min_value=0, max_value=255),
    st.integers(min_value=1, max_value=64),
    st.sampled_from(TOKENS),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    buffer = bytearray(data)
    for op, where, byte, length, token in mutations:
        at = min(int(where * len(buffer)), max(len(buffer) - 1, 0))
        if op == "flip" and buffer:
            buffer[at] ^= byte or 0xFF
        elif op == "insert":
            buffer[at:at] = bytes([byte]) * length
        elif op == "delete":
            del buffer[at:at + length]
        elif op == "truncate":
            del buffer[at:]
        elif op == "splice":
            buffer[at:at] = token
    return bytes(buffer)


def rezip(source: bytes, member_index: int, mutations: list[tuple], sheets_only: bool = False) -> bytes:
    """The zip with one of its XML members (or of its sheets) mutated after inflating, then
    deflated again."""
    import io

    with zipfile.ZipFile(io.BytesIO(source)) as zin:
        members = zin.infolist()
        xml = [m for m in members if m.filename.endswith((".xml", ".rels"))
               and (not sheets_only or m.filename.startswith("xl/worksheets/"))]
        target = xml[member_index % len(xml)].filename
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for member in members:
                data = zin.read(member)
                zout.writestr(member.filename, mutate(data, mutations) if member.filename == target else data)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[tuple[str, bytes]]:
    company = small_company(tmp_path_factory.mktemp("fuzz") / "inbox", mistake=True, hostile_name=True)
    files = TEMPLATES + sorted(company.glob("*.xlsx"))
    assert len(TEMPLATES) >= 7
    return [(path.name, path.read_bytes()) for path in files]


def check_outcome(result: WorkbookRead, name: str) -> None:
    """Data or findings: well-formed either way."""
    assert isinstance(result, WorkbookRead) and result.file == name
    for f in result.findings:
        assert isinstance(f, Finding) and f.message_zh.strip() and f.message_en.strip()
        assert f.file == name
    if any(f.rule == "unreadable" for f in result.findings):
        assert not result.tables and result.kind is None
    for table in result.tables:
        assert isinstance(table, Table) and isinstance(table.frame, pd.DataFrame)
        assert "_row" in table.frame.columns


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_workbooks_give_data_or_findings(seeds, tmp_path_factory, data):
    name, original = data.draw(st.sampled_from(seeds), label="seed")
    mutations = data.draw(st.lists(_MUTATION, min_size=1, max_size=6), label="mutations")
    if data.draw(st.booleans(), label="inside a member"):
        member = data.draw(st.integers(min_value=0, max_value=50), label="member")
        mutated = rezip(original, member, mutations, data.draw(st.booleans(), label="a sheet"))
    else:
        mutated = mutate(original, mutations)
    folder = tmp_path_factory.mktemp("case", numbered=True)
    path = folder / name
    path.write_bytes(mutated)
    result = read_workbook(path)  # must not raise (how fast: benchmarks/timings.py)
    check_outcome(result, name)


@pytest.mark.parametrize("suffix", [".xls", ".csv", ".xlsm"])
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_under_other_names_give_data_or_findings(seeds, tmp_path, suffix, data):
    name, original = data.draw(st.sampled_from(seeds), label="seed")
    mutated = mutate(original, data.draw(st.lists(_MUTATION, min_size=0, max_size=4), label="mutations"))
    path = tmp_path / (Path(name).stem + suffix)
    path.write_bytes(mutated)
    check_outcome(read_workbook(path), path.name)
