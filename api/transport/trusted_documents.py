"""Only registered documents (``trusted_documents_only``): every operation, over HTTP and both
websocket protocols, must be a document registered with ``deskfleet documents register`` or one
of the dashboard's own; anything else is ``DOCUMENT_NOT_TRUSTED`` before it is parsed.

The registered documents are read from the database at start and again every
``trusted_documents_refresh_seconds`` (10), so a document registered while instances run is accepted by all of them
within that time. A client may send a trusted document whole or by its SHA-256 (a persisted
query, docs/api.md); new documents are never registered through the API in this mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from strawberry.http import GraphQLRequestData

from api.errors import ApiError
from api.transport.persisted_queries import PersistedQueryRefused, check_hash, requested_hash
from domain.documents import trusted
from domain.store.db import Database

log = logging.getLogger("deskfleet.trusted_documents")


def untrusted() -> ApiError:
    return ApiError(
        "DOCUMENT_NOT_TRUSTED",
        "this server accepts registered documents only, and this one is not registered",
    )


class TrustedDocuments:
    def __init__(self, db: Database, built_in: list[str], refresh_seconds: float) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self.built_in = {trusted.sha256_of(document): document for document in built_in}
        self.documents = dict(self.built_in)
        self._refreshing: asyncio.Task[None] | None = None

    def trusts(self, document: str | None) -> bool:
        return document is not None and trusted.sha256_of(document) in self.documents

    def admit(self, request: GraphQLRequestData) -> GraphQLRequestData:
        """The request with its document, which must be trusted: named by hash or sent whole."""
        sha256 = requested_hash(request.extensions)
        if request.query is None and sha256 is not None:
            document = self.documents.get(sha256)
            if document is None:
                raise PersistedQueryRefused(untrusted())
            return dataclasses.replace(request, query=document)
        if sha256 is not None and request.query is not None:
            check_hash(request.query, sha256)
        return request  # the schema refuses a document it does not trust (all transports)

    async def refresh(self) -> None:
        self.documents = {**self.built_in, **await trusted.registered(self.db)}

    async def start(self) -> None:
        await self.refresh()  # before the first request
        self._refreshing = asyncio.create_task(self._keep_refreshing())

    async def stop(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    async def _keep_refreshing(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except Exception:  # storage away for a while: keep what is known, say so
                log.warning("cannot re-read the trusted documents; keeping the last", exc_info=True)
