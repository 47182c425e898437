"""The report summary as a pure function of a RunResult: every value of the result is
on the page, user data is escaped, the columns come most drifted first."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

from core.results import (
    ClassificationMetrics,
    ColumnQuality,
    ColumnResult,
    DataQuality,
    Finding,
    KpiComparison,
    KpiSummary,
    MeanConfidence,
    ModelVersions,
    Multivariate,
    Performance,
    PredictionSection,
    RandomEstimate,
    RunResult,
    SchemaChanges,
    VersionComparison,
    WindowInfo,
)
from service.report_columns import by_drift, drift_ratio
from service.report_summary import summary_html, with_summary
from service.report_table import cell

HOSTILE = '<script>alert("x")</script>&'


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar in a JSON document, with where it is."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def assert_shows_every_value(run: RunResult, page: str) -> int:
    """Every scalar leaf of the run's JSON is on the page as `cell` writes it; returns how
    many leaves were checked."""
    document = run.model_dump(mode="json")
    checked = 0
    for path, value in leaves(document):
        assert cell(value) in page, f"{path} = {value!r} is not in the summary"
        checked += 1
    return checked


def column(**overrides: Any) -> ColumnResult:
    fields: dict[str, Any] = {
        "kind": "numerical",
        "method": "wasserstein",
        "method_name": "Wasserstein distance (normed)",
        "score": 0.0421,
        "threshold": 0.1,
        "drifted": False,
        "missing_share": 0.0125,
        "reference_size": 3000,
        "current_size": 812,
        "effect_size": 0.0399,
        "effect_size_floor": 0.07,
        "status": "ok",
        "note": "a note",
    }
    fields.update(overrides)
    return ColumnResult(**fields)


def full_run() -> RunResult:
    """A run with every field of every section set (no None anywhere in its JSON)."""
    metrics = ClassificationMetrics(
        accuracy=0.81, precision=0.72, recall=0.66, f1=0.69, roc_auc=0.88
    )
    return RunResult(
        run_id="1764633600000-abcd1234",
        model="credit",
        status="ok",
        trigger="schedule",
        started_at="2026-12-01T00:00:00+00:00",
        duration_seconds=3.217,
        reference_version="sha256:7e8f00",
        window=WindowInfo(
            start="2026-11-30T23:00:00+00:00", end="2026-12-01T00:00:00+00:00", events=4321
        ),
        min_window_events=200,
        dataset_drift=True,
        dataset_drift_streak=3,
        drifted_share=0.6667,
        drift_share_threshold=0.5,
        columns={
            "age": column(score=0.3137, drifted=True, effect_size=0.3137),
            HOSTILE: column(
                kind="categorical",
                method="jensenshannon",
                method_name="Jensen-Shannon distance",
                score=0.2219,
                drifted=True,
            ),
            "income": column(method="ks", method_name="K-S p_value", score=0.3414, threshold=0.05),
        },
        prediction=PredictionSection(
            drift=column(
                kind="categorical",
                method="chisquare",
                method_name="chi-square p_value",
                score=0.0012,
                threshold=0.05,
                drifted=True,
            ),
            confidence=column(score=0.1555, drifted=True),
            mean_confidence=MeanConfidence(reference=0.6131, window=0.7012),
            versions=ModelVersions(
                stable="v7",
                events={"v7": 3900, "v8-canary": 400},
                candidates={
                    "v8-canary": VersionComparison(
                        events=401,
                        prediction=column(kind="categorical", score=0.0914),
                        confidence=column(score=0.1717, drifted=True),
                    )
                },
                other_versions=2,
                other_events=21,
            ),
        ),
        performance=Performance(
            task="classification",
            labeled_events=611,
            label_coverage=0.1414,
            min_labeled_events=100,
            status="ok",
            window=metrics,
            reference=ClassificationMetrics(
                accuracy=0.93, precision=0.91, recall=0.9, f1=0.905, roc_auc=0.97
            ),
            drop=ClassificationMetrics(
                accuracy=0.12, precision=0.19, recall=0.24, f1=0.215, roc_auc=0.09
            ),
            label_drift=column(kind="categorical", score=0.0777),
            labels_from_queue=57,
            random_estimate=RandomEstimate(
                labeled_events=23, min_labeled_events=20, window=metrics
            ),
        ),
        data_quality=DataQuality(
            columns={
                "age": ColumnQuality(
                    missing_share=0.0312,
                    reference_missing_share=0.0011,
                    out_of_range_share=0.0458,
                    reference_range=(18.0, 79.0),
                    unseen_category_share=0.0,
                    unseen_categories={"MARS": 6, HOSTILE: 2},
                    type_mismatches=9,
                )
            },
            schema_changes=SchemaChanges(
                missing_columns=["channel"], new_columns={"shoe_size": 44}, omitted_new_columns=5
            ),
            findings=[
                Finding(
                    column="age",
                    check="out_of_range",
                    value=0.0458,
                    severity="warning",
                    message="4.6% out of range",
                ),
                Finding(
                    column="channel",
                    check="missing_column",
                    value=1.0,
                    severity="critical",
                    message="channel is missing",
                ),
                Finding(
                    column="shoe_size",
                    check="new_column",
                    value=44,
                    severity="info",
                    message="new field",
                ),
            ],
            worst_severity="critical",
            omitted_findings={"unseen_categories": 13},
        ),
        multivariate=Multivariate(
            status="ok", score=0.7431, threshold=0.55, drifted=True, sample_size=2000
        ),
        kpis={
            "approval_rate": KpiComparison(
                window=KpiSummary(count=3, mean=0.45, last=0.44),
                baseline=KpiSummary(count=4, mean=0.6, last=0.61),
                change=-0.15,
                relative_change=-0.25,
            )
        },
        error="none: a filled-in field for the test",
    )


def test_the_full_run_sets_every_field() -> None:
    """The fixture is what makes the next test mean something: nothing left at None."""
    nulls = [path for path, value in leaves(full_run().model_dump(mode="json")) if value is None]
    assert nulls == []


def user_keys(run: RunResult) -> list[str]:
    """The names the run keys its values by: columns, KPIs, versions, categories."""
    assert run.prediction.versions is not None
    assert run.data_quality is not None
    quality = run.data_quality
    names = [*run.columns, *run.kpis, *run.prediction.versions.events]
    names += [*run.prediction.versions.candidates, *quality.columns]
    names += [*quality.schema_changes.new_columns, *(quality.omitted_findings or {})]
    for column_quality in quality.columns.values():
        names += list(column_quality.unseen_categories or {})
    return names


def test_every_value_and_name_of_the_run_is_in_the_summary() -> None:
    run = full_run()
    page = summary_html(run)
    assert assert_shows_every_value(run, page) > 150
    names = user_keys(run)
    assert len(names) == 12
    for name in names:
        assert html.escape(name) in page, name


def test_user_data_is_escaped_and_the_page_has_no_script_or_remote_asset() -> None:
    page = summary_html(full_run())
    assert "<script" not in page.lower()
    assert html.escape(HOSTILE) in page
    assert re.search(r"(src|href)=\"(https?:)?//", page) is None


def test_columns_come_drifted_first_then_furthest_past_their_threshold() -> None:
    columns = {
        # a p-value drifts low: 0.001 against 0.05 is 50 times past it
        "pvalue": column(method="ks", score=0.001, threshold=0.05, drifted=True),
        "distance": column(score=0.3, threshold=0.1, drifted=True),  # 3 times past
        "calm": column(score=0.09, threshold=0.1, drifted=False),
        "calm_pvalue": column(method="ks", score=0.5, threshold=0.05, drifted=False),
        "unjudged": column(score=None, threshold=None, drifted=None, status="insufficient_data"),
    }
    assert [name for name, _ in by_drift(columns)] == [
        "pvalue",
        "distance",
        "calm",
        "calm_pvalue",
        "unjudged",
    ]
    assert drift_ratio(columns["pvalue"]) == 0.05 / 0.001
    assert drift_ratio(columns["unjudged"]) is None
    run = full_run().model_copy(update={"columns": columns})
    page = summary_html(run)
    positions = [page.index(f"<td>{name}</td>") for name, _ in by_drift(columns)]
    assert positions == sorted(positions)
    assert "threshold ÷ score for p-value tests" in page  # the caption says the order


def test_a_run_without_sections_says_so() -> None:
    bare = RunResult(
        run_id="1-a", model="m", status="insufficient_data", started_at="2026-01-01T00:00:00+00:00"
    )
    page = summary_html(bare)
    assert assert_shows_every_value(bare, page) > 5
    for absent in (
        "No column was compared",
        "No multivariate check",
        "No data-quality check",
        "No labels",
        "No KPIs",
    ):
        assert absent in page


def test_the_summary_goes_right_after_the_body_tag() -> None:
    report = b'<html><head><title>t</title></head><BODY class="x"><div id="r"></div></body></html>'
    combined = with_summary(report, "<section>S</section>")
    assert combined == report.replace(b'<BODY class="x">', b'<BODY class="x"><section>S</section>')
    assert with_summary(b"<p>no body</p>", "S") == b"S<p>no body</p>"
