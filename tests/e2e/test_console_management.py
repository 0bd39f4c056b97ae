"""Managing the fleet from the dashboard, in a real headless Chromium against a real server seeded
through the public GraphQL API (tests/e2e/dashboard_given.py). Each action is checked through
the API afterwards; each control shows only where the caller's `allowedActions` (or role) permit.
Pages are scanned by axe-core, console errors fail the test, screenshots go to ``artifacts/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.dashboard_given import (
    Page,
    SeededFleet,
    seed,
    serious_accessibility_violations,
    sign_in,
)
from tests.graphql import (
    ASSIGN_ROLE,
    CREATE_ENVIRONMENT,
    CREATE_USER,
    GOOD_EDITION,
    GOOD_RUNTIME,
    ISSUE_TOKEN,
)
from tests.runs_given import HEARTBEAT

pytestmark = pytest.mark.e2e

MACHINE = """query($id: ID!) { machine(id: $id) {
  name description unattendedBots keyActionRequired environment { name } group { name }
  accessList { access user { displayName } } } }"""
GROUP = "query($id: ID!) { machineGroup(id: $id) { name machines { name } } }"
SETTINGS = "{ environments { name sessionRecommendations maxQueueSeconds } }"
ROLES = (
    "query($env: ID!) { environmentRoles(environmentId: $env) { role user { id displayName } } }"
)


def clean(page: Page, name: str) -> None:
    assert serious_accessibility_violations(page.page) == [], name
    assert page.errors == [], page.errors
    page.shot(f"console-{name}.png")


def person(fleet: SeededFleet, name: str, role: str) -> tuple[str, str]:
    user = fleet.call(
        CREATE_USER, input={"displayName": name, "email": f"{name.split()[0].lower()}@x.test"}
    )["user"]["id"]
    fleet.call(
        ASSIGN_ROLE, input={"environmentId": fleet.environment_id, "userId": user, "role": role}
    )
    return user, fleet.call(ISSUE_TOKEN, name="console test", userId=user)["secret"]


def machine(fleet: SeededFleet, machine_id: str) -> dict[str, Any]:
    return fleet.server.graphql(MACHINE, variables={"id": machine_id})["machine"]


def test_register_edit_share_rotate_allocate_move_and_delete_a_machine(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    person(fleet, "Sam Sharer", "MACHINE_USER")
    fleet.call(
        CREATE_ENVIRONMENT,
        input={"name": "Lab", "kind": "PRODUCTION", "flowExtensionsVersion": "1.2.4.1"},
    )
    p = page.page
    sign_in(p, server, server.admin_token)

    # Register: the key is shown once, with a copy button and the runtime's command.
    p.get_by_text("Register a machine").click()
    p.locator("#register-environment").select_option(label="Default")
    p.locator("#register-name").fill("new-bot")
    p.locator("#register-description").fill("Fresh from the page")
    p.locator("#register-version").fill(GOOD_RUNTIME)
    p.locator("#register-os").fill(GOOD_EDITION)
    p.get_by_role("button", name="Register", exact=True).click()
    key = p.locator("#machine-key").inner_text()
    assert key.startswith("dfm_")
    assert key in p.locator("#runtime-command").inner_text()
    assert p.get_by_role("button", name="Copy key").is_visible()
    p.locator('#machines tr[data-machine="new-bot"]').wait_for()  # the list has it
    clean(page, "register")
    beat = {"input": {"runtimeVersion": GOOD_RUNTIME, "osEdition": GOOD_EDITION}}
    assert server.graphql(HEARTBEAT, token=key, variables=beat)  # the key shown is the machine's

    # Its page: edit, allocate bots, share with a picked user, rotate the key.
    p.locator('#machines tr[data-machine="new-bot"] a').first.click()
    p.get_by_role("heading", name="new-bot", level=1).wait_for()
    new_id = p.url.rsplit("/", 1)[1]
    p.locator("#edit-machine-description").fill("Edited on the page")
    p.locator("#edit-machine").get_by_role("button", name="Save").click()
    p.wait_for_function("document.querySelector('main').textContent.includes('Edited on the page')")
    p.locator("#allocate-count").fill("1")
    p.locator("#allocate-bots").get_by_role("button", name="Allocate").click()
    p.get_by_text("Unattended bots allocated").wait_for()
    p.locator("#share-user-machine").select_option(label="Sam Sharer (sam@x.test)")
    p.locator("#share-access-machine").select_option("USER")
    p.locator("#share-machine").get_by_role("button", name="Share").click()
    p.locator('#access-table tr[data-user="Sam Sharer"]').wait_for()
    # Shared again: the share changes (R14), from user to co-owner.
    p.locator("#share-user-machine").select_option(label="Sam Sharer (sam@x.test), now user")
    p.locator("#share-access-machine").select_option("CO_OWNER")
    p.locator("#share-machine").get_by_role("button", name="Share").click()
    p.locator('#access-table tr[data-user="Sam Sharer"]', has_text="Co-owner").wait_for()
    p.get_by_role("button", name="Rotate key").click()
    p.get_by_role("button", name="Yes, rotate key").click()
    p.get_by_text("Rotation requested").wait_for()
    clean(page, "machine-manage")
    after = machine(fleet, new_id)
    assert after["description"] == "Edited on the page" and after["unattendedBots"] == 1
    assert after["keyActionRequired"] is True  # R10: the runtime is asked for a new key
    assert ("CO_OWNER", "Sam Sharer") in {
        (e["access"], e["user"]["displayName"]) for e in after["accessList"]
    }

    # Move it to Lab (R6), then delete it, confirmed first.
    p.locator("#allocate-count").fill("0")
    p.locator("#allocate-bots").get_by_role("button", name="Allocate").click()
    p.get_by_text("Unattended bots allocated").wait_for()
    p.locator("#move-environment").select_option(label="Lab")
    p.locator("#move-machine").get_by_role("button", name="Move").click()
    p.get_by_text("Machine moved").wait_for()
    assert machine(fleet, new_id)["environment"]["name"] == "Lab"
    p.get_by_role("button", name="Delete machine").click()
    p.get_by_role("button", name="Keep it").click()
    assert machine(fleet, new_id) is not None
    p.get_by_role("button", name="Delete machine").click()
    p.get_by_role("button", name="Yes, delete machine").click()
    p.get_by_role("heading", name="Machines", level=1).wait_for()
    assert machine(fleet, new_id) is None


def test_groups_are_created_filled_emptied_and_deleted(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    p = page.page
    sign_in(p, server, server.admin_token)
    p.get_by_role("link", name="Machine groups").click()
    p.locator('#groups tr[data-group="Finance"]').wait_for()
    clean(page, "groups")
    p.get_by_text("Create a group").click()
    p.locator("#group-name").fill("Night shift")
    p.locator("#group-description").fill("Runs after hours")
    p.get_by_role("button", name="Create", exact=True).click()
    p.get_by_role("heading", name="Night shift", level=1).wait_for()
    group_id = p.url.rsplit("/", 1)[1]

    p.locator("#add-machine").select_option(label="hr-01")
    p.locator("#add-to-group").get_by_role("button", name="Add").click()
    p.locator('#group-machines tr[data-machine="hr-01"]').wait_for()
    assert fleet.server.graphql(GROUP, variables={"id": group_id})["machineGroup"]["machines"] == [
        {"name": "hr-01"}
    ]
    clean(page, "group-manage")
    p.get_by_role("button", name="Remove hr-01 from the group").click()
    p.locator("#members p.muted").wait_for()  # "No machine in this group yet."
    p.get_by_role("button", name="Delete group").click()
    p.get_by_role("button", name="Yes, delete group").click()
    p.get_by_role("heading", name="Machine groups", level=1).wait_for()
    assert fleet.server.graphql(GROUP, variables={"id": group_id})["machineGroup"] is None


def test_controls_show_only_where_allowed_and_admins_change_settings(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    user_id, token = person(fleet, "Uma User", "MACHINE_USER")
    fleet.call(
        "mutation($input: ShareMachineInput!) { shareMachine(input: $input) { __typename } }",
        input={"machineId": fleet.machines["hr-01"], "userId": user_id, "access": "USER"},
    )
    p = page.page

    # A machine user sees the machine shared with them, and no control to change it (R12, R13).
    sign_in(p, server, token)
    assert p.locator("#register").count() == 0
    assert p.locator("#settings-link").is_hidden()
    p.locator('#machines tr[data-machine="hr-01"] a').first.click()
    p.get_by_role("heading", name="hr-01", level=1).wait_for()
    assert p.locator("#manage").count() == 0
    clean(page, "machine-user")
    p.get_by_role("button", name="Sign out").click()

    # An admin turns session-lock detection off in the settings (R31).
    sign_in(p, server, server.admin_token)
    p.get_by_role("link", name="Settings").click()
    form = p.locator('section[data-environment="Default"]')
    form.get_by_label("Session-lock detection (R31)").uncheck()
    form.get_by_label("Max queue time, seconds (R27)").fill("600")
    form.get_by_role("button", name="Save settings").click()
    p.get_by_text("Settings of Default saved").wait_for()
    settings = {e["name"]: e for e in server.graphql(SETTINGS)["environments"]}
    assert settings["Default"]["sessionRecommendations"] is False
    assert settings["Default"]["maxQueueSeconds"] == 600

    # Roles (R13): Uma is made a machine owner too, then loses it again.
    form.get_by_label("User", exact=True).select_option(label="Uma User (uma@x.test)")
    form.get_by_label("Role", exact=True).select_option("MACHINE_OWNER")
    form.get_by_role("button", name="Grant", exact=True).click()
    granted = form.locator('tr[data-user="Uma User"][data-role="MACHINE_OWNER"]')
    granted.wait_for()
    clean(page, "settings")
    form.get_by_role("button", name="Revoke Machine owner from Uma User").click()
    granted.wait_for(state="detached")
    roles = server.graphql(ROLES, variables={"env": fleet.environment_id})["environmentRoles"]
    assert {(r["user"]["displayName"], r["role"]) for r in roles if r["user"]["id"] == user_id} == {
        ("Uma User", "MACHINE_USER")
    }

    # A first role for someone of the organisation who holds none here, by exact e-mail (R13).
    newcomer = fleet.call(
        CREATE_USER, input={"displayName": "Nina Newcomer", "email": "nina@x.test"}
    )["user"]["id"]
    form.get_by_label("E-mail").fill("nobody@x.test")
    form.get_by_role("button", name="Grant by e-mail").click()
    form.get_by_text("Nobody active has the e-mail nobody@x.test").wait_for()
    form.get_by_label("E-mail").fill("nina@x.test")
    form.get_by_label("Role for them").select_option("MACHINE_USER")
    form.get_by_role("button", name="Grant by e-mail").click()
    form.locator('tr[data-user="Nina Newcomer"][data-role="MACHINE_USER"]').wait_for()
    clean(page, "settings-newcomer")
    roles = server.graphql(ROLES, variables={"env": fleet.environment_id})["environmentRoles"]
    assert ("Nina Newcomer", "MACHINE_USER") in {
        (r["user"]["displayName"], r["role"]) for r in roles if r["user"]["id"] == newcomer
    }
