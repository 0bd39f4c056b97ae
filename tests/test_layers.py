"""The code's layers depend one way (docs/architecture.md): import-linter's contracts in
pyproject.toml hold, so `domain` never imports `api`, and no context imports one above it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from importlinter.cli import lint_imports_command; "
        f"sys.argv = ['lint-imports', *{list(args)!r}]; sys.exit(lint_imports_command())"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_see_real_imports(tmp_path: Path) -> None:
    """A contract the code breaks (the fleet below the kernel it imports) is reported, so the
    kept contracts above are not kept vacuously."""
    config = tmp_path / "reversed.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["domain"]\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "reversed"\ntype = "layers"\nlayers = ["domain.kernel", "domain.fleet"]\n'
    )
    result = lint_imports("--config", str(config))
    assert result.returncode != 0
    assert "domain.fleet is not allowed to import domain.kernel" in result.stdout
