"""The reference domain's sources: their logical schemas and row-validity rules.

Storage details (paths, formats) are configuration, not definitions; see ``conf/``.
"""

from features.definitions import Entity, Source

CUSTOMER = Entity(
    name="customer",
    join_key="customer_id",
    description="A shopper, identified by the store's customer id (e.g. C000042).",
    pseudonymise=True,
)

#: Customer ids are opaque, but they become online-store record identifiers and appear in file
#: names of exports and dead letters downstream: only letters, digits and ``_ . : -`` are
#: accepted, so quotes, ``;``, ``/`` and whitespace (``C1'; DROP TABLE x;--``, ``../../etc``)
#: are quarantined as ``invalid customer_id`` instead of travelling further.
CUSTOMER_ID_PATTERN = r"[A-Za-z0-9_.:-]+"

#: An order above this amount is a unit or encoding error, not a purchase.
MAX_ORDER_AMOUNT = 1e9

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
    patterns={"customer_id": CUSTOMER_ID_PATTERN},
    pii=("customer_id",),
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
    patterns={"customer_id": CUSTOMER_ID_PATTERN},
    pii=("customer_id",),
    ranges={"total_amount": (0.0, MAX_ORDER_AMOUNT), "item_count": (0, None)},
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
    patterns={"customer_id": CUSTOMER_ID_PATTERN},
    pii=("customer_id",),
)
