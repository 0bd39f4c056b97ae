"""R42's input: how long a flow's runs take, moved by each run that ran to an end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.runs.start_estimates import MEAN_WEIGHT
from domain.store.models import DesktopFlow
from domain.store.models.tables import table_of

_F = table_of(DesktopFlow).c


async def record_run_length(
    session: AsyncSession, flow_id: str, started_at: datetime, ended_at: datetime
) -> None:
    """One statement, computed in the database: two runs of a flow ending at once both count."""
    seconds = max(0.0, (ended_at - started_at).total_seconds())
    mean = _F.mean_run_seconds
    await session.exec(
        update(table_of(DesktopFlow))
        .where(_F.id == flow_id)
        .values(
            mean_run_seconds=case(
                (mean.is_(None), seconds), else_=mean + MEAN_WEIGHT * (seconds - mean)
            )
        )
    )
