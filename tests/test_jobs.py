"""The build job's contract: arguments, exit codes, one-line errors, run report, outputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import botocore
import pytest
from botocore.exceptions import ClientError
from featurestore_local import LocalFeatureStore
from pyspark.sql import SparkSession

from features.cli import build_main, main
from features.online import client
from features.online.client import get_record, runtime_client
from features.session import local_worker_python, python_workers

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-10-31T00:00:00Z"
NOT_ONLINE = {"write_time", "api_invocation_time", "is_deleted"}


def overrides(sample: Path, out: Path) -> list[str]:
    """``--set`` flags that read ``sample`` and write every output under ``out``."""
    return [
        "--set",
        f"sources.clickstream.path={sample}/clickstream/events",
        "--set",
        f"sources.orders.path={sample}/rds/orders",
        "--set",
        f"sources.customers.path={sample}/rds/customers",
        "--set",
        f"offline_store.root={out}/store",
        "--set",
        f"quarantine.root={out}/quarantine",
        "--set",
        f"reports.root={out}/reports",
        "--set",
        "spark.shuffle_partitions=2",
        "--set",
        f"online_store.embedded_db={out}/feature-store.sqlite",
        "--set",
        f"online_store.dead_letter_root={out}/dead-letters",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "yesterday"], "error: --as-of 'yesterday' is not an ISO-8601 time"),
        (["--as-of", "2026-10-31T00:00:00"], "has no time zone; add Z for UTC"),
        (["--as-of", AS_OF, "--group", "nope"], "error: unknown feature group 'nope'; choose one of: all,"),
        (["--as-of", AS_OF, "--set", "offline_store.rot=/x"], "error: unknown configuration key 'offline_store.rot'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert build_main(["--conf", str(ROOT / "conf/local.yaml"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_group_whose_source_has_no_conf_block_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "conf/local.yaml").read_text()
    start = text.index("  orders:\n")
    end = text.index("  customers:\n")
    conf = tmp_path / "no-orders.yaml"
    conf.write_text(text[:start] + text[end:])
    assert build_main(["--conf", str(conf), "--as-of", AS_OF, "--group", "customer_orders"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: no configuration for source 'orders': add a sources.orders block to the conf file"


def test_missing_input_path_fails_with_report(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--conf", str(ROOT / "conf/local.yaml"), "--as-of", AS_OF, "--group", "customer_orders"]
    args += ["--set", f"sources.orders.path={tmp_path}/missing", "--set", f"reports.root={tmp_path}/reports"]
    args += ["--set", "spark.shuffle_partitions=2"]
    assert build_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: input path {tmp_path}/missing for source orders does not exist"
    (report_file,) = (tmp_path / "reports" / "build_features").glob("*.json")
    report = json.loads(report_file.read_text())
    assert report["status"] == "failed" and "does not exist" in report["error"]


def test_all_groups_end_to_end(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["build", "--conf", str(ROOT / "conf/local.yaml"), "--as-of", AS_OF, *overrides(sample, tmp_path)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "succeeded" in printed and "customer_activity" in printed and "quarantined clickstream" in printed
    (report_file,) = (tmp_path / "reports" / "build_features").glob("*.json")
    report = json.loads(report_file.read_text())
    assert [g["group"] for g in report["groups"]] == ["customer_activity", "customer_orders", "customer_profile"]
    click = report["sources"]["clickstream"]
    assert click["rows_read"] == click["accepted"] + click["quarantined"] + click["duplicates"]
    assert click["quarantined"] > 0 and click["duplicates"] > 0
    for g in report["groups"]:
        part = tmp_path / "store" / g["group"] / "data" / "year=2026" / "month=10" / "day=31" / "hour=00"
        assert g["offline_path"] == str(part)
        written = spark.read.parquet(str(part))
        assert written.count() == g["entities"] > 0
        assert written.select("customer_id").distinct().count() == g["entities"]
    # The online store holds the same values as the offline snapshot (spot check of one entity).
    assert [g["online"]["written"] for g in report["groups"]] == [g["entities"] for g in report["groups"]]
    with LocalFeatureStore(db_path=str(tmp_path / "feature-store.sqlite"), port=0) as store:
        for g in report["groups"]:
            row = spark.read.parquet(g["offline_path"]).orderBy("customer_id").first()
            assert row is not None
            online = get_record(store.endpoint_url, "us-east-1", g["group"], row["customer_id"])
            assert online is not None
            offline = {k: v for k, v in row.asDict().items() if k not in NOT_ONLINE and v is not None}
            assert set(online) == set(offline)
            for name, value in offline.items():
                assert online[name] == (repr(value) if isinstance(value, float) else str(value)), name

    profile = report["groups"][2]
    assert profile["entities"] == report["sources"]["customers"]["accepted"] == 150

    # A rerun of the same as-of replaces the snapshot: same rows, no duplicates.
    assert main([*args, "--group", "customer_orders"]) == 0
    orders = spark.read.parquet(str(tmp_path / "store" / "customer_orders" / "data"))
    assert orders.count() == orders.select("customer_id").distinct().count() == report["groups"][1]["entities"]


@pytest.mark.usefixtures("no_aws_credentials")
def test_an_old_botocore_pushes_with_put_record_and_the_report_says_so(
    spark: SparkSession,
    sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(client, "has_batch_write_record", lambda session=None: False)  # botocore < 1.43.37
    with LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0) as store:
        args = ["build", "--conf", str(ROOT / "conf/local.yaml"), "--as-of", AS_OF, "--group", "customer_profile"]
        args += [*overrides(sample, tmp_path), "--set", f"online_store.endpoint_url={store.endpoint_url}"]
        assert main(args) == 0
        calls = store.stats()["requests_by_op"]

    warning = (
        f"botocore {botocore.__version__} has no BatchWriteRecord (needs >= 1.43.37): "
        "pushing one PutRecord per record instead; upgrade boto3 for 25 records per call"
    )
    assert f"warning: {warning}" in capsys.readouterr().out.splitlines()
    (report_file,) = (tmp_path / "reports" / "build_features").glob("*.json")
    report = json.loads(report_file.read_text())
    assert report["warnings"] == [warning]
    assert (report["groups"][0]["online"]["written"], report["groups"][0]["online"]["dead_lettered"]) == (150, 0)
    assert calls.get("PutRecord") == 150 and "BatchWriteRecord" not in calls


def test_blocking_validation_writes_nothing_and_warn_writes(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sample's newest event is minutes before T; a 1-minute freshness limit set to fail blocks.
    base = ["build", "--conf", str(ROOT / "conf/local.yaml"), "--as-of", AS_OF, "--group", "customer_activity"]
    base += overrides(sample, tmp_path)
    strict = [*base, "--set", "validation.freshness_max_age=1m", "--set", "validation.freshness_action=fail"]
    assert main(strict) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1].startswith("error: validation failed, nothing written: customer_activity")
        and "freshness fail" in err[-1]
    )
    assert not (tmp_path / "store" / "customer_activity").exists()
    with LocalFeatureStore(db_path=str(tmp_path / "feature-store.sqlite"), port=0) as store:
        runtime = runtime_client(endpoint_url=store.endpoint_url, region="us-east-1")
        with pytest.raises(ClientError, match="ResourceNotFound"):  # not even registered, so nothing pushed
            runtime.get_record(FeatureGroupName="customer_activity", RecordIdentifierValueAsString="C000004")

    warn = [*base, "--set", "validation.freshness_max_age=1m", "--set", "validation.freshness_action=warn"]
    assert main(warn) == 0
    reports = sorted((tmp_path / "reports" / "build_features").glob("*.json"))
    report = json.loads(reports[-1].read_text())
    (group,) = report["groups"]
    assert group["validation"]["freshness"]["status"] == "warn"
    assert group["validation"]["html_report"] and Path(group["validation"]["html_report"]).is_file()
    assert group["online"]["written"] == group["entities"] > 0
    assert (tmp_path / "store" / "customer_activity" / "data").exists()


@pytest.mark.parametrize(
    ("master", "settings", "environ", "python"),
    [
        ("local[2]", {}, {}, sys.executable),  # the console command: the venv's, not PATH's python3
        ("local[*]", {}, {"PYSPARK_DRIVER_PYTHON": "/venv/bin/python"}, sys.executable),  # spark-submit's driver
        ("local[2]", {"spark.pyspark.python": "/opt/py/bin/python"}, {}, "/opt/py/bin/python"),  # chosen in conf
        ("local[2]", {}, {"PYSPARK_PYTHON": "/opt/py/bin/python"}, None),  # chosen in the environment
        ("yarn", {}, {}, None),  # EMR: executors are other machines
        (None, {}, {}, None),
    ],
)
def test_local_workers_run_the_chosen_interpreter_else_this_one(
    master: str | None, settings: dict[str, str], environ: dict[str, str], python: str | None
) -> None:
    assert local_worker_python(master, settings, environ) == python


def test_the_worker_interpreter_is_set_only_while_the_context_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    with python_workers("/venv/bin/python"):
        assert os.environ["PYSPARK_PYTHON"] == "/venv/bin/python"
    assert "PYSPARK_PYTHON" not in os.environ
    monkeypatch.setenv("PYSPARK_PYTHON", "/mine/python")
    with python_workers("/venv/bin/python"):
        pass
    assert os.environ["PYSPARK_PYTHON"] == "/mine/python"
    with python_workers(None):
        assert os.environ["PYSPARK_PYTHON"] == "/mine/python"


def test_serve_local_without_the_runtime_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "featurestore_local", None)  # as in a job artifact: not installed
    monkeypatch.setitem(sys.modules, "featurestore_local.cli", None)
    assert main(["serve-local", "--port", "0"]) == 2
    assert "pip install -e featurestore-local" in capsys.readouterr().err
