"""Detection runs: the I/O around the pure evaluation. Reads the window, its late
labels, intake rejects and the reference from Redis; evaluates in the executor (a
process pool, off the event loop); stores the RunResult.

Runs are bounded: one at a time per model (a manual run joins the model's run in
flight; a tick that finds one skips), and at most `max_queued_runs` hold a window
while they wait for or use the executor. A manual run beyond that is refused
(RunQueueFullError); scheduled ones, one per model at most, wait for a slot."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial

import pandas as pd

from core.blocks import entry_id_order
from core.clock import Clock
from core.config import EffectiveModelConfig
from core.errors import ReportUnavailableError, UnknownModelError
from core.labeling import FlaggedSample, LabelingConfig
from core.redis_types import StreamEntry
from core.results import RunResult
from core.sinks import RunSink, SinkFailureCounter, publish_run
from core.stores import Stores
from core.stores.labels import WindowLabels
from core.stores.lease import tick_of
from detectors.evaluate import evaluate_and_flag
from detectors.inputs import KpiComparer, ReferenceBytes
from detectors.quality import IntakeRejects
from detectors.report import WindowTrimmedError, report_html_for
from detectors.window import iso

log = logging.getLogger(__name__)
# a block's id may be later than its events' ingest time by the clock skew between the
# replicas that wrote it and the one before (ids only go up): window labels allow this
CLOCK_SKEW_SECONDS = 60.0


class RunQueueFullError(Exception):
    """`limit` runs are in flight already; a slot frees in about `retry_after` seconds."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"{limit} detection runs are already queued or running")
        self.limit = limit
        self.retry_after = retry_after


@dataclass(frozen=True)
class RunnerSettings:
    kpi_baseline_seconds: float = 7 * 86400
    report_ttl_seconds: float = 86400.0
    max_queued_runs: int = 4


class DetectionRunner:
    """Runs a model's detection, stores the RunResult and hands it to the run sinks,
    with the samples it flagged for labeling when `labeling_for(model)` gives an
    enabled LabelingConfig (no `labeling_for`: nothing is flagged)."""

    def __init__(
        self,
        stores: Stores,
        clock: Clock,
        executor: Executor,
        config_for: Callable[[str], EffectiveModelConfig],
        sinks: Sequence[RunSink],
        sink_failures: SinkFailureCounter,
        settings: RunnerSettings,
        labeling_for: Callable[[str], LabelingConfig | None] | None = None,
    ) -> None:
        self._stores = stores
        self._registry = stores.registry
        self._runs = stores.runs
        self._clock = clock
        self._executor = executor
        self._config_for = config_for
        self._sinks = list(sinks)
        self._sink_failures = sink_failures
        self._labeling_for = labeling_for
        self._kpis = KpiComparer(stores.kpis, settings.kpi_baseline_seconds)
        self._report_ttl = settings.report_ttl_seconds
        self.references = ReferenceBytes(stores.registry)
        self._max_queued = settings.max_queued_runs
        self._slots = asyncio.Semaphore(settings.max_queued_runs)
        self._in_flight: dict[str, asyncio.Task[RunResult]] = {}
        self._last_duration = 1.0

    def in_flight(self) -> list[str]:
        """The models whose run is queued or running in this process."""
        return sorted(self._in_flight)

    async def run_manual(self, model: str) -> RunResult:
        """A manual run, or the model's run in flight if there is one (every caller gets
        the same RunResult). RunQueueFullError when `max_queued_runs` are in flight."""
        if await self._registry.schema(model) is None:
            raise UnknownModelError(model)
        task = self._in_flight.get(model)
        if task is None:
            if len(self._in_flight) >= self._max_queued:
                # a slot frees when any run in flight ends: within about one run
                raise RunQueueFullError(self._max_queued, max(1, math.ceil(self._last_duration)))
            task = self._start(model, "manual")
        # shielded: a caller that goes away leaves the run to the others
        return await asyncio.shield(task)

    async def run_scheduled(self, model: str) -> RunResult | None:
        """The scheduled run of this tick, unless another replica holds its lease or the
        model's previous run is still in flight here (then the tick is skipped, logged)."""
        if model in self._in_flight:  # before the lease: another replica may run the tick
            log.info("tick of %s skipped: its previous run is still in flight", model)
            return None
        interval = self._config_for(model).schedule_seconds
        tick = tick_of(self._clock.now(), interval)
        if not await self._stores.lease.acquire(model, tick, ttl_seconds=2 * interval):
            log.debug("tick %s of %s runs on another replica", tick, model)
            return None
        if model in self._in_flight:  # a manual run started meanwhile: it covers the tick
            log.info("tick %s of %s skipped: a manual run is in flight", tick, model)
            return None
        return await asyncio.shield(self._start(model, "schedule"))

    def _start(self, model: str, trigger: str) -> asyncio.Task[RunResult]:
        task = asyncio.create_task(self._slotted_run(model, trigger), name=f"detect:{model}")
        self._in_flight[model] = task

        def done(finished: asyncio.Task[RunResult]) -> None:
            if self._in_flight.get(model) is finished:
                del self._in_flight[model]
            if not finished.cancelled():
                finished.exception()  # retrieved: its callers may all have gone away

        task.add_done_callback(done)
        return task

    async def _slotted_run(self, model: str, trigger: str) -> RunResult:
        """The run once a slot is free: its window is read then, not while it waits."""
        async with self._slots:
            result = await self.run(model, trigger)
        self._last_duration = result.duration_seconds
        return result

    async def _rejects(self, model: str, since: float, until: float) -> IntakeRejects:
        totals = await self._stores.rejects.rejects_between(model, since, until)
        return IntakeRejects.from_totals(totals)

    async def run(self, model: str, trigger: str = "manual") -> RunResult:
        record = await self._registry.get(model)
        if record is None:
            raise UnknownModelError(model)
        config = self._config_for(model)
        started = self._clock.now()
        began = time.perf_counter()
        since = started - config.window_seconds
        blocks = await self._stores.events.read_blocks(model, since, config.window_max_events)
        result = _new_run(model, record.active_version, config, started, trigger)
        flagged: list[FlaggedSample] = []
        try:
            payload = await self.references.load(model, record.active_version)
            rejects = await self._rejects(model, since, started)
            window_labels = await self._window_labels(model, blocks, record.schema.prediction)
            labels, origins = window_labels.labels, window_labels.origins
            labeling = self._labeling_for(model) if self._labeling_for is not None else None
            evaluation = partial(
                evaluate_and_flag,
                result,
                payload,
                blocks,
                labels,
                record.schema,
                label_origins=origins,
            )
            loop = asyncio.get_running_loop()
            evaluated = await loop.run_in_executor(
                self._executor, evaluation, config, rejects, labeling
            )
            result, flagged = evaluated.run, evaluated.flagged
            result.kpis = await self._kpis.compare(model, since, started)
            result.dataset_drift_streak = await self._drift_streak(model, result)
        except Exception as exc:  # a run must report, never take the scheduler down
            log.exception("detection run %s of %s failed", result.run_id, model)
            # the reference bytes may be what failed; the next run fetches them again
            self.references.forget(model, record.active_version)
            error = f"{type(exc).__name__}: {exc}"
            result = result.model_copy(update={"status": "error", "error": error})
            flagged = []
        result.duration_seconds = time.perf_counter() - began
        previous = await self._runs.latest(model)
        await self._runs.save(result)
        await publish_run(self._sinks, result, previous, self._sink_failures, flagged)
        return result

    async def _window_labels(
        self, model: str, blocks: list[StreamEntry], prediction: str | None
    ) -> WindowLabels:
        """The labels of events ingested since the window's first block: the window's,
        and a few more (a capped window starts inside its first block). No upper bound:
        labels stored by arrival time (see LabelStore) arrive after their events. With
        the labeling queue's origin of those it gave, read alongside."""
        if prediction is None or not blocks:
            return WindowLabels()
        since = _block_seconds(blocks[0]) - CLOCK_SKEW_SECONDS
        return await self._stores.labels.window_labels(model, since)

    async def _drift_streak(self, model: str, result: RunResult) -> int:
        if result.status != "ok" or not result.dataset_drift:
            return 0
        previous = await self._runs.latest(model, ok_only=True)
        return 1 + (previous.dataset_drift_streak if previous is not None else 0)

    async def report_html(self, model: str, run_id: str) -> bytes:
        """The Evidently HTML report of a run, built on first request from the same
        window events, then cached."""
        cached = await self._runs.cached_report(model, run_id)
        if cached is not None:
            return cached
        result = await self._runs.get(model, run_id)
        record = await self._registry.get(model)
        if result is None or record is None:
            raise UnknownModelError(model, f"run {run_id} of model {model!r}")
        if result.status != "ok" or result.window.start is None or result.window.end is None:
            raise ReportUnavailableError(f"run {run_id} has status {result.status}: no report")
        config = self._config_for(model)
        blocks = await self._stores.events.read_blocks(
            model,
            since=_epoch(result.window.start),
            until=_epoch(result.window.end),
            max_events=config.window_max_events,
        )
        version = result.reference_version or record.active_version
        payload = await self.references.load(model, version)
        loop = asyncio.get_running_loop()
        try:
            html: str = await loop.run_in_executor(
                self._executor,
                report_html_for,
                payload,
                blocks,
                record.schema,
                config,
                f"{model} · run {run_id}",
                result.window.events,
            )
        except WindowTrimmedError as exc:
            raise ReportUnavailableError(
                f"run {run_id}: its window events were trimmed by retention ({exc}); run again"
            ) from exc
        data = html.encode()
        await self._runs.cache_report(model, run_id, data, self._report_ttl)
        return data


def _epoch(text: str) -> float:
    return pd.Timestamp(text).timestamp()


def _block_seconds(block: StreamEntry) -> float:
    """When the block was appended: its stream id's milliseconds."""
    return entry_id_order(block[0].decode())[0] / 1000


def _new_run(
    model: str, version: str, config: EffectiveModelConfig, started: float, trigger: str
) -> RunResult:
    """The run before its evaluation fills in the window, the verdicts and the sections."""
    return RunResult(
        run_id=f"{int(started * 1000)}-{uuid.uuid4().hex[:8]}",
        model=model,
        status="ok",
        trigger="schedule" if trigger == "schedule" else "manual",
        started_at=iso(started),
        reference_version=version,
        min_window_events=config.min_window_events,
        drift_share_threshold=config.drift_share,
    )
