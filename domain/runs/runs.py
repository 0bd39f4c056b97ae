"""Desktop-flow runs: trigger (R23), the queues and their management (R25), what each queued run
waits for (R29), reads and timings (R28). Dispatching itself is in domain/dispatch/dispatcher.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, insert, or_, tuple_
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.bus.events import MachineChanged, MachineWorkChanged, QueueChanged, RunChanged, emit
from domain.connections.visibility import not_found as connection_not_found
from domain.connections.visibility import sees_connection
from domain.context import DomainContext
from domain.fleet.access import access_level, authorize_group, authorize_machine, check_access
from domain.identity.authorization import admin_environment_ids, require_user, roles_in
from domain.kernel import validation
from domain.kernel.errors import (
    Conflict,
    ErrorCode,
    NotFound,
    PermissionDenied,
    RuleViolation,
    ValidationFailed,
)
from domain.kernel.permissions import Action, Role
from domain.kernel.principals import Principal, UserPrincipal
from domain.kernel.traces import current_traceparent
from domain.runs.candidates import WaitReason
from domain.runs.queue_state import (
    EnvironmentState,
    QueuedRunFacts,
    load_environment_state,
    load_start_estimates,
    queue_key,
)
from domain.runs.start_estimates import Estimate
from domain.runs.trigger_facts import (
    ConnectionFacts,
    FlowFacts,
    TargetFacts,
    TriggerFacts,
    read_trigger_facts,
    trigger_facts,
)
from domain.runs.visibility import (
    flow_not_found,
    runs_visible_to,
    sees_flow,
    sees_run_people,
    visible_run,
)
from domain.store import idempotency
from domain.store.models import (
    PRIORITY_RANK,
    TERMINAL_STATUSES,
    Connectivity,
    FlowRun,
    MachineCommand,
    RunMode,
    RunPriority,
    RunStatus,
)
from domain.store.models.columns import new_id
from domain.store.models.tables import table_of
from domain.store.pagination import Page, cursor_instant, decode_cursor, encode_cursor, page_size
from domain.store.prepared import DriverTransaction, Execute, Prepared, Script
from domain.store.queue_lock import lock_environment_queue
from domain.webhooks import outbox

log = logging.getLogger("deskfleet.runs")

# Error codes a run ends with (R27, R28, R6); the runtime may report its own.
NO_CANDIDATE_MACHINE = "NO_CANDIDATE_MACHINE"
MACHINE_LOST = "MACHINE_LOST"
CANCELLED_BY_USER = "CANCELLED_BY_USER"
TARGET_REMOVED = "TARGET_REMOVED"

CANCEL_RUN_COMMAND = "CANCEL_RUN"


@dataclass(frozen=True)
class RunFilter:
    environment_id: str | None = None
    flow_id: str | None = None
    connection_id: str | None = None
    machine_id: str | None = None  # assigned to it, or queued for it
    group_id: str | None = None
    status: RunStatus | None = None
    triggered_by_id: str | None = None
    queued_after: datetime | None = None  # queued at or after
    queued_before: datetime | None = None  # queued before

    def matches(self, run: FlowRun) -> bool:
        """The conditions of :func:`list_runs`, for one run already read."""
        return (
            self.environment_id in (None, run.environment_id)
            and self.flow_id in (None, run.flow_id)
            and self.connection_id in (None, run.connection_id)
            and (
                self.machine_id is None
                or self.machine_id in (run.machine_id, run.target_machine_id)
            )
            and self.group_id in (None, run.target_group_id)
            and self.status in (None, run.status)
            and self.triggered_by_id in (None, run.triggered_by_id)
            and (self.queued_after is None or run.queued_at >= self.queued_after)
            and (self.queued_before is None or run.queued_at < self.queued_before)
        )


@dataclass(frozen=True)
class QueueEntry:
    run: FlowRun
    position: int  # 1-based, in its own queue (R25)
    wait_reason: WaitReason | None  # None: it is being dispatched now (R29)


@dataclass(frozen=True)
class Timings:
    wait_seconds: float | None  # queued -> started (or now, while waiting)
    run_seconds: float | None  # started -> ended (or now, while running)


def timings(run: FlowRun, now: datetime) -> Timings:
    """R28's durations. A run that never started waited until it ended (or until now)."""
    waited_until = run.started_at or run.ended_at or now
    wait = (waited_until - run.queued_at).total_seconds()
    if run.started_at is None:
        return Timings(wait_seconds=wait, run_seconds=None)
    ran = ((run.ended_at or now) - run.started_at).total_seconds()
    return Timings(wait_seconds=wait, run_seconds=ran)


def run_events(
    ctx: DomainContext,
    session: AsyncSession | DriverTransaction,
    run: QueuedRunFacts,
    *machine_ids: str | None,
) -> None:
    """Tell everyone, after commit, that a run changed: its own view, its queue, and the counts
    of its target machine and of ``machine_ids`` (where it was or is dispatched)."""
    emit(ctx.events, session, RunChanged(run.id, run.environment_id))
    emit(
        ctx.events,
        session,
        QueueChanged(run.environment_id, run.target_machine_id, run.target_group_id),
    )
    machines = {m for m in (run.target_machine_id, *machine_ids) if m is not None}
    for machine_id in sorted(machines):
        emit(ctx.events, session, MachineChanged(machine_id, run.environment_id))
    if isinstance(run, FlowRun) and run.status in TERMINAL_STATUSES:
        outbox.run_finished(session, run, ctx.clock.now())  # R43


# --- authority (visibility: domain/runs/visibility.py) ------------------------------------------------------------------


async def authorize_manage(session: AsyncSession, user: UserPrincipal, run: FlowRun) -> None:
    """Cancel, reprioritise, move, retry (R40): who triggered it, the connection's owner, an environment admin,
    or whoever may edit the machine or group it is queued for (R12 owner / co-owner)."""
    if user.user_id in (run.triggered_by_id, run.connection_owner_id):
        return
    if Role.ENVIRONMENT_ADMIN in await roles_in(session, user, run.environment_id):
        return
    try:
        if run.target_machine_id is not None:
            await authorize_machine(session, user, run.target_machine_id, Action.EDIT)
            return
        if run.target_group_id is not None:
            await authorize_group(session, user, run.target_group_id, Action.EDIT)
            return
    except (NotFound, PermissionDenied):
        pass
    raise PermissionDenied(
        ErrorCode.PERMISSION_DENIED,
        "only who triggered the run, the connection's owner, an owner or co-owner of its machine "
        "or group, or an environment admin can manage it",
    )


# --- trigger (R23) -----------------------------------------------------------------------------


def _target_not_found(connection_id: str) -> NotFound:
    """The connection is visible, its machine or group is not (any more): the answer names only
    the connection the caller gave, never the target's id (R38)."""
    return NotFound(
        "connection",
        connection_id,
        message=f"the machine or group of connection {connection_id} does not exist or is not "
        "visible to you",
    )


def _run_access(user: UserPrincipal, target: TargetFacts, what: str, connection_id: str) -> None:
    """R12/R13: the caller may run flows on the connection's machine or group."""
    roles = _roles(user, target.roles)
    level = access_level(
        target.owner_id,
        user.user_id,
        target.shared,
        environment_admin=Role.ENVIRONMENT_ADMIN in roles,
    )
    if level is None:
        raise _target_not_found(connection_id)
    check_access(roles, level, Action.RUN, what, target.name, target.id)


def _roles(user: UserPrincipal, assigned: frozenset[Role]) -> frozenset[Role]:
    """The caller's roles in an environment (installation admins administer every one)."""
    return frozenset({Role.ENVIRONMENT_ADMIN}) if user.is_admin else assigned


def _check_target(
    user: UserPrincipal, facts: TriggerFacts, connection: ConnectionFacts, mode: RunMode
) -> None:
    """R21/R23: run access to the target, and unattended bots on it for unattended runs."""
    if connection.machine_id is not None:
        machine = facts.machine
        if machine is None:
            raise _target_not_found(connection.id)
        _run_access(user, machine, "machine", connection.id)
        bots, where = machine.has_unattended_bots, f"machine {machine.name!r}"
    elif connection.group_id is not None:
        group = facts.group
        if group is None:
            raise _target_not_found(connection.id)
        _run_access(user, group, "machine group", connection.id)
        bots, where = group.has_unattended_bots, f"group {group.name!r}"
    else:
        raise RuleViolation(
            ErrorCode.GATEWAY_NOT_SUPPORTED,
            "this connection targets no machine or group; switch it to a direct connection",
            rule="R22",
        )
    if mode is RunMode.UNATTENDED and not bots:
        raise RuleViolation(
            ErrorCode.NO_UNATTENDED_BOTS,
            f"unattended runs need unattended bots: {where} has none allocated",
            rule="R23",
        )


def _check_trigger(
    user: UserPrincipal,
    facts: TriggerFacts,
    connection_id: str,
    flow_id: str,
    mode: RunMode,
) -> tuple[ConnectionFacts, FlowFacts]:
    """R21-R23 and who may use the connection and the flow, in the order errors are reported.

    The connection and the flow follow their one visibility rule each: one the caller may not see
    is answered as an id that does not exist. A flow of another environment than the
    connection's is answered so too, whoever asks: the connection's environment holds no such
    flow, and the answer never depends on what exists elsewhere (R38)."""
    connection = facts.connection
    if connection is None or not sees_connection(user, connection.owner_id, connection.roles):
        raise connection_not_found(connection_id)
    flow = facts.flow
    if (
        flow is None
        or flow.environment_id != connection.environment_id
        or not sees_flow(user, flow.owner_id, connection.roles)
    ):
        raise flow_not_found(flow_id)
    if connection.connectivity is Connectivity.GATEWAY:
        raise RuleViolation(
            ErrorCode.GATEWAY_NOT_SUPPORTED,
            f"connection {connection.name!r} goes through a gateway, which is no longer "
            "supported: switch it to a direct connection first",
            rule="R22",
        )
    _check_target(user, facts, connection, mode)
    if mode is RunMode.ATTENDED and not connection.owner_attended_licence:
        raise RuleViolation(
            ErrorCode.NO_ATTENDED_LICENCE,
            "attended runs need the connection owner's attended RPA licence, "
            f"which {connection.owner_name if connection.owner_name is not None else 'its owner'!r} "
            "does not hold",
            rule="R23",
        )
    return connection, flow


_RUN_COLUMNS = tuple(c.key for c in table_of(FlowRun).columns)
_RUN_BY_ID = Prepared(
    core_select(*table_of(FlowRun).columns).where(table_of(FlowRun).c.id == bindparam("id"))
)


def run_of_row(row: dict[str, Any]) -> FlowRun:
    """A run read as a :class:`~domain.store.prepared.Prepared` row (every column of it)."""
    return FlowRun.model_construct(**{key: row[key] for key in _RUN_COLUMNS})


_INSERT_RUN = Prepared(
    insert(table_of(FlowRun)).values({key: bindparam(key) for key in _RUN_COLUMNS})
)
# What trigger_run does not set: every other column's default, written out so that the run is
# built without SQLModel's per-field default look-ups (a fifth of a trigger's time).
_NEW_RUN: dict[str, Any] = {"top_rank": 0, "machine_id": None, "attempt": 0, "dispatched_at": None}
_NEW_RUN |= {"retry_of_id": None, "retry_attempt": 1, "not_before": None}  # R40: a first run
_NEW_RUN |= dict.fromkeys(
    ("started_at", "ended_at", "error_code", "error_message", "reported_runtime_version")
)


async def trigger_run(
    ctx: DomainContext,
    principal: Principal,
    *,
    flow_id: str,
    connection_id: str,
    mode: RunMode,
    priority: RunPriority = RunPriority.NORMAL,
    idempotency_key: str | None = None,
) -> FlowRun:
    """R23: a run queued for the connection's machine or group. One read of every fact the rules
    need and one insert, in one short write transaction (the hot path of dispatching).

    R46: with ``idempotency_key``, the same key from the same caller within a day answers the
    run it queued first (as it is now) and queues nothing (domain/store/idempotency.py)."""
    user = require_user(principal)
    flow_id = validation.ident(flow_id, field="flowId")
    connection_id = validation.ident(connection_id, field="connectionId")
    now = ctx.clock.now()
    request = idempotency.request(
        user.user_id,
        "triggerRun",
        idempotency_key,
        {"flowId": flow_id, "connectionId": connection_id, "mode": mode, "priority": priority},
    )

    alone = False  # nothing of the environment was queued when the run was

    async def create() -> FlowRun:
        nonlocal alone
        script = _trigger(
            user, flow_id, connection_id, mode, priority, now, current_traceparent(), request
        )
        async with ctx.db.write_direct() as transaction:
            run, alone = await transaction.run(script)
            run_events(ctx, transaction, run)  # published once the transaction has committed
        return run

    async def replay(earlier: idempotency.Earlier) -> FlowRun:
        async with ctx.db.read() as session:
            return await visible_run(session, user, earlier.result_id)

    run = await idempotency.once(ctx.db, request, now, create=create, replay=replay)
    if alone and ctx.dispatch_now is not None:
        return await _dispatched_at_once(ctx, ctx.dispatch_now, run)
    return run


async def _dispatched_at_once(
    ctx: DomainContext, dispatch_now: Callable[[str], Awaitable[Collection[str]]], run: FlowRun
) -> FlowRun:
    """R25/R26 at once for a run with nothing queued ahead of it: the dispatcher's claim, in the
    trigger's request. Its next pass would take the run as well, after waking and gathering; at 20
    triggers a second over 2,000 subscribed machines the assignment reached its machine about
    40 ms after the answer that way (`assignment_latency`, docs/performance.md). The answer then
    says where the run went. A claim that fails leaves the run queued, for that next pass."""
    try:
        claimed = await dispatch_now(run.environment_id)
    except Exception:
        log.warning(
            "dispatching run %s at once failed; the next pass takes it", run.id, exc_info=True
        )
        return run
    if run.id not in claimed:
        return run
    return run_of_row((await ctx.db.fetch_direct(_RUN_BY_ID, {"id": run.id}))[0])


def _trigger(
    user: UserPrincipal,
    flow_id: str,
    connection_id: str,
    mode: RunMode,
    priority: RunPriority,
    now: datetime,
    traceparent: str | None,
    request: idempotency.Request | None = None,
) -> Script[tuple[FlowRun, bool]]:
    """R21-R23 on the facts, then the insert (and R46's record, if a key came): one trip to the
    database thread on SQLite. Answers the run, and whether nothing else was queued in its
    environment (read in the same transaction)."""
    facts = trigger_facts((yield read_trigger_facts(user.user_id, connection_id, flow_id)))
    connection, flow = _check_trigger(user, facts, connection_id, flow_id, mode)
    # Every value given and none to validate: the rules above checked them.
    run = FlowRun.model_construct(
        **_NEW_RUN,
        id=new_id(),
        environment_id=connection.environment_id,
        flow_id=flow.id,
        connection_id=connection.id,
        target_machine_id=connection.machine_id,
        target_group_id=connection.group_id,
        run_as=connection.windows_username,
        connection_owner_id=connection.owner_id,
        triggered_by_id=user.user_id,
        mode=mode,
        priority=priority,
        priority_rank=PRIORITY_RANK[priority],
        status=RunStatus.QUEUED,
        queued_at=now,
        created_at=now,
        traceparent=traceparent,
    )
    # The record first: a concurrent request with the key waits on it (PostgreSQL) and then
    # fails before it has written anything else.
    # A loop, not ``yield from``: the driver sends each step's outcome in, which a list refuses.
    for step in idempotency.remember_steps(request, run.id, now):  # noqa: UP028
        yield step
    yield Execute(_INSERT_RUN, run.__dict__, last=True)
    return run, facts.queue_empty


# --- queue management (R25) --------------------------------------------------------------------


async def _queued_run_for_change(
    session: AsyncSession, user: UserPrincipal, run_id: str
) -> FlowRun:
    run = await visible_run(session, user, run_id, for_update=True)
    await authorize_manage(session, user, run)
    if run.status is not RunStatus.QUEUED:
        raise Conflict(
            ErrorCode.RUN_NOT_QUEUED,
            f"the run is {run.status.value}, not queued: it has left the queue",
        )
    return run


async def change_priority(
    ctx: DomainContext, principal: Principal, run_id: str, priority: RunPriority
) -> FlowRun:
    user = require_user(principal)
    run_id = validation.ident(run_id, field="runId")
    async with ctx.db.write() as session:
        run = await _queued_run_for_change(session, user, run_id)
        run.priority = priority
        run.priority_rank = PRIORITY_RANK[priority]
        session.add(run)
        run_events(ctx, session, run)
    return run


async def move_to_top(ctx: DomainContext, principal: Principal, run_id: str) -> FlowRun:
    """R25: the run goes first in its queue; the last one moved is first."""
    user = require_user(principal)
    run_id = validation.ident(run_id, field="runId")
    async with ctx.db.write() as session:
        # The queue lock first, then the row, in the dispatcher's order: the other way round
        # the two can deadlock on PostgreSQL.
        unlocked = await visible_run(session, user, run_id)
        await lock_environment_queue(session, ctx.db, unlocked.environment_id)
        run = await _queued_run_for_change(session, user, run_id)
        highest = await session.exec(
            select(func.coalesce(func.max(FlowRun.top_rank), 0)).where(
                FlowRun.environment_id == run.environment_id, FlowRun.status == RunStatus.QUEUED
            )
        )
        run.top_rank = int(highest.one()) + 1
        session.add(run)
        run_events(ctx, session, run)
    return run


async def cancel_run(ctx: DomainContext, principal: Principal, run_id: str) -> FlowRun:
    """R25/R28: a queued, dispatched or running run ends CANCELLED. A running one's machine is
    told to stop it (a CANCEL_RUN command)."""
    user = require_user(principal)
    run_id = validation.ident(run_id, field="runId")
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        run = await visible_run(session, user, run_id, for_update=True)
        await authorize_manage(session, user, run)
        if run.status in TERMINAL_STATUSES:
            raise Conflict(ErrorCode.RUN_FINISHED, f"the run already ended {run.status.value}")
        if run.status in (RunStatus.DISPATCHED, RunStatus.RUNNING) and run.machine_id:
            session.add(
                MachineCommand(
                    machine_id=run.machine_id,
                    kind=CANCEL_RUN_COMMAND,
                    run_id=run.id,
                    created_at=now,
                )
            )
            emit(ctx.events, session, MachineWorkChanged(run.machine_id))
        run.status = RunStatus.CANCELLED
        run.ended_at = now
        run.error_code = CANCELLED_BY_USER
        run.error_message = "cancelled by a user"
        session.add(run)
        run_events(ctx, session, run, run.machine_id)
    return run


# --- reads -------------------------------------------------------------------------------------


async def get_run(ctx: DomainContext, principal: Principal, run_id: str) -> FlowRun:
    user = require_user(principal)
    run_id = validation.ident(run_id, field="id")
    async with ctx.db.read() as session:
        return await visible_run(session, user, run_id)


def _filtered(flt: RunFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if flt.environment_id is not None:
        clauses.append(col(FlowRun.environment_id) == flt.environment_id)
    if flt.flow_id is not None:
        clauses.append(col(FlowRun.flow_id) == flt.flow_id)
    if flt.connection_id is not None:
        clauses.append(col(FlowRun.connection_id) == flt.connection_id)
    if flt.machine_id is not None:
        clauses.append(
            or_(
                col(FlowRun.machine_id) == flt.machine_id,
                col(FlowRun.target_machine_id) == flt.machine_id,
            )
        )
    if flt.group_id is not None:
        clauses.append(col(FlowRun.target_group_id) == flt.group_id)
    if flt.status is not None:
        clauses.append(col(FlowRun.status) == flt.status)
    if flt.triggered_by_id is not None:
        clauses.append(col(FlowRun.triggered_by_id) == flt.triggered_by_id)
    if flt.queued_after is not None:
        clauses.append(col(FlowRun.queued_at) >= flt.queued_after)
    if flt.queued_before is not None:
        clauses.append(col(FlowRun.queued_at) < flt.queued_before)
    return clauses


def checked(flt: RunFilter) -> RunFilter:
    """The filter's ids well formed and its time range the right way round, or a typed error
    naming the field."""
    for name, field in (
        ("environment_id", "environmentId"),
        ("flow_id", "flowId"),
        ("connection_id", "connectionId"),
        ("machine_id", "machineId"),
        ("group_id", "groupId"),
        ("triggered_by_id", "triggeredById"),
    ):
        value = getattr(flt, name)
        if value is not None:
            validation.ident(value, field=field)
    after, before = flt.queued_after, flt.queued_before
    if after is not None and before is not None and before <= after:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE, "queuedBefore must be after queuedAfter", field="queuedBefore"
        )
    return flt


async def list_runs(
    ctx: DomainContext, principal: Principal, flt: RunFilter, *, first: int, after: str | None
) -> Page[FlowRun]:
    """`flowRuns`: the runs the caller may see, newest first, cursor-paginated."""
    user = require_user(principal)
    first = page_size(first, ctx.settings.max_page_size)
    flt = checked(flt)
    key = decode_cursor(after, 2) if after else None
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, user)
        where = [runs_visible_to(user, admin_of), *_filtered(flt)]
        total = (await session.exec(select(func.count()).select_from(FlowRun).where(*where))).one()
        stmt = select(FlowRun).where(*where)
        if key is not None:
            stmt = stmt.where(
                tuple_(col(FlowRun.created_at), col(FlowRun.id))
                < tuple_(cursor_instant(key[0]), key[1])
            )
        stmt = stmt.order_by(col(FlowRun.created_at).desc(), col(FlowRun.id).desc())
        rows = list((await session.exec(stmt.limit(first + 1))).all())
    items = rows[:first]
    return Page(
        items=items,
        cursors=[encode_cursor(r.created_at.isoformat(), r.id) for r in items],
        has_next_page=len(rows) > first,
        total_count=total,
    )


async def runs_by_ids(ctx: DomainContext, ids: list[str]) -> list[FlowRun | None]:
    async with ctx.db.read() as session:
        rows = await session.exec(select(FlowRun).where(col(FlowRun.id).in_(ids)))
        found = {r.id: r for r in rows.all()}
    return [found.get(i) for i in ids]


async def chain_neighbours(
    ctx: DomainContext, viewer: UserPrincipal | None, ids: list[str], *, retried_by: bool
) -> list[FlowRun | None]:
    """R40, for the API's loaders: for each run id, the run it retries (``retried_by`` False:
    the run with that id) or the run that retries it (True), where ``viewer`` may see it; a
    machine key (``viewer`` None) sees none."""
    if viewer is None:
        return [None for _ in ids]
    key = col(FlowRun.retry_of_id) if retried_by else col(FlowRun.id)
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, viewer)
        rows = await session.exec(
            select(FlowRun).where(key.in_(ids), runs_visible_to(viewer, admin_of))
        )
        found = {(r.retry_of_id if retried_by else r.id): r for r in rows.all()}
    return [found.get(i) for i in ids]


# --- the live queue (R25, R29) -----------------------------------------------------------------


def _entries(state: EnvironmentState, key: tuple[str | None, str | None]) -> list[QueueEntry]:
    places = state.positions()
    return [
        QueueEntry(run=r, position=places[r.id], wait_reason=state.plan.reasons.get(r.id))
        for r in state.queued
        if queue_key(r) == key
    ]


async def machine_queue(
    ctx: DomainContext, principal: Principal, machine_id: str
) -> list[QueueEntry]:
    """R25/R29: the runs queued for a machine, in order, each with why it waits."""
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="machineId")
    async with ctx.db.read() as session:
        machine = await authorize_machine(session, user, machine_id, Action.RUN)
        state = await load_environment_state(
            session, machine.environment_id, ctx.clock.now(), ctx.settings
        )
    return _entries(state, (machine.id, None))


async def group_queue(ctx: DomainContext, principal: Principal, group_id: str) -> list[QueueEntry]:
    user = require_user(principal)
    group_id = validation.ident(group_id, field="groupId")
    async with ctx.db.read() as session:
        group = await authorize_group(session, user, group_id, Action.RUN)
        state = await load_environment_state(
            session, group.environment_id, ctx.clock.now(), ctx.settings
        )
    return _entries(state, (None, group.id))


async def people_visible(
    ctx: DomainContext, viewer: UserPrincipal | None, runs: Iterable[FlowRun]
) -> list[bool]:
    """For each run, whether ``viewer`` may see who is behind it (R38, domain/runs/visibility.py);
    a machine key (``viewer`` None) may not."""
    runs = list(runs)
    if viewer is None:
        return [False for _ in runs]
    async with ctx.db.read() as session:
        admin_of = await admin_environment_ids(session, viewer)
    return [
        sees_run_people(
            viewer,
            run.triggered_by_id,
            run.connection_owner_id,
            admin=admin_of is None or run.environment_id in admin_of,
        )
        for run in runs
    ]


@dataclass(frozen=True)
class WaitState:
    """Where a queued run stands: its place (R29), why it waits, when it should start (R42)."""

    position: int
    reason: WaitReason | None
    estimate: Estimate


async def wait_states(ctx: DomainContext, runs: Iterable[FlowRun]) -> list[WaitState | None]:
    """Each run's :class:`WaitState` (``None`` for runs not queued): one snapshot per environment,
    whatever the number of runs (the per-request DataLoader batches them)."""
    runs = list(runs)
    environments = sorted({r.environment_id for r in runs if r.status is RunStatus.QUEUED})
    now = ctx.clock.now()
    states: dict[str, EnvironmentState] = {}
    estimates: dict[str, Estimate] = {}
    if environments:
        async with ctx.db.read() as session:
            for environment_id in environments:
                state = await load_environment_state(session, environment_id, now, ctx.settings)
                states[environment_id] = state
                estimates.update(await load_start_estimates(session, state, now))
    places = {env: state.positions() for env, state in states.items()}
    result: list[WaitState | None] = []
    for run in runs:
        planned = states.get(run.environment_id)
        if planned is None or run.id not in places[run.environment_id]:
            result.append(None)
            continue
        result.append(
            WaitState(
                position=places[run.environment_id][run.id],
                reason=planned.plan.reasons.get(run.id),
                estimate=estimates[run.id],
            )
        )
    return result
