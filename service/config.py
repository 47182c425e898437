"""One Settings object for the process (environment, prefix DRIFTMON_). Per-model config
(the models YAML) lives in core.config; Settings hands it the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.config import ModelDefaults


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
    scheduler_sync_seconds: float = Field(
        default=5.0,
        gt=0,
        description="how often the scheduler reads the registry: models uploaded through "
        "another replica are scheduled, deleted ones unscheduled, changed intervals applied",
    )
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
    stream_restart_max_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a failed stream consumer restarts after 0.1 s, doubling up to this",
    )
    log_level: str = "info"

    def model_defaults(self) -> ModelDefaults:
        """What a model without its own YAML entry gets."""
        return ModelDefaults.model_validate(
            self.model_dump(include=set(ModelDefaults.model_fields))
        )
