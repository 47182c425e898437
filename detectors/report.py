"""The Evidently HTML report of a run: ValueDrift per column, with an explicit
DataDefinition. Built only when someone asks for it."""

from __future__ import annotations

from html import escape

import pandas as pd

from core.blocks import decode_window
from core.config import EffectiveModelConfig
from core.redis_types import StreamEntry
from core.schema import ModelSchema
from detectors import evidently_compat  # noqa: F401  (warning filters before evidently)
from detectors.drift import ColumnSpec, clean_column
from detectors.evaluate import PROCESS_VIEWS, ReferencePayload, column_specs
from detectors.window import as_reference_columns


class WindowTrimmedError(LookupError):
    """The run's window events are no longer all stored."""


def report_html_for(
    payload: ReferencePayload,
    blocks: list[StreamEntry],
    schema: ModelSchema,
    config: EffectiveModelConfig,
    title: str,
    expected_events: int,
) -> str:
    """The report of one run, from its window's stream blocks and the same reference
    sample the run compared with. Runs in the worker."""
    window = decode_window(blocks, config.window_max_events)
    if len(window) < expected_events:
        raise WindowTrimmedError(f"{len(window)} of the run's {expected_events} events remain")
    view = PROCESS_VIEWS.get(payload, schema, config.reference_max_rows)
    current = as_reference_columns(window, schema)
    return build_report_html(view.frame, current, column_specs(schema, config), title)


def build_report_html(
    reference: pd.DataFrame, current: pd.DataFrame, specs: list[ColumnSpec], title: str
) -> str:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    usable = [
        spec
        for spec in specs
        if spec.name in current
        and not clean_column(current[spec.name], spec.kind).empty
        and not clean_column(reference[spec.name], spec.kind).empty
    ]
    names = [spec.name for spec in usable]
    definition = DataDefinition(
        numerical_columns=[spec.name for spec in usable if spec.kind == "numerical"],
        categorical_columns=[spec.name for spec in usable if spec.kind == "categorical"],
    )
    metrics = [
        ValueDrift(column=spec.name, method=spec.method, threshold=spec.threshold)
        for spec in usable
    ]
    report = Report(metrics)
    snapshot = report.run(
        Dataset.from_pandas(_typed(current[names], usable), data_definition=definition),
        Dataset.from_pandas(_typed(reference[names], usable), data_definition=definition),
    )
    html: str = snapshot.get_html_str(as_iframe=False)
    return with_title(html, title)


def with_title(page: str, title: str) -> str:
    """Evidently's page has no <title> of its own (the first "<title>" in it is a plotly
    logo's, inside a script): one goes first in its head."""
    tag = f"<title>{escape(title)}</title>"
    return page.replace("<head>", f"<head>{tag}", 1) if "<head>" in page else tag + page


def _typed(frame: pd.DataFrame, specs: list[ColumnSpec]) -> pd.DataFrame:
    """Numerical columns as float, categorical as text; Evidently rejects mixed types."""
    out = frame.copy()
    for spec in specs:
        if spec.kind == "numerical":
            out[spec.name] = pd.to_numeric(out[spec.name], errors="coerce").astype("float64")
        else:
            out[spec.name] = out[spec.name].astype("object").where(out[spec.name].notna(), None)
    return out
