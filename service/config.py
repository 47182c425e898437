"""One Settings object (environment, prefix DRIFTMON_) and per-model config from YAML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class Settings(BaseSettings):
    """Process-wide settings. Every field is `DRIFTMON_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DRIFTMON_", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="Redis 7+ URL; unset starts an embedded Redis under data_dir"
    )
    data_dir: Path = Field(default=Path("./data"), description="embedded Redis data and pidfile")
    key_prefix: str = Field(default="driftmon:", description="prefix of every Redis key")
    host: str = "127.0.0.1"
    port: int = 8000
    models_file: Path | None = Field(default=None, description="YAML file of model configs")

    schedule_seconds: float = Field(default=300.0, gt=0, description="detection interval")
    window_seconds: float = Field(default=3600.0, gt=0, description="window age")
    window_max_events: int = Field(default=100_000, gt=0, description="window size cap")
    min_window_events: int = Field(default=200, ge=1, description="below: insufficient_data")
    drift_share: float = Field(default=0.5, gt=0, le=1, description="dataset drift share")
    drift_method_policy: Literal["distance", "evidently"] = Field(
        default="distance", description="default methods: distances at all sizes, or Evidently's"
    )
    effect_size_floor: float = Field(
        default=0.1, ge=0, description="p-value methods also need this effect size to drift"
    )
    reference_max_rows: int = Field(
        default=100_000, gt=0, description="reference rows compared (deterministic sample)"
    )
    min_labeled_events: int = Field(default=50, ge=1, description="labels needed for quality")
    multivariate_enabled: bool = True
    multivariate_sample: int = Field(default=2000, ge=100, description="rows per side")
    multivariate_threshold: float = Field(default=0.6, gt=0.5, le=1, description="domain AUC")

    retention_seconds: float = Field(default=7 * 86400, gt=0, description="event retention age")
    retention_max_events: int = Field(default=1_000_000, gt=0, description="events kept/model")
    label_ttl_seconds: float = Field(default=30 * 86400, gt=0)
    run_history: int = Field(default=200, gt=0, description="run results kept per model")
    reference_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    events_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    detection_workers: int = Field(
        default=1, ge=0, description="processes running detections; 0 runs them in a thread"
    )
    detection_threads: int = Field(
        default=1, ge=1, description="OpenMP/BLAS threads per detection process"
    )
    detection_pin_cpus: bool = Field(
        default=True, description="hold detection processes on the last CPUs, when more exist"
    )
    scheduler_enabled: bool = True
    metrics_max_columns: int = Field(
        default=100, gt=0, description="per-column metrics exported per model, at most"
    )
    cloudevents_models: dict[str, str] = Field(
        default_factory=dict,
        description="JSON map of inferenceservicename, modelid, endpoint or ce-source to model",
    )
    cloudevents_join_ttl_seconds: float = Field(
        default=60.0, gt=0, description="how long a request waits for its response"
    )
    kpi_max_names: int = Field(default=50, gt=0, description="distinct KPIs per model")
    kpi_baseline_seconds: float = Field(
        default=7 * 86400, gt=0, description="KPI baseline: this long before the window"
    )

    streams: dict[str, str] = Field(
        default_factory=dict,
        description='Redis Streams to consume, as JSON {"stream": "model"}; an empty model '
        "means entries carry a `model` field",
    )
    schema_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="a reference uploaded through another replica applies here within this",
    )
    stream_group: str = "driftmon"
    stream_consumer: str | None = Field(
        default=None, description="consumer name; default: the host name (the pod's name)"
    )
    stream_batch_size: int = Field(default=500, gt=0, description="entries read per call")
    stream_batches_in_flight: int = Field(
        default=1, ge=1, description="batches being stored while the next is validated"
    )
    stream_block_ms: int = Field(default=1000, ge=0)
    stream_claim_idle_seconds: float = Field(
        default=60.0, gt=0, description="pending this long: claimed from its consumer"
    )
    stream_max_deliveries: int = Field(default=5, ge=1, description="then dead-lettered")
    stream_start_id: str = Field(default="0", description="where a new group starts")
    log_level: str = "info"


DriftMethod = str
ColumnKind = Literal["numerical", "categorical"]


# Evidently's registered drift methods (evidently.legacy.calculations.stattests);
# checked when the models file loads, so a typo fails at start, not at the next run
DRIFT_METHODS = frozenset(
    {
        "TVD",
        "anderson",
        "chisquare",
        "cramer_von_mises",
        "ed",
        "empirical_mmd",
        "es",
        "fisher_exact",
        "g_test",
        "hellinger",
        "jensenshannon",
        "kl_div",
        "ks",
        "mannw",
        "psi",
        "t_test",
        "wasserstein",
        "z",
    }
)


def _known_method(method: str | None) -> str | None:
    if method is not None and method not in DRIFT_METHODS:
        raise ValueError(f"unknown drift method {method!r}; use one of {sorted(DRIFT_METHODS)}")
    return method


class ColumnDrift(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: DriftMethod | None = None
    threshold: float | None = None

    @field_validator("method")
    @classmethod
    def _method_known(cls, value: str | None) -> str | None:
        return _known_method(value)


class ModelConfig(BaseModel):
    """One model's overrides, from the models YAML. Unset fields fall back to Settings."""

    model_config = ConfigDict(extra="forbid")

    name: str
    schedule_seconds: float | None = Field(default=None, gt=0)
    window_seconds: float | None = Field(default=None, gt=0)
    window_max_events: int | None = Field(default=None, gt=0)
    min_window_events: int | None = Field(default=None, ge=1)
    drift_share: float | None = Field(default=None, gt=0, le=1)
    drift_method: DriftMethod | None = None
    drift_threshold: float | None = None
    drift_method_policy: Literal["distance", "evidently"] | None = None
    effect_size_floor: float | None = Field(default=None, ge=0)
    multivariate_threshold: float | None = Field(default=None, gt=0.5, le=1)
    columns: dict[str, ColumnDrift] = Field(default_factory=dict)
    # positional names of the columns of an inference request's input tensor
    input_names: list[str] | None = None

    @field_validator("drift_method")
    @classmethod
    def _method_known(cls, value: str | None) -> str | None:
        return _known_method(value)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not MODEL_NAME_PATTERN.match(value):
            raise ValueError(f"model name {value!r} must match {MODEL_NAME_PATTERN.pattern}")
        return value


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelConfig] = Field(default_factory=list)


def load_models_file(path: Path | None) -> dict[str, ModelConfig]:
    if path is None:
        return {}
    raw = yaml.safe_load(path.read_text()) or {}
    parsed = ModelsFile.model_validate(raw)
    return {model.name: model for model in parsed.models}


class EffectiveModelConfig(BaseModel):
    """Settings and a model's YAML merged: what a detection run actually uses."""

    name: str
    schedule_seconds: float
    window_seconds: float
    window_max_events: int
    min_window_events: int
    drift_share: float
    drift_method: DriftMethod | None
    drift_threshold: float | None
    drift_method_policy: Literal["distance", "evidently"]
    effect_size_floor: float
    reference_max_rows: int
    min_labeled_events: int
    multivariate_enabled: bool
    multivariate_sample: int
    multivariate_threshold: float
    columns: dict[str, ColumnDrift]


def effective_config(settings: Settings, model: ModelConfig) -> EffectiveModelConfig:
    def pick(own: float | int | None, default: float | int) -> float | int:
        return default if own is None else own

    return EffectiveModelConfig(
        name=model.name,
        schedule_seconds=pick(model.schedule_seconds, settings.schedule_seconds),
        window_seconds=pick(model.window_seconds, settings.window_seconds),
        window_max_events=int(pick(model.window_max_events, settings.window_max_events)),
        min_window_events=int(pick(model.min_window_events, settings.min_window_events)),
        drift_share=pick(model.drift_share, settings.drift_share),
        drift_method=model.drift_method,
        drift_threshold=model.drift_threshold,
        drift_method_policy=model.drift_method_policy or settings.drift_method_policy,
        effect_size_floor=pick(model.effect_size_floor, settings.effect_size_floor),
        reference_max_rows=settings.reference_max_rows,
        min_labeled_events=settings.min_labeled_events,
        multivariate_enabled=settings.multivariate_enabled,
        multivariate_sample=settings.multivariate_sample,
        multivariate_threshold=pick(model.multivariate_threshold, settings.multivariate_threshold),
        columns=model.columns,
    )
