"""boto3 clients for the Feature Store, built one way everywhere.

Credentials come only from boto3's default chain (environment, shared config/SSO, the EMR
instance profile or EMR Serverless job role): never from the pipeline's configuration or argv, so
they cannot end up in a conf file, a run report or a process listing. ``endpoint_url`` points the
same code at the local runtime (``serve-local``) or any other endpoint; None means AWS. The one
exception: a loopback endpoint (the local runtime, which checks no signature) when the chain has
no credentials gets placeholder keys, so a new user's shell needs none (docs/online-store.md,
"Credentials").

The writer's client has botocore's own retries switched off (one attempt) because the push does
its own retrying per record, with a shared adaptive rate: stacking botocore's retries underneath
would multiply the attempts and hide throttling from the rate control.

Runtime clients also take a pre-rendered JSON body for PutRecord and BatchWriteRecord
(:data:`PREBUILT_BODY`, see :func:`accept_prebuilt_bodies`): botocore's generic serialiser was
most of the push's client CPU, while endpoint resolution, headers and SigV4 signing stay botocore's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import botocore
import botocore.session
from botocore.config import Config

from features.online.settings import PushSettings, WriteApi, is_loopback_endpoint

RUNTIME_SERVICE = "sagemaker-featurestore-runtime"
CONTROL_SERVICE = "sagemaker"
#: What clients of the local runtime sign with when the default chain has nothing: not a secret.
PLACEHOLDER_KEY = "local-runtime"
#: The first botocore whose Feature Store runtime model has BatchWriteRecord.
BATCH_WRITE_RECORD_SINCE = "1.43.37"

#: Keyword of ``put_record`` / ``batch_write_record`` on a client from :func:`runtime_client`: the
#: request's JSON body (bytes), already rendered, in place of ``Record`` / ``Entries`` and the rest.
PREBUILT_BODY = "PrebuiltBody"
_PREBUILT_CONTEXT_KEY = "features.prebuilt_body"
_PREBUILT_OPERATIONS = ("PutRecord", "BatchWriteRecord")
#: Attribute set to True on a client that takes :data:`PREBUILT_BODY` (a test double may set it too).
TAKES_PREBUILT_BODIES = "takes_prebuilt_bodies"

#: Builds the writer's runtime client from the push settings; must be picklable (it runs on executors).
ClientFactory = Callable[[PushSettings], Any]


def placeholder_credentials_needed(endpoint_url: str | None) -> bool:
    """Whether clients of ``endpoint_url`` must sign with placeholder keys.

    True only for a loopback endpoint (the local runtime) when boto3's default chain finds no
    credentials; real credentials are never replaced, and AWS or any other host always gets the
    chain's. Call it on the driver: executors receive the answer in :class:`PushSettings`.
    """
    return is_loopback_endpoint(endpoint_url) and boto3.session.Session().get_credentials() is None


def _session(endpoint_url: str | None, placeholder_credentials: bool | None) -> boto3.session.Session:
    """A fresh boto3 Session: the default chain's, or placeholder keys for a local endpoint (None: decide here)."""
    if placeholder_credentials is None:
        placeholder_credentials = placeholder_credentials_needed(endpoint_url)
    if not placeholder_credentials:
        return boto3.session.Session()
    if not is_loopback_endpoint(endpoint_url):
        raise ValueError(f"placeholder credentials are only for a loopback endpoint, not {endpoint_url or 'AWS'}")
    return boto3.session.Session(aws_access_key_id=PLACEHOLDER_KEY, aws_secret_access_key=PLACEHOLDER_KEY)


def has_batch_write_record(session: botocore.session.Session | None = None) -> bool:
    """Whether this botocore knows BatchWriteRecord (since 1.43.37): read from its bundled service
    model, with no credentials and no network call."""
    model = (session or botocore.session.get_session()).get_service_model(RUNTIME_SERVICE)
    return "BatchWriteRecord" in model.operation_names


def usable_write_api(requested: WriteApi) -> tuple[WriteApi, str | None]:
    """The write API to push with, and a warning when it cannot be the one requested.

    Checked on the driver before any work: an older botocore (EMR images can ship one) would
    otherwise fail in every executor with an AttributeError on ``batch_write_record``.
    """
    if requested == "batch_write_record" and not has_batch_write_record():
        return "put_record", (
            f"botocore {botocore.__version__} has no BatchWriteRecord (needs >= {BATCH_WRITE_RECORD_SINCE}): "
            "pushing one PutRecord per record instead; upgrade boto3 for 25 records per call"
        )
    return requested, None


def _take_prebuilt_body(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
    """``before-parameter-build``: move the pre-rendered body out of the parameters botocore serialises."""
    body = params.pop(PREBUILT_BODY, None)
    if body is not None:
        context[_PREBUILT_CONTEXT_KEY] = body


def _use_prebuilt_body(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
    """``before-call``: the serialised request gets the pre-rendered body, before checksums and signing."""
    body = context.get(_PREBUILT_CONTEXT_KEY)
    if body is not None:
        params["body"] = body


def accept_prebuilt_bodies(client: Any) -> Any:
    """Let ``client`` take ``PREBUILT_BODY=b'{...}'`` for PutRecord and BatchWriteRecord; returns it.

    The call's other parameters (PutRecord's ``FeatureGroupName``, which travels in the URL) are
    serialised as usual, then the body is replaced before botocore computes checksums and signs,
    so the request is what botocore would send for the same parameters, signed over this body.
    The body must be the JSON botocore would have produced (``records.EncodedItem``; a test
    compares the two). The client needs ``parameter_validation=False`` (as ``runtime_client``
    builds it): the validator would miss the required ``Record`` / ``Entries``.
    """
    service = client.meta.service_model.service_id.hyphenize()
    for operation in _PREBUILT_OPERATIONS:
        client.meta.events.register(f"before-parameter-build.{service}.{operation}", _take_prebuilt_body)
        client.meta.events.register(f"before-call.{service}.{operation}", _use_prebuilt_body)
    setattr(client, TAKES_PREBUILT_BODIES, True)
    return client


def takes_prebuilt_bodies(client: Any) -> bool:
    """Whether ``client`` takes :data:`PREBUILT_BODY` (:func:`accept_prebuilt_bodies`); test doubles need not."""
    return getattr(client, TAKES_PREBUILT_BODIES, False) is True


def runtime_client(
    *,
    endpoint_url: str | None,
    region: str,
    max_pool_connections: int = 10,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 10.0,
    botocore_retries: bool = False,
    placeholder_credentials: bool | None = None,
) -> Any:
    """A ``sagemaker-featurestore-runtime`` client.

    A fresh boto3 Session per client: sessions are not thread-safe, and each Spark partition
    builds its own client. ``max_pool_connections`` should be the number of concurrent requests
    so no thread waits for an HTTP connection. ``botocore_retries=True`` (3 attempts, standard
    mode) suits one-off interactive calls such as ``get-record``. ``placeholder_credentials``:
    see :func:`placeholder_credentials_needed`; None (driver-side callers) decides here.

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
    session = _session(endpoint_url, placeholder_credentials)
    client = session.client(RUNTIME_SERVICE, region_name=region, endpoint_url=endpoint_url, config=config)
    return accept_prebuilt_bodies(client)


def default_client_factory(settings: PushSettings) -> Any:
    """The production client: the credentials the driver chose, botocore retries off, pool = max_in_flight."""
    return runtime_client(
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        max_pool_connections=settings.max_in_flight,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        placeholder_credentials=settings.placeholder_credentials,
    )


def control_client(*, endpoint_url: str | None, region: str, placeholder_credentials: bool | None = None) -> Any:
    """A ``sagemaker`` control-plane client (feature group registration), botocore retries on."""
    config = Config(retries={"total_max_attempts": 5, "mode": "standard"})
    session = _session(endpoint_url, placeholder_credentials)
    return session.client(CONTROL_SERVICE, region_name=region, endpoint_url=endpoint_url, config=config)


def record_as_dict(record: list[dict[str, Any]]) -> dict[str, str]:
    """``[{"FeatureName": n, "ValueAsString": v}, ...]`` -> ``{n: v}`` (scalar features)."""
    return {item["FeatureName"]: item["ValueAsString"] for item in record if "ValueAsString" in item}


def get_record(endpoint_url: str | None, region: str, group: str, record_id: str) -> dict[str, str] | None:
    """The online record of ``record_id`` in ``group`` as ``{feature: value}``, or None if absent."""
    client = runtime_client(endpoint_url=endpoint_url, region=region, botocore_retries=True)
    response = client.get_record(FeatureGroupName=group, RecordIdentifierValueAsString=record_id)
    record = response.get("Record")
    return record_as_dict(record) if record else None
