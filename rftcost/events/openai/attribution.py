"""Which job each record belongs to (event objects do not name their job).

The events of a file belong to, in this order: the job named by a "Created
fine-tuning job: ftjob-…" event of that file; the ``ftjob-…`` id in the file's name,
else in its folder's name; the one job object read from the same folder (or a
``job.json`` next to the file); the one job object of the whole import. A file whose
job cannot be told is reported, never guessed. Checkpoints name their job, else are
told like events; an unreadable record is tied to its job the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from rftcost.events.openai.model import ImportProblem

__all__ = ["resolve_checkpoint_jobs", "resolve_event_jobs", "tie_to_jobs", "unresolved_records"]


_JOB_ID_IN_NAME = re.compile(r"ftjob-[A-Za-z0-9_-]+")


_CREATED_MESSAGE = re.compile(r"Created fine-tuning job:\s*(ftjob-[A-Za-z0-9_-]+)")


def resolve_event_jobs(
    events: pd.DataFrame, jobs: pd.DataFrame
) -> tuple[pd.DataFrame, list[ImportProblem], dict[str, str]]:
    """Give every event its job (see the module docstring); report files that cannot be told.

    Also returns the job of each events file, so that a record of the file that could
    not be read is tied to its job.
    """
    problems: list[ImportProblem] = []
    file_jobs: dict[str, str] = {}
    named = events["message"].str.extract(_CREATED_MESSAGE, expand=False)
    resolved = pd.Series(pd.NA, index=events.index, dtype="string")
    for file, group in events.groupby("file", sort=False):
        candidates = [
            set(named[group.index].dropna()),
            _ids_in_path(Path(str(file))),
            set(jobs.loc[jobs["folder"] == group["folder"].iloc[0], "job_id"]),
            _sibling_job(Path(str(file))),
            set(jobs["job_id"]),
        ]
        choice = next((c for c in candidates if c), set())
        if len(choice) == 1:
            file_jobs[str(file)] = next(iter(choice))
            resolved[group.index] = choice.pop()
            continue
        reason = (
            f"events of several jobs ({', '.join(sorted(choice))}) and no way to tell them apart"
            if choice
            else "cannot tell which job these events belong to: no 'Created fine-tuning job' "
            "event, no ftjob- id in the file or folder name, and no single job object"
        )
        problems.append(
            ImportProblem(
                file=str(file), position=f"{len(group)} events", reason=reason + ": skipped"
            )
        )
    events = events.assign(job_id=resolved)
    return events[events["job_id"].notna()], problems, file_jobs


def tie_to_jobs(
    problems: list[ImportProblem], file_jobs: dict[str, str], jobs: pd.DataFrame
) -> list[ImportProblem]:
    """Give each problem of a record its job, told from its file as events are (R-invalid).

    A problem whose job cannot be told (several candidates) stays without one.
    """
    tied = []
    for problem in problems:
        if problem.job_id is None:
            file = Path(problem.file)
            candidates = [
                {file_jobs[problem.file]} if problem.file in file_jobs else set(),
                _ids_in_path(file),
                {j for f, j in file_jobs.items() if Path(f).parent == file.parent},
                set(jobs.loc[jobs["folder"] == str(file.parent), "job_id"]),
                _sibling_job(file),
                set(jobs["job_id"]),
            ]
            choice = next((c for c in candidates if c), set())
            if len(choice) == 1:
                problem = problem.model_copy(update={"job_id": choice.pop()})
        tied.append(problem)
    return tied


def _ids_in_path(file: Path) -> set[str]:
    for name in (file.stem, file.parent.name):
        found = set(_JOB_ID_IN_NAME.findall(name))
        if found:
            return found
    return set()


def _sibling_job(file: Path) -> set[str]:
    """The id of the job object in a ``job.json`` next to ``file`` (fetch layout)."""
    sibling = file.parent / "job.json"
    if sibling == file or not sibling.is_file():
        return set()
    try:
        value = json.loads(sibling.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return set()
    if (
        isinstance(value, dict)
        and value.get("object") == "fine_tuning.job"
        and isinstance(value.get("id"), str)
    ):
        return {value["id"]}
    return set()


def resolve_checkpoint_jobs(
    checkpoints: pd.DataFrame, events: pd.DataFrame, jobs: pd.DataFrame
) -> pd.DataFrame:
    """A checkpoint names its job; else the job of its file's folder, like events."""
    missing = checkpoints["job_id"].isna()
    if not missing.any():
        return checkpoints
    fill = pd.Series(pd.NA, index=checkpoints.index, dtype="string")
    for file, group in checkpoints[missing].groupby("file", sort=False):
        candidates = [
            _ids_in_path(Path(str(file))),
            set(events.loc[events["folder"] == group["folder"].iloc[0], "job_id"]),
            set(jobs.loc[jobs["folder"] == group["folder"].iloc[0], "job_id"]),
            _sibling_job(Path(str(file))),
            set(jobs["job_id"]),
        ]
        choice = next((c for c in candidates if c), set())
        if len(choice) == 1:
            fill[group.index] = choice.pop()
    return checkpoints.assign(job_id=checkpoints["job_id"].fillna(fill))


def unresolved_records(frame: pd.DataFrame, what: str) -> list[ImportProblem]:
    lost = frame[frame["job_id"].isna()]
    return [
        ImportProblem(
            file=str(row.file),
            position=str(row.position),
            reason=(
                f"{what} {row.id!s} names no job (fine_tuning_job_id) and its file "
                "does not tell: skipped"
            ),
        )
        for row in lost.itertuples()
    ]
