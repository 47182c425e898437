"""`driftmon audit FILE`: small, targeted checks of a training set before anyone trusts
it (detectors/dataset_audit.py computes; this reads the files, prints and writes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from core.dataset_audit import AuditThresholds, ColumnProfile, DatasetAudit, LeakageScore
from core.results import ColumnResult
from detectors.dataset_audit import AuditInputError, audit_dataset
from service.audit_files import FORMATS, read_frame
from service.plots_audit import save_audit_plot

EXIT_FINDINGS = 1
F = TypeVar("F", bound=Callable[..., Any])

HELP = f"""Audit FILE, a training set: rows, exact and near duplicates, constant columns,
missing values per column, high-cardinality categoricals and, with --label, the class
balance, label conflicts and leakage suspects; with --against OTHER, the drift of every
shared column and a domain classifier's AUC. Files: {FORMATS}.

\b
Near duplicate: a row equal to an earlier row only once floats are rounded to
--near-digits significant digits and text is trimmed, lower-cased and its whitespace
collapsed (integers, booleans and dates compare exactly; exact duplicates are not
counted again).
Leakage suspect: a column whose ROC AUC against the label, on its own, reaches
--leakage-auc (numbers: raw values, either direction; categories: their label rate
computed out of fold, so an id column scores 0.5); for a numeric label that is not
class-like (integer values, at most 20 of them): |Spearman rho| reaching
--leakage-spearman.
Label conflicts: identical features, different labels; the estimated noise is the rows
outside their group's majority label.
High cardinality: a categorical with --high-cardinality-count distinct values, or with
more than --high-cardinality-ratio of its values distinct (id-like, 20 or more).

\b
Exit codes: 0 no findings; 1 findings (duplicates, constant columns, leakage suspects,
label conflicts, and with --against drifted or missing columns or a domain AUC at
--domain-auc or above); 2 usage or input errors."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def threshold_options(command: F) -> F:
    """One option per AuditThresholds field, with its default and description; the
    model validates the values (in `audit`)."""
    for name, field in reversed(AuditThresholds.model_fields.items()):
        kind = int if isinstance(field.default, int) else float
        option = click.option(
            _flag(name), name, type=kind, default=field.default, help=field.description
        )
        command = option(command)
    return command


def _thresholds(values: dict[str, Any]) -> AuditThresholds:
    try:
        return AuditThresholds(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = _flag(str(error["loc"][0]))
        raise click.BadParameter(error["msg"], param_hint=flag) from exc


def _check_columns(columns: list[str], label: str | None, ignore: tuple[str, ...]) -> None:
    known = ", ".join(columns[:20]) + (" ..." if len(columns) > 20 else "")
    if label is not None and label not in columns:
        raise click.BadParameter(
            f"no column {label!r} in FILE (columns: {known})", param_hint="--label"
        )
    for name in ignore:
        if name not in columns:
            raise click.BadParameter(
                f"no column {name!r} in FILE (columns: {known})", param_hint="--ignore"
            )
        if name == label:
            raise click.BadParameter(f"{name!r} is the --label column", param_hint="--ignore")


def _percent(share: float) -> str:
    return f"{share:.1%}" if share else "-"


def _flags(column: ColumnProfile, score: LeakageScore | None, shift: ColumnResult | None) -> str:
    flags = [
        ("constant", column.constant),
        ("high cardinality", column.high_cardinality),
        ("LEAKAGE?", score is not None and score.suspect),
        ("DRIFTED", shift is not None and bool(shift.drifted)),
    ]
    return ", ".join(name for name, on in flags if on)


def column_table(audit: DatasetAudit) -> Table:
    """A row per column; the leakage and drift columns only when there is a label, or
    another file."""
    table = Table(title="Columns", title_justify="left")
    table.add_column("column", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("missing", justify="right")
    table.add_column("distinct", justify="right")
    if audit.label is not None:
        table.add_column("leakage")
    if audit.comparison is not None:
        table.add_column("drift score")
    table.add_column("flags")
    leakage = {score.column: score for score in audit.leakage}
    drift = {} if audit.comparison is None else audit.comparison.columns
    for column in audit.columns:
        score, shift = leakage.get(column.name), drift.get(column.name)
        cells = [column.name, column.kind, _percent(column.missing_share), str(column.distinct)]
        if audit.label is not None:
            known = score is not None and score.score is not None
            cells.append(f"{score.metric} {score.score:.3f}" if known else "")  # type: ignore[union-attr]
        if audit.comparison is not None:
            measured = shift is not None and shift.score is not None
            cells.append(f"{shift.score:.3g}" if measured else "")  # type: ignore[union-attr]
        table.add_row(*cells, _flags(column, score, shift))
    return table


def _label_lines(audit: DatasetAudit) -> list[str]:
    lines = []
    if audit.class_balance is not None:
        balance = audit.class_balance
        counts = ", ".join(f"{name}: {count}" for name, count in list(balance.counts.items())[:10])
        lines.append(f"class balance of {audit.label}: {counts} ({balance.missing} unlabelled)")
    if audit.label_conflicts is not None:
        conflicts = audit.label_conflicts
        lines.append(
            f"label conflicts: {conflicts.groups} groups, {conflicts.rows} rows, "
            f"estimated noise {conflicts.noise_rate:.2%}"
        )
    return lines


def render(audit: DatasetAudit, console: Console, name: str) -> None:
    task = f", label {audit.label} ({audit.label_task})" if audit.label else ", no label"
    console.print(f"[bold]{name}[/bold]: {audit.rows} rows, {len(audit.columns)} columns{task}")
    console.print(column_table(audit))
    duplicates = audit.duplicates
    console.print(f"duplicates: {duplicates.exact_rows} exact, {duplicates.near_rows} near")
    for line in _label_lines(audit):
        console.print(line)
    if audit.comparison is not None:
        domain = audit.comparison.domain
        score = "n/a" if domain.score is None else f"{domain.score:.3f}"
        console.print(
            f"domain classifier AUC: {score} ({domain.status}, {domain.sample_size} rows per file)"
        )
    findings = audit.findings
    console.print(
        f"[bold]{len(findings)} findings[/bold]" if findings else "[bold]no findings[/bold]"
    )
    for finding in findings:
        console.print(f"  - {finding.message}", markup=False)


@click.command("audit", help=HELP, context_settings={"show_default": True})
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--label", metavar="COL", help="the label (ground-truth) column")
@click.option(
    "--against",
    metavar="OTHER",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="another file to compare with (a newer sample, a serving log)",
)
@click.option(
    "--ignore",
    metavar="COL",
    multiple=True,
    help="leave out of every check (ids, model outputs); repeatable",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write the audit as JSON",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write a PNG: missing values per column, class balance",
)
@threshold_options
def audit(
    file: Path,
    label: str | None,
    against: Path | None,
    ignore: tuple[str, ...],
    out: Path | None,
    plot: Path | None,
    **thresholds: Any,
) -> None:
    limits = _thresholds(thresholds)
    frame = read_frame(file, "FILE")
    _check_columns(list(frame.columns), label, ignore)
    other = None if against is None else read_frame(against, "--against")
    try:
        result = audit_dataset(frame, label=label, ignore=ignore, thresholds=limits, other=other)
    except AuditInputError as exc:
        raise click.BadParameter(str(exc), param_hint=_flag(exc.field)) from exc
    render(result, Console(), file.name)
    if out is not None:
        out.write_text(result.model_dump_json(indent=2))
    if plot is not None:
        save_audit_plot(result, plot)
    if result.findings:
        raise click.exceptions.Exit(EXIT_FINDINGS)
