"""Browser pages on other origins (CORS, ``DESKFLEET_CORS_ALLOWED_ORIGINS``): exactly the listed
origins are granted, on the preflight and on every answer; none by default. The browser's side is
tests/e2e/test_cross_origin.py."""

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from domain.kernel.settings import Settings
from tests.graphql import Fleet

OPS = "https://ops.example"
ME = {"query": "{ me { id } }"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"cors_allowed_origins": [OPS, "http://127.0.0.1:5173"]})


def preflight(origin: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


async def test_a_listed_origin_is_granted_the_preflight_and_the_answer(fleet: Fleet) -> None:
    http = fleet.api.http
    allowed = await http.options("/graphql", headers=preflight(OPS))
    answer = await http.post(
        "/graphql",
        json=ME,
        headers={"Origin": OPS, "Authorization": f"Bearer {fleet.admin_token}"},
    )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == OPS
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in allowed.headers  # bearer tokens, no cookies
    assert answer.json()["data"]["me"]["id"]
    assert answer.headers["access-control-allow-origin"] == OPS
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "retry-after" in exposed
    assert "origin" in answer.headers["vary"].lower()


async def test_any_other_origin_gets_no_grant(fleet: Fleet) -> None:
    http = fleet.api.http
    for origin in ("https://evil.example", "https://ops.example:8443", "http://ops.example"):
        refused = await http.options("/graphql", headers=preflight(origin))
        answer = await http.post(
            "/graphql",
            json=ME,
            headers={"Origin": origin, "Authorization": f"Bearer {fleet.admin_token}"},
        )
        assert refused.status_code == 400, origin
        assert "access-control-allow-origin" not in refused.headers
        # The server still answers (CORS is the browser's to enforce); the grant is missing, so a
        # browser keeps the answer from the page.
        assert "access-control-allow-origin" not in answer.headers


async def test_a_header_outside_the_list_is_refused_at_preflight(fleet: Fleet) -> None:
    refused = await fleet.api.http.options("/graphql", headers=preflight(OPS, "x-secret-sauce"))
    assert refused.status_code == 400
    assert refused.text == "Disallowed CORS headers"  # a failed preflight: the browser stops


async def test_a_refusal_carries_the_grant_so_the_page_can_read_it(
    settings: Settings, fleet: Fleet
) -> None:
    huge = {"query": "{ me { id } }", "variables": {"pad": "x" * (settings.max_request_bytes + 1)}}
    answer = await fleet.api.http.post("/graphql", json=huge, headers={"Origin": OPS})
    assert answer.status_code == 413
    assert answer.headers["access-control-allow-origin"] == OPS


async def test_no_origin_is_granted_by_default(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cors_allowed_origins": []}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://deskfleet.test"
        ) as http,
    ):
        preflighted = await http.options("/graphql", headers=preflight(OPS))
        answer = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": OPS}
        )
    assert preflighted.status_code == 405
    assert "access-control-allow-origin" not in preflighted.headers
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize(
    "given",
    [
        "*",
        "https://ops.example/",
        "https://ops.example/app",
        "ops.example",
        "ftp://ops.example",
        "https://user@ops.example",
        "https://ops.example:99999",
        "https://*.example",
    ],
)
def test_a_setting_that_is_not_an_exact_origin_is_refused_naming_it(given: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(cors_allowed_origins=[OPS, given])
    assert repr(given) in str(refused.value)


def test_origins_are_compared_as_browsers_send_them() -> None:
    assert Settings(cors_allowed_origins=["HTTPS://Ops.Example:8443"]).cors_allowed_origins == [
        "https://ops.example:8443"
    ]
