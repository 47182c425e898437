"""The labeling loop's orchestration, without HTTP: claims that hide the answer, an
annotation that decides, settles and publishes, the model's agreement statistics, the
labelers' audit, and the Label Studio and dataset exports and import.

An annotation goes: label normalised by the model's schema -> LabelQueue.annotate ->
consensus.decide -> (when it decides a final label) publish -> LabelQueue.settle, told
how many annotations were decided on; when another annotation came in meanwhile
(StaleTaskError) the task is read again and decided again, a few times at most (the
newest annotation's own call decides on all of them).

Publishing a final label writes the event's ground truth in the label store (what
`POST /labels` writes, read by the next runs' performance section) and a mark saying
the label came from the queue, and whether the sample was drawn at random (`"random"`
among its reasons), so that the performance section can tell the unbiased labels apart.
Both writes are idempotent and come BEFORE the settle: a process dying between the two
leaves the task unsettled with its label already in the store, and whichever call
concludes the task next (the next annotation on it) writes the same label again and
settles it; never a done task whose label is missing. The price is a label written for
a decision the settle then refuses: when another call settled the task first
(TaskDoneError), this call writes the settled label again should it differ from its own,
so the store ends with the task's final label; when a late annotation turns the decision
into a tie (adjudication), the label written stays until the adjudicator's replaces it
(logged). The settle also prunes the model's old done tasks (the label TTL,
`done_max`: core/stores/label_queue.py).

Labels are normalised by the model's schema before anything compares them: a class as its
category text (`1`, `1.0` and `"1"` are one class, as Label Studio's choices are text), a
regression target as a float. Gold labels are compared the same way in the audit."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from core.clock import Clock
from core.errors import UnknownModelError
from core.labeling import Annotation, Label, LabelingConfig, LabelTask
from core.schema import ModelSchema, category_text
from core.stores.label_queue import (
    AdjudicationPendingError,
    AlreadyAnnotatedError,
    LabelQueue,
    QueueStats,
    Retention,
    StaleTaskError,
    TaskDoneError,
    UnknownTaskError,
    model_of,
)
from core.stores.registry import ModelRegistry
from labeling.audit import AnnotatorAudit, audit
from labeling.consensus import (
    answers,
    cohen_kappa,
    decide,
    disagreement_rate,
    fleiss_kappa,
    pairs_between,
)
from labeling.dataset import Dataset, build_dataset
from labeling.labelstudio import export_tasks, import_annotations, label_classes, label_config_xml

log = logging.getLogger(__name__)

# an annotator's name: 1 to 128 characters, none of them a control character (C0, C1)
# or a line or paragraph separator; the same pattern checks the API's query and body
ANNOTATOR_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,128}$"
ANNOTATOR = re.compile(ANNOTATOR_PATTERN)
LABEL_MAX_CHARS = 256
# decide-and-settle rounds of one annotation before leaving it to a newer one's call
SETTLE_TRIES = 8
KappaMethod = Literal["cohen", "fleiss"]
ImportOutcome = Literal[
    "imported", "duplicate", "done", "adjudication_pending", "unknown_task", "invalid"
]


class GroundTruth(Protocol):
    """The label store as the workflow writes it (core/stores/labels.py)."""

    async def put_labels(
        self,
        model: str,
        labels: dict[str, object],
        ttl_seconds: float,
        origins: dict[str, bool] | None = None,
        /,
    ) -> tuple[int, int]: ...


class AnnotationCounter(Protocol):
    def count_annotation(self, model: str, outcome: str) -> None: ...


class InvalidAnnotationError(ValueError):
    """An annotation the workflow refuses before the queue sees it; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Claim:
    tasks: list[LabelTask]  # without gold labels or ground truth
    lease_seconds: float
    lease_until: float  # unix seconds


@dataclass(frozen=True)
class Agreement:
    """How much the annotators of a set of tasks agree."""

    tasks: int  # annotated tasks looked at
    disagreement_rate: float | None  # share of tasks with 2+ answers that are split
    kappa: float | None
    kappa_method: KappaMethod | None  # cohen: two annotators in all; fleiss: more
    annotators: int  # distinct annotators with an answer on a task of 2+ answers


@dataclass(frozen=True)
class ModelStats:
    queue: QueueStats
    agreement: Agreement
    mean_task_agreement: float | None  # over the done tasks annotated since `since`


@dataclass(frozen=True)
class AnnotatorReport:
    audit: AnnotatorAudit
    # Cohen's kappa of the annotator's labels against the final labels (done tasks whose
    # final label rests on two answers or more)
    kappa: float | None


@dataclass(frozen=True)
class AnnotatorsReport:
    agreement: Agreement
    annotators: list[AnnotatorReport]


@dataclass(frozen=True)
class ImportedAnnotation:
    index: int  # of the annotation in the export, in order
    task_id: str
    annotator: str
    outcome: ImportOutcome
    state: str | None = None  # the task's state after it, when imported
    error: str | None = None


@dataclass(frozen=True)
class LabelStudioExport:
    label_config: str  # the labeling config (XML) to create the project with
    tasks: list[dict[str, Any]]  # Label Studio's import format


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
        return Claim([_hidden(task, adjudicator) for task in claimed], lease, now + lease)

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
        return await self._conclude(task)

    async def _conclude(self, task: LabelTask) -> LabelTask:
        """Decide on the task's annotations and settle what they decide; a final label is
        published (as the event's ground truth) before the settle that makes it final."""
        published: list[Label | None] = []  # the label this call wrote, if any
        for _ in range(SETTLE_TRIES):
            decision = decide(task)
            if decision.state in ("open", task.state):
                return await self._after(task, published)
            if decision.state == "done" and published != [decision.final_label]:
                await self._publish(task, decision.final_label)
                published = [decision.final_label]
            config = self._labeling_for(task.model)
            try:
                settled = await self._queue.settle(
                    task.id,
                    decision.state,
                    decision.final_label,
                    decision.agreement,
                    expected_annotations=len(task.annotations),
                    retention=Retention(self._ttl, config.done_max),
                )
            except StaleTaskError:
                task = await self._reread(task)
                continue
            except TaskDoneError:  # another call settled it, and published its label first
                return await self._after(await self._reread(task), published)
            return await self._after(settled, published)
        log.info(
            "task %s changed under %d decisions: a newer annotation decides", task.id, SETTLE_TRIES
        )
        return task

    async def _after(self, task: LabelTask, published: list[Label | None]) -> LabelTask:
        """The task as settled (by this call or another), once this one published a label:
        the store gets the task's final label again should this call's have replaced it."""
        if not published:
            return task
        if task.state == "done":
            if published != [task.final_label]:
                await self._publish(task, task.final_label)
        else:
            log.info(
                "task %s went to %s after its label %r was published: the %s replaces it",
                task.id,
                task.state,
                published[0],
                "adjudicator's" if task.state == "adjudication" else "next decision",
            )
        return task

    async def _reread(self, task: LabelTask) -> LabelTask:
        fresh = await self._queue.get(task.id)
        if fresh is None:  # its model was deleted meanwhile, or the task pruned
            raise UnknownTaskError(task.id, f"no task {task.id!r}")
        return fresh

    async def _publish(self, task: LabelTask, final_label: Label | None) -> None:
        """The final label becomes the event's ground truth, marked as the queue's."""
        event_id = task.sample.event_id
        origin = {event_id: "random" in task.sample.reasons}
        _, unknown = await self._labels.put_labels(
            task.model, {event_id: final_label}, self._ttl, origin
        )
        if unknown:  # the event is past retention: nothing to join the label to
            log.info("final label of task %s: event %r is no longer stored", task.id, event_id)

    # --- statistics and audit -------------------------------------------------------------

    async def _annotated(self, model: str, since: float | None) -> list[LabelTask]:
        schema = await self.schema(model)
        tasks = await self._queue.annotations(model, since)
        return [normalized(task, schema) for task in tasks]

    async def stats(self, model: str, since: float | None = None) -> ModelStats:
        """The queue's counts, and the agreement over the tasks annotated since `since`."""
        tasks = await self._annotated(model, since)
        queue = await self._queue.stats(model)
        done = [t.agreement for t in tasks if t.state == "done" and t.agreement is not None]
        mean = sum(done) / len(done) if done else None
        return ModelStats(queue, agreement_of(tasks), mean)

    async def annotators(self, model: str, since: float | None = None) -> AnnotatorsReport:
        """Per annotator (sorted by name): agreement with the consensus, week by week,
        accuracy on gold tasks, and Cohen's kappa against the final labels."""
        tasks = await self._annotated(model, since)
        reports = [
            AnnotatorReport(found, cohen_kappa(consensus_pairs(tasks, found.annotator)))
            for found in audit(tasks)
        ]
        return AnnotatorsReport(agreement_of(tasks), reports)

    # --- exports and import ---------------------------------------------------------------

    async def export_labelstudio(
        self, model: str, limit: int, *, errors_only: bool = False
    ) -> LabelStudioExport:
        """The open tasks, highest priority first, in Label Studio's import format with the
        labeling config to create the project with. With `errors_only`, the tasks flagged
        as production errors alone. ValueError when no label class is known."""
        schema = await self.schema(model)
        tasks = await self._queue.tasks(model, "open", limit)
        if errors_only:
            tasks = [task for task in tasks if "production_error" in task.sample.reasons]
        config = label_config_xml(schema, label_classes(schema, tasks))
        return LabelStudioExport(config, export_tasks(tasks, schema))

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


# --- pure helpers --------------------------------------------------------------------------


def check_annotator(annotator: str, field: str) -> None:
    if not ANNOTATOR.fullmatch(annotator):  # not match: "$" passes a final line break
        raise InvalidAnnotationError(
            field, "1 to 128 printable characters (no control characters or line breaks)"
        )


def normalize_label(label: Label | None, schema: ModelSchema, field: str) -> Label:
    """A label as the model's labels compare: a class's category text, or a regression
    target as a finite float. InvalidAnnotationError when there is none or it is unusable."""
    if label is None:
        raise InvalidAnnotationError(field, "an annotation that is no skip needs a label")
    if (schema.prediction_kind or "categorical") == "numerical":
        if isinstance(label, bool):
            raise InvalidAnnotationError(field, "expected a number (a regression target)")
        try:
            number = float(label)
        except ValueError:
            raise InvalidAnnotationError(field, f"{label!r} is not a number") from None
        if not math.isfinite(number):
            raise InvalidAnnotationError(field, "expected a finite number")
        return number
    if isinstance(label, float) and not math.isfinite(label):
        raise InvalidAnnotationError(field, "expected a class, not a non-finite number")
    text = category_text(label)
    if not text or len(text) > LABEL_MAX_CHARS:
        raise InvalidAnnotationError(field, f"a class is 1 to {LABEL_MAX_CHARS} characters")
    return text


def _normal(label: Label | None, schema: ModelSchema) -> Label | None:
    if label is None:
        return None
    try:
        return normalize_label(label, schema, "label")
    except InvalidAnnotationError:
        return label


def normalized(task: LabelTask, schema: ModelSchema) -> LabelTask:
    """The task with its labels as they compare (gold label and ground truth included)."""
    return task.model_copy(
        update={
            "annotations": [
                a.model_copy(update={"label": _normal(a.label, schema)}) for a in task.annotations
            ],
            "final_label": _normal(task.final_label, schema),
            "gold_label": _normal(task.gold_label, schema),
        }
    )


def _hidden(task: LabelTask, adjudicator: bool) -> LabelTask:
    """The task as an annotator sees it: no answer, nor others' annotations unless for an
    adjudicator (the queue strips them already; this keeps it so whatever the store)."""
    update: dict[str, Any] = {
        "gold_label": None,
        "final_label": None,
        "agreement": None,
        "sample": task.sample.model_copy(update={"label": None}),
    }
    if not adjudicator:
        update["annotations"] = []
    return task.model_copy(update=update)


def agreement_of(tasks: Sequence[LabelTask]) -> Agreement:
    """The disagreement rate and an inter-annotator coefficient of the tasks: Cohen's kappa
    when the tasks with two answers or more were answered by two annotators in all,
    Fleiss' kappa when by more (over the tasks with the most common number of answers
    above two; without such tasks, over those with two)."""
    multi = [task for task in tasks if len(answers(task)) >= 2]
    names = sorted({a.annotator for task in multi for a in answers(task)})
    kappa: float | None = None
    method: KappaMethod | None = None
    if len(names) == 2:
        method = "cohen"
        kappa = cohen_kappa(pairs_between(multi, names[0], names[1]))
    elif len(names) > 2:
        method = "fleiss"
        kappa = fleiss_kappa(multi)
        if kappa is None:
            kappa = fleiss_kappa(multi, raters=2)
    return Agreement(
        tasks=len(tasks),
        disagreement_rate=disagreement_rate(tasks),
        kappa=kappa,
        kappa_method=method,
        annotators=len(names),
    )


def consensus_pairs(
    tasks: Sequence[LabelTask], annotator: str
) -> list[tuple[Label | None, Label | None]]:
    """(the annotator's label, the final label) on done tasks whose final label rests on
    two answers or more: the ones the audit compares."""
    pairs: list[tuple[Label | None, Label | None]] = []
    for task in tasks:
        labelled = [a for a in task.annotations if not a.skip]
        if task.state != "done" or task.final_label is None or len(labelled) < 2:
            continue
        pairs += [(a.label, task.final_label) for a in answers(task) if a.annotator == annotator]
    return pairs
