"""Seeded generators of small, nasty inputs for oracle-vs-implementation tests.

Why: uniform random data almost never lands exactly on a window boundary, on
T itself, on a Feb-29 birthday or on an ``active_since`` equal to T, which are
exactly the places where off-by-one bugs live.  These generators mix a plain
random background with deliberately placed edge cases, and stay small (a few
thousand rows) so a local Spark session can chew through them in seconds.

Every generator returns ``(columns, rows)``: a list of column names and a list
of tuples of plain Python values.  Timestamps are *naive* ``datetime`` objects
holding UTC wall-clock time (the tables are ``TIMESTAMP`` without zone).  Use
:func:`as_aware_utc` before handing rows to PySpark's ``createDataFrame`` with
a ``TimestampType`` schema, because PySpark interprets naive datetimes in the
Python process's local zone.  :func:`load_into_duckdb` creates a typed DuckDB
table from the rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

Rows = list[tuple[Any, ...]]

EVENTS_SCHEMA: list[tuple[str, str]] = [
    ("event_id", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("event_type", "VARCHAR"),
    ("product_id", "VARCHAR"),
    ("event_time", "TIMESTAMP"),
]
ORDERS_SCHEMA: list[tuple[str, str]] = [
    ("order_id", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("order_time", "TIMESTAMP"),
    ("total_amount", "DECIMAL(12,2)"),
    ("item_count", "INTEGER"),
    ("status", "VARCHAR"),
]
CUSTOMERS_SCHEMA: list[tuple[str, str]] = [
    ("customer_id", "VARCHAR"),
    ("birth_date", "DATE"),
    ("active_since", "TIMESTAMP"),
    ("marital_status", "VARCHAR"),
    ("is_prime_member", "BOOLEAN"),
    ("country", "VARCHAR"),
]
SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "events": EVENTS_SCHEMA,
    "orders": ORDERS_SCHEMA,
    "customers": CUSTOMERS_SCHEMA,
}

EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search")
ORDER_STATUSES = ("completed", "cancelled", "refunded")
US = timedelta(microseconds=1)


def _t(as_of: datetime) -> datetime:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.astimezone(UTC).replace(tzinfo=None)


def _cid(i: int) -> str:
    return f"C{i:06d}"


def _boundaries(t: datetime, spans: Sequence[timedelta]) -> list[datetime]:
    """Each window start, one microsecond either side of it, and T itself."""
    out: list[datetime] = [t, t - US, t + US]
    for s in spans:
        out += [t - s, t - s - US, t - s + US]
    return out


def random_events(
    seed: int,
    as_of: datetime,
    n_customers: int = 40,
    n_events: int = 3000,
    lookback: timedelta = timedelta(days=1),
) -> tuple[list[str], Rows]:
    """Clickstream rows for ``customer_activity`` tests.

    Customer groups (by index modulo 8):
      0: only events in the look-back band ``[T-30d-L, T-30d)`` -> all-zero row
      1: only events at/after T or before the band -> must not appear at all
      2-7: a random background over ``[T-30d-L-3d, T+2d)`` plus events placed
           exactly on every window boundary (and +-1 microsecond), at T.
    Product ids come from a tiny catalogue so repeats across windows are
    common; ``product_id`` is NULL on ~10% of product_view rows and
    ``session_id`` NULL on ~5% of rows.  Sessions are reused across windows.
    Rows are shuffled, so event order is unrelated to time.
    """
    rng = random.Random(seed)
    t = _t(as_of)
    band_start = t - timedelta(days=30) - lookback
    spans = [
        timedelta(hours=1),
        timedelta(days=1),
        timedelta(days=7),
        timedelta(days=30),
    ]
    edges = _boundaries(t, [*spans, timedelta(days=30) + lookback])
    products = [f"P{i:03d}" for i in range(25)]

    def product_for(event_type: str) -> str | None:
        if event_type == "product_view":
            return None if rng.random() < 0.10 else rng.choice(products)
        if event_type == "add_to_cart":
            return None if rng.random() < 0.05 else rng.choice(products)
        return None if rng.random() < 0.8 else rng.choice(products)

    def time_for(group: int) -> datetime:
        if group == 0:
            # strictly inside the look-back band only
            width = int(lookback / US)
            return band_start + US * rng.randrange(max(width, 1))
        if group == 1:
            if rng.random() < 0.5:
                return t + US * rng.randrange(int(timedelta(days=2) / US))
            return band_start - US * rng.randrange(1, int(timedelta(days=5) / US))
        r = rng.random()
        if r < 0.15:
            return rng.choice(edges)
        if r < 0.35:  # dense near T so the 1h / 1d windows are populated
            return t - US * rng.randrange(-int(timedelta(minutes=10) / US), int(timedelta(hours=3) / US))
        start = band_start - timedelta(days=3)
        span = int((t + timedelta(days=2) - start) / US)
        return start + US * rng.randrange(span)

    rows: Rows = []
    for k in range(n_events):
        c = k % n_customers if k < n_customers else rng.randrange(n_customers)
        group = c % 8
        sess_pool = [f"S{c:04d}_{j}" for j in range(1 + c % 5)]
        event_type = rng.choices(EVENT_TYPES, weights=(4, 4, 1.5, 1))[0]
        session = None if rng.random() < 0.05 else rng.choice(sess_pool)
        rows.append(
            (
                f"E{k:07d}",
                _cid(c),
                session,
                event_type,
                product_for(event_type),
                time_for(group),
            )
        )
    # A customer whose only events are exactly at T - 30d - L (included) and
    # exactly at T (excluded), with NULL session and NULL product.
    c = n_customers
    rows.append((f"E{n_events:07d}", _cid(c), None, "product_view", None, band_start))
    rows.append((f"E{n_events + 1:07d}", _cid(c), None, "product_view", "P000", t))
    # A customer with one event exactly at T - 1h: counts in every window.
    c = n_customers + 1
    rows.append(
        (
            f"E{n_events + 2:07d}",
            _cid(c),
            "S_edge",
            "product_view",
            "P001",
            t - timedelta(hours=1),
        )
    )
    rows.append(
        (
            f"E{n_events + 3:07d}",
            _cid(c),
            "S_edge",
            "product_view",
            "P001",
            t - timedelta(days=30),
        )
    )
    rng.shuffle(rows)
    return [name for name, _ in EVENTS_SCHEMA], rows


def random_orders(
    seed: int,
    as_of: datetime,
    n_customers: int = 40,
    n_orders: int = 600,
    lookback: timedelta = timedelta(days=1),
) -> tuple[list[str], Rows]:
    """Order rows for ``customer_orders`` tests.

    Customer groups (by index modulo 6):
      0: only orders in the look-back band ``[T-90d-L, T-90d)``
      1: only cancelled/refunded orders (days_since_last_order NULL)
      2: orders only long before the band or at/after T -> absent from output
      3-5: random background over ``[T-400d, T+3d)`` with every status,
           NULL amounts (~10%), and orders placed exactly on window
           boundaries, at T, and exactly whole days before T.
    """
    rng = random.Random(seed)
    t = _t(as_of)
    band_start = t - timedelta(days=90) - lookback
    spans = [timedelta(days=7), timedelta(days=30), timedelta(days=90)]
    edges = _boundaries(t, [*spans, timedelta(days=90) + lookback])
    edges += [t - timedelta(days=d) for d in (1, 2, 3)] + [t - timedelta(days=2) + US]

    def amount() -> Decimal | None:
        if rng.random() < 0.10:
            return None
        return Decimal(rng.randrange(0, 5_000_00)) / 100

    def time_for(group: int) -> datetime:
        if group == 0:
            return band_start + US * rng.randrange(max(int(lookback / US), 1))
        if group == 2:
            if rng.random() < 0.5:
                return t + US * rng.randrange(int(timedelta(days=3) / US))
            return band_start - US * rng.randrange(1, int(timedelta(days=300) / US))
        r = rng.random()
        if r < 0.2:
            return rng.choice(edges)
        if r < 0.3:  # old history: only matters for days_since_last_order
            return t - timedelta(days=100) - US * rng.randrange(int(timedelta(days=300) / US))
        start = band_start - timedelta(days=2)
        return start + US * rng.randrange(int((t + timedelta(days=3) - start) / US))

    rows: Rows = []
    for k in range(n_orders):
        c = k % n_customers if k < n_customers else rng.randrange(n_customers)
        group = c % 6
        if group == 1:
            status = rng.choice(("cancelled", "refunded"))
        else:
            status = rng.choices(ORDER_STATUSES, weights=(6, 2, 1))[0]
        rows.append(
            (
                f"O{k:06d}",
                _cid(c),
                time_for(group),
                amount(),
                rng.randrange(1, 9),
                status,
            )
        )
    # A customer whose only completed order is old (outside 90d + L) but who
    # has a cancelled order in the window: days_since_last_order > 90.
    c = n_customers
    rows.append(
        (
            f"O{n_orders:06d}",
            _cid(c),
            t - timedelta(days=200, hours=5),
            Decimal("10.00"),
            1,
            "completed",
        )
    )
    rows.append(
        (
            f"O{n_orders + 1:06d}",
            _cid(c),
            t - timedelta(days=3),
            Decimal("5.00"),
            1,
            "cancelled",
        )
    )
    # Completed orders whose amounts are all NULL: sum 0.0, avg/max NULL.
    c = n_customers + 1
    rows.append((f"O{n_orders + 2:06d}", _cid(c), t - timedelta(days=1), None, 2, "completed"))
    rows.append(
        (
            f"O{n_orders + 3:06d}",
            _cid(c),
            t - timedelta(days=1) + US,
            None,
            2,
            "completed",
        )
    )
    rng.shuffle(rows)
    return [name for name, _ in ORDERS_SCHEMA], rows


def _years_before(d: date, years: int) -> date:
    """Same month/day ``years`` earlier; Feb 29 maps to Feb 28 if needed."""
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


def random_customers(
    seed: int,
    as_of: datetime,
    n_customers: int = 40,
) -> tuple[list[str], Rows]:
    """Customer rows for ``customer_profile`` tests.

    Includes birthdays on T's date, the day before and after, for ages around
    every bucket boundary (17/18, 29/30, ..., 69/70); Feb-29 birth dates;
    NULL birth_date / active_since / marital_status / is_prime_member /
    country; active_since exactly at T, 1 microsecond before and after T,
    and well after T (those at/after T must be excluded).
    """
    rng = random.Random(seed)
    t = _t(as_of)
    today = t.date()
    statuses = ("single", "married", "divorced", "widowed", None)
    countries = ("US", "DE", "FR", "IN", "BR", None)
    since_edges = [
        t,
        t - US,
        t + US,
        t + timedelta(days=10),
        t - timedelta(days=1),
        t - timedelta(days=1) + US,
    ]

    birth_edges: list[date] = []
    for years in (17, 18, 29, 30, 39, 40, 49, 50, 59, 60, 69, 70, 95):
        b = _years_before(today, years)
        birth_edges += [b, b - timedelta(days=1), b + timedelta(days=1)]
    birth_edges += [
        date(2000, 2, 29),
        date(1988, 2, 29),
        date(1960, 2, 29),
        date(2008, 2, 29),
    ]

    rows: Rows = []
    for c in range(n_customers):
        r = rng.random()
        if r < 0.1:
            birth: date | None = None
        elif r < 0.6:
            birth = rng.choice(birth_edges)
        else:
            birth = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 85))
        r = rng.random()
        if r < 0.1:
            since: datetime | None = None
        elif r < 0.35:
            since = rng.choice(since_edges)
        else:
            since = t - US * rng.randrange(1, int(timedelta(days=3000) / US))
        prime = rng.choice((True, False, None))
        rows.append((_cid(c), birth, since, rng.choice(statuses), prime, rng.choice(countries)))
    # Guarantee the headline edges regardless of the seed.
    n = n_customers
    rows.append(
        (
            _cid(n),
            _years_before(today, 30),
            t - timedelta(days=5),
            "married",
            True,
            "US",
        )
    )
    rows.append((_cid(n + 1), date(2000, 2, 29), t, "single", False, "DE"))  # excluded
    rows.append((_cid(n + 2), date(2000, 2, 29), None, None, None, None))
    rows.append((_cid(n + 3), None, t - US, None, None, None))
    rng.shuffle(rows)
    return [name for name, _ in CUSTOMERS_SCHEMA], rows


def as_aware_utc(rows: Rows) -> Rows:
    """Copy of ``rows`` with every naive ``datetime`` tagged as UTC (for PySpark)."""
    return [
        tuple(v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in row) for row in rows
    ]


def load_into_duckdb(con: duckdb.DuckDBPyConnection, name: str, kind: str, rows: Rows) -> None:
    """Create (or replace) table ``name`` typed per ``SCHEMAS[kind]`` from ``rows``."""
    schema = SCHEMAS[kind]
    cols = ", ".join(f"{c} {ty}" for c, ty in schema)
    con.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
    if rows:
        marks = ", ".join("?" for _ in schema)
        con.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])
