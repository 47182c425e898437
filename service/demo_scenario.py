"""What `driftmon demo` runs: how much traffic, the model's config, the server's options,
and the error that stops the demo."""

from __future__ import annotations

from typing import Any

from service.sample_data.generate import MODEL_NAME

EVENTS_PER_PHASE = 1500
BATCH_SIZE = 250
DEMO_DRIFT_SHARE = 0.3
# the labeling round: tasks each simulated annotator labels, and how often bob errs
LABELED_TASKS = 60
SLOPPY_SHARE = 0.15
# the variable the demo's webhook channel reads its signing secret from
WEBHOOK_SECRET_ENV = "DEMO_WEBHOOK_SECRET"


def models_yaml(receiver_port: int) -> str:
    """The demo model's config: its drift share, two alert rules that fire on the first
    bad run and resolve on the first good one (a demo cannot wait for k = 2), and two
    channels on the demo's local receiver."""
    receiver = f"http://127.0.0.1:{receiver_port}"
    return f"""\
# Written by `driftmon demo`. The demo's drifted traffic moves 3 of the 7 features
# (income, debt_ratio, region): under the default drift_share of 0.5 that would not
# count as dataset drift, so this model calls it drift from 30% of its columns on.
models:
  - name: {MODEL_NAME}
    drift_share: {DEMO_DRIFT_SHARE}
    labeling:                      # two annotators label every task, so they can disagree
      annotations_required: 2
      annotations_by_reason: {{}}
    alerts:
      - name: inputs-drifted
        kind: dataset_drift
        severity: warning
        fire_after: 1
        resolve_after: 1
      - name: column-drifted
        kind: column_drift
        column: "*"
        severity: info
        fire_after: 1
        resolve_after: 1
        channels: [team-webhook]
channels:
  - name: team-webhook
    kind: webhook
    url: {receiver}/webhook
    secret_env: {WEBHOOK_SECRET_ENV}
  - name: team-slack
    kind: slack
    url: {receiver}/slack
"""


SERVE_OPTIONS = (
    "--min-window-events",
    "200",
    "--window-max-events",
    str(EVENTS_PER_PHASE),
    "--detection-workers",
    "1",
    "--schedule-seconds",
    "3600",
)


class DemoError(RuntimeError):
    """A step of the demo did not get the answer it needs; the message says which."""


def bad_income_record(like: dict[str, Any]) -> dict[str, Any]:
    """A record with income as text: it alone is rejected, by index and field."""
    return {
        **like,
        "event_id": "evt-bad-income",
        "features": {**like["features"], "income": "52k"},
    }
