"""``serve-local``: run the local feature store until SIGINT/SIGTERM.

Exposed as :func:`add_arguments` / :func:`run` so the project's console
command can mount it as a subcommand, and as :func:`main` for
``python -m featurestore_local``.  The endpoint URL is printed as
the first stdout line so a parent process started with ``--port 0`` can read
where to connect.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from types import FrameType

from .faults import FaultConfig
from .server import DEFAULT_MAX_CONNECTIONS, DEFAULT_SOCKET_TIMEOUT, LocalFeatureStore, logger

DEFAULT_PORT = 8765
DEFAULT_DB = "./var/feature-store.sqlite"


def _non_negative(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``serve-local`` options on ``parser``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s); non-loopback needs --allow-remote",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        help="SQLite file holding groups and records; parent dir is created (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding a non-loopback address (there is no authentication)",
    )
    parser.add_argument(
        "--socket-timeout",
        type=_positive,
        default=DEFAULT_SOCKET_TIMEOUT,
        metavar="SECONDS",
        help="disconnect a client silent this long mid-request or between requests (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=_at_least_one,
        default=DEFAULT_MAX_CONNECTIONS,
        help="connections served at once, one thread each; more are answered 503 (default: %(default)s)",
    )
    parser.add_argument(
        "--clock-offset",
        type=_finite,
        default=0.0,
        metavar="SECONDS",
        help="run the runtime's clock this far ahead (negative: behind) of the wall clock, for TTL "
        "expiry; change while serving with POST /_local/clock (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG also logs every request (default: %(default)s)",
    )
    faults = parser.add_argument_group(
        "fault injection",
        "applied to runtime data-plane requests only; change at runtime with POST /_local/faults",
    )
    faults.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0.0,
        help="fixed delay added to every request",
    )
    faults.add_argument(
        "--jitter-ms",
        type=_non_negative,
        default=0.0,
        help="extra uniform 0..N ms delay per request",
    )
    faults.add_argument(
        "--throttle-rate",
        type=_probability,
        default=0.0,
        help="probability a request is answered 400 ThrottlingException",
    )
    faults.add_argument(
        "--error-5xx-rate",
        type=_probability,
        default=0.0,
        help="probability a request is answered 500 InternalFailure or 503 ServiceUnavailable",
    )
    faults.add_argument(
        "--unprocessed-rate",
        type=_probability,
        default=0.0,
        help="probability each batch entry is returned as unprocessed",
    )
    faults.add_argument(
        "--tps-quota",
        type=_positive,
        default=None,
        help="requests/s token bucket (burst max(1, N)); excess is throttled",
    )
    faults.add_argument("--seed", type=int, default=None, help="seed for reproducible fault draws")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean shutdown, 2 on bad settings."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(args.log_level)
    try:
        store = LocalFeatureStore(
            db_path=args.db,
            host=args.host,
            port=args.port,
            faults=FaultConfig(
                latency_ms=args.latency_ms,
                jitter_ms=args.jitter_ms,
                throttle_rate=args.throttle_rate,
                error_5xx_rate=args.error_5xx_rate,
                unprocessed_rate=args.unprocessed_rate,
                tps_quota=args.tps_quota,
                seed=args.seed,
            ),
            allow_remote=args.allow_remote,
            clock_offset=args.clock_offset,
            socket_timeout=args.socket_timeout,
            max_connections=args.max_connections,
        )
        store.start()
    except (ValueError, OSError) as exc:
        logger.error("Cannot start local feature store: %s", exc)
        return 2

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        print(store.endpoint_url, flush=True)
        logger.info(
            "Local SageMaker Feature Store listening on %s (db %s)",
            store.endpoint_url,
            args.db,
        )
        stopping.wait()
        logger.info("Shutting down local feature store")
    finally:
        store.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m featurestore_local``."""
    parser = argparse.ArgumentParser(
        prog="featurestore-local",
        description="Run a local SageMaker Feature Store (runtime API plus "
        "Create/Describe/List/DeleteFeatureGroup, Update/DescribeFeatureMetadata and Search) "
        "backed by SQLite, for boto3 clients pointed at it with endpoint_url. Prints the endpoint "
        "URL on stdout.",
    )
    add_arguments(parser)
    return run(parser.parse_args(sys.argv[1:] if argv is None else argv))
