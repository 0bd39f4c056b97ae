"""npm packages the tests use (the OpenID Provider, axe-core), installed on first use from their
folder's lock file, so a fresh clone's test run needs only Node.js 20 with npm."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path


def installed(folder: Path) -> None:
    """``npm ci`` in ``folder`` unless done already, once: test processes running side by side
    (pytest -n) wait for the first one's install."""
    if (folder / "node_modules" / ".package-lock.json").is_file():
        return
    npm = shutil.which("npm")
    assert npm, f"npm (Node.js 20 or newer) is needed to install {folder.name}'s test packages"
    with (folder / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "node_modules" / ".package-lock.json").is_file():
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"npm ci in {folder}:\n{done.stdout}\n{done.stderr}"
