"""Websockets for the live subscriptions (R35-R37), kept apart from the app factory.

- Authentication comes in the ``connection_init`` payload (``{"Authorization": "Bearer ..."}`` or
  ``{"token": "..."}``), checked in ``on_ws_connect``: a missing, unknown or revoked credential is
  refused with the protocol's close code (4403 for graphql-transport-ws; ``connection_error`` then
  close for the legacy graphql-ws).
- Strawberry builds one context per websocket: each subscription event re-authenticates the
  credential and gets fresh loaders (:func:`fresh_principal`), never the connection's.
- Both protocols get a short init timeout (4408) and a cap on subscriptions per connection;
  browsers may connect only from the same origin or from ``ws_allowed_origins`` and
  ``cors_allowed_origins``.
- api/transport/guards.py: too many failed attempts from an address or too many open websockets
  of one user are refused with 4429; a credential revoked while connected closes the socket with
  4403 within ``ws_credential_check_seconds``; a message over ``ws_max_message_bytes`` gets 1009.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionErrorMessage
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage as LegacyMessage

from api.auth import bearer_from_header, bearer_from_params, principal_for
from api.context import Context
from api.errors import unauthenticated
from api.loaders import Loaders
from api.transport import guards
from api.transport.shared_execution import serve_operation
from domain.bus.events import BroadcastEventBus
from domain.context import DomainContext
from domain.fleet.presence import PresenceWatcher
from domain.kernel.principals import Principal
from domain.kernel.settings import Settings


def event_bus(settings: Settings) -> BroadcastEventBus:
    """The bus chosen by ``broadcast_url`` (memory:// or redis://); started by :func:`running`."""
    return BroadcastEventBus(
        settings.broadcast_url,
        queue_size=settings.realtime_queue_size,
        probe_interval=None
        if settings.broadcast_url.startswith("memory")
        else settings.broadcast_probe_seconds,
    )


@contextlib.asynccontextmanager
async def running(domain: DomainContext) -> AsyncIterator[None]:
    """For the app's lifespan: the event bus's supervised listener and R9's presence watcher."""
    bus = domain.events
    await bus.start()  # type: ignore[attr-defined]
    presence = PresenceWatcher(domain)
    await presence.start()
    try:
        yield
    finally:
        await presence.stop()
        await bus.stop()  # type: ignore[attr-defined]


def websocket_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for Strawberry's ASGI view."""
    return {
        "connection_init_wait_timeout": timedelta(seconds=settings.ws_init_timeout_seconds),
        "max_subscriptions_per_connection": settings.ws_max_subscriptions,
        # A page allowed to call the API (CORS) may subscribe too.
        "allowed_origins": tuple(settings.ws_allowed_origins + settings.cors_allowed_origins),
    }


NOT_AN_OBJECT = "WebSocket message must be a JSON object"


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, refusing with guards' close codes and leaving the registry."""

    async def shutdown(self) -> None:
        # Here rather than around handle(): no frame of ours waits with every idle socket.
        try:
            await super().shutdown()
        finally:
            self.view.connections.leave(self.context)  # type: ignore[attr-defined]

    async def handle_message(self, message: Any) -> None:
        # JSON that is not an object ([1], "x", 42, null) would fail inside Strawberry's lookup of
        # message["type"]: close as for any malformed message (4400), with no traceback.
        if not isinstance(message, dict):
            await self.websocket.close(code=4400, reason=NOT_AN_OBJECT)
            return
        await super().handle_message(cast(TransportMessage, message))
        # Handled: Strawberry's loop would keep it (a subscribe's whole payload) until the next
        # message, which for an idle subscriber may never come (~0.4 KiB).
        message.clear()

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except guards.Refused as refused:
            await self.websocket.close(code=refused.close_code, reason=refused.message)
        if self.connection_init_received:
            # Cancelled by the init: its CancelledError's traceback keeps the frames, the timer
            # and the future of its sleep for as long as the socket kept the task (~1 KiB).
            self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: Any) -> None:
        # Set here, the operation's task has it in the context it copies when it is made: no
        # frame of ours runs the operation for as long as it lasts. Without an id (4400) or an
        # acknowledged connection (4401) Strawberry makes no task.
        serve_operation(message.get("id"), "next", self.websocket.ws)  # type: ignore[attr-defined]
        await super().handle_subscribe(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws with the same init timeout as graphql-transport-ws (Strawberry has none)."""

    async def handle(self) -> None:
        timeout = self.view.connection_init_wait_timeout.total_seconds()
        watchdog = asyncio.create_task(self._close_unless_initialised(timeout))
        try:
            await super().handle()
        finally:
            self.view.connections.leave(self.context)  # type: ignore[attr-defined]
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict):  # as graphql-transport-ws does above
            await self.websocket.close(code=4400, reason=NOT_AN_OBJECT)
            return
        await super().handle_message(cast(LegacyMessage, message))

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except guards.Refused as refused:
            refusal: ConnectionErrorMessage = {
                "type": "connection_error",
                "payload": refused.payload,
            }
            await self.send_message(refusal)
            await self.websocket.close(code=refused.close_code, reason=refused.message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        serve_operation(operation_id, "data", self.websocket.ws)  # type: ignore[attr-defined]
        await super().handle_async_results(operation_id, query, operation_name, variables)

    async def _close_unless_initialised(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if not self.connection_acknowledged:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=4408, reason="Connection initialisation timeout")


class RealtimeView:
    """Mixed into the app's GraphQL view (which provides ``domain``)."""

    domain: DomainContext
    auth_limiter: guards.FailedAuthLimiter
    connections: guards.ConnectionRegistry
    graphql_ws_handler_class: type[BaseGraphQLWSHandler[Context, None]] = LegacyWSHandler
    graphql_transport_ws_handler_class: type[BaseGraphQLTransportWSHandler[Context, None]] = (
        TransportWSHandler
    )

    async def on_ws_connect(self, context: Context) -> Any:
        credential = bearer_from_params(context.connection_params)
        if credential is None and context.request is not None:
            credential = bearer_from_header(context.request.headers.get("authorization"))
        address = guards.client_address(context.request)
        try:
            principal, error = await guards.checked_principal(
                self.domain, self.auth_limiter, address, credential
            )
        except guards.Throttled as exc:
            raise guards.Refused(guards.TOO_MANY, "TOO_MANY_FAILED_ATTEMPTS", str(exc)) from None
        if principal is None:
            raise ConnectionRejectionError(
                {
                    "message": error.message
                    if error
                    else "authentication required: send {'Authorization': 'Bearer <token>'} "
                    "in the connection_init payload",
                    "code": error.code.value if error else "UNAUTHENTICATED",
                }
            )
        assert credential is not None
        websocket = context.request
        self.connections.admit(context, principal, credential, websocket.close)
        context.bearer = credential
        context.credential = principal
        context.credential_error = None
        # The handshake's headers are read at the handshake (its origin) and above (a bearer),
        # never again; the ASGI scope would keep them as long as the socket is open (~1 KiB).
        if isinstance(headers := websocket.scope.get("headers"), list):
            headers.clear()
        return None


async def fresh_principal(context: Context) -> Principal:
    """For each subscription event: re-check the connection's credential (a revoked token or a
    deactivated user stops here) and give the event its own loaders and clock reading."""
    if context.bearer is None:
        return context.principal  # over HTTP (tests' in-process execution): per request anyway
    principal, error = await principal_for(context.domain, context.bearer)
    if principal is None:
        message = error.message if error else "the credential is no longer valid"
        raise unauthenticated(message, error.code) if error else unauthenticated(message)
    context.credential = principal
    context.now = context.domain.clock.now()
    # Loaders make each DataLoader on first use: most events (a machineStatus change) need none.
    context.loaders = Loaders(context.domain, principal)
    return principal
