"""How much time and memory does writing a large bill take?

    python benchmarks/bench_outputs.py                      # 1,000,000 jobs, json and csv
    python benchmarks/bench_outputs.py --jobs 200000 --formats json
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_outputs.py   # compare code

A Parquet log of ``--jobs`` small jobs is written once (cached in
``benchmarks/.cache/`` by size): each job has ``--events-per-job`` events, by
default 2 (``job_created`` and ``succeeded``: one charge, every field of the
document present), so 1,000,000 jobs make 2,000,000 events, billed in memory
(at most ``buckets.AUTO_BUCKET_EVENTS``); with 4 (a ``rollout`` phase too) the
same jobs make 4,000,000 events, billed in buckets as a user gets it.

Then, for each format, ``rftcost bill FILE --format FORMAT --output /dev/null``
runs in its own process, measured as ``bench_bill.py`` measures: wall time around
the process, peak memory the largest sum of the resident sets of the process and
its children (sampled every 50 ms) or the process's own maximum resident set,
whichever is larger. The code measured is the ``rftcost`` that the interpreter
imports (``PYTHONPATH`` first), so the same script measures two checkouts.

Target (issue 16): ``bill -f json`` of 1,000,000 jobs within 1.5 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_bill import Measurement, run_measured  # noqa: E402

DEFAULT_CACHE = HERE / ".cache"
TARGET_PEAK_BYTES = int(1.5 * 2**30)
_CHUNK_JOBS = 250_000


def write_log(path: Path, n_jobs: int, events_per_job: int) -> None:
    """``n_jobs`` small jobs as Parquet, a chunk of jobs at a time (timestamps in µs, UTC)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".tmp")
    writer: pq.ParquetWriter | None = None
    start_us = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z
    teams = np.array(["search", "support", "ads", None], dtype=object)
    try:
        for first in range(0, n_jobs, _CHUNK_JOBS):
            count = min(_CHUNK_JOBS, n_jobs - first)
            number = np.arange(first, first + count)
            ids = np.char.add("ftjob-", np.char.zfill(number.astype(str), 8)).astype(object)
            created = start_us + number * 30_000_000  # a job every 30 s
            duration = 600_000_000 + (number % 97) * 60_000_000
            if events_per_job == 2:
                times = [created, created + duration]
                events = ["job_created", "succeeded"]
                phases: list[str | None] = [None, None]
            else:
                times = [created, created + 60_000_000, created + duration, created + duration]
                events = ["job_created", "phase_start", "phase_end", "succeeded"]
                phases = [None, "rollout", "rollout", None]
            rows = len(events) * count
            first_row = np.zeros(rows, dtype=bool)
            first_row[:: len(events)] = True
            team = np.where(first_row, np.repeat(teams[number % len(teams)], len(events)), None)
            table = pa.table(
                {
                    "job_id": pa.array(np.repeat(ids, len(events)), pa.string()),
                    "ts": pa.array(np.stack(times, axis=1).ravel(), pa.timestamp("us", tz="UTC")),
                    "event": pa.array(np.tile(np.array(events, dtype=object), count), pa.string()),
                    "phase": pa.array(np.tile(np.array(phases, dtype=object), count), pa.string()),
                    "team": pa.array(team, pa.string()),
                    "model": pa.array(np.where(first_row, "o4-mini-2025-04-16", None), pa.string()),
                    "data_sharing": pa.array(
                        np.where(first_row, (np.repeat(number, len(events)) % 2) == 0, None),
                        pa.bool_(),
                    ),
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)


def cached_log(n_jobs: int, events_per_job: int, cache: Path) -> Path:
    """The benchmark's log, written once per size, by a process of its own: a measured
    command's maximum resident set counts the memory of the process that started it (the
    kernel records the launcher's at the fork), so the launcher must stay small."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"small-jobs-{n_jobs}-{events_per_job}ev.parquet"
    if not path.exists():
        script = str(Path(__file__).resolve())
        subprocess.run(
            [sys.executable, script, "--write-log", str(path), str(n_jobs), str(events_per_job)],
            check=True,
        )
    return path


def measure(path: Path, output_format: str, options: list[str]) -> Measurement:
    """``rftcost bill PATH --format FORMAT --output /dev/null`` in its own process."""
    command = [
        sys.executable,
        "-m",
        "rftcost",
        "bill",
        str(path),
        "--format",
        output_format,
        "--output",
        os.devnull,
        *options,
    ]
    return run_measured(f"bill -f {output_format}", command)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--write-log"]:  # cached_log's own process
        write_log(Path(arguments[1]), int(arguments[2]), int(arguments[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the log")
    parser.add_argument("--events-per-job", type=int, choices=(2, 4), default=2)
    parser.add_argument("--formats", nargs="+", default=["json", "csv"], choices=["json", "csv"])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("options", nargs="*", help="more options for rftcost bill (after --)")
    args = parser.parse_args(argv)

    import rftcost

    path = cached_log(args.jobs, args.events_per_job, args.cache)
    print(
        f"rftcost from {Path(rftcost.__file__).parent}; log {path.name}"
        f" ({args.jobs:,} jobs, {args.jobs * args.events_per_job:,} events)",
        file=sys.stderr,
    )
    results = []
    for output_format in args.formats:
        result = measure(path, output_format, args.options)
        results.append(result)
        peak_gib = result.peak_bytes / 2**30
        verdict = ""
        if output_format == "json":
            verdict = "  (target ≤ 1.50 GiB: " + (
                "met)" if result.peak_bytes <= TARGET_PEAK_BYTES else "NOT met)"
            )
        status = "" if result.ok else f"  FAILED {result.error}"
        print(
            f"bill -f {output_format:4}  {result.wall_seconds:7.1f} s  peak {peak_gib:5.2f} GiB"
            f"{verdict}{status}"
        )
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "format": f,
                        "wall_seconds": r.wall_seconds,
                        "peak_bytes": r.peak_bytes,
                        "ok": r.ok,
                    }
                    for f, r in zip(args.formats, results, strict=True)
                ]
            )
        )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
