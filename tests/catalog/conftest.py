"""A moto server over HTTP on 127.0.0.1 that speaks Glue, for the session; emptied before each test."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.services.moto import moto_server

DATABASE = "feature_store"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_glue_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def glue(moto_glue_url: str, no_aws_credentials: None) -> Any:
    """An empty moto with the database ``feature_store``; the client the tests inspect it with.

    The default chain finds no credentials (``no_aws_credentials``), as in a new user's shell: the
    code under test signs with its loopback placeholders; this client signs with its own.
    """
    reset = urllib.request.Request(f"{moto_glue_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    client = boto3.client(
        "glue",
        region_name=REGION,
        endpoint_url=moto_glue_url,
        aws_access_key_id="inspector",
        aws_secret_access_key="inspector",
    )
    client.create_database(DatabaseInput={"Name": DATABASE})
    return client
