"""One visibility rule per resource (R38): whatever a caller may not see is answered exactly as an
id that does not exist, by every operation that names it, and changes nothing. A caller who can
see a resource but lacks the right to act on it is told so (R12, R13).

Each case asks the same operation twice, with the id of an existing resource the caller cannot see
and with a random id, and compares the whole answers (data, errors, extensions) with each id
written as ``<id>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from domain.context import DomainContext
from tests.api.group_steps import snapshot as rows_of
from tests.connection_steps import CREATE_FLOW, DELETE_CONNECTION, GET_CONNECTION, UPDATE_CONNECTION
from tests.graphql import UPDATE_ENVIRONMENT, Fleet, Person, written_masked
from tests.runs_given import (
    CANCEL_RUN,
    CHANGE_RUN_PRIORITY,
    GET_RUN,
    GROUP_QUEUE,
    MACHINE_QUEUE,
    MOVE_RUN_TO_TOP,
    TRIGGER_RUN,
    Runs,
    Target,
)

pytestmark = pytest.mark.asyncio

TABLES = (
    "environments",
    "role_assignments",
    "machines",
    "machine_groups",
    "shares",
    "connections",
    "desktop_flows",
    "flow_runs",
    "audit_entries",
)

SWITCH_TO_DIRECT = """
mutation($input: SwitchConnectionToDirectInput!) {
  switchConnectionToDirect(input: $input) {
    __typename ... on UserError { code message }
  }
}"""

RENAME_FLOW = """
mutation($id: ID!) {
  renameDesktopFlow(id: $id, name: "renamed") { __typename ... on UserError { code message } }
}"""

GET_FLOW = "query($id: ID!) { desktopFlow(id: $id) { id name } }"
GET_MACHINE = "query($id: ID!) { machine(id: $id) { id name } }"
GET_GROUP = "query($id: ID!) { machineGroup(id: $id) { id name } }"

UPDATE_MACHINE = """
mutation($id: ID!) {
  updateMachine(input: {id: $id, description: "changed"}) {
    __typename ... on UserError { code message }
  }
}"""

AUDIT_TRAIL = "query($id: ID!) { auditTrail(environmentId: $id, first: 5) { totalCount } }"
GATEWAYS = "query($id: ID!) { gateways(environmentId: $id) { id } }"

ASSIGN_ROLE = """
mutation($env: ID!, $user: ID!) {
  assignRole(input: {environmentId: $env, userId: $user, role: MACHINE_USER}) {
    __typename ... on UserError { code message }
  }
}"""


async def snapshot(domain: DomainContext) -> dict[str, list[tuple[Any, ...]]]:
    return await rows_of(domain, TABLES)


async def answered_as_unknown(
    fleet: Fleet,
    domain: DomainContext,
    document: str,
    variables: Callable[[str], dict[str, Any]],
    hidden_id: str,
    caller: Person,
) -> dict[str, Any]:
    """Ask ``document`` about ``hidden_id`` and about a random id; assert both answers are the
    same and that nothing changed. Returns the answer about ``hidden_id``."""
    before = await snapshot(domain)
    hidden = await fleet.api.execute(document, variables(hidden_id), token=caller.token)
    unknown_id = str(uuid.uuid4())
    unknown = await fleet.api.execute(document, variables(unknown_id), token=caller.token)
    assert written_masked(hidden, hidden_id) == written_masked(unknown, unknown_id), (
        hidden,
        unknown,
    )
    assert await snapshot(domain) == before
    return hidden


def _result(answer: dict[str, Any]) -> dict[str, Any]:
    assert not answer.get("errors"), answer
    (value,) = answer["data"].values()
    return value


def assert_not_found(answer: dict[str, Any], what: str, ident: str) -> None:
    """A typed NOT_FOUND that names the id given, and nothing else."""
    result = _result(answer)
    assert result["__typename"] == "NotFoundError", result
    assert result["code"] == "NOT_FOUND"
    assert result["message"] == f"{what} {ident} does not exist or is not visible to you"


def assert_error_not_found(answer: dict[str, Any], ident: str) -> None:
    """A read refused in ``errors`` with code NOT_FOUND, naming the id given."""
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert ident in error["message"]


async def _someone_elses_target(runs: Runs, owner: Person) -> Target:
    await runs.capacity(2)
    return await runs.target(owner, machine=await runs.machine(owner, bots=1))


@pytest.mark.rule("R21")
async def test_someone_elses_connection_is_answered_as_an_unknown_id(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")  # a role here, but not the owner
    elsewhere = await fleet.environment("Elsewhere")
    other_admin = await fleet.person("ENVIRONMENT_ADMIN", environment_id=elsewhere)
    target = await _someone_elses_target(runs, owner)
    own_machine = await runs.machine(stranger)
    hidden = target.connection_id

    for caller in (stranger, other_admin):
        got = await answered_as_unknown(
            fleet, domain, GET_CONNECTION, lambda i: {"id": i}, hidden, caller
        )
        assert got["data"] == {"connection": None}
        for document, variables in (
            (UPDATE_CONNECTION, lambda i: {"input": {"id": i, "name": "Hijacked"}}),
            (DELETE_CONNECTION, lambda i: {"id": i}),
            (
                SWITCH_TO_DIRECT,
                lambda i: {
                    "input": {
                        "connectionId": i,
                        "machineId": own_machine.id,
                        "windowsUsername": "robot",
                        "password": "Tr0ub4dor&3 horse-battery-staple",
                    }
                },
            ),
        ):
            answer = await answered_as_unknown(fleet, domain, document, variables, hidden, caller)
            assert_not_found(answer, "connection", hidden)


@pytest.mark.rule("R23")
async def test_triggering_through_someone_elses_connection_is_answered_as_an_unknown_id(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    target = await _someone_elses_target(runs, owner)
    strangers_flow = await runs.flow(stranger)

    answer = await answered_as_unknown(
        fleet,
        domain,
        TRIGGER_RUN,
        lambda i: {"input": {"flowId": strangers_flow, "connectionId": i, "mode": "UNATTENDED"}},
        target.connection_id,
        stranger,
    )

    # It used to be PERMISSION_DENIED naming the connection: its existence and its name leaked.
    assert_not_found(answer, "connection", target.connection_id)


@pytest.mark.rule("R23")
async def test_triggering_someone_elses_flow_is_answered_as_an_unknown_id(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    other = await fleet.person("ENVIRONMENT_MAKER")
    target = await _someone_elses_target(runs, owner)
    others_flow = await runs.flow(other)  # same environment; `desktopFlow` hides it from owner

    for document, variables in (
        (
            TRIGGER_RUN,
            lambda i: {
                "input": {"flowId": i, "connectionId": target.connection_id, "mode": "UNATTENDED"}
            },
        ),
        (RENAME_FLOW, lambda i: {"id": i}),
    ):
        answer = await answered_as_unknown(fleet, domain, document, variables, others_flow, owner)
        assert_not_found(answer, "desktop flow", others_flow)
    got = await answered_as_unknown(
        fleet, domain, GET_FLOW, lambda i: {"id": i}, others_flow, owner
    )
    assert got["data"] == {"desktopFlow": None}


@pytest.mark.rule("R23")
async def test_a_flow_of_another_environment_is_not_found_not_cross_environment(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    target = await _someone_elses_target(runs, owner)
    elsewhere = await fleet.environment("Elsewhere")
    other = await fleet.person("ENVIRONMENT_MAKER", environment_id=elsewhere)
    data = await fleet.api.data(
        CREATE_FLOW, {"input": {"environmentId": elsewhere, "name": "theirs"}}, token=other.token
    )
    hidden_flow = data["createDesktopFlow"]["flow"]["id"]
    own_elsewhere = await fleet.person("ENVIRONMENT_ADMIN", environment_id=elsewhere)
    await fleet.grant(own_elsewhere.id, "ENVIRONMENT_MAKER")
    admins_connection = await runs.target(own_elsewhere, machine=await runs.machine(own_elsewhere))

    def trigger(connection_id: str) -> Callable[[str], dict[str, Any]]:
        return lambda i: {
            "input": {"flowId": i, "connectionId": connection_id, "mode": "UNATTENDED"}
        }

    answer = await answered_as_unknown(
        fleet, domain, TRIGGER_RUN, trigger(target.connection_id), hidden_flow, owner
    )
    # An admin of the flow's environment sees the flow, yet the connection's environment holds
    # no such flow: answered as an unknown id too, whoever asks (R38), never CROSS_ENVIRONMENT.
    seen = await answered_as_unknown(
        fleet,
        domain,
        TRIGGER_RUN,
        trigger(admins_connection.connection_id),
        hidden_flow,
        own_elsewhere,
    )

    assert_not_found(answer, "desktop flow", hidden_flow)
    assert_not_found(seen, "desktop flow", hidden_flow)


@pytest.mark.rule("R12")
async def test_a_run_the_caller_cannot_see_is_answered_as_an_unknown_id(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    target = await _someone_elses_target(runs, owner)
    await runs.heartbeat(target.machine, {target.username: "ACTIVE"})  # the run stays queued
    run_id = await runs.trigger(target)

    got = await answered_as_unknown(fleet, domain, GET_RUN, lambda i: {"id": i}, run_id, stranger)
    assert got["data"] == {"run": None}
    for document, variables in (
        (CANCEL_RUN, lambda i: {"id": i}),
        (MOVE_RUN_TO_TOP, lambda i: {"id": i}),
        (CHANGE_RUN_PRIORITY, lambda i: {"id": i, "priority": "HIGH"}),
    ):
        answer = await answered_as_unknown(fleet, domain, document, variables, run_id, stranger)
        assert_not_found(answer, "run", run_id)


@pytest.mark.rule("R12")
async def test_machines_groups_and_environments_the_caller_cannot_see_are_unknown_ids(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner)
    group_id = await runs.group(owner)
    elsewhere = await fleet.environment("Elsewhere")

    got = await answered_as_unknown(
        fleet, domain, GET_MACHINE, lambda i: {"id": i}, machine.id, stranger
    )
    assert got["data"] == {"machine": None}
    answer = await answered_as_unknown(
        fleet, domain, UPDATE_MACHINE, lambda i: {"id": i}, machine.id, stranger
    )
    assert_not_found(answer, "machine", machine.id)
    answer = await answered_as_unknown(
        fleet, domain, MACHINE_QUEUE, lambda i: {"id": i}, machine.id, stranger
    )
    assert_error_not_found(answer, machine.id)

    got = await answered_as_unknown(
        fleet, domain, GET_GROUP, lambda i: {"id": i}, group_id, stranger
    )
    assert got["data"] == {"machineGroup": None}
    answer = await answered_as_unknown(
        fleet, domain, GROUP_QUEUE, lambda i: {"id": i}, group_id, stranger
    )
    assert_error_not_found(answer, group_id)

    # An environment where the caller holds no role: it used to answer NOT_ADMIN, which told
    # that it exists.
    for document in (AUDIT_TRAIL, GATEWAYS):
        answer = await answered_as_unknown(
            fleet, domain, document, lambda i: {"id": i}, elsewhere, stranger
        )
        assert_error_not_found(answer, elsewhere)
    for document, variables in (
        (UPDATE_ENVIRONMENT, lambda i: {"input": {"id": i, "restrictRegistration": True}}),
        (ASSIGN_ROLE, lambda i: {"env": i, "user": stranger.id}),
    ):
        answer = await answered_as_unknown(fleet, domain, document, variables, elsewhere, stranger)
        assert_not_found(answer, "environment", elsewhere)


@pytest.mark.rule("R12")
@pytest.mark.rule("R13")
async def test_who_can_see_but_may_not_act_is_refused_not_hidden(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    maker = await fleet.person("ENVIRONMENT_MAKER")
    target = await _someone_elses_target(runs, owner)
    await runs.heartbeat(target.machine, {target.username: "ACTIVE"})  # the run stays queued
    run_id = await runs.trigger(target)
    # A machine user the owner shared the machine with: sees the run queued on it (R12 USER),
    # may not manage it.
    user = await fleet.person("MACHINE_USER")
    shared = await fleet.api.data(
        """mutation($m: ID!, $u: ID!) { shareMachine(input: {machineId: $m, userId: $u,
        access: USER}) { __typename } }""",
        {"m": target.machine.id, "u": user.id},
        token=owner.token,
    )
    assert shared["shareMachine"]["__typename"] == "MachinePayload"
    before = await snapshot(domain)

    edit_by_admin = await fleet.api.data(
        UPDATE_CONNECTION,
        {"input": {"id": target.connection_id, "name": "Hijacked"}},
        token=env_admin.token,
    )
    cancel_by_user = await fleet.api.data(CANCEL_RUN, {"id": run_id}, token=user.token)
    seen_by_user = await fleet.api.data(GET_RUN, {"id": run_id}, token=user.token)
    not_admin = await fleet.api.data(
        UPDATE_ENVIRONMENT,
        {"input": {"id": fleet.environment_id, "restrictRegistration": True}},
        token=maker.token,
    )

    assert edit_by_admin["updateConnection"]["__typename"] == "PermissionDeniedError"
    assert cancel_by_user["cancelRun"]["__typename"] == "PermissionDeniedError"
    assert cancel_by_user["cancelRun"]["code"] == "PERMISSION_DENIED"
    assert seen_by_user["run"]["id"] == run_id
    assert not_admin["updateEnvironment"]["code"] == "NOT_ADMIN"
    assert await snapshot(domain) == before


@pytest.mark.rule("R13")
async def test_the_connection_owner_without_a_run_role_is_refused_not_hidden(
    fleet: Fleet, domain: DomainContext, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    user = await fleet.person("MACHINE_USER")
    shared = await fleet.api.data(
        """mutation($m: ID!, $u: ID!) { shareMachine(input: {machineId: $m, userId: $u,
        access: USER}) { __typename } }""",
        {"m": machine.id, "u": user.id},
        token=owner.token,
    )
    assert shared["shareMachine"]["__typename"] == "MachinePayload"
    target = await runs.target(user, machine=machine)
    revoked = await fleet.api.data(
        """mutation($env: ID!, $u: ID!) { revokeRole(input: {environmentId: $env, userId: $u,
        role: MACHINE_USER}) { __typename } }""",
        {"env": fleet.environment_id, "u": user.id},
        token=fleet.admin_token,
    )
    assert revoked["revokeRole"]["__typename"] == "RoleGrantPayload"
    before = await snapshot(domain)

    refused = (await fleet.api.data(TRIGGER_RUN, _trigger_input(target), token=user.token))[
        "triggerRun"
    ]

    # Their own connection, the machine shared with them: both visible. The security role that
    # grants running flows is gone (R13): told so, not "not found".
    assert refused["__typename"] == "PermissionDeniedError", refused
    assert "security roles" in refused["message"]
    assert await snapshot(domain) == before


def _trigger_input(target: Target) -> dict[str, Any]:
    return {
        "input": {
            "flowId": target.flow_id,
            "connectionId": target.connection_id,
            "mode": "UNATTENDED",
        }
    }
