"""R44: the people of the organisation's OpenID Connect provider, and the roles its groups grant.

- A verified access token names its person by issuer and subject. The first time a subject is
  seen it is tied to a user once, for good: to the user with the token's e-mail when
  ``oidc_link_by_email`` allows it and the provider vouches for that address, else to a new user
  when ``oidc_auto_provision`` is on; otherwise the sign-in is refused and says why.
- A deactivated user is refused whatever the provider says (R15).
- At each sign-in (the first time this process sees a given access token) the group mappings of
  every environment are applied: the roles the person's groups map to are granted, and the roles
  an earlier sign-in granted that their groups no longer map to are taken back. Roles granted by
  hand are never touched.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import journal
from domain.context import DomainContext
from domain.identity.authorization import require_environment_admin, require_user
from domain.kernel import validation
from domain.kernel.errors import (
    AuthenticationFailed,
    Conflict,
    ErrorCode,
    NotFound,
    PermissionDenied,
)
from domain.kernel.openid import VerifiedToken
from domain.kernel.permissions import Role
from domain.kernel.principals import Principal, UserPrincipal
from domain.store.models import (
    RoleAssignment,
    SignInGroupRole,
    SignInIdentity,
    SignInMatch,
    User,
)

GROUP_MAX = 255
# The access tokens this process has seen signed in, so their mappings apply once per token.
_SEEN_MAX = 10_000
_SEEN: weakref.WeakKeyDictionary[object, OrderedDict[str, None]] = weakref.WeakKeyDictionary()


async def signed_in(ctx: DomainContext, token: VerifiedToken) -> UserPrincipal:
    """The principal of a verified access token; AuthenticationFailed when nobody may use it."""
    try:
        user, identity = await _person(ctx, token)
    except IntegrityError:
        # Another sign-in of the same new person (or of the same e-mail) won the race: theirs
        # stands, and this one reads it.
        user, identity = await _person(ctx, token)
    if not user.active:
        raise AuthenticationFailed(ErrorCode.USER_DEACTIVATED, "this user is deactivated")
    principal = UserPrincipal(
        user_id=user.id, token_id=f"oidc:{identity.id}:{token.token_id}", is_admin=user.is_admin
    )
    seen = _SEEN.setdefault(ctx.credentials, OrderedDict())
    if token.token_id not in seen:
        await apply_group_roles(ctx, principal, token.groups)
        seen[token.token_id] = None
        while len(seen) > _SEEN_MAX:
            seen.popitem(last=False)
    return principal


async def _person(ctx: DomainContext, token: VerifiedToken) -> tuple[User, SignInIdentity]:
    # Nearly every call finds a person already tied (each access token is verified again when
    # its cache entry ends, and with every websocket's periodic check): a read, not a write.
    async with ctx.db.read() as session:
        known = await _tied(session, token)
    if known is not None:
        return known
    async with ctx.db.write() as session:
        return await _tied(session, token) or await _tie(ctx, session, token)


async def _tied(session: AsyncSession, token: VerifiedToken) -> tuple[User, SignInIdentity] | None:
    row = (
        await session.exec(
            select(User, SignInIdentity)
            .join(SignInIdentity, col(SignInIdentity.user_id) == col(User.id))
            .where(
                SignInIdentity.issuer == token.issuer,
                SignInIdentity.subject == token.subject,
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def _tie(
    ctx: DomainContext, session: AsyncSession, token: VerifiedToken
) -> tuple[User, SignInIdentity]:
    """The first sign-in of a person: tied to a user once, by verified e-mail or provisioning."""
    settings = ctx.settings
    email = _email(token)
    user = None
    if email is not None:
        user = (await session.exec(select(User).where(User.email == email))).first()
    if user is not None:
        if not (settings.oidc_link_by_email and token.email_verified):
            raise AuthenticationFailed(
                ErrorCode.SIGN_IN_NOT_LINKED,
                "this sign-in is not linked to a DeskFleet user; a DeskFleet user has its "
                "e-mail address, but linking by e-mail is off or the provider does not vouch "
                "for the address: ask a DeskFleet administrator",
            )
        matched = SignInMatch.EMAIL
    elif settings.oidc_auto_provision:
        if email is None:
            raise AuthenticationFailed(
                ErrorCode.SIGN_IN_NOT_LINKED,
                f"the access token has no usable {settings.oidc_email_claim!r} claim, "
                "which a new DeskFleet user needs",
            )
        user = User(
            display_name=_display_name(token, email), email=email, created_at=ctx.clock.now()
        )
        session.add(user)
        await session.flush()
        matched = SignInMatch.PROVISIONED
    else:
        raise AuthenticationFailed(
            ErrorCode.SIGN_IN_NOT_LINKED,
            "no DeskFleet user is linked to this sign-in and new users are not created at "
            "sign-in: ask a DeskFleet administrator to add you",
        )
    identity = SignInIdentity(
        issuer=token.issuer,
        subject=token.subject,
        user_id=user.id,
        matched_by=matched,
        created_at=ctx.clock.now(),
    )
    session.add(identity)
    return user, identity


def _email(token: VerifiedToken) -> str | None:
    if token.email is None:
        return None
    try:
        return validation.email(token.email)
    except Exception:
        return None


def _display_name(token: VerifiedToken, email: str) -> str:
    try:
        return validation.name(token.name or "", field="name", max_length=200)
    except Exception:
        return email


async def apply_group_roles(
    ctx: DomainContext, principal: UserPrincipal, groups: frozenset[str]
) -> None:
    """The roles the groups map to, granted; those an earlier sign-in granted that they no
    longer map to, taken back; nothing else touched. Written only when something changes."""
    async with ctx.db.read() as session:
        grant, take_back = await _role_changes(session, principal.user_id, groups)
    if not grant and not take_back:
        return
    async with ctx.db.write() as session:
        grant, take_back = await _role_changes(session, principal.user_id, groups)
        for environment_id, role in sorted(grant):
            assignment = RoleAssignment(
                environment_id=environment_id,
                user_id=principal.user_id,
                role=role,
                created_at=ctx.clock.now(),
                from_sign_in=True,
            )
            session.add(assignment)
            journal.on_role(ctx, session, principal, assignment, granted=True)
        for assignment in take_back:
            await session.delete(assignment)
            journal.on_role(ctx, session, principal, assignment, granted=False)


async def _role_changes(
    session: AsyncSession, user_id: str, groups: frozenset[str]
) -> tuple[set[tuple[str, Role]], list[RoleAssignment]]:
    mappings = (
        await session.exec(select(SignInGroupRole).where(col(SignInGroupRole.group).in_(groups)))
        if groups
        else None
    )
    wanted = {(m.environment_id, m.role) for m in (mappings.all() if mappings else [])}
    held = (
        await session.exec(select(RoleAssignment).where(RoleAssignment.user_id == user_id))
    ).all()
    have = {(a.environment_id, a.role) for a in held}
    take_back = [a for a in held if a.from_sign_in and (a.environment_id, a.role) not in wanted]
    return wanted - have, take_back


# --- group mappings, managed by environment admins -------------------------------------------


def _group(value: str) -> str:
    return validation.name(value, field="group", max_length=GROUP_MAX)


async def map_group(
    ctx: DomainContext, principal: Principal, *, environment_id: str, group: str, role: Role
) -> SignInGroupRole:
    """Members of the provider's ``group`` hold ``role`` in the environment from their next
    sign-in on."""
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    group = _group(group)
    async with ctx.db.write() as session:
        await require_environment_admin(session, caller, environment_id)
        if await _mapping(session, environment_id, group, role) is not None:
            raise Conflict(
                ErrorCode.ALREADY_IN_STATE, f"group {group!r} already maps to {role.value}"
            )
        mapping = SignInGroupRole(
            environment_id=environment_id, group=group, role=role, created_at=ctx.clock.now()
        )
        session.add(mapping)
        journal.on_sign_in_group(ctx, session, caller, mapping, mapped=True)
    return mapping


async def unmap_group(
    ctx: DomainContext, principal: Principal, *, environment_id: str, group: str, role: Role
) -> SignInGroupRole:
    """The mapping goes; the roles it granted go at each member's next sign-in."""
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    group = _group(group)
    async with ctx.db.write() as session:
        await require_environment_admin(session, caller, environment_id)
        mapping = await _mapping(session, environment_id, group, role)
        if mapping is None:
            raise NotFound("group mapping", f"{group} -> {role.value}")
        await session.delete(mapping)
        journal.on_sign_in_group(ctx, session, caller, mapping, mapped=False)
    return mapping


async def _mapping(
    session: AsyncSession, environment_id: str, group: str, role: Role
) -> SignInGroupRole | None:
    return (
        await session.exec(
            select(SignInGroupRole).where(
                SignInGroupRole.environment_id == environment_id,
                SignInGroupRole.group == group,
                SignInGroupRole.role == role,
            )
        )
    ).first()


async def group_roles(
    ctx: DomainContext, principal: Principal, environment_id: str
) -> list[SignInGroupRole]:
    caller = require_user(principal)
    environment_id = validation.ident(environment_id, field="environmentId")
    async with ctx.db.read() as session:
        await require_environment_admin(session, caller, environment_id)
        rows = await session.exec(
            select(SignInGroupRole)
            .where(SignInGroupRole.environment_id == environment_id)
            .order_by(col(SignInGroupRole.group), col(SignInGroupRole.role))
        )
        return list(rows.all())


# --- who came in by sign-in, for administrators ----------------------------------------------


@dataclass(frozen=True)
class SignedInPerson:
    identity: SignInIdentity
    user: User


async def signed_in_people(
    ctx: DomainContext, principal: Principal, *, since: datetime | None = None
) -> list[SignedInPerson]:
    """Everyone tied to the provider, how they were matched, newest first (administrators)."""
    caller = require_user(principal)
    if not caller.is_admin:
        raise PermissionDenied(ErrorCode.NOT_ADMIN, "only DeskFleet administrators can do this")
    async with ctx.db.read() as session:
        query = (
            select(SignInIdentity, User)
            .join(User, col(User.id) == col(SignInIdentity.user_id))
            .order_by(col(SignInIdentity.created_at).desc(), col(SignInIdentity.id))
        )
        if since is not None:
            query = query.where(col(SignInIdentity.created_at) >= since)
        rows = (await session.exec(query)).all()
    return [SignedInPerson(identity, user) for identity, user in rows]
