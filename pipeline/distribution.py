"""Scorecards for the right eyes only: one workbook per employee, encrypted if asked, and
workbooks scoped to a manager's people.

Pay-related appraisal data is personal information: a department workbook shows everyone in
it to whoever holds the file. Here each employee gets a workbook with their own scorecard
sheet and nothing else (no summary, no hidden sheet, no other person's strings), optionally
encrypted with ECMA-376 agile encryption (AES-256, what Excel, WPS and LibreOffice open with a
password prompt); and each manager gets a workbook holding only the people under them.

Passwords never appear in a message, a log, a crash report or the manifest: errors name the
employee and the cell, never the value.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.findings import BilingualError, Finding, finding
from pipeline.kinds import ID, TEXT, Field, fold, header_aliases
from pipeline.normalize import parse_column
from pipeline.safety import OLE2_MAGIC, Limits, UnreadableInput
from pipeline.scoring import ranked_within
from pipeline.writers.common import unique_stem

MASTER_ENV = "KPI_MASTER_PASSWORD"
MIN_PASSWORD = 8
GENERATED_LENGTH = 12
# No 0/O/o, 1/l/I: a password read off paper or a phone is typed right the first time.
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
PASSWORDS_FILE = "passwords.xlsx"  # in employees/, itself encrypted with the master password
PASSWORD_SHEET = "密码 Passwords"

_EMPLOYEE = Field("employee_id", "员工编号", "Employee ID", ID, True,
                  synonyms=("工号", "职工编号", "员工号", "员工工号", "人员编号", "职工号", "Staff ID", "EmpID"))
_PASSWORD = Field("password", "密码", "Password", TEXT, True, synonyms=("口令", "打开密码", "文件密码"))
_HEADER_ROWS = 30


class DistributionError(BilingualError):
    """A usage problem with per-employee output (passwords, master password): exit code 2."""


# ------------------------------------------------------------------------------ passwords

def generate_password(length: int = GENERATED_LENGTH) -> str:
    """A random password from an alphabet without look-alike characters (`secrets`)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def master_password(purpose_zh: str = "生成密码", purpose_en: str = "generate passwords") -> str:
    """The master password from the environment; refused when missing or shorter than 8."""
    value = os.environ.get(MASTER_ENV, "")
    if not value:
        raise DistributionError(
            f"无法{purpose_zh}:未设置环境变量 {MASTER_ENV}。生成的密码清单 employees/{PASSWORDS_FILE} "
            f"要用它加密。请先设置,例如 export {MASTER_ENV}='…'(至少 {MIN_PASSWORD} 个字符),再重新运行。",
            f"Cannot {purpose_en}: the environment variable {MASTER_ENV} is not set. The list of generated "
            f"passwords, employees/{PASSWORDS_FILE}, is encrypted with it. Set it first, e.g. "
            f"export {MASTER_ENV}='...' (at least {MIN_PASSWORD} characters), then run again.")
    if len(value) < MIN_PASSWORD:
        raise DistributionError(
            f"环境变量 {MASTER_ENV} 中的主密码太短(少于 {MIN_PASSWORD} 个字符)。请换一个更长的主密码。",
            f"The master password in {MASTER_ENV} is too short (under {MIN_PASSWORD} characters). "
            "Use a longer one.")
    return value


def load_passwords(path: Path, limits: Limits = Limits()) -> dict[str, str]:
    """employee_id -> password from HR's list (.xlsx or .csv; headers 员工编号 / 密码 as in the
    templates, under any title rows). The generated `passwords.xlsx` is read too, decrypted with
    the master password. Every problem is a DistributionError naming the file and cell."""
    from pipeline.reader import _calamine_book, _csv_book, load_input
    from pipeline.safety import CSV, check_input_file, ole2_kind

    path = Path(path)
    name = path.name
    try:
        data = load_input(path, limits).data
        if data is not None and data[:8] == OLE2_MAGIC and ole2_kind(data) == "encrypted":
            master = master_password("读取加密的密码清单", "read an encrypted password list")
            try:
                data = decrypt_bytes(data, master, what=name)
            except DistributionError:
                raise DistributionError(
                    f"无法解密密码清单 {name}:环境变量 {MASTER_ENV} 中的主密码不对。请设置生成该清单时所用的主密码。",
                    f"Cannot decrypt the password list {name}: the master password in {MASTER_ENV} is not the "
                    "one it was encrypted with. Set that one.") from None
        fmt = check_input_file(path, limits, data=data)
        book = _csv_book(path, limits, data or path.read_bytes()) if fmt == CSV else _calamine_book(path, fmt, limits, data)
    except UnreadableInput as exc:
        raise DistributionError(f"无法读取密码清单 {name}:{exc.reason_zh}",
                                f"Cannot read the password list {name}: {exc.reason_en}") from None
    except (DistributionError, MemoryError):
        raise
    except Exception as exc:  # a damaged file: named, never a traceback
        raise DistributionError(f"无法读取密码清单 {name}:文件已损坏({type(exc).__name__})。",
                                f"Cannot read the password list {name}: the file is damaged "
                                f"({type(exc).__name__}).") from None
    for sheet in book.sheet_names:
        found = _password_table(book.grids[sheet], name, sheet, book.named)
        if found is not None:
            return found
    raise DistributionError(
        f"密码清单 {name} 中找不到表头“员工编号”和“密码”。请用两列:员工编号 Employee ID、密码 Password。",
        f"No header with 'Employee ID' and 'Password' in the password list {name}. "
        "Use two columns: 员工编号 Employee ID and 密码 Password.")


def _password_table(grid, name: str, sheet: str, named: bool) -> dict[str, str] | None:
    from xlsxwriter.utility import xl_col_to_name

    ids, words = header_aliases(_EMPLOYEE), header_aliases(_PASSWORD)
    for r, row in enumerate(grid.head(_HEADER_ROWS)):
        folded = [fold(v) if isinstance(v, str) else "" for v in row]
        id_col = next((c for c, v in enumerate(folded) if v in ids), None)
        word_col = next((c for c, v in enumerate(folded) if v in words), None)
        if id_col is None or word_col is None:
            continue
        columns = grid.columns(r + 1, [id_col, word_col])
        rows = pd.RangeIndex(r + 2, r + 2 + len(columns[id_col]))
        employee = parse_column(pd.Series(columns[id_col], index=rows, dtype=object), _EMPLOYEE)[0]
        raw_words = pd.Series(columns[word_col], index=rows, dtype=object)
        password = parse_column(raw_words, _PASSWORD)[0]
        where = f"{name}!{sheet}!" if named else f"{name}!"
        id_letter, word_letter = xl_col_to_name(id_col), xl_col_to_name(word_col)
        result: dict[str, str] = {}
        for row_number, employee_id, word in zip(rows, employee, password):
            if employee_id is None and word is None:
                continue
            if employee_id is None:
                raise DistributionError(f"{where}{id_letter}{row_number}:有密码但没有员工编号。请填写员工编号或删除该行。",
                                        f"{where}{id_letter}{row_number}: a password without an employee ID. "
                                        "Fill in the ID or delete the row.")
            cell = f"{where}{word_letter}{row_number}"
            if word is None:
                raise DistributionError(f"{cell}:员工 {employee_id} 没有密码。请填写至少 {MIN_PASSWORD} 个字符的密码。",
                                        f"{cell}: employee {employee_id} has no password. Fill in one of at least "
                                        f"{MIN_PASSWORD} characters.")
            if len(word) < MIN_PASSWORD:
                raise DistributionError(
                    f"{cell}:员工 {employee_id} 的密码太短(少于 {MIN_PASSWORD} 个字符)。请换一个更长的密码。",
                    f"{cell}: employee {employee_id}'s password is too short (under {MIN_PASSWORD} characters). "
                    "Use a longer one.")
            if employee_id in result and result[employee_id] != word:
                raise DistributionError(f"{cell}:员工 {employee_id} 有两个不同的密码。请只保留一行。",
                                        f"{cell}: employee {employee_id} has two different passwords. Keep one row.")
            result[employee_id] = word
        return result
    return None


def check_passwords_cover(employee_ids, passwords: dict[str, str], source: str) -> None:
    """Every employee who gets a file has a password: otherwise nothing is written (exit 2)."""
    missing = sorted(set(employee_ids) - set(passwords))
    if missing:
        shown = "、".join(missing[:10]) + (f" 等 {len(missing)} 人" if len(missing) > 10 else "")
        shown_en = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise DistributionError(
            f"密码清单 {source} 中缺少这些员工的密码:{shown}。请补上后重新运行(未写出任何文件)。",
            f"The password list {source} has no password for: {shown_en}. Add them and run again "
            "(nothing was written).")


# ------------------------------------------------------------------------------ encryption

def encrypt_bytes(plain: bytes, password: str) -> bytes:
    """An .xlsx's bytes encrypted with ECMA-376 agile encryption (AES-256, SHA-512, random salt)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt(password, out)
    return out.getvalue()


def decrypt_bytes(data: bytes, password: str, what: str = "") -> bytes:
    """The plain .xlsx inside an encrypted file; DistributionError for a wrong password."""
    import msoffcrypto

    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        office.load_key(password=password, verify_password=True)
        out = io.BytesIO()
        office.decrypt(out)
    except Exception:  # wrong password, or not an encrypted workbook: the value is never shown
        raise DistributionError(f"无法解密 {what}:密码不正确,或文件不是加密的工作簿。",
                                f"Cannot decrypt {what}: wrong password, or not an encrypted workbook.") from None
    return out.getvalue()


# ------------------------------------------------------------------------------ org chart

def manager_pairs(roster: pd.DataFrame) -> tuple[pd.DataFrame, list[list[str]]]:
    """(every (manager_id, employee_id) with the employee anywhere under the manager, cycles).

    Walks up the manager column one level per step with a merge, keeping only pairs not seen
    before, so it ends on any roster: a cycle (A→B→A, or someone their own manager) stops
    producing new pairs after one turn. Nobody is ever under themselves here; each cycle is
    returned as the IDs along it, to be reported.
    """
    people = roster[["employee_id", "manager_id"]].dropna(subset=["employee_id"])
    people = people.drop_duplicates("employee_id")
    known = set(people["employee_id"])
    edges = people[people["manager_id"].notna() & people["manager_id"].isin(known)]
    edges = edges.rename(columns={"manager_id": "ancestor"}).reset_index(drop=True)
    step = edges.rename(columns={"employee_id": "via"})
    seen = edges[["ancestor", "employee_id"]]
    frontier = seen
    while not frontier.empty:
        # One level up: (x under a) and (a under b) give (x under b).
        up = frontier.merge(step, left_on="ancestor", right_on="via", suffixes=("_old", ""))
        up = up[["ancestor", "employee_id"]].drop_duplicates()
        fresh = up.merge(seen, on=["ancestor", "employee_id"], how="left", indicator=True)
        frontier = fresh.loc[fresh["_merge"] == "left_only", ["ancestor", "employee_id"]]
        seen = pd.concat([seen, frontier], ignore_index=True)
    looped = seen["ancestor"] == seen["employee_id"]
    cycles = _cycles(set(seen.loc[looped, "employee_id"]), dict(zip(edges["employee_id"], edges["ancestor"])))
    pairs = seen[~looped].rename(columns={"ancestor": "manager_id"})
    return pairs.sort_values(["manager_id", "employee_id"]).reset_index(drop=True), cycles


def manager_cycles(roster: pd.DataFrame) -> list[list[str]]:
    """The cycles of the manager column, without building every pair (run on every batch).

    Everyone walks up one level per step (numpy, all at once); a walker drops out on reaching
    the top, a person already known to be on a cycle, or themselves (then they are on one).
    So the steps are at most the longest chain plus the longest cycle, whatever the roster."""
    people = roster[["employee_id", "manager_id"]].dropna(subset=["employee_id"]).drop_duplicates("employee_id")
    ids = people["employee_id"].to_numpy(dtype=object)
    index = pd.Index(ids)
    parent = index.get_indexer(people["manager_id"].to_numpy(dtype=object))  # -1: none or unknown
    start = np.arange(len(ids))
    current = parent.copy()
    on_cycle = np.zeros(len(ids), dtype=bool)
    walking = current >= 0
    for _ in range(len(ids) + 1):
        walkers = np.flatnonzero(walking)
        if not len(walkers):
            break
        here = current[walkers]
        home = here == start[walkers]
        on_cycle[walkers[home]] = True
        done = home | (here < 0) | on_cycle[np.maximum(here, 0)] & (here >= 0)
        walking[walkers[done]] = False
        rest = walkers[~done]
        current[rest] = parent[current[rest]]
    return _cycles(set(ids[on_cycle]), dict(zip(ids[parent >= 0], ids[parent[parent >= 0]])))


def _cycles(on_cycles: set[str], manager_of: dict[str, str]) -> list[list[str]]:
    """Each cycle once, from its smallest ID, following the manager column (a handful of people)."""
    cycles, done = [], set()
    for start in sorted(on_cycles):
        if start in done:
            continue
        chain, current = [start], manager_of[start]
        while current != start:
            chain.append(current)
            current = manager_of[current]
        done.update(chain)
        cycles.append(chain)
    return cycles


def manager_cycle_findings(roster: pd.DataFrame, cycles: list[list[str]], cell_of) -> list[Finding]:
    """A warning per cycle in the manager column, at the first person's manager cell.

    `cell_of(row)`: the cell of a roster row's manager_id."""
    if not cycles:
        return []
    rows = roster.dropna(subset=["employee_id"]).drop_duplicates("employee_id").set_index("employee_id", drop=False)
    findings = []
    for chain in cycles:
        row = rows.loc[chain[0]]
        text = " → ".join([*chain, chain[0]])
        findings.append(finding("manager_cycle", file=row.get("_file", ""), sheet=row.get("_sheet", ""),
                                cell=cell_of(row), column="直属上级编号 Manager ID", value=row["manager_id"],
                                employee_id=chain[0], chain=text))
    return findings


# ------------------------------------------------------------------------------ manager workbooks

@dataclass
class Plan:
    """One workbook to write: who it shows, and whether it has their scorecard sheets."""

    path: Path
    department: str
    title: str
    totals: pd.DataFrame
    unscored: pd.DataFrame
    with_sheets: bool


def manager_plans(scores, roster: pd.DataFrame, managers_dir: Path, max_sheets: int) -> list[Plan]:
    """A workbook `managers/<经理编号>_<姓名>.xlsx` per manager with anyone under them, holding
    only those people (direct and indirect; never the manager, whose own scorecard is in their
    manager's workbook). Ranks are within the workbook. A manager with more than `max_sheets`
    scored people under them gets the summary of them all, and the scorecard sheets of their
    direct reports in `managers/<经理编号>_<姓名>/` (the others' are in their own managers'
    workbooks)."""
    pairs, _ = manager_pairs(roster)
    people = roster.dropna(subset=["employee_id"]).drop_duplicates("employee_id")
    names = dict(zip(people["employee_id"], people["name"]))
    departments = dict(zip(people["employee_id"], people["department"]))
    direct = dict(zip(people["employee_id"], people["manager_id"]))
    totals_of = {m: g for m, g in _members(scores.totals, pairs).groupby("manager_id_", sort=False)}
    unscored_of = {m: g for m, g in _members(scores.unscored, pairs).groupby("manager_id_", sort=False)}
    taken: set[str] = set()
    plans: list[Plan] = []
    for manager_id in sorted(set(totals_of) | set(unscored_of)):
        totals = totals_of.get(manager_id, scores.totals.iloc[0:0]).drop(columns="manager_id_", errors="ignore")
        unscored = unscored_of.get(manager_id, scores.unscored.iloc[0:0]).drop(columns="manager_id_", errors="ignore")
        totals = ranked_within(totals)
        name = names.get(manager_id)
        label = f"{manager_id} {name}" if isinstance(name, str) else str(manager_id)
        stem = unique_stem(f"{manager_id}_{name}" if isinstance(name, str) else str(manager_id), taken,
                           fallback="manager")
        department = departments.get(manager_id)
        department = department if isinstance(department, str) else ""
        if len(totals) <= max_sheets:
            plans.append(Plan(managers_dir / f"{stem}.xlsx", department, label, totals, unscored, True))
            continue
        plans.append(Plan(managers_dir / f"{stem}.xlsx", department, label, totals, unscored, False))
        reports = totals[totals["employee_id"].map(direct) == manager_id]
        for part, start in enumerate(range(0, len(reports), max_sheets), start=1):
            piece = reports.iloc[start:start + max_sheets]
            piece = ranked_within(piece)
            suffix = f" ({part})" if len(reports) > max_sheets else ""
            plans.append(Plan(managers_dir / stem / f"{stem}{suffix}.xlsx", department,
                              f"{label}{suffix}", piece, unscored.iloc[0:0], True))
    return plans


def _members(frame: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s rows once per manager above them (column `manager_id_`), in `frame`'s order."""
    if frame.empty or pairs.empty:
        return frame.iloc[0:0].assign(manager_id_=pd.Series(dtype=object))
    under = pairs.rename(columns={"manager_id": "manager_id_"})
    position = pd.DataFrame({"employee_id": frame["employee_id"].to_numpy(), "_at": np.arange(len(frame))})
    joined = under.merge(position, on="employee_id").sort_values(["manager_id_", "_at"], kind="stable")
    members = frame.take(joined["_at"].to_numpy()).reset_index(drop=True)
    members["manager_id_"] = joined["manager_id_"].to_numpy()
    return members


# ------------------------------------------------------------------------------ per-employee files

@dataclass
class EmployeeFile:
    """One employee's workbook: their totals row, and their rows of the company's details and
    ratings as positions in one object array each (taken in the worker that writes the file:
    a DataFrame take per file cost more than writing the sheet's cells)."""

    employee: dict
    details: tuple[np.ndarray, np.ndarray]
    ratings: tuple[np.ndarray, np.ndarray]
    manager_name: str
    password: str | None = None

    def rows(self, name: str, fields: tuple[str, ...]) -> list:
        from pipeline.writers.scorecards import _row_class

        values, positions = getattr(self, name)
        return list(map(_row_class(fields)._make, values[positions].tolist()))


def _field_array(frame: pd.DataFrame, fields: tuple[str, ...]) -> np.ndarray:
    """`frame`'s `fields` (None where it has no such column) as one object array, rows by rows."""
    from pipeline.writers.scorecards import _columns

    if frame.empty:
        return np.empty((0, len(fields)), dtype=object)
    array = np.empty((len(frame), len(fields)), dtype=object)
    for j, column in enumerate(_columns(frame, fields)):
        array[:, j] = column
    return array


def employee_files(scores, roster: pd.DataFrame, employees_dir: Path, detail_fields, rating_fields,
                   passwords: dict[str, str] | None) -> list[tuple[Path, EmployeeFile]]:
    """(path, data) of `employees/<部门>/<员工编号>.xlsx` for every scored employee."""
    from pipeline.writers.scorecards import _employee_records

    totals = scores.totals.sort_values(["department", "employee_id"], kind="stable")
    names = dict(zip(roster["employee_id"], roster["name"]))
    details = _field_array(scores.details, tuple(detail_fields))
    ratings = _field_array(scores.ratings, tuple(rating_fields))
    detail_rows = _positions(scores.details["employee_id"])
    rating_rows = _positions(scores.ratings["employee_id"]) if len(scores.ratings) else {}
    none = np.zeros(0, dtype=np.intp)
    folders: dict[str, str] = {}
    folder_taken: set[str] = {PASSWORDS_FILE}  # the list lives beside the department folders
    file_taken: dict[str, set[str]] = {}
    jobs = []
    for employee in _employee_records(totals):
        department = employee["department"] if isinstance(employee["department"], str) else ""
        if department not in folders:
            folders[department] = unique_stem(department, folder_taken, fallback="department")
        folder = folders[department]
        stem = unique_stem(employee["employee_id"], file_taken.setdefault(folder, set()), fallback="employee")
        manager = employee.get("manager_id")
        manager_name = names.get(manager, "") if isinstance(manager, str) and manager != employee["employee_id"] else ""
        employee_id = employee["employee_id"]
        jobs.append((employees_dir / folder / f"{stem}.xlsx",
                     EmployeeFile(employee, (details, detail_rows.get(employee_id, none)),
                                  (ratings, rating_rows.get(employee_id, none)),
                                  manager_name if isinstance(manager_name, str) else "",
                                  None if passwords is None else passwords[employee_id])))
    return jobs


def _positions(keys: pd.Series) -> dict:
    return dict(keys.groupby(keys, sort=False).indices) if len(keys) else {}


def write_employee_file(path: Path, data: EmployeeFile, policy, lang: str) -> tuple[str, str] | None:
    """One employee's workbook: their scorecard sheet alone, as in the department workbook.

    Encrypted when the file has a password; then (path, SHA-256 of the plain workbook) for the
    manifest, since the encrypted bytes differ on every run (random salt)."""
    from pipeline.outputs import SCORECARD_DETAIL_FIELDS, SCORECARD_RATING_FIELDS
    from pipeline.writers.common import close_workbook, new_workbook
    from pipeline.writers.scorecards import (
        Formats,
        employee_sheet_name,
        table_widths,
        write_employee_sheet,
    )

    employee = data.employee
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = new_workbook(path, title=f"{employee['employee_id']} {employee['name']} {employee['period']}")
    formats = Formats(workbook)
    rows = data.rows("details", SCORECARD_DETAIL_FIELDS)
    ratings = data.rows("ratings", SCORECARD_RATING_FIELDS)
    name = employee_sheet_name(employee["employee_id"], employee["name"], set())
    write_employee_sheet(workbook, name, employee, rows, ratings, data.manager_name, policy, formats, lang,
                         table_widths(rows))
    close_workbook(workbook)
    if data.password is None:
        return None
    plain = path.read_bytes()
    path.write_bytes(encrypt_bytes(plain, data.password))
    return str(path), hashlib.sha256(plain).hexdigest()


def write_password_list(path: Path, rows: list[tuple[str, str, str, str]], master: str, lang: str) -> str:
    """`employees/passwords.xlsx`: employee ID, name, department and password, encrypted with the
    master password; the SHA-256 of its plain content (for the manifest). The headers are
    those `--passwords` reads, so the list can be given back next period."""
    from pipeline.writers.common import close_workbook, new_workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = new_workbook(path, title="passwords")
    sheet = workbook.add_worksheet(PASSWORD_SHEET)
    head = workbook.add_format({"bold": True, "bg_color": "#1F3864", "font_color": "#FFFFFF"})
    mono = workbook.add_format({"font_name": "Consolas"})
    headers = [("员工编号", "Employee ID"), ("姓名", "Name"), ("部门", "Department"), ("密码", "Password")]
    for col, (zh, en) in enumerate(headers):
        sheet.write_string(0, col, en if lang == "en" else f"{zh} {en}", head)
    for r, (employee_id, name, department, password) in enumerate(rows, start=1):
        sheet.write_string(r, 0, employee_id)
        sheet.write_string(r, 1, name)
        sheet.write_string(r, 2, department)
        sheet.write_string(r, 3, password, mono)
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 14)
    sheet.set_column(2, 2, 20)
    sheet.set_column(3, 3, 20)
    sheet.freeze_panes(1, 0)
    sheet.set_paper(9)  # A4, all four columns on one page wide
    sheet.fit_to_pages(1, 0)
    close_workbook(workbook)
    plain = path.read_bytes()
    path.write_bytes(encrypt_bytes(plain, master))
    return hashlib.sha256(plain).hexdigest()


def employee_id_of(relative: str) -> str | None:
    """The employee a per-employee file belongs to: `employees/<部门>/<员工编号>.xlsx`."""
    parts = relative.split("/")
    if len(parts) == 3 and parts[0] == "employees" and parts[2].endswith(".xlsx"):
        return parts[2][: -len(".xlsx")]
    return None


def password_for_file(relative: str, passwords: dict[str, str]) -> str | None:
    """The password of an encrypted output: the master password for the list, the employee's
    for their file (matched by the file name, which is the employee ID made safe)."""
    from pipeline.writers.common import safe_file_stem

    if relative == f"employees/{PASSWORDS_FILE}":
        return os.environ.get(MASTER_ENV) or None
    stem = employee_id_of(relative)
    if stem is None:
        return None
    if stem in passwords:
        return passwords[stem]
    by_stem = {safe_file_stem(e, "employee"): p for e, p in passwords.items()}
    return by_stem.get(stem)
