"""Machine registration gates R1-R5, each accepted and refused, through the GraphQL API."""

import pytest

from tests.graphql import GOOD_RUNTIME, Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

COUNT_MACHINES = "{ machines(first: 100) { totalCount nodes { name } } }"


async def machine_names(fleet: Fleet) -> list[str]:
    data = await fleet.api.data(COUNT_MACHINES, token=fleet.admin_token)
    return [m["name"] for m in data["machines"]["nodes"]]


@pytest.mark.rule("R1")
async def test_r1_registration_accepted_in_production_refused_in_teams(fleet: Fleet) -> None:
    owner = await fleet.person("ENVIRONMENT_MAKER")
    teams = await fleet.environment("Teams space", kind="TEAMS")
    await fleet.grant(owner.id, "ENVIRONMENT_MAKER", environment_id=teams)

    accepted = await fleet.register(owner, "bot-01")
    refused = await fleet.register(owner, "bot-02", environment_id=teams)

    assert accepted["__typename"] == "RegisteredMachinePayload"
    assert refused["__typename"] == "RuleViolationError"
    assert refused["code"] == "TEAMS_ENVIRONMENT"
    assert refused["rule"] == "R1"
    assert await machine_names(fleet) == ["bot-01"]


@pytest.mark.rule("R2")
async def test_r2_flow_extensions_version_compared_as_numbers(fleet: Fleet) -> None:
    owner = await fleet.person()
    # "1.10.0.0" > "1.2.4.1" as numbers, though smaller as a string.
    newer = await fleet.environment("Numbers", version="1.10.0.0")
    older = await fleet.environment("Old", version="1.2.4.0")
    for env in (newer, older):
        await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=env)

    accepted = await fleet.register(owner, "bot", environment_id=newer)
    refused = await fleet.register(owner, "bot", environment_id=older)

    assert accepted["__typename"] == "RegisteredMachinePayload"
    assert refused["code"] == "FLOW_EXTENSIONS_TOO_OLD"
    assert refused["rule"] == "R2"


@pytest.mark.rule("R2")
@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        (GOOD_RUNTIME, True),
        ("2.8.73.21120", True),
        ("2.10", True),  # 2.10 > 2.8 numerically; "2.10" < "2.8" as strings
        ("2.8.100.0", True),
        ("2.8.73.21118", False),
        ("2.8.9.99999", False),  # "2.8.9" > "2.8.73" as strings
        ("1.99.99.99999", False),
    ],
)
async def test_r2_runtime_version_compared_as_numbers(
    fleet: Fleet, version: str, accepted: bool
) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    result = await fleet.register(owner, "bot", runtime_version=version)

    if accepted:
        assert result["__typename"] == "RegisteredMachinePayload"
    else:
        assert result["code"] == "RUNTIME_TOO_OLD"
        assert result["rule"] == "R2"
        assert await machine_names(fleet) == []


@pytest.mark.rule("R3")
@pytest.mark.parametrize(
    ("edition", "accepted"),
    [
        ("Windows 11 Pro", True),
        ("Windows 10 Enterprise", True),
        ("Windows Server 2022 Datacenter", True),
        ("Windows 10 Home", False),
        ("Windows 11 Home", False),
        ("Microsoft Windows 11 Home Single Language", False),
    ],
)
async def test_r3_home_editions_refused(fleet: Fleet, edition: str, accepted: bool) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    result = await fleet.register(owner, "bot", os_edition=edition)

    if accepted:
        assert result["__typename"] == "RegisteredMachinePayload"
    else:
        assert result["code"] == "HOME_EDITION"
        assert result["rule"] == "R3"
        assert await machine_names(fleet) == []


@pytest.mark.rule("R4")
async def test_r4_makers_and_machine_owners_register_by_default(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    owner = await fleet.person("MACHINE_OWNER")
    user = await fleet.person("MACHINE_USER")
    sharer = await fleet.person("MACHINE_USER_CAN_SHARE")

    assert (await fleet.register(maker, "maker-bot"))["__typename"] == "RegisteredMachinePayload"
    assert (await fleet.register(owner, "owner-bot"))["__typename"] == "RegisteredMachinePayload"
    for refused in (await fleet.register(user, "u"), await fleet.register(sharer, "s")):
        assert refused["__typename"] == "PermissionDeniedError"
        assert refused["code"] == "PERMISSION_DENIED"
    assert sorted(await machine_names(fleet)) == ["maker-bot", "owner-bot"]


@pytest.mark.rule("R4")
async def test_r4_admin_restricts_registration_to_machine_owners(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    owner = await fleet.person("MACHINE_OWNER")
    await fleet.api.data(
        """mutation($id: ID!) { updateEnvironment(input: {id: $id, restrictRegistration: true}) {
            __typename } }""",
        {"id": fleet.environment_id},
        token=fleet.admin_token,
    )

    refused = await fleet.register(maker, "maker-bot")
    accepted = await fleet.register(owner, "owner-bot")

    assert refused["__typename"] == "PermissionDeniedError"
    assert "restricted" in refused["message"]
    assert accepted["__typename"] == "RegisteredMachinePayload"
    assert await machine_names(fleet) == ["owner-bot"]


@pytest.mark.rule("R4")
async def test_r4_only_environment_admins_restrict_registration(fleet: Fleet) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")

    result = await fleet.api.data(
        """mutation($id: ID!) { updateEnvironment(input: {id: $id, restrictRegistration: true}) {
            __typename ... on UserError { code } } }""",
        {"id": fleet.environment_id},
        token=maker.token,
    )

    assert result["updateEnvironment"] == {
        "__typename": "PermissionDeniedError",
        "code": "NOT_ADMIN",
    }
    maker_bot = await fleet.register(maker, "still-allowed")
    assert maker_bot["__typename"] == "RegisteredMachinePayload"


@pytest.mark.rule("R5")
async def test_r5_key_returned_once_and_authenticates_the_runtime(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    machine = await fleet.machine(owner, "bot")
    beat = await fleet.heartbeat(machine)
    again = await api.data(
        "query($id: ID!) { machine(id: $id) { id name } }", {"id": machine.id}, token=owner.token
    )

    assert machine.key.startswith("dfm_")
    assert beat["__typename"] == "HeartbeatPayload"
    assert beat["machine"]["id"] == machine.id
    # No query returns the key again: the Machine type has no such field.
    assert "machineKey" not in again["machine"]


@pytest.mark.rule("R5")
async def test_r5_machine_key_can_never_delete_its_machine(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot")

    result = await api.data(
        """mutation($id: ID!) { deleteMachine(id: $id) {
            __typename ... on UserError { code } } }""",
        {"id": machine.id},
        token=machine.key,
    )

    assert result["deleteMachine"] == {
        "__typename": "AuthenticationError",
        "code": "WRONG_CREDENTIAL_KIND",
    }
    assert await machine_names(fleet) == ["bot"]


@pytest.mark.rule("R5")
async def test_r5_names_unique_per_environment(fleet: Fleet) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    other_env = await fleet.environment("Second")
    await fleet.grant(owner.id, "MACHINE_OWNER", environment_id=other_env)
    await fleet.machine(owner, "bot")

    duplicate = await fleet.register(owner, "bot")
    elsewhere = await fleet.register(owner, "bot", environment_id=other_env)

    assert duplicate["__typename"] == "ConflictError"
    assert duplicate["code"] == "NAME_TAKEN"
    assert elsewhere["__typename"] == "RegisteredMachinePayload"
