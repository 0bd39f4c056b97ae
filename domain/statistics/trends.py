"""`fleetStatistics`: an environment's trends over a time range, read from the rollups alone
(domain/statistics/rollups.py), so that its cost follows the range and the fleet's size, never
the number of runs.

Whoever holds a role in an environment sees its totals; each machine's and group's utilisation
is listed only for those the caller may see (R12), and an environment the caller cannot see is
answered as one that does not exist (R38)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from sqlmodel import col, select

from domain.context import DomainContext
from domain.fleet.access import group_access_levels, machine_access_levels
from domain.identity.authorization import require_user, visible_environment
from domain.kernel import validation
from domain.kernel.errors import ErrorCode, ValidationFailed
from domain.kernel.principals import Principal
from domain.store.models import (
    Environment,
    FleetRollup,
    FoldSamples,
    Machine,
    MachineGroup,
    MachineHour,
)
from domain.store.models.statistics import HOUR, MINUTE, WAIT_BOUNDS, WAIT_COLUMNS

MAX_BUCKETS = 1000
MAX_LISTED = 500  # machines (and groups) a caller may ask utilisation for at once


class StatisticsBucket(str, Enum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"


_LENGTH = {
    StatisticsBucket.MINUTE: timedelta(minutes=1),
    StatisticsBucket.HOUR: timedelta(hours=1),
    StatisticsBucket.DAY: timedelta(days=1),
}
_COUNTS = ("runs_started", "runs_succeeded", "runs_failed", "runs_timed_out", "runs_cancelled")


@dataclass(frozen=True)
class Period:
    """One bucket. Gauges are ``None`` where no fold read them (the server was not running)."""

    start: datetime
    end: datetime
    runs_started: int
    runs_succeeded: int
    runs_failed: int
    runs_timed_out: int
    runs_cancelled: int
    wait_p50: float | None
    wait_p90: float | None
    wait_p99: float | None
    wait_mean: float | None
    queued_mean: float | None
    queued_peak: int | None
    running_mean: float | None
    running_peak: int | None
    connected_mean: float | None
    busy_bot_seconds: float


@dataclass(frozen=True)
class Utilisation:
    """A machine's (or group's) busy-bot share per cell: busy bot-seconds over its bots
    (at least one) times the cell's length."""

    id: str
    name: str
    bots: int
    busy_share: list[float]


@dataclass(frozen=True)
class Trends:
    environment: Environment
    bucket: StatisticsBucket
    start: datetime
    end: datetime
    periods: list[Period]
    cells: list[datetime]  # the utilisation cells' starts: hours, or the buckets if longer
    cell: StatisticsBucket
    machines: list[Utilisation]
    groups: list[Utilisation]


def _utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def floor(instant: datetime, bucket: StatisticsBucket) -> datetime:
    instant = instant.replace(second=0, microsecond=0)
    if bucket is StatisticsBucket.MINUTE:
        return instant
    instant = instant.replace(minute=0)
    return instant if bucket is StatisticsBucket.HOUR else instant.replace(hour=0)


def percentile(histogram: Sequence[int], share: float) -> float | None:
    """The wait under which ``share`` of the runs started, read off the histogram: linear
    within the bucket it falls in (the last, unbounded bucket answers its lower bound)."""
    total = sum(histogram)
    if total == 0:
        return None
    wanted = share * total
    seen = 0
    for i, count in enumerate(histogram):
        if count and seen + count >= wanted:
            low = 0.0 if i == 0 else float(WAIT_BOUNDS[i - 1])
            if i == len(WAIT_BOUNDS):
                return low
            return low + (WAIT_BOUNDS[i] - low) * (wanted - seen) / count
        seen += count
    return float(WAIT_BOUNDS[-1])


def _check_range(
    start: datetime, end: datetime, bucket: StatisticsBucket
) -> tuple[datetime, datetime, int]:
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise ValidationFailed(ErrorCode.INVALID_VALUE, "`to` must be after `from`", field="to")
    start = floor(start, bucket)
    aligned = floor(end, bucket)
    try:
        end = aligned if aligned == end else aligned + _LENGTH[bucket]
    except OverflowError:  # the end of year 9999: no bucket ends after it
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE, "`to` is beyond the last instant a bucket can end", field="to"
        ) from None
    count = round((end - start) / _LENGTH[bucket])
    if count > MAX_BUCKETS:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE,
            f"the range holds {count} {bucket.value.lower()} buckets, more than {MAX_BUCKETS}: "
            "narrow it or take a longer bucket",
            field="bucket",
        )
    return start, end, count


async def fleet_statistics(
    ctx: DomainContext,
    principal: Principal,
    environment_id: str,
    start: datetime,
    end: datetime,
    bucket: StatisticsBucket,
    *,
    listed: int = 50,
) -> Trends:
    user = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    start, end, count = _check_range(start, end, bucket)
    listed = validation.bounded_int(listed, field="machines", minimum=0, maximum=MAX_LISTED)
    span = MINUTE if bucket is StatisticsBucket.MINUTE else HOUR
    cell = StatisticsBucket.HOUR if bucket is StatisticsBucket.MINUTE else bucket
    async with ctx.db.read() as session:
        environment, _ = await visible_environment(session, user, environment_id)
        rows = (
            await session.exec(
                select(FleetRollup).where(
                    FleetRollup.environment_id == environment_id,
                    FleetRollup.span == span,
                    col(FleetRollup.start) >= start,
                    col(FleetRollup.start) < end,
                )
            )
        ).all()
        samples = (
            await session.exec(
                select(FoldSamples.start, FoldSamples.samples).where(
                    FoldSamples.span == span,
                    col(FoldSamples.start) >= start,
                    col(FoldSamples.start) < end,
                )
            )
        ).all()
        machines = list(
            await session.exec(select(Machine).where(Machine.environment_id == environment_id))
        )
        groups = list(
            await session.exec(
                select(MachineGroup).where(MachineGroup.environment_id == environment_id)
            )
        )
        machine_levels = await machine_access_levels(session, user, machines)
        group_levels = await group_access_levels(session, user, groups)
        cell_start = floor(start, cell)
        hours = (
            await session.exec(
                select(
                    MachineHour.machine_id, MachineHour.start, MachineHour.busy_bot_seconds
                ).where(
                    MachineHour.environment_id == environment_id,
                    col(MachineHour.start) >= cell_start,
                    col(MachineHour.start) < end,
                )
            )
        ).all()
    periods = _periods(rows, samples, start, count, bucket)
    cells = _cells(cell_start, end, cell)
    busy: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(cells))
    for machine_id, hour, seconds in hours:
        busy[machine_id][_index(cell_start, hour, cell)] += seconds
    visible = [m for m in machines if machine_levels.get(m.id) is not None]
    return Trends(
        environment=environment,
        bucket=bucket,
        start=start,
        end=end,
        periods=periods,
        cells=cells,
        cell=cell,
        machines=_busiest(
            [_share(m.id, m.name, [m], busy, cells, cell, len(cells)) for m in visible],
            listed,
        ),
        groups=_busiest(
            [
                _share(
                    g.id,
                    g.name,
                    [m for m in machines if m.group_id == g.id],
                    busy,
                    cells,
                    cell,
                    len(cells),
                )
                for g in groups
                if group_levels.get(g.id) is not None
            ],
            listed,
        ),
    )


def _index(first: datetime, at: datetime, bucket: StatisticsBucket) -> int:
    """The bucket ``at`` falls in, counting from ``first`` (aligned): UTC minutes, hours and
    days are whole multiples of their length since the epoch."""
    return int((at.timestamp() - first.timestamp()) // _LENGTH[bucket].total_seconds())


def _cells(start: datetime, end: datetime, cell: StatisticsBucket) -> list[datetime]:
    cells = []
    at = start
    while at < end:
        cells.append(at)
        at += _LENGTH[cell]
    return cells


def _share(
    ident: str,
    name: str,
    members: list[Machine],
    busy: dict[str, list[float]],
    cells: list[datetime],
    cell: StatisticsBucket,
    count: int,
) -> Utilisation:
    bots = sum(max(1, m.unattended_bots) for m in members)
    seconds = _LENGTH[cell].total_seconds()
    totals = [0.0] * count
    for member in members:
        for i, value in enumerate(busy.get(member.id, ())):
            totals[i] += value
    shares = [min(1.0, value / (bots * seconds)) if bots else 0.0 for value in totals]
    return Utilisation(
        id=ident, name=name, bots=sum(m.unattended_bots for m in members), busy_share=shares
    )


def _busiest(found: list[Utilisation], listed: int) -> list[Utilisation]:
    found.sort(key=lambda u: (-sum(u.busy_share), u.name, u.id))
    return found[:listed]


def _periods(
    rows: Sequence[FleetRollup],
    samples: Sequence[tuple[datetime, int]],
    start: datetime,
    count: int,
    bucket: StatisticsBucket,
) -> list[Period]:
    grouped: list[list[FleetRollup]] = [[] for _ in range(count)]
    for row in rows:
        grouped[_index(start, row.start, bucket)].append(row)
    sampled = [0] * count
    for at, times in samples:
        sampled[_index(start, at, bucket)] += times
    periods = []
    for i, members in enumerate(grouped):
        begins = start + i * _LENGTH[bucket]
        counts = {name: sum(getattr(r, name) for r in members) for name in _COUNTS}
        histogram = [sum(getattr(r, column) for r in members) for column in WAIT_COLUMNS]
        n = sampled[i]

        def mean(name: str, n: int = n, members: list[FleetRollup] = members) -> float | None:
            return sum(getattr(r, name) for r in members) / n if n else None

        def peak(name: str, n: int = n, members: list[FleetRollup] = members) -> int | None:
            return max((getattr(r, name) for r in members), default=0) if n else None

        started = counts["runs_started"]
        periods.append(
            Period(
                start=begins,
                end=begins + _LENGTH[bucket],
                **counts,
                wait_p50=percentile(histogram, 0.5),
                wait_p90=percentile(histogram, 0.9),
                wait_p99=percentile(histogram, 0.99),
                wait_mean=sum(r.wait_seconds_sum for r in members) / started if started else None,
                queued_mean=mean("queued_sum"),
                queued_peak=peak("queued_peak"),
                running_mean=mean("running_sum"),
                running_peak=peak("running_peak"),
                connected_mean=mean("connected_sum"),
                busy_bot_seconds=sum(r.busy_bot_seconds for r in members),
            )
        )
    return periods
