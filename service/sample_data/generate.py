"""A deterministic synthetic "credit-risk" model: its training reference and its
production traffic, with or without drift.

Seven features (five numerical, two categorical), a prediction from a fixed logistic
rule, the probability of class 1 as the score, and a ground-truth label that disagrees
with the prediction on about 10% of rows (the model is good, not perfect).

`python -m service.sample_data.generate` rewrites the bundled reference CSV;
`python -m service.sample_data.generate history` rewrites the bundled history CSV (ten
days of timestamped traffic that drifts from the seventh day on, for `driftmon replay`)."""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MODEL_NAME = "credit-risk"
MODEL_VERSION = "7"
REFERENCE_CSV = Path(__file__).with_name("credit_risk_reference.csv")
HISTORY_CSV = Path(__file__).with_name("credit_risk_history.csv")
HISTORY_START = "2026-11-01T00:00:00Z"
HISTORY_DRIFTED_CHANNELS = (0.30, 0.20, 0.50)

REGIONS = ("EU", "US", "APAC", "LATAM")
CHANNELS = ("web", "branch", "partner")
FEATURES = (
    "age",
    "income",
    "debt_ratio",
    "credit_lines",
    "employment_years",
    "region",
    "channel",
)
LABEL_NOISE = 0.10


@dataclass(frozen=True)
class Population:
    """The distribution traffic is drawn from; drift is another Population."""

    income_mean: float = 52_000.0
    income_std: float = 15_000.0
    debt_ratio_beta: tuple[float, float] = (2.0, 5.0)
    region_mix: tuple[float, ...] = (0.45, 0.30, 0.15, 0.10)


TRAINING = Population()
# income up by 0.8 std, 25 points of the region mix moved from EU to APAC, and debt
# ratios higher (Beta mean 0.29 -> 0.43): three of the seven features move, the
# other four keep their training distribution
DRIFTED = Population(
    income_mean=TRAINING.income_mean + 0.8 * TRAINING.income_std,
    debt_ratio_beta=(3.0, 4.0),
    region_mix=(0.20, 0.30, 0.40, 0.10),
)

REGION_EFFECT = {"EU": -0.2, "US": 0.0, "APAC": 0.3, "LATAM": 0.5}
CHANNEL_EFFECT = {"web": 0.0, "branch": -0.3, "partner": 0.4}


def _features(rng: np.random.Generator, rows: int, population: Population) -> pd.DataFrame:
    age = np.clip(rng.normal(42, 12, rows), 18, 80).round().astype("int64")
    income = np.clip(rng.normal(population.income_mean, population.income_std, rows), 8_000, None)
    debt_ratio = rng.beta(*population.debt_ratio_beta, rows)
    credit_lines = rng.poisson(4, rows)
    # nobody has worked longer than they have been adults
    employment_years = np.minimum(rng.exponential(6, rows), age - 18).round(1)
    region = rng.choice(REGIONS, rows, p=population.region_mix)
    channel = rng.choice(CHANNELS, rows, p=(0.55, 0.25, 0.20))
    return pd.DataFrame(
        {
            "age": age,
            "income": income.round(2),
            "debt_ratio": debt_ratio.round(4),
            "credit_lines": credit_lines.astype("int64"),
            "employment_years": employment_years,
            "region": region,
            "channel": channel,
        }
    )


def default_probability(features: pd.DataFrame) -> pd.Series:
    """The model: a fixed logistic rule, so predictions are reproducible everywhere."""
    logit = (
        -1.0
        + 5.0 * (features["debt_ratio"] - 0.3)
        - 0.00004 * (features["income"] - 52_000)
        - 0.03 * (features["age"] - 42)
        + 0.15 * (features["credit_lines"] - 4)
        - 0.05 * (features["employment_years"] - 6)
        + features["region"].map(REGION_EFFECT)
        + features["channel"].map(CHANNEL_EFFECT)
    )
    probability: pd.Series = 1.0 / (1.0 + np.exp(-logit))
    return probability


def _scored(rng: np.random.Generator, features: pd.DataFrame) -> pd.DataFrame:
    score = default_probability(features)
    prediction = (score >= 0.5).astype("int64")
    flipped = rng.random(len(features)) < LABEL_NOISE
    label = np.where(flipped, 1 - prediction, prediction)
    return features.assign(prediction=prediction, score=score.round(6), label=label)


def _frame(rows: int, seed: int, population: Population) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return _scored(rng, _features(rng, rows, population))


def reference_frame(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """The training reference: features, prediction, score and label columns."""
    return _frame(rows, seed, TRAINING)


def event_id(index: int) -> str:
    return f"evt-{index:07d}"


def _production_frame(n: int, seed: int, drift: bool) -> pd.DataFrame:
    return _frame(n, seed, DRIFTED if drift else TRAINING)


def _event(row: Mapping[Hashable, Any], index: int) -> dict[str, Any]:
    features = {name: row[name] for name in FEATURES}
    features["credit_lines"] = int(features["credit_lines"])
    return {
        "event_id": event_id(index),
        "model_version": MODEL_VERSION,
        "features": features,
        "prediction": int(row["prediction"]),
        "scores": {"1": float(row["score"])},
    }


def production_events(n: int, seed: int, drift: bool, start_index: int) -> list[dict[str, Any]]:
    """n prediction logs in the API's event format, ids from start_index on. No
    timestamp: the service stamps events on arrival."""
    frame = _production_frame(n, seed, drift)
    rows = frame.to_dict(orient="records")
    return [_event(row, start_index + offset) for offset, row in enumerate(rows)]


def ground_truth(n: int, seed: int, drift: bool, start_index: int) -> list[dict[str, Any]]:
    """The labels of the events production_events(n, seed, drift, start_index) made,
    as the labels endpoint takes them."""
    labels = _production_frame(n, seed, drift)["label"].tolist()
    return [
        {"event_id": event_id(start_index + offset), "label": int(label)}
        for offset, label in enumerate(labels)
    ]


def write_reference(path: Path = REFERENCE_CSV) -> Path:
    reference_frame().to_csv(path, index=False)
    return path


def _history_day(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """One day of traffic; a drifted day also moves the channel mix towards partners, so
    that four of the seven features drift (over the default drift share of 0.5)."""
    rng = np.random.default_rng(seed)
    features = _features(rng, rows, DRIFTED if drifted else TRAINING)
    if drifted:
        features["channel"] = rng.choice(CHANNELS, rows, p=HISTORY_DRIFTED_CHANNELS)
    return _scored(rng, features)


def history_frame(
    days: int = 10, rows_per_day: int = 500, drift_from_day: int = 6, seed: int = 21
) -> pd.DataFrame:
    """Production history for replay: `rows_per_day` events a day at random times, in
    time order, from the training population until `drift_from_day` (0-based), then
    from the drifted one; a `timestamp` column (ISO 8601 UTC) first, then the
    reference's columns."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(HISTORY_START)
    days_frames = []
    for day in range(days):
        frame = _history_day(rows_per_day, seed + day, drifted=day >= drift_from_day)
        offsets = np.sort(rng.uniform(0, 86400, rows_per_day))
        times = start + pd.Timedelta(days=day) + pd.to_timedelta(offsets.round(), unit="s")
        days_frames.append(frame.assign(timestamp=times.strftime("%Y-%m-%dT%H:%M:%SZ")))
    history = pd.concat(days_frames, ignore_index=True)
    return history[["timestamp", *[c for c in history.columns if c != "timestamp"]]]


def write_history(path: Path = HISTORY_CSV) -> Path:
    history_frame().to_csv(path, index=False)
    return path


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "history":
        written = write_history(Path(sys.argv[2]) if len(sys.argv) > 2 else HISTORY_CSV)
        print(f"wrote {written} ({written.stat().st_size} bytes)")
        return 0
    path = write_reference(Path(sys.argv[1]) if len(sys.argv) > 1 else REFERENCE_CSV)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
