"""What `driftmon replay` reads: the reference and the history (CSV, Parquet or NDJSON,
by suffix), the model's configuration (the models file, else the process defaults) and
the reference prepared exactly as `PUT /v1/models/{model}/reference` prepares it, so
that its schema, version and stored Parquet are the service's. Every error names the
command-line flag it comes from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from alerts.lifecycle import LifecyclePolicy
from core.alert_config import AlertRule
from core.config import (
    EffectiveModelConfig,
    ModelConfig,
    effective_config,
    load_models_file,
    pii_policy,
)
from detectors.evaluate import ReferencePayload
from detectors.reference import (
    PreparedReference,
    ReferenceError,
    ReferencePolicy,
    ReferenceRoles,
    prepare_reference,
    to_parquet,
)
from service.config import Settings

CSV_SUFFIXES = frozenset({".csv"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl"})
SUFFIXES = sorted(CSV_SUFFIXES | PARQUET_SUFFIXES | NDJSON_SUFFIXES)
DEFAULT_TIMESTAMP_COLUMN = "timestamp"


class ReplayInputError(ValueError):
    """Input replay cannot use; `flag` names the command-line option it came from."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"{flag}: {message}")
        self.flag = flag


@dataclass(frozen=True)
class ModelSetup:
    """A model's detection config, alert rules and their hysteresis, as the service
    would merge them from its settings and the models file."""

    name: str
    config: EffectiveModelConfig
    rules: list[AlertRule]
    lifecycle: LifecyclePolicy
    max_alert_columns: int
    pii_key: bytes | None
    # OpenMP/BLAS threads of the evaluation, as a detection worker has
    threads: int = 1


@dataclass(frozen=True)
class PreparedInput:
    reference: PreparedReference
    payload: ReferencePayload
    history: pd.DataFrame


def _read_frame(path: Path, flag: str) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | PARQUET_SUFFIXES | NDJSON_SUFFIXES:
        raise ReplayInputError(flag, f"{path}: unknown format {suffix!r}; use one of {SUFFIXES}")
    if not path.is_file():
        raise ReplayInputError(flag, f"{path}: no such file")
    try:
        if suffix in CSV_SUFFIXES:
            # as the reference upload reads CSV: numbers exactly as written
            return pd.read_csv(path, float_precision="round_trip")
        if suffix in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        # no guessing of dates from column names: the timestamp column is parsed later
        return pd.read_json(path, lines=True, convert_dates=False)
    except Exception as exc:  # pandas raises many types for malformed files
        raise ReplayInputError(flag, f"{path}: not readable as {suffix[1:]} ({exc})") from exc


def read_history(path: Path) -> pd.DataFrame:
    frame = _read_frame(path, "--data")
    if frame.empty:
        raise ReplayInputError("--data", f"{path}: no rows")
    frame.columns = [str(column) for column in frame.columns]
    return frame


def _reference_body(path: Path, timestamp_column: str | None) -> tuple[bytes, list[str]]:
    """The bytes an upload of this file would carry, and its columns: CSV and Parquet as
    they are, so the version is the one the service gives them; NDJSON (which the upload
    does not take) as Parquet. A timestamp column is left out: times are not compared."""
    frame = _read_frame(path, "--reference")
    columns = [str(column) for column in frame.columns]
    if timestamp_column is not None and timestamp_column in columns:
        frame = frame.drop(columns=[timestamp_column])
        return to_parquet(frame), [name for name in columns if name != timestamp_column]
    if path.suffix.lower() in NDJSON_SUFFIXES:
        return to_parquet(frame), columns
    return path.read_bytes(), columns


def prepare_input(
    reference_path: Path,
    history_path: Path,
    roles: ReferenceRoles,
    model: ModelSetup,
    timestamp_column: str | None,
) -> PreparedInput:
    """The reference prepared as the upload route does (its PII policy from the models
    file), its stored Parquet, and the history. An event id column only the history
    has names the events without being a role of the reference."""
    history = read_history(history_path)
    body, columns = _reference_body(reference_path, timestamp_column or DEFAULT_TIMESTAMP_COLUMN)
    if roles.event_id is not None and roles.event_id not in columns:
        roles = replace(roles, event_id=None)
    policy = ReferencePolicy(pii=pii_policy(model.config.columns), pii_key=model.pii_key)
    try:
        prepared = prepare_reference(body, roles, policy)
    except ReferenceError as exc:
        message = str(exc).removeprefix(f"{exc.field}: ")
        raise ReplayInputError(_flag_of(exc.field), message) from exc
    payload = ReferencePayload(prepared.version, to_parquet(prepared.frame))
    return PreparedInput(prepared, payload, history)


def _flag_of(field_name: str) -> str:
    """The option behind a reference error's field: a role, else the reference itself."""
    options = {"prediction", "scores", "label", "categorical", "numerical", "event_id"}
    if field_name in options:
        return "--" + field_name.replace("_", "-")
    if field_name == "positive_class":
        return "--positive-class"
    return "--reference"


def _model_config(models_file: Path | None, name: str) -> ModelConfig:
    if models_file is None:
        return ModelConfig(name=name)
    if not models_file.is_file():
        raise ReplayInputError("--models-file", f"{models_file}: no such file")
    try:
        configs = load_models_file(models_file)
    except (ValidationError, ValueError, OSError) as exc:
        raise ReplayInputError("--models-file", f"{models_file}: {exc}") from exc
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none"
        raise ReplayInputError("--model", f"{name!r} is not in {models_file} (models: {known})")
    return configs[name]


def model_setup(settings: Settings, models_file: Path | None, name: str) -> ModelSetup:
    """The model's config as the service's `config_for` and `alerting_for` build it."""
    own = _model_config(models_file, name)
    secret = settings.pii_hmac_key
    return ModelSetup(
        name=name,
        config=effective_config(settings.model_defaults(), own),
        rules=list(own.alerts if own.alerts is not None else settings.alert_rules),
        lifecycle=LifecyclePolicy(
            fire_after=settings.alert_fire_after,
            resolve_after=settings.alert_resolve_after,
            repeat_seconds=settings.alert_repeat_seconds,
            resolved_keep_seconds=settings.alert_resolved_keep_seconds,
        ),
        max_alert_columns=settings.alert_max_columns,
        pii_key=None if secret is None else secret.get_secret_value().encode(),
        threads=settings.detection_threads,
    )
