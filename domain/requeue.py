"""The environment's queue lock (R30), and giving back assignments a machine may no longer run.

Kept apart from domain/runs.py so that machines and groups, which runs.py builds on, can use them.
"""

from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.context import DomainContext
from domain.db import Database
from domain.events import MachineChanged, MachineWorkChanged, QueueChanged, RunChanged, emit
from domain.models import FlowRun, RunStatus

_LOCK_NAMESPACE = 0x4446  # "DF"


async def lock_environment_queue(session: AsyncSession, db: Database, environment_id: str) -> None:
    """Serialise dispatching and queue reordering of one environment across server instances
    (R30). SQLite writers are already serialised by BEGIN IMMEDIATE."""
    if db.is_sqlite:
        return
    await session.exec(  # type: ignore[call-overload]
        select(func.pg_advisory_xact_lock(_LOCK_NAMESPACE, func.hashtext(environment_id)))
    )


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
