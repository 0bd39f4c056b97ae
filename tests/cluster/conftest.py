"""A DeskFleet cluster for tests: several real ``deskfleet serve`` processes on one PostgreSQL
database and one Redis, the way docs/operations.md deploys it.

- ``postgres_url``: the server from ``DESKFLEET_TEST_DATABASE_URL`` (skips without it).
- ``cluster_redis``: the Redis from ``DESKFLEET_TEST_REDIS_URL``, or a throwaway one.
- ``cluster``: a factory for instances on a fresh database that ``deskfleet db upgrade`` migrated;
  every instance it starts is stopped (and the database dropped) at the end of the test.
- :class:`PostgresServer`: a throwaway PostgreSQL (initdb + pg_ctl) a test may stop and start.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from tests.e2e.conftest import RedisServer
from tests.e2e.server import DESKFLEET, ROOT, Served, first_run_token, free_port

POSTGRES_URL = os.environ.get("DESKFLEET_TEST_DATABASE_URL")

# Quick timings so failures show within a test's patience; the documented defaults are larger.
CLUSTER_ENV = {
    "DESKFLEET_JSON_LOGS": "true",
    "DESKFLEET_DISPATCH_SWEEP_INTERVAL_SECONDS": "1",
    "DESKFLEET_DISPATCH_CONFIRM_TIMEOUT_SECONDS": "15",
    "DESKFLEET_BROADCAST_PROBE_SECONDS": "1",
    "DESKFLEET_PRESENCE_CHECK_SECONDS": "1",
    "DESKFLEET_REALTIME_QUEUE_SIZE": "256",
}


def dsn(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


def deskfleet(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DESKFLEET, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


@pytest.fixture(scope="session")
def postgres_url() -> str:
    if not POSTGRES_URL:
        pytest.skip(
            "the cluster tests need PostgreSQL: set DESKFLEET_TEST_DATABASE_URL "
            "(source .ci/services.sh && start_postgres PORT)"
        )
    return POSTGRES_URL


@pytest.fixture(scope="session")
def cluster_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("the cluster tests need redis-server (.ci/services.sh start_redis installs it)")
    given = os.environ.get("DESKFLEET_TEST_REDIS_URL")
    if given:
        directory = Path(os.environ.get("REDIS_DIR") or tempfile.mkdtemp(prefix="deskfleet-redis-"))
        yield RedisServer(urlparse(given).port or 6379, directory, owned=False)
        return
    with throwaway_redis() as server:
        yield server


class throwaway_redis:
    """A redis-server of the test's own, on a free port, that it may stop and start."""

    def __enter__(self) -> RedisServer:
        self.directory = Path(tempfile.mkdtemp(prefix="deskfleet-redis-"))
        self.server = RedisServer(free_port(), self.directory, owned=True)
        self.server.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# --- instances ---------------------------------------------------------------------------------


class Instance:
    """One ``deskfleet serve`` of the cluster."""

    def __init__(self, name: str, served: Served, admin_token: str) -> None:
        self.name = name
        self.served = served
        self.admin_token = admin_token

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def graphql_url(self) -> str:
        return f"{self.served.url}/graphql"

    @property
    def ws_url(self) -> str:
        return self.graphql_url.replace("http://", "ws://")

    @property
    def pid(self) -> int:
        return self.served.process.pid

    def kill9(self) -> None:
        """Die the hard way: no shutdown, no rollback but the one PostgreSQL does itself."""
        self.served.process.send_signal(signal.SIGKILL)
        self.served.process.wait(10)

    def terminate(self) -> None:
        """What an orchestrator does to roll an instance: SIGTERM, then wait."""
        self.served.process.send_signal(signal.SIGTERM)

    def readyz(self) -> tuple[int, dict]:
        response = httpx.get(f"{self.url}/readyz", timeout=10)
        return response.status_code, response.json()

    def output(self) -> str:
        return self.served.output()

    def graphql(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        result = self.served.graphql(query, token or self.admin_token, variables)
        assert not result.get("errors"), result
        return result["data"]


class Cluster:
    """Instances sharing one fresh PostgreSQL database and one Redis."""

    def __init__(self, database_url: str, broadcast_url: str, workdir: Path) -> None:
        self.database_url = database_url
        self.broadcast_url = broadcast_url
        self.workdir = workdir
        self.instances: list[Instance] = []
        self.admin_token: str | None = None
        # Every instance must share the Fernet key that encrypts connection passwords (R20).
        self.secret_key = Fernet.generate_key().decode()

    @property
    def env(self) -> dict[str, str]:
        return {
            **CLUSTER_ENV,
            "DESKFLEET_DATABASE_URL": self.database_url,
            "DESKFLEET_BROADCAST_URL": self.broadcast_url,
            "DESKFLEET_SECRET_KEY": self.secret_key,
        }

    def spawn(self, name: str, env: dict[str, str] | None = None) -> Served:
        workdir = self.workdir / f"{name}-{len(self.instances)}"
        workdir.mkdir()
        return Served(workdir, env={**self.env, **(env or {})})

    def start(self, name: str, env: dict[str, str] | None = None) -> Instance:
        served = self.spawn(name, env)
        served.wait_ready(60)
        if self.admin_token is None:
            self.admin_token = first_run_token(served)
        instance = Instance(name, served, self.admin_token)
        self.instances.append(instance)
        return instance

    def adopt(self, name: str, served: Served, admin_token: str) -> Instance:
        instance = Instance(name, served, admin_token)
        self.instances.append(instance)
        return instance

    async def sql(self, query: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database_url)
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()

    def stop(self) -> None:
        for instance in self.instances:
            instance.served.stop()


def fresh_database(postgres_url: str) -> str:
    """A new, empty database migrated by ``deskfleet db upgrade`` (as the guide tells operators)."""
    name = f"cluster_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await asyncpg.connect(dsn(postgres_url, "postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(create())
    url = dsn(postgres_url, name)
    upgraded = deskfleet("db", "upgrade", env={"DESKFLEET_DATABASE_URL": url})
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    return url


def drop_database(url: str) -> None:
    async def drop() -> None:
        admin = await asyncpg.connect(dsn(url, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


@pytest.fixture
def cluster(postgres_url: str, cluster_redis: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    url = fresh_database(postgres_url)
    made = Cluster(url, cluster_redis.url, tmp_path)
    try:
        yield made
    finally:
        made.stop()
        drop_database(url)


# --- a PostgreSQL of the test's own ------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: float(p.parent.name))
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """initdb + pg_ctl on a free port; stop() and start() for the readiness tests."""

    def __init__(self) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
        self.bin = bin_dir
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="deskfleet-pg-"))
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        if self.as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, check: bool = True) -> int:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, timeout=60).returncode

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.data / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if self._run("pg_ctl", "-D", str(self.data), "status", check=False) == 0:
            self.stop()
        shutil.rmtree(self.data, ignore_errors=True)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(interval)
