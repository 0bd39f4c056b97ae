"""`deskfleet simulate` holds a fleet of a few hundred machines against a real `deskfleet serve`:
every machine registers, heartbeats and holds its `machineAssignments` subscription, and the runs
triggered meanwhile are worked once each (the simulator's log and the database agree).

The story and its checks are tests/faults/story.py's, without a fault: here the fleet is large.
On SQLite, and on PostgreSQL when ``DESKFLEET_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.cluster.test_cluster_dispatch import metric
from tests.e2e.server import Served, first_run_token
from tests.e2e.test_no_run_lost import database  # noqa: F401  (the fixture: SQLite or PostgreSQL)
from tests.faults.story import (
    SERVER_ENV,
    RunsDatabase,
    Triggering,
    assert_every_run_accounted_for,
    given_fleet,
    start_simulator,
    stop_simulator,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R30")]

MACHINES = 300
RUNS = 60


def test_a_few_hundred_simulated_machines_register_heartbeat_subscribe_and_work(
    tmp_path: Path,
    database: RunsDatabase,  # noqa: F811
) -> None:
    # One group holds the whole fleet (R11's limit raised), so that any machine may take a run.
    env = {
        **SERVER_ENV,
        "DESKFLEET_DATABASE_URL": database.url,
        "DESKFLEET_GROUP_MACHINE_LIMIT": str(MACHINES),
    }
    server = Served(tmp_path, "--no-access-log", env=env)
    simulator = None
    log_path = tmp_path / "simulator.jsonl"

    def heartbeating() -> int:
        ((count,),) = database.rows(
            "SELECT count(*) FROM machines WHERE last_heartbeat_at IS NOT NULL"
        )
        return int(count)

    def subscribed() -> float:
        scraped = httpx.get(f"{server.url}/metrics", timeout=10).text
        return metric(scraped, "deskfleet_open_subscriptions")

    try:
        server.wait_ready(60)
        token = first_run_token(server)
        fleet = given_fleet(server.url, token, capacity=MACHINES)
        # Work pushed over each machine's websocket; a heartbeat every 3 s, a poll every 20 s.
        push = ("--push", "--heartbeat-seconds", "3", "--poll-seconds", "1")
        simulator = start_simulator(
            tmp_path, server.url, token, fleet, log_path, MACHINES, bots=1, extra=push
        )
        wait_for(lambda: heartbeating() == MACHINES, 120, "every machine's first heartbeat")
        wait_for(lambda: subscribed() >= MACHINES, 120, "every machine's subscription")

        triggering = Triggering(server.url, token, fleet, RUNS).start()
        triggering.join(180)
        wait_for(lambda: database.unfinished() == 0, 180, "the fleet to drain")
    finally:
        stop_simulator(simulator)
        server.stop()

    output = (tmp_path / "simulator.out").read_text()
    assert f"registered {MACHINES} machines in" in output, output
    assert f"simulating {MACHINES} machine(s)" in output, output
    assert "Traceback" not in output, output
    assert "Exception in ASGI application" not in server.output()
    assert len(triggering.triggered) == RUNS
    assert_every_run_accounted_for(database, log_path, triggering.triggered, triggering.cancelled)
