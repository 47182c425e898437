"""Bounded resources on the intake side, through the API: value lengths and timestamps
answered per record, the budget of body bytes in flight (503 with Retry-After), the
body read timeout (408), and, against a `driftmon serve` subprocess over real sockets,
many concurrent large bodies and slow (slowloris) connections."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import ASGIApp, Message

from service.limits import BodyBudget
from tests.collectors.test_stream_resilience import log_tail, until_ready
from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, start_harness, upload_credit_reference
from tests.service.test_redis_faults import Served, start_serve, stop_serve

EVENTS = "/v1/models/credit/events"
BUDGET_SETTING = "DRIFTMON_MAX_BODY_BYTES_IN_FLIGHT"


async def limited_harness(
    redis_url: str, key_prefix: str, **overrides: Any
) -> AsyncIterator[Harness]:
    async for harness in start_harness(harness_settings(redis_url, key_prefix, **overrides)):
        await upload_credit_reference(harness.client)
        yield harness


# --- per record ---------------------------------------------------------------------------


async def test_over_long_values_and_old_timestamps_are_rejected_per_record(
    harness: Harness,
) -> None:
    await upload_credit_reference(harness.client)
    good, long_region, long_id, ancient = credit_events(4, seed=1)
    long_region["features"]["region"] = "EU" * 200  # type: ignore[index]
    long_id["event_id"] = "x" * 257
    ancient["timestamp"] = -1e18
    response = await harness.client.post(EVENTS, json=[good, long_region, long_id, ancient])
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    fields = [(error["index"], error["field"]) for error in body["errors"]]
    assert fields == [(1, "features.region"), (2, "event_id"), (3, "timestamp")]
    assert "DRIFTMON_MAX_VALUE_LENGTH" in body["errors"][0]["error"]
    assert "DRIFTMON_TIMESTAMP_NOT_BEFORE" in body["errors"][2]["error"]


async def test_the_settings_bound_times_ahead_label_ids_and_kpi_times(
    redis_url: str, key_prefix: str
) -> None:
    """The record limits come from Settings on every intake path: events (both the fast
    and the careful path), labels and KPIs."""
    async for harness in limited_harness(
        redis_url, key_prefix, max_value_length=16, timestamp_max_future_seconds=3600
    ):
        client, now = harness.client, time.time()
        soon, far, year_9999, ok = credit_events(4, seed=2)
        soon["timestamp"] = now + 600
        far["timestamp"] = now + 7200
        year_9999["timestamp"] = "9999-12-31T23:59:59Z"
        ok["event_id"] = "e" * 16
        events = await client.post(EVENTS, json=[soon, far, year_9999, ok])
        assert events.status_code == 202, events.text
        assert [error["index"] for error in events.json()["errors"]] == [1, 2]
        assert "DRIFTMON_TIMESTAMP_MAX_FUTURE_SECONDS" in events.json()["errors"][0]["error"]
        assert events.json()["accepted"] == 2

        labels = [{"event_id": "e" * 16, "label": 1}, {"event_id": "e" * 17, "label": 1}]
        answer = await client.post("/v1/models/credit/labels", json=labels)
        assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [(1, "event_id")]
        assert "DRIFTMON_MAX_VALUE_LENGTH" in answer.json()["errors"][0]["error"]

        kpis = [
            {"name": "approval_rate", "value": 0.5, "timestamp": now},
            {"name": "approval_rate", "value": 0.5, "timestamp": now + 7200},
            {"name": "approval_rate", "value": 0.5, "timestamp": -1e18},
        ]
        answer = await client.post("/v1/models/credit/kpis", json=kpis)
        assert answer.json()["accepted"] == 1, answer.text
        assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [
            (1, "timestamp"),
            (2, "timestamp"),
        ]


# --- the budget of body bytes in flight ---------------------------------------------------


async def test_a_body_without_room_in_the_budget_answers_503_before_it_is_read(
    redis_url: str, key_prefix: str
) -> None:
    async for harness in limited_harness(
        redis_url, key_prefix, max_body_bytes_in_flight=10_000, body_wait_seconds=0
    ):
        budget = harness.services.body_limits.budget
        held = await budget.acquire(9_000)
        assert held == 9_000
        body = orjson.dumps(credit_events(20, seed=2))
        refused = await harness.client.post(EVENTS, content=body)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["detail"]["setting"] == BUDGET_SETTING
        budget.release(held)
        accepted = await harness.client.post(EVENTS, content=body)
        assert accepted.status_code == 202, accepted.text
        assert budget.in_flight == 0  # released once answered
        # the route's own cap answers first: 413, not 503
        too_big = await harness.client.post(EVENTS, content=b" " * (16 * 1024 * 1024 + 1))
        assert too_big.status_code == 413


async def test_a_body_waits_for_room_within_body_wait_seconds(
    redis_url: str, key_prefix: str
) -> None:
    async for harness in limited_harness(
        redis_url, key_prefix, max_body_bytes_in_flight=10_000, body_wait_seconds=30
    ):
        budget = harness.services.body_limits.budget
        held = await budget.acquire(10_000)
        assert held is not None
        body = orjson.dumps(credit_events(20, seed=3))
        waiting = asyncio.create_task(harness.client.post(EVENTS, content=body))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        budget.release(held)
        assert (await waiting).status_code == 202


async def test_admission_is_in_arrival_order_and_bounded_in_time() -> None:
    budget = BodyBudget(capacity=100, wait_seconds=0.2)
    first = await budget.acquire(60)
    assert first == 60
    big = asyncio.create_task(budget.acquire(80))  # waits for room
    await asyncio.sleep(0)
    small = asyncio.create_task(budget.acquire(10))  # fits, but queues behind the big one
    await asyncio.sleep(0.05)
    assert not big.done()
    assert not small.done()
    budget.release(60)
    assert await big == 80
    assert await small == 10
    assert await budget.acquire(50) is None  # 90 held: no room within 0.2 s
    assert await budget.acquire(10_000) is None  # the whole budget, but not alone
    budget.release(90)
    assert await budget.acquire(10_000) == 100  # alone: admitted, as the whole budget


async def test_a_cancelled_wait_leaves_nothing_held() -> None:
    budget = BodyBudget(capacity=100, wait_seconds=30)
    held = await budget.acquire(100)
    assert held == 100
    waiter = asyncio.create_task(budget.acquire(50))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    budget.release(100)
    assert budget.in_flight == 0
    assert await budget.acquire(100) == 100


# --- the body read timeout ----------------------------------------------------------------


async def stalled_body(app: ASGIApp) -> list[Message]:
    """What the app sends for an events request whose body stops after its first byte."""
    sent: list[Message] = []
    chunks: list[Message] = [{"type": "http.request", "body": b"[", "more_body": True}]

    async def receive() -> Message:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(3600)  # the rest never comes
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": EVENTS, "raw_path": EVENTS.encode(),
        "root_path": "", "query_string": b"", "server": ("driftmon", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    return sent


async def test_a_body_that_does_not_arrive_in_time_answers_408_and_closes(
    redis_url: str, key_prefix: str
) -> None:
    async for harness in limited_harness(redis_url, key_prefix, body_read_timeout_seconds=0.3):
        start, body = await stalled_body(harness.app)
        assert start["status"] == 408
        assert (b"connection", b"close") in start["headers"]
        detail = orjson.loads(body["body"])["detail"]
        assert detail["setting"] == "DRIFTMON_BODY_READ_TIMEOUT_SECONDS"
        assert harness.services.body_limits.budget.in_flight == 0


# --- a real server over real sockets ------------------------------------------------------


def rss_bytes(served: Served) -> int:
    """The server's resident memory, from /proc (Linux)."""
    for line in Path(f"/proc/{served.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@asynccontextmanager
async def serving(
    redis_url: str, key_prefix: str, tmp_path: Path, **env: str
) -> AsyncIterator[Served]:
    """A ready `driftmon serve` with the credit model, its settings overridden by `env`;
    Redis is not under test: patient enough for a starved event loop on a busy machine."""
    env = {"DRIFTMON_REDIS_SOCKET_TIMEOUT_SECONDS": "10", **env}
    served = start_serve(tmp_path, key_prefix, "--redis-url", redis_url, **env)
    try:
        await until_ready(served.port, served.process, served.log)
        async with httpx.AsyncClient(base_url=served.base_url, timeout=60) as client:
            await upload_credit_reference(client)
        yield served
    finally:
        await asyncio.to_thread(stop_serve, served)


def large_bodies(count: int, records: int) -> Iterator[bytes]:
    for seed in range(count):
        yield orjson.dumps(credit_events(records, seed=100 + seed, prefix=f"big{seed}"))


MIB = 1024 * 1024
BIG_RECORDS = 11_000  # about 1.5 MiB of JSON each: parsed off the event loop
# with the budget the process grew by about 30 MiB here; all 24 bodies at once (no budget)
# grew it by 270-280 MiB and held /healthz up to 3 s
RSS_GROWTH_BOUND = 150 * MIB


async def healthz_and_rss(served: Served, stop: asyncio.Event) -> tuple[float, int]:
    """The slowest /healthz answer and the highest RSS seen until `stop`."""
    slowest, peak = 0.0, rss_bytes(served)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as probe:
        while not stop.is_set():
            started = time.monotonic()
            assert (await probe.get("/healthz")).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            peak = max(peak, rss_bytes(served))
            await asyncio.sleep(0.05)
    return slowest, peak


@pytest.mark.timeout(300)
async def test_many_concurrent_large_bodies_stay_within_the_budget(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """24 bodies of 1.5 MiB at once against a budget of 4 MiB: some wait, some are
    refused with a Retry-After, none fails otherwise; /healthz answers within a second
    throughout and the process grows by less than RSS_GROWTH_BOUND."""
    bodies = list(large_bodies(24, BIG_RECORDS))
    limits = {
        "DRIFTMON_MAX_BODY_BYTES_IN_FLIGHT": str(4 * MIB),
        "DRIFTMON_BODY_WAIT_SECONDS": "0.5",
    }
    async with serving(redis_url, key_prefix, tmp_path, **limits) as served:
        baseline, stop = rss_bytes(served), asyncio.Event()
        watcher = asyncio.create_task(healthz_and_rss(served, stop))
        client_limits = httpx.Limits(max_connections=len(bodies))
        async with httpx.AsyncClient(
            base_url=served.base_url, timeout=120, limits=client_limits
        ) as client:
            headers = {"content-type": "application/json"}
            answers = await asyncio.gather(
                *(client.post(EVENTS, content=body, headers=headers) for body in bodies)
            )
        stop.set()
        slowest, peak = await watcher
    refused = [answer for answer in answers if answer.status_code == 503]
    assert refused, "every body fitted: the budget was not put to the test"
    for answer in refused:
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["detail"]["setting"] == BUDGET_SETTING
    assert {answer.status_code for answer in answers} <= {202, 503}, log_tail(served.log)
    assert slowest < 1.0
    assert peak - baseline < RSS_GROWTH_BOUND, f"grew by {(peak - baseline) / MIB:.0f} MiB"


SLOW_TIMEOUT = 2.0
SLACK = 15.0  # closing is a timer on a loop that a busy CI machine may starve for seconds


async def trickle(port: int, kind: str) -> tuple[float, bytes]:
    """A slowloris connection: the head ("head") or the body ("body") of an events
    request sent one byte a second. Returns when the server closed it (seconds after
    opening) and the status line it answered, if any."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"POST {EVENTS} HTTP/1.1\r\nHost: driftmon\r\n".encode()
    if kind == "body":
        writer.write(request + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[")
    else:
        writer.write(request + b"X-Slow: ")
    answer = asyncio.create_task(reader.read())  # to the end: the server's close
    try:
        while not answer.done():
            writer.write(b" " if kind == "body" else b"a")
            await writer.drain()
            await asyncio.wait([answer], timeout=1.0)
    except ConnectionError:
        pass  # closed while writing
    received = await answer
    writer.close()
    return time.monotonic() - started, received.split(b"\r\n", 1)[0]


@pytest.mark.timeout(300)
async def test_slow_connections_are_closed_while_requests_go_on(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    timeouts = {
        "DRIFTMON_HEADER_READ_TIMEOUT_SECONDS": str(SLOW_TIMEOUT),
        "DRIFTMON_BODY_READ_TIMEOUT_SECONDS": str(SLOW_TIMEOUT),
    }
    kinds = ["head", "body"] * 25
    async with serving(redis_url, key_prefix, tmp_path, **timeouts) as served:
        slow = [asyncio.create_task(trickle(served.port, kind)) for kind in kinds]
        deadline = time.monotonic() + SLOW_TIMEOUT + SLACK
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            for round_ in itertools.count():  # normal requests, all along
                if all(task.done() for task in slow) or time.monotonic() > deadline:
                    break
                assert (await client.get("/healthz")).status_code == 200
                events = credit_events(2, seed=round_, prefix="normal")
                assert (await client.post(EVENTS, json=events)).status_code == 202
                await asyncio.sleep(0.25)
        still_open = sum(not task.done() for task in slow)
        for task in slow:
            task.cancel()
        assert still_open == 0, f"{still_open} slow connections still open"
        closed = [task.result() for task in slow]
    for kind, (after, status_line) in zip(kinds, closed, strict=True):
        assert SLOW_TIMEOUT - 0.5 <= after < SLOW_TIMEOUT + SLACK, (kind, after)
        # a slow body gets its 408; a head never finished has no request to answer
        assert status_line == (b"HTTP/1.1 408 Request Timeout" if kind == "body" else b"")
