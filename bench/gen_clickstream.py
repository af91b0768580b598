"""Synthetic clickstream generator for the customer_activity benchmarks.

Why: a benchmark on uniform random rows flatters every engine (no skew, no
session structure, distinct counts that never repeat).  This generator makes
data with the shape that actually hurts: Zipf-like customer activity, sessions
of 5-30 events minutes apart owned by exactly one customer, a skewed product
catalogue, a daily traffic cycle over the 45 days before ``as_of`` and a few
percent of rows at/after ``as_of`` that every feature must ignore.

It is vectorised numpy end to end; DuckDB only formats the id strings and
writes Parquet (pyarrow is not available).  Output: ``out_dir/part-*.parquet``
(``event_time`` is written as TIMESTAMP WITH TIME ZONE, i.e. Parquet
``TIMESTAMP_MICROS`` with ``isAdjustedToUTC=true``, which Spark reads as a
plain ``timestamp``) plus ``_manifest.json``; Spark and DuckDB both ignore
files starting with ``_``.  Rows are written in time order, like an
append-only log.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search")
EVENT_TYPE_P = (0.50, 0.30, 0.08, 0.12)
N_PRODUCTS = 50_000
HISTORY_DAYS = 45
FUTURE_FRACTION = 0.03  # sessions starting at/after as_of
ROWS_PER_FILE_TARGET = 5_000_000  # ~100 MB of Parquet per file
MIN_FILES = 8
ROW_GROUP_ROWS = 1_000_000
MANIFEST = "_manifest.json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENERATOR_VERSION = 1
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S

# Relative traffic per UTC hour: a quiet night and an evening peak.
HOURLY_WEIGHTS = np.array(
    [
        3,
        2,
        1.5,
        1,
        1,
        1.5,
        2.5,
        4,
        5,
        5.5,
        6,
        6,
        6.5,
        6,
        5.5,
        5.5,
        6,
        7,
        8,
        9,
        9.5,
        8,
        6,
        4,
    ]
)


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(w)
    return cdf / cdf[-1]


def _manifest(n_events: int, seed: int, as_of: datetime, n_customers: int) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "n_events": n_events,
        "seed": seed,
        "as_of": as_of.astimezone(UTC).isoformat(),
        "n_customers": n_customers,
    }


def _columns(n_events: int, as_of: datetime, seed: int, n_customers: int) -> dict[str, np.ndarray]:
    """All columns as integer/ categorical numpy arrays, sorted by event time."""
    rng = np.random.default_rng(seed)

    # Sessions: 5-30 events each (skewed towards short ones).
    mean_len = 12
    n_sessions_guess = n_events // mean_len + 16
    lengths = np.minimum(5 + rng.geometric(1 / (mean_len - 4), n_sessions_guess), 30)
    while lengths.sum() < n_events:  # top up in the unlikely short case
        more = np.minimum(5 + rng.geometric(1 / (mean_len - 4), n_sessions_guess), 30)
        lengths = np.concatenate([lengths, more])
    ends = np.cumsum(lengths)
    n_sessions = int(np.searchsorted(ends, n_events) + 1)
    lengths = lengths[:n_sessions].copy()
    lengths[-1] -= int(ends[n_sessions - 1] - n_events)

    # Session owner: Zipf-like skew over a shuffled customer id space; the
    # first sessions are dealt round-robin so (nearly) every id is used.
    cust_rank = rng.permutation(n_customers)
    owner = cust_rank[np.searchsorted(_zipf_cdf(n_customers, 0.6), rng.random(n_sessions))]
    k = min(n_sessions, n_customers)
    owner[:k] = rng.permutation(n_customers)[:k]

    # Session start: day in the 45-day history, hour from a daily cycle; a
    # few percent land in the two days from as_of onwards (some exactly on it).
    as_of_us = (as_of - EPOCH) // timedelta(microseconds=1)
    hour_p = HOURLY_WEIGHTS / HOURLY_WEIGHTS.sum()
    day = rng.integers(-HISTORY_DAYS, 0, n_sessions)
    future = rng.random(n_sessions) < FUTURE_FRACTION
    day[future] = rng.integers(0, 2, int(future.sum()))
    hour = rng.choice(24, n_sessions, p=hour_p)
    start = as_of_us + day * US_PER_DAY + hour * 3_600 * US_PER_S + rng.integers(0, 3_600 * US_PER_S, n_sessions)
    exact = future & (rng.random(n_sessions) < 0.05)
    start[exact] = as_of_us

    # Events: seconds-to-minutes apart inside a session (first gap is 0).
    sess_of_event = np.repeat(np.arange(n_sessions), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    gaps = (rng.exponential(90.0, n_events) * US_PER_S).astype(np.int64) + 1_000
    gaps[first] = 0
    offset = np.cumsum(gaps)
    offset -= np.repeat(offset[first], lengths)
    event_us = start[sess_of_event] + offset

    etype = rng.choice(len(EVENT_TYPES), n_events, p=EVENT_TYPE_P).astype(np.int8)
    prod_rank = rng.permutation(N_PRODUCTS)
    product = prod_rank[np.searchsorted(_zipf_cdf(N_PRODUCTS, 0.9), rng.random(n_events))].astype(np.int64)
    product[(etype != 1) & (etype != 2)] = -1  # NULL for page_view/search

    order = np.argsort(event_us, kind="stable")
    return {
        "eid": np.arange(n_events, dtype=np.int64),
        "cust": owner[sess_of_event][order].astype(np.int64),
        "sess": sess_of_event[order].astype(np.int64),
        "etype": etype[order],
        "prod": product[order],
        "ts_us": event_us[order],
    }


_SELECT = """
    SELECT
        'E' || lpad(CAST(eid AS VARCHAR), 10, '0')                AS event_id,
        'C' || lpad(CAST(cust AS VARCHAR), 6, '0')                AS customer_id,
        'S' || lpad(CAST(sess AS VARCHAR), 9, '0')                AS session_id,
        CAST(['page_view', 'product_view', 'add_to_cart', 'search'][etype + 1]
             AS VARCHAR)                                          AS event_type,
        CASE WHEN prod >= 0
             THEN 'P' || lpad(CAST(prod AS VARCHAR), 5, '0') END  AS product_id,
        CAST(make_timestamp(ts_us) AS TIMESTAMPTZ)                AS event_time
    FROM chunk
"""


def generate(
    n_events: int,
    out_dir: str,
    *,
    as_of: datetime,
    seed: int = 7,
    n_customers: int | None = None,
) -> str:
    """Write ``n_events`` clickstream rows to ``out_dir``; return a Parquet glob.

    Skips the work if ``out_dir/_manifest.json`` already describes the same
    ``(n_events, seed, as_of, n_customers)``.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    n_cust = n_customers or max(1, n_events // 100)
    out = Path(out_dir)
    glob = str(out / "*.parquet")
    want = _manifest(n_events, seed, as_of, n_cust)
    mpath = out / MANIFEST
    if mpath.exists() and json.loads(mpath.read_text()).get("params") == want:
        return glob
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    t0 = time.perf_counter()
    cols = _columns(n_events, as_of, seed, n_cust)
    n_files = max(MIN_FILES, math.ceil(n_events / ROWS_PER_FILE_TARGET))
    bounds = np.linspace(0, n_events, n_files + 1).astype(np.int64)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = []
    for i in range(n_files):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        chunk = pd.DataFrame({k: v[lo:hi] for k, v in cols.items()})
        con.register("chunk", chunk)
        path = out / f"part-{i:05d}.parquet"
        con.execute(f"COPY ({_SELECT}) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
        con.unregister("chunk")
        files.append(path.name)
    con.close()
    mpath.write_text(
        json.dumps(
            {
                "params": want,
                "files": files,
                "seconds": round(time.perf_counter() - t0, 2),
            },
            indent=2,
        )
    )
    return glob


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--customers", type=int, default=None)
    p.add_argument(
        "--as-of",
        default="2026-10-31T00:00:00+00:00",
        help="snapshot time T (ISO 8601 with offset)",
    )
    a = p.parse_args(argv)
    as_of = datetime.fromisoformat(a.as_of)
    t0 = time.perf_counter()
    glob = generate(a.events, a.out, as_of=as_of, seed=a.seed, n_customers=a.customers)
    print(f"{glob} ready in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
