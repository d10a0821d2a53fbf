"""Duplicates: job snapshots merged field by field, objects read twice counted once.

Several snapshots of one job (create, pause, resume, cancel responses, retrieves)
merge into one row: the most advanced status wins and an absent field never
overrides a present one; disagreements are noted. Events, checkpoints and webhooks
with the same id within a job are one (other content is a problem). A job's method
is RFT when named so, or inferred from RFT metrics; another method is skipped.
"""

from __future__ import annotations

import pandas as pd

from rftcost.events.openai.messages import FINAL_STATUSES
from rftcost.events.openai.model import ImportProblem
from rftcost.events.openai.reading import line_in_file

__all__ = ["dedupe_objects", "merge_snapshots", "resolve_methods"]


_STATUS_RANK = {"validating_files": 0, "queued": 1, "running": 2, "paused": 3}
"""How advanced a status is; a final status (and any other) ranks above them all."""


def merge_snapshots(jobs: pd.DataFrame) -> tuple[pd.DataFrame, int, list[str]]:
    """One row per job: its snapshots merged field by field (kind 2).

    The create, pause, resume and cancel responses and later retrieves of one job are
    snapshots. The most advanced status wins (a finished job over a paused one over a
    running one; at equal rank the one read last); every other field takes the value
    of the most advanced snapshot that has one, so an absent field never overrides a
    present one. Snapshots that disagree on data sharing or on how the job ended are
    reported with the value used.
    """
    rank = jobs["status"].map(_STATUS_RANK).astype("float64")
    rank = rank.fillna(len(_STATUS_RANK)).where(jobs["status"].notna(), -1.0)
    ordered = jobs.assign(_rank=rank).sort_values(
        ["job_id", "_rank", "seq"], ascending=[True, False, False], kind="stable"
    )
    merged = (
        ordered.drop(columns="_rank")
        .groupby("job_id", sort=False, as_index=False)
        .first()
        .astype(jobs.dtypes.to_dict())
    )
    notes: list[str] = []
    sharing = ordered.groupby("job_id", sort=False)["data_sharing"].nunique()
    for job_id in sharing[sharing > 1].index:
        row = merged[merged["job_id"] == job_id].iloc[0]
        seen = ordered.loc[ordered["job_id"] == job_id, ["data_sharing", "file"]].dropna()
        said = "; ".join(
            f"{f}: {bool(v)}" for v, f in zip(seen["data_sharing"], seen["file"], strict=True)
        )
        notes.append(
            f"job {job_id}: snapshots disagree on data sharing (shared_with_openai {said}); "
            f"used {bool(row['data_sharing'])}, from the latest snapshot ({row['file']})"
        )
    final = ordered[ordered["status"].isin(FINAL_STATUSES)]
    ends = final.groupby("job_id", sort=False)["status"].nunique()
    for job_id in ends[ends > 1].index:
        endings = sorted(set(final.loc[final["job_id"] == job_id, "status"]))
        used = merged.loc[merged["job_id"] == job_id, "status"].iloc[0]
        notes.append(
            f"job {job_id}: snapshots disagree on how the job ended ({', '.join(endings)}); "
            f"the snapshot read last says {used!r} and is used"
        )
    merged = merged.sort_values("seq").reset_index(drop=True)
    return merged, len(jobs) - len(merged), notes


def resolve_methods(
    jobs: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, list[str], list[ImportProblem]]:
    """RFT jobs: named so by a snapshot, or (no snapshot names a method) by RFT metrics.

    The pause / resume / cancel responses carry no ``method``: a job whose metrics
    events are RFT's (step timing, grader usage, rewards) is an RFT job. A job whose
    method no snapshot names and no RFT metrics show cannot be billed: it is invalid,
    never dropped. Another method (supervised, dpo) is skipped with a note.
    """
    rft_jobs = set(events.loc[events["rft_metrics"], "job_id"])
    unnamed = jobs["method"].isna()
    inferred = unnamed & jobs["job_id"].isin(rft_jobs)
    notes = [
        f"job {job_id}: no snapshot names its method; its metrics events are RFT's "
        "(step timing, grader usage or rewards): imported as reinforcement fine-tuning"
        for job_id in jobs.loc[inferred, "job_id"]
    ]
    problems = [
        ImportProblem(
            file=str(row.file),
            position="job",
            reason="no snapshot names the job's method and no metrics event shows RFT "
            "(step timing, grader usage): it cannot be billed as reinforcement fine-tuning; "
            "export the job object (GET /v1/fine_tuning/jobs/{id}) with its method",
            job_id=str(row.job_id),
        )
        for row in jobs[unnamed & ~inferred].itertuples()
    ]
    method = jobs["method"].mask(inferred, "reinforcement")
    skipped = jobs[method.notna() & (method != "reinforcement")]
    notes += [
        f"job {row.job_id}: method {row.method}, not reinforcement fine-tuning: skipped "
        "with its events"
        for row in skipped.itertuples()
    ]
    return jobs.assign(method=method), notes, problems


def dedupe_objects(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, list[ImportProblem]]:
    """Objects with the same id within a job are one; the same id with other content is reported."""
    frame = frame.sort_values("seq")
    repeated = frame.duplicated(["job_id", "id"], keep="first")
    same = frame.duplicated(["job_id", "id", "fingerprint"], keep="first")
    conflicting = frame[repeated & ~same]
    kept = frame[~repeated]
    first_seen = conflicting[["job_id", "id"]].merge(
        kept[["job_id", "id"]].assign(at=kept["file"] + ": " + kept["position"]),
        on=["job_id", "id"],
        how="left",
    )["at"]
    problems = [
        ImportProblem(
            file=str(file),
            position=str(position),
            reason=f"id {object_id} also read at {at} with other content: the first is kept",
            job_id=str(job_id),
            line=line_in_file(str(file), str(object_id)),
        )
        for file, position, job_id, object_id, at in zip(
            conflicting["file"],
            conflicting["position"],
            conflicting["job_id"],
            conflicting["id"],
            first_seen,
            strict=True,
        )
    ]
    return frame[~repeated].reset_index(drop=True), int(repeated.sum()), problems
