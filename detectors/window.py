"""Window assembly: the stored event frame renamed to the reference's column names."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from core.blocks import INGESTED_AT, LABEL, PREDICTION, SCORE_PREFIX
from core.results import WindowInfo
from core.schema import ModelSchema


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat().replace("+00:00", "Z")


def as_reference_columns(window: pd.DataFrame, schema: ModelSchema) -> pd.DataFrame:
    """The window with prediction, score and label columns named as in the reference."""
    renames: dict[str, str] = {PREDICTION: schema.prediction_column, LABEL: schema.label_column}
    for cls, column in schema.scores.items():
        renames[SCORE_PREFIX + cls] = column
    return window.rename(columns=renames)


def window_info(window: pd.DataFrame) -> WindowInfo:
    if window.empty:
        return WindowInfo(events=0)
    ingested = window[INGESTED_AT]
    return WindowInfo(
        start=iso(float(ingested.min())), end=iso(float(ingested.max())), events=len(window)
    )
