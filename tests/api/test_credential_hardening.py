"""Credentials under attack: failed attempts rate-limited per client address, and no
token, machine key or password ever in clear in the database files, the logs or a response."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from domain.context import DomainContext
from domain.identity.secrets import digest
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests import connection_steps as steps
from tests.databases import backend_name
from tests.graphql import ISSUE_TOKEN, Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

LIMIT = 3
ME = "{ me { user { id } } }"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key_file=tmp_path / "deskfleet.secret",
        auth_failure_limit=LIMIT,
        auth_failure_window_seconds=60,
    )


@pytest.fixture
async def other_address(app: Starlette) -> AsyncIterator[GraphQLClient]:
    """The same server, reached from another client address."""
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 4242))
    async with httpx.AsyncClient(transport=transport, base_url="http://deskfleet.test") as http:
        yield GraphQLClient(http)


async def post(api: GraphQLClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await api.http.post("/graphql", json={"query": ME}, headers=headers)


async def test_failed_attempts_past_the_limit_get_429_until_the_window_passes(
    fleet: Fleet, api: GraphQLClient, other_address: GraphQLClient, clock: ManualClock
) -> None:
    person = await fleet.person()

    answered = [await post(api, f"dfu_guess{i}") for i in range(LIMIT)]
    refused_guess = await post(api, "dfu_guess-again")
    valid = await post(api, person.token)  # a valid credential is never refused
    refused_key = await post(api, "dfm_guess")
    anonymous = await api.http.post("/graphql", json={"query": "{ __typename }"})
    elsewhere = await post(other_address, person.token)
    clock.advance(timedelta(seconds=61))
    after_window = await post(api, person.token)

    for response in answered:  # the boundary: LIMIT failures are answered as usual
        assert response.status_code == 200
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for response in (refused_guess, refused_key):
        assert response.status_code == 429
        assert "too many failed authentication attempts" in response.text
        assert "retry in 60s" in response.text
    assert valid.json()["data"]["me"]["user"]["id"] == person.id
    assert anonymous.status_code == 200  # nothing guessed, nothing refused
    assert elsewhere.json()["data"]["me"]["user"]["id"] == person.id
    assert after_window.json()["data"]["me"]["user"]["id"] == person.id


async def test_successful_and_anonymous_requests_do_not_count(
    fleet: Fleet, api: GraphQLClient
) -> None:
    person = await fleet.person()

    for _ in range(LIMIT * 3):
        assert (await post(api, person.token)).status_code == 200
        assert (await post(api, None)).status_code == 200
    for i in range(LIMIT):
        assert (await post(api, f"dfu_wrong{i}")).status_code == 200

    assert (await post(api, "dfu_wrong-again")).status_code == 429


# --- secrets at rest, in logs and in responses (R5, R20) --------------------------------

ROTATE = "mutation($id: ID!) { rotateMachineKey(id: $id) { __typename } }"
COMPLETE_ROTATION = """mutation { completeMachineKeyRotation {
  __typename ... on NewMachineKeyPayload { machineKey } ... on UserError { code message } } }"""
SWITCH = """mutation($input: SwitchConnectionToDirectInput!) {
  switchConnectionToDirect(input: $input) { __typename ... on UserError { code message } } }"""


@pytest.mark.rule("R20")
@pytest.mark.rule("R5")
@pytest.mark.skipif(backend_name() != "sqlite", reason="scans the raw SQLite files")
async def test_no_secret_in_clear_in_the_database_files_logs_or_responses(
    fleet: Fleet,
    api: GraphQLClient,
    domain: DomainContext,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    responses: list[str] = []
    secrets = [fleet.admin_token]

    owner = await fleet.person("MACHINE_OWNER", name="olga")
    secrets.append(owner.token)
    extra = await api.data(ISSUE_TOKEN, {"name": "laptop"}, token=owner.token)
    secrets.append(extra["issueApiToken"]["secret"])
    machine = await fleet.machine(owner, "vault-01")
    secrets.append(machine.key)
    await fleet.heartbeat(machine)
    rotated = await api.data(ROTATE, {"id": machine.id}, token=owner.token)
    assert rotated["rotateMachineKey"]["__typename"] == "MachinePayload", rotated
    completed = await api.data(COMPLETE_ROTATION, token=machine.key)
    secrets.append(completed["completeMachineKeyRotation"]["machineKey"])
    passwords = ["Pa55word-in-clear!", "s3cond P@ssword with spaces"]
    secrets.extend(passwords)
    conn = await steps.connection(fleet, owner, machine_id=machine.id, password=passwords[0])
    updated = await api.execute(
        steps.UPDATE_CONNECTION,
        {"input": {"id": conn["id"], "password": passwords[1]}},
        token=owner.token,
    )
    responses.append(str(updated))
    responses.append(
        str(await api.execute(steps.GET_CONNECTION, {"id": conn["id"]}, token=owner.token))
    )
    responses.append(
        str(await api.execute(steps.LIST_CONNECTIONS, {"first": 10}, token=fleet.admin_token))
    )
    # Failed attempts with real-looking secrets: the attempt is logged, never the credential.
    wrong = "dfu_this-one-is-wrong-but-secret"
    secrets.append(wrong)
    responses.append(str(await api.execute(ME, token=wrong)))

    await domain.db.dispose()  # close connections; the -wal file stays if it was not merged
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    files = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
    assert database in files
    raw = b"".join(p.read_bytes() for p in files)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)

    assert len(set(secrets)) == len(secrets) == 8
    assert digest(owner.token).encode() in raw  # the scan does read the live rows
    for secret in secrets:
        assert secret.encode() not in raw, f"{secret[:6]}... in {files}"
        assert secret.encode("utf-16-le") not in raw
        assert secret not in logged, f"{secret[:6]}... in the captured logs"
    for secret in passwords:
        assert all(secret not in text for text in responses)
    assert "failed authentication attempt" in caplog.text
