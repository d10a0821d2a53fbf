"""How fast does ``rftcost bill`` run, and how much memory does it take?

    python benchmarks/bench_bill.py                        # 1M events
    python benchmarks/bench_bill.py --events 1000000 10000000
    python benchmarks/bench_bill.py --events 1600000 --compare   # rftcost/DuckDB, same run

For each size, on the same Parquet file of simulated events (``rftcost.simulate``,
cached in ``benchmarks/.cache/`` by size and seed, so a second run reuses it):

(a) ``pandas``: read the Parquet file into a DataFrame: the floor of any pandas tool;
(b) ``duckdb``: one SQL query that computes only the per-job wall-clock union of the
    billable phases (pair starts and ends per job and phase in time order, merge
    overlapping intervals per job with gaps-and-islands, sum): the core of R1 in a
    columnar engine, without lost work, segments, prices or money;
(c) ``rftcost``: ``rftcost bill FILE --format json --output /dev/null``, end to end
    (bucketed and in worker processes above 2M events, as a user gets it);
(d) ``spark`` (``--only spark``): the same command with ``--engine spark`` on
    ``local[2]``, and its overhead over (c).

Each measurement runs in its own process; its wall time is measured around the process
and its peak memory is the largest sum of the resident set sizes of the process and its
children (worker processes, Spark's JVM), sampled every 50 ms, or the process's own
maximum resident set size (``os.wait4``) if larger. The printout gives events per
second, the ratios rftcost/duckdb and rftcost/pandas-read, and the targets of issue 16:
rftcost within 2× of DuckDB (goal 1.5×) and <= 1 GiB peak up to 2M events; 10M events
in <= 10 s (pro rata at other sizes) and < 4 GiB peak; 50M events in <= 60 s and
<= 1.7 GiB peak. ``--compare`` runs only DuckDB and rftcost, interleaved, twice.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / ".cache"

# The targets of issue 16 (the figures measured against them: README.md).
TARGET_EVENTS = 10_000_000
TARGET_SECONDS = 10.0
TARGET_PEAK_BYTES = 4 * 2**30
TARGET_DUCKDB_RATIO = 2.0
GOAL_DUCKDB_RATIO = 1.5
IN_MEMORY_EVENTS = 2_000_000  # up to here one process bills in memory
IN_MEMORY_PEAK_BYTES = 2**30
LARGE_EVENTS = 50_000_000
LARGE_SECONDS = 60.0
LARGE_PEAK_BYTES = int(1.7 * 2**30)

BILLABLE_PHASES = ("rollout", "grading", "update", "validation")
CHUNK_EVENTS = 2_000_000  # events generated per simulate_jobs call: bounds generation memory

# Per job: pair the k-th start with the k-th end of each billable phase, then merge the
# intervals that overlap (an interval starts a new island when it begins after the
# furthest end seen so far) and add up the islands. Unclosed phases are left out.
UNION_SQL = """
WITH marks AS (
    SELECT job_id, phase, event, ts,
           row_number() OVER (PARTITION BY job_id, phase, event ORDER BY ts) AS k
    FROM read_parquet(?)
    WHERE event IN ('phase_start', 'phase_end') AND phase IN ({phases})
),
intervals AS (
    SELECT s.job_id, s.ts AS start_ts, e.ts AS end_ts
    FROM marks s
    JOIN marks e ON e.job_id = s.job_id AND e.phase = s.phase AND e.k = s.k
    WHERE s.event = 'phase_start' AND e.event = 'phase_end'
),
reach AS (
    SELECT job_id, start_ts, end_ts,
           max(end_ts) OVER (
               PARTITION BY job_id ORDER BY start_ts, end_ts
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS furthest
    FROM intervals
),
islands AS (
    SELECT job_id, start_ts, end_ts,
           sum(CASE WHEN furthest IS NULL OR start_ts > furthest THEN 1 ELSE 0 END) OVER (
               PARTITION BY job_id ORDER BY start_ts, end_ts ROWS UNBOUNDED PRECEDING
           ) AS island
    FROM reach
),
merged AS (
    SELECT job_id, island, min(start_ts) AS island_start, max(end_ts) AS island_end
    FROM islands
    GROUP BY job_id, island
)
SELECT job_id, sum(epoch_us(island_end) - epoch_us(island_start)) / 1e6 AS billable_seconds
FROM merged
GROUP BY job_id
""".format(phases=", ".join(f"'{p}'" for p in BILLABLE_PHASES))


# --- the measured work (each runs in a child process) ------------------------------------------


def _measure_pandas(path: Path) -> dict[str, Any]:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_parquet(path)
    return {"work_seconds": time.perf_counter() - started, "rows": len(frame)}


def _measure_duckdb(path: Path, threads: int | None) -> dict[str, Any]:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    rows = con.execute(UNION_SQL, [str(path)]).fetchall()
    seconds = time.perf_counter() - started
    setting = con.execute("SELECT current_setting('threads')").fetchone()
    return {
        "work_seconds": seconds,
        "jobs": len(rows),
        "billable_hours": sum(r[1] for r in rows) / 3600,
        "threads": setting[0] if setting else None,
    }


def _generate(n_events: int, seed: int, path: Path, jobs: int | None = None) -> dict[str, Any]:
    """Simulated events, about ``n_events`` of them, written in chunks of whole jobs.

    With ``jobs``, that many jobs, each with its training file scaled so that the jobs
    hold about ``n_events`` together (longer jobs: fewer per-job costs per event).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rftcost.simulate import random_settings, simulate_jobs

    started = time.perf_counter()
    per_job = len(simulate_jobs(n_jobs=2_000, seed=seed)) / 2_000
    scale = 1.0
    if jobs is not None:
        sample = random_settings(np.random.default_rng(seed), 400)
        for _ in range(6):  # events grow about in step with the steps
            scaled = [_scaled(s, scale) for s in sample]
            per_job = len(simulate_jobs(scaled, seed=seed)) / len(sample)
            scale *= (n_events / jobs) / per_job
        per_job = n_events / jobs
    n_jobs = jobs or max(1, round(n_events / per_job))
    chunk_jobs = max(1, int(CHUNK_EVENTS / per_job))
    written = 0
    tmp = path.with_suffix(".tmp")
    writer: pq.ParquetWriter | None = None
    try:
        for index, first in enumerate(range(0, n_jobs, chunk_jobs)):
            count = min(chunk_jobs, n_jobs - first)
            settings = None
            if jobs is not None:
                drawn = random_settings(np.random.default_rng(seed * 1_000_003 + index), count)
                settings = [_scaled(s, scale) for s in drawn]
            frame = simulate_jobs(
                settings,
                n_jobs=count,
                seed=seed * 1_000_003 + index,
                start="2025-01-01T00:00:00Z",
                end="2026-01-01T00:00:00Z",
            )
            table = pa.Table.from_pandas(frame, preserve_index=False)
            # As write_events stores it: timestamp[us, UTC].
            ts = table.schema.get_field_index("ts")
            table = table.set_column(ts, "ts", table["ts"].cast(pa.timestamp("us", tz="UTC")))
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            written += len(frame)
            del frame, table
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return {"work_seconds": time.perf_counter() - started, "events": written, "jobs": n_jobs}


def _scaled(settings: Any, scale: float) -> Any:
    """``settings`` with its training file ``scale`` times as long (at least one example)."""
    examples = max(1, round(settings.n_train_examples * scale))
    return settings.model_copy(update={"n_train_examples": examples})


def _child(argv: list[str]) -> None:
    """Entry point of a measuring child: run one measurement, print its JSON."""
    kind, path = argv[0], Path(argv[1])
    if kind == "pandas":
        result = _measure_pandas(path)
    elif kind == "duckdb":
        result = _measure_duckdb(path, int(argv[2]) if len(argv) > 2 else None)
    elif kind == "generate":
        jobs = int(argv[4]) if len(argv) > 4 else None
        result = _generate(int(argv[2]), int(argv[3]), path, jobs)
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    print(json.dumps(result))


# --- running children --------------------------------------------------------------------------


@dataclass
class Measurement:
    """One measured process."""

    name: str
    wall_seconds: float
    peak_bytes: int
    ok: bool
    detail: dict[str, Any]
    error: str = ""
    cpu_seconds: float = 0.0
    """User + system CPU time of the process and its descendants (workers included): on
    a loaded machine a steadier figure than the wall time."""


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _tree_rss(pid: int, cpu: dict[int, float] | None = None) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux ``/proc``; 0 elsewhere);
    each one's CPU seconds so far go into ``cpu`` (by pid)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    pending.extend(int(child) for child in handle.read().split())
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            if cpu is not None:
                with open(f"/proc/{current}/stat") as handle:
                    fields = handle.read().rpartition(")")[2].split()
                cpu[current] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # the process ended while being looked at
    return total


@functools.cache
def compile_bytecode() -> None:
    """Compile rftcost's modules to bytecode once, before anything is measured.

    An installed package has its bytecode (pip writes it); a checkout run where
    ``PYTHONDONTWRITEBYTECODE`` is set (some containers and CI images) would compile
    every module again in every measured command, about 0.1-0.15 s of start-up that no
    installed copy pays.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("rftcost")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def run_measured(name: str, command: list[str], env: dict[str, str] | None = None) -> Measurement:
    """Run ``command``; its wall time and the peak memory of it and its children."""
    compile_bytecode()  # once (cached)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=out, stderr=err, env={**os.environ, **(env or {})}
        )
        tree_peak = 0
        tree_cpu: dict[int, float] = {}
        done = threading.Event()

        def sample() -> None:
            nonlocal tree_peak
            while not done.wait(0.05):
                tree_peak = max(tree_peak, _tree_rss(process.pid, tree_cpu))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    own_peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # Linux: KiB
    peak = max(own_peak, tree_peak)
    # Workers forked from a server process are not the command's own children: their
    # CPU is the last sampled (up to 50 ms of each process's end is missed).
    cpu = max(usage.ru_utime + usage.ru_stime, sum(tree_cpu.values()))
    if process.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        error = f"exit {process.returncode}: " + (" | ".join(lines[-3:]) or "(no stderr)")
        return Measurement(name, wall, peak, ok=False, detail={}, error=error, cpu_seconds=cpu)
    detail: dict[str, Any] = {}
    last = stdout.strip().splitlines()[-1:] if stdout.strip() else []
    if last and last[0].startswith("{"):
        detail = json.loads(last[0])
    return Measurement(name, wall, peak, ok=True, detail=detail, cpu_seconds=cpu)


def _self(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", *args]


def _rftcost_command(path: Path, *options: str, output: str = "json") -> list[str]:
    script = Path(sys.executable).with_name("rftcost")
    entry = [str(script)] if script.exists() else [sys.executable, "-m", "rftcost"]
    return [*entry, "bill", str(path), "--format", output, "--output", os.devnull, *options]


def _best(runs: list[Measurement]) -> Measurement:
    """The fastest completed run of one measurement (peak: the largest of them all)."""
    done = [m for m in runs if m.ok]
    if not done:
        return runs[-1]
    fastest = min(done, key=lambda m: m.wall_seconds)
    peak = max(m.peak_bytes for m in done)
    return Measurement(
        fastest.name,
        fastest.wall_seconds,
        peak,
        True,
        fastest.detail,
        cpu_seconds=min(m.cpu_seconds for m in done),
    )


def _simulator_version() -> str:
    """A fingerprint of the simulator's source, so that a changed simulator regenerates."""
    import rftcost.simulate

    source = Path(rftcost.simulate.__file__).read_bytes()
    return hashlib.sha256(source).hexdigest()[:8]


def cached_events(
    n_events: int, seed: int, cache: Path, jobs: int | None = None
) -> tuple[Path, Measurement | None]:
    """The Parquet file for this size, seed (and number of jobs); generated (and
    measured) when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    shape = f"-{jobs}jobs" if jobs else ""
    path = cache / f"events-{n_events}{shape}-seed{seed}-{_simulator_version()}.parquet"
    if path.exists():
        return path, None
    argv = [str(path), str(n_events), str(seed), *([str(jobs)] if jobs else [])]
    generation = run_measured("generate", _self("generate", *argv))
    if not generation.ok:
        raise SystemExit(f"generating {path.name} failed: {generation.error}")
    return path, generation


def time_ordered(path: Path) -> Path:
    """A copy of ``path`` with every record in time order (jobs interleaved, as a log
    appended to as events happen is): billed in hash buckets, not in job runs."""
    ordered = path.with_name(path.stem + "-by-time.parquet")
    if ordered.exists():
        return ordered
    import duckdb

    tmp = ordered.with_suffix(".tmp")
    source = str(path).replace("'", "''")
    target = str(tmp).replace("'", "''")
    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    connection.execute(
        f"COPY (SELECT * FROM read_parquet('{source}') ORDER BY ts, job_id) "
        f"TO '{target}' (FORMAT parquet, ROW_GROUP_SIZE 1048576)"
    )
    tmp.replace(ordered)
    return ordered


# --- reporting ---------------------------------------------------------------------------------


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def _rate(events: int, seconds: float) -> str:
    return f"{events / seconds / 1e6:,.2f} M/s" if seconds > 0 else "-"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(
    n_events: int, path: Path, generation: Measurement | None, runs: list[Measurement]
) -> None:
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    events = meta.num_rows
    print(f"\n== {events:,} events ({path.stat().st_size / 2**20:,.1f} MiB Parquet: {path})")
    if generation is not None:
        g = generation
        print(
            f"   generated {g.detail.get('jobs', '?'):,} jobs in {g.wall_seconds:.1f} s, "
            f"peak {_mib(g.peak_bytes)} (chunks of ~{CHUNK_EVENTS:,} events)"
        )
    print(
        f"   {'measurement':<16}{'wall':>10}{'work':>10}{'cpu':>10}{'peak memory':>14}"
        f"{'events/s':>12}"
    )
    if any(m.ok for m in runs) and len(runs):
        print("   (best wall of the runs; peak: the largest)")
    for m in runs:
        if not m.ok:
            print(f"   {m.name:<16}FAILED  {m.error}")
            continue
        work = m.detail.get("work_seconds")
        work_text = f"{work:.2f} s" if work is not None else "-"
        print(
            f"   {m.name:<16}{m.wall_seconds:>8.2f} s{work_text:>10}{m.cpu_seconds:>8.2f} s"
            f"{_mib(m.peak_bytes):>14}{_rate(events, m.wall_seconds):>12}"
        )
    by_name = {m.name: m for m in runs}
    duck, floor, ours, spark = (
        by_name.get("duckdb"),
        by_name.get("pandas read"),
        by_name.get("rftcost bill"),
        by_name.get("rftcost spark"),
    )
    if spark and spark.ok and ours and ours.ok:
        print(
            f"   spark local[2] / pandas engine = {spark.wall_seconds / ours.wall_seconds:5.2f}x "
            f"({spark.wall_seconds - ours.wall_seconds:+.1f} s)"
        )
    if duck and duck.ok:
        print(
            f"   duckdb: {duck.detail['jobs']:,} jobs, {duck.detail['billable_hours']:,.1f} h "
            f"of billable-phase union, {duck.detail['threads']} threads"
        )
    if ours is None:
        print("   ratios: n/a (rftcost bill not run)")
        return
    if not ours.ok:
        print("   ratios: n/a (rftcost bill did not complete)")
        return
    if duck and duck.ok:
        ratio = ours.wall_seconds / duck.wall_seconds
        if duck.cpu_seconds > 0:
            print(
                f"   rftcost/duckdb CPU = {ours.cpu_seconds / duck.cpu_seconds:5.2f}x "
                "(user + system time: DuckDB's spread over its threads)"
            )
        print(
            f"   rftcost/duckdb     = {ratio:5.2f}x   target <= {TARGET_DUCKDB_RATIO:g}x: "
            f"{_verdict(ratio <= TARGET_DUCKDB_RATIO)}; goal <= {GOAL_DUCKDB_RATIO:g}x: "
            f"{_verdict(ratio <= GOAL_DUCKDB_RATIO)}"
        )
    if floor and floor.ok:
        print(f"   rftcost/pandas-read = {ours.wall_seconds / floor.wall_seconds:5.2f}x")
    scale = events / TARGET_EVENTS
    seconds_target = TARGET_SECONDS * scale
    print(
        f"   time:   {ours.wall_seconds:.1f} s, target < {seconds_target:.1f} s "
        f"({TARGET_SECONDS:g} s per {TARGET_EVENTS / 1e6:g}M events, pro rata): "
        f"{_verdict(ours.wall_seconds < seconds_target)}"
    )
    memory_text = f"   memory: {_mib(ours.peak_bytes)} peak, target < {_mib(TARGET_PEAK_BYTES)}"
    if n_events <= IN_MEMORY_EVENTS:
        verdict = _verdict(ours.peak_bytes <= IN_MEMORY_PEAK_BYTES)
        print(
            f"   memory: {_mib(ours.peak_bytes)} peak, "
            f"target <= {_mib(IN_MEMORY_PEAK_BYTES)}: {verdict}"
        )
    elif n_events >= TARGET_EVENTS:  # the size asked for (the file holds whole jobs, about as many)
        verdict = _verdict(ours.peak_bytes < TARGET_PEAK_BYTES)
        print(f"{memory_text} at {TARGET_EVENTS / 1e6:g}M events: {verdict}")
    else:
        print(f"{memory_text} at {TARGET_EVENTS / 1e6:g}M events (not checked at this size)")
    if n_events >= LARGE_EVENTS:
        print(
            f"   at {LARGE_EVENTS / 1e6:g}M events: {ours.wall_seconds:.1f} s, target "
            f"< {LARGE_SECONDS:g} s: {_verdict(ours.wall_seconds < LARGE_SECONDS)}; "
            f"{_mib(ours.peak_bytes)} peak, target < {_mib(LARGE_PEAK_BYTES)}: "
            f"{_verdict(ours.peak_bytes < LARGE_PEAK_BYTES)}"
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, nargs="+", default=[1_000_000], help="sizes (default: 1000000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="spread the events over this many jobs, each run longer (issue 16's file: "
        "--events 1630226 --jobs 5000); default: as many as the simulator's jobs make",
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where logs are cached")
    parser.add_argument("--duckdb-threads", type=int, default=None, help="default: all cores")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["pandas", "duckdb", "rftcost", "spark"],
        help="run only these (default: pandas duckdb rftcost; spark needs rftcost[spark])",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="rftcost bill --workers N (default: auto)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="only DuckDB and rftcost, one after the other, --repeat times (default 2): "
        "the rftcost/DuckDB ratio of the best runs, measured in the same run",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs of each measurement (default 1)"
    )
    parser.add_argument(
        "--order",
        choices=["job", "time"],
        default="job",
        help="records job by job, as simulated (billed in job runs), or in time order "
        "(jobs interleaved: billed in hash buckets); default job",
    )
    parser.add_argument(
        "--format",
        dest="output",
        choices=["json", "csv"],
        default="json",
        help="the bill's format (default json)",
    )
    args = parser.parse_args(argv)

    command = " ".join(_rftcost_command(Path("FILE"), output=args.output))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; rftcost runs as: {command}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at start: {load:.2f}")
    if args.compare:
        selected = {"duckdb", "rftcost"}
    else:
        selected = set(args.only or ["pandas", "duckdb", "rftcost"])
    repeat = args.repeat or (2 if args.compare else 1)
    workers = ["--workers", str(args.workers)] if args.workers else []
    results: list[dict[str, Any]] = []
    for n_events in args.events:
        path, generation = cached_events(n_events, args.seed, args.cache, args.jobs)
        if args.order == "time":
            path = time_ordered(path)
        measured: dict[str, list[Measurement]] = {}

        def measure(
            name: str,
            command: list[str],
            env: dict[str, str] | None = None,
            into: dict[str, list[Measurement]] = measured,
        ) -> None:
            into.setdefault(name, []).append(run_measured(name, command, env))

        # Interleaved (DuckDB, rftcost, DuckDB, rftcost...): the machine's load is shared.
        for _ in range(repeat):
            if "pandas" in selected:
                measure("pandas read", _self("pandas", str(path)))
            if "duckdb" in selected:
                threads = [str(args.duckdb_threads)] if args.duckdb_threads else []
                measure("duckdb", _self("duckdb", str(path), *threads))
            if "rftcost" in selected or "spark" in selected:
                measure("rftcost bill", _rftcost_command(path, *workers, output=args.output))
            if "spark" in selected:
                spark = _rftcost_command(path, "--engine", "spark", output=args.output)
                measure("rftcost spark", spark, {"RFTCOST_SPARK_MASTER": "local[2]"})
        if repeat > 1:
            for name, each in measured.items():
                walls = ", ".join(
                    f"{m.wall_seconds:.2f} s (cpu {m.cpu_seconds:.2f} s)" if m.ok else "failed"
                    for m in each
                )
                print(f"   {name}: {walls}")
            pairs = zip(measured.get("rftcost bill", []), measured.get("duckdb", []), strict=False)
            ratios = [f"{r.wall_seconds / d.wall_seconds:.2f}x" for r, d in pairs if r.ok and d.ok]
            if ratios:
                print(f"   rftcost/duckdb run by run: {', '.join(ratios)}")
        runs = [_best(each) for each in measured.values()]
        report(n_events, path, generation, runs)
        results.append(
            {
                "events": n_events,
                "file": str(path),
                "generation": asdict(generation) if generation else None,
                "runs": [asdict(m) for m in runs],
                "all_runs": {k: [asdict(m) for m in v] for k, v in measured.items()},
            }
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    failed = [m for r in results for m in r["runs"] if not m["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
