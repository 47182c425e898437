"""What `driftmon replay` shows and writes: a table of the chunks, the results as JSON
(one record per chunk, its full RunResult included) or CSV (one row per chunk and
column), and the drift history plot."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from pydantic import TypeAdapter
from rich.table import Table

from core.results import RunResult
from service.plots import drift_history_png
from service.replay import ReplayChunk
from service.replay_input import ReplayInputError

OUT_SUFFIXES = (".json", ".csv")
# drifted columns named in a table cell; the rest counted
COLUMNS_SHOWN = 4
CHUNKS = TypeAdapter(list[ReplayChunk])


def check_out_path(path: Path, flag: str, suffixes: Sequence[str]) -> None:
    """Before any work: a known suffix and an existing folder."""
    if path.suffix.lower() not in suffixes:
        raise ReplayInputError(flag, f"{path}: use a file name ending in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ReplayInputError(flag, f"{path.parent}: no such folder")


def _drifted(run: RunResult) -> str:
    drifted = sorted(
        ((name, result.score) for name, result in run.columns.items() if result.drifted),
        key=lambda item: -(item[1] or 0.0),
    )
    shown = [f"{name} {score:.3g}" for name, score in drifted[:COLUMNS_SHOWN] if score is not None]
    more = len(drifted) - COLUMNS_SHOWN
    return "\n".join(shown + ([f"+{more} more"] if more > 0 else []))


def _verdict(run: RunResult) -> str:
    if run.status != "ok":
        return run.status
    share = "n/a" if run.drifted_share is None else f"{run.drifted_share:.0%}"
    return f"[bold red]DRIFT {share}[/]" if run.dataset_drift else f"ok {share}"


def _findings(run: RunResult) -> str:
    quality = run.data_quality
    if quality is None or not quality.findings:
        return ""
    return f"{len(quality.findings)} ({quality.worst_severity})"


def _alerts(chunk: ReplayChunk, transition: str) -> str:
    return "\n".join(change.label for change in chunk.alerts if change.transition == transition)


def _period(chunk: ReplayChunk) -> str:
    """Without the year (the title has it), so the table fits a terminal."""
    if chunk.start is None or chunk.end is None:
        return chunk.period
    return f"{_month_minute(chunk.start)} → {_month_minute(chunk.end)}"


def _month_minute(iso: str) -> str:
    return iso[5:16].replace("T", " ")


def table_title(chunks: Sequence[ReplayChunk], name: str) -> str:
    first, last = chunks[0], chunks[-1]
    span = f", {first.start[:10]} to {last.end[:10]}" if first.start and last.end else ""
    return f"{name}: {len(chunks)} chunks{span}"


def chunk_table(chunks: Sequence[ReplayChunk], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("chunk", "period", "events", "dataset drift", "drifted columns (score)"):
        table.add_column(header, no_wrap=header != "drifted columns (score)")
    table.add_column("findings")
    table.add_column("alerts fired", style="red")
    table.add_column("alerts resolved", style="green")
    for chunk in chunks:
        rejected = f" (+{chunk.rejected} rejected)" if chunk.rejected else ""
        table.add_row(
            str(chunk.chunk),
            _period(chunk),
            f"{chunk.events}{rejected}",
            _verdict(chunk.run),
            _drifted(chunk.run),
            _findings(chunk.run),
            _alerts(chunk, "firing"),
            _alerts(chunk, "resolved"),
        )
    return table


@dataclass(frozen=True)
class ColumnRow:
    """One CSV row: a column's verdict in one chunk."""

    chunk: int
    period: str
    start: str | None
    end: str | None
    events: int
    column: str
    kind: str
    method: str | None
    score: float | None
    threshold: float | None
    drifted: bool | None
    status: str


def column_rows(chunks: Sequence[ReplayChunk]) -> list[ColumnRow]:
    return [
        ColumnRow(
            chunk.chunk,
            chunk.period,
            chunk.start,
            chunk.end,
            chunk.events,
            name,
            result.kind,
            result.method,
            result.score,
            result.threshold,
            result.drifted,
            result.status,
        )
        for chunk in chunks
        for name, result in sorted(chunk.run.columns.items())
    ]


def csv_text(chunks: Sequence[ReplayChunk]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, [field.name for field in fields(ColumnRow)])
    writer.writeheader()
    writer.writerows(asdict(row) for row in column_rows(chunks))
    return buffer.getvalue()


def json_bytes(chunks: Sequence[ReplayChunk]) -> bytes:
    return CHUNKS.dump_json(list(chunks), indent=2)


def write_results(chunks: Sequence[ReplayChunk], path: Path) -> None:
    """JSON or CSV by the file's suffix (checked before the replay ran)."""
    if path.suffix.lower() == ".json":
        path.write_bytes(json_bytes(chunks))
    else:
        path.write_text(csv_text(chunks), newline="")


def tick_labels(chunks: Sequence[ReplayChunk]) -> list[str]:
    """A chunk's start to the minute, else its rows."""
    return [chunk.period.split(" → ")[0] for chunk in chunks]


def write_plot(chunks: Sequence[ReplayChunk], path: Path, title: str) -> None:
    runs = [chunk.run for chunk in chunks]
    path.write_bytes(drift_history_png(runs, tick_labels(chunks), title=title))
