"""Only registered documents (``DESKFLEET_TRUSTED_DOCUMENTS_ONLY``): a real ``deskfleet serve``
accepts the documents ``deskfleet documents register`` registered while it runs, whole or by
hash, over HTTP and over both websocket protocols, and the dashboard's own; nothing else. A
folder with one bad file registers nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from api.dashboard import documents as dashboard
from tests.e2e.conftest import LiveServer
from tests.e2e.server import DESKFLEET, ROOT

pytestmark = pytest.mark.e2e

OPERATIONS = ROOT / "examples" / "operations"
MACHINES = (OPERATIONS / "machines.graphql").read_text()
WATCH_FLEET = (OPERATIONS / "watch_fleet.graphql").read_text()


def register(folder: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DESKFLEET, "documents", "register", str(folder), "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def code(answer: dict[str, Any]) -> str | None:
    errors = answer.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def subscribe(server: LiveServer, protocol: str, document: str, name: str) -> dict[str, Any]:
    """The first answer to one subscription over ``protocol``."""
    async with websockets.connect(server.ws_url, subprotocols=[protocol]) as ws:
        legacy = protocol == "graphql-ws"
        init = (
            {"token": server.admin_token}
            if legacy
            else {"Authorization": f"Bearer {server.admin_token}"}
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        payload = {"query": document, "operationName": name}
        await ws.send(
            json.dumps({"id": "1", "type": "start" if legacy else "subscribe", "payload": payload})
        )
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["type"] not in ("connection_ack", "ka"):
                return dict(message)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'trusted.db'}"


@pytest.fixture
def server(deskfleet_server: Callable[..., LiveServer], database_url: str) -> LiveServer:
    return deskfleet_server(
        env={
            "DESKFLEET_DATABASE_URL": database_url,
            "DESKFLEET_TRUSTED_DOCUMENTS_ONLY": "true",
            "DESKFLEET_TRUSTED_DOCUMENTS_REFRESH_SECONDS": "0.2",
        }
    )


async def test_only_registered_documents_run_on_every_transport(
    server: LiveServer, database_url: str
) -> None:
    machines = {"query": MACHINES, "operationName": "Machines"}
    by_hash = {
        "operationName": "Machines",
        "extensions": {
            "persistedQuery": {
                "version": 1,
                "sha256Hash": hashlib.sha256(MACHINES.encode()).hexdigest(),
            }
        },
    }
    before = server.post(machines)
    before_hash = server.post(by_hash)
    before_ws = await subscribe(server, "graphql-transport-ws", WATCH_FLEET, "WatchFleet")

    registered = register(OPERATIONS, database_url)
    assert registered.returncode == 0, registered.stderr
    files = len(list(OPERATIONS.glob("*.graphql")))
    assert registered.stdout.splitlines()[-1] == f"{files} document(s) registered, 0 already were"
    for _ in range(50):  # the server re-reads the registered documents every 0.2 s
        if code(server.post(machines)) is None:
            break
        await asyncio.sleep(0.1)

    assert code(before) == code(before_hash) == "DOCUMENT_NOT_TRUSTED" and before["data"] is None
    assert before_ws["type"] == "error"
    assert before_ws["payload"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
    assert server.post(machines)["data"]["machines"]["totalCount"] == 0
    assert server.post(by_hash)["data"]["machines"]["totalCount"] == 0
    for protocol, kind in (("graphql-transport-ws", "next"), ("graphql-ws", "data")):
        answer = await subscribe(server, protocol, WATCH_FLEET, "WatchFleet")
        assert answer["type"] == kind, answer
        assert answer["payload"]["data"]["machineStatus"]["snapshot"] is True
    untrusted = server.post({"query": "{ me { id } }"})
    legacy = await subscribe(
        server, "graphql-ws", "subscription { machineStatus { snapshot } }", ""
    )
    assert code(untrusted) == "DOCUMENT_NOT_TRUSTED"
    assert legacy["type"] == "error"


def test_the_dashboards_own_documents_are_trusted(server: LiveServer) -> None:
    sign_in = next(d for d in dashboard.built_in() if "query SignIn" in d)
    answer = server.post({"query": sign_in, "operationName": "SignIn"})
    assert code(answer) is None
    assert answer["data"]["me"]["user"]["displayName"]


def test_a_folder_with_a_bad_document_registers_nothing(tmp_path: Path, database_url: str) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "good.graphql").write_text("query Me { me { id } }")
    (folder / "bad.graphql").write_text("query Nope { machines { nope } }")
    (folder / "binary.graphql").write_bytes(b"\xff\xfe query")

    refused = register(folder, database_url)
    (folder / "bad.graphql").unlink()
    (folder / "binary.graphql").unlink()
    registered = register(folder, database_url)

    assert refused.returncode == 2
    assert "bad.graphql: Cannot query field 'nope'" in refused.stderr
    assert "binary.graphql: cannot be read as UTF-8 text (UnicodeDecodeError)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "nothing was registered" in refused.stderr
    assert registered.stdout.splitlines()[-1] == "1 document(s) registered, 0 already were"
