"""Intake latency while a detection runs: p99 of single-event POSTs while a 100k-event
detection is running, against p99 for as long again right after it with nothing
running, for detection in a worker process (the default) and in a thread of the
server (detection_workers=0), several runs each, all in one run of this script.

    python -m bench.intake_latency_bench [--events 100000] [--rounds 3] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.detection_bench import reference_frame
from bench.window_bench import CATEGORICAL, NUMERICAL, show
from service.launch import free_port, serve_command, wait_until_ready

MODEL = "latency"


def start_server(
    port: int, data_dir: Path, workers: int, redis_url: str | None
) -> subprocess.Popen[bytes]:
    options = [
        "--detection-workers", str(workers), "--schedule-seconds", "86400",
        "--window-max-events", "1000000", "--key-prefix", f"bench-latency-{workers}:",
    ]  # fmt: skip
    if redis_url:
        options += ["--redis-url", redis_url]
    log = open(data_dir / f"server-{workers}.log", "wb")  # noqa: SIM115  (lives with the server)
    server = subprocess.Popen(
        serve_command(port, data_dir, *options), stdout=log, stderr=subprocess.STDOUT
    )
    if not wait_until_ready(f"http://127.0.0.1:{port}", server, timeout=60):
        server.kill()
        raise RuntimeError(f"server did not start; see {data_dir}")
    return server


def event(i: int, rng: np.random.Generator) -> dict[str, object]:
    features: dict[str, object] = {name: float(rng.normal()) for name in NUMERICAL}
    features.update({name: str(rng.choice(["alpha", "beta"])) for name in CATEGORICAL})
    return {"event_id": f"lat-{i}", "features": features}


def load(client: httpx.Client, events: int) -> None:
    body = reference_frame(events).to_csv(index=False).encode()
    client.put(f"/v1/models/{MODEL}/reference", content=body).raise_for_status()
    rng = np.random.default_rng(3)
    for start in range(0, events, 2000):
        batch = [event(i, rng) for i in range(start, min(events, start + 2000))]
        client.post(f"/v1/models/{MODEL}/events", json=batch).raise_for_status()


def latencies(client: httpx.Client, offset: int, until: Callable[[], bool]) -> list[float]:
    """Single-event POSTs one after another, as a model server's logger sends them."""
    rng = np.random.default_rng(offset)
    samples: list[float] = []
    while not until():
        began = time.perf_counter()
        event_body = event(offset + len(samples), rng)
        client.post(f"/v1/models/{MODEL}/events", json=event_body).raise_for_status()
        samples.append(time.perf_counter() - began)
    return samples


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1000


@dataclass
class Round:
    idle: list[float]
    busy: list[float]
    run_seconds: float

    @property
    def ratio(self) -> float:
        return percentile(self.busy, 99) / percentile(self.idle, 99)


def describe(result: Round) -> str:
    idle, busy = percentile(result.idle, 99), percentile(result.busy, 99)
    return (
        f"{result.run_seconds:.1f} s; intake p99 idle {idle:.1f} ms ({len(result.idle)} "
        f"requests), during the run {busy:.1f} ms ({len(result.busy)}): {result.ratio:.2f}x"
    )


def one_round(client: httpx.Client, url: str, number: int) -> Round:
    """Intake while a detection runs, then intake for as long again with nothing
    running: both p99s come from as many seconds of the same machine's time."""
    done = threading.Event()
    durations: list[float] = []

    def detect() -> None:
        with httpx.Client(base_url=url, timeout=300) as other:
            run = other.post(f"/v1/models/{MODEL}/runs").raise_for_status().json()
        durations.append(run["duration_seconds"])
        done.set()

    runner = threading.Thread(target=detect)
    began = time.perf_counter()
    runner.start()
    busy = latencies(client, 20_000_000 * (number + 1), done.is_set)
    runner.join()
    deadline = time.perf_counter() + (time.perf_counter() - began)
    idle = latencies(client, 10_000_000 * (number + 1), lambda: time.perf_counter() > deadline)
    return Round(idle, busy, durations[0])


def measure(
    workers: int, events: int, rounds: int, data_dir: Path, redis_url: str | None
) -> list[Round]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, data_dir, workers, redis_url)
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            load(client, events)
            client.post(f"/v1/models/{MODEL}/runs").raise_for_status()  # warm the worker
            return [one_round(client, url, number) for number in range(rounds)]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="detections per mode")
    parser.add_argument("--redis-url", default=None, help="default: each server embeds one")
    args = parser.parse_args()
    os.environ.setdefault("DRIFTMON_LOG_LEVEL", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        for workers, label in ((1, "worker process"), (0, "server thread")):
            data_dir = Path(tmp) / f"w{workers}"
            data_dir.mkdir()
            results = measure(workers, args.events, args.rounds, data_dir, args.redis_url)
            for number, result in enumerate(results, 1):
                show(f"detection in a {label}, run {number}", describe(result))
            idle = [sample for result in results for sample in result.idle]
            busy = [sample for result in results for sample in result.busy]
            show(
                f"detection in a {label}, all runs",
                f"p99 during runs / idle p99 = {percentile(busy, 99) / percentile(idle, 99):.2f}x"
                f" (goal <= 2x); median of runs {np.median([r.ratio for r in results]):.2f}x",
            )


if __name__ == "__main__":
    main()
