"""What the OS tells and does about processes: spawning a child that dies with its owner,
forgetting the parent's resources after a fork, pids from /proc, signals."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

PR_SET_PDEATHSIG = 1
POLL_INTERVAL_SECONDS = 0.05

Owner = TypeVar("Owner")


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


def forget_in_forked_child(owner: Owner, forget: Callable[[Owner], None]) -> None:
    """Call `forget(owner)` in every child forked while `owner` lives.

    multiprocessing's fork start method copies the parent's objects into each worker;
    what they hold (a child process, a locked file) still belongs to the parent. The
    owner is held weakly, so registering does not keep it alive.
    """
    held = weakref.ref(owner)

    def in_child() -> None:
        alive = held()
        if alive is not None:
            forget(alive)

    os.register_at_fork(after_in_child=in_child)


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


def has_proc() -> bool:
    return Path("/proc/self").is_dir()


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
    """Poll `condition` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_SECONDS)
    return True


def send_signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # exited meanwhile
        os.kill(pid, sig)
