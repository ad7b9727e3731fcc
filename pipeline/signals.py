"""Stopping cleanly: SIGTERM and a repeated Ctrl-C take the same way out as the first Ctrl-C.

Python turns only SIGINT into an exception; SIGTERM (what `kill`, cron timeouts and service
managers send) ends the process at once, leaving the staging folder, the lock and the workers
behind. Inside `stop_on_signals` both raise `Stopped`, so every `finally` and `except
BaseException` on the way out runs; a further signal while that cleanup runs is ignored instead
of interrupting it half-way.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Shared by nested uses (the command's guard around a run's own): once one has raised, every
# level lets the cleanup finish.
_state: dict[str, Any] = {"depth": 0, "stopping": None, "previous": {}}


class Stopped(KeyboardInterrupt):
    """Raised in the main process when SIGINT or SIGTERM arrives (a KeyboardInterrupt, so code
    that already cleans up after Ctrl-C cleans up after SIGTERM too)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum


def _on_signal(signum, frame) -> None:
    if _state["stopping"] is not None:  # already on the way out: let the cleanup finish
        return
    _state["stopping"] = signum
    raise Stopped(signum)


def install() -> None:
    """For the `kpi` process itself: from now on SIGINT and SIGTERM raise `Stopped` once, and
    are ignored after that, with nothing restored at the end (no moment where a second signal
    meets Python's default handler and prints a traceback on the way out)."""
    _state["stopping"] = None
    for s in SIGNALS:
        signal.signal(s, _on_signal)


def ignore() -> None:
    """Leaving the process: signals no longer interrupt anything."""
    if _state["stopping"] is None:
        _state["stopping"] = 0
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


@contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM raise `Stopped` while inside; the previous handlers come back after.

    Only the main thread can install handlers: elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state["depth"] == 0:
        _state["stopping"] = None
        _state["previous"] = {s: signal.signal(s, _on_signal) for s in SIGNALS}
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            for s, handler in _state["previous"].items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)
            _state["previous"] = {}


@contextmanager
def signals_held():
    """SIGINT and SIGTERM wait (blocked) while inside, then arrive: used around forking workers,
    which inherit the mask and so cannot be interrupted before they have set their own handlers."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
