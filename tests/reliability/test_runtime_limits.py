"""Issue 10, item 6: the local runtime refuses what the service refuses, and stalled clients cannot
starve it.

Before the fix a 100k-deep JSON body was answered 500 InternalFailure (which clients retry) with a
RecursionError in the log, a 16 MB String feature and a 60,000-character record identifier were
stored, and 350 stalled connections held 353 threads for over a minute. Each limit below is the
service's, from its botocore model (``ValueAsString`` max 358400, ``FeatureName`` max 64 and its
pattern, ``FeatureGroupNameOrArn`` max 150, ``TtlDurationValue`` an integer) or from the
developer guide's quotas (record 350 KB, record identifier 2 KB); docs/online-store.md lists them.
Everything goes over HTTP to a runtime on 127.0.0.1: boto3 for the API, raw sockets for bodies
boto3 cannot produce and for clients that stall.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from botocore.exceptions import ClientError
from featurestore_local import LocalFeatureStore

from tests.featurestore_local.test_runtime import FEATURES, GROUP, client, create_group, error_of, record

#: Wall-clock bound of any one test here; the slowest (stalled connections) needs about 3 s.
DEADLINE_SECONDS = 60
EVENT = "2024-01-01T00:00:00Z"
WIDE = "wide"  # a group with a second free String feature and a String list
WIDE_FEATURES = [
    *FEATURES,
    {"FeatureName": "note", "FeatureType": "String"},
    {"FeatureName": "tags", "FeatureType": "String", "CollectionType": "List"},
]


@pytest.fixture(autouse=True)
def deadline() -> Iterator[None]:
    """Fail a test that hangs instead of letting it block the suite."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"test ran longer than {DEADLINE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalFeatureStore]:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as server:
        yield server


@pytest.fixture
def sm(store: LocalFeatureStore) -> Any:
    return client("sagemaker", store.endpoint_url)


@pytest.fixture
def rt(store: LocalFeatureStore, sm: Any) -> Any:
    create_group(sm)
    sm.create_feature_group(
        FeatureGroupName=WIDE,
        RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=WIDE_FEATURES,
        OnlineStoreConfig={"EnableOnlineStore": True},
    )
    return client("sagemaker-featurestore-runtime", store.endpoint_url)


def wide(customer_id: str = "c1", **values: Any) -> list[dict[str, Any]]:
    """A ``wide`` record; a list value becomes ``ValueAsStringList``."""
    features = [
        {"FeatureName": "customer_id", "ValueAsString": customer_id},
        {"FeatureName": "event_time", "ValueAsString": EVENT},
    ]
    for name, value in values.items():
        member = "ValueAsStringList" if isinstance(value, list) else "ValueAsString"
        features.append({"FeatureName": name, member: value})
    return features


def rejected(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as excinfo:
        call()
    return error_of(excinfo)


# -- limits on what a record may hold ------------------------------------------

PUT_LIMITS = [
    pytest.param(
        wide("c" * 60_000),
        "Record identifier customer_id is 60000 bytes; the maximum size of a record identifier is 2048 bytes (2 KB)",
        id="identifier-60000-chars",
    ),
    pytest.param(
        wide("c" * 2049),
        "Record identifier customer_id is 2049 bytes; the maximum size of a record identifier is 2048 bytes (2 KB)",
        id="identifier-2049-bytes",
    ),
    pytest.param(
        wide("é" * 1025),  # 1025 characters, 2050 bytes in UTF-8: the quota is a size
        "Record identifier customer_id is 2050 bytes; the maximum size of a record identifier is 2048 bytes (2 KB)",
        id="identifier-2050-utf8-bytes",
    ),
    pytest.param(
        wide(note="x" * 16_000_000),
        "1 validation error detected: Value at 'record.3.member.valueAsString' failed to satisfy constraint: "
        "Member must have length less than or equal to 358400",
        id="string-16MB",
    ),
    pytest.param(
        wide(note="x" * 358_401),
        "1 validation error detected: Value at 'record.3.member.valueAsString' failed to satisfy constraint: "
        "Member must have length less than or equal to 358400",
        id="string-358401-chars",
    ),
    pytest.param(
        # The longest value the model allows still makes the record too big: 13 + 30 + 358404 bytes.
        wide(note="x" * 358_400),
        "Record is 358447 bytes; the maximum size of a record is 358400 bytes (350 KB)",
        id="record-358447-bytes",
    ),
    pytest.param(
        # customer_id+c1 (13) + event_time+EVENT (30) + note+200000 (200004) + tags+200000 (200004)
        wide(note="x" * 200_000, tags=["y" * 200_000]),
        "Record is 400051 bytes; the maximum size of a record is 358400 bytes (350 KB)",
        id="record-400051-bytes",
    ),
    pytest.param(
        wide(tags=[""] * 358_401),
        "1 validation error detected: Value at 'record.3.member.valueAsStringList' failed to satisfy constraint: "
        "Member must have length less than or equal to 358400",
        id="list-358401-elements",
    ),
    pytest.param(
        [*wide(), {"FeatureName": "f" * 65, "ValueAsString": "x"}],
        "1 validation error detected: Value at 'record.3.member.featureName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64",
        id="feature-name-65-chars",
    ),
    pytest.param(
        [*wide(), {"FeatureName": "bad name", "ValueAsString": "x"}],
        "1 validation error detected: Value 'bad name' at 'record.3.member.featureName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}",
        id="feature-name-pattern",
    ),
]


@pytest.mark.parametrize(("features", "message"), PUT_LIMITS)
def test_put_record_over_a_limit_is_a_validation_error(rt: Any, features: list[dict[str, Any]], message: str) -> None:
    code, status, text = rejected(lambda: rt.put_record(FeatureGroupName=WIDE, Record=features))
    assert (code, status, text) == ("ValidationError", 400, message)
    assert rt.list_records(FeatureGroupName=WIDE)["RecordIdentifiers"] == []


def test_records_at_the_limits_are_accepted(rt: Any) -> None:
    at_limits = wide("é" * 1024, note="x" * 150_000, tags=["y" * 100_000, "z" * 100_000])  # 2048-byte identifier
    rt.put_record(FeatureGroupName=WIDE, Record=at_limits)
    got = rt.get_record(FeatureGroupName=WIDE, RecordIdentifierValueAsString="é" * 1024)
    assert got["Record"] == at_limits


@pytest.mark.parametrize(
    ("request_members", "message"),
    [
        pytest.param(
            {"FeatureGroupName": "g" * 151, "Record": record("c1", EVENT)},
            "1 validation error detected: Value at 'featureGroupName' failed to satisfy constraint: "
            "Member must have length less than or equal to 150",
            id="group-name-151-chars",
        ),
        pytest.param(
            {
                "FeatureGroupName": GROUP,
                "Record": record("c1", EVENT),
                "TtlDuration": {"Unit": "Weeks", "Value": 2**31},
            },
            "1 validation error detected: Value '2147483648' at 'ttlDuration.value' failed to satisfy constraint: "
            "Member must have value less than or equal to 2147483647",
            id="ttl-value-beyond-int32",
        ),
    ],
)
def test_put_record_members_over_a_limit(rt: Any, request_members: dict[str, Any], message: str) -> None:
    assert rejected(lambda: rt.put_record(**request_members)) == ("ValidationError", 400, message)


IDENTIFIER_60000 = "Record identifier RecordIdentifierValueAsString is 60000 bytes; the maximum size of a record identifier is 2048 bytes (2 KB)"


@pytest.mark.parametrize(
    ("operation", "request_members", "message"),
    [
        pytest.param(
            "get_record",
            {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "c" * 60_000},
            IDENTIFIER_60000,
            id="get-identifier-60000",
        ),
        pytest.param(
            "get_record",
            {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "c1", "FeatureNames": ["f" * 65]},
            "1 validation error detected: Value at 'featureNames.1.member' failed to satisfy constraint: "
            "Member must have length less than or equal to 64",
            id="get-feature-name-65",
        ),
        pytest.param(
            "delete_record",
            {"FeatureGroupName": GROUP, "RecordIdentifierValueAsString": "c" * 60_000, "EventTime": EVENT},
            IDENTIFIER_60000,
            id="delete-identifier-60000",
        ),
        pytest.param(
            "batch_get_record",
            {"Identifiers": [{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["c1", "c" * 60_000]}]},
            "Record identifier Identifiers.1.RecordIdentifiersValueAsString.2 is 60000 bytes; "
            "the maximum size of a record identifier is 2048 bytes (2 KB)",
            id="batch-get-identifier-60000",
        ),
        pytest.param(
            "batch_write_record",
            {
                "Entries": [
                    {"FeatureGroupName": WIDE, "Record": wide("a")},
                    {"FeatureGroupName": WIDE, "Record": wide("b", note="x" * 358_401)},
                ]
            },
            "1 validation error detected: Value at 'entries.2.member.record.3.member.valueAsString' failed to "
            "satisfy constraint: Member must have length less than or equal to 358400",
            id="batch-write-string-358401",
        ),
    ],
)
def test_other_operations_over_a_limit(rt: Any, operation: str, request_members: dict[str, Any], message: str) -> None:
    assert rejected(lambda: getattr(rt, operation)(**request_members)) == ("ValidationError", 400, message)
    assert rt.list_records(FeatureGroupName=WIDE)["RecordIdentifiers"] == []


def test_batch_write_reports_an_oversized_record_as_its_entry_error(rt: Any) -> None:
    """A size quota fails the one record, as a bad value does; the rest of the batch is written."""
    big = {"FeatureGroupName": WIDE, "Record": wide("big", note="x" * 200_000, tags=["y" * 200_000])}
    response = rt.batch_write_record(Entries=[{"FeatureGroupName": WIDE, "Record": wide("a")}, big])
    assert response["UnprocessedEntries"] == []
    assert [(e["ErrorCode"], e["ErrorMessage"]) for e in response["Errors"]] == [
        ("ValidationError", "Record is 400052 bytes; the maximum size of a record is 358400 bytes (350 KB)")
    ]
    assert "Record" in rt.get_record(FeatureGroupName=WIDE, RecordIdentifierValueAsString="a")
    assert "Record" not in rt.get_record(FeatureGroupName=WIDE, RecordIdentifierValueAsString="big")


def test_feature_name_longer_than_64_is_refused_at_creation(sm: Any) -> None:
    name = "a" + "_" * 70 + "b"  # matches the pattern's characters, but 72 long
    code, status, message = rejected(
        lambda: sm.create_feature_group(
            FeatureGroupName="long_names",
            RecordIdentifierFeatureName="customer_id",
            EventTimeFeatureName="event_time",
            FeatureDefinitions=[*FEATURES, {"FeatureName": name, "FeatureType": "String"}],
            OnlineStoreConfig={"EnableOnlineStore": True},
        )
    )
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        f"Invalid FeatureName '{name}': a feature name is 1 to 64 characters matching [a-zA-Z0-9]([-_]*[a-zA-Z0-9]){{0,63}}"
    )


# -- bodies that are not a request -----------------------------------------------


def raw(
    store: LocalFeatureStore, method: str, path: str, body: bytes, **headers: str
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection(store.host, store.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), json.loads(payload) if payload else None
    finally:
        conn.close()


RUNTIME_PUT = ("PUT", f"/FeatureGroup/{GROUP}", {})
CONTROL = ("POST", "/", {"X-Amz-Target": "SageMaker.CreateFeatureGroup", "Content-Type": "application/x-amz-json-1.1"})
VALID_PUT = {"Record": record("c1", EVENT)}


@pytest.mark.parametrize("route", [RUNTIME_PUT, CONTROL], ids=["runtime", "control-plane"])
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"[" * 100_000, "nested deeper than 32 levels", id="100k-deep-arrays"),
        pytest.param(b'{"a":' * 100_000, "nested deeper than 32 levels", id="100k-deep-objects"),
        pytest.param(b'{"Record": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper than 32 levels", id="41-deep"),
        pytest.param(b'{"Record": 1' + b"1" * 5000 + b"}", "Malformed JSON body", id="5001-digit-integer"),
        pytest.param(json.dumps(VALID_PUT).encode("utf-16"), "not UTF-8", id="utf-16"),
        # ASCII in UTF-16-LE is valid UTF-8 (NUL bytes and all), just not JSON.
        pytest.param(json.dumps(VALID_PUT).encode("utf-16-le"), "Malformed JSON body", id="utf-16-le-no-bom"),
        pytest.param(json.dumps(VALID_PUT).encode("utf-32"), "not UTF-8", id="utf-32"),
        pytest.param(
            json.dumps({"Record": record("\ud800", EVENT)}).encode(), "unpaired UTF-16 surrogate", id="lone-surrogate"
        ),
    ],
)
def test_unparseable_body_is_a_serialization_exception(
    rt: Any,
    store: LocalFeatureStore,
    caplog: pytest.LogCaptureFixture,
    route: tuple[str, str, dict[str, str]],
    body: bytes,
    fragment: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="featurestore_local")
    method, path, headers = route
    status, response_headers, payload = raw(store, method, path, body, **headers)
    assert (status, payload["__type"], response_headers["x-amzn-ErrorType"]) == (
        400,
        "SerializationException",
        "SerializationException",
    )
    assert fragment in payload["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "RecursionError" not in caplog.text
    assert store.stats()["errors_5xx"] == 0
    assert "Record" not in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")


def control_request(**overrides: Any) -> dict[str, Any]:
    return {
        "FeatureGroupName": "typed",
        "RecordIdentifierFeatureName": "customer_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": FEATURES,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        **overrides,
    }


DEEP_TOKEN = base64.urlsafe_b64encode(b"[" * 5000).decode()  # 6668 characters: within NextToken's 8192


@pytest.mark.parametrize(
    ("route", "members", "expected"),
    [
        pytest.param(
            RUNTIME_PUT,
            {**VALID_PUT, "TtlDuration": {"Unit": [], "Value": 1}},
            (400, "ValidationError"),
            id="ttl-unit-a-list",
        ),
        pytest.param(
            ("POST", f"/FeatureGroup/{GROUP}/ListRecords", {}),
            {"NextToken": DEEP_TOKEN},
            (400, "ValidationError"),
            id="deep-next-token",
        ),
        pytest.param(CONTROL, control_request(Description=5), (400, "ValidationException"), id="description-a-number"),
        pytest.param(
            CONTROL,
            control_request(OfflineStoreConfig={"S3StorageConfig": "s3://bucket"}),
            (400, "ValidationException"),
            id="s3-storage-config-a-string",
        ),
        pytest.param(
            CONTROL,
            control_request(
                FeatureDefinitions=[
                    *FEATURES,
                    {
                        "FeatureName": "v",
                        "FeatureType": "Fractional",
                        "CollectionType": "Vector",
                        "CollectionConfig": "x",
                    },
                ]
            ),
            (400, "ValidationException"),
            id="collection-config-a-string",
        ),
        pytest.param(
            CONTROL,
            control_request(
                OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Weeks", "Value": 10**400}}
            ),
            (400, "ValidationException"),
            id="ttl-value-401-digits",
        ),
    ],
)
def test_wrong_member_types_are_a_400_not_a_500(
    rt: Any,
    store: LocalFeatureStore,
    route: tuple[str, str, dict[str, str]],
    members: dict[str, Any],
    expected: tuple[int, str],
) -> None:
    method, path, headers = route
    status, _, payload = raw(store, method, path, json.dumps(members).encode(), **headers)
    assert (status, payload["__type"]) == expected
    assert store.stats()["errors_5xx"] == 0


def test_batch_get_with_unhashable_feature_names_is_an_entry_error(rt: Any, store: LocalFeatureStore) -> None:
    body = {
        "Identifiers": [{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["c1"], "FeatureNames": [{}]}]
    }
    status, _, payload = raw(store, "POST", "/BatchGetRecord", json.dumps(body).encode())
    assert status == 200
    assert [(e["RecordIdentifierValueAsString"], e["ErrorCode"]) for e in payload["Errors"]] == [
        ("c1", "ValidationError")
    ]


def test_expiry_past_year_9999_is_still_answered(rt: Any) -> None:
    rt.put_record(
        FeatureGroupName=GROUP, Record=record("late", "9999-12-31T00:00:00Z"), TtlDuration={"Unit": "Weeks", "Value": 1}
    )
    got = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="late", ExpirationTimeResponse="Enabled")
    assert got["ExpiresAt"] == "9999-12-31T23:59:59.999Z"


def test_escaped_surrogate_pair_is_text(rt: Any, store: LocalFeatureStore) -> None:
    """How boto3 sends an emoji (json.dumps escapes it as a pair), next to the lone half refused above."""
    body = json.dumps({"Record": record("c1", EVENT, segment="\U0001f600")}).encode()
    assert b"\\ud83d\\ude00" in body
    assert raw(store, *RUNTIME_PUT[:2], body)[0] == 200
    got = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
    assert {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]}["segment"] == "\U0001f600"


def test_deep_body_to_the_admin_endpoint_is_a_400(store: LocalFeatureStore) -> None:
    status, _, payload = raw(store, "POST", "/_local/faults", b"[" * 100_000)
    assert status == 400 and "nested deeper than 32 levels" in payload["message"]


def test_oversized_body_is_answered_413_not_reset(rt: Any, store: LocalFeatureStore) -> None:
    """A body past the 16 MiB cap is refused with an answer the client reads, so the push
    dead-letters it as a rejection instead of retrying a connection reset."""
    started = time.monotonic()
    code, status, message = rejected(lambda: rt.put_record(FeatureGroupName=WIDE, Record=wide(note="x" * (17 << 20))))
    assert (code, status) == ("ValidationError", 413)
    assert message.startswith("Request body is 178")  # 17 MiB of value plus the JSON around it
    assert message.endswith(" bytes; the local runtime reads at most 16777216 bytes")
    assert time.monotonic() - started < 10

    status, _, payload = raw(store, "PUT", f"/FeatureGroup/{WIDE}", b"x" * (20 << 20))
    assert (status, payload["__type"]) == (413, "ValidationError")

    conn = http.client.HTTPConnection(store.host, store.port, timeout=5)
    try:  # a declared terabyte is refused from the headers alone
        conn.putrequest("PUT", f"/FeatureGroup/{WIDE}")
        conn.putheader("Content-Length", str(1 << 40))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["message"].startswith("Request body is 1099511627776 bytes")
    finally:
        conn.close()


# -- clients that stall ---------------------------------------------------------


def stalled_connections(store: LocalFeatureStore, count: int) -> list[socket.socket]:
    """Half of them send nothing, half send the headers and part of a declared body."""
    sockets = []
    for i in range(count):
        sock = socket.create_connection((store.host, store.port), timeout=5)
        if i % 2:
            sock.sendall(f"PUT /FeatureGroup/{GROUP} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
        sockets.append(sock)
    return sockets


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(1)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_stalled_connections_are_cut_after_the_socket_timeout(tmp_path: Path) -> None:
    baseline = threading.active_count()
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0, socket_timeout=1.0) as store:
        sm = client("sagemaker", store.endpoint_url)
        create_group(sm)
        stalled = stalled_connections(store, 50)
        try:
            assert wait_for(lambda: store.stats()["connections_open"] >= 50, 5)
            rt = client("sagemaker-featurestore-runtime", store.endpoint_url)
            started = time.monotonic()
            rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT))
            assert time.monotonic() - started < 1
            # 1 s socket timeout: every stalled connection and its thread are gone well within 3 s.
            assert wait_for(lambda: store.stats()["connections_open"] == 0, 3)
            assert all(closed_by_server(sock) for sock in stalled)
            assert wait_for(lambda: threading.active_count() <= baseline + 1, 2)  # + the serving thread
        finally:
            for sock in stalled:
                sock.close()


def test_connections_beyond_the_limit_get_503_at_once(tmp_path: Path) -> None:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0, socket_timeout=1.0, max_connections=4) as store:
        create_group(client("sagemaker", store.endpoint_url))
        assert wait_for(lambda: store.stats()["connections_open"] == 0, 3)
        stalled = stalled_connections(store, 4)
        try:
            assert wait_for(lambda: store.stats()["connections_open"] == 4, 5)
            rt = client("sagemaker-featurestore-runtime", store.endpoint_url)
            started = time.monotonic()
            code, status, message = rejected(lambda: rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT)))
            assert time.monotonic() - started < 1
            assert (code, status) == ("ServiceUnavailable", 503)
            assert message == "The local runtime is serving its maximum of 4 connections (--max-connections)"
            assert store.stats()["connections_refused"] == 1

            assert wait_for(lambda: store.stats()["connections_open"] == 0, 3)
            rt.put_record(FeatureGroupName=GROUP, Record=record("c1", EVENT))
            assert "Record" in rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="c1")
        finally:
            for sock in stalled:
                sock.close()
