"""Maintenance mode (R16, R18, R19) and the key-action block (R10), through the GraphQL API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.kernel.clock import ManualClock
from tests.api.group_steps import ROTATE_KEY, Steps, snapshot
from tests.graphql import Fleet

LISTED = """{ machines(first: 10) { nodes {
  id name maintenance maintenanceInherited maintenanceLock drained keyActionRequired } } }"""

pytestmark = pytest.mark.asyncio

IN_MAINTENANCE = """
query($on: Boolean!) { machines(first: 50, filter: {maintenance: $on}) { nodes { name } } }
"""
GROUPS_IN_MAINTENANCE = """
query($on: Boolean!) { machineGroups(first: 50, filter: {maintenance: $on}) { nodes { name } } }
"""
COMPLETE_ROTATION = """
mutation { completeMachineKeyRotation { __typename ... on NewMachineKeyPayload { machineKey } } }
"""


async def names(steps: Steps, query: str, on: bool, who: object) -> list[str]:
    return [n["name"] for n in (await steps.call(query, {"on": on}, who))["nodes"]]


@pytest.mark.rule("R16")
@pytest.mark.rule("R19")
async def test_r16_r19_machine_maintenance_on_and_off_visible_with_drained(
    fleet: Fleet,
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    await fleet.machine(owner, "bot-2")

    on = await steps.machine_maintenance(owner, machine.id, True)
    view = await steps.machine(owner, machine.id)

    assert on == {"__typename": "MachinePayload", "machine": {"maintenance": True}}
    assert view["maintenance"] is True and view["maintenanceInherited"] is False
    assert view["maintenanceLock"] is None
    assert view["drained"] is True  # nothing running
    assert await names(steps, IN_MAINTENANCE, True, owner) == ["bot-1"]
    assert await names(steps, IN_MAINTENANCE, False, owner) == ["bot-2"]

    off = await steps.machine_maintenance(owner, machine.id, False)
    assert off["machine"]["maintenance"] is False
    assert await names(steps, IN_MAINTENANCE, True, owner) == []


@pytest.mark.rule("R18")
async def test_r18_group_maintenance_cascades_and_locks_the_machine_toggle(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    a = await fleet.machine(owner, "bot-a")
    b = await fleet.machine(owner, "bot-b")
    await fleet.machine(owner, "bot-standalone")
    group_id = await steps.group(owner, "Team")
    await steps.added(owner, group_id, a)
    await steps.added(owner, group_id, b)
    await steps.machine_maintenance(owner, b.id, True)  # b was already in maintenance itself

    on = await steps.group_maintenance(owner, group_id, True)
    group = await steps.group_view(owner, group_id)

    assert on["group"]["maintenance"] is True
    assert group["maintenance"] is True
    assert [(m["maintenance"], m["maintenanceLock"]) for m in group["machines"]] == [
        (True, "GROUP_IN_MAINTENANCE"),
        (True, "GROUP_IN_MAINTENANCE"),
    ]
    assert (await steps.machine(owner, a.id))["maintenanceInherited"] is True
    assert await names(steps, IN_MAINTENANCE, True, owner) == ["bot-a", "bot-b"]
    assert await names(steps, GROUPS_IN_MAINTENANCE, True, owner) == ["Team"]

    before = await snapshot(domain)
    for machine, enabled in ((a, True), (a, False), (b, False)):
        refused = await steps.machine_maintenance(owner, machine.id, enabled)
        assert refused["__typename"] == "RuleViolationError"
        assert refused["code"] == "GROUP_IN_MAINTENANCE" and refused["rule"] == "R18"
    assert await snapshot(domain) == before

    await steps.group_maintenance(owner, group_id, False)
    # Out of the group's maintenance each machine has its own state again, and its toggle back.
    assert (await steps.machine(owner, a.id))["maintenance"] is False
    assert (await steps.machine(owner, b.id))["maintenance"] is True
    assert (await steps.machine_maintenance(owner, a.id, True))["__typename"] == "MachinePayload"
    assert await names(steps, GROUPS_IN_MAINTENANCE, False, owner) == ["Team"]


@pytest.mark.rule("R18")
async def test_r18_joining_or_leaving_a_group_in_maintenance(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Team")
    await steps.group_maintenance(owner, group_id, True)

    await steps.added(owner, group_id, machine)
    assert (await steps.machine(owner, machine.id))["maintenance"] is True

    await steps.call(
        "mutation($m: ID!) { removeMachineFromGroup(machineId: $m) { __typename } }",
        {"m": machine.id},
        owner,
    )
    assert (await steps.machine(owner, machine.id))["maintenance"] is False


@pytest.mark.rule("R10")
async def test_r10_key_action_blocks_the_toggle_and_shows_maintenance_off(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    other = await fleet.machine(owner, "bot-2")
    group_id = await steps.group(owner, "Team")
    await steps.added(owner, group_id, machine)
    await steps.added(owner, group_id, other)
    await steps.group_maintenance(owner, group_id, True)

    assert (await steps.call(ROTATE_KEY, {"id": machine.id}, owner))[
        "__typename"
    ] == "MachinePayload"

    view = await steps.machine(owner, machine.id)
    group = await steps.group_view(owner, group_id)
    assert view["keyActionRequired"] is True
    assert view["maintenance"] is False and view["maintenanceLock"] == "KEY_ACTION_REQUIRED"
    # A group needs a key action when one of its machines does: its maintenance is off too.
    assert group["keyActionRequired"] is True and group["maintenance"] is False
    assert await names(steps, IN_MAINTENANCE, True, owner) == []
    # The list reads R10 for a whole page at once: it shows what each machine's
    # own view shows, for the machine that needs the key action and for its group's other one.
    listed = await fleet.api.data(LISTED, token=owner.token)
    for node in listed["machines"]["nodes"]:
        own = await steps.machine(owner, node["id"])
        assert own is not None
        assert node == {k: own[k] for k in node}, node["name"]

    before = await snapshot(domain)
    refused_machine = await steps.machine_maintenance(owner, machine.id, True)
    refused_group = await steps.group_maintenance(owner, group_id, False)
    assert refused_machine["code"] == "KEY_ACTION_REQUIRED" and refused_machine["rule"] == "R10"
    assert refused_group["code"] == "KEY_ACTION_REQUIRED" and refused_group["rule"] == "R10"
    assert await snapshot(domain) == before

    # Once the runtime has taken its new key, the toggles come back.
    done = await fleet.api.data(COMPLETE_ROTATION, token=machine.key)
    assert done["completeMachineKeyRotation"]["__typename"] == "NewMachineKeyPayload"
    assert (await steps.group_view(owner, group_id))["maintenance"] is True
    assert (await steps.group_maintenance(owner, group_id, False))["group"]["maintenance"] is False
    assert (await steps.machine_maintenance(owner, machine.id, True))["machine"] == {
        "maintenance": True
    }


@pytest.mark.rule("R10")
async def test_r10_an_expired_key_blocks_the_toggle(
    fleet: Fleet, clock: ManualClock, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    await steps.machine_maintenance(owner, machine.id, True)

    clock.advance(timedelta(days=domain.settings.machine_key_lifetime_days, seconds=1))

    view = await steps.machine(owner, machine.id)
    assert view["maintenance"] is False and view["maintenanceLock"] == "KEY_ACTION_REQUIRED"
    refused = await steps.machine_maintenance(owner, machine.id, False)
    assert refused["code"] == "KEY_ACTION_REQUIRED"
