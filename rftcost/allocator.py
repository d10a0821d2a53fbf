"""The allocator of Arrow's buffers, chosen once per process by the command line.

pyarrow's default pool on Linux is mimalloc, which keeps memory that was freed mapped
for reuse: after reading a log of 1.6M events about 500 MiB stay resident that no
frame holds, and the peak of the bill grows by as much. jemalloc hands freed pages
back (measured on that log: a peak of 820 to 920 MiB instead of 1,110 MiB, and reading
no slower). jemalloc returns freed pages after a delay, 1 s by Arrow's default; at
0.1 s the peak of that bill falls by another 200 MiB (870-910 MiB instead of 1,090-1,130
MiB with today's faster kernel, measured on the idle 2-CPU machine), at no measurable
cost in time. The command line calls ``prefer_jemalloc`` before any work; a program
using the library keeps its own choice unless it calls it too.

NumPy asks the kernel for transparent huge pages on its large arrays. Where the kernel
then compacts memory to find them (``defrag`` set to ``madvise``, the usual default),
a fresh array costs several times what small pages cost once Arrow's reads have
fragmented memory: a 12.8 MB array took 24 ms to fill instead of 5 ms after reading
the 1.6M-event log, and the bill of that log took 1.82-1.98 s instead of 1.71-1.74 s
(system time 0.6-0.8 s instead of 0.5 s), measured alternately on the idle 2-CPU
machine. ``prefer_small_pages`` turns that request off for the command line's process
and its workers.

glibc, which allocates NumPy's and pandas' arrays, gives a large freed block back to the
system at once, and the next array of that size faults every page in again: on a
virtual machine whose page faults are costly that is more than the work done on them.
``keep_freed_memory`` has glibc keep freed memory for reuse in a command's process (the
1.6M-event bill: a median of 1.70 s instead of 1.85 s over 12 alternating runs; its peak
grows a little, 818 to 878 MiB, freed blocks being reused rather than returned).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "ARROW_JEMALLOC_VARIABLE",
    "ARROW_POOL_VARIABLE",
    "NUMPY_HUGEPAGE_VARIABLE",
    "keep_freed_memory",
    "prefer_jemalloc",
    "prefer_small_pages",
]

ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
"""Arrow's own setting of its default pool, read when pyarrow is imported."""
ARROW_JEMALLOC_VARIABLE = "JE_ARROW_MALLOC_CONF"
"""The settings of Arrow's jemalloc, read when it makes its first allocation."""
NUMPY_HUGEPAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"
"""NumPy's own setting of whether it asks for huge pages, read when numpy is imported."""
_DECAY_MS = 100
"""How long jemalloc keeps freed pages before handing them back (Arrow's default: 1 s)."""


def prefer_jemalloc() -> bool:
    """Make jemalloc the default Arrow pool of this process and of the processes it
    spawns (bucket workers), unless ``ARROW_DEFAULT_MEMORY_POOL`` already says which,
    or this pyarrow was built without it. Whether jemalloc is now the default."""
    chosen = os.environ.get(ARROW_POOL_VARIABLE)
    if chosen:
        return chosen == "jemalloc"
    if "pyarrow" not in sys.modules:
        built = _built_with_jemalloc()
        if built is not None:
            # Not imported yet (0.1 s a command like `policy show` never needs): the
            # variable makes jemalloc its default pool when it is, here and in workers.
            if built:
                os.environ[ARROW_POOL_VARIABLE] = "jemalloc"
                _prefer_short_decay()
            return built
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a build without it: Arrow's default stays
        return False
    pa.set_memory_pool(pool)
    # Spawned processes import pyarrow afresh: the variable makes it their default too
    # (set only now that this build is known to have it, so no warning is printed).
    os.environ[ARROW_POOL_VARIABLE] = "jemalloc"
    if _prefer_short_decay():
        pa.jemalloc_set_decay_ms(_DECAY_MS)  # this process's pool may have begun already
    return True


def prefer_small_pages() -> bool:
    """Have NumPy not ask for transparent huge pages, in this process and the processes it
    spawns, unless ``NUMPY_MADVISE_HUGEPAGE`` already says; whether the setting now says
    so. NumPy reads it when imported: once it is, the setting is left as it is."""
    if "numpy" not in sys.modules:
        os.environ.setdefault(NUMPY_HUGEPAGE_VARIABLE, "0")
    return os.environ.get(NUMPY_HUGEPAGE_VARIABLE) == "0"


def keep_freed_memory() -> bool:
    """Have glibc keep the memory this process frees for its next allocations (no block
    mapped apart, none trimmed); whether it now does. A process that ends: ``watch``,
    which runs for days, does not call it. Other C libraries (musl) keep their ways."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    trim_threshold, top_pad, mmap_max = (
        -1,
        -2,
        -4,
    )  # glibc's M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX
    return all(
        mallopt(option, value) == 1
        for option, value in ((mmap_max, 0), (trim_threshold, 2**31 - 1), (top_pad, 2**28))
    )


def _prefer_short_decay() -> bool:
    """Freed pages handed back after ``_DECAY_MS`` here and in spawned workers, unless
    ``JE_ARROW_MALLOC_CONF`` already says otherwise; whether it is now so."""
    if os.environ.get(ARROW_JEMALLOC_VARIABLE):
        return False
    os.environ[ARROW_JEMALLOC_VARIABLE] = f"dirty_decay_ms:{_DECAY_MS},muzzy_decay_ms:{_DECAY_MS}"
    return True


def _built_with_jemalloc() -> bool | None:
    """Whether the installed pyarrow was built with jemalloc, from the build settings it
    ships (``include/arrow/util/config.h``) without importing it; ``None``: not known."""
    from importlib.util import find_spec

    spec = find_spec("pyarrow")
    folders = spec.submodule_search_locations if spec is not None else None
    if not folders:
        return None
    config = Path(next(iter(folders))) / "include" / "arrow" / "util" / "config.h"
    try:
        settings = config.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return any(line.split() == ["#define", "ARROW_JEMALLOC"] for line in settings)
