"""Users, tokens and credentials: bearer auth, revocation, and keys used in the wrong place."""

from datetime import timedelta

import pytest

from domain.kernel.clock import ManualClock
from tests.graphql import ISSUE_TOKEN, Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

ME = "{ me { user { id email active } roles { role environmentId } tokens { name prefix revokedAt } } }"
REVOKE = """mutation($id: ID!) { revokeApiToken(id: $id) {
  __typename ... on ApiTokenPayload { token { revokedAt } } ... on UserError { code } } }"""


async def test_me_shows_the_caller_roles_and_tokens(fleet: Fleet, api: GraphQLClient) -> None:
    person = await fleet.person("MACHINE_OWNER", name="dana")

    me = (await api.data(ME, token=person.token))["me"]

    assert me["user"] == {"id": person.id, "email": "dana@example.test", "active": True}
    assert me["roles"] == [{"role": "MACHINE_OWNER", "environmentId": fleet.environment_id}]
    assert [(t["name"], t["prefix"], t["revokedAt"]) for t in me["tokens"]] == [
        ("tests", person.token[:8], None)
    ]


async def test_missing_or_malformed_credentials_are_unauthenticated(api: GraphQLClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer dfu_nope"}):
        response = await api.http.post(
            "/graphql", json={"query": "{ me { user { id } } }"}, headers=headers
        )
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "Traceback" not in response.text


async def test_revoked_token_stops_working_and_revocation_is_not_repeated(
    fleet: Fleet, api: GraphQLClient
) -> None:
    person = await fleet.person()
    issued = await api.data(ISSUE_TOKEN, {"name": "laptop"}, token=person.token)
    second = issued["issueApiToken"]

    revoked = await api.data(REVOKE, {"id": second["token"]["id"]}, token=person.token)
    again = await api.data(REVOKE, {"id": second["token"]["id"]}, token=person.token)
    refused = await api.execute("{ me { user { id } } }", token=second["secret"])
    still_ok = await api.data("{ me { user { id } } }", token=person.token)

    assert revoked["revokeApiToken"]["token"]["revokedAt"] is not None
    assert again["revokeApiToken"] == {"__typename": "ConflictError", "code": "ALREADY_IN_STATE"}
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert still_ok["me"]["user"]["id"] == person.id


async def test_users_cannot_revoke_or_mint_tokens_of_others(
    fleet: Fleet, api: GraphQLClient
) -> None:
    alice = await fleet.person()
    bob = await fleet.person()
    bobs_tokens = (await api.data(ME, token=bob.token))["me"]["tokens"]
    bob_token_id = (await api.data(ISSUE_TOKEN, {"name": "x"}, token=bob.token))["issueApiToken"][
        "token"
    ]["id"]

    revoke = await api.data(REVOKE, {"id": bob_token_id}, token=alice.token)
    mint = await api.data(ISSUE_TOKEN, {"name": "evil", "userId": bob.id}, token=alice.token)

    assert revoke["revokeApiToken"]["__typename"] == "NotFoundError"
    assert mint["issueApiToken"] == {
        "__typename": "PermissionDeniedError",
        "code": "NOT_ADMIN",
        "message": mint["issueApiToken"]["message"],
    }
    assert len((await api.data(ME, token=bob.token))["me"]["tokens"]) == len(bobs_tokens) + 1


async def test_machine_key_used_as_user_token_is_a_typed_error(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")

    as_query = await api.execute("{ machines(first: 5) { totalCount } }", token=bot.key)
    as_mutation = await fleet.register(type(owner)(id=owner.id, token=bot.key), "sneaky")

    assert as_query["errors"][0]["extensions"]["code"] == "WRONG_CREDENTIAL_KIND"
    assert as_mutation == {
        "__typename": "AuthenticationError",
        "code": "WRONG_CREDENTIAL_KIND",
        "message": as_mutation["message"],
    }
    names = await api.data("{ machines(first: 5) { nodes { name } } }", token=owner.token)
    assert names["machines"]["nodes"] == [{"name": "bot"}]


async def test_user_token_used_as_machine_key_is_a_typed_error(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    await fleet.machine(owner, "bot")

    result = await api.data(
        """mutation { machineHeartbeat(input: {runtimeVersion: "2.9", osEdition: "Windows 11 Pro"}) {
            __typename ... on UserError { code } } }""",
        token=owner.token,
    )

    assert result["machineHeartbeat"] == {
        "__typename": "AuthenticationError",
        "code": "WRONG_CREDENTIAL_KIND",
    }
    status = await api.data("{ machines(first: 5) { nodes { status } } }", token=owner.token)
    assert status["machines"]["nodes"] == [{"status": "DISCONNECTED"}]


async def test_only_admins_create_users_and_environments(fleet: Fleet, api: GraphQLClient) -> None:
    person = await fleet.person("ENVIRONMENT_MAKER")

    user = await api.data(
        """mutation { createUser(input: {displayName: "x", email: "x@example.test"}) {
            __typename ... on UserError { code } } }""",
        token=person.token,
    )
    env = await api.data(
        """mutation { createEnvironment(input: {name: "x", kind: SANDBOX, flowExtensionsVersion: "1.3"}) {
            __typename ... on UserError { code } } }""",
        token=person.token,
    )

    assert user["createUser"] == {"__typename": "PermissionDeniedError", "code": "NOT_ADMIN"}
    assert env["createEnvironment"] == {"__typename": "PermissionDeniedError", "code": "NOT_ADMIN"}
    envs = await api.data("{ environments { name } }", token=fleet.admin_token)
    assert [e["name"] for e in envs["environments"]] == ["Default"]


async def test_token_records_when_it_was_last_used(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock
) -> None:
    person = await fleet.person()
    before = (await api.data(ME, token=person.token))["me"]["tokens"]
    clock.advance(timedelta(minutes=5))

    await api.data("{ me { user { id } } }", token=person.token)
    after = await api.data("{ me { tokens { lastUsedAt } } }", token=person.token)

    assert before[0]["name"] == "tests"
    assert after["me"]["tokens"][0]["lastUsedAt"].startswith(clock.now().date().isoformat())
    assert after["me"]["tokens"][0]["lastUsedAt"] != before[0].get("lastUsedAt")


async def test_admin_grants_the_attended_licence(fleet: Fleet, api: GraphQLClient) -> None:
    person = await fleet.person()

    result = await api.data(
        """mutation($id: ID!) { updateUser(input: {id: $id, attendedLicence: true}) {
            __typename ... on UserPayload { user { attendedLicence } } } }""",
        {"id": person.id},
        token=fleet.admin_token,
    )
    refused = await api.data(
        """mutation($id: ID!) { updateUser(input: {id: $id, attendedLicence: false}) {
            __typename } }""",
        {"id": person.id},
        token=person.token,
    )

    assert result["updateUser"]["user"] == {"attendedLicence": True}
    assert refused["updateUser"]["__typename"] == "PermissionDeniedError"
    me = await api.data("{ me { user { attendedLicence } } }", token=person.token)
    assert me["me"]["user"]["attendedLicence"] is True
