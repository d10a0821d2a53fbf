"""Download OpenAI fine-tuning jobs as files that ``import_openai`` reads.

For each job id, ``fetch_jobs`` retrieves the job object, every page of its events
and every page of its checkpoints, and writes them under ``DIR/JOB_ID/``:

- ``job.json``: the ``fine_tuning.job`` object, as the API returns it;
- ``events.json``: one list page ``{"object": "list", "data": [...], "has_more": false}``
  holding all the job's events, newest first (the API's order);
- ``checkpoints.json``: the same for the job's checkpoints.

The files of a job are written only once all of them are downloaded, so a failed
fetch never leaves half a job behind.

It needs the official OpenAI SDK, an optional extra: ``pip install 'rftcost[fetch]'``.
The key comes from ``api_key`` or ``OPENAI_API_KEY``; the base URL from ``base_url``
or ``OPENAI_BASE_URL`` (the SDK reads it), else OpenAI's. Rate limits (429),
timeouts and server errors are retried by the SDK with exponential backoff,
honouring ``Retry-After``, up to ``max_retries`` times. Every failure is a
``FetchError`` whose message is one line saying what to do.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from rftcost.errors import ExportError, RftcostError
from rftcost.events.json_text import holds_surrogate, lone_surrogate, without_surrogates

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PAGE_SIZE",
    "FetchError",
    "FetchResult",
    "FetchedJob",
    "as_sent",
    "explain_error",
    "fetch_jobs",
    "is_job_id",
    "not_the_api",
    "open_client",
    "require_job_id",
    "write_job",
]

DEFAULT_MAX_RETRIES = 5
"""Retries of a request that hit a rate limit, a timeout or a server error."""
DEFAULT_PAGE_SIZE = 100
"""Events or checkpoints per page requested (the API's maximum is 100)."""

_INSTALL_HINT = "pip install 'rftcost[fetch]'"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_MAX_ID_CHARS = 200
"""The longest job id taken: it names a folder (most file systems hold 255 bytes)."""


def require_job_id(job_id: str, error: Callable[..., RftcostError] | None = None) -> None:
    """``error`` (``FetchError`` by default; a class taking a reason and a ``hint``)
    unless ``is_job_id``: before any request, and before an id names a folder."""
    if not is_job_id(job_id):
        raise (error or FetchError)(
            f"{job_id!r} is not a fine-tuning job id", hint="ids look like ftjob-abc123"
        )


def is_job_id(job_id: str) -> bool:
    """Whether ``job_id`` can name a job's folder: letters, digits, ``_ . : -``, a letter
    or digit first, never ``..`` nor a ``.`` at its end, at most 200 characters. An id
    the API returns is checked too: it is a folder name, never a path."""
    return (
        bool(_SAFE_ID.fullmatch(job_id))
        and ".." not in job_id
        and not job_id.endswith(".")
        and len(job_id) <= _MAX_ID_CHARS
    )


class FetchError(ExportError):
    """Fetching from the OpenAI API failed: which job, the HTTP status, and what to do."""

    def __init__(
        self,
        reason: str,
        *,
        job_id: str | None = None,
        status_code: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.job_id = job_id
        self.status_code = status_code
        self.hint = hint
        text = f"{job_id}: {reason}" if job_id else reason
        super().__init__(f"{text}; {hint}" if hint else text)


class FetchedJob(BaseModel):
    """One job written to disk."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    """The job id."""
    folder: str
    """The folder its files were written to (``DIR/JOB_ID``)."""
    status: str | None
    """The job's status when fetched."""
    method: str | None
    """The job's fine-tuning method (``reinforcement`` for RFT)."""
    events: int
    """Events downloaded."""
    checkpoints: int
    """Checkpoints downloaded."""
    problems: tuple[str, ...] = ()
    """Objects of the responses that are not valid text (a lone surrogate escape such as
    ``\\udc80``): written as the API sent them (escaped), each rejected by
    ``import_openai`` as a record of the job, which is then invalid."""


class FetchResult(BaseModel):
    """What ``fetch_jobs`` wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jobs: tuple[FetchedJob, ...]
    """The jobs, in the order asked."""
    out_dir: str
    """The folder holding one folder per job."""
    base_url: str
    """The API the data came from."""


ProgressCallback = Callable[[str, int, int], None]


def fetch_jobs(
    job_ids: Sequence[str],
    out_dir: str | Path,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = 60.0,
    page_size: int = DEFAULT_PAGE_SIZE,
    on_progress: ProgressCallback | None = None,
) -> FetchResult:
    """Download each job, all pages of its events and its checkpoints into ``out_dir/JOB_ID/``.

    Raises ``FetchError`` for a missing SDK or key, a rejected key (401), a job that
    does not exist (404), a rate limit that outlasts the retries (429), and any other
    API or network failure. Jobs fetched before a failure stay written. A job named
    twice is fetched once.
    """
    job_ids = list(dict.fromkeys(job_ids))
    for job_id in job_ids:
        require_job_id(job_id)
    root = Path(out_dir)
    fetched: list[FetchedJob] = []
    with open_client(
        api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
    ) as client:
        import openai

        url = str(client.base_url)
        for done, job_id in enumerate(job_ids):
            try:
                job, events, checkpoints = _download(client, job_id, page_size)
            except openai.OpenAIError as exc:
                raise explain_error(exc, job_id, url, max_retries) from exc
            except (AttributeError, TypeError, ValueError) as exc:  # the SDK on a body not JSON
                raise not_the_api(job_id, url) from exc
            fetched.append(write_job(root, job_id, job, events, checkpoints))
            if on_progress:
                on_progress("fetch", done + 1, len(job_ids))
    return FetchResult(jobs=tuple(fetched), out_dir=str(root), base_url=url)


def open_client(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = 60.0,
) -> Any:
    """An ``openai.OpenAI`` client (a context manager) with the key, base URL and retries.

    Raises ``FetchError`` when the SDK is not installed or no key is given or set.
    """
    try:
        import openai
    except ImportError as exc:
        raise FetchError("the OpenAI SDK is not installed", hint=_INSTALL_HINT) from exc
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise FetchError(
            "OPENAI_API_KEY is not set",
            hint="export a key of the organization and project that ran the jobs",
        )
    return openai.OpenAI(api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout)


def _download(
    client: Any, job_id: str, page_size: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The job and all its events and checkpoints (iterating a page follows ``has_more``)."""
    jobs = client.fine_tuning.jobs
    job = as_sent(jobs.retrieve(job_id))
    events = [as_sent(e) for e in jobs.list_events(job_id, limit=page_size)]
    checkpoints = [as_sent(c) for c in jobs.checkpoints.list(job_id, limit=page_size)]
    return job, events, checkpoints


def as_sent(item: Any) -> dict[str, Any]:
    """An object of the SDK as the API sent it (JSON values).

    The SDK does not validate responses: a field it types ``int`` may hold the API's
    ``"yesterday"``. That value is kept, so that the import rejects its record and says
    why; pydantic's serializer warning about it is not (it went to stderr, as a
    ``UserWarning`` from inside pydantic, beside the import's own clear message).
    """
    return dict(item.to_dict(mode="json", warnings=False))


def write_job(
    root: Path,
    job_id: str,
    job: dict[str, Any],
    events: list[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
) -> FetchedJob:
    """Write one job's ``job.json``, ``events.json`` and ``checkpoints.json`` under
    ``root/job_id/`` (each file replaced whole, never left half written); ``FetchError``
    for an id that cannot name a folder (``is_job_id``), never a path out of ``root``."""
    require_job_id(job_id)
    folder = root / job_id
    folder.mkdir(parents=True, exist_ok=True)
    documents = {
        "job.json": job,
        "events.json": _page(events),
        "checkpoints.json": _page(checkpoints),
    }
    problems: list[str] = []
    for name, document in documents.items():
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if holds_surrogate(text):
            # A lone surrogate escape in a response ("\udc80") parses to a character that
            # no UTF-8 file holds: the document is written with its escapes as the API sent
            # them (ASCII), and the reader rejects each object holding one (json_text).
            text = json.dumps(document, indent=2)
            problems += _not_text(name, document)
        temporary = folder / f".{name}.partial"
        temporary.write_text(text + "\n", "utf-8")
        temporary.replace(folder / name)
    method = job.get("method")
    status = job.get("status")
    kind = method.get("type") if isinstance(method, dict) else None
    return FetchedJob(
        job_id=job_id,
        folder=str(folder),
        status=without_surrogates(status) if isinstance(status, str) else None,
        method=without_surrogates(kind) if isinstance(kind, str) else None,
        events=len(events),
        checkpoints=len(checkpoints),
        problems=tuple(problems),
    )


def _not_text(name: str, document: dict[str, Any]) -> list[str]:
    """The objects of a written document that hold a lone surrogate, each named."""
    if name == "job.json":
        found = [("the job object", lone_surrogate(document))]
    else:
        found = [
            (f"data[{index}] ({_label(item)})", lone_surrogate(item))
            for index, item in enumerate(document["data"])
        ]
    return [
        f"{name}: {what} holds a lone surrogate escape {lone}, not valid text: "
        "import-openai and bill reject it and the job is invalid"
        for what, lone in found
        if lone is not None
    ]


def _label(item: Any) -> str:
    """An object as a problem names it: its type and id."""
    if not isinstance(item, dict):
        return "not an object"
    kind, object_id = item.get("object"), item.get("id")
    return without_surrogates(
        f"{kind if isinstance(kind, str) else 'object'} {object_id!r}"
        if isinstance(object_id, str)
        else f"{kind if isinstance(kind, str) else 'object'} without an id"
    )


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A list page as the API returns one, holding every item."""
    return {
        "object": "list",
        "data": items,
        "has_more": False,
        "first_id": items[0].get("id") if items else None,
        "last_id": items[-1].get("id") if items else None,
    }


def explain_error(exc: Exception, job_id: str, base_url: str, max_retries: int) -> FetchError:
    """An SDK exception → a ``FetchError``: one line that says what happened and what to do."""
    import openai

    status = getattr(exc, "status_code", None)
    detail = _api_message(exc)
    if isinstance(exc, openai.AuthenticationError):
        return FetchError(
            f"the OpenAI API rejected the key (401 Unauthorized{detail})",
            job_id=job_id,
            status_code=status,
            hint="check OPENAI_API_KEY",
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return FetchError(
            f"the key may not read this job (403 Forbidden{detail})",
            job_id=job_id,
            status_code=status,
            hint="use a key of the organization and project that ran it",
        )
    if isinstance(exc, openai.NotFoundError):
        return FetchError(
            f"no such fine-tuning job (404 Not Found{detail})",
            job_id=job_id,
            status_code=status,
            hint="check the id, and that the key belongs to the project that ran the job",
        )
    if isinstance(exc, openai.RateLimitError):
        return FetchError(
            f"still rate limited (429{detail}) after {max_retries} retries with backoff",
            job_id=job_id,
            status_code=status,
            hint="wait a minute and run again, or raise --max-retries",
        )
    if isinstance(exc, openai.APIConnectionError):
        return FetchError(
            f"cannot reach the OpenAI API at {base_url} ({exc})",
            job_id=job_id,
            hint="check the network, or OPENAI_BASE_URL",
        )
    if isinstance(exc, openai.APIStatusError):
        return FetchError(
            f"the OpenAI API answered {status}{detail}", job_id=job_id, status_code=status
        )
    return FetchError(f"the OpenAI SDK failed: {exc}", job_id=job_id)


def not_the_api(job_id: str, base_url: str) -> FetchError:
    """The error for a response the SDK could not read as the API's JSON (an HTML page of
    a proxy or a captive portal, answered with 200)."""
    return FetchError(
        f"{base_url} answered with something other than the OpenAI API's JSON (an HTML page?)",
        job_id=job_id,
        hint="check OPENAI_BASE_URL and any proxy between here and the API",
    )


def _api_message(exc: Exception) -> str:
    """``": <the API's error message>"`` when the response carried one."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message}" if isinstance(message, str) and message else ""
