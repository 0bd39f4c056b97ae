"""Server processes for the benchmarks: DeskFleet itself and the bare baselines, same uvicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
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


def cores() -> tuple[int | None, int | None]:
    """The core for the server under test and the core for the load generator, one each when this
    process may use two or more; (None, None) otherwise.

    Left to the scheduler, the server and wrk shared one core now and then while the other sat
    idle: on two cores a 3-second window's throughput then swung between ~1,800 and ~3,400
    requests/s for the same server, and so did the figures. Pinned, the same server kept within
    ~10%.
    """
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(usable) < 2:
        return None, None
    return usable[0], usable[1]


def on_core(core: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that keeps the child, and every thread it starts, on ``core``."""
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


class Server:
    """A uvicorn process on 127.0.0.1, started with the same options for subject and baseline,
    on ``core`` if given (see :func:`cores`)."""

    def __init__(
        self,
        args: list[str],
        workdir: Path,
        env: dict[str, str] | None = None,
        core: int | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, *args, "--port", str(self.port)],
                cwd=workdir,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**child_env(), **(env or {})},
                preexec_fn=on_core(core),
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


# One client at full speed for a throughput figure: its cost bucket (R39) never runs dry.
UNTHROTTLED = {"DESKFLEET_COST_BUCKET_SIZE": "1e12", "DESKFLEET_COST_RESTORE_RATE": "1e12"}


def deskfleet(
    workdir: Path,
    database_url: str,
    core: int | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    return Server(
        ["-m", "deskfleet.cli", "serve", "--no-access-log"],
        workdir,
        env={
            "DESKFLEET_DATABASE_URL": database_url,
            "DESKFLEET_PRODUCTION": "true",
            **(env or {}),
        },
        core=core,
    )


def baseline(workdir: Path, core: int | None = None) -> Server:
    return Server(["-m", "bench.baseline"], workdir, core=core)
