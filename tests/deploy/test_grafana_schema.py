"""The dashboards against @grafana/schema of the Grafana the compose stack runs: its
TypeScript types (tests/deploy/grafana_schema/types.ts) become a JSON schema through
ts-json-schema-generator, in which no object takes a property its type does not declare;
every dashboard, and each panel's options and custom field config, must match it."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.tools import NODE_TOOLS, require, run
from tests.observability.scrape import REPO

TYPES = Path(__file__).with_name("grafana_schema") / "types.ts"
PACKAGE = Path(__file__).with_name("grafana_schema") / "package.json"
DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
COMPOSE = REPO / "deploy" / "compose" / "docker-compose.yml"
# the panel types of the dashboards, by the names types.ts gives their shapes
PANEL_TYPES = {
    "bargauge": "BarGauge",
    "gauge": "Gauge",
    "stat": "Stat",
    "table": "Table",
    "timeseries": "TimeSeries",
}
# what Grafana's export adds around a dashboard for its import dialog
EXPORT_ONLY = ("__inputs", "__requires", "__elements")

Json = dict[str, Any]


@cache
def definitions(workdir: Path) -> Json:
    generator = NODE_TOOLS / "node_modules" / ".bin" / "ts-json-schema-generator"
    if not generator.exists():
        require("ts-json-schema-generator", "npm, into .tools/grafana-schema")
    require("node", "Debian package nodejs")
    shutil.copy(TYPES, workdir / "types.ts")
    (workdir / "node_modules").symlink_to(NODE_TOOLS / "node_modules")
    out = workdir / "schema.json"
    command = [str(generator), "--path", "types.ts", "--type", "*", "--no-type-check"]
    run([*command, "--out", str(out)], cwd=workdir)
    found: Json = json.loads(out.read_text())["definitions"]
    return found


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Json:
    return definitions(tmp_path_factory.mktemp("grafana-schema"))


def validator(found: Json, name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{name}", "definitions": found})


def panels(items: list[Json]) -> Iterator[Json]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def explained(error: jsonschema.ValidationError) -> str:
    """Where and what; for a panel of none of the shapes (Panel | RowPanel), the
    deepest complaint (the shape that got furthest) rather than "not valid under any"."""
    chosen = max(error.context or [error], key=lambda inner: len(inner.absolute_path))
    return f"{chosen.json_path}: {chosen.message}"


def problems(found: Json, board: Json) -> list[str]:
    """Where the dashboard and its panels differ from Grafana's types."""
    model = {key: value for key, value in board.items() if key not in EXPORT_ONLY}
    dashboard = validator(found, "GrafanaDashboard").iter_errors(model)
    errors = [f"dashboard {explained(e)}" for e in dashboard]
    for panel in panels(board["panels"]):
        kind = PANEL_TYPES.get(panel["type"])
        if kind is None:
            assert panel["type"] == "row", f"no shape for panel type {panel['type']!r}"
            continue
        where = f"panel {panel.get('title')!r} ({panel['type']})"
        options = validator(found, f"{kind}Options").iter_errors(panel.get("options", {}))
        errors += [f"{where} options {explained(e)}" for e in options]
        if f"{kind}FieldConfig" in found:
            custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
            fields = validator(found, f"{kind}FieldConfig").iter_errors(custom)
            errors += [f"{where} custom field config {explained(e)}" for e in fields]
    return errors


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_the_dashboard_matches_grafanas_types(schema: Json, path: Path) -> None:
    assert problems(schema, json.loads(path.read_text())) == []


def test_a_gauge_option_on_a_bar_gauge_is_refused(schema: Json) -> None:
    board = json.loads(DASHBOARDS[0].read_text())
    broken = copy.deepcopy(board)
    bar = next(panel for panel in panels(broken["panels"]) if panel["type"] == "bargauge")
    bar["options"]["showThresholdMarkers"] = True
    assert problems(schema, board) == []
    [problem] = problems(schema, broken)
    assert "showThresholdMarkers" in problem


def test_the_schema_is_of_the_grafana_compose_runs() -> None:
    image = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]["image"]
    pinned = json.loads(PACKAGE.read_text())["devDependencies"]["@grafana/schema"]
    assert image == f"grafana/grafana:{pinned}"
