"""Alert rules and notification channels, as the models YAML (and Settings) declare them.

A model's `alerts:` list replaces the default rules (Settings) when present; `alerts: []`
turns its alerts off. Channels are declared once, at the top of the models YAML or in
DRIFTMON_ALERT_CHANNELS; a rule routes to the channels it names, or to all of them.
Secrets are never written here: a channel names the environment variable that holds it."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

AlertSeverity = Literal["info", "warning", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
QualityCheckName = Literal[
    "missing_column",
    "missing_values",
    "unseen_categories",
    "out_of_range",
    "type_mismatch",
    "new_column",
]
RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# every column of the model, one alert each
ANY_COLUMN = "*"


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=RULE_NAME)
    severity: AlertSeverity = "warning"
    # k: consecutive bad runs before the alert fires; None takes DRIFTMON_ALERT_FIRE_AFTER
    fire_after: int | None = Field(default=None, ge=1, le=1000)
    # m: consecutive good runs before it resolves; None takes DRIFTMON_ALERT_RESOLVE_AFTER
    resolve_after: int | None = Field(default=None, ge=1, le=1000)
    # channel names; None routes to every channel
    channels: list[str] | None = None


class DatasetDriftRule(RuleBase):
    """Bad when the run's dataset_drift is true (the drifted share at or over drift_share)."""

    kind: Literal["dataset_drift"]


class ColumnDriftRule(RuleBase):
    """Bad when the named column drifted; `column: "*"` watches every column, one alert
    each."""

    kind: Literal["column_drift"]
    column: str = Field(min_length=1, max_length=256)


class PredictionDriftRule(RuleBase):
    kind: Literal["prediction_drift"]


class ConfidenceDriftRule(RuleBase):
    """The model's score (confidence) distribution drifted."""

    kind: Literal["confidence_drift"]


class MultivariateShiftRule(RuleBase):
    """The domain classifier's AUC at or above the model's multivariate threshold."""

    kind: Literal["multivariate_shift"]


class DataQualityRule(RuleBase):
    """A finding at or above `min_severity`, one alert per column; `checks` narrows the
    kinds of finding that count."""

    kind: Literal["data_quality"]
    min_severity: AlertSeverity = "warning"
    checks: list[QualityCheckName] | None = None


PerformanceMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse"]
# error metrics: higher is worse
ERROR_METRICS = frozenset({"mae", "rmse"})


class PerformanceRule(RuleBase):
    """Model quality from labels: bad when the metric crosses `below`/`above`, or when it
    is worse than the reference's by `max_drop` (a share of the reference's value)."""

    kind: Literal["performance"]
    metric: PerformanceMetric
    below: float | None = None
    above: float | None = None
    max_drop: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _has_a_bound(self) -> PerformanceRule:
        if self.below is None and self.above is None and self.max_drop is None:
            raise ValueError("a performance rule needs `below`, `above` or `max_drop`")
        return self


class KpiRule(RuleBase):
    """A business KPI's window mean below/above a level, or moved by at least
    `max_change` (a share, either way) against its baseline period."""

    kind: Literal["kpi"]
    kpi: str = Field(min_length=1, max_length=128)
    below: float | None = None
    above: float | None = None
    max_change: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _has_a_bound(self) -> KpiRule:
        if self.below is None and self.above is None and self.max_change is None:
            raise ValueError("a kpi rule needs `below`, `above` or `max_change`")
        return self


class ModelVersionsRule(RuleBase):
    """A newer model version's predictions disagree with the stable one's (canary)."""

    kind: Literal["model_versions"]


class MonitorStaleRule(RuleBase):
    """No `ok` run for `intervals` schedule intervals, a model that never had one
    included (its runs error or stay insufficient_data)."""

    kind: Literal["monitor_stale"]
    intervals: int = Field(default=3, ge=1, le=10_000)


class AnnotatorAgreementRule(RuleBase):
    """The labeling loop's annotators, one alert each: bad when one agrees with the
    consensus on fewer than `below` of the answers compared with one, over the tasks
    annotated in the last `window_days`; unknown with fewer than `min_compared` of them.
    Opt-in: no default rule has it."""

    kind: Literal["annotator_agreement"]
    below: float = Field(default=0.7, gt=0, le=1)
    min_compared: int = Field(default=20, ge=1, le=1_000_000)
    window_days: float = Field(default=7.0, gt=0, le=366)


AlertRule = Annotated[
    DatasetDriftRule
    | ColumnDriftRule
    | PredictionDriftRule
    | ConfidenceDriftRule
    | MultivariateShiftRule
    | DataQualityRule
    | PerformanceRule
    | KpiRule
    | ModelVersionsRule
    | MonitorStaleRule
    | AnnotatorAgreementRule,
    Field(discriminator="kind"),
]


def default_rules() -> list[AlertRule]:
    """What a model without an `alerts:` section gets."""
    return [
        DatasetDriftRule(name="dataset-drift", kind="dataset_drift", severity="warning"),
        PredictionDriftRule(name="prediction-drift", kind="prediction_drift", severity="warning"),
        MultivariateShiftRule(
            name="multivariate-shift", kind="multivariate_shift", severity="warning"
        ),
        DataQualityRule(name="data-quality", kind="data_quality", min_severity="critical"),
        ModelVersionsRule(name="canary-disagrees", kind="model_versions", severity="warning"),
        MonitorStaleRule(name="monitor-stale", kind="monitor_stale", severity="critical"),
    ]


def check_unique_rule_names(rules: list[AlertRule]) -> list[AlertRule]:
    names = [rule.name for rule in rules]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"alert rule names must be unique; repeated: {duplicates}")
    return rules


# --- channels ------------------------------------------------------------------------------


def _env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


class ChannelBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=RULE_NAME)


class WebhookChannel(ChannelBase):
    """A generic JSON webhook, signed per Standard Webhooks with the secret (`whsec_`
    base64, or any string of 16+ bytes) in the environment variable `secret_env`."""

    kind: Literal["webhook"]
    url: HttpUrl
    secret_env: EnvName


class SlackChannel(ChannelBase):
    """A Slack incoming webhook. Its URL is a secret: `url_env` names the variable that
    holds it (`url` is for local receivers in tests and demos)."""

    kind: Literal["slack"]
    url_env: EnvName | None = None
    url: HttpUrl | None = None

    @model_validator(mode="after")
    def _one_url(self) -> SlackChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a slack channel needs exactly one of `url_env` and `url`")
        return self


class AlertmanagerChannel(ChannelBase):
    """Alertmanager's v2 API at `url` (e.g. http://alertmanager:9093); firing alerts are
    re-sent on every run while they fire, as Alertmanager expects of a client."""

    kind: Literal["alertmanager"]
    url: HttpUrl
    # optional bearer token (a proxy in front of Alertmanager), from the environment
    token_env: EnvName | None = None


AlertChannel = Annotated[
    WebhookChannel | SlackChannel | AlertmanagerChannel, Field(discriminator="kind")
]
