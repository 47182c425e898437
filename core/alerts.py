"""The alert types every layer shares: what a rule saw in one run (Observation), an
alert's state in Redis (AlertState), what a notification tells (AlertEvent), the outbox
entry that carries it to one channel (Notification), and a silence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.alert_config import AlertSeverity

AlertStatus = Literal["inactive", "pending", "firing", "resolved"]
# bad: the rule's condition held; good: it did not; unknown: the run could not tell
# (insufficient_data, error, no labels yet), which neither fires nor resolves
Verdict = Literal["bad", "good", "unknown"]
ChannelKind = Literal["webhook", "slack", "alertmanager"]
Transition = Literal["firing", "resolved", "reminder", "refresh"]


def alert_id(model: str, rule: str, column: str | None) -> str:
    """One alert's stable id: model, rule and column ("" when the rule names none)."""
    return f"{model}/{rule}/{column or ''}"


class Observation(BaseModel):
    """One rule's verdict on one run, for one column (or None: the rule as a whole)."""

    rule: str
    column: str | None = None
    verdict: Verdict
    value: float | None = None
    threshold: float | None = None
    # one line for people: what was seen, e.g. "age drifted: psi 0.31 >= 0.10"
    summary: str = ""


class RunWindow(BaseModel):
    start: str | None = None
    end: str | None = None
    events: int = 0


class AlertState(BaseModel):
    """One (model, rule, column) alert as stored in Redis."""

    model: str
    rule: str
    column: str | None = None
    severity: AlertSeverity = "warning"
    state: AlertStatus = "inactive"
    bad_runs: int = 0  # consecutive
    good_runs: int = 0  # consecutive
    since: str  # ISO 8601 UTC: when it entered `state`
    fired_at: str | None = None  # when it last began firing
    last_notified_at: str | None = None  # the last firing or reminder notification
    last_run_id: str | None = None
    last_run_at: str | None = None
    value: float | None = None
    threshold: float | None = None
    summary: str = ""
    window: RunWindow = Field(default_factory=RunWindow)

    @property
    def id(self) -> str:
        return alert_id(self.model, self.rule, self.column)


class AlertEvent(BaseModel):
    """What one notification says about one alert; the channels format it."""

    alert_id: str
    model: str
    rule: str
    kind: str  # the rule's kind, e.g. "column_drift"
    column: str | None = None
    severity: AlertSeverity
    status: Literal["firing", "resolved"]
    transition: Transition
    value: float | None = None
    threshold: float | None = None
    summary: str = ""
    run_id: str
    window: RunWindow = Field(default_factory=RunWindow)
    report_url: str | None = None
    # a PNG of the model's recent drift scores up to this run, against their thresholds
    plot_url: str | None = None
    starts_at: str
    ends_at: str | None = None  # set when resolved (and for Alertmanager's expiry)


class Notification(BaseModel):
    """One outbox entry: one message to one channel. `id` is the Standard Webhooks
    `webhook-id`: the same on every attempt, so receivers can dedupe."""

    id: str
    channel: str
    channel_kind: ChannelKind
    # deliveries with one order key go out one at a time, in enqueue order
    order_key: str
    created_at: float  # unix seconds
    events: list[AlertEvent] = Field(min_length=1)
    attempts: int = 0
    last_error: str | None = None


class Silence(BaseModel):
    id: str
    model: str
    rule: str
    column: str | None = None  # None: every column of the rule
    until: datetime  # timezone-aware
    comment: str = ""
    created_at: datetime

    def covers(self, state: AlertState, now: datetime) -> bool:
        return (
            self.model == state.model
            and self.rule == state.rule
            and (self.column is None or self.column == state.column)
            and now < self.until
        )
