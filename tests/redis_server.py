"""A real, throwaway redis-server for tests: loopback TCP on a free port, data in a temp dir."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from service.launch import free_port
from service.redis_process import RedisProcess


class RedisServer(RedisProcess):
    """A RedisProcess on a free loopback port and a temp dir of its own.

    stop() keeps the port and the dir, so start() after it (or restart()) brings back the
    same server; with appendonly=False its data is gone then, as after a crash. close()
    (or leaving the `with` block) stops it for good and removes the dir.
    """

    def __init__(self, executable: str | None = None, appendonly: bool = False) -> None:
        super().__init__(
            Path(tempfile.mkdtemp(prefix="driftmon-test-redis-")),
            port=free_port(),
            appendonly=appendonly,
            executable=executable,
        )

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

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
