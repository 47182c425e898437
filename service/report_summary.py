"""The summary page that opens a run's HTML report: everything the RunResult holds, as
plain HTML and CSS (no scripts, no external assets), before Evidently's own sections.

Every value and every name is user data as far as this module knows (column names, KPI
names, model versions, categories come from uploads): each goes through `cell`, which
formats it with `format_value` and escapes it. Nothing else writes text into the page."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import quote

from core.results import RunResult
from service.report_columns import columns_section
from service.report_sections import (
    data_quality_section,
    kpis_section,
    multivariate_section,
    outputs_section,
    performance_section,
)
from service.report_table import Cell, cell, facts, section

PLOT_RUNS = 30
BODY_TAG = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
STYLE = """<style>
#driftmon-summary{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
 color:#1d2330;max-width:1200px;margin:16px auto;padding:0 16px}
#driftmon-summary h1{font-size:22px;margin:8px 0}
#driftmon-summary h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #d8dce5}
#driftmon-summary h3{font-size:15px;margin:14px 0 4px}
#driftmon-summary table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
#driftmon-summary caption{caption-side:bottom;text-align:left;color:#5a6275;
 font-size:12px;padding-top:4px;max-width:900px}
#driftmon-summary th,#driftmon-summary td{border:1px solid #d8dce5;padding:3px 8px;
 text-align:left;vertical-align:top}
#driftmon-summary th{background:#f2f4f8}
#driftmon-summary td:last-child{min-width:14em}
#driftmon-summary td.num{text-align:right;font-variant-numeric:tabular-nums}
#driftmon-summary .verdict{padding:8px 12px;border-radius:4px;font-weight:600}
#driftmon-summary .drift{background:#fde2e1;color:#8c1d18}
#driftmon-summary .calm{background:#e3f4e6;color:#1e5b2a}
#driftmon-summary .unknown{background:#eef0f4;color:#3a4152}
#driftmon-summary tr.drifted td{background:#fff3f2}
#driftmon-summary img{max-width:100%;border:1px solid #d8dce5}
#driftmon-summary .evidently{margin-top:28px;color:#5a6275}
</style>"""


def verdict(run: RunResult) -> str:
    drifted = sum(1 for column in run.columns.values() if column.drifted)
    judged = sum(1 for column in run.columns.values() if column.drifted is not None)
    if run.dataset_drift is None:
        css, headline = "unknown", "No dataset-drift verdict"
    elif run.dataset_drift:
        css, headline = "drift", "Dataset drift"
    else:
        css, headline = "calm", "No dataset drift"
    detail = (
        f"{headline}: {drifted} of {judged} judged columns drifted; drifted share "
        f"{cell(run.drifted_share)} against a threshold of {cell(run.drift_share_threshold)}"
    )
    return f'<p class="verdict {css}">{detail}</p>'


def overview(run: RunResult) -> str:
    window = run.window
    pairs: list[tuple[str, Cell]] = [
        ("model", run.model),
        ("run id", run.run_id),
        ("status", run.status),
        ("trigger", run.trigger),
        ("started at", run.started_at),
        ("duration (seconds)", run.duration_seconds),
        ("reference version", run.reference_version),
        ("window start", window.start),
        ("window end", window.end),
        ("window events", window.events),
        ("min window events", run.min_window_events),
        ("dataset drift", run.dataset_drift),
        ("drifted share", run.drifted_share),
        ("drift share threshold", run.drift_share_threshold),
        ("dataset drift streak (runs)", run.dataset_drift_streak),
    ]
    if run.error is not None:
        pairs.append(("error", run.error))
    return facts(pairs)


def history_picture(run: RunResult) -> str:
    """The model's recent runs, drawn by the plot route: a link relative to the report,
    so it works behind any prefix, from the run's report and from the latest-run one."""
    src = html.escape(f"../{quote(run.run_id, safe='')}/plot.png?last={PLOT_RUNS}")
    alt = f"drift scores of the last {PLOT_RUNS} runs of {run.model} against their thresholds"
    image = f'<a href="{src}"><img src="{src}" alt="{html.escape(alt)}" loading="lazy"></a>'
    return section("Drift history", image)


def summary_html(run: RunResult) -> str:
    """The summary section of a run's report, with its own style."""
    parts: Sequence[str] = (
        STYLE,
        '<section id="driftmon-summary">',
        f"<h1>Drift report: {cell(run.model)} · run {cell(run.run_id)}</h1>",
        verdict(run),
        overview(run),
        columns_section(run),
        outputs_section(run),
        multivariate_section(run.multivariate),
        data_quality_section(run.data_quality),
        performance_section(run.performance),
        kpis_section(run.kpis),
        history_picture(run),
        '<h2 class="evidently">Evidently: the column-by-column sections</h2>',
        "</section>",
    )
    return "\n".join(parts)


def with_summary(report: bytes, summary: str) -> bytes:
    """The report with the summary right after its <body> tag (Evidently renders into
    a div of its own, so what comes before it stays put); at the top when it has none."""
    encoded = summary.encode()
    found = BODY_TAG.search(report)
    if found is None:
        return encoded + report
    return report[: found.end()] + encoded + report[found.end() :]
