"""What every benchmark shares: the `Figure` it reports, targets, the synthetic feature
layout, an embedded Redis, a `driftmon serve` child, timers and percentiles.

The shape of a benchmark module (what `python -m bench.run_all` calls)
---------------------------------------------------------------------
Every module `bench/<name>_bench.py` exposes

    def run(quick: bool = False) -> list[Figure]: ...

which measures everything itself (its own Redis, servers and load generators, all
stopped before it returns) and returns one `Figure` per headline number. `quick=True`
is what `make bench` uses: the whole of `make bench` has to finish in under 10 minutes
on 2 cores, so a quick run takes fewer rounds or events, never a different workload;
`python -m bench.run_all --full` passes `quick=False`. `run` may print progress; the
harness runs each module in a child process and keeps that output in
`bench/results/<name>.log`. `python -m bench.<name>` keeps its own command line.

A `Figure` puts a driftmon number next to a baseline measured in the same run:

    Figure.compare(
        "single-event POST, 16 connections", 850.0, "req/s",
        baseline="no-op endpoint", baseline_value=4000.0,
        target=at_least(0.6),          # on the ratio value / baseline_value
        where_the_time_goes="validation and the append script per request",
    )

`ratio` is always value / baseline_value (so a latency or a duration wants a ratio
below 1 and says so with `at_most`). A target on the value itself (a time limit, a
rate floor) uses `at_most(0.2, on_value=True)`. `met` is None when there is no
target; the table says "missed" where it is False. `where_the_time_goes` is one line
on the slowest stage of the figure: from a profile or the module's own stages, never
a guess.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from service.embedded_redis import EmbeddedRedis
from service.launch import free_port, serve_command, wait_until_ready

__all__ = [
    "CATEGORICAL",
    "NUMERICAL",
    "Figure",
    "Target",
    "at_least",
    "at_most",
    "best_of",
    "embedded_redis_url",
    "free_port",
    "percentile",
    "redis_connection",
    "redis_url_or_embedded",
    "show",
    "start_server",
    "stop_server",
    "timed",
]

T = TypeVar("T")

# the feature layout: 20 numerical and 5 categorical columns
NUMERICAL = tuple(f"num_{i:02d}" for i in range(20))
CATEGORICAL = tuple(f"cat_{i}" for i in range(5))


# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal for a figure: `bound` on the ratio (default) or on the value itself."""

    direction: Literal["at_least", "at_most"]
    bound: float
    on_value: bool = False
    unit: str = ""

    def met_by(self, value: float, ratio: float | None) -> bool | None:
        measured = value if self.on_value else ratio
        if measured is None:
            return None
        return measured >= self.bound if self.direction == "at_least" else measured <= self.bound

    def describe(self) -> str:
        sign = "≥" if self.direction == "at_least" else "≤"
        if self.on_value:
            return f"{sign} {self.bound:g} {self.unit}".rstrip()
        return f"{sign} {self.bound:g}x"


def at_least(bound: float, on_value: bool = False, unit: str = "") -> Target:
    return Target("at_least", bound, on_value, unit)


def at_most(bound: float, on_value: bool = False, unit: str = "") -> Target:
    return Target("at_most", bound, on_value, unit)


class Figure(BaseModel):
    """One headline number of a benchmark, next to its baseline from the same run."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None  # value / baseline_value
    target: str | None = None  # as shown, e.g. "≥ 0.6x" or "≤ 200 ms"
    met: bool | None = None  # None: no target
    where_the_time_goes: str = ""

    @classmethod
    def compare(
        cls,
        name: str,
        value: float,
        unit: str,
        *,
        baseline: str | None = None,
        baseline_value: float | None = None,
        target: Target | None = None,
        where_the_time_goes: str = "",
    ) -> Figure:
        ratio = value / baseline_value if baseline_value else None
        if target is not None and target.on_value and not target.unit:
            target = Target(target.direction, target.bound, True, unit)
        return cls(
            name=name,
            value=value,
            unit=unit,
            baseline=baseline,
            baseline_value=baseline_value,
            ratio=ratio,
            target=target.describe() if target else None,
            met=target.met_by(value, ratio) if target else None,
            where_the_time_goes=where_the_time_goes,
        )


# --- printing, timing, statistics -----------------------------------------------------------


def row_features(
    numbers: Sequence[float], categories: Sequence[object]
) -> dict[str, float | str | None]:
    """One synthetic event's features from a row of each matrix; NaN is a missing value."""
    features: dict[str, float | str | None] = {
        name: (None if np.isnan(value) else value)
        for name, value in zip(NUMERICAL, numbers, strict=True)
    }
    features.update(
        (name, None if value is None else str(value))
        for name, value in zip(CATEGORICAL, categories, strict=True)
    )
    return features


def show(label: str, text: str) -> None:
    print(f"{label:<36} {text}", flush=True)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    value = action()
    return value, time.perf_counter() - began


async def best_of(repeats: int, action: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Best and median seconds of `repeats` awaits of `action`."""
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        await action()
        timings.append(time.perf_counter() - began)
    return min(timings), statistics.median(timings)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `samples`, in their own unit; 0.0 for none."""
    return float(np.percentile(samples, q)) if len(samples) else 0.0


# --- Redis ----------------------------------------------------------------------------------


@contextmanager
def embedded_redis_url() -> Iterator[str]:
    """A redis-server of this benchmark alone, in a temp dir: never the machine's."""
    with tempfile.TemporaryDirectory() as data_dir, EmbeddedRedis(Path(data_dir)) as embedded:
        yield embedded.url


@asynccontextmanager
async def redis_connection(
    url: str | None, connect: Callable[[str], Redis] = Redis.from_url
) -> AsyncIterator[Redis]:
    """A client of `url`, or of an embedded Redis when `url` is None; closed after.
    `connect=connect_redis` gives the service's own client (timeouts, retries)."""
    with redis_url_or_embedded(url) as resolved:
        redis = connect(resolved)
        try:
            yield redis
        finally:
            await redis.aclose()


@contextmanager
def redis_url_or_embedded(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with embedded_redis_url() as embedded:
        yield embedded


# --- a driftmon server ----------------------------------------------------------------------


def start_server(
    port: int,
    data_dir: Path,
    options: Sequence[str],
    env: dict[str, str] | None = None,
    log_name: str = "server.log",
    profile_to: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`driftmon serve` on `port` with `options`, its output in `data_dir/log_name`
    (under cProfile, writing `profile_to`, when given); returns once /readyz answers."""
    command = serve_command(port, data_dir, *options)
    if profile_to is not None:  # python -m cProfile -o FILE -m service.cli serve ...
        command = [command[0], "-m", "cProfile", "-o", str(profile_to), *command[1:]]
    log = open(data_dir / log_name, "wb")  # noqa: SIM115  (lives with the server)
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if not wait_until_ready(f"http://127.0.0.1:{port}", server, timeout=60):
        server.kill()
        server.wait()
        raise RuntimeError(f"server did not start; see {data_dir / log_name}")
    return server


def stop_server(server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
