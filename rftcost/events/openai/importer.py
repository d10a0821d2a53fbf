"""``import_openai``: the import, step by step, from paths to an ``OpenAIImport``.

Read the files, tell each record's job, drop duplicates, classify messages, merge
snapshots, keep RFT jobs, then build every kind of canonical row, the problems,
the jobs that cannot be billed and the notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pandas as pd

from rftcost.errors import ExportError
from rftcost.events.openai.attribution import (
    resolve_checkpoint_jobs,
    resolve_event_jobs,
    tie_to_jobs,
    unresolved_records,
)
from rftcost.events.openai.canonical import (
    announced_checkpoints,
    canonical_events,
    checkpoint_rows,
    job_created_rows,
)
from rftcost.events.openai.frames import is_missing, optional_text
from rftcost.events.openai.grader_usage import (
    captured_usage,
    unknown_grader_problems,
    usage_by_the_end,
    usage_problems,
    usage_rows,
    usage_table,
)
from rftcost.events.openai.job_state import status_rows
from rftcost.events.openai.messages import (
    chronological,
    classify_messages,
    message_event_rows,
    state_rows,
)
from rftcost.events.openai.model import ImportedJob, ImportProblem, OpenAIImport, UnknownMessage
from rftcost.events.openai.notes import (
    failed_without_checkpoints,
    import_notes,
    vendor_decimal,
    vendor_hours,
)
from rftcost.events.openai.problems import incomplete_jobs
from rftcost.events.openai.reading import (
    ExportReader,
    checkpoints_frame,
    events_frame,
    expand_paths,
    jobs_frame,
    webhooks_frame,
)
from rftcost.events.openai.snapshots import (
    dedupe_objects,
    merge_snapshots,
    resolve_methods,
    sharing_conflicts,
)
from rftcost.events.openai.steps import (
    in_progress_rows,
    step_intervals,
    step_rows,
    success_after_its_steps,
)

__all__ = ["import_openai"]


def import_openai(paths: Sequence[str | Path] | str | Path) -> OpenAIImport:
    """Import OpenAI fine-tuning exports (files or folders) as canonical events.

    Malformed objects, messages no rule knows and missing pieces are reported in the
    result, never guessed at. Raises ``UnreadableFileError`` for a path that does not
    exist and ``ExportError`` when nothing in the paths is an OpenAI export.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files, notes = expand_paths(paths)
    reader = ExportReader()
    for file in files:
        if not reader.read_file(file) and not any(p.file == str(file) for p in reader.problems):
            reader.problems.append(
                ImportProblem(
                    file=str(file),
                    position="file",
                    reason="no fine-tuning job, event or checkpoint objects in it",
                )
            )
    if reader.seq + reader.pages == 0:
        where = ", ".join(str(p) for p in paths)
        found = (
            f" ({reader.problems[0].position}: {reader.problems[0].reason})"
            if reader.problems
            else ""
        )
        raise ExportError(
            f"{where}: no OpenAI fine-tuning export found{found}; expected a job object, an "
            "event or checkpoint list as the API returns it, or a folder written by 'rftcost fetch'"
        )
    problems = list(reader.problems)
    jobs = jobs_frame(reader.jobs)
    events = events_frame(reader.events)
    checkpoints = checkpoints_frame(reader.checkpoints)
    webhooks = webhooks_frame(reader.webhooks)

    events, resolve_problems, file_jobs = resolve_event_jobs(events, jobs)
    checkpoints = resolve_checkpoint_jobs(checkpoints, events, jobs)
    problems += resolve_problems + unresolved_records(checkpoints, "checkpoint")
    checkpoints = checkpoints[checkpoints["job_id"].notna()]
    # A record that cannot be read makes its own job invalid: tie it to its job.
    problems = tie_to_jobs(problems, file_jobs, jobs)

    duplicates = 0
    events, dropped, conflicts = dedupe_objects(events)
    duplicates += dropped
    problems += conflicts
    # Classified before the snapshots merge: a pause its messages show resumed is older
    # than a running snapshot (the snapshots carry no time of their own).
    events = classify_messages(chronological(events))
    conflicts_of_sharing = sharing_conflicts(jobs)
    jobs, dropped, snapshot_notes = merge_snapshots(jobs, events)
    duplicates += dropped
    notes += snapshot_notes
    checkpoints, dropped, conflicts = dedupe_objects(checkpoints)
    duplicates += dropped
    problems += conflicts
    webhooks, dropped, conflicts = dedupe_objects(webhooks)
    duplicates += dropped
    problems += conflicts

    jobs, method_notes, job_problems = resolve_methods(jobs, events)
    notes += method_notes
    skipped_ids = set(jobs.loc[jobs["method"].fillna("") != "reinforcement", "job_id"]) - {
        p.job_id for p in job_problems
    }
    jobs = jobs[~jobs["job_id"].isin(skipped_ids)]
    events = events[~events["job_id"].isin(skipped_ids)].reset_index(drop=True)
    checkpoints = checkpoints[~checkpoints["job_id"].isin(skipped_ids)]
    webhooks = webhooks[~webhooks["job_id"].isin(skipped_ids)]
    job_problems += [p for p in conflicts_of_sharing if p.job_id not in skipped_ids]
    # A skipped job is not billed: its unreadable records are still listed, untied.
    problems = [
        p.model_copy(update={"job_id": None}) if p.job_id in skipped_ids else p for p in problems
    ]

    steps = step_intervals(events, jobs)
    announced, announced_notes = announced_checkpoints(events, checkpoints)
    saved, saved_notes = checkpoint_rows(checkpoints, events)
    toggles = events.loc[events["rule_event"].isin(["paused", "resumed"]), ["job_id", "ts"]]
    usage = captured_usage(usage_table(events), pd.concat([saved, announced]), toggles)
    status, status_notes = status_rows(jobs, events, webhooks)
    canonical = canonical_events(
        [
            job_created_rows(jobs),
            message_event_rows(events),
            status,
            state_rows(events, steps),
            step_rows(steps),
            usage_rows(usage),
            saved,
            announced,
        ]
    )
    # R7: a cancel or pause loses nothing, the step in progress at it included.
    canonical = canonical_events([canonical, in_progress_rows(steps, canonical)])
    canonical, success_notes = success_after_its_steps(canonical)
    canonical, late_notes = usage_by_the_end(canonical_events([canonical]))
    canonical = canonical_events([canonical])
    problems += usage_problems(usage)
    # A checkpoint listed or announced past the last metrics step: its time is not there.
    every_checkpoint = pd.concat(
        [checkpoints[["job_id", "step"]], announced[["job_id", "step"]]], ignore_index=True
    )
    job_problems += incomplete_jobs(jobs, events, steps, every_checkpoint, canonical)
    job_problems += unknown_grader_problems(jobs, steps, usage)
    vendor = vendor_hours(events)
    notes += status_notes + saved_notes + announced_notes + success_notes + late_notes
    notes += import_notes(jobs, events, steps, checkpoints, usage, vendor)
    notes += failed_without_checkpoints(canonical)
    return OpenAIImport(
        events=canonical,
        jobs=_imported_jobs(jobs, vendor),
        unknown_messages=_unknown(events),
        problems=tuple(problems),
        job_problems=tuple(job_problems),
        notes=tuple(notes),
        files=tuple(str(f) for f in files),
        objects_read=reader.seq,
        duplicates=duplicates,
    )


def _unknown(events: pd.DataFrame) -> tuple[UnknownMessage, ...]:
    """The messages no rule matches, in time order per job."""
    unknown = events[events["rule"] == -1]
    return tuple(
        UnknownMessage(
            job_id=str(row.job_id),
            event_id=str(row.id),
            created_at=pd.Timestamp(cast(Any, row.ts)).to_pydatetime(),
            level=optional_text(row.level),
            message=str(row.message),
            file=str(row.file),
        )
        for row in unknown.itertuples()
    )


def _imported_jobs(jobs: pd.DataFrame, vendor: pd.Series) -> tuple[ImportedJob, ...]:
    """The merged job objects as ``ImportedJob``, by id, with Azure's billed hours if said."""
    hours = {str(k): vendor_decimal(v) for k, v in vendor.items()}

    def when(epoch: Any) -> datetime | None:
        if is_missing(epoch):
            return None
        return pd.Timestamp(int(epoch), unit="s", tz="UTC").to_pydatetime()

    return tuple(
        ImportedJob(
            job_id=str(row.job_id),
            status=optional_text(row.status),
            model=optional_text(row.model),
            created_at=cast(datetime, when(row.created_at)),
            finished_at=when(row.finished_at),
            team=optional_text(row.team),
            project=optional_text(row.project),
            data_sharing=None if is_missing(row.data_sharing) else bool(row.data_sharing),
            grader_type=optional_text(row.grader_type),
            grader_model=optional_text(row.grader_model),
            file=str(row.file),
            vendor_billed_hours=hours.get(str(row.job_id)),
        )
        for row in jobs.sort_values("job_id").itertuples()
    )
