"""Starting `driftmon serve` as a child process and waiting for it: shared by the demo,
the benchmarks and the end-to-end tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_command(port: int, data_dir: Path, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "service.cli", "serve",
        "--port", str(port), "--data-dir", str(data_dir), *options,
    ]  # fmt: skip


def wait_until_ready(
    base_url: str,
    server: subprocess.Popen[bytes],
    timeout: float,
    on_wait: Callable[[], None] | None = None,
) -> bool:
    """True once /readyz answers 200; False if the server exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass  # not listening yet
        if on_wait is not None:
            on_wait()
        time.sleep(0.2)
    return False
