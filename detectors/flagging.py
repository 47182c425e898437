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
tokens, and its unseen category is said without it."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.blocks import (
    EVENT_ID,
    INGESTED_AT,
    LABEL,
    MODEL_VERSION,
    PREDICTION,
    SCORE_PREFIX,
    TIMESTAMP,
)
from core.labeling import FlaggedSample, FlagReason, Label, LabelingConfig
from core.results import ColumnQuality, RunResult
from core.schema import ModelSchema, category_text

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]
Bools = npt.NDArray[np.bool_]

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
# drift regions: reference quantile bins, and what a bin or category must gain
DENSITY_BINS = 20
MIN_GAIN = 0.01
MIN_RATIO = 1.25
BEYOND_REFERENCE = 0.75
FINDING_SEVERITY = {"info": 0.4, "warning": 0.7, "critical": 1.0}
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


@dataclass
class _Part:
    """Candidates of one reason from one source (a column, a check): window positions,
    their severity in [0, 1], and what to tell people about one of them."""

    positions: Ints
    severity: Floats
    describe: Callable[[int], str]


@dataclass
class _Selected:
    severity: float
    details: list[str] = field(default_factory=list)


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
    drawn = _random_positions(rng, size, config)
    tiebreak = rng.random(size)
    scores = _Scores.of(window)
    parts: dict[FlagReason, list[_Part]] = {
        "production_error": _production_errors(window, schema, scores),
        "drift_region": _drift_regions(window, reference, run, schema),
        "data_quality": _quality_suspects(window, reference, run, schema),
        "uncertainty": _uncertain(scores, config),
    }
    chosen: dict[int, dict[FlagReason, _Selected]] = {}
    for reason, reason_parts in parts.items():
        for position, selected in _select(reason_parts, tiebreak, config.max_per_reason).items():
            chosen.setdefault(position, {})[reason] = selected
    share = f"random draw ({config.random_share:.0%} of the window, at most {config.max_random})"
    for position in drawn.tolist():
        chosen.setdefault(position, {})["random"] = _Selected(RANDOM_SEVERITY, [share])
    return _samples(window, schema, scores, chosen)


# ------------------------------------------------------------------------ selection


def _random_positions(rng: np.random.Generator, size: int, config: LabelingConfig) -> Ints:
    count = min(config.max_random, math.floor(config.random_share * size + 0.5), size)
    return np.sort(rng.choice(size, size=count, replace=False)).astype(np.intp)


def _select(parts: list[_Part], tiebreak: Floats, cap: int) -> dict[int, _Selected]:
    """At most `cap` positions, taken from the parts (columns, checks) in turn, each
    part's most severe first: every drifted column gets its share before any gets a
    second. Each comes with its best severity and the details of every part naming it."""
    parts = [
        _Part(part.positions[part.severity > 0], part.severity[part.severity > 0], part.describe)
        for part in parts
    ]
    parts = [part for part in parts if len(part.positions)]
    if not parts or cap <= 0:
        return {}
    # a part's positions are distinct: `cap` turns of any one part fill the cap, so no
    # part is read past its `cap` first
    heads = [_head(part, tiebreak, cap) for part in parts]
    positions = np.concatenate([head for head, _ in heads])
    severity = np.concatenate([severity for _, severity in heads])
    turn = np.concatenate([np.arange(len(head)) for head, _ in heads])
    # by turn, then the most severe, then the seeded order; a position once
    ordered = positions[np.lexsort((tiebreak[positions], -severity, turn))]
    _, first = np.unique(ordered, return_index=True)
    top = ordered[np.sort(first)[:cap]]
    chosen = np.zeros(len(tiebreak), dtype=bool)
    chosen[top] = True
    selected = {int(position): _Selected(0.0) for position in top}
    for part in parts:
        hit = chosen[part.positions]
        named = zip(part.positions[hit].tolist(), part.severity[hit].tolist(), strict=True)
        for position, value in named:
            entry = selected[position]
            entry.severity = max(entry.severity, value)
            detail = part.describe(position)
            if detail not in entry.details:
                entry.details.append(detail)
    return selected


def _head(part: _Part, tiebreak: Floats, cap: int) -> tuple[Ints, Floats]:
    """The part's `cap` first candidates, in order: the most severe, ties in the seeded
    order. Linear in the part's size (a partition, then a sort of `cap` at most)."""
    keep: Ints = np.arange(len(part.positions))
    if len(keep) > cap:
        kth = np.partition(part.severity, len(keep) - cap)[len(keep) - cap]
        above = np.flatnonzero(part.severity > kth)
        ties = np.flatnonzero(part.severity == kth)
        need = cap - len(above)  # at least 1: kth is the cap-th largest
        if len(ties) > need:
            ties = ties[np.argpartition(tiebreak[part.positions[ties]], need - 1)[:need]]
        keep = np.concatenate([above, ties])
    positions, severity = part.positions[keep], part.severity[keep]
    order = np.lexsort((tiebreak[positions], -severity))
    return positions[order], severity[order]


def _samples(
    window: pd.DataFrame,
    schema: ModelSchema,
    scores: _Scores,
    chosen: dict[int, dict[FlagReason, _Selected]],
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
        by_reason = chosen[position]
        reasons = [reason for reason in REASON_ORDER if reason in by_reason]
        best = max(TIERS[r] + SEVERITY_WEIGHT * by_reason[r].severity for r in reasons)
        details = list(dict.fromkeys(d for r in reasons for d in by_reason[r].details))
        version = _plain(versions[index])
        samples.append(
            FlaggedSample(
                event_id=str(ids[index]),
                priority=round(best + EXTRA_REASON_BONUS * (len(reasons) - 1), 6),
                reasons=reasons,
                details=details,
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
                return _floats(np.nan_to_num(values, nan=0.0))
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
    value = _plain(value)
    if value is None:
        return None
    if numerical:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return category_text(value)
        return number if math.isfinite(number) else None
    return category_text(value)


def _plain(value: object) -> object:
    """A numpy scalar as Python's; NaN and None as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _label(value: object) -> Label | None:
    value = _plain(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# ------------------------------------------------------------------------ uncertainty


@dataclass(frozen=True)
class _Scores:
    """The window's class scores: one column per class (NaN: not sent)."""

    classes: tuple[str, ...]
    matrix: Floats  # rows by classes

    @classmethod
    def of(cls, window: pd.DataFrame) -> _Scores:
        columns = sorted(c for c in window.columns if str(c).startswith(SCORE_PREFIX))
        classes = tuple(str(c).removeprefix(SCORE_PREFIX) for c in columns)
        matrix = np.empty((len(window), 0))
        if columns:
            numbers = window[columns].apply(pd.to_numeric, errors="coerce")
            raw = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
            matrix = np.where(np.isfinite(raw), raw, np.nan)
        return cls(classes, matrix)

    def of_row(self, position: int) -> dict[str, float]:
        if not self.classes:
            return {}
        row = self.matrix[position].tolist()
        return {c: v for c, v in zip(self.classes, row, strict=True) if not math.isnan(v)}

    def probabilities(self) -> tuple[Floats, Bools]:
        """Rows by classes that sum to 1 (one score: p and 1 - p), and which rows had any."""
        matrix = self.matrix
        if matrix.shape[1] == 1:
            p = np.clip(matrix[:, 0], 0.0, 1.0)
            matrix = np.column_stack([p, 1.0 - p])
        known = ~np.isnan(matrix).all(axis=1)
        filled = np.clip(np.nan_to_num(matrix, nan=0.0), 0.0, None)
        total = filled.sum(axis=1)
        known &= total > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            normalised = filled / np.where(total > 0, total, 1.0)[:, None]
        return normalised, known

    def top(self) -> tuple[Floats, Floats, Bools]:
        """The top and second scores per row (raw, not normalised) and which rows had any."""
        matrix = self.matrix
        if matrix.shape[1] == 1:
            p = np.clip(matrix[:, 0], 0.0, 1.0)
            matrix = np.column_stack([p, 1.0 - p])
        known: Bools = np.asarray(~np.isnan(matrix).all(axis=1), dtype=np.bool_)
        filled = np.nan_to_num(matrix, nan=0.0)
        ordered = np.sort(filled, axis=1)
        return ordered[:, -1], ordered[:, -2], known

    def predicted(self, positions: Ints, predictions: pd.Series) -> Floats:
        """The score of the predicted class of the rows at `positions` (NaN: unknown)."""
        out = np.full(len(positions), np.nan)
        if not self.classes:
            return out
        text = _texts(predictions)
        rows = self.matrix[positions]
        for index, cls in enumerate(self.classes):
            hit = (text == cls).to_numpy(dtype=bool)
            out[hit] = rows[hit, index]
        if len(self.classes) == 1:  # one positive-class score: another class got 1 - p
            other = text.notna().to_numpy(dtype=bool) & (text != self.classes[0]).to_numpy(
                dtype=bool
            )
            out[other] = 1.0 - rows[other, 0]
        return out


def _uncertain(scores: _Scores, config: LabelingConfig) -> list[_Part]:
    if not scores.classes:
        return []
    threshold = config.uncertainty_threshold
    classes = max(2, len(scores.classes))
    if config.uncertainty == "confidence":
        top, _, known = scores.top()
        floor = 1.0 / classes
        values = top
        severity = (threshold - top) / max(threshold - floor, 1e-9)
        flagged = known & (top < threshold)

        def describe(position: int) -> str:
            return f"confidence {values[position]:.2f} < {threshold:.2f}"

    elif config.uncertainty == "margin":
        top, second, known = scores.top()
        values = top - second
        severity = (threshold - values) / threshold
        flagged = known & (values < threshold)

        def describe(position: int) -> str:
            return f"margin {values[position]:.2f} < {threshold:.2f} between the top two scores"

    else:
        probabilities, known = scores.probabilities()
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(probabilities > 0, np.log(probabilities), 0.0)
        values = -(probabilities * logs).sum(axis=1) / math.log(probabilities.shape[1])
        floor = 1.0 - threshold
        severity = (values - floor) / max(1.0 - floor, 1e-9)
        flagged = known & (values > floor)

        def describe(position: int) -> str:
            return f"normalised entropy {values[position]:.2f} > {floor:.2f}"

    positions = np.flatnonzero(flagged)
    return [_Part(positions, _unit(severity[positions]), describe)]


# ------------------------------------------------------------------- production errors


def _production_errors(window: pd.DataFrame, schema: ModelSchema, scores: _Scores) -> list[_Part]:
    if LABEL not in window or PREDICTION not in window:
        return []
    labeled = np.flatnonzero(
        window[LABEL].notna().to_numpy(dtype=bool) & window[PREDICTION].notna().to_numpy(dtype=bool)
    )
    if not len(labeled):
        return []
    truth = window[LABEL].iloc[labeled]
    predicted = window[PREDICTION].iloc[labeled]
    if schema.prediction_kind == "numerical":
        return _regression_errors(labeled, truth, predicted)
    wrong = (_texts(truth) != _texts(predicted)).to_numpy(dtype=bool)
    positions = labeled[wrong]
    confidence = scores.predicted(positions, predicted[wrong])
    severity = np.where(np.isnan(confidence), 0.5, confidence)
    known = dict(zip(positions.tolist(), confidence.tolist(), strict=True))

    def describe(position: int) -> str:
        said = (
            f"predicted {_text(window[PREDICTION].iat[position])}, "
            f"label {_text(window[LABEL].iat[position])}"
        )
        value = known.get(position, math.nan)
        return said if math.isnan(value) else f"{said}, with confidence {value:.2f}"

    return [_Part(positions, _unit(severity), describe)]


def _regression_errors(labeled: Ints, truth: pd.Series, predicted: pd.Series) -> list[_Part]:
    truth_values = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=np.float64)
    predicted_values = pd.to_numeric(predicted, errors="coerce").to_numpy(dtype=np.float64)
    error = np.abs(predicted_values - truth_values)
    finite = np.isfinite(error)
    if not finite.any():
        return []
    mae = float(error[finite].mean())
    wrong = finite & (error > 2 * mae) & (error > 0)
    positions = labeled[wrong]
    severity = 1.0 - mae / error[wrong]
    found = dict(zip(positions.tolist(), error[wrong].tolist(), strict=True))

    def describe(position: int) -> str:
        return f"error {found[position]:.4g}, over twice the window's mean {mae:.4g}"

    return [_Part(positions, _unit(severity), describe)]


# ------------------------------------------------------------------------ drift regions


def _drift_regions(
    window: pd.DataFrame, reference: pd.DataFrame, run: RunResult, schema: ModelSchema
) -> list[_Part]:
    parts: list[_Part] = []
    for name, result in sorted(run.columns.items()):
        kind = schema.features.get(name)
        if not result.drifted or kind is None or name not in window or name not in reference:
            continue
        pii = name in schema.pii
        if kind == "numerical":
            parts += _numerical_region(name, window[name], reference[name], pii)
        else:
            parts += _categorical_region(name, window[name], reference[name], pii)
    return parts


def _numbers(series: pd.Series) -> Floats:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def _numerical_region(
    name: str, current: pd.Series, reference: pd.Series, pii: bool
) -> list[_Part]:
    values = _numbers(current)
    baseline = _numbers(reference)
    baseline = np.sort(baseline[~np.isnan(baseline)])
    if not len(baseline):
        return []
    low, high = float(baseline[0]), float(baseline[-1])
    parts = [_outside(name, values, (low, high), pii, BEYOND_REFERENCE, 1.0)]
    inside = np.flatnonzero(~np.isnan(values) & (values >= low) & (values <= high))
    if not len(inside):
        return parts
    if np.count_nonzero(np.diff(baseline)) < DENSITY_BINS:  # 20 values or fewer
        keyed = pd.Series(values[inside])
        part = _gained(name, keyed, pd.Series(baseline), pii, BEYOND_REFERENCE, "value")
        part.positions = inside[part.positions]
        return [*parts, part]
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, DENSITY_BINS + 1)))
    inner = edges[1:-1]
    bins = len(inner) + 1
    window_bins = np.searchsorted(inner, values[inside], side="right")
    reference_share = _floats(
        np.bincount(np.searchsorted(inner, baseline, side="right"), minlength=bins) / len(baseline)
    )
    window_share = _floats(
        np.bincount(window_bins, minlength=bins) / np.count_nonzero(~np.isnan(values))
    )
    by_bin = _excess(window_share, reference_share)
    severity = by_bin[window_bins]
    hit = severity > 0

    def describe(position: int) -> str:
        index = int(np.searchsorted(inner, values[position], side="right"))
        shares = f"{window_share[index]:.1%} of the window vs {reference_share[index]:.1%}"
        if pii:
            return f"{name}: in a value range holding {shares} of the reference"
        span = f"[{edges[index]:.4g}, {edges[index + 1]:.4g}]"
        return f"{name} {values[position]:.4g} in {span}: {shares} of the reference"

    return [*parts, _Part(inside[hit], severity[hit], describe)]


def _outside(
    name: str, values: Floats, bounds: tuple[float, float], pii: bool, base: float, scale: float
) -> _Part:
    """Values outside the bounds; severity from base · scale (at the bound) to scale, by
    the distance in ranges."""
    low, high = bounds
    width = high - low if high > low else max(abs(high), 1.0)
    distance = np.where(values < low, low - values, np.where(values > high, values - high, 0.0))
    positions = np.flatnonzero(np.nan_to_num(distance, nan=0.0) > 0)
    far = distance[positions] / width
    severity = _floats(scale * (base + (1.0 - base) * (1.0 - np.exp(-far))))

    def describe(position: int) -> str:
        side = "below" if values[position] < low else "above"
        if pii:
            return f"{name}: a value {side} the reference range"
        return f"{name} {values[position]:.4g} {side} the reference range [{low:.4g}, {high:.4g}]"

    return _Part(positions, severity, describe)


def _categorical_region(
    name: str, current: pd.Series, reference: pd.Series, pii: bool
) -> list[_Part]:
    present = current.notna().to_numpy(dtype=bool)
    inside = np.flatnonzero(present)
    if not len(inside):
        return []
    part = _gained(
        name,
        current.iloc[inside].astype(str).reset_index(drop=True),
        reference.dropna().astype(str),
        pii,
        1.0,
        "category",
    )
    part.positions = inside[part.positions]
    return [part]


def _gained(
    name: str, current: pd.Series, reference: pd.Series, pii: bool, unseen: float, noun: str
) -> _Part:
    """Positions (in `current`) of values unseen in the reference (severity `unseen`) or
    whose share rose by at least MIN_GAIN and MIN_RATIO times (0.75 · (1 - ref/window))."""
    window_share = current.value_counts(normalize=True, dropna=True)
    reference_share = reference.value_counts(normalize=True, dropna=True)
    aligned = reference_share.reindex(window_share.index, fill_value=0.0)
    by_value = pd.Series(
        _excess(_floats(window_share.to_numpy()), _floats(aligned.to_numpy())),
        index=window_share.index,
    )
    by_value[aligned.to_numpy() == 0] = unseen
    severity = _floats(current.map(by_value).to_numpy(dtype=np.float64, na_value=0.0))
    positions = np.flatnonzero(severity > 0)
    values = current.to_numpy(dtype=object)

    def describe(position: int) -> str:
        value = values[position]
        before = float(aligned.get(value, 0.0))
        if before == 0:
            return f"{name}: unseen {noun}" if pii else f"{name}: unseen {noun} {value!r}"
        shares = f"{window_share[value]:.1%} of the window vs {before:.1%} of the reference"
        return f"{name}: a {noun} with {shares}" if pii else f"{name} {value!r}: {shares}"

    return _Part(positions, severity[positions], describe)


def _excess(window_share: Floats, reference_share: Floats) -> Floats:
    """Severity of a bin or category: 0.75 · (1 - ref/window) where the window's share is
    at least MIN_GAIN above and MIN_RATIO times the reference's, else 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(window_share > 0, reference_share / window_share, 1.0)
    rose = (window_share - reference_share >= MIN_GAIN) & (
        window_share >= MIN_RATIO * reference_share
    )
    return np.where(rose, BEYOND_REFERENCE * (1.0 - ratio), 0.0)


# ------------------------------------------------------------------ data-quality suspects


def _quality_suspects(
    window: pd.DataFrame, reference: pd.DataFrame, run: RunResult, schema: ModelSchema
) -> list[_Part]:
    quality = run.data_quality
    if quality is None:
        return []
    parts: list[_Part] = []
    for finding in quality.findings:
        name = finding.column
        stats = quality.columns.get(name)
        if name not in window or name not in schema.features or stats is None:
            continue
        base = FINDING_SEVERITY[finding.severity]
        pii = name in schema.pii
        if finding.check == "missing_values":
            parts.append(_missing(name, window[name], stats, base))
        elif finding.check == "out_of_range" and stats.reference_range is not None:
            values = _numbers(window[name])
            parts.append(_outside(name, values, stats.reference_range, pii, 0.75, base))
        elif finding.check == "unseen_categories" and name in reference:
            parts.append(_unseen(name, window[name], reference[name], pii, base))
    return parts


def _missing(name: str, current: pd.Series, stats: ColumnQuality, base: float) -> _Part:
    positions = np.flatnonzero(current.isna().to_numpy(dtype=bool))
    had_none = stats.reference_missing_share == 0
    severity = np.full(len(positions), base if had_none else 0.8 * base)
    before = (
        "the reference had none"
        if had_none
        else f"{stats.reference_missing_share:.1%} of the reference"
    )
    detail = f"{name} missing ({stats.missing_share:.1%} of the window; {before})"

    def describe(position: int) -> str:
        return detail

    return _Part(positions, severity, describe)


def _unseen(name: str, current: pd.Series, reference: pd.Series, pii: bool, base: float) -> _Part:
    known = pd.unique(reference.dropna().astype(str))
    present = current.notna().to_numpy(dtype=bool)
    text = current.astype(str)
    unseen = present & ~text.isin(known).to_numpy(dtype=bool)
    positions = np.flatnonzero(unseen)
    values = current.to_numpy(dtype=object)

    def describe(position: int) -> str:
        value = str(values[position])
        return f"{name}: unseen category" if pii else f"{name}: unseen category {value!r}"

    return _Part(positions, np.full(len(positions), base), describe)


# ------------------------------------------------------------------------------ helpers


def _texts(series: pd.Series) -> pd.Series:
    """Labels and predictions as comparable text: an integral float loses its ".0" (1.0
    and 1 and "1" are one class), missing stays missing."""
    text = series.astype(object).where(series.notna(), None)
    out = text.astype(str).str.replace(r"^(-?\d+)\.0$", r"\1", regex=True)
    return out.where(series.notna().to_numpy(dtype=bool), None)


def _text(value: object) -> str:
    plain = _plain(value)
    return "none" if plain is None else category_text(plain)


def _floats(values: object) -> Floats:
    return np.asarray(values, dtype=np.float64)


def _unit(values: Floats | Sequence[float]) -> Floats:
    return np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0), 0.0, 1.0)
