"""Fixtures shared by the local runtime's tests: a real server on a free port, real boto3 clients.

The server's clock is a :class:`FakeClock`, so TTL and timestamps move when a test says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from featurestore_local import LocalFeatureStore

from tests.featurestore_local.test_runtime import FakeClock, client, create_group


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[LocalFeatureStore]:
    server = LocalFeatureStore(db_path=str(tmp_path / "fs.sqlite"), port=0, clock=clock)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sm(store: LocalFeatureStore) -> Any:
    return client("sagemaker", store.endpoint_url)


@pytest.fixture
def rt(store: LocalFeatureStore) -> Any:
    return client("sagemaker-featurestore-runtime", store.endpoint_url)


@pytest.fixture
def group(sm: Any) -> str:
    return create_group(sm)
