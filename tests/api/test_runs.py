"""Triggering runs (R23), bots (R24), the run's record and timings (R28), and reads."""

from datetime import timedelta

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.kernel.clock import ManualClock
from tests.graphql import Fleet
from tests.runs_given import FLOW_RUNS, Runs

pytestmark = pytest.mark.asyncio


@pytest.mark.rule("R23")
async def test_r23_unattended_run_queues_when_the_machine_has_bots(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(2)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)

    result = await runs.trigger_raw(target, mode="UNATTENDED", priority="HIGH")

    assert result["__typename"] == "FlowRunPayload", result
    run = result["run"]
    assert run["status"] == "QUEUED"
    assert run["mode"] == "UNATTENDED"
    assert run["priority"] == "HIGH"
    assert run["runAs"] == target.username
    assert run["targetMachine"] == {"id": machine.id}
    assert run["queuePosition"] == 1
    assert run["waitReason"] is None  # nothing stops it: it is being dispatched now


@pytest.mark.rule("R23")
async def test_r23_unattended_run_refused_when_the_target_has_no_bots(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    machine = await runs.machine(owner, bots=0)
    target = await runs.target(owner, machine=machine)

    refused = await runs.trigger_raw(target, mode="UNATTENDED")

    assert refused["__typename"] == "RuleViolationError"
    assert (refused["code"], refused["rule"]) == ("NO_UNATTENDED_BOTS", "R23")
    assert (await fleet.api.data(FLOW_RUNS, {"first": 10}, token=fleet.admin_token))["flowRuns"][
        "totalCount"
    ] == 0


@pytest.mark.rule("R23")
async def test_r23_unattended_run_for_a_group_needs_bots_on_one_of_its_machines(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    without = await runs.machine(owner)
    group_id = await runs.group(owner, without)
    target = await runs.target(owner, group_id=group_id)

    refused = await runs.trigger_raw(target)
    with_bot = await runs.machine(owner, bots=1)
    await runs.api.data(
        "mutation($g: ID!, $m: ID!) { addMachineToGroup(groupId: $g, machineId: $m) { __typename } }",
        {"g": group_id, "m": with_bot.id},
        token=owner.token,
    )
    accepted = await runs.trigger_raw(target)

    assert refused["code"] == "NO_UNATTENDED_BOTS"
    assert accepted["__typename"] == "FlowRunPayload"
    assert accepted["run"]["targetGroup"] == {"id": group_id}


@pytest.mark.rule("R23")
async def test_r23_attended_run_needs_the_connection_owners_attended_licence(
    fleet: Fleet, runs: Runs
) -> None:
    licensed = await fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    unlicensed = await fleet.person("ENVIRONMENT_MAKER")
    licensed_target = await runs.target(licensed, machine=await runs.machine(licensed))
    unlicensed_target = await runs.target(unlicensed, machine=await runs.machine(unlicensed))

    accepted = await runs.trigger_raw(licensed_target, mode="ATTENDED")
    refused = await runs.trigger_raw(unlicensed_target, mode="ATTENDED")

    assert accepted["__typename"] == "FlowRunPayload"
    assert accepted["run"]["mode"] == "ATTENDED"
    assert refused["__typename"] == "RuleViolationError"
    assert (refused["code"], refused["rule"]) == ("NO_ATTENDED_LICENCE", "R23")
    listed = await fleet.api.data(FLOW_RUNS, {"first": 10}, token=fleet.admin_token)
    assert [e["node"]["id"] for e in listed["flowRuns"]["edges"]] == [accepted["run"]["id"]]


@pytest.mark.rule("R23")
async def test_r23_only_the_connection_owner_or_an_admin_can_run_through_it(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    other = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    await runs.capacity(1)
    target = await runs.target(owner, machine=await runs.machine(owner, bots=1))

    refused = await runs.trigger_raw(target, by=other)
    by_admin = await runs.trigger_raw(target, by=env_admin)

    # Someone else's connection is not visible to a maker (R38): not found, like any unknown id.
    assert refused["__typename"] == "NotFoundError", refused
    assert refused["code"] == "NOT_FOUND"
    assert by_admin["__typename"] == "FlowRunPayload", by_admin
    listed = await fleet.api.data(FLOW_RUNS, {"first": 10}, token=fleet.admin_token)
    assert listed["flowRuns"]["totalCount"] == 1


@pytest.mark.rule("R23")
async def test_r23_running_needs_run_access_to_the_target(fleet: Fleet, runs: Runs) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    outsider = await fleet.person("MACHINE_USER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)

    # The outsider cannot see the owner's connection nor the machine: not found, nothing queued.
    refused = await runs.trigger_raw(target, by=outsider)

    assert refused["__typename"] in ("NotFoundError", "PermissionDeniedError"), refused
    assert (await runs.counts(machine.id))["queuedCount"] == 0


@pytest.mark.rule("R24")
async def test_r24_bots_come_from_the_environment_pool(fleet: Fleet, runs: Runs) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(3)
    first = await runs.machine(owner)
    second = await runs.machine(owner)

    two = await runs.allocate(first.id, 2)
    too_many = await runs.allocate(second.id, 2)
    one = await runs.allocate(second.id, 1)
    reallocated = await runs.allocate(first.id, 2)  # its own bots count once, not twice

    assert two["machine"]["unattendedBots"] == 2
    assert too_many["__typename"] == "RuleViolationError"
    assert (too_many["code"], too_many["rule"]) == ("CAPACITY_EXCEEDED", "R24")
    assert one["machine"]["unattendedBots"] == 1
    assert reallocated["__typename"] == "MachinePayload"
    assert (await runs.counts(second.id))["unattendedBots"] == 1


@pytest.mark.rule("R24")
async def test_r24_allocating_bots_needs_edit_rights_on_the_machine(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    other = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(3)
    machine = await runs.machine(owner)

    refused = await runs.allocate(machine.id, 1, token=other.token)
    accepted = await runs.allocate(machine.id, 1, token=owner.token)

    assert refused["__typename"] in ("NotFoundError", "PermissionDeniedError")
    assert accepted["__typename"] == "MachinePayload"


@pytest.mark.rule("R28")
async def test_r28_a_run_records_its_timings_from_queued_to_ended(
    fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    run_id = await runs.trigger(await runs.target(owner, machine=machine))

    clock.advance(timedelta(seconds=30))
    await runs.heartbeat(machine, {})
    await dispatch_once(domain)
    clock.advance(timedelta(seconds=5))
    (assignment,) = await runs.assignments(machine)
    await runs.confirm(machine, run_id, assignment["attempt"])
    clock.advance(timedelta(seconds=95))
    running = await runs.run(run_id)
    clock.advance(timedelta(seconds=25))
    finished = await runs.finish(machine, run_id, assignment["attempt"])
    run = await runs.run(run_id)

    assert running["status"] == "RUNNING"
    assert running["waitSeconds"] == 35
    assert running["runSeconds"] == 95
    assert finished["__typename"] == "FlowRunPayload"
    assert run["status"] == "SUCCEEDED"
    assert (run["waitSeconds"], run["runSeconds"]) == (35, 120)
    assert run["dispatchedAt"] is not None and run["endedAt"] is not None
    assert run["machine"] == {"id": machine.id}
    assert run["errorCode"] is None


@pytest.mark.rule("R7")
async def test_r7_the_machine_takes_the_version_its_runtime_reports_after_a_run(
    fleet: Fleet, runs: Runs, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    run_id = await runs.trigger(await runs.target(owner, machine=machine))
    await dispatch_once(domain)
    await runs.confirm(machine, run_id, 1)

    bad = await runs.finish(machine, run_id, 1, runtimeVersion="2.x")
    before = await runs.counts(machine.id)
    done = await runs.finish(machine, run_id, 1, runtimeVersion="2.9.100.1")
    after = await runs.counts(machine.id)

    assert bad["__typename"] == "ValidationError"
    assert before["version"] == "2.8.73.21119"
    assert done["run"]["status"] == "SUCCEEDED"
    assert after["version"] == "2.9.100.1"
    assert (await runs.run(run_id))["reportedRuntimeVersion"] == "2.9.100.1"


@pytest.mark.rule("R8")
async def test_r8_running_and_queued_counts_are_real(
    fleet: Fleet, runs: Runs, domain: DomainContext, sql_statements
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    for _ in range(3):
        await runs.trigger(target)
    await dispatch_once(domain)

    counts = await runs.counts(machine.id)

    assert (counts["runningCount"], counts["queuedCount"]) == (1, 2)
    listed = await fleet.api.data(
        "{ machines(first: 50) { nodes { id runningCount queuedCount } } }", token=owner.token
    )
    assert listed["machines"]["nodes"] == [{"id": machine.id, "runningCount": 1, "queuedCount": 2}]


async def test_flow_runs_are_filtered_and_paginated_newest_first(
    fleet: Fleet, runs: Runs, clock: ManualClock, domain: DomainContext
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(2)
    first_machine = await runs.machine(owner, bots=1)
    second_machine = await runs.machine(owner, bots=1)
    first = await runs.target(owner, machine=first_machine)
    second = await runs.target(owner, machine=second_machine)
    ids = []
    for target in (first, second, first, second, first):
        clock.advance(timedelta(seconds=1))
        ids.append(await runs.trigger(target))

    pages, after = [], None
    while True:
        data = await fleet.api.data(FLOW_RUNS, {"first": 2, "after": after}, token=owner.token)
        page = data["flowRuns"]
        pages.append([e["node"]["id"] for e in page["edges"]])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    by_flow = await fleet.api.data(
        FLOW_RUNS, {"first": 10, "filter": {"flowId": first.flow_id}}, token=owner.token
    )
    by_machine = await fleet.api.data(
        FLOW_RUNS, {"first": 10, "filter": {"machineId": second_machine.id}}, token=owner.token
    )
    by_connection = await fleet.api.data(
        FLOW_RUNS,
        {"first": 10, "filter": {"connectionId": second.connection_id, "status": "QUEUED"}},
        token=owner.token,
    )

    assert pages == [ids[::-1][0:2], ids[::-1][2:4], ids[::-1][4:5]]
    assert [e["node"]["id"] for e in by_flow["flowRuns"]["edges"]] == [ids[4], ids[2], ids[0]]
    assert [e["node"]["id"] for e in by_machine["flowRuns"]["edges"]] == [ids[3], ids[1]]
    assert by_connection["flowRuns"]["totalCount"] == 2
    bad = await fleet.api.execute(FLOW_RUNS, {"first": 2, "after": "nope"}, token=owner.token)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_runs_are_visible_only_to_who_may_see_them(fleet: Fleet, runs: Runs) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(1)
    run_id = await runs.trigger(await runs.target(owner, machine=await runs.machine(owner, bots=1)))

    seen = await runs.run(run_id, token=owner.token)
    hidden = await runs.run(run_id, token=stranger.token)
    listed = await fleet.api.data(FLOW_RUNS, {"first": 10}, token=stranger.token)

    assert seen["id"] == run_id
    assert hidden is None
    assert listed["flowRuns"]["totalCount"] == 0


RUN_PAGE = """query($n: Int!) { flowRuns(first: $n) { totalCount nodes {
  id status queuePosition waitReason waitSeconds
  flow { name } connection { name } machine { name } targetMachine { name runningCount }
  targetGroup { name } environment { name } triggeredBy { displayName } } } }"""


async def test_statements_per_run_page_do_not_grow_with_page_size(
    fleet: Fleet, runs: Runs, domain: DomainContext, sql_statements
) -> None:
    owners = [await fleet.person("ENVIRONMENT_MAKER") for _ in range(3)]
    await runs.capacity(3)
    targets = [await runs.target(o, machine=await runs.machine(o, bots=1)) for o in owners]
    for i in range(40):
        await runs.trigger(targets[i % 3])
    await dispatch_once(domain)

    counts = {}
    for size in (5, 40):
        sql_statements.count = 0
        data = await fleet.api.data(RUN_PAGE, {"n": size}, token=fleet.admin_token)
        assert len(data["flowRuns"]["nodes"]) == size
        counts[size] = sql_statements.count

    assert counts[5] == counts[40], counts


@pytest.mark.rule("R24")
async def test_r24_pool_cannot_shrink_below_the_bots_allocated(fleet: Fleet, runs: Runs) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    await runs.capacity(4)
    await runs.machine(owner, bots=3)

    refused = await fleet.api.data(
        """mutation($id: ID!) { updateEnvironment(input: {id: $id, unattendedCapacity: 2}) {
            __typename ... on UserError { code message } ... on RuleViolationError { rule } } }""",
        {"id": fleet.environment_id},
        token=fleet.admin_token,
    )
    envs = await fleet.api.data("{ environments { unattendedCapacity } }", token=fleet.admin_token)

    assert refused["updateEnvironment"]["code"] == "CAPACITY_EXCEEDED"
    assert refused["updateEnvironment"]["rule"] == "R24"
    assert envs["environments"][0]["unattendedCapacity"] == 4
    await runs.capacity(3)  # down to exactly what is allocated is fine


@pytest.mark.rule("R24")
@pytest.mark.rule("R6")
async def test_r24_a_moved_machine_leaves_its_bots_in_the_old_pool(
    fleet: Fleet, runs: Runs
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    await runs.capacity(2)
    machine = await runs.machine(owner, bots=2)
    sales = await fleet.environment("Sales")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=sales)

    await fleet.api.data(
        """mutation($id: ID!, $env: ID!) { changeMachineEnvironment(id: $id, environmentId: $env) {
            __typename } }""",
        {"id": machine.id, "env": sales},
        token=owner.token,
    )
    other = await runs.machine(owner, bots=2)  # the old pool has both bots back

    moved = await fleet.api.data(
        "query($id: ID!) { machine(id: $id) { unattendedBots } }",
        {"id": machine.id},
        token=owner.token,
    )
    assert moved["machine"]["unattendedBots"] == 0
    assert other.id != machine.id
