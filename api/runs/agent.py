"""The machine runtime's side of the API, authenticated by its machine key (R5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import UserErrors, read, typed_errors
from api.fleet.machines import MachineType
from api.runs.runs import FlowRunPayload, FlowRunType
from domain.fleet import heartbeats, machines
from domain.fleet.sessions import ReportedSession
from domain.runs import runtime
from domain.store.models import MachineCommand, RunMode, RunPriority, RunStatus, SessionState


def _heartbeat_machine(root: HeartbeatPayload, info: Info[Context, None]) -> MachineType:
    return MachineType.from_model(root.ack.machine, info.context)


@strawberry.type
class HeartbeatPayload:
    ack: strawberry.Private[heartbeats.HeartbeatAck]
    # Made only when asked for (a runtime's heartbeat seldom does): see heartbeats.HeartbeatAck.
    machine: MachineType = strawberry.field(resolver=_heartbeat_machine)
    key_action_required: bool = strawberry.field(
        description="R10: call completeMachineKeyRotation to take a new key."
    )


@strawberry.type
class NewMachineKeyPayload:
    machine: MachineType
    machine_key: str = strawberry.field(description="The new key, shown once; the old one is void.")


HeartbeatResult = Annotated[HeartbeatPayload | UserErrors, strawberry.union("HeartbeatResult")]
CompleteMachineKeyRotationResult = Annotated[
    NewMachineKeyPayload | UserErrors, strawberry.union("CompleteMachineKeyRotationResult")
]


@strawberry.input
class UserSessionInput:
    username: str
    state: SessionState


@strawberry.input
class HeartbeatInput:
    runtime_version: str
    os_edition: str
    sessions: list[UserSessionInput] | None = strawberry.field(
        default=None,
        description="The Windows user sessions on the machine now (R26); they replace the ones "
        "reported before. Omit to leave them as they are.",
    )


@strawberry.type(description="A run dispatched to this machine, with what it needs to start it.")
class MachineAssignment:
    run_id: strawberry.ID
    attempt: int = strawberry.field(description="Send it back with every report about the run.")
    flow_id: strawberry.ID
    flow_name: str
    mode: RunMode
    priority: RunPriority
    run_as: str
    username: str
    password: str | None = strawberry.field(
        description="The connection's Windows password, sent only to the machine runtime."
    )
    dispatched_at: datetime | None


@strawberry.type(description="Something the machine runtime must do (e.g. CANCEL_RUN).")
class MachineCommandType:
    id: strawberry.ID
    kind: str
    run_id: strawberry.ID | None
    username: str | None
    created_at: datetime


@strawberry.input
class ReportRunFinishedInput:
    run_id: strawberry.ID
    attempt: int
    outcome: RunStatus = strawberry.field(description="SUCCEEDED or FAILED.")
    error_code: str | None = None
    error_message: str | None = None
    runtime_version: str | None = strawberry.field(
        default=None, description="The runtime's version now: the machine takes it (R7)."
    )


@strawberry.type
class MachineCommandPayload:
    command: MachineCommandType


ConfirmRunStartedResult = Annotated[
    FlowRunPayload | UserErrors, strawberry.union("ConfirmRunStartedResult")
]
ReportRunFinishedResult = Annotated[
    FlowRunPayload | UserErrors, strawberry.union("ReportRunFinishedResult")
]
CompleteMachineCommandResult = Annotated[
    MachineCommandPayload | UserErrors, strawberry.union("CompleteMachineCommandResult")
]


def _command(command: MachineCommand) -> MachineCommandType:
    return MachineCommandType(
        id=strawberry.ID(command.id),
        kind=command.kind,
        run_id=strawberry.ID(command.run_id) if command.run_id else None,
        username=command.username,
        created_at=command.created_at,
    )


@strawberry.type
class AgentQuery:
    @strawberry.field(description="The machine the calling machine key belongs to.")
    async def this_machine(self, info: Info[Context, None]) -> MachineType:
        ctx = info.context
        machine = await read(lambda: machines.get_own_machine(ctx.domain, ctx.principal))
        return MachineType.from_model(machine, ctx)

    @strawberry.field(
        description="Runs dispatched to the calling machine, to confirm with confirmRunStarted."
    )
    async def machine_assignments(self, info: Info[Context, None]) -> list[MachineAssignment]:
        ctx = info.context
        found = await read(lambda: runtime.assignments(ctx.domain, ctx.principal))
        return [
            MachineAssignment(
                run_id=strawberry.ID(a.run.id),
                attempt=a.run.attempt,
                flow_id=strawberry.ID(a.run.flow_id),
                flow_name=a.flow_name,
                mode=a.run.mode,
                priority=a.run.priority,
                run_as=a.run.run_as,
                username=a.username,
                password=a.password,
                dispatched_at=a.run.dispatched_at,
            )
            for a in found
        ]

    @strawberry.field(description="Commands the calling machine has not completed yet.")
    async def machine_commands(self, info: Info[Context, None]) -> list[MachineCommandType]:
        ctx = info.context
        found = await read(lambda: runtime.pending_commands(ctx.domain, ctx.principal))
        return [_command(c) for c in found]


@strawberry.type
class AgentMutation:
    @strawberry.mutation(description="The machine runtime reports it is alive (R9).")
    @typed_errors
    async def machine_heartbeat(
        self, info: Info[Context, None], input: HeartbeatInput
    ) -> HeartbeatResult:
        ctx = info.context
        ack = await heartbeats.heartbeat(
            ctx.domain,
            ctx.principal,
            runtime_version=input.runtime_version,
            os_edition=input.os_edition,
            sessions=None
            if input.sessions is None
            else [ReportedSession(s.username, s.state) for s in input.sessions],
        )
        return HeartbeatPayload(ack=ack, key_action_required=ack.key_action_required)

    @strawberry.mutation(description="The machine runtime swaps its key (R10).")
    @typed_errors
    async def complete_machine_key_rotation(
        self, info: Info[Context, None]
    ) -> CompleteMachineKeyRotationResult:
        ctx = info.context
        rotated = await machines.complete_key_rotation(ctx.domain, ctx.principal)
        return NewMachineKeyPayload(
            machine=MachineType.from_model(rotated.machine, ctx),
            machine_key=rotated.machine_key,
        )

    @strawberry.mutation(description="R28: the runtime started a dispatched run (same attempt).")
    @typed_errors
    async def confirm_run_started(
        self, info: Info[Context, None], run_id: strawberry.ID, attempt: int
    ) -> ConfirmRunStartedResult:
        ctx = info.context
        found = await runtime.confirm_run_started(ctx.domain, ctx.principal, run_id, attempt)
        return FlowRunPayload(run=FlowRunType.from_model(found, ctx))

    @strawberry.mutation(description="R28, R7: the runtime finished a run.")
    @typed_errors
    async def report_run_finished(
        self, info: Info[Context, None], input: ReportRunFinishedInput
    ) -> ReportRunFinishedResult:
        ctx = info.context
        found = await runtime.report_run_finished(
            ctx.domain,
            ctx.principal,
            input.run_id,
            input.attempt,
            outcome=input.outcome,
            error_code=input.error_code,
            error_message=input.error_message,
            runtime_version=input.runtime_version,
        )
        return FlowRunPayload(run=FlowRunType.from_model(found, ctx))

    @strawberry.mutation(description="The runtime carried out a command.")
    @typed_errors
    async def complete_machine_command(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> CompleteMachineCommandResult:
        ctx = info.context
        found = await runtime.complete_command(ctx.domain, ctx.principal, id)
        return MachineCommandPayload(command=_command(found))
