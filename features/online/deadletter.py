"""Dead-letter files: where a run's go, and how one writer publishes its own in one step.

A dead letter is one JSON line ``{"group", "record", "reason", "attempts"}`` in
``<root>/<group>/<run_id>/<file_name>``, with ``root`` a local directory or ``s3://bucket/prefix``.
Why publishing in one step keeps the files right under Spark task retries: docs/online-store.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3

from features.online.records import Record


def _is_s3(path: str) -> bool:
    return path.startswith(("s3://", "s3a://"))


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def dead_letter_dir(root: str, group: str, run_id: str) -> str:
    """``<root>/<group>/<run_id>``: where one run's dead letters for one group go."""
    return f"{root.rstrip('/')}/{group}/{run_id}"


def default_dead_letter_root(path: str) -> str:
    """``<root>/<group>/<run_id>[/part-N.jsonl]`` -> ``<root>``: replays land next to the original."""
    trimmed = path.rstrip("/")
    if trimmed.endswith(".jsonl"):
        trimmed = trimmed.rsplit("/", 1)[0]
    parts = trimmed.rsplit("/", 2)
    return parts[0] if len(parts) == 3 and parts[0] not in ("", "s3:/", "s3a:/") else trimmed


class DeadLetterWriter:
    """Dead-letter lines of one writer, one file per group: ``<root>/<group>/<run_id>/<file_name>``.

    Lines go to a temporary file while the writer runs; :meth:`publish` moves them into place in
    one step (``os.replace`` locally, one ``put_object`` on S3), replacing what an earlier attempt
    of the same Spark task may have published. Not thread-safe: only the writer's caller thread
    adds lines.
    """

    def __init__(self, root: str, run_id: str, file_name: str, *, region: str) -> None:
        self.root = root
        self.run_id = run_id
        self.file_name = file_name
        self._region = region
        self._files: dict[str, tuple[Any, str]] = {}  # group -> (open temp file, temp path)

    def target(self, group: str) -> str:
        return f"{dead_letter_dir(self.root, group, self.run_id)}/{self.file_name}"

    def add(self, group: str, record: Record, reason: str, attempts: int) -> None:
        if group not in self._files:
            self._files[group] = self._open(group)
        line = json.dumps({"group": group, "record": record, "reason": reason, "attempts": attempts})
        self._files[group][0].write(line + "\n")

    def _open(self, group: str) -> tuple[Any, str]:
        if _is_s3(self.root):
            fd, temp = tempfile.mkstemp(prefix="dead-letters-", suffix=".jsonl")
        else:
            directory = Path(dead_letter_dir(self.root, group, self.run_id))
            directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{self.file_name}.", suffix=".tmp", dir=directory)
        return os.fdopen(fd, "w", encoding="utf-8"), temp

    def publish(self) -> list[str]:
        """Move every group's lines into place; returns the published paths."""
        published = []
        for group, (handle, temp) in self._files.items():
            handle.close()
            target = self.target(group)
            if _is_s3(target):
                bucket, key = _split_s3(target)
                try:
                    with open(temp, "rb") as body:
                        self._s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
                finally:
                    os.unlink(temp)
            else:
                os.replace(temp, target)
            published.append(target)
        self._files.clear()
        return published

    def remove(self, group: str) -> None:
        """Delete a file an earlier attempt published for ``group`` (this attempt had no dead letters)."""
        target = self.target(group)
        if _is_s3(target):
            bucket, key = _split_s3(target)
            self._s3().delete_object(Bucket=bucket, Key=key)
        else:
            Path(target).unlink(missing_ok=True)

    def discard(self) -> None:
        """Drop unpublished lines (the writer failed; the attempt will be retried or the run fails)."""
        for handle, temp in self._files.values():
            handle.close()
            Path(temp).unlink(missing_ok=True)
        self._files.clear()

    def _s3(self) -> Any:
        return boto3.session.Session().client("s3", region_name=self._region)
