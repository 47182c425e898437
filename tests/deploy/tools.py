"""The real tools the deployment tests run, and where they come from. A missing tool is
a skip on a workstation and a failure in CI (CI is set), as promtool is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.observability.scrape import REPO

VENV_BIN = Path(sys.executable).parent
# checkov and uv pin versions of their own: they live in a venv of their own
TOOLS_BIN = REPO / ".tools" / "venv" / "bin"
NODE_TOOLS = REPO / ".tools" / "grafana-schema"


def require(name: str, how: str) -> str:
    """Path of `name` (on PATH, in the project's venv or in .tools), else skip or fail."""
    for found in (shutil.which(name), VENV_BIN / name, TOOLS_BIN / name):
        if found and os.access(found, os.X_OK):
            return str(found)
    missing = f"{name} is not installed ({how}; `make tools` installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"{missing}, but CI is set")
    pytest.skip(missing)


def run(command: Sequence[str], cwd: Path = REPO, timeout: float = 300) -> str:
    """Run a tool; fail with its output unless it exits 0."""
    done = subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output}"
    return output
