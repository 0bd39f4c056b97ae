"""Browser pages on other origins: CORS for the origins ``cors_allowed_origins`` lists, none by
default.

Starlette's ``CORSMiddleware`` answers the preflight and marks each answer for exactly those
origins; a page from any other origin gets no grant, so its browser keeps the answer from it.
Credentials are bearer tokens the page sends in ``Authorization`` (never cookies), so no
``Access-Control-Allow-Credentials``. It wraps everything else, so refusals (413, 429) carry the
grant too and the page can read why. With no origin listed it is not installed at all.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from domain.kernel.settings import Settings

# What a GraphQL client sends: the token, JSON, and a request id of its own to find in the logs.
ALLOWED_HEADERS = ("authorization", "content-type", "x-request-id")
# What it may read besides the simple headers: the request id, and when to retry a 429.
EXPOSED_HEADERS = ("x-request-id", "retry-after")
PREFLIGHT_MAX_AGE_SECONDS = 600  # browsers cap it anyway (Chromium at 2 hours)


def cross_origin(settings: Settings) -> list[Middleware]:
    if not settings.cors_allowed_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            allow_credentials=False,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
    ]
