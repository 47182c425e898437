"""The drift history plot: a valid PNG, one panel per drifted column plus the share
panel, one point per run, and the drift direction of each method kind."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.lines import Line2D
from PIL import Image

from core.results import ColumnResult, RunResult, WindowInfo
from service.plots import (
    MAX_COLUMN_PANELS,
    column_series,
    drift_history_figure,
    drift_history_png,
    drifted_columns,
)


def _column(score: float, threshold: float, drifted: bool, method: str) -> ColumnResult:
    return ColumnResult(
        kind="numerical", method=method, score=score, threshold=threshold, drifted=drifted
    )


def _run(index: int, drifted: set[str], names: list[str], method: str = "wasserstein") -> RunResult:
    columns = {
        name: _column(0.3 if name in drifted else 0.02, 0.1, name in drifted, method)
        for name in names
    }
    share = len(drifted) / len(names)
    return RunResult(
        run_id=f"run-{index}",
        model="credit",
        status="ok",
        started_at=f"2026-01-0{index + 1}T00:00:00Z",
        window=WindowInfo(
            start=f"2026-01-0{index + 1}T00:00:00Z", end=f"2026-01-0{index + 1}T23:59:00Z"
        ),
        columns=columns,
        drifted_share=share,
        drift_share_threshold=0.5,
        dataset_drift=share >= 0.5,
    )


def _series_points(line: Line2D) -> int:
    return len(np.asarray(line.get_xdata()))


def test_png_is_valid_with_one_panel_per_drifted_column_and_one_point_per_run() -> None:
    names = ["age", "income", "region", "debt"]
    drifts = [set(), {"age"}, {"age", "income"}, {"age", "income", "region"}, set()]
    runs = [_run(index, drifted, names) for index, drifted in enumerate(drifts)]

    figure = drift_history_figure(runs, title="credit")
    png = drift_history_png(runs, title="credit")

    # share panel + age, income, region (debt never drifted)
    assert len(figure.axes) == 1 + 3
    assert [_series_points(ax.lines[0]) for ax in figure.axes] == [len(runs)] * 4
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert min(image.size) > 0
    # the most often drifted column comes first, after the share panel
    assert "age" in figure.axes[1].get_title()
    shares = np.asarray(figure.axes[0].lines[0].get_ydata(), dtype=float).tolist()
    assert shares == [run.drifted_share for run in runs]


def test_runs_with_dataset_drift_are_shaded() -> None:
    names = ["a", "b"]
    drifts = [set(), {"a"}, set(), {"a", "b"}]
    runs = [_run(index, drifted, names) for index, drifted in enumerate(drifts)]

    figure = drift_history_figure(runs, title="t")

    shaded = sum(1 for run in runs if run.dataset_drift)
    assert shaded == 2
    # axvspan adds one patch per shaded run to every panel
    assert all(len(ax.patches) == shaded for ax in figure.axes)


def test_column_panels_are_capped_and_the_title_counts_the_rest() -> None:
    names = [f"c{index:03d}" for index in range(MAX_COLUMN_PANELS + 5)]
    runs = [_run(0, set(), names), _run(1, set(names), names)]

    figure = drift_history_figure(runs, title="wide")

    assert len(figure.axes) == 1 + MAX_COLUMN_PANELS
    assert figure.get_suptitle() == "wide (+5 more drifted columns)"


def test_without_drift_only_the_share_panel_is_drawn() -> None:
    runs = [_run(index, set(), ["a", "b"]) for index in range(3)]

    figure = drift_history_figure(runs, ["one", "two", "three"], title="quiet")

    assert len(figure.axes) == 1
    assert [tick.get_text() for tick in figure.axes[0].get_xticklabels()] == [
        "one",
        "two",
        "three",
    ]


def test_p_value_methods_drift_below_their_threshold_and_distances_above() -> None:
    p_runs = [_run(0, {"a"}, ["a"], method="ks"), _run(1, set(), ["a"], method="ks")]
    d_runs = [_run(0, {"a"}, ["a"]), _run(1, set(), ["a"])]

    p_series = column_series(p_runs, "a")
    distance_series = column_series(d_runs, "a")

    assert (p_series.p_value, p_series.drift_direction) == (True, "below")
    assert (distance_series.p_value, distance_series.drift_direction) == (False, "above")
    title = drift_history_figure(p_runs, title="p").axes[1].get_title()
    assert "p-value: drift below threshold" in title


def test_drifted_columns_order_and_missing_scores() -> None:
    names = ["x", "y"]
    runs = [_run(0, {"y"}, names), _run(1, {"x", "y"}, names)]
    runs.append(runs[1].model_copy(update={"columns": {}, "status": "insufficient_data"}))

    assert drifted_columns(runs) == ["y", "x"]
    series = column_series(runs, "x")
    assert series.scores[:2] == [0.02, 0.3]
    assert series.scores[2] != series.scores[2]  # NaN: the run had no verdict


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="runs"):
        drift_history_figure([], title="none")
    with pytest.raises(ValueError, match="labels"):
        drift_history_figure([_run(0, set(), ["a"])], ["a", "b"], title="two labels")
