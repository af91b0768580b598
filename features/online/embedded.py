"""Which online store a command talks to: an explicit endpoint, AWS, or the embedded local runtime.

Local development should not need a server started by hand: with ``online_store.embedded_db``
set (``conf/local.yaml``) and no ``endpoint_url``, each command starts the local Feature Store
runtime in-process on that SQLite file for its own duration. The records persist in the file,
so ``get-record`` after ``make run`` sees what the run pushed. It needs no AWS credentials: the
clients of its loopback endpoint sign with placeholder keys when the default chain has none
(``features.online.client``); nothing here touches the environment.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from features.config import ConfigError, OnlineStoreConf

log = logging.getLogger(__name__)


@contextmanager
def online_endpoint(conf: OnlineStoreConf) -> Iterator[str | None]:
    """The endpoint URL to use (None: AWS's own), running the embedded runtime when configured."""
    if not conf.runs_embedded:
        yield conf.endpoint_url
        return
    assert conf.embedded_db is not None
    os.makedirs(os.path.dirname(os.path.abspath(conf.embedded_db)), exist_ok=True)
    check_runtime_installed(conf)
    from featurestore_local import LocalFeatureStore  # a developer tool, absent from job artifacts

    with LocalFeatureStore(db_path=conf.embedded_db, host="127.0.0.1", port=0) as store:
        log.info("embedded local Feature Store runtime at %s (db %s)", store.endpoint_url, conf.embedded_db)
        yield store.endpoint_url


def check_runtime_installed(conf: OnlineStoreConf) -> None:
    """Fail before any work when the conf wants the embedded runtime and it is not installed."""
    if conf.runs_embedded and importlib.util.find_spec("featurestore_local") is None:
        raise ConfigError(
            "online_store.embedded_db needs the local Feature Store runtime, which is not installed: "
            "pip install -e featurestore-local (make setup does), or set online_store.endpoint_url"
        )
