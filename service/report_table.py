"""The building blocks of the report summary: one way to write a value (`format_value`,
which the tests use too), escaped (`cell`), and tables of such cells."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Html:
    """Markup this package wrote itself from escaped parts: put in a cell as it is."""

    markup: str


Cell = str | int | float | bool | None | Html


def format_value(value: str | int | float | bool | None) -> str:
    """How the summary writes a value: 4 significant digits, yes/no, n/a for none."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def cell(value: Cell) -> str:
    """A value as page text: formatted, then escaped (names and values are user data)."""
    if isinstance(value, Html):
        return value.markup
    return html.escape(format_value(value))


def _td(value: Cell) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td class="num">{cell(value)}</td>' if numeric else f"<td>{cell(value)}</td>"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    caption: str | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    head = "".join(f"<th>{html.escape(header)}</th>" for header in headers)
    classes = row_classes or [""] * len(rows)
    body = "".join(
        f"<tr{f' class={css!r}' if css else ''}>{''.join(_td(value) for value in row)}</tr>"
        for row, css in zip(rows, classes, strict=True)
    )
    under = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{under}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def facts(pairs: Sequence[tuple[str, Cell]]) -> str:
    """A two-column table: what, then its value."""
    rows = "".join(f"<tr><th>{html.escape(name)}</th>{_td(value)}</tr>" for name, value in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{body}"


def subsection(title: str, body: str) -> str:
    return f"<h3>{html.escape(title)}</h3>\n{body}"


def absent(what: str) -> str:
    return f"<p>{html.escape(what)}</p>"
