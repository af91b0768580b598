"""Extract: schema enforced, unusable rows quarantined with a reason, replays dropped, partitions pruned."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from features.config import SourceConf
from features.constants import QUARANTINE_REASON
from features.errors import one_line
from features.io import fs
from features.io.extract import InputError, partitions_for, read_event_log, read_table
from features.sources import CLICKSTREAM, ORDERS

T = datetime(2026, 10, 31, tzinfo=UTC)
START = datetime(2026, 9, 30, tzinfo=UTC)


def event(eid: str, **fields: object) -> str:
    base = {
        "event_id": eid,
        "customer_id": "C1",
        "session_id": "s1",
        "event_type": "page_view",
        "product_id": None,
        "event_time": "2026-10-15T10:00:00Z",
    }
    base.update(fields)
    return json.dumps(base)


def write_day(root: Path, day: str, lines: list[str], gz: bool = False) -> None:
    folder = root / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(folder / "part-0.json.gz", "wt") as fh:
            fh.write(text)
    else:
        (folder / "part-0.json").write_text(text)


def test_partition_range_covers_lateness() -> None:
    first, last = partitions_for(START, T, lateness_days=1)
    assert (first.isoformat(), last.isoformat()) == ("2026-09-30", "2026-10-31")


def test_quarantine_reasons_dedupe_and_pruning(spark: SparkSession, tmp_path: Path) -> None:
    root = tmp_path / "events"
    write_day(root, "2026-09-29", [event("old", event_time="2026-09-29T10:00:00Z"), "not json"])  # not read
    write_day(
        root,
        "2026-10-15",
        [
            event("ok1"),
            event("ok2", event_time="2026-10-15T12:00:00+02:00", extra_field={"nested": 1}),
            event("dup"),
            event("dup"),  # a replay
            '{"event_id": "broken", "customer_id": ',
            event("nullcust", customer_id=None),
            event("blankcust", customer_id="  "),
            event("badtime", event_time="yesterday"),
            event("nozone", event_time="2026-10-15 10:00:00"),
            event("numtime", event_time=1760000000),
            event("badmonth", event_time="2026-13-15T10:00:00Z"),
            event("kind", event_type="purchase"),
            event(None),  # type: ignore[arg-type]
        ],
        gz=True,
    )
    write_day(root, "2026-10-31", [event("late", event_time="2026-10-30T23:59:59.999Z"), event("dup")])
    write_day(root, "2026-11-01", [event("future", event_time="2026-11-01T01:00:00Z")])  # not read
    conf = SourceConf(path=str(root), format="json", partitioning="dt", lateness_days=1)

    ex = read_event_log(spark, conf, CLICKSTREAM, start=START, end=T)

    assert ex.input_rows == 15
    assert ex.quarantine_reasons == {
        "null customer_id": 2,
        "null event_id": 1,
        "unknown event_type": 1,
        "unparseable event_time": 4,
        "unparseable record": 1,
    }
    assert (ex.accepted_rows, ex.quarantined_rows, ex.duplicate_rows) == (4, 9, 2)
    assert sorted(ex.input_paths) == [str(root / "dt=2026-10-15"), str(root / "dt=2026-10-31")]
    want = spark.createDataFrame(
        [
            ("dup", "C1", "s1", "page_view", None, datetime(2026, 10, 15, 10, 0)),
            ("late", "C1", "s1", "page_view", None, datetime(2026, 10, 30, 23, 59, 59, 999000)),
            ("ok1", "C1", "s1", "page_view", None, datetime(2026, 10, 15, 10, 0)),
            ("ok2", "C1", "s1", "page_view", None, datetime(2026, 10, 15, 10, 0)),  # 12:00+02:00 is 10:00Z
        ],
        "event_id string, customer_id string, session_id string, event_type string, product_id string, "
        "event_time timestamp",
    )
    assert_df_equality(ex.accepted, want, ignore_row_order=True, ignore_nullable=True)
    reasons = {r["event_id"]: r[QUARANTINE_REASON] for r in ex.quarantined.collect()}
    assert reasons["numtime"] == "unparseable event_time"
    assert reasons["blankcust"] == "null customer_id"
    ex.release()


def test_missing_input_path_is_named(spark: SparkSession, tmp_path: Path) -> None:
    conf = SourceConf(path=str(tmp_path / "nowhere"), format="json", partitioning="dt")
    with pytest.raises(InputError, match=r"input path .*nowhere for source clickstream does not exist"):
        read_event_log(spark, conf, CLICKSTREAM, start=START, end=T)


def test_no_partitions_in_range_is_an_empty_read(spark: SparkSession, tmp_path: Path) -> None:
    write_day(tmp_path, "2020-01-01", [event("x")])
    conf = SourceConf(path=str(tmp_path), format="json", partitioning="dt")
    ex = read_event_log(spark, conf, CLICKSTREAM, start=START, end=T)
    assert (ex.input_rows, ex.accepted_rows) == (0, 0)


def test_table_extract_checks_columns_and_quarantines(spark: SparkSession, tmp_path: Path) -> None:
    rows = [
        ("o1", "C1", datetime(2026, 10, 1), "10.00", 1, "completed"),
        ("o2", None, datetime(2026, 10, 1), "10.00", 1, "completed"),
        ("o3", "C1", None, "10.00", 1, "completed"),
        ("o4", "C1", datetime(2026, 10, 1), "10.00", 1, "shipped"),
        ("o1", "C1", datetime(2026, 10, 1), "10.00", 1, "completed"),
    ]
    df = spark.createDataFrame(
        rows,
        "order_id string, customer_id string, order_time timestamp, total_amount string, item_count int, status string",
    ).selectExpr("*", "cast(total_amount as decimal(12,2)) as amount")
    df.drop("total_amount").withColumnRenamed("amount", "total_amount").write.parquet(str(tmp_path / "orders"))
    ex = read_table(spark, SourceConf(path=str(tmp_path / "orders")), ORDERS)
    assert ex.quarantine_reasons == {"null customer_id": 1, "null order_time": 1, "unknown status": 1}
    assert (ex.input_rows, ex.accepted_rows, ex.duplicate_rows) == (5, 1, 1)

    df.drop("status").write.parquet(str(tmp_path / "no_status"))
    with pytest.raises(InputError, match="lacks column\\(s\\) status"):
        read_table(spark, SourceConf(path=str(tmp_path / "no_status")), ORDERS)


def test_a_read_error_names_the_file_spark_was_reading(spark: SparkSession, tmp_path: Path) -> None:
    """Spark's innermost cause rarely names the file; Spark's own outer error does, and the line keeps it."""
    bad = tmp_path / "part-0.json.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(Py4JJavaError) as failure:
        spark.read.text(str(bad)).collect()
    assert re.match(rf"cannot read file:(//)?{re.escape(str(bad))}: java\.io\.IOException: ", one_line(failure.value))


@pytest.mark.parametrize(
    ("cause", "denied"),
    [
        ("java.nio.file.AccessDeniedException: Permission denied", True),
        ("java.io.FileNotFoundException: /data/part-0.parquet (Permission denied)", True),
        ("org.apache.hadoop.security.AccessControlException: Permission denied: user=hadoop, access=READ", True),
        (
            "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403)",
            True,
        ),
        ("software.amazon.awssdk.services.s3.model.S3Exception: Access Denied (Service: S3, Status Code: 403)", True),
        ("java.io.EOFException: Unexpected end of input stream", False),
        ("java.lang.RuntimeException: part-0.parquet is not a Parquet file", False),
    ],
)
def test_a_denied_read_is_told_from_a_corrupt_file(cause: str, denied: bool) -> None:
    """A denied file fails the run whatever on_corrupt_file says: its rows are fine, its permissions are not."""
    assert fs.access_denied(cause) is denied
