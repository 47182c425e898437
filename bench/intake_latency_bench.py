"""Intake latency while a detection runs: p99 of single-event POSTs while a 100k-event
detection is running, against p99 for as long again right after it with nothing
running, for detection in a worker process (the default) and in a thread of the
server (detection_workers=0), several runs each, all in one run of this script.

    python -m bench.intake_latency_bench [--events 100000] [--rounds 3] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.common import (
    CATEGORICAL,
    NUMERICAL,
    Figure,
    at_most,
    free_port,
    percentile,
    show,
    start_server,
    stop_server,
)
from bench.detection_bench import reference_frame

MODEL = "latency"


def server_options(workers: int, redis_url: str | None) -> list[str]:
    options = [
        "--detection-workers", str(workers), "--schedule-seconds", "86400",
        "--window-max-events", "1000000", "--key-prefix", f"bench-latency-{workers}:",
    ]  # fmt: skip
    return [*options, "--redis-url", redis_url] if redis_url else options


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


def p99_ms(samples: list[float]) -> float:
    return percentile(samples, 99) * 1000


@dataclass
class Round:
    idle: list[float]
    busy: list[float]
    run_seconds: float

    @property
    def ratio(self) -> float:
        return p99_ms(self.busy) / p99_ms(self.idle)


def describe(result: Round) -> str:
    idle, busy = p99_ms(result.idle), p99_ms(result.busy)
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
    options = server_options(workers, redis_url)
    server = start_server(port, data_dir, options, log_name=f"server-{workers}.log")
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            load(client, events)
            client.post(f"/v1/models/{MODEL}/runs").raise_for_status()  # warm the worker
            return [one_round(client, url, number) for number in range(rounds)]
    finally:
        stop_server(server)


MODES = {1: "worker process", 0: "server thread"}


def measure_modes(
    modes: list[int], events: int, rounds: int, redis_url: str | None
) -> dict[int, list[Round]]:
    """Each mode's rounds, on a server of its own; prints them as they come."""
    os.environ.setdefault("DRIFTMON_LOG_LEVEL", "warning")
    results: dict[int, list[Round]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in modes:
            data_dir = Path(tmp) / f"w{workers}"
            data_dir.mkdir()
            results[workers] = measure(workers, events, rounds, data_dir, redis_url)
            report(MODES[workers], results[workers])
    return results


def report(label: str, results: list[Round]) -> None:
    for number, result in enumerate(results, 1):
        show(f"detection in a {label}, run {number}", describe(result))
    idle, busy = pooled(results)
    show(
        f"detection in a {label}, all runs",
        f"p99 during runs / idle p99 = {p99_ms(busy) / p99_ms(idle):.2f}x"
        f" (goal <= 2x); median of runs {np.median([r.ratio for r in results]):.2f}x",
    )


def pooled(results: list[Round]) -> tuple[list[float], list[float]]:
    idle = [sample for result in results for sample in result.idle]
    busy = [sample for result in results for sample in result.busy]
    return idle, busy


def run(quick: bool = False) -> list[Figure]:
    """Intake p99 during a 100k detection against idle p99: the worker process (the
    default) in one round; with `quick=False` three rounds, and the server thread too."""
    modes = [1] if quick else [1, 0]
    results = measure_modes(modes, 100_000, 1 if quick else 3, None)
    figures = []
    for workers, rounds in results.items():
        idle, busy = pooled(rounds)
        seconds = float(np.median([r.run_seconds for r in rounds]))
        figures.append(
            Figure.compare(
                f"intake p99 during a 100k detection ({MODES[workers]})",
                p99_ms(busy),
                "ms",
                baseline="idle intake p99, as long again",
                baseline_value=p99_ms(idle),
                target=at_most(2.0),
                where_the_time_goes=f"the detection ({seconds:.1f} s) competes for the 2 "
                "cores"
                + (
                    " from its worker process"
                    if workers
                    else " and, in a thread, for the server's GIL"
                ),
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="detections per mode")
    parser.add_argument("--redis-url", default=None, help="default: each server embeds one")
    args = parser.parse_args()
    measure_modes([1, 0], args.events, args.rounds, args.redis_url)


if __name__ == "__main__":
    main()
