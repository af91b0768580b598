"""``feature-pipeline training-set`` end to end: CSV and Parquet labels, the manifest, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from features.cli import main
from tests.training.conftest import Store
from tests.training.test_as_of import random_labels, write_csv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def conf_args(spark: SparkSession, store: Store) -> Iterator[list[str]]:
    """The conf arguments pointing at the test store; the command's session is the suite's one,
    whose SQL settings it changes: they are put back afterwards."""
    saved = spark.conf.get("spark.sql.shuffle.partitions")
    yield [
        "--conf",
        str(ROOT / "conf/local.yaml"),
        "--set",
        f"offline_store.root={store.root}",
        "--set",
        "online_store.enabled=false",
    ]
    spark.conf.set("spark.sql.shuffle.partitions", saved or "2")


def test_csv_labels_to_parquet_with_a_manifest(conf_args: list[str], spark: SparkSession, tmp_path: Path) -> None:
    labels = random_labels(3, 40)
    out = tmp_path / "ts"
    code = main(
        [
            "training-set",
            *conf_args,
            "--labels",
            write_csv(tmp_path / "labels.csv", labels),
            "--out",
            str(out),
            "--groups",
            "customer_profile,customer_orders",
            "--max-age",
            "2d",
        ]
    )
    assert code == 0
    written = spark.read.parquet(str(out))
    assert written.count() == len(labels)
    assert written.columns[:4] == ["label_id", "customer_id", "label_time", "churned"]
    assert "customer_activity__snapshot_time" not in written.columns
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["labels_read"] == manifest["rows_written"] == len(labels)
    assert manifest["leakage_check"] == "passed"
    orders = manifest["groups"]["customer_orders"]
    assert orders["offline_store"]["format"] == "parquet"
    assert orders["offline_store"]["files"] == len(orders["offline_store"]["file_list"]) >= 1
    assert "-r2-" in " ".join(orders["offline_store"]["file_list"])  # the rerun's files, not r1's
    assert orders["snapshots_used"]["min"] <= orders["snapshots_used"]["max"]
    assert set(orders["null_rate"]) == {"order_count_7d", "order_amount_sum_7d"}
    assert all(0 <= v <= 1 for v in orders["null_rate"].values())


def test_parquet_labels_to_csv_with_selected_features(
    conf_args: list[str], spark: SparkSession, tmp_path: Path
) -> None:
    labels = random_labels(4, 30)
    source = spark.read.option("header", "true").csv(write_csv(tmp_path / "labels.csv", labels))
    source.selectExpr("*", "cast(label_time as timestamp) as observed").drop("label_time").withColumnRenamed(
        "observed", "label_time"
    ).write.parquet(str(tmp_path / "labels.parquet"))
    out = tmp_path / "ts"
    args = ["training-set", *conf_args, "--labels", str(tmp_path / "labels.parquet"), "--out", str(out)]
    assert main([*args, "--format", "csv", "--features", "age,event_count_1d"]) == 0
    written = spark.read.option("header", "true").csv(str(out))
    assert written.count() == len(labels)
    assert set(written.columns) == {
        "label_id",
        "customer_id",
        "churned",
        "label_time",
        "customer_profile__snapshot_time",
        "age",
        "customer_activity__snapshot_time",
        "event_count_1d",
    }
    assert set(json.loads((out / "_manifest.json").read_text())["groups"]) == {"customer_profile", "customer_activity"}
    assert main([*args, "--features", "age"]) == 2  # --out exists
    assert main([*args, "--features", "age", "--overwrite"]) == 0


def test_bad_inputs_are_one_line_usage_errors(
    conf_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    naive = tmp_path / "naive.csv"
    naive.write_text(
        "customer_id,label_time\nC001,2026-10-05T00:00:00\nC002,2026-10-05T00:00:00Z\nC003,2026-10-06 10:00\n"
    )
    base = ["training-set", *conf_args, "--out", str(tmp_path / "ts")]
    assert main([*base, "--labels", str(naive)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "2 label row(s) have a label_time without a time zone" in err and "'2026-10-0" in err

    clash = tmp_path / "clash.csv"
    clash.write_text("customer_id,label_time,age\nC001,2026-10-05T00:00:00Z,33\n")
    assert main([*base, "--labels", str(clash)]) == 2
    err = capsys.readouterr().err
    assert "column 'age' of customer_profile clashes with a label column" in err and "--features" in err

    good = tmp_path / "good.csv"
    good.write_text("customer_id,label_time\nC001,2026-10-05T00:00:00Z\n")
    assert main([*base, "--labels", str(good), "--as-of-version", "3"]) == 2
    assert "offline store is parquet" in capsys.readouterr().err
    assert main([*base, "--labels", str(good), "--features", "nope"]) == 2
    assert "--features nope: not in the offline store" in capsys.readouterr().err
    assert main([*base, "--labels", str(good), "--groups", "customer_prof"]) == 2
    assert "unknown feature group 'customer_prof'" in capsys.readouterr().err
