"""Small builders for hand-made event logs in tests."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

T0 = datetime(2025, 6, 1, 8, 0, 0, tzinfo=UTC)


@dataclass
class JobLog:
    """Appends events of one job at a moving clock."""

    job_id: str = "ftjob-test"
    clock: datetime = T0
    events: list[dict[str, Any]] = field(default_factory=list)

    def at(self, **delta: float) -> JobLog:
        self.clock = self.clock + timedelta(**delta)
        return self

    def add(self, event: str, **fields: Any) -> JobLog:
        ts = fields.pop("ts", self.clock)
        self.events.append(
            {
                "job_id": self.job_id,
                "ts": ts.isoformat().replace("+00:00", "Z"),
                "event": event,
                **fields,
            }
        )
        return self

    def created(self, **fields: Any) -> JobLog:
        return self.add("job_created", **fields)

    def phase(self, name: str, **duration: float) -> JobLog:
        self.add("phase_start", phase=name)
        self.at(**duration)
        return self.add("phase_end", phase=name)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.events)


def frame_of(*logs: JobLog) -> pd.DataFrame:
    return pd.concat([log.frame() for log in logs], ignore_index=True)


def guide_prelude(log: JobLog) -> JobLog:
    """Billing guide: 10 min validating files, 20 min safety check, 30 min queued, 30 min setup."""
    return (
        log.phase("validating_files", minutes=10)
        .phase("safety_check", minutes=20)
        .phase("queued", minutes=30)
        .phase("setup", minutes=30)
    )


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real entry point, in process: exit code, stdout, stderr."""
    argv = sys.argv
    sys.argv = ["rftcost", *args]
    from rftcost.cli import main

    try:
        main()
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def score_model_plan(
    folder: Path,
    *,
    grader_model: str = "gpt-4.1-mini",
    hyperparameters: dict[str, Any] | None = None,
    sampling_params: dict[str, Any] | None = None,
    **changes: Any,
) -> Path:
    """``folder/plan.json``: an RFT job request (the API's body) graded by one score model
    (with ``sampling_params`` when given); ``changes`` replace top-level fields
    (``model="gpt-9"``)."""
    plan: dict[str, Any] = {
        "model": "o4-mini-2025-04-16",
        "training_file": "file-train",
        "method": {
            "type": "reinforcement",
            "reinforcement": {
                "grader": {
                    "type": "score_model",
                    "name": "judge",
                    "model": grader_model,
                    "input": [{"role": "user", "content": "{{sample.output_text}}"}],
                    **({"sampling_params": sampling_params} if sampling_params else {}),
                },
                "hyperparameters": hyperparameters or {"batch_size": 8, "n_epochs": 2},
            },
        },
        **changes,
    }
    path = folder / "plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path
