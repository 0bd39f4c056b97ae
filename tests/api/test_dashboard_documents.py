"""The dashboard's documents the server trusts by itself (api/dashboard/documents.json) are the
ones its operations.js sends, and each is valid against the schema."""

import shutil

import pytest
from graphql import parse, validate

from api.dashboard import documents
from api.schema import schema
from api.transport.strawberry_adapter import graphql_schema


def test_the_manifest_is_what_operations_js_sends() -> None:
    if shutil.which("node") is None:
        pytest.fail("Node.js is needed to read operations.js (.ci/run installs it)")
    assert documents.built_in() == documents.extracted(), (
        "operations.js changed: run `python -m api.dashboard.documents`"
    )


def test_every_dashboard_document_is_valid() -> None:
    for document in documents.built_in():
        assert validate(graphql_schema(schema), parse(document)) == [], document
