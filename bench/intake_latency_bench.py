"""Intake latency while a detection runs: p50/p99 of single-event POSTs when idle and
while a 100k-event detection is running, for detection in a worker process (the
default) and in a thread of the server (detection_workers=0), all in one run.

    python -m bench.intake_latency_bench [--events 100000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import threading
import time
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


def latencies(
    client: httpx.Client, count: int, offset: int, until: threading.Event | None
) -> list[float]:
    rng = np.random.default_rng(offset)
    samples: list[float] = []
    i = 0
    while (until is None and i < count) or (until is not None and not until.is_set()):
        began = time.perf_counter()
        client.post(f"/v1/models/{MODEL}/events", json=event(offset + i, rng)).raise_for_status()
        samples.append(time.perf_counter() - began)
        i += 1
    return samples


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1000


def measure(
    workers: int, events: int, data_dir: Path, redis_url: str | None
) -> tuple[float, float, int, float]:
    port = free_port()
    server = start_server(port, data_dir, workers, redis_url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            load(client, events)
            client.post(f"/v1/models/{MODEL}/runs").raise_for_status()  # warm the worker
            idle = latencies(client, 400, 10_000_000, None)
            done = threading.Event()

            def detect() -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as other:
                    run = other.post(f"/v1/models/{MODEL}/runs").raise_for_status().json()
                durations.append(run["duration_seconds"])
                done.set()

            durations: list[float] = []

            runner = threading.Thread(target=detect)
            runner.start()
            busy = latencies(client, 0, 20_000_000, done)
            runner.join()
        return percentile(idle, 99), percentile(busy, 99), len(busy), durations[0]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--redis-url", default=None, help="default: each server embeds one")
    args = parser.parse_args()
    os.environ.setdefault("DRIFTMON_LOG_LEVEL", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        for workers, label in ((1, "worker process"), (0, "server thread")):
            data_dir = Path(tmp) / f"w{workers}"
            data_dir.mkdir()
            idle, busy, samples, seconds = measure(workers, args.events, data_dir, args.redis_url)
            show(
                f"detection in a {label}",
                f"run {seconds:.1f} s; intake p99 idle {idle:.1f} ms, during the run "
                f"{busy:.1f} ms ({samples} requests): {busy / idle:.2f}x",
            )


if __name__ == "__main__":
    main()
