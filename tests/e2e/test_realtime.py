"""Realtime subscriptions end to end (R35-R37): a real `deskfleet serve`, real clients (`gql` over
graphql-transport-ws, `websockets` for the legacy graphql-ws), on memory:// and on a real Redis."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport

from tests.e2e.conftest import LiveServer, RedisServer
from tests.graphql import (
    ASSIGN_ROLE,
    CREATE_ENVIRONMENT,
    CREATE_USER,
    GOOD_EDITION,
    GOOD_RUNTIME,
    HEARTBEAT,
    ISSUE_TOKEN,
    REGISTER_MACHINE,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

MACHINE_STATUS = """
subscription($filter: MachineStatusFilterInput) {
  machineStatus(filter: $filter) {
    snapshot removedIds
    machines { machineId name environmentId status maintenance drained runningCount queuedCount version }
  }
}"""
RENAME = """
mutation($input: UpdateMachineInput!) {
  updateMachine(input: $input) { __typename ... on UserError { code message } }
}"""
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }"


# --- given-steps over HTTP ----------------------------------------------------------------------


class Given:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.n = 0

    def default_environment(self) -> str:
        envs = self.server.graphql("{ environments { id name } }")["environments"]
        return next(e["id"] for e in envs if e["name"] == "Default")

    def environment(self, name: str) -> str:
        data = self.server.graphql(
            CREATE_ENVIRONMENT,
            variables={
                "input": {"name": name, "kind": "PRODUCTION", "flowExtensionsVersion": "1.2.4.1"}
            },
        )
        return data["createEnvironment"]["environment"]["id"]

    def person(self, environment_id: str, role: str = "MACHINE_OWNER") -> tuple[str, str, str]:
        """(user id, token, token id)"""
        self.n += 1
        name = f"p{self.n}"
        user = self.server.graphql(
            CREATE_USER,
            variables={"input": {"displayName": name, "email": f"{name}@example.test"}},
        )["createUser"]["user"]["id"]
        self.server.graphql(
            ASSIGN_ROLE,
            variables={"input": {"environmentId": environment_id, "userId": user, "role": role}},
        )
        issued = self.server.graphql(ISSUE_TOKEN, variables={"name": "t", "userId": user})
        issued = issued["issueApiToken"]
        return user, issued["secret"], issued["token"]["id"]

    def machine(self, token: str, environment_id: str, name: str) -> tuple[str, str]:
        """(machine id, machine key)"""
        data = self.server.graphql(
            REGISTER_MACHINE,
            token=token,
            variables={
                "input": {
                    "environmentId": environment_id,
                    "name": name,
                    "runtimeVersion": GOOD_RUNTIME,
                    "osEdition": GOOD_EDITION,
                }
            },
        )["registerMachine"]
        assert data["__typename"] == "RegisteredMachinePayload", data
        return data["machine"]["id"], data["machineKey"]

    def rename(self, machine_id: str, name: str, token: str | None = None) -> None:
        data = self.server.graphql(
            RENAME, token=token, variables={"input": {"id": machine_id, "name": name}}
        )
        assert data["updateMachine"]["__typename"] == "MachinePayload", data

    def heartbeat(self, key: str) -> None:
        self.server.graphql(
            HEARTBEAT,
            token=key,
            variables={"input": {"runtimeVersion": GOOD_RUNTIME, "osEdition": GOOD_EDITION}},
        )


# --- a gql subscriber (graphql-transport-ws) ----------------------------------------------------


class Stream:
    def __init__(self, source: AsyncIterator[dict[str, Any]]) -> None:
        self.source = source

    async def next(self, within: float = 10) -> dict[str, Any]:
        return await asyncio.wait_for(anext(self.source), within)

    async def nothing_for(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            got = await asyncio.wait_for(anext(self.source), seconds)
            pytest.fail(f"expected nothing, got {got}")

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 15
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            message = await self.next(max(0.1, deadline - time.monotonic()))
            if predicate(message):
                return message


def transport(server: LiveServer, token: str) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=server.ws_url,
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )


@asynccontextmanager
async def subscribed(
    server: LiveServer, query: str, variables: dict | None = None, token: str | None = None
) -> AsyncIterator[Stream]:
    async with Client(transport=transport(server, token or server.admin_token)) as session:
        source = session.subscribe(GraphQLRequest(query, variable_values=variables or {}))
        try:
            yield Stream(source)
        finally:
            await source.aclose()


def names(message: dict[str, Any]) -> list[str]:
    return sorted(m["name"] for m in message["machineStatus"]["machines"])


# --- snapshot first, then changes (R36) ---------------------------------------------------------


@pytest.mark.rule("R36")
async def test_snapshot_first_then_the_change_after_a_mutation(realtime_server: LiveServer) -> None:
    given = Given(realtime_server)
    env = given.default_environment()
    machine_id, key = given.machine(realtime_server.admin_token, env, "bot-01")

    async with subscribed(realtime_server, MACHINE_STATUS, {"filter": {"environmentId": env}}) as s:
        snapshot = (await s.next())["machineStatus"]
        assert snapshot["snapshot"] is True
        (shown,) = snapshot["machines"]
        assert shown["name"] == "bot-01"
        assert shown["status"] == "DISCONNECTED"
        assert (shown["runningCount"], shown["queuedCount"], shown["drained"]) == (0, 0, True)
        assert shown["version"] == GOOD_RUNTIME

        given.rename(machine_id, "bot-01-renamed")
        change = (await s.next())["machineStatus"]
        assert change["snapshot"] is False
        assert [m["name"] for m in change["machines"]] == ["bot-01-renamed"]

        given.heartbeat(key)
        change = (await s.next())["machineStatus"]
        assert change["machines"][0]["status"] == "CONNECTED"

        other_id, _ = given.machine(realtime_server.admin_token, env, "bot-02")
        change = (await s.next())["machineStatus"]
        assert [m["machineId"] for m in change["machines"]] == [other_id]


@pytest.mark.rule("R36")
async def test_reconnect_gets_a_fresh_snapshot(realtime_server: LiveServer) -> None:
    given = Given(realtime_server)
    env = given.default_environment()
    machine_id, _ = given.machine(realtime_server.admin_token, env, "bot-01")

    async with subscribed(realtime_server, MACHINE_STATUS) as s:
        assert names(await s.next()) == ["bot-01"]
    # While nobody listens: a rename and a new machine.
    given.rename(machine_id, "renamed-offline")
    given.machine(realtime_server.admin_token, env, "bot-02")

    async with subscribed(realtime_server, MACHINE_STATUS) as s:
        first = await s.next()
        assert first["machineStatus"]["snapshot"] is True
        assert names(first) == ["bot-02", "renamed-offline"]


# --- authorization (R36, R37) -------------------------------------------------------------------


@pytest.mark.rule("R36")
async def test_a_user_of_environment_a_sees_nothing_of_b(realtime_server: LiveServer) -> None:
    given = Given(realtime_server)
    env_a = given.default_environment()
    env_b = given.environment("B")
    _, alice, _ = given.person(env_a)
    _, bob, _ = given.person(env_b)
    a_machine, _ = given.machine(alice, env_a, "a-bot")
    b_machine, _ = given.machine(bob, env_b, "b-bot")

    async with (
        subscribed(realtime_server, MACHINE_STATUS, token=alice) as everything,
        subscribed(
            realtime_server, MACHINE_STATUS, {"filter": {"environmentId": env_b}}, alice
        ) as of_b,
        subscribed(
            realtime_server, MACHINE_STATUS, {"filter": {"machineId": b_machine}}, alice
        ) as one_of_b,
    ):
        assert names(await everything.next()) == ["a-bot"]
        assert (await of_b.next())["machineStatus"]["machines"] == []
        assert (await one_of_b.next())["machineStatus"]["machines"] == []

        given.rename(b_machine, "b-bot-renamed", token=bob)
        given.machine(bob, env_b, "b-bot-2")
        await of_b.nothing_for(1.5)
        await one_of_b.nothing_for(0.1)

        given.rename(a_machine, "a-bot-renamed", token=alice)
        # The next thing Alice hears is about her own machine: nothing of B came before it.
        change = (await everything.next())["machineStatus"]
        assert [m["name"] for m in change["machines"]] == ["a-bot-renamed"]


REVOKE_ROLE = """
mutation($input: RoleInput!) {
  revokeRole(input: $input) { __typename ... on UserError { code message } }
}"""


@pytest.mark.rule("R36")
async def test_an_environment_admin_demoted_while_subscribed_stops_seeing_the_others(
    realtime_server: LiveServer,
) -> None:
    """Environment admins share one read of their environment; one who loses the role
    gets only what they may see from the next change on, never another owner's machine."""
    given = Given(realtime_server)
    env = given.default_environment()
    alice_id, alice, _ = given.person(env, "ENVIRONMENT_ADMIN")
    realtime_server.graphql(
        ASSIGN_ROLE,
        variables={"input": {"environmentId": env, "userId": alice_id, "role": "MACHINE_OWNER"}},
    )
    _, bob, _ = given.person(env)
    given.machine(alice, env, "a-bot")
    b_machine, _ = given.machine(bob, env, "b-bot")
    only_env = {"filter": {"environmentId": env}}

    async with (
        subscribed(realtime_server, MACHINE_STATUS, only_env, alice) as demoted,
        subscribed(realtime_server, MACHINE_STATUS, only_env) as admin,
    ):
        assert names(await demoted.next()) == ["a-bot", "b-bot"]
        assert names(await admin.next()) == ["a-bot", "b-bot"]
        revoked = realtime_server.graphql(
            REVOKE_ROLE,
            variables={
                "input": {"environmentId": env, "userId": alice_id, "role": "ENVIRONMENT_ADMIN"}
            },
        )
        assert revoked["revokeRole"]["__typename"] != "UserError", revoked

        given.rename(b_machine, "b-bot-renamed", token=bob)
        assert names(await admin.next()) == ["b-bot-renamed"]
        after = (await demoted.next())["machineStatus"]
        shown = [m["name"] for m in after["machines"]]
        assert "b-bot-renamed" not in shown
        if after["snapshot"]:
            assert shown == ["a-bot"]
        else:
            assert after["removedIds"] == [b_machine]


@pytest.mark.rule("R37")
async def test_every_operation_gets_its_own_id_on_a_shared_change(
    realtime_server: LiveServer,
) -> None:
    """A change is encoded once for everyone subscribed alike, yet each operation's
    message carries its own id, on both protocols, shaped as the first message was."""
    given = Given(realtime_server)
    env = given.default_environment()
    machine_id, _ = given.machine(realtime_server.admin_token, env, "bot")
    token = realtime_server.admin_token
    query = {"query": MACHINE_STATUS, "variables": {"filter": {"environmentId": env}}}

    async with (
        websockets.connect(realtime_server.ws_url, subprotocols=["graphql-transport-ws"]) as ws,
        websockets.connect(realtime_server.ws_url, subprotocols=["graphql-ws"]) as legacy,
    ):
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        await legacy.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        assert (await legacy_messages(legacy))["type"] == "connection_ack"
        for op in ("a", "b"):
            await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": query}))
            await legacy.send(json.dumps({"id": op, "type": "start", "payload": query}))

        async def two(socket: Any) -> dict[str, dict[str, Any]]:
            got = [await legacy_messages(socket) for _ in range(2)]
            return {m["id"]: m for m in got}

        firsts, legacy_firsts = await two(ws), await two(legacy)
        given.rename(machine_id, "renamed")
        changes, legacy_changes = await two(ws), await two(legacy)

    for op in ("a", "b"):
        for first, change, kind in (
            (firsts[op], changes[op], "next"),
            (legacy_firsts[op], legacy_changes[op], "data"),
        ):
            assert first.keys() == change.keys() == {"id", "type", "payload"}
            assert (first["type"], change["type"], change["id"]) == (kind, kind, op)
            assert first["payload"].keys() == change["payload"].keys() == {"data"}
            update = change["payload"]["data"]["machineStatus"]
            assert update["snapshot"] is False
            assert [m["name"] for m in update["machines"]] == ["renamed"]


@pytest.mark.rule("R37")
async def test_a_revoked_token_cannot_subscribe(realtime_server: LiveServer) -> None:
    given = Given(realtime_server)
    env = given.default_environment()
    _, token, token_id = given.person(env)
    machine_id, _ = given.machine(token, env, "bot")

    async with subscribed(realtime_server, MACHINE_STATUS, token=token) as open_before:
        assert names(await open_before.next()) == ["bot"]
        realtime_server.graphql(REVOKE, variables={"id": token_id})

        with pytest.raises(TransportError):
            async with subscribed(realtime_server, MACHINE_STATUS, token=token) as s:
                await s.next()
        with pytest.raises(TransportError):
            async with subscribed(realtime_server, MACHINE_STATUS, token="dfu_not-a-token") as s:
                await s.next()

        # The subscription opened before the revocation ends at the next change, unread.
        given.rename(machine_id, "renamed")
        with pytest.raises(TransportError) as ended:
            await open_before.next()
        assert "revoked" in str(ended.value)


# --- protocols (R37) ----------------------------------------------------------------------------


async def legacy_messages(ws: Any, within: float = 10) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), within))
        if message["type"] != "ka":
            return message


@pytest.mark.rule("R37")
async def test_legacy_graphql_ws_protocol(realtime_server: LiveServer) -> None:
    given = Given(realtime_server)
    env = given.default_environment()
    machine_id, _ = given.machine(realtime_server.admin_token, env, "bot")

    async with websockets.connect(realtime_server.ws_url, subprotocols=["graphql-ws"]) as ws:
        assert ws.subprotocol == "graphql-ws"
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": "dfu_nope"}}))
        refused = await legacy_messages(ws)
        assert refused["type"] == "connection_error"
        assert refused["payload"]["code"] == "UNAUTHENTICATED"

    async with websockets.connect(realtime_server.ws_url, subprotocols=["graphql-ws"]) as ws:
        token = realtime_server.admin_token
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert (await legacy_messages(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps({"type": "start", "id": "1", "payload": {"query": MACHINE_STATUS}})
        )
        snapshot = await legacy_messages(ws)
        assert snapshot["type"] == "data"
        assert snapshot["payload"]["data"]["machineStatus"]["snapshot"] is True
        given.rename(machine_id, "renamed")
        change = await legacy_messages(ws)
        assert change["payload"]["data"]["machineStatus"]["machines"][0]["name"] == "renamed"


@pytest.mark.rule("R37")
async def test_init_timeout_refusal_codes_and_subscription_cap(realtime_server: LiveServer) -> None:
    url = realtime_server.ws_url
    for protocol in ("graphql-transport-ws", "graphql-ws"):
        async with websockets.connect(url, subprotocols=[protocol]) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)  # says nothing: closed after 2s
            assert ws.close_code == 4408

    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 4403

    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        token = realtime_server.admin_token
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for n in range(6):  # DESKFLEET_WS_MAX_SUBSCRIPTIONS=5 in tests
            await ws.send(
                json.dumps(
                    {"id": str(n), "type": "subscribe", "payload": {"query": MACHINE_STATUS}}
                )
            )
        seen: dict[str, str] = {}
        while len(seen) < 6:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            seen.setdefault(message["id"], message["type"])
        assert sorted(seen.values()) == ["error"] + ["next"] * 5


@pytest.mark.rule("R37")
async def test_browser_origins_are_checked(deskfleet_server: Callable[..., LiveServer]) -> None:
    server = deskfleet_server(env={"DESKFLEET_WS_ALLOWED_ORIGINS": '["https://ops.example"]'})
    async with websockets.connect(
        server.ws_url, subprotocols=["graphql-transport-ws"], origin="https://ops.example"
    ) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            server.ws_url, subprotocols=["graphql-transport-ws"], origin="https://evil.example"
        ):
            pass
    assert refused.value.response.status_code == 403


# --- slow consumers (R37) -----------------------------------------------------------------------


@pytest.mark.rule("R37")
async def test_a_subscriber_that_never_reads_does_not_grow_server_memory(
    realtime_server: LiveServer,
) -> None:
    given = Given(realtime_server)
    env = given.default_environment()
    machines = [
        given.machine(realtime_server.admin_token, env, f"bot-{n:03}")[0] for n in range(40)
    ]

    # A client that subscribes five times and then never reads: a tiny receive buffer and a
    # one-message client queue, so the server's sends block almost at once.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", realtime_server.served.port))
    stalled = await websockets.connect(
        realtime_server.ws_url, sock=sock, subprotocols=["graphql-transport-ws"], max_queue=1
    )
    token = realtime_server.admin_token
    await stalled.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    for n in range(5):
        await stalled.send(
            json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": MACHINE_STATUS}})
        )

    http = httpx.Client(base_url=realtime_server.url, headers={"Authorization": f"Bearer {token}"})

    def churn(rounds: int, tag: str) -> None:
        for n in range(rounds):
            machine_id = machines[n % len(machines)]
            body = {
                "query": RENAME,
                "variables": {"input": {"id": machine_id, "name": f"{tag}-{n}"}},
            }
            assert http.post("/graphql", json=body).status_code == 200

    try:
        await asyncio.to_thread(churn, 150, "warm")
        before = realtime_server.rss_kib()
        await asyncio.to_thread(churn, 600, "a")
        middle = realtime_server.rss_kib()
        await asyncio.to_thread(churn, 600, "b")
        after = realtime_server.rss_kib()
        # 1,200 changes x 5 subscriptions went unread: the server holds a bounded amount (an
        # inbox of 64 events per subscription collapsing into a resync), not the backlog.
        assert after - before < 40_000, (before, middle, after)
        assert after - middle < 15_000, (before, middle, after)
        # And the server still serves everyone else, live.
        async with subscribed(realtime_server, MACHINE_STATUS) as s:
            assert (await s.next())["machineStatus"]["snapshot"] is True
            given.rename(machines[0], "still-live")
            change = await s.until(lambda m: "still-live" in names(m))
            assert change["machineStatus"]["snapshot"] is False
    finally:
        await asyncio.to_thread(http.close)
        stalled.transport.abort()


# --- Redis: several processes, and a restart -------------------------------------------------


@pytest.mark.rule("R35")
async def test_redis_carries_events_between_server_processes(
    redis_server: RedisServer, deskfleet_server: Callable[..., LiveServer], tmp_path: Any
) -> None:
    database = {"DESKFLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    first = deskfleet_server(redis_server.url, env=database)
    second = deskfleet_server(redis_server.url, env=database, admin_token=first.admin_token)
    given = Given(second)
    machine_id, _ = given.machine(first.admin_token, given.default_environment(), "bot")

    async with subscribed(first, MACHINE_STATUS) as s:
        assert names(await s.next()) == ["bot"]
        given.rename(machine_id, "renamed-through-the-other-process")
        change = await s.next()
        assert names(change) == ["renamed-through-the-other-process"]


@pytest.mark.rule("R36")
async def test_redis_restart_during_a_subscription_resumes_with_a_fresh_snapshot(
    redis_server: RedisServer, deskfleet_server: Callable[..., LiveServer]
) -> None:
    server = deskfleet_server(redis_server.url)
    given = Given(server)
    machine_id, _ = given.machine(server.admin_token, given.default_environment(), "bot")

    async with subscribed(server, MACHINE_STATUS) as s:
        assert (await s.next())["machineStatus"]["snapshot"] is True
        await asyncio.to_thread(redis_server.stop)
        given.rename(machine_id, "renamed-while-redis-was-down")
        await asyncio.sleep(1)
        await asyncio.to_thread(redis_server.start)

        fresh = await s.until(lambda m: m["machineStatus"]["snapshot"], within=20)
        assert names(fresh) == ["renamed-while-redis-was-down"]
        given.rename(machine_id, "renamed-after-the-restart")
        change = await s.until(lambda m: "renamed-after-the-restart" in names(m))
        assert change["machineStatus"]["snapshot"] is False


# --- R9 by the clock alone ----------------------------------------------------------------------


@pytest.mark.rule("R9")
async def test_a_machine_that_goes_silent_is_pushed_as_disconnected(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    server = deskfleet_server(env={"DESKFLEET_HEARTBEAT_TIMEOUT_SECONDS": "2"})
    given = Given(server)
    machine_id, key = given.machine(server.admin_token, given.default_environment(), "bot")
    given.heartbeat(key)

    async with subscribed(server, MACHINE_STATUS, {"filter": {"machineId": machine_id}}) as s:
        (shown,) = (await s.next())["machineStatus"]["machines"]
        assert shown["status"] == "CONNECTED"
        change = await s.next(within=10)  # no more heartbeats: R9's timeout passes
        assert change["machineStatus"]["machines"][0]["status"] == "DISCONNECTED"


# --- the machine runtime's assignments, pushed (R35) --------------------------------------------

RUN_UPDATES = """
subscription($filter: FlowRunFilterInput) {
  runUpdates(filter: $filter) { snapshot removedIds runs { id status } }
}"""
QUEUE_DEPTH = """
subscription($groupId: ID) {
  queueDepth(groupId: $groupId) { depth oldestQueuedAt byPriority { priority count } }
}"""


@pytest.mark.rule("R35")
async def test_the_assignment_stream_drives_the_simulator_to_finish_runs(
    realtime_server: LiveServer, tmp_path: Any
) -> None:
    from deskfleet.simulator import Simulator, SimulatorConfig, check_log, read_log
    from tests.api.test_simulator import TRIGGER
    from tests.connection_steps import connection, flow, group
    from tests.graphql import UPDATE_ENVIRONMENT, Fleet, GraphQLClient

    server = realtime_server
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        api = GraphQLClient(http)
        fleet = Fleet(api, server.admin_token, Given(server).default_environment())
        await api.data(
            UPDATE_ENVIRONMENT,
            {"input": {"id": fleet.environment_id, "unattendedCapacity": 2}},
            token=server.admin_token,
        )
        maker = await fleet.person("ENVIRONMENT_MAKER")
        group_id = await group(fleet, maker, "Pushed")
        log_path = tmp_path / "simulator.jsonl"
        simulator = Simulator(
            SimulatorConfig(
                url=f"{server.url}/graphql",
                token=maker.token,
                environment_id=fleet.environment_id,
                machines=2,
                bots=1,
                group_id=group_id,
                min_run_seconds=0.01,
                max_run_seconds=0.05,
                failure_rate=0.0,
                heartbeat_seconds=0.5,
                poll_seconds=60,  # the one poll at start; then only what is pushed
                push=True,
                log_path=log_path,
            )
        )
        await simulator.register()
        conn = await connection(fleet, maker, group_id=group_id, username="robot")
        flow_id = await flow(fleet, maker)
        working = asyncio.create_task(simulator.run())
        try:
            await asyncio.sleep(1.5)  # past the first poll: from here, work arrives pushed
            async with (
                subscribed(server, RUN_UPDATES, {"filter": {"flowId": flow_id}}, maker.token) as r,
                subscribed(server, QUEUE_DEPTH, {"groupId": group_id}, maker.token) as q,
            ):
                assert (await r.next())["runUpdates"] == {
                    "snapshot": True,
                    "runs": [],
                    "removedIds": [],
                }
                assert (await q.next())["queueDepth"]["depth"] == 0
                run_ids = []
                for _ in range(6):
                    data = await api.data(
                        TRIGGER,
                        {
                            "input": {
                                "flowId": flow_id,
                                "connectionId": conn["id"],
                                "mode": "UNATTENDED",
                            }
                        },
                        token=maker.token,
                    )
                    run_ids.append(data["triggerRun"]["run"]["id"])
                status: dict[str, str] = {}
                async with asyncio.timeout(60):
                    while sorted(i for i, s in status.items() if s == "SUCCEEDED") != sorted(
                        run_ids
                    ):
                        for run in (await r.next(within=60))["runUpdates"]["runs"]:
                            status[run["id"]] = run["status"]
                async with asyncio.timeout(20):
                    while (await q.next())["queueDepth"]["depth"] != 0:
                        pass
        finally:
            simulator.stop()
            await working
            await simulator.close()

    check = check_log(read_log(log_path))
    assert sorted(check.finished) == sorted(run_ids)
    assert check.double_holds == [] and check.double_finishes == []


@pytest.mark.rule("R36")
async def test_the_watch_fleet_example_prints_the_snapshot_then_the_change(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    import os
    import sys

    from tests.e2e.server import ROOT

    server = deskfleet_server()
    given = Given(server)
    machine_id, _ = given.machine(server.admin_token, given.default_environment(), "bot-01")
    env = {
        **os.environ,
        "DESKFLEET_URL": f"{server.url}/graphql",
        "DESKFLEET_TOKEN": server.admin_token,
    }
    watcher = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "watch_fleet.py"),
        "--count",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert watcher.stdout is not None
    first = await asyncio.wait_for(watcher.stdout.readline(), 20)
    assert first.decode().startswith("-- snapshot: 1 machine(s)")
    given.rename(machine_id, "bot-01-renamed")
    rest, _ = await asyncio.wait_for(watcher.communicate(), 20)
    assert watcher.returncode == 0
    assert "~  bot-01-renamed" in rest.decode()
