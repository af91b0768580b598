"""Feature groups for the tiering tests: one online with a TTL, one batch-only."""

from __future__ import annotations

from typing import Any

from pyspark.sql import functions as F

from features.definitions import Derived, FeatureGroup, Source
from features.sources import CUSTOMER

SOURCE = Source(name="people", description="test source", columns={"customer_id": "string"}, key="customer_id")


def make_group(name: str, **options: Any) -> FeatureGroup:
    def feature(fname: str, dtype: Any) -> Derived:
        return Derived(name=fname, dtype=dtype, inputs=(), expr=lambda t: F.lit(None), description=f"test {fname}")

    return FeatureGroup(
        name=name,
        description="Features for tiering tests",
        owner="tests",
        entity=CUSTOMER,
        source=SOURCE,
        derived=(feature("visits", "Integral"), feature("segment", "String")),
        **options,
    )
