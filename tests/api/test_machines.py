"""The machine registry after registration: R6-R10, through the GraphQL API."""

from datetime import timedelta

import pytest

from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

CHANGE_ENVIRONMENT = """
mutation($id: ID!, $env: ID!) {
  changeMachineEnvironment(id: $id, environmentId: $env) {
    __typename
    ... on MachinePayload { machine { id environment { id } group { id } } }
    ... on UserError { code message }
    ... on RuleViolationError { rule }
  }
}"""
MACHINE = """
query($id: ID!) {
  machine(id: $id) {
    id name description version osEdition status maintenance keyActionRequired
    runningCount queuedCount accessType
    owner { id displayName } group { id name } environment { id name }
  }
}"""
ROTATE = """
mutation($id: ID!) { rotateMachineKey(id: $id) {
  __typename ... on MachinePayload { machine { keyActionRequired maintenance } }
  ... on UserError { code } } }"""
COMPLETE_ROTATION = """
mutation { completeMachineKeyRotation {
  __typename ... on NewMachineKeyPayload { machineKey machine { keyActionRequired } }
  ... on UserError { code } } }"""


async def machine(api: GraphQLClient, token: str, machine_id: str) -> dict:
    return (await api.data(MACHINE, {"id": machine_id}, token=token))["machine"]


@pytest.mark.rule("R6")
async def test_r6_machine_moves_to_another_environment(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    target = await fleet.environment("Production")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=target)
    bot = await fleet.machine(owner, "bot")

    moved = await api.data(CHANGE_ENVIRONMENT, {"id": bot.id, "env": target}, token=owner.token)

    assert moved["changeMachineEnvironment"]["machine"]["environment"]["id"] == target
    assert (await machine(api, owner.token, bot.id))["environment"]["id"] == target


@pytest.mark.rule("R6")
async def test_r6_move_refused_to_teams_same_or_unauthorised_environment(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    teams = await fleet.environment("Teams", kind="TEAMS")
    no_role = await fleet.environment("Elsewhere")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=teams)
    bot = await fleet.machine(owner, "bot")

    async def move(env: str) -> dict:
        result = await api.data(CHANGE_ENVIRONMENT, {"id": bot.id, "env": env}, token=owner.token)
        return result["changeMachineEnvironment"]

    assert (await move(teams))["code"] == "TEAMS_ENVIRONMENT"
    assert (await move(fleet.environment_id))["code"] == "SAME_ENVIRONMENT"
    assert (await move(no_role))["__typename"] == "NotFoundError"
    assert (await machine(api, owner.token, bot.id))["environment"]["id"] == fleet.environment_id


@pytest.mark.rule("R6")
async def test_r6_move_refused_when_name_taken_in_target(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    target = await fleet.environment("Production")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=target)
    bot = await fleet.machine(owner, "bot")
    await fleet.machine(owner, "bot", environment_id=target)

    result = await api.data(CHANGE_ENVIRONMENT, {"id": bot.id, "env": target}, token=owner.token)

    assert result["changeMachineEnvironment"]["code"] == "NAME_TAKEN"
    assert (await machine(api, owner.token, bot.id))["environment"]["id"] == fleet.environment_id


@pytest.mark.rule("R7")
async def test_r7_version_set_at_registration_not_by_heartbeat(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot", runtime_version="2.9.1")

    await api.data(
        """mutation { machineHeartbeat(input: {runtimeVersion: "2.12.0.0", osEdition: "Windows 11 Pro"}) {
            __typename } }""",
        token=bot.key,
    )

    assert (await machine(api, owner.token, bot.id))["version"] == "2.9.1.0"


@pytest.mark.rule("R8")
async def test_r8_machine_list_shows_every_column(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER", name="Olivia")
    bot = await fleet.machine(owner, "bot")
    await api.data(
        """mutation($id: ID!) { updateMachine(input: {id: $id, description: "invoice robot"}) {
            __typename } }""",
        {"id": bot.id},
        token=owner.token,
    )

    data = await api.data(
        """{ machines(first: 10) { totalCount nodes {
            name description version group { name } status runningCount queuedCount accessType
            owner { displayName } maintenance } } }""",
        token=owner.token,
    )

    assert data["machines"]["totalCount"] == 1
    assert data["machines"]["nodes"] == [
        {
            "name": "bot",
            "description": "invoice robot",
            "version": "2.8.73.21119",
            "group": None,
            "status": "DISCONNECTED",
            "runningCount": 0,
            "queuedCount": 0,
            "accessType": "OWNER",
            "owner": {"displayName": "Olivia"},
            "maintenance": False,
        }
    ]


@pytest.mark.rule("R8")
async def test_r8_list_shows_only_visible_machines_and_admins_see_all(
    fleet: Fleet, api: GraphQLClient
) -> None:
    alice = await fleet.person("MACHINE_OWNER")
    bob = await fleet.person("MACHINE_OWNER")
    await fleet.machine(alice, "alice-bot")
    await fleet.machine(bob, "bob-bot")
    query = "{ machines(first: 10) { nodes { name accessType } } }"

    seen_by_alice = (await api.data(query, token=alice.token))["machines"]["nodes"]
    seen_by_admin = (await api.data(query, token=fleet.admin_token))["machines"]["nodes"]

    assert seen_by_alice == [{"name": "alice-bot", "accessType": "OWNER"}]
    assert seen_by_admin == [
        {"name": "alice-bot", "accessType": "ADMIN"},
        {"name": "bob-bot", "accessType": "ADMIN"},
    ]


@pytest.mark.rule("R8")
async def test_r8_cursor_pagination_walks_every_machine_once(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    for i in range(7):
        await fleet.machine(owner, f"bot-{i:02d}")
    names: list[str] = []
    after = None

    while True:
        page = (
            await api.data(
                """query($after: String) { machines(first: 3, after: $after) {
                    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name } } } }""",
                {"after": after},
                token=owner.token,
            )
        )["machines"]
        names += [e["node"]["name"] for e in page["edges"]]
        assert page["totalCount"] == 7
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert names == [f"bot-{i:02d}" for i in range(7)]


@pytest.mark.rule("R8")
async def test_r8_filters_by_text_status_and_environment(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    other = await fleet.environment("Other")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=other)
    invoices = await fleet.machine(owner, "Invoices-1")
    await fleet.machine(owner, "payroll_1")
    await fleet.machine(owner, "invoices-other", environment_id=other)
    await fleet.heartbeat(invoices)

    async def names(flt: dict) -> list[str]:
        data = await api.data(
            "query($f: MachineFilterInput) { machines(first: 50, filter: $f) { nodes { name } } }",
            {"f": flt},
            token=owner.token,
        )
        return [m["name"] for m in data["machines"]["nodes"]]

    assert await names({"text": "INVOICES"}) == ["Invoices-1", "invoices-other"]
    assert await names({"text": "_"}) == ["payroll_1"]  # LIKE wildcards are literal
    assert await names({"status": "CONNECTED"}) == ["Invoices-1"]
    assert await names({"environmentId": other}) == ["invoices-other"]
    assert await names({"maintenance": True}) == []


@pytest.mark.rule("R8")
@pytest.mark.rule("R9")
async def test_r8_a_kept_page_statement_binds_each_callers_values(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock
) -> None:
    """A listing's statement is built once per shape and kept (domain/machines.PageQuery): the
    caller, the filter's values, the instant and the cursor must still be each call's own."""
    ann = await fleet.person("MACHINE_OWNER", name="ann")
    bob = await fleet.person("MACHINE_OWNER", name="bob")
    ann_bot = await fleet.machine(ann, "ann-1")
    await fleet.machine(ann, "ann-2")
    await fleet.machine(bob, "bob-1")
    await fleet.heartbeat(ann_bot)

    async def names(person, flt: dict, first: int = 50, after: str | None = None) -> list[str]:
        data = await api.data(
            """query($f: MachineFilterInput, $first: Int!, $after: String) {
              machines(first: $first, after: $after, filter: $f) {
                totalCount nodes { name } } }""",
            {"f": flt, "first": first, "after": after},
            token=person.token,
        )
        return [m["name"] for m in data["machines"]["nodes"]]

    assert await names(ann, {}) == ["ann-1", "ann-2"]
    assert await names(bob, {}) == ["bob-1"]  # same shape, another caller
    assert await names(ann, {}, first=1) == ["ann-1"]  # same shape, another page size
    assert await names(ann, {"text": "2"}) == ["ann-2"]
    assert await names(ann, {"text": "1"}) == ["ann-1"]
    assert await names(ann, {"status": "CONNECTED"}) == ["ann-1"]
    clock.advance(timedelta(seconds=121))  # R9: silent past the timeout
    assert await names(ann, {"status": "CONNECTED"}) == []
    assert await names(ann, {"status": "DISCONNECTED"}) == ["ann-1", "ann-2"]


@pytest.mark.rule("R9")
async def test_r9_status_follows_heartbeats(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")

    assert (await machine(api, owner.token, bot.id))["status"] == "DISCONNECTED"
    await fleet.heartbeat(bot)
    assert (await machine(api, owner.token, bot.id))["status"] == "CONNECTED"
    clock.advance(timedelta(seconds=119))
    assert (await machine(api, owner.token, bot.id))["status"] == "CONNECTED"
    clock.advance(timedelta(seconds=2))
    assert (await machine(api, owner.token, bot.id))["status"] == "DISCONNECTED"
    await fleet.heartbeat(bot)
    assert (await machine(api, owner.token, bot.id))["status"] == "CONNECTED"


@pytest.mark.rule("R9")
async def test_r9_silence_is_configurable(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock, settings: Settings
) -> None:
    settings.heartbeat_timeout_seconds = 10
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")
    await fleet.heartbeat(bot)

    clock.advance(timedelta(seconds=11))

    assert (await machine(api, owner.token, bot.id))["status"] == "DISCONNECTED"


@pytest.mark.rule("R10")
async def test_r10_rotation_pending_until_runtime_takes_new_key(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")

    rotated = await api.data(ROTATE, {"id": bot.id}, token=owner.token)
    beat = await fleet.heartbeat(bot)
    completed = await api.data(COMPLETE_ROTATION, token=bot.key)
    new_key = completed["completeMachineKeyRotation"]["machineKey"]
    old_key_result = await api.execute("{ thisMachine { id } }", token=bot.key)
    new_key_result = await api.data("{ thisMachine { id keyActionRequired } }", token=new_key)

    assert rotated["rotateMachineKey"]["machine"] == {
        "keyActionRequired": True,
        "maintenance": False,
    }
    assert beat["keyActionRequired"] is True
    assert completed["completeMachineKeyRotation"]["machine"]["keyActionRequired"] is False
    assert new_key != bot.key
    assert old_key_result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert new_key_result["thisMachine"] == {"id": bot.id, "keyActionRequired": False}


@pytest.mark.rule("R10")
async def test_r10_a_key_is_swapped_only_when_rotation_is_pending_or_the_key_expired(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")

    refused = await api.data(COMPLETE_ROTATION, token=bot.key)
    still = await api.data("{ thisMachine { id keyActionRequired } }", token=bot.key)

    assert refused["completeMachineKeyRotation"] == {
        "__typename": "ConflictError",
        "code": "NO_KEY_ACTION_PENDING",
    }
    assert still["thisMachine"] == {"id": bot.id, "keyActionRequired": False}  # the key works


@pytest.mark.rule("R10")
async def test_r10_rotation_refused_without_edit_access(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    stranger = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")

    result = await api.data(ROTATE, {"id": bot.id}, token=stranger.token)

    assert result["rotateMachineKey"]["__typename"] == "NotFoundError"
    assert (await machine(api, owner.token, bot.id))["keyActionRequired"] is False


@pytest.mark.rule("R10")
async def test_r10_expired_key_needs_action(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock, settings: Settings
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")

    clock.advance(timedelta(days=settings.machine_key_lifetime_days, seconds=1))
    beat = await fleet.heartbeat(bot)
    renewed = await api.data(COMPLETE_ROTATION, token=bot.key)

    assert beat["keyActionRequired"] is True
    assert (await machine(api, owner.token, bot.id))["keyActionRequired"] is False
    assert renewed["completeMachineKeyRotation"]["machine"]["keyActionRequired"] is False
