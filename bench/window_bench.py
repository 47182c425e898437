"""Window read benchmark: 100k events of 25 features (20 numerical, 5 categorical).

Measures the time to load the window as a DataFrame through the EventStore, next to two
baselines measured in the same run on the same Redis:
- the bare XRANGE of the block stream (the floor: Redis transfer and reply parsing);
- a naive layout, one stream entry per event holding its JSON, read and decoded.

    python -m bench.window_bench [--events 100000] [--batch 500] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from redis.asyncio import Redis

from bench.common import CATEGORICAL, NUMERICAL, Figure, best_of, redis_connection, show
from core.blocks import EncodedBatch, Layout
from core.events import Event
from core.keys import Keys
from core.redis_types import entries
from core.stores.events import EventStore, RetentionPolicy

__all__ = ["CATEGORICAL", "NUMERICAL", "T0", "make_events", "run", "show"]

T0 = 1_800_000_000.0


def make_events(count: int, seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(count, len(NUMERICAL)))
    categories = rng.choice(["alpha", "beta", "gamma", "delta"], size=(count, len(CATEGORICAL)))
    events = []
    for i in range(count):
        features: dict[str, float | str | None] = dict(
            zip(NUMERICAL, numbers[i].tolist(), strict=True)
        )
        features.update(zip(CATEGORICAL, categories[i].tolist(), strict=True))
        events.append(Event(f"ev-{i}", T0 + i / 1000, "7", features, "1", {"1": 0.7}))
    return events


def record(event: Event) -> dict[str, object]:
    """The event as a client sends it."""
    return {
        "event_id": event.event_id,
        "timestamp": event.timestamp,
        "features": event.features,
        "prediction": event.prediction,
        "scores": event.scores,
    }


async def fill_naive(redis: Redis, key: str, events: list[Event]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.xadd(key, {"e": json.dumps(record(event))})
        await pipe.execute()


async def read_naive(redis: Redis, key: str) -> pd.DataFrame:
    records = [json.loads(fields[b"e"]) for _, fields in entries(await redis.xrange(key))]
    return pd.DataFrame.from_records([record["features"] for record in records])


@dataclass(frozen=True)
class WindowFigures:
    events: int
    batch: int
    write_seconds: float
    store: tuple[float, float]  # best, median seconds of read_window
    bare: tuple[float, float]  # of the bare XRANGE
    naive: tuple[float, float]  # of one JSON entry per event
    shape: tuple[int, int]


async def measure(redis: Redis, events_count: int, batch: int, repeats: int) -> WindowFigures:
    keys = Keys("bench:")
    events_store = EventStore(redis, keys)
    layout = Layout(NUMERICAL, CATEGORICAL)
    policy = RetentionPolicy(max_age_seconds=86400, max_events=10 * events_count)
    events = make_events(events_count)
    await redis.delete(keys.events("w"), keys.events_index("w"), "bench:naive")
    began = time.perf_counter()
    for start in range(0, events_count, batch):
        encoded = EncodedBatch.from_events(events[start : start + batch], layout)
        await events_store.append("w", encoded, policy, now=T0)
    write_s = time.perf_counter() - began
    await fill_naive(redis, "bench:naive", events)

    stream = keys.events("w")
    store = await best_of(repeats, lambda: events_store.read_window("w", T0 - 1, events_count))
    bare = await best_of(repeats, lambda: redis.xrange(stream))
    naive = await best_of(repeats, lambda: read_naive(redis, "bench:naive"))
    frame = await events_store.read_window("w", T0 - 1, events_count)
    await redis.delete(stream, keys.events_index("w"), keys.events_seen("w"), "bench:naive")
    return WindowFigures(events_count, batch, write_s, store, bare, naive, frame.shape)


def report(result: WindowFigures) -> None:
    features = len(NUMERICAL) + len(CATEGORICAL)
    write_s = result.write_seconds
    show("events", f"{result.events:,} x {features} features, batches of {result.batch}")
    show("write through EventStore", f"{write_s:.2f} s ({result.events / write_s:,.0f} events/s)")
    show(
        "window load (read_window)", f"best {result.store[0]:.3f} s, median {result.store[1]:.3f} s"
    )
    show("  frame shape", str(result.shape))
    show("baseline: bare XRANGE of blocks", f"best {result.bare[0]:.3f} s")
    show(
        "baseline: one JSON entry per event",
        f"best {result.naive[0]:.3f} s, median {result.naive[1]:.3f} s",
    )
    show("ratio naive / window load", f"{result.naive[0] / result.store[0]:.1f}x")


async def measure_on(url: str | None, events: int, batch: int, repeats: int) -> WindowFigures:
    async with redis_connection(url) as redis:
        return await measure(redis, events, batch, repeats)


def run(quick: bool = False) -> list[Figure]:
    """The 100k-event window load against the bare XRANGE and the naive layout."""
    result = asyncio.run(measure_on(None, 100_000, 500, 3 if quick else 5))
    report(result)
    transfer = result.bare[0] / result.store[0]
    where = (
        f"the XRANGE transfer of the blocks is {transfer:.0%} of the load; the rest is "
        "decoding the blocks into columns (core/blocks.py) and building the DataFrame"
    )
    return [
        Figure.compare(
            f"window load, {result.events // 1000}k events x 25 features",
            result.store[0],
            "s",
            baseline="bare XRANGE of the blocks",
            baseline_value=result.bare[0],
            where_the_time_goes=where,
        ),
        Figure.compare(
            "window load vs one JSON entry per event",
            result.store[0],
            "s",
            baseline="naive layout: XRANGE + json.loads per event",
            baseline_value=result.naive[0],
            where_the_time_goes=where,
        ),
        Figure.compare(
            "write through EventStore",
            result.events / result.write_seconds,
            "events/s",
            where_the_time_goes="encoding the batches (EncodedBatch.from_events) and the "
            "append script; this bench does not separate the two",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--redis-url", default=None, help="default: an embedded Redis in a temp dir"
    )
    args = parser.parse_args()
    report(asyncio.run(measure_on(args.redis_url, args.events, args.batch, args.repeats)))


if __name__ == "__main__":
    main()
