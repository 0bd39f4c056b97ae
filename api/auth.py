"""Bearer credentials from HTTP headers or a websocket's ``connection_init`` payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.context import DomainContext
from domain.identity.identity import authenticate
from domain.kernel.errors import AuthenticationFailed, ErrorCode
from domain.kernel.principals import Principal


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return ""
    return credential.strip()


def bearer_from_params(params: Mapping[str, Any] | None) -> str | None:
    if not params:
        return None
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str):
            return bearer_from_header(value)
    token = params.get("token")
    return token if isinstance(token, str) else None


async def principal_for(
    ctx: DomainContext, credential: str | None, *, fresh: bool = False
) -> tuple[Principal | None, AuthenticationFailed | None]:
    if credential is None:
        return None, None
    if credential == "":
        return None, AuthenticationFailed(
            ErrorCode.UNAUTHENTICATED, "the Authorization header must be 'Bearer <token>'"
        )
    try:
        return await authenticate(ctx, credential, fresh=fresh), None
    except AuthenticationFailed as exc:
        return None, exc
