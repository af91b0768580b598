"""Re-push dead-lettered records, once their cause is fixed, in plain Python (no Spark).

The records go through the push's :class:`~features.online.writer.Writer`, so they are retried,
paced and dead-lettered the same way. Those that still fail go to a new run directory,
``<dead_letter_root>/<group>/replay-<UTC time>-<random>/``; the input is never modified. Records
of groups in ``features.registry`` are re-checked with the push's value rules first. Why a replay
is idempotent and cannot go back in time: docs/online-store.md ("Replay").
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from features.definitions import FeatureType
from features.online.client import ClientFactory, default_client_factory
from features.online.deadletter import DeadLetterWriter, dead_letter_dir
from features.online.records import RecordError, check_record, record_types
from features.online.settings import (
    FatalPushError,
    Item,
    PushError,
    PushResult,
    PushSettings,
    Rejected,
    check_tolerance,
    result_from,
)
from features.online.writer import Writer
from features.registry import all_groups

log = logging.getLogger(__name__)


def _local_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no dead-letter file or directory at {path}")
    return sorted(p for p in path.rglob("*.jsonl") if not p.name.startswith("."))


def _local_lines(path: Path) -> Iterator[tuple[str, int, str]]:
    for file in _local_files(path):
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                yield str(file), number, line


def _s3_lines(uri: str, region: str) -> Iterator[tuple[str, int, str]]:
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    s3 = boto3.session.Session().client("s3", region_name=region)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".jsonl"))
    if not keys:
        raise FileNotFoundError(f"no .jsonl dead-letter files under {uri}")
    for key in sorted(keys):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for number, line in enumerate(body.iter_lines(), start=1):
            yield f"s3://{bucket}/{key}", number, line.decode("utf-8")


def dead_letter_lines(path: str, *, region: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, parsed line) for every line of a dead-letter file, or of every file under a directory."""
    raw = _s3_lines(path, region) if path.startswith(("s3://", "s3a://")) else _local_lines(Path(path))
    for where, number, line in raw:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry.get("group"), str) or not isinstance(entry.get("record"), list):
                raise ValueError("needs a group string and a record list")
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{where}: line {number} is not a dead-letter entry ({exc})") from None
        yield where, entry


def _stream(path: str, region: str) -> Iterator[Item | Rejected]:
    known = all_groups()
    types: dict[str, dict[str, FeatureType]] = {}
    for _, entry in dead_letter_lines(path, region=region):
        group, record = entry["group"], entry["record"]
        if group not in types:
            types[group] = record_types(known[group]) if group in known else {}
        try:
            check_record(record, types[group])
        except RecordError as exc:
            yield Rejected(group, record, f"InvalidValue: {exc}")
            continue
        yield Item(group, record)


def replay_dead_letters(
    path: str, *, settings: PushSettings, client_factory: ClientFactory | None = None
) -> PushResult:
    """Re-push every record in a dead-letter file or directory (local or s3://).

    Returns the counts; raises PushError when more than ``settings.dead_letter_tolerance``
    records still fail (``.result`` has the counts and where they went) or on a fatal error.
    """
    started = time.perf_counter()
    run_id = f"replay-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    dead_letters = DeadLetterWriter(settings.dead_letter_root, run_id, "part-00000.jsonl", region=settings.region)
    writer = Writer((client_factory or default_client_factory)(settings), settings, dead_letters)
    log.info("Replaying dead letters from %s (%s, %d in flight)", path, settings.write_api, settings.max_in_flight)
    try:
        counts = writer.run(_stream(path, settings.region))
    except FatalPushError as exc:
        dead_letters.discard()
        raise PushError(f"replay of {path} stopped: {exc}") from None
    except BaseException:
        dead_letters.discard()
        raise
    published = dead_letters.publish()
    where = (
        published[0].rsplit("/", 1)[0]
        if len(published) == 1
        else dead_letter_dir(settings.dead_letter_root, "*", run_id)
    )
    result = result_from(counts, seconds=time.perf_counter() - started, dead_letter_path=where, partitions=1)
    log.info(
        "Replay of %s: %d records, %d written, %d dead-lettered again, %d retried, %d throttled in %.1fs",
        path,
        result.records,
        result.written,
        result.dead_lettered,
        result.retried,
        result.throttled,
        result.seconds,
    )
    check_tolerance(f"replay of {path}", counts, result, settings.dead_letter_tolerance)
    return result
