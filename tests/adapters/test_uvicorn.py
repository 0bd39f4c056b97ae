"""api/transport/uvicorn_adapter.py against the installed uvicorn: the protocol still keeps the
attributes the adapter replaces and uses no more of them than the adapter offers, and a socket
served through it works as uvicorn's own. A failure names what changed: check it before raising
uvicorn's upper bound in pyproject.toml."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator
from importlib.metadata import version

import pytest
import uvicorn
import websockets
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from api.transport.uvicorn_adapter import Inbox, WebSocketProtocol, Writable
from tests.e2e.server import free_port

UVICORN = f"uvicorn {version('uvicorn')}"
SOURCE = inspect.getsource(WebSocketsSansIOProtocol)


def used(attribute: str) -> set[str]:
    return set(re.findall(rf"self\.{attribute}\.(\w+)", SOURCE))


def test_the_protocol_uses_no_more_of_its_queue_and_event_than_the_adapter_offers() -> None:
    assert re.search(r"self\.queue\b.*= asyncio\.Queue\(\)", SOURCE), f"{UVICORN}: no self.queue"
    assert re.search(r"self\.writable = asyncio\.Event\(\)", SOURCE), f"{UVICORN}: no writable"
    assert used("queue") <= {"put_nowait", "get", "empty"}, f"{UVICORN}: {used('queue')}"
    assert used("writable") <= {"set", "clear", "wait", "is_set"}, f"{UVICORN}: {used('writable')}"


def test_every_attribute_the_protocol_sets_has_a_slot() -> None:
    # Not for correctness (an attribute without a slot goes to the instance's dictionary), for
    # the memory of an idle socket: past 30 attributes that dictionary is a whole hash table.
    assigned = set(re.findall(r"self\.(\w+)(?:\s*:[^=\n]+)?\s*=(?!=)", SOURCE))
    assert assigned <= set(WebSocketProtocol.__slots__), (
        f"{UVICORN}: new attributes {sorted(assigned - set(WebSocketProtocol.__slots__))}"
    )


def test_the_protocol_reads_the_handshake_only_while_it_shakes_hands() -> None:
    # handle_connect(request) copies the request's headers into the scope; send() reads
    # self.response only before the handshake is complete.
    assert "def handle_connect(self, event: Request)" in SOURCE, f"{UVICORN}: handle_connect"
    assert set(re.findall(r"self\.request\b(?!\s*=)", SOURCE)) == set(), f"{UVICORN}: request read"
    send = inspect.getsource(WebSocketsSansIOProtocol.send)
    handshake, _, after = send.partition("elif not self.close_sent")
    assert "self.response" in handshake and "self.response" not in after, f"{UVICORN}: response"
    response_sent = send.index("self.conn.send_response(self.response)")
    assert send.index("self.start_keepalive()") > response_sent, f"{UVICORN}: start_keepalive"
    handle = inspect.getsource(WebSocketsSansIOProtocol.handle_connect)
    assert "event.headers.raw_items()" in handle, f"{UVICORN}: the scope's headers"


def test_the_protocol_keeps_its_next_ping_in_ping_timer_and_pings_in_send_keepalive_ping() -> None:
    schedule = inspect.getsource(WebSocketsSansIOProtocol.schedule_ping)
    assert "self.ping_timer = self.loop.call_later(delay, self.send_keepalive_ping)" in schedule, (
        f"{UVICORN}: schedule_ping"
    )
    stop = inspect.getsource(WebSocketsSansIOProtocol.stop_keepalive)
    assert "self.ping_timer.cancel()" in stop and "self.ping_timer = None" in stop, (
        f"{UVICORN}: stop_keepalive"
    )
    ping = inspect.getsource(WebSocketsSansIOProtocol.send_keepalive_ping)
    assert "self.ping_timer = None" in ping, f"{UVICORN}: send_keepalive_ping"


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, answers each text with its upper case and its headers' count, closes on "bye"."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": "test"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message["text"] == "bye":
            await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
            return
        answer = f"{message['text'].upper()} {len(scope['headers'])}"
        await send({"type": "websocket.send", "text": answer})


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            echo,
            host="127.0.0.1",
            port=port,
            ws=WebSocketProtocol,
            ws_ping_interval=0.2,
            lifespan="off",
            log_level="warning",
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        assert not serving.done(), "uvicorn did not start"
    try:
        yield f"ws://127.0.0.1:{port}/", server
    finally:
        server.should_exit = True
        await serving


async def test_a_socket_served_through_the_adapter_keeps_no_handshake_headers(
    served: tuple[str, uvicorn.Server],
) -> None:
    url, server = served
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("test")]) as ws:
        assert ws.subprotocol == "test"
        for word in ("one", "two", "three"):
            await ws.send(word)
            answer, headers = str(await ws.recv()).split()
            assert answer == word.upper()
            assert int(headers) >= 4  # the app still sees the request's headers in its scope
        (protocol,) = server.server_state.connections
        assert isinstance(protocol, WebSocketProtocol)
        assert isinstance(protocol.queue, Inbox) and isinstance(protocol.writable, Writable)
        assert protocol.__dict__ == {}  # every attribute in its slot
        assert len(protocol.request.headers) == 0
        assert len(protocol.response.headers) == 0
        await ws.send("bye")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


async def test_sockets_are_pinged_again_and_again_by_the_shared_rounds(
    served: tuple[str, uvicorn.Server],
) -> None:
    url, server = served
    test = [websockets.Subprotocol("test")]
    async with (
        websockets.connect(url, subprotocols=test) as one,
        websockets.connect(url, subprotocols=test) as two,
    ):
        await one.send("x")
        await two.send("y")
        await one.recv()
        await two.recv()
        await asyncio.sleep(1.5)  # rounds come each second at most
        first = {p: p.ping_sent_at for p in server.server_state.connections}
        await asyncio.sleep(1.5)
        again = {p: p.ping_sent_at for p in server.server_state.connections}
        assert len(first) == 2 and all(again[p] > first[p] > 0 for p in first)
        assert all(p.last_ping_rtt > 0 for p in again)  # the pongs came back


async def test_an_inbox_gives_each_item_once_in_order_to_whoever_waits() -> None:
    inbox = Inbox()
    assert inbox.empty()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert sorted(await asyncio.gather(first, second)) == ["a", "b"]
    assert inbox.empty()


async def test_an_item_a_cancelled_reader_was_woken_for_is_not_lost() -> None:
    inbox = Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("kept")
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert not inbox.empty()
    assert await inbox.get() == "kept"


async def test_writable_holds_its_waiters_until_it_is_set_again() -> None:
    writable = Writable()
    await asyncio.wait_for(writable.wait(), 1)  # set from the start
    writable.clear()
    waiter = asyncio.create_task(writable.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done() and not writable.is_set()
    writable.set()
    await asyncio.wait_for(waiter, 1)
