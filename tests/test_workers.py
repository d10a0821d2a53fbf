"""The workers' server starts before the command imports the billing modules (``workers``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rftcost import workers
from rftcost.workers import AUTO_BUCKET_EVENTS, start_early


def test_rough_events_come_from_sizes_of_log_files_only(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_bytes(b"x" * 1_200)  # 12 bytes an event
    (tmp_path / "b.jsonl").write_bytes(b"x" * 1_500)  # 150
    (tmp_path / "c.csv.gz").write_bytes(b"x" * 200)  # 20
    (tmp_path / "notes.txt").write_bytes(b"x" * 10_000)  # not a log: not counted
    assert workers._rough_events([tmp_path]) == 100 + 10 + 10
    assert workers._rough_events([tmp_path / "a.parquet"]) == 100
    assert workers._rough_events([tmp_path / "missing.parquet"]) == 0  # the readers name it


@pytest.mark.parametrize(
    ("size", "processes", "started"), [(1, 2, False), (2, 2, True), (2, 1, False)]
)
def test_the_server_starts_early_only_for_a_log_that_looks_large(
    monkeypatch: pytest.MonkeyPatch, size: int, processes: int, started: bool
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(workers, "start_workers", calls.append)
    monkeypatch.setattr(workers, "_rough_events", lambda paths: size * AUTO_BUCKET_EVENTS)
    start_early(["log.parquet"], processes)
    assert calls == ([processes] if started else [])


@pytest.mark.parametrize("command", ["bill", "explain"])
def test_the_command_starts_the_server_before_it_imports_pandas(
    tmp_path: Path, command: str
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"job_id": "j", "ts": "2025-06-01T08:00:00Z", "event": "job_created"}\n', "utf-8"
    )
    args = [command, str(log)] if command == "bill" else [command, str(log), "--job", "j"]
    # A log that looks large (the threshold at 0), and the start recorded instead of made.
    script = (
        "import sys\n"
        "import rftcost.workers as w\n"
        "w.AUTO_BUCKET_EVENTS = -1\n"
        "w.start_workers = lambda n: print('pandas imported:', 'pandas' in sys.modules)\n"
        "from rftcost.cli import main\n"
        f"sys.argv = ['rftcost', *{args!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "RFTCOST_WORKERS": "2"},
    )
    assert "pandas imported: False" in done.stdout, done.stderr
