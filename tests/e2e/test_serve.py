"""`deskfleet serve` as a user runs it: a subprocess on 127.0.0.1 with a fresh SQLite file."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import POSTGRES_URL

pytestmark = pytest.mark.e2e

DESKFLEET = [sys.executable, "-m", "api.cli"]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        self.process = subprocess.Popen(
            [*DESKFLEET, "serve", "--port", str(self.port), *args],
            cwd=workdir,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def graphql(self, query: str, token: str | None, variables: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def served(workdir: Path) -> Iterator[Served]:
    server = Served(workdir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


TOKEN = re.compile(r"Admin token \(shown once, keep it safe\): (dfu_\S+)")


def test_first_run_prints_a_token_that_authenticates(served: Served, workdir: Path) -> None:
    token = TOKEN.search(served.output()).group(1)

    me = served.graphql("{ me { user { email isAdmin } } environments { id name kind } }", token)
    env_id = me["data"]["environments"][0]["id"]
    registered = served.graphql(
        """mutation($env: ID!) { registerMachine(input: {environmentId: $env, name: "bot-1",
            runtimeVersion: "2.8.73.21119", osEdition: "Windows 11 Pro"}) {
            ... on RegisteredMachinePayload { machineKey machine { id } } } }""",
        token,
        {"env": env_id},
    )["data"]["registerMachine"]
    beat = served.graphql(
        """mutation { machineHeartbeat(input: {runtimeVersion: "2.8.73.21119",
            osEdition: "Windows 11 Pro"}) { ... on HeartbeatPayload { machine { status } } } }""",
        registered["machineKey"],
    )

    assert me["data"]["me"]["user"] == {"email": "admin@deskfleet.local", "isAdmin": True}
    assert me["data"]["environments"][0]["name"] == "Default"
    assert beat["data"]["machineHeartbeat"]["machine"]["status"] == "CONNECTED"
    assert (workdir / "deskfleet.db").exists()
    assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}


def test_restart_keeps_data_and_admin_token_cli_mints_another(workdir: Path) -> None:
    first = Served(workdir)
    first.wait_ready()
    token = TOKEN.search(first.output()).group(1)
    first.stop()

    minted = subprocess.run(
        [*DESKFLEET, "admin", "token"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout.strip()
    second = Served(workdir)
    try:
        second.wait_ready()
        for credential in (token, minted):
            me = second.graphql("{ me { user { email } } }", credential)
            assert me["data"]["me"]["user"]["email"] == "admin@deskfleet.local"
        assert "first run" not in second.output()
    finally:
        second.stop()
    assert minted.startswith("dfu_") and minted != token


def test_bad_token_over_http_is_a_clean_error(served: Served) -> None:
    result = served.graphql("{ me { user { id } } }", "dfu_not-a-real-token")

    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "Traceback" not in str(result)


def test_graphiql_is_served_in_development(served: Served) -> None:
    page = httpx.get(f"{served.url}/graphql", headers={"Accept": "text/html"})

    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs DESKFLEET_TEST_DATABASE_URL (PostgreSQL)")
def test_postgres_outdated_schema_refused_until_db_upgrade(workdir: Path) -> None:
    import asyncio

    from tests.databases import TestDatabases

    databases = TestDatabases(workdir)
    url = asyncio.run(databases.empty())
    env = {"DESKFLEET_DATABASE_URL": url}
    try:
        refused = subprocess.run(
            [*DESKFLEET, "serve", "--port", str(free_port())],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )
        assert refused.returncode == 2
        assert "deskfleet db upgrade" in refused.stderr

        subprocess.run(
            [*DESKFLEET, "db", "upgrade"],
            cwd=workdir,
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )
        server = Served(workdir, env=env)
        try:
            server.wait_ready()
            assert TOKEN.search(server.output())
        finally:
            server.stop()
    finally:
        asyncio.run(databases.drop(url))
