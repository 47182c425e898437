"""Every read and write of driftmon's own Redis keys, one store per kind of data.

`Stores.open` builds them all on one Redis client and key layout; the app builds one
and hands each collaborator the stores it needs."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from core.clock import Clock
from core.keys import Keys
from core.stores.alerts import AlertStore
from core.stores.events import EventStore
from core.stores.joins import HalfJoins
from core.stores.kpis import KpiStore
from core.stores.label_queue import LabelQueue
from core.stores.labels import LabelStore
from core.stores.lease import RunLease
from core.stores.outbox import Outbox
from core.stores.registry import ModelRegistry
from core.stores.rejects import RejectStore
from core.stores.runs import RunStore


@dataclass(frozen=True)
class StoreLimits:
    schema_cache_seconds: float = 1.0
    run_history: int = 200
    kpi_max_names: int = 50
    kpi_retention_seconds: float = 7 * 86400
    max_silences: int = 1000
    outbox_dead_letters: int = 1000  # the newest dead-lettered notifications kept


@dataclass(frozen=True)
class Stores:
    registry: ModelRegistry
    events: EventStore
    labels: LabelStore
    rejects: RejectStore
    runs: RunStore
    kpis: KpiStore
    lease: RunLease
    joins: HalfJoins
    alerts: AlertStore
    outbox: Outbox
    label_queue: LabelQueue

    @classmethod
    def open(
        cls, redis: Redis, keys: Keys, clock: Clock, limits: StoreLimits, holder: str
    ) -> Stores:
        """`holder` names this replica in the run leases it takes."""
        return cls(
            registry=ModelRegistry(redis, keys, clock, limits.schema_cache_seconds),
            events=EventStore(redis, keys),
            labels=LabelStore(redis, keys),
            rejects=RejectStore(redis, keys),
            runs=RunStore(redis, keys, limits.run_history),
            kpis=KpiStore(redis, keys, limits.kpi_max_names, limits.kpi_retention_seconds),
            lease=RunLease(redis, keys, holder),
            joins=HalfJoins(redis, keys),
            alerts=AlertStore(redis, keys, limits.max_silences),
            outbox=Outbox(redis, keys, limits.outbox_dead_letters),
            label_queue=LabelQueue(redis, keys, clock),
        )
