"""``feature-pipeline backfill`` end to end on the sample data: the build job's snapshots, reruns,
the run report, --push-latest against the local runtime, one-line refusals, and the console command
as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chispa import assert_df_equality
from featurestore_local import LocalFeatureStore
from pyspark.sql import DataFrame, SparkSession

from features.cli import main
from features.online.client import get_record
from tests.test_jobs import overrides

ROOT = Path(__file__).resolve().parents[2]
CONF = ["--conf", str(ROOT / "conf/local.yaml")]
T1 = "2026-10-31T00:00:00Z"
METADATA = ["write_time", "api_invocation_time", "is_deleted"]
#: GX costs seconds per snapshot; the tests that are not about the gate skip it.
NO_GATE = ["--set", "validation.enabled=false"]


@pytest.fixture(autouse=True)
def _restore_sql_settings(spark: SparkSession) -> Iterator[None]:
    """The command's session is the suite's one; it sets shuffle partitions from the conf."""
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    yield
    spark.conf.set("spark.sql.shuffle.partitions", saved or "2")


def _report(out: Path, job: str = "backfill") -> dict:  # type: ignore[type-arg]
    (path,) = sorted((out / "reports" / job).glob("*.json"), key=lambda p: p.stat().st_mtime)[-1:]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _store(spark: SparkSession, out: Path, group: str) -> DataFrame:
    return spark.read.parquet(str(out / "store" / group / "data"))


def test_a_range_of_one_snapshot_equals_the_build_job(spark: SparkSession, sample: Path, tmp_path: Path) -> None:
    for group in ("customer_activity", "customer_orders", "customer_profile"):
        built, filled = tmp_path / f"build-{group}", tmp_path / f"backfill-{group}"
        base = [*CONF, "--group", group, "--set", "online_store.enabled=false", *NO_GATE]
        assert main(["build", *base, "--as-of", T1, *overrides(sample, built)]) == 0
        args = ["backfill", *base, "--start", T1, "--end", T1, "--step", "1d", *overrides(sample, filled)]
        assert main(args) == 0
        want = _store(spark, built, group).drop(*METADATA)
        got = _store(spark, filled, group).drop(*METADATA)
        assert got.count() > 0
        assert_df_equality(got, want, ignore_row_order=True)


def test_a_range_writes_every_snapshot_and_a_rerun_replaces_them(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backfill", *CONF, "--group", "customer_activity", "--start", "2026-10-29T00:00:00Z", "--end", T1]
    args += ["--step", "1d", *overrides(sample, tmp_path)]
    assert main(args) == 0
    assert "snapshots written: 3 of 3" in capsys.readouterr().out
    report = _report(tmp_path)
    assert report["status"] == "succeeded" and report["job"] == "backfill"
    snaps = report["snapshots"]
    assert [s["as_of"] for s in snaps] == ["2026-10-29T00:00:00Z", "2026-10-30T00:00:00Z", T1]
    assert all(s["status"] == "written" and s["rows"] > 0 and s["validation"]["success"] for s in snaps)
    assert snaps[-1]["offline_path"].endswith("customer_activity/data/year=2026/month=10/day=31/hour=00")
    click = report["sources"]["clickstream"]
    assert click["rows_read"] == click["accepted"] + click["quarantined"] + click["duplicates"]
    # Nothing was pushed without --push-latest.
    assert report["groups"][0]["online"] is None and report["groups"][0]["status"] == "published"
    assert not (tmp_path / "feature-store.sqlite").exists()

    per_t = {
        r["event_time"]: r["count"]
        for r in _store(spark, tmp_path, "customer_activity").groupBy("event_time").count().collect()
    }
    assert per_t == {s["as_of"]: s["rows"] for s in snaps}
    assert main(args) == 0  # the same range again: replaced, not duplicated
    again = _store(spark, tmp_path, "customer_activity")
    assert again.count() == sum(per_t.values()) == again.select("customer_id", "event_time").distinct().count()


@pytest.mark.usefixtures("no_aws_credentials")
def test_push_latest_pushes_only_the_newest_snapshot(spark: SparkSession, sample: Path, tmp_path: Path) -> None:
    args = ["backfill", *CONF, "--group", "customer_orders", "--start", "2026-10-30T00:00:00Z", "--end", T1]
    assert main([*args, "--step", "1d", "--push-latest", *NO_GATE, *overrides(sample, tmp_path)]) == 0
    report = _report(tmp_path)
    (group,) = report["groups"]
    newest = report["snapshots"][-1]
    assert group["status"] == "published"
    assert group["online"]["records"] == group["online"]["written"] == newest["rows"]
    older = spark.read.parquet(report["snapshots"][0]["offline_path"]).select("customer_id")
    gone = older.subtract(spark.read.parquet(newest["offline_path"]).select("customer_id")).collect()
    with LocalFeatureStore(db_path=str(tmp_path / "feature-store.sqlite"), port=0) as store:
        some = spark.read.parquet(newest["offline_path"]).first()
        assert some is not None
        online = get_record(store.endpoint_url, "us-east-1", "customer_orders", some["customer_id"])
        assert online is not None and online["event_time"] == T1
        for row in gone:  # in the older snapshot only: never pushed
            assert get_record(store.endpoint_url, "us-east-1", "customer_orders", row["customer_id"]) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "1x"], "error: window '1x' in --step: use a whole number"),
        (["--step", "1d", "--end", "2026-10-31T05:00:00Z"], "use --end 2026-10-31T00:00:00Z or 2026-11-01T00:00:00Z"),
        (["--step", "1d", "--start", "2026-11-02T00:00:00Z"], "is before --start 2026-11-02T00:00:00Z"),
        (["--step", "1d", "--start", "yesterday"], "error: --start 'yesterday' is not an ISO-8601 time"),
        (["--step", "1d", "--push-latest", "--set", "online_store.enabled=false"], "--push-latest needs the online"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["backfill", *CONF, "--group", "customer_activity", "--start", "2026-10-29T00:00:00Z", "--end", T1]
    assert main([*base, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_the_console_command_in_a_subprocess(sample: Path, tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "feature-pipeline"
    cmd = [str(command), "backfill", *CONF, "--group", "customer_orders", "--start", "2026-10-30T00:00:00Z"]
    cmd += ["--end", T1, "--step", "1d", *NO_GATE, *overrides(sample, tmp_path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_HOME"))}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "snapshots written: 2 of 2" in done.stdout
    progress = [line for line in done.stderr.splitlines() if "backfill: " in line]
    assert any("(2/2 snapshots, " in line and "s elapsed)" in line for line in progress), progress
    report = _report(tmp_path)
    assert [s["status"] for s in report["snapshots"]] == ["written", "written"]
