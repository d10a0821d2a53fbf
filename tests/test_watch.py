"""``rftcost watch`` against a local stand-in for the OpenAI fine-tuning API.

The stand-in (http.server on 127.0.0.1, an ephemeral port, in a thread) plays jobs
whose steps appear over time: each ``GET /v1/fine_tuning/jobs/{id}`` of a running
job completes one more 600-second step (o4-mini at $100 an hour: $16.67 of work a
step, $167.00 for the ten), so a test advances by polls, not by the clock. It serves
the events and checkpoints (newest first, pages with ``after`` / ``has_more``), the
job list in pages, and ``POST …/pause``, which takes effect one step later. Faults
(a 429, a dropped connection) are queued per request. A second server plays the
webhook. The SDK's base URL points at the stand-in: no request leaves the machine.
"""

from __future__ import annotations

import io
import json
import logging
import math
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from builders import JobLog

from rftcost.engines import bill
from rftcost.fetch import FetchError
from rftcost.watch import WATCH_SCHEMA, WatchError, WatchState, watch

KEY = "sk-test-key"
JOB = "ftjob-guard1"
T0 = 1_780_000_000  # job creation, epoch seconds (the stand-in's own clock)
STEP_SECONDS = 600
SCHEMA_FILE = Path(__file__).parent.parent / "schemas" / "watch-v1.schema.json"


# --- the stand-in ----------------------------------------------------------------------------


@dataclass
class SimJob:
    """A reinforcement job that completes one step each time it is retrieved."""

    job_id: str
    team: str | None = "search"
    total: int = 10
    method: str = "reinforcement"
    status: str = "running"
    step: int = 0
    ignores_pause: bool = False
    steps_per_poll: int = 1
    pause_requested: bool = False
    finished_at: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for n, (offset, message) in enumerate(
            [
                (0, f"Created fine-tuning job: {self.job_id}"),
                (0, "Validating training file: file-train"),
                (60, "Files validated, moving job to queued state"),
                (120, "Fine-tuning job started"),
            ]
        ):
            self._event(n, T0 + offset, message)

    @property
    def clock(self) -> int:
        return T0 + 120 + STEP_SECONDS * self.step

    def _event(
        self, n: int, at: int, message: str, kind: str = "message", data: Any = None
    ) -> None:
        self.events.insert(
            0,
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{self.job_id[6:]}-{n:03d}",
                "created_at": at,
                "level": "info",
                "message": message,
                "data": data or {},
                "type": kind,
            },
        )

    def advance(self) -> None:
        for _ in range(self.steps_per_poll):
            self._step()

    def _step(self) -> None:
        if self.status != "running":
            return
        self.step += 1
        data = {
            "step": self.step,
            "total_steps": self.total,
            "train_mean_reward": 0.5,
            "timing": {"step": {"full_iteration": float(STEP_SECONDS)}},
        }
        self._event(100 + self.step, self.clock, f"Step {self.step}/{self.total}", "metrics", data)
        if self.step % 5 == 0:
            self.checkpoints.insert(
                0,
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": f"ftckpt-{self.job_id[6:]}-{self.step}",
                    "created_at": self.clock,
                    "fine_tuning_job_id": self.job_id,
                    "step_number": self.step,
                    "metrics": {},
                    "fine_tuned_model_checkpoint": f"ft:o4-mini:{self.step}",
                },
            )
        if self.step == self.total:
            self.status, self.finished_at = "succeeded", self.clock + 30
            self._event(900, self.clock + 30, "The job has successfully completed")
        elif self.pause_requested and not self.ignores_pause:
            self.status = "paused"
            self._event(800, self.clock + 30, "Fine-tuning job paused")

    def document(self) -> dict[str, Any]:
        hyper = {"batch_size": 4, "n_epochs": 1, "eval_interval": "auto"}
        return {
            "object": "fine_tuning.job",
            "id": self.job_id,
            "created_at": T0,
            "finished_at": self.finished_at,
            "model": "o4-mini-2025-04-16",
            "status": self.status,
            "error": None,
            "fine_tuned_model": None,
            "organization_id": "org-test",
            "result_files": [],
            "seed": 7,
            "trained_tokens": None,
            "training_file": "file-train",
            "validation_file": None,
            "hyperparameters": {"batch_size": 4, "n_epochs": 1},
            "metadata": {"team": self.team} if self.team else None,
            "shared_with_openai": False,
            "method": {
                "type": self.method,
                self.method: {
                    "grader": {"type": "python", "name": "exact", "source": "def grade(s, i): 1"},
                    "hyperparameters": hyper,
                },
            },
        }


class StandIn:
    """The API's state, the requests it saw, and faults to play."""

    def __init__(self, *jobs: SimJob) -> None:
        self.jobs = {job.job_id: job for job in jobs}
        self.requests: list[str] = []
        self.pauses: list[tuple[str, int]] = []  # (job, step when the pause arrived)
        self.faults: list[str] = []  # "429", "drop", "html" or "ok", one per coming request
        self.down = False  # every request dropped
        self.pause_answers: list[int] = []  # error statuses of the coming pauses
        self.lock = threading.Lock()

    def answer(self, method: str, path: str, query: dict[str, list[str]], key: str) -> Any:
        with self.lock:
            self.requests.append(
                f"{method} {path}"
                + ("?" + "&".join(f"{k}={v[0]}" for k, v in query.items()) if query else "")
            )
            if self.down:
                return "drop"
            if self.faults:
                fault = self.faults.pop(0)
                if fault in ("drop", "html"):
                    return fault
                if fault == "429":
                    return 429, _error("Rate limit reached for requests.", "rate_limit_exceeded")
            if key != f"Bearer {KEY}":
                return 401, _error("Incorrect API key provided.", "invalid_api_key")
            parts = path.strip("/").split("/")
            if parts[:3] != ["v1", "fine_tuning", "jobs"]:
                return 404, _error(f"Unknown path {path}.", "unknown_url")
            if len(parts) == 3:
                listed = [j.document() for j in reversed(self.jobs.values())]  # newest first
                return 200, _paginate(listed, query)
            job = self.jobs.get(parts[3])
            if job is None:
                return 404, _error(f"Could not find fine-tuning job {parts[3]}.", "not_found")
            if len(parts) == 4 and method == "GET":
                job.advance()
                return 200, job.document()
            if parts[4:] == ["pause"] and method == "POST":
                if self.pause_answers:
                    return self.pause_answers.pop(0), _error("Cannot pause now.", "conflict")
                self.pauses.append((job.job_id, job.step))
                job.pause_requested = True
                return 200, job.document()
            items = job.events if parts[4] == "events" else job.checkpoints
            return 200, _paginate(items, query)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _paginate(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    limit = int(query.get("limit", ["20"])[0])
    start = 0
    if "after" in query:
        start = next(i for i, item in enumerate(items) if item["id"] == query["after"][0]) + 1
    return {
        "object": "list",
        "data": items[start : start + limit],
        "has_more": start + limit < len(items),
    }


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


def _stop(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def api(local_only: None) -> Iterator[tuple[str, StandIn]]:
    stand_in = StandIn(SimJob(JOB))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            answer = stand_in.answer(
                method, url.path, parse_qs(url.query), self.headers.get("Authorization", "")
            )
            if answer == "drop":  # a dropped connection: no response at all
                self.close_connection = True
                return
            if answer == "html":  # a proxy's page, answered with 200
                status, data, kind = 200, b"<html><body>Bad gateway</body></html>", "text/html"
            else:
                status, body = answer
                data, kind = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("retry-after-ms", "5")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server, thread = _serve(Handler)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", stand_in
    finally:
        _stop(server, thread)


@pytest.fixture
def webhook(local_only: None) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server, thread = _serve(Hook)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        _stop(server, thread)


def run(url: str, *job_ids: str, **options: Any) -> list[WatchState]:
    """Every state of a watch against the stand-in, without sleeping between polls."""
    options.setdefault("max_retries", 1)
    options.setdefault("timeout", 60.0)
    options.setdefault("draws", 200)
    return list(watch(job_ids, api_key=KEY, base_url=url, sleep=lambda _: None, **options))


def _money(amount: Decimal | None) -> str:
    assert amount is not None
    return f"{amount:.2f}"


def pauses_sent(stand_in: StandIn) -> list[str]:
    return [r for r in stand_in.requests if r.startswith("POST")]


# --- the guard ----------------------------------------------------------------------------------


def test_pauses_at_the_step_where_spend_reaches_the_budget_and_not_before(
    api: tuple[str, StandIn],
) -> None:
    url, stand_in = api
    states = run(url, JOB, budget="50", pause=True)
    jobs = [s.jobs[0] for s in states]
    # $100/h, 600 s steps: 0.17 h, 0.33 h, 0.50 h accrued (R8, R11) → 17, 33, 50.
    assert [(j.step, str(j.spent)) for j in jobs[:3]] == [(1, "17.00"), (2, "33.00"), (3, "50.00")]
    assert [j.action for j in jobs[:3]] == [None, None, "paused"]
    assert not jobs[1].over_budget and jobs[2].over_budget
    assert stand_in.pauses == [(JOB, 3)]
    assert pauses_sent(stand_in) == [f"POST /v1/fine_tuning/jobs/{JOB}/pause"]
    # The pause lands a step later; the watch goes on until the job shows as paused.
    last = jobs[-1]
    assert (last.status, last.bill_status, last.step, last.ended) == ("paused", "paused", 4, True)
    # Four steps (2,400 s) and step 5 in progress for the 30 s before the pause (R7): 0.68 h.
    assert last.charged == Decimal("68.00") and last.accrued == Decimal("0.00")
    assert last.paused_by_watch and last.action is None
    assert states[-1].done and states[-1].exit_code == 1
    assert len(states) == 4


def test_never_pauses_twice(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 3
    stand_in.jobs[JOB].ignores_pause = True  # still running after the pause
    states = run(url, JOB, budget="17", pause=True)
    assert len(pauses_sent(stand_in)) == 1
    assert [s.jobs[0].action for s in states] == ["paused", None, None]
    assert "not paused twice" in " ".join(states[1].jobs[0].notes)
    assert states[-1].jobs[0].status == "succeeded"
    assert states[-1].jobs[0].spent == Decimal("50.00")
    assert states[-1].exit_code == 1


def test_a_pause_that_fails_is_a_warning_and_is_not_sent_again(
    api: tuple[str, StandIn],
) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 3
    stand_in.pause_answers = [409]
    states = run(url, JOB, budget="17", pause=True)
    assert len(pauses_sent(stand_in)) == 1 and len(states) == 3
    first = states[0]
    assert first.jobs[0].action is None and not first.jobs[0].paused_by_watch
    assert any("pause failed, not sent again" in w and "409" in w for w in first.warnings)
    assert "not sent twice" in " ".join(states[1].jobs[0].notes)
    assert states[-1].exit_code == 1


def test_a_rate_limited_pause_is_asked_again(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 3
    stand_in.pause_answers = [429]
    states = run(url, JOB, budget="17", pause=True, max_retries=3)
    assert any("pause rate limited" in w for w in states[0].warnings)
    assert stand_in.pauses == [(JOB, 2)]  # the 429 was not a pause; the next poll's was
    assert [s.jobs[0].action for s in states[:2]] == [None, "paused"]
    assert len(pauses_sent(stand_in)) == 2  # no SDK retry of a pause: one request a poll


def test_pause_on_forecast_pauses_before_the_money_is_spent(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    states = run(url, JOB, budget="40", pause_on_forecast=True)
    paused = next(s.jobs[0] for s in states if s.jobs[0].action == "paused")
    assert paused.forecast is not None and paused.forecast.p50 > Decimal("40")
    assert paused.spent is not None and paused.spent < Decimal("40")
    assert len(stand_in.pauses) == 1 and states[-1].exit_code == 1


def test_a_poll_that_brings_nothing_new_bills_nothing_again(
    api: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rftcost.engines

    url, stand_in = api
    stand_in.jobs[JOB].status = "queued"  # no step comes
    bills: list[object] = []
    real = rftcost.engines.bill
    monkeypatch.setattr(rftcost.engines, "bill", lambda *a, **k: bills.append(a) or real(*a, **k))
    states = []
    for state in watch([JOB], budget="5", api_key=KEY, base_url=url, sleep=lambda _: None):
        states.append(state)
        if state.poll == 3:
            break
    assert len(bills) == 1
    assert states[2].jobs[0].spent == Decimal("0.00") and states[2].jobs[0].status == "queued"


def test_an_amount_that_cannot_be_established_is_unknown_never_zero(
    api: tuple[str, StandIn],
) -> None:
    url, stand_in = api
    # Step 5 before step 1: the step number goes backwards without a rollback.
    data = {"step": 5, "total_steps": 10, "timing": {"step": {"full_iteration": 60.0}}}
    broken = dict(stand_in.jobs[JOB].events[0], id="ftevent-broken", type="metrics", data=data)
    stand_in.jobs[JOB].events.insert(0, broken)
    state = run(url, JOB, budget="500", pause=True, once=True)[0]
    job = state.jobs[0]
    assert job.spent is None and job.bill_status == "invalid" and job.problems
    assert job.forecast is None and job.action is None and stand_in.pauses == []
    assert state.lines()[0]["spent"] is None and state.exit_code == 1
    # A record that cannot be read at all is said, as `rftcost bill` counts it.
    stand_in.jobs[JOB] = SimJob(JOB)
    unreadable = dict(stand_in.jobs[JOB].events[0], id="ftevent-bad", type="metrics", data={})
    stand_in.jobs[JOB].events.insert(0, unreadable)  # a metrics event without its step
    state = run(url, JOB, budget="500", once=True)[0]
    assert any("record(s) of the exports not used" in w for w in state.warnings)


def test_a_lone_surrogate_in_a_response_makes_its_job_invalid_never_a_crash(
    api: tuple[str, StandIn],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``"\\udc80"`` in an event's message: that event is a rejected record, the job's
    amount unknown, with a clear problem; in the job object's team or status: shown with
    U+FFFD; every line written is UTF-8."""
    url, stand_in = api
    stand_in.jobs[JOB].events[0]["message"] += " \udc80"
    state = run(url, JOB, budget="500", once=True)[0]
    job = state.jobs[0]
    assert job.spent is None and job.bill_status == "invalid"
    assert any("not valid text: a lone surrogate escape \\udc80" in p for p in job.problems)
    assert any("record(s) of the exports not used" in w for w in state.warnings)
    stand_in.jobs[JOB] = SimJob(JOB, team="se\udc80arch")
    for output_format in ("table", "json"):
        code = cli(monkeypatch, url, JOB, "--budget", "500", "--once", "--format", output_format)
        out, err = capsys.readouterr()
        assert code == 1, err
        out.encode("utf-8")  # strict: no lone surrogate written
        err.encode("utf-8")
        assert "se\ufffdarch" in out and "amount unknown" in err
    stand_in.jobs[JOB] = SimJob(JOB, status="runn\udc80ing")
    job = run(url, JOB, budget="500", once=True)[0].jobs[0]
    assert (job.status, job.bill_status) == ("runn\ufffding", "invalid")
    # A running job listed with such an id cannot be watched: a warning, the others are.
    stand_in.jobs[JOB] = SimJob(JOB)
    stand_in.jobs["ftjob-x\udc80"] = SimJob("ftjob-x\udc80")
    state = run(url, all_jobs=True, budget="500", once=True)[0]
    assert [j.job_id for j in state.jobs] == [JOB]
    assert any(w.startswith("ftjob-x\ufffd: a running job whose id") for w in state.warnings)
    # Nor with an id that is a path: it would name a folder out of --save's.
    stand_in.jobs.pop("ftjob-x\udc80")
    stand_in.jobs["../../escaped"] = SimJob("../../escaped")
    state = run(url, all_jobs=True, budget="500", once=True)[0]
    assert [j.job_id for j in state.jobs] == [JOB]
    assert any(w.startswith("../../escaped: a running job whose id") for w in state.warnings)


def test_an_unknown_message_is_said_once(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 2
    unknown = dict(stand_in.jobs[JOB].events[0], id="ftevent-new", message="Warming up GPUs")
    stand_in.jobs[JOB].events.insert(0, unknown)
    states = run(url, JOB, budget="500")
    said = [w for s in states for w in s.warnings if "Warming up GPUs" in w]
    assert len(said) == 1 and said[0].startswith(f"import: {JOB}/events.json: job {JOB}")
    assert "rftcost-watch-" not in said[0]  # no temporary path
    # The export's counts grow with every poll: bookkeeping, never a warning.
    assert not any("OpenAI export counts" in w for s in states for w in s.warnings)


def test_a_job_that_is_not_running_is_reported_not_paused(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].status = "queued"
    state = run(url, JOB, budget="0", pause=True, once=True)[0]
    job = state.jobs[0]
    assert job.over_budget and job.action is None and not job.paused_by_watch
    assert "queued, not running: not paused" in " ".join(job.notes)
    assert stand_in.pauses == [] and state.exit_code == 1


def test_succeeds_within_budget_with_the_final_bill_of_rftcost_bill(
    api: tuple[str, StandIn], tmp_path: Path
) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 4
    save = tmp_path / "exports"
    spent = []
    for state in watch(
        [JOB], budget="500", api_key=KEY, base_url=url, sleep=lambda _: None, draws=200, save=save
    ):
        # The generator waits here: the saved exports are this poll's; `rftcost bill` of them
        # gives the same amounts (checked while running, accrued, and once final).
        job = state.jobs[0]
        if state.poll in (2, 4):
            of_exports = bill(save / JOB).job(JOB)
            assert (job.charged, job.accrued) == (
                of_exports.total_amount,
                of_exports.accrued_amount,
            )
        spent.append(job.spent)
        last = state
    assert spent == [Decimal(a) for a in ("17.00", "33.00", "50.00", "67.00")]
    job = last.jobs[0]
    assert job.forecast is not None and job.forecast.final and job.forecast.p50 == spent[-1]
    assert (job.status, job.ended, job.budget_used) == ("succeeded", True, Decimal("13.40"))
    assert last.done and last.exit_code == 0
    from typer.testing import CliRunner

    from rftcost.cli import app

    printed = CliRunner().invoke(app, ["bill", str(save), "-f", "json"])
    assert json.loads(printed.stdout)["jobs"][0]["total_amount"] == _money(job.spent)
    assert sorted(p.name for p in (save / JOB).iterdir()) == [
        "checkpoints.json",
        "events.json",
        "job.json",
    ]


def test_events_are_paged_and_only_what_is_new_is_fetched(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 3
    states = run(url, JOB, budget="500", page_size=3)
    event_requests = [r for r in stand_in.requests if "/events" in r]
    # First poll: the 5 events in two pages (after the last id of the first); later polls
    # stop at the first event already seen: one page each.
    assert event_requests[:2] == [
        f"GET /v1/fine_tuning/jobs/{JOB}/events?limit=3",
        f"GET /v1/fine_tuning/jobs/{JOB}/events?limit=3&after=ftevent-guard1-002",
    ]
    assert len(event_requests) == 2 + (len(states) - 1)
    assert states[-1].jobs[0].spent == Decimal("50.00") and len(states) == 3


def test_survives_a_429_and_a_dropped_connection(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 4
    states: list[WatchState] = []
    for state in watch(
        [JOB], budget="500", api_key=KEY, base_url=url, sleep=lambda _: None, draws=200,
        max_retries=1, timeout=60.0,
    ):  # fmt: skip
        states.append(state)
        if state.poll == 1:
            stand_in.faults = ["429"]  # retried by the SDK: the poll succeeds
        if state.poll == 2:
            stand_in.faults = ["drop", "drop"]  # the request and its retry: the poll fails
    assert any("HTTP 429: the SDK retries with backoff" in w for w in states[1].warnings)
    assert states[1].jobs[0].step == 2 and not states[1].failed
    failed = states[2]
    assert failed.failed and failed.failures == 1
    assert "poll 3 failed (1 of 5 in a row allowed)" in failed.warnings[-1]
    assert failed.jobs == states[1].jobs  # the last known figures
    assert not states[3].failed and states[3].failures == 0
    assert states[-1].jobs[0].spent == Decimal("67.00") and states[-1].exit_code == 0
    assert len(states) == 5


def test_a_page_that_is_not_the_apis_json_is_one_clear_error(
    api: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, stand_in = api
    stand_in.faults = ["ok", "html"]  # the job, then its events page: a proxy's HTML
    assert cli(monkeypatch, url, JOB, "--budget", "5", "--once") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other than the OpenAI API's JSON (an HTML page?)" in err


def test_gives_up_after_the_stated_number_of_failed_polls(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.down = True
    states: list[WatchState] = []
    with pytest.raises(FetchError, match="gave up after 3 failed polls in a row"):
        for state in watch(
            [JOB], budget="50", api_key=KEY, base_url=url, sleep=lambda _: None,
            max_retries=0, max_failures=3,
        ):  # fmt: skip
            states.append(state)
    assert [s.failures for s in states] == [1, 2]
    assert states[0].exit_code == 2  # nothing known yet
    with pytest.raises(FetchError, match="the poll failed"):
        run(url, JOB, budget="50", once=True, max_retries=0)


def test_once_polls_once(api: tuple[str, StandIn]) -> None:
    from rich.console import Console

    from rftcost.cli.watch import watch_table

    url, stand_in = api
    records: list[logging.LogRecord] = []

    class UserHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    user_handler = UserHandler()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    root.addHandler(user_handler)
    try:
        states = run(url, JOB, budget="500", once=True)
    finally:
        root.removeHandler(user_handler)
        root.setLevel(level)
    # The SDK's debug lines, read for its retries, do not reach the user's logging.
    assert not [r for r in records if r.name.startswith("openai")]
    console = Console(width=140, record=True, file=io.StringIO())
    console.print(watch_table(states[0]))
    table = console.export_text()
    assert "P50" in table and "budget in" in table
    assert "ftjob-guard1 search running 1/10 17.00" in " ".join(table.split())
    assert len(states) == 1 and states[0].done and states[0].exit_code == 0
    job = states[0].jobs[0]
    assert (job.status, job.step, job.total_steps, job.ended) == ("running", 1, 10, False)
    assert job.forecast is not None and not job.forecast.final
    assert job.forecast.p10 <= job.forecast.p50 <= job.forecast.p90
    assert job.seconds_to_budget is not None and job.seconds_to_budget > 0
    assert len([r for r in stand_in.requests if r.endswith(JOB)]) == 1


def test_all_watches_every_running_rft_job_from_every_list_page(
    api: tuple[str, StandIn],
) -> None:
    url, stand_in = api
    stand_in.jobs.update(
        {
            "ftjob-sft": SimJob("ftjob-sft", method="supervised"),
            "ftjob-done": SimJob("ftjob-done", status="succeeded"),
            "ftjob-ads": SimJob("ftjob-ads", team="ads"),
            "ftjob-late": SimJob("ftjob-late"),
        }
    )
    state = run(url, all_jobs=True, budget="500", once=True, page_size=2)[0]
    assert sorted(j.job_id for j in state.jobs) == ["ftjob-ads", JOB, "ftjob-late"]
    listed = [r for r in stand_in.requests if r.startswith("GET /v1/fine_tuning/jobs?")]
    assert listed == [
        "GET /v1/fine_tuning/jobs?limit=2",
        "GET /v1/fine_tuning/jobs?limit=2&after=ftjob-ads",
        "GET /v1/fine_tuning/jobs?limit=2&after=ftjob-sft",
    ]
    assert not any("ftjob-sft" in r or "ftjob-done" in r for r in stand_in.requests[3:])


def test_all_with_nothing_running_ends_at_once(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].status = "succeeded"
    states = run(url, all_jobs=True, budget="500")
    assert len(states) == 1 and states[0].jobs == () and states[0].exit_code == 0


def test_team_budgets_count_history_and_the_team_s_other_jobs(
    api: tuple[str, StandIn], tmp_path: Path
) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].total = 4
    stand_in.jobs["ftjob-ads"] = SimJob("ftjob-ads", team="ads", total=3)
    stand_in.jobs["ftjob-free"] = SimJob("ftjob-free", team=None, total=3)
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2026-06,90.00\nsearch,2026-05,1.00\n")
    # History: a search job charged $60 this month, one charged last month (not counted),
    # and an earlier export of the watched job (counted by the watch itself, not twice).
    past = JobLog("ftjob-past", clock=datetime(2026, 6, 2, tzinfo=UTC))
    past.created(team="search", model="o4-mini-2025-04-16").phase("rollout", minutes=36)
    past.add("succeeded")
    old = JobLog("ftjob-old", clock=datetime(2026, 5, 2, tzinfo=UTC))
    old.created(team="search", model="o4-mini-2025-04-16").phase("rollout", hours=5).add("paused")
    again = JobLog(JOB, clock=datetime(2026, 6, 3, tzinfo=UTC))
    again.created(team="search", model="o4-mini-2025-04-16").phase("rollout", hours=5)
    again.add("paused")
    history = tmp_path / "history.jsonl"
    history.write_text(
        "".join(json.dumps(e) + "\n" for log in (past, old, again) for e in log.events)
    )
    states = run(
        url,
        JOB,
        "ftjob-ads",
        "ftjob-free",
        budgets=budgets,
        history=[history],
        budget="1000",
        pause=True,
        clock=lambda: now,
    )
    first = {j.job_id: j for j in states[0].jobs}
    # search: 90 − 60 of history; the job's $17 → (60 + 17) / 90.
    search = first[JOB]
    assert (search.budget, search.budget_source) == (Decimal("90.00"), "team search 2026-06")
    assert search.spent_elsewhere == Decimal("60.00") and search.budget_used == Decimal("85.56")
    # ads has no budget this month, the job without a team neither: --budget per job.
    assert (first["ftjob-ads"].budget, first["ftjob-ads"].budget_source) == (
        Decimal("1000"),
        "per job",
    )
    assert first["ftjob-free"].team is None and first["ftjob-free"].budget_source == "per job"
    # Step 2: 60 + 33 ≥ 90: the search job is paused there, the others run on.
    assert stand_in.pauses == [(JOB, 2)]
    assert states[-1].exit_code == 1


@pytest.mark.parametrize(
    "whose", ["the team's", "a job whose team is in doubt", "a job of no readable record"]
)
def test_a_past_job_of_unknown_amount_leaves_the_team_budget_used_unknown(
    api: tuple[str, StandIn], tmp_path: Path, whose: str
) -> None:
    """Whether the past job is the team's own, or one whose team is in doubt (no team on
    ``job_created``, another named later), or one whose every record was rejected (no
    time, no team): every team's budget counts it, as spend does."""
    url, stand_in = api
    stand_in.jobs[JOB].total = 2
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2026-06,900.00\n")
    broken = JobLog("ftjob-broken", clock=datetime(2026, 6, 2, tzinfo=UTC))
    if whose == "the team's":
        broken.created(team="search").add("phase_end", phase="rollout").at(hours=1)
    elif whose == "a job whose team is in doubt":
        broken.created().phase("rollout", hours=1).add("step_completed", step=1, team="ads")
    else:
        broken.created(team="search").phase("rollout", hours=1)
    broken.add("succeeded")
    if whose == "a job of no readable record":  # every time without its offset
        for event in broken.events:
            event["ts"] = event["ts"].removesuffix("Z")
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(e) + "\n" for e in broken.events))
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    states = run(url, JOB, budgets=budgets, history=[history], clock=lambda: now)
    job = states[0].jobs[0]
    assert job.unknown_elsewhere == ("ftjob-broken",) and job.budget_used is None
    assert states[-1].exit_code == 1  # the team's spend may be over: not "within budget"
    assert any("past job(s) of unknown amount (ftjob-broken)" in note for note in job.notes)
    assert job.to_dict(now)["unknown_elsewhere"] == ["ftjob-broken"]


def _of_unknown_amount(stand_in: StandIn, job_id: str) -> SimJob:
    """A running job of team search whose step goes backwards without a rollback (step 5
    before step 1): its amount cannot be established."""
    job = stand_in.jobs[job_id] = SimJob(job_id)
    data = {"step": 5, "total_steps": 10, "timing": {"step": {"full_iteration": 60.0}}}
    job.events.insert(0, dict(job.events[0], id=f"ftevent-{job_id}-x", type="metrics", data=data))
    return job


def test_a_watched_job_of_unknown_amount_leaves_its_teammates_budget_used_unknown(
    api: tuple[str, StandIn], tmp_path: Path
) -> None:
    """As a past job of unknown amount: the team's other watched jobs name it, their share
    used and time to the budget are unknown, and nothing is paused on the known share
    below the budget; another team's budget does not count it."""
    url, stand_in = api
    _of_unknown_amount(stand_in, "ftjob-wa")
    stand_in.jobs["ftjob-ads"] = SimJob("ftjob-ads", team="ads")
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2026-06,50.00\nads,2026-06,50.00\n")
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    watched = (JOB, "ftjob-wa", "ftjob-ads")
    state = run(url, *watched, budgets=budgets, pause=True, once=True, clock=lambda: now)[0]
    jobs = {j.job_id: j for j in state.jobs}
    unknown, teammate, ads = jobs["ftjob-wa"], jobs[JOB], jobs["ftjob-ads"]
    assert unknown.spent is None and unknown.bill_status == "invalid"
    assert unknown.unknown_elsewhere == () and unknown.spent_elsewhere == teammate.spent
    # Counted as nothing, the teammate's $17 was said 34.00% of the budget used.
    assert teammate.spent == Decimal("17.00") and teammate.spent_elsewhere == Decimal("0.00")
    assert teammate.unknown_elsewhere == ("ftjob-wa",)
    assert teammate.budget_used is None and teammate.seconds_to_budget is None
    assert not teammate.over_budget and teammate.action is None
    assert any("1 other watched job(s) of unknown amount (ftjob-wa)" in n for n in teammate.notes)
    line = teammate.to_dict(now)
    assert (line["unknown_elsewhere"], line["budget_used"], line["seconds_to_budget"]) == (
        ["ftjob-wa"],
        None,
        None,
    )
    assert ads.unknown_elsewhere == () and ads.budget_used == Decimal("34.00")
    assert ads.seconds_to_budget is not None
    assert stand_in.pauses == [] and state.exit_code == 1


def test_a_budget_the_known_share_reaches_is_reached_beside_a_job_of_unknown_amount(
    api: tuple[str, StandIn], tmp_path: Path
) -> None:
    """The known spend is a floor of the team's, as with a past job of unknown amount:
    a teammate whose known share reaches the budget is paused; the job of unknown
    amount is not (its own spend is unknown)."""
    url, stand_in = api
    _of_unknown_amount(stand_in, "ftjob-wa")
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2026-06,10.00\n")
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    state = run(url, JOB, "ftjob-wa", budgets=budgets, pause=True, once=True, clock=lambda: now)
    jobs = {j.job_id: j for j in state[0].jobs}
    teammate, unknown = jobs[JOB], jobs["ftjob-wa"]
    assert teammate.over_budget and teammate.action == "paused"
    assert teammate.unknown_elsewhere == ("ftjob-wa",) and teammate.budget_used is None
    assert not unknown.over_budget and unknown.action is None
    assert stand_in.pauses == [(JOB, 1)]


def test_a_value_of_another_type_than_the_sdk_s_is_a_rejected_record_without_a_warning(
    api: tuple[str, StandIn],
) -> None:
    """An event whose ``created_at`` is ``"yesterday"`` (the SDK types it int, unchecked):
    the record is rejected with its reason, and pydantic's serializer warning (a
    ``UserWarning`` on stderr) is not raised."""
    url, stand_in = api
    job = stand_in.jobs[JOB]
    job.events.insert(0, dict(job.events[0], id="ftevent-late", created_at="yesterday"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = run(url, JOB, budget="500", once=True)[0]
    assert state.jobs[0].spent is None and state.jobs[0].bill_status == "invalid"
    assert any("'created_at' is not epoch seconds" in p for p in state.jobs[0].problems)
    assert any("record(s) of the exports not used" in w for w in state.warnings)
    # The exports were billed in a temporary folder, gone by now: not named (as the notes).
    assert not any("rftcost-watch-" in p for p in state.jobs[0].problems)


def test_notify_posts_each_alert_once_and_a_failing_webhook_is_a_warning(
    api: tuple[str, StandIn], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, stand_in = api
    hook, received = webhook
    stand_in.jobs[JOB].total = 4
    states = run(url, JOB, budget="40", pause=True, notify=hook)
    texts = [m["text"] for m in received]
    assert all(m["state"]["schema"] == WATCH_SCHEMA for m in received)
    # $17 (42.5%), $33 (82.5%: the 50% and 80% crossings, one message), $50 (paused)
    assert sum("crossed 80% of its budget" in t for t in texts) == 1
    assert sum("crossed 100% of its budget" in t for t in texts) == 1
    assert sum("paused at step 3" in t for t in texts) == 1
    assert not any("crossed 50%" in t for t in texts)
    assert sum("forecast over its budget" in t for t in texts) <= 1
    kinds = [k for s in states for k in s.jobs[0].alerts]
    assert len(kinds) == len(set(kinds)) == len(received)
    assert states[1].jobs[0].action == "alerted" and states[2].jobs[0].action == "paused"
    # A webhook that does not answer: warnings, and the guard still pauses.
    stand_in.jobs[JOB] = SimJob(JOB)
    stand_in.pauses.clear()
    states = run(url, JOB, budget="10", pause=True, once=True, notify="http://127.0.0.1:9/x")
    assert stand_in.pauses == [(JOB, 1)]
    assert any("alert not delivered" in w for s in states for w in s.warnings)


def test_calibration_and_policy(api: tuple[str, StandIn], tmp_path: Path) -> None:
    from rftcost.calibration import PRIOR
    from rftcost.errors import CalibrationError, PolicyError

    url, stand_in = api
    saved = tmp_path / "calibration.json"
    PRIOR.save(saved)
    with_file = run(url, JOB, budget="500", once=True, calibration=saved)[0].jobs[0]
    stand_in.jobs[JOB] = SimJob(JOB)
    without = run(url, JOB, budget="500", once=True)[0].jobs[0]
    assert with_file.forecast == without.forecast and with_file.forecast is not None
    requests = len(stand_in.requests)
    with pytest.raises(CalibrationError, match="not a calibration file"):
        run(url, JOB, budget="500", calibration=SCHEMA_FILE)
    with pytest.raises(PolicyError):
        run(url, JOB, budget="500", policy="no-such-policy")
    assert len(stand_in.requests) == requests  # refused before any request


def test_arguments_are_checked_before_any_request(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    with pytest.raises(WatchError, match="no job to watch"):
        run(url)
    with pytest.raises(WatchError, match="at most two decimals"):
        run(url, JOB, budget="12.345")
    with pytest.raises(WatchError, match="--interval: must be positive"):
        run(url, JOB, budget="1", interval=0)
    for endless in (math.inf, math.nan):  # time.sleep(inf) overflows after the first poll
        with pytest.raises(WatchError, match="--interval: must be positive and finite"):
            run(url, JOB, budget="1", interval=endless)
    assert stand_in.requests == []


@pytest.mark.parametrize("interval", ["inf", "1e400", "86401"])
def test_an_interval_beyond_a_day_is_refused_by_the_parser(
    interval: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(monkeypatch, None, JOB, "--budget", "1", "--interval", interval) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Invalid value for '--interval': must be at most 86400")
    assert err.count("\n") == 1


def test_unknown_and_non_rft_jobs_are_errors(api: tuple[str, StandIn]) -> None:
    url, stand_in = api
    with pytest.raises(FetchError, match="no such fine-tuning job"):
        run(url, "ftjob-nope", budget="1")
    stand_in.jobs["ftjob-sft"] = SimJob("ftjob-sft", method="supervised")
    with pytest.raises(FetchError, match="not reinforcement fine-tuning"):
        run(url, "ftjob-sft", budget="1")


def test_nothing_is_written_to_disk_without_save(
    api: tuple[str, StandIn], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    url, _ = api
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(tmp_path)
    run(url, JOB, budget="500", once=True)
    assert list(tmp_path.rglob("*")) == [scratch]


def test_the_library_is_rftcost_watch(api: tuple[str, StandIn]) -> None:
    import rftcost

    url, _ = api
    states = list(
        rftcost.watch([JOB], budget="500", once=True, api_key=KEY, base_url=url, draws=100)
    )
    assert isinstance(states[0], rftcost.WatchState)
    with pytest.raises(Exception, match="frozen"):
        states[0].jobs[0].spent = Decimal(0)  # type: ignore[misc]


# --- the command ----------------------------------------------------------------------------------


def cli(monkeypatch: pytest.MonkeyPatch, url: str | None, *args: str) -> int:
    from rftcost.cli import main

    if url is not None:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setattr(sys, "argv", ["rftcost", "watch", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


def test_cli_defaults_are_the_library_defaults() -> None:
    import rftcost.cli.watch as command
    import rftcost.fetch as fetch
    import rftcost.watch as library

    assert (command.DEFAULT_INTERVAL, command.DEFAULT_MAX_FAILURES) == (
        library.DEFAULT_INTERVAL,
        library.DEFAULT_MAX_FAILURES,
    )
    assert command.DEFAULT_MAX_RETRIES == fetch.DEFAULT_MAX_RETRIES


def test_done_when_budget_50_pause_sends_one_pause_and_exits_1(
    api: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, stand_in = api
    code = cli(monkeypatch, url, JOB, "--budget", "50", "--pause", "--interval", "0.5")
    out, err = capsys.readouterr()
    assert code == 1
    assert pauses_sent(stand_in) == [f"POST /v1/fine_tuning/jobs/{JOB}/pause"]
    assert stand_in.pauses == [(JOB, 3)]
    lines = out.splitlines()
    assert any("step 3/10 spent 50.00" in line and "→ paused" in line for line in lines)
    assert lines[-1].split()[3:5] == ["paused", "step"]  # seen as paused, at step 3 to 5
    assert 3 <= int(lines[-1].split()[5].split("/")[0]) <= 5
    assert f"{JOB}: pause sent" in err
    assert "paused by rftcost watch" in err and "budget reached" in err


def test_done_when_budget_500_shows_the_final_bill_and_exits_0(
    api: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, stand_in = api
    stand_in.jobs[JOB].steps_per_poll = 3  # steps 3, 6, 9, 10: four polls, not ten
    code = cli(monkeypatch, url, JOB, "--budget", "500", "--interval", "0.5")
    out, err = capsys.readouterr()
    assert code == 0
    assert stand_in.pauses == []
    assert len(out.splitlines()) == 4
    last = out.splitlines()[-1]
    assert "succeeded step 10/10 spent 167.00" in last and "final bill 167.00" in last
    assert f"{JOB}: succeeded, final bill 167.00 USD" in err and "within budget" in err


def test_cli_json_lines_follow_the_schema(
    api: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    url, stand_in = api
    stand_in.jobs[JOB].total = 3
    code = cli(monkeypatch, url, JOB, "--budget", "40", "--format", "json", "--interval", "0.01")
    out, _ = capsys.readouterr()
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        jsonschema.validate(line, schema)
    assert code == 1 and len(lines) == 3
    assert [line["spent"] for line in lines] == ["17.00", "33.00", "50.00"]
    assert lines[-1]["forecast"] == {"p10": "50.00", "p50": "50.00", "p90": "50.00", "final": True}
    assert lines[2]["budget_used"] == "125.00" and lines[2]["over_budget"] is True


def test_cli_once_with_pause(
    api: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, stand_in = api
    assert cli(monkeypatch, url, JOB, "--budget", "10", "--pause", "--once") == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and "→ paused" in out
    assert stand_in.pauses == [(JOB, 1)]
    assert "spent so far 17.00 USD" in err


def pin_watch_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """The watch's clock stopped at ``moment``: the command reads the clock itself (no
    option sets it), and a test's month must be the poll's month."""

    class Pinned(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            return moment

    monkeypatch.setattr("rftcost.watch.datetime", Pinned)


def test_cli_all_with_budgets_and_notify(
    api: tuple[str, StandIn],
    webhook: tuple[str, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, stand_in = api
    hook, received = webhook
    stand_in.jobs["ftjob-ads"] = SimJob("ftjob-ads", team="ads")

    # The command reads the clock itself: pinned, so that the month written below is the
    # month of the poll (the two calls could straddle a month's end).
    pin_watch_clock(monkeypatch, datetime(2026, 6, 15, 12, tzinfo=UTC))
    month = "2026-06"
    budgets = tmp_path / "budgets.csv"
    budgets.write_text(f"team,period,amount\nsearch,{month},20.00\nads,{month},1000.00\n")
    args = ["--all", "--budgets", str(budgets), "--once", "--pause", "--notify", hook]
    assert cli(monkeypatch, url, *args) == 1
    out, _ = capsys.readouterr()
    assert len(out.splitlines()) == 2
    assert stand_in.pauses == []  # $17 of $20: 85%, not reached
    assert {m["state"]["job_id"] for m in received} == {JOB}  # ads: $17 of $1000
    assert sum("crossed 80% of its budget" in m["text"] for m in received) == 1
    assert all(m["state"]["budget_source"] == f"team search {month}" for m in received)


def test_budgets_without_a_row_for_the_month_say_so(
    api: tuple[str, StandIn],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Last month's budgets guard nothing this month: a warning, not a silent "no budget"."""
    url, _ = api

    pin_watch_clock(monkeypatch, datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC))
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount\nsearch,2026-06,20.00\n")
    assert cli(monkeypatch, url, "--all", "--budgets", str(budgets), "--once") == 0
    _, err = capsys.readouterr()
    assert "no budget for 2026-07, this poll's month: no job guarded" in err


@pytest.mark.parametrize(
    ("args", "key", "expected"),
    [
        ([JOB], KEY, "give --budget AMOUNT or --budgets FILE"),
        (["--budget", "5"], KEY, "give job ids"),
        (["ftjob-nope", "--budget", "5"], KEY, "no such fine-tuning job (404"),
        ([JOB, "--budget", "5"], None, "OPENAI_API_KEY is not set"),
        (
            [JOB, "--budget", "five"],
            KEY,
            "--budget: not an amount (e.g. 500 or 500.00) (got 'five')",
        ),
        ([JOB, "--budget", "5", "--notify", "file:///etc/passwd"], KEY, "not an http(s) webhook"),
        ([JOB, "--budget", "10000000000000"], KEY, "must be below 10^12"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(
    api: tuple[str, StandIn],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    key: str | None,
    expected: str,
) -> None:
    url, _ = api
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    if key is None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    assert cli(monkeypatch, None, *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err


def test_cli_ctrl_c_stops_with_a_last_summary(
    api: tuple[str, StandIn], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    url, _ = api
    real_sleep = time.sleep
    calls: list[float] = []

    def interrupted(seconds: float) -> None:
        calls.append(seconds)
        if seconds == 30:
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", interrupted)
    assert cli(monkeypatch, url, JOB, "--budget", "500", "--interval", "30") == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    assert "interrupted" in err and "summary after 1 poll(s)" in err
    assert "spent so far 17.00 USD" in err


def test_team_budgets_in_another_currency_are_refused_before_any_poll(tmp_path: Path) -> None:
    from rftcost.errors import InputError

    budgets = tmp_path / "budgets.csv"
    budgets.write_text("team,period,amount,currency\nsearch,2026-06,90.00,EUR\n")
    with pytest.raises(InputError, match="a budget in EUR where the charges are in USD"):
        next(watch([JOB], budgets=budgets, api_key="sk-test", base_url="http://127.0.0.1:9"))
