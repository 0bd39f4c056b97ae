"""`fleetStatistics`: an environment's trends, read from the rollups (domain/statistics)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.errors import UserErrors, typed_errors
from api.fleet.environments import EnvironmentType
from domain.statistics import trends
from domain.statistics.trends import StatisticsBucket

StatisticsBucketEnum = strawberry.enum(
    StatisticsBucket, name="StatisticsBucket", description="How long each statistics bucket is."
)


@strawberry.type(
    description="One bucket of an environment's trends. Gauges (queue depth, running runs, "
    "machines connected) are null where the server took no reading (it was not running)."
)
class StatisticsPeriod:
    start: datetime
    end: datetime
    runs_started: int
    runs_succeeded: int
    runs_failed: int
    runs_timed_out: int
    runs_cancelled: int
    wait_seconds_p50: float | None = strawberry.field(
        description="Queued to started, of the runs that started in the bucket (from a "
        "histogram: exact to its bucket bounds)."
    )
    wait_seconds_p90: float | None
    wait_seconds_p99: float | None
    wait_seconds_mean: float | None
    queue_depth_mean: float | None = strawberry.field(description="Runs queued, on average.")
    queue_depth_peak: int | None
    running_mean: float | None = strawberry.field(description="Runs running, on average.")
    running_peak: int | None
    machines_connected_mean: float | None
    busy_bot_seconds: float = strawberry.field(description="Bot-seconds spent running runs.")

    @classmethod
    def of(cls, p: trends.Period) -> StatisticsPeriod:
        return cls(
            start=p.start,
            end=p.end,
            runs_started=p.runs_started,
            runs_succeeded=p.runs_succeeded,
            runs_failed=p.runs_failed,
            runs_timed_out=p.runs_timed_out,
            runs_cancelled=p.runs_cancelled,
            wait_seconds_p50=p.wait_p50,
            wait_seconds_p90=p.wait_p90,
            wait_seconds_p99=p.wait_p99,
            wait_seconds_mean=p.wait_mean,
            queue_depth_mean=p.queued_mean,
            queue_depth_peak=p.queued_peak,
            running_mean=p.running_mean,
            running_peak=p.running_peak,
            machines_connected_mean=p.connected_mean,
            busy_bot_seconds=p.busy_bot_seconds,
        )


@strawberry.type(
    description="A machine's or group's busy-bot share per utilisation cell: bot-seconds spent "
    "running runs over its unattended bots (at least one) times the cell's length, 0 to 1."
)
class Utilisation:
    id: strawberry.ID
    name: str
    unattended_bots: int
    busy_share: list[float]

    @classmethod
    def of(cls, u: trends.Utilisation) -> Utilisation:
        return cls(
            id=strawberry.ID(u.id),
            name=u.name,
            unattended_bots=u.bots,
            busy_share=u.busy_share,
        )


@strawberry.type(description="An environment's trends over a time range.")
class FleetStatistics:
    environment: EnvironmentType
    bucket: StatisticsBucket
    from_: datetime = strawberry.field(name="from", description="The range's start, aligned.")
    to: datetime = strawberry.field(description="The range's end (excluded), aligned.")
    buckets: list[StatisticsPeriod]
    utilisation_bucket: StatisticsBucket = strawberry.field(
        description="The utilisation cells' length: the bucket, or an hour for MINUTE."
    )
    utilisation_starts: list[datetime]
    machines: list[Utilisation] = strawberry.field(
        description="The machines the caller may see, busiest first."
    )
    groups: list[Utilisation] = strawberry.field(
        description="The groups the caller may see (their current machines), busiest first."
    )


FleetStatisticsResult = Annotated[
    FleetStatistics | UserErrors, strawberry.union("FleetStatisticsResult")
]


@strawberry.type
class StatisticsQuery:
    @strawberry.field(
        description="An environment's trends from its rollups: runs started and ended, wait "
        "times, queue depth, running runs, machines connected, and machines' and groups' "
        "utilisation. At most 1000 buckets; NOT_FOUND for an environment the caller cannot see."
    )
    @typed_errors
    async def fleet_statistics(
        self,
        info: Info[Context, None],
        environment_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        bucket: StatisticsBucket = StatisticsBucket.HOUR,
        machines: Annotated[
            int,
            strawberry.argument(description="How many machines and groups to list (0-500)."),
        ] = 50,
    ) -> FleetStatisticsResult:
        ctx = info.context
        found = await trends.fleet_statistics(
            ctx.domain, ctx.principal, environment_id, from_, to, bucket, listed=machines
        )
        return FleetStatistics(
            environment=EnvironmentType.from_model(found.environment),
            bucket=found.bucket,
            from_=found.start,
            to=found.end,
            buckets=[StatisticsPeriod.of(p) for p in found.periods],
            utilisation_bucket=found.cell,
            utilisation_starts=found.cells,
            machines=[Utilisation.of(u) for u in found.machines],
            groups=[Utilisation.of(u) for u in found.groups],
        )
