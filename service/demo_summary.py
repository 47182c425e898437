"""A detection run's result as the demo prints it: the dataset verdict, then a table of
the columns and of the prediction, confidence and multivariate sections."""

from __future__ import annotations

from typing import Any


def number(value: object, digits: int = 4) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.{digits}f}"


def verdict(drifted: object, status: str = "ok") -> str:
    if status != "ok":
        return status
    if drifted is None:
        return "-"
    return "DRIFTED  <<" if drifted else "ok"


def column_rows(columns: dict[str, Any]) -> list[str]:
    header = (
        f"     {'column':<18} {'kind':<12} {'method':<17} {'score':>8} {'threshold':>10}  verdict"
    )
    rows = [header, "     " + "-" * (len(header) - 5)]
    for name, column in columns.items():
        rows.append(
            f"     {name:<18} {column['kind']:<12} {column.get('method') or '-':<17} "
            f"{number(column.get('score')):>8} {number(column.get('threshold')):>10}  "
            f"{verdict(column.get('drifted'), column.get('status', 'ok'))}"
        )
    return rows


def section_row(title: str, section: object) -> str | None:
    """A one-line verdict of a prediction, confidence or multivariate section."""
    if not isinstance(section, dict) or "score" not in section:
        return None
    method = section.get("method") or "-"
    return (
        f"     {title:<31} {method:<17} {number(section.get('score')):>8} "
        f"{number(section.get('threshold')):>10}  {verdict(section.get('drifted'))}"
    )


def summary(result: dict[str, Any]) -> str:
    window = result["window"]
    lines = [
        f"   run {result['run_id']}: status {result['status']}, "
        f"{window['events']} events in the window (at least {result['min_window_events']} needed)"
    ]
    if result["status"] != "ok":
        lines.append(f"   {result.get('error') or 'no verdict'}")
        return "\n".join(lines)
    columns = result["columns"]
    drifted = sum(1 for column in columns.values() if column.get("drifted"))
    lines.append(
        f"   dataset drift: {'YES' if result['dataset_drift'] else 'no'} - "
        f"{drifted} of {len(columns)} columns drifted, share {number(result['drifted_share'], 2)}"
        f" vs threshold {number(result['drift_share_threshold'], 2)}"
    )
    lines.extend(column_rows(columns))
    prediction = result.get("prediction", {})
    extra = [
        section_row("prediction (class mix)", prediction.get("drift")),
        section_row("confidence", prediction.get("confidence")),
        section_row("multivariate (domain AUC)", result.get("multivariate")),
    ]
    lines.extend(row for row in extra if row is not None)
    return "\n".join(lines)
