"""Billing on a Spark cluster with the same kernel (the ``rftcost[spark]`` extra).

Events are read by Spark (Parquet, CSV, JSON Lines or a table), every column is
turned into text exactly as a CSV reader would see it, and rows are grouped by a
hash bucket of ``job_id``. ``groupBy(bucket).applyInPandas`` then runs, in each
bucket, the very functions the local path runs: ``normalize_records`` (validation),
``_deduplicate`` and ``bill_events`` (R1-R15). Each bucket returns its slim ``Bill``,
and the driver combines them with ``combine_bills``: same policy, rules, schema and
cents as every other path.

Run it on a cluster by giving a master or an existing session::

    spark-submit --master yarn my_job.py          # my_job.py: rftcost.bill(paths, engine="spark")
    RFTCOST_SPARK_MASTER=spark://host:7077 rftcost bill s3://bucket/events/ --engine spark
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from rftcost.billing import Bill
from rftcost.errors import RftcostError
from rftcost.policy import Policy

__all__ = ["bill_spark_frame", "bill_with_spark", "java_found", "spark_session"]

_DEFAULT_BUCKETS = 16
_TEXT_TIMESTAMP = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"


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
) -> Bill:
    """Read ``paths`` with Spark (files, folders, or ``table:NAME``) and bill them."""
    from rftcost.buckets import skipped_notes

    spark = session or spark_session()
    skipped: list[Path] = []
    frame = _read(spark, [str(p) for p in paths], skipped)
    count = buckets if isinstance(buckets, int) and buckets > 0 else _DEFAULT_BUCKETS
    result = bill_spark_frame(frame, policy, assume_tz=assume_tz, buckets=count)
    if not skipped or result.log is None:
        return result
    # The files a folder scan left out are noted as on the other paths.
    log = result.log.model_copy(update={"notes": skipped_notes(skipped) + result.log.notes})
    return result.model_copy(update={"log": log})


def bill_spark_frame(
    frame: Any, policy: Policy, *, assume_tz: str | None = None, buckets: int = _DEFAULT_BUCKETS
) -> Bill:
    """Bill a Spark DataFrame of canonical events (``source`` and ``line`` columns if known)."""
    from pyspark.sql import functions as F

    from rftcost.buckets import combine_bills, combine_logs

    text = _as_text(frame)
    if "source" not in text.columns:
        text = text.withColumn("source", F.lit("<spark>"))
    if "line" not in text.columns:
        text = text.withColumn("line", F.monotonically_increasing_id() + 1)
    keyed = text.withColumn("__bucket", F.pmod(F.xxhash64("job_id"), F.lit(buckets)))
    kernel = _bucket_kernel(policy, assume_tz)
    results = keyed.groupBy("__bucket").applyInPandas(kernel, schema="bucket long, payload binary")
    rows = results.toPandas().sort_values("bucket")
    bills = [pickle.loads(payload) for payload in rows["payload"]]
    if not bills:
        from rftcost.billing import bill_events
        from rftcost.events.readers import _empty_events

        return bill_events(_empty_events(), policy)
    return combine_bills(bills, log=combine_logs([b.log for b in bills if b.log is not None]))


def _read(spark: Any, paths: list[str], skipped: list[Path] | None = None) -> Any:
    from pyspark.sql import functions as F

    from rftcost.events.readers import expand_paths

    by_format: dict[str, list[str]] = {}
    frames = []
    for path in paths:
        if path.startswith("table:"):
            frames.append(spark.table(path.removeprefix("table:")))
            continue
        # Local files and folders are listed as the local reader lists them; other
        # locations (s3://, abfss://, hdfs://) are read by Spark as they are.
        local = [str(p) for p in expand_paths([path], skipped)] if Path(path).exists() else [path]
        for name in local:
            by_format.setdefault(_format_of(name), []).append(name)
    for kind, names in by_format.items():
        if kind == "csv":
            frame = spark.read.csv(names, header=True, inferSchema=False)
        elif kind == "json":
            frame = spark.read.json(names, primitivesAsString=True)
        else:
            # Parquet knows each row's place in its file: no window over the whole file.
            frame = spark.read.parquet(*names).select(
                "*",
                F.regexp_replace(F.col("_metadata.file_path"), "^file:(//)?", "").alias("source"),
                (F.col("_metadata.row_index") + 1).alias("line"),
            )
            frames.append(frame)
            continue
        source = F.regexp_replace(F.input_file_name(), "^file:(//)?", "")
        frame = _with_lines(frame.withColumn("source", source), header=kind == "csv")
        frames.append(frame)
    if not frames:
        raise RftcostError(f"no event files in {', '.join(paths)}")
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame, allowMissingColumns=True)
    return result


def _format_of(name: str) -> str:
    lowered = name.lower().rstrip("/")
    if lowered.endswith((".csv", ".csv.gz")):
        return "csv"
    if lowered.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")):
        return "json"
    return "parquet"


def _with_lines(frame: Any, *, header: bool) -> Any:
    """Number records within their file in reading order (CSV: +1 for the header)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("source").orderBy(F.monotonically_increasing_id())
    return frame.withColumn("line", F.row_number().over(order) + (1 if header else 0))


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


def _bucket_kernel(policy: Policy, assume_tz: str | None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The function each Spark worker runs on one bucket: the local kernel, unchanged."""

    def run(records: pd.DataFrame) -> pd.DataFrame:
        from rftcost.billing import bill_events
        from rftcost.buckets import _slim
        from rftcost.events.readers import (
            EventLog,
            _deduplicate,
            _problems_from_rejections,
            normalize_records,
        )

        bucket = int(records["__bucket"].iloc[0])
        raw = records.drop(columns="__bucket").sort_values(["source", "line"], kind="stable")
        events, rejected = normalize_records(
            raw.reset_index(drop=True), source="<spark>", assume_tz=assume_tz, policy=policy
        )
        events, duplicates, conflicts = _deduplicate(events)
        rejected = pd.concat([rejected, conflicts], ignore_index=True)
        log = EventLog(
            events=events.iloc[0:0].copy(),
            rejected=rejected,
            duplicates=duplicates,
            problems=_problems_from_rejections(rejected),
            files=(),
            accepted_count=len(events),
        )
        bill = bill_events(events, policy, reader_problems=log.problems, log=log)
        payload = pickle.dumps(_slim(bill, keep_intervals=False))
        return pd.DataFrame({"bucket": [bucket], "payload": [payload]})

    return run
