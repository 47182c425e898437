"""What a run reads besides its window: the reference bytes (cached per process, by
version) and each KPI's window against the period before it."""

from __future__ import annotations

from collections import OrderedDict

from core.errors import UnknownModelError
from core.results import KpiComparison
from core.stores.kpis import KpiStore
from core.stores.registry import ModelRegistry
from detectors.evaluate import ReferencePayload
from detectors.kpis import compare_kpi

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
