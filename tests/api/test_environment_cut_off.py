"""The environment boundary (R38) around people and what runs show of them: who may deactivate a
user, cutting a user off from one environment, the run fields that name a connection, a flow or
a person, and the membership of a group the caller cannot see.

Hidden ids are compared with random ones as in ``test_visibility.py``: the whole answer, with the
id written as ``<id>``, and no row changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.context import Context
from api.schema import schema
from domain.context import DomainContext
from domain.identity import identity
from tests.api.group_steps import DEACTIVATE, REMOVE, Steps
from tests.api.test_visibility import answered_as_unknown, assert_not_found, snapshot
from tests.graphql import Fleet, Person
from tests.runs_given import Runs

pytestmark = pytest.mark.asyncio

REMOVE_FROM_ENVIRONMENT = """
mutation($env: ID!, $user: ID!) {
  removeUserFromEnvironment(environmentId: $env, userId: $user) {
    __typename
    ... on RemovedFromEnvironmentPayload { user { id } environmentId revokedRoles removedShares }
    ... on UserError { code message }
  }
}"""

ENVIRONMENTS = "{ environments { id } }"
MACHINE = "query($id: ID!) { machine(id: $id) { id } }"
AUDIT = """
query($env: ID!) {
  auditTrail(environmentId: $env, first: 20) { nodes { action targetId detail } }
}"""

WHO_IS_BEHIND = """
query($m: ID!, $r: ID!) {
  machineQueue(machineId: $m) {
    position
    run {
      id runAs
      connection { name windowsUsername }
      flow { name }
      triggeredBy { email }
      connectionOwner { email }
    }
  }
  run(id: $r) {
    id connection { name } flow { name } triggeredBy { email } connectionOwner { email }
  }
}"""

MACHINE_STATUS = """
subscription($env: ID) {
  machineStatus(filter: {environmentId: $env}) { snapshot removedIds machines { machineId } }
}"""


async def _deactivate(fleet: Fleet, who: Person, user_id: str) -> dict[str, Any]:
    return (await fleet.api.data(DEACTIVATE, {"id": user_id}, token=who.token))["deactivateUser"]


@pytest.mark.rule("R15")
@pytest.mark.rule("R38")
async def test_a_user_outside_the_callers_environments_is_an_unknown_id_to_deactivate(
    fleet: Fleet, domain: DomainContext
) -> None:
    user = await fleet.person("MACHINE_OWNER")
    elsewhere = await fleet.environment("Elsewhere")
    other_admin = await fleet.person("ENVIRONMENT_ADMIN", environment_id=elsewhere)
    maker = await fleet.person("ENVIRONMENT_MAKER")  # administers nothing

    for document in (DEACTIVATE, DEACTIVATE.replace("deactivateUser", "reactivateUser")):
        hidden = await answered_as_unknown(
            fleet, domain, document, lambda i: {"id": i}, user.id, other_admin
        )
        assert_not_found(hidden, "user", user.id)
        # Whoever administers no environment is refused alike, whether the user exists or not.
        refused = await answered_as_unknown(
            fleet, domain, document, lambda i: {"id": i}, user.id, maker
        )
        (result,) = refused["data"].values()
        assert result["code"] == "NOT_ADMIN", result


@pytest.mark.rule("R15")
@pytest.mark.rule("R38")
async def test_a_role_granted_elsewhere_never_stops_an_admin_cutting_a_user_off(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    steps = Steps(fleet)
    admin_a = await fleet.person("ENVIRONMENT_ADMIN")
    user = await fleet.person("MACHINE_USER")
    owner = await fleet.person("MACHINE_OWNER")
    machine = await runs.machine(owner)
    group_id = await runs.group(owner)
    for shared in (
        await steps.share_machine(owner, machine.id, user.id, "USER"),
        await steps.share_group(owner, group_id, user.id, "USER"),
    ):
        assert shared["__typename"] in ("MachinePayload", "MachineGroupPayload"), shared
    environment_b = await fleet.environment("B")
    admin_b = await fleet.person("ENVIRONMENT_ADMIN", environment_id=environment_b)
    granted = await fleet.api.data(
        """mutation($env: ID!, $u: ID!) { assignRole(input: {environmentId: $env, userId: $u,
        role: MACHINE_USER}) { __typename } }""",
        {"env": environment_b, "u": user.id},
        token=admin_b.token,
    )
    assert granted["assignRole"]["__typename"] == "RoleGrantPayload"

    # Deactivation acts everywhere: B's admin now shares that decision...
    shared_decision = await _deactivate(fleet, admin_a, user.id)
    assert shared_decision["code"] == "NOT_ADMIN", shared_decision
    # ... and B's admin cannot touch A's members (A is an unknown environment to them).
    outsider = await fleet.api.data(
        REMOVE_FROM_ENVIRONMENT, {"env": fleet.environment_id, "user": user.id}, token=admin_b.token
    )
    assert outsider["removeUserFromEnvironment"]["code"] == "NOT_FOUND"
    # Their subscription sees the machine, until they are cut off.
    principal = await identity.authenticate(domain, user.token)
    stream = await schema.subscribe(
        MACHINE_STATUS,
        variable_values={"env": fleet.environment_id},
        context_value=Context(domain=domain, credential=principal),
    )
    first = await anext(stream)  # type: ignore[arg-type]
    assert [m["machineId"] for m in first.data["machineStatus"]["machines"]] == [machine.id]

    removed = await fleet.api.data(
        REMOVE_FROM_ENVIRONMENT, {"env": fleet.environment_id, "user": user.id}, token=admin_a.token
    )

    result = removed["removeUserFromEnvironment"]
    assert result == {
        "__typename": "RemovedFromEnvironmentPayload",
        "user": {"id": user.id},
        "environmentId": fleet.environment_id,
        "revokedRoles": ["MACHINE_USER"],
        "removedShares": 2,
    }
    change = await anext(stream)  # type: ignore[arg-type]
    assert change.data["machineStatus"]["removedIds"] == [machine.id]
    await stream.aclose()  # type: ignore[union-attr]
    assert (await fleet.api.data(ENVIRONMENTS, token=user.token))["environments"] == [
        {"id": environment_b}
    ]
    assert (await fleet.api.data(MACHINE, {"id": machine.id}, token=user.token))["machine"] is None
    trail = await fleet.api.data(AUDIT, {"env": fleet.environment_id}, token=admin_a.token)
    actions = {(e["action"], e["targetId"]) for e in trail["auditTrail"]["nodes"]}
    assert {
        ("ROLE_REVOKED", user.id),
        ("MACHINE_UNSHARED", machine.id),
        ("GROUP_UNSHARED", group_id),
    } <= actions
    # Removed, they are no longer A's: to A's admin now an unknown id, to remove or deactivate.
    before = await snapshot(domain)
    again = await fleet.api.data(
        REMOVE_FROM_ENVIRONMENT, {"env": fleet.environment_id, "user": user.id}, token=admin_a.token
    )
    assert again["removeUserFromEnvironment"]["code"] == "NOT_FOUND"
    assert (await _deactivate(fleet, admin_a, user.id))["code"] == "NOT_FOUND"
    # B's admin alone administers them now, and may deactivate them.
    assert (await _deactivate(fleet, admin_b, user.id))["__typename"] == "UserPayload"
    assert before != await snapshot(domain)


@pytest.mark.rule("R38")
async def test_only_the_environments_admins_remove_its_users(
    fleet: Fleet, domain: DomainContext
) -> None:
    admin = await fleet.person("ENVIRONMENT_ADMIN")
    maker = await fleet.person("ENVIRONMENT_MAKER")
    user = await fleet.person("MACHINE_USER")
    before = await snapshot(domain)

    refused = await fleet.api.data(
        REMOVE_FROM_ENVIRONMENT, {"env": fleet.environment_id, "user": user.id}, token=maker.token
    )
    themself = await fleet.api.data(
        REMOVE_FROM_ENVIRONMENT, {"env": fleet.environment_id, "user": admin.id}, token=admin.token
    )
    unknown = await answered_as_unknown(
        fleet,
        domain,
        REMOVE_FROM_ENVIRONMENT,
        lambda i: {"env": fleet.environment_id, "user": i},
        (await fleet.person()).id,  # a user with nothing in this environment
        admin,
    )

    assert refused["removeUserFromEnvironment"]["code"] == "NOT_ADMIN"
    assert themself["removeUserFromEnvironment"]["code"] == "PERMISSION_DENIED"
    (result,) = unknown["data"].values()
    assert result["code"] == "NOT_FOUND"
    assert await snapshot(domain) == before


@pytest.mark.rule("R12")
@pytest.mark.rule("R38")
async def test_removing_a_machine_from_a_group_the_caller_cannot_see_is_an_unknown_machine(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner)
    group_id = await runs.group(owner, machine)
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    elsewhere = await fleet.environment("Elsewhere")
    other_admin = await fleet.person("ENVIRONMENT_ADMIN", environment_id=elsewhere)

    for caller in (stranger, other_admin):
        answer = await answered_as_unknown(
            fleet, domain, REMOVE, lambda i: {"machineId": i}, machine.id, caller
        )
        assert_not_found(answer, "machine", machine.id)
        assert group_id not in str(answer)


@pytest.mark.rule("R12")
@pytest.mark.rule("R38")
async def test_a_queue_shows_a_runs_connection_flow_and_people_only_to_who_may_see_them(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    await runs.heartbeat(machine, {target.username: "ACTIVE"})  # the run stays queued
    run_id = await runs.trigger(target)
    user = await fleet.person("MACHINE_USER")
    shared = await Steps(fleet).share_machine(owner, machine.id, user.id, "USER")
    assert shared["__typename"] == "MachinePayload", shared
    variables = {"m": machine.id, "r": run_id}

    seen_by_user = await fleet.api.data(WHO_IS_BEHIND, variables, token=user.token)
    seen_by_owner = await fleet.api.data(WHO_IS_BEHIND, variables, token=owner.token)

    hidden = {"connection": None, "flow": None, "triggeredBy": None, "connectionOwner": None}
    (entry,) = seen_by_user["machineQueue"]
    assert entry["position"] == 1
    assert {k: entry["run"][k] for k in hidden} == hidden
    assert {k: seen_by_user["run"][k] for k in hidden} == hidden
    (own,) = seen_by_owner["machineQueue"]
    assert own["run"]["connection"]["windowsUsername"] == target.username
    assert own["run"]["flow"] is not None
    assert own["run"]["triggeredBy"]["email"].endswith("@example.test")
    assert seen_by_owner["run"]["connectionOwner"] is not None


@pytest.mark.rule("R23")
@pytest.mark.rule("R38")
async def test_a_connection_whose_target_the_caller_no_longer_sees_names_only_the_connection(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    user = await fleet.person("MACHINE_USER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    steps = Steps(fleet)
    assert (await steps.share_machine(owner, machine.id, user.id, "USER"))["__typename"] == (
        "MachinePayload"
    )
    connection_id = await runs.connection(user, machine_id=machine.id)
    flow_id = await runs.flow(owner)
    unshared = await fleet.api.data(
        """mutation($m: ID!, $u: ID!) { unshareMachine(machineId: $m, userId: $u) {
        __typename } }""",
        {"m": machine.id, "u": user.id},
        token=owner.token,
    )
    assert unshared["unshareMachine"]["__typename"] == "MachinePayload"
    own_flow = await fleet.api.data(
        """mutation($env: ID!) { createDesktopFlow(input: {environmentId: $env, name: "f"}) {
        ... on DesktopFlowPayload { flow { id } } } }""",
        {"env": fleet.environment_id},
        token=user.token,
    )
    before = await snapshot(domain)

    answer = await fleet.api.data(
        """mutation($input: TriggerRunInput!) { triggerRun(input: $input) {
        __typename ... on UserError { code message } } }""",
        {
            "input": {
                "flowId": own_flow["createDesktopFlow"]["flow"]["id"],
                "connectionId": connection_id,
                "mode": "UNATTENDED",
            }
        },
        token=user.token,
    )

    result = answer["triggerRun"]
    assert result["code"] == "NOT_FOUND", result
    assert connection_id in result["message"]
    assert machine.id not in result["message"] and flow_id not in result["message"]
    assert await snapshot(domain) == before
