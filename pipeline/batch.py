"""The monthly batch: read, validate, score and write one period, all or nothing.

Outputs are written into a temporary folder beside the period folder and renamed into place
whole, so a crash never leaves half a period; the run it replaces is kept in `OUT/.history`
(`pipeline.runs`); a lock stops two runs on one output folder; inputs are only ever read.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import __version__
from pipeline.findings import RULES, WARNING, BilingualError, Finding, finding, sort_findings
from pipeline.kinds import ACTUALS, AGREEMENTS, RATINGS
from pipeline.outputs import SCORECARD_DETAIL_FIELDS, SCORECARD_RATING_FIELDS
from pipeline.periods import Period
from pipeline.policy import Policy
from pipeline.reader import WorkbookRead, read_inbox
from pipeline.runs import Housekeeping, clean_leftovers, prune, put_in_place, staging_folder
from pipeline.schemas import prepare_validation
from pipeline.scoring import Scores, ranked_within, score_period
from pipeline.signals import stop_on_signals
from pipeline.validate import Inputs, validate
from pipeline.workers import run_biggest_first
from pipeline.writers.common import unique_stem
from pipeline.writers.scorecards import (
    DepartmentData,
    write_department_workbook,
)

LOCK_NAME = ".kpi-run.lock"

# pandas 3 keeps strings in Arrow arrays when pyarrow happens to be installed. The batch turns
# every string back into a Python object to write it, so Arrow strings only cost: measured at
# 10,000 employees (benchmarks/), 22.0 s and 309 MB with them against 17.1 s and 215 MB without.
# The batch uses Python-backed strings whatever is installed; the results are the same.
PYTHON_STRINGS = ("mode.string_storage", "python")


class BatchError(BilingualError):
    """A problem with the run itself (usage, lock, unreadable inbox): exit code 2."""


@dataclass
class RunResult:
    period: str
    period_dir: Path
    exit_code: int
    scores: Scores | None
    findings: list[Finding]
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    policy_grades: tuple = ()
    # Findings about rows of other periods, as found (not counted in this run: see split_by_period).
    other_periods: list[Finding] = field(default_factory=list)
    periods_in_inbox: list[str] = field(default_factory=list)
    # The period has no rows at all in the inbox: nothing was scored or written.
    no_data: bool = False
    # Leftovers repaired, the previous run archived (or left as it was), old runs pruned.
    housekeeping: Housekeeping = field(default_factory=Housekeeping)
    # "final", or "tracking" for a progress run scored up to the month `as_of`.
    kind: str = "final"
    as_of: str | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.is_error]

    def as_json(self) -> dict:
        totals = self.scores.totals if self.scores is not None else pd.DataFrame(columns=["grade"])
        unscored = self.scores.unscored if self.scores is not None else pd.DataFrame()
        return {
            "period": self.period,
            "output": str(self.period_dir),
            "exit_code": self.exit_code,
            "scored": int(len(totals)),
            "unscored": [
                {"employee_id": r.employee_id, "reason_zh": r.reason_zh, "reason_en": r.reason_en, "where": r.where}
                for r in unscored.itertuples(index=False)
            ],
            "grades": {str(k): int(v) for k, v in totals["grade"].value_counts().sort_index().items()},
            "errors": [f.as_dict() for f in sort_findings(self.errors)],
            "warnings": len(self.warnings),
            "no_data": self.no_data,
            "periods_in_inbox": list(self.periods_in_inbox),
            "other_period_findings": [f.as_dict() for f in sort_findings(self.other_periods)],
            "files": [p.relative_to(self.period_dir).as_posix() for p in self.files],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "kind": self.kind,
            "as_of": self.as_of,
            **self.housekeeping.as_json(),
        }


# ------------------------------------------------------------------------------ lock

@contextmanager
def output_lock(out_dir: Path):
    """One run per output folder: an exclusive `flock` on `OUT/.kpi-run.lock`.

    The kernel drops the lock when its holder dies, however it dies, so a lock never goes
    stale; the pid and host written into the file only name the holder in the message, and a
    file whose content cannot be read (empty, as a full disk leaves it) never blocks. The file
    is removed on release while still locked; a run that opened it just before checks, once it
    holds the lock, that the path still names the file it locked, and starts over if not.
    A folder made for the lock is removed again if the run leaves it empty (a period with no
    data writes nothing at all).
    """
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / LOCK_NAME
    fd = _take_lock(lock, out_dir)
    try:
        yield lock
    finally:
        _release_lock(lock, fd)
        if created:
            try:
                out_dir.rmdir()
            except OSError:  # not empty (the run's outputs, another run's lock): kept
                pass


def _try_lock(fd: int) -> bool:
    """Take the lock on `fd` without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: a byte far past the holder's text, released by the system too
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows-only stubs
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


_WINDOWS_LOCK_BYTE = 1 << 20


def _take_lock(lock: Path, out_dir: Path) -> int:
    for _ in range(100):  # each retry means another run released the file in between
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            locked = _try_lock(fd)
        except OSError as exc:  # ENOLCK, EOPNOTSUPP: a file system without locks
            os.close(fd)
            raise BatchError(f"无法锁定输出目录 {out_dir}:该文件系统不支持文件锁({exc.strerror})。"
                             f"请用本地磁盘上的输出目录(--out)。",
                             f"Cannot lock the output folder {out_dir}: its file system does not support "
                             f"locks ({exc.strerror}). Use an output folder on a local disk (--out).") from None
        except BaseException:
            os.close(fd)
            raise
        if not locked:
            holder = _lock_holder(fd)
            os.close(fd)
            pid, host = holder.get("pid", "?"), holder.get("host", "?")
            raise BatchError(
                f"输出目录 {out_dir} 正被另一个运行占用(进程 {pid},主机 {host})。请等它结束后再运行。",
                f"Output folder {out_dir} is in use by another run (pid {pid} on {host}). "
                f"Wait for it to finish, then run again.",
            ) from None
        try:
            same = os.path.samestat(os.stat(lock), os.fstat(fd))
        except FileNotFoundError:
            same = False
        if not same:  # released and removed by its holder after we opened it: open it again
            os.close(fd)
            continue
        holding = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, holding)
        except OSError:  # the content only names the holder in another run's message
            pass
        return fd
    raise BatchError(f"无法锁定输出目录 {out_dir}:锁文件 {lock} 不断被替换。",
                     f"Cannot lock the output folder {out_dir}: the lock file {lock} keeps being replaced.")


def _release_lock(lock: Path, fd: int) -> None:
    """Remove the lock file while still holding it (only if it is still ours), then unlock."""
    try:
        if os.path.samestat(os.stat(lock), os.fstat(fd)):
            lock.unlink()
    except OSError:
        pass
    os.close(fd)


def _lock_holder(fd: int) -> dict:
    """{pid, host} as the holder wrote them; {} when the content cannot be read."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


# ------------------------------------------------------------------------------ departments

def _split(frame: pd.DataFrame, keys: pd.Series) -> dict:
    """`frame` grouped by `keys` in one pass (rows with no key dropped)."""
    if frame.empty:
        return {}
    return {key: group for key, group in frame.groupby(keys, sort=False)}


def _positions(keys: pd.Series) -> dict:
    """key -> positions (ascending) of the rows with that key (rows with no key left out)."""
    return dict(keys.groupby(keys, sort=False).indices) if len(keys) else {}


def _only(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """`frame` with only those of the columns `names` it has (itself when it has no other)."""
    kept = [name for name in frame.columns if name in names]
    return frame if len(kept) == len(frame.columns) else frame[kept]


def _rows_property(name: str) -> property:
    def get(self) -> pd.DataFrame:
        frame, positions = self._rows[name]
        return frame if positions is None else frame.take(positions)

    def put(self, frame: pd.DataFrame | None) -> None:
        self._rows[name] = (frame, None)

    return property(get, put, doc=f"The department's {name}, taken from the company's when read.")


class DepartmentRows(DepartmentData):
    """A department's data whose details and ratings stay rows of the company's frames until read.

    The writer reads them in the worker process that writes the workbook, so each piece exists
    only while its workbook is written. Cut up in the batch process before the fork, the pieces
    of all departments together were another copy of the details and ratings, which every
    worker inherited. Reads give what splitting the frames gave: the rows in their order, with
    the columns the workbook shows. Pickled (for workers that are not forked), it is a plain
    `DepartmentData`, so only its own rows are sent.
    """

    def __init__(self, *, details: tuple[pd.DataFrame, np.ndarray], ratings: tuple[pd.DataFrame, np.ndarray],
                 **values):
        self._rows: dict[str, tuple] = {}
        super().__init__(details=None, ratings=None, **values)
        self._rows.update(details=details, ratings=ratings)

    details = _rows_property("details")
    ratings = _rows_property("ratings")

    def count(self, name: str) -> int:
        """Rows of `details` or `ratings`, without taking them."""
        frame, positions = self._rows[name]
        return len(frame if positions is None else positions)

    def __reduce__(self):
        return _department_data, ({f.name: getattr(self, f.name) for f in fields(DepartmentData)},)


def _department_data(values: dict) -> DepartmentData:
    return DepartmentData(**values)


def department_jobs(scores: Scores, roster: pd.DataFrame, departments_dir: Path, policy: Policy,
                    max_sheets: int) -> list[tuple[Path, DepartmentRows, bool]]:
    """(path, data, with employee sheets) for every department workbook and team workbook.

    Each workbook's details and ratings are positions in the scores' frames until its writer
    reads them (`DepartmentRows`)."""
    managers = dict(zip(roster["employee_id"], roster["name"]))
    plans = []  # (path, department, title, totals, unscored, with employee sheets)
    taken: set[str] = set()
    departments = sorted(set(roster["department"].dropna()) | set(scores.unscored["department"].dropna()))
    totals_of = _split(scores.totals, scores.totals["department"])
    unscored_of = _split(scores.unscored, scores.unscored["department"])
    for department in departments:
        totals = totals_of.get(department, scores.totals.iloc[0:0])
        unscored = unscored_of.get(department, scores.unscored.iloc[0:0])
        stem = unique_stem(department, taken, fallback="department")
        if len(totals) <= max_sheets:
            plans.append((departments_dir / f"{stem}.xlsx", department, "", totals, unscored, True))
            continue
        # Too many sheets for one workbook: the department summary alone, plus team workbooks.
        plans.append((departments_dir / f"{stem}.xlsx", department, "", totals, unscored, False))
        team_taken: set[str] = set()
        no_unscored = unscored.iloc[0:0]
        # Someone recorded as their own manager (HR's way of marking the top) has no team above them
        # here: never filed in a team workbook named after themselves.
        above = totals["manager_id"].where(totals["manager_id"] != totals["employee_id"])
        for manager_id, team in totals.groupby(above.fillna(""), sort=True):
            manager_name = managers.get(manager_id, "") if manager_id else ""
            label = f"{manager_id} {manager_name}".strip() if manager_id else "未指定上级 no manager"
            for part, start in enumerate(range(0, len(team), max_sheets), start=1):
                name = label if len(team) <= max_sheets else f"{label} ({part})"
                path = departments_dir / stem / f"{unique_stem(name, team_taken, fallback='team')}.xlsx"
                members = team if len(team) <= max_sheets else team.iloc[start:start + max_sheets]
                # Ranked within the team: the workbook's RANK formula sees only these rows.
                plans.append((path, department, f"{department} · {name}", ranked_within(members), no_unscored, True))
    # Details and ratings are grouped once, by the workbook that shows each employee's sheet
    # (and, for summary-only department workbooks, by department).
    sheet_of = {e: i for i, plan in enumerate(plans) if plan[5] for e in plan[3]["employee_id"]}
    department_of = dict(zip(scores.totals["employee_id"], scores.totals["department"]))
    details_by_sheet = _positions(scores.details["employee_id"].map(sheet_of))
    ratings_by_sheet = _positions(scores.ratings["employee_id"].map(sheet_of))
    summary_only = any(not plan[5] for plan in plans)
    details_by_department = _positions(scores.details["employee_id"].map(department_of)) if summary_only else {}
    none = np.zeros(0, dtype=np.intp)
    # Narrowed once to the columns a department workbook reads (with copy-on-write, no copy), so
    # each workbook takes only those (the columns left out were a third of a take's time).
    shown_details, shown_ratings = _only(scores.details, SCORECARD_DETAIL_FIELDS), _only(scores.ratings, SCORECARD_RATING_FIELDS)
    jobs = []
    for i, (path, department, title, totals, unscored, with_sheets) in enumerate(plans):
        if with_sheets:
            details = details_by_sheet.get(i, none)
            ratings = ratings_by_sheet.get(i, none)
        else:
            details = details_by_department.get(department, none)
            ratings = none
        data = DepartmentRows(department=department, period=scores.period, totals=totals,
                              details=(shown_details, details), ratings=(shown_ratings, ratings),
                              unscored=unscored, managers=managers, title=title, anchors=scores.anchors,
                              as_of=scores.as_of)
        jobs.append((path, data, with_sheets))
    return jobs


def manager_jobs(scores: Scores, roster: pd.DataFrame, managers_dir: Path,
                 max_sheets: int) -> list[tuple[Path, DepartmentRows, bool]]:
    """(path, data, with employee sheets) for every manager workbook (`output.split_by: manager`).

    An employee is in the workbook of every manager above them, so each workbook's rows are
    found by one merge of (workbook, member) pairs with the frames' employee column."""
    from pipeline.distribution import manager_plans

    plans = manager_plans(scores, roster, managers_dir, max_sheets)
    managers = dict(zip(roster["employee_id"], roster["name"]))
    details_of = _plan_positions(plans, scores.details["employee_id"])
    ratings_of = _plan_positions(plans, scores.ratings["employee_id"])
    shown_details, shown_ratings = _only(scores.details, SCORECARD_DETAIL_FIELDS), _only(scores.ratings, SCORECARD_RATING_FIELDS)
    none = np.zeros(0, dtype=np.intp)
    jobs = []
    for i, plan in enumerate(plans):
        ratings = ratings_of.get(i, none) if plan.with_sheets else none
        data = DepartmentRows(department=plan.department, period=scores.period, totals=plan.totals,
                              details=(shown_details, details_of.get(i, none)), ratings=(shown_ratings, ratings),
                              unscored=plan.unscored, managers=managers, title=plan.title)
        jobs.append((plan.path, data, plan.with_sheets))
    return jobs


def _plan_positions(plans: list, keys: pd.Series) -> dict:
    """Workbook index -> ascending positions in `keys` of the rows of the workbook's employees."""
    sizes = [len(plan.totals) for plan in plans]
    if not len(keys) or not sum(sizes):
        return {}
    members = pd.DataFrame({"plan": np.repeat(np.arange(len(plans)), sizes),
                            "employee_id": np.concatenate([plan.totals["employee_id"].to_numpy(dtype=object)
                                                           for plan in plans])})
    rows = pd.DataFrame({"employee_id": keys.to_numpy(dtype=object), "at": np.arange(len(keys))})
    joined = members.merge(rows, on="employee_id").sort_values(["plan", "at"], kind="stable")
    at = joined["at"].to_numpy()
    return {plan: at[where] for plan, where in joined.groupby("plan").indices.items()}


def _write_department(path: Path, data: DepartmentData, with_sheets: bool, policy: Policy, lang: str) -> None:
    write_department_workbook(path, data, policy, lang, employee_sheets=with_sheets)


def _write_summary(path: Path, scores: Scores, findings: list[Finding], policy: Policy, lang: str,
                   indicators: pd.DataFrame, streaks: pd.DataFrame | None = None) -> None:
    from pipeline.writers.summary_book import write_summary_workbook

    write_summary_workbook(path, scores, findings, policy, lang, indicators=indicators, streaks=streaks)


def _write_weights(path: Path, weight_results) -> None:
    from pipeline.writers.weights_book import write_weights_workbook

    write_weights_workbook(path, weight_results)


def _run_task(function, args: tuple):
    """Run one writing task with the automatic garbage collector paused.

    A workbook is hundreds of thousands of small objects (cells, XML strings) that the collector
    would scan again and again while they are built (~10% of the write stage). The writers cut
    xlsxwriter's reference cycle when they close a workbook (`close_workbook`), so reference
    counting frees it; one young-generation pass afterwards catches any stray cycle.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return function(*args)
    finally:
        if was_enabled:
            gc.enable()
        gc.collect(0)


def write_workbooks(tasks: list[tuple], n_jobs: int, progress=None) -> list:
    """Run (cost, function, args) writing tasks, in worker processes when there are several.

    Biggest first (the company summary, then the largest departments) keeps every core busy
    to the end. Each task writes its own file, so the bytes are the same for any `n_jobs`.
    """
    return run_biggest_first([(cost, _run_task, (function, args)) for cost, function, args in tasks], n_jobs,
                             progress)


# ------------------------------------------------------------------------------ period scoping

def split_by_period(findings: list[Finding], period: Period | str) -> tuple[list[Finding], list[Finding]]:
    """(findings that count for a run of `period`, findings about rows of other periods).

    A finding belongs to another period when its period is a period that is neither `period`
    nor one of its months: a bad 2026-09 actual must not fail, or block anyone in, a 2026-10
    run, but a 2026-Q3 run counts it. Findings without a period (roster, indicator library,
    unreadable files, a row whose period cell cannot be read) always count.
    """
    period = Period.of(period)
    own = {period.text, *period.months}
    parsed: dict[str, Period | None] = {}
    this: list[Finding] = []
    other: list[Finding] = []
    for f in findings:
        if f.period and f.period not in parsed:
            parsed[f.period] = Period.parse(f.period)
        named = parsed.get(f.period) if f.period else None
        (other if named is not None and named.text not in own else this).append(f)
    return this, other


def other_period_finding(f: Finding, period: Period | str) -> Finding:
    """`f`, about a row of another period, as a run of `period` shows it: a warning whose
    message starts by saying which period it concerns (the rule and the cell are kept)."""
    _, zh, en = RULES["other_period"]
    what = ("错误", "error") if f.is_error else ("警告", "warning")
    context = {"period": f.period, "run_period": str(period), "what": what[0], "what_en": what[1].capitalize(),
               "message": f.message_zh, "message_en": f.message_en}
    return replace(f, severity=WARNING, message_zh=zh.format_map(context), message_en=en.format_map(context))


# The sheets whose rows say that the inbox holds a period: agreements, actuals and ratings.
_PERIOD_SHEETS = (*AGREEMENTS.sheets[:2], *ACTUALS.sheets, *RATINGS.sheets)  # not the adjustments: no period column


def inbox_periods(inputs: Inputs) -> list[str]:
    """The distinct periods of the inbox's agreement, actual and rating rows, sorted.

    Rows refused by validation count too (their findings carry the row's period): a period
    whose every row has an error is a period with errors, not a period without data.
    """
    names = {spec.name for spec in _PERIOD_SHEETS}
    periods: set[str] = set()
    for name in names:
        periods.update(p for p in inputs.frames[name]["period"].dropna().unique() if isinstance(p, str))
    sheets = {(t.file, t.sheet) for t in inputs.tables if t.spec.name in names}
    periods.update(f.period for f in inputs.findings if f.period and (f.file, f.sheet) in sheets)
    return sorted(p for p in periods if Period.canonical(p) is not None)


def no_data_finding(period: Period | str, held: list[str]) -> Finding | None:
    """The error for a period with no rows at all (neither it nor its months), naming the
    periods the inbox does hold; None when the inbox has rows for `period`."""
    period = Period.of(period)
    if set(held) & {period.text, *period.months}:
        return None
    return finding("no_period_data", period=period.text, periods="、".join(held) or "无",
                   periods_en=", ".join(held) or "none")


# ------------------------------------------------------------------------------ run

def check_period(period: Period | str) -> Period:
    """The period typed on the command line, read once; a usage error when it is none."""
    parsed = Period.parse(period)
    if parsed is None:
        raise BatchError(f"考核周期“{period}”无法识别,请写成 2026-10、2026-Q3、2026-H1 或 2026。",
                         f"Period '{period}' is not understood; write 2026-10, 2026-Q3, 2026-H1 or 2026.")
    return parsed


def check_as_of(period: Period | str, as_of: str | None) -> str | None:
    """The month a progress run scores `period` up to: one of its months, never its last
    month's successor. On a month period a progress run would be the month itself: refused, so
    that nobody takes it for the final result."""
    if as_of is None:
        return None
    period = Period.of(period)
    parsed = Period.parse(as_of)
    months = period.months
    if parsed is None or not period.contains(parsed.text) or period.is_month:
        if period.is_month:
            hint = (f"{period} 本身就是一个月,请直接运行 --period {period}(不加 --as-of)。",
                    f"{period} is a single month: run --period {period} without --as-of.")
        else:
            hint = (f"请写 {months[0]} 到 {months[-1]} 之间的一个月。",
                    f"Write a month from {months[0]} to {months[-1]}.")
        raise BatchError(f"--as-of “{as_of}” 不是考核周期 {period} 中的一个月。{hint[0]}",
                         f"--as-of '{as_of}' is not a month of the period {period}. {hint[1]}")
    return parsed.text


def output_folder_name(period: Period | str, as_of: str | None) -> str:
    """`2026-Q3`, or for a progress run `2026-Q3-to-2026-08`: never the final folder."""
    return str(period) if as_of is None else f"{period}-to-{as_of}"


def _return_free_memory(collect: bool = True) -> None:
    """Hand the memory freed so far back to the system (Linux with glibc).

    glibc keeps freed blocks in its heap for reuse: the pages stay in the process's resident
    set, and a forked worker inherits them and copies each one it allocates in, so every worker
    would pay again for memory nobody uses. `collect`: first free what only a reference cycle
    still holds.
    """
    if collect:
        gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).malloc_trim(0)  # glibc's, found among the symbols already loaded
        except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to hand back
            pass


@stop_on_signals()  # SIGTERM and a second Ctrl-C clean up like the first Ctrl-C (workers, staging, lock)
def run_batch(inbox: Path, period: Period | str, out_dir: Path, policy: Policy, *, strict: bool = False, lang: str = "zh",
              jobs: int | None = None, progress_factory=None, kind: str = "final",
              as_of: str | None = None, sign_key: Path | None = None, per_employee: bool = False,
              passwords_file: Path | None = None, generate_passwords: bool = False) -> RunResult:
    """Score `period` from the files in `inbox` into `out_dir/period/`; see docs/outputs.md.

    `per_employee` (or the policy's `output.per_employee`): also one workbook per employee,
    encrypted with the passwords of `passwords_file` or with generated ones (`generate_passwords`,
    listed in a file encrypted with the master password; refused up front without one).

    `as_of` (a month of the period): a progress run (`kind` "tracking") of the period to date,
    written to `out_dir/<period>-to-<as_of>/` beside, never over, the final results. `kind` and
    `as_of` are also what the results history records of the run. `sign_key`: a private key
    (`kpi keys new`) to sign the manifest and the run record with."""
    from pipeline import history
    from pipeline.audit import build_manifest, seal, utc_now, write_manifest

    started_utc = utc_now()
    signing_key = _signing_key(sign_key)  # a key that cannot be used stops the run before any work
    period = check_period(period)
    as_of = check_as_of(period, as_of)
    if as_of is not None:
        kind = "tracking"
    if kind not in history.KINDS:
        raise BatchError(f"运行类型“{kind}”无效,应为 final 或 tracking。", f"Run kind '{kind}' is not final or tracking.")
    folder = output_folder_name(period, as_of)
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise BatchError(f"收件箱 {inbox} 不存在或不是文件夹。", f"Inbox {inbox} does not exist or is not a folder.")
    distribution = _distribution_options(policy, per_employee, passwords_file, generate_passwords)
    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}
    history_started = history.utc_now()  # to the microsecond: the history orders runs by it
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now

    with output_lock(out_dir), pd.option_context(*PYTHON_STRINGS):
        housekeeping = Housekeeping(keep_runs=policy.keep_runs, repairs=clean_leftovers(out_dir))
        workbooks = read_inbox(inbox, policy.limits, jobs=jobs or os.cpu_count() or 1, meanwhile=prepare_validation)
        lap("read")
        # Each file's values as read are dropped once typed: only the validated frames are used.
        inputs = validate(workbooks, policy, period, release_rows=True, as_of=as_of)
        lap("validate")
        held = inbox_periods(inputs)
        no_data = no_data_finding(period, held)
        if no_data is not None:  # nothing is scored or written (the lock leaves no folder behind)
            this, other = split_by_period(inputs.findings, period)
            return RunResult(period=period.text, period_dir=out_dir / folder, exit_code=1, scores=None,
                             findings=sort_findings([no_data, *this]), seconds=seconds,
                             policy_grades=policy.grades, other_periods=sort_findings(other),
                             periods_in_inbox=held, no_data=True, housekeeping=housekeeping, kind=kind,
                             as_of=as_of)
        scores, weight_results, all_findings = score_inputs(inputs, policy, period, as_of=as_of)
        if distribution is not None and distribution.passwords is not None:  # before anything is written
            from pipeline.distribution import check_passwords_cover

            check_passwords_cover(scores.totals["employee_id"], distribution.passwords, distribution.source)
        erring = _files_with_errors(all_findings)
        for wb in workbooks:  # only an errors workbook reads a file again: the others' bytes go
            if wb.file not in erring:
                wb.release_bytes()
        # What concerns rows of other periods is shown, labelled, but does not count in this run.
        this, other = split_by_period(all_findings, period)
        other = sort_findings(other)
        findings = sort_findings(this)
        shown = sort_findings(this + [other_period_finding(f, period) for f in other])
        # Writing needs only these of the inputs; the rest (actuals, ratings, agreements) is
        # freed here, so the forked writers do not inherit it.
        roster, indicators = inputs.roster, inputs.indicators
        del inputs
        _return_free_memory(collect=False)  # what validation and scoring no longer use
        lap("score")
        earlier = history.earlier_totals(out_dir, period)  # trends and streaks: earlier periods only
        streaks = history.find_streaks(earlier, scores.totals, period, policy.streaks)
        lap("history")
        final = out_dir / folder
        staging = staging_folder(out_dir, folder)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            errors_dir = staging / "errors"
            by_file: dict[Path, list[Finding]] = {}
            paths = {wb.file: wb.path for wb in workbooks}
            for f in shown:
                if f.file in paths:
                    by_file.setdefault(paths[f.file], []).append(f)
            # A file gets its errors workbook for an error of any period: a bad 2026-09 row is
            # marked (labelled with its period) in a 2026-10 run too, so it can be fixed in time.
            with_errors = {f.file for f in findings + other if f.is_error}
            by_file = {path: items for path, items in by_file.items() if items[0].file in with_errors}
            if by_file:
                from pipeline.writers.errors_book import (
                    write_errors_books,  # openpyxl: only when needed
                )

                write_errors_books(by_file, errors_dir, lang=lang, limits=policy.limits)
            for wb in workbooks:
                wb.release_bytes()
            anything_wrong = _anything_wrong(scores, findings)
            plain_hashes: dict[str, str] = {}
            if not (strict and anything_wrong):
                if policy.split_by == "manager":
                    department_list = manager_jobs(scores, roster, staging / "managers", policy.max_sheets)
                else:
                    department_list = department_jobs(scores, roster, staging / "departments", policy,
                                                      policy.max_sheets)
                employee_tasks = _employee_tasks(scores, roster, staging, distribution, policy, lang)
                del roster
                history.attach_trends(department_list, earlier, policy.grades)
                # Cost ~ rows written: a scorecard row costs about ten rows of the summary's Details.
                tasks: list[tuple[int, Callable[..., None], tuple]] = [(10 * data.count("details") * with_sheets + len(data.totals), _write_department,
                          (path, data, with_sheets, policy, lang)) for path, data, with_sheets in department_list]
                tasks.append((len(scores.details) + len(scores.totals), _write_summary,
                              (staging / "summary.xlsx", scores, shown, policy, lang, indicators, streaks)))
                if weight_results:
                    tasks.append((0, _write_weights, (staging / "weights.xlsx", weight_results)))
                tasks.extend(employee_tasks)
                del employee_tasks
                _return_free_memory()
                bar = progress_factory(len(tasks)) if progress_factory else None
                try:
                    written = write_workbooks(tasks, jobs or os.cpu_count() or 1, bar.update if bar else None)
                finally:
                    if bar:
                        bar.finish()
                plain_hashes = _plain_hashes(written, staging, scores, distribution, lang)
                del tasks, written
            lap("write")
            changed = changed_inputs(workbooks)  # read at the start: did any change since?
            findings, shown = sort_findings(findings + changed), sort_findings(shown + changed)
            manifest = build_manifest(
                period=period.text,
                inputs=[_input_entry(wb, inbox) for wb in workbooks],
                policy_text=policy.text,
                outputs_dir=staging,
                counts=_counts(scores, findings, other),
                warnings=[_finding_entry(f) for f in shown if not f.is_error],
                package_version=__version__,
                policy_settings=policy.settings or None,
                plain_hashes=plain_hashes,
            )
            write_manifest(staging, manifest)
            seal(staging, period=period.text, started_utc=started_utc, package_version=__version__, key=signing_key)
            _swap_into_place(staging, final, housekeeping)
            lap("manifest")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        exit_code = 1 if _anything_wrong(scores, findings) else 0
        published = not (strict and anything_wrong)
        history.record_run(out_dir, history.RunRecord(
            period=period.text, kind=kind, as_of=as_of, started_utc=history_started,
            status=history.STATUS_OK if published else history.STATUS_ABORTED, exit_code=exit_code,
            policy_sha256=policy.sha256, kpi_version=__version__, period_dir=final, placed=not housekeeping.unchanged,
            replaced=housekeeping.replaced,
            archived_as=None if housekeeping.archived is None or housekeeping.archive_pending
            else housekeeping.archived.name), scores if published else None)
        lap("history")
        prune(out_dir, folder, policy.keep_runs, housekeeping)
    files = sorted(p for p in final.rglob("*") if p.is_file())
    return RunResult(period=period.text, period_dir=final, exit_code=exit_code, scores=scores, findings=findings,
                     files=files, seconds=seconds, policy_grades=policy.grades, other_periods=other,
                     periods_in_inbox=held, housekeeping=housekeeping, kind=kind, as_of=as_of)


def _signing_key(path: Path | None):
    """The private key at `path` (None: the run is not signed); BatchError if it cannot be used."""
    if path is None:
        return None
    from pipeline.signing import SigningError, load_private_key

    try:
        return load_private_key(path)
    except SigningError as exc:
        raise BatchError(exc.zh, exc.en) from None


# ------------------------------------------------------------------------------ distribution

@dataclass
class _Distribution:
    """Per-employee output as asked for: the passwords given (and where from), or the master
    password that encrypts the generated ones."""

    passwords: dict[str, str] | None = field(default=None, repr=False)
    source: str = ""
    master: str | None = field(default=None, repr=False)


def _distribution_options(policy: Policy, per_employee: bool, passwords_file: Path | None,
                          generate_passwords: bool) -> _Distribution | None:
    """Checked before any work: a refusal (both password options, no master password, a bad
    password list) costs nothing. None when no per-employee files are wanted."""
    if passwords_file is not None and generate_passwords:
        raise BatchError("--passwords 与 --generate-passwords 只能选一个。",
                         "Give either --passwords or --generate-passwords, not both.")
    if not (per_employee or policy.per_employee or passwords_file is not None or generate_passwords):
        return None
    from pipeline.distribution import load_passwords, master_password

    if generate_passwords:
        return _Distribution(master=master_password())
    if passwords_file is not None:
        return _Distribution(passwords=load_passwords(Path(passwords_file), policy.limits),
                             source=Path(passwords_file).name)
    return _Distribution()


def _employee_tasks(scores: Scores, roster: pd.DataFrame, staging: Path, distribution: _Distribution | None,
                    policy: Policy, lang: str) -> list[tuple]:
    """Writing tasks of `employees/<部门>/<员工编号>.xlsx` (generating the passwords if asked)."""
    if distribution is None:
        return []
    from pipeline.distribution import employee_files, generate_password, write_employee_file

    if distribution.master is not None:
        distribution.passwords = {e: generate_password() for e in scores.totals["employee_id"]}
    files = employee_files(scores, roster, staging / "employees", SCORECARD_DETAIL_FIELDS, SCORECARD_RATING_FIELDS,
                           distribution.passwords)
    return [(1, write_employee_file, (path, data, policy, lang)) for path, data in files]


def _plain_hashes(written: list, staging: Path, scores: Scores, distribution: _Distribution | None,
                  lang: str) -> dict[str, str]:
    """Output path -> SHA-256 of the decrypted content, for every encrypted file; writes the
    encrypted list of generated passwords."""
    hashes = {Path(item[0]).relative_to(staging).as_posix(): item[1] for item in written if item}
    if distribution is not None and distribution.master is not None and distribution.passwords is not None:
        from pipeline.distribution import PASSWORDS_FILE, write_password_list

        totals = scores.totals.sort_values(["department", "employee_id"], kind="stable")
        rows = [(e, str(n) if isinstance(n, str) else "", str(d) if isinstance(d, str) else "", distribution.passwords[e])
                for e, n, d in zip(totals["employee_id"], totals["name"], totals["department"])]
        path = staging / "employees" / PASSWORDS_FILE
        hashes[path.relative_to(staging).as_posix()] = write_password_list(path, rows, distribution.master, lang)
    return hashes


def _manager_cycle_findings(inputs: Inputs) -> list[Finding]:
    """A warning for each loop in the roster's manager column (someone their own manager, A↔B)."""
    from pipeline.distribution import manager_cycle_findings, manager_cycles

    roster = inputs.roster
    if roster.empty or "manager_id" not in roster:
        return []
    return manager_cycle_findings(roster, manager_cycles(roster), lambda row: inputs.cell(row, "manager_id"))


def _anything_wrong(scores: Scores, findings: list[Finding]) -> bool:
    """Errors, or employees excluded for a reason other than having left (leavers are listed, not wrong).

    `findings`: those of the run's period only (`split_by_period`)."""
    excluded = scores.unscored[scores.unscored["rule"] != "left"]
    return any(f.is_error for f in findings) or not excluded.empty


def _files_with_errors(findings: list[Finding]) -> set[str]:
    return {f.file for f in findings if f.is_error}


def changed_inputs(workbooks: list[WorkbookRead]) -> list[Finding]:
    """A warning naming each input whose size or modification time differs from when the run
    read it: the results (and the manifest's hashes) are of the bytes read, not of the file
    as it now is."""
    changed = []
    for wb in workbooks:
        how = wb.changed_since_read()
        if how is not None:
            if how == "removed":
                words: dict[str, Any] = {"how": "被删除了", "how_en": "was removed", "detail": "", "detail_en": ""}
            else:
                words = {"how": "被修改了", "how_en": "changed", "detail": "(大小或修改时间已变)",
                         "detail_en": " (its size or modification time differs)"}
            changed.append(finding("input_changed", file=wb.file, **words))
    return changed


def score_inputs(inputs: Inputs, policy: Policy, period: Period | str, as_of: str | None = None):
    """(scores, weight results, every finding) of validated inputs for `period` (to date `as_of`):
    what `run` reports, and what `validate --period` counts, so the two always agree."""
    scores = score_period(inputs, policy, period, as_of=as_of)
    weight_results, weight_findings = compute_inbox_weights(inputs, policy)
    cycles = _manager_cycle_findings(inputs)  # roster warnings, of no period
    return scores, weight_results, inputs.findings + scores.findings + weight_findings + cycles


def compute_inbox_weights(inputs: Inputs, policy: Policy):
    """Weights from expert scores and AHP sheets of every weights file of validated inputs (a
    copy set aside excepted): the batch's and `kpi weights`' one way of computing them."""
    weight_books = [wb for wb in inputs.workbooks if wb.kind == "weights" and wb.copy_of is None]
    if not weight_books:
        return [], []
    from pipeline.weights import ahp_sheets_from, compute_weights

    results, findings = [], []
    experts = inputs.expert_scores
    for wb in weight_books:
        scores = experts[experts["_file"] == wb.file]
        sheets = ahp_sheets_from(wb.matrices)  # as the reader read them: the file is not opened again
        r, f = compute_weights(scores if not scores.empty else None, sheets, ri_table=policy.ri_table,
                               file=wb.file)
        results.extend(r)
        findings.extend(f)
    return results, findings


def _input_entry(wb: WorkbookRead, inbox: Path) -> dict:
    """What the manifest says of one input: the size and SHA-256 of the bytes the run read
    (None for a file it could not read), and for a copy set aside, which file it copies."""
    entry = {"path": str(wb.path.resolve()), "file": wb.file, "kind": wb.kind, "template_version": wb.version,
             "rows": wb.rows, "size": wb.size, "sha256": wb.sha256}
    if wb.copy_of is not None:
        entry["copy_of"] = wb.copy_of
    return entry


def _finding_entry(f: Finding) -> dict:
    return {"rule": f.rule, "where": f.where, "employee_id": f.employee_id, "message_zh": f.message_zh,
            "message_en": f.message_en}


def _counts(scores: Scores, findings: list[Finding], other_periods: list[Finding]) -> dict:
    return {
        "scored": int(len(scores.totals)),
        "unscored": int(len(scores.unscored)),
        "errors": sum(f.is_error for f in findings),
        "warnings": sum(not f.is_error for f in findings),
        "other_periods": len(other_periods),
        "detail_rows": int(len(scores.details)),
        "grades": {str(k): int(v) for k, v in scores.totals["grade"].value_counts().sort_index().items()},
    }


def _swap_into_place(staging: Path, final: Path, report: Housekeeping) -> None:
    """Replace the period folder whole; the previous run is kept in the history (`pipeline.runs`)."""
    put_in_place(staging, final, final.parent, final.name, report)
