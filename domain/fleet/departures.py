"""What leaves with a machine or a group (R6): its connections, with their runs that have not
started, and the group's assignments a departing machine may no longer run.

These are fleet rules acting on run and connection records, so the fleet's use cases (delete, move,
leave a group) call them inside their own transaction without knowing the contexts above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.bus.events import (
    EventBus,
    MachineChanged,
    MachineWorkChanged,
    QueueChanged,
    RunChanged,
    emit,
)
from domain.context import DomainContext
from domain.store.models import Connection, FlowRun, RunStatus
from domain.store.queue_lock import lock_environment_queue
from domain.webhooks import outbox

# The error code a run ends with when its connection goes away before the run started (R6).
CONNECTION_REMOVED = "CONNECTION_REMOVED"

# Runs that have not started yet: removing their connection cancels them. RUNNING runs finish.
NOT_STARTED = (RunStatus.QUEUED, RunStatus.DISPATCHED)


async def withdraw_group_assignments(
    ctx: DomainContext,
    session: AsyncSession,
    *,
    machine_id: str,
    group_id: str,
    environment_id: str,
) -> list[str]:
    """A machine is leaving ``group_id`` (removed, moved to another group or environment, deleted):
    the group's runs dispatched to it and not yet confirmed go back to the group's queue, keeping
    their place (``queued_at`` and move-to-top rank are untouched: R25, R28), so they never run in
    a machine that is no longer the group's (R6). Its late confirmation is then refused (the run is
    no longer its own), and the run is dispatched again under a new attempt. Running runs finish.

    Call it in the caller's transaction, before the machine's ``group_id`` changes. It takes the
    environment's queue lock, so a dispatch planned with the machine still in the group either
    committed before (and is withdrawn here) or plans again after (without it).
    """
    await lock_environment_queue(session, ctx.db, environment_id)
    rows = (
        await session.exec(
            update(FlowRun)
            .where(
                col(FlowRun.machine_id) == machine_id,
                col(FlowRun.target_group_id) == group_id,
                col(FlowRun.status) == RunStatus.DISPATCHED,
            )
            .values(status=RunStatus.QUEUED, machine_id=None, dispatched_at=None)
            .returning(col(FlowRun.id))
            .execution_options(synchronize_session=False)
        )
    ).all()
    run_ids = sorted(row[0] for row in rows)
    if run_ids:
        for run_id in run_ids:
            emit(ctx.events, session, RunChanged(run_id, environment_id))
        emit(ctx.events, session, QueueChanged(environment_id, None, group_id))
        emit(ctx.events, session, MachineChanged(machine_id, environment_id))
        emit(ctx.events, session, MachineWorkChanged(machine_id))
    return run_ids


@dataclass(frozen=True)
class RemovedConnections:
    """What :func:`remove_connections_for` did: the connections gone and the runs it cancelled."""

    connection_ids: list[str]
    cancelled_runs: list[FlowRun]


async def remove_connections_for(
    session: AsyncSession,
    *,
    machine_id: str | None = None,
    group_id: str | None = None,
    connection_ids: Iterable[str] | None = None,
    reason: str,
    now: datetime,
    events: EventBus | None = None,
) -> RemovedConnections:
    """Delete the connections of a machine or group (or the ones named) inside the caller's
    transaction, and end their runs that have not started: ``CANCELLED`` with error
    ``CONNECTION_REMOVED`` and ``reason`` as the message (R6). ``RUNNING`` runs are left to finish
    (their connection reference becomes null); finished runs keep their history.

    Call it before deleting or moving a machine or a group. With ``events`` it also publishes,
    after commit, the run, queue and machine-work changes it caused.
    """
    clauses: list[ColumnElement[bool]] = []
    if machine_id is not None:
        clauses.append(col(Connection.machine_id) == machine_id)
    if group_id is not None:
        clauses.append(col(Connection.group_id) == group_id)
    if connection_ids is not None:
        clauses.append(col(Connection.id).in_(list(connection_ids)))
    if not clauses:
        raise ValueError("remove_connections_for needs machine_id, group_id or connection_ids")
    connections = list((await session.exec(select(Connection).where(or_(*clauses)))).all())
    if not connections:
        return RemovedConnections(connection_ids=[], cancelled_runs=[])
    ids = [c.id for c in connections]
    message = " ".join(reason.split())[:2000] or "connection removed"
    # One conditional UPDATE: a run that starts meanwhile (RUNNING) is never cancelled.
    cancelled_ids = (
        await session.exec(
            update(FlowRun)
            .where(col(FlowRun.connection_id).in_(ids), col(FlowRun.status).in_(NOT_STARTED))
            .values(
                status=RunStatus.CANCELLED,
                ended_at=now,
                error_code=CONNECTION_REMOVED,
                error_message=message,
            )
            .returning(col(FlowRun.id))
            .execution_options(synchronize_session=False)
        )
    ).all()
    cancelled: list[FlowRun] = []
    if cancelled_ids:
        cancelled = list(
            (
                await session.exec(
                    select(FlowRun)
                    .where(col(FlowRun.id).in_([row[0] for row in cancelled_ids]))
                    .execution_options(populate_existing=True)
                )
            ).all()
        )
    for run in cancelled:
        outbox.run_finished(session, run, now)  # R43
    for connection in connections:
        await session.delete(connection)
    await session.flush()
    if events is not None:
        queues: set[tuple[str, str | None, str | None]] = set()
        for run in cancelled:
            emit(events, session, RunChanged(run.id, run.environment_id))
            queues.add((run.environment_id, run.target_machine_id, run.target_group_id))
            if run.machine_id is not None:
                emit(events, session, MachineWorkChanged(run.machine_id))
        for environment_id, m_id, g_id in sorted(queues, key=str):
            emit(events, session, QueueChanged(environment_id, machine_id=m_id, group_id=g_id))
    return RemovedConnections(connection_ids=ids, cancelled_runs=cancelled)
