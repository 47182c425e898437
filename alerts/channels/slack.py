"""A Slack incoming webhook, as a Block Kit message.

One message may coalesce several events of one run: a header, then the firing events
and the resolved ones in groups (🔴 / ✅), one section per event (what drifted, value
vs threshold, severity, since when, a link to the drift-history plot, a "View report"
button), "… and N more" past `max_alerts`, and a context line (run, window). Every text
is cut to Block Kit's limits, so a large run still posts a valid message rather than a
400."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from alerts.channels import JSON_HEADERS, ChannelConfigError, json_body, require_env
from alerts.delivery import HttpRequest
from core.alert_config import SlackChannel
from core.alerts import AlertEvent, Notification

# Block Kit's documented limits
MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
BUTTON_TEXT_CHARS = 75
BUTTON_URL_CHARS = 3000
# the notification text (push, screen readers); Slack itself cuts at 40,000
FALLBACK_CHARS = 3000
# header, two group headings, "… and N more", context
FIXED_BLOCKS = 5

Block = dict[str, Any]


def escape(text: str) -> str:
    """mrkdwn treats &, < and > as control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": cut(text, limit) or " "}


def number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def slack_date(value: str | None) -> str:
    """A date Slack shows in the reader's time zone, the ISO text as its fallback."""
    if not value:
        return "n/a"
    try:
        epoch = int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return escape(value)
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{escape(value)}>"


def subject(event: AlertEvent) -> str:
    return f"{event.rule} · {event.column}" if event.column else event.rule


def event_block(event: AlertEvent) -> Block:
    icon = "🔴" if event.status == "firing" else "✅"
    what = f"{event.kind} on `{event.column}`" if event.column else event.kind
    fields = [
        f"*Model*\n{escape(event.model)}",
        f"*What drifted*\n{escape(what)}",
        f"*Value*\n{number(event.value)} (threshold {number(event.threshold)})",
        f"*Severity*\n{event.severity}",
        f"*Since*\n{slack_date(event.starts_at)}",
    ]
    if event.status == "resolved":
        fields.append(f"*Resolved*\n{slack_date(event.ends_at)}")
    if event.transition in ("reminder", "refresh"):
        fields.append(f"*Note*\n{event.transition}: still firing")
    history = plot_field(event.plot_url)
    if history is not None:
        fields.append(history)
    summary = escape(event.summary) or event.status
    block: Block = {
        "type": "section",
        "text": mrkdwn(f"{icon} *{escape(subject(event))}*: {summary}", SECTION_CHARS),
        "fields": [mrkdwn(field, FIELD_CHARS) for field in fields[:MAX_FIELDS]],
    }
    url = event.report_url
    if url and len(url) <= BUTTON_URL_CHARS:
        block["accessory"] = {
            "type": "button",
            "text": {"type": "plain_text", "text": cut("View report", BUTTON_TEXT_CHARS)},
            "url": url,
        }
    return block


def plot_field(url: str | None) -> str | None:
    """A link to the drift-history picture. A link, not an image block: Slack fetches an
    image itself and refuses the whole message when it cannot, and the plot sits behind
    the API's keys and often inside a private network."""
    if not url:
        return None
    field = f"*Drift history*\n<{escape(url)}|plot of the recent runs>"
    return field if len(field) <= FIELD_CHARS else None  # a cut link would be broken


def header_text(firing: list[AlertEvent], resolved: list[AlertEvent]) -> str:
    models = ", ".join(sorted({event.model for event in firing + resolved}))
    if firing:
        text = f"🔴 {len(firing)} drift alert{'s' if len(firing) > 1 else ''} firing: {models}"
        if resolved:
            text += f" ({len(resolved)} resolved)"
    else:
        text = f"✅ Resolved: {len(resolved)} drift alert{'s' if len(resolved) > 1 else ''}"
        text += f" on {models}"
    return cut(text, HEADER_CHARS)


def context_block(events: list[AlertEvent]) -> Block:
    first = events[0]
    window = first.window
    text = f"driftmon · run `{escape(first.run_id)}`"
    if window.start and window.end:
        text += f" · window {slack_date(window.start)} → {slack_date(window.end)}"
        text += f" ({window.events} events)"
    return {"type": "context", "elements": [mrkdwn(text, SECTION_CHARS)]}


def fallback_text(header: str, shown: list[AlertEvent]) -> str:
    # the top-level text is mrkdwn too
    lines = [escape(header)]
    lines += [f"{'✅' if e.status == 'resolved' else '🔴'} {escape(subject(e))}" for e in shown]
    return cut("\n".join(lines), FALLBACK_CHARS)


def message(events: list[AlertEvent], max_alerts: int) -> dict[str, Any]:
    """The Block Kit payload for one notification's events."""
    firing = [event for event in events if event.status == "firing"]
    resolved = [event for event in events if event.status == "resolved"]
    header = header_text(firing, resolved)
    blocks: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": header}}]
    budget = max_alerts
    shown: list[AlertEvent] = []
    for title, group in (("🔴 *Firing*", firing), ("✅ *Resolved*", resolved)):
        take = group[:budget]
        if not take:
            continue
        blocks.append({"type": "section", "text": mrkdwn(f"{title} ({len(group)})", 100)})
        blocks += [event_block(event) for event in take]
        shown += take
        budget -= len(take)
    hidden = len(events) - len(shown)
    if hidden:
        more = f"… and {hidden} more ({len(firing)} firing, {len(resolved)} resolved in all)"
        blocks.append({"type": "section", "text": mrkdwn(more, SECTION_CHARS)})
    blocks.append(context_block(events))
    return {"text": fallback_text(header, shown), "blocks": blocks}


class SlackFormatter:
    # Slack allows an incoming webhook about one message a second, and answers 429 beyond
    min_interval_seconds = 1.0

    def __init__(
        self, config: SlackChannel, environ: Mapping[str, str], *, max_alerts: int = 20
    ) -> None:
        if not 1 <= max_alerts <= MAX_BLOCKS - FIXED_BLOCKS:
            raise ChannelConfigError(f"max_alerts must be 1..{MAX_BLOCKS - FIXED_BLOCKS}")
        self._name = config.name
        self._max_alerts = max_alerts
        if config.url_env is not None:
            self._url = require_env(environ, config.url_env, config.name)
            _check_url(self._url, config.url_env, config.name)
        else:
            self._url = str(config.url)

    @property
    def name(self) -> str:
        return self._name

    def request(self, notification: Notification, now: float) -> HttpRequest:
        body = json_body(message(notification.events, self._max_alerts))
        return HttpRequest("POST", self._url, body, JSON_HEADERS)


def _check_url(url: str, variable: str, channel: str) -> None:
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL:
        scheme = ""
    if scheme not in ("http", "https"):
        # the value is the secret: name the variable only
        raise ChannelConfigError(f"alert channel {channel!r}: {variable} is not an http(s) URL")
