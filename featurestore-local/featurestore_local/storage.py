"""SQLite persistence for feature groups and online-store records.

One connection guarded by a lock: every operation is a short statement, so a
lock costs far less than per-thread connections plus ``SQLITE_BUSY`` retries,
and it makes the read-compare-write of the EventTime rule trivially atomic.
WAL mode keeps the file readable by other processes (e.g. the ``sqlite3``
shell) while the server runs.  Expired records are treated as absent by every
query instead of being swept, which keeps TTL exact without a background
thread.

Schema versions (``PRAGMA user_version``): 1 holds groups and records; 2 adds
``feature_metadata`` (UpdateFeatureMetadata's descriptions and parameters).
Opening a version-1 (or unversioned) file migrates it in place, in one
transaction; a file from a newer version is refused rather than guessed at.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

MEMORY = ":memory:"
_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_groups (
    name        TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    group_name  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    event_time  REAL NOT NULL,
    expires_at  REAL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    features    TEXT NOT NULL,
    written_at  REAL NOT NULL,
    PRIMARY KEY (group_name, record_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feature_metadata (
    group_name    TEXT NOT NULL,
    feature_name  TEXT NOT NULL,
    description   TEXT,
    parameters    TEXT NOT NULL,
    last_modified REAL NOT NULL,
    PRIMARY KEY (group_name, feature_name)
) WITHOUT ROWID;
"""
_LIVE = "(expires_at IS NULL OR expires_at > :now)"


@dataclass(frozen=True)
class RecordRow:
    """A validated record ready to be written to the online store."""

    record_id: str
    event_time: float
    expires_at: float | None
    features: list[dict[str, Any]]


@dataclass(frozen=True)
class StoredRecord:
    """The live (not deleted, not expired) online record for an identifier."""

    features: list[dict[str, Any]]
    expires_at: float | None


@dataclass(frozen=True)
class FeatureMetadataRow:
    """What UpdateFeatureMetadata has set on one feature; absent until the first update."""

    group_name: str
    feature_name: str
    description: str | None
    parameters: list[dict[str, str]]
    last_modified: float


class Storage:
    """Thread-safe store; pass ``":memory:"`` for a throwaway database."""

    def __init__(self, path: str) -> None:
        if path != MEMORY:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._migrate(path)

    def _migrate(self, path: str) -> None:
        """Create or upgrade the schema to the current version, atomically.

        Versions 0 (a new file, or one from before versioning) and 1 differ from 2 only by the
        ``feature_metadata`` table, so upgrading is creating what is missing.
        """
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION or version < 0:
                raise RuntimeError(
                    f"{path}: local feature store schema v{version} is newer than this featurestore-local "
                    f"(v{_SCHEMA_VERSION}); upgrade featurestore-local or use another --db"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- feature groups -------------------------------------------------

    def add_group(
        self, name: str, description: dict[str, Any], max_groups: int
    ) -> Literal["created", "exists", "limit"]:
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM feature_groups WHERE name = ?", (name,)).fetchone():
                return "exists"
            (count,) = conn.execute("SELECT COUNT(*) FROM feature_groups").fetchone()
            if count >= max_groups:
                return "limit"
            conn.execute(
                "INSERT INTO feature_groups (name, created_at, description) VALUES (?, ?, ?)",
                (name, description["CreationTime"], json.dumps(description)),
            )
            return "created"

    def get_group(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT description FROM feature_groups WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_groups(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT description FROM feature_groups").fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete_group(self, name: str) -> bool:
        """Drop the group and its online records, as DeleteFeatureGroup does."""
        with self._transaction() as conn:
            deleted = conn.execute("DELETE FROM feature_groups WHERE name = ?", (name,)).rowcount
            conn.execute("DELETE FROM records WHERE group_name = ?", (name,))
            conn.execute("DELETE FROM feature_metadata WHERE group_name = ?", (name,))
        return deleted > 0

    # -- feature metadata -----------------------------------------------

    def get_feature_metadata(self, group: str, feature: str) -> FeatureMetadataRow | None:
        with self._lock:
            row = self._conn.execute(
                """SELECT group_name, feature_name, description, parameters, last_modified
                   FROM feature_metadata WHERE group_name = ? AND feature_name = ?""",
                (group, feature),
            ).fetchone()
        return _metadata_row(row) if row else None

    def list_feature_metadata(self) -> list[FeatureMetadataRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT group_name, feature_name, description, parameters, last_modified FROM feature_metadata"
            ).fetchall()
        return [_metadata_row(row) for row in rows]

    def update_feature_metadata(
        self,
        group: str,
        feature: str,
        change: Callable[[FeatureMetadataRow | None], FeatureMetadataRow],
    ) -> FeatureMetadataRow:
        """Read-modify-write one feature's metadata in a transaction; ``change`` may raise to abort."""
        with self._transaction() as conn:
            row = conn.execute(
                """SELECT group_name, feature_name, description, parameters, last_modified
                   FROM feature_metadata WHERE group_name = ? AND feature_name = ?""",
                (group, feature),
            ).fetchone()
            updated = change(_metadata_row(row) if row else None)
            conn.execute(
                """INSERT INTO feature_metadata (group_name, feature_name, description, parameters, last_modified)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (group_name, feature_name) DO UPDATE SET
                       description = excluded.description,
                       parameters = excluded.parameters,
                       last_modified = excluded.last_modified""",
                (group, feature, updated.description, json.dumps(updated.parameters), updated.last_modified),
            )
        return updated

    # -- records --------------------------------------------------------

    def put_records(self, group: str, rows: Sequence[RecordRow], now: float) -> None:
        """Upsert rows; a row with an older EventTime than a live stored record is dropped."""
        with self._transaction() as conn:
            conn.executemany(
                f"""
                INSERT INTO records
                    (group_name, record_id, event_time, expires_at, deleted, features, written_at)
                VALUES (:group, :record_id, :event_time, :expires_at, 0, :features, :now)
                ON CONFLICT (group_name, record_id) DO UPDATE SET
                    event_time = excluded.event_time,
                    expires_at = excluded.expires_at,
                    deleted = 0,
                    features = excluded.features,
                    written_at = excluded.written_at
                WHERE excluded.event_time >= records.event_time OR NOT {_LIVE}
                """,
                (
                    {
                        "group": group,
                        "record_id": row.record_id,
                        "event_time": row.event_time,
                        "expires_at": row.expires_at,
                        "features": json.dumps(row.features),
                        "now": now,
                    }
                    for row in rows
                ),
            )

    def get_record(self, group: str, record_id: str, now: float) -> StoredRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"""SELECT features, expires_at FROM records
                    WHERE group_name = :group AND record_id = :record_id
                      AND deleted = 0 AND {_LIVE}""",
                {"group": group, "record_id": record_id, "now": now},
            ).fetchone()
        return StoredRecord(json.loads(row[0]), row[1]) if row else None

    def soft_delete(self, group: str, record_id: str, event_time: float, now: float) -> None:
        """Null the features but keep a tombstone carrying the delete's EventTime."""
        params = {
            "group": group,
            "record_id": record_id,
            "event_time": event_time,
            "now": now,
        }
        with self._transaction() as conn:
            conn.execute(
                f"DELETE FROM records WHERE group_name = :group AND record_id = :record_id AND NOT {_LIVE}",
                params,
            )
            conn.execute(
                """UPDATE records SET deleted = 1, features = '[]', event_time = :event_time,
                       expires_at = NULL, written_at = :now
                   WHERE group_name = :group AND record_id = :record_id
                     AND event_time <= :event_time""",
                params,
            )

    def hard_delete(self, group: str, record_id: str, event_time: float, now: float) -> bool:
        """Remove the record; False (nothing removed) if the stored one is newer."""
        params = {
            "group": group,
            "record_id": record_id,
            "event_time": event_time,
            "now": now,
        }
        with self._transaction() as conn:
            newer = conn.execute(
                f"""SELECT 1 FROM records WHERE group_name = :group AND record_id = :record_id
                      AND event_time > :event_time AND {_LIVE}""",
                params,
            ).fetchone()
            if newer:
                return False
            conn.execute(
                "DELETE FROM records WHERE group_name = :group AND record_id = :record_id",
                params,
            )
            return True

    def list_record_ids(
        self,
        group: str,
        *,
        after: str | None,
        limit: int,
        include_deleted: bool,
        now: float,
    ) -> list[str]:
        """Identifiers in lexical order, strictly after ``after`` (keyset pagination)."""
        deleted_clause = "" if include_deleted else "AND deleted = 0"
        with self._lock:
            rows = self._conn.execute(
                f"""SELECT record_id FROM records
                    WHERE group_name = :group AND record_id > :after AND {_LIVE} {deleted_clause}
                    ORDER BY record_id LIMIT :limit""",
                {"group": group, "after": after or "", "now": now, "limit": limit},
            ).fetchall()
        return [row[0] for row in rows]


def _metadata_row(row: tuple[Any, ...]) -> FeatureMetadataRow:
    group_name, feature_name, description, parameters, last_modified = row
    return FeatureMetadataRow(group_name, feature_name, description, json.loads(parameters), last_modified)
