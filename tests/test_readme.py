"""The README's commands, run as written, in the shell of a new user.

That shell has no AWS credentials and no ``AWS_*`` or ``PYSPARK_*`` variables at all, a fresh
HOME, and a PATH whose first ``python3`` (and ``python``) is not the venv's: it prints "wrong
interpreter" and exits 3. The commands are read from README.md itself ("Quick start", "Running a
job"), so the README and these tests cannot disagree; each gets ``--set`` flags that read the small
sample and write every output under a temporary directory. Each run is a subprocess bounded by a
timeout.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.test_jobs import NOT_ONLINE, overrides

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
#: Seconds per command: a build of all groups takes about a minute on 2 shared cores.
TIMEOUT = 480
#: C000001's customer_profile record at T = 2026-10-31T00:00:00Z, worked out from its row in the
#: sample (seed 7): born 1969-01-19 (57 whole years), active since 2024-02-10T21:20:52 (993 whole
#: days: 366 + 365 + 263 to T, less the 21 hours), not prime, single, FR.
C000001 = {
    "customer_id": "C000001",
    "event_time": "2026-10-31T00:00:00Z",
    "age": "57",
    "age_bucket": "50-59",
    "tenure_days": "993",
    "is_prime_member": "0",
    "marital_status": "single",
    "country": "FR",
}


def readme_commands(section: str) -> list[list[str]]:
    """The commands in the bash blocks of a README section, continuation lines joined, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", body, re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [words for words in map(lambda line: shlex.split(line, comments=True), lines) if words]


def readme_command(section: str, *needles: str) -> list[str]:
    """The one command of ``section`` containing every word in ``needles``."""
    [found] = [words for words in readme_commands(section) if all(n in words for n in needles)]
    return found


@pytest.fixture(scope="module")
def new_user(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a new user's shell after ``make setup``."""
    root = tmp_path_factory.mktemp("new-user")
    trap = root / "bin"
    trap.mkdir()
    for name in ("python3", "python"):
        script = trap / name
        script.write_text('#!/bin/sh\necho "wrong interpreter" >&2\nexit 3\n')
        script.chmod(0o755)
    (root / "home").mkdir()
    env = {
        "PATH": os.pathsep.join([str(trap), str(VENV_BIN), "/usr/bin", "/bin"]),
        "HOME": str(root / "home"),
        "LANG": "C.UTF-8",
        "SPARK_LOCAL_IP": "127.0.0.1",  # Spark binds to loopback only, as in every test
    }
    if "JAVA_HOME" in os.environ:  # Java 17, as the README requires
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    trapped = subprocess.run(
        ["python3", "-c", "pass"], check=False, env=env, capture_output=True, text=True, timeout=10
    )
    assert (trapped.returncode, trapped.stderr.strip()) == (3, "wrong interpreter")
    return env


def this_venv(word: str) -> str:
    """``word`` with the README's ``.venv/`` read as the venv running the suite.

    ``make test-spark35`` runs the suite from ``.venv-spark35``: its README tests must run that
    venv's commands (Spark 3.5), not the Spark 4.0 ``.venv`` the README names.
    """
    return str(VENV_BIN.parent / word.removeprefix(".venv/")) if word.startswith(".venv/") else word


def run(words: list[str], env: dict[str, str], extra: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a README command from the repository root, as the README does, with ``extra`` arguments."""
    assigned = {}
    while "=" in words[0] and not words[0].startswith(("-", ".", "/")):
        name, _, value = words[0].partition("=")
        assigned[name] = this_venv(value)
        words = words[1:]
    words = [this_venv(word) for word in words]
    assert not any(name.startswith("AWS_") for name in assigned)
    done = subprocess.run(
        [*words, *extra],
        cwd=ROOT,
        env={**env, **assigned},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{shlex.join(words)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert "wrong interpreter" not in done.stderr
    return done


def run_report(out: Path) -> dict[str, Any]:
    (path,) = (out / "reports" / "build_features").glob("*.json")
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def assert_pushed(report: dict[str, Any], groups: list[str]) -> None:
    """Succeeded, nothing to warn about, and every record of every group written online."""
    assert (report["status"], report["error"], report["warnings"]) == ("succeeded", None, [])
    assert [g["group"] for g in report["groups"]] == groups
    for g in report["groups"]:
        online = g["online"]
        assert online["records"] == online["written"] + online["dead_lettered"], g["group"]
        assert (online["dead_lettered"], online["written"]) == (0, g["entities"]), g["group"]


@pytest.mark.slow
def test_console_command(sample: Path, tmp_path: Path, new_user: dict[str, str]) -> None:
    command = readme_command("Running a job", ".venv/bin/build-features")
    assert command[command.index("--group") + 1] == "customer_activity"

    done = run(command, new_user, overrides(sample, tmp_path))

    report = run_report(tmp_path)
    assert_pushed(report, ["customer_activity"])
    # Customers with an accepted event in [T - 31d, T): the 30d window plus the 1d drop-out lookback.
    assert report["groups"][0]["entities"] == 58
    assert "succeeded" in done.stdout and "warning:" not in done.stdout


@pytest.mark.slow
def test_spark_submit_then_get_record(
    spark: SparkSession, sample: Path, tmp_path: Path, new_user: dict[str, str]
) -> None:
    """spark-submit with PYSPARK_PYTHON, the push on against the embedded runtime, then ``get-record``."""
    command = readme_command("Running a job", ".venv/bin/spark-submit", "all")
    assert command[0] == "PYSPARK_PYTHON=.venv/bin/python"

    run(command, new_user, overrides(sample, tmp_path))

    report = run_report(tmp_path)
    assert_pushed(report, ["customer_activity", "customer_orders", "customer_profile"])
    assert report["groups"][2]["entities"] == 150

    get = readme_command("Quick start", "get-record")
    assert get[get.index("--id") + 1] == "C000001"
    done = run(get, new_user, ["--set", f"online_store.embedded_db={tmp_path}/feature-store.sqlite"])
    assert json.loads(done.stdout) == C000001
    offline = spark.read.parquet(report["groups"][2]["offline_path"]).where("customer_id = 'C000001'").first()
    assert offline is not None
    assert {k: str(v) for k, v in offline.asDict().items() if k not in NOT_ONLINE and v is not None} == C000001


@pytest.mark.slow
def test_spark_submit_naming_only_the_driver_interpreter(
    sample: Path, tmp_path: Path, new_user: dict[str, str]
) -> None:
    """No PYSPARK_PYTHON: with a local master the workers run the driver's interpreter, not PATH's python3."""
    command = readme_command("Running a job", ".venv/bin/spark-submit", "customer_profile")
    assert command[0] == "PYSPARK_DRIVER_PYTHON=.venv/bin/python" and "local[2]" in command

    run(command, new_user, overrides(sample, tmp_path))

    assert_pushed(run_report(tmp_path), ["customer_profile"])


@pytest.mark.slow
def test_backfill_then_training_set(
    spark: SparkSession, sample: Path, tmp_path: Path, new_user: dict[str, str]
) -> None:
    """The README's backfill, then its training set over the labels sample, as a new user runs them."""
    backfill = readme_command("Running a job", "backfill")
    assert backfill[backfill.index("--group") + 1] == "all"
    run(backfill, new_user, overrides(sample, tmp_path))
    (path,) = (tmp_path / "reports" / "backfill").glob("*.json")
    report = json.loads(path.read_text())
    assert report["status"] == "succeeded", report["error"]
    days = [f"2026-10-{d:02d}T00:00:00Z" for d in range(25, 32)]
    for group in ("customer_activity", "customer_orders", "customer_profile"):
        written = sorted(s["as_of"] for s in report["snapshots"] if s["group"] == group and s["status"] == "written")
        assert written == days, group

    training = readme_command("Running a job", "training-set")
    labels_csv = sample / "labels" / "churn.csv"
    out = tmp_path / "training" / "churn"
    words = list(training)
    words[words.index("--labels") + 1] = str(labels_csv)
    words[words.index("--out") + 1] = str(out)
    run(words, new_user, overrides(sample, tmp_path))

    lines = labels_csv.read_text().splitlines()[1:]
    manifest = json.loads((out / "_manifest.json").read_text())
    assert (manifest["labels_read"], manifest["rows_written"], manifest["leakage_check"]) == (
        len(lines),
        len(lines),
        "passed",
    )
    result = spark.read.parquet(str(out))
    assert result.count() == len(lines)
    # Label columns come back as given (CSV: text), duplicates included.
    got = sorted(tuple(r) for r in result.select("customer_id", "label_time", "churned_30d", "label_id").collect())
    assert got == sorted(tuple(line.split(",")) for line in lines)
    # customer_profile holds every customer of the sample at every T, so each label gets the UTC
    # midnight at or before its label time, worked out here from the label's own text, when that is
    # Oct 25 or later (the first snapshot); before it, and for the customer no source has, null.
    used = F.date_format("customer_profile__snapshot_time", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("used")
    for row in result.select("customer_id", "label_time", used).collect():
        when = datetime.fromisoformat(row["label_time"]).astimezone(UTC)
        midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
        known = row["customer_id"] != "C999999" and midnight >= datetime(2026, 10, 25, tzinfo=UTC)
        assert row["used"] == (f"{midnight:%Y-%m-%dT%H:%M:%SZ}" if known else None), row
