"""Checks of the DuckDB oracle itself.

Why: the oracle is what every Spark test is compared against, so a bug in it
would silently bless the same bug in the implementation.  These tests pin the
spec's edge cases on tiny hand-typed data, and cross-check the SQL against a
brute-force pure-Python evaluation on the random edge-case generators.  No
Spark here, so they run in well under a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import duckdb
import pytest

from tests.oracle import duckdb_features as oracle
from tests.oracle import random_data as rd

T = datetime(2026, 10, 31, tzinfo=UTC)
TN = T.replace(tzinfo=None)  # naive UTC, as stored in the tables
L = timedelta(days=1)
US = timedelta(microseconds=1)
# Snapshot times for the brute-force cross-checks: midnight, mid-day with
# seconds, Feb 28 of a non-leap year and Feb 29 of a leap year.
AS_OFS = pytest.mark.parametrize(
    "as_of",
    [
        T,
        datetime(2026, 3, 1, 13, 45, 7, tzinfo=UTC),
        datetime(2027, 2, 28, 9, tzinfo=UTC),
        datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),
    ],
    ids=["oct31", "mar1-midday", "feb28-nonleap", "feb29-leap"],
)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in rows}


# --------------------------------------------------------------------------
# customer_activity
# --------------------------------------------------------------------------


def test_activity_window_bounds(con: duckdb.DuckDBPyConnection) -> None:
    rd.load_into_duckdb(
        con,
        "ev",
        "events",
        [
            ("e1", "A", "s1", "page_view", None, TN - timedelta(hours=1)),  # in 1h
            ("e2", "A", "s1", "page_view", None, TN),  # at T: excluded
            ("e3", "A", "s2", "page_view", None, TN + timedelta(days=1)),  # after T
            ("e4", "A", "s3", "search", None, TN - timedelta(hours=1) - US),  # 1d only
            ("e5", "A", "s4", "search", None, TN - timedelta(days=30)),  # in 30d
            ("e6", "A", "s5", "search", None, TN - timedelta(days=30) - US),  # band
            ("e7", "B", "s9", "page_view", None, TN - timedelta(days=30, hours=12)),
            ("e8", "C", "s9", "page_view", None, TN - timedelta(days=31)),  # band edge
            ("e9", "D", "s9", "page_view", None, TN - timedelta(days=31) - US),  # out
            ("e10", "E", "s9", "page_view", None, TN),  # only at T: out
        ],
    )
    rows = oracle.customer_activity(con, events="ev", as_of=T, lookback=L)
    assert [r["customer_id"] for r in rows] == ["A", "B", "C"]
    a = _by_id(rows)["A"]
    assert a["event_time"] == "2026-10-31T00:00:00Z"
    assert (
        a["event_count_1h"],
        a["event_count_1d"],
        a["event_count_7d"],
        a["event_count_30d"],
    ) == (1, 2, 2, 3)
    assert (a["session_count_1h"], a["session_count_1d"], a["session_count_30d"]) == (
        1,
        2,
        3,
    )
    for cid in ("B", "C"):  # look-back only: all zeros, never NULL
        r = _by_id(rows)[cid]
        assert all(r[c] == 0 for c in oracle.activity_columns()[2:])
    assert list(a) == oracle.activity_columns()


def test_activity_distinct_products_and_nulls(con: duckdb.DuckDBPyConnection) -> None:
    h = timedelta(minutes=5)
    rd.load_into_duckdb(
        con,
        "ev",
        "events",
        [
            ("e1", "A", "s1", "product_view", "P1", TN - h),
            ("e2", "A", "s1", "product_view", "P1", TN - 2 * h),  # repeat product
            (
                "e3",
                "A",
                None,
                "product_view",
                None,
                TN - 3 * h,
            ),  # NULL product & session
            ("e4", "A", "s2", "add_to_cart", "P2", TN - 4 * h),  # not a product_view
            ("e5", "A", "s2", "product_view", "P3", TN - timedelta(days=2)),
        ],
    )
    a = oracle.customer_activity(con, events="ev", as_of=T, lookback=L)[0]
    assert a["product_view_count_1h"] == 3
    assert a["distinct_products_viewed_1h"] == 1
    assert a["distinct_products_viewed_7d"] == 2
    assert a["add_to_cart_count_1h"] == 1
    assert a["event_count_1h"] == 4
    assert a["session_count_1h"] == 2  # NULL session not counted
    assert a["session_count_7d"] == 2


# --------------------------------------------------------------------------
# customer_orders
# --------------------------------------------------------------------------


def test_orders_windows_amounts_and_days_since(con: duckdb.DuckDBPyConnection) -> None:
    d = Decimal
    rd.load_into_duckdb(
        con,
        "od",
        "orders",
        [
            ("o1", "A", TN - timedelta(days=7), d("10.00"), 1, "completed"),  # in 7d
            ("o2", "A", TN - timedelta(days=7) - US, d("0.00"), 1, "completed"),
            ("o3", "A", TN - timedelta(days=8), d("0.00"), 1, "completed"),
            ("o4", "A", TN - timedelta(days=8), None, 1, "completed"),  # NULL amount
            ("o5", "A", TN - timedelta(days=1), d("99.99"), 1, "cancelled"),
            ("o6", "A", TN - timedelta(days=2), d("5.00"), 1, "refunded"),
            ("o7", "A", TN, d("1000.00"), 1, "completed"),  # at T: excluded
            # only an old completed order + an in-window cancellation
            ("o8", "B", TN - timedelta(days=200), d("1.00"), 1, "completed"),
            ("o9", "B", TN - timedelta(days=90), d("1.00"), 1, "cancelled"),
            # completed exactly 2 days before T and 2 days minus 1us: floor -> 2, 1
            ("o10", "C", TN - timedelta(days=2), d("1.00"), 1, "completed"),
            ("o11", "D", TN - timedelta(days=2) + US, d("1.00"), 1, "completed"),
            # only in the look-back band, refunded: row exists, all NULL/zero
            ("o12", "E", TN - timedelta(days=90) - US, d("1.00"), 1, "refunded"),
            (
                "o13",
                "F",
                TN - timedelta(days=91) - US,
                d("1.00"),
                1,
                "completed",
            ),  # out
        ],
    )
    rows = _by_id(oracle.customer_orders(con, orders="od", as_of=T, lookback=L))
    assert sorted(rows) == ["A", "B", "C", "D", "E"]
    a = rows["A"]
    assert list(a) == oracle.orders_columns()
    assert (a["order_count_7d"], a["order_count_30d"]) == (1, 4)
    assert a["order_amount_sum_7d"] == 10.0
    assert a["order_amount_avg_30d"] == 10.0 / 3  # NULL amount ignored
    assert a["order_amount_max_30d"] == 10.0
    assert (a["cancelled_order_count_7d"], a["cancelled_order_count_90d"]) == (1, 1)
    assert a["days_since_last_order"] == 7
    b = rows["B"]
    assert b["order_count_90d"] == 0 and b["order_amount_sum_90d"] == 0.0
    assert b["order_amount_avg_90d"] is None and b["order_amount_max_90d"] is None
    assert b["cancelled_order_count_90d"] == 1 and b["cancelled_order_count_30d"] == 0
    assert b["days_since_last_order"] == 200
    assert rows["C"]["days_since_last_order"] == 2
    assert rows["D"]["days_since_last_order"] == 1
    assert rows["E"]["days_since_last_order"] is None
    assert rows["E"]["order_amount_sum_90d"] == 0.0


def test_orders_avg_is_exact_decimal_mean(con: duckdb.DuckDBPyConnection) -> None:
    amounts = ["0.10", "0.20", "0.20", "1234567890.01", "0.07"]
    rd.load_into_duckdb(
        con,
        "od",
        "orders",
        [(f"o{i}", "A", TN - timedelta(hours=i + 1), Decimal(a), 1, "completed") for i, a in enumerate(amounts)],
    )
    a = oracle.customer_orders(con, orders="od", as_of=T, lookback=L)[0]
    exact = sum(Fraction(x) for x in amounts) / len(amounts)
    assert a["order_amount_avg_7d"] == float(exact)
    assert a["order_amount_sum_7d"] == float(sum(Fraction(x) for x in amounts))


# --------------------------------------------------------------------------
# customer_profile
# --------------------------------------------------------------------------


def test_profile_age_on_birthday_and_buckets(con: duckdb.DuckDBPyConnection) -> None:
    rd.load_into_duckdb(
        con,
        "cu",
        "customers",
        [
            ("A", date(2000, 11, 1), None, None, None, None),
            ("B", date(2008, 10, 31), TN - US, "single", True, "US"),  # 18 today
            ("C", date(2008, 11, 1), TN - timedelta(days=1), None, False, None),  # 17
            (
                "D",
                date(1956, 10, 31),
                TN - timedelta(days=1) + US,
                None,
                None,
                None,
            ),  # 70
            ("E", None, TN, None, None, None),  # active_since == T: excluded
            ("F", None, TN + US, None, None, None),  # after T: excluded
        ],
    )
    rows = _by_id(oracle.customer_profile(con, customers="cu", as_of=T))
    assert sorted(rows) == ["A", "B", "C", "D"]
    assert (rows["A"]["age"], rows["A"]["age_bucket"]) == (25, "18-29")
    assert (rows["B"]["age"], rows["B"]["age_bucket"]) == (18, "18-29")
    assert (rows["C"]["age"], rows["C"]["age_bucket"]) == (17, "unknown")
    assert (rows["D"]["age"], rows["D"]["age_bucket"]) == (70, "70-plus")
    assert rows["A"]["tenure_days"] is None and rows["A"]["is_prime_member"] is None
    assert rows["B"]["tenure_days"] == 0 and rows["B"]["is_prime_member"] == 1
    assert rows["C"]["tenure_days"] == 1 and rows["C"]["is_prime_member"] == 0
    assert rows["D"]["tenure_days"] == 0
    assert list(rows["B"]) == oracle.PROFILE_COLUMNS
    assert rows["B"]["marital_status"] == "single" and rows["B"]["country"] == "US"
    nov1 = datetime(2026, 11, 1, tzinfo=UTC)
    rows = _by_id(oracle.customer_profile(con, customers="cu", as_of=nov1))
    assert rows["A"]["age"] == 26
    assert rows["A"]["event_time"] == "2026-11-01T00:00:00Z"


def test_profile_feb29_birthday(con: duckdb.DuckDBPyConnection) -> None:
    rd.load_into_duckdb(con, "cu", "customers", [("A", date(2000, 2, 29), None, None, None, None)])

    def age_on(day: date) -> int:
        as_of = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        return oracle.customer_profile(con, customers="cu", as_of=as_of)[0]["age"]

    # Non-leap year: DuckDB clamps the anniversary to Feb 28.
    assert age_on(date(2026, 2, 27)) == 25
    assert age_on(date(2026, 2, 28)) == 26
    # Leap year: the birthday is Feb 29.
    assert age_on(date(2028, 2, 28)) == 27
    assert age_on(date(2028, 2, 29)) == 28


# --------------------------------------------------------------------------
# Brute-force cross-check on the random edge-case generators
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@AS_OFS
def test_activity_matches_brute_force(con: duckdb.DuckDBPyConnection, seed: int, as_of: datetime) -> None:
    tn, stamp = as_of.replace(tzinfo=None), oracle.format_event_time(as_of)
    cols, rows = rd.random_events(seed, as_of, n_customers=24, n_events=1500)
    rd.load_into_duckdb(con, "ev", "events", rows)
    got = oracle.customer_activity(con, events="ev", as_of=as_of, lookback=L)

    recs = [dict(zip(cols, r, strict=True)) for r in rows]
    ids = sorted({r["customer_id"] for r in recs if tn - timedelta(days=30) - L <= r["event_time"] < tn})
    windows = {w: tn - d for w, d in oracle.ACTIVITY_WINDOWS}
    expected = []
    for cid in ids:
        out: dict[str, Any] = {"customer_id": cid, "event_time": stamp}
        mine = [r for r in recs if r["customer_id"] == cid]
        inw = {w: [r for r in mine if start <= r["event_time"] < tn] for w, start in windows.items()}
        for w in windows:
            out[f"event_count_{w}"] = len(inw[w])
        for w in windows:
            out[f"product_view_count_{w}"] = sum(r["event_type"] == "product_view" for r in inw[w])
        for w in windows:
            out[f"add_to_cart_count_{w}"] = sum(r["event_type"] == "add_to_cart" for r in inw[w])
        for w in windows:
            out[f"distinct_products_viewed_{w}"] = len(
                {r["product_id"] for r in inw[w] if r["event_type"] == "product_view"} - {None}
            )
        for w in windows:
            out[f"session_count_{w}"] = len({r["session_id"] for r in inw[w]} - {None})
        expected.append(out)
    assert got == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
@AS_OFS
def test_orders_matches_brute_force(con: duckdb.DuckDBPyConnection, seed: int, as_of: datetime) -> None:
    tn, stamp = as_of.replace(tzinfo=None), oracle.format_event_time(as_of)
    cols, rows = rd.random_orders(seed, as_of)
    rd.load_into_duckdb(con, "od", "orders", rows)
    got = oracle.customer_orders(con, orders="od", as_of=as_of, lookback=L)

    recs = [dict(zip(cols, r, strict=True)) for r in rows]
    ids = sorted({r["customer_id"] for r in recs if tn - timedelta(days=90) - L <= r["order_time"] < tn})
    windows = {w: tn - d for w, d in oracle.ORDER_WINDOWS}
    expected = []
    for cid in ids:
        out: dict[str, Any] = {"customer_id": cid, "event_time": stamp}
        mine = [r for r in recs if r["customer_id"] == cid]
        comp = {
            w: [r for r in mine if s <= r["order_time"] < tn and r["status"] == "completed"] for w, s in windows.items()
        }
        amts = {w: [r["total_amount"] for r in comp[w] if r["total_amount"] is not None] for w in windows}
        for w in windows:
            out[f"order_count_{w}"] = len(comp[w])
        for w in windows:
            out[f"order_amount_sum_{w}"] = float(sum(amts[w], Decimal(0)))
        for w in windows:
            out[f"order_amount_avg_{w}"] = float(Fraction(sum(amts[w], Decimal(0))) / len(amts[w])) if amts[w] else None
        for w in windows:
            out[f"order_amount_max_{w}"] = float(max(amts[w])) if amts[w] else None
        for w, s in windows.items():
            out[f"cancelled_order_count_{w}"] = sum(
                1 for r in mine if s <= r["order_time"] < tn and r["status"] == "cancelled"
            )
        done = [r["order_time"] for r in mine if r["status"] == "completed" and r["order_time"] < tn]
        out["days_since_last_order"] = (tn - max(done)) // timedelta(days=1) if done else None
        expected.append(out)
    assert got == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
@AS_OFS
def test_profile_matches_brute_force(con: duckdb.DuckDBPyConnection, seed: int, as_of: datetime) -> None:
    cols, rows = rd.random_customers(seed, as_of)
    rd.load_into_duckdb(con, "cu", "customers", rows)
    got = oracle.customer_profile(con, customers="cu", as_of=as_of)
    tn = as_of.replace(tzinfo=None)
    stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")

    def age(b: date | None) -> int | None:
        if b is None:
            return None
        years = tn.year - b.year
        # Feb-29 births: anniversary is Feb 28 in non-leap years (DuckDB rule).
        month, day = b.month, b.day
        if (month, day) == (2, 29) and not _is_leap(tn.year):
            day = 28
        return years - 1 if (tn.month, tn.day) < (month, day) else years

    def bucket(a: int | None) -> str:
        if a is None or a < 18:
            return "unknown"
        if a >= 70:
            return "70-plus"
        lo = 18 if a < 30 else a // 10 * 10
        hi = 29 if a < 30 else lo + 9
        return f"{lo}-{hi}"

    expected = []
    for r in sorted((dict(zip(cols, x, strict=True)) for x in rows), key=lambda r: r["customer_id"]):
        if r["active_since"] is not None and r["active_since"] >= tn:
            continue
        a = age(r["birth_date"])
        expected.append(
            {
                "customer_id": r["customer_id"],
                "event_time": stamp,
                "age": a,
                "age_bucket": bucket(a),
                "tenure_days": None if r["active_since"] is None else (tn - r["active_since"]) // timedelta(days=1),
                "is_prime_member": None if r["is_prime_member"] is None else int(r["is_prime_member"]),
                "marital_status": r["marital_status"],
                "country": r["country"],
            }
        )
    assert got == expected


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
