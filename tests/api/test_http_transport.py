"""GraphQL over HTTP (api/transport/http_transport.py): a POST of one JSON operation is answered by
DeskFleet's own hooks; every answer and error is the one Strawberry's view gives, and any other
request shape still goes to Strawberry."""

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import Response

from api.transport.http_transport import JSONPostTransport, SubResponse
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

ME = "query Me($with: Boolean!) { me { id user @include(if: $with) { email } } }"


def bearer(fleet: Fleet, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {fleet.admin_token}", **more}


async def admin_id(fleet: Fleet, api: GraphQLClient) -> str:
    """Through GraphQLClient.execute (httpx's own JSON body)."""
    return str((await api.data("{ me { id } }", token=fleet.admin_token))["me"]["id"])


async def test_a_json_post_is_answered_with_variables_and_operation_name(
    fleet: Fleet, api: GraphQLClient
) -> None:
    response = await api.http.post(
        "/graphql",
        json={"query": ME, "variables": {"with": True}, "operationName": "Me"},
        headers=bearer(fleet),
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["x-request-id"]  # the request-id middleware still tags it
    me = response.json()["data"]["me"]
    assert me["id"] == await admin_id(fleet, api)
    assert me["user"]["email"]


async def test_a_charset_on_the_content_type_is_still_json(
    fleet: Fleet, api: GraphQLClient
) -> None:
    response = await api.http.post(
        "/graphql",
        content=b'{"query": "{ me { id } }"}',
        headers=bearer(fleet, **{"Content-Type": "Application/JSON; charset=utf-8"}),
    )

    assert response.status_code == 200
    assert response.json()["data"] == {"me": {"id": await admin_id(fleet, api)}}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"query": ', 400, "Unable to parse request body as JSON"),
        (b'"{ me { id } }"', 400, "must be a JSON object"),
        (b"42", 400, "must be a JSON object"),
        (b'{"query": 42}', 400, "`query` must be a string or null"),
        (b'{"query": "{ me { id } }", "variables": [1]}', 400, "`variables` must be an object"),
        (b'{"query": "{ me { id } }", "extensions": "x"}', 400, "`extensions` must be an object"),
        (b'{"variables": {}}', 400, "No GraphQL query found in the request"),
        (b'[{"query": "{ me { id } }"}]', 400, "Batching is not enabled"),
    ],
)
async def test_a_malformed_operation_is_refused_with_what_is_wrong(
    fleet: Fleet, api: GraphQLClient, body: bytes, status: int, says: str
) -> None:
    response = await api.http.post(
        "/graphql", content=body, headers=bearer(fleet, **{"Content-Type": "application/json"})
    )

    assert response.status_code == status
    assert says in response.text


async def test_a_mutation_in_a_get_is_still_refused_and_a_query_answered(
    fleet: Fleet, api: GraphQLClient
) -> None:
    """GET is Strawberry's own path: queries yes, mutations no."""
    query = await api.http.get("/graphql", params={"query": "{ me { id } }"}, headers=bearer(fleet))
    mutation = await api.http.get(
        "/graphql",
        params={"query": 'mutation { issueApiToken(name: "x") { __typename } }'},
        headers=bearer(fleet),
    )

    assert query.json()["data"] == {"me": {"id": await admin_id(fleet, api)}}
    assert mutation.status_code == 400
    assert "mutations are not allowed when using GET" in mutation.text


async def test_an_accept_of_multipart_subscriptions_still_gets_json(
    fleet: Fleet, api: GraphQLClient
) -> None:
    """DeskFleet streams subscriptions over websockets only (R35): with no HTTP stream transport,
    Strawberry answers such a request as plain JSON, and so does the JSON POST path."""
    response = await api.http.post(
        "/graphql",
        json={"query": "{ me { id } }"},
        headers=bearer(fleet, Accept='multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'),
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"me": {"id": await admin_id(fleet, api)}}


async def test_a_form_body_is_not_json(fleet: Fleet, api: GraphQLClient) -> None:
    response = await api.http.post(
        "/graphql", data={"query": "{ me { id } }"}, headers=bearer(fleet)
    )

    assert response.status_code == 400
    assert "Unsupported content type" in response.text


async def test_what_a_resolver_sets_on_the_sub_response_reaches_the_answer() -> None:
    sub = SubResponse()
    sub.status_code = 202
    sub.headers["x-extra"] = "yes"
    plain = SubResponse()

    answered: Any = JSONPostTransport().create_response({"data": {"a": "é"}}, sub)
    default = JSONPostTransport().create_response({"data": None}, plain)

    assert isinstance(answered, Response)
    assert answered.status_code == 202
    assert answered.headers["x-extra"] == "yes"
    assert answered.body == '{"data":{"a":"é"}}'.encode()
    assert answered.headers["content-length"] == str(len(answered.body))
    assert default.status_code == 200
    assert "x-extra" not in default.headers


async def test_a_client_that_goes_away_mid_body_ends_its_request_quietly(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    """Half a body, then the client disconnects: no exception escapes the app, nothing is
    logged at ERROR (uvicorn would log an escaped one as "Exception in ASGI application")."""
    events = iter(
        [
            {"type": "http.request", "body": b'{"query": "{ me', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(events, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"deskfleet.test")],
        "client": ("127.0.0.1", 4242),
        "server": ("deskfleet.test", 80),
    }
    await app(scope, receive, send)

    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
