"""What the drift gauges are rendered from, read in a bounded number of Redis round
trips whatever the number of models: one pipeline for every model's latest run ids, one
for the runs not read before. A stored run never changes, so decoded runs are kept by
(model, run id) for as long as they are some model's latest; only a new run is read and
decoded again. When a model was created changes only when it is deleted and created
again, so it is kept for `created_ttl_seconds` (and dropped at once on this replica by
`forget_model`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from core.results import RunResult
from core.stores.runs import LatestRunIds, RunStore
from service.metrics_gauges import ModelSnapshot

CREATED_TTL_SECONDS = 60.0

RunKey = tuple[str, str]  # (model, run id)


class CreatedAtSource(Protocol):
    """Where a model's creation time is read (core.stores.registry.ModelRegistry)."""

    async def created_at(self, model: str) -> float | None: ...


class LatestRunsReader:
    """Builds each model's ModelSnapshot for a scrape, caching what cannot change."""

    def __init__(self, created_ttl_seconds: float = CREATED_TTL_SECONDS) -> None:
        self._created_ttl = created_ttl_seconds
        self._runs: dict[RunKey, RunResult] = {}
        self._created: dict[str, tuple[float, float]] = {}  # model: (read at, created at)

    async def snapshots(
        self,
        runs: RunStore,
        registry: CreatedAtSource,
        models: Sequence[str],
        schedule_seconds: Callable[[str], float],
        now: float,
    ) -> dict[str, ModelSnapshot]:
        """Every model's snapshot; `now` (unix seconds) ages the creation times."""
        latest = dict(zip(models, await runs.latest_ids(models), strict=True))
        await self._read_missing_runs(runs, latest)
        snapshots: dict[str, ModelSnapshot] = {}
        for model, ids in latest.items():
            snapshots[model] = ModelSnapshot(
                latest=self._run(model, ids.any),
                latest_ok=self._run(model, ids.ok),
                schedule_seconds=schedule_seconds(model),
                created_at=await self._created_at(registry, model, now),
            )
        return snapshots

    def forget_model(self, model: str) -> None:
        self._created.pop(model, None)
        self._runs = {key: run for key, run in self._runs.items() if key[0] != model}

    async def _read_missing_runs(self, runs: RunStore, latest: dict[str, LatestRunIds]) -> None:
        wanted = {
            (model, run_id)
            for model, ids in latest.items()
            for run_id in (ids.any, ids.ok)
            if run_id is not None
        }
        missing = sorted(wanted - self._runs.keys())
        found = await runs.get_many(missing)
        kept = {key: run for key, run in self._runs.items() if key in wanted}
        kept.update((key, run) for key, run in zip(missing, found, strict=True) if run is not None)
        self._runs = kept  # runs no longer anyone's latest are dropped

    def _run(self, model: str, run_id: str | None) -> RunResult | None:
        return None if run_id is None else self._runs.get((model, run_id))

    async def _created_at(self, registry: CreatedAtSource, model: str, now: float) -> float | None:
        cached = self._created.get(model)
        if cached is not None and 0.0 <= now - cached[0] < self._created_ttl:
            return cached[1]
        created = await registry.created_at(model)
        if created is None:  # deleted meanwhile: nothing to keep
            self._created.pop(model, None)
        else:
            self._created[model] = (now, created)
        return created
