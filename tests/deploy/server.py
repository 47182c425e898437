"""A `driftmon serve` subprocess for the deployment tests: started as a container or the
compose stack would start it, waited for, and stopped with SIGTERM as Docker does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.launch import free_port

INGEST_KEY = "deploy-test-ingest-key-0123456789"
ADMIN_KEY = "deploy-test-admin-key-0123456789"
API_KEYS = json.dumps(
    [
        {"name": "model-server", "key": INGEST_KEY, "scopes": ["ingest"]},
        {"name": "ops", "key": ADMIN_KEY, "scopes": ["admin", "read"]},
    ]
)
# a deadline against a hang, not a measurement: the first start imports a lot
START_DEADLINE_SECONDS = 120.0
STOP_DEADLINE_SECONDS = 60.0


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                status: int = response.status
                return status
        except urllib.error.HTTPError as error:
            return error.code

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def clean_environment(**overrides: str) -> dict[str, str]:
    """The environment without the caller's DRIFTMON_* settings, plus the overrides."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("DRIFTMON_")}
    return {**kept, "DRIFTMON_API_KEYS": API_KEYS, **overrides}


def wait_until_ready(server: Server, probe: Sequence[str] | None = None) -> None:
    """Until /readyz answers 200 (or `probe`, a command, exits 0); fails with the log when
    the server exits or the deadline passes."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"driftmon exited {server.process.returncode}:\n{server.output()}")
        if probe is None and _answers(server):
            return
        if probe is not None and subprocess.run(probe, check=False, timeout=30).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"driftmon not ready in {START_DEADLINE_SECONDS}s:\n{server.output()}")


def _answers(server: Server) -> bool:
    try:
        return server.get("/readyz") == 200
    except OSError:
        return False


@contextmanager
def serving(
    command: Sequence[str], env: dict[str, str], cwd: Path, port: int | None = None
) -> Iterator[Server]:
    """`command` running with DRIFTMON_PORT set; SIGTERM and a wait on the way out."""
    port = port or free_port()
    log = cwd / "driftmon.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            list(command),
            env={**env, "DRIFTMON_HOST": "127.0.0.1", "DRIFTMON_PORT": str(port)},
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(process, port, log)
    try:
        yield server
    finally:
        stop(server)


def stop(server: Server) -> int:
    """SIGTERM, as `docker stop` sends; the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode
