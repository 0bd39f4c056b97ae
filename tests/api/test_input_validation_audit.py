"""Input validation at the domain boundary, mutation by mutation.

The audit walked every mutation argument in schema.graphql (strings, numbers, lists, ids; enums
are checked by GraphQL itself). For each, one value the domain must refuse: the answer is a typed
ValidationError with its code, naming the field, and nothing at all is written (every table read
back unchanged, the audit trail included). Registration's fields are in tests/api/test_bad_input.py.

Gap found and closed by this audit: ``attempt`` of confirmRunStarted / reportRunFinished was not
range-checked (0 or -1 came back as a STALE_ATTEMPT conflict); it is now INVALID_VALUE.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlmodel import SQLModel, select

from domain.context import DomainContext
from tests.graphql import Fleet, GraphQLClient, RegisteredMachine

pytestmark = pytest.mark.asyncio

SOME_ID = str(uuid.UUID(int=7))  # a well-formed id nobody has: never reached (validated first)
LONG = "x" * 10_001


def mutation(name: str, signature: str, arguments: str) -> str:
    return (
        f"mutation({signature}) {{ {name}({arguments}) "
        "{ __typename ... on UserError { code message } } }"
    )


def with_input(name: str, input_type: str) -> str:
    return mutation(name, f"$input: {input_type}!", "input: $input")


def by_id(name: str) -> str:
    return mutation(name, "$id: ID!", "id: $id")


# (case, document, variables, code, field named in the message, as the machine?)
Case = tuple[str, str, dict[str, Any], str, str, bool]
ENV = "ENVIRONMENT"  # replaced by the fleet's environment id
USER = {"displayName": "Ada", "email": "ada@example.test"}
CONNECTION = {"name": "c", "machineId": SOME_ID, "windowsUsername": "CONTOSO\\bot", "password": "p"}
HEARTBEAT = {"runtimeVersion": "2.8.73.21119", "osEdition": "Windows 11 Pro"}
FINISH = {"runId": SOME_ID, "attempt": 1, "outcome": "SUCCEEDED"}
SWITCH = {"connectionId": SOME_ID, "machineId": SOME_ID, "windowsUsername": "u", "password": "p"}

CASES: list[Case] = [
    # users and tokens
    (
        "createUser.displayName",
        with_input("createUser", "CreateUserInput"),
        {"input": {**USER, "displayName": " "}},
        "INVALID_NAME",
        "displayName",
        False,
    ),
    (
        "createUser.email",
        with_input("createUser", "CreateUserInput"),
        {"input": {**USER, "email": "not an address"}},
        "INVALID_EMAIL",
        "email",
        False,
    ),
    (
        "updateUser.id",
        with_input("updateUser", "UpdateUserInput"),
        {"input": {"id": "7", "displayName": "B"}},
        "INVALID_ID",
        "userId",
        False,
    ),
    (
        "updateUser.displayName",
        with_input("updateUser", "UpdateUserInput"),
        {"input": {"id": SOME_ID, "displayName": "a\x07b"}},
        "INVALID_NAME",
        "displayName",
        False,
    ),
    (
        "issueApiToken.name",
        mutation("issueApiToken", "$name: String!", "name: $name"),
        {"name": LONG},
        "INVALID_NAME",
        "name",
        False,
    ),
    (
        "issueApiToken.userId",
        mutation("issueApiToken", "$name: String!, $u: ID", "name: $name, userId: $u"),
        {"name": "t", "u": "me"},
        "INVALID_ID",
        "userId",
        False,
    ),
    ("revokeApiToken.id", by_id("revokeApiToken"), {"id": "1"}, "INVALID_ID", "tokenId", False),
    (
        "assignRole.userId",
        with_input("assignRole", "RoleInput"),
        {"input": {"environmentId": ENV, "userId": "x", "role": "MACHINE_OWNER"}},
        "INVALID_ID",
        "userId",
        False,
    ),
    (
        "revokeRole.environmentId",
        with_input("revokeRole", "RoleInput"),
        {"input": {"environmentId": "x", "userId": SOME_ID, "role": "MACHINE_OWNER"}},
        "INVALID_ID",
        "environmentId",
        False,
    ),
    ("deactivateUser.id", by_id("deactivateUser"), {"id": "x"}, "INVALID_ID", "userId", False),
    ("reactivateUser.id", by_id("reactivateUser"), {"id": "x"}, "INVALID_ID", "userId", False),
    # environments
    (
        "createEnvironment.name",
        with_input("createEnvironment", "CreateEnvironmentInput"),
        {"input": {"name": "", "kind": "PRODUCTION", "flowExtensionsVersion": "1.2.4.1"}},
        "INVALID_NAME",
        "name",
        False,
    ),
    (
        "createEnvironment.flowExtensionsVersion",
        with_input("createEnvironment", "CreateEnvironmentInput"),
        {"input": {"name": "E", "kind": "PRODUCTION", "flowExtensionsVersion": "9" * 20}},
        "INVALID_VERSION",
        "flowExtensionsVersion",
        False,
    ),
    (
        "updateEnvironment.maxQueueSeconds",
        with_input("updateEnvironment", "UpdateEnvironmentInput"),
        {"input": {"id": ENV, "maxQueueSeconds": 0}},
        "INVALID_VALUE",
        "maxQueueSeconds",
        False,
    ),
    (
        "updateEnvironment.unattendedCapacity",
        with_input("updateEnvironment", "UpdateEnvironmentInput"),
        {"input": {"id": ENV, "unattendedCapacity": -1}},
        "INVALID_VALUE",
        "unattendedCapacity",
        False,
    ),
    (
        "updateEnvironment.name",
        with_input("updateEnvironment", "UpdateEnvironmentInput"),
        {"input": {"id": ENV, "name": LONG}},
        "INVALID_NAME",
        "name",
        False,
    ),
    # machines
    (
        "updateMachine.description",
        with_input("updateMachine", "UpdateMachineInput"),
        {"input": {"id": SOME_ID, "description": LONG}},
        "INVALID_TEXT",
        "description",
        False,
    ),
    (
        "updateMachine.id",
        with_input("updateMachine", "UpdateMachineInput"),
        {"input": {"id": "bot", "name": "b"}},
        "INVALID_ID",
        "id",
        False,
    ),
    ("deleteMachine.id", by_id("deleteMachine"), {"id": "x"}, "INVALID_ID", "id", False),
    ("rotateMachineKey.id", by_id("rotateMachineKey"), {"id": "x"}, "INVALID_ID", "id", False),
    (
        "changeMachineEnvironment.environmentId",
        mutation("changeMachineEnvironment", "$id: ID!, $e: ID!", "id: $id, environmentId: $e"),
        {"id": SOME_ID, "e": "prod"},
        "INVALID_ID",
        "environmentId",
        False,
    ),
    (
        "allocateUnattendedBots.count",
        mutation("allocateUnattendedBots", "$m: ID!, $n: Int!", "machineId: $m, count: $n"),
        {"m": SOME_ID, "n": -1},
        "INVALID_VALUE",
        "count",
        False,
    ),
    (
        "allocateUnattendedBots.count.max",
        mutation("allocateUnattendedBots", "$m: ID!, $n: Int!", "machineId: $m, count: $n"),
        {"m": SOME_ID, "n": 2_000_000_000},
        "INVALID_VALUE",
        "count",
        False,
    ),
    # the machine runtime (authenticated by its key)
    (
        "machineHeartbeat.runtimeVersion",
        with_input("machineHeartbeat", "HeartbeatInput"),
        {"input": {**HEARTBEAT, "runtimeVersion": "latest"}},
        "INVALID_VERSION",
        "runtimeVersion",
        True,
    ),
    (
        "machineHeartbeat.osEdition",
        with_input("machineHeartbeat", "HeartbeatInput"),
        {"input": {**HEARTBEAT, "osEdition": LONG}},
        "INVALID_NAME",
        "osEdition",
        True,
    ),
    (
        "machineHeartbeat.sessions.username",
        with_input("machineHeartbeat", "HeartbeatInput"),
        {"input": {**HEARTBEAT, "sessions": [{"username": "", "state": "ACTIVE"}]}},
        "INVALID_NAME",
        "sessions.username",
        True,
    ),
    (
        "machineHeartbeat.sessions.count",
        with_input("machineHeartbeat", "HeartbeatInput"),
        {
            "input": {
                **HEARTBEAT,
                "sessions": [{"username": f"u{i}", "state": "ACTIVE"} for i in range(201)],
            }
        },
        "INVALID_VALUE",
        "sessions",
        True,
    ),
    (
        "confirmRunStarted.runId",
        mutation("confirmRunStarted", "$r: ID!, $a: Int!", "runId: $r, attempt: $a"),
        {"r": "run-1", "a": 1},
        "INVALID_ID",
        "runId",
        True,
    ),
    (
        "confirmRunStarted.attempt",
        mutation("confirmRunStarted", "$r: ID!, $a: Int!", "runId: $r, attempt: $a"),
        {"r": SOME_ID, "a": 0},
        "INVALID_VALUE",
        "attempt",
        True,
    ),
    (
        "reportRunFinished.attempt",
        with_input("reportRunFinished", "ReportRunFinishedInput"),
        {"input": {**FINISH, "attempt": -1}},
        "INVALID_VALUE",
        "attempt",
        True,
    ),
    (
        "reportRunFinished.outcome",
        with_input("reportRunFinished", "ReportRunFinishedInput"),
        {"input": {**FINISH, "outcome": "QUEUED"}},
        "INVALID_VALUE",
        "outcome",
        True,
    ),
    (
        "reportRunFinished.errorCode",
        with_input("reportRunFinished", "ReportRunFinishedInput"),
        {"input": {**FINISH, "outcome": "FAILED", "errorCode": "E" * 65}},
        "INVALID_NAME",
        "errorCode",
        True,
    ),
    (
        "reportRunFinished.errorMessage",
        with_input("reportRunFinished", "ReportRunFinishedInput"),
        {"input": {**FINISH, "outcome": "FAILED", "errorMessage": LONG}},
        "INVALID_TEXT",
        "errorMessage",
        True,
    ),
    (
        "reportRunFinished.runtimeVersion",
        with_input("reportRunFinished", "ReportRunFinishedInput"),
        {"input": {**FINISH, "runtimeVersion": "2.8.x"}},
        "INVALID_VERSION",
        "runtimeVersion",
        True,
    ),
    (
        "completeMachineCommand.id",
        by_id("completeMachineCommand"),
        {"id": "x"},
        "INVALID_ID",
        "commandId",
        True,
    ),
    # groups, sharing, maintenance
    (
        "createMachineGroup.name",
        with_input("createMachineGroup", "CreateMachineGroupInput"),
        {"input": {"environmentId": ENV, "name": "\t"}},
        "INVALID_NAME",
        "name",
        False,
    ),
    (
        "createMachineGroup.description",
        with_input("createMachineGroup", "CreateMachineGroupInput"),
        {"input": {"environmentId": ENV, "name": "g", "description": LONG}},
        "INVALID_TEXT",
        "description",
        False,
    ),
    (
        "updateMachineGroup.id",
        with_input("updateMachineGroup", "UpdateMachineGroupInput"),
        {"input": {"id": "g", "name": "g"}},
        "INVALID_ID",
        "id",
        False,
    ),
    ("deleteMachineGroup.id", by_id("deleteMachineGroup"), {"id": "x"}, "INVALID_ID", "id", False),
    (
        "addMachineToGroup.machineId",
        mutation("addMachineToGroup", "$g: ID!, $m: ID!", "groupId: $g, machineId: $m"),
        {"g": SOME_ID, "m": "m"},
        "INVALID_ID",
        "machineId",
        False,
    ),
    (
        "removeMachineFromGroup.machineId",
        mutation("removeMachineFromGroup", "$m: ID!", "machineId: $m"),
        {"m": "m"},
        "INVALID_ID",
        "machineId",
        False,
    ),
    (
        "shareMachine.userId",
        with_input("shareMachine", "ShareMachineInput"),
        {"input": {"machineId": SOME_ID, "userId": "u", "access": "USER"}},
        "INVALID_ID",
        "userId",
        False,
    ),
    (
        "unshareMachineGroup.groupId",
        mutation("unshareMachineGroup", "$g: ID!, $u: ID!", "groupId: $g, userId: $u"),
        {"g": "g", "u": SOME_ID},
        "INVALID_ID",
        "groupId",
        False,
    ),
    (
        "setMachineMaintenance.id",
        mutation("setMachineMaintenance", "$id: ID!", "id: $id, enabled: true"),
        {"id": "x"},
        "INVALID_ID",
        "id",
        False,
    ),
    (
        "setMachineGroupMaintenance.id",
        mutation("setMachineGroupMaintenance", "$id: ID!", "id: $id, enabled: true"),
        {"id": "x"},
        "INVALID_ID",
        "id",
        False,
    ),
    # connections and flows
    (
        "createConnection.password",
        with_input("createConnection", "CreateConnectionInput"),
        {"input": {**CONNECTION, "password": ""}},
        "INVALID_PASSWORD",
        "password",
        False,
    ),
    (
        "createConnection.password.long",
        with_input("createConnection", "CreateConnectionInput"),
        {"input": {**CONNECTION, "password": LONG}},
        "INVALID_PASSWORD",
        "password",
        False,
    ),
    (
        "createConnection.windowsUsername",
        with_input("createConnection", "CreateConnectionInput"),
        {"input": {**CONNECTION, "windowsUsername": ""}},
        "INVALID_NAME",
        "windowsUsername",
        False,
    ),
    (
        "createConnection.target",
        with_input("createConnection", "CreateConnectionInput"),
        {"input": {**CONNECTION, "groupId": SOME_ID}},
        "INVALID_VALUE",
        "machineId or groupId",
        False,
    ),
    (
        "updateConnection.password",
        with_input("updateConnection", "UpdateConnectionInput"),
        {"input": {"id": SOME_ID, "password": "a\x00b"}},
        "INVALID_PASSWORD",
        "password",
        False,
    ),
    ("deleteConnection.id", by_id("deleteConnection"), {"id": "x"}, "INVALID_ID", "id", False),
    (
        "switchConnectionToDirect.connectionId",
        with_input("switchConnectionToDirect", "SwitchConnectionToDirectInput"),
        {"input": {**SWITCH, "connectionId": "c"}},
        "INVALID_ID",
        "connectionId",
        False,
    ),
    (
        "createDesktopFlow.name",
        with_input("createDesktopFlow", "CreateDesktopFlowInput"),
        {"input": {"environmentId": ENV, "name": LONG}},
        "INVALID_NAME",
        "name",
        False,
    ),
    (
        "renameDesktopFlow.name",
        mutation("renameDesktopFlow", "$id: ID!, $n: String!", "id: $id, name: $n"),
        {"id": SOME_ID, "n": ""},
        "INVALID_NAME",
        "name",
        False,
    ),
    ("deleteDesktopFlow.id", by_id("deleteDesktopFlow"), {"id": "x"}, "INVALID_ID", "id", False),
    # runs and recommendations
    (
        "triggerRun.flowId",
        with_input("triggerRun", "TriggerRunInput"),
        {"input": {"flowId": "f", "connectionId": SOME_ID, "mode": "UNATTENDED"}},
        "INVALID_ID",
        "flowId",
        False,
    ),
    ("cancelRun.id", by_id("cancelRun"), {"id": "x"}, "INVALID_ID", "id", False),
    (
        "changeRunPriority.id",
        mutation("changeRunPriority", "$id: ID!", "id: $id, priority: HIGH"),
        {"id": "x"},
        "INVALID_ID",
        "id",
        False,
    ),
    ("moveRunToTop.id", by_id("moveRunToTop"), {"id": "x"}, "INVALID_ID", "id", False),
    (
        "disconnectSessionUsers.runIds.empty",
        mutation(
            "disconnectSessionUsers",
            "$r: ID!, $runs: [ID!]!",
            "recommendationId: $r, runIds: $runs",
        ),
        {"r": SOME_ID, "runs": []},
        "INVALID_VALUE",
        "run",
        False,
    ),
    (
        "disconnectSessionUsers.runIds.malformed",
        mutation(
            "disconnectSessionUsers",
            "$r: ID!, $runs: [ID!]!",
            "recommendationId: $r, runIds: $runs",
        ),
        {"r": SOME_ID, "runs": [SOME_ID, "x"]},
        "INVALID_ID",
        "runIds",
        False,
    ),
    (
        "disconnectSessionUsers.runIds.many",
        mutation(
            "disconnectSessionUsers",
            "$r: ID!, $runs: [ID!]!",
            "recommendationId: $r, runIds: $runs",
        ),
        {"r": SOME_ID, "runs": [str(uuid.UUID(int=i + 1)) for i in range(201)]},
        "INVALID_VALUE",
        "runs",
        False,
    ),
    (
        "refreshSessionRecommendation.id",
        by_id("refreshSessionRecommendation"),
        {"id": "x"},
        "INVALID_ID",
        "id",
        False,
    ),
]


async def everything(domain: DomainContext) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show a refusal wrote nothing anywhere."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with domain.db.read() as session:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await session.exec(select(table))).all()  # type: ignore[call-overload]
            tables[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return tables


def _fill(value: Any, environment_id: str) -> Any:
    if value == ENV:
        return environment_id
    if isinstance(value, dict):
        return {k: _fill(v, environment_id) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("document", "variables", "code", "field", "as_machine"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_input_is_refused_typed_and_writes_nothing(
    fleet: Fleet,
    api: GraphQLClient,
    domain: DomainContext,
    document: str,
    variables: dict[str, Any],
    code: str,
    field: str,
    as_machine: bool,
) -> None:
    token = fleet.admin_token
    if as_machine:
        owner = await fleet.person("MACHINE_OWNER")
        machine: RegisteredMachine = await fleet.machine(owner, "bot")
        token = machine.key
    before = await everything(domain)

    result = await api.execute(document, _fill(variables, fleet.environment_id), token=token)

    assert "errors" not in result, result
    answer = next(iter(result["data"].values()))
    assert (answer["__typename"], answer["code"]) == ("ValidationError", code), answer
    assert field.lower() in answer["message"].lower(), answer
    assert await everything(domain) == before
