"""Automatic persisted queries (Apollo's protocol, api/transport/persisted_queries.py): a known
hash runs its document, over POST and GET; an unknown one asks for the document; a document is
registered only under its own hash and only by an authenticated caller; the store is bounded.
The cluster's shared store is tests/e2e/test_persisted_queries_cluster.py."""

import hashlib
import json
from typing import Any

import pytest

from domain.kernel.settings import Settings
from tests.graphql import Fleet

ME = "query Me { me { id } }"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"persisted_query_cache_size": 2})


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(document: str, *, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256(document)}}


async def post(fleet: Fleet, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token or fleet.admin_token}"}
    answer = await fleet.api.http.post("/graphql", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def code_of(answer: dict[str, Any]) -> str:
    (error,) = answer["errors"]
    return str(error["extensions"]["code"])


async def test_an_unknown_hash_asks_for_the_document_then_runs_by_hash(fleet: Fleet) -> None:
    unknown = await post(fleet, {"extensions": persisted(ME)})
    registered = await post(fleet, {"query": ME, "extensions": persisted(ME)})
    by_hash = await post(fleet, {"extensions": persisted(ME)})

    assert unknown["data"] is None
    assert unknown["errors"][0]["message"] == "PersistedQueryNotFound"
    assert code_of(unknown) == "PERSISTED_QUERY_NOT_FOUND"
    assert registered["data"]["me"]["id"]
    assert by_hash["data"] == registered["data"]


async def test_a_known_hash_runs_over_get(fleet: Fleet) -> None:
    await post(fleet, {"query": ME, "extensions": persisted(ME)})
    answer = await fleet.api.http.get(
        "/graphql",
        params={"extensions": json.dumps(persisted(ME))},
        headers={"Authorization": f"Bearer {fleet.admin_token}", "Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["me"]["id"]


async def test_a_document_under_another_hash_is_refused_and_not_registered(fleet: Fleet) -> None:
    forged = {"persistedQuery": {"version": 1, "sha256Hash": sha256("{ __typename }")}}
    refused = await post(fleet, {"query": ME, "extensions": forged})
    later = await post(fleet, {"extensions": forged})

    assert refused["data"] is None
    assert code_of(refused) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert code_of(later) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    ("extensions", "code"),
    [
        (
            {"persistedQuery": {"version": 2, "sha256Hash": sha256(ME)}},
            "PERSISTED_QUERY_NOT_SUPPORTED",
        ),
        ({"persistedQuery": "yes"}, "PERSISTED_QUERY_NOT_SUPPORTED"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "ABC"}}, "PERSISTED_QUERY_INVALID"),
        ({"persistedQuery": {"version": 1}}, "PERSISTED_QUERY_INVALID"),
    ],
)
async def test_a_malformed_persisted_query_is_a_typed_error(
    fleet: Fleet, extensions: dict[str, Any], code: str
) -> None:
    answer = await post(fleet, {"query": ME, "extensions": extensions})
    assert answer["data"] is None
    assert code_of(answer) == code


async def test_only_an_authenticated_caller_registers_a_document(fleet: Fleet) -> None:
    anonymous = await fleet.api.http.post(
        "/graphql", json={"query": "{ __typename }", "extensions": persisted("{ __typename }")}
    )
    later = await post(fleet, {"extensions": persisted("{ __typename }")})

    assert anonymous.json()["data"] == {"__typename": "Query"}
    assert code_of(later) == "PERSISTED_QUERY_NOT_FOUND"


async def test_the_store_keeps_the_most_recently_used_documents(fleet: Fleet) -> None:
    documents = [ME, "query Typename { __typename }", "query Both { __typename me { id } }"]
    for document in documents[:2]:
        await post(fleet, {"query": document, "extensions": persisted(document)})
    await post(fleet, {"extensions": persisted(ME)})  # ME is now the more recently used
    await post(fleet, {"query": documents[2], "extensions": persisted(documents[2])})

    kept = [
        "errors" not in await post(fleet, {"extensions": persisted(document)})
        for document in documents
    ]
    assert kept == [True, False, True]  # at most 2 (the setting); the least recently used left
