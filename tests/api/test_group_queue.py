"""A group's queue (R25) with mixed priorities, users and modes: a head no machine of the group can
take never holds back the runs behind it, and the order is kept for the ones that must wait.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.kernel.clock import ManualClock
from tests.graphql import Fleet
from tests.runs_given import MOVE_RUN_TO_TOP, Runs

pytestmark = pytest.mark.asyncio

ROBOT = r"CONTOSO\robot"
CLERK = r"CONTOSO\clerk"


@pytest.mark.rule("R25")
@pytest.mark.rule("R26")
@pytest.mark.rule("R29")
async def test_r25_a_blocked_head_of_a_group_queue_does_not_hold_back_the_runs_behind_it(
    fleet: Fleet, domain: DomainContext, clock: ManualClock
) -> None:
    runs = Runs(fleet)
    owner = await fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    await runs.capacity(2)
    # Both machines have the robot's session: its unattended runs can go nowhere (R26).
    first = await runs.machine(owner, bots=1, sessions={ROBOT: "LOCKED"})
    second = await runs.machine(owner, bots=1, sessions={ROBOT: "DISCONNECTED"})
    group_id = await runs.group(owner, first, second)
    robot = await runs.target(owner, group_id=group_id, username=ROBOT)
    clerk = await runs.target(owner, group_id=group_id, username=CLERK)

    blocked_high = await runs.trigger(robot, priority="HIGH")
    clock.advance(timedelta(seconds=1))
    attended = await runs.trigger(robot, mode="ATTENDED", priority="HIGH")  # no ACTIVE session
    clock.advance(timedelta(seconds=1))
    clerk_normal = await runs.trigger(clerk)
    clock.advance(timedelta(seconds=1))
    clerk_moved = await runs.trigger(clerk)
    clock.advance(timedelta(seconds=1))
    clerk_last = await runs.trigger(clerk)
    moved = await runs.change(MOVE_RUN_TO_TOP, clerk_moved, token=owner.token)

    before = await runs.group_queue(group_id, token=owner.token)
    dispatched = await dispatch_once(domain)
    after = await runs.group_queue(group_id, token=owner.token)

    assert moved["run"]["queuePosition"] == 1
    assert [(e["run"]["id"], e["waitReason"]) for e in before] == [
        (clerk_moved, None),  # moved to the top, before the HIGH ones; being dispatched now
        (blocked_high, "USER_SESSION_EXISTS"),
        (attended, "NO_ACTIVE_SESSION"),
        (clerk_normal, None),
        (clerk_last, "BEHIND_IN_QUEUE"),
    ]
    # The two free bots go to the first two runs that can start, one per machine (spread).
    assert sorted(d.run_id for d in dispatched) == sorted([clerk_moved, clerk_normal])
    assert sorted(d.machine_id for d in dispatched) == sorted([first.id, second.id])
    assert [(e["run"]["id"], e["position"], e["waitReason"]) for e in after] == [
        (blocked_high, 1, "NO_FREE_BOT"),  # the first thing missing now: a bot
        (attended, 2, "NO_ACTIVE_SESSION"),
        (clerk_last, 3, "NO_FREE_BOT"),
    ]

    # When the robot signs out of one machine and its bot frees up, the blocked head goes first.
    await runs.heartbeat(first, {})
    (assignment,) = await runs.assignments(first)
    await runs.confirm(first, assignment["runId"], assignment["attempt"])
    await runs.finish(first, assignment["runId"], assignment["attempt"])
    freed = await dispatch_once(domain)

    assert [(d.run_id, d.machine_id) for d in freed] == [(blocked_high, first.id)]
    assert [e["run"]["id"] for e in await runs.group_queue(group_id)] == [attended, clerk_last]
