"""The machine registry: queries, and the portal-side mutations (R1-R10)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

import strawberry
from strawberry.types import Info

import api.enums  # noqa: F401  (registers the domain enums with Strawberry)
from api.context import Context
from api.errors import UserErrors, idempotency_key_field, lookup, read, typed_errors
from api.fleet.environments import EnvironmentType
from api.fleet.groups import MachineGroupType
from api.identity.identity import UserType
from api.loaders import Deferred, Loaders
from api.pagination import PageInfo
from domain.fleet import machines
from domain.fleet.machine_views import MachineRecord, MachineView, list_machine_views
from domain.fleet.maintenance import MaintenanceLock
from domain.kernel.permissions import AccessLevel, Action
from domain.store.models import Machine, MachineStatus
from domain.store.pagination import Page

if TYPE_CHECKING:
    from api.fleet.sharing import AccessEntryType

# A field a list prefetched answers at once; alone, it awaits its loader.
T = TypeVar("T")
Prefetched = Union[T, Deferred[T]]  # noqa: UP007


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
    # Plain attributes, not resolvers: Strawberry then reads them without building an Info and
    # its resolver chain, which was most of the cost of a page of machines. A page gives them
    # prefetched values (domain.fleet.machine_views); a machine alone gives loads run if selected.
    owner: Prefetched[UserType | None] = strawberry.field(graphql_type=UserType | None)
    group: Prefetched[MachineGroupType | None] = strawberry.field(
        graphql_type=MachineGroupType | None
    )
    access_type: Prefetched[AccessLevel | None] = strawberry.field(
        graphql_type=AccessLevel | None,
        description="The caller's access to this machine (R8, R12).",
    )
    maintenance: Prefetched[bool] = strawberry.field(
        graphql_type=bool,
        description="R16-R19: in maintenance, on its own or because its group is (R18); "
        "always off while a key action is required (R10).",
    )
    maintenance_inherited: Prefetched[bool] = strawberry.field(
        graphql_type=bool, description="R18: in maintenance because its group is."
    )
    maintenance_lock: Prefetched[MaintenanceLock | None] = strawberry.field(
        graphql_type=MaintenanceLock | None,
        description="Why its maintenance toggle is refused now (R10, R18), if so.",
    )
    drained: Prefetched[bool] = strawberry.field(
        graphql_type=bool, description="R19: nothing is running on it."
    )
    running_count: Prefetched[int] = strawberry.field(
        graphql_type=int, description="Flows running on the machine now (R8)."
    )
    queued_count: Prefetched[int] = strawberry.field(
        graphql_type=int, description="Flows queued for the machine (R8)."
    )
    # A machine a list read is its record (domain.fleet.machine_views); the loaders read either alike.
    model: strawberry.Private[MachineRecord]

    @classmethod
    def from_view(
        cls,
        view: MachineView,
        ctx: Context,
        users: dict[str, UserType] | None = None,
        groups: dict[str, MachineGroupType] | None = None,
    ) -> MachineType:
        """``users`` and ``groups``: the page's, each converted once for all its machines."""
        machine, state = view.machine, view.maintenance
        owner = None
        if view.owner is not None:
            owner = _once(users, view.owner.id, lambda: UserType.from_model(view.owner))  # type: ignore[arg-type]
        group = None
        if view.group is not None:
            group = _once(groups, view.group.id, lambda: MachineGroupType.from_model(view.group))  # type: ignore[arg-type]
        return cls._of(
            machine,
            ctx,
            owner=owner,
            group=group,
            access_type=view.access,
            maintenance=state.maintenance,
            maintenance_inherited=state.inherited,
            maintenance_lock=state.lock,
            drained=state.drained,
            running_count=view.counts.running,
            queued_count=view.counts.queued,
        )

    @classmethod
    def from_model(cls, machine: Machine, ctx: Context) -> MachineType:
        loaders = ctx.loaders
        state = Deferred(lambda: loaders.machine_maintenance.load(machine))
        counts = Deferred(lambda: loaders.machine_counts.load(machine.id))
        return cls._of(
            machine,
            ctx,
            owner=Deferred(lambda: _owner(loaders, machine)),
            group=Deferred(lambda: _group(loaders, machine)),
            access_type=Deferred(lambda: loaders.machine_access.load(machine)),
            maintenance=state.part("maintenance"),
            maintenance_inherited=state.part("inherited"),
            maintenance_lock=state.part("lock"),
            drained=state.part("drained"),
            running_count=counts.part("running"),
            queued_count=counts.part("queued"),
        )

    @classmethod
    def _of(cls, machine: MachineRecord, ctx: Context, **parts: Any) -> MachineType:
        return cls(
            id=strawberry.ID(machine.id),
            name=machine.name,
            description=machine.description,
            version=machine.runtime_version,
            os_edition=machine.os_edition,
            status=machines.status_of(
                machine, ctx.now, ctx.domain.settings.heartbeat_timeout_seconds
            ),
            key_action_required=machines.key_action_required(machine, ctx.now),
            unattended_bots=machine.unattended_bots,
            last_heartbeat_at=machine.last_heartbeat_at,
            created_at=machine.created_at,
            model=machine,
            **parts,
        )

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        return EnvironmentType.from_model(environment) if environment else None

    @strawberry.field(
        description="R41: its runtime is below its environment's minimum: it gets no new run "
        "until it reports a version at least that (a heartbeat will do)."
    )
    async def runtime_outdated(self, info: Info[Context, None]) -> bool:
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        return machines.runtime_outdated(self.model.runtime_version, environment)

    @strawberry.field(description="What the caller may do to this machine (R12 x R13).")
    async def allowed_actions(self, info: Info[Context, None]) -> list[Action]:
        return await info.context.loaders.machine_allowed.load(self.model)

    @strawberry.field(
        description="R15: the owner and everyone it is shared with, deactivated users marked. "
        "Null when the caller has no access to the machine."
    )
    async def access_list(
        self, info: Info[Context, None]
    ) -> list[Annotated[AccessEntryType, strawberry.lazy("api.fleet.sharing")]] | None:
        from api.fleet.sharing import AccessEntryType

        entries = await info.context.loaders.machine_access_lists.load(self.model)
        return None if entries is None else [AccessEntryType.from_entry(e) for e in entries]

    @strawberry.field(description="R15: shared with a deactivated user, until their share goes.")
    async def has_deactivated_shares(self, info: Info[Context, None]) -> bool:
        return await info.context.loaders.machine_deactivated_shares.load(self.model)


K = TypeVar("K")
V = TypeVar("V")


def _once(seen: dict[K, V] | None, key: K, make: Callable[[], V]) -> V:
    if seen is None:
        return make()
    value = seen.get(key)
    if value is None:
        value = seen[key] = make()
    return value


async def _owner(loaders: Loaders, machine: Machine) -> UserType | None:
    user = await loaders.users.load(machine.owner_id)
    return UserType.from_model(user) if user else None


async def _group(loaders: Loaders, machine: Machine) -> MachineGroupType | None:
    if machine.group_id is None:
        return None
    group = await loaders.groups.load(machine.group_id)
    return MachineGroupType.from_model(group) if group else None


@strawberry.type
class MachineEdge:
    node: MachineType
    # Encoded only if asked for (domain.store.pagination.LazyCursors).
    cursors: strawberry.Private[Sequence[str]]
    index: strawberry.Private[int]

    @strawberry.field
    def cursor(self) -> str:
        return self.cursors[self.index]


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
    runtime_outdated: bool | None = strawberry.field(
        default=None,
        description="R41: true, the machines whose runtime is below their environment's "
        "minimum (those that must update); false, the others.",
    )


@strawberry.type
class RegisteredMachinePayload:
    machine: MachineType
    machine_key: str = strawberry.field(
        description="The machine runtime's key (R5). Shown this once only, stored hashed; a "
        "replay of the registration (R46) shows it again to its caller for 24 hours."
    )


@strawberry.type
class MachinePayload:
    machine: MachineType


@strawberry.type
class DeletedMachinePayload:
    id: strawberry.ID


RegisterMachineResult = Annotated[
    RegisteredMachinePayload | UserErrors, strawberry.union("RegisterMachineResult")
]
UpdateMachineResult = Annotated[
    MachinePayload | UserErrors, strawberry.union("UpdateMachineResult")
]
DeleteMachineResult = Annotated[
    DeletedMachinePayload | UserErrors, strawberry.union("DeleteMachineResult")
]
ChangeMachineEnvironmentResult = Annotated[
    MachinePayload | UserErrors, strawberry.union("ChangeMachineEnvironmentResult")
]
RotateMachineKeyResult = Annotated[
    MachinePayload | UserErrors, strawberry.union("RotateMachineKeyResult")
]


@strawberry.input
class RegisterMachineInput:
    environment_id: strawberry.ID
    name: str
    runtime_version: str
    os_edition: str
    description: str = ""
    idempotency_key: str | None = idempotency_key_field(
        "A replay answers the machine key again (kept sealed for those 24 hours)."
    )


@strawberry.input
class UpdateMachineInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None


def machine_page(page: Page[MachineView], ctx: Context) -> MachineConnection:
    users: dict[str, UserType] = {}
    groups: dict[str, MachineGroupType] = {}
    return MachineConnection(
        edges=[
            MachineEdge(
                node=MachineType.from_view(view, ctx, users, groups),
                cursors=page.cursors,
                index=index,
            )
            for index, view in enumerate(page.items)
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
            runtime_outdated=f.runtime_outdated,
        )
        page = await read(
            lambda: list_machine_views(ctx.domain, ctx.principal, flt, first=first, after=after)
        )
        return machine_page(page, ctx)


@strawberry.type
class MachineMutation:
    @strawberry.mutation(description="Register a machine (R1-R5); returns its key once.")
    @typed_errors
    async def register_machine(
        self, info: Info[Context, None], input: RegisterMachineInput
    ) -> RegisterMachineResult:
        ctx = info.context
        registered = await machines.register_machine(
            ctx.domain,
            ctx.principal,
            environment_id=input.environment_id,
            name=input.name,
            runtime_version=input.runtime_version,
            os_edition=input.os_edition,
            description=input.description,
            idempotency_key=input.idempotency_key,
        )
        return RegisteredMachinePayload(
            machine=MachineType.from_model(registered.machine, ctx),
            machine_key=registered.machine_key,
        )

    @strawberry.mutation(description="Edit a machine's name or description (R12).")
    @typed_errors
    async def update_machine(
        self, info: Info[Context, None], input: UpdateMachineInput
    ) -> UpdateMachineResult:
        ctx = info.context
        machine = await machines.update_machine(
            ctx.domain, ctx.principal, input.id, name=input.name, description=input.description
        )
        return MachinePayload(machine=MachineType.from_model(machine, ctx))

    @strawberry.mutation(
        description="Delete a machine (R12); never possible with a machine key (R5)."
    )
    @typed_errors
    async def delete_machine(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteMachineResult:
        ctx = info.context
        machine = await machines.delete_machine(ctx.domain, ctx.principal, id)
        return DeletedMachinePayload(id=strawberry.ID(machine.id))

    @strawberry.mutation(description="Move a machine to another environment (R6).")
    @typed_errors
    async def change_machine_environment(
        self, info: Info[Context, None], id: strawberry.ID, environment_id: strawberry.ID
    ) -> ChangeMachineEnvironmentResult:
        ctx = info.context
        machine = await machines.change_machine_environment(
            ctx.domain, ctx.principal, id, environment_id
        )
        return MachinePayload(machine=MachineType.from_model(machine, ctx))

    @strawberry.mutation(description="Ask the machine runtime to take a new key (R10).")
    @typed_errors
    async def rotate_machine_key(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> RotateMachineKeyResult:
        ctx = info.context
        machine = await machines.rotate_machine_key(ctx.domain, ctx.principal, id)
        return MachinePayload(machine=MachineType.from_model(machine, ctx))
