"""One Settings object for the process (environment, prefix DRIFTMON_). Per-model config
(the models YAML) lives in core.config; Settings hands it the defaults."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from collectors.events import RecordLimits
from core.config import ModelDefaults
from service.config_alerts import AlertSettings

# --- access control: API keys (service/auth.py checks them) ---------------------------------

Scope = Literal["ingest", "read", "admin", "label"]
MIN_SECRET_LENGTH = 16


def key_digest(key: str) -> str:
    """SHA-256 hex of a key: all that is kept of a configured key, and what a presented
    key is compared as."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(BaseModel):
    """One API key: `{"name", "key" | "sha256", "scopes"}`. A plaintext `key` is hashed
    as it is read and dropped; `sha256` lets a deployment keep no plaintext at all."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", repr=False)
    scopes: frozenset[Scope] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _hash_plaintext(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("key" not in data and "sha256" not in data):
            raise ValueError('each API key needs "key" or "sha256"')
        if "key" not in data:
            return {**data, "sha256": str(data["sha256"]).lower()}
        if "sha256" in data:
            raise ValueError('give "key" or "sha256", not both')
        key = data["key"]
        if not isinstance(key, str) or len(key) < MIN_SECRET_LENGTH:
            raise ValueError(f'"key" must be a string of {MIN_SECRET_LENGTH} characters or more')
        rest = {name: value for name, value in data.items() if name != "key"}
        return {**rest, "sha256": key_digest(key)}


API_KEY_LIST = TypeAdapter(list[ApiKey])


def read_api_keys_file(path: Path) -> list[ApiKey]:
    """The keys of a mounted Secret file (the JSON of DRIFTMON_API_KEYS). Errors name the
    file and the entry, never the file's content."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"DRIFTMON_API_KEYS_FILE {path}: {exc.strerror}") from None
    try:
        return API_KEY_LIST.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'file'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ValueError(f"DRIFTMON_API_KEYS_FILE {path}: {problems}") from None


def is_loopback(host: str) -> bool:
    """True for loopback addresses and `localhost`; a host name may resolve to anything."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(AlertSettings):
    """Process-wide settings. Every field is `DRIFTMON_<NAME>` in the environment."""

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
    label_ttl_seconds: float = Field(default=30 * 86400, gt=0)
    run_history: int = Field(default=200, gt=0, description="run results kept per model")
    reference_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    events_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
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

    # --- access control (service/auth.py; README "Access") -----------------------------------
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='JSON list of {"name", "key" | "sha256", "scopes"}; keys are hashed at '
        "start and only their hashes kept. None: every route is open (anonymous mode)",
    )
    api_keys_file: Path | None = Field(
        default=None, description="a file of more keys in the same JSON (a mounted Secret)"
    )
    allow_anonymous: bool = Field(
        default=False, description="serve without API keys on a host other than loopback"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token /metrics accepts besides read keys; set, /metrics needs one",
    )
    max_models: int = Field(
        default=1000, gt=0, description="models at most; creating one more answers 409"
    )

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _usable_token(cls, value: Any) -> Any:
        token = value.get_secret_value() if isinstance(value, SecretStr) else value
        if token == "":  # `DRIFTMON_METRICS_TOKEN=` reads as unset
            return None
        if isinstance(token, str) and len(token) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be {MIN_SECRET_LENGTH} characters or more")
        return value

    @model_validator(mode="after")
    def _merge_api_keys_file(self) -> Settings:
        from_file = [] if self.api_keys_file is None else read_api_keys_file(self.api_keys_file)
        # the same entry twice is harmless (settings rebuilt from a dump); a name or a key
        # given twice with different scopes is ambiguous
        keys = list(dict.fromkeys([*self.api_keys, *from_file]))
        for what, values in (("name", [k.name for k in keys]), ("key", [k.sha256 for k in keys])):
            if len(set(values)) != len(values):
                raise ValueError(f"API keys: the same {what} is configured twice")
        self.api_keys = keys
        return self

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

    # --- bounded intake: what one record, one body, one connection may hold -------------------
    max_value_length: int = Field(
        default=256,
        ge=1,
        description="characters of an event id, model_version, categorical value or class "
        "name; a record with a longer one is rejected",
    )
    timestamp_not_before: AwareDatetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC), description="a record timed earlier is rejected"
    )
    timestamp_max_future_seconds: float = Field(
        default=86400.0, gt=0, description="a record timed further ahead of now is rejected"
    )
    dedup_max_ids: int = Field(
        default=100_000,
        gt=0,
        description="event ids kept per model for idempotency besides those of stored events; "
        "a duplicate arriving after its id was dropped is stored again",
    )
    # parsed records take about 10 times their JSON: 32 MiB of bodies grew the process 0.3 GB
    max_body_bytes_in_flight: int = Field(
        default=32 * 1024 * 1024,
        gt=0,
        description="request body bytes held across all requests, from reading to answering; "
        "a body that does not fit within body_wait_seconds answers 503",
    )
    body_wait_seconds: float = Field(
        default=2.0, ge=0, description="how long a body may wait for room in that budget"
    )
    body_read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a body not received in full within this answers 408"
    )
    header_read_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a connection is closed when a request's head (line and headers) has not "
        "arrived this long after the connection opened or after its last answer",
    )
    max_head_bytes: int = Field(
        default=64 * 1024, ge=1024, description="a longer request head answers 400 and is closed"
    )

    def record_limits(self) -> RecordLimits:
        return RecordLimits(
            max_value_length=self.max_value_length,
            not_before=self.timestamp_not_before.timestamp(),
            max_future_seconds=self.timestamp_max_future_seconds,
        )
