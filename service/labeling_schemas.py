"""The labeling API's request and answer bodies (service/routes_labeling.py,
service/routes_labeling_export.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.labeling import Annotation, FlagReason, Label, TaskState
from labeling.agreement import KappaMethod
from labeling.exports import ImportOutcome
from labeling.normalize import ANNOTATOR_PATTERN


class ClaimedTask(BaseModel):
    """A task as an annotator sees it: the sample and why it was flagged, not its answer."""

    id: str
    model: str
    state: TaskState
    required: int = Field(description="annotations the task needs (K)")
    event_id: str
    priority: float = Field(description="higher first")
    reasons: list[FlagReason]
    details: list[str]
    timestamp: float
    model_version: str | None
    features: dict[str, float | str | None]
    prediction: Label | None
    scores: dict[str, float]
    annotations: list[Annotation] = Field(description="the tied answers, for adjudicators")
    created_at: float
    run_id: str


class ClaimAnswer(BaseModel):
    tasks: list[ClaimedTask] = Field(description="highest priority first")
    lease_seconds: float
    lease_until: float = Field(description="unix seconds: the tasks go back to the queue then")


class AnnotationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    annotator: str = Field(pattern=ANNOTATOR_PATTERN, description="1-128 printable characters")
    label: Label | None = Field(default=None, description="required unless `skip`")
    comment: str = Field(default="", max_length=2000)
    skip: bool = Field(default=False, description="pass on the task: it goes to someone else")
    adjudicator: bool = Field(default=False, description="settles a tied task")


class AnnotationAnswer(BaseModel):
    task_id: str
    model: str
    state: TaskState
    required: int
    answers: int = Field(description="non-skip annotations of annotators (not adjudicators)")
    final_label: Label | None = Field(description="once done")
    agreement: float | None = Field(description="once done: answers equal to the final label")


class LabelingStats(BaseModel):
    model: str
    open: int
    claimed: int = Field(description="unfinished tasks with a live claim")
    adjudication: int
    done: int
    by_reason: dict[str, int] = Field(description="unfinished tasks per flag reason")
    evicted_total: int
    annotated_tasks: int = Field(description="tasks with an annotation since `since`")
    disagreement_rate: float | None = Field(description="split tasks of those with 2+ answers")
    kappa: float | None
    kappa_method: KappaMethod | None = Field(
        description="cohen for two annotators in all, fleiss for more"
    )
    annotators: int
    mean_task_agreement: float | None = Field(description="mean agreement of the done tasks")


class AnnotatorWeekAnswer(BaseModel):
    week: str = Field(description='ISO week, "2027-W03"')
    week_start: date
    answers: int
    skips: int
    compared: int = Field(description="answers on tasks whose consensus rests on 2+ answers")
    agreed: int
    agreement: float | None
    gold_answered: int
    gold_correct: int
    gold_accuracy: float | None


class AnnotatorAnswer(BaseModel):
    annotator: str
    answers: int
    skips: int
    compared: int
    agreed: int
    agreement: float | None = Field(description="agreed / compared: with the consensus")
    gold_answered: int
    gold_correct: int
    gold_accuracy: float | None
    kappa: float | None = Field(description="Cohen's kappa against the final labels")
    weeks: list[AnnotatorWeekAnswer] = Field(description="oldest first")


class AnnotatorsAnswer(BaseModel):
    model: str
    disagreement_rate: float | None
    kappa: float | None
    kappa_method: KappaMethod | None
    annotators: list[AnnotatorAnswer] = Field(description="sorted by name")


class LabelStudioAnswer(BaseModel):
    label_config: str = Field(description="the labeling config (XML) of the project")
    tasks: list[dict[str, Any]] = Field(description="Label Studio's task import format")


class ImportedAnswer(BaseModel):
    index: int
    task_id: str
    annotator: str
    outcome: ImportOutcome
    state: TaskState | None = None
    error: str | None = None


class ImportAnswer(BaseModel):
    received: int = Field(description="annotations in the export")
    imported: int
    results: list[ImportedAnswer] = Field(description="one per annotation, in order")
