"""Given-steps for the run, queue and dispatch tests: everything through the public GraphQL API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from api.app import create_app
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests.graphql import (
    GOOD_EDITION,
    GOOD_RUNTIME,
    Fleet,
    GraphQLClient,
    Person,
    RegisteredMachine,
)

RUN_FIELDS = """
id mode priority status runAs attempt queuedAt dispatchedAt startedAt endedAt
waitSeconds runSeconds errorCode errorMessage reportedRuntimeVersion queuePosition waitReason
machine { id } targetMachine { id } targetGroup { id } flow { id } connection { id }
"""

TRIGGER_RUN = """
mutation($input: TriggerRunInput!) {
  triggerRun(input: $input) {
    __typename
    ... on FlowRunPayload { run { RUN_FIELDS } }
    ... on UserError { code message }
    ... on RuleViolationError { rule }
  }
}""".replace("RUN_FIELDS", RUN_FIELDS)


def _run_change(mutation: str, extra_variables: str = "", extra_arguments: str = "") -> str:
    return f"""
mutation($id: ID!{extra_variables}) {{
  {mutation}(id: $id{extra_arguments}) {{
    __typename
    ... on FlowRunPayload {{ run {{ id status priority queuePosition waitReason errorCode }} }}
    ... on UserError {{ code message }}
  }}
}}"""


CANCEL_RUN = _run_change("cancelRun")
MOVE_RUN_TO_TOP = _run_change("moveRunToTop")
CHANGE_RUN_PRIORITY = _run_change(
    "changeRunPriority", ", $priority: RunPriority!", ", priority: $priority"
)

GET_RUN = "query($id: ID!) { run(id: $id) { " + RUN_FIELDS + " } }"

FLOW_RUNS = """
query($first: Int!, $after: String, $filter: FlowRunFilterInput) {
  flowRuns(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id status queuedAt } }
  }
}"""

MACHINE_QUEUE = """
query($id: ID!) {
  machineQueue(machineId: $id) { position waitReason run { id priority status } }
}"""

GROUP_QUEUE = """
query($id: ID!) {
  groupQueue(groupId: $id) { position waitReason run { id priority status } }
}"""

ALLOCATE = """
mutation($machineId: ID!, $count: Int!) {
  allocateUnattendedBots(machineId: $machineId, count: $count) {
    __typename
    ... on MachinePayload { machine { id unattendedBots } }
    ... on UserError { code message }
    ... on RuleViolationError { rule }
  }
}"""

UPDATE_ENVIRONMENT = """
mutation($input: UpdateEnvironmentInput!) {
  updateEnvironment(input: $input) { __typename ... on UserError { code message } }
}"""

CREATE_FLOW = """
mutation($input: CreateDesktopFlowInput!) {
  createDesktopFlow(input: $input) {
    __typename ... on DesktopFlowPayload { flow { id } } ... on UserError { code message }
  }
}"""

CREATE_CONNECTION = """
mutation($input: CreateConnectionInput!) {
  createConnection(input: $input) {
    __typename ... on ConnectionPayload { connection { id } } ... on UserError { code message }
  }
}"""

CREATE_GROUP = """
mutation($input: CreateMachineGroupInput!) {
  createMachineGroup(input: $input) {
    __typename ... on MachineGroupPayload { group { id } } ... on UserError { code message }
  }
}"""

ADD_TO_GROUP = """
mutation($g: ID!, $m: ID!) {
  addMachineToGroup(groupId: $g, machineId: $m) { __typename ... on UserError { code message } }
}"""

MACHINE_MAINTENANCE = """
mutation($id: ID!, $on: Boolean!) {
  setMachineMaintenance(id: $id, enabled: $on) { __typename ... on UserError { code message } }
}"""

GROUP_MAINTENANCE = """
mutation($id: ID!, $on: Boolean!) {
  setMachineGroupMaintenance(id: $id, enabled: $on) {
    __typename ... on UserError { code message }
  }
}"""

HEARTBEAT = """
mutation($input: HeartbeatInput!) {
  machineHeartbeat(input: $input) {
    __typename ... on HeartbeatPayload { machine { id status } } ... on UserError { code message }
  }
}"""

ASSIGNMENTS = """
{ machineAssignments { runId attempt flowId flowName mode priority runAs username password } }
"""

CONFIRM = """
mutation($runId: ID!, $attempt: Int!) {
  confirmRunStarted(runId: $runId, attempt: $attempt) {
    __typename ... on FlowRunPayload { run { id status attempt startedAt } }
    ... on UserError { code message }
  }
}"""

FINISH = """
mutation($input: ReportRunFinishedInput!) {
  reportRunFinished(input: $input) {
    __typename
    ... on FlowRunPayload { run { id status errorCode errorMessage endedAt runSeconds } }
    ... on UserError { code message }
  }
}"""

MACHINE_COUNTS = """
query($id: ID!) { machine(id: $id) { id version runningCount queuedCount unattendedBots } }
"""

COMMANDS = "{ machineCommands { id kind runId } }"

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Target:
    """A machine or a group with a connection to it and a flow to run through it."""

    owner: Person
    connection_id: str
    flow_id: str
    username: str
    machine: RegisteredMachine | None = None
    group_id: str | None = None


class Runs:
    """Given-steps for runs on top of :class:`tests.graphql.Fleet`."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.api = fleet.api
        self.admin = fleet.admin_token
        self._names = 0

    def _name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}-{self._names}"

    async def capacity(self, bots: int, *, max_queue_seconds: int | None = None) -> None:
        change: dict[str, Any] = {"id": self.fleet.environment_id, "unattendedCapacity": bots}
        if max_queue_seconds is not None:
            change["maxQueueSeconds"] = max_queue_seconds
        result = await self.api.data(UPDATE_ENVIRONMENT, {"input": change}, token=self.admin)
        assert result["updateEnvironment"]["__typename"] == "EnvironmentPayload", result

    async def allocate(self, machine_id: str, count: int, *, token: str | None = None) -> dict:
        data = await self.api.data(
            ALLOCATE, {"machineId": machine_id, "count": count}, token=token or self.admin
        )
        return data["allocateUnattendedBots"]

    async def heartbeat(
        self, machine: RegisteredMachine, sessions: dict[str, str] | None = None, **extra: Any
    ) -> dict:
        reported = (
            None if sessions is None else [{"username": u, "state": s} for u, s in sessions.items()]
        )
        data = await self.api.data(
            HEARTBEAT,
            {
                "input": {
                    "runtimeVersion": GOOD_RUNTIME,
                    "osEdition": GOOD_EDITION,
                    "sessions": reported,
                    **extra,
                }
            },
            token=machine.key,
        )
        return data["machineHeartbeat"]

    async def machine(
        self,
        owner: Person,
        *,
        bots: int = 0,
        sessions: dict[str, str] | None = None,
        connected: bool = True,
    ) -> RegisteredMachine:
        machine = await self.fleet.machine(owner, self._name("bot"))
        if bots:
            allocated = await self.allocate(machine.id, bots)
            assert allocated["__typename"] == "MachinePayload", allocated
        if connected:
            await self.heartbeat(machine, sessions or {})
        return machine

    async def group(self, owner: Person, *machines: RegisteredMachine) -> str:
        data = await self.api.data(
            CREATE_GROUP,
            {"input": {"environmentId": self.fleet.environment_id, "name": self._name("group")}},
            token=owner.token,
        )
        group_id = data["createMachineGroup"]["group"]["id"]
        for m in machines:
            added = await self.api.data(ADD_TO_GROUP, {"g": group_id, "m": m.id}, token=owner.token)
            assert added["addMachineToGroup"]["__typename"] == "MachineGroupMembershipPayload"
        return group_id

    async def flow(self, owner: Person) -> str:
        data = await self.api.data(
            CREATE_FLOW,
            {"input": {"environmentId": self.fleet.environment_id, "name": self._name("flow")}},
            token=owner.token,
        )
        return data["createDesktopFlow"]["flow"]["id"]

    async def connection(
        self,
        owner: Person,
        *,
        machine_id: str | None = None,
        group_id: str | None = None,
        username: str = r"CONTOSO\robot",
    ) -> str:
        data = await self.api.data(
            CREATE_CONNECTION,
            {
                "input": {
                    "name": self._name("conn"),
                    "machineId": machine_id,
                    "groupId": group_id,
                    "windowsUsername": username,
                    "password": PASSWORD,
                }
            },
            token=owner.token,
        )
        result = data["createConnection"]
        assert result["__typename"] == "ConnectionPayload", result
        return result["connection"]["id"]

    async def target(
        self,
        owner: Person,
        *,
        machine: RegisteredMachine | None = None,
        group_id: str | None = None,
        username: str = r"CONTOSO\robot",
    ) -> Target:
        connection_id = await self.connection(
            owner,
            machine_id=machine.id if machine else None,
            group_id=group_id,
            username=username,
        )
        return Target(
            owner=owner,
            connection_id=connection_id,
            flow_id=await self.flow(owner),
            username=username,
            machine=machine,
            group_id=group_id,
        )

    async def trigger_raw(
        self,
        target: Target,
        *,
        mode: str = "UNATTENDED",
        priority: str = "NORMAL",
        by: Person | None = None,
    ) -> dict:
        data = await self.api.data(
            TRIGGER_RUN,
            {
                "input": {
                    "flowId": target.flow_id,
                    "connectionId": target.connection_id,
                    "mode": mode,
                    "priority": priority,
                }
            },
            token=(by or target.owner).token,
        )
        return data["triggerRun"]

    async def trigger(self, target: Target, **kwargs: Any) -> str:
        result = await self.trigger_raw(target, **kwargs)
        assert result["__typename"] == "FlowRunPayload", result
        return result["run"]["id"]

    async def run(self, run_id: str, token: str | None = None) -> dict:
        return (await self.api.data(GET_RUN, {"id": run_id}, token=token or self.admin))["run"]

    async def until_status(self, run_id: str, wanted: str) -> str:
        """The run's status once it is ``wanted``, or as it is after about three seconds."""
        for _ in range(300):
            found = (await self.run(run_id))["status"]
            if found == wanted:
                break
            await asyncio.sleep(0.01)
        return found

    async def change(self, document: str, run_id: str, token: str | None = None, **extra: Any):
        data = await self.api.data(document, {"id": run_id, **extra}, token=token or self.admin)
        return next(iter(data.values()))

    async def machine_queue(self, machine_id: str, token: str | None = None) -> list[dict]:
        data = await self.api.data(MACHINE_QUEUE, {"id": machine_id}, token=token or self.admin)
        return data["machineQueue"]

    async def group_queue(self, group_id: str, token: str | None = None) -> list[dict]:
        data = await self.api.data(GROUP_QUEUE, {"id": group_id}, token=token or self.admin)
        return data["groupQueue"]

    async def assignments(self, machine: RegisteredMachine) -> list[dict]:
        return (await self.api.data(ASSIGNMENTS, token=machine.key))["machineAssignments"]

    async def confirm(self, machine: RegisteredMachine, run_id: str, attempt: int) -> dict:
        data = await self.api.data(
            CONFIRM, {"runId": run_id, "attempt": attempt}, token=machine.key
        )
        return data["confirmRunStarted"]

    async def finish(
        self,
        machine: RegisteredMachine,
        run_id: str,
        attempt: int,
        outcome: str = "SUCCEEDED",
        **extra: Any,
    ) -> dict:
        data = await self.api.data(
            FINISH,
            {"input": {"runId": run_id, "attempt": attempt, "outcome": outcome, **extra}},
            token=machine.key,
        )
        return data["reportRunFinished"]

    async def counts(self, machine_id: str) -> dict:
        return (await self.api.data(MACHINE_COUNTS, {"id": machine_id}, token=self.admin))[
            "machine"
        ]

    async def maintenance(self, machine_id: str, on: bool, token: str | None = None) -> None:
        data = await self.api.data(
            MACHINE_MAINTENANCE, {"id": machine_id, "on": on}, token=token or self.admin
        )
        assert data["setMachineMaintenance"]["__typename"] == "MachinePayload", data

    async def group_maintenance(self, group_id: str, on: bool) -> None:
        data = await self.api.data(GROUP_MAINTENANCE, {"id": group_id, "on": on}, token=self.admin)
        assert data["setMachineGroupMaintenance"]["__typename"] == "MachineGroupPayload", data


@asynccontextmanager
async def live_dispatcher(
    settings: Settings, clock: ManualClock, admin_token: str, environment_id: str
) -> AsyncIterator[Runs]:
    """The app with its lifespan's dispatcher running and its periodic sweep an hour away, so
    only events (and triggers) can explain a dispatch."""
    live_settings = settings.model_copy(
        update={"dispatcher_enabled": True, "dispatch_sweep_interval_seconds": 3600}
    )
    live = create_app(live_settings, clock=clock)
    async with live.router.lifespan_context(live):
        transport = httpx.ASGITransport(app=live)
        async with httpx.AsyncClient(transport=transport, base_url="http://live.test") as http:
            yield Runs(Fleet(GraphQLClient(http), admin_token, environment_id))
