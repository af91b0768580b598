"""``feature-pipeline freshness``: how old the online store's records are, against each group's SLA.

What a scheduled monitor runs (docs/online-store.md, "Freshness"). Per group it lists up to
``--sample`` record identifiers (ListRecords), reads their event times (BatchGetRecord with the
push's retry policy) and judges the newest one: the group is ``stale`` when even its newest
record is older than the group's ``freshness_sla``, i.e. no snapshot reached the online store
within the SLA. Older records (entities that left every window keep their last record until it
expires) are counted as ``over_sla``, not judged. Exit 1 when any group is stale or could not
be checked; no Spark is started.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from features.cli.base import Command, add_conf_arguments, parse_as_of, setup_logging
from features.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, fail, usage
from features.config import ConfigError, load_conf
from features.constants import EVENT_TIME
from features.definitions import FeatureGroup
from features.errors import one_line
from features.online.reader import ReadRetry, RecordReader

log = logging.getLogger(__name__)

#: ListRecords' page size limit.
LIST_LIMIT = 100

Status = Literal["fresh", "stale", "no_sla", "skipped", "empty", "error"]
#: Statuses that make the command exit 1.
FAILING: tuple[Status, ...] = ("stale", "empty", "error")


@dataclass
class Freshness:
    """One group's verdict; ages are seconds before ``checked_at``."""

    group: str
    status: Status
    freshness_sla: str | None
    checked_at: str
    sampled: int = 0
    read: int = 0
    newest_event_time: str | None = None
    oldest_event_time: str | None = None
    newest_age_s: float | None = None
    oldest_age_s: float | None = None
    over_sla: int = 0
    note: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(parser)
    parser.add_argument("--groups", default="all", help="comma-separated feature groups, or 'all' (default)")
    parser.add_argument("--sample", type=int, default=100, help="records read per group (default 100)")
    parser.add_argument(
        "--at", default="now", help="judge ages as of this time (default now; an ISO-8601 time with a zone)"
    )
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    setup_logging("WARNING")
    try:
        conf = load_conf(args.conf, args.overrides)
        groups = _groups(args.groups)
        at = parse_as_of(args.at)
        if args.sample < 1:
            raise UsageError(f"--sample must be at least 1, got {args.sample}")
    except (UsageError, ConfigError) as exc:
        return usage(str(exc))
    from features.online.client import runtime_client
    from features.online.embedded import online_endpoint

    online = conf.online_store
    try:
        with online_endpoint(online) as endpoint_url:
            client = runtime_client(endpoint_url=endpoint_url, region=online.region, botocore_retries=True)
            try:
                reader = RecordReader(client, ReadRetry.from_conf(online))
                results = [check_group(client, reader, g, sample=args.sample, at=at) for g in groups]
            finally:
                client.close()
    except Exception as exc:  # a command's contract: one line and a non-zero exit
        log.debug("freshness check failed", exc_info=True)
        return fail("freshness", one_line(exc))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(table(results))
    failing = [r for r in results if r.status in FAILING]
    if failing:
        print(
            "freshness: " + "; ".join(f"{r.group} {r.status}" + (f" ({r.note})" if r.note else "") for r in failing),
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _groups(spec: str) -> list[FeatureGroup]:
    from features.registry import resolve

    try:
        chosen = [g for name in spec.split(",") for g in resolve(name.strip())]
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return list({g.name: g for g in chosen}.values())


def check_group(client: Any, reader: RecordReader, group: FeatureGroup, *, sample: int, at: datetime) -> Freshness:
    """The verdict on one group; a failure to list or read is its ``error`` status, never an exception."""
    sla = group.freshness_sla_length
    result = Freshness(group=group.name, status="fresh", freshness_sla=group.freshness_sla, checked_at=_iso(at))
    if not group.online:
        result.status, result.note = "skipped", "batch-only group (online=False): nothing online"
        return result
    try:
        ids = list_ids(client, group.name, sample)
    except (ClientError, BotoCoreError, AttributeError) as exc:
        result.status, result.note = "error", f"cannot list records: {_reason(exc)}"
        return result
    result.sampled = len(ids)
    reads = reader.read(group.name, ids)
    times = sorted(t for t in (_event_time(r) for r in reads.found.values()) if t is not None)
    result.read = len(times)
    if reads.failed:
        failure = next(iter(reads.failed.values()))
        result.status, result.note = "error", f"{len(reads.failed)} records unread ({failure.code}: {failure.reason})"
        return result
    if not times:
        result.status, result.note = "empty", "no online records (never pushed, or all expired)"
        return result
    newest, oldest = times[-1], times[0]
    result.newest_event_time, result.oldest_event_time = _iso(newest), _iso(oldest)
    result.newest_age_s, result.oldest_age_s = (at - newest).total_seconds(), (at - oldest).total_seconds()
    if sla is None:
        result.status, result.note = "no_sla", "the group declares no freshness_sla"
        return result
    result.over_sla = sum(1 for t in times if at - t > sla)
    if at - newest > sla:
        result.status = "stale"
        result.note = f"newest record is {_age(at - newest)} old, over the {group.freshness_sla} SLA"
    return result


def list_ids(client: Any, group: str, sample: int) -> list[str]:
    """Up to ``sample`` record identifiers of ``group``'s online store, page by page."""
    ids: list[str] = []
    token: str | None = None
    while len(ids) < sample:
        request: dict[str, Any] = {"FeatureGroupName": group, "MaxResults": min(LIST_LIMIT, sample - len(ids))}
        if token:
            request["NextToken"] = token
        response = client.list_records(**request)
        ids.extend(response.get("RecordIdentifiers") or [])
        token = response.get("NextToken")
        if not token:
            break
    return ids[:sample]


def table(results: list[Freshness]) -> str:
    header = ("group", "status", "sla", "sampled", "newest event time", "age", "over sla")
    rows = [
        (
            r.group,
            r.status,
            r.freshness_sla or "-",
            str(r.sampled),
            r.newest_event_time or "-",
            _age(timedelta(seconds=r.newest_age_s)) if r.newest_age_s is not None else "-",
            str(r.over_sla),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.group}: {r.note}" for r in results if r.note]
    return "\n".join([*lines, *(["", *notes] if notes else [])])


def _event_time(record: dict[str, str]) -> datetime | None:
    text = record.get(EVENT_TIME)
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(age: timedelta) -> str:
    """``3d 4h``, ``5h 10m``, ``12m``: two units are enough to judge an age against an SLA."""
    seconds = int(age.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    return f"{sign}{minutes}m"


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}"
    if isinstance(exc, AttributeError):
        return "this botocore has no ListRecords; upgrade boto3 and botocore"
    return one_line(exc)


FRESHNESS = Command(
    name="freshness",
    help="report the age of each group's online records against its freshness SLA (exit 1 when stale)",
    description=(
        "Read a sample of each group's online records (ListRecords, then BatchGetRecord) and report the age of "
        "their event times against the group's freshness_sla; exit 1 when a group is stale or cannot be checked."
    ),
    add_arguments=add_arguments,
    run=run,
)
