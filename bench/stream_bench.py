"""Stream intake benchmark: events per second that the consumer group reads, validates,
stores and acknowledges, against a bare XRANGE-and-decode loop over the same stream
measured in the same run (the floor of any consumer: Redis transfer and JSON).

    python -m bench.stream_bench [--entries 50000] [--per-entry 1] [--rounds 5] [--redis-url URL]

Machines here are shared and their speed drifts by 2x within minutes, so each round
measures all three loops back to back on the same stream, and the ratio reported is
the median of the rounds' own ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from statistics import median
from typing import Any

import orjson
from redis.asyncio import Redis

from bench.common import CATEGORICAL, NUMERICAL, Figure, at_least, redis_connection, show
from collectors.intake import Intake, IntakePolicy
from collectors.stream import StreamConsumer, StreamSettings
from core.clock import SystemClock
from core.keys import Keys
from core.redis_client import connect_redis
from core.redis_types import entries
from core.schema import ColumnKind, ModelSchema
from core.stores import StoreLimits, Stores
from core.stores.events import RetentionPolicy
from core.stores.registry import ModelRegistry, ReferenceInfo

STREAM = "bench:predictions"


class NullCounter:
    def count_events(self, model: str, source: str, outcome: str, amount: int) -> None: ...
    def count_rejects(self, model: str, source: str, reason: str, amount: int) -> None: ...
    def count_labels(self, model: str, source: str, outcome: str, amount: int) -> None: ...
    def count_kpis(self, model: str, source: str, amount: int) -> None: ...
    def count_stream(self, stream: str, outcome: str, amount: int) -> None: ...
    def set_stream_status(self, stream: str, lag: int | None, pending: int) -> None: ...


def event(i: int) -> dict[str, Any]:
    features: dict[str, Any] = {name: float(i % 97) / 7 for name in NUMERICAL}
    features.update({name: ("alpha", "beta", "gamma")[i % 3] for name in CATEGORICAL})
    return {"event_id": f"s-{i}", "features": features, "prediction": 1, "score": 0.7}


async def fill(redis: Redis, count: int, per_entry: int) -> None:
    await redis.delete(STREAM)
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(count):
            batch = [event(i * per_entry + j) for j in range(per_entry)]
            pipe.xadd(STREAM, {"events": orjson.dumps(batch)})
            if i % 5000 == 4999:
                await pipe.execute()
        await pipe.execute()


async def bare_loop(redis: Redis) -> int:
    decoded, start = 0, "-"
    while True:
        chunk = entries(await redis.xrange(STREAM, min=start, count=500))
        for _, fields in chunk:
            decoded += len(orjson.loads(fields[b"events"]))
        if len(chunk) < 500:
            return decoded
        start = "(" + chunk[-1][0].decode()


async def bare_group_loop(redis: Redis) -> int:
    """The consumer group's own cost: XREADGROUP, decode, XACK; nothing validated or
    stored."""
    await redis.xgroup_create(STREAM, "bare", id="0")
    decoded = 0
    while True:
        reply: Any = await redis.xreadgroup("bare", "bench", {STREAM: ">"}, count=500)
        chunk = entries(reply[0][1]) if reply else []  # RESP2: [[stream, entries]]
        for _, fields in chunk:
            decoded += len(orjson.loads(fields[b"events"]))
        if chunk:
            await redis.xack(STREAM, "bare", *[entry_id for entry_id, _ in chunk])
        if len(chunk) < 500:
            return decoded


async def register(redis: Redis, keys: Keys) -> ModelRegistry:
    registry = ModelRegistry(redis, keys, SystemClock())
    features: dict[str, ColumnKind] = dict.fromkeys(NUMERICAL, "numerical")
    features.update(dict.fromkeys(CATEGORICAL, "categorical"))
    schema = ModelSchema(
        features,
        prediction="prediction",
        prediction_kind="categorical",
        scores={"1": "score"},
        positive_class="1",
    )
    await registry.put_reference("bench", schema, ReferenceInfo("sha256:bench", 0, {}, 0.0), b"")
    return registry


async def consume(redis: Redis, count: int, prefix: str) -> int:
    """Runs the service's consumer until it has acknowledged `count` entries; returns
    the events it stored."""
    keys = Keys(prefix)
    await register(redis, keys)
    stores = Stores.open(redis, keys, SystemClock(), StoreLimits(), holder="bench")
    intake = Intake(
        stores,
        SystemClock(),
        NullCounter(),
        IntakePolicy(RetentionPolicy(86400, 10_000_000), 86400),
    )
    settings = StreamSettings(streams={STREAM: "bench"}, consumer="bench", block_ms=20)
    consumer = StreamConsumer(redis, keys, intake, settings, NullCounter())
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    while consumer.handled < count:  # noqa: ASYNC110  (polling a counter, not an event)
        await asyncio.sleep(0.005)
    stop.set()
    await task
    return await stores.events.total_events("bench")


async def timed(work: Awaitable[int], expected: int) -> float:
    began = time.perf_counter()
    done = await work
    seconds = time.perf_counter() - began
    assert done == expected, f"expected {expected} events, got {done}"
    return seconds


async def one_round(redis: Redis, number: int, count: int, per_entry: int) -> dict[str, float]:
    """Seconds of each loop over the same freshly filled stream; the consumer stores
    into keys of its own, so that no round sees another's events as duplicates. Odd
    rounds run the consumer first, so that neither side always goes first; an untimed
    pass warms the stream up before either."""
    await redis.flushdb()
    await fill(redis, count, per_entry)
    events = count * per_entry
    loops = {
        "bare": lambda: bare_loop(redis),
        "group": lambda: bare_group_loop(redis),
        "consumer": lambda: consume(redis, count, f"bench-stream:{number}:"),
    }
    await bare_loop(redis)  # untimed: whichever loop went first paid for a cold stream
    order = list(loops) if number % 2 == 0 else list(reversed(loops))
    seconds = {name: await timed(loops[name](), events) for name in order}
    return {name: seconds[name] for name in loops}


@dataclass(frozen=True)
class StreamFigures:
    events: int  # per round
    ratios: list[float]  # bare XRANGE seconds / consumer seconds, per round
    group_ratios: list[float]  # bare group loop seconds / consumer seconds
    rates: dict[str, list[float]]  # events/s of each loop, per round


async def measure(redis: Redis, count: int, per_entry: int, rounds: int) -> StreamFigures:
    events = count * per_entry
    show("stream", f"{count:,} entries x {per_entry} events of 25 features, {rounds} rounds")
    show("round", "bare XRANGE | bare group | consumer   (events/s)   consumer/bare")
    result = StreamFigures(events, [], [], {"bare": [], "group": [], "consumer": []})
    for number in range(rounds):
        seconds = await one_round(redis, number, count, per_entry)
        result.ratios.append(seconds["bare"] / seconds["consumer"])
        result.group_ratios.append(seconds["group"] / seconds["consumer"])
        for name in seconds:
            result.rates[name].append(events / seconds[name])
        rates = " | ".join(f"{events / seconds[name]:>9,.0f}" for name in seconds)
        first = "consumer first" if number % 2 else "bare first"
        show(f"  {number + 1} ({first})", f"{rates}   {result.ratios[-1]:.2f}")
    await redis.flushdb()
    return result


def report(result: StreamFigures) -> None:
    ratios, group_ratios = result.ratios, result.group_ratios
    show("bare XRANGE + JSON decode", "the floor: Redis transfer and JSON, nothing checked")
    show("bare group", "XREADGROUP + JSON decode + XACK, nothing validated or stored")
    show("consumer", "the service's consumer: validate, store, acknowledge")
    show(
        "ratio consumer / bare loop",
        f"median {median(ratios):.2f} (goal >= 0.5), range {min(ratios):.2f}-{max(ratios):.2f}",
    )
    show(
        "ratio consumer / bare group",
        f"median {median(group_ratios):.2f}, range {min(group_ratios):.2f}-{max(group_ratios):.2f}",
    )


async def measure_on(url: str | None, count: int, per_entry: int, rounds: int) -> StreamFigures:
    async with redis_connection(url, connect_redis) as redis:
        return await measure(redis, count, per_entry, rounds)


def run(quick: bool = False) -> list[Figure]:
    """The consumer against both bare loops, one event per entry. The ratios are the
    medians of the rounds' own ratios; the rates shown are the rounds' medians."""
    count, rounds = (20_000, 3) if quick else (50_000, 5)
    result = asyncio.run(measure_on(None, count, 1, rounds))
    report(result)
    consumer = median(result.rates["consumer"])
    group_share = median(result.group_ratios)
    where = (
        f"the group protocol (XREADGROUP + XACK, the bare group loop) is {group_share:.0%} "
        "of the consumer's time; the rest is validating and storing each batch"
    )
    figures = []
    for loop, label, ratios, target in (
        ("bare", "bare XRANGE + JSON decode loop", result.ratios, at_least(0.5)),
        ("group", "bare XREADGROUP + decode + XACK loop", result.group_ratios, None),
    ):
        baseline = consumer / median(ratios)  # the rate the median ratio stands for
        figures.append(
            Figure.compare(
                f"stream intake vs {loop} loop, 1 event per entry",
                consumer,
                "events/s",
                baseline=label,
                baseline_value=baseline,
                target=target,
                where_the_time_goes=where,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--per-entry", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="each on a freshly filled stream")
    parser.add_argument("--redis-url", default=None, help="default: an embedded Redis (flushed!)")
    args = parser.parse_args()
    report(asyncio.run(measure_on(args.redis_url, args.entries, args.per_entry, args.rounds)))


if __name__ == "__main__":
    main()
