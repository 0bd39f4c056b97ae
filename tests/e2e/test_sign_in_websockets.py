"""R44 against a real `deskfleet serve` and a real OpenID Provider (the npm oidc-provider): the
provider's access token opens websockets on both protocols, as a user token does; the socket
closes with 4403 once the token expires; a provider that cannot be used stops `serve` with a
clear message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.e2e.conftest import LiveServer
from tests.e2e.server import Served, free_port
from tests.oidc.provider import AUDIENCE, CLIENT_ID, OpenIDProvider

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R44")]

SUBSCRIPTION = "subscription { machineStatus { snapshot machines { machineId } } }"


def sign_in_env(provider: OpenIDProvider, **more: str) -> dict[str, str]:
    return {
        "DESKFLEET_OIDC_ISSUER": provider.issuer,
        "DESKFLEET_OIDC_CLIENT_ID": CLIENT_ID,
        "DESKFLEET_OIDC_AUDIENCE": AUDIENCE,
        "DESKFLEET_OIDC_AUTO_PROVISION": "true",
        "DESKFLEET_OIDC_CLOCK_SKEW_SECONDS": "0",
        "DESKFLEET_WS_CREDENTIAL_CHECK_SECONDS": "0.5",
        **more,
    }


async def open_socket(server: LiveServer, token: str, protocol: str) -> Any:
    ws = await websockets.connect(server.ws_url, subprotocols=[protocol])
    payload = {"Authorization": f"Bearer {token}"}
    if protocol == "graphql-ws":
        payload = {"token": token}  # the legacy protocol's clients often send it so
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def next_message(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("type") != "ka":
            return message


async def close_code(ws: Any, within: float) -> int:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), within)
    return ws.close_code


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_provider_token_opens_a_websocket_and_its_expiry_closes_it_with_4403(
    protocol: str,
    openid_provider: OpenIDProvider,
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server(env=sign_in_env(openid_provider))
    openid_provider.account("wes")
    token = openid_provider.access_token("wes", ttl=4)

    ws = await open_socket(server, token, protocol)
    assert (await next_message(ws))["type"] == "connection_ack"
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    await ws.send(json.dumps({"id": "1", "type": start, "payload": {"query": SUBSCRIPTION}}))
    snapshot = await next_message(ws)
    assert snapshot["type"] in ("next", "data"), snapshot
    assert snapshot["payload"]["data"]["machineStatus"]["snapshot"] is True

    assert await close_code(ws, within=10) == 4403  # its exp passed: no event needed

    refused = await open_socket(server, token, protocol)
    if protocol == "graphql-transport-ws":
        assert await close_code(refused, within=10) == 4403  # the protocol says no more
    else:
        error = await next_message(refused)
        assert error["type"] == "connection_error"
        assert "expired" in error["payload"]["message"]


async def test_api_tokens_keep_working_beside_sign_in(
    openid_provider: OpenIDProvider, deskfleet_server: Callable[..., LiveServer]
) -> None:
    server = deskfleet_server(env=sign_in_env(openid_provider))
    ws = await open_socket(server, server.admin_token, "graphql-transport-ws")
    assert (await next_message(ws))["type"] == "connection_ack"
    await ws.close()
    assert server.graphql("{ me { user { email } } }")["me"]["user"]["email"]


def test_serve_stops_with_a_clear_message_when_the_issuer_cannot_be_reached(
    tmp_path: Path,
) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    served = Served(
        tmp_path,
        env={"DESKFLEET_OIDC_ISSUER": issuer, "DESKFLEET_OIDC_CLIENT_ID": CLIENT_ID},
    )
    try:
        assert served.process.wait(60) == 2
    finally:
        served.stop()
    output = served.output()
    assert "deskfleet: sign-in with OpenID Connect: cannot reach" in output
    assert f"{issuer}/.well-known/openid-configuration" in output
    assert "Traceback" not in output
