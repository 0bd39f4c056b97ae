"""Desktop-flow connections (R20, R21) and legacy gateways (R22).

The Connection type has no password field, by design: the password is write-only (R20).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

import api.enums  # noqa: F401  (registers the domain enums with Strawberry)
from api.context import Context
from api.errors import UserErrors, idempotency_key_field, lookup, read, typed_errors
from api.fleet.environments import EnvironmentType
from api.fleet.groups import MachineGroupType
from api.fleet.machines import MachineType
from api.identity.identity import UserType
from api.pagination import PageInfo
from domain.connections import connections
from domain.store.models import Connection, Connectivity, Gateway


@strawberry.type(
    name="Connection",
    description="A desktop-flow connection (R20): a target machine or group and Windows "
    "credentials. The password is write-only: it is never returned.",
)
class ConnectionType:
    id: strawberry.ID
    name: str
    connectivity: Connectivity
    windows_username: str
    has_password: bool = strawberry.field(description="Whether a password is stored (R20).")
    created_at: datetime
    updated_at: datetime = strawberry.field(
        description="Last change of name, target or credentials."
    )
    model: strawberry.Private[Connection]

    @classmethod
    def from_model(cls, connection: Connection) -> ConnectionType:
        return cls(
            id=strawberry.ID(connection.id),
            name=connection.name,
            connectivity=connection.connectivity,
            windows_username=connection.windows_username,
            has_password=bool(connection.password_ciphertext),
            created_at=connection.created_at,
            updated_at=connection.updated_at,
            model=connection,
        )

    @strawberry.field
    async def owner(self, info: Info[Context, None]) -> UserType | None:
        user = await info.context.loaders.users.load(self.model.owner_id)
        return UserType.from_model(user) if user else None

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        environment = await info.context.loaders.environments.load(self.model.environment_id)
        return EnvironmentType.from_model(environment) if environment else None

    @strawberry.field(description="The target machine, for a direct connection to a machine.")
    async def machine(self, info: Info[Context, None]) -> MachineType | None:
        if self.model.machine_id is None:
            return None
        machine = await info.context.loaders.machines.load(self.model.machine_id)
        return MachineType.from_model(machine, info.context) if machine else None

    @strawberry.field(description="The target group, for a direct connection to a group.")
    async def group(self, info: Info[Context, None]) -> MachineGroupType | None:
        if self.model.group_id is None:
            return None
        group = await info.context.loaders.groups.load(self.model.group_id)
        return MachineGroupType.from_model(group) if group else None

    @strawberry.field(description="The legacy gateway, for a gateway connection (R22).")
    async def gateway(self, info: Info[Context, None]) -> GatewayType | None:
        if self.model.gateway_id is None:
            return None
        gateway = await info.context.loaders.gateways.load(self.model.gateway_id)
        return GatewayType.from_model(gateway, []) if gateway else None


@strawberry.type(name="Gateway", description="A legacy on-premises gateway (R22).")
class GatewayType:
    id: strawberry.ID
    name: str
    created_at: datetime
    connections: list[ConnectionType] = strawberry.field(
        description="Gateway connections still using it that the caller can see (their own; "
        "all for environment admins). Switch each with switchConnectionToDirect."
    )
    environment_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, gateway: Gateway, using: list[Connection]) -> GatewayType:
        return cls(
            id=strawberry.ID(gateway.id),
            name=gateway.name,
            created_at=gateway.created_at,
            connections=[ConnectionType.from_model(c) for c in using],
            environment_id=gateway.environment_id,
        )

    @strawberry.field
    async def environment(self, info: Info[Context, None]) -> EnvironmentType | None:
        environment = await info.context.loaders.environments.load(self.environment_id)
        return EnvironmentType.from_model(environment) if environment else None


@strawberry.type
class ConnectionEdge:
    cursor: str
    node: ConnectionType


@strawberry.type
class ConnectionConnection:
    edges: list[ConnectionEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field
    def nodes(self) -> list[ConnectionType]:
        return [edge.node for edge in self.edges]


@strawberry.input
class ConnectionFilterInput:
    environment_id: strawberry.ID | None = None
    machine_id: strawberry.ID | None = None
    group_id: strawberry.ID | None = None
    gateway_id: strawberry.ID | None = None
    connectivity: Connectivity | None = None


@strawberry.input
class CreateConnectionInput:
    name: str
    machine_id: strawberry.ID | None = strawberry.field(
        default=None, description="Target a machine, or give groupId."
    )
    group_id: strawberry.ID | None = None
    windows_username: str
    password: str = strawberry.field(description="Write-only: encrypted at rest (R20).")
    connectivity: Connectivity = strawberry.field(
        default=Connectivity.DIRECT, description="GATEWAY is refused (R22)."
    )
    gateway_id: strawberry.ID | None = strawberry.field(
        default=None, description="Refused (R22): gateways are no longer supported."
    )
    idempotency_key: str | None = idempotency_key_field()


@strawberry.input
class UpdateConnectionInput:
    id: strawberry.ID
    name: str | None = None
    windows_username: str | None = None
    password: str | None = strawberry.field(default=None, description="Write-only (R20).")
    machine_id: strawberry.ID | None = strawberry.field(
        default=None, description="A new target (run access needed, R21); or give groupId."
    )
    group_id: strawberry.ID | None = None


@strawberry.input
class SwitchConnectionToDirectInput:
    connection_id: strawberry.ID
    machine_id: strawberry.ID | None = None
    group_id: strawberry.ID | None = None
    windows_username: str
    password: str = strawberry.field(description="Write-only (R20).")


@strawberry.type
class ConnectionPayload:
    connection: ConnectionType


@strawberry.type
class DeletedConnectionPayload:
    id: strawberry.ID
    cancelled_run_ids: list[strawberry.ID] = strawberry.field(
        description="Runs that had not started yet and ended CANCELLED."
    )


@strawberry.type
class SwitchedConnectionPayload:
    connection: ConnectionType
    moved_run_count: int = strawberry.field(
        description="Queued runs moved to the new target's queue."
    )


CreateConnectionResult = Annotated[
    ConnectionPayload | UserErrors, strawberry.union("CreateConnectionResult")
]
UpdateConnectionResult = Annotated[
    ConnectionPayload | UserErrors, strawberry.union("UpdateConnectionResult")
]
DeleteConnectionResult = Annotated[
    DeletedConnectionPayload | UserErrors, strawberry.union("DeleteConnectionResult")
]
SwitchConnectionToDirectResult = Annotated[
    SwitchedConnectionPayload | UserErrors, strawberry.union("SwitchConnectionToDirectResult")
]


def _target(machine_id: str | None, group_id: str | None) -> connections.Target | None:
    if machine_id is None and group_id is None:
        return None
    return connections.Target(machine_id=machine_id, group_id=group_id)


@strawberry.type
class ConnectionQuery:
    @strawberry.field(description="One connection the caller owns or administers, or null.")
    async def connection(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> ConnectionType | None:
        ctx = info.context
        found = await lookup(lambda: connections.get_connection(ctx.domain, ctx.principal, id))
        return ConnectionType.from_model(found) if found else None

    @strawberry.field(
        description="The caller's connections, and all of the environments they administer."
    )
    async def connections(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        filter: ConnectionFilterInput | None = None,
    ) -> ConnectionConnection:
        ctx = info.context
        f = filter or ConnectionFilterInput()
        flt = connections.ConnectionFilter(
            environment_id=f.environment_id,
            machine_id=f.machine_id,
            group_id=f.group_id,
            gateway_id=f.gateway_id,
            connectivity=f.connectivity,
        )
        page = await read(
            lambda: connections.list_connections(
                ctx.domain, ctx.principal, flt, first=first, after=after
            )
        )
        return ConnectionConnection(
            edges=[
                ConnectionEdge(cursor=cursor, node=ConnectionType.from_model(c))
                for c, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            total_count=page.total_count,
        )

    @strawberry.field(description="R22: an environment's legacy gateways and who still uses them.")
    async def gateways(
        self, info: Info[Context, None], environment_id: strawberry.ID
    ) -> list[GatewayType]:
        ctx = info.context
        usage = await read(
            lambda: connections.list_gateways(ctx.domain, ctx.principal, environment_id)
        )
        return [GatewayType.from_model(u.gateway, u.connections) for u in usage]


@strawberry.type
class ConnectionMutation:
    @strawberry.mutation(
        description="Create a direct connection (R20, R21); gateway ones are refused (R22)."
    )
    @typed_errors
    async def create_connection(
        self, info: Info[Context, None], input: CreateConnectionInput
    ) -> CreateConnectionResult:
        ctx = info.context
        connection = await connections.create_connection(
            ctx.domain,
            ctx.principal,
            name=input.name,
            target=connections.Target(input.machine_id, input.group_id),
            windows_username=input.windows_username,
            password=input.password,
            connectivity=input.connectivity,
            gateway_id=input.gateway_id,
            idempotency_key=input.idempotency_key,
        )
        return ConnectionPayload(connection=ConnectionType.from_model(connection))

    @strawberry.mutation(description="The owner edits name, credentials or target (R21).")
    @typed_errors
    async def update_connection(
        self, info: Info[Context, None], input: UpdateConnectionInput
    ) -> UpdateConnectionResult:
        ctx = info.context
        connection = await connections.update_connection(
            ctx.domain,
            ctx.principal,
            input.id,
            name=input.name,
            windows_username=input.windows_username,
            password=input.password,
            target=_target(input.machine_id, input.group_id),
        )
        return ConnectionPayload(connection=ConnectionType.from_model(connection))

    @strawberry.mutation(
        description="Delete a connection (owner or environment admin); its runs not yet "
        "started end CANCELLED."
    )
    @typed_errors
    async def delete_connection(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteConnectionResult:
        ctx = info.context
        removed = await connections.delete_connection(ctx.domain, ctx.principal, id)
        return DeletedConnectionPayload(
            id=strawberry.ID(removed.connection.id),
            cancelled_run_ids=[strawberry.ID(r.id) for r in removed.cancelled_runs],
        )

    @strawberry.mutation(
        description="R22: make a gateway connection direct (target and credentials given again)."
    )
    @typed_errors
    async def switch_connection_to_direct(
        self, info: Info[Context, None], input: SwitchConnectionToDirectInput
    ) -> SwitchConnectionToDirectResult:
        ctx = info.context
        switched = await connections.switch_connection_to_direct(
            ctx.domain,
            ctx.principal,
            input.connection_id,
            target=connections.Target(input.machine_id, input.group_id),
            windows_username=input.windows_username,
            password=input.password,
        )
        return SwitchedConnectionPayload(
            connection=ConnectionType.from_model(switched.connection),
            moved_run_count=switched.moved_runs,
        )
