"""`deskfleet serve` as a user runs it: a subprocess on 127.0.0.1 with a fresh SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.databases import POSTGRES_URL
from tests.e2e.server import DESKFLEET, ROOT, TOKEN, Served, free_port

pytestmark = pytest.mark.e2e


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
        refused = refused_serve(workdir, env)
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


def test_a_body_declared_too_large_is_refused_before_it_is_sent(served: Served) -> None:
    """413 on the headers alone: the server does not wait for (or buffer) a gigabyte first."""
    address = urlsplit(served.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n{"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def refused_serve(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``deskfleet serve`` with ``env``, expected to stop at once."""
    return subprocess.run(
        [*DESKFLEET, "serve", "--port", str(free_port())],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def test_a_setting_that_cannot_be_read_stops_serve_with_one_line_naming_it(workdir: Path) -> None:
    refused = refused_serve(
        workdir, {"DESKFLEET_CORS_ALLOWED_ORIGINS": '["https://ops.example/app"]'}
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "deskfleet: DESKFLEET_CORS_ALLOWED_ORIGINS: 'https://ops.example/app' is not an origin: "
        "give scheme://host[:port] (http or https), without a path or a trailing slash; each "
        "origin is listed, never '*'"
    ]
    assert not (workdir / "deskfleet.db").exists()  # nothing was started or created
