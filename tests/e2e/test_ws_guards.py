"""Websocket guards against a real `deskfleet serve`: message size (1009), open
connections per user (4429), failed attempts per address (4429) and a token revoked while
connected ending its idle connection (4403) without waiting for an event."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.conftest import LiveServer
from tests.e2e.test_realtime import MACHINE_STATUS, REVOKE, Given

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

GUARD_ENV = {
    "DESKFLEET_WS_MAX_MESSAGE_BYTES": "4000",
    "DESKFLEET_WS_MAX_CONNECTIONS_PER_USER": "2",
    "DESKFLEET_WS_CREDENTIAL_CHECK_SECONDS": "0.5",
    "DESKFLEET_AUTH_FAILURE_LIMIT": "3",
}


@pytest.fixture
def server(deskfleet_server: Callable[..., LiveServer]) -> LiveServer:
    return deskfleet_server(env=GUARD_ENV)


async def connect(server: LiveServer, token: str, protocol: str = "graphql-transport-ws") -> Any:
    ws = await websockets.connect(server.ws_url, subprotocols=[protocol])
    key = "Authorization" if protocol == "graphql-transport-ws" else "token"
    value = f"Bearer {token}" if key == "Authorization" else token
    await ws.send(json.dumps({"type": "connection_init", "payload": {key: value}}))
    return ws


async def first_message(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("type") != "ka":
            return message


async def closed_with(ws: Any) -> int:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code


async def test_a_message_over_the_size_limit_closes_with_1009(server: LiveServer) -> None:
    ws = await connect(server, server.admin_token)
    assert (await first_message(ws))["type"] == "connection_ack"
    padding = "#" * 3_000  # a comment: the document stays valid
    at_limit = {"id": "1", "type": "subscribe", "payload": {"query": MACHINE_STATUS + padding}}
    assert len(json.dumps(at_limit)) <= 4000
    await ws.send(json.dumps(at_limit))
    snapshot = await first_message(ws)
    assert snapshot["type"] == "next" and snapshot["id"] == "1"

    too_big = {"id": "2", "type": "subscribe", "payload": {"query": MACHINE_STATUS + "#" * 4000}}
    await ws.send(json.dumps(too_big))

    assert await closed_with(ws) == 1009
    assert "limited to 4000 bytes" in ws.close_reason


async def test_connections_per_user_past_the_limit_are_refused_with_4429(
    server: LiveServer,
) -> None:
    given = Given(server)
    env = given.default_environment()
    _, token, _ = given.person(env)
    _, other_token, _ = given.person(env)

    first = await connect(server, token)
    second = await connect(server, token, "graphql-ws")
    acks = [await first_message(first), await first_message(second)]
    third = await connect(server, token)
    third_code = await closed_with(third)
    legacy = await connect(server, token, "graphql-ws")
    legacy_refusal = await first_message(legacy)
    someone_else = await connect(server, other_token)
    other_ack = await first_message(someone_else)
    await first.close()
    await asyncio.sleep(0.3)  # the server sees the close
    after_one_left = await connect(server, token)
    ack_after = await first_message(after_one_left)

    assert [a["type"] for a in acks] == ["connection_ack", "connection_ack"]
    assert third_code == 4429
    assert "at most 2 open websockets per user" in third.close_reason
    assert legacy_refusal["type"] == "connection_error"
    assert legacy_refusal["payload"]["code"] == "TOO_MANY_CONNECTIONS"
    assert other_ack["type"] == "connection_ack"
    assert ack_after["type"] == "connection_ack"
    for ws in (second, legacy, someone_else, after_one_left):
        await ws.close()


async def test_failed_websocket_attempts_are_rate_limited_per_address(server: LiveServer) -> None:
    codes = []
    for n in range(3):
        ws = await connect(server, f"dfu_guess{n}")
        codes.append(await closed_with(ws))
    blocked = await connect(server, "dfu_guess-again")
    blocked_code = await closed_with(blocked)
    valid = await connect(server, server.admin_token)  # a valid credential is never refused
    valid_answer = await first_message(valid)
    await valid.close()
    async with httpx.AsyncClient() as client:  # the same address over HTTP: the count is shared
        http_guess = await client.post(
            f"{server.url}/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": "Bearer dfu_guess-over-http"},
            timeout=10,
        )

    assert codes == [4403, 4403, 4403]
    assert blocked_code == 4429
    assert "too many failed authentication attempts" in blocked.close_reason
    assert valid_answer["type"] == "connection_ack"
    assert http_guess.status_code == 429


async def a_person_subscribed(server: LiveServer) -> tuple[Any, str, str]:
    """A new person's websocket, subscribed to machineStatus and past its first message."""
    given = Given(server)
    _, token, token_id = given.person(given.default_environment())
    ws = await connect(server, token)
    assert (await first_message(ws))["type"] == "connection_ack"
    await ws.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": MACHINE_STATUS}})
    )
    assert (await first_message(ws))["type"] == "next"
    return ws, token, token_id


async def test_a_token_revoked_while_connected_ends_the_idle_connection(
    server: LiveServer,
) -> None:
    ws, _, token_id = await a_person_subscribed(server)

    server.graphql(REVOKE, variables={"id": token_id})
    revoked_at = time.monotonic()
    code = await closed_with(ws)  # no machine changes: nothing but the re-check ends it

    assert code == 4403
    assert "revoked" in ws.close_reason
    assert time.monotonic() - revoked_at < 3


async def test_a_token_revoked_by_another_instance_ends_the_idle_connection_within_the_check(
    server: LiveServer,
) -> None:
    """Revoked straight in the database, as another instance of a cluster would: this server's
    credential cache (5 s) still vouches for the token, the periodic re-check asks the database."""
    ws, token, token_id = await a_person_subscribed(server)
    assert server.graphql("{ me { id } }", token)  # the token is in this server's cache now

    database = server.served.log.parent / "deskfleet.db"
    with sqlite3.connect(database) as db:
        db.execute("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE id = ?", (token_id,))
    revoked_at = time.monotonic()
    code = await closed_with(ws)
    after_close = server.served.graphql("{ me { id } }", token)

    assert code == 4403
    assert time.monotonic() - revoked_at < 2.5  # the check period (0.5 s), not 0.5 s + 5 s
    assert after_close["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # cache forgot it


async def test_a_json_frame_that_is_not_an_object_closes_with_4400_and_no_traceback(
    server: LiveServer,
) -> None:
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        for frame in ("[1, 2, 3]", '"x"', "42", "null"):
            ws = await websockets.connect(server.ws_url, subprotocols=[protocol])
            await ws.send(frame)
            assert await closed_with(ws) == 4400, (protocol, frame)
            assert ws.close_reason == "WebSocket message must be a JSON object"
    ws = await connect(server, server.admin_token)  # the server still serves
    assert (await first_message(ws))["type"] == "connection_ack"
    await ws.close()
    assert "Traceback" not in server.served.output()


async def failed_http(server: LiveServer, forwarded_for: str) -> int:
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{server.url}/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": "Bearer dfu_guess", "X-Forwarded-For": forwarded_for},
            timeout=10,
        )
    return answer.status_code


@pytest.mark.parametrize(("trusted", "counted_apart"), [("127.0.0.1", True), ("", False)])
async def test_failed_attempts_count_per_forwarded_client_only_behind_a_trusted_proxy(
    deskfleet_server: Callable[..., LiveServer], trusted: str, counted_apart: bool
) -> None:
    """The tests' client is the proxy here (127.0.0.1): trusted, each forwarded client has its
    own count; trusting nobody, they all share the proxy's."""
    server = deskfleet_server(env={**GUARD_ENV, "DESKFLEET_FORWARDED_ALLOW_IPS": trusted})

    first_client = [await failed_http(server, "203.0.113.5") for _ in range(4)]
    second_client = await failed_http(server, "203.0.113.6")

    assert first_client == [200, 200, 200, 429]
    assert second_client == (200 if counted_apart else 429)
