"""Desktop flows: created with the run privilege (R13), managed by their owner or an admin."""

from __future__ import annotations

import pytest

from domain.context import DomainContext
from domain.store.models import RunStatus
from tests.connection_steps import CREATE_FLOW, connection, flow, insert_run
from tests.graphql import Fleet

pytestmark = pytest.mark.asyncio

RENAME = """
mutation($id: ID!, $name: String!) {
  renameDesktopFlow(id: $id, name: $name) {
    __typename ... on DesktopFlowPayload { flow { id name } } ... on UserError { code message }
  }
}"""

DELETE = """
mutation($id: ID!) {
  deleteDesktopFlow(id: $id) {
    __typename ... on DeletedDesktopFlowPayload { id } ... on UserError { code message }
  }
}"""

GET = "query($id: ID!) { desktopFlow(id: $id) { id name owner { id } environment { id } } }"

LIST = """
query($first: Int!, $after: String, $filter: DesktopFlowFilterInput) {
  desktopFlows(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id name }
  }
}"""


async def names(fleet: Fleet, token: str, **variables: object) -> list[str]:
    data = await fleet.api.data(LIST, {"first": 100, **variables}, token=token)
    return [f["name"] for f in data["desktopFlows"]["nodes"]]


@pytest.mark.rule("R13")
async def test_r13_creating_a_flow_needs_the_run_privilege_in_its_environment(
    fleet: Fleet,
) -> None:
    user = await fleet.person("MACHINE_USER")
    outsider = await fleet.person()
    sales = await fleet.environment("Sales")
    elsewhere = await fleet.person("ENVIRONMENT_MAKER", environment_id=sales)

    async def create(token: str, name: str) -> dict:
        data = await fleet.api.data(
            CREATE_FLOW,
            {"input": {"environmentId": fleet.environment_id, "name": name}},
            token=token,
        )
        return data["createDesktopFlow"]

    accepted = await create(user.token, "  Invoice bot  ")
    no_role = await create(outsider.token, "Nope")
    other_env_only = await create(elsewhere.token, "Nope")
    bad_name = await create(user.token, "   ")

    assert accepted["__typename"] == "DesktopFlowPayload"
    assert accepted["flow"]["name"] == "Invoice bot"
    assert accepted["flow"]["owner"] == {"id": user.id}
    assert accepted["flow"]["environment"] == {"id": fleet.environment_id}
    assert no_role["__typename"] == "NotFoundError"
    assert other_env_only["__typename"] == "NotFoundError"
    assert bad_name["__typename"] == "ValidationError"
    assert await names(fleet, fleet.admin_token) == ["Invoice bot"]


async def test_owner_or_admin_renames_a_flow_others_cannot_see_it(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    flow_id = await flow(fleet, maker, "Invoice bot")

    async def rename(token: str, name: str) -> dict:
        data = await fleet.api.data(RENAME, {"id": flow_id, "name": name}, token=token)
        return data["renameDesktopFlow"]

    by_stranger = await rename(stranger.token, "Hijacked")
    seen_by_stranger = await fleet.api.data(GET, {"id": flow_id}, token=stranger.token)
    by_owner = await rename(maker.token, "Invoice bot v2")
    by_admin = await rename(env_admin.token, "Invoice bot v3")
    read_back = await fleet.api.data(GET, {"id": flow_id}, token=maker.token)

    assert by_stranger["__typename"] == "NotFoundError"
    assert seen_by_stranger["desktopFlow"] is None
    assert by_owner["flow"]["name"] == "Invoice bot v2"
    assert by_admin["flow"]["name"] == "Invoice bot v3"
    assert read_back["desktopFlow"]["name"] == "Invoice bot v3"


async def test_a_flow_with_unfinished_runs_cannot_be_deleted(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    await fleet.heartbeat(machine)
    conn = await connection(fleet, maker, machine_id=machine.id)
    busy = await flow(fleet, maker, "Busy")
    idle = await flow(fleet, maker, "Idle")
    await insert_run(domain, connection_id=conn["id"], flow_id=busy)
    await insert_run(
        domain,
        connection_id=conn["id"],
        flow_id=idle,
        status=RunStatus.SUCCEEDED,
        machine_id=machine.id,
    )

    async def delete(token: str, flow_id: str) -> dict:
        return (await fleet.api.data(DELETE, {"id": flow_id}, token=token))["deleteDesktopFlow"]

    refused_busy = await delete(maker.token, busy)
    refused_stranger = await delete(stranger.token, idle)
    accepted = await delete(maker.token, idle)

    assert refused_busy["__typename"] == "ConflictError"
    assert refused_busy["code"] == "FLOW_IN_USE"
    assert refused_stranger["__typename"] == "NotFoundError"
    assert accepted == {"__typename": "DeletedDesktopFlowPayload", "id": idle}
    assert await names(fleet, maker.token) == ["Busy"]


async def test_flows_list_owner_sees_theirs_admin_all_by_name_paginated(fleet: Fleet) -> None:
    alice = await fleet.person("ENVIRONMENT_MAKER")
    bob = await fleet.person("MACHINE_USER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    for name in ("Payroll", "Audit"):
        await flow(fleet, alice, name)
    for name in ("Invoices", "Archive"):
        await flow(fleet, bob, name)

    pages: list[list[str]] = []
    after = None
    while True:
        data = await fleet.api.data(LIST, {"first": 3, "after": after}, token=env_admin.token)
        pages.append([f["name"] for f in data["desktopFlows"]["nodes"]])
        if not data["desktopFlows"]["pageInfo"]["hasNextPage"]:
            break
        after = data["desktopFlows"]["pageInfo"]["endCursor"]

    assert await names(fleet, alice.token) == ["Audit", "Payroll"]
    assert await names(fleet, bob.token) == ["Archive", "Invoices"]
    assert pages == [["Archive", "Audit", "Invoices"], ["Payroll"]]
    assert await names(fleet, env_admin.token, filter={"text": "voice"}) == ["Invoices"]
    assert await names(fleet, env_admin.token, filter={"environmentId": fleet.environment_id}) == [
        "Archive",
        "Audit",
        "Invoices",
        "Payroll",
    ]
