"""Faults: the SQLite database held locked by another process for longer than the busy
timeout. Writes in that time fail cleanly (a masked error, logged; no 5xx, nothing half-written),
reads go on (WAL), and once the lock is released everything works again by itself."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from api.observability import request_id
from domain.kernel.settings import Settings
from domain.store.db import SQLITE_BUSY_TIMEOUT_MS
from tests.databases import backend_name
from tests.graphql import Fleet, GraphQLClient

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(backend_name() != "sqlite", reason="holds SQLite's write lock"),
]


class Capture(logging.Handler):
    """Each record with the request id current when it was logged."""

    def __init__(self, into: list[tuple[str, str]]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append((record.getMessage(), request_id.get()))


RENAME = """mutation($input: UpdateMachineInput!) {
  updateMachine(input: $input) { __typename ... on MachinePayload { machine { name } } } }"""
NAMES = "{ machines(first: 10) { nodes { name } } }"


async def test_a_write_lock_held_elsewhere_fails_writes_cleanly_then_recovers(
    fleet: Fleet, api: GraphQLClient, settings: Settings
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(owner, "bot")
    logged: list[tuple[str, str]] = []
    capture = Capture(logged)
    logging.getLogger("deskfleet.api").addHandler(capture)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        during = await api.http.post(
            "/graphql",
            json={"query": RENAME, "variables": {"input": {"id": machine.id, "name": "x"}}},
            headers={"Authorization": f"Bearer {owner.token}"},
        )
        waited = time.monotonic() - started
        read_during = await api.data(NAMES, token=owner.token)
    finally:
        other.execute("ROLLBACK")
        other.close()
        logging.getLogger("deskfleet.api").removeHandler(capture)
    after = await api.data(
        RENAME, {"input": {"id": machine.id, "name": "renamed"}}, token=owner.token
    )
    await asyncio.sleep(0)

    assert during.status_code == 200
    body = during.json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == "Unexpected error."  # masked, never the SQL
    assert "locked" not in during.text and "Traceback" not in during.text
    # Logged once, with the request id the response carries (api/observability.py).
    assert ("unexpected error", during.headers["x-request-id"]) in [
        (message[:16], rid) for message, rid in logged
    ]
    assert waited >= SQLITE_BUSY_TIMEOUT_MS / 1000 * 0.9  # it waited its turn first
    assert read_during["machines"]["nodes"] == [{"name": "bot"}]
    assert after["updateMachine"]["machine"]["name"] == "renamed"
