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
