"""The `heartbeats` baseline: a bare Strawberry mutation on the same Starlette/uvicorn stack that
updates one machine's row through aiosqlite.

``python -m bench.heartbeat_baseline --port P --database FILE`` serves ``machineHeartbeat`` with
DeskFleet's input shape. The bearer is the machine's key, looked up in a dictionary loaded at
start (no hashing, no cache, no sessions table, no events): what is left is parsing the same
document, one ``UPDATE`` and its commit.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aiosqlite
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import Info

from bench import raw_sqlite

STATE: dict[str, object] = {}


@strawberry.input
class UserSessionInput:
    username: str
    state: str


@strawberry.input
class HeartbeatInput:
    runtime_version: str
    os_edition: str
    sessions: list[UserSessionInput] | None = None


@strawberry.type
class HeartbeatPayload:
    key_action_required: bool


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def machine_heartbeat(self, info: Info, input: HeartbeatInput) -> HeartbeatPayload:
        request: Request = info.context["request"]
        key = request.headers["authorization"].partition(" ")[2]
        machine_id = STATE["keys"][key]  # type: ignore[index]
        db: aiosqlite.Connection = STATE["db"]  # type: ignore[assignment]
        await db.execute(
            "UPDATE machines SET last_heartbeat_at = ?, os_edition = ? WHERE id = ?",
            (time.time(), input.os_edition, machine_id),
        )
        await db.commit()
        return HeartbeatPayload(key_action_required=False)


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
)


def lifespan(
    database: str, keys: list[str]
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def run(_: Starlette) -> AsyncIterator[None]:
        db = await raw_sqlite.connect(
            database,
            "CREATE TABLE IF NOT EXISTS machines (id INTEGER PRIMARY KEY, last_heartbeat_at REAL, "
            "os_edition TEXT)",
        )
        await db.executemany(
            "INSERT OR IGNORE INTO machines (id) VALUES (?)", [(i,) for i in range(len(keys))]
        )
        await db.commit()
        STATE.update(db=db, keys={key: i for i, key in enumerate(keys)})
        try:
            yield
        finally:
            await db.close()

    return run


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def app(database: str, keys: list[str]) -> Starlette:
    return Starlette(
        routes=[
            Route("/graphql", GraphQL(schema, graphql_ide=None), methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan(database, keys),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--keys", required=True, help="a file of machine keys, one a line")
    args = parser.parse_args()
    with open(args.keys) as lines:
        keys = [line.strip() for line in lines if line.strip()]
    uvicorn.run(
        app(args.database, keys),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
    )
