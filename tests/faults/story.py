"""The story the fault tests tell against a real ``deskfleet serve``: a group of machines worked by
``deskfleet simulate`` (its own process, through the API), runs triggered from a thread that
retries through the fault, then the fleet drains and every run is accounted for.

Shared by tests/faults/test_postgres_restart.py and tests/faults/test_sqlite_locked_dispatcher.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deskfleet.simulator import MASKED_ERROR, check_log, read_log
from tests.e2e.server import DESKFLEET, ROOT

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}

# Short timings so a story fits in a minute or two on 2 loaded cores.
SERVER_ENV = {
    "DESKFLEET_DISPATCH_CONFIRM_TIMEOUT_SECONDS": "3",  # R28: unconfirmed -> back to the queue
    "DESKFLEET_DISPATCH_SWEEP_INTERVAL_SECONDS": "0.5",
    # Long enough that no run ends MACHINE_LOST while heartbeats cannot be recorded.
    "DESKFLEET_HEARTBEAT_TIMEOUT_SECONDS": "120",
}

TRIGGER = """
mutation($input: TriggerRunInput!) {
  triggerRun(input: $input) {
    __typename ... on FlowRunPayload { run { id } } ... on UserError { code message }
  }
}"""
CANCEL = """
mutation($id: ID!) { cancelRun(id: $id) { __typename ... on UserError { code message } } }"""


class Down(Exception):
    """The server did not do it: unreachable, a 5xx, or its own failure (a masked error)."""


def send(url: str, token: str, query: str, variables: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """The HTTP response; never a 500 nor a traceback, whatever the fault (a 503 may be)."""
    try:
        response = httpx.post(
            f"{url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )
    except httpx.HTTPError as exc:
        raise Down(f"{type(exc).__name__}: {exc}") from None
    assert "Traceback" not in response.text, response.text
    assert response.status_code != 500, response.text
    return response


def answer(url: str, token: str, query: str, variables: dict[str, Any] | None = None) -> dict:
    """The whole GraphQL answer; raises Down when the server could not be reached."""
    response = send(url, token, query, variables)
    if response.status_code >= 500:
        raise Down(f"HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


def post(url: str, token: str, query: str, variables: dict[str, Any] | None = None) -> dict:
    body = answer(url, token, query, variables)
    errors = body.get("errors") or []
    if errors and all(e.get("message") == MASKED_ERROR for e in errors):
        raise Down(MASKED_ERROR)
    assert not errors, body
    return body["data"]


def ok(data: dict, field_name: str) -> dict:
    result = data[field_name]
    assert "code" not in result, result
    return result


@dataclass
class RunsDatabase:
    """The server's database, read directly (never through the server under test)."""

    url: str
    sqlite_path: Path | None = None

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path, timeout=30) as db:
                return [tuple(r) for r in db.execute(sql)]
        import asyncpg

        async def fetch() -> list[tuple[Any, ...]]:
            connection = await asyncpg.connect(self.url)
            try:
                return [tuple(r) for r in await connection.fetch(sql)]
            finally:
                await connection.close()

        return asyncio.run(fetch())

    def unfinished(self) -> int:
        return self.rows(
            "SELECT count(*) FROM flow_runs WHERE status IN ('QUEUED', 'DISPATCHED', 'RUNNING')"
        )[0][0]


@dataclass(frozen=True)
class GivenFleet:
    environment_id: str
    group_id: str
    flow_id: str
    connection_id: str


def environment_with_capacity(url: str, token: str, capacity: int) -> str:
    """The first environment, with an unattended-bot pool of ``capacity`` (R24): its id."""
    environment_id = post(url, token, "{ environments { id kind } }")["environments"][0]["id"]
    ok(
        post(
            url,
            token,
            """mutation($input: UpdateEnvironmentInput!) { updateEnvironment(input: $input) {
                __typename ... on UserError { code message } } }""",
            {"input": {"id": environment_id, "unattendedCapacity": capacity}},
        ),
        "updateEnvironment",
    )
    return environment_id


def new_flow(url: str, token: str, environment_id: str, name: str) -> str:
    return ok(
        post(
            url,
            token,
            """mutation($input: CreateDesktopFlowInput!) { createDesktopFlow(input: $input) {
                ... on DesktopFlowPayload { flow { id } } ... on UserError { code } } }""",
            {"input": {"environmentId": environment_id, "name": name}},
        ),
        "createDesktopFlow",
    )["flow"]["id"]


def new_connection(url: str, token: str, name: str, **target: str) -> str:
    """A connection as CONTOSO\\robot to ``machineId=`` or ``groupId=``: its id."""
    return ok(
        post(
            url,
            token,
            """mutation($input: CreateConnectionInput!) { createConnection(input: $input) {
                ... on ConnectionPayload { connection { id } } ... on UserError { code } } }""",
            {
                "input": {
                    "name": name,
                    "windowsUsername": "CONTOSO\\robot",
                    "password": "s3cret-Passw0rd",
                    **target,
                }
            },
        ),
        "createConnection",
    )["connection"]["id"]


def given_fleet(url: str, token: str, capacity: int) -> GivenFleet:
    environment_id = environment_with_capacity(url, token, capacity)
    group_id = ok(
        post(
            url,
            token,
            """mutation($input: CreateMachineGroupInput!) { createMachineGroup(input: $input) {
                ... on MachineGroupPayload { group { id } } ... on UserError { code } } }""",
            {"input": {"environmentId": environment_id, "name": "Fault line"}},
        ),
        "createMachineGroup",
    )["group"]["id"]
    flow_id = new_flow(url, token, environment_id, "Fault-tolerant flow")
    connection_id = new_connection(url, token, "group connection", groupId=group_id)
    return GivenFleet(environment_id, group_id, flow_id, connection_id)


def start_simulator(
    workdir: Path,
    url: str,
    token: str,
    fleet: GivenFleet,
    log_path: Path,
    machines: int,
    bots: int,
    seconds: tuple[float, float] = (0.05, 0.4),
    failure_rate: float = 0.2,
    extra: tuple[str, ...] = (),  # more options of `deskfleet simulate`; the last one given wins
) -> subprocess.Popen[bytes]:
    with (workdir / "simulator.out").open("w") as output:
        simulator = subprocess.Popen(
            [
                *DESKFLEET,
                "simulate",
                *("--url", f"{url}/graphql", "--token", token),
                *("--environment-id", fleet.environment_id, "--group-id", fleet.group_id),
                *("--machines", str(machines), "--bots", str(bots), "--prefix", "fault"),
                *("--min-seconds", str(seconds[0]), "--max-seconds", str(seconds[1])),
                *("--failure-rate", str(failure_rate)),
                *("--heartbeat-seconds", "1", "--poll-seconds", "0.25"),
                *("--log", str(log_path), "--seed", "5"),
                *extra,
            ],
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    wait_for(
        lambda: log_path.exists() and log_path.read_text().count('"registered"') == machines,
        90,
        "the simulated machines to register",
    )
    return simulator


def stop_simulator(simulator: subprocess.Popen[bytes] | None) -> None:
    if simulator is None or simulator.poll() is not None:
        return
    simulator.send_signal(signal.SIGINT)
    try:
        simulator.wait(15)
    except subprocess.TimeoutExpired:
        simulator.kill()
        simulator.wait()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass
class Triggering:
    """Triggers ``count`` runs from a thread, retrying through the fault; cancels a few."""

    url: str
    token: str
    fleet: GivenFleet
    count: int
    pause: float = 0.03
    triggered: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    ambiguous: int = 0  # triggers that failed: the run may exist without our knowing (not here)
    refused_during_fault: int = 0
    failure: BaseException | None = None
    _thread: threading.Thread | None = None

    def _retrying(self, query: str, variables: dict[str, Any]) -> dict:
        deadline = time.monotonic() + 120
        while True:
            try:
                return post(self.url, self.token, query, variables)
            except Down:
                self.refused_during_fault += 1
                if query is TRIGGER:
                    self.ambiguous += 1
                assert time.monotonic() < deadline, "the server did not recover"
                time.sleep(0.3)

    def _run(self) -> None:
        try:
            for i in range(self.count):
                data = self._retrying(
                    TRIGGER,
                    {
                        "input": {
                            "flowId": self.fleet.flow_id,
                            "connectionId": self.fleet.connection_id,
                            "mode": "UNATTENDED",
                            "priority": "HIGH" if i % 3 == 0 else "NORMAL",
                        }
                    },
                )
                self.triggered.append(ok(data, "triggerRun")["run"]["id"])
                if i % 40 == 20:  # now and then cancel a recent run, whatever its state
                    victim = self.triggered[-3]
                    if "code" not in self._retrying(CANCEL, {"id": victim})["cancelRun"]:
                        self.cancelled.append(victim)
                time.sleep(self.pause)
        except BaseException as exc:  # reported by the test thread
            self.failure = exc

    def start(self) -> Triggering:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def wait_for_triggered(self, n: int, timeout: float) -> None:
        wait_for(lambda: len(self.triggered) >= n or self.failure, timeout, f"{n} runs triggered")
        assert self.failure is None, self.failure

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "triggering did not finish"
        assert self.failure is None, self.failure


def assert_every_run_accounted_for(
    database: RunsDatabase,
    log_path: Path,
    triggered: list[str],
    cancelled: list[str],
    ambiguous: int = 0,
) -> Counter[str]:
    """Every triggered run in exactly one terminal state agreeing with the simulator's reports;
    none held twice, started twice or finished twice; R24 never exceeded per machine."""
    runs = {
        run_id: (status, error_code, machine_id)
        for run_id, status, error_code, machine_id in database.rows(
            "SELECT id, status, error_code, machine_id FROM flow_runs"
        )
    }
    bots = dict(database.rows("SELECT id, unattended_bots FROM machines"))
    events = read_log(log_path)
    check = check_log(events)
    reported = {e["run_id"]: e["status"] for e in events if e["event"] == "reported"}
    statuses = Counter(status for status, *_ in runs.values())

    assert len(set(triggered)) == len(triggered)
    assert set(triggered) <= set(runs)
    # A trigger that failed during the fault made no run (its transaction never committed), but
    # one whose answer alone was lost could have: at most that many unknown runs.
    assert len(triggered) <= len(runs) <= len(triggered) + ambiguous
    assert all(status in TERMINAL for status, *_ in runs.values()), statuses
    assert statuses["SUCCEEDED"] > len(triggered) // 2, statuses
    for run_id in cancelled:
        assert runs[run_id][0] == "CANCELLED", runs[run_id]

    assert check.double_holds == [], check.double_holds
    assert check.double_finishes == [], check.double_finishes
    assert [r for r, times in check.started.items() if times > 1] == []
    for run_id, status in reported.items():
        assert runs[run_id][0] == status, (run_id, runs[run_id], status)
    for run_id, (status, error_code, _) in runs.items():
        if status in ("SUCCEEDED", "FAILED"):
            assert check.finished.get(run_id) == status, (run_id, status, error_code)
        assert error_code != "MACHINE_LOST", run_id
    for run_id in check.started:
        assert runs[run_id][0] in TERMINAL, (run_id, runs[run_id])
    # R24 from the simulator's side: what each machine held at once.
    holding: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for e in events:
        if e["event"] == "started":
            holding[e["machine_id"]].add((e["run_id"], e["attempt"]))
            assert len(holding[e["machine_id"]]) <= bots[e["machine_id"]], e
        elif e["event"] in ("finished", "cancelled", "superseded"):
            holding[e["machine_id"]].discard((e["run_id"], e["attempt"]))
    return statuses
