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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from rftcost.events.json_text import without_surrogates
from rftcost.events.openai.frames import is_missing
from rftcost.events.openai.model import ImportProblem

__all__ = ["resolve_checkpoint_jobs", "resolve_event_jobs", "tie_to_jobs", "unresolved_records"]


# Ids may hold "." and ":" (as ``rftcost fetch`` takes them), never at their end: a
# sentence's full stop after an id is not part of it.
_JOB_ID_IN_NAME = re.compile(r"ftjob-[A-Za-z0-9_.:-]*[A-Za-z0-9_-]")


_CREATED_MESSAGE = re.compile(r"Created fine-tuning job:\s*(" + _JOB_ID_IN_NAME.pattern + ")")


def resolve_event_jobs(
    events: pd.DataFrame, jobs: pd.DataFrame
) -> tuple[pd.DataFrame, list[ImportProblem], dict[str, str]]:
    """Give every event its job (see the module docstring); report files that cannot be told.

    Also returns the job of each events file, so that a record of the file that could
    not be read is tied to its job. The job is told once per file, then given to the
    file's events in one column operation.
    """
    problems: list[ImportProblem] = []
    file_jobs: dict[str, str] = {}
    named = events["message"].str.extract(_CREATED_MESSAGE, expand=False).dropna()
    named_in_file = _sets_by_key(events.loc[named.index, "file"], named)
    files = events.groupby("file", sort=False).agg(
        folder=("folder", "first"), count=("folder", "size")
    )
    in_folder = _jobs_by_folder(jobs)
    known = _known_ids(jobs, named)
    for file, folder, count in zip(files.index, files["folder"], files["count"], strict=True):
        choice = _first_found(
            _event_file_sources(str(file), str(folder), named_in_file, in_folder, jobs, known)
        )
        if len(choice) == 1:
            file_jobs[str(file)] = choice.pop()
            continue
        reason = (
            f"events of several jobs ({', '.join(sorted(choice))}) and no way to tell them apart"
            if choice
            else "cannot tell which job these events belong to: no 'Created fine-tuning job' "
            "event, no ftjob- id in the file or folder name, and no single job object"
        )
        problems.append(
            ImportProblem(file=str(file), position=f"{count} events", reason=reason + ": skipped")
        )
    events = events.assign(job_id=events["file"].map(file_jobs).astype("string"))
    return events[events["job_id"].notna()], problems, file_jobs


def tie_to_jobs(
    problems: list[ImportProblem], file_jobs: dict[str, str], jobs: pd.DataFrame
) -> list[ImportProblem]:
    """Give each problem of a record its job, told from its file as events are (R-invalid).

    A problem whose job cannot be told (several candidates) stays without one.
    """
    in_folder = _jobs_by_folder(jobs)
    known = _known_ids(jobs, file_jobs.values())
    tied = []
    for problem in problems:
        if problem.job_id is None:
            choice = _first_found(_problem_sources(problem.file, file_jobs, in_folder, jobs, known))
            if len(choice) == 1:
                problem = problem.model_copy(update={"job_id": choice.pop()})
        tied.append(problem)
    return tied


def _first_found(sources: Iterable[set[str]]) -> set[str]:
    """The jobs of the first source, in order of precedence, that names any (else none).

    Given a generator, a later source (reading a ``job.json``, every job of the import)
    is looked at only when the earlier ones name none.
    """
    return next((jobs for jobs in sources if jobs), set())


def _event_file_sources(
    file: str,
    folder: str,
    named_in_file: dict[str, set[str]],
    in_folder: Callable[[str], set[str]],
    jobs: pd.DataFrame,
    known: set[str],
) -> Iterator[set[str]]:
    """The jobs an events file may belong to, source by source (the module docstring)."""
    yield set(named_in_file.get(file, set()))
    yield _ids_in_path(Path(file), known)
    yield in_folder(folder)
    yield _sibling_job(Path(file))
    yield set(jobs["job_id"])


def _problem_sources(
    file: str,
    file_jobs: dict[str, str],
    in_folder: Callable[[str], set[str]],
    jobs: pd.DataFrame,
    known: set[str],
) -> Iterator[set[str]]:
    """The jobs an unreadable record of ``file`` may belong to, source by source."""
    path = Path(file)
    yield {file_jobs[file]} if file in file_jobs else set()
    yield _ids_in_path(path, known)
    yield {job for other, job in file_jobs.items() if Path(other).parent == path.parent}
    yield in_folder(str(path.parent))
    yield _sibling_job(path)
    yield set(jobs["job_id"])


def _jobs_by_folder(frame: pd.DataFrame) -> Callable[[str], set[str]]:
    """The jobs of a frame's records read from a folder, looked up without a scan per call."""
    ids = _sets_by_key(frame["folder"], frame["job_id"])
    return lambda folder: set(ids.get(folder, set()))


def _sets_by_key(keys: pd.Series, values: pd.Series) -> dict[str, set[str]]:
    """The distinct values of each key (a value missing is left out)."""
    pairs = pd.DataFrame({"key": keys, "value": values}).dropna().drop_duplicates()
    found: dict[str, set[str]] = {}
    for key, value in zip(pairs["key"], pairs["value"], strict=True):
        found.setdefault(str(key), set()).add(str(value))
    return found


def _known_ids(jobs: pd.DataFrame, named: Iterable[Any]) -> set[str]:
    """The job ids the import knows: its job objects', and those its events name."""
    return {str(job) for job in [*jobs["job_id"], *named] if not is_missing(job)}


def _ids_in_path(file: Path, known: set[str]) -> set[str]:
    """The ``ftjob-…`` ids in the file's name, else in its folder's name.

    What looks like an id (``_JOB_ID_IN_NAME``) is that id, unless it is an id ``known``
    (of the import's job objects, or named by its events) followed by ``-``, ``_``, ``.``
    or ``:`` and more
    (``ftjob-abc-events`` of a job object ``ftjob-abc``: its events file, not a job
    ``ftjob-abc-events`` billed apart from the object's team and data sharing). The
    longest such job id wins."""
    for name in (file.stem, file.parent.name):
        found = {_known_prefix(token, known) for token in _JOB_ID_IN_NAME.findall(name)}
        if found:
            return found
    return set()


def _known_prefix(token: str, known: set[str]) -> str:
    """``token``, or the longest job id of ``known`` it starts with before a ``-``, ``_``,
    ``.`` or ``:``; else ``token`` up to its first ``.`` or ``:`` (``ftjob-abc.events``
    names ``ftjob-abc``: a dot in a file's name more likely starts its extension)."""
    if token in known:
        return token
    cuts = [i for i, char in enumerate(token) if char in "-_.:" and i > len("ftjob-")]
    for cut in reversed(cuts):
        if token[:cut] in known:
            return token[:cut]
    return re.split(r"[.:]", token, maxsplit=1)[0]


def _sibling_job(file: Path) -> set[str]:
    """The id of the job object in a ``job.json`` next to ``file`` (fetch layout)."""
    sibling = file.parent / "job.json"
    if sibling == file or not sibling.is_file():
        return set()
    try:
        value = json.loads(sibling.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return set()
    if (
        isinstance(value, dict)
        and value.get("object") == "fine_tuning.job"
        and isinstance(value.get("id"), str)
    ):
        # An id with a lone surrogate escape is named as the reader named that job object
        # when it rejected it (U+FFFD): its events go to that job, which is invalid, and
        # every output can hold its name (``events.json_text``).
        return {without_surrogates(value["id"])}
    return set()


def resolve_checkpoint_jobs(
    checkpoints: pd.DataFrame, events: pd.DataFrame, jobs: pd.DataFrame
) -> pd.DataFrame:
    """A checkpoint names its job; else the job of its file's folder, like events."""
    missing = checkpoints["job_id"].isna()
    if not missing.any():
        return checkpoints
    fill = pd.Series(pd.NA, index=checkpoints.index, dtype="string")
    events_in_folder = _jobs_by_folder(events)
    jobs_in_folder = _jobs_by_folder(jobs)
    known = _known_ids(jobs, events["job_id"])
    for file, group in checkpoints[missing].groupby("file", sort=False):
        folder = str(group["folder"].iloc[0])
        choice = _first_found(
            _checkpoint_file_sources(
                str(file), folder, events_in_folder, jobs_in_folder, jobs, known
            )
        )
        if len(choice) == 1:
            fill[group.index] = choice.pop()
    return checkpoints.assign(job_id=checkpoints["job_id"].fillna(fill))


def _checkpoint_file_sources(
    file: str,
    folder: str,
    events_in_folder: Callable[[str], set[str]],
    jobs_in_folder: Callable[[str], set[str]],
    jobs: pd.DataFrame,
    known: set[str],
) -> Iterator[set[str]]:
    """The jobs a checkpoint that names none may belong to, source by source."""
    yield _ids_in_path(Path(file), known)
    yield events_in_folder(folder)
    yield jobs_in_folder(folder)
    yield _sibling_job(Path(file))
    yield set(jobs["job_id"])


def unresolved_records(frame: pd.DataFrame, what: str) -> list[ImportProblem]:
    """A problem for each record (checkpoint) whose job could not be told: skipped."""
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
