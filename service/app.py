"""create_app(settings): the FastAPI app and its lifespan.

The lifespan opens Redis, the HTTP client, the detection executor and the scheduler,
and closes them in reverse order."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from functools import partial
from importlib.metadata import version as package_version

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from collectors.ce_intake import CloudEventSettings, CloudEventsIntake
from collectors.intake import Intake, IntakePolicy
from collectors.stream import StreamConsumer, StreamSettings
from core.clock import Clock, SystemClock
from core.config import load_models_file
from core.keys import Keys
from core.redis_client import connect_redis
from core.stores import StoreLimits, Stores
from core.stores.events import RetentionPolicy
from detectors.runner import DetectionRunner, RunnerSettings
from service import (
    routes_cloudevents,
    routes_intake,
    routes_models,
    routes_ops,
    routes_runs,
)
from service.config import Settings
from service.embedded_redis import EmbeddedRedis
from service.executor import detection_executor
from service.metrics import Metrics, MetricsSink
from service.scheduler import DetectionScheduler
from service.state import Services, config_for

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
    redis = connect_redis(url)
    try:
        await redis.ping()
        yield redis
    finally:
        await redis.aclose()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


@asynccontextmanager
async def running_stream_consumer(
    settings: Settings, services: Services
) -> AsyncIterator[StreamConsumer | None]:
    if not settings.streams:
        yield None
        return
    consumer = StreamConsumer(
        services.redis,
        services.keys,
        services.intake,
        stream_settings(settings),
        services.metrics,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop), name="stream-consumer")
    try:
        yield consumer
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


def driftmon_version() -> str:
    try:
        return package_version("driftmon")
    except Exception:  # running from a source tree without metadata
        return "0+unknown"


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    redis: Redis | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """Collaborators may be passed in (tests pass a manual clock, a Redis, a client);
    whatever is not passed is opened by the lifespan."""
    used_clock = clock or SystemClock()
    metrics = Metrics(
        registry or CollectorRegistry(), driftmon_version(), settings.metrics_max_columns
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            used_redis = (
                redis
                if redis is not None
                else await stack.enter_async_context(open_redis(settings))
            )
            http = (
                http_client
                if http_client is not None
                else await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            )
            executor = stack.enter_context(
                detection_executor(
                    settings.detection_workers,
                    settings.detection_threads,
                    settings.detection_pin_cpus,
                )
            )
            services = _build_services(settings, used_clock, used_redis, http, metrics, executor)
            scheduler = services.scheduler
            if settings.scheduler_enabled:
                scheduler.start()
                stack.callback(scheduler.shutdown)
            app.state.services = services
            services.stream_consumer = await stack.enter_async_context(
                running_stream_consumer(settings, services)
            )
            await stack.enter_async_context(unmatched_halves_sweeper(settings, services))
            for model in await services.stores.registry.names():
                scheduler.ensure(model, services.config_for(model).schedule_seconds)
            yield

    app = FastAPI(title="driftmon", version=driftmon_version(), lifespan=lifespan)
    for module in (routes_intake, routes_cloudevents, routes_models, routes_runs, routes_ops):
        app.include_router(module.router)
    return app


def _build_services(
    settings: Settings,
    clock: Clock,
    redis: Redis,
    http: httpx.AsyncClient,
    metrics: Metrics,
    executor: Executor,
) -> Services:
    keys = Keys(settings.key_prefix)
    stores = Stores.open(
        redis,
        keys,
        clock,
        StoreLimits(
            schema_cache_seconds=settings.schema_cache_seconds,
            run_history=settings.run_history,
            kpi_max_names=settings.kpi_max_names,
            kpi_retention_seconds=settings.retention_seconds,
        ),
        holder=f"{socket.gethostname()}:{os.getpid()}",
    )
    model_configs = load_models_file(settings.models_file)
    runner = DetectionRunner(
        stores,
        clock,
        executor,
        partial(config_for, settings, model_configs),
        sinks=[MetricsSink(metrics)],
        sink_failures=metrics,
        settings=RunnerSettings(kpi_baseline_seconds=settings.kpi_baseline_seconds),
    )
    intake = Intake(
        stores,
        clock,
        metrics,
        IntakePolicy(
            RetentionPolicy(settings.retention_seconds, settings.retention_max_events),
            settings.label_ttl_seconds,
        ),
    )
    cloudevents = CloudEventsIntake(
        stores.joins,
        intake,
        stores.registry,
        CloudEventSettings(
            models=settings.cloudevents_models,
            input_names={
                name: config.input_names
                for name, config in model_configs.items()
                if config.input_names
            },
            join_ttl_seconds=settings.cloudevents_join_ttl_seconds,
        ),
        metrics,
    )
    return Services(
        scheduler=DetectionScheduler(runner.run_scheduled),
        settings=settings,
        keys=keys,
        clock=clock,
        redis=redis,
        http=http,
        metrics=metrics,
        stores=stores,
        runner=runner,
        intake=intake,
        cloudevents=cloudevents,
        model_configs=model_configs,
    )
