"""R39 through the real app: an operation's cost is known before it runs, one over the maximum is
refused before any database work, each caller spends from a leaky bucket, and every answer
reports the cost."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests.api.group_steps import DEACTIVATE
from tests.conftest import StatementCounter
from tests.graphql import Fleet, GraphQLClient

pytestmark = [pytest.mark.asyncio, pytest.mark.rule("R39")]

BUCKET = 100
RESTORE = 10  # points a second

INSIDE = (
    "id name status version group { machines { accessList { user { email } } allowedActions } }"
)
HOSTILE = (
    "{ "
    + " ".join(
        f"a{i}: machines(first: 100) {{ nodes {{ {INSIDE} accessList {{ user {{ email }} }} }} }}"
        for i in range(15)
    )
    + " }"
)
# 1 (the connection) + 10 machines * (1 + a group of 1): 21 points
PAGE = "query Page($first: Int) { machines(first: $first) { nodes { id group { name } } } }"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"cost_bucket_size": float(BUCKET), "cost_restore_rate": float(RESTORE)}
    )


async def post(api: GraphQLClient, query: str, token: str | None, **variables: object) -> tuple:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await api.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return response, response.json()


async def test_the_hostile_document_is_refused_naming_its_cost_before_any_database_read(
    fleet: Fleet, api: GraphQLClient, settings: Settings, sql_statements: StatementCounter
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    await fleet.machine(owner, "bot-1")
    _, warm = await post(api, "{ me { id } }", owner.token)  # the credential is now cached
    available = warm["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    before = sql_statements.count

    response, body = await post(api, HOSTILE, owner.token)

    assert sql_statements.count == before  # no database work at all
    assert 2_000 < len(HOSTILE) < settings.max_document_bytes  # it passes the other limits
    assert response.status_code == 200
    assert body["data"] is None
    (error,) = body["errors"]
    cost = error["extensions"]["cost"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["maximumCost"] == settings.max_query_cost
    assert cost > 1_000_000
    assert str(cost) in error["message"] and str(settings.max_query_cost) in error["message"]
    assert body["extensions"]["cost"]["requestedQueryCost"] == cost
    # Refused before the bucket: nothing was spent.
    _, after = await post(api, "{ me { id } }", owner.token)
    assert after["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == available - 1


async def test_page_size_variables_count_and_every_answer_reports_its_cost(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    _, ten = await post(api, PAGE, owner.token, first=10)
    _, two = await post(api, PAGE, owner.token, first=2)

    assert "errors" not in ten
    assert ten["extensions"]["cost"] == {
        "requestedQueryCost": 21,
        "throttleStatus": {
            "maximumAvailable": BUCKET,
            "currentlyAvailable": BUCKET - 21,
            "restoreRate": RESTORE,
        },
    }
    assert two["extensions"]["cost"]["requestedQueryCost"] == 5  # 1 + 2 * 2, from the cache
    assert two["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == BUCKET - 26


async def test_the_bucket_throttles_past_its_size_and_restores_over_time(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    other = await fleet.person("MACHINE_OWNER")
    machine = await fleet.machine(other, "bot-1")

    answers = [await post(api, PAGE, owner.token, first=10) for _ in range(5)]  # 4 * 21 fit
    throttled, body = answers[-1]

    assert all("errors" not in b for _, b in answers[:4])
    assert throttled.status_code == 429
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "THROTTLED"
    assert error["extensions"]["retryAfterSeconds"] == pytest.approx((21 - 16) / RESTORE)
    assert throttled.headers["retry-after"] == "1"
    assert body["data"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 16
    # Another user and the machine key have buckets of their own.
    _, theirs = await post(api, PAGE, other.token, first=10)
    assert "errors" not in theirs
    heartbeat = await fleet.heartbeat(machine)
    assert heartbeat["__typename"] == "HeartbeatPayload"

    clock.advance(timedelta(seconds=0.5))  # 16 + 5 = 21: just enough
    again, restored = await post(api, PAGE, owner.token, first=10)

    assert again.status_code == 200 and "errors" not in restored
    assert restored["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
    clock.advance(timedelta(hours=1))  # never past the bucket's size
    _, full = await post(api, "{ me { id } }", owner.token)
    assert full["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == BUCKET - 1


async def test_all_tokens_of_a_user_share_one_bucket(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    issued = await api.data(
        'mutation { issueApiToken(name: "second") { ... on IssuedApiToken { secret } } }',
        token=owner.token,
    )
    second = issued["issueApiToken"]["secret"]

    _, first = await post(api, PAGE, owner.token, first=10)
    _, then = await post(api, PAGE, second, first=10)

    assert then["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == (
        first["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] - 21
    )


async def test_a_mutation_costs_more_than_its_selection(fleet: Fleet, api: GraphQLClient) -> None:
    owner = await fleet.person("MACHINE_OWNER")

    _, body = await post(
        api,
        'mutation { issueApiToken(name: "x") { __typename ... on IssuedApiToken { secret } } }',
        owner.token,
    )

    assert body["extensions"]["cost"]["requestedQueryCost"] == 11  # 10 for the write, 1 payload


async def test_an_unauthenticated_request_is_refused_by_auth_and_spends_nothing(
    fleet: Fleet, api: GraphQLClient
) -> None:
    _, anonymous = await post(api, PAGE, None, first=10)
    _, forged = await post(api, PAGE, "dfu_not-a-token", first=10)

    for body in (anonymous, forged):
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert body["extensions"]["cost"] == {"requestedQueryCost": 21}  # no bucket


async def refused_at_door(api: GraphQLClient) -> float:
    text = (await api.http.get("/metrics")).text
    (line,) = [
        x for x in text.splitlines() if x.startswith("deskfleet_requests_refused_at_door_total ")
    ]
    return float(line.split()[-1])


async def test_a_refusal_at_the_door_is_the_refusal_the_operation_gives(
    fleet: Fleet, api: GraphQLClient
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    for _ in range(4):  # 100 - 4 * 21: 16 left, and the clock stands still
        await post(api, PAGE, owner.token, first=10)
    assert await refused_at_door(api) == 0

    # A body never sent before: the door does not know its cost (2 * 9 + 1 = 19 > 16).
    operation, by_operation = await post(api, PAGE, owner.token, first=9)
    door, by_door = await post(api, PAGE, owner.token, first=9)

    assert await refused_at_door(api) == 1  # the second, and only it
    assert by_operation["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert by_door == by_operation
    assert door.status_code == operation.status_code == 429
    assert door.headers["retry-after"] == operation.headers["retry-after"] == "1"
    assert door.headers["content-type"] == operation.headers["content-type"]


async def test_the_door_refuses_only_what_the_operation_would_refuse(
    fleet: Fleet, api: GraphQLClient, clock: ManualClock
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    for _ in range(5):  # the fifth is refused at the door: 16 left
        await post(api, PAGE, owner.token, first=10)
    assert await refused_at_door(api) == 1

    _, cheaper = await post(api, PAGE, owner.token, first=2)  # 5 fits in 16
    clock.advance(timedelta(seconds=1))  # 11 + 10 = 21: the same body fits again
    restored, _ = await post(api, PAGE, owner.token, first=10)
    for _ in range(2):
        await post(api, PAGE, owner.token, first=10)  # refused at the door: 0 left
    await fleet.api.data(DEACTIVATE, {"id": owner.id}, token=fleet.admin_token)
    _, deactivated = await post(api, PAGE, owner.token, first=10)

    assert "errors" not in cheaper
    assert restored.status_code == 200
    assert await refused_at_door(api) == 3
    # Its credential is no longer vouched for: the full path answers, and says why.
    assert deactivated["errors"][0]["extensions"]["code"] == "USER_DEACTIVATED"
