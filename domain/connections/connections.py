"""Desktop-flow connections (R20, R21), legacy gateways (R22) and what removing a target does (R6).

A connection targets one machine or one group and holds the Windows credentials its runs sign in
with. Its environment is its target's. Its password is write-only (R20): sealed by
domain/connections/credentials.py on the way in, never returned; only :func:`credentials_for_run` opens it, for
the assignment sent to the machine runtime.

Visibility: a connection is seen by its owner and by admins of its environment; to anyone else it
does not exist (domain/connections/visibility.py, the one rule every use case here and triggering
a run apply). Editing is the owner's; deleting is the owner's or an environment admin's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, func, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import journal
from domain.bus.events import EventBus, QueueChanged, RunChanged, emit
from domain.connections.credentials import password as valid_password
from domain.connections.credentials import vault_for
from domain.connections.visibility import connections_visible_to, visible_connection
from domain.context import DomainContext
from domain.fleet.access import authorize_group, authorize_machine
from domain.fleet.departures import remove_connections_for
from domain.identity.authorization import (
    admin_environment_ids,
    require_user,
    visible_environment,
)
from domain.kernel import validation
from domain.kernel.errors import (
    Conflict,
    ErrorCode,
    NotFound,
    PermissionDenied,
    RuleViolation,
    ValidationFailed,
)
from domain.kernel.permissions import Action
from domain.kernel.principals import Principal, UserPrincipal
from domain.kernel.settings import Settings
from domain.store import idempotency
from domain.store.models import (
    Connection,
    Connectivity,
    FlowRun,
    Gateway,
    Machine,
    RunStatus,
)
from domain.store.pagination import Page, decode_cursor, encode_cursor, page_size

USERNAME_MAX = 256


@dataclass(frozen=True)
class Target:
    """Exactly one of a machine and a group."""

    machine_id: str | None = None
    group_id: str | None = None

    def checked(self, *, field: str = "target") -> Target:
        if (self.machine_id is None) == (self.group_id is None):
            raise ValidationFailed(
                ErrorCode.INVALID_VALUE,
                "a connection targets exactly one machine or one group: give machineId or groupId",
                field=field,
            )
        if self.machine_id is not None:
            return Target(machine_id=validation.ident(self.machine_id, field="machineId"))
        return Target(group_id=validation.ident(str(self.group_id), field="groupId"))


@dataclass(frozen=True)
class ConnectionFilter:
    environment_id: str | None = None
    machine_id: str | None = None
    group_id: str | None = None
    gateway_id: str | None = None
    connectivity: Connectivity | None = None


@dataclass(frozen=True)
class RemovedConnection:
    connection: Connection
    cancelled_runs: list[FlowRun] = field(default_factory=list)


@dataclass(frozen=True)
class GatewayUsage:
    """R22: a legacy gateway and the connections (visible to the caller) still using it."""

    gateway: Gateway
    connections: list[Connection]


@dataclass(frozen=True)
class SwitchedConnection:
    connection: Connection
    moved_runs: int


def _username(value: str) -> str:
    return validation.name(value, field="windowsUsername", max_length=USERNAME_MAX)


def _refuse_gateway(connectivity: Connectivity, gateway_id: str | None) -> None:
    if connectivity is Connectivity.GATEWAY or gateway_id is not None:
        raise RuleViolation(
            ErrorCode.GATEWAY_NOT_SUPPORTED,
            "gateways are no longer supported: new connections are direct (target a machine or "
            "a group); existing gateway connections can be switched with switchConnectionToDirect",
            rule="R22",
        )


async def _authorize_target(session: AsyncSession, user: UserPrincipal, target: Target) -> str:
    """R21: run access to the target (R12/R13). Returns the target's environment."""
    if target.machine_id is not None:
        machine = await authorize_machine(session, user, target.machine_id, Action.RUN)
        return machine.environment_id
    group = await authorize_group(session, user, str(target.group_id), Action.RUN)
    return group.environment_id


def _queue_event(environment_id: str, target: Target) -> QueueChanged:
    return QueueChanged(environment_id, machine_id=target.machine_id, group_id=target.group_id)


async def _retarget_queued_runs(
    session: AsyncSession,
    bus: EventBus,
    connection: Connection,
    old: Target,
    *,
    run_as: str,
) -> int:
    """Queued runs follow their connection to its new target queue and user (R22, edits).

    They keep their queued time and rank, so they keep their place relative to each other.
    """
    runs = list(
        (
            await session.exec(
                select(FlowRun).where(
                    FlowRun.connection_id == connection.id, FlowRun.status == RunStatus.QUEUED
                )
            )
        ).all()
    )
    for run in runs:
        run.target_machine_id = connection.machine_id
        run.target_group_id = connection.group_id
        run.run_as = run_as
        session.add(run)
        emit(bus, session, RunChanged(run.id, run.environment_id))
    if runs:
        new = Target(connection.machine_id, connection.group_id)
        if old != new and (old.machine_id or old.group_id):
            emit(bus, session, _queue_event(connection.environment_id, old))
        emit(bus, session, _queue_event(connection.environment_id, new))
    return len(runs)


async def create_connection(
    ctx: DomainContext,
    principal: Principal,
    *,
    name: str,
    target: Target,
    windows_username: str,
    password: str,
    connectivity: Connectivity = Connectivity.DIRECT,
    gateway_id: str | None = None,
    idempotency_key: str | None = None,
) -> Connection:
    """R20, R21. R46: with ``idempotency_key``, the same key from the same caller within a day
    answers the connection created first and creates nothing; the password is compared by its
    keyed fingerprint (``Vault.fingerprint``), never stored in the clear or as a plain hash."""
    user = require_user(principal)
    _refuse_gateway(connectivity, gateway_id)  # R22, before anything else
    name = validation.name(name)
    target = target.checked()
    windows_username = _username(windows_username)
    password = valid_password(password)
    now = ctx.clock.now()
    vault = vault_for(ctx.settings)
    request = idempotency.request(
        user.user_id,
        "createConnection",
        idempotency_key,
        {
            "name": name,
            "machineId": target.machine_id,
            "groupId": target.group_id,
            "windowsUsername": windows_username,
            "password": vault.fingerprint(password) if idempotency_key is not None else None,
        },
    )

    async def create() -> Connection:
        async with ctx.db.write() as session:
            environment_id = await _authorize_target(session, user, target)  # R21
            connection = Connection(
                environment_id=environment_id,
                owner_id=user.user_id,
                name=name,
                connectivity=Connectivity.DIRECT,
                machine_id=target.machine_id,
                group_id=target.group_id,
                windows_username=windows_username,
                password_ciphertext=vault.seal(password),  # R20
                created_at=now,
                updated_at=now,
            )
            await idempotency.remember(session, request, connection.id, now)
            session.add(connection)
            journal.on_connection(
                ctx, session, user, journal.AuditAction.CONNECTION_CREATED, connection
            )
        return connection

    async def replay(earlier: idempotency.Earlier) -> Connection:
        async with ctx.db.read() as session:
            return await visible_connection(session, user, earlier.result_id)

    return await idempotency.once(ctx.db, request, now, create=create, replay=replay)


async def update_connection(
    ctx: DomainContext,
    principal: Principal,
    connection_id: str,
    *,
    name: str | None = None,
    windows_username: str | None = None,
    password: str | None = None,
    target: Target | None = None,
) -> Connection:
    """The owner edits name, credentials or target; a new target needs run access again (R21) and
    must be in the connection's environment. Its queued runs follow it to the new target."""
    user = require_user(principal)
    connection_id = validation.ident(connection_id, field="id")
    if name is not None:
        name = validation.name(name)
    if windows_username is not None:
        windows_username = _username(windows_username)
    if password is not None:
        password = valid_password(password)
    if target is not None:
        target = target.checked()
    async with ctx.db.write() as session:
        connection = await visible_connection(session, user, connection_id)
        if connection.owner_id != user.user_id:  # an environment admin sees it, may not edit it
            raise PermissionDenied(
                ErrorCode.PERMISSION_DENIED,
                f"only the owner of connection {connection.name!r} can edit it",
            )
        old = Target(connection.machine_id, connection.group_id)
        if target is not None and target != old:
            if connection.connectivity is Connectivity.GATEWAY:
                raise RuleViolation(
                    ErrorCode.GATEWAY_NOT_SUPPORTED,
                    "a gateway connection gets a new target only by switching it to direct "
                    "(switchConnectionToDirect, credentials given again)",
                    rule="R22",
                )
            await _check_target_environment(session, user, target, connection.environment_id)
            connection.machine_id = target.machine_id
            connection.group_id = target.group_id
        if name is not None:
            connection.name = name
        if windows_username is not None:
            connection.windows_username = windows_username
        if password is not None:
            connection.password_ciphertext = vault_for(ctx.settings).seal(password)
        connection.updated_at = ctx.clock.now()
        session.add(connection)
        journal.on_connection(
            ctx, session, user, journal.AuditAction.CONNECTION_UPDATED, connection
        )
        if (target is not None and target != old) or windows_username is not None:
            await _retarget_queued_runs(
                session, ctx.events, connection, old, run_as=connection.windows_username
            )
    return connection


async def _check_target_environment(
    session: AsyncSession, user: UserPrincipal, target: Target, environment_id: str
) -> None:
    target_environment = await _authorize_target(session, user, target)  # R21
    if target_environment != environment_id:
        raise Conflict(
            ErrorCode.CROSS_ENVIRONMENT,
            "the new target is in another environment: a connection stays in its environment",
        )


async def delete_connection(
    ctx: DomainContext, principal: Principal, connection_id: str
) -> RemovedConnection:
    """The owner or an environment admin deletes it; its runs not yet started end CANCELLED."""
    user = require_user(principal)
    connection_id = validation.ident(connection_id, field="id")
    async with ctx.db.write() as session:
        connection = await visible_connection(session, user, connection_id)
        removed = await remove_connections_for(
            session,
            connection_ids=[connection.id],
            reason=f"connection {connection.name!r} was deleted",
            now=ctx.clock.now(),
            events=ctx.events,
        )
        journal.on_connection(
            ctx, session, user, journal.AuditAction.CONNECTION_DELETED, connection
        )
    return RemovedConnection(connection=connection, cancelled_runs=removed.cancelled_runs)


async def get_connection(
    ctx: DomainContext, principal: Principal, connection_id: str
) -> Connection:
    user = require_user(principal)
    connection_id = validation.ident(connection_id, field="id")
    async with ctx.db.read() as session:
        connection = await visible_connection(session, user, connection_id)
    return connection


def _filtered(flt: ConnectionFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for attr, column in (
        ("environment_id", Connection.environment_id),
        ("machine_id", Connection.machine_id),
        ("group_id", Connection.group_id),
        ("gateway_id", Connection.gateway_id),
    ):
        value = getattr(flt, attr)
        if value is not None:
            clauses.append(col(column) == validation.ident(value, field=attr))
    if flt.connectivity is not None:
        clauses.append(col(Connection.connectivity) == flt.connectivity)
    return clauses


async def list_connections(
    ctx: DomainContext,
    principal: Principal,
    flt: ConnectionFilter,
    *,
    first: int,
    after: str | None = None,
) -> Page[Connection]:
    """The caller's connections, and every connection of the environments they administer."""
    user = require_user(principal)
    first = page_size(first, ctx.settings.max_page_size)
    key = decode_cursor(after, 2) if after else None
    clauses = _filtered(flt)
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, user)
        where = and_(connections_visible_to(user, admin_of), *clauses)
        total = (
            await session.exec(select(func.count()).select_from(Connection).where(where))
        ).one()
        stmt = select(Connection).where(where)
        if key is not None:
            stmt = stmt.where(tuple_(col(Connection.name), col(Connection.id)) > tuple_(*key))
        stmt = stmt.order_by(col(Connection.name), col(Connection.id)).limit(first + 1)
        rows = list((await session.exec(stmt)).all())
    items = rows[:first]
    return Page(
        items=items,
        cursors=[encode_cursor(c.name, c.id) for c in items],
        has_next_page=len(rows) > first,
        total_count=total,
    )


async def connections_by_ids(
    ctx: DomainContext, viewer: UserPrincipal | None, ids: list[str]
) -> list[Connection | None]:
    """A run's connection, for the API's loader: ``None`` where ``viewer`` may not see it (R38),
    as for ``connection(id)``; a machine key (``viewer`` None) sees none."""
    if viewer is None:
        return [None for _ in ids]
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, viewer)
        rows = await session.exec(
            select(Connection).where(
                col(Connection.id).in_(ids), connections_visible_to(viewer, admin_of)
            )
        )
        found = {c.id: c for c in rows.all()}
    return [found.get(i) for i in ids]


async def machines_by_ids(ctx: DomainContext, ids: list[str]) -> list[Machine | None]:
    """A connection's target machine, for the API's loader."""
    async with ctx.db.read() as session:
        rows = await session.exec(select(Machine).where(col(Machine.id).in_(ids)))
        found = {m.id: m for m in rows.all()}
    return [found.get(i) for i in ids]


async def gateways_by_ids(ctx: DomainContext, ids: list[str]) -> list[Gateway | None]:
    async with ctx.db.read() as session:
        rows = await session.exec(select(Gateway).where(col(Gateway.id).in_(ids)))
        found = {g.id: g for g in rows.all()}
    return [found.get(i) for i in ids]


def credentials_for_run(
    connectivity: Connectivity, windows_username: str, password_ciphertext: str, settings: Settings
) -> tuple[str, str] | None:
    """The Windows user name and password a run signs in with, for its assignment payload, from
    its connection's columns; None for a gateway connection (R22), whose runs cannot sign in.

    The only place a password is opened. Never log the result.
    """
    if connectivity is not Connectivity.DIRECT:
        return None
    return windows_username, vault_for(settings).reveal(password_ciphertext)


# --- Legacy gateways (R22) ---------------------------------------------------------------------


async def list_gateways(
    ctx: DomainContext, principal: Principal, environment_id: str
) -> list[GatewayUsage]:
    """R22: the environment's gateways by name, each with the gateway connections still using it.

    Anyone with a role in the environment sees its gateways; each lists the caller's own gateway
    connections, or all of them for an environment admin.
    """
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    async with ctx.db.read() as session:
        await visible_environment(session, user, environment_id)
        admin_of = await admin_environment_ids(session, user)
        gateways = list(
            (
                await session.exec(
                    select(Gateway)
                    .where(Gateway.environment_id == environment_id)
                    .order_by(col(Gateway.name), col(Gateway.id))
                )
            ).all()
        )
        stmt = select(Connection).where(
            col(Connection.gateway_id).in_([g.id for g in gateways]),
            col(Connection.connectivity) == Connectivity.GATEWAY,
            connections_visible_to(user, admin_of),
        )
        connections = list(
            (await session.exec(stmt.order_by(col(Connection.name), col(Connection.id)))).all()
        )
    by_gateway: dict[str, list[Connection]] = {g.id: [] for g in gateways}
    for connection in connections:
        by_gateway[str(connection.gateway_id)].append(connection)
    return [GatewayUsage(gateway=g, connections=by_gateway[g.id]) for g in gateways]


async def switch_connection_to_direct(
    ctx: DomainContext,
    principal: Principal,
    connection_id: str,
    *,
    target: Target,
    windows_username: str,
    password: str,
) -> SwitchedConnection:
    """R22: a gateway connection becomes DIRECT to a machine or group of its environment (run
    access needed, R21), with credentials given again; its queued runs move to the new target's
    queue keeping their order. Its owner or an environment admin may switch it."""
    user = require_user(principal)
    connection_id = validation.ident(connection_id, field="connectionId")
    target = target.checked()
    windows_username = _username(windows_username)
    password = valid_password(password)
    async with ctx.db.write() as session:
        connection = await visible_connection(session, user, connection_id)
        if connection.connectivity is not Connectivity.GATEWAY:
            raise Conflict(
                ErrorCode.ALREADY_IN_STATE, f"connection {connection.name!r} is already direct"
            )
        await _check_target_environment(session, user, target, connection.environment_id)
        old = Target(connection.machine_id, connection.group_id)
        connection.connectivity = Connectivity.DIRECT
        connection.gateway_id = None
        connection.machine_id = target.machine_id
        connection.group_id = target.group_id
        connection.windows_username = windows_username
        connection.password_ciphertext = vault_for(ctx.settings).seal(password)
        connection.updated_at = ctx.clock.now()
        session.add(connection)
        switched = journal.AuditAction.CONNECTION_SWITCHED_TO_DIRECT
        journal.on_connection(ctx, session, user, switched, connection)
        moved = await _retarget_queued_runs(
            session, ctx.events, connection, old, run_as=windows_username
        )
    return SwitchedConnection(connection=connection, moved_runs=moved)


async def seed_legacy_gateway(ctx: DomainContext, *, environment_id: str, name: str) -> Gateway:
    """Make a legacy gateway. Nothing in the API creates gateways any more (R22): this exists for
    tests, the demo and data imports, and takes no principal, so never expose it to callers."""
    environment_id = validation.ident(environment_id, field="environmentId")
    name = validation.name(name)
    async with ctx.db.write() as session:
        gateway = Gateway(environment_id=environment_id, name=name, created_at=ctx.clock.now())
        session.add(gateway)
    return gateway


async def seed_legacy_gateway_connection(
    ctx: DomainContext,
    *,
    gateway_id: str,
    owner_id: str,
    name: str,
    windows_username: str,
    password: str | None = None,
) -> Connection:
    """Make a connection that still goes through a legacy gateway (see :func:`seed_legacy_gateway`).

    Without a password it holds none (``hasPassword`` false), as imported connections may.
    """
    gateway_id = validation.ident(gateway_id, field="gatewayId")
    owner_id = validation.ident(owner_id, field="ownerId")
    name = validation.name(name)
    windows_username = _username(windows_username)
    sealed = vault_for(ctx.settings).seal(valid_password(password)) if password is not None else ""
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        gateway = await session.get(Gateway, gateway_id)
        if gateway is None:
            raise NotFound("gateway", gateway_id)
        connection = Connection(
            environment_id=gateway.environment_id,
            owner_id=owner_id,
            name=name,
            connectivity=Connectivity.GATEWAY,
            gateway_id=gateway.id,
            windows_username=windows_username,
            password_ciphertext=sealed,
            created_at=now,
            updated_at=now,
        )
        session.add(connection)
    return connection
