"""What a run leaves when it fails part-way: evidence per run, every group published or named,
a report a ``kill -9`` cannot erase, and a warning when an older snapshot is pushed.

Each test runs the real build (in-process, or as a subprocess where it is killed) on the small
sample against the local Feature Store runtime; expected outcomes are typed out here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from featurestore_local import FaultConfig, LocalFeatureStore
from pyspark.sql import SparkSession

from features.cli import main
from features.groups.customer_activity import customer_activity
from features.groups.customer_orders import customer_orders
from features.groups.customer_profile import customer_profile
from features.online.client import control_client, get_record
from features.online.registration import feature_group_request
from tests.test_jobs import AS_OF, NOT_ONLINE, overrides

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf/local.yaml")
TAG = "20261031T000000Z"


def reports(out: Path) -> list[dict[str, Any]]:
    """The build run reports under ``out``, oldest first."""
    return [json.loads(p.read_text()) for p in sorted((out / "reports" / "build_features").glob("*.json"))]


def build(out: Path, sample: Path, group: str, *extra: str, as_of: str = AS_OF) -> int:
    return main(["build", "--conf", CONF, "--group", group, "--as-of", as_of, *overrides(sample, out), *extra])


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_failed_rerun_keeps_the_evidence_behind_the_stored_snapshot(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(tmp_path, sample, "customer_activity") == 0
    (first,) = reports(tmp_path)
    quarantine = tmp_path / "quarantine" / "clickstream" / f"as_of={TAG}"
    kept = files_under(quarantine / f"run={first['run_id']}")
    assert any(name.endswith(".json") for name in kept)  # the sample has quarantined clickstream rows
    stored = files_under(tmp_path / "store" / "customer_activity")
    latest = {
        "run_id": first["run_id"],
        "quarantine_path": f"{quarantine}/run={first['run_id']}",
        "quarantined": first["sources"]["clickstream"]["quarantined"],
    }
    assert json.loads((quarantine / "_LATEST.json").read_text()) == latest

    # The same T again, with a freshness limit set to fail: blocked, written to neither store.
    strict = ["--set", "validation.freshness_max_age=1m", "--set", "validation.freshness_action=fail"]
    assert build(tmp_path, sample, "customer_activity", *strict) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: validation failed, nothing written")
    second = reports(tmp_path)[-1]
    assert (second["status"], [g["status"] for g in second["groups"]]) == ("failed", ["blocked"])

    assert files_under(quarantine / f"run={first['run_id']}") == kept  # the evidence of the stored snapshot
    assert any(name.endswith(".json") for name in files_under(quarantine / f"run={second['run_id']}"))
    assert json.loads((quarantine / "_LATEST.json").read_text()) == latest
    assert files_under(tmp_path / "store" / "customer_activity") == stored


def test_a_group_registered_differently_is_refused_before_its_first_record_and_the_others_publish(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # customer_orders is registered without its last feature; the build does not register
    # (online_store.register: false, as on EMR), so it must refuse that group, not fail per record.
    db = tmp_path / "feature-store.sqlite"
    with LocalFeatureStore(db_path=str(db), port=0) as store:
        control = control_client(endpoint_url=store.endpoint_url, region="us-east-1")
        for group in (customer_activity, customer_profile):
            control.create_feature_group(**feature_group_request(group, offline_s3_uri=None, role_arn=None))
        wrong = feature_group_request(customer_orders, offline_s3_uri=None, role_arn=None)
        missing = wrong["FeatureDefinitions"][-1]["FeatureName"]
        wrong["FeatureDefinitions"] = wrong["FeatureDefinitions"][:-1]
        control.create_feature_group(**wrong)

    assert build(tmp_path, sample, "all", "--set", "online_store.register=false") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: 1 of 3 groups not published (3 written offline): customer_orders: "), err
    assert "registered with different definitions" in err and missing in err and "set version=2" in err, err
    (report,) = reports(tmp_path)
    groups = {g["group"]: g for g in report["groups"]}
    assert {name: g["status"] for name, g in groups.items()} == {
        "customer_activity": "published",
        "customer_orders": "push_incomplete",
        "customer_profile": "published",
    }
    for g in groups.values():  # offline holds every group's snapshot
        assert g["offline_path"] and list(Path(g["offline_path"]).glob(f"snapshot-{TAG}-*.parquet"))
    orders = groups["customer_orders"]
    assert (orders["online"], orders["replay"]) == (None, None)  # nothing sent, nothing dead-lettered
    row = spark.read.parquet(orders["offline_path"]).orderBy("customer_id").first()
    assert row is not None
    with LocalFeatureStore(db_path=str(db), port=0) as store:
        assert get_record(store.endpoint_url, "us-east-1", "customer_orders", row["customer_id"]) is None

    # The cause fixed (the group re-created as defined), a rerun of the group publishes it.
    with LocalFeatureStore(db_path=str(db), port=0) as store:
        control = control_client(endpoint_url=store.endpoint_url, region="us-east-1")
        control.delete_feature_group(FeatureGroupName="customer_orders")
        control.create_feature_group(**feature_group_request(customer_orders, offline_s3_uri=None, role_arn=None))
    assert build(tmp_path, sample, "customer_orders", "--set", "online_store.register=false") == 0
    with LocalFeatureStore(db_path=str(db), port=0) as store:
        record = get_record(store.endpoint_url, "us-east-1", "customer_orders", row["customer_id"])
    offline = {k: v for k, v in row.asDict().items() if k not in NOT_ONLINE and v is not None}
    assert record is not None and set(record) == set(offline) and record["event_time"] == "2026-10-31T00:00:00Z"


def test_pushing_an_older_snapshot_warns_that_the_online_store_keeps_the_newer(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(tmp_path, sample, "customer_profile") == 0
    assert build(tmp_path, sample, "customer_profile", as_of="2026-10-30T00:00:00Z") == 0
    printed = capsys.readouterr().out
    older = reports(tmp_path)[-1]
    assert older["as_of"] == "2026-10-30T00:00:00Z"
    assert older["warnings"] == [
        "customer_profile: this snapshot (2026-10-30T00:00:00Z) is older than the newest offline one "
        "(2026-10-31T00:00:00Z); the online store keeps the newer records, so the records pushed now are not "
        "what it serves"
    ]
    (group,) = older["groups"]
    assert (group["status"], group["superseded_by"]) == ("published", "2026-10-31T00:00:00Z")
    assert "online keeps the newer snapshot of 2026-10-31T00:00:00Z" in printed
    with LocalFeatureStore(db_path=str(tmp_path / "feature-store.sqlite"), port=0) as store:
        record = get_record(store.endpoint_url, "us-east-1", "customer_profile", "C000001")
    assert record is not None and record["event_time"] == "2026-10-31T00:00:00Z"


@pytest.mark.slow
def test_a_run_killed_mid_push_is_on_record_and_a_rerun_completes_it(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "feature-store.sqlite"
    slow = ["--set", "online_store.write_api=put_record", "--set", "online_store.max_in_flight=1"]
    slow += ["--set", "online_store.partitions=1"]
    status = ["status", "--conf", CONF, "--group", "customer_profile", *overrides(sample, tmp_path)]
    command = [str(Path(sys.executable).parent / "build-features"), "--conf", CONF, "--group", "customer_profile"]
    command += ["--as-of", AS_OF, *overrides(sample, tmp_path), *slow]
    # 150 records, one PutRecord at a time, 100 ms each: the push takes 15 s; the job dies a second in.
    with LocalFeatureStore(db_path=str(db), port=0, faults=FaultConfig(latency_ms=100)) as store:
        job = subprocess.Popen(
            [*command, "--set", f"online_store.endpoint_url={store.endpoint_url}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 300
            while not any(g["status"] == "pushing" for r in _readable(tmp_path) for g in r["groups"]):
                assert job.poll() is None and time.monotonic() < deadline, "the job ended before its push"
                time.sleep(0.1)
            time.sleep(1)
        finally:
            os.killpg(job.pid, signal.SIGKILL)  # kill -9: the driver and its JVM
            job.wait(timeout=60)

    (killed,) = reports(tmp_path)
    assert (killed["status"], killed["finished_at"], [g["status"] for g in killed["groups"]]) == (
        "running",
        None,
        ["pushing"],
    )
    assert list(Path(killed["groups"][0]["offline_path"]).glob(f"snapshot-{TAG}-*.parquet"))
    assert main(status) == 1
    shown = capsys.readouterr().out
    assert shown.startswith(f"customer_profile: pushing (as of {AS_OF}, run {killed['run_id']} running")
    assert "offline holds the whole snapshot, online part of it; if no job is running it was killed: rerun " in shown
    assert f"`build-features --conf {CONF} --group customer_profile --as-of {AS_OF}`" in shown

    assert build(tmp_path, sample, "customer_profile") == 0
    assert main(status) == 0
    rerun = reports(tmp_path)[-1]
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"customer_profile: published (as of {AS_OF}, run {rerun['run_id']} succeeded, online written 150/150)"
    )


def _readable(out: Path) -> list[dict[str, Any]]:
    """The reports written so far, skipping one caught mid-write."""
    found = []
    for path in (out / "reports" / "build_features").glob("*.json"):
        try:
            found.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, OSError):
            continue
    return found
