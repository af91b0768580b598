"""Independent DuckDB oracle for the customer feature sets.

Why this exists: the production pipeline computes these features in PySpark with
performance tricks (window pre-aggregation, approximate-free distinct counting,
etc.).  Tests need a second, deliberately boring implementation of the *same
specification* to compare against.  This module is that implementation: plain
SQL, one query per feature set, written straight from the spec and never from
the Spark code, so that a shared misunderstanding is unlikely.

Conventions shared by every function:

* ``as_of`` (T) is a timezone-aware datetime; it is converted to a naive UTC
  ``datetime`` and bound as a DuckDB ``TIMESTAMP`` (the source columns are
  ``TIMESTAMP`` holding UTC wall-clock values).
* Window bounds are computed in Python with exact ``timedelta`` arithmetic and
  passed as parameters, so there is no doubt about interval semantics
  (a "30d" window is exactly 30 * 24 hours).
* A window ``w`` covers ``T - w <= time < T``.  Nothing at or after T is used.
* Rows come back as ``dict``s of plain Python values (int/float/str/None),
  sorted by ``customer_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

ACTIVITY_WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)

ORDER_WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
    ("90d", timedelta(days=90)),
)

MICROS_PER_DAY = 86_400 * 1_000_000

# Python 3.11 f-strings cannot contain backslashes inside {...}.
_SEP12 = ",\n" + " " * 12
_SEP16 = ",\n" + " " * 16


def _naive_utc(as_of: datetime) -> datetime:
    """Return ``as_of`` as a naive datetime holding the UTC wall-clock time."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.astimezone(UTC).replace(tzinfo=None)


def format_event_time(as_of: datetime) -> str:
    """Format T the way every output row carries it: ``yyyy-MM-ddTHH:mm:ssZ``."""
    return _naive_utc(as_of).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_utc(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")


def _fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def activity_columns() -> list[str]:
    """Output column order of ``customer_activity``."""
    cols = ["customer_id", "event_time"]
    for feature in (
        "event_count",
        "product_view_count",
        "add_to_cart_count",
        "distinct_products_viewed",
        "session_count",
    ):
        cols += [f"{feature}_{w}" for w, _ in ACTIVITY_WINDOWS]
    return cols


def orders_columns() -> list[str]:
    """Output column order of ``customer_orders``."""
    cols = ["customer_id", "event_time"]
    for feature in (
        "order_count",
        "order_amount_sum",
        "order_amount_avg",
        "order_amount_max",
        "cancelled_order_count",
    ):
        cols += [f"{feature}_{w}" for w, _ in ORDER_WINDOWS]
    return [*cols, "days_since_last_order"]


PROFILE_COLUMNS: list[str] = [
    "customer_id",
    "event_time",
    "age",
    "age_bucket",
    "tenure_days",
    "is_prime_member",
    "marital_status",
    "country",
]


def customer_activity(
    con: duckdb.DuckDBPyConnection,
    *,
    events: str,
    as_of: datetime,
    lookback: timedelta,
) -> list[dict[str, Any]]:
    """Clickstream counts per customer over 1h/1d/7d/30d windows ending at T.

    Entity set: customers with at least one event in ``[T - 30d - L, T)``.
    Every count is an exact ``COUNT`` / ``COUNT(DISTINCT)``; with a ``FILTER``
    that matches nothing these return 0, never NULL, which is what the spec
    wants for empty windows (and for look-back-only customers).
    """
    _set_utc(con)
    params: dict[str, Any] = {
        "t": _naive_utc(as_of),
        "band_start": _naive_utc(as_of) - timedelta(days=30) - lookback,
        "event_time_str": format_event_time(as_of),
    }
    for w, delta in ACTIVITY_WINDOWS:
        params[f"start_{w}"] = _naive_utc(as_of) - delta

    def in_window(w: str) -> str:
        # The upper bound (< T) is already enforced by the WHERE clause.
        return f"event_time >= CAST($start_{w} AS TIMESTAMP)"

    select: list[str] = []
    for w, _ in ACTIVITY_WINDOWS:
        select.append(f"COUNT(*) FILTER (WHERE {in_window(w)}) AS event_count_{w}")
    for w, _ in ACTIVITY_WINDOWS:
        select.append(
            f"COUNT(*) FILTER (WHERE {in_window(w)} AND event_type = 'product_view') AS product_view_count_{w}"
        )
    for w, _ in ACTIVITY_WINDOWS:
        select.append(f"COUNT(*) FILTER (WHERE {in_window(w)} AND event_type = 'add_to_cart') AS add_to_cart_count_{w}")
    for w, _ in ACTIVITY_WINDOWS:
        # COUNT(DISTINCT x) ignores NULL product_id by definition.
        select.append(
            f"COUNT(DISTINCT product_id) FILTER (WHERE {in_window(w)}"
            f" AND event_type = 'product_view') AS distinct_products_viewed_{w}"
        )
    for w, _ in ACTIVITY_WINDOWS:
        # COUNT(DISTINCT x) ignores NULL session_id by definition.
        select.append(f"COUNT(DISTINCT session_id) FILTER (WHERE {in_window(w)}) AS session_count_{w}")

    sql = f"""
        SELECT
            customer_id,
            CAST($event_time_str AS VARCHAR) AS event_time,
            {_SEP12.join(select)}
        FROM {events}
        WHERE event_time >= CAST($band_start AS TIMESTAMP)
          AND event_time <  CAST($t AS TIMESTAMP)
        GROUP BY customer_id
        ORDER BY customer_id
    """
    rows = _fetch_dicts(con, sql, params)
    assert all(list(r) == activity_columns() for r in rows)
    return rows


def customer_orders(
    con: duckdb.DuckDBPyConnection,
    *,
    orders: str,
    as_of: datetime,
    lookback: timedelta,
) -> list[dict[str, Any]]:
    """Order features per customer over 7d/30d/90d windows ending at T.

    Entity set: customers with at least one order (any status) in
    ``[T - 90d - L, T)``.  ``days_since_last_order`` looks at *all* completed
    orders before T, so it is computed in a separate aggregate over the whole
    history and LEFT JOINed onto the entity set.

    Money: ``SUM``/``MAX`` run on the exact DECIMAL and are cast to DOUBLE at
    the end.  The average is the exact rational ``sum_cents / (100 * n)``
    computed with one IEEE division of two exactly representable integers, i.e.
    the DOUBLE nearest to the true decimal mean.  (Spark's ``avg`` on
    DECIMAL(12,2) returns DECIMAL(16,6), rounded to 6 places before any cast,
    so an implementation that does that may differ by up to 5e-7.)
    """
    _set_utc(con)
    params: dict[str, Any] = {
        "t": _naive_utc(as_of),
        "band_start": _naive_utc(as_of) - timedelta(days=90) - lookback,
        "event_time_str": format_event_time(as_of),
        "micros_per_day": MICROS_PER_DAY,
    }
    for w, delta in ORDER_WINDOWS:
        params[f"start_{w}"] = _naive_utc(as_of) - delta

    def completed_in(w: str) -> str:
        return f"status = 'completed' AND order_time >= CAST($start_{w} AS TIMESTAMP)"

    select: list[str] = []
    for w, _ in ORDER_WINDOWS:
        select.append(f"COUNT(*) FILTER (WHERE {completed_in(w)}) AS order_count_{w}")
    for w, _ in ORDER_WINDOWS:
        select.append(
            f"CAST(COALESCE(SUM(total_amount) FILTER (WHERE {completed_in(w)}), 0) AS DOUBLE) AS order_amount_sum_{w}"
        )
    for w, _ in ORDER_WINDOWS:
        # NULL when there is no completed order with a non-NULL amount.
        # total_amount * 100 is an exact integer number of cents.
        select.append(
            f"CAST(SUM(CAST(total_amount * 100 AS HUGEINT))"
            f" FILTER (WHERE {completed_in(w)}) AS DOUBLE)"
            f" / CAST(100 * COUNT(total_amount) FILTER (WHERE {completed_in(w)})"
            f" AS DOUBLE) AS order_amount_avg_{w}"
        )
    for w, _ in ORDER_WINDOWS:
        select.append(f"CAST(MAX(total_amount) FILTER (WHERE {completed_in(w)}) AS DOUBLE) AS order_amount_max_{w}")
    for w, _ in ORDER_WINDOWS:
        select.append(
            f"COUNT(*) FILTER (WHERE status = 'cancelled'"
            f" AND order_time >= CAST($start_{w} AS TIMESTAMP))"
            f" AS cancelled_order_count_{w}"
        )

    sql = f"""
        WITH windowed AS (
            SELECT
                customer_id,
                {_SEP16.join(select)}
            FROM {orders}
            WHERE order_time >= CAST($band_start AS TIMESTAMP)
              AND order_time <  CAST($t AS TIMESTAMP)
            GROUP BY customer_id
        ),
        last_completed AS (
            SELECT customer_id, MAX(order_time) AS last_order_time
            FROM {orders}
            WHERE status = 'completed'
              AND order_time < CAST($t AS TIMESTAMP)
            GROUP BY customer_id
        )
        SELECT
            w.customer_id,
            CAST($event_time_str AS VARCHAR) AS event_time,
            w.* EXCLUDE (customer_id),
            -- whole days, floored; T > last_order_time so the difference is > 0
            -- and integer division (//) is a floor.
            (epoch_us(CAST($t AS TIMESTAMP)) - epoch_us(l.last_order_time))
                // CAST($micros_per_day AS BIGINT) AS days_since_last_order
        FROM windowed AS w
        LEFT JOIN last_completed AS l USING (customer_id)
        ORDER BY w.customer_id
    """
    rows = _fetch_dicts(con, sql, params)
    assert all(list(r) == orders_columns() for r in rows)
    return rows


def customer_profile(
    con: duckdb.DuckDBPyConnection,
    *,
    customers: str,
    as_of: datetime,
) -> list[dict[str, Any]]:
    """Static profile features as of T, one row per customers row that existed at T.

    ``age`` uses DuckDB's own calendar arithmetic,
    ``date_sub('year', birth_date, T::DATE)``, which counts whole years
    elapsed.  Feb-29 birthdays: in a non-leap year DuckDB treats Feb 28 as the
    anniversary (month-end clamping), so someone born 2000-02-29 is 25 on
    2026-02-27 and turns 26 on 2026-02-28; in a leap year they turn 28 on
    2028-02-29 (still 27 on 2028-02-28).  A birth_date after T yields a
    negative age (bucket 'unknown').
    """
    _set_utc(con)
    params: dict[str, Any] = {
        "t": _naive_utc(as_of),
        "micros_per_day": MICROS_PER_DAY,
        "event_time_str": format_event_time(as_of),
    }
    sql = f"""
        WITH aged AS (
            SELECT
                *,
                -- T's UTC date: T is a naive TIMESTAMP holding UTC.
                date_sub('year', birth_date, CAST(CAST($t AS TIMESTAMP) AS DATE))
                    AS age_years
            FROM {customers}
            WHERE active_since IS NULL OR active_since < CAST($t AS TIMESTAMP)
        )
        SELECT
            customer_id,
            CAST($event_time_str AS VARCHAR) AS event_time,
            CAST(age_years AS BIGINT) AS age,
            CASE
                WHEN age_years BETWEEN 18 AND 29 THEN '18-29'
                WHEN age_years BETWEEN 30 AND 39 THEN '30-39'
                WHEN age_years BETWEEN 40 AND 49 THEN '40-49'
                WHEN age_years BETWEEN 50 AND 59 THEN '50-59'
                WHEN age_years BETWEEN 60 AND 69 THEN '60-69'
                WHEN age_years >= 70 THEN '70-plus'
                ELSE 'unknown'
            END AS age_bucket,
            -- active_since < T here, so the difference is > 0 and // floors.
            (epoch_us(CAST($t AS TIMESTAMP)) - epoch_us(active_since))
                // CAST($micros_per_day AS BIGINT) AS tenure_days,
            CAST(is_prime_member AS BIGINT) AS is_prime_member,
            marital_status,
            country
        FROM aged
        ORDER BY customer_id, age, tenure_days, is_prime_member, marital_status,
                 country
    """
    rows = _fetch_dicts(con, sql, params)
    assert all(list(r) == PROFILE_COLUMNS for r in rows)
    return rows
