"""A redis-server owned by the driftmon process, used when DRIFTMON_REDIS_URL is unset.

Everything lives in `<data_dir>/redis/`: the append-only files, the pidfile written by
redis itself, the log, the unix socket (no TCP listener) and `driftmon.lock`, which the
owning driftmon process holds with flock while its server runs.

A crashed owner must not leave a server behind that keeps writing the same append-only
files, so there are two safeguards: on Linux the server gets SIGTERM when its owner dies
(PR_SET_PDEATHSIG, see service/redis_process.py), and start() shuts down any server left
over on the data dir first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import signal
import tempfile
from pathlib import Path
from types import TracebackType

import redis

from service.os_process import (
    forget_in_forked_child,
    has_proc,
    is_alive,
    is_redis_server,
    process_cwd,
    read_pid,
    send_signal,
    wait_until,
)
from service.redis_process import (
    PROBE_TIMEOUT_SECONDS,
    SHUTDOWN_TIMEOUT_SECONDS,
    RedisProcess,
    server_major_version,
)

log = logging.getLogger(__name__)

# sun_path holds 108 bytes on Linux and 104 on macOS, both including the trailing NUL.
SOCKET_PATH_MAX_BYTES = 103


class EmbeddedRedis:
    """Start/stop one redis-server on `data_dir/redis/`, reachable via the unix socket in `url`.

    The lock on the data dir is held from start() to stop(), so a stopped instance does
    not keep other processes from using the dir.
    """

    def __init__(
        self, data_dir: Path, executable: str | None = None, startup_timeout: float = 10.0
    ) -> None:
        self._data_dir = data_dir
        self._dir = data_dir.resolve() / "redis"
        self._socket_path = socket_path_for(self._dir)
        self._pid_file = self._dir / "redis.pid"
        self._server = RedisProcess(
            self._dir,
            unix_socket=self._socket_path,
            appendonly=True,
            pid_file=self._pid_file,
            executable=executable,
            startup_timeout=startup_timeout,
        )
        self._lock_fd: int | None = None
        # multiprocessing's fork start method would hand the locked file description to
        # every worker, keeping the data dir locked after this process is gone.
        forget_in_forked_child(self, EmbeddedRedis._forget_lock)

    @property
    def url(self) -> str:
        """unix:// URL of the server; it answers once start() has returned."""
        return self._server.url

    def __enter__(self) -> EmbeddedRedis:
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
        if self._server.still_serving():
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        if self._lock_fd is None:  # else our server died and we still hold the dir
            self._acquire_lock()
        try:
            self._stop_leftover_servers()
            self._check_aof_is_readable()
            self._prepare_socket_dir()
            self._server.start()
        except BaseException:
            self.stop()
            raise
        log.info("embedded redis-server pid %d on %s", self._server.pid, self._socket_path)

    def stop(self) -> None:
        """SHUTDOWN the server (the append-only file is flushed), clean up, unlock. Idempotent."""
        if self._lock_fd is None:
            return  # not ours: another owner may be running a server on the dir
        self._server.stop()
        self._remove_runtime_files()
        os.close(self._lock_fd)
        self._lock_fd = None

    # -- the lock --------------------------------------------------------------------------

    def _acquire_lock(self) -> None:
        fd = os.open(self._dir / "driftmon.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RuntimeError(f"data dir {self._data_dir} is in use by pid {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _forget_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the parent's descriptor keeps the lock
        self._lock_fd = None

    # -- servers left over by a crashed owner ----------------------------------------------

    def _stop_leftover_servers(self) -> None:
        """We hold the lock, so any server still running on this dir lost its owner."""
        answering = self._pid_answering_on_socket()
        if answering is not None:
            self._stop_orphan(answering, shutdown_via_socket=True)
        recorded = read_pid(self._pid_file)
        if recorded is not None and recorded != answering and self._is_server_on_dir(recorded):
            self._stop_orphan(recorded, shutdown_via_socket=False)
        self._remove_runtime_files()

    def _pid_answering_on_socket(self) -> int | None:
        if not self._socket_path.exists():
            return None
        try:
            with self._server.client(PROBE_TIMEOUT_SECONDS) as client:
                info = client.info("server")
        except redis.RedisError:
            return None
        return int(info["process_id"])

    def _is_server_on_dir(self, pid: int) -> bool:
        # redis chdirs to its `dir`; a pidfile naming some other process is a stale one
        # whose pid was reused.
        return is_redis_server(pid) and process_cwd(pid) == self._dir

    def _stop_orphan(self, pid: int, shutdown_via_socket: bool) -> None:
        log.warning(
            "stopping redis-server pid %d left running on %s by a dead owner", pid, self._dir
        )
        if not (shutdown_via_socket and self._server.request_shutdown()):
            self._signal_orphan(pid, signal.SIGTERM)
        if wait_until(lambda: not self._orphan_running(pid), SHUTDOWN_TIMEOUT_SECONDS):
            return
        self._signal_orphan(pid, signal.SIGKILL)
        if not wait_until(lambda: not self._orphan_running(pid), SHUTDOWN_TIMEOUT_SECONDS):
            raise RuntimeError(f"redis-server pid {pid} on {self._dir} survived SIGKILL")

    def _orphan_running(self, pid: int) -> bool:
        """Checked anew each time: once the orphan has exited its pid may be reused, and a pid
        reported over a socket shared between containers may belong to another namespace."""
        if not has_proc():
            return is_alive(pid)  # nothing more to check without /proc
        return is_alive(pid) and self._is_server_on_dir(pid)

    def _signal_orphan(self, pid: int, sig: signal.Signals) -> None:
        if self._orphan_running(pid):
            send_signal(pid, sig)

    # -- the files around the server ---------------------------------------------------------

    def _check_aof_is_readable(self) -> None:
        """Redis 7 keeps a multi-part AOF in appendonlydir/, which Redis 6 ignores: it would
        start with an empty dataset and then write a fresh appendonly.aof beside it."""
        if not (self._dir / "appendonlydir").is_dir():
            return
        executable = self._server.executable
        major = server_major_version(executable)
        if major is not None and major < 7:
            raise RuntimeError(
                f"{self._dir} holds a Redis 7 append-only dir that {executable} "
                f"(Redis {major}) cannot read; install redis-server 7+ or use another data dir"
            )

    def _prepare_socket_dir(self) -> None:
        socket_dir = self._socket_path.parent
        if socket_dir != self._dir:
            # Other users can write to the temp dir: only use a dir we own and others cannot
            # enter.
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            status = socket_dir.lstat()
            if not socket_dir.is_dir() or socket_dir.is_symlink() or status.st_uid != os.getuid():
                raise RuntimeError(f"socket dir {socket_dir} is not a directory owned by us")
            log.info("data dir path too long for a unix socket; socket at %s", self._socket_path)
        (self._dir / "socket-path").write_text(f"{self._socket_path}\n")

    def _remove_runtime_files(self) -> None:
        self._server.remove_runtime_files()
        if self._socket_path.parent != self._dir:
            # Not empty or already gone: leave it.
            with contextlib.suppress(OSError):
                self._socket_path.parent.rmdir()


def socket_path_for(redis_dir: Path) -> Path:
    """`redis_dir/redis.sock`, or a short per-data-dir path under the temp dir when that is
    too long for a unix socket address."""
    in_place = redis_dir / "redis.sock"
    if len(os.fsencode(in_place)) <= SOCKET_PATH_MAX_BYTES:
        return in_place
    digest = hashlib.sha256(os.fsencode(redis_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"driftmon-{digest}" / "redis.sock"
