"""Maintenance mode for machines and groups (R16-R19; R10 blocks the toggle)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import UserErrors, typed_errors
from api.fleet.groups import MachineGroupPayload, MachineGroupType
from api.fleet.machines import MachinePayload, MachineType
from domain.fleet import maintenance

SetMachineMaintenanceResult = Annotated[
    MachinePayload | UserErrors, strawberry.union("SetMachineMaintenanceResult")
]
SetMachineGroupMaintenanceResult = Annotated[
    MachineGroupPayload | UserErrors, strawberry.union("SetMachineGroupMaintenanceResult")
]


@strawberry.type
class MaintenanceMutation:
    @strawberry.mutation(
        description="Turn a machine's maintenance on or off (R16). Refused while its group is "
        "in maintenance (R18) or a key action is required (R10). Running runs continue."
    )
    @typed_errors
    async def set_machine_maintenance(
        self, info: Info[Context, None], id: strawberry.ID, enabled: bool
    ) -> SetMachineMaintenanceResult:
        ctx = info.context
        machine = await maintenance.set_machine_maintenance(ctx.domain, ctx.principal, id, enabled)
        return MachinePayload(machine=MachineType.from_model(machine, ctx))

    @strawberry.mutation(
        description="Turn a group's maintenance on or off: all its machines follow (R18). "
        "Refused while one of its machines needs a key action (R10)."
    )
    @typed_errors
    async def set_machine_group_maintenance(
        self, info: Info[Context, None], id: strawberry.ID, enabled: bool
    ) -> SetMachineGroupMaintenanceResult:
        ctx = info.context
        group = await maintenance.set_group_maintenance(ctx.domain, ctx.principal, id, enabled)
        return MachineGroupPayload(group=MachineGroupType.from_model(group))
