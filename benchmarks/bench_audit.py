"""How much does auditing an invoice cost next to billing the same jobs?

    python benchmarks/bench_audit.py                    # 100,000 jobs
    python benchmarks/bench_audit.py --jobs 10000 100000 --perturb 0.01

For each size it simulates the jobs once (``rftcost.simulate.simulate_jobs``, in
chunks, cached as ``benchmarks/.cache/audit-jobs-<n>-seed<seed>.parquet``), bills
them once to write the honest invoice (``rftcost.invoice_writers.invoice_from_bill``: one
compute line per charge, discount and grader lines, every line with its
``charge_at``) and, with ``--perturb F``, a copy where a fraction F of the compute
lines bills 0.25 h more. Then, each in its own process:

(a) ``bill``: ``rftcost.bill(events)``, timed, with the process's peak memory;
(b) ``audit``: the same bill, then ``rftcost.audit_invoice(invoice, bill)``, timed
    on its own; the process's peak memory includes the bill it audits against.

The claim checked: auditing an invoice against the bill costs less time than billing,
and adds little memory to it. Peak memory is the child's maximum resident set size
(``os.wait4``). Machine load matters (a 2-vCPU machine shared with other work varies
by 2× between runs): run twice and keep the better figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / ".cache"
CHUNK_JOBS = 10_000


def _events_file(cache: Path, jobs: int, seed: int) -> Path:
    """Simulated events of ``jobs`` jobs as Parquet (made once, in chunks of whole jobs)."""
    path = cache / f"audit-jobs-{jobs}-seed{seed}.parquet"
    if path.exists():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rftcost.simulate import simulate_jobs

    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    writer = None
    partial = path.with_suffix(".partial")
    try:
        for first in range(0, jobs, CHUNK_JOBS):
            count = min(CHUNK_JOBS, jobs - first)
            frame = simulate_jobs(
                n_jobs=count,
                seed=seed * 1_000_003 + first,
                job_ids=[f"ftjob-bench-{first + i:07d}" for i in range(count)],
            )
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    partial.rename(path)
    print(f"simulated {jobs:,} jobs in {time.perf_counter() - started:.1f} s → {path}", flush=True)
    return path


def _invoices(cache: Path, events: Path, perturb: float) -> tuple[Path, Path | None, int]:
    """The honest invoice of the bill, and a perturbed copy (written once per events file)."""
    clean = events.with_name(events.stem + "-invoice.csv")
    perturbed = (
        events.with_name(events.stem + f"-invoice-perturbed-{perturb}.csv") if perturb else None
    )
    if not clean.exists() or (perturbed is not None and not perturbed.exists()):
        import numpy as np

        import rftcost
        from rftcost.invoice_writers import invoice_from_bill, write_invoice

        bill = rftcost.bill(events)
        lines = invoice_from_bill(bill, invoice_id="INV-BENCH")
        write_invoice(lines, clean)
        if perturbed is not None:
            rng = np.random.default_rng(7)
            compute = lines.index[lines["line_type"] == "compute"]
            chosen = rng.choice(compute, size=max(1, int(len(compute) * perturb)), replace=False)
            changed = lines.copy()
            changed.loc[chosen, "quantity"] = changed.loc[chosen, "quantity"].map(
                lambda q: f"{Decimal(q) + Decimal('0.25'):.2f}"
            )
            # $100/h: 0.25 h more is 25.00 more (amounts stay decimal strings).
            changed.loc[chosen, "amount"] = changed.loc[chosen, "amount"].map(
                lambda a: _plus(a, 25)
            )
            write_invoice(changed, perturbed)
    with clean.open() as handle:
        n_lines = sum(1 for _ in handle) - 1
    return clean, perturbed, n_lines


def _plus(amount: str, whole: int) -> str:
    return f"{Decimal(amount) + whole:.2f}"


_CHILD = """
import json, resource, sys, time
import rftcost

def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()

def peak():
    # This process's own high-water mark (ru_maxrss would count its launcher's memory:
    # the kernel records it at the fork, and the launcher may hold a whole bill).
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024

events, invoice = sys.argv[1], sys.argv[2]
started = time.perf_counter()
bill = rftcost.bill(events)
billed = time.perf_counter() - started
counts = bill.log.counts() if bill.log is not None else {}
result = {"bill_seconds": billed, "jobs": len(bill.jobs), "charges": len(bill.charges),
          "events": counts.get("accepted"), "peak_after_bill": peak(), "rss_after_bill": rss()}
if invoice != "-":
    started = time.perf_counter()
    report = rftcost.audit_invoice(invoice, bill)
    result["audit_seconds"] = time.perf_counter() - started
    result["rss_after_audit"] = rss()
    result["findings"] = report.summary.findings
    result["difference"] = str(report.summary.difference)
result["peak_bytes"] = peak()
print(json.dumps(result))
"""


def _run(events: Path, invoice: Path | None) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(events), str(invoice) if invoice else "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.perf_counter()
    # Not its ru_maxrss: that counts this process's memory at the fork (see _CHILD).
    _, status, _ = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out = process.stdout.read() if process.stdout else ""
    err = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed:\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_bill import compile_bytecode

    compile_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--perturb", type=float, default=0.0, help="fraction of compute lines to overbill"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}", flush=True)
    records = []
    status = 0
    for jobs in args.jobs:
        events = _events_file(args.cache, jobs, args.seed)
        clean, perturbed, n_lines = _invoices(args.cache, events, args.perturb)
        bill_only = _run(events, None)
        audits = {"clean": _run(events, clean)}
        if perturbed is not None:
            audits[f"perturbed {args.perturb:.0%}"] = _run(events, perturbed)
        print(
            f"\n{jobs:,} jobs, {bill_only['events'] or 0:,} events, "
            f"{bill_only['charges']:,} charges; "
            f"invoice of {n_lines:,} lines"
        )
        print(f"{'':24} {'seconds':>9} {'peak MiB':>9}  notes")
        print(
            f"{'bill':24} {bill_only['bill_seconds']:9.2f} {bill_only['peak_bytes'] / 2**20:9.0f}"
            f"  process wall {bill_only['wall_seconds']:.1f} s"
        )
        for name, run in audits.items():
            ratio = run["audit_seconds"] / run["bill_seconds"]
            ok = run["audit_seconds"] < run["bill_seconds"]
            status |= 0 if ok else 1
            # Memory the audit adds: the process peak beyond billing's, and resident growth.
            added_peak = (run["peak_bytes"] - run["peak_after_bill"]) / 2**20
            grown = (run["rss_after_audit"] - run["rss_after_bill"]) / 2**20
            print(
                f"{'audit ' + name:24} {run['audit_seconds']:9.2f} {run['peak_bytes'] / 2**20:9.0f}"
                f"  audit/bill {ratio:.2f} ({'<' if ok else '≥'} 1); {run['findings']} findings,"
                f" difference {run['difference']}; peak beyond billing's +{added_peak:.0f} MiB,"
                f" resident {grown:+.0f} MiB"
            )
        records.append(
            {"jobs": jobs, "invoice_lines": n_lines, "bill": bill_only, "audits": audits}
        )
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
