"""Session-lock recommendations, "Desktop flows not running" (R31-R34), through the GraphQL API.

The dispatcher is driven by hand (`dispatch_once`, `sweep_once`) with the manual clock; the last
test lets the machine-runtime simulator carry out the END_SESSION command end to end.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from deskfleet.simulator import Simulator, SimulatorConfig
from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once, sweep_once
from domain.kernel.clock import ManualClock
from tests.graphql import Fleet, Person, RegisteredMachine
from tests.runs_given import COMMANDS, UPDATE_ENVIRONMENT, Runs, Target

pytestmark = pytest.mark.asyncio

USER = r"CONTOSO\robot"

RECOMMENDATION = """
id title status environmentId recipientId raisedAt windowEndsAt windowSecondsLeft resolvedAt
recipient { id }
affectedRuns { runId }
runs {
  runId flowId machineId username sessionState outcome blockedSince leftAt disconnectRequestedAt
  run { id status errorCode } flow { id } machine { id }
}
"""
LIST = (
    """
query($env: ID, $every: Boolean! = false, $resolved: Boolean! = false) {
  sessionRecommendations(environmentId: $env, everyRecipient: $every, includeResolved: $resolved) {
    REC
  }
}"""
).replace("REC", RECOMMENDATION)
ONE = "query($id: ID!) { sessionRecommendation(id: $id) { REC } }".replace("REC", RECOMMENDATION)
DISCONNECT = (
    """
mutation($id: ID!, $runs: [ID!]!) {
  disconnectSessionUsers(recommendationId: $id, runIds: $runs) {
    __typename
    ... on SessionRecommendationPayload { recommendation { REC } }
    ... on UserError { code message }
  }
}"""
).replace("REC", RECOMMENDATION)
REFRESH = (
    """
mutation($id: ID!) {
  refreshSessionRecommendation(id: $id) {
    __typename
    ... on SessionRecommendationPayload { recommendation { REC } }
    ... on UserError { code message }
  }
}"""
).replace("REC", RECOMMENDATION)
COMMANDS_WITH_USER = "{ machineCommands { id kind runId username } }"
SHARE_MACHINE = """
mutation($input: ShareMachineInput!) {
  shareMachine(input: $input) { __typename ... on UserError { code message } }
}"""


ENVIRONMENTS = "{ environments { id sessionRecommendations } }"


def _setting(data: dict[str, Any], scene: Scene) -> bool:
    (env,) = [e for e in data["environments"] if e["id"] == scene.fleet.environment_id]
    return env["sessionRecommendations"]


class Scene:
    """Given-steps: an environment with the R31 setting, machines with sessions, blocked runs."""

    def __init__(self, fleet: Fleet, runs: Runs, domain: DomainContext) -> None:
        self.fleet = fleet
        self.runs = runs
        self.domain = domain
        self.api = fleet.api

    async def setting(self, on: bool, token: str | None = None) -> dict[str, Any]:
        data = await self.api.data(
            UPDATE_ENVIRONMENT,
            {"input": {"id": self.fleet.environment_id, "sessionRecommendations": on}},
            token=token or self.fleet.admin_token,
        )
        return data["updateEnvironment"]

    async def owner(self) -> Person:
        return await self.fleet.person("ENVIRONMENT_MAKER", attended_licence=True)

    async def locked(
        self, owner: Person, state: str = "LOCKED", *, bots: int = 1
    ) -> tuple[RegisteredMachine, Target]:
        await self.runs.capacity(20)
        machine = await self.runs.machine(owner, bots=bots, sessions={USER: state})
        return machine, await self.runs.target(owner, machine=machine, username=USER)

    async def listed(self, who: Person | str, **variables: Any) -> list[dict[str, Any]]:
        token = who if isinstance(who, str) else who.token
        data = await self.api.data(LIST, variables, token=token)
        return data["sessionRecommendations"]

    async def everyone(self) -> list[dict[str, Any]]:
        return await self.listed(self.fleet.admin_token, every=True, resolved=True)

    async def one(self, rec_id: str, who: Person | str) -> dict[str, Any] | None:
        token = who if isinstance(who, str) else who.token
        return (await self.api.data(ONE, {"id": rec_id}, token=token))["sessionRecommendation"]

    async def disconnect(self, rec_id: str, run_ids: list[str], who: Person) -> dict[str, Any]:
        data = await self.api.data(DISCONNECT, {"id": rec_id, "runs": run_ids}, token=who.token)
        return data["disconnectSessionUsers"]

    async def refresh(self, rec_id: str, who: Person) -> dict[str, Any]:
        data = await self.api.data(REFRESH, {"id": rec_id}, token=who.token)
        return data["refreshSessionRecommendation"]


@pytest.fixture
def scene(fleet: Fleet, runs: Runs, domain: DomainContext) -> Scene:
    return Scene(fleet, runs, domain)


# --- R31: the setting -----------------------------------------------------------------------


@pytest.mark.rule("R31")
async def test_r31_setting_off_by_default_raises_nothing(
    scene: Scene, runs: Runs, domain: DomainContext
) -> None:
    env = await scene.api.data(ENVIRONMENTS, token=scene.fleet.admin_token)
    owner = await scene.owner()
    _, target = await scene.locked(owner)
    run_id = await runs.trigger(target)

    await dispatch_once(domain)
    await sweep_once(domain)

    assert _setting(env, scene) is False
    assert (await runs.run(run_id))["waitReason"] == "USER_SESSION_EXISTS"
    assert await scene.listed(owner) == []
    assert await scene.everyone() == []


@pytest.mark.rule("R31")
async def test_r31_only_environment_admins_switch_it(scene: Scene) -> None:
    maker = await scene.owner()

    refused = await scene.setting(True, token=maker.token)
    after_refusal = await scene.api.data(ENVIRONMENTS, token=scene.fleet.admin_token)
    allowed = await scene.setting(True)

    assert refused["__typename"] == "PermissionDeniedError", refused
    assert _setting(after_refusal, scene) is False
    assert allowed["__typename"] == "EnvironmentPayload"


# --- R32: detection and recipients ----------------------------------------------------------


@pytest.mark.rule("R32")
@pytest.mark.parametrize("state", ["LOCKED", "DISCONNECTED"])
async def test_r32_a_locked_or_disconnected_session_raises_one_recommendation(
    scene: Scene, runs: Runs, domain: DomainContext, clock: ManualClock, state: str
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    machine, target = await scene.locked(owner, state)
    first = await runs.trigger(target)
    clock.advance(timedelta(seconds=5))
    second = await runs.trigger(target)

    await dispatch_once(domain)
    clock.advance(timedelta(seconds=30))
    await dispatch_once(domain)  # nothing new: the same one, unchanged
    (rec,) = await scene.listed(owner)

    assert rec["title"] == "Desktop flows not running"
    assert rec["status"] == "OPEN"
    assert rec["recipientId"] == owner.id == rec["recipient"]["id"]
    assert rec["environmentId"] == scene.fleet.environment_id
    assert rec["windowSecondsLeft"] == 10 * 60 - 30
    assert [r["runId"] for r in rec["affectedRuns"]] == [first, second]
    for entry, run_id in zip(rec["runs"], [first, second], strict=True):
        assert entry == {
            "runId": run_id,
            "flowId": target.flow_id,
            "machineId": machine.id,
            "username": USER,
            "sessionState": state,
            "outcome": "BLOCKED",
            "blockedSince": rec["raisedAt"],
            "leftAt": None,
            "disconnectRequestedAt": None,
            "run": {"id": run_id, "status": "QUEUED", "errorCode": None},
            "flow": {"id": target.flow_id},
            "machine": {"id": machine.id},
        }
    # Run and flow details resolve for the recipient (R34).
    assert (await runs.run(first, token=owner.token))["flow"]["id"] == target.flow_id


async def _no_recommendation_case(case: str, scene: Scene, runs: Runs, clock: ManualClock) -> str:
    owner = await scene.owner()
    if case == "active session":
        _, target = await scene.locked(owner, "ACTIVE")
        return await runs.trigger(target)
    if case == "maintenance":
        machine, target = await scene.locked(owner)
        await runs.maintenance(machine.id, True)
        return await runs.trigger(target)
    if case == "offline":
        _, target = await scene.locked(owner)
        clock.advance(timedelta(seconds=scene.domain.settings.heartbeat_timeout_seconds + 1))
        return await runs.trigger(target)
    if case == "attended":
        _, target = await scene.locked(owner)
        return await runs.trigger(target, mode="ATTENDED")
    if case == "no free bot":
        machine, target = await scene.locked(owner, "ACTIVE")
        busy = await runs.trigger(target)
        await runs.heartbeat(machine, {})
        await dispatch_once(scene.domain)
        assert (await runs.run(busy))["status"] == "DISPATCHED"
        await runs.heartbeat(machine, {USER: "LOCKED"})
        return await runs.trigger(target)
    raise AssertionError(case)


NO_RECOMMENDATION = {
    "active session": "USER_SESSION_EXISTS",
    "maintenance": "MAINTENANCE",
    "offline": "MACHINE_OFFLINE",
    "attended": "NO_ACTIVE_SESSION",
    "no free bot": "NO_FREE_BOT",
}


@pytest.mark.rule("R32")
@pytest.mark.parametrize("case", sorted(NO_RECOMMENDATION))
async def test_r32_no_recommendation_unless_the_session_is_the_only_obstacle(
    scene: Scene, runs: Runs, domain: DomainContext, clock: ManualClock, case: str
) -> None:
    await scene.setting(True)
    run_id = await _no_recommendation_case(case, scene, runs, clock)

    await dispatch_once(domain)
    await sweep_once(domain)

    assert (await runs.run(run_id))["waitReason"] == NO_RECOMMENDATION[case]
    assert await scene.everyone() == []


@pytest.mark.rule("R32")
async def test_r32_a_group_run_is_affected_through_the_machine_with_the_locked_session(
    scene: Scene, runs: Runs, domain: DomainContext
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    await runs.capacity(20)
    busy_elsewhere = await runs.machine(owner, bots=1, sessions={USER: "ACTIVE"})
    locked = await runs.machine(owner, bots=1, sessions={USER: "DISCONNECTED"})
    group_id = await runs.group(owner, busy_elsewhere, locked)
    target = await runs.target(owner, group_id=group_id, username=USER)
    run_id = await runs.trigger(target)

    await dispatch_once(domain)
    (rec,) = await scene.listed(owner)

    assert [(r["runId"], r["machineId"], r["sessionState"]) for r in rec["runs"]] == [
        (run_id, locked.id, "DISCONNECTED")
    ]


@pytest.mark.rule("R32")
@pytest.mark.rule("R36")
async def test_r32_recipients_are_exactly_the_connection_owners(
    scene: Scene, runs: Runs, domain: DomainContext
) -> None:
    await scene.setting(True)
    alice, bob, carol = await scene.owner(), await scene.owner(), await scene.owner()
    machine, alice_target = await scene.locked(alice)
    shared = await scene.api.data(
        SHARE_MACHINE,
        {"input": {"machineId": machine.id, "userId": bob.id, "access": "USER"}},
        token=alice.token,
    )
    assert shared["shareMachine"]["__typename"] == "MachinePayload", shared
    bob_target = await runs.target(bob, machine=machine, username=USER)
    alice_run = await runs.trigger(alice_target)
    bob_run = await runs.trigger(bob_target)
    await dispatch_once(domain)

    (alices,) = await scene.listed(alice)
    (bobs,) = await scene.listed(bob)
    carols = await scene.listed(carol)
    carol_opens = await scene.one(alices["id"], carol)
    carol_every = await scene.api.execute(
        "{ sessionRecommendations(everyRecipient: true) { id } }", token=carol.token
    )
    carol_disconnects = await scene.disconnect(alices["id"], [alice_run], carol)
    bob_disconnects_alices = await scene.disconnect(alices["id"], [bob_run], bob)
    carol_refreshes = await scene.refresh(alices["id"], carol)

    assert [r["runId"] for r in alices["affectedRuns"]] == [alice_run]
    assert [r["runId"] for r in bobs["affectedRuns"]] == [bob_run]
    assert (alices["recipientId"], bobs["recipientId"]) == (alice.id, bob.id)
    assert carols == [] and carol_opens is None
    assert carol_every["data"]["sessionRecommendations"] == []
    assert carol_disconnects["__typename"] == "NotFoundError"
    assert bob_disconnects_alices["__typename"] == "NotFoundError"
    assert carol_refreshes["__typename"] == "NotFoundError"
    # Nothing changed: no command went out, both lists are as they were.
    assert (await runs.api.data(COMMANDS, token=machine.key))["machineCommands"] == []
    assert await scene.listed(alice) == [alices]
    assert await scene.listed(bob) == [bobs]
    # Environment admins may look at everyone's (everyRecipient) and open any of them.
    admin_view = await scene.listed(scene.fleet.admin_token, every=True)
    assert sorted(r["id"] for r in admin_view) == sorted([alices["id"], bobs["id"]])
    assert await scene.listed(scene.fleet.admin_token) == []  # none is addressed to the admin


# --- R33: the lifecycle and the window ------------------------------------------------------


@pytest.mark.rule("R33")
async def test_r33_runs_join_and_leave_and_an_empty_list_resolves_it(
    scene: Scene, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    machine, target = await scene.locked(owner)
    first = await runs.trigger(target)
    await dispatch_once(domain)
    (raised,) = await scene.listed(owner)

    clock.advance(timedelta(minutes=2))
    await runs.heartbeat(machine, {USER: "LOCKED"})  # still there, still locked
    second = await runs.trigger(target)
    await dispatch_once(domain)
    (joined,) = await scene.listed(owner)

    clock.advance(timedelta(minutes=1))
    await runs.heartbeat(machine, {USER: "LOCKED"})
    await runs.change(
        "mutation($id: ID!) { cancelRun(id: $id) { __typename } }", first, owner.token
    )
    await dispatch_once(domain)
    (one_left,) = await scene.listed(owner)

    clock.advance(timedelta(minutes=1))
    await runs.heartbeat(machine, {})  # the user signed out on their own
    await dispatch_once(domain)
    resolved = await scene.one(raised["id"], owner)

    assert joined["id"] == raised["id"]
    assert joined["windowEndsAt"] == raised["windowEndsAt"]  # the window is the recommendation's
    assert [r["runId"] for r in joined["affectedRuns"]] == [first, second]
    assert [(r["runId"], r["outcome"]) for r in one_left["runs"]] == [
        (first, "ENDED"),
        (second, "BLOCKED"),
    ]
    assert [r["runId"] for r in one_left["affectedRuns"]] == [second]
    assert resolved is not None
    assert resolved["status"] == "RESOLVED"
    assert resolved["affectedRuns"] == []
    assert [(r["runId"], r["outcome"], r["run"]["status"]) for r in resolved["runs"]] == [
        (first, "ENDED", "CANCELLED"),
        (second, "STARTED", "DISPATCHED"),
    ]
    assert await scene.listed(owner) == []  # open ones only by default
    assert [r["id"] for r in await scene.listed(owner, resolved=True)] == [raised["id"]]


@pytest.mark.rule("R33")
async def test_r33_runs_still_blocked_when_the_window_ends_fail_with_session_exists_for_user(
    scene: Scene, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    machine, target = await scene.locked(owner, "DISCONNECTED")
    first = await runs.trigger(target)
    await dispatch_once(domain)
    (rec,) = await scene.listed(owner)

    for _ in range(9):
        clock.advance(timedelta(minutes=1))
        await runs.heartbeat(machine, {USER: "DISCONNECTED"})  # the machine stays connected
    clock.advance(timedelta(seconds=59))
    await sweep_once(domain)
    before_end = await runs.run(first)
    clock.advance(timedelta(seconds=1))
    await runs.heartbeat(machine, {USER: "DISCONNECTED"})
    await sweep_once(domain)
    failed = await runs.run(first)
    ended = await scene.one(rec["id"], owner)
    later = await runs.trigger(target)  # blocked anew: a new recommendation, a new window
    await dispatch_once(domain)
    (fresh,) = await scene.listed(owner)

    assert before_end["status"] == "QUEUED"
    assert failed["status"] == "FAILED"
    assert failed["errorCode"] == "SESSION_EXISTS_FOR_USER"
    assert "window ended" in failed["errorMessage"]
    assert ended is not None and ended["status"] == "RESOLVED"
    assert ended["resolvedAt"] == ended["windowEndsAt"]
    assert [(r["runId"], r["outcome"]) for r in ended["runs"]] == [(first, "FAILED_SESSION_EXISTS")]
    assert fresh["id"] != rec["id"]
    assert [r["runId"] for r in fresh["affectedRuns"]] == [later]


WINDOW_SETTING = """
mutation($input: UpdateEnvironmentInput!) {
  updateEnvironment(input: $input) {
    __typename
    ... on EnvironmentPayload { environment { recommendationWindowSeconds } }
    ... on ValidationError { code message field }
    ... on UserError { code message }
  }
}"""


@pytest.mark.rule("R45")
async def test_r45_the_window_is_each_environments_setting_for_recommendations_raised_after_it(
    scene: Scene, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    machine, target = await scene.locked(owner, "DISCONNECTED")
    env = {"id": scene.fleet.environment_id}
    first = await runs.trigger(target)
    await dispatch_once(domain)
    (default,) = await scene.listed(owner)

    set_to_90 = await scene.api.data(
        WINDOW_SETTING,
        {"input": {**env, "recommendationWindowSeconds": 90}},
        token=scene.fleet.admin_token,
    )
    (still_default,) = await scene.listed(owner)  # an open one keeps the end it was given
    clock.advance(timedelta(minutes=10))
    await runs.heartbeat(machine, {USER: "DISCONNECTED"})
    await sweep_once(domain)  # the first window ends; the run fails
    later = await runs.trigger(target)
    await dispatch_once(domain)
    (short,) = await scene.listed(owner)
    clock.advance(timedelta(seconds=89))
    await runs.heartbeat(machine, {USER: "DISCONNECTED"})
    await sweep_once(domain)
    before_end = await runs.run(later)
    clock.advance(timedelta(seconds=1))
    await sweep_once(domain)
    failed = await runs.run(later)

    assert default["windowSecondsLeft"] == 10 * 60  # the default
    assert set_to_90["updateEnvironment"] == {
        "__typename": "EnvironmentPayload",
        "environment": {"recommendationWindowSeconds": 90},
    }
    assert still_default["windowEndsAt"] == default["windowEndsAt"]
    assert (await runs.run(first))["status"] == "FAILED"
    assert short["id"] != default["id"]
    assert short["windowSecondsLeft"] == 90
    assert before_end["status"] == "QUEUED"
    assert (failed["status"], failed["errorCode"]) == ("FAILED", "SESSION_EXISTS_FOR_USER")


@pytest.mark.rule("R45")
@pytest.mark.parametrize("seconds", [0, -5, 24 * 60 * 60 + 1])
async def test_r45_a_window_outside_one_second_to_a_day_is_refused_and_changes_nothing(
    scene: Scene, seconds: int
) -> None:
    env = {"id": scene.fleet.environment_id}
    refused = await scene.api.data(
        WINDOW_SETTING,
        {"input": {**env, "recommendationWindowSeconds": seconds}},
        token=scene.fleet.admin_token,
    )
    after = await scene.api.data(
        "{ environments { id recommendationWindowSeconds } }", token=scene.fleet.admin_token
    )

    answer = refused["updateEnvironment"]
    assert answer["__typename"] == "ValidationError"
    assert answer["field"] == "recommendationWindowSeconds"
    assert "recommendationWindowSeconds" in answer["message"]
    (mine,) = [e for e in after["environments"] if e["id"] == env["id"]]
    assert mine["recommendationWindowSeconds"] == 10 * 60


@pytest.mark.rule("R45")
async def test_r45_only_environment_admins_change_the_window(scene: Scene) -> None:
    owner = await scene.owner()
    refused = await scene.api.data(
        WINDOW_SETTING,
        {"input": {"id": scene.fleet.environment_id, "recommendationWindowSeconds": 60}},
        token=owner.token,
    )
    after = await scene.api.data(
        "{ environments { id recommendationWindowSeconds } }", token=scene.fleet.admin_token
    )

    # A maker sees the environment (R38): told no, as for the R31 setting.
    assert refused["updateEnvironment"]["__typename"] == "PermissionDeniedError"
    (mine,) = [e for e in after["environments"] if e["id"] == scene.fleet.environment_id]
    assert mine["recommendationWindowSeconds"] == 10 * 60


@pytest.mark.rule("R33")
@pytest.mark.rule("R31")
async def test_r31_switching_the_setting_off_withdraws_open_recommendations(
    scene: Scene, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    _, target = await scene.locked(owner)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)
    (rec,) = await scene.listed(owner)

    await scene.setting(False)
    await dispatch_once(domain)
    clock.advance(timedelta(minutes=11))
    await sweep_once(domain)
    withdrawn = await scene.one(rec["id"], owner)

    assert withdrawn is not None and withdrawn["status"] == "RESOLVED"
    assert [r["outcome"] for r in withdrawn["runs"]] == ["WITHDRAWN"]
    assert (await runs.run(run_id))["status"] == "QUEUED"  # no window any more: R27 applies
    assert await scene.listed(owner) == []


# --- R34: the actions -----------------------------------------------------------------------


@pytest.mark.rule("R34")
async def test_r34_disconnect_users_sends_end_session_and_the_runs_start(
    scene: Scene, runs: Runs, domain: DomainContext, clock: ManualClock
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    machine, target = await scene.locked(owner, bots=2)
    first = await runs.trigger(target)
    second = await runs.trigger(target)
    await dispatch_once(domain)
    (rec,) = await scene.listed(owner)

    unknown = await scene.disconnect(
        rec["id"], [first, "00000000-0000-0000-0000-000000000000"], owner
    )
    empty = await scene.disconnect(rec["id"], [], owner)
    commands_after_refusals = await runs.api.data(COMMANDS_WITH_USER, token=machine.key)
    clock.advance(timedelta(seconds=20))
    done = await scene.disconnect(rec["id"], [first, second], owner)
    again = await scene.disconnect(rec["id"], [first], owner)  # still pending: no second command
    (command,) = (await runs.api.data(COMMANDS_WITH_USER, token=machine.key))["machineCommands"]

    assert unknown["__typename"] == "NotFoundError"
    assert empty["__typename"] == "ValidationError"
    assert commands_after_refusals["machineCommands"] == []
    assert done["__typename"] == "SessionRecommendationPayload", done
    assert again["__typename"] == "SessionRecommendationPayload", again
    assert {r["disconnectRequestedAt"] for r in done["recommendation"]["runs"]} != {None}
    assert (command["kind"], command["username"], command["runId"]) == ("END_SESSION", USER, None)

    # The runtime signs the user out and reports its sessions without it: the runs start.
    completed = await runs.api.data(
        "mutation($id: ID!) { completeMachineCommand(id: $id) { __typename } }",
        {"id": command["id"]},
        token=machine.key,
    )
    await runs.heartbeat(machine, {})
    await dispatch_once(domain)
    resolved = await scene.one(rec["id"], owner)
    late = await scene.disconnect(rec["id"], [first], owner)

    assert completed["completeMachineCommand"]["__typename"] == "MachineCommandPayload"
    assert {(await runs.run(r))["status"] for r in (first, second)} == {"DISPATCHED"}
    assert resolved is not None and resolved["status"] == "RESOLVED"
    assert [r["outcome"] for r in resolved["runs"]] == ["STARTED", "STARTED"]
    assert (late["__typename"], late["code"]) == ("ConflictError", "RECOMMENDATION_RESOLVED")


@pytest.mark.rule("R34")
async def test_r34_an_environment_admin_may_disconnect_for_a_recipient(
    scene: Scene, runs: Runs, domain: DomainContext
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    admin = await scene.fleet.person("ENVIRONMENT_ADMIN")
    machine, target = await scene.locked(owner)
    run_id = await runs.trigger(target)
    await dispatch_once(domain)
    (rec,) = await scene.listed(owner)

    done = await scene.disconnect(rec["id"], [run_id], admin)

    assert done["__typename"] == "SessionRecommendationPayload", done
    commands = (await runs.api.data(COMMANDS_WITH_USER, token=machine.key))["machineCommands"]
    assert [(c["kind"], c["username"]) for c in commands] == [("END_SESSION", USER)]


@pytest.mark.rule("R34")
async def test_r34_refresh_reflects_sessions_that_changed(
    scene: Scene, runs: Runs, domain: DomainContext
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    machine, target = await scene.locked(owner, "LOCKED")
    first = await runs.trigger(target)
    await dispatch_once(domain)
    (rec,) = await scene.listed(owner)

    await runs.heartbeat(machine, {USER: "DISCONNECTED"})  # no dispatcher pass meanwhile
    stale = await scene.one(rec["id"], owner)
    refreshed = await scene.refresh(rec["id"], owner)
    await runs.heartbeat(machine, {USER.upper(): "ACTIVE"})  # someone signed in for real
    signed_in = await scene.refresh(rec["id"], owner)
    repeated = await scene.refresh(rec["id"], owner)

    assert stale is not None and stale["runs"][0]["sessionState"] == "LOCKED"
    assert refreshed["__typename"] == "SessionRecommendationPayload", refreshed
    assert refreshed["recommendation"]["runs"][0]["sessionState"] == "DISCONNECTED"
    assert refreshed["recommendation"]["status"] == "OPEN"
    assert signed_in["recommendation"]["status"] == "RESOLVED"
    assert [(r["runId"], r["outcome"]) for r in signed_in["recommendation"]["runs"]] == [
        (first, "UNBLOCKED")
    ]
    assert repeated["recommendation"] == signed_in["recommendation"]
    assert (await runs.run(first))["waitReason"] == "USER_SESSION_EXISTS"


# --- end to end through the machine-runtime simulator ---------------------------------------


@pytest.mark.rule("R34")
@pytest.mark.rule("R32")
async def test_r34_the_simulator_ends_the_session_and_the_run_succeeds(
    scene: Scene, runs: Runs, domain: DomainContext
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    await runs.capacity(4)
    simulator = Simulator(
        SimulatorConfig(
            url="http://deskfleet.test/graphql",
            token=owner.token,
            environment_id=scene.fleet.environment_id,
            machines=1,
            bots=1,
            sessions=[(USER, "ACTIVE")],
            min_run_seconds=0.01,
            max_run_seconds=0.02,
            failure_rate=0.0,
            heartbeat_seconds=0.05,
            poll_seconds=0.02,
            seed=3,
        ),
        http=scene.api.http,
    )
    (machine,) = await simulator.register()
    working = asyncio.create_task(simulator.run())
    try:
        target = await runs.target(
            owner, machine=RegisteredMachine(machine.id, machine.key, owner), username=USER
        )
        run_id = await runs.trigger(target)
        async with asyncio.timeout(30):
            while (await runs.run(run_id))["waitReason"] != "USER_SESSION_EXISTS":
                await dispatch_once(domain)
                await asyncio.sleep(0.02)
            while_active = await scene.listed(owner)  # someone at work: no recommendation
            simulator.set_session(machine.id, USER, "DISCONNECTED")
            while not await scene.listed(owner):
                await dispatch_once(domain)
                await asyncio.sleep(0.02)
            (rec,) = await scene.listed(owner)
            done = await scene.disconnect(rec["id"], [run_id], owner)
            while (await runs.run(run_id))["status"] != "SUCCEEDED":
                await dispatch_once(domain)
                await asyncio.sleep(0.02)
    finally:
        simulator.stop()
        await working
    resolved = await scene.one(rec["id"], owner)

    assert while_active == []
    assert rec["runs"][0]["sessionState"] == "DISCONNECTED"
    assert done["__typename"] == "SessionRecommendationPayload", done
    assert simulator.stats.sessions_ended == 1
    assert machine.sessions == {}  # the simulated runtime signed the user out
    assert resolved is not None and resolved["status"] == "RESOLVED"
    # The runtime's sign-out heartbeat lands at any point of a dispatcher pass: before the claim
    # the run starts in that pass (STARTED), after it the review sees it queued but free (UNBLOCKED).
    # Either way it left the list (R33), which resolved the recommendation.
    ((left_run, outcome),) = [(r["runId"], r["outcome"]) for r in resolved["runs"]]
    assert left_run == run_id and outcome in {"STARTED", "UNBLOCKED"}


@pytest.mark.rule("R30")
@pytest.mark.rule("R32")
async def test_r30_concurrent_passes_raise_one_recommendation_listing_each_run_once(
    scene: Scene, runs: Runs, domain: DomainContext
) -> None:
    await scene.setting(True)
    owner = await scene.owner()
    _, target = await scene.locked(owner)
    run_ids = [await runs.trigger(target) for _ in range(3)]

    await asyncio.gather(
        dispatch_once(domain), dispatch_once(domain), sweep_once(domain), sweep_once(domain)
    )

    (rec,) = await scene.everyone()
    assert sorted(r["runId"] for r in rec["runs"]) == sorted(run_ids)
    assert rec["recipientId"] == owner.id
