"""schema.graphql at the root is the exported schema and never drifts (SPEC section 9)."""

from pathlib import Path

from api.schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_matches_exported_schema() -> None:
    exported = schema.as_str().strip()
    on_disk = (ROOT / "schema.graphql").read_text().strip()
    assert on_disk == exported, (
        "schema.graphql is out of date: run "
        "`python -c 'from api.schema import schema; print(schema.as_str())' > schema.graphql`"
    )
