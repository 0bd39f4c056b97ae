"""R39 against a real ``deskfleet serve``: a costly subscription is refused over both websocket
protocols, and instances sharing one Redis share each caller's bucket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.conftest import LiveServer, RedisServer

pytestmark = [pytest.mark.asyncio, pytest.mark.rule("R39")]

RUNS = "runs { machine { name } flow { name } run { id } }"
# One root field (a subscription has one) and three lists of 10 in a list of 10:
# 1 + 10 * (1 + 3 * 40)
COSTLY = (
    "subscription { sessionRecommendations { recommendations { "
    f"a: {RUNS} b: {RUNS} c: {RUNS} }} }} }}"
)
CHEAP = "subscription { sessionRecommendations { snapshot recommendations { id } } }"


async def first_message(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] != "ka":
            return message


async def test_a_costly_subscription_is_refused_over_both_protocols(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server()
    token = server.admin_token
    start = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
    for protocol, verb in start.items():
        async with websockets.connect(server.ws_url, subprotocols=[protocol]) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            await ws.send(json.dumps(init))
            assert (await first_message(ws))["type"] == "connection_ack"

            await ws.send(json.dumps({"id": "1", "type": verb, "payload": {"query": COSTLY}}))
            refused = await first_message(ws)
            await ws.send(json.dumps({"id": "2", "type": verb, "payload": {"query": CHEAP}}))
            accepted = await first_message(ws)

        assert refused["type"] == "error" and refused["id"] == "1", refused
        payload = refused["payload"]
        error = payload[0] if isinstance(payload, list) else payload
        assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert error["extensions"]["cost"] == 1211
        assert "1211" in error["message"] and "1000" in error["message"]
        assert accepted["id"] == "2" and accepted["type"] in ("next", "data"), accepted
        assert "extensions" not in accepted["payload"]  # events carry no cost report


def spend(server: LiveServer, token: str, query: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def metrics(server: LiveServer) -> str:
    return httpx.get(f"{server.url}/metrics", timeout=30).text


async def test_two_instances_on_one_redis_share_one_bucket(
    redis_server: RedisServer, deskfleet_server: Callable[..., LiveServer], tmp_path: Any
) -> None:
    # A bucket of 100 that restores one point every 1,000 s: nothing here depends on timing.
    env = {
        "DESKFLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "DESKFLEET_COST_BUCKET_SIZE": "100",
        "DESKFLEET_COST_RESTORE_RATE": "0.001",
    }
    first = deskfleet_server(redis_server.url, env=env)
    second = deskfleet_server(redis_server.url, env=env, admin_token=first.admin_token)
    token = first.admin_token
    page = "{ machines(first: 20) { nodes { id owner { id } } } }"  # 1 + 20 * 2 = 41

    on_first = spend(first, token, page).json()
    on_second = spend(second, token, page).json()
    refused = spend(first, token, page)
    # Now the first instance has seen the shared bucket short: it refuses at the door, alike.
    again = spend(first, token, page)

    assert on_first["extensions"]["cost"]["requestedQueryCost"] == 41
    status = on_second["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 100
    assert status["currentlyAvailable"] == 18  # 100 - 41 - 41, and a sliver restored
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 1_000
    assert refused.json()["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert again.status_code == 429
    assert again.headers["retry-after"] == refused.headers["retry-after"]
    by_door, by_operation = again.json(), refused.json()
    # Moments later, a sliver more restored: the wait (and the message saying it) is shorter.
    waits = [
        body["errors"][0]["extensions"].pop("retryAfterSeconds") for body in (by_door, by_operation)
    ]
    assert waits[0] == pytest.approx(waits[1], abs=5)
    for body in (by_door, by_operation):
        del body["errors"][0]["message"]
    assert by_door == by_operation
    assert "deskfleet_requests_refused_at_door_total 1.0" in metrics(first)
