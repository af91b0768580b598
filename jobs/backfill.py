"""spark-submit entry point: many snapshots of a feature group in one job (docs/backfill.md).

    spark-submit jobs/backfill.py --conf conf/emr.yaml --group customer_activity \\
        --start 2026-10-01T00:00:00Z --end 2026-10-30T00:00:00Z --step 1d

Takes the same arguments as ``feature-pipeline backfill``; see ``--help``.
"""

import sys

from features.cli import main

if __name__ == "__main__":
    sys.exit(main(["backfill", *sys.argv[1:]]))
