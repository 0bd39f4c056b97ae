"""The one place DeskFleet reaches into uvicorn's websocket protocol (tested by
tests/adapters/test_uvicorn.py).

``deskfleet serve`` passes :class:`WebSocketProtocol` as uvicorn's ``ws`` (a protocol class is a
documented value of that setting). It is uvicorn's ``websockets-sansio`` protocol with less kept
per open socket, which an idle subscriber holds for as long as it is connected (`sub_memory`;
the figures are the server's resident memory per idle subscriber at 2,000 of them):

- ``queue`` and ``writable``, an ``asyncio.Queue`` and an ``asyncio.Event``, are five deques of
  about 760 bytes each, nearly always empty: :class:`Inbox` and :class:`Writable` do the same for
  a few dozen bytes (4.4 KiB less).
- The handshake's request and response stay referenced for the socket's life (uvicorn's
  ``request`` and ``response``, and the parser of websockets' ``ServerProtocol``), with every
  header as a Python string. Once uvicorn has copied the request's headers into the ASGI scope and
  sent the response, their ``Headers`` are emptied with their public ``clear()`` (5.8 KiB less).
- Its 37 attributes made each instance's dictionary a whole hash table: the subclass gives them
  slots (1.5 KiB less).
- Each socket kept a timer for its next keep-alive ping. The sockets due in the same second now
  share one (:class:`PingRounds`; 0.9 KiB less): a ping comes up to a second later than
  uvicorn's own would.

uvicorn is a dependency with an upper bound (pyproject.toml); the test fails, naming what
changed, on a version whose protocol no longer keeps these attributes.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request


class _Waiting:
    """The futures of the coroutines waiting on it; a list only while there are any."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] | None = None

    def _wake(self) -> None:
        # Every waiter checks again: what one left (cancelled meanwhile) another still sees.
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _enlist(self) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        return waiter

    def _dismiss(self, waiter: asyncio.Future[None]) -> None:
        # Awaited inline by the waiting coroutine: an idle socket's task has no frame more.
        if self._waiters is not None:
            self._waiters.remove(waiter)
            if not self._waiters:
                self._waiters = None


class Inbox(_Waiting):
    """What uvicorn's protocol uses of its ``asyncio.Queue``: ``put_nowait``, ``get``, ``empty``."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: list[Any] = []

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake()

    async def get(self) -> Any:
        while not self._items:
            waiter = self._enlist()
            try:
                await waiter
            finally:
                self._dismiss(waiter)
        return self._items.pop(0)


class Writable(_Waiting):
    """What uvicorn's protocol uses of its ``asyncio.Event``: ``set``, ``clear``, ``wait``."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        super().__init__()
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        self._wake()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        while not self._set:
            waiter = self._enlist()
            try:
                await waiter
            finally:
                self._dismiss(waiter)


class PingRound:
    """The sockets whose next keep-alive ping falls in one second, and that second's one timer.

    A socket in the round names it as its ``ping_timer``; uvicorn's ``stop_keepalive`` cancels
    and forgets that, and a socket no longer naming the round is passed over (``cancel`` does
    nothing itself: the round's timer serves the others)."""

    __slots__ = ("sockets",)

    def __init__(self) -> None:
        self.sockets: list[WebSocketProtocol] = []

    def cancel(self) -> None:
        pass


class PingRounds:
    """One event loop's rounds, by the second they are due."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.rounds: dict[int, PingRound] = {}

    def join(self, socket: WebSocketProtocol, delay: float) -> PingRound:
        second = math.ceil(self.loop.time() + delay)
        due = self.rounds.get(second)
        if due is None:
            due = self.rounds[second] = PingRound()
            self.loop.call_at(second, self.ping, second)
        due.sockets.append(socket)
        return due

    def ping(self, second: int) -> None:
        due = self.rounds.pop(second)
        for socket in due.sockets:
            if socket.ping_timer is due:
                socket.send_keepalive_ping()


_ROUNDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PingRounds] = (
    weakref.WeakKeyDictionary()
)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, keeping less per socket (see the module)."""

    # Every attribute uvicorn's protocol sets. Past 30 attributes an instance's dictionary is no
    # longer a compact array sharing the class's keys but a whole hash table (1.6 KiB); in
    # slots they take 8 bytes each.
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "client",
        "close_sent",
        "close_timeout",
        "close_timer",
        "config",
        "conn",
        "connections",
        "curr_msg_data_type",
        "default_headers",
        "disconnected",
        "frames",
        "handshake_complete",
        "handshake_initiated",
        "initial_response",
        "last_ping_rtt",
        "logger",
        "loop",
        "pending_ping_payload",
        "ping_interval",
        "ping_sent_at",
        "ping_timeout",
        "ping_timer",
        "pong_timer",
        "queue",
        "read_paused",
        "request",
        "response",
        "root_path",
        "scheme",
        "scope",
        "server",
        "tasks",
        "transport",
        "writable",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Writable()  # type: ignore[assignment]

    def schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)  # as uvicorn's
        rounds = _ROUNDS.get(self.loop)
        if rounds is None:
            rounds = _ROUNDS[self.loop] = PingRounds(self.loop)
        self.ping_timer = rounds.join(self, delay)  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)  # the scope has the headers now, or the refusal is sent
        event.headers.clear()

    def start_keepalive(self) -> None:
        # Called once the handshake's response is sent (no override of send: every message would
        # pay for it).
        self.response.headers.clear()
        super().start_keepalive()
