"""Record formatting, the retry/rate machinery and replay, without Spark (fake clients and the local runtime)."""

from __future__ import annotations

import argparse
import json
import math
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from featurestore_local import LocalFeatureStore

from features.cli.online import REGISTER, REPLAY
from features.online.deadletter import DeadLetterWriter, default_dead_letter_root
from features.online.failures import backoff_seconds, classify
from features.online.rate import AdaptiveRate
from features.online.records import RecordError, check_record, format_value, to_record
from features.online.replay import replay_dead_letters
from features.online.settings import Item, PushError, PushSettings
from features.online.writer import Writer

TYPES: dict[str, Any] = {
    "customer_id": "String",
    "event_time": "String",
    "n": "Integral",
    "x": "Fractional",
    "s": "String",
}


@pytest.mark.parametrize(
    ("dtype", "value", "text"),
    [
        ("Integral", 42, "42"),
        ("Integral", -(2**63), "-9223372036854775808"),
        ("Integral", Decimal("7"), "7"),
        ("Fractional", 0.1, "0.1"),
        ("Fractional", 1 / 3, "0.3333333333333333"),
        ("Fractional", 1e-300, "1e-300"),
        ("Fractional", 3, "3.0"),
        ("Fractional", Decimal("12.50"), "12.5"),
        ("String", "Zürich", "Zürich"),
    ],
)
def test_values_are_formatted_the_way_sagemaker_reads_them(dtype: Any, value: Any, text: str) -> None:
    assert format_value("f", dtype, value) == text
    if dtype == "Fractional":
        assert float(text) == float(value)


@pytest.mark.parametrize(
    ("dtype", "value", "message"),
    [
        ("Fractional", math.nan, "Fractional feature f is nan"),
        ("Fractional", -math.inf, "Fractional feature f is -inf"),
        ("Integral", 1.5, "not a whole number"),
        ("Integral", True, "boolean"),
        ("String", 3, "String feature f got int"),
    ],
)
def test_values_the_store_would_mis_serve_are_refused(dtype: Any, value: Any, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        format_value("f", dtype, value)


def test_record_leaves_out_nulls_and_needs_identifier_and_event_time() -> None:
    row = {"customer_id": "C1", "event_time": "2026-10-31T00:00:00Z", "n": None, "x": 2.5, "s": None}
    assert to_record(row, TYPES, record_identifier="customer_id") == [
        {"FeatureName": "customer_id", "ValueAsString": "C1"},
        {"FeatureName": "event_time", "ValueAsString": "2026-10-31T00:00:00Z"},
        {"FeatureName": "x", "ValueAsString": "2.5"},
    ]
    berlin = datetime(2026, 10, 31, 1, tzinfo=timezone(timedelta(hours=1)))
    aware = to_record({"customer_id": "C1", "event_time": berlin}, TYPES, record_identifier="customer_id")
    assert aware[1]["ValueAsString"] == "2026-10-31T00:00:00Z"
    with pytest.raises(RecordError, match="no time zone"):
        to_record({"customer_id": "C1", "event_time": datetime(2026, 10, 31)}, TYPES, record_identifier="customer_id")
    with pytest.raises(RecordError, match="customer_id is null"):
        to_record({"customer_id": None, "event_time": "x"}, TYPES, record_identifier="customer_id")
    with pytest.raises(RecordError, match="Fractional feature x is nan"):
        check_record([{"FeatureName": "x", "ValueAsString": "nan"}], TYPES)
    check_record([{"FeatureName": "x", "ValueAsString": "1e5"}, {"FeatureName": "other", "ValueAsString": "?"}], TYPES)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_adaptive_rate_backs_off_on_throttling_and_recovers_additively() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(clock=clock, sleep=clock.sleep)
    for _ in range(100):  # 100 requests/s, unpaced: no waiting at all
        rate.acquire()
        clock.now += 0.01
    assert rate.rate is None and clock.now == pytest.approx(101.0)

    rate.on_throttle()
    paced = rate.rate
    assert paced is not None
    assert paced == pytest.approx(70.0, rel=0.02)  # 0.7 x the sending rate
    rate.on_throttle()  # same episode (cool-down): no second cut
    assert rate.rate == paced
    start = clock.now
    for _ in range(10):
        rate.acquire()
    assert clock.now - start == pytest.approx(9 / paced)  # requests spaced 1/rate apart
    clock.now = start + 1.0
    rate.on_success()
    assert rate.rate == pytest.approx(100.0, rel=0.02)  # back to the old rate after RECOVERY_SECONDS


def test_adaptive_rate_does_not_collapse_below_half_the_admitted_peak() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(clock=clock, sleep=clock.sleep)
    for _ in range(200):  # the service admits 200 requests/s
        rate.acquire()
        rate.on_success()
        clock.now += 0.005
    for _ in range(20):  # then throttles keep coming whatever the rate (not load-related)
        clock.now += 0.3
        rate.on_throttle()
    assert rate.rate is not None and rate.rate >= 0.5 * 200 * math.exp(-6.0 / 5.0) * 0.99


def test_backoff_is_full_jitter_and_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_seconds(attempt, base_ms=50, max_ms=400, rng=rng) for attempt in range(1, 200)]
    assert all(0 <= d <= 0.4 for d in delays)
    assert max(delays) > 0.3 and min(delays) < 0.05
    assert backoff_seconds(1, base_ms=50, max_ms=400, rng=rng) <= 0.05


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def test_errors_are_classified() -> None:
    assert classify(client_error("ThrottlingException", 400)).kind == "throttle"
    assert classify(client_error("ServiceUnavailable", 503)).kind == "transient"
    assert classify(client_error("Whatever", 500)).kind == "transient"
    assert classify(client_error("ValidationError", 400)).kind == "reject"
    assert classify(client_error("ResourceNotFound", 404)).kind == "fatal"
    assert classify(client_error("AccessDeniedException", 403)).kind == "fatal"
    assert classify(EndpointConnectionError(endpoint_url="http://x")).kind == "unreachable"
    with pytest.raises(ZeroDivisionError):
        classify(ZeroDivisionError())


class ScriptedClient:
    """A fake runtime client answering BatchWriteRecord from a script, PutRecord with success."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.batches: list[list[str]] = []
        self.puts: list[str] = []

    def batch_write_record(self, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803 (boto3's name)
        self.batches.append([e["Record"][0]["ValueAsString"] for e in Entries])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(Entries)

    def put_record(self, FeatureGroupName: str, Record: list[dict[str, str]], TargetStores: list[str]) -> Any:  # noqa: N803
        self.puts.append(Record[0]["ValueAsString"])
        if Record[0]["ValueAsString"] == "bad":
            raise client_error("ValidationError", 400, "bad value")
        return {}


def writer_for(client: Any, tmp_path: Path, **overrides: Any) -> tuple[Writer, DeadLetterWriter]:
    settings = PushSettings(
        dead_letter_root=str(tmp_path), base_backoff_ms=0, max_backoff_ms=0, max_in_flight=1, **overrides
    )
    dead = DeadLetterWriter(str(tmp_path), "run", "part-00000.jsonl", region="us-east-1")
    return Writer(client, settings, dead), dead


def items(*ids: str) -> list[Item]:
    return [Item("g", [{"FeatureName": "customer_id", "ValueAsString": i}]) for i in ids]


def test_batch_retries_only_what_failed_and_dead_letters_rejections(tmp_path: Path) -> None:
    def partial(entries: list[dict[str, Any]]) -> Any:
        by_id = {e["Record"][0]["ValueAsString"]: e for e in entries}
        return {
            "Errors": [
                {"Entry": by_id["a"], "ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
                {"Entry": by_id["b"], "ErrorCode": "ValidationError", "ErrorMessage": "b is invalid"},
            ],
            "UnprocessedEntries": [by_id["c"]],
        }

    client = ScriptedClient(
        partial, client_error("InternalFailure", 500), lambda e: {"Errors": [], "UnprocessedEntries": []}
    )
    writer, dead = writer_for(client, tmp_path)

    counts = writer.run(items("a", "b", "c", "d"))

    assert client.batches == [["a", "b", "c", "d"], ["a", "c"], ["a", "c"]]
    assert (counts.records, counts.written, counts.dead_lettered, counts.retried, counts.throttled) == (4, 3, 1, 4, 1)
    [path] = dead.publish()
    [line] = [json.loads(x) for x in Path(path).read_text().splitlines()]
    assert line == {
        "group": "g",
        "record": items("b")[0].record,
        "reason": "ValidationError: b is invalid",
        "attempts": 1,
    }


def test_a_batch_refused_whole_is_resent_record_by_record(tmp_path: Path) -> None:
    client = ScriptedClient(client_error("ValidationError", 400, "request too large"))
    writer, _ = writer_for(client, tmp_path)

    counts = writer.run(items("ok", "bad", "fine"))

    assert client.puts == ["ok", "bad", "fine"]
    assert (counts.written, counts.dead_lettered, counts.reasons) == (2, 1, {"ValidationError": 1})


def test_retry_budget_is_bounded(tmp_path: Path) -> None:
    client = ScriptedClient(*[client_error("ThrottlingException", 400)] * 3)
    writer, _ = writer_for(client, tmp_path, max_attempts=3)

    counts = writer.run(items("a"))

    assert len(client.batches) == 3
    assert (counts.dead_lettered, counts.retried, counts.throttled) == (1, 2, 3)
    assert counts.reasons == {"RetriesExhausted(ThrottlingException)": 1}


def test_replay_stops_when_the_endpoint_is_unreachable(tmp_path: Path) -> None:
    source = tmp_path / "dl" / "g" / "run" / "part-00000.jsonl"
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps({"group": "g", "record": items("a")[0].record, "reason": "x", "attempts": 1}) + "\n")
    settings = PushSettings(
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        placeholder_credentials=True,
        dead_letter_root=str(tmp_path / "out"),
        max_attempts=2,
        base_backoff_ms=1,
        max_backoff_ms=1,
        connect_timeout_s=1,
    )

    with pytest.raises(PushError, match=r"^replay of .* stopped: endpoint unreachable after 2 attempts"):
        replay_dead_letters(str(source), settings=settings)
    assert not (tmp_path / "out").exists()


def test_replay_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "dl" / "customer_profile" / "run-7"
    run_dir.mkdir(parents=True)
    good = {"customer_id": "C1", "event_time": "2026-10-31T00:00:00Z", "age": "30"}
    nan = {"customer_id": "C2", "event_time": "2026-10-31T00:00:00Z", "age": "nan"}
    lines = [
        {"group": "customer_profile", "record": [{"FeatureName": k, "ValueAsString": v} for k, v in r.items()]}
        for r in (good, nan)
    ]
    (run_dir / "part-00001.jsonl").write_text(
        "".join(json.dumps({**x, "reason": "r", "attempts": 1}) + "\n" for x in lines)
    )
    assert default_dead_letter_root(str(run_dir)) == str(tmp_path / "dl")
    assert default_dead_letter_root(f"{run_dir}/part-00001.jsonl") == str(tmp_path / "dl")
    assert default_dead_letter_root("s3://b/dl/g/run/") == "s3://b/dl"

    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as store:
        parser = argparse.ArgumentParser()
        REGISTER.add_arguments(parser)
        assert REGISTER.run(parser.parse_args(["--endpoint-url", store.endpoint_url])) == 0
        parser = argparse.ArgumentParser()
        REPLAY.add_arguments(parser)
        args = parser.parse_args(["--endpoint-url", store.endpoint_url, "--path", str(run_dir)])
        capsys.readouterr()

        assert REPLAY.run(args) == 1  # the NaN age is refused again (Integral)

    out, err = capsys.readouterr()
    result = json.loads(out)
    assert (result["records"], result["written"], result["dead_lettered"]) == (2, 1, 1)
    assert result["dead_letter_path"].startswith(str(tmp_path / "dl" / "customer_profile" / "replay-"))
    assert "replay failed: replay of" in err and "InvalidValue x1" in err
    [line] = [json.loads(x) for x in next(Path(result["dead_letter_path"]).glob("*.jsonl")).read_text().splitlines()]
    assert line["record"][0]["ValueAsString"] == "C2" and "Integral feature age has 'nan'" in line["reason"]
