"""Alertmanager's v2 API: POST {url}/api/v2/alerts with a JSON list of alerts.

Alertmanager treats an alert as firing until its endsAt passes, and expects clients to
re-send firing alerts while they fire. A firing alert's endsAt is therefore a lease:
the event's `ends_at` when the rule engine set one, else now + `resolve_timeout_seconds`
(e.g. 3 times the model's schedule), so that alerts of a driftmon that stopped running
expire instead of firing forever. A resolved alert's endsAt is its resolve time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.channels import JSON_HEADERS, ChannelConfigError, iso, json_body, require_env
from alerts.delivery import HttpRequest
from core.alert_config import AlertmanagerChannel
from core.alerts import AlertEvent, Notification

SERVICE = "driftmon"


def labels(event: AlertEvent) -> dict[str, str]:
    # the identity of the alert in Alertmanager: only stable, low-cardinality values
    result = {
        "alertname": event.rule,
        "model": event.model,
        "rule": event.rule,
        "severity": event.severity,
        "service": SERVICE,
    }
    if event.column:
        result["column"] = event.column
    return result


def description(event: AlertEvent) -> str:
    target = f"{event.model}, column {event.column}" if event.column else event.model
    text = f"{event.kind} on {target}: value {_num(event.value)}"
    text += f", threshold {_num(event.threshold)} (run {event.run_id})"
    return text


def alert(event: AlertEvent, now: float, resolve_timeout_seconds: float) -> dict[str, Any]:
    if event.status == "resolved":
        ends_at = event.ends_at or iso(now)
    else:
        ends_at = event.ends_at or iso(now + resolve_timeout_seconds)
    annotations = {
        "summary": event.summary or f"{event.rule} {event.status} on {event.model}",
        "description": description(event),
    }
    body: dict[str, Any] = {
        "labels": labels(event),
        "annotations": annotations,
        "startsAt": event.starts_at,
        "endsAt": ends_at,
    }
    if event.report_url:
        annotations["report_url"] = event.report_url
        # Alertmanager rejects a generatorURL that is not a URL, so none beats a blank
        body["generatorURL"] = event.report_url
    if event.plot_url:
        annotations["plot_url"] = event.plot_url
    return body


class AlertmanagerFormatter:
    min_interval_seconds = 0.0

    def __init__(
        self,
        config: AlertmanagerChannel,
        environ: Mapping[str, str],
        *,
        resolve_timeout_seconds: float,
    ) -> None:
        if resolve_timeout_seconds <= 0:
            raise ChannelConfigError("resolve_timeout_seconds must be positive")
        self._name = config.name
        self._url = str(config.url).rstrip("/") + "/api/v2/alerts"
        self._resolve_timeout = resolve_timeout_seconds
        self._headers = dict(JSON_HEADERS)
        if config.token_env is not None:
            token = require_env(environ, config.token_env, config.name)
            self._headers["authorization"] = f"Bearer {token}"

    @property
    def name(self) -> str:
        return self._name

    def request(self, notification: Notification, now: float) -> HttpRequest:
        alerts = [alert(event, now, self._resolve_timeout) for event in notification.events]
        return HttpRequest("POST", self._url, json_body(alerts), self._headers)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
