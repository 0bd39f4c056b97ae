"""Schemathesis in GraphQL mode against a live `deskfleet serve`: every query and
mutation with generated arguments, authenticated as an administrator, a bounded number of cases
each (DESKFLEET_FUZZ_EXAMPLES, 5 by default; CI keeps it small). Nothing may answer 5xx, nothing
may leak a traceback or an unmasked internal error, and the fleet's invariants hold afterwards."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("DESKFLEET_FUZZ_EXAMPLES", "5"))
# Subscriptions are not HTTP operations; schemathesis generates queries and mutations.


def test_no_operation_fails_or_leaks_under_generated_input(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server()
    auth = {"Authorization": f"Bearer {server.admin_token}"}
    schema = schemathesis.graphql.from_url(f"{server.url}/graphql", headers=auth, timeout=30)
    failures: list[str] = []
    calls = 0

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers=auth, timeout=30)
            text = response.text
            if response.status_code >= 500 or "Traceback" in text:
                failures.append(f"{case.operation.label}: {response.status_code} {text[:300]}")
                return
            if response.status_code != 200:  # 400/413: refused before execution, clearly
                return
            for error in response.json().get("errors") or []:
                if error.get("message") == "Unexpected error.":
                    failures.append(f"{case.operation.label}: masked internal error {case.body}")

        check()

    log = server.served.output()
    assert calls > 0
    assert not failures, "\n".join(failures[:20])
    assert "unexpected error" not in log, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    check_invariants(Path(server.served.log).parent / "deskfleet.db")


def check_invariants(database: Path) -> None:
    """Counts never negative, groups never over 50, a run in exactly one known state."""
    with sqlite3.connect(database) as db:
        over_full = db.execute(
            "SELECT group_id, COUNT(*) FROM machines WHERE group_id IS NOT NULL "
            "GROUP BY group_id HAVING COUNT(*) > 50"
        ).fetchall()
        negative = db.execute(
            "SELECT id FROM machines WHERE unattended_bots < 0 "
            "UNION ALL SELECT id FROM environments WHERE unattended_capacity < 0 "
            "OR max_queue_seconds <= 0"
        ).fetchall()
        states = {s for (s,) in db.execute("SELECT DISTINCT status FROM flow_runs")}
    assert over_full == []
    assert negative == []
    assert states <= {
        "QUEUED",
        "DISPATCHED",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
        "TIMED_OUT",
    }
