"""Online-store commands: ``feature-pipeline register | get-record | get-features | replay``.

No command takes credentials: boto3's default chain (environment, profile, instance role)
provides them, or placeholder keys for a loopback endpoint when it has none
(``features.online.client``). The endpoint comes from ``--endpoint-url``, else the conf's online
store (which may run the embedded local runtime), else AWS.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from botocore.exceptions import BotoCoreError, ClientError

from features.cli.base import Command, add_conf_arguments
from features.cli.errors import EXIT_OK, EXIT_USAGE, fail
from features.config import ConfigError, load_conf
from features.definitions import DefinitionError, FeatureGroup
from features.io.secrets import SecretError
from features.online.client import (
    control_client,
    get_record,
    placeholder_credentials_needed,
    runtime_client,
    usable_write_api,
)
from features.online.deadletter import default_dead_letter_root
from features.online.embedded import online_endpoint
from features.online.reader import ReadRetry, RecordReader
from features.online.registration import RegistrationError, register_groups
from features.online.replay import replay_dead_letters
from features.online.serving import FeatureSelectionError, feature_vectors
from features.online.settings import PushError, PushSettings
from features.privacy.keys import load_pseudonymiser
from features.registry import resolve


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}"
    return str(exc)


def _endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    add_conf_arguments(
        parser,
        required=False,
        help="take the online store from this conf (endpoint_url, or the embedded local runtime of conf/local.yaml)",
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


def _lookup_ids(args: argparse.Namespace, groups: list[FeatureGroup], ids: list[str]) -> list[str]:
    """The record identifiers to look up: with ``privacy.pseudonymisation`` on in ``--conf`` and a
    pseudonymised entity, the pseudonyms of the raw ``ids`` (the records were pushed under them)."""
    if not args.conf or not any(g.entity.pseudonymise for g in groups):
        return ids
    pseudonymiser = load_pseudonymiser(load_conf(args.conf, args.overrides).privacy.pseudonymisation)
    return ids if pseudonymiser is None else [pseudonymiser.pseudonym(i) for i in ids]


def _batch_only(group: FeatureGroup) -> str:
    return (
        f"feature group {group.name} is batch-only (online=False): it is in the offline store only; "
        "read it with feature-pipeline training-set or from its offline tables"
    )


def _register_arguments(parser: argparse.ArgumentParser) -> None:
    """``register``: create the feature groups defined in code that do not exist yet."""
    _endpoint_arguments(parser)
    parser.add_argument("--group", default="all", help="feature group name, or 'all' (default)")
    parser.add_argument("--role-arn", default=None, help="IAM role SageMaker uses for the offline store")
    parser.add_argument(
        "--offline-s3-uri", default=None, help="s3:// URI for SageMaker's offline store config (needs --role-arn)"
    )


def _register(args: argparse.Namespace) -> int:
    """Register the groups; prints ``{"group": "created" | "exists" | "updated"}`` ("updated": the group
    existed and some of its feature metadata was published again)."""
    try:
        groups = resolve(args.group)
    except KeyError as exc:
        return fail("register", str(exc.args[0]), EXIT_USAGE)
    for group in groups:
        if not group.online:
            print(f"note: not registering {group.name}, a batch-only group (online=False)", file=sys.stderr)
    groups = [g for g in groups if g.online]
    try:
        with _endpoint(args) as (url, region):
            outcome = register_groups(
                control_client(endpoint_url=url, region=region),
                groups,
                offline_s3_uri=args.offline_s3_uri,
                role_arn=args.role_arn,
            )
    except (ConfigError, DefinitionError) as exc:
        return fail("register", str(exc), EXIT_USAGE)
    except ValueError as exc:
        return fail("register", str(exc), EXIT_USAGE)
    except RegistrationError as exc:
        return fail("register", str(exc))
    except (ClientError, BotoCoreError) as exc:
        return fail("register", _aws_error(exc))
    print(json.dumps(outcome, indent=2))
    return EXIT_OK


def _get_record_arguments(parser: argparse.ArgumentParser) -> None:
    """``get-record``: print one entity's online record."""
    _endpoint_arguments(parser)
    parser.add_argument("--group", required=True, help="feature group name")
    parser.add_argument(
        "--id",
        required=True,
        help="record identifier (the join key value), e.g. C000042; the raw id when the conf pseudonymises it",
    )


def _get_record(args: argparse.Namespace) -> int:
    """Print the record as a JSON object of feature -> value string; exit 1 if there is none."""
    try:
        known = resolve(args.group)
    except KeyError:
        known = []  # a group defined elsewhere: looked up as named
    if known and not known[0].online:
        return fail("get-record", _batch_only(known[0]), EXIT_USAGE)
    try:
        (record_id,) = _lookup_ids(args, known, [args.id])
        with _endpoint(args) as (url, region):
            record = get_record(url, region, args.group, record_id)
    except (ConfigError, DefinitionError) as exc:
        return fail("get-record", str(exc), EXIT_USAGE)
    except SecretError as exc:
        return fail("get-record", str(exc))
    except (ClientError, BotoCoreError) as exc:
        return fail("get-record", _aws_error(exc))
    if record is None:
        return fail("get-record", f"no online record {args.id!r} in feature group {args.group}")
    print(json.dumps(record, indent=2, ensure_ascii=False))
    return EXIT_OK


def _get_features_arguments(parser: argparse.ArgumentParser) -> None:
    """``get-features``: the feature vector a model endpoint gets, for one or more entities."""
    _endpoint_arguments(parser)
    parser.add_argument(
        "--id",
        dest="ids",
        action="append",
        required=True,
        help="record identifier, e.g. C000001 (repeatable; the raw id when the conf pseudonymises it)",
    )
    parser.add_argument("--groups", default="all", help="comma-separated feature groups, or 'all' (default)")
    parser.add_argument("--features", default=None, help="comma-separated features to return (default: all)")


def _get_features(args: argparse.Namespace) -> int:
    """Print one JSON object per entity; exit 1 when some record could not be read (not when absent)."""
    try:
        groups = [g for name in args.groups.split(",") for g in resolve(name.strip())]
    except KeyError as exc:
        return fail("get-features", str(exc.args[0]), EXIT_USAGE)
    batch_only = [g for g in groups if not g.online]
    if batch_only and args.groups.strip() != "all":
        return fail("get-features", _batch_only(batch_only[0]), EXIT_USAGE)
    for group in batch_only:
        print(f"note: skipping {group.name}, a batch-only group (online=False)", file=sys.stderr)
    groups = [g for g in groups if g.online]
    if not groups:
        return fail(
            "get-features", "every chosen group is batch-only (online=False); nothing is served online", EXIT_USAGE
        )
    if len({g.entity.join_key for g in groups}) > 1:
        return fail("get-features", "the groups have different entities; ask for groups of one entity", EXIT_USAGE)
    features = [f.strip() for f in args.features.split(",")] if args.features else None
    try:
        with _endpoint(args) as (url, region):
            retry = ReadRetry.from_conf(load_conf(args.conf, args.overrides).online_store) if args.conf else ReadRetry()
            ids = _lookup_ids(args, groups, args.ids)
            client = runtime_client(endpoint_url=url, region=region)
            try:
                vectors = feature_vectors(RecordReader(client, retry), groups, ids, features)
            finally:
                client.close()
    except (ConfigError, DefinitionError, FeatureSelectionError) as exc:
        return fail("get-features", str(exc), EXIT_USAGE)
    except SecretError as exc:
        return fail("get-features", str(exc))
    except (ClientError, BotoCoreError) as exc:
        return fail("get-features", _aws_error(exc))
    print(json.dumps(vectors.vectors, indent=2, ensure_ascii=False))
    if vectors.errors:
        unread = "; ".join(
            f"{group}: {len(failed)} unread (e.g. {next(iter(failed.values()))})"
            for group, failed in vectors.errors.items()
        )
        return fail("get-features", unread)
    return EXIT_OK


def _replay_arguments(parser: argparse.ArgumentParser) -> None:
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


def _replay(args: argparse.Namespace) -> int:
    """Replay and print the counts as JSON; exit 1 when more than --tolerance records still fail."""
    write_api, warning = usable_write_api(args.write_api)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        with _endpoint(args) as (url, region):
            settings = PushSettings(
                endpoint_url=url,
                region=region,
                write_api=write_api,
                placeholder_credentials=placeholder_credentials_needed(url),
                max_in_flight=args.max_in_flight,
                max_attempts=args.max_attempts,
                dead_letter_root=args.dead_letter_root or default_dead_letter_root(args.path),
                dead_letter_tolerance=args.tolerance,
            )
            result = replay_dead_letters(args.path, settings=settings)
    except (ConfigError, DefinitionError) as exc:
        return fail("replay", str(exc), EXIT_USAGE)
    except PushError as exc:
        if exc.result is not None:
            print(json.dumps(asdict(exc.result), indent=2))
        return fail("replay", str(exc))
    except (ValueError, FileNotFoundError) as exc:
        return fail("replay", str(exc), EXIT_USAGE)
    except (ClientError, BotoCoreError) as exc:
        return fail("replay", _aws_error(exc))
    print(json.dumps(asdict(result), indent=2))
    return EXIT_OK


REGISTER = Command(
    name="register",
    help="create the feature groups in the online store (idempotent)",
    add_arguments=_register_arguments,
    run=_register,
)
GET_RECORD = Command(
    name="get-record",
    help="print what the online store holds for one entity",
    add_arguments=_get_record_arguments,
    run=_get_record,
)
GET_FEATURES = Command(
    name="get-features",
    help="print the feature vector a model endpoint gets for some entities (BatchGetRecord across groups)",
    add_arguments=_get_features_arguments,
    run=_get_features,
)
REPLAY = Command(
    name="replay",
    help="re-push a dead-letter file or directory (idempotent)",
    add_arguments=_replay_arguments,
    run=_replay,
)
