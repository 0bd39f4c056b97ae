"""Given-steps for the browser tests: a fleet seeded through the public GraphQL API,
and Debian's headless Chromium driven by Playwright (never a downloaded browser).

tests/e2e/conftest.py makes the ``browser`` and ``page`` fixtures from :func:`launch_browser` and
:func:`open_page`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.server import ROOT
from tests.graphql import (
    ASSIGN_ROLE,
    CREATE_USER,
    GOOD_EDITION,
    GOOD_RUNTIME,
    ISSUE_TOKEN,
    REGISTER_MACHINE,
)
from tests.npm_packages import installed
from tests.runs_given import (
    ADD_TO_GROUP,
    ALLOCATE,
    ASSIGNMENTS,
    CONFIRM,
    CREATE_CONNECTION,
    CREATE_FLOW,
    CREATE_GROUP,
    FINISH,
    HEARTBEAT,
    MACHINE_QUEUE,
    PASSWORD,
    TRIGGER_RUN,
    UPDATE_ENVIRONMENT,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
AXE_PACKAGES = ROOT / "tests" / "e2e" / "axe"
AXE = AXE_PACKAGES / "node_modules" / "axe-core" / "axe.min.js"
LAPTOP = {"width": 1366, "height": 768}
LOCKED_USER = r"CONTOSO\robot"
WAIT_MS = 15_000

SHARE_MACHINE = """
mutation($input: ShareMachineInput!) {
  shareMachine(input: $input) { __typename ... on UserError { code message } }
}"""
DEACTIVATE = """
mutation($id: ID!) { deactivateUser(id: $id) { __typename ... on UserError { code message } } }"""
COMMANDS = "{ machineCommands { id kind username } }"
COMPLETE = "mutation($id: ID!) { completeMachineCommand(id: $id) { __typename } }"


# --- a seeded fleet, made through the API -------------------------------------------------------


@dataclass
class SeededFleet:
    server: LiveServer
    environment_id: str = ""
    machines: dict[str, str] = field(default_factory=dict)  # name -> id
    keys: dict[str, str] = field(default_factory=dict)  # name -> machine key
    queued: dict[str, str] = field(default_factory=dict)  # flow name -> run id on queue-box
    flows: dict[str, str] = field(default_factory=dict)  # flow name -> id
    connections: dict[str, str] = field(default_factory=dict)  # machine name -> connection id
    group_id: str = ""
    locked_run: str = ""
    lock_recommendation_user: str = ""

    def call(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        data = self.server.graphql(query, token=token, variables=variables)
        result = next(iter(data.values()))
        assert not (isinstance(result, dict) and "code" in result), result
        return result

    def register(
        self, name: str, description: str = "", bots: int = 0, token: str | None = None
    ) -> str:
        machine = self.call(
            REGISTER_MACHINE,
            token=token,
            input={
                "environmentId": self.environment_id,
                "name": name,
                "description": description,
                "runtimeVersion": GOOD_RUNTIME,
                "osEdition": GOOD_EDITION,
            },
        )
        self.machines[name] = machine["machine"]["id"]
        self.keys[name] = machine["machineKey"]
        if bots:
            self.call(ALLOCATE, machineId=self.machines[name], count=bots)
        return self.machines[name]

    def heartbeat(self, name: str, sessions: dict[str, str] | None = None) -> None:
        beat: dict[str, Any] = {"runtimeVersion": GOOD_RUNTIME, "osEdition": GOOD_EDITION}
        if sessions is not None:
            beat["sessions"] = [{"username": u, "state": s} for u, s in sessions.items()]
        self.call(HEARTBEAT, token=self.keys[name], input=beat)

    def connection(self, name: str, windows_user: str = r"CONTOSO\svc") -> str:
        made = self.call(
            CREATE_CONNECTION,
            input={
                "name": f"{name} as {windows_user}",
                "machineId": self.machines[name],
                "windowsUsername": windows_user,
                "password": PASSWORD,
            },
        )
        self.connections[name] = made["connection"]["id"]
        return made["connection"]["id"]

    def flow(self, name: str) -> str:
        made = self.call(CREATE_FLOW, input={"environmentId": self.environment_id, "name": name})
        self.flows[name] = made["flow"]["id"]
        return made["flow"]["id"]

    def trigger(self, flow_id: str, connection_id: str) -> str:
        run = self.call(
            TRIGGER_RUN,
            input={"flowId": flow_id, "connectionId": connection_id, "mode": "UNATTENDED"},
        )["run"]
        return run["id"]

    def run_to_end(
        self, machine: str, outcome: str = "SUCCEEDED", **report: str
    ) -> list[dict[str, Any]]:
        """The machine runtime's side: take what was dispatched to ``machine``, start it, end it
        with ``outcome`` (the server's dispatcher gives the runs out)."""
        key = self.keys[machine]
        deadline = time.monotonic() + WAIT_MS / 1000
        while not (given := self.call(ASSIGNMENTS, token=key)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert given, f"nothing was dispatched to {machine}"
        ended = []
        for assignment in given:
            ids = {"runId": assignment["runId"], "attempt": assignment["attempt"]}
            self.call(CONFIRM, token=key, **ids)
            finished = {**ids, "outcome": outcome, **report}
            ended.append(self.call(FINISH, token=key, input=finished)["run"])
        return ended

    def queue_order(self, machine: str) -> list[str]:
        data = self.server.graphql(MACHINE_QUEUE, variables={"id": self.machines[machine]})
        return [entry["run"]["id"] for entry in data["machineQueue"]]


def seed(server: LiveServer) -> SeededFleet:
    fleet = SeededFleet(server)
    envs = server.graphql("{ environments { id name } }")["environments"]
    fleet.environment_id = next(e["id"] for e in envs if e["name"] == "Default")
    fleet.call(
        UPDATE_ENVIRONMENT,
        input={"id": fleet.environment_id, "sessionRecommendations": True, "unattendedCapacity": 4},
    )

    group = fleet.group_id = fleet.call(
        CREATE_GROUP,
        input={
            "environmentId": fleet.environment_id,
            "name": "Finance",
            "description": "Month-end robots",
        },
    )["group"]["id"]
    maria = fleet.call(
        CREATE_USER, input={"displayName": "Maria Maker", "email": "maria@example.test"}
    )["user"]["id"]
    fleet.call(
        ASSIGN_ROLE,
        input={"environmentId": fleet.environment_id, "userId": maria, "role": "ENVIRONMENT_MAKER"},
    )
    maria_token = fleet.call(ISSUE_TOKEN, name="dashboard test", userId=maria)["secret"]
    for name, description in (("finance-01", "Invoices"), ("finance-02", "Payroll")):
        fleet.register(name, description, token=maria_token)
        fleet.call(ADD_TO_GROUP, g=group, m=fleet.machines[name])
        fleet.heartbeat(name)
    fleet.register("hr-01", "Onboarding desk")
    fleet.heartbeat("hr-01")

    # R15: hr-01 is shared with a user who is then deactivated.
    dana = fleet.call(
        CREATE_USER, input={"displayName": "Dana Departed", "email": "dana@example.test"}
    )["user"]["id"]
    fleet.call(
        ASSIGN_ROLE,
        input={"environmentId": fleet.environment_id, "userId": dana, "role": "MACHINE_USER"},
    )
    fleet.call(
        SHARE_MACHINE,
        input={"machineId": fleet.machines["hr-01"], "userId": dana, "access": "USER"},
    )
    fleet.call(DEACTIVATE, id=dana)

    # A machine that never sent a heartbeat: its runs wait (R29), in order (R25).
    fleet.register("queue-box", "Backlog machine", bots=1)
    to_queue = fleet.connection("queue-box")
    for flow_name in ("Invoices", "Payroll", "Reports"):
        fleet.queued[flow_name] = fleet.trigger(fleet.flow(flow_name), to_queue)

    # R32: a locked session blocks an unattended run: "Desktop flows not running".
    fleet.register("lock-box", "Locked robot", bots=1)
    fleet.heartbeat("lock-box", {LOCKED_USER: "LOCKED"})
    fleet.locked_run = fleet.trigger(
        fleet.flow("Month-end close"), fleet.connection("lock-box", LOCKED_USER)
    )
    return fleet


# --- the browser -------------------------------------------------------------------------------


def launch_browser() -> Iterator[Any]:
    """For a module-scoped ``browser`` fixture: ``yield from launch_browser()``."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Page:
    """A page on the dashboard, recording console errors and uncaught exceptions."""

    page: Any
    errors: list[str]

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


def open_page(browser: Any) -> Iterator[Page]:
    """For a ``page`` fixture: ``yield from open_page(browser)``."""
    context = browser.new_context(viewport=LAPTOP)
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    opened.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
    opened.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    try:
        yield Page(opened, errors)
    finally:
        context.close()


def sign_in(page: Any, server: LiveServer, token: str, landing: str = "Machines") -> None:
    page.goto(server.url + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=landing, level=1).wait_for()


def serious_accessibility_violations(page: Any) -> list[str]:
    """axe-core's scan of the page as it is: its serious and critical violations (none wanted).
    axe-core comes from tests/e2e/axe (installed on first use), injected by the test only."""
    installed(AXE_PACKAGES)
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)"""
    )
    return list(found)
