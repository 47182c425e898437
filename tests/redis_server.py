"""A real, throwaway redis-server for tests: loopback TCP on a free port, data in a temp dir."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.embedded_redis import find_redis_server

STARTUP_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A throwaway real redis-server on a free loopback TCP port, data in a temp dir.

    stop() keeps the port and the dir, so start() after it (or restart()) brings back the
    same server; with appendonly=False its data is gone then, as after a crash. close()
    stops it for good and removes the dir.
    """

    def __init__(self, executable: str | None = None, appendonly: bool = False) -> None:
        self.executable = executable or find_redis_server()
        self.appendonly = appendonly
        self.port = free_loopback_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = Path(tempfile.mkdtemp(prefix="driftmon-test-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self._process is not None:
            return
        self._process = subprocess.Popen(
            self._args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ready(self._process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM (a clean shutdown: the AOF, if any, is flushed) and wait. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start on the same port and dir, like a Redis restart in production."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        """A sync client without retries, so a stopped server fails fast."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 0),
        )

    def _args(self) -> list[str]:
        return [
            self.executable,
            *("--bind", "127.0.0.1"),
            *("--port", str(self.port)),
            *("--dir", str(self.data_dir)),
            *("--save", ""),
            *("--appendonly", "yes" if self.appendonly else "no"),
            *("--daemonize", "no"),
            *("--logfile", str(self._log_file)),
        ]

    @property
    def _log_file(self) -> Path:
        return self.data_dir / "redis.log"

    def _log_tail(self) -> str:
        try:
            return self._log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.executable} on port {self.port} exited with {process.returncode}:\n"
                    f"{self._log_tail()}"
                )
            if self._answers_ping():
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.executable} on port {self.port} did not answer PING:\n{self._log_tail()}"
        )

    def _answers_ping(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False
