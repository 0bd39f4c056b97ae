"""R42: every queued run carries an estimated start (or why none can be given), updated as the
queue moves. The dispatcher is driven by hand (`dispatch_once`) and the clock stands still
unless a test moves it, so every estimate is exact."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.identity.identity import authenticate
from domain.kernel.clock import ManualClock
from domain.kernel.principals import Principal
from domain.realtime import watch
from domain.runs.runs import RunFilter
from tests.graphql import Fleet, RegisteredMachine
from tests.runs_given import UPDATE_ENVIRONMENT, Runs, Target

pytestmark = pytest.mark.asyncio

ESTIMATE = """
query($id: ID!) {
  run(id: $id) { id status queuePosition waitReason estimatedStartAt estimatedStartUnknown }
}"""


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class Queue:
    def __init__(self, runs: Runs, domain: DomainContext, clock: ManualClock) -> None:
        self.runs = runs
        self.domain = domain
        self.clock = clock

    async def estimate(self, run_id: str) -> dict:
        data = await self.runs.api.data(ESTIMATE, {"id": run_id}, token=self.runs.admin)
        return data["run"]

    async def start(self, machine: RegisteredMachine) -> list[str]:
        """One dispatcher pass; the machine confirms what it was given."""
        started = []
        for dispatched in await dispatch_once(self.domain):
            confirmed = await self.runs.confirm(machine, dispatched.run_id, dispatched.attempt)
            assert confirmed["__typename"] == "FlowRunPayload", confirmed
            started.append(dispatched.run_id)
        return started

    async def later(self, machine: RegisteredMachine, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        await self.runs.heartbeat(machine, {})  # stays connected (R9)

    async def run_once(self, machine: RegisteredMachine, target: Target, seconds: float) -> None:
        """A run of the target's flow that takes ``seconds``: its flow's mean starts there."""
        run_id = await self.runs.trigger(target)
        assert await self.start(machine) == [run_id]
        await self.later(machine, seconds)
        assert (await self.runs.finish(machine, run_id, 1))["__typename"] == "FlowRunPayload"


@pytest.fixture
async def queue(runs: Runs, domain: DomainContext, clock: ManualClock) -> Queue:
    await runs.capacity(10)
    return Queue(runs, domain, clock)


async def one_bot(runs: Runs) -> tuple[RegisteredMachine, Target]:
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner, bots=1)
    return machine, await runs.target(owner, machine=machine)


@pytest.mark.rule("R42")
async def test_r42_runs_behind_a_busy_bot_start_when_the_runs_ahead_should_end(
    queue: Queue, runs: Runs, clock: ManualClock
) -> None:
    machine, target = await one_bot(runs)
    await queue.run_once(machine, target, 60)  # the flow takes a minute
    running = await runs.trigger(target)
    await queue.start(machine)
    started = clock.now()
    second = await runs.trigger(target)
    await queue.later(machine, 1)  # queued later: behind it (R25), not tied with it
    third = await runs.trigger(target)
    await queue.later(machine, 19)

    assert (await queue.estimate(running))["estimatedStartAt"] is None  # no longer queued
    assert at((await queue.estimate(second))["estimatedStartAt"]) == started + timedelta(seconds=60)
    assert at((await queue.estimate(third))["estimatedStartAt"]) == started + timedelta(seconds=120)


@pytest.mark.rule("R42")
async def test_r42_the_estimate_follows_the_flows_recent_run_lengths(
    queue: Queue, runs: Runs, clock: ManualClock
) -> None:
    machine, target = await one_bot(runs)
    await queue.run_once(machine, target, 100)
    await queue.run_once(machine, target, 50)  # the mean moves a fifth of the way: 90 s
    running = await runs.trigger(target)
    await queue.start(machine)
    started = clock.now()
    waiting = await runs.trigger(target)

    estimate = await queue.estimate(waiting)
    assert running != waiting
    assert at(estimate["estimatedStartAt"]) == started + timedelta(seconds=90)
    assert estimate["estimatedStartUnknown"] is None


@pytest.mark.rule("R42")
async def test_r42_a_run_that_can_start_now_is_estimated_now_without_history(
    queue: Queue, runs: Runs, clock: ManualClock
) -> None:
    machine, target = await one_bot(runs)
    run_id = await runs.trigger(target)

    estimate = await queue.estimate(run_id)
    assert at(estimate["estimatedStartAt"]) == clock.now()
    assert await queue.start(machine) == [run_id]


@pytest.mark.rule("R42")
async def test_r42_behind_a_flow_that_never_ended_there_is_no_history_to_go_by(
    queue: Queue, runs: Runs
) -> None:
    machine, target = await one_bot(runs)
    await runs.trigger(target)
    await queue.start(machine)
    waiting = await runs.trigger(target)

    estimate = await queue.estimate(waiting)
    assert (estimate["estimatedStartAt"], estimate["estimatedStartUnknown"]) == (
        None,
        "NO_RUN_HISTORY",
    )


@pytest.mark.rule("R42")
async def test_r42_a_flow_without_history_goes_by_the_environments_typical_run(
    queue: Queue, runs: Runs, clock: ManualClock
) -> None:
    machine, known = await one_bot(runs)
    await queue.run_once(machine, known, 40)
    other = Target(
        owner=known.owner,
        connection_id=known.connection_id,
        flow_id=await runs.flow(known.owner),
        username=known.username,
        machine=machine,
    )
    await runs.trigger(other)
    await queue.start(machine)
    started = clock.now()
    waiting = await runs.trigger(known)

    assert at((await queue.estimate(waiting))["estimatedStartAt"]) == started + timedelta(
        seconds=40
    )


@pytest.mark.rule("R42")
async def test_r42_nobody_can_tell_when_an_offline_machine_or_maintenance_ends(
    queue: Queue, runs: Runs
) -> None:
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    offline = await runs.machine(owner, bots=1, connected=False)
    servicing = await runs.machine(owner, bots=1)
    await runs.maintenance(servicing.id, True)
    waiting_offline = await runs.trigger(await runs.target(owner, machine=offline))
    waiting_servicing = await runs.trigger(await runs.target(owner, machine=servicing))

    for run_id, reason in (
        (waiting_offline, "MACHINE_OFFLINE"),
        (waiting_servicing, "MAINTENANCE"),
    ):
        estimate = await queue.estimate(run_id)
        assert estimate["waitReason"] == reason
        assert (estimate["estimatedStartAt"], estimate["estimatedStartUnknown"]) == (
            None,
            "NO_USABLE_MACHINE",
        )


@pytest.mark.rule("R42")
async def test_r42_in_a_group_a_run_takes_the_bot_that_frees_first(
    queue: Queue, runs: Runs, clock: ManualClock
) -> None:
    owner = await runs.fleet.person("ENVIRONMENT_MAKER")
    first = await runs.machine(owner, bots=1)
    second = await runs.machine(owner, bots=1)
    group_id = await runs.group(owner, first, second)
    target = await runs.target(owner, group_id=group_id)
    run_id = await runs.trigger(target)
    (dispatched,) = await dispatch_once(queue.domain)
    machine = first if dispatched.machine_id == first.id else second
    await runs.confirm(machine, run_id, dispatched.attempt)
    await queue.later(machine, 30)
    await runs.finish(machine, run_id, dispatched.attempt)  # the flow: 30 s
    await runs.heartbeat(first, {})
    await runs.heartbeat(second, {})
    for _ in range(2):
        await runs.trigger(target)
    begun = [d for d in await dispatch_once(queue.domain)]
    for d in begun:
        await runs.confirm(first if d.machine_id == first.id else second, d.run_id, d.attempt)
    started = clock.now()

    async def queued_later(target: Target) -> str:
        clock.advance(timedelta(seconds=1))  # queue order by time (R25), not by id
        return await runs.trigger(target)

    third, fourth, fifth = [await queued_later(target) for _ in range(3)]

    assert len(begun) == 2
    estimates = [at((await queue.estimate(r))["estimatedStartAt"]) for r in (third, fourth, fifth)]
    assert estimates == [
        started + timedelta(seconds=30),
        started + timedelta(seconds=30),
        started + timedelta(seconds=60),
    ]


@pytest.mark.rule("R42")
async def test_r42_subscribers_get_the_new_estimate_when_the_queue_moves(
    queue: Queue, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    machine, target = await one_bot(runs)
    await queue.run_once(machine, target, 60)
    first = await runs.trigger(target)
    await queue.start(machine)
    waiting = await runs.trigger(target)
    principal = await authenticate(domain, target.owner.token)

    async def who() -> Principal:
        return principal

    stream = watch.run_updates(domain, who, run_id=waiting, flt=RunFilter())
    try:
        snapshot = await asyncio.wait_for(anext(stream), 10)
        assert [r.id for r in snapshot.items] == [waiting]
        before = (await queue.estimate(waiting))["estimatedStartAt"]
        await queue.later(machine, 10)
        await runs.finish(machine, first, 1)  # early: the bot frees now, not in 50 s
        update = await asyncio.wait_for(anext(stream), 10)
    finally:
        await stream.aclose()

    assert [r.id for r in update.items] == [waiting]  # pushed, though the run itself is unchanged
    assert at(before) == clock.now() + timedelta(seconds=50)
    assert at((await queue.estimate(waiting))["estimatedStartAt"]) == clock.now()


@pytest.mark.rule("R42")
@pytest.mark.rule("R40")
async def test_r42_a_retry_is_estimated_to_start_when_its_delay_ends(
    queue: Queue, runs: Runs, fleet: Fleet, clock: ManualClock
) -> None:
    policy = {"maxAttempts": 2, "errorCodes": ["FLAKY"], "delaySeconds": 90}
    data = await fleet.api.data(
        UPDATE_ENVIRONMENT,
        {"input": {"id": fleet.environment_id, "retryPolicy": policy}},
        token=fleet.admin_token,
    )
    assert data["updateEnvironment"]["__typename"] == "EnvironmentPayload", data
    machine, target = await one_bot(runs)
    failing = await runs.trigger(target)
    await queue.start(machine)
    await queue.later(machine, 5)
    await runs.finish(machine, failing, 1, outcome="FAILED", errorCode="FLAKY")
    ended = clock.now()
    (retry,) = [e["run"]["id"] for e in await runs.machine_queue(machine.id)]

    estimate = await queue.estimate(retry)
    assert estimate["waitReason"] == "RETRY_DELAY"
    assert at(estimate["estimatedStartAt"]) == ended + timedelta(seconds=90)
