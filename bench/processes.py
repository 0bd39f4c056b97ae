"""Server processes for the benchmarks: DeskFleet itself and the bare baselines, same uvicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    """The environment of every process the benchmarks start: this checkout on the path."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


class Server:
    """A uvicorn process on 127.0.0.1, started with the same options for subject and baseline."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        self.process = subprocess.Popen(
            [sys.executable, *args, "--port", str(self.port)],
            cwd=workdir,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env={**child_env(), **(env or {})},
        )

    def wait_ready(self, path: str = "/healthz", timeout: float = 60) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready:\n{self.log.read_text()}")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def deskfleet(workdir: Path, database_url: str) -> Server:
    return Server(
        ["-m", "api.cli", "serve", "--no-access-log"],
        workdir,
        env={"DESKFLEET_DATABASE_URL": database_url, "DESKFLEET_PRODUCTION": "true"},
    )


def baseline(workdir: Path) -> Server:
    return Server(["-m", "bench.baseline"], workdir)
