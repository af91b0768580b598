"""Browsing activity per customer from the clickstream, over 1h, 1d, 7d and 30d."""

from features.definitions import Aggregation, FeatureGroup, where
from features.sources import CLICKSTREAM, CUSTOMER

customer_activity = FeatureGroup(
    name="customer_activity",
    description="How much and how widely a customer has browsed recently.",
    owner="personalisation-data",
    tags=("browsing", "engagement", "clickstream"),
    update_frequency="1d",
    freshness_sla="26h",
    entity=CUSTOMER,
    source=CLICKSTREAM,
    windows=("1h", "1d", "7d", "30d"),
    aggregations=(
        Aggregation(name="event_count", op="count", description="Events of any type", unit="events"),
        Aggregation(
            name="product_view_count",
            op="count",
            filter=where("event_type", "product_view"),
            description="Product page views",
            unit="events",
        ),
        Aggregation(
            name="add_to_cart_count",
            op="count",
            filter=where("event_type", "add_to_cart"),
            description="Add-to-cart events",
            unit="events",
        ),
        Aggregation(
            name="distinct_products_viewed",
            op="count_distinct",
            column="product_id",
            filter=where("event_type", "product_view"),
            description="Distinct products viewed (exact)",
            unit="products",
        ),
        Aggregation(
            name="session_count",
            op="count_distinct",
            column="session_id",
            description="Distinct sessions (exact)",
            unit="sessions",
        ),
    ),
)
