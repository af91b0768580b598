"""A deterministic sample of the reference domain, for ``make run``, demos and smoke tests.

Same seed, same bytes: a few thousand customers, a few hundred thousand clickstream events over
100 days as ``dt=YYYY-MM-DD/`` gzip JSON lines (with the messiness real event logs have: replays,
late arrivals, non-UTC offsets, a sprinkle of unusable lines), and the orders and customers tables
as Parquet snapshot exports, and a labels table for ``feature-pipeline training-set``
(``labels/churn.csv``: label times in the month before the sample's end, with ties, duplicates,
zone offsets, labels before any snapshot and an entity no source knows).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from features.sources import CUSTOMERS, ORDERS

log = logging.getLogger(__name__)

EVENT_MIX = (("page_view", 0.5), ("product_view", 0.3), ("add_to_cart", 0.08), ("search", 0.12))
DAYS = 100
PRODUCTS = 5000


def generate(
    spark: SparkSession, out: Path, *, seed: int, customers: int, events: int, as_of: datetime, force: bool = False
) -> None:
    """Write the sample under ``out`` (clickstream/, rds/orders/, rds/customers/); idempotent."""
    manifest = {"seed": seed, "customers": customers, "events": events, "as_of": as_of.isoformat(), "version": 2}
    marker = out / "_manifest.json"
    if not force and marker.is_file() and json.loads(marker.read_text()) == manifest:
        log.info("sample data already at %s (seed %d); use --force to regenerate", out, seed)
        return
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(seed)
    ids = [f"C{n:06d}" for n in range(1, customers + 1)]
    rows = _customers(rng, ids, as_of)
    n_events = _write_clickstream(rng, out / "clickstream" / "events", ids, events, as_of)
    orders = _orders(rng, ids, as_of)
    _write_tables(spark, out / "rds", orders, rows)
    # Its own generator: adding the labels left every other byte of the sample as it was.
    n_labels = write_labels(random.Random(f"labels-{seed}"), out / "labels" / "churn.csv", ids, as_of)
    marker.write_text(json.dumps(manifest, indent=2))
    log.info(
        "sample data written to %s: %d events, %d orders, %d customers, %d labels",
        out,
        n_events,
        len(orders),
        len(rows),
        n_labels,
    )


#: Label times fall in this many days before the sample's end.
LABEL_DAYS = 8
#: The zones label times are written in: UTC with a Z, and two offsets (the times are instants).
LABEL_ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)))


def write_labels(rng: random.Random, path: Path, ids: list[str], as_of: datetime) -> int:
    """A churn labels table: ``customer_id, label_time, churned_30d, label_id`` as CSV with a header.

    Label times fall in the :data:`LABEL_DAYS` days before ``as_of`` (the README's backfill of the
    last week's daily snapshots covers most; the first day or so is before it, so those rows get nulls), a tenth exactly
    on a UTC midnight (a tie with a daily snapshot), in one of :data:`LABEL_ZONES`. Some rows are
    duplicated and a few name a customer no source has (always nulls).
    """
    labels: list[tuple[str, str, str]] = []
    for cid in rng.sample(ids, k=max(1, (2 * len(ids)) // 3)):
        for _ in range(rng.choice((1, 1, 2, 3))):
            if rng.random() < 0.1:
                moment = as_of - timedelta(days=rng.randrange(0, LABEL_DAYS))
            else:
                moment = as_of - timedelta(seconds=rng.randrange(0, LABEL_DAYS * 86_400))
            when = moment.astimezone(rng.choice(LABEL_ZONES)).isoformat().replace("+00:00", "Z")
            labels.append((cid, when, str(int(rng.random() < 0.2))))
    labels.append(("C999999", (as_of - timedelta(days=3)).isoformat(), "0"))
    rows = [f"{cid},{when},{label},L{n:06d}" for n, (cid, when, label) in enumerate(labels, start=1)]
    rows += [rng.choice(rows) for _ in range(max(1, len(rows) // 50))]  # exact duplicates: kept, as given
    rng.shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["customer_id,label_time,churned_30d,label_id", *rows]) + "\n", encoding="utf-8")
    return len(rows)


def _weights(rng: random.Random, n: int) -> list[float]:
    """Skewed activity: a few customers do most of the browsing (Pareto tail)."""
    return [rng.paretovariate(1.3) for _ in range(n)]


def _iso(moment: datetime, rng: random.Random) -> str:
    """Mostly UTC with a Z; some clients send local time with an offset."""
    if rng.random() < 0.1:
        local = moment.astimezone(timezone(timedelta(hours=2)))
        return local.isoformat(timespec="milliseconds")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _write_clickstream(rng: random.Random, root: Path, ids: list[str], target: int, as_of: datetime) -> int:
    start = as_of - timedelta(days=DAYS)
    weights = _weights(rng, len(ids))
    products = [f"P{n:05d}" for n in range(1, PRODUCTS + 1)]
    popularity = _weights(rng, PRODUCTS)
    kinds = [k for k, _ in EVENT_MIX]
    mix = [w for _, w in EVENT_MIX]
    by_day: dict[date, list[str]] = defaultdict(list)
    written = 0
    session_no = 0
    while written < target:
        session_no += 1
        customer = rng.choices(ids, weights)[0]
        # Sessions start anywhere in the 100 days, a few in the hours after as_of (never used).
        begin = start + timedelta(seconds=rng.uniform(0, (DAYS + 0.25) * 86400))
        moment = begin
        for _ in range(rng.randint(3, 25)):
            moment += timedelta(seconds=rng.expovariate(1 / 45))
            kind = rng.choices(kinds, mix)[0]
            product = rng.choices(products, popularity)[0] if kind in ("product_view", "add_to_cart") else None
            event = {
                "event_id": f"E{session_no:07d}-{written:08d}",
                "customer_id": customer,
                "session_id": f"S{session_no:07d}",
                "event_type": kind,
                "product_id": product,
                "event_time": _iso(moment, rng),
                "user_agent": "sample/1.0",  # an extra field: readers must ignore it
            }
            arrival = moment + timedelta(minutes=rng.expovariate(1 / 5))
            if rng.random() < 0.02:  # late arrival: lands in the next day's partition
                arrival += timedelta(days=1)
            line = json.dumps(event, separators=(",", ":"))
            by_day[arrival.date()].append(line)
            if rng.random() < 0.005:  # replay of the same event, possibly a day later
                by_day[(arrival + timedelta(hours=rng.choice((0, 20)))).date()].append(line)
            written += 1
    _spoil(rng, by_day)
    for day, lines in sorted(by_day.items()):
        folder = root / f"dt={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(folder / "part-00000.json.gz", "wb", mtime=0) as fh:
            fh.write(("\n".join(lines) + "\n").encode("utf-8"))
    return written


def _spoil(rng: random.Random, by_day: dict[date, list[str]]) -> None:
    """Add the unusable lines every real event log has, so quarantine has something to show."""
    days = sorted(by_day)
    bad = [
        '{"event_id":"BAD-1","customer_id":"C000001","event_type":"page_view","event_ti',
        '{"event_id":"BAD-2","customer_id":null,"session_id":"S0","event_type":"page_view","event_time":"2026-10-01T00:00:00Z"}',
        '{"event_id":"BAD-3","customer_id":"C000002","session_id":"S0","event_type":"purchase","event_time":"2026-10-01T00:00:00Z"}',
        '{"event_id":"BAD-4","customer_id":"C000003","session_id":"S0","event_type":"search","event_time":"yesterday"}',
        '{"event_id":"BAD-5","customer_id":"C000004","session_id":"S0","event_type":"search","event_time":"2026-10-01 10:00:00"}',
    ]
    for n in range(60):
        day = days[-1 - rng.randrange(min(40, len(days)))]
        by_day[day].insert(rng.randrange(len(by_day[day]) + 1), bad[n % len(bad)].replace("BAD-", f"BAD{n}-"))


def _customers(rng: random.Random, ids: list[str], as_of: datetime) -> list[dict[str, Any]]:
    rows = []
    for cid in ids:
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 66))
        rows.append(
            {
                "customer_id": cid,
                "birth_date": None if rng.random() < 0.03 else birth,
                "active_since": as_of - timedelta(days=rng.uniform(10, 2500)),
                "marital_status": rng.choice(["single", "married", "divorced", "widowed", None]),
                "is_prime_member": None if rng.random() < 0.02 else rng.random() < 0.35,
                "country": rng.choice(["US", "US", "US", "DE", "GB", "FR", "JP", "BR"]),
            }
        )
    return rows


def _orders(rng: random.Random, ids: list[str], as_of: datetime) -> list[dict[str, Any]]:
    orders = []
    weights = _weights(rng, len(ids))
    total = len(ids) * 8
    for n in range(total):
        when = as_of - timedelta(seconds=rng.uniform(-2 * 86400, 400 * 86400))
        status = rng.choices(["completed", "cancelled", "refunded"], [0.85, 0.1, 0.05])[0]
        orders.append(
            {
                "order_id": f"O{n + 1:08d}",
                "customer_id": rng.choices(ids, weights)[0],
                "order_time": when,
                "total_amount": Decimal(f"{rng.lognormvariate(3.5, 0.8):.2f}"),
                "item_count": rng.randint(1, 8),
                "status": status,
            }
        )
    return orders


def _write_tables(
    spark: SparkSession, root: Path, orders: list[dict[str, Any]], customers: list[dict[str, Any]]
) -> None:
    """RDS snapshot exports are Parquet per table; written with Spark (no extra Parquet library)."""
    for source, rows in ((ORDERS, orders), (CUSTOMERS, customers)):
        schema = ", ".join(f"{c} {t}" for c, t in source.columns.items())
        df = spark.createDataFrame([tuple(r[c] for c in source.columns) for r in rows], schema)
        df.coalesce(1).write.mode("overwrite").parquet(str(root / source.name))
