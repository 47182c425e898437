"""Window read benchmark: 100k events of 25 features (20 numerical, 5 categorical).

Prints the time to load the window as a DataFrame through the EventStore, next to two
baselines measured in the same run on the same Redis:
- the bare XRANGE of the block stream (the floor: Redis transfer and reply parsing);
- a naive layout, one stream entry per event holding its JSON, read and decoded.

    python -m bench.window_bench [--events 100000] [--batch 500] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pandas as pd
from redis.asyncio import Redis

from core.blocks import EncodedBatch, Layout
from core.events import Event
from core.keys import Keys
from core.redis_types import entries
from core.stores.events import EventStore, RetentionPolicy
from service.embedded_redis import EmbeddedRedis

NUMERICAL = tuple(f"num_{i:02d}" for i in range(20))
CATEGORICAL = tuple(f"cat_{i}" for i in range(5))
T0 = 1_800_000_000.0


def show(label: str, text: str) -> None:
    print(f"{label:<36} {text}")


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


async def best_of(repeats: int, action: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        await action()
        timings.append(time.perf_counter() - began)
    return min(timings), statistics.median(timings)


async def fill_naive(redis: Redis, key: str, events: list[Event]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            record = {
                "event_id": event.event_id,
                "timestamp": event.timestamp,
                "features": event.features,
                "prediction": event.prediction,
                "scores": event.scores,
            }
            pipe.xadd(key, {"e": json.dumps(record)})
        await pipe.execute()


async def read_naive(redis: Redis, key: str) -> pd.DataFrame:
    records = [json.loads(fields[b"e"]) for _, fields in entries(await redis.xrange(key))]
    return pd.DataFrame.from_records([record["features"] for record in records])


async def run(redis: Redis, events_count: int, batch: int, repeats: int) -> None:
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

    features = len(NUMERICAL) + len(CATEGORICAL)
    show("events", f"{events_count:,} x {features} features, batches of {batch}")
    show("write through EventStore", f"{write_s:.2f} s ({events_count / write_s:,.0f} events/s)")
    show("window load (read_window)", f"best {store[0]:.3f} s, median {store[1]:.3f} s")
    show("  frame shape", str(frame.shape))
    show("baseline: bare XRANGE of blocks", f"best {bare[0]:.3f} s")
    show("baseline: one JSON entry per event", f"best {naive[0]:.3f} s, median {naive[1]:.3f} s")
    show("ratio naive / window load", f"{naive[0] / store[0]:.1f}x")
    await redis.delete(stream, keys.events_index("w"), "bench:naive")


async def main_async(args: argparse.Namespace) -> None:
    if args.redis_url:
        redis = Redis.from_url(args.redis_url)
        await run(redis, args.events, args.batch, args.repeats)
        await redis.aclose()
        return
    with tempfile.TemporaryDirectory() as data_dir, EmbeddedRedis(Path(data_dir)) as embedded:
        redis = Redis.from_url(embedded.url)
        await run(redis, args.events, args.batch, args.repeats)
        await redis.aclose()


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
    main_async_args = parser.parse_args()
    asyncio.run(main_async(main_async_args))


if __name__ == "__main__":
    main()
