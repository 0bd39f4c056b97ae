"""Who may see a connection: its owner and the admins of its environment (installation admins
administer every one). To anyone else it does not exist: every use case answers an invisible
connection exactly as an id that names none (R38), with the id the caller gave.

The rule is written once, as a predicate on facts already read (:func:`sees_connection`), and
beside it in the two shapes the use cases need: a WHERE clause for lists
(:func:`connections_visible_to`) and a look-up by id (:func:`visible_connection`).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.identity.authorization import roles_in
from domain.kernel.errors import NotFound
from domain.kernel.permissions import Role
from domain.kernel.principals import UserPrincipal
from domain.store.models import Connection


def sees_connection(user: UserPrincipal, owner_id: str, roles: frozenset[Role]) -> bool:
    """The rule. ``roles``: the caller's security roles in the connection's environment."""
    return owner_id == user.user_id or user.is_admin or Role.ENVIRONMENT_ADMIN in roles


def connections_visible_to(user: UserPrincipal, admin_of: set[str] | None) -> ColumnElement[bool]:
    """The rule as a WHERE clause; ``admin_of`` is ``admin_environment_ids`` (None: all)."""
    if admin_of is None:
        return true()
    return or_(
        col(Connection.owner_id) == user.user_id,
        col(Connection.environment_id).in_(admin_of) if admin_of else false(),
    )


def not_found(connection_id: str) -> NotFound:
    """What a connection that does not exist, or is not visible, is answered with."""
    return NotFound("connection", connection_id)


async def visible_connection(
    session: AsyncSession, user: UserPrincipal, connection_id: str
) -> Connection:
    """The connection, or :func:`not_found` alike whether it is missing or invisible."""
    connection = await session.get(Connection, connection_id)
    if connection is None or not sees_connection(
        user, connection.owner_id, await roles_in(session, user, connection.environment_id)
    ):
        raise not_found(connection_id)
    return connection
