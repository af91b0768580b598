"""The validation stage: the quality gate every snapshot passes before anything is written.

* :mod:`features.validate.spec` — what is checked, derived from the feature definitions plus the
  ``EXPECTATIONS`` a group module declares. Free of Spark and Great Expectations, so group modules
  can import it at no cost.
* :mod:`features.validate.expectations` — runs those checks as a Great Expectations suite on the
  Spark DataFrame.
* :mod:`features.validate.gate` — the gate the pipeline calls: expectations, drift against the
  previous snapshot, input freshness, policy, JSON and HTML reports.
* :mod:`features.validate.skew` — the training-serving skew check (offline store vs online store).
* :mod:`features.validate.store` — finding a snapshot in the offline store; writing reports.

See docs/validation.md.
"""

import os

# Great Expectations must never phone home from a pipeline run (no analytics, no version check):
# set before any submodule imports it; the GX context is configured the same way.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
