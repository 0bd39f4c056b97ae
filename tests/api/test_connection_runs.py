"""R6 and connection removal with real runs: triggered, dispatched and started through the API."""

from __future__ import annotations

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from tests.connection_steps import DELETE_CONNECTION
from tests.graphql import Fleet
from tests.runs_given import Runs

pytestmark = pytest.mark.asyncio

CHANGE_ENVIRONMENT = """
mutation($id: ID!, $environmentId: ID!) {
  changeMachineEnvironment(id: $id, environmentId: $environmentId) {
    __typename ... on UserError { code message }
  }
}"""


@pytest.mark.rule("R6")
async def test_r6_moving_a_machine_cancels_queued_and_dispatched_runs_running_ones_finish(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(2)
    machine = await runs.machine(owner, bots=2)
    target = await runs.target(owner, machine=machine)
    sales = await fleet.environment("Sales")
    await fleet.grant(owner.id, "ENVIRONMENT_MAKER", environment_id=sales)
    running = await runs.trigger(target)
    dispatched = await runs.trigger(target)
    await dispatch_once(domain)
    assignments = {a["runId"]: a for a in await runs.assignments(machine)}
    started = await runs.confirm(machine, running, assignments[running]["attempt"])
    queued = await runs.trigger(target)  # both bots are busy: it waits

    moved = await fleet.api.data(
        CHANGE_ENVIRONMENT, {"id": machine.id, "environmentId": sales}, token=owner.token
    )
    after_move = {i: await runs.run(i) for i in (running, dispatched, queued)}
    refused_start = await runs.confirm(machine, dispatched, assignments[dispatched]["attempt"])

    assert started["__typename"] == "FlowRunPayload", started
    assert moved["changeMachineEnvironment"]["__typename"] == "MachinePayload", moved
    assert after_move[running]["status"] == "RUNNING"
    for cancelled in (dispatched, queued):
        assert after_move[cancelled]["status"] == "CANCELLED"
        assert after_move[cancelled]["errorCode"] == "CONNECTION_REMOVED"
        assert "Sales" in after_move[cancelled]["errorMessage"]
    assert refused_start["__typename"] != "FlowRunPayload"  # the runtime must not start it


@pytest.mark.rule("R6")
async def test_r6_a_run_running_when_its_machine_moved_can_still_be_reported_finished(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    sales = await fleet.environment("Sales")
    await fleet.grant(owner.id, "ENVIRONMENT_MAKER", environment_id=sales)
    running = await runs.trigger(target)
    await dispatch_once(domain)
    (assignment,) = await runs.assignments(machine)
    await runs.confirm(machine, running, assignment["attempt"])
    await fleet.api.data(
        CHANGE_ENVIRONMENT, {"id": machine.id, "environmentId": sales}, token=owner.token
    )

    finished = await runs.finish(machine, running, assignment["attempt"])

    assert finished["__typename"] == "FlowRunPayload", finished
    assert finished["run"]["status"] == "SUCCEEDED"  # running runs finish (R6)


async def test_deleting_a_connection_cancels_its_queued_run_through_the_api(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    queued = await runs.trigger(target)

    deleted = await fleet.api.data(
        DELETE_CONNECTION, {"id": target.connection_id}, token=owner.token
    )
    await dispatch_once(domain)
    run = await runs.run(queued)

    assert deleted["deleteConnection"]["cancelledRunIds"] == [queued]
    assert run["status"] == "CANCELLED"
    assert run["errorCode"] == "CONNECTION_REMOVED"
    assert await runs.assignments(machine) == []  # nothing left to dispatch


DELETE_MACHINE = """
mutation($id: ID!) { deleteMachine(id: $id) { __typename ... on UserError { code message } } }"""


@pytest.mark.rule("R20")
async def test_deleting_a_machine_cancels_the_queued_runs_of_its_connections(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    queued = await runs.trigger(target)

    deleted = await fleet.api.data(DELETE_MACHINE, {"id": machine.id}, token=owner.token)
    after = await runs.run(queued)

    assert deleted["deleteMachine"]["__typename"] == "DeletedMachinePayload", deleted
    assert after["status"] == "CANCELLED"
    assert after["errorCode"] == "CONNECTION_REMOVED"
    assert "deleted" in after["errorMessage"]
