"""R40's retry policy as a value: which endings are retried, how many runs a chain may make,
how long each retry waits. Checked once when set; stored as JSON on its environment (the default)
or desktop flow (domain/runs/retries.py applies it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from domain.kernel import validation
from domain.kernel.errors import ErrorCode, ValidationFailed

MAX_ATTEMPTS_LIMIT = 10  # the first run and up to nine retries
MAX_DELAY_SECONDS = 24 * 60 * 60  # a retry never waits longer than a day, whatever the backoff
MAX_BACKOFF_FACTOR = 10.0
MAX_ERROR_CODES = 20


class RetryEnding(str, Enum):
    """Endings a policy may retry besides chosen error codes."""

    MACHINE_LOST = "MACHINE_LOST"  # R28: FAILED, its machine went silent while it ran
    QUEUE_TIMEOUT = "QUEUE_TIMEOUT"  # R27: TIMED_OUT, no machine took it in time


@dataclass(frozen=True)
class RetryPolicy:
    # Runs a chain may hold before it is no longer retried automatically, the first run and
    # retries by hand included: 1 = no retry.
    max_attempts: int = 1
    retry_on: frozenset[RetryEnding] = frozenset()
    error_codes: tuple[str, ...] = ()  # FAILED with one of these codes (as the runtime reports)
    delay_seconds: int = 60  # before the first retry
    backoff_factor: float = 2.0  # each later retry waits this many times longer

    def retries(self, ending: RetryEnding | None, failed_with: str | None) -> bool:
        """Whether a run that ended so is retried (attempts aside): ``ending`` one of the
        endings named, ``failed_with`` the error code of a FAILED run (None otherwise)."""
        if ending is not None and ending in self.retry_on:
            return True
        return failed_with is not None and failed_with in self.error_codes

    def delay_before(self, retry_attempt: int) -> timedelta:
        """How long the run at ``retry_attempt`` (2: the first retry) waits after the ending."""
        seconds = self.delay_seconds * self.backoff_factor ** max(retry_attempt - 2, 0)
        return timedelta(seconds=min(seconds, MAX_DELAY_SECONDS))

    def to_json(self) -> str:
        return json.dumps(
            {
                "maxAttempts": self.max_attempts,
                "retryOn": sorted(e.value for e in self.retry_on),
                "errorCodes": list(self.error_codes),
                "delaySeconds": self.delay_seconds,
                "backoffFactor": self.backoff_factor,
            }
        )

    @classmethod
    def from_json(cls, stored: str | None) -> RetryPolicy | None:
        if stored is None:
            return None
        value = json.loads(stored)
        return cls(
            max_attempts=int(value["maxAttempts"]),
            retry_on=frozenset(RetryEnding(e) for e in value["retryOn"]),
            error_codes=tuple(value["errorCodes"]),
            delay_seconds=int(value["delaySeconds"]),
            backoff_factor=float(value["backoffFactor"]),
        )


NO_RETRY = RetryPolicy()


def retry_policy(
    *,
    max_attempts: int,
    retry_on: Iterable[RetryEnding] = (),
    error_codes: Iterable[str] = (),
    delay_seconds: int = NO_RETRY.delay_seconds,
    backoff_factor: float = NO_RETRY.backoff_factor,
) -> RetryPolicy:
    """A policy from a caller's input, or :class:`ValidationFailed` naming the field at fault."""
    validation.bounded_int(
        max_attempts, field="retryPolicy.maxAttempts", minimum=1, maximum=MAX_ATTEMPTS_LIMIT
    )
    validation.bounded_int(
        delay_seconds, field="retryPolicy.delaySeconds", minimum=0, maximum=MAX_DELAY_SECONDS
    )
    if not 1.0 <= backoff_factor <= MAX_BACKOFF_FACTOR:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE,
            f"retryPolicy.backoffFactor must be between 1 and {MAX_BACKOFF_FACTOR:g}, "
            f"got {backoff_factor:g}",
            field="retryPolicy.backoffFactor",
        )
    codes = list(error_codes)
    if len(codes) > MAX_ERROR_CODES:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE,
            f"retryPolicy.errorCodes holds at most {MAX_ERROR_CODES} codes, got {len(codes)}",
            field="retryPolicy.errorCodes",
        )
    # The runtime's codes are checked as it reports them (runtime.report_run_finished).
    checked = [validation.name(c, field="retryPolicy.errorCodes", max_length=64) for c in codes]
    return RetryPolicy(
        max_attempts=max_attempts,
        retry_on=frozenset(retry_on),
        error_codes=tuple(dict.fromkeys(checked)),
        delay_seconds=delay_seconds,
        backoff_factor=float(backoff_factor),
    )
