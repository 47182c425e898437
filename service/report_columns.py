"""The drift tables of the report summary: one row per column (or model output), and
the order that puts the most drifted first whatever the method's direction."""

from __future__ import annotations

import html
import math

from core.results import ColumnResult, RunResult
from detectors.drift import P_VALUE_METHODS
from service.report_table import Cell, Html, absent, section, table

COLUMNS_CAPTION = (
    "Drifted columns first, then by how far each score lies past (or short of) its "
    "threshold: score ÷ threshold for distances, threshold ÷ score for p-value tests "
    "(where a low p-value is drift). Above 1x is past the threshold. Columns without a "
    "verdict come last."
)


def drift_ratio(column: ColumnResult) -> float | None:
    """How many times past its threshold a column's score lies (below 1: short of it).
    A p-value drifts low, a distance high, so the ratio turns the p-value's around."""
    if column.score is None or column.threshold is None:
        return None
    if column.method in P_VALUE_METHODS:
        return math.inf if column.score <= 0 else column.threshold / column.score
    if column.threshold <= 0:
        return math.inf if column.score > 0 else None
    return column.score / column.threshold


def by_drift(columns: dict[str, ColumnResult]) -> list[tuple[str, ColumnResult]]:
    """The columns in COLUMNS_CAPTION's order."""

    def key(item: tuple[str, ColumnResult]) -> tuple[int, float, str]:
        name, column = item
        ratio = drift_ratio(column)
        rank = 0 if column.drifted else (1 if column.drifted is not None else 2)
        return rank, -(ratio if ratio is not None else -math.inf), name

    return sorted(columns.items(), key=key)


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return "∞x" if math.isinf(ratio) else f"{ratio:.3g}x"


COLUMN_HEADERS = (
    "column",
    "kind",
    "method",
    "method name",
    "score",
    "threshold",
    "vs threshold",
    "drifted",
    "missing share",
    "reference size",
    "window size",
    "effect size",
    "effect size floor",
    "status",
    "note",
)


def column_cells(name: str, column: ColumnResult) -> list[Cell]:
    """One row of a drift table; outputs (prediction, confidence, label) use it too."""
    return [
        name,
        column.kind,
        column.method,
        column.method_name,
        column.score,
        column.threshold,
        Html(html.escape(ratio_text(drift_ratio(column)))),
        column.drifted,
        column.missing_share,
        column.reference_size,
        column.current_size,
        column.effect_size,
        column.effect_size_floor,
        column.status,
        column.note,
    ]


def columns_section(run: RunResult) -> str:
    if not run.columns:
        return section("Columns", absent("No column was compared in this run."))
    ordered = by_drift(run.columns)
    rows = [column_cells(name, column) for name, column in ordered]
    classes = ["drifted" if column.drifted else "" for _, column in ordered]
    return section("Columns", table(COLUMN_HEADERS, rows, COLUMNS_CAPTION, classes))
