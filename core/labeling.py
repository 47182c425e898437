"""The labeling loop's shared types: its per-model config (`labeling:` in the models
YAML), a production sample flagged for people to label (FlaggedSample), the queue's
task (LabelTask) and an annotation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FlagReason = Literal["uncertainty", "drift_region", "production_error", "data_quality", "random"]
UncertaintyMethod = Literal["confidence", "margin", "entropy"]
TaskState = Literal["open", "adjudication", "done"]
Label = str | int | float | bool


def _three_for_drift_region() -> dict[FlagReason, int]:
    return {"drift_region": 3}


class LabelingConfig(BaseModel):
    """What a model's runs flag and how many people label each flagged sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # confidence: 1 - top score (binary models); margin: top minus second score;
    # entropy: of the whole score vector (multiclass models)
    uncertainty: UncertaintyMethod = "confidence"
    # flagged when the top score is below this (confidence), the margin below it, or the
    # normalised entropy above 1 - it
    uncertainty_threshold: float = Field(default=0.6, gt=0, lt=1)
    # samples flagged per reason and run, at most
    max_per_reason: int = Field(default=50, ge=0, le=10_000)
    # the share of each run's window drawn at random (unbiased quality estimates)
    random_share: float = Field(default=0.1, ge=0, le=1)
    # ... but at most this many random samples per run
    max_random: int = Field(default=50, ge=0, le=10_000)
    # open tasks kept per model; the lowest priority goes first beyond it (counted)
    queue_max: int = Field(default=5000, ge=1, le=1_000_000)
    # done tasks kept per model (for the label TTL at most); the oldest go first beyond it
    done_max: int = Field(default=50_000, ge=1, le=10_000_000)
    # annotations a task needs (K); more for chosen reasons
    annotations_required: int = Field(default=1, ge=1, le=20)
    annotations_by_reason: dict[FlagReason, int] = Field(default_factory=_three_for_drift_region)
    # share of tasks that are gold (a known answer, to audit annotators)
    gold_share: float = Field(default=0.0, ge=0, le=1)
    lease_seconds: float = Field(default=600.0, gt=0, le=86_400)

    def required_for(self, reasons: list[FlagReason]) -> int:
        by_reason = [self.annotations_by_reason.get(reason, 0) for reason in reasons]
        return max([self.annotations_required, *by_reason])


class FlaggedSample(BaseModel):
    """One window event worth a label, with every reason it was flagged for."""

    event_id: str
    priority: float  # higher first
    reasons: list[FlagReason]
    # why, for people: e.g. "confidence 0.52 < 0.60", "income outside the reference range"
    details: list[str] = Field(default_factory=list)
    timestamp: float
    model_version: str | None = None
    features: dict[str, float | str | None]
    prediction: Label | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    label: Label | None = None  # ground truth when it already came (production errors)


class Annotation(BaseModel):
    annotator: str = Field(min_length=1, max_length=128)
    label: Label | None = None
    comment: str = Field(default="", max_length=2000)
    skip: bool = False
    adjudicator: bool = False
    at: float  # unix seconds


class LabelTask(BaseModel):
    id: str
    model: str
    sample: FlaggedSample
    required: int  # K
    state: TaskState = "open"
    annotations: list[Annotation] = Field(default_factory=list)
    final_label: Label | None = None
    agreement: float | None = None  # share of non-skip annotations that match the final label
    gold_label: Label | None = None  # known answer of a gold task
    created_at: float
    run_id: str
