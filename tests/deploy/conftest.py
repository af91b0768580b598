"""A moto server over HTTP on 127.0.0.1 for the deploy commands, reached the standard boto3 way."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import pytest

from tests.services.moto import moto_server

#: The placeholder credentials of the fixture: every test greps what moto stored and what the
#: commands printed for the secret, which must appear nowhere.
PLACEHOLDER_KEY_ID = "AKIAPLACEHOLDER00000"
PLACEHOLDER_SECRET = "placeholder-secret-never-in-a-request-0000"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server for the module; boto3 finds it through AWS_ENDPOINT_URL, signs with placeholders."""
    with moto_server() as url, pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION"))]:
            env.delenv(name)
        env.setenv("AWS_ENDPOINT_URL", url)
        env.setenv("AWS_ACCESS_KEY_ID", PLACEHOLDER_KEY_ID)
        env.setenv("AWS_SECRET_ACCESS_KEY", PLACEHOLDER_SECRET)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        yield url


@pytest.fixture
def moto(moto_url: str) -> str:
    """The module's moto server, emptied before each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()
    return moto_url
