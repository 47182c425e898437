"""A generic JSON webhook, signed per Standard Webhooks (https://www.standardwebhooks.com).

Body, the same on every attempt of a notification:

    {"type": "driftmon.alert.firing" | "driftmon.alert.resolved",
     "timestamp": "<when the notification was created, RFC 3339>",
     "data": {<one AlertEvent's fields>}}

A notification that coalesces several events sends `"data": {"alerts": [<event>, ...]}`
instead, each event with its own `status`; its type is `firing` when any event fires.
Receivers dedupe on the `webhook-id` header (the notification's id, stable across
retries); `webhook-timestamp` is the attempt's time, so a retry is never stale."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from alerts.channels import JSON_HEADERS, ChannelConfigError, iso, json_body, require_env
from alerts.delivery import HttpRequest
from core.alert_config import WebhookChannel
from core.alerts import AlertEvent, Notification

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 16


def decode_secret(value: str, variable: str, channel: str) -> bytes:
    """A `whsec_` secret is base64 (the spec's form); any other string is used as is."""
    if not value.startswith(SECRET_PREFIX):
        key = value.encode()
    else:
        encoded = value.removeprefix(SECRET_PREFIX)
        try:
            # padding added as the spec's own libraries do: unpadded secrets are common
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise ChannelConfigError(
                f"alert channel {channel!r}: {variable} starts with {SECRET_PREFIX} "
                "but the rest is not base64"
            ) from None
    if len(key) < MIN_SECRET_BYTES:
        raise ChannelConfigError(
            f"alert channel {channel!r}: the secret in {variable} is shorter than "
            f"{MIN_SECRET_BYTES} bytes"
        )
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: v1, then base64 HMAC-SHA256 of id.timestamp.body."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def event_type(events: list[AlertEvent]) -> str:
    firing = any(event.status == "firing" for event in events)
    return "driftmon.alert.firing" if firing else "driftmon.alert.resolved"


def payload(notification: Notification) -> dict[str, Any]:
    events = notification.events
    alerts = [event.model_dump(mode="json") for event in events]
    return {
        "type": event_type(events),
        "timestamp": iso(notification.created_at),
        "data": alerts[0] if len(alerts) == 1 else {"alerts": alerts},
    }


class WebhookFormatter:
    min_interval_seconds = 0.0

    def __init__(self, config: WebhookChannel, environ: Mapping[str, str]) -> None:
        self._name = config.name
        self._url = str(config.url)
        secret = require_env(environ, config.secret_env, config.name)
        self._key = decode_secret(secret, config.secret_env, config.name)

    @property
    def name(self) -> str:
        return self._name

    def request(self, notification: Notification, now: float) -> HttpRequest:
        body = json_body(payload(notification))
        timestamp = int(now)
        headers = {
            **JSON_HEADERS,
            "webhook-id": notification.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, notification.id, timestamp, body),
        }
        return HttpRequest("POST", self._url, body, headers)
