"""boto3 clients for the Feature Store, built one way everywhere.

Credentials come only from boto3's default chain (environment, shared config/SSO, the EMR
instance profile or EMR Serverless job role): never from the pipeline's configuration or argv, so
they cannot end up in a conf file, a run report or a process listing. ``endpoint_url`` points the
same code at the local runtime (``serve-local``) or any other endpoint; None means AWS.

The writer's client has botocore's own retries switched off (one attempt) because the push does
its own retrying per record, with a shared adaptive rate: stacking botocore's retries underneath
would multiply the attempts and hide throttling from the rate control.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from features.online.settings import PushSettings

RUNTIME_SERVICE = "sagemaker-featurestore-runtime"
CONTROL_SERVICE = "sagemaker"

#: Builds the writer's runtime client from the push settings; must be picklable (it runs on executors).
ClientFactory = Callable[[PushSettings], Any]


def runtime_client(
    *,
    endpoint_url: str | None,
    region: str,
    max_pool_connections: int = 10,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 10.0,
    botocore_retries: bool = False,
) -> Any:
    """A ``sagemaker-featurestore-runtime`` client.

    A fresh boto3 Session per client: sessions are not thread-safe, and each Spark partition
    builds its own client. ``max_pool_connections`` should be the number of concurrent requests
    so no thread waits for an HTTP connection. ``botocore_retries=True`` (3 attempts, standard
    mode) suits one-off interactive calls such as ``get-record``.

    botocore's client-side parameter validation is off: it walks every FeatureValue of every
    request and was a fifth of the push's client CPU; records are built by ``records.py`` and the
    service validates them anyway (its ValidationError is what gets dead-lettered).
    """
    retries: dict[str, Any] = {"total_max_attempts": 3 if botocore_retries else 1, "mode": "standard"}
    config = Config(
        retries=retries,
        parameter_validation=False,
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        tcp_keepalive=True,
    )
    return boto3.session.Session().client(RUNTIME_SERVICE, region_name=region, endpoint_url=endpoint_url, config=config)


def default_client_factory(settings: PushSettings) -> Any:
    """The production client: default credential chain, botocore retries off, pool = max_in_flight."""
    return runtime_client(
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        max_pool_connections=settings.max_in_flight,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )


def control_client(*, endpoint_url: str | None, region: str) -> Any:
    """A ``sagemaker`` control-plane client (feature group registration), botocore retries on."""
    config = Config(retries={"total_max_attempts": 5, "mode": "standard"})
    return boto3.session.Session().client(CONTROL_SERVICE, region_name=region, endpoint_url=endpoint_url, config=config)


def record_as_dict(record: list[dict[str, Any]]) -> dict[str, str]:
    """``[{"FeatureName": n, "ValueAsString": v}, ...]`` -> ``{n: v}`` (scalar features)."""
    return {item["FeatureName"]: item["ValueAsString"] for item in record if "ValueAsString" in item}


def get_record(endpoint_url: str | None, region: str, group: str, record_id: str) -> dict[str, str] | None:
    """The online record of ``record_id`` in ``group`` as ``{feature: value}``, or None if absent."""
    client = runtime_client(endpoint_url=endpoint_url, region=region, botocore_retries=True)
    response = client.get_record(FeatureGroupName=group, RecordIdentifierValueAsString=record_id)
    record = response.get("Record")
    return record_as_dict(record) if record else None
