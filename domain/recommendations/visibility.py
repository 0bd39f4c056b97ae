"""Who may see a session-lock recommendation (R32, R34): its recipient (the runs' connection
owner) and the admins of its environment (installation admins administer every one). To anyone
else it does not exist: every use case answers an invisible recommendation exactly as an id that
names none (R38), with the id the caller gave.

The rule is written once, in the shapes the use cases need: a WHERE clause for lists
(:func:`recommendations_visible_to`) and a look-up by id (:func:`visible_recommendation`).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.identity.authorization import admin_environment_ids
from domain.kernel.errors import NotFound
from domain.kernel.principals import UserPrincipal
from domain.store.models import SessionRecommendation


def recommendations_visible_to(
    user: UserPrincipal, admin_of: set[str] | None
) -> ColumnElement[bool]:
    """The rule as a WHERE clause; ``admin_of`` is ``admin_environment_ids`` (None: all)."""
    if admin_of is None:
        return true()
    return or_(
        col(SessionRecommendation.recipient_id) == user.user_id,
        col(SessionRecommendation.environment_id).in_(admin_of) if admin_of else false(),
    )


def not_found(recommendation_id: str) -> NotFound:
    """What a recommendation that does not exist, or is not visible, is answered with."""
    return NotFound("session recommendation", recommendation_id)


async def visible_recommendation(
    session: AsyncSession, user: UserPrincipal, recommendation_id: str, *, for_update: bool = False
) -> SessionRecommendation:
    """The recommendation, or :func:`not_found` alike whether it is missing or invisible."""
    admin_of = await admin_environment_ids(session, user)
    stmt = select(SessionRecommendation).where(
        SessionRecommendation.id == recommendation_id, recommendations_visible_to(user, admin_of)
    )
    if for_update:
        stmt = stmt.with_for_update()
    rec = (await session.exec(stmt)).first()
    if rec is None:
        raise not_found(recommendation_id)
    return rec
