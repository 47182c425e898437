"""What the `driftmon` commands share: the input-error exception (exit 2), and rich
rendering of a JSON answer (scalars as a key/value table, flat maps and lists of objects
as tables of their own)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import click
import orjson
from rich.console import Console
from rich.table import Table

# exit codes scripts can rely on (README "Command line")
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2

# a nested value longer than this as JSON is summarised by its size in a table cell
MAX_CELL_JSON = 40
# table cells up to this long (a time, a count) are never wrapped
SHORT_CELL = 30


class CommandError(click.ClickException):
    """A bad file, flag value or server answer: one line on stderr, exit 2 (click's
    own usage errors exit 2 too, so 2 always means "the input was wrong")."""

    exit_code = EXIT_INPUT

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"driftmon: {self.message}", file=file, err=file is None)


def stdout_console() -> Console:
    # soft_wrap: a long version hash or path stays on one line, copyable
    return Console(soft_wrap=True)


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def cell(key: str, value: object) -> str:
    """One value as table text: epoch times of `*_at` keys as UTC, nested values as
    compact JSON, or their size when that would be long."""
    if value is None or (isinstance(value, Mapping | list) and not value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_at") and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    if isinstance(value, Mapping | list):
        text = orjson.dumps(value).decode()
        return text if len(text) <= MAX_CELL_JSON else f"{len(value)} entries"
    return str(value)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _scalar_list(value: object) -> bool:
    return isinstance(value, list) and all(_is_scalar(item) for item in value)


def _objects(value: object) -> list[Mapping[str, object]] | None:
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        return list(value)
    return None


def objects_table(title: str, rows: Sequence[Mapping[str, object]]) -> Table:
    """Rows of objects as a table; its columns are every key, in first-seen order. Long
    values (version hashes) fold over lines, whole, so that they can be copied; the
    short ones keep to one line."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    texts = [[cell(column, row.get(column)) for column in columns] for row in rows]
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        longest = max(len(line[index]) for line in texts)
        table.add_column(column, overflow="fold", no_wrap=longest <= SHORT_CELL)
    for line in texts:
        table.add_row(*line)
    return table


def mapping_table(title: str, values: Mapping[str, object], headers: tuple[str, str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(headers[0], overflow="fold")
    table.add_column(headers[1], overflow="fold")
    for key, value in values.items():
        table.add_row(str(key), cell(str(key), value))
    return table


def answer_tables(title: str, answer: Mapping[str, object]) -> list[Table]:
    """A JSON answer whatever its keys: its scalars (and lists of them) first, then a
    table for each flat map (e.g. columns to kinds) and each list of objects."""
    scalars = {
        key: ", ".join(map(str, value)) if isinstance(value, list) else value
        for key, value in answer.items()
        if _is_scalar(value) or _scalar_list(value)
    }
    tables = [mapping_table(title, scalars, ("field", "value"))] if scalars else []
    for key, value in answer.items():
        rows = _objects(value)
        if rows is not None:
            tables.append(objects_table(key, rows))
        elif isinstance(value, Mapping) and value:
            tables.append(mapping_table(key, value, ("name", "value")))
    return tables


def print_answer(console: Console, title: str, answer: object) -> None:
    if not isinstance(answer, Mapping):
        console.print(cell("", answer))
        return
    for table in answer_tables(title, answer):
        console.print(table)
