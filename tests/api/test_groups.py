"""Machine groups (R11) through the GraphQL API: lifecycle, the 50 limit, environments, moves."""

from __future__ import annotations

import pytest

from domain.context import DomainContext
from tests.api.group_steps import DELETE_GROUP, REMOVE, UPDATE_GROUP, Steps, snapshot
from tests.connection_steps import connection, connection_row
from tests.graphql import Fleet

pytestmark = pytest.mark.asyncio

GROUPS_PAGE = """
query($first: Int!, $after: String, $filter: MachineGroupFilterInput) {
  machineGroups(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor } nodes { name machineCount }
  }
}"""


@pytest.mark.rule("R11")
async def test_r11_group_lifecycle_and_its_machines(fleet: Fleet, domain: DomainContext) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    a = await fleet.machine(owner, "bot-a")
    b = await fleet.machine(owner, "bot-b")
    group_id = await steps.group(owner, "Invoices")
    await steps.added(owner, group_id, b)
    await steps.added(owner, group_id, a)

    edited = await steps.call(
        UPDATE_GROUP, {"input": {"id": group_id, "description": "month-end"}}, owner
    )
    view = await steps.group_view(owner, group_id)

    assert edited["__typename"] == "MachineGroupPayload"
    assert view is not None
    assert view["machineCount"] == 2
    assert [m["id"] for m in view["machines"]] == [a.id, b.id]  # by name
    assert view["accessType"] == "OWNER"
    assert view["maintenance"] is False and view["drained"] is True
    assert (await steps.machine(owner, a.id))["group"] == {"id": group_id}

    deleted = await steps.call(DELETE_GROUP, {"id": group_id}, owner)

    assert deleted["__typename"] == "DeletedMachineGroupPayload"
    assert await steps.group_view(owner, group_id) is None
    assert (await steps.machine(owner, a.id))["group"] is None  # standalone again
    assert (await steps.machine(owner, b.id))["group"] is None
    assert len((await snapshot(domain))["machines"]) == 2


@pytest.mark.rule("R11")
async def test_r11_fifty_machines_accepted_the_fifty_first_refused(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    group_id = await steps.group(owner, "Big")
    machines = [await fleet.machine(owner, f"bot-{i:02d}") for i in range(51)]
    for machine in machines[:50]:
        await steps.added(owner, group_id, machine)
    before = await snapshot(domain)

    refused = await steps.add(owner, group_id, machines[50].id)

    assert refused["__typename"] == "RuleViolationError"
    assert refused["code"] == "GROUP_FULL"
    assert refused["rule"] == "R11"
    assert "at most 50" in refused["message"]
    assert await snapshot(domain) == before
    assert (await steps.group_view(owner, group_id))["machineCount"] == 50
    assert (await steps.machine(owner, machines[50].id))["group"] is None


@pytest.mark.rule("R11")
async def test_r11_limit_is_a_setting(fleet: Fleet, domain: DomainContext) -> None:
    steps = Steps(fleet)
    domain.settings.group_machine_limit = 2
    owner = await fleet.person("MACHINE_OWNER")
    group_id = await steps.group(owner, "Small")
    machines = [await fleet.machine(owner, f"bot-{i}") for i in range(3)]
    await steps.added(owner, group_id, machines[0])
    await steps.added(owner, group_id, machines[1])

    refused = await steps.add(owner, group_id, machines[2].id)

    assert refused["code"] == "GROUP_FULL"
    assert "at most 2" in refused["message"]


@pytest.mark.rule("R11")
async def test_r11_cross_environment_add_refused(fleet: Fleet, domain: DomainContext) -> None:
    steps = Steps(fleet)
    other = await fleet.environment("Other")
    owner = await fleet.person("MACHINE_OWNER")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=other)
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Elsewhere", environment_id=other)
    before = await snapshot(domain)

    refused = await steps.add(owner, group_id, machine.id)

    assert refused["__typename"] == "RuleViolationError"
    assert refused["code"] == "CROSS_ENVIRONMENT"
    assert refused["rule"] == "R11"
    assert await snapshot(domain) == before


@pytest.mark.rule("R11")
async def test_r11_a_machine_moves_between_groups_and_is_in_one_at_most(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    first = await steps.group(owner, "First")
    second = await steps.group(owner, "Second")
    await steps.added(owner, first, machine)

    again = await steps.add(owner, first, machine.id)
    moved = await steps.add(owner, second, machine.id)

    assert again["code"] == "ALREADY_IN_STATE"
    assert moved["machine"]["group"] == {"id": second}
    assert (await steps.group_view(owner, first))["machineCount"] == 0
    assert (await steps.group_view(owner, second))["machineCount"] == 1

    removed = await steps.call(REMOVE, {"machineId": machine.id}, owner)
    assert removed["machine"]["group"] is None
    assert (await steps.group_view(owner, second))["machineCount"] == 0


@pytest.mark.rule("R11")
async def test_r11_moving_out_of_a_group_needs_edit_on_that_group(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    landlord = await fleet.person("MACHINE_OWNER")
    mover = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(mover, "bot-1")
    theirs = await steps.group(landlord, "Theirs")
    await steps.share_group(landlord, theirs, mover.id, "CO_OWNER")
    await steps.added(mover, theirs, machine)
    await steps.call(
        "mutation($m: ID!, $u: ID!) { unshareMachineGroup(groupId: $m, userId: $u) { __typename } }",
        {"m": theirs, "u": mover.id},
        landlord,
    )
    await steps.share_group(landlord, theirs, mover.id, "USER")
    mine = await steps.group(mover, "Mine")
    before = await snapshot(domain)

    refused = await steps.add(mover, mine, machine.id)

    assert refused["__typename"] == "PermissionDeniedError"
    assert await snapshot(domain) == before
    # The machine's owner may still take it out of the group, then place it anywhere.
    removed = await steps.call(REMOVE, {"machineId": machine.id}, mover)
    assert removed["__typename"] == "MachineGroupMembershipPayload"
    await steps.added(mover, mine, machine)


@pytest.mark.rule("R11")
async def test_r11_group_names_unique_per_environment_and_validated(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    await steps.group(owner, "Team")
    env = fleet.environment_id

    taken = await steps.call(
        "mutation($i: CreateMachineGroupInput!) { createMachineGroup(input: $i) { "
        "__typename ... on UserError { code } } }",
        {"i": {"environmentId": env, "name": "Team"}},
        owner,
    )
    blank = await steps.call(
        "mutation($i: CreateMachineGroupInput!) { createMachineGroup(input: $i) { "
        "__typename ... on ValidationError { code field } } }",
        {"i": {"environmentId": env, "name": "  "}},
        owner,
    )

    assert taken == {"__typename": "ConflictError", "code": "NAME_TAKEN"}
    assert blank == {"__typename": "ValidationError", "code": "INVALID_NAME", "field": "name"}


@pytest.mark.rule("R11")
async def test_r11_groups_are_paginated_and_filtered(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    stranger = await fleet.person("MACHINE_OWNER")
    for name in ("Delta", "Alpha", "Charlie", "Bravo"):
        await steps.group(owner, name)
    await steps.group(stranger, "Hidden")

    first = await steps.call(GROUPS_PAGE, {"first": 3}, owner)
    rest = await steps.call(
        GROUPS_PAGE, {"first": 3, "after": first["pageInfo"]["endCursor"]}, owner
    )
    filtered = await steps.call(GROUPS_PAGE, {"first": 10, "filter": {"text": "rav"}}, owner)
    everything = await steps.call(GROUPS_PAGE, {"first": 10}, fleet.admin_token)

    assert [g["name"] for g in first["nodes"]] == ["Alpha", "Bravo", "Charlie"]
    assert first["totalCount"] == 4 and first["pageInfo"]["hasNextPage"] is True
    assert [g["name"] for g in rest["nodes"]] == ["Delta"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert [g["name"] for g in filtered["nodes"]] == ["Bravo"]
    assert everything["totalCount"] == 5  # admins see every group (R4)


@pytest.mark.rule("R11")
@pytest.mark.rule("R20")
async def test_r11_deleting_a_group_removes_its_connections(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Team")
    await steps.added(owner, group_id, machine)
    to_group = await connection(fleet, owner, name="to group", group_id=group_id)
    to_machine = await connection(fleet, owner, name="to machine", machine_id=machine.id)

    deleted = await steps.call(DELETE_GROUP, {"id": group_id}, owner)

    assert deleted["__typename"] == "DeletedMachineGroupPayload"
    assert await connection_row(domain, to_group["id"]) is None
    assert await connection_row(domain, to_machine["id"]) is not None
