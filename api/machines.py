"""The machine registry: queries, and the portal-side mutations (R1-R10)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar, Union

import strawberry
from strawberry.types import Info

import api.enums  # noqa: F401  (registers the domain enums with Strawberry)
from api.context import Context
from api.environments import EnvironmentType
from api.errors import attempt, lookup, payload, read
from api.groups import MachineGroupType
from api.identity import UserType
from domain import machines
from domain.machine_views import MachineView, list_machine_views
from domain.maintenance import MaintenanceLock
from domain.models import Machine, MachineStatus
from domain.permissions import AccessLevel, Action

if TYPE_CHECKING:
    from api.sharing import AccessEntryType

# A field a list prefetched answers at once; alone, it awaits its loader.
T = TypeVar("T")
Prefetched = Union[T, Awaitable[T]]  # noqa: UP007


@strawberry.type(name="Machine")
class MachineType:
    id: strawberry.ID
    name: str
    description: str
    version: str = strawberry.field(description="Runtime version (R7).")
    os_edition: str
    status: MachineStatus = strawberry.field(description="R9: derived from heartbeats.")
    key_action_required: bool = strawberry.field(
        description="R10: a key rotation is pending or the key expired."
    )
    unattended_bots: int
    last_heartbeat_at: datetime | None
    created_at: datetime
    model: strawberry.Private[Machine]
    # Prefetched by lists (domain.machine_views): the fields below then answer without awaiting.
    view: strawberry.Private[MachineView | None] = None

    @classmethod
    def from_view(cls, view: MachineView, ctx: Context) -> MachineType:
        node = cls.from_model(view.machine, ctx)
        node.view = view
        return node

    @classmethod
    def from_model(cls, machine: Machine, ctx: Context) -> MachineType:
        timeout = ctx.domain.settings.heartbeat_timeout_seconds
        return cls(
            id=strawberry.ID(machine.id),
            name=machine.name,
            description=machine.description,
            version=machine.runtime_version,
            os_edition=machine.os_edition,
            status=machines.status_of(machine, ctx.now, timeout),
            key_action_required=machines.key_action_required(machine, ctx.now),
            unattended_bots=machine.unattended_bots,
            last_heartbeat_at=machine.last_heartbeat_at,
            created_at=machine.created_at,
            model=machine,
        )

    @strawberry.field(graphql_type=UserType | None)
    def owner(self, info: Info[Context, None]) -> Prefetched[UserType | None]:
        if self.view is not None:
            return UserType.from_model(self.view.owner) if self.view.owner else None
        return self._owner(info)

    async def _owner(self, info: Info[Context, None]) -> UserType | None:
        user = await info.context.loaders.users.load(self.model.owner_id)
        return UserType.from_model(user) if user else None

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        return EnvironmentType.from_model(environment) if environment else None

    @strawberry.field(graphql_type=MachineGroupType | None)
    def group(self, info: Info[Context, None]) -> Prefetched[MachineGroupType | None]:
        if self.view is not None:
            return MachineGroupType.from_model(self.view.group) if self.view.group else None
        return self._group(info)

    async def _group(self, info: Info[Context, None]) -> MachineGroupType | None:
        if self.model.group_id is None:
            return None
        group = await info.context.loaders.groups.load(self.model.group_id)
        return MachineGroupType.from_model(group) if group else None

    @strawberry.field(
        graphql_type=AccessLevel | None,
        description="The caller's access to this machine (R8, R12).",
    )
    def access_type(self, info: Info[Context, None]) -> Prefetched[AccessLevel | None]:
        if self.view is not None:
            return self.view.access
        return info.context.loaders.machine_access.load(self.model)

    @strawberry.field(
        graphql_type=bool,
        description="R16-R19: in maintenance, on its own or because its group is (R18); "
        "always off while a key action is required (R10).",
    )
    def maintenance(self, info: Info[Context, None]) -> Prefetched[bool]:
        if self.view is not None:
            return self.view.maintenance.maintenance
        return self._maintenance(info, "maintenance")

    async def _maintenance(self, info: Info[Context, None], part: str) -> object:
        return getattr(await info.context.loaders.machine_maintenance.load(self.model), part)

    @strawberry.field(graphql_type=bool, description="R18: in maintenance because its group is.")
    def maintenance_inherited(self, info: Info[Context, None]) -> Prefetched[bool]:
        if self.view is not None:
            return self.view.maintenance.inherited
        return self._maintenance(info, "inherited")  # type: ignore[return-value]

    @strawberry.field(
        graphql_type=MaintenanceLock | None,
        description="Why its maintenance toggle is refused now (R10, R18), if so.",
    )
    def maintenance_lock(self, info: Info[Context, None]) -> Prefetched[MaintenanceLock | None]:
        if self.view is not None:
            return self.view.maintenance.lock
        return self._maintenance(info, "lock")  # type: ignore[return-value]

    @strawberry.field(graphql_type=bool, description="R19: nothing is running on it.")
    def drained(self, info: Info[Context, None]) -> Prefetched[bool]:
        if self.view is not None:
            return self.view.maintenance.drained
        return self._maintenance(info, "drained")  # type: ignore[return-value]

    @strawberry.field(description="What the caller may do to this machine (R12 x R13).")
    async def allowed_actions(self, info: Info[Context, None]) -> list[Action]:
        return await info.context.loaders.machine_allowed.load(self.model)

    @strawberry.field(
        description="R15: the owner and everyone it is shared with, deactivated users marked. "
        "Null when the caller has no access to the machine."
    )
    async def access_list(
        self, info: Info[Context, None]
    ) -> list[Annotated[AccessEntryType, strawberry.lazy("api.sharing")]] | None:
        from api.sharing import AccessEntryType

        entries = await info.context.loaders.machine_access_lists.load(self.model)
        return None if entries is None else [AccessEntryType.from_entry(e) for e in entries]

    @strawberry.field(description="R15: shared with a deactivated user, until their share goes.")
    async def has_deactivated_shares(self, info: Info[Context, None]) -> bool:
        return await info.context.loaders.machine_deactivated_shares.load(self.model)

    @strawberry.field(graphql_type=int, description="Flows running on the machine now (R8).")
    def running_count(self, info: Info[Context, None]) -> Prefetched[int]:
        if self.view is not None:
            return self.view.counts.running
        return self._counts(info, "running")

    async def _counts(self, info: Info[Context, None], part: str) -> int:
        return getattr(await info.context.loaders.machine_counts.load(self.model.id), part)

    @strawberry.field(graphql_type=int, description="Flows queued for the machine (R8).")
    def queued_count(self, info: Info[Context, None]) -> Prefetched[int]:
        if self.view is not None:
            return self.view.counts.queued
        return self._counts(info, "queued")


@strawberry.type
class MachineEdge:
    cursor: str
    node: MachineType


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class MachineConnection:
    edges: list[MachineEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[MachineType]:
        return [edge.node for edge in self.edges]


@strawberry.input
class MachineFilterInput:
    environment_id: strawberry.ID | None = None
    group_id: strawberry.ID | None = None
    status: MachineStatus | None = None
    maintenance: bool | None = None
    text: str | None = strawberry.field(
        default=None, description="Matches name or description, case-insensitively."
    )


@strawberry.type
class RegisteredMachinePayload:
    machine: MachineType
    machine_key: str = strawberry.field(
        description="The machine runtime's key (R5). Shown this once only; stored hashed."
    )


@strawberry.type
class MachinePayload:
    machine: MachineType


@strawberry.type
class DeletedMachinePayload:
    id: strawberry.ID


RegisterMachineResult = payload("RegisterMachineResult", RegisteredMachinePayload)
UpdateMachineResult = payload("UpdateMachineResult", MachinePayload)
DeleteMachineResult = payload("DeleteMachineResult", DeletedMachinePayload)
ChangeMachineEnvironmentResult = payload("ChangeMachineEnvironmentResult", MachinePayload)
RotateMachineKeyResult = payload("RotateMachineKeyResult", MachinePayload)


@strawberry.input
class RegisterMachineInput:
    environment_id: strawberry.ID
    name: str
    runtime_version: str
    os_edition: str
    description: str = ""


@strawberry.input
class UpdateMachineInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None


def machine_page(page: machines.Page[MachineView], ctx: Context) -> MachineConnection:
    return MachineConnection(
        edges=[
            MachineEdge(cursor=cursor, node=MachineType.from_view(v, ctx))
            for v, cursor in zip(page.items, page.cursors, strict=True)
        ],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total_count,
    )


@strawberry.type
class MachineQuery:
    @strawberry.field(description="One machine the caller can see, or null.")
    async def machine(self, info: Info[Context, None], id: strawberry.ID) -> MachineType | None:
        ctx = info.context
        found = await lookup(lambda: machines.get_machine(ctx.domain, ctx.principal, id))
        return MachineType.from_model(found, ctx) if found else None

    @strawberry.field(description="Machines the caller can see, by name (R8). At most 100 a page.")
    async def machines(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        filter: MachineFilterInput | None = None,
    ) -> MachineConnection:
        ctx = info.context
        f = filter or MachineFilterInput()
        flt = machines.MachineFilter(
            environment_id=f.environment_id,
            group_id=f.group_id,
            status=f.status,
            maintenance=f.maintenance,
            text=f.text,
        )
        page = await read(
            lambda: list_machine_views(ctx.domain, ctx.principal, flt, first=first, after=after)
        )
        return machine_page(page, ctx)


@strawberry.type
class MachineMutation:
    @strawberry.mutation(description="Register a machine (R1-R5); returns its key once.")
    async def register_machine(
        self, info: Info[Context, None], input: RegisterMachineInput
    ) -> RegisterMachineResult:
        ctx = info.context

        async def run() -> RegisteredMachinePayload:
            registered = await machines.register_machine(
                ctx.domain,
                ctx.principal,
                environment_id=input.environment_id,
                name=input.name,
                runtime_version=input.runtime_version,
                os_edition=input.os_edition,
                description=input.description,
            )
            return RegisteredMachinePayload(
                machine=MachineType.from_model(registered.machine, ctx),
                machine_key=registered.machine_key,
            )

        return await attempt(run)

    @strawberry.mutation(description="Edit a machine's name or description (R12).")
    async def update_machine(
        self, info: Info[Context, None], input: UpdateMachineInput
    ) -> UpdateMachineResult:
        ctx = info.context

        async def run() -> MachinePayload:
            machine = await machines.update_machine(
                ctx.domain, ctx.principal, input.id, name=input.name, description=input.description
            )
            return MachinePayload(machine=MachineType.from_model(machine, ctx))

        return await attempt(run)

    @strawberry.mutation(
        description="Delete a machine (R12); never possible with a machine key (R5)."
    )
    async def delete_machine(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteMachineResult:
        ctx = info.context

        async def run() -> DeletedMachinePayload:
            machine = await machines.delete_machine(ctx.domain, ctx.principal, id)
            return DeletedMachinePayload(id=strawberry.ID(machine.id))

        return await attempt(run)

    @strawberry.mutation(description="Move a machine to another environment (R6).")
    async def change_machine_environment(
        self, info: Info[Context, None], id: strawberry.ID, environment_id: strawberry.ID
    ) -> ChangeMachineEnvironmentResult:
        ctx = info.context

        async def run() -> MachinePayload:
            machine = await machines.change_machine_environment(
                ctx.domain, ctx.principal, id, environment_id
            )
            return MachinePayload(machine=MachineType.from_model(machine, ctx))

        return await attempt(run)

    @strawberry.mutation(description="Ask the machine runtime to take a new key (R10).")
    async def rotate_machine_key(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> RotateMachineKeyResult:
        ctx = info.context

        async def run() -> MachinePayload:
            machine = await machines.rotate_machine_key(ctx.domain, ctx.principal, id)
            return MachinePayload(machine=MachineType.from_model(machine, ctx))

        return await attempt(run)
