"""A stopped or hung Redis behind a real `driftmon serve`: every answer is a 202 or an
honest 503 (Retry-After, the API's JSON error) within the client's timeouts, /readyz
says so, /healthz does not care, and intake recovers by itself once Redis is back,
with every acknowledged event stored."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from core.keys import Keys
from core.stores.events import EventStore
from service.launch import free_port, serve_command
from tests.collectors.test_stream_resilience import until_ready
from tests.data import credit_events
from tests.fixtures_app import upload_credit_reference
from tests.redis_server import RedisServer

BATCH = 20  # events per POST
SOCKET_TIMEOUT = 2.0  # the settings' defaults
CONNECT_TIMEOUT = 1.0
SLACK_SECONDS = 5.0  # a busy two-core CI machine, several servers on it
RECOVERY_BOUND = 30.0
EXIT_TIMEOUT_SECONDS = 60.0
EVENTS_PATH = "/v1/models/credit/events"


@dataclass
class Answer:
    """One POST of BATCH new events, as the client saw it."""

    started: float
    seconds: float
    ids: list[str]
    status: int | None = None  # None: no HTTP answer (transport error)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with RedisServer(appendonly=True) as server:  # a restart keeps what was acknowledged
        yield server


def start_serve(tmp_path: Path, key_prefix: str, *options: str, **env: str) -> Served:
    """`driftmon serve` on `tmp_path/data` (its embedded Redis unless --redis-url)."""
    port, log = free_port(), tmp_path / "serve.log"
    command = serve_command(
        port, tmp_path / "data", "--key-prefix", key_prefix, "--detection-workers", "0", *options
    )
    environment = {**os.environ, "DRIFTMON_LOG_LEVEL": "warning", **env}
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment
        )
    return Served(process, port, log)


def stop_serve(served: Served) -> int:
    """SIGTERM, then SIGKILL if it will not go; its exit code."""
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
        try:
            served.process.wait(timeout=EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait(timeout=EXIT_TIMEOUT_SECONDS)
    return served.process.returncode


@asynccontextmanager
async def serving(
    tmp_path: Path, key_prefix: str, *options: str, **env: str
) -> AsyncIterator[tuple[Served, httpx.AsyncClient]]:
    """A ready server with the credit model, and a client of it."""
    served = start_serve(tmp_path, key_prefix, *options, **env)
    try:
        await until_ready(served.port, served.process, served.log)
        timeout = httpx.Timeout(60.0)  # generous: the server's own bounds are under test
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=served.base_url, timeout=timeout, limits=limits) as c:
            await upload_credit_reference(c)
            yield served, c
    finally:
        stop_serve(served)


async def post_batch(client: httpx.AsyncClient, seed: int) -> Answer:
    events = credit_events(BATCH, seed=seed, prefix="fault")
    ids = [str(event["event_id"]) for event in events]
    started = time.monotonic()
    try:
        response = await client.post(EVENTS_PATH, json=events)
    except httpx.TransportError as exc:
        return Answer(started, time.monotonic() - started, ids, error=repr(exc))
    seconds = time.monotonic() - started
    return Answer(
        started, seconds, ids, response.status_code, dict(response.headers), response.content
    )


async def intake_loop(
    client: httpx.AsyncClient, seeds: Iterator[int], stop: asyncio.Event, answers: list[Answer]
) -> None:
    """POSTs new events one after the other until `stop`, recording every answer."""
    while not stop.is_set():
        answer = await post_batch(client, next(seeds))
        answers.append(answer)
        if answer.status is None:
            await asyncio.sleep(0.05)  # no server: do not spin


def check_answer(answer: Answer, bound: float) -> None:
    """A 202, or a 503 with Retry-After and the API's JSON error, within `bound`."""
    assert answer.status in (202, 503), f"{answer.status} {answer.error} {answer.body[:300]!r}"
    assert answer.seconds <= bound, f"answered after {answer.seconds:.1f} s (bound {bound} s)"
    if answer.status == 503:
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.headers["content-type"] == "application/json"
        detail = httpx.Response(503, content=answer.body).json()["detail"]
        assert detail["error"], detail
        assert detail["hint"], detail


def worst_case(retry_seconds: float, connect_timeout: float, socket_timeout: float) -> float:
    """The longest one Redis call may take (connect_redis's docstring), then slack."""
    return 2 * (retry_seconds + connect_timeout + socket_timeout) + SLACK_SECONDS


def acknowledged(answers: list[Answer]) -> list[str]:
    return [event_id for answer in answers if answer.status == 202 for event_id in answer.ids]


async def assert_stored(redis: Redis, key_prefix: str, ids: list[str]) -> None:
    """Every id stored (the idempotency record), and the store counts at least them."""
    keys = Keys(key_prefix)
    scores = await redis.zmscore(keys.events_seen("credit"), ids) if ids else []
    missing = [event_id for event_id, score in zip(ids, scores, strict=True) if score is None]
    assert not missing, f"{len(missing)} of {len(ids)} acknowledged events lost: {missing[:5]}"
    assert await EventStore(redis, keys).total_events("credit") >= len(ids)


def summary(label: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{label}: none"
    return f"{label}: {len(seconds)}, {min(seconds):.2f}-{max(seconds):.2f} s"


@pytest.mark.timeout(600)
async def test_intake_with_redis_stopped_answers_503_and_recovers(
    own_redis: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    # retries shorter than the default 1 s, so that a retry the setting does not bound
    # (before: 3.5 s) fails `refused_bound`, with room left for a busy machine
    retry_seconds = 0.25
    refused_bound = retry_seconds + 2.5
    env = {"DRIFTMON_REDIS_RETRY_SECONDS": str(retry_seconds)}
    options = ("--redis-url", own_redis.url)
    answers: list[Answer] = []
    stop, seeds = asyncio.Event(), itertools.count()
    async with serving(tmp_path, key_prefix, *options, **env) as (_, client):
        loops = [asyncio.create_task(intake_loop(client, seeds, stop, answers)) for _ in range(4)]
        try:
            await until_answered(answers, lambda a: a.status == 202, "202s before the stop")
            await asyncio.to_thread(own_redis.stop)
            stopped = time.monotonic()
            await until_answered(answers, lambda a: a.started > stopped, "answers while down")
            await asyncio.sleep(4.0)  # Redis stays down a while: many requests meet it
            await asyncio.to_thread(own_redis.start)
            back = time.monotonic()
            recovered = await until_answered(
                answers, lambda a: a.started >= back and a.status == 202, "a 202 after restart"
            )
        finally:
            stop.set()
            await asyncio.gather(*loops)
        ready = await client.get("/readyz")
    for answer in answers:
        check_answer(answer, worst_case(retry_seconds, CONNECT_TIMEOUT, SOCKET_TIMEOUT))
    down = [a for a in answers if stopped < a.started and a.started + a.seconds < back]
    assert any(a.status == 503 for a in down), "no request met the stopped Redis"
    for answer in down:  # refused at once, retried for retry_seconds, then answered
        assert answer.seconds <= refused_bound, f"{answer.seconds:.2f} s while refused"
    assert recovered.started + recovered.seconds - back <= RECOVERY_BOUND
    assert ready.status_code == 200, ready.text
    print(summary("503 while stopped", [a.seconds for a in down if a.status == 503]))
    print(f"first 202 {recovered.started + recovered.seconds - back:.2f} s after the restart")
    async with Redis.from_url(own_redis.url) as redis:
        await assert_stored(redis, key_prefix, acknowledged(answers))


async def until_answered(
    answers: list[Answer], wanted: Callable[[Answer], bool], what: str
) -> Answer:
    """The first answer that is `wanted`, waiting for one up to RECOVERY_BOUND seconds."""
    deadline = time.monotonic() + RECOVERY_BOUND
    while time.monotonic() < deadline:
        found = next((a for a in answers if wanted(a)), None)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    pytest.fail(f"not within {RECOVERY_BOUND:g} s: {what}")


async def timed_get(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float, float]:
    """The answer, how long it took, and when it came (monotonic)."""
    started = time.monotonic()
    response = await client.get(path)
    return response, time.monotonic() - started, time.monotonic()


@pytest.mark.timeout(600)
async def test_hung_redis_answers_503_promptly_and_recovers_after_sigcont(
    own_redis: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    # wide, so that the hung POSTs plainly outlast /healthz, even when their own CPU
    # work (about 1 s for 24 of them here) holds the event loop up first
    socket_timeout = 5.0
    bound = CONNECT_TIMEOUT + socket_timeout + SLACK_SECONDS  # a timeout ends the call
    env = {"DRIFTMON_REDIS_SOCKET_TIMEOUT_SECONDS": str(socket_timeout)}
    seeds = itertools.count()
    async with serving(tmp_path, key_prefix, "--redis-url", own_redis.url, **env) as (_, client):
        before = await until_accepted(client, seeds)  # the pool has connections
        assert own_redis.pid is not None
        os.kill(own_redis.pid, signal.SIGSTOP)
        try:
            posts = [asyncio.create_task(post_batch(client, next(seeds))) for _ in range(24)]
            await asyncio.sleep(0.2)  # the POSTs are out, waiting on Redis
            health = await timed_get(client, "/healthz")
            ready = await timed_get(client, "/readyz")
            hung = await asyncio.gather(*posts)
        finally:
            os.kill(own_redis.pid, signal.SIGCONT)
        resumed = time.monotonic()
        after = await until_accepted(client, seeds)
        ready_again = await client.get("/readyz")
    for answer in hung:
        check_answer(answer, bound)
        assert answer.status == 503, "a POST to a hung Redis was acknowledged"
    response, seconds, came = health
    assert response.status_code == 200
    assert came < min(a.started + a.seconds for a in hung), "/healthz waited on Redis"
    assert seconds < socket_timeout
    assert ready[0].status_code == 503, ready[0].text
    assert ready[1] <= bound
    assert ready_again.status_code == 200
    print(summary("503 while hung", [a.seconds for a in hung]))
    print(f"/healthz {seconds:.3f} s, /readyz {ready[1]:.2f} s (503)")
    print(f"first 202 {after.started + after.seconds - resumed:.2f} s after SIGCONT")
    async with Redis.from_url(own_redis.url) as redis:
        await assert_stored(redis, key_prefix, acknowledged([before, after]))


async def until_accepted(client: httpx.AsyncClient, seeds: Iterator[int]) -> Answer:
    """POSTs until one is acknowledged, for up to RECOVERY_BOUND seconds."""
    deadline = time.monotonic() + RECOVERY_BOUND
    while time.monotonic() < deadline:
        answer = await post_batch(client, next(seeds))
        if answer.status == 202:
            return answer
        await asyncio.sleep(0.1)
    pytest.fail(f"intake did not recover within {RECOVERY_BOUND:g} s")
