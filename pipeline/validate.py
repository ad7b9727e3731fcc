"""Validation: typed, clean frames plus every finding, in one pass over the inbox.

Per sheet: values are parsed (normalize.py) and checked against the pandera schema of their
kind. Across files: duplicates and conflicts (naming both cells), references (employee,
indicator, manager), agreement rules (weights sum to 100%, tiers in order, targets usable),
actuals and ratings present for every agreed indicator, and the policy's design warnings.
Rows with errors are kept out of the clean frames; whoever they affect is blocked from
scoring with the reason, never silently dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from pipeline.findings import ERROR, RULES, Finding, finding
from pipeline.kinds import (
    ACTUALS,
    AGREEMENTS,
    DEPT_TARGETS,
    INDICATORS,
    KINDS,
    RATINGS,
    RELATIONS,
    ROSTER,
    WEIGHTS,
    SheetSpec,
)
from pipeline.normalize import is_blank, parse_column
from pipeline.periods import Period
from pipeline.policy import Policy
from pipeline.reader import WORKBOOK_SUFFIXES, MatrixSheet, Table, WorkbookRead, kind_from_name
from pipeline.schemas import schema_failures
from pipeline.suggest import IdIndex

ROLE_KPIS, EMPLOYEE_KPIS, ADJUSTMENTS = AGREEMENTS.sheets
EXPERT_SCORES = WEIGHTS.sheets[0]
META = ["_file", "_sheet", "_row", "_table"]

_CHECK_RULES = {"required", "bad_choice", "out_of_range", "negative", "half_points"}


@dataclass(frozen=True)
class RefusedFile:
    """An inbox file (or folder) none of whose rows could be used, and why."""

    file: str
    kind: str | None  # what its name says it holds; None: it could hold anything
    reason_zh: str
    reason_en: str


@dataclass
class Inputs:
    """The validated inbox: clean frames by sheet, findings, and who cannot be scored."""

    workbooks: list[WorkbookRead]
    tables: list[Table]
    frames: dict[str, pd.DataFrame]
    matrices: list[MatrixSheet]
    findings: list[Finding] = field(default_factory=list)
    # employee_id -> [(period or "" for all periods, finding)] for rows with errors
    blocked: dict[str, list[tuple[str, Finding]]] = field(default_factory=dict)
    bad_indicators: dict[str, Finding] = field(default_factory=dict)
    bad_role_sets: dict[tuple[str | None, str], Finding] = field(default_factory=dict)
    # (table, row) of actual cells refused for their value against the target (a percent slip)
    refused_actuals: set[tuple[int, int]] = field(default_factory=set)
    # Inbox files that could not be used at all (unreadable, of no recognisable kind): what
    # is missing because of them is said once, naming them (`refused_summary`).
    refused: list[RefusedFile] = field(default_factory=list)
    # period -> ((roster, role KPIs, employee KPIs) it was made from, resolved agreements):
    # `scoring.resolve_agreements` answers validation and scoring from one computation.
    resolved: dict = field(default_factory=dict, repr=False, compare=False)

    def frame(self, spec: SheetSpec) -> pd.DataFrame:
        return self.frames[spec.name]

    @property
    def roster(self) -> pd.DataFrame:
        return self.frames[ROSTER.sheets[0].name]

    @property
    def indicators(self) -> pd.DataFrame:
        return self.frames[INDICATORS.sheets[0].name]

    @property
    def actuals(self) -> pd.DataFrame:
        return self.frames[ACTUALS.sheets[0].name]

    @property
    def ratings(self) -> pd.DataFrame:
        return self.frames[RATINGS.sheets[0].name]

    @property
    def role_kpis(self) -> pd.DataFrame:
        return self.frames[ROLE_KPIS.name]

    @property
    def employee_kpis(self) -> pd.DataFrame:
        return self.frames[EMPLOYEE_KPIS.name]

    @property
    def expert_scores(self) -> pd.DataFrame:
        return self.frames[EXPERT_SCORES.name]

    @property
    def dept_targets(self) -> pd.DataFrame:
        return self.frames[DEPT_TARGETS.sheets[0].name]

    @cached_property
    def role_family_of(self) -> dict[str, str]:
        """employee_id -> role family, built once (validation asks per agreement set)."""
        roster = self.roster.dropna(subset=["employee_id"]).drop_duplicates("employee_id")
        return dict(zip(roster["employee_id"], roster["role_family"]))

    def block(self, employee_id: object, period: str, reason: Finding) -> None:
        if isinstance(employee_id, str) and employee_id:
            self.blocked.setdefault(employee_id, []).append((period, reason))

    def cell(self, row: pd.Series, field_name: str) -> str:
        return self.tables[int(row["_table"])].cell(field_name, int(row["_row"]))

    def refusal(self, rule: str, employees: int, indicators: list, period: str) -> Finding | None:
        """One finding for what a refused file costs: `employees` people cannot be scored in
        `period` for what `rule` (missing_rating, missing_actual, no_agreement) says is missing
        (of `indicators`), when a file that may hold it was refused; None otherwise. Said
        once, not once per employee: 100,000 lines would bury the one line that matters."""
        kind = _MISSING_KIND[rule]
        refused = [r for r in self.refused if r.kind is None or r.kind == kind]
        if not refused or not employees:
            return None
        what = _missing_what(rule, [str(i) for i in indicators])
        if len(refused) == 1:
            reason, reason_en = refused[0].reason_zh, refused[0].reason_en
        else:
            reason = ";".join(f"{r.file}:{r.reason_zh}" for r in refused)
            reason_en = "; ".join(f"{r.file}: {r.reason_en}" for r in refused)
        names = [r.file for r in refused]
        files_en = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return finding("refused_unscored", file=refused[0].file, period=period, count=f"{employees:,}",
                       files="、".join(names), files_en=files_en, were_en="was" if len(names) == 1 else "were",
                       reason=reason, reason_en=reason_en, what=what[0], what_en=what[1])


def _empty(spec: SheetSpec) -> pd.DataFrame:
    data = {f.name: pd.Series(dtype="float64" if f.type in ("number", "weight") else object) for f in spec.fields}
    data.update({"_file": pd.Series(dtype=object), "_sheet": pd.Series(dtype=object),
                 "_row": pd.Series(dtype="int64"), "_table": pd.Series(dtype="int64")})
    return pd.DataFrame(data)


# ------------------------------------------------------------------------------ per sheet

def _parse_table(table: Table, index: int) -> tuple[pd.DataFrame, list[Finding], set[int]]:
    """Typed frame (all rows, with `_bad`), findings and the Excel rows that have errors."""
    spec, raw = table.spec, table.frame
    typed = pd.DataFrame(index=raw.index)
    findings: list[Finding] = []
    flagged: set[str] = set(table.bad_cells)
    for f in spec.fields:
        if f.name not in raw:
            typed[f.name] = pd.Series(np.nan if f.type in ("number", "weight") else None, index=raw.index,
                                      dtype="float64" if f.type in ("number", "weight") else object)
            continue
        values, bad = parse_column(raw[f.name], f, table.codes.pop(f.name, None))
        typed[f.name] = values
        if bad.any():
            rule = {"period": "bad_period", "choice": "bad_choice"}.get(f.type, "not_a_number")
            choices = "、".join(c.label for c in f.choices)
            for row_number, value in zip(raw.loc[bad, "_row"], raw.loc[bad, f.name]):
                cell = table.cell(f.name, row_number)
                if cell in flagged:
                    continue
                flagged.add(cell)
                findings.append(finding(rule, file=table.file, sheet=table.sheet, cell=cell, column=f.label,
                                        value=_show(value), choices=choices))
    typed["_row"] = raw["_row"].astype("int64")
    typed["_file"], typed["_sheet"], typed["_table"] = table.file, table.sheet, index
    failures = schema_failures(spec, typed.set_index("_row", drop=False).rename_axis(None))
    typed_by_row = {column: dict(zip(raw["_row"], raw[column])) for column in set(failures["column"]) if column in raw}
    for column, check, failure_case, row_number in failures.itertuples(index=False):
        f = spec.field(column)
        cell = table.cell(column, int(row_number))
        if cell in flagged or check not in _CHECK_RULES or column not in table.letters:
            if column not in table.letters and check == "required":
                continue  # the missing column is already reported once
            if cell in flagged or check not in _CHECK_RULES:
                continue
        flagged.add(cell)
        rule = "not_half_step" if check == "half_points" else check
        as_typed = typed_by_row.get(column, {}).get(int(row_number), failure_case)  # 6, not 6.0
        findings.append(finding(rule, file=table.file, sheet=table.sheet, cell=cell, column=f.label,
                                value=_show(as_typed), low=_fmt(f.minimum), high=_fmt(f.maximum),
                                choices="、".join(c.label for c in f.choices)))
    bad_rows = {int("".join(ch for ch in cell if ch.isdigit())) for cell in flagged if any(ch.isdigit() for ch in cell)}
    typed["_bad"] = typed["_row"].isin(bad_rows)
    if any(f.name not in table.letters for f in spec.required):
        typed["_bad"] = True  # the reader reported the missing column; no row of this sheet is usable
    return typed.reset_index(drop=True), findings, bad_rows


def _show(value: object) -> str:
    """A cell value as a person reads it: 6 not 6.0, 3.3 not 3.2999999999999998, blank for none."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".15g")
    return str(value).strip()


def _fmt(number: float | None) -> str:
    if number is None:
        return ""
    return str(int(number)) if float(number).is_integer() else str(number)


# ------------------------------------------------------------------------------ inbox

def validate(workbooks: list[WorkbookRead], policy: Policy, period: Period | str | None = None, *,
             release_rows: bool = False, as_of: str | None = None) -> Inputs:
    """All the checks of the templates (docs/templates.md) and the policy over the inbox; `period` narrows the actuals checks.

    `release_rows`: drop each workbook's values as read once they are typed
    (`WorkbookRead.release_rows`), for a caller that only wants the validated frames after.
    `as_of` (a month of `period`): a progress run; the period's later months are left out (their
    actuals and ratings are not read, their missing actuals not reported).
    """
    # Text that is not a period: a usage error (the CLI checks first), not a problem in a file.
    scored = Period.of(period) if period is not None else None
    _set_aside_identical(workbooks)
    used = [wb for wb in workbooks if wb.copy_of is None]
    tables = [t for wb in used for t in wb.tables]
    inputs = Inputs(workbooks=workbooks, tables=tables, frames={},
                    matrices=[m for wb in used for m in wb.matrices],
                    findings=[f for wb in workbooks for f in wb.findings],
                    refused=refused_files(workbooks))
    by_spec: dict[str, list[pd.DataFrame]] = {}
    index = 0  # position in `tables`
    for wb in workbooks:
        for table in wb.tables if wb.copy_of is None else ():
            typed, findings, _ = _parse_table(table, index)
            index += 1
            inputs.findings.extend(findings)
            by_spec.setdefault(table.spec.name, []).append(typed)
        if release_rows:
            wb.release_rows()
    for kind in KINDS.values():
        for spec in kind.tables:
            parts = by_spec.pop(spec.name, None)  # the parts are freed once joined
            inputs.frames[spec.name] = pd.concat(parts, ignore_index=True) if parts else _empty(spec).assign(_bad=False)
    repeated = _repeated_keys(inputs)
    _set_aside_copies(inputs, repeated)
    # rows with reading errors also carry the reader's findings (formula/error cells)
    for wb in workbooks:
        for f in wb.findings:
            if f.cell and f.rule in ("formula_no_value", "error_value"):
                found = _spec_of(tables, f)
                frame = inputs.frames.get(found.name) if found else None
                if frame is not None:
                    row = int("".join(ch for ch in f.cell if ch.isdigit()))
                    frame.loc[(frame["_file"] == f.file) & (frame["_sheet"] == f.sheet) & (frame["_row"] == row), "_bad"] = True
    _duplicates(inputs, repeated)
    _block_bad_rows(inputs)
    _references(inputs)
    _date_row_findings(inputs)
    agreed = {spec.name: inputs.frames[spec.name].dropna(subset=[owner, "period"])
              for spec, owner in ((ROLE_KPIS, "role_family"), (EMPLOYEE_KPIS, "employee_id"))}
    bad_adjustments = _adjustment_rows(inputs)
    for name in list(inputs.frames):
        frame = inputs.frames[name]
        inputs.frames[name] = frame[~frame["_bad"]].drop(columns="_bad").reset_index(drop=True)
    if as_of is not None and scored is not None:
        _after_as_of(inputs, scored, as_of)
    _agreement_checks(inputs, policy, agreed)
    _adjustment_checks(inputs, policy, scored, bad_adjustments)
    _completeness(inputs, policy, scored, as_of)
    if inputs.refused_actuals:
        name = ACTUALS.sheets[0].name
        actuals = inputs.frames[name]
        refused = pd.Series(list(zip(actuals["_table"].astype(int), actuals["_row"].astype(int))),
                            index=actuals.index, dtype=object).isin(inputs.refused_actuals)
        inputs.frames[name] = actuals[~refused.to_numpy(bool)].reset_index(drop=True)
    _missing_kinds(inputs)
    return inputs


# ------------------------------------------------------------------------------ copies

# A file is a copy of another of its kind when this share of its data rows (of the smaller
# of the two) are rows of the other, value for value.
COPY_SHARE = 0.8
# Without a copy's name (`- 副本`, `(1)`, `Copy of`), the two must also be of like size: a
# small file that repeats a few rows of a big one is reported row by row, not set aside.
COPY_SIZE_SHARE = 0.5

_COPY_NAME = re.compile(
    r"^\s*(?:副本|复件|拷贝)"  # 副本 花名册 (WPS), 复件 花名册 (Windows XP)
    r"|^\s*copy\s*(?:\(\d{1,2}\)\s*)?of\s"  # Copy of roster, Copy (2) of roster
    r"|(?:副本|复件|拷贝)(?:\s*[(（]?\d{1,2}[)）]?)?\s*$"  # 花名册 - 副本, 花名册 - 副本 (2), 花名册 副本 2
    r"|[\s_\-]copy(?:\s*[(（]?\d{1,2}[)）]?)?\s*$"  # roster - Copy, roster copy 2, roster_copy
    r"|[(（]\d{1,2}[)）]\s*$",  # roster (1), roster(1): a second download
    re.IGNORECASE)


def looks_like_copy(file: str) -> bool:
    """Whether a file's name is what Windows, macOS, WPS or a browser gives a copy."""
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return _COPY_NAME.search(stem) is not None


def _original_and_copy(workbooks: list[WorkbookRead]) -> tuple[WorkbookRead, list[WorkbookRead]]:
    """Which of several copies is the original: one whose name does not look like a copy,
    else the first in inbox order (the later ones are the copies)."""
    plain = [wb for wb in workbooks if not looks_like_copy(wb.file)]
    original = (plain or workbooks)[0]
    return original, [wb for wb in workbooks if wb is not original]


def _set_aside_identical(workbooks: list[WorkbookRead]) -> None:
    """Workbooks with the same bytes: every copy but the original is ignored, with one warning
    naming both (its findings would only repeat the original's, row by row)."""
    same: dict[str, list[WorkbookRead]] = {}
    for wb in workbooks:
        if wb.sha256 and wb.copy_of is None and wb.path.suffix.lower() in WORKBOOK_SUFFIXES:
            same.setdefault(wb.sha256, []).append(wb)
    for group in same.values():
        if len(group) > 1:
            original, copies = _original_and_copy(group)
            for wb in copies:
                wb.copy_of = original.file
                wb.findings = [finding("duplicate_file", file=wb.file, original=original.file)]


def _set_aside_copies(inputs: Inputs, repeated: dict[str, pd.Series]) -> None:
    """Files of one kind whose rows are mostly the same (a backup copy, a second download):
    one finding on the copy's file naming both, and only the original's rows are used.

    A copy with the same rows is ignored with a warning; one that differs is an error (which
    version is right is for HR to say), never one duplicate per row. Only rows whose key is
    repeated can be copies, so an inbox without repeated keys costs nothing here; `repeated`
    is brought up to date for the sheets whose rows were set aside.
    """
    specs = {spec.name: spec for kind in KINDS.values() for spec in kind.tables}
    shared: Counter[tuple[str, str]] = Counter()
    for name, dup in repeated.items():
        if not dup.any():
            continue
        part = inputs.frames[name].loc[dup]
        if part["_file"].nunique() < 2:
            continue
        fields = [f.name for f in specs[name].fields]
        content = pd.util.hash_pandas_object(part[fields], index=False).to_numpy()
        rows = pd.DataFrame({"content": content, "file": part["_file"].to_numpy(dtype=object)}).drop_duplicates()
        pairs = rows.merge(rows, on="content")
        pairs = pairs[pairs["file_x"] < pairs["file_y"]]
        shared.update(pairs.groupby(["file_x", "file_y"]).size().to_dict())
    if not shared:
        return
    counts: Counter[str] = Counter()
    for frame in inputs.frames.values():
        counts.update(frame["_file"].value_counts().to_dict())
    by_file = {wb.file: wb for wb in inputs.workbooks}
    order = {wb.file: i for i, wb in enumerate(inputs.workbooks)}
    aside: dict[str, Finding] = {}
    for (a, b), same in sorted(shared.items(), key=lambda item: (-item[1] / min(counts[item[0][0]],
                                                                                 counts[item[0][1]]), item[0])):
        if a in aside or b in aside or a not in by_file or b not in by_file:
            continue
        small, large = sorted((counts[a], counts[b]))
        named = looks_like_copy(a) or looks_like_copy(b)
        if same < COPY_SHARE * small or not (named or small >= COPY_SIZE_SHARE * large):
            continue
        original, (copy,) = _original_and_copy(sorted((by_file[a], by_file[b]), key=lambda wb: order[wb.file]))
        rows = counts[copy.file]
        rule = "duplicate_file" if same == counts[a] == counts[b] else "copied_file"
        aside[copy.file] = finding(rule, file=copy.file, original=original.file, rows=rows, shared=same,
                                   differ=max(rows - same, 0))
        copy.copy_of, copy.findings = original.file, [aside[copy.file]]
    if not aside:
        return
    inputs.findings = [f for f in inputs.findings if f.file not in aside] + list(aside.values())
    inputs.matrices = [m for m in inputs.matrices if m.file not in aside]
    for name, frame in inputs.frames.items():
        kept = ~frame["_file"].isin(list(aside))
        if not kept.all():
            inputs.frames[name] = frame[kept].reset_index(drop=True)
            repeated.pop(name, None)
            repeated.update(_repeated_keys(inputs, {name}))


def refused_files(workbooks: list[WorkbookRead]) -> list[RefusedFile]:
    """The inbox's files (and folders) that could not be used at all, with the reason."""
    refused = []
    for wb in workbooks:
        if wb.kind is not None or wb.copy_of is not None:
            continue
        f = next((f for f in wb.findings if f.is_error and f.rule in _REFUSALS), None)
        if f is None:
            continue
        zh, en = _short_reason(f)
        kind = None if f.rule == "unreadable_folder" else kind_from_name(wb.file) or wb.closest_kind
        refused.append(RefusedFile(file=wb.file, kind=kind, reason_zh=zh, reason_en=en))
    return refused


_REFUSALS = ("unreadable", "unreadable_folder", "unknown_kind", "ambiguous_kind")
_FIRST_SENTENCE = {"zh": re.compile(r"[。;;]"), "en": re.compile(r"\. |; ")}


def _short_reason(f: Finding) -> tuple[str, str]:
    """The why of a refusal in a few words ("permission denied (Permission denied)"): its
    finding's message without the rule's opening and without the advice that follows."""
    short = []
    for lang, message, template in (("zh", f.message_zh, RULES[f.rule][1]), ("en", f.message_en, RULES[f.rule][2])):
        if "{reason" in template:  # "Cannot read this file: {reason_en}": the reason alone
            message = message.removeprefix(template.split("{reason")[0].replace("{folder}", f.file))
        short.append(_FIRST_SENTENCE[lang].split(message, maxsplit=1)[0].rstrip("。."))
    return short[0], short[1]


_MISSING_KIND = {"missing_rating": RATINGS.name, "missing_actual": ACTUALS.name, "no_agreement": AGREEMENTS.name}


def _missing_what(rule: str, names: list[str], shown: int = 10) -> tuple[str, str]:
    """("指标 C01、C02 的行为评分", "ratings for indicators C01, C02"), naming at most `shown`."""
    if rule == "no_agreement":
        return "考核指标(绩效协议)", "KPIs (agreements)"
    zh, en = "、".join(names[:shown]), ", ".join(names[:shown])
    if len(names) > shown:
        zh, en = f"{zh} 等 {len(names)} 个", f"{en} and {len(names) - shown} more"
    if rule == "missing_rating":
        return f"指标 {zh} 的行为评分", f"ratings for indicators {en}"
    return f"指标 {zh} 的实际值", f"actuals for indicators {en}"


def _spec_of(tables: list[Table], f: Finding) -> SheetSpec | None:
    for t in tables:
        if t.file == f.file and t.sheet == f.sheet:
            return t.spec
    return None


def _where(inputs: Inputs, row: dict, field_name: str) -> str:
    return f"{row['_file']}!{row['_sheet']}!{inputs.tables[int(row['_table'])].cell(field_name, int(row['_row']))}"


_CELL_ROW = re.compile(r"^[A-Za-z]*([0-9]+)$")


def _date_row_findings(inputs: Inputs) -> None:
    """Give each finding on a row of a dated sheet (agreements, actuals, ratings, department
    targets) the period of its row, where that period could be read.

    A run for one period sets aside what concerns the rows of other periods: a bad actual of
    2026-09 must be recognisably 2026-09 in a 2026-10 run. Called while the rows with errors
    are still in the frames. A row whose period cell is itself unreadable stays undated: it
    concerns every period.
    """
    dated = {(t.file, t.sheet): t.spec.name for t in inputs.tables if any(f.name == "period" for f in t.spec.fields)}
    wanted: dict[tuple[str, str], set[int]] = {}
    for f in inputs.findings:
        if not f.period and f.cell and (f.file, f.sheet) in dated:
            match = _CELL_ROW.match(f.cell)
            if match:
                wanted.setdefault((f.file, f.sheet), set()).add(int(match.group(1)))
    if not wanted:
        return
    periods: dict[tuple[str, str, int], str] = {}
    for (file, sheet), rows in wanted.items():
        frame = inputs.frames[dated[(file, sheet)]]
        found = frame.loc[(frame["_file"] == file) & (frame["_sheet"] == sheet) & frame["_row"].isin(rows),
                          ["_row", "period"]]
        periods.update(((file, sheet, int(row)), period) for row, period in zip(found["_row"], found["period"])
                       if isinstance(period, str) and period)
    for i, f in enumerate(inputs.findings):
        if not f.period and f.cell and (f.file, f.sheet) in wanted:
            match = _CELL_ROW.match(f.cell)
            period = periods.get((f.file, f.sheet, int(match.group(1)))) if match else None
            if period:
                inputs.findings[i] = replace(f, period=period)


def _repeated_keys(inputs: Inputs, names: set[str] | None = None) -> dict[str, pd.Series]:
    """Per sheet kind with a key (of `names`, or all): which rows share their (complete) key
    with another row."""
    repeated = {}
    for kind in KINDS.values():
        for spec in kind.tables:
            if names is not None and spec.name not in names:
                continue
            frame = inputs.frames[spec.name]
            key = list(spec.key)
            if frame.empty or not key:
                continue
            repeated[spec.name] = frame.duplicated(key, keep=False) & frame[key].notna().all(axis=1)
    return repeated


# Free text that does not make two rows different: a row typed twice with another remark is
# still the same row.
_REMARKS = frozenset({"data_source", "note", "comment"})


def _same(value: object) -> object:
    """A cell's value as compared between copies of a row (every blank alike)."""
    return None if is_blank(value) else value


def _duplicates(inputs: Inputs, repeated: dict[str, pd.Series] | None = None) -> None:
    """The same key twice (within a file or across files): the same row typed twice is one
    warning naming every copy and the row is used once; rows whose values differ are an error
    naming every cell (which one counts would be a guess).

    Rows are handled as plain records (not pandas groups): the same actuals file dropped into
    the inbox twice makes every one of its rows a duplicate, and that must stay quick.
    `repeated`: `_repeated_keys` of the frames as they are (computed here when not given).
    """
    repeated = _repeated_keys(inputs) if repeated is None else repeated
    names = {ROSTER.sheets[0].name: ("员工", "employee"), INDICATORS.sheets[0].name: ("指标", "indicator"),
             ROLE_KPIS.name: ("岗位指标", "role KPI"), EMPLOYEE_KPIS.name: ("个人指标", "employee KPI"),
             RATINGS.sheets[0].name: ("评分", "rating"), EXPERT_SCORES.name: ("专家打分", "expert score"),
             DEPT_TARGETS.sheets[0].name: ("部门目标", "department target")}
    for kind in KINDS.values():
        for spec in kind.tables:
            frame = inputs.frames[spec.name]
            key = list(spec.key)
            dup = repeated.get(spec.name)
            if dup is None or not dup.any():
                continue
            is_actuals = spec.name == ACTUALS.sheets[0].name
            value_field = "actual" if is_actuals else key[0]
            rule = "conflict" if is_actuals else "duplicate_key"
            what, what_en = names.get(spec.name, ("", ""))
            column = spec.field(value_field).label
            compared = [f.name for f in spec.fields if f.name not in _REMARKS and f.name in frame]
            wanted = list(dict.fromkeys(key + [value_field, "employee_id", "period", *compared, *META]))
            groups: dict[tuple, list[dict]] = {}
            rows = frame.loc[dup, [c for c in wanted if c in frame]]
            for index, record in zip(rows.index.tolist(), rows.to_dict("records"), strict=True):
                record["_index"] = index
                groups.setdefault(tuple(record[k] for k in key), []).append(record)
            conflicting: list[dict] = []
            extra: list[dict] = []
            for key_values in sorted(groups, key=lambda values: tuple(map(str, values))):
                group = groups[key_values]
                cells = ", ".join(_where(inputs, r, value_field) for r in group)
                key_text = " / ".join(str(v) for v in key_values)
                if len({tuple(_same(r[c]) for c in compared) for r in group}) == 1:
                    # The same row typed twice (or more): used once; one warning on the extra copy.
                    kept, copies = group[0], group[1:]
                    first = copies[0]
                    table = inputs.tables[int(first["_table"])]
                    also = tuple(table.cell(value_field, int(r["_row"])) for r in copies[1:]
                                 if r["_table"] == first["_table"])
                    inputs.findings.append(finding(
                        "duplicate", file=first["_file"], sheet=first["_sheet"],
                        cell=table.cell(value_field, int(first["_row"])), column=column,
                        value=_show(first[value_field]), key=key_text, cells=cells,
                        kept=_where(inputs, kept, value_field), what=what, what_en=what_en,
                        employee_id=_text(first.get("employee_id")), period=_text(first.get("period")),
                        also=also))
                    extra.extend(r["_index"] for r in copies)
                    continue
                conflicting.extend(r["_index"] for r in group)
                for row in group:
                    inputs.findings.append(finding(
                        rule, file=row["_file"], sheet=row["_sheet"],
                        cell=inputs.tables[int(row["_table"])].cell(value_field, int(row["_row"])),
                        column=column, value=_show(row[value_field]), key=key_text, cells=cells,
                        what=what, what_en=what_en, employee_id=_text(row.get("employee_id")),
                        period=_text(row.get("period"))))
            frame.loc[conflicting, "_bad"] = True
            if extra:
                inputs.frames[spec.name] = frame.drop(index=extra).reset_index(drop=True)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _block_bad_rows(inputs: Inputs) -> None:
    """Whoever a row with errors belongs to cannot be scored (for that row's period)."""
    reasons: dict[tuple[str, str, int], Finding] = {}
    sheet_reasons: dict[tuple[str, str], Finding] = {}  # a missing required column makes every row of its sheet unusable
    for f in inputs.findings:
        if f.is_error and f.rule == "missing_column":
            sheet_reasons.setdefault((f.file, f.sheet), f)
        elif f.is_error and f.cell:
            reasons.setdefault((f.file, f.sheet, int("".join(ch for ch in f.cell if ch.isdigit()) or 0)), f)
    for name, frame in inputs.frames.items():
        if name == ADJUSTMENTS.name:
            continue  # whom a bad adjustment keeps out, and for which periods: `_adjustment_checks`
        bad = frame[frame["_bad"]]
        for row_dict in bad.to_dict("records"):
            reason = reasons.get((row_dict["_file"], row_dict["_sheet"], int(row_dict["_row"]))) \
                or sheet_reasons.get((row_dict["_file"], row_dict["_sheet"]))
            if reason is None:
                continue
            period = row_dict.get("period") or ""
            if name == INDICATORS.sheets[0].name and row_dict.get("indicator_id"):
                inputs.bad_indicators.setdefault(row_dict["indicator_id"], reason)
            elif name == ROLE_KPIS.name and row_dict.get("role_family"):
                inputs.bad_role_sets.setdefault((row_dict["role_family"], period), reason)
            elif name == ROSTER.sheets[0].name:
                inputs.block(row_dict.get("employee_id"), "", reason)
            elif "employee_id" in row_dict:
                inputs.block(row_dict.get("employee_id"), period, reason)


def _reference(inputs: Inputs, spec_name: str, field_name: str, known: set[str], rule: str,
               severity: str = ERROR) -> None:
    frame = inputs.frames[spec_name]
    if frame.empty or field_name not in frame:
        return
    values = frame[field_name]
    unknown = values.notna() & ~_isin(values, known) & ~frame["_bad"]
    if not unknown.any():
        return
    columns = [c for c in dict.fromkeys([field_name, "employee_id", "role_family", "period", *META]) if c in frame]
    hints = _did_you_mean(set(values[unknown]), known) if rule != "unknown_role_family" else {}
    for row in frame.loc[unknown, columns].to_dict("records"):
        table = inputs.tables[int(row["_table"])]
        period = _text(row.get("period"))
        zh, en = hints.get(row[field_name], ("", ""))
        f = finding(rule, severity=severity, file=row["_file"], sheet=row["_sheet"],
                    cell=table.cell(field_name, int(row["_row"])), column=table.spec.field(field_name).label,
                    value=row[field_name], employee_id=_text(row.get("employee_id")), period=period,
                    hint=zh, hint_en=en)
        inputs.findings.append(f)
        if severity != ERROR:
            continue
        if spec_name == ROSTER.sheets[0].name:
            inputs.block(row.get("employee_id"), "", f)
        elif spec_name == ROLE_KPIS.name:
            inputs.bad_role_sets.setdefault((row["role_family"], period), f)
        elif "employee_id" in row and field_name != "employee_id":
            inputs.block(row.get("employee_id"), period, f)
    if severity == ERROR:
        frame.loc[unknown, "_bad"] = True


def _did_you_mean(unknown: set, known: set) -> dict[str, tuple[str, str]]:
    """unknown ID -> ("是否应为“E004”?", "Did you mean 'E004'? ") where a known ID is one edit away."""
    if not unknown or not known:
        return {}
    index = IdIndex(known)
    hints = {}
    for value in unknown:
        near = index.nearest(value)
        if near:
            hints[value] = ("是否应为" + "或".join(f"“{n}”" for n in near) + "?",
                            "Did you mean " + " or ".join(f"'{n}'" for n in near) + "? ")
    return hints


def _isin(values: pd.Series, known: set) -> pd.Series:
    """`values.isin(known)`, asked once per distinct value (a column of IDs repeats each often)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))  # missing values: code -1, not known
    member = np.zeros(len(uniques) + 1, dtype=bool)
    member[:-1] = np.fromiter(map(known.__contains__, uniques), dtype=bool, count=len(uniques))
    return pd.Series(member.take(codes), index=values.index)


def _pairs_in(left: pd.DataFrame, right: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Which rows of `left` have their `columns` as some row of `right` has them: the rows a
    left merge on `columns` would find (missing values match missing values, as in a merge).
    The columns are coded together, then compared as integers."""
    if left.empty or right.empty:
        return np.zeros(len(left), dtype=bool)
    keys = np.zeros(len(left) + len(right), dtype=np.int64)
    span = 1
    for column in columns:
        both = np.concatenate([left[column].to_numpy(dtype=object), right[column].to_numpy(dtype=object)])
        codes, uniques = pd.factorize(both)
        span *= len(uniques) + 1
        if span >= 2 ** 62:  # too many combinations to code in 64 bits: let pandas merge them
            found = left[columns].merge(right[columns].drop_duplicates(), on=columns, how="left", indicator=True)
            return (found["_merge"] == "both").to_numpy(dtype=bool)
        keys = keys * (len(uniques) + 1) + (codes + 1)
    return pd.Series(keys[:len(left)]).isin(keys[len(left):]).to_numpy(dtype=bool)


def _references(inputs: Inputs) -> None:
    roster = inputs.roster
    employees = set(roster.loc[~roster["_bad"], "employee_id"].dropna()) | set(roster["employee_id"].dropna())
    indicators = set(inputs.indicators["indicator_id"].dropna())
    if not inputs.roster.empty:
        _reference(inputs, ROSTER.sheets[0].name, "manager_id", employees, "unknown_manager")
        for spec in (EMPLOYEE_KPIS, ACTUALS.sheets[0], RATINGS.sheets[0]):
            _reference(inputs, spec.name, "employee_id", employees, "unknown_employee")
        families = set(roster["role_family"].dropna())
        _reference(inputs, ROLE_KPIS.name, "role_family", families, "unknown_role_family", severity="warning")
    if not inputs.indicators.empty:
        for spec in (ROLE_KPIS, EMPLOYEE_KPIS, ACTUALS.sheets[0], RATINGS.sheets[0], EXPERT_SCORES,
                     DEPT_TARGETS.sheets[0]):
            _reference(inputs, spec.name, "indicator_id", indicators, "unknown_indicator")


# ------------------------------------------------------------------------------ agreements

def _agreement_checks(inputs: Inputs, policy: Policy, agreed: dict[str, pd.DataFrame]) -> None:
    """Weights per set sum to 100%; targets usable by the indicator's method; design warnings.

    `agreed` holds every agreement row, those with errors too: a set's weights are summed over
    all its rows, so a row refused for another reason (say an unknown indicator) does not also
    make the set look as if it summed to 90%.

    Thousands of personal sets are judged from per-row arrays and per-set positions; pandas
    objects are only built for the rows and sets that have something to report.
    """
    methods = inputs.indicators.set_index("indicator_id")[["method", "direction", "dimension"]]
    for spec, owner in ((ROLE_KPIS, "role_family"), (EMPLOYEE_KPIS, "employee_id")):
        frame = inputs.frames[spec.name]
        everything = agreed[spec.name]
        if everything.empty:
            continue
        frame = frame.join(methods, on="indicator_id")
        bad_index: set[int] = set()
        suspects = _target_suspects(frame)
        if suspects.any():
            for index, row in zip(frame.index[suspects], frame[suspects].to_dict("records")):
                problem = _target_problem(row, inputs)
                if problem is not None:
                    inputs.findings.append(problem)
                    bad_index.add(index)
                    _block_set(inputs, owner, row, problem)
        clean_sets = frame.groupby([owner, "period"], sort=True).indices
        weights = everything["weight"].to_numpy(dtype="float64")
        design = _SetDesign(inputs, policy, frame, owner)
        for key, positions in sorted(everything.groupby([owner, "period"], sort=True).indices.items()):
            who, period = key
            group_weights = weights[positions]
            if np.isnan(group_weights).any():
                continue  # a weight that is missing or not a number is reported on its own cell
            total = group_weights.sum()
            who_zh, who_en = _who(owner, who)
            if abs(total - 1) > policy.weight_sum_tolerance:
                group = everything.iloc[positions]
                several = group[["_file", "_sheet"]].drop_duplicates().shape[0] > 1
                cells = ", ".join((f"{r['_file']}!{r['_sheet']}!" if several else "") + inputs.cell(r, "weight")
                                  for _, r in group.iterrows())
                first = group.iloc[0]
                # Every row of the set is marked in the errors workbook, not only the first.
                also = tuple(inputs.cell(r, "weight") for _, r in group.iloc[1:].iterrows()
                             if r["_file"] == first["_file"] and r["_sheet"] == first["_sheet"])
                f = finding("weight_sum", file=first["_file"], sheet=first["_sheet"], cell=inputs.cell(first, "weight"),
                            column=spec.field("weight").label, value=f"{total:.2%}", who=who_zh, who_en=who_en,
                            period=period, total=f"{total * 100:.2f}%", cells=cells,
                            employee_id=who if owner == "employee_id" else "", also=also)
                inputs.findings.append(f)
                if key in clean_sets:
                    bad_index.update(frame.index[clean_sets[key]])
                _block_set(inputs, owner, first, f)
                continue
            clean = clean_sets.get(key)
            if clean is not None and len(clean) == len(positions):
                design.warn(clean, key, who_zh, who_en)
        keep = ~inputs.frames[spec.name].index.isin(list(bad_index))
        inputs.frames[spec.name] = inputs.frames[spec.name][keep].reset_index(drop=True)


def _target_suspects(frame: pd.DataFrame) -> np.ndarray:
    """Rows for which `_target_problem` finds something (it words the finding)."""
    method = frame["method"].to_numpy(dtype=object)
    target = frame["target"].to_numpy(dtype="float64")
    base = frame["base"].to_numpy(dtype="float64")
    stretch = frame["stretch"].to_numpy(dtype="float64")
    lower = (frame["direction"] == "lower").to_numpy(dtype=bool)
    ratio, pass_fail = method == "ratio", method == "pass_fail"
    rating, tiered = method == "rating", method == "tiered"
    with np.errstate(invalid="ignore"):
        missing = np.isnan(base) | np.isnan(target) | np.isnan(stretch)
        ordered = np.where(lower, (base > target) & (target > stretch), (base < target) & (target < stretch))
        stretch_wrong_side = np.where(lower, stretch > target, stretch < target)  # False where either is blank
        return (((ratio | pass_fail) & np.isnan(target)) | ((ratio | rating) & (target == 0))
                | (ratio & ((target < 0) | stretch_wrong_side))
                | (tiered & (missing | ~ordered)))


class _SetDesign:
    """The policy's design warnings (`checks`) for agreement sets of one sheet (`_design_warnings`), from
    arrays over all its rows: a set is a list of row positions."""

    def __init__(self, inputs: Inputs, policy: Policy, frame: pd.DataFrame, owner: str):
        self.inputs, self.policy, self.frame, self.owner = inputs, policy, frame, owner
        self.weights = frame["weight"].to_numpy(dtype="float64")
        dimension = frame["dimension"]
        self.performance = (dimension == "performance").to_numpy(dtype=bool)
        self.no_dimension = dimension.isna().to_numpy(dtype=bool)
        self.shares: dict | None = None  # (owner, period, dimension) -> weight, made when first wanted
        self.columns = {c: frame[c].to_numpy(dtype=object) for c in ("_file", "_sheet", "_table", "_row", owner,
                                                                     "employee_id", "role_family") if c in frame}

    def warn(self, positions: np.ndarray, key: tuple, who: str, who_en: str) -> None:
        inputs, policy, owner = self.inputs, self.policy, self.owner
        period = key[1]
        first = {c: values[positions[0]] for c, values in self.columns.items()}
        where = dict(file=first["_file"], sheet=first["_sheet"], cell=inputs.cell(first, owner), period=period,
                     employee_id=_text(first.get("employee_id")), who=who, who_en=who_en)
        count = len(positions)
        if not policy.indicators_min <= count <= policy.indicators_max:
            inputs.findings.append(finding("indicator_count", count=count, low=policy.indicators_min,
                                           high=policy.indicators_max, **where))
        weights = self.weights[positions]
        performance = weights[self.performance[positions]].sum()
        dimensions_known = not self.no_dimension[positions].any()
        if dimensions_known and performance < policy.performance_weight_min - 1e-9:
            inputs.findings.append(finding("performance_share", share=f"{performance:.0%}",
                                           minimum=f"{policy.performance_weight_min:.0%}", **where))
        if count >= 3 and len(np.unique(weights[~np.isnan(weights)])) == 1:
            inputs.findings.append(finding("equal_weights", count=count, **where))
        family = first.get("role_family") if owner == "role_family" else None
        if owner == "employee_id":
            family = inputs.role_family_of.get(first["employee_id"])
        expected = policy.dimension_weights.get(family or "")
        if expected and dimensions_known:
            if self.shares is None:  # per set and dimension, summed as a groupby sums them
                self.shares = self.frame.groupby([owner, "period", "dimension"], sort=False)["weight"].sum().to_dict()
            shares = {d: self.shares[(*key, d)] for d in expected if (*key, d) in self.shares}
            labels = {c.code: c.zh for c in INDICATORS.sheets[0].field("dimension").choices}
            if any(abs(float(shares.get(d, 0.0)) - share) > 0.05 + 1e-9 for d, share in expected.items()):
                def describe(values: dict, zh: bool) -> str:
                    return ("、" if zh else ", ").join(
                        f"{labels[d] if zh else d} {float(values.get(d, 0.0)):.0%}" for d in expected)
                inputs.findings.append(finding("dimension_share", shares=describe(shares, True),
                                               shares_en=describe(shares, False), expected=describe(expected, True),
                                               expected_en=describe(expected, False), **where))


def _who(owner: str, who: str) -> tuple[str, str]:
    return (f"员工 {who}", f"employee {who}") if owner == "employee_id" else (f"岗位类别 {who}", f"role family {who}")


def _block_set(inputs: Inputs, owner: str, row: pd.Series, reason: Finding) -> None:
    if owner == "employee_id":
        inputs.block(row["employee_id"], row["period"], reason)
    else:
        inputs.bad_role_sets.setdefault((row["role_family"], row["period"]), reason)


def _target_problem(row: pd.Series, inputs: Inputs) -> Finding | None:
    method, direction = row.get("method"), row.get("direction")
    if not isinstance(method, str):
        return None
    ctx = dict(file=row["_file"], sheet=row["_sheet"], indicator=row["indicator_id"],
               employee_id=_text(row.get("employee_id")), period=row["period"])
    base, target, stretch = row["base"], row["target"], row["stretch"]
    method_zh = {"ratio": "比率", "tiered": "阶梯", "pass_fail": "达标"}.get(method, method)
    if method in ("ratio", "pass_fail") and pd.isna(target):
        return finding("missing_target", cell=inputs.cell(row, "target"), column="目标值 Target",
                       method=method_zh, method_en=method, **ctx)
    if method == "ratio" and target == 0:
        return finding("zero_target", cell=inputs.cell(row, "target"), column="目标值 Target", value=0, **ctx)
    if method == "rating" and target == 0:
        return finding("zero_target", cell=inputs.cell(row, "target"), column="目标值 Target", value=0, **ctx)
    if method == "ratio" and target < 0:
        return finding("negative_target", cell=inputs.cell(row, "target"), column="目标值 Target",
                       value=_fmt(target), **ctx)
    if method == "ratio" and not pd.isna(stretch):
        lower = direction == "lower"
        if (stretch > target) if lower else (stretch < target):
            return finding("ratio_stretch_side", cell=inputs.cell(row, "stretch"), column="冲刺值 Stretch",
                           value=_fmt(stretch), target=_fmt(target),
                           direction="越低越好" if lower else "越高越好",
                           direction_en="lower is better" if lower else "higher is better",
                           side="不高于" if lower else "不低于", side_en="at most" if lower else "at least", **ctx)
    if method == "tiered":
        if pd.isna(base) or pd.isna(target) or pd.isna(stretch):
            missing = next(n for n, v in (("base", base), ("target", target), ("stretch", stretch)) if pd.isna(v))
            return finding("missing_tiers", cell=inputs.cell(row, missing), column=missing, **ctx)
        increasing = direction != "lower"
        ordered = base < target < stretch if increasing else base > target > stretch
        if not ordered:
            return finding("tiers_not_monotonic", cell=inputs.cell(row, "base"), column="基础值 Base",
                           value=f"{_fmt(base)} / {_fmt(target)} / {_fmt(stretch)}", b=_fmt(base), t=_fmt(target),
                           s=_fmt(stretch), order="递增" if increasing else "递减",
                           order_en="increasing" if increasing else "decreasing", **ctx)
    return None


# ------------------------------------------------------------------------------ completeness

def _completeness(inputs: Inputs, policy: Policy, period: Period | None, as_of: str | None = None) -> None:
    """Every agreed indicator has an actual (or, for ratings, a rating) in the period."""
    from pipeline.scoring import resolve_agreements  # scoring imports nothing from here

    if inputs.roster.empty or inputs.indicators.empty:
        return
    if period is not None:
        periods = [period]
    else:
        reported = set(inputs.actuals["period"].dropna())
        agreed = sorted(set(pd.concat([inputs.role_kpis["period"], inputs.employee_kpis["period"]]).dropna()))
        periods = [q for q in map(Period.of, agreed) if reported & set(q.months) or q.text in reported]
    for scored in periods:
        p = scored.text
        agreements = resolve_agreements(inputs, p)
        if agreements.empty:
            continue
        methods = inputs.indicators.set_index("indicator_id")["method"]
        agreements = agreements.join(methods, on="indicator_id")
        _scale_checks(inputs, policy, scored, agreements)
        months = set(scored.months) | {p}
        _rollup_checks(inputs, policy, scored, agreements, as_of)
        _rating_relations(inputs, policy, scored, agreements)
        actual_keys = inputs.actuals.loc[inputs.actuals["period"].isin(months), ["employee_id", "indicator_id"]]
        rating_keys = inputs.ratings.loc[inputs.ratings["period"].isin(months), ["employee_id", "indicator_id"]]
        for method, keys, rule in (("rating", rating_keys, "missing_rating"), (None, actual_keys, "missing_actual")):
            rows = agreements[agreements["method"] == "rating"] if method else agreements[agreements["method"] != "rating"]
            missing = rows[~_pairs_in(rows, keys, ["employee_id", "indicator_id"])]
            blocked_already = {e for e, reasons in inputs.blocked.items() if any(q in ("", p) or q in months for q, _ in reasons)}
            if _missing_for_refused(inputs, missing[~missing["employee_id"].isin(blocked_already)], rule, p):
                continue
            for row in missing.to_dict("records"):
                if row["employee_id"] in blocked_already:
                    continue
                f = finding(rule, file=row["_file"], sheet=row["_sheet"],
                            cell=inputs.tables[int(row["_table"])].cell("indicator_id", int(row["_row"])),
                            employee_id=row["employee_id"], period=p, indicator=row["indicator_id"])
                inputs.findings.append(f)
                inputs.block(row["employee_id"], p, f)


def _missing_for_refused(inputs: Inputs, missing: pd.DataFrame, rule: str, period: str) -> bool:
    """When a file that may hold the missing actuals or ratings was refused: one finding for
    everyone they are missing for (each of them blocked with it), and True."""
    if missing.empty or not inputs.refused:
        return False
    employees = missing["employee_id"].unique()
    f = inputs.refusal(rule, len(employees), sorted(missing["indicator_id"].dropna().unique()), period)
    if f is None:
        return False
    inputs.findings.append(f)
    for employee_id in employees:
        inputs.block(employee_id, period, f)
    return True


def _cells(inputs: Inputs, rows: pd.DataFrame, field_name: str, limit: int = 6) -> str:
    """`file!sheet!cell` of each row (the first `limit`, then how many more)."""
    records = rows[META].to_dict("records")
    named = ", ".join(_where(inputs, r, field_name) for r in records[:limit])
    more = len(records) - limit
    return named + (f" (+{more})" if more > 0 else "")


def _rollup_checks(inputs: Inputs, policy: Policy, scored: Period, agreements: pd.DataFrame,
                   as_of: str | None = None) -> None:
    """A quarter, half or year rolled up from months: say what the roll-up could not do.

    - an actual (or rating) for the period itself beside monthly ones for the same employee and
      indicator: an error naming both (which one counts would be a guess);
    - months with no actual: a warning naming them (`rollup.missing_months: error` makes it an
      error that keeps the employee out of the period), since a quarterly target met by two
      months of sales is not the same result. In a progress run only the months up to `as_of`
      are expected.
    """
    period = scored.text
    months = list(scored.months_to(as_of) if as_of is not None else scored.months)
    if scored.is_month or agreements.empty:
        return
    keys = ["employee_id", "indicator_id"]
    agreed = agreements[keys].drop_duplicates()
    for frame, value_field, what, what_en in ((inputs.actuals, "actual", "实际值", "actuals"),
                                              (inputs.ratings, "score", "评分", "ratings")):
        rows = frame.loc[frame["period"].isin([period, *months]), [*keys, "period", value_field, *META]]
        rows = rows[_pairs_in(rows, agreed, keys)]
        if rows.empty:
            continue
        is_direct = (rows["period"] == period).to_numpy(bool)
        direct, monthly = rows[is_direct], rows[~is_direct]
        mixed = _pairs_in(monthly, direct, keys)
        if mixed.any():
            monthly_of = dict(iter(monthly[mixed].groupby(keys, sort=False)))
            for (employee_id, indicator_id), group in direct[_pairs_in(direct, monthly[mixed], keys)].groupby(
                    keys, sort=True):
                first = group.iloc[0]
                f = finding("period_beside_months", file=first["_file"], sheet=first["_sheet"],
                            cell=inputs.cell(first, value_field), column=value_field, value=_show(first[value_field]),
                            employee_id=employee_id, period=period, indicator=indicator_id, what=what,
                            what_en=what_en, direct=_cells(inputs, group, value_field),
                            monthly=_cells(inputs, monthly_of[(employee_id, indicator_id)], value_field))
                inputs.findings.append(f)
                inputs.block(employee_id, period, f)
        if value_field != "actual":
            continue  # 360 ratings are often given for only some months: averaged, not flagged
        rolled = monthly[~mixed]
        present = rolled.groupby(keys, sort=True)["period"].nunique()
        incomplete = present[present < len(months)]
        if incomplete.empty:
            continue
        short = rolled[_pairs_in(rolled, incomplete.reset_index()[keys], keys)]
        blocking = policy.missing_months == "error"
        for (employee_id, indicator_id), group in short.groupby(keys, sort=True):
            have = set(group["period"])
            first = group.sort_values("period", kind="stable").iloc[0]
            f = finding("missing_months_error" if blocking else "missing_months", file=first["_file"],
                        sheet=first["_sheet"], cell=inputs.cell(first, "actual"), column="actual",
                        value=_show(first["actual"]), employee_id=employee_id, period=period,
                        indicator=indicator_id, months="、".join(m for m in months if m not in have),
                        months_en=", ".join(m for m in months if m not in have),
                        present="、".join(m for m in months if m in have),
                        present_en=", ".join(m for m in months if m in have))
            inputs.findings.append(f)
            if blocking:
                inputs.block(employee_id, period, f)


def _rating_relations(inputs: Inputs, policy: Policy, scored: Period, agreements: pd.DataFrame) -> None:
    """Ratings that exist but none of which the policy counts for the employee's role family
    (a 销售 rated by 同事 only): say so, rather than that the rating is missing."""
    rated = agreements.loc[agreements["method"] == "rating", ["employee_id", "indicator_id"]].drop_duplicates()
    period = scored.text
    ratings = inputs.ratings
    rows = ratings.loc[ratings["period"].isin({period, *scored.months}), ["employee_id", "indicator_id", "relation", *META]]
    rows = rows[_pairs_in(rows, rated, ["employee_id", "indicator_id"])]
    if rows.empty:
        return
    # Whether the policy counts each row's relation for the employee's role family: looked up
    # in a table of the few distinct families × relations, not row by row.
    family_codes, families = pd.factorize(rows["employee_id"].map(inputs.role_family_of))
    relation_codes, relations = pd.factorize(rows["relation"])
    weights = [policy.rater_weights_for(family if isinstance(family, str) else "") for family in families]
    weights.append(policy.rater_weights_for(""))  # employees without a role family (code -1)
    table = np.array([[weights[f].get(relation, 0) > 0 for relation in relations] for f in range(len(weights))],
                     dtype=bool).reshape(len(weights), len(relations))
    counted = table[family_codes, relation_codes]  # code -1 takes the last row: the default weights
    # (employee, indicator) pairs none of whose rows is counted.
    employee_codes, _ = pd.factorize(rows["employee_id"])
    indicator_codes, _ = pd.factorize(rows["indicator_id"])
    pairs = employee_codes.astype(np.int64) * (indicator_codes.max() + 1) + indicator_codes
    uncounted = rows[~np.isin(pairs, pairs[counted])]
    labels = {c.code: c for c in RELATIONS}
    for (employee_id, indicator_id), group in uncounted.groupby(["employee_id", "indicator_id"], sort=True):
        family = inputs.role_family_of.get(employee_id) or ""
        present = [labels[r] for r in sorted(set(group["relation"]), key=list(labels).index) if r in labels]
        wanted = [labels[r] for r, w in policy.rater_weights_for(family).items() if w > 0 and r in labels]
        first = group.iloc[0]
        f = finding("rating_unweighted", file=first["_file"], sheet=first["_sheet"],
                    cell=inputs.cell(first, "relation"), column="relation", employee_id=employee_id, period=period,
                    indicator=indicator_id, family=family or "default",
                    relations="、".join(c.zh for c in present), relations_en=", ".join(c.en for c in present),
                    counted="、".join(c.zh for c in wanted), counted_en=", ".join(c.en for c in wanted))
        inputs.findings.append(f)
        inputs.block(employee_id, period, f)


def _missing_kinds(inputs: Inputs) -> None:
    for kind, zh in ((ROSTER, "员工花名册"), (INDICATORS, "指标库")):
        if not any(wb.kind == kind.name for wb in inputs.workbooks):
            inputs.findings.append(finding("missing_input", what=zh, what_en=kind.en.lower()))
    if not any(wb.kind == AGREEMENTS.name for wb in inputs.workbooks):
        inputs.findings.append(finding("missing_input", what="绩效协议", what_en="agreements"))


# ------------------------------------------------------------------------------ scale and ratio checks

# Units that say "this indicator is a percent" (compared after NFKC, so ％ is %).
PERCENT_UNITS = frozenset({"%", "百分比"})
# Beyond this a percent-unit value is a bare number (95 for 95%); at or below it, a fraction (0.95).
PERCENT_FRACTION_MAX = 1.5
_SCALE_RULES = ("percent_slip", "scale_ratio", "negative_actual_lower_ratio")


def _scale_checks(inputs: Inputs, policy: Policy, scored: Period, agreements: pd.DataFrame) -> None:
    """Unit slips between every actual cell used for `period` and its agreed target.

    A score built on 95 meant as 95% looks plausible and pays the wrong bonus, so it is caught
    here, per cell: a percent typed bare beside a fraction (error, the employee or role set is
    not scored), a value `checks.scale_ratio` times off its target (warning), and a negative
    actual under target ÷ actual scoring (error). Used cells: the period's own rows, and for a
    quarter, half or year the monthly rows of indicators that have no period-level row. A
    monthly cell of a sum indicator is compared to the period's target as cell × months in the
    period (its share of a sum); mean and last indicators compare the cell itself.
    """
    actuals = inputs.actuals
    if actuals.empty or agreements.empty:
        return
    keys = ["employee_id", "indicator_id"]
    period = scored.text
    months = scored.months
    columns = [*keys, "actual", *META]
    used = actuals.loc[actuals["period"] == period, columns].assign(_months=1)
    if not scored.is_month:
        monthly = actuals.loc[actuals["period"].isin(months), columns]
        monthly = monthly[~_pairs_in(monthly, used, keys)].assign(_months=len(months))
        used = pd.concat([used, monthly], ignore_index=True)
    used = used[used["actual"].notna()]
    if used.empty:
        return
    targets = agreements[[*keys, "target", "kpi_source", *META]].rename(columns={c: f"target{c}" for c in META})
    rows = used.merge(targets, on=keys, how="inner")
    if rows.empty:
        return
    library = inputs.indicators.drop_duplicates("indicator_id").set_index("indicator_id")
    library = library[["method", "direction", "aggregation"]].assign(percent=[  # one look per indicator
        isinstance(u, str) and unicodedata.normalize("NFKC", u).strip() in PERCENT_UNITS for u in library["unit"]])
    rows = rows.join(library, on="indicator_id")

    a = rows["actual"].to_numpy(dtype="float64")
    t = rows["target"].to_numpy(dtype="float64")
    method = rows["method"].to_numpy(dtype=object)
    measured = (method != "rating") & pd.notna(method)
    with np.errstate(invalid="ignore", divide="ignore"):
        both = measured & (a != 0) & (t != 0) & ~np.isnan(t)  # 0 reads the same in any unit
        percent = both & rows["percent"].isin([True]).to_numpy(dtype=bool)  # an unknown indicator: no
        bare_a, bare_t = np.abs(a) > PERCENT_FRACTION_MAX, np.abs(t) > PERCENT_FRACTION_MAX
        slip_actual = percent & bare_a & ~bare_t
        slip_target = percent & bare_t & ~bare_a
        negative = ((method == "ratio") & (rows["direction"] == "lower").to_numpy(dtype=bool) & (a < 0)
                    if policy.lower_is_better == "ratio" else np.zeros(len(rows), dtype=bool))
        share = rows["_months"].to_numpy(dtype="float64")
        share = np.where(rows["aggregation"].fillna("sum").to_numpy(dtype=object) == "sum", share, 1.0)
        times = np.abs(a * share) / np.abs(t)
        far = both & ~slip_actual & ~slip_target & ~negative & (
            (times > policy.scale_ratio) | (times * policy.scale_ratio < 1))
    if not (slip_actual.any() or slip_target.any() or negative.any() or far.any()):
        return

    # A cell checked again for another period (a month and its quarter) is reported once, blocks in both.
    reported = {(f.rule, f.file, f.sheet, f.cell): f for f in inputs.findings if f.rule in _SCALE_RULES}
    actual_label, target_label = ACTUALS.sheets[0].field("actual").label, ROLE_KPIS.field("target").label

    def add(rule: str, row: dict, cell: str, block_target: bool = False, **context: Any) -> None:
        file, sheet = (row["target_file"], row["target_sheet"]) if block_target else (row["_file"], row["_sheet"])
        f = reported.get((rule, file, sheet, cell))
        if f is None:
            employee = "" if block_target and row["kpi_source"] == "role" else row["employee_id"]
            f = finding(rule, file=file, sheet=sheet, cell=cell, employee_id=employee, period=period,
                        indicator=row["indicator_id"], **context)
            reported[(rule, file, sheet, cell)] = f
            inputs.findings.append(f)
        if f.is_error and block_target and row["kpi_source"] == "role":
            family = inputs.role_family_of.get(row["employee_id"])
            inputs.bad_role_sets.setdefault((family, period), f)
        elif f.is_error:
            inputs.block(row["employee_id"], period, f)

    def actual_cell(row: dict) -> str:
        return inputs.tables[int(row["_table"])].cell("actual", int(row["_row"]))

    def target_cell(row: dict) -> str:
        return inputs.tables[int(row["target_table"])].cell("target", int(row["target_row"]))

    for row in rows[slip_actual].to_dict("records"):
        add("percent_slip", row, actual_cell(row), column=actual_label, value=_show(row["actual"]),
            fraction=_hundredth(row["actual"]), other="目标值", other_en="target",
            other_value=_as_percent(row["target"]),
            other_cell=f"{row['target_file']}!{row['target_sheet']}!{target_cell(row)}")
    # A role's target is shared by its members: one finding per target cell, naming the first actual.
    flagged = rows[slip_target].sort_values(["target_table", "target_row", "_table", "_row"], kind="stable")
    for row in flagged.drop_duplicates(["target_table", "target_row"]).to_dict("records"):
        add("percent_slip", row, target_cell(row), block_target=True, column=target_label,
            value=_show(row["target"]), fraction=_hundredth(row["target"]), other="实际值", other_en="actual",
            other_value=_as_percent(row["actual"]),
            other_cell=f"{row['_file']}!{row['_sheet']}!{actual_cell(row)}")
    # A refused actual is not used anywhere (the department rollup included): dropped once
    # every period has been checked (`validate`).
    for mask in (slip_actual, negative):
        inputs.refused_actuals.update(zip(rows.loc[mask, "_table"].astype(int), rows.loc[mask, "_row"].astype(int)))
    for row in rows[negative].to_dict("records"):
        add("negative_actual_lower_ratio", row, actual_cell(row), column=actual_label, value=_show(row["actual"]))
    for row, ratio, share_of in zip(rows[far].to_dict("records"), times[far], share[far]):
        figure = _figure(row["actual"])
        if share_of > 1:
            months_used = int(share_of)
            actual_zh = f"月度实际值 {figure} × {months_used} 个月 = {_figure(row['actual'] * share_of)}"
            actual_en = f"Monthly actual {figure} × {months_used} months = {_figure(row['actual'] * share_of)}"
        else:
            actual_zh, actual_en = f"实际值 {figure}", f"Actual {figure}"
        if ratio > 1:
            times_zh, times_en = f"{_times(ratio)} 倍", f"{_times(ratio)}×"
        else:
            times_zh = times_en = f"1/{_times(1 / ratio)}"
            times_en += " of"
        add("scale_ratio", row, actual_cell(row), column=actual_label, value=_show(row["actual"]),
            actual=actual_zh, actual_en=actual_en, target=_figure(row["target"]), times=times_zh, times_en=times_en)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))  # the decimal the person typed (a float cell's shortest repr)


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _hundredth(value: float) -> str:
    """95 → 0.95: the fraction a bare percent stands for."""
    return _plain(_decimal(value) / 100)


def _as_percent(value: float) -> str:
    """0.9 → 90%."""
    return _plain(_decimal(value) * 100) + "%"


def _figure(value: float) -> str:
    """2000000 → 2,000,000; 0.35 stays 0.35 (thousands separators, no float noise)."""
    number = _decimal(value)
    whole, _, fraction = _plain(number).lstrip("-").partition(".")
    text = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
    return ("-" if number < 0 else "") + text


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2g}"


# ------------------------------------------------------------------------------ progress runs

def _after_as_of(inputs: Inputs, period: Period, as_of: str) -> None:
    """A progress run of `period` as of `as_of`: the actuals and ratings of its later months are
    left out, so everything after rolls up the months so far."""
    later = set(period.months) - set(period.months_to(as_of))
    if not later:
        return
    for spec in (ACTUALS.sheets[0], RATINGS.sheets[0]):
        frame = inputs.frames[spec.name]
        inputs.frames[spec.name] = frame[~frame["period"].isin(later)].reset_index(drop=True)


# ------------------------------------------------------------------------------ adjustments

def _adjustment_rows(inputs: Inputs) -> pd.DataFrame:
    """The adjustment rows refused so far (their reading errors), before the bad rows are
    dropped; the rows a person must fix before an adjustment can apply are marked bad here:
    no owner, no reason or approver, an unknown employee, role family or indicator."""
    frame = inputs.frames[ADJUSTMENTS.name]
    if frame.empty:
        return frame
    usable = ~frame["_bad"]
    employees = set(inputs.roster["employee_id"].dropna())
    families = set(inputs.roster["role_family"].dropna())
    indicators = set(inputs.indicators["indicator_id"].dropna())
    for row in frame[usable].to_dict("records"):
        table = inputs.tables[int(row["_table"])]
        where = dict(file=row["_file"], sheet=row["_sheet"], employee_id=_text(row.get("employee_id")))
        problems = []
        if not isinstance(row["employee_id"], str) and not isinstance(row["role_family"], str):
            problems.append(finding("adjustment_no_owner", cell=table.cell("employee_id", int(row["_row"])),
                                    column=ADJUSTMENTS.field("employee_id").label, **where))
        elif isinstance(row["employee_id"], str) and employees and row["employee_id"] not in employees:
            problems.append(finding("unknown_employee", cell=table.cell("employee_id", int(row["_row"])),
                                    column=ADJUSTMENTS.field("employee_id").label, value=row["employee_id"], **where))
        elif not isinstance(row["employee_id"], str) and families and row["role_family"] not in families:
            problems.append(finding("adjustment_unknown_role_family", cell=table.cell("role_family", int(row["_row"])),
                                    column=ADJUSTMENTS.field("role_family").label, value=row["role_family"], **where))
        if indicators and row["indicator_id"] not in indicators:
            problems.append(finding("unknown_indicator", cell=table.cell("indicator_id", int(row["_row"])),
                                    column=ADJUSTMENTS.field("indicator_id").label, value=row["indicator_id"], **where))
        for name in ("reason", "approved_by"):
            if not isinstance(row[name], str) or not row[name].strip():
                problems.append(finding("adjustment_unapproved", cell=table.cell(name, int(row["_row"])),
                                        column=ADJUSTMENTS.field(name).label, **where))
        if problems:
            inputs.findings.extend(problems)
            frame.loc[(frame["_table"] == row["_table"]) & (frame["_row"] == row["_row"]), "_bad"] = True
    return frame[frame["_bad"]].drop(columns="_bad")


def _adjustment_checks(inputs: Inputs, policy: Policy, period: Period | None, bad: pd.DataFrame) -> None:
    """The adjustments against the agreements they change (see `pipeline.adjustments`).

    For the run's period (every agreed period when there is none): each old value is the value
    in force, weights still sum to 100%, the new values can be scored. Whoever a failing or
    refused adjustment concerns is kept out of the periods it applies to; a second adjustment
    of one indicator within a quarter is a warning.
    """
    from pipeline.adjustments import apply_adjustments, prepared, repeated_in_quarter
    from pipeline.scoring import resolve_agreements

    rows = prepared(inputs)
    if rows.empty and bad.empty:
        return
    inputs.findings.extend(repeated_in_quarter(rows))
    if period is not None:
        periods = [period]
    else:
        agreed = set(inputs.role_kpis["period"].dropna()) | set(inputs.employee_kpis["period"].dropna())
        periods = [Period.of(p) for p in sorted(agreed)]
    reasons: dict[tuple[str, str, int], Finding] = {}
    for f in inputs.findings:
        if f.is_error and f.cell:
            reasons.setdefault((f.file, f.sheet, int("".join(ch for ch in f.cell if ch.isdigit()) or 0)), f)
    methods = inputs.indicators.set_index("indicator_id")[["method", "direction"]]
    for scored in periods:
        p, last = scored.text, scored.end
        if period is not None:  # a refused adjustment keeps its people out of the periods it applies to
            for row in bad.to_dict("records"):
                effective = row.get("effective_period")
                reason = reasons.get((row["_file"], row["_sheet"], int(row["_row"])))
                if reason is None or (isinstance(effective, str) and Period.of(effective).start > last):
                    continue
                if isinstance(row.get("employee_id"), str):
                    inputs.block(row["employee_id"], p, reason)
                elif isinstance(row.get("role_family"), str):
                    inputs.bad_role_sets.setdefault((row["role_family"], p), reason)
        if rows.empty:
            continue
        agreements = resolve_agreements(inputs, p)
        applied = apply_adjustments(inputs, scored, agreements, policy.weight_sum_tolerance, rows)
        problems = list(applied.findings)
        changed = applied.agreements[applied.agreements["adjustment"] != ""]
        if not changed.empty:
            checked = changed.join(methods, on="indicator_id")
            suspects = _target_suspects(checked)
            for row in checked[suspects].drop_duplicates(["indicator_id", "adjustment", "kpi_source"]).to_dict("records"):
                first = row["adjustment"].split("; ")[0]
                file, sheet, cell = first.split("!")
                owner = rows.loc[rows["cell"] == first].iloc[0]
                kind = owner["owner_kind"]
                who = (f"员工 {owner['owner']}", f"employee {owner['owner']}") if kind == "employee" else \
                    (f"岗位类别 {owner['owner']}", f"role family {owner['owner']}")
                values = " / ".join("" if pd.isna(row[n]) else _fmt(row[n]) for n in ("base", "target", "stretch"))
                problems.append((kind, owner["owner"], finding(
                    "adjustment_bad_value", file=file, sheet=sheet, cell=cell, column="新值 New value",
                    employee_id=row["employee_id"] if kind == "employee" else "", period=p, who=who[0],
                    who_en=who[1], indicator=row["indicator_id"], values=values, cells=row["adjustment"])))
        for kind, owner, f in problems:
            inputs.findings.append(f)
            if kind == "employee":
                inputs.block(owner, p, f)
            else:
                inputs.bad_role_sets.setdefault((owner, p), f)
