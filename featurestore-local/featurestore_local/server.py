"""HTTP front end: one port speaking both SageMaker wire protocols.

Requests are routed by ``X-Amz-Target`` first (json 1.1 control plane,
``SageMaker.<Operation>``), then by method and path (rest-json runtime), then
to the ``/_local/*`` admin endpoints.  SigV4 signatures are not verified; the
credential scope is only read to put the caller's region into ARNs.

One thread serves each connection, so two bounds keep clients from holding
them all: a socket timeout (a client silent for that long mid-request, or
idle between keep-alive requests, is disconnected) and a connection limit
(connections beyond it are answered 503 ServiceUnavailable, which clients
retry, from the accepting thread).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from . import errors
from .errors import ApiError
from .faults import FaultConfig, FaultInjector, Stats
from .limits import BodyError, check_runtime_request, loads
from .schema import JsonObject
from .service import FeatureStoreService, RequestContext
from .storage import Storage

logger = logging.getLogger("featurestore_local")

# The largest valid request, 25 BatchWriteRecord entries of a 350 KB record, is about 9 MB of
# JSON (more only if most of its characters need escapes); bodies past this are refused from
# Content-Length, before any of them is read.
MAX_BODY_BYTES = 16 * 1024 * 1024
# What is read and dropped after refusing a body, so the client gets to read the refusal instead
# of a connection reset (bounded in time by the socket timeout too).
_DISCARD_LIMIT_BYTES = 64 * 1024 * 1024
# Seconds: far longer than any client pauses inside a request, short enough that a stalled one
# frees its thread quickly (botocore reopens a keep-alive connection closed while idle).
DEFAULT_SOCKET_TIMEOUT = 5.0
# Threads; the push holds max_in_flight (16) connections per Spark partition.
DEFAULT_MAX_CONNECTIONS = 256
# A refused connection is kept half-closed this long so the client reads the 503, not a reset.
_REFUSED_LINGER_SECONDS = 1.0
_MAX_LINGERING = 1024
_REFUSAL_LOG_INTERVAL = 10.0
# How often serve_forever checks for shutdown; bounds how long stop() blocks.
_SHUTDOWN_POLL_SECONDS = 0.05
DEFAULT_REGION = "us-east-1"
REST_JSON = "application/json"
AMZ_JSON = "application/x-amz-json-1.1"
_TARGET_PREFIX = "SageMaker."
_REGION_RE = re.compile(r"Credential=[^/]+/[0-9]{8}/([a-z0-9-]+)/")

# (method, path regex) -> runtime operation; paths come from the model's requestUri.
_RUNTIME_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("PUT", re.compile(r"/FeatureGroup/(?P<name>[^/]+)"), "PutRecord"),
    ("GET", re.compile(r"/FeatureGroup/(?P<name>[^/]+)"), "GetRecord"),
    ("DELETE", re.compile(r"/FeatureGroup/(?P<name>[^/]+)"), "DeleteRecord"),
    ("POST", re.compile(r"/FeatureGroup/(?P<name>[^/]+)/ListRecords"), "ListRecords"),
    ("POST", re.compile(r"/BatchGetRecord"), "BatchGetRecord"),
    ("POST", re.compile(r"/BatchWriteRecord"), "BatchWriteRecord"),
]
# Query-string members (location=querystring) -> (model member, is a list).
_QUERY_MEMBERS = {
    "RecordIdentifierValueAsString": ("RecordIdentifierValueAsString", False),
    "FeatureName": ("FeatureNames", True),
    "ExpirationTimeResponse": ("ExpirationTimeResponse", False),
    "EventTime": ("EventTime", False),
    "TargetStores": ("TargetStores", True),
    "DeletionMode": ("DeletionMode", False),
}


def _match_runtime_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """(operation, URI members) for a runtime request, or None if nothing matches."""
    for route_method, pattern, operation in _RUNTIME_ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            # Labels are percent-encoded by botocore (an ARN's "/" arrives as %2F).
            name = match.groupdict().get("name")
            return operation, {} if name is None else {"FeatureGroupName": unquote(name)}
    return None


def is_loopback(host: str) -> bool:
    """True if every address ``host`` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def _check_offset(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ValueError(f"clock offset must be a finite number of seconds, got {seconds!r}")
    return float(seconds)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Server(ThreadingHTTPServer):
    """Threaded server with a connection limit, that can cut keep-alive connections on shutdown."""

    daemon_threads = True
    block_on_close = False
    # The default listen backlog of 5 drops connections under a parallel benchmark.
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        app: LocalFeatureStore,
        *,
        socket_timeout: float,
        max_connections: int,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.socket_timeout = socket_timeout
        self.max_connections = max_connections
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        # Refused sockets, half-closed, until the client closes or the deadline passes; only the
        # serve_forever thread touches this list.
        self._lingering: list[tuple[socket.socket, float]] = []
        self._last_refusal_log = -math.inf
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve on a new thread if a connection slot is free, else answer 503 from this one."""
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        message = f"The local runtime is serving its maximum of {self.max_connections} connections (--max-connections)"
        body = json.dumps({"__type": errors.SERVICE_UNAVAILABLE, "message": message}).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\n"
            f"Content-Type: {REST_JSON}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"x-amzn-ErrorType: {errors.SERVICE_UNAVAILABLE}\r\n"
            f"x-amzn-RequestId: {uuid.uuid4()}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.app.stats_counter.refused()
        now = time.monotonic()
        if now - self._last_refusal_log >= _REFUSAL_LOG_INTERVAL:
            self._last_refusal_log = now
            logger.warning(
                "Refusing connections (503): all %d are in use (--max-connections); clients silent for "
                "%g s are cut (--socket-timeout)",
                self.max_connections,
                self.socket_timeout,
            )
        try:
            request.setblocking(False)  # never wait on a client from the accepting thread
            request.send(head.encode() + body)
            request.shutdown(socket.SHUT_WR)
        except OSError:
            request.close()
            return
        if len(self._lingering) >= _MAX_LINGERING:
            request.close()
        else:
            self._lingering.append((request, now + _REFUSED_LINGER_SECONDS))

    def service_actions(self) -> None:
        """Drop what refused clients sent; close each once it has closed or its time is up."""
        now = time.monotonic()
        still: list[tuple[socket.socket, float]] = []
        for sock, deadline in self._lingering:
            try:
                done = sock.recv(65536) == b"" or now >= deadline
            except BlockingIOError:
                done = now >= deadline
            except OSError:
                done = True
            if done:
                sock.close()
            else:
                still.append((sock, deadline))
        self._lingering = still

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is routine; anything else is a bug worth a traceback."""
        if isinstance(sys.exc_info()[1], OSError):
            logger.debug("Connection from %s ended: %s", client_address, sys.exc_info()[1])
        else:
            logger.exception("Unhandled error on the connection from %s", client_address)

    def server_close(self) -> None:
        super().server_close()
        for sock, _ in self._lingering:
            sock.close()
        self._lingering = []

    @property
    def open_connections(self) -> int:
        with self.connections_lock:
            return len(self.connections)

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each response then waits ~40 ms
    # for the client's delayed ACK (measured: 49 ms instead of 6 ms per call at 5 ms latency).
    disable_nagle_algorithm = True
    server_version = "LocalFeatureStore/1"

    def setup(self) -> None:
        super().setup()
        # Every read and write, the wait for the next keep-alive request included, fails after
        # this long; handle_one_request then drops the connection and this thread ends.
        self.connection.settimeout(self.server.socket_timeout)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    # -- plumbing -------------------------------------------------------

    def _send(
        self,
        status: int,
        payload: JsonObject | None,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, error: ApiError, content_type: str) -> None:
        """Shape an error so both botocore's rest-json and json parsers find the code."""
        self.server.app.stats_counter.error(
            error.code,
            error.status,
            throttling=error.code == errors.THROTTLING_EXCEPTION,
        )
        self._send(
            error.status,
            {"__type": error.code, "message": error.message},
            content_type,
            {"x-amzn-ErrorType": error.code},
        )

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 413/400 for an unusable one."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._refuse_body(errors.validation("Chunked request bodies are not supported"), None)
            return None
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit():
            self._refuse_body(errors.validation(f"Invalid Content-Length {declared[:32]!r}"), None)
            return None
        length = int(declared)
        if length > MAX_BODY_BYTES:
            error = ApiError(
                errors.VALIDATION_ERROR,
                f"Request body is {length} bytes; the local runtime reads at most {MAX_BODY_BYTES} bytes",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
            self._refuse_body(error, length)
            return None
        return self.rfile.read(length) if length else b""

    def _refuse_body(self, error: ApiError, length: int | None) -> None:
        """Answer, then read and drop what the client still sends, within bounds, and disconnect.

        Closing with the body unread would reset the connection, and a client still sending
        (http.client, for one) would see that reset instead of the answer, and retry.
        """
        self.close_connection = True  # the unread rest of the body would corrupt the stream
        self._send_error(error, REST_JSON)
        self.wfile.flush()
        budget = _DISCARD_LIMIT_BYTES if length is None else min(length, _DISCARD_LIMIT_BYTES)
        deadline = time.monotonic() + self.server.socket_timeout
        with contextlib.suppress(OSError):  # TimeoutError included: the client stopped sending
            while budget > 0 and (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                chunk = self.rfile.read1(min(budget, 1 << 16))
                if not chunk:
                    break
                budget -= len(chunk)

    @staticmethod
    def _parse_json(body: bytes) -> JsonObject:
        if not body.strip():
            return {}
        try:
            payload = loads(body)
        except BodyError as exc:
            raise ApiError(errors.SERIALIZATION_EXCEPTION, str(exc)) from None
        if not isinstance(payload, dict):
            raise ApiError(errors.SERIALIZATION_EXCEPTION, "The request body must be a JSON object")
        return payload

    def _context(self) -> RequestContext:
        match = _REGION_RE.search(self.headers.get("Authorization", ""))
        return RequestContext(region=match.group(1) if match else DEFAULT_REGION)

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        target = self.headers.get("X-Amz-Target")
        try:
            if target is not None:
                self._control(target, body)
            elif url.path.startswith("/_local/"):
                self._admin(url.path, body)
            else:
                self._runtime(url.path, url.query, body)
        except Exception:  # an emulator bug must still answer like the service
            logger.exception("Unhandled error serving %s %s", self.command, self.path)
            self._send_error(
                ApiError(errors.INTERNAL_FAILURE, "Internal failure in local runtime", 500),
                REST_JSON,
            )

    # -- protocols ------------------------------------------------------

    def _control(self, target: str, body: bytes) -> None:
        app = self.server.app
        operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else None
        handler = app.service.control_operations.get(operation or "")
        if self.command != "POST" or handler is None or operation is None:
            self._send_error(
                ApiError(errors.UNKNOWN_OPERATION, f"Unknown operation {target}"),
                AMZ_JSON,
            )
            return
        app.stats_counter.request(operation)
        try:
            result = handler(self._parse_json(body), self._context())
        except ApiError as error:
            self._send_error(error, AMZ_JSON)
            return
        self._send(200, result, AMZ_JSON)

    def _runtime(self, path: str, query: str, body: bytes) -> None:
        app = self.server.app
        route = _match_runtime_route(self.command, path)
        if route is None:
            self._send_error(
                ApiError(
                    errors.UNKNOWN_OPERATION,
                    f"No operation matches {self.command} {path}",
                    404,
                ),
                REST_JSON,
            )
            return
        operation, path_members = route
        app.stats_counter.request(operation)
        try:
            fault = app.injector.before_request()
            if fault is not None:
                raise fault
            params = self._parse_json(body) if self.command in ("PUT", "POST") else {}
            for key, values in parse_qs(query, keep_blank_values=True).items():
                if key in _QUERY_MEMBERS:
                    member, is_list = _QUERY_MEMBERS[key]
                    params[member] = values if is_list else values[-1]
            params.update(path_members)
            check_runtime_request(operation, params)
            result = app.service.runtime_operations[operation](params, self._context())
        except ApiError as error:
            self._send_error(error, REST_JSON)
            return
        self._send(200, result or None, REST_JSON)

    def _admin(self, path: str, body: bytes) -> None:
        """Fault and counter endpoints for tests and the benchmark."""
        app = self.server.app
        route = (self.command, path)
        if route == ("GET", "/_local/stats"):
            self._send(200, app.stats(), REST_JSON)
        elif route == ("POST", "/_local/reset-stats"):
            app.reset_stats()
            self._send(200, app.stats(), REST_JSON)
        elif route == ("GET", "/_local/faults"):
            self._send(200, app.faults.to_dict(), REST_JSON)
        elif route == ("POST", "/_local/faults"):
            try:
                payload = loads(body or b"{}")
                if not isinstance(payload, dict):
                    raise TypeError("body must be a JSON object of FaultConfig fields")
                app.set_faults(FaultConfig.from_dict(payload))
            except (ValueError, TypeError) as exc:  # BodyError is a ValueError
                self._send(400, {"message": str(exc)}, REST_JSON)
                return
            self._send(200, app.faults.to_dict(), REST_JSON)
        elif route == ("GET", "/_local/clock"):
            self._send(200, app.clock_status(), REST_JSON)
        elif route == ("POST", "/_local/clock"):
            try:
                payload = loads(body or b"{}")
                if not isinstance(payload, dict) or set(payload) - {"offset_seconds"}:
                    raise TypeError('body must be a JSON object {"offset_seconds": SECONDS}')
                app.set_clock_offset(payload.get("offset_seconds", 0.0))
            except (ValueError, TypeError) as exc:  # BodyError is a ValueError
                self._send(400, {"message": str(exc)}, REST_JSON)
                return
            self._send(200, app.clock_status(), REST_JSON)
        elif route == ("GET", "/_local/health"):
            self._send(200, {"status": "ok"}, REST_JSON)
        else:
            self._send_error(
                ApiError(
                    errors.UNKNOWN_OPERATION,
                    f"No admin endpoint {self.command} {path}",
                    404,
                ),
                REST_JSON,
            )


class LocalFeatureStore:
    """A local SageMaker Feature Store (runtime + control-plane subset) server.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.  ``port=0``
    picks a free port; read :attr:`endpoint_url` after starting.  ``clock``
    (epoch seconds) plus ``clock_offset`` (seconds, changeable while serving with
    :meth:`set_clock_offset` or ``POST /_local/clock``) drives TTL expiry and
    CreationTime, so tests move time forward instead of sleeping.  Non-loopback hosts are refused unless
    ``allow_remote`` is set, because nothing here authenticates callers.
    ``socket_timeout`` (seconds) and ``max_connections`` bound what stalled
    or too many clients can hold (see the module docstring).
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str] = "./var/feature-store.sqlite",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        clock_offset: float = 0.0,
        allow_remote: bool = False,
        max_feature_groups: int = 100,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(f"refusing to listen on non-loopback host {host!r}")
        if not (math.isfinite(socket_timeout) and socket_timeout > 0):
            raise ValueError(f"socket_timeout must be a positive number of seconds, got {socket_timeout!r}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError(f"max_connections must be an integer >= 1, got {max_connections!r}")
        self.socket_timeout = socket_timeout
        self.max_connections = max_connections
        self.db_path = str(db_path)
        self.host = host
        self.port = port
        self.injector = FaultInjector(faults or FaultConfig())
        self.stats_counter = Stats()
        self._clock = clock
        self._clock_offset = _check_offset(clock_offset)
        self._max_feature_groups = max_feature_groups
        self._storage: Storage | None = None
        self._service: FeatureStoreService | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def service(self) -> FeatureStoreService:
        if self._service is None:
            raise RuntimeError("LocalFeatureStore is not started")
        return self._service

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalFeatureStore is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def faults(self) -> FaultConfig:
        return self.injector.config

    def start(self) -> Self:
        """Open the database and serve on a background daemon thread."""
        if self._server is not None:
            raise RuntimeError("LocalFeatureStore is already started")
        self._storage = Storage(self.db_path)
        self._service = FeatureStoreService(
            self._storage,
            self.injector,
            self.stats_counter,
            clock=self.now,
            max_feature_groups=self._max_feature_groups,
        )
        try:
            self._server = _Server(
                (self.host, self.port),
                self,
                socket_timeout=self.socket_timeout,
                max_connections=self.max_connections,
            )
        except OSError:
            self._storage.close()
            self._storage = None
            raise
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="local-feature-store",
            daemon=True,
        )
        self._thread.start()
        logger.debug("Local feature store serving %s (db %s)", self.endpoint_url, self.db_path)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and close the database; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._storage is not None:
            self._storage.close()
            self._storage = None
        self._service = None

    def now(self) -> float:
        """The runtime's time, epoch seconds: the clock plus the offset."""
        return self._clock() + self._clock_offset

    @property
    def clock_offset(self) -> float:
        return self._clock_offset

    def set_clock_offset(self, seconds: Any) -> None:
        """Move the runtime's time by ``seconds`` from its clock (not cumulative; 0 resets)."""
        self._clock_offset = _check_offset(seconds)

    def clock_status(self) -> dict[str, Any]:
        """What ``/_local/clock`` serves: the offset and the time records expire against."""
        return {"offset_seconds": self._clock_offset, "now": _iso(self.now())}

    def set_faults(self, faults: FaultConfig) -> None:
        self.injector.configure(faults)

    def stats(self) -> dict[str, Any]:
        """Counters since start/reset, the connections open now and the active fault configuration."""
        server = self._server
        return {
            **self.stats_counter.snapshot(),
            "connections_open": server.open_connections if server is not None else 0,
            "faults": self.faults.to_dict(),
        }

    def reset_stats(self) -> None:
        self.stats_counter.reset()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
