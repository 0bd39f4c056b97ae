"""Given-steps and documents shared by the connection, gateway, flow and credential tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.context import DomainContext
from domain.store.models import Connection, FlowRun, RunMode, RunPriority, RunStatus
from tests.graphql import Fleet, Person

CONNECTION_FIELDS = """
id name connectivity windowsUsername hasPassword createdAt updatedAt
owner { id } environment { id } machine { id name } group { id name } gateway { id name }
"""

CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    __typename
    ... on ConnectionPayload { connection { FIELDS } }
    ... on UserError { code message }
    ... on RuleViolationError { rule }
    ... on ValidationError { field }
  }
}""".replace("FIELDS", CONNECTION_FIELDS)

UPDATE_CONNECTION = """
mutation($input: UpdateConnectionInput!) {
  updateConnection(input: $input) {
    __typename
    ... on ConnectionPayload { connection { FIELDS } }
    ... on UserError { code message }
    ... on RuleViolationError { rule }
    ... on ValidationError { field }
  }
}""".replace("FIELDS", CONNECTION_FIELDS)

DELETE_CONNECTION = """
mutation($id: ID!) {
  deleteConnection(id: $id) {
    __typename
    ... on DeletedConnectionPayload { id cancelledRunIds }
    ... on UserError { code message }
  }
}"""

GET_CONNECTION = "query($id: ID!) { connection(id: $id) { FIELDS } }".replace(
    "FIELDS", CONNECTION_FIELDS
)

LIST_CONNECTIONS = """
query($first: Int!, $after: String, $filter: ConnectionFilterInput) {
  connections(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id name connectivity owner { id } } }
  }
}"""

CREATE_FLOW = """
mutation($input: CreateDesktopFlowInput!) {
  createDesktopFlow(input: $input) {
    __typename
    ... on DesktopFlowPayload { flow { id name owner { id } environment { id } } }
    ... on UserError { code message }
  }
}"""

CREATE_GROUP = """
mutation($input: CreateMachineGroupInput!) {
  createMachineGroup(input: $input) {
    __typename ... on MachineGroupPayload { group { id } } ... on UserError { code message }
  }
}"""

SHARE_MACHINE = """
mutation($input: ShareMachineInput!) {
  shareMachine(input: $input) { __typename ... on UserError { code message } }
}"""

SECRET = "Tr0ub4dor&3 horse-battery-staple"


async def create_connection(
    fleet: Fleet,
    owner: Person,
    *,
    name: str = "conn",
    machine_id: str | None = None,
    group_id: str | None = None,
    username: str = r"CONTOSO\robot",
    password: str = SECRET,
    **extra: Any,
) -> dict[str, Any]:
    """The raw createConnection result."""
    data = await fleet.api.data(
        CREATE_CONNECTION,
        {
            "input": {
                "name": name,
                "machineId": machine_id,
                "groupId": group_id,
                "windowsUsername": username,
                "password": password,
                **extra,
            }
        },
        token=owner.token,
    )
    return data["createConnection"]


async def connection(fleet: Fleet, owner: Person, **kwargs: Any) -> dict[str, Any]:
    result = await create_connection(fleet, owner, **kwargs)
    assert result["__typename"] == "ConnectionPayload", result
    return result["connection"]


async def flow(
    fleet: Fleet, owner: Person, name: str = "Invoice bot", environment_id: str | None = None
) -> str:
    data = await fleet.api.data(
        CREATE_FLOW,
        {"input": {"environmentId": environment_id or fleet.environment_id, "name": name}},
        token=owner.token,
    )
    result = data["createDesktopFlow"]
    assert result["__typename"] == "DesktopFlowPayload", result
    return result["flow"]["id"]


async def group(fleet: Fleet, owner: Person, name: str) -> str:
    data = await fleet.api.data(
        CREATE_GROUP,
        {"input": {"environmentId": fleet.environment_id, "name": name}},
        token=owner.token,
    )
    assert data["createMachineGroup"]["__typename"] == "MachineGroupPayload", data
    return data["createMachineGroup"]["group"]["id"]


async def share_machine(
    fleet: Fleet, owner: Person, machine_id: str, user: Person, access: str = "USER"
) -> None:
    data = await fleet.api.data(
        SHARE_MACHINE,
        {"input": {"machineId": machine_id, "userId": user.id, "access": access}},
        token=owner.token,
    )
    assert data["shareMachine"]["__typename"] == "MachinePayload", data


async def insert_run(
    domain: DomainContext,
    *,
    connection_id: str,
    flow_id: str,
    status: RunStatus = RunStatus.QUEUED,
    machine_id: str | None = None,
    queued_at: datetime | None = None,
) -> str:
    """Arrange-only: write a run in a given state straight into ``flow_runs``.

    Triggering goes through domain/runs/runs.py (built alongside), and DISPATCHED / RUNNING states need
    the dispatcher and a machine runtime; these tests are about what connection changes do to runs
    in each state, so they place the runs directly. Runs are UNATTENDED on machines without bots,
    so the dispatcher leaves QUEUED ones alone. Gateway connections cannot be triggered through any
    more (R22); their legacy runs can only be arranged this way.
    """
    now = domain.clock.now()
    async with domain.db.write() as session:
        conn = await session.get(Connection, connection_id)
        assert conn is not None
        run = FlowRun(
            environment_id=conn.environment_id,
            flow_id=flow_id,
            connection_id=conn.id,
            target_machine_id=conn.machine_id,
            target_group_id=conn.group_id,
            run_as=conn.windows_username,
            connection_owner_id=conn.owner_id,
            triggered_by_id=conn.owner_id,
            mode=RunMode.UNATTENDED,
            priority=RunPriority.NORMAL,
            priority_rank=1,
            status=status,
            queued_at=queued_at or now,
            machine_id=machine_id
            if status in (RunStatus.DISPATCHED, RunStatus.RUNNING, RunStatus.SUCCEEDED)
            else None,
            attempt=1 if status is not RunStatus.QUEUED else 0,
            dispatched_at=now if status is not RunStatus.QUEUED else None,
            started_at=now if status in (RunStatus.RUNNING, RunStatus.SUCCEEDED) else None,
            ended_at=now if status is RunStatus.SUCCEEDED else None,
            created_at=now,
        )
        session.add(run)
    return run.id


async def runs_by_id(domain: DomainContext, ids: list[str]) -> dict[str, FlowRun]:
    from sqlmodel import col, select

    async with domain.db.read() as session:
        rows = await session.exec(select(FlowRun).where(col(FlowRun.id).in_(ids)))
        return {r.id: r for r in rows.all()}


async def connection_row(domain: DomainContext, connection_id: str) -> Connection | None:
    async with domain.db.read() as session:
        return await session.get(Connection, connection_id)
