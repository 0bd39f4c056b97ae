"""examples/fix_session_lock.py runs as a user would run it, against a live server (R31-R36)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.server import ROOT

pytestmark = pytest.mark.e2e


@pytest.mark.rule("R34")
def test_fix_session_lock_example(deskfleet_server: Callable[..., LiveServer]) -> None:
    server = deskfleet_server()

    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fix_session_lock.py"), "lock-example"],
        capture_output=True,
        text=True,
        timeout=90,
        env={
            **os.environ,
            "DESKFLEET_URL": f"{server.url}/graphql",
            "DESKFLEET_TOKEN": server.admin_token,
        },
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "recommendation raised:" in out
    assert '"Desktop flows not running" OPEN' in out
    assert "CONTOSO\\robot is LOCKED -> BLOCKED" in out
    assert "runtime: END_SESSION for CONTOSO\\robot" in out
    assert '"Desktop flows not running" RESOLVED' in out
    assert "-> STARTED (disconnect requested)" in out
    assert "is DISPATCHED on lock-example" in out or "is RUNNING on lock-example" in out
