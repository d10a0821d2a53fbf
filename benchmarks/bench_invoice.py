"""How much memory does auditing a 1,000,000-line invoice take, end to end?

    python benchmarks/bench_invoice.py                      # 1,000,000 lines, CSV and JSON Lines
    python benchmarks/bench_invoice.py --lines 200000 --formats csv

The log is ``bench_outputs.py``'s log of small jobs with a ``rollout`` phase (four
events a job, written once and cached in ``benchmarks/.cache/``), as many jobs as
make ``--lines`` invoice lines: every job bills one compute line, and every other job
(those that share their data) a discount line too, so 1,000,000 lines take 666,667
jobs (2,666,668 events). The invoice is the honest one (``invoice_from_bill``: one
line per charge, with its ``charge_at``), written once per size and format. Then
``rftcost audit --invoice INVOICE LOG --format json --output /dev/null`` runs in its
own process, measured as ``bench_bill.py`` measures: wall time around the process,
peak memory the largest sum of the resident sets of the process and its children
(sampled every 50 ms) or the process's own maximum resident set, whichever is larger.
The audit of an honest invoice finds nothing: the command exits 0, and anything else
is reported as a failure.

Target (issue 16): a 1,000,000-line invoice audited within 2 GiB.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_bill import Measurement, run_measured  # noqa: E402
from bench_outputs import cached_log  # noqa: E402

DEFAULT_CACHE = HERE / ".cache"
TARGET_PEAK_BYTES = 2 * 2**30
_EVENTS_PER_JOB = 4  # job_created, a rollout phase, succeeded: one charge of real hours
_LINES_PER_JOB = 1.5  # a compute line each, a discount line for every other job


def jobs_for(lines: int) -> int:
    """Jobs of the small-jobs log whose honest invoice has at least ``lines`` lines."""
    return math.ceil(lines / _LINES_PER_JOB)


def cached_invoice(log: Path, output_format: str) -> Path:
    """The honest invoice of ``log`` (written once per log and format)."""
    suffix = ".jsonl" if output_format == "jsonl" else ".csv"
    path = log.with_name(log.stem + "-invoice" + suffix)
    if not path.exists():
        # In a process of its own: a measured command's maximum resident set counts the
        # memory of the process that started it (the kernel records it at the fork), and
        # this one would hold the whole bill (2.94 GiB measured for a 1.28 GiB audit).
        script = str(Path(__file__).resolve())
        subprocess.run([sys.executable, script, "--write-invoice", str(log), str(path)], check=True)
    return path


def write_honest_invoice(log: Path, path: Path) -> None:
    """The honest invoice of ``log``: one line per charge, with its ``charge_at``."""
    import rftcost
    from rftcost.invoice_writers import invoice_from_bill, write_invoice

    bill = rftcost.bill(log, buckets=None)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    write_invoice(invoice_from_bill(bill, invoice_id="INV-BENCH"), partial)
    partial.replace(path)


def line_count(invoice: Path) -> int:
    """Lines of the invoice (a CSV's header not counted)."""
    with invoice.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return lines - 1 if invoice.suffix == ".csv" else lines


def measure(log: Path, invoice: Path) -> Measurement:
    """``rftcost audit --invoice INVOICE LOG --format json --output /dev/null``."""
    command = [
        sys.executable,
        "-m",
        "rftcost",
        "audit",
        "--invoice",
        str(invoice),
        str(log),
        "--format",
        "json",
        "--output",
        os.devnull,
    ]
    return run_measured(f"audit {invoice.suffix}", command)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--write-invoice"]:  # cached_invoice's own process
        write_honest_invoice(Path(arguments[1]), Path(arguments[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="invoice lines (at least)")
    parser.add_argument("--formats", nargs="+", default=["csv", "jsonl"], choices=["csv", "jsonl"])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)

    import rftcost

    jobs = jobs_for(args.lines)
    log = cached_log(jobs, _EVENTS_PER_JOB, args.cache)
    print(
        f"rftcost from {Path(rftcost.__file__).parent}; log {log.name}"
        f" ({jobs:,} jobs, {jobs * _EVENTS_PER_JOB:,} events)",
        flush=True,
    )
    failed = False
    for output_format in args.formats:
        invoice = cached_invoice(log, output_format)
        result = measure(log, invoice)
        peak_gib = result.peak_bytes / 2**30
        met = "met" if result.peak_bytes <= TARGET_PEAK_BYTES else "NOT met"
        status = "" if result.ok else f"  FAILED {result.error}"
        failed |= not result.ok
        print(
            f"audit of {line_count(invoice):,} lines ({invoice.suffix}):"
            f" {result.wall_seconds:7.1f} s  peak {peak_gib:5.2f} GiB"
            f"  (target <= 2.00 GiB: {met}){status}",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
