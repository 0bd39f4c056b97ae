"""`fleetStatistics` (docs/api.md, "Fleet statistics"): an environment's trends read from rollups
that each fold adds the time since the last one to. The clock stands still unless a test moves
it, the dispatcher is driven by hand, and `fold` is called where the dispatcher's loop would."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once, sweep_once
from domain.kernel.clock import ManualClock
from domain.statistics import rollups
from domain.statistics.trends import percentile
from tests.graphql import RegisteredMachine
from tests.runs_given import Runs, Target

pytestmark = pytest.mark.asyncio

STATISTICS = """
query($env: ID!, $from: DateTime!, $to: DateTime!, $bucket: StatisticsBucket!, $machines: Int) {
  fleetStatistics(environmentId: $env, from: $from, to: $to, bucket: $bucket, machines: $machines) {
    __typename
    ... on UserError { code message }
    ... on ValidationError { field }
    ... on FleetStatistics {
      from to bucket utilisationBucket utilisationStarts
      buckets {
        start end runsStarted runsSucceeded runsFailed runsTimedOut runsCancelled
        waitSecondsP50 waitSecondsP90 waitSecondsMean queueDepthMean queueDepthPeak
        runningMean runningPeak machinesConnectedMean busyBotSeconds
      }
      machines { id name unattendedBots busyShare }
      groups { id name busyShare }
    }
  }
}"""

START = "2026-01-01T00:00:00+00:00"


class Story:
    def __init__(self, runs: Runs, domain: DomainContext, clock: ManualClock) -> None:
        self.runs = runs
        self.domain = domain
        self.clock = clock

    async def later(self, seconds: float, *machines: RegisteredMachine) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        for machine in machines:
            await self.runs.heartbeat(machine, {})  # stays connected (R9)

    async def fold(self) -> None:
        await rollups.fold(self.domain)

    async def start(self, machine: RegisteredMachine) -> list[tuple[str, int]]:
        started = []
        for dispatched in await dispatch_once(self.domain):
            confirmed = await self.runs.confirm(machine, dispatched.run_id, dispatched.attempt)
            assert confirmed["__typename"] == "FlowRunPayload", confirmed
            started.append((dispatched.run_id, dispatched.attempt))
        return started

    async def statistics(self, token: str | None = None, **variables: object) -> dict:
        given = {"env": self.runs.fleet.environment_id, "from": START, "to": START}
        given |= {"bucket": "MINUTE", **variables}
        data = await self.runs.api.data(STATISTICS, given, token=token or self.runs.admin)
        return data["fleetStatistics"]


@pytest.fixture
async def story(runs: Runs, domain: DomainContext, clock: ManualClock) -> Story:
    told = Story(runs, domain, clock)
    await told.fold()  # the first fold: the rollups start now
    return told


async def busy_machine(runs: Runs) -> tuple[RegisteredMachine, Target]:
    await runs.capacity(2)
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner, bots=1)
    return machine, await runs.target(owner, machine=machine)


async def test_each_minute_counts_the_runs_that_started_and_ended_in_it(
    story: Story, runs: Runs
) -> None:
    machine, target = await busy_machine(runs)
    first = await runs.trigger(target)
    await story.later(30, machine)  # it waited 30 s
    ((run_id, attempt),) = await story.start(machine)
    assert run_id == first
    await story.later(40, machine)  # 00:01:10: it ran 40 s
    assert (await runs.finish(machine, run_id, attempt))["__typename"] == "FlowRunPayload"
    second = await runs.trigger(target)
    ((_, attempt),) = await story.start(machine)
    await story.later(5, machine)
    await runs.finish(machine, second, attempt, outcome="FAILED", errorCode="E1")
    await story.later(60, machine)
    await story.fold()

    answer = await story.statistics(to="2026-01-01T00:03:00+00:00")
    assert answer["__typename"] == "FleetStatistics", answer
    first_minute, second_minute, third_minute = answer["buckets"]
    assert first_minute["runsStarted"] == 1 and first_minute["runsSucceeded"] == 0
    assert first_minute["waitSecondsMean"] == 30
    assert second_minute["runsStarted"] == 1  # the second started at once
    assert (second_minute["runsSucceeded"], second_minute["runsFailed"]) == (1, 1)
    assert second_minute["waitSecondsMean"] == 0
    assert third_minute["runsStarted"] == 0
    # Busy: 30 s of the first minute, 10 + 5 s of the second; nothing after.
    assert [b["busyBotSeconds"] for b in answer["buckets"]] == [30, 15, 0]


async def test_a_run_that_times_out_in_the_queue_counts_as_timed_out(
    story: Story, runs: Runs
) -> None:
    """R27: the sweep ends it TIMED_OUT; the fold counts it in the minute it ended."""
    await runs.capacity(1, max_queue_seconds=60)
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner, bots=1, connected=False)
    await runs.trigger(await runs.target(owner, machine=machine))
    await story.later(90)
    await sweep_once(story.domain)
    await story.later(30)
    await story.fold()
    (_, minute) = (await story.statistics(to="2026-01-01T00:02:00+00:00"))["buckets"]
    assert minute["runsTimedOut"] == 1 and minute["runsStarted"] == 0


async def test_gauges_are_the_mean_and_peak_of_what_each_fold_read(
    story: Story, runs: Runs
) -> None:
    machine, target = await busy_machine(runs)
    for _ in range(3):
        await runs.trigger(target)
    await story.later(10, machine)
    await story.fold()  # 3 queued, none running, 1 connected
    await story.start(machine)
    await story.later(10, machine)
    await story.fold()  # 2 queued, 1 running
    (minute,) = (await story.statistics(to="2026-01-01T00:01:00+00:00"))["buckets"]
    assert (minute["queueDepthMean"], minute["queueDepthPeak"]) == (2.5, 3)
    assert (minute["runningMean"], minute["runningPeak"]) == (0.5, 1)
    assert minute["machinesConnectedMean"] == 1


async def test_a_bucket_without_any_reading_says_so_with_nulls(story: Story, runs: Runs) -> None:
    """No fold ran then (no server): its gauges are unknown, not zero."""
    (minute,) = (await story.statistics(to="2026-01-01T00:01:00+00:00"))["buckets"]
    assert minute["queueDepthMean"] is None and minute["machinesConnectedMean"] is None
    assert minute["runsStarted"] == 0


async def test_every_interval_is_folded_once_whatever_the_number_of_folds(
    story: Story, runs: Runs
) -> None:
    """Any number of instances fold at once: each interval is taken by one of them."""
    machine, target = await busy_machine(runs)
    await runs.trigger(target)
    await story.later(5, machine)
    await story.start(machine)
    await story.later(5, machine)
    await story.fold()
    await story.fold()  # nothing new since
    (minute,) = (await story.statistics(to="2026-01-01T00:01:00+00:00"))["buckets"]
    assert minute["runsStarted"] == 1
    assert minute["busyBotSeconds"] == 3  # started at 00:00:05, folded up to 00:00:08 (lag)


async def test_hour_and_day_buckets_add_up_the_same_runs(story: Story, runs: Runs) -> None:
    machine, target = await busy_machine(runs)
    for _ in range(2):
        run_id = await runs.trigger(target)
        ((run_id, attempt),) = await story.start(machine)
        await story.later(1790, machine)
        await runs.finish(machine, run_id, attempt)
        await story.fold()
    await story.later(30, machine)
    await story.fold()
    hours = await story.statistics(to="2026-01-01T02:00:00+00:00", bucket="HOUR")
    assert [b["runsSucceeded"] for b in hours["buckets"]] == [2, 0]
    assert hours["buckets"][0]["busyBotSeconds"] == 2 * 1790
    day = await story.statistics(to="2026-01-01T01:00:00+00:00", bucket="DAY")
    (only,) = day["buckets"]
    assert (only["start"], only["end"]) == (START, "2026-01-02T00:00:00+00:00")
    assert only["runsStarted"] == 2


async def test_utilisation_is_each_machines_busy_bot_share_per_hour(
    story: Story, runs: Runs
) -> None:
    await runs.capacity(4)
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    busy = await runs.machine(owner, bots=2)
    idle = await runs.machine(owner, bots=1)
    group_id = await runs.group(owner, busy, idle)
    target = await runs.target(owner, machine=busy)
    run_id = await runs.trigger(target)
    ((run_id, attempt),) = await story.start(busy)
    await story.later(3600, busy, idle)  # one of its two bots, the whole hour
    await runs.finish(busy, run_id, attempt)
    await story.later(10)
    await story.fold()
    answer = await story.statistics(to="2026-01-01T01:00:00+00:00", bucket="HOUR")
    assert answer["utilisationBucket"] == "HOUR"
    assert answer["utilisationStarts"] == [START]
    by_id = {m["id"]: m for m in answer["machines"]}
    assert by_id[busy.id]["busyShare"] == [0.5] and by_id[busy.id]["unattendedBots"] == 2
    assert by_id[idle.id]["busyShare"] == [0.0]
    assert answer["machines"][0]["id"] == busy.id  # busiest first
    (group,) = answer["groups"]
    assert group["id"] == group_id and group["busyShare"] == [pytest.approx(1 / 3)]
    # MINUTE buckets: the heat map's cells are still hours.
    minutes = await story.statistics(to="2026-01-01T00:02:00+00:00")
    assert minutes["utilisationBucket"] == "HOUR" and len(minutes["buckets"]) == 2


async def test_utilisation_lists_only_the_machines_the_caller_may_see(
    story: Story, runs: Runs
) -> None:
    """R12/R38: a maker sees the totals of their environment and their own machines only."""
    await runs.capacity(2)
    mine_owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    other_owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    mine = await runs.machine(mine_owner, bots=1)
    await runs.machine(other_owner, bots=1)
    answer = await story.statistics(token=mine_owner.token, to="2026-01-01T00:01:00+00:00")
    assert [m["id"] for m in answer["machines"]] == [mine.id]
    assert len((await story.statistics(to="2026-01-01T00:01:00+00:00"))["machines"]) == 2


async def test_an_environment_the_caller_cannot_see_is_not_found(story: Story, runs: Runs) -> None:
    """R38: answered exactly as an id that does not exist."""
    outsider = await runs.fleet.person()
    other = await runs.fleet.environment("Elsewhere")
    nobody = "00000000-0000-0000-0000-000000000000"
    hour = "2026-01-01T01:00:00+00:00"
    hidden = await story.statistics(token=outsider.token, env=other, to=hour)
    missing = await story.statistics(token=outsider.token, env=nobody, to=hour)
    assert hidden["__typename"] == missing["__typename"] == "NotFoundError"
    assert hidden["code"] == missing["code"] == "NOT_FOUND"
    assert hidden["message"].replace(other, "?") == missing["message"].replace(nobody, "?")


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"to": "2025-12-31T00:00:00+00:00"}, "to"),
        ({"to": "9999-12-31T23:59:30+00:00", "bucket": "DAY"}, "to"),
        ({"to": "2026-01-02T00:00:00+00:00"}, "bucket"),  # 1440 minutes
        ({"to": "2026-01-01T01:00:00+00:00", "machines": 501}, "machines"),
        ({"env": "not an id", "to": "2026-01-01T01:00:00+00:00"}, "environmentId"),
    ],
)
async def test_bad_input_is_a_validation_error_naming_the_field(
    story: Story, variables: dict, field: str
) -> None:
    answer = await story.statistics(**variables)
    assert answer["__typename"] == "ValidationError", answer
    assert answer["field"] == field


async def test_the_range_is_aligned_to_whole_buckets(story: Story) -> None:
    answer = await story.statistics(
        **{"from": "2026-01-01T00:10:30+00:00", "to": "2026-01-01T02:05:00+00:00"}, bucket="HOUR"
    )
    assert (answer["from"], answer["to"]) == (START, "2026-01-01T03:00:00+00:00")
    assert len(answer["buckets"]) == 3


async def test_percentiles_interpolate_within_the_histograms_buckets() -> None:
    # 10 waits within 1 s, 10 between 1 and 5 s.
    histogram = [10, 10] + [0] * 10
    assert percentile(histogram, 0.5) == 1.0
    assert percentile(histogram, 0.75) == 3.0
    assert percentile([0] * 12, 0.5) is None
    assert percentile([0] * 11 + [4], 0.99) == 7200.0  # beyond the last bound
