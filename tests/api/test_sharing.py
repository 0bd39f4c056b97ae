"""Sharing machines and groups (R12, R14, R15) through the GraphQL API."""

from __future__ import annotations

import pytest

from domain.context import DomainContext
from tests.api.group_steps import DEACTIVATE, UNSHARE_GROUP, UNSHARE_MACHINE, Steps, snapshot
from tests.graphql import Fleet

pytestmark = pytest.mark.asyncio

MACHINES = """
query { machines(first: 10) { nodes { name accessType hasDeactivatedShares maintenance drained } } }
"""


@pytest.mark.rule("R12")
async def test_r12_access_type_of_every_caller(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    co_owner = await fleet.person("MACHINE_OWNER")
    user = await fleet.person("MACHINE_USER")
    admin = await fleet.person("ENVIRONMENT_ADMIN")
    stranger = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Team")
    assert (await steps.share_machine(owner, machine.id, co_owner.id, "CO_OWNER"))[
        "__typename"
    ] == "MachinePayload"
    assert (await steps.share_group(owner, group_id, user.id, "USER"))[
        "__typename"
    ] == "MachineGroupPayload"
    await steps.share_machine(owner, machine.id, user.id, "USER")

    for who, expected in ((owner, "OWNER"), (co_owner, "CO_OWNER"), (user, "USER")):
        assert (await steps.machine(who, machine.id))["accessType"] == expected
    assert (await steps.machine(admin, machine.id))["accessType"] == "ADMIN"
    assert (await steps.machine(fleet.admin_token, machine.id))["accessType"] == "ADMIN"
    assert await steps.machine(stranger, machine.id) is None  # not even visible
    assert (await steps.group_view(user, group_id))["accessType"] == "USER"
    assert (await steps.group_view(admin, group_id))["accessType"] == "ADMIN"
    assert await steps.group_view(co_owner, group_id) is None


@pytest.mark.rule("R12")
async def test_r12_a_group_share_is_not_a_share_of_its_machines(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    member = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Team")
    await steps.added(owner, group_id, machine)
    await steps.share_group(owner, group_id, member.id, "CO_OWNER")

    view = await steps.group_view(member, group_id)

    assert view["accessType"] == "CO_OWNER"
    assert [m["id"] for m in view["machines"]] == [machine.id]  # the group shows its machines
    assert await steps.machine(member, machine.id) is None  # ...but grants no machine access
    refused = await steps.call(
        "mutation($id: ID!) { deleteMachine(id: $id) { __typename } }", {"id": machine.id}, member
    )
    assert refused["__typename"] == "NotFoundError"


@pytest.mark.rule("R14")
async def test_r14_co_owner_grants_co_owner_or_user(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    co_owner = await fleet.person("MACHINE_OWNER")
    a = await fleet.person("MACHINE_USER")
    b = await fleet.person("MACHINE_USER")
    machine = await fleet.machine(owner, "bot-1")
    await steps.share_machine(owner, machine.id, co_owner.id, "CO_OWNER")

    granted_co = await steps.share_machine(co_owner, machine.id, a.id, "CO_OWNER")
    granted_user = await steps.share_machine(co_owner, machine.id, b.id, "USER")

    assert granted_co["__typename"] == "MachinePayload"
    assert granted_user["__typename"] == "MachinePayload"
    listing = (await steps.machine(owner, machine.id))["accessList"]
    assert (listing[0]["user"]["id"], listing[0]["access"]) == (owner.id, "OWNER")
    assert {(e["user"]["id"], e["access"], (e["grantedBy"] or {}).get("id")) for e in listing} == {
        (owner.id, "OWNER", None),
        (co_owner.id, "CO_OWNER", owner.id),
        (a.id, "CO_OWNER", co_owner.id),
        (b.id, "USER", co_owner.id),
    }


@pytest.mark.rule("R14")
async def test_r14_a_user_who_can_share_grants_user_and_never_more(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    sharer = await fleet.person("MACHINE_USER_CAN_SHARE")
    plain_user = await fleet.person("MACHINE_USER")
    co_owner = await fleet.person("MACHINE_OWNER")
    friend = await fleet.person("MACHINE_USER")
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Team")
    for target in (sharer, plain_user):
        await steps.share_machine(owner, machine.id, target.id, "USER")
        await steps.share_group(owner, group_id, target.id, "USER")
    await steps.share_machine(owner, machine.id, co_owner.id, "CO_OWNER")
    before = await snapshot(domain)

    escalate_machine = await steps.share_machine(sharer, machine.id, friend.id, "CO_OWNER")
    escalate_group = await steps.share_group(sharer, group_id, friend.id, "CO_OWNER")
    self_promotion = await steps.share_machine(sharer, machine.id, sharer.id, "CO_OWNER")
    demote_co_owner = await steps.share_machine(sharer, machine.id, co_owner.id, "USER")
    remove_co_owner = await steps.call(
        UNSHARE_MACHINE, {"machineId": machine.id, "userId": co_owner.id}, sharer
    )
    plain = await steps.share_machine(plain_user, machine.id, friend.id, "USER")
    owner_level = await steps.share_machine(owner, machine.id, friend.id, "OWNER")

    assert escalate_machine["code"] == "SHARE_ESCALATION"
    assert escalate_group["code"] == "SHARE_ESCALATION"
    assert self_promotion["__typename"] == "ValidationError"
    assert demote_co_owner["code"] == "SHARE_ESCALATION"
    assert remove_co_owner["code"] == "SHARE_ESCALATION"
    assert plain["__typename"] == "PermissionDeniedError"  # MACHINE_USER cannot share at all
    assert owner_level["__typename"] == "ValidationError"  # only CO_OWNER or USER are granted
    assert await snapshot(domain) == before

    allowed = await steps.share_machine(sharer, machine.id, friend.id, "USER")
    allowed_group = await steps.share_group(sharer, group_id, friend.id, "USER")
    assert allowed["__typename"] == "MachinePayload"
    assert allowed_group["__typename"] == "MachineGroupPayload"
    assert (await steps.machine(friend, machine.id))["accessType"] == "USER"


@pytest.mark.rule("R14")
async def test_r14_changing_and_removing_shares(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    other = await fleet.person("MACHINE_OWNER")
    group_id = await steps.group(owner, "Team")
    await steps.share_group(owner, group_id, other.id, "USER")

    promoted = await steps.share_group(owner, group_id, other.id, "CO_OWNER")
    assert promoted["__typename"] == "MachineGroupPayload"
    assert (await steps.group_view(other, group_id))["accessType"] == "CO_OWNER"
    to_owner = await steps.share_group(owner, group_id, owner.id, "USER")
    assert to_owner["__typename"] == "ValidationError"

    removed = await steps.call(UNSHARE_GROUP, {"groupId": group_id, "userId": other.id}, owner)
    again = await steps.call(UNSHARE_GROUP, {"groupId": group_id, "userId": other.id}, owner)
    assert removed["__typename"] == "MachineGroupPayload"
    assert again["__typename"] == "NotFoundError"
    assert await steps.group_view(other, group_id) is None


@pytest.mark.rule("R15")
async def test_r15_deactivated_users_stay_listed_until_removed(
    fleet: Fleet, domain: DomainContext
) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    leaver = await fleet.person("MACHINE_OWNER")
    stayer = await fleet.person("MACHINE_USER")
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Team")
    await steps.share_machine(owner, machine.id, leaver.id, "CO_OWNER")
    await steps.share_machine(owner, machine.id, stayer.id, "USER")
    await steps.share_group(owner, group_id, leaver.id, "USER")

    assert (await steps.call(DEACTIVATE, {"id": leaver.id}, fleet.admin_token))[
        "__typename"
    ] == "UserPayload"

    view = await steps.machine(owner, machine.id)
    assert view["hasDeactivatedShares"] is True
    assert {e["user"]["id"]: e["deactivated"] for e in view["accessList"]} == {
        owner.id: False,
        leaver.id: True,
        stayer.id: False,
    }
    assert (await steps.group_view(owner, group_id))["hasDeactivatedShares"] is True
    listed = await steps.call(MACHINES, {}, owner)
    assert listed["nodes"][0]["hasDeactivatedShares"] is True

    # A deactivated user can do nothing, not even read; nothing can be shared with them.
    refused = await fleet.api.execute(
        "query($id: ID!) { machine(id: $id) { id } }", {"id": machine.id}, token=leaver.token
    )
    assert refused["errors"][0]["extensions"]["code"] == "USER_DEACTIVATED"
    before = await snapshot(domain)
    reshare = await steps.share_machine(owner, machine.id, leaver.id, "USER")
    assert reshare["code"] == "USER_DEACTIVATED" and reshare["rule"] == "R15"
    assert await snapshot(domain) == before

    # Someone with share rights removes them; the warning goes.
    await steps.call(UNSHARE_MACHINE, {"machineId": machine.id, "userId": leaver.id}, owner)
    await steps.call(UNSHARE_GROUP, {"groupId": group_id, "userId": leaver.id}, owner)
    assert (await steps.machine(owner, machine.id))["hasDeactivatedShares"] is False
    assert (await steps.group_view(owner, group_id))["hasDeactivatedShares"] is False


@pytest.mark.rule("R15")
async def test_r15_access_list_hidden_from_callers_without_access(fleet: Fleet) -> None:
    steps = Steps(fleet)
    owner = await fleet.person("MACHINE_OWNER")
    member = await fleet.person("MACHINE_USER")
    machine = await fleet.machine(owner, "bot-1")
    group_id = await steps.group(owner, "Team")
    await steps.added(owner, group_id, machine)
    await steps.share_group(owner, group_id, member.id, "USER")

    query = "query($id: ID!) { machineGroup(id: $id) { machines { accessType accessList { access } } } }"
    seen = await steps.call(query, {"id": group_id}, member)

    assert seen["machines"] == [{"accessType": None, "accessList": None}]
