"""Worker processes that read and bill parts of a large log.

Workers are forked from a server process (``forkserver``) that imported the billing
modules once, so that a worker starts at once instead of importing pandas and pyarrow
again. This module imports neither, so that a command can start that server first and
import the billing modules itself while the server does (``start_early``): on two
cores the two imports overlap instead of following each other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rftcost.errors import InputError, WorkerError

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

__all__ = [
    "AUTO_BUCKET_EVENTS",
    "available_workers",
    "mapped",
    "pool_context",
    "start_early",
    "start_workers",
]

AUTO_BUCKET_EVENTS = 2_000_000
"""Inputs with more events than this (counted or estimated) are billed in buckets."""
MAX_DEFAULT_WORKERS = 4
TEXT_BYTES_PER_EVENT = 150
"""Bytes per event of a text log, to estimate a count without reading."""
GZIP_BYTES_PER_EVENT = 20
"""Bytes per event of a gzipped text log (about 8 times smaller)."""
_PARQUET_BYTES_PER_EVENT = 12
"""Bytes per event of a Parquet log (simulated logs: 12-13), for ``start_early`` only:
the count that decides is read from the files' metadata."""
_LOG_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".json", ".csv", ".gz")
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


def start_early(paths: Iterable[str | Path], workers: int) -> None:
    """Start the workers' server before this process imports the billing modules, when
    ``paths`` look large enough to be billed in parts (their size, not their records:
    a wrong guess costs one idle server, and the count read later decides)."""
    if workers > 1 and _rough_events(paths) > AUTO_BUCKET_EVENTS:
        start_workers(workers)


def _rough_events(paths: Iterable[str | Path]) -> int:
    """Events that files of these sizes hold, about; unreadable paths count as none
    (the readers name them)."""
    total = 0
    for given in paths:
        path = Path(given)
        try:
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for file in files:
                name = file.name.lower()
                if not name.endswith(_LOG_SUFFIXES):
                    continue
                per_event = (
                    _PARQUET_BYTES_PER_EVENT
                    if name.endswith(".parquet")
                    else GZIP_BYTES_PER_EVENT
                    if name.endswith(".gz")
                    else TEXT_BYTES_PER_EVENT
                )
                total += file.stat().st_size // per_event
        except OSError:
            continue
    return total


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
