"""Shared pieces of the alert integration tests: a real local HTTP receiver that records
what it got and answers as scripted, settings with alert channels, drifted and clean
windows, and polling with generous deadlines (the tests run on loaded CI machines)."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from core.clock import ManualClock
from service.config import Settings
from tests.data import credit_events
from tests.fixtures_app import Harness, harness_settings, upload_credit_reference

SECRET_ENV = "DRIFTMON_TEST_ALERT_WEBHOOK_SECRET"
SECRET = "whsec_" + base64.b64encode(b"driftmon-alert-tests-secret-0123").decode()
MODEL = "credit"
# the newest this many events make the window: clean events posted after drifted ones
# make a clean window without moving the clock (signatures carry real time)
WINDOW_EVENTS = 500
DATASET_RULE = "inputs-drifted"
AGE_RULE = "age-drift"
RULES: list[dict[str, object]] = [
    {"name": DATASET_RULE, "kind": "dataset_drift", "severity": "warning"},
    {"name": AGE_RULE, "kind": "column_drift", "column": "age", "severity": "critical"},
]
DATASET_ALERT = f"{MODEL}/{DATASET_RULE}/"
AGE_ALERT = f"{MODEL}/{AGE_RULE}/age"
# seeds whose 500 events drift in no column (checked by `calm`)
CLEAN_SEEDS = (24, 33, 39)
DEADLINE_SECONDS = 30.0


class WallClock(ManualClock):
    """Real time, so that retries fall due, the scheduler's ticks match the run leases
    and the receivers' signature checks accept the webhook timestamps."""

    def now(self) -> float:
        return time.time()


# --- the receiver ----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when it arrived
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int  # what the receiver answered

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def acked(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A real threaded HTTP server on 127.0.0.1. It answers the scripted (status,
    headers) pairs in turn, then `status` (200 unless changed)."""

    def __init__(self, port: int = 0) -> None:
        self.server = HTTPServer(host="127.0.0.1", port=port, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._answer)
        self.status = 200
        self._script: list[tuple[int, dict[str, str]]] = []
        self._received: list[Received] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    def script(self, *answers: tuple[int, dict[str, str]]) -> None:
        with self._lock:
            self._script = list(answers)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def acked(self, path: str = "/hook") -> list[Received]:
        return [r for r in self.received(path) if r.acked]

    def _answer(self, request: Request) -> Response:
        with self._lock:
            status, headers = self._script.pop(0) if self._script else (self.status, {})
            self._received.append(
                Received(
                    at=time.monotonic(),
                    path=request.path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=request.get_data(),
                    status=status,
                )
            )
        return Response("ok" if status < 300 else "no", status=status, headers=headers)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return SECRET


# --- what a webhook receiver that dedupes on webhook-id keeps -----------------------------


def verified(received: Received) -> dict[str, Any]:
    """The payload, once its Standard Webhooks signature checks out (raises if not)."""
    payload: dict[str, Any] = Webhook(SECRET).verify(received.body, received.headers)
    return payload


def deduped(receiver: Receiver, path: str = "/hook") -> list[tuple[str, dict[str, Any]]]:
    """(webhook-id, verified payload) of each acknowledged message, first copy only, in
    the order they were acknowledged."""
    seen: dict[str, dict[str, Any]] = {}
    for received in receiver.acked(path):
        payload = verified(received)
        seen.setdefault(received.id, payload)
    return list(seen.items())


def transitions(receiver: Receiver) -> dict[str, list[str]]:
    """Per alert id, the transitions a deduping receiver got, in the order acknowledged."""
    found: dict[str, list[str]] = {}
    for _, payload in deduped(receiver):
        data = payload["data"]
        found.setdefault(data["alert_id"], []).append(data["transition"])
    return found


def check_once_per_id(receiver: Receiver) -> None:
    """Every id acknowledged exactly once, and nothing tried that was not acknowledged
    in the end."""
    acked = Counter(r.id for r in receiver.acked())
    assert acked, "nothing was acknowledged"
    assert max(acked.values()) == 1, f"acknowledged twice: {acked}"
    tried = {r.id for r in receiver.received("/hook")}
    assert tried == set(acked), f"tried but never acknowledged: {tried - set(acked)}"


# --- settings and data -------------------------------------------------------------------


def webhook_channel(receiver: Receiver, name: str = "team-webhook") -> dict[str, object]:
    return {"name": name, "kind": "webhook", "url": receiver.url(), "secret_env": SECRET_ENV}


def alert_settings(
    redis_url: str,
    key_prefix: str,
    channels: list[dict[str, object]],
    rules: list[dict[str, object]] | None = None,
    **overrides: object,
) -> Settings:
    """Alerts that fire and resolve on one run, fast polling and short backoff."""
    values: dict[str, object] = {
        "alert_channels": channels,
        "alert_rules": RULES[:1] if rules is None else rules,
        "alert_fire_after": 1,
        "alert_resolve_after": 1,
        "alert_dispatch_poll_seconds": 0.05,
        "alert_backoff_base_seconds": 0.01,
        "alert_backoff_cap_seconds": 0.3,
        "alert_timeout_seconds": 3.0,
        "window_max_events": WINDOW_EVENTS,
        "public_url": "https://driftmon.example.com",
        # the domain classifier is most of a run's time; no rule here reads it, and
        # scheduled runs must stay shorter than a tick
        "multivariate_enabled": False,
    }
    values.update(overrides)
    return harness_settings(redis_url, key_prefix, **values)


def drifted_events(seed: int) -> list[dict[str, object]]:
    """Older and richer than the reference: age and income drift, region does not."""
    events = credit_events(WINDOW_EVENTS, seed, age_shift=10, prefix="drifted")
    for event in events:
        features: dict[str, float] = event["features"]  # type: ignore[assignment]
        features["income"] += 20_000
    return events


async def post_events(client: httpx.AsyncClient, events: list[dict[str, object]]) -> None:
    response = await client.post(f"/v1/models/{MODEL}/events", json=events)
    assert response.status_code == 202, response.text


async def run_now(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(f"/v1/models/{MODEL}/runs")
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] == "ok", run.get("error")
    return run


async def drift(harness: Harness, seed: int = 50, *, reference: bool = False) -> dict[str, Any]:
    """A run over a drifted window (after uploading the reference, if asked)."""
    if reference:
        await upload_credit_reference(harness.client)
    await post_events(harness.client, drifted_events(seed))
    run = await run_now(harness.client)
    assert run["dataset_drift"] is True
    assert run["columns"]["age"]["drifted"] is True
    return run


async def calm(harness: Harness, seed: int = CLEAN_SEEDS[0]) -> dict[str, Any]:
    """A run over a clean window: the newest events are undrifted."""
    await post_events(harness.client, credit_events(WINDOW_EVENTS, seed, prefix=f"clean{seed}"))
    run = await run_now(harness.client)
    drifted = [name for name, column in run["columns"].items() if column["drifted"]]
    assert run["dataset_drift"] is False
    assert not drifted, drifted
    return run


# --- waiting -----------------------------------------------------------------------------


async def until(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str,
    seconds: float = DEADLINE_SECONDS,
    every: float = 0.05,
) -> None:
    """Polls `condition` every `every` seconds until it holds; fails naming `what` after
    `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g}s: {what}")
        await asyncio.sleep(every)


async def drained(harness: Harness) -> None:
    """Once the outbox is empty: every notification written so far was settled."""

    async def empty() -> bool:
        return await harness.services.stores.outbox.depth() == 0

    await until(empty, "an empty outbox")
