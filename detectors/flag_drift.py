"""The drift-region reason: for each column the run found drifted, the samples in the
part of its distribution that grew (values outside the reference's range, bins or
categories whose share rose, unseen categories). PII columns' values are never quoted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.results import RunResult
from core.schema import ModelSchema
from detectors.flag_candidates import Candidates, Floats, Ints, floats, numbers

# reference quantile bins, and what a bin or category must gain
DENSITY_BINS = 20
MIN_GAIN = 0.01
MIN_RATIO = 1.25
BEYOND_REFERENCE = 0.75


def drift_regions(
    window: pd.DataFrame, reference: pd.DataFrame, run: RunResult, schema: ModelSchema
) -> list[Candidates]:
    parts: list[Candidates] = []
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


def outside_range(
    name: str, values: Floats, bounds: tuple[float, float], pii: bool, base: float, scale: float
) -> Candidates:
    """Values outside the bounds; severity from base · scale (at the bound) to scale, by
    the distance in ranges."""
    low, high = bounds
    width = high - low if high > low else max(abs(high), 1.0)
    distance = np.where(values < low, low - values, np.where(values > high, values - high, 0.0))
    positions = np.flatnonzero(np.nan_to_num(distance, nan=0.0) > 0)
    far = distance[positions] / width
    severity = floats(scale * (base + (1.0 - base) * (1.0 - np.exp(-far))))

    def describe(position: int) -> str:
        side = "below" if values[position] < low else "above"
        if pii:
            return f"{name}: a value {side} the reference range"
        return f"{name} {values[position]:.4g} {side} the reference range [{low:.4g}, {high:.4g}]"

    return Candidates(positions, severity, describe)


def _numerical_region(
    name: str, current: pd.Series, reference: pd.Series, pii: bool
) -> list[Candidates]:
    values = numbers(current)
    baseline = numbers(reference)
    baseline = np.sort(baseline[~np.isnan(baseline)])
    if not len(baseline):
        return []
    low, high = float(baseline[0]), float(baseline[-1])
    parts = [outside_range(name, values, (low, high), pii, BEYOND_REFERENCE, 1.0)]
    inside = np.flatnonzero(~np.isnan(values) & (values >= low) & (values <= high))
    if not len(inside):
        return parts
    if np.count_nonzero(np.diff(baseline)) < DENSITY_BINS:  # 20 values or fewer
        keyed = pd.Series(values[inside])
        part = _gained(name, keyed, pd.Series(baseline), pii, BEYOND_REFERENCE, "value")
        part.positions = inside[part.positions]
        return [*parts, part]
    return [*parts, _denser_bins(name, values, inside, baseline, pii)]


def _denser_bins(
    name: str, values: Floats, inside: Ints, baseline: Floats, pii: bool
) -> Candidates:
    """The values at `inside` (within the reference's range) in the bins, cut at the
    sorted `baseline`'s quantiles, whose window share rose (see `_excess`)."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, DENSITY_BINS + 1)))
    inner = edges[1:-1]
    bins = len(inner) + 1
    window_bins = np.searchsorted(inner, values[inside], side="right")
    reference_share = floats(
        np.bincount(np.searchsorted(inner, baseline, side="right"), minlength=bins) / len(baseline)
    )
    window_share = floats(
        np.bincount(window_bins, minlength=bins) / np.count_nonzero(~np.isnan(values))
    )
    severity = _excess(window_share, reference_share)[window_bins]
    hit = severity > 0

    def describe(position: int) -> str:
        index = int(np.searchsorted(inner, values[position], side="right"))
        shares = f"{window_share[index]:.1%} of the window vs {reference_share[index]:.1%}"
        if pii:
            return f"{name}: in a value range holding {shares} of the reference"
        span = f"[{edges[index]:.4g}, {edges[index + 1]:.4g}]"
        return f"{name} {values[position]:.4g} in {span}: {shares} of the reference"

    return Candidates(inside[hit], severity[hit], describe)


def _categorical_region(
    name: str, current: pd.Series, reference: pd.Series, pii: bool
) -> list[Candidates]:
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
    # positions in the window, and descriptions looked up where `_gained` saw them (among
    # the present values only: `inside` is sorted, so searchsorted maps back)
    described_among_present = part.describe
    part.positions = inside[part.positions]
    part.describe = lambda position: described_among_present(int(np.searchsorted(inside, position)))
    return [part]


def _gained(
    name: str, current: pd.Series, reference: pd.Series, pii: bool, unseen: float, noun: str
) -> Candidates:
    """Positions (in `current`) of values unseen in the reference (severity `unseen`) or
    whose share rose by at least MIN_GAIN and MIN_RATIO times (0.75 · (1 - ref/window))."""
    window_share = current.value_counts(normalize=True, dropna=True)
    reference_share = reference.value_counts(normalize=True, dropna=True)
    aligned = reference_share.reindex(window_share.index, fill_value=0.0)
    by_value = pd.Series(
        _excess(floats(window_share.to_numpy()), floats(aligned.to_numpy())),
        index=window_share.index,
    )
    by_value[aligned.to_numpy() == 0] = unseen
    severity = floats(current.map(by_value).to_numpy(dtype=np.float64, na_value=0.0))
    positions = np.flatnonzero(severity > 0)
    values = current.to_numpy(dtype=object)

    def describe(position: int) -> str:
        value = values[position]
        before = float(aligned.get(value, 0.0))
        if before == 0:
            return f"{name}: unseen {noun}" if pii else f"{name}: unseen {noun} {value!r}"
        shares = f"{window_share[value]:.1%} of the window vs {before:.1%} of the reference"
        return f"{name}: a {noun} with {shares}" if pii else f"{name} {value!r}: {shares}"

    return Candidates(positions, severity[positions], describe)


def _excess(window_share: Floats, reference_share: Floats) -> Floats:
    """Severity of a bin or category: 0.75 · (1 - ref/window) where the window's share is
    at least MIN_GAIN above and MIN_RATIO times the reference's, else 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(window_share > 0, reference_share / window_share, 1.0)
    rose = (window_share - reference_share >= MIN_GAIN) & (
        window_share >= MIN_RATIO * reference_share
    )
    return np.where(rose, BEYOND_REFERENCE * (1.0 - ratio), 0.0)
