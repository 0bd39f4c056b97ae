"""`assignment_latency`: from ``triggerRun`` answered to the assigned machine's ``machineAssignments``
subscription having the run, at a steady trigger rate across a fleet.

A real ``deskfleet serve`` (production mode, its own dispatcher) on a seeded SQLite fleet of
``sizes.fleet`` machines, every one connected (its heartbeat is fresh) with two free unattended
bots; the seed puts every other machine in a group of about 20 and one machine in ten in
maintenance. The benchmark makes, through the API, one connection per group and one per
standalone machine that can take runs. A separate client process (bench/assignment_clients.py,
on the load core) holds one ``machineAssignments`` subscription per machine, authenticated with
its machine key, and triggers ``RATE`` runs a second through those connections: each connection
as often as its target has free bots, in a shuffled order, so every run has a bot and the real
dispatcher picks the machine of a group's runs. A run's latency runs from its ``triggerRun``
answer arriving to its id arriving on a subscription; a round is ``sizes.seconds`` of triggers
and its figure is their p99. Nothing confirms the runs, so no bot is freed: the rounds' runs
together stay within the fleet's free bots.

The baseline (bench/assignment_baseline.py) inserts each trigger's row through aiosqlite,
answers, and a separate task picks the row (one ``UPDATE`` to DISPATCHED and its commit) and
sends it to a machine chosen round robin, on the same uvicorn, to as many clients of the same
client code. Each gets an untimed warm-up round, then rounds
alternate (:func:`bench.figures.turns`); the medians of the rounds' p99s count.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench import processes
from bench.fanout import p99
from bench.figures import Figure, Sizes, turns
from bench.seed import seed

TARGET = 3.0
# Triggers a second across the fleet: a fleet's bots kept busy by runs of about a quarter of an
# hour each (10,000 machines with two bots each turn over some 22 runs a second), far below what
# the dispatcher sustains (`dispatch_sqlite`), so this measures latency and not saturation.
RATE = 20.0
USERNAME = "robot"
PASSWORD = "bench-password"

SUBSCRIPTION = """subscription { machineAssignments {
  assignments { runId attempt flowId flowName mode priority runAs username password dispatchedAt }
  commands { id kind runId username createdAt } } }"""
TRIGGER = """mutation($input: TriggerRunInput!) { triggerRun(input: $input) {
  __typename ... on FlowRunPayload { run { id status } } ... on UserError { code message } } }"""
FLOWS = "{ desktopFlows(first: 1) { nodes { id name } } }"
MACHINES = """query($after: String) { machines(first: 100, after: $after) {
  nodes { id status maintenance unattendedBots group { id } }
  pageInfo { hasNextPage endCursor } } }"""
CREATE_CONNECTION = """mutation($input: CreateConnectionInput!) { createConnection(input: $input) {
  __typename ... on ConnectionPayload { connection { id } } ... on UserError { code message } } }"""

# Nothing confirms a dispatched run here. Left at R28's 60 s, runs of the first rounds would go
# back to their queues during a long benchmark and be dispatched again.
NEVER_RETURNED = {"DESKFLEET_DISPATCH_CONFIRM_TIMEOUT_SECONDS": "86400"}


def _graphql(http: httpx.Client, query: str, variables: dict[str, object] | None = None) -> dict:
    body = http.post("/graphql", json={"query": query, "variables": variables or {}}).json()
    if body.get("errors") or not body.get("data"):
        raise RuntimeError(f"benchmark setup failed: {body}")
    return body["data"]


def _connections(http: httpx.Client) -> tuple[dict[str, int], int, int]:
    """One connection per group and per standalone machine that can take runs now (connected,
    not in maintenance, with bots): {connection id: its target's free bots}, and how many of
    each kind. Every bot is free: the seed writes no runs."""
    bots: dict[tuple[str, str], int] = {}  # ("machineId" or "groupId", its id) -> free bots
    after = None
    while True:
        page = _graphql(http, MACHINES, {"after": after})["machines"]
        for machine in page["nodes"]:
            if machine["status"] != "CONNECTED" or machine["maintenance"]:
                continue
            group = machine["group"]
            target = ("groupId", group["id"]) if group else ("machineId", machine["id"])
            bots[target] = bots.get(target, 0) + machine["unattendedBots"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    connections: dict[str, int] = {}
    groups = 0
    for n, ((kind, target_id), free) in enumerate(sorted(bots.items())):
        if free == 0:
            continue
        variables: dict[str, object] = {
            "input": {
                "name": f"bench {n}",
                kind: target_id,
                "windowsUsername": USERNAME,
                "password": PASSWORD,
            }
        }
        made = _graphql(http, CREATE_CONNECTION, variables)["createConnection"]
        if made["__typename"] != "ConnectionPayload":
            raise RuntimeError(f"benchmark setup failed: {made}")
        connections[made["connection"]["id"]] = free
        groups += kind == "groupId"
    return connections, groups, len(connections) - groups


def trigger_bodies(url: str, token: str, runs: int) -> tuple[list[str], int, int]:
    """``runs`` triggerRun requests spread over the fleet's free bots, and the connections made
    (groups, machines)."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        flow = _graphql(http, FLOWS)["desktopFlows"]["nodes"][0]["id"]
        connections, groups, machines = _connections(http)
    slots = [cid for cid, free in connections.items() for _ in range(free)]
    if runs > len(slots):
        raise RuntimeError(
            f"assignment_latency needs {runs} runs but the fleet has {len(slots)} free bots: "
            "fewer rounds, a lower rate or a larger fleet"
        )
    random.Random(0).shuffle(slots)
    bodies = [
        json.dumps(
            {
                "query": TRIGGER,
                "variables": {
                    "input": {
                        "flowId": flow,
                        "connectionId": cid,
                        "mode": "UNATTENDED",
                        "priority": "NORMAL",
                    }
                },
            }
        )
        for cid in slots[:runs]
    ]
    return bodies, groups, machines


class Clients:
    """The client process (bench/assignment_clients.py) for one server, driven line by line."""

    def __init__(
        self,
        name: str,
        server: processes.Server,
        keys: Path,
        bodies: Path,
        token: str | None,
        core: int | None,
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.assignment_clients",
                "--ws",
                server.url.replace("http://", "ws://") + "/graphql",
                "--keys",
                str(keys),
                "--query",
                SUBSCRIPTION,
                "--trigger-url",
                server.url + "/graphql",
                "--bodies",
                str(bodies),
                "--rate",
                str(RATE),
                *(["--token", token] if token else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=processes.child_env(),
            cwd=processes.ROOT,
            preexec_fn=processes.on_core(core),
        )

    def _expect(self, prefix: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith(prefix):
            self.close()
            raise RuntimeError(
                f"assignment_latency ({self.name}): expected {prefix}, got {line.strip()!r}"
            )
        return line[len(prefix) :].strip()

    def _say(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def ready(self) -> None:
        self._expect("READY")

    def round(self, runs: int) -> tuple[list[float], list[float]]:
        """For ``runs`` runs, their latencies and their triggers' round trips, in seconds."""
        self._say(f"ROUND {runs}")
        latencies, _, round_trips = self._expect("LATENCIES").partition(" ROUND_TRIPS ")
        return [float(s) for s in latencies.split(",")], [float(s) for s in round_trips.split(",")]

    def finish(self) -> None:
        """Everything closed, and nothing went wrong after the last round."""
        self._say("QUIT")
        self._expect("DONE")
        self.process.wait(30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


Round = tuple[list[float], list[float]]  # a round's latencies and round trips, in seconds


def _waits(r: Round) -> list[float]:
    """The runs' latencies from their answers. DeskFleet dispatches a run with nothing queued
    ahead within its trigger's request, so its machine often has it before the caller has the
    answer: that run waited nothing (0), not less."""
    return [max(0.0, latency) for latency in r[0]]


def _round_trips(r: Round) -> list[float]:
    return r[1]


def _from_sent(r: Round) -> list[float]:
    """The runs' latencies from their triggers being sent: round trip plus latency."""
    return [trip + latency for latency, trip in zip(*r, strict=True)]


def _median_ms(
    rounds: list[Round],
    which: Callable[[Round], list[float]],
    statistic: Callable[[list[float]], float],
) -> float:
    """The median over the rounds of ``statistic`` of ``which`` of each round, in ms."""
    return statistics.median(statistic(which(r)) for r in rounds) * 1000


def assignment_latency(tmp: Path, sizes: Sizes) -> list[Figure]:
    database = f"sqlite:///{tmp / 'bench-assignments.db'}"
    # Odd, so that the machines the seed groups (every other one) spread over every group: about
    # 20 a group, within R11's 50.
    groups = max(1, sizes.fleet // 40) | 1
    fleet = asyncio.run(seed(database, machines=sizes.fleet, groups=groups, runs=0))
    keys = tmp / "assignment-keys.txt"
    keys.write_text("\n".join(fleet.machine_keys) + "\n")
    per_round = max(1, round(RATE * sizes.seconds))
    runs = per_round * (sizes.rounds + 1)  # the warm-up too
    server_core, load_core = processes.cores()
    # Per round: the runs' latencies and their triggers' round trips, in seconds.
    measured: dict[str, list[Round]] = {"subject": [], "baseline": []}
    with (
        processes.deskfleet(
            tmp, database, core=server_core, env={**processes.UNTHROTTLED, **NEVER_RETURNED}
        ) as subject,
        processes.Server(
            [
                "-m",
                "bench.assignment_baseline",
                "--database",
                str(tmp / "bench-assignment-baseline.db"),
            ],
            tmp,
            core=server_core,
        ) as base,
        ExitStack() as stack,
    ):
        subject.wait_ready()
        base.wait_ready()
        bodies, group_connections, machine_connections = trigger_bodies(
            subject.url, fleet.admin_token, runs
        )
        bodies_file = tmp / "assignment-triggers.txt"
        bodies_file.write_text("\n".join(bodies) + "\n")
        clients: dict[str, Clients] = {}
        for who, server, token in (
            ("subject", subject, fleet.admin_token),
            ("baseline", base, None),
        ):
            clients[who] = Clients(who, server, keys, bodies_file, token, load_core)
            stack.callback(clients[who].close)
        for client in clients.values():
            client.ready()
        for client in clients.values():
            client.round(per_round)  # warm-up, untimed
        for r in range(sizes.rounds):
            for who in turns(r):
                measured[who].append(clients[who].round(per_round))
        for client in clients.values():
            client.finish()
    value, baseline = (_median_ms(measured[who], _waits, p99) for who in ("subject", "baseline"))
    if baseline <= 0:  # its pushes beat its answers: a ratio over it would mean nothing
        raise RuntimeError(f"assignment_latency: the baseline's p99 is {baseline:.3f} ms")
    return [
        Figure(
            "assignment_latency",
            value,
            baseline,
            f"<={TARGET:g}",
            lambda r: r <= TARGET,
            unit=" ms",
            detail={
                "machines": sizes.fleet,
                "rate": RATE,
                "runs": per_round,
                "rounds": sizes.rounds,
                "group_connections": group_connections,
                "machine_connections": machine_connections,
                "p50_ms": _median_ms(measured["subject"], _waits, statistics.median),
                "baseline_p50_ms": _median_ms(measured["baseline"], _waits, statistics.median),
                # triggerRun's own round trip, before the span measured
                "trigger_p99_ms": _median_ms(measured["subject"], _round_trips, p99),
                "baseline_trigger_p99_ms": _median_ms(measured["baseline"], _round_trips, p99),
                # and the whole way: trigger sent -> the machine has the run
                "sent_to_machine_p99_ms": _median_ms(measured["subject"], _from_sent, p99),
                "baseline_sent_to_machine_p99_ms": _median_ms(
                    measured["baseline"], _from_sent, p99
                ),
            },
        )
    ]
