"""Keeping the fleet's rollups: each fold takes the time since the last one, once across every
server instance, and adds what happened in it to the minute and hour rows it falls in.

A fold reads only the runs that started or ended in its interval and those running now (the
``started_at`` and ``ended_at`` indexes, the status index), so its cost follows the fleet's
activity, never the length of its history; the statistics read the rollups alone. The interval
ends :data:`LAG` before now, for the transactions that stamped a time just before it to commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.context import DomainContext
from domain.statistics import waits
from domain.store.models import (
    FleetRollup,
    FlowRun,
    FoldSamples,
    Machine,
    MachineHour,
    RunStatus,
    StatisticsFold,
)
from domain.store.models.statistics import HOUR, MINUTE, WAIT_BOUNDS, WAIT_COLUMNS
from domain.store.models.tables import table_of

LAG = timedelta(seconds=2)
# After a stop, the rollups catch up this much time a transaction (its runs stay few).
MAX_FOLD = timedelta(minutes=10)

SPANS = {MINUTE: timedelta(minutes=1), HOUR: timedelta(hours=1)}
_ENDINGS = {
    RunStatus.SUCCEEDED: "runs_succeeded",
    RunStatus.FAILED: "runs_failed",
    RunStatus.TIMED_OUT: "runs_timed_out",
    RunStatus.CANCELLED: "runs_cancelled",
}
_PEAKS = ("queued_peak", "running_peak")


def span_start(instant: datetime, span: str) -> datetime:
    if span == MINUTE:
        return instant.replace(second=0, microsecond=0)
    return instant.replace(minute=0, second=0, microsecond=0)


def wait_column(seconds: float) -> str:
    """The histogram bucket a wait of ``seconds`` counts in."""
    for i, bound in enumerate(WAIT_BOUNDS):
        if seconds <= bound:
            return WAIT_COLUMNS[i]
    return WAIT_COLUMNS[-1]


def pieces(start: datetime, end: datetime, span: str) -> Iterator[tuple[datetime, float]]:
    """``(start, end]`` cut at the span's boundaries: each piece's span start and its seconds."""
    while start < end:
        begins = span_start(start, span)
        ends = min(end, begins + SPANS[span])
        yield begins, (ends - start).total_seconds()
        start = ends


@dataclass
class Fold:
    """What one interval adds: per (environment, span, start), column deltas; per (machine,
    hour), busy bot-seconds; the gauges read at its end (``None`` while catching up)."""

    since: datetime
    until: datetime
    rollups: dict[tuple[str, str, datetime], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    machines: dict[tuple[str, datetime], tuple[str, float]] = field(default_factory=dict)
    sampled: bool = False

    def add(self, environment_id: str, at: datetime, column: str, amount: float = 1) -> None:
        for span in SPANS:
            self.rollups[(environment_id, span, span_start(at, span))][column] += amount

    def busy(self, environment_id: str, machine_id: str, start: datetime, end: datetime) -> None:
        for span in SPANS:
            for begins, seconds in pieces(start, end, span):
                self.rollups[(environment_id, span, begins)]["busy_bot_seconds"] += seconds
                if span == HOUR:
                    _, before = self.machines.get((machine_id, begins), (environment_id, 0.0))
                    self.machines[(machine_id, begins)] = (environment_id, before + seconds)


async def fold(ctx: DomainContext) -> list[Fold]:
    """Fold up to now, :data:`MAX_FOLD` a transaction; what each added (none: another instance
    did, or nothing is new)."""
    done: list[Fold] = []
    while (step := await _fold_once(ctx)) is not None:
        done.append(step)
        if step.sampled:
            break
    return done


async def _fold_once(ctx: DomainContext) -> Fold | None:
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        mark = await session.get(StatisticsFold, 1)
        if mark is None:  # the first fold: the rollups start now
            session.add(StatisticsFold(id=1, folded_until=now - LAG))
            return None
        since = mark.folded_until
        until = min(now - LAG, since + MAX_FOLD)
        if until <= since:
            return None
        taken = await session.exec(
            update(StatisticsFold)
            .where(col(StatisticsFold.id) == 1, col(StatisticsFold.folded_until) == since)
            .values(folded_until=until)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            return None  # another instance folded this interval
        result = Fold(since=since, until=until)
        await _read_runs(session, result)
        if until == now - LAG:  # caught up: the gauges read now belong to this minute
            await _read_gauges(session, result, now, ctx.settings.heartbeat_timeout_seconds)
            await waits.record(session, now, ctx.settings)
        await _write(session, result)
    return result


async def _read_runs(session: AsyncSession, result: Fold) -> None:
    since, until = result.since, result.until
    started = await session.exec(
        select(FlowRun.environment_id, FlowRun.queued_at, FlowRun.started_at).where(
            col(FlowRun.started_at) > since, col(FlowRun.started_at) <= until
        )
    )
    for environment_id, queued_at, started_at in started.all():
        assert started_at is not None  # the where clause
        waited = max(0.0, (started_at - queued_at).total_seconds())
        result.add(environment_id, started_at, "runs_started")
        result.add(environment_id, started_at, "wait_seconds_sum", waited)
        result.add(environment_id, started_at, wait_column(waited))
    ended = await session.exec(
        select(FlowRun.environment_id, FlowRun.status, FlowRun.ended_at).where(
            col(FlowRun.ended_at) > since, col(FlowRun.ended_at) <= until
        )
    )
    for environment_id, status, ended_at in ended.all():
        ending = _ENDINGS.get(RunStatus(status))
        if ending is not None and ended_at is not None:
            result.add(environment_id, ended_at, ending)
    # Busy: every run that held a bot during (since, until], whatever it is now.
    held = select(  # type: ignore[call-overload]  # SQLModel types select() for up to 4 columns
        FlowRun.id, FlowRun.environment_id, FlowRun.machine_id, FlowRun.started_at, FlowRun.ended_at
    ).where(col(FlowRun.machine_id).is_not(None), col(FlowRun.started_at) <= until)
    ended_since = await session.exec(held.where(col(FlowRun.ended_at) > since))
    running = await session.exec(held.where(col(FlowRun.status) == RunStatus.RUNNING))
    seen: set[str] = set()
    for run_id, environment_id, machine_id, started_at, ended_at in [
        *ended_since.all(),
        *running.all(),
    ]:
        if run_id in seen or machine_id is None or started_at is None:
            continue
        seen.add(run_id)
        start = max(started_at, since)
        end = min(ended_at or until, until)
        if end > start:
            result.busy(environment_id, machine_id, start, end)


async def _read_gauges(
    session: AsyncSession, result: Fold, now: datetime, heartbeat_timeout: float
) -> None:
    result.sampled = True
    at = result.until
    counts = await session.exec(
        select(FlowRun.environment_id, FlowRun.status, func.count())
        .where(col(FlowRun.status).in_((RunStatus.QUEUED, RunStatus.RUNNING)))
        .group_by(col(FlowRun.environment_id), col(FlowRun.status))
    )
    for environment_id, status, count in counts.all():
        gauge = "queued" if status is RunStatus.QUEUED else "running"
        result.add(environment_id, at, f"{gauge}_sum", count)
        result.add(environment_id, at, f"{gauge}_peak", count)
    connected = await session.exec(
        select(Machine.environment_id, func.count())
        .where(col(Machine.last_heartbeat_at) >= now - timedelta(seconds=heartbeat_timeout))
        .group_by(col(Machine.environment_id))
    )
    for environment_id, count in connected.all():
        result.add(environment_id, at, "connected_sum", count)


async def _add(
    session: AsyncSession,
    model: type[Any],
    key: dict[str, Any],
    deltas: dict[str, float],
    fixed: dict[str, Any] | None = None,
) -> None:
    """Add ``deltas`` to the row at ``key`` (the ``*_peak`` columns take the larger value),
    creating it (with ``fixed`` as well) when there is none. The fold holds its mark's row, so no other fold writes."""
    table = table_of(model)
    values: dict[str, Any] = {}
    for name, amount in deltas.items():
        column = table.c[name]
        if name in _PEAKS:
            values[name] = case((column < amount, amount), else_=column)
        else:
            values[name] = column + amount
    where = [table.c[name] == value for name, value in key.items()]
    changed = await session.exec(update(table).where(*where).values(values))
    if changed.rowcount == 0:
        await session.exec(insert(table).values({**key, **(fixed or {}), **deltas}))


async def _write(session: AsyncSession, result: Fold) -> None:
    for (environment_id, span, start), deltas in sorted(result.rollups.items()):
        key = {"environment_id": environment_id, "span": span, "start": start}
        await _add(session, FleetRollup, key, dict(deltas))
    for (machine_id, start), (environment_id, seconds) in sorted(result.machines.items()):
        key = {"machine_id": machine_id, "start": start}
        fixed = {"environment_id": environment_id}
        await _add(session, MachineHour, key, {"busy_bot_seconds": seconds}, fixed)
    if result.sampled:
        for span in SPANS:
            key = {"span": span, "start": span_start(result.until, span)}
            await _add(session, FoldSamples, key, {"samples": 1})
