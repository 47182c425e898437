"""A fleet of models x 25 features (20 numerical, 5 categorical) on one schedule: how long
one round of scheduled detections takes, with 1 and with 2 `driftmon serve` replicas on
the same Redis, and intake p99 during the round against idle.

The round is read from the stored runs (`GET /v1/models/{m}/runs`): from the earliest
`started_at` to the latest `started_at + duration_seconds` of the tick's scheduled runs,
never from timers around HTTP calls. Every (model, tick) must have run exactly once
across the replicas (the run lease). Intake load is `wrk` posting single events, round
robin over the models (bench/fleet_wrk.py); idle p99 is the same load on a replica with
the scheduler off, over the same Redis and data.

    python -m bench.fleet_bench [--quick]

Full: 100 models on a 60 s schedule with 5,000-event windows. Quick: 50 models on a 30 s
schedule with the same windows: half the work in half the interval, so the share of the
interval compares, in about half the time.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import orjson
from redis import Redis

from bench.common import (
    CATEGORICAL,
    NUMERICAL,
    Figure,
    at_most,
    embedded_redis_url,
    free_port,
    show,
    start_server,
    stop_server,
)
from bench.detection_bench import reference_frame
from bench.fleet_wrk import ChunkedLoad, Latencies, merged
from core.keys import Keys
from core.results import RunResult
from core.stores.lease import tick_of
from detectors.window import iso

ROUND_SHARE_TARGET = 0.5  # of the interval
P99_TARGET = 2.0  # times the idle p99
BODY_EVENTS = 1000
CHUNK_SECONDS = 2.0
IDLE_SECONDS = 10.0


@dataclass(frozen=True)
class Fleet:
    models: int
    interval_seconds: float
    window_events: int

    def names(self) -> list[str]:
        return [f"fleet-{i:03d}" for i in range(self.models)]

    def options(self, redis_url: str, scheduled: bool) -> list[str]:
        return [
            "--redis-url", redis_url,
            "--schedule-seconds", f"{self.interval_seconds:g}",
            "--window-max-events", str(self.window_events),
            "--max-models", str(self.models + 10),
            "--log-level", "warning",
            "--scheduler-enabled" if scheduled else "--no-scheduler-enabled",
        ]  # fmt: skip


FULL = Fleet(models=100, interval_seconds=60, window_events=5000)
QUICK = Fleet(models=50, interval_seconds=30, window_events=5000)


@dataclass(frozen=True)
class Round:
    """One tick of the fleet, as the stored runs tell it."""

    replicas: int
    tick_at: float
    first_start: float
    last_end: float
    runs: list[RunResult]
    not_once: int  # models whose tick ran zero or several times
    by_replica: Counter[str]
    intake: Latencies

    @property
    def seconds(self) -> float:
        return self.last_end - self.first_start


def window_bodies(events: int) -> list[bytes]:
    """The window's events as bodies of BODY_EVENTS, the same for every model (ids are
    unique per model); the numbers a little shifted from the reference."""
    rng = np.random.default_rng(2)
    numbers = rng.normal(0.05, 1.0, size=(events, len(NUMERICAL))).round(5)
    labels = rng.choice(["alpha", "beta", "gamma", "delta"], size=(events, len(CATEGORICAL)))
    records = []
    for i in range(events):
        features: dict[str, object] = dict(zip(NUMERICAL, numbers[i].tolist(), strict=True))
        features.update(zip(CATEGORICAL, labels[i].tolist(), strict=True))
        records.append({"event_id": f"seed-{i}", "features": features})
    return [orjson.dumps(records[i : i + BODY_EVENTS]) for i in range(0, events, BODY_EVENTS)]


def seed(client: httpx.Client, fleet: Fleet) -> None:
    """The references through the API, then each model's window, many events a body."""
    reference = reference_frame(5000).to_csv(index=False).encode()
    bodies = window_bodies(fleet.window_events)
    headers = {"Content-Type": "application/json"}
    for model in fleet.names():
        client.put(f"/v1/models/{model}/reference", content=reference).raise_for_status()
        for body in bodies:
            response = client.post(f"/v1/models/{model}/events", content=body, headers=headers)
            response.raise_for_status()


def next_tick_after(moment: float, interval: float) -> float:
    return math.ceil(moment / interval) * interval


def runs_of_tick(client: httpx.Client, fleet: Fleet, tick_at: float) -> dict[str, list[RunResult]]:
    """Each model's scheduled runs that started in the tick's interval."""
    wanted = tick_of(tick_at, fleet.interval_seconds)
    found: dict[str, list[RunResult]] = {}
    for model in fleet.names():
        response = client.get(f"/v1/models/{model}/runs", params={"limit": 20})
        response.raise_for_status()
        runs = [RunResult.model_validate(raw) for raw in response.json()["runs"]]
        found[model] = [
            run for run in runs
            if run.trigger == "schedule"
            and math.floor(epoch(run.started_at) / fleet.interval_seconds) == wanted
        ]  # fmt: skip
    return found


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_for_round(client: httpx.Client, fleet: Fleet, tick_at: float) -> None:
    """Until every model's latest run is of this tick or later, or the next tick ends.
    Reads one small field per model: `/latest` of each, at most every 2 s."""
    deadline = tick_at + 2 * fleet.interval_seconds
    pending = set(fleet.names())
    while pending and time.time() < deadline:
        time.sleep(2.0)
        for model in sorted(pending):
            response = client.get(f"/v1/models/{model}/runs/latest")
            if response.status_code == 200 and epoch(response.json()["started_at"]) >= tick_at:
                pending.discard(model)


def holders(redis_url: str, fleet: Fleet, tick_at: float) -> Counter[str]:
    """Which replica (host:pid) took each model's lease of the tick."""
    keys, tick = Keys("driftmon:"), tick_of(tick_at, fleet.interval_seconds)
    with Redis.from_url(redis_url) as redis:
        values = redis.mget([keys.run_lease(model, tick) for model in fleet.names()])
    return Counter(value.decode() if value else "none" for value in values)


def measure_round(redis_url: str, folder: Path, fleet: Fleet, replicas: int) -> Round:
    """Start the replicas, load intake across the first tick after they are all ready,
    wait for its round, then read the runs back."""
    with ExitStack() as stack:
        ports = []
        for replica in range(replicas):
            port = free_port()
            data_dir = folder / f"r{replicas}-{replica}"
            data_dir.mkdir()
            server = start_server(port, data_dir, fleet.options(redis_url, scheduled=True))
            stack.callback(stop_server, server)
            ports.append(port)
        url = f"http://127.0.0.1:{ports[0]}"
        tick_at = next_tick_after(time.time() + 3, fleet.interval_seconds)
        show(f"{replicas} replica(s): waiting for tick", iso(tick_at))
        time.sleep(max(0.0, tick_at - time.time() - CHUNK_SECONDS))
        load = ChunkedLoad(url, folder, fleet.names(), CHUNK_SECONDS)
        load.start()
        with httpx.Client(base_url=url, timeout=60) as client:
            try:
                wait_for_round(client, fleet, tick_at)
            finally:
                chunks = load.stop()
            found = runs_of_tick(client, fleet, tick_at)
        by_replica = holders(redis_url, fleet, tick_at)
    runs = [run for model_runs in found.values() for run in model_runs]
    if not runs:
        raise RuntimeError(f"no scheduled run of tick {iso(tick_at)}; see {folder}")
    first_start = min(epoch(run.started_at) for run in runs)
    last_end = max(epoch(run.started_at) + run.duration_seconds for run in runs)
    return Round(
        replicas=replicas,
        tick_at=tick_at,
        first_start=first_start,
        last_end=last_end,
        runs=runs,
        not_once=sum(1 for model_runs in found.values() if len(model_runs) != 1),
        by_replica=by_replica,
        intake=merged(chunks, since=first_start, until=last_end),
    )


def measure_idle(redis_url: str, folder: Path, fleet: Fleet, seconds: float) -> Latencies:
    """Seed the fleet through a replica with the scheduler off, then its idle p99."""
    port = free_port()
    data_dir = folder / "seed"
    data_dir.mkdir()
    server = start_server(port, data_dir, fleet.options(redis_url, scheduled=False))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            began = time.perf_counter()
            seed(client, fleet)
            show("seeded", f"{fleet.models} models x {fleet.window_events:,} events "
                 f"in {time.perf_counter() - began:.1f} s")  # fmt: skip
        load = ChunkedLoad(f"http://127.0.0.1:{port}", folder, fleet.names(), CHUNK_SECONDS)
        load.start()
        time.sleep(seconds)
        return merged(load.stop())
    finally:
        stop_server(server)


def describe(result: Round, fleet: Fleet, idle: Latencies) -> None:
    durations = [run.duration_seconds for run in result.runs]
    statuses = dict(Counter(run.status for run in result.runs))
    label = f"{result.replicas} replica(s)"
    share = result.seconds / fleet.interval_seconds
    delay = result.first_start - result.tick_at
    show(f"{label}: round", f"{result.seconds:.1f} s = {share:.0%} of {fleet.interval_seconds:g} s")
    show(f"{label}: first run started", f"{delay:.2f} s after the tick")
    show(f"{label}: runs", f"{len(result.runs)} {statuses}")
    show(
        f"{label}: run duration",
        f"mean {np.mean(durations):.2f} s, max {max(durations):.2f} s, sum {sum(durations):.1f} s",
    )
    show(f"{label}: (model, tick) not exactly once", str(result.not_once))
    leases = ", ".join(f"{holder}: {count}" for holder, count in result.by_replica.items())
    show(f"{label}: leases by replica", leases)
    intake = result.intake
    show(
        f"{label}: intake p99 in the round",
        f"{intake.worst_p99_ms():.1f} ms ({intake.requests:,} requests in {len(intake.chunks)} "
        f"chunks, {intake.errors} errors); idle {idle.worst_p99_ms():.1f} ms",
    )


def where_round_goes(result: Round) -> str:
    busy = sum(run.duration_seconds for run in result.runs)
    mean = busy / len(result.runs)
    return (
        f"{len(result.runs)} runs of {mean:.2f} s each (window read, evaluation in the worker "
        f"pool, KPIs), {busy:.1f} s of run time in a {result.seconds:.1f} s round"
    )


def figures_of(fleet: Fleet, idle: Latencies, one: Round, two: Round) -> list[Figure]:
    size = f"{fleet.models} models x 25 features, {fleet.window_events:,}-event windows"
    idle_p99 = idle.worst_p99_ms()
    figures = [
        Figure.compare(
            f"fleet round, 1 replica ({size})", one.seconds, "s",
            baseline=f"the {fleet.interval_seconds:g} s interval",
            baseline_value=fleet.interval_seconds, target=at_most(ROUND_SHARE_TARGET),
            where_the_time_goes=where_round_goes(one),
        ),
        Figure.compare(
            "fleet round, 2 replicas on one Redis", two.seconds, "s",
            baseline="the round with 1 replica", baseline_value=one.seconds,
            where_the_time_goes=where_round_goes(two),
        ),
    ]  # fmt: skip
    for result in (one, two):
        figures.append(
            Figure.compare(
                f"intake p99 during the fleet round, {result.replicas} replica(s)",
                result.intake.worst_p99_ms(), "ms",
                baseline="idle, same load, scheduler off (worst 2 s chunk p99)",
                baseline_value=idle_p99,
                target=at_most(P99_TARGET),
                where_the_time_goes="detections share the 2 cores with intake",
            )
        )  # fmt: skip
    figures.append(
        Figure.compare(
            "fleet (model, tick) not run exactly once", float(one.not_once + two.not_once),
            "models", target=at_most(0, on_value=True),
            where_the_time_goes="the run lease of each (model, tick)",
        )
    )  # fmt: skip
    return figures


def run(quick: bool = False) -> list[Figure]:
    """The fleet's round with 1 and 2 replicas (full: about 5 minutes; quick: about 3)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    fleet = QUICK if quick else FULL
    if quick:
        show(
            "quick mode",
            f"{fleet.models} models on a {fleet.interval_seconds:g} s schedule (full: "
            f"{FULL.models} on {FULL.interval_seconds:g} s): same share of the interval",
        )
    with (
        tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp,
        embedded_redis_url() as redis_url,
    ):
        folder = Path(tmp)
        idle = measure_idle(redis_url, folder, fleet, IDLE_SECONDS / (2 if quick else 1))
        one = measure_round(redis_url, folder, fleet, replicas=1)
        describe(one, fleet, idle)
        two = measure_round(redis_url, folder, fleet, replicas=2)
        describe(two, fleet, idle)
    show("round time, 2 replicas / 1", f"{two.seconds / one.seconds:.2f}x")
    return figures_of(fleet, idle, one, two)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="50 models on a 30 s schedule")
    args = parser.parse_args()
    for figure in run(args.quick):
        verdict = "met" if figure.met else "MISSED"
        met = "" if figure.met is None else f" (target {figure.target}: {verdict})"
        ratio = "" if figure.ratio is None else f" {figure.baseline}: {figure.ratio:.2f}x"
        show(figure.name, f"{figure.value:.2f} {figure.unit}{ratio}{met}")


if __name__ == "__main__":
    main()
