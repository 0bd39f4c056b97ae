"""R26 as a table, through the API: connected x maintenance x free bot x the run user's session x
mode -> the run is dispatched to the machine, or waits saying why (R29).

Each row builds its machine through the real operations (heartbeats with sessions, the manual
clock past R9's silence, maintenance, a bot or a session taken by an earlier run), triggers one
run, lets the dispatcher pass once and reads the run and the machine's queue back. The pure
decision function has the same table in tests/domain/test_candidates.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests.graphql import Fleet
from tests.runs_given import Runs

pytestmark = pytest.mark.asyncio

ROBOT = r"CONTOSO\robot"
OTHER = r"CONTOSO\other"
ATT, UNATT = "ATTENDED", "UNATTENDED"

# connected, maintenance, free bot, the run user's session, its session busy, mode -> expected
TABLE = [
    # offline or in maintenance: nothing else matters
    (False, False, True, None, False, UNATT, "MACHINE_OFFLINE"),
    (False, False, True, "ACTIVE", False, ATT, "MACHINE_OFFLINE"),
    (False, True, True, "ACTIVE", False, ATT, "MACHINE_OFFLINE"),
    (True, True, True, None, False, UNATT, "MAINTENANCE"),
    (True, True, True, "ACTIVE", False, ATT, "MAINTENANCE"),
    # unattended: a free bot and no session of the run's user in any state
    (True, False, True, None, False, UNATT, None),
    (True, False, False, None, False, UNATT, "NO_FREE_BOT"),
    (True, False, True, "ACTIVE", False, UNATT, "USER_SESSION_EXISTS"),
    (True, False, True, "LOCKED", False, UNATT, "USER_SESSION_EXISTS"),
    (True, False, True, "DISCONNECTED", False, UNATT, "USER_SESSION_EXISTS"),
    (True, False, False, "LOCKED", False, UNATT, "NO_FREE_BOT"),
    # attended: an ACTIVE session of the run's user with no attended run in it; bots don't matter
    (True, False, False, "ACTIVE", False, ATT, None),
    (True, False, True, "ACTIVE", False, ATT, None),
    (True, False, True, None, False, ATT, "NO_ACTIVE_SESSION"),
    (True, False, True, "LOCKED", False, ATT, "NO_ACTIVE_SESSION"),
    (True, False, True, "DISCONNECTED", False, ATT, "NO_ACTIVE_SESSION"),
    (True, False, True, "ACTIVE", True, ATT, "SESSION_BUSY"),
]


def _row_id(row: tuple) -> str:
    connected, maintenance, free_bot, session, busy, mode, expected = row
    return "-".join(
        [
            "online" if connected else "offline",
            "maint" if maintenance else "open",
            "freebot" if free_bot else "nobot",
            (session or "nosession").lower() + ("+busy" if busy else ""),
            mode.lower(),
            (expected or "dispatched").lower(),
        ]
    )


@pytest.mark.rule("R26")
@pytest.mark.rule("R29")
@pytest.mark.parametrize("row", TABLE, ids=[_row_id(r) for r in TABLE])
async def test_r26_candidate_table_through_the_api(
    fleet: Fleet, domain: DomainContext, clock: ManualClock, settings: Settings, row: tuple
) -> None:
    connected, maintenance, free_bot, session, session_busy, mode, expected = row
    runs = Runs(fleet)
    owner = await fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1, sessions={ROBOT: session} if session else {})
    target = await runs.target(owner, machine=machine, username=ROBOT)
    if not free_bot:  # the only bot carries another user's unattended run
        other = await runs.target(owner, machine=machine, username=OTHER)
        busy = await runs.trigger(other)
        await dispatch_once(domain)
        await runs.confirm(machine, busy, 1)
    if session_busy:  # the user's session already carries an attended run
        earlier = await runs.trigger(target, mode=ATT)
        await dispatch_once(domain)
        await runs.confirm(machine, earlier, 1)
    if maintenance:
        await runs.maintenance(machine.id, True, token=owner.token)
    if not connected:  # silent past R9's timeout: its sessions are still the last reported
        clock.advance(timedelta(seconds=settings.heartbeat_timeout_seconds + 1))
    clock.advance(timedelta(seconds=1))

    run_id = await runs.trigger(target, mode=mode)
    dispatched = await dispatch_once(domain)
    run = await runs.run(run_id)
    queue = await runs.machine_queue(machine.id)

    if expected is None:
        assert [(d.run_id, d.machine_id) for d in dispatched] == [(run_id, machine.id)]
        assert run["status"] == "DISPATCHED"
        assert run["machine"]["id"] == machine.id
        assert (await runs.assignments(machine))[-1]["runId"] == run_id
    else:  # refused: nothing changed, and the run says why it waits
        assert dispatched == []
        assert run["status"] == "QUEUED"
        assert run["machine"] is None and run["attempt"] == 0
        assert run["waitReason"] == expected
        assert [(e["run"]["id"], e["position"], e["waitReason"]) for e in queue] == [
            (run_id, 1, expected)
        ]
