"""The database password, fetched at read time and never stored, logged or echoed.

Configuration only names where the password lives (``JdbcConf.password_env`` or
``JdbcConf.password_secret_id``), so conf files, ``--set`` overrides, argv and run reports never
hold it. On EMR the secret comes from AWS Secrets Manager with the cluster's instance role (the
default credential chain and region); locally, from an environment variable.

Every error here names the variable or secret id and what to do, and never the value: messages
end up in one-line job failures and run reports.
"""

from __future__ import annotations

import json
import os

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from features.config import JdbcConf


class SecretError(RuntimeError):
    """The password could not be resolved; the message says where it was looked for, never its value."""


def resolve_password(conf: JdbcConf) -> str:
    """The password for ``conf.user``: from ``password_env`` or from Secrets Manager ``password_secret_id``."""
    if conf.password_env is not None:
        value = os.environ.get(conf.password_env)
        if not value:
            raise SecretError(
                f"environment variable {conf.password_env} (the password of database user {conf.user}) "
                "is not set or is empty"
            )
        return value
    if conf.password_secret_id is not None:
        return secret_string(conf.password_secret_id)
    raise SecretError("jdbc configuration names no password: set password_env or password_secret_id")


def secret_string(secret_id: str) -> str:
    """``GetSecretValue``: a JSON object's ``password`` (RDS-managed secrets), else the plain string."""
    try:
        client = boto3.client("secretsmanager")
        response = client.get_secret_value(SecretId=secret_id)
    except NoRegionError:
        raise SecretError(
            f"cannot read secret {secret_id}: no AWS region configured (set AWS_REGION or a profile region)"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SecretError(
            f"cannot read secret {secret_id}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        ) from None
    except BotoCoreError as exc:
        raise SecretError(f"cannot read secret {secret_id}: {type(exc).__name__}: {exc}") from None
    text = response.get("SecretString")
    if text is None:
        binary = response.get("SecretBinary")
        if binary is None:
            raise SecretError(f"secret {secret_id} has no SecretString or SecretBinary value")
        try:
            text = bytes(binary).decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"secret {secret_id} is binary and not UTF-8 text") from None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        # A plain-text secret (which may happen to parse as a JSON number or string) is the password.
        if not text:
            raise SecretError(f"secret {secret_id} is empty")
        return str(text)
    password = parsed.get("password")
    if not isinstance(password, str) or not password:
        keys = ", ".join(sorted(map(str, parsed))) or "none"
        raise SecretError(f"secret {secret_id} is a JSON object without a non-empty 'password' string (keys: {keys})")
    return password
