"""The per-request (or per-subscription-event) context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.errors import unauthenticated
from api.loaders import Loaders
from domain.context import DomainContext
from domain.identity.authorization import require_user
from domain.kernel.errors import DomainError
from domain.kernel.principals import Principal, UserPrincipal


@dataclass
class Context:
    domain: DomainContext
    request: Any = None
    response: Any = None
    credential: Principal | None = None
    credential_error: DomainError | None = None
    # Websockets (api/transport/websocket.py): the connection_init payload, and the credential it carried,
    # re-checked at each subscription event.
    connection_params: dict[str, Any] | None = None
    bearer: str | None = None
    now: datetime = field(init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.now = self.domain.clock.now()
        self.loaders = Loaders(self.domain, self.credential)

    @property
    def principal(self) -> Principal:
        """The authenticated caller; a missing or bad credential is a 401-style error."""
        if self.credential is not None:
            return self.credential
        if self.credential_error is not None:
            raise unauthenticated(self.credential_error.message, self.credential_error.code)
        raise unauthenticated("authentication required: send 'Authorization: Bearer <token>'")

    def user_principal(self) -> UserPrincipal:
        """The caller as a person: a machine key here is a WRONG_CREDENTIAL_KIND error."""
        try:
            return require_user(self.principal)
        except DomainError as exc:
            raise unauthenticated(exc.message, exc.code) from None
