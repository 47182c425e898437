"""One APScheduler interval job per model, running detection.

Every replica schedules every model: the jobs follow the registry, read at start and
every `sync_seconds`, so a model uploaded through another replica is scheduled here
too, a model gone from the registry loses its job and a changed interval is applied.
All replicas fire at the same instants; the run lease picks the one that runs a tick."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)

JOB_PREFIX = "detect:"
SYNC_JOB = "sync-models"
# every replica fires at the same instants (multiples of the interval since the epoch),
# so the run lease of a tick has one winner
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Intervals = Callable[[], Awaitable[Mapping[str, float]]]


class ModelNames(Protocol):
    async def names(self) -> list[str]: ...


def registry_intervals(registry: ModelNames, interval_of: Callable[[str], float]) -> Intervals:
    """Every registered model with its configured detection interval."""

    async def intervals() -> dict[str, float]:
        return {model: interval_of(model) for model in await registry.names()}

    return intervals


class DetectionScheduler:
    def __init__(
        self,
        run: Callable[[str], Awaitable[object]],
        intervals: Intervals,
        sync_seconds: float = 5.0,
    ) -> None:
        self._run = run
        self._intervals = intervals
        self._sync_seconds = sync_seconds
        self._scheduler = AsyncIOScheduler(timezone="UTC")

    def start(self) -> None:
        self._scheduler.start()
        self._scheduler.add_job(
            self._sync_tick,
            "interval",
            seconds=self._sync_seconds,
            id=SYNC_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,  # late on a busy loop is fine; skipped is not
        )

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def ensure(self, model: str, interval_seconds: float) -> None:
        """Schedule the model's detection. A running schedule with this interval is left
        as it is (its next tick stays); one with another interval is replaced."""
        job = self._scheduler.get_job(JOB_PREFIX + model)
        if job is not None:
            if job.trigger.interval == timedelta(seconds=interval_seconds):
                return
            self._scheduler.remove_job(job.id)
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=interval_seconds,
            start_date=EPOCH,
            args=[model],
            id=JOB_PREFIX + model,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval_seconds)),
        )
        log.info("scheduled detection of %s every %ss", model, interval_seconds)

    async def sync(self) -> None:
        """Make the jobs match the registry: add, reschedule, remove."""
        # taken before reading the registry: a job that an upload ensure()s meanwhile is
        # newer than the read and must not be removed for missing from it
        before = set(self._models())
        wanted = await self._intervals()
        for model, interval in wanted.items():
            self.ensure(model, interval)
        for model in before - wanted.keys():
            if self.unschedule(model):
                log.info("unscheduled detection of %s: no longer in the registry", model)

    def unschedule(self, model: str) -> bool:
        """Drop the model's job (a deleted model). False when it had none."""
        try:
            self._scheduler.remove_job(JOB_PREFIX + model)
        except JobLookupError:  # never scheduled, or removed by an overlapping sync
            return False
        return True

    def jobs(self) -> list[str]:
        """Ids of the detection jobs (`detect:<model>`)."""
        return [JOB_PREFIX + model for model in self._models()]

    def _models(self) -> list[str]:
        return [
            job.id.removeprefix(JOB_PREFIX)
            for job in self._scheduler.get_jobs()
            if job.id.startswith(JOB_PREFIX)
        ]

    async def _sync_tick(self) -> None:
        try:
            await self.sync()
        except Exception:  # Redis away: the jobs stay as they are until the next sync
            log.warning("syncing scheduled models with the registry failed", exc_info=True)

    async def _tick(self, model: str) -> None:
        try:
            await self._run(model)
        except Exception:  # one model's failure must not stop the others' schedules
            log.exception("scheduled detection of %s failed", model)
