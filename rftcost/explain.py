"""One job's time line, second by second: why each stretch is billed, excluded or lost.

``explain(bill, job_id)`` cuts the job's wall clock at every phase boundary,
billing event and lost interval, and classifies each stretch:

- ``billed``: inside a billable phase (R1), charged in the segment's charge (R4);
- ``lost``: billable work after the retained checkpoint of a failure (R5) or
  before a rollback (R6), not charged;
- ``accrued``: billable work after the last billing event (R8), not charged yet;
- ``excluded``: only non-billable phases (R2);
- ``idle``: no phase at all;
- ``unknown``: billable work of an invalid job, whose amount cannot be established
  (never shown as billed, nor as $0).

This is per job (one job's events), so plain Python over its few hundred
boundaries is the readable choice; nothing here runs per job over a whole log.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, PlainSerializer

from rftcost._callable import make_module_callable
from rftcost.billing import Bill, JobBill
from rftcost.errors import RftcostError
from rftcost.time import datetime_from_ns, iso_trimmed

__all__ = ["EXPLAIN_SCHEMA", "Explanation", "LossEvidence", "Stretch", "explain"]

EXPLAIN_SCHEMA = "rftcost.explain/v1"
"""The ``schema`` of ``Explanation.to_document``."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")

Instant = Annotated[datetime, PlainSerializer(iso_trimmed, return_type=str, when_used="json")]
"""A UTC instant, written in JSON as the bill writes its times (``…T10:00:00.25Z``)."""


class Stretch(BaseModel):
    """A stretch of a job's wall clock with one classification."""

    model_config = _FROZEN

    start: Instant
    """Start (inclusive), UTC."""
    end: Instant
    """End (exclusive), UTC."""
    status: str
    """billed, lost, accrued, excluded, idle, or unknown (billable work of an invalid job)."""
    phases: tuple[str, ...]
    """Phases open during the stretch."""
    charge: int | None
    """1-based charge number for billed and lost stretches."""
    reason: str
    """Why it has this status, citing the rule."""

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return (self.end - self.start).total_seconds()


class LossEvidence(BaseModel):
    """A lost interval and what caused it (R5, R6)."""

    model_config = _FROZEN

    start: Instant
    """Start of the loss (the retained checkpoint, or the segment start)."""
    end: Instant
    """The failure or rollback."""
    cause: str
    """failure or rollback."""
    checkpoint_step: int | None
    """The checkpoint returned to, if any."""
    checkpoint_at: Instant | None
    """When that checkpoint was saved."""


class Explanation(BaseModel):
    """Everything about one job's bill: stretches, losses, checkpoints and charges."""

    model_config = _FROZEN

    job: JobBill
    """The job's bill."""
    policy: str
    """Policy in force."""
    rounding_scope: str = "charge"
    """Where the policy rounds billable time (R11): ``charge`` (each charge's seconds on
    their own) or ``job`` (the job's seconds once, all on its last charge)."""
    stretches: tuple[Stretch, ...]
    """The wall clock, cut and classified."""
    losses: tuple[LossEvidence, ...]
    """Lost intervals with their evidence."""
    checkpoints: tuple[tuple[Instant, int], ...]
    """(saved at, step) of every checkpoint."""
    billing_events: tuple[tuple[Instant, str], ...]
    """(at, event) of every billing event."""
    phase_intervals: tuple[tuple[str, Instant, Instant, bool], ...]
    """(phase, start, end, billable) of every phase interval."""
    first_event_at: Instant | None = None
    """The job's first event, UTC (``None``: no record of the job could be read)."""
    last_event_at: Instant | None = None
    """The job's last event, UTC (``None``: no record of the job could be read)."""

    @property
    def records_read(self) -> bool:
        """Whether any record of the job could be read: when none could (every one was
        rejected), its team, project, model and time cannot be established."""
        return self.first_event_at is not None

    def to_document(self) -> dict[str, Any]:
        """The ``rftcost.explain/v1`` JSON document: ``schema``, then every field."""
        return {"schema": EXPLAIN_SCHEMA, **self.model_dump(mode="json")}


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """A frame's rows as named tuples, typed ``Any``: each field's type follows its
    column's dtype, which the stubs cannot know."""
    return frame.itertuples(index=False)


def explain(bill: Bill, job_id: str) -> Explanation:
    """Explain one job of ``bill``; ``KeyError`` if the job is not in it."""
    job = bill.job(job_id)
    timeline = bill.timeline
    found = timeline.jobs.index[timeline.jobs["job_id"] == job_id]
    if len(found) == 0:
        # Every record of the job was rejected (its problems say which): an invalid job
        # with no wall clock to cut, whose first and last events are unknown.
        return Explanation(
            job=job,
            policy=bill.policy.name,
            rounding_scope=str(bill.policy.rounding.scope.value),
            stretches=(),
            losses=(),
            checkpoints=(),
            billing_events=(),
            phase_intervals=(),
        )
    code = int(found[0])
    intervals = timeline.intervals[timeline.intervals["job"] == code]
    if intervals.empty and (job.billable_seconds or job.excluded_seconds or job.lost_seconds):
        raise RftcostError(
            f"the bill of job {job_id} has no phase intervals (billed in buckets without "
            "them); bill with rftcost.bill(..., keep_timeline=True)"
        )
    losses = timeline.losses[timeline.losses["job"] == code]
    billing = timeline.charges[timeline.charges["job"] == code]
    first_ns = int(timeline.jobs["first_ns"].loc[code])
    last_ns = int(timeline.jobs["last_ns"].loc[code])

    spans = [(str(r.phase), int(r.start), int(r.end), bool(r.billable)) for r in _rows(intervals)]
    loss_spans = [(int(r.start), int(r.end), str(r.cause)) for r in _rows(losses)]
    billing_ts = sorted(int(t) for t in billing["at"])
    cuts = sorted(
        {first_ns, last_ns, *billing_ts}
        | {t for _, s, e, _ in spans for t in (s, e)}
        | {t for s, e, _ in loss_spans for t in (s, e)}
    )
    stretches: list[Stretch] = []
    for start, end in itertools.pairwise(cuts):
        active = tuple(sorted({p for p, s, e, _ in spans if s <= start and end <= e}))
        # R2: a pause is never billed, even with a billable phase left open across it.
        billable = "paused" not in active and any(
            b for _, s, e, b in spans if b and s <= start and end <= e
        )
        segment = sum(1 for t in billing_ts if t <= start)
        lost_by = [c for s, e, c in loss_spans if s <= start and end <= e]
        status, charge, reason = _classify(
            billable, active, lost_by, segment, len(billing_ts), job.status
        )
        stretch = Stretch(
            start=datetime_from_ns(start),
            end=datetime_from_ns(end),
            status=status,
            phases=active,
            charge=charge,
            reason=reason,
        )
        previous = stretches[-1] if stretches else None
        if previous and (previous.status, previous.phases, previous.charge) == (
            status,
            active,
            charge,
        ):
            stretches[-1] = previous.model_copy(update={"end": stretch.end})
        else:
            stretches.append(stretch)

    checkpoints = timeline.checkpoints[timeline.checkpoints["job"] == code]
    return Explanation(
        job=job,
        policy=bill.policy.name,
        rounding_scope=str(bill.policy.rounding.scope.value),
        stretches=tuple(stretches),
        losses=tuple(
            LossEvidence(
                start=datetime_from_ns(r.start),
                end=datetime_from_ns(r.end),
                cause=str(r.cause),
                checkpoint_step=None if pd.isna(r.checkpoint_step) else int(r.checkpoint_step),
                checkpoint_at=None
                if pd.isna(r.checkpoint_ts)
                else datetime_from_ns(int(r.checkpoint_ts)),
            )
            for r in _rows(losses)
        ),
        checkpoints=tuple(
            (datetime_from_ns(t), int(s))
            for t, s in zip(checkpoints["ts"], checkpoints["step"], strict=True)
        ),
        billing_events=tuple(
            (datetime_from_ns(t), str(e))
            for t, e in zip(billing["at"], billing["event"], strict=True)
        ),
        phase_intervals=tuple(
            (p, datetime_from_ns(s), datetime_from_ns(e), b) for p, s, e, b in spans
        ),
        first_event_at=datetime_from_ns(first_ns),
        last_event_at=datetime_from_ns(last_ns),
    )


def _classify(
    billable: bool,
    active: tuple[str, ...],
    lost_by: list[str],
    segment: int,
    n_charges: int,
    status: str,
) -> tuple[str, int | None, str]:
    if billable and status == "invalid":
        # An invalid job has no charges to put this time in: it is neither billed nor
        # free, its amount is unknown (never shown as charged, never as $0).
        return "unknown", None, "billable phase of an invalid job: amount unknown, not charged"
    charge = segment + 1 if segment < n_charges else None
    if billable and lost_by:
        cause = " and ".join(sorted(set(lost_by)))
        rule = "R5" if "failure" in lost_by else "R6"
        return "lost", charge, f"billable work lost to a {cause}, not charged ({rule})"
    if billable and charge is not None:
        return "billed", charge, f"billable phase, charged in charge {charge} (R1, R4)"
    if billable:
        return "accrued", None, "billable work after the last billing event, not charged yet (R8)"
    if "paused" in active and len(active) > 1:
        return "excluded", None, "paused: never billed, whatever phase is open (R2)"
    if active:
        return "excluded", None, "only non-billable phases (R2)"
    return "idle", None, "no phase open; not billed"


# ``rftcost.explain`` is both this module and the function (see ``rftcost._callable``).
make_module_callable(__name__, explain)
