"""What the lifespan keeps running beside the routes: the Redis connection (URL or
embedded), the supervised stream consumer and the sweeper of unmatched CloudEvent
halves, and the warm-up of the detection pool. Each is an async context manager, so
the lifespan stops them in reverse order."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from contextlib import asynccontextmanager, suppress
from functools import partial

from redis.asyncio import Redis

from collectors.stream import StreamConsumer, StreamSettings
from core.redis_client import connect_redis
from service.config import Settings
from service.embedded_redis import EmbeddedRedis
from service.executor import warm_up
from service.state import PoolWarmup, Services
from service.supervisor import Backoff, Supervisor

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[Redis]:
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        await asyncio.to_thread(embedded.start)
        url = embedded.url
        log.info("embedded Redis at %s (data in %s)", url, settings.data_dir)
    redis = connect_redis(
        url,
        socket_timeout=settings.redis_socket_timeout_seconds,
        connect_timeout=settings.redis_connect_timeout_seconds,
        retry_seconds=settings.redis_retry_seconds,
    )
    try:
        await redis.ping()
        yield redis
    finally:
        await redis.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


@asynccontextmanager
async def running_stream_consumer(settings: Settings, services: Services) -> AsyncIterator[None]:
    """The consumer, restarted by its supervisor whenever something escapes run()."""
    if not settings.streams:
        yield
        return
    consumer = StreamConsumer(
        services.redis,
        services.keys,
        services.intake,
        stream_settings(settings),
        services.metrics,
    )
    stop = asyncio.Event()
    # one consumer across restarts: run() starts over from its own pending entries, and
    # its counts carry on
    supervisor = Supervisor(
        "stream consumer",
        partial(consumer.run, stop),
        stop,
        services.metrics.count_stream_consumer_restart,
        Backoff(max_seconds=settings.stream_restart_max_seconds),
    )
    task = asyncio.create_task(supervisor.run(), name="stream-consumer")
    await asyncio.sleep(0)  # the task starts: readiness sees it up from the first request
    services.stream_consumer, services.stream_supervisor = consumer, supervisor
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=settings.stream_block_ms / 1000 + 5)
        except TimeoutError:
            task.cancel()


@asynccontextmanager
async def unmatched_halves_sweeper(settings: Settings, services: Services) -> AsyncIterator[None]:
    """Counts CloudEvent halves that expired unjoined, every half TTL."""
    interval = max(0.5, settings.cloudevents_join_ttl_seconds / 2)

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await services.cloudevents.sweep(services.clock.now())
            except Exception:  # Redis away: the next sweep counts the same halves
                log.warning("sweeping unmatched CloudEvent halves failed", exc_info=True)

    task = asyncio.create_task(sweep_forever(), name="cloudevents-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def running_dispatcher(settings: Settings, services: Services) -> AsyncIterator[None]:
    """Delivers the outbox's notifications while the app runs; a notification in flight
    at shutdown is sent again after its lease by whichever replica claims it."""
    if not settings.alert_dispatch_enabled:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(services.dispatcher.run_forever(stop), name="alert-dispatcher")
    try:
        yield
    finally:
        stop.set()
        # past the timeout wait_for cancels it: its claims come back after their lease
        with suppress(TimeoutError):
            await asyncio.wait_for(task, timeout=settings.alert_timeout_seconds + 1)


def stream_settings(settings: Settings) -> StreamSettings:
    return StreamSettings(
        streams={stream: model or None for stream, model in settings.streams.items()},
        consumer=settings.stream_consumer or socket.gethostname(),
        group=settings.stream_group,
        batch_size=settings.stream_batch_size,
        batches_in_flight=settings.stream_batches_in_flight,
        block_ms=settings.stream_block_ms,
        claim_idle_ms=int(settings.stream_claim_idle_seconds * 1000),
        max_deliveries=settings.stream_max_deliveries,
        start_id=settings.stream_start_id,
    )


@asynccontextmanager
async def warming_detection_pool(
    services: Services, executor: Executor, workers: int, timeout_seconds: float
) -> AsyncIterator[PoolWarmup]:
    """Spawns and warms every detection worker beside the starting app, so that the
    first run costs what later ones do (spawning and importing took 13-23 s of it);
    /readyz answers 503 until then. Scheduled runs are not skipped meanwhile: they
    queue in the pool behind the warm-up."""
    warmup = PoolWarmup()
    services.pool_warmup = warmup
    task = asyncio.create_task(
        _warm(executor, workers, timeout_seconds, warmup), name="detection-pool-warmup"
    )
    try:
        yield warmup
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def _warm(
    executor: Executor, workers: int, timeout_seconds: float, warmup: PoolWarmup
) -> None:
    began = time.monotonic()
    try:
        async with asyncio.timeout(timeout_seconds):
            warm = await warm_up(executor, workers)
        warmup.outcome = "warm"
        log.info("%d detection worker(s) warm in %.1f s", len(warm), time.monotonic() - began)
    except TimeoutError:
        warmup.outcome = "timed out"
        log.warning(
            "the detection pool was not warm after %g s (DRIFTMON_WARMUP_TIMEOUT_SECONDS): "
            "ready anyway, the first runs pay the rest",
            timeout_seconds,
        )
    except Exception:  # a broken pool fails the runs themselves, which say so
        warmup.outcome = "failed"
        log.exception("warming the detection pool failed")
    finally:
        warmup.done.set()
