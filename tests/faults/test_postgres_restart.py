"""Faults: PostgreSQL stopped for a while under a working fleet, then started again.

Runs with ``DESKFLEET_TEST_DATABASE_URL`` set (the PostgreSQL pass); it stops PostgreSQL, so it
starts its OWN server (initdb + pg_ctl as the ``postgres`` user, like .ci/services.sh) on a port
of its own (``DESKFLEET_FAULT_PG_PORT``, else a free one), never the shared one.

A real ``deskfleet serve`` on a fresh database there (``deskfleet db upgrade`` first), machines
worked by ``deskfleet simulate``, runs triggered from a thread. Halfway PostgreSQL stops (fast
shutdown: every connection cut) for several seconds:

- requests fail cleanly: HTTP 200 with the masked "Unexpected error." (no SQL, no driver message,
  no traceback), or a plain 503 when the credential must be looked up; never a 500; /healthz and
  /metrics still answer, /readyz says unready (503);
- PostgreSQL comes back: /readyz is ready again and requests work, with no restart of the server;
- the dispatcher, which failed passes meanwhile (logged), resumes by itself: the fleet drains;
- no run lost: every triggered run ends in exactly one terminal state agreeing with what the
  simulator reported, none started or held twice (``check_log``), R24 never exceeded (R30).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from deskfleet.simulator import MASKED_ERROR
from tests.databases import POSTGRES_URL
from tests.e2e.server import DESKFLEET, ROOT, Served, first_run_token, free_port
from tests.faults.story import (
    SERVER_ENV,
    RunsDatabase,
    Triggering,
    answer,
    assert_every_run_accounted_for,
    given_fleet,
    send,
    start_simulator,
    stop_simulator,
    wait_for,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.rule("R30"),
    pytest.mark.skipif(
        not POSTGRES_URL, reason="the PostgreSQL pass (DESKFLEET_TEST_DATABASE_URL)"
    ),
]

RUNS = 160
STOP_AFTER = 60  # runs triggered before PostgreSQL stops
DOWN_SECONDS = 8
MACHINES, BOTS = 3, 2


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return found[-1] if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL server this test may stop and start as it likes."""

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin = bin_dir
        self.port = port
        self.data = Path(tempfile.mkdtemp(prefix="deskfleet-pgfault-"))
        shutil.chown(self.data, "postgres", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _pg(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60
        )

    def init(self) -> None:
        self._pg(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            str(self.bin / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-o", options),
            "start",
        )

    def stop(self) -> None:
        self._pg(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = _pg_bin()
    if bin_dir is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's binaries and root (runuser -u postgres)")
    server = PrivatePostgres(bin_dir, int(os.environ.get("DESKFLEET_FAULT_PG_PORT") or free_port()))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


def _fresh_database(server: PrivatePostgres, workdir: Path) -> str:
    async def create() -> None:
        admin = await asyncpg.connect(server.url)
        try:
            await admin.execute('CREATE DATABASE "deskfleet_fault"')
        finally:
            await admin.close()

    asyncio.run(create())
    url = server.url.rsplit("/", 1)[0] + "/deskfleet_fault"
    subprocess.run(
        [*DESKFLEET, "db", "upgrade"],
        cwd=workdir,
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DESKFLEET_DATABASE_URL": url},
        timeout=120,
    )
    return url


def test_postgres_stopped_and_started_again_loses_no_run(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    url_db = _fresh_database(private_postgres, tmp_path)
    database = RunsDatabase(url_db)
    server = Served(
        tmp_path, "--no-access-log", env={**SERVER_ENV, "DESKFLEET_DATABASE_URL": url_db}
    )
    simulator = None
    log_path = tmp_path / "simulator.jsonl"
    try:
        server.wait_ready(60)
        token = first_run_token(server)
        url = server.url
        fleet = given_fleet(url, token, capacity=MACHINES * BOTS + 1)
        simulator = start_simulator(tmp_path, url, token, fleet, log_path, MACHINES, BOTS)

        # When runs are being triggered and worked, and PostgreSQL stops for a while ...
        triggering = Triggering(url, token, fleet, RUNS).start()
        triggering.wait_for_triggered(STOP_AFTER, 180)
        private_postgres.stop()
        stopped = time.monotonic()
        time.sleep(1.0)

        # ... then requests fail cleanly: a masked error, never the driver's words or a trace.
        query = send(url, token, "{ environments { id name } }")
        mutation = send(
            url,
            token,
            """mutation($input: CreateDesktopFlowInput!) { createDesktopFlow(input: $input) {
                __typename ... on UserError { code } } }""",
            {"input": {"environmentId": fleet.environment_id, "name": "during the outage"}},
        )
        health = httpx.get(f"{url}/healthz", timeout=10)
        unready = httpx.get(f"{url}/readyz", timeout=10)
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        remaining = DOWN_SECONDS - (time.monotonic() - stopped)
        if remaining > 0:
            time.sleep(remaining)
        assert server.process.poll() is None, "the server died with its database"

        # When PostgreSQL starts again, the server is ready again by itself ...
        private_postgres.start()
        restarted = time.monotonic()
        wait_for(
            lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, 60, "ready again"
        )
        ready_after = time.monotonic() - restarted
        after = answer(url, token, "{ environments { id name } }")

        # ... triggering finishes, and the fleet drains: the dispatcher resumed by itself.
        triggering.join(240)
        wait_for(lambda: database.unfinished() == 0, 180, "the fleet to drain")
        time.sleep(1.0)  # late reports, if any, land now
    finally:
        stop_simulator(simulator)
        server.stop()

    for response in (query, mutation):
        # A cached credential gets as far as the resolver: the masked error; else the request
        # is turned away before it (authentication needs the database): a plain 503.
        if response.status_code == 200:
            body = response.json()
            assert body["data"] is None, body
            assert [e["message"] for e in body["errors"]] == [MASKED_ERROR], body
        else:
            assert response.status_code == 503, response.text
            assert response.text == "Service unavailable, try again."
        text = response.text.lower()
        for leak in ("asyncpg", "connection", "postgres", "sqlalchemy", "select", "traceback"):
            assert leak not in text, response.text
    assert health.status_code == 200
    assert unready.status_code == 503 and unready.json()["status"] == "unready"
    assert unready.json()["checks"]["database"] != "ok"
    assert metrics.status_code == 200 and "deskfleet_" in metrics.text
    assert after.get("errors") is None and after["data"]["environments"], after
    assert ready_after < 30

    output = server.output()
    assert "Exception in ASGI application" not in output  # no request went unhandled (a 500)
    assert "dispatcher pass failed" in output  # the fault reached the dispatcher ...
    assert triggering.refused_during_fault > 0  # ... and the requests
    assert len(triggering.triggered) == RUNS
    assert_every_run_accounted_for(
        database, log_path, triggering.triggered, triggering.cancelled, triggering.ambiguous
    )
