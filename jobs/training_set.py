"""spark-submit entry point: build a point-in-time training set from a labels table.

    spark-submit jobs/training_set.py --conf conf/emr.yaml --labels s3://bucket/labels.csv --out s3://bucket/ts/

Takes the same arguments as ``feature-pipeline training-set``; see ``--help``.
"""

import sys

from features.cli import main

if __name__ == "__main__":
    sys.exit(main(["training-set", *sys.argv[1:]]))
