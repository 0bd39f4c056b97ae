"""Bad input gets a clear typed error naming what is wrong, and changes nothing."""

import uuid

import pytest
from sqlalchemy import text

from domain.context import DomainContext
from domain.store.pagination import encode_cursor
from tests.graphql import GOOD_EDITION, GOOD_RUNTIME, REGISTER_MACHINE, Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio


async def machine_count(fleet: Fleet) -> int:
    data = await fleet.api.data("{ machines(first: 1) { totalCount } }", token=fleet.admin_token)
    return data["machines"]["totalCount"]


async def register(fleet: Fleet, token: str, **overrides: str) -> dict:
    values = {
        "environmentId": fleet.environment_id,
        "name": "bot",
        "runtimeVersion": GOOD_RUNTIME,
        "osEdition": GOOD_EDITION,
        **overrides,
    }
    result = await fleet.api.execute(REGISTER_MACHINE + " ", {"input": values}, token=token)
    assert "errors" not in result, result
    return result["data"]["registerMachine"]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", "", "INVALID_NAME"),
        ("name", "   ", "INVALID_NAME"),
        ("name", "x" * 10_000, "INVALID_NAME"),
        ("name", "bad\x00name", "INVALID_NAME"),
        ("name", "bad\x85name", "INVALID_NAME"),  # C1 control
        ("name", "bot\u202egnp.exe", "INVALID_NAME"),  # right-to-left override
        ("name", "bo\u200bt", "INVALID_NAME"),  # zero-width space
        ("name", "\u2066bot\u2069", "INVALID_NAME"),  # bidirectional isolate
        ("description", "see \u202eereh", "INVALID_TEXT"),
        ("description", "d" * 10_000, "INVALID_TEXT"),
        ("runtimeVersion", "2.x", "INVALID_VERSION"),
        ("runtimeVersion", "", "INVALID_VERSION"),
        ("runtimeVersion", "1.2.3.4.5", "INVALID_VERSION"),
        ("runtimeVersion", "-2.9", "INVALID_VERSION"),
        ("runtimeVersion", "2..9", "INVALID_VERSION"),
        ("runtimeVersion", "\u0662.\u0668.\u0667\u0663.21119", "INVALID_VERSION"),  # Arabic-Indic
        ("runtimeVersion", "\uff12.8.73.21119", "INVALID_VERSION"),  # full-width digit
        ("osEdition", "", "INVALID_NAME"),
        ("environmentId", "not-an-id", "INVALID_ID"),
    ],
)
async def test_registration_input_refused_with_field_named(
    fleet: Fleet, field: str, value: str, code: str
) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    result = await register(fleet, owner.token, **{field: value})

    assert result["__typename"] == "ValidationError"
    assert result["code"] == code
    assert field in result["message"] or field.lower() in result["message"].lower()
    assert await machine_count(fleet) == 0


async def test_registration_in_unknown_environment_is_not_found(fleet: Fleet) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    result = await register(fleet, owner.token, environmentId=str(uuid.uuid4()))

    assert result["__typename"] == "NotFoundError"
    assert await machine_count(fleet) == 0


@pytest.mark.parametrize("version", ["2.x", "", "1.2.3.4.5", "1.2.4.1 "])
async def test_environment_versions_validated(fleet: Fleet, version: str) -> None:
    result = await fleet.api.data(
        """mutation($v: String!) { createEnvironment(input: {name: "E", kind: SANDBOX,
            flowExtensionsVersion: $v}) { __typename ... on UserError { code } } }""",
        {"v": version},
        token=fleet.admin_token,
    )
    outcome = result["createEnvironment"]
    if version.strip() == "1.2.4.1":  # surrounding blanks are trimmed, not an error
        assert outcome == {"__typename": "EnvironmentPayload"}
    else:
        assert outcome == {"__typename": "ValidationError", "code": "INVALID_VERSION"}
        envs = await fleet.api.data("{ environments { name } }", token=fleet.admin_token)
        assert [e["name"] for e in envs["environments"]] == ["Default"]


async def test_unknown_and_malformed_ids(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    unknown = await api.data(
        "query($id: ID!) { machine(id: $id) { id } }", {"id": str(uuid.uuid4())}, token=owner.token
    )
    malformed = await api.execute(
        '{ machine(id: "42; DROP TABLE machines") { id } }', token=owner.token
    )
    update = await api.data(
        """mutation($id: ID!) { updateMachine(input: {id: $id, name: "n"}) {
            __typename ... on UserError { code } } }""",
        {"id": str(uuid.uuid4())},
        token=owner.token,
    )

    assert unknown["machine"] is None
    assert malformed["errors"][0]["extensions"]["code"] == "INVALID_ID"
    assert update["updateMachine"] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}


async def test_edit_with_bad_name_changes_nothing(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")

    result = await api.data(
        """mutation($id: ID!, $name: String!) { updateMachine(input: {id: $id, name: $name,
            description: "changed"}) { __typename ... on UserError { code } } }""",
        {"id": bot.id, "name": "x" * 10_000},
        token=owner.token,
    )

    assert result["updateMachine"] == {"__typename": "ValidationError", "code": "INVALID_NAME"}
    after = await api.data(
        "query($id: ID!) { machine(id: $id) { name description } }",
        {"id": bot.id},
        token=owner.token,
    )
    assert after["machine"] == {"name": "bot", "description": ""}


@pytest.mark.parametrize(("first", "ok"), [(100, True), (101, False), (-1, False)])
async def test_page_size_is_at_most_100(
    fleet: Fleet, api: GraphQLClient, first: int, ok: bool
) -> None:
    result = await api.execute(
        "query($n: Int!) { machines(first: $n) { totalCount } }",
        {"n": first},
        token=fleet.admin_token,
    )
    if ok:
        assert result["data"]["machines"]["totalCount"] == 0
    else:
        assert result["errors"][0]["extensions"]["code"] == "PAGE_TOO_LARGE"


async def test_forged_cursor_is_refused(fleet: Fleet, api: GraphQLClient) -> None:
    result = await api.execute(
        '{ machines(first: 5, after: "bm90LWEtY3Vyc29y") { totalCount } }', token=fleet.admin_token
    )
    assert result["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


@pytest.mark.parametrize(
    "instant",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-01-01T00:00:00", "soon"],
)
async def test_a_cursor_whose_instant_is_out_of_range_or_unzoned_is_refused(
    fleet: Fleet, api: GraphQLClient, instant: str
) -> None:
    """Audit and run pages order by an instant: one that overflows once in UTC, or has no offset,
    is INVALID_CURSOR like any cursor the API did not issue, not an unexpected error."""
    cursor = encode_cursor(instant, str(uuid.uuid4()))
    audit = await api.execute(
        "query($e: ID!, $c: String) { auditTrail(environmentId: $e, first: 5, after: $c) "
        "{ totalCount } }",
        {"e": fleet.environment_id, "c": cursor},
        token=fleet.admin_token,
    )
    runs = await api.execute(
        "query($c: String) { flowRuns(first: 5, after: $c) { totalCount } }",
        {"c": cursor},
        token=fleet.admin_token,
    )
    for result in (audit, runs):
        assert result["data"] is None, result
        assert result["errors"][0]["extensions"]["code"] == "INVALID_CURSOR", result


CREATE_CONNECTION = """mutation($i: CreateConnectionInput!) {
  createConnection(input: $i) { __typename } }"""
SECRET = "S3cret-Hunter2"


@pytest.mark.rule("R20")
@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"password": SECRET, "bogus": 1}, "'bogus'"),  # an unknown field
        ({"password": SECRET}, "required field 'name'"),  # a missing field
        ({"password": SECRET, "name": 5}, "String cannot represent a non string value"),
        ({"password": [SECRET], "name": "n"}, "String cannot represent a non string value"),
    ],
)
async def test_malformed_input_is_refused_without_echoing_its_values(
    fleet: Fleet, api: GraphQLClient, given: dict, named: str
) -> None:
    response = await api.http.post(
        "/graphql",
        json={"query": CREATE_CONNECTION, "variables": {"i": given}},
        headers={"Authorization": f"Bearer {fleet.admin_token}"},
    )

    assert SECRET not in response.text
    messages = [e["message"] for e in response.json()["errors"]]
    assert any(named in m for m in messages), messages


async def test_a_literal_of_the_wrong_shape_is_refused_without_echoing_it(
    fleet: Fleet, api: GraphQLClient
) -> None:
    result = await api.execute(
        'mutation { createConnection(input: {password: "' + SECRET + '", bogus: 1}) '
        "{ __typename } }",
        token=fleet.admin_token,
    )

    assert SECRET not in str(result)
    assert result["errors"]


async def test_syntax_errors_are_reported_plainly(api: GraphQLClient) -> None:
    broken = await api.execute("{ machines(first: ", token=None)
    assert broken["errors"][0]["message"].startswith("Syntax Error")


async def test_unexpected_errors_are_masked(
    fleet: Fleet, api: GraphQLClient, domain: DomainContext
) -> None:
    # A real fault, not a mock: the machines table disappears under the running app.
    async with domain.db.write() as session:
        await session.exec(text("ALTER TABLE machines RENAME TO machines_gone"))  # type: ignore[call-overload]

    result = await api.execute("{ machines(first: 5) { totalCount } }", token=fleet.admin_token)

    assert result["errors"][0]["message"] == "Unexpected error."
    leaked = str(result).lower()
    assert "no such table" not in leaked and "does not exist" not in leaked
    assert "sqlalchemy" not in leaked and "traceback" not in leaked
