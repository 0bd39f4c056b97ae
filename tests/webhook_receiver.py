"""A real HTTP receiver of webhooks on 127.0.0.1 that verifies each one's signature with the
Standard Webhooks reference library, as a user's receiver would (R43)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    id: str
    timestamp: str
    signature: str
    payload: dict[str, Any]


@dataclass
class Receiver:
    url: str = ""
    secret: str | None = None
    status: int = 204  # what it answers a verified webhook
    delay: float = 0.0  # seconds it takes to answer (deliveries stay in flight that long)
    received: list[Received] = field(default_factory=list)
    refused: int = 0  # requests whose signature did not verify
    in_flight: int = 0  # requests being answered now
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        self.in_flight += 1
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: Request) -> Response:
        body = await request.body()
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            assert self.secret is not None, "give the receiver the endpoint's secret"
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused += 1
            return Response(status_code=401)
        self.received.append(
            Received(
                id=request.headers["webhook-id"],
                timestamp=request.headers["webhook-timestamp"],
                signature=request.headers["webhook-signature"],
                payload=payload,
            )
        )
        self.arrived.set()
        return Response(status_code=self.status)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.received if r.payload["type"] == event_type]

    def unique_ids(self) -> set[str]:
        return {r.id for r in self.received}

    def dump(self) -> str:
        return json.dumps([r.payload for r in self.received], indent=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def receiving(path: str = "/hooks") -> AsyncIterator[Receiver]:
    """A receiver served by uvicorn on this event loop, at http://127.0.0.1:<port><path>."""
    receiver = Receiver()
    app = Starlette(routes=[Route(path, receiver.handle, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the receiver did not start"
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
