"""Purchase history per customer from the orders table, over 7d, 30d and 90d."""

from features.definitions import Aggregation, FeatureGroup, where
from features.sources import CUSTOMER, ORDERS

COMPLETED = where("status", "completed")

customer_orders = FeatureGroup(
    name="customer_orders",
    description="How often and how much a customer buys; completed orders unless said otherwise.",
    owner="commerce-analytics",
    tags=("orders", "purchases", "revenue"),
    update_frequency="1d",
    freshness_sla="26h",
    entity=CUSTOMER,
    source=ORDERS,
    windows=("7d", "30d", "90d"),
    aggregations=(
        Aggregation(name="order_count", op="count", filter=COMPLETED, description="Completed orders", unit="orders"),
        Aggregation(
            name="order_amount_sum",
            op="sum",
            column="total_amount",
            filter=COMPLETED,
            description="Total amount of completed orders",
            unit="order currency",
        ),
        Aggregation(
            name="order_amount_avg",
            op="avg",
            column="total_amount",
            filter=COMPLETED,
            description="Average amount of completed orders",
            unit="order currency",
        ),
        Aggregation(
            name="order_amount_max",
            op="max",
            column="total_amount",
            filter=COMPLETED,
            description="Largest completed order",
            unit="order currency",
        ),
        Aggregation(
            name="cancelled_order_count",
            op="count",
            filter=where("status", "cancelled"),
            description="Cancelled orders",
            unit="orders",
        ),
        Aggregation(
            name="days_since_last_order",
            op="days_since_last",
            filter=COMPLETED,
            description="Whole days since the last completed order before the snapshot; null if none ever",
            unit="days",
        ),
    ),
)
