"""Operating a cluster: /readyz follows PostgreSQL and Redis going away and coming back,
SIGTERM finishes in-flight requests and leaves the work to the other instances, and instances
started together on a new database agree on one first run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.cluster.conftest import (
    Cluster,
    PostgresServer,
    drop_database,
    fresh_database,
    throwaway_redis,
    wait_for,
)
from tests.e2e.conftest import RedisServer
from tests.e2e.server import TOKEN

pytestmark = [pytest.mark.e2e]

ENVIRONMENTS = "{ environments { id name } }"


def ready(cluster_instance) -> bool:  # type: ignore[no-untyped-def]
    try:
        status, _ = cluster_instance.readyz()
    except httpx.HTTPError:
        return False
    return status == 200


def unready_because(instance, check: str) -> str | None:  # type: ignore[no-untyped-def]
    status, body = instance.readyz()
    if status == 503 and body["checks"][check] != "ok":
        return body["checks"][check]
    return None


@pytest.fixture
def own_redis(postgres_url: str) -> Iterator[RedisServer]:
    with throwaway_redis() as server:
        yield server


@pytest.fixture
def own_postgres(postgres_url: str) -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def test_readyz_follows_postgresql_going_away_and_coming_back(
    own_postgres: PostgresServer, cluster_redis: RedisServer, tmp_path: Path
) -> None:
    url = fresh_database(own_postgres.url)
    cluster = Cluster(url, cluster_redis.url, tmp_path)
    try:
        a = cluster.start("a")
        b = cluster.start("b")
        assert a.readyz() == (
            200,
            {
                "status": "ready",
                "checks": {
                    "database": "ok",
                    "migrations": "ok",
                    "storage": "ok",
                    "broadcast": "ok",
                },
            },
        )

        own_postgres.stop()
        for instance in (a, b):
            reason = wait_for(lambda i=instance: unready_because(i, "database"), 30, what="unready")
            assert reason  # e.g. a refused connection, said in a few words
            assert httpx.get(f"{instance.url}/healthz").json() == {"status": "ok"}  # still alive

        own_postgres.start()
        for instance in (a, b):
            wait_for(lambda i=instance: ready(i), 30, what="ready again")
        # Queries and mutations work again on both, without a restart.
        for instance in (a, b):
            assert instance.graphql(ENVIRONMENTS)["environments"]
    finally:
        cluster.stop()
        drop_database(url)


def test_readyz_follows_redis_going_away_and_coming_back(
    postgres_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    url = fresh_database(postgres_url)
    cluster = Cluster(url, own_redis.url, tmp_path)
    try:
        a = cluster.start("a")
        b = cluster.start("b")
        assert ready(a) and ready(b)

        own_redis.stop()
        for instance in (a, b):
            assert wait_for(lambda i=instance: unready_because(i, "broadcast"), 30, what="unready")
            assert instance.readyz()[1]["checks"]["database"] == "ok"
            assert httpx.get(f"{instance.url}/healthz").status_code == 200

        own_redis.start()
        for instance in (a, b):
            wait_for(lambda i=instance: ready(i), 30, what="ready again")
    finally:
        cluster.stop()
        drop_database(url)


# --- graceful shutdown -------------------------------------------------------------------------


async def slow_body(query: str, pause: float) -> AsyncIterator[bytes]:
    """A request body that arrives in two parts: the request is in flight meanwhile."""
    body = json.dumps({"query": query}).encode()
    yield body[:5]
    await asyncio.sleep(pause)
    yield body[5:]


@pytest.mark.asyncio
async def test_sigterm_finishes_in_flight_requests_closes_websockets_and_exits_promptly(
    cluster: Cluster,
) -> None:
    a = cluster.start("a")
    b = cluster.start("b")

    async with (
        httpx.AsyncClient(timeout=30) as http,
        websockets.connect(a.ws_url, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        init = {"type": "connection_init", "payload": {"token": cluster.admin_token}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        subscribe = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": "subscription { machineStatus { snapshot } }"},
        }
        await ws.send(json.dumps(subscribe))
        assert json.loads(await ws.recv())["type"] == "next"

        in_flight = asyncio.create_task(
            http.post(
                a.graphql_url,
                content=slow_body(ENVIRONMENTS, 2.0),
                headers={
                    "Authorization": f"Bearer {cluster.admin_token}",
                    "Content-Type": "application/json",
                },
            )
        )
        await asyncio.sleep(0.5)  # the request's head has arrived; its body has not
        signalled = time.monotonic()
        a.served.process.send_signal(signal.SIGTERM)

        answered = await in_flight
        assert answered.status_code == 200
        assert answered.json()["data"]["environments"]

        # The subscription is told the server is going away (1012: restart) at once.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)

        try:
            code = await asyncio.to_thread(a.served.process.wait, 20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit 20 s after SIGTERM:\n{a.output()[-5000:]}") from None
        took = time.monotonic() - signalled
    # uvicorn re-raises the signal it handled once it has shut down cleanly: killed by SIGTERM, but
    # only after "Application shutdown complete" (the lifespan stopped the dispatcher).
    assert code in (0, -signal.SIGTERM)
    assert took < 10, f"shutdown took {took:.1f}s"
    output = a.output()
    assert "Application shutdown complete" in output
    with pytest.raises(httpx.ConnectError):
        await asyncio.to_thread(httpx.get, f"{a.url}/healthz", timeout=2)

    # Nothing of a's is left in PostgreSQL, and b is still ready to take its work.
    rows = await cluster.sql(
        "SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
    )
    assert rows[0]["n"] == 0
    assert ready(b)


# --- the first run, with instances started together --------------------------------------------


def test_instances_started_together_on_a_new_database_make_one_first_run(
    postgres_url: str, cluster_redis: RedisServer, tmp_path: Path
) -> None:
    url = fresh_database(postgres_url)
    cluster = Cluster(url, cluster_redis.url, tmp_path)
    try:
        spawned = [cluster.spawn(name) for name in ("a", "b", "c")]
        for served in spawned:
            served.wait_ready(60)
        tokens = [found.group(1) for s in spawned if (found := TOKEN.search(s.output()))]
        assert len(tokens) == 1, [s.output()[-2000:] for s in spawned]
        for name, served in zip("abc", spawned, strict=True):
            instance = cluster.adopt(name, served, tokens[0])
            environments = instance.graphql(ENVIRONMENTS)["environments"]
            assert [e["name"] for e in environments] == ["Default"]
    finally:
        cluster.stop()
        drop_database(url)


@pytest.mark.asyncio
async def test_two_first_runs_racing_on_one_database_make_one_admin(
    postgres_url: str, tmp_path: Path
) -> None:
    """The race above, made certain: two instances' first-run transactions at the same moment."""
    from domain.bus.events import LocalEventBus
    from domain.context import DomainContext
    from domain.identity import bootstrap
    from domain.kernel.clock import SystemClock
    from domain.kernel.settings import Settings
    from domain.store.db import Database

    url = await asyncio.to_thread(fresh_database, postgres_url)
    contexts = [
        DomainContext(
            db=Database(url),
            settings=Settings(database_url=url, secret_key_file=tmp_path / "key"),
            clock=SystemClock(),
            events=LocalEventBus(),
        )
        for _ in range(4)
    ]
    try:
        issued = await asyncio.gather(*(bootstrap.first_run(ctx) for ctx in contexts))
        async with contexts[0].db.read() as session:
            from sqlmodel import select

            from domain.store.models import Environment, User

            users = (await session.exec(select(User))).all()
            environments = (await session.exec(select(Environment))).all()
    finally:
        for ctx in contexts:
            await ctx.db.dispose()
        await asyncio.to_thread(drop_database, url)
    assert len([i for i in issued if i is not None]) == 1
    assert len(users) == 1 and [e.name for e in environments] == ["Default"]
