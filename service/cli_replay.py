"""`driftmon replay`: a history file replayed offline, chunk by chunk, through the
service's detection and alert code (service/replay.py). Exit 0 when no chunk has
dataset drift, 1 when one has, 2 on a usage or input error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from detectors.reference import ReferenceRoles
from service.config import Settings
from service.replay import Replay, ReplayChunk, plan_replay
from service.replay_chunks import ChunkPlan, unused_columns
from service.replay_input import ReplayInputError, model_setup, prepare_input
from service.replay_output import (
    OUT_SUFFIXES,
    check_out_path,
    chunk_table,
    table_title,
    write_plot,
    write_results,
)
from service.routes_models import ReferenceQuery

DRIFT_EXIT = 1
# columns of the table when the output is not a terminal
WIDE = 160
FILE = click.Path(path_type=Path, dir_okay=False)


@dataclass(frozen=True)
class ReplayOptions:
    """The command line, typed."""

    reference: Path
    data: Path
    chunk_size: int | None
    chunk_period: str | None
    timestamp_column: str | None
    models_file: Path | None
    model: str | None
    prediction: str | None
    scores: str | None
    label: str | None
    categorical: str | None
    numerical: str | None
    event_id: str | None
    positive_class: str | None
    model_version_column: str | None
    out: Path | None
    plot: Path | None

    def roles(self) -> ReferenceRoles:
        """As the upload route's query makes them (the same option names)."""
        return ReferenceQuery.model_validate(self, from_attributes=True).roles()

    def plan(self) -> ChunkPlan:
        return ChunkPlan(
            size=self.chunk_size,
            period=self.chunk_period,
            timestamp_column=self.timestamp_column,
            event_id_column=self.event_id,
            model_version_column=self.model_version_column,
        )


def _check_usage(given: ReplayOptions) -> None:
    if (given.chunk_size is None) == (given.chunk_period is None):
        raise click.UsageError("give exactly one of --chunk-size and --chunk-period")
    if given.models_file is not None and given.model is None:
        raise click.UsageError("--model: name the model of --models-file to replay")


def _run_with_progress(replay: Replay, console: Console) -> list[ReplayChunk]:
    columns = (
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
    )
    results: list[ReplayChunk] = []
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("replay", total=len(replay))
        for result in replay.runs():
            results.append(result)
            progress.advance(task)
    return results


def _summary(results: list[ReplayChunk]) -> str:
    drifted = [str(result.chunk) for result in results if result.dataset_drift]
    fired = sum(len(result.transitions("firing")) for result in results)
    resolved = sum(len(result.transitions("resolved")) for result in results)
    verdict = f"dataset drift in chunks {', '.join(drifted)}" if drifted else "no dataset drift"
    return (
        f"{len(results)} chunks: {verdict}; alerts fired {fired} times, resolved {resolved} "
        f"times; firing at the end: {', '.join(results[-1].firing) or 'none'}"
    )


@click.command("replay", context_settings={"show_default": True})
@click.option(
    "--reference",
    "reference",
    type=FILE,
    required=True,
    help="training reference: CSV, Parquet or NDJSON (by suffix)",
)
@click.option(
    "--data",
    "data",
    type=FILE,
    required=True,
    help="history to replay: CSV, Parquet or NDJSON, the reference's columns",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=None,
    help="rows per chunk (one of --chunk-size and --chunk-period)",
)
@click.option(
    "--chunk-period",
    default=None,
    help="time per chunk on the timestamp column, e.g. 1d, 6h, 30min",
)
@click.option(
    "--timestamp-column",
    default=None,
    help="column of event times (ISO 8601 or epoch seconds)  [default: timestamp, when present]",
)
@click.option(
    "--models-file",
    type=FILE,
    default=None,
    help="models YAML: the model's drift methods, thresholds and alert rules",
)
@click.option(
    "--model",
    default=None,
    help="the model of --models-file, and the name in the results  [default: --data's name]",
)
@click.option("--prediction", default=None, help="prediction column")
@click.option("--scores", default=None, help="score column, or column:class pairs")
@click.option("--label", default=None, help="ground-truth column (gives performance)")
@click.option("--categorical", default=None, help="comma-separated categorical columns")
@click.option("--numerical", default=None, help="comma-separated numerical columns")
@click.option("--event-id", default=None, help="event id column")
@click.option("--positive-class", default=None, help="class whose probability is scored")
@click.option("--model-version-column", default=None, help="column of model versions")
@click.option("--out", type=FILE, default=None, help="write results to .json or .csv")
@click.option("--plot", type=FILE, default=None, help="write the drift history to a .png")
@click.pass_context
def replay(ctx: click.Context, /, **options: Any) -> None:
    """Replay a history offline through driftmon's detection and alert rules, one chunk
    at a time, as the service would have judged each chunk as a window."""
    given = ReplayOptions(**options)
    _check_usage(given)
    errors = Console(stderr=True)
    try:
        results, title = _replay(given, errors)
    except ReplayInputError as exc:
        raise click.UsageError(str(exc)) from exc
    console = Console()
    if not console.is_terminal:  # a file or a pipe: no terminal width to fit
        console = Console(width=WIDE)
    console.print(chunk_table(results, title))
    console.print(_summary(results))
    if given.out is not None:
        write_results(results, given.out)
        console.print(f"results: {given.out}")
    if given.plot is not None:
        write_plot(results, given.plot, title)
        console.print(f"plot: {given.plot}")
    if any(result.dataset_drift for result in results):
        ctx.exit(DRIFT_EXIT)


def _replay(given: ReplayOptions, errors: Console) -> tuple[list[ReplayChunk], str]:
    """Inputs checked and read, the replay run under a progress bar (on stderr)."""
    if given.out is not None:
        check_out_path(given.out, "--out", OUT_SUFFIXES)
    if given.plot is not None:
        check_out_path(given.plot, "--plot", (".png",))
    model = model_setup(Settings(), given.models_file, given.model or given.data.stem)
    prepared = prepare_input(
        given.reference, given.data, given.roles(), model, given.timestamp_column
    )
    plan = given.plan()
    replay_plan = plan_replay(model, prepared, plan)
    ignored = unused_columns(prepared.history, prepared.reference.schema, plan)
    if ignored:
        errors.print(f"--data: columns not in the reference, left out: {', '.join(ignored)}")
    results = _run_with_progress(replay_plan, errors)
    return results, table_title(results, model.name)


if __name__ == "__main__":  # `python -m service.cli_replay`, before `driftmon replay` is wired
    replay()
