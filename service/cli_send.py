"""`driftmon send MODEL FILE`: a file of prediction logs to a running driftmon, in
batches, with a progress bar and retries of 503/429; exit 1 when rows were rejected."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from core.schema import ModelSchema
from service.cli_client import as_mapping, model_name, server_options
from service.cli_common import (
    EXIT_FINDINGS,
    EXIT_OK,
    CommandError,
    objects_table,
    stderr_console,
    stdout_console,
)
from service.cli_events import EventMapper
from service.cli_files import FILE_FORMATS, count_rows, file_format, line_batches, row_batches
from service.cli_http import ApiClient, Body, RetryPolicy, ServerAddress, server_error

# rejections printed at the end; the server's 202 names each one's row, field and reason
SHOWN_REJECTIONS = 5
DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class Rejection:
    row: int  # 1-based, in the file's data rows (NDJSON: non-blank lines)
    field: str
    reason: str
    error: str


@dataclass
class SendTotals:
    """What the server's answers added up to, batch after batch."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def add(self, answer: dict[str, object], first_row: int, rows: int) -> None:
        self.sent += rows
        self.accepted += _count(answer, "accepted")
        self.duplicates += _count(answer, "duplicates")
        self.rejected += _count(answer, "rejected")
        errors = answer.get("errors")
        for error in errors if isinstance(errors, list) else []:
            if len(self.rejections) >= SHOWN_REJECTIONS or not isinstance(error, dict):
                break
            index = error.get("index")
            self.rejections.append(
                Rejection(
                    row=first_row + (index if isinstance(index, int) else 0),
                    field=str(error.get("field", "")),
                    reason=str(error.get("reason", "")),
                    error=str(error.get("error", "")),
                )
            )

    def table(self) -> Table:
        table = Table(title="sent", title_justify="left")
        for name in ("rows", "accepted", "duplicates", "rejected"):
            table.add_column(name, justify="right")
        counts = (self.sent, self.accepted, self.duplicates, self.rejected)
        table.add_row(*map(str, counts))
        return table


def _count(answer: dict[str, object], key: str) -> int:
    value = answer.get(key)
    return value if isinstance(value, int) else 0


@dataclass(frozen=True)
class Batches:
    """The file's rows as request bodies: events as a JSON array, NDJSON lines as sent."""

    path: Path
    fmt: str
    size: int

    def bodies(self, schema: ModelSchema) -> Iterator[tuple[int, Body]]:
        if self.fmt == "ndjson":
            for lines in line_batches(self.path, self.size):
                yield len(lines), Body(b"\n".join(lines), "application/x-ndjson")
            return
        mapper = EventMapper(schema)
        for rows in row_batches(self.path, self.fmt, self.size):
            events = [mapper.event(row) for row in rows]
            yield len(rows), Body(orjson.dumps(events), "application/json")


def _batch_answer(response: httpx.Response, totals: SendTotals, rows: int) -> dict[str, object]:
    """The counts of a batch's answer: a 202, or a 422 when every row was rejected;
    anything else stops the run, saying how far it got."""
    answer = orjson.loads(response.content) if response.status_code in (202, 422) else None
    if isinstance(answer, dict) and "accepted" in answer:
        return answer
    error = server_error(response)
    note = f" ({totals.sent} rows sent before this batch of {rows})"
    if response.status_code == 413:
        note += "; lower --batch-size"
    raise CommandError(error.message + note)


def send_batches(
    client: ApiClient, model: str, batches: Batches, policy: RetryPolicy, console: Console
) -> SendTotals:
    path = f"/v1/models/{model}"
    described = as_mapping(client.json("GET", path, 200), f"GET {path}")
    schema_data = described.get("schema")
    if not isinstance(schema_data, dict):
        raise CommandError(f"GET {path} answered no schema")
    schema = ModelSchema.from_dict(schema_data)
    total = count_rows(batches.path, batches.fmt)
    totals = SendTotals()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    # a log file gets the totals only: a bar redrawn there would be noise
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"{batches.path.name} → {model}", total=total)
        for rows, body in batches.bodies(schema):
            response = client.with_retries(policy, "POST", f"{path}/events", body)
            totals.add(_batch_answer(response, totals, rows), totals.sent + 1, rows)
            progress.advance(task, rows)
    return totals


@click.command("send")
@click.argument("model", callback=model_name)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FILE_FORMATS),
    help="the file's format  [default: from its suffix: .csv, .parquet/.pq, .ndjson/.jsonl]",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    help="events per request",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=RetryPolicy.max_retries,
    help="retries of a batch answered 503 or 429 (after Retry-After, else backoff)",
)
@server_options
@click.pass_context
def send(
    ctx: click.Context,
    model: str,
    file: Path,
    fmt: str | None,
    batch_size: int,
    max_retries: int,
    url: str,
    timeout: float,
) -> None:
    """Send FILE's prediction logs to MODEL, in batches. CSV and Parquet rows become
    events by the model's reference columns (its prediction, score, label and event id
    columns; event_id, timestamp, model_version by name; other columns are features);
    NDJSON lines are sent as they are. Exit 1 when rows were rejected."""
    batches = Batches(file, file_format(file, fmt), batch_size)
    policy = RetryPolicy(max_retries=max_retries)
    with ApiClient(ServerAddress.of(url, timeout)) as client:
        totals = send_batches(client, model, batches, policy, stderr_console())
    console = stdout_console()
    console.print(totals.table())
    if totals.rejections:
        rows = [vars(rejection) for rejection in totals.rejections]
        console.print(objects_table(f"first {len(rows)} rejected rows", rows))
    ctx.exit(EXIT_FINDINGS if totals.rejected else EXIT_OK)
