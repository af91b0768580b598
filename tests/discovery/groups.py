"""Two versions of one small group, for the catalog tests: v1 deprecated, v2 adding a feature."""

from __future__ import annotations

from pyspark.sql import functions as F

from features.definitions import Derived, FeatureGroup
from features.sources import CUSTOMER, CUSTOMERS

_TENURE = Derived(
    name="tenure_days",
    dtype="Integral",
    inputs=("active_since",),
    expr=lambda t: F.lit(1),
    description="Whole days since the customer became active",
    unit="days",
)
_COUNTRY = Derived(
    name="country",
    dtype="String",
    inputs=("country",),
    expr=lambda t: F.col("country"),
    description="Country of the customer's account",
)
_PRIME = Derived(
    name="is_prime_member",
    dtype="Integral",
    inputs=("is_prime_member",),
    expr=lambda t: F.lit(1),
    description="1 if a <Prime> member, 0 if not",
)

TRAITS_V1 = FeatureGroup(
    name="customer_traits",
    description="A few customer attributes.",
    owner="ml-platform",
    tags=("traits", "tier:gold"),
    freshness_sla="26h",
    update_frequency="1d",
    entity=CUSTOMER,
    source=CUSTOMERS,
    derived=(_TENURE, _COUNTRY),
    deprecated="use customer_traits_v2, which adds is_prime_member",
)
TRAITS_V2 = FeatureGroup(
    name="customer_traits",
    version=2,
    description="A few customer attributes, with membership.",
    owner="ml-platform",
    tags=("traits", "membership"),
    freshness_sla="26h",
    update_frequency="1d",
    entity=CUSTOMER,
    source=CUSTOMERS,
    derived=(_TENURE, _COUNTRY, _PRIME),
)
