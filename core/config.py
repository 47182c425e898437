"""Per-model configuration: the models YAML, merged with process-wide defaults into what
a detection run uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.alert_config import AlertChannel, AlertRule, check_unique_rule_names
from core.labeling import LabelingConfig
from core.schema import PiiAction

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ModelDefaults(BaseModel):
    """The per-model values a model's YAML may leave out, from the process Settings."""

    schedule_seconds: float = 300.0
    window_seconds: float = 3600.0
    window_max_events: int = 100_000
    min_window_events: int = 200
    drift_share: float = 0.5
    drift_method_policy: Literal["distance", "evidently"] = "distance"
    effect_size_floor: float = 0.1
    reference_max_rows: int = 100_000
    min_labeled_events: int = 50
    multivariate_enabled: bool = True
    multivariate_sample: int = 2000
    multivariate_threshold: float = 0.6
    # bounds on one run's work and result size, whatever the window holds
    max_model_versions: int = 10
    max_findings_per_check: int = 20


DriftMethod = str
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


# the ones that compare categories: a `pii: hash` column is one
CATEGORICAL_METHODS = frozenset(
    {
        "TVD",
        "chisquare",
        "fisher_exact",
        "g_test",
        "hellinger",
        "jensenshannon",
        "kl_div",
        "psi",
        "z",
    }
)
PII_KEY_MIN_BYTES = 16


def _known_method(method: str | None) -> str | None:
    if method is not None and method not in DRIFT_METHODS:
        raise ValueError(f"unknown drift method {method!r}; use one of {sorted(DRIFT_METHODS)}")
    return method


class ColumnDrift(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: DriftMethod | None = None
    threshold: float | None = None
    # hash: values stored as keyed HMAC tokens, compared as categories; drop: never stored
    pii: PiiAction | None = None

    @field_validator("method")
    @classmethod
    def _method_known(cls, value: str | None) -> str | None:
        return _known_method(value)

    @model_validator(mode="after")
    def _pii_comparable(self) -> ColumnDrift:
        """A method the column's values could never meet fails at start, not at a run."""
        if self.pii == "drop" and (self.method is not None or self.threshold is not None):
            raise ValueError("a `pii: drop` column is never compared: drop its method/threshold")
        if self.pii == "hash" and self.method not in {None, *CATEGORICAL_METHODS}:
            raise ValueError(
                f"a `pii: hash` column is compared as categorical; {self.method!r} is not "
                f"a categorical method ({sorted(CATEGORICAL_METHODS)})"
            )
        return self


def pii_policy(columns: dict[str, ColumnDrift]) -> dict[str, PiiAction]:
    """The PII columns of a model's YAML, as a reference upload records them."""
    return {name: column.pii for name, column in columns.items() if column.pii is not None}


class PiiKeyError(ValueError):
    """The models file hashes PII columns but no usable key is set."""


def check_pii_key(models: dict[str, ModelConfig], key: bytes | None, setting: str) -> None:
    """At start-up: a models file that hashes a column needs the key (a replica hashing
    without it, or with another, would store tokens no other one matches)."""
    if key is not None and len(key) < PII_KEY_MIN_BYTES:
        raise PiiKeyError(f"{setting} is shorter than {PII_KEY_MIN_BYTES} bytes")
    hashed = sorted(
        f"{model.name}.{column}"
        for model in models.values()
        for column, action in pii_policy(model.columns).items()
        if action == "hash"
    )
    if hashed and key is None:
        raise PiiKeyError(
            f"the models file marks {', '.join(hashed)} `pii: hash`, but {setting} is not "
            "set: set it (in the environment, the same secret on every replica)"
        )


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
    # replaces the default rules (DRIFTMON_ALERT_RULES) when given; [] turns alerts off
    alerts: list[AlertRule] | None = None
    # replaces DRIFTMON_LABELING for this model when given
    labeling: LabelingConfig | None = None

    @field_validator("alerts")
    @classmethod
    def _unique_rules(cls, value: list[AlertRule] | None) -> list[AlertRule] | None:
        return None if value is None else check_unique_rule_names(value)

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
    # notification channels the models' alert rules route to (besides DRIFTMON_ALERT_CHANNELS)
    channels: list[AlertChannel] = Field(default_factory=list)


def read_models_file(path: Path | None) -> ModelsFile:
    if path is None:
        return ModelsFile()
    raw = yaml.safe_load(path.read_text()) or {}
    return ModelsFile.model_validate(raw)


def load_models_file(path: Path | None) -> dict[str, ModelConfig]:
    return {model.name: model for model in read_models_file(path).models}


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
    max_model_versions: int = 10
    max_findings_per_check: int = 20


def effective_config(defaults: ModelDefaults, model: ModelConfig) -> EffectiveModelConfig:
    def pick(own: float | int | None, default: float | int) -> float | int:
        return default if own is None else own

    return EffectiveModelConfig(
        name=model.name,
        schedule_seconds=pick(model.schedule_seconds, defaults.schedule_seconds),
        window_seconds=pick(model.window_seconds, defaults.window_seconds),
        window_max_events=int(pick(model.window_max_events, defaults.window_max_events)),
        min_window_events=int(pick(model.min_window_events, defaults.min_window_events)),
        drift_share=pick(model.drift_share, defaults.drift_share),
        drift_method=model.drift_method,
        drift_threshold=model.drift_threshold,
        drift_method_policy=model.drift_method_policy or defaults.drift_method_policy,
        effect_size_floor=pick(model.effect_size_floor, defaults.effect_size_floor),
        reference_max_rows=defaults.reference_max_rows,
        min_labeled_events=defaults.min_labeled_events,
        multivariate_enabled=defaults.multivariate_enabled,
        multivariate_sample=defaults.multivariate_sample,
        multivariate_threshold=pick(model.multivariate_threshold, defaults.multivariate_threshold),
        columns=model.columns,
        max_model_versions=defaults.max_model_versions,
        max_findings_per_check=defaults.max_findings_per_check,
    )
