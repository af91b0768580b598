"""Local SageMaker Feature Store runtime, "like DynamoDB Local".

moto does not implement the featurestore runtime, so this package ships an
emulator: one HTTP port that serves the ``sagemaker-featurestore-runtime``
rest-json API (PutRecord, BatchWriteRecord, GetRecord, BatchGetRecord,
DeleteRecord, ListRecords; TTL with ExpiresAt) and the ``sagemaker`` json 1.1
feature-store subset (Create/Describe/List/DeleteFeatureGroup,
Update/DescribeFeatureMetadata, Search over FeatureMetadata and FeatureGroup),
persisted in SQLite, with injectable latency, throttling, 5xx errors and a TPS
quota, and a movable clock for TTL tests (featurestore-local/README.md).  Production boto3
code runs unchanged with ``endpoint_url=store.endpoint_url``.
"""

from .cli import add_arguments, main, run
from .errors import THROTTLING_EXCEPTION, ApiError
from .faults import FaultConfig
from .server import LocalFeatureStore

__all__ = [
    "THROTTLING_EXCEPTION",
    "ApiError",
    "FaultConfig",
    "LocalFeatureStore",
    "add_arguments",
    "main",
    "run",
]
