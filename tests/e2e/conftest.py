"""Shared end-to-end fixtures: a real ``deskfleet serve`` (fresh SQLite, free 127.0.0.1 port, the
first-run admin token read from its output), optionally on a real Redis.

- ``deskfleet_server``: a factory ``(broadcast_url=None, env=None, admin_token=None) ->
  LiveServer``; every server
  it starts is stopped at the end of the test.
- ``redis_server``: a throwaway ``redis-server`` (``DESKFLEET_TEST_REDIS_URL`` if set by
  .ci/services.sh, else one started here on a free port), restartable; skips without Redis.
- ``realtime_server``: the server once on ``memory://`` and once on ``redis://``.
- ``browser`` (one per test module) and ``page``: Debian's headless Chromium driven by Playwright
  (tests/e2e/dashboard_given.py), a page recording console errors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.e2e.server import Served, first_run_token, free_port

# Realtime-friendly timings: quick init timeout, quick backend probes and presence checks.
REALTIME_ENV = {
    "DESKFLEET_WS_INIT_TIMEOUT_SECONDS": "2",
    "DESKFLEET_WS_MAX_SUBSCRIPTIONS": "5",
    "DESKFLEET_BROADCAST_PROBE_SECONDS": "1",
    "DESKFLEET_PRESENCE_CHECK_SECONDS": "0.5",
    "DESKFLEET_REALTIME_QUEUE_SIZE": "64",
}


@dataclass
class LiveServer:
    served: Served
    admin_token: str
    broadcast_url: str

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def ws_url(self) -> str:
        return self.served.url.replace("http://", "ws://") + "/graphql"

    @property
    def pid(self) -> int:
        return self.served.process.pid

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """A raw GraphQL-over-HTTP body as the administrator (extensions and all); the answer."""
        answer = httpx.post(
            f"{self.url}/graphql",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def graphql(self, query: str, token: str | None = None, variables: dict | None = None) -> dict:
        result = self.served.graphql(query, token or self.admin_token, variables)
        assert not result.get("errors"), result
        return result["data"]

    def rss_kib(self) -> int:
        """The server process's resident memory, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture
def deskfleet_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    started: list[Served] = []

    def start(
        broadcast_url: str | None = None,
        env: dict[str, str] | None = None,
        admin_token: str | None = None,
    ) -> LiveServer:
        """``admin_token``: for a server sharing a database that already had its first run."""
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        args = ["--broadcast-url", broadcast_url] if broadcast_url else []
        served = Served(workdir, *args, env={**REALTIME_ENV, **(env or {})})
        started.append(served)
        served.wait_ready()
        token = admin_token or first_run_token(served)
        return LiveServer(served, token, broadcast_url or "memory://")

    yield start
    for served in started:
        served.stop()


class RedisServer:
    """A redis-server on 127.0.0.1 with a throwaway directory; can be restarted."""

    def __init__(self, port: int, directory: Path, owned: bool) -> None:
        self.port = port
        self.directory = directory
        self.owned = owned
        self.url = f"redis://127.0.0.1:{port}/0"

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10
        )

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            check=True,
            timeout=10,
        )
        deadline = time.monotonic() + 10
        while self._cli("ping").stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self._cli("shutdown", "nosave")
        deadline = time.monotonic() + 10
        while self._cli("ping").returncode == 0 and self._cli("ping").stdout.strip() == "PONG":
            assert time.monotonic() < deadline, "redis-server did not stop"
            time.sleep(0.05)

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    given = os.environ.get("DESKFLEET_TEST_REDIS_URL")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (.ci/services.sh installs it)")
    if given:
        port = urlparse(given).port or 6379
        directory = Path(os.environ.get("REDIS_DIR") or tempfile.mkdtemp(prefix="deskfleet-redis-"))
        yield RedisServer(port, directory, owned=False)
        return
    directory = Path(tempfile.mkdtemp(prefix="deskfleet-redis-"))
    server = RedisServer(free_port(), directory, owned=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["memory", "redis"])
def broadcast_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("redis_server").url


@pytest.fixture
def realtime_server(
    broadcast_backend: str, deskfleet_server: Callable[..., LiveServer]
) -> LiveServer:
    return deskfleet_server(broadcast_backend)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.e2e.dashboard_given import launch_browser

    yield from launch_browser()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    from tests.e2e.dashboard_given import open_page

    yield from open_page(browser)
