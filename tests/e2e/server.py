"""A real `deskfleet serve` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

DESKFLEET = [sys.executable, "-m", "deskfleet.cli"]
ROOT = Path(__file__).resolve().parents[2]
HUNG_SECONDS = 600  # see Served.wait_ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# One admin token drives most of these tests faster than any person would: its cost bucket (R39)
# never runs dry unless a test sets its own (tests/e2e/test_query_cost.py).
UNTHROTTLED = {"DESKFLEET_COST_BUCKET_SIZE": "1e9"}


class Served:
    def __init__(
        self,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,  # e.g. the port of a server that was killed, to restart it
        preexec_fn: Callable[[], None] | None = None,  # run in the child before it starts
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        with self.log.open("a") as output:
            self.process = subprocess.Popen(
                [*DESKFLEET, "serve", "--port", str(self.port), *args],
                cwd=workdir,
                stdout=output,  # a restart on the same port keeps the first output
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **UNTHROTTLED, **(env or {})},
                preexec_fn=preexec_fn,
            )

    def output(self) -> str:
        return self.log.read_text()

    def cpu_seconds(self) -> float:
        """The CPU time the server process has used (from /proc): what its start costs, however
        many other processes share the machine's cores."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after the command's name: state, ppid, ...
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def wait_ready(self, timeout: float = 30) -> None:
        """Until /healthz answers. ``timeout`` is the server's own CPU time: on a busy machine
        the wall clock measures the other processes (importing the app took 22 s of it under a
        load of 13 on two cores, 1.7 s of CPU). :data:`HUNG_SECONDS` of wall clock still ends
        the wait for a server that waits on something and uses no CPU at all."""
        hung = time.monotonic() + HUNG_SECONDS
        while time.monotonic() < hung:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.cpu_seconds() > timeout:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"server not ready after {self.cpu_seconds():.1f}s of CPU:\n{self.output()}"
        )

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


TOKEN = re.compile(r"Admin token \(shown once, keep it safe\): (dfu_\S+)")


def first_run_token(server: Served) -> str:
    found = TOKEN.search(server.output())
    assert found, server.output()
    return found.group(1)
