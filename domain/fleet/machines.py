"""The machine registry: registration gates (R1-R5), heartbeats and status (R9), edits, deletion,
moving between environments (R6) and key rotation (R10)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    false,
    func,
    literal,
    or_,
    true,
    tuple_,
    union_all,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from domain.audit import journal
from domain.bus.events import MachineChanged, emit
from domain.context import DomainContext
from domain.fleet.access import authorize_machine, authorize_registration, machine_access_levels
from domain.fleet.departures import remove_connections_for, withdraw_group_assignments
from domain.identity.authorization import admin_environment_ids, require_machine, require_user
from domain.identity.secrets import MACHINE_KEY_PREFIX, digest, new_secret, same_digest
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, NotFound, RuleViolation
from domain.kernel.permissions import AccessLevel, Action
from domain.kernel.principals import Principal, UserPrincipal
from domain.kernel.text_search import contains_pattern
from domain.kernel.vault import vault_for
from domain.kernel.versions import MIN_FLOW_EXTENSIONS, MIN_MACHINE_RUNTIME, Version, below
from domain.store import idempotency
from domain.store.models import (
    Environment,
    EnvironmentKind,
    FlowRun,
    Machine,
    MachineStatus,
    RunStatus,
    Share,
)
from domain.store.pagination import Page, decode_cursor, encode_cursor, page_size

_HOME_EDITION = re.compile(r"\bwindows\s*1[01]\b.*\bhome\b", re.IGNORECASE)


@dataclass(frozen=True)
class RegisteredMachine:
    machine: Machine
    machine_key: str  # shown once (R5)


@dataclass(frozen=True)
class MachineFilter:
    environment_id: str | None = None
    group_id: str | None = None
    status: MachineStatus | None = None
    maintenance: bool | None = None
    text: str | None = None
    runtime_outdated: bool | None = None  # R41: below its environment's minimum, or not


class HeartbeatFacts(Protocol):
    """What R9 reads of a machine: a model, a page's record, or a row of those columns."""

    @property
    def last_heartbeat_at(self) -> datetime | None: ...


class KeyFacts(Protocol):
    """What R10 reads of a machine (see :class:`HeartbeatFacts`)."""

    @property
    def key_expires_at(self) -> datetime: ...
    @property
    def key_rotation_pending(self) -> bool: ...


def status_of(machine: HeartbeatFacts, now: datetime, timeout_seconds: float) -> MachineStatus:
    """R9: connected while heartbeats arrive, disconnected after the configured silence."""
    seen = machine.last_heartbeat_at
    if seen is not None and now - seen <= timedelta(seconds=timeout_seconds):
        return MachineStatus.CONNECTED
    return MachineStatus.DISCONNECTED


def key_action_required(machine: KeyFacts, now: datetime) -> bool:
    """R10: a rotation is pending or the key has expired."""
    return machine.key_rotation_pending or machine.key_expires_at <= now


def check_environment_accepts_machines(environment: Environment) -> None:
    if environment.kind is EnvironmentKind.TEAMS:
        raise RuleViolation(
            ErrorCode.TEAMS_ENVIRONMENT,
            f"machines cannot be registered in Teams environment {environment.name!r}",
            rule="R1",
        )
    if Version.parse(environment.flow_extensions_version) < Version.parse(MIN_FLOW_EXTENSIONS):
        raise RuleViolation(
            ErrorCode.FLOW_EXTENSIONS_TOO_OLD,
            f"environment {environment.name!r} has flow extensions "
            f"{environment.flow_extensions_version}; machine management needs "
            f"{MIN_FLOW_EXTENSIONS} or later",
            rule="R2",
        )


def check_runtime(runtime_version: Version, os_edition: str) -> None:
    if runtime_version < Version.parse(MIN_MACHINE_RUNTIME):
        raise RuleViolation(
            ErrorCode.RUNTIME_TOO_OLD,
            f"machine runtime {runtime_version} is too old: direct connectivity needs "
            f"{MIN_MACHINE_RUNTIME} or later",
            rule="R2",
        )
    if _HOME_EDITION.search(os_edition):
        raise RuleViolation(
            ErrorCode.HOME_EDITION,
            f"{os_edition!r} is a Home edition: Windows 10 Home and Windows 11 Home cannot be registered",
            rule="R3",
        )


async def _name_taken(
    session: AsyncSession, environment_id: str, name: str, *, other_than: str | None = None
) -> bool:
    stmt = select(Machine.id).where(Machine.environment_id == environment_id, Machine.name == name)
    if other_than is not None:
        stmt = stmt.where(Machine.id != other_than)
    return (await session.exec(stmt)).first() is not None


def _name_taken_error(name: str) -> Conflict:
    return Conflict(
        ErrorCode.NAME_TAKEN, f"a machine named {name!r} already exists in this environment"
    )


async def register_machine(
    ctx: DomainContext,
    principal: Principal,
    *,
    environment_id: str,
    name: str,
    runtime_version: str,
    os_edition: str,
    description: str = "",
    idempotency_key: str | None = None,
) -> RegisteredMachine:
    """R1-R5. R46: with ``idempotency_key``, the same key from the same caller within a day
    answers the machine registered first, with its key, and registers nothing. That key is kept
    for the day sealed with the installation's secret key (as connection passwords are): a
    client whose first answer was lost gets the key it needs, which nothing else could give it
    again (a key rotation is completed with the old key)."""
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    name = validation.name(name)
    description = validation.text(description)
    os_edition = validation.name(os_edition, field="osEdition")
    version = Version.parse(runtime_version, field="runtimeVersion")
    now = ctx.clock.now()
    request = idempotency.request(
        user.user_id,
        "registerMachine",
        idempotency_key,
        {
            "environmentId": environment_id,
            "name": name,
            "runtimeVersion": str(version),
            "osEdition": os_edition,
            "description": description,
        },
    )

    async def create() -> RegisteredMachine:
        async with ctx.db.write() as session:
            environment = await authorize_registration(session, user, environment_id)
            check_environment_accepts_machines(environment)
            check_runtime(version, os_edition)
            if await _name_taken(session, environment_id, name):
                raise _name_taken_error(name)
            key = new_secret(MACHINE_KEY_PREFIX)
            machine = Machine(
                environment_id=environment_id,
                name=name,
                description=description,
                owner_id=user.user_id,
                registered_by_id=user.user_id,
                runtime_version=str(version),
                os_edition=os_edition,
                key_hash=digest(key),
                key_expires_at=now + timedelta(days=ctx.settings.machine_key_lifetime_days),
                created_at=now,
            )
            sealed = vault_for(ctx.settings).seal(key) if request is not None else None
            await idempotency.remember(session, request, machine.id, now, secret=sealed)
            session.add(machine)
            journal.on_machine(ctx, session, user, journal.AuditAction.MACHINE_REGISTERED, machine)
            emit(ctx.events, session, MachineChanged(machine.id, environment_id))
        return RegisteredMachine(machine=machine, machine_key=key)

    async def replay(earlier: idempotency.Earlier) -> RegisteredMachine:
        async with ctx.db.read() as session:
            machine = await authorize_machine(session, user, earlier.result_id, Action.RUN)
        key = vault_for(ctx.settings).reveal(earlier.secret or "")
        if not same_digest(machine.key_hash, digest(key)):
            # Rotated since (R10), which only the runtime holding that key could complete: the
            # first answer did arrive, and its key works no more.
            raise Conflict(
                ErrorCode.KEY_EXPIRED,
                f"machine {machine.name!r} was registered with this idempotencyKey, and the key "
                "shown then has been replaced since",
            )
        return RegisteredMachine(machine=machine, machine_key=key)

    return await idempotency.once(ctx.db, request, now, create=create, replay=replay)


async def get_machine(ctx: DomainContext, principal: Principal, machine_id: str) -> Machine:
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="id")
    async with ctx.db.read() as session:
        return await authorize_machine(session, user, machine_id, Action.RUN)


async def get_own_machine(ctx: DomainContext, principal: Principal) -> Machine:
    caller = require_machine(principal)
    async with ctx.db.read() as session:
        machine = await session.get(Machine, caller.machine_id)
    if machine is None:
        raise NotFound("machine", caller.machine_id)
    return machine


class PageShape(NamedTuple):
    """Which clauses a page of machines has; their values are bound per call (PageQuery)."""

    sees: str  # "all" (an installation admin), "administers" (some environments), "own"
    environment: bool
    group: bool
    maintenance: bool | None
    status: MachineStatus | None
    text: bool
    after: bool
    outdated: bool | None = None  # R41


@cache  # a few hundred shapes at most
def _clauses(shape: PageShape) -> tuple[ColumnElement[bool], ColumnElement[bool] | None]:
    """The shape's filter (visible and matching: what the total counts) and keyset cursor."""
    clauses = [_visible(shape.sees)]
    if shape.environment:
        clauses.append(col(Machine.environment_id) == bindparam("environment_id"))
    if shape.group:
        clauses.append(col(Machine.group_id) == bindparam("group_id"))
    if shape.maintenance is not None:
        # R18/R19: effective maintenance (the group's counts, a key action clears it).
        from domain.fleet.maintenance import in_maintenance_clause  # it builds on this module

        on = in_maintenance_clause(bindparam("now"))
        clauses.append(on if shape.maintenance else ~on)
    if shape.status is not None:
        fresh = col(Machine.last_heartbeat_at) >= bindparam("fresh_since")
        clauses.append(
            fresh
            if shape.status is MachineStatus.CONNECTED
            else or_(col(Machine.last_heartbeat_at).is_(None), ~fresh)
        )
    if shape.outdated is not None:
        listed = col(Machine.id).in_(bindparam("outdated_ids", expanding=True))
        clauses.append(listed if shape.outdated else ~listed)
    if shape.text:
        needle: BindParameter[str] = bindparam("needle")
        clauses.append(
            or_(
                col(Machine.name).ilike(needle, escape="\\"),
                col(Machine.description).ilike(needle, escape="\\"),
            )
        )
    after = tuple_(col(Machine.name), col(Machine.id)) > tuple_(
        bindparam("after_name"), bindparam("after_id")
    )
    return and_(*clauses), after if shape.after else None


@cache
def _total_of(shape: PageShape) -> SelectOfScalar[int]:
    """The statement counting a shape's matching machines (built once, as its clauses are)."""
    where, _ = _clauses(shape)
    return select(func.count()).select_from(Machine).where(where)


def _visible(sees: str) -> ColumnElement[bool]:
    """R8: what the caller (``viewer``) may see: everything, or in the environments it
    administers (``admin_of``), its own machines and those shared with it."""
    if sees == "all":
        return true()
    viewer: BindParameter[str] = bindparam("viewer")
    shared = select(Share.machine_id).where(
        Share.user_id == viewer, col(Share.machine_id).is_not(None)
    )
    return or_(
        col(Machine.environment_id).in_(bindparam("admin_of", expanding=True))
        if sees == "administers"
        else false(),
        col(Machine.owner_id) == viewer,
        col(Machine.id).in_(shared),
    )


def _filter_values(flt: MachineFilter, now: datetime, timeout: float) -> dict[str, Any]:
    values: dict[str, Any] = {
        "environment_id": flt.environment_id,
        "group_id": flt.group_id,
        "now": now,
        "fresh_since": now - timedelta(seconds=timeout),
    }
    if flt.text:
        values["needle"] = contains_pattern(flt.text)
    return values


def _checked_filter(flt: MachineFilter) -> MachineFilter:
    if flt.text is not None:
        flt = MachineFilter(**{**flt.__dict__, "text": validation.text(flt.text, field="text")})
    for field_name in ("environment_id", "group_id"):
        value = getattr(flt, field_name)
        if value is not None:
            validation.ident(value, field=field_name)
    return flt


_Selecting = TypeVar("_Selecting", bound=Select[Any])


@dataclass(frozen=True)
class PageQuery:
    """What a page of machines selects: the rows ``user`` may see that match, after the cursor.

    Every value (the caller, the filter's, the cursor's, the page size) is a bound parameter,
    given in ``params`` when the statement runs; ``shape`` names which clauses there are. So a
    statement built for one shape serves every page of that shape (domain/store/row_reads.py keeps
    them): building and keying a page's statement cost ~0.8 ms, more than SQLite takes to run it.
    """

    where: ColumnElement[bool]  # visible and filtered: what the total counts
    after: ColumnElement[bool] | None  # the keyset cursor
    first: int
    shape: PageShape
    params: dict[str, Any]

    def rows(self, stmt: _Selecting) -> _Selecting:
        """``stmt`` (selecting from machines) narrowed to the page, by name, one extra row."""
        stmt = stmt.where(self.where)
        if self.after is not None:
            stmt = stmt.where(self.after)
        return stmt.order_by(col(Machine.name), col(Machine.id)).limit(
            bindparam("page_limit", type_=Integer)
        )

    def count(self) -> SelectOfScalar[int]:
        """How many machines match, whatever the page: the total."""
        return _total_of(self.shape)

    async def total(self, session: AsyncSession) -> int:
        return int((await session.exec(self.count(), params=self.params)).one())


async def page_query(
    session: AsyncSession,
    ctx: DomainContext,
    user: UserPrincipal,
    flt: MachineFilter,
    *,
    first: int,
    after: str | None,
) -> PageQuery:
    first = page_size(first, ctx.settings.max_page_size)
    flt = _checked_filter(flt)
    key = decode_cursor(after, 2) if after else None
    admin_of = await admin_environment_ids(session, user)
    params = _filter_values(flt, ctx.clock.now(), ctx.settings.heartbeat_timeout_seconds)
    params.update(viewer=user.user_id, admin_of=sorted(admin_of or ()), page_limit=first + 1)
    if key is not None:
        params.update(after_name=key[0], after_id=key[1])
    if flt.runtime_outdated is not None:
        params["outdated_ids"] = await outdated_machine_ids(session, flt.environment_id)
    shape = PageShape(
        sees="all" if admin_of is None else "administers" if admin_of else "own",
        environment=flt.environment_id is not None,
        group=flt.group_id is not None,
        maintenance=flt.maintenance,
        status=flt.status,
        text=bool(flt.text),
        after=key is not None,
        outdated=flt.runtime_outdated,
    )
    where, cursor = _clauses(shape)
    return PageQuery(where=where, after=cursor, first=first, shape=shape, params=params)


def runtime_outdated(runtime_version: str, environment: Environment | None) -> bool:
    """R41: a machine of this runtime version gets no new run in ``environment``."""
    return environment is not None and below(runtime_version, environment.min_runtime_version)


async def outdated_machine_ids(session: AsyncSession, environment_id: str | None) -> list[str]:
    """R41: the machines below their environment's minimum runtime version (of one environment,
    or of all). Dotted versions do not compare as text, so they are compared here: one read of
    the versions of the environments that have a minimum."""
    stmt = (
        select(Machine.id, Machine.runtime_version, Environment.min_runtime_version)
        .join(Environment, col(Environment.id) == col(Machine.environment_id))
        .where(col(Environment.min_runtime_version).is_not(None))
    )
    if environment_id is not None:
        stmt = stmt.where(col(Machine.environment_id) == environment_id)
    rows = (await session.exec(stmt)).all()
    return sorted(machine_id for machine_id, version, minimum in rows if below(version, minimum))


async def page_in(
    session: AsyncSession,
    ctx: DomainContext,
    user: UserPrincipal,
    flt: MachineFilter,
    *,
    first: int,
    after: str | None,
) -> Page[Machine]:
    """R8: one page of the machines ``user`` may see, by name, inside ``session``."""
    query = await page_query(session, ctx, user, flt, first=first, after=after)
    total = await query.total(session)
    rows = list((await session.exec(query.rows(select(Machine)), params=query.params)).all())
    return Page.of(rows, query.first, total, lambda m: encode_cursor(m.name, m.id))


async def list_machines(
    ctx: DomainContext,
    principal: Principal,
    flt: MachineFilter,
    *,
    first: int,
    after: str | None = None,
) -> Page[Machine]:
    """R8: the machines the caller may see, by name."""
    user = require_user(principal)
    async with ctx.db.read() as session:
        return await page_in(session, ctx, user, flt, first=first, after=after)


async def update_machine(
    ctx: DomainContext,
    principal: Principal,
    machine_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Machine:
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="id")
    if name is not None:
        name = validation.name(name)
    if description is not None:
        description = validation.text(description)
    async with ctx.db.write() as session:
        machine = await authorize_machine(session, user, machine_id, Action.EDIT)
        if name is not None and name != machine.name:
            if await _name_taken(session, machine.environment_id, name, other_than=machine.id):
                raise _name_taken_error(name)
            machine.name = name
        if description is not None:
            machine.description = description
        session.add(machine)
        journal.on_machine(ctx, session, user, journal.AuditAction.MACHINE_UPDATED, machine)
        emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
    return machine


async def delete_machine(ctx: DomainContext, principal: Principal, machine_id: str) -> Machine:
    """Only from the portal side: a machine key can never delete its machine (R5)."""
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="id")
    async with ctx.db.write() as session:
        machine = await authorize_machine(session, user, machine_id, Action.DELETE)
        # Its connections go with it; their queued runs end CANCELLED saying why (R20, R28).
        await remove_connections_for(
            session,
            machine_id=machine.id,
            reason=f"machine {machine.name!r} was deleted",
            now=ctx.clock.now(),
            events=ctx.events,
        )
        if machine.group_id is not None:  # its group's assignments go back to the group's queue
            await withdraw_group_assignments(
                ctx,
                session,
                machine_id=machine.id,
                group_id=machine.group_id,
                environment_id=machine.environment_id,
            )
        await session.delete(machine)
        journal.on_machine(ctx, session, user, journal.AuditAction.MACHINE_DELETED, machine)
        emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
    ctx.credentials.forget_machine(machine.id)
    return machine


async def change_machine_environment(
    ctx: DomainContext, principal: Principal, machine_id: str, environment_id: str
) -> Machine:
    """R6: one environment at a time. Moving removes the machine's connections (their runs not
    yet started end CANCELLED / CONNECTION_REMOVED; running runs finish) and takes it out of its
    group (the group's runs dispatched to it and not yet started go back to the group's queue)."""
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="id")
    environment_id = validation.ident(environment_id, field="environmentId")
    async with ctx.db.write() as session:
        machine = await authorize_machine(session, user, machine_id, Action.EDIT)
        if machine.environment_id == environment_id:
            raise Conflict(
                ErrorCode.SAME_ENVIRONMENT, "the machine already runs in that environment"
            )
        target = await authorize_registration(session, user, environment_id)
        check_environment_accepts_machines(target)
        if await _name_taken(session, environment_id, machine.name):
            raise _name_taken_error(machine.name)
        previous_environment_id = machine.environment_id
        await remove_connections_for(
            session,
            machine_id=machine.id,
            reason=f"machine {machine.name!r} moved to environment {target.name!r}",
            now=ctx.clock.now(),
            events=ctx.events,
        )
        if machine.group_id is not None:  # never run the old group's work in the new environment
            await withdraw_group_assignments(
                ctx,
                session,
                machine_id=machine.id,
                group_id=machine.group_id,
                environment_id=previous_environment_id,
            )
        machine.environment_id = environment_id
        machine.group_id = None
        # Its unattended bots came from the old environment's pool (R24): they stay there.
        machine.unattended_bots = 0
        session.add(machine)
        moved = f"from environment {previous_environment_id} to {environment_id}"
        journal.on_machine(ctx, session, user, journal.AuditAction.MACHINE_MOVED, machine, moved)
        journal.on_machine(  # both environments' admins see it leave / arrive
            ctx,
            session,
            user,
            journal.AuditAction.MACHINE_MOVED,
            machine,
            moved,
            environment_id=previous_environment_id,
        )
        emit(ctx.events, session, MachineChanged(machine.id, previous_environment_id))
        emit(ctx.events, session, MachineChanged(machine.id, environment_id))
    ctx.credentials.forget_machine(machine.id)
    return machine


async def rotate_machine_key(ctx: DomainContext, principal: Principal, machine_id: str) -> Machine:
    """R10: ask the runtime to take a new key; maintenance is off until it has."""
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="id")
    async with ctx.db.write() as session:
        machine = await authorize_machine(session, user, machine_id, Action.EDIT)
        machine.key_rotation_pending = True
        machine.maintenance = False
        session.add(machine)
        journal.on_machine(ctx, session, user, journal.AuditAction.MACHINE_KEY_ROTATED, machine)
        emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
    return machine


async def complete_key_rotation(ctx: DomainContext, principal: Principal) -> RegisteredMachine:
    """The runtime swaps its key (pending rotation or expired key); the old key stops working."""
    caller = require_machine(principal)
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        machine = await session.get(Machine, caller.machine_id)
        if machine is None:
            raise NotFound("machine", caller.machine_id)
        if not key_action_required(machine, now):  # R10: only a pending rotation or an expired key
            raise Conflict(
                ErrorCode.NO_KEY_ACTION_PENDING,
                "no key rotation is pending and the machine key has not expired",
            )
        key = new_secret(MACHINE_KEY_PREFIX)
        machine.key_hash = digest(key)
        machine.key_rotation_pending = False
        machine.key_expires_at = now + timedelta(days=ctx.settings.machine_key_lifetime_days)
        session.add(machine)
        emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
    ctx.credentials.forget_machine(machine.id)
    return RegisteredMachine(machine=machine, machine_key=key)


@dataclass(frozen=True)
class RunCounts:
    running: int = 0
    queued: int = 0


async def run_counts(ctx: DomainContext, machine_ids: list[str]) -> list[RunCounts]:
    """R8's counts per machine, in one statement for the whole batch."""
    if not machine_ids:
        return []
    async with ctx.db.read() as session:
        return await run_counts_in(session, machine_ids)


async def run_counts_in(session: AsyncSession, machine_ids: list[str]) -> list[RunCounts]:
    """Running = runs dispatched to the machine or running on it; queued = runs waiting in its
    own queue."""
    if not machine_ids:
        return []
    running: Select[str | None, str] = select(
        col(FlowRun.machine_id).label("machine_id"), literal("running").label("kind")
    ).where(
        col(FlowRun.machine_id).in_(machine_ids),
        col(FlowRun.status).in_((RunStatus.DISPATCHED, RunStatus.RUNNING)),
    )
    queued: Select[str | None, str] = select(
        col(FlowRun.target_machine_id).label("machine_id"), literal("queued").label("kind")
    ).where(
        col(FlowRun.target_machine_id).in_(machine_ids), col(FlowRun.status) == RunStatus.QUEUED
    )
    both = union_all(running, queued).subquery()
    rows = await session.exec(
        select(both.c.machine_id, both.c.kind, func.count()).group_by(
            both.c.machine_id, both.c.kind
        )
    )
    counts = {(machine_id, kind): n for machine_id, kind, n in rows.all()}
    return [
        RunCounts(running=counts.get((i, "running"), 0), queued=counts.get((i, "queued"), 0))
        for i in machine_ids
    ]


async def access_levels(
    ctx: DomainContext, user: UserPrincipal | None, machines: list[Machine]
) -> list[AccessLevel | None]:
    if user is None:
        return [None for _ in machines]
    async with ctx.db.read() as session:
        levels = await machine_access_levels(session, user, machines)
    return [levels.get(m.id) for m in machines]
