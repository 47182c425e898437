"""A dataset audit as a picture: missing values per column (left) and the label's class
balance (right). Built with matplotlib's object API (no pyplot: no global figure state);
Figure.savefig renders with Agg."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from core.dataset_audit import DatasetAudit

# a 500-column file stays readable: the most-missing columns, the rest counted in the title
MAX_COLUMNS_SHOWN = 40
MAX_CLASSES_SHOWN = 20
BAR_COLOR = "#1f4e9c"
EMPTY_COLOR = "#c0392b"  # a column with every value missing


def _missing_panel(axes: Axes, audit: DatasetAudit) -> None:
    ranked = sorted(audit.columns, key=lambda column: -column.missing_share)[:MAX_COLUMNS_SHOWN]
    ranked.reverse()  # barh draws bottom-up: the most missing on top
    shares = [100 * column.missing_share for column in ranked]
    colors = [EMPTY_COLOR if share == 100 else BAR_COLOR for share in shares]
    axes.barh([column.name for column in ranked], shares, color=colors)
    axes.set_xlim(0, 100)
    axes.set_xlabel("missing values (% of rows)")
    if not any(shares):
        axes.text(50, (len(ranked) - 1) / 2, "no missing values", ha="center", va="center")
    shown = f"{len(ranked)} of {len(audit.columns)} columns" if ranked else "no columns"
    axes.set_title(f"Missing values ({shown}, most missing first)")


def _balance_panel(axes: Axes, audit: DatasetAudit) -> None:
    balance = audit.class_balance
    if balance is None:
        reason = "no label column" if audit.label is None else f"{audit.label}: regression label"
        axes.text(0.5, 0.5, f"Class balance not applicable\n({reason})", ha="center", va="center")
        axes.set_axis_off()
        return
    classes = list(balance.counts.items())[:MAX_CLASSES_SHOWN]
    axes.bar([name for name, _ in classes], [count for _, count in classes], color=BAR_COLOR)
    axes.set_ylabel("rows")
    axes.tick_params(axis="x", labelrotation=45)
    hidden = len(balance.counts) - len(classes) + balance.other_classes
    more = f", {hidden} more classes" if hidden else ""
    axes.set_title(f"Class balance of {audit.label} ({balance.missing} unlabelled{more})")


def audit_figure(audit: DatasetAudit) -> Figure:
    """Two panels: missing values, class balance."""
    rows = min(len(audit.columns), MAX_COLUMNS_SHOWN)
    figure = Figure(figsize=(13, max(4.0, 0.28 * rows + 1.5)), layout="constrained")
    missing_axes, balance_axes = figure.subplots(1, 2)
    _missing_panel(missing_axes, audit)
    _balance_panel(balance_axes, audit)
    return figure


def save_audit_plot(audit: DatasetAudit, path: Path) -> None:
    audit_figure(audit).savefig(path, format="png", dpi=100)
