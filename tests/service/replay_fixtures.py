"""Seeded reference and history frames for the replay tests, and the history's rows as
the events API takes them (built here independently of replay's own conversion)."""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import ModelConfig
from detectors.reference import ReferenceRoles
from service.config import Settings
from service.replay import Replay, ReplayChunk, plan_replay
from service.replay_chunks import ChunkPlan
from service.replay_input import model_setup, prepare_input

ROLES = ReferenceRoles(prediction="prediction", scores="score", label="label")
UPLOAD_QUERY = {"prediction": "prediction", "scores": "score", "label": "label"}
REGIONS = ["EU", "US", "APAC"]


def credit_rows(rows: int, seed: int, age_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + age_shift, 10, rows).round()
    score = 1 / (1 + np.exp(-(age - 40) / 10))
    prediction = (score > 0.5).astype(int)
    wrong = rng.random(rows) < 0.1
    return pd.DataFrame(
        {
            "age": age,
            "income": rng.normal(50_000, 10_000, rows).round(2),
            "region": rng.choice(REGIONS, rows, p=[0.5, 0.3, 0.2]),
            "prediction": prediction,
            "score": score.round(6),
            "label": np.where(wrong, 1 - prediction, prediction),
        }
    )


def history(
    segments: Sequence[tuple[int, float]], start: pd.Timestamp | None, spacing: pd.Timedelta
) -> pd.DataFrame:
    """Segments of (rows, age shift) one after another; with `start`, a `timestamp`
    column of ISO 8601 times `spacing` apart."""
    parts = [credit_rows(rows, 100 + index, shift) for index, (rows, shift) in enumerate(segments)]
    frame = pd.concat(parts, ignore_index=True)
    if start is not None:
        frame.insert(0, "timestamp", iso_times(start, spacing, len(frame)))
    return frame


def iso_times(start: pd.Timestamp, spacing: pd.Timedelta, count: int) -> list[str]:
    times = pd.date_range(start, periods=count, freq=spacing)
    return [time.strftime("%Y-%m-%dT%H:%M:%SZ") for time in times]


def api_event(row: dict[Hashable, Any], index: object) -> dict[str, Any]:
    """One history row as a producer would post it to /v1/models/{model}/events."""
    features: dict[str, Any] = {
        "age": None if pd.isna(row["age"]) else float(row["age"]),
        "income": None if pd.isna(row["income"]) else float(row["income"]),
        "region": row["region"],
    }
    return {
        "event_id": f"row-{index}",
        "timestamp": row["timestamp"],
        "features": features,
        "prediction": int(row["prediction"]),
        "scores": {"1": float(row["score"])},
        "label": int(row["label"]),
    }


def write_models_file(path: Path, models: Sequence[ModelConfig]) -> Path:
    dumped = [model.model_dump(mode="json", exclude_none=True) for model in models]
    path.write_text(json.dumps({"models": dumped}))  # JSON is YAML
    return path


def run_replay(
    settings: Settings,
    reference: Path,
    data: Path,
    plan: ChunkPlan,
    name: str = "credit",
    models_file: Path | None = None,
) -> list[ReplayChunk]:
    model = model_setup(settings, models_file, name)
    replay: Replay = plan_replay(model, prepare_input(reference, data, ROLES, model, None), plan)
    return list(replay.runs())
