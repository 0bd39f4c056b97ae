"""Unexpected errors are masked on every transport of a real `deskfleet serve`: plain
HTTP, and an operation over a websocket (Strawberry's streamed path), both answer "Unexpected
error." without the database's message. Masking lives in DeskFleetSchema.process_errors."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

QUERY = "{ machines(first: 5) { totalCount } }"


def break_the_machines_table(server: LiveServer) -> None:
    """A real fault, not a mock: the table disappears under the running server."""
    database = server.served.log.parent / "deskfleet.db"
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE machines RENAME TO machines_gone")


def assert_masked(errors: list[dict[str, Any]]) -> None:
    assert [e["message"] for e in errors] == ["Unexpected error."]
    leaked = json.dumps(errors).lower()
    assert "no such table" not in leaked and "sqlalchemy" not in leaked


async def over_websocket(server: LiveServer, query: str) -> dict[str, Any]:
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        auth = {"Authorization": f"Bearer {server.admin_token}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
        messages = []
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            messages.append(message)
            if message["type"] == "connection_ack":
                await ws.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}})
                )
            if message["type"] in ("next", "error"):
                return message


async def test_unexpected_errors_are_masked_over_http_and_websocket(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server()
    before = await over_websocket(server, QUERY)
    assert before["payload"]["data"]["machines"]["totalCount"] == 0  # the path works at all

    break_the_machines_table(server)
    over_http = server.served.graphql(QUERY, server.admin_token)
    streamed = await over_websocket(server, QUERY)

    assert_masked(over_http["errors"])
    assert streamed["type"] == "next"
    assert_masked(streamed["payload"]["errors"])
    assert "no such table" in server.served.output()  # logged for the operator, with the cause
