"""The `assignment_latency` baseline: a bare trigger-and-push loop on the same uvicorn as
`deskfleet serve`'s websockets.

``python -m bench.assignment_baseline --port P --database FILE`` accepts the same websocket clients
(graphql-transport-ws: ``connection_init``, ack, ``subscribe``, then ``next`` messages), each
holding a machine's list of assignments, empty at first and sent at once (the snapshot). A
``POST /graphql`` (a trigger, with DeskFleet's ``triggerRun`` variables) inserts one row into an
SQLite table through aiosqlite, commits, answers with the run's id in DeskFleet's answer shape and
hands the row to a queue. A separate asyncio task takes each row from the queue, picks it for the
next machine round robin (one ``UPDATE`` to ``DISPATCHED`` naming the machine, and its commit: a
run is on record as given before it is sent, or a restart could give it twice) and sends that
machine its whole list again, in the shape of DeskFleet's ``machineAssignments`` payload. No
authentication, no rules, no event bus, no re-read.

Without the ``UPDATE`` the push leaves microseconds after the answer: measured so, the baseline's
latency was noise around zero, often negative, and a ratio over it meant nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiosqlite
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench import raw_sqlite

log = logging.getLogger("bench.assignment_baseline")

FLOW_NAME = "bench flow"
USERNAME = "robot"
PASSWORD = "bench-password"


@dataclass(eq=False)
class Machine:
    ws: WebSocket
    number: int
    subscription: str  # the id of its subscribe message
    assignments: list[dict[str, object]] = field(default_factory=list)
    gone: bool = False


@dataclass
class State:
    db: aiosqlite.Connection
    queue: asyncio.Queue[dict[str, str]]
    machines: list[Machine] = field(default_factory=list)  # in the order they subscribed
    numbers: Iterator[int] = field(default_factory=itertools.count)


STATE: list[State] = []  # set by the lifespan


def message(machine: Machine) -> str:
    work = {"assignments": machine.assignments, "commands": []}
    return json.dumps(
        {
            "id": machine.subscription,
            "type": "next",
            "payload": {"data": {"machineAssignments": work}},
        }
    )


async def subscriber(ws: WebSocket) -> None:
    await ws.accept(subprotocol="graphql-transport-ws")
    machine = None
    try:
        init = json.loads(await ws.receive_text())
        assert init["type"] == "connection_init" and init["payload"]["token"]
        await ws.send_text(json.dumps({"type": "connection_ack"}))
        subscribe = json.loads(await ws.receive_text())
        assert subscribe["type"] == "subscribe"
        machine = Machine(ws, next(STATE[0].numbers), subscribe["id"])
        await ws.send_text(message(machine))  # the snapshot: nothing assigned yet
        STATE[0].machines.append(machine)
        while True:
            if json.loads(await ws.receive_text()).get("type") == "ping":
                await ws.send_text(json.dumps({"type": "pong"}))
    except WebSocketDisconnect:
        pass
    finally:
        if machine is not None:
            machine.gone = True  # skipped by the dispatcher from now on


async def dispatcher(state: State) -> None:
    """Each queued row to the next connected machine, round robin; its whole list sent again."""
    turn = 0
    while True:
        row = await state.queue.get()
        machine = None
        for _ in range(len(state.machines)):
            candidate = state.machines[turn % len(state.machines)]
            turn += 1
            if not candidate.gone:
                machine = candidate
                break
        if machine is None:  # the client reports the run that never arrived
            log.error("run %s: no machine connected", row["id"])
            continue
        dispatched_at = datetime.now(UTC).isoformat()
        await state.db.execute(
            "UPDATE runs SET status = 'DISPATCHED', machine = ?, dispatched_at = ? "
            "WHERE id = ? AND status = 'QUEUED'",
            (machine.number, dispatched_at, row["id"]),
        )
        await state.db.commit()
        machine.assignments.append(
            {
                "runId": row["id"],
                "attempt": 1,
                "flowId": row["flow_id"],
                "flowName": FLOW_NAME,
                "mode": row["mode"],
                "priority": row["priority"],
                "runAs": USERNAME,
                "username": USERNAME,
                "password": PASSWORD,
                "dispatchedAt": dispatched_at,
            }
        )
        try:
            await machine.ws.send_text(message(machine))
        except Exception:  # the client reports the run that never arrived
            log.exception("run %s: not sent", row["id"])


async def trigger(request: Request) -> JSONResponse:
    state = STATE[0]
    given = json.loads(await request.body())["variables"]["input"]
    row = {
        "id": str(uuid.uuid4()),
        "flow_id": given["flowId"],
        "connection_id": given["connectionId"],
        "mode": given["mode"],
        "priority": given.get("priority", "NORMAL"),
        "status": "QUEUED",
        "queued_at": datetime.now(UTC).isoformat(),
    }
    await state.db.execute(
        "INSERT INTO runs (id, flow_id, connection_id, mode, priority, status, queued_at) "
        "VALUES (:id, :flow_id, :connection_id, :mode, :priority, :status, :queued_at)",
        row,
    )
    await state.db.commit()
    state.queue.put_nowait(row)
    run = {"id": row["id"], "status": row["status"]}
    return JSONResponse({"data": {"triggerRun": {"__typename": "FlowRunPayload", "run": run}}})


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def lifespan(database: str) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def run(_: Starlette) -> AsyncIterator[None]:
        db = await raw_sqlite.connect(
            database,
            "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, flow_id TEXT, "
            "connection_id TEXT, mode TEXT, priority TEXT, status TEXT, queued_at TEXT, "
            "machine INTEGER, dispatched_at TEXT)",
        )
        await db.commit()
        state = State(db, asyncio.Queue())
        STATE[:] = [state]
        task = asyncio.create_task(dispatcher(state))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await db.close()

    return run


def app(database: str) -> Starlette:
    return Starlette(
        routes=[
            WebSocketRoute("/graphql", subscriber),
            Route("/graphql", trigger, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan(database),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    uvicorn.run(
        app(args.database),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        ws="websockets-sansio",  # as `deskfleet serve`
        ws_per_message_deflate=False,
    )
