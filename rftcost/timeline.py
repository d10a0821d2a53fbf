"""Events → time: phase intervals, segments between billing events, lost work (R1-R8).

This is the time half of the billing kernel. It takes a frame holding any number
of complete jobs and works on all of them at once with sorts, group-bys,
cumulative sums and ``merge_asof``: there is no Python loop per job or per event,
so the same function can run over a whole log, over a hash bucket of jobs, or
inside a cluster engine's ``applyInPandas``.

Time stays in integer nanoseconds (UTC) here; ``billing`` turns it into money.

The result, ``Timeline``, holds frames keyed by ``job`` (an integer code; ``jobs``
maps it to ``job_id``):

- ``jobs``: one row per job: first/last event, settings from ``job_created``,
  billing-event count, status;
- ``intervals``: every phase interval ``[start, end)`` with its phase, whether it
  is billable and how it was closed (``end``, ``billing_event``, ``open``);
- ``charges``: one row per billing event (R4) with its segment's billable and lost
  nanoseconds;
- ``accrued``: billable and lost nanoseconds after a job's last billing event (R8);
- ``losses``: lost intervals ``(start, end]`` with their cause and evidence (R5, R6);
- ``pieces``: the elementary pieces of each job's time line (for explain, charts);
- ``excluded``: per job and non-billable phase, the union of its intervals (R2);
- ``usage``: grader usage events with their segment and whether they were lost (R9);
- ``problems``: reasons a job cannot be reconstructed (it is then ``invalid``).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from rftcost.events.schema import BILLING_EVENTS, FINAL_EVENTS, JOB_SETTING_COLUMNS
from rftcost.job_settings import no_problems, setting_conflicts, settings_elsewhere
from rftcost.policy import Policy
from rftcost.runs import asof_join, new_runs, running_max, running_sum, sorted_by
from rftcost.time import iso_series

__all__ = ["MAX_JOB_SPAN_NS", "MAX_TOKEN_SUM", "Timeline", "build_timeline"]

# Order of events that share a timestamp (event-log.md, "Pairing" and "Boundaries"):
# an end closes an interval before a billing event, and a billing event closes a
# segment before anything that starts at the same moment belongs to the next one.
# Billing events at one moment have an order of their own, never the records' (order
# does not matter): a pause before the job's end, and of two ends, the same one always
# found after the other.
_PRIORITY = {
    "phase_end": 0,
    "job_created": 1,
    "step_completed": 2,
    "checkpoint_saved": 2,
    "grader_usage": 2,
    "rollback": 3,
    "paused": 4,
    "cancelled": 5,
    "failed": 6,
    "succeeded": 7,
    "resumed": 8,
    "phase_start": 8,
}


class Timeline(BaseModel):
    """The time of every job: intervals, segments, lost work and problems."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    jobs: pd.DataFrame
    """One row per job (index ``job``): job_id, first_ns, last_ns, settings, status."""
    intervals: pd.DataFrame
    """Phase intervals: job, phase, start, end, billable, closed_by."""
    charges: pd.DataFrame
    """One row per billing event: job, charge (0-based), at, event, billable_ns, lost_ns."""
    accrued: pd.DataFrame
    """Per job, work after the last billing event: job, billable_ns, lost_ns."""
    losses: pd.DataFrame
    """Lost intervals (start, end]: job, start, end, cause, at, checkpoint_step, checkpoint_ts."""
    pieces: pd.DataFrame
    """Elementary pieces: job, start, end, segment, billable, lost."""
    excluded: pd.DataFrame
    """Per job and non-billable phase: job, phase, ns (union of that phase's intervals)."""
    usage: pd.DataFrame
    """Grader usage: job, ts, segment, lost, grader_model, token counts."""
    checkpoints: pd.DataFrame
    """Checkpoints: job, ts, step."""
    problems: pd.DataFrame
    """Reasons jobs cannot be reconstructed: job, problem."""


def build_timeline(
    events: pd.DataFrame, policy: Policy, reader_problems: pd.DataFrame | None = None
) -> Timeline:
    """Compute the timeline of every job in ``events`` (an ``EventLog.events`` frame).

    ``reader_problems`` (job_id, problem) are reader findings (rejected records,
    conflicts) that make a job invalid too.
    """
    ordered, job_ids = _order(events)
    jobs, setting_problems = _job_facts(events, ordered, job_ids)
    problems: list[pd.DataFrame] = [
        setting_problems,
        settings_elsewhere(events, ordered, jobs, policy),
        _implausible_spans(jobs),
    ]
    if reader_problems is not None and len(reader_problems):
        codes = pd.Series(jobs.index, index=jobs["job_id"].to_numpy())
        known = reader_problems[reader_problems["job_id"].isin(codes.index)]
        problems.append(
            pd.DataFrame(
                {
                    "job": codes.loc[known["job_id"]].to_numpy(),
                    "problem": known["problem"].to_numpy(),
                }
            )
        )
    ordered = ordered.assign(segment=_segments(ordered))
    billing, billing_problems = _billing_events(ordered, jobs)
    problems.append(billing_problems)
    points = _points(ordered, events)
    intervals, pairing_problems, paused = _intervals(ordered, events, billing, jobs, policy)
    problems.append(pairing_problems)
    problems.append(_backward_steps(points))
    checkpoints = points.loc[
        _event_is(points["event"], ("checkpoint_saved",)), ["job", "ts", "step", "segment"]
    ]
    losses, loss_problems = _losses(points, billing, checkpoints, jobs, policy)
    problems.append(loss_problems)
    spans = intervals[["job", "start", "end"]]
    billable = _union(spans[intervals["billable"].to_numpy()], ["job"])
    pauses = _union(spans[paused] if paused.any() else spans.iloc[0:0], ["job"])
    loss_islands = _union(losses[["job", "start", "end"]], ["job"])
    pieces = _pieces(billable, loss_islands, billing, pauses)
    charges, accrued = _segment_totals(pieces, billing, jobs)
    excluded = _excluded(intervals)
    usage = _usage(points, loss_islands)
    too_many, usage = _uncountable_tokens(usage)
    problems.append(too_many)
    problem_frame = (
        pd.concat(problems, ignore_index=True)
        if problems
        else pd.DataFrame(
            {"job": pd.Series([], dtype="int64"), "problem": pd.Series([], dtype="string")}
        )
    )
    jobs = jobs.assign(
        status=_status(jobs, billing, ordered, problem_frame),
    )
    return Timeline(
        jobs=jobs,
        intervals=intervals,
        charges=charges,
        accrued=accrued,
        losses=losses,
        pieces=pieces,
        excluded=excluded,
        usage=usage,
        checkpoints=checkpoints[["job", "ts", "step"]].reset_index(drop=True),
        problems=problem_frame,
    )


# --- ordering and job facts ----------------------------------------------------------


_POINT_EVENTS = ("step_completed", "checkpoint_saved", "rollback", "grader_usage")
_POINT_COLUMNS = ("step", "grader_model", "input_tokens", "cached_input_tokens", "output_tokens")


def _order(events: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The narrow frame the kernel sorts: job code, time, event, phase and the event's
    ``row`` in ``events``, sorted by job, time and same-time priority; and the job ids by
    code. Other columns are fetched by ``row`` for the few events needing them."""
    codes, job_ids = _job_codes(events["job_id"])
    event = events["event"].astype("category")
    # Small integers: the arrays of a whole part are many pages, each one touched costs.
    by_category = np.array([_PRIORITY[name] for name in event.cat.categories] + [0], dtype="int8")
    priority = by_category[event.cat.codes.to_numpy()]
    ts = events["ts"].to_numpy(dtype="int64")
    order = _stable_order(codes, ts, priority)
    ordered = pd.DataFrame(
        {
            "job": codes[order],
            "ts": ts[order],
            "event": event.array.take(order),
            "phase": events["phase"].array.take(order),
            "row": order,
        },
        copy=False,
    )
    return ordered, np.asarray(job_ids, dtype=object)


def _stable_order(codes: np.ndarray, ts: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Rows sorted by job, time and same-time priority (ties kept in input order).

    Priorities are below 16: when the log's time span leaves room, time and priority
    pack into one integer key, a sort on two keys instead of three.
    """
    if len(ts) == 0:
        return np.zeros(0, dtype="int64")
    low, high = int(ts.min()), int(ts.max())
    if (high - low) < (2**63 - 1) // 16 - 16:
        packed = ts - low  # in place from here: one array of the part's size, not three
        packed *= 16
        packed += priority
        return sorted_by(codes, packed)
    return np.lexsort((priority, ts, codes))


def _event_is(event: pd.Series, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Whether each row's event is one of ``names``: a lookup by category code (the
    kernel's ``event`` column is categorical), not a comparison of every row's text.
    A missing event is none of them."""
    if not isinstance(event.dtype, pd.CategoricalDtype):
        return event.isin(names).to_numpy(dtype=bool)
    categorical = cast(pd.Categorical, event.array)
    codes = categorical.codes  # -1: missing, none of the categories
    wanted = np.flatnonzero(categorical.categories.isin(names))
    chosen = np.zeros(len(codes), dtype=bool)
    for code in wanted:  # the few names asked for, each one comparison of small integers
        chosen |= codes == code
    return chosen


def _job_codes(job_id: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each event's job code, and the job ids by code, in sorted order of the ids."""
    if not isinstance(job_id.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(job_id.astype(str), sort=True)
        return codes, np.asarray(uniques, dtype=object)
    # A categorical is coded already: sort its few categories, not every row's text,
    # and leave out the unused ones by counting codes (not by recoding every row).
    raw = job_id.cat.codes.to_numpy()
    categories = job_id.cat.categories
    if len(raw) and int(raw.min()) < 0:  # a missing id (readers reject those): as before
        job_id = job_id.cat.remove_unused_categories()
        raw, categories = job_id.cat.codes.to_numpy(), job_id.cat.categories
        used = np.arange(len(categories))
    else:
        used = np.flatnonzero(np.bincount(raw, minlength=len(categories)))
    names = categories[used].astype(str).to_numpy(dtype=object)
    by_name = np.argsort(names, kind="stable")
    code_of = np.zeros(len(categories), dtype="int64")
    code_of[used[by_name]] = np.arange(len(used))
    return code_of[raw], names[by_name]


def _points(ordered: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Steps, checkpoints, rollbacks and grader usage, in order, with their own columns."""
    # Positions, then takes: a boolean mask over a whole part is slower to apply.
    chosen = np.flatnonzero(_event_is(ordered["event"], _POINT_EVENTS))
    # The columns the points are read by (not the phase), and their own ones taken from
    # ``events`` by position: one frame built at once.
    columns = {c: ordered[c].array.take(chosen) for c in ("job", "ts", "event", "segment", "row")}
    rows = np.asarray(columns["row"])
    columns.update({c: events[c].array.take(rows) for c in _POINT_COLUMNS})
    return pd.DataFrame(columns, index=ordered.index[chosen])


def _job_facts(
    events: pd.DataFrame, ordered: pd.DataFrame, job_ids: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per job with its settings from ``job_created``; and the jobs whose
    ``job_created`` records disagree on a setting (invalid: which one is right is not
    known, and taking the first would bill, say, without a discount silently)."""
    # ``ordered`` is sorted by job and time: a job's first and last rows hold its times.
    job, ts = ordered["job"].to_numpy(), ordered["ts"].to_numpy(dtype="int64")
    firsts = np.flatnonzero(new_runs(job))
    lasts = np.append(firsts[1:] - 1, len(job) - 1) if len(job) else firsts
    facts = pd.DataFrame(
        {"job_id": job_ids, "first_ns": ts[firsts], "last_ns": ts[lasts]},
        index=pd.RangeIndex(len(job_ids), name="job"),
    )
    # Each record's job by code (``ordered`` holds it by ``row``): no text of the ids.
    job_of_row = np.empty(len(events), dtype="int64")
    job_of_row[ordered["row"].to_numpy()] = job
    rows = np.flatnonzero(_event_is(events["event"], ("job_created",)))
    created = events[["ts", *JOB_SETTING_COLUMNS]].iloc[rows].assign(job_id=job_of_row[rows])
    created = created.sort_values("ts", kind="stable")
    repeated = created["job_id"].duplicated(keep=False).to_numpy()
    problems = setting_conflicts(created[repeated], pd.Series(np.arange(len(job_ids))))
    if repeated.any():
        # Several records that agree (or each give some settings): the first value given.
        settings = created.groupby("job_id", sort=False, observed=True).first()
    else:
        settings = created.set_index("job_id")
    settings = settings.rename_axis("job")
    # Categorical settings as ``string``; the frame built once from its columns.
    columns = {}
    for column in JOB_SETTING_COLUMNS:
        values = settings[column]
        columns[column] = (
            _as_string(values) if isinstance(values.dtype, pd.CategoricalDtype) else values
        )
    settings = pd.DataFrame(columns, index=settings.index)
    return facts.join(settings, how="left"), problems


def _as_string(values: pd.Series) -> pd.Series:
    """A categorical column as ``string``: its categories cast (what ``astype("string")``
    does to each row's value), then taken by code, NA for a missing one. Text
    categories only (a number's text may depend on the other rows)."""
    categorical = cast(pd.Categorical, values.array)
    if categorical.categories.inferred_type != "string":  # numbers cast row by row
        return values.astype("string")
    names = pd.Series(categorical.categories).astype("string").array
    return pd.Series(
        names.take(categorical.codes, allow_fill=True), index=values.index, name=values.name
    )


MAX_JOB_SPAN_NS = 731 * 24 * 3600 * 1_000_000_000
"""A job whose events span more than this (two years) is not billed: one of its timestamps
is most likely wrong (a typo'd year), and billing the span would charge for it. Two years,
not one: a long job is possible (the tests bill 10,000 hours in one charge), a typo'd
decade or century is not."""


def _implausible_spans(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs whose first and last events are more than ``MAX_JOB_SPAN_NS`` apart."""
    span = jobs["last_ns"].to_numpy(dtype="int64") - jobs["first_ns"].to_numpy(dtype="int64")
    long = span > MAX_JOB_SPAN_NS
    first = pd.Series(jobs["first_ns"].to_numpy(dtype="int64")[long], dtype="int64")
    last = pd.Series(jobs["last_ns"].to_numpy(dtype="int64")[long], dtype="int64")
    return pd.DataFrame(
        {
            "job": jobs.index.to_numpy()[long],
            "problem": (
                "its events span "
                + pd.Series(span[long] // (24 * 3600 * 1_000_000_000), dtype="int64")
                .astype(str)
                .to_numpy()
                + " days ("
                + iso_series(first).to_numpy()
                + " to "
                + iso_series(last).to_numpy()
                + "): more than two years, so a timestamp is most likely wrong"
            ),
        }
    )


# --- billing events and segments (R4) ------------------------------------------------


def _billing_events(ordered: pd.DataFrame, jobs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Billing events with their charge index and segment start; problems after a final one."""
    billing = ordered.loc[_event_is(ordered["event"], BILLING_EVENTS), ["job", "ts", "event"]]
    # Sorted by job and time: a job's billing events are a run of rows, numbered 0, 1, ...;
    # each segment starts at the billing event before it, the first at the job's first event.
    job = billing["job"].to_numpy(dtype="int64")
    ts = billing["ts"].to_numpy(dtype="int64")
    new_job = new_runs(job)
    charge = running_sum(np.ones(len(job), dtype="int64"), new_job) - 1
    previous = np.zeros(len(ts), dtype="int64")
    previous[1:] = ts[:-1]
    first = jobs["first_ns"].to_numpy(dtype="int64")[job]
    # A job restarted after a failure (``failed``, then ``resumed``) goes on: the failure
    # is not its final event, and each segment is charged on its own (R4, R5).
    resume_rows = np.flatnonzero(_event_is(ordered["event"], ("resumed",)))
    restarted = np.zeros(len(job), dtype=bool)
    if len(resume_rows):
        resumed_segments = pd.MultiIndex.from_arrays(
            [ordered["job"].to_numpy()[resume_rows], ordered["segment"].to_numpy()[resume_rows]]
        )
        restarted = pd.MultiIndex.from_arrays([job, charge + 1]).isin(resumed_segments)
    billing = billing.assign(
        charge=charge,
        ordered_row=billing.index,
        segment_start=np.where(new_job, first, previous),
        restart=_event_is(billing["event"], ("failed",)) & restarted,
    ).reset_index(drop=True)
    is_final = _event_is(billing["event"], FINAL_EVENTS) & ~billing["restart"].to_numpy()
    finals_before = running_sum(is_final.astype("int64"), new_job) - is_final
    after_final = billing[finals_before > 0]
    if after_final.empty:  # the usual log
        return billing, no_problems()
    first_final = billing[is_final].drop_duplicates("job").set_index("job")
    final_of = first_final.reindex(after_final["job"])
    problems = pd.DataFrame(
        {
            "job": after_final["job"].to_numpy(),
            "problem": (
                "billing event '"
                + after_final["event"].astype(str).to_numpy()
                + "' at "
                + iso_series(after_final["ts"]).to_numpy()
                + " after the job's final event '"
                + final_of["event"].astype(str).to_numpy()
                + "' at "
                + iso_series(final_of["ts"]).to_numpy()
            ),
        }
    )
    return billing, problems


def _segments(ordered: pd.DataFrame) -> pd.Series:
    """Charge index of each event's segment: billing events strictly before it (R4 boundaries)."""
    # ``ordered`` is sorted by job code (0, 1, ...): billing events before each row, less
    # those before its job's first row (found by a binary search per job, not per row).
    is_billing = _event_is(ordered["event"], BILLING_EVENTS)
    before: np.ndarray = np.cumsum(is_billing, dtype="int64")
    before -= is_billing  # in place: arrays of the part's size, as few as can be
    job = ordered["job"].to_numpy(dtype="int64")
    n_jobs = int(job[-1]) + 1 if len(job) else 0
    if len(job):
        before -= before[np.searchsorted(job, np.arange(n_jobs))][job]
    return pd.Series(before, index=ordered.index)


# --- phase intervals (R1, R2, pairing, open phases) ------------------------------------


def _intervals(
    ordered: pd.DataFrame,
    events: pd.DataFrame,
    billing: pd.DataFrame,
    jobs: pd.DataFrame,
    policy: Policy,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Phase intervals from paired starts and ends (R1, R2), open phases closed, pauses;
    the ends that close nothing; and which intervals are pauses (marked or between
    ``paused`` and ``resumed``). Marks are put in pairing order once; then each
    (job, run, phase) is a contiguous run of rows, so depths, ranks and pairs are
    positions in arrays rather than group-bys and merges of frames."""
    event = ordered["event"]
    is_mark = _event_is(event, ("phase_start", "phase_end"))
    at = np.flatnonzero(is_mark)
    job = ordered["job"].to_numpy(dtype="int64")[at]
    ts = ordered["ts"].to_numpy(dtype="int64")[at]
    is_start = _event_is(event, ("phase_start",))[at]
    phase = ordered["phase"]
    if isinstance(phase.dtype, pd.CategoricalDtype):  # coded already: the marks' codes
        categorical = cast(pd.Categorical, phase.array)
        phase_code = categorical.codes[at].astype("int64")
        categories = categorical.categories
    else:
        phase = phase.take(at).astype("category")
        phase_code = phase.cat.codes.to_numpy().astype("int64")
        categories = phase.cat.categories
    # Phases pair within a run of the job: a failure that the job was restarted after
    # ends every phase still open (closed by that failure, R5); a start before it never
    # pairs with an end after it (the gap until the restart would be billed).
    run = _runs(ordered, billing, at)
    names = categories.astype(str).to_numpy(dtype=object)
    billable_code = np.isin(names, list(policy.phases.billable))

    order, series = _pairing_order(job, run, phase_code, ts, ~is_start, billable_code[phase_code])
    job, ts, is_start, phase_code, at = (a[order] for a in (job, ts, is_start, phase_code, at))

    first = np.r_[True, series[1:] != series[:-1]] if len(series) else np.zeros(0, dtype=bool)
    group = np.cumsum(first) - 1
    depth = running_sum(np.where(is_start, 1, -1), first)
    unmatched = np.flatnonzero(~is_start & (depth < 0))
    if len(unmatched):  # the first of each (job, run, phase)
        unmatched = unmatched[np.r_[True, group[unmatched][1:] != group[unmatched][:-1]]]
    row = ordered["row"].to_numpy(dtype="int64")[at[unmatched]]
    problems = _unmatched_ends(
        events, job[unmatched], ts[unmatched], row, names[phase_code[unmatched]]
    )

    # Starts and ends pair in time order within a job, run and phase: the k-th start
    # with the k-th end.
    # Groups are numbered 0, 1, ... in row order: counts per group and their running
    # totals place each start among its group's starts and its group's ends.
    starts, ends = np.flatnonzero(is_start), np.flatnonzero(~is_start)
    start_group, end_group = group[starts], group[ends]
    n_groups = int(group[-1]) + 1 if len(group) else 0
    starts_in = np.bincount(start_group, minlength=n_groups)
    ends_in = np.bincount(end_group, minlength=n_groups)
    rank = np.arange(len(starts)) - (np.cumsum(starts_in) - starts_in)[start_group]
    first_end = (np.cumsum(ends_in) - ends_in)[start_group]
    n_ends = ends_in[start_group]
    paired = rank < n_ends
    end_at = ends[np.minimum(first_end + rank, max(len(ends) - 1, 0))] if len(ends) else rank
    closed = starts[paired]
    open_ = starts[~paired]

    # An open phase is closed by the job's next billing event strictly after its start,
    # else it runs to the job's last event (accrued work, R8).
    still_open = asof_join(
        pd.DataFrame({"job": job[open_], "start": ts[open_], "phase_code": phase_code[open_]}),
        billing[["job", "ts"]].rename(columns={"ts": "closer"}),
        left_on="start",
        right_on="closer",
        by="job",
        direction="forward",
        allow_exact_matches=False,
    )
    last = jobs["last_ns"].reindex(still_open["job"]).to_numpy(dtype="int64")
    closer = still_open["closer"]
    pauses = _pause_intervals(ordered, jobs)
    billable_starts = at[is_start & billable_code[phase_code]]
    problems = pd.concat(
        [problems, _work_while_paused(ordered, events, pauses, billing, billable_starts)],
        ignore_index=True,
    )

    if "paused" in names:  # a phase of that name was marked too: one name, one code
        pause_code = int(np.flatnonzero(names == "paused")[0])
    else:
        pause_code = len(names)
        names = np.append(names, "paused")
    job_all = np.concatenate(
        [job[closed], still_open["job"].to_numpy(dtype="int64"), pauses["job"].to_numpy()]
    ).astype("int64", copy=False)
    code_all = np.concatenate(
        [
            phase_code[closed],
            still_open["phase_code"].to_numpy(dtype="int64"),
            np.full(len(pauses), pause_code, dtype="int64"),
        ]
    )
    start_all = np.concatenate(
        [ts[closed], still_open["start"].to_numpy(dtype="int64"), pauses["start"].to_numpy()]
    ).astype("int64", copy=False)
    end_all = np.concatenate(
        [
            ts[end_at[paired]],
            np.where(closer.notna(), closer.fillna(0).to_numpy(dtype="int64"), last),
            pauses["end"].to_numpy(dtype="int64"),
        ]
    ).astype("int64", copy=False)
    closers = np.concatenate(
        [
            np.zeros(len(closed), dtype="int8"),
            np.where(closer.notna(), 1, 2).astype("int8"),
            np.where(pauses["closed_by"].to_numpy(dtype=object) == "resumed", 3, 2).astype("int8"),
        ]
    )
    # By job, start and phase name (ties keep the order above: closed, open, paused).
    rank_of_name = np.argsort(np.argsort(names.astype(str), kind="stable"), kind="stable")
    order = _by_job_start_and_name(job_all, start_all, rank_of_name[code_all], len(names))
    code_all = code_all[order]
    paused = code_all == pause_code
    result = pd.DataFrame(
        {
            "job": job_all[order],
            "phase": _names_of(code_all, names),
            "start": start_all[order],
            "end": end_all[order],
            "billable": np.isin(names, list(policy.phases.billable))[code_all],
            "closed_by": _names_of(closers[order], _CLOSED_BY),
        }
    )
    return result, problems, paused


def _unmatched_ends(
    events: pd.DataFrame, job: np.ndarray, ts: np.ndarray, row: np.ndarray, phase: np.ndarray
) -> pd.DataFrame:
    """Problems of the ends that close no phase (pairing), with their file and line."""
    if not len(job):  # the usual log
        return no_problems()
    return pd.DataFrame(
        {
            "job": job,
            "problem": (
                "phase_end of '"
                + phase.astype(str)
                + "' at "
                + iso_series(pd.Series(ts, dtype="int64")).to_numpy()
                + " ("
                + pd.Series(events["source"].array.take(row)).astype(str).to_numpy()
                + ":"
                + pd.Series(events["line"].array.take(row)).astype(str).to_numpy()
                + ") with no open phase"
            ),
        }
    )


def _by_job_start_and_name(
    job: np.ndarray, start: np.ndarray, name_rank: np.ndarray, n_names: int
) -> np.ndarray:
    """Intervals sorted by job, start and phase name (ties in input order): start and
    name packed into one key when the span of starts leaves room, as ``_stable_order``."""
    if len(start) == 0:
        return np.zeros(0, dtype="int64")
    low, high = int(start.min()), int(start.max())
    if (high - low) < (2**63 - 1) // (n_names + 1) - n_names:
        return sorted_by(job, (start - low) * n_names + name_rank)
    return np.lexsort((name_rank, start, job))


_CLOSED_BY = np.array(["end", "billing_event", "open", "resumed"], dtype=object)
"""What closed an interval, by code: its end, a billing event, nothing yet, a resume."""


def _names_of(codes: np.ndarray, names: np.ndarray) -> pd.Series:
    """Text by code, as a ``str`` column: one take of the few names, not a string per row.

    Where pandas holds ``str`` in Arrow (pandas 3), the column is the names' Arrow array
    taken by code, without a Python string per row; else the categorical is cast.
    """
    categories = pd.Index(names.astype(str), dtype=object)
    text = pd.Series(categories[:0]).astype("str")
    if isinstance(text.dtype, pd.StringDtype) and text.dtype.storage == "pyarrow":
        import pyarrow as pa

        taken = pa.array(categories, type=pa.large_string()).take(pa.array(codes))
        return pd.Series(pd.array(taken, dtype=text.dtype))
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories)).astype("str")


def _runs(ordered: pd.DataFrame, billing: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """The run of its job of each event at rows ``at``: restarts after a failure before it
    (0: the usual log)."""
    restart_rows = billing["ordered_row"].to_numpy(dtype="int64")[billing["restart"].to_numpy()]
    if not len(restart_rows):
        return np.zeros(len(at), dtype="int64")
    restarts = np.zeros(len(ordered), dtype="int64")
    restarts[restart_rows] = 1
    run = pd.Series(restarts, index=ordered.index).groupby(ordered["job"]).cumsum() - restarts
    at_marks: np.ndarray = run.to_numpy(dtype="int64")[at]
    return at_marks


def _pairing_order(
    job: np.ndarray,
    run: np.ndarray,
    phase: np.ndarray,
    ts: np.ndarray,
    is_end: np.ndarray,
    billable: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Phase marks in pairing order (event-log.md, "Pairing"), and each mark's pairing
    group (job, run, phase) as one sorted integer.

    By job, run (restarts after a failure), phase and time; at one moment, ends
    come first ("an end closes the earlier interval before a start opens the next").
    An end of a phase that is not billable with nothing open before it closes a start
    of that same moment instead (a zero-length phase: no money either way, and logs
    written to the second have them). An end of a billable phase is never moved: an
    end and a start at one moment with nothing open before could be a zero-length
    phase or a log that lost its head, whose start opens work that runs on; the end
    closes nothing and the job is invalid, its amount unknown rather than $0. The
    marks come sorted by job, time and priority (ends first): a stable sort on the
    group alone keeps that order within each.
    """
    if len(job) == 0:
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
    # The usual log has no restart: the phase alone (the same numbers).
    within_job = run * (int(phase.max(initial=0)) + 1) + phase if run.any() else phase
    series = job * (int(within_job.max(initial=0)) + 1)
    series += within_job  # in place: one array of the marks' size, not two
    order = sorted_by(job, within_job)
    series, ts, is_end, billable = series[order], ts[order], is_end[order], billable[order]

    # Groups and moments are contiguous runs of rows: sums and running sums per run are
    # sums at the run's bounds.
    new_moment = np.r_[True, (series[1:] != series[:-1]) | (ts[1:] != ts[:-1])]
    if new_moment.all():  # the usual log: no two marks of a phase at one moment
        return order, series
    moment = np.cumsum(new_moment) - 1
    moment_starts = np.flatnonzero(new_moment)
    change = np.add.reduceat(np.where(is_end, -1, 1), moment_starts)
    new_group = np.r_[True, series[moment_starts][1:] != series[moment_starts][:-1]]
    open_after = running_sum(change, new_group)
    open_before = np.maximum(open_after - change, 0)[moment]
    end_rank = running_sum(is_end.astype("int64"), new_moment) - 1
    leftover = is_end & (end_rank >= open_before) & ~billable
    rank = np.where(leftover, 2, np.where(is_end, 0, 1))
    key = moment * 3 + rank
    if bool((key[1:] >= key[:-1]).all()):  # every moment's marks in that order already
        return order, series
    reorder = np.argsort(key, kind="stable")
    return order[reorder], series[reorder]


def _pause_intervals(ordered: pd.DataFrame, jobs: pd.DataFrame) -> pd.DataFrame:
    """Time between ``paused`` and the next ``resumed`` is the ``paused`` phase (R2, R7)."""
    is_pause = _event_is(ordered["event"], ("paused",))
    if not is_pause.any():  # the usual job is never paused
        empty = np.zeros(0, dtype="int64")
        none = np.zeros(0, dtype=object)
        return pd.DataFrame(
            {"job": empty, "start": empty, "end": empty, "phase": none, "closed_by": none}
        )
    job = ordered["job"].to_numpy(dtype="int64")
    ts = ordered["ts"].to_numpy(dtype="int64")
    is_resume = _event_is(ordered["event"], ("resumed",))
    # Each pause takes the earliest resume at or after it that no earlier pause took (a
    # resume at the moment of the next pause closes the one before it). In time order
    # (a pause before a resume of its moment), the k-th pause of a job finds ``a`` resumes
    # before it: it takes resume max(a, j of the pause before + 1), which is k plus the
    # running maximum of a - k.
    marks = np.flatnonzero(is_pause | is_resume)
    mark_job, resume_mark = job[marks], is_resume[marks]
    resumes_before = running_sum(resume_mark.astype("int64"), new_runs(mark_job)) - resume_mark
    pause_job = mark_job[~resume_mark]
    earlier = resumes_before[~resume_mark]
    new_job = new_runs(pause_job)
    rank = running_sum(np.ones(len(pause_job), dtype="int64"), new_job) - 1
    taken = rank + running_max(earlier - rank, new_job)
    resume_rows = np.flatnonzero(is_resume)
    first = np.searchsorted(job[resume_rows], pause_job, side="left")
    count = np.searchsorted(job[resume_rows], pause_job, side="right") - first
    matched = taken < count
    at = resume_rows[np.minimum(first + taken, len(resume_rows) - 1)] if len(resume_rows) else 0
    last = jobs["last_ns"].reindex(pause_job).to_numpy(dtype="int64")
    start = ts[np.flatnonzero(is_pause)]
    end = np.where(matched, ts[at], last)
    # A pause with no resume left, given while an earlier pause is still in force (the
    # same pause logged twice, or paused again), is part of that one, not open to the end.
    in_force = np.where(matched, end, np.iinfo("int64").min)
    before = np.r_[np.iinfo("int64").min, running_max(in_force, new_job)[:-1]]
    before[new_job] = np.iinfo("int64").min
    kept = matched | (start >= before)
    pauses = pd.DataFrame(
        {
            "job": pause_job[kept],
            "start": start[kept],
            "end": end[kept],
            "phase": "paused",
            "closed_by": np.where(matched[kept], "resumed", "open"),
        }
    )
    return pauses[pauses["end"] > pauses["start"]]


_WORK_EVENTS = ("step_completed", "rollback", "succeeded")
"""Events that say training ran: a step (beyond the one in flight at the pause), a
rollback, its completion; and, given apart, the start of a billable phase. Not a
checkpoint (a pause saves one) nor grader tokens (the step in flight reports them)."""


def _work_while_paused(
    ordered: pd.DataFrame,
    events: pd.DataFrame,
    pauses: pd.DataFrame,
    billing: pd.DataFrame,
    billable_starts: np.ndarray,
) -> pd.DataFrame:
    """Work done while the job was paused: its ``resumed`` is missing or misplaced, so when
    billing began again is unknown (R2, R4).

    A pause never resumed would otherwise run to the job's last event and swallow the work
    after it; one resumed late would hide the work before its resume: a bill too low, and
    silent. The job is invalid instead (its amount unknown). Work counts up to the resume
    (excluded), or for a pause never resumed up to the job's cancellation or failure after
    it (included: a stopped job does no more work); the step in flight at the pause may
    complete after it. A phase open at the pause and ended later is not work (a log closes
    its phases when the job stops), nor is anything after the job stopped (R8: accrued).
    """
    if pauses.empty:  # the usual log
        return no_problems()
    job = ordered["job"].to_numpy(dtype="int64")
    ts = ordered["ts"].to_numpy(dtype="int64")
    # Only the events of jobs ever paused are looked at (most jobs never are).
    ever_paused = np.zeros(int(job.max()) + 1, dtype=bool)
    ever_paused[pauses["job"].to_numpy(dtype="int64")] = True
    of_paused_job = ever_paused[job]
    is_work = _event_is(ordered["event"], _WORK_EVENTS)
    is_work[billable_starts] = True
    is_work &= of_paused_job
    is_step = _event_is(ordered["event"], ("step_completed",)) & of_paused_job
    step = np.full(len(job), -1, dtype="int64")
    step_rows = np.flatnonzero(is_step)
    step[step_rows] = (
        pd.Series(events["step"].array.take(ordered["row"].to_numpy()[step_rows]))
        .fillna(-1)
        .to_numpy(dtype="int64")
    )
    pause = pauses[["job", "start", "end", "closed_by"]].reset_index(drop=True)
    pause = pause.assign(pause=np.arange(len(pause)))
    # The step in flight at the pause: one past the highest completed at or before it.
    if len(step_rows):
        done = pd.DataFrame(
            {
                "job": job[step_rows],
                "done_at": ts[step_rows],
                "done": running_max(step[step_rows], new_runs(job[step_rows])),
            }
        )
        pause = asof_join(
            pause, done, left_on="start", right_on="done_at", by="job", any_order=True
        )
    else:
        pause = pause.assign(done=pd.array([pd.NA] * len(pause), dtype="Int64"))
    stops = billing.loc[_event_is(billing["event"], ("cancelled", "failed")), ["job", "ts"]]
    pause = asof_join(
        pause,
        stops.rename(columns={"ts": "stop_at"}),
        left_on="start",
        right_on="stop_at",
        by="job",
        direction="forward",
        allow_exact_matches=False,
        any_order=True,
    )
    # Joined rows in their own order again (a join may give them in time order), so that
    # a pause's number is its row.
    pause = pause.sort_values("pause", kind="stable").reset_index(drop=True)
    rows = np.flatnonzero(is_work)
    # A billable phase started at the pause's moment is ordered after it (_PRIORITY): it
    # is work while paused, as one a second later is; a step or rollback at that moment
    # comes before the pause. The start is joined 1 ns later to be found in its pause.
    is_start = np.zeros(len(job), dtype="int64")
    is_start[billable_starts] = 1
    work = asof_join(
        pd.DataFrame(
            {
                "job": job[rows],
                "work_at": ts[rows],
                "joined_at": ts[rows] + is_start[rows],
                "work_row": rows,
            }
        ),
        pause[["job", "start", "pause"]],
        left_on="joined_at",
        right_on="start",
        by="job",
        allow_exact_matches=False,
        any_order=True,
    )
    work = work[work["pause"].notna().to_numpy(dtype=bool)].sort_values("work_row", kind="stable")
    of = pause.iloc[work["pause"].to_numpy(dtype="int64")]
    at = work["work_at"].to_numpy(dtype="int64")
    resumed = of["closed_by"].to_numpy(dtype=object) == "resumed"
    no_stop = np.iinfo("int64").max
    stop = of["stop_at"].astype("Int64").fillna(no_stop).to_numpy(dtype="int64")
    inside = np.where(resumed, at < of["end"].to_numpy(dtype="int64"), at <= stop)
    work_row = work["work_row"].to_numpy(dtype="int64")
    in_flight = of["done"].astype("Int64").fillna(0).to_numpy(dtype="int64") + 1
    beyond = ~is_step[work_row] | (step[work_row] > in_flight)
    found = work[inside & beyond].drop_duplicates("pause")  # a pause's first work
    if found.empty:
        return no_problems()
    of = pause.iloc[found["pause"].to_numpy(dtype="int64")]
    work_row = found["work_row"].to_numpy(dtype="int64")
    event = np.asarray(ordered["event"].array.take(work_row), dtype=object).astype(str)
    phase = np.asarray(ordered["phase"].array.take(work_row), dtype=object).astype(str)
    what = np.where(event == "phase_start", "phase_start of '" + phase + "'", event)
    what = np.where(event == "step_completed", what + " " + step[work_row].astype(str), what)
    until = np.where(
        of["closed_by"].to_numpy(dtype=object) == "resumed",
        "resumed at " + iso_series(of["end"]).to_numpy(),
        "never resumed",
    )
    return pd.DataFrame(
        {
            "job": of["job"].to_numpy(dtype="int64"),
            "problem": (
                "paused at "
                + iso_series(of["start"]).to_numpy()
                + " ("
                + until
                + "), yet "
                + what
                + " at "
                + iso_series(found["work_at"]).to_numpy()
                + ": work while paused, so when billing began again is unknown"
            ),
        }
    )


def _backward_steps(points: pd.DataFrame) -> pd.DataFrame:
    """A step or checkpoint number that goes backwards without a rollback is a problem.

    Points are sorted by job and time, so each (job, rollbacks so far) is a run of rows:
    a step's previous one is the row before it in its run.
    """
    job = points["job"].to_numpy()
    is_rollback = _event_is(points["event"], ("rollback",)).astype("int64")
    epoch = running_sum(is_rollback, new_runs(job))
    steps = points["step"].array
    found = []
    for event in ("step_completed", "checkpoint_saved"):
        chosen = np.flatnonzero(_event_is(points["event"], (event,)))
        chosen_steps = steps.take(chosen)
        missing = np.asarray(pd.isna(chosen_steps), dtype=bool)
        step = chosen_steps.to_numpy(dtype="int64", na_value=0)
        at = points["ts"].to_numpy(dtype="int64")[chosen]
        if ((job[chosen][1:] == job[chosen][:-1]) & (at[1:] == at[:-1])).any():
            # Steps of one moment in the order of their numbers, not of the records': the
            # order of records never decides whether a job is valid (event-log.md).
            by_step = np.lexsort((step, at, epoch[chosen], job[chosen]))
            chosen, missing, step = chosen[by_step], missing[by_step], step[by_step]
        follows = ~(new_runs(job[chosen]) | new_runs(epoch[chosen]) | missing)
        follows[1:] &= ~missing[:-1]
        step_before = np.zeros(len(step), dtype="int64")
        step_before[1:] = step[:-1]
        went_back = follows & (step < step_before)
        if not went_back.any():  # the usual log
            found.append(no_problems())
            continue
        previous = pd.Series(step_before[went_back], dtype="Int64")
        back = points.iloc[chosen[went_back]]
        first_of_job = ~back["job"].duplicated().to_numpy()
        back, previous = back[first_of_job], previous[first_of_job]
        found.append(
            pd.DataFrame(
                {
                    "job": back["job"].to_numpy(),
                    "problem": (
                        f"{event} step "
                        + back["step"].astype(str).to_numpy()
                        + " at "
                        + iso_series(back["ts"]).to_numpy()
                        + " goes backwards (previous "
                        + previous.astype(str).to_numpy()
                        + ") without a rollback"
                    ),
                }
            )
        )
    if len(found) == 2 and not len(found[0]) and not len(found[1]):  # the usual log
        return no_problems()
    return pd.concat(found, ignore_index=True)


# --- lost work (R5, R6) ----------------------------------------------------------------


def _losses(
    points: pd.DataFrame,
    billing: pd.DataFrame,
    checkpoints: pd.DataFrame,
    jobs: pd.DataFrame,
    policy: Policy,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = ["job", "start", "end", "cause", "at", "segment", "checkpoint_step", "checkpoint_ts"]
    empty_problems = pd.DataFrame(
        {"job": pd.Series([], dtype="int64"), "problem": pd.Series([], dtype="string")}
    )
    if not policy.captured_progress.enabled:
        return _empty(columns), empty_problems
    is_failure = _event_is(billing["event"], ("failed",))
    is_rollback = _event_is(points["event"], ("rollback",))
    if not is_failure.any() and not is_rollback.any():
        # Nothing lost (R5, R6 need a failure or a rollback): the frames below, empty.
        return _no_losses(columns), no_problems()
    ckpts = checkpoints.rename(
        columns={"ts": "checkpoint_ts", "step": "checkpoint_step", "segment": "checkpoint_segment"}
    ).sort_values("checkpoint_ts")

    # R5: a failure loses the billable time after the latest checkpoint of its segment.
    failures = billing.loc[is_failure, ["job", "ts", "charge", "segment_start"]]
    failures = asof_join(
        failures,
        ckpts[["job", "checkpoint_ts", "checkpoint_step", "checkpoint_segment"]],
        left_on="ts",
        right_on="checkpoint_ts",
        by="job",
    )
    retained = failures["checkpoint_segment"].eq(failures["charge"]).fillna(False)
    failure_losses = pd.DataFrame(
        {
            "job": failures["job"],
            "start": failures["checkpoint_ts"].where(retained, failures["segment_start"]),
            "end": failures["ts"],
            "cause": "failure",
            "at": failures["ts"],
            "segment": failures["charge"],
            "checkpoint_step": failures["checkpoint_step"].where(retained),
            "checkpoint_ts": failures["checkpoint_ts"].where(retained),
        }
    )

    # R6: a rollback loses the time back to the checkpoint it returned to, never
    # before the start of the current segment.
    rollbacks = points.loc[is_rollback, ["job", "ts", "step", "segment"]]
    rollbacks = rollbacks.assign(
        segment_start=_segment_start_of(
            billing, jobs, rollbacks["job"].to_numpy(), rollbacks["segment"].to_numpy()
        )
    ).sort_values("ts")
    with_step = rollbacks[rollbacks["step"].notna()].astype({"step": "int64"})
    # Checkpoints with a step (job and time are never missing), as plain integers.
    has_step = ckpts["checkpoint_step"].notna().to_numpy()
    numbered = pd.DataFrame(
        {
            "job": ckpts["job"].to_numpy()[has_step],
            "checkpoint_ts": ckpts["checkpoint_ts"].to_numpy()[has_step],
            "step": ckpts["checkpoint_step"].to_numpy(dtype="int64", na_value=0)[has_step],
        }
    )
    by_step = asof_join(
        with_step,
        numbered,
        left_on="ts",
        right_on="checkpoint_ts",
        by=["job", "step"],
    ).assign(checkpoint_step=lambda f: f["step"].where(f["checkpoint_ts"].notna()))
    missing = by_step[by_step["checkpoint_ts"].isna()]
    problems = pd.DataFrame(
        {
            "job": missing["job"].to_numpy(),
            "problem": (
                "rollback at "
                + iso_series(missing["ts"]).to_numpy()
                + " to step "
                + missing["step"].astype(str).to_numpy()
                + ": no checkpoint of that step before it"
            ),
        }
    )
    latest = asof_join(
        rollbacks[rollbacks["step"].isna()].drop(columns="step"),
        ckpts[["job", "checkpoint_ts", "checkpoint_step"]],
        left_on="ts",
        right_on="checkpoint_ts",
        by="job",
    )
    found = pd.concat([by_step[by_step["checkpoint_ts"].notna()], latest], ignore_index=True)
    segment_start = found["segment_start"].astype("int64")
    returned_to = found["checkpoint_ts"].astype("Int64").fillna(segment_start).astype("int64")
    rollback_losses = pd.DataFrame(
        {
            "job": found["job"],
            "start": np.maximum(returned_to, segment_start),
            "end": found["ts"],
            "cause": "rollback",
            "at": found["ts"],
            "segment": found["segment"],
            "checkpoint_step": found["checkpoint_step"],
            "checkpoint_ts": found["checkpoint_ts"],
        }
    )
    losses = pd.concat([failure_losses, rollback_losses], ignore_index=True)
    losses = losses.astype(
        {
            "start": "int64",
            "end": "int64",
            "at": "int64",
            "segment": "int64",
            "checkpoint_step": "Int64",
            "checkpoint_ts": "Int64",
        }
    )
    return losses[columns].sort_values(["job", "start"]).reset_index(drop=True), problems


def _no_losses(columns: list[str]) -> pd.DataFrame:
    """``_losses``'s frame without a row, in its dtypes."""
    empty = np.zeros(0, dtype="int64")
    return pd.DataFrame(
        {
            "job": empty,
            "start": empty,
            "end": empty,
            "cause": pd.Series([], dtype="str"),
            "at": empty,
            "segment": empty,
            "checkpoint_step": pd.Series([], dtype="Int64"),
            "checkpoint_ts": pd.Series([], dtype="Int64"),
        }
    )[columns]


def _segment_start_of(
    billing: pd.DataFrame, jobs: pd.DataFrame, job: np.ndarray, segment: np.ndarray
) -> np.ndarray:
    """The start of each (job, segment), the segment after the last billing event
    included: what ``_segment_starts`` gives, found by position. ``billing`` holds each
    job's charges 0, 1, ... as a run of rows, jobs by code: a charge's row is its job's
    first row plus its number. Any (job, segment) not there: ``_segment_starts`` itself
    (NaN for it, as before)."""
    n_jobs = len(jobs)
    billing_job = billing["job"].to_numpy(dtype="int64")
    n_billing = np.bincount(billing_job, minlength=n_jobs)
    job = np.asarray(job, dtype="int64")
    segment = np.asarray(segment, dtype="int64")
    if (
        not isinstance(jobs.index, pd.RangeIndex)
        or len(n_billing) != n_jobs
        or not bool(((segment >= 0) & (segment <= n_billing[job])).all())
    ):
        starts = _segment_starts(billing, jobs)
        found: np.ndarray = starts.reindex(pd.MultiIndex.from_arrays([job, segment])).to_numpy()
        return found
    first_row = np.cumsum(n_billing) - n_billing
    ts = billing["ts"].to_numpy(dtype="int64")
    segment_start = billing["segment_start"].to_numpy(dtype="int64")
    # After a job's last billing event: that event's time (its first event's without one).
    last_row = np.maximum(first_row + n_billing - 1, 0)
    after_last = np.where(
        n_billing > 0,
        ts[last_row] if len(ts) else 0,
        jobs["first_ns"].to_numpy(dtype="int64"),
    )
    inside = segment < n_billing[job]
    at = np.where(inside, first_row[job] + segment, 0)
    starts_found: np.ndarray = np.where(
        inside, segment_start[at] if len(segment_start) else 0, after_last[job]
    )
    return starts_found


def _segment_starts(billing: pd.DataFrame, jobs: pd.DataFrame) -> pd.Series:
    """(job, segment) → the segment's start, including the segment after the last billing event."""
    # ``billing`` is sorted by job and time, its charges numbered 0, 1, ... per job: a
    # job's last row holds its last charge, and the segment after it starts at its time.
    job = billing["job"].to_numpy(dtype="int64")
    charge = billing["charge"].to_numpy(dtype="int64")
    ts = billing["ts"].to_numpy(dtype="int64")
    lasts = np.flatnonzero(np.r_[job[1:] != job[:-1], True]) if len(job) else job
    without_billing = jobs.index.difference(pd.Index(job[lasts]))
    index = pd.MultiIndex.from_arrays(
        [
            np.concatenate([job, job[lasts], without_billing.to_numpy(dtype="int64")]),
            np.concatenate([charge, charge[lasts] + 1, np.zeros(len(without_billing), "int64")]),
        ],
        names=["job", "segment"],
    )
    starts = np.concatenate(
        [
            billing["segment_start"].to_numpy(dtype="int64"),
            ts[lasts],
            jobs["first_ns"].to_numpy(dtype="int64")[without_billing.to_numpy(dtype="int64")],
        ]
    )
    return pd.Series(starts, index=index, name="start")


# --- unions and the sweep --------------------------------------------------------------


def _union(intervals: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Merge overlapping or touching intervals within each key group (R1 wall-clock union)."""
    frame = intervals[[*keys, "start", "end"]]
    frame = frame[(frame["end"] > frame["start"]).to_numpy()]
    if keys == ["job"] and frame["job"].dtype.kind in "iu":
        return _job_union(frame)
    frame = frame.sort_values([*keys, "start"], kind="stable").reset_index(drop=True)
    if frame.empty:
        return frame
    group = frame.groupby(keys, sort=False, observed=True)
    reach = group["end"].cummax()
    previous_reach = (
        reach.astype("Int64").groupby([frame[k] for k in keys], sort=False, observed=True).shift(1)
    )
    new_island = previous_reach.isna() | (frame["start"] > previous_reach)
    island = new_island.cumsum()
    merged = frame.groupby(island, sort=False).agg(
        **{k: (k, "first") for k in keys}, start=("start", "min"), end=("end", "max")
    )
    return merged.reset_index(drop=True)


def _excluded(intervals: pd.DataFrame) -> pd.DataFrame:
    """Per job and non-billable phase, the length of the union of its intervals (R2), in
    job and phase name order: the union by job of (job, phase) groups numbered in order."""
    start = intervals["start"].to_numpy(dtype="int64")
    end = intervals["end"].to_numpy(dtype="int64")
    rows = np.flatnonzero(~intervals["billable"].to_numpy(dtype=bool) & (end > start))
    phase = intervals["phase"].take(rows)
    phase_codes, phase_names = pd.factorize(phase)
    if (phase_codes < 0).any():  # a group-by leaves out a missing key
        rows, phase = rows[phase_codes >= 0], phase[phase_codes >= 0]
        phase_codes = phase_codes[phase_codes >= 0]
    name_rank = np.argsort(np.argsort(np.asarray(phase_names, dtype=object), kind="stable"))
    job = intervals["job"].to_numpy(dtype="int64")[rows]
    start, end = start[rows], end[rows]
    order = _by_job_name_and_start(job, name_rank[phase_codes], start)
    new_group = new_runs(job[order]) | new_runs(phase_codes[order])
    group = np.cumsum(new_group) - 1
    islands = _job_union(pd.DataFrame({"job": group, "start": start[order], "end": end[order]}))
    island_group = islands["job"].to_numpy(dtype="int64")
    length = (islands["end"] - islands["start"]).to_numpy(dtype="int64")
    firsts = order[new_group]
    return pd.DataFrame(
        {
            "job": job[firsts],
            "phase": phase.take(firsts).reset_index(drop=True),
            "ns": np.add.reduceat(length, np.flatnonzero(new_runs(island_group)))
            if len(length)
            else np.zeros(0, dtype="int64"),
        }
    )


def _by_job_name_and_start(job: np.ndarray, name_rank: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Rows sorted by job, phase name and start (ties in input order): ``np.lexsort((start,
    name_rank, job))``, name and start packed into one key when the span of starts
    leaves room, as ``_stable_order``."""
    if len(start) == 0:
        return np.zeros(0, dtype="int64")
    low, high = int(start.min()), int(start.max())
    n_names = int(name_rank.max()) + 1
    if n_names * (high - low + 1) < 2**62:
        return sorted_by(job, name_rank * (high - low + 1) + (start - low))
    return np.lexsort((start, name_rank, job))


def _job_union(frame: pd.DataFrame) -> pd.DataFrame:
    """``_union`` by job, on arrays: each job's intervals are a run of rows once sorted
    (intervals and losses come sorted by job and start: then nothing is moved), an
    island starts where an interval starts after the reach of every earlier one of its
    job, and ends at the furthest end of its rows."""
    job = frame["job"].to_numpy(dtype="int64")
    start = frame["start"].to_numpy(dtype="int64")
    if not bool(((job[1:] > job[:-1]) | ((job[1:] == job[:-1]) & (start[1:] >= start[:-1]))).all()):
        frame = frame.take(sorted_by(job, start))
        job = frame["job"].to_numpy(dtype="int64")
        start = frame["start"].to_numpy(dtype="int64")
    frame = frame.reset_index(drop=True)
    if frame.empty:
        return frame
    end = frame["end"].to_numpy(dtype="int64")
    new_job = np.r_[True, job[1:] != job[:-1]]
    reach = running_max(end, new_job)
    firsts = np.flatnonzero(np.r_[True, new_job[1:] | (start[1:] > reach[:-1])])
    return pd.DataFrame(
        {"job": job[firsts], "start": start[firsts], "end": np.maximum.reduceat(end, firsts)}
    )


def _pieces(
    billable: pd.DataFrame, losses: pd.DataFrame, billing: pd.DataFrame, pauses: pd.DataFrame
) -> pd.DataFrame:
    """Cut each job's time line at every boundary; classify each piece.

    A piece ``[t_i, t_i+1)`` is billable when a billable island covers it and no pause
    does (R2: a paused job does no work, whatever phase its log leaves open across the
    pause), lost when a loss island covers it too, and belongs to segment = billing
    events at or before ``t_i``. Boundaries stay int64 nanoseconds throughout: a piece's end is
    the next boundary itself (a float step would move it by up to 128 ns, and a
    charge of exactly 17.5 s would round to 17 s instead of 18 s, R11).
    """

    def ints(values: pd.Series) -> np.ndarray:
        return values.to_numpy(dtype="int64")

    # Billable, loss and pause starts and ends, billing events: in ``change`` order.
    frames = (billable, billable, losses, losses, billing, pauses, pauses)
    job = np.concatenate([ints(frame["job"]) for frame in frames])
    at = np.concatenate(
        [
            ints(billable["start"]),
            ints(billable["end"]),
            ints(losses["start"]),
            ints(losses["end"]),
            ints(billing["ts"]),
            ints(pauses["start"]),
            ints(pauses["end"]),
        ]
    )
    kind = np.repeat(np.arange(len(frames)), [len(frame) for frame in frames])
    # Each boundary's change to the billable depth, the loss depth, the segment count and
    # the pause depth.
    change = np.array(
        [
            [1, 0, 0, 0],
            [-1, 0, 0, 0],
            [0, 1, 0, 0],
            [0, -1, 0, 0],
            [0, 0, 1, 0],
            [0, 0, 0, 1],
            [0, 0, 0, -1],
        ],
        dtype="int64",
    )
    deltas = change[kind]
    order = sorted_by(job, at)
    job, at, deltas = job[order], at[order], deltas[order]
    if len(job) == 0:
        empty = np.zeros(0, dtype="int64")
        return pd.DataFrame(
            {
                "job": empty,
                "start": empty,
                "end": empty,
                "segment": empty,
                "billable": np.zeros(0, dtype=bool),
                "lost": np.zeros(0, dtype=bool),
            }
        )
    new_point = np.r_[True, (job[1:] != job[:-1]) | (at[1:] != at[:-1])]
    firsts = np.flatnonzero(new_point)
    job, at = job[firsts], at[firsts]
    sums = np.add.reduceat(deltas, firsts, axis=0)
    new_job = np.r_[True, job[1:] != job[:-1]]
    depth_billable = running_sum(sums[:, 0], new_job)
    depth_lost = running_sum(sums[:, 1], new_job)
    segment = running_sum(sums[:, 2], new_job)
    depth_paused = running_sum(sums[:, 3], new_job)
    has_next = np.r_[~new_job[1:], False]  # the next point is in the same job
    end = np.r_[at[1:], 0]
    kept = np.flatnonzero(has_next & (end > at))  # positions, taken from six arrays
    billable_now = (depth_billable > 0) & (depth_paused == 0)
    return pd.DataFrame(
        {
            "job": job[kept],
            "start": at[kept],
            "end": end[kept],
            "segment": segment[kept],
            "billable": billable_now[kept],
            "lost": (billable_now & (depth_lost > 0))[kept],
        }
    )


def _segment_totals(
    pieces: pd.DataFrame, billing: pd.DataFrame, jobs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Billable and lost nanoseconds of each charge's segment (R4-R6), and of the segment
    after each job's last billing event (R8).

    Pieces come sorted by job and start, so a job's segments are runs of rows in
    increasing order: their sums are sums over runs, found by a binary search."""
    job = pieces["job"].to_numpy(dtype="int64")
    segment = pieces["segment"].to_numpy(dtype="int64")
    length = pieces["end"].to_numpy(dtype="int64") - pieces["start"].to_numpy(dtype="int64")
    lost = pieces["lost"].to_numpy(dtype=bool)
    billable = pieces["billable"].to_numpy(dtype=bool) & ~lost
    firsts = np.flatnonzero(new_runs(job) | new_runs(segment))

    def sums(values: np.ndarray) -> np.ndarray:
        if not len(values):
            return np.zeros(0, dtype="int64")
        summed: np.ndarray = np.add.reduceat(values, firsts)
        return summed

    # A last 0 for the (job, segment) not found (-1): a segment without a piece.
    billable_ns = np.append(sums(np.where(billable, length, 0)), 0)
    lost_ns = np.append(sums(np.where(lost, length, 0)), 0)
    billing_job = billing["job"].to_numpy(dtype="int64")
    n_billing = np.bincount(billing_job, minlength=len(jobs))

    def totals(want_job: np.ndarray, want_segment: np.ndarray) -> dict[str, np.ndarray]:
        at = _run_of(job[firsts], segment[firsts], want_job, want_segment)
        return {"billable_ns": billable_ns[at], "lost_ns": lost_ns[at]}

    charges = billing[["job", "charge", "ts", "event", "segment_start"]].rename(
        columns={"ts": "at"}
    )
    charges = charges.assign(
        **totals(billing_job, billing["charge"].to_numpy(dtype="int64"))
    ).reset_index(drop=True)
    accrued = pd.DataFrame(
        {"job": jobs.index, **totals(jobs.index.to_numpy(dtype="int64"), n_billing)}
    )
    return charges, accrued


def _run_of(
    job: np.ndarray, segment: np.ndarray, want_job: np.ndarray, want_segment: np.ndarray
) -> np.ndarray:
    """Position of each wanted (job, segment) among sorted distinct ones; -1: absent."""
    if not len(job):
        return np.full(len(want_job), -1, dtype="int64")
    width = int(max(segment.max(), want_segment.max(initial=0))) + 1
    if (int(max(job.max(), want_job.max(initial=0))) + 1) * width >= 2**62:
        index = pd.MultiIndex.from_arrays([job, segment])
        found: np.ndarray = index.get_indexer(pd.MultiIndex.from_arrays([want_job, want_segment]))
        return found
    packed = job * width + segment
    wanted = want_job * width + want_segment
    at = np.minimum(np.searchsorted(packed, wanted), len(packed) - 1)
    return np.where(packed[at] == wanted, at, -1)


def _usage(points: pd.DataFrame, loss_islands: pd.DataFrame) -> pd.DataFrame:
    """Grader usage with its segment and whether it fell inside lost work (R9)."""
    usage = points.loc[
        _event_is(points["event"], ("grader_usage",)),
        [
            "job",
            "ts",
            "segment",
            "grader_model",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
        ],
    ]
    islands = loss_islands.rename(columns={"start": "loss_start", "end": "loss_end"})
    # A lost interval is (start, end]: usage at the retained checkpoint's time is kept,
    # usage at the failure's own time is lost.
    matched = asof_join(
        usage,
        islands,
        left_on="ts",
        right_on="loss_start",
        by="job",
        allow_exact_matches=False,
        any_order=True,
    )
    lost = (matched["ts"] <= matched["loss_end"]).fillna(False).astype(bool)
    matched = matched.drop(columns=["loss_start", "loss_end"]).assign(lost=lost.to_numpy())
    job, ts = matched["job"].to_numpy(), matched["ts"].to_numpy()
    if len(job) and not bool(
        ((job[1:] > job[:-1]) | ((job[1:] == job[:-1]) & (ts[1:] >= ts[:-1]))).all()
    ):
        matched = matched.sort_values(["job", "ts"], kind="stable")
    return matched.reset_index(drop=True)


MAX_TOKEN_SUM = 2**62
"""The most grader tokens of one kind a job may sum to: a record holds at most 2**53, but
enough of them would pass int64 in the sums of R9/R13 and bill a negative amount."""


def _uncountable_tokens(usage: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Jobs whose grader tokens of a kind add up to more than ``MAX_TOKEN_SUM`` (invalid:
    the amount cannot be summed exactly), and the usage without those jobs' rows."""
    columns = ["input_tokens", "cached_input_tokens", "output_tokens"]
    # All of the usage's tokens of a kind, well below 2**62 (a bound on any job's sum,
    # float rounding included): no job can pass it, nothing to sum by job.
    every = [np.abs(usage[c].to_numpy(dtype="float64", na_value=0.0)).sum() for c in columns]
    if max(every, default=0.0) <= MAX_TOKEN_SUM / 2:
        return no_problems(), usage
    # A bound, not an amount: float sums are close enough to compare with 2**62.
    sums = usage[columns].astype("float64").groupby(usage["job"]).sum()
    over = sums.index[(sums > MAX_TOKEN_SUM).any(axis=1).to_numpy()]
    problems = pd.DataFrame(
        {
            "job": np.asarray(over, dtype="int64"),
            "problem": np.full(
                len(over),
                f"grader tokens add up to more than 2**62 ({MAX_TOKEN_SUM:,}) in this job: "
                "too many to bill exactly (R9, R13)",
                dtype=object,
            ),
        }
    )
    if not len(over):
        return problems, usage
    return problems, usage[~usage["job"].isin(over)].reset_index(drop=True)


# --- status ----------------------------------------------------------------------------


def _status(
    jobs: pd.DataFrame, billing: pd.DataFrame, ordered: pd.DataFrame, problems: pd.DataFrame
) -> pd.Series:
    """Each job's last billing event, or ``running`` (none yet, or resumed or restarted
    since a pause or failure), or ``invalid``. ``billing`` and ``ordered`` are sorted by job
    (codes 0, 1, ... as ``jobs``) and time: a job's last row of each is its latest."""
    n_jobs = len(jobs)
    job = billing["job"].to_numpy(dtype="int64")
    lasts = np.flatnonzero(np.r_[job[1:] != job[:-1], True]) if len(job) else job
    status = np.full(n_jobs, "running", dtype=object)
    # By codes: a few names shared by every job, not a Python string per row.
    codes, names = pd.factorize(billing["event"].take(lasts))
    status[job[lasts]] = np.asarray(names, dtype=object)[codes]
    last_billing_ns = np.full(n_jobs, np.iinfo(np.int64).max, dtype="int64")
    last_billing_ns[job[lasts]] = billing["ts"].to_numpy(dtype="int64")[lasts]
    resume_rows = np.flatnonzero(_event_is(ordered["event"], ("resumed",)))
    resumed_job = ordered["job"].to_numpy(dtype="int64")[resume_rows]
    resumed_ns = ordered["ts"].to_numpy(dtype="int64")[resume_rows]
    resumed_after = np.zeros(n_jobs, dtype=bool)
    resumed_after[resumed_job[resumed_ns > last_billing_ns[resumed_job]]] = True
    # Resumed after a pause, or restarted after a failure: running again.
    again = np.isin(status, ["paused", "failed"]) & resumed_after
    status[again] = "running"
    status[np.isin(np.arange(n_jobs), problems["job"].to_numpy())] = "invalid"
    return pd.Series(status, index=jobs.index, dtype="string")


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="int64") for c in columns})
