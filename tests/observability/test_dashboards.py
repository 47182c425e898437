"""Grafana dashboards and provisioning: structure, PromQL that promtool accepts, and
metric names that a live scrape of the app really has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures_app import Harness
from tests.observability.scrape import (
    DATASOURCE_UID,
    REPO,
    assert_all_exported,
    live_scrape,
    metric_names,
    run_promtool,
)

DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
PROVISIONING = REPO / "grafana" / "provisioning"
# concrete values for Grafana's variables, so that promtool can parse the expressions
VALUES = {
    "model": "credit",
    "driftmon_url": "http://localhost:8000",
    "__rate_interval": "2m",
    "__interval": "30s",
    "__range": "24h",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
REPORT_LINK = "${driftmon_url}/v1/models/${model}/runs/latest/report"
# every panel and query names the data source through the `datasource` variable, so an
# imported copy works with any Prometheus; provisioned, it defaults to DATASOURCE_UID
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data; rows are containers, their nested panels count."""
    for item in items:
        if item.get("type") == "row":
            yield from panels(item.get("panels", []))
        else:
            yield item


def expressions(board: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(board["panels"]) for target in panel["targets"]]


def variable_queries(board: dict[str, Any]) -> list[str]:
    queries = []
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in VALUES, f"unknown variable ${name} in {expr!r}"
        return VALUES[name]

    return VARIABLE.sub(value, expr)


def test_there_are_dashboards() -> None:
    assert {path.name for path in DASHBOARDS} >= {
        "fleet-overview.json",
        "model-detail.json",
        "service-health.json",
    }


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_structure(path: Path) -> None:
    board = load(path)
    assert board["schemaVersion"] >= 36
    assert board["uid"]
    assert board["title"]
    assert "driftmon" in board["tags"]
    found = list(panels(board["panels"]))
    assert found
    for panel in found:
        where = f"{path.name}: panel {panel.get('title')!r}"
        assert panel["datasource"] == DATASOURCE, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["refId"], where
            assert target.get("datasource", DATASOURCE) == DATASOURCE, where
            assert target["expr"].strip(), where
    defined = {variable["name"] for variable in board.get("templating", {}).get("list", [])}
    for expr in expressions(board):
        used = {a or b for a, b in VARIABLE.findall(expr)}
        assert used <= defined | {"__rate_interval", "__interval", "__range"}, expr


def test_dashboard_uids_are_unique() -> None:
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_model_detail_links_to_the_latest_report() -> None:
    board = load(REPO / "grafana" / "dashboards" / "model-detail.json")
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["model"]["query"]["query"] == "label_values(driftmon_window_events, model)"
    assert variables["driftmon_url"]["type"] == "textbox"
    assert variables["driftmon_url"]["query"] == "http://localhost:8000"
    assert REPORT_LINK in [link.get("url") for link in board["links"]]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_dashboard_expressions_parse(path: Path, tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:{path.stem.replace('-', '_')}:expr{i}", "expr": substitute(expr)}
        for i, expr in enumerate(expressions(load(path)))
    ]
    rule_file = tmp_path / "dashboard.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}))
    run_promtool("check", "rules", str(rule_file))


async def test_dashboards_use_only_exported_metrics(harness: Harness) -> None:
    scrape = await live_scrape(harness)
    used = metric_names(
        query
        for path in DASHBOARDS
        for query in expressions(load(path)) + variable_queries(load(path))
    )
    assert_all_exported(used, scrape)


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "driftmon.yaml").read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == DATASOURCE_UID
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "driftmon.yaml").read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "driftmon"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/driftmon"
    for path in DASHBOARDS:
        variables = {variable["name"]: variable for variable in load(path)["templating"]["list"]}
        chooser = variables["datasource"]
        assert (chooser["type"], chooser["query"]) == ("datasource", "prometheus"), path.name
        assert chooser["current"]["value"] == source["uid"], path.name
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (path.name, variable["name"])
