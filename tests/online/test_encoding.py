"""The push's fast path renders the same records, and botocore sends the same requests, as the generic path.

The skew check compares online values with offline ones, so every ValueAsString must stay
byte-identical to :func:`~features.online.records.to_record`'s. Expected strings are typed by
hand; the request comparison uses botocore's own serialiser as the oracle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from features.online.client import PREBUILT_BODY, runtime_client, takes_prebuilt_bodies
from features.online.records import EncodedItem, RecordEncoder, RecordError, to_record

COLUMNS = ["customer_id", "event_time", "n", "x", "y", "s"]
SPARK_TYPES = {"customer_id": "string", "event_time": "string", "n": "bigint", "x": "double", "y": "int", "s": "string"}
TYPES: dict[str, Any] = {
    "customer_id": "String",
    "event_time": "String",
    "n": "Integral",
    "x": "Fractional",
    "y": "Fractional",
    "s": "String",
}
T = "2026-10-31T00:00:00Z"


def encoder(ttl: Any = None) -> RecordEncoder:
    return RecordEncoder(
        group="g",
        columns=COLUMNS,
        spark_types=SPARK_TYPES,
        types=TYPES,
        record_identifier="customer_id",
        ttl=ttl,
        target_stores=["OnlineStore"],
    )


def values(item: EncodedItem) -> dict[str, str]:
    return {f["FeatureName"]: f["ValueAsString"] for f in item.record}


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("n", 0, "0"),
        ("n", -1, "-1"),
        ("n", 2**63 - 1, "9223372036854775807"),
        ("n", -(2**63), "-9223372036854775808"),
        ("x", 0.0, "0.0"),
        ("x", -0.0, "-0.0"),
        ("x", 1e-7, "1e-07"),
        ("x", 1e16, "1e+16"),
        ("x", 123456789012345.6, "123456789012345.6"),
        ("x", 0.1 + 0.2, "0.30000000000000004"),
        ("x", 1 / 3, "0.3333333333333333"),
        ("x", 5e-324, "5e-324"),
        ("x", 1.7976931348623157e308, "1.7976931348623157e+308"),
        ("x", 100.0, "100.0"),
        ("y", 7, "7.0"),
        ("y", -(2**31), "-2147483648.0"),
        ("s", "Zürich", "Zürich"),
        ("s", 'quote " and \\ backslash', 'quote " and \\ backslash'),
        ("s", "tab\tnewline\n\x00\u2028", "tab\tnewline\n\x00\u2028"),
        ("s", "", ""),
        ("s", "100%d %s %%", "100%d %s %%"),
        ("s", "😀", "😀"),
    ],
)
def test_values_render_as_typed_by_hand_and_as_the_generic_path(column: str, value: Any, text: str) -> None:
    row = {"customer_id": "C1", "event_time": T, "n": 1, "x": 2.5, "y": 3, "s": "a", column: value}
    items, bad = encoder().encode([tuple(row[c] for c in COLUMNS)])
    assert bad == []
    assert values(items[0])[column] == text
    assert items[0].record == to_record(row, TYPES, record_identifier="customer_id")


def test_nulls_are_left_out_in_column_order() -> None:
    rows = [
        ("C1", T, None, 1.5, None, "a"),
        ("C2", T, 2, None, 4, None),
        ("C3", T, None, None, None, None),
    ]
    items, bad = encoder().encode(rows)
    assert bad == []
    assert [item.record for item in items] == [
        [
            {"FeatureName": "customer_id", "ValueAsString": "C1"},
            {"FeatureName": "event_time", "ValueAsString": T},
            {"FeatureName": "x", "ValueAsString": "1.5"},
            {"FeatureName": "s", "ValueAsString": "a"},
        ],
        [
            {"FeatureName": "customer_id", "ValueAsString": "C2"},
            {"FeatureName": "event_time", "ValueAsString": T},
            {"FeatureName": "n", "ValueAsString": "2"},
            {"FeatureName": "y", "ValueAsString": "4.0"},
        ],
        [
            {"FeatureName": "customer_id", "ValueAsString": "C3"},
            {"FeatureName": "event_time", "ValueAsString": T},
        ],
    ]


def test_rows_the_store_would_mis_serve_are_returned_as_bad_and_the_rest_encoded() -> None:
    rows = [
        ("C0", T, 1, 1.0, 1, "a"),
        ("C1", T, 1, math.nan, 1, "a"),
        (None, T, 1, 1.0, 1, "a"),
        ("C3", None, 1, 1.0, 1, "a"),
        ("C4", T, 1, -math.inf, 1, "a"),
        ("C5", T, 1, 1e308, 1, "a"),
        ("C6", T, 1, 1e308, 1, "a"),  # finite values whose sum overflows are still fine
    ]
    items, bad = encoder().encode(rows)
    assert bad == [1, 2, 3, 4]
    assert [values(i)["customer_id"] for i in items] == ["C0", "C5", "C6"]
    for index in bad:  # the caller re-renders them with to_record, whose message is the reason
        with pytest.raises(RecordError):
            to_record(dict(zip(COLUMNS, rows[index], strict=True)), TYPES, record_identifier="customer_id")


def test_a_column_without_a_fast_path_is_checked_value_by_value() -> None:
    from decimal import Decimal

    enc = RecordEncoder(
        group="g",
        columns=["customer_id", "event_time", "n", "x"],
        spark_types={"customer_id": "string", "event_time": "string", "n": "decimal(10,0)", "x": "decimal(10,2)"},
        types={"customer_id": "String", "event_time": "String", "n": "Integral", "x": "Fractional"},
        record_identifier="customer_id",
        ttl=None,
        target_stores=["OnlineStore"],
    )
    items, bad = enc.encode([("C1", T, Decimal("7"), Decimal("12.50")), ("C2", T, Decimal("7.5"), None)])
    assert bad == [1]
    assert values(items[0]) == {"customer_id": "C1", "event_time": T, "n": "7", "x": "12.5"}


def test_body_carries_target_stores_and_ttl() -> None:
    items, _ = encoder({"Unit": "Days", "Value": 30}).encode([("C1", T, 1, 1.0, 1, "a")])
    body = json.loads(items[0].body)
    assert body["TargetStores"] == ["OnlineStore"]
    assert body["TtlDuration"] == {"Unit": "Days", "Value": 30}
    assert items[0].ttl == {"Unit": "Days", "Value": 30}
    assert json.loads(items[0].entry())["FeatureGroupName"] == "g"


class _Canned:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


def _sent_requests() -> tuple[Any, list[Any]]:
    """A runtime client that records each request as signed and answers without the network."""
    client = runtime_client(endpoint_url="http://127.0.0.1:1", region="us-east-1", placeholder_credentials=True)
    sent: list[Any] = []

    def capture(request: Any, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        body = b"" if kwargs["event_name"].endswith("PutRecord") else b'{"Errors":[],"UnprocessedEntries":[]}'
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Canned(body))

    client.meta.events.register("before-send.sagemaker-featurestore-runtime.*", capture)
    return client, sent


def _comparable(request: Any) -> tuple[Any, ...]:
    volatile = {"Authorization", "X-Amz-Date", "User-Agent", "amz-sdk-invocation-id", "amz-sdk-request"}
    headers = {k: v for k, v in request.headers.items() if k not in volatile}
    headers.pop("Content-Length", None)
    return request.method, request.url, headers, json.loads(request.body)


def test_prebuilt_bodies_send_what_botocore_serialises_signed_over_the_new_body() -> None:
    client, sent = _sent_requests()
    assert takes_prebuilt_bodies(client)
    rows = [("C1", T, 1, 0.1, 2, 'Zürich "q"'), ("C2", T, None, None, None, None)]
    items, _ = encoder({"Unit": "Hours", "Value": 5}).encode(rows)
    entries = [json.loads(i.entry()) for i in items]

    client.batch_write_record(Entries=entries)
    client.batch_write_record(**{PREBUILT_BODY: ('{"Entries":[' + ",".join(i.entry() for i in items) + "]}").encode()})
    client.put_record(**entries[0])
    client.put_record(FeatureGroupName="g", **{PREBUILT_BODY: items[0].body.encode()})

    generic_batch, prebuilt_batch, generic_put, prebuilt_put = sent
    assert _comparable(prebuilt_batch) == _comparable(generic_batch)
    assert _comparable(prebuilt_put) == _comparable(generic_put)
    for request in (prebuilt_batch, prebuilt_put):
        assert int(request.headers["Content-Length"]) == len(request.body)
        assert b"Signature=" in request.headers["Authorization"]


def test_prebuilt_signature_covers_the_body_actually_sent() -> None:
    """Re-sign the sent request with botocore's SigV4 signer: the signature must match."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    client, sent = _sent_requests()
    items, _ = encoder().encode([("C1", T, 1, 0.5, 2, "a")])
    client.batch_write_record(**{PREBUILT_BODY: ('{"Entries":[' + items[0].entry() + "]}").encode()})
    request = sent[0]

    def signature(body: bytes) -> str:
        signed = ("Content-Type", "X-Amz-Date")  # SignedHeaders=content-type;host;x-amz-date
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items() if k in signed}
        replay = AWSRequest(method=request.method, url=request.url, data=body, headers=headers)
        replay.context["timestamp"] = headers["X-Amz-Date"]
        signer = SigV4Auth(Credentials("local-runtime", "local-runtime"), "sagemaker", "us-east-1")
        return str(signer.signature(signer.string_to_sign(replay, signer.canonical_request(replay)), replay))

    authorization = request.headers["Authorization"].decode()
    assert "SignedHeaders=content-type;host;x-amz-date," in authorization
    assert f"Signature={signature(request.body)}" in authorization
    assert f"Signature={signature(b'{}')}" not in authorization  # the body botocore serialised itself


class PrebuiltClient:
    """A fake runtime client that takes pre-rendered bodies, like ``runtime_client``'s, from a script."""

    takes_prebuilt_bodies = True

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.batches: list[list[str]] = []
        self.puts: list[tuple[str, str]] = []

    def batch_write_record(self, **kwargs: Any) -> Any:
        entries = json.loads(kwargs.pop(PREBUILT_BODY))["Entries"]
        assert kwargs == {}
        self.batches.append([e["Record"][0]["ValueAsString"] for e in entries])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(entries)

    def put_record(self, **kwargs: Any) -> Any:
        body = json.loads(kwargs.pop(PREBUILT_BODY))
        assert set(kwargs) == {"FeatureGroupName"} and set(body) == {"Record", "TargetStores"}
        value = body["Record"][0]["ValueAsString"]
        self.puts.append((kwargs["FeatureGroupName"], value))
        if value == "bad":
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ValidationError", "Message": "bad value"}}, "PutRecord")
        return {}


def _encoded(*ids: str) -> list[EncodedItem]:
    enc = RecordEncoder(
        group="g",
        columns=["customer_id"],
        spark_types={"customer_id": "string"},
        types={"customer_id": "String"},
        record_identifier="customer_id",
        ttl=None,
        target_stores=["OnlineStore"],
    )
    items, bad = enc.encode([(i,) for i in ids])
    assert bad == []
    return items


def _writer(client: Any, tmp_path: Any) -> tuple[Any, Any]:
    from features.online.deadletter import DeadLetterWriter
    from features.online.settings import PushSettings
    from features.online.writer import Writer

    settings = PushSettings(dead_letter_root=str(tmp_path), base_backoff_ms=0, max_backoff_ms=0, max_in_flight=1)
    dead = DeadLetterWriter(str(tmp_path), "run", "part-00000.jsonl", region="us-east-1")
    return Writer(client, settings, dead), dead


def test_encoded_batches_retry_what_failed_and_dead_letter_the_decoded_record(tmp_path: Any) -> None:
    from botocore.exceptions import ClientError

    def partial(entries: list[dict[str, Any]]) -> Any:
        by_id = {e["Record"][0]["ValueAsString"]: e for e in entries}
        return {
            "Errors": [
                {"Entry": by_id["a"], "ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
                {"Entry": by_id["b"], "ErrorCode": "ValidationError", "ErrorMessage": "b is invalid"},
            ],
            "UnprocessedEntries": [by_id["c"]],
        }

    error = ClientError({"Error": {"Code": "InternalFailure"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "x")
    client = PrebuiltClient(partial, error, lambda e: {"Errors": [], "UnprocessedEntries": []})
    writer, dead = _writer(client, tmp_path)

    counts = writer.run(_encoded("a", "b", "c", "d"))

    assert client.batches == [["a", "b", "c", "d"], ["a", "c"], ["a", "c"]]
    assert (counts.records, counts.written, counts.dead_lettered, counts.retried, counts.throttled) == (4, 3, 1, 4, 1)
    [path] = dead.publish()
    [line] = [json.loads(x) for x in Path(path).read_text().splitlines()]
    assert line == {
        "group": "g",
        "record": [{"FeatureName": "customer_id", "ValueAsString": "b"}],
        "reason": "ValidationError: b is invalid",
        "attempts": 1,
    }


def test_an_encoded_batch_refused_whole_is_resent_as_prebuilt_put_records(tmp_path: Any) -> None:
    from botocore.exceptions import ClientError

    client = PrebuiltClient(ClientError({"Error": {"Code": "ValidationError", "Message": "too large"}}, "x"))
    writer, _ = _writer(client, tmp_path)

    counts = writer.run(_encoded("ok", "bad", "fine"))

    assert client.puts == [("g", "ok"), ("g", "bad"), ("g", "fine")]
    assert (counts.records, counts.written, counts.dead_lettered, counts.reasons) == (3, 2, 1, {"ValidationError": 1})


def test_a_client_without_prebuilt_bodies_gets_the_decoded_entries(tmp_path: Any) -> None:
    sent: list[Any] = []

    class Plain:
        def batch_write_record(self, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803 (boto3's name)
            sent.extend(Entries)
            return {"Errors": [], "UnprocessedEntries": []}

    writer, _ = _writer(Plain(), tmp_path)
    counts = writer.run(_encoded("a", "b"))
    assert counts.written == 2
    assert sent == [
        {
            "FeatureGroupName": "g",
            "Record": [{"FeatureName": "customer_id", "ValueAsString": v}],
            "TargetStores": ["OnlineStore"],
        }
        for v in ("a", "b")
    ]
