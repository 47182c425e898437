"""Alerts benchmark (issue 12), everything measured in this run on a real Redis:

1. Alert cost per run against the run itself. One real detection per model shape (a
   calm and a drifted model, 20 numerical + 5 categorical columns, a window of 5,000
   events against a 20,000-row reference, with predictions, scores, labels and a canary
   version): the run time is reading its window from Redis plus `evaluate_blocks`, the
   worker's whole CPU (warm reference cache, as in a worker). Their RunResults, with KPI
   comparisons added, then go to 100 models through the real AlertSink
   (service/wiring_alerts.alert_sink) with every rule kind on (column "*" included),
   three channels (webhook, Slack, Alertmanager) and the default k = m = 2, round after
   round: first runs, drift starting (pending), firing, steady firing, recovering,
   resolving, steady calm. Each publish (state load, run history, evaluation,
   lifecycle, notifications, one MULTI with the outbox write) is timed on its own.
   Target: under 5% of the run time.
2. Dispatcher throughput: N notifications, half to a webhook and half to Alertmanager,
   enqueued in a real outbox and delivered by the real Dispatcher (service wiring,
   default concurrency per channel) to a local HTTP receiver (uvicorn in its own
   process, answering 200); the baseline is raw httpx POSTs of the same requests, same
   client settings and the same total concurrency, to the same receiver. Rounds
   alternate the two; the ratio reported is the median of the rounds' own ratios.
   Then once more with 1 in `--slack-every` a Slack message instead (Slack is paced to
   one message a second per webhook): how fast the other channels still go.

    python -m bench.alerts_bench [--quick] [--models 100] [--events 5000]
        [--notifications 2000] [--rounds 3] [--slack-every 200] [--profile] [--redis-url URL]

The default Redis is an embedded one (service/embedded_redis.py), never the machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from statistics import mean, median
from typing import Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter
from redis.asyncio import Redis
from threadpoolctl import threadpool_limits

from alerts.channels import Channel
from alerts.delivery import HttpRequest
from alerts.evaluate import RunContext
from alerts.evaluate import evaluate as evaluate_rules
from alerts.sink import ModelAlerting
from bench.common import (
    CATEGORICAL,
    NUMERICAL,
    Figure,
    at_most,
    free_port,
    percentile,
    redis_connection,
    row_features,
    show,
)
from core.alert_config import AlertChannel, AlertRule
from core.alerts import AlertEvent, Notification, RunWindow
from core.blocks import EncodedBatch, Layout
from core.clock import ManualClock, SystemClock
from core.config import EffectiveModelConfig, ModelConfig, effective_config
from core.events import Event
from core.keys import Keys
from core.redis_client import connect_redis
from core.results import KpiComparison, KpiSummary, RunResult
from core.schema import ModelSchema
from core.stores import StoreLimits, Stores
from core.stores.events import RetentionPolicy
from detectors.evaluate import ReferencePayload, evaluate_blocks
from detectors.quality import IntakeRejects
from detectors.reference import to_parquet
from detectors.window import iso
from service.config import Settings
from service.metrics import Metrics
from service.wiring_alerts import alert_sink, dispatcher, open_channels

SCHEDULE_SECONDS = 300.0
DRIFTED_SHARE = 0.3  # of the models, in the drifting rounds
STALE_MODELS = 4  # never an ok run: their runs are insufficient_data, monitor_stale fires
SECRET = "bench-webhook-secret-0123456789"
SCHEMA = ModelSchema(
    features={**dict.fromkeys(NUMERICAL, "numerical"), **dict.fromkeys(CATEGORICAL, "categorical")},
    prediction="prediction",
    prediction_kind="categorical",
    scores={"1": "score"},
    positive_class="1",
    label="label",
)
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta"])
# every rule kind; no `channels`, so each goes to all three channels
RULES: list[dict[str, Any]] = [
    {"name": "dataset-drift", "kind": "dataset_drift"},
    {"name": "any-column", "kind": "column_drift", "column": "*"},
    {"name": "num-00", "kind": "column_drift", "column": "num_00", "severity": "critical"},
    {"name": "prediction-drift", "kind": "prediction_drift"},
    {"name": "confidence-drift", "kind": "confidence_drift"},
    {"name": "multivariate", "kind": "multivariate_shift"},
    {"name": "quality", "kind": "data_quality", "min_severity": "warning"},
    {"name": "accuracy-drop", "kind": "performance", "metric": "accuracy", "max_drop": 0.05},
    {"name": "f1-floor", "kind": "performance", "metric": "f1", "below": 0.7},
    {"name": "conversion", "kind": "kpi", "kpi": "conversion", "max_change": 0.2},
    {"name": "canary", "kind": "model_versions"},
    {"name": "stale", "kind": "monitor_stale", "intervals": 3, "severity": "critical"},
]


def channel_configs(base_url: str) -> list[AlertChannel]:
    return TypeAdapter(list[AlertChannel]).validate_python(
        [
            {
                "name": "team-webhook",
                "kind": "webhook",
                "url": f"{base_url}/webhook",
                "secret_env": "BENCH_WEBHOOK_SECRET",
            },
            {"name": "oncall-slack", "kind": "slack", "url": f"{base_url}/slack"},
            {"name": "alertmanager", "kind": "alertmanager", "url": base_url},
        ]
    )


class GcPauses:
    """Collections of the cyclic GC while installed: a full one over the heap that the
    detection left behind can land in any publish, and is no cost of the alerts."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._began)

    @contextmanager
    def installed(self) -> Iterator[GcPauses]:
        gc.collect()  # not the detection's garbage in the first publishes
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


@contextmanager
def profiled(enabled: bool, title: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
        print(f"\n--- cProfile: {title} (by own time) ---")
        print("\n".join(out.getvalue().splitlines()[6:]))


# --- 1. detection runs: the baseline ------------------------------------------------------


def reference_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    columns: dict[str, Any] = {name: rng.normal(size=rows) for name in NUMERICAL}
    for name in CATEGORICAL:
        columns[name] = rng.choice(CATEGORIES, rows)
    score = 1 / (1 + np.exp(-(columns["num_00"] + 0.5 * columns["num_01"])))
    prediction = np.where(score > 0.5, "1", "0")
    wrong = rng.random(rows) < 0.12
    columns.update(
        prediction=prediction, score=score, label=np.where(wrong, 1 - (score > 0.5), score > 0.5)
    )
    columns["label"] = np.where(columns["label"].astype(bool), "1", "0")
    return pd.DataFrame(columns)


def window_events(count: int, drifted: bool, now: float, seed: int) -> list[Event]:
    """A calm window looks like the reference, with an agreeing 10% canary. A drifted
    one: 13 numerical and 1 categorical columns moved (dataset drift at 50%), missing
    values, unseen categories and out-of-range values, a canary that disagrees, and
    more wrong predictions."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(count, len(NUMERICAL)))
    categories = rng.choice(CATEGORIES, size=(count, len(CATEGORICAL))).astype(object)
    canary = rng.random(count) < 0.1
    if drifted:
        numbers[:, :13] += 0.6
        numbers[rng.random(count) < 0.08, 18] = 40.0  # out of range
        numbers[rng.random(count) < 0.2, 19] = np.nan  # missing
        categories[:, 0] = rng.choice(CATEGORIES, count, p=[0.7, 0.1, 0.1, 0.1])
        categories[rng.random(count) < 0.1, 3] = "omega"  # unseen
        categories[rng.random(count) < 0.2, 4] = None  # missing
    score = 1 / (1 + np.exp(-(numbers[:, 0] + 0.5 * numbers[:, 1])))
    predicted = score > 0.5
    if drifted:
        predicted = np.where(canary, ~predicted, predicted)  # the canary disagrees
    truth = np.where(rng.random(count) < (0.3 if drifted else 0.12), ~(score > 0.5), score > 0.5)
    labeled = rng.random(count) < 0.6
    events = []
    for i in range(count):
        features = row_features(numbers[i].tolist(), categories[i].tolist())
        events.append(
            Event(
                event_id=f"ev-{seed}-{i}",
                timestamp=now - 60 + i * 0.01,
                model_version="v2" if canary[i] else "v1",
                features=features,
                prediction="1" if predicted[i] else "0",
                scores={"1": float(score[i])},
                label=("1" if truth[i] else "0") if labeled[i] else None,
            )
        )
    return events


@dataclass
class Shape:
    name: str
    run: RunResult  # the evaluated run, KPIs added
    seconds: float  # median run time: window read + evaluate_blocks


async def detection_run(
    stores: Stores,
    model: str,
    payload: ReferencePayload,
    config: EffectiveModelConfig,
    rejects: IntakeRejects,
) -> RunResult:
    """The runner's work for one run, without the executor hop and the stores around it."""
    blocks = await stores.events.read_blocks(model, 0.0, config.window_max_events)
    run = RunResult(
        run_id="template",
        model=model,
        status="ok",
        started_at=iso(time.time()),
        reference_version=payload.version,
        min_window_events=config.min_window_events,
        drift_share_threshold=config.drift_share,
    )
    return evaluate_blocks(run, payload, blocks, {}, SCHEMA, config, rejects)


async def measure_shapes(stores: Stores, events: int, reference_rows: int) -> list[Shape]:
    payload = ReferencePayload("sha256:0123abcd", to_parquet(reference_frame(reference_rows)))
    config = effective_config(Settings().model_defaults(), ModelConfig(name="bench"))
    retention = RetentionPolicy(max_age_seconds=86400, max_events=10 * events)
    layout = Layout(NUMERICAL, CATEGORICAL)
    shapes = []
    for seed, (name, drifted) in enumerate([("calm", False), ("drifted", True)]):
        now = time.time()
        batch = EncodedBatch.from_events(window_events(events, drifted, now, seed), layout)
        await stores.events.append(f"shape-{name}", batch, retention, now)
        rejects = (
            IntakeRejects({"num_05": 40}, {"extra_field": 120})
            if drifted
            else IntakeRejects({}, {})
        )
        await detection_run(stores, f"shape-{name}", payload, config, rejects)  # warm caches
        timings, run = [], None
        for _ in range(3):
            began = time.perf_counter()
            run = await detection_run(stores, f"shape-{name}", payload, config, rejects)
            timings.append(time.perf_counter() - began)
        if run is None or run.status != "ok":
            raise RuntimeError(f"the {name} detection run did not end ok: {run}")
        baseline = KpiSummary(count=3000, mean=0.12, last=0.12)
        window = KpiSummary(count=500, mean=0.07 if drifted else 0.118, last=0.07)
        change = window.mean - baseline.mean  # type: ignore[operator]
        run.kpis = {
            "conversion": KpiComparison(
                window=window, baseline=baseline, change=change, relative_change=change / 0.12
            )
        }
        shapes.append(Shape(name, run, median(timings)))
    return shapes


# --- 1. the alert sink, per run -----------------------------------------------------------


@dataclass(frozen=True)
class Round:
    title: str
    drifted: bool  # the drifted share of models runs the drifted shape


ROUNDS = [
    Round("first runs (calm)", False),
    Round("drift begins (pending)", True),
    Round("drift fires", True),
    Round("steady firing", True),
    Round("recovering", False),
    Round("resolves", False),
    Round("steady calm", False),
]


@dataclass
class RoundFigures:
    costs: list[float]  # seconds per ok run
    ratios: list[float]  # cost / its shape's run time
    stale_costs: list[float]  # seconds per insufficient_data run
    notifications: int
    firing: int


@dataclass(frozen=True)
class SinkFigures:
    mean_cost: float  # seconds per ok run's publish
    worst_cost: float  # the publish with the largest share of its run's time
    worst_run: float  # that run's time
    rule_evaluation: float  # seconds of the pure rule evaluation on the heaviest run


async def bench_sink(redis: Redis, shapes: list[Shape], models: int, profile: bool) -> SinkFigures:
    clock = ManualClock(time.time())
    settings = Settings(schedule_seconds=SCHEDULE_SECONDS)
    stores = Stores.open(redis, Keys("bench-alerts:"), clock, StoreLimits(), "bench")
    rules = TypeAdapter(list[AlertRule]).validate_python(RULES)
    alerting = ModelAlerting(rules, SCHEDULE_SECONDS)
    metrics = Metrics(CollectorRegistry(), "bench")
    channels = channel_configs("http://127.0.0.1:9")
    sink = alert_sink(settings, stores, clock, metrics, lambda _: alerting, channels)
    names = [f"model-{i:03d}" for i in range(models)]
    stale = set(names[-STALE_MODELS:])
    drifting = set(names[: round(models * DRIFTED_SHARE)])
    calm, drifted = shapes
    for name in stale:  # created an hour ago, never an ok run since
        await redis.hset(Keys("bench-alerts:").model(name), "created_at", clock.now() - 3600)
    previous: dict[str, RunResult | None] = dict.fromkeys(names)
    print(
        f"\n{models} models x 25 columns, {len(rules)} rules (every kind), 3 channels, "
        f"k = m = {settings.alert_fire_after}; {len(drifting)} drift in the drifting rounds, "
        f"{len(stale)} never have an ok run"
    )
    print(
        f"{'round':<24} {'mean ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean %':>7} "
        f"{'max %':>7} {'firing':>7} {'notes':>6}"
    )
    everything: list[RoundFigures] = []
    with profiled(profile, "AlertSink.publish, all rounds"), GcPauses().installed() as pauses:
        for number, spec in enumerate(ROUNDS):
            clock.advance(SCHEDULE_SECONDS)
            depth_before = await stores.outbox.depth()
            figures = RoundFigures([], [], [], 0, 0)
            for name in names:
                shape = drifted if spec.drifted and name in drifting else calm
                update: dict[str, Any] = {
                    "model": name,
                    "run_id": f"{number}-{name}",
                    "trigger": "schedule",
                    "started_at": iso(clock.now()),
                }
                if name in stale:
                    update.update(status="insufficient_data", columns={}, data_quality=None)
                run = shape.run.model_copy(update=update)
                await stores.runs.save(run)  # the runner stores it before the sinks
                began = time.perf_counter()
                await sink.publish(run, previous[name])
                seconds = time.perf_counter() - began
                previous[name] = run
                if name in stale:
                    figures.stale_costs.append(seconds)
                else:
                    figures.costs.append(seconds)
                    figures.ratios.append(seconds / shape.seconds)
            figures.notifications = await stores.outbox.depth() - depth_before
            firing = await stores.alerts.list(states={"firing"})
            figures.firing = len(firing)
            everything.append(figures)
            print(
                f"{spec.title:<24} {mean(figures.costs) * 1e3:8.2f} "
                f"{percentile(figures.costs, 95) * 1e3:8.2f} {max(figures.costs) * 1e3:8.2f} "
                f"{mean(figures.ratios):7.2%} {max(figures.ratios):7.2%} "
                f"{figures.firing:7d} {figures.notifications:6d}"
            )
    costs = [c for f in everything for c in f.costs]
    ratios = [r for f in everything for r in f.ratios]
    stale_costs = [c for f in everything for c in f.stale_costs]
    show("detection run, calm model", f"{calm.seconds * 1e3:.0f} ms (window read + evaluate)")
    show("detection run, drifted model", f"{drifted.seconds * 1e3:.0f} ms")
    show(
        "alert cost per ok run",
        f"mean {mean(costs) * 1e3:.2f} ms, p95 "
        f"{percentile(costs, 95) * 1e3:.2f} ms, max {max(costs) * 1e3:.2f} ms",
    )
    show(
        "alert cost / run time",
        f"mean {mean(ratios):.2%}, max {max(ratios):.2%} "
        f"(target < 5%): {'ok' if max(ratios) < 0.05 else 'OVER'}",
    )
    show("alert cost per insufficient run", f"mean {mean(stale_costs) * 1e3:.2f} ms")
    # the pure part alone, on the heaviest run: evaluation of every rule
    context = RunContext(now=clock.now(), schedule_seconds=SCHEDULE_SECONDS)
    run = drifted.run.model_copy(update={"model": names[0]})
    evaluate_rules(rules, run, context)
    began = time.perf_counter()
    for _ in range(50):
        observed = evaluate_rules(rules, run, context)
    pure = (time.perf_counter() - began) / 50
    show("  of which rule evaluation (pure)", f"{pure * 1e3:.2f} ms, {len(observed)} observations")
    longest = max(pauses.pauses, default=0.0)
    show("GC pauses while publishing", f"{len(pauses.pauses)}, the longest {longest * 1e3:.1f} ms")
    worst = max(range(len(ratios)), key=ratios.__getitem__)
    return SinkFigures(mean(costs), costs[worst], costs[worst] / ratios[worst], pure)


# --- 2. dispatcher throughput -------------------------------------------------------------

RECEIVER = r"""
import sys
import uvicorn

async def app(scope, receive, send):
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, lifespan="off", loop="uvloop", http="httptools")
"""


@asynccontextmanager
async def receiver() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", RECEIVER, str(port))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the receiver did not start") from None
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


PACED = "oncall-slack"  # Slack: one message a second per webhook, by design


def notifications(count: int, now: float, slack_every: int = 0) -> list[Notification]:
    """Half to the webhook (one alert each), half to Alertmanager (five alerts, a run's
    coalesced), each with an order key of its own; with `slack_every`, every that many
    is a Slack message (five alerts) instead."""
    out = []
    for i in range(count):
        if slack_every and i % slack_every == slack_every // 2:
            channel, kind, size = PACED, "slack", 5
        else:
            channel, kind, size = (
                ("team-webhook", "webhook", 1),
                ("alertmanager", "alertmanager", 5),
            )[i % 2]
        model = f"model-{i:05d}"
        events = [
            AlertEvent(
                alert_id=f"{model}/any-column/num_{j:02d}",
                model=model,
                rule="any-column",
                kind="column_drift",
                column=f"num_{j:02d}",
                severity="warning",
                status="firing",
                transition="firing",
                value=0.31,
                threshold=0.1,
                summary=f"column num_{j:02d} drifted: wasserstein 0.31 (threshold 0.1)",
                run_id=f"run-{i}",
                window=RunWindow(start=iso(now - 3600), end=iso(now), events=5000),
                report_url=f"http://127.0.0.1/v1/models/{model}/runs/run-{i}/report",
                starts_at=iso(now),
            )
            for j in range(size)
        ]
        out.append(
            Notification(
                id=f"msg_{i:032d}",
                channel=channel,
                channel_kind=kind,
                order_key=f"{channel}|{model}",
                created_at=now,
                events=events,
            )
        )
    return out


class TimedMetrics(Metrics):
    """The service's metrics, also noting when the last delivery of each channel was."""

    def __init__(self) -> None:
        super().__init__(CollectorRegistry(), "bench")
        self.last_delivered: dict[str, float] = {}

    def count_delivery(self, channel: str, outcome: Any) -> None:
        super().count_delivery(channel, outcome)
        if outcome == "delivered":
            self.last_delivered[channel] = time.perf_counter()


async def raw_posts(client: httpx.AsyncClient, requests: list[HttpRequest], slots: int) -> None:
    gate = asyncio.Semaphore(slots)

    async def post(request: HttpRequest) -> None:
        async with gate:
            response = await client.post(request.url, content=request.body, headers=request.headers)
            response.raise_for_status()

    await asyncio.gather(*(post(request) for request in requests))


@dataclass
class Dispatched:
    seconds: float  # until the outbox was empty
    unpaced_seconds: float  # until the last webhook or Alertmanager delivery
    unpaced: int  # webhook and Alertmanager notifications


async def dispatch_all(
    redis: Redis,
    url: str,
    client: httpx.AsyncClient,
    batch: list[Notification],
    tag: str,
    profile: bool,
) -> Dispatched:
    """The real Dispatcher (service wiring) delivering freshly enqueued notifications."""
    clock = SystemClock()
    settings = Settings()
    stores = Stores.open(redis, Keys(f"bench-dispatch-{tag}:"), clock, StoreLimits(), "bench")
    channels = open_channels(settings, channel_configs(url), {"BENCH_WEBHOOK_SECRET": SECRET})
    metrics = TimedMetrics()
    worker = dispatcher(settings, stores, channels, client, clock, metrics)
    for start in range(0, len(batch), 100):
        await stores.outbox.enqueue(batch[start : start + 100], clock.now())
    began = time.perf_counter()
    with profiled(profile, "Dispatcher, one round"):
        while await worker.run_once():
            pass
    ended = time.perf_counter()
    left, dead = await stores.outbox.depth(), await stores.outbox.dead_letters()
    if left or dead:
        raise RuntimeError(f"{left} notifications left, {len(dead)} dead-lettered")
    unpaced_end = max(t for c, t in metrics.last_delivered.items() if c != PACED)
    unpaced = sum(1 for n in batch if n.channel != PACED)
    return Dispatched(ended - began, unpaced_end - began, unpaced)


@dataclass(frozen=True)
class DispatchFigures:
    raw_rate: float  # raw httpx POSTs/s, median of rounds
    ours_rate: float  # Dispatcher notifications/s, median of rounds
    ratio: float  # median of the rounds' own ratios


async def bench_dispatcher(
    redis: Redis, count: int, rounds: int, slack_every: int, profile: bool
) -> DispatchFigures:
    settings = Settings()
    slots = settings.alert_dispatch_concurrency * 2  # per channel: webhook, Alertmanager
    async with receiver() as url, httpx.AsyncClient(timeout=10) as client:  # as service/app.py
        channels: dict[str, Channel] = open_channels(
            settings, channel_configs(url), {"BENCH_WEBHOOK_SECRET": SECRET}
        )
        now = time.time()
        plain = notifications(count, now)
        requests = [channels[n.channel].request(n, now) for n in plain]
        await raw_posts(client, requests[:200], slots)  # warm the connections
        ratios, raw_rates, ours_rates = [], [], []
        for number in range(rounds):
            began = time.perf_counter()
            await raw_posts(client, requests, slots)
            raw = count / (time.perf_counter() - began)
            last = profile and number == rounds - 1
            dispatched = await dispatch_all(redis, url, client, plain, str(number), last)
            ours = count / dispatched.seconds
            raw_rates.append(raw)
            ours_rates.append(ours)
            ratios.append(ours / raw)
        mixed = notifications(count, time.time(), slack_every)
        with_slack = await dispatch_all(redis, url, client, mixed, "slack", False)
    slack = count - with_slack.unpaced
    print(
        f"\n{count} notifications (half webhook, half Alertmanager), "
        f"{settings.alert_dispatch_concurrency} in flight per channel, {rounds} rounds"
    )
    show("raw httpx POST (baseline)", f"{median(raw_rates):,.0f} requests/s ({slots} in flight)")
    show("Dispatcher (outbox -> receiver)", f"{median(ours_rates):,.0f} notifications/s")
    show("Dispatcher / raw POST", f"{median(ratios):.2f}x (median of rounds)")
    unpaced_rate = with_slack.unpaced / with_slack.unpaced_seconds
    print(
        f"the same with 1 in {slack_every} a Slack message instead ({slack} to Slack, "
        "paced to one a second per webhook by design):"
    )
    show(
        "  webhook + Alertmanager",
        f"{unpaced_rate:,.0f} notifications/s "
        f"({unpaced_rate / median(ours_rates):.2f}x of without Slack)",
    )
    show("  all delivered after", f"{with_slack.seconds:.1f} s (Slack alone needs {slack - 1} s)")
    return DispatchFigures(median(raw_rates), median(ours_rates), median(ratios))


# --- main ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    models: int
    events: int
    reference_rows: int
    notifications: int
    rounds: int
    slack_every: int
    profile: bool = False

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        notifications = 500 if quick else 2000
        return cls(
            models=20 if quick else 100,
            events=2000 if quick else 5000,
            reference_rows=20_000,
            notifications=notifications,
            rounds=3,
            slack_every=notifications // 10,
        )


async def run_all(redis: Redis, sizes: Sizes) -> tuple[SinkFigures, DispatchFigures]:
    stores = Stores.open(redis, Keys("bench-shapes:"), SystemClock(), StoreLimits(), "bench")
    shapes = await measure_shapes(stores, sizes.events, sizes.reference_rows)
    sink = await bench_sink(redis, shapes, sizes.models, sizes.profile)
    dispatch = await bench_dispatcher(
        redis, sizes.notifications, sizes.rounds, sizes.slack_every, sizes.profile
    )
    return sink, dispatch


async def measure_on(url: str | None, sizes: Sizes) -> tuple[SinkFigures, DispatchFigures]:
    os.environ.pop("DRIFTMON_ALERT_RULES", None)  # the bench's rules are its own
    async with redis_connection(url, connect_redis) as redis:
        return await run_all(redis, sizes)


def run(quick: bool = False) -> list[Figure]:
    """Alert cost per run against the run itself, and the Dispatcher against raw POSTs.
    One OpenMP/BLAS thread, as a detection worker has (DRIFTMON_DETECTION_THREADS=1):
    on a busy machine the domain classifier's spinning threads otherwise stretch the
    baseline run many times over."""
    threadpool_limits(limits=1)
    sink, dispatch = asyncio.run(measure_on(None, Sizes.of(quick)))
    pure_share = sink.rule_evaluation / sink.mean_cost
    return [
        Figure.compare(
            "alert cost per run, the largest share",
            sink.worst_cost * 1e3,
            "ms",
            baseline="its detection run (window read + evaluate)",
            baseline_value=sink.worst_run * 1e3,
            target=at_most(0.05),
            where_the_time_goes=f"the pure rule evaluation is {pure_share:.0%} of a mean "
            "publish; the rest is its store work (state load, run history, lifecycle, "
            "the outbox MULTI)",
        ),
        Figure.compare(
            "Dispatcher throughput",
            dispatch.ours_rate,
            "notifications/s",
            baseline="raw httpx POSTs, same concurrency",
            baseline_value=dispatch.raw_rate,
            where_the_time_goes="the HTTP POSTs (the baseline's whole work); on top, the "
            "Dispatcher claims from and settles in the Redis outbox and formats each request",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="20 models, 2,000 events, 500 notifications"
    )
    parser.add_argument("--models", type=int, default=None)
    parser.add_argument("--events", type=int, default=None, help="window events per run")
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--notifications", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="dispatcher rounds")
    parser.add_argument("--slack-every", type=int, default=None, help="1 in N to Slack")
    parser.add_argument("--profile", action="store_true", help="print cProfile hot spots")
    parser.add_argument("--redis-url", default=None, help="default: an embedded Redis")
    args = parser.parse_args()
    quick = args.quick
    notifications = args.notifications or (500 if quick else 2000)
    sizes = Sizes(
        models=args.models or (20 if quick else 100),
        events=args.events or (2000 if quick else 5000),
        reference_rows=args.reference_rows,
        notifications=notifications,
        rounds=args.rounds,
        slack_every=args.slack_every or notifications // 10,
        profile=args.profile,
    )
    if sizes.models <= STALE_MODELS:
        parser.error(f"--models must be over {STALE_MODELS}")
    asyncio.run(measure_on(args.redis_url, sizes))


if __name__ == "__main__":
    main()
