"""The Windows user sessions a machine reports with its heartbeat (R26, R32)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlmodel import col, select

from domain.kernel import validation
from domain.kernel.errors import ErrorCode, ValidationFailed
from domain.store.db import Database
from domain.store.models import SessionState, UserSession

MAX_SESSIONS = 200


def user_key(username: str) -> str:
    """Windows user names compare case-insensitively."""
    return username.strip().casefold()


@dataclass(frozen=True)
class ReportedSession:
    username: str
    state: SessionState


def check_sessions(sessions: Sequence[ReportedSession]) -> list[ReportedSession]:
    if len(sessions) > MAX_SESSIONS:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE,
            f"at most {MAX_SESSIONS} user sessions can be reported, got {len(sessions)}",
            field="sessions",
        )
    seen: set[str] = set()
    cleaned: list[ReportedSession] = []
    for s in sessions:
        name = validation.name(s.username, field="sessions.username", max_length=256)
        if user_key(name) in seen:
            raise ValidationFailed(
                ErrorCode.INVALID_VALUE,
                f"user {name!r} is reported twice: a user has one session per machine",
                field="sessions",
            )
        seen.add(user_key(name))
        cleaned.append(ReportedSession(name, s.state))
    return cleaned


def same_sessions(
    existing: Iterable[tuple[str, SessionState | str]], reported: Sequence[ReportedSession]
) -> bool:
    """Whether the reported sessions are those already held (names compare as Windows does)."""
    before = {(user_key(name), SessionState(state)) for name, state in existing}
    return before == {(user_key(s.username), SessionState(s.state)) for s in reported}


async def user_sessions(ctx_db: Database, machine_ids: list[str]) -> list[list[UserSession]]:
    """Each machine's sessions, by user name, in one statement."""
    async with ctx_db.read() as session:
        rows = await session.exec(
            select(UserSession)
            .where(col(UserSession.machine_id).in_(machine_ids))
            .order_by(col(UserSession.username))
        )
        by_machine: dict[str, list[UserSession]] = {i: [] for i in machine_ids}
        for s in rows.all():
            by_machine[s.machine_id].append(s)
    return [by_machine[i] for i in machine_ids]
