"""`deskfleet serve` raises its open-files limit (RLIMIT_NOFILE) to the hard limit at start, and
says so; where the hard limit leaves too little room for the planned connections it warns, once,
and serves anyway. The limits are set in the real server process before it starts."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from deskfleet.limits import RESERVED_FILES
from tests.e2e.server import Served

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/<pid>/limits"),
]


def limited(soft: int, hard: int) -> Callable[[], None]:
    """A preexec_fn: the child starts with these limits."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


def open_files_limits(pid: int) -> tuple[int, int]:
    """(soft, hard) of a running process, as the kernel reports them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no 'Max open files' in /proc/<pid>/limits")


def lines_with(output: str, text: str) -> list[str]:
    return [line for line in output.splitlines() if text in line]


def test_serve_raises_its_soft_limit_to_the_hard_limit(tmp_path: Path) -> None:
    ours = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = 4096 if ours == resource.RLIM_INFINITY else min(ours, 4096)
    soft = hard // 4
    server = Served(
        tmp_path,
        env={"DESKFLEET_PLANNED_CONNECTIONS": str(hard // 2)},
        preexec_fn=limited(soft, hard),
    )
    try:
        server.wait_ready()
        assert open_files_limits(server.process.pid) == (hard, hard)
    finally:
        server.stop()
    output = server.output()
    assert lines_with(
        output, f"INFO deskfleet.limits open-files limit {hard} (started with {soft},"
    )
    assert not lines_with(output, "WARNING deskfleet.limits"), output


def test_serve_warns_once_when_the_hard_limit_is_too_low_and_still_serves(tmp_path: Path) -> None:
    planned = {"DESKFLEET_PLANNED_CONNECTIONS": "1000"}
    server = Served(tmp_path, env=planned, preexec_fn=limited(256, 256))
    try:
        server.wait_ready()
        assert open_files_limits(server.process.pid) == (256, 256)
        assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}
    finally:
        server.stop()
    warned = lines_with(server.output(), "WARNING deskfleet.limits")
    assert len(warned) == 1, server.output()
    assert "open-files limit is 256" in warned[0]
    assert f"room for about {256 - RESERVED_FILES} connections" in warned[0]
    assert "fewer than the 1000 planned (DESKFLEET_PLANNED_CONNECTIONS)" in warned[0]
    needed = 1000 + RESERVED_FILES
    assert f"`ulimit -n {needed}`" in warned[0] and f"LimitNOFILE={needed}" in warned[0]
