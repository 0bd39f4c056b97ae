"""Sharing machines and groups (R12, R14, R15) and their access lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

import api.enums  # noqa: F401  (registers the domain enums with Strawberry)
from api.context import Context
from api.errors import UserErrors, typed_errors
from api.fleet.groups import MachineGroupPayload, MachineGroupType
from api.fleet.machines import MachinePayload, MachineType
from api.identity.identity import UserType
from domain.fleet import sharing
from domain.kernel.permissions import AccessLevel


@strawberry.type(name="AccessEntry", description="One user's access to a machine or group (R15).")
class AccessEntryType:
    user: UserType
    access: AccessLevel
    deactivated: bool = strawberry.field(
        description="R15: the user is deactivated; their share stays until someone removes it."
    )
    granted_at: datetime
    granted_by_id: strawberry.Private[str | None]

    @classmethod
    def from_entry(cls, entry: sharing.AccessEntry) -> AccessEntryType:
        return cls(
            user=UserType.from_model(entry.user),
            access=entry.access,
            deactivated=entry.deactivated,
            granted_at=entry.granted_at,
            granted_by_id=entry.granted_by_id,
        )

    @strawberry.field(description="Who shared it; null for the owner's own line.")
    async def granted_by(self, info: Info[Context, None]) -> UserType | None:
        if self.granted_by_id is None:
            return None
        user = await info.context.loaders.users.load(self.granted_by_id)
        return UserType.from_model(user) if user else None


@strawberry.input
class ShareMachineInput:
    machine_id: strawberry.ID
    user_id: strawberry.ID
    access: AccessLevel = strawberry.field(
        description="CO_OWNER or USER, at most what the caller holds (R14)."
    )


@strawberry.input
class ShareMachineGroupInput:
    group_id: strawberry.ID
    user_id: strawberry.ID
    access: AccessLevel = strawberry.field(
        description="CO_OWNER or USER, at most what the caller holds (R14)."
    )


ShareMachineResult = Annotated[MachinePayload | UserErrors, strawberry.union("ShareMachineResult")]
ShareMachineGroupResult = Annotated[
    MachineGroupPayload | UserErrors, strawberry.union("ShareMachineGroupResult")
]


@strawberry.type
class SharingMutation:
    @strawberry.mutation(
        description="Share a machine with a user, or change their level (R12, R14)."
    )
    @typed_errors
    async def share_machine(
        self, info: Info[Context, None], input: ShareMachineInput
    ) -> ShareMachineResult:
        ctx = info.context
        machine = await sharing.share(
            ctx.domain,
            ctx.principal,
            sharing.MACHINE,
            input.machine_id,
            user_id=input.user_id,
            access=input.access,
        )
        return MachinePayload(machine=MachineType.from_model(machine, ctx))

    @strawberry.mutation(description="Take a user's access to a machine away (R15).")
    @typed_errors
    async def unshare_machine(
        self, info: Info[Context, None], machine_id: strawberry.ID, user_id: strawberry.ID
    ) -> ShareMachineResult:
        ctx = info.context
        machine = await sharing.unshare(
            ctx.domain, ctx.principal, sharing.MACHINE, machine_id, user_id=user_id
        )
        return MachinePayload(machine=MachineType.from_model(machine, ctx))

    @strawberry.mutation(
        description="Share a machine group with a user, or change their level (R12, R14). "
        "It gives access to the group, not to each of its machines."
    )
    @typed_errors
    async def share_machine_group(
        self, info: Info[Context, None], input: ShareMachineGroupInput
    ) -> ShareMachineGroupResult:
        ctx = info.context
        group = await sharing.share(
            ctx.domain,
            ctx.principal,
            sharing.GROUP,
            input.group_id,
            user_id=input.user_id,
            access=input.access,
        )
        return MachineGroupPayload(group=MachineGroupType.from_model(group))

    @strawberry.mutation(description="Take a user's access to a machine group away (R15).")
    @typed_errors
    async def unshare_machine_group(
        self, info: Info[Context, None], group_id: strawberry.ID, user_id: strawberry.ID
    ) -> ShareMachineGroupResult:
        ctx = info.context
        group = await sharing.unshare(
            ctx.domain, ctx.principal, sharing.GROUP, group_id, user_id=user_id
        )
        return MachineGroupPayload(group=MachineGroupType.from_model(group))
