"""The load generator of `assignment_latency`: a separate process holding one ``machineAssignments``
subscription per machine and triggering runs at a steady rate.

``python -m bench.assignment_clients --ws URL --keys FILE --query Q --trigger-url URL
--bodies FILE --rate R [--token T]`` connects one graphql-transport-ws websocket per machine key
(``connection_init`` with ``{"token": key}``, ack, ``subscribe``) and waits until every one has its
first message (the snapshot, which must hold no assignment), then prints ``READY``. For each line
``ROUND <n>`` it reads on stdin it POSTs the next ``n`` bodies of ``--bodies`` (one JSON request a
line) ``R`` a second, each on its own schedule whatever the answers before it did, and prints
``LATENCIES <s>,<s>,... ROUND_TRIPS <s>,<s>,...``: for each run, the time its id first appeared
in a subscriber's assignments minus the time the answer naming it arrived (negative if it came
first),
then the trigger's own round trip, all taken here with :func:`time.perf_counter`. ``QUIT`` closes
everything and prints ``DONE``. The same code drives DeskFleet and the bare baseline.

Each message is the machine's whole list of assignments, as DeskFleet sends it; a run "arrives"
when its id first appears in one. Every triggered run must arrive exactly once, on exactly one
subscription, and stay in that machine's list (nothing confirms or cancels it): a run arriving
twice or on two machines, a run nobody triggered, a run withdrawn, a run that never arrives, a
failed trigger or a subscription that ends all stop the process with ``FAILED <why>``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import websockets
from websockets.typing import Subprotocol

from bench.ws_clients import updates

PROTOCOL = "graphql-transport-ws"
ARRIVAL_TIMEOUT = 60.0  # seconds after the last answer of a round for its runs to arrive
CONNECT_TIMEOUT = 60.0  # seconds for one websocket's handshake, ack and snapshot

T = TypeVar("T")


class Failed(Exception):
    """The benchmark cannot count: said once, on stdout, and the process exits."""


class TimedOut(Failed):
    pass


class Hub:
    """What every subscriber and the triggers share: arrivals, answers, the first failure."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, int]] = {}  # run id -> (arrived at, machine)
        self.answered: dict[str, float] = {}  # run id -> its triggerRun answer arrived at
        self.round_trips: dict[str, float] = {}  # run id -> its triggerRun sent to answered
        self.arrived = asyncio.Event()  # set at each arrival
        self.failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(self, why: str) -> None:
        if not self.failure.done():
            self.failure.set_exception(Failed(why))

    def check(self) -> None:
        """Raises the first failure, if any came."""
        if self.failure.done():
            self.failure.result()

    async def until(self, waiting: Awaitable[T], within: float, what: str) -> T:
        """``waiting``'s result, unless a failure comes first or ``within`` seconds pass."""
        task = asyncio.ensure_future(waiting)
        either: list[asyncio.Future[Any]] = [task, self.failure]
        done, _ = await asyncio.wait(either, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        task.add_done_callback(_quiet)
        self.check()
        raise TimedOut(f"timed out after {within:g} s waiting for {what}")


def _quiet(abandoned: asyncio.Future[Any]) -> None:
    """What an abandoned wait ended with is not news: the failure that ended it is said."""
    if not abandoned.cancelled():
        abandoned.exception()


class Subscriber:
    """One machine's ``machineAssignments`` subscription."""

    def __init__(self, index: int, key: str, hub: Hub) -> None:
        self.index = index
        self.key = key
        self.hub = hub
        self.held: set[str] = set()  # the run ids of its last message
        self.snapshot = asyncio.Event()

    async def run(self, url: str, query: str) -> None:
        try:
            await self._run(url, query)
            self.hub.fail(f"machine {self.index}: the server ended its subscription")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.hub.fail(f"machine {self.index}: {type(exc).__name__}: {exc}")

    async def _run(self, url: str, query: str) -> None:
        async with websockets.connect(
            url,
            subprotocols=[Subprotocol(PROTOCOL)],
            max_size=None,
            open_timeout=60,
            ping_interval=None,
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"token": self.key}}))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise Failed(f"not acknowledged: {ack}")
            await ws.send(
                json.dumps({"id": "work", "type": "subscribe", "payload": {"query": query}})
            )
            async for now, message in updates(ws):
                work = message["payload"]["data"]["machineAssignments"]
                self._received([a["runId"] for a in work["assignments"]], now)

    def _received(self, listed: list[str], now: float) -> None:
        ids = set(listed)
        if len(ids) != len(listed):
            self.hub.fail(f"machine {self.index}: a run listed twice in one message: {listed}")
        if not self.snapshot.is_set():
            if ids:
                self.hub.fail(f"machine {self.index}: assignments before any trigger: {listed}")
            self.snapshot.set()
        withdrawn = self.held - ids
        if withdrawn:
            self.hub.fail(f"machine {self.index}: run(s) withdrawn from its list: {withdrawn}")
        for run_id in ids - self.held:
            first = self.hub.arrivals.get(run_id)
            if first is not None:
                self.hub.fail(
                    f"run {run_id} received twice: by machine {first[1]} and machine {self.index}"
                )
            self.hub.arrivals[run_id] = (now, self.index)
        self.held = ids
        self.hub.arrived.set()


async def connect(
    subs: list[Subscriber], url: str, query: str, hub: Hub
) -> list[asyncio.Task[None]]:
    """Every subscription open and holding its snapshot; in waves, no thundering herd."""
    tasks: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(50)

    async def start(sub: Subscriber) -> None:
        async with gate:
            tasks.append(asyncio.create_task(sub.run(url, query)))
            await hub.until(sub.snapshot.wait(), CONNECT_TIMEOUT, f"machine {sub.index}'s snapshot")

    await asyncio.gather(*(start(s) for s in subs))
    return tasks


class Poster:
    """HTTP/1.1 POSTs to one URL over keep-alive connections, one request at a time on each (as
    many connections as requests in flight). The answer's time is taken as its last byte is
    read: through httpx it came a millisecond or more later on a busy core, often after the
    baseline's push of the same run had arrived."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n"
            + (f"Authorization: Bearer {token}\r\n" if token else "")
        ).encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened: list[asyncio.StreamWriter] = []

    async def post(self, body: bytes) -> tuple[int, bytes, float]:
        """(status, body, the time the answer's last byte was read)."""
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened.append(writer)
        writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status_line = await reader.readline()
        if not status_line:
            raise Failed("the server closed a trigger's connection without an answer")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise Failed(f"an answer without Content-Length: {status} {headers}")
        answer = await reader.readexactly(int(headers["content-length"]))
        answered_at = time.perf_counter()
        if headers.get("connection", "").lower() != "close":
            self.idle.append((reader, writer))
        return status, answer, answered_at

    async def forget_idle(self) -> None:
        """Close the idle connections: the server closes one idle past its keep-alive timeout
        (uvicorn: 5 s), as between two rounds, and a request sent on it gets no answer."""
        idle, self.idle = self.idle, []
        for _, writer in idle:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for _, w in idle), return_exceptions=True)

    async def close(self) -> None:
        for writer in self.opened:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in self.opened), return_exceptions=True)


async def trigger(http: Poster, body: str, hub: Hub) -> str:
    """One run triggered; its id, once its answer is in."""
    sent_at = time.perf_counter()
    status, answer, answered_at = await http.post(body.encode())
    try:
        payload = json.loads(answer)["data"]["triggerRun"]
        run_id = str(payload["run"]["id"]) if payload["__typename"] == "FlowRunPayload" else ""
    except (ValueError, KeyError, TypeError):
        run_id = ""
    if status != 200 or not run_id:
        raise Failed(f"triggerRun failed: {status} {answer[:500]!r}")
    if run_id in hub.answered:
        raise Failed(f"two triggers answered with the same run {run_id}")
    hub.answered[run_id] = answered_at
    hub.round_trips[run_id] = answered_at - sent_at
    return run_id


async def one_round(
    http: Poster, rate: float, bodies: Iterator[str], runs: int, hub: Hub
) -> list[str]:
    """``runs`` triggers ``rate`` a second; their run ids once every one has arrived."""
    hub.check()
    await http.forget_idle()
    batch = list(itertools.islice(bodies, runs))
    if len(batch) < runs:
        raise Failed(f"{runs - len(batch)} triggers short in --bodies: more runs than free bots")
    started = time.perf_counter()
    triggers: list[asyncio.Task[str]] = []
    try:
        for n, body in enumerate(batch):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))  # the pace
            triggers.append(asyncio.create_task(trigger(http, body, hub)))
        ids = await hub.until(asyncio.gather(*triggers), ARRIVAL_TIMEOUT, "the triggers' answers")
    finally:
        for task in triggers:
            task.cancel()  # those still waiting, when something failed

    async def all_arrived() -> None:
        while True:
            hub.arrived.clear()
            if all(run_id in hub.arrivals for run_id in ids):
                return
            await hub.arrived.wait()

    try:
        await hub.until(all_arrived(), ARRIVAL_TIMEOUT, "the runs on the subscriptions")
    except TimedOut as exc:
        missing = [run_id for run_id in ids if run_id not in hub.arrivals]
        raise Failed(
            f"{exc}; {len(missing)} of {runs} runs never arrived, e.g. {missing[:3]}"
        ) from None
    unknown = set(hub.arrivals) - set(hub.answered)
    if unknown:
        raise Failed(f"run(s) arrived that no trigger was answered with: {sorted(unknown)[:3]}")
    return ids


async def main(args: argparse.Namespace, keys: list[str], bodies: Iterator[str]) -> None:
    hub = Hub()
    subs = [Subscriber(i, key, hub) for i, key in enumerate(keys)]
    tasks = await connect(subs, args.ws, args.query, hub)
    http = Poster(args.trigger_url, args.token)
    loop = asyncio.get_running_loop()
    print("READY", flush=True)
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if not line or line == "QUIT":
                hub.check()  # nothing went wrong after the last round either
                print("DONE", flush=True)
                break
            ids = await one_round(http, args.rate, bodies, int(line.split()[1]), hub)
            latencies = [hub.arrivals[i][0] - hub.answered[i] for i in ids]
            round_trips = [hub.round_trips[i] for i in ids]
            print(
                f"LATENCIES {_seconds(latencies)} ROUND_TRIPS {_seconds(round_trips)}", flush=True
            )
    finally:
        await http.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _seconds(values: list[float]) -> str:
    return ",".join(f"{v:.6f}" for v in values)


def lines(path: str) -> list[str]:
    with open(path) as text:
        return [line.strip() for line in text if line.strip()]


def run(args: argparse.Namespace) -> int:
    try:
        asyncio.run(main(args, lines(args.keys), iter(lines(args.bodies))))
    except Failed as exc:
        print(f"FAILED {exc}", flush=True)
        return 1
    except Exception as exc:  # said on stdout too, where the benchmark reads
        traceback.print_exc()
        print(f"FAILED {type(exc).__name__}: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws", required=True)
    parser.add_argument(
        "--keys", required=True, help="machine keys, one a line: one subscriber each"
    )
    parser.add_argument("--query", required=True)
    parser.add_argument("--trigger-url", required=True)
    parser.add_argument("--bodies", required=True, help="trigger requests, one JSON body a line")
    parser.add_argument("--rate", type=float, required=True, help="triggers a second")
    parser.add_argument("--token", help="the bearer of the triggers")
    sys.exit(run(parser.parse_args()))
