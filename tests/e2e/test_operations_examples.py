"""The examples a frontend team copies, run against a live server:

- every operation in examples/operations/*.graphql validates against the schema and executes
  (queries and mutations over HTTP, subscriptions over graphql-transport-ws) on a seeded fleet;
- the `gql` clients examples/list_machines.py and examples/trigger_and_follow.py run as a user
  would run them;
- the browser snippet examples/browser/watch_fleet.html (the graphql-ws client) runs in headless
  Chromium, served from the server's origin, and follows a change made by another client.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from graphql import OperationDefinitionNode, OperationType, parse, validate

from api.schema import schema
from tests.e2e.conftest import LiveServer
from tests.e2e.dashboard_given import (
    LOCKED_USER,
    Page,
    SeededFleet,
    seed,
)
from tests.e2e.server import ROOT
from tests.runs_given import MACHINE_MAINTENANCE

pytestmark = pytest.mark.e2e

OPERATIONS = ROOT / "examples" / "operations"
BROWSER_EXAMPLE = ROOT / "examples" / "browser"


def documents() -> dict[str, tuple[Path, OperationDefinitionNode]]:
    """Operation name -> (its file, its definition)."""
    found: dict[str, tuple[Path, OperationDefinitionNode]] = {}
    for path in sorted(OPERATIONS.glob("*.graphql")):
        for definition in parse(path.read_text()).definitions:
            assert isinstance(definition, OperationDefinitionNode), path
            assert definition.name, f"an unnamed operation in {path.name}"
            assert definition.name.value not in found, f"{definition.name.value} twice"
            found[definition.name.value] = (path, definition)
    return found


def test_every_operation_validates_against_the_schema() -> None:
    ops = documents()
    assert {path.name for path, _ in ops.values()} == {
        "machines.graphql",
        "watch_fleet.graphql",
        "runs.graphql",
        "session_lock.graphql",
        "statistics.graphql",
    }
    for path in sorted(OPERATIONS.glob("*.graphql")):
        errors = validate(schema._schema, parse(path.read_text()))
        assert errors == [], (path.name, errors)


# --- execute them ------------------------------------------------------------------------------


class Operations:
    """Runs the example files' operations by name, remembering which ran."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.ops = documents()
        self.ran: set[str] = set()

    def _text(self, name: str) -> str:
        return self.ops[name][0].read_text()

    def run(self, name: str, token: str | None = None, **variables: Any) -> Any:
        _, definition = self.ops[name]
        assert definition.operation != OperationType.SUBSCRIPTION
        response = httpx.post(
            f"{self.server.url}/graphql",
            json={"query": self._text(name), "variables": variables, "operationName": name},
            headers={"Authorization": f"Bearer {token or self.server.admin_token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), (name, body["errors"])
        self.ran.add(name)
        result = next(iter(body["data"].values()))
        if isinstance(result, dict) and "__typename" in result:
            assert "code" not in result, (name, result)  # not a UserError
        return result

    async def first(
        self, name: str, until: Callable[[Any], bool] = lambda _: True, **variables: Any
    ) -> Any:
        """Subscribe; the first message for which ``until`` holds (within 15 s)."""
        _, definition = self.ops[name]
        assert definition.operation == OperationType.SUBSCRIPTION
        transport = WebsocketsTransport(
            url=self.server.ws_url,
            init_payload={"Authorization": f"Bearer {self.server.admin_token}"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        request = GraphQLRequest(self._text(name), variable_values=variables, operation_name=name)

        async def wait() -> Any:
            async with Client(transport=transport) as session:
                async for message in session.subscribe(request):
                    result = next(iter(message.values()))
                    if until(result):
                        return result
            raise AssertionError(f"{name} ended")

        found = await asyncio.wait_for(wait(), 15)
        self.ran.add(name)
        return found


@pytest.mark.rule("R8")
@pytest.mark.rule("R25")
@pytest.mark.rule("R34")
@pytest.mark.rule("R35")
async def test_every_operation_executes_on_a_live_server(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server()
    fleet: SeededFleet = seed(server)
    ops = Operations(server)

    # List and filter machines.
    found = ops.run("Machines", first=10, filter={"text": "FINANCE", "status": "CONNECTED"})
    assert [m["name"] for m in found["nodes"]] == ["finance-01", "finance-02"]
    groups = ops.run("MachineGroups")["nodes"]
    assert [(g["name"], g["machineCount"]) for g in groups] == [("Finance", 2)]
    in_group = ops.run("Machines", filter={"groupId": groups[0]["id"]})
    assert in_group["totalCount"] == 2
    hr = ops.run("Machine", id=fleet.machines["hr-01"])
    assert hr["hasDeactivatedShares"] is True
    assert [e["deactivated"] for e in hr["accessList"]].count(True) == 1
    on = ops.run("SetMachineMaintenance", id=fleet.machines["hr-01"], enabled=True)
    assert on["machine"] == {"id": fleet.machines["hr-01"], "maintenance": True, "drained": True}
    assert ops.run("Machines", filter={"maintenance": True})["totalCount"] == 1

    # Watch the fleet.
    snapshot = await ops.first("WatchFleet")
    assert snapshot["snapshot"] is True
    assert {m["name"] for m in snapshot["machines"]} == set(fleet.machines)
    depth = await ops.first("WatchQueueDepth", machineId=fleet.machines["queue-box"])
    assert depth["depth"] == 3

    # Trigger and follow a run; work a queue.
    queue = ops.run("MachineQueue", machineId=fleet.machines["queue-box"])
    assert [e["position"] for e in queue] == [1, 2, 3]
    assert queue[0]["waitReason"] == "MACHINE_OFFLINE"
    moved = ops.run("MoveRunToTop", id=fleet.queued["Reports"])
    assert moved["run"]["queuePosition"] == 1
    raised = ops.run("ChangeRunPriority", id=fleet.queued["Payroll"], priority="HIGH")
    assert raised["run"]["priority"] == "HIGH"
    cancelled = ops.run("CancelRun", id=fleet.queued["Invoices"])
    assert cancelled["run"]["status"] == "CANCELLED"
    triggered = ops.run(
        "TriggerRun",
        input={
            "flowId": fleet.flows["Invoices"],
            "connectionId": fleet.connections["queue-box"],
            "mode": "UNATTENDED",
            "priority": "HIGH",
        },
    )
    run_id = triggered["run"]["id"]
    assert triggered["run"]["status"] == "QUEUED"
    followed = await ops.first("FollowRun", runId=run_id)
    assert followed["snapshot"] is True
    assert [(r["id"], r["status"], r["waitReason"]) for r in followed["runs"]] == [
        (run_id, "QUEUED", "MACHINE_OFFLINE")
    ]
    # R25: after the run moved to the top and the older HIGH one.
    assert ops.run("Run", id=run_id)["queuePosition"] == 3

    # Fix a session-lock recommendation.
    watched = await ops.first(
        "WatchRecommendations",
        until=lambda update: any(
            a["runId"] == fleet.locked_run
            for rec in update["recommendations"]
            for a in rec["affectedRuns"]
        ),
        environmentId=fleet.environment_id,
    )
    (rec,) = watched["recommendations"]
    assert rec["title"] == "Desktop flows not running"
    assert [(r["username"], r["sessionState"]) for r in rec["runs"]] == [(LOCKED_USER, "LOCKED")]
    listed = ops.run("Recommendations")
    assert [r["id"] for r in listed] == [rec["id"]]
    asked = ops.run("DisconnectSessionUsers", id=rec["id"], runIds=[fleet.locked_run])
    assert asked["recommendation"]["runs"][0]["disconnectRequestedAt"]
    refreshed = ops.run("RefreshSessionRecommendation", id=rec["id"])
    assert refreshed["recommendation"]["status"] == "OPEN"

    # An environment's trends (docs/api.md, "Fleet statistics").
    (environment,) = [e for e in ops.run("Environments") if e["id"] == fleet.environment_id]
    now = datetime.now(UTC)
    trends = ops.run(
        "FleetStatistics",
        environmentId=environment["id"],
        **{"from": (now - timedelta(hours=2)).isoformat()},
        to=now.isoformat(),
        bucket="HOUR",
    )
    assert trends["__typename"] == "FleetStatistics" and len(trends["buckets"]) in (2, 3)
    assert {m["name"] for m in trends["machines"]} <= set(fleet.machines)

    assert ops.ran == set(ops.ops), f"not run: {set(ops.ops) - ops.ran}"


# --- the gql clients ---------------------------------------------------------------------------


def run_example(server: LiveServer, script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "DESKFLEET_URL": f"{server.url}/graphql",
            "DESKFLEET_TOKEN": server.admin_token,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.rule("R8")
@pytest.mark.rule("R28")
@pytest.mark.rule("R46")
def test_the_gql_clients_list_filter_trigger_and_follow(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    fleet.call(MACHINE_MAINTENANCE, id=fleet.machines["hr-01"], on=True)

    trends = run_example(server, "fleet_statistics.py", "--hours", "3")
    assert "Default: " in trends and "busiest machines" in trends

    everything = run_example(server, "list_machines.py")
    assert "5 machine(s) match no filter" in everything
    finance = run_example(server, "list_machines.py", "--group", "finance", "--status", "CONNECTED")
    assert [line.split()[0] for line in finance.splitlines()[:-1]] == ["finance-01", "finance-02"]
    assert "Maria Maker" in finance
    maintenance = run_example(server, "list_machines.py", "--maintenance", "on")
    assert maintenance.splitlines()[0].startswith("hr-01")
    assert maintenance.splitlines()[0].endswith("[maintenance, drained]")
    assert "1 machine(s) match" in maintenance
    fleet.call(
        "mutation($input: UpdateEnvironmentInput!) { updateEnvironment(input: $input) { "
        "__typename } }",
        input={"id": fleet.environment_id, "minRuntimeVersion": "99.0"},
    )
    must_update = run_example(server, "list_machines.py", "--must-update")
    assert "5 machine(s) match" in must_update
    assert all(line.endswith("[must update]") for line in must_update.splitlines()[:-1])
    fleet.call(
        "mutation($input: UpdateEnvironmentInput!) { updateEnvironment(input: $input) { "
        "__typename } }",
        input={"id": fleet.environment_id, "minRuntimeVersion": ""},
    )

    followed = run_example(server, "trigger_and_follow.py", "--machine", "follow-demo")
    lines = followed.splitlines()
    statuses = [line.split(": ")[1].split()[0] for line in lines if line.startswith("run ")]
    assert statuses[-2:] == ["RUNNING", "SUCCEEDED"], followed
    assert set(statuses) <= {"QUEUED", "DISPATCHED", "RUNNING", "SUCCEEDED"}
    assert "SUCCEEDED on follow-demo" in lines[-1]

    # R46: the same idempotency key again follows the run it queued; nothing new is queued.
    triggered = next(line for line in lines if line.startswith("triggered run "))
    run_id, key = triggered.split()[2], triggered.split()[-1].rstrip(")")
    run = fleet.call(
        "query($id: ID!) { run(id: $id) { flow { id } connection { id } } }", id=run_id
    )
    again = run_example(
        server,
        "trigger_and_follow.py",
        *("--flow-id", run["flow"]["id"], "--connection-id", run["connection"]["id"]),
        *("--idempotency-key", key),
    ).splitlines()
    assert again[0] == triggered
    assert again[-1].startswith(f"run {run_id[:8]}: SUCCEEDED")
    counted = fleet.call(
        "query($c: ID!) { flowRuns(first: 1, filter: {connectionId: $c}) { totalCount } }",
        c=run["connection"]["id"],
    )
    assert counted["totalCount"] == 1


# --- the browser snippet -----------------------------------------------------------------------


def serve_file(path: Path) -> Callable[[Any], None]:
    kind = "text/html" if path.suffix == ".html" else "text/javascript"
    return lambda route: route.fulfill(body=path.read_text(), content_type=kind)


@pytest.mark.rule("R35")
@pytest.mark.rule("R36")
def test_the_browser_snippet_watches_the_fleet(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    p = page.page
    # Served from the server's origin, as the snippet's comment asks: the page opens a document
    # of DeskFleet's own (so Chromium sees a 127.0.0.1 page, not a made-up one whose websocket to
    # a local address its local-network checks would block), puts the snippet in it, and gets
    # ./watch_fleet.js from examples/browser; the graphql-ws module comes from the server.
    p.route(f"{server.url}/watch_fleet.js", serve_file(BROWSER_EXAMPLE / "watch_fleet.js"))
    p.goto(f"{server.url}/healthz")
    p.set_content((BROWSER_EXAMPLE / "watch_fleet.html").read_text())
    p.get_by_label("API token").fill(server.admin_token)
    p.get_by_role("button", name="Watch").click()
    p.get_by_text("Snapshot: 5 machine(s)").wait_for()
    row = p.locator('tr[data-machine="finance-02"]')
    assert row.locator("td").all_inner_texts()[:3] == ["finance-02", "CONNECTED", "off"]

    fleet.call(MACHINE_MAINTENANCE, id=fleet.machines["finance-02"], on=True)  # another client
    p.wait_for_function(
        "document.querySelector('tr[data-machine=\"finance-02\"]').cells[2].textContent"
        " == 'on, drained'"
    )
    assert p.get_by_text("Change: 5 machine(s)").is_visible()
    assert page.errors == []
