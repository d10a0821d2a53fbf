"""How much memory does a gzipped log that expands a thousandfold cost?

    python benchmarks/bench_gzip.py                 # 200 MB decompressed
    python benchmarks/bench_gzip.py --mib 500
    python benchmarks/bench_gzip.py --buckets 2     # the same file billed in buckets

Writes (once, cached in ``benchmarks/.cache/``) a ``.jsonl.gz`` of about 200 KB that
expands to about 200 MB: one job's ``job_created`` record, then the same
``step_completed`` record (same ``event_id``) over and over: a decompression bomb that
is also a valid log (every repeat is a duplicate). Then runs, in its own process,
``rftcost bill FILE --format json --output /dev/null`` and reports its wall time and
peak memory (the process's and its children's resident set, as ``bench_bill.py``
measures it). Target: at most 0.5 GiB for 200 MB decompressed: the reader decompresses
and parses blocks of lines, never the whole text. With ``--buckets N`` the same bill is
made in N hash buckets on disk (``--buckets N --workers 1``): every repeat is one job's,
so all land in one bucket, and the target holds there too (repeats are set aside chunk
by chunk before they are spooled, as in memory).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from bench_bill import DEFAULT_CACHE, run_measured

TARGET_PEAK_BYTES = 2**29  # 0.5 GiB

HEAD = {
    "job_id": "ftjob-bomb",
    "ts": "2025-06-01T00:00:00Z",
    "event": "job_created",
    "event_id": "evt-created",
    "team": "research",
}
REPEATED = {
    "job_id": "ftjob-bomb",
    "ts": "2025-06-01T00:00:05Z",
    "event": "step_completed",
    "event_id": "evt-step-1",
    "step": 1,
    "message": "Step 1/100: training loss=0.42",
}


def bomb(path: Path, mib: int) -> Path:
    """A ``.jsonl.gz`` of ``mib`` MiB decompressed (made once)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(REPEATED) + "\n").encode()
    block = line * (2**20 // len(line))
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=9) as out:
        out.write((json.dumps(HEAD) + "\n").encode())
        for _ in range(mib):
            out.write(block)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=200, help="decompressed size (default 200)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where it is kept")
    parser.add_argument(
        "--buckets", type=int, default=None, help="bill in N buckets on disk (default: in memory)"
    )
    args = parser.parse_args(argv)
    path = bomb(args.cache / f"bomb-{args.mib}mib.jsonl.gz", args.mib)
    script = Path(sys.executable).with_name("rftcost")
    entry = [str(script)] if script.exists() else [sys.executable, "-m", "rftcost"]
    command = [*entry, "bill", str(path), "--format", "json", "--output", "/dev/null"]
    if args.buckets is not None:
        command += ["--buckets", str(args.buckets), "--workers", "1"]
    print(f"{path.name}: {path.stat().st_size / 1024:,.0f} KiB gzipped, ~{args.mib} MiB of text")
    print("   " + " ".join(command))
    m = run_measured("rftcost bill", command)
    if not m.ok:
        print(f"   FAILED {m.error}")
        return 1
    verdict = "met" if m.peak_bytes <= TARGET_PEAK_BYTES else "MISSED"
    print(
        f"   wall {m.wall_seconds:.1f} s, peak {m.peak_bytes / 2**20:,.0f} MiB "
        f"(target <= {TARGET_PEAK_BYTES / 2**20:,.0f} MiB: {verdict})"
    )
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
