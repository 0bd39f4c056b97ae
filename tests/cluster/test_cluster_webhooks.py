"""R43 in a cluster: two instances on one PostgreSQL database both run a sender, and changes are
made through both; each delivery goes out from one of them, once (one attempt each, no
webhook-id twice)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cluster.conftest import Cluster, Instance
from tests.graphql import GOOD_EDITION, GOOD_RUNTIME, REGISTER_MACHINE
from tests.webhook_receiver import receiving

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R43")]

WEBHOOK_ENV = {
    "DESKFLEET_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    "DESKFLEET_WEBHOOK_POLL_SECONDS": "0.05",
    "DESKFLEET_WEBHOOK_CONCURRENCY": "2",
}
TOGGLES = 40

CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    ... on WebhookEndpointSecretPayload { secret endpoint { id } }
  }
}"""
TOGGLE = """
mutation($id: ID!, $on: Boolean!) {
  setMachineMaintenance(id: $id, enabled: $on) { __typename }
}"""
DELIVERIES = """
query($id: ID!, $after: String) {
  webhookEndpoint(id: $id) {
    deliveries(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor } nodes { id status attemptCount }
    }
  }
}"""


async def _call(instance: Instance, query: str, variables: dict) -> dict:
    return await asyncio.to_thread(instance.graphql, query, variables)


async def test_two_instances_send_each_delivery_once(cluster: Cluster) -> None:
    async with receiving() as receiver:
        receiver.delay = 0.02
        first = await asyncio.to_thread(cluster.start, "a", WEBHOOK_ENV)
        second = await asyncio.to_thread(cluster.start, "b", WEBHOOK_ENV)
        (environment,) = (await _call(first, "{ environments { id } }", {}))["environments"]
        created = await _call(
            first,
            CREATE,
            {
                "input": {
                    "environmentId": environment["id"],
                    "url": receiver.url,
                    "eventTypes": ["MACHINE_MAINTENANCE_CHANGED"],
                }
            },
        )
        receiver.secret = created["createWebhookEndpoint"]["secret"]
        endpoint_id = created["createWebhookEndpoint"]["endpoint"]["id"]
        machine = await _call(
            first,
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
        machine_id = machine["registerMachine"]["machine"]["id"]
        for i in range(TOGGLES):  # through both instances in turn
            instance = (first, second)[i % 2]
            await _call(instance, TOGGLE, {"id": machine_id, "on": i % 2 == 0})

        deadline = time.monotonic() + 60
        while len(receiver.received) < TOGGLES:
            assert time.monotonic() < deadline, f"{len(receiver.received)} of {TOGGLES} arrived"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # anything sent twice would come now
        deliveries: list[dict] = []
        after = None
        while True:
            page = (await _call(first, DELIVERIES, {"id": endpoint_id, "after": after}))[
                "webhookEndpoint"
            ]["deliveries"]
            deliveries += page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(deliveries) == TOGGLES
        assert {d["status"] for d in deliveries} == {"SUCCEEDED"}
        assert {d["attemptCount"] for d in deliveries} == {1}
        assert len(receiver.received) == len(receiver.unique_ids()) == TOGGLES
        assert receiver.refused == 0
