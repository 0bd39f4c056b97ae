"""A page on another origin in a real Chromium (CORS, ``DESKFLEET_CORS_ALLOWED_ORIGINS``): the
browser example examples/browser/watch_fleet.html, served by a plain static server on its own
127.0.0.1 port, signs in over HTTP and watches the fleet over the websocket of a real
``deskfleet serve`` on another port. From a listed origin it works; from any other the browser
keeps DeskFleet's answers from the page."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.dashboard_given import Page, seed
from tests.e2e.server import ROOT

pytestmark = pytest.mark.e2e

BROWSER_EXAMPLE = ROOT / "examples" / "browser"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def page_servers() -> Iterator[Callable[[], str]]:
    """Static servers of examples/browser on 127.0.0.1, each its own origin."""
    started: list[ThreadingHTTPServer] = []

    def start() -> str:
        handler = functools.partial(_Quiet, directory=str(BROWSER_EXAMPLE))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def watch(page: Page, origin: str, server: LiveServer) -> Any:
    p = page.page
    p.goto(f"{origin}/watch_fleet.html?api={server.url}")
    p.get_by_label("API token").fill(server.admin_token)
    p.get_by_role("button", name="Watch").click()
    return p


def test_a_page_on_a_listed_origin_signs_in_and_watches_the_fleet(
    deskfleet_server: Callable[..., LiveServer],
    page_servers: Callable[[], str],
    page: Page,
) -> None:
    origin = page_servers()
    server = deskfleet_server(env={"DESKFLEET_CORS_ALLOWED_ORIGINS": json.dumps([origin])})
    seed(server)

    p = watch(page, origin, server)

    p.get_by_text("Snapshot: 5 machine(s)").wait_for()
    assert p.locator('tr[data-machine="finance-02"] td').first.inner_text() == "finance-02"
    assert page.errors == []


def test_a_page_on_any_other_origin_is_kept_from_the_answers(
    deskfleet_server: Callable[..., LiveServer],
    page_servers: Callable[[], str],
    page: Page,
) -> None:
    listed, other = page_servers(), page_servers()
    server = deskfleet_server(env={"DESKFLEET_CORS_ALLOWED_ORIGINS": json.dumps([listed])})

    p = page.page
    p.goto(f"{other}/watch_fleet.html?api={server.url}")

    # What the example does first, from this page: the browser keeps the answer from it.
    asked = p.evaluate(
        """([url, token]) => fetch(url + "/graphql", {
            method: "POST",
            headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
            body: JSON.stringify({ query: "{ me { id } }" }),
        }).then(() => "answered", (error) => error.message)""",
        [server.url, server.admin_token],
    )
    # The websocket is refused too: it closes without ever opening.
    opened = p.evaluate(
        """(url) => new Promise((resolve) => {
            const socket = new WebSocket(url, "graphql-transport-ws");
            socket.onopen = () => resolve("opened");
            socket.onclose = () => resolve("closed");
        })""",
        server.ws_url,
    )

    assert asked == "Failed to fetch"
    assert opened == "closed"
    # Even the example's own module from DeskFleet (graphql-ws) is kept from the page.
    assert any("CORS policy" in error for error in page.errors)
