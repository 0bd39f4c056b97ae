"""The websocket load generator: a separate process holding many graphql-transport-ws subscribers.

``python -m bench.ws_clients --ws URL --clients N --query Q [--token T]`` connects N websockets
(``connection_init`` with the token, then one ``subscribe``), waits for every first message (the
snapshot), prints ``READY``, then for each line ``CHANGE <id>`` it reads on stdin: notes the time,
POSTs the change (``--change-url``, body ``--change-body`` with ``{on}`` replaced by ``true``
for odd changes and ``false`` for even ones), and prints ``LATENCY <seconds>`` once every subscriber has received one more message.
``QUIT`` closes everything. The same code drives DeskFleet and the bare baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets

PROTOCOL = "graphql-transport-ws"


async def updates(ws: Any) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """A graphql-transport-ws subscription's ``next`` messages, each with the time it arrived;
    pings are answered, and anything else (an error) raises."""
    async for raw in ws:
        now = time.perf_counter()
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        if kind != "next" or message.get("payload", {}).get("errors"):
            raise RuntimeError(f"unexpected message: {message}")
        yield now, message


class Subscriber:
    def __init__(self) -> None:
        self.received = 0
        self.last_at = 0.0
        self.arrived = asyncio.Event()

    async def run(self, url: str, token: str | None, query: str, ready: asyncio.Event) -> None:
        async with websockets.connect(
            url, subprotocols=[PROTOCOL], max_size=None, open_timeout=60, ping_interval=None
        ) as ws:
            init: dict[str, object] = {"type": "connection_init"}
            if token:
                init["payload"] = {"Authorization": f"Bearer {token}"}
            await ws.send(json.dumps(init))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"not acknowledged: {ack}")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            ready.set()
            async for now, _ in updates(ws):
                self.received += 1
                self.last_at = now
                self.arrived.set()


async def _wait_all(subs: list[Subscriber], count: int, within: float) -> float:
    """Until every subscriber has ``count`` messages; the time the last one arrived."""
    deadline = time.monotonic() + within
    for sub in subs:
        while sub.received < count:
            sub.arrived.clear()
            if sub.received >= count:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sum(s.received < count for s in subs)
                raise TimeoutError(f"{missing} subscribers did not get message {count}")
            await asyncio.wait_for(sub.arrived.wait(), left)
    return max(s.last_at for s in subs)


async def _first(waiting: object, task: asyncio.Task[None]) -> None:
    """Until ``waiting`` is done or ``task`` ended."""
    waiter = asyncio.ensure_future(waiting)  # type: ignore[arg-type]
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()


async def main(args: argparse.Namespace) -> None:
    subs = [Subscriber() for _ in range(args.clients)]
    tasks: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(50)  # connect in waves: no thundering herd of handshakes

    tokens = [t for t in args.tokens.split(",") if t] or [args.token]

    async def start(i: int, sub: Subscriber) -> None:
        ready = asyncio.Event()
        async with gate:
            token = tokens[i % len(tokens)]
            task = asyncio.create_task(sub.run(args.ws, token, args.query, ready))
            tasks.append(task)
            await asyncio.wait_for(_first(ready.wait(), task), 60)
            if task.done():
                task.result()  # raises what ended it

    await asyncio.gather(*(start(i, s) for i, s in enumerate(subs)))
    await _wait_all(subs, 1, 120)  # the snapshots
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with httpx.AsyncClient(timeout=60) as http:
        expected = 1
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if not line or line == "QUIT":
                break
            number = line.split()[1]
            expected += 1
            started = time.perf_counter()
            response = await http.post(
                args.change_url,
                content=args.change_body.replace("{on}", "true" if int(number) % 2 else "false"),
                headers={**headers, "Content-Type": "application/json"},
            )
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise RuntimeError(f"the change failed: {response.status_code} {body}")
            last = await _wait_all(subs, expected, 120)
            print(f"LATENCY {last - started:.6f}", flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--query", required=True)
    parser.add_argument("--token", help="for the change")
    parser.add_argument("--tokens", default="", help="subscriber i uses token i mod their number")
    parser.add_argument("--change-url", required=True)
    parser.add_argument("--change-body", required=True)
    asyncio.run(main(parser.parse_args()))
