"""spark-submit entry point: build feature snapshots and write them to the offline store.

    spark-submit jobs/build_features.py --conf conf/emr.yaml --group all --as-of 2026-10-31T00:00:00Z

Takes the same arguments as the ``build-features`` console command; see ``--help``.
"""

import sys

from features.cli import build_main

if __name__ == "__main__":
    sys.exit(build_main(sys.argv[1:]))
