"""The labeling loop's figures for its siblings: per-annotator agreement with the consensus
for the alert sink's annotator-agreement rules (alerts never import labeling), and the
same with the queue's counts for the scrape-time labeling gauges.

Agreement is the labeling audit's (labeling/audit.py) over the tasks annotated at or after
`since`, with labels normalised by the model's schema: what
`GET /v1/labeling/{model}/annotators?since=` answers, without the kappas."""

from __future__ import annotations

from alerts.rules_labeling import AnnotatorAgreement
from core.stores.label_queue import LabelQueue
from core.stores.label_queue_types import QueueStats
from core.stores.registry import ModelRegistry
from labeling.audit import audit
from labeling.normalize import normalized


class LabelingAgreements:
    """An AnnotatorAgreements provider (alerts/sink.py) and a LabelingSource
    (service/metrics_labeling.py), read from the label queue in Redis."""

    def __init__(self, queue: LabelQueue, registry: ModelRegistry) -> None:
        self._queue = queue
        self._registry = registry

    async def agreements(self, model: str, since: float) -> list[AnnotatorAgreement]:
        """Per annotator (sorted by name), their answers compared with a consensus and how
        many agreed; empty for a model without a schema or without annotated tasks."""
        schema = await self._registry.schema(model)
        if schema is None:
            return []
        tasks = await self._queue.annotations(model, since)
        if not tasks:
            return []
        return [
            AnnotatorAgreement(found.annotator, found.compared, found.agreed)
            for found in audit(normalized(task, schema) for task in tasks)
        ]

    async def queue_stats(self, model: str) -> QueueStats:
        return await self._queue.stats(model)
