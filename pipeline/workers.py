"""Worker processes for the batch's two parallel stages: reading a big inbox, writing workbooks."""

from __future__ import annotations

import gc
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

_PENDING: list = []  # calls handed to forked workers by position, so no DataFrame is pickled


def _call(function: Callable, args: tuple):
    return function(*args)


def _call_pending(index: int):
    return _call(*_PENDING[index])


def run_biggest_first(calls: list[tuple[float, Callable, tuple]], jobs: int, progress=None) -> list:
    """`function(*args)` for every (cost, function, args); the results in the order given.

    Biggest cost first keeps every core busy to the end. With several `jobs` the calls run in
    worker processes: on Linux forked ones, which inherit the calls so only their positions
    cross the process boundary, with this process's objects frozen first so the workers'
    garbage collector leaves the pages they share alone; elsewhere spawned ones, sent the
    pickled calls. `progress(1)` after each call, in the order they are started.
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
        return collect(_call(calls[i][1], calls[i][2]) for i in order)
    workers = min(jobs, len(calls))
    if sys.platform.startswith("linux"):
        _PENDING = [(calls[i][1], calls[i][2]) for i in order]
        gc.collect()
        gc.freeze()
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
                return collect(pool.map(_call_pending, range(len(order)), chunksize=1))
        finally:
            _PENDING = []
            gc.unfreeze()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return collect(pool.map(_call, *zip(*[(calls[i][1], calls[i][2]) for i in order]), chunksize=1))
