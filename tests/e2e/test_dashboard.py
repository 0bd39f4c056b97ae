"""The dashboard at `/` in a real headless Chromium (Debian's `chromium`, driven by Playwright),
against a real `deskfleet serve` seeded through the public GraphQL API (issue 10).

A second client (GraphQL over HTTP, as another operator or a script would) changes the fleet
while the page is open; the page must follow over its `graphql-transport-ws` subscriptions without
a reload. Every browser console error and uncaught page error fails the test. Screenshots go to
``artifacts/`` (git-ignored; CI keeps the folder as its artefact).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
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
from tests.runs_given import (
    ADD_TO_GROUP,
    ALLOCATE,
    CREATE_CONNECTION,
    CREATE_FLOW,
    CREATE_GROUP,
    HEARTBEAT,
    MACHINE_MAINTENANCE,
    MACHINE_QUEUE,
    PASSWORD,
    TRIGGER_RUN,
    UPDATE_ENVIRONMENT,
)

pytestmark = pytest.mark.e2e

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
    locked_run: str = ""

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
        return made["connection"]["id"]

    def flow(self, name: str) -> str:
        made = self.call(CREATE_FLOW, input={"environmentId": self.environment_id, "name": name})
        return made["flow"]["id"]

    def trigger(self, flow_id: str, connection_id: str) -> str:
        run = self.call(
            TRIGGER_RUN,
            input={"flowId": flow_id, "connectionId": connection_id, "mode": "UNATTENDED"},
        )["run"]
        return run["id"]

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

    group = fleet.call(
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
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


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
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


def sign_in(page: Any, server: LiveServer, token: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Machines", level=1).wait_for()


def machine_row(page: Any, name: str) -> Any:
    return page.locator(f'#machines tr[data-machine="{name}"]')


def unlabelled_controls(page: Any) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, button')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.textContent.trim())
            .map(e => e.outerHTML)"""
    )


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.rule("R8")
@pytest.mark.rule("R19")
@pytest.mark.rule("R25")
@pytest.mark.rule("R34")
@pytest.mark.rule("R35")
def test_dashboard_in_a_real_browser(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    p = page.page

    # Sign in; the token is kept for this tab only.
    sign_in(p, server, server.admin_token)
    assert p.evaluate("sessionStorage.getItem('deskfleet.token')") == server.admin_token

    # R8: the seeded fleet with its columns.
    for name in fleet.machines:
        machine_row(p, name).wait_for()
    headers = p.locator("#machines thead th").all_inner_texts()
    assert headers == [
        "Name",
        "Description",
        "Version",
        "Group",
        "Status",
        "Flows running",
        "Flows queued",
        "Access",
        "Owner",
    ]
    finance = machine_row(p, "finance-01").locator("td").all_inner_texts()
    assert finance[:4] == ["Invoices", GOOD_RUNTIME, "Finance", "Connected"]
    assert finance[4:] == ["0", "0", "Administrator", "Maria Maker"]  # an admin's access (R13)
    queue_box = machine_row(p, "queue-box").locator("td").all_inner_texts()
    assert queue_box[3] == "Disconnected" and queue_box[5] == "3"  # 3 flows queued
    assert machine_row(p, "hr-01").get_by_text("Deactivated share").is_visible()  # R15
    assert unlabelled_controls(p) == []

    # Filters: text (typed from the keyboard), group, status, maintenance.
    p.get_by_label("Search").press_sequentially("finance")
    p.wait_for_function("document.querySelectorAll('#machines tbody tr[data-machine]').length == 2")
    p.get_by_label("Search").fill("")
    p.get_by_label("Status").select_option("DISCONNECTED")
    p.wait_for_function(
        "[...document.querySelectorAll('#machines tbody tr[data-machine]')]"
        ".map(r => r.dataset.machine).join() == 'queue-box'"
    )
    p.get_by_label("Status").select_option("")
    p.get_by_label("Group").select_option(label="Finance")
    p.wait_for_function("document.querySelectorAll('#machines tbody tr[data-machine]').length == 2")
    p.get_by_label("Group").select_option("")
    for name in fleet.machines:
        machine_row(p, name).wait_for()

    # R19/R35: a second client puts hr-01 in maintenance: the red pictogram appears, no reload.
    p.evaluate("window.__stillTheSamePage = true")
    assert machine_row(p, "hr-01").locator(".maintenance-icon").count() == 0
    fleet.call(MACHINE_MAINTENANCE, id=fleet.machines["hr-01"], on=True)
    icon = machine_row(p, "hr-01").locator(".maintenance-icon")
    icon.wait_for()
    assert icon.get_attribute("aria-label") == "In maintenance, drained"
    assert p.evaluate("window.__stillTheSamePage") is True
    p.get_by_label("Maintenance", exact=True).select_option("on")
    p.wait_for_function(
        "[...document.querySelectorAll('#machines tbody tr[data-machine]')]"
        ".map(r => r.dataset.machine).join() == 'hr-01'"
    )
    p.get_by_label("Maintenance", exact=True).select_option("")
    machine_row(p, "queue-box").wait_for()
    page.shot("dashboard.png")

    # A group: its machines, and R18: group maintenance puts each of them in maintenance.
    machine_row(p, "finance-01").get_by_role("link", name="Finance", exact=True).click()
    p.get_by_role("heading", name="Finance", level=1).wait_for()
    members = p.locator("#group-machines tbody tr")
    assert members.locator("th a").all_inner_texts() == ["finance-01", "finance-02"]
    p.get_by_role("switch", name="Maintenance mode").click()
    p.wait_for_function(
        "document.querySelectorAll('#group-machines .maintenance-icon').length == 2"
    )
    assert "drained" in p.locator("#maintenance-state").inner_text()
    p.get_by_role("switch", name="Maintenance mode").click()
    p.wait_for_function(
        "document.querySelectorAll('#group-machines .maintenance-icon').length == 0"
    )
    p.get_by_role("link", name="Machines", exact=True).first.click()
    machine_row(p, "hr-01").wait_for()

    # R15 on the machine page: the deactivated user's share is listed, marked.
    machine_row(p, "hr-01").get_by_role("link", name="hr-01").click()
    p.get_by_role("heading", name="hr-01", level=1).wait_for()
    dana = p.locator('#access-table tr[data-user="Dana Departed"]')
    assert dana.get_attribute("data-deactivated") == "true"
    assert dana.get_by_text("Deactivated", exact=True).is_visible()
    assert p.locator("#deactivated-notice").is_visible()
    # R16/R19: maintenance from the page; the switch says its state, the text says drained.
    switch = p.get_by_role("switch", name="Maintenance mode")
    assert switch.get_attribute("aria-checked") == "true"
    assert "drained" in p.locator("#maintenance-state").inner_text()
    switch.click()
    p.wait_for_function(
        "document.getElementById('maintenance-toggle')?.getAttribute('aria-checked') == 'false'"
    )
    hr = server.graphql(
        "query($id: ID!) { machine(id: $id) { maintenance } }",
        variables={"id": fleet.machines["hr-01"]},
    )
    assert hr["machine"]["maintenance"] is False

    # R25/R29: queue-box's queue, each run's position and wait reason; move the last to top.
    p.get_by_role("link", name="Machines", exact=True).first.click()
    machine_row(p, "queue-box").get_by_role("link", name="queue-box").click()
    p.get_by_role("heading", name="queue-box", level=1).wait_for()
    rows = p.locator("#queue-table tbody tr")
    rows.nth(2).wait_for()
    assert rows.locator("th").all_inner_texts() == ["Invoices", "Payroll", "Reports"]
    assert rows.locator("td.num").all_inner_texts() == ["1", "2", "3"]
    reasons = rows.locator("td.reason").all_inner_texts()
    assert reasons[0] == "Machine offline" and all(reasons), reasons
    move = p.get_by_role("button", name="Move Reports run 3 to top")
    move.focus()
    p.keyboard.press("Enter")  # keyboard use
    p.wait_for_function(
        "document.querySelector('#queue-table tbody tr th')?.textContent == 'Reports'"
    )
    assert fleet.queue_order("queue-box")[0] == fleet.queued["Reports"]
    assert p.locator("#announce").inner_text() == "Reports moved to the top of the queue"
    # Change a priority and cancel a run from the same table.
    # (R25: a run moved to the top stays ahead of a HIGH one; HIGH goes before NORMAL.)
    p.get_by_label("Priority of Payroll run 3").select_option("HIGH")
    p.get_by_text("Priority of Payroll set to high").wait_for()
    p.wait_for_function(
        "[...document.querySelectorAll('#queue-table tbody th')].map(e => e.textContent).join()"
        " == 'Reports,Payroll,Invoices'"
    )
    assert fleet.queue_order("queue-box") == [
        fleet.queued[f] for f in ("Reports", "Payroll", "Invoices")
    ]
    p.get_by_role("button", name="Cancel Invoices run 3").click()
    p.wait_for_function("document.querySelectorAll('#queue-table tbody tr').length == 2")
    assert fleet.queue_order("queue-box") == [fleet.queued["Reports"], fleet.queued["Payroll"]]
    page.shot("dashboard-queue.png")

    # R32-R34: the recommendation, live; disconnect users, refresh.
    p.get_by_role("link", name=re.compile("^Recommendations")).click()
    card = p.locator('article[data-status="OPEN"]')
    run_row = card.locator(f'tr[data-run="{fleet.locked_run}"]')
    run_row.wait_for()
    assert card.get_by_role("heading", name="Desktop flows not running").is_visible()
    assert run_row.locator("td").nth(3).inner_text() == "Locked"
    assert p.locator("#recommendation-count").inner_text() == "1 open"
    card.get_by_role("button", name="Disconnect users").click()
    run_row.locator('[data-disconnect="requested"]').wait_for()
    commands = fleet.call(COMMANDS, token=fleet.keys["lock-box"])
    assert [(c["kind"], c["username"]) for c in commands] == [("END_SESSION", LOCKED_USER)]
    card.get_by_role("button", name="Refresh").click()
    p.wait_for_function(
        "document.getElementById('announce').textContent == 'Refreshed: 1 run still blocked.'"
    )
    page.shot("dashboard-recommendations.png")
    # The runtime signs the user out: the recommendation resolves on the open page.
    fleet.call(COMPLETE, token=fleet.keys["lock-box"], id=commands[0]["id"])
    fleet.heartbeat("lock-box", {})
    p.locator('article[data-status="RESOLVED"]').wait_for()
    p.wait_for_function("document.getElementById('recommendation-count').hidden")
    assert p.evaluate("window.__stillTheSamePage") is True

    assert unlabelled_controls(p) == []
    assert page.errors == []


def test_sign_in_refuses_a_bad_token_and_signs_out(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    p = page.page
    p.goto(server.url + "/")
    p.get_by_label("API token").fill("dfu_not-a-real-token")
    p.get_by_role("button", name="Sign in").click()
    p.get_by_text("This token was not accepted").wait_for()
    assert p.evaluate("sessionStorage.getItem('deskfleet.token')") is None

    sign_in(p, server, server.admin_token)
    p.reload()  # the tab keeps its token
    p.get_by_role("heading", name="Machines", level=1).wait_for()
    p.get_by_role("button", name="Sign out").click()
    p.get_by_role("heading", name="Sign in to DeskFleet").wait_for()
    assert p.evaluate("sessionStorage.getItem('deskfleet.token')") is None
    assert page.errors == []
