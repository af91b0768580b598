"""A cost model for a real fleet, from the figures the other benchmarks measured on this machine.

Reads bench/RESULTS.json (the customer_activity snapshot at each measured size), bench/PUSH_RESULTS.json
(records per client CPU-second) and bench/BACKFILL_RESULTS.md (backfill / one
snapshot), and writes bench/COST_MODEL.md: for 100M, 1B and 10B events a day and 1M / 10M / 100M
entities, the executor core-minutes and the cores a 15-minute daily snapshot and a 30-day backfill
need, the push's time against SageMaker Feature Store's documented write limits, and which limit
binds first. Every assumption is a named constant below and is printed into the result.

    python bench/cost_model.py            # -> bench/COST_MODEL.md
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# -- Assumptions (stated in the output) --------------------------------------------------------------
#: Days of events a daily customer_activity snapshot reads: the 30d window, the 1d drop-out
#: look-back and one day of lateness (docs/semantics.md); the dt partitions outside are pruned.
BAND_DAYS = 32
#: An EMR executor core against one core of the benchmark machine, after S3 reads and network
#: shuffles (local disk and in-process shuffles on the bench). 0.7 is a planning figure, not measured.
CLUSTER_EFFICIENCY = 0.7
#: Wall-time budget the core counts are sized for.
BUDGET_MINUTES = 15
#: Feature groups pushed online per entity per day (customer_activity, customer_orders, customer_profile);
#: the windowed groups only push entities with events in their band, so this is an upper bound.
GROUPS_ONLINE = 3
#: Size of one record in bytes (names + values as the API sends them; the reference groups' records are
#: 0.4-0.8 KB): one write request unit (WRU = ceil(size / 1 KB)) per record.
RECORD_WRU = 1
#: SageMaker Feature Store quotas (docs.aws.amazon.com/sagemaker/latest/dg/feature-store-quotas.html):
#: transactions per second per API per account (soft), records per BatchWriteRecord call, write
#: capacity units provisionable per feature group and per region, WRU per record identifier per second.
ACCOUNT_TPS = 10_000
BATCH_SIZE = 25
WCU_PER_GROUP = 40_000
WCU_PER_REGION = 80_000
WRU_PER_IDENTIFIER = 500
#: Executor cores the push runs on in the table (one partition per core).
PUSH_CORES = 64

EVENTS_PER_DAY = (100_000_000, 1_000_000_000, 10_000_000_000)
ENTITIES = (1_000_000, 10_000_000, 100_000_000)


@dataclass(frozen=True)
class Snapshot:
    """Measured snapshot times: a fixed cost per job plus a cost per event read, fitted by least squares."""

    cores: int
    sizes: list[tuple[int, float]]  # (events, median seconds)
    fixed_s: float
    core_us_per_event: float

    def predicted(self, events: int) -> float:
        return self.fixed_s + events * self.core_us_per_event / 1e6 / self.cores


def fit_snapshot(results: dict[str, dict[str, list[float]]], cores: int) -> tuple[Snapshot, list[tuple[int, float]]]:
    """The model fitted on every measured size but the largest (when there are three or more),
    and the held-out sizes it is checked against."""
    sizes = sorted((int(n), statistics.median(engines["spark (this project)"])) for n, engines in results.items())
    if len(sizes) < 2:
        raise SystemExit("bench/RESULTS.json needs at least two sizes: run bench/run_bench.py first")
    held_out = sizes[-1:] if len(sizes) >= 3 else []
    sizes = sizes[: len(sizes) - len(held_out)]
    xs, ys = [n for n, _ in sizes], [t for _, t in sizes]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return Snapshot(cores, sizes, my - slope * mx, slope * cores * 1e6), held_out


def push_rate(push: dict[str, Any]) -> float:
    """Median records per client CPU-second of the product's batch_write_record runs."""
    rates = [
        r["records_per_client_cpu_s"]
        for r in push["runs"]
        if r.get("write_api") == "batch_write_record"
        and not str(r.get("code", "")).startswith("baseline")
        and "quota" not in r["name"]
    ]
    if not rates:
        raise SystemExit("bench/PUSH_RESULTS.json has no batch_write_record run: run bench/push_bench.py first")
    return float(statistics.median(rates))


def backfill_ratio(path: Path) -> tuple[float, str]:
    """Backfill / one snapshot at the largest size bench/BACKFILL_RESULTS.md measured."""
    found = re.findall(r"^- ([\d,]+) events: backfill / one snapshot = \*\*([\d.]+)x\*\*", path.read_text(), re.M)
    if not found:
        raise SystemExit(f"{path} has no 'backfill / one snapshot' line: run bench/backfill_bench.py first")
    events, ratio = max(found, key=lambda f: int(f[0].replace(",", "")))
    return float(ratio), f"{path.name}, {events} events"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f}"


def human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6)):
        if n >= size:
            return f"{n / size:g}{unit}"
    return f"{n:,}"


def render(
    snap: Snapshot,
    held_out: list[tuple[int, float]],
    rate: float,
    bf_ratio: float,
    bf_source: str,
    push: dict[str, Any],
) -> str:
    lines = [
        "# Cost model: what the daily snapshot, a 30-day backfill and the push need on EMR",
        "",
        "Generated by `bench/cost_model.py` from the figures measured on this machine; the method and",
        "its limits: [docs/performance.md](../docs/performance.md#a-cost-model-for-a-real-fleet).",
        "",
        "## Measured inputs",
        "",
        f"- Snapshot (bench/RESULTS.json, local[{snap.cores}]): "
        + ", ".join(f"{human(n)} events {t:.2f} s" for n, t in snap.sizes)
        + f". Least-squares fit: **{snap.fixed_s:.2f} s fixed + {snap.core_us_per_event:.3f} core-us per event**"
        f" ({1e6 / snap.core_us_per_event / 1e6:.2f}M events per core-second).",
        f"- Backfill of 30 daily snapshots / one snapshot: **{bf_ratio:.2f}x** ({bf_source}).",
        f"- Push (bench/PUSH_RESULTS.json, {push.get('when', '?')}, load average "
        f"{push.get('load_average_before_after', '?')}): BatchWriteRecord **{rate:,.0f} records per client "
        "CPU-second** (median of the product's runs).",
        "",
        "## Fit against the measured sizes",
        "",
        "| events | measured s | model s | model / measured | |",
        "|---:|---:|---:|---:|---|",
    ]
    for n, t in snap.sizes:
        lines.append(f"| {n:,} | {t:.2f} | {snap.predicted(n):.2f} | {snap.predicted(n) / t:.2f} | fitted |")
    for n, t in held_out:
        lines.append(
            f"| {n:,} | {t:.2f} | {snap.predicted(n):.2f} | **{snap.predicted(n) / t:.2f}** | held out: the check |"
        )
    if held_out:
        lines += [
            "",
            f"The line is fitted on the {len(snap.sizes)} smaller sizes only; the largest size was not used to fit"
            " it, so its row is a prediction checked against a measurement.",
        ]
    else:
        lines += ["", "Two sizes fit a line exactly: this is a calibration, not yet a check (a third size is)."]
    lines += [
        "",
        "## Assumptions",
        "",
        f"- A daily snapshot reads {BAND_DAYS} days of events (30d window + 1d drop-out look-back + 1 day of"
        " lateness); nothing is kept between daily runs.",
        f"- An EMR executor core does {CLUSTER_EFFICIENCY:.0%} of a bench core's work (S3 reads, network shuffles);"
        " a planning figure, not measured.",
        f"- Core counts are sized to finish in {BUDGET_MINUTES} minutes; the fixed cost per job is added once.",
        f"- {GROUPS_ONLINE} records per entity per day online (an upper bound), {RECORD_WRU} WRU each"
        " (records < 1 KB).",
        f"- SageMaker quotas: {ACCOUNT_TPS:,} TPS per API per account (soft), {BATCH_SIZE} records per"
        f" BatchWriteRecord, {WCU_PER_GROUP:,} WCU per group and {WCU_PER_REGION:,} per region (provisioned),"
        f" {WRU_PER_IDENTIFIER} WRU/s per record identifier.",
        "- Event cost does not depend on the number of entities (the aggregation hashes (entity, session) and"
        " (entity, product) pairs, which scale with events); entities drive the push and the offline write size.",
        "",
        "## Daily snapshot and 30-day backfill (customer_activity)",
        "",
        f"| events/day | events read | snapshot core-min | cores for {BUDGET_MINUTES} min | backfill core-min"
        f" | cores for {BUDGET_MINUTES} min | 30 single runs core-min |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for per_day in EVENTS_PER_DAY:
        read = per_day * BAND_DAYS
        core_s = read * snap.core_us_per_event / 1e6 / CLUSTER_EFFICIENCY
        budget = BUDGET_MINUTES * 60 - snap.fixed_s
        bf_core_s = core_s * bf_ratio
        lines.append(
            f"| {human(per_day)} | {human(read)} | {minutes(core_s)} | {math.ceil(core_s / budget)} | "
            f"{minutes(bf_core_s)} | {math.ceil(bf_core_s / budget)} | {minutes(30 * core_s)} |"
        )
    lines += [
        "",
        f"## The push (BatchWriteRecord, {PUSH_CORES} executor cores)",
        "",
        "| entities | records | client core-min | client min on "
        f"{PUSH_CORES} cores | on-demand: account TPS min | provisioned: WCU min | binds first |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for entities in ENTITIES:
        records = entities * GROUPS_ONLINE
        client_s = records / rate
        on_fleet = client_s / PUSH_CORES
        tps_s = records / (ACCOUNT_TPS * BATCH_SIZE)
        wcu = min(WCU_PER_GROUP * GROUPS_ONLINE, WCU_PER_REGION)
        wcu_s = records * RECORD_WRU / wcu
        limits = {"client CPU": on_fleet, "account TPS": tps_s}
        binds = max(limits, key=lambda k: limits[k])
        lines.append(
            f"| {human(entities)} | {human(records)} | {minutes(client_s)} | {minutes(on_fleet)} | {minutes(tps_s)} | "
            f"{minutes(wcu_s)} | {binds} (on-demand); WCU (provisioned) |"
        )
    lines += [
        "",
        f"One write per record identifier per day is far below {WRU_PER_IDENTIFIER} WRU/s per identifier: that limit"
        " never binds for a daily push. Provisioned mode is capped by WCU "
        f"({min(WCU_PER_GROUP * GROUPS_ONLINE, WCU_PER_REGION):,} records/s for {GROUPS_ONLINE} groups in one region"
        f" with the {WCU_PER_REGION:,} regional cap), on-demand by the account's BatchWriteRecord TPS"
        f" ({ACCOUNT_TPS * BATCH_SIZE:,} records/s). At {rate:,.0f} records per client CPU-second the account TPS"
        f" binds once the push runs on more than {math.ceil(ACCOUNT_TPS * BATCH_SIZE / rate)} executor cores;"
        " on fewer, the client's CPU does.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "COST_MODEL.md")
    args = parser.parse_args()
    results = json.loads((HERE / "RESULTS.json").read_text())
    cores = 2
    snap, held_out = fit_snapshot(results, cores)
    push = json.loads((HERE / "PUSH_RESULTS.json").read_text())
    rate = push_rate(push)
    ratio, source = backfill_ratio(HERE / "BACKFILL_RESULTS.md")
    args.out.write_text(render(snap, held_out, rate, ratio, source, push), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
