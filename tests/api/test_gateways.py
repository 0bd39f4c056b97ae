"""Legacy gateways (R22): no new gateway connection; existing ones are listed and switched."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.connections import connections
from domain.connections.credentials import vault_for
from domain.context import DomainContext
from domain.store.models import RunStatus
from tests.connection_steps import (
    CONNECTION_FIELDS,
    LIST_CONNECTIONS,
    SECRET,
    UPDATE_CONNECTION,
    connection,
    connection_row,
    create_connection,
    flow,
    group,
    insert_run,
    runs_by_id,
)
from tests.graphql import Fleet, Person

pytestmark = pytest.mark.asyncio

GATEWAYS = """
query($environmentId: ID!) {
  gateways(environmentId: $environmentId) {
    id name environment { id }
    connections { id name connectivity owner { id } gateway { id } }
  }
}"""

SWITCH = """
mutation($input: SwitchConnectionToDirectInput!) {
  switchConnectionToDirect(input: $input) {
    __typename
    ... on SwitchedConnectionPayload { movedRunCount connection { FIELDS } }
    ... on UserError { code message }
    ... on RuleViolationError { rule }
  }
}""".replace("FIELDS", CONNECTION_FIELDS)

NEW_SECRET = "N3w-direct-passw0rd"


async def legacy(
    fleet: Fleet, domain: DomainContext, owners: list[Person], gateway_name: str = "HQ gateway"
) -> tuple[str, list[str]]:
    """A legacy gateway with one gateway connection per owner (nothing in the API makes them)."""
    gateway = await connections.seed_legacy_gateway(
        domain, environment_id=fleet.environment_id, name=gateway_name
    )
    made = []
    for i, owner in enumerate(owners):
        conn = await connections.seed_legacy_gateway_connection(
            domain,
            gateway_id=gateway.id,
            owner_id=owner.id,
            name=f"legacy-{i}",
            windows_username=r"CONTOSO\old",
            password="old-secret",
        )
        made.append(conn.id)
    return gateway.id, made


async def switch(fleet: Fleet, person: Person, connection_id: str, **target: str) -> dict:
    data = await fleet.api.data(
        SWITCH,
        {
            "input": {
                "connectionId": connection_id,
                "windowsUsername": r"CONTOSO\robot",
                "password": NEW_SECRET,
                **target,
            }
        },
        token=person.token,
    )
    return data["switchConnectionToDirect"]


@pytest.mark.rule("R22")
async def test_r22_a_new_gateway_connection_is_refused(fleet: Fleet, domain: DomainContext) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    gateway_id, _ = await legacy(fleet, domain, [])

    by_connectivity = await create_connection(
        fleet, maker, machine_id=machine.id, connectivity="GATEWAY"
    )
    by_gateway = await create_connection(fleet, maker, gatewayId=gateway_id)
    direct = await create_connection(fleet, maker, machine_id=machine.id, connectivity="DIRECT")
    listed = await fleet.api.data(LIST_CONNECTIONS, {"first": 10}, token=maker.token)

    for refused in (by_connectivity, by_gateway):
        assert refused["__typename"] == "RuleViolationError"
        assert refused["rule"] == "R22"
        assert refused["code"] == "GATEWAY_NOT_SUPPORTED"
    assert direct["__typename"] == "ConnectionPayload"
    assert [e["node"]["connectivity"] for e in listed["connections"]["edges"]] == ["DIRECT"]


@pytest.mark.rule("R22")
async def test_r22_gateways_listed_with_the_connections_still_using_them(
    fleet: Fleet, domain: DomainContext
) -> None:
    alice = await fleet.person("ENVIRONMENT_MAKER")
    bob = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    outsider = await fleet.person()  # no role in the environment
    gateway_id, (alice_conn, bob_conn) = await legacy(fleet, domain, [alice, bob])
    unused_id, _ = await legacy(fleet, domain, [], gateway_name="Branch gateway")

    as_admin = await fleet.api.data(
        GATEWAYS, {"environmentId": fleet.environment_id}, token=env_admin.token
    )
    as_alice = await fleet.api.data(
        GATEWAYS, {"environmentId": fleet.environment_id}, token=alice.token
    )
    as_outsider = await fleet.api.execute(
        GATEWAYS, {"environmentId": fleet.environment_id}, token=outsider.token
    )

    assert [(g["name"], g["id"]) for g in as_admin["gateways"]] == [
        ("Branch gateway", unused_id),
        ("HQ gateway", gateway_id),
    ]
    hq = as_admin["gateways"][1]
    assert hq["environment"] == {"id": fleet.environment_id}
    assert [c["id"] for c in hq["connections"]] == [alice_conn, bob_conn]
    assert {c["connectivity"] for c in hq["connections"]} == {"GATEWAY"}
    assert hq["connections"][0]["gateway"] == {"id": gateway_id}
    assert as_admin["gateways"][0]["connections"] == []
    assert [c["id"] for c in as_alice["gateways"][1]["connections"]] == [alice_conn]
    assert as_outsider["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.rule("R22")
async def test_r22_switching_to_direct_moves_queued_runs_to_the_new_queue(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    machine = await fleet.machine(maker, "bot-01")
    await fleet.heartbeat(machine)
    gateway_id, (conn_id,) = await legacy(fleet, domain, [maker])
    flow_id = await flow(fleet, maker)
    start = domain.clock.now()
    first = await insert_run(domain, connection_id=conn_id, flow_id=flow_id, queued_at=start)
    second = await insert_run(
        domain, connection_id=conn_id, flow_id=flow_id, queued_at=start + timedelta(seconds=1)
    )

    result = await switch(fleet, maker, conn_id, machineId=machine.id)
    runs = await runs_by_id(domain, [first, second])
    row = await connection_row(domain, conn_id)
    gateways = await fleet.api.data(
        GATEWAYS, {"environmentId": fleet.environment_id}, token=maker.token
    )

    assert result["__typename"] == "SwitchedConnectionPayload", result
    assert result["movedRunCount"] == 2
    switched = result["connection"]
    assert switched["connectivity"] == "DIRECT"
    assert switched["gateway"] is None
    assert switched["machine"]["id"] == machine.id
    assert switched["windowsUsername"] == r"CONTOSO\robot"
    assert NEW_SECRET not in str(result)
    for run_id in (first, second):
        assert runs[run_id].status is RunStatus.QUEUED
        assert runs[run_id].target_machine_id == machine.id
        assert runs[run_id].target_group_id is None
        assert runs[run_id].run_as == r"CONTOSO\robot"
    assert runs[first].queued_at < runs[second].queued_at  # they keep their order
    assert row is not None
    assert vault_for(domain.settings).reveal(row.password_ciphertext) == NEW_SECRET
    assert gateways["gateways"][0]["id"] == gateway_id
    assert gateways["gateways"][0]["connections"] == []


@pytest.mark.rule("R22")
async def test_r22_switching_to_a_group(fleet: Fleet, domain: DomainContext) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    group_id = await group(fleet, maker, "Finance bots")
    _, (conn_id,) = await legacy(fleet, domain, [maker])

    result = await switch(fleet, maker, conn_id, groupId=group_id)

    assert result["__typename"] == "SwitchedConnectionPayload", result
    assert result["connection"]["group"]["id"] == group_id
    assert result["movedRunCount"] == 0


@pytest.mark.rule("R22")
@pytest.mark.rule("R21")
async def test_r22_switch_refusals_change_nothing(fleet: Fleet, domain: DomainContext) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    other = await fleet.person("ENVIRONMENT_MAKER")
    stranger = await fleet.person("ENVIRONMENT_MAKER")
    theirs = await fleet.machine(other, "bot-02")
    mine = await fleet.machine(maker, "bot-01")
    sales = await fleet.environment("Sales")
    await fleet.grant(maker.id, "ENVIRONMENT_MAKER", environment_id=sales)
    elsewhere = await fleet.machine(maker, "bot-03", environment_id=sales)
    _, (conn_id,) = await legacy(fleet, domain, [maker])
    direct = await connection(fleet, maker, machine_id=mine.id)
    before = await connection_row(domain, conn_id)

    no_run_access = await switch(fleet, maker, conn_id, machineId=theirs.id)
    cross_env = await switch(fleet, maker, conn_id, machineId=elsewhere.id)
    not_visible = await switch(fleet, stranger, conn_id, machineId=mine.id)
    no_target = await switch(fleet, maker, conn_id)
    already_direct = await switch(fleet, maker, direct["id"], machineId=mine.id)
    edit_target = await fleet.api.data(
        UPDATE_CONNECTION, {"input": {"id": conn_id, "machineId": mine.id}}, token=maker.token
    )
    after = await connection_row(domain, conn_id)

    assert no_run_access["__typename"] == "NotFoundError"
    assert cross_env["code"] == "CROSS_ENVIRONMENT"
    assert not_visible["__typename"] == "NotFoundError"
    assert no_target["__typename"] == "ValidationError"
    assert already_direct["code"] == "ALREADY_IN_STATE"
    assert edit_target["updateConnection"]["__typename"] == "RuleViolationError"
    assert edit_target["updateConnection"]["rule"] == "R22"
    assert before is not None and after is not None
    assert after.connectivity == before.connectivity
    assert after.gateway_id == before.gateway_id
    assert after.machine_id is None
    assert after.password_ciphertext == before.password_ciphertext


@pytest.mark.rule("R22")
async def test_r22_an_environment_admin_may_switch_someone_elses_connection(
    fleet: Fleet, domain: DomainContext
) -> None:
    maker = await fleet.person("ENVIRONMENT_MAKER")
    env_admin = await fleet.person("ENVIRONMENT_ADMIN")
    machine = await fleet.machine(maker, "bot-01")
    _, (conn_id,) = await legacy(fleet, domain, [maker])

    result = await switch(fleet, env_admin, conn_id, machineId=machine.id)

    assert result["__typename"] == "SwitchedConnectionPayload", result
    assert result["connection"]["owner"]["id"] == maker.id
    assert SECRET not in str(result)
