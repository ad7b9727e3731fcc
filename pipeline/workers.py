"""Worker processes for the batch's two parallel stages: reading a big inbox, writing workbooks.

Workers never outlive the run: on Linux the kernel kills each one when the process that forked
it dies, however it dies (`kill -9` included); elsewhere a thread in each worker watches the
parent. Workers ignore Ctrl-C and SIGTERM, which the main process handles: it kills them, so
nothing is left writing into a staging folder that is being removed.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_for_futures
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait as wait_for
from typing import Callable, Sequence

from pipeline.guard import EnvironmentFailure
from pipeline.signals import signals_held

_PENDING: list = []  # calls handed to forked workers by position, so no DataFrame is pickled

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WorkerDied(EnvironmentFailure):
    """A worker process ended without finishing its work: killed (often for lack of memory) or crashed."""

    def __init__(self, exit_codes: list[int]):
        self.exit_codes = exit_codes
        signals = sorted({signal.Signals(-code).name for code in exit_codes if code < 0 and -code in signal.valid_signals()})
        if signals:
            how_zh = f"被信号 {', '.join(signals)} 终止"
            how_en = f"was killed by {', '.join(signals)}"
        elif exit_codes:
            codes = ", ".join(map(str, sorted(set(exit_codes))))
            how_zh, how_en = f"以退出码 {codes} 退出", f"exited with code {codes}"
        else:
            how_zh, how_en = "意外退出", "ended unexpectedly"
        super().__init__(
            f"一个工作进程{how_zh},本次运行未完成(常见原因:内存不足,或被其他程序结束)。"
            "请减少 --jobs 或释放内存后重新运行。",
            f"a worker process {how_en} before finishing, so the run did not complete (often memory "
            "ran out, or another program ended it). Run again, with fewer --jobs or more free memory.")


def _call(function: Callable, args: tuple):
    return function(*args)


def _call_pending(index: int):
    return _call(*_PENDING[index])


def _exit_with(parent) -> None:  # pragma: no cover - the watch used where there is no prctl
    parent.join()
    os._exit(1)


def _worker_started(parent_pid: int) -> None:
    """In each worker, first: die with the parent, and leave Ctrl-C and SIGTERM to it."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover - no prctl in this libc
            pass
        if os.getppid() != parent_pid:  # the parent died between the fork and prctl
            os._exit(1)
    else:  # pragma: no cover - spawned workers: a thread waits on the parent's sentinel
        parent = multiprocessing.parent_process()
        if parent is not None:
            threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    if hasattr(signal, "pthread_sigmask"):  # forked with the signals held (`signals_held`)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))


class _Workers:
    """A process pool whose workers die with this process and are killed, not awaited, when the
    caller stops early (an error, Ctrl-C, SIGTERM): a stopped run must not wait for, or leave
    behind, workers still writing into its staging folder."""

    def __init__(self, method: str, count: int):
        self.pool = ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context(method),
                                        initializer=_worker_started, initargs=(os.getpid(),))
        self.processes: list = []
        self.futures: list = []
        self.count = count

    def map(self, function: Callable, *iterables):
        """Results in order, as they come. Unlike `Executor.map`, leaving early cancels nothing:
        the pool's own thread fails what is pending once the workers are killed, and a future
        cancelled under it makes that thread die with a traceback (Python 3.11)."""
        with signals_held():  # forks (fork) or spawns (spawn) every worker while submitting
            futures = [self.pool.submit(function, *args) for args in zip(*iterables)]
            self.processes = list(getattr(self.pool, "_processes", {}).values())
        self.futures = list(futures)
        futures.reverse()
        return self._results(futures)  # submitted now, so the workers work while the caller goes on

    def until_one_is_idle(self) -> None:
        """Wait until fewer calls are left than there are workers (one of them has nothing to do),
        so work done here then does not slow the workers down."""
        pending = [f for f in self.futures if not f.done()]
        while len(pending) >= self.count:
            wait_for_futures(pending, return_when=FIRST_COMPLETED)
            pending = [f for f in pending if not f.done()]

    @staticmethod
    def _results(futures: list):
        while futures:
            yield futures.pop().result()  # each result is let go of once taken

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.pool.shutdown(wait=True)
            return False
        died = self.ended() if isinstance(exc, BrokenProcessPool) else []  # before the others are killed
        self.stop()
        if isinstance(exc, BrokenProcessPool):
            raise WorkerDied([p.exitcode for p in died if p.exitcode not in (None, 0)]) from exc
        return False

    def ended(self) -> list:
        """The workers that have ended. By their sentinels, not `exitcode`: the pool's own thread
        may be reaping one at this moment, and `exitcode` then reads None."""
        sentinels = {}
        for process in self.processes:
            try:
                sentinels[process.sentinel] = process
            except ValueError:  # pragma: no cover - closed by the pool already
                pass
        return [sentinels[ready] for ready in wait_for(list(sentinels), timeout=0)]

    def stop(self) -> None:
        processes = self.processes or list(getattr(self.pool, "_processes", {}).values())
        for process in processes:
            try:
                process.kill()
            except Exception:  # already gone
                pass
        for process in processes:
            try:
                process.join(timeout=5)
            except Exception:  # pragma: no cover - reaped by the pool's own thread meanwhile
                pass
        self.pool.shutdown(wait=False)


def run_biggest_first(calls: Sequence[tuple[float, Callable, tuple]], jobs: int, progress=None,
                      meanwhile: Callable[[], object] | None = None) -> list:
    """`function(*args)` for every (cost, function, args); the results in the order given.

    Biggest cost first keeps every core busy to the end. With several `jobs` the calls run in
    worker processes: on Linux forked ones, which inherit the calls so only their positions
    cross the process boundary, with this process's objects frozen first so the workers'
    garbage collector leaves the pages they share alone; elsewhere spawned ones, sent the
    pickled calls. `progress(1)` after each call, in the order they are started. A worker that
    dies raises `WorkerDied`. `meanwhile()` runs here once a worker has nothing left to do, while the
    others still work (first, without workers).
    """
    global _PENDING
    order = sorted(range(len(calls)), key=lambda i: -calls[i][0])
    results: list = [None] * len(calls)

    def collect(values) -> list:
        for i, value in zip(order, values):
            results[i] = value
            if progress:
                progress(1)
        return results

    if jobs <= 1 or len(calls) <= 1:
        if meanwhile:
            meanwhile()
        return collect(_call(calls[i][1], calls[i][2]) for i in order)
    workers = min(jobs, len(calls))
    if sys.platform.startswith("linux"):
        _PENDING = [(calls[i][1], calls[i][2]) for i in order]
        gc.collect()
        gc.freeze()
        try:
            with _Workers("fork", workers) as pool:
                values = pool.map(_call_pending, range(len(order)))
                if meanwhile:
                    pool.until_one_is_idle()
                    meanwhile()
                return collect(values)
        finally:
            _PENDING = []
            gc.unfreeze()
    with _Workers("spawn", workers) as pool:
        values = pool.map(_call, *zip(*[(calls[i][1], calls[i][2]) for i in order]))
        if meanwhile:
            pool.until_one_is_idle()
            meanwhile()
        return collect(values)
