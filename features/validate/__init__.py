"""The validation stage: the quality gate every snapshot passes before anything is written.

* :mod:`features.validate.spec` — what is checked, derived from the feature definitions plus the
  ``EXPECTATIONS`` a group module declares. Free of Spark and Great Expectations, so group modules
  can import it at no cost.
* :mod:`features.validate.expectations` — runs those checks as a Great Expectations suite on the
  Spark DataFrame.
* :mod:`features.validate.gate` — the gate the pipeline calls: expectations, drift against the
  previous snapshot, input freshness, policy; returns the result and writes nothing.
* :mod:`features.validate.drift` — PSI and null-rate drift against the previous snapshot.
* :mod:`features.validate.report` — writes a result's JSON and HTML reports.
* :mod:`features.validate.skew` — the training-serving skew check (offline store vs online store).

The previous snapshot is read with :func:`features.load.offline.snapshot_before`.

See docs/validation.md.
"""

import os

# Great Expectations must never phone home from a pipeline run (no analytics, no version check):
# set before any submodule imports it; the GX context is configured the same way.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
