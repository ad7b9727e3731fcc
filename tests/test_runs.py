"""Reruns keep the run they replace, leftovers of killed runs are repaired, the lock never goes stale."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from company import PERIOD, small_company

from pipeline import batch, runs
from pipeline.audit import verify
from pipeline.batch import BatchError, output_lock, run_batch
from pipeline.cli import main
from pipeline.policy import PolicyError, load_policy, parse_policy
from pipeline.runs import HISTORY_DIR, Housekeeping, clean_leftovers, prune

NOTE = "经理批注.txt"
ROOT = Path(__file__).resolve().parents[1]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _history(out: Path, period: str = PERIOD) -> list[Path]:
    folder = out / HISTORY_DIR / period
    return sorted(p for p in folder.iterdir()) if folder.is_dir() else []


def _run(inbox: Path, out: Path, policy_text: str = "", **kwargs):
    policy = parse_policy(policy_text) if policy_text else load_policy()
    return run_batch(inbox, PERIOD, out, policy, jobs=1, **kwargs)


# ------------------------------------------------------------------------------ kept, not replaced

def test_rerun_after_a_correction_keeps_the_previous_run_and_the_managers_note(tmp_path):
    inbox, out = small_company(tmp_path / "inbox", mistake=True), tmp_path / "output"
    first = _run(inbox, out)
    assert first.housekeeping.replaced is False and first.housekeeping.archived is None
    before = _hashes(first.period_dir)
    (first.period_dir / NOTE).write_text("R002 的缺陷率请核实", encoding="utf-8")

    small_company(inbox)  # HR corrects R002's actual
    runner = CliRunner()
    shown = runner.invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "1"])
    assert shown.exit_code == 0, shown.output

    [kept] = _history(out)
    assert kept.name.endswith("Z") and kept.name[:8].isdigit()  # 20261207T061800Z: the run's UTC time
    assert (kept / NOTE).read_text(encoding="utf-8") == "R002 的缺陷率请核实"
    assert {k: v for k, v in _hashes(kept).items() if k != NOTE} == before  # the whole previous run
    assert verify(kept).unexpected == [NOTE]  # still verifiable against its own manifest
    assert not (out / PERIOD / NOTE).exists()
    assert verify(out / PERIOD).ok
    assert f"上次运行已移至 {kept}" in shown.output
    assert f"The previous run was moved to {kept}" in shown.output
    assert NOTE in shown.output and f"kept with the previous run in {kept}" in shown.output


def test_json_says_what_was_replaced_and_where_it_went(tmp_path):
    inbox, out = small_company(tmp_path / "inbox", mistake=True), tmp_path / "output"
    _run(inbox, out)
    (out / PERIOD / NOTE).write_text("note", encoding="utf-8")
    small_company(inbox)
    result = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(out), "--json",
                                       "--jobs", "1"])
    report = json.loads(result.stdout)
    [kept] = _history(out)
    assert report["previous_run"] == {"replaced": True, "unchanged": False, "archived_to": str(kept),
                                      "archive_pending": False, "files_not_written_by_kpi": [NOTE]}
    assert report["repairs"] == [] and report["history"]["pruned"] == []


def test_byte_identical_rerun_archives_nothing(tmp_path):
    inbox, out = small_company(tmp_path / "inbox"), tmp_path / "output"
    first = _run(inbox, out)
    before = _hashes(first.period_dir)
    again = _run(inbox, out)
    assert again.housekeeping.replaced and again.housekeeping.unchanged
    assert again.housekeeping.archived is None
    assert not (out / HISTORY_DIR).exists()
    assert _hashes(again.period_dir) == before
    assert sorted(p.name for p in out.iterdir()) == [PERIOD, "history.sqlite"]  # no staging folder, no lock
    assert any("nothing archived" in line for line in again.housekeeping.lines("en"))


def test_identical_outputs_with_a_note_or_an_edit_are_still_archived(tmp_path):
    """Byte-identical outputs archive nothing only when the folder holds nothing else: a note,
    or a scorecard someone edited in place, moves to the history with the run."""
    inbox, out = small_company(tmp_path / "inbox"), tmp_path / "output"
    _run(inbox, out)
    (out / PERIOD / NOTE).write_text("note", encoding="utf-8")
    noted = _run(inbox, out)
    assert noted.housekeeping.person_files == [NOTE] and not noted.housekeeping.unchanged
    [first] = _history(out)
    assert (first / NOTE).is_file()

    summary = out / PERIOD / "summary.xlsx"
    summary.write_bytes(summary.read_bytes() + b"edited")
    edited = _run(inbox, out)
    assert edited.housekeeping.person_files == ["summary.xlsx"]
    assert len(_history(out)) == 2
    assert (_history(out)[-1] / "summary.xlsx").read_bytes().endswith(b"edited")


# ------------------------------------------------------------------------------ keep_runs

def _fake_run(folder: Path, files: dict[str, bytes], extra: dict[str, bytes] | None = None) -> Path:
    """A run folder as kpi leaves it (files listed in its manifest), plus `extra` files a person saved."""
    from pipeline.audit import build_manifest, write_manifest

    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(content)
    manifest = build_manifest(period=PERIOD, inputs=[], policy_text="", outputs_dir=folder, counts={},
                              warnings=[], package_version="test")
    write_manifest(folder, manifest)
    for rel, content in (extra or {}).items():
        (folder / rel).write_bytes(content)
    return folder


def test_keep_runs_prunes_the_oldest_but_never_a_run_with_files_kpi_did_not_write(tmp_path):
    history = tmp_path / HISTORY_DIR / PERIOD
    names = [f"2026110{i}T080000Z" for i in range(1, 6)]
    for i, name in enumerate(names):
        extra = {NOTE: "请复核".encode()} if i == 1 else None
        _fake_run(history / name, {"summary.xlsx": b"run %d" % i}, extra)
    report = Housekeeping(keep_runs=2)
    prune(tmp_path, PERIOD, 2, report)
    # The two newest stay; of the three older, the one holding the note stays too.
    assert [p.name for p in _history(tmp_path)] == [names[1], names[3], names[4]]
    assert report.pruned == [history / names[0], history / names[2]]
    assert [(k.path, k.files) for k in report.kept] == [(history / names[1], [NOTE])]
    zh_en = " ".join(report.lines("zh"))
    assert f"{NOTE} 在 {history / names[1]} 中保留" in zh_en and f"{NOTE} kept in {history / names[1]}" in zh_en
    assert "Removed the 2 oldest archived runs (output.keep_runs = 2)" in zh_en


def test_a_run_whose_scorecard_was_edited_or_that_has_no_manifest_is_never_pruned(tmp_path):
    history = tmp_path / HISTORY_DIR / PERIOD
    edited = _fake_run(history / "20261101T080000Z", {"summary.xlsx": b"as written"})
    (edited / "summary.xlsx").write_bytes(b"as a manager changed it")
    bare = history / "20261102T080000Z"
    bare.mkdir(parents=True)
    (bare / "summary.xlsx").write_bytes(b"no manifest: nothing proves kpi wrote it")
    plain = _fake_run(history / "20261103T080000Z", {"summary.xlsx": b"untouched"})
    report = Housekeeping(keep_runs=0)
    prune(tmp_path, PERIOD, 0, report)
    assert report.pruned == [plain]
    assert [(k.path.name, k.files) for k in report.kept] == [(edited.name, ["summary.xlsx"]),
                                                            (bare.name, ["summary.xlsx"])]


def test_keep_runs_end_to_end(tmp_path):
    """Four runs alternating between two inboxes with keep_runs 1: the note's run and the newest
    archived run survive, the one in between is pruned."""
    clean, wrong = small_company(tmp_path / "clean"), small_company(tmp_path / "wrong", mistake=True)
    out = tmp_path / "output"
    policy = "output: {keep_runs: 1}\n"
    _run(wrong, out, policy)
    (out / PERIOD / NOTE).write_text("note", encoding="utf-8")
    _run(clean, out, policy)
    _run(wrong, out, policy)
    last = _run(clean, out, policy)
    kept = _history(out)
    assert len(kept) == 2
    assert (kept[0] / NOTE).is_file() and not (kept[1] / NOTE).exists()
    assert len(last.housekeeping.pruned) == 1 and last.housekeeping.pruned[0] not in kept
    assert [k.path for k in last.housekeeping.kept] == [kept[0]]


@pytest.mark.parametrize(("text", "expected"), [("", 10), ("output: {keep_runs: 0}\n", 0),
                                                ("output: {keep_runs: 3}\n", 3)])
def test_keep_runs_policy(text, expected):
    assert parse_policy(text).keep_runs == expected


@pytest.mark.parametrize("value", ["-1", "true", "2.5", "many"])
def test_keep_runs_policy_refuses_what_is_not_a_count(value):
    with pytest.raises(PolicyError) as raised:
        parse_policy(f"output: {{keep_runs: {value}}}\n")
    assert raised.value.key == "output.keep_runs" and "archived runs kept" in raised.value.en


def test_shipped_policy_keeps_ten_runs():
    assert load_policy(ROOT / "config" / "policy.yaml").keep_runs == 10


# ------------------------------------------------------------------------------ leftovers

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftover_staging_of_a_dead_run_is_removed_with_a_notice(tmp_path):
    inbox, out = small_company(tmp_path / "inbox"), tmp_path / "output"
    leftover = out / f".{PERIOD}.tmp-{_dead_pid()}"
    (leftover / "departments").mkdir(parents=True)
    (leftover / "departments" / "销售部.xlsx").write_bytes(b"half written")
    other = out / ".2026-Q3.tmp-424242"
    other.mkdir()
    mine = out / ".backup"  # not kpi's: left alone
    mine.mkdir()
    shown = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "1",
                                      "--lang", "en"])
    assert shown.exit_code == 0, shown.output
    assert sorted(p.name for p in out.iterdir()) == [".backup", PERIOD, "history.sqlite"]
    assert f"Removed {leftover}, left unfinished by an interrupted run" in shown.output
    assert f"Removed {other}" in shown.output


def test_an_old_folder_is_restored_when_the_period_folder_is_missing(tmp_path):
    inbox, out = small_company(tmp_path / "inbox"), tmp_path / "output"
    first = _run(inbox, out)
    before = _hashes(first.period_dir)
    aside = out / f".{PERIOD}.old-{_dead_pid()}"
    first.period_dir.rename(aside)  # the crash between the two renames
    (out / f".{PERIOD}.tmp-{_dead_pid()}").mkdir()
    repairs = clean_leftovers(out)
    assert [r.action for r in repairs] == ["removed_staging", "restored"]
    assert _hashes(out / PERIOD) == before
    assert sorted(p.name for p in out.iterdir()) == [PERIOD, "history.sqlite"]
    message = repairs[1].message("zh")
    assert f"已将 {aside} 恢复为 {out / PERIOD}" in message and f"{aside} was put back as {out / PERIOD}" in message


def test_an_old_folder_beside_a_period_folder_goes_to_the_history(tmp_path):
    """The crash after the new run was put in place, before the previous one was archived."""
    out, other = tmp_path / "output", tmp_path / "other"
    first = _run(small_company(tmp_path / "wrong", mistake=True), out)
    before = _hashes(first.period_dir)
    aside = out / f".{PERIOD}.old-{_dead_pid()}"
    first.period_dir.rename(aside)
    _run(small_company(tmp_path / "clean"), other).period_dir.rename(out / PERIOD)
    [repair] = clean_leftovers(out)
    assert repair.action == "archived" and repair.path == aside
    assert repair.to.parent == out / HISTORY_DIR / PERIOD and _hashes(repair.to) == before
    assert sorted(p.name for p in out.iterdir()) == [HISTORY_DIR, PERIOD, "history.sqlite"]
    assert f"moved to {repair.to}" in repair.message("en")


def test_archive_that_fails_is_finished_by_the_next_run(tmp_path, monkeypatch):
    inbox, out = small_company(tmp_path / "inbox", mistake=True), tmp_path / "output"
    first = _run(inbox, out)
    before = _hashes(first.period_dir)
    small_company(inbox)

    def refuse(*args):
        raise PermissionError(13, "Permission denied", str(out / HISTORY_DIR))

    with monkeypatch.context() as patch:
        patch.setattr(runs, "archive", refuse)
        second = _run(inbox, out)
    assert second.exit_code == 0 and second.housekeeping.archive_pending
    aside = second.housekeeping.archived
    assert aside.name.startswith(f".{PERIOD}.old-") and _hashes(aside) == before
    third = _run(inbox, out)
    assert [r.action for r in third.housekeeping.repairs] == ["archived"]
    assert third.housekeeping.unchanged
    [kept] = _history(out)
    assert _hashes(kept) == before and not aside.exists()


def test_a_failed_rename_into_place_puts_the_previous_run_back(tmp_path, monkeypatch):
    inbox, out = small_company(tmp_path / "inbox", mistake=True), tmp_path / "output"
    first = _run(inbox, out)
    before = _hashes(first.period_dir)
    small_company(inbox)
    rename = Path.rename

    def failing(self, target):
        if self.name.startswith(f".{PERIOD}.tmp-"):
            raise OSError(28, "No space left on device", str(self))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError):
        _run(inbox, out)
    monkeypatch.undo()
    assert _hashes(out / PERIOD) == before
    assert sorted(p.name for p in out.iterdir()) == [PERIOD, "history.sqlite"]


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from pipeline.batch import run_batch
    from pipeline.policy import load_policy

    moment = sys.argv[1]
    rename = Path.rename

    def rename_then_die(self, target):
        result = rename(self, target)
        moved_aside = Path(target).name.startswith(".{period}.old-")
        put_in_place = self.name.startswith(".{period}.tmp-")
        if (moment == "aside" and moved_aside) or (moment == "in_place" and put_in_place):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    Path.rename = rename_then_die
    run_batch(Path(sys.argv[2]), "{period}", Path(sys.argv[3]), load_policy(), jobs=1)
""")


@pytest.mark.parametrize("moment", ["aside", "in_place"])
def test_kill_9_between_the_renames_is_repaired_by_the_next_run(tmp_path, moment):
    """A real process killed right after moving the previous run aside (no period folder at
    all) or right after putting the new one in place (the previous one not yet archived)."""
    inbox, out = small_company(tmp_path / "inbox", mistake=True), tmp_path / "output"
    first = _run(inbox, out)
    before = _hashes(first.period_dir)
    small_company(inbox)
    script = _KILLER.format(tests=str(ROOT / "tests"), period=PERIOD)
    killed = subprocess.run([sys.executable, "-c", script, moment, str(inbox), str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = sorted(p.name for p in out.iterdir())
    assert batch.LOCK_NAME in left and any(name.startswith(f".{PERIOD}.old-") for name in left)
    assert (PERIOD in left) == (moment == "in_place")

    again = _run(inbox, out)
    assert sorted(p.name for p in out.iterdir()) == [HISTORY_DIR, PERIOD, "history.sqlite"]  # nothing left behind
    [kept] = _history(out)
    assert _hashes(kept) == before  # the previous run survived the crash
    assert verify(out / PERIOD).ok and again.exit_code == 0
    actions = [r.action for r in again.housekeeping.repairs]
    if moment == "aside":  # the killed run's staging is removed, the previous run put back, then archived
        assert actions == ["removed_staging", "restored"] and again.housekeeping.archived == kept
    else:  # the killed run was complete: the rerun finds the same outputs in place
        assert actions == ["archived"] and again.housekeeping.unchanged


# ------------------------------------------------------------------------------ lock

@pytest.mark.parametrize("content", [b"", b"\x00\x00garbage", b"{\"pid\": 999999999, \"host\": \"x\"}"])
def test_a_lock_file_that_cannot_be_read_or_is_left_by_a_dead_run_never_blocks(tmp_path, content):
    (tmp_path / batch.LOCK_NAME).write_bytes(content)
    with output_lock(tmp_path) as lock:
        assert json.loads(lock.read_text("utf-8"))["pid"] == os.getpid()
    assert not (tmp_path / batch.LOCK_NAME).exists()


_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline.batch import output_lock

    with output_lock(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(300)
""")


def test_a_second_process_holding_the_lock_blocks_until_it_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BatchError) as raised:
            with output_lock(tmp_path):
                pass
        assert f"in use by another run (pid {holder.pid} on {os.uname().nodename})" in raised.value.en
        assert f"进程 {holder.pid}" in raised.value.zh
        inbox = small_company(tmp_path / "inbox")
        refused = CliRunner().invoke(main, ["run", str(inbox), "--period", PERIOD, "--out", str(tmp_path)])
        assert refused.exit_code == 2 and f"pid {holder.pid}" in refused.output
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / batch.LOCK_NAME).exists()  # a killed holder cannot remove it: it never blocks
    with output_lock(tmp_path):
        pass
    assert not (tmp_path / batch.LOCK_NAME).exists()


def test_a_lock_file_removed_while_waiting_is_not_trusted(tmp_path, monkeypatch):
    """A run that opened the lock file just before its holder removed it must not run on the
    removed file: it opens the path again and locks what is there now."""
    opened = []
    real_open = os.open

    def open_then_lose_race(path, *args):
        fd = real_open(path, *args)
        if str(path).endswith(batch.LOCK_NAME) and not opened:
            os.unlink(path)  # the previous holder releasing it in between
        opened.append(path)
        return fd

    monkeypatch.setattr(batch.os, "open", open_then_lose_race)
    with output_lock(tmp_path) as lock:
        assert lock.exists() and len(opened) == 2


def test_a_file_system_without_locks_is_named(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(BatchError) as raised:
        with output_lock(tmp_path):
            pass
    assert f"Cannot lock the output folder {tmp_path}" in raised.value.en and "does not support locks" in raised.value.en


def test_with_keep_runs_0_the_previous_run_is_kept_only_for_a_note_and_named_once(tmp_path):
    inbox, out = small_company(tmp_path / "inbox", mistake=True), tmp_path / "output"
    policy = "output: {keep_runs: 0}\n"
    _run(inbox, out, policy)
    (out / PERIOD / NOTE).write_text("note", encoding="utf-8")
    small_company(inbox)
    noted = _run(inbox, out, policy)
    [kept] = _history(out)
    assert [k.path for k in noted.housekeeping.kept] == [kept] and noted.housekeeping.pruned == []
    assert sum(NOTE in line for line in noted.housekeeping.lines("en")) == 1
    small_company(inbox, mistake=True)
    plain = _run(inbox, out, policy)  # the run before had no note: removed at once
    assert _history(out) == [kept] and len(plain.housekeeping.pruned) == 1
