"""The reference domain's sources: their logical schemas and row-validity rules.

Storage details (paths, formats) are configuration, not definitions; see ``conf/``.
"""

from features.definitions import Entity, Source

CUSTOMER = Entity(
    name="customer",
    join_key="customer_id",
    description="A shopper, identified by the store's customer id (e.g. C000042).",
)

EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "search")

CLICKSTREAM = Source(
    name="clickstream",
    description="Web and app events, JSON lines or Parquet under .../events/dt=YYYY-MM-DD/.",
    columns={
        "event_id": "string",
        "customer_id": "string",
        "session_id": "string",
        "event_type": "string",
        "product_id": "string",
        "event_time": "timestamp",
    },
    key="event_id",
    timestamp="event_time",
    required=("event_id", "customer_id", "event_time"),
    allowed_values={"event_type": EVENT_TYPES},
)

ORDER_STATUSES = ("completed", "cancelled", "refunded")

ORDERS = Source(
    name="orders",
    description="The orders table of the shop's RDS database (live JDBC or snapshot export).",
    columns={
        "order_id": "string",
        "customer_id": "string",
        "order_time": "timestamp",
        "total_amount": "decimal(12,2)",
        "item_count": "int",
        "status": "string",
    },
    key="order_id",
    timestamp="order_time",
    required=("order_id", "customer_id", "order_time", "status"),
    allowed_values={"status": ORDER_STATUSES},
)

CUSTOMERS = Source(
    name="customers",
    description="The customers table of the shop's RDS database (live JDBC or snapshot export).",
    columns={
        "customer_id": "string",
        "birth_date": "date",
        "active_since": "timestamp",
        "marital_status": "string",
        "is_prime_member": "boolean",
        "country": "string",
    },
    key="customer_id",
    timestamp="active_since",
    required=("customer_id",),
)

ALL_SOURCES = {s.name: s for s in (CLICKSTREAM, ORDERS, CUSTOMERS)}
