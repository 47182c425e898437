"""Labeling-loop benchmark (issue 13), everything measured in this run:

1. Flagging overhead. A 100k-event window (20 numerical and 5 categorical features:
   shifted, widened and missing-value numerical columns, moved shares and an unseen
   category; binary scores, 10% of the events labeled, a 5% canary) is stored in
   a real Redis and read back as the runner reads it (`read_blocks`); the reference has
   100k rows. Timed on the same blocks, in turns, warm reference cache and one native
   thread as in a detection worker:
   - the run without flagging: `evaluate_and_flag(labeling=None)` (decode, join labels,
     evaluate: what `evaluate_blocks` costs),
   - the run with flagging: `evaluate_and_flag(labeling=LabelingConfig())`,
   - `flag_samples` alone, on the decoded window and that run's verdicts.
   Target: flagging adds under 10% to the run (flag_samples / run without flagging;
   the two runs' difference is shown too, noisier).
2. Annotation throughput through the HTTP API. A real `driftmon serve` subprocess
   (API keys on, scheduler off, the model's `labeling:` from a models file: K = 1,
   queue_max 1,000,000) on a Redis of this script; a reference is uploaded and N
   events posted through the API; the queue is then filled by the real
   `LabelQueue.add` on the same Redis with a FlaggedSample per posted event (mixed
   reasons, random priorities) - faster than N detection runs, and the tasks are the
   same shape as flagging makes them. Then C async annotators (httpx) each claim 100
   tasks (`GET /v1/labeling/{model}/tasks`) and annotate them one by one (`POST
   /v1/labeling/tasks/{id}/annotations`: each settles its task and writes the label as
   the event's ground truth) for `--seconds`. Baseline, same run, same client and
   concurrency: `GET /v1/silences` (authenticated, one Redis script), timed before and
   after; `GET /v1/models/{model}` (several Redis reads) is shown too. Per request: the
   CPU of the server process, of this client and of Redis, and Redis commands (Lua's
   inner calls included). Target: >= 500 annotations/s.

    python -m bench.labeling_bench [--quick] [--events 100000] [--reference-rows 100000]
        [--repeats 3] [--tasks 20000] [--seconds 10] [--annotators 8] [--profile]
        [--redis-url URL]

The default Redis is an embedded one (service/embedded_redis.py) in a temp dir, never
the machine's. `--profile` runs the server under cProfile (its whole life, start-up
included) and prints its hot spots; py-spy, when at hand, attached to the server
during the annotation phase, separates the request path better.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
from redis.asyncio import Redis
from threadpoolctl import threadpool_limits

from bench.common import (
    CATEGORICAL,
    NUMERICAL,
    Figure,
    at_least,
    at_most,
    free_port,
    row_features,
    show,
    start_server,
    stop_server,
    timed,
)
from core.blocks import EncodedBatch, Layout, decode_window
from core.clock import SystemClock
from core.config import ModelConfig, effective_config
from core.events import Event
from core.keys import Keys
from core.labeling import FlaggedSample, FlagReason, LabelingConfig
from core.redis_types import StreamEntry
from core.results import RunResult
from core.schema import ModelSchema
from core.stores.events import EventStore, RetentionPolicy
from core.stores.label_queue import LabelQueue
from detectors.evaluate import (
    PROCESS_VIEWS,
    ReferencePayload,
    evaluate_and_flag,
    with_labels,
)
from detectors.flagging import flag_samples, run_seed
from detectors.quality import IntakeRejects
from detectors.reference import to_parquet
from detectors.window import iso
from service.config import Settings
from service.embedded_redis import EmbeddedRedis

T = TypeVar("T")
MODEL = "labeling-bench"
FLAG_PREFIX = "bench-labeling-flag:"
SERVE_PREFIX = "bench-labeling-serve:"
API_KEY = "bench-labeling-key-0123456789abcdef"
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta"])
SCHEMA = ModelSchema(
    features={**dict.fromkeys(NUMERICAL, "numerical"), **dict.fromkeys(CATEGORICAL, "categorical")},
    prediction="prediction",
    prediction_kind="categorical",
    scores={"yes": "score"},
    positive_class="yes",
    label="label",
)
# the model's labeling in the served models file: K = 1 whatever the reasons
LABELING: dict[str, Any] = {
    "annotations_required": 1,
    "annotations_by_reason": {},
    "queue_max": 1_000_000,
}
REASONS: list[list[FlagReason]] = [
    ["drift_region"],
    ["uncertainty"],
    ["random"],
    ["data_quality"],
    ["drift_region", "uncertainty"],
    ["production_error"],
]


# --- data ---------------------------------------------------------------------------------


def reference_frame(rows: int) -> pd.DataFrame:
    """Features like the calm window's, with prediction, score and label columns."""
    rng = np.random.default_rng(1)
    columns: dict[str, Any] = {name: rng.normal(size=rows) for name in NUMERICAL}
    for name in CATEGORICAL:
        columns[name] = rng.choice(CATEGORIES, rows)
    score = 1 / (1 + np.exp(-(columns["num_00"] + 0.5 * columns["num_01"])))
    predicted = score > 0.5
    truth = np.where(rng.random(rows) < 0.12, ~predicted, predicted)
    columns.update(
        prediction=np.where(predicted, "yes", "no"),
        score=score,
        label=np.where(truth, "yes", "no"),
    )
    return pd.DataFrame(columns)


def make_events(count: int, now: float, seed: int = 7, prefix: str = "ev") -> list[Event]:
    """6 numerical columns shifted, one widened (values beyond the reference's range),
    one with 5% missing; one categorical column's shares moved, one with an unseen
    category; a 5% canary; scores; ground truth on 10% of the events (15% wrong)."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(count, len(NUMERICAL)))
    numbers[:, :6] += 0.5
    numbers[:, 6] *= 1.8
    numbers[rng.random(count) < 0.05, 7] = np.nan
    categories = rng.choice(CATEGORIES, size=(count, len(CATEGORICAL))).astype(object)
    categories[:, 0] = rng.choice(CATEGORIES, count, p=[0.55, 0.15, 0.15, 0.15])
    categories[rng.random(count) < 0.05, 1] = "omega"
    score = 1 / (1 + np.exp(-(numbers[:, 0] + 0.5 * numbers[:, 1])))
    predicted = score > 0.5
    truth = np.where(rng.random(count) < 0.15, ~predicted, predicted)
    labeled = rng.random(count) < 0.10
    canary = rng.random(count) < 0.05
    events = []
    for i in range(count):
        features = row_features(numbers[i].tolist(), categories[i].tolist())
        events.append(
            Event(
                event_id=f"{prefix}-{i}",
                timestamp=now - 60 + i * 1e-4,
                model_version="v2" if canary[i] else "v1",
                features=features,
                prediction="yes" if predicted[i] else "no",
                scores={"yes": float(score[i])},
                label=("yes" if truth[i] else "no") if labeled[i] else None,
            )
        )
    return events


# --- 1. flagging overhead -----------------------------------------------------------------


async def stored_blocks(redis_url: str, events: int) -> list[StreamEntry]:
    """The window as the runner gets it: stored through the EventStore, read back as
    undecoded stream entries."""
    redis = Redis.from_url(redis_url)
    try:
        store = EventStore(redis, Keys(FLAG_PREFIX))
        now = time.time()
        batch = EncodedBatch.from_events(make_events(events, now), Layout(NUMERICAL, CATEGORICAL))
        await store.append(MODEL, batch, RetentionPolicy(86400, 10 * events), now)
        blocks = await store.read_blocks(MODEL, 0.0, events)
        async for key in redis.scan_iter(match=f"{FLAG_PREFIX}*", count=1000):
            await redis.unlink(key)
        return blocks
    finally:
        await redis.aclose()


def timed_after_gc(action: Callable[[], T]) -> tuple[T, float]:
    gc.collect()  # not the previous turn's garbage
    return timed(action)


@dataclass(frozen=True)
class FlaggingFigures:
    run_plain: float  # median seconds of the run without flagging
    flag: float  # median seconds of flag_samples alone

    @property
    def ratio(self) -> float:
        return self.flag / self.run_plain


def bench_flagging(
    redis_url: str, events: int, reference_rows: int, repeats: int
) -> FlaggingFigures:
    print(
        f"\n1. flagging: a {events:,}-event window (25 features, 10% labeled), "
        f"{reference_rows:,}-row reference, {repeats} turns"
    )
    began = time.perf_counter()
    blocks = asyncio.run(stored_blocks(redis_url, events))
    elapsed = time.perf_counter() - began
    show("window stored and read back", f"{len(blocks)} blocks, {elapsed:.1f} s")
    reference = reference_frame(reference_rows)
    payload = ReferencePayload("sha256:0123abcd", to_parquet(reference))
    config = effective_config(
        Settings(reference_max_rows=max(reference_rows, 1)).model_defaults(),
        ModelConfig(name=MODEL, window_max_events=events),
    )
    labeling = LabelingConfig()
    rejects = IntakeRejects({}, {})
    run = RunResult(
        run_id="bench-labeling-run",
        model=MODEL,
        status="ok",
        started_at=iso(time.time()),
        reference_version=payload.version,
        min_window_events=config.min_window_events,
        drift_share_threshold=config.drift_share,
    )

    def plain() -> Any:
        return evaluate_and_flag(run, payload, blocks, {}, SCHEMA, config, rejects)

    def flagging() -> Any:
        return evaluate_and_flag(run, payload, blocks, {}, SCHEMA, config, rejects, labeling)

    # one OpenMP/BLAS thread, as a detection worker has (DRIFTMON_DETECTION_THREADS=1):
    # the domain classifier's spinning threads otherwise make run times erratic
    threadpool_limits(limits=1)
    warm, _ = timed_after_gc(flagging)  # decodes, samples and profiles the reference once
    if warm.run.status != "ok" or not warm.flagged:
        raise RuntimeError(f"the warm-up run flagged nothing: {warm.run.status}")
    evaluated = warm.run  # the verdicts flag_samples reads
    window = with_labels(decode_window(blocks, config.window_max_events), {})
    view = PROCESS_VIEWS.get(payload, SCHEMA, config.reference_max_rows).frame
    seed = run_seed(run.run_id)
    times: dict[str, list[float]] = {"plain": [], "flagging": [], "flag": []}
    flagged: list[FlaggedSample] = []
    for turn in range(repeats):
        order = ["plain", "flagging"] if turn % 2 == 0 else ["flagging", "plain"]
        for name in order:
            times[name].append(timed_after_gc(plain if name == "plain" else flagging)[1])
        flagged, seconds = timed_after_gc(
            lambda: flag_samples(window, view, evaluated, SCHEMA, labeling, seed)
        )
        times["flag"].append(seconds)
    run_plain, run_flagging = median(times["plain"]), median(times["flagging"])
    flag = median(times["flag"])
    reasons = Counter(reason for sample in flagged for reason in sample.reasons)
    drifted = sum(1 for column in evaluated.columns.values() if column.drifted)
    show(
        "run verdicts",
        f"{drifted} of {len(evaluated.columns)} columns drifted; {len(flagged)} samples "
        f"flagged ({', '.join(f'{r} {n}' for r, n in sorted(reasons.items()))})",
    )
    show("run without flagging (median)", f"{run_plain * 1e3:.0f} ms (decode + evaluate)")
    show("run with flagging (median)", f"{run_flagging * 1e3:.0f} ms")
    show("  flag_samples alone (median)", f"{flag * 1e3:.1f} ms")
    ratio = flag / run_plain
    show(
        "flag_samples / run without flagging",
        f"{ratio:.2%} (target < 10%): {'ok' if ratio < FLAGGING_TARGET else 'OVER'}; "
        f"the runs' own difference {run_flagging / run_plain - 1:+.2%} (noisier: "
        f"two medians of {repeats})",
    )
    return FlaggingFigures(run_plain, flag)


# --- 2. annotation throughput -------------------------------------------------------------


def models_yaml() -> str:
    return json.dumps({"models": [{"name": MODEL, "labeling": LABELING}]})  # JSON is YAML


def start_labeling_server(
    port: int, data_dir: Path, redis_url: str, profile: Path | None
) -> subprocess.Popen[bytes]:
    models = data_dir / "models.yaml"
    models.write_text(models_yaml())
    options = [
        "--redis-url", redis_url, "--key-prefix", SERVE_PREFIX, "--models-file", str(models),
        "--detection-workers", "0", "--schedule-seconds", "86400",
    ]  # fmt: skip
    keys = [{"name": "bench", "key": API_KEY, "scopes": ["ingest", "read", "admin", "label"]}]
    env = {
        **os.environ,
        "DRIFTMON_API_KEYS": json.dumps(keys),
        "DRIFTMON_SCHEDULER_ENABLED": "false",
        "DRIFTMON_LOG_LEVEL": "warning",
    }
    return start_server(port, data_dir, options, env=env, profile_to=profile)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event_body(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "model_version": event.model_version,
        "features": event.features,
        "prediction": event.prediction,
        "scores": event.scores,
    }


async def fill_queue(client: httpx.AsyncClient, redis_url: str, tasks: int) -> int:
    """Reference up; `tasks` events posted; a task per event through LabelQueue.add."""
    body = reference_frame(5000).to_csv(index=False).encode()
    query = "prediction=prediction&scores=score&label=label&positive_class=yes"
    answer = await client.put(f"/v1/models/{MODEL}/reference?{query}", content=body)
    answer.raise_for_status()
    events = make_events(tasks, time.time(), seed=11, prefix="task")
    for start in range(0, tasks, 2000):
        batch = [event_body(event) for event in events[start : start + 2000]]
        (await client.post(f"/v1/models/{MODEL}/events", json=batch)).raise_for_status()
    rng = np.random.default_rng(5)
    samples = [
        FlaggedSample(
            event_id=event.event_id,
            priority=round(float(rng.uniform(0.1, 3.8)), 6),
            reasons=REASONS[i % len(REASONS)],
            details=[f"bench sample {i}: {', '.join(REASONS[i % len(REASONS)])}"],
            timestamp=event.timestamp,
            model_version=event.model_version,
            features=event.features,
            prediction=event.prediction,
            scores=event.scores,
            label=None,
        )
        for i, event in enumerate(events)
    ]
    redis = Redis.from_url(redis_url)
    try:
        queue = LabelQueue(redis, Keys(SERVE_PREFIX), SystemClock())
        config = LabelingConfig.model_validate(LABELING)
        queued = 0
        for start in range(0, tasks, 500):
            added = await queue.add(
                MODEL, samples[start : start + 500], "bench-fill", config, time.time()
            )
            queued += added.queued
        return queued
    finally:
        await redis.aclose()


@dataclass
class Phase:
    requests: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    redis_cpu: float = 0.0
    redis_commands: int = 0
    latencies: list[float] = field(default_factory=list)
    claims: list[float] = field(default_factory=list)
    dry: bool = False  # the queue ran out

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def per(self, amount: float) -> float:
        return amount / self.requests if self.requests else float("nan")

    def describe(self, noun: str) -> str:
        p50, p99 = (np.percentile(self.latencies, q) * 1e3 for q in (50, 99))
        return (
            f"{self.rate:,.0f} {noun}/s ({self.requests:,} in {self.seconds:.1f} s); "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )

    def costs(self) -> str:
        return (
            f"CPU ms each: server {self.per(self.server_cpu) * 1e3:.2f}, "
            f"client {self.per(self.client_cpu) * 1e3:.2f}, "
            f"redis {self.per(self.redis_cpu) * 1e3:.2f}; "
            f"redis commands each {self.per(self.redis_commands):.1f}"
        )


async def redis_usage(redis: Redis) -> tuple[float, int]:
    """Redis's CPU seconds and commands processed so far (Lua's inner calls included)."""
    cpu = await redis.info("cpu")
    stats = await redis.info("stats")
    used = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return used, int(stats["total_commands_processed"])


async def phase(
    pid: int,
    redis: Redis,
    workers: int,
    seconds: float,
    work: Callable[[int, float, Phase], Any],
) -> Phase:
    result = Phase()
    redis_before, commands_before = await redis_usage(redis)
    server_before, client_before = cpu_seconds(pid), time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(*(work(number, deadline, result) for number in range(workers)))
    result.seconds = time.perf_counter() - began
    result.server_cpu = cpu_seconds(pid) - server_before
    result.client_cpu = time.process_time() - client_before
    redis_after, commands_after = await redis_usage(redis)
    result.redis_cpu = redis_after - redis_before
    result.redis_commands = commands_after - commands_before - 2  # our own INFOs
    return result


@dataclass(frozen=True)
class AnnotationFigures:
    rate: float  # annotations/s
    baseline: float  # GET /v1/silences/s, before and after
    server_cpu: float  # server CPU seconds per annotation
    redis_cpu: float  # Redis CPU seconds per annotation


async def bench_annotations(
    redis_url: str, tmp: Path, tasks: int, seconds: float, workers: int, profile: bool
) -> AnnotationFigures:
    print(
        f"\n2. annotations through the HTTP API: {workers} concurrent annotators "
        f"(claim 100, annotate each), {seconds:.0f} s; baseline GET /v1/silences"
    )
    data_dir = tmp / "serve"
    data_dir.mkdir()
    profile_file = data_dir / "server.prof" if profile else None
    port = free_port()
    server = start_labeling_server(port, data_dir, redis_url, profile_file)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    redis = Redis.from_url(redis_url)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60, limits=limits
        ) as client:
            began = time.perf_counter()
            queued = await fill_queue(client, redis_url, tasks)
            elapsed = time.perf_counter() - began
            show("queue filled (LabelQueue.add)", f"{queued:,} tasks, {elapsed:.1f} s")

            def getting(path: str) -> Callable[[int, float, Phase], Any]:
                async def get(number: int, deadline: float, result: Phase) -> None:
                    while time.perf_counter() < deadline:
                        sent = time.perf_counter()
                        (await client.get(path)).raise_for_status()
                        result.latencies.append(time.perf_counter() - sent)
                        result.requests += 1

                return get

            async def annotate(number: int, deadline: float, result: Phase) -> None:
                annotator = f"annotator-{number}"
                while time.perf_counter() < deadline:
                    sent = time.perf_counter()
                    claimed = await client.get(
                        f"/v1/labeling/{MODEL}/tasks",
                        params={"annotator": annotator, "limit": 100},
                    )
                    claimed.raise_for_status()
                    result.claims.append(time.perf_counter() - sent)
                    found = claimed.json()["tasks"]
                    if not found:
                        result.dry = True
                        return
                    for task in found:
                        if time.perf_counter() >= deadline:
                            return
                        label = "yes" if task["scores"].get("yes", 0.5) > 0.5 else "no"
                        sent = time.perf_counter()
                        answer = await client.post(
                            f"/v1/labeling/tasks/{task['id']}/annotations",
                            json={"annotator": annotator, "label": label},
                        )
                        if answer.status_code != 201:
                            raise RuntimeError(f"annotation: {answer.status_code} {answer.text}")
                        result.latencies.append(time.perf_counter() - sent)
                        result.requests += 1

            trivial, model = getting("/v1/silences"), getting(f"/v1/models/{MODEL}")
            pid = server.pid
            await phase(pid, redis, workers, 1.0, trivial)  # warm connections and caches
            before = await phase(pid, redis, workers, seconds / 2, trivial)
            described = await phase(pid, redis, workers, seconds / 2, model)
            annotated = await phase(pid, redis, workers, seconds, annotate)
            after = await phase(pid, redis, workers, seconds / 2, trivial)
            stats = (await client.get(f"/v1/labeling/{MODEL}/stats")).json()
    finally:
        await redis.aclose()
        stop_server(server)
    baseline = (before.requests + after.requests) / (before.seconds + after.seconds)
    show("GET /v1/silences, before", before.describe("requests"))
    show("", before.costs())
    show("GET /v1/silences, after", after.describe("requests"))
    show("GET /v1/models/{model}", described.describe("requests"))
    show("", described.costs())
    show("annotations", annotated.describe("annotations"))
    show("", annotated.costs())
    claims = annotated.claims
    show(
        "  claims (limit 100)",
        f"{len(claims)}; p50 {np.median(claims) * 1e3:.1f} ms, max {max(claims) * 1e3:.1f} ms"
        + ("; THE QUEUE RAN OUT" if annotated.dry else ""),
    )
    show(
        "  queue after",
        f"open {stats['open']:,}, done {stats['done']:,}, claimed {stats['claimed']:,}",
    )
    show("machine", f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the end")
    show(
        "annotations/s vs trivial GETs/s",
        f"{annotated.rate:,.0f} / {baseline:,.0f} = {annotated.rate / baseline:.2f}x; "
        f"target >= 500/s: {'ok' if annotated.rate >= 500 else 'UNDER'}",
    )
    if profile_file is not None and profile_file.exists():
        out = io.StringIO()
        stats_of = pstats.Stats(str(profile_file), stream=out)
        stats_of.sort_stats("tottime").print_stats(25)
        print("\n--- cProfile of the server, whole life (by own time) ---")
        print("\n".join(out.getvalue().splitlines()[6:]))
    return AnnotationFigures(
        annotated.rate,
        baseline,
        annotated.per(annotated.server_cpu),
        annotated.per(annotated.redis_cpu),
    )


@dataclass(frozen=True)
class Sizes:
    events: int  # window of part 1
    reference_rows: int
    repeats: int  # turns of part 1
    tasks: int  # queued tasks of part 2
    seconds: float  # per phase of part 2
    annotators: int = 8
    profile: bool = False

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(events=20_000, reference_rows=20_000, repeats=3, tasks=4_000, seconds=3.0)
        return cls(events=100_000, reference_rows=100_000, repeats=3, tasks=20_000, seconds=10.0)


def measure(
    sizes: Sizes, redis_url: str | None, flagging: bool = True, annotations: bool = True
) -> tuple[FlaggingFigures | None, AnnotationFigures | None]:
    os.environ.setdefault("DRIFTMON_LOG_LEVEL", "warning")
    flagged = annotated = None
    with tempfile.TemporaryDirectory(prefix="driftmon-labeling-bench-") as name:
        tmp = Path(name)
        embedded = None if redis_url else EmbeddedRedis(tmp / "redis-data")
        if embedded is not None:
            embedded.start()
        url = embedded.url if embedded is not None else str(redis_url)
        try:
            if flagging:
                flagged = bench_flagging(url, sizes.events, sizes.reference_rows, sizes.repeats)
            if annotations:
                annotated = asyncio.run(
                    bench_annotations(
                        url, tmp, sizes.tasks, sizes.seconds, sizes.annotators, sizes.profile
                    )
                )
        finally:
            if embedded is not None:
                embedded.stop()
    return flagged, annotated


ANNOTATIONS_TARGET = 500.0  # per second
FLAGGING_TARGET = 0.10  # flag_samples / the run without flagging


def run(quick: bool = False) -> list[Figure]:
    """Flagging overhead on a detection run, and annotations/s through the API."""
    sizes = Sizes.of(quick)
    flagged, annotated = measure(sizes, None)
    if flagged is None or annotated is None:
        raise RuntimeError("both parts run when neither is skipped")
    return [
        Figure.compare(
            f"flag_samples, {sizes.events // 1000}k-event window",
            flagged.flag * 1e3,
            "ms",
            baseline="the run without flagging (decode + evaluate)",
            baseline_value=flagged.run_plain * 1e3,
            target=at_most(FLAGGING_TARGET),
            where_the_time_goes="flag_samples alone, on the decoded window and the run's "
            "verdicts; this bench does not break it down further",
        ),
        Figure.compare(
            f"annotations through the API, {sizes.annotators} annotators",
            annotated.rate,
            "annotations/s",
            baseline="GET /v1/silences, same client",
            baseline_value=annotated.baseline,
            target=at_least(ANNOTATIONS_TARGET, on_value=True),
            where_the_time_goes=f"server CPU {annotated.server_cpu * 1e3:.2f} ms and Redis "
            f"CPU {annotated.redis_cpu * 1e3:.2f} ms per annotation",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller, for a smoke run")
    parser.add_argument("--events", type=int, default=None, help="window (100000)")
    parser.add_argument("--reference-rows", type=int, default=None, help="(100000)")
    parser.add_argument("--repeats", type=int, default=None, help="turns of part 1 (3)")
    parser.add_argument("--tasks", type=int, default=None, help="queued tasks (20000)")
    parser.add_argument("--seconds", type=float, default=None, help="per phase of part 2 (10)")
    parser.add_argument("--annotators", type=int, default=8, help="concurrent annotators")
    parser.add_argument("--profile", action="store_true", help="cProfile the server")
    parser.add_argument("--skip-flagging", action="store_true")
    parser.add_argument("--skip-annotations", action="store_true")
    parser.add_argument("--redis-url", default=None, help="default: an embedded Redis")
    args = parser.parse_args()
    default = Sizes.of(args.quick)
    sizes = Sizes(
        events=args.events or default.events,
        reference_rows=args.reference_rows or default.reference_rows,
        repeats=args.repeats or default.repeats,
        tasks=args.tasks or default.tasks,
        seconds=args.seconds or default.seconds,
        annotators=args.annotators,
        profile=args.profile,
    )
    flagged, annotated = measure(
        sizes, args.redis_url, not args.skip_flagging, not args.skip_annotations
    )
    met = [
        flagged is None or flagged.ratio < FLAGGING_TARGET,
        annotated is None or annotated.rate >= ANNOTATIONS_TARGET,
    ]
    sys.exit(0 if all(met) else 1)


if __name__ == "__main__":
    main()
