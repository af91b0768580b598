"""The AWS side of deploying: clients, the verified upload, reading a prefix, waiting for a run.

Clients are built the standard boto3 way (``boto3.session.Session(region_name=...).client(...)``),
so credentials come from the default chain and boto3's own ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_<SERVICE>`` point them at moto or LocalStack. Nothing here reads, takes or
logs a credential.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

import boto3
from botocore.exceptions import ClientError, NoRegionError

from features.deploy.artifacts import RECORD, Artifacts, DeployError, DeployFailedError, Plan, S3Uri, Upload

log = logging.getLogger(__name__)

_CHUNK = 8 << 20


def client(service: str, region: str | None) -> Any:
    try:
        return boto3.session.Session(region_name=region).client(service)
    except NoRegionError:
        raise DeployError("no AWS region configured: pass --region or set AWS_REGION") from None


def aws_error(exc: ClientError) -> str:
    """``Code: Message`` of an AWS error response, one line."""
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}".rstrip(": ")


def upload(s3: Any, prefix: S3Uri, plan: Plan, *, overwrite: bool = False) -> Artifacts:
    """Put every planned object, read each back and compare its sha256, then write ``deploy.json``.

    A prefix already holding a different upload is left alone unless ``overwrite``: a prefix is a
    release, and rolling back relies on an old one still being what it was.
    """
    record = plan.record(prefix)
    existing = find_record(s3, prefix)
    if existing is not None and existing.objects != record.objects and not overwrite:
        changed = sorted(
            k for k in {*existing.objects, *record.objects} if existing.objects.get(k) != record.objects.get(k)
        )
        raise DeployError(
            f"{prefix} already holds a different upload ({', '.join(changed[:3])} differ); upload to a new prefix, "
            "or pass --overwrite to replace it"
        )
    for item in plan.uploads:
        _put(s3, prefix, item)
    body = record.to_json().encode()
    _put(
        s3,
        prefix,
        Upload(key=RECORD, sha256=hashlib.sha256(body).hexdigest(), size=len(body), source=RECORD, body=body),
    )
    return record


def _put(s3: Any, prefix: S3Uri, item: Upload) -> None:
    target = prefix.child(item.key)
    extra = {"ExtraArgs": {"Metadata": {"sha256": item.sha256}}}
    if item.path is not None:
        s3.upload_file(str(item.path), target.bucket, target.key, **extra)
    else:
        s3.upload_fileobj(io.BytesIO(item.body or b""), target.bucket, target.key, **extra)
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=target.bucket, Key=target.key)["Body"].iter_chunks(_CHUNK):
        digest.update(chunk)
    if digest.hexdigest() != item.sha256:
        raise DeployFailedError(
            f"{target} read back with sha256 {digest.hexdigest()}, uploaded {item.sha256} from {item.source}; "
            "upload again"
        )
    log.info("uploaded %s (%d bytes, sha256 %s, verified)", target, item.size, item.sha256)


def read_record(s3: Any, prefix: S3Uri) -> Artifacts:
    """The prefix's ``deploy.json``; a DeployError naming the upload to run when it has none."""
    record = find_record(s3, prefix)
    if record is None:
        raise DeployError(
            f"{prefix.child(RECORD)} does not exist: {prefix} holds no complete upload; run "
            f"`feature-pipeline deploy upload --artifacts {prefix}` first"
        )
    return record


def find_record(s3: Any, prefix: S3Uri) -> Artifacts | None:
    """The prefix's ``deploy.json``, or None when it has none."""
    target = prefix.child(RECORD)
    try:
        body = s3.get_object(Bucket=target.bucket, Key=target.key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return Artifacts.from_json(prefix, body.decode("utf-8"))


def wait_until(
    poll: Callable[[], str],
    *,
    what: str,
    terminal: Collection[str],
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Call ``poll`` every ``interval`` seconds until it returns a state in ``terminal``; return it.

    Each new state is logged; DeployFailedError when ``timeout`` seconds pass first (the run goes on).
    """
    started = clock()
    last = None
    while True:
        state = poll()
        if state != last:
            log.info("%s: %s (%.0fs)", what, state, clock() - started)
            last = state
        if state in terminal:
            return state
        if clock() - started + interval > timeout:
            raise DeployFailedError(
                f"{what} is still {state} after {timeout:g}s; it goes on without this command waiting"
            )
        sleep(interval)
