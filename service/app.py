"""create_app(settings): the FastAPI app and its lifespan.

The lifespan opens Redis, the HTTP client, the detection executor, the scheduler, the
supervised stream consumer and the alert dispatcher, and closes them in reverse order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version as package_version

import httpx
from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from core.clock import Clock, SystemClock
from service import (
    docs_offline,
    routes_alerts,
    routes_cloudevents,
    routes_intake,
    routes_labeling,
    routes_labeling_export,
    routes_models,
    routes_ops,
    routes_runs,
)
from service.config import Settings
from service.errors import install_error_handlers
from service.executor import detection_executor
from service.limits import BoundedBodies
from service.metrics import Metrics
from service.tasks import (
    open_redis,
    running_dispatcher,
    running_stream_consumer,
    unmatched_halves_sweeper,
    warming_detection_pool,
)
from service.wiring import build_services

GZIP_MINIMUM_BYTES = 1024


def driftmon_version() -> str:
    try:
        return package_version("driftmon")
    except Exception:  # running from a source tree without metadata
        return "0+unknown"


@dataclass(frozen=True)
class Collaborators:
    """What a caller may pass in (tests pass a manual clock, a Redis, a client); the
    lifespan opens whatever is None."""

    clock: Clock
    metrics: Metrics
    redis: Redis | None = None
    http_client: httpx.AsyncClient | None = None


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
    redis: Redis | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The app; collaborators not passed in are opened by its lifespan."""
    metrics = Metrics(
        registry or CollectorRegistry(), driftmon_version(), settings.metrics_max_columns
    )
    given = Collaborators(clock or SystemClock(), metrics, redis, http_client)
    app = FastAPI(
        title="driftmon",
        version=driftmon_version(),
        lifespan=partial(lifespan, settings, given),
        # served by service/docs_offline.py from the package's own assets, never a CDN
        docs_url=None,
        redoc_url=None,
    )
    routers = (
        routes_intake,
        routes_cloudevents,
        routes_models,
        routes_runs,
        routes_alerts,
        routes_labeling,
        routes_labeling_export,
    )
    for module in (*routers, routes_ops, docs_offline):
        app.include_router(module.router)
    install_error_handlers(app, settings.redis_retry_after_seconds)
    app.add_middleware(BoundedBodies)  # body bytes in flight and read time (service/limits.py)
    # outermost: answers of 1 KiB and more are gzipped for clients that accept it (a run's
    # report shrinks about 3x); Starlette compresses large ones in a worker thread, and
    # level 6 is as small as 9 on the report for three quarters of the CPU
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=6)
    return app


@asynccontextmanager
async def lifespan(settings: Settings, given: Collaborators, app: FastAPI) -> AsyncIterator[None]:
    """Opens Redis, the HTTP client, the executor, the scheduler, the stream consumer, the
    sweeper and the alert dispatcher; the exit stack closes them in reverse order."""
    async with AsyncExitStack() as stack:
        redis = given.redis
        if redis is None:
            redis = await stack.enter_async_context(open_redis(settings))
        http = given.http_client
        if http is None:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        executor = stack.enter_context(
            detection_executor(
                settings.detection_workers, settings.detection_threads, settings.detection_pin_cpus
            )
        )
        services = build_services(settings, given.clock, redis, http, given.metrics, executor)
        if settings.scheduler_enabled:
            services.scheduler.start()
            stack.callback(services.scheduler.shutdown)
        app.state.services = services
        workers, timeout = settings.detection_workers, settings.warmup_timeout_seconds
        await stack.enter_async_context(
            warming_detection_pool(services, executor, workers, timeout)
        )
        await stack.enter_async_context(running_stream_consumer(settings, services))
        await stack.enter_async_context(unmatched_halves_sweeper(settings, services))
        await stack.enter_async_context(running_dispatcher(settings, services))
        await services.scheduler.sync()  # then every scheduler_sync_seconds, while it runs
        yield
