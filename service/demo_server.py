"""The server `driftmon demo` talks to: a `driftmon serve` subprocess on an embedded Redis
in a data dir of the demo's own."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.demo_scenario import SERVE_OPTIONS, DemoError
from service.launch import serve_command, wait_until_ready

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 40
MARKER = ".driftmon-demo"


# -- the data dir ------------------------------------------------------------------------------


def prepare_data_dir(data_dir: Path) -> None:
    """An empty data dir, so every demo starts from the same state. Only a dir that an
    earlier demo made (it holds the marker) is deleted, never anything else."""
    if data_dir.exists():
        if (data_dir / MARKER).exists():
            ensure_not_in_use(data_dir)
            shutil.rmtree(data_dir)
        elif any(data_dir.iterdir()):
            raise DemoError(
                f"{data_dir} exists and was not made by `driftmon demo`; "
                "pass another --data-dir or remove it yourself"
            )
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by `driftmon demo`; deleted by the next demo\n")


def ensure_not_in_use(data_dir: Path) -> None:
    """A server left by `driftmon demo --keep-serving` still holds the embedded Redis lock;
    deleting its files under it would corrupt it."""
    lock = data_dir / "redis" / "driftmon.lock"
    if not lock.exists():
        return
    with lock.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock.read_text().strip() or "unknown"
            raise DemoError(
                f"a driftmon (pid {holder}) still runs on {data_dir}; stop it first"
            ) from None
        fcntl.flock(handle, fcntl.LOCK_UN)


# -- the server subprocess ---------------------------------------------------------------------


def server_command(data_dir: Path, port: int) -> list[str]:
    return serve_command(
        port, data_dir, "--models-file", str(data_dir / "models.yaml"), *SERVE_OPTIONS
    )


def server_environment(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without DRIFTMON_* settings (the demo must run the same
    everywhere, and on its own embedded Redis, never a DRIFTMON_REDIS_URL), plus `extra`
    (the webhook secret)."""
    own = {name: value for name, value in os.environ.items() if not name.startswith("DRIFTMON_")}
    return {**own, **extra}


def start_server(
    data_dir: Path, port: int, models: str, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    (data_dir / "models.yaml").write_text(models)
    with (data_dir / "driftmon.log").open("wb") as log:
        # a session of its own: Ctrl-C reaches only the demo, which then stops the server
        # with one SIGTERM (a second signal would make uvicorn skip its clean shutdown)
        return subprocess.Popen(
            server_command(data_dir, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(env),
            start_new_session=True,
        )


def log_tail(data_dir: Path, lines: int = LOG_TAIL_LINES) -> str:
    path = data_dir / "driftmon.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_server(base_url: str, server: subprocess.Popen[bytes]) -> bool:
    ready = wait_until_ready(
        base_url, server, READY_TIMEOUT_SECONDS, lambda: print(".", end="", flush=True)
    )
    if ready:
        print(" ready")
    elif server.poll() is not None:
        print(f" exited with code {server.returncode}")
    else:
        print(f" not ready after {READY_TIMEOUT_SECONDS:.0f} s")
    return ready


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait: driftmon then shuts its embedded Redis down cleanly."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"driftmon did not stop within {STOP_TIMEOUT_SECONDS:.0f} s; killing it")
        server.kill()
        server.wait()


def serve_until_stopped(server: subprocess.Popen[bytes]) -> None:
    try:
        server.wait()
    except KeyboardInterrupt:
        print("\nstopping driftmon...")
        stop_server(server)


@contextmanager
def running_server(
    data_dir: Path, port: int, models: str, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """The server for the duration of the block; stopped however the block ends."""
    server = start_server(data_dir, port, models, env)
    try:
        yield server
    finally:
        stop_server(server)
