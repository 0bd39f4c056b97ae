"""One execution and one encoding of a subscription event for every subscriber that gets it.

A subscription yields a payload per subscriber, and GraphQL executes the subscription's selection
over it for each of them. When the payload is *shareable* — the same object for everyone that gets
the same change, made only of plain data (no resolver reads the context or the caller) — the
result of a given document and variables over it is the same for everyone: it is computed once
and every subscriber sends it (api/realtime/subscriptions.py marks machineStatus updates so).

Over a websocket, a shareable event past the first also skips Strawberry's per-result work
(extension hooks, result objects, the message's JSON): :func:`send_shared` sends the text frame
encoded once for everyone subscribed with the same document, variables and operation id. The
first result of every operation, and any result with errors, still go through Strawberry.
"""

from __future__ import annotations

import asyncio
import json
from contextvars import ContextVar
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected

from api.transport.acyclic_execution import AcyclicExecution

_RESULTS = "_deskfleet_shared_results"
_FRAMES = "_deskfleet_shared_frames"


def shareable(payload: object) -> None:
    """Mark ``payload`` (built once per distinct event, context-free) as shareable."""
    setattr(payload, _RESULTS, {})
    setattr(payload, _FRAMES, {})


class OperationSocket:
    """Where one websocket operation's results go: its id, its protocol's message type
    (``next`` for graphql-transport-ws, ``data`` for graphql-ws) and the socket."""

    __slots__ = ("executor", "kind", "operation_id", "variables", "websocket")

    def __init__(self, operation_id: str, kind: str, websocket: WebSocket) -> None:
        self.operation_id = operation_id
        self.kind = kind
        self.websocket = websocket
        # The operation's executor, once it has executed an event (see SharedEventExecution).
        self.executor: SharedEventExecution | None = None
        self.variables = ""


_SOCKET: ContextVar[OperationSocket | None] = ContextVar("deskfleet_operation_socket", default=None)


def serve_operation(operation_id: str, kind: str, websocket: WebSocket) -> None:
    """Called by a websocket operation's own task before it runs the operation."""
    _SOCKET.set(OperationSocket(operation_id, kind, websocket))


def _variables_key(variables: object) -> str:
    return json.dumps(variables, sort_keys=True, default=str)


async def send_shared(payload: object) -> bool:
    """Send ``payload``'s result on the current operation's socket, as a frame shared by every
    subscriber of the same document, variables and id; False when Strawberry must send it (no
    websocket operation, first result, payload not shareable, or a result with errors)."""
    socket = _SOCKET.get()
    if socket is None or socket.executor is None:
        return False
    frames: dict[tuple[int, str, str, str], tuple[object, str]] | None = getattr(
        payload, _FRAMES, None
    )
    if frames is None:
        return False
    executor = socket.executor
    operation = executor.operation
    key = (id(operation), socket.variables, socket.kind, socket.operation_id)
    entry = frames.get(key)
    if entry is None or entry[0] is not operation:
        result = executor.build_per_event_executor(payload).execute_operation(False)
        if executor.is_awaitable(result):
            result = await result
        if result.errors:
            return False
        entry = frames.get(key)  # another subscriber may have encoded it meanwhile
        if entry is None or entry[0] is not operation:
            message = {
                "id": socket.operation_id,
                "type": socket.kind,
                "payload": {"data": result.data},
            }
            entry = (operation, json.dumps(message, separators=(",", ":")))
            frames[key] = entry
    try:
        await socket.websocket.send_text(entry[1])
    except WebSocketDisconnect as exc:
        raise WebSocketDisconnected from exc
    return True


class SharedEventExecution(AcyclicExecution):
    def build_per_event_executor(self, payload: Any) -> Any:
        # Called on the subscription's own executor: the one send_shared executes events with.
        socket = _SOCKET.get()
        if socket is not None and socket.executor is None:
            socket.executor = self
            socket.variables = _variables_key(self.variable_values)
        return super().build_per_event_executor(payload)

    def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        results: dict[Any, tuple[object, object, Any]] | None = getattr(
            self.root_value, _RESULTS, None
        )
        if results is None:
            return super().execute_operation(*args, **kwargs)
        loop = asyncio.get_running_loop()
        key = (id(self.operation), id(loop), _variables_key(self.variable_values))
        entry = results.get(key)
        if entry is not None and entry[0] is self.operation and entry[1] is loop:
            return _awaited_alone(entry[2])
        result = super().execute_operation(*args, **kwargs)
        if self.is_awaitable(result):
            # Strawberry's root resolver is async: every subscriber awaits the one task.
            result = asyncio.ensure_future(result)
        # The operation and loop kept alive with it: their ids stay their own.
        results[key] = (self.operation, loop, result)
        return _awaited_alone(result)


def _awaited_alone(result: Any) -> Any:
    """A subscriber whose operation is cancelled while it waits must not cancel the execution
    everyone else waits for."""
    if isinstance(result, asyncio.Future):
        return result if result.done() else asyncio.shield(result)
    return result
