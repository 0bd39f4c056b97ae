"""No run lost, none dispatched twice (R30, R24, R25, R28), across a ``kill -9`` of the server.

``deskfleet serve`` runs as a subprocess on a fresh database (SQLite; PostgreSQL too when
``DESKFLEET_TEST_DATABASE_URL`` is set, after ``deskfleet db upgrade``). ``deskfleet simulate``
works the runs in its own process through the real API, logging every start and finish. 500 runs
are triggered meanwhile (mixed priorities, a few cancelled, a few queued for a machine that never
comes online); halfway the server is killed with SIGKILL and started again on the same database,
then the fleet drains. Then, from the database and from the simulator's own log:

- every run reached exactly one terminal state, agreeing with what the simulator reported, or is
  still legitimately queued (for the offline machine, saying why: R29);
- no run was ever started twice nor held by two bots at once (``check_log``);
- per machine, running unattended runs never exceeded its bots (R24), from both sides;
- every trigger carries an idempotency key, so one whose answer the kill lost, sent again, made
  no second run: the database holds exactly the runs triggered (R46).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from deskfleet.simulator import check_log, read_log
from tests import databases as test_databases
from tests.databases import POSTGRES_URL
from tests.e2e.server import DESKFLEET, ROOT, Served, first_run_token
from tests.faults.story import CANCEL, TRIGGER, Down, RunsDatabase, answer, ok, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R30"), pytest.mark.rule("R46")]

RUNS = 500
KILL_AFTER = 250  # triggered runs before the kill -9
OFFLINE_RUNS = 6  # of the RUNS, queued for a machine that never sends a heartbeat
MACHINES = 4
BOTS = 2
DRAIN_SECONDS = 150
TRIGGER_THREADS = 3  # triggers overlap like several clients' would

# Short timings so the whole story fits in a couple of minutes on 2 cores.
SERVER_ENV = {
    "DESKFLEET_DISPATCH_CONFIRM_TIMEOUT_SECONDS": "3",  # R28: unconfirmed -> back to the queue
    "DESKFLEET_DISPATCH_SWEEP_INTERVAL_SECONDS": "0.5",
    # Long enough that no run ends MACHINE_LOST while the server is down for a second or two.
    "DESKFLEET_HEARTBEAT_TIMEOUT_SECONDS": "60",
}

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


def post(url: str, token: str, query: str, variables: dict[str, Any] | None = None) -> dict:
    """No fault but the kill is injected here: every answer must be free of errors."""
    body = answer(url, token, query, variables)
    assert not body.get("errors"), body
    return body["data"]


# --- the database, read directly at the end -----------------------------------------------------


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def max_overlap(intervals: list[tuple[Any, Any]]) -> int:
    """The most intervals open at one time; one ending exactly when another starts: not both."""
    points = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda p: (p[0], p[1]),  # ends before starts at the same instant
    )
    current = highest = 0
    for _, step in points:
        current += step
        highest = max(highest, current)
    return highest


@pytest.fixture
def database(tmp_path: Path) -> Iterator[RunsDatabase]:
    if not POSTGRES_URL:
        path = tmp_path / "fleet.db"
        yield RunsDatabase(f"sqlite:///{path}", sqlite_path=path)
        return
    databases = test_databases.TestDatabases(tmp_path)
    url = asyncio.run(databases.empty())
    subprocess.run(  # a fresh PostgreSQL database is brought to the current schema first
        [*DESKFLEET, "db", "upgrade"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DESKFLEET_DATABASE_URL": url},
    )
    try:
        yield RunsDatabase(url)
    finally:
        asyncio.run(databases.drop(url))


# --- the story -----------------------------------------------------------------------------------


@dataclass
class Triggering:
    """Triggers the runs from a few threads, retrying through the server's absence."""

    url: str
    token: str
    flow_id: str
    group_connection: str
    offline_connection: str
    seed: int = 11
    triggered: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    ambiguous: int = 0  # triggers sent again because their answer was lost (R46: no second run)
    halfway: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        offline_at = set(rng.sample(range(RUNS), OFFLINE_RUNS))
        self.plan = [
            (i in offline_at, "HIGH" if rng.random() < 0.3 else "NORMAL") for i in range(RUNS)
        ]

    def _retrying(self, query: str, variables: dict[str, Any]) -> dict:
        deadline = time.monotonic() + 120
        while True:
            try:
                return post(self.url, self.token, query, variables)
            except Down:
                if query is TRIGGER:
                    with self._lock:
                        self.ambiguous += 1
                assert time.monotonic() < deadline, "the server did not come back"
                time.sleep(0.2)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._run, args=(w,), daemon=True)
            for w in range(TRIGGER_THREADS)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _run(self, worker: int) -> None:
        try:
            rng = random.Random(self.seed + worker)
            for i in range(worker, RUNS, TRIGGER_THREADS):
                offline, priority = self.plan[i]
                connection = self.offline_connection if offline else self.group_connection
                data = self._retrying(
                    TRIGGER,
                    {
                        "input": {
                            "flowId": self.flow_id,
                            "connectionId": connection,
                            "mode": "UNATTENDED",
                            "priority": priority,
                            # R46: a retry of a trigger whose answer the kill lost answers the
                            # run it queued, if it did, instead of queuing a second one.
                            "idempotencyKey": f"no-run-lost-{i}",
                        }
                    },
                )
                run_id = ok(data, "triggerRun")["run"]["id"]
                with self._lock:
                    (self.offline if offline else self.triggered).append(run_id)
                    if len(self.triggered) + len(self.offline) == KILL_AFTER:
                        self.halfway.set()
                if i % 50 == 25:  # now and then cancel a recent run, whatever its state
                    victim = self.triggered[-rng.randrange(1, 6)]
                    result = self._retrying(CANCEL, {"id": victim})["cancelRun"]
                    if "code" not in result:
                        with self._lock:
                            self.cancelled.append(victim)
        except BaseException as exc:  # reported by the test thread
            self.failure = self.failure or exc
            self.halfway.set()


def test_no_run_lost_none_dispatched_twice_across_a_kill_9(
    tmp_path: Path, database: RunsDatabase
) -> None:
    env = {**SERVER_ENV, "DESKFLEET_DATABASE_URL": database.url}
    server = Served(tmp_path, "--no-access-log", env=env)
    servers = [server]
    simulator: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "simulator.jsonl"
    try:
        server.wait_ready(timeout=90)  # a loaded CI machine starts slowly
        token = first_run_token(server)
        url = server.url

        # Given an environment with bots, a group of simulated machines, and one machine that
        # never comes online.
        environment_id = post(url, token, "{ environments { id kind } }")["environments"][0]["id"]
        ok(
            post(
                url,
                token,
                """mutation($input: UpdateEnvironmentInput!) { updateEnvironment(input: $input) {
                    __typename ... on UserError { code message } } }""",
                {"input": {"id": environment_id, "unattendedCapacity": MACHINES * BOTS + 1}},
            ),
            "updateEnvironment",
        )
        group_id = ok(
            post(
                url,
                token,
                """mutation($input: CreateMachineGroupInput!) { createMachineGroup(input: $input) {
                    ... on MachineGroupPayload { group { id } } ... on UserError { code } } }""",
                {"input": {"environmentId": environment_id, "name": "Crash test"}},
            ),
            "createMachineGroup",
        )["group"]["id"]
        offline_machine = ok(
            post(
                url,
                token,
                """mutation($input: RegisterMachineInput!) { registerMachine(input: $input) {
                    ... on RegisteredMachinePayload { machine { id } } ... on UserError { code } } }""",
                {
                    "input": {
                        "environmentId": environment_id,
                        "name": "never-online",
                        "runtimeVersion": "2.8.73.21119",
                        "osEdition": "Windows 11 Pro",
                    }
                },
            ),
            "registerMachine",
        )["machine"]["id"]
        ok(
            post(
                url,
                token,
                """mutation($id: ID!) { allocateUnattendedBots(machineId: $id, count: 1) {
                    __typename ... on UserError { code message } } }""",
                {"id": offline_machine},
            ),
            "allocateUnattendedBots",
        )

        with (tmp_path / "simulator.out").open("w") as output:
            simulator = subprocess.Popen(
                [
                    *DESKFLEET,
                    "simulate",
                    *("--url", f"{url}/graphql", "--token", token),
                    *("--environment-id", environment_id, "--group-id", group_id),
                    *("--machines", str(MACHINES), "--bots", str(BOTS), "--prefix", "crash"),
                    *("--min-seconds", "0.05", "--max-seconds", "0.4", "--failure-rate", "0.2"),
                    *("--heartbeat-seconds", "1", "--poll-seconds", "0.25"),
                    *("--log", str(log_path), "--seed", "3"),
                ],
                cwd=tmp_path,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        wait_for(
            lambda: log_path.exists() and log_path.read_text().count('"registered"') == MACHINES,
            60,
            "the simulated machines to register",
        )

        flow_id = ok(
            post(
                url,
                token,
                """mutation($input: CreateDesktopFlowInput!) { createDesktopFlow(input: $input) {
                    ... on DesktopFlowPayload { flow { id } } ... on UserError { code } } }""",
                {"input": {"environmentId": environment_id, "name": "Crash-proof flow"}},
            ),
            "createDesktopFlow",
        )["flow"]["id"]
        connections = {}
        for name, target in (
            ("group", {"groupId": group_id}),
            ("offline", {"machineId": offline_machine}),
        ):
            connections[name] = ok(
                post(
                    url,
                    token,
                    """mutation($input: CreateConnectionInput!) { createConnection(input: $input) {
                        ... on ConnectionPayload { connection { id } } ... on UserError { code } } }""",
                    {
                        "input": {
                            "name": f"{name} connection",
                            "windowsUsername": "CONTOSO\\robot",
                            "password": "s3cret-Passw0rd",
                            **target,
                        }
                    },
                ),
                "createConnection",
            )["connection"]["id"]

        # When 500 runs are triggered while the simulator works them, and the server is killed
        # with SIGKILL halfway, then started again on the same database and port.
        triggering = Triggering(url, token, flow_id, connections["group"], connections["offline"])
        began = time.monotonic()
        trigger_threads = triggering.start()
        assert triggering.halfway.wait(300), "the first half was not triggered in time"
        assert triggering.failure is None, triggering.failure
        working = database.rows(
            "SELECT count(*) FROM flow_runs WHERE status IN ('DISPATCHED', 'RUNNING')"
        )[0][0]
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        time.sleep(1.0)
        server = Served(tmp_path, "--no-access-log", env=env, port=server.port)
        servers.append(server)
        server.wait_ready(timeout=90)  # a loaded CI machine starts slowly
        killed_at = time.monotonic() - began
        for thread in trigger_threads:
            thread.join(max(1.0, 400 - (time.monotonic() - began)))
            assert not thread.is_alive(), "triggering did not finish"
        assert triggering.failure is None, triggering.failure

        # ... and the fleet drains.
        def drained() -> bool:
            left = database.rows(
                "SELECT count(*) FROM flow_runs WHERE status IN ('DISPATCHED', 'RUNNING') "
                "OR (status = 'QUEUED' AND target_machine_id IS NULL)"
            )
            return left[0][0] == 0

        triggered_in = time.monotonic() - began
        wait_for(drained, DRAIN_SECONDS, "the queue to drain")
        print(  # shown when the test fails: where the time went
            f"restarted after {killed_at:.1f}s, all triggered after {triggered_in:.1f}s, "
            f"drained after {time.monotonic() - began:.1f}s"
        )
        time.sleep(1.0)  # late reports, if any, land now
        waiting = post(
            url,
            token,
            "query($id: ID!) { machineQueue(machineId: $id) { position waitReason run { id } } }",
            {"id": offline_machine},
        )["machineQueue"]
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.send_signal(signal.SIGINT)
            try:
                simulator.wait(15)
            except subprocess.TimeoutExpired:
                simulator.kill()
                simulator.wait()
        for served in servers:
            served.stop()

    runs = {
        run_id: (status, error_code, machine_id, mode, started, ended)
        for run_id, status, error_code, machine_id, mode, started, ended in database.rows(
            "SELECT id, status, error_code, machine_id, mode, started_at, ended_at FROM flow_runs"
        )
    }
    bots = dict(database.rows("SELECT id, unattended_bots FROM machines"))
    events = read_log(log_path)
    check = check_log(events)
    reported = {e["run_id"]: e["status"] for e in events if e["event"] == "reported"}
    statuses = Counter(status for status, *_ in runs.values())

    # Then the kill happened with work in flight, and every triggered run is in the database.
    assert working > 0, "the server was killed while nothing was dispatched or running"
    assert len(triggering.triggered) + len(triggering.offline) == RUNS
    assert set(triggering.triggered) | set(triggering.offline) <= set(runs)
    # A trigger whose answer was lost in the kill was sent again with its idempotency key: it
    # answered the run it had queued, if any, so there is no run nobody knows about (R46).
    assert len(set(triggering.triggered) | set(triggering.offline)) == RUNS
    assert len(runs) == RUNS, (len(runs), triggering.ambiguous)

    # Every run reached exactly one terminal state, or is still legitimately queued: for the
    # machine that never came online, saying so (R29), in the order of its queue.
    queued = {r for r, (status, *_) in runs.items() if status == "QUEUED"}
    assert queued == set(triggering.offline), statuses
    assert {e["run"]["id"] for e in waiting} == queued
    assert {e["waitReason"] for e in waiting} == {"MACHINE_OFFLINE"}
    assert [e["position"] for e in waiting] == list(range(1, len(queued) + 1))
    assert all(status in TERMINAL for r, (status, *_) in runs.items() if r not in queued), statuses
    assert statuses["SUCCEEDED"] > RUNS // 2, statuses
    for run_id in triggering.cancelled:
        assert runs[run_id][0] == "CANCELLED"

    # No run was held by two bots at once, nor started or finished twice (the simulator's log).
    assert check.double_holds == [], check.double_holds
    assert check.double_finishes == [], check.double_finishes
    assert [r for r, times in check.started.items() if times > 1] == []
    # What the server acknowledged is what the database says; what ended SUCCEEDED or FAILED by
    # a report was finished so by the simulator; nothing ended MACHINE_LOST meanwhile.
    for run_id, status in reported.items():
        assert runs[run_id][0] == status, (run_id, runs[run_id], status)
    for run_id, (status, error_code, *_) in runs.items():
        if status in ("SUCCEEDED", "FAILED"):
            assert check.finished.get(run_id) == status, (run_id, status, error_code)
        if status == "RUNNING" or error_code == "MACHINE_LOST":
            pytest.fail(f"run {run_id} is {status} {error_code}")
    for run_id in check.started:
        assert runs[run_id][0] in TERMINAL, (run_id, runs[run_id])

    # R24, from the database: per machine, running unattended runs never exceeded its bots.
    intervals: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for _status, _, machine_id, mode, started, ended in runs.values():
        if machine_id and started is not None and mode == "UNATTENDED":
            intervals[machine_id].append((_when(started), _when(ended)))
    assert intervals, "no run ran"
    for machine_id, spans in intervals.items():
        assert max_overlap(spans) <= bots[machine_id], machine_id
    # ... and from the simulator's side: what each machine held at once.
    holding: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for e in events:
        if e["event"] == "started":
            holding[e["machine_id"]].add((e["run_id"], e["attempt"]))
            assert len(holding[e["machine_id"]]) <= bots[e["machine_id"]], e
        elif e["event"] in ("finished", "cancelled", "superseded"):
            holding[e["machine_id"]].discard((e["run_id"], e["attempt"]))
