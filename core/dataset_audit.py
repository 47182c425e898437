"""A dataset audit: what `driftmon audit` and a reference upload report about a training
set before anyone trusts it. Types only; the computations are pure functions in
detectors/dataset_audit.py.

`DatasetAudit` is the full result (the CLI's `--out` JSON). `AuditSummary` is its
compact, bounded form kept with the model record: counts and the names of flagged
columns, never row data or feature values."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from core.results import ColumnResult, Multivariate

LabelTask = Literal["classification", "regression"]
AuditKind = Literal["numerical", "categorical", "datetime"]
FindingKind = Literal[
    "exact_duplicates",
    "near_duplicates",
    "constant_columns",
    "leakage_suspects",
    "label_conflicts",
    "missing_columns",
    "drifted_columns",
    "domain_shift",
]
# names per list in a summary, classes in a class balance: bounded whatever the file
MAX_LISTED = 50
MAX_SUMMARY_MISSING = 20
MAX_SUMMARY_CLASSES = 20


class AuditThresholds(BaseModel):
    """Where the audit draws its lines; the CLI's options."""

    model_config = ConfigDict(frozen=True)

    near_digits: int = Field(
        4, ge=1, le=15, description="significant digits floats keep when near duplicates are sought"
    )
    leakage_auc: float = Field(
        0.98, gt=0.5, le=1, description="single-column ROC AUC that makes a leakage suspect"
    )
    leakage_spearman: float = Field(
        0.98, gt=0, le=1, description="|Spearman rho| that makes a suspect (regression label)"
    )
    high_cardinality_count: int = Field(
        100, ge=2, description="distinct values that make a categorical high-cardinality"
    )
    high_cardinality_ratio: float = Field(
        0.5, gt=0, le=1, description="share of distinct values that makes a categorical id-like"
    )
    domain_auc: float = Field(
        0.6, gt=0.5, le=1, description="domain-classifier ROC AUC that tells the files apart"
    )
    domain_sample: int = Field(
        2000, ge=100, description="rows per file the domain classifier samples"
    )
    sample_rows: int = Field(
        200_000, ge=1000, description="labelled rows the leakage scores sample"
    )


class ColumnProfile(BaseModel):
    name: str
    dtype: str
    kind: AuditKind
    missing_share: float
    distinct: int = Field(description="distinct present values")
    constant: bool = Field(description="the same value in every row (all missing is one)")
    high_cardinality: bool
    id_like: bool = Field(description="a categorical whose values hardly recur")


class Duplicates(BaseModel):
    exact_rows: int = Field(description="rows identical to an earlier row")
    near_rows: int = Field(description="rows equal to an earlier row only once normalised")
    exact_examples: list[int] = Field(description="0-based row numbers of the first ones")
    near_examples: list[int]


class ClassBalance(BaseModel):
    counts: dict[str, int] = Field(description="rows per class, most frequent first")
    other_classes: int = Field(0, description="classes beyond those listed")
    missing: int = Field(description="rows without a label")
    minority_share: float | None = None
    majority_share: float | None = None

    def capped(self, most: int) -> ClassBalance:
        listed = dict(list(self.counts.items())[:most])
        extra = len(self.counts) - len(listed)
        return self.model_copy(
            update={"counts": listed, "other_classes": self.other_classes + extra}
        )


class LeakageScore(BaseModel):
    column: str
    metric: Literal["auc", "spearman"]
    score: float | None = Field(description="None when undefined (constant column, one class)")
    positive_class: str | None = Field(None, description="the class scored, one-vs-rest")
    suspect: bool


class LabelConflicts(BaseModel):
    """Rows whose features are identical but whose labels differ."""

    groups: int
    rows: int
    noise_rate: float = Field(description="rows outside their group's majority / labelled rows")
    examples: list[int] = Field(default_factory=list, description="0-based row numbers")


class Comparison(BaseModel):
    """The audited file against `--against OTHER`."""

    other_rows: int
    columns: dict[str, ColumnResult] = Field(description="drift per shared column")
    drifted: list[str]
    only_in_file: list[str]
    only_in_other: list[str]
    not_compared: list[str] = Field(description="datetime and id-like columns")
    domain: Multivariate
    domain_excluded: list[str] = Field(
        description="columns empty in either file, left out of the classifier"
    )


class Finding(BaseModel):
    kind: FindingKind
    message: str
    columns: list[str] = Field(default_factory=list)


class AuditSummary(BaseModel):
    """The bounded audit kept with a model's active reference."""

    rows: int
    exact_duplicates: int
    near_duplicates: int
    constant_columns: list[str]
    missing: dict[str, float] = Field(description="share missing, worst columns first")
    class_balance: ClassBalance | None
    leakage_suspects: list[str]
    high_cardinality: list[str]
    label_conflicts: LabelConflicts | None
    findings: list[Finding]


class DatasetAudit(BaseModel):
    rows: int
    label: str | None
    label_task: LabelTask | None
    thresholds: AuditThresholds
    scored_rows: int = Field(description="labelled rows (sampled) the leakage scores use")
    columns: list[ColumnProfile]
    duplicates: Duplicates
    class_balance: ClassBalance | None
    leakage: list[LeakageScore]
    label_conflicts: LabelConflicts | None
    comparison: Comparison | None = None

    @property
    def constant_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.constant]

    @property
    def high_cardinality(self) -> list[str]:
        return [column.name for column in self.columns if column.high_cardinality]

    @property
    def leakage_suspects(self) -> list[str]:
        return [score.column for score in self.leakage if score.suspect]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def findings(self) -> list[Finding]:
        """What makes the command exit 1: each a reason not to trust the set as it is."""
        found = [*_row_findings(self), *_column_findings(self)]
        if self.comparison is not None:
            found.extend(_comparison_findings(self.comparison))
        return found

    def summary(self) -> AuditSummary:
        missing = sorted(
            ((c.name, c.missing_share) for c in self.columns if c.missing_share > 0),
            key=lambda item: -item[1],
        )
        conflicts = self.label_conflicts
        return AuditSummary(
            rows=self.rows,
            exact_duplicates=self.duplicates.exact_rows,
            near_duplicates=self.duplicates.near_rows,
            constant_columns=self.constant_columns[:MAX_LISTED],
            missing=dict(missing[:MAX_SUMMARY_MISSING]),
            class_balance=None
            if self.class_balance is None
            else self.class_balance.capped(MAX_SUMMARY_CLASSES),
            leakage_suspects=self.leakage_suspects[:MAX_LISTED],
            high_cardinality=self.high_cardinality[:MAX_LISTED],
            label_conflicts=None
            if conflicts is None
            else conflicts.model_copy(update={"examples": []}),
            findings=[
                f.model_copy(update={"columns": f.columns[:MAX_LISTED]}) for f in self.findings
            ],
        )


def _named(columns: list[str]) -> str:
    shown = ", ".join(columns[:10])
    return shown if len(columns) <= 10 else f"{shown} and {len(columns) - 10} more"


def _row_findings(audit: DatasetAudit) -> list[Finding]:
    found: list[Finding] = []
    duplicates = audit.duplicates
    if duplicates.exact_rows:
        message = f"{duplicates.exact_rows} rows repeat an earlier row exactly"
        found.append(Finding(kind="exact_duplicates", message=message))
    if duplicates.near_rows:
        digits = audit.thresholds.near_digits
        message = f"{duplicates.near_rows} more rows repeat one after normalising ({digits} digits)"
        found.append(Finding(kind="near_duplicates", message=message))
    conflicts = audit.label_conflicts
    if conflicts is not None and conflicts.groups:
        message = (
            f"{conflicts.groups} groups of identical features ({conflicts.rows} rows) carry "
            f"different labels: estimated label noise {conflicts.noise_rate:.2%}"
        )
        found.append(Finding(kind="label_conflicts", message=message))
    return found


def _column_findings(audit: DatasetAudit) -> list[Finding]:
    found: list[Finding] = []
    constant = audit.constant_columns
    if constant:
        message = f"constant columns: {_named(constant)}"
        found.append(Finding(kind="constant_columns", message=message, columns=constant))
    suspects = audit.leakage_suspects
    if suspects:
        message = f"columns that predict the label almost alone: {_named(suspects)}"
        found.append(Finding(kind="leakage_suspects", message=message, columns=suspects))
    return found


def _comparison_findings(comparison: Comparison) -> list[Finding]:
    found: list[Finding] = []
    absent = comparison.only_in_file + comparison.only_in_other
    if absent:
        message = f"columns missing from one of the files: {_named(absent)}"
        found.append(Finding(kind="missing_columns", message=message, columns=absent))
    if comparison.drifted:
        message = f"drifted columns: {_named(comparison.drifted)}"
        found.append(Finding(kind="drifted_columns", message=message, columns=comparison.drifted))
    domain = comparison.domain
    if domain.drifted and domain.score is not None:
        message = f"a classifier tells the files apart: domain AUC {domain.score:.3f}"
        found.append(Finding(kind="domain_shift", message=message))
    return found
