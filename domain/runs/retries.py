"""R40: retrying runs. A policy per environment (the default) and per desktop flow (which
overrides it) says which endings are retried, how many attempts a chain may make and how long
each retry waits; a person may retry a finished run by hand.

A retry is a new run linked to the one it retries (``retry_of_id``) with the next place in the
chain (``retry_attempt``): the same flow, connection, queue (machine or group), Windows user,
mode and priority. It is queued like a trigger, but the dispatcher takes it only from its
``not_before`` (its delay); until then it waits ``RETRY_DELAY``.

"Never two live runs in one chain": a run is retried only once it has ended, and at most once
(a unique index on ``retry_of_id``), so a chain is a list whose last run alone can be live. Both
databases enforce the second half (an ordinary unique index, which NULLs never collide in), and
an ended run never becomes live again, so no chain id and no partial index are needed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.context import DomainContext
from domain.identity.authorization import require_user
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode
from domain.kernel.principals import Principal
from domain.kernel.retry_policy import NO_RETRY, RetryEnding, RetryPolicy
from domain.runs.queue_state import queue_key
from domain.runs.runs import (
    MACHINE_LOST,
    NO_CANDIDATE_MACHINE,
    authorize_manage,
    run_events,
)
from domain.runs.visibility import visible_run
from domain.store.models import TERMINAL_STATUSES, DesktopFlow, Environment, FlowRun, RunStatus


def _ending(run: FlowRun) -> tuple[RetryEnding | None, str | None]:
    """How the run ended, as a policy names endings: (the ending, the code it FAILED with)."""
    if run.status is RunStatus.TIMED_OUT and run.error_code == NO_CANDIDATE_MACHINE:
        return RetryEnding.QUEUE_TIMEOUT, None
    if run.status is not RunStatus.FAILED:
        return None, None
    return (RetryEnding.MACHINE_LOST if run.error_code == MACHINE_LOST else None), run.error_code


async def _policy_of(session: AsyncSession, run: FlowRun) -> RetryPolicy:
    """The policy in force for the run's flow: its own, or else its environment's."""
    row = (
        await session.exec(
            select(DesktopFlow.retry_policy, Environment.retry_policy)
            .join(Environment, col(Environment.id) == col(DesktopFlow.environment_id))
            .where(DesktopFlow.id == run.flow_id)
        )
    ).first()
    if row is None:
        return NO_RETRY
    own, default = row
    return RetryPolicy.from_json(own) or RetryPolicy.from_json(default) or NO_RETRY


def _queue_retry(
    ctx: DomainContext,
    session: AsyncSession,
    run: FlowRun,
    *,
    triggered_by_id: str,
    now: datetime,
    delay: timedelta,
) -> FlowRun:
    """The retry, added to the session with the events a trigger publishes."""
    retry = FlowRun(
        environment_id=run.environment_id,
        flow_id=run.flow_id,
        connection_id=run.connection_id,
        target_machine_id=run.target_machine_id,
        target_group_id=run.target_group_id,
        run_as=run.run_as,
        connection_owner_id=run.connection_owner_id,
        triggered_by_id=triggered_by_id,
        mode=run.mode,
        priority=run.priority,
        priority_rank=run.priority_rank,
        status=RunStatus.QUEUED,
        queued_at=now,
        created_at=now,
        retry_of_id=run.id,
        retry_attempt=run.retry_attempt + 1,
        not_before=now + delay if delay else None,
        traceparent=run.traceparent,  # the retry continues the trigger's trace
    )
    session.add(retry)
    run_events(ctx, session, retry)
    return retry


def _retriable(run: FlowRun) -> bool:
    """Something to run it through: its connection (credentials) and its queue still exist."""
    return run.connection_id is not None and queue_key(run) != (None, None)


async def retry_ended(
    ctx: DomainContext, session: AsyncSession, run: FlowRun, now: datetime
) -> FlowRun | None:
    """R40, in the transaction that has just ended ``run``: its retry, if the policy in force
    retries this ending and the chain has attempts left."""
    if not _retriable(run):
        return None
    policy = await _policy_of(session, run)
    if run.retry_attempt >= policy.max_attempts or not policy.retries(*_ending(run)):
        return None
    delay = policy.delay_before(run.retry_attempt + 1)
    return _queue_retry(
        ctx, session, run, triggered_by_id=run.triggered_by_id, now=now, delay=delay
    )


class RunAlreadyRetried(Conflict):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.RUN_ALREADY_RETRIED,
            "the run was already retried: retry the last run of its chain (follow retriedBy)",
        )


async def retry_run(ctx: DomainContext, principal: Principal, run_id: str) -> FlowRun:
    """R40 by hand: a finished run, not yet retried, is retried now (no delay, whatever the
    policy; its attempts do not limit a person). Who may manage the run may retry it; the
    retry is theirs (``triggered_by``)."""
    user = require_user(principal)
    run_id = validation.ident(run_id, field="runId")
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        run = await visible_run(session, user, run_id, for_update=True)
        await authorize_manage(session, user, run)
        if run.status not in TERMINAL_STATUSES:
            raise Conflict(
                ErrorCode.RUN_NOT_FINISHED,
                f"the run is {run.status.value}: only a run that has ended can be retried",
            )
        if (await session.exec(select(FlowRun.id).where(FlowRun.retry_of_id == run.id))).first():
            raise RunAlreadyRetried()
        if not _retriable(run):
            raise Conflict(
                ErrorCode.RUN_NOT_RETRIABLE,
                "the run's connection, or the machine or group it was queued for, no longer "
                "exists: trigger the flow again through another connection",
            )
        retry = _queue_retry(
            ctx, session, run, triggered_by_id=user.user_id, now=now, delay=timedelta(0)
        )
        try:
            await session.flush()
        except IntegrityError:  # retried at this very moment by someone else (the unique index)
            raise RunAlreadyRetried() from None
    return retry
