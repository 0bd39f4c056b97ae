"""Each queued run's wait history (R29): why it waited, from when until when. The statistics' fold
(once across instances, at every fold of the statistics) reads each environment's queue as the dispatcher plans it
and writes a new stretch when a run's reason changes; a stretch ends when the reason changes or
the run leaves the queue. Its resolution is the sweep's interval."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.context import DomainContext
from domain.kernel.settings import Settings
from domain.runs.queue_state import load_environment_state
from domain.store.models import FlowRun, RunStatus, RunWait


async def record(session: AsyncSession, now: datetime, settings: Settings) -> None:
    environments = await session.exec(
        select(FlowRun.environment_id).where(FlowRun.status == RunStatus.QUEUED).distinct()
    )
    current: dict[str, str] = {}  # run id -> its reason now
    for environment_id in environments.all():
        state = await load_environment_state(session, environment_id, now, settings)
        current.update({run_id: reason.value for run_id, reason in state.plan.reasons.items()})
    open_rows = (await session.exec(select(RunWait).where(col(RunWait.until).is_(None)))).all()
    ended: list[str] = []
    still: set[str] = set()
    for row in open_rows:
        if current.get(row.run_id) == row.reason:
            still.add(row.run_id)
        else:
            ended.append(row.id)
    if ended:
        await session.exec(
            update(RunWait)
            .where(col(RunWait.id).in_(ended))
            .values(until=now)
            .execution_options(synchronize_session=False)
        )
    for run_id, reason in sorted(current.items()):
        if run_id not in still:
            session.add(RunWait(run_id=run_id, reason=reason, since=now))


async def histories(ctx: DomainContext, run_ids: list[str]) -> list[list[RunWait]]:
    """Each run's stretches, oldest first (runs already visible to the caller)."""
    async with ctx.db.read() as session:
        rows = await session.exec(
            select(RunWait)
            .where(col(RunWait.run_id).in_(run_ids))
            .order_by(col(RunWait.since), col(RunWait.id))
        )
        found: dict[str, list[RunWait]] = {run_id: [] for run_id in run_ids}
        for row in rows.all():
            found[row.run_id].append(row)
    return [found[run_id] for run_id in run_ids]
