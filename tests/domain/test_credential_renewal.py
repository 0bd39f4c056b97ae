"""A cached credential in use is renewed in the background: its caller never waits for the
database, and a token revoked elsewhere (another instance) stops working once the renewal ends."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import update
from sqlmodel import col

from domain.context import DomainContext
from domain.identity import identity
from domain.identity.secrets import digest
from domain.kernel.credential_cache import CredentialCache
from domain.kernel.errors import AuthenticationFailed
from domain.kernel.principals import UserPrincipal
from domain.store.models import ApiToken
from tests.graphql import Fleet


async def _revoke_behind_the_cache(domain: DomainContext, token_id: str) -> None:
    """As another instance would: in the database only, this process's cache untouched."""
    async with domain.db.write() as session:
        await session.exec(
            update(ApiToken)
            .where(col(ApiToken.id) == token_id)
            .values(revoked_at=domain.clock.now())
        )


async def _forgotten(cache: CredentialCache, hashed: str) -> None:
    # A renewal nobody awaits has no event of its own to wait for: polled, within a bound.
    async with asyncio.timeout(10):
        while cache.get(hashed) is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_renewal_answers_from_the_cache_and_then_forgets_a_revoked_token(
    fleet: Fleet, domain: DomainContext
) -> None:
    person = await fleet.person("MACHINE_USER")
    # Due for renewal from the first use on, and far from expiring: no timing involved.
    ctx = dataclasses.replace(domain, credentials=CredentialCache(ttl_seconds=600, renew_after=0))
    hashed = digest(person.token)
    first = await identity.authenticate(ctx, person.token)
    assert isinstance(first, UserPrincipal)
    await _revoke_behind_the_cache(domain, first.token_id)

    again = await identity.authenticate(ctx, person.token)

    assert again == first  # answered at once: the cache still vouched, nothing awaited the lookup
    assert ctx.credentials.get(hashed) == first
    await _forgotten(ctx.credentials, hashed)  # the renewal found it revoked
    with pytest.raises(AuthenticationFailed) as refused:
        await identity.authenticate(ctx, person.token)
    assert refused.value.code.value == "UNAUTHENTICATED"


async def test_an_entry_not_yet_due_is_not_looked_up_again(
    fleet: Fleet, domain: DomainContext
) -> None:
    person = await fleet.person("MACHINE_USER")
    ctx = dataclasses.replace(domain, credentials=CredentialCache(ttl_seconds=600))
    first = await identity.authenticate(ctx, person.token)
    assert isinstance(first, UserPrincipal)
    await _revoke_behind_the_cache(domain, first.token_id)

    for _ in range(3):
        assert await identity.authenticate(ctx, person.token) == first
        await asyncio.sleep(0)
    await identity.finish_look_ups(ctx)  # none was started: nothing to end

    assert ctx.credentials.get(digest(person.token)) == first


async def test_shutdown_ends_a_renewal_still_under_way(fleet: Fleet, domain: DomainContext) -> None:
    person = await fleet.person("MACHINE_USER")
    ctx = dataclasses.replace(domain, credentials=CredentialCache(ttl_seconds=600, renew_after=0))
    first = await identity.authenticate(ctx, person.token)
    await _revoke_behind_the_cache(domain, first.token_id)  # type: ignore[union-attr]
    await identity.authenticate(ctx, person.token)  # starts a renewal

    await identity.finish_look_ups(ctx)

    # Cancelled, not failed: the entry ends by itself within its ttl, as before.
    assert ctx.credentials.get(digest(person.token)) == first
