"""RunResult: the stable JSON of one detection run. Add fields, never rename.

The sections were plain dicts before they were typed, and stored runs keep their JSON:
a key those dicts left out in some cases is a field `OmittedWhenNone`, absent from the
JSON while None; a whole section a run may lack is `EmptyWhenAbsent`, None here and {} in
the JSON. Every other None is written as null. Field order is the JSON's key order."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WrapSerializer

RunStatus = Literal["ok", "insufficient_data", "error"]
Severity = Literal["info", "warning", "critical"]
QualityCheck = Literal[
    "missing_column",
    "missing_values",
    "unseen_categories",
    "out_of_range",
    "type_mismatch",
    "new_column",
]

FieldT = TypeVar("FieldT")
SectionT = TypeVar("SectionT", bound=BaseModel)


def _is_none(value: object) -> bool:
    return value is None


def _empty_is_none(value: object) -> object:
    return None if value == {} else value


OmittedWhenNone = Annotated[FieldT | None, Field(exclude_if=_is_none)]
# a lambda, not a def: a serializer without a return annotation keeps the section's own
# schema in the OpenAPI document
EmptyWhenAbsent = Annotated[
    SectionT | None,
    BeforeValidator(_empty_is_none),
    WrapSerializer(lambda section, write: {} if section is None else write(section)),
]


class WindowInfo(BaseModel):
    start: str | None = None
    end: str | None = None
    events: int = 0


class ColumnResult(BaseModel):
    kind: str
    method: str | None = None
    method_name: str | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    missing_share: float = 0.0
    reference_size: int = 0
    current_size: int = 0
    effect_size: float | None = None
    effect_size_floor: float | None = None
    status: Literal["ok", "insufficient_data", "error"] = "ok"
    note: str | None = None


class MeanConfidence(BaseModel):
    reference: float
    window: float


class VersionComparison(BaseModel):
    """A newer model version's predictions and confidence against the stable one's."""

    events: int
    prediction: ColumnResult
    confidence: OmittedWhenNone[ColumnResult] = None


class ModelVersions(BaseModel):
    """The most frequent versions (the config's max_model_versions, stable included);
    the rest, when the window held more, only counted together."""

    stable: str
    events: dict[str, int]
    candidates: dict[str, VersionComparison]
    # versions beyond the cap, and their events
    other_versions: OmittedWhenNone[int] = None
    other_events: OmittedWhenNone[int] = None


class PredictionSection(BaseModel):
    """The model's outputs against the reference; each part only when it applies."""

    drift: OmittedWhenNone[ColumnResult] = None
    confidence: OmittedWhenNone[ColumnResult] = None
    mean_confidence: OmittedWhenNone[MeanConfidence] = None
    versions: OmittedWhenNone[ModelVersions] = None


class ClassificationMetrics(BaseModel):
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: OmittedWhenNone[float] = None


class RegressionMetrics(BaseModel):
    mae: float
    rmse: float
    mean_error: float


QualityMetrics = ClassificationMetrics | RegressionMetrics


class RandomEstimate(BaseModel):
    """Quality on the window's events labeled through the labeling queue's random share
    alone: a uniform sample, where the queue's other picks lean towards errors. Metrics
    once `min_labeled_events` (a lower floor than the run's) such events are labeled."""

    labeled_events: int
    min_labeled_events: int
    window: QualityMetrics | None = None


class Performance(BaseModel):
    """Model quality from ground truth; metrics once enough events carry a label, and
    the comparison with the reference when the reference has labels too."""

    task: Literal["classification", "regression"]
    labeled_events: int
    label_coverage: float
    min_labeled_events: int
    status: Literal["ok", "insufficient_labels"]
    window: OmittedWhenNone[QualityMetrics] = None
    reference: OmittedWhenNone[QualityMetrics] = None
    # reference minus window, for the metrics both have
    drop: OmittedWhenNone[QualityMetrics] = None
    label_drift: OmittedWhenNone[ColumnResult] = None
    # labeled window events whose label came from the labeling queue, and the estimate
    # from its random share alone; both absent when none did
    labels_from_queue: OmittedWhenNone[int] = None
    random_estimate: OmittedWhenNone[RandomEstimate] = None


class ColumnQuality(BaseModel):
    """A feature's quality in the window; the range stats for numerical columns, the
    category stats for categorical ones."""

    missing_share: float
    reference_missing_share: float
    out_of_range_share: OmittedWhenNone[float] = None
    reference_range: OmittedWhenNone[tuple[float, float]] = None
    unseen_category_share: OmittedWhenNone[float] = None
    # the most frequent unseen categories and their counts
    unseen_categories: OmittedWhenNone[dict[str, int]] = None
    type_mismatches: int = 0


class SchemaChanges(BaseModel):
    missing_columns: list[str] = Field(default_factory=list)
    # fields intake refused as unknown, and how many records sent each
    new_columns: dict[str, int] = Field(default_factory=dict)
    # unknown fields beyond the cap (max_findings_per_check), left out of new_columns
    omitted_new_columns: OmittedWhenNone[int] = None


class Finding(BaseModel):
    column: str
    check: QualityCheck
    # a share for most checks; a count of records for type_mismatch and new_column
    value: float | int
    severity: Severity
    message: str


class DataQuality(BaseModel):
    # `schema` would shadow a BaseModel attribute; the JSON key stays "schema"
    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    columns: dict[str, ColumnQuality] = Field(default_factory=dict)
    schema_changes: SchemaChanges = Field(default_factory=SchemaChanges, alias="schema")
    findings: list[Finding] = Field(default_factory=list)
    worst_severity: Severity | None = None
    # findings beyond the cap per check (max_findings_per_check), counted by check
    omitted_findings: OmittedWhenNone[dict[QualityCheck, int]] = None


class Multivariate(BaseModel):
    """The domain classifier's verdict on the joint distribution."""

    method: Literal["domain_classifier"] = "domain_classifier"
    status: Literal["ok", "insufficient_data"]
    score: OmittedWhenNone[float] = None
    threshold: OmittedWhenNone[float] = None
    drifted: OmittedWhenNone[bool] = None
    sample_size: int


class KpiSummary(BaseModel):
    count: int
    mean: float | None = None
    last: float | None = None


class KpiComparison(BaseModel):
    """A business KPI in the window against its baseline period before the window."""

    window: KpiSummary
    baseline: KpiSummary
    change: float | None = None
    relative_change: float | None = None


class RunResult(BaseModel):
    run_id: str
    model: str
    status: RunStatus
    trigger: Literal["schedule", "manual"] = "manual"
    started_at: str
    duration_seconds: float = 0.0
    reference_version: str | None = None
    window: WindowInfo = Field(default_factory=WindowInfo)
    min_window_events: int = 0
    dataset_drift: bool | None = None
    # consecutive ok runs, this one included, that found dataset drift
    dataset_drift_streak: int = 0
    drifted_share: float | None = None
    drift_share_threshold: float | None = None
    columns: dict[str, ColumnResult] = Field(default_factory=dict)
    prediction: PredictionSection = Field(default_factory=PredictionSection)
    performance: EmptyWhenAbsent[Performance] = None
    data_quality: EmptyWhenAbsent[DataQuality] = None
    multivariate: EmptyWhenAbsent[Multivariate] = None
    kpis: dict[str, KpiComparison] = Field(default_factory=dict)
    error: str | None = None
