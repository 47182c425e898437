"""The collaborators of one running app, built by the lifespan and handed to routes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from alerts.dispatcher import Dispatcher
from alerts.sink import ModelAlerting
from collectors.ce_intake import CloudEventsIntake
from collectors.intake import Intake
from collectors.stream import StreamConsumer
from core.clock import Clock
from core.config import EffectiveModelConfig, ModelConfig, effective_config
from core.keys import Keys
from core.labeling import LabelingConfig
from core.stores import Stores
from detectors.runner import DetectionRunner
from service.config import Settings
from service.limits import BodyLimits
from service.metrics import Metrics
from service.scheduler import DetectionScheduler
from service.supervisor import Supervisor


@dataclass
class PoolWarmup:
    """The detection pool's warm-up at start (service/tasks.py): /readyz answers 503
    until it has finished, warm or not (bounded by DRIFTMON_WARMUP_TIMEOUT_SECONDS)."""

    outcome: str = "warming"  # then "warm", "timed out" or "failed"
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.done.is_set()


@dataclass
class Services:
    settings: Settings
    keys: Keys
    clock: Clock
    redis: Redis
    http: httpx.AsyncClient
    metrics: Metrics
    stores: Stores
    runner: DetectionRunner
    intake: Intake
    cloudevents: CloudEventsIntake
    model_configs: dict[str, ModelConfig]
    scheduler: DetectionScheduler
    body_limits: BodyLimits  # request bodies in flight, read in time (service/limits.py)
    dispatcher: Dispatcher  # empties the alert outbox (alerts/dispatcher.py)
    stream_consumer: StreamConsumer | None = None
    # set while streams are consumed: /readyz reports whether the consumer is up
    stream_supervisor: Supervisor | None = None
    # set while the detection pool warms up at start: /readyz waits for it
    pool_warmup: PoolWarmup | None = None

    def config_for(self, model: str) -> EffectiveModelConfig:
        return config_for(self.settings, self.model_configs, model)

    def labeling_for(self, model: str) -> LabelingConfig:
        return labeling_for(self.settings, self.model_configs, model)

    def alerting_for(self, model: str) -> ModelAlerting:
        return alerting_for(self.settings, self.model_configs, model)


def config_for(
    settings: Settings, model_configs: dict[str, ModelConfig], model: str
) -> EffectiveModelConfig:
    return effective_config(
        settings.model_defaults(), model_configs.get(model) or ModelConfig(name=model)
    )


def labeling_for(
    settings: Settings, model_configs: dict[str, ModelConfig], model: str
) -> LabelingConfig:
    """The model's own `labeling:` when its YAML has one, else DRIFTMON_LABELING."""
    own = model_configs.get(model)
    return own.labeling if own is not None and own.labeling is not None else settings.labeling


def alerting_for(
    settings: Settings, model_configs: dict[str, ModelConfig], model: str
) -> ModelAlerting:
    """The model's own `alerts:` when its YAML has them, else DRIFTMON_ALERT_RULES."""
    own = model_configs.get(model)
    rules = own.alerts if own is not None and own.alerts is not None else settings.alert_rules
    schedule = config_for(settings, model_configs, model).schedule_seconds
    return ModelAlerting(rules=rules, schedule_seconds=schedule)


def services_of_app(app: FastAPI) -> Services:
    """The running app's collaborators (while its lifespan runs)."""
    services: Services = app.state.services
    return services
