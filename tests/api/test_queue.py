"""The queues of machines and groups (R25), and why each queued run waits (R29)."""

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.kernel.clock import ManualClock
from tests.graphql import Fleet
from tests.runs_given import CANCEL_RUN, CHANGE_RUN_PRIORITY, MOVE_RUN_TO_TOP, Runs

pytestmark = pytest.mark.asyncio


async def offline_machine_with_runs(fleet: Fleet, runs: Runs, clock: ManualClock, priorities):
    """A machine that is not connected (so nothing leaves its queue) and runs queued in order."""
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1, connected=False)
    target = await runs.target(owner, machine=machine)
    ids = []
    for priority in priorities:
        clock.advance(timedelta(seconds=1))
        ids.append(await runs.trigger(target, priority=priority))
    return owner, machine, target, ids


@pytest.mark.rule("R25")
async def test_r25_queue_is_high_first_then_oldest_first(
    fleet: Fleet, runs: Runs, clock: ManualClock
) -> None:
    owner, machine, _, ids = await offline_machine_with_runs(
        fleet, runs, clock, ["NORMAL", "HIGH", "NORMAL", "HIGH"]
    )

    queue = await runs.machine_queue(machine.id, token=owner.token)

    assert [e["run"]["id"] for e in queue] == [ids[1], ids[3], ids[0], ids[2]]
    assert [e["position"] for e in queue] == [1, 2, 3, 4]
    assert {e["waitReason"] for e in queue} == {"MACHINE_OFFLINE"}
    assert (await runs.run(ids[2]))["queuePosition"] == 4


@pytest.mark.rule("R25")
async def test_r25_move_to_top_puts_the_last_moved_first(
    fleet: Fleet, runs: Runs, clock: ManualClock
) -> None:
    owner, machine, _, ids = await offline_machine_with_runs(
        fleet, runs, clock, ["HIGH", "NORMAL", "NORMAL", "NORMAL"]
    )

    first_move = await runs.change(MOVE_RUN_TO_TOP, ids[2], token=owner.token)
    second_move = await runs.change(MOVE_RUN_TO_TOP, ids[3], token=owner.token)
    queue = await runs.machine_queue(machine.id, token=owner.token)

    assert first_move["__typename"] == "FlowRunPayload"
    assert second_move["run"]["queuePosition"] == 1
    assert [e["run"]["id"] for e in queue] == [ids[3], ids[2], ids[0], ids[1]]


@pytest.mark.rule("R25")
async def test_r25_changing_priority_reorders_the_queue(
    fleet: Fleet, runs: Runs, clock: ManualClock
) -> None:
    owner, machine, _, ids = await offline_machine_with_runs(
        fleet, runs, clock, ["NORMAL", "NORMAL", "NORMAL"]
    )

    changed = await runs.change(CHANGE_RUN_PRIORITY, ids[2], token=owner.token, priority="HIGH")
    queue = await runs.machine_queue(machine.id, token=owner.token)

    assert changed["run"]["priority"] == "HIGH"
    assert [e["run"]["id"] for e in queue] == [ids[2], ids[0], ids[1]]


@pytest.mark.rule("R25")
async def test_r25_cancel_takes_a_run_out_of_the_queue_for_good(
    fleet: Fleet, runs: Runs, clock: ManualClock
) -> None:
    owner, machine, _, ids = await offline_machine_with_runs(
        fleet, runs, clock, ["NORMAL", "NORMAL"]
    )

    cancelled = await runs.change(CANCEL_RUN, ids[0], token=owner.token)
    again = await runs.change(CANCEL_RUN, ids[0], token=owner.token)
    moved = await runs.change(MOVE_RUN_TO_TOP, ids[0], token=owner.token)
    queue = await runs.machine_queue(machine.id, token=owner.token)
    run = await runs.run(ids[0])

    assert cancelled["run"]["status"] == "CANCELLED"
    assert cancelled["run"]["errorCode"] == "CANCELLED_BY_USER"
    assert (again["__typename"], again["code"]) == ("ConflictError", "RUN_FINISHED")
    assert (moved["__typename"], moved["code"]) == ("ConflictError", "RUN_NOT_QUEUED")
    assert [e["run"]["id"] for e in queue] == [ids[1]]
    assert queue[0]["position"] == 1
    assert (run["status"], run["queuePosition"], run["endedAt"] is not None) == (
        "CANCELLED",
        None,
        True,
    )


@pytest.mark.rule("R25")
async def test_r25_managing_a_queue_needs_rights_and_refusals_change_nothing(
    fleet: Fleet, runs: Runs, clock: ManualClock
) -> None:
    owner, machine, _, ids = await offline_machine_with_runs(
        fleet, runs, clock, ["NORMAL", "NORMAL"]
    )
    stranger = await fleet.person("ENVIRONMENT_MAKER")

    results = [
        await runs.change(CANCEL_RUN, ids[1], token=stranger.token),
        await runs.change(MOVE_RUN_TO_TOP, ids[1], token=stranger.token),
        await runs.change(CHANGE_RUN_PRIORITY, ids[1], token=stranger.token, priority="HIGH"),
    ]
    queue = await runs.machine_queue(machine.id, token=owner.token)

    assert {r["__typename"] for r in results} == {"NotFoundError"}
    assert [(e["run"]["id"], e["run"]["priority"]) for e in queue] == [
        (ids[0], "NORMAL"),
        (ids[1], "NORMAL"),
    ]


@pytest.mark.rule("R25")
async def test_r25_a_blocked_head_does_not_hold_back_the_runs_behind_it(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)  # no user session at all
    target = await runs.target(owner, machine=machine)
    head = await runs.trigger(target, mode="ATTENDED", priority="HIGH")  # needs a session
    clock.advance(timedelta(seconds=1))
    behind = await runs.trigger(target, mode="UNATTENDED")
    clock.advance(timedelta(seconds=1))
    last = await runs.trigger(target, mode="UNATTENDED")

    before = await runs.machine_queue(machine.id)
    dispatched = await dispatch_once(domain)
    after = await runs.machine_queue(machine.id)

    assert [(e["run"]["id"], e["waitReason"]) for e in before] == [
        (head, "NO_ACTIVE_SESSION"),
        (behind, None),  # being dispatched now
        (last, "BEHIND_IN_QUEUE"),
    ]
    assert [d.run_id for d in dispatched] == [behind]
    assert (await runs.run(behind))["status"] == "DISPATCHED"
    assert [(e["run"]["id"], e["position"], e["waitReason"]) for e in after] == [
        (head, 1, "NO_ACTIVE_SESSION"),
        (last, 2, "NO_FREE_BOT"),
    ]


@pytest.mark.rule("R29")
async def test_r29_wait_reasons_follow_the_machine_live(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1, connected=False)
    target = await runs.target(owner, machine=machine, username=r"CONTOSO\robot")
    run_id = await runs.trigger(target)

    async def reason() -> str | None:
        return (await runs.run(run_id))["waitReason"]

    offline = await reason()
    await runs.heartbeat(machine, {r"contoso\ROBOT": "LOCKED"})
    session_exists = await reason()
    await runs.maintenance(machine.id, True)
    in_maintenance = await reason()
    await runs.maintenance(machine.id, False)
    await runs.heartbeat(machine, {})
    ready = await reason()
    clock.advance(timedelta(minutes=3))  # R9: silent too long
    offline_again = await reason()

    assert (offline, session_exists, in_maintenance, ready, offline_again) == (
        "MACHINE_OFFLINE",
        "USER_SESSION_EXISTS",
        "MAINTENANCE",
        None,
        "MACHINE_OFFLINE",
    )
    assert await dispatch_once(domain) == []  # the reason is the truth: nothing was dispatched


@pytest.mark.rule("R29")
async def test_r29_group_queue_shows_positions_and_the_closest_reason(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(2)
    offline = await runs.machine(owner, bots=1, connected=False)
    busy = await runs.machine(owner, bots=1)
    group_id = await runs.group(owner, offline, busy)
    target = await runs.target(owner, group_id=group_id)
    ids = []
    for _ in range(3):
        clock.advance(timedelta(seconds=1))
        ids.append(await runs.trigger(target))
    await dispatch_once(domain)

    queue = await runs.group_queue(group_id, token=owner.token)

    assert (await runs.run(ids[0]))["machine"] == {"id": busy.id}
    assert [(e["run"]["id"], e["position"], e["waitReason"]) for e in queue] == [
        (ids[1], 1, "NO_FREE_BOT"),
        (ids[2], 2, "NO_FREE_BOT"),
    ]
    counts = await fleet.api.data(
        "query($id: ID!) { machineGroup(id: $id) { queuedCount runningCount } }",
        {"id": group_id},
        token=owner.token,
    )
    assert counts["machineGroup"] == {"queuedCount": 2, "runningCount": 1}  # its own queue (R8)


@pytest.mark.rule("R29")
async def test_r29_queues_are_only_shown_to_who_can_run_on_the_target(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner)

    refused = await fleet.api.execute(
        "query($id: ID!) { machineQueue(machineId: $id) { position } }",
        {"id": machine.id},
        token=stranger.token,
    )

    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
