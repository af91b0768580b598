"""``online=False``: a batch-only group is written offline and published, never registered or pushed;
the skew check skips it with a note and the online commands say it has nothing online."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from featurestore_local import LocalFeatureStore
from pyspark.sql import SparkSession

from features.cli import main
from features.config import load_conf
from features.online.client import control_client
from features.pipeline import BuildResult, Computed, publish
from features.report import GroupReport
from features.validate.skew import SkewChecker
from tests.tiering.conftest import make_group

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf/local.yaml")
AS_OF = datetime(2026, 10, 31, tzinfo=UTC)
BATCH = make_group("batch_only_test", online=False)
ONLINE = make_group("online_test")


def test_publish_writes_a_batch_only_group_offline_and_nothing_online(spark: SparkSession, tmp_path: Path) -> None:
    conf = load_conf(
        CONF,
        [
            f"offline_store.root={tmp_path}/store",
            f"online_store.embedded_db={tmp_path}/fs.sqlite",
            f"online_store.dead_letter_root={tmp_path}/dl",
        ],
        sources=["clickstream", "orders", "customers"],
        groups=[],
    )
    rows = [("C000001", "2026-10-31T00:00:00Z", 3, "a"), ("C000002", "2026-10-31T00:00:00Z", 5, "b")]
    schema = "customer_id string, event_time string, visits bigint, segment string"
    computed = [Computed(group=g, features=spark.createDataFrame(rows, schema), entities=2) for g in (BATCH, ONLINE)]
    result = BuildResult(
        groups={g.name: GroupReport(group=g.name, source="people", features=2) for g in (BATCH, ONLINE)}
    )
    publish(spark, conf, computed, AS_OF, "run-1", result, write_api="batch_write_record")
    batch, online = result.groups[BATCH.name], result.groups[ONLINE.name]
    assert batch.status == online.status == "published"
    assert batch.offline_path and spark.read.parquet(batch.offline_path).count() == 2
    assert batch.online is None and online.online is not None and online.online["written"] == 2
    with LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0) as store:
        names = [
            s["FeatureGroupName"]
            for s in control_client(endpoint_url=store.endpoint_url, region="us-east-1").list_feature_groups()[
                "FeatureGroupSummaries"
            ]
        ]
    assert names == [ONLINE.name]  # the batch-only group was never registered


def test_the_skew_check_skips_a_batch_only_group_with_a_note(spark: SparkSession, tmp_path: Path) -> None:
    with (
        LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0) as store,
        SkewChecker(
            spark,
            offline_root=str(tmp_path / "none"),
            endpoint_url=store.endpoint_url,
            region="us-east-1",
            sample=5,
            seed=1,
        ) as checker,
    ):
        result = checker.check(BATCH)
    assert result.status == "skipped" and result.ok and result.sampled == 0
    assert result.summary() == (
        "batch_only_test: skipped — batch-only group (online=False): offline store only, nothing online to compare"
    )
    assert json.loads(json.dumps(result.to_dict()))["status"] == "skipped"


@pytest.mark.parametrize(
    "argv",
    [
        ["get-record", "--group", "batch_only_test", "--id", "C000001"],
        ["get-features", "--groups", "batch_only_test", "--id", "C000001"],
    ],
)
def test_online_lookups_of_a_batch_only_group_say_so(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("features.cli.online.resolve", lambda name: [BATCH])
    assert main([*argv, "--endpoint-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "feature group batch_only_test is batch-only (online=False): it is in the offline store only" in err[0]


def test_register_leaves_batch_only_groups_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("features.cli.online.resolve", lambda name: [BATCH, ONLINE])
    with LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0) as store:
        assert main(["register", "--endpoint-url", store.endpoint_url]) == 0
        out = capsys.readouterr()
        assert json.loads(out.out) == {ONLINE.name: "created"}
        assert "not registering batch_only_test, a batch-only group (online=False)" in out.err
