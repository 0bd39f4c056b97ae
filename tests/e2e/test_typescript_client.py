"""The typed TypeScript client in examples/typescript, built with npm and run with node against a
live server: a typed query over fetch lists the seeded machines, a typed subscription over
graphql-ws gets the fleet's snapshot, and a refusal carries the GraphQL error's code.

Node and npm are required, not optional: CI has them, and a machine without them fails here with
a message saying so rather than skipping the example unseen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.server import ROOT
from tests.e2e.test_realtime import Given
from tests.e2e.test_retry_after_kill import given_connection

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "typescript"


def npm(*args: str, timeout: float) -> None:
    found = shutil.which("npm")
    if found is None or shutil.which("node") is None:
        pytest.fail(
            "node and npm are needed to build examples/typescript: install Node.js 20 or newer "
            "with npm (CI has them)"
        )
    result = subprocess.run(
        [found, *args], cwd=EXAMPLE, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"npm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def built() -> Path:
    """examples/typescript/dist/main.js, compiled from the committed sources (and generated
    types); `npm ci` first where node_modules is missing or older than the lock file."""
    installed = EXAMPLE / "node_modules" / ".package-lock.json"
    lock = EXAMPLE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        npm("ci", "--no-audit", "--no-fund", timeout=900)
    npm("run", "build", timeout=300)
    return EXAMPLE / "dist" / "main.js"


def run_client(
    main: Path, server: LiveServer, token: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(main), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DESKFLEET_URL": f"{server.url}/graphql", "DESKFLEET_TOKEN": token},
    )


def test_the_typed_client_lists_the_fleet_and_watches_it(
    built: Path, deskfleet_server: Callable[..., LiveServer]
) -> None:
    server = deskfleet_server()
    given = Given(server)
    environment_id = given.default_environment()
    _, alpha = given.machine(server.admin_token, environment_id, "ts-alpha")
    given.machine(server.admin_token, environment_id, "ts-beta")
    given.heartbeat(alpha)

    result = run_client(built, server, server.admin_token, "--count", "1")
    refused = run_client(built, server, "dfu_not-a-token", "--count", "1")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "machine: ts-alpha CONNECTED group=- running=0 queued=0",
        "machine: ts-beta DISCONNECTED group=- running=0 queued=0",
        "2 machine(s)",
        "fleet: snapshot, 2 machine(s)",
    ]
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stdout == ""
    assert refused.stderr.startswith("error: UNAUTHENTICATED: "), refused.stderr


@pytest.mark.rule("R46")
def test_the_typed_client_triggers_once_per_idempotency_key(
    built: Path, deskfleet_server: Callable[..., LiveServer]
) -> None:
    """`requestWithRetries` sends the trigger with its key until answered; run again with the
    same key, the client gets the same run and nothing more is queued."""
    server = deskfleet_server()
    flow_id, connection_id = given_connection(server.url, server.admin_token, "ts-bot")
    trigger = ("--trigger-flow", flow_id, "--trigger-connection", connection_id)

    first = run_client(
        built, server, server.admin_token, "--count", "1", *trigger, "--idempotency-key", "ts-run-1"
    )
    again = run_client(
        built, server, server.admin_token, "--count", "1", *trigger, "--idempotency-key", "ts-run-1"
    )
    other = run_client(built, server, server.admin_token, "--count", "1", *trigger)

    assert first.returncode == again.returncode == other.returncode == 0, first.stderr
    triggered = first.stdout.splitlines()[0]
    assert triggered.startswith("triggered run ") and triggered.endswith(
        "(idempotency key ts-run-1)"
    )
    assert again.stdout.splitlines()[0] == triggered
    assert other.stdout.splitlines()[0].split()[2] != triggered.split()[2]
    counted = server.graphql(
        "query($c: ID!) { flowRuns(first: 1, filter: {connectionId: $c}) { totalCount } }",
        variables={"c": connection_id},
    )
    assert counted["flowRuns"]["totalCount"] == 2
