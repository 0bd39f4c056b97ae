"""The Starlette application: GraphQL at /graphql, /healthz, /readyz, /metrics, the dashboard at /,
lifespan state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from opentelemetry.trace import Tracer, TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from api import dashboard, traces
from api.auth import bearer_from_header, principal_for
from api.context import Context
from api.dashboard import documents as dashboard_documents
from api.errors import ApiError
from api.observability import Metrics, RequestIdMiddleware, endpoints, request_id, tag_request
from api.schema import TrustedOnlySchema, build_schema
from api.transport import guards, persisted_queries, throttle, websocket
from api.transport.body_limit import RequestBodyLimit
from api.transport.cors import cross_origin
from api.transport.deadlines import RequestDeadlines
from api.transport.early_refusal import VOUCHED_CALLER, EarlyRefusal
from api.transport.http_transport import JSONPostTransport
from api.transport.limits import check_document_size
from api.transport.trusted_documents import TrustedDocuments
from domain.context import DomainContext
from domain.dispatch.dispatcher import Dispatcher
from domain.identity import bootstrap, identity
from domain.kernel.clock import Clock, SystemClock
from domain.kernel.openid import OpenIDProvider
from domain.kernel.settings import Settings
from domain.kernel.traces import no_tracer
from domain.store import schema_version, storage
from domain.store.db import Database
from domain.webhooks.sender import Sender

log = logging.getLogger("deskfleet")


class SchemaOutdated(RuntimeError):
    pass


class GraphQLApp(Starlette):
    """The app, with GraphQL's websockets taken past the middleware and the router.

    Every middleware layer an ASGI call passes through keeps its coroutine frame (and closures)
    for as long as the call lasts, and a websocket's call lasts as long as it is open. The HTTP
    middleware (body limit, CORS, the door, Starlette's error pages, the router) does nothing for
    a websocket, yet held about 4 KiB per idle subscriber at 2,000 of them (`sub_memory`). Other
    websockets still go through the whole app (the dashboard closes them).
    """

    def __init__(self, subscriptions: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subscriptions = subscriptions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "websocket"
            and scope["path"] == scope.get("root_path", "") + "/graphql"
        ):
            scope["app"] = self
            token = tag_request(scope)  # the logs' request id, as RequestIdMiddleware gives it
            try:
                await self.subscriptions(scope, receive, send)
            finally:
                request_id.reset(token)
            return
        await super().__call__(scope, receive, send)


class DeskFleetGraphQL(websocket.RealtimeView, JSONPostTransport, GraphQL[Context, None]):
    def __init__(self, domain: DomainContext, operation_tracer: Tracer | None = None) -> None:
        # R39: the callers' cost buckets, on the app's clock; in Redis when the event bus is.
        self.buckets = throttle.buckets_for(domain.settings, now=domain.clock.timestamp)
        super().__init__(
            build_schema(domain.settings, self.buckets, operation_tracer),
            graphql_ide=None if domain.settings.production else "graphiql",
            **websocket.websocket_options(domain.settings),  # R37
        )
        self.domain = domain
        self.persisted_queries = persisted_queries.store_for(domain.settings)
        # Only registered documents (and the dashboard's own), when the settings say so.
        self.trusted = (
            TrustedDocuments(
                domain.db,
                dashboard_documents.built_in(),
                domain.settings.trusted_documents_refresh_seconds,
            )
            if domain.settings.trusted_documents_only
            else None
        )
        if isinstance(self.schema, TrustedOnlySchema):
            self.schema.trusted = self.trusted
        self.deadlines = RequestDeadlines()  # request_timeout_seconds, one timer for all
        settings = domain.settings
        self.auth_limiter = guards.FailedAuthLimiter(
            settings.auth_failure_limit,
            settings.auth_failure_window_seconds,
            now=domain.clock.timestamp,
        )
        # Websockets per user, and their credentials re-checked against the database: within
        # the check period a credential revoked on another instance closes idle connections, and
        # a connected one's cache entry is renewed before it ends (every subscriber of a token
        # re-checks it at each event: an expired entry would send them all to the database).
        self.connections = guards.ConnectionRegistry(
            settings.ws_max_connections_per_user,
            min(
                settings.ws_credential_check_seconds,
                0.8 * domain.credentials.ttl or settings.ws_credential_check_seconds,
            ),
        )

    async def credential_still_valid(self, bearer: str) -> bool:
        principal, _ = await principal_for(self.domain, bearer, fresh=True)
        return principal is not None

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        # The body's own size is refused as it arrives (api/transport/body_limit.py).
        data = await super().parse_http_body(request)  # a batch (a list) is refused in there
        for operation in data if isinstance(data, list) else (data,):
            check_document_size(operation.query, self.domain.settings)
        return data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        limit = self.domain.settings.request_timeout_seconds
        try:
            async with self.deadlines.limit(limit):
                if request_data.extensions:  # a persisted query? (nearly every request: no)
                    request_data = await self._with_document(request_data, context)
                return await super().execute_single(
                    request=request,
                    request_adapter=request_adapter,
                    sub_response=sub_response,
                    context=context,
                    root_value=root_value,
                    request_data=request_data,
                )
        except persisted_queries.PersistedQueryRefused as refused:
            return ExecutionResult(data=None, errors=[refused.error])
        except TimeoutError:
            log.warning("request ran out of its %ss", limit)
            return ExecutionResult(
                data=None,
                errors=[ApiError("TIMEOUT", f"the request took longer than {limit:g}s")],
            )

    async def _with_document(
        self, request: GraphQLRequestData, context: Context
    ) -> GraphQLRequestData:
        """The document a persisted query names, from the trusted documents when only those are
        accepted, else from the persisted queries (registering it, for an authenticated caller)."""
        if self.trusted is not None:
            return self.trusted.admit(request)
        return await persisted_queries.resolve(
            self.persisted_queries, request, may_register=context.credential is not None
        )

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        # A websocket authenticates in on_ws_connect (api/transport/websocket.py), from connection_init.
        is_http = not isinstance(request, WebSocket)
        vouched = request.scope.get(VOUCHED_CALLER) if is_http else None
        if vouched is not None:  # the door found it in the credential cache (early_refusal.py)
            return Context(
                domain=self.domain, request=request, response=response, credential=vouched
            )
        credential = bearer_from_header(request.headers.get("authorization")) if is_http else None
        try:
            principal, error = await guards.checked_principal(
                self.domain, self.auth_limiter, guards.client_address(request), credential
            )
        except guards.Throttled as exc:
            raise HTTPException(429, str(exc)) from None
        except Exception:  # e.g. the database away for a while: a clean 503, logged, retryable
            log.exception("cannot authenticate the request")
            raise HTTPException(503, "Service unavailable, try again.") from None
        return Context(
            domain=self.domain,
            request=request,
            response=response,
            credential=principal,
            credential_error=error,
        )


async def prepare_database(settings: Settings) -> None:
    """Upgrade an embedded SQLite by itself; refuse an outdated PostgreSQL schema; refuse a
    database that cannot be opened or written (:class:`storage.StorageUnavailable`)."""
    db = Database(settings.database_url)
    try:
        with storage.reported(settings.database_url):
            if db.is_sqlite:
                storage.check_opens(settings.database_url)
                await schema_version.upgrade(settings.database_url)
            elif not await schema_version.is_current(settings.database_url):
                raise SchemaOutdated(
                    "the database schema is not current; run: "
                    "deskfleet db upgrade --database-url <your DESKFLEET_DATABASE_URL>"
                )
            await storage.probe_write(db)
    finally:
        await db.dispose()


def announce_first_run(secret: str) -> None:
    # The one place a secret is printed: the operator needs it to sign in the first time.
    print(
        "DeskFleet first run: created environment 'Default' and user "
        f"{bootstrap.ADMIN_EMAIL}.\n"
        f"Admin token (shown once, keep it safe): {secret}\n"
        "Mint another later with: deskfleet admin token",
        flush=True,
    )


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """``tracer_provider``: where spans go (api/traces.py); by default the OTLP exporter when
    ``traces_otlp_endpoint`` is set, and no spans at all otherwise."""
    settings = settings or Settings()
    exported = traces.exported_provider(settings) if tracer_provider is None else None
    tracer_provider = tracer_provider or exported
    tracer = traces.tracer_of(tracer_provider) if tracer_provider is not None else None
    clock = clock or SystemClock()
    domain = DomainContext(
        db=Database(settings.database_url),
        settings=settings,
        clock=clock,
        events=websocket.event_bus(settings),  # memory:// or redis:// (R35-R37)
        tracer=tracer or no_tracer(),
        # R44: the organisation's OpenID Connect provider, when one is configured.
        openid=OpenIDProvider(settings, clock) if settings.oidc_issuer else None,
    )
    if tracer is not None:
        domain.db.trace_with(tracer)
    graphql = DeskFleetGraphQL(domain, operation_tracer=tracer)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await prepare_database(settings)
        issued = await bootstrap.first_run(domain)
        if issued is not None:
            announce_first_run(issued.secret)
        if domain.openid is not None:
            await domain.openid.start()  # SignInUnavailable: the provider cannot be used
        dispatcher = (
            Dispatcher(domain, on_dispatched=metrics.observe_dispatched)
            if settings.dispatcher_enabled
            else None
        )
        sender = Sender(domain) if settings.webhooks_enabled else None  # R43
        try:
            async with websocket.running(domain):  # the event bus's listener, R9's presence watcher
                if dispatcher is not None:
                    await dispatcher.start()  # R25-R30: queued runs go to bots
                if sender is not None:
                    await sender.start()
                await graphql.connections.start(graphql.credential_still_valid)
                if graphql.trusted is not None:
                    await graphql.trusted.start()
                try:
                    yield
                finally:
                    await graphql.connections.stop()
                    if graphql.trusted is not None:
                        await graphql.trusted.stop()
                    if dispatcher is not None:
                        await dispatcher.stop()
                    if sender is not None:
                        await sender.stop()
        finally:
            await graphql.buckets.close()
            await graphql.persisted_queries.close()
            await identity.finish_look_ups(domain)
            if domain.openid is not None:
                await domain.openid.stop()
            await domain.db.dispose()
            if exported is not None:  # sends what is still batched (network: off the loop)
                await asyncio.to_thread(exported.shutdown)

    metrics = Metrics()
    operations = endpoints(domain, metrics, lambda: {"broadcast": broadcast_ready(domain)})
    # GraphQL's websockets: the size limit, and the websocket's own span if traces are on (inside:
    # OpenTelemetry's middleware takes an application without a coroutine __call__ for ASGI 2).
    socket_app: ASGIApp = graphql
    if tracer_provider is not None:
        spans = traces.request_spans(tracer_provider)
        socket_app = spans.cls(graphql, *spans.args, **spans.kwargs)
    app = GraphQLApp(
        guards.WebSocketMessageLimit(socket_app, max_bytes=settings.ws_max_message_bytes),
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            *(Route(path, handler) for path, handler in operations.items()),
            Route("/sign-in/configuration", sign_in_configuration(domain)),  # the dashboard's
            dashboard.mount("/"),  # the fleet dashboard; last, it takes what is left
        ],
        middleware=[
            # Outermost: every request's span, refusals included.
            *([traces.request_spans(tracer_provider)] if tracer_provider is not None else []),
            *cross_origin(settings),  # refusals carry the grant too
            Middleware(RequestIdMiddleware, metrics=metrics),
            # Inside Starlette's error middleware, which would turn its refusal into a 500.
            Middleware(RequestBodyLimit, settings=settings),
            Middleware(
                EarlyRefusal,
                path="/graphql",
                vouch=lambda bearer: identity.vouched_for(domain, bearer),
                buckets=graphql.buckets,
                max_cost=settings.max_query_cost,
                on_refused=metrics.refused_at_door.inc,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.domain = domain
    app.state.metrics = metrics
    return app


async def check_sign_in(settings: Settings) -> None:
    """At `serve`: the OpenID Connect provider's discovery document and keys can be had
    (SignInUnavailable says what is wrong), so a misconfigured issuer stops the start."""
    if not settings.oidc_issuer:
        return
    provider = OpenIDProvider(settings, SystemClock())
    try:
        await provider.start()
    finally:
        await provider.stop()


def sign_in_configuration(domain: DomainContext) -> Callable[[Request], Awaitable[JSONResponse]]:
    """What the dashboard needs for "Sign in with <provider>" (R44): nothing secret."""

    async def configuration(request: Request) -> JSONResponse:
        if domain.openid is None:
            return JSONResponse({"enabled": False})
        return JSONResponse({"enabled": True, **domain.openid.dashboard_configuration()})

    return configuration


async def broadcast_ready(domain: DomainContext) -> None:
    """/readyz: the event bus is connected to its broadcast backend (memory:// or redis://)."""
    if not getattr(domain.events, "connected", True):
        raise RuntimeError(f"event bus not connected to {domain.settings.broadcast_url}")
