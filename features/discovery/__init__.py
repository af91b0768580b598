"""Discovery: the catalog of feature groups and features, searchable and as static HTML.

``entries`` turns definitions (and the conf's source locations) into catalog entries, ``search``
matches them, ``state`` reads what the stores hold (newest snapshot, its age against the
freshness SLA, row count and null rates, the last validation verdict) and ``html`` renders the
self-contained pages. ``feature-pipeline catalog`` (features/cli/catalog.py) joins them;
docs/discovery.md describes all of it.
"""
