"""Expected failures: each carries a code clients can branch on and a message people can read.

Raising one inside a use case rolls its transaction back, so a refused operation changes nothing.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    # input
    INVALID_NAME = "INVALID_NAME"
    INVALID_TEXT = "INVALID_TEXT"
    INVALID_VERSION = "INVALID_VERSION"
    INVALID_ID = "INVALID_ID"
    INVALID_VALUE = "INVALID_VALUE"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_CURSOR = "INVALID_CURSOR"
    PAGE_TOO_LARGE = "PAGE_TOO_LARGE"
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    # identity
    UNAUTHENTICATED = "UNAUTHENTICATED"
    USER_DEACTIVATED = "USER_DEACTIVATED"
    WRONG_CREDENTIAL_KIND = "WRONG_CREDENTIAL_KIND"
    SIGN_IN_NOT_LINKED = "SIGN_IN_NOT_LINKED"  # R44: a provider's person nobody is tied to
    # lookups and conflicts
    NOT_FOUND = "NOT_FOUND"
    NAME_TAKEN = "NAME_TAKEN"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    ALREADY_IN_STATE = "ALREADY_IN_STATE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"  # R46
    # permissions (R4, R12-R15)
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_ADMIN = "NOT_ADMIN"
    SHARE_ESCALATION = "SHARE_ESCALATION"
    # registration (R1-R3, R5)
    TEAMS_ENVIRONMENT = "TEAMS_ENVIRONMENT"
    FLOW_EXTENSIONS_TOO_OLD = "FLOW_EXTENSIONS_TOO_OLD"
    RUNTIME_TOO_OLD = "RUNTIME_TOO_OLD"
    HOME_EDITION = "HOME_EDITION"
    # machines and groups (R6, R10, R11, R18)
    SAME_ENVIRONMENT = "SAME_ENVIRONMENT"
    KEY_ACTION_REQUIRED = "KEY_ACTION_REQUIRED"
    KEY_EXPIRED = "KEY_EXPIRED"
    NO_KEY_ACTION_PENDING = "NO_KEY_ACTION_PENDING"
    GROUP_FULL = "GROUP_FULL"
    CROSS_ENVIRONMENT = "CROSS_ENVIRONMENT"
    GROUP_IN_MAINTENANCE = "GROUP_IN_MAINTENANCE"
    # runs, bots and the machine runtime (R23-R30)
    NO_ATTENDED_LICENCE = "NO_ATTENDED_LICENCE"
    NO_UNATTENDED_BOTS = "NO_UNATTENDED_BOTS"
    CAPACITY_EXCEEDED = "CAPACITY_EXCEEDED"
    GATEWAY_NOT_SUPPORTED = "GATEWAY_NOT_SUPPORTED"
    RUN_NOT_QUEUED = "RUN_NOT_QUEUED"
    RUN_FINISHED = "RUN_FINISHED"
    STALE_ATTEMPT = "STALE_ATTEMPT"
    # retries (R40)
    RUN_NOT_FINISHED = "RUN_NOT_FINISHED"
    RUN_ALREADY_RETRIED = "RUN_ALREADY_RETRIED"
    RUN_NOT_RETRIABLE = "RUN_NOT_RETRIABLE"
    # connections, gateways and desktop flows (R20-R22)
    INVALID_PASSWORD = "INVALID_PASSWORD"
    FLOW_IN_USE = "FLOW_IN_USE"
    # webhooks (R43)
    INVALID_URL = "INVALID_URL"
    INVALID_EVENT_TYPE = "INVALID_EVENT_TYPE"
    ENDPOINT_DISABLED = "ENDPOINT_DISABLED"
    # session-lock recommendations (R31-R34)
    RECOMMENDATION_RESOLVED = "RECOMMENDATION_RESOLVED"
    RUN_NOT_BLOCKED = "RUN_NOT_BLOCKED"


class ErrorKind(str, Enum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    PERMISSION = "PERMISSION"
    CONFLICT = "CONFLICT"
    RULE = "RULE"
    AUTHENTICATION = "AUTHENTICATION"


class DomainError(Exception):
    kind: ErrorKind = ErrorKind.RULE

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        rule: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule


class ValidationFailed(DomainError):
    kind = ErrorKind.VALIDATION


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, what: str, ident: object, *, message: str | None = None) -> None:
        super().__init__(
            ErrorCode.NOT_FOUND,
            message or f"{what} {ident!s} does not exist or is not visible to you",
        )
        self.what = what


class PermissionDenied(DomainError):
    kind = ErrorKind.PERMISSION


class Conflict(DomainError):
    kind = ErrorKind.CONFLICT


class RuleViolation(DomainError):
    kind = ErrorKind.RULE


class AuthenticationFailed(DomainError):
    kind = ErrorKind.AUTHENTICATION
