"""R43: webhooks. Endpoints subscribe to event types; every delivery is signed (Standard
Webhooks) and sent to a real receiver on 127.0.0.1 that verifies it, retried with backoff, logged,
redeliverable; the events are recorded with the changes that cause them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlmodel import select
from starlette.applications import Starlette

from api.app import create_app
from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once, sweep_once
from domain.identity import bootstrap
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from domain.store.models import DeliveryStatus, WebhookDelivery
from domain.webhooks import conditions, sender
from tests.graphql import Fleet, GraphQLClient
from tests.runs_given import CANCEL_RUN, UPDATE_ENVIRONMENT, Runs
from tests.webhook_receiver import Receiver, receiving

pytestmark = pytest.mark.rule("R43")

ENDPOINT_FIELDS = """
id url description eventTypes paused disabledReason offlineMinutes waitingMinutes queueDepth
"""
CREATE = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpointSecretPayload { secret endpoint { ENDPOINT_FIELDS } }
    ... on UserError { code message }
    ... on ValidationError { field }
  }
}""".replace("ENDPOINT_FIELDS", ENDPOINT_FIELDS)
UPDATE = """
mutation($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) {
    __typename
    ... on WebhookEndpointPayload { endpoint { ENDPOINT_FIELDS } }
    ... on UserError { code message }
    ... on ValidationError { field }
  }
}""".replace("ENDPOINT_FIELDS", ENDPOINT_FIELDS)


def _by_id(mutation: str, payload: str) -> str:
    return f"""
mutation($id: ID!) {{
  {mutation}(id: $id) {{ __typename {payload} ... on UserError {{ code message }} }}
}}"""


PAUSE = _by_id("pauseWebhookEndpoint", "... on WebhookEndpointPayload { endpoint { paused } }")
RESUME = _by_id(
    "resumeWebhookEndpoint",
    "... on WebhookEndpointPayload { endpoint { paused disabledReason } }",
)
DELETE = _by_id("deleteWebhookEndpoint", "... on DeletedWebhookEndpointPayload { id }")
PING = _by_id("pingWebhookEndpoint", "... on WebhookDeliveryPayload { deliveryId }")
REDELIVER = _by_id("redeliverWebhookDelivery", "... on WebhookDeliveryPayload { deliveryId }")
ROTATE = _by_id("rotateWebhookEndpointSecret", "... on WebhookEndpointSecretPayload { secret }")
DELIVERIES = """
query($id: ID!, $first: Int, $after: String, $status: WebhookDeliveryStatus) {
  webhookEndpoint(id: $id) {
    id disabledReason
    deliveries(first: $first, after: $after, status: $status) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes {
        id eventType payload status attemptCount nextAttemptAt endedAt
        attempts { at succeeded responseStatus durationMs error }
      }
    }
  }
}"""
ENDPOINTS = """
query($env: ID!, $first: Int, $after: String) {
  webhookEndpoints(environmentId: $env, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id url }
  }
}"""
ALL_TYPES = [
    "MACHINE_STATUS_CHANGED",
    "MACHINE_OFFLINE",
    "MACHINE_MAINTENANCE_CHANGED",
    "RUN_FINISHED",
    "RUN_WAITING",
    "QUEUE_DEPTH_EXCEEDED",
    "RECOMMENDATION_RAISED",
    "RECOMMENDATION_RESOLVED",
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The receiver listens on 127.0.0.1: its network is allowed here (refused by default).
    return settings.model_copy(update={"webhook_allowed_networks": ["127.0.0.1/32"]})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as r:
        yield r


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, follow_redirects=False, trust_env=False) as client:
        yield client


class Hooks:
    """Given-steps for webhooks, and the sender driven by hand (its lifespan task is off)."""

    def __init__(
        self, fleet: Fleet, domain: DomainContext, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        self.fleet = fleet
        self.api: GraphQLClient = fleet.api
        self.domain = domain
        self.http = http
        self.receiver = receiver

    async def create_raw(self, token: str | None = None, **fields: Any) -> dict[str, Any]:
        data = {
            "environmentId": self.fleet.environment_id,
            "url": self.receiver.url,
            "eventTypes": ALL_TYPES,
            **fields,
        }
        result = await self.api.data(CREATE, {"input": data}, token=token or self.fleet.admin_token)
        return result["createWebhookEndpoint"]

    async def endpoint(self, **fields: Any) -> str:
        created = await self.create_raw(**fields)
        assert created["__typename"] == "WebhookEndpointSecretPayload", created
        self.receiver.secret = created["secret"]
        return created["endpoint"]["id"]

    async def change(self, document: str, ident: str, token: str | None = None) -> dict:
        data = await self.api.data(document, {"id": ident}, token=token or self.fleet.admin_token)
        return next(iter(data.values()))

    async def send(self) -> int:
        """Check the time-based conditions, then send what is due, as the sender's pass does."""
        await conditions.check_conditions(self.domain)
        total = 0
        while sent := await sender.deliver_due(self.domain, self.http, "tests"):
            total += sent
        return total

    async def deliveries(self, endpoint_id: str, **variables: Any) -> dict[str, Any]:
        data = await self.api.data(
            DELIVERIES, {"id": endpoint_id, "first": 10, **variables}, token=self.fleet.admin_token
        )
        return data["webhookEndpoint"]

    def clock(self) -> ManualClock:
        assert isinstance(self.domain.clock, ManualClock)
        return self.domain.clock


@pytest.fixture
def hooks(
    fleet: Fleet, domain: DomainContext, http: httpx.AsyncClient, receiver: Receiver
) -> Hooks:
    return Hooks(fleet, domain, http, receiver)


# --- signatures, ping, the attempt log ------------------------------------------------------------


async def test_a_ping_is_signed_and_its_attempt_logged(hooks: Hooks) -> None:
    """The secret is shown once; a ping goes out with Standard Webhooks headers the reference
    library verifies; the attempt (status, response code, duration) can be read back."""
    endpoint_id = await hooks.endpoint()
    ping = await hooks.change(PING, endpoint_id)
    assert ping["__typename"] == "WebhookDeliveryPayload", ping
    assert await hooks.send() == 1
    (received,) = hooks.receiver.received
    assert hooks.receiver.refused == 0
    assert received.id == ping["deliveryId"]
    assert received.signature.startswith("v1,")
    assert received.payload["type"] == "webhook.ping"
    assert received.payload["data"] == {"endpointId": endpoint_id}
    assert "timestamp" in received.payload
    endpoint = await hooks.deliveries(endpoint_id)
    (delivery,) = endpoint["deliveries"]["nodes"]
    assert delivery["status"] == "SUCCEEDED"
    assert delivery["eventType"] == "webhook.ping"
    (attempt,) = delivery["attempts"]
    assert attempt["succeeded"] and attempt["responseStatus"] == 204
    assert attempt["durationMs"] >= 0 and attempt["error"] is None


async def test_a_wrong_secret_does_not_verify(hooks: Hooks) -> None:
    """The receiver's check is real: with another endpoint's secret nothing verifies."""
    endpoint_id = await hooks.endpoint()
    rotated = await hooks.change(ROTATE, endpoint_id)
    assert rotated["secret"] != hooks.receiver.secret and rotated["secret"].startswith("whsec_")
    await hooks.change(PING, endpoint_id)
    await hooks.send()
    assert hooks.receiver.refused == 1 and hooks.receiver.received == []
    hooks.receiver.secret = rotated["secret"]
    hooks.clock().advance(timedelta(seconds=5))  # the 401 is retried after 5 s
    await hooks.send()
    assert len(hooks.receiver.received) == 1


# --- each event type --------------------------------------------------------------------------------


async def test_machine_status_maintenance_and_offline_events(hooks: Hooks, runs: Runs) -> None:
    """machine.status.changed (CONNECTED at its heartbeat, DISCONNECTED when R9's timeout passes),
    machine.maintenance.changed, machine.offline after the endpoint's threshold, each once."""
    await hooks.endpoint(offlineMinutes=10)
    owner = await hooks.fleet.person("MACHINE_OWNER")
    machine = await runs.machine(owner)  # registers and heartbeats: CONNECTED
    await runs.maintenance(machine.id, True)
    await hooks.send()
    (connected,) = hooks.receiver.of_type("machine.status.changed")
    assert connected["data"]["machineId"] == machine.id
    assert connected["data"]["status"] == "CONNECTED"
    (maintenance,) = hooks.receiver.of_type("machine.maintenance.changed")
    assert maintenance["data"] == {"machineId": machine.id, "maintenance": True, "groupId": None}
    timeout = hooks.domain.settings.heartbeat_timeout_seconds
    hooks.clock().advance(timedelta(seconds=timeout + 1))
    await hooks.send()
    await hooks.send()  # checked again: still the same episode, nothing more
    statuses = [e["data"]["status"] for e in hooks.receiver.of_type("machine.status.changed")]
    assert statuses == ["CONNECTED", "DISCONNECTED"]
    assert hooks.receiver.of_type("machine.offline") == []
    hooks.clock().advance(timedelta(minutes=10))
    await hooks.send()
    await hooks.send()
    (offline,) = hooks.receiver.of_type("machine.offline")
    assert offline["data"]["machineId"] == machine.id and offline["data"]["offlineMinutes"] == 10
    await runs.heartbeat(machine)  # back: a new episode may come later
    await hooks.send()
    statuses = [e["data"]["status"] for e in hooks.receiver.of_type("machine.status.changed")]
    assert statuses == ["CONNECTED", "DISCONNECTED", "CONNECTED"]


async def test_run_finished_waiting_and_queue_depth_events(hooks: Hooks, runs: Runs) -> None:
    """run.finished (here CANCELLED), run.waiting after the endpoint's threshold and
    queue.depth.exceeded past its depth, each once per episode."""
    await hooks.endpoint(waitingMinutes=5, queueDepth=1)
    await runs.capacity(1)
    owner = await hooks.fleet.person("MACHINE_OWNER")
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    first = await runs.trigger(target)
    second = await runs.trigger(target)
    await hooks.send()
    (deep,) = hooks.receiver.of_type("queue.depth.exceeded")
    assert deep["data"] == {"queuedRuns": 2, "queueDepth": 1}
    hooks.clock().advance(timedelta(minutes=5))
    await hooks.send()
    waiting = sorted(e["data"]["runId"] for e in hooks.receiver.of_type("run.waiting"))
    assert waiting == sorted([first, second])
    cancelled = await runs.change(CANCEL_RUN, first)
    assert cancelled["run"]["status"] == "CANCELLED"
    await hooks.send()
    (finished,) = hooks.receiver.of_type("run.finished")
    assert finished["data"]["runId"] == first
    assert finished["data"]["status"] == "CANCELLED"
    assert finished["data"]["errorCode"] == "CANCELLED_BY_USER"
    await runs.trigger(target)  # two queued again: a new episode of the queue's depth
    await hooks.send()
    assert len(hooks.receiver.of_type("queue.depth.exceeded")) == 2
    assert len(hooks.receiver.of_type("run.waiting")) == 2  # still once per waiting run


async def test_run_finished_says_how_each_run_ended(hooks: Hooks, runs: Runs) -> None:
    """run.finished for a run that succeeded, one that failed (as its machine reported) and one
    that timed out in the queue (R27)."""
    await hooks.endpoint(eventTypes=["RUN_FINISHED"])
    await runs.capacity(1, max_queue_seconds=60)
    owner = await hooks.fleet.person("MACHINE_OWNER")
    machine = await runs.machine(owner, bots=1)
    target = await runs.target(owner, machine=machine)
    outcomes = {}
    for outcome in ("SUCCEEDED", "FAILED"):
        run_id = await runs.trigger(target)
        await dispatch_once(hooks.domain)
        await runs.confirm(machine, run_id, 1)
        extra = {"errorCode": "FLOW_ERROR"} if outcome == "FAILED" else {}
        await runs.finish(machine, run_id, 1, outcome, **extra)
        outcomes[run_id] = outcome
    await runs.maintenance(machine.id, True)  # nothing can take the next one
    run_id = await runs.trigger(target)
    outcomes[run_id] = "TIMED_OUT"
    hooks.clock().advance(timedelta(seconds=61))
    await sweep_once(hooks.domain)
    await hooks.send()
    finished = {e["data"]["runId"]: e["data"] for e in hooks.receiver.of_type("run.finished")}
    assert {r: d["status"] for r, d in finished.items()} == outcomes
    failed = next(d for d in finished.values() if d["status"] == "FAILED")
    assert failed["errorCode"] == "FLOW_ERROR" and failed["machineId"] == machine.id
    timed_out = next(d for d in finished.values() if d["status"] == "TIMED_OUT")
    assert timed_out["errorCode"] == "NO_CANDIDATE_MACHINE" and timed_out["startedAt"] is None


async def test_recommendation_raised_and_resolved_events(hooks: Hooks, runs: Runs) -> None:
    """R32/R33's recommendation, raised for a run blocked by a locked session and resolved
    when the user signs out."""
    await hooks.endpoint(eventTypes=["RECOMMENDATION_RAISED", "RECOMMENDATION_RESOLVED"])
    setting = {"id": hooks.fleet.environment_id, "sessionRecommendations": True}
    await hooks.api.data(UPDATE_ENVIRONMENT, {"input": setting}, token=hooks.fleet.admin_token)
    await runs.capacity(2)
    owner = await hooks.fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    user = r"CONTOSO\robot"
    machine = await runs.machine(owner, bots=1, sessions={user: "LOCKED"})
    run_id = await runs.trigger(await runs.target(owner, machine=machine, username=user))
    await dispatch_once(hooks.domain)
    await hooks.send()
    (raised,) = hooks.receiver.of_type("recommendation.raised")
    assert raised["data"]["recipientId"] == owner.id
    assert raised["data"]["runIds"] == [run_id]
    assert raised["data"]["resolvedAt"] is None
    await runs.heartbeat(machine, {})  # the user signed out
    await dispatch_once(hooks.domain)
    await hooks.send()
    (resolved,) = hooks.receiver.of_type("recommendation.resolved")
    assert resolved["data"]["recommendationId"] == raised["data"]["recommendationId"]
    assert resolved["data"]["resolvedAt"] is not None


async def test_an_endpoint_gets_only_the_types_it_subscribed_to(hooks: Hooks, runs: Runs) -> None:
    await hooks.endpoint(eventTypes=["RUN_FINISHED"])
    owner = await hooks.fleet.person("MACHINE_OWNER")
    machine = await runs.machine(owner)
    await runs.maintenance(machine.id, True)
    assert await hooks.send() == 0
    assert hooks.receiver.received == []


# --- retries, the log, redelivery, pause, disabling ------------------------------------------------


async def test_a_failing_delivery_is_retried_with_backoff_until_it_succeeds(hooks: Hooks) -> None:
    """A 500 is retried 5 s later, then 30 s later; nothing is sent before its time; each
    attempt is logged with its answer."""
    endpoint_id = await hooks.endpoint()
    hooks.receiver.status = 500
    await hooks.change(PING, endpoint_id)
    assert await hooks.send() == 1
    assert await hooks.send() == 0  # not due yet
    hooks.clock().advance(timedelta(seconds=5))
    assert await hooks.send() == 1
    hooks.clock().advance(timedelta(seconds=29))
    assert await hooks.send() == 0
    hooks.clock().advance(timedelta(seconds=1))
    hooks.receiver.status = 200
    assert await hooks.send() == 1
    (delivery,) = (await hooks.deliveries(endpoint_id))["deliveries"]["nodes"]
    assert delivery["status"] == "SUCCEEDED" and delivery["attemptCount"] == 3
    assert [a["responseStatus"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [a["succeeded"] for a in delivery["attempts"]] == [False, False, True]
    assert delivery["attempts"][0]["error"] == "HTTP 500"
    assert len(hooks.receiver.unique_ids()) == 1  # one webhook-id across the retries


async def test_each_delivery_is_claimed_by_one_sender_at_a_time(hooks: Hooks) -> None:
    """A cluster's instances claim due deliveries at once: each gets its own, none twice, until
    a lease runs out (its holder died): then another instance claims it."""
    endpoint_id = await hooks.endpoint()
    pings = {(await hooks.change(PING, endpoint_id))["deliveryId"] for _ in range(12)}
    claims = await asyncio.gather(
        *(sender.claim(hooks.domain, f"instance-{i}", 5) for i in range(3))
    )
    assert sorted(len(c) for c in claims) == [2, 5, 5]
    assert set().union(*claims) == pings
    assert await sender.claim(hooks.domain, "instance-3", 5) == []  # all leased
    hooks.clock().advance(sender.lease(hooks.domain) + timedelta(seconds=1))
    assert set(await sender.claim(hooks.domain, "instance-3", 20)) == pings


async def test_a_delivery_can_be_sent_again(hooks: Hooks) -> None:
    endpoint_id = await hooks.endpoint()
    ping = await hooks.change(PING, endpoint_id)
    await hooks.send()
    again = await hooks.change(REDELIVER, ping["deliveryId"])
    assert again == {"__typename": "WebhookDeliveryPayload", "deliveryId": ping["deliveryId"]}
    assert await hooks.send() == 1
    assert [r.id for r in hooks.receiver.received] == [ping["deliveryId"]] * 2
    (delivery,) = (await hooks.deliveries(endpoint_id))["deliveries"]["nodes"]
    assert delivery["attemptCount"] == 2


async def test_a_paused_endpoint_gets_nothing_until_resumed(hooks: Hooks, runs: Runs) -> None:
    endpoint_id = await hooks.endpoint()
    owner = await hooks.fleet.person("MACHINE_OWNER")
    machine = await runs.machine(owner)
    assert await hooks.send() == 1  # its heartbeat's CONNECTED
    paused = await hooks.change(PAUSE, endpoint_id)
    assert paused["endpoint"]["paused"] is True
    await runs.maintenance(machine.id, True)
    assert await hooks.send() == 0
    assert await hooks.change(RESUME, endpoint_id) == {
        "__typename": "WebhookEndpointPayload",
        "endpoint": {"paused": False, "disabledReason": None},
    }
    await runs.maintenance(machine.id, False)
    await hooks.send()
    # The change made while paused is never sent; the one after resuming is.
    (maintenance,) = hooks.receiver.of_type("machine.maintenance.changed")
    assert maintenance["data"]["maintenance"] is False


async def test_an_endpoint_failing_for_a_day_is_disabled_with_the_reason(hooks: Hooks) -> None:
    endpoint_id = await hooks.endpoint()
    hooks.receiver.status = 503
    await hooks.change(PING, endpoint_id)
    attempts = 0
    for _ in range(40):
        attempts += await hooks.send()
        hooks.clock().advance(timedelta(hours=1))
    endpoint = await hooks.deliveries(endpoint_id)
    (delivery,) = endpoint["deliveries"]["nodes"]
    assert delivery["status"] == "FAILED" and delivery["nextAttemptAt"] is None
    assert 10 <= attempts == delivery["attemptCount"] <= 40
    assert "no delivery succeeded for a day" in endpoint["disabledReason"]
    assert "HTTP 503" in endpoint["disabledReason"]
    failed = await hooks.deliveries(endpoint_id, status="FAILED")
    assert failed["deliveries"]["totalCount"] == 1
    refused = await hooks.change(REDELIVER, delivery["id"])
    assert refused["code"] == "ENDPOINT_DISABLED"
    resumed = await hooks.change(RESUME, endpoint_id)
    assert resumed["endpoint"]["disabledReason"] is None
    hooks.receiver.status = 200
    await hooks.change(REDELIVER, delivery["id"])
    assert await hooks.send() == 1
    assert (await hooks.deliveries(endpoint_id))["deliveries"]["nodes"][0]["status"] == "SUCCEEDED"


async def test_a_deleted_endpoint_gets_nothing_more(hooks: Hooks, runs: Runs) -> None:
    endpoint_id = await hooks.endpoint()
    await hooks.change(PING, endpoint_id)
    assert await hooks.change(DELETE, endpoint_id) == {
        "__typename": "DeletedWebhookEndpointPayload",
        "id": endpoint_id,
    }
    assert await hooks.send() == 0
    assert (await hooks.deliveries(endpoint_id)) is None


# --- endpoints: input, listing, permissions, where webhooks may go ----------------------------------


async def test_endpoints_are_listed_a_page_at_a_time(hooks: Hooks) -> None:
    ids = [await hooks.endpoint(description=f"n{i}") for i in range(3)]
    seen: list[str] = []
    after = None
    while True:
        data = await hooks.api.data(
            ENDPOINTS,
            {"env": hooks.fleet.environment_id, "first": 2, "after": after},
            token=hooks.fleet.admin_token,
        )
        page = data["webhookEndpoints"]
        assert page["totalCount"] == 3
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(ids)  # oldest first; made at one instant here, so by id


@pytest.mark.rule("R46")
async def test_a_retried_creation_with_its_key_answers_the_first_endpoint(hooks: Hooks) -> None:
    first = await hooks.create_raw(idempotencyKey="hook-1", description="tickets")
    again = await hooks.create_raw(idempotencyKey="hook-1", description="tickets")
    other = await hooks.create_raw(idempotencyKey="hook-1", description="chat")
    listed = await hooks.api.data(
        ENDPOINTS,
        {"env": hooks.fleet.environment_id, "first": 10, "after": None},
        token=hooks.fleet.admin_token,
    )

    assert first["__typename"] == again["__typename"] == "WebhookEndpointSecretPayload"
    assert again["endpoint"]["id"] == first["endpoint"]["id"]
    assert again["secret"] == first["secret"]  # the first answer may never have arrived
    assert (other["__typename"], other["code"]) == ("ConflictError", "IDEMPOTENCY_KEY_REUSED")
    assert listed["webhookEndpoints"]["totalCount"] == 1


async def test_the_audit_trail_says_who_pointed_events_where(hooks: Hooks) -> None:
    endpoint_id = await hooks.endpoint(eventTypes=["RUN_FINISHED"])
    await hooks.change(PAUSE, endpoint_id)
    await hooks.change(RESUME, endpoint_id)
    await hooks.change(ROTATE, endpoint_id)
    await hooks.change(DELETE, endpoint_id)
    data = await hooks.api.data(
        "query($env: ID!) { auditTrail(environmentId: $env, first: 10) "
        "{ nodes { action targetKind targetId targetName detail } } }",
        {"env": hooks.fleet.environment_id},
        token=hooks.fleet.admin_token,
    )
    entries = data["auditTrail"]["nodes"]
    assert [e["action"] for e in reversed(entries)] == [
        "WEBHOOK_ENDPOINT_CREATED",
        "WEBHOOK_ENDPOINT_PAUSED",
        "WEBHOOK_ENDPOINT_RESUMED",
        "WEBHOOK_ENDPOINT_SECRET_ROTATED",
        "WEBHOOK_ENDPOINT_DELETED",
    ]
    assert {(e["targetKind"], e["targetId"], e["targetName"], e["detail"]) for e in entries} == {
        ("WEBHOOK_ENDPOINT", endpoint_id, hooks.receiver.url, "run.finished")
    }


async def test_finished_deliveries_are_forgotten_after_the_retention(hooks: Hooks) -> None:
    endpoint_id = await hooks.endpoint()
    await hooks.change(PING, endpoint_id)
    await hooks.send()
    hooks.clock().advance(timedelta(days=hooks.domain.settings.webhook_retention_days - 1))
    await hooks.change(PING, endpoint_id)  # still pending when the first one is forgotten
    hooks.receiver.status = 500
    await hooks.send()
    await sender.prune(hooks.domain)
    assert (await hooks.deliveries(endpoint_id))["deliveries"]["totalCount"] == 2
    hooks.clock().advance(timedelta(days=1, seconds=1))
    await sender.prune(hooks.domain)
    (left,) = (await hooks.deliveries(endpoint_id))["deliveries"]["nodes"]
    assert left["status"] == "PENDING"


async def test_an_update_changes_what_it_names_only(hooks: Hooks) -> None:
    endpoint_id = await hooks.endpoint(eventTypes=["RUN_FINISHED"], queueDepth=5)
    result = await hooks.api.data(
        UPDATE,
        {"input": {"id": endpoint_id, "eventTypes": ["RUN_WAITING"], "waitingMinutes": 7}},
        token=hooks.fleet.admin_token,
    )
    endpoint = result["updateWebhookEndpoint"]["endpoint"]
    assert endpoint["eventTypes"] == ["RUN_WAITING"]
    assert endpoint["waitingMinutes"] == 7 and endpoint["queueDepth"] == 5
    assert endpoint["url"] == hooks.receiver.url


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"eventTypes": []}, "INVALID_EVENT_TYPE", "eventTypes"),
        ({"offlineMinutes": 0}, "INVALID_VALUE", "offlineMinutes"),
        ({"queueDepth": -1}, "INVALID_VALUE", "queueDepth"),
        ({"url": "ftp://example.com/hook"}, "INVALID_URL", "url"),
        ({"url": "http://user:pw@example.com/hook"}, "INVALID_URL", "url"),
        ({"url": "not a url"}, "INVALID_URL", "url"),
        ({"description": "x" * 1001}, "INVALID_TEXT", "description"),
    ],
)
async def test_bad_input_is_a_typed_error_that_changes_nothing(
    hooks: Hooks, fields: dict[str, Any], code: str, field: str
) -> None:
    created = await hooks.create_raw(**fields)
    assert created["__typename"] == "ValidationError", created
    assert (created["code"], created["field"]) == (code, field)
    data = await hooks.api.data(
        ENDPOINTS, {"env": hooks.fleet.environment_id}, token=hooks.fleet.admin_token
    )
    assert data["webhookEndpoints"]["totalCount"] == 0


async def test_only_the_environments_admins_see_and_change_its_webhooks(hooks: Hooks) -> None:
    endpoint_id = await hooks.endpoint()
    ping = await hooks.change(PING, endpoint_id)
    member = await hooks.fleet.person("MACHINE_OWNER")
    outsider = await hooks.fleet.person()
    for person in (member, outsider):
        for document, ident in (
            (PING, endpoint_id),
            (PAUSE, endpoint_id),
            (DELETE, endpoint_id),
            (ROTATE, endpoint_id),
            (REDELIVER, ping["deliveryId"]),
        ):
            refused = await hooks.change(document, ident, token=person.token)
            assert refused["__typename"] == "NotFoundError", (document, refused)
            assert ident in refused["message"] or "does not exist" in refused["message"]
        data = await hooks.api.data(DELIVERIES, {"id": endpoint_id, "first": 1}, token=person.token)
        assert data["webhookEndpoint"] is None
    created = await hooks.create_raw(token=member.token)
    assert created["code"] == "NOT_ADMIN"
    created = await hooks.create_raw(token=outsider.token)
    assert created["code"] == "NOT_FOUND"
    env_admin = await hooks.fleet.person("ENVIRONMENT_ADMIN")
    listed = await hooks.api.data(
        ENDPOINTS, {"env": hooks.fleet.environment_id}, token=env_admin.token
    )
    assert [n["id"] for n in listed["webhookEndpoints"]["nodes"]] == [endpoint_id]


class TestWithoutAllowedNetworks:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"webhook_allowed_networks": []})

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://192.168.0.10/hook",
            "http://0.0.0.0/hook",
            "http://localhost/hook",
        ],
    )
    async def test_private_and_loopback_targets_are_refused(self, hooks: Hooks, url: str) -> None:
        created = await hooks.create_raw(url=url)
        assert created["__typename"] == "ValidationError", created
        assert created["code"] == "INVALID_URL" and created["field"] == "url"
        assert "DESKFLEET_WEBHOOK_ALLOWED_NETWORKS" in created["message"]

    async def test_a_target_is_checked_again_when_sent(
        self, hooks: Hooks, domain: DomainContext
    ) -> None:
        """Allowed when saved, refused when sent (the setting changed, or the name now
        resolves elsewhere): nothing reaches the address, the attempt says why."""
        domain.settings.webhook_allowed_networks = ["127.0.0.1/32"]
        endpoint_id = await hooks.endpoint()
        domain.settings.webhook_allowed_networks = []
        await hooks.change(PING, endpoint_id)
        await hooks.send()
        assert hooks.receiver.received == [] and hooks.receiver.refused == 0
        (delivery,) = (await hooks.deliveries(endpoint_id))["deliveries"]["nodes"]
        (attempt,) = delivery["attempts"]
        assert attempt["responseStatus"] is None
        assert attempt["error"].startswith("not sent:")


class TestTraced:
    @pytest.fixture
    def exporter(self) -> InMemorySpanExporter:
        return InMemorySpanExporter()

    @pytest.fixture
    async def app(
        self, settings: Settings, clock: ManualClock, exporter: InMemorySpanExporter
    ) -> AsyncIterator[Starlette]:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        application = create_app(settings, clock=clock, tracer_provider=provider)
        async with application.router.lifespan_context(application):
            yield application
        provider.shutdown()

    async def test_each_attempt_is_a_span(
        self, hooks: Hooks, exporter: InMemorySpanExporter
    ) -> None:
        """Traces: one client span per delivery attempt, naming the delivery, endpoint, event
        type and answer; a failed attempt's span is an error."""
        endpoint_id = await hooks.endpoint()
        hooks.receiver.status = 500
        ping = await hooks.change(PING, endpoint_id)
        await hooks.send()
        hooks.receiver.status = 200
        hooks.clock().advance(timedelta(seconds=5))
        await hooks.send()
        spans = [s for s in exporter.get_finished_spans() if s.name == "webhook delivery"]
        assert [s.kind for s in spans] == [SpanKind.CLIENT] * 2
        failed, succeeded = spans
        for span in spans:
            attributes = dict(span.attributes or {})
            assert attributes["deskfleet.webhook.delivery.id"] == ping["deliveryId"]
            assert attributes["deskfleet.webhook.endpoint.id"] == endpoint_id
            assert attributes["deskfleet.webhook.event.type"] == "webhook.ping"
        assert failed.attributes and failed.attributes["http.response.status_code"] == 500
        assert failed.status.status_code is StatusCode.ERROR
        assert succeeded.attributes and succeeded.attributes["http.response.status_code"] == 200
        assert succeeded.status.status_code is not StatusCode.ERROR


async def test_the_lifespan_sender_sends_and_a_clean_stop_lets_an_attempt_finish(
    settings: Settings, clock: ManualClock, receiver: Receiver
) -> None:
    """The app's own sender (on unless turned off) sends without being driven; stopping the app
    while an attempt is in flight lets it finish and log, so it is not sent twice."""
    settings = settings.model_copy(update={"webhooks_enabled": True, "webhook_poll_seconds": 0.02})
    app = create_app(settings, clock=clock)
    receiver.delay = 0.5
    async with app.router.lifespan_context(app):
        domain: DomainContext = app.state.domain
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://deskfleet.test") as http,
            httpx.AsyncClient(trust_env=False) as client,
        ):
            admin = (await bootstrap.mint_admin_token(domain, "tests")).secret
            api = GraphQLClient(http)
            (environment,) = (await api.data("{ environments { id } }", token=admin))[
                "environments"
            ]
            fleet = Fleet(api, admin, environment["id"])
            hooks = Hooks(fleet, domain, client, receiver)
            endpoint_id = await hooks.endpoint()
            await hooks.change(PING, endpoint_id)
            for _ in range(500):
                if receiver.in_flight:
                    break
                await asyncio.sleep(0.01)
            assert receiver.in_flight == 1
    # Stopped: the attempt in flight finished and was logged.
    assert len(receiver.received) == 1
    async with domain.db.read() as session:
        (delivery,) = (await session.exec(select(WebhookDelivery))).all()
    assert delivery.status is DeliveryStatus.SUCCEEDED and delivery.leased_by is None
