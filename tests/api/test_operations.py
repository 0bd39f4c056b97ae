"""Operating an instance: /healthz, /readyz, /metrics, request ids and JSON logs."""

import json
import logging

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from starlette.applications import Starlette

from api.observability import JsonFormatter, request_id
from domain.context import DomainContext
from domain.kernel.settings import Settings
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio


async def test_healthz_and_readyz_when_all_is_well(api: GraphQLClient) -> None:
    health = await api.http.get("/healthz")
    ready = await api.http.get("/readyz")

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "storage": "ok", "broadcast": "ok"},
    }


async def test_readyz_unready_when_migrations_are_not_current(
    api: GraphQLClient, domain: DomainContext
) -> None:
    async with domain.db.write() as session:
        await session.exec(text("UPDATE alembic_version SET version_num = '0001'"))  # type: ignore[call-overload]

    ready = await api.http.get("/readyz")

    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unready"
    assert body["checks"]["database"] == "ok"
    assert "deskfleet db upgrade" in body["checks"]["migrations"]


async def test_metrics_show_fleet_figures(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    bot = await fleet.machine(owner, "bot")
    await fleet.heartbeat(bot)
    await api.http.get("/healthz")

    body = (await api.http.get("/metrics")).text

    assert "deskfleet_connected_machines 1.0" in body
    assert 'deskfleet_runs{status="QUEUED"} 0.0' in body
    assert "deskfleet_http_request_seconds_count" in body
    assert "deskfleet_open_subscriptions" in body
    assert bot.key not in body and fleet.admin_token not in body


async def test_metrics_are_served_to_allowed_networks_or_with_the_metrics_token(
    fleet: Fleet, app: Starlette, settings: Settings
) -> None:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
    async with httpx.AsyncClient(transport=transport, base_url="http://deskfleet.test") as http:
        refused = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer not-it"})
        settings.metrics_token = SecretStr("scrape-me")
        try:
            allowed = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        finally:
            settings.metrics_token = None

    assert refused.status_code == wrong.status_code == 403
    assert fleet.environment_id not in refused.text + wrong.text
    assert "deskfleet_" not in refused.text + wrong.text
    assert allowed.status_code == 200
    assert "deskfleet_queue_depth" in allowed.text or "deskfleet_runs" in allowed.text


async def test_request_latency_labels_stay_bounded(api: GraphQLClient) -> None:
    for i in range(5):
        await api.http.get(f"/no-such-page-{i}")
    await api.http.get("/healthz")

    body = (await api.http.get("/metrics")).text

    assert 'deskfleet_http_request_seconds_count{path="other"} 5.0' in body
    assert 'path="/healthz"' in body
    assert "no-such-page" not in body


async def test_request_id_is_echoed_or_made(api: GraphQLClient) -> None:
    given = await api.http.get("/healthz", headers={"X-Request-ID": "trace-42"})
    made = await api.http.get("/healthz")

    assert given.headers["x-request-id"] == "trace-42"
    assert len(made.headers["x-request-id"]) == 32


async def test_json_log_lines_carry_the_request_id() -> None:
    token = request_id.set("req-7")
    try:
        record = logging.LogRecord(
            "deskfleet", logging.INFO, __file__, 1, "run %s queued", ("r1",), None
        )
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)

    assert line["message"] == "run r1 queued"
    assert line["request_id"] == "req-7"
    assert line["level"] == "INFO"


async def test_made_request_ids_differ_per_request(api: GraphQLClient) -> None:
    made = {(await api.http.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3 and all(len(rid) == 32 for rid in made)
