"""The fleet dashboard: static files served at ``/``.

``index.html``, the ES modules (``app.js`` and what it imports; no build step, no Node.js at run
time) and ``style.css`` live beside this file and ship in the wheel with the ``api`` package. The
page talks to DeskFleet only through the public GraphQL API: ``fetch`` to ``/graphql`` for queries
and mutations, and ``graphql-transport-ws`` on the same URL for subscriptions, through the vendored
``graphql-ws`` client (``vendor/graphql-ws``). The server only serves the files.
"""

from __future__ import annotations

import os

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose


class DashboardFiles(StaticFiles):
    """Static files, never this package's Python; a websocket to any path but /graphql is
    closed, as it was without the mount."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path.endswith((".py", ".pyc")) or "__pycache__" in path:
            return "", None
        return super().lookup_path(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await WebSocketClose()(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def mount(path: str = "/") -> Mount:
    """The dashboard's files; mount it after every other route (it answers whatever is left)."""
    files = DashboardFiles(packages=[("api", "dashboard")], html=True)
    return Mount(path, app=files, name="dashboard")
