"""R41: a minimum runtime version per environment. Machines below it get no new run, the runs
that could only go there wait with RUNTIME_OUTDATED, a filter lists the machines that must
update, and a machine reporting a new enough version is eligible again at once. The dispatcher
is driven by hand (`dispatch_once`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests.graphql import Fleet, Person, RegisteredMachine
from tests.runs_given import Runs, Target, live_dispatcher

pytestmark = pytest.mark.asyncio

OLD = "2.8.73.21119"  # what the given-steps register and report
NEW = "2.9.0.1"

SET_MINIMUM = """
mutation($input: UpdateEnvironmentInput!) {
  updateEnvironment(input: $input) {
    __typename
    ... on EnvironmentPayload { environment { minRuntimeVersion } }
    ... on ValidationError { code message field }
    ... on UserError { code message }
  }
}"""
MACHINES = """
query($outdated: Boolean) {
  machines(first: 50, filter: {runtimeOutdated: $outdated}) {
    totalCount nodes { id version runtimeOutdated }
  }
}"""


class Versions:
    def __init__(self, fleet: Fleet, runs: Runs) -> None:
        self.fleet = fleet
        self.runs = runs

    async def minimum(self, version: str, token: str | None = None) -> dict[str, Any]:
        data = await self.fleet.api.data(
            SET_MINIMUM,
            {"input": {"id": self.fleet.environment_id, "minRuntimeVersion": version}},
            token=token or self.fleet.admin_token,
        )
        return data["updateEnvironment"]

    async def machines(self, outdated: bool | None = None) -> dict[str, dict[str, Any]]:
        data = await self.fleet.api.data(
            MACHINES, {"outdated": outdated}, token=self.fleet.admin_token
        )
        return {m["id"]: m for m in data["machines"]["nodes"]}

    async def owner(self) -> Person:
        return await self.fleet.person("ENVIRONMENT_MAKER", attended_licence=True)

    async def machine(self, owner: Person) -> RegisteredMachine:
        return await self.runs.machine(owner, bots=1)

    async def ready(self) -> tuple[RegisteredMachine, Target]:
        """A machine with a free bot, and a connection and flow to run on it."""
        owner = await self.owner()
        machine = await self.machine(owner)
        return machine, await self.runs.target(owner, machine=machine)


@pytest.fixture
async def versions(fleet: Fleet, runs: Runs) -> Versions:
    await runs.capacity(10)
    return Versions(fleet, runs)


@pytest.mark.rule("R41")
async def test_r41_a_run_for_an_outdated_machine_waits_until_it_reports_a_new_enough_version(
    versions: Versions, runs: Runs, domain: DomainContext
) -> None:
    machine, target = await versions.ready()
    assert (await versions.minimum(NEW))["environment"] == {"minRuntimeVersion": NEW}

    run_id = await runs.trigger(target)
    first_pass = await dispatch_once(domain)
    (waiting,) = await runs.machine_queue(machine.id)
    must_update = await versions.machines(outdated=True)
    await runs.heartbeat(machine, {}, runtimeVersion="2.8.80")  # newer, still below: no change
    still_old = (await versions.machines())[machine.id]
    await runs.heartbeat(machine, {}, runtimeVersion=NEW)  # updated: eligible at once
    second_pass = await dispatch_once(domain)
    after = (await versions.machines())[machine.id]

    assert first_pass == []
    assert (waiting["run"]["id"], waiting["waitReason"]) == (run_id, "RUNTIME_OUTDATED")
    assert list(must_update) == [machine.id]
    assert must_update[machine.id]["runtimeOutdated"] is True
    assert (still_old["version"], still_old["runtimeOutdated"]) == (OLD, True)
    assert [d.run_id for d in second_pass] == [run_id]
    assert (after["version"], after["runtimeOutdated"]) == (NEW, False)
    assert await versions.machines(outdated=True) == {}


@pytest.mark.rule("R41")
async def test_r41_in_a_group_a_run_goes_to_the_machine_that_is_new_enough(
    versions: Versions, runs: Runs, domain: DomainContext
) -> None:
    owner = await versions.owner()
    old = await versions.machine(owner)
    new = await versions.machine(owner)
    group_id = await runs.group(owner, old, new)
    target = await runs.target(owner, group_id=group_id)
    await versions.minimum(NEW)
    await runs.heartbeat(new, {}, runtimeVersion=NEW)

    first = await runs.trigger(target)
    second = await runs.trigger(target)
    dispatched = await dispatch_once(domain)
    queue = await runs.group_queue(group_id)
    listed = await versions.machines(outdated=False)

    (taken,) = dispatched  # one of the two (same priority, same instant), to the new machine
    assert taken.machine_id == new.id and taken.run_id in {first, second}
    # The other waits: the new machine's one bot is busy, and the old machine is outdated.
    (other,) = {first, second} - {taken.run_id}
    assert [(q["run"]["id"], q["waitReason"]) for q in queue] == [(other, "NO_FREE_BOT")]
    assert new.id in listed and old.id not in listed


@pytest.mark.rule("R41")
@pytest.mark.rule("R7")
async def test_r41_without_a_minimum_a_heartbeat_leaves_the_version_to_finished_runs(
    versions: Versions, runs: Runs, domain: DomainContext
) -> None:
    machine, target = await versions.ready()

    await runs.heartbeat(machine, {}, runtimeVersion=NEW)
    unchanged = (await versions.machines())[machine.id]
    run_id = await runs.trigger(target)
    (dispatched,) = await dispatch_once(domain)

    assert (unchanged["version"], unchanged["runtimeOutdated"]) == (OLD, False)
    assert dispatched.run_id == run_id  # no minimum: any version will do


@pytest.mark.rule("R41")
async def test_r41_taking_the_minimum_away_makes_every_machine_eligible(
    versions: Versions, runs: Runs, domain: DomainContext
) -> None:
    _, target = await versions.ready()
    await versions.minimum(NEW)
    run_id = await runs.trigger(target)
    assert await dispatch_once(domain) == []

    cleared = await versions.minimum("")
    (dispatched,) = await dispatch_once(domain)

    assert cleared["environment"] == {"minRuntimeVersion": None}
    assert dispatched.run_id == run_id


@pytest.mark.rule("R41")
@pytest.mark.parametrize("version", ["two", "2.9.0.1.5", "-1", "2..9"])
async def test_r41_a_minimum_that_is_not_a_dotted_version_is_refused_and_changes_nothing(
    versions: Versions, fleet: Fleet, version: str
) -> None:
    await versions.minimum(NEW)
    refused = await versions.minimum(version)
    data = await fleet.api.data(
        "{ environments { id minRuntimeVersion } }", token=fleet.admin_token
    )

    assert refused["__typename"] == "ValidationError"
    assert (refused["code"], refused["field"]) == ("INVALID_VERSION", "minRuntimeVersion")
    assert "minRuntimeVersion" in refused["message"]
    (env,) = [e for e in data["environments"] if e["id"] == fleet.environment_id]
    assert env["minRuntimeVersion"] == NEW


@pytest.mark.rule("R41")
async def test_r41_only_environment_admins_set_the_minimum(
    versions: Versions, fleet: Fleet
) -> None:
    maker = await versions.owner()
    refused = await versions.minimum(NEW, token=maker.token)
    data = await fleet.api.data(
        "{ environments { id minRuntimeVersion } }", token=fleet.admin_token
    )

    assert refused["__typename"] == "PermissionDeniedError"
    (env,) = [e for e in data["environments"] if e["id"] == fleet.environment_id]
    assert env["minRuntimeVersion"] is None


@pytest.mark.rule("R41")
async def test_r41_a_new_enough_heartbeat_wakes_the_lifespan_dispatcher_at_once(
    settings: Settings, clock: ManualClock, admin_token: str, default_environment_id: str
) -> None:
    """Only events can explain the dispatch: the periodic sweep is set an hour away."""
    async with live_dispatcher(settings, clock, admin_token, default_environment_id) as runs:
        fleet = runs.fleet
        await runs.capacity(10)
        versions = Versions(fleet, runs)
        machine, target = await versions.ready()
        await versions.minimum(NEW)
        run_id = await runs.trigger(target)
        waiting = await runs.run(run_id)
        await runs.heartbeat(machine, {}, runtimeVersion=NEW)
        for _ in range(300):
            dispatched = await runs.run(run_id)
            if dispatched["status"] == "DISPATCHED":
                break
            await asyncio.sleep(0.01)

    assert (waiting["status"], waiting["waitReason"]) == ("QUEUED", "RUNTIME_OUTDATED")
    assert dispatched["status"] == "DISPATCHED"
