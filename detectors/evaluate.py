"""One detection run's computation: pure, picklable, run in a worker process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from detectors.drift import ColumnSpec, detect_drift, drifted_share
from detectors.result import ColumnResult
from detectors.window import as_reference_columns
from service.config import EffectiveModelConfig
from service.schema import ModelSchema


@dataclass
class Evaluation:
    status: str
    columns: dict[str, ColumnResult] = field(default_factory=dict)
    dataset_drift: bool | None = None
    drifted_share: float | None = None
    prediction: dict[str, Any] = field(default_factory=dict)


def column_specs(schema: ModelSchema, config: EffectiveModelConfig) -> list[ColumnSpec]:
    specs = []
    for name in sorted(schema.features):
        own = config.columns.get(name)
        specs.append(
            ColumnSpec(
                name=name,
                kind=schema.features[name],
                method=(own.method if own and own.method else None) or config.drift_method,
                threshold=(own.threshold if own and own.threshold is not None else None)
                or config.drift_threshold,
            )
        )
    return specs


def evaluate(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    schema: ModelSchema,
    config: EffectiveModelConfig,
) -> Evaluation:
    if len(window) < config.min_window_events:
        return Evaluation(status="insufficient_data")
    current = as_reference_columns(window, schema)
    columns = detect_drift(reference, current, column_specs(schema, config))
    share = drifted_share(columns)
    prediction: dict[str, Any] = {}
    if schema.prediction and schema.prediction_kind:
        target = ColumnSpec(schema.prediction, schema.prediction_kind)
        prediction = detect_drift(reference, current, [target])[schema.prediction].model_dump()
    return Evaluation(
        status="ok",
        columns=columns,
        dataset_drift=None if share is None else share >= config.drift_share,
        drifted_share=share,
        prediction=prediction,
    )
