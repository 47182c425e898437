"""Dataset audit: small, targeted checks of a training set before anyone trusts it.
Pure functions over DataFrames; the result types are in core/dataset_audit.py.

- rows, missing share and distinct values per column; constant columns (the same value,
  or nothing, in every row); high-cardinality categoricals (at least `high_cardinality_count`
  distinct values, or more than `high_cardinality_ratio` of the present values distinct
  with at least MIN_ID_LIKE of them: id-like);
- exact and near duplicate rows (audit_duplicates.py);
- with a label: its class balance, label conflicts (identical features, different
  labels) and leakage suspects (audit_leakage.py); class balance and conflicts apply
  to a class label, not to a regression target (audit_labels.py says which it is);
- with another file: every shared column's drift by the service's own column methods
  (drift.py) and the domain classifier's AUC (multivariate.py)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import pandas as pd
from threadpoolctl import threadpool_limits

from core.dataset_audit import (
    AuditKind,
    AuditThresholds,
    ClassBalance,
    ColumnProfile,
    Comparison,
    DatasetAudit,
    Duplicates,
    LabelConflicts,
    LabelTask,
    LeakageScore,
)
from core.results import Multivariate
from core.schema import ColumnKind, ModelSchema
from detectors.audit_duplicates import (
    Hashes,
    column_hashes,
    combine,
    find_duplicates,
    label_conflicts,
)
from detectors.audit_labels import class_texts, label_task
from detectors.audit_leakage import label_target, leakage_scores
from detectors.drift import ColumnSpec, detect_drift
from detectors.multivariate import domain_classifier

MIN_ID_LIKE = 20
MAX_CLASSES_LISTED = 50


class AuditInputError(ValueError):
    """The audit cannot run as asked; `field` names the argument at fault."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def audit_kind(series: pd.Series) -> AuditKind:
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return "numerical"
    return "categorical"


def _as_key(value: object) -> object:
    return value if isinstance(value, Hashable) else repr(value)


def hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with unhashable cells (lists and dicts of nested JSON, arrays from
    Parquet) replaced by their text, which every check can compare and count."""
    replaced = {}
    for name in frame.columns:
        if frame[name].dtype == object:
            try:
                pd.factorize(frame[name])
            except TypeError:
                replaced[name] = frame[name].map(_as_key)
    if not replaced:
        return frame
    fixed = frame.copy(deep=False)  # the caller's frame is left as it was
    for name, series in replaced.items():
        fixed[name] = series
    return fixed


def profile(series: pd.Series, kind: AuditKind, thresholds: AuditThresholds) -> ColumnProfile:
    rows = len(series)
    missing = int(series.isna().sum())
    distinct = int(series.nunique(dropna=True))
    present = rows - missing
    id_like = (
        kind == "categorical"
        and distinct >= MIN_ID_LIKE
        and distinct > thresholds.high_cardinality_ratio * present
    )
    return ColumnProfile(
        name=str(series.name),
        dtype=str(series.dtype),
        kind=kind,
        missing_share=missing / rows if rows else 0.0,
        distinct=distinct,
        constant=rows >= 2 and distinct + (1 if missing > 0 else 0) <= 1,
        high_cardinality=kind == "categorical"
        and (distinct >= thresholds.high_cardinality_count or id_like),
        id_like=id_like,
    )


def class_balance(label: pd.Series) -> ClassBalance:
    counts = class_texts(label).value_counts()
    present = int(counts.sum())
    listed = counts.iloc[:MAX_CLASSES_LISTED]
    return ClassBalance(
        counts={str(name): int(count) for name, count in listed.items()},
        other_classes=len(counts) - len(listed),
        missing=len(label) - present,
        minority_share=float(counts.iloc[-1]) / present if present else None,
        majority_share=float(counts.iloc[0]) / present if present else None,
    )


def _empty_in_either(name: str, frame: pd.DataFrame, other: pd.DataFrame) -> bool:
    return bool(frame[name].isna().all() or other[name].isna().all())


def _domain(
    frame: pd.DataFrame,
    other: pd.DataFrame,
    features: dict[str, ColumnKind],
    thresholds: AuditThresholds,
) -> Multivariate:
    if not features:
        return Multivariate(status="insufficient_data", sample_size=0)
    schema = ModelSchema(features=features)
    sample, line = thresholds.domain_sample, thresholds.domain_auc
    # a few thousand rows: OpenMP threads cost more than they save, and on a busy
    # two-core machine their spin-waits took 25 s against 1 s on one thread
    with threadpool_limits(limits=1):
        return domain_classifier(frame, other, schema, sample=sample, threshold=line)


def compare_files(
    frame: pd.DataFrame,
    other: pd.DataFrame,
    profiles: dict[str, ColumnProfile],
    label: str | None,
    thresholds: AuditThresholds,
) -> Comparison:
    """Drift of every shared column, and whether a classifier tells the files apart on
    the features (label aside). Datetimes and id-like columns are not compared: their
    values never recur, so any two files differ in them. The classifier also leaves out
    columns empty in either file: their drift is the column check's to report (and the
    classifier's binning fails on them)."""
    shared = [name for name in frame.columns if name in other.columns]
    kinds: dict[str, ColumnKind] = {}
    for name in shared:
        kind = profiles[name].kind
        if kind != "datetime" and not profiles[name].id_like:
            kinds[name] = kind
    columns = detect_drift(frame, other, [ColumnSpec(name, kind) for name, kind in kinds.items()])
    inputs = [name for name in kinds if name != label]
    empty = [name for name in inputs if _empty_in_either(name, frame, other)]
    features = {name: kinds[name] for name in inputs if name not in empty}
    return Comparison(
        other_rows=len(other),
        columns=columns,
        drifted=[name for name, result in columns.items() if result.drifted],
        only_in_file=[name for name in frame.columns if name not in other.columns],
        only_in_other=[name for name in other.columns if name not in frame.columns],
        not_compared=[name for name in shared if name not in kinds],
        domain=_domain(frame, other, features, thresholds),
        domain_excluded=empty,
    )


@dataclass(frozen=True)
class LabelSections:
    task: LabelTask | None = None
    balance: ClassBalance | None = None
    leakage: list[LeakageScore] = field(default_factory=list)
    conflicts: LabelConflicts | None = None
    scored_rows: int = 0


def label_sections(
    frame: pd.DataFrame,
    label: str,
    profiles: dict[str, ColumnProfile],
    hashes: dict[str, Hashes],
    thresholds: AuditThresholds,
) -> LabelSections:
    """What the label adds: leakage scores always; class balance and conflicts when it
    is a class. `hashes`: each column's exact row hashes."""
    features = frame.drop(columns=[label])
    task = label_task(frame[label])
    target = label_target(frame[label], task, thresholds.sample_rows)
    kinds = {name: profiles[name].kind for name in features.columns}
    leakage = leakage_scores(features, kinds, target, thresholds)
    if task == "regression":
        return LabelSections(task, None, leakage, None, len(target.rows))
    balance = class_balance(frame[label])
    conflicts = None
    if len(features.columns):
        keys = combine([hashes[name] for name in features.columns], len(frame))
        conflicts = label_conflicts(keys, frame[label])
    return LabelSections(task, balance, leakage, conflicts, len(target.rows))


def _profiles(
    frame: pd.DataFrame, kinds: dict[str, ColumnKind], thresholds: AuditThresholds
) -> dict[str, ColumnProfile]:
    return {
        str(name): profile(frame[name], kinds.get(name) or audit_kind(frame[name]), thresholds)
        for name in frame.columns
    }


def _duplicates(hashes: dict[str, tuple[Hashes, Hashes]], rows: int) -> Duplicates:
    exact = combine([pair[0] for pair in hashes.values()], rows)
    return find_duplicates(exact, combine([pair[1] for pair in hashes.values()], rows))


def audit_dataset(
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    kinds: dict[str, ColumnKind] | None = None,
    ignore: Iterable[str] = (),
    thresholds: AuditThresholds | None = None,
    other: pd.DataFrame | None = None,
) -> DatasetAudit:
    """The audit of `frame`; `kinds` overrides the kinds inferred from dtypes (the
    model's schema does for a reference), `ignore` leaves columns out of every check
    (ids, model outputs)."""
    limits = thresholds or AuditThresholds()
    ignored = set(ignore)
    if label is not None and (label not in frame.columns or label in ignored):
        raise AuditInputError("label", f"column {label!r} is not in the file, or is ignored")
    frame = hashable(frame.drop(columns=[name for name in frame.columns if name in ignored]))
    profiles = _profiles(frame, kinds or {}, limits)
    hashes = {str(name): column_hashes(frame[name], limits.near_digits) for name in frame}
    sections = LabelSections()
    if label is not None:
        exact = {name: pair[0] for name, pair in hashes.items()}
        sections = label_sections(frame, label, profiles, exact, limits)
    comparison = None
    if other is not None:
        other = hashable(other.drop(columns=[name for name in other.columns if name in ignored]))
        comparison = compare_files(frame, other, profiles, label, limits)
    return DatasetAudit(
        rows=len(frame),
        label=label,
        label_task=sections.task,
        thresholds=limits,
        scored_rows=sections.scored_rows,
        columns=list(profiles.values()),
        duplicates=_duplicates(hashes, len(frame)),
        class_balance=sections.balance,
        leakage=sections.leakage,
        label_conflicts=sections.conflicts,
        comparison=comparison,
    )


def audit_reference(
    frame: pd.DataFrame, schema: ModelSchema, thresholds: AuditThresholds | None = None
) -> DatasetAudit:
    """A prepared reference's audit: its features and label, with the schema's kinds;
    the prediction, scores and event id are model outputs and keys, not data to audit."""
    outputs = [schema.prediction, schema.event_id, *schema.scores.values()]
    return audit_dataset(
        frame,
        label=schema.label,
        kinds=dict(schema.features),
        ignore=[name for name in outputs if name is not None],
        thresholds=thresholds,
    )
