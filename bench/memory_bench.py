"""Redis memory per retained event, next to the size of the event's compact JSON.

Stores N events (20 numerical + 5 categorical features, UUID event ids, values with the
few decimals real logs carry) through the real `EventStore` on a Redis of its own, and
divides the growth of Redis `used_memory` by N. `MEMORY USAGE` (every element sampled)
of each key splits it into the event blocks (stream and its index) and the seen-id set.

    python -m bench.memory_bench [--events 100000] [--batch 500] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from redis.asyncio import Redis

from bench.common import CATEGORICAL, NUMERICAL, Figure, at_most, redis_connection, show
from core.blocks import EncodedBatch, Layout
from core.events import Event
from core.keys import Keys
from core.stores.events import EventStore, RetentionPolicy

T0 = 1_800_000_000.0
MODEL = "mem"
VOCABULARIES = (
    ("DE", "FR", "US", "GB", "IT", "ES", "NL", "PL"),
    ("web", "ios", "android"),
    ("free", "basic", "premium", "enterprise"),
    ("card", "transfer", "paypal", "voucher", "cash"),
    ("new", "returning"),
)


def realistic_numbers(rng: np.random.Generator, count: int) -> np.ndarray[Any, Any]:
    """Columns as logs carry them: counts and ages as integers, amounts in cents,
    rates and scores with four decimals."""
    columns = []
    for i in range(len(NUMERICAL)):
        kind = i % 4
        if kind == 0:
            column = np.round(rng.normal(40, 12, count))
        elif kind == 1:
            column = np.round(rng.lognormal(4, 1, count), 2)
        elif kind == 2:
            column = np.round(rng.uniform(0, 1, count), 4)
        else:
            column = np.round(rng.normal(0, 1, count), 4)
        columns.append(column)
    return np.stack(columns, axis=1)


def make_events(count: int, seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    numbers = realistic_numbers(rng, count).tolist()
    picks = [rng.integers(0, len(vocab), count) for vocab in VOCABULARIES]
    positives = np.round(rng.uniform(0, 1, count), 4).tolist()
    events = []
    for i in range(count):
        features: dict[str, float | str | None] = dict(zip(NUMERICAL, numbers[i], strict=True))
        for name, vocab, pick in zip(CATEGORICAL, VOCABULARIES, picks, strict=True):
            features[name] = vocab[pick[i]]
        positive = positives[i]
        scores = {"1": positive, "0": round(1 - positive, 4)}
        prediction = "1" if positive >= 0.5 else "0"
        event_id = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        events.append(Event(event_id, T0 + i / 1000, "7", features, prediction, scores))
    return events


def compact_json(event: Event) -> bytes:
    """The event as a client sends it, without whitespace."""
    return orjson.dumps(
        {
            "event_id": event.event_id,
            "timestamp": event.timestamp,
            "model_version": event.model_version,
            "features": event.features,
            "prediction": event.prediction,
            "scores": event.scores,
        }
    )


@dataclass(frozen=True)
class MemoryFigures:
    events: int
    batch: int
    json_bytes: float  # per event
    used_memory: float  # per event: growth of used_memory
    blocks: float  # per event: MEMORY USAGE of the stream and its index
    seen: float  # per event: MEMORY USAGE of the seen-id set


async def memory_usage(redis: Redis, key: str) -> int:
    return int(await redis.memory_usage(key, samples=0) or 0)


async def measure(redis: Redis, count: int, batch: int) -> MemoryFigures:
    keys = Keys("bench:")
    store = EventStore(redis, keys)
    layout = Layout(NUMERICAL, CATEGORICAL)
    policy = RetentionPolicy(max_age_seconds=86400, max_events=10 * count, dedup_max_ids=count)
    events = make_events(count)
    json_bytes = sum(len(compact_json(event)) for event in events) / count
    stored = [keys.events(MODEL), keys.events_index(MODEL), keys.events_seen(MODEL)]
    await redis.delete(*stored)
    before = int((await redis.info("memory"))["used_memory"])
    for start in range(0, count, batch):
        encoded = EncodedBatch.from_events(events[start : start + batch], layout)
        await store.append(MODEL, encoded, policy, now=T0 + start / 1000)
    after = int((await redis.info("memory"))["used_memory"])
    assert await store.total_events(MODEL) == count, "the bench lost events"
    stream, index, seen = [await memory_usage(redis, key) for key in stored]
    await redis.delete(*stored)
    return MemoryFigures(
        count, batch, json_bytes, (after - before) / count, (stream + index) / count, seen / count
    )


def report(result: MemoryFigures) -> None:
    show("events", f"{result.events:,} x 25 features, batches of {result.batch}")
    show("compact JSON per event", f"{result.json_bytes:.0f} B")
    show("Redis used_memory per event", f"{result.used_memory:.0f} B")
    show("  event blocks (stream + index)", f"{result.blocks:.0f} B")
    show("  seen-id set", f"{result.seen:.0f} B")
    show("ratio used_memory / JSON", f"{result.used_memory / result.json_bytes:.2f}x")


async def measure_on(url: str | None, count: int, batch: int) -> MemoryFigures:
    async with redis_connection(url) as redis:
        return await measure(redis, count, batch)


def run(quick: bool = False) -> list[Figure]:
    """Redis memory per retained event against the event's compact JSON."""
    result = asyncio.run(measure_on(None, 100_000, 500))
    report(result)
    where = (
        f"event blocks {result.blocks:.0f} B, seen-id set {result.seen:.0f} B per event "
        "(MEMORY USAGE)"
    )
    return [
        Figure.compare(
            "Redis memory per retained event",
            result.used_memory,
            "B",
            baseline="the event's compact JSON",
            baseline_value=result.json_bytes,
            target=at_most(0.5),
            where_the_time_goes=where,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--redis-url", default=None, help="default: an embedded Redis in a temp dir"
    )
    args = parser.parse_args()
    report(asyncio.run(measure_on(args.redis_url, args.events, args.batch)))


if __name__ == "__main__":
    main()
