"""The demo's alert steps: wait for what driftmon delivered to the local receiver, and
print it as the team would see it (the webhooks, their signature check, the Slack text)
beside what `GET /v1/alerts` says."""

from __future__ import annotations

from typing import Any

import httpx

from service.demo_client import expect
from service.demo_receiver import Inbox, Received

# the dispatcher polls the outbox every second; a loaded machine may take longer
DELIVERY_WAIT_SECONDS = 60.0
SHOWN = 6


def webhooks(received: list[Received], status: str) -> list[Received]:
    return [item for item in received if item.path == "/webhook" and _status(item) == status]


def _status(item: Received) -> str:
    data = item.body.get("data", {})
    return str(data.get("status", ""))


def slack_texts(received: list[Received]) -> list[str]:
    return [str(item.body.get("text", "")) for item in received if item.path == "/slack"]


def await_deliveries(inbox: Inbox, status: str, seen_slack: int) -> list[Received]:
    """What arrived once a webhook of `status` and one more Slack message are in."""

    def arrived(received: list[Received]) -> bool:
        return bool(webhooks(received, status)) and len(slack_texts(received)) > seen_slack

    return inbox.wait_for(arrived, DELIVERY_WAIT_SECONDS)


def show_deliveries(received: list[Received], status: str, seen_slack: int) -> list[str]:
    """Prints the webhooks of `status` and the newest Slack message; returns failures."""
    hooks = webhooks(received, status)
    verified = sum(1 for item in hooks if item.verified)
    print(f"   webhooks received ({status}): {len(hooks)}, signatures verified: {verified}")
    for item in hooks[:SHOWN]:
        data: dict[str, Any] = item.body["data"]
        print(
            f"     {data['status']:<9} {data['rule']:<16} {data['severity']:<8} {data['summary']}"
        )
    if len(hooks) > SHOWN:
        print(f"     ... and {len(hooks) - SHOWN} more")
    failures = []
    if not hooks:
        failures.append(f"no {status} webhook arrived within {DELIVERY_WAIT_SECONDS:.0f} s")
    elif verified != len(hooks):
        failures.append(f"{len(hooks) - verified} webhook signature(s) did not verify")
    texts = slack_texts(received)
    if len(texts) > seen_slack:
        print("   Slack message (its plain-text fallback):")
        for line in texts[-1].splitlines():
            print(f"     | {line}")
    else:
        failures.append(f"no Slack message arrived within {DELIVERY_WAIT_SECONDS:.0f} s")
    return failures


def show_alert_list(client: httpx.Client) -> None:
    alerts = expect(client.get("/v1/alerts"), 200)["alerts"]
    print(f"   GET /v1/alerts: {len(alerts)} alert(s)")
    for alert in alerts[:SHOWN]:
        column = f" [{alert['column']}]" if alert.get("column") else ""
        print(f"     {alert['state']:<9} {alert['rule']}{column} since {alert['since']}")
