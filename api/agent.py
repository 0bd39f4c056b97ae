"""The machine runtime's side of the API, authenticated by its machine key (R5)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import attempt, payload, read
from api.machines import MachineType
from domain import machines


@strawberry.type
class HeartbeatPayload:
    machine: MachineType
    key_action_required: bool = strawberry.field(
        description="R10: call completeMachineKeyRotation to take a new key."
    )


@strawberry.type
class NewMachineKeyPayload:
    machine: MachineType
    machine_key: str = strawberry.field(description="The new key, shown once; the old one is void.")


HeartbeatResult = payload("HeartbeatResult", HeartbeatPayload)
CompleteMachineKeyRotationResult = payload("CompleteMachineKeyRotationResult", NewMachineKeyPayload)


@strawberry.input
class HeartbeatInput:
    runtime_version: str
    os_edition: str


@strawberry.type
class AgentQuery:
    @strawberry.field(description="The machine the calling machine key belongs to.")
    async def this_machine(self, info: Info[Context, None]) -> MachineType:
        ctx = info.context
        machine = await read(lambda: machines.get_own_machine(ctx.domain, ctx.principal))
        return MachineType.from_model(machine, ctx)


@strawberry.type
class AgentMutation:
    @strawberry.mutation(description="The machine runtime reports it is alive (R9).")
    async def machine_heartbeat(
        self, info: Info[Context, None], input: HeartbeatInput
    ) -> HeartbeatResult:
        ctx = info.context

        async def run() -> HeartbeatPayload:
            ack = await machines.heartbeat(
                ctx.domain,
                ctx.principal,
                runtime_version=input.runtime_version,
                os_edition=input.os_edition,
            )
            return HeartbeatPayload(
                machine=MachineType.from_model(ack.machine, ctx),
                key_action_required=ack.key_action_required,
            )

        return await attempt(run)

    @strawberry.mutation(description="The machine runtime swaps its key (R10).")
    async def complete_machine_key_rotation(
        self, info: Info[Context, None]
    ) -> CompleteMachineKeyRotationResult:
        ctx = info.context

        async def run() -> NewMachineKeyPayload:
            rotated = await machines.complete_key_rotation(ctx.domain, ctx.principal)
            return NewMachineKeyPayload(
                machine=MachineType.from_model(rotated.machine, ctx),
                machine_key=rotated.machine_key,
            )

        return await attempt(run)
