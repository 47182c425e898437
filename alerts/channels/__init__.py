"""Notification channels: each turns a Notification into one HTTP request (pure
formatting and signing; `alerts/delivery.py` sends it).

Secrets and secret URLs come from an injected environment, read once at construction:
a missing or unusable variable raises ChannelConfigError naming the variable (never its
value), so the service can refuse to start instead of failing at the first alert."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from alerts.delivery import HttpRequest
from core.alert_config import AlertChannel
from core.alerts import Notification

JSON_HEADERS: Mapping[str, str] = {"content-type": "application/json"}


class ChannelConfigError(ValueError):
    """A channel cannot be built from its config and environment."""


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    # the least time between two sends to this channel (Slack takes about one a second)
    min_interval_seconds: float

    def request(self, notification: Notification, now: float) -> HttpRequest:
        """The request for one attempt at `now` (signatures carry the attempt time)."""
        ...


def require_env(environ: Mapping[str, str], variable: str, channel: str) -> str:
    value = environ.get(variable, "").strip()
    if not value:
        raise ChannelConfigError(
            f"alert channel {channel!r}: environment variable {variable} is not set or empty"
        )
    return value


def json_body(payload: Any) -> bytes:
    # orjson writes NaN and infinities as null, which every JSON parser accepts
    return orjson.dumps(payload)


def iso(timestamp: float) -> str:
    """RFC 3339 UTC with milliseconds, as Alertmanager and webhook consumers parse it."""
    text = datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def build_channel(
    config: AlertChannel, environ: Mapping[str, str], *, resolve_timeout_seconds: float
) -> Channel:
    # imported here: the kinds import this module's helpers, so importing them at the
    # top would be circular
    from alerts.channels.alertmanager import AlertmanagerFormatter
    from alerts.channels.slack import SlackFormatter
    from alerts.channels.webhook import WebhookFormatter

    if config.kind == "webhook":
        return WebhookFormatter(config, environ)
    if config.kind == "slack":
        return SlackFormatter(config, environ)
    return AlertmanagerFormatter(config, environ, resolve_timeout_seconds=resolve_timeout_seconds)


def build_channels(
    configs: Iterable[AlertChannel],
    environ: Mapping[str, str],
    *,
    resolve_timeout_seconds: float,
) -> dict[str, Channel]:
    """Every configured channel by name; raises ChannelConfigError on the first bad one."""
    channels: dict[str, Channel] = {}
    for config in configs:
        if config.name in channels:
            raise ChannelConfigError(f"alert channel {config.name!r} is declared twice")
        channels[config.name] = build_channel(
            config, environ, resolve_timeout_seconds=resolve_timeout_seconds
        )
    return channels
