"""R40: retry policies (per environment, overridden per desktop flow), automatic retries after
a lost machine, a queue timeout or chosen error codes, retrying by hand, and never two live runs
in one retry chain. Through the API; the dispatcher is driven by hand and time by the test clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from api.context import Context
from api.schema import schema
from domain.context import DomainContext
from domain.dispatch.dispatcher import Dispatcher, dispatch_once, sweep_once
from domain.identity import identity
from domain.kernel.clock import ManualClock
from domain.store.models import FlowRun
from tests.api.group_steps import Steps
from tests.api.test_visibility import answered_as_unknown, assert_not_found, snapshot
from tests.connection_steps import DELETE_CONNECTION
from tests.graphql import Fleet, Person, RegisteredMachine
from tests.runs_given import Runs, Target

pytestmark = pytest.mark.asyncio

POLICY_FIELDS = "maxAttempts retryOn errorCodes delaySeconds backoffFactor"

SET_ENVIRONMENT_POLICY = f"""
mutation($input: UpdateEnvironmentInput!) {{
  updateEnvironment(input: $input) {{
    __typename
    ... on EnvironmentPayload {{ environment {{ retryPolicy {{ {POLICY_FIELDS} }} }} }}
    ... on ValidationError {{ code message field }}
    ... on UserError {{ code message }}
  }}
}}"""

SET_FLOW_POLICY = f"""
mutation($id: ID!, $policy: RetryPolicyInput) {{
  setDesktopFlowRetryPolicy(id: $id, policy: $policy) {{
    __typename
    ... on DesktopFlowPayload {{
      flow {{ retryPolicy {{ {POLICY_FIELDS} }} effectiveRetryPolicy {{ {POLICY_FIELDS} }} }}
    }}
    ... on ValidationError {{ code message field }}
    ... on UserError {{ code message }}
  }}
}}"""

ENVIRONMENT_POLICY = f"{{ environments {{ id retryPolicy {{ {POLICY_FIELDS} }} }} }}"

CHAIN_FIELDS = """
id status priority errorCode retryAttempt notBefore queuedAt waitReason attempt
retryOf { id } retriedBy { id } triggeredBy { id } targetMachine { id } flow { id }
"""
RUN = "query($id: ID!) { run(id: $id) { " + CHAIN_FIELDS + " } }"

RETRY_RUN = (
    """
mutation($id: ID!) {
  retryRun(id: $id) {
    __typename
    ... on FlowRunPayload { run { """
    + CHAIN_FIELDS
    + """ } }
    ... on UserError { code message }
  }
}"""
)

RUN_UPDATES = """
subscription($flow: ID!) {
  runUpdates(filter: {flowId: $flow}) { snapshot runs { id status retryAttempt retryOf { id } } }
}"""


class Retries:
    """Given-steps for R40 on top of the run steps."""

    def __init__(self, fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock):
        self.fleet = fleet
        self.runs = runs
        self.domain = domain
        self.clock = clock

    async def environment_policy(self, token: str | None = None, **policy: Any) -> dict:
        data = await self.fleet.api.data(
            SET_ENVIRONMENT_POLICY,
            {"input": {"id": self.fleet.environment_id, "retryPolicy": policy}},
            token=token or self.fleet.admin_token,
        )
        return data["updateEnvironment"]

    async def flow_policy(self, flow_id: str, token: str, policy: dict | None) -> dict:
        data = await self.fleet.api.data(
            SET_FLOW_POLICY, {"id": flow_id, "policy": policy}, token=token
        )
        return data["setDesktopFlowRetryPolicy"]

    async def current_environment_policy(self) -> dict:
        data = await self.fleet.api.data(ENVIRONMENT_POLICY, token=self.fleet.admin_token)
        (env,) = [e for e in data["environments"] if e["id"] == self.fleet.environment_id]
        return env["retryPolicy"]

    async def ready(self) -> tuple[Person, RegisteredMachine, Target]:
        owner = await self.fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
        await self.runs.capacity(10)
        machine = await self.runs.machine(owner, bots=1)
        return owner, machine, await self.runs.target(owner, machine=machine)

    async def run(self, run_id: str, token: str | None = None) -> dict:
        data = await self.fleet.api.data(RUN, {"id": run_id}, token=token or self.fleet.admin_token)
        return data["run"]

    async def retry(self, run_id: str, token: str) -> dict:
        return (await self.fleet.api.data(RETRY_RUN, {"id": run_id}, token=token))["retryRun"]

    async def fail(self, machine: RegisteredMachine, run_id: str, code: str) -> None:
        """Dispatch the run to the machine, start it and report it FAILED with ``code``."""
        await self.runs.heartbeat(machine)  # connected, whatever the clock did
        await dispatch_once(self.domain)
        run = await self.run(run_id)
        assert run["status"] == "DISPATCHED", run
        started = await self.runs.confirm(machine, run_id, run["attempt"])
        assert started["__typename"] == "FlowRunPayload", started
        ended = await self.runs.finish(
            machine, run_id, run["attempt"], outcome="FAILED", errorCode=code
        )
        assert ended["__typename"] == "FlowRunPayload", ended

    async def succeed(self, machine: RegisteredMachine, run_id: str) -> None:
        await self.runs.heartbeat(machine)
        await dispatch_once(self.domain)
        run = await self.run(run_id)
        await self.runs.confirm(machine, run_id, run["attempt"])
        ended = await self.runs.finish(machine, run_id, run["attempt"])
        assert ended["__typename"] == "FlowRunPayload", ended


@pytest.fixture
def retries(fleet: Fleet, runs: Runs, domain: DomainContext, clock: ManualClock) -> Retries:
    return Retries(fleet, runs, domain, clock)


def iso(moment: Any) -> str:
    return moment.isoformat()


@pytest.mark.rule("R40")
async def test_r40_a_run_whose_machine_is_lost_is_retried_after_its_delay_as_attempt_2(
    retries: Retries, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    policy = await retries.environment_policy(
        maxAttempts=3, retryOn=["MACHINE_LOST"], delaySeconds=30
    )
    assert policy["environment"]["retryPolicy"] == {
        "maxAttempts": 3,
        "retryOn": ["MACHINE_LOST"],
        "errorCodes": [],
        "delaySeconds": 30,
        "backoffFactor": 2.0,
    }
    owner, machine, target = await retries.ready()
    first = await runs.trigger(target, priority="HIGH")
    await dispatch_once(domain)
    await runs.confirm(machine, first, 1)

    clock.advance(timedelta(minutes=7, seconds=1))  # R9's two minutes and R28's grace
    swept = await sweep_once(domain)
    (second,) = swept.retries
    lost_at = clock.now()
    await runs.heartbeat(machine)  # the machine is back
    waiting = await retries.run(second)
    original = await retries.run(first)
    too_early = await dispatch_once(domain)
    clock.advance(timedelta(seconds=30))
    on_time = await dispatch_once(domain)

    assert swept.lost == [first]
    assert (original["status"], original["errorCode"]) == ("FAILED", "MACHINE_LOST")
    assert original["retriedBy"] == {"id": second}
    assert original["retryAttempt"] == 1 and original["retryOf"] is None
    assert waiting["status"] == "QUEUED"
    assert waiting["retryAttempt"] == 2
    assert waiting["retryOf"] == {"id": first}
    assert waiting["waitReason"] == "RETRY_DELAY"
    assert waiting["notBefore"] == iso(lost_at + timedelta(seconds=30))
    # The original's priority, queue, flow and trigger.
    assert waiting["priority"] == "HIGH"
    assert waiting["targetMachine"] == {"id": machine.id}
    assert waiting["flow"] == {"id": target.flow_id}
    assert waiting["triggeredBy"] == {"id": owner.id}
    assert too_early == []
    assert [(d.run_id, d.machine_id) for d in on_time] == [(second, machine.id)]


@pytest.mark.rule("R40")
async def test_r40_a_delayed_retry_takes_no_room_from_the_runs_behind_it(
    retries: Retries, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    await retries.environment_policy(maxAttempts=2, errorCodes=["FLAKY"], delaySeconds=60)
    _, machine, target = await retries.ready()
    first = await runs.trigger(target, priority="HIGH")
    await retries.fail(machine, first, "FLAKY")
    later = await runs.trigger(target)

    dispatched = await dispatch_once(domain)
    queue = await runs.machine_queue(machine.id)

    assert [d.run_id for d in dispatched] == [later]
    (retry,) = [e for e in queue if e["run"]["id"] != later]
    assert retry["waitReason"] == "RETRY_DELAY"


@pytest.mark.rule("R40")
async def test_r40_retries_stop_when_the_chain_has_made_its_attempts_and_wait_longer_each_time(
    retries: Retries, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    await retries.environment_policy(
        maxAttempts=3, errorCodes=["FLAKY"], delaySeconds=10, backoffFactor=3
    )
    _, machine, target = await retries.ready()
    chain = [await runs.trigger(target)]
    delays = []
    for _ in range(3):
        await retries.fail(machine, chain[-1], "FLAKY")
        ended = await retries.run(chain[-1])
        if ended["retriedBy"] is None:
            break
        retry = await retries.run(ended["retriedBy"]["id"])
        delays.append(retry["notBefore"])
        chain.append(retry["id"])
        clock.advance(timedelta(seconds=90))
    ends = [await retries.run(run_id) for run_id in chain]

    assert [r["retryAttempt"] for r in ends] == [1, 2, 3]
    assert [r["status"] for r in ends] == ["FAILED", "FAILED", "FAILED"]
    assert [r["retryOf"] for r in ends] == [None, {"id": chain[0]}, {"id": chain[1]}]
    assert ends[-1]["retriedBy"] is None
    # 10 s, then 10 x 3 s: each measured from the ending (the failures were 90 s apart).
    start = ManualClock().now()
    assert delays == [iso(start + timedelta(seconds=10)), iso(start + timedelta(seconds=120))]


@pytest.mark.rule("R40")
async def test_r40_only_the_chosen_error_codes_are_retried(
    retries: Retries, runs: Runs, domain: DomainContext
) -> None:
    await retries.environment_policy(maxAttempts=5, errorCodes=["FLAKY", "SCREEN_TIMEOUT"])
    _, machine, target = await retries.ready()
    chosen = await runs.trigger(target)
    await retries.fail(machine, chosen, "SCREEN_TIMEOUT")
    other = await runs.trigger(target)
    await retries.fail(machine, other, "BAD_INPUT")
    succeeded = await runs.trigger(target)
    await retries.succeed(machine, succeeded)

    assert (await retries.run(chosen))["retriedBy"] is not None
    assert (await retries.run(other))["retriedBy"] is None
    assert (await retries.run(succeeded))["retriedBy"] is None


@pytest.mark.rule("R40")
@pytest.mark.rule("R27")
async def test_r40_a_run_timed_out_in_the_queue_is_retried_and_its_wait_counts_from_its_delay(
    retries: Retries, runs: Runs, domain: DomainContext, clock: ManualClock, fleet: Fleet
) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    await runs.capacity(10, max_queue_seconds=60)
    await retries.environment_policy(maxAttempts=2, retryOn=["QUEUE_TIMEOUT"], delaySeconds=5)
    machine = await runs.machine(owner, bots=1, connected=False)  # nothing will take it
    target = await runs.target(owner, machine=machine)
    first = await runs.trigger(target)

    clock.advance(timedelta(seconds=61))
    timed_out = await sweep_once(domain)
    (second,) = timed_out.retries
    clock.advance(timedelta(seconds=62))  # 57 s past its delay: not yet
    kept = await sweep_once(domain)
    clock.advance(timedelta(seconds=4))
    last = await sweep_once(domain)
    ends = [await retries.run(run_id) for run_id in (first, second)]

    assert timed_out.timed_out == [first]
    assert kept.timed_out == []
    assert last.timed_out == [second]
    assert last.retries == []  # two runs: the chain's attempts are made
    assert [(r["status"], r["errorCode"]) for r in ends] == [
        ("TIMED_OUT", "NO_CANDIDATE_MACHINE"),
        ("TIMED_OUT", "NO_CANDIDATE_MACHINE"),
    ]
    assert ends[1]["retryOf"] == {"id": first}


@pytest.mark.rule("R40")
async def test_r40_a_flows_own_policy_overrides_its_environments(
    retries: Retries, runs: Runs, domain: DomainContext
) -> None:
    await retries.environment_policy(maxAttempts=2, errorCodes=["FLAKY"], delaySeconds=600)
    owner, machine, target = await retries.ready()
    own = await retries.flow_policy(target.flow_id, owner.token, {"maxAttempts": 1})
    follows = await runs.target(owner, machine=machine)

    overridden = await runs.trigger(target)
    await retries.fail(machine, overridden, "FLAKY")
    default = await runs.trigger(follows)
    await retries.fail(machine, default, "FLAKY")
    cleared = await retries.flow_policy(target.flow_id, owner.token, None)
    again = await runs.trigger(target)
    await retries.fail(machine, again, "FLAKY")

    assert own["flow"]["retryPolicy"]["maxAttempts"] == 1
    assert own["flow"]["effectiveRetryPolicy"]["maxAttempts"] == 1
    assert (await retries.run(overridden))["retriedBy"] is None
    assert (await retries.run(default))["retriedBy"] is not None
    assert cleared["flow"]["retryPolicy"] is None
    assert cleared["flow"]["effectiveRetryPolicy"]["errorCodes"] == ["FLAKY"]
    assert (await retries.run(again))["retriedBy"] is not None


@pytest.mark.rule("R40")
async def test_r40_a_person_retries_a_finished_run_by_hand_at_once(
    retries: Retries, runs: Runs, domain: DomainContext, fleet: Fleet
) -> None:
    owner, machine, target = await retries.ready()
    admin = await fleet.person("ENVIRONMENT_ADMIN")
    first = await runs.trigger(target, priority="HIGH")
    not_finished = await retries.retry(first, owner.token)
    await retries.succeed(machine, first)  # no policy: a success, and retried all the same

    retried = await retries.retry(first, admin.token)
    dispatched = await dispatch_once(domain)
    twice = await retries.retry(first, owner.token)

    assert (not_finished["__typename"], not_finished["code"]) == (
        "ConflictError",
        "RUN_NOT_FINISHED",
    )
    assert retried["__typename"] == "FlowRunPayload", retried
    run = retried["run"]
    assert (run["status"], run["retryAttempt"], run["retryOf"]) == ("QUEUED", 2, {"id": first})
    assert run["priority"] == "HIGH"
    assert run["triggeredBy"] == {"id": admin.id}  # who retried it
    assert run["notBefore"] is None
    assert [d.run_id for d in dispatched] == [run["id"]]
    assert (twice["__typename"], twice["code"]) == ("ConflictError", "RUN_ALREADY_RETRIED")
    assert (await retries.run(first))["retriedBy"] == {"id": run["id"]}


@pytest.mark.rule("R40")
async def test_r40_never_two_live_runs_in_one_chain(
    retries: Retries, runs: Runs, domain: DomainContext, fleet: Fleet
) -> None:
    """Retried automatically, a run cannot be retried by hand too; the live retry cannot be
    retried before it ends; and of people retrying one run at the same moment, one does."""
    await retries.environment_policy(maxAttempts=3, errorCodes=["FLAKY"], delaySeconds=60)
    owner, machine, target = await retries.ready()
    first = await runs.trigger(target)
    await retries.fail(machine, first, "FLAKY")
    retry_id = (await retries.run(first))["retriedBy"]["id"]

    by_hand = await retries.retry(first, owner.token)
    live = await retries.retry(retry_id, owner.token)
    other = await runs.trigger(target)
    await retries.succeed(machine, other)
    at_once = await asyncio.gather(*(retries.retry(other, owner.token) for _ in range(4)))
    chain = await fleet.api.data(
        "query($f: ID!) { flowRuns(filter: {flowId: $f}) { nodes { id status retryOf { id } } } }",
        {"f": target.flow_id},
        token=owner.token,
    )

    assert (by_hand["__typename"], by_hand["code"]) == ("ConflictError", "RUN_ALREADY_RETRIED")
    assert (live["__typename"], live["code"]) == ("ConflictError", "RUN_NOT_FINISHED")
    assert sorted(r["__typename"] for r in at_once) == ["ConflictError"] * 3 + ["FlowRunPayload"]
    assert {r.get("code") for r in at_once if r["__typename"] == "ConflictError"} == {
        "RUN_ALREADY_RETRIED"
    }
    retries_of_other = [r for r in chain["flowRuns"]["nodes"] if r["retryOf"] == {"id": other}]
    assert len(retries_of_other) == 1


@pytest.mark.rule("R40")
async def test_r40_a_run_whose_connection_is_gone_is_not_retried(
    retries: Retries, runs: Runs, domain: DomainContext, fleet: Fleet
) -> None:
    await retries.environment_policy(maxAttempts=3, errorCodes=["FLAKY"], delaySeconds=60)
    owner, machine, target = await retries.ready()
    first = await runs.trigger(target)
    await retries.succeed(machine, first)
    deleted = await fleet.api.data(
        DELETE_CONNECTION, {"id": target.connection_id}, token=owner.token
    )
    assert deleted["deleteConnection"]["__typename"] == "DeletedConnectionPayload", deleted
    before = await snapshot(domain)

    refused = await retries.retry(first, owner.token)

    assert (refused["__typename"], refused["code"]) == ("ConflictError", "RUN_NOT_RETRIABLE")
    assert await snapshot(domain) == before


@pytest.mark.rule("R40")
async def test_r40_the_database_refuses_a_second_retry_of_one_run(
    retries: Retries, runs: Runs, domain: DomainContext
) -> None:
    """The unique index on retry_of_id holds even for a writer that skipped the check."""
    _, machine, target = await retries.ready()
    first = await runs.trigger(target)
    await retries.succeed(machine, first)
    ok = await retries.retry(first, target.owner.token)
    assert ok["__typename"] == "FlowRunPayload"

    with pytest.raises(IntegrityError):
        async with domain.db.write() as session:
            original = await session.get(FlowRun, first)
            assert original is not None
            copy = original.model_dump(exclude={"id"})
            session.add(FlowRun(**{**copy, "retry_of_id": first, "retry_attempt": 2}))


@pytest.mark.rule("R40")
@pytest.mark.rule("R38")
async def test_r40_a_run_the_caller_cannot_see_is_answered_as_an_unknown_id(
    retries: Retries, runs: Runs, domain: DomainContext, fleet: Fleet
) -> None:
    _, machine, target = await retries.ready()
    first = await runs.trigger(target)
    await retries.succeed(machine, first)
    stranger = await fleet.person("ENVIRONMENT_MAKER")

    hidden = await answered_as_unknown(
        fleet, domain, RETRY_RUN, lambda i: {"id": i}, first, stranger
    )
    flow = await answered_as_unknown(
        fleet,
        domain,
        SET_FLOW_POLICY,
        lambda i: {"id": i, "policy": {"maxAttempts": 3}},
        target.flow_id,
        stranger,
    )

    assert_not_found(hidden, "run", first)
    assert_not_found(flow, "desktop flow", target.flow_id)


@pytest.mark.rule("R40")
@pytest.mark.rule("R12")
async def test_r40_who_sees_a_run_only_through_its_machine_may_not_retry_it(
    retries: Retries, runs: Runs, domain: DomainContext, fleet: Fleet
) -> None:
    owner, machine, target = await retries.ready()
    first = await runs.trigger(target)
    await retries.succeed(machine, first)
    user = await fleet.person("MACHINE_USER")
    shared = await Steps(fleet).share_machine(owner, machine.id, user.id, "USER")
    assert shared["__typename"] == "MachinePayload", shared
    before = await snapshot(domain)

    seen = await retries.run(first, token=user.token)
    refused = await retries.retry(first, user.token)

    assert seen is not None and seen["status"] == "SUCCEEDED"
    assert (refused["__typename"], refused["code"]) == (
        "PermissionDeniedError",
        "PERMISSION_DENIED",
    )
    assert await snapshot(domain) == before


@pytest.mark.rule("R40")
async def test_r40_only_environment_admins_set_the_environments_policy(
    retries: Retries, fleet: Fleet
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    before = await retries.current_environment_policy()

    refused = await retries.environment_policy(token=maker.token, maxAttempts=3)

    assert refused["__typename"] in ("PermissionDeniedError", "NotFoundError"), refused
    assert await retries.current_environment_policy() == before


@pytest.mark.rule("R40")
@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"maxAttempts": 0}, "retryPolicy.maxAttempts"),
        ({"maxAttempts": 11}, "retryPolicy.maxAttempts"),
        ({"maxAttempts": 2, "delaySeconds": -1}, "retryPolicy.delaySeconds"),
        ({"maxAttempts": 2, "delaySeconds": 86401}, "retryPolicy.delaySeconds"),
        ({"maxAttempts": 2, "backoffFactor": 0.5}, "retryPolicy.backoffFactor"),
        ({"maxAttempts": 2, "backoffFactor": 11}, "retryPolicy.backoffFactor"),
        ({"maxAttempts": 2, "errorCodes": [""]}, "retryPolicy.errorCodes"),
        ({"maxAttempts": 2, "errorCodes": ["X" * 65]}, "retryPolicy.errorCodes"),
        ({"maxAttempts": 2, "errorCodes": [f"E{i}" for i in range(21)]}, "retryPolicy.errorCodes"),
    ],
)
async def test_r40_a_bad_policy_is_refused_naming_its_field_and_changes_nothing(
    retries: Retries, runs: Runs, domain: DomainContext, policy: dict, field: str
) -> None:
    owner, _, target = await retries.ready()
    before = await snapshot(domain)

    environment = await retries.environment_policy(**policy)
    flow = await retries.flow_policy(target.flow_id, owner.token, policy)

    for refused in (environment, flow):
        assert refused["__typename"] == "ValidationError", refused
        assert (refused["code"] in ("INVALID_VALUE", "INVALID_NAME")) and refused["field"] == field
    assert await snapshot(domain) == before
    assert (await retries.current_environment_policy())["maxAttempts"] == 1


@pytest.mark.rule("R40")
@pytest.mark.rule("R35")
async def test_r40_a_retry_shows_in_the_subscriptions_that_carry_runs(
    retries: Retries, runs: Runs, domain: DomainContext
) -> None:
    await retries.environment_policy(maxAttempts=2, errorCodes=["FLAKY"], delaySeconds=60)
    owner, machine, target = await retries.ready()
    first = await runs.trigger(target)
    principal = await identity.authenticate(domain, owner.token)
    stream = await schema.subscribe(
        RUN_UPDATES,
        variable_values={"flow": target.flow_id},
        context_value=Context(domain=domain, credential=principal),
    )
    try:
        snapshot_update = await anext(stream)  # type: ignore[arg-type]
        await retries.fail(machine, first, "FLAKY")
        seen: list[dict] = []
        while not any(r["retryAttempt"] == 2 for r in seen):
            update = await asyncio.wait_for(anext(stream), 5)  # type: ignore[arg-type]
            seen.extend(update.data["runUpdates"]["runs"])
    finally:
        await stream.aclose()  # type: ignore[union-attr]

    assert snapshot_update.data["runUpdates"]["snapshot"] is True
    (retry,) = [r for r in seen if r["retryAttempt"] == 2]
    assert (retry["status"], retry["retryOf"]) == ("QUEUED", {"id": first})


@pytest.mark.rule("R40")
async def test_r40_the_dispatcher_wakes_when_a_retrys_delay_ends(
    retries: Retries, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    """No event marks the end of a delay: the dispatcher's own alarm does, long before its
    next sweep (set here to a minute)."""
    await retries.environment_policy(maxAttempts=2, errorCodes=["FLAKY"], delaySeconds=1)
    _, machine, target = await retries.ready()
    first = await runs.trigger(target)
    await retries.fail(machine, first, "FLAKY")
    retry_id = (await retries.run(first))["retriedBy"]["id"]
    slow_sweeps = dataclasses.replace(
        domain,
        settings=domain.settings.model_copy(update={"dispatch_sweep_interval_seconds": 60.0}),
    )
    dispatcher = Dispatcher(slow_sweeps)
    await dispatcher.start()
    try:
        await asyncio.sleep(0.3)  # its first passes: the retry still waits its delay
        waiting = (await retries.run(retry_id))["status"]
        clock.advance(timedelta(seconds=1))
        deadline = time.monotonic() + 5
        while (await retries.run(retry_id))["status"] == "QUEUED":
            assert time.monotonic() < deadline, "the retry was not dispatched after its delay"
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()

    assert waiting == "QUEUED"
    assert (await retries.run(retry_id))["status"] == "DISPATCHED"


FOLLOW_RUN = """
subscription($id: ID!) { runUpdates(runId: $id) { snapshot runs { id status waitReason } } }"""


@pytest.mark.rule("R40")
@pytest.mark.rule("R29")
async def test_r40_when_a_delay_ends_the_runs_watchers_hear_why_it_waits_now(
    retries: Retries, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    """Its machine went into maintenance meanwhile: the retry waits MAINTENANCE once its delay
    is over, and whoever follows it hears so then, though nothing else happened."""
    await retries.environment_policy(maxAttempts=2, errorCodes=["FLAKY"], delaySeconds=1)
    owner, machine, target = await retries.ready()
    first = await runs.trigger(target)
    await retries.fail(machine, first, "FLAKY")
    retry_id = (await retries.run(first))["retriedBy"]["id"]
    await runs.maintenance(machine.id, True)
    principal = await identity.authenticate(domain, owner.token)
    stream = await schema.subscribe(
        FOLLOW_RUN,
        variable_values={"id": retry_id},
        # As over a websocket: each event reads afresh (loaders, clock), not once per request.
        context_value=Context(domain=domain, credential=principal, bearer=owner.token),
    )
    slow_sweeps = dataclasses.replace(
        domain,
        settings=domain.settings.model_copy(update={"dispatch_sweep_interval_seconds": 60.0}),
    )
    dispatcher = Dispatcher(slow_sweeps)
    updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def listen() -> None:
        async for update in stream:  # type: ignore[union-attr]
            (run,) = update.data["runUpdates"]["runs"]
            await updates.put(run)

    listening = asyncio.create_task(listen())
    try:
        opening = await updates.get()
        await dispatcher.start()
        await asyncio.sleep(0.5)  # its first passes, and whatever they stir up
        before = [updates.get_nowait() for _ in range(updates.qsize())]
        clock.advance(timedelta(seconds=1))
        heard = await asyncio.wait_for(updates.get(), 5)
    finally:
        await dispatcher.stop()
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await stream.aclose()  # type: ignore[union-attr]

    assert opening["waitReason"] == "RETRY_DELAY"
    assert all(run["waitReason"] == "RETRY_DELAY" for run in before)
    assert heard == {"id": retry_id, "status": "QUEUED", "waitReason": "MAINTENANCE"}
