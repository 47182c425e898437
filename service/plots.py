"""Drift history as a picture: successive runs' scores against their thresholds.

Built with matplotlib's object API on an Agg canvas (no pyplot, so no global figure
state shared between requests or threads). Used by `driftmon replay --plot` and the
run plot route.

Panels, top to bottom: the dataset-drift share against its threshold, then one per
column that drifted in any run (at most MAX_COLUMN_PANELS, the most often drifted
first). Each panel's first line is its series, one point per run, so callers can count
them. Runs with dataset drift are shaded in every panel. A p-value method drifts below
its threshold, a distance above it: each column panel says which, and its drifted runs
are marked."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.results import ColumnResult, RunResult
from detectors.drift import P_VALUE_METHODS

# a 300-column model stays readable: the rest are counted in the title
MAX_COLUMN_PANELS = 12
PANEL_HEIGHT_INCHES = 1.9
DRIFT_SHADE = "#f4a6a6"
SCORE_COLOR = "#1f4e9c"
DRIFTED_COLOR = "#c0392b"
THRESHOLD_COLOR = "#555555"


@dataclass(frozen=True)
class ColumnSeries:
    """One column's scores and thresholds over the runs; NaN where a run had none."""

    name: str
    scores: list[float]
    thresholds: list[float]
    drifted: list[bool]
    p_value: bool

    @property
    def drift_direction(self) -> str:
        return "below" if self.p_value else "above"


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def column_series(runs: Sequence[RunResult], name: str) -> ColumnSeries:
    results: list[ColumnResult | None] = [run.columns.get(name) for run in runs]
    methods = [result.method for result in results if result is not None and result.method]
    return ColumnSeries(
        name=name,
        scores=[_number(result.score if result else None) for result in results],
        thresholds=[_number(result.threshold if result else None) for result in results],
        drifted=[bool(result and result.drifted) for result in results],
        # the latest method decides: a column's method changes only with its config
        p_value=bool(methods) and methods[-1] in P_VALUE_METHODS,
    )


def drifted_columns(runs: Sequence[RunResult]) -> list[str]:
    """Columns that drifted in any run, the most often drifted first, then by name."""
    counts: dict[str, int] = {}
    for run in runs:
        for name, result in run.columns.items():
            if result.drifted:
                counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda name: (-counts[name], name))


def default_labels(runs: Sequence[RunResult]) -> list[str]:
    """Each run's window end (else its start), to the minute."""
    return [(run.window.end or run.started_at)[:16].replace("T", " ") for run in runs]


def _shade_dataset_drift(ax: Axes, runs: Sequence[RunResult]) -> None:
    for index, run in enumerate(runs):
        if run.dataset_drift:
            ax.axvspan(index - 0.5, index + 0.5, color=DRIFT_SHADE, alpha=0.45, linewidth=0)


def _share_panel(ax: Axes, runs: Sequence[RunResult]) -> None:
    positions = list(range(len(runs)))
    shares = [_number(run.drifted_share) for run in runs]
    thresholds = [_number(run.drift_share_threshold) for run in runs]
    ax.plot(positions, shares, marker="o", color=SCORE_COLOR, label="drifted share")
    ax.plot(positions, thresholds, linestyle="--", color=THRESHOLD_COLOR, label="threshold")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("share", fontsize=8)
    ax.set_title("dataset drift: share of drifted columns (drift at or above)", fontsize=9)
    ax.legend(loc="upper left", fontsize=7, frameon=False)


def _column_panel(ax: Axes, series: ColumnSeries) -> None:
    positions = list(range(len(series.scores)))
    ax.plot(positions, series.scores, marker="o", color=SCORE_COLOR, label="score")
    ax.plot(positions, series.thresholds, linestyle="--", color=THRESHOLD_COLOR, label="threshold")
    hits = [index for index, drifted in enumerate(series.drifted) if drifted]
    ax.scatter(
        hits,
        [series.scores[index] for index in hits],
        color=DRIFTED_COLOR,
        zorder=3,
        label="drifted",
    )
    kind = "p-value" if series.p_value else "distance"
    ax.set_title(f"{series.name} ({kind}: drift {series.drift_direction} threshold)", fontsize=9)
    ax.set_ylabel("score", fontsize=8)
    ax.legend(loc="upper left", fontsize=7, frameon=False)


def _title(title: str, shown: int, total: int) -> str:
    return title if total <= shown else f"{title} (+{total - shown} more drifted columns)"


def drift_history_figure(
    runs: Sequence[RunResult], labels: Sequence[str] | None = None, *, title: str
) -> Figure:
    """The figure drift_history_png renders: 1 + min(drifted columns, MAX_COLUMN_PANELS)
    panels sharing an x axis of one position per run."""
    if not runs:
        raise ValueError("runs: at least one run is needed to plot a history")
    ticks = list(labels) if labels is not None else default_labels(runs)
    if len(ticks) != len(runs):
        raise ValueError(f"labels: {len(ticks)} labels for {len(runs)} runs")
    names = drifted_columns(runs)
    shown = names[:MAX_COLUMN_PANELS]
    panels = 1 + len(shown)
    width = min(16.0, max(7.0, 0.55 * len(runs)))
    figure = Figure(figsize=(width, 1.0 + PANEL_HEIGHT_INCHES * panels), layout="constrained")
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    _share_panel(axes[0], runs)
    for ax, name in zip(axes[1:], shown, strict=True):
        _column_panel(ax, column_series(runs, name))
    for ax in axes:
        _shade_dataset_drift(ax, runs)
        ax.set_xlim(-0.5, len(runs) - 0.5)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[-1].set_xticks(range(len(runs)), ticks, rotation=30, ha="right")
    figure.suptitle(_title(title, len(shown), len(names)), fontsize=11)
    return figure


def figure_png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)  # attaches itself: the Agg renderer, whatever the backend
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def drift_history_png(
    runs: Sequence[RunResult], labels: Sequence[str] | None = None, *, title: str
) -> bytes:
    """PNG of the drift scores of successive runs (oldest first) against their thresholds:
    one panel per column that drifted in any run, plus a top panel for the dataset-drift
    share against its threshold; runs with dataset drift shaded. labels: x tick labels
    (default: each run's window end time)."""
    return figure_png(drift_history_figure(runs, labels, title=title))
