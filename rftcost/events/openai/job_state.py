"""How a job ended, from every saved shape of it, when no message says so (R4).

A message of the table first; else a webhook payload; else an error-level event after
the last work of a job whose object says ``failed`` or nothing; else the job
object's ``status`` at ``finished_at``; a paused job object whose events do not end
paused is paused at its last event. Each inference is noted with its evidence, and so
is evidence that contradicts the (time-stamped) messages.
"""

from __future__ import annotations

from typing import Any, cast

import pandas as pd

from rftcost.events.openai.frames import (
    event_ids,
    is_missing,
    lookup,
    optional_text,
    true_where,
    utc_from_epoch,
)
from rftcost.events.openai.messages import FINAL_STATUSES

__all__ = ["status_rows"]


def status_rows(
    jobs: pd.DataFrame, events: pd.DataFrame, webhooks: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """How a job ended when no message of its events says so, from other evidence (R4).

    The message wording varies (API reference, logs, Azure), so a job's state comes
    from every saved shape of it, in this order: a message the table knows; a webhook
    payload (``fine_tuning.job.succeeded`` / ``.failed`` / ``.cancelled``) at its time;
    an error-level event of a job whose object says ``failed`` (or says nothing), at its
    time, when no work of the job is logged after it (a step, a start: a job that went on
    after an error did not end there); the job object's ``status`` at ``finished_at``
    (else the job's last event).
    Each inferred event is reported with its evidence; evidence that contradicts the
    messages is reported too, and the messages (time-stamped) are used.
    """
    said = events[events["rule_event"].isin(FINAL_STATUSES)]
    said_by_job = {
        str(k): str(v) for k, v in said.groupby("job_id", sort=False)["rule_event"].last().items()
    }
    status = jobs.set_index("job_id")["status"]
    status_text = {str(k): optional_text(v) for k, v in status.items()}
    last_ts = events.groupby("job_id", sort=False)["ts"].max()
    notes: list[str] = []
    parts: list[pd.DataFrame] = []
    known = set(said_by_job)

    hooks = webhooks.sort_values(["created_at", "seq"]).drop_duplicates("job_id", keep="last")
    for row in hooks[hooks["job_id"].isin(known)].itertuples():
        if said_by_job[str(row.job_id)] != row.status:
            notes.append(
                f"job {row.job_id}: webhook {row.id} says {row.status!r} but its events say "
                f"{said_by_job[str(row.job_id)]!r}: the events are used"
            )
    hooks = hooks[~hooks["job_id"].isin(known)]
    hook_ts = utc_from_epoch(hooks["created_at"])
    parts.append(
        pd.DataFrame(
            {
                "job_id": hooks["job_id"],
                "ts": hook_ts,
                "event": hooks["status"],
                "event_id": event_ids(hooks["id"], hooks["status"]),
                "message": "webhook fine_tuning.job." + hooks["status"],
            }
        )
    )
    notes += [
        f"job {row.job_id}: {row.status} at {ts.isoformat()} from webhook {row.id} "
        "(no message of its events says so)"
        for row, ts in zip(hooks.itertuples(), hook_ts, strict=True)
    ]
    known |= set(hooks["job_id"])

    job_status = lookup(events["job_id"], status)
    # An error the job went on working after ("retrying", then a step or a restart) is
    # not how it ended; notes after it (a moderation check, hours billed) do not count.
    work = events[(events["type"] == "metrics") | true_where(events["training_starts"])]
    last_work = lookup(events["job_id"], work.groupby("job_id", sort=False)["ts"].max())
    errors = events[
        (events["rule"] == -1)
        & true_where(events["level"].str.lower().eq("error"))
        & ~events["job_id"].isin(known)
        & (job_status.isna() | true_where(job_status.eq("failed")))
        & (last_work.isna() | (events["ts"] >= last_work)).to_numpy()
    ].drop_duplicates("job_id", keep="last")
    parts.append(
        pd.DataFrame(
            {
                "job_id": errors["job_id"],
                "ts": errors["ts"],
                "event": "failed",
                "event_id": event_ids(errors["id"], "failed"),
                "message": errors["message"],
            }
        )
    )
    notes += [
        f"job {row.job_id}: failed at {pd.Timestamp(cast(Any, row.ts)).isoformat()} from its "
        f"error-level event {row.id} ({row.message!r})"
        + (
            f"; the job object says {status_text[str(row.job_id)]!r}"
            if str(row.job_id) in status_text
            else ""
        )
        for row in errors.itertuples()
    ]
    known |= set(errors["job_id"])

    ended = jobs[jobs["status"].isin(FINAL_STATUSES)]
    for row in ended[ended["job_id"].isin(known)].itertuples():
        if said_by_job.get(str(row.job_id), str(row.status)) != str(row.status):
            notes.append(
                f"job {row.job_id}: the job object says {row.status!r} but its events say "
                f"{said_by_job[str(row.job_id)]!r}: the events (time-stamped) are used"
            )
    ended = ended[~ended["job_id"].isin(known)]
    finished = utc_from_epoch(ended["finished_at"].astype("float64"))
    fallback = lookup(ended["job_id"], last_ts)
    at = finished.fillna(fallback)
    ended, finished, at = ended[at.notna()], finished[at.notna()], at[at.notna()]
    parts.append(
        pd.DataFrame(
            {
                "job_id": ended["job_id"],
                "ts": at,
                "event": ended["status"],
                "event_id": event_ids(ended["job_id"], "status", ended["status"]),
                "message": "job object status " + ended["status"],
            }
        )
    )
    notes += [
        f"job {row.job_id}: {row.status} at {when.isoformat()} from the job object "
        + (
            "(status and finished_at)"
            if not is_missing(fin)
            else "(status; no finished_at: at its last event)"
        )
        + " as no message of its events says so"
        + (
            f"; its error: {optional_text(row.error_message)}"
            if not is_missing(row.error_message)
            else ""
        )
        for row, when, fin in zip(ended.itertuples(), at, finished, strict=True)
    ]

    # A paused job (the pause response) whose events do not end paused: paused at its
    # last event, the last time known (R4: a pause issues a charge).
    toggles = events[events["rule_event"].isin(["paused", "resumed"])]
    last_toggle = toggles.groupby("job_id", sort=False)["rule_event"].last()
    paused = jobs[true_where(jobs["status"].eq("paused"))]
    paused = paused[
        lookup(paused["job_id"], last_toggle).ne("paused").fillna(True).astype(bool)
        & paused["job_id"].isin(last_ts.index)
    ]
    parts.append(
        pd.DataFrame(
            {
                "job_id": paused["job_id"],
                "ts": lookup(paused["job_id"], last_ts),
                "event": "paused",
                "event_id": event_ids(paused["job_id"], "status", "paused"),
                "message": "job object status paused",
            }
        )
    )
    # A pause message followed by a resume is not "no message": say what the events show.
    toggled_last = toggles.groupby("job_id", sort=False)["ts"].last()
    notes += [
        f"job {job_id}: paused at its last event, from the job object (status 'paused'); "
        + (
            "no message of its events says so"
            if is_missing(last)
            else f"its events end resumed (at {pd.Timestamp(cast(Any, last)).isoformat()}) "
            "and no later message says paused: the job object's status is taken as a later pause"
        )
        for job_id, last in zip(
            paused["job_id"], lookup(paused["job_id"], toggled_last), strict=True
        )
    ]
    return pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True), notes
