"""The `fanout_p99` / `sub_memory` baseline: a bare Starlette websocket endpoint on the same
uvicorn, speaking just enough graphql-transport-ws for the same client (ack, then ``next``
messages), broadcasting one payload of the same shape as DeskFleet's ``machineStatus`` change to
every client when ``POST /graphql`` arrives. Serialised once per change, sent to all.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

CLIENTS: dict[WebSocket, str] = {}


def machine(maintenance: bool) -> dict[str, object]:
    return {
        "machineId": "6f1c2b7e-4a55-4c3e-9d0e-2f7a1b9c8d01",
        "name": "machine-0001",
        "status": "CONNECTED",
        "maintenance": maintenance,
        "drained": True,
        "runningCount": 0,
        "queuedCount": 0,
        "version": "2.8.73.21119",
    }


def update(snapshot: bool, maintenance: bool) -> dict[str, object]:
    return {
        "machineStatus": {
            "snapshot": snapshot,
            "removedIds": [],
            "machines": [machine(maintenance)],
        }
    }


async def subscriber(ws: WebSocket) -> None:
    await ws.accept(subprotocol="graphql-transport-ws")
    try:
        init = json.loads(await ws.receive_text())
        assert init["type"] == "connection_init"
        await ws.send_text(json.dumps({"type": "connection_ack"}))
        subscribe = json.loads(await ws.receive_text())
        CLIENTS[ws] = subscribe["id"]
        data = update(True, False)
        await ws.send_text(
            json.dumps({"id": subscribe["id"], "type": "next", "payload": {"data": data}})
        )
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        CLIENTS.pop(ws, None)


async def change(request: Request) -> JSONResponse:
    body = await request.json()
    maintenance = bool(body.get("on"))
    # Every client subscribed with id "1": one serialisation for all.
    text = json.dumps({"id": "1", "type": "next", "payload": {"data": update(False, maintenance)}})
    await asyncio.gather(*(ws.send_text(text) for ws in list(CLIENTS)), return_exceptions=True)
    return JSONResponse({"data": {"changed": True}})


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        WebSocketRoute("/graphql", subscriber),
        Route("/graphql", change, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        ws="websockets-sansio",  # as `deskfleet serve`
        ws_per_message_deflate=False,
    )
