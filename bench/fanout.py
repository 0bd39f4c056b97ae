"""`fanout_p99` and `sub_memory`: many websocket subscribers of ``machineStatus``.

DeskFleet serves a small seeded fleet; a separate client process (bench/ws_clients.py) holds
``sizes.subscribers`` graphql-transport-ws connections, each authenticated in ``connection_init``
and subscribed to ``machineStatus`` for the environment. Each change is one machine's
maintenance toggled through the API; its latency runs from sending the mutation to the last
subscriber having the update; the figure is the p99 over ``sizes.changes`` changes. The baseline
(bench/ws_baseline.py) broadcasts a payload of the same shape to as many clients of the same
client process, on the same uvicorn.

`sub_memory`: the server's resident memory once every subscriber is idle after its snapshot,
minus before any connected, divided by the subscribers.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import httpx

from bench import processes
from bench.figures import Figure, Sizes
from bench.seed import seed

FANOUT_TARGET = 3.0
MEMORY_TARGET_KIB = 32
FLEET = 20  # machines in the environment every subscriber watches

SUBSCRIPTION = """subscription { machineStatus(filter: {environmentId: ENV}) {
  snapshot removedIds
  machines { machineId name status maintenance drained runningCount queuedCount version } } }"""
TOGGLE = """mutation($id: ID!, $on: Boolean!) { setMachineMaintenance(id: $id, enabled: $on) {
  __typename ... on UserError { code message } } }"""


class Clients:
    """The client process: many subscribers, driven line by line."""

    def __init__(
        self,
        ws: str,
        clients: int,
        query: str,
        token: str | None,
        change_url: str,
        body: str,
        tokens: tuple[str, ...] = (),
    ) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ws_clients",
                "--ws",
                ws,
                "--clients",
                str(clients),
                "--query",
                query,
                "--change-url",
                change_url,
                "--change-body",
                body,
                *(["--token", token] if token else []),
                *(["--tokens", ",".join(tokens)] if tokens else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=processes.child_env(),
            cwd=processes.ROOT,
        )

    def _expect(self, prefix: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(prefix):
            self.process.kill()
            raise RuntimeError(f"websocket clients: expected {prefix}, got {line!r}")
        return line[len(prefix) :].strip()

    def ready(self) -> None:
        self._expect("READY")

    def change(self, number: int) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(f"CHANGE {number}\n")
        self.process.stdin.flush()
        return float(self._expect("LATENCY"))

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.write("QUIT\n")
                self.process.stdin.flush()
                self.process.wait(30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def _measure(server: processes.Server, clients: Clients, sizes: Sizes) -> tuple[float, int]:
    """(p99 latency, RSS growth in bytes once all subscribers are idle)."""
    before = server.rss_bytes()
    clients.ready()
    settled = server.rss_bytes()
    latencies = [clients.change(n + 1) for n in range(sizes.changes)]
    return p99(latencies), settled - before


def fanout(tmp: Path, sizes: Sizes) -> list[Figure]:
    url = f"sqlite:///{tmp / 'bench-fanout.db'}"
    # R37's per-user cap on open websockets: enough users (environment admins: every one sees
    # the whole environment, as a wall of dashboards would) to hold all the subscribers.
    per_user = int(os.environ.get("DESKFLEET_WS_MAX_CONNECTIONS_PER_USER", "10"))
    viewers = math.ceil(sizes.subscribers / per_user)
    fleet = asyncio.run(seed(url, machines=FLEET, groups=2, runs=FLEET * 2, viewers=viewers))
    with processes.deskfleet(tmp, url, env=processes.UNTHROTTLED) as subject:
        subject.wait_ready()
        graphql = subject.url + "/graphql"
        found = httpx.post(
            graphql,
            json={"query": "{ machines(first: 5) { nodes { id maintenance } } }"},
            headers={"Authorization": f"Bearer {fleet.admin_token}"},
            timeout=30,
        ).json()
        target = next(m["id"] for m in found["data"]["machines"]["nodes"] if not m["maintenance"])
        query = SUBSCRIPTION.replace("ENV", json.dumps(fleet.environment_id))
        body = json.dumps({"query": TOGGLE, "variables": {"id": target, "on": "{on}"}})
        clients = Clients(
            subject.url.replace("http://", "ws://") + "/graphql",
            sizes.subscribers,
            query,
            fleet.admin_token,
            graphql,
            body.replace('"{on}"', "{on}"),
            fleet.viewer_tokens,
        )
        try:
            value, grown = _measure(subject, clients, sizes)
        finally:
            clients.close()
    with processes.Server(["-m", "bench.ws_baseline"], tmp) as base:
        base.wait_ready()
        clients = Clients(
            base.url.replace("http://", "ws://") + "/graphql",
            sizes.subscribers,
            "subscription { machineStatus { snapshot } }",
            None,
            base.url + "/graphql",
            '{"on": {on}}',
        )
        try:
            baseline, _ = _measure(base, clients, sizes)
        finally:
            clients.close()
    per_subscription = grown / sizes.subscribers / 1024
    return [
        Figure(
            "fanout_p99",
            value * 1000,
            baseline * 1000,
            f"<={FANOUT_TARGET:g}",
            lambda r: r <= FANOUT_TARGET,
            unit=" ms",
        ),
        Figure(
            "sub_memory",
            per_subscription,
            None,
            f"<={MEMORY_TARGET_KIB}KiB",
            lambda v: v <= MEMORY_TARGET_KIB,
            unit=" KiB",
        ),
    ]
