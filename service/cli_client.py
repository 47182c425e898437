"""`driftmon reference upload|list`: training references on a running driftmon, and the
options every command that talks to a server shares (--url, --timeout; the API key is
DRIFTMON_API_KEY)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import click

from core.config import MODEL_NAME_PATTERN
from service.cli_common import (
    EXIT_OK,
    CommandError,
    cell,
    mapping_table,
    objects_table,
    print_answer,
    stdout_console,
)
from service.cli_files import file_format
from service.cli_http import DEFAULT_URL, URL_ENV, ApiClient, Body, ServerAddress

F = TypeVar("F", bound=Callable[..., object])
REFERENCE_FORMATS = ("csv", "parquet")
CONTENT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def server_options(command: F) -> F:
    """--url and --timeout, for every command that calls a running driftmon."""
    url = click.option(
        "--url",
        default=DEFAULT_URL,
        envvar=URL_ENV,
        show_envvar=True,
        help="base URL of the running driftmon (the API key is read from DRIFTMON_API_KEY)",
    )
    timeout = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=60.0,
        help="seconds to wait for each answer",
    )
    return url(timeout(command))


def model_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """MODEL goes into the URL's path: checked here with the server's own rule."""
    if value is not None and not MODEL_NAME_PATTERN.match(value):
        raise click.BadParameter(f"must match {MODEL_NAME_PATTERN.pattern}", ctx, param)
    return value


def as_mapping(answer: object, what: str) -> Mapping[str, object]:
    if not isinstance(answer, Mapping):
        raise CommandError(f"{what} answered something other than a JSON object")
    return answer


@click.group()
def reference() -> None:
    """Upload or list a model's training references (a running driftmon)."""


@reference.command("upload")
@click.argument("model", callback=model_name)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prediction", metavar="COL", help="the prediction column")
@click.option(
    "--scores",
    multiple=True,
    metavar="COL[:CLASS]",
    help="a score column, or column:class pairs (repeatable, or comma-separated)",
)
@click.option("--label", metavar="COL", help="the ground-truth column")
@click.option("--categorical", multiple=True, metavar="COL", help="categorical (repeatable)")
@click.option("--numerical", multiple=True, metavar="COL", help="numerical (repeatable)")
@click.option("--event-id", metavar="COL", help="the event id column")
@click.option("--positive-class", metavar="CLASS", help="the class whose probability is scored")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REFERENCE_FORMATS),
    help="the file's format  [default: from its suffix]",
)
@server_options
@click.pass_context
def upload(
    ctx: click.Context,
    model: str,
    file: Path,
    prediction: str | None,
    scores: tuple[str, ...],
    label: str | None,
    categorical: tuple[str, ...],
    numerical: tuple[str, ...],
    event_id: str | None,
    positive_class: str | None,
    fmt: str | None,
    url: str,
    timeout: float,
) -> None:
    """Upload FILE (CSV or Parquet) as MODEL's training reference: creates the model if
    new and makes the upload its active reference. Columns without a role are features,
    their kind inferred unless --categorical/--numerical say it."""
    kind = file_format(file, fmt, REFERENCE_FORMATS)
    roles = {
        "prediction": prediction,
        "scores": ",".join(scores) or None,
        "label": label,
        "categorical": ",".join(categorical) or None,
        "numerical": ",".join(numerical) or None,
        "event_id": event_id,
        "positive_class": positive_class,
    }
    params = {name: value for name, value in roles.items() if value is not None}
    with ApiClient(ServerAddress.of(url, timeout)) as client, file.open("rb") as body:
        answer = client.json(
            "PUT",
            f"/v1/models/{model}/reference",
            201,
            Body(content=body, content_type=CONTENT_TYPES[kind], params=params),
        )
    print_answer(stdout_console(), f"reference of {model}", answer)
    ctx.exit(EXIT_OK)


@reference.command("list")
@click.argument("model", callback=model_name, required=False)
@server_options
@click.pass_context
def list_references(ctx: click.Context, model: str | None, url: str, timeout: float) -> None:
    """The references of MODEL (its active one marked); without MODEL, the models."""
    console = stdout_console()
    with ApiClient(ServerAddress.of(url, timeout)) as client:
        if model is None:
            answer = as_mapping(client.json("GET", "/v1/models", 200), "GET /v1/models")
            print_answer(console, "models", answer)
            ctx.exit(EXIT_OK)
        path = f"/v1/models/{model}"
        described = as_mapping(client.json("GET", path, 200), f"GET {path}")
    summary = {
        key: described.get(key)
        for key in ("name", "active_reference", "created_at", "stored_events")
    }
    console.print(mapping_table(f"model {model}", summary, ("field", "value")))
    console.print(objects_table("references", reference_rows(described)))
    ctx.exit(EXIT_OK)


def reference_rows(described: Mapping[str, object]) -> list[dict[str, object]]:
    """One row per stored reference, newest last, the active one marked."""
    active = described.get("active_reference")
    references = described.get("references")
    rows: list[dict[str, object]] = []
    for item in references if isinstance(references, list) else []:
        if not isinstance(item, Mapping):
            continue
        columns = item.get("columns")
        rows.append(
            {
                "version": item.get("version"),
                "active": item.get("version") == active,
                "rows": item.get("rows"),
                "columns": len(columns) if isinstance(columns, Mapping) else cell("", columns),
                "uploaded_at": item.get("uploaded_at"),
                "ignored": item.get("ignored"),
            }
        )
    return rows
