"""Period folders: the run a rerun replaces is kept, and what a killed run left is repaired.

A run's outputs are staged in `OUT/.<period>.tmp-<pid>/` and put in place by renames alone:

1. `OUT/<period>/` -> `OUT/.<period>.old-<pid>/`   (the previous run, moved aside whole)
2. staging -> `OUT/<period>/`
3. `OUT/.<period>.old-<pid>/` -> `OUT/.history/<period>/<run-id>/`

A crash between any two steps leaves the previous or the new run reachable, and the next run
(holding the output lock, so no other run is active) finishes the job: a staging folder is an
unfinished run and is removed; an `.old` folder is put back when the period folder is missing,
and otherwise moved to the history. Nothing a person saved in a period folder is ever deleted:
a previous run moves whole, and an archived run holding such files is never pruned.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.audit import (
    AUDIT_RECORDS,
    MANIFEST_PATH,
    MANIFEST_SIG,
    ManifestError,
    load_manifest,
    sha256_file,
)
from pipeline.periods import Period
from pipeline.texts import say

HISTORY_DIR = ".history"

_STAGING = re.compile(r"^\.(?P<period>.+)\.tmp-(?P<pid>\d+)$")
_ASIDE = re.compile(r"^\.(?P<period>.+)\.old-(?P<pid>\d+)$")
_PRUNING = ".pruning"  # suffix of an archived run being deleted (finished by the next prune)


def _both(zh: str, en: str, lang: str) -> str:
    return say(zh, en, lang, " / ")


@dataclass
class Repair:
    """Something an interrupted run left in the output folder, and what this run did with it.

    `action`: removed_staging (an unfinished run's folder), restored (a previous run put back as
    the period folder), archived (a previous run moved to the history)."""

    action: str
    path: Path
    to: Path | None = None

    def message(self, lang: str) -> str:
        if self.action == "removed_staging":
            return _both(f"已删除中断的运行留下的临时文件夹 {self.path}",
                         f"Removed {self.path}, left unfinished by an interrupted run", lang)
        if self.action == "restored":
            return _both(f"上次运行在替换途中中断:已将 {self.path} 恢复为 {self.to}",
                         f"A run was interrupted while replacing the period folder: {self.path} was put "
                         f"back as {self.to}", lang)
        return _both(f"中断的运行替换下的结果已移至 {self.to}",
                     f"The results an interrupted run had replaced were moved to {self.to}", lang)

    def as_json(self) -> dict:
        return {"action": self.action, "path": str(self.path), "to": str(self.to) if self.to else None}


@dataclass
class KeptRun:
    """An archived run beyond `output.keep_runs` that is not pruned: it holds a person's files."""

    path: Path
    files: list[str]


@dataclass
class Housekeeping:
    """What a run did to the output folder besides writing its period: repairs, archive, pruning."""

    keep_runs: int = 10
    repairs: list[Repair] = field(default_factory=list)
    # The period folder held a previous run (or anything else) that this run replaced.
    replaced: bool = False
    # The previous run's outputs were byte-identical and nobody had added to them: left in place.
    unchanged: bool = False
    archived: Path | None = None  # where the previous run now is
    archive_pending: bool = False  # it could not be moved to the history yet: the next run does
    person_files: list[str] = field(default_factory=list)  # in the previous run, not written by kpi
    pruned: list[Path] = field(default_factory=list)
    kept: list[KeptRun] = field(default_factory=list)

    def lines(self, lang: str) -> list[str]:
        """The console lines, one per event; none for a first run with nothing to repair."""
        lines = [repair.message(lang) for repair in self.repairs]
        if self.unchanged:
            lines.append(_both("结果与上次运行逐字节相同,上次运行无需归档",
                               "Same outputs as the previous run, byte for byte: nothing archived", lang))
        elif self.archived is not None and self.archive_pending:
            lines.append(_both(f"上次运行暂留在 {self.archived},下次运行时移入 {HISTORY_DIR}",
                               f"The previous run is in {self.archived} for now; the next run moves it to "
                               f"{HISTORY_DIR}", lang))
        elif self.archived is not None:
            lines.append(_both(f"上次运行已移至 {self.archived}", f"The previous run was moved to {self.archived}",
                               lang))
        if self.archived is not None and self.person_files:
            names = _names(self.person_files)
            lines.append(_both(f"{names} 不是 kpi 生成的(或生成后被修改过),已随上次运行保留在 {self.archived} 中",
                               f"{names}: not written by kpi (or changed since), kept with the previous run "
                               f"in {self.archived}", lang))
        if self.pruned:
            lines.append(_both(f"已删除最早的 {len(self.pruned)} 次归档运行(output.keep_runs = {self.keep_runs})",
                               ("Removed the oldest archived run " if len(self.pruned) == 1 else
                                f"Removed the {len(self.pruned)} oldest archived runs ") +
                               f"(output.keep_runs = {self.keep_runs})", lang))
        for run in self.kept:
            if run.path == self.archived:  # its files were just named with it
                continue
            names = _names(run.files)
            lines.append(_both(f"{names} 在 {run.path} 中保留(含非 kpi 生成的文件的运行不会被删除)",
                               f"{names} kept in {run.path} (a run holding files kpi did not write is never "
                               f"pruned)", lang))
        return lines

    def as_json(self) -> dict:
        return {
            "previous_run": {
                "replaced": self.replaced,
                "unchanged": self.unchanged,
                "archived_to": str(self.archived) if self.archived is not None else None,
                "archive_pending": self.archive_pending,
                "files_not_written_by_kpi": list(self.person_files),
            },
            "history": {
                "keep_runs": self.keep_runs,
                "pruned": [str(p) for p in self.pruned],
                "kept": [{"run": str(k.path), "files_not_written_by_kpi": list(k.files)} for k in self.kept],
            },
            "repairs": [r.as_json() for r in self.repairs],
        }


def _names(files: list[str], shown: int = 5) -> str:
    more = f" (+{len(files) - shown})" if len(files) > shown else ""
    return ", ".join(files[:shown]) + more


def _is_period(text: str) -> bool:
    """A period folder's name: `2026-10`, or a progress run's `2026-Q3-to-2026-08`."""
    period, _, as_of = text.partition("-to-")
    return Period.canonical(period) is not None and (not as_of or Period.canonical(as_of) is not None)


def staging_folder(out_dir: Path, period: str) -> Path:
    """Where this process stages `period` before putting it in place."""
    return out_dir / f".{period}.tmp-{os.getpid()}"


# ------------------------------------------------------------------------------ what a run holds

def _files(folder: Path) -> dict[str, Path]:
    """Every file under `folder` by forward-slash relative path."""
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def person_files(run_dir: Path) -> list[str]:
    """Files of a run folder that are not as kpi wrote them: not listed in its manifest (a
    manager's note), or listed but changed since (size, or content when modified after the run).

    Without a readable manifest nothing in the folder is provably kpi's: every file counts.
    """
    listed: dict[str, dict] = {}
    written_ns = None
    try:
        listed = {entry["path"]: entry for entry in load_manifest(run_dir)["outputs"]}
        written_ns = (run_dir / MANIFEST_PATH).stat().st_mtime_ns
    except (ManifestError, OSError):
        listed = {}
    found = []
    for rel, path in _files(run_dir).items():
        if rel in AUDIT_RECORDS and written_ns is not None:  # the manifest, run record, signatures: kpi's
            continue
        entry = listed.get(rel)
        if entry is None:
            found.append(rel)
            continue
        # kpi writes the manifest last: an output modified later may have been edited by a person.
        stat = path.stat()
        if stat.st_size != entry.get("size") or (written_ns is not None and stat.st_mtime_ns > written_ns and
                                                 _hash_or_none(path) != entry["sha256"]):
            found.append(rel)
    return found


def _hash_or_none(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def same_outputs(old: Path, staged: Path) -> bool:
    """Whether the period folder `old` holds exactly the staged run's files, byte for byte.

    The manifests are compared first (they list every output's size and hash), so a rerun after
    a correction costs one small read; only an identical manifest leads to hashing `old`. The
    run record (time, operator) is left out; a manifest signature must be the same (both
    unsigned, or signed by the same key: Ed25519 signatures are deterministic)."""
    try:
        if (old / MANIFEST_PATH).read_bytes() != (staged / MANIFEST_PATH).read_bytes():
            return False
        if _bytes_or_none(old / MANIFEST_SIG) != _bytes_or_none(staged / MANIFEST_SIG):
            return False
        outputs = {entry["path"]: entry for entry in load_manifest(staged)["outputs"]}
    except (OSError, ManifestError):
        return False
    present = _files(old)
    if set(present) - AUDIT_RECORDS != set(outputs) or MANIFEST_PATH not in present:
        return False
    for rel, entry in outputs.items():
        if present[rel].stat().st_size != entry["size"]:
            return False
    return all(_hash_or_none(present[rel]) == entry["sha256"] for rel, entry in outputs.items())


def _bytes_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def run_time(run_dir: Path) -> float:
    """When a run was written: its manifest's modification time (kpi writes it last), else the folder's."""
    for path in (run_dir / MANIFEST_PATH, run_dir):
        try:
            return path.stat().st_mtime
        except OSError:
            continue
    return time.time()


# ------------------------------------------------------------------------------ history

def archive(folder: Path, out_dir: Path, period: str) -> Path:
    """Move a previous run of `period` whole to `OUT/.history/<period>/<run-id>/` (one rename).

    The run-id is the UTC time the run was written (`20261207T061800Z`), sortable, with `-01`,
    `-02`… when two runs share a second; it names the folder only, never a file's content."""
    parent = out_dir / HISTORY_DIR / period
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(run_time(folder)))
    target = parent / stamp
    number = 0
    while target.exists() or target.is_symlink():
        number += 1
        target = parent / f"{stamp}-{number:02d}"
    folder.rename(target)
    return target


def history_runs(out_dir: Path, period: str) -> list[Path]:
    """The archived runs of `period`, oldest first."""
    folder = out_dir / HISTORY_DIR / period
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def prune(out_dir: Path, period: str, keep_runs: int, report: Housekeeping) -> None:
    """Remove the archived runs of `period` older than the newest `keep_runs`, except those
    holding files kpi did not write (named in `report.kept`). A run is renamed before it is
    deleted, so one half-deleted by a crash is never taken for a person's files."""
    folder = out_dir / HISTORY_DIR / period
    for leftover in folder.glob(f".*{_PRUNING}") if folder.is_dir() else ():
        shutil.rmtree(leftover, ignore_errors=True)
    runs = history_runs(out_dir, period)
    for run in runs[:max(0, len(runs) - keep_runs)]:
        files = person_files(run)
        if files:
            report.kept.append(KeptRun(run, files))
            continue
        doomed = run.with_name(f".{run.name}{_PRUNING}")
        try:
            run.rename(doomed)
        except OSError:  # left for the next run
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        report.pruned.append(run)


# ------------------------------------------------------------------------------ swap and repair

def put_in_place(staging: Path, final: Path, out_dir: Path, period: str, report: Housekeeping) -> None:
    """Make the staged run the period folder; the previous one goes to the history whole.

    A previous run with the same outputs byte for byte, and nothing added, stays as it is (the
    staged copy is dropped). If the staged folder cannot be renamed into place the previous run
    is put back before the error goes on."""
    aside = None
    if final.exists() or final.is_symlink():
        report.replaced = True
        if final.is_dir() and same_outputs(final, staging):
            shutil.rmtree(staging, ignore_errors=True)
            report.unchanged = True
            return
        report.person_files = person_files(final) if final.is_dir() else [final.name]
        aside = out_dir / f".{period}.old-{os.getpid()}"
        if aside.exists():  # not expected while the lock is held and leftovers are repaired
            archive(aside, out_dir, period)
    moved = False
    try:
        if aside is not None:
            final.rename(aside)
            moved = True
        staging.rename(final)
    except BaseException:
        if moved and aside is not None and not (final.exists() or final.is_symlink()):
            aside.rename(final)
        raise
    if aside is None:
        return
    try:
        report.archived = archive(aside, out_dir, period)
    except OSError:  # the new run is in place; the next run moves the previous one (clean_leftovers)
        report.archived, report.archive_pending = aside, True


def clean_leftovers(out_dir: Path) -> list[Repair]:
    """Repair what interrupted runs left in `out_dir`, for every period.

    Called holding the output lock: no other run can be active, so every staging folder is an
    unfinished run's and is removed. An `.old` folder is a previous run moved aside: it is put
    back when its period folder is missing (the crash between the two renames), else archived.
    """
    repairs: list[Repair] = []
    try:
        entries = sorted(out_dir.iterdir())
    except OSError:
        return repairs
    aside: dict[str, list[Path]] = {}
    for entry in entries:
        if not entry.is_dir() or entry.is_symlink():
            continue
        staged = _STAGING.match(entry.name)
        if staged and _is_period(staged["period"]):
            shutil.rmtree(entry, ignore_errors=True)
            repairs.append(Repair("removed_staging", entry))
            continue
        old = _ASIDE.match(entry.name)
        if old and _is_period(old["period"]):
            aside.setdefault(old["period"], []).append(entry)
    for period, folders in sorted(aside.items()):
        final = out_dir / period
        folders.sort(key=run_time)
        if not (final.exists() or final.is_symlink()):
            newest = folders.pop()
            newest.rename(final)
            repairs.append(Repair("restored", newest, final))
        for folder in folders:
            repairs.append(Repair("archived", folder, archive(folder, out_dir, period)))
    return repairs
