"""Detection runs: the I/O around the pure evaluation. Reads the window and the
reference from Redis, evaluates off the event loop, stores the RunResult."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor

import pandas as pd

from collectors.store import EventStore
from detectors.evaluate import Evaluation, column_specs, evaluate
from detectors.reference import from_parquet
from detectors.report import build_report_html
from detectors.result import RunResult
from detectors.runs import RunStore
from detectors.window import as_reference_columns, iso, window_info
from service.clock import Clock
from service.config import EffectiveModelConfig
from service.registry import ModelRegistry

log = logging.getLogger(__name__)
REFERENCE_CACHE_SIZE = 8


class UnknownModelError(LookupError):
    pass


class ReportUnavailableError(LookupError):
    pass


class ReferenceCache:
    """Each reference version is read and decoded once per process."""

    def __init__(self, registry: ModelRegistry, size: int = REFERENCE_CACHE_SIZE) -> None:
        self._registry = registry
        self._size = size
        self._frames: OrderedDict[tuple[str, str], pd.DataFrame] = OrderedDict()

    async def load(self, model: str, version: str) -> pd.DataFrame:
        key = (model, version)
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        data = await self._registry.reference_bytes(model, version)
        if data is None:
            raise UnknownModelError(f"reference {version} of model {model!r} is missing")
        frame = await asyncio.to_thread(from_parquet, data)
        self._frames[key] = frame
        if len(self._frames) > self._size:
            self._frames.popitem(last=False)
        return frame


class DetectionRunner:
    def __init__(
        self,
        registry: ModelRegistry,
        events: EventStore,
        runs: RunStore,
        clock: Clock,
        executor: Executor,
        config_for: Callable[[str], EffectiveModelConfig],
        report_ttl_seconds: float = 86400.0,
    ) -> None:
        self._registry = registry
        self._events = events
        self._runs = runs
        self._clock = clock
        self._executor = executor
        self._config_for = config_for
        self._report_ttl = report_ttl_seconds
        self.references = ReferenceCache(registry)

    async def run(self, model: str, trigger: str = "manual") -> RunResult:
        record = await self._registry.get(model)
        if record is None:
            raise UnknownModelError(model)
        config = self._config_for(model)
        started = self._clock.now()
        began = time.perf_counter()
        run_id = f"{int(started * 1000)}-{uuid.uuid4().hex[:8]}"
        window = await self._events.read_window(
            model, since=started - config.window_seconds, max_events=config.window_max_events
        )
        result = RunResult(
            run_id=run_id,
            model=model,
            status="ok",
            trigger="schedule" if trigger == "schedule" else "manual",
            started_at=iso(started),
            reference_version=record.active_version,
            window=window_info(window),
            min_window_events=config.min_window_events,
            drift_share_threshold=config.drift_share,
        )
        try:
            reference = await self.references.load(model, record.active_version)
            loop = asyncio.get_running_loop()
            evaluation: Evaluation = await loop.run_in_executor(
                self._executor, evaluate, reference, window, record.schema, config
            )
            result = _with_evaluation(result, evaluation)
        except Exception as exc:  # a run must report, never take the scheduler down
            log.exception("detection run %s of %s failed", run_id, model)
            result = result.model_copy(
                update={"status": "error", "error": f"{type(exc).__name__}: {exc}"}
            )
        result.duration_seconds = time.perf_counter() - began
        await self._runs.save(result)
        return result

    async def report_html(self, model: str, run_id: str) -> bytes:
        """The Evidently HTML report of a run, built on first request from the same
        window events, then cached."""
        cached = await self._runs.cached_report(model, run_id)
        if cached is not None:
            return cached
        result = await self._runs.get(model, run_id)
        record = await self._registry.get(model)
        if result is None or record is None:
            raise UnknownModelError(f"run {run_id} of model {model!r}")
        if result.status != "ok" or result.window.start is None or result.window.end is None:
            raise ReportUnavailableError(f"run {run_id} has status {result.status}: no report")
        window = await self._events.read_window(
            model,
            since=_epoch(result.window.start),
            until=_epoch(result.window.end),
            max_events=self._config_for(model).window_max_events,
        )
        if len(window) < result.window.events:
            raise ReportUnavailableError(
                f"run {run_id}: its window events were trimmed by retention; run again"
            )
        version = result.reference_version or record.active_version
        reference = await self.references.load(model, version)
        specs = column_specs(record.schema, self._config_for(model))
        current = as_reference_columns(window, record.schema)
        loop = asyncio.get_running_loop()
        html: str = await loop.run_in_executor(
            self._executor, build_report_html, reference, current, specs, f"{model} · run {run_id}"
        )
        data = html.encode()
        await self._runs.cache_report(model, run_id, data, self._report_ttl)
        return data


def _epoch(text: str) -> float:
    return pd.Timestamp(text).timestamp()


def _with_evaluation(result: RunResult, evaluation: Evaluation) -> RunResult:
    return result.model_copy(
        update={
            "status": evaluation.status,
            "columns": evaluation.columns,
            "dataset_drift": evaluation.dataset_drift,
            "drifted_share": evaluation.drifted_share,
            "prediction": evaluation.prediction,
        }
    )
