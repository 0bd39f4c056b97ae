"""The examples in examples/ run as a user would run them, against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.kernel.settings import Settings
from tests.e2e.server import ROOT, Served, first_run_token, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def run_example(script: str, served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    token = first_run_token(served)
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DESKFLEET_URL": f"{served.url}/graphql", "DESKFLEET_TOKEN": token},
    )


def test_register_and_list(served: Served) -> None:
    result = run_example("register_and_list.py", served, "example-bot")

    assert result.returncode == 0, result.stderr
    assert "machine key (shown once): dfm_" in result.stdout
    assert "example-bot" in result.stdout and "CONNECTED" in result.stdout
    assert "1 machine(s)" in result.stdout


def test_group_share_maintenance(served: Served) -> None:
    result = run_example("group_share_maintenance.py", served, "--machines", "3")

    assert result.returncode == 0, result.stderr
    assert "(3 in the group)" in result.stdout
    assert "shared the group with user" in result.stdout
    assert "toggle is locked meanwhile: RuleViolationError GROUP_IN_MAINTENANCE" in result.stdout
    assert "maintenance=True drained=True machines=3" in result.stdout
    assert result.stdout.count("(from group: True, toggle lock: GROUP_IN_MAINTENANCE)") == 3
    assert "Demo Operator        USER" in result.stdout


@pytest.mark.rule("R39")
def test_query_cost(served: Served) -> None:
    result = run_example("query_cost.py", served)
    refused = run_example(
        "query_cost.py",
        served,
        "{ machines(first: 100) { nodes { id accessList { user { email } } } } }",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "requested cost: 41" in result.stdout  # 1 + 20 machines * (1 + their group)
    restore = Settings().cost_restore_rate  # the default: tests only enlarge the bucket
    assert f"points left, restoring {restore:g} a second" in result.stdout
    assert refused.returncode == 1
    assert "error QUERY_TOO_COSTLY: the operation costs 2101" in refused.stdout


@pytest.mark.rule("R35")
def test_one_socket_carries_every_subscription(tmp_path: Path) -> None:
    """With one websocket allowed per user, the example still follows three subscriptions: they
    share its one socket."""
    server = Served(tmp_path, env={"DESKFLEET_WS_MAX_CONNECTIONS_PER_USER": "1"})
    try:
        server.wait_ready()
        result = run_example("one_socket.py", server, "--count", "3")
    finally:
        server.stop()

    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "fleet: snapshot, 0 item(s), 0 gone",
        "recommendations: snapshot, 0 item(s), 0 gone",
        "runs: snapshot, 0 item(s), 0 gone",
    ]


def test_persisted_query(served: Served) -> None:
    first = run_example("persisted_query.py", served)
    again = run_example("persisted_query.py", served)

    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.splitlines() == [
        "the server did not know the hash: sending the document once",
        "machines: 0",
        "by hash over GET: 0 machines",
    ]
    assert again.stdout.splitlines() == ["machines: 0", "by hash over GET: 0 machines"]


@pytest.mark.rule("R40")
def test_retry_policy(served: Served) -> None:
    result = run_example("retry_policy.py", served)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "retrying FAILED APP_NOT_RESPONDING, after 2 s" in lines[0], lines[0]
    assert any("(attempt 1): FAILED [APP_NOT_RESPONDING]" in line for line in lines)
    assert any("(attempt 2): QUEUED, retries" in line and "RETRY_DELAY" in line for line in lines)
    assert any("(attempt 2): SUCCEEDED" in line for line in lines)
    assert any("RUN_ALREADY_RETRIED" in line for line in lines)
    assert any("by hand: run" in line and "(attempt 3)" in line for line in lines)


@pytest.mark.rule("R43")
def test_webhook_receiver(tmp_path: Path) -> None:
    """The receiver subscribes itself, verifies the ping's signature and prints it."""
    server = Served(tmp_path, env={"DESKFLEET_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]'})
    try:
        server.wait_ready()
        port = str(free_port())
        result = run_example(
            "webhook_receiver.py",
            server,
            *("--port", port, "--subscribe", "RUN_FINISHED", "--count", "1"),
        )
    finally:
        server.stop()

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"listening on http://127.0.0.1:{port}/hooks"
    assert lines[1].startswith("endpoint ") and lines[1].endswith(" for RUN_FINISHED")
    assert lines[2].startswith("webhook.ping  ")
    assert "refused" not in result.stdout
