"""The labeling loop's orchestration, without HTTP: claims that hide the answer, an
annotation that decides, settles and publishes, the model's agreement statistics, the
labelers' audit, and the Label Studio and dataset exports and import.

An annotation goes: label normalised by the model's schema (normalize.py) ->
LabelQueue.annotate -> TaskConcluder.conclude (ground_truth.py): consensus.decide ->
(when it decides a final label) publish as the event's ground truth -> LabelQueue.settle.
Statistics are pure over the annotated tasks (agreement.py, audit.py); exports are pure
formats of the queue's tasks (labelstudio.py, labelstudio_import.py, dataset.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import Clock
from core.errors import UnknownModelError
from core.labeling import Annotation, Label, LabelingConfig, LabelTask
from core.schema import ModelSchema
from core.stores.label_queue import LabelQueue
from core.stores.label_queue_errors import (
    AdjudicationPendingError,
    AlreadyAnnotatedError,
    TaskDoneError,
    UnknownTaskError,
)
from core.stores.label_queue_types import model_of
from core.stores.registry import ModelRegistry
from labeling.agreement import AnnotatorsReport, ModelStats, annotators_report, model_stats
from labeling.dataset import Dataset, build_dataset
from labeling.exports import (
    ImportedAnnotation,
    ImportOutcome,
    LabelStudioExport,
    labelstudio_export,
)
from labeling.ground_truth import GroundTruth, TaskConcluder
from labeling.labelstudio_import import import_annotations
from labeling.normalize import (
    InvalidAnnotationError,
    check_annotator,
    hidden,
    normalize_label,
    normalized,
)


class AnnotationCounter(Protocol):
    def count_annotation(self, model: str, outcome: str) -> None: ...


@dataclass(frozen=True)
class Claim:
    tasks: list[LabelTask]  # without gold labels or ground truth
    lease_seconds: float
    lease_until: float  # unix seconds


class LabelingWorkflow:
    """One app's labeling: cheap to build per request from its collaborators."""

    def __init__(
        self,
        queue: LabelQueue,
        labels: GroundTruth,
        registry: ModelRegistry,
        clock: Clock,
        labeling_for: Callable[[str], LabelingConfig],
        label_ttl_seconds: float,
        counter: AnnotationCounter,
    ) -> None:
        self._queue = queue
        self._labels = labels
        self._registry = registry
        self._clock = clock
        self._labeling_for = labeling_for
        self._ttl = label_ttl_seconds
        self._counter = counter

    async def schema(self, model: str) -> ModelSchema:
        """The model's schema; UnknownModelError for a model without a reference."""
        schema = await self._registry.schema(model)
        if schema is None:
            raise UnknownModelError(model)
        return schema

    # --- claiming and annotating ----------------------------------------------------------

    async def claim(
        self, model: str, annotator: str, limit: int, *, adjudicator: bool = False
    ) -> Claim:
        """Up to `limit` tasks for the annotator, highest priority first, each held for the
        model's `lease_seconds` (adjudication tasks for an adjudicator). Never with a gold
        label or the sample's ground truth; others' annotations only for adjudicators."""
        check_annotator(annotator, "annotator")
        await self.schema(model)
        lease = self._labeling_for(model).lease_seconds
        now = self._clock.now()
        claimed = await self._queue.claim(
            model, annotator, limit, lease, now, adjudicator=adjudicator
        )
        return Claim([hidden(task, adjudicator) for task in claimed], lease, now + lease)

    async def annotate(
        self,
        task_id: str,
        annotator: str,
        label: Label | None,
        *,
        comment: str = "",
        skip: bool = False,
        adjudicator: bool = False,
        at: float | None = None,
    ) -> LabelTask:
        """Record the annotation and settle the task when it decides it. Returns the task
        as it is after (with everything: the caller shows what it may). UnknownTaskError,
        AlreadyAnnotatedError, TaskDoneError, AdjudicationPendingError,
        InvalidAnnotationError."""
        check_annotator(annotator, "annotator")
        model = model_of(task_id)
        try:
            schema = await self.schema(model)
        except UnknownModelError as exc:
            raise UnknownTaskError(task_id, f"no task {task_id!r}") from exc
        now = self._clock.now()
        annotation = Annotation(
            annotator=annotator,
            label=None if skip else normalize_label(label, schema, "label"),
            comment=comment,
            skip=skip,
            adjudicator=adjudicator,
            at=now if at is None else at,
        )
        task = await self._queue.annotate(task_id, annotation, now)
        self._counter.count_annotation(model, "skipped" if skip else "labeled")
        # built per call, on the queue of the moment (tests swap in a racing one)
        concluder = TaskConcluder(self._queue, self._labels, self._labeling_for, self._ttl)
        return await concluder.conclude(task)

    # --- statistics and audit -------------------------------------------------------------

    async def _annotated(self, model: str, since: float | None) -> list[LabelTask]:
        schema = await self.schema(model)
        tasks = await self._queue.annotations(model, since)
        return [normalized(task, schema) for task in tasks]

    async def stats(self, model: str, since: float | None = None) -> ModelStats:
        """The queue's counts, and the agreement over the tasks annotated since `since`."""
        tasks = await self._annotated(model, since)
        return model_stats(await self._queue.stats(model), tasks)

    async def annotators(self, model: str, since: float | None = None) -> AnnotatorsReport:
        """Per annotator (sorted by name): agreement with the consensus, week by week,
        accuracy on gold tasks, and Cohen's kappa against the final labels."""
        return annotators_report(await self._annotated(model, since))

    # --- exports and import ---------------------------------------------------------------

    async def export_labelstudio(
        self, model: str, limit: int, *, errors_only: bool = False
    ) -> LabelStudioExport:
        """The open tasks, highest priority first, in Label Studio's import format with the
        labeling config to create the project with. With `errors_only`, the tasks flagged
        as production errors alone. ValueError when no label class is known."""
        schema = await self.schema(model)
        tasks = await self._queue.tasks(model, "open", limit)
        return labelstudio_export(tasks, schema, errors_only)

    async def export_dataset(self, model: str, limit: int, *, errors_only: bool = False) -> Dataset:
        """The newest `limit` done tasks as a versioned dataset (labeling/dataset.py); with
        `errors_only`, the rows whose final label differs from the model's prediction."""
        record = await self._registry.get(model)
        if record is None:
            raise UnknownModelError(model)
        tasks = await self._queue.tasks(model, "done", limit)
        return await asyncio.to_thread(
            build_dataset,
            tasks,
            record.schema,
            model,
            record.active_version,
            errors_only,
            self._clock.now(),
        )

    async def import_labelstudio(
        self, model: str, exported: Sequence[Any]
    ) -> list[ImportedAnnotation]:
        """Label Studio's JSON export of tasks exported here, back as annotations, one
        outcome each, in order. A malformed export raises ValueError naming the field and
        imports nothing."""
        await self.schema(model)
        found = import_annotations(exported)
        outcomes: list[ImportedAnnotation] = []
        for index, (task_id, annotation) in enumerate(found):
            outcomes.append(await self._import_one(model, index, task_id, annotation))
        return outcomes

    async def _import_one(
        self, model: str, index: int, task_id: str, annotation: Annotation
    ) -> ImportedAnnotation:
        def outcome(kind: ImportOutcome, error: str | None = None) -> ImportedAnnotation:
            return ImportedAnnotation(index, task_id, annotation.annotator, kind, error=error)

        try:
            if model_of(task_id) != model:
                return outcome("unknown_task", f"task {task_id!r} is not of model {model!r}")
            task = await self.annotate(
                task_id,
                annotation.annotator,
                annotation.label,
                skip=annotation.skip,
                at=annotation.at,
            )
        except UnknownTaskError as exc:
            return outcome("unknown_task", str(exc))
        except AlreadyAnnotatedError as exc:
            return outcome("duplicate", str(exc))
        except TaskDoneError as exc:
            return outcome("done", str(exc))
        except AdjudicationPendingError as exc:
            return outcome("adjudication_pending", str(exc))
        except InvalidAnnotationError as exc:
            return outcome("invalid", f"{exc.field}: {exc}")
        return ImportedAnnotation(
            index, task_id, annotation.annotator, "imported", state=task.state
        )
