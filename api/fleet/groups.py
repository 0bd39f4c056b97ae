"""Machine groups (R11), with their machines, counts, maintenance (R18-R19) and sharing (R12-R15).

``api.fleet.machines`` imports this module, so machine-typed fields here are lazy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

import api.enums  # noqa: F401  (registers the domain enums with Strawberry)
from api.context import Context
from api.errors import UserErrors, idempotency_key_field, lookup, read, typed_errors
from api.fleet.environments import EnvironmentType
from domain.fleet import groups
from domain.fleet.machine_views import GroupRecord
from domain.kernel.permissions import AccessLevel, Action
from domain.store.models import MachineGroup
from domain.store.pagination import Page

if TYPE_CHECKING:
    from api.fleet.machines import MachineType
    from api.fleet.sharing import AccessEntryType
    from api.identity.identity import UserType
    from api.pagination import PageInfo

LazyMachine = Annotated["MachineType", strawberry.lazy("api.fleet.machines")]
LazyPageInfo = Annotated["PageInfo", strawberry.lazy("api.fleet.machines")]
LazyAccessEntry = Annotated["AccessEntryType", strawberry.lazy("api.fleet.sharing")]
LazyUser = Annotated["UserType", strawberry.lazy("api.identity.identity")]


@strawberry.type(name="MachineGroup")
class MachineGroupType:
    id: strawberry.ID
    name: str
    description: str
    created_at: datetime
    model: strawberry.Private[GroupRecord]

    @classmethod
    def from_model(cls, group: GroupRecord) -> MachineGroupType:
        return cls(
            id=strawberry.ID(group.id),
            name=group.name,
            description=group.description,
            created_at=group.created_at,
            model=group,
        )

    async def _state(self, info: Info[Context, None]) -> groups.GroupState:
        return await info.context.loaders.group_state.load(self.model)

    @strawberry.field
    async def owner(self, info: Info[Context, None]) -> LazyUser | None:
        from api.identity.identity import UserType

        user = await info.context.loaders.users.load(self.model.owner_id)
        return UserType.from_model(user) if user else None

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        return EnvironmentType.from_model(environment) if environment else None

    @strawberry.field(
        description="R18: the group is in maintenance, and so are all its machines. Off while "
        "one of its machines needs a key action (R10)."
    )
    async def maintenance(self, info: Info[Context, None]) -> bool:
        return (await self._state(info)).maintenance

    @strawberry.field(description="R10: one of its machines needs a key action.")
    async def key_action_required(self, info: Info[Context, None]) -> bool:
        return (await self._state(info)).key_action_required

    @strawberry.field(description="R19: nothing is running on any of its machines.")
    async def drained(self, info: Info[Context, None]) -> bool:
        return (await self._state(info)).drained

    @strawberry.field(description="R11: at most 50 (a setting).")
    async def machine_count(self, info: Info[Context, None]) -> int:
        return (await self._state(info)).machine_count

    @strawberry.field(description="R9: its machines whose heartbeats arrive.")
    async def connected_count(self, info: Info[Context, None]) -> int:
        return (await self._state(info)).connected_count

    @strawberry.field(description="Flows running on its machines.")
    async def running_count(self, info: Info[Context, None]) -> int:
        return (await self._state(info)).running_count

    @strawberry.field(description="Flows queued for its machines.")
    async def queued_count(self, info: Info[Context, None]) -> int:
        return (await self._state(info)).queued_count

    @strawberry.field(
        description="Its machines, by name. A group share does not share each machine: "
        "`accessType` on a machine is the caller's own access to it."
    )
    async def machines(self, info: Info[Context, None]) -> list[LazyMachine]:
        from api.fleet.machines import MachineType

        state = await self._state(info)
        return [MachineType.from_model(m, info.context) for m in state.machines]

    @strawberry.field(description="The caller's access to this group (R12).")
    async def access_type(self, info: Info[Context, None]) -> AccessLevel | None:
        return await info.context.loaders.group_access.load(self.model)

    @strawberry.field(description="What the caller may do to this group (R12 x R13).")
    async def allowed_actions(self, info: Info[Context, None]) -> list[Action]:
        return await info.context.loaders.group_allowed.load(self.model)

    @strawberry.field(
        description="R15: the owner and everyone it is shared with, deactivated users marked. "
        "Null when the caller has no access to the group."
    )
    async def access_list(self, info: Info[Context, None]) -> list[LazyAccessEntry] | None:
        from api.fleet.sharing import AccessEntryType

        entries = await info.context.loaders.group_access_lists.load(self.model)
        return None if entries is None else [AccessEntryType.from_entry(e) for e in entries]

    @strawberry.field(description="R15: shared with a deactivated user, until their share goes.")
    async def has_deactivated_shares(self, info: Info[Context, None]) -> bool:
        return await info.context.loaders.group_deactivated_shares.load(self.model)


@strawberry.type
class MachineGroupEdge:
    cursor: str
    node: MachineGroupType


@strawberry.type
class MachineGroupConnection:
    edges: list[MachineGroupEdge]
    page_info: LazyPageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[MachineGroupType]:
        return [edge.node for edge in self.edges]


@strawberry.input
class MachineGroupFilterInput:
    environment_id: strawberry.ID | None = None
    maintenance: bool | None = None
    text: str | None = strawberry.field(
        default=None, description="Matches name or description, case-insensitively."
    )


@strawberry.input
class CreateMachineGroupInput:
    environment_id: strawberry.ID
    name: str
    description: str = ""
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input
class UpdateMachineGroupInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None


@strawberry.type
class MachineGroupPayload:
    group: MachineGroupType


@strawberry.type
class DeletedMachineGroupPayload:
    id: strawberry.ID


@strawberry.type
class MachineGroupMembershipPayload:
    machine: LazyMachine
    group: MachineGroupType | None = strawberry.field(
        description="The group joined, or (after a removal) the group left."
    )


CreateMachineGroupResult = Annotated[
    MachineGroupPayload | UserErrors, strawberry.union("CreateMachineGroupResult")
]
UpdateMachineGroupResult = Annotated[
    MachineGroupPayload | UserErrors, strawberry.union("UpdateMachineGroupResult")
]
DeleteMachineGroupResult = Annotated[
    DeletedMachineGroupPayload | UserErrors, strawberry.union("DeleteMachineGroupResult")
]
MachineGroupMembershipResult = Annotated[
    MachineGroupMembershipPayload | UserErrors, strawberry.union("MachineGroupMembershipResult")
]


def group_page(page: Page[MachineGroup]) -> MachineGroupConnection:
    from api.pagination import PageInfo

    return MachineGroupConnection(
        edges=[
            MachineGroupEdge(cursor=cursor, node=MachineGroupType.from_model(g))
            for g, cursor in zip(page.items, page.cursors, strict=True)
        ],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total_count,
    )


def membership(info: Info[Context, None], found: tuple) -> MachineGroupMembershipPayload:
    from api.fleet.machines import MachineType

    machine, group = found
    return MachineGroupMembershipPayload(
        machine=MachineType.from_model(machine, info.context),
        group=MachineGroupType.from_model(group) if group else None,
    )


@strawberry.type
class GroupQuery:
    @strawberry.field(description="One machine group the caller can see, or null.")
    async def machine_group(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> MachineGroupType | None:
        ctx = info.context
        found = await lookup(lambda: groups.get_group(ctx.domain, ctx.principal, id))
        return MachineGroupType.from_model(found) if found else None

    @strawberry.field(
        description="Groups the caller owns, was given, or administers, by name. At most 100 "
        "a page."
    )
    async def machine_groups(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        filter: MachineGroupFilterInput | None = None,
    ) -> MachineGroupConnection:
        ctx = info.context
        f = filter or MachineGroupFilterInput()
        flt = groups.GroupFilter(
            environment_id=f.environment_id, maintenance=f.maintenance, text=f.text
        )
        page = await read(
            lambda: groups.list_groups(ctx.domain, ctx.principal, flt, first=first, after=after)
        )
        return group_page(page)


@strawberry.type
class GroupMutation:
    @strawberry.mutation(description="Create an empty machine group (R11).")
    @typed_errors
    async def create_machine_group(
        self, info: Info[Context, None], input: CreateMachineGroupInput
    ) -> CreateMachineGroupResult:
        ctx = info.context
        group = await groups.create_group(
            ctx.domain,
            ctx.principal,
            environment_id=input.environment_id,
            name=input.name,
            description=input.description,
            idempotency_key=input.idempotency_key,
        )
        return MachineGroupPayload(group=MachineGroupType.from_model(group))

    @strawberry.mutation(description="Edit a group's name or description (R12).")
    @typed_errors
    async def update_machine_group(
        self, info: Info[Context, None], input: UpdateMachineGroupInput
    ) -> UpdateMachineGroupResult:
        ctx = info.context
        group = await groups.update_group(
            ctx.domain, ctx.principal, input.id, name=input.name, description=input.description
        )
        return MachineGroupPayload(group=MachineGroupType.from_model(group))

    @strawberry.mutation(description="Delete a group (R12); its machines become standalone.")
    @typed_errors
    async def delete_machine_group(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteMachineGroupResult:
        ctx = info.context
        group = await groups.delete_group(ctx.domain, ctx.principal, id)
        return DeletedMachineGroupPayload(id=strawberry.ID(group.id))

    @strawberry.mutation(
        description="Add a machine to a group, or move it there from its group (R11: same "
        "environment, at most 50). Needs ADD_TO_GROUP on the machine and EDIT on the group(s)."
    )
    @typed_errors
    async def add_machine_to_group(
        self, info: Info[Context, None], group_id: strawberry.ID, machine_id: strawberry.ID
    ) -> MachineGroupMembershipResult:
        ctx = info.context
        found = await groups.add_machine(ctx.domain, ctx.principal, group_id, machine_id)
        return membership(info, found)

    @strawberry.mutation(
        description="Make a machine standalone. Needs EDIT on its group or ADD_TO_GROUP on it."
    )
    @typed_errors
    async def remove_machine_from_group(
        self, info: Info[Context, None], machine_id: strawberry.ID
    ) -> MachineGroupMembershipResult:
        ctx = info.context
        found = await groups.remove_machine(ctx.domain, ctx.principal, machine_id)
        return membership(info, found)
