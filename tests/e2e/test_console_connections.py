"""Connections from the dashboard (R20-R22), in a real headless Chromium against a real server:
list, create, change a password (write-only: never shown), switch a legacy gateway connection to
direct. Nothing in the API makes a gateway connection any more (R22), so the test writes one
straight to the server's database, as the demo and data imports do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.connections import connections
from domain.context import DomainContext
from domain.kernel.settings import Settings
from domain.store.db import Database
from tests.e2e.conftest import LiveServer
from tests.e2e.dashboard_given import Page, seed, serious_accessibility_violations, sign_in

pytestmark = pytest.mark.e2e

LIST = "{ connections(first: 50) { nodes { name connectivity hasPassword machine { name } } } }"


async def legacy_connection(server: LiveServer, environment_id: str, owner_id: str) -> None:
    url = f"sqlite+aiosqlite:///{server.served.log.parent / 'deskfleet.db'}"
    ctx = DomainContext(db=Database(url), settings=Settings(database_url=url))
    try:
        gateway = await connections.seed_legacy_gateway(
            ctx, environment_id=environment_id, name="HQ gateway"
        )
        await connections.seed_legacy_gateway_connection(
            ctx,
            gateway_id=gateway.id,
            owner_id=owner_id,
            name="Old payroll link",
            windows_username=r"CONTOSO\payroll",
        )
    finally:
        await ctx.db.dispose()


@pytest.mark.rule("R20")
@pytest.mark.rule("R22")
def test_connections_are_listed_created_given_a_password_and_switched_to_direct(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    admin = server.graphql("{ me { user { id } } }")["me"]["user"]["id"]
    # Playwright's sync API holds this thread's event loop: the write runs on another thread.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, legacy_connection(server, fleet.environment_id, admin)).result()
    p = page.page
    sign_in(p, server, server.admin_token)
    p.get_by_role("link", name="Connections").click()
    p.get_by_role("heading", name="Connections", level=1).wait_for()
    gateway_row = p.locator('#connections tr[data-connection="Old payroll link"]')
    gateway_row.wait_for()
    assert "Gateway (legacy, R22)" in gateway_row.inner_text()

    # Create one: its password is set, and shown nowhere.
    p.get_by_text("Create a connection").click()
    p.locator("#connection-name").fill("Reports as robot")
    p.locator("#connection-target").select_option(label="Machine hr-01")
    p.locator("#connection-user").fill(r"CONTOSO\robot")
    p.locator("#connection-password").fill("s3cret-first")
    p.get_by_role("button", name="Create", exact=True).click()
    row = p.locator('#connections tr[data-connection="Reports as robot"]')
    row.wait_for()
    assert "Set" in row.inner_text()
    assert "s3cret" not in p.content()

    # A new password (write-only).
    row.get_by_text("Change the password of Reports as robot").click()
    row.get_by_label("New password").fill("s3cret-second")
    row.get_by_role("button", name="Set password").click()
    p.get_by_text("Password of Reports as robot changed").wait_for()
    assert "s3cret" not in p.content()
    assert serious_accessibility_violations(p) == []
    page.shot("console-connections.png")

    # The gateway connection goes direct, to a machine, with its credentials again.
    gateway_row = p.locator('#connections tr[data-connection="Old payroll link"]')
    gateway_row.get_by_text("Switch Old payroll link to direct").click()
    gateway_row.get_by_label("Machine or group").select_option(label="Machine finance-01")
    gateway_row.get_by_label("Password").fill("payroll-pass")
    gateway_row.get_by_role("button", name="Switch to direct").click()
    p.get_by_text("Old payroll link is now direct").wait_for()
    listed = {c["name"]: c for c in server.graphql(LIST)["connections"]["nodes"]}
    assert listed["Old payroll link"]["connectivity"] == "DIRECT"
    assert listed["Old payroll link"]["machine"] == {"name": "finance-01"}
    assert listed["Reports as robot"]["hasPassword"] is True
    assert page.errors == [], page.errors
