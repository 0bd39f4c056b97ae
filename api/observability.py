"""Operating DeskFleet: request ids, JSON logs, Prometheus metrics, /healthz and /readyz."""

from __future__ import annotations

import contextvars
import hmac
import ipaddress
import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.request_latency import RequestLatency
from domain import health
from domain.context import DomainContext
from domain.dispatch.dispatcher import Dispatched
from domain.kernel.settings import Settings
from domain.store.models import RunStatus

API_PATHS = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# A request id this process makes: its random half, then a sequence number (32 hex digits).
# Unique across processes and restarts, without a system call for randomness per request.
_PROCESS_ID = os.urandom(8).hex()
_SEQUENCE = itertools.count(1)


def _new_request_id() -> str:
    return f"{_PROCESS_ID}{next(_SEQUENCE):016x}"


def _forked() -> None:
    global _PROCESS_ID
    _PROCESS_ID = os.urandom(8).hex()  # a forked worker must not repeat its parent's ids


os.register_at_fork(after_in_child=_forked)


def tag_request(scope: Scope) -> contextvars.Token[str]:
    """Sets the request id of the logs: the caller's ``X-Request-ID`` or a new one."""
    rid = ""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            given = value.decode("latin-1")[:64]
            rid = given if given.isprintable() else ""
            break
    return request_id.set(rid or _new_request_id())


class RequestIdMiddleware:
    """Tags every request with an id (the caller's ``X-Request-ID`` or a new one) for the logs."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        token = tag_request(scope)
        started = time.perf_counter()
        header = (b"x-request-id", request_id.get().encode())

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(header)
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            if kind == "http":
                self.metrics.request_seconds.observe(scope["path"], time.perf_counter() - started)
            request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never the request body, headers or variables (no secrets)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(json_logs: bool) -> None:
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class Metrics:
    """One registry per app, so several apps in one process (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = RequestLatency(API_PATHS)
        self.registry.register(self.request_seconds)
        self.queue_depth = Gauge(
            "deskfleet_queue_depth",
            "queued runs per environment",
            ["environment_id"],
            registry=self.registry,
        )
        self.runs = Gauge("deskfleet_runs", "runs by status", ["status"], registry=self.registry)
        self.connected_machines = Gauge(
            "deskfleet_connected_machines",
            "machines with a recent heartbeat (R9)",
            registry=self.registry,
        )
        self.open_subscriptions = Gauge(
            "deskfleet_open_subscriptions",
            "GraphQL subscriptions being served",
            registry=self.registry,
        )
        self.dispatch_seconds = Histogram(
            "deskfleet_dispatch_latency_seconds",
            "time from queued to dispatched",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
        )
        self.dispatched = Counter(
            "deskfleet_runs_dispatched", "runs dispatched by this instance", registry=self.registry
        )
        self.refused_at_door = Counter(
            "deskfleet_requests_refused_at_door",
            "requests throttled before GraphQL ran: the caller's bucket known short (R39)",
            registry=self.registry,
        )

    def observe_dispatched(self, claimed: list[Dispatched]) -> None:
        """The dispatcher's callback: each claim's time from queued to dispatched."""
        for dispatched in claimed:
            self.dispatch_seconds.observe(max(0.0, dispatched.waited_seconds))
        self.dispatched.inc(len(claimed))

    async def refresh(self, ctx: DomainContext) -> None:
        figures = await health.fleet_figures(ctx)
        self.queue_depth.clear()
        for environment_id, depth in figures.queued_by_environment.items():
            self.queue_depth.labels(environment_id).set(depth)
        for status in RunStatus:
            self.runs.labels(status.value).set(figures.runs_by_status.get(status.value, 0))
        self.connected_machines.set(figures.connected_machines)
        # Event-bus inboxes: GraphQL subscriptions plus this instance's own listeners.
        self.open_subscriptions.set(getattr(ctx.events, "subscriber_count", 0))


class MetricsAccess:
    """Who may read /metrics: a client in ``metrics_allowed_networks`` (loopback by default), or
    one presenting ``metrics_token`` as a bearer token."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.networks = [
            ipaddress.ip_network(n, strict=False) for n in settings.metrics_allowed_networks
        ]

    def allows(self, request: Request) -> bool:
        host = request.client.host if request.client is not None else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in self.networks):
            return True
        token = self.settings.metrics_token
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        return (
            token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(credential.strip().encode(), token.get_secret_value().encode())
        )


def endpoints(
    ctx: DomainContext,
    metrics: Metrics,
    extra_probes: Callable[[], dict[str, Awaitable[object]]] = dict,
) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        result = await health.readiness(ctx, extra_probes())
        return JSONResponse(
            {"status": "ready" if result.ready else "unready", "checks": result.checks},
            status_code=200 if result.ready else 503,
        )

    access = MetricsAccess(ctx.settings)

    async def metrics_endpoint(request: Request) -> Response:
        if not access.allows(request):
            return Response(
                "metrics are served to the networks in DESKFLEET_METRICS_ALLOWED_NETWORKS or "
                "with the metrics token\n",
                status_code=403,
                media_type="text/plain",
            )
        try:
            await metrics.refresh(ctx)
        except Exception as exc:  # the database away: the last figures, the process's own metrics
            logging.getLogger("deskfleet").warning(
                "fleet figures unavailable: %s", type(exc).__name__
            )
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_endpoint}
