"""The snapshot R25/R26 decide on: an environment's queued runs in queue order and its machines.

Loaded in a constant number of statements per environment. The dispatcher loads it inside its
claiming transaction; the queue views load it in a read transaction; both hand it to
:func:`domain.candidates.plan`, so a wait reason shown is the reason the dispatcher acted on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain import candidates
from domain.candidates import MachineState, Plan, QueuedRun, RunRequest, user_key
from domain.machines import status_of
from domain.maintenance import groups_needing_key_action, machine_in_maintenance
from domain.models import (
    FlowRun,
    Machine,
    MachineGroup,
    MachineStatus,
    RunMode,
    RunStatus,
    SessionState,
    UserSession,
)
from domain.settings import Settings

ACTIVE_STATUSES = (RunStatus.DISPATCHED, RunStatus.RUNNING)


def queue_order() -> list[ColumnElement[object]]:
    """R25: moved-to-top first (last moved first), then HIGH before NORMAL, then oldest first."""
    return [
        col(FlowRun.top_rank).desc(),
        col(FlowRun.priority_rank).asc(),
        col(FlowRun.queued_at).asc(),
        col(FlowRun.id).asc(),
    ]


def queue_key(run: FlowRun) -> tuple[str | None, str | None]:
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
    run: FlowRun, machines: dict[str, MachineState], members: dict[str, tuple[str, ...]]
) -> tuple[str, ...]:
    if run.target_machine_id is not None:
        return (run.target_machine_id,) if run.target_machine_id in machines else ()
    if run.target_group_id is not None:
        return members.get(run.target_group_id, ())
    return ()


async def machine_states(
    session: AsyncSession, machines: list[Machine], now: datetime, settings: Settings
) -> dict[str, MachineState]:
    """R26's view of ``machines``: four statements whatever their number."""
    ids = [m.id for m in machines]
    if not ids:
        return {}
    group_ids = sorted({m.group_id for m in machines if m.group_id})
    groups: dict[str, MachineGroup] = {}
    if group_ids:
        rows = await session.exec(select(MachineGroup).where(col(MachineGroup.id).in_(group_ids)))
        groups = {g.id: g for g in rows.all()}
    needing = await groups_needing_key_action(session, group_ids, now)
    active = await session.exec(
        select(FlowRun.machine_id, FlowRun.mode, FlowRun.run_as, FlowRun.dispatched_at).where(
            col(FlowRun.machine_id).in_(ids), col(FlowRun.status).in_(ACTIVE_STATUSES)
        )
    )
    busy: dict[str, int] = defaultdict(int)
    running: dict[str, int] = defaultdict(int)
    attended: dict[str, set[str]] = defaultdict(set)
    for machine_id, mode, run_as, _ in active.all():
        running[machine_id] += 1
        if mode is RunMode.UNATTENDED:
            busy[machine_id] += 1
        else:
            attended[machine_id].add(user_key(run_as))
    # One correlated probe per machine on ix_flow_runs_last_assigned, in a single statement.
    latest = (
        select(func.max(FlowRun.dispatched_at))
        .where(col(FlowRun.machine_id) == col(Machine.id))
        .scalar_subquery()
    )
    last = await session.exec(select(Machine.id, latest).where(col(Machine.id).in_(ids)))
    last_assigned = dict(last.all())
    sessions: dict[str, dict[str, SessionState]] = defaultdict(dict)
    for s in (
        await session.exec(select(UserSession).where(col(UserSession.machine_id).in_(ids)))
    ).all():
        sessions[s.machine_id][user_key(s.username)] = s.state
    states: dict[str, MachineState] = {}
    for m in machines:
        group = groups.get(m.group_id) if m.group_id else None
        states[m.id] = MachineState(
            id=m.id,
            connected=status_of(m, now, settings.heartbeat_timeout_seconds)
            is MachineStatus.CONNECTED,
            maintenance=machine_in_maintenance(
                m, group, group is not None and group.id in needing, now
            ),
            unattended_bots=m.unattended_bots,
            busy_bots=busy[m.id],
            running=running[m.id],
            last_assigned_at=last_assigned.get(m.id),
            sessions=dict(sessions[m.id]),
            attended_users=frozenset(attended[m.id]),
        )
    return states


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
    machines = list(
        (await session.exec(select(Machine).where(Machine.environment_id == environment_id))).all()
    )
    states = await machine_states(session, machines, now, settings)
    members: dict[str, list[str]] = defaultdict(list)
    for m in sorted(machines, key=lambda m: m.id):
        if m.group_id is not None:
            members[m.group_id].append(m.id)
    frozen = {g: tuple(ids) for g, ids in members.items()}
    items = [
        QueuedRun(
            request=RunRequest(id=r.id, mode=r.mode, run_as=r.run_as),
            machine_ids=candidate_ids(r, states, frozen),
        )
        for r in queued
    ]
    return EnvironmentState(
        environment_id=environment_id,
        queued=queued,
        machines=states,
        members=frozen,
        plan=candidates.plan(items, states, now),
    )
