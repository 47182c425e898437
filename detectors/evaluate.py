"""One detection run's computation: pure and picklable, run in a worker process.

The reference arrives as Parquet bytes with its version; each worker decodes, samples
and profiles a version once and keeps it (a per-process cache is the point of a worker).
The samples worth a label are flagged in the same call, from the same decoded window."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import pandas as pd

from core.blocks import EVENT_ID, LABEL, decode_window
from core.config import EffectiveModelConfig
from core.labeling import FlaggedSample, LabelingConfig
from core.redis_types import StreamEntry
from core.results import MeanConfidence, PredictionSection, RunResult
from core.schema import ModelSchema
from detectors.drift import ColumnSpec, DriftPolicy, detect_drift, drifted_share
from detectors.flagging import flag_samples, run_seed
from detectors.multivariate import domain_classifier
from detectors.performance import confidence, performance
from detectors.quality import IntakeRejects, ReferenceProfile, data_quality, profile_reference
from detectors.reference import from_parquet
from detectors.versions import compare_versions
from detectors.window import as_reference_columns, window_info

log = logging.getLogger(__name__)

VIEW_CACHE_SIZE = 4


@dataclass(frozen=True)
class ReferencePayload:
    version: str
    parquet: bytes


@dataclass
class ReferenceView:
    frame: pd.DataFrame
    profile: ReferenceProfile


class ReferenceViews:
    """Decoded, sampled and profiled references by (version, row cap)."""

    def __init__(self, size: int = VIEW_CACHE_SIZE) -> None:
        self._size = size
        self._views: OrderedDict[tuple[str, int], ReferenceView] = OrderedDict()

    def get(self, payload: ReferencePayload, schema: ModelSchema, max_rows: int) -> ReferenceView:
        key = (payload.version, max_rows)
        if key not in self._views:
            frame = sample_reference(from_parquet(payload.parquet), max_rows, payload.version)
            self._views[key] = ReferenceView(frame, profile_reference(frame, schema))
            if len(self._views) > self._size:
                self._views.popitem(last=False)
        self._views.move_to_end(key)
        return self._views[key]


# one per worker process: workers outlive runs, and a reference is immutable by version
PROCESS_VIEWS = ReferenceViews()


def sample_reference(frame: pd.DataFrame, max_rows: int, version: str) -> pd.DataFrame:
    """At most max_rows rows, the same ones for the same version on every replica."""
    if len(frame) <= max_rows:
        return frame
    seed = int(version.rsplit(":", 1)[-1][:8], 16)
    return frame.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)


def column_specs(schema: ModelSchema, config: EffectiveModelConfig) -> list[ColumnSpec]:
    specs = []
    for name in sorted(schema.features):
        own = config.columns.get(name)
        method = own.method if own is not None and own.method else config.drift_method
        threshold = (
            own.threshold
            if own is not None and own.threshold is not None
            else config.drift_threshold
        )
        specs.append(ColumnSpec(name, schema.features[name], method, threshold))
    return specs


def drift_policy(config: EffectiveModelConfig) -> DriftPolicy:
    return DriftPolicy(
        default_methods=config.drift_method_policy,
        effect_size_floor=config.effect_size_floor,
        min_column_events=config.min_window_events,
    )


def _prediction_section(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    window: pd.DataFrame,
    schema: ModelSchema,
    policy: DriftPolicy,
    max_versions: int,
) -> PredictionSection:
    section = PredictionSection()
    if schema.prediction and schema.prediction_kind:
        spec = ColumnSpec(schema.prediction, schema.prediction_kind)
        section.drift = detect_drift(reference, current, [spec], policy)[spec.name]
    reference_confidence = confidence(reference, schema)
    window_confidence = confidence(current, schema)
    if reference_confidence is not None and window_confidence is not None:
        frames = (
            pd.DataFrame({"confidence": reference_confidence}),
            pd.DataFrame({"confidence": window_confidence}),
        )
        spec = ColumnSpec("confidence", "numerical")
        section.confidence = detect_drift(*frames, [spec], policy)["confidence"]
        section.mean_confidence = MeanConfidence(
            reference=float(reference_confidence.mean()),
            window=float(window_confidence.mean()),
        )
    section.versions = compare_versions(
        as_reference_columns(window, schema), schema, policy, max_versions
    )
    return section


def evaluate(
    run: RunResult,
    payload: ReferencePayload,
    window: pd.DataFrame,
    schema: ModelSchema,
    config: EffectiveModelConfig,
    rejects: IntakeRejects,
    origins: pd.Series | None = None,
) -> RunResult:
    """The run with its verdicts filled in: status, column drift and the sections.
    `origins`: the queue origin of the window's labels (see queue_origins)."""
    run = run.model_copy()
    if len(window) < config.min_window_events:
        run.status = "insufficient_data"
        return run
    view = PROCESS_VIEWS.get(payload, schema, config.reference_max_rows)
    reference = view.frame
    current = as_reference_columns(window, schema)
    policy = drift_policy(config)
    run.status = "ok"
    run.columns = detect_drift(reference, current, column_specs(schema, config), policy)
    run.drifted_share = drifted_share(run.columns)
    run.dataset_drift = (
        None if run.drifted_share is None else run.drifted_share >= config.drift_share
    )
    run.prediction = _prediction_section(
        reference, current, window, schema, policy, config.max_model_versions
    )
    run.data_quality = data_quality(
        current, schema, view.profile, rejects, config.max_findings_per_check
    )
    run.performance = performance(
        reference, current, schema, config.min_labeled_events, policy, origins
    )
    if config.multivariate_enabled:
        run.multivariate = domain_classifier(
            reference, current, schema, config.multivariate_sample, config.multivariate_threshold
        )
    return run


def with_labels(window: pd.DataFrame, labels: dict[str, object]) -> pd.DataFrame:
    """Ground truth that came later by event id fills the window's label column; a label
    sent with the event itself wins."""
    if labels and len(window):
        late = window[EVENT_ID].map(labels)
        window[LABEL] = window[LABEL].where(window[LABEL].notna(), late).astype(object)
    return window


def queue_origins(window: pd.DataFrame, origins: dict[str, bool] | None) -> pd.Series | None:
    """Per window row, whether the late label it is about to get came from the labeling
    queue: True through its random share, False its other picks, NaN otherwise (no
    queue label, or the event's own label, which wins the join). Read before
    with_labels fills the label column."""
    if not origins or not len(window):
        return None
    from_queue: pd.Series = window[EVENT_ID].map(origins).where(window[LABEL].isna())
    return from_queue


@dataclass(frozen=True)
class Evaluated:
    """A run's verdicts and the window samples it flagged for labeling."""

    run: RunResult
    flagged: list[FlaggedSample] = field(default_factory=list)


def evaluate_and_flag(
    run: RunResult,
    payload: ReferencePayload,
    blocks: list[StreamEntry],
    labels: dict[str, object],
    schema: ModelSchema,
    config: EffectiveModelConfig,
    rejects: IntakeRejects,
    labeling: LabelingConfig | None = None,
    label_origins: dict[str, bool] | None = None,
) -> Evaluated:
    """A whole run's CPU in the worker: decode the stream blocks, join late labels,
    evaluate, then flag samples from the same window (an ok run of a model whose
    labeling is on); the run comes back with its window and verdicts. The server
    process only moves bytes. `label_origins`: the queue origin of `labels`, by event
    id (LabelStore.window_labels)."""
    decoded = decode_window(blocks, config.window_max_events)
    origins = queue_origins(decoded, label_origins)
    window = with_labels(decoded, labels)
    evaluated = evaluate(run, payload, window, schema, config, rejects, origins)
    evaluated.window = window_info(window)
    flagged: list[FlaggedSample] = []
    if labeling is not None and labeling.enabled and evaluated.status == "ok":
        try:
            # the view evaluate used: cached in this worker
            reference = PROCESS_VIEWS.get(payload, schema, config.reference_max_rows).frame
            seed = run_seed(evaluated.run_id)
            flagged = flag_samples(window, reference, evaluated, schema, labeling, seed)
        except Exception:  # flagging never costs the run its verdicts
            log.exception("flagging samples of run %s of %s failed", run.run_id, run.model)
    return Evaluated(evaluated, flagged)


def evaluate_blocks(
    run: RunResult,
    payload: ReferencePayload,
    blocks: list[StreamEntry],
    labels: dict[str, object],
    schema: ModelSchema,
    config: EffectiveModelConfig,
    rejects: IntakeRejects,
) -> RunResult:
    """evaluate_and_flag's run, without flagging (benchmarks and callers that only
    want the verdicts)."""
    return evaluate_and_flag(run, payload, blocks, labels, schema, config, rejects).run
