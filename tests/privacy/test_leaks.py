"""With pseudonymisation on, no raw identifier leaves extract: offline files, online records, run
report (its quarantine samples too), validation reports and log lines hold pseudonyms only.

The expected pseudonyms are Python's ``hmac`` over the raw ids DuckDB reads from the inputs;
outputs are grepped as bytes. Quarantine files are the documented exception (raw rows, for replay,
under their own prefix): the same grep finds raw ids there, which shows it can find them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pyspark.sql import SparkSession

from features.cli import build_main, main

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf/local.yaml")
AS_OF = "2026-10-31T00:00:00Z"
KEY_ENV = "TEST_FEATURES_PSEUDONYMISATION_KEY"
KEY = "test-only key: 0123456789abcdef0123456789abcdef"
#: Every customer id the sample generator writes (C + six digits), wherever it might leak.
RAW_ID = re.compile(rb"C\d{6}")
GROUPS = ("customer_activity", "customer_orders", "customer_profile")


def oracle(raw: str) -> str:
    return hmac.new(KEY.encode(), raw.encode(), hashlib.sha256).hexdigest()


def settings(sample: Path, out: Path, *, privacy: bool = True) -> list[str]:
    values = {
        "sources.clickstream.path": f"{sample}/clickstream/events",
        "sources.orders.path": f"{sample}/rds/orders",
        "sources.customers.path": f"{sample}/rds/customers",
        "offline_store.root": f"{out}/store",
        "quarantine.root": f"{out}/quarantine",
        "reports.root": f"{out}/reports",
        "spark.shuffle_partitions": "2",
        "online_store.embedded_db": f"{out}/feature-store.sqlite",
        "online_store.dead_letter_root": f"{out}/dead-letters",
        "privacy.pseudonymisation.enabled": "true" if privacy else "false",
        "privacy.pseudonymisation.key_env": KEY_ENV,
    }
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


@dataclass
class Run:
    out: Path
    code: int
    printed: str
    logged: str
    report: dict[str, Any]


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the run, at DEBUG, as a person on call would see them."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield text
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def build(sample: Path, out: Path, *extra: str) -> Run:
    stdout, stderr = io.StringIO(), io.StringIO()
    with captured_logs() as logged, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = build_main(["--conf", CONF, "--as-of", AS_OF, *settings(sample, out), *extra])
    reports = sorted((out / "reports" / "build_features").glob("*.json"))
    report = json.loads(reports[-1].read_text()) if reports else {}
    return Run(out, code, stdout.getvalue() + stderr.getvalue(), logged.getvalue(), report)


@pytest.fixture(scope="module")
def run(spark: SparkSession, sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KEY_ENV, KEY)
        yield build(sample, tmp_path_factory.mktemp("pseudonymised"))


def raw_ids_in(root: Path, *, skip: Path | None = None) -> dict[str, set[bytes]]:
    found: dict[str, set[bytes]] = {}
    for path in root.rglob("*"):
        if path.is_file() and (skip is None or skip not in path.parents):
            hits = set(RAW_ID.findall(path.read_bytes()))
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def input_ids(sample: Path) -> set[str]:
    query = f"SELECT DISTINCT customer_id FROM read_parquet('{sample}/rds/customers/**/*.parquet')"
    return {r[0] for r in duckdb.connect().execute(query).fetchall()}


def test_the_run_succeeds_with_pseudonyms(run: Run) -> None:
    assert run.code == 0, run.printed
    assert run.report["status"] == "succeeded"
    assert [g["status"] for g in run.report["groups"]] == ["published"] * 3


def test_no_raw_id_in_any_output_but_the_quarantine(run: Run) -> None:
    quarantine = run.out / "quarantine"
    assert raw_ids_in(run.out, skip=quarantine) == {}  # offline Parquet, the SQLite online store, reports
    assert RAW_ID.findall(run.logged.encode()) == [] and RAW_ID.findall(run.printed.encode()) == []
    assert "pseudonymising declared identifiers (key fingerprint " in run.logged
    assert KEY not in run.logged and KEY not in run.printed
    # The grep can find raw ids: the quarantine keeps raw rows for replay (docs/privacy.md).
    assert raw_ids_in(quarantine)


def test_the_run_reports_quarantine_samples_carry_pseudonyms(run: Run) -> None:
    samples = run.report["sources"]["clickstream"]["quarantine_samples"]
    ids = [row["customer_id"] for rows in samples.values() for row in rows if row.get("customer_id")]
    assert ids and all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)
    corrupt = [row for rows in samples.values() for row in rows if row.get("_corrupt_record")]
    assert corrupt and all(r["_corrupt_record"].startswith("(withheld") for r in corrupt)


def test_one_raw_id_has_one_pseudonym_in_every_group(spark: SparkSession, run: Run, sample: Path) -> None:
    expected = {oracle(raw) for raw in input_ids(sample)}
    keys = {}
    for group in GROUPS:
        rows = spark.read.parquet(str(run.out / "store" / group / "data")).select("customer_id").collect()
        keys[group] = {r[0] for r in rows}
    assert keys["customer_profile"] == expected  # every customer of the customers extract, hashed
    assert keys["customer_activity"] and keys["customer_activity"] <= expected  # from the JSON event log
    assert keys["customer_orders"] and keys["customer_orders"] <= expected  # from the orders extract


def test_the_same_raw_id_gets_the_same_pseudonym_in_another_run(
    spark: SparkSession, run: Run, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    again = build(sample, tmp_path, "--group", "customer_profile")
    assert again.code == 0, again.printed
    first, second = (
        {r[0] for r in spark.read.parquet(str(out / "store/customer_profile/data")).select("customer_id").collect()}
        for out in (run.out, tmp_path)
    )
    assert first == second


def test_get_record_and_get_features_take_the_raw_id(
    run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    sets = settings(Path("unused"), run.out)
    capsys.readouterr()
    assert main(["get-record", "--conf", CONF, *sets, "--group", "customer_profile", "--id", "C000001"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["customer_id"] == oracle("C000001")
    assert main(["get-features", "--conf", CONF, *sets, "--groups", "customer_profile", "--id", "C000001"]) == 0
    (vector,) = json.loads(capsys.readouterr().out)
    assert vector["customer_id"] == oracle("C000001") and vector["snapshot_times"]["customer_profile"]
    # Without pseudonymisation the raw id is looked up as is, and the store has no such record.
    plain = settings(Path("unused"), run.out, privacy=False)
    assert main(["get-record", "--conf", CONF, *plain, "--group", "customer_profile", "--id", "C000001"]) == 1


def test_a_missing_key_is_one_line_before_any_spark_work(
    spark: SparkSession, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    tracker = spark.sparkContext.statusTracker()
    spark.range(1).count()
    before = set(tracker.getJobIdsForGroup(None))
    assert before  # the tracker sees jobs, so an unchanged set means none ran
    failed = build(sample, tmp_path)
    assert failed.code == 1
    assert failed.printed.strip().splitlines()[-1] == (
        f"error: environment variable {KEY_ENV} (the pseudonymisation key, privacy.pseudonymisation.key_env) "
        "is not set or is empty"
    )
    assert set(tracker.getJobIdsForGroup(None)) == before
    assert failed.report["status"] == "failed" and failed.report["sources"] == {}
    assert not (tmp_path / "store").exists() and not (tmp_path / "quarantine").exists()
