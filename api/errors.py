"""Expected failures as typed results (mutation payload unions), unexpected ones masked."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeAlias, TypeVar, get_args

import strawberry
from graphql import GraphQLError

from domain.kernel.errors import DomainError, ErrorCode, ErrorKind, NotFound
from domain.store import storage

log = logging.getLogger("deskfleet.api")

T = TypeVar("T")
P = ParamSpec("P")


@strawberry.interface(description="An expected failure: nothing was changed.")
class UserError:
    code: ErrorCode
    message: str


@strawberry.type(description="The input is malformed; `field` names the offending input.")
class ValidationError(UserError):
    field: str | None


@strawberry.type(description="The thing named does not exist or is not visible to the caller.")
class NotFoundError(UserError):
    pass


@strawberry.type(description="The caller may not do this (R4, R12-R15).")
class PermissionDeniedError(UserError):
    pass


@strawberry.type(description="The change conflicts with the current state (a taken name, ...).")
class ConflictError(UserError):
    pass


@strawberry.type(
    description="A product rule refuses this; `rule` cites the product rule (R1..., docs/rules.md)."
)
class RuleViolationError(UserError):
    rule: str | None


@strawberry.type(
    description="The credential cannot do this (e.g. a machine key used as a user token)."
)
class AuthenticationError(UserError):
    pass


# The error members of every mutation's result union, in this order:
# ``Annotated[SomePayload | UserErrors, strawberry.union("SomeResult")]``.
UserErrors: TypeAlias = (
    ValidationError
    | NotFoundError
    | PermissionDeniedError
    | ConflictError
    | RuleViolationError
    | AuthenticationError
)
ERROR_TYPES: tuple[type, ...] = get_args(UserErrors)


def to_error(exc: DomainError) -> UserError:
    match exc.kind:
        case ErrorKind.VALIDATION:
            return ValidationError(code=exc.code, message=exc.message, field=exc.field)
        case ErrorKind.NOT_FOUND:
            return NotFoundError(code=exc.code, message=exc.message)
        case ErrorKind.PERMISSION:
            return PermissionDeniedError(code=exc.code, message=exc.message)
        case ErrorKind.CONFLICT:
            return ConflictError(code=exc.code, message=exc.message)
        case ErrorKind.AUTHENTICATION:
            return AuthenticationError(code=exc.code, message=exc.message)
        case _:
            return RuleViolationError(code=exc.code, message=exc.message, rule=exc.rule)


def typed_errors(resolver: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T | UserError]]:
    """Decorate a mutation resolver whose result is a :func:`payload` union: an expected failure
    (a :class:`DomainError`) it raises is answered as that union's error member; anything else
    propagates, to be masked (:func:`mask_unexpected`). Put it under ``@strawberry.mutation``::

        @strawberry.mutation(description="...")
        @typed_errors
        async def delete_flow(self, info: Info[Context, None], id: ID) -> DeleteFlowResult:
            flow = await flows.delete_flow(info.context.domain, info.context.principal, id)
            return DeletedDesktopFlowPayload(id=ID(flow.id))
    """

    @functools.wraps(resolver)
    async def resolve(*args: P.args, **kwargs: P.kwargs) -> T | UserError:
        try:
            return await resolver(*args, **kwargs)
        except DomainError as exc:
            return to_error(exc)

    return resolve


def idempotency_key_field(more: str = "") -> Any:
    """The optional ``idempotencyKey`` of a creating mutation's input (R46), described once."""
    return strawberry.field(
        default=None,
        description="R46: the same key from you within 24 hours answers what the first request "
        "created, as it is now, and creates nothing new; with another input it is refused "
        "(IDEMPOTENCY_KEY_REUSED). 1 to 255 visible ASCII characters: a new UUID per "
        "operation, sent again with each retry of it." + (f" {more}" if more else ""),
    )


class ApiError(GraphQLError):
    """A failure reported in ``errors`` with a machine-readable ``extensions.code``."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        super().__init__(
            message, extensions={"code": str(code.value if isinstance(code, ErrorCode) else code)}
        )


def unauthenticated(message: str, code: ErrorCode = ErrorCode.UNAUTHENTICATED) -> ApiError:
    return ApiError(code, message)


async def lookup(action: Callable[[], Awaitable[T]]) -> T | None:
    """Run a read: not found is ``null``, other expected failures are coded errors."""
    try:
        return await action()
    except NotFound:
        return None
    except DomainError as exc:
        raise ApiError(exc.code, exc.message) from None


async def read(action: Callable[[], Awaitable[T]]) -> T:
    try:
        return await action()
    except DomainError as exc:
        raise ApiError(exc.code, exc.message) from None


def should_mask(error: GraphQLError) -> bool:
    """Mask anything that is not one of ours: stack traces and internals never leave."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    log.error("unexpected error at %s", error.path, exc_info=original)
    return True


def storage_unavailable(error: GraphQLError) -> GraphQLError | None:
    """A write storage could not take (full, read-only, ...; domain/store/storage.py) is no bug:
    it is answered ``STORAGE_UNAVAILABLE`` and logged as one warning line, without traceback."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return None
    fault = storage.fault_of(original)
    if fault is None:
        return None
    log.warning("storage cannot take a write at %s: %s", error.path, fault)
    return reworded(error, storage.CLIENT_MESSAGE, {"code": storage.CODE})


def reworded(error: GraphQLError, message: str, extensions: dict[str, Any] | None) -> GraphQLError:
    """``error`` at the same place, with another message and extensions."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def mask_unexpected(errors: list[GraphQLError]) -> None:
    """Replace, in the list every transport answers from, each error :func:`should_mask` flags
    by a bare "Unexpected error." at the same place (it logged the original); a storage fault
    by its coded answer (:func:`storage_unavailable`)."""
    for i, error in enumerate(errors):
        if (unavailable := storage_unavailable(error)) is not None:
            errors[i] = unavailable
        elif should_mask(error):
            errors[i] = reworded(error, "Unexpected error.", None)


# graphql-core's coercion and validation messages quote what the client sent: "…, found:
# {'password': '…'}" or "String cannot represent a non string value: …". An answer (and a log
# line) must never carry a secret back (R20), so the value goes and the reason stays.
_FOUND = re.compile(r", found: .*\Z", re.S)
_VALUE_AFTER_REASON = re.compile(r"(cannot represent[^:]*): .*\Z", re.S)
HIDDEN = "<hidden>"


def _string_leaves(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _string_leaves(item)]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _string_leaves(item)]
    return []


def redact_input_values(errors: list[GraphQLError], variables: dict[str, Any] | None) -> None:
    """Replace, in place, each error of ours that quotes the request's input by one that names
    the problem without the value."""
    leaves = sorted(set(_string_leaves(variables or {})), key=len, reverse=True)
    for i, error in enumerate(errors):
        if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
            continue  # an unexpected error: masked whole
        message = _VALUE_AFTER_REASON.sub(r"\1", _FOUND.sub("", error.message))
        for leaf in leaves:
            for quoted in (repr(leaf), json.dumps(leaf)):
                message = message.replace(quoted, HIDDEN)
        if message != error.message:
            errors[i] = reworded(error, message, error.extensions)


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def hide_suggestions(errors: list[GraphQLError]) -> None:
    """Production answers name what is wrong and suggest nothing: "Did you mean …?" hints for
    arguments, types and enum values map the schema for a stranger (field hints are off in
    Strawberry's config)."""
    for i, error in enumerate(errors):
        message = _SUGGESTION.sub("", error.message)
        if message != error.message:
            errors[i] = reworded(error, message, error.extensions)
