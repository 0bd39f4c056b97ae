"""The audit trail: every change of machines, groups, shares, roles, maintenance and
connections is recorded with its actor in the transaction of the change; environment admins read
it a page at a time, newest first; a refused change leaves no entry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.connections import connections
from domain.context import DomainContext
from domain.kernel.clock import ManualClock
from tests import connection_steps as steps
from tests.api.test_gateways import switch
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

TRAIL = """
query($env: ID!, $first: Int!, $after: String, $filter: AuditFilterInput) {
  auditTrail(environmentId: $env, first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id at action targetKind targetId targetName detail actorId
                         actor { id } } }
  }
}"""
MUTATIONS = {
    "unshare": "mutation($m: ID!, $u: ID!) { unshareMachine(machineId: $m, userId: $u) { __typename } }",
    "maintenance": """mutation($id: ID!, $on: Boolean!) {
        setMachineMaintenance(id: $id, enabled: $on) { __typename ... on UserError { code } } }""",
    "add": """mutation($g: ID!, $m: ID!) {
        addMachineToGroup(groupId: $g, machineId: $m) { __typename ... on UserError { code } } }""",
    "group_maintenance": """mutation($id: ID!, $on: Boolean!) {
        setMachineGroupMaintenance(id: $id, enabled: $on) { __typename ... on UserError { code } } }""",
    "deactivate": "mutation($id: ID!) { deactivateUser(id: $id) { __typename } }",
    "reactivate": "mutation($id: ID!) { reactivateUser(id: $id) { __typename } }",
    "revoke_role": """mutation($input: RoleInput!) { revokeRole(input: $input) { __typename } }""",
    "move": """mutation($id: ID!, $env: ID!) {
        changeMachineEnvironment(id: $id, environmentId: $env) { __typename } }""",
    "delete": "mutation($id: ID!) { deleteMachine(id: $id) { __typename } }",
    "delete_connection": "mutation($id: ID!) { deleteConnection(id: $id) { __typename } }",
}


async def run(api: GraphQLClient, name: str, token: str, **variables: Any) -> dict[str, Any]:
    data = await api.data(MUTATIONS[name], variables, token=token)
    (result,) = data.values()
    assert "code" not in result, (name, result)
    return result


async def trail(api: GraphQLClient, token: str, env: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every entry, walking pages of ``first`` (default 100)."""
    entries: list[dict[str, Any]] = []
    after = None
    while True:
        data = await api.data(
            TRAIL,
            {"env": env, "first": kwargs.get("first", 100), "after": after, **kwargs},
            token=token,
        )
        page = data["auditTrail"]
        entries.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            assert page["totalCount"] == len(entries)
            return entries
        after = page["pageInfo"]["endCursor"]


async def test_every_change_is_recorded_with_its_actor_newest_first(
    fleet: Fleet, api: GraphQLClient, domain: DomainContext, clock: ManualClock
) -> None:
    env = fleet.environment_id
    owner = await fleet.person("MACHINE_OWNER", name="owner")
    user = await fleet.person("MACHINE_USER", name="user")
    other_env = await fleet.environment("Elsewhere")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=other_env)
    admin = fleet.admin_token

    def tick() -> None:
        clock.advance(timedelta(seconds=1))

    tick()
    machine = await fleet.machine(owner, "bot-1")
    tick()
    await steps.share_machine(fleet, owner, machine.id, user)
    tick()
    await run(api, "unshare", owner.token, m=machine.id, u=user.id)
    tick()
    await run(api, "maintenance", owner.token, id=machine.id, on=True)
    tick()
    await run(api, "maintenance", owner.token, id=machine.id, on=False)
    tick()
    group_id = await steps.group(fleet, owner, "pool")
    tick()
    await run(api, "add", owner.token, g=group_id, m=machine.id)
    tick()
    await run(api, "group_maintenance", owner.token, id=group_id, on=True)
    tick()
    conn = await steps.connection(fleet, owner, machine_id=machine.id)
    tick()
    await run(api, "delete_connection", owner.token, id=conn["id"])
    tick()
    gateway = await connections.seed_legacy_gateway(domain, environment_id=env, name="gw")
    legacy = await connections.seed_legacy_gateway_connection(
        domain, gateway_id=gateway.id, owner_id=owner.id, name="old", windows_username="x\\y"
    )
    switched = await switch(fleet, owner, legacy.id, machineId=machine.id)
    assert switched["__typename"] == "SwitchedConnectionPayload", switched
    tick()
    await run(api, "deactivate", admin, id=user.id)
    tick()
    await run(api, "reactivate", admin, id=user.id)
    tick()
    await run(
        api,
        "revoke_role",
        admin,
        input={"environmentId": env, "userId": user.id, "role": "MACHINE_USER"},
    )
    tick()
    await run(api, "move", owner.token, id=machine.id, env=other_env)
    tick()
    second = await fleet.machine(owner, "bot-2")
    tick()
    await run(api, "delete", owner.token, id=second.id)

    entries = await trail(api, admin, env)
    paged = await trail(api, admin, env, first=3)
    elsewhere = await trail(api, admin, other_env)

    got = [(e["action"], e["targetName"], e["detail"]) for e in entries]
    assert got[:16] == [
        ("MACHINE_DELETED", "bot-2", None),
        ("MACHINE_REGISTERED", "bot-2", None),
        ("MACHINE_MOVED", "bot-1", f"from environment {env} to {other_env}"),
        ("ROLE_REVOKED", None, "MACHINE_USER"),
        ("USER_REACTIVATED", "user", None),
        ("USER_DEACTIVATED", "user", None),
        ("CONNECTION_SWITCHED_TO_DIRECT", "old", None),
        ("CONNECTION_DELETED", "conn", None),
        ("CONNECTION_CREATED", "conn", None),
        ("GROUP_MAINTENANCE", "pool", "on"),
        ("GROUP_MACHINE_ADDED", "pool", machine.id),
        ("GROUP_CREATED", "pool", None),
        ("MACHINE_MAINTENANCE", "bot-1", "off"),
        ("MACHINE_MAINTENANCE", "bot-1", "on"),
        ("MACHINE_UNSHARED", "bot-1", f"access of user {user.id}"),
        ("MACHINE_SHARED", "bot-1", f"USER access for user {user.id}"),
    ]
    assert got[16] == ("MACHINE_REGISTERED", "bot-1", None)
    # The given-steps' role grants come first (oldest): made by the admin.
    assert {a for a, _, _ in got[17:]} == {"ROLE_ASSIGNED"}
    assert paged == entries  # pages never skip or repeat
    by_action = {e["action"]: e for e in entries}
    assert by_action["MACHINE_SHARED"]["actorId"] == owner.id
    assert by_action["MACHINE_SHARED"]["actor"] == {"id": owner.id}
    assert by_action["MACHINE_SHARED"]["targetKind"] == "MACHINE"
    assert by_action["USER_DEACTIVATED"]["targetId"] == user.id
    assert by_action["USER_DEACTIVATED"]["targetKind"] == "USER"
    assert by_action["CONNECTION_DELETED"]["targetId"] == conn["id"]
    # R6: the admins of the machine's new environment see it arrive.
    assert elsewhere[0]["action"] == "MACHINE_MOVED"
    assert elsewhere[0]["targetId"] == machine.id


async def test_filters_by_action_actor_and_target(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    a = await fleet.machine(owner, "a")
    await fleet.machine(owner, "b")
    env = fleet.environment_id

    registered = await trail(
        api, fleet.admin_token, env, filter={"actions": ["MACHINE_REGISTERED"]}
    )
    of_a = await trail(api, fleet.admin_token, env, filter={"targetId": a.id})
    by_owner = await trail(api, fleet.admin_token, env, filter={"actorId": owner.id})

    assert [e["targetName"] for e in registered] == ["b", "a"]
    assert [e["action"] for e in of_a] == ["MACHINE_REGISTERED"]
    assert {e["action"] for e in by_owner} == {"MACHINE_REGISTERED"}


async def test_only_environment_admins_read_the_trail(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    elsewhere = await fleet.environment("Other")
    other_admin = await fleet.person("ENVIRONMENT_ADMIN", environment_id=elsewhere)
    await fleet.machine(owner, "bot")

    as_env_admin = await trail(api, env_admin.token, fleet.environment_id)
    refused = [
        await api.execute(TRAIL, {"env": fleet.environment_id, "first": 10}, token=p.token)
        for p in (owner, other_admin)
    ]
    too_large = await api.execute(
        TRAIL, {"env": fleet.environment_id, "first": 101}, token=fleet.admin_token
    )
    bad_cursor = await api.execute(
        TRAIL, {"env": fleet.environment_id, "first": 1, "after": "nope"}, token=fleet.admin_token
    )

    assert "MACHINE_REGISTERED" in {e["action"] for e in as_env_admin}
    by_owner, by_other_admin = refused
    for result in refused:
        assert result["data"] is None
    # The owner sees the environment (a role in it) and is told why; the admin of another
    # environment cannot see it: not found, as an environment that does not exist (R38).
    assert by_owner["errors"][0]["extensions"]["code"] == "NOT_ADMIN"
    assert by_other_admin["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert too_large["errors"][0]["extensions"]["code"] == "PAGE_TOO_LARGE"
    assert bad_cursor["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


@pytest.mark.rule("R14")
@pytest.mark.rule("R11")
async def test_a_refused_change_leaves_no_entry(
    fleet: Fleet, api: GraphQLClient, domain: DomainContext
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    user = await fleet.person("MACHINE_USER")
    third = await fleet.person("MACHINE_USER")
    machine = await fleet.machine(owner, "bot")
    await steps.share_machine(fleet, owner, machine.id, user)
    before = await trail(api, fleet.admin_token, fleet.environment_id)

    # R12/R14: a USER may not share; R5: the name is taken; R11: the group is full.
    share = await api.data(
        steps.SHARE_MACHINE,
        {"input": {"machineId": machine.id, "userId": third.id, "access": "USER"}},
        token=user.token,
    )
    taken = await fleet.register(owner, "bot")
    domain.settings.group_machine_limit = 1
    group_id = await steps.group(fleet, owner, "tiny")
    second = await fleet.machine(owner, "bot-2")
    await run(api, "add", owner.token, g=group_id, m=machine.id)
    full = await api.data(MUTATIONS["add"], {"g": group_id, "m": second.id}, token=owner.token)
    after = await trail(api, fleet.admin_token, fleet.environment_id)

    assert share["shareMachine"]["__typename"] == "PermissionDeniedError"
    assert taken["__typename"] == "ConflictError"
    assert full["addMachineToGroup"] == {"__typename": "RuleViolationError", "code": "GROUP_FULL"}
    added = [e["action"] for e in after[: len(after) - len(before)]]
    assert added == ["GROUP_MACHINE_ADDED", "MACHINE_REGISTERED", "GROUP_CREATED"]
    assert after[len(after) - len(before) :] == before
