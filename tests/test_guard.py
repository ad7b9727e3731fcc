"""No traceback, ever; workers die with their parent.

The signal tests run the real `kpi` in a subprocess on a company big enough that its workers
are still writing when the test strikes; the others run the command in-process with one
failure planted (a full disk, a read-only folder, a bug) and read what the person would see.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from company import PERIOD, small_company

from pipeline import batch, signals
from pipeline.cli import main
from pipeline.signals import Stopped, stop_on_signals
from pipeline.workers import WorkerDied, run_biggest_first

ROOT = Path(__file__).resolve().parent.parent
KPI = [sys.executable, "-c", "from pipeline.cli import entry; entry()"]
JOBS = 2

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, forks workers")


# ------------------------------------------------------------------------------ helpers

@pytest.fixture(scope="module")
def big_inbox(tmp_path_factory) -> Path:
    """1,200 employees: reading and scoring take about a second, writing another, on 2 cores."""
    inbox = tmp_path_factory.mktemp("big") / "inbox"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate.py"), str(inbox), "--employees", "1200",
                    "--jobs", "1"], check=True, capture_output=True, timeout=120)
    return inbox


@pytest.fixture(autouse=True)
def crash_reports(tmp_path, monkeypatch) -> Path:
    """Crash reports go under the test's folder, not the home folder."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state / "kpi"


def _children(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of the process's children, from /proc (the start time tells a reused pid apart)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for child in pids:
            start = _start_time(int(child))
            if start is not None:
                found.add((int(child), start))
    return found


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str) -> bool:
    """Running (not gone, not a zombie waiting to be reaped, not another process with the same pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] not in ("Z", "X") and fields[19] == start


def _start_run(inbox: Path, out: Path, *extra: str, env: dict | None = None,
               output=subprocess.PIPE) -> tuple[subprocess.Popen, set]:
    """Start `kpi run` and wait until its workers are writing into the staging folder; the
    process and its workers."""
    process = subprocess.Popen([*KPI, "run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", str(JOBS),
                                *extra], stdout=output, stderr=output, text=True, env={**os.environ, **(env or {})})
    staging = out / f".{PERIOD}.tmp-{process.pid}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        workers = _children(process.pid)
        if staging.exists() and len(workers) >= JOBS:
            return process, workers
        time.sleep(0.005)
    process.kill()
    out_text, err_text = process.communicate()
    pytest.fail(f"the run never reached its writers (exit {process.returncode}): {err_text[-2000:]}")


def _assert_gone(workers: set, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(*w) for w in workers):
        time.sleep(0.05)
    assert not [pid for pid, start in workers if _alive(pid, start)], "workers outlived the run"


def _assert_lock_free(out: Path) -> None:
    lock = out / batch.LOCK_NAME
    if lock.exists():  # a lock file may stay; nobody may hold it
        with open(lock, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _staging_left(out: Path) -> list[Path]:
    return list(out.glob(f".{PERIOD}.tmp-*")) if out.exists() else []


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _run(args: list[str]):
    return CliRunner().invoke(main, args)


# ------------------------------------------------------------------------------ signals, real processes

@linux_only
def test_kill_9_of_the_main_process_takes_its_workers_with_it(big_inbox, tmp_path):
    out = tmp_path / "out"
    # Output to nowhere: a pipe would also wait for workers that inherited it.
    process, workers = _start_run(big_inbox, out, output=subprocess.DEVNULL)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    try:
        _assert_gone(workers)
    finally:  # never leave one behind, even when the test fails
        for pid, start in workers:
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)


@linux_only
def test_sigterm_mid_run_stops_workers_removes_staging_and_releases_the_lock(big_inbox, tmp_path):
    out = tmp_path / "out"
    process, workers = _start_run(big_inbox, out)
    os.kill(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    line = _one_line(stderr)
    assert "SIGTERM" in line and "已停止" in line and "unfinished output was removed" in line
    _assert_gone(workers, within=1.0)  # stopped by the run itself, not by its death
    assert not _staging_left(out)
    assert not (out / PERIOD).exists()
    _assert_lock_free(out)


@linux_only
def test_a_second_ctrl_c_is_handled_like_the_first(big_inbox, tmp_path):
    out = tmp_path / "out"
    process, workers = _start_run(big_inbox, out, "--lang", "en")
    os.kill(process.pid, signal.SIGINT)
    time.sleep(0.01)
    try:
        os.kill(process.pid, signal.SIGINT)  # while the first one's cleanup runs
    except ProcessLookupError:
        pass
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGINT
    assert _one_line(stderr) == "kpi run stopped (Ctrl-C received); unfinished output was removed."
    _assert_gone(workers, within=1.0)
    assert not _staging_left(out)
    _assert_lock_free(out)


@linux_only
def test_a_worker_killed_mid_write_is_one_line_and_exit_3(big_inbox, tmp_path):
    out, state = tmp_path / "out", tmp_path / "state-sub"
    process, workers = _start_run(big_inbox, out, "--lang", "en", env={"XDG_STATE_HOME": str(state)})
    os.kill(min(workers)[0], signal.SIGKILL)  # what the out-of-memory killer does
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 3, stderr
    line = _one_line(stderr)
    assert line.startswith("kpi run stopped: a worker process was killed by SIGKILL before finishing")
    reports = list((state / "kpi").glob("crash-*.txt"))
    assert len(reports) == 1 and f"crash report: {reports[0]}" in line
    assert "BrokenProcessPool" in reports[0].read_text("utf-8")
    _assert_gone(workers, within=1.0)
    assert not _staging_left(out)


def _pdeathsig() -> int:
    import ctypes

    value = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(value))  # PR_GET_PDEATHSIG
    return value.value


def _handlers() -> tuple:
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@linux_only
def test_workers_are_set_to_die_with_their_parent_and_leave_signals_to_it():
    calls = [(1, _pdeathsig, ()), (1, _handlers, ())]
    assert run_biggest_first(calls, jobs=2) == [signal.SIGKILL, (signal.SIG_IGN, signal.SIG_IGN)]
    assert _pdeathsig() == 0  # the parent itself is left alone


@linux_only
def test_a_worker_that_dies_raises_worker_died_naming_the_signal():
    with pytest.raises(WorkerDied) as caught:
        run_biggest_first([(2, _die, ()), (1, time.sleep, (30,)), (1, time.sleep, (30,))], jobs=2)
    assert caught.value.exit_codes == [-signal.SIGKILL]
    assert "SIGKILL" in caught.value.en and "SIGKILL" in caught.value.zh


def test_sigterm_raises_once_and_a_repeat_does_not_interrupt_the_cleanup():
    before = _handlers()
    cleaned = []
    with pytest.raises(Stopped) as caught:
        with stop_on_signals():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # interrupted at once
            finally:
                os.kill(os.getpid(), signal.SIGINT)  # a second signal while cleaning up: ignored
                time.sleep(0.01)
                cleaned.append(True)
    assert caught.value.signum == signal.SIGTERM and caught.value.exit_code == 143
    assert cleaned == [True]
    assert _handlers() == before


def test_the_kpi_process_raises_on_the_first_signal_and_ignores_the_next():
    before = _handlers()
    try:
        signals.install()
        with pytest.raises(Stopped):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGTERM)  # after the first: ignored, nothing raised
        time.sleep(0.01)
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), before):
            signal.signal(signum, handler)


# ------------------------------------------------------------------------------ the environment fails

def test_disk_full_is_one_line_naming_the_file_and_exit_3(tmp_path, monkeypatch, crash_reports):
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"
    seen = []

    def full(path, *args, **kwargs):
        seen.append(path)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("pipeline.writers.summary_book.write_summary_workbook", full)
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 3
    line = _one_line(result.stderr)
    assert f"Disk full: could not write {seen[0]}; free some space and run again" in line
    assert "磁盘已满" in line
    assert "No space left on device" not in line  # the system's own text is not shown
    assert f"crash report: {next(crash_reports.glob('crash-*.txt'))}" in line
    assert not _staging_left(out)
    _assert_lock_free(out)


def test_disk_full_without_a_file_name_names_the_output_folder(tmp_path, monkeypatch):
    """A write that fails for a full disk names no file; xlsxwriter also wraps it in its own error."""
    from xlsxwriter.exceptions import FileCreateError

    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"

    def full(*args, **kwargs):
        raise FileCreateError(OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr("pipeline.writers.summary_book.write_summary_workbook", full)
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "1", "--lang", "en"])
    assert result.exit_code == 3
    line = _one_line(result.stderr)
    assert line.startswith(f"kpi run stopped. Disk full: could not write {out} (the output); free some space")


def _mount_small_disk(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        mounted = False
    return mounted


@linux_only
def test_a_really_full_disk_is_one_line_and_exit_3(tmp_path):
    """On a tiny filesystem mounted for the test (where this test may mount one)."""
    disk = tmp_path / "disk"
    if not _mount_small_disk(disk, "256k"):
        pytest.skip("cannot mount a small filesystem here")
    try:
        inbox = small_company(tmp_path / "inbox", mistake=True)
        filler = disk / "filler.bin"
        with open(filler, "wb") as handle:  # leave about 12 KB free: the lock fits, the workbooks do not
            handle.write(b"\0" * (256 - 12) * 1024)
        out = disk / "out"
        run = subprocess.run([*KPI, "run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "2",
                              "--lang", "en"], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})
        assert run.returncode == 3, run.stderr[-3000:]
        line = _one_line(run.stderr)
        assert line.startswith("kpi run stopped. Disk full: could not write ") and str(out) in line
        assert "crash report: " + str(tmp_path / "state" / "kpi") in line
        assert not _staging_left(out)
        assert not (out / PERIOD).exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)


def test_an_output_folder_under_a_file_is_one_line_and_exit_3(tmp_path):
    inbox = small_company(tmp_path / "inbox")
    blocker = tmp_path / "report.txt"
    blocker.write_text("not a folder", "utf-8")
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(blocker / "out"), "--lang", "en"])
    assert result.exit_code == 3
    line = _one_line(result.stderr)
    assert f"A part of {blocker / 'out'} is a file, not a folder; choose another folder." in line


def test_a_read_only_output_folder_is_one_line_and_exit_3(tmp_path, monkeypatch):
    """Tests run as root, whom chmod does not stop: the file system refuses instead."""
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "share"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(out)])
    assert result.exit_code == 3
    line = _one_line(result.stderr)
    assert f"{out} 在只读的文件系统上,无法写入" in line
    assert f"Read-only file system: could not write {out}; choose a writable folder with --out." in line


def test_permission_denied_is_one_line_naming_the_path_and_exit_3(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("pipeline.writers.summary_book.write_summary_workbook", denied)
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "1", "--lang", "en"])
    assert result.exit_code == 3
    line = _one_line(result.stderr)
    assert f"Permission denied: {out / f'.{PERIOD}.tmp-{os.getpid()}' / 'summary.xlsx'}; check the" in line


def test_an_output_folder_removed_during_the_run_is_one_line_and_exit_3(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"

    def gone(path, *args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))

    monkeypatch.setattr("pipeline.writers.summary_book.write_summary_workbook", gone)
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "1", "--lang", "en"])
    assert result.exit_code == 3
    assert "No such file or folder: " in _one_line(result.stderr)
    assert "check that its folder exists and can be reached" in result.stderr


@linux_only
def test_an_output_folder_that_cannot_be_made_is_one_line_and_exit_3(tmp_path):
    """/proc takes no new folders, whoever asks (root included)."""
    inbox = small_company(tmp_path / "inbox")
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", "/proc/kpi-no-such/out", "--lang", "en"])
    assert result.exit_code == 3
    assert _one_line(result.stderr).startswith("kpi run stopped. No such file or folder: /proc/kpi-no-such; check")


# ------------------------------------------------------------------------------ bugs

def test_an_unexpected_error_is_one_line_with_a_crash_report_holding_the_traceback(tmp_path, monkeypatch,
                                                                                   crash_reports):
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"

    def broken(*args, **kwargs):
        raise RuntimeError("internal detail 42")

    monkeypatch.setattr(batch, "score_period", broken)
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 3
    line = _one_line(result.stderr)
    assert "internal detail 42" not in line
    reports = list(crash_reports.glob("crash-*.txt"))
    assert len(reports) == 1
    assert line == (f"kpi run 意外出错(RuntimeError),已停止;详细信息见崩溃报告 {reports[0]},请把它发给维护者。 "
                    f"kpi run stopped on an unexpected error (RuntimeError); the details are in the crash report "
                    f"{reports[0]}: please send it to the maintainers.")
    report = reports[0].read_text("utf-8")
    assert "Traceback (most recent call last)" in report and "RuntimeError: internal detail 42" in report
    assert f"command: kpi run {inbox} --period {PERIOD} --out {out} --jobs 1" in report
    assert "kpi 0." in report and "pandas " in report and "Python 3." in report
    assert not _staging_left(out)
    _assert_lock_free(out)


def test_the_crash_report_falls_back_to_the_temporary_folder_then_to_nothing(tmp_path, monkeypatch):
    import tempfile

    inbox = small_company(tmp_path / "inbox")
    blocker = tmp_path / "blocker"
    blocker.write_text("", "utf-8")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker / "state"))  # cannot be a folder
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def broken(*args, **kwargs):
        raise ValueError("bug")

    monkeypatch.setattr(batch, "score_period", broken)
    args = ["run", str(inbox), "--period", PERIOD, "--out", str(tmp_path / "out"), "--lang", "en", "--jobs", "1"]
    result = _run(args)
    assert result.exit_code == 3
    reports = list(temp.glob("kpi-crash-*.txt"))
    assert len(reports) == 1 and f"crash report {reports[0]}" in _one_line(result.stderr)
    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "temp"))
    nowhere = _run(args)
    assert nowhere.exit_code == 3
    assert _one_line(nowhere.stderr) == ("kpi run stopped on an unexpected error (ValueError); "
                                         "no crash report could be written.")


def test_ctrl_c_inside_a_command_is_one_line_and_exit_130(tmp_path, monkeypatch):
    inbox = small_company(tmp_path / "inbox")
    out = tmp_path / "out"

    def interrupted(path, *args, **kwargs):
        assert path.parent.exists()  # while the staging folder is there
        raise KeyboardInterrupt

    monkeypatch.setattr("pipeline.writers.summary_book.write_summary_workbook", interrupted)
    result = _run(["run", str(inbox), "--period", PERIOD, "--out", str(out), "--lang", "en", "--jobs", "1"])
    assert result.exit_code == 130
    assert _one_line(result.stderr) == "kpi run stopped (Ctrl-C received); unfinished output was removed."
    assert not _staging_left(out)
    _assert_lock_free(out)


def test_an_error_before_any_command_runs_is_one_line_too(monkeypatch, capsys, crash_reports):
    """What escapes click itself (here: a command module that fails to import while `kpi --help`
    lists the commands) still reaches the person as one line from the `kpi` entry point, exit 3."""
    import pipeline.cli as cli

    monkeypatch.setitem(cli._LazyGroup.lazy, "broken", ("pipeline.no_such_module", "broken_command"))
    monkeypatch.setattr(sys, "argv", ["kpi", "--help"])
    codes = []
    monkeypatch.setattr(os, "_exit", lambda code: codes.append(code))
    before = _handlers()
    try:
        cli.entry()
    finally:
        for signum, handler in zip((signal.SIGINT, signal.SIGTERM), before):
            signal.signal(signum, handler)
    assert codes == [3]
    reports = list(crash_reports.glob("crash-*.txt"))
    assert len(reports) == 1 and "ModuleNotFoundError" in reports[0].read_text("utf-8")
    line = _one_line(capsys.readouterr().err)
    assert line.endswith(f"kpi stopped on an unexpected error (ModuleNotFoundError); the details are in the "
                         f"crash report {reports[0]}: please send it to the maintainers.")


def test_usage_errors_stay_exit_2(tmp_path):
    inbox = small_company(tmp_path / "inbox")
    unknown = _run(["run", str(inbox), "--period", PERIOD, "--no-such-option"])
    assert unknown.exit_code == 2 and "No such option" in unknown.stderr
    busy = tmp_path / "busy"
    with batch.output_lock(busy):
        held = _run(["run", str(inbox), "--period", PERIOD, "--out", str(busy), "--lang", "en"])
    assert held.exit_code == 2 and str(busy) in held.stderr and "Traceback" not in held.output


def test_a_message_meant_for_the_person_that_escapes_a_command_is_exit_2(tmp_path, monkeypatch):
    from pipeline.batch import BatchError

    def busy(*args, **kwargs):
        raise BatchError("输出目录正被占用。", "The output folder is in use.")

    monkeypatch.setattr(batch, "run_batch", busy)
    result = _run(["demo", str(tmp_path / "demo"), "--lang", "en"])
    assert result.exit_code == 2
    assert _one_line(result.stderr) == "The output folder is in use."


# ------------------------------------------------------------------------------ documented

def test_every_command_lists_the_exit_codes_in_its_help():
    names = main.list_commands(None)
    assert {"templates", "validate", "run", "weights", "diff", "verify", "trace", "demo"} <= set(names)
    for args in [[], *([name] for name in names)]:
        result = _run([*args, "--help"])
        assert result.exit_code == 0, args
        text = " ".join(result.output.split())
        assert "退出码 Exit codes:" in text, args
        assert "2 usage error or unreadable input" in text
        assert "3 the environment failed (disk full, no permission" in text, args


def test_readme_documents_the_exit_codes():
    readme = (ROOT / "README.md").read_text("utf-8")
    commands = readme[readme.index("## Commands"):readme.index("## Output layout")]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in commands
    assert "crash report" in commands


@pytest.mark.parametrize("jobs", [1, 2])
def test_meanwhile_runs_once_while_the_workers_work(jobs):
    """`meanwhile` runs in this process exactly once, whether the calls run here or in workers,
    and the results come back in the order given."""
    ran = []
    calls = [(1, abs, (-1,)), (3, abs, (-3,)), (2, abs, (-2,))]
    assert run_biggest_first(calls, jobs=jobs, meanwhile=lambda: ran.append(os.getpid())) == [1, 3, 2]
    assert ran == [os.getpid()]


def _touch(path: str) -> None:
    Path(path).touch()


def test_meanwhile_waits_until_a_worker_is_idle(tmp_path):
    """With two workers busy, `meanwhile` would slow them down: it runs once only the longest
    call is left (the two short ones, on the other worker, are done)."""
    short = [tmp_path / "a", tmp_path / "b"]
    seen = []
    calls = [(10, time.sleep, (0.6,)), (1, _touch, (str(short[0]),)), (1, _touch, (str(short[1]),))]
    run_biggest_first(calls, jobs=2, meanwhile=lambda: seen.append([p.exists() for p in short]))
    assert seen == [[True, True]]
