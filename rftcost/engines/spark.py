"""Billing on a Spark cluster with the same kernel (the ``rftcost[spark]`` extra).

Every input is read by the functions the local reader uses, so that the same records
are accepted and rejected, with the same reasons and lines, on every path:

- Parquet files and tables are read by Spark, every column turned into text exactly
  as a CSV reader would see it, and validated batch by batch by ``normalize_records``
  (vectorized; no per-row Python);
- JSON Lines and CSV files are parsed, one task per file, by ``read_file_chunks``
  (byte-order marks, rows longer than the header, truncated or non-UTF-8 lines,
  names that are not text: as in memory), not by Spark's own text readers;
- OpenAI exports are imported together on the driver, as ``read_events`` imports them
  (a job's snapshots and pages may be spread over several files; the import's
  job-level problems make a job's amount unknown).

Each reading task splits its validated events (and rejected records, and problems)
by a hash bucket of ``job_id`` (``buckets.bucket_of``, the same hash on every path)
into pickled pieces; ``groupBy(bucket).applyInPandas`` then runs, in each bucket,
the very functions the local path runs: ``deduplicate`` and ``bill_events``
(R1-R15). Each bucket returns its slim ``Bill``, and the driver combines them with
``combine_bills``: same policy, rules, schema and cents as every other path.

Run it on a cluster by giving a master or an existing session::

    spark-submit --master yarn my_job.py          # my_job.py: rftcost.bill(paths, engine="spark")
    RFTCOST_SPARK_MASTER=spark://host:7077 rftcost bill s3://bucket/events/ --engine spark
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from rftcost.billing import Bill
from rftcost.errors import RftcostError
from rftcost.policy import Policy

__all__ = ["bill_spark_frame", "bill_with_spark", "java_found", "spark_session"]

_DEFAULT_BUCKETS = 16
_TEXT_TIMESTAMP = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
_PIECES = "bucket long, payload binary"
_ERROR = -1
"""The bucket of a piece that carries an error (a file that cannot be read at all)."""
_CHUNK_ROWS = 250_000
"""Records a reading task validates at a time (and splits into pieces)."""
_LAST = 1 << 62
"""Reading rank of records whose file the driver did not list (tables, remote folders)."""


def _require_pyspark() -> Any:
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise RftcostError("the Spark engine needs pyspark: pip install 'rftcost[spark]'") from exc
    return SparkSession


def java_found() -> bool:
    """Whether a Java runtime is there for pyspark to start (``JAVA_HOME`` or ``java``)."""
    import shutil

    home = os.environ.get("JAVA_HOME")
    if home:
        return (Path(home) / "bin" / "java").exists()
    return shutil.which("java") is not None


def spark_session(master: str | None = None) -> Any:
    """The active Spark session, or a new one (``RFTCOST_SPARK_MASTER``, default ``local[2]``)."""
    session_class = _require_pyspark()
    # Local workers run the interpreter that has rftcost installed (a cluster sets its own).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = session_class.getActiveSession()
    if active is not None and master is None:
        return active
    if not java_found():
        # Without this, pyspark fails deep in its gateway launcher with a Java error.
        raise RftcostError(
            "the Spark engine needs Java 17 (a JRE): no java on PATH and JAVA_HOME is not set;"
            " install one (e.g. apt-get install openjdk-17-jre-headless) or use --engine pandas"
        )
    return (
        session_class.builder.master(master or os.environ.get("RFTCOST_SPARK_MASTER", "local[2]"))
        .appName("rftcost")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


def bill_with_spark(
    paths: Sequence[str | Path],
    policy: Policy,
    *,
    assume_tz: str | None = None,
    buckets: int | Literal["auto"] | None = None,
    session: Any = None,
    follow_links: bool = False,
) -> Bill:
    """Read ``paths`` with Spark (files, folders, or ``table:NAME``) and bill them."""
    from rftcost.events.readers import check_zone

    check_zone(assume_tz)
    spark = session or spark_session()
    count = buckets if isinstance(buckets, int) and buckets > 0 else _DEFAULT_BUCKETS
    reading = _read(
        spark, [str(p) for p in paths], policy, assume_tz, count, follow_links=follow_links
    )
    return _bill_pieces(
        reading.pieces,
        policy,
        files=reading.files,
        notes=reading.notes,
        problems=reading.problems,
    )


def bill_spark_frame(
    frame: Any, policy: Policy, *, assume_tz: str | None = None, buckets: int = _DEFAULT_BUCKETS
) -> Bill:
    """Bill a Spark DataFrame of canonical events (``source`` and ``line`` columns if known)."""
    from rftcost.events.readers import check_zone

    check_zone(assume_tz)
    return _bill_pieces(_frame_pieces(frame, policy, assume_tz, buckets, {}), policy)


class _Reading(NamedTuple):
    pieces: Any
    """Spark DataFrame of (bucket, payload) pieces."""
    files: tuple[str, ...]
    notes: tuple[str, ...]
    problems: pd.DataFrame | None
    """Jobs an OpenAI export cannot bill (job_id, problem)."""


def _bill_pieces(
    pieces: Any,
    policy: Policy,
    *,
    files: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
    problems: pd.DataFrame | None = None,
) -> Bill:
    """Bill each bucket's pieces with the kernel; combine the buckets' bills."""
    from rftcost.buckets import combine_bills, combine_logs

    results = pieces.groupBy("bucket").applyInPandas(_bucket_kernel(policy), schema=_PIECES)
    rows = results.toPandas().sort_values("bucket", kind="stable")
    errors = [pickle.loads(payload) for payload in rows.loc[rows["bucket"] == _ERROR, "payload"]]
    if errors:
        # The first file in reading order that cannot be read, as the local reader says.
        raise min(errors, key=lambda error: error[0])[1]
    bills = [pickle.loads(payload) for payload in rows["payload"]]
    logs = [b.log for b in bills if b.log is not None]
    if not bills:
        from rftcost.billing import bill_events
        from rftcost.events.readers import empty_events

        bills = [bill_events(empty_events(), policy)]
    log = combine_logs(logs, files=files, notes=notes, problems=problems)
    return combine_bills(bills, log=log)


def _read(
    spark: Any,
    paths: list[str],
    policy: Policy,
    assume_tz: str | None,
    buckets: int,
    *,
    follow_links: bool = False,
) -> _Reading:
    from pyspark.sql import functions as F

    from rftcost.events.readers import (
        expand_paths,
        is_openai_export,
        parquet_file,
        read_openai_exports,
        skip_notes,
    )

    skipped: list[Path] = []
    links: list[Path] = []
    listed: list[Path] = []
    tables: list[str] = []
    remote: list[str] = []
    for path in paths:
        if path.startswith("table:"):
            tables.append(path.removeprefix("table:"))
        elif Path(path).exists():
            # Local files and folders are listed as the local reader lists them.
            listed.extend(expand_paths([path], skipped, follow_links=follow_links, links=links))
        else:
            remote.append(path)  # s3://, abfss://, hdfs://: listed by Spark
    exports = [f for f in listed if is_openai_export(f)]
    files = [f for f in listed if f not in set(exports)]
    # Reading order, as in memory: the exports first, then each file as listed.
    ranks = {str(f): rank for rank, f in enumerate(files, start=1)}
    pieces: list[Any] = []
    notes: tuple[str, ...] = ()
    problems = None
    if exports:
        events, bad, notes, problems = read_openai_exports(
            exports, assume_tz=assume_tz, policy=policy
        )
        local = _split(events, bad, problems, rank=0, buckets=buckets)
        listing = pd.DataFrame(local, columns=["bucket", "payload"])
        pieces.append(spark.createDataFrame(listing, schema=_PIECES))
    parquet = [str(f) for f in files if _is_parquet(str(f))]
    for name in parquet:
        parquet_file(Path(name))  # a corrupt local file names itself (its footer only read)
    # A remote location is Parquet unless it names a text file (a folder: Parquet parts).
    parquet += [p for p in remote if not _is_text(p)]
    if parquet:
        # Parquet knows each row's place in its file: no window over the whole file.
        frame = _loaded(lambda: spark.read.parquet(*parquet), parquet).select(
            "*",
            F.col("_metadata.file_path").alias("source"),
            (F.col("_metadata.row_index") + 1).alias("line"),
        )
        names = {os.path.abspath(name): name for name in parquet if Path(name).exists()}
        pieces.append(_frame_pieces(frame, policy, assume_tz, buckets, ranks, names))
    for table in tables:
        pieces.append(_frame_pieces(spark.table(table), policy, assume_tz, buckets, ranks))
    text = [(ranks[str(f)], str(f)) for f in files if not _is_parquet(str(f))]
    if text:
        listing = pd.DataFrame(text, columns=["rank", "name"]).assign(content=None)
        frame = spark.createDataFrame(listing, schema="rank long, name string, content binary")
        pieces.append(_text_pieces(frame.repartition(len(text)), policy, assume_tz, buckets))
    remote_text = [p for p in remote if _is_text(p)]
    if remote_text:
        files_read = _loaded(lambda: spark.read.format("binaryFile").load(remote_text), remote_text)
        frame = files_read.select(
            F.lit(_LAST).alias("rank"), F.col("path").alias("name"), "content"
        )
        pieces.append(_text_pieces(frame, policy, assume_tz, buckets))
    if not pieces:
        raise RftcostError(f"no event files in {', '.join(paths)}")
    result = pieces[0]
    for frame in pieces[1:]:
        result = result.unionByName(frame)
    return _Reading(
        pieces=result,
        files=tuple(str(f) for f in listed),
        notes=notes + skip_notes(skipped, links),
        problems=problems,
    )


def _loaded(load: Callable[[], Any], names: list[str]) -> Any:
    """``load()``; a location Spark cannot list or read is one error naming it, not a
    Java stack trace."""
    from rftcost.errors import UnreadableFileError
    from rftcost.events.readers import message_line

    try:
        return load()
    except Exception as exc:  # pyspark's AnalysisException and kin (Py4J errors)
        raise UnreadableFileError(
            f"Spark cannot read it: {message_line(exc)}", path=", ".join(names)
        ) from exc


def _is_parquet(name: str) -> bool:
    return name.lower().rstrip("/").endswith(".parquet")


def _is_text(name: str) -> bool:
    """A JSON Lines, CSV or OpenAI export file by its name."""
    from rftcost.events.readers import LOG_SUFFIXES

    lowered = name.lower().rstrip("/")
    return lowered.endswith((*LOG_SUFFIXES, ".json")) and not _is_parquet(lowered)


def _split(
    events: pd.DataFrame,
    rejected: pd.DataFrame,
    problems: pd.DataFrame | None,
    *,
    rank: int | np.ndarray | None,
    buckets: int,
    rejected_rank: int | np.ndarray | None = None,
) -> list[tuple[int, bytes]]:
    """Validated events, rejected records and job problems as one pickled piece per
    bucket of their job (a record of no job: bucket 0). ``rank`` orders the pieces'
    records in the kernel as the local reader reads them (file by file)."""
    from rftcost.buckets import bucket_of, no_problems

    problems = no_problems() if problems is None else problems
    if rank is not None:
        events = events.assign(__rank=rank)
    if rejected_rank is not None or rank is not None:
        rejected = rejected.assign(__rank=rejected_rank if rejected_rank is not None else rank)

    def of(ids: pd.Series) -> np.ndarray:
        known = ids.notna().to_numpy()
        found = np.zeros(len(ids), dtype="int64")
        if known.any():
            found[known] = bucket_of(ids[known].astype(str), buckets)
        return found

    event_bucket = bucket_of(events["job_id"], buckets) if len(events) else of(events["job_id"])
    rejected_bucket, problem_bucket = of(rejected["job_id"]), of(problems["job_id"])
    numbers = sorted(
        set(event_bucket.tolist()) | set(rejected_bucket.tolist()) | set(problem_bucket.tolist())
    )
    return [
        (
            number,
            pickle.dumps(
                (
                    events[event_bucket == number],
                    rejected[rejected_bucket == number],
                    problems[problem_bucket == number],
                ),
                protocol=pickle.HIGHEST_PROTOCOL,
            ),
        )
        for number in numbers
    ]


def _frame_pieces(
    frame: Any,
    policy: Policy,
    assume_tz: str | None,
    buckets: int,
    ranks: dict[str, int],
    names: dict[str, str] | None = None,
) -> Any:
    """A Spark frame of canonical columns → validated pieces (batch by batch, vectorized)."""
    from pyspark.sql import functions as F

    text = _as_text(frame)
    if "source" not in text.columns:
        text = text.withColumn("source", F.lit("<spark>"))
    if "line" not in text.columns:
        text = text.withColumn("line", F.monotonically_increasing_id() + 1)
    return text.mapInPandas(
        _normalizer(policy, assume_tz, buckets, ranks, names or {}), schema=_PIECES
    )


def _normalizer(
    policy: Policy,
    assume_tz: str | None,
    buckets: int,
    ranks: dict[str, int],
    names: dict[str, str],
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function each Spark task runs on its batches of text records: the local
    validation (``normalize_records``), unchanged, then the pieces per bucket."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Arrow batches are small (10,000 rows): validated a chunk of them at a time,
        # so that validation's fixed cost is paid per chunk, not per batch.
        held: list[pd.DataFrame] = []
        rows = 0
        for raw in batches:
            held.append(raw)
            rows += len(raw)
            if rows >= _CHUNK_ROWS:
                yield _normalized_pieces(pd.concat(held, ignore_index=True))
                held, rows = [], 0
        if held:
            yield _normalized_pieces(pd.concat(held, ignore_index=True))

    def _normalized_pieces(raw: pd.DataFrame) -> pd.DataFrame:
        from urllib.parse import unquote

        from rftcost.events.readers import normalize_records

        # Spark names a file by its URI: the local reader by the name it was given.
        source = raw["source"].astype("category")
        given = [
            names.get(path, path)
            for path in (
                unquote(str(c).removeprefix("file://").removeprefix("file:"))
                for c in source.cat.categories
            )
        ]
        rank_of = np.asarray([ranks.get(n, _LAST) for n in given] + [_LAST], dtype="int64")
        if len(set(given)) == len(given):
            source = source.cat.rename_categories(given)
        raw = raw.assign(source=source.astype(object))
        events, rejected = normalize_records(
            raw, source="<spark>", assume_tz=assume_tz, policy=policy
        )
        pieces = _split(
            events,
            rejected,
            None,
            rank=_ranks_of(events["source"], given, rank_of),
            rejected_rank=_ranks_of(rejected["source"], given, rank_of),
            buckets=buckets,
        )
        return pd.DataFrame(pieces, columns=["bucket", "payload"])

    return run


def _ranks_of(sources: pd.Series, given: list[str], rank_of: np.ndarray) -> np.ndarray:
    """Each record's reading rank from its source's (vectorized over the categories)."""
    codes = pd.Categorical(sources.astype(str), categories=pd.Index(given).unique()).codes
    return np.asarray(rank_of[codes], dtype="int64")


def _text_pieces(frame: Any, policy: Policy, assume_tz: str | None, buckets: int) -> Any:
    """A frame of text files (rank, name, content) → pieces, one task per file."""
    return frame.mapInPandas(_text_reader(policy, assume_tz, buckets), schema=_PIECES)


def _text_reader(
    policy: Policy, assume_tz: str | None, buckets: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function each Spark task runs on text files (JSON Lines, CSV): the local
    reader's own parsing and validation (``read_file_chunks``), file by file."""

    def run(files: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for listing in files:
            for rank, name, content in listing.itertuples(index=False):  # one row per file
                yield from _read_text_file(
                    int(rank), str(name), content, policy, assume_tz, buckets
                )

    return run


def _read_text_file(
    rank: int,
    name: str,
    content: bytes | None,
    policy: Policy,
    assume_tz: str | None,
    buckets: int,
) -> Iterator[pd.DataFrame]:
    import tempfile

    from rftcost.events.readers import read_file_chunks

    with tempfile.TemporaryDirectory(prefix="rftcost-spark-") as folder:
        if content is None:
            path = Path(name)
        else:
            # A remote file (s3://…) arrives as bytes: read under its own file name.
            path = Path(folder) / Path(name).name
            path.write_bytes(content)
        try:
            for events, rejected in read_file_chunks(
                path, assume_tz=assume_tz, policy=policy, chunk_rows=_CHUNK_ROWS
            ):
                if content is not None:
                    events = events.assign(source=name)
                    rejected = rejected.assign(source=name)
                pieces = _split(events, rejected, None, rank=rank, buckets=buckets)
                yield pd.DataFrame(pieces, columns=["bucket", "payload"])
        except RftcostError as error:
            payload = pickle.dumps((rank, _renamed(error, str(path), name)))
            yield pd.DataFrame({"bucket": [_ERROR], "payload": [payload]})


def _renamed(error: RftcostError, path: str, name: str) -> RftcostError:
    """``error`` naming ``name`` where it named the temporary copy ``path``."""
    if path == name:
        return error
    copy: RftcostError = pickle.loads(pickle.dumps(error))
    copy.args = tuple(a.replace(path, name) if isinstance(a, str) else a for a in copy.args)
    for key, value in vars(copy).items():
        if isinstance(value, str):
            setattr(copy, key, value.replace(path, name))
    return copy


def _as_text(frame: Any) -> Any:
    """Every column as text, timestamps as ISO 8601 with their UTC offset."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampNTZType, TimestampType

    columns = []
    for field in frame.schema.fields:
        column = F.col(field.name)
        if field.name == "line":
            columns.append(column.cast("long").alias("line"))
        elif isinstance(field.dataType, TimestampType):
            columns.append(F.date_format(column, _TEXT_TIMESTAMP).alias(field.name))
        elif isinstance(field.dataType, TimestampNTZType):
            # A timestamp without a zone stays without one: the reader asks for --assume-tz.
            columns.append(F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS").alias(field.name))
        else:
            columns.append(column.cast("string").alias(field.name))
    return frame.select(*columns)


def _bucket_kernel(policy: Policy) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The function each Spark worker runs on one bucket's pieces: the local kernel."""

    def run(pieces: pd.DataFrame) -> pd.DataFrame:
        from rftcost.billing import bill_events
        from rftcost.buckets import no_problems, slim_bill
        from rftcost.events.readers import (
            EventLog,
            concat_events,
            deduplicate,
            empty_rejected,
            problems_from_rejections,
        )

        bucket = int(pieces["bucket"].iloc[0])
        if bucket == _ERROR:
            return pieces[["bucket", "payload"]]
        parts = [pickle.loads(payload) for payload in pieces["payload"]]
        events = concat_events([part[0] for part in parts])
        # File by file in reading order, then line by line: the local reader's order,
        # which decides which of two duplicates is kept.
        events = (
            events.assign(__source=events["source"].astype(str))
            .sort_values(["__rank", "__source", "line"], kind="stable")
            .drop(columns=["__rank", "__source"])
            .reset_index(drop=True)
        )
        rejected = pd.concat([empty_rejected(), *(part[1] for part in parts)], ignore_index=True)
        if "__rank" in rejected.columns:
            # As the events: a file split over several tasks comes back in fetch order.
            rejected = (
                rejected.assign(__source=rejected["source"].astype(str))
                .sort_values(["__rank", "__source", "line"], kind="stable")
                .drop(columns=["__rank", "__source"])
            )
        job_problems = pd.concat([no_problems(), *(part[2] for part in parts)], ignore_index=True)
        events, duplicates, conflicts = deduplicate(events)
        rejected = pd.concat([rejected.reset_index(drop=True), conflicts], ignore_index=True)
        log = EventLog(
            events=events.iloc[0:0].copy(),
            rejected=rejected,
            duplicates=duplicates,
            # As in memory: rejected records, then the reasons an export gives for a job.
            problems=pd.concat(
                [problems_from_rejections(rejected), job_problems], ignore_index=True
            ),
            files=(),
            accepted_count=len(events),
        )
        bill = bill_events(events, policy, reader_problems=log.problems, log=log)
        payload = pickle.dumps(slim_bill(bill, keep_intervals=False))
        return pd.DataFrame({"bucket": [bucket], "payload": [payload]})

    return run
