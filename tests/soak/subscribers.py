"""The soak's websocket client: a process of its own holding N graphql-transport-ws subscribers.

``python -m tests.soak.subscribers --ws URL --clients N --token T --query Q`` connects N
websockets in waves (``connection_init`` with the token, one ``subscribe``), waits for every
snapshot, prints ``READY``, then counts what arrives until it reads ``QUIT`` (or end of input) on
stdin and prints ``STATS {json}``: messages per subscriber, and every error, unexpected message or
close (a soak wants none). Pings are answered; nothing else is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import websockets

PROTOCOL = "graphql-transport-ws"


class Subscriber:
    def __init__(self) -> None:
        self.received = 0
        self.snapshot = asyncio.Event()
        self.problem: str | None = None

    async def run(self, url: str, token: str, query: str) -> None:
        try:
            async with websockets.connect(
                url, subprotocols=[PROTOCOL], max_size=None, open_timeout=120, ping_interval=None
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
                ack = json.loads(await ws.recv())
                if ack.get("type") != "connection_ack":
                    raise RuntimeError(f"not acknowledged: {ack}")
                subscribe = {"id": "1", "type": "subscribe", "payload": {"query": query}}
                await ws.send(json.dumps(subscribe))
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                        continue
                    if kind == "pong":
                        continue
                    if kind != "next" or message.get("payload", {}).get("errors"):
                        raise RuntimeError(f"unexpected message: {str(message)[:300]}")
                    self.received += 1
                    self.snapshot.set()
                raise RuntimeError(f"closed by the server: {ws.close_code} {ws.close_reason}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.problem = f"{type(exc).__name__}: {exc}"[:300]
            self.snapshot.set()


async def main(args: argparse.Namespace) -> None:
    subs = [Subscriber() for _ in range(args.clients)]
    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()
    for wave in range(0, len(subs), 50):  # connect in waves: no thundering herd of handshakes
        batch = subs[wave : wave + 50]
        tasks += [asyncio.create_task(s.run(args.ws, args.token, args.query)) for s in batch]
        await asyncio.wait_for(asyncio.gather(*(s.snapshot.wait() for s in batch)), 180)
    problems = [s.problem for s in subs if s.problem]
    first = problems[0] if problems else ""
    print(f"READY {time.monotonic() - started:.1f}s {len(problems)} problems {first}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if not line or line == "QUIT":
            break
    counts = [s.received for s in subs]
    problems = [s.problem for s in subs if s.problem]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stats = {
        "clients": len(subs),
        "messages": sum(counts),
        "min_messages": min(counts),
        "max_messages": max(counts),
        "problems": len(problems),
        "first_problems": problems[:5],
    }
    print("STATS " + json.dumps(stats), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--query", required=True)
    asyncio.run(main(parser.parse_args()))
