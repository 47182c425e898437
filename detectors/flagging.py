"""Which window samples are worth a label: pure and vectorised, run in the worker on the
window the run already decoded (never read again from Redis).

Five reasons, each a ranked list of candidates capped per run:

- **uncertainty** (`LabelingConfig.uncertainty`), from the event's class scores:
  - `confidence`: the top score below the threshold. The method for **binary** models:
    with one positive-class score p the top score is max(p, 1 - p), and margin (2·top - 1)
    and entropy rank the samples exactly as it does, so the plainest threshold wins.
  - `margin`: the top score minus the second below the threshold. For **multiclass**
    models whose doubt is between two classes (the usual case: the label people must
    choose is one of the two).
  - `entropy`: the entropy of the normalised score vector, over log(classes), above
    1 - threshold. For **multiclass** models with many classes, where doubt spread over
    several of them is what matters.
  Severity: how far past the threshold, towards total doubt (1/classes, 0 or 1).
- **drift_region**, for each column the run found drifted:
  - numerical: values outside the reference's range (severity 0.75 to 1 by the distance,
    in reference ranges), then the values in the bins (20 reference quantiles; each
    value when the reference holds 20 or fewer) whose window share exceeds the
    reference's by at least a point and a quarter (severity 0.75 · (1 - ref/window)),
  - categorical: unseen categories (severity 1), then the categories whose share rose
    the same way (0.75 · (1 - ref/window)).
- **production_error**, once ground truth came: the wrong predictions, confidently wrong
  first (severity: the score of the predicted class, 0.5 without scores); for regression,
  errors beyond twice the window's mean absolute error (severity 1 - mae/error).
- **data_quality**: the samples carrying what a finding names: missing values of a
  `missing_values` column (all the more when the reference had none), values outside the
  range of an `out_of_range` column, unseen categories of an `unseen_categories` one.
  Severity: the finding's (info 0.4, warning 0.7, critical 1), scaled by the distance
  for out-of-range values.
- **random**: `random_share` of the window (at most `max_random`), drawn with the seed
  (the run id's hash: `run_seed`), so the labeled set also gives unbiased estimates.

Each reason keeps `max_per_reason` candidates (random: `max_random`), taken from its
sources (drifted columns, findings) in turn, each source's most severe first, ties in a
seeded random order: every drifted column is represented before any gets a second. A
sample is flagged once, with every reason that selected it, their details, and

    priority = max over its reasons of (tier + 0.8 · severity) + 0.05 · (reasons - 1)

with tiers production_error 3, drift_region and data_quality 2, uncertainty 1, random 0
(random's severity is 0.125: alone it gives 0.1, lowest but not zero).

Details never quote the values of PII columns (`schema.pii`): a hashed column's values are
tokens, and its unseen category is said without it.

The reasons live in detectors/flag_uncertainty.py, flag_drift.py, flag_errors.py and
flag_quality.py, the capping in flag_selection.py; this module merges them."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.blocks import EVENT_ID, INGESTED_AT, LABEL, MODEL_VERSION, PREDICTION, TIMESTAMP
from core.labeling import FlaggedSample, FlagReason, Label, LabelingConfig
from core.results import RunResult
from core.schema import ModelSchema, category_text
from detectors.flag_candidates import Candidates, Floats, Ints, floats, plain
from detectors.flag_drift import drift_regions
from detectors.flag_errors import production_errors
from detectors.flag_quality import quality_suspects
from detectors.flag_scores import ClassScores
from detectors.flag_selection import Selected, select_in_turns
from detectors.flag_uncertainty import uncertain_samples

TIERS: dict[FlagReason, float] = {
    "production_error": 3.0,
    "drift_region": 2.0,
    "data_quality": 2.0,
    "uncertainty": 1.0,
    "random": 0.0,
}
SEVERITY_WEIGHT = 0.8
EXTRA_REASON_BONUS = 0.05
RANDOM_SEVERITY = 0.125
REASON_ORDER: tuple[FlagReason, ...] = (
    "production_error",
    "drift_region",
    "data_quality",
    "uncertainty",
    "random",
)


def run_seed(run_id: str) -> int:
    """A seed from the run id, the same in every process (str hashes are salted)."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big")


def flag_samples(
    window: pd.DataFrame,
    reference: pd.DataFrame,
    run: RunResult,
    schema: ModelSchema,
    config: LabelingConfig,
    seed: int,
) -> list[FlaggedSample]:
    """The window's samples worth a label, highest priority first (see the module)."""
    if run.status != "ok" or not config.enabled or window.empty:
        return []
    rng = np.random.default_rng(seed)
    size = len(window)
    # drawn before the tiebreak: the same seed gives the same random share as ever
    drawn = _random_positions(rng, size, config)
    tiebreak = rng.random(size)
    scores = ClassScores.of(window)
    parts: dict[FlagReason, list[Candidates]] = {
        "production_error": production_errors(window, schema, scores),
        "drift_region": drift_regions(window, reference, run, schema),
        "data_quality": quality_suspects(window, reference, run, schema),
        "uncertainty": uncertain_samples(scores, config),
    }
    chosen: dict[int, dict[FlagReason, Selected]] = {}
    for reason, reason_parts in parts.items():
        selected = select_in_turns(reason_parts, tiebreak, config.max_per_reason)
        for position, entry in selected.items():
            chosen.setdefault(position, {})[reason] = entry
    share = f"random draw ({config.random_share:.0%} of the window, at most {config.max_random})"
    for position in drawn.tolist():
        chosen.setdefault(position, {})["random"] = Selected(RANDOM_SEVERITY, [share])
    return _samples(window, schema, scores, chosen)


def _random_positions(rng: np.random.Generator, size: int, config: LabelingConfig) -> Ints:
    count = min(config.max_random, math.floor(config.random_share * size + 0.5), size)
    return np.sort(rng.choice(size, size=count, replace=False)).astype(np.intp)


# ------------------------------------------------------------------------ samples


@dataclass(frozen=True)
class _Merged:
    """A position's reasons (in REASON_ORDER), its priority and every detail, once."""

    reasons: list[FlagReason]
    priority: float
    details: list[str]

    @classmethod
    def of(cls, by_reason: dict[FlagReason, Selected]) -> _Merged:
        reasons = [reason for reason in REASON_ORDER if reason in by_reason]
        best = max(TIERS[r] + SEVERITY_WEIGHT * by_reason[r].severity for r in reasons)
        details = list(dict.fromkeys(d for r in reasons for d in by_reason[r].details))
        priority = round(best + EXTRA_REASON_BONUS * (len(reasons) - 1), 6)
        return cls(reasons, priority, details)


def _samples(
    window: pd.DataFrame,
    schema: ModelSchema,
    scores: ClassScores,
    chosen: dict[int, dict[FlagReason, Selected]],
) -> list[FlaggedSample]:
    if not chosen:
        return []
    positions = sorted(chosen)
    rows = window.iloc[positions]
    features = _features(rows, schema)
    ids = rows[EVENT_ID].to_numpy()
    times = _timestamps(rows)
    versions = rows[MODEL_VERSION].to_numpy() if MODEL_VERSION in rows else [None] * len(rows)
    predictions = rows[PREDICTION].to_numpy() if PREDICTION in rows else [None] * len(rows)
    labels = rows[LABEL].to_numpy() if LABEL in rows else [None] * len(rows)
    samples = []
    for index, position in enumerate(positions):
        merged = _Merged.of(chosen[position])
        version = plain(versions[index])
        samples.append(
            FlaggedSample(
                event_id=str(ids[index]),
                priority=merged.priority,
                reasons=merged.reasons,
                details=merged.details,
                timestamp=float(times[index]),
                model_version=None if version is None else str(version),
                features=features[index],
                prediction=_label(predictions[index]),
                scores=scores.of_row(position),
                label=_label(labels[index]),
            )
        )
    samples.sort(key=lambda sample: (-sample.priority, sample.event_id))
    return samples


def _timestamps(rows: pd.DataFrame) -> Floats:
    for column in (TIMESTAMP, INGESTED_AT):
        if column in rows:
            values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)
            if not np.isnan(values).all():
                return floats(np.nan_to_num(values, nan=0.0))
    return np.zeros(len(rows))


def _features(rows: pd.DataFrame, schema: ModelSchema) -> list[dict[str, float | str | None]]:
    out: list[dict[str, float | str | None]] = [{} for _ in range(len(rows))]
    for name, kind in sorted(schema.features.items()):
        if name not in rows:
            continue
        values = rows[name].to_numpy(dtype=object)
        for index, value in enumerate(values):
            out[index][name] = _feature(value, kind == "numerical")
    return out


def _feature(value: object, numerical: bool) -> float | str | None:
    value = plain(value)
    if value is None:
        return None
    if numerical:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return category_text(value)
        return number if math.isfinite(number) else None
    return category_text(value)


def _label(value: object) -> Label | None:
    value = plain(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
