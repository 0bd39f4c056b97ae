"""R44 in a real headless Chromium: the dashboard signs people in through a real OpenID Provider
(the npm oidc-provider on 127.0.0.1) with authorization code + PKCE, keeps the tokens in
sessionStorage, renews them or says the session expired, and signs out at the provider too;
group mappings apply and a deactivated user is turned away. Pasting an API token still works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.dashboard_given import Page
from tests.e2e.server import ROOT, Served, first_run_token, free_port
from tests.oidc.provider import AUDIENCE, CLIENT_ID, OpenIDProvider

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R44")]

PROVIDER_NAME = "Example Org"
MAP = """mutation($input: SignInGroupRoleInput!) { mapSignInGroup(input: $input) { __typename } }"""
DEACTIVATE = "mutation($id: ID!) { deactivateUser(id: $id) { __typename } }"


@dataclass
class SignInSite:
    provider: OpenIDProvider
    server: Served
    admin_token: str

    def graphql(self, query: str, variables: dict[str, Any] | None = None, token: str = "") -> Any:
        result = self.server.graphql(query, token or self.admin_token, variables)
        assert not result.get("errors"), result
        return result["data"]


def start_site(tmp_path: Path, **provider_options: Any) -> Iterator[SignInSite]:
    port = free_port()
    provider = OpenIDProvider(
        tmp_path, redirect_uris=[f"http://127.0.0.1:{port}/"], **provider_options
    )
    provider.start()
    server = Served(
        tmp_path,
        port=port,
        env={
            "DESKFLEET_OIDC_ISSUER": provider.issuer,
            "DESKFLEET_OIDC_CLIENT_ID": CLIENT_ID,
            "DESKFLEET_OIDC_AUDIENCE": AUDIENCE,
            "DESKFLEET_OIDC_PROVIDER_NAME": PROVIDER_NAME,
            "DESKFLEET_OIDC_AUTO_PROVISION": "true",
            "DESKFLEET_WS_CREDENTIAL_CHECK_SECONDS": "1",
            # No slack: a websocket still on an ended token closes, so renewal must reconnect it.
            "DESKFLEET_OIDC_CLOCK_SKEW_SECONDS": "0",
        },
    )
    try:
        server.wait_ready()
        yield SignInSite(provider, server, first_run_token(server))
    finally:
        server.stop()
        provider.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SignInSite]:
    yield from start_site(tmp_path)


@pytest.fixture(autouse=True)
def offline(page: Page) -> None:
    """The provider's own pages load web fonts from the internet, which tests never reach: they
    get an empty answer (the page's console stays clean and reports only what matters)."""
    page.page.route(
        re.compile(r"^https?://(?!127\.0\.0\.1[:/])"),
        lambda route: route.fulfill(status=200, body=""),
    )


def sign_in_with_provider(page: Any, site: SignInSite, login: str) -> None:
    page.goto(site.server.url + "/")
    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    page.wait_for_url(re.compile(re.escape(site.provider.issuer)))  # the provider's own page
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()


def stored(page: Any, key: str) -> Any:
    return page.evaluate(f"() => sessionStorage.getItem({key!r})")


def test_a_person_signs_in_through_the_provider_gets_mapped_roles_and_signs_out_there_too(
    page: Page, site: SignInSite
) -> None:
    (environment,) = site.graphql("{ environments { id } }")["environments"]
    mapping = {"environmentId": environment["id"], "group": "rpa-operators", "role": "MACHINE_USER"}
    site.graphql(MAP, {"input": mapping})
    site.provider.account("olga", name="Olga Operator", groups=["rpa-operators"])

    sign_in_with_provider(page.page, site, "olga")

    page.page.get_by_role("heading", name="Machines", level=1).wait_for()
    assert page.page.locator("#who").text_content() == "Olga Operator"
    assert page.page.url == f"{site.server.url}/#/machines"  # the code is gone from the address
    bearer = stored(page.page, "deskfleet.token")
    assert bearer.count(".") == 2  # the provider's access token, a JWT
    me = site.graphql("{ me { user { email } roles { role } } }", token=bearer)["me"]
    assert me == {"user": {"email": "olga@example.test"}, "roles": [{"role": "MACHINE_USER"}]}
    people = site.graphql("{ signedInPeople { subject matchedBy } }")["signedInPeople"]
    assert people == [{"subject": "olga", "matchedBy": "PROVISIONED"}]
    page.page.locator("#live-state", has_text="Live").wait_for()

    page.page.get_by_role("button", name="Sign out").click()
    page.page.get_by_role("button", name="Yes, sign me out").click()  # RP-initiated logout

    page.page.get_by_role("heading", name="Sign in to DeskFleet").wait_for()
    assert stored(page.page, "deskfleet.token") is None
    assert stored(page.page, "deskfleet.oidc") is None
    # The provider's session ended too: signing in again asks for the login.
    page.page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    page.page.locator("input[name=login]").wait_for()
    assert page.errors == []


def test_a_deactivated_user_is_turned_away_and_an_api_token_still_signs_in(
    page: Page, site: SignInSite
) -> None:
    site.provider.account("dora")
    user = site.graphql("{ me { user { id } } }", token=site.provider.access_token("dora"))["me"][
        "user"
    ]
    site.graphql(DEACTIVATE, {"id": user["id"]})

    sign_in_with_provider(page.page, site, "dora")

    page.page.get_by_role("heading", name="Sign in to DeskFleet").wait_for()
    page.page.locator("#sign-in-error", has_text="Your DeskFleet user is deactivated.").wait_for()
    assert stored(page.page, "deskfleet.token") is None

    page.page.get_by_label("API token").fill(site.admin_token)
    page.page.get_by_role("button", name="Sign in", exact=True).click()
    page.page.get_by_role("heading", name="Machines", level=1).wait_for()
    assert page.errors == []


def test_the_session_is_renewed_before_the_access_token_ends(page: Page, tmp_path: Path) -> None:
    for site in start_site(tmp_path, access_token_ttl=8):
        site.provider.account("rita")
        sign_in_with_provider(page.page, site, "rita")
        page.page.get_by_role("heading", name="Machines", level=1).wait_for()
        first = stored(page.page, "deskfleet.token")

        page.page.wait_for_function(
            "first => sessionStorage.getItem('deskfleet.token') !== first", arg=first
        )
        page.page.wait_for_timeout(9_000)  # past the first token's end: still signed in

        assert page.page.get_by_role("heading", name="Machines", level=1).is_visible()
        page.page.locator("#live-state", has_text="Live").wait_for()
        assert page.errors == []


def test_without_renewal_the_session_ends_with_a_clear_notice(page: Page, tmp_path: Path) -> None:
    for site in start_site(tmp_path, access_token_ttl=5, refresh_tokens=False):
        site.provider.account("sam")
        sign_in_with_provider(page.page, site, "sam")
        page.page.get_by_role("heading", name="Machines", level=1).wait_for()

        page.page.get_by_role("heading", name="Sign in to DeskFleet").wait_for(timeout=15_000)
        notice = page.page.locator("#sign-in-error")
        assert notice.text_content() == "Your session has expired. Sign in again."
        assert stored(page.page, "deskfleet.token") is None
        assert page.errors == []


def test_the_terminal_example_signs_in_with_a_device_code(page: Page, site: SignInSite) -> None:
    """examples/oidc_token.py: the device authorization grant, completed in the browser."""
    site.provider.account("tess", name="Tess Terminal")
    example = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "oidc_token.py"), "--print-token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "DESKFLEET_URL": f"{site.server.url}/graphql",
            "DESKFLEET_OIDC_ISSUER": site.provider.issuer,
            "DESKFLEET_OIDC_CLIENT_ID": CLIENT_ID,
        },
    )
    try:
        assert example.stderr is not None
        example.stderr.readline()  # "Sign in at ... with the code ..."
        opened = re.search(r"open (\S+)\)", example.stderr.readline())
        assert opened, "the example names the page to open"

        page.page.goto(opened.group(1))
        page.page.get_by_role("button", name="Continue").click()
        page.page.locator("input[name=login]").fill("tess")
        page.page.locator("input[name=password]").fill("any password")
        page.page.get_by_role("button", name="Sign-in").click()

        out, err = example.communicate(timeout=60)
    finally:
        example.kill()
    assert example.returncode == 0, err
    assert "signed in to DeskFleet as Tess Terminal <tess@example.test>" in err
    token = out.strip()
    assert site.graphql("{ me { user { email } } }", token=token)["me"]["user"]["email"] == (
        "tess@example.test"
    )
