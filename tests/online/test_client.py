"""Which credentials and which write API the clients use: decided on the driver, never guessed in executors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from featurestore_local import LocalFeatureStore

from features.config import OnlineStoreConf
from features.online import client
from features.online.client import (
    control_client,
    get_record,
    has_batch_write_record,
    placeholder_credentials_needed,
    runtime_client,
    usable_write_api,
)
from features.online.embedded import online_endpoint
from features.online.registration import register_groups
from features.online.settings import PushSettings, is_loopback_endpoint
from features.registry import all_groups

PROFILE = all_groups()["customer_profile"]


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8765", True),
        ("http://127.8.9.10:80", True),  # all of 127.0.0.0/8
        ("http://localhost:8765", True),
        ("http://LOCALHOST:1", True),
        ("http://[::1]:8765", True),
        (None, False),  # AWS itself
        ("https://featurestore-runtime.sagemaker.us-east-1.amazonaws.com", False),
        ("http://10.0.0.5:8765", False),
        ("http://127.0.0.1.example.com:8765", False),  # a name is never resolved, nor trusted
        ("http://localhost.example.com", False),
        ("http://[::2]:8765", False),
    ],
)
def test_loopback_endpoints(url: str | None, loopback: bool) -> None:
    assert is_loopback_endpoint(url) is loopback


def authorization(built: Any) -> list[str]:
    """The Authorization header of every request ``built`` sends (botocore's own event hook)."""
    seen: list[str] = []
    built.meta.events.register(
        "before-send", lambda request, **_: seen.append(request.headers["Authorization"].decode())
    )
    return seen


@pytest.mark.usefixtures("no_aws_credentials")
def test_driver_clients_reach_the_local_runtime_without_credentials(tmp_path: Path) -> None:
    with LocalFeatureStore(db_path=tmp_path / "fs.sqlite", port=0) as store:
        assert placeholder_credentials_needed(store.endpoint_url) is True
        sm = control_client(endpoint_url=store.endpoint_url, region="us-east-1")
        assert register_groups(sm, [PROFILE], offline_s3_uri=None, role_arn=None) == {"customer_profile": "created"}
        runtime = runtime_client(endpoint_url=store.endpoint_url, region="us-east-1")
        signed = authorization(runtime)
        runtime.put_record(
            FeatureGroupName="customer_profile",
            Record=[
                {"FeatureName": "customer_id", "ValueAsString": "C1"},
                {"FeatureName": "event_time", "ValueAsString": "2026-10-31T00:00:00Z"},
                {"FeatureName": "age", "ValueAsString": "41"},
            ],
        )
        assert get_record(store.endpoint_url, "us-east-1", "customer_profile", "C1") == {
            "customer_id": "C1",
            "event_time": "2026-10-31T00:00:00Z",
            "age": "41",
        }
    assert signed and all("Credential=local-runtime/" in header for header in signed)
    assert not [name for name in os.environ if name.startswith("AWS_ACCESS")]


@pytest.mark.usefixtures("no_aws_credentials")
def test_real_credentials_are_never_replaced_and_aws_never_gets_placeholders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert placeholder_credentials_needed(None) is False  # AWS: the chain's answer, even an empty one
    assert placeholder_credentials_needed("https://runtime.sagemaker.example.com") is False
    with pytest.raises(ValueError, match="only for a loopback endpoint, not AWS"):
        runtime_client(endpoint_url=None, region="us-east-1", placeholder_credentials=True)
    with pytest.raises(ValueError, match="placeholder_credentials is only for a loopback endpoint"):
        PushSettings(endpoint_url="http://10.0.0.5:8765", dead_letter_root="dl", placeholder_credentials=True)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDCHAINKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    assert placeholder_credentials_needed("http://127.0.0.1:8765") is False
    runtime = runtime_client(endpoint_url="http://127.0.0.1:9", region="us-east-1", connect_timeout_s=0.5)
    signed = authorization(runtime)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):  # discard port: signed, then refused
        runtime.get_record(FeatureGroupName="g", RecordIdentifierValueAsString="C1")
    assert signed and "Credential=AKIDCHAINKEY/" in signed[0]


@pytest.mark.usefixtures("no_aws_credentials")
def test_the_embedded_runtime_leaves_the_environment_alone(tmp_path: Path) -> None:
    before = dict(os.environ)
    conf = OnlineStoreConf(enabled=True, embedded_db=str(tmp_path / "fs.sqlite"), dead_letter_root=str(tmp_path))
    with online_endpoint(conf) as url:
        assert url is not None and url.startswith("http://127.0.0.1:")
        assert dict(os.environ) == before
    assert dict(os.environ) == before


def test_the_installed_botocore_has_batch_write_record() -> None:
    """The detection against botocore's real model: this venv pins a botocore newer than 1.43.37."""
    assert has_batch_write_record() is True
    assert usable_write_api("batch_write_record") == ("batch_write_record", None)
    assert callable(runtime_client(endpoint_url="http://127.0.0.1:9", region="us-east-1").batch_write_record)


def test_a_model_without_batch_write_record_is_detected(tmp_path: Path) -> None:
    """botocore's own model, minus the operation (what a botocore older than 1.43.37 ships)."""
    loader = botocore.session.get_session().get_component("data_loader")
    model, where = loader.load_service_model("sagemaker-featurestore-runtime", "service-2"), None
    for path in loader.search_paths:
        found = sorted(Path(path, "sagemaker-featurestore-runtime").glob("*/service-2.json*"))
        if found:
            where = found[-1]
            break
    assert where is not None and "BatchWriteRecord" in model["operations"]
    del model["operations"]["BatchWriteRecord"]
    old = tmp_path / "sagemaker-featurestore-runtime" / where.parent.name
    old.mkdir(parents=True)
    (old / "service-2.json").write_text(json.dumps(model))
    for extra in where.parent.iterdir():  # paginators, endpoint rules: as shipped
        if not extra.name.startswith("service-2."):
            shutil.copy(extra, old / extra.name)
    session = botocore.session.Session()
    session.set_config_variable("data_path", str(tmp_path))

    assert has_batch_write_record(session) is False


def test_an_old_botocore_falls_back_to_put_record_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "has_batch_write_record", lambda session=None: False)
    assert usable_write_api("batch_write_record") == (
        "put_record",
        f"botocore {botocore.__version__} has no BatchWriteRecord (needs >= 1.43.37): "
        "pushing one PutRecord per record instead; upgrade boto3 for 25 records per call",
    )
    assert usable_write_api("put_record") == ("put_record", None)
