"""Slowly changing customer attributes, one record per row of the customers extract."""

from datetime import datetime

from pyspark.sql import Column
from pyspark.sql import functions as F

from features.definitions import Derived, FeatureGroup
from features.sources import CUSTOMER, CUSTOMERS
from features.transform.columns import age_bucket, flag, whole_days_between, whole_years_between
from features.validate.spec import ExpectationSpec


def _age(as_of: datetime) -> Column:
    return whole_years_between(F.col("birth_date"), as_of.date())


customer_profile = FeatureGroup(
    name="customer_profile",
    description="Who the customer is: age band, tenure, membership, market.",
    owner="customer-data",
    tags=("profile", "demographics", "membership"),
    update_frequency="1d",
    freshness_sla="26h",
    entity=CUSTOMER,
    source=CUSTOMERS,
    derived=(
        Derived(
            name="age",
            dtype="Integral",
            inputs=("birth_date",),
            expr=_age,
            description="Age in whole years at the snapshot date (UTC)",
            unit="years",
        ),
        Derived(
            name="age_bucket",
            dtype="String",
            inputs=("birth_date",),
            expr=lambda t: age_bucket(_age(t)),
            description="Age band: 18-29, 30-39, 40-49, 50-59, 60-69, 70-plus or unknown",
        ),
        Derived(
            name="tenure_days",
            dtype="Integral",
            inputs=("active_since",),
            expr=lambda t: whole_days_between(F.col("active_since"), t),
            description="Whole days since the customer became active",
            unit="days",
        ),
        Derived(
            name="is_prime_member",
            dtype="Integral",
            inputs=("is_prime_member",),
            expr=lambda t: flag(F.col("is_prime_member")),
            description="1 if a Prime member, 0 if not",
        ),
        Derived(
            name="marital_status",
            dtype="String",
            inputs=("marital_status",),
            expr=lambda t: F.col("marital_status"),
            description="Marital status as recorded",
        ),
        Derived(
            name="country",
            dtype="String",
            inputs=("country",),
            expr=lambda t: F.col("country"),
            description="Country of the customer's account",
        ),
    ),
)

#: Custom checks the validation gate runs with the ones derived from the definition.
EXPECTATIONS = [
    ExpectationSpec(
        type="expect_column_values_to_be_between",
        kwargs={"column": "age", "min_value": 0, "max_value": 120},
        description="an age outside 0..120 means a wrong birth_date in the customers extract",
    ),
]
