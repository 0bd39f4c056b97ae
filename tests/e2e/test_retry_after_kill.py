"""R46 across a crash: a trigger whose answer never reached its client, sent again with its
idempotency key after the server was killed with SIGKILL and started again on the same database,
answers the run it queued before the kill; the database holds that one run.

``deskfleet serve`` runs as a subprocess on a fresh database (SQLite; PostgreSQL too when
``DESKFLEET_TEST_DATABASE_URL`` is set, as in tests/e2e/test_no_run_lost.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Served, first_run_token
from tests.e2e.test_no_run_lost import database  # noqa: F401  (the fixture: a fresh database)
from tests.faults.story import (
    TRIGGER,
    Down,
    RunsDatabase,
    environment_with_capacity,
    new_connection,
    new_flow,
    ok,
    post,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R46")]

RUNTIME = {"runtimeVersion": "2.8.73.21119", "osEdition": "Windows 11 Pro"}
IN_FLIGHT = 12  # triggers, each with its own key, sent while the server is killed


def given_connection(url: str, token: str, machine: str = "crash-bot") -> tuple[str, str]:
    """A machine with an unattended bot, a flow and a connection to it: (flow, connection)."""
    environment_id = environment_with_capacity(url, token, 1)
    machine_id = ok(
        post(
            url,
            token,
            """mutation($input: RegisterMachineInput!) { registerMachine(input: $input) {
                ... on RegisteredMachinePayload { machine { id } } ... on UserError { code } } }""",
            {"input": {"environmentId": environment_id, "name": machine, **RUNTIME}},
        ),
        "registerMachine",
    )["machine"]["id"]
    ok(
        post(
            url,
            token,
            """mutation($id: ID!) { allocateUnattendedBots(machineId: $id, count: 1) {
                __typename ... on UserError { code message } } }""",
            {"id": machine_id},
        ),
        "allocateUnattendedBots",
    )
    flow_id = new_flow(url, token, environment_id, "Crash-proof flow")
    return flow_id, new_connection(url, token, "crash connection", machineId=machine_id)


def trigger_input(flow_id: str, connection_id: str, key: str) -> dict[str, Any]:
    given = {"flowId": flow_id, "connectionId": connection_id, "mode": "UNATTENDED"}
    return {"input": {**given, "idempotencyKey": key}}


def test_a_trigger_retried_after_a_kill_9_answers_the_run_it_queued(
    tmp_path: Path,
    database: RunsDatabase,  # noqa: F811
) -> None:
    env = {"DESKFLEET_DATABASE_URL": database.url}
    server = Served(tmp_path, "--no-access-log", env=env)
    try:
        server.wait_ready(timeout=90)
        token = first_run_token(server)
        flow_id, connection_id = given_connection(server.url, token)

        # Given a trigger that committed, whose answer the client never got: the server is
        # killed the moment it has answered, before anyone read the answer.
        lost = ok(
            post(server.url, token, TRIGGER, trigger_input(flow_id, connection_id, "lost-1")),
            "triggerRun",
        )["run"]["id"]
        # ... and more triggers in flight as the kill comes, each retried until answered.
        answered: dict[str, str] = {}
        retried = 0

        def keep_triggering() -> None:
            nonlocal retried
            for n in range(IN_FLIGHT):
                key = f"in-flight-{n}"
                deadline = time.monotonic() + 120
                while True:
                    try:
                        data = post(
                            server.url, token, TRIGGER, trigger_input(flow_id, connection_id, key)
                        )
                        answered[key] = ok(data, "triggerRun")["run"]["id"]
                        break
                    except Down:
                        retried += 1
                        assert time.monotonic() < deadline, "the server did not come back"
                        time.sleep(0.1)

        triggering = threading.Thread(target=keep_triggering, daemon=True)
        triggering.start()
        while len(answered) < IN_FLIGHT // 3:
            time.sleep(0.01)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        server = Served(tmp_path, "--no-access-log", env=env, port=server.port)
        server.wait_ready(timeout=90)

        # When the client sends the lost trigger again, with its key, to the restarted server.
        again = ok(
            post(server.url, token, TRIGGER, trigger_input(flow_id, connection_id, "lost-1")),
            "triggerRun",
        )["run"]["id"]
        triggering.join(150)
        assert not triggering.is_alive()
    finally:
        server.stop()

    # Then it answers the run queued before the kill, and no trigger made a second run, though
    # some were sent again across the kill.
    assert again == lost
    assert retried > 0
    assert len(set(answered.values())) == IN_FLIGHT
    runs = {row[0] for row in database.rows("SELECT id FROM flow_runs")}
    assert runs == {lost, *answered.values()}, (len(runs), retried)
    keys = database.rows("SELECT count(*) FROM idempotency_keys")[0][0]
    assert keys == 1 + IN_FLIGHT
