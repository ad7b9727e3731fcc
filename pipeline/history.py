"""The results history: every run of an output folder, and what it scored, in `OUT/history.sqlite`.

Runs stand alone on disk (`OUT/<period>/`, replaced runs in `OUT/.history/<period>/<run-id>/`);
this database is what ties periods together: trends on the scorecards, streaks of top or
bottom grades, `kpi history` and `kpi runs`. It is an ordinary SQLite file (stdlib `sqlite3`,
WAL journal) meant to be read with `sqlite3` or `pandas.read_sql`:

- `runs`: one row per run (final or tracking), with who ran it where, the policy's and the
  manifest's SHA-256, its status and exit code, and the run it replaced;
- `results`: one row per run, employee and indicator (the Details columns, plus department,
  role family, the target before any adjustment and the adjustment's cell);
- `totals`: one row per run and employee (the Totals columns; unscored employees with empty
  totals, as the Totals sheet lists them);
- views `current_runs`, `current_totals`, `current_results`: for each period, the latest
  successful final run (status 'ok', kind 'final').

A run writes all its rows in one transaction, after its outputs are in place: a run that fails
or is killed before that leaves the database as it was. Only periods strictly before the one
scored are read back, so a rerun of a period is still byte-identical.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import os
import socket
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.findings import BilingualError
from pipeline.outputs import HISTORY_RESULT_COLUMNS, HISTORY_TOTAL_COLUMNS
from pipeline.periods import Period

DB_NAME = "history.sqlite"
KINDS = ("final", "tracking")
# status: 'ok' = outputs written (exit 0 or 1); 'aborted' = --strict found problems and wrote no
# scorecards. Only 'ok' final runs are the current result of their period.
STATUS_OK, STATUS_ABORTED = "ok", "aborted"
TREND_PERIODS = 12

RUN_COLUMNS = ["run_id", "period", "kind", "as_of", "started_utc", "finished_utc", "operator", "host",
               "kpi_version", "policy_sha256", "manifest_sha256", "status", "replaces_run_id", "exit_code"]


class HistoryError(BilingualError):
    """The history database cannot be used (not a database, from a newer kpi): exit code 2."""


# ------------------------------------------------------------------------------ schema

_SCHEMA_1 = """
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    period          TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('final', 'tracking')),
    as_of           TEXT,
    started_utc     TEXT NOT NULL,
    finished_utc    TEXT NOT NULL,
    operator        TEXT,
    host            TEXT,
    kpi_version     TEXT,
    policy_sha256   TEXT,
    manifest_sha256 TEXT,
    status          TEXT NOT NULL,
    replaces_run_id TEXT,
    exit_code       INTEGER
);
CREATE INDEX runs_period ON runs (period, kind, status, finished_utc);
CREATE TABLE results (
    run_id          TEXT NOT NULL REFERENCES runs (run_id),
    period          TEXT NOT NULL,
    employee_id     TEXT NOT NULL,
    department      TEXT,
    role_family     TEXT,
    indicator_id    TEXT NOT NULL,
    weight          REAL,
    base            REAL,
    target          REAL,
    stretch         REAL,
    original_target REAL,
    actual          REAL,
    achievement     REAL,
    weighted_score  REAL,
    adjustment      TEXT,
    source          TEXT
);
CREATE INDEX results_run ON results (run_id, employee_id, department);
CREATE TABLE totals (
    run_id          TEXT NOT NULL REFERENCES runs (run_id),
    period          TEXT NOT NULL,
    employee_id     TEXT NOT NULL,
    total           REAL,
    total_rounded   REAL,
    grade           TEXT,
    score_grade     TEXT,
    bonus           REAL,
    PRIMARY KEY (run_id, employee_id)
);
CREATE INDEX totals_employee ON totals (employee_id, period);
CREATE VIEW current_runs AS
    SELECT r.* FROM runs AS r
    WHERE r.run_id = (SELECT c.run_id FROM runs AS c
                      WHERE c.period = r.period AND c.kind = 'final' AND c.status = 'ok'
                      ORDER BY c.finished_utc DESC, c.run_id DESC LIMIT 1);
CREATE VIEW current_totals AS
    SELECT t.* FROM totals AS t JOIN current_runs AS c ON c.run_id = t.run_id;
CREATE VIEW current_results AS
    SELECT x.* FROM results AS x JOIN current_runs AS c ON c.run_id = x.run_id;
"""

# Schema versions in order: MIGRATIONS[i] takes a database from user_version i to i + 1.
MIGRATIONS: list[str] = [_SCHEMA_1]
SCHEMA_VERSION = len(MIGRATIONS)


def db_path(out_dir: Path) -> Path:
    return Path(out_dir) / DB_NAME


def _unusable(path: Path, exc: Exception) -> HistoryError:
    return HistoryError(
        f"历史数据库 {path} 无法使用({exc})。请把它移走(kpi 会新建一个),或从备份恢复。",
        f"The history database {path} cannot be used ({exc}). Move it aside (kpi then starts a new one) "
        f"or restore it from a backup.")


def connect(out_dir: Path, *, create: bool) -> sqlite3.Connection | None:
    """An open, migrated connection to `OUT/history.sqlite`; None when it does not exist and
    `create` is false (nothing is ever created by reading)."""
    path = db_path(out_dir)
    if not create and not path.is_file():
        return None
    try:
        con = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from None
    try:
        # WAL with synchronous NORMAL: a transaction is still all or nothing, without a sync per commit
        con.execute("PRAGMA synchronous = NORMAL")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"历史数据库 {path} 由更新版本的 kpi 写入(结构版本 {version},本版本支持到 {SCHEMA_VERSION})。请升级 kpi。",
                f"The history database {path} was written by a newer kpi (schema version {version}; this one "
                f"knows up to {SCHEMA_VERSION}). Upgrade kpi.")
        if version < SCHEMA_VERSION:
            if not create:  # a reader never changes the file: it reads what is there
                if version == 0:
                    con.close()
                    return None
            else:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("BEGIN IMMEDIATE")
                try:
                    for step in range(version, SCHEMA_VERSION):
                        for statement in _statements(MIGRATIONS[step]):
                            con.execute(statement)
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
    except HistoryError:
        con.close()
        raise
    except sqlite3.Error as exc:
        con.close()
        raise _unusable(path, exc) from None
    return con


def _statements(script: str) -> list[str]:
    """A migration script as single statements (executescript would commit on its own)."""
    return [s.strip() for s in script.split(";") if s.strip()]


# ------------------------------------------------------------------------------ periods

def _same_length_before(periods, period: Period | str) -> list[str]:
    """Of `periods` (canonical texts), those of `period`'s length strictly before it, oldest first."""
    period = Period.of(period)
    found = []
    for p in set(periods):
        earlier = Period.canonical(str(p))
        if earlier is not None and earlier.kind == period.kind and earlier.position < period.position:
            found.append((earlier.position, earlier.text))
    return [p for _, p in sorted(found)]


# ------------------------------------------------------------------------------ reading back

EARLIER_COLUMNS = ["employee_id", "period", "total", "total_rounded", "grade", "department"]


def earlier_totals(out_dir: Path, period: Period | str) -> pd.DataFrame:
    """Every current total of the periods of `period`'s length strictly before it (oldest first),
    with the department each employee was in then. Empty without a database."""
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in EARLIER_COLUMNS})
    con = connect(out_dir, create=False)
    if con is None:
        return empty
    with closing(con):
        try:
            current = dict(con.execute("SELECT period, run_id FROM current_runs").fetchall())
            wanted = _same_length_before(current, period)
            if not wanted:
                return empty
            runs = [current[p] for p in wanted]
            marks = ",".join("?" * len(runs))
            rows = con.execute(f"SELECT employee_id, period, total, total_rounded, grade, run_id FROM totals "
                               f"WHERE run_id IN ({marks}) AND total IS NOT NULL", runs).fetchall()
            places = con.execute(f"SELECT run_id, employee_id, MIN(department) FROM results "
                                 f"WHERE run_id IN ({marks}) GROUP BY run_id, employee_id", runs).fetchall()
        except sqlite3.Error as exc:
            raise _unusable(db_path(out_dir), exc) from None
    frame = pd.DataFrame(rows, columns=[*EARLIER_COLUMNS[:-1], "run_id"], dtype=object)
    where = pd.DataFrame(places, columns=["run_id", "employee_id", "department"], dtype=object)
    frame = frame.merge(where, on=["run_id", "employee_id"], how="left").drop(columns="run_id")
    frame["total"] = frame["total"].astype(float)
    frame["total_rounded"] = frame["total_rounded"].astype(float)
    frame["_order"] = frame["period"].map({p: i for i, p in enumerate(wanted)})
    frame = frame.sort_values(["_order", "employee_id"], kind="stable").drop(columns="_order")
    return frame.reset_index(drop=True)[EARLIER_COLUMNS]


def last_periods(earlier: pd.DataFrame, count: int = TREND_PERIODS) -> pd.DataFrame:
    """The rows of the `count` latest periods of `earlier` (which is sorted oldest first)."""
    if earlier.empty:
        return earlier
    kept = list(dict.fromkeys(earlier["period"]))[-count:]
    return earlier[earlier["period"].isin(kept)]


def attach_trends(jobs: list, earlier: pd.DataFrame, grades: tuple) -> None:
    """Give each department workbook's data its employees' earlier periods (`trend`, for the
    workbooks with employee sheets) and its department's average total and grade mix per earlier
    period (`department_trend`). `jobs`: (path, data, with employee sheets) of `department_jobs`."""
    trend = last_periods(earlier)
    if trend.empty:
        return
    trend = trend.reset_index(drop=True)
    job_of = {e: i for i, (_, data, with_sheets) in enumerate(jobs) if with_sheets for e in data.totals["employee_id"]}
    rows_of = trend.groupby(trend["employee_id"].map(job_of), sort=False).indices  # one pass, not one per job
    mix = department_mix(trend, grades)
    mix_of = {department: frame.reset_index(drop=True) for department, frame in mix.groupby("department", sort=False)}
    for i, (_, data, _) in enumerate(jobs):
        rows = rows_of.get(i)
        data.trend = trend.take(rows).reset_index(drop=True) if rows is not None else None
        data.department_trend = mix_of.get(data.department)


def department_mix(trend: pd.DataFrame, grades: tuple) -> pd.DataFrame:
    """Per department and period: employees scored, average total, and how many got each grade
    (the policy's grades, then any other grade found, in order of appearance)."""
    names = [g.grade for g in grades]
    names += [g for g in dict.fromkeys(trend["grade"]) if g not in names]
    order = {p: i for i, p in enumerate(dict.fromkeys(trend["period"]))}
    grouped = trend.groupby(["department", "period"], sort=False)
    frame = grouped.agg(employees=("employee_id", "size"), average=("total", "mean")).reset_index()
    counts = pd.crosstab([trend["department"], trend["period"]], trend["grade"])
    counts = counts.reindex(columns=names, fill_value=0).reset_index()
    frame = frame.merge(counts, on=["department", "period"], how="left")
    frame["_order"] = frame["period"].map(order)
    frame = frame.sort_values(["department", "_order"], kind="stable").drop(columns="_order")
    return frame.reset_index(drop=True)


# ------------------------------------------------------------------------------ streaks

STREAK_COLUMNS = ["employee_id", "name", "department", "kind", "periods", "from_period", "grades"]


def find_streaks(earlier: pd.DataFrame, totals: pd.DataFrame, period: Period | str, streaks: dict) -> pd.DataFrame:
    """Employees whose grade this period and in each period right before it (consecutive periods
    of the same length, none missing) is in a streak's grade set, for at least its `periods`.

    `streaks`: kind -> (grades, periods), e.g. {"promotion": (("S", "A"), 4)}. A period with no
    current total for the employee ends the streak. Sorted by kind, length (longest first), id.
    """
    streaks = {kind: rule for kind, rule in streaks.items() if rule[1] > 0}  # periods 0: the list is off
    scored = totals[totals["grade"].notna()]
    if scored.empty or not streaks:
        return pd.DataFrame(columns=STREAK_COLUMNS)
    period = Period.of(period)
    longest = max(n for _, n in streaks.values())
    # Columns: this period, the one before, ... back as far as history goes (at least `longest`).
    positions = {p: period.steps_after(Period.of(p)) for p in dict.fromkeys(earlier["period"])}
    depth = max([longest, *positions.values()]) + 1
    ids = scored["employee_id"].to_numpy(dtype=object)
    grades = np.full((len(ids), depth), None, dtype=object)
    grades[:, 0] = scored["grade"].to_numpy(dtype=object)
    periods: list[str | None] = [None] * depth
    periods[0] = period.text
    if not earlier.empty:
        row_of = pd.Index(ids)
        back = earlier["period"].map(positions).to_numpy(dtype=np.int64)
        rows = row_of.get_indexer(earlier["employee_id"])
        keep = rows >= 0
        grades[rows[keep], back[keep]] = earlier["grade"].to_numpy(dtype=object)[keep]
        for p, k in positions.items():
            periods[k] = p
    frames = []
    for kind, (grade_set, needed) in streaks.items():
        inside = pd.DataFrame(grades).isin(list(grade_set)).to_numpy()
        length = np.cumprod(inside, axis=1).sum(axis=1)
        hit = np.flatnonzero(length >= needed)
        if not len(hit):
            continue
        lengths = length[hit]
        shown = [", ".join(str(g) for g in grades[i, :n][::-1]) for i, n in zip(hit, lengths)]
        first = [period.shift(-int(n) + 1).text for n in lengths]
        frames.append(pd.DataFrame({
            "employee_id": ids[hit], "name": scored["name"].to_numpy(dtype=object)[hit],
            "department": scored["department"].to_numpy(dtype=object)[hit], "kind": kind,
            "periods": lengths.astype(int), "from_period": first, "grades": shown}))
    if not frames:
        return pd.DataFrame(columns=STREAK_COLUMNS)
    found = pd.concat(frames, ignore_index=True)
    kinds = {k: i for i, k in enumerate(streaks)}
    found["_kind"] = found["kind"].map(kinds)
    found = found.sort_values(["_kind", "periods", "employee_id"], ascending=[True, False, True], kind="stable")
    return found.drop(columns="_kind").reset_index(drop=True)[STREAK_COLUMNS]


# ------------------------------------------------------------------------------ recording a run

def utc_now() -> str:
    """UTC time as ISO text with microseconds: sortable, and two runs never tie in practice."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stamp(seconds: float) -> str:
    """A run id as `pipeline.runs.archive` names a run's folder: its UTC second."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


@dataclass
class RunRecord:
    """What the batch tells the history about one run (the rest it finds out itself)."""

    period: str
    kind: str
    as_of: str | None
    started_utc: str
    status: str
    exit_code: int
    policy_sha256: str
    kpi_version: str
    period_dir: Path  # OUT/<period>, holding this run's outputs (or, when unchanged, the previous run's)
    placed: bool  # this run's folder was put in place (False: the previous run's identical one stayed)
    replaced: bool  # the period folder held a previous run
    archived_as: str | None  # the folder name the previous run was archived under, if it was


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without /etc/passwd entry): not worth a failure
        return os.environ.get("USER") or os.environ.get("USERNAME") or ""


def _manifest_sha(period_dir: Path) -> tuple[str | None, Path | None]:
    from pipeline.audit import MANIFEST_PATH

    path = period_dir / MANIFEST_PATH
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest(), path
    except OSError:
        return None, None


def _new_run_id(con: sqlite3.Connection, manifest: Path | None, placed: bool) -> str:
    """The run's id: the UTC second its manifest was written, which is also the name
    `pipeline.runs.archive` gives its folder when a later run replaces it.

    Two runs recorded within one second would share that name: the later one's manifest
    time is moved on by whole seconds until its id is free, so the folder and the id agree."""
    if placed and manifest is not None:
        stat = manifest.stat()
        seconds = int(stat.st_mtime)
        for _ in range(1000):
            run_id = _stamp(seconds)
            if not _taken(con, run_id):
                if seconds != int(stat.st_mtime):
                    os.utime(manifest, ns=(stat.st_atime_ns, seconds * 1_000_000_000))
                return run_id
            seconds += 1
    base = _stamp(time.time())  # nothing of this run is on disk (its outputs equal the previous run's)
    run_id, number = base, 0
    while _taken(con, run_id):
        number += 1
        run_id = f"{base}-{number:02d}"
    return run_id


def _taken(con: sqlite3.Connection, run_id: str) -> bool:
    return con.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None


def _previous_run(con: sqlite3.Connection, period: str) -> str | None:
    """The last run of `period` whose outputs went into its folder (ok or aborted, any kind)."""
    row = con.execute("SELECT run_id FROM runs WHERE period = ? ORDER BY finished_utc DESC, run_id DESC LIMIT 1",
                      (period,)).fetchone()
    return row[0] if row else None


def _column(frame: pd.DataFrame, name: str, default: str | None = None) -> np.ndarray:
    """A column as Python objects, None where missing (`default`: the column to use instead)."""
    if name not in frame.columns:
        if default is None or default not in frame.columns:
            return np.full(len(frame), None, dtype=object)
        name = default
    values = frame[name].to_numpy(dtype=object)
    return np.asarray(np.where(pd.isna(values), None, values), dtype=object) if len(values) else values


def _floats(frame: pd.DataFrame, name: str, default: str | None = None) -> np.ndarray:
    """A numeric column as Python floats (what SQLite stores as REAL, bit for bit), None where missing."""
    if name not in frame.columns:
        if default is None or default not in frame.columns:
            return np.full(len(frame), None, dtype=object)
        name = default
    numbers = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    values = numbers.astype(object)
    values[np.isnan(numbers)] = None
    return values


def _texts(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    column = frame[name]
    empty = column.isna().to_numpy() | (column.astype(object) == "").to_numpy()  # no cell: NULL, not ''
    return np.asarray(np.where(empty, None, column.astype(object).astype(str).to_numpy(dtype=object)), dtype=object)


def result_rows(run_id: str, scores) -> list[tuple]:
    """One tuple per Details row, in HISTORY_RESULT_COLUMNS order (department and role family from Totals)."""
    details = scores.details
    if details.empty:
        return []
    totals = scores.totals.set_index("employee_id")
    people = details["employee_id"]
    extra = pd.DataFrame({name: people.map(totals[name]) if name in totals.columns else None
                          for name in ("department", "role_family")})
    columns = [
        np.full(len(details), run_id, dtype=object), _column(details, "period"), _column(details, "employee_id"),
        _column(extra, "department"), _column(extra, "role_family"), _column(details, "indicator_id"),
        *(_floats(details, c) for c in ("weight", "base", "target", "stretch")),
        _floats(details, "original_target", "target"),
        *(_floats(details, c) for c in ("actual", "achievement", "weighted_score")),
        _texts(details, "adjustment"), _texts(details, "source"),
    ]
    return list(zip(*columns))


def total_rows(run_id: str, scores) -> list[tuple]:
    """One tuple per employee of the Totals sheet: the scored, then the unscored with empty totals."""
    totals = scores.totals
    n = len(totals)
    columns = [np.full(n, run_id, dtype=object), _column(totals, "period"), _column(totals, "employee_id"),
               _floats(totals, "total"), _floats(totals, "total_rounded"), _column(totals, "grade"),
               _column(totals, "score_grade", "grade"), _floats(totals, "bonus")]
    rows = list(zip(*columns))
    unscored = scores.unscored
    if not unscored.empty:
        unscored = unscored[~unscored["employee_id"].isin(totals["employee_id"])]
        unscored = unscored.drop_duplicates("employee_id")
        periods = _column(unscored, "period")
        rows += [(run_id, p if p is not None else scores.period, e, None, None, None, None, None)
                 for e, p in zip(unscored["employee_id"].to_numpy(dtype=object), periods)]
    return rows


def record_run(out_dir: Path, record: RunRecord, scores) -> str:
    """Write the run, its results and its totals in one transaction; the run's id.

    `scores` is None for a run that published no scores (--strict found problems): the run is
    logged, nothing else. Any failure rolls the whole run back."""
    con = connect(out_dir, create=True)
    assert con is not None  # create=True always opens one
    with closing(con):
        try:
            manifest_sha, manifest = _manifest_sha(record.period_dir)
            con.execute("BEGIN IMMEDIATE")
            try:
                run_id = _new_run_id(con, manifest, record.placed)
                previous = _previous_run(con, record.period) if record.replaced else None
                replaces = record.archived_as or previous
                values = {"run_id": run_id, "period": record.period, "kind": record.kind, "as_of": record.as_of,
                          "started_utc": record.started_utc, "finished_utc": utc_now(), "operator": _operator(),
                          "host": socket.gethostname(), "kpi_version": record.kpi_version,
                          "policy_sha256": record.policy_sha256, "manifest_sha256": manifest_sha,
                          "status": record.status, "replaces_run_id": replaces, "exit_code": record.exit_code}
                con.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                            [values[c] for c in RUN_COLUMNS])
                if scores is not None:
                    con.executemany(f"INSERT INTO results ({', '.join(HISTORY_RESULT_COLUMNS)}) "
                                    f"VALUES ({', '.join('?' * len(HISTORY_RESULT_COLUMNS))})", result_rows(run_id, scores))
                    con.executemany(f"INSERT INTO totals ({', '.join(HISTORY_TOTAL_COLUMNS)}) "
                                    f"VALUES ({', '.join('?' * len(HISTORY_TOTAL_COLUMNS))})", total_rows(run_id, scores))
                _before_commit()
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _unusable(db_path(out_dir), exc) from None
    return run_id


def _before_commit() -> None:
    """Nothing; tests replace it to fail a run at the last moment before its commit."""


# ------------------------------------------------------------------------------ commands

def _reader(out_dir: Path) -> sqlite3.Connection:
    con = connect(out_dir, create=False)
    if con is None:
        path = db_path(out_dir)
        raise HistoryError(f"{out_dir} 中没有历史数据库({path.name})。先用 kpi run … --out {out_dir} 运行一次。",
                           f"No history database ({path.name}) in {out_dir}. Run kpi run … --out {out_dir} first.")
    return con


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _by_length(text: str) -> tuple[str, int]:
    """Periods grouped by length (halves, months, quarters, years), in order within each;
    anything else last."""
    period = Period.canonical(text)
    return (period.kind, period.position) if period is not None else ("~", 0)


def employee_history(out_dir: Path, employee_id: str) -> dict:
    """An employee's periods (their current result each) and every run that scored them."""
    with closing(_reader(out_dir)) as con:
        current = _dicts(con.execute(
            "SELECT t.period, t.total, t.total_rounded, t.grade, t.bonus, t.run_id, r.finished_utc "
            "FROM current_totals AS t JOIN runs AS r ON r.run_id = t.run_id WHERE t.employee_id = ?",
            (employee_id,)))
        runs = _dicts(con.execute(
            "SELECT t.run_id, t.period, r.kind, r.as_of, r.finished_utc, r.status, t.total, t.total_rounded, "
            "t.grade, t.bonus, r.run_id IN (SELECT run_id FROM current_runs) AS current "
            "FROM totals AS t JOIN runs AS r ON r.run_id = t.run_id WHERE t.employee_id = ? "
            "ORDER BY r.finished_utc, r.run_id", (employee_id,)))
        names = con.execute("SELECT department FROM results WHERE employee_id = ? AND department IS NOT NULL "
                            "ORDER BY rowid DESC LIMIT 1", (employee_id,)).fetchone()
    current.sort(key=lambda row: (_by_length(row["period"]), row["period"]))
    for row in runs:
        row["current"] = bool(row["current"])
    return {"employee_id": employee_id, "department": names[0] if names else None, "periods": current,
            "runs": runs}


def run_log(out_dir: Path, period: str | None = None) -> list[dict]:
    """Every recorded run (of `period`, when given), oldest first, with how many it scored."""
    where, args = ("WHERE r.period = ?", (period,)) if period else ("", ())
    with closing(_reader(out_dir)) as con:
        rows = _dicts(con.execute(
            "SELECT r.run_id, r.period, r.kind, r.as_of, r.started_utc, r.finished_utc, r.operator, r.host, "
            "r.kpi_version, r.status, r.exit_code, r.replaces_run_id, r.policy_sha256, r.manifest_sha256, "
            "(SELECT COUNT(*) FROM totals AS t WHERE t.run_id = r.run_id AND t.total IS NOT NULL) AS scored, "
            "r.run_id IN (SELECT run_id FROM current_runs) AS current "
            f"FROM runs AS r {where} ORDER BY r.finished_utc, r.run_id", args))
    for row in rows:
        row["current"] = bool(row["current"])
    return rows


def _both(zh: str, en: str, lang: str) -> str:
    return en if lang == "en" else f"{zh} {en}"


def _points(value) -> str:
    return "" if value is None else f"{value:.2f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    from pipeline.writers.common import display_width

    widths = [max([display_width(h)] + [display_width(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c + " " * (w - display_width(c)) for c, w in zip(cells, widths)).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def format_employee_history(history: dict, lang: str) -> str:
    """`kpi history` as text: the current result per period, then every run that scored them."""
    lines = [_both(f"员工 {history['employee_id']} 的历史", f"History of employee {history['employee_id']}", lang)
             + (f" ({history['department']})" if history["department"] else "")]
    if not history["runs"]:
        lines.append(_both("没有任何运行为该员工评分。", "No run has scored this employee.", lang))
        return "\n".join(lines)
    lines.append("")
    lines.append(_both("各周期当前结果:", "Current result of each period:", lang))
    rows = [[p["period"], _points(p["total_rounded"]), p["grade"] or "", "" if p["bonus"] is None else f"{p['bonus']:.2f}",
             p["run_id"]] for p in history["periods"]]
    heads = (["Period", "Points", "Grade", "Bonus", "Run"] if lang == "en"
             else ["周期 Period", "总分 Points", "等级 Grade", "奖金系数 Bonus", "运行 Run"])
    lines += ["  " + t for t in _table(heads, rows)] if rows else ["  -"]
    lines.append("")
    lines.append(_both("所有运行:", "All runs:", lang))
    rows = [[r["run_id"], r["period"], r["kind"] + (f" @{r['as_of']}" if r["as_of"] else ""), _points(r["total_rounded"]),
             r["grade"] or "", ("当前 current" if lang != "en" else "current") if r["current"] else ""]
            for r in history["runs"]]
    heads = (["Run", "Period", "Kind", "Points", "Grade", ""] if lang == "en"
             else ["运行 Run", "周期 Period", "类型 Kind", "总分 Points", "等级 Grade", ""])
    lines += ["  " + t for t in _table(heads, rows)]
    return "\n".join(lines)


def format_run_log(runs: list[dict], lang: str) -> str:
    """`kpi runs` as text: one line per run, the current run of each period marked."""
    if not runs:
        return _both("没有记录的运行。", "No runs recorded.", lang)
    rows = [[r["run_id"], r["period"], r["kind"] + (f" @{r['as_of']}" if r["as_of"] else ""), r["status"],
             "" if r["exit_code"] is None else str(r["exit_code"]), str(r["scored"]), r["finished_utc"][:19] + "Z",
             r["operator"] or "", r["replaces_run_id"] or "",
             ("当前 current" if lang != "en" else "current") if r["current"] else ""] for r in runs]
    heads = (["Run", "Period", "Kind", "Status", "Exit", "Scored", "Finished (UTC)", "Operator", "Replaces", ""]
             if lang == "en" else
             ["运行 Run", "周期 Period", "类型 Kind", "状态 Status", "退出码 Exit", "已评分 Scored",
              "完成时间 Finished (UTC)", "操作人 Operator", "替换 Replaces", ""])
    return "\n".join(_table(heads, rows))
