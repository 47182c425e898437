"""The app's collaborators built from Settings: the stores, intake, the detection
runner with its run sinks, the CloudEvents intake and the scheduler."""

from __future__ import annotations

import os
import socket
from concurrent.futures import Executor
from functools import partial

import httpx
from redis.asyncio import Redis

from collectors.ce_intake import CloudEventSettings, CloudEventsIntake
from collectors.intake import Intake, IntakePolicy
from core.clock import Clock
from core.config import ModelConfig, check_pii_key, read_models_file
from core.keys import Keys
from core.stores import StoreLimits, Stores
from core.stores.events import RetentionPolicy
from detectors.runner import DetectionRunner, RunnerSettings
from labeling.sink import LabelingSink
from service.config import Settings
from service.limits import BodyLimits
from service.metrics import Metrics, MetricsSink
from service.scheduler import DetectionScheduler, registry_intervals
from service.state import Services, alerting_for, config_for, labeling_for
from service.wiring_alerts import (
    alert_channels,
    alert_sink,
    check_routes,
    dispatcher,
    open_channels,
)


def build_services(
    settings: Settings,
    clock: Clock,
    redis: Redis,
    http: httpx.AsyncClient,
    metrics: Metrics,
    executor: Executor,
) -> Services:
    keys = Keys(settings.key_prefix)
    stores = open_stores(settings, redis, keys, clock)
    models_file = read_models_file(settings.models_file)
    model_configs = {model.name: model for model in models_file.models}
    check_pii_key(model_configs, pii_key(settings), "DRIFTMON_PII_HMAC_KEY")
    model_config = partial(config_for, settings, model_configs)
    channel_configs = alert_channels(settings, models_file.channels)
    check_routes(settings, model_configs, channel_configs)
    channels = open_channels(settings, channel_configs)
    metrics.declare_channels(list(channels))
    metrics.declare_sinks(["alerts", "labeling"])
    # every scrape reads the alert states and the outbox from Redis: replicas agree
    metrics.attach_alert_sources(stores.outbox, stores.alerts)
    alerts = alert_sink(
        settings,
        stores,
        clock,
        metrics,
        partial(alerting_for, settings, model_configs),
        channel_configs,
    )
    labeling = partial(labeling_for, settings, model_configs)
    labeling_sink = LabelingSink(stores.label_queue, labeling, clock, metrics)
    runner = DetectionRunner(
        stores,
        clock,
        executor,
        model_config,
        sinks=[MetricsSink(metrics), alerts, labeling_sink],
        sink_failures=metrics,
        settings=RunnerSettings(
            kpi_baseline_seconds=settings.kpi_baseline_seconds,
            max_queued_runs=settings.max_queued_runs,
        ),
        labeling_for=labeling,
    )
    intake = Intake(stores, clock, metrics, intake_policy(settings))
    scheduler = DetectionScheduler(
        runner.run_scheduled,
        registry_intervals(stores.registry, lambda model: model_config(model).schedule_seconds),
        settings.scheduler_sync_seconds,
    )
    return Services(
        settings=settings,
        keys=keys,
        clock=clock,
        redis=redis,
        http=http,
        metrics=metrics,
        stores=stores,
        runner=runner,
        intake=intake,
        cloudevents=CloudEventsIntake(
            stores.joins,
            intake,
            stores.registry,
            cloudevent_settings(settings, model_configs),
            metrics,
        ),
        model_configs=model_configs,
        scheduler=scheduler,
        body_limits=BodyLimits.from_settings(settings),
        dispatcher=dispatcher(settings, stores, channels, http, clock, metrics),
    )


def open_stores(settings: Settings, redis: Redis, keys: Keys, clock: Clock) -> Stores:
    limits = StoreLimits(
        schema_cache_seconds=settings.schema_cache_seconds,
        run_history=settings.run_history,
        kpi_max_names=settings.kpi_max_names,
        kpi_retention_seconds=settings.retention_seconds,
    )
    # the lease holder names this replica (pod and process) in Redis
    return Stores.open(redis, keys, clock, limits, holder=f"{socket.gethostname()}:{os.getpid()}")


def intake_policy(settings: Settings) -> IntakePolicy:
    return IntakePolicy(
        RetentionPolicy(
            settings.retention_seconds, settings.retention_max_events, settings.dedup_max_ids
        ),
        settings.label_ttl_seconds,
        pii_key=pii_key(settings),
        limits=settings.record_limits(),
    )


def pii_key(settings: Settings) -> bytes | None:
    """The PII HMAC key, held in this process only: never stored, logged or sent."""
    secret = settings.pii_hmac_key
    return None if secret is None else secret.get_secret_value().encode()


def cloudevent_settings(
    settings: Settings, model_configs: dict[str, ModelConfig]
) -> CloudEventSettings:
    return CloudEventSettings(
        models=settings.cloudevents_models,
        input_names={
            name: config.input_names for name, config in model_configs.items() if config.input_names
        },
        join_ttl_seconds=settings.cloudevents_join_ttl_seconds,
    )
