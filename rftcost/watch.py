"""Guard running jobs: live spend, a forecast of the final cost, and a pause at the budget.

``watch(job_ids, budget=...)`` polls the OpenAI fine-tuning API (the official SDK,
through ``rftcost.fetch``) and yields one ``WatchState`` per poll. Each poll:

1. with ``all_jobs``, lists the organisation's jobs (``GET /v1/fine_tuning/jobs``,
   every page) and adds each running reinforcement job to those watched;
2. for each watched job that has not ended, retrieves the job object and what is new
   since the last poll: events and checkpoints come newest first, so paging (``after``
   / ``has_more``) stops at the first id already seen;
3. writes each job in the layout of ``rftcost fetch`` (``DIR/JOB_ID/job.json``,
   ``events.json``, ``checkpoints.json``) and bills those folders with ``bill``, which
   reads them through ``import_openai``: the amounts are exactly what ``rftcost bill``
   gives for the same exports. The folder is ``save`` when given, else a temporary
   folder deleted at the end of the poll (nothing stays on disk). A job with nothing
   new since the last poll keeps the bill it had (accrued work is measured from the
   events, not from the clock);
4. per job: spent = charged + accrued (R4, R8: compute, discount and grader of the
   work so far); a forecast of the final cost (P10/P50/P90) by ``project_running``
   from the steps done, the total steps (``data.total_steps`` of the metrics events)
   and the time per step, with ``calibration`` when given; the final bill once the
   job has ended;
5. against its budget (``budget`` per job, or its team's monthly budget from
   ``budgets``, minus what the team spent this month in ``history`` and what its
   other watched jobs have spent; a job of unknown amount among them leaves the share
   used unknown, the known spend a floor), pauses the job when asked (``pause``: spend
   reached the budget; ``pause_on_forecast``: the P50 forecast exceeds it), once per
   job and only when the API shows it running, with one request that the SDK does not
   retry (a retry after a dropped connection could pause twice; a 429 is asked again
   at the next poll), and posts alerts to ``notify``.

Rate limits, timeouts, dropped connections and server errors are retried by the SDK
with backoff (each retry is reported in the state's warnings); a poll that still
fails is a warning and the watch goes on, until ``max_failures`` polls in a row
have failed: then ``FetchError``. A rejected key, an unknown job or a job that is
not reinforcement fine-tuning is a ``FetchError`` at once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from rftcost._callable import make_module_callable
from rftcost.errors import RftcostError
from rftcost.events.json_text import without_surrogates
from rftcost.fetch import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_PAGE_SIZE,
    FetchError,
    as_sent,
    explain_error,
    is_job_id,
    not_the_api,
    open_client,
    require_job_id,
    write_job,
)
from rftcost.money import (
    RoundingMode,
    budget_amount,
    cents_to_decimal,
    divide_round,
    format_cents,
    to_minor_units,
    units_to_decimal,
)
from rftcost.time import iso_seconds

if TYPE_CHECKING:
    import pandas as pd

    from rftcost.billing import Bill, JobBill
    from rftcost.calibration import Calibration
    from rftcost.policy import Policy
    from rftcost.spend import Budgets

__all__ = [
    "ALERT_THRESHOLDS",
    "DEFAULT_INTERVAL",
    "DEFAULT_MAX_FAILURES",
    "WATCH_SCHEMA",
    "Forecast",
    "JobWatch",
    "WatchError",
    "WatchState",
    "watch",
]

WATCH_SCHEMA = "rftcost.watch/v1"
DEFAULT_INTERVAL = 60.0
"""Seconds between polls."""
DEFAULT_MAX_FAILURES = 5
"""Polls in a row that may fail (after the SDK's own retries) before the watch gives up."""
ALERT_THRESHOLDS = (50, 80, 100)
"""Percentages of the budget whose crossing is notified (each once per job)."""
DEFAULT_DRAWS = 2000
"""Monte Carlo draws of each forecast (the forecast of every poll is a fresh estimate)."""

_ACTIVE = frozenset({"validating_files", "queued", "running"})
"""API statuses of a job that has not ended (a paused job has: it bills nothing more)."""
_FINAL = frozenset({"succeeded", "failed", "cancelled"})
"""Bill statuses whose amount is final."""
_FROZEN = ConfigDict(frozen=True, extra="forbid")
_RETRY_LOGGER = "openai._base_client"


class WatchError(RftcostError):
    """The watch cannot start: what is wrong with the arguments, and what to do."""

    def __init__(self, reason: str, *, option: str | None = None, hint: str | None = None) -> None:
        self.reason = reason
        self.option = option
        self.hint = hint
        text = f"{option}: {reason}" if option else reason
        super().__init__(f"{text}; {hint}" if hint else text)


class Forecast(BaseModel):
    """The final cost of a job: P10 / P50 / P90, or its final bill once it has ended."""

    model_config = _FROZEN

    p10: Decimal
    """10th percentile."""
    p50: Decimal
    """Median."""
    p90: Decimal
    """90th percentile."""
    final: bool = False
    """The job has ended: the three figures are its bill."""


class JobWatch(BaseModel):
    """One job at one poll: what it has spent, where it is going, and what the guard did."""

    model_config = _FROZEN

    job_id: str
    """The job."""
    team: str | None
    """``metadata.team`` (``None``: unallocated)."""
    status: str
    """The job's status as the API shows it (running, paused, succeeded, …)."""
    bill_status: str | None
    """Its status in the bill (running, paused, succeeded, invalid, …)."""
    step: int | None
    """Last training step completed."""
    total_steps: int | None
    """Training steps of the whole run (from the metrics events)."""
    charged: Decimal | None
    """Charged so far: the charges of its billing events (R4)."""
    accrued: Decimal | None
    """Work since the last billing event (R8), provisional."""
    spent: Decimal | None
    """charged + accrued; ``None`` when the amount is unknown (see ``problems``)."""
    forecast: Forecast | None
    """The final cost; ``None`` when it cannot be told yet (see ``notes``)."""
    budget: Decimal | None
    """The budget it is checked against (``None``: no budget, not guarded)."""
    budget_source: str | None
    """``per job`` or ``team TEAM MONTH``."""
    spent_elsewhere: Decimal
    """Of a team budget: the team's other spend this month (history, other watched jobs)."""
    unknown_elsewhere: tuple[str, ...] = ()
    """Of a team budget: the team's other watched jobs, then its past jobs this month
    (invalid in ``history``), whose amount is unknown: the team's spend is unknown beside
    them, so are the share used and the time to the budget."""
    budget_used: Decimal | None
    """(spent_elsewhere + spent) / budget, in percent, two decimals half up."""
    seconds_to_budget: float | None
    """Billable seconds left until the budget is reached at the job's pace so far
    (``None`` when ``unknown_elsewhere`` names a job)."""
    over_budget: bool
    """Spend reached the budget (spent_elsewhere + spent ≥ budget)."""
    forecast_over_budget: bool
    """spent_elsewhere + the P50 forecast exceeds the budget."""
    action: Literal["paused", "alerted"] | None
    """What the guard did at this poll."""
    paused_by_watch: bool
    """The guard has sent this job's pause (at this poll or an earlier one)."""
    ended: bool
    """The job no longer runs (succeeded, failed, cancelled or paused): not polled again."""
    alerts: tuple[str, ...] = ()
    """Alerts posted at this poll."""
    notes: tuple[str, ...] = ()
    """Things worth knowing (why no forecast, why not paused, …)."""
    problems: tuple[str, ...] = ()
    """Why its amount is unknown, when it is."""

    @property
    def within_budget(self) -> bool:
        """Known spend below the budget and a forecast not over it (or no budget); never
        while a team budget's share is unknown (``unknown_elsewhere``): it may be over."""
        if self.budget is None:
            return self.spent is not None
        return (
            self.spent is not None
            and not self.unknown_elsewhere
            and not (self.over_budget or self.forecast_over_budget)
        )

    def to_dict(self, at: datetime, *, currency: str = "USD", poll: int = 0) -> dict[str, Any]:
        """The ``rftcost.watch/v1`` object of this job at ``at`` (schemas/watch-v1.schema.json)."""
        return {
            "schema": WATCH_SCHEMA,
            "at": iso_seconds(at),
            "poll": poll,
            "job_id": self.job_id,
            "team": self.team,
            "status": self.status,
            "bill_status": self.bill_status,
            "step": self.step,
            "total_steps": self.total_steps,
            "currency": currency,
            "spent": _money(self.spent),
            "charged": _money(self.charged),
            "accrued": _money(self.accrued),
            "forecast": (
                None
                if self.forecast is None
                else {
                    "p10": _money(self.forecast.p10),
                    "p50": _money(self.forecast.p50),
                    "p90": _money(self.forecast.p90),
                    "final": self.forecast.final,
                }
            ),
            "budget": _money(self.budget),
            "budget_source": self.budget_source,
            "spent_elsewhere": _money(self.spent_elsewhere),
            "unknown_elsewhere": list(self.unknown_elsewhere),
            "budget_used": None if self.budget_used is None else f"{self.budget_used:.2f}",
            "seconds_to_budget": self.seconds_to_budget,
            "over_budget": self.over_budget,
            "forecast_over_budget": self.forecast_over_budget,
            "action": self.action,
            "paused_by_watch": self.paused_by_watch,
            "ended": self.ended,
            "alerts": list(self.alerts),
            "notes": list(self.notes),
            "problems": list(self.problems),
        }


class WatchState(BaseModel):
    """Every watched job at one poll."""

    model_config = _FROZEN

    poll: int
    """1 for the first poll."""
    at: datetime
    """When the poll ran (UTC)."""
    policy: str
    """Policy of the bills."""
    currency: str
    """Currency of every amount."""
    jobs: tuple[JobWatch, ...]
    """The jobs, in the order they were first watched (a failed poll repeats the last known)."""
    warnings: tuple[str, ...] = ()
    """Retries, failed polls, failed webhooks."""
    failed: bool = False
    """This poll could not fetch the jobs (the states shown are the previous ones)."""
    failures: int = 0
    """Failed polls in a row, this one included."""
    done: bool = False
    """The last state: every job has ended, or one poll was asked."""

    @property
    def exit_code(self) -> int:
        """0: every job within its budget (or unguarded with a known spend); 1: a job
        reached or is forecast over its budget, or its spend or its team's is unknown; 2: no
        poll has succeeded yet (nothing is known)."""
        if self.failed and not self.jobs:
            return 2
        return 0 if all(job.within_budget for job in self.jobs) else 1

    def lines(self) -> list[dict[str, Any]]:
        """One ``rftcost.watch/v1`` object per job."""
        return [job.to_dict(self.at, currency=self.currency, poll=self.poll) for job in self.jobs]


# --- the watch ----------------------------------------------------------------------------


def watch(
    job_ids: Sequence[str] = (),
    *,
    all_jobs: bool = False,
    budget: Decimal | int | str | None = None,
    budgets: Budgets | str | Path | None = None,
    history: Sequence[str | Path] | str | Path | None = None,
    pause: bool = False,
    pause_on_forecast: bool = False,
    interval: float = DEFAULT_INTERVAL,
    once: bool = False,
    calibration: Calibration | str | Path | None = None,
    policy: Policy | str | Path | None = None,
    notify: str | None = None,
    save: str | Path | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = 60.0,
    max_failures: int = DEFAULT_MAX_FAILURES,
    page_size: int = DEFAULT_PAGE_SIZE,
    draws: int = DEFAULT_DRAWS,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Generator[WatchState, None, None]:
    """Poll jobs until every one has ended (or once), yielding a ``WatchState`` per poll.

    ``budget`` applies to each job; ``budgets`` (a ``team,period,amount`` file or
    ``Budgets``) gives each job its team's budget of the current month (the team from
    ``metadata.team``, ``unallocated`` without one; ``budget`` is the fallback), less
    the team's charges this month in ``history`` logs. Raises ``FetchError`` for a
    missing key, a rejected key, an unknown or non-RFT job, or ``max_failures``
    failed polls in a row; ``WatchError`` for bad arguments (at once, before any poll).
    """
    from rftcost.policy import load_policy

    ids = list(dict.fromkeys(job_ids))
    if not ids and not all_jobs:
        raise WatchError("no job to watch", hint="give job ids (ftjob-…) or --all")
    for job_id in ids:
        require_job_id(job_id, WatchError)
    if not (math.isfinite(interval) and interval > 0):  # time.sleep(inf) overflows
        raise WatchError(f"must be positive and finite, not {interval}", option="--interval")
    if max_failures < 1:
        raise WatchError(f"must be at least 1, not {max_failures}", option="--max-failures")
    per_job = _budget_amount(budget)
    if notify is not None:
        _check_webhook(notify)
    resolved = load_policy(policy)
    team_budgets = _load_budgets(budgets)
    if team_budgets is not None:
        team_budgets.check_currency(resolved.currency)
    if history is not None and team_budgets is None:
        raise WatchError(
            "past jobs count against team budgets", option="--history", hint="give --budgets too"
        )
    history_spend = _history_spend(history, resolved) if history is not None else None
    calibration_ = _load_calibration(calibration)
    now = clock or (lambda: datetime.now(UTC))
    guard = _Guard(
        budget=per_job,
        budgets=team_budgets,
        history=history_spend,
        pause=pause,
        pause_on_forecast=pause_on_forecast,
        notify=notify,
        draws=draws,
        calibration=calibration_,
        policy=resolved,
    )
    for job_id in ids:
        guard.tracker(job_id)
    client = open_client(
        api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
    )
    return _polls(
        client,
        guard,
        all_jobs=all_jobs,
        once=once,
        interval=interval,
        max_failures=max_failures,
        page_size=page_size,
        save=save,
        sleep=sleep or _sleep,
        now=now,
    )


def _polls(
    client: Any,
    guard: _Guard,
    *,
    all_jobs: bool,
    once: bool,
    interval: float,
    max_failures: int,
    page_size: int,
    save: str | Path | None,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
) -> Generator[WatchState, None, None]:
    max_retries = int(client.max_retries)
    failures = 0
    poll = 0
    last: tuple[JobWatch, ...] = ()
    with client:
        url = str(client.base_url)
        while True:
            poll += 1
            at = now()
            with _retries_reported() as retries:
                try:
                    jobs, warnings = guard.poll(client, at, all_jobs, page_size, save)
                    failed = False
                    failures = 0
                except _Transient as trouble:
                    failures += 1
                    failed = True
                    jobs, warnings = (
                        last,
                        [
                            f"poll {poll} failed ({failures} of {max_failures} in a row allowed): "
                            f"{explain_error(trouble.error, trouble.job_id, url, max_retries)}"
                        ],
                    )
            warnings = [*retries, *warnings]
            if failed and once:
                raise FetchError(
                    f"the poll failed ({warnings[-1]})",
                    hint="check the network and OPENAI_BASE_URL, or run again",
                )
            if failed and failures >= max_failures:
                raise FetchError(
                    f"gave up after {failures} failed polls in a row ({warnings[-1]})",
                    hint="check the network and OPENAI_BASE_URL, or raise --max-failures",
                )
            last = jobs
            done = once or (not failed and bool(jobs) and all(j.ended for j in jobs))
            if all_jobs and not failed and not jobs:
                done = True  # nothing runs: nothing to guard
            yield WatchState(
                poll=poll,
                at=at,
                policy=guard.policy.name,
                currency=guard.policy.currency,
                jobs=jobs,
                warnings=tuple(warnings),
                failed=failed,
                failures=failures,
                done=done,
            )
            if done:
                return
            sleep(interval)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at each call (tests and notebooks may replace it)


class _Transient(Exception):
    """A poll failed in a way a later poll may not (network, rate limit, server error)."""

    def __init__(self, error: Exception, job_id: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.job_id = job_id


@dataclass
class _Tracker:
    """What is known of one job: the API's objects so far, and what the guard did."""

    job_id: str
    job: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first, as the API
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    seen_events: set[str] = field(default_factory=set)
    seen_checkpoints: set[str] = field(default_factory=set)
    total_steps: int | None = None
    ended: bool = False
    pause_tried: bool = False  # the guard's one pause request was made (never twice)
    paused: bool = False  # ... and the API accepted it
    changed: bool = True  # the last refresh brought something new (the bill may differ)
    end_polls: int = 0  # polls that saw the API's status ended while the bill still runs
    alerts_sent: set[str] = field(default_factory=set)
    billable_seconds: float | None = None  # charged + unbilled, for the time to budget
    measured: JobWatch | None = None  # spend and forecast of the last successful poll

    # A lone surrogate escape in the job object ("\udc80") is shown as U+FFFD, as every
    # output shows it: the import rejects the object (the job is invalid), and no line
    # written holds text that is not UTF-8.

    @property
    def status(self) -> str:
        status = (self.job or {}).get("status")
        return without_surrogates(status) if isinstance(status, str) else "unknown"

    @property
    def team(self) -> str | None:
        metadata = (self.job or {}).get("metadata")
        team = metadata.get("team") if isinstance(metadata, dict) else None
        return without_surrogates(team).strip() or None if isinstance(team, str) else None


@dataclass
class _Guard:
    budget: Decimal | None
    budgets: Budgets | None
    history: pd.DataFrame | None
    pause: bool
    pause_on_forecast: bool
    notify: str | None
    draws: int
    calibration: Calibration | None
    policy: Policy
    trackers: dict[str, _Tracker] = field(default_factory=dict)
    notes_said: set[str] = field(default_factory=set)  # import notes are said once

    def tracker(self, job_id: str) -> _Tracker:
        if job_id not in self.trackers:
            self.trackers[job_id] = _Tracker(job_id)
        return self.trackers[job_id]

    # --- one poll ---------------------------------------------------------------------

    def poll(
        self, client: Any, at: datetime, all_jobs: bool, page_size: int, save: str | Path | None
    ) -> tuple[tuple[JobWatch, ...], list[str]]:
        import openai

        warnings: list[str] = []
        job_id = "job list"
        try:
            if all_jobs:
                found, unreadable = _running_rft_jobs(client, page_size)
                for job_id in found:
                    self.tracker(job_id)
                for shown in unreadable:  # said once, as the import's notes
                    warning = (
                        f"{shown}: a running job whose id cannot name a folder (not valid "
                        "text, or not letters, digits and _ . : -): it cannot be watched"
                    )
                    if warning not in self.notes_said:
                        self.notes_said.add(warning)
                        warnings.append(warning)
            active = [t for t in self.trackers.values() if not t.ended]
            for tracker in active:
                job_id = tracker.job_id
                _refresh(client, tracker, page_size)
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as e:
            raise _Transient(e, job_id) from e
        except openai.APIStatusError as error:
            if error.status_code >= 500:
                raise _Transient(error, job_id) from error
            raise explain_error(error, job_id, str(client.base_url), client.max_retries) from error
        except openai.OpenAIError as error:
            raise explain_error(error, job_id, str(client.base_url), client.max_retries) from error
        except (AttributeError, TypeError) as error:  # the SDK on a body that is not JSON
            raise not_the_api(job_id, str(client.base_url)) from error
        month = at.strftime("%Y-%m")
        if self.budgets is not None and not any(b.period == month for b in self.budgets.items):
            guard = "each job against --budget" if self.budget is not None else "no job guarded"
            warning = f"the team budgets have no budget for {month}, this poll's month: {guard}"
            if warning not in self.notes_said:  # said once a month
                self.notes_said.add(warning)
                warnings.append(warning)
        for tracker in active:
            method = (tracker.job or {}).get("method")
            kind = method.get("type") if isinstance(method, dict) else None
            if kind not in (None, "reinforcement"):
                raise FetchError(
                    f"a {kind} fine-tuning job, not reinforcement fine-tuning: rftcost bills RFT",
                    job_id=tracker.job_id,
                )
        # A job with nothing new has the bill it had (its accrued work is measured from
        # its events, not from the clock): only the others are billed again.
        stale = [t for t in active if t.changed or t.measured is None or t.status not in _ACTIVE]
        if stale:
            from rftcost.events.openai.notes import COUNTS_NOTE

            result, notes, folder = self._bill(stale, save)
            for note in notes:
                if note.startswith(COUNTS_NOTE):
                    continue  # bookkeeping that grows with every poll, not news
                if note not in self.notes_said:
                    self.notes_said.add(note)
                    warnings.append(f"import: {note}")
            rejected = result.log.rejected if result.log is not None else None
            if rejected is not None and len(rejected):
                # As `rftcost bill` counts them: records of the exports that were not used.
                first = rejected.iloc[0]
                warnings.append(
                    f"{len(rejected)} record(s) of the exports not used "
                    f"(first: {first['reason']}); `rftcost validate` on --save DIR lists them"
                )
            for tracker in stale:
                tracker.measured = self._measure(tracker, result, at, folder)
                tracker.ended = tracker.measured.ended
        states = [self._act(client, state, at, warnings) for state in self._judge(at)]
        return tuple(states), warnings

    def _bill(self, active: list[_Tracker], save: str | Path | None) -> tuple[Bill, list[str], str]:
        """The bill of the jobs as ``rftcost bill`` makes it from the same exports, the
        import's notes (unknown messages…) with file names relative to the folder, and the
        folder's prefix (a temporary one is gone when the problems are read)."""
        from rftcost.engines import bill

        def write_and_bill(root: Path) -> tuple[Bill, list[str], str]:
            for tracker in active:
                write_job(
                    root, tracker.job_id, tracker.job or {}, tracker.events, tracker.checkpoints
                )
            result = bill([root / t.job_id for t in active], policy=self.policy, buckets=None)
            notes = result.log.notes if result.log is not None else ()
            prefix = f"{root}{os.sep}"
            return result, [note.replace(prefix, "") for note in notes], prefix

        if save is not None:
            return write_and_bill(Path(save))
        with tempfile.TemporaryDirectory(prefix="rftcost-watch-") as folder:
            return write_and_bill(Path(folder))

    def _measure(self, tracker: _Tracker, result: Bill, at: datetime, folder: str) -> JobWatch:
        """Spend and forecast of one job (no budget yet: ``_judge`` sets it); file names in
        its problems are relative to the exports' ``folder``, as the notes are."""
        job_bill: JobBill | None
        try:
            job_bill = result.job(tracker.job_id)
        except KeyError:
            job_bill = None
        notes: list[str] = []
        problems: list[str] = []
        step = _last_step(tracker)
        charged = accrued = spent = None
        forecast: Forecast | None = None
        bill_status = None if job_bill is None else job_bill.status
        if job_bill is None:
            problems.append("no billable record of the job in the export yet")
        elif job_bill.status == "invalid":
            said = [problem.replace(folder, "") for problem in job_bill.problems]
            problems += said or ["the job's log is invalid"]
        else:
            charged, accrued = job_bill.total_amount, job_bill.accrued_amount
            if charged is None or accrued is None:
                problems.append("the amount of the job cannot be established")
            else:
                spent = charged + accrued
        # Ended when the API says so and the export shows it (the final message may
        # trail the status by a poll; after two polls the status alone decides).
        ended = tracker.status not in _ACTIVE and (
            bill_status != "running" or tracker.end_polls >= 2
        )
        if tracker.status not in _ACTIVE and not ended:
            tracker.end_polls += 1
        if spent is not None and job_bill is not None and job_bill.status in _FINAL:
            forecast = Forecast(p10=spent, p50=spent, p90=spent, final=True)
        elif spent is not None and job_bill is not None:
            forecast, why = self._forecast(tracker, result, at)
            if why:
                notes.append(why)
        tracker.billable_seconds = None
        if job_bill is not None and spent is not None:
            tracker.billable_seconds = (job_bill.billable_seconds or 0.0) + (
                job_bill.unbilled_seconds or 0.0
            )
        return JobWatch(
            job_id=tracker.job_id,
            team=tracker.team,
            status=tracker.status,
            bill_status=bill_status,
            step=step,
            total_steps=tracker.total_steps,
            charged=charged,
            accrued=accrued,
            spent=spent,
            forecast=forecast,
            budget=None,
            budget_source=None,
            spent_elsewhere=Decimal("0.00"),
            budget_used=None,
            seconds_to_budget=None,
            over_budget=False,
            forecast_over_budget=False,
            action=None,
            paused_by_watch=tracker.paused,
            ended=ended,
            notes=tuple(notes),
            problems=tuple(problems),
        )

    def _forecast(
        self, tracker: _Tracker, result: Bill, at: datetime
    ) -> tuple[Forecast | None, str | None]:
        """``project_running`` with a plan whose step count is the job's own total."""
        from rftcost.estimate import project_running
        from rftcost.plan import plan_from_settings

        if tracker.total_steps is None:
            return None, "no forecast yet: the total steps are known from the first step"
        rows = result.jobs[result.jobs["job_id"] == tracker.job_id]
        settings = {
            str(k): v for k, v in result.timeline.jobs.loc[int(rows.iloc[0]["job"])].items()
        }
        try:
            # The API gives the run's total steps (data.total_steps), not its example count.
            settings["total_steps"] = tracker.total_steps
            plan = plan_from_settings(settings, source=f"job {tracker.job_id}")
            estimate = project_running(
                result,
                tracker.job_id,
                self.calibration,
                plan=plan,
                policy=self.policy,
                draws=self.draws,
                at=at,
            )
        except RftcostError as error:  # a setting the plan refuses, a grader without a price
            return None, f"no forecast: {error}"
        total = estimate.total_amount
        return Forecast(p10=total.p10, p50=total.p50, p90=total.p90), None

    def _judge(self, at: datetime) -> list[JobWatch]:
        """Each job against its budget (team budgets share the team's spend)."""
        from rftcost.spend import UNALLOCATED

        month = at.strftime("%Y-%m")
        states = [t.measured for t in self.trackers.values() if t.measured is not None]
        # Keyed by the budget's team: a job without a team and one whose team is named
        # "unallocated" are checked against the same budget, so they share it.
        spent_by_team: dict[str, int] = {}
        unknown_by_team: dict[str, list[str]] = {}
        for state in states:
            team = state.team or UNALLOCATED
            if state.spent is None:
                unknown_by_team.setdefault(team, []).append(state.job_id)
            else:
                spent_by_team[team] = spent_by_team.get(team, 0) + _cents(state.spent)
        judged = []
        for state in states:
            amount, source, elsewhere, watched, past = self._budget_of(
                state, month, spent_by_team, unknown_by_team
            )
            seconds = self.trackers[state.job_id].billable_seconds
            judged.append(_against(state, amount, source, elsewhere, seconds, watched, past))
        return judged

    def _budget_of(
        self,
        state: JobWatch,
        month: str,
        spent_by_team: dict[str, int],
        unknown_by_team: dict[str, list[str]],
    ) -> tuple[Decimal | None, str | None, int, tuple[str, ...], tuple[str, ...]]:
        """The budget, its source, the team's known spend elsewhere in cents, and the
        team's other watched jobs and past jobs whose amount is unknown."""
        from rftcost.spend import UNALLOCATED

        if self.budgets is not None:
            team = state.team or UNALLOCATED
            match = [b for b in self.budgets.items if b.team == team and b.period == month]
            if match:
                others = spent_by_team.get(team, 0) - (
                    _cents(state.spent) if state.spent is not None else 0
                )
                # A watched job's amount counts in the poll's month, as its known spend
                # does: one of unknown amount leaves the team's spend unknown as a past one.
                unknown_watched = tuple(
                    j for j in unknown_by_team.get(team, ()) if j != state.job_id
                )
                history, unknown_past = 0, tuple[str, ...]()
                if self.history is not None:
                    watched = set(self.trackers)
                    rows = self.history[
                        ((self.history["team"] == team) | self.history["any_team"])
                        & ((self.history["month"] == month) | (self.history["month"] == "*"))
                        & ~self.history["job_id"].isin(watched)
                    ]
                    history = int(rows["cents"].sum())  # NA (an invalid job's) skipped
                    unknown_past = tuple(rows.loc[rows["cents"].isna(), "job_id"].astype(str))
                source = f"team {team} {month}"
                return match[0].amount, source, others + history, unknown_watched, unknown_past
        if self.budget is not None:
            return self.budget, "per job", 0, (), ()
        return None, None, 0, (), ()

    # --- what the guard does ----------------------------------------------------------------

    def _act(self, client: Any, state: JobWatch, at: datetime, warnings: list[str]) -> JobWatch:
        tracker = self.trackers[state.job_id]
        notes = list(state.notes)
        action: Literal["paused", "alerted"] | None = None
        wants = (self.pause and state.over_budget) or (
            self.pause_on_forecast and state.forecast_over_budget
        )
        if wants and not tracker.pause_tried and not state.ended:
            if tracker.status == "running":
                action = self._pause(client, tracker, state, warnings, notes)
            else:
                notes.append(f"over budget but {tracker.status}, not running: not paused")
        elif wants and tracker.status == "running" and not state.ended:
            notes.append(
                "paused once already (and running again): not paused twice"
                if tracker.paused
                else "the pause request failed: not sent twice"
            )
        state = state.model_copy(
            update={"paused_by_watch": tracker.paused, "notes": tuple(notes), "action": action}
        )
        alerts = self._alerts(tracker, state) if self.notify else []
        sent = []
        for kind, text in alerts:
            tracker.alerts_sent.add(kind)
            problem = _post(self.notify or "", text, state, at)
            if problem:
                warnings.append(f"{state.job_id}: alert not delivered ({problem})")
            sent.append(kind)
        if sent:
            state = state.model_copy(
                update={"alerts": tuple(sent), "action": state.action or "alerted"}
            )
        return state

    def _pause(
        self,
        client: Any,
        tracker: _Tracker,
        state: JobWatch,
        warnings: list[str],
        notes: list[str],
    ) -> Literal["paused"] | None:
        import openai

        # One request per job, whatever its outcome: a request that failed on the way back
        # may still have paused the job, and a job is never paused twice.
        tracker.pause_tried = True
        why = (
            f"spent {_money(state.spent)} reached"
            if state.over_budget
            else f"P50 forecast {_money(state.forecast.p50 if state.forecast else None)} exceeds"
        )
        try:
            # One request, no SDK retry: a retry after a dropped connection could pause twice.
            client.with_options(max_retries=0).fine_tuning.jobs.pause(tracker.job_id)
        except openai.RateLimitError as error:
            tracker.pause_tried = False  # refused before it was applied: asked again next poll
            problem = explain_error(error, tracker.job_id, str(client.base_url), 0)
            warnings.append(f"pause rate limited, sent again at the next poll: {problem}")
            return None
        except openai.OpenAIError as error:
            problem = explain_error(error, tracker.job_id, str(client.base_url), 0)
            warnings.append(f"pause failed, not sent again: {problem}")
            notes.append("the pause request failed (see the warnings)")
            return None
        tracker.paused = True
        notes.append(f"paused at step {state.step}: {why} the budget {_money(state.budget)}")
        return "paused"

    def _alerts(self, tracker: _Tracker, state: JobWatch) -> list[tuple[str, str]]:
        """New alerts of this job: the highest budget threshold newly crossed (the lower
        ones count as sent), the forecast first over budget, the pause."""
        alerts: list[tuple[str, str]] = []
        head = f"rftcost watch: {state.job_id}"
        if state.budget_used is not None:
            crossed = [t for t in ALERT_THRESHOLDS if state.budget_used >= t]
            new = [t for t in crossed if f"budget_{t}" not in tracker.alerts_sent]
            if new:
                tracker.alerts_sent.update(f"budget_{t}" for t in crossed[:-1])
                alerts.append(
                    (
                        f"budget_{crossed[-1]}",
                        f"{head} crossed {crossed[-1]}% of its budget: spent "
                        f"{_money(state.spent)} of {_money(state.budget)} "
                        f"({state.budget_used:.2f}% used, step {_steps(state)})",
                    )
                )
        if state.forecast_over_budget and "forecast" not in tracker.alerts_sent:
            p50 = state.forecast.p50 if state.forecast else None
            alerts.append(
                (
                    "forecast",
                    f"{head} is forecast over its budget: P50 {_money(p50)} "
                    f"> {_money(state.budget)} (spent {_money(state.spent)})",
                )
            )
        if state.action == "paused" and "paused" not in tracker.alerts_sent:
            alerts.append(
                (
                    "paused",
                    f"{head} paused at step {_steps(state)}: spent {_money(state.spent)}, "
                    f"budget {_money(state.budget)}",
                )
            )
        return alerts


# --- the API ---------------------------------------------------------------------------------


def _running_rft_jobs(client: Any, page_size: int) -> tuple[list[str], list[str]]:
    """Ids of the organisation's running reinforcement jobs (every list page), and those
    of them that cannot name a folder (not valid text, shown with U+FFFD; a path such as
    ``../x``, shown as sent): such an id is watched nowhere (``fetch.is_job_id``)."""
    found, unreadable = [], []
    for job in client.fine_tuning.jobs.list(limit=page_size):
        method = getattr(job, "method", None)
        kind = getattr(method, "type", None)
        if kind == "reinforcement" and job.status == "running":
            job_id = str(job.id)
            if not is_job_id(job_id):  # a lone surrogate escape is none either
                unreadable.append(without_surrogates(job_id))
            else:
                found.append(job_id)
    return found, unreadable


def _refresh(client: Any, tracker: _Tracker, page_size: int) -> None:
    """The job object, and its events and checkpoints not seen yet.

    Both lists come newest first: paging stops at the first id already seen, so a poll
    asks for one page when little is new (the SDK follows ``after`` / ``has_more``).
    """
    jobs = client.fine_tuning.jobs
    job = as_sent(jobs.retrieve(tracker.job_id))
    events = _new_items(jobs.list_events(tracker.job_id, limit=page_size), tracker.seen_events)
    checkpoints = _new_items(
        jobs.checkpoints.list(tracker.job_id, limit=page_size), tracker.seen_checkpoints
    )
    # Commit only once every request succeeded: a failed poll leaves the job as it was.
    tracker.changed = bool(events or checkpoints) or job != tracker.job
    tracker.job = job
    tracker.events = events + tracker.events
    tracker.checkpoints = checkpoints + tracker.checkpoints
    tracker.seen_events.update(str(e.get("id")) for e in events)
    tracker.seen_checkpoints.update(str(c.get("id")) for c in checkpoints)
    for event in events:
        data = event.get("data")
        total = data.get("total_steps") if isinstance(data, dict) else None
        if isinstance(total, int) and not isinstance(total, bool) and total > 0:
            tracker.total_steps = total
            break  # newest first: the first one found is the latest


def _new_items(page: Any, seen: set[str]) -> list[dict[str, Any]]:
    items = []
    for item in page:
        if str(item.id) in seen:
            break
        items.append(as_sent(item))
    return items


def _last_step(tracker: _Tracker) -> int | None:
    for event in tracker.events:
        data = event.get("data")
        step = (
            data.get("step") if isinstance(data, dict) and event.get("type") == "metrics" else None
        )
        if isinstance(step, int) and not isinstance(step, bool):
            return step
    return None


class _RetryLog(logging.Handler):
    """Collects the SDK's retry messages, so that a retry is said, not silent.

    The SDK says why it retries at DEBUG level. While a poll runs, its logger is opened
    to DEBUG for this handler alone: records below the level the user configured are
    not propagated (the user's own logging sees what it saw before).
    """

    def __init__(self, passthrough: int, parent: logging.Logger | None) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._why: str | None = None
        self._passthrough = passthrough
        self._parent = parent

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Retrying due to status code"):
            self._why = f"HTTP {message.rsplit(' ', 1)[-1]}"
        elif message.startswith(("Encountered exception", "Encountered a timeout")):
            self._why = message.split(": ", 1)[-1]
        elif message.startswith("Retrying request in"):
            self.lines.append(
                f"{self._why or 'request failed'}: the SDK retries with backoff "
                f"({message.removeprefix('Retrying request ')})"
            )
            self._why = None
        if record.levelno >= self._passthrough and self._parent is not None:
            self._parent.handle(record)  # what propagation would have done


@contextmanager
def _retries_reported() -> Iterator[list[str]]:
    logger = logging.getLogger(_RETRY_LOGGER)
    level, propagate = logger.level, logger.propagate
    handler = _RetryLog(logger.getEffectiveLevel(), logger.parent if propagate else None)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _post(url: str, text: str, state: JobWatch, at: datetime) -> str | None:
    """POST a Slack-compatible message; the failure, if any, as text (never raised)."""
    body = json.dumps({"text": text, "state": state.to_dict(at)}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"{url}: {getattr(error, 'reason', error)}"
    return None


# --- budgets -----------------------------------------------------------------------------------


def _against(
    state: JobWatch,
    budget: Decimal | None,
    source: str | None,
    elsewhere_cents: int,
    billable_seconds: float | None,
    unknown_watched: tuple[str, ...] = (),
    unknown_past: tuple[str, ...] = (),
) -> JobWatch:
    """``state`` checked against its budget (with the team's known spend elsewhere; the
    team's other watched jobs and past jobs of unknown amount leave the share used
    unknown, as ``rftcost spend`` says)."""
    unknown_elsewhere = unknown_watched + unknown_past
    update: dict[str, Any] = {
        "budget": budget,
        "budget_source": source,
        "spent_elsewhere": cents_to_decimal(elsewhere_cents),
        "unknown_elsewhere": unknown_elsewhere,
        "seconds_to_budget": None,
    }
    if unknown_elsewhere:
        beside = [
            f"{len(jobs)} {kind} job(s) of unknown amount ("
            + ", ".join(jobs[:3])
            + (" …" if len(jobs) > 3 else "")
            + ")"
            for kind, jobs in (("other watched", unknown_watched), ("past", unknown_past))
            if jobs
        ]
        update["notes"] = (
            *state.notes,
            f"the team's spend this month is unknown beside {' and '.join(beside)}:"
            " the budget may be reached already",
        )
    if budget is None or state.spent is None:
        return state.model_copy(update=update)
    budget_cents = _cents(budget)
    # The known spend is a floor of the team's (the unknown amounts add to it): a budget
    # it reaches is reached, and paused on, as with a past job of unknown amount; below
    # the budget, the share used and the time left are unknown, not said.
    used_cents = elsewhere_cents + _cents(state.spent)
    update["over_budget"] = used_cents >= budget_cents
    if state.forecast is not None:
        update["forecast_over_budget"] = elsewhere_cents + _cents(state.forecast.p50) > budget_cents
    if budget_cents > 0 and not unknown_elsewhere:
        hundredths = divide_round(max(used_cents, 0) * 10_000, budget_cents, RoundingMode.HALF_UP)
        update["budget_used"] = units_to_decimal(hundredths, 2)
    spent_cents = _cents(state.spent)
    running = not state.ended and not update["over_budget"]
    if running and not unknown_elsewhere and spent_cents > 0 and billable_seconds:
        # The job's own pace: cents per billable second so far (a time, not money).
        update["seconds_to_budget"] = round(
            (budget_cents - used_cents) * billable_seconds / spent_cents, 1
        )
    return state.model_copy(update=update)


def _check_webhook(url: str) -> None:
    """Refuse a ``--notify`` that is not an http(s) URL with a host, before any poll (an
    alert to ``file:///etc/passwd`` or to a typo would fail, or worse, only when due)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise WatchError(
            f"not an http(s) webhook URL: {url!r}",
            option="--notify",
            hint="e.g. https://hooks.slack.com/services/…",
        )


def _load_budgets(budgets: Budgets | str | Path | None) -> Budgets | None:
    if budgets is None:
        return None
    from rftcost.spend import Budgets, load_budgets

    return budgets if isinstance(budgets, Budgets) else load_budgets(budgets)


def _history_spend(history: Sequence[str | Path] | str | Path, policy: Policy) -> pd.DataFrame:
    """job_id, team, month, cents, any_team: the charges of past jobs per month of billing
    (R4), and their invalid jobs with ``cents`` NA (unknown); ``any_team``: an invalid job
    whose team is unknown, which every team's budget counts (as ``spend`` does); ``month``
    ``*``: an invalid job of no readable time, which every month's counts."""
    import pandas as pd

    from rftcost.engines import bill
    from rftcost.spend import UNALLOCATED, invalid_job_spans, spend, timeless_invalid_jobs

    paths = [history] if isinstance(history, str | Path) else list(history)
    past = bill(paths, policy=policy)
    report = spend(past, by="job", period="month")
    teams = past.jobs.set_index("job_id")["team"]
    table = report.table
    charged = table.assign(
        job_id=table["group"].astype(str),
        team=teams.reindex(table["group"]).fillna(UNALLOCATED).astype(str).to_numpy(),
        month=table["period"].astype(str),
        cents=table["total_cents"].astype("Int64"),
        any_team=False,
    )[["job_id", "team", "month", "cents", "any_team"]]
    # Invalid jobs (as spend finds them): their amount unknown (NA), in the months of their
    # first and last event.
    spans = invalid_job_spans(past, None)
    months = [
        pd.to_datetime(spans[edge].astype("int64"), utc=True).dt.strftime("%Y-%m")
        for edge in ("first_ns", "last_ns")
    ]
    unknown = pd.concat([spans.assign(month=month) for month in months]).drop_duplicates(
        ["job_id", "month"]
    )
    # An invalid job of no readable time (every record rejected) may be of any month, and
    # of no readable team any team's (as spend's budgets count it): month "*".
    timeless = timeless_invalid_jobs(past, spans)
    timeless = timeless.assign(
        team=timeless["team"].fillna(UNALLOCATED).astype(str),
        month="*",
        any_team=timeless["team"].isna(),
    )
    unknown = pd.concat([unknown, timeless], ignore_index=True)
    unknown = unknown.assign(cents=pd.array([pd.NA] * len(unknown), dtype="Int64"))[
        ["job_id", "team", "month", "cents", "any_team"]
    ]
    return pd.concat([charged, unknown], ignore_index=True)


def _load_calibration(calibration: Calibration | str | Path | None) -> Calibration | None:
    if calibration is None:
        return None
    from rftcost.calibration import Calibration

    return calibration if isinstance(calibration, Calibration) else Calibration.load(calibration)


def _budget_amount(budget: Decimal | int | str | None) -> Decimal | None:
    if budget is None:
        return None
    try:
        return budget_amount(budget)
    except ValueError as error:
        raise WatchError(f"{error} (got {budget!r})", option="--budget") from None


# --- small helpers -------------------------------------------------------------------------------


def _cents(amount: Decimal) -> int:
    # Amounts of a bill have two decimals: exact (DOWN only drops what is not there).
    return to_minor_units(amount, RoundingMode.DOWN)


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else format_cents(_cents(amount))


def _steps(state: JobWatch) -> str:
    step = "?" if state.step is None else str(state.step)
    return f"{step}/{state.total_steps}" if state.total_steps else step


# ``rftcost.watch`` is both this module and the function (see ``rftcost._callable``).
make_module_callable(__name__, watch)
