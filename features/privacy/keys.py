"""The pseudonymisation key: from AWS Secrets Manager (``secret_id``) or, locally, an environment
variable (``key_env``); never from conf, argv or a file of this project.

Read on the driver before any Spark work, so a missing key is one line and nothing is computed.
The secret is read as :mod:`features.io.secrets` reads database passwords (the default credential
chain and region; ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` points boto3 elsewhere): its text, or a
JSON object's ``password``. The key is the text's UTF-8 bytes, exactly as stored.
"""

from __future__ import annotations

import os

from features.config import PseudonymisationConf
from features.io.secrets import SecretError, secret_string
from features.privacy.pseudonym import Pseudonymiser, PseudonymKeyError


def load_pseudonymiser(conf: PseudonymisationConf) -> Pseudonymiser | None:
    """The pseudonymiser when ``conf.enabled`` (None when not); a one-line :class:`SecretError` otherwise."""
    if not conf.enabled:
        return None
    if conf.key_env is not None:
        where = f"environment variable {conf.key_env}"
        text = os.environ.get(conf.key_env)
        if not text:
            raise SecretError(
                f"{where} (the pseudonymisation key, privacy.pseudonymisation.key_env) is not set or is empty"
            )
    elif conf.secret_id is not None:
        where = f"secret {conf.secret_id}"
        text = secret_string(conf.secret_id)
    else:  # the conf model refuses this; a PseudonymisationConf built in code may not
        raise SecretError("privacy.pseudonymisation names no key: set secret_id or key_env")
    try:
        return Pseudonymiser(text.encode("utf-8"))
    except PseudonymKeyError as exc:
        raise SecretError(f"{where}: {exc}") from None
