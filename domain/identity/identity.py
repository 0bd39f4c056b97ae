"""Users and API tokens; turning a bearer credential into a principal."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import journal
from domain.bus.events import GroupChanged, MachineChanged, emit
from domain.context import DomainContext
from domain.identity import sign_in
from domain.identity.authorization import admin_environment_ids, require_user
from domain.identity.secrets import (
    MACHINE_KEY_PREFIX,
    USER_TOKEN_PREFIX,
    digest,
    new_secret,
    same_digest,
)
from domain.kernel import validation
from domain.kernel.credential_cache import CredentialCache
from domain.kernel.errors import (
    AuthenticationFailed,
    Conflict,
    ErrorCode,
    NotFound,
    PermissionDenied,
)
from domain.kernel.openid import OpenIDProvider
from domain.kernel.principals import MachinePrincipal, Principal, UserPrincipal
from domain.store import storage
from domain.store.models import ApiToken, Machine, MachineGroup, RoleAssignment, Share, User
from domain.store.prepared import Prepared

# Recording every use would turn each read into a write; a minute's precision is plenty.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


_LOOKUPS: weakref.WeakKeyDictionary[CredentialCache, dict[str, asyncio.Future[Principal]]] = (
    weakref.WeakKeyDictionary()
)


async def authenticate(ctx: DomainContext, credential: str, *, fresh: bool = False) -> Principal:
    """``fresh``: ask the database even while the cache vouches for the credential (the periodic
    re-check of open websockets): its entry is renewed, or forgotten once it no longer holds."""
    credential = credential.strip()
    if not fresh:
        principal = vouched_for(ctx, credential)
        if principal is not None:
            return principal
    return await asyncio.shield(_look_up_once(ctx, credential, digest(credential)))


def vouched_for(ctx: DomainContext, credential: str) -> Principal | None:
    """The principal the credential cache vouches for now, without asking the database; an entry
    near its end is renewed in the background. None: ask :func:`authenticate`."""
    hashed = digest(credential.strip())
    principal = ctx.credentials.get(hashed)
    if principal is not None and ctx.credentials.renewal_due(hashed):
        _look_up_once(ctx, credential.strip(), hashed)  # renewed in the background
    return principal


def _look_up_once(ctx: DomainContext, credential: str, hashed: str) -> asyncio.Future[Principal]:
    """One look-up per credential at a time: when its cache entry ends, the many subscriptions
    of one token re-check it together and would each query the database."""
    pending = _LOOKUPS.setdefault(ctx.credentials, {})
    lookup = pending.get(hashed)
    if lookup is None:
        lookup = asyncio.ensure_future(_look_up(ctx, credential, hashed))
        pending[hashed] = lookup
        lookup.add_done_callback(lambda done: _looked_up(ctx, hashed, done))
    return lookup


def _looked_up(ctx: DomainContext, hashed: str, lookup: asyncio.Future[Principal]) -> None:
    _LOOKUPS.get(ctx.credentials, {}).pop(hashed, None)
    # Taken here, so a renewal nobody awaits is never reported as an unretrieved exception; a
    # waiting caller still gets it. Any other failure (storage away) leaves the entry to end by
    # itself: the next caller then asks in line and is told.
    if not lookup.cancelled() and isinstance(lookup.exception(), AuthenticationFailed):
        ctx.credentials.forget(hashed)  # revoked (perhaps on another instance): not one more use


async def finish_look_ups(ctx: DomainContext) -> None:
    """At shutdown: the renewals still under way end with the database they use."""
    pending = list(_LOOKUPS.get(ctx.credentials, {}).values())
    for lookup in pending:
        lookup.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _look_up(ctx: DomainContext, credential: str, hashed: str) -> Principal:
    if credential.startswith(MACHINE_KEY_PREFIX):
        machine = await _authenticate_machine(ctx, credential)
        ctx.credentials.put(hashed, machine)
        return machine
    if ctx.openid is not None and _looks_like_jwt(credential):
        return await _signed_in(ctx, ctx.openid, credential, hashed)
    if not credential.startswith(USER_TOKEN_PREFIX):
        raise AuthenticationFailed(
            ErrorCode.UNAUTHENTICATED, "the bearer credential is not a DeskFleet token"
        )
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        row = (
            await session.exec(
                select(ApiToken, User)
                .join(User, col(User.id) == col(ApiToken.user_id))
                .where(ApiToken.secret_hash == hashed)
            )
        ).first()
    if row is None or not same_digest(row[0].secret_hash, hashed) or row[0].revoked_at is not None:
        raise AuthenticationFailed(ErrorCode.UNAUTHENTICATED, "the token is unknown or revoked")
    token, user = row
    if not user.active:
        raise AuthenticationFailed(ErrorCode.USER_DEACTIVATED, "this user is deactivated")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        try:
            async with ctx.db.write() as session:
                await session.exec(
                    update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now)
                )
        except Exception as exc:
            # A note, not the point: storage that cannot take it (full, read-only) still lets a
            # valid token read, and its write is refused on its own terms.
            if storage.fault_of(exc) is None:
                raise
    principal = UserPrincipal(user_id=user.id, token_id=token.id, is_admin=user.is_admin)
    ctx.credentials.put(hashed, principal)
    return principal


def _looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and not credential.startswith(
        (USER_TOKEN_PREFIX, MACHINE_KEY_PREFIX)
    )


async def _signed_in(
    ctx: DomainContext, provider: OpenIDProvider, credential: str, hashed: str
) -> Principal:
    """R44: an access token of the organisation's provider, where a user token would be."""
    verified = await provider.verify(credential)
    principal = await sign_in.signed_in(ctx, verified)
    # Never vouched for past its expiry: the cache keeps an entry its whole ttl.
    usable_for = verified.expires_at + ctx.settings.oidc_clock_skew_seconds - ctx.clock.timestamp()
    if usable_for > ctx.credentials.ttl:
        ctx.credentials.put(hashed, principal)
    return principal


# Every heartbeat of a large fleet asks this (a machine beats every 30 s, its credential stays
# cached 5 s): as a prepared statement it is one trip to the database, where the ORM's read of the
# whole row took several and about a fifth of a heartbeat (`heartbeats` in docs/performance.md).
_MACHINE_BY_KEY = Prepared(
    select(
        col(Machine.id),
        col(Machine.environment_id),
        col(Machine.key_hash),
        col(Machine.key_expires_at),
    ).where(col(Machine.key_hash) == bindparam("key_hash"))
)


async def _authenticate_machine(ctx: DomainContext, key: str) -> MachinePrincipal:
    hashed = digest(key)
    rows = await ctx.db.fetch_direct(_MACHINE_BY_KEY, {"key_hash": hashed})
    machine = rows[0] if rows else None
    if machine is None or not same_digest(machine["key_hash"], hashed):
        raise AuthenticationFailed(
            ErrorCode.UNAUTHENTICATED, "the machine key is unknown or was rotated"
        )
    return MachinePrincipal(
        machine_id=machine["id"],
        environment_id=machine["environment_id"],
        key_expired=machine["key_expires_at"] <= ctx.clock.now(),
    )


def _require_installation_admin(user: UserPrincipal) -> None:
    if not user.is_admin:
        raise PermissionDenied(ErrorCode.NOT_ADMIN, "only DeskFleet administrators can do this")


async def create_user(
    ctx: DomainContext,
    principal: Principal,
    *,
    display_name: str,
    email: str,
    attended_licence: bool = False,
    is_admin: bool = False,
) -> User:
    caller = require_user(principal)
    _require_installation_admin(caller)
    display_name = validation.name(display_name, field="displayName", max_length=200)
    email = validation.email(email)
    async with ctx.db.write() as session:
        taken = (await session.exec(select(User.id).where(User.email == email))).first()
        if taken is not None:
            raise Conflict(ErrorCode.EMAIL_TAKEN, f"a user with email {email!r} already exists")
        user = User(
            display_name=display_name,
            email=email,
            attended_licence=attended_licence,
            is_admin=is_admin,
            created_at=ctx.clock.now(),
        )
        session.add(user)
    return user


async def update_user(
    ctx: DomainContext,
    principal: Principal,
    user_id: str,
    *,
    display_name: str | None = None,
    attended_licence: bool | None = None,
) -> User:
    caller = require_user(principal)
    _require_installation_admin(caller)
    user_id = validation.ident(user_id, field="userId")
    if display_name is not None:
        display_name = validation.name(display_name, field="displayName", max_length=200)
    async with ctx.db.write() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("user", user_id)
        if display_name is not None:
            user.display_name = display_name
        if attended_licence is not None:
            user.attended_licence = attended_licence
        session.add(user)
    return user


async def issue_token(
    ctx: DomainContext, principal: Principal, *, name: str, user_id: str | None = None
) -> IssuedToken:
    """A user mints tokens for themself; administrators may mint one for anyone."""
    caller = require_user(principal)
    name = validation.name(name, field="name", max_length=200)
    target_id = caller.user_id if user_id is None else validation.ident(user_id, field="userId")
    if target_id != caller.user_id:
        _require_installation_admin(caller)
    async with ctx.db.write() as session:
        user = await session.get(User, target_id)
        if user is None:
            raise NotFound("user", target_id)
        return add_token(ctx, session, user, name)


def add_token(ctx: DomainContext, session: AsyncSession, user: User, name: str) -> IssuedToken:
    secret = new_secret(USER_TOKEN_PREFIX)
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=secret[:8],
        secret_hash=digest(secret),
        created_at=ctx.clock.now(),
    )
    session.add(token)
    return IssuedToken(token=token, secret=secret)


async def revoke_token(ctx: DomainContext, principal: Principal, token_id: str) -> ApiToken:
    caller = require_user(principal)
    token_id = validation.ident(token_id, field="tokenId")
    async with ctx.db.write() as session:
        token = await session.get(ApiToken, token_id)
        if token is None or (token.user_id != caller.user_id and not caller.is_admin):
            raise NotFound("token", token_id)
        if token.revoked_at is not None:
            raise Conflict(ErrorCode.ALREADY_IN_STATE, "the token is already revoked")
        token.revoked_at = ctx.clock.now()
        session.add(token)
    ctx.credentials.forget_token(token.id)
    return token


async def list_tokens(ctx: DomainContext, principal: Principal) -> list[ApiToken]:
    caller = require_user(principal)
    async with ctx.db.read() as session:
        rows = await session.exec(
            select(ApiToken)
            .where(ApiToken.user_id == caller.user_id)
            .order_by(col(ApiToken.created_at), col(ApiToken.id))
        )
        return list(rows.all())


async def get_user(ctx: DomainContext, principal: Principal, user_id: str) -> User:
    require_user(principal)
    user_id = validation.ident(user_id, field="userId")
    async with ctx.db.read() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


async def users_by_ids(ctx: DomainContext, ids: list[str]) -> list[User | None]:
    async with ctx.db.read() as session:
        rows = await session.exec(select(User).where(col(User.id).in_(ids)))
        found = {u.id: u for u in rows.all()}
    return [found.get(i) for i in ids]


async def current_user(ctx: DomainContext, principal: Principal) -> User:
    caller = require_user(principal)
    async with ctx.db.read() as session:
        user = await session.get(User, caller.user_id)
    if user is None:
        raise NotFound("user", caller.user_id)
    return user


# --- deactivation (R13, R15) -----------------------------------------------------------------


async def _administered_user(session: AsyncSession, caller: UserPrincipal, user_id: str) -> User:
    """The user the caller may deactivate or reactivate (R15, R38).

    - Nobody switches themself off.
    - DeskFleet administrators manage anyone.
    - An environment admin manages the users of their environments (who hold a security role
      there). Any other id is answered exactly as one that does not exist: whether a user
      exists outside the caller's environments is none of their business (R38).
    - Deactivation acts on every environment, so a user who also holds a role elsewhere needs
      DeskFleet administrators or the admins of every such environment. An environment admin can
      always cut a user off from their own environment with ``removeUserFromEnvironment``.
    - Whoever administers no environment is refused alike for every id.
    """
    if user_id == caller.user_id:
        raise PermissionDenied(
            ErrorCode.PERMISSION_DENIED, "you cannot deactivate or reactivate yourself"
        )
    user = await session.get(User, user_id)
    if caller.is_admin:
        if user is None:
            raise NotFound("user", user_id)
        return user
    administered = await admin_environment_ids(session, caller) or set()
    if not administered:
        raise PermissionDenied(
            ErrorCode.NOT_ADMIN,
            "only DeskFleet administrators and environment admins deactivate or reactivate users",
        )
    held: set[str] = set()
    if user is not None:
        held = set(
            (
                await session.exec(
                    select(RoleAssignment.environment_id).where(RoleAssignment.user_id == user.id)
                )
            ).all()
        )
    if user is None or not held & administered:
        raise NotFound("user", user_id)
    if user.is_admin:
        raise PermissionDenied(
            ErrorCode.NOT_ADMIN, "only DeskFleet administrators manage other administrators"
        )
    if not held <= administered:
        raise PermissionDenied(
            ErrorCode.NOT_ADMIN,
            "the user also holds security roles in environments you do not administer: only "
            "their admins together, or DeskFleet administrators, can deactivate or reactivate "
            "them; removeUserFromEnvironment cuts them off from yours",
        )
    return user


async def _set_active(
    ctx: DomainContext, principal: Principal, user_id: str, *, active: bool
) -> User:
    caller = require_user(principal)
    user_id = validation.ident(user_id, field="userId")
    async with ctx.db.write() as session:
        user = await _administered_user(session, caller, user_id)
        if user.active == active:
            state = "active" if active else "deactivated"
            raise Conflict(ErrorCode.ALREADY_IN_STATE, f"the user is already {state}")
        user.active = active
        user.deactivated_at = None if active else ctx.clock.now()
        session.add(user)
        action = (
            journal.AuditAction.USER_REACTIVATED if active else journal.AuditAction.USER_DEACTIVATED
        )
        await journal.on_user(ctx, session, caller, action, user)
        # R15: every machine and group shared with them now shows (or stops showing) it.
        shares = await session.exec(select(Share).where(Share.user_id == user.id))
        for share in shares.all():
            if share.machine_id is not None:
                machine = await session.get(Machine, share.machine_id)
                if machine is not None:
                    emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
            elif share.group_id is not None:
                group = await session.get(MachineGroup, share.group_id)
                if group is not None:
                    emit(ctx.events, session, GroupChanged(group.id, group.environment_id))
    ctx.credentials.forget_user(user.id)
    return user


async def deactivate_user(ctx: DomainContext, principal: Principal, user_id: str) -> User:
    """R15: a deactivated user can do nothing (their tokens stop working) but stays listed."""
    return await _set_active(ctx, principal, user_id, active=False)


async def reactivate_user(ctx: DomainContext, principal: Principal, user_id: str) -> User:
    return await _set_active(ctx, principal, user_id, active=True)
