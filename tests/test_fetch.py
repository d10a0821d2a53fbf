"""``rftcost fetch`` against a local HTTP server that plays recorded API responses.

The server (http.server on 127.0.0.1, in a thread) serves the fixture job
``ftjob-failed1`` as the API would: the job, its events in pages that follow
``limit`` / ``after`` / ``has_more``, its checkpoints; a 401 for a wrong key, a 404
for an unknown job, 429s before a success. The SDK's base URL points at it: no
real network.
"""

from __future__ import annotations

import json
import sys
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from rftcost.errors import ExportError
from rftcost.events.openai import import_openai
from rftcost.fetch import FetchError, fetch_jobs

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
KEY = "sk-test-key"
JOB = "ftjob-failed1"


def _load(name: str) -> Any:
    return json.loads((FIXTURES / JOB / name).read_text())


class Recorded:
    """The API's state: jobs with their events and checkpoints, and requests seen."""

    def __init__(self) -> None:
        self.jobs = {JOB: _load("job.json")}
        self.events = {JOB: _load("events.json")["data"]}  # newest first, as the API
        self.checkpoints = {JOB: _load("checkpoints.json")["data"]}
        self.busy: dict[str, int] = {}  # job id → 429 answers left before success
        self.requests: list[str] = []

    def answer(self, path: str, query: dict[str, list[str]], key: str) -> tuple[int, Any]:
        self.requests.append(
            path + ("?" + "&".join(f"{k}={v[0]}" for k, v in query.items()) if query else "")
        )
        if key != f"Bearer {KEY}":
            return 401, _error("Incorrect API key provided.", "invalid_api_key")
        parts = path.strip("/").split("/")  # v1 fine_tuning jobs ID [events|checkpoints]
        if parts[:3] != ["v1", "fine_tuning", "jobs"] or len(parts) < 4:
            return 404, _error(f"Unknown path {path}.", "unknown_url")
        job_id = parts[3]
        if self.busy.get(job_id, 0) > 0:
            self.busy[job_id] -= 1
            return 429, _error("Rate limit reached for requests.", "rate_limit_exceeded")
        if job_id not in self.jobs:
            return 404, _error(f"Could not find fine-tuning job {job_id}.", "model_not_found")
        if len(parts) == 4:
            return 200, self.jobs[job_id]
        items = self.events[job_id] if parts[4] == "events" else self.checkpoints[job_id]
        return 200, _paginate(items, query)


def _error(message: str, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


def _paginate(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    limit = int(query.get("limit", ["20"])[0])
    start = 0
    if "after" in query:
        start = next(i for i, item in enumerate(items) if item["id"] == query["after"][0]) + 1
    chunk = items[start : start + limit]
    return {"object": "list", "data": chunk, "has_more": start + limit < len(items)}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            status, body = recorded.answer(
                url.path, parse_qs(url.query), self.headers.get("Authorization", "")
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("retry-after-ms", "5")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fetch_writes_job_all_event_pages_and_checkpoints(
    api: tuple[str, Recorded], tmp_path: Path
) -> None:
    url, recorded = api
    # Named twice, fetched once.
    result = fetch_jobs([JOB, JOB], tmp_path, api_key=KEY, base_url=url, page_size=3)
    folder = tmp_path / JOB
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoints.json",
        "events.json",
        "job.json",
    ]
    assert [(j.job_id, j.status, j.method, j.events, j.checkpoints) for j in result.jobs] == [
        (JOB, "failed", "reinforcement", 8, 1)
    ]
    # Eight events in pages of three: three requests, each after the last id of the one before.
    event_requests = [r for r in recorded.requests if r.split("?")[0].endswith("/events")]
    assert event_requests == [
        f"/v1/fine_tuning/jobs/{JOB}/events?limit=3",
        f"/v1/fine_tuning/jobs/{JOB}/events?limit=3&after=ftevent-b06",
        f"/v1/fine_tuning/jobs/{JOB}/events?limit=3&after=ftevent-b03",
    ]
    events = json.loads((folder / "events.json").read_text())
    assert events["object"] == "list" and events["has_more"] is False
    assert [e["id"] for e in events["data"]] == [e["id"] for e in recorded.events[JOB]]
    assert json.loads((folder / "job.json").read_text())["id"] == JOB
    assert json.loads((folder / "checkpoints.json").read_text())["data"][0]["step_number"] == 2


def test_fetched_folder_imports_like_the_original_export(
    api: tuple[str, Recorded], tmp_path: Path
) -> None:
    url, _ = api
    fetch_jobs([JOB], tmp_path, api_key=KEY, base_url=url)
    fetched = import_openai([tmp_path])
    original = import_openai([FIXTURES / JOB])
    assert fetched.problems == () and fetched.unknown_messages == ()
    pd.testing.assert_frame_equal(fetched.events, original.events)


def test_a_lone_surrogate_in_a_response_is_a_problem_of_its_object_not_a_crash(
    api: tuple[str, Recorded],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``"\\udc80"`` in an event's message parses to a character no UTF-8 file holds:
    fetch writes it as the API sent it (escaped, the file UTF-8), names the object, and
    the import rejects that event alone, its job invalid."""
    url, recorded = api
    event = recorded.events[JOB][2]
    event["message"] += " \udc80"
    result = fetch_jobs([JOB], tmp_path, api_key=KEY, base_url=url)
    folder = tmp_path / JOB
    text = (folder / "events.json").read_bytes().decode("utf-8")  # strict: UTF-8 text
    assert "\\udc80" in text and json.loads(text)["data"][2]["message"] == event["message"]
    (problem,) = result.jobs[0].problems
    assert problem.startswith(f"events.json: data[2] (fine_tuning.job.event '{event['id']}')")
    assert "lone surrogate escape \\udc80" in problem
    imported = import_openai([tmp_path])
    (rejected,) = imported.problems
    assert (rejected.job_id, rejected.position) == (JOB, "data[2]")
    assert "not valid text: a lone surrogate escape \\udc80" in rejected.reason
    assert len(imported.events) > 0  # the other events are read
    from rftcost.engines import bill

    assert bill(tmp_path).job(JOB).status == "invalid"
    # The job object too; the command says so on stderr, in UTF-8, and succeeds.
    recorded.jobs[JOB]["metadata"] = {"team": "se\udc80arch"}
    recorded.jobs[JOB]["status"] = "fail\udc80ed"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert run_cli(monkeypatch, "fetch", JOB, "-o", str(tmp_path / "again")) == 0
    err = capsys.readouterr().err
    err.encode("utf-8")
    assert f"{JOB}: fail\ufffded, 8 event(s)" in err
    assert f"{JOB}: warning: job.json: the job object holds a lone surrogate escape" in err
    assert f"{JOB}: warning: events.json: data[2]" in err
    (tmp_path / "again" / JOB / "job.json").read_bytes().decode("utf-8")


def test_a_value_of_another_type_than_the_sdk_s_is_written_as_sent_without_a_warning(
    api: tuple[str, Recorded], tmp_path: Path
) -> None:
    """The SDK types ``created_at`` int but does not validate: ``"yesterday"`` is written
    as the API sent it, for the import to reject with its reason, and pydantic's
    serializer warning (a ``UserWarning`` on stderr) is not raised."""
    url, recorded = api
    recorded.events[JOB][2]["created_at"] = "yesterday"
    recorded.jobs[JOB]["trained_tokens"] = "many"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fetch_jobs([JOB], tmp_path, api_key=KEY, base_url=url)
    folder = tmp_path / JOB
    assert json.loads((folder / "events.json").read_text())["data"][2]["created_at"] == "yesterday"
    assert json.loads((folder / "job.json").read_text())["trained_tokens"] == "many"
    (rejected,) = import_openai([tmp_path]).problems
    assert rejected.position == "data[2]" and "'created_at' is not epoch seconds" in rejected.reason


def test_key_and_base_url_come_from_the_environment(
    api: tuple[str, Recorded], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, recorded = api
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    result = fetch_jobs([JOB], tmp_path)
    assert result.base_url.rstrip("/") == url
    assert recorded.requests[0] == f"/v1/fine_tuning/jobs/{JOB}"


def test_missing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(FetchError, match="OPENAI_API_KEY is not set"):
        fetch_jobs([JOB], tmp_path)


def test_wrong_key_is_401(api: tuple[str, Recorded], tmp_path: Path) -> None:
    url, _ = api
    with pytest.raises(FetchError) as error:
        fetch_jobs([JOB], tmp_path, api_key="sk-wrong", base_url=url)
    assert error.value.status_code == 401 and error.value.job_id == JOB
    assert "401 Unauthorized: Incorrect API key provided." in str(error.value)
    assert "check OPENAI_API_KEY" in str(error.value)
    assert not (tmp_path / JOB).exists()


def test_unknown_job_is_404(api: tuple[str, Recorded], tmp_path: Path) -> None:
    url, _ = api
    with pytest.raises(FetchError, match="no such fine-tuning job") as error:
        fetch_jobs([JOB, "ftjob-nope"], tmp_path, api_key=KEY, base_url=url)
    assert error.value.status_code == 404 and error.value.job_id == "ftjob-nope"
    assert isinstance(error.value, ExportError)
    assert (tmp_path / JOB / "events.json").is_file()  # jobs before the failure stay written
    assert not (tmp_path / "ftjob-nope").exists()


def test_rate_limit_is_retried_with_backoff_then_succeeds(
    api: tuple[str, Recorded], tmp_path: Path
) -> None:
    url, recorded = api
    recorded.busy[JOB] = 2
    result = fetch_jobs([JOB], tmp_path, api_key=KEY, base_url=url, max_retries=2)
    assert result.jobs[0].events == 8
    assert recorded.requests[:3] == [f"/v1/fine_tuning/jobs/{JOB}"] * 3  # 429, 429, 200


def test_rate_limit_that_outlasts_the_retries(api: tuple[str, Recorded], tmp_path: Path) -> None:
    url, recorded = api
    recorded.busy[JOB] = 10
    with pytest.raises(FetchError, match=r"still rate limited \(429.*after 1 retries") as error:
        fetch_jobs([JOB], tmp_path, api_key=KEY, base_url=url, max_retries=1)
    assert error.value.status_code == 429
    assert len(recorded.requests) == 2


def test_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai → ImportError
    with pytest.raises(FetchError, match=r"pip install 'rftcost\[fetch\]'"):
        fetch_jobs([JOB], tmp_path, api_key=KEY)


@pytest.mark.parametrize("job_id", ["../etc", "ftjob-..", "ftjob-a.", "ftjob-a..b", "f" * 201])
def test_job_ids_that_are_not_ids_are_refused(tmp_path: Path, job_id: str) -> None:
    with pytest.raises(FetchError, match="not a fine-tuning job id"):
        fetch_jobs([job_id], tmp_path, api_key=KEY)
    assert list(tmp_path.iterdir()) == []


def test_an_id_from_the_api_never_names_a_path_out_of_the_folder(tmp_path: Path) -> None:
    """``write_job`` is given the ids a job list returns (``watch --all --save``)."""
    from rftcost.fetch import write_job

    with pytest.raises(FetchError, match="not a fine-tuning job id"):
        write_job(tmp_path / "saved", "../../escaped", {}, [], [])
    assert list(tmp_path.iterdir()) == []
    assert write_job(tmp_path / "saved", "ftjob-a.b:1", {}, [], []).job_id == "ftjob-a.b:1"


# --- the command ------------------------------------------------------------------------------


def test_cli_defaults_are_the_library_defaults() -> None:
    import rftcost.cli.fetch as cli
    import rftcost.fetch as library

    assert (cli.DEFAULT_MAX_RETRIES, cli.DEFAULT_PAGE_SIZE) == (
        library.DEFAULT_MAX_RETRIES,
        library.DEFAULT_PAGE_SIZE,
    )


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    import rftcost.cli.fetch  # noqa: F401  (registers the command)
    from rftcost.cli import main

    monkeypatch.setattr(sys, "argv", ["rftcost", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


def test_cli_fetch(
    api: tuple[str, Recorded],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _ = api
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert run_cli(monkeypatch, "fetch", JOB, "-o", str(tmp_path), "--page-size", "5") == 0
    err = capsys.readouterr().err
    assert f"{JOB}: failed, 8 event(s), 1 checkpoint(s) → {tmp_path / JOB}" in err
    assert f"rftcost import-openai {tmp_path} -o events.jsonl" in err
    assert (tmp_path / JOB / "job.json").is_file()


@pytest.mark.parametrize(
    ("key", "job", "expected"),
    [
        ("sk-wrong", JOB, "401 Unauthorized"),
        (KEY, "ftjob-nope", "no such fine-tuning job (404"),
        (None, JOB, "OPENAI_API_KEY is not set"),
    ],
)
def test_cli_fetch_errors_are_one_line_and_exit_2(
    api: tuple[str, Recorded],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str | None,
    job: str,
    expected: str,
) -> None:
    url, _ = api
    if key is None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    assert run_cli(monkeypatch, "fetch", job, "-o", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err
