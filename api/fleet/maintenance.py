"""Maintenance mode for machines and groups (R16-R19; R10 blocks the toggle)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import attempt, payload
from api.fleet.groups import MachineGroupPayload, MachineGroupType
from api.fleet.machines import MachinePayload, MachineType
from domain.fleet import maintenance

SetMachineMaintenanceResult = payload("SetMachineMaintenanceResult", MachinePayload)
SetMachineGroupMaintenanceResult = payload("SetMachineGroupMaintenanceResult", MachineGroupPayload)


@strawberry.type
class MaintenanceMutation:
    @strawberry.mutation(
        description="Turn a machine's maintenance on or off (R16). Refused while its group is "
        "in maintenance (R18) or a key action is required (R10). Running runs continue."
    )
    async def set_machine_maintenance(
        self, info: Info[Context, None], id: strawberry.ID, enabled: bool
    ) -> SetMachineMaintenanceResult:
        ctx = info.context

        async def run() -> MachinePayload:
            machine = await maintenance.set_machine_maintenance(
                ctx.domain, ctx.principal, id, enabled
            )
            return MachinePayload(machine=MachineType.from_model(machine, ctx))

        return await attempt(run)

    @strawberry.mutation(
        description="Turn a group's maintenance on or off: all its machines follow (R18). "
        "Refused while one of its machines needs a key action (R10)."
    )
    async def set_machine_group_maintenance(
        self, info: Info[Context, None], id: strawberry.ID, enabled: bool
    ) -> SetMachineGroupMaintenanceResult:
        ctx = info.context

        async def run() -> MachineGroupPayload:
            group = await maintenance.set_group_maintenance(ctx.domain, ctx.principal, id, enabled)
            return MachineGroupPayload(group=MachineGroupType.from_model(group))

        return await attempt(run)
