"""The collaborators of one running app, built by the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from collectors.ce_intake import CloudEventsIntake
from collectors.intake import Intake
from collectors.store import EventStore
from detectors.runner import DetectionRunner
from detectors.runs import RunStore
from service.clock import Clock
from service.config import EffectiveModelConfig, ModelConfig, Settings, effective_config
from service.keys import Keys
from service.metrics import Metrics
from service.registry import ModelRegistry


@dataclass
class Services:
    settings: Settings
    keys: Keys
    clock: Clock
    redis: Redis
    http: httpx.AsyncClient
    metrics: Metrics
    registry: ModelRegistry
    events: EventStore
    runs: RunStore
    runner: DetectionRunner
    intake: Intake
    cloudevents: CloudEventsIntake
    model_configs: dict[str, ModelConfig]

    def config_for(self, model: str) -> EffectiveModelConfig:
        return config_for(self.settings, self.model_configs, model)


def config_for(
    settings: Settings, model_configs: dict[str, ModelConfig], model: str
) -> EffectiveModelConfig:
    return effective_config(settings, model_configs.get(model) or ModelConfig(name=model))
