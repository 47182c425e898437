"""Statistical properties of verdicts on seeded synthetic data: no false alarms on
same-distribution windows of any size, and real shifts caught at 1,000 events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.drift import ColumnSpec, DriftPolicy, detect_drift

NUMERICAL = [f"x{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SPECS = [ColumnSpec(name, "numerical") for name in NUMERICAL] + [
    ColumnSpec(name, "categorical") for name in CATEGORICAL
]
MIX = {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1}


def population(rows: int, seed: int, mix: dict[str, float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shares = mix or MIX
    columns: dict[str, object] = {}
    for i, name in enumerate(NUMERICAL):
        # a spread of shapes: normal, skewed, heavy-tailed, integer-valued
        kind = i % 4
        if kind == 0:
            columns[name] = rng.normal(10 * i, 1 + i, rows)
        elif kind == 1:
            columns[name] = rng.lognormal(0, 0.7, rows)
        elif kind == 2:
            columns[name] = rng.standard_t(5, rows)
        else:
            columns[name] = rng.poisson(4 + i, rows).astype(float)
    for name in CATEGORICAL:
        columns[name] = rng.choice(list(shares), rows, p=list(shares.values()))
    return pd.DataFrame(columns)


REFERENCE = population(20_000, seed=1)


@pytest.mark.parametrize("window_size", [1_000, 10_000, 100_000])
def test_same_distribution_windows_raise_at_most_one_percent(window_size: int) -> None:
    seeds = range(100, 104 if window_size < 100_000 else 102)
    verdicts = [
        result.drifted
        for seed in seeds
        for result in detect_drift(REFERENCE, population(window_size, seed), SPECS).values()
    ]
    assert None not in verdicts
    false_alarms = sum(bool(verdict) for verdict in verdicts)
    assert false_alarms / len(verdicts) <= 0.01, f"{false_alarms} of {len(verdicts)}"


def test_half_a_standard_deviation_shift_is_caught_at_1000_events() -> None:
    for seed in range(200, 205):
        window = population(1_000, seed)
        window["x0"] += 0.5 * REFERENCE["x0"].std()
        results = detect_drift(REFERENCE, window, SPECS)
        assert results["x0"].drifted is True, results["x0"]
        assert sum(bool(r.drifted) for name, r in results.items() if name != "x0") == 0


def test_twenty_points_moved_between_two_categories_is_caught_at_1000_events() -> None:
    moved = {"a": 0.2, "b": 0.5, "c": 0.2, "d": 0.1}
    for seed in range(300, 305):
        window = population(1_000, seed)
        window["c0"] = population(1_000, seed, mix=moved)["c0"]
        results = detect_drift(REFERENCE, window, SPECS)
        assert results["c0"].drifted is True, results["c0"]


def test_p_value_method_needs_an_effect_on_large_windows() -> None:
    """KS finds a 0.03-sd shift significant at 100k events; the effect floor keeps it
    from alarming, while a real shift still drifts."""
    specs = [ColumnSpec("x0", "numerical", method="ks")]
    negligible = population(100_000, seed=400)
    negligible["x0"] += 0.03 * REFERENCE["x0"].std()
    result = detect_drift(REFERENCE, negligible, specs)["x0"]
    assert result.score is not None
    assert result.score < 0.05, "KS should call it significant"
    assert result.effect_size is not None
    assert result.effect_size < 0.1
    assert result.drifted is False
    without_floor = detect_drift(REFERENCE, negligible, specs, DriftPolicy(effect_size_floor=0))
    assert without_floor["x0"].drifted is True
    real = population(100_000, seed=401)
    real["x0"] += 0.5 * REFERENCE["x0"].std()
    assert detect_drift(REFERENCE, real, specs)["x0"].drifted is True
