"""`heartbeats`: how many ``machineHeartbeat`` a second one instance sustains for a large fleet.

A real ``deskfleet serve`` (production mode, one uvicorn worker) on a seeded SQLite fleet of
``sizes.fleet`` machines. ``wrk`` sends heartbeats from 16 connections, each request the next
machine's key (round robin over the whole fleet, so the credential cache sees every key),
reporting one Windows session; one machine in ten changes its session's state every other
round of the fleet, so one heartbeat in ten publishes a ``MachineChanged``. The figure is the
throughput, which counts only when its p99 stays under 250 ms.

The baseline (bench/heartbeat_baseline.py) is a bare Strawberry mutation of the same input
shape on the same uvicorn, updating one row of a table of as many machines through aiosqlite,
with the same keys and bodies from the same ``wrk``. Rounds alternate; the median of each
round's ratio counts (:func:`bench.figures.paired`).
"""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path

import httpx

from bench import processes
from bench.figures import Figure, Sizes, paired
from bench.load import Throughput, rotating_throughput
from bench.seed import seed

CONNECTIONS = 16
P99_LIMIT_MS = 250.0
TARGET = 0.5
HEARTBEAT = """mutation($input: HeartbeatInput!) { machineHeartbeat(input: $input) {
  __typename ... on HeartbeatPayload { keyActionRequired } } }"""


def bodies(keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """Two rounds of the fleet: in the second, every tenth machine's session is locked."""
    requests = []
    for second_round in (False, True):
        for m, key in enumerate(keys):
            state = "LOCKED" if second_round and m % 10 == 0 else "ACTIVE"
            variables = {
                "input": {
                    "runtimeVersion": "2.8.73.21119",
                    "osEdition": "Windows 11 Pro",
                    "sessions": [{"username": "robot", "state": state}],
                }
            }
            requests.append((key, json.dumps({"query": HEARTBEAT, "variables": variables})))
    return requests


def _check(url: str, key: str, body: str) -> None:
    answer = httpx.post(
        url,
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    ).json()
    if answer.get("errors") or answer["data"]["machineHeartbeat"]["__typename"] != (
        "HeartbeatPayload"
    ):
        raise RuntimeError(f"benchmark heartbeat failed: {answer}")


def heartbeats(tmp: Path, sizes: Sizes) -> list[Figure]:
    database = f"sqlite:///{tmp / 'bench-heartbeats.db'}"
    fleet = asyncio.run(seed(database, machines=sizes.fleet, groups=20, runs=0))
    requests = bodies(fleet.machine_keys)
    keys_file = tmp / "heartbeat-keys.txt"
    keys_file.write_text("\n".join(fleet.machine_keys) + "\n")
    server_core, load_core = processes.cores()
    measured: dict[str, list[Throughput]] = {"subject": [], "baseline": []}
    with (
        processes.deskfleet(tmp, database, core=server_core, env=processes.UNTHROTTLED) as subject,
        processes.Server(
            [
                "-m",
                "bench.heartbeat_baseline",
                "--database",
                str(tmp / "bench-heartbeat-baseline.db"),
                "--keys",
                str(keys_file),
            ],
            tmp,
            core=server_core,
        ) as base,
    ):
        subject.wait_ready()
        base.wait_ready()
        urls = {"subject": subject.url + "/graphql", "baseline": base.url + "/graphql"}
        for url in urls.values():
            _check(url, *requests[0])

        def measure(who: str) -> float:
            figure = rotating_throughput(
                urls[who],
                requests,
                seconds=sizes.seconds,
                connections=CONNECTIONS,
                core=load_core,
            )
            measured[who].append(figure)
            return figure.requests_per_second

        # Its untimed first round sends every key once through the credential cache.
        rates = paired(sizes.rounds, lambda: measure("subject"), lambda: measure("baseline"))
    rounds = {who: throughputs[1:] for who, throughputs in measured.items()}  # timed ones
    p99 = statistics.median(t.p99_ms for t in rounds["subject"])
    bad = sum(t.bad_responses for t in rounds["subject"])
    return [
        Figure(
            "heartbeats",
            rates.subject,
            rates.baseline,
            f">={TARGET:g},p99<{P99_LIMIT_MS:g}ms",
            lambda ratio: ratio >= TARGET and p99 < P99_LIMIT_MS and bad == 0,
            unit=" req/s",
            detail={
                "machines": sizes.fleet,
                "connections": CONNECTIONS,
                "p99_ms": p99,
                "baseline_p99_ms": statistics.median(t.p99_ms for t in rounds["baseline"]),
                "bad_responses": bad,
                "rounds": sizes.rounds,
            },
            paired_ratio=rates.ratio,
        )
    ]
