"""Worker processes that read and bill parts of a large log.

Workers are forked from a server process (``forkserver``) that imported the billing
modules once, so that a worker starts at once instead of importing pandas and pyarrow
again. How many there are, where they come from and how work is mapped over them is
decided here; what they do is ``buckets``' business.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from rftcost.errors import InputError, WorkerError

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

__all__ = [
    "AUTO_BUCKET_EVENTS",
    "available_workers",
    "mapped",
    "pool_context",
    "start_workers",
]

AUTO_BUCKET_EVENTS = 2_000_000
"""Inputs with more events than this (counted or estimated) are billed in buckets."""
MAX_DEFAULT_WORKERS = 4
TEXT_BYTES_PER_EVENT = 150
"""Bytes per event of a text log, to estimate a count without reading."""
GZIP_BYTES_PER_EVENT = 20
"""Bytes per event of a gzipped text log (about 8 times smaller)."""
_WORKER_MODULES = ["rftcost.buckets", "rftcost.documents"]
"""What a worker runs: imported once by the server workers are forked from."""

_T = TypeVar("_T")
_R = TypeVar("_R")


def available_workers() -> int:
    """Processes bucketed billing uses for ``workers="auto"``: ``RFTCOST_WORKERS`` if set,
    else the CPUs this process may run on, at most 4."""
    setting = os.environ.get("RFTCOST_WORKERS", "").strip()
    if setting:
        try:
            count = int(setting)
        except ValueError:
            count = 0
        if count < 1:  # as --workers: a count of processes, one or more
            raise InputError(
                "not a whole number of processes (1 or more)", path="RFTCOST_WORKERS", value=setting
            )
        return count
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


def pool_context() -> BaseContext:
    """Where workers come from: forked from a server process that imported the billing
    modules once (``forkserver``), so a worker starts at once instead of importing pandas
    and pyarrow again; spawned where there is no such server (Windows). Never forked from
    this process, which may hold Arrow's threads."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_WORKER_MODULES)
    return context


def start_workers(workers: int) -> None:
    """Start the server workers are forked from (``pool_context``) now, for ``workers``
    processes, so that it imports the billing modules while this process goes on."""
    if workers > 1 and pool_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def mapped(function: Callable[[_T], _R], items: Sequence[_T], workers: int) -> Iterator[_R]:
    """``map(function, items)``, in order; in ``workers`` processes when more than one.

    Workers come from ``pool_context`` (not forked from this process: it may hold
    Arrow's threads), so a worker starts from a clean interpreter; the pool is shut
    down when the caller stops early.
    """
    if workers <= 1 or len(items) <= 1:
        yield from map(function, items)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    executor = ProcessPoolExecutor(
        max_workers=min(workers, len(items)),
        mp_context=pool_context(),
        initializer=_end_quietly_on_interrupt,
    )
    try:
        yield from executor.map(function, items)
    except BrokenProcessPool as exc:
        raise WorkerError(
            "a worker process ended before its part was billed (killed, or out of memory?);"
            " a script that bills with workers must guard its entry point with"
            ' `if __name__ == "__main__":`'
        ) from exc
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _end_quietly_on_interrupt() -> None:
    """A worker ends on Ctrl-C as a program without Python would, with no traceback: the
    command it works for reports the interruption, once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
