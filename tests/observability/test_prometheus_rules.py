"""Prometheus config and alerting rules: promtool checks and unit tests, and metric names
that a live scrape of the app really has."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.fixtures_app import Harness
from tests.observability.scrape import (
    REPO,
    assert_all_exported,
    live_scrape,
    metric_names,
    run_promtool,
)

CONFIG = "deploy/prometheus/prometheus.yml"
RULES = "deploy/prometheus/rules/driftmon.rules.yml"
RULE_TESTS = "deploy/prometheus/tests/driftmon.rules.test.yml"
REPORT = "http://driftmon:8000/v1/models/{{ $labels.model }}/runs/latest/report"
ALERTS = {
    "DriftmonDown",
    "DriftmonTargetMissing",
    "DriftmonDatasetDrift",
    "DriftmonMonitorStale",
    "DriftmonIntakeStopped",
    "DriftmonStreamLagHigh",
    "DriftmonDeadLettersGrowing",
    "DriftmonInsufficientData",
    "DriftmonAlertDeliveryFailing",
    "DriftmonAlertOutboxBacklog",
}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((REPO / RULES).read_text())
    [group] = document["groups"]
    assert group["name"] == "driftmon"
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def test_promtool_check_config() -> None:
    run_promtool("check", "config", CONFIG)


def rule(name: str) -> dict[str, Any]:
    [found] = [rule for rule in alert_rules() if rule["alert"] == name]
    return found


def test_promtool_check_rules() -> None:
    run_promtool("check", "rules", RULES)


def test_promtool_test_rules() -> None:
    run_promtool("test", "rules", RULE_TESTS)


def test_every_alert_has_severity_summary_description_and_a_report_per_model() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        if "by (model)" in rule["expr"]:
            assert rule["annotations"]["report"] == REPORT, rule["alert"]


def test_every_alert_has_unit_tests() -> None:
    tests = yaml.safe_load((REPO / RULE_TESTS).read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in ALERTS:
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert} never expected to fire"
        assert any(not case["exp_alerts"] for case in mine), f"{alert} never expected silent"
        for case in mine:
            for expected in case["exp_alerts"]:
                assert expected["exp_labels"]["severity"], alert
                assert expected["exp_annotations"]["summary"], alert


async def test_rules_use_only_exported_metrics(harness: Harness) -> None:
    scrape = await live_scrape(harness)
    assert_all_exported(metric_names(rule["expr"] for rule in alert_rules()), scrape)


def test_down_and_missing_rules_match_the_scrape_job() -> None:
    config = yaml.safe_load((REPO / CONFIG).read_text())
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert "driftmon" in jobs
    for name in ("DriftmonDown", "DriftmonTargetMissing"):
        expr = rule(name)["expr"]
        [pattern] = re.findall(r'up\{job=~"([^"]+)"\}', expr)
        assert [job for job in jobs if re.fullmatch(pattern, job)] == ["driftmon"], name
    assert rule("DriftmonTargetMissing")["expr"].startswith("absent(")


def test_monitor_stale_covers_models_that_never_had_a_successful_run() -> None:
    expr = rule("DriftmonMonitorStale")["expr"]
    assert "driftmon_last_successful_run_timestamp_seconds" in expr
    assert "driftmon_model_created_timestamp_seconds" in expr
    tests = yaml.safe_load((REPO / RULE_TESTS).read_text())["tests"]
    inputs = [
        series["series"]
        for test in tests
        if any(case["alertname"] == "DriftmonMonitorStale" for case in test["alert_rule_test"])
        for series in test["input_series"]
    ]
    never_ok = {
        model
        for model in re.findall(r'model="(\w+)"', " ".join(inputs))
        if not any(
            f'model="{model}"' in series and series.startswith("driftmon_last_successful")
            for series in inputs
        )
    }
    assert never_ok, "no promtool test of a model that never had an ok run"
