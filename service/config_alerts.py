"""The alert settings of `Settings` (README "Alerts"): default rules and their hysteresis,
channels, delivery. Kept beside service/config.py so that each stays readable."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings

from core.alert_config import AlertChannel, AlertRule, check_unique_rule_names, default_rules


class AlertSettings(BaseSettings):
    alert_rules: list[AlertRule] = Field(
        default_factory=default_rules,
        description="JSON list of the alert rules of a model whose YAML has no `alerts:`; "
        "default: dataset, prediction and multivariate drift, critical data quality, "
        "canary disagreement, monitor stale",
    )
    alert_fire_after: int = Field(
        default=2, ge=1, description="k: consecutive bad runs before an alert fires"
    )
    alert_resolve_after: int = Field(
        default=2, ge=1, description="m: consecutive good runs before a firing alert resolves"
    )
    alert_repeat_seconds: float = Field(
        default=4 * 3600, gt=0, description="a reminder while an alert keeps firing, this often"
    )
    alert_resolved_keep_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        description="a resolved alert stays listed this long while its runs stay good",
    )
    alert_max_columns: int = Field(
        default=50, gt=0, description='alerts per rule of `column: "*"` (most drifted first)'
    )
    alert_channels: list[AlertChannel] = Field(
        default_factory=list,
        description="JSON list of notification channels, besides the models YAML's `channels:`",
    )
    public_url: AnyHttpUrl | None = Field(
        default=None,
        description="driftmon's URL as people reach it, for report links in alerts; default: "
        "http://HOST:PORT",
    )
    alert_allowed_hosts: list[str] | None = Field(
        default=None,
        description="JSON list of the host names alerts may be sent to; unset: any host",
    )
    alert_timeout_seconds: float = Field(
        default=5.0, gt=0, description="longest wait for a channel's answer to one delivery"
    )
    alert_max_age_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        description="a notification not delivered this long after it was written is "
        "dead-lettered (logged and counted)",
    )
    alert_backoff_base_seconds: float = Field(
        default=1.0, gt=0, description="first retry after up to this (exponential, full jitter)"
    )
    alert_backoff_cap_seconds: float = Field(
        default=300.0, gt=0, description="longest wait between two attempts"
    )
    alert_dispatch_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often the dispatcher looks for due notifications"
    )
    alert_dispatch_concurrency: int = Field(
        default=8, ge=1, description="deliveries in flight per replica"
    )
    alert_dispatch_enabled: bool = Field(
        default=True, description="run the dispatcher in this replica (any number may)"
    )

    @field_validator("alert_rules")
    @classmethod
    def _unique_rules(cls, value: list[AlertRule]) -> list[AlertRule]:
        return check_unique_rule_names(value)
