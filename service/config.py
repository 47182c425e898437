"""One Settings object for the process (environment, prefix DRIFTMON_). Per-model config
(the models YAML) lives in core.config; Settings hands it the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from core.config import ModelDefaults
from service.config_access import (
    API_KEY_LIST,
    MIN_SECRET_LENGTH,
    AccessSettings,
    ApiKey,
    Scope,
    is_loopback,
    key_digest,
    read_api_keys_file,
)
from service.config_alerts import AlertSettings
from service.config_intake import IntakeSettings
from service.config_labeling import LabelingSettings

# the names importers take from here, wherever they are defined
__all__ = [
    "API_KEY_LIST",
    "MIN_SECRET_LENGTH",
    "ApiKey",
    "Scope",
    "Settings",
    "is_loopback",
    "key_digest",
    "read_api_keys_file",
]


class Settings(AccessSettings, IntakeSettings, AlertSettings, LabelingSettings):
    """Process-wide settings. Every field is `DRIFTMON_<NAME>` in the environment. The
    access, bounded-intake and alert fields are in service/config_access.py,
    service/config_intake.py and service/config_alerts.py."""

    # an invalid value is not echoed: API keys, tokens and Redis passwords are settings
    model_config = SettingsConfigDict(
        env_prefix="DRIFTMON_", extra="ignore", hide_input_in_errors=True
    )

    redis_url: str | None = Field(
        default=None, description="Redis 7+ URL; unset starts an embedded Redis under data_dir"
    )
    data_dir: Path = Field(default=Path("./data"), description="embedded Redis data and pidfile")
    key_prefix: str = Field(default="driftmon:", description="prefix of every Redis key")
    # bounds on every Redis call: a stopped or hung Redis is answered with a 503 in seconds
    redis_socket_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="longest wait for a Redis reply (a blocking stream read waits its block "
        "time more); a request that waited this long answers 503",
    )
    redis_connect_timeout_seconds: float = Field(
        default=1.0, gt=0, description="longest wait for a connection to Redis"
    )
    redis_retry_seconds: float = Field(
        default=1.0,
        ge=0,
        description="a refused or dropped Redis connection is retried with backoff this long "
        "(a restart rides through), then the request answers 503; timeouts are not retried",
    )
    redis_retry_after_seconds: int = Field(
        default=2, ge=1, description="Retry-After of the 503 answered while Redis is unavailable"
    )
    host: str = Field(
        default="127.0.0.1",
        description="bind address; beyond loopback needs API keys (or allow_anonymous)",
    )
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port")
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
    multivariate_enabled: bool = Field(
        default=True, description="domain-classifier check of the joint distribution"
    )
    multivariate_sample: int = Field(default=2000, ge=100, description="rows per side")
    multivariate_threshold: float = Field(default=0.6, gt=0.5, le=1, description="domain AUC")
    # --- detection bounds: a window's content or a flood of runs must not exhaust it ----------
    max_model_versions: int = Field(
        default=10, ge=2, description="model versions compared per run; the rest are counted"
    )
    max_findings_per_check: int = Field(
        default=20, ge=1, description="data-quality findings (and new columns) per check"
    )
    max_queued_runs: int = Field(
        default=4,
        ge=1,
        description="runs in flight across models; a manual run beyond gets 429 (scheduled "
        "ones wait)",
    )

    retention_seconds: float = Field(default=7 * 86400, gt=0, description="event retention age")
    retention_max_events: int = Field(default=1_000_000, gt=0, description="events kept/model")
    label_ttl_seconds: float = Field(
        default=30 * 86400, gt=0, description="how long ground-truth labels are kept"
    )
    run_history: int = Field(default=200, gt=0, description="run results kept per model")
    reference_max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="largest reference upload (413 over it)"
    )
    events_max_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="largest intake body (413 over it)"
    )
    # --- PII and reference width (README "Models YAML") ---------------------------------------
    pii_hmac_key: SecretStr | None = Field(
        default=None,
        description="key of the HMAC that pseudonymises `pii: hash` columns: from the "
        "environment only, kept in memory only, the same on every replica (16+ bytes)",
    )
    reference_max_columns: int = Field(
        default=1000,
        gt=0,
        description="columns of a reference upload besides its role and `pii: drop` columns; "
        "more answer 413 (detection time grows with them)",
    )
    detection_workers: int = Field(
        default=1, ge=0, description="processes running detections; 0 runs them in a thread"
    )
    detection_threads: int = Field(
        default=1, ge=1, description="OpenMP/BLAS threads per detection process"
    )
    warmup_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="at start, /readyz answers 503 until every detection process is spawned "
        "and warm, or this long at most (then the first runs pay the rest)",
    )
    detection_pin_cpus: bool = Field(
        default=True, description="hold detection processes on the last CPUs, when more exist"
    )
    scheduler_enabled: bool = Field(
        default=True, description="run detections on the schedule (false: only on request)"
    )
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
    stream_group: str = Field(
        default="driftmon", description="consumer group the replicas share on each stream"
    )
    stream_consumer: str | None = Field(
        default=None, description="consumer name; default: the host name (the pod's name)"
    )
    stream_batch_size: int = Field(default=500, gt=0, description="entries read per call")
    stream_batches_in_flight: int = Field(
        default=1, ge=1, description="batches being stored while the next is validated"
    )
    stream_block_ms: int = Field(
        default=1000, ge=0, description="how long one stream read waits for new entries"
    )
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
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        default="info", description="log level of driftmon and uvicorn"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: object) -> object:
        # INFO and info alike, as logging takes them; uvicorn knows only lower case
        return value.lower() if isinstance(value, str) else value

    def model_defaults(self) -> ModelDefaults:
        """What a model without its own YAML entry gets."""
        return ModelDefaults.model_validate(
            self.model_dump(include=set(ModelDefaults.model_fields))
        )

    # --- access control: the keys are in AccessSettings (README "Access") ----------------
    max_models: int = Field(
        default=1000, gt=0, description="models at most; creating one more answers 409"
    )

    def binding_refusal(self) -> str | None:
        """Why `host` must not be served: beyond loopback without API keys, unless
        DRIFTMON_ALLOW_ANONYMOUS says so. None: go ahead."""
        if self.api_keys or self.allow_anonymous or is_loopback(self.host):
            return None
        return (
            f"refusing to serve on {self.host} without API keys: anyone who reaches it could "
            "replace references and read every model's data. Set DRIFTMON_API_KEYS (or "
            "DRIFTMON_API_KEYS_FILE), bind to 127.0.0.1, or set DRIFTMON_ALLOW_ANONYMOUS=true "
            "to serve without keys anyway"
        )
