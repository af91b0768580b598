"""Online-store console commands: ``feature-pipeline register | get-record | replay``.

Each command is an ``add_*_arguments(parser)`` / ``run_*(args) -> int`` pair so the project's
console entry point mounts it as a subcommand. Exit codes follow the CLI's convention: 0 success,
1 the operation failed (one line on stderr says why), 2 bad arguments. No command takes
credentials: boto3's default chain (environment, profile, instance role) provides them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from botocore.exceptions import BotoCoreError, ClientError

from features.config import ConfigError, load_conf
from features.online.client import control_client, get_record
from features.online.embedded import online_endpoint
from features.online.push import PushError, PushSettings
from features.online.registration import RegistrationError, register_groups
from features.online.replay import replay_dead_letters
from features.registry import resolve

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(command: str, message: str, code: int = EXIT_FAILED) -> int:
    print(f"{command} failed: {message}", file=sys.stderr)
    return code


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}"
    return str(exc)


def _endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf",
        default=None,
        help="take the online store from this conf (endpoint_url, or the embedded local runtime of conf/local.yaml)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a conf key"
    )
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="Feature Store endpoint, e.g. http://127.0.0.1:8765 for serve-local (default: from --conf, else AWS)",
    )
    parser.add_argument("--region", default=None, help="AWS region (default: from --conf, else us-east-1)")


@contextmanager
def _endpoint(args: argparse.Namespace) -> Iterator[tuple[str | None, str]]:
    """(endpoint URL, region): explicit flags win, then the conf's online store, then AWS."""
    if args.endpoint_url or not args.conf:
        yield args.endpoint_url, args.region or "us-east-1"
        return
    online = load_conf(args.conf, args.overrides).online_store
    with online_endpoint(online) as url:
        yield url, args.region or online.region


def add_register_arguments(parser: argparse.ArgumentParser) -> None:
    """``register``: create the feature groups defined in code that do not exist yet."""
    _endpoint_arguments(parser)
    parser.add_argument("--group", default="all", help="feature group name, or 'all' (default)")
    parser.add_argument("--role-arn", default=None, help="IAM role SageMaker uses for the offline store")
    parser.add_argument(
        "--offline-s3-uri", default=None, help="s3:// URI for SageMaker's offline store config (needs --role-arn)"
    )


def run_register(args: argparse.Namespace) -> int:
    """Register the groups; prints ``{"group": "created" | "exists"}``."""
    try:
        groups = resolve(args.group)
    except KeyError as exc:
        return _fail("register", str(exc.args[0]), EXIT_USAGE)
    try:
        with _endpoint(args) as (url, region):
            outcome = register_groups(
                control_client(endpoint_url=url, region=region),
                groups,
                offline_s3_uri=args.offline_s3_uri,
                role_arn=args.role_arn,
            )
    except ConfigError as exc:
        return _fail("register", str(exc), EXIT_USAGE)
    except ValueError as exc:
        return _fail("register", str(exc), EXIT_USAGE)
    except RegistrationError as exc:
        return _fail("register", str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _fail("register", _aws_error(exc))
    print(json.dumps(outcome, indent=2))
    return EXIT_OK


def add_get_record_arguments(parser: argparse.ArgumentParser) -> None:
    """``get-record``: print one entity's online record."""
    _endpoint_arguments(parser)
    parser.add_argument("--group", required=True, help="feature group name")
    parser.add_argument("--id", required=True, help="record identifier (the join key value), e.g. C000042")


def run_get_record(args: argparse.Namespace) -> int:
    """Print the record as a JSON object of feature -> value string; exit 1 if there is none."""
    try:
        with _endpoint(args) as (url, region):
            record = get_record(url, region, args.group, args.id)
    except ConfigError as exc:
        return _fail("get-record", str(exc), EXIT_USAGE)
    except (ClientError, BotoCoreError) as exc:
        return _fail("get-record", _aws_error(exc))
    if record is None:
        return _fail("get-record", f"no online record {args.id!r} in feature group {args.group}")
    print(json.dumps(record, indent=2, ensure_ascii=False))
    return EXIT_OK


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """``replay``: re-push dead-lettered records once their cause is fixed."""
    _endpoint_arguments(parser)
    parser.add_argument(
        "--path", required=True, help="a dead-letter file or directory, local or s3://, e.g. <root>/<group>/<run_id>"
    )
    parser.add_argument(
        "--dead-letter-root",
        default=None,
        help="where records that still fail go (default: the root --path is under, <root>/<group>/<run_id>)",
    )
    parser.add_argument("--write-api", choices=["batch_write_record", "put_record"], default="batch_write_record")
    parser.add_argument("--max-in-flight", type=int, default=16, help="concurrent requests (default: %(default)s)")
    parser.add_argument("--max-attempts", type=int, default=8, help="attempts per record (default: %(default)s)")
    parser.add_argument(
        "--tolerance", type=int, default=0, help="records that may still fail without exit 1 (default: %(default)s)"
    )


def default_dead_letter_root(path: str) -> str:
    """``<root>/<group>/<run_id>[/part-N.jsonl]`` -> ``<root>``: replays land next to the original."""
    trimmed = path.rstrip("/")
    if trimmed.endswith(".jsonl"):
        trimmed = trimmed.rsplit("/", 1)[0]
    parts = trimmed.rsplit("/", 2)
    return parts[0] if len(parts) == 3 and parts[0] not in ("", "s3:/", "s3a:/") else trimmed


def run_replay(args: argparse.Namespace) -> int:
    """Replay and print the counts as JSON; exit 1 when more than --tolerance records still fail."""
    try:
        with _endpoint(args) as (url, region):
            settings = PushSettings(
                endpoint_url=url,
                region=region,
                write_api=args.write_api,
                max_in_flight=args.max_in_flight,
                max_attempts=args.max_attempts,
                dead_letter_root=args.dead_letter_root or default_dead_letter_root(args.path),
                dead_letter_tolerance=args.tolerance,
            )
            result = replay_dead_letters(args.path, settings=settings)
    except ConfigError as exc:
        return _fail("replay", str(exc), EXIT_USAGE)
    except PushError as exc:
        if exc.result is not None:
            print(json.dumps(asdict(exc.result), indent=2))
        return _fail("replay", str(exc))
    except (ValueError, FileNotFoundError) as exc:
        return _fail("replay", str(exc), EXIT_USAGE)
    except (ClientError, BotoCoreError) as exc:
        return _fail("replay", _aws_error(exc))
    print(json.dumps(asdict(result), indent=2))
    return EXIT_OK
