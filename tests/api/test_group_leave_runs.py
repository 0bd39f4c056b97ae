"""A machine leaving its group gives back the group's runs dispatched to it and not yet started:
they go back to the group's queue keeping their place, and never run on a machine that is no
longer the group's, nor in another environment (R6, R25, R28, R30). Running runs finish (R6).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.kernel.clock import ManualClock
from tests.api.group_steps import ADD, REMOVE
from tests.graphql import Fleet, Person, RegisteredMachine
from tests.runs_given import Runs

pytestmark = pytest.mark.asyncio

CHANGE_ENVIRONMENT = """
mutation($id: ID!, $environmentId: ID!) {
  changeMachineEnvironment(id: $id, environmentId: $environmentId) {
    __typename ... on UserError { code message }
  }
}"""
DELETE_MACHINE = """
mutation($id: ID!) { deleteMachine(id: $id) { __typename ... on UserError { code message } } }"""


Leave = Callable[[Fleet, Runs, Person, RegisteredMachine], Awaitable[str]]


async def removed(fleet: Fleet, runs: Runs, owner: Person, machine: RegisteredMachine) -> str:
    data = await fleet.api.data(REMOVE, {"machineId": machine.id}, token=owner.token)
    return data["removeMachineFromGroup"]["__typename"]


async def moved_to_another_group(
    fleet: Fleet, runs: Runs, owner: Person, machine: RegisteredMachine
) -> str:
    other = await runs.group(owner)
    data = await fleet.api.data(ADD, {"groupId": other, "machineId": machine.id}, token=owner.token)
    return data["addMachineToGroup"]["__typename"]


async def moved_to_another_environment(
    fleet: Fleet, runs: Runs, owner: Person, machine: RegisteredMachine
) -> str:
    sales = await fleet.environment("Sales")
    await fleet.grant(owner.id, "ENVIRONMENT_MAKER", environment_id=sales)
    data = await fleet.api.data(
        CHANGE_ENVIRONMENT, {"id": machine.id, "environmentId": sales}, token=owner.token
    )
    return data["changeMachineEnvironment"]["__typename"]


async def deleted(fleet: Fleet, runs: Runs, owner: Person, machine: RegisteredMachine) -> str:
    data = await fleet.api.data(DELETE_MACHINE, {"id": machine.id}, token=owner.token)
    return data["deleteMachine"]["__typename"]


@pytest.mark.rule("R6")
@pytest.mark.rule("R28")
@pytest.mark.rule("R25")
@pytest.mark.parametrize(
    ("leave", "succeeded_as"),
    [
        (removed, "MachineGroupMembershipPayload"),
        (moved_to_another_group, "MachineGroupMembershipPayload"),
        (moved_to_another_environment, "MachinePayload"),
        (deleted, "DeletedMachinePayload"),
    ],
    ids=["removed", "another-group", "another-environment", "deleted"],
)
async def test_the_groups_dispatched_runs_go_back_to_its_queue_keeping_their_place(
    fleet: Fleet,
    runs: Runs,
    domain: DomainContext,
    clock: ManualClock,
    leave: Leave,
    succeeded_as: str,
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(3)
    leaving = await runs.machine(owner, bots=2)
    group_id = await runs.group(owner, leaving)
    target = await runs.target(owner, group_id=group_id)
    running = await runs.trigger(target)
    dispatched = await runs.trigger(target)
    await dispatch_once(domain)
    attempts = {a["runId"]: a["attempt"] for a in await runs.assignments(leaving)}
    await runs.confirm(leaving, running, attempts[running])
    clock.advance(timedelta(seconds=5))
    later = await runs.trigger(target)  # both bots busy: it waits behind

    left = await leave(fleet, runs, owner, leaving)
    back = await runs.run(dispatched)
    queue = await runs.group_queue(group_id)
    still_running = await runs.run(running)

    assert left == succeeded_as
    assert back["status"] == "QUEUED"
    assert back["machine"] is None and back["dispatchedAt"] is None
    assert back["attempt"] == attempts[dispatched]  # the next dispatch is a new attempt
    # Its place: ahead of the run triggered after it (R25 order by time queued, R28).
    assert [e["run"]["id"] for e in queue] == [dispatched, later]
    assert [e["position"] for e in queue] == [1, 2]
    if leave is not deleted:
        assert still_running["status"] == "RUNNING"  # running runs finish (R6)
        assert still_running["machine"]["id"] == leaving.id
        assert dispatched not in {a["runId"] for a in await runs.assignments(leaving)}
        late = await runs.confirm(leaving, dispatched, attempts[dispatched])
        # It must not start it: no longer its own (in another environment: not even visible).
        assert late["code"] in ("STALE_ATTEMPT", "NOT_FOUND"), late
        assert (await runs.run(dispatched))["status"] == "QUEUED"
        finished = await runs.finish(leaving, running, attempts[running])
        assert finished["run"]["status"] == "SUCCEEDED"

    # A machine of the group takes it, first, under a new attempt.
    joining = await runs.machine(owner, bots=1)
    added = await fleet.api.data(
        ADD, {"groupId": group_id, "machineId": joining.id}, token=owner.token
    )
    assert added["addMachineToGroup"]["__typename"] == "MachineGroupMembershipPayload", added
    await dispatch_once(domain)
    (assignment,) = await runs.assignments(joining)
    assert assignment["runId"] == dispatched
    assert assignment["attempt"] == attempts[dispatched] + 1
    assert (await runs.run(later))["status"] == "QUEUED"


@pytest.mark.rule("R6")
@pytest.mark.rule("R28")
async def test_a_refused_removal_leaves_the_dispatched_run_where_it_was(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    group_id = await runs.group(owner, machine)
    target = await runs.target(owner, group_id=group_id)
    dispatched = await runs.trigger(target)
    await dispatch_once(domain)

    refused = await fleet.api.data(REMOVE, {"machineId": machine.id}, token=stranger.token)
    after = await runs.run(dispatched)
    (assignment,) = await runs.assignments(machine)

    assert refused["removeMachineFromGroup"]["__typename"] in (
        "PermissionDeniedError",
        "NotFoundError",
    ), refused
    assert after["status"] == "DISPATCHED"
    assert after["machine"]["id"] == machine.id
    assert assignment["runId"] == dispatched
    confirmed = await runs.confirm(machine, dispatched, assignment["attempt"])
    assert confirmed["run"]["status"] == "RUNNING"


@pytest.mark.rule("R6")
async def test_runs_dispatched_through_the_machines_own_connection_stay_when_it_leaves_its_group(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    await runs.group(owner, machine)
    own = await runs.target(owner, machine=machine)
    dispatched = await runs.trigger(own)
    await dispatch_once(domain)

    left = await removed(fleet, runs, owner, machine)
    (assignment,) = await runs.assignments(machine)
    confirmed = await runs.confirm(machine, dispatched, assignment["attempt"])

    assert left == "MachineGroupMembershipPayload"
    assert assignment["runId"] == dispatched
    assert confirmed["run"]["status"] == "RUNNING"
