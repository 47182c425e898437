"""One APScheduler interval job per model, running detection."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


class DetectionScheduler:
    def __init__(self, run: Callable[[str], Awaitable[object]]) -> None:
        self._run = run
        self._scheduler = AsyncIOScheduler(timezone="UTC")

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def ensure(self, model: str, interval_seconds: float) -> None:
        """Schedule the model's detection; a running schedule is left as it is."""
        job_id = f"detect:{model}"
        if self._scheduler.get_job(job_id) is not None:
            return
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=interval_seconds,
            # every replica fires at the same instants (multiples of the interval since the
            # epoch), so the run lease of a tick has one winner
            start_date=datetime(1970, 1, 1, tzinfo=UTC),
            args=[model],
            id=job_id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(interval_seconds)),
        )
        log.info("scheduled detection of %s every %ss", model, interval_seconds)

    def jobs(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()]

    async def _tick(self, model: str) -> None:
        try:
            await self._run(model)
        except Exception:  # one model's failure must not stop the others' schedules
            log.exception("scheduled detection of %s failed", model)
