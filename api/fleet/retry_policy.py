"""R40's retry policy, as environments (the default) and desktop flows (their own) show and take it."""

from __future__ import annotations

import strawberry

from domain.kernel.retry_policy import (
    MAX_ATTEMPTS_LIMIT,
    NO_RETRY,
    RetryEnding,
    RetryPolicy,
    retry_policy,
)

RetryEndingEnum = strawberry.enum(
    RetryEnding,
    name="RetryEnding",
    description="R40: endings a retry policy may retry, besides chosen error codes.",
)


@strawberry.type(
    name="RetryPolicy",
    description="R40: which endings of a run are retried, how often, and after how long.",
)
class RetryPolicyType:
    max_attempts: int = strawberry.field(
        description="Runs a retry chain may hold before it is no longer retried automatically, "
        "the first and those retried by hand included (1: no retry)."
    )
    retry_on: list[RetryEnding]
    error_codes: list[str] = strawberry.field(
        description="A run that FAILED with one of these codes (as its runtime reported) is retried."
    )
    delay_seconds: int = strawberry.field(description="How long the first retry waits.")
    backoff_factor: float = strawberry.field(
        description="Each later retry waits this many times longer (at most a day)."
    )

    @classmethod
    def from_policy(cls, policy: RetryPolicy) -> RetryPolicyType:
        return cls(
            max_attempts=policy.max_attempts,
            retry_on=sorted(policy.retry_on, key=lambda e: e.value),
            error_codes=list(policy.error_codes),
            delay_seconds=policy.delay_seconds,
            backoff_factor=policy.backoff_factor,
        )

    @classmethod
    def from_stored(cls, stored: str | None) -> RetryPolicyType | None:
        policy = RetryPolicy.from_json(stored)
        return cls.from_policy(policy) if policy is not None else None


@strawberry.input(
    description="R40: a retry policy; each field is checked, nothing is kept if one is wrong."
)
class RetryPolicyInput:
    max_attempts: int = strawberry.field(
        description=f"1 (no retry) to {MAX_ATTEMPTS_LIMIT}: runs a chain may hold before it is no "
        "longer retried automatically."
    )
    retry_on: list[RetryEnding] = strawberry.field(default_factory=list)
    error_codes: list[str] = strawberry.field(
        default_factory=list, description="At most 20 codes; FAILED with one of them retries."
    )
    delay_seconds: int = strawberry.field(
        default=NO_RETRY.delay_seconds, description="0 to 86400 (a day)."
    )
    backoff_factor: float = strawberry.field(
        default=NO_RETRY.backoff_factor, description="1 (the same delay each time) to 10."
    )

    def to_policy(self) -> RetryPolicy:
        """The policy, or a ValidationError (typed) naming the field at fault."""
        return retry_policy(
            max_attempts=self.max_attempts,
            retry_on=self.retry_on,
            error_codes=self.error_codes,
            delay_seconds=self.delay_seconds,
            backoff_factor=self.backoff_factor,
        )
