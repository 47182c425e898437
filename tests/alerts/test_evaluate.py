"""Each rule kind's verdict on a run: bad, good and unknown, per column where it applies,
capped, and with summaries that never quote a feature value."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from alerts.evaluate import RunContext, evaluate
from core.alert_config import AlertRule
from core.alerts import Observation
from core.results import (
    ClassificationMetrics,
    ColumnQuality,
    ColumnResult,
    DataQuality,
    Finding,
    KpiComparison,
    KpiSummary,
    ModelVersions,
    Multivariate,
    Performance,
    PredictionSection,
    RegressionMetrics,
    RunResult,
    VersionComparison,
)

NOW = 1_800_000_000.0
HOUR = 3600.0
CONTEXT = RunContext(now=NOW, schedule_seconds=HOUR, last_ok_at=NOW, monitored_since=NOW - 1e6)
RULE = TypeAdapter[AlertRule](AlertRule)


def rule(kind: str, **fields: object) -> AlertRule:
    return RULE.validate_python({"name": f"{kind}-rule", "kind": kind, **fields})


def run(status: str = "ok", /, **fields: object) -> RunResult:
    return RunResult.model_validate(
        {"run_id": "r1", "model": "m", "status": status, "started_at": "2027-01-15T08:00:00Z"}
        | fields
    )


def drift(
    drifted: bool | None,
    score: float = 0.3,
    status: str = "ok",
    effect_size: float | None = None,
) -> ColumnResult:
    return ColumnResult.model_validate(
        {
            "kind": "numerical",
            "method": "psi",
            "score": score,
            "threshold": 0.1,
            "drifted": drifted,
            "status": status,
            "effect_size": effect_size,
        }
    )


def observe(
    alert_rule: AlertRule, result: RunResult, context: RunContext = CONTEXT
) -> list[Observation]:
    pairs = evaluate([alert_rule], result, context)
    assert all(pair.rule is alert_rule for pair in pairs)
    return [pair.observation for pair in pairs]


def only(alert_rule: AlertRule, result: RunResult, context: RunContext = CONTEXT) -> Observation:
    (observation,) = observe(alert_rule, result, context)
    assert observation.rule == alert_rule.name
    return observation


def verdicts(observations: list[Observation]) -> dict[str | None, str]:
    return {o.column: o.verdict for o in observations}


# --- drift ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "verdict", "value"),
    [
        ({"dataset_drift": True, "drifted_share": 0.5, "drift_share_threshold": 0.3}, "bad", 0.5),
        ({"dataset_drift": False, "drifted_share": 0.1, "drift_share_threshold": 0.3}, "good", 0.1),
        ({}, "unknown", None),
    ],
)
def test_dataset_drift(fields: dict[str, object], verdict: str, value: float | None) -> None:
    observation = only(rule("dataset_drift"), run(**fields))
    assert (observation.verdict, observation.value) == (verdict, value)
    if verdict != "unknown":
        assert observation.threshold == 0.3
        assert observation.summary == (
            f"dataset drift: {value:.1%} of columns drifted (threshold 30.0%)"
        )


@pytest.mark.parametrize(
    ("columns", "verdict"),
    [
        ({"age": drift(True, score=0.31)}, "bad"),
        ({"age": drift(False, score=0.02)}, "good"),
        ({"age": drift(None, status="insufficient_data")}, "unknown"),
        ({"age": drift(None, status="error")}, "unknown"),
        ({"income": drift(True)}, "unknown"),  # not in the run
    ],
)
def test_a_named_column(columns: dict[str, ColumnResult], verdict: str) -> None:
    observation = only(rule("column_drift", column="age"), run(columns=columns))
    assert (observation.column, observation.verdict) == ("age", verdict)


def test_a_drifted_column_says_what_and_by_how_much() -> None:
    observation = only(rule("column_drift", column="age"), run(columns={"age": drift(True, 0.31)}))
    assert (observation.value, observation.threshold) == (0.31, 0.1)
    assert observation.summary == "column age drifted: psi 0.31 (threshold 0.1)"


def test_every_column_gives_one_observation_each() -> None:
    columns = {"age": drift(True), "income": drift(False), "zip": drift(None, status="error")}
    observations = observe(rule("column_drift", column="*"), run(columns=columns))
    assert verdicts(observations) == {"age": "bad", "income": "good", "zip": "unknown"}
    assert [o.column for o in observations] == ["age", "income", "zip"]  # most drifted first


def test_every_column_is_capped_keeping_the_most_drifted() -> None:
    columns = {
        "a": drift(True, score=0.2),
        "b": drift(True, score=0.9),
        # a p-value method: a small score, ranked by its effect size
        "c": drift(True, score=0.001, effect_size=0.5),
        "d": drift(True, score=0.15),
        "e": drift(False, score=0.01),
    }
    context = RunContext(NOW, HOUR, max_columns=2)
    observations = observe(rule("column_drift", column="*"), run(columns=columns), context)
    assert verdicts(observations) == {"b": "bad", "c": "bad", "e": "good"}


def test_alerting_columns_are_never_capped_out_and_take_their_slots() -> None:
    columns = {"a": drift(True, 0.9), "b": drift(True, 0.8), "c": drift(True, 0.2)}
    context = RunContext(
        NOW, HOUR, max_columns=2, alerting_columns={"column_drift-rule": frozenset({"c"})}
    )
    observations = observe(rule("column_drift", column="*"), run(columns=columns), context)
    assert verdicts(observations) == {"a": "bad", "c": "bad"}


def test_an_alerting_column_gone_from_the_run_is_unknown() -> None:
    context = RunContext(NOW, HOUR, alerting_columns={"column_drift-rule": frozenset({"old"})})
    observations = observe(
        rule("column_drift", column="*"), run(columns={"a": drift(False)}), context
    )
    assert verdicts(observations) == {"a": "good", "old": "unknown"}


@pytest.mark.parametrize(
    ("kind", "part"), [("prediction_drift", "drift"), ("confidence_drift", "confidence")]
)
@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (drift(True), "bad"),
        (drift(False), "good"),
        (drift(None, status="insufficient_data"), "unknown"),
        (None, "unknown"),
    ],
)
def test_prediction_and_confidence_drift(
    kind: str, part: str, result: ColumnResult | None, verdict: str
) -> None:
    prediction = PredictionSection.model_validate({part: result} if result else {})
    other = "confidence" if part == "drift" else "drift"
    # the other part drifted: the rule must read its own
    prediction = prediction.model_copy(update={other: drift(True)})
    observation = only(rule(kind), run(prediction=prediction))
    assert (observation.verdict, observation.column) == (verdict, None)


@pytest.mark.parametrize(
    ("multivariate", "verdict"),
    [
        (
            Multivariate(status="ok", score=0.81, threshold=0.7, drifted=True, sample_size=500),
            "bad",
        ),
        (
            Multivariate(status="ok", score=0.52, threshold=0.7, drifted=False, sample_size=500),
            "good",
        ),
        (Multivariate(status="insufficient_data", sample_size=12), "unknown"),
        (None, "unknown"),
    ],
)
def test_multivariate_shift(multivariate: Multivariate | None, verdict: str) -> None:
    observation = only(rule("multivariate_shift"), run(multivariate=multivariate))
    assert observation.verdict == verdict
    if multivariate is not None and multivariate.score is not None:
        assert (observation.value, observation.threshold) == (multivariate.score, 0.7)


# --- data quality --------------------------------------------------------------------------


def finding(column: str, check: str, value: float, severity: str, message: str = "") -> Finding:
    return Finding.model_validate(
        {"column": column, "check": check, "value": value, "severity": severity, "message": message}
    )


def quality(*findings: Finding, columns: tuple[str, ...] = (), **fields: object) -> DataQuality:
    stats = ColumnQuality(missing_share=0.0, reference_missing_share=0.0)
    return DataQuality.model_validate(
        {"columns": dict.fromkeys(columns, stats), "findings": list(findings)} | fields
    )


QUALITY = quality(
    finding("income", "missing_values", 0.3, "critical"),
    finding("income", "unseen_categories", 0.05, "warning"),
    finding("region", "unseen_categories", 0.004, "info"),
    finding("shoe_size", "new_column", 7, "warning"),
    columns=("age", "income", "region"),
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # unknown fields make one alert of the rule (column None), whatever their names
        ({}, {"income": "bad", None: "bad", "region": "good", "age": "good"}),
        (
            {"min_severity": "info"},
            {"income": "bad", None: "bad", "region": "bad", "age": "good"},
        ),
        (
            {"min_severity": "critical"},
            {"income": "bad", "region": "good", "age": "good"},
        ),
        (
            {"checks": ["new_column"]},
            {"income": "good", None: "bad", "region": "good", "age": "good"},
        ),
        (
            {"checks": ["unseen_categories"], "min_severity": "info"},
            {"income": "bad", "region": "bad", "age": "good"},
        ),
    ],
)
def test_data_quality_is_per_column(
    fields: dict[str, object], expected: dict[str | None, str]
) -> None:
    observations = observe(rule("data_quality", **fields), run(data_quality=QUALITY))
    assert verdicts(observations) == expected


def test_run_columns_without_findings_are_good_so_alerts_resolve() -> None:
    observations = observe(
        rule("data_quality"), run(columns={"tenure": drift(False)}, data_quality=quality())
    )
    assert verdicts(observations) == {"tenure": "good", None: "good"}


def test_a_bad_column_carries_its_worst_finding_and_every_check() -> None:
    observations = observe(rule("data_quality"), run(data_quality=QUALITY))
    income = next(o for o in observations if o.column == "income")
    assert income.value == 0.3
    assert income.summary == (
        "data quality of income: missing_values 30.0% (critical), unseen_categories 5.0% (warning)"
    )
    unknown_fields = next(o for o in observations if o.column is None)
    assert unknown_fields.summary == "records carry 1 field(s) the schema does not know (7 records)"


def test_data_quality_summaries_never_quote_the_finding_messages() -> None:
    leaky = finding("email", "unseen_categories", 0.2, "critical", "email: saw alice@example.com")
    observations = observe(rule("data_quality"), run(data_quality=quality(leaky)))
    (observation,) = [o for o in observations if o.column == "email"]
    assert observation.verdict == "bad"
    assert "alice" not in observation.summary


def test_unknown_fields_make_one_alert_however_many_and_clean_columns_stay() -> None:
    """Their names come from payloads: never an alert (and a metric label) each."""
    many = [finding(f"field{index:02d}", "new_column", index, "warning") for index in range(30)]
    severe = finding("income", "missing_values", 0.3, "critical")
    data = quality(*many, severe, columns=("age", "income"), omitted_findings={"new_column": 12})
    context = RunContext(NOW, HOUR, max_columns=5)
    observations = observe(rule("data_quality"), run(data_quality=data), context)
    bad = [o for o in observations if o.verdict == "bad"]
    assert [o.column for o in bad] == ["income", None]
    assert bad[1].value == 42  # 30 listed, 12 left out by the detector's cap
    assert "field0" not in bad[1].summary
    assert verdicts(observations)["age"] == "good"


def test_findings_hidden_by_the_detectors_cap_make_clean_columns_unknown() -> None:
    kept = finding("income", "missing_values", 0.3, "critical")
    capped = quality(kept, columns=("age", "income"), omitted_findings={"missing_values": 4})
    observations = observe(rule("data_quality"), run(data_quality=capped))
    assert verdicts(observations) == {"income": "bad", "age": "unknown", None: "good"}


def test_findings_hidden_below_the_rules_severity_do_not_matter() -> None:
    kept = finding("income", "missing_values", 0.07, "warning")
    capped = quality(kept, columns=("age", "income"), omitted_findings={"missing_values": 4})
    observations = observe(rule("data_quality", min_severity="critical"), run(data_quality=capped))
    assert verdicts(observations) == {"income": "good", "age": "good"}


def test_a_run_without_a_data_quality_section_is_unknown_per_column() -> None:
    observations = observe(rule("data_quality"), run(columns={"age": drift(True)}))
    assert verdicts(observations) == {"age": "unknown"}


# --- performance ---------------------------------------------------------------------------


def performance(window: object, reference: object = None, status: str = "ok") -> Performance:
    task = "regression" if isinstance(window, RegressionMetrics) else "classification"
    return Performance.model_validate(
        {
            "task": task,
            "labeled_events": 500,
            "label_coverage": 0.5,
            "min_labeled_events": 100,
            "status": status,
            "window": window,
            "reference": reference,
        }
    )


def classification(accuracy: float, roc_auc: float | None = None) -> ClassificationMetrics:
    return ClassificationMetrics(
        accuracy=accuracy, precision=0.8, recall=0.8, f1=0.8, roc_auc=roc_auc
    )


def regression(mae: float) -> RegressionMetrics:
    return RegressionMetrics(mae=mae, rmse=mae * 1.5, mean_error=0.0)


@pytest.mark.parametrize(
    ("bounds", "section", "verdict", "value"),
    [
        ({"below": 0.8}, performance(classification(0.75)), "bad", 0.75),
        ({"below": 0.8}, performance(classification(0.85)), "good", 0.85),
        ({"above": 2.0, "metric": "mae"}, performance(regression(2.5)), "bad", 2.5),
        ({"above": 2.0, "metric": "mae"}, performance(regression(1.5)), "good", 1.5),
        # a drop of 10% or more against the reference
        (
            {"max_drop": 0.1},
            performance(classification(0.8), classification(0.9)),
            "bad",
            pytest.approx(1 / 9),
        ),
        (
            {"max_drop": 0.2},
            performance(classification(0.8), classification(0.9)),
            "good",
            pytest.approx(1 / 9),
        ),
        # at the bound is bad
        ({"max_drop": 0.25}, performance(classification(0.75), classification(1.0)), "bad", 0.25),
        # an error metric's drop is a rise
        (
            {"max_drop": 0.2, "metric": "mae"},
            performance(regression(1.5), regression(1.0)),
            "bad",
            0.5,
        ),
        (
            {"max_drop": 0.2, "metric": "mae"},
            performance(regression(0.5), regression(1.0)),
            "good",
            -0.5,
        ),
        ({"max_drop": 0.1}, performance(classification(0.8)), "unknown", None),  # no reference
        ({"below": 0.8}, performance(None, status="insufficient_labels"), "unknown", None),
        ({"below": 0.8}, None, "unknown", None),
        ({"below": 0.8, "metric": "roc_auc"}, performance(classification(0.8)), "unknown", None),
        ({"below": 0.8, "metric": "mae"}, performance(classification(0.8)), "unknown", None),
        # three-valued: a crossed bound is bad even when another cannot be judged ...
        ({"below": 0.8, "max_drop": 0.1}, performance(classification(0.7)), "bad", 0.7),
        # ... and an unjudged bound keeps a held one from saying good
        ({"below": 0.8, "max_drop": 0.1}, performance(classification(0.9)), "unknown", None),
    ],
)
def test_performance(
    bounds: dict[str, object], section: Performance | None, verdict: str, value: object
) -> None:
    alert_rule = rule("performance", **({"metric": "accuracy"} | bounds))
    observation = only(alert_rule, run(performance=section))
    assert (observation.verdict, observation.value) == (verdict, value)


def test_a_performance_drop_says_how_much() -> None:
    section = performance(classification(0.72), classification(0.9))
    observation = only(
        rule("performance", metric="accuracy", max_drop=0.1), run(performance=section)
    )
    assert observation.threshold == 0.1
    assert observation.summary == "accuracy 0.72 vs reference 0.9: 20.0% worse (max_drop 10.0%)"


# --- KPIs ----------------------------------------------------------------------------------


def kpi(mean: float | None, relative_change: float | None = None) -> KpiComparison:
    return KpiComparison(
        window=KpiSummary(count=0 if mean is None else 10, mean=mean),
        baseline=KpiSummary(count=10, mean=100.0),
        relative_change=relative_change,
    )


@pytest.mark.parametrize(
    ("bounds", "comparison", "verdict", "value"),
    [
        ({"below": 50.0}, kpi(40.0), "bad", 40.0),
        ({"below": 50.0}, kpi(60.0), "good", 60.0),
        ({"above": 50.0}, kpi(60.0), "bad", 60.0),
        ({"max_change": 0.2}, kpi(70.0, -0.3), "bad", 0.3),
        ({"max_change": 0.2}, kpi(125.0, 0.25), "bad", 0.25),
        ({"max_change": 0.2}, kpi(110.0, 0.1), "good", 0.1),
        ({"max_change": 0.25}, kpi(75.0, -0.25), "bad", 0.25),  # "at least": the bound is bad
        ({"max_change": 0.2}, kpi(110.0, None), "unknown", None),
        ({"below": 50.0, "max_change": 0.2}, kpi(40.0, None), "bad", 40.0),
        ({"below": 50.0}, kpi(None), "unknown", None),
        ({"below": 50.0}, None, "unknown", None),
    ],
)
def test_kpi(
    bounds: dict[str, object], comparison: KpiComparison | None, verdict: str, value: float | None
) -> None:
    kpis = {"revenue": comparison} if comparison is not None else {}
    observation = only(rule("kpi", kpi="revenue", **bounds), run(kpis=kpis))
    assert (observation.verdict, observation.value) == (verdict, value)


# --- model versions ------------------------------------------------------------------------


def versions(**candidates: tuple[int, bool | None]) -> PredictionSection:
    compared = {
        name: VersionComparison(events=events, prediction=drift(drifted, score=events / 1000))
        for name, (events, drifted) in candidates.items()
    }
    return PredictionSection(
        versions=ModelVersions(stable="v1", events={"v1": 1000}, candidates=compared)
    )


@pytest.mark.parametrize(
    ("prediction", "verdict", "value"),
    [
        (versions(v2=(300, True), v3=(200, False)), "bad", 0.3),
        (versions(v2=(100, True), v3=(400, True)), "bad", 0.4),  # the busiest speaks
        (versions(v2=(300, False), v3=(200, None)), "good", None),
        (versions(v2=(300, None)), "unknown", None),
        (versions(), "unknown", None),
        (PredictionSection(), "unknown", None),
    ],
)
def test_model_versions(prediction: PredictionSection, verdict: str, value: float | None) -> None:
    observation = only(rule("model_versions"), run(prediction=prediction))
    assert (observation.verdict, observation.value) == (verdict, value)


def test_a_disagreeing_version_is_named() -> None:
    observation = only(
        rule("model_versions"), run(prediction=versions(v2=(100, True), v3=(400, True)))
    )
    assert observation.summary.startswith("version v3 disagrees with stable v1: psi 0.4")
    assert observation.summary.endswith("1 more version(s) disagree")


# --- monitor stale -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "last_ok_at", "monitored_since", "schedule", "verdict"),
    [
        ("ok", None, None, HOUR, "good"),
        ("error", NOW - 2 * HOUR, NOW - 1e6, HOUR, "unknown"),
        ("error", NOW - 3 * HOUR, NOW - 1e6, HOUR, "bad"),  # 3 intervals, the default
        ("insufficient_data", NOW - 5 * HOUR, None, HOUR, "bad"),
        # never an ok run: counted from when the model was first seen
        ("insufficient_data", None, NOW - 3 * HOUR, HOUR, "bad"),
        ("error", None, NOW - 2 * HOUR, HOUR, "unknown"),
        ("error", None, None, HOUR, "unknown"),
        ("error", NOW - 5 * HOUR, None, 0.0, "unknown"),  # no schedule: no interval to miss
    ],
)
def test_monitor_stale(
    status: str,
    last_ok_at: float | None,
    monitored_since: float | None,
    schedule: float,
    verdict: str,
) -> None:
    context = RunContext(NOW, schedule, last_ok_at=last_ok_at, monitored_since=monitored_since)
    observation = only(rule("monitor_stale"), run(status), context)
    assert observation.verdict == verdict


def test_a_stale_monitor_says_for_how_long() -> None:
    context = RunContext(NOW, HOUR, last_ok_at=NOW - 3.5 * HOUR)
    observation = only(rule("monitor_stale", intervals=2), run("error"), context)
    assert (observation.value, observation.threshold) == (3.5 * HOUR, 2 * HOUR)
    assert observation.summary == "no ok run for 3h 30m (limit 2 intervals); latest run error"


def test_rules_are_observed_in_order_with_their_rule() -> None:
    rules = [rule("dataset_drift"), rule("monitor_stale")]
    pairs = evaluate(rules, run(dataset_drift=True), CONTEXT)
    assert [(pair.rule.kind, pair.observation.verdict) for pair in pairs] == [
        ("dataset_drift", "bad"),
        ("monitor_stale", "good"),
    ]


# --- runs that are not ok ------------------------------------------------------------------

CANARY_AND_OUTPUTS_DRIFTED = versions(v2=(100, True)).model_copy(
    update={"drift": drift(True), "confidence": drift(True)}
)
EVERY_KIND_BAD = run(
    dataset_drift=True,
    drifted_share=0.5,
    drift_share_threshold=0.3,
    columns={"age": drift(True)},
    multivariate=Multivariate(status="ok", score=0.9, threshold=0.7, drifted=True, sample_size=9),
    performance=performance(classification(0.5)),
    kpis={"revenue": kpi(1.0)},
).model_copy(update={"prediction": CANARY_AND_OUTPUTS_DRIFTED})
RULES_BUT_STALE = [
    rule("dataset_drift"),
    rule("column_drift", column="age"),
    rule("prediction_drift"),
    rule("confidence_drift"),
    rule("multivariate_shift"),
    rule("performance", metric="accuracy", below=0.9),
    rule("kpi", kpi="revenue", below=10.0),
    rule("model_versions"),
]


@pytest.mark.parametrize("status", ["error", "insufficient_data"])
@pytest.mark.parametrize("alert_rule", RULES_BUT_STALE, ids=lambda r: r.kind)
def test_a_run_that_is_not_ok_is_unknown_to_every_rule(status: str, alert_rule: AlertRule) -> None:
    assert only(alert_rule, EVERY_KIND_BAD).verdict != "unknown"  # the same run when ok
    observation = only(alert_rule, EVERY_KIND_BAD.model_copy(update={"status": status}))
    assert observation.verdict == "unknown"
    assert status in observation.summary


@pytest.mark.parametrize("kind", ["data_quality", "column_drift"])
def test_per_column_rules_on_a_failed_run_are_unknown_per_known_column(kind: str) -> None:
    failed = run("error", columns={"age": drift(True), "income": drift(False)})
    context = RunContext(NOW, HOUR, alerting_columns={f"{kind}-rule": frozenset({"zip"})})
    observations = observe(
        rule(kind, column="*") if kind == "column_drift" else rule(kind), failed, context
    )
    assert verdicts(observations) == {"age": "unknown", "income": "unknown", "zip": "unknown"}


def test_a_named_column_rule_on_a_failed_run_keeps_its_column() -> None:
    observation = only(rule("column_drift", column="age"), run("error"))
    assert (observation.column, observation.verdict) == ("age", "unknown")
