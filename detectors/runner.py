"""Detection runs: the I/O around the pure evaluation. Reads the window, its late
labels, intake rejects and the reference from Redis; evaluates in the executor (a
process pool, off the event loop); stores the RunResult."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import pandas as pd

from core.clock import Clock
from core.config import EffectiveModelConfig
from core.errors import ReportUnavailableError, UnknownModelError
from core.results import KpiComparison, RunResult
from core.sinks import RunSink, SinkFailureCounter, publish_run
from core.stores import Stores
from core.stores.kpis import KpiStore
from core.stores.lease import tick_of
from core.stores.registry import ModelRegistry
from detectors.evaluate import ReferencePayload, evaluate_blocks
from detectors.kpis import compare_kpi
from detectors.quality import IntakeRejects
from detectors.report import WindowTrimmedError, report_html_for
from detectors.window import iso

log = logging.getLogger(__name__)
REFERENCE_CACHE_SIZE = 8


class ReferenceBytes:
    """Each reference version is fetched from Redis once per process."""

    def __init__(self, registry: ModelRegistry, size: int = REFERENCE_CACHE_SIZE) -> None:
        self._registry = registry
        self._size = size
        self._payloads: OrderedDict[tuple[str, str], ReferencePayload] = OrderedDict()

    async def load(self, model: str, version: str) -> ReferencePayload:
        key = (model, version)
        if key not in self._payloads:
            data = await self._registry.reference_bytes(model, version)
            if data is None:
                raise UnknownModelError(model, f"reference {version} of model {model!r} is missing")
            self._payloads[key] = ReferencePayload(version, data)
            if len(self._payloads) > self._size:
                self._payloads.popitem(last=False)
        self._payloads.move_to_end(key)
        return self._payloads[key]

    def forget(self, model: str, version: str) -> None:
        self._payloads.pop((model, version), None)


class KpiComparer:
    """Each KPI's window against the period just before it."""

    def __init__(self, store: KpiStore, baseline_seconds: float) -> None:
        self._store = store
        self._baseline = baseline_seconds

    async def compare(self, model: str, since: float, until: float) -> dict[str, KpiComparison]:
        out: dict[str, KpiComparison] = {}
        for name in await self._store.names(model):
            window = await self._store.series(model, name, since, until)
            baseline = await self._store.series(model, name, since - self._baseline, f"({since}")
            if window or baseline:
                out[name] = compare_kpi(window, baseline)
        return out


@dataclass(frozen=True)
class RunnerSettings:
    kpi_baseline_seconds: float = 7 * 86400
    report_ttl_seconds: float = 86400.0


class DetectionRunner:
    """Runs a model's detection, stores the RunResult and hands it to the run sinks."""

    def __init__(
        self,
        stores: Stores,
        clock: Clock,
        executor: Executor,
        config_for: Callable[[str], EffectiveModelConfig],
        sinks: Sequence[RunSink],
        sink_failures: SinkFailureCounter,
        settings: RunnerSettings,
    ) -> None:
        self._stores = stores
        self._registry = stores.registry
        self._runs = stores.runs
        self._clock = clock
        self._executor = executor
        self._config_for = config_for
        self._sinks = list(sinks)
        self._sink_failures = sink_failures
        self._kpis = KpiComparer(stores.kpis, settings.kpi_baseline_seconds)
        self._report_ttl = settings.report_ttl_seconds
        self.references = ReferenceBytes(stores.registry)

    async def run_scheduled(self, model: str) -> RunResult | None:
        """The scheduled run of this tick, unless another replica holds its lease."""
        interval = self._config_for(model).schedule_seconds
        tick = tick_of(self._clock.now(), interval)
        if not await self._stores.lease.acquire(model, tick, ttl_seconds=2 * interval):
            log.debug("tick %s of %s runs on another replica", tick, model)
            return None
        return await self.run(model, trigger="schedule")

    async def _rejects(self, model: str, since: float, until: float) -> IntakeRejects:
        totals = await self._stores.rejects.rejects_between(model, since, until)
        type_mismatches = {
            name.removeprefix("features."): count
            for name, count in totals.get("type_mismatch", {}).items()
            if name.startswith("features.")
        }
        unknown = {
            name.removeprefix("features."): count
            for name, count in totals.get("unknown_field", {}).items()
        }
        return IntakeRejects(type_mismatches=type_mismatches, unknown_fields=unknown)

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
        try:
            payload = await self.references.load(model, record.active_version)
            rejects = await self._rejects(model, since, started)
            labels = await self._window_labels(model, record.schema.prediction is not None)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._executor,
                evaluate_blocks,
                result,
                payload,
                blocks,
                labels,
                record.schema,
                config,
                rejects,
            )
            result.kpis = await self._kpis.compare(model, since, started)
            result.dataset_drift_streak = await self._drift_streak(model, result)
        except Exception as exc:  # a run must report, never take the scheduler down
            log.exception("detection run %s of %s failed", result.run_id, model)
            # the reference bytes may be what failed; the next run fetches them again
            self.references.forget(model, record.active_version)
            error = f"{type(exc).__name__}: {exc}"
            result = result.model_copy(update={"status": "error", "error": error})
        result.duration_seconds = time.perf_counter() - began
        previous = await self._runs.latest(model)
        await self._runs.save(result)
        await publish_run(self._sinks, result, previous, self._sink_failures)
        return result

    async def _window_labels(self, model: str, has_prediction: bool) -> dict[str, object]:
        return await self._stores.labels.all_labels(model) if has_prediction else {}

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
