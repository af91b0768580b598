"""Inputs that cannot be read, or read differently file by file (issue 10, item 3).

An unreadable directory and a misnamed ``dt=`` partition stop the run with one line naming the
path and the cause. A table extract whose files disagree in type is read file by file: each
value is conformed to the declared type or its row is quarantined with a reason, and a file that
is not Parquet at all follows the source's corrupt-file policy. The job does not fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from features.config import SourceConf
from features.constants import INPUT_FILE, QUARANTINE_REASON
from features.errors import one_line
from features.io import fs
from features.io.extract import InputError, read_event_log, read_table
from features.sources import CLICKSTREAM, ORDERS

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 10, 31, tzinfo=UTC)
START = datetime(2026, 9, 30, tzinfo=UTC)
ORDERS_DDL = (
    "order_id string, customer_id string, order_time timestamp, total_amount decimal(12,2), "
    "item_count int, status string"
)


def _event(eid: str, day: str) -> str:
    return json.dumps(
        {
            "event_id": eid,
            "customer_id": "C1",
            "session_id": "s1",
            "event_type": "page_view",
            "product_id": None,
            "event_time": f"{day}T10:00:00Z",
        }
    )


def _write_day(root: Path, name: str, *eids: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    day = name.removeprefix("dt=")
    (folder / "part-0.json").write_text("".join(_event(e, day) + "\n" for e in eids))
    return folder


def _parquet_file(spark: SparkSession, rows: list[tuple[Any, ...]], ddl: str, dest: Path) -> None:
    """One Parquet file at ``dest`` holding ``rows`` with the physical types ``ddl`` says."""
    staging = dest.parent / f".staging-{dest.name}"
    spark.createDataFrame(rows, ddl).coalesce(1).write.parquet(str(staging))
    (part,) = staging.glob("part-*.parquet")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part.rename(dest)
    shutil.rmtree(staging)


class _DenyingFileSystem:
    """Hadoop's FileSystem, except that listing ``denied`` throws what Hadoop's local filesystem
    throws there for a user without read permission (FileUtil.list: AccessDeniedException)."""

    def __init__(self, spark: SparkSession, real: Any, denied: Path) -> None:
        self._jvm = spark.sparkContext._jvm
        self._real = real
        self._denied = denied

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _check(self, path: Any) -> None:
        if Path(str(path.toUri().getPath())) == self._denied:
            error = self._jvm.java.nio.file.AccessDeniedException(str(self._denied), None, "Permission denied")
            self._jvm.org.apache.commons.lang3.exception.ExceptionUtils.rethrow(error)

    def listStatus(self, path: Any) -> Any:  # noqa: N802 (Hadoop's name)
        self._check(path)
        return self._real.listStatus(path)

    def listFiles(self, path: Any, recursive: bool) -> Any:  # noqa: N802
        self._check(path)
        return self._real.listFiles(path, recursive)

    def listLocatedStatus(self, path: Any) -> Any:  # noqa: N802
        self._check(path)
        return self._real.listLocatedStatus(path)


@pytest.fixture
def make_unreadable(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """``chmod 000`` a directory. Under root (CI, containers) the kernel ignores that, so the
    denial Hadoop would raise for any other user is raised at the Hadoop FileSystem instead."""
    denied: list[Path] = []

    def deny(path: Path) -> None:
        path.chmod(0)
        denied.append(path)
        if os.access(path, os.R_OK):
            real = fs.filesystem

            def filesystem(spark: SparkSession, where: str) -> tuple[Any, Any]:
                hadoop_fs, hadoop_path = real(spark, where)
                return _DenyingFileSystem(spark, hadoop_fs, path), hadoop_path

            monkeypatch.setattr(fs, "filesystem", filesystem)

    yield deny
    for path in denied:
        path.chmod(0o755)


def test_unreadable_partition_fails_in_one_line_naming_it(
    spark: SparkSession, tmp_path: Path, make_unreadable: Callable[[Path], None]
) -> None:
    root = tmp_path / "events"
    _write_day(root, "dt=2026-10-29", "e1")
    denied = _write_day(root, "dt=2026-10-30", "e2")
    make_unreadable(denied)
    conf = SourceConf(path=str(root), format="json", partitioning="dt")

    with pytest.raises(InputError) as failure:
        read_event_log(spark, conf, CLICKSTREAM, start=START, end=T)

    assert one_line(failure.value) == (
        f"clickstream: cannot list {denied}: java.nio.file.AccessDeniedException: Permission denied"
    )


def test_unreadable_table_directory_fails_in_one_line_naming_it(
    spark: SparkSession, tmp_path: Path, make_unreadable: Callable[[Path], None]
) -> None:
    folder = tmp_path / "orders"
    _parquet_file(spark, [("o1", "C1", T, Decimal("1.00"), 1, "completed")], ORDERS_DDL, folder / "part-0.parquet")
    make_unreadable(folder)

    with pytest.raises(InputError) as failure:
        read_table(spark, SourceConf(path=str(folder)), ORDERS)

    assert one_line(failure.value) == (
        f"orders: cannot list {folder}: java.nio.file.AccessDeniedException: Permission denied"
    )


@pytest.mark.slow
def test_the_job_exits_1_with_one_line_naming_an_unreadable_partition(tmp_path: Path) -> None:
    """A real EACCES, end to end: ``feature-pipeline build`` as a user runs it. Root reads any
    directory, so under root the job runs without the capabilities that bypass file modes
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH); any other user runs it as it is."""
    root = tmp_path / "events"
    _write_day(root, "dt=2026-10-29", "e1")
    denied = _write_day(root, "dt=2026-10-30", "e2")
    denied.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a directory unreadable")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "ls", str(denied)], capture_output=True, check=False, timeout=30)
    if probe.returncode == 0:
        pytest.skip("this user can list a mode-000 directory")
    out = tmp_path / "out"
    command = [
        str(Path(sys.executable).with_name("feature-pipeline")),
        "build",
        "--conf",
        "conf/local.yaml",
        "--group",
        "customer_activity",
        "--as-of",
        "2026-10-31T00:00:00Z",
        *("--set", f"sources.clickstream.path={root}"),
        *("--set", "online_store.enabled=false"),
        *("--set", f"offline_store.root={out / 'offline'}"),
        *("--set", f"quarantine.root={out / 'quarantine'}"),
        *("--set", f"reports.root={out / 'reports'}"),
    ]
    try:
        result = subprocess.run([*prefix, *command], check=False, cwd=ROOT, capture_output=True, text=True, timeout=900)
    finally:
        denied.chmod(0o755)

    line = f"clickstream: cannot list {denied}: java.nio.file.AccessDeniedException: Permission denied"
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"error: {line}" in result.stderr.splitlines()
    (report,) = (out / "reports" / "build_features").glob("*.json")
    assert {k: v for k, v in json.loads(report.read_text()).items() if k in ("status", "error")} == {
        "status": "failed",
        "error": line,
    }


@pytest.mark.parametrize("name", ["dt=2026-02-30", "dt=2026-13-01", "dt=2026-10-5", "dt=2026-10-30.bak"])
def test_a_dt_directory_that_names_no_date_fails_naming_it(spark: SparkSession, tmp_path: Path, name: str) -> None:
    """Its events would silently never be read: the run stops until it is renamed or removed."""
    root = tmp_path / "events"
    _write_day(root, "dt=2026-10-30", "e1")
    bad = root / name
    bad.mkdir()
    (bad / "part-0.json").write_text(_event("e2", "2026-10-30") + "\n")
    conf = SourceConf(path=str(root), format="json", partitioning="dt")

    with pytest.raises(InputError) as failure:
        read_event_log(spark, conf, CLICKSTREAM, start=START, end=T)

    assert one_line(failure.value) == (
        f"clickstream: {bad} is not a dt=YYYY-MM-DD partition of a real date; rename or remove it "
        "(its events would never be read)"
    )


@pytest.fixture
def mixed_orders(spark: SparkSession, tmp_path: Path) -> Path:
    """An orders export whose files disagree in type, and one file that is not Parquet at all."""
    folder = tmp_path / "orders"
    at = datetime(2026, 10, 3, 10, tzinfo=UTC)
    _parquet_file(
        spark,
        [
            ("a1", "C1", datetime(2026, 10, 1, 10, tzinfo=UTC), Decimal("10.00"), 1, "completed"),
            ("a2", "C2", datetime(2026, 10, 2, 10, tzinfo=UTC), Decimal("20.50"), 2, "cancelled"),
        ],
        ORDERS_DDL,
        folder / "part-0.parquet",
    )
    _parquet_file(  # customer_id BIGINT, total_amount DOUBLE
        spark,
        [
            ("b1", 42, at, 12.5, 1, "completed"),
            ("b2", 43, at, float("nan"), 1, "completed"),
            ("b3", None, at, 5.0, 1, "completed"),
            ("b4", 44, at, 1e15, 1, "completed"),
            ("b5", 45, at, 19.99, 3, "refunded"),
        ],
        "order_id string, customer_id bigint, order_time timestamp, total_amount double, item_count int, status string",
        folder / "part-1.parquet",
    )
    _parquet_file(  # everything as text
        spark,
        [
            ("c1", "C3", "2026-10-05T10:00:00Z", "7.25", "2", "completed"),
            ("c2", "C3", "2026-10-05 10:00:00", "7.25", "2", "completed"),
            ("c3", "C3", "2026-10-05T10:00:00Z", "7.25", "two", "completed"),
        ],
        "order_id string, customer_id string, order_time string, total_amount string, item_count string, status string",
        folder / "part-2.parquet",
    )
    (folder / "part-3.parquet").write_bytes(b"PAR1 not parquet at all")
    return folder


def test_table_files_of_other_types_are_conformed_or_quarantined_per_row(
    spark: SparkSession, mixed_orders: Path
) -> None:
    ex = read_table(spark, SourceConf(path=str(mixed_orders), on_corrupt_file="quarantine"), ORDERS)

    # 2 + 5 + 3 rows, and the unreadable file as one quarantined input.
    assert (ex.input_rows, ex.accepted_rows, ex.quarantined_rows, ex.duplicate_rows) == (11, 5, 6, 0)
    assert ex.quarantine_reasons == {
        "corrupt file": 1,
        "null customer_id": 1,
        "out of range total_amount": 2,
        "unparseable item_count": 1,
        "unparseable order_time": 1,
    }
    want = spark.createDataFrame(
        [
            ("a1", "C1", datetime(2026, 10, 1, 10), Decimal("10.00"), 1, "completed"),
            ("a2", "C2", datetime(2026, 10, 2, 10), Decimal("20.50"), 2, "cancelled"),
            ("b1", "42", datetime(2026, 10, 3, 10), Decimal("12.50"), 1, "completed"),
            ("b5", "45", datetime(2026, 10, 3, 10), Decimal("19.99"), 3, "refunded"),
            ("c1", "C3", datetime(2026, 10, 5, 10), Decimal("7.25"), 2, "completed"),
        ],
        ORDERS_DDL,
    )
    assert_df_equality(ex.accepted, want, ignore_row_order=True, ignore_nullable=True)
    quarantined = {
        (r["order_id"], r[QUARANTINE_REASON], r[INPUT_FILE].rsplit("/", 1)[-1]) for r in ex.quarantined.collect()
    }
    assert quarantined == {
        ("b2", "out of range total_amount", "part-1.parquet"),
        ("b3", "null customer_id", "part-1.parquet"),
        ("b4", "out of range total_amount", "part-1.parquet"),
        ("c2", "unparseable order_time", "part-2.parquet"),
        ("c3", "unparseable item_count", "part-2.parquet"),
        (None, "corrupt file", "part-3.parquet"),
    }
    ex.release()


def test_a_corrupt_table_file_fails_naming_it_by_default(spark: SparkSession, mixed_orders: Path) -> None:
    with pytest.raises(InputError) as failure:
        read_table(spark, SourceConf(path=str(mixed_orders)), ORDERS)

    message = one_line(failure.value)
    assert message.startswith(f"orders: cannot read file:{mixed_orders / 'part-3.parquet'}: ")
    assert message.endswith(
        "(set sources.orders.on_corrupt_file: quarantine to skip such files and record them as quarantined)"
    )
