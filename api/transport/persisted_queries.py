"""Automatic persisted queries (Apollo's protocol): a client sends a document's SHA-256 instead of
the document, and the document only when the server does not know it yet.

A request whose ``extensions.persistedQuery`` is ``{"version": 1, "sha256Hash": "<64 hex>"}``:

- without ``query``: the document registered under that hash runs; an unknown hash is answered
  ``PersistedQueryNotFound`` (``extensions.code`` ``PERSISTED_QUERY_NOT_FOUND``), and the client
  sends it again with the document;
- with ``query``: the hash must be the document's (else ``PERSISTED_QUERY_HASH_MISMATCH``), and
  the document is registered for the next time, when an authenticated caller sent it.

The documents live in a bounded store: this process's (``persisted_query_cache_size``, least
recently used out first) and, with a redis:// event bus, Redis too, for
``persisted_query_ttl_seconds``, so every instance of a cluster knows what one learned. Works over
POST and GET (where a known hash makes a query a plain, cacheable URL).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import OrderedDict
from typing import Any, Protocol

from strawberry.http import GraphQLRequestData

from api.errors import ApiError
from domain.documents.trusted import sha256_of
from domain.kernel.settings import Settings

log = logging.getLogger("deskfleet.persisted_queries")

VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PersistedQueryRefused(Exception):
    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def not_found() -> PersistedQueryRefused:
    # The message is the protocol's: Apollo's clients look for it (and for the code).
    return PersistedQueryRefused(ApiError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound"))


class PersistedQueryStore(Protocol):
    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, document: str) -> None: ...

    async def close(self) -> None: ...


class MemoryPersistedQueries:
    """This process's documents, at most ``size``; the least recently used goes first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._documents: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        document = self._documents.get(sha256)
        if document is not None:
            self._documents.move_to_end(sha256)
        return document

    async def put(self, sha256: str, document: str) -> None:
        self._documents[sha256] = document
        self._documents.move_to_end(sha256)
        while len(self._documents) > self.size:
            self._documents.popitem(last=False)

    async def close(self) -> None:
        return None


class RedisPersistedQueries:
    """Redis shared by the cluster, behind this process's own store. With Redis away, this
    process's documents still serve, and a client that meets an unknown hash sends its document
    again, as the protocol has it."""

    prefix = "deskfleet:persisted-query:"

    def __init__(self, url: str, size: int, ttl_seconds: int) -> None:
        from redis import asyncio as aioredis

        self.local = MemoryPersistedQueries(size)
        self.ttl_seconds = ttl_seconds
        self._redis: Any = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._warned_at = -float("inf")

    async def get(self, sha256: str) -> str | None:
        document = await self.local.get(sha256)
        if document is not None:
            return document
        try:
            found = await self._redis.get(self.prefix + sha256)
        except Exception:
            self._warn()
            return None
        if found is None:
            return None
        document = found.decode()
        await self.local.put(sha256, document)
        return document

    async def put(self, sha256: str, document: str) -> None:
        await self.local.put(sha256, document)
        try:
            await self._redis.set(self.prefix + sha256, document, ex=self.ttl_seconds)
        except Exception:
            self._warn()

    def _warn(self) -> None:
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            log.warning(
                "persisted queries unavailable in Redis; this process's only", exc_info=True
            )

    async def close(self) -> None:
        await self._redis.aclose()


def store_for(settings: Settings) -> PersistedQueryStore:
    """Shared through Redis when the event bus is, in this process otherwise."""
    size = settings.persisted_query_cache_size
    if settings.broadcast_url.startswith(("redis://", "rediss://")):
        return RedisPersistedQueries(
            settings.broadcast_url, size, settings.persisted_query_ttl_seconds
        )
    return MemoryPersistedQueries(size)


def requested_hash(extensions: dict[str, Any] | None) -> str | None:
    """The document's hash a request names, checked; None when it names none."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    asked = extensions["persistedQuery"]
    if not isinstance(asked, dict) or asked.get("version") != VERSION:
        raise PersistedQueryRefused(
            ApiError(
                "PERSISTED_QUERY_NOT_SUPPORTED",
                f"extensions.persistedQuery must be {{version: {VERSION}, sha256Hash}}",
            )
        )
    sha256 = asked.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise PersistedQueryRefused(
            ApiError(
                "PERSISTED_QUERY_INVALID",
                "extensions.persistedQuery.sha256Hash must be 64 lowercase hexadecimal digits",
            )
        )
    return sha256


def check_hash(query: str, sha256: str) -> None:
    """A document sent with its hash must be under its own hash."""
    if sha256_of(query) != sha256:
        raise PersistedQueryRefused(
            ApiError(
                "PERSISTED_QUERY_HASH_MISMATCH",
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query",
            )
        )


async def resolve(
    store: PersistedQueryStore, request: GraphQLRequestData, *, may_register: bool
) -> GraphQLRequestData:
    """The request with its document: looked up by hash, or checked against it and registered
    (``may_register``: the caller is authenticated). Unchanged when it names no hash."""
    sha256 = requested_hash(request.extensions)
    if sha256 is None:
        return request
    if request.query is None:
        document = await store.get(sha256)
        if document is None:
            raise not_found()
        return dataclasses.replace(request, query=document)
    check_hash(request.query, sha256)
    if may_register:
        await store.put(sha256, request.query)
    return request
