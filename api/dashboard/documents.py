"""The dashboard's own GraphQL documents, trusted even when only registered documents are
accepted (``trusted_documents_only``).

They are the exported strings of ``operations.js``, as the browser builds them; ``documents.json``
holds them for the server, which runs no JavaScript. After changing ``operations.js``::

    python -m api.dashboard.documents    # rewrites documents.json (needs Node.js)

tests/api/test_trusted_documents.py fails while the two differ.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).parent
MANIFEST = HERE / "documents.json"

# operations.js is an ES module without imports; Node loads it from a data: URL (its folder has
# no package.json saying "module") and prints every exported string, by export name.
_EXTRACT = """
import { readFileSync } from "node:fs";
const source = readFileSync(process.argv[1], "utf8");
const module = await import("data:text/javascript," + encodeURIComponent(source));
const names = Object.keys(module).filter((name) => typeof module[name] === "string").sort();
console.log(JSON.stringify(names.map((name) => module[name])));
"""


def built_in() -> list[str]:
    documents: list[str] = json.loads(MANIFEST.read_text())
    return documents


def extracted() -> list[str]:
    """operations.js's documents, as Node evaluates it."""
    printed = subprocess.run(
        ["node", "--input-type=module", "-e", _EXTRACT, str(HERE / "operations.js")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documents: list[str] = json.loads(printed)
    return documents


if __name__ == "__main__":
    MANIFEST.write_text(json.dumps(extracted(), indent=1) + "\n")
    print(f"{MANIFEST}: {len(built_in())} documents")
