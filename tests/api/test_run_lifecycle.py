"""The run status machine's refusals (R28), R27's limits and R25's queue-only changes, through the
API: each refused operation is read back to show it changed nothing. Time only via the clock.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once, sweep_once
from domain.kernel.clock import ManualClock
from tests.graphql import Fleet, Person, RegisteredMachine
from tests.runs_given import (
    CANCEL_RUN,
    CHANGE_RUN_PRIORITY,
    MOVE_RUN_TO_TOP,
    UPDATE_ENVIRONMENT,
    Runs,
    Target,
)

pytestmark = pytest.mark.asyncio


async def ready(
    fleet: Fleet, runs: Runs, bots: int = 1
) -> tuple[Person, RegisteredMachine, Target]:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(bots)
    machine = await runs.machine(owner, bots=bots)
    return owner, machine, await runs.target(owner, machine=machine)


def unchanged(run: dict) -> tuple:
    return (
        run["status"],
        run["attempt"],
        run["machine"],
        run["startedAt"],
        run["endedAt"],
        run["errorCode"],
    )


@pytest.mark.rule("R28")
@pytest.mark.parametrize("outcome", ["CANCELLED", "TIMED_OUT", "RUNNING", "QUEUED"])
async def test_r28_a_runtime_reports_only_succeeded_or_failed(
    fleet: Fleet, runs: Runs, domain: DomainContext, outcome: str
) -> None:
    _, machine, target = await ready(fleet, runs)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)
    await runs.confirm(machine, run_id, 1)
    before = await runs.run(run_id)

    refused = await runs.finish(machine, run_id, 1, outcome=outcome)
    after = await runs.run(run_id)

    assert refused["__typename"] == "ValidationError", refused
    assert refused["code"] == "INVALID_VALUE"
    assert unchanged(after) == unchanged(before)
    assert after["status"] == "RUNNING"


@pytest.mark.rule("R28")
async def test_r28_repeated_confirmations_and_reports_change_nothing_more(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    _, machine, target = await ready(fleet, runs)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)
    clock.advance(timedelta(seconds=3))
    first_start = await runs.confirm(machine, run_id, 1)
    clock.advance(timedelta(seconds=3))
    second_start = await runs.confirm(machine, run_id, 1)
    clock.advance(timedelta(seconds=10))
    first_end = await runs.finish(machine, run_id, 1, outcome="FAILED", errorCode="OOPS")
    clock.advance(timedelta(seconds=10))
    second_end = await runs.finish(machine, run_id, 1, outcome="FAILED", errorCode="OOPS")
    other_end = await runs.finish(machine, run_id, 1, outcome="SUCCEEDED")
    run = await runs.run(run_id)

    assert first_start["run"] == second_start["run"]  # a lost answer may be asked again
    assert first_end["run"] == second_end["run"]
    assert (other_end["__typename"], other_end["code"]) == ("ConflictError", "RUN_FINISHED")
    assert (run["status"], run["errorCode"], run["runSeconds"]) == ("FAILED", "OOPS", 13.0)
    assert run["waitSeconds"] == 3.0


@pytest.mark.rule("R28")
async def test_r28_only_the_machine_a_run_was_dispatched_to_may_start_or_finish_it(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner, machine, target = await ready(fleet, runs, bots=1)
    await runs.capacity(2)
    other = await runs.machine(owner, bots=1)
    dispatched = await runs.trigger(target)
    await dispatch_once(domain)
    before = await runs.run(dispatched)

    refused = [
        await runs.confirm(other, dispatched, 1),
        await runs.finish(other, dispatched, 1),
        await runs.confirm(machine, dispatched, 2),  # an attempt that was never given
        await runs.finish(machine, dispatched, 0),  # no attempt at all: a bad value
    ]
    after = await runs.run(dispatched)

    assert all(r["__typename"] != "FlowRunPayload" for r in refused), refused
    assert {r["code"] for r in refused} <= {"STALE_ATTEMPT", "NOT_FOUND", "INVALID_VALUE"}
    assert unchanged(after) == unchanged(before)
    assert after["status"] == "DISPATCHED"
    assert await runs.assignments(other) == []


@pytest.mark.rule("R28")
async def test_r28_a_queued_run_cannot_be_started_and_a_cancelled_one_is_not_started(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner, machine, target = await ready(fleet, runs, bots=1)
    dispatched = await runs.trigger(target)
    clock.advance(timedelta(seconds=1))
    queued = await runs.trigger(target)  # the only bot is taken
    await dispatch_once(domain)
    cancelled = await runs.change(CANCEL_RUN, dispatched, token=owner.token)

    refused = [
        await runs.confirm(machine, queued, 2),
        await runs.confirm(machine, queued, 1),
        await runs.confirm(machine, dispatched, 1),
        await runs.finish(machine, dispatched, 1),
    ]
    queued_after = await runs.run(queued)
    cancelled_after = await runs.run(dispatched)

    assert cancelled["run"]["status"] == "CANCELLED"
    assert [r["__typename"] for r in refused] == ["ConflictError"] * 4, refused
    assert [r["code"] for r in refused] == [
        "STALE_ATTEMPT",
        "STALE_ATTEMPT",
        "RUN_FINISHED",
        "RUN_FINISHED",
    ]
    assert (queued_after["status"], queued_after["attempt"]) == ("QUEUED", 0)
    assert (cancelled_after["status"], cancelled_after["startedAt"]) == ("CANCELLED", None)
    assert cancelled_after["errorCode"] == "CANCELLED_BY_USER"


@pytest.mark.rule("R28")
@pytest.mark.rule("R25")
async def test_r25_only_a_queued_run_can_be_moved_reprioritised_or_cancelled_again(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner, machine, target = await ready(fleet, runs, bots=1)
    running = await runs.trigger(target)
    await dispatch_once(domain)
    await runs.confirm(machine, running, 1)
    finished = await runs.trigger(target)
    await runs.finish(machine, running, 1)
    await dispatch_once(domain)
    await runs.confirm(machine, finished, 1)
    await runs.finish(machine, finished, 1)
    still_running = await runs.trigger(target)
    await dispatch_once(domain)
    await runs.confirm(machine, still_running, 1)
    before = {i: await runs.run(i) for i in (finished, still_running)}

    refused = [
        await runs.change(MOVE_RUN_TO_TOP, still_running, token=owner.token),
        await runs.change(CHANGE_RUN_PRIORITY, still_running, token=owner.token, priority="HIGH"),
        await runs.change(MOVE_RUN_TO_TOP, finished, token=owner.token),
        await runs.change(CANCEL_RUN, finished, token=owner.token),
    ]
    after = {i: await runs.run(i) for i in (finished, still_running)}

    assert [r["code"] for r in refused] == [
        "RUN_NOT_QUEUED",
        "RUN_NOT_QUEUED",
        "RUN_NOT_QUEUED",
        "RUN_FINISHED",
    ], refused
    for run_id, run in after.items():
        assert unchanged(run) == unchanged(before[run_id])
        assert run["priority"] == "NORMAL"


@pytest.mark.rule("R27")
async def test_r27_run_time_is_unlimited_only_waiting_in_the_queue_times_out(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    _, machine, target = await ready(fleet, runs, bots=1)
    await runs.capacity(1, max_queue_seconds=60)
    running = await runs.trigger(target)
    clock.advance(timedelta(seconds=1))
    waiting = await runs.trigger(target)  # behind it: no free bot
    await dispatch_once(domain)
    await runs.confirm(machine, running, 1)

    timed_out = []
    for _ in range(4):  # two more minutes, the machine heartbeating all along
        clock.advance(timedelta(seconds=30))
        await runs.heartbeat(machine, {})
        timed_out += (await sweep_once(domain)).timed_out

    assert timed_out == [waiting]
    assert (await runs.run(running))["status"] == "RUNNING"
    finished = await runs.finish(machine, running, 1)
    assert finished["run"]["status"] == "SUCCEEDED"
    assert finished["run"]["runSeconds"] == 120.0  # from its start, a second after triggering


@pytest.mark.rule("R27")
@pytest.mark.parametrize("seconds", [0, -5, 7 * 24 * 3600 + 1])
async def test_r27_a_max_queue_time_out_of_range_is_refused(
    fleet: Fleet, runs: Runs, seconds: int
) -> None:
    before = await fleet.api.data(
        "{ environments { id maxQueueSeconds } }", token=fleet.admin_token
    )

    refused = await fleet.api.data(
        UPDATE_ENVIRONMENT,
        {"input": {"id": fleet.environment_id, "maxQueueSeconds": seconds}},
        token=fleet.admin_token,
    )
    after = await fleet.api.data("{ environments { id maxQueueSeconds } }", token=fleet.admin_token)

    assert refused["updateEnvironment"]["__typename"] == "ValidationError", refused
    assert after == before
    assert {e["maxQueueSeconds"] for e in after["environments"]} == {12 * 3600}
