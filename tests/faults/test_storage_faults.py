"""Faults: storage that cannot take a write (full, read-only) under a running app.

A write it refuses is answered ``STORAGE_UNAVAILABLE`` with a plain message over HTTP and over
websockets, changes nothing, and is logged as one WARNING line (no traceback, nothing at ERROR);
``/readyz`` turns unready with a ``storage`` check naming the problem while the fault lasts, and
ready again by itself once a write commits. How each fault is provoked for real is in
tests/faults/storage_given.py (SQLite) and in the PostgreSQL test's docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from api.app import create_app
from domain.context import DomainContext
from domain.identity import bootstrap
from domain.kernel.settings import Settings
from domain.store import storage
from tests.databases import POSTGRES_URL, backend_name
from tests.faults.storage_given import SqliteStorage
from tests.graphql import Fleet, GraphQLClient

on_sqlite = pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite's own limits")

RENAME = """mutation($input: UpdateMachineInput!) {
  updateMachine(input: $input) { __typename ... on MachinePayload { machine { name } } } }"""
NAMES = "{ machines(first: 10) { nodes { name } } }"


@pytest.fixture
def domain_storage(domain: DomainContext) -> SqliteStorage:
    faults = SqliteStorage()
    faults.attach(domain.db)
    return faults


@pytest.fixture
def warnings_and_errors(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="deskfleet"):
        yield caplog


def storage_errors(body: dict[str, object]) -> list[dict[str, object]]:
    errors = body.get("errors")
    assert isinstance(errors, list), body
    return errors


def assert_storage_unavailable(body: dict[str, object]) -> None:
    (error,) = storage_errors(body)
    assert error["extensions"] == {"code": "STORAGE_UNAVAILABLE"}
    assert error["message"] == storage.CLIENT_MESSAGE
    assert body["data"] is None


def assert_logged_as_one_warning_each(caplog: pytest.LogCaptureFixture, requests: int) -> None:
    records = [r for r in caplog.records if r.name.startswith("deskfleet")]
    assert [r for r in records if r.levelno >= logging.ERROR] == []
    warned = [r for r in records if "storage cannot take a write" in r.getMessage()]
    assert len(warned) == requests
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in warned)


@on_sqlite
async def test_a_full_database_refuses_writes_with_storage_unavailable_until_it_has_room(
    fleet: Fleet,
    api: GraphQLClient,
    domain_storage: SqliteStorage,
    warnings_and_errors: pytest.LogCaptureFixture,
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot")
    assert (await api.http.get("/readyz")).status_code == 200
    domain_storage.fill()  # the file may not grow: writes go on until one needs a new page

    saved = "bot"
    for i in range(500):
        name = f"bot-{i:03}-" + "x" * 40
        body = await api.execute(
            RENAME, {"input": {"id": machine.id, "name": name}}, token=owner.token
        )
        if body.get("errors"):
            break
        saved = name
    else:
        pytest.fail("the database never filled up")
    assert_storage_unavailable(body)
    unready = await api.http.get("/readyz")
    again = await api.execute(
        RENAME, {"input": {"id": machine.id, "name": "later"}}, token=owner.token
    )
    read_during = await api.data(NAMES, token=owner.token)

    assert unready.status_code == 503
    checks = unready.json()["checks"]
    assert checks["database"] == "ok"  # reads go on
    assert "storage is full" in checks["storage"] and "SQLITE_FULL" in checks["storage"]
    assert_storage_unavailable(again)
    assert read_during["machines"]["nodes"] == [{"name": saved}]  # nothing half-written
    assert_logged_as_one_warning_each(warnings_and_errors, requests=2)
    assert "Traceback" not in warnings_and_errors.text

    domain_storage.free()
    ready = await api.http.get("/readyz")  # the probe's write commits: ready without a restart
    after = await api.data(
        RENAME, {"input": {"id": machine.id, "name": "renamed"}}, token=owner.token
    )

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["storage"] == "ok"
    assert after["updateMachine"]["machine"]["name"] == "renamed"


@on_sqlite
async def test_readiness_turns_ready_again_when_any_write_commits(
    fleet: Fleet, api: GraphQLClient, domain: DomainContext, domain_storage: SqliteStorage
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot")
    viewer = await fleet.person("MACHINE_USER")  # a token not used yet
    domain_storage.read_only_storage()
    refused = await api.execute(
        RENAME, {"input": {"id": machine.id, "name": "x"}}, token=owner.token
    )
    unready = await api.http.get("/readyz")
    # Noting a token's first use is a write too: storage that refuses it still lets it read.
    read_during = await api.data("{ me { user { id } } }", token=viewer.token)
    domain_storage.free()
    await api.data(RENAME, {"input": {"id": machine.id, "name": "y"}}, token=owner.token)

    assert_storage_unavailable(refused)
    assert unready.status_code == 503
    assert "the database is read-only" in unready.json()["checks"]["storage"]
    assert "SQLITE_READONLY" in unready.json()["checks"]["storage"]
    assert read_during["me"]["user"]["id"] == viewer.id
    assert domain.db.storage_faults.last is None  # the commit cleared it; /readyz no longer probes
    assert (await api.http.get("/readyz")).json()["checks"]["storage"] == "ok"


@on_sqlite
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_read_only_database_answers_storage_unavailable_over_websockets(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The same answer whatever the transport: a mutation sent on a graphql-transport-ws
    websocket gets the coded error in its ``next`` message."""
    from starlette.testclient import TestClient  # its websocket client, in process

    app = create_app(settings)
    faults = SqliteStorage()
    faults.attach(app.state.domain.db)
    with caplog.at_level(logging.WARNING, logger="deskfleet"), TestClient(app) as client:
        token = client.portal.call(bootstrap.mint_admin_token, app.state.domain)
        faults.read_only_storage()
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token.secret}"}}
            )
            assert ws.receive_json()["type"] == "connection_ack"
            ws.send_json(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": 'mutation { createEnvironment(input: {name: "ws", kind: SANDBOX, '
                        'flowExtensionsVersion: "1.0"}) { __typename } }'
                    },
                }
            )
            answer = ws.receive_json()
            assert ws.receive_json() == {"id": "1", "type": "complete"}
        unready = client.get("/readyz")
        faults.free()
        ready = client.get("/readyz")

    assert answer["type"] == "next"
    assert_storage_unavailable(answer["payload"])
    assert unready.status_code == 503 and "read-only" in unready.json()["checks"]["storage"]
    assert ready.status_code == 200
    assert_logged_as_one_warning_each(caplog, requests=1)


@pytest.mark.skipif(not POSTGRES_URL, reason="the PostgreSQL pass (DESKFLEET_TEST_DATABASE_URL)")
async def test_a_read_only_postgres_database_refuses_writes_with_storage_unavailable(
    fleet: Fleet,
    api: GraphQLClient,
    domain: DomainContext,
    settings: Settings,
    warnings_and_errors: pytest.LogCaptureFixture,
) -> None:
    """``ALTER DATABASE ... SET default_transaction_read_only = on`` makes every new session's
    transactions read-only, as on a hot standby: writes fail with SQLSTATE 25006
    (read_only_sql_transaction) from the server itself. Sessions take the setting when they
    start, so the app's pools are emptied after each change (a fail-over reconnects them too)."""
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot")
    name = make_url(settings.database_url).database
    admin_dsn = make_url(settings.database_url).set(drivername="postgresql", database="postgres")
    admin = await asyncpg.connect(admin_dsn.render_as_string(hide_password=False))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await domain.db.dispose()
        refused = await api.execute(
            RENAME, {"input": {"id": machine.id, "name": "x"}}, token=owner.token
        )
        unready = await api.http.get("/readyz")
        read_during = await api.data(NAMES, token=owner.token)
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await admin.close()
    await domain.db.dispose()
    ready = await api.http.get("/readyz")
    after = await api.data(
        RENAME, {"input": {"id": machine.id, "name": "renamed"}}, token=owner.token
    )

    assert_storage_unavailable(refused)
    assert unready.status_code == 503
    assert "read_only_sql_transaction" in unready.json()["checks"]["storage"]
    assert read_during["machines"]["nodes"] == [{"name": "bot"}]
    assert_logged_as_one_warning_each(warnings_and_errors, requests=1)
    assert ready.status_code == 200, ready.text
    assert after["updateMachine"]["machine"]["name"] == "renamed"
