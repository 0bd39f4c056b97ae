"""The dispatcher (R16, R17, R24, R26-R28, R30) and the machine runtime's side of runs (R7, R28).

Most tests drive the dispatcher by hand (`dispatch_once`, `sweep_once`) with the manual clock, so
they are deterministic; one test checks the lifespan's task reacts on its own.
"""

import asyncio
import random
from collections import Counter
from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once, sweep_once
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from domain.store.db import Database
from tests.api.group_steps import ROTATE_KEY
from tests.graphql import Fleet
from tests.runs_given import CANCEL_RUN, COMMANDS, PASSWORD, Runs, live_dispatcher

pytestmark = pytest.mark.asyncio


async def ready_machine(fleet: Fleet, runs: Runs, *, bots: int = 1, capacity: int = 10):
    owner = await fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    await runs.capacity(capacity)
    machine = await runs.machine(owner, bots=bots)
    return owner, machine, await runs.target(owner, machine=machine)


@pytest.mark.rule("R28")
async def test_r28_a_run_goes_queued_dispatched_running_succeeded(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    _, machine, target = await ready_machine(fleet, runs)
    run_id = await runs.trigger(target)

    nothing_yet = await runs.assignments(machine)
    dispatched = await dispatch_once(domain)
    (assignment,) = await runs.assignments(machine)
    started = await runs.confirm(machine, run_id, assignment["attempt"])
    repeated = await runs.confirm(machine, run_id, assignment["attempt"])
    finished = await runs.finish(
        machine,
        run_id,
        assignment["attempt"],
        "FAILED",
        errorCode="FLOW_ERROR",
        errorMessage="the window was not found",
    )
    finished_again = await runs.finish(machine, run_id, assignment["attempt"], "FAILED")

    assert nothing_yet == []
    assert [(d.run_id, d.machine_id, d.attempt) for d in dispatched] == [(run_id, machine.id, 1)]
    assert assignment == {
        "runId": run_id,
        "attempt": 1,
        "flowId": target.flow_id,
        "flowName": assignment["flowName"],
        "mode": "UNATTENDED",
        "priority": "NORMAL",
        "runAs": target.username,
        "username": target.username,
        "password": PASSWORD,
    }
    assert started["run"]["status"] == "RUNNING"
    assert repeated["run"]["status"] == "RUNNING"  # idempotent
    assert finished["run"]["status"] == "FAILED"
    assert finished["run"]["errorCode"] == "FLOW_ERROR"
    assert finished_again["__typename"] == "FlowRunPayload"
    assert await runs.assignments(machine) == []


@pytest.mark.rule("R28")
async def test_r28_runtime_operations_need_the_machine_key(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner, _, target = await ready_machine(fleet, runs)
    other = await runs.machine(owner, bots=0)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)

    as_user = await fleet.api.execute("{ machineAssignments { runId } }", token=owner.token)
    other_confirms = await runs.confirm(other, run_id, 1)

    assert as_user["errors"][0]["extensions"]["code"] == "WRONG_CREDENTIAL_KIND"
    assert (other_confirms["__typename"], other_confirms["code"]) == (
        "ConflictError",
        "STALE_ATTEMPT",
    )
    assert (await runs.run(run_id))["status"] == "DISPATCHED"


@pytest.mark.rule("R24")
async def test_r24_a_bot_carries_one_unattended_run_at_a_time(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    _, machine, target = await ready_machine(fleet, runs, bots=2)
    ids = []
    for _ in range(5):
        clock.advance(timedelta(seconds=1))
        ids.append(await runs.trigger(target))

    first = await dispatch_once(domain)
    second = await dispatch_once(domain)
    await runs.confirm(machine, first[0].run_id, 1)
    await runs.finish(machine, first[0].run_id, 1)
    third = await dispatch_once(domain)

    assert [d.run_id for d in first] == ids[:2]
    assert second == []
    assert [d.run_id for d in third] == [ids[2]]
    assert (await runs.counts(machine.id))["runningCount"] == 2


@pytest.mark.rule("R26")
async def test_r26_unattended_waits_while_its_user_has_a_session_in_any_state(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    _, machine, target = await ready_machine(fleet, runs)
    run_id = await runs.trigger(target)

    blocked = []
    for state in ("ACTIVE", "LOCKED", "DISCONNECTED"):
        await runs.heartbeat(machine, {target.username: state, "someone": "ACTIVE"})
        blocked.append(await dispatch_once(domain))
    await runs.heartbeat(machine, {"someone": "ACTIVE"})
    freed = await dispatch_once(domain)

    assert blocked == [[], [], []]
    assert [d.run_id for d in freed] == [run_id]


@pytest.mark.rule("R26")
async def test_r26_attended_needs_an_active_session_and_one_run_per_session(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    _, machine, target = await ready_machine(fleet, runs, bots=0)
    first = await runs.trigger(target, mode="ATTENDED")
    clock.advance(timedelta(seconds=1))
    second = await runs.trigger(target, mode="ATTENDED")

    await runs.heartbeat(machine, {target.username: "LOCKED"})
    locked = await dispatch_once(domain)
    await runs.heartbeat(machine, {target.username: "ACTIVE"})
    active = await dispatch_once(domain)
    waiting = await runs.run(second)
    await runs.confirm(machine, first, 1)
    await runs.finish(machine, first, 1)
    after_first = await dispatch_once(domain)

    assert locked == []
    assert [d.run_id for d in active] == [first]
    assert waiting["waitReason"] == "SESSION_BUSY"
    assert [d.run_id for d in after_first] == [second]


@pytest.mark.rule("R26")
async def test_r26_a_group_spreads_its_runs_over_its_machines(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(9)
    machines = [await runs.machine(owner, bots=3) for _ in range(3)]
    group_id = await runs.group(owner, *machines)
    target = await runs.target(owner, group_id=group_id)
    for _ in range(6):
        await runs.trigger(target)

    dispatched = await dispatch_once(domain)

    assert len(dispatched) == 6
    assert sorted(Counter(d.machine_id for d in dispatched).values()) == [2, 2, 2]


@pytest.mark.rule("R16")
async def test_r16_maintenance_takes_no_new_runs_and_never_stops_running_ones(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner, machine, target = await ready_machine(fleet, runs, bots=2)
    running = await runs.trigger(target)
    await dispatch_once(domain)
    await runs.confirm(machine, running, 1)
    queued = await runs.trigger(target)

    await runs.maintenance(machine.id, True, token=owner.token)
    during = await dispatch_once(domain)
    waiting = await runs.run(queued)
    still_running = await runs.run(running)
    await runs.finish(machine, running, 1)
    await runs.maintenance(machine.id, False, token=owner.token)
    after = await dispatch_once(domain)

    assert during == []
    assert waiting["waitReason"] == "MAINTENANCE"
    assert still_running["status"] == "RUNNING"
    assert (await runs.run(running))["status"] == "SUCCEEDED"
    assert [d.run_id for d in after] == [queued]


@pytest.mark.rule("R17")
async def test_r17_a_group_run_goes_to_an_active_machine_of_the_group(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(2)
    resting = await runs.machine(owner, bots=1)
    active = await runs.machine(owner, bots=1)
    group_id = await runs.group(owner, resting, active)
    await runs.maintenance(resting.id, True, token=owner.token)
    target = await runs.target(owner, group_id=group_id)
    first = await runs.trigger(target)
    clock.advance(timedelta(seconds=1))
    second = await runs.trigger(target)

    dispatched = await dispatch_once(domain)

    assert [(d.run_id, d.machine_id) for d in dispatched] == [(first, active.id)]
    assert (await runs.run(second))["waitReason"] == "NO_FREE_BOT"
    await runs.group_maintenance(group_id, True)  # R18: the whole group rests
    assert (await runs.run(second))["waitReason"] == "MAINTENANCE"


@pytest.mark.rule("R10")
async def test_r10_a_pass_sees_the_whole_group_of_a_machine_a_run_targets(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    """A pass reads only the machines its queued runs may go to, yet a machine targeted on its
    own is judged with its whole group: the group is in maintenance, but another of its machines
    needs a key action, so the group's maintenance shows off (R10) and the run goes out."""
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(3)
    targeted = await runs.machine(owner, bots=1)
    needs_key = await runs.machine(owner, bots=1)
    elsewhere = await runs.machine(owner, bots=1)  # in no group; nothing is queued for it
    group_id = await runs.group(owner, targeted, needs_key)
    target = await runs.target(owner, machine=targeted)
    await runs.group_maintenance(group_id, True)
    held = await runs.trigger(target)

    assert await dispatch_once(domain) == []
    assert (await runs.run(held))["waitReason"] == "MAINTENANCE"
    rotated = await fleet.api.data(ROTATE_KEY, {"id": needs_key.id}, token=owner.token)
    assert rotated["rotateMachineKey"]["__typename"] == "MachinePayload"
    dispatched = await dispatch_once(domain)

    assert [(d.run_id, d.machine_id) for d in dispatched] == [(held, targeted.id)]
    assert elsewhere.id not in {d.machine_id for d in dispatched}


@pytest.mark.rule("R27")
async def test_r27_a_run_queued_past_the_max_queue_time_times_out(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner, machine, target = await ready_machine(fleet, runs)
    await runs.maintenance(machine.id, True, token=owner.token)  # R17: it stays queued
    old = await runs.trigger(target)
    clock.advance(timedelta(hours=6))
    young = await runs.trigger(target)

    clock.advance(timedelta(hours=6))
    at_limit = await sweep_once(domain)
    clock.advance(timedelta(seconds=1))
    past_limit = await sweep_once(domain)
    run = await runs.run(old)

    assert at_limit.timed_out == []
    assert past_limit.timed_out == [old]
    assert (run["status"], run["errorCode"]) == ("TIMED_OUT", "NO_CANDIDATE_MACHINE")
    assert run["waitSeconds"] == 12 * 3600 + 1
    assert (await runs.run(young))["status"] == "QUEUED"


@pytest.mark.rule("R27")
async def test_r27_the_max_queue_time_is_the_environments(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner, machine, target = await ready_machine(fleet, runs)
    await runs.capacity(10, max_queue_seconds=60)
    await runs.maintenance(machine.id, True, token=owner.token)
    run_id = await runs.trigger(target)

    clock.advance(timedelta(seconds=61))
    result = await sweep_once(domain)

    assert result.timed_out == [run_id]


@pytest.mark.rule("R28")
async def test_r28_an_unconfirmed_dispatch_goes_back_to_its_place_and_stale_reports_are_refused(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    _, machine, target = await ready_machine(fleet, runs)
    first = await runs.trigger(target)
    clock.advance(timedelta(seconds=1))
    second = await runs.trigger(target)
    await dispatch_once(domain)

    clock.advance(timedelta(seconds=59))
    await runs.heartbeat(machine, {})
    too_early = await sweep_once(domain)
    clock.advance(timedelta(seconds=2))
    await runs.heartbeat(machine, {})
    requeued = await sweep_once(domain)
    queue = await runs.machine_queue(machine.id)
    redispatched = await dispatch_once(domain)
    stale = await runs.confirm(machine, first, 1)
    fresh = await runs.confirm(machine, first, 2)

    assert too_early.requeued == []
    assert requeued.requeued == [first]
    assert [e["run"]["id"] for e in queue] == [first, second]  # kept its place
    assert [(d.run_id, d.attempt) for d in redispatched] == [(first, 2)]
    assert (stale["__typename"], stale["code"]) == ("ConflictError", "STALE_ATTEMPT")
    assert fresh["run"]["status"] == "RUNNING"
    assert fresh["run"]["attempt"] == 2


@pytest.mark.rule("R28")
async def test_r28_a_running_run_on_a_machine_silent_past_the_grace_fails_machine_lost(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    _, machine, target = await ready_machine(fleet, runs)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)
    await runs.confirm(machine, run_id, 1)

    # R9 declares it disconnected after 2 minutes; the grace is 5 more.
    clock.advance(timedelta(minutes=7))
    within_grace = await sweep_once(domain)
    clock.advance(timedelta(seconds=1))
    lost = await sweep_once(domain)
    late_report = await runs.finish(machine, run_id, 1)
    run = await runs.run(run_id)

    assert within_grace.lost == []
    assert lost.lost == [run_id]
    assert (run["status"], run["errorCode"]) == ("FAILED", "MACHINE_LOST")
    assert (late_report["__typename"], late_report["code"]) == ("ConflictError", "RUN_FINISHED")


@pytest.mark.rule("R28")
async def test_r28_heartbeats_keep_a_long_run_alive(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    _, machine, target = await ready_machine(fleet, runs)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)
    await runs.confirm(machine, run_id, 1)

    for _ in range(48):  # R27: run time itself is unlimited
        clock.advance(timedelta(minutes=1))
        await runs.heartbeat(machine)
        assert not await sweep_once(domain)

    assert (await runs.run(run_id))["status"] == "RUNNING"


@pytest.mark.rule("R28")
async def test_r28_cancelling_a_running_run_tells_its_machine(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner, machine, target = await ready_machine(fleet, runs)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)
    await runs.confirm(machine, run_id, 1)

    cancelled = await runs.change(CANCEL_RUN, run_id, token=owner.token)
    (command,) = (await fleet.api.data(COMMANDS, token=machine.key))["machineCommands"]
    report = await runs.finish(machine, run_id, 1)
    done = await fleet.api.data(
        "mutation($id: ID!) { completeMachineCommand(id: $id) { __typename } }",
        {"id": command["id"]},
        token=machine.key,
    )

    assert cancelled["run"]["status"] == "CANCELLED"
    assert (command["kind"], command["runId"]) == ("CANCEL_RUN", run_id)
    assert report["code"] == "RUN_FINISHED"
    assert done["completeMachineCommand"]["__typename"] == "MachineCommandPayload"
    assert (await fleet.api.data(COMMANDS, token=machine.key))["machineCommands"] == []
    assert (await runs.counts(machine.id))["runningCount"] == 0


async def test_heartbeat_sessions_are_validated(fleet: Fleet, runs: Runs) -> None:
    _, machine, _ = await ready_machine(fleet, runs)

    twice = await runs.heartbeat(machine, {"robot": "ACTIVE", "ROBOT": "LOCKED"})

    assert (twice["__typename"], twice["code"]) == ("ValidationError", "INVALID_VALUE")


@pytest.mark.rule("R30")
async def test_r30_concurrent_dispatchers_never_dispatch_twice(
    fleet: Fleet, runs: Runs, domain: DomainContext, settings: Settings, clock: ManualClock
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(12)
    machines = [await runs.machine(owner, bots=3) for _ in range(4)]
    group_id = await runs.group(owner, *machines)
    target = await runs.target(owner, group_id=group_id)
    ids = [await runs.trigger(target) for _ in range(30)]
    # A second server instance on the same database: its own engine, bus and sessions.
    other = DomainContext(db=Database(settings.database_url), settings=settings, clock=clock)
    try:
        results = await asyncio.gather(
            *(dispatch_once(domain if i % 2 else other) for i in range(16))
        )
    finally:
        await other.db.dispose()

    claimed = [d for batch in results for d in batch]
    assert len(claimed) == 12
    assert len({d.run_id for d in claimed}) == 12  # never the same run twice
    assert Counter(d.machine_id for d in claimed) == {m.id: 3 for m in machines}
    for machine in machines:
        assert (await runs.counts(machine.id))["runningCount"] == 3
    statuses = Counter([(await runs.run(i))["status"] for i in ids])
    assert statuses == {"DISPATCHED": 12, "QUEUED": 18}
    assert {(await runs.run(d.run_id))["attempt"] for d in claimed} == {1}


async def test_the_lifespan_dispatcher_reacts_at_once(
    settings: Settings, clock: ManualClock, admin_token: str, default_environment_id: str
) -> None:
    """Runs queued, runs finished, heartbeats, maintenance and bot changes wake the dispatcher
    at once (its periodic sweep is set far away, so only events can explain a dispatch)."""
    async with live_dispatcher(settings, clock, admin_token, default_environment_id) as runs:
        owner, machine, target = await ready_machine(runs.fleet, runs, bots=1)
        first = await runs.trigger(target)  # a run queued
        clock.advance(timedelta(seconds=1))
        second = await runs.trigger(target)
        assert await runs.until_status(first, "DISPATCHED") == "DISPATCHED"
        await runs.confirm(machine, first, 1)
        await runs.finish(machine, first, 1)  # a run finished
        assert await runs.until_status(second, "DISPATCHED") == "DISPATCHED"

        clock.advance(timedelta(seconds=1))
        third = await runs.trigger(target)
        assert (await runs.run(third))["waitReason"] == "NO_FREE_BOT"
        await runs.allocate(machine.id, 2)  # a bot allocated
        assert await runs.until_status(third, "DISPATCHED") == "DISPATCHED"

        await runs.maintenance(machine.id, True, token=owner.token)
        await runs.allocate(machine.id, 3)
        fourth = await runs.trigger(target)
        assert (await runs.run(fourth))["waitReason"] == "MAINTENANCE"
        await runs.maintenance(machine.id, False, token=owner.token)  # maintenance ends
        assert await runs.until_status(fourth, "DISPATCHED") == "DISPATCHED"

        silent = await runs.machine(owner, bots=1, connected=False)
        fifth = await runs.trigger(await runs.target(owner, machine=silent))
        assert (await runs.run(fifth))["waitReason"] == "MACHINE_OFFLINE"
        await runs.heartbeat(silent, {})  # a heartbeat
        assert await runs.until_status(fifth, "DISPATCHED") == "DISPATCHED"


@pytest.mark.rule("R25")
@pytest.mark.rule("R26")
async def test_a_run_with_nothing_ahead_is_dispatched_in_its_trigger_answer(
    settings: Settings, clock: ManualClock, admin_token: str, default_environment_id: str
) -> None:
    """With the dispatcher running, a run that finds nothing queued in its environment and a
    free bot goes to it within its trigger's request: the answer already says DISPATCHED, where
    and at which attempt, and the machine's assignments hold it. A run triggered while another
    waits is answered QUEUED and waits its turn (R25), as does a run with no free bot (R26)."""
    async with live_dispatcher(settings, clock, admin_token, default_environment_id) as runs:
        _, machine, target = await ready_machine(runs.fleet, runs, bots=1)

        first = (await runs.trigger_raw(target))["run"]
        assert (first["status"], first["machine"], first["attempt"]) == (
            "DISPATCHED",
            {"id": machine.id},
            1,
        )
        assert first["dispatchedAt"] is not None
        assert [a["runId"] for a in await runs.assignments(machine)] == [first["id"]]

        clock.advance(timedelta(seconds=1))
        second = (await runs.trigger_raw(target))["run"]  # the one bot is taken
        assert (second["status"], second["waitReason"]) == ("QUEUED", "NO_FREE_BOT")
        clock.advance(timedelta(seconds=1))
        third = (await runs.trigger_raw(target))["run"]  # a run is queued ahead
        assert (third["status"], third["queuePosition"]) == ("QUEUED", 2)

        await runs.allocate(machine.id, 2)  # one bot more: the run ahead takes it
        assert await runs.until_status(second["id"], "DISPATCHED") == "DISPATCHED"
        assert (await runs.run(third["id"]))["status"] == "QUEUED"


@pytest.mark.rule("R30")
async def test_r30_interleaved_dispatch_sweeps_and_reports_keep_every_invariant(
    fleet: Fleet, runs: Runs, domain: DomainContext, settings: Settings, clock: ManualClock
) -> None:
    """Two dispatchers, sweeps, late and stale reports, cancellations and silent machines, all at
    once, in seeded random order: no bot ever carries two runs, every attempt is held by one
    machine at most, and every run ends in one state or is still legitimately waiting."""
    rng = random.Random(4)
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(6)
    machines = [await runs.machine(owner, bots=2) for _ in range(3)]
    group_id = await runs.group(owner, *machines)
    target = await runs.target(owner, group_id=group_id)
    ids = [await runs.trigger(target) for _ in range(40)]
    other = DomainContext(db=Database(settings.database_url), settings=settings, clock=clock)
    held: dict[tuple[str, int], str] = {}  # (run, attempt) -> machine that was told to run it

    async def runtime(machine) -> None:
        for a in await runs.assignments(machine):
            key = (a["runId"], a["attempt"])
            assert held.setdefault(key, machine.id) == machine.id  # never two bots
            if rng.random() < 0.2:
                continue  # never confirms: R28 puts it back
            started = await runs.confirm(machine, a["runId"], a["attempt"])
            if started["__typename"] == "FlowRunPayload" and rng.random() < 0.8:
                outcome = rng.choice(["SUCCEEDED", "FAILED"])
                await runs.finish(machine, a["runId"], a["attempt"], outcome)

    try:
        for _ in range(25):
            clock.advance(timedelta(seconds=rng.choice([5, 30, 61, 200])))
            for m in machines:
                if rng.random() < 0.85:  # now and then a machine stays silent
                    await runs.heartbeat(m)
            if rng.random() < 0.15:
                await runs.change(CANCEL_RUN, rng.choice(ids), token=owner.token)
            await asyncio.gather(
                dispatch_once(domain),
                dispatch_once(other),
                sweep_once(other),
                *(runtime(m) for m in machines),
            )
            for m in machines:
                assert (await runs.counts(m.id))["runningCount"] <= 2
    finally:
        await other.db.dispose()

    final = [await runs.run(i) for i in ids]
    for run in final:
        assert run["status"] in {
            "QUEUED",
            "DISPATCHED",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "CANCELLED",
            "TIMED_OUT",
        }
        if run["status"] in {"SUCCEEDED", "FAILED"} and run["errorCode"] != "MACHINE_LOST":
            assert held[(run["id"], run["attempt"])] == run["machine"]["id"]
    assert Counter(r["status"] for r in final)["SUCCEEDED"] > 0
