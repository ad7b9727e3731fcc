"""The output lock never goes stale."""

from __future__ import annotations

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

from pipeline import batch
from pipeline.batch import BatchError, output_lock
from pipeline.cli import main
from pipeline.policy import PolicyError, load_policy, parse_policy

NOTE = "经理批注.txt"
ROOT = Path(__file__).resolve().parents[1]


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


# ------------------------------------------------------------------------------ policy

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
