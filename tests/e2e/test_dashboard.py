"""The dashboard at `/` in a real headless Chromium (Debian's `chromium`, driven by Playwright),
against a real `deskfleet serve` seeded through the public GraphQL API.

A second client (GraphQL over HTTP, as another operator or a script would) changes the fleet
while the page is open; the page must follow over its `graphql-transport-ws` subscriptions without
a reload. Every browser console error and uncaught page error fails the test. Screenshots go to
``artifacts/`` (git-ignored; CI keeps the folder as its artefact).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.conftest import LiveServer
from tests.e2e.dashboard_given import (
    COMMANDS,
    COMPLETE,
    LOCKED_USER,
    Page,
    seed,
    sign_in,
)
from tests.e2e.server import ROOT
from tests.graphql import GOOD_RUNTIME, ISSUE_TOKEN
from tests.runs_given import MACHINE_MAINTENANCE

pytestmark = pytest.mark.e2e

DASHBOARD = ROOT / "api" / "dashboard"
REVOKE_TOKEN = "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }"


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
    p.get_by_role("link", name="Machine groups").click()
    finance_group = p.locator('#groups tr[data-group="Finance"]')
    finance_group.wait_for()
    assert finance_group.locator("td").all_inner_texts()[:2] == ["Month-end robots", "2 of 2"]
    p.go_back()
    machine_row(p, "finance-01").get_by_role("link", name="Finance", exact=True).click()
    p.get_by_role("heading", name="Finance", level=1).wait_for()
    members = p.locator("#group-machines tbody tr")
    assert members.locator("th a").all_inner_texts() == ["finance-01", "finance-02"]
    p.get_by_role("switch", name="Maintenance mode").click()
    group_in_maintenance = (
        "document.getElementById('maintenance-toggle')?.getAttribute('aria-checked') == '{on}'"
        " && document.querySelectorAll('#group-machines .maintenance-icon').length == {icons}"
    )
    p.wait_for_function(group_in_maintenance.format(on="true", icons=2))
    assert "drained" in p.locator("#maintenance-state").inner_text()
    p.get_by_role("switch", name="Maintenance mode").click()
    p.wait_for_function(group_in_maintenance.format(on="false", icons=0))
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


def test_the_dashboard_files_are_served_and_nothing_else(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server()
    index = httpx.get(server.url + "/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in index.text
    for path in sorted(DASHBOARD.rglob("*")):
        if path.is_file() and path.suffix in (".js", ".css", ".html"):
            served = httpx.get(f"{server.url}/{path.relative_to(DASHBOARD).as_posix()}")
            assert served.status_code == 200, path
            assert (
                served.headers["content-type"].split(";")[0]
                == {
                    ".js": "text/javascript",
                    ".css": "text/css",
                    ".html": "text/html",
                }[path.suffix]
            )
            assert served.content == path.read_bytes()
    assert httpx.get(server.url + "/__init__.py").status_code == 404  # never the Python
    assert httpx.get(server.url + "/no-such-file.js").status_code == 404
    # The API is still there, first.
    assert server.graphql("{ me { user { email } } }")["me"]["user"]["email"]
    assert httpx.get(server.url + "/healthz").status_code == 200

    # A websocket anywhere but /graphql is refused (not an error in the server).
    with pytest.raises(InvalidStatus), connect(server.url.replace("http", "ws") + "/elsewhere"):
        pass
    assert "Traceback" not in server.served.output()


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

    # A token revoked while the page is open: the server closes the websocket (4403) and the
    # page signs out by itself instead of retrying forever.
    issued = server.graphql(ISSUE_TOKEN, variables={"name": "browser", "userId": None})
    secret, token_id = issued["issueApiToken"]["secret"], issued["issueApiToken"]["token"]["id"]
    sign_in(p, server, secret)
    p.get_by_text("Live", exact=True).wait_for()
    server.graphql(REVOKE_TOKEN, variables={"id": token_id})
    p.get_by_role("heading", name="Sign in to DeskFleet").wait_for(timeout=30_000)
    assert p.evaluate("sessionStorage.getItem('deskfleet.token')") is None
    assert page.errors == []
