"""Channels format and sign what real local receivers get: webhook signatures checked by
the Standard Webhooks library, Slack messages against Block Kit's limits, Alertmanager's
v2 body. The receiver helpers here serve test_dispatcher.py too."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from werkzeug import Request, Response

from alerts.channels import ChannelConfigError, build_channels
from alerts.channels.alertmanager import AlertmanagerFormatter
from alerts.channels.slack import SlackFormatter
from alerts.channels.webhook import WebhookFormatter
from alerts.delivery import DeliveryPolicy, HttpDelivery, HttpRequest
from core.alert_config import AlertChannel, AlertmanagerChannel, SlackChannel, WebhookChannel
from core.alerts import AlertEvent, Notification, RunWindow
from core.clock import ManualClock

# --- receivers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Request], Response]


def ok(_: Request) -> Response:
    return Response("ok", status=200)


class Receiver:
    """A real HTTP server on 127.0.0.1 (threaded: a slow answer blocks only itself) that
    records every request and answers with `answer`."""

    def __init__(self, port: int = 0) -> None:
        self.server = HTTPServer(host="127.0.0.1", port=port, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._dispatch)
        self.received: list[Received] = []
        self.answer: Answer = ok
        # set to free handlers that block (timeouts) before the server stops
        self.release = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.release.set()
        if self.server.is_running():
            self.server.stop()

    def reset(self) -> None:
        self.release.set()
        with self._lock:
            self.received = []
        self.answer = ok
        self.release = threading.Event()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def _dispatch(self, request: Request) -> Response:
        received = Received(
            request.method, request.full_path.rstrip("?"), dict(request.headers), request.get_data()
        )
        with self._lock:
            self.received.append(received)
        return self.answer(request)


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    # module-wide: stopping a server takes up to half a second
    first, second = Receiver(), Receiver()
    first.start()
    second.start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def receiver(receivers: tuple[Receiver, Receiver]) -> Iterator[Receiver]:
    receivers[0].reset()
    yield receivers[0]
    receivers[0].release.set()


@pytest.fixture
def other_receiver(receivers: tuple[Receiver, Receiver]) -> Iterator[Receiver]:
    receivers[1].reset()
    yield receivers[1]
    receivers[1].release.set()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env off: a proxy from the CI's environment must not sit between us and 127.0.0.1
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


# --- alerts ----------------------------------------------------------------------------


def make_event(**overrides: Any) -> AlertEvent:
    fields: dict[str, Any] = {
        "alert_id": "fraud/age-drift/age",
        "model": "fraud",
        "rule": "age-drift",
        "kind": "column_drift",
        "column": "age",
        "severity": "warning",
        "status": "firing",
        "transition": "firing",
        "value": 0.31,
        "threshold": 0.1,
        "summary": "age drifted: psi 0.31 >= 0.10",
        "run_id": "run-42",
        "window": RunWindow(start="2026-01-01T00:00:00Z", end="2026-01-01T01:00:00Z", events=900),
        "report_url": "https://driftmon.example/models/fraud/runs/run-42/report",
        "plot_url": "https://driftmon.example/models/fraud/runs/run-42/plot.png",
        "starts_at": "2026-01-01T01:00:05Z",
    }
    fields.update(overrides)
    return AlertEvent(**fields)


def make_notification(
    notification_id: str = "msg_1",
    *,
    channel: str = "hook",
    kind: str = "webhook",
    events: list[AlertEvent] | None = None,
    created_at: float | None = None,
    order_key: str | None = None,
) -> Notification:
    return Notification(
        id=notification_id,
        channel=channel,
        channel_kind=kind,
        order_key=order_key or notification_id,
        created_at=time.time() if created_at is None else created_at,
        events=events or [make_event()],
    )


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def send(client: httpx.AsyncClient, request: HttpRequest) -> None:
    result = await HttpDelivery(client, DeliveryPolicy(timeout_seconds=5), ManualClock()).send(
        request
    )
    assert result.outcome == "delivered", result


# --- webhook ---------------------------------------------------------------------------


def webhook(url: str, secret: str) -> WebhookFormatter:
    config = WebhookChannel(name="hook", kind="webhook", url=url, secret_env="HOOK_SECRET")
    return WebhookFormatter(config, {"HOOK_SECRET": secret})


async def test_webhook_signature_verifies_with_the_spec_library(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    secret = whsec()
    now = time.time()
    notification = make_notification("msg_2x7", created_at=now - 30)
    await send(client, webhook(receiver.url(), secret).request(notification, now))

    (got,) = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert got.headers["Webhook-Id"] == "msg_2x7"
    # the attempt's time, in whole seconds; the body's timestamp is the creation time
    assert got.headers["Webhook-Timestamp"] == str(int(now))
    assert payload["type"] == "driftmon.alert.firing"
    assert payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert set(data) == set(AlertEvent.model_fields)
    assert (data["model"], data["column"], data["value"]) == ("fraud", "age", 0.31)
    assert data["window"]["events"] == 900
    assert data["report_url"] == make_event().report_url
    assert data["plot_url"] == make_event().plot_url


async def test_a_plain_secret_is_used_as_bytes(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    secret = "a-plain-secret-of-32-characters!"
    resolved = make_event(status="resolved", transition="resolved", ends_at="2026-01-01T03:00Z")
    notification = make_notification(events=[resolved])
    await send(client, webhook(receiver.url(), secret).request(notification, time.time()))

    (got,) = receiver.received
    payload = Webhook(secret.encode()).verify(got.body, got.headers)
    assert payload["type"] == "driftmon.alert.resolved"


async def test_a_tampered_body_or_another_secret_fails_verification(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    secret = whsec()
    notification = make_notification()
    await send(client, webhook(receiver.url(), secret).request(notification, time.time()))

    (got,) = receiver.received
    tampered = got.body.replace(b"0.31", b"0.01")
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(whsec()).verify(got.body, got.headers)


def test_several_events_go_in_an_alerts_list() -> None:
    events = [
        make_event(status="resolved", transition="resolved"),
        make_event(column="income"),
    ]
    request = webhook("https://hooks.example/x", whsec()).request(
        make_notification(events=events), time.time()
    )
    payload = json.loads(request.body)
    assert payload["type"] == "driftmon.alert.firing"  # one of them fires
    assert [alert["column"] for alert in payload["data"]["alerts"]] == ["age", "income"]


def test_the_body_is_the_same_on_every_attempt_but_the_signature_is_not() -> None:
    channel = webhook("https://hooks.example/x", whsec())
    notification = make_notification()
    first = channel.request(notification, 1_800_000_000.0)
    second = channel.request(notification, 1_800_000_060.0)
    assert first.body == second.body
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "HOOK_SECRET is not set"),
        ({"HOOK_SECRET": "whsec_not*base64!"}, "not base64"),
        ({"HOOK_SECRET": "short-secret"}, "shorter than 16 bytes"),
    ],
)
def test_an_unusable_secret_is_a_config_error_that_does_not_show_it(
    environ: dict[str, str], message: str
) -> None:
    config = WebhookChannel(
        name="hook", kind="webhook", url="https://h.example", secret_env="HOOK_SECRET"
    )
    with pytest.raises(ChannelConfigError, match=message) as raised:
        WebhookFormatter(config, environ)
    for value in environ.values():
        assert value not in str(raised.value)


# --- Slack -----------------------------------------------------------------------------

BLOCK_TYPES = {"header", "section", "context", "divider", "actions"}


def check_text(text: dict[str, Any], limit: int, kinds: set[str]) -> None:
    assert text["type"] in kinds
    assert 1 <= len(text["text"]) <= limit


def check_block_kit(message: dict[str, Any]) -> None:
    """Block Kit's documented limits for a message's blocks."""
    assert isinstance(message["text"], str)
    assert message["text"].strip()  # the notification fallback
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        assert block["type"] in BLOCK_TYPES
        if block["type"] == "header":
            check_text(block["text"], 150, {"plain_text"})
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                check_text(block["text"], 3000, {"mrkdwn", "plain_text"})
            fields = block.get("fields", [])
            assert len(fields) <= 10
            for field in fields:
                check_text(field, 2000, {"mrkdwn", "plain_text"})
            if "accessory" in block:
                button = block["accessory"]
                assert button["type"] == "button"
                check_text(button["text"], 75, {"plain_text"})
                assert len(button["url"]) <= 3000
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            for element in block["elements"]:
                check_text(element, 3000, {"mrkdwn", "plain_text"})


def slack(url: str) -> SlackFormatter:
    return SlackFormatter(
        SlackChannel(name="team", kind="slack", url_env="SLACK_URL"), {"SLACK_URL": url}
    )


async def test_a_large_coalesced_run_stays_within_block_kit_limits(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    long = "x" * 5000
    events = [
        make_event(column=f"<col&{i}>{long}", summary=long, model="m" * 400) for i in range(90)
    ] + [make_event(column=f"c{i}", status="resolved", transition="resolved") for i in range(40)]
    notification = make_notification(kind="slack", channel="team", events=events)
    await send(client, slack(receiver.url("/services/T0/B0/tok")).request(notification, 0.0))

    (got,) = receiver.received
    message = got.json()
    check_block_kit(message)
    texts = json.dumps(message, ensure_ascii=False)
    # 20 shown by default: every one of them firing, since firing events come first
    assert "… and 110 more (90 firing, 40 resolved in all)" in texts
    assert "<col&" not in texts  # mrkdwn control characters escaped
    assert message["blocks"][0]["text"]["text"].startswith("🔴 90 drift alerts firing")


def test_firing_and_resolved_are_grouped_with_the_report_link() -> None:
    events = [
        make_event(
            status="resolved",
            transition="resolved",
            column="income",
            ends_at="2026-01-01T05:00:00Z",
        ),
        make_event(),
        make_event(column=None, rule="dataset-drift", kind="dataset_drift", report_url=None),
    ]
    message = json.loads(
        slack("https://hooks.slack.com/x").request(make_notification(events=events), 0.0).body
    )
    check_block_kit(message)
    texts = [json.dumps(block, ensure_ascii=False) for block in message["blocks"]]
    firing_at = next(i for i, t in enumerate(texts) if "*Firing* (2)" in t)
    resolved_at = next(i for i, t in enumerate(texts) if "*Resolved* (1)" in t)
    assert firing_at < resolved_at
    assert "✅" in texts[resolved_at + 1]
    assert "income" in texts[resolved_at + 1]
    assert "*Resolved*" in texts[resolved_at + 1]  # the resolve time, as a field
    buttons = [b["accessory"]["url"] for b in message["blocks"] if "accessory" in b]
    assert buttons == [make_event().report_url] * 2  # the event without a report has none
    assert "0.31 (threshold 0.1)" in texts[firing_at + 1]
    # the drift history as a link field (an image block would make Slack fetch it)
    fields = [f["text"] for f in message["blocks"][firing_at + 1]["fields"]]
    assert f"*Drift history*\n<{make_event().plot_url}|plot of the recent runs>" in fields
    assert not any(block["type"] == "image" for block in message["blocks"])
    assert "run-42" in texts[-1]
    assert message["blocks"][-1]["type"] == "context"


def test_a_resolution_only_message_says_so() -> None:
    events = [make_event(status="resolved", transition="resolved", ends_at="2026-01-01T05:00Z")]
    message = json.loads(
        slack("https://hooks.slack.com/x").request(make_notification(events=events), 0.0).body
    )
    check_block_kit(message)
    assert message["blocks"][0]["text"]["text"].startswith("✅ Resolved: 1 drift alert on fraud")
    assert message["text"].startswith("✅ Resolved")


def test_a_slack_url_from_the_environment_is_checked_without_showing_it() -> None:
    config = SlackChannel(name="team", kind="slack", url_env="SLACK_URL")
    with pytest.raises(ChannelConfigError, match="SLACK_URL is not set"):
        SlackFormatter(config, {})
    with pytest.raises(ChannelConfigError, match="not an http") as raised:
        SlackFormatter(config, {"SLACK_URL": "T000/B000/topsecret"})
    assert "topsecret" not in str(raised.value)


# --- Alertmanager ------------------------------------------------------------------------


async def test_alertmanager_gets_its_v2_alert_list(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    config = AlertmanagerChannel(
        name="am", kind="alertmanager", url=receiver.url("/am/"), token_env="AM_TOKEN"
    )
    channel = AlertmanagerFormatter(config, {"AM_TOKEN": "t0ken"}, resolve_timeout_seconds=900)
    events = [
        make_event(),
        make_event(
            column=None,
            rule="stale",
            kind="monitor_stale",
            ends_at="2026-01-01T09:00:00Z",
            report_url=None,
            plot_url=None,
            summary="",
        ),
        make_event(
            status="resolved",
            transition="resolved",
            column="income",
            ends_at="2026-01-01T04:00:00Z",
        ),
    ]
    now = 1_767_229_200.0  # 2026-01-01T01:00:00Z
    notification = make_notification(kind="alertmanager", channel="am", events=events)
    await send(client, channel.request(notification, now))

    (got,) = receiver.received
    assert (got.method, got.path) == ("POST", "/am/api/v2/alerts")
    assert got.headers["Authorization"] == "Bearer t0ken"
    firing, stale, resolved = got.json()
    assert firing == {
        "labels": {
            "alertname": "age-drift",
            "model": "fraud",
            "rule": "age-drift",
            "column": "age",
            "severity": "warning",
            "service": "driftmon",
        },
        "annotations": {
            "summary": "age drifted: psi 0.31 >= 0.10",
            "description": (
                "column_drift on fraud, column age: value 0.31, threshold 0.1 (run run-42)"
            ),
            "report_url": make_event().report_url,
            "plot_url": make_event().plot_url,
        },
        "startsAt": "2026-01-01T01:00:05Z",
        "endsAt": "2026-01-01T01:15:00.000Z",  # now + the resolve timeout
        "generatorURL": make_event().report_url,
    }
    assert "column" not in stale["labels"]
    assert stale["endsAt"] == "2026-01-01T09:00:00Z"  # the rule engine's own expiry
    assert stale["annotations"]["summary"] == "stale firing on fraud"
    assert "generatorURL" not in stale
    assert "plot_url" not in stale["annotations"]
    assert resolved["endsAt"] == "2026-01-01T04:00:00Z"


def test_build_channels_names_each_kind_and_refuses_duplicates() -> None:
    configs: list[AlertChannel] = [
        WebhookChannel(name="hook", kind="webhook", url="https://h.example", secret_env="S"),
        SlackChannel(name="team", kind="slack", url="https://hooks.slack.com/x"),
        AlertmanagerChannel(name="am", kind="alertmanager", url="http://am:9093"),
    ]
    channels = build_channels(configs, {"S": whsec()}, resolve_timeout_seconds=60)
    assert {name: type(c).__name__ for name, c in channels.items()} == {
        "hook": "WebhookFormatter",
        "team": "SlackFormatter",
        "am": "AlertmanagerFormatter",
    }
    with pytest.raises(ChannelConfigError, match="declared twice"):
        build_channels([configs[1], configs[1]], {}, resolve_timeout_seconds=60)
    with pytest.raises(ChannelConfigError, match="S is not set"):
        build_channels(configs, {}, resolve_timeout_seconds=60)
