"""R43: no webhook event is lost to a ``kill -9``. A real ``deskfleet serve`` sends deliveries to
a slow receiver on 127.0.0.1 (it verifies every signature) while maintenance is toggled; the
server is killed with SIGKILL while an attempt is in flight and started again on the same
database. Every change the API acknowledged has its event, every event recorded reaches the
receiver at least once, and the attempt cut short is sent again once its lease runs out (the
receiver dedupes by webhook-id)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import Served, first_run_token
from tests.graphql import GOOD_EDITION, GOOD_RUNTIME, REGISTER_MACHINE
from tests.webhook_receiver import receiving

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R43")]

SERVER_ENV = {
    "DESKFLEET_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    "DESKFLEET_WEBHOOK_POLL_SECONDS": "0.05",
    "DESKFLEET_WEBHOOK_TIMEOUT_SECONDS": "1",  # a dead instance's leases end 7 s later
    "DESKFLEET_WEBHOOK_CONCURRENCY": "2",
    "DESKFLEET_DISPATCHER_ENABLED": "false",
}
TOGGLES_BEFORE = 30
TOGGLES_AFTER = 10

CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    __typename ... on WebhookEndpointSecretPayload { secret endpoint { id } }
    ... on UserError { code message }
  }
}"""
TOGGLE = """
mutation($id: ID!, $on: Boolean!) {
  setMachineMaintenance(id: $id, enabled: $on) { __typename ... on UserError { code message } }
}"""
DELIVERIES = """
query($id: ID!, $after: String, $status: WebhookDeliveryStatus) {
  webhookEndpoint(id: $id) {
    deliveries(first: 50, after: $after, status: $status) {
      totalCount pageInfo { hasNextPage endCursor } nodes { id eventType }
    }
  }
}"""


async def _graphql(server: Served, token: str, query: str, variables: dict[str, Any]) -> dict:
    body = await asyncio.to_thread(server.graphql, query, token, variables)
    assert not body.get("errors"), body
    return body["data"]


async def _deliveries(server: Served, token: str, endpoint_id: str, **filters: Any) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        data = await _graphql(
            server, token, DELIVERIES, {"id": endpoint_id, "after": after, **filters}
        )
        page = data["webhookEndpoint"]["deliveries"]
        ids += [node["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def test_every_event_is_delivered_across_a_kill_9(tmp_path: Path) -> None:
    env = {**SERVER_ENV, "DESKFLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'fleet.db'}"}
    async with receiving() as receiver:
        receiver.delay = 0.3  # deliveries are in flight when the kill comes
        server = Served(tmp_path, env=env)
        try:
            await asyncio.to_thread(server.wait_ready)
            token = first_run_token(server)
            (environment,) = (await _graphql(server, token, "{ environments { id } }", {}))[
                "environments"
            ]
            created = await _graphql(
                server,
                token,
                CREATE,
                {
                    "input": {
                        "environmentId": environment["id"],
                        "url": receiver.url,
                        "eventTypes": ["MACHINE_MAINTENANCE_CHANGED"],
                    }
                },
            )
            endpoint = created["createWebhookEndpoint"]
            receiver.secret = endpoint["secret"]
            endpoint_id = endpoint["endpoint"]["id"]
            registered = await _graphql(
                server,
                token,
                REGISTER_MACHINE,
                {
                    "input": {
                        "environmentId": environment["id"],
                        "name": "bot",
                        "runtimeVersion": GOOD_RUNTIME,
                        "osEdition": GOOD_EDITION,
                    }
                },
            )
            machine_id = registered["registerMachine"]["machine"]["id"]

            acknowledged = 0
            for i in range(TOGGLES_BEFORE):
                await _graphql(server, token, TOGGLE, {"id": machine_id, "on": i % 2 == 0})
                acknowledged += 1
            deadline = time.monotonic() + 30
            while len(receiver.received) < 3 or not receiver.in_flight:  # sending is under way
                assert time.monotonic() < deadline, "no delivery arrived"
                await asyncio.sleep(0.01)
            server.process.send_signal(signal.SIGKILL)  # ... and cut short mid-attempt
            await asyncio.to_thread(server.process.wait)
            assert len(receiver.unique_ids()) < acknowledged, "the kill came too late to matter"

            server = Served(tmp_path, env=env, port=server.port)
            await asyncio.to_thread(server.wait_ready)
            for i in range(TOGGLES_AFTER):
                on = (TOGGLES_BEFORE + i) % 2 == 0  # each one a change
                await _graphql(server, token, TOGGLE, {"id": machine_id, "on": on})
                acknowledged += 1

            deadline = time.monotonic() + 90
            while await _deliveries(server, token, endpoint_id, status="PENDING"):
                assert time.monotonic() < deadline, f"still pending:\n{server.output()}"
                await asyncio.sleep(0.5)
            recorded = await _deliveries(server, token, endpoint_id)
            assert len(recorded) == acknowledged  # one event per acknowledged change
            assert not await _deliveries(server, token, endpoint_id, status="FAILED")
            assert set(recorded) <= receiver.unique_ids()  # every one arrived, verified
            # What was in flight at the kill was sent again after its lease ran out.
            assert len(receiver.received) > len(receiver.unique_ids())
            assert receiver.refused == 0
            assert all(
                r.payload["type"] == "machine.maintenance.changed" for r in receiver.received
            )
        finally:
            server.stop()
