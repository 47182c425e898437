"""The compose stack's demo traffic: the bundled credit-risk sample, sent to a running
driftmon at a steady rate, drifting partway through.

    python deploy/compose/traffic.py --url http://127.0.0.1:8000 --drift-after 3000

It runs in the driftmon image (the `traffic` service of the `demo` profile), where the
sample generator is installed with driftmon. It waits for driftmon to be ready, uploads
the bundled training reference unless the model has one, then sends batches of
production-like events; from event `--drift-after` on, the traffic drifts (income up by
0.8 std, 25 points of the region mix moved from EU to APAC, debt ratios up). With
`--run-every N` it asks for a detection after every N events and prints the verdict;
else driftmon's schedule runs them. Keys come from the environment:
DRIFTMON_INGEST_KEY (scope ingest) sends events, DRIFTMON_ADMIN_KEY (scope admin)
uploads the reference and asks for runs. Exit 0 when done, 2 when driftmon is not
reachable or refuses a request (the message says which)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import click
import httpx

from service.sample_data.generate import MODEL_NAME, REFERENCE_CSV, production_events

READY_POLL_SECONDS = 1.0
# the first detection starts a worker that imports Evidently
RUN_TIMEOUT_SECONDS = 300.0


class TrafficError(RuntimeError):
    """driftmon did not answer as needed; the message says what was asked and why."""


@dataclass(frozen=True)
class Keys:
    """The Authorization headers: ingest sends events, admin uploads and runs."""

    ingest: dict[str, str]
    admin: dict[str, str]


@dataclass(frozen=True)
class Plan:
    """How much traffic, how fast, and when it drifts."""

    events: int  # 0: until stopped
    drift_after: int
    batch_size: int
    rate: float  # events a second; 0: as fast as driftmon takes them
    run_every: int  # 0: leave detections to driftmon's schedule
    seed: int
    # in every event id: a restarted generator sends new events, not duplicates
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def batch_at(self, sent: int) -> int:
        """Events in the batch starting at `sent`: never across the drift or a run."""
        size = self.batch_size
        for edge in (self.drift_after, self._next_run(sent), self.events):
            if edge > sent:
                size = min(size, edge - sent)
        return size

    def _next_run(self, sent: int) -> int:
        return (sent // self.run_every + 1) * self.run_every if self.run_every else 0


def expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise TrafficError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response.json() if response.content else None


def wait_until_ready(client: httpx.Client, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TrafficError(f"driftmon at {client.base_url} not ready in {wait_seconds:g}s")
        time.sleep(READY_POLL_SECONDS)


def ensure_reference(client: httpx.Client, admin: dict[str, str]) -> None:
    model = client.get(f"/v1/models/{MODEL_NAME}", headers=admin)
    if model.status_code == 200 and expect(model, 200).get("active_reference"):
        print(f"{MODEL_NAME} has a reference already", flush=True)
        return
    body = expect(
        client.put(
            f"/v1/models/{MODEL_NAME}/reference",
            params={"prediction": "prediction", "scores": "score", "label": "label"},
            content=REFERENCE_CSV.read_bytes(),
            headers={**admin, "content-type": "text/csv"},
        ),
        201,
    )
    print(f"uploaded the reference of {MODEL_NAME}: {body['rows']} rows", flush=True)


def send_batch(client: httpx.Client, ingest: dict[str, str], plan: Plan, sent: int) -> int:
    size = plan.batch_at(sent)
    drifted = sent >= plan.drift_after
    events = production_events(size, seed=plan.seed + sent, drift=drifted, start_index=sent)
    for event in events:
        event["event_id"] = f"traffic-{plan.session}-{event['event_id']}"
    body = expect(client.post(f"/v1/models/{MODEL_NAME}/events", json=events, headers=ingest), 202)
    if body["rejected"]:
        raise TrafficError(f"{body['rejected']} events rejected: {body['errors'][:3]}")
    return size


def report_run(client: httpx.Client, admin: dict[str, str]) -> None:
    run = expect(
        client.post(f"/v1/models/{MODEL_NAME}/runs", headers=admin, timeout=RUN_TIMEOUT_SECONDS),
        200,
    )
    drifted = [name for name, column in run.get("columns", {}).items() if column["drifted"]]
    print(
        f"run {run['run_id']}: {run['status']}, dataset drift {run.get('dataset_drift')}, "
        f"drifted columns {', '.join(drifted) or 'none'}",
        flush=True,
    )


def run(client: httpx.Client, plan: Plan, keys: Keys) -> None:
    ensure_reference(client, keys.admin)
    sent = 0
    started = time.monotonic()
    while not plan.events or sent < plan.events:
        if sent == plan.drift_after:
            print(f"event {sent}: the traffic drifts from here on", flush=True)
        sent += send_batch(client, keys.ingest, plan, sent)
        if plan.run_every and sent % plan.run_every == 0:
            print(f"sent {sent} events", flush=True)
            report_run(client, keys.admin)
        if plan.rate:  # on schedule from the start: a slow answer is caught up
            time.sleep(max(0.0, started + sent / plan.rate - time.monotonic()))
    print(f"done: sent {sent} events", flush=True)


def bearer(variable: str) -> dict[str, str]:
    key = os.environ.get(variable, "")
    return {"authorization": f"Bearer {key}"} if key else {}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="DRIFTMON_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--events", type=click.IntRange(min=0), default=0, help="stop after; 0: never")
@click.option("--drift-after", type=click.IntRange(min=0), default=3000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--rate", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="events a second; 0: as fast as driftmon takes them")  # fmt: skip
@click.option("--run-every", type=click.IntRange(min=0), default=0,
              help="ask for a detection after every N events; 0: driftmon's schedule")  # fmt: skip
@click.option("--seed", type=int, default=100, show_default=True)
@click.option("--wait", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="seconds to wait for driftmon to be ready")  # fmt: skip
def main(
    url: str,
    events: int,
    drift_after: int,
    batch_size: int,
    rate: float,
    run_every: int,
    seed: int,
    wait: float,
) -> None:
    """Send the bundled credit-risk sample to driftmon, drifting from --drift-after on."""
    plan = Plan(events, drift_after, batch_size, rate, run_every, seed)
    keys = Keys(ingest=bearer("DRIFTMON_INGEST_KEY"), admin=bearer("DRIFTMON_ADMIN_KEY"))
    with httpx.Client(base_url=url, timeout=60.0) as client:
        try:
            wait_until_ready(client, wait)
            run(client, plan, keys)
        except (TrafficError, httpx.HTTPError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    main()
