"""The snapshot R25/R26 decide on: an environment's queued runs in queue order and its machines.

Loaded in a constant number of statements per environment. The dispatcher loads it inside its
claiming transaction; the queue views load it in a read transaction; both hand it to
:func:`domain.runs.candidates.plan`, so a wait reason shown is the reason the dispatcher acted on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnElement, Select, bindparam, func, or_
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.fleet.machines import key_action_required, status_of
from domain.fleet.maintenance import machine_in_maintenance
from domain.fleet.sessions import user_key
from domain.kernel.settings import Settings
from domain.kernel.versions import below
from domain.runs import candidates
from domain.runs.candidates import MachineState, Plan, QueuedRun, RunRequest, WaitReason
from domain.runs.start_estimates import (
    ActiveRun,
    Durations,
    Estimate,
    QueuedFacts,
    estimate_starts,
)
from domain.store.models import (
    DesktopFlow,
    Environment,
    FlowRun,
    Machine,
    MachineGroup,
    MachineStatus,
    RunMode,
    RunStatus,
    SessionState,
    UserSession,
)
from domain.store.models.tables import table_of

ACTIVE_STATUSES = (RunStatus.DISPATCHED, RunStatus.RUNNING)


def queue_order() -> list[ColumnElement[Any]]:
    """R25: moved-to-top first (last moved first), then HIGH before NORMAL, then oldest first."""
    return [
        col(FlowRun.top_rank).desc(),
        col(FlowRun.priority_rank).asc(),
        col(FlowRun.queued_at).asc(),
        col(FlowRun.id).asc(),
    ]


class QueuedRunFacts(Protocol):
    """What planning needs of a queued run: a :class:`FlowRun`, or a row of its columns."""

    @property
    def id(self) -> str: ...
    @property
    def environment_id(self) -> str: ...
    @property
    def mode(self) -> RunMode: ...
    @property
    def run_as(self) -> str: ...
    @property
    def target_machine_id(self) -> str | None: ...
    @property
    def target_group_id(self) -> str | None: ...
    @property
    def queued_at(self) -> datetime: ...
    @property
    def attempt(self) -> int: ...
    @property
    def not_before(self) -> datetime | None: ...


def queue_key(run: QueuedRunFacts) -> tuple[str | None, str | None]:
    return (run.target_machine_id, run.target_group_id)


@dataclass(frozen=True)
class EnvironmentState:
    environment_id: str
    queued: list[FlowRun]  # in queue order, across all queues of the environment
    machines: dict[str, MachineState]
    members: dict[str, tuple[str, ...]]  # group id -> its machine ids
    plan: Plan

    def positions(self) -> dict[str, int]:
        """Each queued run's 1-based place in its own queue (machine or group)."""
        seen: dict[tuple[str | None, str | None], int] = defaultdict(int)
        places: dict[str, int] = {}
        for run in self.queued:
            seen[queue_key(run)] += 1
            places[run.id] = seen[queue_key(run)]
        return places


def candidate_ids(
    run: QueuedRunFacts, machines: dict[str, MachineState], members: dict[str, tuple[str, ...]]
) -> tuple[str, ...]:
    if run.target_machine_id is not None:
        return (run.target_machine_id,) if run.target_machine_id in machines else ()
    if run.target_group_id is not None:
        return members.get(run.target_group_id, ())
    return ()


_M = table_of(Machine).c
_G = table_of(MachineGroup).c
_R = table_of(FlowRun).c
_S = table_of(UserSession).c
_E = table_of(Environment).c
_F = table_of(DesktopFlow).c


# The statements below are Core statements run on the connection: SQLAlchemy's select (SQLModel's
# is for ORM entities, and types at most four columns).
class _FleetStatements(NamedTuple):
    """The four reads of :func:`load_fleet`, over the machines ``scope`` (a condition on the
    machines table) selects. Built once; each load binds the environment only. Every statement
    reads the columns R26 needs, never whole rows, and none depends on the number of machines."""

    machines: Select[Any]
    groups: Select[Any]
    active: Select[Any]
    sessions: Select[Any]

    @classmethod
    def over(cls, scope: ColumnElement[bool]) -> _FleetStatements:
        in_scope = core_select(_M.id).where(scope)
        return cls(
            machines=core_select(
                _M.id,
                _M.group_id,
                _M.maintenance,
                _M.unattended_bots,
                _M.last_heartbeat_at,
                _M.key_expires_at,
                _M.key_rotation_pending,
                _M.runtime_version,
                # R41: the environment's minimum, the same on every row (evaluated once).
                core_select(_E.min_runtime_version)
                .where(_E.id == bindparam("environment_id"))
                .scalar_subquery()
                .label("minimum"),
                # One correlated probe per machine on ix_flow_runs_last_assigned.
                core_select(func.max(_R.dispatched_at))
                .where(_R.machine_id == _M.id)
                .scalar_subquery()
                .label("last_assigned_at"),
            ).where(scope),
            groups=core_select(_G.id, _G.maintenance).where(
                _G.id.in_(core_select(_M.group_id).where(scope).distinct())
            ),
            active=core_select(_R.machine_id, _R.mode, _R.run_as, func.count())
            .where(
                # Not IN (...): an expanding parameter is rendered again at every execution.
                or_(*(_R.status == status for status in ACTIVE_STATUSES)),
                _R.machine_id.in_(in_scope),
            )
            .group_by(_R.machine_id, _R.mode, _R.run_as),
            sessions=core_select(_S.machine_id, _S.username, _S.state).where(
                _S.machine_id.in_(in_scope)
            ),
        )


_IN_ENVIRONMENT = _M.environment_id == bindparam("environment_id")
# The queue's targets, read from an alias of the runs table: inside the reads of runs above, the
# table itself would be taken for the outer statement's row (SQL correlation).
_Q = table_of(FlowRun).alias("queued")
_T = table_of(Machine).alias("targeted")


def _queue_targets(column: Any) -> Select[Any]:
    return core_select(column).where(
        _Q.c.environment_id == bindparam("environment_id"),
        _Q.c.status == RunStatus.QUEUED,
        column.is_not(None),
    )


_WHOLE_ENVIRONMENT = _FleetStatements.over(_IN_ENVIRONMENT)
# The dispatcher's pass reads only the machines a queued run may go to: each targeted machine
# and each targeted group's members, with the other machines of their groups (R10 reads a group's
# machines together). A pass then costs what the queue holds, not what the fleet holds: over
# 2,000 machines it read every one of them for one queued run (`assignment_latency` in
# docs/performance.md).
_QUEUE_CANDIDATES = _FleetStatements.over(
    _IN_ENVIRONMENT
    & or_(
        _M.id.in_(_queue_targets(_Q.c.target_machine_id)),
        _M.group_id.in_(_queue_targets(_Q.c.target_group_id)),
        _M.group_id.in_(
            core_select(_T.c.group_id).where(
                _T.c.id.in_(_queue_targets(_Q.c.target_machine_id)), _T.c.group_id.is_not(None)
            )
        ),
    )
)


class _MachineRow(NamedTuple):
    """A row of the fleet's ``machines`` read: a named tuple, as R9/R10/R16-R18 read it by attribute and a
    SQLAlchemy Row's attribute look-up cost more than the rules themselves (200 machines a pass)."""

    id: str
    group_id: str | None
    maintenance: bool
    unattended_bots: int
    last_heartbeat_at: datetime | None
    key_expires_at: datetime
    key_rotation_pending: bool
    runtime_version: str
    minimum: str | None  # the environment's R41 minimum
    last_assigned_at: datetime | None


class _GroupRow(NamedTuple):
    id: str
    maintenance: bool


@dataclass(frozen=True)
class Fleet:
    """R26's view of every machine of an environment, and which machines each group holds."""

    machines: dict[str, MachineState]
    members: dict[str, tuple[str, ...]]  # group id -> its machine ids, in id order


async def load_fleet(
    session: AsyncSession,
    environment_id: str,
    now: datetime,
    settings: Settings,
    statements: _FleetStatements = _WHOLE_ENVIRONMENT,
) -> Fleet:
    """Four statements, whatever the number of machines, runs or sessions."""
    conn = await session.connection()
    params = {"environment_id": environment_id}
    machines = list(map(_MachineRow._make, (await conn.execute(statements.machines, params)).all()))
    if not machines:
        return Fleet(machines={}, members={})
    groups = {
        g[0]: _GroupRow._make(g) for g in (await conn.execute(statements.groups, params)).all()
    }
    busy: dict[str, int] = defaultdict(int)
    running: dict[str, int] = defaultdict(int)
    attended: dict[str, set[str]] = defaultdict(set)
    for machine_id, mode, run_as, count in (await conn.execute(statements.active, params)).all():
        running[machine_id] += count
        if RunMode(mode) is RunMode.UNATTENDED:
            busy[machine_id] += count
        else:
            attended[machine_id].add(user_key(run_as))
    sessions: dict[str, dict[str, SessionState]] = defaultdict(dict)
    for machine_id, username, state in (await conn.execute(statements.sessions, params)).all():
        sessions[machine_id][user_key(username)] = SessionState(state)
    # R10: a group needing a key action is one holding a machine that needs one (a group's
    # machines are all in its environment, so all are here).
    needing = {m.group_id for m in machines if m.group_id and key_action_required(m, now)}
    timeout = settings.heartbeat_timeout_seconds
    # Plain .get()s, not the defaultdicts: most machines have no runs or sessions, and a look-up
    # that adds an empty entry per machine was a fair part of a pass over 200 of them.
    no_sessions: dict[str, SessionState] = {}
    no_users: frozenset[str] = frozenset()
    states: dict[str, MachineState] = {}
    members: dict[str, list[str]] = defaultdict(list)
    for m in sorted(machines):  # by id: members in id order
        group_id = m.group_id
        group = groups.get(group_id) if group_id else None
        users = attended.get(m.id)
        states[m.id] = MachineState(
            id=m.id,
            connected=status_of(m, now, timeout) is MachineStatus.CONNECTED,
            maintenance=machine_in_maintenance(m, group, group_id in needing, now),
            unattended_bots=m.unattended_bots,
            outdated=below(m.runtime_version, m.minimum),  # R41
            busy_bots=busy.get(m.id, 0),
            running=running.get(m.id, 0),
            last_assigned_at=m.last_assigned_at,
            sessions=sessions.get(m.id, no_sessions),
            attended_users=frozenset(users) if users else no_users,
        )
        if group_id is not None:
            members[group_id].append(m.id)
    return Fleet(machines=states, members={g: tuple(ids) for g, ids in members.items()})


async def load_environment_state(
    session: AsyncSession, environment_id: str, now: datetime, settings: Settings
) -> EnvironmentState:
    queued = list(
        (
            await session.exec(
                select(FlowRun)
                .where(FlowRun.environment_id == environment_id, FlowRun.status == RunStatus.QUEUED)
                .order_by(*queue_order())
            )
        ).all()
    )
    fleet = await load_fleet(session, environment_id, now, settings)
    return EnvironmentState(
        environment_id=environment_id,
        queued=queued,
        machines=fleet.machines,
        members=fleet.members,
        plan=plan_queue(queued, fleet, now),
    )


def plan_queue(queued: Sequence[QueuedRunFacts], fleet: Fleet, now: datetime) -> Plan:
    """R25 + R26 over ``queued`` (in queue order) and the environment's machines. A retry still
    in its delay (R40) is left out: it waits RETRY_DELAY and takes no room from runs behind it."""
    items: list[QueuedRun] = []
    delayed: list[str] = []
    for r in queued:
        if r.not_before is not None and r.not_before > now:
            delayed.append(r.id)
            continue
        items.append(
            QueuedRun(
                request=RunRequest(id=r.id, mode=r.mode, run_as=r.run_as),
                machine_ids=candidate_ids(r, fleet.machines, fleet.members),
            )
        )
    plan = candidates.plan(items, fleet.machines, now)
    plan.reasons.update(dict.fromkeys(delayed, WaitReason.RETRY_DELAY))
    return plan


# The dispatcher's snapshot: queued runs as rows of the columns it acts on, not ORM objects.
_QUEUED = (
    core_select(
        _R.id,
        _R.environment_id,
        _R.mode,
        _R.run_as,
        _R.target_machine_id,
        _R.target_group_id,
        _R.queued_at,
        _R.attempt,
        _R.not_before,
    )
    .where(_R.environment_id == bindparam("environment_id"), _R.status == RunStatus.QUEUED)
    .order_by(*queue_order())
)


class _QueuedRow(NamedTuple):
    """A row of ``_QUEUED`` (see :class:`_MachineRow` for why not the Row itself)."""

    id: str
    environment_id: str
    mode: RunMode
    run_as: str
    target_machine_id: str | None
    target_group_id: str | None
    queued_at: datetime
    attempt: int
    not_before: datetime | None  # R40: a retry's delay


@dataclass(frozen=True)
class DispatchState:
    queued: Sequence[QueuedRunFacts]  # in queue order
    plan: Plan


async def load_dispatch_state(
    session: AsyncSession, environment_id: str, now: datetime, settings: Settings
) -> DispatchState:
    """What :func:`load_environment_state` plans on, read as plain rows (five statements)."""
    conn = await session.connection()
    queued: Sequence[QueuedRunFacts] = list(
        map(
            _QueuedRow._make,
            (await conn.execute(_QUEUED, {"environment_id": environment_id})).all(),
        )
    )
    if not queued:
        return DispatchState(queued=[], plan=Plan(assignments={}, reasons={}))
    fleet = await load_fleet(session, environment_id, now, settings, _QUEUE_CANDIDATES)
    return DispatchState(queued=queued, plan=plan_queue(queued, fleet, now))


# R42's reads: what the environment's bots and sessions carry, and how long each flow's runs take.
_CARRIED = core_select(
    _R.machine_id, _R.mode, _R.run_as, _R.flow_id, func.coalesce(_R.started_at, _R.dispatched_at)
).where(
    _R.environment_id == bindparam("environment_id"),
    or_(*(_R.status == status for status in ACTIVE_STATUSES)),
    _R.machine_id.is_not(None),
)
_MEANS = core_select(_F.id, _F.mean_run_seconds).where(
    _F.environment_id == bindparam("environment_id"), _F.mean_run_seconds.is_not(None)
)


async def load_start_estimates(
    session: AsyncSession, state: EnvironmentState, now: datetime
) -> dict[str, Estimate]:
    """R42 for every queued run of ``state``: two statements, whatever the run history holds."""
    if not state.queued:
        return {}
    conn = await session.connection()
    params = {"environment_id": state.environment_id}
    active = [
        ActiveRun(machine_id=m, mode=RunMode(mode), run_as=run_as, flow_id=flow, since=since)
        for m, mode, run_as, flow, since in (await conn.execute(_CARRIED, params)).all()
    ]
    means = {flow: seconds for flow, seconds in (await conn.execute(_MEANS, params)).all()}
    queued = [
        QueuedFacts(
            id=r.id,
            mode=r.mode,
            run_as=r.run_as,
            flow_id=r.flow_id,
            machine_ids=candidate_ids(r, state.machines, state.members),
            not_before=r.not_before,  # R40: a retry waits out its delay
        )
        for r in state.queued
    ]
    return estimate_starts(queued, state.machines, active, Durations(means), now)
