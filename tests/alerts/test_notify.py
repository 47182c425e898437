"""What a notification links to: the run's report and its drift-history plot, both
under the public URL, on every channel's events."""

from __future__ import annotations

from pydantic import TypeAdapter

from alerts.notify import Change, Links, notifications_for
from core.alert_config import AlertChannel, AlertRule
from core.alerts import AlertState
from core.results import RunResult

RULE: AlertRule = TypeAdapter(AlertRule).validate_python(
    {"name": "inputs-drifted", "kind": "dataset_drift"}
)
CHANNELS: list[AlertChannel] = [
    TypeAdapter(AlertChannel).validate_python(config)
    for config in (
        {"name": "hook", "kind": "webhook", "url": "https://hooks.example/x", "secret_env": "S"},
        {"name": "team", "kind": "slack", "url": "https://hooks.slack.com/x"},
        {"name": "am", "kind": "alertmanager", "url": "http://am:9093"},
    )
]


def test_links_are_under_the_public_url_with_or_without_a_trailing_slash() -> None:
    for base in ("https://driftmon.example.com/prefix", "https://driftmon.example.com/prefix/"):
        links = Links(base)
        run = "https://driftmon.example.com/prefix/v1/models/credit/runs/17-ab"
        assert links.report("credit", "17-ab") == f"{run}/report"
        assert links.plot("credit", "17-ab") == f"{run}/plot.png"


def test_every_channels_events_carry_the_report_and_the_plot() -> None:
    run = RunResult(run_id="17-ab", model="credit", status="ok", started_at="2026-01-01T00:00:00Z")
    state = AlertState(
        model="credit", rule="inputs-drifted", state="firing", since="2026-01-01T00:00:00Z"
    )
    change = Change(rule=RULE, state=state, notify="firing", silenced=False)
    links = Links("https://driftmon.example.com")
    notifications = notifications_for([change], run, CHANNELS, links, now=0.0)
    assert sorted(n.channel for n in notifications) == ["am", "hook", "team"]
    for notification in notifications:
        (event,) = notification.events
        assert event.report_url == links.report("credit", "17-ab")
        assert event.plot_url == links.plot("credit", "17-ab")
