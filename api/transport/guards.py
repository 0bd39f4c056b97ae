"""Abuse guards in front of the API: failed authentication attempts per client address,
open websockets per user with a periodic credential re-check, and a websocket message size limit.

All three count in this process. In a cluster each instance counts for itself: an address may
fail ``auth_failure_limit`` times on each instance, a user may hold ``ws_max_connections_per_user``
websockets on each. Put a shared limiter in the load balancer when that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import principal_for
from domain.context import DomainContext
from domain.kernel.errors import DomainError
from domain.kernel.principals import MachinePrincipal, Principal, UserPrincipal

log = logging.getLogger("deskfleet.guards")

# Close codes: 4429 is graphql-ws's "too many" code (used for too many connections and too many
# failed attempts), 4403 its "forbidden", 1009 the WebSocket protocol's "message too big".
TOO_MANY = 4429
FORBIDDEN = 4403
MESSAGE_TOO_BIG = 1009


class Refused(Exception):
    """A websocket refused at ``connection_init`` with a specific close code (see realtime.py)."""

    def __init__(self, close_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.code = code
        self.message = message

    @property
    def payload(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


class FailedAuthLimiter:
    """At most ``limit`` failed attempts per client address within ``window`` seconds.

    Each address keeps the times of its last ``limit`` failures; it is blocked while the oldest
    of them is younger than the window. Addresses are bounded (least recently failed dropped).
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        max_addresses: int = 100_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_addresses = max_addresses
        self._now = now
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.limit:
            return None
        wait = failures[0] + self.window - self._now()
        if wait <= 0:
            return None
        return wait

    def failed(self, address: str) -> None:
        failures = self._failures.get(address)
        if failures is None:
            failures = self._failures[address] = deque(maxlen=self.limit)
        failures.append(self._now())
        self._failures.move_to_end(address)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def refusal_message(self, wait: float) -> str:
        return (
            f"too many failed authentication attempts from this address: at most {self.limit} "
            f"in {self.window:g}s; retry in {max(1, round(wait))}s"
        )


def principal_key(principal: Principal) -> str:
    if isinstance(principal, UserPrincipal):
        return f"user:{principal.user_id}"
    if isinstance(principal, MachinePrincipal):
        return f"machine:{principal.machine_id}"
    return f"other:{id(principal)}"


Authenticate = Callable[[str], Awaitable[bool]]  # the bearer is still valid?
Close = Callable[[int, str], Awaitable[None]]


@dataclass(eq=False, slots=True)
class LiveConnection:
    key: str
    bearer: str
    close: Close
    closing: bool = field(default=False)


class ConnectionRegistry:
    """The open, authenticated websockets of this process, per user (or machine).

    ``admit`` refuses past ``max_per_user``; a watcher re-checks every connection's credential each
    ``check_seconds`` and closes (4403) those whose token was revoked, user deactivated or machine
    key rotated, so a revoked credential never keeps an idle subscription open.
    """

    def __init__(self, max_per_user: int, check_seconds: float) -> None:
        self.max_per_user = max_per_user
        self.check_seconds = check_seconds
        self._by_key: dict[str, list[LiveConnection]] = {}
        self._by_owner: dict[int, LiveConnection] = {}
        self._task: asyncio.Task[None] | None = None

    def count(self, key: str) -> int:
        return len(self._by_key.get(key, ()))

    def admit(self, owner: object, principal: Principal, bearer: str, close: Close) -> None:
        """Registers the connection of ``owner`` (its context); Refused past the cap."""
        key = principal_key(principal)
        self.leave(owner)  # a second connection_init on the same socket is refused anyway
        if self.count(key) >= self.max_per_user:
            raise Refused(
                TOO_MANY,
                "TOO_MANY_CONNECTIONS",
                f"at most {self.max_per_user} open websockets per user: close one, or run "
                "several subscriptions on one socket",
            )
        live = LiveConnection(key, bearer, close)
        self._by_key.setdefault(key, []).append(live)
        self._by_owner[id(owner)] = live

    def leave(self, owner: object) -> None:
        live = self._by_owner.pop(id(owner), None)
        if live is None:
            return
        peers = self._by_key.get(live.key, [])
        with contextlib.suppress(ValueError):
            peers.remove(live)
        if not peers:
            self._by_key.pop(live.key, None)

    async def start(self, still_valid: Authenticate) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(still_valid), name="ws-credential-check")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check_now(self, still_valid: Authenticate) -> int:
        """Closes every connection whose credential no longer authenticates; returns how many."""
        verdicts: dict[str, bool] = {}
        closed = 0
        for live in [c for peers in self._by_key.values() for c in peers]:
            if live.closing:
                continue
            if live.bearer not in verdicts:
                verdicts[live.bearer] = await still_valid(live.bearer)
            if not verdicts[live.bearer]:
                live.closing = True
                closed += 1
                with contextlib.suppress(Exception):
                    await live.close(FORBIDDEN, "the credential was revoked")
        return closed

    async def _watch(self, still_valid: Authenticate) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            try:
                await self.check_now(still_valid)
            except Exception:  # the database may be briefly unavailable: try again next time
                log.warning("websocket credential check failed; retrying", exc_info=True)


class WebSocketMessageLimit:
    """ASGI middleware: a websocket message larger than ``max_bytes`` closes the socket with 1009
    before the application reads it (uvicorn also refuses frames past its ``ws_max_size``).

    It hands the application a guarded receive and send and returns the application's own
    coroutine: no frame of its own waits as long as each socket is open."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "websocket":
            return self.app(scope, receive, send)
        guarded = _SizeGuarded(receive, send, self.max_bytes)
        return self.app(scope, guarded.receive, guarded.send)


class _SizeGuarded:
    __slots__ = ("_receive", "_send", "closed", "max_bytes")

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.closed = False

    async def send(self, message: Message) -> None:
        if not self.closed:
            await self._send(message)

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "websocket.receive":
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > self.max_bytes and not self.closed:
                self.closed = True
                await self._send(
                    {
                        "type": "websocket.close",
                        "code": MESSAGE_TOO_BIG,
                        "reason": f"messages are limited to {self.max_bytes} bytes",
                    }
                )
                return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
        return message


class Throttled(Exception):
    """The client address failed authentication too often (HTTP 429, websocket 4429)."""


async def checked_principal(
    ctx: DomainContext, limiter: FailedAuthLimiter, address: str, credential: str | None
) -> tuple[Principal | None, DomainError | None]:
    """:func:`api.auth.principal_for`. Each unknown, revoked or deactivated credential counts as a
    failure of ``address``; past its limit such attempts are refused (Throttled). A valid
    credential is never refused: people behind one proxy or NAT share an address, and one of them
    guessing must not lock the others out (guessing a 256-bit token gains nothing from this)."""
    if credential is None:
        return None, None  # no credential: nothing guessed, nothing counted
    principal, error = await principal_for(ctx, credential)
    if principal is not None or not credential:
        return principal, error
    wait = limiter.retry_after(address)
    if wait is not None:
        raise Throttled(limiter.refusal_message(wait))
    limiter.failed(address)
    log.info("failed authentication attempt from %s", address)
    return principal, error


def client_address(request: Any) -> str:
    """The peer address (behind a proxy, run uvicorn with --proxy-headers so this is the client)."""
    client = getattr(request, "client", None)
    return client.host if client is not None and client.host else "unknown"
